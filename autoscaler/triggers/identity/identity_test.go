package identity_test

import (
	"context"
	"os"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// review asks the dev cluster's TokenReview API who token belongs to when presented to audience, as a cloud
// identity provider checks a federated token against the cluster's issuer: the user name, or "" when the token
// is not valid for that audience.
func review(kube kubernetes.Interface, token, audience string) (string, error) {
	return testenv.ReviewToken(context.Background(), kube, token, audience)
}

// serviceAccount makes a service account in ns with annotations.
func serviceAccount(t *testing.T, kube kubernetes.Interface, ns, name string, annotations map[string]string) string {
	t.Helper()
	_, err := kube.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return "system:serviceaccount:" + ns + ":" + name
}

// provider is an identity.Provider whose token requests log to an observer; Tidal runs as self in ns.
func provider(kube kubernetes.Interface, ns, self string) (*identity.Provider, *observer.ObservedLogs) {
	log, logs := scalertest.ObservedLogger()
	return &identity.Provider{Tokens: &identity.Tokens{Kube: kube, Logger: log.With(zap.String("test", "identity"))},
		SelfNamespace: ns, SelfServiceAccount: self}, logs
}
