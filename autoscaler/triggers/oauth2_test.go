package triggers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/metricsapi"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// spec.oauth2 (KEDA 2.20) survives the apiserver (the CRD has the field: nothing is pruned) and resolves to the
// parameters of authModes oauth, the client secret read from its Secret; a metrics-api trigger with those
// parameters gets a token from the token endpoint (oauthtest) with the scopes and tokenUrlParams, and reads the
// metric with it. A missing Secret is an error naming the field; no error carries the client secret.
func TestOAuth2(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	const clientSecret = "oauth-client-secret-0123456789"
	as := oauthtest.New(t, "tidal-client", clientSecret)
	if _, err := e.Cluster.Client.CoreV1().Secrets(e.NS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "oauth"},
		StringData: map[string]string{"secret": clientSecret}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, secretName := range map[string]string{"oauth": "oauth", "oauth-missing": "absent"} {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{OAuth2: &tidalv1alpha1.OAuth2{
				Type: tidalv1alpha1.OAuth2GrantTypeClientCredentials, ClientID: "tidal-client", TokenURL: as.TokenURL(),
				ClientSecret: tidalv1alpha1.OAuth2ClientSecret{ValueFrom: tidalv1alpha1.ValueFromSecret{SecretKeyRef: tidalv1alpha1.SecretKeyRef{Name: secretName, Key: "secret"}}},
				Scopes:       []string{"metrics.read", "queues.read"}, TokenURLParams: map[string]string{"audience": "https://metrics.example"},
			}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Get(ctx, "oauth", metav1.GetOptions{})
	if err != nil || stored.Spec.OAuth2 == nil || stored.Spec.OAuth2.TokenURLParams["audience"] != "https://metrics.example" {
		t.Fatalf("the apiserver did not keep spec.oauth2: %+v, %v", stored.Spec.OAuth2, err)
	}

	r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal}
	params, err := r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: "oauth"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"oauthTokenURI": as.TokenURL(), "clientID": "tidal-client", "clientSecret": clientSecret,
		"scopes": "metrics.read,queues.read", "endpointParams": "audience=https%3A%2F%2Fmetrics.example"}
	for k, v := range want {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}

	api := httptest.NewServer(as.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"v": 6}`)) })))
	t.Cleanup(api.Close)
	cfg := scalertest.Config(metricsapi.TriggerType, "", map[string]string{"url": api.URL, "valueLocation": "v", "targetValue": "1", "authMode": "oauth"}, params)
	s := scalertest.New[scalers.Scaler](t, metricsapi.New, cfg)
	if v, _ := scalertest.Sample(t, s, s.MetricSpecs()[0].External.Metric.Name); v != 6 {
		t.Fatalf("sample = %v, want 6 (read with the token)", v)
	}
	form, _ := as.LastForm()
	if as.Fetches() != 1 || form.Get("scope") != "metrics.read queues.read" || form.Get("audience") != "https://metrics.example" {
		t.Errorf("token requests %d, last form scope %q audience %q; want one with both scopes and the audience", as.Fetches(), form.Get("scope"), form.Get("audience"))
	}

	_, err = r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: "oauth-missing"}, noEnv)
	if err == nil || !strings.Contains(err.Error(), `spec.oauth2.clientSecret.valueFrom.secretKeyRef: secret "absent"`) {
		t.Errorf("missing Secret: error = %v, want it to name spec.oauth2.clientSecret", err)
	}
	if err != nil && strings.Contains(err.Error(), clientSecret) {
		t.Errorf("error carries the client secret: %v", err)
	}
}
