package api_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// wantFieldAnnotation on a manifest in testdata/invalid names the field its error must name.
const wantFieldAnnotation = "test.tidal.dev/want-field"

// schemaPipeline runs a custom resource through the steps the API server applies on create, using the API
// server's own packages: prune unknown fields, apply defaults, OpenAPI schema validation, CEL rules. It lets the
// rules be checked in milliseconds without a cluster; TestCRDsOnAPIServer checks the real server agrees.
type schemaPipeline struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func newSchemaPipeline(t testing.TB, kind string) *schemaPipeline {
	t.Helper()
	crd := toInternal(t, loadCRDs(t)[kind])
	v, err := apiextensions.GetSchemaForVersion(crd, "v1alpha1")
	if err != nil || v == nil || v.OpenAPIV3Schema == nil {
		t.Fatalf("%s: no v1alpha1 schema (err %v)", kind, err)
	}
	s, err := structuralschema.NewStructural(v.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("%s: structural schema: %v", kind, err)
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(v.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("%s: schema validator: %v", kind, err)
	}
	return &schemaPipeline{structural: s, validator: validator, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}
}

// admit prunes, defaults and validates obj in place; it returns the pruned field paths and the errors.
func (p *schemaPipeline) admit(obj map[string]any) (pruned []string, errs field.ErrorList) {
	pruned = pruning.PruneWithOptions(obj, p.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	structuraldefaulting.Default(obj, p.structural)
	errs = apiservervalidation.ValidateCustomResource(nil, obj, p.validator)
	celErrs, _ := p.cel.Validate(context.Background(), nil, p.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return pruned, append(errs, celErrs...)
}

// testManifest is one testdata file decoded generically.
type testManifest struct {
	name string
	obj  map[string]any
}

func (m testManifest) kind() string { return m.obj["kind"].(string) }

func (m testManifest) wantField(t testing.TB) string {
	t.Helper()
	meta, _ := m.obj["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	want, _ := ann[wantFieldAnnotation].(string)
	if want == "" {
		t.Fatalf("%s: no %s annotation", m.name, wantFieldAnnotation)
	}
	return want
}

// loadTestManifests reads testdata/<dir>/*.yaml; KEDA manifests get apiVersion tidal.dev/v1alpha1.
func loadTestManifests(t testing.TB, dir string) []testManifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in testdata/%s (err %v)", dir, err)
	}
	sort.Strings(files)
	out := make([]testManifest, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		obj := map[string]any{}
		// utiljson decodes whole numbers as int64, as the API server does.
		if err := utiljson.Unmarshal(js, &obj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if obj["apiVersion"] == "keda.sh/v1alpha1" {
			obj["apiVersion"] = "tidal.dev/v1alpha1"
		}
		out = append(out, testManifest{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), obj: obj})
	}
	return out
}

// TestSchemaKeepsKEDAManifests: every field of the KEDA manifests survives pruning (the CRD schema, not only the
// Go types, knows it) and the manifests pass the schema and CEL rules.
func TestSchemaKeepsKEDAManifests(t *testing.T) {
	pipelines := map[string]*schemaPipeline{}
	for _, m := range loadTestManifests(t, "keda") {
		t.Run(m.name, func(t *testing.T) {
			p := pipelines[m.kind()]
			if p == nil {
				p = newSchemaPipeline(t, m.kind())
				pipelines[m.kind()] = p
			}
			pruned, errs := p.admit(m.obj)
			if len(pruned) > 0 {
				t.Errorf("schema drops fields %v", pruned)
			}
			for _, e := range errs {
				t.Errorf("rejected: %v", e)
			}
		})
	}
}

// TestSchemaRejectsInvalidManifests: each manifest in testdata/invalid is refused by the schema or a CEL rule
// with a message naming the field in its annotation.
func TestSchemaRejectsInvalidManifests(t *testing.T) {
	pipelines := map[string]*schemaPipeline{}
	for _, m := range loadTestManifests(t, "invalid") {
		t.Run(m.name, func(t *testing.T) {
			want := m.wantField(t)
			p := pipelines[m.kind()]
			if p == nil {
				p = newSchemaPipeline(t, m.kind())
				pipelines[m.kind()] = p
			}
			_, errs := p.admit(m.obj)
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error naming %s", want)
			}
			t.Logf("%s", errs.ToAggregate())
			for _, e := range errs {
				if e.Field != want && !strings.HasPrefix(e.Field, want+".") && !strings.HasPrefix(e.Field, want+"[") {
					t.Errorf("error %q is about %s, want only errors about %s", e.Error(), e.Field, want)
				}
			}
		})
	}
}

// TestSchemaDefaults: the CRD applies KEDA's defaults plus mode direct.
func TestSchemaDefaults(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "tidal.dev/v1alpha1",
		"kind":       "ScaledObject",
		"metadata":   map[string]any{"name": "defaults"},
		"spec": map[string]any{
			"scaleTargetRef": map[string]any{"name": "web"},
			"fallback":       map[string]any{"failureThreshold": int64(3), "replicas": int64(1)},
			"triggers":       []any{map[string]any{"type": "redis", "metadata": map[string]any{"listName": "q"}}},
		},
	}
	if _, errs := newSchemaPipeline(t, "ScaledObject").admit(obj); len(errs) > 0 {
		t.Fatalf("rejected: %v", errs.ToAggregate())
	}
	spec := obj["spec"].(map[string]any)
	want := map[string]any{
		"pollingInterval": int64(30),
		"cooldownPeriod":  int64(300),
		"minReplicaCount": int64(0),
		"maxReplicaCount": int64(100),
		"mode":            "direct",
	}
	for k, v := range want {
		if spec[k] != v {
			t.Errorf("spec.%s = %v (%T), want %v", k, spec[k], spec[k], v)
		}
	}
	if b := spec["fallback"].(map[string]any)["behavior"]; b != "static" {
		t.Errorf("spec.fallback.behavior = %v, want static", b)
	}
}
