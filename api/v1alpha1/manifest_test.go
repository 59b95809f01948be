package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// wantFieldAnnotation on a manifest in ../testdata/invalid names the field its error must name.
const wantFieldAnnotation = "test.tidal.dev/want-field"

// validatable is every kind with a Validate method.
type validatable interface {
	Validate() field.ErrorList
}

// manifest is one decoded testdata file.
type manifest struct {
	name string // file name without extension
	raw  []byte // YAML as read
	json []byte // JSON after any apiVersion rewrite
	obj  validatable
}

// loadManifests reads dir/*.yaml; rewrite maps each file's JSON before it is decoded strictly by kind.
func loadManifests(t *testing.T, dir string, rewrite func(t *testing.T, js []byte) []byte) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (err %v)", dir, err)
	}
	sort.Strings(files)
	out := make([]manifest, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if rewrite != nil {
			js = rewrite(t, js)
		}
		obj, err := decodeStrict(js)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, manifest{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), raw: raw, json: js, obj: obj})
	}
	return out
}

// decodeStrict decodes a tidal.dev/v1alpha1 object by kind, failing on any field our types do not have.
func decodeStrict(js []byte) (validatable, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return nil, err
	}
	if meta.APIVersion != SchemeGroupVersion.String() {
		return nil, fmt.Errorf("apiVersion %q, want %q", meta.APIVersion, SchemeGroupVersion)
	}
	var obj validatable
	switch meta.Kind {
	case "ScaledObject":
		obj = &ScaledObject{}
	case "ScaledJob":
		obj = &ScaledJob{}
	case "TriggerAuthentication":
		obj = &TriggerAuthentication{}
	case "ClusterTriggerAuthentication":
		obj = &ClusterTriggerAuthentication{}
	case "NodeGroup":
		obj = &NodeGroup{}
	default:
		return nil, fmt.Errorf("unknown kind %q", meta.Kind)
	}
	// encoding/json with DisallowUnknownFields catches unknown fields but matches names case-insensitively
	// ("metaData" fills Metadata); sigs.k8s.io/json.UnmarshalStrict is what the API server uses and also
	// reports case mismatches and duplicate fields. Both must accept the document.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("strict decode of %s: %w", meta.Kind, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode of %s: %w", meta.Kind, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("strict decode of %s: %w", meta.Kind, errors.Join(strictErrs...))
	}
	return obj, nil
}

// errorsOnlyUnder fails t unless errs is non-empty and every error's field is want or below it.
func errorsOnlyUnder(t *testing.T, errs field.ErrorList, want string) {
	t.Helper()
	if len(errs) == 0 {
		t.Fatalf("no error, want one naming %s", want)
	}
	for _, e := range errs {
		if e.Field != want && !strings.HasPrefix(e.Field, want+".") && !strings.HasPrefix(e.Field, want+"[") {
			t.Errorf("error %q names %s, want only errors under %s", e.Error(), e.Field, want)
		}
		if !strings.Contains(e.Error(), want) {
			t.Errorf("error %q does not name %s", e.Error(), want)
		}
	}
}
