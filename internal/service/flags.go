package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/metrics"
)

// Flags are carpd's command line.
type Flags struct {
	// Config, RCConf and CheckConfig are the configuration file given
	// (one of them).
	Config, RCConf, CheckConfig string
	// Check and Version are --check and --version.
	Check, Version bool
	// CheckUser is the user --check checks the files as ("": the
	// packaged unit's, when run as root).
	CheckUser string
	overrides config.Overrides
}

// ParseFlags parses carpd's command line (flag.ErrHelp for --help, which
// printed the usage to stderr).
func ParseFlags(args []string, stderr io.Writer) (*Flags, error) {
	var f Flags
	fs := flag.NewFlagSet("carpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.Config, "config", "", "configuration file: carpd's TOML (*.toml) or a FreeBSD rc.conf (any other name)")
	fs.StringVar(&f.RCConf, "rc-conf", "", "read the carp lines (ifconfig_<iface>_alias<N> with a vhid) of this FreeBSD rc.conf")
	fs.StringVar(&f.CheckConfig, "check-config", "", "check this configuration file (the file alone; add --check for this host's interfaces) and exit: 0 when good, 2 with every error otherwise")
	fs.BoolVar(&f.Check, "check", false, "check the configuration against this host (interfaces, hooks, and the files as the service's user meets them) and exit: 0 or 2")
	fs.StringVar(&f.CheckUser, "check-user", "", "with --check: check the files as this user would meet them (default, when run as root: "+serviceUser+", the packaged unit's User=)")
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
	fs.BoolVar(&f.Version, "version", false, "print carpd's version and exit")
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
	if f.Version {
		return &f, nil
	}
	n := 0
	for _, s := range []string{f.Config, f.RCConf, f.CheckConfig} {
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
func (f *Flags) useDefault(paths [2]string, exists func(string) bool) error {
	switch {
	case exists(paths[0]):
		f.Config = paths[0]
	case exists(paths[1]):
		f.RCConf = paths[1]
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

// Load reads the configuration file as it is now and applies the flags
// given: at start, and at each reload.
func (f *Flags) Load() (*config.Config, error) {
	var cfg *config.Config
	var err error
	switch {
	case f.RCConf != "":
		cfg, err = config.LoadRCConf(f.RCConf)
	case f.Config != "":
		cfg, err = config.Load(f.Config)
	default:
		cfg, err = config.Load(f.CheckConfig)
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.Apply(f.overrides); err != nil {
		return nil, err
	}
	return cfg, nil
}
