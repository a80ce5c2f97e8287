// Package hooks runs the operator's scripts on state changes, in the three
// calling conventions operators bring from elsewhere:
//
//   - devd's (FreeBSD's carp(4) example): SCRIPT SUBSYSTEM TYPE, with
//     SUBSYSTEM = <vhid>@<iface> and TYPE = MASTER, BACKUP or INIT, on
//     every change;
//   - ucarp's: UPSCRIPT IFACE VIP [XPARAM] when the vhid becomes MASTER and
//     DOWNSCRIPT IFACE VIP [XPARAM] when it leaves MASTER, once per
//     address, and the down script at start unless neutral, as ucarp 1.5.2
//     calls them;
//   - keepalived's notify: SCRIPT INSTANCE NAME STATE PRIORITY, STATE being
//     MASTER, BACKUP, FAULT (INIT with the interface down) or STOP, and
//     PRIORITY a VRRP instance's priority in force (vrrpprio minus the
//     demotion), or 255 - advskew for a CARP vhid; and keepalived's
//     notify_master, notify_backup, notify_fault and notify_stop: a
//     command of the operator's, run as configured (no argument added) on
//     entering that state.
//
// Every hook also gets CARP_VHID, CARP_IFACE, CARP_STATE, CARP_PREVIOUS,
// CARP_REASON, CARP_ADDRESSES, CARP_PROTO (carp or vrrp) and CARP_PRIORITY
// in its environment. A VRRP vhid with both address families runs one
// instance per family, and each instance's transitions run the hooks, with
// its own addresses. Hooks run on their
// own goroutines, never holding up the protocol, strictly in order for each
// vhid; each has a timeout, at which its whole process group is killed.
// Their exit status and stderr are logged and reported.
//
// With hook-user = "root" and carpd not root, the hooks run in carpd's root
// hook helper (helper.go), over its socket.
package hooks

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
)

// Scripts are the hooks of one vhid.
type Scripts struct {
	Devd     string // devd's convention
	Up, Down string // ucarp's upscript and downscript
	XParam   string // ucarp's extra parameter
	Neutral  bool   // ucarp's --neutral: no down script at start
	Notify   string // keepalived's notify
	// keepalived's notify_master, notify_backup, notify_fault and
	// notify_stop: argv, run as it is.
	NotifyMaster, NotifyBackup, NotifyFault, NotifyStop []string
	Name                                                string // the instance name keepalived's notify gets; "" = <vhid>@<iface>
	// Addresses are the vhid's, for ucarp's down scripts at start.
	Addresses []netip.Prefix
}

// Paths returns the scripts that are set.
func (s Scripts) Paths() []string {
	var out []string
	for _, p := range []string{s.Devd, s.Up, s.Down, s.Notify} {
		if p != "" {
			out = append(out, p)
		}
	}
	for _, argv := range [][]string{s.NotifyMaster, s.NotifyBackup, s.NotifyFault, s.NotifyStop} {
		if len(argv) > 0 {
			out = append(out, argv[0])
		}
	}
	return out
}

// notifyFor returns keepalived's notify_<state> command for a notify
// state (MASTER, BACKUP, FAULT, STOP) and its hook name.
func (s Scripts) notifyFor(state string) ([]string, string) {
	switch state {
	case "MASTER":
		return s.NotifyMaster, "notify_master"
	case "BACKUP":
		return s.NotifyBackup, "notify_backup"
	case "FAULT":
		return s.NotifyFault, "notify_fault"
	case "STOP":
		return s.NotifyStop, "notify_stop"
	}
	return nil, ""
}

// Key names a vhid: <vhid>@<iface>.
type Key struct {
	VHID      uint8
	Interface string
}

func (k Key) String() string { return fmt.Sprintf("%d@%s", k.VHID, k.Interface) }

// Options are the runner's settings.
type Options struct {
	// Timeout bounds each run (30 s when 0); the process group is killed
	// at it.
	Timeout time.Duration
	// User runs the hooks as this user (name or uid); "" as carpd's.
	// root while carpd is not root: through the root hook helper at
	// HelperSocket.
	User string
	// HelperSocket is the root hook helper's socket (HelperSocketPath()
	// when "").
	HelperSocket string
	// Wrapper is prepended to every command: carpd's __hook-exec, which
	// clears the ambient capabilities before it execs the script.
	Wrapper []string
	Log     *slog.Logger
	// Report receives every run's result (an api.Event of type "hook").
	Report func(api.Event)
}

// DefaultTimeout is a hook's time limit unless configured.
const DefaultTimeout = 30 * time.Second

// maxQueue is how many runs may wait for one vhid; beyond it they are
// dropped, logged and reported.
const maxQueue = 1000

// maxOutput is how much of a hook's stderr is kept for the log.
const maxOutput = 4 << 10

// Runner runs the hooks of every vhid. It implements daemon.Hooks.
type Runner struct {
	o       Options
	scripts map[Key]Scripts
	cred    *syscall.Credential
	helper  string // the root hook helper's socket, when hooks run there
	env     []string

	mu      sync.Mutex
	workers map[Key]*worker
	wg      sync.WaitGroup // queued and running jobs
}

// job is one command to run.
type job struct {
	key  Key
	hook string // devd, upscript, downscript, notify
	argv []string
	env  []string
}

type worker struct {
	queue   []job
	running bool
}

// New checks every script (CheckScript) and returns a runner.
func New(o Options, scripts map[Key]Scripts) (*Runner, error) {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Runner{o: o, scripts: scripts, workers: map[Key]*worker{}}
	if o.User != "" {
		c, err := credential(o.User)
		if err != nil {
			return nil, err
		}
		switch euid := os.Geteuid(); {
		case euid == 0:
			r.cred = c
		case c.Uid == 0:
			// No setuid without CAP_SETUID (and NoNewPrivileges): root's
			// hooks run in the root hook helper.
			r.helper = cmp.Or(o.HelperSocket, HelperSocketPath())
		case c.Uid == uint32(euid):
			// carpd's own user: nothing to switch.
		case !hasCapSetuid():
			return nil, fmt.Errorf("hook-user %q: carpd runs as uid %d without CAP_SETUID and cannot run hooks as another user (leave hook-user out, or set \"root\" for the root hook helper)", o.User, euid)
		default:
			r.cred = c
		}
	}
	if err := checkAs(scripts, r.owner()); err != nil {
		return nil, err
	}
	r.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	return r, nil
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("hook-user %q: %w", name, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("hook-user %q: %w", name, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// owner is the user besides root who may own the scripts: carpd's own,
// none (root) when they run in the root hook helper.
func (r *Runner) owner() int {
	if r.helper != "" {
		return 0
	}
	return os.Getuid()
}

// Check checks every script of scripts (CheckScript).
func Check(scripts map[Key]Scripts) error { return checkAs(scripts, os.Getuid()) }

// checkAs checks every script of scripts (CheckScriptAs owner).
func checkAs(scripts map[Key]Scripts, owner int) error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range scripts {
		for _, p := range s.Paths() {
			if !seen[p] {
				seen[p] = true
				errs = append(errs, CheckScriptAs(p, owner))
			}
		}
	}
	return errors.Join(errs...)
}

// Update replaces the scripts (a reload), after checking them; the runs
// already queued keep their commands.
func (r *Runner) Update(scripts map[Key]Scripts, timeout time.Duration) error {
	if err := checkAs(scripts, r.owner()); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scripts = scripts
	if timeout > 0 {
		r.o.Timeout = timeout
	}
	return nil
}

// CheckScript refuses a script that others could change, as keepalived's
// enable_script_security does: it must be an absolute path to an
// executable regular file owned by root or carpd's user and writable by
// neither its group nor others, in directories of which the same holds (a
// root-owned sticky directory such as /tmp is allowed: others cannot
// replace what is in it).
func CheckScript(path string) error { return CheckScriptAs(path, os.Getuid()) }

// CheckScriptAs is CheckScript for hooks run as root on behalf of a carpd
// whose uid is owner: files and directories owned by root or owner (0:
// root alone, as for the root hook helper's hooks, which carpd's user must
// not be able to change).
func CheckScriptAs(path string, owner int) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hook %s: refused: not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("hook %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("hook %s: refused: not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("hook %s: refused: not executable", path)
	}
	if err := safe(path, fi, false, owner); err != nil {
		return err
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("hook %s: %w", path, err)
		}
		if err := safe(dir, di, true, owner); err != nil {
			return fmt.Errorf("hook %s: %w", path, err)
		}
		if dir == "/" {
			return nil
		}
	}
}

func safe(path string, fi os.FileInfo, isDir bool, allowed int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	owner := int(st.Uid)
	if owner != 0 && owner != allowed {
		if allowed == 0 {
			return fmt.Errorf("refused: %s is owned by uid %d, not root (a hook run as root)", path, owner)
		}
		return fmt.Errorf("refused: %s is owned by uid %d, neither root nor carpd's user", path, owner)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		if isDir && fi.Mode()&os.ModeSticky != 0 && owner == 0 {
			return nil
		}
		return fmt.Errorf("refused: %s is group- or world-writable", path)
	}
	return nil
}

// Start queues ucarp's down scripts, which ucarp runs at start unless
// --neutral: every address is down here until carpd says otherwise.
func (r *Runner) Start() {
	r.mu.Lock()
	scripts := r.scripts
	r.mu.Unlock()
	for k, s := range scripts {
		if s.Down == "" || s.Neutral {
			continue
		}
		e := daemon.HookEvent{VHID: k.VHID, Interface: k.Interface, From: "INIT", To: "INIT", Reason: "start", Addresses: s.Addresses}
		for _, j := range r.ucarp(k, s, s.Down, "downscript", e, nil) {
			r.enqueue(j)
		}
	}
}

// Transition queues the hooks of a state change. It never blocks.
func (r *Runner) Transition(e daemon.HookEvent) {
	k := Key{e.VHID, e.Interface}
	r.mu.Lock()
	s, ok := r.scripts[k]
	r.mu.Unlock()
	if !ok {
		return
	}
	env := append([]string{
		"CARP_VHID=" + strconv.Itoa(int(e.VHID)),
		"CARP_IFACE=" + e.Interface,
		"CARP_STATE=" + e.To,
		"CARP_PREVIOUS=" + e.From,
		"CARP_REASON=" + e.Reason,
		"CARP_ADDRESSES=" + addrList(e.Addresses),
		"CARP_PROTO=" + cmp.Or(e.Proto, "carp"),
		"CARP_PRIORITY=" + strconv.Itoa(e.Priority),
	}, r.env...)
	if s.Devd != "" {
		r.enqueue(job{key: k, hook: "devd", argv: []string{s.Devd, k.String(), e.To}, env: env})
	}
	if e.To == "MASTER" && s.Up != "" {
		for _, j := range r.ucarp(k, s, s.Up, "upscript", e, env) {
			r.enqueue(j)
		}
	}
	if e.From == "MASTER" && s.Down != "" {
		for _, j := range r.ucarp(k, s, s.Down, "downscript", e, env) {
			r.enqueue(j)
		}
	}
	// keepalived runs notify_<state> first, then notify.
	if argv, hook := s.notifyFor(notifyState(e)); len(argv) > 0 {
		r.enqueue(job{key: k, hook: hook, argv: slices.Clone(argv), env: env})
	}
	if s.Notify != "" {
		name := s.Name
		if name == "" {
			name = k.String()
		}
		r.enqueue(job{key: k, hook: "notify", argv: []string{s.Notify, "INSTANCE", name, notifyState(e), strconv.Itoa(e.Priority)}, env: env})
	}
}

// ucarp returns ucarp's calls of script: one per address, IFACE VIP
// [XPARAM].
func (r *Runner) ucarp(k Key, s Scripts, script, hook string, e daemon.HookEvent, env []string) []job {
	if env == nil {
		env = append([]string{
			"CARP_VHID=" + strconv.Itoa(int(k.VHID)), "CARP_IFACE=" + k.Interface,
			"CARP_STATE=INIT", "CARP_PREVIOUS=INIT", "CARP_REASON=start",
		}, r.env...)
	}
	addrs := e.Addresses
	var jobs []job
	for _, p := range addrs {
		argv := []string{script, k.Interface, p.Addr().String()}
		if s.XParam != "" {
			argv = append(argv, s.XParam)
		}
		jobs = append(jobs, job{key: k, hook: hook, argv: argv, env: env})
	}
	return jobs
}

// notifyState is keepalived's word for the state.
func notifyState(e daemon.HookEvent) string {
	switch {
	case e.To == "INIT" && e.Reason == "shutting down":
		return "STOP"
	case e.To == "INIT":
		return "FAULT"
	}
	return e.To
}

func addrList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func (r *Runner) enqueue(j job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[j.key]
	if w == nil {
		w = &worker{}
		r.workers[j.key] = w
	}
	if len(w.queue) >= maxQueue {
		r.o.Log.Error("carpd: hook queue full; run dropped", "vhid", j.key.VHID, "iface", j.key.Interface, "hook", j.hook, "command", strings.Join(j.argv, " "))
		r.report(j, "dropped", nil, 0, "queue full")
		return
	}
	w.queue = append(w.queue, j)
	r.wg.Add(1)
	if !w.running {
		w.running = true
		go r.work(w)
	}
}

// work runs a vhid's queue, in order, until it is empty.
func (r *Runner) work(w *worker) {
	for {
		r.mu.Lock()
		if len(w.queue) == 0 {
			w.running = false
			r.mu.Unlock()
			return
		}
		j := w.queue[0]
		w.queue[0] = job{}
		w.queue = w.queue[1:]
		r.mu.Unlock()
		r.run(j)
		r.wg.Done()
	}
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// run runs one job with its timeout (here, or in the root hook helper),
// and logs and reports the result.
func (r *Runner) run(j job) {
	r.mu.Lock()
	timeout := r.o.Timeout
	r.mu.Unlock()
	start := time.Now()
	var o Outcome
	if r.helper != "" {
		o = runInHelper(r.helper, Request{VHID: j.key.VHID, Interface: j.key.Interface, Hook: j.hook, Argv: j.argv, Env: carpEnv(j.env)}, timeout)
	} else {
		argv := append(append([]string(nil), r.o.Wrapper...), j.argv...)
		o = Execute(argv, j.env, r.cred, timeout)
	}
	took := time.Since(start)
	log := r.o.Log.With("vhid", j.key.VHID, "iface", j.key.Interface, "hook", j.hook, "command", strings.Join(j.argv, " "), "took", took.Round(time.Millisecond))
	if r.helper != "" {
		log = log.With("via", "hook-helper")
	}
	switch o.Result {
	case ResultOK:
		log.Info("carpd: hook ran", "exit", 0)
		r.report(j, "ok", o.Exit, took, "")
	case ResultTimeout:
		log.Warn("carpd: hook killed at its timeout", "timeout", timeout, "stderr", o.Stderr)
		r.report(j, "timeout", nil, took, o.Stderr)
	case ResultFailed:
		log.Warn("carpd: hook failed", "exit", *o.Exit, "stderr", o.Stderr)
		r.report(j, "failed", o.Exit, took, o.Stderr)
	default: // error, refused
		log.Error("carpd: hook could not run", "err", o.Error)
		r.report(j, "error", nil, took, o.Error)
	}
}

// Results of a run.
const (
	ResultOK      = "ok"      // exit 0
	ResultFailed  = "failed"  // another exit status
	ResultTimeout = "timeout" // killed at the timeout
	ResultError   = "error"   // could not run
	ResultRefused = "refused" // the helper refused the request: nothing ran
)

// Outcome is how a run ended.
type Outcome struct {
	Result string `json:"result"`
	Exit   *int   `json:"exit,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Execute runs argv with env in its own process group (as cred unless
// nil), from /, with stdin and stdout on /dev/null and the first
// maxOutput bytes of stderr kept; at the timeout the whole group is
// killed.
func Execute(argv, env []string, cred *syscall.Credential, timeout time.Duration) Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return execute(ctx, argv, env, cred)
}

// execute runs argv until it ends or ctx is done, when its process group
// is killed (an Outcome with ResultTimeout).
func execute(ctx context.Context, argv, env []string, cred *syscall.Credential) Outcome {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Cancel = func() error {
		// The whole group: a script's children die with it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		code := 0
		return Outcome{Result: ResultOK, Exit: &code}
	case ctx.Err() != nil && cmd.Process != nil:
		return Outcome{Result: ResultTimeout, Stderr: stderr.String()}
	case errors.As(err, &exitErr):
		code := exitErr.ExitCode()
		return Outcome{Result: ResultFailed, Exit: &code, Stderr: stderr.String()}
	}
	return Outcome{Result: ResultError, Error: err.Error()}
}

// carpEnv returns the CARP_* variables of env: what the helper takes from
// carpd (it sets PATH and LANG itself).
func carpEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if strings.HasPrefix(e, "CARP_") {
			out = append(out, e)
		}
	}
	return out
}

func (r *Runner) report(j job, result string, exit *int, took time.Duration, msg string) {
	if r.o.Report == nil {
		return
	}
	r.o.Report(api.Event{
		Type: "hook", VHID: int(j.key.VHID), Interface: j.key.Interface,
		Hook: j.hook, Command: strings.Join(j.argv, " "), Result: result, Exit: exit,
		Duration: took.Round(time.Millisecond).String(), Error: msg,
	})
}

// Wait waits until every queued hook has run, or ctx is done.
func (r *Runner) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ScriptsOf returns the scripts of every vhid of cfg that has hooks (carpd
// and its root hook helper compute them alike).
func ScriptsOf(cfg *config.Config) map[Key]Scripts {
	scripts := map[Key]Scripts{}
	for i := range cfg.VHIDs {
		v := &cfg.VHIDs[i]
		h := cfg.HooksOf(v)
		s := Scripts{
			Devd: h.Devd, Up: h.UpScript, Down: h.DownScript, XParam: h.XParam, Neutral: h.Neutral,
			Notify: h.Notify, NotifyMaster: h.NotifyMaster, NotifyBackup: h.NotifyBackup,
			NotifyFault: h.NotifyFault, NotifyStop: h.NotifyStop, Name: v.Name, Addresses: v.Addresses,
		}
		if len(s.Paths()) > 0 {
			scripts[Key{VHID: v.VHID, Interface: v.Interface}] = s
		}
	}
	return scripts
}
