// Package control is carpd's control API: a small HTTP/JSON server on a
// unix socket (tailscale's LocalAPI is the model: net/http over a unix
// listener, so `curl --unix-socket` works). The client carpctl uses is
// internal/control/client, a package of its own; the documents are
// internal/api's.
//
// Access is decided by the peer's credentials (SO_PEERCRED): root and
// carpd's own user may read and change; members of the control group may
// only read (status, stats, events, version); everyone else is refused.
// The socket file itself is 0600, or 0660 with the control group as its
// group, so that others cannot even connect.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/version"
)

// Daemon is what the control API serves (*daemon.Daemon). Status and
// Stats read what the event loop last published and never wait for it;
// Subscribe refuses a reader beyond the cap (daemon.ErrTooManyReaders,
// 429).
type Daemon interface {
	Status(ctx context.Context) (api.Status, error)
	Stats(ctx context.Context) (api.Stats, error)
	Force(ctx context.Context, vhid int, iface, state string) (api.Status, error)
	DemoteOperator(ctx context.Context, req api.DemoteRequest) (api.Status, error)
	SetLogLevel(ctx context.Context, level string) error
	Subscribe(ctx context.Context) (*daemon.Sub, error)
	Unsubscribe(*daemon.Sub)
	// ReloadConfig re-reads the configuration and applies it.
	ReloadConfig(ctx context.Context) (api.ReloadResult, error)
}

// Limits of a request.
const (
	maxBody        = 64 << 10
	maxHeader      = 16 << 10
	requestTimeout = 10 * time.Second
	// eventWriteTimeout drops an event reader whose socket stays full.
	eventWriteTimeout = 10 * time.Second

	// A client that holds a half-written request open is cut off: its
	// header must arrive within headerTimeout, the whole request (the
	// body too) within readTimeout, and its reply be taken within
	// writeTimeout (the daemon's part, requestTimeout, included). A
	// connection kept open between requests is closed after idleTimeout.
	// The event stream lifts the read and write limits for itself (see
	// events): it lasts as long as its reader.
	headerTimeout = 5 * time.Second
	readTimeout   = 10 * time.Second
	writeTimeout  = readTimeout + requestTimeout + 10*time.Second
	idleTimeout   = 60 * time.Second
)

// Server serves the control API on a unix socket.
type Server struct {
	path  string
	gid   int // the control group; -1: none
	group string
	ln    net.Listener
	srv   *http.Server
	d     Daemon
	log   *slog.Logger
}

// Listen creates the control socket at path (its directory too), owned by
// carpd's user, mode 0600, or 0660 with group as its group. A socket left
// behind by a carpd that is gone is replaced; one that answers is not.
func Listen(path, group string, log *slog.Logger) (*Server, error) {
	s := &Server{path: path, gid: -1, group: group, log: log}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("control-group %q: %w", group, err)
		}
		if s.gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("control-group %q: gid %q", group, g.Gid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another carpd answers on it (give each carpd its own --control)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: removing the stale %s: %w", path, err)
		}
	}
	// Created with no access for anyone, then opened up as configured.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mode := os.FileMode(0o600)
	if s.gid >= 0 {
		if err := os.Chown(path, -1, s.gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket: chgrp %s %s: %w", group, path, err)
		}
		mode = 0o660
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s.ln = ln
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve serves d until Close. It returns nil after Close.
func (s *Server) Serve(d Daemon) error {
	s.d = d
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, credKey{}, peerCred(c))
		},
	}
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// handler routes the API's endpoints to s.d. A request's peer credentials
// are a cred under credKey in its context; without one it may do nothing.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", s.read(s.status))
	mux.HandleFunc("/v1/stats", s.read(s.stats))
	mux.HandleFunc("/v1/version", s.read(s.version))
	mux.HandleFunc("/v1/events", s.read(s.events))
	mux.HandleFunc("/v1/state", s.write(s.state))
	mux.HandleFunc("/v1/demote", s.write(s.demote))
	mux.HandleFunc("/v1/log-level", s.write(s.logLevel))
	mux.HandleFunc("/v1/reload", s.write(s.reload))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s (see /v1/status, /v1/stats, /v1/events, /v1/version, /v1/state, /v1/demote, /v1/log-level, /v1/reload)", r.URL.Path))
	})
	return mux
}

// Close stops serving, ends the event streams and removes the socket.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
	} else {
		err = s.ln.Close()
	}
	_ = os.Remove(s.path)
	return err
}

type credKey struct{}

// cred is the peer of a connection; ok is false when unknown.
type cred struct {
	ok       bool
	uid, gid int
	pid      int
}

func peerCred(c net.Conn) cred {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return cred{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return cred{}
	}
	var cr cred
	_ = raw.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			cr = cred{ok: true, uid: int(u.Uid), gid: int(u.Gid), pid: int(u.Pid)}
		}
	})
	return cr
}

// inGroup reports whether the peer is a member of gid: its primary group,
// or one of the supplementary groups of its process.
func (c cred) inGroup(gid int) bool {
	if gid < 0 || !c.ok {
		return false
	}
	if c.gid == gid {
		return true
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		for _, g := range strings.Fields(rest) {
			if n, err := strconv.Atoi(g); err == nil && n == gid {
				return true
			}
		}
	}
	return false
}

// canWrite reports whether the peer may change carpd's state.
func canWrite(c cred) bool { return c.ok && (c.uid == 0 || c.uid == os.Getuid()) }

func (s *Server) refuse(w http.ResponseWriter, c cred, want string) {
	who := "root and carpd's user"
	if s.gid >= 0 {
		who += fmt.Sprintf("; members of %s may only read", s.group)
	}
	uid := "an unknown user"
	if c.ok {
		uid = "uid " + strconv.Itoa(c.uid)
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: %s may not %s (allowed: %s)", uid, want, who))
}

// read allows GET for the peers that may read.
func (s *Server) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		c, _ := r.Context().Value(credKey{}).(cred)
		if !canWrite(c) && !c.inGroup(s.gid) {
			s.refuse(w, c, "read carpd's state")
			return
		}
		h(w, r)
	}
}

// write allows POST for the peers that may change the state.
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		c, _ := r.Context().Value(credKey{}).(cred)
		if !canWrite(c) {
			s.refuse(w, c, "change carpd's state")
			return
		}
		h(w, r)
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	st, err := s.d.Status(ctx)
	reply(w, st, err)
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	st, err := s.d.Stats(ctx)
	reply(w, st, err)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	reply(w, api.VersionInfo{Version: api.Version, Carpd: version.String(), GoVersion: version.Go()}, nil)
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	var req api.StateRequest
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	st, err := s.d.Force(ctx, req.VHID, req.Interface, req.State)
	reply(w, st, err)
}

func (s *Server) demote(w http.ResponseWriter, r *http.Request) {
	var req api.DemoteRequest
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	st, err := s.d.DemoteOperator(ctx, req)
	reply(w, st, err)
}

// reload re-reads the configuration; an empty body or {} is the request.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	data, err := io.ReadAll(body)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		return
	}
	if t := strings.TrimSpace(string(data)); t != "" && t != "{}" {
		writeError(w, http.StatusBadRequest, "malformed request: the reload takes no parameters")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	res, err := s.d.ReloadConfig(ctx)
	reply(w, res, err)
}

func (s *Server) logLevel(w http.ResponseWriter, r *http.Request) {
	var req api.LogLevelRequest
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	err := s.d.SetLogLevel(ctx, req.Level)
	reply(w, api.LogLevelRequest{Level: strings.ToLower(req.Level)}, err)
}

// events streams the event stream as JSON lines, flushed one by one. A
// reader whose socket stays full for eventWriteTimeout is dropped, as is
// one the daemon dropped for falling behind: its last line is
// {"type":"lagged"}. The stream is not bound by the server's read
// timeout, which would end it (and cancel its context) once past: the
// request, a GET, has been read whole, and what the reader may still send
// is only watched for its hanging up.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	sub, err := s.d.Subscribe(ctx)
	cancel()
	if err != nil {
		reply(w, nil, err)
		return
	}
	defer s.d.Unsubscribe(sub)
	_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(e api.Event) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		return enc.Encode(e) == nil && rc.Flush() == nil
	}
	if rc.Flush() != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					send(api.Event{Version: api.Version, Time: time.Now(), Type: "lagged"})
				}
				return
			}
			if !send(e) {
				return
			}
		}
	}
}

// decode reads a JSON request body strictly; on error it answers 400 and
// returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Only white space may follow (dec.More is not enough: it is
		// false before a stray ']' or '}').
		var mbe *http.MaxBytesError
		if _, terr := dec.Token(); errors.As(terr, &mbe) {
			err = terr
		} else if terr != io.EOF {
			err = errors.New("data after the JSON document")
		}
	}
	if err == nil {
		if _, rerr := io.Copy(io.Discard, body); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
			return false
		}
		writeError(w, http.StatusBadRequest, "malformed request: "+err.Error())
		return false
	}
	return true
}

// reply writes v as JSON, or err with the status it calls for.
func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	case errors.Is(err, daemon.ErrUnknownVHID):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, daemon.ErrBadRequest):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), daemon.ErrBadRequest.Error()+": "))
	case errors.Is(err, daemon.ErrTooManyReaders):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, daemon.ErrNotRunning), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Error{Version: api.Version, Error: msg})
}
