package version

import (
	"strings"
	"testing"
)

func TestStringUsesLinkedVersion(t *testing.T) {
	oldV, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })
	Version, Commit = "v1.2.3", "abc1234"
	if got, want := String("operator"), "tidal-operator version v1.2.3 commit abc1234"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	Version, Commit = "", ""
	if got := String("operator"); !strings.HasPrefix(got, "tidal-operator version ") || !strings.Contains(got, " commit ") {
		t.Errorf("String without ldflags = %q", got)
	}
}
