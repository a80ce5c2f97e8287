package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// Electorate is one vhid's etcd election as a daemon hosts it in its own
// event loop: the loop receives from Events, passes what it gets to
// Handle with the time, arms a timer for NextDeadline and calls Handle
// with Tick when it fires, and acts on the Hold and Observe decisions
// Handle returns (a Hold on: add or refresh the addresses with the
// lifetime AddressLifetime(Until, now); off: remove them). The etcd calls
// run in the background (Client); Handle never blocks.
type Electorate struct {
	M *Machine
	C *Client

	ctx    context.Context
	cancel context.CancelFunc
}

// NewElectorate builds the election of vhid v from the [etcd] table.
// Listen (the wait before a first campaign) is one renewal period. With
// sh, the vhid uses sh's connection (made on first use); without, its own.
func NewElectorate(e *config.Etcd, v *config.VHID, preempt bool, preemptDelay time.Duration, log *slog.Logger, sh *Shared) (*Electorate, error) {
	mc, cc, err := Configs(e, v, preempt, preemptDelay)
	if err != nil {
		return nil, err
	}
	cc.Log = log
	if sh != nil {
		if cc.Conn, err = sh.conn(e, cc); err != nil {
			return nil, err
		}
	}
	m, err := NewMachine(mc)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(cc)
	if err != nil {
		return nil, err
	}
	return &Electorate{M: m, C: c}, nil
}

// Configs derives the machine's and the adapter's configuration from the
// [etcd] table and the vhid, reading the TLS files and the password file.
func Configs(e *config.Etcd, v *config.VHID, preempt bool, preemptDelay time.Duration) (Config, ClientConfig, error) {
	mc := Config{
		Node: e.Node, AdvSkew: int(v.AdvSkew), Preempt: preempt, PreemptDelay: preemptDelay,
		Renew: e.Renew, Margin: e.FenceMargin, Listen: e.Renew,
	}
	cc := ClientConfig{
		Endpoints: e.Endpoints, Prefix: e.Prefix, VHID: int(v.VHID), Node: e.Node,
		TTL: e.TTL, RequestTimeout: e.RequestTimeout, ReadEvery: e.TTL, Username: e.Username,
	}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return mc, cc, fmt.Errorf("etcd password-file: %w", err)
		}
		cc.Password = strings.TrimRight(string(b), "\r\n")
	}
	tc, err := tlsConfig(e)
	if err != nil {
		return mc, cc, err
	}
	cc.TLS = tc
	return mc, cc, nil
}

// tlsConfig returns the TLS configuration of the [etcd] table: nil when it
// names no TLS file and no endpoint is https.
func tlsConfig(e *config.Etcd) (*tls.Config, error) {
	https := false
	for _, ep := range e.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if e.CAFile == "" && e.CertFile == "" && !https {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("etcd ca-file: no PEM certificate in " + e.CAFile)
		}
		tc.RootCAs = pool
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd cert-file/key-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Start starts the watch and the election.
func (el *Electorate) Start(now time.Time) []Action {
	el.ctx, el.cancel = context.WithCancel(context.Background())
	go el.C.Watch(el.ctx)
	return el.Handle(now, Start{})
}

// Events is where the adapter's results and views arrive.
func (el *Electorate) Events() <-chan Event { return el.C.Events() }

// NextDeadline is when the loop must call Handle with Tick.
func (el *Electorate) NextDeadline() time.Time { return el.M.NextDeadline() }

// Handle steps the machine, starts the etcd calls it asks for, and returns
// the decisions (Hold, Observe) for the caller.
func (el *Electorate) Handle(now time.Time, ev Event) []Action {
	var out []Action
	for _, a := range el.M.Step(now, ev) {
		switch a.(type) {
		case Hold, Observe:
			out = append(out, a)
		default:
			el.C.Do(el.ctx, a)
		}
	}
	return out
}

// Stop is the planned stop: it returns the release decision at once for
// the caller to carry out first, then deletes the leader key guarded by
// the tenure and revokes the lease (bounded by stopTimeout) in the
// background; done is closed when that is over and the client closed.
func (el *Electorate) Stop(now time.Time) (decisions []Action, done <-chan struct{}) {
	var calls []Action
	for _, a := range el.M.Step(now, Stop{}) {
		switch a.(type) {
		case Hold, Observe:
			decisions = append(decisions, a)
		default:
			calls = append(calls, a)
		}
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		for _, a := range calls {
			el.C.Exec(ctx, a)
		}
		if el.cancel != nil {
			el.cancel()
		}
		el.C.Close()
	}()
	return decisions, ch
}

// Status is the election's state for status, metrics and logs.
type Status struct {
	Node          string
	Holding       bool
	Tenure        int64         // our leader key's create revision, 0 if not ours
	Leader        string        // the leader key's holder as last read ("" none or unreadable)
	LeaderTenure  int64         // its create revision
	UntilD        time.Duration // time left to D (0 when past or none)
	Deadline      time.Time     // D while holding, else zero
	Lease         int64         // the lease ID (0: none)
	TTL           time.Duration // the TTL granted
	ReadFailures  uint64
	RenewLatency  time.Duration // of the last acknowledged renewal
	WatchRestarts uint64
	Dropped       uint64 // member or leader keys with bad data
}

// Status returns the state at now.
func (el *Electorate) Status(now time.Time) Status {
	m := el.M
	s := Status{
		Node: m.cfg.Node, Holding: m.holding, Tenure: m.tenure,
		Leader: m.observed.Node, LeaderTenure: m.observed.CreateRev,
		RenewLatency:  time.Duration(el.C.Stats.RenewNanos.Load()),
		WatchRestarts: el.C.Stats.WatchRestarts.Load(), Dropped: el.C.Stats.Dropped.Load(),
		ReadFailures: el.C.Stats.ReadFailures.Load(), Lease: m.lease, TTL: m.ttl,
	}
	if m.holding {
		s.Deadline = m.deadline
	}
	if d := m.deadline.Sub(now); d > 0 {
		s.UntilD = d
	}
	return s
}
