// Package convert rewrites KEDA manifests (keda.sh/v1alpha1) as Tidal manifests (tidal.dev/v1alpha1) and back.
//
// Tidal's ScaledObject, ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication are a field-for-field
// superset of KEDA's, so converting is changing apiVersion. The converter works on the YAML tree, so key order
// and comments survive, and then checks each converted object against Tidal's types: a field Tidal cannot
// carry is removed and reported as a warning (the API server would drop it silently), and so is anything the
// object's Validate would reject. Documents of other kinds pass through unchanged; a v1 List is converted item by
// item. Fields the API server owns (uid, resourceVersion, managedFields, status...) are removed, so the output
// can be applied to another cluster.
package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Group versions the converter translates between.
const (
	KEDAAPIVersion  = "keda.sh/v1alpha1"
	TidalAPIVersion = "tidal.dev/v1alpha1"
)

// Direction is the API a conversion produces.
type Direction string

// Directions.
const (
	ToTidal Direction = "tidal"
	ToKEDA  Direction = "keda"
)

// Kinds shared by KEDA and Tidal.
var convertibleKinds = []string{"ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"}

// Options configures Convert.
type Options struct {
	// To is the API to produce (default ToTidal).
	To Direction
	// KnownTriggerType reports whether Tidal ships a scaler for a trigger type; nil skips the check.
	KnownTriggerType func(triggerType string) bool
}

// Warning is something the converter could not carry over, or that will not work as it did.
type Warning struct {
	// Document is the 1-based index of the YAML document in the input.
	Document int
	// Object is "Kind namespace/name" (or "Kind name").
	Object string
	// Field is the field path, empty for the whole object.
	Field   string
	Message string
}

func (w Warning) String() string {
	s := fmt.Sprintf("document %d: %s", w.Document, w.Object)
	if w.Field != "" {
		s += ": " + w.Field
	}
	return s + ": " + w.Message
}

// Result is the converted input.
type Result struct {
	// Documents are the output documents, in input order (converted or passed through).
	Documents []*yaml.Node
	// Converted counts the objects whose apiVersion changed.
	Converted int
	Warnings  []Warning
}

// Convert reads a stream of YAML documents and converts every convertible object. It returns an error only for
// input that is not YAML or not Kubernetes objects, naming the document.
func Convert(r io.Reader, opts Options) (Result, error) {
	if opts.To == "" {
		opts.To = ToTidal
	}
	if opts.To != ToTidal && opts.To != ToKEDA {
		return Result{}, fmt.Errorf("direction %q: want %q or %q", opts.To, ToTidal, ToKEDA)
	}
	c := converter{opts: opts}
	dec := yaml.NewDecoder(r)
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("document %d: invalid YAML: %w", n, err)
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // empty document (a stray ---)
		}
		c.doc = n
		if err := c.object(doc.Content[0], ""); err != nil {
			return Result{}, fmt.Errorf("document %d: %w", n, err)
		}
		c.res.Documents = append(c.res.Documents, &doc)
	}
	if len(c.res.Documents) == 0 {
		return Result{}, errors.New("no Kubernetes objects in the input")
	}
	return c.res, nil
}

type converter struct {
	opts Options
	doc  int
	res  Result
}

// object converts one object (or each item of a List) in place.
func (c *converter) object(n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%swant a Kubernetes object (a YAML mapping), got a %s", prefix(path), kindName(n))
	}
	apiVersion, kind := scalar(n, "apiVersion"), scalar(n, "kind")
	if apiVersion == "" || kind == "" {
		return fmt.Errorf("%sapiVersion and kind are required", prefix(path))
	}
	if kind == "List" || strings.HasSuffix(kind, "List") && get(n, "items") != nil {
		items := get(n, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return fmt.Errorf("%sitems: want a list", prefix(path))
		}
		for i, it := range items.Content {
			if err := c.object(it, fmt.Sprintf("%sitems[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	from, to := KEDAAPIVersion, TidalAPIVersion
	if c.opts.To == ToKEDA {
		from, to = to, from
	}
	if apiVersion != from {
		return nil
	}
	if !isConvertible(kind) {
		c.res.Warnings = append(c.res.Warnings, Warning{Document: c.doc, Object: strings.TrimSpace(path + " " + objectName(n, kind)),
			Message: fmt.Sprintf("%s has no %s equivalent; passed through unchanged", from+" "+kind, to)})
		return nil
	}
	obj := objectName(n, kind)
	if path != "" {
		obj = path + " " + obj
	}
	set(n, "apiVersion", to)
	c.res.Converted++
	stripServerFields(n)
	w := func(field, msg string) {
		c.res.Warnings = append(c.res.Warnings, Warning{Document: c.doc, Object: obj, Field: field, Message: msg})
	}
	if c.opts.To == ToKEDA {
		toKEDA(n, kind, w)
		return nil
	}
	return check(n, kind, c.opts.KnownTriggerType, w)
}

// serverMetadata are metadata fields the API server owns; they must not be applied to another cluster.
var serverMetadata = []string{"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences"}

// stripServerFields removes status, server-owned metadata, KEDA's finalizer and kubectl's last-applied
// annotation (it holds the old apiVersion and would confuse the next kubectl apply).
func stripServerFields(n *yaml.Node) {
	del(n, "status")
	md := get(n, "metadata")
	if md == nil || md.Kind != yaml.MappingNode {
		return
	}
	for _, f := range serverMetadata {
		del(md, f)
	}
	// KEDA's finalizer would keep the object forever once KEDA is gone.
	if fin := get(md, "finalizers"); fin != nil && fin.Kind == yaml.SequenceNode {
		kept := fin.Content[:0]
		for _, f := range fin.Content {
			if !strings.HasSuffix(f.Value, "keda.sh") {
				kept = append(kept, f)
			}
		}
		fin.Content = kept
		if len(kept) == 0 {
			del(md, "finalizers")
		}
	}
	if ann := get(md, "annotations"); ann != nil && ann.Kind == yaml.MappingNode {
		del(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann.Content) == 0 {
			del(md, "annotations")
		}
	}
}

// toKEDA removes what only Tidal has and renames Tidal's annotations to KEDA's spelling.
func toKEDA(n *yaml.Node, kind string, warn func(field, msg string)) {
	if spec := get(n, "spec"); spec != nil && spec.Kind == yaml.MappingNode && kind == "ScaledObject" {
		if mode := scalar(spec, "mode"); mode != "" {
			if mode != "hpa" {
				warn("spec.mode", fmt.Sprintf("KEDA always scales through an HPA; mode %q is dropped", mode))
			}
			del(spec, "mode")
		}
	}
	ann := get(get(n, "metadata"), "annotations")
	if ann == nil || ann.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(ann.Content); i += 2 {
		k := ann.Content[i]
		if rest, ok := strings.CutPrefix(k.Value, "autoscaling.tidal.dev/"); ok {
			k.Value = "autoscaling.keda.sh/" + rest
		}
	}
}

// WriteYAML writes the documents as a YAML stream.
func (r Result) WriteYAML(w io.Writer) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range r.Documents {
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("encode YAML: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Objects returns the documents as generic JSON-compatible values.
func (r Result) Objects() ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(r.Documents))
	for i, d := range r.Documents {
		var v map[string]any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func isConvertible(kind string) bool {
	for _, k := range convertibleKinds {
		if k == kind {
			return true
		}
	}
	return false
}

func objectName(n *yaml.Node, kind string) string {
	md := get(n, "metadata")
	name, ns := scalar(md, "name"), scalar(md, "namespace")
	if name == "" {
		name = scalar(md, "generateName") + "*"
	}
	if ns != "" {
		return kind + " " + ns + "/" + name
	}
	return kind + " " + name
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// get returns the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	v := get(n, key)
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

func set(n *yaml.Node, key, value string) {
	if v := get(n, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, "!!str", value, 0, nil
	}
}

func del(n *yaml.Node, key string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}
