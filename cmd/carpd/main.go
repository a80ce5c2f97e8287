// Command carpd is a CARP (Common Address Redundancy Protocol) daemon for
// Linux. It reads its own TOML configuration or the carp lines of a FreeBSD
// rc.conf, runs one state machine per vhid, and holds the virtual addresses
// while MASTER.
//
//	carpd --config /etc/carpd/carpd.toml
//	carpd --rc-conf /etc/rc.conf [--preempt] [--log-level debug]
//	carpd --check-config FILE
//	carpd --config FILE --check [--check-user NAME]
//	carpd --version
//
// The command is the wiring: flags, then the configuration, then one
// service.Run (internal/service assembles the daemon and what serves it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/carpd/carpd/internal/hooks"
	"github.com/carpd/carpd/internal/service"
	"github.com/carpd/carpd/internal/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == hooks.ExecCommand {
		// A hook, run without carpd's capabilities.
		err := hooks.ExecWithoutCapabilities(os.Args[2:])
		fmt.Fprintf(os.Stderr, "carpd: hook: %v\n", err)
		os.Exit(126)
	}
	if len(os.Args) > 1 && os.Args[1] == hooks.HelperCommand {
		os.Exit(service.RunHookHelper(os.Args[2:]))
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// One processor, as keepalived's one thread: the timer's fire, the
		// readers' adverts and the loop hand over on it without waking a
		// second thread (with two, each handover woke one, several times
		// per advert), so that an idle daemon wakes once per advert (see
		// host.Clock). The environment's GOMAXPROCS still decides.
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is carpd with args: flags, configuration, service; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := service.ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return service.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return service.ExitUsage
	}
	if f.Version {
		fmt.Fprintf(stdout, "carpd %s (%s)\n", version.String(), version.Go())
		return service.ExitOK
	}
	if f.CheckConfig != "" || f.Check {
		return service.Check(f, stdout, stderr)
	}
	// What the checks check, so that they refuse what the start refuses.
	cfg, err := service.Validate(f, true)
	if err != nil {
		service.PrintErrors(stderr, err)
		return service.ExitConfig
	}
	return service.Run(ctx, cfg, service.Options{Reload: f.Load, Stderr: stderr, Notifier: service.Systemd()})
}
