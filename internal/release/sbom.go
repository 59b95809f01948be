package release

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"sort"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// Binary is one shipped executable: the deployable's name, its platform (os/arch) and its path.
type Binary struct {
	Name, Platform, Path string
}

// SBOMOptions describe the release an SBOM is for.
type SBOMOptions struct {
	Version  string
	Commit   string
	Created  time.Time
	Licenses string
	Binaries []Binary
}

// WriteSBOM writes a CycloneDX JSON SBOM of the binaries, read from the build information the Go linker
// embeds in each (what `go version -m` prints): the Tidal release as the main component, one application
// component per binary and platform, one library component per Go module linked into any of them (with its
// go.sum hash), and the dependency graph from each binary to its modules.
func WriteSBOM(w io.Writer, o SBOMOptions) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = ""
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.Created.UTC().Format(time.RFC3339),
		Component: &cdx.Component{
			BOMRef: "tidal", Type: cdx.ComponentTypeApplication, Name: "tidal", Version: o.Version,
			PackageURL: purl("github.com/tidalscale/tidal", o.Version),
			Licenses:   &cdx.Licenses{{Expression: o.Licenses}},
			Properties: &[]cdx.Property{{Name: "vcs.revision", Value: o.Commit}},
		},
	}
	modules := map[string]cdx.Component{}
	var apps []cdx.Component
	var deps []cdx.Dependency
	for _, b := range o.Binaries {
		info, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return fmt.Errorf("sbom: %s (%s): %w", b.Name, b.Platform, err)
		}
		ref := b.Name + "@" + b.Platform
		props := []cdx.Property{{Name: "platform", Value: b.Platform}, {Name: "go.version", Value: info.GoVersion}}
		for _, s := range info.Settings {
			props = append(props, cdx.Property{Name: "go.build." + s.Key, Value: s.Value})
		}
		apps = append(apps, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeApplication, Name: b.Name, Version: o.Version, Properties: &props})
		var on []string
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			mref := purl(d.Path, d.Version)
			on = append(on, mref)
			if _, ok := modules[mref]; ok {
				continue
			}
			c := cdx.Component{BOMRef: mref, Type: cdx.ComponentTypeLibrary, Name: d.Path, Version: d.Version, PackageURL: mref}
			if d.Sum != "" {
				c.Properties = &[]cdx.Property{{Name: "go.sum", Value: d.Sum}}
			}
			modules[mref] = c
		}
		sort.Strings(on)
		deps = append(deps, cdx.Dependency{Ref: ref, Dependencies: &on})
	}
	comps := apps
	keys := make([]string, 0, len(modules))
	for k := range modules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		comps = append(comps, modules[k])
	}
	appRefs := make([]string, 0, len(apps))
	for _, a := range apps {
		appRefs = append(appRefs, a.BOMRef)
	}
	deps = append([]cdx.Dependency{{Ref: "tidal", Dependencies: &appRefs}}, deps...)
	bom.Components, bom.Dependencies = &comps, &deps
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.Encode(bom)
}

// purl is the package URL of a Go module version (pkg:golang/path@version).
func purl(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		p += "@" + version
	}
	return p
}
