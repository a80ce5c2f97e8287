package service

// carpd hook-helper [CARPD_ARGS...]: the root hook helper (see
// internal/hooks/helper.go for why it exists and what it trusts). systemd
// starts it per connection of carpd-hook.socket (Accept=yes), the
// connection on stdin (or passed as fd 3, LISTEN_FDS=1); it reads the
// configuration carpd reads (the same flags, from /etc/default/carpd),
// serves the one request and exits. A request is a hook to run, or carpd's
// register (at its start and after each reload): the helper then records
// the file's root hooks in HelperStatePath, so that they stay runnable
// after the file is edited (see internal/hooks/known.go).

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/hooks"
	"github.com/carpd/carpd/internal/logging"
)

// hookHelper serves one connection on conn and returns carpd's exit
// status: 0 when a hook ran (whatever its result), 1 otherwise.
func hookHelper(args []string, conn io.ReadWriter, stderr io.Writer) int {
	log := slog.New(logging.NewHandler(stderr, nil)) // the journal's priorities under systemd
	a, timeout := helperAllowed(args, log)
	req, o := hooks.Serve(conn, a, timeout)
	if req.Register {
		if o.Result != hooks.ResultOK {
			log.Error("carpd hook-helper: configuration not registered", "err", o.Error)
			return ExitFail
		}
		log.Info("carpd hook-helper: configuration registered", "state", hooks.HelperStatePath())
		return ExitOK
	}
	l := log.With("vhid", req.VHID, "iface", req.Interface, "hook", req.Hook, "argv", req.Argv, "result", o.Result)
	switch o.Result {
	case hooks.ResultRefused, hooks.ResultError:
		l.Error("carpd hook-helper: hook not run", "err", o.Error)
		return ExitFail
	case hooks.ResultOK, hooks.ResultFailed:
		l.Info("carpd hook-helper: hook ran", "exit", *o.Exit)
	default:
		l.Warn("carpd hook-helper: hook killed (timeout, or carpd gave up)")
	}
	return ExitOK
}

// helperAllowed returns what the helper serves a request against: the
// configuration file as it is now (read with carpd's flags, the default
// files when args name none) and the configurations registered since boot
// (HelperStatePath), and the hook timeout.
func helperAllowed(args []string, log *slog.Logger) (hooks.Allowed, time.Duration) {
	var a hooks.Allowed
	timeout := hooks.DefaultTimeout
	f, err := ParseFlags(args, io.Discard)
	var cfg *config.Config
	if err == nil {
		cfg, err = f.Load()
	}
	if err != nil {
		a.LoadErr = err
		log.Error("carpd hook-helper: the configuration cannot be read; only the registered ones count", "err", err)
	} else {
		a.Scripts, a.HookUser, timeout = hooks.ScriptsOf(cfg), cfg.HookUser, cfg.HookTimeout
		state := hooks.HelperStatePath()
		scripts := a.Scripts
		a.Register = func() error { return hooks.RegisterKnown(state, hooks.KnownOf(scripts)) }
	}
	a.Known, err = hooks.LoadKnown(hooks.HelperStatePath())
	if err != nil {
		log.Warn("carpd hook-helper: the registered configurations cannot be read; only the file counts", "err", err)
	}
	return a, timeout
}

// checkHookUser is --check's verdict on hook-user when carpd runs as
// serviceUser under its unit, and says which sandbox the hooks run in.
func checkHookUser(cfg *config.Config, serviceUser string, stdout io.Writer) error {
	if err := config.CheckHookUser(cfg, config.HookHostOf(serviceUser, hooks.HelperSocketPath())); err != nil {
		return err
	}
	if s := config.HookSandbox(cfg, serviceUser); s != "" {
		fmt.Fprintf(stdout, "carpd: %s\n", s)
	}
	return nil
}

// helperConn is the connection systemd gives the helper: fd 3 when it
// passes the socket that way (LISTEN_FDS=1 for this process), else stdin.
func helperConn() *os.File {
	if os.Getenv("LISTEN_FDS") == "1" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		return os.NewFile(3, "connection")
	}
	return os.Stdin
}

// RunHookHelper is `carpd hook-helper`: it serves the connection systemd
// gives it and returns carpd's exit status.
func RunHookHelper(args []string) int {
	conn := helperConn()
	defer conn.Close()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "carpd hook-helper: warning: not root; hooks run as uid", os.Geteuid())
	}
	return hookHelper(args, conn, os.Stderr)
}
