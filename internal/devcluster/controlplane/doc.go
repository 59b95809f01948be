// Package controlplane runs a whole Kubernetes control plane in the current process: an embedded etcd
// (go.etcd.io/etcd/server/v3/embed), kube-apiserver, kube-controller-manager and kube-scheduler from
// k8s.io/kubernetes, and kwok (sigs.k8s.io/kwok) simulating the nodes. It links k8s.io/kubernetes and is meant
// for cmd/tidal-dev only; tests reach the cluster through internal/devcluster, which starts the tidal-dev binary.
//
// # Components in one process
//
// Each component is built from its options and flag set (as kube's own cmd/*/app/testing servers do), not from
// its cobra command. So no component installs a signal handler (Start/Stop own the lifetime: every component
// runs with its own context, and Stop cancels and waits for each, controllers first, then the apiserver, then
// etcd), and no component applies a logging configuration: klog is configured once by
// ConfigureComponentLogging, which avoids the "logging configuration was already applied earlier" failure of a
// second component without logsapi.ResetForTest. Every listener binds 127.0.0.1 on a free port, so several
// clusters can run on one machine.
//
// Identities: the admin kubeconfig is a client certificate in system:masters; the controller manager and the
// scheduler use client certificates for system:kube-controller-manager and system:kube-scheduler, and the
// controller manager runs each controller with its own service account (--use-service-account-credentials), so
// RBAC (--authorization-mode=Node,RBAC) applies as in a kubeadm cluster.
//
// # Aggregated API servers on the host
//
// The aggregation layer is on: a front-proxy CA, --requestheader-* flags and --proxy-client-cert-file/key-file.
// An aggregated API server such as the Tidal metrics adapter can run on the host, outside the cluster. There is
// no kube-proxy, so a ClusterIP is not routable, and EndpointSlices may not hold loopback addresses, so
// --enable-aggregator-routing is left off. Instead the aggregator resolves the APIService's Service with
// k8s.io/apiserver/pkg/util/proxy.ResolveCluster, which maps a Service of type ExternalName to
// https://<spec.externalName>:<APIService spec.service.port>. Register an adapter listening on host port 6443:
//
//	apiVersion: v1
//	kind: Service
//	metadata: {name: tidal-metrics-adapter, namespace: tidal-system}
//	spec: {type: ExternalName, externalName: localhost}
//	---
//	apiVersion: apiregistration.k8s.io/v1
//	kind: APIService
//	metadata: {name: v1beta1.external.metrics.k8s.io}
//	spec:
//	  group: external.metrics.k8s.io
//	  version: v1beta1
//	  service: {namespace: tidal-system, name: tidal-metrics-adapter, port: 6443}
//	  insecureSkipTLSVerify: true   # or caBundle
//	  groupPriorityMinimum: 100
//	  versionPriority: 100
//
// The apiserver then presents the front-proxy client certificate (CN front-proxy-client) and passes the user in
// X-Remote-User/X-Remote-Group; the adapter finds the front-proxy CA in the kube-system/
// extension-apiserver-authentication ConfigMap. The HPA controller reaches such APIs the same way.
// internal/devcluster's Cluster.RegisterHostAPIService does this for tests.
//
// # Simulated pod resource usage (design note, not implemented)
//
// The metrics adapter will serve metrics.k8s.io PodMetrics for pods on kwok nodes (and NodeMetrics for the
// nodes) from two pod annotations:
//
//	tidal.dev/sim-cpu-usage: "250m"      # a resource.Quantity per pod, split evenly over its containers
//	tidal.dev/sim-memory-usage: "128Mi"
//
// falling back to the pod's requests when absent. A benchmark changes load with one patch of the pod (or of the
// Deployment's pod template, for new pods); the HPA controller reads it through the aggregator like any metrics
// server's data. Annotations, rather than kwok's ResourceUsage CRDs, keep the control plane free of extra CRDs
// and controllers, and the adapter can serve them from its pod informer.
package controlplane
