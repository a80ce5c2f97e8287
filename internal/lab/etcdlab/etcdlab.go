// Package etcdlab runs a real etcd cluster for tests: three members of the
// etcd server (go.etcd.io/etcd/server/v3, embedded in the helper command of
// e2e/etcdlab, a module of its own), each a process in its own network
// namespace, cabled to a bridge "ctl" and listening on 198.51.100.11..13
// (clients on port 2379, peers on 2380), data on tmpfs (/dev/shm). Nodes
// (the candidates of an election) are further namespaces on ctl
// (198.51.100.21 and up). A test can kill (SIGKILL), stop (SIGSTOP),
// continue and restart a member, find the etcd leader and cut a host's ctl
// cable. Close kills every process and deletes every namespace and data
// directory; tests get it through Start, which registers it with
// t.Cleanup, so every exit path tears the cluster down.
package etcdlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// Segment is the bridge that carries the etcd traffic.
const Segment = "ctl"

// Member is one etcd server process.
type Member struct {
	Name string
	IP   netip.Addr
	Host *lab.Host

	c    *Cluster
	dir  string
	mu   sync.Mutex
	proc *lab.Proc
}

// Cluster is a running etcd cluster and its lab.
type Cluster struct {
	Lab     *lab.Lab
	Members []*Member

	bin     string
	dataDir string
	peers   string
	nodes   int
	raft    Raft
}

// Raft is the members' raft timing; its zero value is etcd's defaults
// (heartbeat 100 ms, election timeout 1 s).
type Raft struct{ Heartbeat, Election time.Duration }

// RaftFor returns etcd's default raft timing scaled by ttl / 10 s: a test
// that shortens the lease TTL from carpd's default 10 s to keep itself
// short shortens the cluster's election in the same ratio, so that an etcd
// leader change takes the same share of the lease as it would in
// production (at a 4 s TTL: heartbeat 40 ms, election timeout 400 ms). A
// ttl of 10 s or more gives etcd's defaults.
func RaftFor(ttl time.Duration) Raft {
	const defTTL, defElection = 10 * time.Second, time.Second
	if ttl >= defTTL {
		return Raft{}
	}
	el := defElection * ttl / defTTL
	return Raft{Heartbeat: el / 10, Election: el}
}

func (r Raft) flags() []string {
	if r == (Raft{}) {
		return nil
	}
	return []string{"-heartbeat-ms", fmt.Sprint(r.Heartbeat.Milliseconds()), "-election-ms", fmt.Sprint(r.Election.Milliseconds())}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Binary builds the helper command (once per test process) and returns its
// path. CARPD_ETCDLAB_BIN names a prebuilt one instead.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("CARPD_ETCDLAB_BIN"); p != "" {
			buildBin = p
			return
		}
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = errors.New("etcdlab: cannot locate the source tree")
			return
		}
		src := filepath.Join(filepath.Dir(file), "..", "..", "..", "e2e", "etcdlab")
		dir, err := os.MkdirTemp("", "carpd-etcdlab-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "etcdlab")
		cmd := exec.Command("go", "build", "-o", buildBin, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("etcdlab: go build: %w: %s", err, out)
		}
	})
	return buildBin, buildErr
}

// Start builds a 3-member cluster with raft timing r for t and waits until
// it has a leader; t fails if it cannot. The cluster is torn down when t
// ends.
func Start(t testing.TB, r Raft) *Cluster {
	t.Helper()
	labtest.RequireRoot(t)
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(bin, "etcdlab", r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("etcdlab close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Leader(ctx); err != nil {
		for _, m := range c.Members {
			t.Logf("%s output:\n%s", m.Name, m.Output())
		}
		t.Fatal(err)
	}
	return c
}

// New creates the lab and starts the three members with raft timing r. The
// caller must call Close, also when New fails and returns a non-nil
// cluster.
func New(bin, prefix string, r Raft) (c *Cluster, err error) {
	l, err := lab.New(prefix)
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("/dev/shm", "carpd-etcdlab-")
	if err != nil {
		l.Close()
		return nil, err
	}
	c = &Cluster{Lab: l, bin: bin, dataDir: dataDir, raft: r}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if err := l.AddSegment(Segment); err != nil {
		return nil, err
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("e%d", i)
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		h, err := l.AddHostOn(Segment, name, netip.PrefixFrom(ip, 24))
		if err != nil {
			return c, err
		}
		m := &Member{Name: name, IP: ip, Host: h, c: c, dir: filepath.Join(dataDir, name)}
		c.Members = append(c.Members, m)
		if c.peers != "" {
			c.peers += ","
		}
		c.peers += fmt.Sprintf("%s=http://%s:2380", name, ip)
	}
	for _, m := range c.Members {
		if err := m.start("new"); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (m *Member) start(state string) error {
	args := append([]string{m.c.bin, "-name", m.Name, "-data-dir", m.dir, "-ip", m.IP.String(),
		"-initial-cluster", m.c.peers, "-initial-cluster-state", state}, m.c.raft.flags()...)
	p, err := m.Host.Start("etcd-"+m.Name, args...)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return nil
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoint())
	}
	return eps
}

// Endpoint returns the member's client URL.
func (m *Member) Endpoint() string { return "http://" + m.IP.String() + ":2379" }

// Output returns what the member's current process has printed.
func (m *Member) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return ""
	}
	return m.proc.Output()
}

// Kill sends SIGKILL to the member and waits for it to end.
func (m *Member) Kill() error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	return p.Kill()
}

// Stop sends SIGSTOP to the member; Cont resumes it.
func (m *Member) Stop() error { return m.signal(syscall.SIGSTOP) }

// Cont sends SIGCONT to the member.
func (m *Member) Cont() error { return m.signal(syscall.SIGCONT) }

func (m *Member) signal(s os.Signal) error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	return p.Signal(s)
}

// Restart kills the member if it runs and starts it again on its data
// directory, as a member of the existing cluster.
func (m *Member) Restart() error {
	if err := m.Kill(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return err
		}
	}
	return m.start("existing")
}

// AddNode adds a namespace "n<i>" on ctl with address 198.51.100.(20+i),
// for a candidate of an election; i is 1..9.
func (c *Cluster) AddNode() (*lab.Host, error) {
	c.nodes++
	ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(20 + c.nodes)})
	return c.Lab.AddHostOn(Segment, fmt.Sprintf("n%d", c.nodes), netip.PrefixFrom(ip, 24))
}

// Cut pulls h's ctl cable (its switch port goes down); Mend plugs it again.
func Cut(h *lab.Host) error { return h.PortDown() }

// Mend plugs h's ctl cable again.
func Mend(h *lab.Host) error { return h.PortUp() }

// Dialer returns a gRPC dial option whose connections are made from inside
// h's namespace: a client in the test process then talks to the cluster as
// the host would, and is cut off with it.
func Dialer(h *lab.Host) grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var conn net.Conn
		err := h.Do(func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, "tcp", addr)
			return err
		})
		return conn, err
	})
}

// Leader waits until the members that answer agree on one leader, and
// returns it. Members that are down or stopped are skipped.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	var last error
	for {
		m, err := c.leaderOnce(ctx)
		if err == nil {
			return m, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("etcdlab: no leader: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) leaderOnce(ctx context.Context) (*Member, error) {
	var leader uint64
	var errs []error
	for _, m := range c.Members {
		id, err := m.status(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if id == 0 || (leader != 0 && id != leader) {
			return nil, fmt.Errorf("etcdlab: %s sees leader %x (others %x)", m.Name, id, leader)
		}
		leader = id
	}
	if leader == 0 {
		return nil, errors.Join(errs...)
	}
	for _, m := range c.Members {
		if id, err := m.id(ctx); err == nil && id == leader {
			return m, nil
		}
	}
	return nil, errors.New("etcdlab: leader is not a member that answers")
}

// status asks the member for its leader's ID.
func (m *Member) status(ctx context.Context) (uint64, error) {
	cli, err := m.client()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.Endpoint())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Name, err)
	}
	return st.Leader, nil
}

// id asks the member for its own ID.
func (m *Member) id(ctx context.Context) (uint64, error) {
	cli, err := m.client()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.Endpoint())
	if err != nil {
		return 0, err
	}
	return st.Header.MemberId, nil
}

// client returns a client of this member alone, dialling from its own
// namespace.
func (m *Member) client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{m.Endpoint()},
		DialTimeout: time.Second,
		DialOptions: []grpc.DialOption{Dialer(m.Host)},
		Logger:      nopLogger(),
	})
}

// Client returns a client of the whole cluster dialling from h's namespace.
func (c *Cluster) Client(h *lab.Host) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 2 * time.Second,
		DialOptions: []grpc.DialOption{Dialer(h)},
		Logger:      nopLogger(),
	})
}

// Close kills the members, deletes the namespaces and the data directory.
func (c *Cluster) Close() error {
	err := c.Lab.Close()
	if c.dataDir != "" {
		err = errors.Join(err, os.RemoveAll(c.dataDir))
	}
	return err
}
