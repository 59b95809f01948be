package provider_test

import (
	"context"
	"slices"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// csrRequester is a service account allowed only what the chart gives the virtual node for its node identity
// (create its CertificateSigningRequest, with the nodeclient subresource the approver checks), reached by
// impersonation.
func csrRequester(ctx context.Context, t *testing.T, c *devcluster.Cluster, ns string) *rest.Config {
	t.Helper()
	name := uniqueName("vk-csr-requester")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}},
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/nodeclient"}, Verbs: []string{"create"}},
	}}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "virtual-node", Namespace: ns}}}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Client.RbacV1().ClusterRoleBindings().Delete(dctx, name, metav1.DeleteOptions{})
		_ = c.Client.RbacV1().ClusterRoles().Delete(dctx, name, metav1.DeleteOptions{})
	})
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":virtual-node",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	return cfg
}

// TestNodeIdentityReadsOnlyWhatItsPodsReference: the virtual node obtains system:node:<name> through a CSR its
// service account may only request, reads the Secret and ConfigMap its pod references with it, and the API
// server's Node authorizer refuses it a Secret no pod of its own references, and any list.
func TestNodeIdentityReadsOnlyWhatItsPodsReference(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	name := uniqueName("vk-process")

	id, err := provider.StartNodeIdentity(ctx, provider.NodeIdentityOptions{Config: csrRequester(ctx, t, c, ns), NodeName: name,
		Lifetime: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(id.Stop)
	nodeCfg, err := id.Config()
	if err != nil {
		t.Fatal(err)
	}
	nodeClient, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := nodeClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := who.Status.UserInfo; u.Username != "system:node:"+name || !slices.Contains(u.Groups, "system:nodes") {
		t.Fatalf("node identity is %q %v, want system:node:%s in system:nodes", u.Username, u.Groups, name)
	}

	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"user": "ada"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}, StringData: map[string]string{"token": "not-yours"}},
	} {
		if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"MODE": "turbo"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Before any pod of the node references it, even the Secret the pod will use is refused.
	if _, err := nodeClient.CoreV1().Secrets(ns).Get(ctx, "creds", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node identity GET of an unreferenced Secret: err = %v, want 403 Forbidden", err)
	}

	vn := processNodeWith(t, c, nil, provider.VirtualNodeOptions{Node: provider.NodeOptions{Name: name}, PodObjects: nodeClient})
	pod := busyboxPod("env", vn.Name, `echo "user=$USER_NAME mode=$MODE"`)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	ctr := &pod.Spec.Containers[0]
	ctr.Env = []corev1.EnvVar{{Name: "USER_NAME", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "user"}}}}
	ctr.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
	if logs, want := logsOnceSucceeded(ctx, t, c, ns, pod), "user=ada mode=turbo\n"; logs != want {
		t.Errorf("logs = %q, want %q", logs, want)
	}

	if _, err := nodeClient.CoreV1().Secrets(ns).Get(ctx, "creds", metav1.GetOptions{}); err != nil {
		t.Errorf("node identity GET of its pod's Secret: %v", err)
	}
	if _, err := nodeClient.CoreV1().Secrets(ns).Get(ctx, "unrelated", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node identity GET of a Secret no pod of its own references: err = %v, want 403 Forbidden", err)
	}
	if _, err := nodeClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node identity LIST of Secrets: err = %v, want 403 Forbidden", err)
	}
}
