package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/checks"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/hooks"
)

// fakeNotifier records what carpd tells the service manager.
type fakeNotifier struct {
	mu       sync.Mutex
	states   []string
	err      error
	watchdog time.Duration
}

func (n *fakeNotifier) Notify(state string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.states = append(n.states, state)
	return n.err
}

func (n *fakeNotifier) Watchdog() time.Duration { return n.watchdog }

// TestNotifyFuncs: without a service manager the daemon tells nobody and
// pets no watchdog; with one, every state reaches it, a failure is logged
// at debug only, and the loop pets the watchdog at half its timeout.
func TestNotifyFuncs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if notify, every := notifyFuncs(nil, log); notify != nil || every != 0 {
		t.Errorf("no notifier: %v, %v; want nil, 0", notify != nil, every)
	}
	n := &fakeNotifier{watchdog: 3 * time.Second}
	notify, every := notifyFuncs(n, log)
	if every != 1500*time.Millisecond {
		t.Errorf("watchdog petted every %v, want 1.5s", every)
	}
	notify("READY=1\nSTATUS=1 vhid: 1 BACKUP")
	n.err = errors.New("no socket")
	notify("WATCHDOG=1")
	if got := strings.Join(n.states, "|"); got != "READY=1\nSTATUS=1 vhid: 1 BACKUP|WATCHDOG=1" {
		t.Errorf("told %q", got)
	}
	if l := logs.String(); strings.Count(l, "carpd: sd_notify") != 1 || !strings.Contains(l, "level=DEBUG") || !strings.Contains(l, "no socket") {
		t.Errorf("log %q, want one debug line for the failure", l)
	}
	if every := func() time.Duration { _, e := notifyFuncs(&fakeNotifier{}, log); return e }(); every != 0 {
		t.Errorf("no watchdog: petted every %v", every)
	}
}

// TestSystemd: outside systemd (no NOTIFY_SOCKET) there is no notifier.
func TestSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if n := Systemd(); n != nil {
		t.Errorf("Systemd() = %v without NOTIFY_SOCKET", n)
	}
	t.Setenv("NOTIFY_SOCKET", "/nonexistent/notify")
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", "")
	n := Systemd()
	if n == nil || n.Watchdog() != 4*time.Second {
		t.Fatalf("Systemd() = %v under systemd with WatchdogSec=4", n)
	}
	if err := n.Notify("READY=1"); err == nil {
		t.Error("Notify to a socket that does not exist succeeded")
	}
}

// TestRestartOnly: the reload policy names each setting a reload cannot
// put in force, and nothing when none changed.
func TestRestartOnly(t *testing.T) {
	old := &config.Config{Control: "/run/carpd/control", StateFile: "/var/lib/carpd/state", DSCP: 56, ManageAddresses: true}
	same := *old
	if ws := restartOnly(old, &same); len(ws) != 0 {
		t.Errorf("nothing changed: %q", ws)
	}
	cfg := *old
	cfg.Control, cfg.MetricsListen, cfg.DSCP, cfg.ManageAddresses = "/run/other", "127.0.0.1:9657", 4, false
	want := []string{
		"control changed (/run/carpd/control -> /run/other): it takes effect when carpd restarts",
		"metrics-listen changed ( -> 127.0.0.1:9657): it takes effect when carpd restarts",
		"dscp changed (56 -> 4): it takes effect when carpd restarts",
		"manage-addresses changed (true -> false): it takes effect when carpd restarts",
	}
	if ws := restartOnly(old, &cfg); strings.Join(ws, "\n") != strings.Join(want, "\n") {
		t.Errorf("restartOnly =\n%s\nwant\n%s", strings.Join(ws, "\n"), strings.Join(want, "\n"))
	}
}

// fakeDaemon is the daemon as a reload sees it.
type fakeDaemon struct {
	applied []*config.Config
	failed  int
	err     error
}

func (d *fakeDaemon) Reload(_ context.Context, cfg *config.Config) (api.ReloadResult, error) {
	if d.err != nil {
		return api.ReloadResult{}, d.err
	}
	d.applied = append(d.applied, cfg)
	return api.ReloadResult{}, nil
}

func (d *fakeDaemon) ReloadFailed() { d.failed++ }

// TestReloader: a file that cannot be read is refused (a bad request,
// counted as a failed reload, logged as an error naming who asked) and the
// running configuration stays; one that can is handed to the daemon, and
// what only a restart changes is a warning in the result and the log.
func TestReloader(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	runner, err := hooks.New(hooks.Options{Log: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	chk := checks.New(checks.Options{Log: log, Report: func(context.Context, checks.Result) {}})
	defer chk.Stop()
	start := &config.Config{Control: "/run/carpd/control", HookTimeout: time.Second}
	next, loadErr := start, error(nil)
	d := &fakeDaemon{}
	r := &reloader{load: func() (*config.Config, error) { return next, loadErr }, d: d, runner: runner, checks: chk, log: log, cfg: start}
	bg := context.Background()

	loadErr = errors.New("carpd.toml:3: unknown key \"vhdi\"")
	if _, err := r.reload(bg, "SIGHUP"); !errors.Is(err, daemon.ErrBadRequest) || !strings.Contains(err.Error(), "vhdi") {
		t.Errorf("a bad file: %v", err)
	}
	if d.failed != 1 || len(d.applied) != 0 || r.cfg != start {
		t.Errorf("a bad file: failed %d, applied %d, config kept %v", d.failed, len(d.applied), r.cfg == start)
	}
	if l := logs.String(); !strings.Contains(l, `level=ERROR msg="carpd: reload refused; the running configuration stays" by=SIGHUP`) {
		t.Errorf("log %q", l)
	}

	loadErr = nil
	next = &config.Config{Control: "/run/other", HookTimeout: time.Second}
	res, err := r.reload(bg, "control")
	if err != nil || len(d.applied) != 1 || d.applied[0] != next || r.cfg != next {
		t.Fatalf("a good file: %+v, %v", res, err)
	}
	want := "control changed (/run/carpd/control -> /run/other): it takes effect when carpd restarts"
	if len(res.Warnings) != 1 || res.Warnings[0] != want || !strings.Contains(logs.String(), "carpd: reload: "+want) {
		t.Errorf("warnings %q, log %q", res.Warnings, logs.String())
	}

	// The daemon refuses: its error, and the configuration stays.
	d.err = errors.New("vhid 1 on eth9: no such interface")
	if _, err := r.reload(bg, "control"); err == nil || r.cfg != next {
		t.Errorf("a refused reload: %v, config kept %v", err, r.cfg == next)
	}
}
