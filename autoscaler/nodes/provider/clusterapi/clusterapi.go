// Package clusterapi is the Cluster API node provider: a NodeGroup maps to one MachineDeployment, scaled
// through its /scale subresource; instances are the Machines labelled with the deployment's name; a node is
// removed the way cluster-autoscaler's clusterapi provider does it: annotate its Machine with
// cluster.x-k8s.io/delete-machine, then lower the replicas so the MachineSet deletes exactly that Machine.
//
// NodeGroup spec.providerRef.config keys:
//
//	machineDeployment: name of the MachineDeployment (required)
//	namespace:         its namespace (default "default")
//	apiVersion:        Cluster API version (default cluster.x-k8s.io/v1beta1)
package clusterapi

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
)

// Config keys and Cluster API names.
const (
	ConfigMachineDeployment = "machineDeployment"
	ConfigNamespace         = "namespace"
	ConfigAPIVersion        = "apiVersion"

	DefaultAPIVersion = "cluster.x-k8s.io/v1beta1"
	// LabelDeploymentName is set by Cluster API on the Machines of a MachineDeployment.
	LabelDeploymentName = "cluster.x-k8s.io/deployment-name"
	// AnnotationDeleteMachine marks a Machine its MachineSet deletes first when scaling down.
	AnnotationDeleteMachine = "cluster.x-k8s.io/delete-machine"
	// AnnotationDeleteRequested marks a delete-machine annotation as the node autoscaler's own (the time it was
	// set), so Recover only ever clears what the autoscaler wrote.
	AnnotationDeleteRequested = "tidal.dev/delete-requested"
)

// Provider scales MachineDeployments.
type Provider struct {
	client dynamic.Interface
}

var (
	_ provider.Provider        = (*Provider)(nil)
	_ provider.TargetDecreaser = (*Provider)(nil)
	_ provider.Recoverer       = (*Provider)(nil)
)

// New returns a Cluster API provider using a dynamic client of the management cluster.
func New(client dynamic.Interface) *Provider { return &Provider{client: client} }

// Name implements provider.Provider.
func (p *Provider) Name() string { return string(v1alpha1.ProviderClusterAPI) }

type target struct {
	ns, name  string
	md, scale dynamic.ResourceInterface
	machines  dynamic.ResourceInterface
}

func (p *Provider) target(group *v1alpha1.NodeGroup) (target, error) {
	cfg := group.Spec.ProviderRef.Config
	name := cfg[ConfigMachineDeployment]
	if name == "" {
		return target{}, fmt.Errorf("clusterapi provider: node group %q: providerRef.config.%s is required", group.Name, ConfigMachineDeployment)
	}
	ns := cfg[ConfigNamespace]
	if ns == "" {
		ns = "default"
	}
	apiVersion := cfg[ConfigAPIVersion]
	if apiVersion == "" {
		apiVersion = DefaultAPIVersion
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Group == "" {
		return target{}, fmt.Errorf("clusterapi provider: node group %q: providerRef.config.%s: want group/version, got %q", group.Name, ConfigAPIVersion, apiVersion)
	}
	md := p.client.Resource(gv.WithResource("machinedeployments")).Namespace(ns)
	return target{
		ns: ns, name: name, md: md, scale: md,
		machines: p.client.Resource(gv.WithResource("machines")).Namespace(ns),
	}, nil
}

// replicas reads the MachineDeployment's /scale subresource.
func (t target) replicas(ctx context.Context) (*unstructured.Unstructured, int64, error) {
	s, err := t.scale.Get(ctx, t.name, metav1.GetOptions{}, "scale")
	if err != nil {
		return nil, 0, fmt.Errorf("MachineDeployment %s/%s: get scale: %w", t.ns, t.name, err)
	}
	n, _, err := unstructured.NestedInt64(s.Object, "spec", "replicas")
	if err != nil {
		return nil, 0, fmt.Errorf("MachineDeployment %s/%s: scale spec.replicas: %w", t.ns, t.name, err)
	}
	return s, n, nil
}

// setReplicas changes replicas by delta through /scale, retrying conflicts; check may veto the new value.
func (t target) addReplicas(ctx context.Context, delta int64, check func(cur, next int64) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, cur, err := t.replicas(ctx)
		if err != nil {
			return err
		}
		next := cur + delta
		if err := check(cur, next); err != nil {
			return err
		}
		if err := unstructured.SetNestedField(s.Object, next, "spec", "replicas"); err != nil {
			return err
		}
		_, err = t.scale.Update(ctx, s, metav1.UpdateOptions{FieldManager: "tidal-node-autoscaler"}, "scale")
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("MachineDeployment %s/%s: update scale to %d: %w", t.ns, t.name, next, err)
		}
		return err
	})
}

// observe reads the group's MachineDeployment replicas and lists its Machines.
func (p *Provider) observe(ctx context.Context, group *v1alpha1.NodeGroup) (target, int64, *unstructured.UnstructuredList, error) {
	t, err := p.target(group)
	if err != nil {
		return t, 0, nil, err
	}
	_, replicas, err := t.replicas(ctx)
	if err != nil {
		return t, 0, nil, fmt.Errorf("clusterapi provider: node group %q: %w", group.Name, err)
	}
	list, err := t.machines.List(ctx, metav1.ListOptions{LabelSelector: LabelDeploymentName + "=" + t.name})
	if err != nil {
		return t, 0, nil, fmt.Errorf("clusterapi provider: node group %q: list Machines: %w", group.Name, err)
	}
	return t, replicas, list, nil
}

// Instances implements provider.Provider: the deployment's Machines, plus a Creating placeholder for each
// replica that has no Machine yet.
func (p *Provider) Instances(ctx context.Context, group *v1alpha1.NodeGroup) ([]provider.Instance, error) {
	t, replicas, list, err := p.observe(ctx, group)
	if err != nil {
		return nil, err
	}
	var out []provider.Instance
	active := 0
	for i := range list.Items {
		m := &list.Items[i]
		in := instanceOf(m)
		if in.State != provider.InstanceDeleting {
			active++
		}
		out = append(out, in)
	}
	for i := active; i < int(replicas); i++ {
		out = append(out, provider.Instance{
			ID:    fmt.Sprintf("clusterapi://%s/%s/pending-%d", t.ns, t.name, i),
			State: provider.InstanceCreating,
		})
	}
	return out, nil
}

func instanceOf(m *unstructured.Unstructured) provider.Instance {
	id, _, _ := unstructured.NestedString(m.Object, "spec", "providerID")
	if id == "" {
		id = "clusterapi://" + m.GetNamespace() + "/machine/" + m.GetName()
	}
	nodeName, _, _ := unstructured.NestedString(m.Object, "status", "nodeRef", "name")
	phase, _, _ := unstructured.NestedString(m.Object, "status", "phase")
	in := provider.Instance{ID: id, NodeName: nodeName, CreatedAt: m.GetCreationTimestamp().Time}
	switch {
	case m.GetDeletionTimestamp() != nil || phase == "Deleting" || phase == "Deleted":
		in.State = provider.InstanceDeleting
	case phase == "Failed":
		in.State = provider.InstanceCreating
		msg, _, _ := unstructured.NestedString(m.Object, "status", "failureMessage")
		in.Error = "machine failed: " + msg
	case nodeName != "":
		in.State = provider.InstanceRunning
	default:
		in.State = provider.InstanceCreating
	}
	return in
}

// IncreaseSize implements provider.Provider.
func (p *Provider) IncreaseSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error {
	if delta <= 0 {
		return fmt.Errorf("clusterapi provider: node group %q: increase by %d: delta must be positive", group.Name, delta)
	}
	t, err := p.target(group)
	if err != nil {
		return err
	}
	err = t.addReplicas(ctx, int64(delta), func(cur, next int64) error {
		if next > int64(group.Spec.MaxSize) {
			return fmt.Errorf("MachineDeployment %s/%s: %d replicas would exceed maxSize %d", t.ns, t.name, next, group.Spec.MaxSize)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clusterapi provider: node group %q: %w", group.Name, err)
	}
	return nil
}

// DecreaseTargetSize implements provider.TargetDecreaser: it lowers replicas without going below the Machines
// that already have nodes.
func (p *Provider) DecreaseTargetSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error {
	t, err := p.target(group)
	if err != nil {
		return err
	}
	instances, err := p.Instances(ctx, group)
	if err != nil {
		return err
	}
	registered := 0
	for _, in := range instances {
		if in.NodeName != "" && in.State != provider.InstanceDeleting {
			registered++
		}
	}
	err = t.addReplicas(ctx, -int64(delta), func(cur, next int64) error {
		if next < int64(registered) {
			return fmt.Errorf("MachineDeployment %s/%s: cannot decrease to %d below %d registered nodes", t.ns, t.name, next, registered)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clusterapi provider: node group %q: %w", group.Name, err)
	}
	return nil
}

// DeleteNodes implements provider.Provider.
func (p *Provider) DeleteNodes(ctx context.Context, group *v1alpha1.NodeGroup, nodes []*corev1.Node) error {
	t, err := p.target(group)
	if err != nil {
		return err
	}
	list, err := t.machines.List(ctx, metav1.ListOptions{LabelSelector: LabelDeploymentName + "=" + t.name})
	if err != nil {
		return fmt.Errorf("clusterapi provider: node group %q: list Machines: %w", group.Name, err)
	}
	marked := 0
	for _, n := range nodes {
		var machine *unstructured.Unstructured
		for i := range list.Items {
			m := &list.Items[i]
			ref, _, _ := unstructured.NestedString(m.Object, "status", "nodeRef", "name")
			id, _, _ := unstructured.NestedString(m.Object, "spec", "providerID")
			if ref == n.Name || (id != "" && id == n.Spec.ProviderID) {
				machine = m
				break
			}
		}
		if machine == nil {
			return fmt.Errorf("clusterapi provider: node group %q: node %q has no Machine of MachineDeployment %s/%s", group.Name, n.Name, t.ns, t.name)
		}
		if machine.GetDeletionTimestamp() != nil {
			continue // already going
		}
		at := time.Now().UTC().Format(time.RFC3339Nano)
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, AnnotationDeleteMachine, at, AnnotationDeleteRequested, at)
		if _, err := t.machines.Patch(ctx, machine.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "tidal-node-autoscaler"}); err != nil {
			return fmt.Errorf("clusterapi provider: node group %q: annotate Machine %s/%s: %w", group.Name, t.ns, machine.GetName(), err)
		}
		marked++
	}
	if marked == 0 {
		return nil
	}
	err = t.addReplicas(ctx, -int64(marked), func(cur, next int64) error {
		if next < 0 {
			return fmt.Errorf("MachineDeployment %s/%s: replicas would go negative", t.ns, t.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clusterapi provider: node group %q: %w", group.Name, err)
	}
	return nil
}

// Recover implements provider.Recoverer. A removal is two steps, annotate the Machine then lower the replicas;
// a run that stopped between them leaves a Machine marked for deletion that the MachineSet will not delete now
// but would pick first at the next scale-down, in place of the node actually drained. Recover keeps as many of
// the autoscaler's marks as the MachineSet still has Machines to delete (replicas below the active Machines),
// oldest first, and clears the rest. It returns the nodes of the Machines that keep their mark or are deleting.
func (p *Provider) Recover(ctx context.Context, group *v1alpha1.NodeGroup) ([]string, error) {
	t, replicas, list, err := p.observe(ctx, group)
	if err != nil {
		return nil, err
	}
	var deleting []string
	var marked []*unstructured.Unstructured
	active := 0
	for i := range list.Items {
		m := &list.Items[i]
		in := instanceOf(m)
		if in.State == provider.InstanceDeleting {
			if in.NodeName != "" {
				deleting = append(deleting, in.NodeName)
			}
			continue
		}
		active++
		if _, ok := m.GetAnnotations()[AnnotationDeleteRequested]; ok {
			marked = append(marked, m)
		}
	}
	sort.SliceStable(marked, func(i, j int) bool {
		return marked[i].GetAnnotations()[AnnotationDeleteRequested] < marked[j].GetAnnotations()[AnnotationDeleteRequested]
	})
	keep := min(max(active-int(replicas), 0), len(marked))
	for _, m := range marked[:keep] {
		if node, _, _ := unstructured.NestedString(m.Object, "status", "nodeRef", "name"); node != "" {
			deleting = append(deleting, node)
		}
	}
	for _, m := range marked[keep:] {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null,%q:null}}}`, AnnotationDeleteMachine, AnnotationDeleteRequested)
		_, err := t.machines.Patch(ctx, m.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "tidal-node-autoscaler"})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("clusterapi provider: node group %q: clear delete mark of Machine %s/%s: %w", group.Name, t.ns, m.GetName(), err)
		}
	}
	return deleting, nil
}
