//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var updateRBAC = flag.Bool("update-rbac", false, "rewrite testdata/can-i.golden from what the cluster grants")

// probe is one question asked of the API server's authorizer for every Tidal service account: what the chart
// grants (each deployable's own needs) and what no Tidal pod may have (escalation, other namespaces' secrets
// written, RBAC, CRDs, nodes deleted by anything but the node autoscaler).
type probe struct {
	verb, group, resource, subresource, namespace string
}

var probes = []probe{
	{"get", "", "secrets", "", "kube-system"},
	{"list", "", "secrets", "", ""},
	{"create", "", "secrets", "", namespace},
	{"delete", "", "secrets", "", "kube-system"},
	{"get", "", "configmaps", "", "kube-system"},
	{"create", "", "pods", "", "default"},
	{"delete", "", "pods", "", "default"},
	{"create", "", "pods", "eviction", "default"},
	{"list", "", "pods", "", ""},
	{"update", "", "pods", "status", "default"},
	{"patch", "", "pods", "", "default"},
	{"list", "policy", "poddisruptionbudgets", "", ""},
	{"create", "", "serviceaccounts", "token", "default"},
	{"get", "", "serviceaccounts", "", "default"},
	{"create", "", "nodes", "", ""},
	{"delete", "", "nodes", "", ""},
	{"patch", "", "nodes", "status", ""},
	{"get", "", "nodes", "metrics", ""},
	{"get", "", "nodes", "proxy", ""},
	{"update", "apps", "deployments", "scale", "default"},
	{"delete", "apps", "deployments", "", "default"},
	{"create", "batch", "jobs", "", "default"},
	{"create", "autoscaling", "horizontalpodautoscalers", "", "default"},
	{"update", "tidal.dev", "scaledobjects", "status", "default"},
	{"create", "tidal.dev", "scaledobjects", "", "default"},
	{"update", "tidal.dev", "nodegroups", "status", ""},
	{"create", "tidal.dev", "capacityrequests", "", "default"},
	{"update", "tidal.dev", "capacityrequests", "status", "default"},
	{"create", "coordination.k8s.io", "leases", "", namespace},
	{"create", "", "events", "", "default"},
	{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", ""},
	{"update", "apiregistration.k8s.io", "apiservices", "", ""},
	{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""},
	{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""},
	{"bind", "rbac.authorization.k8s.io", "clusterroles", "", ""},
	{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", ""},
	{"impersonate", "", "users", "", ""},
	{"*", "*", "*", "", ""},
}

func (p probe) String() string {
	r := p.resource
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	g := p.group
	if g == "" {
		g = "core"
	}
	ns := p.namespace
	if ns == "" {
		ns = "(cluster)"
	}
	return fmt.Sprintf("%s %s/%s in %s", p.verb, g, r, ns)
}

// checkRBAC asks the authorizer, as each Tidal pod's service account, every probe, and compares the answers with
// testdata/can-i.golden: a pod given more than the chart's roles (or less) fails the test.
func (e *env) checkRBAC(ctx context.Context) {
	t := e.t
	pods, err := e.dc.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]bool{}
	for _, p := range pods.Items {
		accounts[p.Spec.ServiceAccountName] = true
	}
	if len(accounts) < 4 {
		t.Fatalf("want the service accounts of four deployables, found %v", accounts)
	}
	var lines []string
	for sa := range accounts {
		for _, p := range probes {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   fmt.Sprintf("system:serviceaccount:%s:%s", namespace, sa),
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: p.verb, Group: p.group, Resource: p.resource,
					Subresource: p.subresource, Namespace: p.namespace},
			}}
			out, err := e.dc.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SubjectAccessReview %s %s: %v", sa, p, err)
			}
			answer := "no"
			if out.Status.Allowed {
				answer = "yes"
			}
			lines = append(lines, fmt.Sprintf("%s: %s: %s", sa, p, answer))
		}
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	const golden = "testdata/can-i.golden"
	if *updateRBAC {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run make e2e with E2E_FLAGS=-update-rbac once and review it)", err)
	}
	if got != string(want) {
		wantSet := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(string(want)), "\n") {
			wantSet[l] = true
		}
		var diff []string
		for _, l := range lines {
			if !wantSet[l] {
				diff = append(diff, l)
			}
		}
		t.Fatalf("what the cluster grants Tidal's service accounts differs from %s; now:\n  %s", golden, strings.Join(diff, "\n  "))
	}
	for _, l := range lines {
		if strings.HasSuffix(l, "* */* in (cluster): yes") {
			t.Fatalf("a Tidal pod is cluster-admin: %s", l)
		}
	}
}
