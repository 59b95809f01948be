// Package release makes Tidal's release artifacts besides the images: the Helm chart package whose appVersion
// is the image tag, a CycloneDX SBOM of the shipped binaries from their embedded Go build information, and a
// SHA256SUMS file.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// ChartVersion is the chart version of a release version: the SemVer without a leading "v" (v0.2.0 → 0.2.0).
func ChartVersion(version string) (string, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v"))
	if err != nil {
		return "", fmt.Errorf("version %q: a release needs a SemVer such as v0.2.0: %w", version, err)
	}
	return v.String(), nil
}

// PackageChart packages the chart in chartDir into outDir, as `helm package --version --app-version` does:
// version is the chart version (without "v") and appVersion the image tag, which is every image's default tag.
// It returns the path of the .tgz.
func PackageChart(chartDir, outDir, version string) (string, error) {
	cv, err := ChartVersion(version)
	if err != nil {
		return "", err
	}
	c, err := loader.Load(chartDir)
	if err != nil {
		return "", fmt.Errorf("chart %s: %w", chartDir, err)
	}
	c.Metadata.Version, c.Metadata.AppVersion = cv, version
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("chart %s: %w", chartDir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	p, err := chartutil.Save(c, outDir)
	if err != nil {
		return "", fmt.Errorf("package chart %s: %w", chartDir, err)
	}
	return p, nil
}

// WriteChecksums writes dir/SHA256SUMS for the given files of dir, in the format `sha256sum -c` checks.
func WriteChecksums(dir string, files []string) error {
	names := append([]string(nil), files...)
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("checksum of %s: %w", n, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CopyFile copies src to dst.
func CopyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
