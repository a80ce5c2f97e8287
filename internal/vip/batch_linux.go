package vip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batcher adds and removes many addresses of an interface in few system
// calls: the requests of a batch go to the kernel in one send (the kernel
// acts on each in turn, within the send, and acknowledges each), and
// their answers are read after it. Through the netlink handle each
// address cost a look-up of the interface and a request with its
// acknowledgement to wait for, about five system calls and much parsing:
// with 255 vrids taking over at once, 40 ms and more of the loop, the
// time a backup at 10 ms waits before it takes over (issue 26).
type batcher struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// newBatcher opens the batcher's socket in the current network namespace.
func newBatcher() (*batcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	// The acknowledgements carry the request's header only.
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("NETLINK_CAP_ACK: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return &batcher{fd: fd, buf: make([]byte, 16384)}, nil
}

func (x *batcher) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fd < 0 {
		return nil
	}
	err := unix.Close(x.fd)
	x.fd = -1
	return err
}

// do sends one request of type typ with flags (NLM_F_ACK added) for each
// of rs on the interface of index idx, batchSize at a time (calling
// between, when not nil, before each batch), and returns
// each one's error (nil: done), in the order of rs. When a batch could not
// be sent or answered, it returns the errors of the batches before it,
// fewer than rs, and why: the requests from that batch on are not known
// to be done.
func (x *batcher) do(typ, flags, idx int, rs []addReq, between func()) ([]error, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fd < 0 {
		return nil, syscall.EBADF
	}
	errs := make([]error, len(rs))
	for done := 0; done < len(rs); {
		n := min(len(rs)-done, batchSize)
		if between != nil {
			between()
		}
		if err := x.batch(typ, flags, idx, rs[done:done+n], errs[done:done+n]); err != nil {
			return errs[:done], err
		}
		done += n
	}
	return errs, nil
}

// batch sends the requests of rs in one send and reads their answers
// into errs.
func (x *batcher) batch(typ, flags, idx int, rs []addReq, errs []error) error {
	var msg []byte
	first := x.seq + 1
	for _, r := range rs {
		b := addrRequest(typ, flags|unix.NLM_F_ACK, idx, r)
		x.seq++
		(*unix.NlMsghdr)(unsafe.Pointer(&b[0])).Seq = x.seq
		msg = append(msg, b...)
	}
	for {
		err := unix.Sendto(x.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sending %d address requests: %w", len(rs), err)
		}
		break
	}
	// The kernel acted on every request within the send: its answers
	// wait in the socket.
	for left := len(rs); left > 0; {
		n, from, err := unix.Recvfrom(x.fd, x.buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("reading the answers to %d address requests (%d missing): %w", len(rs), left, err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		msgs, err := syscall.ParseNetlinkMessage(x.buf[:n])
		if err != nil {
			return fmt.Errorf("an answer to an address request: %w", err)
		}
		for _, m := range msgs {
			i := int(m.Header.Seq - first)
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 || m.Header.Seq < first || i >= len(rs) {
				continue // an earlier batch's, whose reading failed
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				errs[i] = syscall.Errno(-code)
			}
			left--
		}
	}
	return nil
}

// addAll adds rs to the interface, in batches when the Manager has its
// own socket (else one request each through the handle), and returns
// each one's error.
func (o *netlinkOS) addAll(ifname string, rs []addReq, between func()) []error {
	return o.changeAll(ifname, unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, rs, between, func(r addReq) error { return o.add(ifname, r) })
}

// delAll removes ps from the interface as addAll adds.
func (o *netlinkOS) delAll(ifname string, ps []netip.Prefix, between func()) []error {
	rs := make([]addReq, len(ps))
	for i, p := range ps {
		rs[i] = addReq{Prefix: p}
	}
	return o.changeAll(ifname, unix.RTM_DELADDR, 0, rs, between, func(r addReq) error { return o.del(ifname, r.Prefix) })
}

func (o *netlinkOS) changeAll(ifname string, typ, flags int, rs []addReq, between func(), one func(addReq) error) []error {
	if len(rs) == 0 {
		return nil
	}
	if o.batch != nil {
		if l, err := o.link(ifname); err == nil {
			errs, err := o.batch.do(typ, flags, l.Attrs().Index, rs, between)
			if err == nil {
				return errs
			}
			// The rest one by one: a request done already fails with
			// EEXIST or EADDRNOTAVAIL, which Set counts as done.
			return append(errs, oneByOne(rs[len(errs):], between, one)...)
		}
	}
	return oneByOne(rs, between, one)
}
