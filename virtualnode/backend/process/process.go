// Package process is the virtual-node backend that runs each container as a local process: the image is mapped
// to a command (ImageResolver), stdout/stderr are kept for kubectl logs, kubectl exec runs a command with the
// container's environment, exec/HTTP/TCP probes drive readiness and liveness, and CPU/memory come from /proc.
//
// Every container runs in its own process group, killed as a group on delete and on Close; the Linux parent
// death signal kills it too if the virtual node itself dies, so no process outlives the node.
//
// Pods run only allow-listed executables (the image map's entrypoints and Options.AllowedCommands), and with
// Options.Sandbox as an unprivileged uid in their own mount and PID namespaces, with Sandbox.PrivateRoot in a
// root filesystem of their own (read-only system directories, their pod directory, their own /proc and /tmp;
// built by an init step, the binary re-executed under a hidden name, see rootfs.go). kubectl exec and exec probes
// get the same allow-list and identity, and join the running container's namespaces and root (nsenter). The
// backend is opt-in in tidal-virtual-node (--backend=process); docs/virtual-node.md describes the sandbox.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// Options configure the process backend.
type Options struct {
	// Images maps images to commands. Required.
	Images ImageResolver
	// Dir holds one directory per pod (volumes, logs, working directory). Required.
	Dir string
	// Changed receives status changes. Required.
	Changed backend.ChangeFunc
	// NodeIP is reported as host and pod IP (processes share the host network).
	NodeIP string
	Logger *zap.Logger
	// RestartBackoff is the first crash-loop delay, doubled up to RestartBackoffMax (defaults 10s and 5m, as the
	// kubelet).
	RestartBackoff, RestartBackoffMax time.Duration
	// Env is added to every container's environment before the pod's own (default: PATH from this process).
	Env []string
	// AllowedCommands are the executables a pod may run besides its image's mapped entrypoint: as a container
	// command, with kubectl exec, or in an exec probe. Anything else fails the pod (ReasonCommandNotAllowed) or
	// the exec. An image mapped to an empty argv ("the pod's command runs as given") still needs its command here.
	AllowedCommands []string
	// Sandbox, when set, runs every process of a pod as Sandbox.UID in its own namespaces. Nil runs them as this
	// process's user: only for tests and trusted single-user setups.
	Sandbox *Sandbox
}

// Backend runs pods as process groups. Use New.
type Backend struct {
	opts Options
	log  *zap.Logger

	mu     sync.Mutex
	pods   map[backend.Key]*podRun
	closed bool
}

var _ backend.Backend = (*Backend)(nil)
var _ backend.LogReader = (*Backend)(nil)
var _ backend.Executor = (*Backend)(nil)
var _ backend.StatsReporter = (*Backend)(nil)

// New returns a process backend.
func New(opts Options) (*Backend, error) {
	var errs []error
	if opts.Images == nil {
		errs = append(errs, errors.New("process backend: Images: must be set"))
	}
	if opts.Dir == "" {
		errs = append(errs, errors.New("process backend: Dir: must be set"))
	}
	if opts.Changed == nil {
		errs = append(errs, errors.New("process backend: Changed: must be set"))
	}
	if err := opts.Sandbox.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("process backend: Dir %q: %w", opts.Dir, err)
	}
	if opts.Sandbox != nil {
		s := *opts.Sandbox // prepare fills it in: the caller's stays as given
		if err := s.prepare(opts.Dir); err != nil {
			return nil, err
		}
		opts.Sandbox = &s
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = 10 * time.Second
	}
	if opts.RestartBackoffMax <= 0 {
		opts.RestartBackoffMax = 5 * time.Minute
	}
	if opts.Env == nil {
		opts.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	if opts.NodeIP == "" {
		opts.NodeIP = "127.0.0.1"
	}
	return &Backend{opts: opts, log: opts.Logger, pods: map[backend.Key]*podRun{}}, nil
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// Create implements backend.Backend.
func (b *Backend) Create(ctx context.Context, p backend.Pod) error {
	pod := p.Pod
	key := backend.KeyOf(pod)
	specs := make([]containerSpec, 0, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		entry, ok := b.opts.Images.Resolve(c.Image)
		if !ok {
			return &backend.PodError{Reason: backend.ReasonImageNotMapped,
				Message: fmt.Sprintf("container %q: image %q has no command mapping on this virtual node", c.Name, c.Image)}
		}
		argv := append([]string{}, entry...)
		if len(c.Command) > 0 {
			argv = append([]string{}, c.Command...)
		}
		argv = append(argv, c.Args...)
		if len(argv) == 0 {
			return &backend.PodError{Reason: backend.ReasonInvalidPod,
				Message: fmt.Sprintf("container %q: image %q maps to no command and the container gives none", c.Name, c.Image)}
		}
		if !b.commandAllowed(entry, argv[0]) {
			return &backend.PodError{Reason: ReasonCommandNotAllowed,
				Message: fmt.Sprintf("container %q: %s", c.Name, notAllowed("command", argv[0]))}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if probe != nil && probe.Exec != nil && len(probe.Exec.Command) > 0 && !b.commandAllowed(entry, probe.Exec.Command[0]) &&
				probe.Exec.Command[0] != argv[0] {
				return &backend.PodError{Reason: ReasonCommandNotAllowed,
					Message: fmt.Sprintf("container %q: %s", c.Name, notAllowed("exec probe command", probe.Exec.Command[0]))}
			}
		}
		specs = append(specs, containerSpec{container: c, argv: argv})
	}
	if len(pod.Spec.InitContainers) > 0 {
		return &backend.PodError{Reason: backend.ReasonUnsupportedFeature, Message: "init containers are not supported by the process backend"}
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("process backend is closed")
	}
	if _, ok := b.pods[key]; ok {
		b.mu.Unlock()
		return nil
	}
	dir := filepath.Join(b.opts.Dir, unsafeName.ReplaceAllString(pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), "-"))
	run := &podRun{b: b, key: key, pod: pod, dir: dir, started: metav1.NewTime(time.Now()), stopped: make(chan struct{})}
	b.pods[key] = run
	b.mu.Unlock()

	err := run.prepare(p.Volumes, specs)
	if err == nil {
		err = b.ownPodDir(dir)
	}
	if err != nil {
		b.mu.Lock()
		delete(b.pods, key)
		b.mu.Unlock()
		_ = os.RemoveAll(dir)
		return &backend.PodError{Reason: backend.ReasonStartFailed, Message: "prepare pod directory", Err: err}
	}
	run.start()
	b.log.Info("pod started", zap.String("pod", key.String()), zap.Int("containers", len(specs)))
	return nil
}

// Delete implements backend.Backend: SIGTERM to every container's process group, SIGKILL after grace.
func (b *Backend) Delete(_ context.Context, key backend.Key, grace time.Duration) error {
	b.mu.Lock()
	run, ok := b.pods[key]
	b.mu.Unlock()
	if !ok {
		return backend.NotFound(key)
	}
	go func() {
		run.stop(grace)
		b.mu.Lock()
		if b.pods[key] == run {
			delete(b.pods, key)
		}
		b.mu.Unlock()
		st := run.status()
		_ = os.RemoveAll(run.dir)
		b.log.Info("pod stopped", zap.String("pod", key.String()))
		b.opts.Changed(key, st)
	}()
	return nil
}

// Status implements backend.Backend.
func (b *Backend) Status(_ context.Context, key backend.Key) (*corev1.PodStatus, error) {
	run, err := b.get(key)
	if err != nil {
		return nil, err
	}
	return run.status(), nil
}

func (b *Backend) get(key backend.Key) (*podRun, error) { return backend.Lookup(&b.mu, b.pods, key) }

// Close implements backend.Backend: it kills every pod (no grace beyond ctx) and waits for the processes to go.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	runs := make([]*podRun, 0, len(b.pods))
	for _, r := range b.pods {
		runs = append(runs, r)
	}
	b.pods = map[backend.Key]*podRun{}
	b.mu.Unlock()
	grace := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/2)
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			r.stop(grace)
			_ = os.RemoveAll(r.dir)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process backend close: %w", ctx.Err())
	}
}

// podRun is one running pod.
type podRun struct {
	b       *Backend
	key     backend.Key
	pod     *corev1.Pod
	dir     string
	started metav1.Time

	mu         sync.Mutex
	containers []*container
	stopping   bool
	stopped    chan struct{} // closed when stop finished
	stopOnce   sync.Once
}

func (r *podRun) prepare(vols map[string]backend.Volume, specs []containerSpec) error {
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o700); err != nil {
		return err
	}
	volDirs := map[string]string{}
	for name, v := range vols {
		d := filepath.Join(r.dir, "volumes", unsafeName.ReplaceAllString(name, "-"))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		for rel, content := range v.Files {
			p := filepath.Join(d, filepath.Clean("/"+rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(p, content, 0o600); err != nil {
				return fmt.Errorf("volume %q: %w", name, err)
			}
		}
		volDirs[name] = d
	}
	for _, s := range specs {
		c := &container{run: r, spec: s, done: make(chan struct{})}
		c.env = r.env(s.container, volDirs)
		c.workDir = s.container.WorkingDir
		if c.workDir == "" {
			c.workDir = r.dir
		}
		c.status = corev1.ContainerStatus{
			Name: s.container.Name, Image: s.container.Image, ImageID: "process://" + s.argv[0],
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		}
		r.containers = append(r.containers, c)
	}
	return nil
}

// env is the container's environment: the backend's base env, Kubernetes-like basics, one
// TIDAL_VOLUME_<NAME> per mounted volume (its directory: processes cannot mount), then the pod's env.
func (r *podRun) env(c *corev1.Container, volDirs map[string]string) []string {
	env := append([]string{}, r.b.opts.Env...)
	env = append(env, "HOSTNAME="+r.pod.Name, "HOME="+r.dir, "POD_DIR="+r.dir)
	for _, m := range c.VolumeMounts {
		if d, ok := volDirs[m.Name]; ok {
			name := strings.ToUpper(unsafeEnv.ReplaceAllString(m.Name, "_"))
			env = append(env, "TIDAL_VOLUME_"+name+"="+filepath.Join(d, m.SubPath))
		}
	}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	return env
}

var unsafeEnv = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

func (r *podRun) start() {
	for _, c := range r.containers {
		go c.supervise()
	}
}

// stop terminates every container: SIGTERM, then SIGKILL after grace. It returns once all exited.
func (r *podRun) stop(grace time.Duration) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		cs := append([]*container{}, r.containers...)
		r.mu.Unlock()
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() { c.stop(grace) })
		}
		wg.Wait()
		close(r.stopped)
	})
	<-r.stopped
}

func (r *podRun) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// status builds the pod status from the containers.
func (r *podRun) status() *corev1.PodStatus {
	r.mu.Lock()
	cs := make([]corev1.ContainerStatus, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c.snapshot())
	}
	stopping := r.stopping
	r.mu.Unlock()
	st := podstatus.Build(podstatus.Input{
		Pod: r.pod, Containers: cs, HostIP: r.b.opts.NodeIP, PodIP: r.b.opts.NodeIP, StartTime: r.started,
		Now: metav1.Now(),
	})
	if stopping {
		allDone := true
		for _, c := range cs {
			allDone = allDone && c.State.Terminated != nil
		}
		if allDone {
			st = podstatus.Terminated(r.pod, st, "Killed", metav1.Now())
		}
	}
	return st
}

func (r *podRun) changed() { r.b.opts.Changed(r.key, r.status()) }
