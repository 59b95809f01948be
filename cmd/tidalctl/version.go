package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=v0.1.0". Without it the module version from
// the build info is used ("(devel)" for a build from a checkout).
var version = ""

// versionInfo is the output of `tidalctl version`.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Revision  string `json:"revision,omitempty"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func newVersionCmd(g *globalFlags, s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tidalctl's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := currentVersion()
			if g.output != outputTable {
				return printStructured(s.out, g.output, v)
			}
			line := fmt.Sprintf("tidalctl %s (%s, %s", v.Version, v.GoVersion, v.Platform)
			if v.Revision != "" {
				line += ", revision " + v.Revision
			}
			_, err := fmt.Fprintln(s.out, line+")")
			return err
		},
	}
}
