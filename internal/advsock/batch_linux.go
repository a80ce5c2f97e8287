package advsock

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch reading. Under a flood of forged adverts the cost of receiving is
// the system call and the goroutine's wake-up per datagram, and the
// allocations of x/net's ReadFrom (the header, the control message, the
// address) and of the payload's copy. A batch reads up to batchLen
// datagrams with one recvmmsg(2) into buffers allocated once, and decodes
// the IP header and the control messages in place: nothing is allocated
// per datagram. (x/net's ReadBatch does the recvmmsg but allocates a
// net.Addr per message.)

const (
	// batchLen is the number of datagrams one read can return.
	batchLen = 64
	// slotLen is the room for one datagram: an advert is 20 + 36 bytes
	// (IPv4) or 36; longer datagrams are truncated to it (MSG_TRUNC),
	// which changes nothing since only the first 36 bytes of the payload
	// are read (as FreeBSD does).
	slotLen = 2048
	// oobLen is the room for one datagram's control messages: the
	// interface (and the destination, and for IPv6 the hop limit).
	oobLen = 128
	// RecvBufferSize is the receive buffer asked for (the kernel doubles
	// it for its bookkeeping): 16 MB holds some 20,000 small datagrams
	// (a 56-byte advert costs about 1.5 KB of buffer on a veth), four
	// tenths of a second of a 50,000/s flood, so that the reader can be
	// kept off the CPU that long by the machine's load without losing a
	// peer's advert. The memory is taken only while datagrams wait.
	// SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN;
	// without it SO_RCVBUF gets what rmem_max allows.
	RecvBufferSize = 16 << 20
)

// batch is one socket's reusable receive state. Its methods are called with
// the owner's read lock held.
type batch struct {
	rc    syscall.RawConn
	ipv6  bool
	hdrs  [batchLen]unix.Mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6
	bufs  []byte // batchLen slots of slotLen
	oobs  []byte // batchLen slots of oobLen
	want  int    // messages to read at most
	n     int    // messages the last recvmmsg returned
	err   error  // its error
	read  func(fd uintptr) bool
}

func newBatch(c net.PacketConn, ipv6 bool) (*batch, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batch{rc: rc, ipv6: ipv6, bufs: make([]byte, batchLen*slotLen), oobs: make([]byte, batchLen*oobLen)}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i*slotLen]
		b.iovs[i].SetLen(slotLen)
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = &b.oobs[i*oobLen]
		if ipv6 {
			h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		}
	}
	b.read = b.recvmmsg // bound once: no closure per read
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, RecvBufferSize)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, RecvBufferSize)
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("set the receive buffer to %d bytes: %w", RecvBufferSize, serr)
	}
	return b, nil
}

// recvmmsg is the RawConn.Read callback: false asks to wait for the socket
// to become readable.
//
// The call never blocks (MSG_DONTWAIT), so it is a raw system call: an
// ordinary one (entersyscall) wakes the runtime's sysmon thread from its
// deep sleep, and an idle daemon's sysmon then polls every 20 us until the
// process is idle again, about half of an idle backup's CPU time.
func (b *batch) recvmmsg(fd uintptr) bool {
	for i := range b.want {
		b.hdrs[i].Hdr.SetControllen(oobLen)
		b.hdrs[i].Hdr.Flags = 0
		if b.ipv6 {
			b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		}
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.want),
		unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		b.n, b.err = int(n), nil
	case unix.EAGAIN:
		return false
	case unix.EINTR:
		return b.recvmmsg(fd)
	default:
		b.n, b.err = 0, errno
	}
	return true
}

// pending reports whether a datagram waits in the socket (SIOCINQ: the
// size of the next one). It takes no lock: a reader may be waiting in
// fill meanwhile.
func (b *batch) pending() bool {
	n := 0
	if err := b.rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}

// fill waits for datagrams and reads up to batchLen of them.
func (b *batch) fill() (int, error) {
	if err := b.rc.Read(b.read); err != nil {
		return 0, err // closed: wraps net.ErrClosed
	}
	return b.n, b.err
}

// slot returns message i's data, control messages and flags.
func (b *batch) slot(i int) (data, oob []byte, flags int32) {
	h := &b.hdrs[i]
	data = b.bufs[i*slotLen : i*slotLen+min(int(h.Len), slotLen)]
	oob = b.oobs[i*oobLen : i*oobLen+min(int(h.Hdr.Controllen), oobLen)]
	return data, oob, h.Hdr.Flags
}

// cmsgs calls fn with the level, type and data of each control message.
func cmsgs(oob []byte, fn func(level, typ int32, data []byte)) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		if unix.SizeofCmsghdr != 16 {
			l = int(binary.NativeEndian.Uint32(oob[0:4]))
		}
		if l < hdr || l > len(oob) {
			return
		}
		level := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-4:]))
		fn(level, typ, oob[hdr:l])
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}

// decode4 turns message i of an IPv4 batch into p: the IPv4 header gives
// the source, destination and TTL, IP_PKTINFO the interface. It reports
// false for a datagram too short for its header.
func (b *batch) decode4(i int, p *Packet) bool {
	data, oob, _ := b.slot(i)
	if len(data) < 20 {
		return false
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 || ihl > len(data) {
		return false
	}
	*p = Packet{
		Src:     netip.AddrFrom4([4]byte(data[12:16])),
		Dst:     netip.AddrFrom4([4]byte(data[16:20])),
		TTL:     int(data[8]),
		Payload: data[ihl:],
	}
	cmsgs(oob, func(level, typ int32, d []byte) {
		if level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(d) >= 4 {
			p.IfIndex = int(int32(binary.NativeEndian.Uint32(d)))
		}
	})
	return true
}

// decode6 turns message i of an IPv6 batch into p: the source from the
// sender's address, the destination and interface from IPV6_PKTINFO, the
// hop limit from IPV6_HOPLIMIT. It reports false when the control
// messages lack the hop limit or the interface.
func (b *batch) decode6(i int, p *Packet) bool {
	data, oob, _ := b.slot(i)
	sa := &b.names[i]
	if sa.Family != unix.AF_INET6 {
		return false
	}
	src := netip.AddrFrom16(sa.Addr)
	if src.Is4In6() {
		return false
	}
	*p = Packet{Src: src, TTL: -1, Payload: data}
	cmsgs(oob, func(level, typ int32, d []byte) {
		if level != unix.IPPROTO_IPV6 {
			return
		}
		switch {
		case typ == unix.IPV6_PKTINFO && len(d) >= 20:
			p.Dst = netip.AddrFrom16([16]byte(d[0:16]))
			p.IfIndex = int(binary.NativeEndian.Uint32(d[16:20]))
		case typ == unix.IPV6_HOPLIMIT && len(d) >= 4:
			p.TTL = int(int32(binary.NativeEndian.Uint32(d)))
		}
	})
	return p.TTL >= 0 && p.IfIndex != 0
}

// reader serialises batch reads and hands out the decoded datagrams.
type reader struct {
	mu sync.Mutex
	b  *batch
}

// readBatch reads datagrams into ps (at most len(ps), at most batchLen)
// and returns how many it decoded. Malformed datagrams (no room for an
// IPv4 header, IPv6 without its control messages) are skipped; a batch of
// only those waits for the next.
func (r *reader) readBatch(ps []Packet, decode func(b *batch, i int, p *Packet) bool) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ps) == 0 {
		return 0, nil
	}
	r.b.want = min(len(ps), batchLen)
	for {
		n, err := r.b.fill()
		if err != nil {
			return 0, err
		}
		k := 0
		for i := 0; i < n && k < len(ps); i++ {
			if decode(r.b, i, &ps[k]) {
				k++
			}
		}
		if k > 0 {
			return k, nil
		}
	}
}

// readOne reads one datagram with read and copies its payload.
func readOne(read func([]Packet) (int, error)) (Packet, error) {
	var ps [1]Packet
	if _, err := read(ps[:]); err != nil {
		return Packet{}, err
	}
	ps[0].Payload = append([]byte(nil), ps[0].Payload...)
	return ps[0], nil
}
