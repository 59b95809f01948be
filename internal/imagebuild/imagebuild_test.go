package imagebuild

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The tests build the smallest deployable, tidal-demo-worker, for both platforms once per test binary; make images
// builds every deployable the same way.
const (
	testVersion = "v0.0.0-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testPackage = "./cmd/tidal-demo-worker"
	testName    = "tidal-demo-worker"
)

var (
	testCreated   = time.Unix(1767225600, 0).UTC() // 2026-01-01
	testPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	testBinaries  []Binary // built by TestMain
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagebuild-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBinaries, err = buildBinaries(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinaries(ctx context.Context, dir string) ([]Binary, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	var bins []Binary
	for _, p := range testPlatforms {
		out := filepath.Join(dir, p.OS+"_"+p.Architecture, testName)
		b := GoBuild{ModuleDir: root, Package: testPackage, Platform: p, Version: testVersion, Commit: testCommit, Out: out}
		if err := b.Run(ctx); err != nil {
			return nil, err
		}
		bins = append(bins, Binary{Platform: p, Path: out})
	}
	return bins, nil
}

func testSpec(t *testing.T, bins []Binary) Spec {
	t.Helper()
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the build machine's CA bundle (Debian package ca-certificates): %v", err)
	}
	return Spec{Name: testName, Binaries: bins, Version: testVersion, Revision: testCommit,
		Source: "https://github.com/tidalscale/tidal", Licenses: "Apache-2.0", Created: testCreated, CABundle: ca}
}

func TestImageIsNonRootStaticAndShellFree(t *testing.T) {
	idx, err := Build(testSpec(t, testBinaries))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if got := strings.Join(platforms, ","); got != "linux/amd64,linux/arm64" {
		t.Fatalf("index platforms = %s, want linux/amd64,linux/arm64", got)
	}
	if im.Annotations[LabelRevision] != testCommit || im.Annotations[LabelVersion] != testVersion {
		t.Errorf("index annotations = %v, want revision %s and version %s", im.Annotations, testCommit, testVersion)
	}
	for _, d := range im.Manifests {
		t.Run(d.Platform.String(), func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, img, *d.Platform)
		})
	}
}

func checkImage(t *testing.T, img v1.Image, p v1.Platform) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532" {
		t.Errorf("config User = %q, want 65532", cf.Config.User)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("config platform = %s/%s, want %s", cf.OS, cf.Architecture, p)
	}
	entry := EntrypointPath(testName)
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != entry {
		t.Errorf("entrypoint = %v, want [%s]", cf.Config.Entrypoint, entry)
	}
	for k, want := range map[string]string{LabelSource: "https://github.com/tidalscale/tidal", LabelRevision: testCommit, LabelVersion: testVersion, LabelLicenses: "Apache-2.0"} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(testCreated) {
		t.Errorf("created = %v, want SOURCE_DATE_EPOCH %v", cf.Created.Time, testCreated)
	}
	files := extract(t, img)
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh", "usr/bin/env"} {
		if _, ok := files[shell]; ok {
			t.Errorf("the image has %s; it must have no shell", shell)
		}
	}
	for n := range files {
		if base := filepath.Base(n); base == "sh" || base == "bash" || base == "ash" || base == "busybox" {
			t.Errorf("the image has a shell: %s", n)
		}
	}
	if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd = %q, want a nonroot entry for 65532", files["etc/passwd"])
	}
	if len(files["etc/ssl/certs/ca-certificates.crt"]) == 0 {
		t.Error("no CA bundle at /etc/ssl/certs/ca-certificates.crt")
	}
	bin := filepath.Join(t.TempDir(), testName)
	if err := os.WriteFile(bin, files[entry[1:]], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatic(bin, p.Architecture); err != nil {
		t.Errorf("entrypoint: %v", err)
	}
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		return
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", entry, err, out)
	}
	if !strings.Contains(string(out), testCommit) || !strings.Contains(string(out), testVersion) {
		t.Errorf("%s --version = %q, want the version %s and commit %s", entry, out, testVersion, testCommit)
	}
}

// extract is the image's flattened filesystem: path (without the leading /) → content.
func extract(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
			files[strings.TrimPrefix(h.Name, "/")] = []byte("-> " + h.Linkname)
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "/")] = b
	}
}

func TestBuildTwiceGivesTheSameDigest(t *testing.T) {
	ref, err := name.NewTag("ghcr.io/tidalscale/" + testName + ":" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	first := writeAll(t, testBinaries, ref)
	// A fresh `go build` of the same sources into another directory, then the whole image again.
	rebuilt, err := buildBinaries(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	second := writeAll(t, rebuilt, ref)
	if first.digest != second.digest {
		t.Errorf("index digest changed between builds: %s, then %s", first.digest, second.digest)
	}
	if first.archiveSum != second.archiveSum {
		t.Errorf("oci-archive sha256 changed between builds: %s, then %s", first.archiveSum, second.archiveSum)
	}
}

type written struct{ digest, archiveSum string }

func writeAll(t *testing.T, bins []Binary, ref name.Tag) written {
	t.Helper()
	idx, err := Build(testSpec(t, bins))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lay, archive := filepath.Join(dir, testName), filepath.Join(dir, testName+".tar")
	if err := WriteLayout(lay, idx, ref); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(lay, archive, testCreated); err != nil {
		t.Fatal(err)
	}
	back, backRef, err := ReadLayout(lay)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if bd, _ := back.Digest(); bd != d || backRef.Name() != ref.Name() {
		t.Errorf("layout holds %s %s, want %s %s", backRef, bd, ref, d)
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	checkArchive(t, archive, ref, d)
	return written{digest: d.String(), archiveSum: hex.EncodeToString(sum[:])}
}

// checkArchive reads the oci-archive as `ctr images import` does: oci-layout, index.json naming the image, and
// every blob the index references.
func checkArchive(t *testing.T, archive string, ref name.Tag, digest v1.Hash) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		entries[h.Name] = b
	}
	if !strings.Contains(string(entries["oci-layout"]), `"imageLayoutVersion"`) {
		t.Errorf("oci-layout = %q", entries["oci-layout"])
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(entries["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != digest ||
		index.Manifests[0].Annotations[AnnotationImageName] != ref.Name() || index.Manifests[0].Annotations[AnnotationRefName] != ref.TagStr() {
		t.Fatalf("index.json = %s, want one entry %s named %s", entries["index.json"], digest, ref)
	}
	if _, ok := entries["blobs/sha256/"+digest.Hex]; !ok {
		t.Errorf("the archive lacks the image index blob %s", digest)
	}
}

func TestPushAndPullByDigest(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(u.Host + "/tidalscale/" + testName + ":" + testVersion)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Build(testSpec(t, testBinaries))
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := Push(t.Context(), idx, ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if pushed.DigestStr() != want.String() {
		t.Fatalf("pushed %s, want digest %s", pushed, want)
	}
	got, err := remote.Index(pushed, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", pushed, err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled index digest %s, want %s", d, want)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("pulled index has %d manifests, want 2", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, err := remote.Image(pushed.Context().Digest(d.Digest.String()), remote.WithContext(t.Context()))
		if err != nil {
			t.Fatalf("pull %s image %s: %v", d.Platform, d.Digest, err)
		}
		checkImage(t, img, *d.Platform)
	}
	// The tag resolves to the same index.
	byTag, err := remote.Index(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := byTag.Digest(); d != want {
		t.Errorf("tag %s points at %s, want %s", ref, d, want)
	}
}

func TestBuildRefusesADynamicBinary(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no dynamically linked binary to try")
	}
	spec := testSpec(t, []Binary{{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Path: sh}})
	if _, err := Build(spec); err == nil || !strings.Contains(err.Error(), "PT_INTERP") {
		t.Fatalf("Build with %s = %v, want an error about dynamic linking", sh, err)
	}
}
