package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// New returns a Manager that works through the netlink handle h, or in the
// network namespace current at each call when h is nil, and applies opts to
// every address it adds. Tests and the lab pass a handle made with
// netlink.NewHandleAt to manage a namespace without switching threads.
//
// A nil handle is replaced by one persistent handle of the current
// namespace when it can be made (else the zero Handle, which opens a socket
// per request): a master renews its addresses at every advert, and with
// many vhids a socket per request costs more than the request. A nil
// handle also gives the Manager its own socket in the current namespace
// for the renewals (Refresh), which do not wait for the kernel's answer
// (see refresher); with a handle of the caller's, or without that socket,
// a renewal waits for its acknowledgement.
func New(h *netlink.Handle, opts AddOptions) *Manager {
	o := &netlinkOS{h: h, index: map[string]int{}}
	if h == nil {
		var err error
		if o.h, err = netlink.NewHandle(); err != nil {
			o.h = &netlink.Handle{}
		}
		if x, err := newRefresher(); err == nil {
			o.async = x
		}
		if x, err := newBatcher(); err == nil {
			o.batch = x
		}
	}
	return &Manager{os: o, opts: opts}
}

// EchoPort returns the netlink port ID that marks the kernel's
// notifications of the Manager's renewals (their nlmsg_pid), or 0 when
// its renewals go through the netlink handle. A monitor can leave those
// notifications out: a renewal changes nothing but the lifetimes of an
// address the daemon holds, or puts back one it holds.
func (m *Manager) EchoPort() uint32 {
	if o, ok := m.os.(*netlinkOS); ok && o.async != nil {
		return o.async.port
	}
	return 0
}

// Close closes the Manager's renewal socket, which ends the goroutine
// that reads it, and its socket for batches; renewals, additions and
// removals go through the netlink handle from then on. A
// handle given to New stays open: it is the caller's.
func (m *Manager) Close() error {
	o, ok := m.os.(*netlinkOS)
	if !ok {
		return nil
	}
	var errs []error
	if o.batch != nil {
		errs = append(errs, o.batch.close())
	}
	if o.async != nil {
		errs = append(errs, o.async.close())
	}
	return errors.Join(errs...)
}

// netlinkOS is the real addrOS, through rtnetlink.
type netlinkOS struct {
	h     *netlink.Handle
	async *refresher // nil: renewals through h
	batch *batcher   // nil: additions and removals through h, one by one

	mu    sync.Mutex
	index map[string]int // interface indexes by name, for replace
}

// link looks the interface up by name, and notes its index for replace:
// every lookup by name puts right an index that went stale (the name now
// on another interface: renamed, or deleted and made again). The daemon
// sets a vhid's addresses through list before it renews them.
func (o *netlinkOS) link(ifname string) (netlink.Link, error) {
	l, err := o.h.LinkByName(ifname)
	o.mu.Lock()
	if err != nil {
		delete(o.index, ifname)
	} else {
		o.index[ifname] = l.Attrs().Index
	}
	o.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return l, nil
}

func (o *netlinkOS) list(ifname string) ([]netip.Prefix, error) {
	l, err := o.link(ifname)
	if err != nil {
		return nil, err
	}
	var addrs []netlink.Addr
	for range 3 { // a dump interrupted by a concurrent change is retried
		addrs, err = o.h.AddrList(l, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (o *netlinkOS) add(ifname string, r addReq) error {
	l, err := o.link(ifname)
	if err != nil {
		return err
	}
	return o.h.AddrAdd(l, netlinkAddr(r))
}

// usable reports whether the kernel routes packets for p's address to
// this host: a route lookup through the interface finds a local route
// (`ip route get ADDR oif IFNAME`, which in a VRF looks in its table).
func (o *netlinkOS) usable(ifname string, p netip.Prefix) (bool, error) {
	opts := &netlink.RouteGetOptions{Oif: ifname}
	o.mu.Lock()
	if idx, ok := o.index[ifname]; ok {
		opts = &netlink.RouteGetOptions{OifIndex: idx}
	}
	o.mu.Unlock()
	rs, err := o.h.RouteGetWithOptions(p.Addr().AsSlice(), opts)
	if err != nil {
		return false, err
	}
	return len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL, nil
}

// replace is called at every advert: it looks the interface up by name
// only once, and again if the cached index fails (the interface was
// recreated). With the refresher, a renewal on the cached index is sent
// without waiting; when an earlier one failed, the interfaces it was for
// are looked up by name again, and the failure is returned (once).
func (o *netlinkOS) replace(ifname string, r addReq) error {
	o.mu.Lock()
	idx, ok := o.index[ifname]
	o.mu.Unlock()
	if ok && o.async != nil {
		errs, stale := o.forgetFailed(ifname)
		if !stale && o.async.send(ifname, idx, r) == nil {
			return errors.Join(errs...)
		}
		// Not sent, or perhaps on a stale index: this one waits for
		// its answer, by name.
		return errors.Join(append(errs, o.replaceByName(ifname, r))...)
	}
	if ok {
		err := o.h.AddrReplace(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: ifname}}, netlinkAddr(r))
		if err == nil {
			return nil
		}
	}
	return o.replaceByName(ifname, r)
}

// forgetFailed takes the refresher's failures: the interfaces they were
// for are looked up by name again (every interface, for a failure whose
// request is no longer known). A failure of a request sent to an index
// the interface no longer has in the cache, which a lookup by name has
// replaced since, is dropped: the renewal after that lookup went to the
// right index (an interface made again refuses every renewal of the call
// that found it stale, and their refusals arrive one by one). It returns
// the failures and whether ifname's cached index may be stale.
func (o *netlinkOS) forgetFailed(ifname string) (errs []error, stale bool) {
	failed := o.async.failures()
	if len(failed) == 0 {
		return nil, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range failed {
		if idx, ok := o.index[f.ifname]; ok && f.ifname != "" && idx != f.index {
			continue // superseded
		}
		if f.ifname == "" {
			clear(o.index)
		} else {
			delete(o.index, f.ifname)
		}
		stale = stale || f.ifname == "" || f.ifname == ifname
		errs = append(errs, f.err)
	}
	return errs, stale
}

func (o *netlinkOS) replaceByName(ifname string, r addReq) error {
	l, err := o.link(ifname)
	if err != nil {
		return err
	}
	return o.h.AddrReplace(l, netlinkAddr(r))
}

func (o *netlinkOS) del(ifname string, p netip.Prefix) error {
	l, err := o.link(ifname)
	if err != nil {
		return err
	}
	return o.h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)})
}

// netlinkAddr is the netlink form of r. IPv4 keeps the kernel's default
// behaviour (prefix route, broadcast address derived from the mask).
func netlinkAddr(r addReq) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(r.Prefix)}
	if r.NoDAD {
		a.Flags |= unix.IFA_F_NODAD
	}
	if r.Lifetimes {
		// Both fields are non-zero here, so netlink sends IFA_CACHEINFO.
		a.ValidLft, a.PreferedLft = int(r.ValidLft), int(r.PreferredLft)
	}
	return a
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf returns the local address of a with its prefix length.
func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := a.Mask.Size()
	if bits != ip.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}
