package scalers

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/oauth2"
)

// PodIdentity is the workload identity a trigger's TriggerAuthentication selects with spec.podIdentity, as
// credentials for the provider's SDK (built by autoscaler/triggers/identity). The shared auth packages
// (scalers/awsauth, scalers/azure, scalers/gcp) use it in place of keys from authParams.
type PodIdentity struct {
	// Provider is KEDA's provider name: aws, aws-eks, azure-workload or gcp.
	Provider string
	// AWS returns the credentials of a client in region (STS is regional) for aws and aws-eks; nil means the
	// deployable's own AWS credential chain (podIdentity aws with neither roleArn nor identityOwner workload).
	AWS func(region string) aws.CredentialsProvider
	// Azure is the azure-workload credential.
	Azure azcore.TokenCredential
	// GCP is the gcp token source (Google workload identity federation).
	GCP oauth2.TokenSource
}

// IsAWS reports whether p is an AWS identity (aws or aws-eks).
func (p *PodIdentity) IsAWS() bool {
	return p != nil && (p.Provider == "aws" || p.Provider == "aws-eks")
}
