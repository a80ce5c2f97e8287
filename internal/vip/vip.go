// Package vip manages the virtual addresses of carpd on network interfaces.
//
// A Manager is declarative and idempotent, in the manner of tailscale's
// router: each call to Set states which of the addresses carpd manages an
// interface must hold, and the Manager adds and removes only what differs
// from what the kernel reports. Calling Set again with the same arguments
// changes nothing, and an address removed underneath carpd is put back by
// the next call. Addresses carpd does not manage are never touched.
package vip

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AddOptions are applied to every address a Manager adds.
type AddOptions struct {
	// ValidLifetime, when non-zero, gives added addresses a finite valid
	// lifetime, after which the kernel removes them; zero means forever.
	// Lifetimes are whole seconds, rounded up. Set gives them to the
	// addresses it adds; Refresh renews them, so a master that calls
	// Refresh at least once a lifetime and then dies leaves no address
	// behind once the lifetime has run out.
	ValidLifetime time.Duration
	// PreferredLifetime, when non-zero, gives added addresses a finite
	// preferred lifetime, after which they are deprecated; zero means the
	// same as ValidLifetime. It must not exceed ValidLifetime.
	PreferredLifetime time.Duration
}

// foreverLft is the kernel's infinite lifetime (INFINITY_LIFE_TIME).
const foreverLft = math.MaxUint32

// lifetimes returns the valid and preferred lifetimes in seconds to install,
// or ok false when the addresses are permanent.
func (o AddOptions) lifetimes() (valid, preferred uint32, ok bool, err error) {
	if o.ValidLifetime < 0 || o.PreferredLifetime < 0 {
		return 0, 0, false, fmt.Errorf("negative address lifetime (valid %v, preferred %v)", o.ValidLifetime, o.PreferredLifetime)
	}
	if o.ValidLifetime == 0 && o.PreferredLifetime == 0 {
		return 0, 0, false, nil
	}
	secs := func(d time.Duration) (uint32, error) {
		s := (d + time.Second - 1) / time.Second
		if s >= foreverLft {
			return 0, fmt.Errorf("address lifetime %v too long", d)
		}
		return uint32(s), nil
	}
	valid = foreverLft
	if o.ValidLifetime > 0 {
		if valid, err = secs(o.ValidLifetime); err != nil {
			return 0, 0, false, err
		}
	}
	preferred = valid
	if o.PreferredLifetime > 0 {
		if preferred, err = secs(o.PreferredLifetime); err != nil {
			return 0, 0, false, err
		}
	}
	if preferred > valid {
		return 0, 0, false, fmt.Errorf("preferred lifetime %v exceeds valid lifetime %v", o.PreferredLifetime, o.ValidLifetime)
	}
	return valid, preferred, true, nil
}

// addReq is one address to add, as the OS layer receives it.
type addReq struct {
	Prefix netip.Prefix
	// NoDAD skips IPv6 duplicate address detection (IFA_F_NODAD): a
	// virtual address is expected to exist elsewhere on the link for a
	// moment, and must be usable at once.
	NoDAD bool
	// Lifetimes says whether ValidLft and PreferredLft (seconds, the
	// kernel's 0xffffffff meaning forever) apply; otherwise the address is
	// permanent.
	Lifetimes              bool
	ValidLft, PreferredLft uint32
}

// command returns the ip(8) command that does what r does.
func (r addReq) command(ifname string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip addr add %s dev %s", r.Prefix, ifname)
	if r.NoDAD {
		b.WriteString(" nodad")
	}
	if r.Lifetimes {
		fmt.Fprintf(&b, " valid_lft %s preferred_lft %s", lftString(r.ValidLft), lftString(r.PreferredLft))
	}
	return b.String()
}

func lftString(s uint32) string {
	if s == foreverLft {
		return "forever"
	}
	return fmt.Sprint(s)
}

// delCommand returns the ip(8) command that removes p from ifname.
func delCommand(ifname string, p netip.Prefix) string {
	return fmt.Sprintf("ip addr del %s dev %s", p, ifname)
}

// addrOS is what a Manager needs from the operating system: the addresses
// of a link, and adding and removing one. Errors are returned as the kernel
// gave them, so that EEXIST and EADDRNOTAVAIL can be recognised.
type addrOS interface {
	list(ifname string) ([]netip.Prefix, error)
	add(ifname string, r addReq) error
	// replace adds or updates the address (its lifetimes), as
	// `ip addr replace`.
	replace(ifname string, r addReq) error
	del(ifname string, p netip.Prefix) error
}

// Manager adds and removes virtual addresses. It keeps no state between
// calls and is safe for concurrent use, though concurrent calls for one
// interface race as ip(8) commands would.
type Manager struct {
	os   addrOS
	mu   sync.Mutex
	opts AddOptions
}

// SetOptions changes the options of the addresses added and refreshed
// from now on (a reload that changes advbase changes the lifetime).
func (m *Manager) SetOptions(o AddOptions) {
	m.mu.Lock()
	m.opts = o
	m.mu.Unlock()
}

func (m *Manager) options() AddOptions {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opts
}

// List returns the addresses the interface holds, as the kernel has them.
func (m *Manager) List(ifname string) ([]netip.Prefix, error) { return m.os.list(ifname) }

// Set makes the interface hold exactly the addresses of want among managed:
// every prefix in want is present (added if missing), every prefix in
// managed but not in want is absent (removed if present); a wanted address
// already present is left as it is (its lifetime too). Addresses not in
// managed are never touched (with nothing managed, the interface is not
// even looked at); every prefix of want must be in managed. A
// prefix is an address with its length: 192.0.2.50/32 and 192.0.2.50/24
// are different addresses. Removals are done before additions. IPv6
// addresses are added without duplicate address detection, and Set
// returns once the kernel delivers packets for the ones it added (see
// usableOS), so that they can be announced.
//
// Set returns what it changed as ip(8) command lines, such as
// "ip addr add 192.0.2.50/32 dev eth0", in the order done. An address that
// turns out to exist already when added (EEXIST), or to be gone already
// when removed (EADDRNOTAVAIL), counts as done and is not listed. A failure
// to add or remove one address does not stop the others: the error then
// joins every failure, and the lines list what did change.
func (m *Manager) Set(ifname string, managed, want []netip.Prefix) ([]string, error) {
	return m.SetPaced(ifname, managed, want, nil)
}

// SetPaced is Set, calling between (when not nil) before each batch of at
// most 64 additions or removals it asks the kernel for. The daemon's loop
// sends there the adverts that came due meanwhile: with 255 vrids taking
// over at once, the adverts of the masters already there do not wait for
// the new masters' addresses.
func (m *Manager) SetPaced(ifname string, managed, want []netip.Prefix, between func()) ([]string, error) {
	if ifname == "" {
		return nil, errors.New("no interface name")
	}
	valid, preferred, lifetimes, err := m.options().lifetimes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ifname, err)
	}
	managed, err = uniq(managed)
	if err != nil {
		return nil, fmt.Errorf("%s: managed: %w", ifname, err)
	}
	want, err = uniq(want)
	if err != nil {
		return nil, fmt.Errorf("%s: wanted: %w", ifname, err)
	}
	isManaged := setOf(managed)
	for _, p := range want {
		if !isManaged[p] {
			return nil, fmt.Errorf("%s: wanted %s is not among the managed addresses", ifname, p)
		}
	}
	if len(managed) == 0 {
		// Nothing of this interface's is managed (its vhids hold their
		// addresses under a lifetime of their own, say): nothing to
		// look at.
		return nil, nil
	}
	current, err := m.os.list(ifname)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	have, isWanted := setOf(current), setOf(want)

	var dels []netip.Prefix
	for _, p := range managed {
		if !isWanted[p] && have[p] {
			dels = append(dels, p)
		}
	}
	var adds []addReq
	for _, p := range want {
		if have[p] {
			// Renewing its lifetime is Refresh's: with 255 addresses
			// held, every change of one would cost 255 requests here.
			continue
		}
		adds = append(adds, addReq{Prefix: p, NoDAD: p.Addr().Is6(), Lifetimes: lifetimes, ValidLft: valid, PreferredLft: preferred})
	}
	var done []string
	var errs []error
	for i, err := range m.delAll(ifname, dels, between) {
		p := dels[i]
		switch {
		case err == nil:
			done = append(done, delCommand(ifname, p))
		case errors.Is(err, syscall.EADDRNOTAVAIL):
		default:
			errs = append(errs, fmt.Errorf("%s: %w", delCommand(ifname, p), err))
		}
	}
	var added6 []netip.Prefix
	for i, err := range m.addAll(ifname, adds, between) {
		r := adds[i]
		switch {
		case err == nil:
			done = append(done, r.command(ifname))
			if r.Prefix.Addr().Is6() {
				added6 = append(added6, r.Prefix)
			}
		case errors.Is(err, syscall.EEXIST):
		default:
			errs = append(errs, fmt.Errorf("%s: %w", r.command(ifname), err))
		}
	}
	m.waitUsable(ifname, added6, between)
	return done, errors.Join(errs...)
}

// usableOS is an addrOS that tells whether the kernel delivers packets
// for an address it holds. Linux adds an IPv6 address at once but
// installs its local route (without which a packet for it is not
// delivered) from a work queue, after the request that added it has
// returned: a neighbour told of the address at once may send packets
// that are dropped. Measured on this machine kind, idle, adding one
// address 500 times: the route missing on return 7 to 12 % of the time,
// for up to 4 to 7 ms. IPv4 addresses are usable on return.
type usableOS interface {
	usable(ifname string, p netip.Prefix) (bool, error)
}

// usableWait is the longest Set waits for the IPv6 addresses it added to
// become usable, usablePoll how often it looks meanwhile; past the wait
// it returns anyway (the addresses become usable when the kernel gets to
// them).
const (
	usableWait = 50 * time.Millisecond
	usablePoll = 100 * time.Microsecond
)

// waitUsable waits until the kernel delivers packets for each of ps, so
// that the caller announces them only then, or until usableWait has
// passed. It calls between (when not nil) every millisecond of waiting.
func (m *Manager) waitUsable(ifname string, ps []netip.Prefix, between func()) {
	u, ok := m.os.(usableOS)
	if !ok || len(ps) == 0 {
		return
	}
	start := time.Now()
	lastBetween := start
	for _, p := range ps {
		for {
			ok, err := u.usable(ifname, p)
			if ok || err != nil || time.Since(start) >= usableWait {
				break
			}
			if between != nil && time.Since(lastBetween) >= time.Millisecond {
				between()
				lastBetween = time.Now()
			}
			time.Sleep(usablePoll)
		}
	}
}

// batchOS is an addrOS that adds or removes many addresses of an interface
// at once (in few requests to the kernel), returning each one's error in
// order, and calling between (when not nil) before each batch.
type batchOS interface {
	addAll(ifname string, rs []addReq, between func()) []error
	delAll(ifname string, ps []netip.Prefix, between func()) []error
}

// batchSize is the most address changes asked for at once: a takeover of
// 255 vrids adds their 255 addresses in 4 batches.
const batchSize = 64

func (m *Manager) addAll(ifname string, rs []addReq, between func()) []error {
	if b, ok := m.os.(batchOS); ok {
		return b.addAll(ifname, rs, between)
	}
	return oneByOne(rs, between, func(r addReq) error { return m.os.add(ifname, r) })
}

func (m *Manager) delAll(ifname string, ps []netip.Prefix, between func()) []error {
	if b, ok := m.os.(batchOS); ok {
		return b.delAll(ifname, ps, between)
	}
	return oneByOne(ps, between, func(p netip.Prefix) error { return m.os.del(ifname, p) })
}

// oneByOne does each of xs, calling between before each batchSize of them.
func oneByOne[X any](xs []X, between func(), do func(X) error) []error {
	errs := make([]error, len(xs))
	for i, x := range xs {
		if i%batchSize == 0 && between != nil {
			between()
		}
		errs[i] = do(x)
	}
	return errs
}

// Refresh renews the lifetime of addresses the interface must hold, without
// listing the interface's addresses first: one `ip addr replace` each (an
// address that went missing is so put back). Without lifetimes it does
// nothing. A master calls it at every advertisement, which with many vhids
// is far cheaper than Set.
func (m *Manager) Refresh(ifname string, want []netip.Prefix) error {
	valid, preferred, lifetimes, err := m.options().lifetimes()
	if err != nil || !lifetimes {
		return err
	}
	var errs []error
	for _, p := range want {
		r := addReq{Prefix: p, NoDAD: p.Addr().Is6(), Lifetimes: true, ValidLft: valid, PreferredLft: preferred}
		if err := m.os.replace(ifname, r); err != nil {
			errs = append(errs, fmt.Errorf("refresh %s: %w", r.command(ifname), err))
		}
	}
	return errors.Join(errs...)
}

// Lease adds the addresses, or renews them, with a valid (and preferred)
// lifetime of its own, whatever the Manager's options: valid rounded DOWN
// to whole seconds, so that the kernel removes them no later than asked (a
// fence: an etcd holder's addresses must be gone before its deadline).
// One `ip addr replace` each; it returns once the kernel delivers packets
// for the IPv6 ones, as Set. A lifetime under one second is refused.
func (m *Manager) Lease(ifname string, want []netip.Prefix, valid time.Duration) error {
	secs := valid / time.Second
	if secs < 1 || secs >= foreverLft {
		return fmt.Errorf("%s: address lease lifetime %v out of range", ifname, valid)
	}
	var errs []error
	var added6 []netip.Prefix
	for _, p := range want {
		r := addReq{Prefix: p, NoDAD: p.Addr().Is6(), Lifetimes: true, ValidLft: uint32(secs), PreferredLft: uint32(secs)}
		if err := m.os.replace(ifname, r); err != nil {
			errs = append(errs, fmt.Errorf("lease %s: %w", r.command(ifname), err))
		} else if p.Addr().Is6() {
			added6 = append(added6, p)
		}
	}
	m.waitUsable(ifname, added6, nil) // usable at the first look, unless just added
	return errors.Join(errs...)
}

// uniq returns ps without repeats, in order, after checking that each is a
// plain IPv4 or IPv6 prefix.
func uniq(ps []netip.Prefix) ([]netip.Prefix, error) {
	seen := make(map[netip.Prefix]bool, len(ps))
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("bad address %q", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func setOf(ps []netip.Prefix) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}
