package craft

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Sender writes finished IP packets, header included, out of one
// interface. It sends through a raw socket of protocol IPPROTO_RAW, with
// which the kernel takes the IP header as written (IP_HDRINCL, and
// IPV6_HDRINCL since Linux 4.5): source, TTL or hop limit, TOS and flags
// are the caller's, spoofed or not. For IPv4 the kernel still fills in the
// header checksum and the total length, and the ID when it is 0. The
// socket receives nothing. Writes go out in batches (sendmmsg).
type Sender struct {
	ifi   *net.Interface
	conn  net.PacketConn
	batch interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
	bufs [][1][]byte
}

// socketBuffer is the socket buffer the Sender (and the Listener) ask for,
// so that a batch never waits for room at a high rate (and a burst of
// adverts is not lost).
const socketBuffer = 4 << 20

// NewSender opens a raw socket of family 4 or 6 bound to interface iface
// (SO_BINDTODEVICE; multicast leaves through it too). It needs
// CAP_NET_RAW, and runs in the network namespace of the calling thread.
func NewSender(family int, iface string) (*Sender, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	s := &Sender{ifi: ifi}
	var steps []func() error
	switch family {
	case 4:
		c, err := net.ListenPacket(fmt.Sprintf("ip4:%d", syscall.IPPROTO_RAW), "0.0.0.0")
		if err != nil {
			return nil, fmt.Errorf("open raw IPv4 socket: %w", err)
		}
		s.conn = c
		raw, err := ipv4.NewRawConn(c)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("set IP_HDRINCL: %w", err)
		}
		s.batch = raw
		steps = append(steps,
			func() error { return raw.SetMulticastInterface(ifi) },
			func() error { return raw.SetMulticastLoopback(false) })
	case 6:
		c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", syscall.IPPROTO_RAW), "::")
		if err != nil {
			return nil, fmt.Errorf("open raw IPv6 socket: %w", err)
		}
		s.conn = c
		p := ipv6.NewPacketConn(c)
		s.batch = p
		steps = append(steps,
			func() error { return setsockopt(c, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1) },
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetMulticastLoopback(false) })
	default:
		return nil, fmt.Errorf("address family %d: want 4 or 6", family)
	}
	steps = append(steps,
		func() error { return bindToDevice(s.conn, iface) },
		func() error { return setBuffer(s.conn, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF) })
	for _, step := range steps {
		if err := step(); err != nil {
			s.conn.Close()
			return nil, fmt.Errorf("raw IPv%d socket on %s: %w", family, iface, err)
		}
	}
	return s, nil
}

func setsockopt(c net.PacketConn, level, opt, value int) error {
	sc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, value) }); err != nil {
		return err
	}
	return serr
}

// setBuffer sets a socket buffer to socketBuffer bytes: beyond the sysctl
// limit with CAP_NET_ADMIN (force), else up to it.
func setBuffer(c net.PacketConn, force, plain int) error {
	if err := setsockopt(c, unix.SOL_SOCKET, force, socketBuffer); err != nil {
		return setsockopt(c, unix.SOL_SOCKET, plain, socketBuffer)
	}
	return nil
}

func bindToDevice(c net.PacketConn, iface string) error {
	sc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), iface) }); err != nil {
		return err
	}
	return serr
}

// Close closes the socket.
func (s *Sender) Close() error { return s.conn.Close() }

// Interface returns the interface the sender writes to.
func (s *Sender) Interface() *net.Interface { return s.ifi }

// addr is the socket address of dst for sendmmsg: the kernel routes on it
// (the header's destination is what the wire carries). It has no zone:
// the socket is bound to the interface, which scopes link-local
// destinations (a zone would be looked up by name in the namespace of
// whichever thread writes).
func (s *Sender) addr(dst netip.Addr) *net.IPAddr {
	return &net.IPAddr{IP: dst.AsSlice()}
}

// WriteBatch writes pkts (each a whole IP packet) towards dst in one
// system call and returns how many the kernel took; when that is fewer
// than len(pkts), the error says why the next one was refused.
func (s *Sender) WriteBatch(pkts [][]byte, dst netip.Addr) (int, error) {
	n, err := s.writeBatch(pkts, dst)
	return max(n, 0), err // x/net says -1 when the first one fails
}

func (s *Sender) writeBatch(pkts [][]byte, dst netip.Addr) (int, error) {
	if len(pkts) > len(s.msgs) {
		s.msgs = make([]ipv4.Message, len(pkts))
		s.bufs = make([][1][]byte, len(pkts))
	}
	to := s.addr(dst)
	for i, p := range pkts {
		s.bufs[i][0] = p
		s.msgs[i] = ipv4.Message{Buffers: s.bufs[i][:], Addr: to}
	}
	return s.batch.WriteBatch(s.msgs[:len(pkts)], 0)
}

// Plan says how many packets Run sends and how fast. Run stops at the
// first of Count and Duration that is set; with a Rate, a Duration stands
// for the Rate × Duration packets due in it (rounded up), which are all
// sent.
type Plan struct {
	// Rate is in packets per second; 0 sends as fast as the socket takes
	// them.
	Rate     float64
	Count    int
	Duration time.Duration
	// Batch is the most packets written in one system call (64 when 0).
	// At a low rate every packet goes out on its own, on time.
	Batch int
}

// Result is what Run did.
type Result struct {
	Sent int // packets the kernel took
	// Failed counts the packets the kernel refused (ENOBUFS when the
	// interface queue is full, ...); they are not retried.
	Failed   int
	FirstErr error
	// Elapsed runs from the first write to the end of the last packet's
	// slot (Count/Rate for a paced count) or to the Duration.
	Elapsed time.Duration
	// MaxLag is how far behind its schedule a paced run fell at worst:
	// the time between a packet being due and its batch being written.
	MaxLag time.Duration
}

// Rate is the rate reached, in packets per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Run sends the packets next returns (next(i) is the i-th packet, from 0;
// nil ends the run early) to dst, paced by plan, until the plan is done or
// ctx ends. Packet i is due Rate seconds times i after the start: a late
// sender catches up in batches, and never sends ahead of time.
func (s *Sender) Run(ctx context.Context, next func(i int) []byte, dst netip.Addr, plan Plan) Result {
	if plan.Batch <= 0 {
		plan.Batch = 64
	}
	var res Result
	batch := make([][]byte, 0, plan.Batch)
	start := time.Now()
	var end time.Time
	if plan.Duration > 0 {
		end = start.Add(plan.Duration)
		if plan.Rate > 0 {
			// Paced, the duration is a count: the packets due before
			// the end, sent even if the last of them run late.
			n := int(math.Ceil(plan.Rate * plan.Duration.Seconds()))
			if plan.Count == 0 || n < plan.Count {
				plan.Count = n
			}
			end = time.Time{}
		}
	}
	i := 0 // packets attempted
	done := false
	for !done && ctx.Err() == nil {
		if plan.Count > 0 && i >= plan.Count {
			break
		}
		now := time.Now()
		if !end.IsZero() && !now.Before(end) {
			break
		}
		n := plan.Batch
		if plan.Rate > 0 {
			due := int(plan.Rate*now.Sub(start).Seconds()) + 1 - i
			if due <= 0 {
				wake := start.Add(time.Duration(float64(i) / plan.Rate * float64(time.Second)))
				if !end.IsZero() && wake.After(end) {
					break
				}
				sleep(ctx, wake.Sub(now))
				continue
			}
			n = min(n, due)
			lag := now.Sub(start.Add(time.Duration(float64(i) / plan.Rate * float64(time.Second))))
			res.MaxLag = max(res.MaxLag, lag)
		}
		if plan.Count > 0 {
			n = min(n, plan.Count-i)
		}
		batch = batch[:0]
		for range n {
			p := next(i + len(batch))
			if p == nil {
				done = true
				break
			}
			batch = append(batch, p)
		}
		for len(batch) > 0 {
			k, err := s.WriteBatch(batch, dst)
			res.Sent += k
			i += k
			batch = batch[k:]
			if err != nil {
				if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
					continue
				}
				if res.FirstErr == nil {
					res.FirstErr = err
				}
				// The first of the rest was refused: skip it.
				res.Failed++
				i++
				batch = batch[1:]
			}
		}
	}
	last := time.Now()
	if plan.Rate > 0 && plan.Count > 0 && i >= plan.Count && ctx.Err() == nil {
		// The last packet's slot ends 1/Rate after it is due.
		slotEnd := start.Add(time.Duration(float64(i) / plan.Rate * float64(time.Second)))
		sleep(ctx, time.Until(slotEnd))
		last = time.Now()
	}
	if plan.Duration > 0 && ctx.Err() == nil {
		sleep(ctx, time.Until(start.Add(plan.Duration)))
		last = time.Now()
	}
	res.Elapsed = last.Sub(start)
	return res
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Listener reads the protocol-112 packets that reach one interface,
// multicast adverts included (it joins 224.0.0.18 or ff02::12 there).
type Listener struct {
	v4  *ipv4.RawConn
	v6  *ipv6.PacketConn
	ifi *net.Interface
	buf []byte
}

// Listen opens a raw protocol-112 socket of family 4 or 6 with a 4 MB
// receive buffer (with CAP_NET_ADMIN; else the most net.core.rmem_max
// allows) and joins the CARP group on iface. It needs CAP_NET_RAW.
func Listen(family int, iface string) (*Listener, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	l := &Listener{ifi: ifi, buf: make([]byte, 0xffff)}
	switch family {
	case 4:
		c, err := net.ListenPacket(fmt.Sprintf("ip4:%d", carp.Protocol), "0.0.0.0")
		if err != nil {
			return nil, fmt.Errorf("open raw IPv4 socket: %w", err)
		}
		if err := setBuffer(c, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF); err != nil {
			c.Close()
			return nil, fmt.Errorf("receive buffer: %w", err)
		}
		raw, err := ipv4.NewRawConn(c)
		if err != nil {
			c.Close()
			return nil, err
		}
		if err := raw.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			raw.Close()
			return nil, err
		}
		if err := raw.JoinGroup(ifi, &net.IPAddr{IP: carp.GroupIPv4.AsSlice()}); err != nil {
			raw.Close()
			return nil, fmt.Errorf("join %v on %s: %w", carp.GroupIPv4, iface, err)
		}
		l.v4 = raw
	case 6:
		c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", carp.Protocol), "::")
		if err != nil {
			return nil, fmt.Errorf("open raw IPv6 socket: %w", err)
		}
		if err := setBuffer(c, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF); err != nil {
			c.Close()
			return nil, fmt.Errorf("receive buffer: %w", err)
		}
		p := ipv6.NewPacketConn(c)
		if err := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst|ipv6.FlagHopLimit, true); err != nil {
			p.Close()
			return nil, err
		}
		if err := p.JoinGroup(ifi, &net.IPAddr{IP: carp.GroupIPv6.AsSlice()}); err != nil {
			p.Close()
			return nil, fmt.Errorf("join %v on %s: %w", carp.GroupIPv6, iface, err)
		}
		l.v6 = p
	default:
		return nil, fmt.Errorf("address family %d: want 4 or 6", family)
	}
	return l, nil
}

// Read returns the next protocol-112 packet that arrived on the
// listener's interface.
func (l *Listener) Read() (Captured, error) {
	for {
		if l.v4 != nil {
			h, p, cm, err := l.v4.ReadFrom(l.buf)
			if err != nil {
				return Captured{}, err
			}
			if cm != nil && cm.IfIndex != l.ifi.Index {
				continue
			}
			src, _ := netip.AddrFromSlice(h.Src.To4())
			dst, _ := netip.AddrFromSlice(h.Dst.To4())
			return Captured{Src: src, Dst: dst, TTL: h.TTL, Payload: append([]byte(nil), p...)}, nil
		}
		n, cm, from, err := l.v6.ReadFrom(l.buf)
		if err != nil {
			return Captured{}, err
		}
		if cm == nil || cm.IfIndex != l.ifi.Index {
			continue
		}
		c := Captured{TTL: cm.HopLimit, Payload: append([]byte(nil), l.buf[:n]...)}
		if a, ok := from.(*net.IPAddr); ok {
			c.Src, _ = netip.AddrFromSlice(a.IP)
		}
		c.Dst, _ = netip.AddrFromSlice(cm.Dst)
		return c, nil
	}
}

// Close closes the listener; a blocked Read returns an error.
func (l *Listener) Close() error {
	if l.v4 != nil {
		return l.v4.Close()
	}
	return l.v6.Close()
}

// OwnAddr returns the address iface sends from by default: its first IPv4
// address, or its IPv6 link-local address (as carpd's IPv6 adverts).
func OwnAddr(family int, iface string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if family == 4 && ip.Is4() || family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv%d address to send from", iface, family)
}
