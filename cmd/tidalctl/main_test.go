package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/devcluster"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// result is one tidalctl invocation.
type result struct {
	code        int
	stdout      string
	stderr      string
	commandLine string
}

// tidalctl runs a command line in-process with a fixed clock.
func tidalctl(t *testing.T, now time.Time, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, streams{in: strings.NewReader(""), out: &out, err: &errOut, now: func() time.Time { return now }})
	return result{code: code, stdout: out.String(), stderr: errOut.String(), commandLine: strings.Join(args, " ")}
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("tidalctl %s: exit %d\nstderr: %s", r.commandLine, r.code, r.stderr)
	}
	return r
}

func golden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (check, then run with -update):\n--- want\n%s--- got\n%s", path, want, got)
	}
}

func TestVersion(t *testing.T) {
	r := tidalctl(t, time.Now(), "version").ok(t)
	if !strings.HasPrefix(r.stdout, "tidalctl ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version output %q", r.stdout)
	}
	r = tidalctl(t, time.Now(), "version", "-o", "json").ok(t)
	if !strings.Contains(r.stdout, `"goVersion": "go1.`) {
		t.Errorf("version -o json output %q", r.stdout)
	}
}

func TestConvertCommand(t *testing.T) {
	r := tidalctl(t, time.Now(), "convert", "-f", "convert/testdata/warn/kubectl-get.yaml").ok(t)
	if strings.Count(r.stdout, "apiVersion: tidal.dev/v1alpha1") != 2 {
		t.Errorf("want 2 converted objects:\n%s", r.stdout)
	}
	if n := strings.Count(r.stderr, "warning: "); n != 2 {
		t.Errorf("want 2 warnings on stderr, got %d:\n%s", n, r.stderr)
	}
	r = tidalctl(t, time.Now(), "convert", "-f", "convert/testdata/warn/kubectl-get.yaml", "--strict")
	if r.code != 1 || !strings.Contains(r.stderr, "2 warnings with --strict") || r.stdout != "" {
		t.Errorf("--strict: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = tidalctl(t, time.Now(), "convert", "-f", "convert/testdata/keda/external.yaml", "-o", "json").ok(t)
	if !strings.Contains(r.stdout, `"kind": "List"`) || !strings.Contains(r.stdout, `"apiVersion": "tidal.dev/v1alpha1"`) {
		t.Errorf("convert -o json output:\n%s", r.stdout)
	}
}

// TestBadInvocations: every mistake is one line on stderr and a non-zero exit code.
func TestBadInvocations(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	if err := os.WriteFile(bad, []byte("apiVersion: keda.sh/v1alpha1\nkind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{name: "unknown flag", args: []string{"status", "--bogus"}, code: 2, want: "unknown flag: --bogus"},
		{name: "unknown command", args: []string{"scale"}, code: 2, want: `unknown command "scale"`},
		{name: "bad output", args: []string{"status", "-o", "xml"}, code: 2, want: `--output: want table, json or yaml, got "xml"`},
		{name: "explain without name", args: []string{"explain"}, code: 2, want: "want exactly one ScaledObject name, got 0"},
		{name: "explain two names", args: []string{"explain", "a", "b"}, code: 2, want: "got 2 arguments"},
		{name: "convert without file", args: []string{"convert"}, code: 2, want: "-f is required"},
		{name: "convert bad direction", args: []string{"convert", "-f", bad, "--to", "argo"}, code: 2, want: `--to: want tidal or keda, got "argo"`},
		{name: "convert missing file", args: []string{"convert", "-f", dir + "/missing.yaml"}, code: 1, want: "missing.yaml: no such file or directory"},
		{name: "convert broken YAML", args: []string{"convert", "-f", bad}, code: 1, want: "bad.yaml: document 1: invalid YAML"},
		{name: "missing kubeconfig", args: []string{"--kubeconfig", dir + "/none", "status"}, code: 1, want: "kubeconfig"},
		{name: "all namespaces with namespace", args: []string{"status", "-A", "-n", "x"}, code: 2, want: "mutually exclusive"},
		{name: "timeline without name", args: []string{"status", "--timeline"}, code: 2, want: "--timeline: want exactly one ScaledObject name"},
		{name: "timeline two names", args: []string{"status", "--timeline", "a", "b"}, code: 2, want: "--timeline: want exactly one ScaledObject name"},
		{name: "dev binary missing", args: []string{"dev", "up"}, env: map[string]string{envDevBinary: dir + "/no-tidal-dev"}, code: 1, want: "$TIDAL_DEV_BIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r := tidalctl(t, time.Now(), tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "tidalctl: ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want a line with %q", r.stderr, tc.want)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
		})
	}
}
