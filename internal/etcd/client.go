package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// ClientConfig configures the adapter of one vhid on one node.
type ClientConfig struct {
	Endpoints      []string
	Prefix         string // keys <Prefix><VHID>/leader and <Prefix><VHID>/members/<Node>
	VHID           int
	Node           string
	TTL            time.Duration // the lease TTL asked for (whole seconds, at least 1)
	RequestTimeout time.Duration // every request's bound; below the renewal period
	ReadEvery      time.Duration // the period of the linearizable Get besides the watch
	TLS            *tls.Config
	Username       string
	Password       string
	// DialOptions are added to the gRPC client's (tests dial from a
	// network namespace with them).
	DialOptions []grpc.DialOption
	Log         *slog.Logger
	// Conn, when not nil, is a connection shared with other vhids'
	// Clients (Dial): the Client uses it and does not close it.
	Conn *clientv3.Client
}

// Stats are the adapter's counters.
type Stats struct {
	Dropped       atomic.Uint64 // member or leader keys with bad data
	WatchRestarts atomic.Uint64 // watch broken (error, compaction, close): re-read
	ReadFailures  atomic.Uint64 // linearizable Gets that failed
	RenewNanos    atomic.Int64  // latency of the last acknowledged renewal
}

// Client is the I/O adapter: it runs the Machine's actions against etcd and
// turns their results, and what the watch sees, into events.
type Client struct {
	cfg    ClientConfig
	cli    *clientv3.Client
	own    bool // cli is the Client's own, closed by Close
	log    *slog.Logger
	base   string // <prefix><vhid>/
	leader string
	member string
	events chan Event
	Stats  Stats

	mu      sync.Mutex
	dropped map[string]int64 // key -> mod revision already counted as bad
}

// NewClient connects (lazily: no request is made) to the cluster.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.RequestTimeout <= 0 || cfg.TTL < time.Second || cfg.ReadEvery <= 0 {
		return nil, errors.New("etcd: ttl, request timeout and read period must be set")
	}
	if !ValidNode(cfg.Node) {
		return nil, fmt.Errorf("etcd: bad node name %q", cfg.Node)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, own := cfg.Conn, false
	if cli == nil {
		var err error
		if cli, err = Dial(cfg); err != nil {
			return nil, err
		}
		own = true
	}
	base := cfg.Prefix + strconv.Itoa(cfg.VHID) + "/"
	return &Client{
		cfg: cfg, cli: cli, own: own, log: log, base: base,
		leader: base + "leader", member: base + "members/" + cfg.Node,
		events: make(chan Event, 64), dropped: make(map[string]int64),
	}, nil
}

// Dial makes a connection (lazily: no request is made) with cfg's
// endpoints, credentials and timeouts: gRPC keepalives of 1 s / 1 s, the
// request timeout as the dial timeout.
func Dial(cfg ClientConfig) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.RequestTimeout,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		PermitWithoutStream:  true,
		TLS:                  cfg.TLS,
		Username:             cfg.Username,
		Password:             cfg.Password,
		DialOptions:          cfg.DialOptions,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return cli, nil
}

// Events is where the results and the views arrive.
func (c *Client) Events() <-chan Event { return c.events }

// Close closes the connection when it is the Client's own (not shared).
func (c *Client) Close() error {
	if !c.own {
		return nil
	}
	return c.cli.Close()
}

func (c *Client) send(ctx context.Context, ev Event) {
	select {
	case c.events <- ev:
	case <-ctx.Done():
	}
}

// Do runs a in the background and sends its result to Events. Hold and
// Observe are the caller's, not the adapter's: Do ignores them.
func (c *Client) Do(ctx context.Context, a Action) {
	go func() {
		if ev := c.Exec(ctx, a); ev != nil {
			c.send(ctx, ev)
		}
	}()
}

// Exec runs a now, bounded by the request timeout, and returns its result.
func (c *Client) Exec(ctx context.Context, a Action) Event {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.RequestTimeout)
	defer cancel()
	switch a := a.(type) {
	case Grant:
		sent := time.Now()
		r, err := c.cli.Grant(ctx, int64(c.cfg.TTL/time.Second))
		if err != nil {
			c.log.Warn("etcd lease grant failed", "err", err)
			return GrantFailed{Err: err}
		}
		return Granted{ID: int64(r.ID), TTL: time.Duration(r.TTL) * time.Second, Sent: sent}
	case Renew:
		sent := time.Now()
		r, err := c.cli.KeepAliveOnce(ctx, clientv3.LeaseID(a.ID))
		if err != nil {
			gone := errors.Is(err, rpctypes.ErrLeaseNotFound)
			c.log.Warn("etcd lease renewal failed", "lease", a.ID, "gone", gone, "err", err)
			return RenewFailed{ID: a.ID, Gone: gone, Err: err}
		}
		c.Stats.RenewNanos.Store(int64(time.Since(sent)))
		return Renewed{ID: a.ID, TTL: time.Duration(r.TTL) * time.Second, Sent: sent}
	case PutMember:
		b, _ := json.Marshal(a.Member)
		_, err := c.cli.Put(ctx, c.member, string(b), clientv3.WithLease(clientv3.LeaseID(a.ID)))
		return MemberPut{Err: err}
	case Campaign:
		r, err := c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(c.leader), "=", 0)).
			Then(clientv3.OpPut(c.leader, c.cfg.Node, clientv3.WithLease(clientv3.LeaseID(a.ID)))).
			Commit()
		if err != nil {
			return Campaigned{Lease: a.ID, Err: err}
		}
		return Campaigned{Lease: a.ID, Won: r.Succeeded, Tenure: r.Header.Revision}
	case Resign:
		_, err := c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(c.leader), "=", a.Tenure)).
			Then(clientv3.OpDelete(c.leader)).
			Commit()
		return Resigned{Err: err}
	case Revoke:
		_, err := c.cli.Revoke(ctx, clientv3.LeaseID(a.ID))
		if err != nil {
			c.log.Warn("etcd lease revoke failed", "lease", a.ID, "err", err)
		}
		return nil
	}
	return nil
}

// Watch keeps the machine's view of the vhid's keys until ctx ends: a
// linearizable Get (again until it succeeds), then a watch from its
// revision with RequireLeader and progress notifications; any watch error,
// cancel or compaction starts over with the Get; a linearizable Get every
// ReadEvery besides.
func (c *Client) Watch(ctx context.Context) {
	for ctx.Err() == nil {
		kvs, rev := c.readUntil(ctx)
		if ctx.Err() != nil {
			return
		}
		c.send(ctx, c.view(kvs, rev))
		c.follow(ctx, kvs, rev)
		c.Stats.WatchRestarts.Add(1)
	}
}

// follow runs one watch from rev until it breaks.
func (c *Client) follow(ctx context.Context, kvs map[string]*mvccpb.KeyValue, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.cli.Watch(wctx, c.base, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	tick := time.NewTicker(c.cfg.ReadEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil || resp.Canceled || resp.CompactRevision != 0 {
				c.log.Info("etcd watch broken, reading again", "err", resp.Err())
				return
			}
			if resp.IsProgressNotify() {
				continue
			}
			for _, e := range resp.Events {
				if e.Kv.ModRevision <= rev {
					continue
				}
				if e.Type == clientv3.EventTypeDelete {
					delete(kvs, string(e.Kv.Key))
				} else {
					kvs[string(e.Kv.Key)] = e.Kv
				}
			}
			if resp.Header.Revision > rev {
				rev = resp.Header.Revision
			}
			c.send(ctx, c.view(kvs, rev))
		case <-tick.C:
			got, grev, err := c.read(ctx)
			if err != nil {
				continue
			}
			if grev >= rev {
				kvs, rev = got, grev
				c.send(ctx, c.view(kvs, rev))
			}
		}
	}
}

// readUntil reads until a read succeeds or ctx ends.
func (c *Client) readUntil(ctx context.Context) (map[string]*mvccpb.KeyValue, int64) {
	for {
		kvs, rev, err := c.read(ctx)
		if err == nil || ctx.Err() != nil {
			return kvs, rev
		}
		select {
		case <-ctx.Done():
			return nil, 0
		case <-time.After(c.cfg.RequestTimeout / 4):
		}
	}
}

// read is one linearizable Get of the vhid's keys.
func (c *Client) read(ctx context.Context) (map[string]*mvccpb.KeyValue, int64, error) {
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.RequestTimeout)
	defer cancel()
	r, err := c.cli.Get(rctx, c.base, clientv3.WithPrefix())
	if err != nil {
		c.Stats.ReadFailures.Add(1)
		return nil, 0, err
	}
	kvs := make(map[string]*mvccpb.KeyValue, len(r.Kvs))
	for _, kv := range r.Kvs {
		kvs[string(kv.Key)] = kv
	}
	return kvs, r.Header.Revision, nil
}

// view parses the keys; bad ones are dropped, counted and logged once per
// revision of the key.
func (c *Client) view(kvs map[string]*mvccpb.KeyValue, rev int64) View {
	v := View{Rev: rev, Members: make(map[string]Member)}
	for key, kv := range kvs {
		switch {
		case key == c.leader:
			v.Leader = Leader{Present: true, CreateRev: kv.CreateRevision, Lease: kv.Lease}
			if s := string(kv.Value); ValidNode(s) {
				v.Leader.Node = s
			} else {
				c.drop(kv, "leader key's value is not a node name")
			}
		case strings.HasPrefix(key, c.base+"members/"):
			name := strings.TrimPrefix(key, c.base+"members/")
			mb, err := ParseMember(kv.Value)
			if err == nil && !ValidNode(name) {
				err = errors.New("bad node name")
			}
			if err != nil {
				c.drop(kv, err.Error())
				continue
			}
			v.Members[name] = mb
		}
	}
	return v
}

func (c *Client) drop(kv *mvccpb.KeyValue, why string) {
	c.mu.Lock()
	seen := c.dropped[string(kv.Key)] == kv.ModRevision
	c.dropped[string(kv.Key)] = kv.ModRevision
	c.mu.Unlock()
	if seen {
		return
	}
	c.Stats.Dropped.Add(1)
	c.log.Warn("etcd key with bad data dropped", "key", string(kv.Key), "revision", kv.ModRevision, "why", why)
}

// maxDemotion bounds a member's demotion (FreeBSD's demotion counter is an
// int; any sane one is far below).
const maxDemotion = 1 << 24

// ParseMember decodes a member key's value: a JSON object with advskew
// (0..254), demotion (0..2^24) and healthy.
func ParseMember(b []byte) (Member, error) {
	var raw struct {
		AdvSkew  *int  `json:"advskew"`
		Demotion *int  `json:"demotion"`
		Healthy  *bool `json:"healthy"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Member{}, fmt.Errorf("member value: %w", err)
	}
	if raw.AdvSkew == nil || raw.Healthy == nil {
		return Member{}, errors.New("member value: advskew and healthy are required")
	}
	m := Member{AdvSkew: *raw.AdvSkew, Healthy: *raw.Healthy}
	if raw.Demotion != nil {
		m.Demotion = *raw.Demotion
	}
	if m.AdvSkew < 0 || m.AdvSkew > 254 || m.Demotion < 0 || m.Demotion > maxDemotion {
		return Member{}, fmt.Errorf("member value: advskew %d or demotion %d out of range", m.AdvSkew, m.Demotion)
	}
	return m, nil
}
