package imagebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"
)

// Deployable is one image: the binary Name built from the main package Package.
type Deployable struct {
	Name    string `json:"name"`
	Package string `json:"package"`
}

// Deployables are the images Tidal ships.
func Deployables() []Deployable {
	return []Deployable{
		{Name: "tidal-operator", Package: "./cmd/tidal-operator"},
		{Name: "tidal-metrics-adapter", Package: "./cmd/tidal-metrics-adapter"},
		{Name: "tidal-node-autoscaler", Package: "./cmd/tidal-node-autoscaler"},
		{Name: "tidal-virtual-node", Package: "./cmd/tidal-virtual-node"},
		{Name: "tidal-demo-worker", Package: "./cmd/tidal-demo-worker"},
	}
}

// DefaultPlatforms are the platforms of every image index.
func DefaultPlatforms() []v1.Platform {
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

// Options configure BuildAll.
type Options struct {
	// ModuleDir is the module root; OutDir receives <name>/ (OCI layout), <name>.tar (oci-archive) and
	// images.json; BuildDir receives the binaries, <os>_<arch>/<name>.
	ModuleDir, OutDir, BuildDir string
	// Registry is the repository prefix of the image names, e.g. ghcr.io/tidalscale.
	Registry string
	Version  string
	Commit   string
	Source   string
	Licenses string
	Created  time.Time
	CABundle []byte
	// Platforms default to DefaultPlatforms, Deployables to Deployables.
	Platforms   []v1.Platform
	Deployables []Deployable
	Logger      *zap.Logger
}

// Result is one built image, as images.json lists it.
type Result struct {
	Name string `json:"name"`
	// Ref is the image's name and tag, e.g. ghcr.io/tidalscale/tidal-operator:v0.2.0.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Layout and Archive are relative to OutDir.
	Layout  string `json:"layout"`
	Archive string `json:"archive"`
	// CompressedSize is what a pull of each platform transfers: manifest, config and gzip layers, in bytes.
	CompressedSize map[string]int64 `json:"compressedSize"`
}

// ManifestFile is the list of Results in OutDir.
const ManifestFile = "images.json"

// BuildAll builds the binaries and image of every deployable, writes each image's OCI layout and oci-archive,
// and lists them in OutDir/images.json.
func BuildAll(ctx context.Context, o Options) ([]Result, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms()
	}
	if len(o.Deployables) == 0 {
		o.Deployables = Deployables()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	var results []Result
	for _, d := range o.Deployables {
		r, err := buildOne(ctx, o, d)
		if err != nil {
			return nil, err
		}
		o.Logger.Info("image built", zap.String("image", r.Ref), zap.String("digest", r.Digest), zap.Any("compressedBytes", r.CompressedSize))
		results = append(results, r)
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return nil, err
	}
	return results, os.WriteFile(filepath.Join(o.OutDir, ManifestFile), append(b, '\n'), 0o644)
}

func buildOne(ctx context.Context, o Options, d Deployable) (Result, error) {
	ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", o.Registry, d.Name, o.Version))
	if err != nil {
		return Result{}, fmt.Errorf("image %s: --registry/--version: %w", d.Name, err)
	}
	spec := Spec{Name: d.Name, Version: o.Version, Revision: o.Commit, Source: o.Source, Licenses: o.Licenses, Created: o.Created, CABundle: o.CABundle}
	for _, p := range o.Platforms {
		out := filepath.Join(o.BuildDir, p.OS+"_"+p.Architecture, d.Name)
		o.Logger.Info("go build", zap.String("package", d.Package), zap.String("platform", p.String()))
		gb := GoBuild{ModuleDir: o.ModuleDir, Package: d.Package, Platform: p, Version: o.Version, Commit: o.Commit, Out: out}
		if err := gb.Run(ctx); err != nil {
			return Result{}, err
		}
		spec.Binaries = append(spec.Binaries, Binary{Platform: p, Path: out})
	}
	idx, err := Build(spec)
	if err != nil {
		return Result{}, err
	}
	r := Result{Name: d.Name, Ref: ref.Name(), Layout: d.Name, Archive: d.Name + ".tar"}
	if err := WriteLayout(filepath.Join(o.OutDir, r.Layout), idx, ref); err != nil {
		return Result{}, err
	}
	if err := WriteArchive(filepath.Join(o.OutDir, r.Layout), filepath.Join(o.OutDir, r.Archive), o.Created); err != nil {
		return Result{}, err
	}
	dg, err := idx.Digest()
	if err != nil {
		return Result{}, err
	}
	r.Digest = dg.String()
	if r.CompressedSize, err = compressedSizes(idx); err != nil {
		return Result{}, fmt.Errorf("image %s: %w", d.Name, err)
	}
	return r, nil
}

// compressedSizes is, per platform, the bytes a pull transfers for that platform's image.
func compressedSizes(idx v1.ImageIndex) (map[string]int64, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		total := d.Size + m.Config.Size
		for _, l := range m.Layers {
			total += l.Size
		}
		sizes[d.Platform.String()] = total
	}
	return sizes, nil
}

// ReadResults is the images.json BuildAll wrote in outDir.
func ReadResults(outDir string) ([]Result, error) {
	b, err := os.ReadFile(filepath.Join(outDir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("%w (run make images first)", err)
	}
	var rs []Result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	return rs, nil
}

// PushAll pushes every image in outDir to registry (e.g. registry.example.com/team) under its own name and tag,
// and returns the pushed references by digest.
func PushAll(ctx context.Context, outDir, registry string, log *zap.Logger) ([]name.Digest, error) {
	rs, err := ReadResults(outDir)
	if err != nil {
		return nil, err
	}
	var pushed []name.Digest
	for _, r := range rs {
		idx, ref, err := ReadLayout(filepath.Join(outDir, r.Layout))
		if err != nil {
			return nil, err
		}
		to, err := name.NewTag(fmt.Sprintf("%s/%s:%s", registry, r.Name, ref.TagStr()))
		if err != nil {
			return nil, fmt.Errorf("image %s: --registry: %w", r.Name, err)
		}
		d, err := Push(ctx, idx, to)
		if err != nil {
			return nil, err
		}
		if log != nil {
			log.Info("pushed", zap.String("image", to.Name()), zap.String("digest", d.DigestStr()))
		}
		pushed = append(pushed, d)
	}
	return pushed, nil
}
