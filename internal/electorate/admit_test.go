package electorate

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/vrrp"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// TestAdmission: on an interface with a CARP vhid 1 and a VRRP vrid 2
// (IPv4), a datagram goes to its protocol by its version nibble; what
// passes is admitted for its slot, what fails is counted on the
// interface and the host, by protocol and reason, and logged at most once
// per reason and interval.
func TestAdmission(t *testing.T) {
	p := netip.MustParsePrefix
	cfg := &config.Config{}
	carpVC := config.VHID{VHID: 1, AdvBase: 1, Password: "pw", Addresses: []netip.Prefix{p("192.0.2.50/32")}}
	vrrpVC := config.VHID{VHID: 2, Version: config.VersionVRRP, VRRPPriority: 100, VRRPInterval: 100, Addresses: []netip.Prefix{p("192.0.2.60/32")}}
	var logs bytes.Buffer
	clock := &fixedClock{time.Unix(1e9, 0)}
	drops := NewDrops(slog.New(slog.NewTextHandler(&logs, nil)), clock)
	ic := &Counters{}
	adm := NewAdmission(drops)
	ai := adm.Interface(2, "eth0", ic)
	for _, vc := range []*config.VHID{&carpVC, &vrrpVC} {
		els, err := New(cfg, vc, func() uint64 { return 1 }, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, el := range els {
			ai.Add(vc.VHID, el)
		}
	}
	src, group := netip.MustParseAddr("192.0.2.21"), carp.Group(carp.IPv4)
	carpAdvert := func(pass string, vhid uint8) []byte {
		a := carp.Advert{VHID: vhid, AdvBase: 1, Counter: 77}
		a.Digest = carp.NewAuthenticator(pass, vhid, []netip.Addr{p("192.0.2.50/32").Addr()}).Digest(a.Counter)
		return a.Marshal()
	}
	vrrpAdvert := func(vrid uint8) []byte {
		b, err := vrrp.Advert{VRID: vrid, Priority: 100, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.60")}}.Marshal(src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	admit := func(ifindex int, b []byte) (Admitted, bool) {
		return adm.Admit(carp.IPv4, Packet{IfIndex: ifindex, Src: src, Dst: group, TTL: carp.TTL, Payload: b}, &vrrp.Advert{})
	}

	if a, ok := admit(2, carpAdvert("pw", 1)); !ok || a.Slot != 0 || a.Num != 1 || a.IfIndex != 2 || a.Drops != DropsOf("carp") {
		t.Errorf("CARP advert: %+v, %v; want vhid 1 of slot 0 admitted", a, ok)
	}
	if a, ok := admit(2, vrrpAdvert(2)); !ok || a.Slot != 1 || a.Num != 2 || a.Drops != DropsOf("vrrp") {
		t.Errorf("VRRP advert: %+v, %v; want vrid 2 of slot 1 admitted", a, ok)
	}
	if _, ok := admit(3, carpAdvert("pw", 1)); ok {
		t.Error("an advert on an interface without vhids was admitted")
	}
	for _, b := range [][]byte{carpAdvert("forged", 1), carpAdvert("forged", 1), carpAdvert("pw", 9), vrrpAdvert(9)} {
		if a, ok := admit(2, b); ok {
			t.Errorf("admitted %+v, want a drop", a)
		}
	}
	var st api.Stats
	ic.FillStats(&st, "eth0", true)
	drops.FillStats(&st)
	if st.DroppedBadAuth != 2 || st.DroppedBadVHID != 1 || st.VRRP.Drops["badvrid"] != 1 || drops.CARP[carp.DropAuth].Load() != 2 ||
		st.ReceivedInet != 4 || st.VRRP.ReceivedInet != 2 {
		t.Errorf("stats %+v", st)
	}
	if got := strings.Count(logs.String(), `msg="carp: dropped adverts" reason=badauth`); got != 1 {
		t.Errorf("%d warnings of badauth drops, want 1 (then suppressed):\n%s", got, logs.String())
	}
	if strings.Contains(logs.String(), "badvhid") || strings.Contains(logs.String(), "badvrid") {
		t.Errorf("a drop of another vhid's advert was logged above debug level:\n%s", logs.String())
	}
	clock.t = clock.t.Add(dropLogInterval)
	admit(2, carpAdvert("forged", 1))
	if !strings.Contains(logs.String(), "reason=badauth iface=eth0 from=192.0.2.21 ttl=255 vhid=1 suppressed=1") {
		t.Errorf("no second warning with the suppressed count after %v:\n%s", dropLogInterval, logs.String())
	}

	// Without a VRRP instance, a VRRPv3 datagram is CARP's unknown version.
	bare := NewAdmission(drops)
	bare.Interface(2, "eth0", &Counters{})
	if _, ok := bare.Admit(carp.IPv4, Packet{IfIndex: 2, Src: src, Dst: group, TTL: carp.TTL, Payload: vrrpAdvert(2)}, &vrrp.Advert{}); ok ||
		drops.CARP[carp.DropVersion].Load() != 1 {
		t.Errorf("VRRP datagram without instance: admitted %v, badver %d; want dropped as badver", ok, drops.CARP[carp.DropVersion].Load())
	}
}
