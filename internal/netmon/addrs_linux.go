package netmon

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// subscribeAddrs is netlink.AddrSubscribeWithOptions as carpd needs it: the
// same updates on ch, the same ends (ch closed once done is closed, or
// after onError has the cause of a failure, most often ENOBUFS), from a
// socket of its own so that
//   - the kernel leaves out the notifications of the requests made on the
//     netlink port ignore (not 0): the address manager's renewals of the
//     lifetimes of the addresses carpd holds, one at every advert (see
//     vip.Manager.EchoPort), which would wake carpd for nothing;
//   - it is read with raw system calls: reading the usual way wakes the
//     Go runtime's monitor thread from its sleep (see host.Clock).
func subscribeAddrs(ch chan<- netlink.AddrUpdate, done <-chan struct{}, onError func(error), ignore uint32) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "netlink-addrs")
	fail := func(what string, err error) error {
		f.Close()
		return fmt.Errorf("%s: %w", what, err)
	}
	// SO_RCVBUFFORCE needs CAP_NET_ADMIN; the plain size is capped by
	// net.core.rmem_max.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ReceiveBuffer); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, ReceiveBuffer); err != nil {
			return fail("receive buffer", err)
		}
	}
	if ignore != 0 {
		prog, err := echoFilter(ignore)
		if err != nil {
			return fail("filter", err)
		}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
			return fail("attach filter", err)
		}
	}
	groups := uint32(1)<<(unix.RTNLGRP_IPV4_IFADDR-1) | uint32(1)<<(unix.RTNLGRP_IPV6_IFADDR-1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		return fail("bind", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fail("raw conn", err)
	}
	go func() {
		<-done
		f.Close()
	}()
	go readAddrs(rc, ch, onError)
	return nil
}

// echoFilter is a socket filter that drops RTM_NEWADDR notifications
// whose nlmsg_pid is port. A classic BPF load reads big-endian; netlink
// headers are in the host's order.
func echoFilter(port uint32) (*unix.SockFprog, error) {
	var b [4]byte
	binary.NativeEndian.PutUint16(b[:2], unix.RTM_NEWADDR)
	typ := uint32(binary.BigEndian.Uint16(b[:2]))
	binary.NativeEndian.PutUint32(b[:], port)
	pid := binary.BigEndian.Uint32(b[:])
	ins, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 2}, // nlmsg_type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: typ, SkipTrue: 2},
		bpf.LoadAbsolute{Off: 12, Size: 4}, // nlmsg_pid
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: pid, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffffffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, err
	}
	filter := make([]unix.SockFilter, len(ins))
	for i, in := range ins {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}, nil
}

// readAddrs reads the notifications until the socket is closed or fails,
// then closes ch.
func readAddrs(rc syscall.RawConn, ch chan<- netlink.AddrUpdate, onError func(error)) {
	defer close(ch)
	buf := make([]byte, 64<<10)
	for {
		var n uintptr
		var errno syscall.Errno
		var from unix.RawSockaddrNetlink
		err := rc.Read(func(fd uintptr) bool {
			fromLen := uint32(unsafe.Sizeof(from))
			n, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0,
				uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
			return errno != unix.EAGAIN
		})
		switch {
		case err != nil:
			return // closed
		case errno == unix.EINTR:
			continue
		case errno != 0:
			onError(fmt.Errorf("receive failed: %w", errno))
			return
		case from.Pid != 0:
			onError(fmt.Errorf("a message from port %d, not the kernel", from.Pid))
			continue
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			onError(fmt.Errorf("parsing a notification: %w", err))
			continue
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				continue
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
						onError(fmt.Errorf("error message: %w", syscall.Errno(-code)))
					}
				}
				continue
			case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			default:
				onError(fmt.Errorf("bad message type: %d", m.Header.Type))
				continue
			}
			u, err := parseAddrUpdate(m)
			if err != nil {
				onError(fmt.Errorf("could not parse address: %w", err))
				continue
			}
			ch <- u
		}
	}
}

// parseAddrUpdate reads an RTM_NEWADDR or RTM_DELADDR notification as
// vishvananda/netlink's subscription does.
func parseAddrUpdate(m syscall.NetlinkMessage) (netlink.AddrUpdate, error) {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return netlink.AddrUpdate{}, fmt.Errorf("%d bytes, short of an ifaddrmsg", len(m.Data))
	}
	msg := nl.DeserializeIfAddrmsg(m.Data)
	attrs, err := nl.ParseRouteAttr(m.Data[msg.Len():])
	if err != nil {
		return netlink.AddrUpdate{}, err
	}
	u := netlink.AddrUpdate{
		LinkIndex: int(msg.Index),
		NewAddr:   m.Header.Type == unix.RTM_NEWADDR,
		Flags:     int(msg.Flags),
		Scope:     int(msg.Scope),
	}
	var local, dst *net.IPNet
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_ADDRESS: // a copy: the buffer is read into again
			dst = &net.IPNet{IP: append(net.IP(nil), a.Value...), Mask: net.CIDRMask(int(msg.Prefixlen), 8*len(a.Value))}
		case unix.IFA_LOCAL:
			n := 8 * len(a.Value)
			local = &net.IPNet{IP: append(net.IP(nil), a.Value...), Mask: net.CIDRMask(n, n)}
		case unix.IFA_FLAGS:
			if len(a.Value) >= 4 {
				u.Flags = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.IFA_CACHEINFO:
			if len(a.Value) >= unix.SizeofIfaCacheinfo {
				ci := nl.DeserializeIfaCacheInfo(a.Value)
				u.PreferedLft, u.ValidLft = int(ci.Prefered), int(ci.Valid)
			}
		}
	}
	// IPv4 sends IFA_LOCAL and IFA_ADDRESS (the peer's, when it has one);
	// IPv6 IFA_ADDRESS alone, but for point-to-point addresses.
	switch {
	case local != nil && msg.Family == unix.AF_INET && dst != nil && local.IP.Equal(dst.IP):
		u.LinkAddress = *dst
	case local != nil:
		u.LinkAddress = *local
	case dst != nil:
		u.LinkAddress = *dst
	default:
		return netlink.AddrUpdate{}, fmt.Errorf("no address")
	}
	return u, nil
}
