package advsock

import (
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/carpd/carpd/internal/carp"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// sender is a send-only raw socket that the Go runtime's network poller
// never sees. The receiving socket is registered with the poller for
// reading and writing (edge-triggered), and the kernel signals "writable"
// on it each time a sent datagram's buffer is freed: each advert sent
// through it wakes the poller's thread for nothing, a hundred times a
// second at a 10 ms interval. A socket of the sender's own, written with
// plain sendmsg(2) calls (MSG_DONTWAIT: a full send buffer is an error,
// never a wait), sends the same datagrams without that wakeup.
//
// IPv4: an IPPROTO_RAW socket (IP_HDRINCL implied; it receives nothing),
// the header built here as ipv4.Header would be. IPv6: a protocol-112 raw
// socket with the same options as IPv6Conn's and a filter that drops
// everything it would receive.
type sender struct {
	fd int
	v6 bool

	mu     sync.Mutex // all below; Close against sends
	closed bool
	buf    []byte
	oob    []byte
	// hdr is the last IPv4 header built (advertHeader, marshalled), for
	// hdrOf: the adverts of a vhid all have the same.
	hdr   []byte
	hdrOf header4
	// The system call's arguments: here, not on the stack, where a
	// pointer handed to the kernel would make them escape, one
	// allocation per advert.
	msg unix.Msghdr
	iov unix.Iovec
	sa4 unix.RawSockaddrInet4
	sa6 unix.RawSockaddrInet6
}

// header4 is what an IPv4 advert's header is made of.
type header4 struct {
	tos      int
	src, dst netip.Addr
	n        int // payload length
}

// dropAll is a socket filter that accepts nothing.
var dropAll = []bpf.Instruction{bpf.RetConstant{Val: 0}}

// newSender4 opens the IPv4 sender.
func newSender4() (*sender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("open the IPv4 send socket: %w", err)
	}
	s := &sender{fd: fd}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("turn multicast loopback off on the IPv4 send socket: %w", err)
	}
	return s, nil
}

// newSender6 opens the IPv6 sender with traffic class tc.
func newSender6(tc int) (*sender, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, carp.Protocol)
	if err != nil {
		return nil, fmt.Errorf("open the IPv6 send socket: %w", err)
	}
	s := &sender{fd: fd, v6: true}
	raw, err := bpf.Assemble(dropAll)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"drop what it receives", func() error {
			return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
				&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
		}},
		{"turn multicast loopback off", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		}},
		{"set multicast hop limit", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, carp.TTL)
		}},
		{"set unicast hop limit", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, carp.TTL)
		}},
		{"set traffic class", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tc)
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("IPv6 send socket: %s: %w", st.what, err)
		}
	}
	return s, nil
}

// send4 sends payload in one IPv4 datagram from src to dst out of ifindex
// (0: the routing table's choice), its header as advertHeader builds it.
func (s *sender) send4(tos, ifindex int, src, dst netip.Addr, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("send socket: %w", unix.EBADF)
	}
	// advertHeader leaves the identification and the checksum zero: the
	// kernel fills them in.
	if of := (header4{tos, src, dst, len(payload)}); s.hdr == nil || of != s.hdrOf {
		h, err := advertHeader(tos, src, dst, len(payload))
		if err != nil {
			return err
		}
		hb, err := h.Marshal()
		if err != nil {
			return err
		}
		s.hdr, s.hdrOf = hb, of
	}
	b := append(append(s.buf[:0], s.hdr...), payload...)
	s.buf = b
	var oob []byte
	if ifindex != 0 {
		oob = s.cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		pi := (*unix.Inet4Pktinfo)(cmsgData(oob))
		*pi = unix.Inet4Pktinfo{Ifindex: int32(ifindex)}
	}
	s.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	return s.sendmsg(b, oob, unsafe.Pointer(&s.sa4), unix.SizeofSockaddrInet4)
}

// send6 sends payload from src (the zero Addr: the kernel's choice) to dst
// out of ifindex.
func (s *sender) send6(ifindex int, src, dst netip.Addr, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("send socket: %w", unix.EBADF)
	}
	oob := s.cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	pi := (*unix.Inet6Pktinfo)(cmsgData(oob))
	*pi = unix.Inet6Pktinfo{Ifindex: uint32(ifindex)}
	if src.IsValid() {
		pi.Addr = src.WithZone("").As16()
	}
	s.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.WithZone("").As16()}
	return s.sendmsg(payload, oob, unsafe.Pointer(&s.sa6), unix.SizeofSockaddrInet6)
}

// cmsg makes s.oob one control message of level and typ with room for
// n bytes of data, zeroed.
func (s *sender) cmsg(level, typ int32, n int) []byte {
	size := unix.CmsgSpace(n)
	if cap(s.oob) < size {
		s.oob = make([]byte, size)
	}
	oob := s.oob[:size]
	clear(oob)
	h := (*unix.Cmsghdr)(cmsgPtr(oob))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(n))
	return oob
}

// sendmsg sends one datagram with a raw system call: the runtime is not
// told of it (no entersyscall), which is right for a call that never
// blocks (MSG_DONTWAIT) and spares a wakeup: entering a system call the
// usual way wakes the runtime's monitor thread (sysmon) when it sleeps, as
// it does on an idle daemon between two adverts, once per advert.
func (s *sender) sendmsg(p, oob []byte, name unsafe.Pointer, namelen uint32) error {
	s.msg = unix.Msghdr{Name: (*byte)(name), Namelen: namelen}
	s.iov = unix.Iovec{}
	if len(p) > 0 {
		s.iov.Base = &p[0]
		s.iov.SetLen(len(p))
	}
	s.msg.Iov, s.msg.Iovlen = &s.iov, 1
	if len(oob) > 0 {
		s.msg.Control = &oob[0]
		s.msg.SetControllen(len(oob))
	}
	for {
		_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("sendmsg: %w", e)
		}
		return nil
	}
}

// close closes the socket; later sends fail.
func (s *sender) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// cmsgPtr is the control message header at the start of b.
func cmsgPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// cmsgData is the data of the control message at the start of b.
func cmsgData(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[unix.CmsgLen(0)]) }
