// Package checks runs carpd's health checks (keepalived's track_script,
// track_file, track_interface and friends, built in): each check on its own goroutine,
// every interval, with a timeout, turning up or down after rise successes
// or fall failures in a row. Only changes are reported. Commands run
// without a shell unless the check is a shell check, in their own process
// group, killed whole at the timeout.
package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// Result is a check's state, reported when it changes.
type Result struct {
	Name string
	Up   bool
	// Demotion is, for a file check without weight, the number in the
	// file (0..240) while failing.
	Demotion int
	Detail   string // why it failed: exit status, error, HTTP status
}

// Options are the runner's settings.
type Options struct {
	Log *slog.Logger
	// Report receives each change of a check's state; it may block, and
	// must return when ctx is done (the check is stopped: Update and
	// Stop wait for it).
	Report func(ctx context.Context, r Result)
	// Wrapper is prepended to exec and shell commands (carpd's
	// __hook-exec, which clears the ambient capabilities).
	Wrapper []string
}

// Runner runs the checks.
type Runner struct {
	o       Options
	mu      sync.Mutex
	running map[string]*running
}

type running struct {
	c      config.Check
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a runner with no check.
func New(o Options) *Runner {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Runner{o: o, running: map[string]*running{}}
}

// Update runs exactly checks: a check whose configuration did not change
// goes on as it is; a new or changed one starts (up, until it fails); one
// no longer configured stops.
func (r *Runner) Update(checks []config.Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]config.Check{}
	for _, c := range checks {
		want[c.Name] = c
	}
	for name, run := range r.running {
		if c, ok := want[name]; !ok || !c.Same(run.c) {
			run.cancel()
			<-run.done
			delete(r.running, name)
		}
	}
	for name, c := range want {
		if _, ok := r.running[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		run := &running{c: c, cancel: cancel, done: make(chan struct{})}
		r.running[name] = run
		go func() {
			defer close(run.done)
			r.loop(ctx, c)
		}()
	}
}

// Stop stops every check and waits for them.
func (r *Runner) Stop() { r.Update(nil) }

// loop runs one check until ctx is done.
func (r *Runner) loop(ctx context.Context, c config.Check) {
	up, streak := true, 0
	lastDemotion := 0
	missing := "" // what is wrong with an exec check's program, logged once
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ok, demotion, detail := r.probe(ctx, c)
		if ctx.Err() != nil {
			return
		}
		if m := programProblem(c); m != missing {
			// Once when it goes (or changes), not at every interval: the
			// check fails, and demotes, until the program is there.
			if missing = m; m != "" {
				r.o.Log.Error("carpd: check's program cannot run; the check fails until it can", "check", c.Name, "program", c.Argv[0], "err", m)
			}
		}
		changed := false
		switch {
		case ok == up:
			streak = 0
			if !up && demotion != lastDemotion {
				changed = true // a file check's number moved
			}
		default:
			streak++
			need := c.Fall
			if !up {
				need = c.Rise
			}
			if streak >= need {
				up, streak, changed = ok, 0, true
			}
		}
		if changed {
			lastDemotion = demotion
			log := r.o.Log.With("check", c.Name, "kind", c.Kind, "target", c.Target)
			if up {
				log.Info("carpd: check up")
			} else {
				log.Warn("carpd: check failing", "detail", detail)
			}
			r.o.Report(ctx, Result{Name: c.Name, Up: up, Demotion: demotion, Detail: detail})
		}
		t.Reset(max(0, c.Interval-time.Since(start)))
	}
}

// probe runs the check once with its timeout.
func (r *Runner) probe(ctx context.Context, c config.Check) (ok bool, demotion int, detail string) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	switch c.Kind {
	case config.CheckExec:
		if m := programProblem(c); m != "" {
			return false, 0, c.Argv[0] + ": " + m
		}
		return r.command(ctx, c, c.Argv)
	case config.CheckShell:
		return r.command(ctx, c, []string{"/bin/sh", "-c", c.Target})
	case config.CheckTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Target)
		if err != nil {
			return false, 0, err.Error()
		}
		conn.Close()
		return true, 0, ""
	case config.CheckHTTP:
		return httpCheck(ctx, c)
	case config.CheckFile:
		return fileCheck(c)
	case config.CheckLink:
		return linkCheck(c.Target)
	}
	return false, 0, "unknown kind " + c.Kind
}

// command runs argv (through the wrapper) in its own process group,
// killed whole at the timeout; exit 0 is up.
func (r *Runner) command(ctx context.Context, c config.Check, argv []string) (bool, int, string) {
	argv = append(append([]string(nil), r.o.Wrapper...), argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "CARP_CHECK=" + c.Name}
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 512}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 500 * time.Millisecond
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, 0, ""
	case ctx.Err() != nil:
		return false, 0, fmt.Sprintf("killed at its timeout (%v)", c.Timeout)
	case errors.As(err, &ee):
		msg := fmt.Sprintf("exit status %d", ee.ExitCode())
		if s := strings.TrimSpace(stderr.String()); s != "" {
			msg += ": " + s
		}
		return false, 0, msg
	}
	return false, 0, err.Error()
}

// programProblem says why the program of exec check c cannot run (it
// does not exist, is not a regular file, has no execute bit), or "".
// Without it the failure would read as the exit status of carpd's
// wrapper.
func programProblem(c config.Check) string {
	if c.Kind != config.CheckExec || len(c.Argv) == 0 {
		return ""
	}
	fi, err := os.Stat(c.Argv[0])
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err.Error()
		}
		return err.Error()
	case !fi.Mode().IsRegular():
		return "not a regular file"
	case fi.Mode().Perm()&0o111 == 0:
		return "not executable"
	}
	return ""
}

// limited passes on the first n bytes written.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

var httpClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil, // never through a proxy
		DisableKeepAlives: true,
		// A health endpoint's certificate is usually the host's own.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a health check, not a client
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func httpCheck(ctx context.Context, c config.Check) (bool, int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Target, nil)
	if err != nil {
		return false, 0, err.Error()
	}
	req.Header.Set("User-Agent", "carpd-check/1")
	resp, err := httpClient.Do(req)
	if err != nil {
		return false, 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != c.ExpectStatus {
		return false, 0, fmt.Sprintf("HTTP %d, want %d", resp.StatusCode, c.ExpectStatus)
	}
	if c.ExpectBody != "" && !bytes.Contains(body, []byte(c.ExpectBody)) {
		return false, 0, fmt.Sprintf("the body lacks %q", c.ExpectBody)
	}
	return true, 0, ""
}

// linkCheck is up while the interface is administratively up and running
// (has carrier), as keepalived's track_interface and carp(4)'s own
// interface.
func linkCheck(name string) (bool, int, string) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return false, 0, fmt.Sprintf("interface %s: %v", name, err)
	}
	return linkState(name, ifi.Flags)
}

// linkState says whether flags are those of an interface up and running.
func linkState(name string, flags net.Flags) (bool, int, string) {
	switch {
	case flags&net.FlagUp == 0:
		return false, 0, name + " is down"
	case flags&net.FlagRunning == 0:
		return false, 0, name + " has no carrier"
	}
	return true, 0, ""
}

// fileCheck reads a number from the file: 0 is up; otherwise the check
// fails and, without a weight, the number (up to 240) is the demotion.
// A file that cannot be read or holds no number fails with the largest
// demotion.
func fileCheck(c config.Check) (bool, int, string) {
	data, err := os.ReadFile(c.Target)
	if err != nil {
		return false, 240, err.Error()
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return false, 240, fmt.Sprintf("%s holds no number", c.Target)
	}
	if n == 0 {
		return true, 0, ""
	}
	return false, min(max(n, 0), 240), fmt.Sprintf("%s holds %d", c.Target, n)
}
