package checks

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
)

func check(kind, target string) config.Check {
	return config.Check{Name: "t", Kind: kind, Target: target, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond,
		Rise: 1, Fall: 1, ExpectStatus: 200, Weight: 240}
}

func TestProbe(t *testing.T) {
	r := New(Options{})
	dir := t.TempDir()
	healthy := atomic.Bool{}
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("all good"))
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	ln.Close() // now closed: connections refused
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	file := filepath.Join(dir, "weight")
	os.WriteFile(file, []byte("0\n"), 0o644)
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("17\n"), 0o644)
	body := check(config.CheckHTTP, srv.URL)
	body.ExpectBody = "good"
	wrongBody := check(config.CheckHTTP, srv.URL)
	wrongBody.ExpectBody = "great"
	for _, tc := range []struct {
		name     string
		c        config.Check
		ok       bool
		demotion int
		detail   string
	}{
		{"exec ok", config.Check{Kind: config.CheckExec, Argv: []string{"/bin/true"}, Timeout: time.Second}, true, 0, ""},
		{"exec fails", config.Check{Kind: config.CheckExec, Argv: []string{"/bin/sh", "-c", "echo broken >&2; exit 3"}, Timeout: time.Second}, false, 0, "exit status 3: broken"},
		{"exec hangs", config.Check{Kind: config.CheckExec, Argv: []string{"/bin/sleep", "30"}, Timeout: 200 * time.Millisecond}, false, 0, "killed at its timeout"},
		{"shell", config.Check{Kind: config.CheckShell, Target: "test 1 = 1 && exit 0", Timeout: time.Second}, true, 0, ""},
		{"tcp open", check(config.CheckTCP, ln.Addr().String()), true, 0, ""},
		{"tcp closed", check(config.CheckTCP, open), false, 0, "connection refused"},
		{"http", check(config.CheckHTTP, srv.URL), true, 0, ""},
		{"http body", body, true, 0, ""},
		{"http wrong body", wrongBody, false, 0, `the body lacks "great"`},
		{"file 0", check(config.CheckFile, file), true, 0, ""},
		{"file 17", check(config.CheckFile, bad), false, 17, "holds 17"},
		{"file missing", check(config.CheckFile, filepath.Join(dir, "none")), false, 240, "no such file"},
	} {
		start := time.Now()
		ok, dem, detail := r.probe(context.Background(), tc.c)
		if ok != tc.ok || dem != tc.demotion || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: %v %d %q, want %v %d %q", tc.name, ok, dem, detail, tc.ok, tc.demotion, tc.detail)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s took %v", tc.name, took)
		}
	}
	healthy.Store(false)
	if ok, _, detail := r.probe(context.Background(), check(config.CheckHTTP, srv.URL)); ok || detail != "HTTP 503, want 200" {
		t.Errorf("http 503: %v %q", ok, detail)
	}
}

// TestRiseFall: a check fails after fall failures and is up again after
// rise successes; only the changes are reported.
func TestRiseFall(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "w")
	os.WriteFile(file, []byte("0"), 0o644)
	results := make(chan Result, 10)
	r := New(Options{Report: func(_ context.Context, res Result) { results <- res }})
	c := check(config.CheckFile, file)
	c.Fall, c.Rise = 3, 2
	r.Update([]config.Check{c})
	defer r.Stop()
	time.Sleep(200 * time.Millisecond)
	select {
	case res := <-results:
		t.Fatalf("reported while up: %+v", res)
	default:
	}
	os.WriteFile(file, []byte("5"), 0o644)
	start := time.Now()
	res := <-results
	if res.Up || res.Demotion != 5 || time.Since(start) < 100*time.Millisecond {
		t.Errorf("failing: %+v after %v (fall 3 x 50 ms)", res, time.Since(start))
	}
	os.WriteFile(file, []byte("9"), 0o644)
	if res = <-results; res.Up || res.Demotion != 9 {
		t.Errorf("the number moved: %+v", res)
	}
	os.WriteFile(file, []byte("0"), 0o644)
	if res = <-results; !res.Up {
		t.Errorf("up again: %+v", res)
	}
	// Update with the same check: it goes on; without it: it stops.
	r.Update([]config.Check{c})
	r.Update(nil)
	os.WriteFile(file, []byte("7"), 0o644)
	time.Sleep(300 * time.Millisecond)
	select {
	case res := <-results:
		t.Errorf("a stopped check reported %+v", res)
	default:
	}
}

// TestMissingProgram: an exec check whose program does not exist fails
// (its demotion stays: a failing check is failing), says why in its
// detail, and logs one error, not one per interval; once the program is
// there it is up again, and a second loss is logged again.
func TestMissingProgram(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "check-db")
	var logs lab.Buffer
	results := make(chan Result, 10)
	r := New(Options{
		Log:    slog.New(slog.NewTextHandler(&logs, nil)),
		Report: func(_ context.Context, res Result) { results <- res },
	})
	c := check(config.CheckExec, prog)
	c.Argv, c.Interval = []string{prog}, 10*time.Millisecond
	r.Update([]config.Check{c})
	defer r.Stop()
	res := <-results
	if res.Up || !strings.Contains(res.Detail, prog+": does not exist") {
		t.Errorf("first result %+v, want failing with %q", res, prog+": does not exist")
	}
	time.Sleep(300 * time.Millisecond) // 30 intervals
	const msg = "check's program cannot run"
	if n := strings.Count(logs.String(), msg); n != 1 {
		t.Errorf("%d log lines with %q over 30 intervals, want 1:\n%s", n, msg, logs.String())
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if res := <-results; !res.Up {
		t.Errorf("with the program: %+v, want up", res)
	}
	os.Remove(prog)
	if res := <-results; res.Up {
		t.Errorf("without it again: %+v, want failing", res)
	}
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(logs.String(), msg); n != 2 {
		t.Errorf("%d log lines with %q after the second loss, want 2:\n%s", n, msg, logs.String())
	}
}

// TestStopWhileReporting: a check whose Report blocks (the daemon's loop
// busy, or gone) is still stopped: Report gets the check's context, which
// Stop cancels, and Stop does not wait forever.
func TestStopWhileReporting(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "w")
	if err := os.WriteFile(file, []byte("5"), 0o644); err != nil {
		t.Fatal(err)
	}
	reporting := make(chan struct{})
	r := New(Options{Report: func(ctx context.Context, _ Result) {
		close(reporting)
		<-ctx.Done() // a Report that honours its context, and nothing else
	}})
	c := check(config.CheckFile, file)
	c.Fall = 1
	r.Update([]config.Check{c})
	select {
	case <-reporting:
	case <-time.After(5 * time.Second):
		t.Fatal("no report of the failing check")
	}
	stopped := make(chan struct{})
	go func() {
		r.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits for a blocked Report")
	}
}
