// Package imagebuild builds Tidal's container images the way ko does, with go-containerregistry as a library
// and no container runtime: a static Go binary on an empty (scratch) base plus the CA bundle and an /etc/passwd
// entry for the nonroot user 65532, one image per platform, gathered in an OCI image index.
//
// Builds are reproducible: every timestamp is the given creation time (SOURCE_DATE_EPOCH, the commit time),
// tar entries are sorted with fixed owners and modes, and gzip output is deterministic, so the same commit
// gives the same index digest.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the user (and group) every image runs as, distroless's "nonroot".
const NonRootUID = 65532

// OCI annotation and label keys (github.com/opencontainers/image-spec annotations.go).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelLicenses = "org.opencontainers.image.licenses"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// Binary is a static executable for one platform.
type Binary struct {
	Platform v1.Platform
	Path     string
}

// Spec describes one deployable's image.
type Spec struct {
	// Name is the binary's name: the entrypoint is /usr/local/bin/<Name>.
	Name     string
	Binaries []Binary
	Version  string
	Revision string
	Source   string
	Licenses string
	// Created is the time stamped on every file, history entry and the config (SOURCE_DATE_EPOCH).
	Created time.Time
	// CABundle is written to /etc/ssl/certs/ca-certificates.crt.
	CABundle []byte
}

// EntrypointPath is where an image keeps its binary.
func EntrypointPath(name string) string { return "/usr/local/bin/" + name }

// Labels are the OCI labels of the image config and the annotations of the index.
func (s Spec) Labels() map[string]string {
	return map[string]string{
		LabelSource: s.Source, LabelRevision: s.Revision, LabelVersion: s.Version, LabelLicenses: s.Licenses,
		LabelCreated: s.Created.UTC().Format(time.RFC3339), LabelTitle: s.Name,
	}
}

// Build assembles the image index of spec: one image per binary, ordered by platform.
func Build(spec Spec) (v1.ImageIndex, error) {
	if spec.Name == "" || len(spec.Binaries) == 0 {
		return nil, fmt.Errorf("image spec: a name and at least one binary are required")
	}
	if !x509.NewCertPool().AppendCertsFromPEM(spec.CABundle) {
		return nil, fmt.Errorf("image %s: the CA bundle holds no PEM certificate", spec.Name)
	}
	base, err := newLayer(baseFiles(spec.CABundle), spec.Created)
	if err != nil {
		return nil, fmt.Errorf("image %s: base layer: %w", spec.Name, err)
	}
	bins := append([]Binary(nil), spec.Binaries...)
	sort.Slice(bins, func(i, j int) bool { return bins[i].Platform.String() < bins[j].Platform.String() })
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, b := range bins {
		img, err := buildImage(spec, base, b)
		if err != nil {
			return nil, fmt.Errorf("image %s for %s: %w", spec.Name, b.Platform.String(), err)
		}
		p := b.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, spec.Labels()).(v1.ImageIndex), nil
}

func buildImage(spec Spec, base v1.Layer, b Binary) (v1.Image, error) {
	if err := CheckStatic(b.Path, b.Platform.Architecture); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(b.Path)
	if err != nil {
		return nil, err
	}
	entry := EntrypointPath(spec.Name)
	app, err := newLayer([]file{
		{name: "usr/", dir: true, mode: 0o755}, {name: "usr/local/", dir: true, mode: 0o755},
		{name: "usr/local/bin/", dir: true, mode: 0o755}, {name: entry[1:], mode: 0o755, data: bin},
	}, spec.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: spec.Created.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "tidal imagebuild: CA bundle, /etc/passwd (nonroot 65532)", Comment: "base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "tidal imagebuild: " + entry}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = b.Platform.OS, b.Platform.Architecture, b.Platform.Variant, b.Platform.OSVersion
	cf.Author = "The Tidal Authors"
	cf.Config = v1.Config{
		Entrypoint: []string{entry},
		User:       fmt.Sprint(NonRootUID),
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels:     spec.Labels(),
	}
	return mutate.ConfigFile(img, cf)
}

// baseFiles are the files every image shares: what a static Go binary expects from a minimal Linux system.
func baseFiles(caBundle []byte) []file {
	uid := fmt.Sprint(NonRootUID)
	return []file{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:" + uid + ":\n")},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + uid + ":" + uid + ":nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		{name: "home/", dir: true, mode: 0o755},
		{name: "home/nonroot/", dir: true, mode: 0o700, uid: NonRootUID},
		{name: "tmp/", dir: true, mode: 0o1777},
	}
}

// file is one tar entry of a layer.
type file struct {
	name string
	dir  bool
	mode int64
	uid  int
	data []byte
}

// newLayer is a gzip OCI layer holding files in name order, every entry stamped with created.
func newLayer(files []file, created time.Time) (v1.Layer, error) {
	sorted := append([]file(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: created.UTC(),
			Typeflag: tar.TypeReg, Size: int64(len(f.data)),
		}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
			h.Name = path.Clean(f.name) + "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
}
