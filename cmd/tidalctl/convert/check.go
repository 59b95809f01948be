package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// validator is what every convertible Tidal type implements.
type validator interface {
	runtime.Object
	Validate() field.ErrorList
}

func newTyped(kind string) validator {
	switch kind {
	case "ScaledObject":
		return &tidalv1alpha1.ScaledObject{}
	case "ScaledJob":
		return &tidalv1alpha1.ScaledJob{}
	case "TriggerAuthentication":
		return &tidalv1alpha1.TriggerAuthentication{}
	default:
		return &tidalv1alpha1.ClusterTriggerAuthentication{}
	}
}

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

// check decodes a converted object into Tidal's type: unknown fields are removed from the tree and reported,
// then Validate's findings, the fields of tidalv1alpha1.NotSupportedYet and unknown trigger types are reported.
func check(n *yaml.Node, kind string, knownType func(string) bool, warn func(field, msg string)) error {
	var generic any
	if err := n.Decode(&generic); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return fmt.Errorf("encode as JSON: %w", err)
	}
	obj := newTyped(kind)
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj)
	if err != nil {
		// A type error (a string where a number belongs): the API server will reject the object as it is.
		warn("", "does not match Tidal's schema; the API server will reject it: "+err.Error())
		return nil
	}
	for _, se := range strictErrs {
		m := unknownField.FindStringSubmatch(se.Error())
		if m == nil {
			warn("", se.Error())
			continue
		}
		if removePath(n, m[1]) {
			warn(m[1], "Tidal has no such field; removed")
		} else {
			warn(m[1], "Tidal has no such field; the API server will drop it")
		}
	}
	for _, fe := range obj.Validate() {
		warn(fe.Field, "the API server will reject it: "+fe.ErrorBody())
	}
	// The fields Tidal keeps but does not act on yet: the one table the webhook refuses them from.
	for _, fe := range tidalv1alpha1.UnsupportedFields(obj) {
		warn(fe.Field, "kept as is, but Tidal's webhook will refuse the object: "+fe.Detail)
	}
	switch o := obj.(type) {
	case *tidalv1alpha1.ScaledObject:
		checkTriggers(o.Spec.Triggers, knownType, warn)
	case *tidalv1alpha1.ScaledJob:
		checkTriggers(o.Spec.Triggers, knownType, warn)
	}
	return nil
}

func checkTriggers(triggers []tidalv1alpha1.ScaleTriggers, knownType func(string) bool, warn func(field, msg string)) {
	if knownType == nil {
		return
	}
	for i, t := range triggers {
		if t.Type != "" && !knownType(t.Type) {
			warn(fmt.Sprintf("spec.triggers[%d].type", i),
				fmt.Sprintf("Tidal has no %q scaler yet; the object is accepted but reports the trigger as not Ready", t.Type))
		}
	}
}

// removePath deletes the field at a JSON path such as spec.triggers[0].foo from the tree.
func removePath(n *yaml.Node, path string) bool {
	segs := splitPath(path)
	if len(segs) == 0 {
		return false
	}
	cur := n
	for _, s := range segs[:len(segs)-1] {
		if cur = step(cur, s); cur == nil {
			return false
		}
	}
	last := segs[len(segs)-1]
	if last.index >= 0 || get(cur, last.key) == nil {
		return false
	}
	del(cur, last.key)
	return true
}

type pathSeg struct {
	key   string
	index int // -1 for a key
}

func splitPath(path string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			out = append(out, pathSeg{key: key, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil {
				return nil
			}
			out = append(out, pathSeg{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}

func step(n *yaml.Node, s pathSeg) *yaml.Node {
	if s.index < 0 {
		return get(n, s.key)
	}
	if n == nil || n.Kind != yaml.SequenceNode || s.index >= len(n.Content) {
		return nil
	}
	return n.Content[s.index]
}
