package electorate

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
	"github.com/carpd/carpd/internal/etcd"
)

// quietWire is a Wire that carries nothing.
type quietWire struct{ writes int }

func (w *quietWire) Post(ctx context.Context, _ elect.Event) error { <-ctx.Done(); return ctx.Err() }
func (w *quietWire) Source(netip.Addr) (netip.Addr, error)         { return netip.Addr{}, nil }
func (w *quietWire) Own(netip.Addr) bool                           { return false }
func (w *quietWire) Write(_, _ netip.Addr, _ []byte) error         { w.writes++; return nil }

// TestEtcdElectorate: an etcd vhid is one electorate of proto "etcd" that
// sends no advert, hears none, starts BACKUP and leaves after its stop's
// calls. Its etcd endpoint (loopback, nothing listening) never answers.
func TestEtcdElectorate(t *testing.T) {
	cfg, err := config.ParseTOML("carpd.toml", []byte(`[etcd]
endpoints = ["http://127.0.0.1:1"]
node = "h1"
ttl = "5s"

[[vhid]]
interface = "eth0"
vhid = 9
addresses = ["192.0.2.50/32"]
electorate = "etcd"
advskew = 30
`), "")
	if err != nil {
		t.Fatal(err)
	}
	els, err := New(cfg, &cfg.VHIDs[0], func() uint64 { return 1 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 1 || els[0].Proto() != "etcd" || els[0].Family() != "" {
		t.Fatalf("electorates %v", els)
	}
	el := els[0]
	w := &quietWire{}
	el.Attach(w, discard)
	now := time.Now()
	acts := el.AppendStep(nil, now, elect.LinkUp{})
	if len(acts) == 0 || acts[0] != (elect.Transition{From: elect.Init, To: elect.Backup, Reason: "initialization complete"}) || el.State() != elect.Backup {
		t.Fatalf("link up: %v, state %v", acts, el.State())
	}
	for _, a := range acts {
		if _, ok := a.(elect.HoldAddresses); ok {
			t.Fatalf("holds before any election: %v", acts)
		}
	}
	if _, err := el.Send(elect.Announce{}); err == nil {
		t.Fatal("Send took an action that is not an etcd call")
	}
	if _, _, _, ok := el.Heard(now, elect.Tick{}); ok {
		t.Fatal("heard something")
	}
	if a, p := el.Rank(); a != 30 || p != 225 {
		t.Fatalf("rank %d %d", a, p)
	}
	acts = el.AppendStep(nil, now.Add(time.Second), elect.Shutdown{})
	if el.Left() {
		t.Fatal("left before its stop's calls")
	}
	for _, a := range acts {
		if _, err := el.Send(a); err != nil {
			t.Fatalf("send %T: %v", a, err)
		}
	}
	if !el.Left() {
		t.Fatalf("not left after the stop's calls %v", acts)
	}
	if w.writes != 0 {
		t.Fatalf("%d packets written", w.writes)
	}
}

func etcdConfig(t *testing.T, node, vhids string) *config.Config {
	t.Helper()
	cfg, err := config.ParseTOML("carpd.toml", []byte(`[etcd]
endpoints = ["http://127.0.0.1:1"]
node = "`+node+`"
ttl = "5s"
`+vhids), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const etcdVHID9 = `
[[vhid]]
interface = "eth0"
vhid = 9
addresses = ["192.0.2.50/32"]
electorate = "etcd"
advskew = 30
`

// TestEtcdHealthAndReload: a check's release and the link make the
// member unhealthy; a reload changes the ranking in place and is refused
// when the [etcd] table changed under the shared connection.
func TestEtcdHealthAndReload(t *testing.T) {
	sh := &etcd.Shared{}
	defer sh.Close()
	cfg := etcdConfig(t, "h1", etcdVHID9)
	els, err := New(cfg, &cfg.VHIDs[0], func() uint64 { return 1 }, sh)
	if err != nil {
		t.Fatal(err)
	}
	el := els[0].(*etcdVHID)
	el.Attach(&quietWire{}, discard)
	now := time.Now()
	el.AppendStep(nil, now, elect.LinkUp{})
	for i, c := range []struct {
		ev      elect.Event
		healthy bool
	}{
		{elect.Release{On: true}, false},
		{elect.LinkDown{}, false},
		{elect.LinkUp{Again: true}, false},
		{elect.Release{On: false}, true},
		{elect.LinkDown{}, false},
		{elect.LinkUp{Again: true}, true},
	} {
		el.AppendStep(nil, now, c.ev)
		if el.el.M.Healthy() != c.healthy {
			t.Fatalf("step %d (%T %+v): healthy %v, want %v", i, c.ev, c.ev, el.el.M.Healthy(), c.healthy)
		}
	}

	next := etcdConfig(t, "h1", strings.Replace(etcdVHID9, "advskew = 30", "advskew = 200\npreempt = true", 1))
	nels, err := New(next, &next.VHIDs[0], func() uint64 { return 1 }, sh)
	if err != nil {
		t.Fatal(err)
	}
	_, changed, warn, err := el.Reconfigure(now, nels[0])
	if err != nil || !changed || warn != "" {
		t.Fatalf("reconfigure: changed %v warn %q err %v", changed, warn, err)
	}
	if c := el.el.M.Config(); c.AdvSkew != 200 || !c.Preempt {
		t.Fatalf("after the reload: %+v", c)
	}
	if a, _ := el.Rank(); a != 200 {
		t.Fatalf("rank %d after the reload", a)
	}
	if _, changed, _, err := el.Reconfigure(now, nels[0]); err != nil || changed {
		t.Fatalf("the same again: changed %v err %v", changed, err)
	}

	other := etcdConfig(t, "h2", etcdVHID9)
	if _, err := New(other, &other.VHIDs[0], func() uint64 { return 1 }, sh); err == nil || !strings.Contains(err.Error(), "[etcd] table changed") {
		t.Fatalf("a vhid of another [etcd] table on the running connection: %v", err)
	}
	el.AppendStep(nil, now, elect.Shutdown{})
}
