package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tidalscale/tidal/internal/version"
)

// versionInfo is the output of `tidalctl version`: internal/version's version and commit (set by -ldflags -X,
// else from the build info) and the platform.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Revision  string `json:"revision,omitempty"`
}

func currentVersion() versionInfo {
	v := version.Get()
	out := versionInfo{Version: v.Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if v.Commit != "unknown" {
		out.Revision = v.Commit
	}
	return out
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
