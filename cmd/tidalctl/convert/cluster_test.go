package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/scalers/registry"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

var resources = map[string]string{
	"ScaledObject":                 "scaledobjects",
	"ScaledJob":                    "scaledjobs",
	"TriggerAuthentication":        "triggerauthentications",
	"ClusterTriggerAuthentication": "clustertriggerauthentications",
}

// TestCorpusAcceptedByAPIServer creates every converted corpus object in the embedded dev cluster with strict
// field validation: the CRD schema, its CEL rules and the field set all accept the converter's output.
func TestCorpusAcceptedByAPIServer(t *testing.T) {
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	ns := c.Namespace(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created := 0
	for _, path := range corpusFiles(t) {
		res := convertFile(t, path, Options{KnownTriggerType: reg.Has})
		objs, err := res.Objects()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			u := &unstructured.Unstructured{Object: o}
			gvr := schema.GroupVersionResource{Group: "tidal.dev", Version: "v1alpha1", Resource: resources[u.GetKind()]}
			name := fmt.Sprintf("%s %s/%s", filepath.Base(path), u.GetKind(), u.GetName())
			var ri dynamic.ResourceInterface
			if u.GetKind() == "ClusterTriggerAuthentication" {
				u.SetName(u.GetName() + "-" + ns) // cluster-scoped: unique per test run
				ri = dyn.Resource(gvr)
				t.Cleanup(func() {
					_ = dyn.Resource(gvr).Delete(context.Background(), u.GetName(), metav1.DeleteOptions{})
				})
			} else {
				u.SetNamespace(ns)
				ri = dyn.Resource(gvr).Namespace(ns)
			}
			got, err := ri.Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
			if err != nil {
				t.Errorf("%s: rejected by the API server: %v", name, err)
				continue
			}
			created++
			// Nothing the converter wrote was pruned: every spec field comes back.
			if want, back := u.Object["spec"], got.Object["spec"]; !containsAll(back, want) {
				t.Errorf("%s: the API server dropped spec fields\nsent %v\ngot  %v", name, want, back)
			}
		}
	}
	if created == 0 {
		t.Fatal("no object created")
	}
}

// containsAll reports whether got holds every key and value of want (got may add defaults).
func containsAll(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !containsAll(g[k], v) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !containsAll(g[i], w[i]) {
				return false
			}
		}
		return true
	case int, int64:
		return strings.TrimSpace(fmt.Sprint(got)) == fmt.Sprint(w)
	default:
		return fmt.Sprint(got) == fmt.Sprint(w)
	}
}
