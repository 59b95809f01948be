// Command gen writes docs/scalers/ (make docs): one page per trigger type and an index, from the registry, and
// docs/auth.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tidalscale/tidal/internal/scalerdocs"
	"github.com/tidalscale/tidal/scalers/registry"
)

func main() {
	out := flag.String("out", "docs/scalers", "directory to write the pages to (its old .md files are replaced)")
	auth := flag.String("auth", "docs/auth.md", "the authentication page")
	module := flag.String("module-dir", ".", "repository root")
	flag.Parse()
	reg := registry.New()
	if err := scalerdocs.Write(reg, *module, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := scalerdocs.WriteAuth(reg, *module, *auth); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", filepath.Clean(*out), "and", filepath.Clean(*auth))
}
