package tidal_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/internal/devcluster"
)

// lastAppliedAnnotation is what client-side `kubectl apply` stores: the whole object as JSON.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// maxAnnotationsBytes is the API server's limit on the total size of an object's annotations.
const maxAnnotationsBytes = 256 * 1024

// TestCRDsApplyClientSide: every CRD installs with plain `kubectl apply`. The apply stores the object as JSON in
// an annotation, and the API server refuses annotations above 256 KiB (the ScaledJob, which embeds a pod
// template, once did). Each CRD is created in dry-run with that annotation, so the API server's own validation
// decides; AlreadyExists (the shared cluster has them installed) comes only after validation passed.
func TestCRDsApplyClientSide(t *testing.T) {
	c := devcluster.Get(t)
	client, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in crds/: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
				t.Fatal(err)
			}
			applied, err := json.Marshal(&crd)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("last-applied annotation: %d bytes (limit %d)", len(applied), maxAnnotationsBytes)
			if len(applied) >= maxAnnotationsBytes {
				t.Errorf("last-applied annotation would be %d bytes, over the %d limit: kubectl apply fails", len(applied), maxAnnotationsBytes)
			}
			if crd.Annotations == nil {
				crd.Annotations = map[string]string{}
			}
			crd.Annotations[lastAppliedAnnotation] = string(applied)
			_, err = client.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), &crd,
				metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "kubectl-client-side-apply"})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("client-side apply of %s refused: %v", crd.Name, err)
			}
		})
	}
}
