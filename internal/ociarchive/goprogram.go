package ociarchive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// GoProgram compiles the Go package pkg (relative to dir, e.g. "./cmd/tidal-demo-worker") as a static binary for
// this machine and returns img as an archive with the binary at /<base name of pkg>, which becomes the entrypoint
// unless img names one. It is how tests get a program onto a containerd that cannot pull.
func GoProgram(ctx context.Context, dir, pkg string, img Image) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "goprogram-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	base := filepath.Base(pkg)
	bin := filepath.Join(tmp, base)
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin, pkg)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w: %s", pkg, err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	files := map[string]File{"/" + base: {Data: prog, Mode: 0o755}}
	for p, f := range img.Files {
		files[p] = f
	}
	img.Files = files
	if len(img.Entrypoint) == 0 {
		img.Entrypoint = []string{"/" + base}
	}
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
