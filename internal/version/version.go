// Package version holds the build's version and commit, set at link time:
//
//	go build -ldflags "-X github.com/tidalscale/tidal/internal/version.Version=v0.2.0 -X github.com/tidalscale/tidal/internal/version.Commit=$(git rev-parse --short HEAD)"
//
// Without them the module version and VCS revision from the build info are used.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set by -ldflags -X; these are the only package variables because the linker can only set those.
var (
	Version = ""
	Commit  = ""
)

// Info is the version of this build.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// Get returns the linked-in version and commit, filled from the build info where not linked in.
func Get() Info {
	v := Info{Version: Version, Commit: Commit}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// String is the --version line of a deployable: "tidal-operator version v0.2.0 commit 1a2b3c4"; name may be given
// with or without the "tidal-" prefix.
func String(name string) string {
	name = strings.TrimPrefix(name, "tidal-")
	v := Get()
	return fmt.Sprintf("tidal-%s version %s commit %s", name, v.Version, v.Commit)
}
