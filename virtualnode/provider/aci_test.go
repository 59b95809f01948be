package provider_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/aci"
	"github.com/tidalscale/tidal/virtualnode/backend/aci/acifake"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

func TestACIBackendAgainstFakeACI(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	fake := acifake.New()
	t.Cleanup(fake.Close)
	fake.StartDelay = 300 * time.Millisecond
	vn := startNode(t, c, "aci", nil, provider.VirtualNodeOptions{
		RetryBase: 500 * time.Millisecond,
		NewBackend: func(d provider.BackendDeps) (backend.Backend, error) {
			return aci.New(aci.Options{
				SubscriptionID: "00000000-0000-0000-0000-000000000001", ResourceGroup: "tidal-burst", Region: "westeurope",
				Credential: fake.Credential(), ClientOptions: fake.ClientOptions(), WebSocketTLS: fake.TLSConfig(),
				Changed: d.Changed, NodeName: d.NodeName, NodeIP: d.NodeIP, PollInterval: 200 * time.Millisecond, Logger: d.Logger,
			})
		},
	})

	newPod := func(name string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "mcr.microsoft.com/azuredocs/aci-helloworld:latest",
				Env:   []corev1.EnvVar{{Name: "GREETING", Value: "hello"}},
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
			}}},
		}
		onNode(&p.Spec, vn.Name)
		return p
	}
	waitRunning := func(t *testing.T, name string) *corev1.Pod {
		t.Helper()
		var pod *corev1.Pod
		testenv.WaitFor(ctx, t, name+" Running and Ready", func() (bool, error) {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			pod = p
			return podReady(p), nil
		})
		return pod
	}

	t.Run("create, running, logs, delete", func(t *testing.T) {
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, newPod("hello"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := waitRunning(t, "hello")
		if pod.Status.PodIP != "20.61.0.10" {
			t.Errorf("pod IP = %q, want the container group's IP 20.61.0.10", pod.Status.PodIP)
		}
		group := aci.GroupName(backend.Key{Namespace: ns, Name: "hello"})
		testenv.WaitFor(ctx, t, "kubectl logs from ACI through the API server", func() (bool, error) {
			b, err := c.Client.CoreV1().Pods(ns).GetLogs("hello", &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				return false, nil
			}
			return strings.Contains(string(b), "app started in container group "+group), nil
		})
		for _, protocol := range []string{"websocket", "spdy"} {
			stdout, _, err := execInPod(ctx, c, ns, "hello", "app", protocol, []string{"echo", "hello", "from", "aci"})
			if err != nil || stdout != "hello from aci\n" {
				t.Errorf("kubectl exec (%s) over ACI's exec websocket = %q, %v; want \"hello from aci\\n\"", protocol, stdout, err)
			}
		}
		if err := c.Client.CoreV1().Pods(ns).Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(ctx, t, "container group deleted and pod gone", func() (bool, error) {
			_, err := c.Client.CoreV1().Pods(ns).Get(ctx, "hello", metav1.GetOptions{})
			return err != nil && len(fake.Requests("DELETE", "/containerGroups/"+group)) == 1, nil
		})
		for _, g := range fake.Groups() {
			if g == group {
				t.Errorf("container group %s still exists after the pod was deleted", group)
			}
		}
	})

	t.Run("429 with Retry-After is retried", func(t *testing.T) {
		group := aci.GroupName(backend.Key{Namespace: ns, Name: "throttled"})
		fake.FailNextPuts(group, acifake.Throttle("1"))
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, newPod("throttled"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, "throttled")
		puts := fake.Requests("PUT", "/containerGroups/"+group)
		if len(puts) != 2 || puts[0].Status != 429 || puts[1].Status != 201 {
			t.Fatalf("PUTs = %+v, want a 429 then a 201", puts)
		}
		if gap := puts[1].At.Sub(puts[0].At); gap < 900*time.Millisecond {
			t.Errorf("retry came %s after the 429, want at least the 1s Retry-After", gap)
		}
	})

	t.Run("quota error is surfaced in pod status, then retried", func(t *testing.T) {
		group := aci.GroupName(backend.Key{Namespace: ns, Name: "over-quota"})
		fake.FailNextPuts(group, acifake.Quota("westeurope"), acifake.Quota("westeurope"))
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, newPod("over-quota"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(ctx, t, "pod Pending with reason QuotaExceeded", func() (bool, error) {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "over-quota", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodPending && p.Status.Reason == backend.ReasonQuotaExceeded &&
				strings.Contains(p.Status.Message, "ContainerGroupQuotaReached") && strings.Contains(p.Status.Message, "quota 'StandardCores' exceeded"), nil
		})
		testenv.WaitFor(ctx, t, "QuotaExceeded warning event", func() (bool, error) {
			evs, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "over-quota").String()})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Reason == backend.ReasonQuotaExceeded && e.Type == corev1.EventTypeWarning {
					return true, nil
				}
			}
			return false, nil
		})
		// Once quota frees up (the fake's faults are used up), the retry succeeds.
		waitRunning(t, "over-quota")
		if puts := fake.Requests("PUT", "/containerGroups/"+group); len(puts) != 3 {
			t.Errorf("PUTs = %d, want 3 (two quota errors, then success)", len(puts))
		}
	})
}
