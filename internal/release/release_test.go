package release

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

func TestPackageChartSetsAppVersionToTheImageTag(t *testing.T) {
	dir := t.TempDir()
	p, err := PackageChart("../../charts/tidal", dir, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "tidal-1.2.3.tgz" {
		t.Errorf("package %s, want tidal-1.2.3.tgz", p)
	}
	c, err := loader.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Version != "1.2.3" || c.Metadata.AppVersion != "v1.2.3" {
		t.Fatalf("chart version %s appVersion %s, want 1.2.3 and v1.2.3", c.Metadata.Version, c.Metadata.AppVersion)
	}
	// Installed with its defaults, every deployable runs the release's images.
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	inst := action.NewInstall(&action.Configuration{KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
		Releases: storage.Init(driver.NewMemory()), Capabilities: caps, Log: func(string, ...any) {}})
	inst.ClientOnly, inst.DryRun, inst.ReleaseName, inst.Namespace, inst.KubeVersion = true, true, "tidal", "tidal-system", &caps.KubeVersion
	rel, err := inst.RunWithContext(context.Background(), c, map[string]any{"nodeAutoscaler": map[string]any{"enabled": true}, "virtualNode": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tidal-operator", "tidal-metrics-adapter", "tidal-node-autoscaler", "tidal-virtual-node"} {
		if want := "image: ghcr.io/tidalscale/" + name + ":v1.2.3"; !strings.Contains(rel.Manifest, want) {
			t.Errorf("the packaged chart renders no %q", want)
		}
	}
}

func TestPackageChartRefusesANonSemVer(t *testing.T) {
	if _, err := PackageChart("../../charts/tidal", t.TempDir(), "97c4dbd-dirty"); err == nil || !strings.Contains(err.Error(), "SemVer") {
		t.Fatalf("err = %v, want a SemVer error", err)
	}
}

// TestSBOMListsTheModulesOfABinary builds tidal-demo-worker and reads its build information, as `go version -m`
// does.
func TestSBOMListsTheModulesOfABinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tidal-demo-worker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tidal-demo-worker")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	var buf bytes.Buffer
	platform := runtime.GOOS + "/" + runtime.GOARCH
	err := WriteSBOM(&buf, SBOMOptions{Version: "v1.2.3", Commit: "abc", Created: time.Unix(0, 0), Licenses: "Apache-2.0",
		Binaries: []Binary{{Name: "tidal-demo-worker", Platform: platform, Path: bin}}})
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(&buf, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("decode the SBOM: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Version != "v1.2.3" {
		t.Fatalf("bomFormat %s, main component %+v", bom.BOMFormat, bom.Metadata.Component)
	}
	found := map[string]string{}
	for _, c := range *bom.Components {
		found[c.Name] = c.PackageURL
	}
	if _, ok := found["tidal-demo-worker"]; !ok {
		t.Error("no component for the binary")
	}
	for _, mod := range []string{"github.com/redis/go-redis/v9", "go.uber.org/zap"} {
		if p := found[mod]; !strings.HasPrefix(p, "pkg:golang/"+mod+"@v") {
			t.Errorf("module %s: purl %q, want pkg:golang/%s@v…", mod, p, mod)
		}
	}
	var binDeps int
	for _, d := range *bom.Dependencies {
		if d.Ref == "tidal-demo-worker@"+platform && d.Dependencies != nil {
			binDeps = len(*d.Dependencies)
		}
	}
	if binDeps < 3 {
		t.Errorf("the binary depends on %d modules in the SBOM, want its whole module list", binDeps)
	}
}

func TestWriteChecksums(t *testing.T) {
	dir := t.TempDir()
	for n, c := range map[string]string{"b.txt": "hello\n", "a.tgz": ""} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteChecksums(dir, []string{"b.txt", "a.tgz"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of "" and of "hello\n", as sha256sum prints them.
	want := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.tgz\n" +
		"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  b.txt\n"
	if string(got) != want {
		t.Errorf("SHA256SUMS =\n%s\nwant\n%s", got, want)
	}
}
