package controlplane

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigFor builds a kubeconfig for one client identity against the apiserver at server.
func kubeconfigFor(server string, caPEM []byte, user string, creds clientCredentials) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: creds.CertPEM, ClientKeyData: creds.KeyPEM}
	cfg.Contexts[clusterName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = clusterName
	return cfg
}

// writeKubeconfig writes cfg to path with owner-only permissions (it holds a private key), replacing the file
// atomically so a reader never sees half a kubeconfig.
func writeKubeconfig(path string, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %q: encode: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	return nil
}

// checkKubeconfigTarget refuses to overwrite a kubeconfig that was not written by tidal-dev, so that
// `--kubeconfig ~/.kube/config` cannot destroy a user's real configuration.
func checkKubeconfigTarget(path string) error {
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("kubeconfig %q: is a directory", path)
	}
	existing, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fmt.Errorf("kubeconfig %q: exists and is not a kubeconfig: %w", path, err)
	}
	for name := range existing.Clusters {
		if name != clusterName {
			return fmt.Errorf("kubeconfig %q: exists and has cluster %q not written by tidal-dev; refusing to overwrite", path, name)
		}
	}
	return nil
}

// restConfigFor turns a kubeconfig into a client config with dev-cluster-friendly rate limits.
func restConfigFor(cfg *clientcmdapi.Config) (*rest.Config, error) {
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.QPS = 200
	rc.Burst = 400
	return rc, nil
}
