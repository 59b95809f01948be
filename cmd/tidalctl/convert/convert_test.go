package convert

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/internal/testjson"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	sigsyaml "sigs.k8s.io/yaml"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers/registry"
)

var update = flag.Bool("update", false, "rewrite golden files")

func corpusFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/keda/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata/keda: %v", err)
	}
	return files
}

func convertFile(t *testing.T, path string, opts Options) Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Convert(f, opts)
	if err != nil {
		t.Fatalf("Convert(%s): %v", path, err)
	}
	return res
}

// splitYAML returns each document of a YAML stream as generic JSON values.
func splitYAML(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// TestCorpusConvertsLosslessly converts every KEDA manifest of the corpus: no warning, every object now
// tidal.dev/v1alpha1, every field carried by Tidal's types (decode + encode gives the same document), and the
// conversion back to KEDA gives the original manifest.
func TestCorpusConvertsLosslessly(t *testing.T) {
	reg := registry.New()
	seenTypes, seenKinds := map[string]bool{}, map[string]bool{}
	for _, path := range corpusFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			orig := splitYAML(t, raw)
			res := convertFile(t, path, Options{KnownTriggerType: reg.Has})
			// The only warnings are the fields Tidal keeps but does not support yet (tidalv1alpha1.NotSupportedYet),
			// one per field set.
			unsupported := map[string]int{}
			for _, w := range res.Warnings {
				unsupported[w.Field]--
			}
			if res.Converted != len(orig) {
				t.Errorf("converted %d objects, want %d", res.Converted, len(orig))
			}
			objs, err := res.Objects()
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range objs {
				if o["apiVersion"] != TidalAPIVersion {
					t.Errorf("object %d: apiVersion %v, want %s", i, o["apiVersion"], TidalAPIVersion)
				}
				kind, _ := o["kind"].(string)
				seenKinds[kind] = true
				typed := newTyped(kind)
				js, _ := json.Marshal(o)
				if err := json.Unmarshal(js, typed); err != nil {
					t.Fatalf("object %d: decode as Tidal %s: %v", i, kind, err)
				}
				back, _ := json.Marshal(typed)
				if want, got := testjson.Normalize(t, js), testjson.Normalize(t, back); !reflect.DeepEqual(want, got) {
					t.Errorf("object %d: Tidal's %s type does not carry every field\nwant %v\ngot  %v", i, kind, want, got)
				}
				for _, fe := range tidalv1alpha1.UnsupportedFields(typed) {
					unsupported[fe.Field]++
				}
				collectTypes(o, seenTypes)
			}
			for f, n := range unsupported {
				if n != 0 {
					t.Errorf("field %q: %d more warnings than fields Tidal does not support yet; warnings: %v", f, -n, res.Warnings)
				}
			}

			var out bytes.Buffer
			if err := res.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			rev, err := Convert(&out, Options{To: ToKEDA})
			if err != nil {
				t.Fatal(err)
			}
			if len(rev.Warnings) != 0 {
				t.Errorf("warnings converting back: %v", rev.Warnings)
			}
			back, err := rev.Objects()
			if err != nil {
				t.Fatal(err)
			}
			for i := range orig {
				want, _ := json.Marshal(orig[i])
				got, _ := json.Marshal(back[i])
				if !reflect.DeepEqual(testjson.Normalize(t, want), testjson.Normalize(t, got)) {
					t.Errorf("object %d: KEDA -> Tidal -> KEDA changed it\nwant %s\ngot  %s", i, want, got)
				}
			}
		})
	}
	for _, typ := range reg.Types() {
		if !seenTypes[typ] {
			t.Errorf("the corpus has no %q trigger; add a manifest using it", typ)
		}
	}
	for _, k := range convertibleKinds {
		if !seenKinds[k] {
			t.Errorf("the corpus has no %s", k)
		}
	}
}

// TestConvertKeepsLayout checks that comments and key order survive, so a reviewed manifest stays reviewable.
func TestConvertKeepsLayout(t *testing.T) {
	in := "# orders\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: a # the worker\nspec:\n" +
		"  scaleTargetRef:\n    name: a\n  maxReplicaCount: 3\n  minReplicaCount: 1\n  triggers:\n    - type: redis\n" +
		"      metadata:\n        listLength: \"5\"\n        address: r:6379\n        listName: q\n"
	res, err := Convert(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := res.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(in, "keda.sh/v1alpha1", "tidal.dev/v1alpha1", 1)
	if out.String() != want {
		t.Errorf("layout changed\nwant:\n%s\ngot:\n%s", want, out.String())
	}
}

// TestConvertWarnings converts `kubectl get -o yaml` output with fields Tidal cannot carry; the output and the
// warnings are golden.
func TestConvertWarnings(t *testing.T) {
	reg := registry.New()
	res := convertFile(t, "testdata/warn/kubectl-get.yaml", Options{KnownTriggerType: reg.Has})
	var out bytes.Buffer
	if err := res.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		out.WriteString("# warning: " + w.String() + "\n")
	}
	golden(t, "testdata/warn/kubectl-get.golden", out.Bytes())
	if res.Converted != 2 {
		t.Errorf("converted %d objects, want 2 (the Deployment passes through)", res.Converted)
	}
}

func TestConvertRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, in, want string
		opts           Options
	}{
		{name: "not YAML", in: "apiVersion: [", want: "document 1: invalid YAML"},
		{name: "scalar", in: "hello", want: "document 1: want a Kubernetes object (a YAML mapping), got a scalar"},
		{name: "no kind", in: "apiVersion: keda.sh/v1alpha1\nmetadata: {name: a}", want: "document 1: apiVersion and kind are required"},
		{name: "second document", in: "apiVersion: v1\nkind: ConfigMap\n---\n- a\n", want: "document 2: want a Kubernetes object"},
		{name: "empty", in: "---\n", want: "no Kubernetes objects in the input"},
		{name: "list without items", in: "apiVersion: v1\nkind: List\nitems: 3\n", want: "items: want a list"},
		{name: "bad direction", in: "apiVersion: v1\nkind: ConfigMap\n", opts: Options{To: "argo"}, want: `direction "argo"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(strings.NewReader(tc.in), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestToKEDARenamesTidalOnlyParts(t *testing.T) {
	in := "apiVersion: tidal.dev/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: a\n  annotations:\n" +
		"    autoscaling.tidal.dev/paused: \"true\"\nspec:\n  mode: direct\n  scaleTargetRef: {name: a}\n" +
		"  triggers: [{type: redis, metadata: {address: r, listName: q}}]\n"
	res, err := Convert(strings.NewReader(in), Options{To: ToKEDA})
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := res.Objects()
	o := objs[0]
	if o["apiVersion"] != KEDAAPIVersion {
		t.Errorf("apiVersion = %v", o["apiVersion"])
	}
	if _, ok := o["spec"].(map[string]any)["mode"]; ok {
		t.Error("spec.mode kept; KEDA has no such field")
	}
	ann := o["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann["autoscaling.keda.sh/paused"] != "true" {
		t.Errorf("annotations = %v, want autoscaling.keda.sh/paused", ann)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Field != "spec.mode" {
		t.Errorf("warnings = %v, want one about spec.mode", res.Warnings)
	}
}

func TestUnknownKEDAKindPassesThroughWithWarning(t *testing.T) {
	in := "apiVersion: keda.sh/v1alpha1\nkind: CloudEventSource\nmetadata:\n  name: events\n  namespace: a\nspec: {}\n"
	res, err := Convert(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := res.Objects()
	if res.Converted != 0 || objs[0]["apiVersion"] != KEDAAPIVersion {
		t.Errorf("converted %d, apiVersion %v; want it untouched", res.Converted, objs[0]["apiVersion"])
	}
	want := "document 1: CloudEventSource a/events: keda.sh/v1alpha1 CloudEventSource has no tidal.dev/v1alpha1 equivalent; passed through unchanged"
	if len(res.Warnings) != 1 || res.Warnings[0].String() != want {
		t.Errorf("warnings = %v, want [%s]", res.Warnings, want)
	}
}

func collectTypes(o map[string]any, seen map[string]bool) {
	spec, _ := o["spec"].(map[string]any)
	triggers, _ := spec["triggers"].([]any)
	for _, tr := range triggers {
		if m, ok := tr.(map[string]any); ok {
			if typ, ok := m["type"].(string); ok {
				seen[typ] = true
			}
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (run with -update after checking):\n%s", path, got)
	}
}

// kedaObjects returns valid KEDA objects of an UnsupportedField kind (both authentication kinds for
// TriggerAuthentication).
func kedaObjects(t *testing.T, kind string) []runtime.Object {
	t.Helper()
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns"}
	tm := func(k string) metav1.TypeMeta { return metav1.TypeMeta{APIVersion: KEDAAPIVersion, Kind: k} }
	triggers := []tidalv1alpha1.ScaleTriggers{{Type: "redis", Metadata: map[string]string{"address": "r:6379", "listName": "q"}}}
	switch kind {
	case tidalv1alpha1.KindScaledObject:
		return []runtime.Object{&tidalv1alpha1.ScaledObject{TypeMeta: tm(kind), ObjectMeta: meta,
			Spec: tidalv1alpha1.ScaledObjectSpec{ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "w"}, Triggers: triggers}}}
	case tidalv1alpha1.KindScaledJob:
		return []runtime.Object{&tidalv1alpha1.ScaledJob{TypeMeta: tm(kind), ObjectMeta: meta,
			Spec: tidalv1alpha1.ScaledJobSpec{Triggers: triggers, JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}}}
	case tidalv1alpha1.KindTriggerAuthentication:
		return []runtime.Object{
			&tidalv1alpha1.TriggerAuthentication{TypeMeta: tm(kind), ObjectMeta: meta},
			&tidalv1alpha1.ClusterTriggerAuthentication{TypeMeta: tm(tidalv1alpha1.KindClusterTriggerAuthentication), ObjectMeta: metav1.ObjectMeta{Name: "x"}},
		}
	}
	t.Fatalf("no KEDA object of kind %q: extend kedaObjects", kind)
	return nil
}

// TestConvertWarnsForEveryUnsupportedField converts, for every entry of tidalv1alpha1.NotSupportedYet, a KEDA
// object that sets it: the only warning names the field and says Tidal will refuse it.
func TestConvertWarnsForEveryUnsupportedField(t *testing.T) {
	for _, u := range tidalv1alpha1.NotSupportedYet() {
		t.Run(u.Kind+" "+u.Path, func(t *testing.T) {
			for _, obj := range kedaObjects(t, u.Kind) {
				raw, err := json.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				if res, err := Convert(bytes.NewReader(raw), Options{}); err != nil || len(res.Warnings) != 0 {
					t.Fatalf("%T without the field: err %v, warnings %v", obj, err, res.Warnings)
				}
				u.Example(obj)
				if raw, err = json.Marshal(obj); err != nil {
					t.Fatal(err)
				}
				res, err := Convert(bytes.NewReader(raw), Options{})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Warnings) != 1 || res.Warnings[0].Field != u.Path || !strings.Contains(res.Warnings[0].Message, "not supported yet") {
					t.Errorf("%T: warnings %v, want one on %s saying it is not supported yet", obj, res.Warnings, u.Path)
				}
			}
		})
	}
}
