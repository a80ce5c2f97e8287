package checks

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

func TestLinkState(t *testing.T) {
	for _, tc := range []struct {
		flags net.Flags
		up    bool
		why   string
	}{
		{net.FlagUp | net.FlagRunning | net.FlagBroadcast, true, ""},
		{net.FlagUp, false, "eth1 has no carrier"},
		{net.FlagBroadcast, false, "eth1 is down"},
	} {
		up, _, why := linkState("eth1", tc.flags)
		if up != tc.up || why != tc.why {
			t.Errorf("%v: %v %q, want %v %q", tc.flags, up, why, tc.up, tc.why)
		}
	}
}

// TestLinkProbe: loopback is up and running; a missing interface fails.
func TestLinkProbe(t *testing.T) {
	r := New(Options{})
	if ok, _, why := r.probe(context.Background(), check(config.CheckLink, "lo")); !ok {
		t.Errorf("lo: %s", why)
	}
	ok, _, why := r.probe(context.Background(), check(config.CheckLink, "nosuch0"))
	if ok || !strings.Contains(why, "interface nosuch0") {
		t.Errorf("nosuch0: %v %q", ok, why)
	}
}
