package controlplane

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// serviceClusterIPRange is the Service CIDR. 10.96.0.1 (the kubernetes Service) is in the serving certificate.
const serviceClusterIPRange = "10.96.0.0/16"

// apiserverOptions configures runAPIServer.
type apiserverOptions struct {
	EtcdURL  string
	PKI      *pkiFiles
	CertDir  string
	Listener net.Listener
	Port     int
}

// apiserverArgs are the kube-apiserver flags of the dev cluster. The aggregation-layer flags, and how an
// aggregated API server on the host is reached through an ExternalName Service, are described in the package
// documentation.
func apiserverArgs(o apiserverOptions) []string {
	return []string{
		"--etcd-servers=" + o.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(o.Port),
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + o.CertDir,
		"--tls-cert-file=" + o.PKI.ServingCert,
		"--tls-private-key-file=" + o.PKI.ServingKey,
		"--client-ca-file=" + o.PKI.CACert,
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + o.PKI.ServiceAccountPublicKey,
		"--service-account-signing-key-file=" + o.PKI.ServiceAccountKey,
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=" + serviceClusterIPRange,
		"--allow-privileged=true",
		"--profiling=false",
		"--requestheader-client-ca-file=" + o.PKI.FrontProxyCACert,
		"--requestheader-allowed-names=" + frontProxyClientCN,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + o.PKI.FrontProxyClientCert,
		"--proxy-client-key-file=" + o.PKI.FrontProxyClientKey,
	}
}

// runAPIServer builds a kube-apiserver from flags, without cobra (no signal handler, no logging configuration:
// the process owns both), and runs it until ctx is cancelled and the server has shut down.
func runAPIServer(ctx context.Context, o apiserverOptions) error {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(apiserverArgs(o)); err != nil {
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	s.SecureServing.Listener = o.Listener
	s.SecureServing.BindPort = o.Port
	// The apiserver's loopback clients must not log the warnings it issues to itself.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	return app.Run(ctx, completed)
}
