package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeOS is an interface table in memory. It records every add and del it
// is asked for as an ip(8) command, applies it, and can be told to fail.
type fakeOS struct {
	addrs   map[string][]netip.Prefix
	ops     []string
	listErr error
	addErr  map[netip.Prefix]error
	delErr  map[netip.Prefix]error
}

func (f *fakeOS) list(ifname string) ([]netip.Prefix, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	return slices.Clone(f.addrs[ifname]), nil
}

func (f *fakeOS) add(ifname string, r addReq) error {
	f.ops = append(f.ops, r.command(ifname))
	if err := f.addErr[r.Prefix]; err != nil {
		return err
	}
	if slices.Contains(f.addrs[ifname], r.Prefix) {
		return syscall.EEXIST
	}
	f.addrs[ifname] = append(f.addrs[ifname], r.Prefix)
	return nil
}

func (f *fakeOS) replace(ifname string, r addReq) error {
	f.ops = append(f.ops, strings.Replace(r.command(ifname), "ip addr add", "ip addr replace", 1))
	if !slices.Contains(f.addrs[ifname], r.Prefix) {
		f.addrs[ifname] = append(f.addrs[ifname], r.Prefix)
	}
	return nil
}

func (f *fakeOS) del(ifname string, p netip.Prefix) error {
	f.ops = append(f.ops, delCommand(ifname, p))
	if err := f.delErr[p]; err != nil {
		return err
	}
	i := slices.Index(f.addrs[ifname], p)
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	f.addrs[ifname] = slices.Delete(f.addrs[ifname], i, i+1)
	return nil
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestSet(t *testing.T) {
	own := "192.0.2.1/24"
	tests := []struct {
		name          string
		opts          AddOptions
		have          []netip.Prefix
		managed, want []netip.Prefix
		listErr       error
		addErr        map[netip.Prefix]error
		delErr        map[netip.Prefix]error
		wantLines     []string
		wantOps       []string
		wantAddrs     []netip.Prefix
		wantErr       bool
	}{
		{
			name:      "add missing VIP",
			have:      pfx(own),
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantAddrs: pfx(own, "192.0.2.50/32"),
		},
		{
			name:      "present VIP is left alone",
			have:      pfx(own, "192.0.2.50/32"),
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			wantAddrs: pfx(own, "192.0.2.50/32"),
		},
		{
			name:      "remove unwanted VIP, keep wanted and unmanaged",
			have:      pfx(own, "192.0.2.50/32", "192.0.2.51/32", "198.51.100.7/24"),
			managed:   pfx("192.0.2.50/32", "192.0.2.51/32"),
			want:      pfx("192.0.2.50/32"),
			wantLines: []string{"ip addr del 192.0.2.51/32 dev eth0"},
			wantOps:   []string{"ip addr del 192.0.2.51/32 dev eth0"},
			wantAddrs: pfx(own, "192.0.2.50/32", "198.51.100.7/24"),
		},
		{
			name:      "backup: want nothing",
			have:      pfx(own, "192.0.2.50/24", "2001:db8::50/64"),
			managed:   pfx("192.0.2.50/24", "2001:db8::50/64"),
			wantLines: []string{"ip addr del 192.0.2.50/24 dev eth0", "ip addr del 2001:db8::50/64 dev eth0"},
			wantOps:   []string{"ip addr del 192.0.2.50/24 dev eth0", "ip addr del 2001:db8::50/64 dev eth0"},
			wantAddrs: pfx(own),
		},
		{
			name:      "absent unwanted VIP: nothing to do",
			have:      pfx(own),
			managed:   pfx("192.0.2.50/32"),
			wantAddrs: pfx(own),
		},
		{
			name:      "IPv6 is added without DAD",
			managed:   pfx("2001:db8::50/64"),
			want:      pfx("2001:db8::50/64"),
			wantLines: []string{"ip addr add 2001:db8::50/64 dev eth0 nodad"},
			wantOps:   []string{"ip addr add 2001:db8::50/64 dev eth0 nodad"},
			wantAddrs: pfx("2001:db8::50/64"),
		},
		{
			name:      "removals before additions, each in input order",
			have:      pfx("192.0.2.52/32", "192.0.2.51/32"),
			managed:   pfx("192.0.2.50/32", "192.0.2.51/32", "192.0.2.52/32", "192.0.2.53/32"),
			want:      pfx("192.0.2.53/32", "192.0.2.50/32"),
			wantLines: []string{"ip addr del 192.0.2.51/32 dev eth0", "ip addr del 192.0.2.52/32 dev eth0", "ip addr add 192.0.2.53/32 dev eth0", "ip addr add 192.0.2.50/32 dev eth0"},
			wantOps:   []string{"ip addr del 192.0.2.51/32 dev eth0", "ip addr del 192.0.2.52/32 dev eth0", "ip addr add 192.0.2.53/32 dev eth0", "ip addr add 192.0.2.50/32 dev eth0"},
			wantAddrs: pfx("192.0.2.53/32", "192.0.2.50/32"),
		},
		{
			name:      "repeats are done once",
			managed:   pfx("192.0.2.50/32", "192.0.2.50/32"),
			want:      pfx("192.0.2.50/32", "192.0.2.50/32"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantAddrs: pfx("192.0.2.50/32"),
		},
		{
			name:      "same address with another length is another address",
			have:      pfx("192.0.2.50/24"),
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantAddrs: pfx("192.0.2.50/24", "192.0.2.50/32"),
		},
		{
			name:      "EEXIST on add counts as done, unlisted",
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			addErr:    map[netip.Prefix]error{netip.MustParsePrefix("192.0.2.50/32"): fmt.Errorf("wrapped: %w", syscall.EEXIST)},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0"},
			wantAddrs: nil,
		},
		{
			name:      "EADDRNOTAVAIL on del counts as done, unlisted",
			have:      pfx("192.0.2.50/32"),
			managed:   pfx("192.0.2.50/32"),
			delErr:    map[netip.Prefix]error{netip.MustParsePrefix("192.0.2.50/32"): syscall.EADDRNOTAVAIL},
			wantOps:   []string{"ip addr del 192.0.2.50/32 dev eth0"},
			wantAddrs: pfx("192.0.2.50/32"),
		},
		{
			name:    "one failure does not stop the others",
			have:    pfx("192.0.2.60/32", "192.0.2.61/32"),
			managed: pfx("192.0.2.50/32", "192.0.2.51/32", "192.0.2.60/32", "192.0.2.61/32"),
			want:    pfx("192.0.2.50/32", "192.0.2.51/32"),
			addErr:  map[netip.Prefix]error{netip.MustParsePrefix("192.0.2.50/32"): syscall.EPERM},
			delErr:  map[netip.Prefix]error{netip.MustParsePrefix("192.0.2.60/32"): syscall.EPERM},
			wantLines: []string{
				"ip addr del 192.0.2.61/32 dev eth0",
				"ip addr add 192.0.2.51/32 dev eth0",
			},
			wantOps: []string{
				"ip addr del 192.0.2.60/32 dev eth0",
				"ip addr del 192.0.2.61/32 dev eth0",
				"ip addr add 192.0.2.50/32 dev eth0",
				"ip addr add 192.0.2.51/32 dev eth0",
			},
			wantAddrs: pfx("192.0.2.60/32", "192.0.2.51/32"),
			wantErr:   true,
		},
		{
			name:      "wanted but not managed is refused before any change",
			have:      pfx("192.0.2.51/32"),
			managed:   pfx("192.0.2.51/32"),
			want:      pfx("192.0.2.50/32"),
			wantAddrs: pfx("192.0.2.51/32"),
			wantErr:   true,
		},
		{
			name:      "invalid prefix is refused",
			managed:   []netip.Prefix{{}},
			wantAddrs: nil,
			wantErr:   true,
		},
		{
			name:      "IPv4-mapped prefix is refused",
			managed:   pfx("::ffff:192.0.2.50/128"),
			want:      pfx("::ffff:192.0.2.50/128"),
			wantAddrs: nil,
			wantErr:   true,
		},
		{
			name:      "list failure",
			have:      pfx("192.0.2.50/32"),
			managed:   pfx("192.0.2.50/32"),
			listErr:   errors.New("no such device"),
			wantAddrs: pfx("192.0.2.50/32"),
			wantErr:   true,
		},
		{
			name:      "finite lifetimes",
			opts:      AddOptions{ValidLifetime: 30 * time.Second, PreferredLifetime: 10 * time.Second},
			managed:   pfx("192.0.2.50/32", "2001:db8::50/64"),
			want:      pfx("192.0.2.50/32", "2001:db8::50/64"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft 30 preferred_lft 10", "ip addr add 2001:db8::50/64 dev eth0 nodad valid_lft 30 preferred_lft 10"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft 30 preferred_lft 10", "ip addr add 2001:db8::50/64 dev eth0 nodad valid_lft 30 preferred_lft 10"},
			wantAddrs: pfx("192.0.2.50/32", "2001:db8::50/64"),
		},
		{
			name:      "valid lifetime only, rounded up; preferred follows",
			opts:      AddOptions{ValidLifetime: 2500 * time.Millisecond},
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft 3 preferred_lft 3"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft 3 preferred_lft 3"},
			wantAddrs: pfx("192.0.2.50/32"),
		},
		{
			name:      "preferred lifetime only: valid forever",
			opts:      AddOptions{PreferredLifetime: 10 * time.Second},
			managed:   pfx("192.0.2.50/32"),
			want:      pfx("192.0.2.50/32"),
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft forever preferred_lft 10"},
			wantOps:   []string{"ip addr add 192.0.2.50/32 dev eth0 valid_lft forever preferred_lft 10"},
			wantAddrs: pfx("192.0.2.50/32"),
		},
		{
			name:      "with lifetimes, a present address is left alone, not listed",
			opts:      AddOptions{ValidLifetime: 3 * time.Second},
			have:      pfx("192.0.2.50/32"),
			managed:   pfx("192.0.2.50/32", "192.0.2.51/32"),
			want:      pfx("192.0.2.50/32", "192.0.2.51/32"),
			wantLines: []string{"ip addr add 192.0.2.51/32 dev eth0 valid_lft 3 preferred_lft 3"},
			wantOps:   []string{"ip addr add 192.0.2.51/32 dev eth0 valid_lft 3 preferred_lft 3"},
			wantAddrs: pfx("192.0.2.50/32", "192.0.2.51/32"),
		},
		{
			name:    "preferred longer than valid is refused",
			opts:    AddOptions{ValidLifetime: 10 * time.Second, PreferredLifetime: 30 * time.Second},
			managed: pfx("192.0.2.50/32"),
			want:    pfx("192.0.2.50/32"),
			wantErr: true,
		},
		{
			name:    "negative lifetime is refused",
			opts:    AddOptions{ValidLifetime: -time.Second},
			managed: pfx("192.0.2.50/32"),
			want:    pfx("192.0.2.50/32"),
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOS{
				addrs:   map[string][]netip.Prefix{"eth0": slices.Clone(tt.have), "eth1": pfx("192.0.2.50/32")},
				listErr: tt.listErr,
				addErr:  tt.addErr,
				delErr:  tt.delErr,
			}
			m := &Manager{os: f, opts: tt.opts}
			lines, err := m.Set("eth0", tt.managed, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantLines, lines); diff != "" {
				t.Errorf("Set() lines mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOps, f.ops); diff != "" {
				t.Errorf("operations mismatch (-want +got):\n%s", diff)
			}
			cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
			if diff := cmp.Diff(tt.wantAddrs, f.addrs["eth0"], cmpPrefix); diff != "" {
				t.Errorf("eth0 addresses mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(pfx("192.0.2.50/32"), f.addrs["eth1"], cmpPrefix); diff != "" {
				t.Errorf("another interface was touched (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetIdempotent calls Set repeatedly with the same arguments: only the
// first call changes anything, and an address removed underneath is put
// back by the next call.
func TestSetIdempotent(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{"eth0": pfx("192.0.2.1/24", "192.0.2.51/32")}}
	m := &Manager{os: f}
	managed, want := pfx("192.0.2.50/32", "192.0.2.51/32"), pfx("192.0.2.50/32")

	steps := []struct {
		name      string
		before    func()
		wantLines []string
	}{
		{name: "first", wantLines: []string{"ip addr del 192.0.2.51/32 dev eth0", "ip addr add 192.0.2.50/32 dev eth0"}},
		{name: "again"},
		{name: "and again"},
		{
			name:      "after removal underneath",
			before:    func() { f.addrs["eth0"] = pfx("192.0.2.1/24") },
			wantLines: []string{"ip addr add 192.0.2.50/32 dev eth0"},
		},
		{name: "settled"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		f.ops = nil
		lines, err := m.Set("eth0", managed, want)
		if err != nil {
			t.Fatalf("%s: Set() error: %v", s.name, err)
		}
		if diff := cmp.Diff(s.wantLines, lines); diff != "" {
			t.Errorf("%s: Set() lines mismatch (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.wantLines, f.ops); diff != "" {
			t.Errorf("%s: operations mismatch (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestSetNoInterfaceName(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{}}
	if _, err := (&Manager{os: f}).Set("", nil, nil); err == nil {
		t.Error("Set(\"\") succeeded, want an error")
	}
}

func TestRefresh(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{"eth0": pfx("192.0.2.50/32")}}
	m := &Manager{os: f, opts: AddOptions{ValidLifetime: 3 * time.Second}}
	if err := m.Refresh("eth0", pfx("192.0.2.50/32", "2001:db8::50/128")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip addr replace 192.0.2.50/32 dev eth0 valid_lft 3 preferred_lft 3",
		"ip addr replace 2001:db8::50/128 dev eth0 nodad valid_lft 3 preferred_lft 3",
	}
	if diff := cmp.Diff(want, f.ops); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	forever := &Manager{os: f}
	f.ops = nil
	if err := forever.Refresh("eth0", pfx("192.0.2.50/32")); err != nil || len(f.ops) != 0 {
		t.Errorf("Refresh without lifetimes: err %v, ops %q; want nothing done", err, f.ops)
	}
}

// TestLease: Lease gives its own lifetime, rounded down (never later than
// asked), whatever the Manager's options, and refuses less than a second.
func TestLease(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{"eth0": nil}}
	m := &Manager{os: f, opts: AddOptions{ValidLifetime: 9 * time.Second}}
	if err := m.Lease("eth0", pfx("192.0.2.50/32", "2001:db8::50/128"), 2900*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip addr replace 192.0.2.50/32 dev eth0 valid_lft 2 preferred_lft 2",
		"ip addr replace 2001:db8::50/128 dev eth0 nodad valid_lft 2 preferred_lft 2",
	}
	if diff := cmp.Diff(want, f.ops); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	f.ops = nil
	for _, d := range []time.Duration{999 * time.Millisecond, 0, -time.Second} {
		if err := m.Lease("eth0", pfx("192.0.2.50/32"), d); err == nil || len(f.ops) != 0 {
			t.Errorf("Lease %v: err %v, ops %q; want refused", d, err, f.ops)
		}
	}
}

// TestSetPaced: between is called before each batch of at most batchSize
// removals, then of additions, so that the caller can do what came due
// meanwhile.
func TestSetPaced(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{}}
	m := &Manager{os: f}
	var many []netip.Prefix
	for i := range 200 {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(100 + i/250), byte(1 + i%250)}), 32))
	}
	var at []int // len(f.ops) at each call
	between := func() { at = append(at, len(f.ops)) }
	if _, err := m.SetPaced("eth0", many, many, between); err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 64, 128, 192}; !slices.Equal(at, want) {
		t.Errorf("adding 200: between at %v, want %v", at, want)
	}
	at = nil
	if _, err := m.SetPaced("eth0", many, many[:130], between); err != nil {
		t.Fatal(err)
	}
	if want := []int{200, 264}; !slices.Equal(at, want) {
		t.Errorf("removing 70: between at %v, want %v", at, want)
	}
	at = nil
	if _, err := m.SetPaced("eth0", many, many[:130], between); err != nil || len(at) != 0 {
		t.Errorf("nothing to do: between called %d times (%v)", len(at), err)
	}
}

// TestSetNothingManaged: with nothing managed, Set does not ask the kernel
// for the interface's addresses (an interface that carries only etcd
// vhids, whose addresses are the Lease's).
func TestSetNothingManaged(t *testing.T) {
	f := &fakeOS{addrs: map[string][]netip.Prefix{"eth0": pfx("192.0.2.50/32")}, listErr: errors.New("listed")}
	m := &Manager{os: f}
	done, err := m.Set("eth0", nil, nil)
	if err != nil || len(done) != 0 || len(f.ops) != 0 {
		t.Errorf("Set with nothing managed: %q, %v, ops %q; want nothing done and no list", done, err, f.ops)
	}
	if _, err := m.Set("eth0", nil, pfx("192.0.2.50/32")); err == nil {
		t.Error("Set wanting an address not managed: no error")
	}
}
