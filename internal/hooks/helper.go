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
//     addresses, a state word, ...). A carpd taken over can run root's
//     own hooks at the wrong time, nothing else. Nothing stays running as
//     root while no hook runs.
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

// Request asks the helper to run one hook.
type Request struct {
	VHID      uint8    `json:"vhid"`
	Interface string   `json:"iface"`
	Hook      string   `json:"hook"` // devd, upscript, downscript, notify, notify_master, ...
	Argv      []string `json:"argv"`
	Env       []string `json:"env"` // CARP_* only
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
// conn, refuses it unless Validate passes against scripts and hookUser,
// runs it as the helper's user (root) with timeout, and writes the
// Outcome. carpd closing conn while the hook runs kills it. It returns
// the outcome, for the helper's log.
func Serve(conn io.ReadWriter, scripts map[Key]Scripts, hookUser string, timeout time.Duration) (Request, Outcome) {
	br := bufio.NewReaderSize(conn, 4096)
	req, err := ReadRequest(br)
	var o Outcome
	switch {
	case err != nil:
		o = Outcome{Result: ResultRefused, Error: "refused: " + err.Error()}
	default:
		if err := Validate(req, scripts, hookUser); err != nil {
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

// Refuse answers the request on conn with a refusal for err, running
// nothing (the helper could not read its configuration).
func Refuse(conn io.ReadWriter, err error) Request {
	req, _ := ReadRequest(bufio.NewReaderSize(conn, 4096))
	data, _ := json.Marshal(Outcome{Result: ResultRefused, Error: "refused: " + err.Error()})
	_, _ = conn.Write(append(data, '\n'))
	return req
}

// runInHelper asks the helper at socket to run req and waits for its
// outcome, at most timeout plus a little (the helper enforces its own
// hook-timeout and answers first); then it closes the connection, which
// makes the helper kill the hook.
func runInHelper(socket string, req Request, timeout time.Duration) Outcome {
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
	switch {
	case o.Result == ResultRefused:
		o.Result = ResultError
	case (o.Result == ResultOK || o.Result == ResultFailed) && o.Exit == nil:
		o = Outcome{Result: ResultError, Error: "the root hook helper's answer has no exit status"}
	}
	return o
}
