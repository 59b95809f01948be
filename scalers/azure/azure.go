// Package azure holds what Tidal's Azure scalers (azure-queue, azure-blob, azure-servicebus, azure-eventhub)
// share: KEDA's cloud and endpointSuffix resolution, the storage connection metadata (a connection string, or an
// account name reached with the workload identity of the Tidal pod), and the HTTP pipeline options every Azure
// SDK client gets.
package azure

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// PrivateCloud is KEDA's cloud value for a sovereign or Azure Stack cloud: endpointSuffix must then be given.
const PrivateCloud = "Private"

// storageSuffixes are the storage endpoint suffixes of KEDA's named clouds, keyed by upper-cased cloud name.
var storageSuffixes = map[string]string{
	"AZUREPUBLICCLOUD":       "core.windows.net",
	"AZUREUSGOVERNMENTCLOUD": "core.usgovcloudapi.net",
	"AZURECHINACLOUD":        "core.chinacloudapi.cn",
	"AZUREGERMANCLOUD":       "core.cloudapi.de",
}

// serviceBusSuffixes are the Service Bus (and Event Hubs) endpoint suffixes of KEDA's named clouds, keyed by
// upper-cased cloud name.
var serviceBusSuffixes = map[string]string{
	"AZUREPUBLICCLOUD":       "servicebus.windows.net",
	"AZUREUSGOVERNMENTCLOUD": "servicebus.usgovcloudapi.net",
	"AZURECHINACLOUD":        "servicebus.chinacloudapi.cn",
	"AZUREGERMANCLOUD":       "servicebus.cloudapi.de",
}

// StorageEndpointSuffix resolves KEDA's cloud and endpointSuffix metadata for a storage service ("queue",
// "blob"): a named cloud gives "<service>.<cloud suffix>" (the public cloud when cloud is empty), cloud Private
// takes endpointSuffix as written. Errors name the field.
func StorageEndpointSuffix(cloud, endpointSuffix, service string) (string, error) {
	return StorageEndpointSuffixFrom(cloud, endpointSuffix, "endpointSuffix", service)
}

// StorageEndpointSuffixFrom is StorageEndpointSuffix for a trigger whose Private-cloud suffix has another
// metadata key, suffixField (azure-eventhub's storageEndpointSuffix).
func StorageEndpointSuffixFrom(cloud, suffix, suffixField, service string) (string, error) {
	s, private, err := cloudSuffix(cloud, suffix, suffixField, storageSuffixes)
	if err != nil || private {
		return s, err
	}
	return service + "." + s, nil
}

// ServiceBusEndpointSuffix resolves KEDA's cloud and endpointSuffix metadata for a Service Bus or Event Hubs
// namespace: the named cloud's suffix (servicebus.windows.net for the public cloud, also when cloud is empty),
// or endpointSuffix as written for cloud Private. Errors name the field.
func ServiceBusEndpointSuffix(cloud, endpointSuffix string) (string, error) {
	s, _, err := cloudSuffix(cloud, endpointSuffix, "endpointSuffix", serviceBusSuffixes)
	return s, err
}

func cloudSuffix(cloud, suffix, suffixField string, suffixes map[string]string) (string, bool, error) {
	if cloud == "" {
		cloud = "AzurePublicCloud"
	}
	if strings.EqualFold(cloud, PrivateCloud) {
		if suffix == "" {
			return "", true, fmt.Errorf("%s: required when cloud is Private", suffixField)
		}
		return suffix, true, nil
	}
	s, ok := suffixes[strings.ToUpper(cloud)]
	if !ok {
		return "", false, fmt.Errorf("cloud: want one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, Private, got %q", cloud)
	}
	return s, false, nil
}

// Storage is the connection metadata of the storage scalers, with KEDA's names: connection (from authParams, or
// from the target's environment through connectionFromEnv), or accountName with cloud/endpointSuffix for the
// workload identity of the pod Tidal runs in.
type Storage struct {
	Connection     string `tidal:"name=connection,order=authParams;triggerMetadata,optional"`
	AccountName    string `tidal:"name=accountName,optional"`
	Cloud          string `tidal:"name=cloud,optional"`
	EndpointSuffix string `tidal:"name=endpointSuffix,optional"`

	// ServiceURL is https://<accountName>.<suffix> when no connection string is given; set by Resolve.
	ServiceURL string
	// Identity is the trigger's spec.podIdentity (scalers.TriggerConfig.PodIdentity), set by the trigger before
	// NewClient; nil uses the Tidal pod's workload identity.
	Identity *scalers.PodIdentity
}

// Resolve checks that a connection string or an account name is given and, for the latter, builds ServiceURL
// for service ("queue", "blob").
func (s *Storage) Resolve(service string) error {
	suffix, err := StorageEndpointSuffix(s.Cloud, s.EndpointSuffix, service)
	if err != nil {
		return err
	}
	switch {
	case s.Connection != "":
		if !strings.Contains(s.Connection, "=") {
			return errors.New("connection: want a storage connection string (AccountName=...;AccountKey=... or BlobEndpoint=...;SharedAccessSignature=...)")
		}
		return nil
	case s.AccountName != "":
		if strings.ContainsAny(s.AccountName, "/:@ .") {
			return fmt.Errorf("accountName: want a storage account name, got %q", s.AccountName)
		}
		s.ServiceURL = "https://" + s.AccountName + "." + suffix
		return nil
	}
	return errors.New("connection: missing: set connection in the TriggerAuthentication (or connectionFromEnv), or accountName for workload identity")
}

// WorkloadIdentity returns the credential of a trigger that gives an account name instead of a connection
// string: its TriggerAuthentication's spec.podIdentity azure-workload (pi, scalers.TriggerConfig.PodIdentity),
// or without one the Azure workload identity of the Tidal pod (the AZURE_CLIENT_ID, AZURE_TENANT_ID and
// AZURE_FEDERATED_TOKEN_FILE the webhook injects).
func WorkloadIdentity(pi *scalers.PodIdentity, opts policy.ClientOptions) (azcore.TokenCredential, error) {
	if pi != nil {
		if pi.Azure == nil {
			return nil, fmt.Errorf("spec.podIdentity: provider %s does not apply to an Azure trigger; use azure-workload", pi.Provider)
		}
		return pi.Azure, nil
	}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("accountName: workload identity is not configured for the Tidal pod: %w", err)
	}
	return cred, nil
}

// ClientOptions are the pipeline options of every Azure SDK client a scaler builds: the given HTTP client (its
// timeout bounds one try), at most two quick retries so a down endpoint fails within a polling interval, and no
// telemetry header.
func ClientOptions(hc *http.Client) policy.ClientOptions {
	return policy.ClientOptions{
		Transport: hc,
		Retry: policy.RetryOptions{
			MaxRetries:    2,
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: time.Second,
		},
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
}

// ErrorCode returns the storage or service error code of an SDK error (AuthenticationFailed, QueueNotFound, ...)
// and the HTTP status, or "" and 0 when err is not a response error.
func ErrorCode(err error) (string, int) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode, re.StatusCode
	}
	return "", 0
}

// Describe shortens an SDK error for a trigger error: a response error reads "HTTP 403 AuthenticationFailed"
// (the SDK's own message spans many lines and repeats the request URL) and still unwraps to the
// *azcore.ResponseError; other errors are returned as they are.
func Describe(err error) error {
	code, status := ErrorCode(err)
	if status == 0 {
		return err
	}
	msg := fmt.Sprintf("HTTP %d", status)
	if code != "" {
		msg += " " + code
	}
	return &shortError{msg: msg, err: err}
}

type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }

// DefaultTimeout is KEDA's global HTTP timeout default, the bound of one try of an Azure SDK call.
const DefaultTimeout = 3 * time.Second

// HTTPClient returns an HTTP client for an Azure scaler of scalerType over the transport shared by that type's
// triggers, and the release func of that transport.
func HTTPClient(shared *scalers.Shared, scalerType string) (*http.Client, func() error, error) {
	tr, release, err := httpauth.AcquireTransport(shared, scalerType, tlsauth.Options{})
	if err != nil {
		return nil, nil, err
	}
	return &http.Client{Transport: tr, Timeout: DefaultTimeout}, release, nil
}

// Connect acquires HTTPClient's transport for a trigger of scalerType and calls connect with the pipeline
// options over it, which builds the trigger's SDK clients. It returns the transport's release func, or releases it
// when connect fails. Errors name the trigger.
func Connect(cfg *scalers.TriggerConfig, scalerType string, connect func(opts policy.ClientOptions) error) (func() error, error) {
	hc, release, err := HTTPClient(cfg.Shared, scalerType)
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	if err := connect(ClientOptions(hc)); err != nil {
		_ = release()
		return nil, cfg.Errorf("%w", err)
	}
	return release, nil
}

// NewClient builds the SDK client of one storage entity (a queue, a container) of a trigger of scalerType with
// Connect, whose release func it returns: from the connection string when one is given, else at
// ServiceURL/entity with WorkloadIdentity of cfg's pod identity (set into s.Identity). fromConn and fromCred are
// the SDK's two constructors; options wraps the pipeline options both get into the SDK's options type. Errors
// name the trigger.
func NewClient[C, O any](cfg *scalers.TriggerConfig, scalerType string, s *Storage, entity string,
	fromConn func(conn, entity string, opts *O) (C, error),
	fromCred func(url string, cred azcore.TokenCredential, opts *O) (C, error),
	options func(policy.ClientOptions) *O) (C, func() error, error) {
	s.Identity = cfg.PodIdentity
	var c C
	release, err := Connect(cfg, scalerType, func(opts policy.ClientOptions) error {
		if s.Connection != "" {
			var err error
			if c, err = fromConn(s.Connection, entity, options(opts)); err != nil {
				// The SDK's parse error may quote the connection string: keep it out.
				return errors.New("connection: not a valid storage connection string")
			}
			return nil
		}
		cred, err := WorkloadIdentity(s.Identity, opts)
		if err != nil {
			return err
		}
		c, err = fromCred(s.ServiceURL+"/"+entity, cred, options(opts))
		return err
	})
	return c, release, err
}
