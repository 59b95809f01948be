package template_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// TestExamples decodes every NodeGroup in examples/nodegroup*.yaml strictly, validates it and builds its
// template node.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../../examples/nodegroup*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	groups := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if meta.Kind != "NodeGroup" {
				continue
			}
			var ng v1alpha1.NodeGroup
			if err := yaml.UnmarshalStrict(doc, &ng); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if errs := ng.Validate(); len(errs) > 0 {
				t.Errorf("%s: NodeGroup %s: %v", f, ng.Name, errs.ToAggregate())
			}
			if n := template.Node(&ng, "x"); n.Labels[template.LabelNodeGroup] != ng.Name {
				t.Errorf("%s: template node of %s lacks the group label", f, ng.Name)
			}
			groups++
		}
	}
	if groups < 4 {
		t.Fatalf("found %d NodeGroups in the examples, want at least 4", groups)
	}
}
