// Command tidal-release builds and ships Tidal: container images without a container runtime, and release
// artifacts.
//
//	tidal-release images  --version V --commit C --source-date-epoch S [--registry ghcr.io/tidalscale] [--out bin/images]
//	tidal-release push    --registry host/owner [--out bin/images]
//	tidal-release release --version v0.2.0 --commit C --source-date-epoch S [--release-out bin/release]
//
// images writes, per deployable, bin/images/<name>/ (an OCI image layout), bin/images/<name>.tar (the same
// layout as an oci-archive, importable with `ctr images import`) and bin/images/images.json listing every
// image's reference, digest and compressed size. push sends them to another registry with remote.WriteIndex.
// release builds the images, then writes into bin/release/ the chart package (tidal-<semver>.tgz, appVersion =
// the image tag), each image's oci-archive, images.json, a CycloneDX SBOM (sbom.cdx.json) and SHA256SUMS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/internal/imagebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tidal-release:", err)
		os.Exit(1)
	}
}

const usage = "usage: tidal-release images|push|release [flags]; tidal-release <command> -h lists the flags"

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	switch args[0] {
	case "images":
		o, err := parseImageFlags("images", args[1:])
		if err != nil {
			return err
		}
		o.Logger = log
		_, err = imagebuild.BuildAll(ctx, o)
		return err
	case "push":
		fs := flag.NewFlagSet("push", flag.ContinueOnError)
		out := fs.String("out", "bin/images", "directory make images wrote")
		registry := fs.String("registry", "", "registry and owner to push to, e.g. registry.example.com/team")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *registry == "" {
			return errors.New("push: --registry is required (make push REGISTRY=host/owner)")
		}
		_, err := imagebuild.PushAll(ctx, *out, *registry, log)
		return err
	case "release":
		return runRelease(ctx, args[1:], log)
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
}

// addImageFlags registers the image build flags on fs; the returned func completes the Options after Parse.
func addImageFlags(fs *flag.FlagSet) func() (imagebuild.Options, error) {
	var o imagebuild.Options
	fs.StringVar(&o.ModuleDir, "module-dir", ".", "root of the Tidal module")
	fs.StringVar(&o.OutDir, "out", "bin/images", "output directory of the images")
	fs.StringVar(&o.BuildDir, "build-dir", "bin/build", "output directory of the binaries (<os>_<arch>/<name>)")
	fs.StringVar(&o.Registry, "registry", "ghcr.io/tidalscale", "repository prefix of the image names")
	fs.StringVar(&o.Version, "version", "", "version: the image tag and version label (required)")
	fs.StringVar(&o.Commit, "commit", "", "full git commit (required)")
	fs.StringVar(&o.Source, "source", "https://github.com/tidalscale/tidal", "org.opencontainers.image.source")
	fs.StringVar(&o.Licenses, "licenses", "Apache-2.0", "org.opencontainers.image.licenses (SPDX expression)")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "creation time in Unix seconds, normally the commit time (required)")
	caFile := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into every image")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms of every image index")
	only := fs.String("images", "", "comma-separated subset of the images to build (default: all)")
	return func() (imagebuild.Options, error) {
		if o.Version == "" || o.Commit == "" || *epoch == "" {
			return o, errors.New("--version, --commit and --source-date-epoch are required (make images passes them from git)")
		}
		sec, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil || sec < 0 {
			return o, fmt.Errorf("--source-date-epoch: want Unix seconds, got %q", *epoch)
		}
		o.Created = time.Unix(sec, 0).UTC()
		if o.CABundle, err = os.ReadFile(*caFile); err != nil {
			return o, fmt.Errorf("--ca-bundle: %w", err)
		}
		for _, p := range strings.Split(*platforms, ",") {
			pl, err := v1.ParsePlatform(strings.TrimSpace(p))
			if err != nil || pl.OS == "" || pl.Architecture == "" {
				return o, fmt.Errorf("--platforms: want os/arch, got %q", p)
			}
			o.Platforms = append(o.Platforms, *pl)
		}
		if *only != "" {
			byName := map[string]imagebuild.Deployable{}
			for _, d := range imagebuild.Deployables() {
				byName[d.Name] = d
			}
			for _, n := range strings.Split(*only, ",") {
				d, ok := byName[strings.TrimSpace(n)]
				if !ok {
					return o, fmt.Errorf("--images: unknown image %q", n)
				}
				o.Deployables = append(o.Deployables, d)
			}
		}
		return o, nil
	}
}

func parseImageFlags(name string, args []string) (imagebuild.Options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	complete := addImageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return imagebuild.Options{}, err
	}
	return complete()
}
