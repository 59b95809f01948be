package imagebuild

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Annotations naming an image in an OCI layout's index.json, as BuildKit's OCI exporter writes them:
// containerd's `ctr images import` names the image after AnnotationImageName, other tools use the tag in
// AnnotationRefName.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// WriteLayout replaces dir with an OCI image layout holding idx, named ref (e.g.
// ghcr.io/tidalscale/tidal-operator:v0.2.0) in its index.json.
func WriteLayout(dir string, idx v1.ImageIndex, ref name.Tag) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	anns := map[string]string{AnnotationImageName: ref.Name(), AnnotationRefName: ref.TagStr()}
	if err := p.AppendIndex(idx, layout.WithAnnotations(anns)); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout is the image index a WriteLayout layout holds, and the name it was given.
func ReadLayout(dir string) (v1.ImageIndex, name.Tag, error) {
	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	im, err := outer.IndexManifest()
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, name.Tag{}, fmt.Errorf("oci layout %s: want one image index in index.json, got %d entries", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	ref, err := name.NewTag(d.Annotations[AnnotationImageName])
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("oci layout %s: annotation %s: %w", dir, AnnotationImageName, err)
	}
	idx, err := outer.ImageIndex(d.Digest)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return idx, ref, nil
}

// WriteArchive writes the layout in dir as an oci-archive: a tar of the layout's files (oci-layout, index.json,
// blobs/sha256/...) in name order, each stamped with mtime, as `ctr images import` and
// `skopeo copy oci-archive:` read it.
func WriteArchive(dir, archive string, mtime time.Time) (err error) {
	var names []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return err
	}); err != nil {
		return fmt.Errorf("oci archive %s: %w", archive, err)
	}
	sort.Strings(names)
	out, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(out)
	for _, n := range names {
		if err := addFile(tw, filepath.Join(dir, filepath.FromSlash(n)), n, mtime); err != nil {
			return fmt.Errorf("oci archive %s: %s: %w", archive, n, err)
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, src, name string, mtime time.Time) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: name, Mode: 0o644, ModTime: mtime.UTC(), Typeflag: tar.TypeReg, Size: st.Size()}
	if st.IsDir() {
		h.Name, h.Mode, h.Typeflag, h.Size = name+"/", 0o755, tar.TypeDir, 0
	}
	if err := tw.WriteHeader(h); err != nil || st.IsDir() {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// Push writes idx with all its images and blobs to ref's registry (remote.WriteIndex) and returns the
// pushed reference by digest. Credentials come from the Docker config (~/.docker/config.json), as for docker push.
func Push(ctx context.Context, idx v1.ImageIndex, ref name.Tag, opts ...remote.Option) (name.Digest, error) {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(d.String()), nil
}
