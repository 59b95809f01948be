package imagebuild

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// VersionPackage is the package whose Version and Commit variables the linker sets.
const VersionPackage = "github.com/tidalscale/tidal/internal/version"

// GoBuild is one static binary: `go build` of Package for Platform, with CGO off, -trimpath and the version
// stamped into VersionPackage, written to Out.
type GoBuild struct {
	// ModuleDir is the module root `go build` runs in.
	ModuleDir string
	// Package is the main package, e.g. ./cmd/tidal-operator.
	Package  string
	Platform v1.Platform
	Version  string
	Commit   string
	Out      string
}

// Run builds the binary. Same sources, toolchain, version and commit give the same bytes.
func (b GoBuild) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(b.Out), 0o755); err != nil {
		return err
	}
	ldflags := fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Commit=%s", VersionPackage, b.Version, VersionPackage, b.Commit)
	// -buildvcs=false: the commit comes from ldflags, so an edited work tree (vcs.modified) cannot change the bytes.
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", b.Out, b.Package)
	cmd.Dir = b.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+b.Platform.OS, "GOARCH="+b.Platform.Architecture, "GOFLAGS=-mod=readonly")
	if b.Platform.Architecture == "arm" && b.Platform.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(b.Platform.Variant, "v"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w: %s", b.Package, b.Platform.String(), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// goTool is the go command of the toolchain running this program when it has one, else the one on PATH.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// elfMachines maps GOARCH to the ELF machine a binary for it declares.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// CheckStatic returns an error unless path is a Linux ELF executable for arch without a program interpreter
// (PT_INTERP): a binary that needs no libc and runs on scratch.
func CheckStatic(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary: %w", path, err)
	}
	defer f.Close()
	if want, ok := elfMachines[arch]; !ok || f.Machine != want {
		return fmt.Errorf("%s: ELF machine %v does not match architecture %q", path, f.Machine, arch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: ELF type %v is not an executable", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (has a PT_INTERP program header); build with CGO_ENABLED=0", path)
		}
	}
	return nil
}
