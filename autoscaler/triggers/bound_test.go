package triggers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/testenv"
)

// clock is a settable clock for the token cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// reviewedUser is who the dev cluster's TokenReview API says token belongs to ("" when it is not authenticated).
func reviewedUser(t *testing.T, kube kubernetes.Interface, token string) string {
	t.Helper()
	rev, err := kube.AuthenticationV1().TokenReviews().Create(context.Background(),
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Status.Authenticated {
		return ""
	}
	return rev.Status.User.Username
}

// spec.boundServiceAccountToken puts a real token of the named service account (TokenRequest API) into the
// parameter; the resolver reuses it until 80% of its lifetime has passed on its clock, then requests a new one;
// neither the logs nor an error ever show a token; a missing service account is an error naming the entry.
func TestBoundServiceAccountToken(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	kube := e.Cluster.Client
	if _, err := kube.CoreV1().ServiceAccounts(e.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, sa := range map[string]string{"bound": "reader", "bound-missing": "nobody"} {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{BoundServiceAccountToken: []tidalv1alpha1.BoundServiceAccountToken{
				{Parameter: "bearerToken", ServiceAccountName: sa}}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	clk := &clock{now: time.Now()}
	r := &triggers.Resolver{Kube: kube, Tidal: e.Tidal, Identity: &identity.Provider{
		Tokens: &identity.Tokens{Kube: kube, Now: clk.Now, Lifetime: 10 * time.Minute, Logger: zap.New(core)}}}
	ref := &tidalv1alpha1.AuthenticationRef{Name: "bound"}

	params, err := r.AuthParams(ctx, e.NS, ref, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	first := params["bearerToken"]
	if got, want := reviewedUser(t, kube, first), "system:serviceaccount:"+e.NS+":reader"; got != want {
		t.Fatalf("the parameter's token authenticates as %q, want %q", got, want)
	}
	clk.Add(7 * time.Minute) // 70% of the ten minutes granted: still fresh
	if params, err = r.AuthParams(ctx, e.NS, ref, noEnv); err != nil || params["bearerToken"] != first {
		t.Fatalf("before 80%% of its lifetime the token was not reused (err %v)", err)
	}
	clk.Add(90 * time.Second) // 85%
	if params, err = r.AuthParams(ctx, e.NS, ref, noEnv); err != nil {
		t.Fatal(err)
	}
	second := params["bearerToken"]
	if second == first {
		t.Fatal("after 80% of its lifetime the token was not requested anew")
	}
	if got := reviewedUser(t, kube, second); got != "system:serviceaccount:"+e.NS+":reader" {
		t.Fatalf("the refreshed token authenticates as %q", got)
	}
	if n := logs.FilterMessage("requested a service-account token").Len(); n != 2 {
		t.Fatalf("%d token requests logged, want 2", n)
	}

	_, err = r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: "bound-missing"}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "spec.boundServiceAccountToken[0]") || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("missing service account: error %v, want one naming spec.boundServiceAccountToken[0] and the account", err)
	}
	for _, entry := range logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "\t", " "))
		}
		for _, tok := range []string{first, second} {
			if strings.Contains(line, tok) || strings.Contains(line, tok[len(tok)-20:]) {
				t.Fatalf("a log line shows a token: %s", entry.Message)
			}
		}
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }
