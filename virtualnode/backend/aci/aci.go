// Package aci is the virtual-node backend that runs each pod as an Azure Container Instances container group
// through the Azure SDK for Go (armcontainerinstance): create/get/delete/list, logs, region, resource group,
// subnets, and a service principal or managed identity credential (CredentialFromSecret).
//
// Throttling (429 with Retry-After) is retried by the SDK's retry policy, which honours Retry-After; quota
// errors become a retryable backend.PodError (reason QuotaExceeded), so the pod stays Pending with that reason
// and is retried with backoff. Pod status comes from a periodic list of the resource group's container groups.
package aci

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	armci "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// Options configure the ACI backend.
type Options struct {
	SubscriptionID string
	ResourceGroup  string
	Region         string
	// SubnetIDs put container groups in a VNet (private IP); empty means a public IP when ports are exposed.
	SubnetIDs  []string
	Credential azcore.TokenCredential
	// ClientOptions override the ARM endpoint, transport and retry policy (tests point them at a fake server).
	ClientOptions *arm.ClientOptions
	Changed       backend.ChangeFunc
	NodeName      string
	NodeIP        string
	// WebSocketTLS, when set, is the TLS configuration for exec websockets (tests trust their fake's certificate).
	WebSocketTLS *tls.Config
	// PollInterval is how often container group states are listed (default 5s).
	PollInterval time.Duration
	Logger       *zap.Logger
}

// Validate checks the options, naming each missing field.
func (o Options) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"subscriptionId", o.SubscriptionID}, {"resourceGroup", o.ResourceGroup}, {"region", o.Region}, {"nodeName", o.NodeName},
	} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("aci backend: %s: must be set", f.name))
		}
	}
	if o.Credential == nil {
		errs = append(errs, errors.New("aci backend: credential: must be set"))
	}
	if o.Changed == nil {
		errs = append(errs, errors.New("aci backend: Changed: must be set"))
	}
	return errors.Join(errs...)
}

// Backend runs pods as ACI container groups. Use New.
type Backend struct {
	opts       Options
	log        *zap.Logger
	groups     *armci.ContainerGroupsClient
	containers *armci.ContainersClient
	cancel     context.CancelFunc
	done       chan struct{}

	mu   sync.Mutex
	pods map[backend.Key]*aciPod
}

var _ backend.Backend = (*Backend)(nil)
var _ backend.LogReader = (*Backend)(nil)

type aciPod struct {
	pod    *corev1.Pod
	group  string
	status *corev1.PodStatus
}

// New returns an ACI backend and starts its status poller.
func New(opts Options) (*Backend, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	co := opts.ClientOptions
	if co == nil {
		co = &arm.ClientOptions{}
	}
	if co.Retry.MaxRetries == 0 {
		co.Retry.MaxRetries = 5
	}
	if co.Retry.MaxRetryDelay == 0 {
		co.Retry.MaxRetryDelay = time.Minute
	}
	co.Telemetry = policy.TelemetryOptions{ApplicationID: "tidal-virtual-node"}
	groups, err := armci.NewContainerGroupsClient(opts.SubscriptionID, opts.Credential, co)
	if err != nil {
		return nil, fmt.Errorf("aci backend: container groups client: %w", err)
	}
	containers, err := armci.NewContainersClient(opts.SubscriptionID, opts.Credential, co)
	if err != nil {
		return nil, fmt.Errorf("aci backend: containers client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{opts: opts, log: opts.Logger, groups: groups, containers: containers, cancel: cancel,
		done: make(chan struct{}), pods: map[backend.Key]*aciPod{}}
	go b.pollLoop(ctx)
	return b, nil
}

// Create implements backend.Backend: a PUT of the container group, not waiting for provisioning.
func (b *Backend) Create(ctx context.Context, p backend.Pod) error {
	key := backend.KeyOf(p.Pod)
	b.mu.Lock()
	if _, ok := b.pods[key]; ok {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	cg, err := b.containerGroup(p)
	if err != nil {
		return err
	}
	name := GroupName(key)
	if _, err := b.groups.BeginCreateOrUpdate(ctx, b.opts.ResourceGroup, name, cg, nil); err != nil {
		return classify(fmt.Sprintf("create container group %q", name), err)
	}
	b.mu.Lock()
	b.pods[key] = &aciPod{pod: p.Pod, group: name}
	b.mu.Unlock()
	b.log.Info("container group created", zap.String("pod", key.String()), zap.String("containerGroup", name))
	return nil
}

// classify turns an ARM error into a PodError where it is about the pod (quota, image, invalid spec).
func classify(what string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", what, err)
	}
	code := re.ErrorCode
	msg := fmt.Sprintf("%s: ACI %d %s", what, re.StatusCode, code)
	if m := armMessage(re); m != "" {
		msg += ": " + m
	}
	switch {
	case strings.Contains(strings.ToLower(code), "quota"):
		return &backend.PodError{Reason: backend.ReasonQuotaExceeded, Message: msg, Retryable: true, Err: err}
	case code == "InaccessibleImage" || code == "RegistryErrorResponse":
		return &backend.PodError{Reason: "ErrImagePull", Message: msg, Retryable: true, Err: err}
	case code == "ServiceUnavailable" || code == "ResourceRequestsNotAvailable" || code == "SkuNotAvailable":
		return &backend.PodError{Reason: "CapacityNotAvailable", Message: msg, Retryable: true, Err: err}
	case re.StatusCode == http.StatusBadRequest:
		return &backend.PodError{Reason: backend.ReasonInvalidPod, Message: msg, Err: err}
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// armMessage returns error.message of an ARM error body, if the response has one.
func armMessage(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	var doc struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	return doc.Error.Message
}

// Delete implements backend.Backend: it starts deleting the container group and reports the pod terminated.
func (b *Backend) Delete(ctx context.Context, key backend.Key, _ time.Duration) error {
	b.mu.Lock()
	ap, ok := b.pods[key]
	b.mu.Unlock()
	if !ok {
		return backend.NotFound(key)
	}
	if _, err := b.groups.BeginDelete(ctx, b.opts.ResourceGroup, ap.group, nil); err != nil {
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
			return fmt.Errorf("delete container group %q: %w", ap.group, err)
		}
	}
	b.mu.Lock()
	delete(b.pods, key)
	st := ap.status
	if st == nil {
		st = &corev1.PodStatus{}
	}
	b.mu.Unlock()
	b.opts.Changed(key, podstatus.Terminated(ap.pod, st, "Deleted", metav1.Now()))
	return nil
}

// Status implements backend.Backend with a GET of the container group.
func (b *Backend) Status(ctx context.Context, key backend.Key) (*corev1.PodStatus, error) {
	b.mu.Lock()
	ap, ok := b.pods[key]
	b.mu.Unlock()
	if !ok {
		return nil, backend.NotFound(key)
	}
	resp, err := b.groups.Get(ctx, b.opts.ResourceGroup, ap.group, nil)
	if err != nil {
		return nil, fmt.Errorf("get container group %q: %w", ap.group, err)
	}
	return b.podStatus(ap.pod, &resp.ContainerGroup, time.Now()), nil
}

// Close implements backend.Backend: it stops the poller. Container groups keep running: they belong to the
// pods, which the cluster still has; the next start of the node finds them again.
func (b *Backend) Close(context.Context) error {
	b.cancel()
	<-b.done
	return nil
}

func (b *Backend) pollLoop(ctx context.Context) {
	defer close(b.done)
	t := time.NewTicker(b.opts.PollInterval)
	defer t.Stop()
	for {
		if err := b.sync(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("list container groups", zap.String("resourceGroup", b.opts.ResourceGroup), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync lists the resource group's container groups and reports every changed pod status.
func (b *Backend) sync(ctx context.Context) error {
	byName := map[string]*armci.ContainerGroup{}
	pager := b.groups.NewListByResourceGroupPager(b.opts.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, cg := range page.Value {
			if cg == nil || cg.Name == nil || cg.Tags[TagNode] == nil || *cg.Tags[TagNode] != b.opts.NodeName {
				continue
			}
			byName[*cg.Name] = cg
		}
	}
	type change struct {
		key backend.Key
		st  *corev1.PodStatus
	}
	var changes []change
	now := time.Now()
	b.mu.Lock()
	for key, ap := range b.pods {
		cg, ok := byName[ap.group]
		if !ok {
			continue
		}
		st := b.podStatus(ap.pod, cg, now)
		if ap.status == nil || !statusEqual(ap.status, st) {
			ap.status = st
			changes = append(changes, change{key, st.DeepCopy()})
		}
	}
	b.mu.Unlock()
	for _, c := range changes {
		b.opts.Changed(c.key, c.st)
	}
	return nil
}

// statusEqual compares what matters of two statuses (not condition timestamps).
func statusEqual(a, b *corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || a.Reason != b.Reason || len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i], b.ContainerStatuses[i]
		if x.Ready != y.Ready || x.RestartCount != y.RestartCount || stateName(x.State) != stateName(y.State) {
			return false
		}
	}
	return true
}

func stateName(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return "terminated:" + s.Terminated.Reason
	case s.Waiting != nil:
		return "waiting:" + s.Waiting.Reason
	}
	return ""
}

// Logs implements backend.LogReader with the ACI logs API (a snapshot: ACI has no follow).
func (b *Backend) Logs(ctx context.Context, key backend.Key, container string, opts backend.LogOptions) (io.ReadCloser, error) {
	b.mu.Lock()
	ap, ok := b.pods[key]
	b.mu.Unlock()
	if !ok {
		return nil, backend.NotFound(key)
	}
	lo := &armci.ContainersClientListLogsOptions{Timestamps: to.Ptr(opts.Timestamps)}
	if opts.Tail > 0 {
		lo.Tail = to.Ptr(int32(opts.Tail))
	}
	resp, err := b.containers.ListLogs(ctx, b.opts.ResourceGroup, ap.group, container, lo)
	if err != nil {
		return nil, fmt.Errorf("logs of container group %q container %q: %w", ap.group, container, err)
	}
	content := ""
	if resp.Content != nil {
		content = *resp.Content
	}
	if opts.LimitBytes > 0 && len(content) > opts.LimitBytes {
		content = content[:opts.LimitBytes]
	}
	return io.NopCloser(strings.NewReader(content)), nil
}
