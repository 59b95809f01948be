package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// TestExampleArgsParse keeps examples/virtual-node.yaml in step with the flags.
func TestExampleArgsParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "virtual-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if !strings.Contains(doc, "kind: Deployment") {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("decode deployment: %v", err)
		}
		args = d.Spec.Template.Spec.Containers[0].Args
	}
	if len(args) == 0 {
		t.Fatal("no Deployment args found in the example")
	}
	f, err := parseFlags(args)
	if err != nil {
		t.Fatalf("example args %v: %v", args, err)
	}
	if f.backendName != "aci" || !f.backfill || f.aciRegion != "westeurope" {
		t.Errorf("parsed %+v", f)
	}
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "port", args: []string{"--port=0"}, want: "--port"},
		{name: "unknown flag", args: []string{"--nope"}, want: "nope"},
		{name: "price not a number", args: []string{"--price-per-cpu-hour=cheap"}, want: "--price-per-cpu-hour"},
		{name: "negative price", args: []string{"--price-per-cpu-hour=-1"}, want: "--price-per-cpu-hour"},
		{name: "negative pod start", args: []string{"--pod-start-seconds=-2"}, want: "--pod-start-seconds"},
		{name: "node identity", args: []string{"--node-identity=root"}, want: "--node-identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseFlags(%v) = %v, want an error naming %s", tc.args, err, tc.want)
			}
		})
	}
}

func TestPlacementAnnotations(t *testing.T) {
	f, err := parseFlags([]string{"--price-per-cpu-hour=0.05", "--pod-start-seconds=1.5"})
	if err != nil {
		t.Fatal(err)
	}
	a := f.nodeAnnotations()
	if a["tidal.dev/price-per-cpu-hour"] != "0.05" || a["tidal.dev/pod-start-seconds"] != "1.5" {
		t.Errorf("annotations %v", a)
	}
	if f, _ := parseFlags(nil); f.nodeAnnotations() != nil {
		t.Errorf("no placement flags, annotations %v", f.nodeAnnotations())
	}
}

// The process backend's sandbox flags reach process.Sandbox: a private root (the default) needs namespaces.
func TestProcessSandboxFlags(t *testing.T) {
	images := filepath.Join(t.TempDir(), "images.yaml")
	if err := os.WriteFile(images, []byte("busybox: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newBackend := func(args ...string) error {
		t.Helper()
		f, err := parseFlags(append([]string{"--backend=process", "--process-images-file=" + images, "--process-dir=" + t.TempDir()}, args...))
		if err != nil {
			t.Fatal(err)
		}
		factory, err := backendFactory(context.Background(), f, nil, nil, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		b, err := factory(provider.BackendDeps{Changed: func(backend.Key, *corev1.PodStatus) {}})
		if err == nil {
			_ = b.Close(context.Background())
		}
		return err
	}
	if err := newBackend("--process-namespaces=false"); err == nil || !strings.Contains(err.Error(), "PrivateRoot needs Namespaces") {
		t.Errorf("a private root without namespaces: %v, want refused", err)
	}
	if err := newBackend("--process-namespaces=false", "--process-private-root=false"); err != nil {
		t.Errorf("no namespaces, no private root: %v", err)
	}
	if err := newBackend("--process-root-binds=usr"); err == nil || !strings.Contains(err.Error(), "RootBinds") {
		t.Errorf("a relative root bind: %v, want refused", err)
	}
}
