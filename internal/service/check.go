package service

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/carpd/carpd/internal/access"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/hooks"
	"github.com/carpd/carpd/internal/host"
)

// serviceUser is the user of the packaged unit (packaging/carpd.service:
// User=carpd), whom `carpd --check` run as root checks the files for.
const serviceUser = "carpd"

// unitSandbox is what the packaged unit hides from the service; a variable
// for the tests, whose files are in /tmp.
var unitSandbox = access.Unit

// Validate is the one check of a configuration: the daemon's start,
// --check-config and --check all go through it, so that they refuse the
// same things with the same messages (a reload reads the file with the
// same f.Load). It reads the file
// (its format, every key, at least one vhid: config.Load) and applies the
// flags; with onHost it also checks the configuration against this host:
// the interfaces (daemon.Check) and the hooks (newHooks).
func Validate(f *Flags, onHost bool) (*config.Config, error) {
	cfg, err := f.Load()
	if err != nil {
		return nil, err
	}
	if !onHost {
		return cfg, nil
	}
	if err := daemon.Check(cfg, host.Links{}); err != nil {
		return nil, err
	}
	// Each hook where it is named, then the runner as the start makes it.
	var errs []error
	for _, t := range fileTargets(f.name(), cfg) {
		if t.Kind == access.Program && t.What != execWhat {
			if err := hooks.CheckScript(t.Path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.Origin, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := newHooks(cfg, nil, nil); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check is --check-config (the file alone, so that it can be checked on
// another machine) and --check (against this host, and the files as the
// service's user meets them). It prints every problem as file:line:
// message and returns ExitProblems, or prints that the configuration is
// good and returns ExitOK.
func Check(f *Flags, stdout, stderr io.Writer) int {
	cfg, err := Validate(f, f.Check)
	if err != nil {
		PrintErrors(stderr, err)
		return ExitProblems
	}
	if f.Check {
		hookErr := checkHookUser(cfg, cmp.Or(f.CheckUser, serviceUser), stdout)
		// A hook-user that cannot work is the problem to fix: the hooks
		// are not checked as that user (its advice, e.g. to give it
		// /etc/carpd, would be wrong).
		problems := fileProblems(f, cfg, hookErr == nil, stderr)
		for _, p := range problems {
			fmt.Fprintf(stderr, "carpd: %v\n", p)
		}
		if hookErr != nil {
			PrintErrors(stderr, hookErr)
		}
		if len(problems) > 0 || hookErr != nil {
			return ExitProblems
		}
	}
	fmt.Fprintf(stdout, "%s: configuration OK (%d vhid(s))\n", f.name(), len(cfg.VHIDs))
	return ExitOK
}

// name is the configuration file's name as given.
func (f *Flags) name() string { return f.CheckConfig + f.Config + f.RCConf }

// fileProblems checks the configuration file and every file it names
// (fileTargets) as the service meets them: as the user --check-user
// names, or when run as root the packaged unit's user, in the unit's
// sandbox; hooks as hook-user when one is set. Without such a user (run by
// another user, or no user carpd on this host) the files are checked as
// carpd's own user: they exist, programs are executable. A warning says so.
// Without hookUserOK (hook-user itself refused) the hooks of hook-user are
// not checked.
func fileProblems(f *Flags, cfg *config.Config, hookUserOK bool, stderr io.Writer) []access.Problem {
	u, hidden, problem := checkUser(f, stderr)
	if problem != nil {
		return []access.Problem{*problem}
	}
	targets := fileTargets(f.name(), cfg)
	var hookTargets, other []access.Target
	for _, t := range targets {
		if t.Kind == access.Program && t.What != execWhat && cfg.HookUser != "" {
			hookTargets = append(hookTargets, t)
		} else {
			other = append(other, t)
		}
	}
	problems := access.CheckFiles(other, u, hidden)
	if len(hookTargets) > 0 && hookUserOK {
		// Not in carpd's sandbox: hook-user's hooks run elsewhere.
		hu, err := access.LookupUser(cfg.HookUser)
		if err != nil {
			return append(problems, access.Problem{Origin: f.name(), Msg: fmt.Sprintf("hook-user %q: %v", cfg.HookUser, err)})
		}
		problems = append(problems, access.CheckFiles(hookTargets, hu, nil)...)
	}
	return problems
}

// checkUser returns the user --check checks the files as and the sandbox
// that applies, or the problem that --check-user names no user.
func checkUser(f *Flags, stderr io.Writer) (*access.User, []access.Hidden, *access.Problem) {
	if f.CheckUser != "" {
		u, err := access.LookupUser(f.CheckUser)
		if err != nil {
			return nil, nil, &access.Problem{Origin: "--check-user", Msg: fmt.Sprintf("%q: %v", f.CheckUser, err)}
		}
		return u, unitSandbox, nil
	}
	self := func() *access.User {
		u, err := access.LookupUser(fmt.Sprint(os.Geteuid()))
		if err != nil {
			return &access.User{Name: fmt.Sprint(os.Geteuid()), UID: os.Geteuid(), GID: os.Getegid(), GroupName: fmt.Sprint(os.Getegid())}
		}
		return u
	}
	if os.Geteuid() != 0 {
		return self(), nil, nil
	}
	u, err := access.LookupUser(serviceUser)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: warning: no user %s on this host (the packaged unit's User=): the files are checked as root; pass --check-user NAME to check them as the user carpd runs as\n", serviceUser)
		return self(), nil, nil
	}
	return u, unitSandbox, nil
}

// execWhat names an exec check's program in messages.
const execWhat = "exec check program"

// fileTargets lists the configuration file and the files it names that
// carpd uses (config.Config.Files): password files, the hooks the vhids
// run (hookScripts: a global hook that every vhid overrides is not run),
// the programs of exec checks.
func fileTargets(name string, cfg *config.Config) []access.Target {
	path, err := filepath.Abs(name)
	if err != nil {
		path = name
	}
	out := []access.Target{{Path: path, What: "configuration file", Origin: name, Kind: access.Config}}
	used := map[string]bool{}
	for _, s := range hookScripts(cfg) {
		for _, p := range s.Paths() {
			used[p] = true
		}
	}
	for _, c := range cfg.Checks {
		if c.Kind == config.CheckExec {
			used[c.Argv[0]] = true
		}
	}
	for _, r := range cfg.Files {
		switch {
		case !r.Program:
			out = append(out, access.Target{Path: r.Path, What: "password file", Origin: r.Origin, Kind: access.Password})
		case used[r.Path]:
			what := strings.TrimPrefix(r.Key, "--")
			if r.Key == "exec" {
				what = execWhat
			}
			out = append(out, access.Target{Path: r.Path, What: what, Origin: r.Origin, Kind: access.Program})
		}
	}
	return out
}
