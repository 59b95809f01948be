package nats

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// clusterInfo is a stream's or consumer's raft group as one server sees it. The server that answers is never in
// its own replicas list, so it leads the group exactly when the leader is not listed there.
type clusterInfo struct {
	Leader   string `json:"leader"`
	Replicas []struct {
		Name string `json:"name"`
	} `json:"replicas"`
}

func (c *clusterInfo) answeredByLeader() bool {
	if c == nil || c.Leader == "" {
		return true // standalone server
	}
	for _, r := range c.Replicas {
		if r.Name == c.Leader {
			return false
		}
	}
	return true
}

// jszResponse is the part of the monitoring endpoint's /jsz?consumers=true answer the scaler reads.
type jszResponse struct {
	MetaCluster *struct {
		ClusterSize int `json:"cluster_size"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name    string       `json:"name"`
			Cluster *clusterInfo `json:"cluster"`
			State   struct {
				LastSeq uint64 `json:"last_seq"`
			} `json:"state"`
			Consumers []struct {
				Name          string       `json:"name"`
				Cluster       *clusterInfo `json:"cluster"`
				NumAckPending int64        `json:"num_ack_pending"`
				NumPending    uint64       `json:"num_pending"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// varzResponse is the part of /varz used to find a cluster's other servers.
type varzResponse struct {
	ServerName  string   `json:"server_name"`
	ConnectURLs []string `json:"connect_urls"`
	Cluster     struct {
		URLs []string `json:"urls"`
	} `json:"cluster"`
}

// jszResult is what one server's /jsz says about the trigger's consumer.
type jszResult struct {
	lag         int64
	streamFound bool
	clustered   bool
	// fromLeader: the answering server leads the consumer (or, with no such consumer, the stream), so its
	// numbers are current; a follower's may lag behind.
	fromLeader bool
}

// monitorReader reads a consumer's lag from the servers' HTTP monitoring endpoints, as KEDA does. In a cluster
// only the consumer leader's numbers are current: when the configured endpoint is not the leader, it lists the
// cluster's servers (/varz connect_urls, or server names under the endpoint's domain like KEDA) and asks each
// until the leader answers, then remembers the leader until it moves.
type monitorReader struct {
	seed    *url.URL // the configured /jsz URL
	meta    *Metadata
	log     *zap.Logger
	client  *http.Client
	release func() error

	mu          sync.Mutex
	leaderURL   string
	warnedStale bool
}

func newMonitorReader(cfg *scalers.TriggerConfig, meta *Metadata, tlsCfg *tls.Config) (*monitorReader, error) {
	seed, err := url.Parse(meta.monitoringURL)
	if err != nil {
		return nil, fmt.Errorf("natsServerMonitoringEndpoint: %w", err)
	}
	key := scalers.ClientKey("nats-monitoring", map[string]string{"tls": tlsKey(meta)})
	client, release, err := scalers.AcquireHTTPClient(cfg.Shared, key, tlsCfg, 0)
	if err != nil {
		return nil, err
	}
	return &monitorReader{
		seed: seed, meta: meta, client: client, release: release,
		log: cfg.Logger.With(zap.String("stream", meta.Stream), zap.String("consumer", meta.Consumer)),
	}, nil
}

func (r *monitorReader) lag(ctx context.Context) (int64, error) {
	r.mu.Lock()
	leader := r.leaderURL
	r.mu.Unlock()
	if leader != "" {
		res, err := r.query(ctx, leader)
		if err == nil && res.streamFound && res.fromLeader {
			return res.lag, nil
		}
		if ctx.Err() != nil {
			return 0, err
		}
		r.setLeader("") // the leader moved or its server is gone: look again
	}
	res, err := r.query(ctx, r.seed.String())
	if err != nil {
		return 0, err
	}
	if res.streamFound && (res.fromLeader || !res.clustered) {
		return res.lag, nil
	}
	if !res.clustered {
		return 0, fmt.Errorf("stream not found in account %q", r.meta.Account)
	}
	u, lres, err := r.findLeader(ctx)
	if err == nil {
		r.setLeader(u)
		return lres.lag, nil
	}
	if !res.streamFound {
		return 0, fmt.Errorf("stream not found in account %q on any cluster server: %w", r.meta.Account, err)
	}
	r.mu.Lock()
	warn := !r.warnedStale
	r.warnedStale = true
	r.mu.Unlock()
	if warn {
		r.log.Warn("nats consumer leader not reachable through the monitoring endpoints; using a follower's possibly stale numbers",
			zap.String("error", err.Error()))
	}
	return res.lag, nil
}

func (r *monitorReader) setLeader(u string) {
	r.mu.Lock()
	r.leaderURL = u
	if u != "" {
		r.warnedStale = false
	}
	r.mu.Unlock()
}

// findLeader asks every server of the cluster for the consumer and returns the /jsz URL of the one that leads it.
func (r *monitorReader) findLeader(ctx context.Context) (string, *jszResult, error) {
	hosts, err := r.clusterHosts(ctx)
	if err != nil {
		return "", nil, err
	}
	var errs []error
	for _, h := range hosts {
		u := *r.seed
		u.Host = h
		res, err := r.query(ctx, u.String())
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if res.streamFound && res.fromLeader {
			return u.String(), res, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no server of %d reports itself as the leader", len(hosts)))
	}
	return "", nil, errors.Join(errs...)
}

// clusterHosts lists the monitoring host:port of every server in the cluster, as KEDA finds them: the hosts of
// /varz connect_urls with the endpoint's monitoring port, or, when servers advertise no client URLs, each
// route's server name as a subdomain of the endpoint host (a Kubernetes headless service: nats-0.nats.ns.svc).
func (r *monitorReader) clusterHosts(ctx context.Context) ([]string, error) {
	vu := *r.seed
	vu.Path, vu.RawQuery = "/varz", ""
	var v varzResponse
	if err := r.get(ctx, vu.String(), &v); err != nil {
		return nil, err
	}
	port := r.seed.Port()
	join := func(host string) string {
		if port == "" {
			return host
		}
		return net.JoinHostPort(host, port)
	}
	seen := map[string]bool{}
	var hosts []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, cu := range v.ConnectURLs {
		host := cu
		if h, _, err := net.SplitHostPort(cu); err == nil {
			host = h
		}
		add(join(host))
	}
	if len(hosts) == 0 {
		names := []string{v.ServerName}
		for _, cu := range v.Cluster.URLs {
			if h, _, err := net.SplitHostPort(cu); err == nil {
				names = append(names, h)
			}
		}
		for _, n := range names {
			node, _, _ := strings.Cut(n, ".")
			if node != "" {
				add(join(node + "." + r.seed.Hostname()))
			}
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("/varz lists no cluster servers")
	}
	return hosts, nil
}

// query reads one server's /jsz and extracts the trigger's consumer.
func (r *monitorReader) query(ctx context.Context, jszURL string) (*jszResult, error) {
	var jsz jszResponse
	if err := r.get(ctx, jszURL, &jsz); err != nil {
		return nil, err
	}
	res := &jszResult{clustered: jsz.MetaCluster != nil && jsz.MetaCluster.ClusterSize > 1}
	for _, acc := range jsz.Accounts {
		if acc.Name != r.meta.Account {
			continue
		}
		for _, st := range acc.Streams {
			if st.Name != r.meta.Stream {
				continue
			}
			res.streamFound = true
			for _, c := range st.Consumers {
				if c.Name == r.meta.Consumer {
					res.lag = clampAdd(c.NumPending, c.NumAckPending)
					res.fromLeader = c.Cluster.answeredByLeader()
					return res, nil
				}
			}
			// KEDA: no such consumer (yet) means the whole stream is lag.
			res.lag = clampAdd(st.State.LastSeq, 0)
			res.fromLeader = st.Cluster.answeredByLeader()
			return res, nil
		}
	}
	return res, nil
}

// get fetches a monitoring endpoint into out. Errors name the host and path only.
func (r *monitorReader) get(ctx context.Context, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("monitoring endpoint request: %w", err)
	}
	where := req.URL.Host + req.URL.Path
	resp, err := r.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("monitoring endpoint GET %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("monitoring endpoint GET %s: %s", where, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
		return fmt.Errorf("monitoring endpoint GET %s: decode: %w", where, err)
	}
	return nil
}

func (r *monitorReader) close() error {
	if r.release == nil {
		return nil
	}
	err := r.release()
	r.release = nil
	return err
}
