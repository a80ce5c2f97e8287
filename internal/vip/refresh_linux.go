package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// refresher renews address lifetimes without waiting for the kernel's
// answer. A master renews its addresses at every advert; through the
// netlink handle each renewal is a request with an acknowledgement to wait
// for (sendto, getsockname, recvfrom), made the usual way, which wakes the
// Go runtime's monitor thread from its sleep (see host.Clock). The
// refresher sends the same request (as `ip addr replace`) without
// NLM_F_ACK on a socket of its own, by raw system calls: the kernel acts
// on it within the send, and answers only when it fails. Those answers
// are read by a goroutine that waits for them in the runtime's network
// poller (watch), and handed over at the next renewal: a failure is so
// reported one renewal late, and a renewal that the kernel accepts costs
// one system call (the send), not a read of the socket as well.
//
// Its socket's port ID marks the kernel's notifications of the renewals
// it causes (nlmsg_pid), so that a monitor can leave them out (EchoPort).
type refresher struct {
	f    *os.File // owns fd
	rc   syscall.RawConn
	fd   int
	port uint32

	// watching: watch reads the answers as they come; false where the
	// socket cannot be polled (failures then reads it itself).
	watching atomic.Bool
	// nFailed is len(failed), read without mu: no answer waiting, no lock.
	nFailed atomic.Int32

	mu     sync.Mutex
	seq    uint32
	msgs   map[refreshKey][]byte // serialized requests, by what they ask
	sent   [256]sentReq          // the last requests, by seq % len, for the failures' report
	buf    []byte
	failed []refreshFailure // read from the socket, not handed over yet
	reads  int              // drains of the socket, for the tests
	closed bool             // by close: fd may be another file's now

	watchEnded chan struct{} // closed when watch returns
}

type refreshKey struct {
	index int
	r     addReq
}

type sentReq struct {
	seq    uint32
	ifname string
	index  int // the interface's index it was sent to
	r      addReq
}

// refreshFailure is a renewal the kernel refused.
type refreshFailure struct {
	ifname string // "" when the request is no longer known
	index  int    // the index the request went to (with ifname)
	err    error
}

// newRefresher opens the refresher's socket in the current network
// namespace.
func newRefresher() (*refresher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "netlink-refresh")
	fail := func(what string, err error) (*refresher, error) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// Failures come back with the request's header only.
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
		return fail("NETLINK_CAP_ACK", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail("bind", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail("connect", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return fail("getsockname", fmt.Errorf("not a netlink address: %T", sa))
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fail("socket", err)
	}
	x := &refresher{f: f, rc: rc, fd: fd, port: nsa.Pid, msgs: map[refreshKey][]byte{}, buf: make([]byte, 8192),
		watchEnded: make(chan struct{})}
	x.watching.Store(true)
	go x.watch()
	return x, nil
}

// watch reads the kernel's answers as they come, until the socket is
// closed. The runtime's poller is edge-triggered: each wake reads the
// socket until it is empty, then waits again. Where the socket cannot be
// polled, it stops, and failures reads the socket at each renewal.
func (x *refresher) watch() {
	defer close(x.watchEnded)
	err := x.rc.Read(func(uintptr) bool {
		x.mu.Lock()
		x.drain()
		x.mu.Unlock()
		return false // wait for the next answer
	})
	if !errors.Is(err, os.ErrClosed) {
		x.watching.Store(false)
	}
}

// close closes the socket: watch ends, and a send fails (EBADF), so that
// a renewal goes by name through the handle.
func (x *refresher) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	return x.f.Close()
}

// failures returns the failures of the renewals sent so far that have not
// been returned yet. With watch reading the answers, and none waiting, it
// makes no system call and takes no lock.
func (x *refresher) failures() []refreshFailure {
	if x.watching.Load() && x.nFailed.Load() == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	defer runtime.KeepAlive(x.f)
	if !x.watching.Load() {
		x.drain()
	}
	failed := x.failed
	x.failed = nil
	x.nFailed.Store(0)
	return failed
}

// send asks the kernel to renew r on the interface of index idx. It
// returns an error only when the request could not be sent: the kernel's
// refusal is for failures, later.
func (x *refresher) send(ifname string, idx int, r addReq) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer runtime.KeepAlive(x.f)
	if x.closed {
		return os.ErrClosed
	}
	k := refreshKey{idx, r}
	b, ok := x.msgs[k]
	if !ok {
		if len(x.msgs) >= 4096 {
			clear(x.msgs) // interfaces and addresses come and go
		}
		b = replaceRequest(idx, r)
		x.msgs[k] = b
	}
	x.seq++
	if x.seq == 0 {
		x.seq++
	}
	(*unix.NlMsghdr)(unsafe.Pointer(&b[0])).Seq = x.seq
	x.sent[x.seq%uint32(len(x.sent))] = sentReq{seq: x.seq, ifname: ifname, index: idx, r: r}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(x.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// drain reads the kernel's answers waiting in the socket, the failures of
// earlier requests, into failed. mu held; the answers of the requests
// already sent are in the socket, since the kernel acts on a request
// within its send.
func (x *refresher) drain() {
	if x.closed {
		return
	}
	x.reads++
	x.failed = x.drainInto(x.failed)
	if n := len(x.failed); n > maxFailed {
		// Kept apart: a failure with no interface makes every
		// interface be looked up by name again.
		x.failed = append(x.failed[:maxFailed-1], refreshFailure{err: fmt.Errorf("%d more renewals refused", n-maxFailed+1)})
	}
	x.nFailed.Store(int32(len(x.failed)))
}

// maxFailed is the most failures kept between two renewals.
const maxFailed = 256

func (x *refresher) drainInto(failed []refreshFailure) []refreshFailure {
	for {
		var from unix.RawSockaddrNetlink
		fromLen := uint32(unsafe.Sizeof(from))
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(x.fd), uintptr(unsafe.Pointer(&x.buf[0])), uintptr(len(x.buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
		switch {
		case e == unix.EAGAIN:
			return failed
		case e == unix.EINTR:
			continue
		case e == unix.ENOBUFS:
			// Answers were lost (more failures than the buffer holds);
			// those after the loss are read still: the poller wakes
			// once per arrival, not for what is left.
			failed = append(failed, refreshFailure{err: fmt.Errorf("reading the answers to earlier renewals: %w", e)})
			continue
		case e != 0:
			return append(failed, refreshFailure{err: fmt.Errorf("reading the answers to earlier renewals: %w", e)})
		}
		if from.Pid != 0 {
			continue // not from the kernel
		}
		msgs, err := syscall.ParseNetlinkMessage(x.buf[:n])
		if err != nil {
			failed = append(failed, refreshFailure{err: fmt.Errorf("an answer to an earlier renewal: %w", err)})
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
			if code == 0 {
				continue
			}
			errno := syscall.Errno(-code)
			s := x.sent[m.Header.Seq%uint32(len(x.sent))]
			if s.seq != m.Header.Seq || s.seq == 0 {
				failed = append(failed, refreshFailure{err: fmt.Errorf("an earlier renewal of an address's lifetime: %w", errno)})
				continue
			}
			failed = append(failed, refreshFailure{ifname: s.ifname, index: s.index, err: fmt.Errorf("an earlier %s: %w",
				replaceCommand(s.ifname, s.r), errno)})
		}
	}
}

// replaceCommand is r's renewal as an ip(8) command.
func replaceCommand(ifname string, r addReq) string {
	c := r.command(ifname)
	return "ip addr replace" + c[len("ip addr add"):]
}

// replaceRequest is the RTM_NEWADDR request that renews r on the interface
// of index idx, as the netlink handle's AddrReplace builds it (see
// netlinkAddr), but for NLM_F_ACK.
func replaceRequest(idx int, r addReq) []byte {
	return addrRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, idx, r)
}

// addrRequest is the request of type typ (RTM_NEWADDR, RTM_DELADDR) with
// flags for r on the interface of index idx, as the netlink handle builds
// it (see netlinkAddr).
func addrRequest(typ, flags, idx int, r addReq) []byte {
	a := netlinkAddr(r)
	family := nl.GetIPFamily(a.IP)
	req := nl.NewNetlinkRequest(typ, flags)
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(idx)
	ones, bits := a.Mask.Size()
	msg.Prefixlen = uint8(ones)
	msg.Flags = uint8(a.Flags) // IFA_F_NODAD: below 0x100
	req.AddData(msg)
	ip := a.IP.To4()
	if family != nl.FAMILY_V4 {
		ip = a.IP.To16()
	}
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	if family == nl.FAMILY_V4 && ones < 31 {
		brd := make(net.IP, bits/8)
		for i := range ip {
			brd[i] = ip[i] | ^a.Mask[i]
		}
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, brd))
	}
	if a.ValidLft > 0 || a.PreferedLft > 0 {
		ci := nl.IfaCacheInfo{IfaCacheinfo: unix.IfaCacheinfo{Valid: uint32(a.ValidLft), Prefered: uint32(a.PreferedLft)}}
		req.AddData(nl.NewRtAttr(unix.IFA_CACHEINFO, ci.Serialize()))
	}
	return req.Serialize()
}
