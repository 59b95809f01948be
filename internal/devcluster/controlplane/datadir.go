package controlplane

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// openComponentLog resolves Options.ComponentLog to a writer.
func (c *Cluster) openComponentLog(spec string) (io.Writer, error) {
	switch spec {
	case ComponentLogStderr:
		return os.Stderr, nil
	case ComponentLogDiscard:
		return io.Discard, nil
	case "":
		spec = filepath.Join(c.DataDir, "components.log")
	}
	f, err := os.OpenFile(spec, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("component-log: %w", err)
	}
	c.logFile = f
	return f, nil
}

// prepareDataDir returns the directory to use and whether Stop removes it.
func prepareDataDir(dir string) (string, bool, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tidal-dev-")
		if err != nil {
			return "", false, fmt.Errorf("data-dir: %w", err)
		}
		return tmp, true, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("data-dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", false, fmt.Errorf("data-dir %q: %w", dir, err)
	}
	return abs, false, nil
}

// checkWritableDir reports whether dir is, or can be created as, a directory we can write to.
func checkWritableDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%q: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("%q: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("%q: not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".tidal-dev-probe-")
	if err != nil {
		return fmt.Errorf("%q: not writable: %w", dir, err)
	}
	name := probe.Name()
	_ = probe.Close()
	return os.Remove(name)
}
