package monitoringfake

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// CredentialCases returns the metadata table rows every GCP trigger runs for KEDA's credential parameters
// (credentialsFromEnv, credentialsFromEnvFile, a missing, malformed or unsupported key document), with defaults as
// the rest of the trigger's metadata, and the authParams with a valid service-account key for project that the
// trigger's other rows use.
func CredentialCases[M any](t testing.TB, project string, defaults map[string]string) (map[string]string, []scalertest.ParseCase[M]) {
	t.Helper()
	creds, _ := ServiceAccount(t, project, "http://127.0.0.1:1/token")
	file := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(file, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"GoogleApplicationCredentials": creds}, []scalertest.ParseCase[M]{
		{Name: "credentialsFromEnv", MD: scalertest.WithPairs(defaults, "credentialsFromEnv", "GCP_JSON"), Env: map[string]string{"GCP_JSON": creds}},
		{Name: "credentialsFromEnvFile", MD: scalertest.WithPairs(defaults, "credentialsFromEnvFile", "GCP_FILE"), Env: map[string]string{"GCP_FILE": file}},
		{Name: "no credentials", MD: defaults, WantErr: "GoogleApplicationCredentials: required"},
		{Name: "credentials not JSON", MD: defaults, Auth: map[string]string{"GoogleApplicationCredentials": "not-json-secret"}, WantErr: "not a Google credentials"},
		{Name: "credentials wrong type", MD: defaults, Auth: map[string]string{"GoogleApplicationCredentials": `{"type":"api_key"}`}, WantErr: "unsupported credentials type"},
		{Name: "credentialsFromEnv unset", MD: scalertest.WithPairs(defaults, "credentialsFromEnv", "NOPE"), WantErr: "credentialsFromEnv"},
		{Name: "credentialsFromEnvFile missing file", MD: scalertest.WithPairs(defaults, "credentialsFromEnvFile", "F"), Env: map[string]string{"F": "/nonexistent/key.json"}, WantErr: "credentialsFromEnvFile"},
	}
}
