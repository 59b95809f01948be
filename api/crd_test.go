package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"sigs.k8s.io/yaml"
)

// crdDir holds the generated CRDs, relative to this package.
const crdDir = "../charts/tidal/crds"

// loadCRDs decodes every CRD file strictly, keyed by kind.
func loadCRDs(t testing.TB) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatalf("glob %s: %v", crdDir, err)
	}
	if len(files) == 0 {
		t.Fatalf("no CRDs in %s; run api/generate.sh", crdDir)
	}
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := strictYAML(raw, crd); err != nil {
			t.Fatalf("decode %s: %v", f, err)
		}
		if want := crd.Spec.Group + "_" + crd.Spec.Names.Plural + ".yaml"; filepath.Base(f) != want {
			t.Errorf("%s: file name should be %s", f, want)
		}
		crds[crd.Spec.Names.Kind] = crd
	}
	return crds
}

// strictYAML decodes YAML into out, failing on fields out does not have.
func strictYAML(raw []byte, out any) error {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

func TestCRDSet(t *testing.T) {
	crds := loadCRDs(t)
	want := map[string]apiextensionsv1.ResourceScope{
		"ScaledObject":                 apiextensionsv1.NamespaceScoped,
		"ScaledJob":                    apiextensionsv1.NamespaceScoped,
		"TriggerAuthentication":        apiextensionsv1.NamespaceScoped,
		"ClusterTriggerAuthentication": apiextensionsv1.ClusterScoped,
		"NodeGroup":                    apiextensionsv1.ClusterScoped,
		"CapacityRequest":              apiextensionsv1.NamespaceScoped,
	}
	if len(crds) != len(want) {
		t.Errorf("got %d CRDs, want %d", len(crds), len(want))
	}
	for kind, scope := range want {
		t.Run(kind, func(t *testing.T) {
			crd, ok := crds[kind]
			if !ok {
				t.Fatalf("no CRD for kind %s", kind)
			}
			if crd.Spec.Group != "tidal.dev" {
				t.Errorf("group = %q, want tidal.dev", crd.Spec.Group)
			}
			if crd.Spec.Scope != scope {
				t.Errorf("scope = %s, want %s", crd.Spec.Scope, scope)
			}
			if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
				t.Fatalf("versions = %+v, want only v1alpha1", crd.Spec.Versions)
			}
			v := crd.Spec.Versions[0]
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("no status subresource")
			}
			if v.Subresources != nil && v.Subresources.Scale != nil {
				t.Errorf("unexpected scale subresource")
			}
		})
	}
}

func TestScaledObjectPrinterColumns(t *testing.T) {
	crd := loadCRDs(t)["ScaledObject"]
	var got []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			got = append(got, strings.ToUpper(c.Name))
		}
	}
	want := "SCALETARGETKIND SCALETARGETNAME MIN MAX READY ACTIVE FALLBACK PAUSED MODE AGE"
	if strings.Join(got, " ") != want {
		t.Errorf("columns = %v, want %s", got, want)
	}
}

// TestCRDsPassAPIServerValidation runs the API server's own CRD validation (structural schema, CEL compilation
// and CEL cost estimation), so a CRD the server would refuse fails here without a cluster.
func TestCRDsPassAPIServerValidation(t *testing.T) {
	crds := loadCRDs(t)
	kinds := make([]string, 0, len(crds))
	for k := range crds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			internal := toInternal(t, crds[kind])
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
				for _, e := range errs {
					t.Errorf("%v", e)
				}
			}
		})
	}
}

// toInternal defaults and converts a v1 CRD the way the API server does before validating it.
func toInternal(t testing.TB, crd *apiextensionsv1.CustomResourceDefinition) *apiextensions.CustomResourceDefinition {
	t.Helper()
	v1 := crd.DeepCopy()
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(v1)
	internal := &apiextensions.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(v1, internal, nil); err != nil {
		t.Fatalf("convert %s: %v", crd.Name, err)
	}
	return internal
}
