package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// NodePool is a NodeGroup the node autoscaler manages and the Deployment (pods labelled app=Deployment) whose
// pods only the group's nodes can hold, PodsPerNode to a node. The right state is the exact packing: as many
// nodes as the pods need, every pod Running, no node left tainted or cordoned, nothing in flight.
type NodePool struct {
	Client      kubernetes.Interface
	Tidal       tidalclient.Interface
	Namespace   string
	Deployment  string
	Group       string
	PodsPerNode int32
}

// PoolState is what the pool shows at one moment.
type PoolState struct {
	// Replicas is the Deployment's spec.replicas (0 before it exists).
	Replicas int32
	// Nodes are the group's nodes not being deleted; Cordoned those of them with the autoscaler's
	// to-be-deleted taint or unschedulable.
	Nodes, Cordoned []string
	// Pods counts the Deployment's pods not being deleted; Running those of them Running on one of Nodes.
	Pods, Running int
	// Target and Unregistered are the NodeGroup status the autoscaler wrote: the size it asked for and the
	// instances not registered yet.
	Target, Unregistered int32
}

// Right is the node count that packs replicas pods.
func (p *NodePool) Right(replicas int32) int32 {
	return (replicas + p.PodsPerNode - 1) / p.PodsPerNode
}

// State reads the Deployment, the group's nodes, the pods and the NodeGroup status.
func (p *NodePool) State(ctx context.Context) (PoolState, error) {
	var s PoolState
	d, err := p.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.Deployment, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, err
	case d.Spec.Replicas != nil:
		s.Replicas = *d.Spec.Replicas
	}
	nodes, err := p.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + p.Group})
	if err != nil {
		return s, err
	}
	live := map[string]bool{}
	for _, n := range nodes.Items {
		if n.DeletionTimestamp != nil {
			continue
		}
		live[n.Name] = true
		s.Nodes = append(s.Nodes, n.Name)
		if n.Spec.Unschedulable || scaledown.HasTaint(&n) {
			s.Cordoned = append(s.Cordoned, n.Name)
		}
	}
	pods, err := livePods(ctx, p.Client, p.Namespace, p.Deployment)
	if err != nil {
		return s, err
	}
	s.Pods = len(pods)
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodRunning && live[pod.Spec.NodeName] {
			s.Running++
		}
	}
	ng, err := p.Tidal.TidalV1alpha1().NodeGroups().Get(ctx, p.Group, metav1.GetOptions{})
	if err != nil {
		return s, err
	}
	s.Target, s.Unregistered = ng.Status.TargetSize, ng.Status.UnregisteredNodes
	return s, nil
}

// Settled is "" when the pool is in its right state, else what is still wrong.
func (p *NodePool) Settled(s PoolState) string {
	var wrong []string
	right := p.Right(s.Replicas)
	if int32(len(s.Nodes)) != right {
		wrong = append(wrong, fmt.Sprintf("%d nodes, want %d", len(s.Nodes), right))
	}
	if s.Running != int(s.Replicas) || s.Pods != int(s.Replicas) {
		wrong = append(wrong, fmt.Sprintf("%d of %d pods Running (%d pods)", s.Running, s.Replicas, s.Pods))
	}
	if len(s.Cordoned) > 0 {
		wrong = append(wrong, fmt.Sprintf("tainted or cordoned: %s", strings.Join(s.Cordoned, ", ")))
	}
	if s.Target != right || s.Unregistered != 0 {
		wrong = append(wrong, fmt.Sprintf("in flight: status targetSize %d, unregistered %d", s.Target, s.Unregistered))
	}
	return strings.Join(wrong, "; ")
}

// ExtraNodes returns a Sampler of the nodes the group gained since now beyond what packing the pods needs: 0
// while nothing is provisioned twice. A node counts once it was seen, even if it is removed later.
func (p *NodePool) ExtraNodes(ctx context.Context) (Sampler, error) {
	st, err := p.State(ctx)
	if err != nil {
		return nil, err
	}
	start := map[string]bool{}
	for _, n := range st.Nodes {
		start[n] = true
	}
	added := map[string]bool{}
	return func(ctx context.Context) (int32, bool, bool) {
		st, err := p.State(ctx)
		if err != nil {
			return 0, false, false
		}
		for _, n := range st.Nodes {
			if !start[n] {
				added[n] = true
			}
		}
		needed := max(p.Right(st.Replicas)-int32(len(start)), 0)
		return max(int32(len(added))-needed, 0), false, true
	}, nil
}

// VirtualNode is a virtual node (tidal-virtual-node) and the Deployment (pods labelled app=Deployment) it runs
// all the pods of. The right state: the node Ready, every pod Ready on it, and what the node's backend runs (its
// kubelet API's /stats/summary, which lists the pods the backend reports) the same pods, by UID, as the API server binds to it — no orphan either way.
type VirtualNode struct {
	Client     kubernetes.Interface
	Namespace  string
	Deployment string
	Node       string
	// Kubelet is the base URL of the node's kubelet API, served without authentication; HTTP reaches it.
	Kubelet string
	HTTP    *http.Client
}

// VirtualState is what the virtual node shows at one moment.
type VirtualState struct {
	Replicas int32
	// Pods counts the Deployment's pods not being deleted; Ready those of them Ready on the node.
	Pods, Ready int
	NodeReady   bool
	// Orphans are pods the backend runs that the API server does not bind to the node, or bound pods (not being
	// deleted) the backend does not run; KubeletErr is why the backend's list could not be read.
	Orphans    []string
	KubeletErr error
}

// State reads the Deployment, the node, its pods in the API server and in the backend.
func (v *VirtualNode) State(ctx context.Context) (VirtualState, error) {
	var s VirtualState
	d, err := v.Client.AppsV1().Deployments(v.Namespace).Get(ctx, v.Deployment, metav1.GetOptions{})
	if err != nil {
		return s, err
	}
	s.Replicas = deref(d)
	node, err := v.Client.CoreV1().Nodes().Get(ctx, v.Node, metav1.GetOptions{})
	if err != nil {
		return s, err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			s.NodeReady = c.Status == corev1.ConditionTrue
		}
	}
	pods, err := livePods(ctx, v.Client, v.Namespace, v.Deployment)
	if err != nil {
		return s, err
	}
	s.Pods = len(pods)
	for _, pod := range pods {
		if pod.Spec.NodeName == v.Node && podReady(&pod) {
			s.Ready++
		}
	}
	bound, err := v.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", v.Node).String()})
	if err != nil {
		return s, err
	}
	running, err := v.runningPods(ctx)
	if err != nil {
		s.KubeletErr = err
		return s, nil
	}
	inAPI := map[string]bool{}
	for _, pod := range bound.Items {
		key := podKey(&pod)
		inAPI[key] = true
		if !running[key] && pod.DeletionTimestamp == nil {
			s.Orphans = append(s.Orphans, key+" (bound, not run)")
		}
	}
	for key := range running {
		if !inAPI[key] {
			s.Orphans = append(s.Orphans, key+" (run, not bound)")
		}
	}
	sort.Strings(s.Orphans)
	return s, nil
}

func (v *VirtualNode) runningPods(ctx context.Context) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.Kubelet+"/stats/summary", nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /stats/summary: %s", resp.Status)
	}
	var sum statsv1alpha1.Summary
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		return nil, fmt.Errorf("GET /stats/summary: %w", err)
	}
	out := map[string]bool{}
	for _, p := range sum.Pods {
		out[p.PodRef.Namespace+"/"+p.PodRef.Name+"/"+p.PodRef.UID] = true
	}
	return out, nil
}

// Settled is "" when the virtual node is in its right state, else what is still wrong.
func (v *VirtualNode) Settled(s VirtualState) string {
	var wrong []string
	if !s.NodeReady {
		wrong = append(wrong, "node not Ready")
	}
	if s.Ready != int(s.Replicas) || s.Pods != int(s.Replicas) {
		wrong = append(wrong, fmt.Sprintf("%d of %d pods Ready on the node (%d pods)", s.Ready, s.Replicas, s.Pods))
	}
	if s.KubeletErr != nil {
		wrong = append(wrong, "kubelet API: "+s.KubeletErr.Error())
	}
	if len(s.Orphans) > 0 {
		wrong = append(wrong, "orphans: "+strings.Join(s.Orphans, ", "))
	}
	return strings.Join(wrong, "; ")
}

// NotReady is a Sampler of the pods short of the Deployment's replicas that are not Ready on the node.
func (v *VirtualNode) NotReady() Sampler {
	return func(ctx context.Context) (int32, bool, bool) {
		s, err := v.State(ctx)
		if err != nil {
			return 0, false, false
		}
		return max(s.Replicas-int32(s.Ready), 0), false, true
	}
}

// livePods lists the pods labelled app=app in namespace that are not being deleted.
func livePods(ctx context.Context, client kubernetes.Interface, namespace, app string) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	live := list.Items[:0]
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			live = append(live, pod)
		}
	}
	return live, nil
}

func deref(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return pod.Status.Phase == corev1.PodRunning && c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name + "/" + string(pod.UID) }
