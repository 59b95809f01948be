package triggers_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

func noEnv(string) (map[string]string, error) { return nil, nil }

// A ClusterTriggerAuthentication's spec.filePath reads a JSON object of parameters from a file under the root
// (--filepath-auth-root-path), confined to it even through a symbolic link; errors name the field and never the
// file's content; a namespaced TriggerAuthentication that got past the webhook with one is refused.
func TestFilePathParameters(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	root, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "redis"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		filepath.Join(root, "redis", "auth.json"): `{"password": "s3cret-from-file", "username": "app"}`,
		filepath.Join(root, "bad.json"):           `{"password": 42, "token": "do-not-print-me"}`,
		filepath.Join(outside, "stolen.json"):     `{"password": "outside-the-root"}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "stolen.json"), filepath.Join(root, "escape.json")); err != nil {
		t.Fatal(err)
	}
	cta := func(t *testing.T, path string) *tidalv1alpha1.AuthenticationRef {
		t.Helper()
		name := strings.ToLower(strings.NewReplacer("/", "-", ".", "-", "_", "-", " ", "-").Replace(e.NS + "-" + t.Name()))
		obj := &tidalv1alpha1.ClusterTriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{FilePath: path}}
		if _, err := e.Tidal.TidalV1alpha1().ClusterTriggerAuthentications().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.Tidal.TidalV1alpha1().ClusterTriggerAuthentications().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		return &tidalv1alpha1.AuthenticationRef{Name: name, Kind: tidalv1alpha1.KindClusterTriggerAuthentication}
	}
	r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal, ClusterObjectNamespace: e.NS, FileRoot: root}

	params, err := r.AuthParams(ctx, e.NS, cta(t, "redis/auth.json"), noEnv)
	if err != nil || params["password"] != "s3cret-from-file" || params["username"] != "app" || len(params) != 2 {
		t.Fatalf("params %v, %v", params, err)
	}
	for _, tc := range []struct {
		name, path, want string
		resolver         *triggers.Resolver
	}{
		{"a symbolic link out of the root", "escape.json", "spec.filePath", r},
		{"a missing file", "redis/none.json", "spec.filePath", r},
		{"not an object of strings", "bad.json", "not a JSON object of string values", r},
		{"no root configured", "redis/auth.json", "--filepath-auth-root-path",
			&triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal, ClusterObjectNamespace: e.NS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params, err := tc.resolver.AuthParams(ctx, e.NS, cta(t, tc.path), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("params %v, error %v, want one mentioning %q", params, err, tc.want)
			}
			for _, secret := range []string{"outside-the-root", "do-not-print-me", "s3cret-from-file"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}

	// The CRD schema admits filePath on a namespaced TriggerAuthentication (the webhook refuses it); resolution
	// refuses it too.
	ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "from-file", Namespace: e.NS},
		Spec: tidalv1alpha1.TriggerAuthenticationSpec{FilePath: "redis/auth.json"}}
	if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	params, err = r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: "from-file"}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "spec.filePath") || len(params) != 0 {
		t.Fatalf("namespaced filePath: params %v, error %v", params, err)
	}
}
