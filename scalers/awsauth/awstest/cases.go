package awstest

import "github.com/tidalscale/tidal/scalers/scalertest"

// Secret is the secret access key of the auth parameters CredentialCases expects: a ParseTable must check that no
// error repeats it.
const Secret = "s3cr3t-value"

// Auth returns authParams with static keys: an access key ID and Secret.
func Auth() map[string]string {
	return map[string]string{"awsAccessKeyID": "AKID", "awsSecretAccessKey": Secret}
}

// CredentialCases returns the metadata table rows every AWS trigger runs for KEDA's region, endpoint and
// credential parameters (scalers/awsauth), with defaults as the rest of the trigger's metadata (including
// awsRegion).
func CredentialCases[M any](defaults map[string]string) []scalertest.ParseCase[M] {
	auth := Auth()
	return []scalertest.ParseCase[M]{
		{Name: "operator identity needs no keys", MD: scalertest.WithPairs(defaults, "identityOwner", "operator")},
		{Name: "missing awsRegion", MD: scalertest.WithPairs(defaults, "awsRegion", scalertest.Delete), Auth: auth, WantErr: `"awsRegion"`},
		{Name: "awsEndpoint not a URL", MD: scalertest.WithPairs(defaults, "awsEndpoint", "localhost:4566"), Auth: auth, WantErr: "awsEndpoint"},
		{Name: "bad identityOwner", MD: scalertest.WithPairs(defaults, "identityOwner", "node"), Auth: auth, WantErr: "identityOwner"},
		{Name: "no credentials", MD: defaults, WantErr: "awsAccessKeyID"},
		{Name: "key without secret", MD: defaults, Auth: map[string]string{"awsAccessKeyID": "AKID"}, WantErr: "awsSecretAccessKey"},
		{Name: "secret without key", MD: defaults, Auth: map[string]string{"awsSecretAccessKey": Secret}, WantErr: "awsAccessKeyID"},
		{Name: "role refused, not ignored", MD: defaults, Auth: scalertest.WithPairs(auth, "awsRoleArn", "arn:aws:iam::1:role/r"), WantErr: "awsRoleArn"},
	}
}
