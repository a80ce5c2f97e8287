// Package host builds the adapters the daemon runs on, on Linux: the raw
// protocol-112 sockets (advsock), the address manager (vip), the
// announcer (announce), link state and changes (netmon) and virtual MAC
// interfaces (vmac). It converts between their types and the daemon's.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/carpd/carpd/internal/advsock"
	"github.com/carpd/carpd/internal/announce"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/netmon"
	"github.com/carpd/carpd/internal/vip"
	"github.com/carpd/carpd/internal/vmac"
	"golang.org/x/sys/unix"
)

// Host is the daemon's adapter set on this machine.
type Host struct {
	daemon.Host
	ann    *announce.Announcer
	routes *routes // the bgp speaker, when some vhid has mover = "bgp"
}

// Open builds the adapters for cfg in the current network namespace: it
// opens the protocol sockets of the address families cfg uses, with cfg's
// TOS, and gives the virtual addresses the lifetime the daemon renews
// (daemon.AddressLifetime); the bgp speaker logs through log. It needs
// CAP_NET_RAW and CAP_NET_ADMIN.
func Open(cfg *config.Config, log *slog.Logger) (*Host, error) {
	addrs := vip.New(nil, vip.AddOptions{ValidLifetime: daemon.AddressLifetime(cfg)})
	h := &Host{Host: daemon.Host{
		Addresses:   addresses{addrs},
		Links:       Links{},
		Monitor:     monitor{echo: addrs.EchoPort()},
		VirtualMACs: virtualMACs{},
		Prioritize:  prioritize,
	}}
	ipv4, ipv6 := cfg.Families()
	if ipv4 {
		c, err := advsock.ListenIPv4(cfg.TOS())
		if err != nil {
			return nil, fmt.Errorf("opening the IPv4 protocol socket: %w (carpd needs CAP_NET_RAW and CAP_NET_ADMIN)", err)
		}
		h.Conns[carp.IPv4] = &conn4{IPv4Conn: c}
	}
	if ipv6 {
		c, err := advsock.ListenIPv6(cfg.TOS())
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("opening the IPv6 protocol socket: %w (carpd needs CAP_NET_RAW and CAP_NET_ADMIN)", err)
		}
		h.Conns[carp.IPv6] = &conn6{IPv6Conn: c}
	}
	h.ann = announce.New()
	h.Announcer = h.ann
	if cfg.BGP != nil && usesBGP(cfg) {
		r, err := startRoutes(context.Background(), cfg.BGP, log)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("starting the bgp speaker: %w", err)
		}
		h.routes, h.Routes = r, r
	}
	return h, nil
}

// Close closes the sockets (the daemon closes the protocol sockets when
// it stops; closing them again does no harm).
func (h *Host) Close() error {
	var errs []error
	for _, c := range h.Conns {
		if c != nil {
			_ = c.Close()
		}
	}
	if h.ann != nil {
		errs = append(errs, h.ann.Close())
	}
	if h.routes != nil {
		// A NOTIFICATION Cease to each peer: they drop every route.
		errs = append(errs, h.routes.sp.Close())
	}
	if a, ok := h.Addresses.(addresses); ok {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}

// addresses is vip's Manager with the lifetime as the daemon sets it.
type addresses struct{ *vip.Manager }

func (a addresses) SetLifetime(valid time.Duration) {
	a.SetOptions(vip.AddOptions{ValidLifetime: valid})
}

// conn4 and conn6 adapt the sockets' batch reads to the daemon's Packet,
// through a buffer of the sockets' own, allocated once.
type conn4 struct {
	*advsock.IPv4Conn
	buf []advsock.Packet
}

func (c *conn4) ReadBatch(ps []daemon.Packet) (int, error) {
	return packets(c.IPv4Conn.ReadBatch, &c.buf, ps)
}

type conn6 struct {
	*advsock.IPv6Conn
	buf []advsock.Packet
}

func (c *conn6) ReadBatch(ps []daemon.Packet) (int, error) {
	return packets(c.IPv6Conn.ReadBatch, &c.buf, ps)
}

func packets(read func([]advsock.Packet) (int, error), buf *[]advsock.Packet, ps []daemon.Packet) (int, error) {
	if len(*buf) < len(ps) {
		*buf = make([]advsock.Packet, len(ps))
	}
	n, err := read((*buf)[:len(ps)])
	for i, p := range (*buf)[:n] {
		ps[i] = daemon.Packet{IfIndex: p.IfIndex, Src: p.Src, Dst: p.Dst, TTL: p.TTL, Payload: p.Payload}
	}
	return n, err
}

// Links reads link state through netlink. It needs no privilege: `carpd
// --check` uses it alone.
type Links struct{}

// Link returns the state of the named interface.
func (Links) Link(name string) (daemon.Link, error) {
	l, err := netmon.LinkByName(name)
	if errors.Is(err, netmon.ErrNotFound) {
		err = daemon.ErrNoInterface
	}
	return link(l), err
}

// Source returns the interface's own address adverts to dst leave from.
func (Links) Source(ifindex int, dst netip.Addr, exclude []netip.Addr) (netip.Addr, error) {
	if dst.Is6() {
		return advsock.SourceIPv6To(ifindex, dst, exclude)
	}
	return advsock.PrimaryIPv4(ifindex, exclude)
}

func link(l netmon.Link) daemon.Link {
	return daemon.Link{Index: l.Index, Name: l.Name, MAC: l.MAC, Up: l.Up}
}

// monitor is the daemon's Monitor. The notifications of the address
// manager's renewals (from the netlink port echo) are left out.
type monitor struct{ echo uint32 }

// Subscribe subscribes through netmon and converts its updates.
func (m monitor) Subscribe(ctx context.Context, report func(daemon.Change)) (<-chan error, error) {
	return netmon.SubscribeIgnoring(ctx, m.echo, func(u netmon.Update) {
		report(daemon.Change{
			IsLink:  u.IsLink,
			Link:    link(u.Link),
			Deleted: u.Deleted,
			Addr:    daemon.AddrChange{LinkIndex: u.Addr.LinkIndex, Prefix: u.Addr.Prefix, Removed: u.Addr.Removed},
		})
	})
}

type virtualMACs struct{}

func (virtualMACs) Ensure(parent string, vhid uint8) (daemon.Link, error) {
	name, _, err := vmac.Ensure(parent, vhid)
	if err != nil {
		return daemon.Link{}, err
	}
	l, err := netmon.LinkByName(name)
	return link(l), err
}

func (virtualMACs) Remove(name string) error { return vmac.Remove(name) }

// LoopNice is the nice value of carpd's threads: the adverts leave on
// time while the machine is busy (other processes at the default 0 get a
// tenth of the CPU time carpd gets when both want it). Hooks and checks
// start at 0 again (hooks.ExecWithoutCapabilities).
const LoopNice = -10

// prioritize gives every thread of carpd LoopNice, and carpd's autogroup
// too when carpd leads its session (raiseAutogroup). It needs
// CAP_SYS_NICE (root has it; the packaged unit grants it); without, carpd
// runs at the priority it was started with.
//
// On Linux a nice value is a thread's, and a new thread takes its
// creator's: with every thread at LoopNice, the threads the runtime starts
// later have it too. The loop is not bound to a thread of its own (with
// one processor it runs on whichever thread woke, see Clock), so all of
// them get it; prioritize goes over the threads until no new one appears.
func prioritize() error {
	done := map[int]bool{}
	for range 10 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("listing carpd's threads: %w", err)
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			err = unix.Setpriority(unix.PRIO_PROCESS, tid, LoopNice)
			if errors.Is(err, unix.ESRCH) {
				continue // gone meanwhile
			}
			if err != nil {
				return fmt.Errorf("setting the nice value of carpd's threads to %d: %w (carpd needs CAP_SYS_NICE for it)", LoopNice, err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			break
		}
	}
	return raiseAutogroup()
}
