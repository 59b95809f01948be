package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestStringNamesBinaryVersionAndCommit(t *testing.T) {
	got := String("tidal-operator")
	for _, want := range []string{"tidal-operator dev", "commit unknown", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
}
