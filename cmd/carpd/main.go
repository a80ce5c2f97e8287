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
	"runtime"
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
	"github.com/carpd/carpd/internal/version"
)

// Exit statuses (carpd(8), EXIT STATUS). The unit's
// RestartPreventExitStatus names exitUsage and exitConfig: restarting
// does not mend them. A panic and the watchdog's SIGABRT exit 2, and must
// be restarted.
const (
	exitOK   = 0
	exitFail = 1 // the daemon failed while running
	// exitProblems: --check-config or --check found problems, each
	// printed as file:line: message.
	exitProblems = 2
	exitUsage    = 64 // sysexits' EX_USAGE: a bad command line
	exitConfig   = 78 // sysexits' EX_CONFIG: the configuration is refused at start; nothing was started
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == hooks.ExecCommand {
		// A hook, run without carpd's capabilities.
		err := hooks.ExecWithoutCapabilities(os.Args[2:])
		fmt.Fprintf(os.Stderr, "carpd: hook: %v\n", err)
		os.Exit(126)
	}
	if len(os.Args) > 1 && os.Args[1] == hooks.HelperCommand {
		os.Exit(runHookHelper(os.Args[2:]))
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

// flags are the command line.
type flags struct {
	config, rcConf, checkConfig string
	check, version              bool
	// checkUser is the user --check checks the files as ("": the
	// packaged unit's, when run as root).
	checkUser string
	overrides config.Overrides
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	var f flags
	fs := flag.NewFlagSet("carpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file: carpd's TOML (*.toml) or a FreeBSD rc.conf (any other name)")
	fs.StringVar(&f.rcConf, "rc-conf", "", "read the carp lines (ifconfig_<iface>_alias<N> with a vhid) of this FreeBSD rc.conf")
	fs.StringVar(&f.checkConfig, "check-config", "", "check this configuration file (the file alone; add --check for this host's interfaces) and exit: 0 when good, 2 with every error otherwise")
	fs.BoolVar(&f.check, "check", false, "check the configuration against this host (interfaces, hooks, and the files as the service's user meets them) and exit: 0 or 2")
	fs.StringVar(&f.checkUser, "check-user", "", "with --check: check the files as this user would meet them (default, when run as root: "+serviceUser+", the packaged unit's User=)")
	preempt := fs.Bool("preempt", false, "take over from a slower master (FreeBSD's net.inet.carp.preempt=1)")
	preemptDelay := fs.Duration("preempt-delay", 0, "after start, wait this long before preempting (keepalived's preempt_delay), e.g. 30s")
	ifdown := fs.Int("ifdown-demotion", config.DefaultDemotionFactor, "demotion while a vhid's interface is down (FreeBSD's ifdown_demotion_factor); 0: off")
	senderr := fs.Int("senderr-demotion", config.DefaultDemotionFactor, "demotion after 3 failed adverts in a row (FreeBSD's senderr_demotion_factor); 0: off")
	logLevel := fs.String("log-level", config.DefaultLogLevel, "debug, info, warn or error")
	tos := fs.Int("tos", config.DefaultDSCP<<2, "TOS / traffic class byte of adverts (FreeBSD: 0xE0 = DSCP 56; ucarp and OpenBSD: 0x10); overrides dscp")
	ctl := fs.String("control", config.DefaultControl, "the control socket carpctl talks to")
	stateFile := fs.String("state-file", config.DefaultStateFile, "where the persistent (maintenance) demotion is kept")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics and /healthz on this address, e.g. "+metrics.DefaultListen)
	up := fs.String("upscript", "", "ucarp's: run SCRIPT IFACE VIP [XPARAM] when a vhid becomes MASTER")
	down := fs.String("downscript", "", "ucarp's: run SCRIPT IFACE VIP [XPARAM] when a vhid leaves MASTER (and at start, unless --neutral)")
	xparam := fs.String("xparam", "", "ucarp's: the extra parameter of the up and down scripts")
	neutral := fs.Bool("neutral", false, "ucarp's: do not run the down script at start")
	fs.BoolVar(&f.version, "version", false, "print carpd's version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: carpd --config FILE [flags]\n       carpd --rc-conf FILE [flags]\n       carpd --check-config FILE [--check]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		if fs.Arg(0) == "demo" {
			return nil, errors.New(`the demo is its own command now: carpd-demo (or "sudo scripts/demo.sh")`)
		}
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Only the flags given override the file.
	o := &f.overrides
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "preempt":
			o.Preempt = preempt
		case "preempt-delay":
			o.PreemptDelay = preemptDelay
		case "ifdown-demotion":
			o.IfDownDemotion = ifdown
		case "senderr-demotion":
			o.SendErrDemotion = senderr
		case "log-level":
			o.LogLevel = logLevel
		case "tos":
			o.TOS = tos
		case "control":
			o.Control = ctl
		case "state-file":
			o.StateFile = stateFile
		case "metrics-listen":
			o.MetricsListen = metricsListen
		case "upscript":
			o.UpScript = up
		case "downscript":
			o.DownScript = down
		case "xparam":
			o.XParam = xparam
		case "neutral":
			o.Neutral = neutral
		}
	})
	if f.version {
		return &f, nil
	}
	n := 0
	for _, s := range []string{f.config, f.rcConf, f.checkConfig} {
		if s != "" {
			n++
		}
	}
	if n == 0 {
		if err := f.useDefault(defaultConfigs, exists); err != nil {
			return nil, err
		}
		n = 1
	}
	if n != 1 {
		return nil, errors.New("give one of --config FILE, --rc-conf FILE or --check-config FILE")
	}
	return &f, nil
}

// defaultConfigs are the files carpd reads when no file is given, in
// order: its own TOML file, then the carp lines of a FreeBSD rc.conf.
var defaultConfigs = [2]string{"/etc/carpd/carpd.toml", "/etc/carpd/rc.conf"}

// useDefault sets the first of paths (TOML, rc.conf) that exists as the
// configuration, or says that neither does.
func (f *flags) useDefault(paths [2]string, exists func(string) bool) error {
	switch {
	case exists(paths[0]):
		f.config = paths[0]
	case exists(paths[1]):
		f.rcConf = paths[1]
	default:
		return fmt.Errorf("no configuration: neither %s nor %s exists; give --config FILE, --rc-conf FILE or --check-config FILE", paths[0], paths[1])
	}
	return nil
}

// exists reports whether path is there, even if it cannot be read (the
// load says why).
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
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
	if err := cfg.Apply(f.overrides); err != nil {
		return nil, err
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return exitUsage
	}
	if f.version {
		fmt.Fprintf(stdout, "carpd %s (%s)\n", version.String(), version.Go())
		return exitOK
	}
	if f.checkConfig != "" || f.check {
		return check(f, stdout, stderr)
	}
	// What the checks check, so that they refuse what the start refuses.
	cfg, err := validate(f, true)
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err) // config checked it
		return exitConfig
	}
	// Under systemd, stderr is the journal: priorities, no time=.
	log := slog.New(logging.NewHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A hook reports through the daemon, which is made later.
	var d *daemon.Daemon
	runner, err := newHooks(cfg, log, func(e api.Event) { d.HookDone(e) })
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	notify, watchdog := systemdNotify(log)
	h, err := host.Open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return exitFail
	}
	defer h.Close()
	h.Hooks = runner
	d, err = daemon.New(cfg, &h.Host, daemon.Options{
		Log: log, Level: level, StateFile: cfg.StateFile, UnmanagedAddresses: !cfg.ManageAddresses,
		Notify: notify, Watchdog: watchdog, Clock: host.Clock{Log: log},
	})
	if err != nil {
		printErrors(stderr, err)
		return exitConfig
	}
	self, err := os.Executable()
	if err != nil {
		// The checks run through it (hooks.ExecCommand).
		fmt.Fprintf(stderr, "carpd: finding carpd's own executable, which runs the checks: %v\n", err)
		return exitFail
	}
	chk := checks.New(checks.Options{Log: log, Wrapper: []string{self, hooks.ExecCommand},
		Report: func(ctx context.Context, r checks.Result) { d.CheckChanged(ctx, r.Name, r.Up, r.Demotion, r.Detail) }})
	chk.Update(cfg.Checks)
	defer chk.Stop()
	r := &reloader{f: f, d: d, runner: runner, checks: chk, log: log, cfg: cfg}
	// Without its control socket carpd still guards the addresses: the
	// failure is logged, not fatal.
	if ctl, err := control.Listen(cfg.Control, cfg.ControlGroup, log); err != nil {
		log.Error("carpd: no control socket; carpctl will not reach this carpd", "err", err)
	} else {
		defer ctl.Close()
		go func() {
			if err := ctl.Serve(controlled{d, r}); err != nil {
				log.Error("carpd: control socket failed", "err", err)
			}
		}()
	}
	ucarpSignals(ctx, d, log)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_, _ = r.reload(context.Background(), "SIGHUP") // reload logs a refusal
		}
	}()
	if cfg.MetricsListen != "" {
		ms, err := metrics.Listen(cfg.MetricsListen)
		if err != nil {
			fmt.Fprintf(stderr, "carpd: metrics-listen %s: %v\n", cfg.MetricsListen, err)
			return exitFail
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
		log.Error("carpd: stopped", "err", err)
		if errors.Is(err, daemon.ErrStateFile) {
			// A restart would meet the same file.
			return exitConfig
		}
		return exitFail
	}
	return exitOK
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

// hookScripts returns the scripts of every vhid of cfg that has hooks.
func hookScripts(cfg *config.Config) map[hooks.Key]hooks.Scripts { return hooks.ScriptsOf(cfg) }

// printErrors prints each error of a joined error on its own line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "carpd: %s\n", line)
	}
}
