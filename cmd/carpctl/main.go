// Command carpctl talks to carpd's control socket: it shows the state of
// the vhids and the counters, forces states, demotes the host, follows the
// events. It never touches the network itself.
//
//	carpctl [--control PATH] [--json] COMMAND [ARGS]
//
// With --json every command prints exactly one JSON document on stdout
// and nothing else, its errors too ({"version":1,"error":"..."}); events
// prints one document per line (JSON Lines).
//
// Exit statuses: 0 done (is-master: MASTER here); 1 is-master: not MASTER;
// 2 bad command line, or carpd refused the request (unknown vhid,
// malformed); 3 carpd is not running; 4 permission denied; 5 any other
// failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/control/client"
	"github.com/carpd/carpd/internal/version"
)

// Exit statuses.
const (
	exitOK         = 0
	exitNo         = 1 // is-master: not MASTER
	exitUsage      = 2
	exitNotRunning = 3
	exitPermission = 4
	exitFail       = 5
)

const usage = `usage: carpctl [--control PATH] [--json] COMMAND [ARGS]

commands:
  status                        every vhid, in ifconfig's words (--json: the API's document)
  stats                         counters, in netstat -s -p carp's words (--json: libxo keys)
  state VHID[@IFACE] master|backup
                                force a state (FreeBSD's ifconfig ... state); not sticky
  demote +N|-N [--reason TEXT] [--persist]
                                add to the operator's demotion; --persist keeps it across
                                restarts and reboots (maintenance mode)
  demote --clear                remove every operator demotion, persistent ones included
  log-level debug|info|warn|error
  reload                        re-read the configuration and apply the difference (as SIGHUP);
                                exit 2 with every error when the file is refused
  is-master VHID[@IFACE]        exit 0 when MASTER here, 1 when not
  events                        one JSON line per event, following (a snapshot first)
  version                       carpctl's and carpd's versions

--json: every command prints exactly one JSON document on stdout and nothing else
(events: one document per line), errors as {"version":1,"error":"..."}

exit status: 0 done; 1 is-master: not MASTER; 2 bad command line or request refused;
3 carpd not running; 4 permission denied; 5 other failure
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("carpctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("control", client.DefaultPath, "carpd's control socket")
	asJSON := fs.Bool("json", false, "print the API's JSON documents")
	fs.Usage = func() { fmt.Fprint(stderr, usage, "\nflags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	// --json may also follow the command.
	var cargs []string
	for _, a := range rest {
		if a == "--json" || a == "-json" {
			*asJSON = true
			continue
		}
		cargs = append(cargs, a)
	}
	c := client.New(*path)
	cc := &command{ctx: ctx, c: c, out: stdout, json: *asJSON}
	var err error = usageError(fmt.Sprintf("unknown command %q (see carpctl --help)", cmd))
	for _, sc := range commands {
		if sc.name == cmd {
			err = sc.run(cc, cargs)
			break
		}
	}
	return report(cc, stderr, err)
}

// subcommand is one of carpctl's commands. Under --json each prints
// exactly one JSON document on stdout and nothing else (events: one per
// line, JSON Lines), errors included (see report).
type subcommand struct {
	name string
	run  func(cc *command, args []string) error
}

// commands are carpctl's commands.
var commands = []subcommand{
	{"status", func(cc *command, a []string) error { return cc.noArgs(a, cc.status) }},
	{"stats", func(cc *command, a []string) error { return cc.noArgs(a, cc.stats) }},
	{"state", (*command).state},
	{"demote", (*command).demote},
	{"log-level", (*command).logLevel},
	{"reload", func(cc *command, a []string) error { return cc.noArgs(a, cc.reload) }},
	{"is-master", (*command).isMaster},
	{"events", func(cc *command, a []string) error { return cc.noArgs(a, cc.events) }},
	{"version", func(cc *command, a []string) error { return cc.noArgs(a, cc.version) }},
}

// usageError is a bad command line.
type usageError string

func (e usageError) Error() string { return string(e) }

// errNotMaster is is-master's "no".
var errNotMaster = errors.New("not MASTER")

// report prints err in one line (under --json, as an api.Error document
// on stdout, so that stdout holds one JSON document whatever happens) and
// returns the exit status.
func report(cc *command, stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errNotMaster) {
		return exitNo
	}
	if errors.Is(err, context.Canceled) {
		return exitOK // interrupted while following events
	}
	if cc.json {
		if jerr := json.NewEncoder(cc.out).Encode(api.Error{Version: api.Version, Error: err.Error()}); jerr != nil {
			fmt.Fprintf(stderr, "carpctl: %v\n", err)
		}
	} else {
		fmt.Fprintf(stderr, "carpctl: %v\n", err)
	}
	var ue usageError
	var re *client.RequestError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, client.ErrNotRunning):
		return exitNotRunning
	case errors.Is(err, client.ErrPermission):
		return exitPermission
	case errors.As(err, &re) && re.Status >= 400 && re.Status < 500:
		return exitUsage
	}
	return exitFail
}

type command struct {
	ctx  context.Context
	c    *client.Client
	out  io.Writer
	json bool
}

func (cc *command) noArgs(args []string, fn func() error) error {
	if len(args) > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", args[0]))
	}
	return fn()
}

func (cc *command) printJSON(v any) error {
	enc := json.NewEncoder(cc.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (cc *command) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(cc.ctx, 15*time.Second)
}

func (cc *command) status() error {
	ctx, cancel := cc.timeout()
	defer cancel()
	st, err := cc.c.Status(ctx)
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(st)
	}
	_, err = io.WriteString(cc.out, formatStatus(st, time.Now()))
	return err
}

func (cc *command) stats() error {
	ctx, cancel := cc.timeout()
	defer cancel()
	st, err := cc.c.Stats(ctx)
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(st)
	}
	_, err = io.WriteString(cc.out, formatStats(st))
	return err
}

// vhidArg parses VHID[@IFACE].
func vhidArg(s string) (int, string, error) {
	num, iface, _ := strings.Cut(s, "@")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 255 {
		return 0, "", usageError(fmt.Sprintf("%q: want VHID[@IFACE], the vhid 1..255", s))
	}
	return n, iface, nil
}

func (cc *command) state(args []string) error {
	if len(args) != 2 || (args[1] != "master" && args[1] != "backup") {
		return usageError("usage: carpctl state VHID[@IFACE] master|backup")
	}
	n, iface, err := vhidArg(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := cc.timeout()
	defer cancel()
	st, err := cc.c.Force(ctx, api.StateRequest{VHID: n, Interface: iface, State: args[1]})
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(st)
	}
	for _, v := range st.VHIDs {
		if v.VHID == n && (iface == "" || v.Interface == iface) {
			fmt.Fprintf(cc.out, "%d@%s: %s\n", v.VHID, v.Interface, v.State)
		}
	}
	return nil
}

var deltaRE = regexp.MustCompile(`^[+-]?[0-9]+$`)

func (cc *command) demote(args []string) error {
	var req api.DemoteRequest
	var haveDelta bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--clear" || a == "-clear":
			req.Clear = true
		case a == "--persist" || a == "-persist":
			req.Persist = true
		case a == "--reason" || a == "-reason":
			if i+1 == len(args) {
				return usageError("--reason needs a text")
			}
			i++
			req.Reason = args[i]
		case strings.HasPrefix(a, "--reason="):
			req.Reason = strings.TrimPrefix(a, "--reason=")
		case deltaRE.MatchString(a) && !haveDelta:
			n, err := strconv.Atoi(a)
			if err != nil {
				return usageError(fmt.Sprintf("%q: want +N or -N", a))
			}
			req.Delta, haveDelta = n, true
		default:
			return usageError(fmt.Sprintf("unexpected argument %q (usage: carpctl demote +N|-N [--reason TEXT] [--persist] | demote --clear)", a))
		}
	}
	if req.Clear == haveDelta {
		return usageError("usage: carpctl demote +N|-N [--reason TEXT] [--persist] | demote --clear")
	}
	ctx, cancel := cc.timeout()
	defer cancel()
	st, err := cc.c.Demote(ctx, req)
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(st)
	}
	fmt.Fprintf(cc.out, "demotion %d%s\n", st.Demotion, formatSources(st.Demotions))
	return nil
}

func (cc *command) reload() error {
	ctx, cancel := cc.timeout()
	defer cancel()
	res, err := cc.c.Reload(ctx)
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(res)
	}
	fmt.Fprintf(cc.out, "reloaded: %d added, %d removed, %d changed, %d unchanged\n",
		len(res.Added), len(res.Removed), len(res.Changed), res.Unchanged)
	for _, w := range res.Warnings {
		fmt.Fprintf(cc.out, "warning: %s\n", w)
	}
	return nil
}

func (cc *command) logLevel(args []string) error {
	if len(args) != 1 {
		return usageError("usage: carpctl log-level debug|info|warn|error")
	}
	ctx, cancel := cc.timeout()
	defer cancel()
	res, err := cc.c.SetLogLevel(ctx, args[0])
	if err != nil || !cc.json {
		return err
	}
	return cc.printJSON(res)
}

// masterAnswer is is-master's --json document.
type masterAnswer struct {
	Version   int    `json:"version"`
	VHID      int    `json:"vhid"`
	Interface string `json:"iface"`
	// Master is true when every instance of the vhid here is MASTER
	// (the exit status 0); States are their states.
	Master bool     `json:"master"`
	States []string `json:"states"`
}

func (cc *command) isMaster(args []string) error {
	if len(args) != 1 {
		return usageError("usage: carpctl is-master VHID[@IFACE]")
	}
	n, iface, err := vhidArg(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := cc.timeout()
	defer cancel()
	st, err := cc.c.Status(ctx)
	if err != nil {
		return err
	}
	var found []api.VHID
	for _, v := range st.VHIDs {
		if v.VHID == n && (iface == "" || v.Interface == iface) {
			found = append(found, v)
		}
	}
	if len(found) == 0 {
		return &client.RequestError{Status: 404, Msg: fmt.Sprintf("no such vhid %s", args[0])}
	}
	// A VRRP vhid with both families is two instances on one interface:
	// MASTER only when both are.
	for _, v := range found {
		if v.Interface != found[0].Interface {
			return usageError(fmt.Sprintf("vhid %d is on several interfaces: say which (VHID@IFACE)", n))
		}
	}
	ans := masterAnswer{Version: api.Version, VHID: n, Interface: found[0].Interface, Master: true}
	for _, v := range found {
		ans.States = append(ans.States, v.State)
		ans.Master = ans.Master && v.State == "MASTER"
	}
	if cc.json {
		if err := cc.printJSON(ans); err != nil {
			return err
		}
	}
	if !ans.Master {
		return errNotMaster
	}
	return nil
}

func (cc *command) events() error {
	enc := json.NewEncoder(cc.out)
	return cc.c.Events(cc.ctx, func(e api.Event) error { return enc.Encode(e) })
}

// versionAnswer is version's --json document: carpctl's, and carpd's
// as its API gives it.
type versionAnswer struct {
	Version   int             `json:"version"`
	Carpctl   string          `json:"carpctl"`
	GoVersion string          `json:"go"`
	Carpd     api.VersionInfo `json:"carpd"`
}

func (cc *command) version() error {
	ctx, cancel := cc.timeout()
	defer cancel()
	if !cc.json {
		fmt.Fprintf(cc.out, "carpctl %s (%s)\n", version.String(), version.Go())
	}
	v, err := cc.c.Version(ctx)
	if err != nil {
		return err
	}
	if cc.json {
		return cc.printJSON(versionAnswer{Version: api.Version, Carpctl: version.String(), GoVersion: version.Go(), Carpd: v})
	}
	fmt.Fprintf(cc.out, "carpd %s (%s), API version %d\n", v.Carpd, v.GoVersion, v.Version)
	return nil
}
