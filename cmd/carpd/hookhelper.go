package main

// carpd hook-helper [CARPD_ARGS...]: the root hook helper (see
// internal/hooks/helper.go for why it exists and what it trusts). systemd
// starts it per connection of carpd-hook.socket (Accept=yes), the
// connection on stdin (or passed as fd 3, LISTEN_FDS=1); it reads the
// configuration carpd reads (the same flags, from /etc/default/carpd),
// serves the one request and exits.

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/hooks"
	"github.com/carpd/carpd/internal/logging"
)

// hookHelper serves one connection on conn and returns carpd's exit
// status: 0 when a hook ran (whatever its result), 1 otherwise.
func hookHelper(args []string, conn io.ReadWriter, stderr io.Writer) int {
	log := slog.New(logging.NewHandler(stderr, nil)) // the journal's priorities under systemd
	refuse := func(err error) int {
		// Still an answer: carpd logs why.
		hooks.Refuse(conn, fmt.Errorf("the helper cannot read the configuration: %w", err))
		log.Error("carpd hook-helper: no configuration; request refused", "err", err)
		return exitFail
	}
	f, err := parseFlags(args, io.Discard) // the default files when args name none
	if err != nil {
		return refuse(err)
	}
	cfg, err := f.load()
	if err != nil {
		return refuse(err)
	}
	req, o := hooks.Serve(conn, hooks.ScriptsOf(cfg), cfg.HookUser, cfg.HookTimeout)
	l := log.With("vhid", req.VHID, "iface", req.Interface, "hook", req.Hook, "argv", req.Argv, "result", o.Result)
	switch o.Result {
	case hooks.ResultRefused, hooks.ResultError:
		l.Error("carpd hook-helper: hook not run", "err", o.Error)
		return exitFail
	case hooks.ResultOK, hooks.ResultFailed:
		l.Info("carpd hook-helper: hook ran", "exit", *o.Exit)
	default:
		l.Warn("carpd hook-helper: hook killed (timeout, or carpd gave up)")
	}
	return exitOK
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

func runHookHelper(args []string) int {
	conn := helperConn()
	defer conn.Close()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "carpd hook-helper: warning: not root; hooks run as uid", os.Geteuid())
	}
	return hookHelper(args, conn, os.Stderr)
}
