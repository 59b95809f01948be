package podmetrics

import (
	"context"
	"errors"
	"fmt"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"io"
	"k8s.io/apimachinery/pkg/selection"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// Defaults of ScrapeOptions.
const (
	// DefaultScrapeInterval is metrics-server's resolution.
	DefaultScrapeInterval = 15 * time.Second
	// DefaultScrapeTimeout bounds one kubelet request.
	DefaultScrapeTimeout = 10 * time.Second
)

// DefaultScrapeNodeSelector picks the virtual nodes whose backend measures real usage: the containerd and process
// backends (tidal-virtual-node labels its node tidal.dev/virtual-node-backend with the backend's name). The sim
// and aci backends' figures are not measured, and kwok nodes serve no kubelet API.
func DefaultScrapeNodeSelector() labels.Selector {
	r, err := labels.NewRequirement(tidalv1alpha1.VirtualNodeBackendLabel, selection.In, []string{"containerd", "process"})
	if err != nil {
		panic(err) // a constant requirement: cannot fail
	}
	return labels.NewSelector().Add(*r)
}

// ScrapeOptions configure reading real usage from the kubelet /metrics/resource of some served nodes, as
// metrics-server does: every Interval, each selected node's kubelet (its InternalIP address and
// status.daemonEndpoints.kubeletEndpoint.port, over HTTPS) is scraped, and a container's CPU is the rate of its
// CPU-seconds counter between the last two scrapes. Requests are answered from the last scrapes only.
type ScrapeOptions struct {
	// NodeSelector picks the nodes scraped, among those Options.NodeSelector serves; DefaultScrapeNodeSelector
	// when nil.
	NodeSelector labels.Selector
	// Interval between scrapes; DefaultScrapeInterval when zero.
	Interval time.Duration
	// Timeout of one kubelet request; DefaultScrapeTimeout when zero.
	Timeout time.Duration
	// Config gives the credentials presented to kubelets (its bearer token or client certificate; the kubelet
	// authorizes get on nodes/metrics). Its CA and server name are not used: kubelets have their own
	// certificates. Required (the server fills it from its client config).
	Config *rest.Config
	// KubeletCAFile verifies the kubelets' serving certificates; empty skips verification, as the API server
	// does without --kubelet-certificate-authority (virtual nodes default to self-signed certificates).
	KubeletCAFile string
}

// scraper keeps the last two scrapes of every scraped node.
type scraper struct {
	opts   ScrapeOptions
	nodes  nodeGetter
	client *http.Client
	log    *zap.Logger
	now    func() time.Time

	mu     sync.RWMutex
	byNode map[string]*nodeScrape
}

// nodeGetter is what the scraper needs of the node lister.
type nodeGetter interface {
	List(selector labels.Selector) ([]*corev1.Node, error)
}

// nodeScrape is one node's last scrape and the usage computed from it and the one before.
type nodeScrape struct {
	last map[containerKey]containerSample
	pods map[podKey]*podUsages
}

func newScraper(opts ScrapeOptions, nodes nodeGetter, log *zap.Logger, now func() time.Time) (*scraper, error) {
	if opts.Config == nil {
		return nil, errors.New("podmetrics: scrape options: config: required")
	}
	if opts.Interval < 0 || opts.Timeout < 0 {
		return nil, fmt.Errorf("podmetrics: scrape options: interval and timeout: must not be negative, got %v and %v", opts.Interval, opts.Timeout)
	}
	if opts.NodeSelector == nil {
		opts.NodeSelector = DefaultScrapeNodeSelector()
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultScrapeInterval
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultScrapeTimeout
	}
	rt, err := KubeletTransport(opts.Config, opts.KubeletCAFile)
	if err != nil {
		return nil, err
	}
	return &scraper{
		opts: opts, nodes: nodes, log: log, now: now,
		client: &http.Client{Transport: rt, Timeout: opts.Timeout},
		byNode: map[string]*nodeScrape{},
	}, nil
}

// KubeletTransport is a round tripper to kubelets with cfg's credentials (bearer token, token file or client
// certificate) and the kubelets' CA from caFile, or no verification when caFile is empty.
func KubeletTransport(cfg *rest.Config, caFile string) (http.RoundTripper, error) {
	kc := &rest.Config{
		BearerToken: cfg.BearerToken, BearerTokenFile: cfg.BearerTokenFile,
		TLSClientConfig: rest.TLSClientConfig{
			CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CertData: cfg.CertData, KeyData: cfg.KeyData,
			CAFile: caFile, Insecure: caFile == "",
		},
		UserAgent: "tidal-metrics-adapter",
	}
	tc, err := kc.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("podmetrics: kubelet transport: %w", err)
	}
	rt, err := transport.New(tc)
	if err != nil {
		return nil, fmt.Errorf("podmetrics: kubelet transport: %w", err)
	}
	return rt, nil
}

// run scrapes every Interval until ctx is done. The first scrape is immediate; rates exist from the second.
func (s *scraper) run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.scrapeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrapeAll scrapes the selected nodes concurrently and forgets the nodes no longer selected.
func (s *scraper) scrapeAll(ctx context.Context) {
	nodes, err := s.nodes.List(s.opts.NodeSelector)
	if err != nil {
		s.log.Warn("list nodes to scrape", zap.Error(err))
		return
	}
	var wg sync.WaitGroup
	keep := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		keep[n.Name] = true
		wg.Go(func() {
			samples, err := s.scrapeNode(ctx, n)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("scrape kubelet", zap.String("node", n.Name), zap.Error(err))
				}
				s.forget(n.Name) // stale rates would outlive the node's real usage
				return
			}
			s.record(n.Name, samples)
		})
	}
	wg.Wait()
	s.mu.Lock()
	for name := range s.byNode {
		if !keep[name] {
			delete(s.byNode, name)
		}
	}
	s.mu.Unlock()
}

// kubeletURL is the node's /metrics/resource address: its InternalIP and kubelet port.
func kubeletURL(n *corev1.Node) (string, error) {
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return "", fmt.Errorf("node %s: status.daemonEndpoints.kubeletEndpoint.port: not set", n.Name)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			return "https://" + net.JoinHostPort(a.Address, strconv.Itoa(int(port))) + "/metrics/resource", nil
		}
	}
	return "", fmt.Errorf("node %s: status.addresses: no InternalIP", n.Name)
}

func (s *scraper) scrapeNode(ctx context.Context, n *corev1.Node) (map[containerKey]containerSample, error) {
	url, err := kubeletURL(n)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("node %s: GET %s: %s: %s", n.Name, url, resp.Status, body)
	}
	samples, err := parseMetricsResource(resp.Body, s.now())
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return samples, nil
}

// record stores a node's scrape and the rates since its previous one.
func (s *scraper) record(node string, samples map[containerKey]containerSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev map[containerKey]containerSample
	if ns := s.byNode[node]; ns != nil {
		prev = ns.last
	}
	s.byNode[node] = &nodeScrape{last: samples, pods: ratesBetween(prev, samples)}
}

func (s *scraper) forget(node string) {
	s.mu.Lock()
	delete(s.byNode, node)
	s.mu.Unlock()
}

// scraped reports whether the node's pods are measured rather than simulated.
func (s *scraper) scraped(n *corev1.Node) bool {
	return s.opts.NodeSelector.Matches(labels.Set(n.Labels))
}

// podUsage is the measured usage of a pod on node. It reports measured false when the caller should simulate
// the pod: the node is not scraped, or its last scrape did not have the pod (not started yet). A measured pod with
// a nil usage is not served, as metrics-server does not serve it: its node has no successful scrape yet, or some
// container has no rate yet (the pod's first scrape, or a container started again).
func (s *scraper) podUsage(node *corev1.Node, pod *corev1.Pod) (usage map[string]containerUsage, measured bool) {
	if !s.scraped(node) {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ns := s.byNode[node.Name]
	if ns == nil {
		return nil, true
	}
	pu, ok := ns.pods[podKey{Namespace: pod.Namespace, Name: pod.Name}]
	if !ok {
		return nil, false
	}
	if !pu.complete || len(pod.Spec.Containers) == 0 {
		return nil, true
	}
	for _, c := range pod.Spec.Containers {
		if _, ok := pu.containers[c.Name]; !ok {
			return nil, true
		}
	}
	return pu.containers, true
}
