package identity_test

import (
	"testing"

	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
)

// FromEnvironment takes the deployable's service account from the chart's downward-API variables, the Azure
// defaults from what Azure's webhook injects and the GCP federation from Tidal's variables; --namespace wins over
// POD_NAMESPACE.
func TestFromEnvironment(t *testing.T) {
	env := map[string]string{
		identity.EnvNamespace: "pod-ns", identity.EnvServiceAccount: "tidal-operator",
		identity.EnvAzureClientID: "cid", identity.EnvAzureTenantID: "tid", identity.EnvAzureAuthorityHost: "https://login.example/",
		identity.EnvGCPProvider: "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k", identity.EnvGCPServiceAccount: "r@p.iam.gserviceaccount.com",
	}
	getenv := func(k string) string { return env[k] }
	p := identity.FromEnvironment(nil, nil, "", getenv)
	if p.SelfNamespace != "pod-ns" || p.SelfServiceAccount != "tidal-operator" || p.AzureClientID != "cid" || p.AzureTenantID != "tid" ||
		p.AzureAuthorityHost != "https://login.example/" || p.GCP.Audience != env[identity.EnvGCPProvider] || p.GCP.ServiceAccount != env[identity.EnvGCPServiceAccount] || p.Tokens == nil {
		t.Fatalf("%+v", p)
	}
	if p := identity.FromEnvironment(nil, nil, "flag-ns", getenv); p.SelfNamespace != "flag-ns" {
		t.Fatalf("namespace %q, want the flag's", p.SelfNamespace)
	}
}
