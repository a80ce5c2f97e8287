package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/daemon"
)

// fakeDaemon records the calls the control API makes and answers each with
// the outcome the fuzzer chose.
type fakeDaemon struct {
	outcome error // nil: success
	calls   []string
	args    any // the arguments of the last mutating call
	hangUp  context.CancelFunc
}

func (d *fakeDaemon) Status(context.Context) (api.Status, error) {
	d.calls = append(d.calls, "Status")
	return api.Status{Version: api.Version}, d.outcome
}

func (d *fakeDaemon) Stats(context.Context) (api.Stats, error) {
	d.calls = append(d.calls, "Stats")
	return api.Stats{Version: api.Version}, d.outcome
}

func (d *fakeDaemon) Force(_ context.Context, vhid int, iface, state string) (api.Status, error) {
	d.calls = append(d.calls, "Force")
	d.args = api.StateRequest{VHID: vhid, Interface: iface, State: state}
	return api.Status{Version: api.Version}, d.outcome
}

func (d *fakeDaemon) DemoteOperator(_ context.Context, req api.DemoteRequest) (api.Status, error) {
	d.calls = append(d.calls, "DemoteOperator")
	d.args = req
	return api.Status{Version: api.Version}, d.outcome
}

func (d *fakeDaemon) SetLogLevel(_ context.Context, level string) error {
	d.calls = append(d.calls, "SetLogLevel")
	d.args = api.LogLevelRequest{Level: level}
	return d.outcome
}

// Subscribe hands out a subscription with no events, and the client hangs
// up as soon as it has one, so that the stream ends.
func (d *fakeDaemon) Subscribe(context.Context) (*daemon.Sub, error) {
	d.calls = append(d.calls, "Subscribe")
	if d.outcome != nil {
		return nil, d.outcome
	}
	d.hangUp()
	return &daemon.Sub{}, nil
}

func (d *fakeDaemon) Unsubscribe(*daemon.Sub) { d.calls = append(d.calls, "Unsubscribe") }

func (d *fakeDaemon) ReloadConfig(context.Context) (api.ReloadResult, error) {
	d.calls = append(d.calls, "ReloadConfig")
	d.args = struct{}{}
	return api.ReloadResult{Version: api.Version}, d.outcome
}

// The outcomes the fake daemon answers with, and the status each calls for.
var fuzzOutcomes = []struct {
	err    error
	status int
}{
	{nil, http.StatusOK},
	{fmt.Errorf("%w 100 on eth0", daemon.ErrUnknownVHID), http.StatusNotFound},
	{fmt.Errorf("%w: state must be master or backup", daemon.ErrBadRequest), http.StatusBadRequest},
	{daemon.ErrBadRequest, http.StatusBadRequest},
	{daemon.ErrNotRunning, http.StatusServiceUnavailable},
	{fmt.Errorf("%w: 64 are reading", daemon.ErrTooManyReaders), http.StatusTooManyRequests},
	{context.DeadlineExceeded, http.StatusServiceUnavailable},
	{errors.New("netlink: no buffer space"), http.StatusInternalServerError},
}

// The peers a request may come from.
const (
	peerRoot    = iota // uid 0: reads and writes
	peerSelf           // carpd's own uid: reads and writes
	peerMember         // a member of the control group: reads only
	peerOther          // anyone else: nothing
	peerUnknown        // no credentials (not a unix socket): nothing
	numPeers
)

const fuzzGroup = 4242

func fuzzCred(peer uint8) cred {
	switch peer % numPeers {
	case peerRoot:
		return cred{ok: true, uid: 0, gid: 0}
	case peerSelf:
		return cred{ok: true, uid: os.Getuid(), gid: os.Getgid()}
	case peerMember:
		return cred{ok: true, uid: 4243, gid: fuzzGroup}
	case peerOther:
		return cred{ok: true, uid: 4244, gid: 4244}
	}
	return cred{}
}

// endpoint is what the API does at one path.
type endpoint struct {
	method string
	write  bool
	// call is the daemon method the request ends in; "" for version.
	call string
	// req is a new value of the body's type; nil for the endpoints that
	// take none.
	req func() any
}

var endpoints = map[string]endpoint{
	"/v1/status":    {method: http.MethodGet, call: "Status"},
	"/v1/stats":     {method: http.MethodGet, call: "Stats"},
	"/v1/version":   {method: http.MethodGet},
	"/v1/events":    {method: http.MethodGet, call: "Subscribe"},
	"/v1/state":     {method: http.MethodPost, write: true, call: "Force", req: func() any { return new(api.StateRequest) }},
	"/v1/demote":    {method: http.MethodPost, write: true, call: "DemoteOperator", req: func() any { return new(api.DemoteRequest) }},
	"/v1/log-level": {method: http.MethodPost, write: true, call: "SetLogLevel", req: func() any { return new(api.LogLevelRequest) }},
	"/v1/reload":    {method: http.MethodPost, write: true, call: "ReloadConfig"},
}

var mutating = map[string]bool{"Force": true, "DemoteOperator": true, "SetLogLevel": true, "ReloadConfig": true}

// wantBody reports whether body is a request the endpoint accepts, and
// what it decodes to: exactly one JSON document of the endpoint's type
// with no unknown field, then only JSON white space, at most maxBody
// bytes; for reload, nothing or {} (space around allowed). tooLarge is
// true when the body is over the limit.
func wantBody(ep endpoint, body []byte) (v any, ok, tooLarge bool) {
	if len(body) > maxBody {
		return nil, false, true
	}
	if ep.req == nil {
		t := strings.TrimSpace(string(body))
		return struct{}{}, t == "" || t == "{}", false
	}
	v = ep.req()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, false, false
	}
	if rest := body[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, false, false
	}
	return reflect.ValueOf(v).Elem().Interface(), true, false
}

// FuzzControlRequest drives the control API's handler with arbitrary
// requests (method, target, body) from each kind of peer, the fake daemon
// answering with each kind of outcome. Invariants:
//   - no panic; the status is one the API documents (200, 400, 403, 404,
//     405, 413, 500, 503), or ServeMux's own 307 to the cleaned path for
//     a target that is not in canonical form ("/v1/./state");
//   - any other reply than 200 and that redirect is an api.Error
//     document with a message;
//   - a 200 reply is a JSON document (NDJSON for /v1/events);
//   - a daemon method that changes anything (Force, DemoteOperator,
//     SetLogLevel, ReloadConfig) is called only for a POST from root or
//     carpd's user to its endpoint, with a body the endpoint accepts, and
//     with exactly the arguments the body holds; a request that fails any
//     of those is answered 405, 403, 413 or 400 and calls nothing;
//   - a request to a canonical endpoint path gets exactly the answer the
//     rules above call for.
//
// Requests net/http answers itself (an unparseable request line or header,
// the target "*") are the library's, not the API's, and are skipped.
func FuzzControlRequest(f *testing.F) {
	f.Add("GET", "/v1/status", []byte(""), uint8(peerRoot), uint8(0), true)
	f.Add("GET", "/v1/events", []byte(""), uint8(peerMember), uint8(0), true)
	f.Add("POST", "/v1/state", []byte(`{"vhid":100,"state":"master"}`), uint8(peerRoot), uint8(0), false)
	f.Add("POST", "/v1/state", []byte(`{"vhid":100,"iface":"eth0","state":"backup"} `), uint8(peerSelf), uint8(1), false)
	f.Add("POST", "/v1/demote", []byte(`{"delta":240,"reason":"maintenance","persist":true}`), uint8(peerRoot), uint8(0), false)
	f.Add("POST", "/v1/demote", []byte(`{"clear":true}`), uint8(peerMember), uint8(0), true)
	f.Add("POST", "/v1/log-level", []byte(`{"level":"DEBUG"}`), uint8(peerRoot), uint8(2), false)
	f.Add("POST", "/v1/reload", []byte("{}\n"), uint8(peerRoot), uint8(4), false)
	f.Add("PUT", "/v1/reload", []byte(""), uint8(peerOther), uint8(0), false)
	f.Add("POST", "/v1/state", []byte(`{"vhid":100,"state":"master","evil":1}`), uint8(peerRoot), uint8(0), false)
	f.Add("POST", "/v1/state", []byte(`{"vhid":100}]`), uint8(peerRoot), uint8(0), false)
	f.Add("POST", "/v1/./state", []byte(`{"vhid":1}`), uint8(peerRoot), uint8(0), false)
	f.Fuzz(func(t *testing.T, method, target string, body []byte, peer, outcome uint8, group bool) {
		if len(body) > maxBody+1024 {
			return // no need to go further over the limit
		}
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: carpd\r\nContent-Length: %d\r\n\r\n", method, target, len(body))
		r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(raw), bytes.NewReader(body))))
		if err != nil || r.Method != method || r.RequestURI == "*" {
			return // net/http answers it, not the API
		}
		oc := fuzzOutcomes[int(outcome)%len(fuzzOutcomes)]
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := &fakeDaemon{outcome: oc.err, hangUp: cancel}
		s := &Server{gid: -1, log: slog.New(slog.DiscardHandler), d: d}
		if group {
			s.gid, s.group = fuzzGroup, "carpd"
		}
		c := fuzzCred(peer)
		r = r.WithContext(context.WithValue(ctx, credKey{}, c))
		w := httptest.NewRecorder()
		s.handler().ServeHTTP(w, r)
		res := w.Result()
		got := w.Body.Bytes()

		// The answer is one the API documents, and its body fits.
		switch res.StatusCode {
		case http.StatusOK:
			checkOK(t, r.URL.Path, got)
		case http.StatusTemporaryRedirect:
			if len(d.calls) > 0 {
				t.Fatalf("%s %q: redirect after daemon calls %v", method, target, d.calls)
			}
			checkRedirect(t, r, res)
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusRequestEntityTooLarge, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests:
			var e api.Error
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil || e.Error == "" || e.Version != api.Version {
				t.Fatalf("%s %q: status %d with body %q: want an api.Error with a message", method, target, res.StatusCode, got)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %q: error with Content-Type %q", method, target, ct)
			}
		default:
			t.Fatalf("%s %q: status %d, not one the API answers", method, target, res.StatusCode)
		}

		// A change is made only by a request that may make it.
		var changed string
		for _, call := range d.calls {
			if mutating[call] {
				if changed != "" {
					t.Fatalf("%s %q: two changes: %v", method, target, d.calls)
				}
				changed = call
			}
		}
		ep, known := endpoints[r.URL.Path]
		if changed != "" {
			want, ok, _ := wantBody(ep, body)
			switch {
			case !known || ep.call != changed:
				t.Fatalf("%s %q: %s called for path %q", method, target, changed, r.URL.Path)
			case r.Method != http.MethodPost:
				t.Fatalf("%s %q: %s called for method %q", method, target, changed, r.Method)
			case !canWrite(c):
				t.Fatalf("%s %q: %s called for peer %+v", method, target, changed, c)
			case !ok:
				t.Fatalf("%s %q: %s called for a body the endpoint refuses: %q", method, target, changed, body)
			case !reflect.DeepEqual(d.args, want):
				t.Fatalf("%s %q: %s called with %#v, the body says %#v", method, target, changed, d.args, want)
			}
		}
		if len(d.calls) > 0 && res.StatusCode != oc.status {
			t.Fatalf("%s %q: the daemon answered %v (calls %v) and the API %d, want %d", method, target, oc.err, d.calls, res.StatusCode, oc.status)
		}

		// At a canonical endpoint path, the exact answer; elsewhere 404
		// (or the redirect checked above).
		if !known || r.URL.RawPath != "" {
			if len(d.calls) == 0 && res.StatusCode == http.StatusOK && r.URL.Path != "/v1/version" {
				t.Fatalf("%s %q: 200 without asking the daemon", method, target)
			}
			if !known && len(d.calls) > 0 {
				t.Fatalf("%s %q: daemon calls %v for an unknown path", method, target, d.calls)
			}
			return
		}
		wantStatus, wantCalls := expect(ep, r.Method, c, s.gid, body, oc.status)
		if wantStatus == http.StatusRequestEntityTooLarge && res.StatusCode == http.StatusBadRequest {
			// Over the limit and malformed before it: either answer.
			wantStatus = http.StatusBadRequest
		}
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %q from %+v (group %v), body %q: status %d, want %d", method, target, c, group, body, res.StatusCode, wantStatus)
		}
		if !sameCalls(d.calls, wantCalls) {
			t.Fatalf("%s %q from %+v (group %v), body %q: daemon calls %v, want %v", method, target, c, group, body, d.calls, wantCalls)
		}
		if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") != ep.method {
			t.Errorf("%s %q: 405 with Allow %q, want %q", method, target, res.Header.Get("Allow"), ep.method)
		}
	})
}

// expect is the status and daemon calls the rules call for at endpoint ep.
func expect(ep endpoint, method string, c cred, gid int, body []byte, daemonStatus int) (int, []string) {
	if method != ep.method {
		return http.StatusMethodNotAllowed, nil
	}
	mayRead := canWrite(c) || (gid >= 0 && c.ok && c.gid == gid)
	if ep.write && !canWrite(c) || !ep.write && !mayRead {
		return http.StatusForbidden, nil
	}
	if ep.write {
		_, ok, tooLarge := wantBody(ep, body)
		switch {
		case tooLarge:
			return http.StatusRequestEntityTooLarge, nil
		case !ok:
			return http.StatusBadRequest, nil
		}
	}
	switch ep.call {
	case "":
		return http.StatusOK, nil
	case "Subscribe":
		if daemonStatus == http.StatusOK {
			return http.StatusOK, []string{"Subscribe", "Unsubscribe"}
		}
	}
	return daemonStatus, []string{ep.call}
}

func sameCalls(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// checkOK checks the body of a 200 answer: one JSON document, or NDJSON
// lines for the event stream.
func checkOK(t *testing.T, p string, body []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	n := 0
	for {
		var v map[string]any
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: 200 with body %q: %v", p, body, err)
		}
		n++
	}
	if p != "/v1/events" && n != 1 {
		t.Fatalf("%s: 200 with %d JSON documents: %q", p, n, body)
	}
}

// checkRedirect checks net/http's redirect of a path that is not in
// canonical form (ServeMux cleans "." and ".." elements and repeated
// slashes): only for such a path, and to a path in canonical form.
func checkRedirect(t *testing.T, r *http.Request, res *http.Response) {
	t.Helper()
	if p := r.URL.EscapedPath(); canonical(p) {
		t.Fatalf("%s %q: redirect for a path in canonical form", r.Method, r.URL)
	}
	loc, err := res.Location()
	if err != nil || !canonical(loc.EscapedPath()) {
		t.Fatalf("%s %q: redirect to %v (%v), want a path in canonical form", r.Method, r.URL, loc, err)
	}
}

// canonical reports whether p is what ServeMux leaves as it is.
func canonical(p string) bool {
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// TestUnknownPeerReadsNothing checks that a peer without credentials is
// refused even when the control group is gid 0, which the zero cred's gid
// would otherwise match.
func TestUnknownPeerReadsNothing(t *testing.T) {
	d := &fakeDaemon{hangUp: func() {}}
	s := &Server{gid: 0, group: "root", log: slog.New(slog.DiscardHandler), d: d}
	r := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	r = r.WithContext(context.WithValue(r.Context(), credKey{}, cred{}))
	w := httptest.NewRecorder()
	s.handler().ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || len(d.calls) != 0 {
		t.Errorf("GET /v1/status without credentials, control group gid 0: status %d, daemon calls %v; want 403 and none", w.Code, d.calls)
	}
}
