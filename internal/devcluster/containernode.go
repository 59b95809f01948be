package devcluster

import (
	"context"
	"fmt"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"os"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// Labels and taint of the container node `tidal-dev up --container-node` registers (see provider.NodeOptions).
const (
	ContainerNodeSelectorKey   = tidalv1alpha1.VirtualNodeBackendLabel
	ContainerNodeSelectorValue = "containerd"
	ContainerNodeTaintKey      = tidalv1alpha1.VirtualNodeTaintKey
)

// OnContainerNode places a pod on the container node: its selector and a toleration of its taint.
func OnContainerNode(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[ContainerNodeSelectorKey] = ContainerNodeSelectorValue
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: ContainerNodeTaintKey, Operator: corev1.TolerationOpExists})
}

// ImportImages imports OCI archives (bin/images/<name>.tar of make images, or any oci-archive) into the
// container node's containerd, in namespace, and returns the names of the images imported.
func ImportImages(ctx context.Context, address, namespace string, archives ...string) ([]string, error) {
	client, err := ctrd.New(address)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: %w", address, err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)
	var names []string
	for _, a := range archives {
		f, err := os.Open(a)
		if err != nil {
			return names, fmt.Errorf("import %s: %w", a, err)
		}
		imgs, err := client.Import(ctx, f)
		f.Close()
		if err != nil {
			return names, fmt.Errorf("import %s: %w", a, err)
		}
		for _, img := range imgs {
			names = append(names, img.Name)
		}
	}
	return names, nil
}

// TagImages gives images already in the container node's containerd (namespace) a second name each, as
// `ctr images tag` does: tags maps an existing name to the new one, and the new image record points at the same
// target (no content is copied). An existing record of the new name is replaced.
func TagImages(ctx context.Context, address, namespace string, tags map[string]string) error {
	client, err := ctrd.New(address)
	if err != nil {
		return fmt.Errorf("containerd %s: %w", address, err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)
	is := client.ImageService()
	for from, to := range tags {
		img, err := is.Get(ctx, from)
		if err != nil {
			return fmt.Errorf("tag %s as %s: %w", from, to, err)
		}
		img.Name = to
		if _, err := is.Create(ctx, img); err != nil {
			if !errdefs.IsAlreadyExists(err) {
				return fmt.Errorf("tag %s as %s: %w", from, to, err)
			}
			if _, err := is.Update(ctx, img); err != nil {
				return fmt.Errorf("tag %s as %s: %w", from, to, err)
			}
		}
	}
	return nil
}
