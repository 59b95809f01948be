// Package containerlog keeps container logs for virtual-node backends: one file per container instance, one line
// per output line, "<RFC3339Nano> <stdout|stderr> <text>" as the CRI log format, read back filtered (tail, since,
// limit, timestamps) and followed until the instance ends.
package containerlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// File is the log of one container instance (one start). Use Create.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
	done chan struct{} // closed once the instance exited and its output was copied
	now  func() time.Time
}

// Create creates (truncates) the log file at path; now stamps lines.
func Create(path string, now func() time.Time) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file %q: %w", path, err)
	}
	return &File{path: path, f: f, done: make(chan struct{}), now: now}, nil
}

// CopyFrom copies r line by line into the file, tagged with stream ("stdout" or "stderr"), until r ends.
func (l *File) CopyFrom(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			l.mu.Lock()
			_, _ = fmt.Fprintf(l.f, "%s %s %s\n", l.now().UTC().Format(time.RFC3339Nano), stream, line)
			l.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Finish closes the file and marks the instance done (followers stop). Call once, after every CopyFrom returned.
func (l *File) Finish() {
	l.mu.Lock()
	_ = l.f.Close()
	l.mu.Unlock()
	close(l.done)
}

// logLine is one parsed log line.
type logLine struct {
	ts   time.Time
	raw  string // "<ts> <stream> <text>"
	text string
}

func parseLine(s string) (logLine, bool) {
	i := indexByte(s, ' ')
	if i < 0 {
		return logLine{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, s[:i])
	if err != nil {
		return logLine{}, false
	}
	rest := s[i+1:]
	j := indexByte(rest, ' ')
	if j < 0 {
		return logLine{ts: ts, raw: s}, true
	}
	return logLine{ts: ts, raw: s, text: rest[j+1:]}, true
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func (ll logLine) format(timestamps bool) string {
	if timestamps {
		return ll.ts.Format(time.RFC3339Nano) + " " + ll.text + "\n"
	}
	return ll.text + "\n"
}

// ReadInstance reads the log of a container's current instance, or with opts.Previous the one before it: the
// kubelet API's containerLogs for every backend that keeps its logs in Files. A container with no log yet reads
// as empty; no previous instance is backend.ErrNotFound.
func ReadInstance(ctx context.Context, pod backend.Key, container string, current, previous *File, opts backend.LogOptions) (io.ReadCloser, error) {
	lf := current
	if opts.Previous {
		lf = previous
	}
	if lf == nil {
		if opts.Previous {
			return nil, fmt.Errorf("pod %s container %q: no previous instance: %w", pod, container, backend.ErrNotFound)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return Read(ctx, lf, opts)
}

// Read returns the log of lf filtered by opts. With Follow it keeps streaming new lines until the instance is
// done or ctx ends.
func Read(ctx context.Context, lf *File, opts backend.LogOptions) (io.ReadCloser, error) {
	f, err := os.Open(lf.path)
	if err != nil {
		return nil, fmt.Errorf("log file %q: %w", lf.path, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		err := streamLogs(ctx, f, lf.done, opts, pw)
		_ = pw.CloseWithError(err)
	}()
	return pr, nil
}

var errLimit = errors.New("limit reached")

func streamLogs(ctx context.Context, f *os.File, done <-chan struct{}, opts backend.LogOptions, w io.Writer) error {
	br := bufio.NewReader(f)
	var lines []logLine
	// Read what is there first, applying tail.
	partial := ""
	readAvailable := func() ([]logLine, error) {
		var out []logLine
		for {
			s, err := br.ReadString('\n')
			if err == io.EOF {
				partial += s
				return out, nil
			}
			if err != nil {
				return out, err
			}
			s = partial + s
			partial = ""
			if ll, ok := parseLine(s[:len(s)-1]); ok && (opts.SinceTime.IsZero() || !ll.ts.Before(opts.SinceTime)) {
				out = append(out, ll)
			}
		}
	}
	lines, err := readAvailable()
	if err != nil {
		return err
	}
	if opts.Tail > 0 && len(lines) > opts.Tail {
		lines = lines[len(lines)-opts.Tail:]
	}
	written := 0
	emit := func(ls []logLine) error {
		for _, ll := range ls {
			s := ll.format(opts.Timestamps)
			if opts.LimitBytes > 0 && written+len(s) > opts.LimitBytes {
				s = s[:opts.LimitBytes-written]
				_, _ = io.WriteString(w, s)
				return errLimit
			}
			if _, err := io.WriteString(w, s); err != nil {
				return err
			}
			written += len(s)
		}
		return nil
	}
	if err := emit(lines); err != nil {
		if errors.Is(err, errLimit) {
			return nil
		}
		return err
	}
	if !opts.Follow {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		finished := false
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			finished = true
		case <-tick.C:
		}
		more, err := readAvailable()
		if err != nil {
			return err
		}
		if err := emit(more); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
		if finished {
			return nil
		}
	}
}
