package result

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a result was measured.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpuModel"`
	MemoryBytes int64  `json:"memoryBytes"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GoVersion   string `json:"goVersion"`
	// LoadAvg1 is the 1-minute load average when the run started, LoadAvg1End when it ended (0: not recorded).
	LoadAvg1    float64 `json:"loadAvg1"`
	LoadAvg1End float64 `json:"loadAvg1End,omitempty"`
}

// ReadMachine reads /proc (cpuinfo, meminfo, loadavg); fields it cannot read stay zero.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	procLines("/proc/cpuinfo", func(k, v string) bool {
		if k == "model name" {
			m.CPUModel = v
			return false
		}
		return true
	})
	procLines("/proc/meminfo", func(k, v string) bool {
		if k == "MemTotal" {
			if kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64); err == nil {
				m.MemoryBytes = kb * 1024
			}
			return false
		}
		return true
	})
	m.LoadAvg1 = LoadAvg1()
	return m
}

// LoadAvg1 is the 1-minute load average from /proc/loadavg (0 when it cannot be read).
func LoadAvg1() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// procLines calls fn with each "key: value" line of path until fn returns false.
func procLines(path string, fn func(k, v string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && !fn(strings.TrimSpace(k), strings.TrimSpace(v)) {
			return
		}
	}
}

// Version is the Tidal version: linked (a -ldflags -X value, passed in), else `git describe --always --dirty`
// in the working directory, else the binary's VCS revision, else "unknown".
func Version(ctx context.Context, linked string) string {
	if linked != "" {
		return linked
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--tags").Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return v
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
