package service

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/control/client"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// fakeHost is one interface, eth0, up, and a protocol socket that hears
// nothing: nothing leaves the process.
type fakeHost struct {
	mu     sync.Mutex
	closed chan struct{}
	sent   int
}

func newFakeHost() *fakeHost { return &fakeHost{closed: make(chan struct{})} }

var eth0 = daemon.Link{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Up: true}

func (f *fakeHost) ReadBatch([]daemon.Packet) (int, error) {
	<-f.closed
	return 0, errors.New("closed")
}

func (f *fakeHost) WriteAdvert(int, netip.Addr, netip.Addr, []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	return nil
}

func (f *fakeHost) Join(int) error { return nil }

func (f *fakeHost) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

func (f *fakeHost) Set(string, []netip.Prefix, []netip.Prefix) ([]string, error) { return nil, nil }
func (f *fakeHost) Refresh(string, []netip.Prefix) error                         { return nil }
func (f *fakeHost) SetLifetime(time.Duration)                                    {}
func (f *fakeHost) Announce(int, net.HardwareAddr, []netip.Addr) error           { return nil }

func (f *fakeHost) Link(name string) (daemon.Link, error) {
	if name != "eth0" {
		return daemon.Link{}, daemon.ErrNoInterface
	}
	return eth0, nil
}

func (f *fakeHost) Source(int, netip.Addr, []netip.Addr) (netip.Addr, error) {
	return netip.MustParseAddr("192.0.2.22"), nil
}

func (f *fakeHost) Subscribe(ctx context.Context, _ func(daemon.Change)) (<-chan error, error) {
	ended := make(chan error, 1)
	go func() { <-ctx.Done(); ended <- nil }()
	return ended, nil
}

func (f *fakeHost) open(*config.Config) (*daemon.Host, func(), error) {
	return &daemon.Host{Conns: [2]daemon.Conn{f, nil}, Addresses: f, Announcer: f, Links: f, Monitor: f}, func() {}, nil
}

// notified reports whether the notifier was told a state with prefix.
func (n *fakeNotifier) notified(prefix string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.states {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestRun: Run assembles the daemon on the host it is given, tells the
// service manager (a fake notifier) that it is ready, serves the control
// socket (status; a reload re-reads the file with the reload policy's
// warning), and on the context's end bows out, says it is stopping and
// returns 0.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{
		VHIDs: []config.VHID{{Interface: "eth0", VHID: 100, AdvBase: 1, AdvSkew: 100, Password: "lampros",
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}, Origin: "test:1"}},
		Control: filepath.Join(dir, "control.sock"), StateFile: filepath.Join(dir, "state"),
		LogLevel: "info", HookTimeout: time.Second, ManageAddresses: true,
	}
	reloaded := *cfg
	reloaded.MetricsListen = "127.0.0.1:9657"
	n := &fakeNotifier{}
	f := newFakeHost()
	var logs lab.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, cfg, Options{Stderr: &logs, Notifier: n, Open: f.open, Clock: daemon.SystemClock{},
			Reload: func() (*config.Config, error) { return &reloaded, nil }})
	}()
	waitFor(t, "READY=1", func() bool { return n.notified("READY=1\nSTATUS=1 vhid: 1 BACKUP") })
	c := client.New(cfg.Control)
	st, err := c.Status(ctx)
	if err != nil || len(st.VHIDs) != 1 || st.VHIDs[0].State != "BACKUP" {
		t.Fatalf("status over the control socket: %+v, %v", st.VHIDs, err)
	}
	res, err := c.Reload(ctx)
	want := "metrics-listen changed ( -> 127.0.0.1:9657): it takes effect when carpd restarts"
	if err != nil || len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Errorf("reload: %+v, %v; want the warning %q", res, err, want)
	}
	cancel()
	select {
	case c := <-code:
		if c != ExitOK {
			t.Errorf("Run = %d, want %d; log:\n%s", c, ExitOK, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the context's end")
	}
	if !n.notified("STOPPING=1") {
		t.Errorf("never told STOPPING=1: %q", n.states)
	}
	if l := logs.String(); !strings.Contains(l, "carpd: reload: "+want) {
		t.Errorf("log without the reload's warning:\n%s", l)
	}
}

// waitFor waits up to 5 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
