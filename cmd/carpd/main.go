// Command carpd is a CARP (Common Address Redundancy Protocol) daemon for
// Linux. It reads the carp lines of a FreeBSD rc.conf, runs one state
// machine per vhid, and holds the virtual addresses while MASTER.
//
//	carpd --rc-conf /etc/carpd/rc.conf [--preempt] [--log-level debug]
//	carpd demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/carpd/carpd/internal/advsock"
	"github.com/carpd/carpd/internal/announce"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/demo"
	"github.com/carpd/carpd/internal/netmon"
	"github.com/carpd/carpd/internal/vip"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1 // the daemon failed while running
	exitConfig = 2 // bad command line or configuration: nothing was started
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("carpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rcConf := fs.String("rc-conf", "", "read the carp lines (ifconfig_<iface>_alias<N> with a vhid) of this FreeBSD rc.conf")
	preempt := fs.Bool("preempt", false, "take over from a slower master (FreeBSD's net.inet.carp.preempt=1)")
	preemptDelay := fs.Duration("preempt-delay", 0, "after start, wait this long before preempting (keepalived's preempt_delay), e.g. 30s")
	ifdownDemotion := fs.Int("ifdown-demotion", config.DefaultDemotionFactor, "demotion while a vhid's interface is down (FreeBSD's ifdown_demotion_factor); 0: off")
	senderrDemotion := fs.Int("senderr-demotion", config.DefaultDemotionFactor, "demotion after 3 failed adverts in a row (FreeBSD's senderr_demotion_factor); 0: off")
	check := fs.Bool("check", false, "check the configuration against this host and exit: 0 when good, 2 otherwise")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	tos := fs.Int("tos", advsock.DefaultTOS, "IPv4 TOS byte of adverts (FreeBSD: 0xE0, DSCP 56; ucarp and OpenBSD: 0x10)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: carpd --rc-conf FILE [flags]\n       carpd demo [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "carpd: unexpected argument %q\n", fs.Arg(0))
		return exitConfig
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "carpd: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return exitConfig
	}
	if *tos < 0 || *tos > 255 {
		fmt.Fprintf(stderr, "carpd: --tos %d: want 0..255\n", *tos)
		return exitConfig
	}
	if *rcConf == "" {
		fmt.Fprintln(stderr, "carpd: no configuration: use --rc-conf FILE")
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.LoadRCConf(*rcConf)
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	if *preemptDelay < 0 {
		fmt.Fprintf(stderr, "carpd: --preempt-delay %v: must not be negative\n", *preemptDelay)
		return exitConfig
	}
	cfg.Preempt, cfg.PreemptDelay = *preempt, *preemptDelay
	cfg.IfDownDemotion, cfg.SendErrDemotion = *ifdownDemotion, *senderrDemotion
	osa := daemon.OS{
		Addresses:  vip.New(nil, vip.AddOptions{ValidLifetime: daemon.AddressLifetime(cfg)}),
		SourceIPv4: advsock.PrimaryIPv4,
		Links:      netmon.WatchLinks,
		Link:       netmon.LinkByName,
		Addrs:      netmon.WatchAddrs,
	}
	d, err := daemon.New(cfg, osa, log)
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	if *check {
		fmt.Fprintf(stdout, "%s: configuration OK (%d vhid(s))\n", *rcConf, len(cfg.VHIDs))
		return exitOK
	}
	conn, err := advsock.ListenIPv4(*tos)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v (carpd needs root or CAP_NET_RAW and CAP_NET_ADMIN)\n", err)
		return exitFail
	}
	ann := announce.New()
	defer ann.Close()
	osa.Conn, osa.Announcer = conn, ann
	d.SetOS(osa)
	if err := d.Run(ctx); err != nil {
		log.Error("carpd: " + err.Error())
		return exitFail
	}
	return exitOK
}

// printErrors prints each error of a joined error on its own line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "carpd: %s\n", line)
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("carpd demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	preempt := fs.Bool("preempt", false, "run both carpd with --preempt: the master takes its address back when it returns")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "carpd demo: %v\n", err)
		return exitFail
	}
	if err := demo.Run(ctx, demo.Options{Carpd: self, Stdout: stdout, Preempt: *preempt}); err != nil {
		fmt.Fprintf(stderr, "carpd demo: %v\n", err)
		return exitFail
	}
	return exitOK
}
