package chaos

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testpki"
)

const (
	// labelChaos marks a run's NodeGroup (value: the run's namespace); the run's autoscaler manages only it.
	labelChaos = "tidal.dev/chaos"
	// podsPerNode: 1-CPU pods on 4-CPU nodes.
	podsPerNode = 4
	// simDelay is the sim cloud's delay before a requested node appears: a kill lands while nodes are in flight.
	simDelay = 5 * time.Second
	// annotationDeletionCost is the ReplicaSet controller's pod-deletion-cost annotation: lower goes first.
	annotationDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
	// finalizerHold keeps an evicted pod (and so a drain) until the test lets it go.
	finalizerHold = "chaos.tidal.dev/hold"
)

// nodeRig is one run of a node autoscaler fault: a sim-provider NodeGroup only this run's tidal-node-autoscaler
// manages, and a Deployment whose 1-CPU pods only the group's 4-CPU nodes can hold.
type nodeRig struct {
	t    *testing.T
	e    *testenv.Env
	pool *NodePool
	bin  string
}

func onNodes(run func(r *nodeRig) Result) func(t *testing.T) Result {
	return func(t *testing.T) Result { return run(newNodeRig(t)) }
}

func newNodeRig(t *testing.T) *nodeRig {
	e := testenv.New(t)
	r := &nodeRig{t: t, e: e, bin: testenv.Binary(t, "TIDAL_NODE_AUTOSCALER_BIN", "tidal-node-autoscaler"),
		pool: &NodePool{Client: e.Cluster.Client, Tidal: e.Tidal, Namespace: e.NS, Deployment: "packed",
			Group: "chaos-" + e.NS[len(e.NS)-5:], PodsPerNode: podsPerNode}}
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(strconv.Itoa(podsPerNode)),
		corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	ng := &tidalv1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: r.pool.Group, Labels: map[string]string{labelChaos: e.NS}},
		Spec: tidalv1alpha1.NodeGroupSpec{MinSize: 0, MaxSize: 10, Template: tidalv1alpha1.NodeTemplate{Capacity: capacity},
			ProviderRef: tidalv1alpha1.ProviderRef{Name: tidalv1alpha1.ProviderSim,
				Config: map[string]string{sim.ConfigProvisioningDelay: simDelay.String()}}},
	}
	if _, err := e.Tidal.TidalV1alpha1().NodeGroups().Create(e.Ctx, ng, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Registered before any autoscaler starts, so it runs after they stopped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = e.Tidal.TidalV1alpha1().NodeGroups().Delete(ctx, ng.Name, metav1.DeleteOptions{})
		_ = e.Cluster.Client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + ng.Name})
	})
	return r
}

// autoscaler starts a node autoscaler for the rig's group: a 1 s loop, scale-down of nodes under 60% after 5 s
// unneeded, none of cluster-autoscaler's 10-minute waits.
func (r *nodeRig) autoscaler() *testenv.Proc {
	return testenv.Start(r.t, r.bin, "--kubeconfig="+r.e.Cluster.Kubeconfig, "--namespace="+r.e.NS, "--metrics-addr=",
		"--leader-elect=false", "--nodegroup-selector="+labelChaos+"="+r.e.NS, "--scan-interval=1s",
		"--scale-down-unneeded-time=5s", "--scale-down-delay-after-add=1s", "--scale-down-utilization-threshold=0.6",
		"--max-graceful-termination=5m")
}

// deployment creates the rig's Deployment: replicas 1-CPU pods that only the group's nodes can hold.
func (r *nodeRig) deployment(replicas int32) {
	r.e.Deployment(r.pool.Deployment, replicas, func(d *appsv1.Deployment) {
		spec := &d.Spec.Template.Spec
		// Only the group label: the node autoscaler simulates its nodes from the template, which knows no kwok label.
		spec.NodeSelector = map[string]string{template.LabelNodeGroup: r.pool.Group}
		spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
		spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"),
			corev1.ResourceMemory: resource.MustParse("100Mi")}
	})
}

// waitFor polls the pool until cond holds.
func (r *nodeRig) waitFor(what string, cond func(PoolState) bool) PoolState {
	var st PoolState
	r.e.Eventually(what, 3*time.Minute, func() (bool, string) {
		var err error
		st, err = r.pool.State(r.e.Ctx)
		return err == nil && cond(st), fmt.Sprintf("%+v (err %v)", st, err)
	})
	return st
}

// measure judges a node fault: the deviation is the nodes added beyond the exact packing (a node provisioned
// twice), the right state the exact packing with every pod Running and nothing tainted, cordoned or in flight.
func (r *nodeRig) measure(fault string, inject func()) Result {
	extra, err := r.pool.ExtraNodes(r.e.Ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	res := measure(r.t, r.e.Ctx, fault, judged{
		unit:   "extra nodes",
		sample: extra,
		wrong: func(ctx context.Context) string {
			st, err := r.pool.State(ctx)
			if err != nil {
				return err.Error()
			}
			return r.pool.Settled(st)
		},
		stuck: func(ctx context.Context) string {
			st, err := r.pool.State(ctx)
			switch {
			case err != nil:
				return err.Error()
			case len(st.Cordoned) > 0:
				return fmt.Sprintf("nodes left tainted or cordoned: %v", st.Cordoned)
			case st.Unregistered > 0:
				return fmt.Sprintf("%d nodes left in flight", st.Unregistered)
			}
			return ""
		},
	}, inject)
	if res.MaxDeviation > 0 {
		r.t.Errorf("%s: %d nodes provisioned beyond the exact packing", fault, res.MaxDeviation)
	}
	return res
}

// spreadScaleDown scales the Deployment to replicas, deleting the pods in equal shares from every node (the
// ReplicaSet controller deletes the lowest pod-deletion-cost first), so each node is left partly used.
func (r *nodeRig) spreadScaleDown(replicas int32) {
	ctx, client := r.e.Ctx, r.e.Cluster.Client
	pods, err := client.CoreV1().Pods(r.e.NS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + r.pool.Deployment})
	if err != nil {
		r.t.Fatal(err)
	}
	byNode := map[string][]string{}
	for _, p := range pods.Items {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p.Name)
	}
	drop := (int32(len(pods.Items)) - replicas) / int32(len(byNode))
	for _, names := range byNode {
		for _, name := range names[:drop] {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"-100"}}}`, annotationDeletionCost)
			if _, err := client.CoreV1().Pods(r.e.NS).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	s, err := client.AppsV1().Deployments(r.e.NS).GetScale(ctx, r.pool.Deployment, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := client.AppsV1().Deployments(r.e.NS).UpdateScale(ctx, r.pool.Deployment, s, metav1.UpdateOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// patchNodes merge-patches every node of the group.
func (r *nodeRig) patchNodes(patch string) {
	st, err := r.pool.State(r.e.Ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if _, err := r.e.Cluster.Client.CoreV1().Nodes().Patch(r.e.Ctx, n, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			r.t.Fatal(err)
		}
	}
}

// patchPods merge-patches every pod of the Deployment, those being deleted too.
func (r *nodeRig) patchPods(patch string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // also at clean-up
	defer cancel()
	pods := r.e.Cluster.Client.CoreV1().Pods(r.e.NS)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=" + r.pool.Deployment})
	if err != nil {
		r.t.Error(err)
		return
	}
	for _, p := range list.Items {
		if _, err := pods.Patch(ctx, p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			r.t.Error(err)
		}
	}
}

// virtualRig is one run of a virtual node fault: tidal-virtual-node (sim backend) as a node of its own, its
// kubelet API on a fixed loopback port with a certificate of a test CA, and a Deployment all of whose pods run on it.
type virtualRig struct {
	t    *testing.T
	e    *testenv.Env
	vn   *VirtualNode
	bin  string
	args []string
}

func onVirtual(run func(r *virtualRig) Result) func(t *testing.T) Result {
	return func(t *testing.T) Result { return run(newVirtualRig(t)) }
}

func newVirtualRig(t *testing.T) *virtualRig {
	e := testenv.New(t)
	name := "chaos-vn-" + e.NS[len(e.NS)-5:]
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	ca := testpki.NewCA(t, "tidal-chaos-kubelet")
	cert := ca.Server(t, name, "127.0.0.1")
	r := &virtualRig{t: t, e: e, bin: testenv.Binary(t, "TIDAL_VIRTUAL_NODE_BIN", "tidal-virtual-node"),
		vn: &VirtualNode{Client: e.Cluster.Client, Namespace: e.NS, Deployment: "burst", Node: name,
			Kubelet: "https://" + addr, HTTP: ca.ClientTo(addr)},
		args: []string{"--kubeconfig=" + e.Cluster.Kubeconfig, "--node-name=" + name, "--node-address=127.0.0.1",
			"--port=" + port, "--backend=sim", "--kubelet-auth=none", "--tls-cert-file=" + cert.CertFile,
			"--tls-key-file=" + cert.KeyFile, "--metrics-addr=", "--process-dir=" + filepath.Join(t.TempDir(), "vn")}}
	// Registered before the node starts, so it runs after it stopped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = e.Cluster.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return r
}

func (r *virtualRig) start() *testenv.Proc { return testenv.Start(r.t, r.bin, r.args...) }

// deployment creates the rig's Deployment of replicas pods bound for the virtual node.
func (r *virtualRig) deployment(replicas int32) {
	r.e.Deployment(r.vn.Deployment, replicas, func(d *appsv1.Deployment) {
		spec := &d.Spec.Template.Spec
		spec.NodeSelector = map[string]string{corev1.LabelHostname: r.vn.Node}
		spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: tidalv1alpha1.VirtualNodeTaintKey,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	})
}

// measure judges a virtual node fault: the deviation is the pods not Ready, the right state the node Ready
// running exactly the Deployment's pods, all Ready.
func (r *virtualRig) measure(fault string, inject func()) Result {
	return measure(r.t, r.e.Ctx, fault, judged{
		unit:   "pods not Ready",
		sample: r.vn.NotReady(),
		wrong:  r.wrong,
		stuck: func(ctx context.Context) string {
			if st, err := r.vn.State(ctx); err != nil || len(st.Orphans) > 0 {
				return fmt.Sprintf("orphans %v (err %v)", st.Orphans, err)
			}
			return ""
		},
	}, inject)
}

func (r *virtualRig) wrong(ctx context.Context) string {
	st, err := r.vn.State(ctx)
	if err != nil {
		return err.Error()
	}
	return r.vn.Settled(st)
}

var nodeFaults = []fault{
	{"node autoscaler kill -9 mid-scale-up", onNodes(func(r *nodeRig) Result {
		a := r.autoscaler()
		const pods = 3 * podsPerNode
		return r.measure("node autoscaler kill -9 mid-scale-up", func() {
			r.deployment(pods)
			// In flight: the autoscaler asked the sim cloud for nodes that have not appeared yet.
			st := r.waitFor("a scale-up in flight", func(s PoolState) bool {
				return s.Unregistered > 0 || s.Target > int32(len(s.Nodes))
			})
			r.t.Logf("killed with %d nodes asked for, %d registered", st.Target, len(st.Nodes))
			a.Kill()
			time.Sleep(2 * time.Second)
			r.autoscaler()
		})
	})},
	{"node autoscaler kill -9 mid-drain", onNodes(func(r *nodeRig) Result {
		a := r.autoscaler()
		r.deployment(2 * podsPerNode)
		r.waitFor("two full nodes", func(s PoolState) bool { return r.pool.Settled(s) == "" })
		// Scale-down waits until the scene is set: two half-used nodes whose pods hold their deletion (a
		// finalizer), so the drain of one stays in flight, the node tainted and cordoned, its evicted pods there.
		r.patchNodes(fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, template.AnnotationScaleDownDisabled))
		r.spreadScaleDown(podsPerNode)
		r.waitFor("two half-used nodes", func(s PoolState) bool { return s.Pods == podsPerNode && s.Running == podsPerNode })
		r.t.Cleanup(func() { r.patchPods(`{"metadata":{"finalizers":null}}`) })
		r.patchPods(fmt.Sprintf(`{"metadata":{"finalizers":[%q]}}`, finalizerHold))
		r.patchNodes(fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, template.AnnotationScaleDownDisabled))
		st := r.waitFor("a drain in flight", func(s PoolState) bool { return len(s.Cordoned) > 0 })
		draining := st.Cordoned[0]
		return r.measure("node autoscaler kill -9 mid-drain", func() {
			a.Kill()
			time.Sleep(2 * time.Second)
			r.autoscaler()
			// Start-up takes the crashed run's taint and cordon off (issue 18 item 4) before it may drain again.
			r.e.Eventually("the crashed drain's taint and cordon removed", 3*time.Minute, func() (bool, string) {
				n, err := r.e.Cluster.Client.CoreV1().Nodes().Get(r.e.Ctx, draining, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return true, ""
				}
				return err == nil && !scaledown.HasTaint(n) && !n.Spec.Unschedulable, fmt.Sprintf("err %v", err)
			})
			// The evicted pods may go now: the restarted autoscaler may finish the removal.
			r.patchPods(`{"metadata":{"finalizers":null}}`)
		})
	})},
	{"virtual node kill -9 with pods running", onVirtual(func(r *virtualRig) Result {
		vn := r.start()
		const pods = 6
		r.deployment(pods)
		r.e.Eventually("the pods Ready on the virtual node", 3*time.Minute, func() (bool, string) {
			why := r.wrong(r.e.Ctx)
			return why == "", why
		})
		return r.measure(fmt.Sprintf("virtual node kill -9 with %d pods, restarted after 2 s", pods), func() {
			vn.Kill()
			time.Sleep(2 * time.Second)
			r.start()
		})
	})},
}
