// Package service is carpd the service: Run assembles, around the event
// loop (internal/daemon), the hooks, the health checks, the control
// socket, the metrics listener, the reloads (SIGHUP, `carpctl reload`,
// and which settings only a restart changes) and the service manager's
// notifications, and runs them until its context is done. The command
// line (ParseFlags), `carpd --check-config` and `--check` (Check) and the
// root hook helper (RunHookHelper) are here too; cmd/carpd only wires
// them together.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/checks"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/control"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/hooks"
	"github.com/carpd/carpd/internal/host"
	"github.com/carpd/carpd/internal/logging"
	"github.com/carpd/carpd/internal/metrics"
)

// Exit statuses (carpd(8), EXIT STATUS). The unit's
// RestartPreventExitStatus names ExitUsage and ExitConfig: restarting
// does not mend them. A panic and the watchdog's SIGABRT exit 2, and must
// be restarted.
const (
	ExitOK   = 0
	ExitFail = 1 // the daemon failed while running
	// ExitProblems: --check-config or --check found problems, each
	// printed as file:line: message.
	ExitProblems = 2
	ExitUsage    = 64 // sysexits' EX_USAGE: a bad command line
	ExitConfig   = 78 // sysexits' EX_CONFIG: the configuration is refused at start; nothing was started
)

// Options are what Run is given besides the configuration.
type Options struct {
	// Reload reads the configuration afresh (the same file and flags:
	// Flags.Load), for SIGHUP and `carpctl reload`.
	Reload func() (*config.Config, error)
	// Stderr receives the log (under systemd, the journal).
	Stderr io.Writer
	// Notifier is the service manager (Systemd()); nil: none.
	Notifier Notifier
	// Clock is the event loop's; nil: host.Clock, the timerfd's.
	Clock daemon.Clock
	// Open opens the host's adapters for cfg and returns what closes
	// them; nil: host.Open, this network namespace's (a test's fakes
	// otherwise).
	Open func(cfg *config.Config) (*daemon.Host, func(), error)
}

// openHost is host.Open: the Linux adapters, logging through log.
func openHost(cfg *config.Config, log *slog.Logger) (*daemon.Host, func(), error) {
	h, err := host.Open(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return &h.Host, func() { h.Close() }, nil
}

// Run runs carpd with cfg (checked: Validate) until ctx is done, then
// bows out, and returns carpd's exit status.
func Run(ctx context.Context, cfg *config.Config, o Options) int {
	stderr := o.Stderr
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err) // config checked it
		return ExitConfig
	}
	// Under systemd, stderr is the journal: priorities, no time=.
	log := slog.New(logging.NewHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A hook reports through the daemon, which is made later.
	var d *daemon.Daemon
	runner, err := newHooks(cfg, log, func(e api.Event) { d.HookDone(e) })
	if err != nil {
		PrintErrors(stderr, err)
		return ExitConfig
	}
	registerHooks(runner, log)
	notify, watchdog := notifyFuncs(o.Notifier, log)
	open := o.Open
	if open == nil {
		open = func(cfg *config.Config) (*daemon.Host, func(), error) { return openHost(cfg, log) }
	}
	h, closeHost, err := open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return ExitFail
	}
	defer closeHost()
	h.Hooks = runner
	clock := o.Clock
	if clock == nil {
		clock = host.Clock{Log: log}
	}
	d, err = daemon.New(cfg, h, daemon.Options{
		Log: log, Level: level, StateFile: cfg.StateFile, UnmanagedAddresses: !cfg.ManageAddresses,
		Notify: notify, Watchdog: watchdog, Clock: clock,
	})
	if err != nil {
		PrintErrors(stderr, err)
		return ExitConfig
	}
	self, err := os.Executable()
	if err != nil {
		// The checks run through it (hooks.ExecCommand).
		fmt.Fprintf(stderr, "carpd: finding carpd's own executable, which runs the checks: %v\n", err)
		return ExitFail
	}
	chk := checks.New(checks.Options{Log: log, Wrapper: []string{self, hooks.ExecCommand},
		Report: func(ctx context.Context, r checks.Result) { d.CheckChanged(ctx, r.Name, r.Up, r.Demotion, r.Detail) }})
	chk.Update(cfg.Checks)
	defer chk.Stop()
	r := &reloader{load: o.Reload, d: d, runner: runner, checks: chk, log: log, cfg: cfg}
	defer serveControl(cfg, d, r, log)()
	ucarpSignals(ctx, d, log)
	defer onHUP(r)()
	if cfg.MetricsListen != "" {
		ms, err := metrics.Listen(cfg.MetricsListen)
		if err != nil {
			fmt.Fprintf(stderr, "carpd: metrics-listen %s: %v\n", cfg.MetricsListen, err)
			return ExitFail
		}
		defer ms.Close()
		go func() {
			if err := ms.Serve(d, log); err != nil {
				log.Error("carpd: metrics listener failed", "err", err)
			}
		}()
	}
	runner.Start()
	defer func() {
		// The down scripts of the bow-out run to their end.
		wctx, cancel := context.WithTimeout(context.Background(), cfg.HookTimeout+time.Second)
		defer cancel()
		if err := runner.Wait(wctx); err != nil {
			log.Warn("carpd: hooks still running at exit", "err", err)
		}
	}()
	go abortOnSecondSignal(ctx, d)
	if err := d.Run(ctx); err != nil {
		log.Error("carpd: stopped", "err", err)
		if errors.Is(err, daemon.ErrStateFile) {
			// A restart would meet the same file.
			return ExitConfig
		}
		return ExitFail
	}
	return ExitOK
}

// serveControl serves the control socket and returns what closes it.
// Without its control socket carpd still guards the addresses: the
// failure is logged, not fatal.
func serveControl(cfg *config.Config, d *daemon.Daemon, r *reloader, log *slog.Logger) (closeIt func()) {
	ctl, err := control.Listen(cfg.Control, cfg.ControlGroup, log)
	if err != nil {
		log.Error("carpd: no control socket; carpctl will not reach this carpd", "err", err)
		return func() {}
	}
	go func() {
		if err := ctl.Serve(controlled{d, r}); err != nil {
			log.Error("carpd: control socket failed", "err", err)
		}
	}()
	return func() { ctl.Close() }
}

// onHUP reloads on each SIGHUP until the returned stop is called.
func onHUP(r *reloader) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_, _ = r.reload(context.Background(), "SIGHUP") // reload logs a refusal
		}
	}()
	return func() { signal.Stop(hup) }
}

// abortOnSecondSignal: a second SIGINT or SIGTERM while masters bow out
// releases the addresses at once instead of waiting for the new masters.
func abortOnSecondSignal(ctx context.Context, d *daemon.Daemon) {
	<-ctx.Done()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	<-again
	d.Abort()
}

// newHooks returns the hook runner of cfg (with no script when no vhid
// has hooks: a reload may add some).
func newHooks(cfg *config.Config, log *slog.Logger, report func(api.Event)) (*hooks.Runner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return hooks.New(hooks.Options{
		Timeout: cfg.HookTimeout, User: cfg.HookUser, Log: log, Report: report,
		Wrapper: []string{self, hooks.ExecCommand},
	}, hookScripts(cfg))
}

// registerHooks tells the root hook helper (when hooks run there) that
// the configuration file as it is now is in force, so that its root hooks
// stay runnable after the file is edited; a failure is a warning.
func registerHooks(runner *hooks.Runner, log *slog.Logger) {
	if err := runner.Register(); err != nil {
		log.Warn("carpd: the root hook helper did not register the configuration; its hooks are refused once the file changes", "err", err)
	}
}

// hookScripts returns the scripts of every vhid of cfg that has hooks.
func hookScripts(cfg *config.Config) map[hooks.Key]hooks.Scripts { return hooks.ScriptsOf(cfg) }

// PrintErrors prints each error of a joined error on its own line.
func PrintErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "carpd: %s\n", line)
	}
}
