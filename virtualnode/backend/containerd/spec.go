package containerd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// validate refuses what the backend cannot honour, naming the field, before anything is created.
func validate(pod *corev1.Pod) error {
	fail := func(field, msg string) error {
		return &backend.PodError{Reason: backend.ReasonUnsupportedFeature, Message: field + ": " + msg}
	}
	if pod.Spec.HostPID || pod.Spec.HostIPC {
		return fail("spec.hostPID/hostIPC", "not supported by the containerd backend")
	}
	check := func(path string, c *corev1.Container) error {
		if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
			return fail(path+".securityContext.privileged", "privileged containers are not run on a virtual node")
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && p.GRPC != nil {
				return fail(path+" probes", "grpc probes are not supported by the containerd backend")
			}
		}
		if c.StartupProbe != nil {
			return fail(path+".startupProbe", "not supported by the containerd backend")
		}
		for _, m := range c.VolumeMounts {
			if m.SubPathExpr != "" {
				return fail(path+".volumeMounts."+m.Name+".subPathExpr", "not supported by the containerd backend")
			}
		}
		return nil
	}
	for i := range pod.Spec.InitContainers {
		if err := check(fmt.Sprintf("spec.initContainers[%d]", i), &pod.Spec.InitContainers[i]); err != nil {
			return err
		}
	}
	for i := range pod.Spec.Containers {
		if err := check(fmt.Sprintf("spec.containers[%d]", i), &pod.Spec.Containers[i]); err != nil {
			return err
		}
	}
	return nil
}

// specOpts builds the OCI spec of the container: the image's config, then the pod's command/args, env, working
// dir, user, read-only root, capabilities, resource limits, host network and volume mounts.
func (c *container) specOpts(volDirs map[string]string) ([]oci.SpecOpts, error) {
	pod, spec := c.run.pod, c.spec
	opts := []oci.SpecOpts{}
	switch {
	case len(spec.Command) > 0:
		opts = append(opts, oci.WithImageConfig(c.image), oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(c.image, spec.Args))
	default:
		opts = append(opts, oci.WithImageConfig(c.image))
	}
	env := append([]string{}, c.run.b.opts.Env...)
	env = append(env, "HOSTNAME="+pod.Name)
	for _, e := range spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	env = append(env, c.run.b.opts.EnvOverride...)
	opts = append(opts, oci.WithEnv(env), oci.WithHostname(pod.Name),
		oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}

	uid, gid, nonRoot, roRoot, sc := securityOf(pod, spec)
	if uid != nil {
		g := int64(0)
		if gid != nil {
			g = *gid
		}
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(g)))
	}
	if nonRoot {
		opts = append(opts, requireNonRoot(spec.Name))
	}
	if roRoot {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if sc != nil && sc.Capabilities != nil {
		opts = append(opts, capabilities(sc.Capabilities))
	}

	if lim, ok := spec.Resources.Limits[corev1.ResourceCPU]; ok {
		const period = 100_000 // µs
		opts = append(opts, oci.WithCPUCFS(max(lim.MilliValue()*period/1000, 1000), period))
	}
	if req, ok := spec.Resources.Requests[corev1.ResourceCPU]; ok {
		opts = append(opts, oci.WithCPUShares(uint64(max(req.MilliValue()*1024/1000, 2))))
	}
	if lim, ok := spec.Resources.Limits[corev1.ResourceMemory]; ok {
		opts = append(opts, oci.WithMemoryLimit(uint64(lim.Value())))
	}

	var mounts []specs.Mount
	for _, m := range spec.VolumeMounts {
		dir, ok := volDirs[m.Name]
		if !ok {
			return nil, &backend.PodError{Reason: backend.ReasonInvalidPod,
				Message: fmt.Sprintf("container %q: volumeMounts %q: no such volume", spec.Name, m.Name)}
		}
		src := dir
		if m.SubPath != "" {
			src = filepath.Join(dir, filepath.Clean("/"+m.SubPath))
		}
		o := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			o = append(o, "ro")
		} else {
			o = append(o, "rw")
		}
		mounts = append(mounts, specs.Mount{Destination: m.MountPath, Type: "bind", Source: src, Options: o})
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	return opts, nil
}

// securityOf merges the pod's and the container's security context (the container's wins).
func securityOf(pod *corev1.Pod, c *corev1.Container) (uid, gid *int64, nonRoot, roRoot bool, sc *corev1.SecurityContext) {
	if ps := pod.Spec.SecurityContext; ps != nil {
		uid, gid = ps.RunAsUser, ps.RunAsGroup
		nonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
	}
	sc = c.SecurityContext
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		roRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	}
	return uid, gid, nonRoot, roRoot, sc
}

// requireNonRoot fails the spec when the process would run as uid 0 (runAsNonRoot), as the kubelet does.
func requireNonRoot(name string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process != nil && s.Process.User.UID == 0 {
			return fmt.Errorf("container %q: runAsNonRoot: the image would run as root (uid 0); set runAsUser", name)
		}
		return nil
	}
}

// capabilities applies securityContext.capabilities: drop (ALL clears every set), then add.
func capabilities(caps *corev1.Capabilities) oci.SpecOpts {
	return func(ctx context.Context, cl oci.Client, ctr *containers.Container, s *oci.Spec) error {
		var drop []string
		for _, d := range caps.Drop {
			if strings.EqualFold(string(d), "ALL") {
				if err := oci.WithCapabilities(nil)(ctx, cl, ctr, s); err != nil {
					return err
				}
				continue
			}
			drop = append(drop, capName(d))
		}
		if err := oci.WithDroppedCapabilities(drop)(ctx, cl, ctr, s); err != nil {
			return err
		}
		var add []string
		for _, a := range caps.Add {
			add = append(add, capName(a))
		}
		return oci.WithAddedCapabilities(add)(ctx, cl, ctr, s)
	}
}

func capName(c corev1.Capability) string {
	s := strings.ToUpper(string(c))
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}
