// Command gen writes docs/scalers/ (make docs): one page per trigger type and an index, from the registry.
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
	module := flag.String("module-dir", ".", "repository root")
	flag.Parse()
	if err := scalerdocs.Write(registry.New(), *module, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", filepath.Clean(*out))
}
