package api_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/client/informers/externalversions"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/devcluster"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) {
	os.Exit(devcluster.Main(m))
}

// kindResource is the REST resource and scope of a kind.
type kindResource struct {
	resource   string
	namespaced bool
}

func resourceOf(kind string) (kindResource, bool) {
	r, ok := map[string]kindResource{
		"ScaledObject":                 {"scaledobjects", true},
		"ScaledJob":                    {"scaledjobs", true},
		"TriggerAuthentication":        {"triggerauthentications", true},
		"ClusterTriggerAuthentication": {"clustertriggerauthentications", false},
		"NodeGroup":                    {"nodegroups", false},
		"CapacityRequest":              {"capacityrequests", true},
	}[kind]
	return r, ok
}

// TestCRDsOnAPIServer installs the CRDs into the dev cluster and checks that the real API server applies the
// defaults, keeps KEDA manifests, refuses the invalid manifests naming the field, and serves the generated
// clientset, informers and printer columns.
func TestCRDsOnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the dev cluster; TestSchema* check the same rules offline")
	}
	c := devcluster.Get(t)
	ctx := t.Context()
	installCRDs(ctx, t, c.Config)
	ns := c.Namespace(t)
	tidal, err := versioned.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("defaults", func(t *testing.T) { testDefaults(ctx, t, tidal, ns) })
	t.Run("status subresource and informer", func(t *testing.T) { testStatusAndInformer(ctx, t, tidal, ns) })
	t.Run("printer columns", func(t *testing.T) { testPrinterColumns(ctx, t, tidal, ns) })
	t.Run("KEDA manifests", func(t *testing.T) {
		for _, m := range loadTestManifests(t, "keda") {
			t.Run(m.name, func(t *testing.T) {
				created := createUnstructured(ctx, t, dyn, ns, m)
				// Every field sent comes back: nothing was pruned by the schema.
				if missing := missingFields(m.obj["spec"], created.Object["spec"], "spec"); len(missing) > 0 {
					t.Errorf("API server dropped %v", missing)
				}
			})
		}
	})
	t.Run("invalid manifests", func(t *testing.T) {
		ms := loadTestManifests(t, "invalid")
		if len(ms) < 10 {
			t.Fatalf("only %d invalid manifests", len(ms))
		}
		for _, m := range ms {
			t.Run(m.name, func(t *testing.T) {
				want := m.wantField(t)
				_, err := tryCreate(ctx, t, dyn, ns, m)
				if err == nil {
					t.Fatalf("API server accepted it; want an error naming %s", want)
				}
				t.Logf("%v", err)
				if !apierrors.IsInvalid(err) {
					t.Errorf("error %v is not Invalid", err)
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			})
		}
	})
}

// installCRDs creates or updates every CRD in charts/tidal/crds with the apiextensions clientset and waits for
// it to be Established. Other test binaries may install the same CRDs concurrently; conflicts are retried.
func installCRDs(ctx context.Context, t *testing.T, cfg *rest.Config) {
	t.Helper()
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	for kind, crd := range loadCRDs(t) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = crds.Create(ctx, crd, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) {
					return apierrors.NewConflict(apiextensionsv1.Resource("customresourcedefinitions"), crd.Name, err)
				}
				return err
			}
			if err != nil {
				return err
			}
			update := crd.DeepCopy()
			update.ResourceVersion = got.ResourceVersion
			_, err = crds.Update(ctx, update, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("install CRD for %s: %v", kind, err)
		}
	}
	for kind, crd := range loadCRDs(t) {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD for %s not Established: %v", kind, err)
		}
	}
}

func testDefaults(ctx context.Context, t *testing.T, tidal versioned.Interface, ns string) {
	so := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "web"},
			Fallback:       &tidalv1alpha1.Fallback{FailureThreshold: 3, Replicas: 2},
			Triggers:       []tidalv1alpha1.ScaleTriggers{{Type: "redis", Metadata: map[string]string{"listName": "jobs"}}},
		},
	}
	got, err := createScaledObject(ctx, tidal, ns, so)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	s := got.Spec
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"spec.mode", s.Mode, tidalv1alpha1.ScalingModeDirect},
		{"spec.pollingInterval", ptr.Deref(s.PollingInterval, -1), int32(30)},
		{"spec.cooldownPeriod", ptr.Deref(s.CooldownPeriod, -1), int32(300)},
		{"spec.minReplicaCount", ptr.Deref(s.MinReplicaCount, -1), int32(0)},
		{"spec.maxReplicaCount", ptr.Deref(s.MaxReplicaCount, -1), int32(100)},
		{"spec.fallback.behavior", s.Fallback.Behavior, tidalv1alpha1.FallbackBehaviorStatic},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if errs := got.Validate(); len(errs) > 0 {
		t.Errorf("defaulted object fails Validate: %v", errs.ToAggregate())
	}
}

// createScaledObject creates so, retrying while the new CRD's REST endpoint warms up (NotFound right after
// Established is possible on a loaded machine).
func createScaledObject(ctx context.Context, tidal versioned.Interface, ns string, so *tidalv1alpha1.ScaledObject) (*tidalv1alpha1.ScaledObject, error) {
	var got *tidalv1alpha1.ScaledObject
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = tidal.TidalV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return got, err
}

func testStatusAndInformer(ctx context.Context, t *testing.T, tidal versioned.Interface, ns string) {
	so := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "status"},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "web"},
			Triggers:       []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "jobs", Metadata: map[string]string{"listName": "jobs"}}},
		},
	}
	got, err := createScaledObject(ctx, tidal, ns, so)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	got.Status.ScaleTargetKind = "apps/v1.Deployment"
	got.Status.DesiredReplicas = ptr.To[int32](3)
	got.Status.Triggers = []tidalv1alpha1.TriggerStatus{{Name: "jobs", Type: "redis", Value: "42", Active: true, LastSampleTime: &now}}
	meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{
		Type: tidalv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "ScaledObjectReady", Message: "ready",
	})
	meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{
		Type: tidalv1alpha1.ConditionActive, Status: metav1.ConditionTrue, Reason: "TriggerActive", Message: "jobs is active",
	})
	updated, err := tidal.TidalV1alpha1().ScaledObjects(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{FieldManager: "api-test"})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if len(updated.Status.Triggers) != 1 || updated.Status.Triggers[0].Value != "42" || !meta.IsStatusConditionTrue(updated.Status.Conditions, tidalv1alpha1.ConditionActive) {
		t.Errorf("status not stored: %+v", updated.Status)
	}
	// A spec update through the main resource must not touch status.
	updated.Spec.MaxReplicaCount = ptr.To[int32](7)
	updated.Status = tidalv1alpha1.ScaledObjectStatus{}
	afterSpec, err := tidal.TidalV1alpha1().ScaledObjects(ns).Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update spec: %v", err)
	}
	if afterSpec.Status.ScaleTargetKind != "apps/v1.Deployment" {
		t.Errorf("spec update changed status to %+v", afterSpec.Status)
	}

	// The informers get their own context: Shutdown waits for them to stop, so it must be cancelled first.
	informerCtx, stopInformers := context.WithCancel(ctx)
	factory := externalversions.NewSharedInformerFactoryWithOptions(tidal, 0, externalversions.WithNamespace(ns))
	lister := factory.Tidal().V1alpha1().ScaledObjects().Lister()
	factory.Start(informerCtx.Done())
	defer func() {
		stopInformers()
		factory.Shutdown()
	}()
	for typ, synced := range factory.WaitForCacheSync(informerCtx.Done()) {
		if !synced {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		cached, err := lister.ScaledObjects(ns).Get("status")
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ptr.Deref(cached.Spec.MaxReplicaCount, 0) == 7, err
	})
	if err != nil {
		t.Errorf("lister never saw the updated ScaledObject: %v", err)
	}
}

func testPrinterColumns(ctx context.Context, t *testing.T, tidal versioned.Interface, ns string) {
	table := &metav1.Table{}
	err := tidal.TidalV1alpha1().RESTClient().Get().
		Namespace(ns).Resource("scaledobjects").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Do(ctx).Into(table)
	if err != nil {
		t.Fatalf("get table: %v", err)
	}
	var names []string
	for _, col := range table.ColumnDefinitions {
		if col.Priority == 0 {
			names = append(names, strings.ToUpper(col.Name))
		}
	}
	want := "NAME SCALETARGETKIND SCALETARGETNAME MIN MAX READY ACTIVE FALLBACK PAUSED MODE AGE"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("columns %q, want %q", got, want)
	}
}

// tryCreate sends the manifest as is (unstructured, so nothing is dropped on the client side).
func tryCreate(ctx context.Context, t *testing.T, dyn dynamic.Interface, ns string, m testManifest) (*unstructured.Unstructured, error) {
	t.Helper()
	r, ok := resourceOf(m.kind())
	if !ok {
		t.Fatalf("unknown kind %s", m.kind())
	}
	u := &unstructured.Unstructured{Object: m.obj}
	gvr := schema.GroupVersionResource{Group: tidalv1alpha1.GroupName, Version: "v1alpha1", Resource: r.resource}
	var client dynamic.ResourceInterface
	if r.namespaced {
		u.SetNamespace(ns)
		client = dyn.Resource(gvr).Namespace(ns)
	} else {
		// Cluster-scoped: a unique name so parallel runs do not collide.
		u.SetName(fmt.Sprintf("%s-%s", u.GetName(), ns))
		client = dyn.Resource(gvr)
	}
	// NotFound right after a CRD is Established means its endpoint is still warming up: retry.
	var created *unstructured.Unstructured
	var err error
	pollErr := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		created, err = client.Create(ctx, u.DeepCopy(), metav1.CreateOptions{})
		return !apierrors.IsNotFound(err), nil
	})
	if pollErr != nil {
		t.Fatalf("create %s: endpoint not served: %v (last error %v)", m.name, pollErr, err)
	}
	if err == nil {
		t.Cleanup(func() {
			_ = client.Delete(context.Background(), created.GetName(), metav1.DeleteOptions{})
		})
	}
	return created, err
}

func createUnstructured(ctx context.Context, t *testing.T, dyn dynamic.Interface, ns string, m testManifest) *unstructured.Unstructured {
	t.Helper()
	created, err := tryCreate(ctx, t, dyn, ns, m)
	if err != nil {
		t.Fatalf("create %s: %v", m.name, err)
	}
	return created
}

// missingFields lists the paths present in sent but absent from got.
func missingFields(sent, got any, path string) []string {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range s {
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingFields(v, gv, path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return []string{path}
		}
		var out []string
		for i := range s {
			out = append(out, missingFields(s[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		return nil
	}
}
