// Command carpd is a CARP (Common Address Redundancy Protocol) daemon for
// Linux. It reads its own TOML configuration or the carp lines of a FreeBSD
// rc.conf, runs one state machine per vhid, and holds the virtual addresses
// while MASTER.
//
//	carpd --config /etc/carpd/carpd.toml
//	carpd --rc-conf /etc/rc.conf [--preempt] [--log-level debug]
//	carpd --check-config FILE
//	carpd demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/advsock"
	"github.com/carpd/carpd/internal/announce"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/demo"
	"github.com/carpd/carpd/internal/netmon"
	"github.com/carpd/carpd/internal/vip"
	"github.com/carpd/carpd/internal/vmac"
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

// flags are the command line's settings; the global ones override the
// configuration file's when given.
type flags struct {
	config, rcConf, checkConfig string
	check                       bool
	preempt                     bool
	preemptDelay                string
	ifdownDemotion              int
	senderrDemotion             int
	logLevel                    string
	tos                         int
	set                         map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	var f flags
	fs := flag.NewFlagSet("carpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file: carpd's TOML (*.toml) or a FreeBSD rc.conf (any other name)")
	fs.StringVar(&f.rcConf, "rc-conf", "", "read the carp lines (ifconfig_<iface>_alias<N> with a vhid) of this FreeBSD rc.conf")
	fs.StringVar(&f.checkConfig, "check-config", "", "check this configuration file (the file alone; add --check for this host's interfaces) and exit: 0 when good, 2 with every error otherwise")
	fs.BoolVar(&f.check, "check", false, "check the configuration against this host (interfaces) and exit: 0 or 2")
	fs.BoolVar(&f.preempt, "preempt", false, "take over from a slower master (FreeBSD's net.inet.carp.preempt=1)")
	fs.StringVar(&f.preemptDelay, "preempt-delay", "0s", "after start, wait this long before preempting (keepalived's preempt_delay), e.g. 30s")
	fs.IntVar(&f.ifdownDemotion, "ifdown-demotion", config.DefaultDemotionFactor, "demotion while a vhid's interface is down (FreeBSD's ifdown_demotion_factor); 0: off")
	fs.IntVar(&f.senderrDemotion, "senderr-demotion", config.DefaultDemotionFactor, "demotion after 3 failed adverts in a row (FreeBSD's senderr_demotion_factor); 0: off")
	fs.StringVar(&f.logLevel, "log-level", config.DefaultLogLevel, "debug, info, warn or error")
	fs.IntVar(&f.tos, "tos", config.DefaultDSCP<<2, "TOS / traffic class byte of adverts (FreeBSD: 0xE0 = DSCP 56; ucarp and OpenBSD: 0x10); overrides dscp")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: carpd --config FILE [flags]\n       carpd --rc-conf FILE [flags]\n       carpd --check-config FILE\n       carpd demo [--preempt]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	n := 0
	for _, s := range []string{f.config, f.rcConf, f.checkConfig} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give one of --config FILE, --rc-conf FILE or --check-config FILE")
	}
	return &f, nil
}

// load reads the configuration and applies the flags given.
func (f *flags) load() (*config.Config, error) {
	var cfg *config.Config
	var err error
	switch {
	case f.rcConf != "":
		cfg, err = config.LoadRCConf(f.rcConf)
	case f.config != "":
		cfg, err = config.Load(f.config)
	default:
		cfg, err = config.Load(f.checkConfig)
	}
	if err != nil {
		return nil, err
	}
	if f.set["preempt"] {
		cfg.Preempt = f.preempt
	}
	if f.set["preempt-delay"] {
		d, err := parseDuration(f.preemptDelay)
		if err != nil {
			return nil, fmt.Errorf("--preempt-delay %q: %w", f.preemptDelay, err)
		}
		cfg.PreemptDelay = d
	}
	if f.set["ifdown-demotion"] {
		cfg.IfDownDemotion = f.ifdownDemotion
	}
	if f.set["senderr-demotion"] {
		cfg.SendErrDemotion = f.senderrDemotion
	}
	if f.set["log-level"] {
		cfg.LogLevel = f.logLevel
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(ctx, args[1:], stdout, stderr)
	}
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return exitConfig
	}
	cfg, err := f.load()
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	if f.checkConfig != "" && !f.check {
		// The file alone, so that it can be checked on another machine.
		fmt.Fprintf(stdout, "%s: configuration OK (%d vhid(s))\n", f.checkConfig, len(cfg.VHIDs))
		return exitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "carpd: log level %q: want debug, info, warn or error\n", cfg.LogLevel)
		return exitConfig
	}
	tos := cfg.DSCP << 2
	if f.set["tos"] {
		tos = f.tos
	}
	if tos < 0 || tos > 255 {
		fmt.Fprintf(stderr, "carpd: --tos %d: want 0..255\n", tos)
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	osa := daemon.OS{
		Addresses: vip.New(nil, vip.AddOptions{ValidLifetime: daemon.AddressLifetime(cfg)}),
		Source:    sourceAddr,
		Links:     netmon.WatchLinks,
		Link:      netmon.LinkByName,
		Addrs:     netmon.WatchAddrs,
		VirtualMAC: func(parent string, vhid uint8) (netmon.Link, error) {
			name, _, err := vmac.Ensure(parent, vhid)
			if err != nil {
				return netmon.Link{}, err
			}
			return netmon.LinkByName(name)
		},
		RemoveVirtualMAC: vmac.Remove,
	}
	d, err := daemon.New(cfg, osa, log)
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	if f.check || f.checkConfig != "" {
		name := f.checkConfig + f.config + f.rcConf
		fmt.Fprintf(stdout, "%s: configuration OK (%d vhid(s))\n", name, len(cfg.VHIDs))
		return exitOK
	}
	ipv4, ipv6 := d.Families()
	if ipv4 {
		c, err := advsock.ListenIPv4(tos)
		if err != nil {
			fmt.Fprintf(stderr, "carpd: %v (carpd needs root or CAP_NET_RAW and CAP_NET_ADMIN)\n", err)
			return exitFail
		}
		osa.Conns[carp.IPv4] = c
	}
	if ipv6 {
		c, err := advsock.ListenIPv6(tos)
		if err != nil {
			fmt.Fprintf(stderr, "carpd: %v (carpd needs root or CAP_NET_RAW and CAP_NET_ADMIN)\n", err)
			return exitFail
		}
		osa.Conns[carp.IPv6] = c
	}
	ann := announce.New()
	defer ann.Close()
	osa.Announcer = ann
	d.SetOS(osa)
	go func() {
		// A second SIGINT or SIGTERM while masters bow out: release the
		// addresses at once instead of waiting for the new masters.
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		d.Abort()
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("carpd: " + err.Error())
		return exitFail
	}
	return exitOK
}

// sourceAddr is the source address of adverts to dst: the interface's own
// address of dst's family (for IPv6 of dst's scope), never a virtual one.
func sourceAddr(ifindex int, dst netip.Addr, exclude []netip.Addr) (netip.Addr, error) {
	if dst.Is6() {
		return advsock.SourceIPv6To(ifindex, dst, exclude)
	}
	return advsock.PrimaryIPv4(ifindex, exclude)
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
		fmt.Fprintln(stderr, err) // demo's errors say "carpd demo: ..."
		return exitFail
	}
	return exitOK
}

func parseDuration(s string) (d time.Duration, err error) {
	d, err = time.ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("must not be negative")
	}
	return d, err
}
