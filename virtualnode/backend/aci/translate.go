package aci

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	armci "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// Tags put on every container group so the backend can find its pods.
const (
	TagNamespace = "tidal.dev-pod-namespace"
	TagName      = "tidal.dev-pod-name"
	TagUID       = "tidal.dev-pod-uid"
	TagNode      = "tidal.dev-node"
)

var invalidGroupChars = regexp.MustCompile(`[^a-z0-9-]+`)
var repeatedHyphens = regexp.MustCompile(`-{2,}`)

// GroupName returns the container group name of a pod: lower-case letters, digits and single hyphens, at most
// 63 characters; long names are cut and made unique with a hash of namespace/name.
func GroupName(key backend.Key) string {
	n := invalidGroupChars.ReplaceAllString(strings.ToLower(key.Namespace+"-"+key.Name), "-")
	n = strings.Trim(repeatedHyphens.ReplaceAllString(n, "-"), "-")
	if len(n) <= 63 && n != "" {
		return n
	}
	sum := sha256.Sum256([]byte(key.String()))
	return strings.TrimRight(n[:min(len(n), 54)], "-") + "-" + hex.EncodeToString(sum[:4])
}

// containerGroup translates a pod into an ACI container group.
func (b *Backend) containerGroup(p backend.Pod) (armci.ContainerGroup, error) {
	pod := p.Pod
	cg := armci.ContainerGroup{
		Location: to.Ptr(b.opts.Region),
		Tags: map[string]*string{
			TagNamespace: to.Ptr(pod.Namespace), TagName: to.Ptr(pod.Name), TagUID: to.Ptr(string(pod.UID)), TagNode: to.Ptr(b.opts.NodeName),
		},
		Properties: &armci.ContainerGroupPropertiesProperties{
			OSType:        to.Ptr(armci.OperatingSystemTypesLinux),
			RestartPolicy: to.Ptr(restartPolicy(pod.Spec.RestartPolicy)),
		},
	}
	props := cg.Properties
	for _, id := range b.opts.SubnetIDs {
		props.SubnetIDs = append(props.SubnetIDs, &armci.ContainerGroupSubnetID{ID: to.Ptr(id)})
	}
	var groupPorts []*armci.Port
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		ctr, ports, err := container(c)
		if err != nil {
			return cg, err
		}
		props.Containers = append(props.Containers, ctr)
		groupPorts = append(groupPorts, ports...)
	}
	if len(groupPorts) > 0 {
		ipType := armci.ContainerGroupIPAddressTypePublic
		if len(b.opts.SubnetIDs) > 0 {
			ipType = armci.ContainerGroupIPAddressTypePrivate
		}
		props.IPAddress = &armci.IPAddress{Type: to.Ptr(ipType), Ports: groupPorts}
	}
	for _, v := range pod.Spec.Volumes {
		content, ok := p.Volumes[v.Name]
		if !ok {
			continue
		}
		vol := &armci.Volume{Name: to.Ptr(v.Name)}
		if content.EmptyDir {
			vol.EmptyDir = map[string]any{}
		} else {
			// ACI secret volumes take base64 content; ConfigMaps use them too (ACI has no plain file volume).
			vol.Secret = map[string]*string{}
			for path, data := range content.Files {
				if strings.Contains(path, "/") {
					return cg, &backend.PodError{Reason: backend.ReasonUnsupportedFeature,
						Message: fmt.Sprintf("volume %q: item path %q: ACI volumes hold flat files only", v.Name, path)}
				}
				vol.Secret[path] = to.Ptr(base64.StdEncoding.EncodeToString(data))
			}
		}
		props.Volumes = append(props.Volumes, vol)
	}
	return cg, nil
}

func restartPolicy(p corev1.RestartPolicy) armci.ContainerGroupRestartPolicy {
	switch p {
	case corev1.RestartPolicyNever:
		return armci.ContainerGroupRestartPolicyNever
	case corev1.RestartPolicyOnFailure:
		return armci.ContainerGroupRestartPolicyOnFailure
	default:
		return armci.ContainerGroupRestartPolicyAlways
	}
}

func container(c *corev1.Container) (*armci.Container, []*armci.Port, error) {
	cpu := 1.0
	memGB := 1.5
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		cpu = float64(q.MilliValue()) / 1000
	}
	if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
		memGB = float64(q.Value()) / 1e9
	}
	// ACI allocates CPU in 0.01-core steps and memory in 0.1 GB steps, with a minimum of 0.1 GB.
	cpu = max(0.01, float64(int(cpu*100+0.999))/100)
	memGB = max(0.1, float64(int(memGB*10+0.999))/10)
	props := &armci.ContainerProperties{
		Image:     to.Ptr(c.Image),
		Resources: &armci.ResourceRequirements{Requests: &armci.ResourceRequests{CPU: to.Ptr(cpu), MemoryInGB: to.Ptr(memGB)}},
	}
	for _, s := range append(append([]string{}, c.Command...), c.Args...) {
		props.Command = append(props.Command, to.Ptr(s))
	}
	if len(c.Command) == 0 && len(c.Args) > 0 {
		return nil, nil, &backend.PodError{Reason: backend.ReasonUnsupportedFeature,
			Message: fmt.Sprintf("container %q: args without command: ACI replaces the image entrypoint, so give the command too", c.Name)}
	}
	for _, e := range c.Env {
		// Values are resolved already; whether one came from a Secret is not known here, so every value is sent
		// as a secure value (ACI never returns those).
		props.EnvironmentVariables = append(props.EnvironmentVariables, &armci.EnvironmentVariable{Name: to.Ptr(e.Name), SecureValue: to.Ptr(e.Value)})
	}
	var groupPorts []*armci.Port
	for _, p := range c.Ports {
		proto := armci.ContainerNetworkProtocolTCP
		gproto := armci.ContainerGroupNetworkProtocolTCP
		if p.Protocol == corev1.ProtocolUDP {
			proto, gproto = armci.ContainerNetworkProtocolUDP, armci.ContainerGroupNetworkProtocolUDP
		}
		props.Ports = append(props.Ports, &armci.ContainerPort{Port: to.Ptr(p.ContainerPort), Protocol: to.Ptr(proto)})
		groupPorts = append(groupPorts, &armci.Port{Port: to.Ptr(p.ContainerPort), Protocol: to.Ptr(gproto)})
	}
	for _, m := range c.VolumeMounts {
		props.VolumeMounts = append(props.VolumeMounts, &armci.VolumeMount{Name: to.Ptr(m.Name), MountPath: to.Ptr(m.MountPath), ReadOnly: to.Ptr(m.ReadOnly)})
	}
	if pr, err := probe(c.ReadinessProbe); err != nil {
		return nil, nil, fmt.Errorf("container %q: readinessProbe: %w", c.Name, err)
	} else {
		props.ReadinessProbe = pr
	}
	if pr, err := probe(c.LivenessProbe); err != nil {
		return nil, nil, fmt.Errorf("container %q: livenessProbe: %w", c.Name, err)
	} else {
		props.LivenessProbe = pr
	}
	return &armci.Container{Name: to.Ptr(c.Name), Properties: props}, groupPorts, nil
}

func probe(p *corev1.Probe) (*armci.ContainerProbe, error) {
	if p == nil {
		return nil, nil
	}
	out := &armci.ContainerProbe{
		InitialDelaySeconds: to.Ptr(p.InitialDelaySeconds), PeriodSeconds: to.Ptr(p.PeriodSeconds),
		FailureThreshold: to.Ptr(p.FailureThreshold), SuccessThreshold: to.Ptr(p.SuccessThreshold), TimeoutSeconds: to.Ptr(p.TimeoutSeconds),
	}
	switch {
	case p.Exec != nil:
		out.Exec = &armci.ContainerExec{Command: to.SliceOfPtrs(p.Exec.Command...)}
	case p.HTTPGet != nil:
		if p.HTTPGet.Port.IntValue() == 0 {
			return nil, &backend.PodError{Reason: backend.ReasonUnsupportedFeature, Message: "ACI probes need a numeric port"}
		}
		scheme := armci.SchemeHTTP
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = armci.SchemeHTTPS
		}
		out.HTTPGet = &armci.ContainerHTTPGet{Port: to.Ptr(int32(p.HTTPGet.Port.IntValue())), Path: to.Ptr(p.HTTPGet.Path), Scheme: to.Ptr(scheme)}
	default:
		return nil, &backend.PodError{Reason: backend.ReasonUnsupportedFeature, Message: "ACI supports exec and httpGet probes only"}
	}
	return out, nil
}

// podStatus translates a container group's instance view into a pod status.
func (b *Backend) podStatus(pod *corev1.Pod, cg *armci.ContainerGroup, now time.Time) *corev1.PodStatus {
	in := podstatus.Input{Pod: pod, HostIP: b.opts.NodeIP, Now: metav1.NewTime(now)}
	props := cg.Properties
	if props == nil {
		props = &armci.ContainerGroupPropertiesProperties{}
	}
	if props.IPAddress != nil && props.IPAddress.IP != nil {
		in.PodIP = *props.IPAddress.IP
	}
	byName := map[string]*armci.Container{}
	for _, c := range props.Containers {
		if c != nil && c.Name != nil {
			byName[*c.Name] = c
		}
	}
	var earliest time.Time
	for _, sc := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: sc.Name, Image: sc.Image, ImageID: sc.Image,
			ContainerID: "aci://" + GroupName(backend.KeyOf(pod)) + "/" + sc.Name}
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "Creating"}}
		if c, ok := byName[sc.Name]; ok && c.Properties != nil && c.Properties.InstanceView != nil {
			iv := c.Properties.InstanceView
			cs.State = containerState(iv.CurrentState)
			if iv.PreviousState != nil && iv.PreviousState.State != nil {
				cs.LastTerminationState = containerState(iv.PreviousState)
			}
			if iv.RestartCount != nil {
				cs.RestartCount = *iv.RestartCount
			}
			if cs.State.Running != nil {
				cs.Ready = true
				started := true
				cs.Started = &started
				if t := cs.State.Running.StartedAt.Time; earliest.IsZero() || t.Before(earliest) {
					earliest = t
				}
			}
		}
		in.Containers = append(in.Containers, cs)
	}
	if !earliest.IsZero() {
		in.StartTime = metav1.NewTime(earliest)
	}
	if ps := props.ProvisioningState; ps != nil && strings.EqualFold(*ps, "Failed") {
		in.Failed = true
		in.Reason = "ProvisioningFailed"
		in.Message = provisioningMessage(props)
	}
	return podstatus.Build(in)
}

func provisioningMessage(props *armci.ContainerGroupPropertiesProperties) string {
	if props.InstanceView != nil {
		for i := len(props.InstanceView.Events) - 1; i >= 0; i-- {
			if e := props.InstanceView.Events[i]; e != nil && e.Message != nil {
				return *e.Message
			}
		}
	}
	return "ACI container group provisioning failed"
}

func containerState(s *armci.ContainerState) corev1.ContainerState {
	if s == nil || s.State == nil {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "Creating"}}
	}
	detail := ""
	if s.DetailStatus != nil {
		detail = *s.DetailStatus
	}
	t := func(p *time.Time) metav1.Time {
		if p == nil {
			return metav1.Time{}
		}
		return metav1.NewTime(*p)
	}
	switch *s.State {
	case "Running":
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t(s.StartTime)}}
	case "Terminated":
		code := int32(0)
		if s.ExitCode != nil {
			code = *s.ExitCode
		}
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: detail, StartedAt: t(s.StartTime), FinishedAt: t(s.FinishTime)}}
	default:
		reason := *s.State
		if detail != "" {
			reason = detail
		}
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
}
