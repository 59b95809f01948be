package sim_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

func group(name string, config map[string]string) *v1alpha1.NodeGroup {
	return &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeGroupSpec{MaxSize: 5, ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim, Config: config},
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}}},
	}
}

func TestSimProviderLifecycle(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t) // unique name source for the group
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	nodes := factory.Core().V1().Nodes().Lister()
	p, err := sim.New(sim.Options{Client: c.Client, Nodes: nodes, DefaultDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go p.Run(ctx)
	name := "sim-" + ns
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	g := group(name, nil)
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + name})
	})
	if err := p.IncreaseSize(ctx, g, 2); err != nil {
		t.Fatal(err)
	}
	inst, err := p.Instances(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst) != 2 {
		t.Fatalf("instances right after IncreaseSize = %+v, want 2", inst)
	}
	var ready []corev1.Node
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer pcancel()
	err = wait.PollUntilContextCancel(pctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + name})
		if err != nil {
			return false, nil
		}
		ready = ready[:0]
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = append(ready, n)
				}
			}
		}
		return len(ready) == 2, nil
	})
	if err != nil {
		t.Fatalf("2 kwok nodes did not become Ready: %v", err)
	}
	n := ready[0]
	if n.Labels[sim.KwokLabel] != sim.KwokLabelValue || n.Status.Allocatable.Cpu().String() != "2" || !strings.HasPrefix(n.Spec.ProviderID, "tidal-sim://"+name+"/") {
		t.Fatalf("node %s: labels %v allocatable %v providerID %q", n.Name, n.Labels, n.Status.Allocatable, n.Spec.ProviderID)
	}
	// Instances converge on the two registered nodes once the lister sees them.
	err = wait.PollUntilContextCancel(pctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		inst, err := p.Instances(ctx, g)
		if err != nil || len(inst) != 2 {
			return false, err
		}
		for _, in := range inst {
			if in.State != provider.InstanceRunning || in.NodeName == "" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("instances did not become running: %v", err)
	}
	if err := p.DeleteNodes(ctx, g, []*corev1.Node{&n}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err == nil {
		t.Fatalf("node %s still exists after DeleteNodes", n.Name)
	}
	other := group("other", nil)
	if err := p.DeleteNodes(ctx, other, []*corev1.Node{&ready[1]}); err == nil || !strings.Contains(err.Error(), "belongs to group") {
		t.Fatalf("deleting another group's node: err = %v", err)
	}

	// A group that never delivers: instances stay creating until DecreaseTargetSize drops them.
	broken := group(name+"-x", map[string]string{sim.ConfigFailProvisioning: "true"})
	if err := p.IncreaseSize(ctx, broken, 3); err != nil {
		t.Fatal(err)
	}
	if err := p.DecreaseTargetSize(ctx, broken, 2); err != nil {
		t.Fatal(err)
	}
	inst, err = p.Instances(ctx, broken)
	if err != nil || len(inst) != 1 || inst[0].State != provider.InstanceCreating {
		t.Fatalf("broken group instances = %+v, %v; want one creating", inst, err)
	}
}

func TestSimConfigErrors(t *testing.T) {
	c := devcluster.Get(t)
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	p, err := sim.New(sim.Options{Client: c.Client, Nodes: factory.Core().V1().Nodes().Lister()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		config map[string]string
		delta  int
		want   string
	}{
		{name: "bad delay", config: map[string]string{sim.ConfigProvisioningDelay: "soon"}, delta: 1, want: `providerRef.config.provisioningDelay: want a non-negative duration, got "soon"`},
		{name: "bad bool", config: map[string]string{sim.ConfigFailProvisioning: "maybe"}, delta: 1, want: `providerRef.config.failProvisioning: want a boolean, got "maybe"`},
		{name: "non-positive delta", delta: 0, want: "delta must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.IncreaseSize(context.Background(), group("g", tc.config), tc.delta)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
