package containerd_test

import (
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
)

// The projected service-account token is requested with TokenRequest (bound to the pod), mounted at the
// well-known path with ca.crt and namespace, and replaced by a fresh one before it expires.
func TestServiceAccountTokenRefresh(t *testing.T) {
	if env.skip != "" {
		t.Skip("containerd backend tests need containerd and runc (" + env.skip + "); .ci/run installs them")
	}
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	client := kubernetes.NewForConfigOrDie(c.Config)
	if err := devcluster.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("default service account in %s: %v", ns, err)
	}
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	ctr := prog("main", "sleep")
	// The pod exists in the API (on a node nobody runs) so the token can be bound to it.
	pod := newPod(uniqueName("token"), ctr)
	pod.Namespace, pod.UID = ns, ""
	pod.Spec.NodeName = "no-such-node"
	pod.Spec.AutomountServiceAccountToken = new(bool)
	pod, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	// The volume the API server would inject (automount is off so the test controls its content).
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access"})
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: dir, ReadOnly: true}}

	h := newHarness(t, func(o *containerd.Options) {
		o.Client = client
		o.TokenRefresh = func(issued, expiry time.Time) time.Duration { return 2 * time.Second }
	})
	key := backend.KeyOf(pod)
	err = h.b.Create(ctx, backend.Pod{Pod: pod, Volumes: map[string]backend.Volume{"kube-api-access": {
		Files:  map[string][]byte{"ca.crt": c.Config.CAData, "namespace": []byte(ns)},
		Tokens: []backend.TokenProjection{{Path: "token", ExpirationSeconds: 3607}},
		Secret: true,
	}}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	h.waitStatus(key, "Running", running)

	read := func(name string) string {
		out, err := h.exec(key, "main", "/testprog", "cat", dir+"/"+name)
		if err != nil {
			t.Fatalf("cat %s: %v: %s", name, err, out)
		}
		return out
	}
	if got := read("namespace"); got != ns {
		t.Errorf("namespace file: %q, want %q", got, ns)
	}
	if got := read("ca.crt"); !strings.Contains(got, "BEGIN CERTIFICATE") {
		t.Errorf("ca.crt: %q", got)
	}
	first := read("token")
	review := func(tok string) {
		tr, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token review: %v", err)
		}
		want := "system:serviceaccount:" + ns + ":default"
		if !tr.Status.Authenticated || tr.Status.User.Username != want {
			t.Errorf("token authenticates as %q (authenticated %v, %s), want %q", tr.Status.User.Username, tr.Status.Authenticated, tr.Status.Error, want)
		}
		if got := tr.Status.User.Extra["authentication.kubernetes.io/pod-name"]; len(got) != 1 || got[0] != pod.Name {
			t.Errorf("token bound to pod %v, want %s", got, pod.Name)
		}
	}
	review(first)
	var second string
	if err := devcluster.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		second = read("token")
		return second != first, nil
	}); err != nil {
		t.Fatalf("token was not refreshed")
	}
	review(second)

	// A pod whose token cannot be requested (no such service account) waits with a clear reason.
	bad := newPod(uniqueName("nosa"), prog("main", "sleep"))
	bad.Namespace = ns
	bad.Spec.ServiceAccountName = "missing"
	err = h.b.Create(ctx, backend.Pod{Pod: bad, Volumes: map[string]backend.Volume{"kube-api-access": {
		Tokens: []backend.TokenProjection{{Path: "token"}}}}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	st := h.waitStatus(backend.KeyOf(bad), "config error", func(st *corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == containerd.ReasonConfigError
	})
	if !strings.Contains(st.ContainerStatuses[0].State.Waiting.Message, "missing") {
		t.Errorf("want a message naming the service account: %s", describe(st))
	}
}
