package samples_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/tidalscale/tidal/"

// TestOneWayDataFlow keeps the operator and the metrics adapter apart: data flows scalers → poller → (stream) →
// operator, and the two sides meet only in this contract package. Only cmd/ (and tests) may put both in one
// binary.
func TestOneWayDataFlow(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list packages with")
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}",
		"./autoscaler/...", "./metricsadapter/...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		from, mustNotImport string
	}{
		{module + "metricsadapter", module + "autoscaler/operator"},
		{module + "autoscaler/operator", module + "metricsadapter"},
		{module + "autoscaler/samples", module + "autoscaler/operator"},
		{module + "autoscaler/samples", module + "metricsadapter"},
		{module + "autoscaler/triggers", module + "autoscaler/operator"},
		{module + "autoscaler/triggers", module + "metricsadapter"},
		{module + "autoscaler/scaletarget", module + "autoscaler/operator"},
		{module + "autoscaler/scaletarget", module + "metricsadapter"},
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg, deps := fields[0], fields[1:]
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			checked++
			for _, d := range deps {
				if under(d, r.mustNotImport) {
					t.Errorf("%s imports %s (directly or through another package): the operator and the metrics "+
						"adapter may share only %ssamples, %striggers and %sscaletarget", pkg, d, module+"autoscaler/", module+"autoscaler/", module+"autoscaler/")
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d package/rule pairs checked: the package list looks wrong:\n%s", checked, out)
	}
}

// under reports whether pkg is path or below it.
func under(pkg, path string) bool {
	return pkg == path || strings.HasPrefix(pkg, path+"/")
}
