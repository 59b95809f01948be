package metricsapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tidwall/gjson"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// extractValue reads the number at loc from body in the given format.
func extractValue(body []byte, format, loc string, sel *selector) (float64, error) {
	switch format {
	case formatPrometheus:
		if sel == nil {
			return 0, errors.New("no series selector")
		}
		return sel.find(body)
	case formatYAML:
		j, err := yaml.YAMLToJSON(body)
		if err != nil {
			return 0, fmt.Errorf("not valid YAML: %w", err)
		}
		return jsonValue(j, loc)
	case formatXML:
		j, err := xmlToJSON(body)
		if err != nil {
			return 0, fmt.Errorf("not valid XML: %w", err)
		}
		return jsonValue(j, loc)
	default:
		return jsonValue(body, loc)
	}
}

// jsonValue reads a number, or a string holding a Kubernetes quantity, at a GJSON path.
func jsonValue(body []byte, loc string) (float64, error) {
	if !gjson.ValidBytes(body) {
		return 0, errors.New("the body is not valid JSON")
	}
	r := gjson.GetBytes(body, loc)
	switch {
	case !r.Exists():
		return 0, errors.New("no value at that location")
	case r.Type == gjson.Number:
		return r.Num, nil
	case r.Type == gjson.String:
		return quantity(r.Str)
	default:
		return 0, fmt.Errorf("want a number or a string holding a quantity, got %s", describe(r))
	}
}

func describe(r gjson.Result) string {
	switch {
	case r.IsArray():
		return "an array"
	case r.IsObject():
		return "an object"
	case r.Type == gjson.True || r.Type == gjson.False:
		return "a boolean"
	case r.Type == gjson.Null:
		return "null"
	}
	return r.Type.String()
}

func quantity(s string) (float64, error) {
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return 0, fmt.Errorf("want a number or a string holding a quantity, got %q", s)
	}
	return q.AsApproximateFloat64(), nil
}

// xmlToJSON turns an XML document into JSON: {"root": {"child": "text", "repeated": ["a", "b"]}}. Attributes are
// dropped; an element with children keeps only its children.
func xmlToJSON(body []byte) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	type frame struct {
		name     string
		children map[string]any
		order    []string
		text     strings.Builder
	}
	var stack []*frame
	var root map[string]any
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 256 {
				return nil, errors.New("nesting deeper than 256 elements")
			}
			stack = append(stack, &frame{name: t.Name.Local})
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("unbalanced end element")
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			var v any = strings.TrimSpace(f.text.String())
			if f.children != nil {
				v = f.children
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = map[string]any{f.name: v}
				continue
			}
			p := stack[len(stack)-1]
			if p.children == nil {
				p.children = map[string]any{}
			}
			switch prev := p.children[f.name].(type) {
			case nil:
				p.children[f.name] = v
			case []any:
				p.children[f.name] = append(prev, v)
			default:
				p.children[f.name] = []any{prev, v}
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return json.Marshal(root)
}

// selector is a Prometheus series selector with equality matchers: name{label="value",...}.
type selector struct {
	name   string
	labels map[string]string
}

// parseSelector parses a selector by reading it as a sample line of the text format, so names and label values
// follow exactly the exposition format's rules.
func parseSelector(s string) (*selector, error) {
	if strings.ContainsAny(s, "\n\r#") {
		return nil, fmt.Errorf("want a series selector such as name or name{label=\"value\"}, got %q", s)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(s + " 0\n"))
	if err != nil || len(fams) != 1 {
		return nil, fmt.Errorf("want a series selector with = matchers such as name or name{label=\"value\"}, got %q", s)
	}
	for name, f := range fams {
		sel := &selector{name: name, labels: map[string]string{}}
		for _, l := range f.GetMetric()[0].GetLabel() {
			sel.labels[l.GetName()] = l.GetValue()
		}
		return sel, nil
	}
	return nil, errors.New("unreachable")
}

// find returns the value of the first series named s.name carrying every label of s.
func (s *selector) find(body []byte) (float64, error) {
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0, fmt.Errorf("not valid Prometheus text format: %w", err)
	}
	fam, ok := fams[s.name]
	if !ok {
		return 0, fmt.Errorf("metric %q not found", s.name)
	}
	for _, m := range fam.GetMetric() {
		if !s.matches(m) {
			continue
		}
		var v *float64
		switch {
		case m.GetUntyped() != nil:
			v = m.GetUntyped().Value
		case m.GetGauge() != nil:
			v = m.GetGauge().Value
		case m.GetCounter() != nil:
			v = m.GetCounter().Value
		}
		if v == nil {
			return 0, fmt.Errorf("series of metric %q is a %s, want a gauge, counter or untyped value", s.name, strings.ToLower(fam.GetType().String()))
		}
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			return 0, fmt.Errorf("series of metric %q has value %v", s.name, *v)
		}
		return *v, nil
	}
	return 0, fmt.Errorf("no series of metric %q has labels %v", s.name, s.labels)
}

func (s *selector) matches(m *dto.Metric) bool {
	for name, want := range s.labels {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
