package provider

import (
	"context"
	"fmt"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// GetStatsSummary implements the kubelet's /stats/summary: per-pod stats from the backend (when it measures
// them) and node totals summed from the pods.
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	now := metav1.NewTime(p.clock.Now())
	sum := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.opts.NodeName, StartTime: p.started}}
	sr, ok := p.opts.Backend.(backend.StatsReporter)
	if !ok {
		return sum, nil
	}
	pods, err := sr.PodStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("virtual node %s: stats: %w", p.opts.NodeName, err)
	}
	var cpuNano, cpuCoreNanoSec, mem uint64
	for _, ps := range pods {
		if ps.CPU != nil {
			cpuNano += deref(ps.CPU.UsageNanoCores)
			cpuCoreNanoSec += deref(ps.CPU.UsageCoreNanoSeconds)
		}
		if ps.Memory != nil {
			mem += deref(ps.Memory.WorkingSetBytes)
		}
	}
	sum.Pods = pods
	sum.Node.CPU = &statsv1alpha1.CPUStats{Time: now, UsageNanoCores: &cpuNano, UsageCoreNanoSeconds: &cpuCoreNanoSec}
	sum.Node.Memory = &statsv1alpha1.MemoryStats{Time: now, WorkingSetBytes: &mem, UsageBytes: &mem}
	return sum, nil
}

func deref(v *uint64) uint64 {
	if v == nil {
		return 0
	}
	return *v
}

// GetMetricsResource implements the kubelet's /metrics/resource (what metrics-server scrapes): node, pod and
// container CPU seconds and working-set bytes, built from the stats summary.
func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	sum, err := p.GetStatsSummary(ctx)
	if err != nil {
		return nil, err
	}
	ts := proto.Int64(p.clock.Now().UnixMilli())
	counter := func(name, help string) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_COUNTER.Enum()}
	}
	gauge := func(name, help string) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_GAUGE.Enum()}
	}
	label := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	nodeCPU := counter("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds")
	nodeMem := gauge("node_memory_working_set_bytes", "Current working set of the node in bytes")
	podCPU := counter("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds")
	podMem := gauge("pod_memory_working_set_bytes", "Current working set of the pod in bytes")
	ctrCPU := counter("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds")
	ctrMem := gauge("container_memory_working_set_bytes", "Current working set of the container in bytes")
	ctrStart := gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds")
	if c := sum.Node.CPU; c != nil {
		nodeCPU.Metric = append(nodeCPU.Metric, &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(seconds(c.UsageCoreNanoSeconds))}, TimestampMs: ts})
	}
	if m := sum.Node.Memory; m != nil {
		nodeMem.Metric = append(nodeMem.Metric, &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(float64(deref(m.WorkingSetBytes)))}, TimestampMs: ts})
	}
	for _, ps := range sum.Pods {
		pl := []*dto.LabelPair{label("namespace", ps.PodRef.Namespace), label("pod", ps.PodRef.Name)}
		if ps.CPU != nil {
			podCPU.Metric = append(podCPU.Metric, &dto.Metric{Label: pl, Counter: &dto.Counter{Value: proto.Float64(seconds(ps.CPU.UsageCoreNanoSeconds))}, TimestampMs: ts})
		}
		if ps.Memory != nil {
			podMem.Metric = append(podMem.Metric, &dto.Metric{Label: pl, Gauge: &dto.Gauge{Value: proto.Float64(float64(deref(ps.Memory.WorkingSetBytes)))}, TimestampMs: ts})
		}
		for _, cs := range ps.Containers {
			cl := []*dto.LabelPair{label("container", cs.Name), label("namespace", ps.PodRef.Namespace), label("pod", ps.PodRef.Name)}
			if cs.CPU != nil {
				ctrCPU.Metric = append(ctrCPU.Metric, &dto.Metric{Label: cl, Counter: &dto.Counter{Value: proto.Float64(seconds(cs.CPU.UsageCoreNanoSeconds))}, TimestampMs: ts})
			}
			if cs.Memory != nil {
				ctrMem.Metric = append(ctrMem.Metric, &dto.Metric{Label: cl, Gauge: &dto.Gauge{Value: proto.Float64(float64(deref(cs.Memory.WorkingSetBytes)))}, TimestampMs: ts})
			}
			ctrStart.Metric = append(ctrStart.Metric, &dto.Metric{Label: cl, Gauge: &dto.Gauge{Value: proto.Float64(float64(cs.StartTime.Unix()))}, TimestampMs: ts})
		}
	}
	scrapeErr := gauge("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise")
	scrapeErr.Metric = []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(0)}}}
	// A family without samples (no running pod yet) cannot be encoded: the text encoder refuses it, and the
	// whole response would be an error.
	var out []*dto.MetricFamily
	for _, mf := range []*dto.MetricFamily{nodeCPU, nodeMem, podCPU, podMem, ctrCPU, ctrMem, ctrStart, scrapeErr} {
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	return out, nil
}

func seconds(nanos *uint64) float64 { return float64(deref(nanos)) / float64(time.Second) }

// GetContainerLogs implements the kubelet's containerLogs endpoint through the backend's LogReader.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	key := backend.Key{Namespace: namespace, Name: podName}
	lr, ok := p.opts.Backend.(backend.LogReader)
	if !ok {
		return nil, errdefs.InvalidInputf("virtual node %s: backend keeps no container logs", p.opts.NodeName)
	}
	if _, err := p.GetPod(ctx, namespace, podName); err != nil {
		return nil, err
	}
	lo := backend.LogOptions{
		Tail: opts.Tail, LimitBytes: opts.LimitBytes, Timestamps: opts.Timestamps, Follow: opts.Follow,
		Previous: opts.Previous, SinceTime: opts.SinceTime,
	}
	if opts.SinceSeconds > 0 {
		lo.SinceTime = p.clock.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	rc, err := lr.Logs(ctx, key, containerName, lo)
	if err != nil {
		return nil, asVKError(err)
	}
	return rc, nil
}

// RunInContainer implements kubectl exec through the backend's Executor.
func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	ex, ok := p.opts.Backend.(backend.Executor)
	if !ok {
		return errdefs.InvalidInputf("virtual node %s: backend cannot exec in containers", p.opts.NodeName)
	}
	if _, err := p.GetPod(ctx, namespace, podName); err != nil {
		return err
	}
	var resize chan backend.TermSize
	if attach.TTY() && attach.Resize() != nil {
		resize = make(chan backend.TermSize)
		go func() {
			defer close(resize)
			for s := range attach.Resize() {
				select {
				case resize <- backend.TermSize{Width: s.Width, Height: s.Height}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	err := ex.Exec(ctx, backend.Key{Namespace: namespace, Name: podName}, containerName, cmd, backend.Streams{
		Stdin: attach.Stdin(), Stdout: attach.Stdout(), Stderr: attach.Stderr(), TTY: attach.TTY(), Resize: resize,
	})
	return asVKError(err)
}

// AttachToContainer is not supported: backends do not keep a container's stdin open.
func (p *Provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported on a Tidal virtual node")
}

// PortForward is not supported.
func (p *Provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("port-forward is not supported on a Tidal virtual node")
}

func asVKError(err error) error {
	if err == nil {
		return nil
	}
	if errorsIsNotFound(err) {
		return errdefs.AsNotFound(err)
	}
	if _, ok := backend.AsPodError(err); ok {
		return errdefs.AsInvalidInput(err)
	}
	return err
}
