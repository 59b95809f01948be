package tidal_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// flagDef matches flag definitions in a deployable's main.go: fs.String("name", ...), flag.BoolVar(&x, "name", ...),
// cmd.Flags().IntVarP(&x, "name", ...).
var flagDef = regexp.MustCompile(`\.(?:String|Bool|Int|Int32|Int64|Uint|Float64|Duration|StringSlice|StringArray|Var|Func|TextVar)(?:Var)?P?\((?:&?[\w.\[\]]+, )?"([a-z0-9-]+)"`)

// TestDeploymentArgsMatchBinaries checks every --flag the chart passes to a deployable against the flags its
// cmd/<deployable>/main.go defines, so a renamed flag fails here instead of in a crash-looping pod.
func TestDeploymentArgsMatchBinaries(t *testing.T) {
	objs, err := render(t, loadChart(t), allOn())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		image, _ := containers[0].(map[string]any)["image"].(string)
		binary := strings.SplitN(filepath.Base(image), ":", 2)[0]
		dir := filepath.Join("..", "..", "cmd", binary)
		defined := definedFlags(t, dir)
		if defined == nil {
			t.Logf("%s: no Go sources in %s yet; its flags are not checked", o.GetName(), dir)
			continue
		}
		args, _ := containers[0].(map[string]any)["args"].([]any)
		for _, a := range args {
			name := strings.TrimPrefix(strings.SplitN(a.(string), "=", 2)[0], "--")
			if !defined[name] {
				t.Errorf("%s passes --%s, which %s does not define", o.GetName(), name, binary)
			}
		}
	}
}

// definedFlags collects the flag names defined in the non-test Go files of dir; nil when there are none.
func definedFlags(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var out map[string]bool
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if out == nil {
			out = map[string]bool{}
		}
		for _, m := range flagDef.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		if strings.Contains(string(src), "tidalapp.RegisterOptions{") && !strings.HasSuffix(filepath.Clean(dir), filepath.Join("internal", "app")) {
			// The flags every deployable shares come from the app scaffold (internal/app: Flags.Register).
			for name := range definedFlags(t, filepath.Join(dir, "..", "..", "internal", "app")) {
				out[name] = true
			}
		}
		if strings.Contains(string(src), "NewCustomMetricsAdapterServerOptions()") {
			// The aggregated API server's own flags (sigs.k8s.io/custom-metrics-apiserver serving options).
			for _, f := range []string{"secure-port", "bind-address", "cert-dir", "tls-cert-file", "tls-private-key-file",
				"tls-min-version", "tls-cipher-suites", "authentication-kubeconfig", "authorization-kubeconfig", "client-ca-file"} {
				out[f] = true
			}
		}
	}
	return out
}
