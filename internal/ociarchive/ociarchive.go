// Package ociarchive builds small single-layer OCI images (a static binary on an empty base) with
// go-containerregistry and writes them as OCI image-layout tar archives, the format `ctr images import` and the
// containerd client's Import read. Tests and the dev cluster use it to get images onto a containerd that cannot
// pull from the internet.
package ociarchive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one file of an image's layer.
type File struct {
	Data []byte
	Mode int64 // permission bits; 0 means 0o644
}

// Image describes a one-layer image on an empty base.
type Image struct {
	// Ref names the image, "registry/repo:tag" (a bare "repo:tag" is normalised as containerd does, to
	// docker.io/library/repo:tag).
	Ref        string
	Files      map[string]File // absolute path in the image → content
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string // "uid[:gid]"
	WorkingDir string
}

// Build returns the image.
func Build(img Image) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(img.Files))
	for p := range img.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]bool{}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("image %q: file %q: want an absolute path", img.Ref, p)
		}
		rel := strings.TrimPrefix(p, "/")
		for d := filepath.Dir(rel); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		f := img.Files[p]
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: mode, Size: int64(len(f.Data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return nil, fmt.Errorf("image %q: layer: %w", img.Ref, err)
	}
	base := mutate.MediaType(empty.Image, "application/vnd.oci.image.manifest.v1+json")
	base = mutate.ConfigMediaType(base, "application/vnd.oci.image.config.v1+json")
	out, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", img.Ref, err)
	}
	cf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtimeArch()
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env = img.Entrypoint, img.Cmd, img.Env
	cf.Config.User, cf.Config.WorkingDir = img.User, img.WorkingDir
	return mutate.ConfigFile(out, cf)
}

// Write builds img and writes it to w as an OCI image-layout tar archive whose index names it by
// io.containerd.image.name (the full reference) and org.opencontainers.image.ref.name (the tag).
func Write(w io.Writer, img Image) error {
	ref, err := name.ParseReference(img.Ref)
	if err != nil {
		return fmt.Errorf("image %q: %w", img.Ref, err)
	}
	v1img, err := Build(img)
	if err != nil {
		return err
	}
	return WriteImages(w, map[string]v1.Image{ref.Name(): v1img})
}

// WriteImages writes images (by full reference) as one OCI image-layout tar archive.
func WriteImages(w io.Writer, images map[string]v1.Image) error {
	dir, err := os.MkdirTemp("", "ociarchive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	for ref, img := range images {
		r, err := name.ParseReference(ref)
		if err != nil {
			return fmt.Errorf("image %q: %w", ref, err)
		}
		tag := r.Identifier()
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          r.Name(),
			"org.opencontainers.image.ref.name": tag,
		})); err != nil {
			return fmt.Errorf("image %q: %w", ref, err)
		}
	}
	return tarDir(w, dir)
}

func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	return errors.Join(err, tw.Close())
}
