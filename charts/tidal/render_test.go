// Tests of the Tidal chart with the Helm Go SDK: lint, rendering with every toggle combination, values schema,
// an RBAC golden file, and (install_test.go) install, upgrade and uninstall in the embedded dev cluster.
package tidal_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// components are the deployables' values keys and component names.
var components = []struct{ key, name string }{
	{"operator", "operator"},
	{"metricsAdapter", "metrics-adapter"},
	{"nodeAutoscaler", "node-autoscaler"},
	{"virtualNode", "virtual-node"},
}

// kubeVersion is the dev cluster's Kubernetes version; Helm's client-only default (v1.20) is below the chart's
// kubeVersion constraint.
var kubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// clientOnly returns a Helm configuration that renders without a cluster.
func clientOnly() *action.Configuration {
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	return &action.Configuration{
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Releases:     storage.Init(driver.NewMemory()),
		Capabilities: caps,
		Log:          func(string, ...any) {},
	}
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(".")
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// render renders the chart client-side, as `helm template` does, and returns its objects.
func render(t testing.TB, c *chart.Chart, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderIn(t, c, "tidal-system", vals)
}

// renderIn renders release "tidal" into namespace ns.
func renderIn(t testing.TB, c *chart.Chart, ns string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	inst := action.NewInstall(clientOnly())
	inst.ClientOnly, inst.DryRun, inst.Replace, inst.KubeVersion = true, true, true, &kubeVersion
	inst.ReleaseName, inst.Namespace = "tidal", ns
	rel, err := inst.RunWithContext(context.Background(), c, vals)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("rendered YAML: %w\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	sort.Slice(objs, func(i, j int) bool { return objKey(objs[i]) < objKey(objs[j]) })
	return objs, nil
}

func objKey(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// vals builds a values map from dotted paths: vals("operator.enabled", false, ...).
func vals(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		path := strings.Split(kv[i].(string), ".")
		m := out
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[path[len(path)-1]] = kv[i+1]
	}
	return out
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{name: "defaults"},
		{name: "everything on", vals: allOn()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lint.AllWithKubeVersion(".", tc.vals, "tidal-system", &kubeVersion)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				}
			}
		})
	}
}

func allOn() map[string]any {
	return vals("nodeAutoscaler.enabled", true, "virtualNode.enabled", true, "serviceMonitor.enabled", true,
		"grafanaDashboard.enabled", true, "crds.templated", true, "operator.webhook.helmOwnedConfiguration", true,
		"metricsAdapter.apiService.podMetrics", true, "virtualNode.pricePerCPUHour", "0.05", "virtualNode.podStartSeconds", 2,
		"virtualNode.readableConfigMaps", []any{"tidal-system/tidal-process-images"},
		"operator.extraScaleTargets", []any{map[string]any{"apiGroup": "argoproj.io", "resources": []any{"rollouts"}}})
}

// TestRenderEveryToggleCombination renders the 16 combinations of the four deployables, each with the optional
// features off and on, and checks the invariants every rendering must keep.
func TestRenderEveryToggleCombination(t *testing.T) {
	c := loadChart(t)
	for mask := 0; mask < 1<<len(components); mask++ {
		for _, extras := range []bool{false, true} {
			v := map[string]any{}
			if extras {
				v = allOn()
			}
			var on []string
			for i, comp := range components {
				enabled := mask&(1<<i) != 0
				v[comp.key] = mergeMap(v[comp.key], map[string]any{"enabled": enabled})
				if enabled {
					on = append(on, comp.name)
				}
			}
			name := fmt.Sprintf("%s extras=%t", strings.Join(on, "+"), extras)
			if len(on) == 0 {
				name = fmt.Sprintf("none extras=%t", extras)
			}
			t.Run(name, func(t *testing.T) {
				objs, err := render(t, c, v)
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				checkRendering(t, objs, on, extras)
			})
		}
	}
}

func mergeMap(a any, b map[string]any) map[string]any {
	out := map[string]any{}
	if m, ok := a.(map[string]any); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func checkRendering(t *testing.T, objs []*unstructured.Unstructured, on []string, extras bool) {
	t.Helper()
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
		checkStrict(t, o)
	}
	deployments := map[string]*unstructured.Unstructured{}
	for _, d := range byKind["Deployment"] {
		deployments[d.GetLabels()["app.kubernetes.io/component"]] = d
	}
	if len(deployments) != len(on) {
		t.Errorf("%d Deployments for components %v", len(deployments), on)
	}
	serviceAccounts := names(byKind["ServiceAccount"])
	bound := map[string]bool{}
	for _, b := range append(byKind["ClusterRoleBinding"], byKind["RoleBinding"]...) {
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		for _, s := range subjects {
			bound[s.(map[string]any)["name"].(string)] = true
		}
	}
	for _, comp := range on {
		d, ok := deployments[comp]
		if !ok {
			t.Errorf("no Deployment for %s", comp)
			continue
		}
		checkPodSecurity(t, d)
		sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
		if !serviceAccounts[sa] {
			t.Errorf("%s: ServiceAccount %q is not rendered", comp, sa)
		}
		if !bound[sa] {
			t.Errorf("%s: ServiceAccount %q has no RoleBinding or ClusterRoleBinding", comp, sa)
		}
	}
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, r := range byKind[kind] {
			checkNoWildcards(t, r)
		}
	}
	has := func(s string) bool { return contains(on, s) }
	wantCount := func(kind string, want int) {
		if got := len(byKind[kind]); got != want {
			t.Errorf("%d %s objects, want %d", got, kind, want)
		}
	}
	apiServices := 0
	if has("metrics-adapter") {
		apiServices = 1
		if extras {
			apiServices = 2
		}
	}
	wantCount("APIService", apiServices)
	crds := 0
	if extras {
		crds = 6
	}
	wantCount("CustomResourceDefinition", crds)
	webhooks := 0
	if has("operator") { // helmOwnedConfiguration is on by default
		webhooks = 1
	}
	wantCount("ValidatingWebhookConfiguration", webhooks)
	monitors := 0
	if extras {
		monitors = len(on)
		if has("virtual-node") {
			monitors-- // no /metrics endpoint
		}
	}
	wantCount("ServiceMonitor", monitors)
	pdbs := 0
	for _, comp := range on {
		if comp != "virtual-node" {
			pdbs++
		}
	}
	wantCount("PodDisruptionBudget", pdbs)
}

func names(objs []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, o := range objs {
		out[o.GetName()] = true
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkStrict decodes objects of built-in kinds into their Go types, rejecting unknown or misspelled fields.
func checkStrict(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	gvk := o.GroupVersionKind()
	typed, err := scheme.Scheme.New(gvk)
	if err != nil {
		return // CRD kinds (ServiceMonitor, Certificate, APIService)
	}
	js, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, typed)
	if err != nil {
		t.Errorf("%s: %v", objKey(o), err)
	}
	for _, e := range strict {
		t.Errorf("%s: %v", objKey(o), e)
	}
	var _ runtime.Object = typed
}

func checkPodSecurity(t *testing.T, d *unstructured.Unstructured) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	want := map[string]any{
		"securityContext.runAsNonRoot":                           true,
		"securityContext.seccompProfile.type":                    "RuntimeDefault",
		"containers[0].securityContext.allowPrivilegeEscalation": false,
		"containers[0].securityContext.readOnlyRootFilesystem":   true,
		"containers[0].securityContext.capabilities.drop[0]":     "ALL",
	}
	for path, v := range want {
		if got := lookup(spec, path); fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s: pod spec %s = %v, want %v", d.GetName(), path, got, v)
		}
	}
	for _, path := range []string{"containers[0].resources.requests.cpu", "containers[0].resources.requests.memory", "containers[0].resources.limits.memory"} {
		if lookup(spec, path) == nil {
			t.Errorf("%s: pod spec %s is not set", d.GetName(), path)
		}
	}
}

// lookup follows a path like containers[0].securityContext.runAsNonRoot through decoded YAML.
func lookup(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[name]
		if hasIdx {
			var i int
			fmt.Sscanf(strings.TrimSuffix(idx, "]"), "%d", &i)
			s, ok := v.([]any)
			if !ok || i >= len(s) {
				return nil
			}
			v = s[i]
		}
	}
	return v
}

func checkNoWildcards(t *testing.T, role *unstructured.Unstructured) {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for i, r := range rules {
		rule := r.(map[string]any)
		for _, field := range []string{"verbs", "resources", "apiGroups", "nonResourceURLs"} {
			list, _ := rule[field].([]any)
			for _, v := range list {
				if s := fmt.Sprint(v); s == "*" || strings.HasPrefix(s, "*/") || strings.HasSuffix(s, "/*") {
					t.Errorf("%s rule %d: wildcard %s %q", objKey(role), i, field, s)
				}
			}
		}
	}
}

// TestRBACGolden fails when the rendered RBAC changes, e.g. gains a verb: review the new permission, then
// update testdata/rbac.golden with -update.
func TestRBACGolden(t *testing.T) {
	objs, err := render(t, loadChart(t), allOn())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, o := range objs {
		if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			verbs := strs(rule["verbs"])
			sort.Strings(verbs)
			names := strs(rule["resourceNames"])
			for _, g := range strs(rule["apiGroups"]) {
				for _, res := range strs(rule["resources"]) {
					if g == "" {
						g = "core"
					}
					line := fmt.Sprintf("%s %s: %s/%s", o.GetKind(), qualified(o), g, res)
					if len(names) > 0 {
						line += " (" + strings.Join(names, ",") + ")"
					}
					lines = append(lines, line+" ["+strings.Join(verbs, " ")+"]")
				}
			}
		}
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	path := "testdata/rbac.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("rendered RBAC differs from %s; review the permissions, then run with -update:\n%s", path, diffLines(string(want), got))
	}
}

func qualified(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func diffLines(want, got string) string {
	wl, gl := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		wl[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		gl[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(got, "\n") {
		if !wl[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	for _, l := range strings.Split(want, "\n") {
		if !gl[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

// TestValuesSchemaRejects: bad values fail before anything renders, with a message naming the value.
func TestValuesSchemaRejects(t *testing.T) {
	c := loadChart(t)
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{name: "replicas not a number", vals: vals("operator.replicas", "two"), want: "operator.replicas"},
		{name: "negative replicas", vals: vals("metricsAdapter.replicas", -1), want: "metricsAdapter.replicas"},
		{name: "misspelled key", vals: vals("operator.replica", 2), want: "replica"},
		{name: "unknown tls mode", vals: vals("metricsAdapter.tls.mode", "vault"), want: "metricsAdapter.tls.mode"},
		{name: "unknown expander", vals: vals("nodeAutoscaler.expander", "cheapest"), want: "nodeAutoscaler.expander"},
		{name: "unknown backend", vals: vals("virtualNode.backend", "docker"), want: "virtualNode.backend"},
		{name: "bad log level", vals: vals("operator.logLevel", "verbose"), want: "operator.logLevel"},
		{name: "port out of range", vals: vals("operator.webhook.port", 70000), want: "operator.webhook.port"},
		{name: "extra arg without dashes", vals: vals("operator.extraArgs", []any{"workers=3"}), want: "operator.extraArgs"},
		{name: "bad node name", vals: vals("virtualNode.nodeName", "Not_A_Name"), want: "virtualNode.nodeName"},
		{name: "price not a decimal", vals: vals("virtualNode.pricePerCPUHour", "cheap"), want: "virtualNode.pricePerCPUHour"},
		{name: "negative pod start", vals: vals("virtualNode.podStartSeconds", -1), want: "virtualNode.podStartSeconds"},
		{name: "secret mode without CA", vals: vals("metricsAdapter.tls.mode", "secret", "metricsAdapter.tls.secretName", "x"), want: "metricsAdapter.tls.caBundle"},
		{name: "no service account name", vals: vals("operator.serviceAccount.create", false), want: "operator.serviceAccount.name is required"},
		{name: "process backend without root", vals: vals("virtualNode.enabled", true, "virtualNode.backend", "process"), want: "virtualNode.backend: process"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, c, tc.vals)
			if err == nil {
				t.Fatal("rendered; want the values rejected")
			}
			if msg := schemaPath(err.Error()); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// schemaPath turns the schema validator's JSON pointers (/operator/replicas) into value paths.
func schemaPath(msg string) string {
	return strings.NewReplacer("'/", "'", "/", ".").Replace(msg)
}

// TestTemplatedCRDsMatchCRDDir: the opt-in templated CRDs are the crds/ files plus Helm's keep policy.
func TestTemplatedCRDsMatchCRDDir(t *testing.T) {
	objs, err := render(t, loadChart(t), vals("crds.templated", true))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir("crds")
	n := 0
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		n++
		if o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("%s: no helm.sh/resource-policy: keep", o.GetName())
		}
		plural, group, _ := strings.Cut(o.GetName(), ".")
		raw, err := os.ReadFile("crds/" + group + "_" + plural + ".yaml") // controller-gen's file naming
		if err != nil {
			t.Errorf("%s: %v", o.GetName(), err)
			continue
		}
		var want map[string]any
		if err := yaml.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := unstructured.NestedMap(o.Object, "spec"); fmt.Sprint(got) != fmt.Sprint(want["spec"]) {
			t.Errorf("%s: templated spec differs from crds/", o.GetName())
		}
	}
	if n != len(files) {
		t.Errorf("%d templated CRDs, %d files in crds/", n, len(files))
	}
}

// TestNotes checks NOTES.txt tells the next step.
func TestNotes(t *testing.T) {
	c := loadChart(t)
	inst := action.NewInstall(clientOnly())
	inst.ClientOnly, inst.DryRun, inst.ReleaseName, inst.Namespace = true, true, "tidal", "tidal-system"
	inst.KubeVersion = &kubeVersion
	rel, err := inst.RunWithContext(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rollout status", "tidalctl convert", "tidalctl status"} {
		if !strings.Contains(rel.Info.Notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, rel.Info.Notes)
		}
	}
	const cleanup = "kubectl delete validatingwebhookconfiguration tidal-validating-webhook"
	if strings.Contains(rel.Info.Notes, cleanup) {
		t.Errorf("NOTES.txt asks for a manual clean-up although Helm owns the webhook configuration by default")
	}
	// With the operator owning the configuration, uninstall leaves it: the notes must say how to remove it.
	rel, err = inst.RunWithContext(context.Background(), c, vals("operator.webhook.helmOwnedConfiguration", false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rel.Info.Notes, cleanup) {
		t.Errorf("NOTES.txt lacks %q with helmOwnedConfiguration=false:\n%s", cleanup, rel.Info.Notes)
	}
}

// TestAdapterTLSModes: each way of getting the aggregated API's certificate renders what it needs.
func TestAdapterTLSModes(t *testing.T) {
	c := loadChart(t)
	cases := []struct {
		name      string
		vals      map[string]any
		wantKinds map[string]int
		check     func(t *testing.T, apiService *unstructured.Unstructured)
	}{
		{
			name:      "helm generates a CA",
			wantKinds: map[string]int{"Secret": 3, "Certificate": 0, "Issuer": 0},
			check: func(t *testing.T, a *unstructured.Unstructured) {
				if ca, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); ca == "" {
					t.Error("APIService has no caBundle")
				}
			},
		},
		{
			name:      "cert-manager with a self-signed issuer",
			vals:      vals("metricsAdapter.tls.mode", "certManager"),
			wantKinds: map[string]int{"Secret": 0, "Certificate": 3, "Issuer": 2},
			check: func(t *testing.T, a *unstructured.Unstructured) {
				if a.GetAnnotations()["cert-manager.io/inject-ca-from"] != "tidal-system/tidal-metrics-adapter" {
					t.Errorf("APIService annotations %v", a.GetAnnotations())
				}
			},
		},
		{
			name: "cert-manager with a cluster issuer",
			vals: vals("metricsAdapter.tls.mode", "certManager",
				"metricsAdapter.tls.certManager.issuerRef", map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}),
			wantKinds: map[string]int{"Secret": 0, "Certificate": 2, "Issuer": 0},
		},
		{
			name:      "existing secret",
			vals:      vals("metricsAdapter.tls.mode", "secret", "metricsAdapter.tls.secretName", "my-tls", "metricsAdapter.tls.caBundle", "Q0E=", "metricsAdapter.tls.clientSecretName", "my-operator-tls"),
			wantKinds: map[string]int{"Secret": 0, "Certificate": 0, "Issuer": 0},
			check: func(t *testing.T, a *unstructured.Unstructured) {
				if ca, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); ca != "Q0E=" {
					t.Errorf("caBundle %q", ca)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, c, tc.vals)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			var apiService *unstructured.Unstructured
			for _, o := range objs {
				counts[o.GetKind()]++
				if o.GetKind() == "APIService" {
					apiService = o
				}
				if o.GetKind() == "Deployment" && o.GetLabels()["app.kubernetes.io/component"] == "metrics-adapter" {
					vols, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
					if !strings.Contains(fmt.Sprint(vols), "secretName:"+secretNameFor(tc.vals)) {
						t.Errorf("adapter volumes %v do not mount %s", vols, secretNameFor(tc.vals))
					}
				}
			}
			for kind, n := range tc.wantKinds {
				if counts[kind] != n {
					t.Errorf("%d %s objects, want %d", counts[kind], kind, n)
				}
			}
			if apiService == nil {
				t.Fatal("no APIService")
			}
			if tc.check != nil {
				tc.check(t, apiService)
			}
		})
	}
}

func secretNameFor(v map[string]any) string {
	if ma, ok := v["metricsAdapter"].(map[string]any); ok {
		if tls, ok := ma["tls"].(map[string]any); ok && tls["secretName"] != nil {
			return tls["secretName"].(string)
		}
	}
	return "tidal-metrics-adapter-tls"
}

// The virtual node's containerd backend: the flags reach the binary, and the socket and the state directory are
// mounted from the host at their host paths (containerd bind-mounts pod volumes from the state directory); no
// other backend mounts anything from the host.
func TestVirtualNodeContainerdBackendMountsTheHostSocket(t *testing.T) {
	c := loadChart(t)
	deployment := func(t *testing.T, v map[string]any) map[string]any {
		t.Helper()
		objs, err := render(t, c, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "Deployment" && o.GetName() == "tidal-virtual-node" {
				spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
				return spec
			}
		}
		t.Fatal("no tidal-virtual-node Deployment rendered")
		return nil
	}
	hostPaths := func(spec map[string]any) map[string]string {
		out := map[string]string{}
		vols, _ := spec["volumes"].([]any)
		for _, v := range vols {
			m := v.(map[string]any)
			if hp, ok := m["hostPath"].(map[string]any); ok {
				out[m["name"].(string)] = fmt.Sprint(hp["path"])
			}
		}
		return out
	}
	t.Run("sim mounts nothing from the host", func(t *testing.T) {
		if hp := hostPaths(deployment(t, vals("virtualNode.enabled", true))); len(hp) != 0 {
			t.Errorf("hostPath volumes %v with backend sim", hp)
		}
	})
	t.Run("nodeAddress replaces the pod IP", func(t *testing.T) {
		spec := deployment(t, vals("virtualNode.enabled", true, "virtualNode.nodeAddress", "127.0.0.1"))
		if args := strs(lookup(spec, "containers[0].args")); !contains(args, "--node-address=127.0.0.1") {
			t.Errorf("args %v lack --node-address=127.0.0.1", args)
		}
		if env := fmt.Sprint(lookup(spec, "containers[0].env")); strings.Contains(env, "status.podIP") {
			t.Errorf("env still reads status.podIP: %s", env)
		}
	})
	t.Run("placement inputs", func(t *testing.T) {
		spec := deployment(t, vals("virtualNode.enabled", true, "virtualNode.pricePerCPUHour", "0.05", "virtualNode.podStartSeconds", 2.5))
		args := strs(lookup(spec, "containers[0].args"))
		for _, want := range []string{"--price-per-cpu-hour=0.05", "--pod-start-seconds=2.5"} {
			if !contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
		}
		for _, a := range strs(lookup(deployment(t, vals("virtualNode.enabled", true)), "containers[0].args")) {
			if strings.HasPrefix(a, "--price-per-cpu-hour") || strings.HasPrefix(a, "--pod-start-seconds") {
				t.Errorf("unset values pass %s", a)
			}
		}
	})
	t.Run("containerd", func(t *testing.T) {
		spec := deployment(t, vals("virtualNode.enabled", true, "virtualNode.backend", "containerd",
			"virtualNode.containerd.socket", "/run/ctd/ctd.sock", "virtualNode.containerd.stateDir", "/var/lib/vn",
			"virtualNode.containerd.apiServer", "10.0.0.1:6443",
			"virtualNode.podSecurityContext", map[string]any{"runAsUser": 0, "runAsNonRoot": false}))
		args := strs(lookup(spec, "containers[0].args"))
		for _, want := range []string{"--backend=containerd", "--containerd-address=/run/ctd/ctd.sock", "--containerd-namespace=tidal",
			"--containerd-state-dir=/var/lib/vn", "--containerd-apiserver=10.0.0.1:6443"} {
			if !contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
		}
		hp := hostPaths(spec)
		if hp["containerd-socket"] != "/run/ctd/ctd.sock" || hp["containerd-state"] != "/var/lib/vn" {
			t.Errorf("hostPath volumes %v, want the socket and the state dir", hp)
		}
		mounts := map[string]string{}
		for _, m := range lookup(spec, "containers[0].volumeMounts").([]any) {
			mm := m.(map[string]any)
			mounts[mm["name"].(string)] = fmt.Sprint(mm["mountPath"])
		}
		if mounts["containerd-socket"] != "/run/ctd/ctd.sock" || mounts["containerd-state"] != "/var/lib/vn" {
			t.Errorf("mounts %v, want the host paths", mounts)
		}
		if got := lookup(spec, "securityContext.runAsUser"); fmt.Sprint(got) != "0" {
			t.Errorf("pod securityContext.runAsUser = %v, want the virtualNode override 0", got)
		}
	})
}

// triggerAuthFiles mounts the Secret into the operator and the metrics adapter and points
// --filepath-auth-root-path at it; unset, neither gets the flag.
func TestTriggerAuthFilesMountIntoOperatorAndAdapter(t *testing.T) {
	c := loadChart(t)
	specs := func(t *testing.T, v map[string]any) map[string]map[string]any {
		t.Helper()
		objs, err := render(t, c, v)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for _, o := range objs {
			if o.GetKind() == "Deployment" && (o.GetName() == "tidal-operator" || o.GetName() == "tidal-metrics-adapter") {
				spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
				out[o.GetName()] = spec
			}
		}
		if len(out) != 2 {
			t.Fatalf("rendered %d of the operator and adapter Deployments", len(out))
		}
		return out
	}
	for name, spec := range specs(t, vals()) {
		if args := fmt.Sprint(strs(lookup(spec, "containers[0].args"))); strings.Contains(args, "filepath-auth-root-path") {
			t.Errorf("%s: args %s without triggerAuthFiles", name, args)
		}
	}
	for name, spec := range specs(t, vals("triggerAuthFiles.secretName", "scaler-creds")) {
		if args := strs(lookup(spec, "containers[0].args")); !contains(args, "--filepath-auth-root-path=/var/run/tidal/auth-files") {
			t.Errorf("%s: args %v lack --filepath-auth-root-path", name, args)
		}
		mounted := false
		for _, m := range lookup(spec, "containers[0].volumeMounts").([]any) {
			mm := m.(map[string]any)
			mounted = mounted || (mm["name"] == "auth-files" && mm["mountPath"] == "/var/run/tidal/auth-files" && mm["readOnly"] == true)
		}
		secret := false
		for _, v := range spec["volumes"].([]any) {
			vm := v.(map[string]any)
			if s, ok := vm["secret"].(map[string]any); ok && vm["name"] == "auth-files" {
				secret = s["secretName"] == "scaler-creds"
			}
		}
		if !mounted || !secret {
			t.Errorf("%s: the scaler-creds Secret is not mounted read-only at /var/run/tidal/auth-files (mount %v, volume %v)", name, mounted, secret)
		}
	}
}

// TestOperatorShardsAboveOneReplica: leaderElect means one writer per object, so one replica elects a leader and
// more replicas shard the objects on Leases, with the Lease permissions sharding needs; leaderElect false is
// left alone.
func TestOperatorShardsAboveOneReplica(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct {
		name       string
		vals       map[string]any
		wantArgs   []string
		wantShards bool
	}{
		{name: "one replica elects a leader", vals: vals("operator.replicas", 1), wantArgs: []string{"--leader-elect=true"}},
		{name: "three replicas shard", vals: vals("operator.replicas", 3), wantArgs: []string{"--leader-elect=false", "--sharding=leases"}, wantShards: true},
		{name: "leaderElect off is left alone", vals: vals("operator.replicas", 3, "operator.leaderElect", false), wantArgs: []string{"--leader-elect=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, c, tc.vals)
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			listLeases := false
			for _, o := range objs {
				switch {
				case o.GetKind() == "Deployment" && o.GetName() == "tidal-operator":
					containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
					args = strs(containers[0].(map[string]any)["args"])
				case o.GetKind() == "Role" && o.GetName() == "tidal-operator":
					rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
					for _, r := range rules {
						rule := r.(map[string]any)
						if slices.Contains(strs(rule["resources"]), "leases") && slices.Contains(strs(rule["verbs"]), "list") {
							listLeases = true
						}
					}
				}
			}
			for _, want := range tc.wantArgs {
				if !slices.Contains(args, want) {
					t.Errorf("operator args %v lack %s", args, want)
				}
			}
			if got := slices.Contains(args, "--sharding=leases"); got != tc.wantShards {
				t.Errorf("--sharding=leases passed: %v, want %v", got, tc.wantShards)
			}
			if listLeases != tc.wantShards {
				t.Errorf("operator Role may list leases: %v, want %v", listLeases, tc.wantShards)
			}
		})
	}
}

// strategy is each deployable's Deployment strategy: Kubernetes' default unless set (the container node, where
// pods share the host's network, needs Recreate).
func TestDeploymentStrategy(t *testing.T) {
	c := loadChart(t)
	strategies := func(t *testing.T, v map[string]any) map[string]any {
		t.Helper()
		objs, err := render(t, c, v)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for _, o := range objs {
			if o.GetKind() == "Deployment" {
				s, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "strategy")
				out[o.GetName()] = s
			}
		}
		return out
	}
	t.Run("default", func(t *testing.T) {
		for name, s := range strategies(t, vals("nodeAutoscaler.enabled", true)) {
			if s != nil {
				t.Errorf("%s: strategy %v, want none (Kubernetes' default)", name, s)
			}
		}
	})
	t.Run("recreate", func(t *testing.T) {
		recreate := map[string]any{"type": "Recreate"}
		got := strategies(t, vals("nodeAutoscaler.enabled", true, "operator.strategy", recreate,
			"metricsAdapter.strategy", recreate, "nodeAutoscaler.strategy", recreate))
		for _, name := range []string{"tidal-operator", "tidal-metrics-adapter", "tidal-node-autoscaler"} {
			if fmt.Sprint(got[name]) != "map[type:Recreate]" {
				t.Errorf("%s: strategy %v, want Recreate", name, got[name])
			}
		}
	})
}

// TestAdapterShardsAboveOneReplica: more than one metrics-adapter replica split the objects on Leases, reach each
// other's stream by pod IP (verifying the Service's name) and may manage their member Leases; one replica does not.
func TestAdapterShardsAboveOneReplica(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct {
		name     string
		replicas int
		sharded  bool
	}{
		{name: "one replica", replicas: 1},
		{name: "three replicas shard", replicas: 3, sharded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, c, vals("metricsAdapter.replicas", tc.replicas))
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			podIP, leases := false, false
			for _, o := range objs {
				switch {
				case o.GetKind() == "Deployment" && o.GetName() == "tidal-metrics-adapter":
					containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
					ctr := containers[0].(map[string]any)
					args = strs(ctr["args"])
					env, _ := ctr["env"].([]any)
					for _, e := range env {
						ev := e.(map[string]any)
						path, _, _ := unstructured.NestedString(ev, "valueFrom", "fieldRef", "fieldPath")
						podIP = podIP || ev["name"] == "POD_IP" && path == "status.podIP"
					}
				case o.GetKind() == "Role" && o.GetName() == "tidal-metrics-adapter":
					rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
					for _, r := range rules {
						rule := r.(map[string]any)
						verbs := strs(rule["verbs"])
						if slices.Contains(strs(rule["resources"]), "leases") && slices.Contains(verbs, "create") &&
							slices.Contains(verbs, "list") && slices.Contains(verbs, "update") {
							leases = true
						}
					}
				}
			}
			if got := slices.Contains(args, "--sharding=leases"); got != tc.sharded {
				t.Errorf("--sharding=leases in %v: %v, want %v", args, got, tc.sharded)
			}
			wantName := "--stream-peer-server-name=tidal-metrics-adapter." + releaseNamespace(t, objs) + ".svc"
			if got := slices.Contains(args, wantName); got != tc.sharded {
				t.Errorf("%s in %v: %v, want %v", wantName, args, got, tc.sharded)
			}
			if podIP != tc.sharded || leases != tc.sharded {
				t.Errorf("POD_IP env %v, Lease Role %v; want both %v", podIP, leases, tc.sharded)
			}
		})
	}
}

// releaseNamespace is the namespace the chart's namespaced objects were rendered into.
func releaseNamespace(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			return o.GetNamespace()
		}
	}
	t.Fatal("no Deployment rendered")
	return ""
}

// The virtual node's service account reads no Secret or ConfigMap by default: its pods' are read with the node
// identity (system:node:<nodeName>, through a CSR it may request), limited by the Node authorizer to what its pods
// reference. nodeIdentity=serviceaccount gives it get (never list or watch) instead; readableSecrets and
// readableConfigMaps give it get on those objects by name.
func TestVirtualNodeReadsSecretsOnlyAsItsNode(t *testing.T) {
	c := loadChart(t)
	rbac := func(t *testing.T, v map[string]any) (rules map[string][]string, args []string) {
		t.Helper()
		objs, err := render(t, c, v)
		if err != nil {
			t.Fatal(err)
		}
		rules = map[string][]string{}
		for _, o := range objs {
			switch {
			case o.GetKind() == "Deployment" && o.GetName() == "tidal-virtual-node":
				args = strs(lookup(o.Object, "spec.template.spec.containers[0].args"))
			case (o.GetKind() == "ClusterRole" || o.GetKind() == "Role") && strings.HasPrefix(o.GetName(), "tidal-virtual-node"):
				rs, _, _ := unstructured.NestedSlice(o.Object, "rules")
				for _, r := range rs {
					rule := r.(map[string]any)
					for _, res := range strs(rule["resources"]) {
						key := o.GetKind() + " " + qualified(o) + " " + res
						if names := strs(rule["resourceNames"]); len(names) > 0 {
							key += " " + strings.Join(names, ",")
						}
						rules[key] = append(rules[key], strs(rule["verbs"])...)
					}
				}
			}
		}
		return rules, args
	}
	readsAny := func(rules map[string][]string) []string {
		var out []string
		for k := range rules {
			if f := strings.Fields(k); len(f) == 3 && (f[2] == "secrets" || f[2] == "configmaps") {
				out = append(out, k)
			}
		}
		return out
	}
	t.Run("default: node identity", func(t *testing.T) {
		rules, args := rbac(t, vals("virtualNode.enabled", true))
		if r := readsAny(rules); len(r) != 0 {
			t.Errorf("service account reads %v", r)
		}
		if v := rules["ClusterRole tidal-virtual-node certificatesigningrequests/nodeclient"]; !contains(v, "create") {
			t.Errorf("no create on certificatesigningrequests/nodeclient: %v", rules)
		}
		if v := rules["ClusterRole tidal-virtual-node certificatesigningrequests"]; !contains(v, "create") || !contains(v, "watch") {
			t.Errorf("certificatesigningrequests verbs %v, want create and watch", v)
		}
		if !contains(args, "--node-identity=csr") {
			t.Errorf("args %v lack --node-identity=csr", args)
		}
	})
	t.Run("serviceaccount", func(t *testing.T) {
		rules, args := rbac(t, vals("virtualNode.enabled", true, "virtualNode.nodeIdentity", "serviceaccount"))
		for _, res := range []string{"secrets", "configmaps"} {
			if v := rules["ClusterRole tidal-virtual-node "+res]; len(v) != 1 || v[0] != "get" {
				t.Errorf("%s verbs %v, want only get", res, v)
			}
		}
		if _, ok := rules["ClusterRole tidal-virtual-node certificatesigningrequests/nodeclient"]; ok {
			t.Error("CSR permissions without the csr node identity")
		}
		if !contains(args, "--node-identity=serviceaccount") {
			t.Errorf("args %v lack --node-identity=serviceaccount", args)
		}
	})
	t.Run("readable objects by name", func(t *testing.T) {
		rules, _ := rbac(t, vals("virtualNode.enabled", true, "virtualNode.readableSecrets", []any{"tidal-system/aci-creds"},
			"virtualNode.readableConfigMaps", []any{"tidal-system/images", "other/cfg"}))
		want := map[string][]string{
			"Role tidal-system/tidal-virtual-node-reads secrets aci-creds": {"get"},
			"Role tidal-system/tidal-virtual-node-reads configmaps images": {"get"},
			"Role other/tidal-virtual-node-reads configmaps cfg":           {"get"},
		}
		for k, v := range want {
			if got := rules[k]; fmt.Sprint(got) != fmt.Sprint(v) {
				t.Errorf("%s: verbs %v, want %v (rules %v)", k, got, v, rules)
			}
		}
		if r := readsAny(rules); len(r) != 0 {
			t.Errorf("service account reads %v beyond the named objects", r)
		}
	})
	t.Run("bad reference", func(t *testing.T) {
		if _, err := render(t, c, vals("virtualNode.enabled", true, "virtualNode.readableSecrets", []any{"no-namespace"})); err == nil {
			t.Error("readableSecrets entry without a namespace accepted")
		}
		if _, err := render(t, c, vals("virtualNode.enabled", true, "virtualNode.nodeIdentity", "token")); err == nil {
			t.Error("nodeIdentity token accepted")
		}
	})
}

// The process backend renders once the virtual node runs as root (its sandbox switches uid and namespaces), with
// the backend flag on the container.
func TestProcessBackendNeedsRoot(t *testing.T) {
	c := loadChart(t)
	objs, err := render(t, c, vals("virtualNode.enabled", true, "virtualNode.backend", "process",
		"virtualNode.securityContext", map[string]any{"runAsUser": 0, "runAsNonRoot": false,
			"capabilities": map[string]any{"add": []any{"SYS_ADMIN", "SETUID", "SETGID"}}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || !strings.Contains(o.GetName(), "virtual-node") {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		ctr := containers[0].(map[string]any)
		if uid, _, _ := unstructured.NestedInt64(ctr, "securityContext", "runAsUser"); uid != 0 {
			t.Errorf("virtual node runs as uid %d, want 0", uid)
		}
		if !strings.Contains(fmt.Sprint(ctr["args"]), "--backend=process") {
			t.Errorf("args %v lack --backend=process", ctr["args"])
		}
		return
	}
	t.Fatal("no virtual node Deployment rendered")
}
