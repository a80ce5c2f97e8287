// Package client is carpctl's side of carpd's control API: it speaks the
// HTTP/JSON protocol of internal/control's server over the unix socket and
// depends on the documents (internal/api) alone, so that carpctl does not
// link the daemon, the configuration, the protocol machines or TOML
// (cmd/carpctl's deps_test.go holds it to that).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/carpd/carpd/internal/api"
)

// DefaultPath is the control socket's default path (carpd.toml's control).
const DefaultPath = "/run/carpd/carpd.sock"

// The client's errors, for carpctl's exit codes.
var (
	// ErrNotRunning: no carpd answers on the socket.
	ErrNotRunning = errors.New("carpd is not running")
	// ErrPermission: the socket or carpd refused this user.
	ErrPermission = errors.New("permission denied")
)

// RequestError is an error carpd answered a request with.
type RequestError struct {
	Status int // the HTTP status
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

// Client talks to carpd's control socket.
type Client struct {
	path string
	hc   *http.Client
}

// New returns a client of the socket at path.
func New(path string) *Client {
	d := net.Dialer{}
	return &Client{path: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}}}
}

// Status returns the state of every vhid.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Stats returns the counters.
func (c *Client) Stats(ctx context.Context) (api.Stats, error) {
	var st api.Stats
	return st, c.do(ctx, http.MethodGet, "/v1/stats", nil, &st)
}

// Version returns carpd's version.
func (c *Client) Version(ctx context.Context) (api.VersionInfo, error) {
	var v api.VersionInfo
	return v, c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
}

// Force forces a vhid's state.
func (c *Client) Force(ctx context.Context, req api.StateRequest) (api.Status, error) {
	var st api.Status
	return st, c.do(ctx, http.MethodPost, "/v1/state", req, &st)
}

// Demote changes the operator's demotion.
func (c *Client) Demote(ctx context.Context, req api.DemoteRequest) (api.Status, error) {
	var st api.Status
	return st, c.do(ctx, http.MethodPost, "/v1/demote", req, &st)
}

// Reload makes carpd re-read its configuration.
func (c *Client) Reload(ctx context.Context) (api.ReloadResult, error) {
	var res api.ReloadResult
	return res, c.do(ctx, http.MethodPost, "/v1/reload", nil, &res)
}

// SetLogLevel sets carpd's log level; carpd answers with the level set.
func (c *Client) SetLogLevel(ctx context.Context, level string) (api.LogLevelRequest, error) {
	var res api.LogLevelRequest
	return res, c.do(ctx, http.MethodPost, "/v1/log-level", api.LogLevelRequest{Level: level}, &res)
}

// Events calls fn with each event until the stream ends (carpd stopped,
// or dropped this reader: the last event's Type is then "lagged"), ctx is
// done or fn returns an error.
func (c *Client) Events(ctx context.Context, fn func(api.Event) error) error {
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e api.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sc.Err()
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading carpd's answer: %w", err)
	}
	return nil
}

// send makes a request and returns a response with status 200, or an
// error: ErrNotRunning, ErrPermission or a *RequestError.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://carpd"+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w (no control socket at %s)", ErrNotRunning, c.path)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return nil, fmt.Errorf("%w: %s (carpd's control socket is for root, carpd's user and its control-group)", ErrPermission, c.path)
	default:
		return nil, fmt.Errorf("talking to carpd on %s: %w", c.path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var ae api.Error
	msg := resp.Status
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	if resp.StatusCode == http.StatusForbidden {
		return nil, fmt.Errorf("%w: %s", ErrPermission, trimPermission(msg))
	}
	return nil, &RequestError{Status: resp.StatusCode, Msg: msg}
}

func trimPermission(msg string) string {
	const p = "permission denied: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
