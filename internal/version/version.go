// Package version holds the version and commit every Tidal binary was built from. Release builds set them with
//
//	go build -ldflags "-X github.com/tidalscale/tidal/internal/version.Version=v0.2.0 \
//	                   -X github.com/tidalscale/tidal/internal/version.Commit=$(git rev-parse HEAD)"
//
// (make images and make release do); a plain go build leaves the defaults.
package version

import "runtime"

// Version is the release version (the image tag); Commit is the full git commit.
var Version, Commit = "dev", "unknown"

// String is the line a binary prints for --version, e.g. "tidal-operator v0.2.0 (commit 1a2b…, go1.26.8 linux/amd64)".
func String(name string) string {
	return name + " " + Version + " (commit " + Commit + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
