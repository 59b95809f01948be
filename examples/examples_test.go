// Package examples_test applies the manifests of examples/ that use Tidal's workload API (ScaledObject,
// ScaledJob, TriggerAuthentication, ClusterTriggerAuthentication) to the dev cluster, each in a namespace of its
// own, and runs the operator's admission checks on every Tidal object in it, so an example that the API server or
// the webhook would refuse fails here. NodeGroup and virtual-node examples are tested by their packages.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/webhook"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/scalers/registry"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// workloadKinds are the kinds whose examples this test owns.
var workloadKinds = map[string]bool{"ScaledObject": true, "ScaledJob": true, "TriggerAuthentication": true, "ClusterTriggerAuthentication": true}

func TestExamplesApplyAndPassAdmission(t *testing.T) {
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	tc, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := split(t, raw)
		owned := false
		for _, d := range docs {
			owned = owned || workloadKinds[kind(t, d)]
		}
		if !owned {
			continue
		}
		t.Run(f, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns := c.Namespace(t)
			// ClusterTriggerAuthentications read their Secrets from the operator's namespace: the test's here.
			// A no-op logger: the scalers the checks build may log from their own goroutines after the test ends.
			v := &webhook.Validator{Kube: c.Client, Tidal: tc, Registry: registry.New(), Logger: zap.NewNop(),
				Resolver: &triggers.Resolver{Kube: c.Client, Tidal: tc, ClusterObjectNamespace: ns}}
			var objs []*unstructured.Unstructured
			var err error
			for attempt := 1; attempt <= 3; attempt++ { // an API server busy with other packages' CRD installs
				if objs, err = devcluster.ApplyYAML(ctx, c.Config, ns, raw); err == nil {
					break
				}
				t.Logf("%s: apply, attempt %d: %v", f, attempt, err)
				time.Sleep(2 * time.Second)
			}
			if err != nil {
				t.Fatalf("%s: apply: %v", f, err)
			}
			if len(objs) != len(docs) {
				t.Fatalf("%s: applied %d of %d objects", f, len(objs), len(docs))
			}
			for _, o := range objs {
				if o.GetKind() == "ClusterTriggerAuthentication" {
					name := o.GetName()
					t.Cleanup(func() {
						_ = tc.TidalV1alpha1().ClusterTriggerAuthentications().Delete(context.Background(), name, metav1.DeleteOptions{})
					})
					clusterSecrets(ctx, t, c, tc, name, ns)
				}
			}
			// After the apply, so the Secrets and ConfigMaps the authentications name exist and the webhook's
			// trigger checks resolve them (the webhook skips a trigger whose authentication is not there yet).
			for _, d := range docs {
				k := kind(t, d)
				seen[k]++
				errs := admit(ctx, t, v, k, ns, d)
				for attempt := 1; attempt < 3 && internal(errs); attempt++ { // an API call of the checks failed
					t.Logf("%s: admission of the %s, attempt %d: %v", f, k, attempt, errs)
					time.Sleep(2 * time.Second)
					errs = admit(ctx, t, v, k, ns, d)
				}
				if len(errs) > 0 {
					t.Fatalf("%s: the webhook refuses the %s: %v", f, k, errs)
				}
			}
		})
	}
	for _, k := range []string{"ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"} {
		if seen[k] == 0 {
			t.Errorf("no %s in examples/", k)
		}
	}
	// Every authentication source Tidal reads has an example.
	all := ""
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	for _, src := range []string{"secretTargetRef:", "configMapTargetRef:", "env:\n    - parameter:", "boundServiceAccountToken:",
		"provider: aws\n", "provider: azure-workload\n", "provider: gcp\n"} {
		if !strings.Contains(all, src) {
			t.Errorf("no TriggerAuthentication example uses %s", strings.TrimSuffix(strings.SplitN(src, "\n", 2)[0], ":"))
		}
	}
}

// internal reports whether errs holds an error of the checks' own API calls rather than a verdict on the object.
func internal(errs field.ErrorList) bool {
	for _, e := range errs {
		if e.Type == field.ErrorTypeInternal {
			return true
		}
	}
	return false
}

// clusterSecrets creates, in the namespace standing for the operator's, the Secrets a ClusterTriggerAuthentication
// names (an install keeps them in tidal-system), so the triggers that use it are checked with their credentials.
func clusterSecrets(ctx context.Context, t *testing.T, c *devcluster.Cluster, tc tidalclient.Interface, name, ns string) {
	t.Helper()
	cta, err := tc.TidalV1alpha1().ClusterTriggerAuthentications().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range cta.Spec.SecretTargetRef {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ns}, StringData: map[string]string{ref.Key: "example"}}
		if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// admit runs what the operator's webhook runs for one document of a Tidal kind (nil for other kinds).
func admit(ctx context.Context, t *testing.T, v *webhook.Validator, k, ns string, doc []byte) field.ErrorList {
	t.Helper()
	strict := func(into any) {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("%s does not decode strictly: %v", k, err)
		}
	}
	switch k {
	case "ScaledObject":
		var so tidalv1alpha1.ScaledObject
		strict(&so)
		so.Namespace = ns
		return v.ValidateScaledObject(ctx, &so)
	case "ScaledJob":
		var sj tidalv1alpha1.ScaledJob
		strict(&sj)
		sj.Namespace = ns
		return v.ValidateScaledJob(ctx, &sj)
	case "TriggerAuthentication":
		var ta tidalv1alpha1.TriggerAuthentication
		strict(&ta)
		return append(ta.Validate(), tidalv1alpha1.UnsupportedFields(&ta)...)
	case "ClusterTriggerAuthentication":
		var cta tidalv1alpha1.ClusterTriggerAuthentication
		strict(&cta)
		return append(cta.Validate(), tidalv1alpha1.UnsupportedFields(&cta)...)
	}
	return nil
}

func split(t *testing.T, raw []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		d, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(d)) > 0 && kind(t, d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func kind(t *testing.T, doc []byte) string {
	t.Helper()
	var m struct{ Kind string }
	if err := yaml.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m.Kind
}
