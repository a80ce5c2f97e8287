package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{
			LocalAS: 65010, RouterID: netip.MustParseAddr("192.0.2.11"), Hold: 9 * time.Second,
			Peers: []Peer{{Address: netip.MustParseAddr("192.0.2.1"), AS: 65000}},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if ka := good().keepalive(); ka != 3*time.Second {
		t.Errorf("default keepalive %v, want hold/3", ka)
	}
	for _, c := range []struct {
		name string
		f    func(*Config)
		want string
	}{
		{"no AS", func(c *Config) { c.LocalAS = 0 }, "no local AS"},
		{"IPv6 router id", func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, "router id"},
		{"hold 2s", func(c *Config) { c.Hold = 2 * time.Second }, "hold time 2s"},
		{"hold not whole", func(c *Config) { c.Hold = 4500 * time.Millisecond }, "hold time 4.5s"},
		{"keepalive above hold/3", func(c *Config) { c.Keepalive = 4 * time.Second }, "keepalive 4s"},
		{"no peers", func(c *Config) { c.Peers = nil }, "no peers"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "given twice"},
		{"peer without AS", func(c *Config) { c.Peers[0].AS = 0 }, "no AS"},
	} {
		cfg := good()
		c.f(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestHostRoute(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.50/24":       "203.0.113.50/32",
		"2001:db8::50/64":       "2001:db8::50/128",
		"::ffff:203.0.113.5/96": "203.0.113.5/32",
	} {
		if got := HostRoute(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("HostRoute(%s) = %v, want %s", in, got, want)
		}
	}
}
