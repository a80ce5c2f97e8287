package etcd

import (
	"fmt"
	"slices"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/carpd/carpd/internal/config"
)

// Shared is the one connection to the cluster that every etcd vhid of a
// daemon uses: made by the first vhid that needs it (from that vhid's
// ClientConfig: the [etcd] table's endpoints, credentials and timeouts),
// closed by Close when the daemon stops. A Shared's zero value is ready.
// Once connected it keeps the [etcd] table it was made from: a vhid built
// from another table (a reload that changed it) is refused, since the
// running vhids' leases, keys and timings come from that table.
type Shared struct {
	mu     sync.Mutex
	cli    *clientv3.Client
	table  *config.Etcd
	closed bool
}

// conn returns the connection, dialling it on first use from table e.
func (s *Shared) conn(e *config.Etcd, cc ClientConfig) (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table != nil && !SameTable(s.table, e) {
		return nil, fmt.Errorf("%s: the [etcd] table changed: carpd takes it when it restarts (reload refused)", e.Origin)
	}
	if s.cli == nil {
		cli, err := Dial(cc)
		if err != nil {
			return nil, err
		}
		if s.closed {
			// A vhid built after the stop: its own Close ends it.
			return cli, nil
		}
		s.cli = cli
		t := *e
		s.table = &t
	}
	return s.cli, nil
}

// SameTable reports whether two [etcd] tables configure the same
// connection, keys and timings (their places in the file aside).
func SameTable(a, b *config.Etcd) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Endpoints, b.Endpoints) && a.Prefix == b.Prefix && a.Node == b.Node && a.TTL == b.TTL &&
		a.Renew == b.Renew && a.RequestTimeout == b.RequestTimeout && a.FenceMargin == b.FenceMargin &&
		a.CAFile == b.CAFile && a.CertFile == b.CertFile && a.KeyFile == b.KeyFile &&
		a.Username == b.Username && a.PasswordFile == b.PasswordFile
}

// Close closes the connection, if one was made.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cli == nil {
		return nil
	}
	cli := s.cli
	s.cli = nil
	return cli.Close()
}
