package tidal_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// cluster is the dev cluster with the clients the install test needs.
type cluster struct {
	*devcluster.Cluster
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// installedTLS is the data of the certificate Secrets generated at install (CA, adapter, operator client).
	installedTLS map[string]map[string][]byte
}

func helmConfig(t *testing.T, c *devcluster.Cluster, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &c.Kubeconfig, &ns
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// TestInstallUpgradeUninstall installs the chart into the embedded dev cluster with the Helm SDK, checks that
// the API server accepted every object (CRDs established, APIService registered, webhook RBAC in place),
// upgrades it with every deployable on, and uninstalls it: only the CRDs remain.
func TestInstallUpgradeUninstall(t *testing.T) {
	dc := devcluster.Get(t)
	ns := dc.Namespace(t)
	dyn, err := dynamic.NewForConfig(dc.Config)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(dc.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{Cluster: dc, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The APIService name is cluster-wide: take turns with other packages' adapters, then make sure the last
	// holder's object is gone.
	dc.Exclusive(t, devcluster.ExclusiveMetricsAPIs)
	c.waitAbsent(ctx, t, schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}, "v1beta1.external.metrics.k8s.io")

	chrt := loadChart(t)
	release := fmt.Sprintf("tidal-%d", rand.IntN(1_000_000))
	cfg := helmConfig(t, dc, ns)
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.Timeout = release, ns, 2*time.Minute
	// The first install leaves the webhook configuration to the operator: a Helm-owned, Fail-policy webhook for
	// every namespace whose operator never runs here would block other tests' ScaledObjects in the shared cluster.
	rel, err := inst.RunWithContext(ctx, chrt, vals("operator.webhook.helmOwnedConfiguration", false))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Cleanup(func() { // a failed test must not leave cluster-scoped objects behind
		_, _ = action.NewUninstall(helmConfig(t, dc, ns)).Run(release)
	})
	if rel.Info.Status != "deployed" {
		t.Fatalf("release status %s", rel.Info.Status)
	}
	installed := c.checkReleaseObjects(ctx, t, rel)
	c.checkCRDsEstablished(ctx, t)
	c.checkAPIService(ctx, t, "v1beta1.external.metrics.k8s.io", ns)
	c.checkWebhookRBAC(ctx, t, release)
	c.checkAdapterSharding(ctx, t, release, ns, 1)

	// Upgrade: every deployable on, two operator replicas, three sharded adapter replicas, the dashboard, and
	// (when no operator in this shared cluster registered one) the Helm-owned webhook configuration.
	upVals := vals("nodeAutoscaler.enabled", true, "virtualNode.enabled", true, "grafanaDashboard.enabled", true,
		"operator.replicas", 2, "operator.extraScaleTargets", []any{map[string]any{"apiGroup": "argoproj.io", "resources": []any{"rollouts"}}},
		"metricsAdapter.replicas", 3)
	_, err = dc.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "tidal-validating-webhook", metav1.GetOptions{})
	helmOwned := apierrors.IsNotFound(err)
	if helmOwned {
		// Limited to this test's namespace: a Fail-policy webhook whose operator never runs here must not
		// block other tests' ScaledObjects in the shared cluster.
		upVals["operator"].(map[string]any)["webhook"] = map[string]any{"helmOwnedConfiguration": true,
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}}}
	} else {
		t.Log("tidal-validating-webhook exists (another test's operator): not testing webhook.helmOwnedConfiguration")
	}
	up := action.NewUpgrade(helmConfig(t, dc, ns))
	up.Namespace, up.Timeout = ns, 2*time.Minute
	rel2, err := up.RunWithContext(ctx, release, chrt, upVals)
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if rel2.Version != 2 || rel2.Info.Status != "deployed" {
		t.Fatalf("after upgrade: version %d, status %s", rel2.Version, rel2.Info.Status)
	}
	upgraded := c.checkReleaseObjects(ctx, t, rel2)
	c.checkAdapterSharding(ctx, t, release, ns, 3)
	if helmOwned {
		if _, err := dc.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "tidal-validating-webhook", metav1.GetOptions{}); err != nil {
			t.Errorf("helm-owned webhook configuration: %v", err)
		}
	}
	if len(upgraded) <= len(installed) {
		t.Errorf("upgrade rendered %d objects, install %d; the node autoscaler and virtual node are missing", len(upgraded), len(installed))
	}
	d, err := dc.Client.AppsV1().Deployments(ns).Get(ctx, release+"-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("operator replicas after upgrade = %d, want 2", *d.Spec.Replicas)
	}
	// The CA and the certificates generated at install are kept across the upgrade: the APIService caBundle
	// does not flap and the operator keeps talking to the adapter.
	for _, name := range []string{release + "-metrics-adapter-ca", release + "-metrics-adapter-tls", release + "-operator-stream-tls"} {
		before, ok := c.installedTLS[name]
		if !ok {
			t.Errorf("install created no Secret %s", name)
			continue
		}
		after, err := dc.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"tls.crt", "tls.key"} {
			if len(before[k]) == 0 || string(after.Data[k]) != string(before[k]) {
				t.Errorf("Secret %s: %s changed on helm upgrade (or was empty)", name, k)
			}
		}
	}

	res, err := action.NewUninstall(helmConfig(t, dc, ns)).Run(release)
	if err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if res.Release.Info.Status != "uninstalled" {
		t.Errorf("release status after uninstall %s", res.Release.Info.Status)
	}
	for _, o := range upgraded {
		c.waitGone(ctx, t, o)
	}
	c.checkCRDsEstablished(ctx, t)
	secrets, err := dc.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 0 {
		t.Errorf("%d Helm release secrets left after uninstall", len(secrets.Items))
	}
}

// checkReleaseObjects reads back every object of the release's manifest from the API server.
func (c *cluster) checkReleaseObjects(ctx context.Context, t *testing.T, rel *release.Release) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			continue
		}
		o := &unstructured.Unstructured{Object: m}
		if _, err := c.get(ctx, o); err != nil {
			t.Errorf("%s: not in the cluster after install: %v", objKey(o), err)
		}
		if o.GetKind() == "Secret" && rel.Version == 1 {
			s, err := c.Client.CoreV1().Secrets(rel.Namespace).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.installedTLS == nil {
				c.installedTLS = map[string]map[string][]byte{}
			}
			c.installedTLS[o.GetName()] = s.Data
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		t.Fatal("the release has no objects")
	}
	return out
}

func (c *cluster) get(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset()
		if m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, err
		}
	}
	ri := c.dyn.Resource(m.Resource)
	if o.GetNamespace() != "" {
		return ri.Namespace(o.GetNamespace()).Get(ctx, o.GetName(), metav1.GetOptions{})
	}
	if m.Scope.Name() == "namespace" {
		return nil, fmt.Errorf("namespaced object rendered without a namespace")
	}
	return ri.Get(ctx, o.GetName(), metav1.GetOptions{})
}

func (c *cluster) waitGone(ctx context.Context, t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	err := devcluster.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		_, err := c.get(ctx, o)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("%s: still in the cluster after uninstall", objKey(o))
	}
}

func (c *cluster) waitAbsent(ctx context.Context, t *testing.T, gvr schema.GroupVersionResource, name string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := devcluster.WaitFor(wctx, time.Second, func() (bool, error) {
		_, err := c.dyn.Resource(gvr).Get(wctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("%s %s exists and is not ours; the chart cannot register it (another test holds it): %v", gvr.Resource, name, err)
	}
}

func (c *cluster) checkCRDsEstablished(ctx context.Context, t *testing.T) {
	t.Helper()
	ac, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir("crds")
	for _, f := range files {
		plural, _, _ := strings.Cut(strings.TrimPrefix(f.Name(), "tidal.dev_"), ".yaml")
		name := plural + ".tidal.dev"
		err := devcluster.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
			crd, err := ac.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Errorf("CRD %s is not Established", name)
		}
	}
}

func (c *cluster) checkAPIService(ctx context.Context, t *testing.T, name, ns string) {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	got, err := c.dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("APIService %s: %v", name, err)
	}
	svcNS, _, _ := unstructured.NestedString(got.Object, "spec", "service", "namespace")
	ca, _, _ := unstructured.NestedString(got.Object, "spec", "caBundle")
	if svcNS != ns || ca == "" {
		t.Errorf("APIService %s: service namespace %q (want %q), caBundle set %t", name, svcNS, ns, ca != "")
	}
	// The aggregator has picked it up: it reports an Available condition (False here: no adapter runs).
	err = devcluster.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		got, err := c.dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		return len(conds) > 0, nil
	})
	if err != nil {
		t.Errorf("APIService %s: the aggregator never reported on it", name)
	}
}

// checkWebhookRBAC: the operator may manage its webhook configuration and CA Secret, as the chart promises.
func (c *cluster) checkWebhookRBAC(ctx context.Context, t *testing.T, release string) {
	t.Helper()
	cr, err := c.Client.RbacV1().ClusterRoles().Get(ctx, release+"-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("operator ClusterRole: %v", err)
	}
	found := false
	for _, r := range cr.Rules {
		for _, res := range r.Resources {
			if res == "validatingwebhookconfigurations" && len(r.ResourceNames) == 1 && r.ResourceNames[0] == "tidal-validating-webhook" {
				found = true
			}
		}
	}
	if !found {
		t.Error("operator ClusterRole cannot update tidal-validating-webhook")
	}
}

// checkAdapterSharding: the installed metrics adapter runs replicas replicas, sharded on Leases when more than
// one (docs/sharding.md): --sharding=leases, the peers' server name (the Service's DNS name, since they dial pod
// IPs), POD_IP for the advertised stream address, and a service account the API server's authorizer lets manage
// the member Leases in the release namespace (and nowhere else); one replica gets none of it. Its
// PodDisruptionBudget selects its pods either way.
func (c *cluster) checkAdapterSharding(ctx context.Context, t *testing.T, release, ns string, replicas int32) {
	t.Helper()
	name := release + "-metrics-adapter"
	sharded := replicas > 1
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("metrics adapter Deployment: %v", err)
	}
	if *d.Spec.Replicas != replicas {
		t.Errorf("metrics adapter replicas = %d, want %d", *d.Spec.Replicas, replicas)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	wantArgs := []string{"--sharding=leases", "--stream-peer-server-name=" + name + "." + ns + ".svc"}
	for _, a := range wantArgs {
		if got := slices.Contains(ctr.Args, a); got != sharded {
			t.Errorf("%d adapter replicas: %s in args %v: %v, want %v", replicas, a, ctr.Args, got, sharded)
		}
	}
	podIP := slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
	})
	if podIP != sharded {
		t.Errorf("%d adapter replicas: POD_IP from status.podIP: %v, want %v", replicas, podIP, sharded)
	}

	user := "system:serviceaccount:" + ns + ":" + d.Spec.Template.Spec.ServiceAccountName
	for _, where := range []struct {
		ns   string
		want bool
	}{{ns, sharded}, {"kube-system", false}} {
		for _, verb := range []string{"create", "list", "get", "update", "delete"} {
			sar, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: where.ns, Verb: verb, Group: "coordination.k8s.io", Resource: "leases"},
			}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if sar.Status.Allowed != where.want {
				t.Errorf("%d adapter replicas: %s may %s leases in %s: %v, want %v (%s)", replicas, user, verb, where.ns,
					sar.Status.Allowed, where.want, sar.Status.Reason)
			}
		}
	}

	pdb, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("metrics adapter PodDisruptionBudget: %v", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("metrics adapter PodDisruptionBudget: selector %v, maxUnavailable %v; want the adapter's pods, 1 at a time", sel, pdb.Spec.MaxUnavailable)
	}
}
