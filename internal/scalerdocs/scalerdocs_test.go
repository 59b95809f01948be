package scalerdocs

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers/registry"
)

const moduleDir = "../.."

// TestPagesAreCurrent fails when docs/scalers differs from what the registry renders: a scaler, its package
// documentation or a struct tag changed without `make docs`.
func TestPagesAreCurrent(t *testing.T) {
	pages, err := Render(registry.New(), moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(moduleDir, "docs", "scalers")
	var stale []string
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			stale = append(stale, name)
		}
	}
	onDisk, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range onDisk {
		if _, ok := pages[filepath.Base(f)]; !ok {
			stale = append(stale, filepath.Base(f)+" (no such trigger type)")
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Fatalf("docs/scalers is stale (run make docs): %s", strings.Join(stale, ", "))
	}
}

// TestPageShowsTheTags checks one page against the tags it comes from: redis's listLength is a target with a
// default and a minimum, its password may come from a TriggerAuthentication, and the package doc is there.
func TestPageShowsTheTags(t *testing.T) {
	pages, err := Render(registry.New(), moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	page := string(pages["redis.md"])
	for _, want := range []string{
		"# `redis`",
		"| `listLength` | triggerMetadata | integer | default `5` | ≥ 1; metric target (≥ 0.001) |",
		"| `password` | triggerMetadata, authParams | string | optional |",
		"| `listName` | triggerMetadata | string | **required** |",
		"| `address` (or `addresses`) |",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("redis.md lacks %q", want)
		}
	}
	if !strings.Contains(string(pages["README.md"]), "[`redis`](redis.md)") {
		t.Errorf("the index does not link redis.md")
	}
	if n := len(pages); n != len(registry.New().Types())+1 {
		t.Errorf("want one page per type plus the index, got %d pages", n)
	}
}

// TestAuthPageIsCurrent fails when docs/auth.md differs from what the API types, the not-supported table and the
// scalers render (run make docs), and checks the page says what the table refuses.
func TestAuthPageIsCurrent(t *testing.T) {
	want, err := RenderAuth(registry.New(), moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(moduleDir, "docs", "auth.md"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/auth.md is stale (run make docs)")
	}
	page := string(want)
	for _, line := range []string{
		"| `spec.secretTargetRef` | read |",
		"| `spec.hashiCorpVault` | read |",
		"| `spec.azureKeyVault` | read |",
		"| `spec.gcpSecretManager` | read |",
		"| `spec.awsSecretManager` | read |",
		"| `spec.podIdentity` | read |",
		"| [`redis`](scalers/redis.md) | `address`, `host`, `port`, `username`, `password`,",
	} {
		if !strings.Contains(page, line) {
			t.Errorf("docs/auth.md lacks %q", line)
		}
	}
}
