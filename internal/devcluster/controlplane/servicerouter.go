package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// serviceRouter is the container node's stand-in for kube-proxy, for the Services whose pods run on it: the API
// server calls webhooks and aggregated APIs at https://<ClusterIP>:<port> (k8s.io/apiserver/pkg/util/proxy
// ResolveCluster), and the containers share the host's network, so for every ClusterIP Service with a running
// pod on the node it adds the ClusterIP to the loopback interface (`ip addr add IP/32 dev lo`, root) and proxies
// TCP from ClusterIP:port to 127.0.0.1:targetPort; when port and targetPort are equal the pod's own listener
// answers on the ClusterIP (it must listen on all addresses, as it would in a pod network). The addresses are
// removed again on stop.
//
// Limits: no cluster DNS, so a container still cannot resolve <svc>.<ns>.svc (give it the ClusterIP or
// 127.0.0.1); two dev clusters with container nodes on one host allocate ClusterIPs from the same range and
// would collide; Services of pods on the kwok nodes are not routed (there is nothing behind them).
type serviceRouter struct {
	client kubernetes.Interface
	node   string
	log    *zap.Logger
	// interval between syncs.
	interval time.Duration

	routes map[string]*route // by ClusterIP:port
	ips    map[string]bool   // ClusterIPs on lo: true for those this router added (and removes)
	done   chan struct{}
}

// route is one Service port: proxied by l, or (nil l) the pod's own listener on the same port.
type route struct {
	target string
	l      net.Listener
}

func (rt *route) close() {
	if rt.l != nil {
		_ = rt.l.Close()
	}
}

func newServiceRouter(client kubernetes.Interface, node string, log *zap.Logger) *serviceRouter {
	return &serviceRouter{client: client, node: node, log: log, interval: time.Second,
		routes: map[string]*route{}, ips: map[string]bool{}, done: make(chan struct{})}
}

// run syncs the routes every interval until ctx is done, then removes them all.
func (r *serviceRouter) run(ctx context.Context) {
	defer close(r.done)
	defer r.removeAll()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("service routes not synced", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait returns once run has removed its routes.
func (r *serviceRouter) wait() { <-r.done }

// sync makes the listeners match the Services with running pods on the node.
func (r *serviceRouter) sync(ctx context.Context) error {
	pods, err := r.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + r.node})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	svcs, err := r.client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	want := map[string]string{}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		ip := svc.Spec.ClusterIP
		if len(svc.Spec.Selector) == 0 || ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for j := range pods.Items {
			pod := &pods.Items[j]
			if pod.Namespace != svc.Namespace || pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil ||
				!sel.Matches(labels.Set(pod.Labels)) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					continue
				}
				if port := targetPort(pod, p); port > 0 {
					want[net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				}
			}
			break
		}
	}
	for addr, rt := range r.routes {
		if want[addr] != rt.target {
			rt.close()
			delete(r.routes, addr)
			r.log.Info("service route removed", zap.String("address", addr))
		}
	}
	var errs []error
	for addr, target := range want {
		if _, ok := r.routes[addr]; ok {
			continue
		}
		if err := r.add(addr, target); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// targetPort resolves a Service port's targetPort against the pod's container ports.
func targetPort(pod *corev1.Pod, p corev1.ServicePort) int {
	if p.TargetPort.IntValue() > 0 {
		return p.TargetPort.IntValue()
	}
	if name := p.TargetPort.StrVal; name != "" {
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == name {
					return int(cp.ContainerPort)
				}
			}
		}
		return 0
	}
	return int(p.Port)
}

func (r *serviceRouter) add(addr, target string) error {
	ip, _, _ := net.SplitHostPort(addr)
	if _, known := r.ips[ip]; !known {
		out, err := exec.Command("ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput()
		exists := err != nil && strings.Contains(string(out), "File exists")
		if err != nil && !exists {
			return fmt.Errorf("route %s: ip addr add %s/32 dev lo (needs root): %v: %s", addr, ip, err, strings.TrimSpace(string(out)))
		}
		r.ips[ip] = !exists
	}
	// The same port: the pod's own listener on all addresses answers on the ClusterIP once it is on lo. A proxy
	// there would take the port from the pod when it restarts.
	if _, port, _ := net.SplitHostPort(addr); strings.HasSuffix(target, ":"+port) {
		r.routes[addr] = &route{target: target}
		r.log.Info("service address added", zap.String("address", addr))
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("route %s: %w", addr, err)
	}
	r.routes[addr] = &route{target: target, l: l}
	r.log.Info("service route added", zap.String("address", addr), zap.String("target", target))
	go proxy(l, target)
	return nil
}

// proxy forwards every connection accepted on l to target until l is closed.
func proxy(l net.Listener, target string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			<-done
		}()
	}
}

// removeAll closes every listener and removes the addresses the router added.
func (r *serviceRouter) removeAll() {
	for addr, rt := range r.routes {
		rt.close()
		delete(r.routes, addr)
	}
	for ip, added := range r.ips {
		if !added {
			delete(r.ips, ip)
			continue
		}
		if out, err := exec.Command("ip", "addr", "del", ip+"/32", "dev", "lo").CombinedOutput(); err != nil {
			r.log.Warn("could not remove a service address from lo", zap.String("ip", ip), zap.Error(err),
				zap.String("output", strings.TrimSpace(string(out))))
		}
		delete(r.ips, ip)
	}
}
