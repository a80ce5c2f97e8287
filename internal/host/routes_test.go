package host

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/mover"
)

// TestRoutesLog: the bgp speaker's lines (its sessions' state changes) and
// its movers' (a fence that withdrew the routes) go through the logger
// carpd gives it, the one with the journal's handler and --log-level, and
// none through slog.Default.
func TestRoutesLog(t *testing.T) {
	var given, def lab.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	log := slog.New(slog.NewTextHandler(&given, nil))

	// A peer on loopback that accepts the connection and closes it: the
	// session changes state.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := &config.BGP{LocalAS: 65010, RouterID: netip.MustParseAddr("192.0.2.11"),
		Hold: 9 * time.Second, Keepalive: 3 * time.Second,
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("127.0.0.1"), AS: 65000, Port: uint16(port)}}}
	r, err := startRoutes(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.sp.Close()
	m := r.Mover([]netip.Prefix{netip.MustParsePrefix("203.0.113.50/32")})
	defer m.Close()
	// A tenure that ends 1.2 s from now and is never renewed: the fence
	// withdraws the routes at its deadline and says so.
	if err := m.Acquire(context.Background(), mover.Tenure{Token: 1, Deadline: time.Now().Add(1200 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	want := []string{"bgp: peer session", "mover bgp: the tenure's deadline passed without renewal"}
	deadline := time.Now().Add(10 * time.Second)
	for !containsAll(given.String(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !containsAll(given.String(), want) {
		t.Errorf("the given logger got no %q in:\n%s", want, given.String())
	}
	if strings.Contains(def.String(), "bgp") {
		t.Errorf("the speaker logged through slog.Default:\n%s", def.String())
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
