package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// envDevBinary names the tidal-dev binary to run (the same variable the devcluster test helper reads).
const envDevBinary = "TIDAL_DEV_BIN"

func newDevCmd(s streams) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Local development helpers"}
	dev.AddCommand(&cobra.Command{
		Use:   "up [tidal-dev up flags]",
		Short: "Start the embedded dev cluster (alias for `tidal-dev up`; every flag is passed on)",
		Long: "Runs `tidal-dev up` with the given flags until interrupted. tidal-dev is found in $" + envDevBinary +
			", next to tidalctl, or on $PATH.",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := findDevBinary()
			if err != nil {
				return err
			}
			c := exec.CommandContext(cmd.Context(), bin, append([]string{"up"}, args...)...)
			c.Stdin, c.Stdout, c.Stderr = s.in, s.out, s.err
			// Interrupting tidalctl stops the cluster cleanly: tidal-dev stops every component on SIGTERM.
			c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
			c.WaitDelay = 90 * time.Second
			err = c.Run()
			var exit *exec.ExitError
			switch {
			case err == nil:
				return nil
			case cmd.Context().Err() != nil && c.ProcessState != nil && c.ProcessState.ExitCode() == 0:
				return nil // stopped cleanly by our SIGTERM (Wait reports the cancelled context)
			case cmd.Context().Err() != nil:
				return fmt.Errorf("tidal-dev up did not stop cleanly after the interrupt: %w", err)
			case errors.As(err, &exit):
				return fmt.Errorf("tidal-dev up exited with code %d", exit.ExitCode())
			}
			return fmt.Errorf("run %s: %w", bin, err)
		},
	})
	return dev
}

func findDevBinary() (string, error) {
	if p := os.Getenv(envDevBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", envDevBinary, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "tidal-dev")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("tidal-dev")
	if err != nil {
		return "", fmt.Errorf("tidal-dev not found next to tidalctl or on $PATH (set $%s or run `make build`)", envDevBinary)
	}
	return p, nil
}
