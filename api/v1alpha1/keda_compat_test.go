package v1alpha1

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tidalscale/tidal/internal/testjson"
)

// kedaToTidal changes apiVersion keda.sh/v1alpha1 to tidal.dev/v1alpha1, as `tidalctl convert` does, and
// nothing else.
func kedaToTidal(t *testing.T, js []byte) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		t.Fatal(err)
	}
	if obj["apiVersion"] != "keda.sh/v1alpha1" {
		t.Fatalf("apiVersion = %v, want a KEDA manifest (keda.sh/v1alpha1)", obj["apiVersion"])
	}
	obj["apiVersion"] = SchemeGroupVersion.String()
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKEDAManifestsConvert shows that KEDA manifests with only apiVersion changed decode into our types with
// no unknown field, pass Validate, and encode back to the same document (nothing dropped or renamed).
func TestKEDAManifestsConvert(t *testing.T) {
	kinds := map[string]bool{}
	for _, m := range loadManifests(t, "../testdata/keda", kedaToTidal) {
		t.Run(m.name, func(t *testing.T) {
			if errs := m.obj.Validate(); len(errs) > 0 {
				t.Errorf("Validate: %v", errs.ToAggregate())
			}
			back, err := json.Marshal(m.obj)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			want, got := testjson.Normalize(t, m.json), testjson.Normalize(t, back)
			if !reflect.DeepEqual(want, got) {
				wantJS, _ := json.MarshalIndent(want, "", "  ")
				gotJS, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("round trip changed the manifest\nwant %s\ngot  %s", wantJS, gotJS)
			}
		})
		var meta struct{ Kind string }
		if err := json.Unmarshal(m.json, &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind] = true
	}
	for _, k := range []string{"ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"} {
		if !kinds[k] {
			t.Errorf("no KEDA %s manifest in testdata/keda", k)
		}
	}
}
