package devcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

var crdMu sync.Mutex

// InstallCRDs installs (or updates) Tidal's CRDs from charts/tidal/crds and waits until each is Established.
// Safe to call from every test: the second call finds them in place.
func InstallCRDs(t testing.TB, c *Cluster) {
	t.Helper()
	crdMu.Lock()
	defer crdMu.Unlock()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	if err := ApplyCRDDir(context.Background(), c, filepath.Join(root, "charts", "tidal", "crds")); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
}

// ApplyCRDDir creates or updates every CRD in dir (*.yaml) and waits for each to be Established.
func ApplyCRDDir(ctx context.Context, c *Cluster, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", dir)
	}
	ac, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	crds := ac.ApiextensionsV1().CustomResourceDefinitions()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		// Other test binaries apply the same CRDs at the same time, and the apiserver writes their status: an
		// update that lost the race is retried on the newer object.
		err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				if _, err := crds.Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					return fmt.Errorf("create CRD %s: %w", crd.Name, err)
				}
				return nil
			case err != nil:
				return err
			}
			crd.ResourceVersion = got.ResourceVersion
			if _, err := crds.Update(ctx, &crd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update CRD %s: %w", crd.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
			if err == nil && established(got) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not Established after 60s", crd.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
