package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/internal/imagebuild"
	"github.com/tidalscale/tidal/internal/release"
)

// runRelease builds the images, packages the chart with appVersion = the image tag, copies the oci-archives,
// and writes sbom.cdx.json and SHA256SUMS, all into --release-out.
func runRelease(ctx context.Context, args []string, log *zap.Logger) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	complete := addImageFlags(fs)
	chartDir := fs.String("chart", "charts/tidal", "the Helm chart to package")
	out := fs.String("release-out", "bin/release", "output directory of the release artifacts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, err := complete()
	if err != nil {
		return err
	}
	if _, err := release.ChartVersion(o.Version); err != nil {
		return fmt.Errorf("--version: %w", err)
	}
	o.Logger = log
	results, err := imagebuild.BuildAll(ctx, o)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	chart, err := release.PackageChart(*chartDir, *out, o.Version)
	if err != nil {
		return err
	}
	files := []string{filepath.Base(chart)}
	var bins []release.Binary
	for _, r := range results {
		name := fmt.Sprintf("%s-%s.oci.tar", r.Name, o.Version)
		if err := release.CopyFile(filepath.Join(o.OutDir, r.Archive), filepath.Join(*out, name)); err != nil {
			return err
		}
		files = append(files, name)
		for _, p := range o.Platforms {
			bins = append(bins, release.Binary{Name: r.Name, Platform: p.OS + "/" + p.Architecture,
				Path: filepath.Join(o.BuildDir, p.OS+"_"+p.Architecture, r.Name)})
		}
	}
	if err := release.CopyFile(filepath.Join(o.OutDir, imagebuild.ManifestFile), filepath.Join(*out, imagebuild.ManifestFile)); err != nil {
		return err
	}
	files = append(files, imagebuild.ManifestFile)
	sbom, err := os.Create(filepath.Join(*out, "sbom.cdx.json"))
	if err != nil {
		return err
	}
	err = release.WriteSBOM(sbom, release.SBOMOptions{Version: o.Version, Commit: o.Commit, Created: o.Created, Licenses: o.Licenses, Binaries: bins})
	if cerr := sbom.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	files = append(files, "sbom.cdx.json")
	if err := release.WriteChecksums(*out, files); err != nil {
		return err
	}
	log.Info("release written", zap.String("dir", *out), zap.Strings("files", files))
	return nil
}
