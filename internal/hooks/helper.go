package hooks

// The root hook helper: how a hook with hook-user = "root" runs while carpd
// itself runs as the unprivileged user carpd.
//
// Why a separate helper started by systemd, and not the other ways:
//
//   - carpd as root: the daemon parses packets from the network all day; a
//     flaw there should cost an attacker the three capabilities carpd
//     holds (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_NICE), not the machine.
//   - privilege separation inside carpd (a root parent forking the
//     unprivileged daemon, as OpenBSD daemons do): carpd would have to be
//     started as root, keep a root process alive for its whole life, and
//     the unit could no longer drop capabilities and set NoNewPrivileges
//     for carpd; the root half would also inherit carpd's sandbox, which
//     is what stops hooks today.
//   - the helper: systemd starts it per connection (carpd-hook.socket,
//     Accept=yes, socket mode 0660 root:carpd) as root under its own unit
//     (carpd-hook@.service) and sandbox. It trusts nothing carpd sends but
//     the choice among what root configured: it reads the configuration
//     itself, as root, and runs a request only when the program is a hook
//     configured there with hook-user = "root" and the arguments are the
//     ones carpd computes for that hook (a vhid's interface, one of its
//     addresses, a state word, ...), or when a configuration registered
//     since boot allowed it (known.go: at its start and after each
//     reload carpd asks the helper to record the file's root hooks, which
//     the helper reads itself; the last MaxKnown stay), so that the down
//     scripts of the configuration carpd runs still run after the file
//     was edited. A carpd taken over can run root's own hooks (those of
//     the file, or of a configuration root wrote since boot) at the wrong
//     time, nothing else. Nothing stays running as root while no hook
//     runs.
//
// The wire format is one JSON line each way on the connection: a Request
// from carpd (at most MaxRequest bytes), then an Outcome from the helper.
// carpd closing the connection (its own deadline) kills the hook's whole
// process group, as the helper's own hook-timeout does.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultHelperSocket is where carpd-hook.socket listens.
const DefaultHelperSocket = "/run/carpd-hook.sock"

// HelperSocketPath is the helper's socket: $CARPD_HOOK_SOCKET, else
// DefaultHelperSocket.
func HelperSocketPath() string {
	if p := os.Getenv("CARPD_HOOK_SOCKET"); p != "" {
		return p
	}
	return DefaultHelperSocket
}

// HelperCommand is carpd's argument that makes it the helper.
const HelperCommand = "hook-helper"

// MaxRequest bounds a request line (and an Outcome line).
const MaxRequest = 64 << 10

// maxEnv bounds the variables of a request.
const maxEnv = 16

// Request asks the helper to run one hook, or (Register) to record the
// root hooks of the configuration file as it is now (see known.go).
type Request struct {
	VHID      uint8    `json:"vhid"`
	Interface string   `json:"iface"`
	Hook      string   `json:"hook"` // devd, upscript, downscript, notify, notify_master, ...
	Argv      []string `json:"argv"`
	Env       []string `json:"env"` // CARP_* only
	Register  bool     `json:"register,omitempty"`
}

// Allowed is what the helper serves a request against.
type Allowed struct {
	// Scripts and HookUser are the configuration file's, as it is now
	// (ScriptsOf); LoadErr says why the file could not be read.
	Scripts  map[Key]Scripts
	HookUser string
	LoadErr  error
	// Known are the root hooks of the configurations registered since
	// boot, oldest first.
	Known []KnownConfig
	// Register records the file's root hooks (a register request).
	Register func() error
}

// Validate returns why req is refused, or nil: a request runs when the
// file as it is now allows it, or any configuration registered since boot
// does.
func (a Allowed) Validate(req Request) error {
	var err error
	if a.LoadErr != nil {
		err = fmt.Errorf("the helper cannot read the configuration: %w", a.LoadErr)
	} else if err = Validate(req, a.Scripts, a.HookUser); err == nil {
		return nil
	}
	for i := len(a.Known) - 1; i >= 0; i-- {
		if Validate(req, a.Known[i].scripts(), "root") == nil {
			return nil
		}
	}
	if len(a.Known) > 0 {
		err = fmt.Errorf("%w; nor does any of the %d configurations registered since boot allow it", err, len(a.Known))
	}
	return err
}

// register serves a register request.
func (a Allowed) register(req Request) error {
	switch {
	case req.Hook != "" || len(req.Argv) > 0 || len(req.Env) > 0 || req.VHID != 0 || req.Interface != "":
		return errors.New("a register request carries nothing else")
	case a.LoadErr != nil:
		return fmt.Errorf("the helper cannot read the configuration: %w", a.LoadErr)
	case !IsRoot(a.HookUser):
		return errors.New(`the configuration does not set hook-user = "root": nothing to register`)
	case a.Register == nil:
		return errors.New("this helper records nothing")
	}
	return a.Register()
}

// helperEnv names the variables a request may set.
var helperEnv = []string{"CARP_VHID", "CARP_IFACE", "CARP_STATE", "CARP_PREVIOUS", "CARP_REASON",
	"CARP_ADDRESSES", "CARP_PROTO", "CARP_PRIORITY"}

// Validate checks req against the hooks root configured: scripts (as
// ScriptsOf gives them) and hookUser (the configuration's hook-user). It
// returns why the request is refused, or nil.
func Validate(req Request, scripts map[Key]Scripts, hookUser string) error {
	if !IsRoot(hookUser) {
		return errors.New(`the configuration does not set hook-user = "root"`)
	}
	k := Key{req.VHID, req.Interface}
	s, ok := scripts[k]
	if !ok {
		return fmt.Errorf("no hook is configured for %s", k)
	}
	if len(req.Env) > maxEnv {
		return fmt.Errorf("%d environment variables, at most %d", len(req.Env), maxEnv)
	}
	for _, e := range req.Env {
		name, val, ok := strings.Cut(e, "=")
		if !ok || !slices.Contains(helperEnv, name) || strings.ContainsRune(val, 0) {
			return fmt.Errorf("environment variable %q is not one carpd sets", name)
		}
	}
	if err := validArgv(req, k, s); err != nil {
		return fmt.Errorf("%s of %s: %w", req.Hook, k, err)
	}
	return nil
}

// validArgv checks that req.Argv is one of the calls the runner makes of
// hook req.Hook of vhid k.
func validArgv(req Request, k Key, s Scripts) error {
	a := req.Argv
	if len(a) == 0 {
		return errors.New("no command")
	}
	want := func(path string, n int) error {
		switch {
		case path == "":
			return errors.New("not configured")
		case a[0] != path:
			return fmt.Errorf("%s is not the configured %s", a[0], path)
		case len(a) != n:
			return fmt.Errorf("%d arguments, want %d", len(a)-1, n-1)
		}
		return nil
	}
	states := []string{"MASTER", "BACKUP", "INIT"}
	switch req.Hook {
	case "devd":
		if err := want(s.Devd, 3); err != nil {
			return err
		}
		if a[1] != k.String() || !slices.Contains(states, a[2]) {
			return fmt.Errorf("arguments %q, want %s and a state", a[1:], k)
		}
	case "upscript", "downscript":
		path := s.Up
		if req.Hook == "downscript" {
			path = s.Down
		}
		n := 3
		if s.XParam != "" {
			n = 4
		}
		if err := want(path, n); err != nil {
			return err
		}
		if a[1] != k.Interface || !hasAddr(s, a[2]) {
			return fmt.Errorf("arguments %q, want %s and one of its addresses", a[1:3], k.Interface)
		}
		if n == 4 && a[3] != s.XParam {
			return errors.New("xparam is not the configured one")
		}
	case "notify":
		if err := want(s.Notify, 5); err != nil {
			return err
		}
		name := cmp.Or(s.Name, k.String())
		prio, err := strconv.Atoi(a[4])
		if a[1] != "INSTANCE" || a[2] != name || !slices.Contains([]string{"MASTER", "BACKUP", "FAULT", "STOP"}, a[3]) ||
			err != nil || prio < 0 || prio > 255 {
			return fmt.Errorf("arguments %q, want INSTANCE %s STATE PRIORITY", a[1:], name)
		}
	case "notify_master", "notify_backup", "notify_fault", "notify_stop":
		argv, _ := s.notifyFor(strings.ToUpper(strings.TrimPrefix(req.Hook, "notify_")))
		if len(argv) == 0 {
			return errors.New("not configured")
		}
		if !slices.Equal(a, argv) {
			return fmt.Errorf("%q is not the configured command", a)
		}
	default:
		return fmt.Errorf("unknown hook %q", req.Hook)
	}
	return nil
}

func hasAddr(s Scripts, a string) bool {
	for _, p := range s.Addresses {
		if p.Addr().String() == a {
			return true
		}
	}
	return false
}

// IsRoot reports whether a hook-user value names root.
func IsRoot(user string) bool { return user == "root" || user == "0" }

// ReadRequest reads one request line from r: at most MaxRequest bytes,
// a JSON object with no unknown field.
func ReadRequest(r *bufio.Reader) (Request, error) {
	var req Request
	line, err := readLine(r)
	if err != nil {
		return req, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("malformed request: %w", err)
	}
	if dec.More() {
		return req, errors.New("malformed request: more than one JSON value")
	}
	return req, nil
}

// readLine reads a line of at most MaxRequest bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxRequest {
			return nil, fmt.Errorf("request longer than %d bytes", MaxRequest)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, errors.New("malformed request: no end of line")
		default:
			return nil, err
		}
	}
}

// Serve serves one connection of the helper: it reads a request from
// conn; a register request records the file's root hooks (a.Register);
// a hook is refused unless a.Validate passes, else run as the helper's
// user (root) with timeout. It writes the Outcome (ok for a register
// done). carpd closing conn while the hook runs kills it. It returns the
// outcome, for the helper's log.
func Serve(conn io.ReadWriter, a Allowed, timeout time.Duration) (Request, Outcome) {
	br := bufio.NewReaderSize(conn, 4096)
	req, err := ReadRequest(br)
	var o Outcome
	switch {
	case err != nil:
		o = Outcome{Result: ResultRefused, Error: "refused: " + err.Error()}
	case req.Register:
		o = Outcome{Result: ResultOK}
		if err := a.register(req); err != nil {
			o = Outcome{Result: ResultRefused, Error: "refused: " + err.Error()}
		}
	default:
		if err := a.Validate(req); err != nil {
			o = Outcome{Result: ResultRefused, Error: "refused: " + err.Error()}
			break
		}
		if err := CheckScriptAs(req.Argv[0], 0); err != nil {
			// Root runs it: only root may be able to change it.
			o = Outcome{Result: ResultRefused, Error: "refused: " + err.Error()}
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			// Anything more from carpd, or its end: stop the hook.
			_, _ = br.ReadByte()
			cancel()
		}()
		env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, req.Env...)
		o = execute(ctx, req.Argv, env, nil)
		cancel()
	}
	data, _ := json.Marshal(o)
	_, _ = conn.Write(append(data, '\n'))
	return req, o
}

// Register tells the root hook helper that the configuration file as it
// is now is in force (carpd's start, a reload that succeeded), so that
// its root hooks stay runnable after the file changes. Nothing to do when
// hooks do not run in the helper.
func (r *Runner) Register() error {
	if r.helper == "" {
		return nil
	}
	return registerWithHelper(r.helper)
}

// RegisterTimeout bounds a register request.
const RegisterTimeout = 5 * time.Second

// registerWithHelper asks the helper at socket to record the root hooks
// of the configuration file as it is now.
func registerWithHelper(socket string) error {
	o := exchange(socket, Request{Register: true}, RegisterTimeout)
	if o.Result != ResultOK {
		return fmt.Errorf("%s: %s", o.Result, o.Error)
	}
	return nil
}

// runInHelper asks the helper at socket to run req and waits for its
// outcome, at most timeout plus a little (the helper enforces its own
// hook-timeout and answers first); then it closes the connection, which
// makes the helper kill the hook.
func runInHelper(socket string, req Request, timeout time.Duration) Outcome {
	o := exchange(socket, req, timeout)
	switch {
	case o.Result == ResultRefused:
		o.Result = ResultError
	case (o.Result == ResultOK || o.Result == ResultFailed) && o.Exit == nil:
		o = Outcome{Result: ResultError, Error: "the root hook helper's answer has no exit status"}
	}
	return o
}

// exchange sends req to the helper at socket and returns its answer, at
// most timeout plus a little later.
func exchange(socket string, req Request, timeout time.Duration) Outcome {
	deadline := time.Now().Add(timeout + 2*time.Second)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("unix", socket)
	if err != nil {
		return Outcome{Result: ResultError, Error: fmt.Sprintf("the root hook helper (hook-user = \"root\"): %v", err)}
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	data, err := json.Marshal(req)
	if err != nil {
		return Outcome{Result: ResultError, Error: err.Error()}
	}
	if len(data) >= MaxRequest {
		return Outcome{Result: ResultError, Error: fmt.Sprintf("request longer than %d bytes", MaxRequest)}
	}
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return Outcome{Result: ResultError, Error: fmt.Sprintf("the root hook helper: %v", err)}
	}
	line, err := readLine(bufio.NewReader(conn))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return Outcome{Result: ResultTimeout, Error: "no answer from the root hook helper"}
	case err != nil:
		return Outcome{Result: ResultError, Error: fmt.Sprintf("the root hook helper: %v", err)}
	}
	var o Outcome
	if err := json.Unmarshal(line, &o); err != nil {
		return Outcome{Result: ResultError, Error: fmt.Sprintf("the root hook helper's answer: %v", err)}
	}
	return o
}
