package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"golang.org/x/sys/unix"
)

// This file holds the capture of the adverts that the benchmarks and the
// tests share: tcpdump writing a pcap file inside a host's namespace, a
// reader of the CARP and VRRP adverts in it, the adverts' lateness (the
// gaps between a vhid's adverts), the scale and load benchmarks' pair (two
// hosts on two segments, the VIPs of scaleVIP) and the canary that tells a
// stall of the machine from one of carpd.

// advCapture is a tcpdump writing the IPv4 protocol-112 packets seen on one
// interface of a host to a pcap file.
type advCapture struct {
	path string
	proc *lab.Proc
}

// captureAdverts starts tcpdump on the host's interface iface and waits
// until it listens. The lab kills it on Close; stop ends it cleanly.
func captureAdverts(t testing.TB, h *lab.Host, iface, dir string) *advCapture {
	t.Helper()
	path := filepath.Join(dir, h.Name+"-"+iface+".pcap")
	// -Z root: the capture file is written into the test's private
	// directory, which the unprivileged tcpdump user cannot enter.
	p, err := h.Start("tcpdump", "tcpdump", "-i", iface, "-n", "-Z", "root", "--immediate-mode", "-U",
		"-s", "128", "-w", path, "ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "listening on"); err != nil {
		t.Fatal(err)
	}
	return &advCapture{path: path, proc: p}
}

// stop ends tcpdump (SIGINT, so that it flushes) and returns the adverts it
// captured.
func (c *advCapture) stop(t testing.TB) []wireAdvert {
	t.Helper()
	if err := c.proc.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump does not stop: %s", c.proc.Output())
	}
	ads, err := readAdvertPcap(c.path)
	if err != nil {
		t.Fatalf("%v; tcpdump said: %s", err, c.proc.Output())
	}
	return ads
}

// wireAdvert is one IPv4 CARP advert as captured.
type wireAdvert struct {
	At       time.Time
	Src, Dst netip.Addr
	TTL      int
	VHID     int // the VRID of a VRRP advert
	AdvBase  int
	AdvSkew  int
	// A VRRPv3 advert's priority and interval (centiseconds).
	VRRP             bool
	Priority, Centis int
}

// Interval is the advert interval the packet announces: advbase +
// advskew/256 s, or a VRRP advert's interval.
func (a wireAdvert) Interval() time.Duration {
	if a.VRRP {
		return time.Duration(a.Centis) * 10 * time.Millisecond
	}
	return time.Duration(a.AdvBase)*time.Second + time.Duration(a.AdvSkew)*time.Second/256
}

// readAdvertPcap reads the IPv4 CARP adverts (protocol 112, version 2, type
// 1) and VRRPv3 adverts (version 3, type 1) of a classic pcap file with Ethernet framing, microsecond or
// nanosecond timestamps, in either byte order. Other packets are skipped.
func readAdvertPcap(path string) ([]wireAdvert, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pcap: %w", err)
	}
	if len(data) < 24 {
		return nil, fmt.Errorf("pcap %s: %d bytes, no header", path, len(data))
	}
	var bo binary.ByteOrder
	var nano bool
	switch m := binary.LittleEndian.Uint32(data); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo, nano = binary.LittleEndian, m == 0xa1b23c4d
	default:
		switch binary.BigEndian.Uint32(data) {
		case 0xa1b2c3d4:
			bo = binary.BigEndian
		case 0xa1b23c4d:
			bo, nano = binary.BigEndian, true
		default:
			return nil, fmt.Errorf("pcap %s: bad magic %x", path, data[:4])
		}
	}
	if lt := bo.Uint32(data[20:]); lt != 1 {
		return nil, fmt.Errorf("pcap %s: link type %d, want 1 (Ethernet)", path, lt)
	}
	var ads []wireAdvert
	for off := 24; off < len(data); {
		if off+16 > len(data) {
			return nil, fmt.Errorf("pcap %s: truncated record header at %d", path, off)
		}
		sec, frac := int64(bo.Uint32(data[off:])), int64(bo.Uint32(data[off+4:]))
		incl := int(bo.Uint32(data[off+8:]))
		off += 16
		if off+incl > len(data) {
			return nil, fmt.Errorf("pcap %s: truncated record at %d", path, off)
		}
		pkt := data[off : off+incl]
		off += incl
		if !nano {
			frac *= 1000
		}
		if a, ok := parseAdvertFrame(pkt); ok {
			a.At = time.Unix(sec, frac)
			ads = append(ads, a)
		}
	}
	return ads, nil
}

// parseAdvertFrame decodes an Ethernet frame carrying an IPv4 CARP or VRRPv3
// advert.
func parseAdvertFrame(f []byte) (wireAdvert, bool) {
	if len(f) < 14 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return wireAdvert{}, false
	}
	ip := f[14:]
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 112 {
		return wireAdvert{}, false
	}
	hl := int(ip[0]&0xf) * 4
	if len(ip) < hl+8 {
		return wireAdvert{}, false
	}
	c := ip[hl:]
	if c[0] == 0x31 {
		return wireAdvert{
			Src:  netip.AddrFrom4([4]byte(ip[12:16])),
			Dst:  netip.AddrFrom4([4]byte(ip[16:20])),
			TTL:  int(ip[8]),
			VHID: int(c[1]), VRRP: true, Priority: int(c[2]), Centis: int(binary.BigEndian.Uint16(c[4:6]) & 0xfff),
		}, true
	}
	if c[0] != 0x21 {
		return wireAdvert{}, false // another type
	}
	return wireAdvert{
		Src:     netip.AddrFrom4([4]byte(ip[12:16])),
		Dst:     netip.AddrFrom4([4]byte(ip[16:20])),
		TTL:     int(ip[8]),
		VHID:    int(c[1]),
		AdvSkew: int(c[2]),
		AdvBase: int(c[5]),
	}, true
}

// advertLateness groups the adverts by vhid and returns, in seconds, every
// gap between consecutive adverts of a vhid minus the nominal interval
// (advbase + advskew/256). It fails when a vhid of 1..count has no adverts
// or fewer than 90% of those expected over the window, or when adverts of
// other vhids appear.
func advertLateness(ads []wireAdvert, count int, window time.Duration) ([]float64, error) {
	by := map[int][]wireAdvert{}
	for _, a := range ads {
		if a.VHID < 1 || a.VHID > count {
			return nil, fmt.Errorf("an advert of vhid %d from %v", a.VHID, a.Src)
		}
		by[a.VHID] = append(by[a.VHID], a)
	}
	var lates []float64
	var errs []error
	for n := 1; n <= count; n++ {
		l, err := vhidLateness(by[n], window)
		if err != nil {
			errs = append(errs, fmt.Errorf("vhid %d: %w", n, err))
		}
		lates = append(lates, l...)
	}
	return lates, errors.Join(errs...)
}

// vhidLateness returns, in seconds, every gap between consecutive adverts
// of one vhid minus the nominal interval (the first advert's). It fails
// when the adverts are of more than one vhid, or fewer than 2 or than 90%
// of those expected over the window were captured (and then returns the
// gaps it has).
func vhidLateness(ads []wireAdvert, window time.Duration) ([]float64, error) {
	if len(ads) < 2 {
		return nil, fmt.Errorf("%d adverts captured", len(ads))
	}
	if i := slices.IndexFunc(ads, func(a wireAdvert) bool { return a.VHID != ads[0].VHID }); i >= 0 {
		return nil, fmt.Errorf("adverts of vhids %d and %d", ads[0].VHID, ads[i].VHID)
	}
	as := slices.SortedFunc(slices.Values(ads), func(x, y wireAdvert) int { return x.At.Compare(y.At) })
	nominal := as[0].Interval()
	var lates []float64
	for i := 1; i < len(as); i++ {
		lates = append(lates, (as[i].At.Sub(as[i-1].At) - nominal).Seconds())
	}
	if want := int(0.9 * window.Seconds() / nominal.Seconds()); len(as) < want {
		return lates, fmt.Errorf("%d adverts in %v, want >= %d", len(as), window, want)
	}
	return lates, nil
}

// newScaleLab makes the lab of the scale and load benchmarks, with its
// second segment seg2; the caller closes it (closeScaleLab).
func newScaleLab(b testing.TB, prefix string) *lab.Lab {
	b.Helper()
	l, err := lab.New(prefix)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.AddSegment("seg2"); err != nil {
		if cerr := l.Close(); cerr != nil {
			b.Errorf("removing the lab: %v", cerr)
		}
		b.Fatal(err)
	}
	return l
}

// closeScaleLab removes the lab of newScaleLab.
func closeScaleLab(b testing.TB, l *lab.Lab) {
	if err := l.Close(); err != nil {
		b.Errorf("removing the lab: %v", err)
	}
}

// addScaleHost adds host i of the pair (0 the master, 1 the backup),
// named name, on both segments: eth0 and eth1 with its own addresses
// scaleOwn(i).
func addScaleHost(b testing.TB, l *lab.Lab, i int, name string) *lab.Host {
	b.Helper()
	own := scaleOwn(i)
	h, err := l.AddHost(name, own[0])
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Attach("seg2", "eth1", own[1]); err != nil {
		b.Fatal(err)
	}
	return h
}

// scaleHeld returns the vhids of 1..count whose VIP (scaleVIP) h holds, in
// ascending order.
func scaleHeld(b testing.TB, h *lab.Host, count int) []int {
	var ns []int
	for _, iface := range []string{"eth0", "eth1"} {
		ns = append(ns, heldVHIDs(b, h, iface, count, func(n int) netip.Addr {
			if scaleIface(n) != iface {
				return netip.Addr{}
			}
			return scaleVIP(n)
		})...)
	}
	slices.Sort(ns)
	return ns
}

// captureScale starts capturing the adverts on the backup's interfaces
// that carry vhids of 1..count: eth0, and eth1 when count is over
// scaleSplit.
func captureScale(b testing.TB, backup *lab.Host, dir string, count int) []*advCapture {
	b.Helper()
	caps := []*advCapture{captureAdverts(b, backup, "eth0", dir)}
	if count > scaleSplit {
		caps = append(caps, captureAdverts(b, backup, "eth1", dir))
	}
	return caps
}

// masterLateness stops the captures and returns the adverts in them from
// the master's own addresses (scaleOwn(0)), and the lateness of their gaps
// (advertLateness over vhids 1..count and the window), sorted. An error of
// advertLateness fails b; the lateness it has is returned all the same.
func masterLateness(b testing.TB, caps []*advCapture, count int, window time.Duration) ([]wireAdvert, []float64) {
	b.Helper()
	var ads []wireAdvert
	for _, c := range caps {
		ads = append(ads, c.stop(b)...)
	}
	masterOwn := scaleOwn(0)
	var mine []wireAdvert
	for _, a := range ads {
		if a.Src == masterOwn[0].Addr() || a.Src == masterOwn[1].Addr() {
			mine = append(mine, a)
		}
	}
	lates, err := advertLateness(mine, count, window)
	if err != nil {
		b.Error(err)
	}
	slices.Sort(lates)
	return mine, lates
}

// canary is a thread of the test that sleeps 1 ms at a time and records
// how much longer than that it slept: a long gap says the machine stalled
// the test's own process too. It explains a failure; it passes none: at
// most, a fault each of whose stalls it matched is run again.
type canary struct {
	stopc   chan struct{}
	done    chan struct{}
	longest time.Duration
	over    int
	stalls  []heldSpan // the oversleeps over 5 ms (the first 1,000), read after stop
}

// startCanaryNice starts a canary whose thread runs at nice value nice
// (carpd's, say); if it cannot, the canary runs at the test's and b's log
// says so.
func startCanaryNice(b testing.TB, nice int) *canary {
	c, err := runCanary(func() error { return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice) })
	if err != nil {
		b.Logf("the canary runs at nice 0: setpriority: %v", err)
	}
	return c
}

// runCanary starts a canary on a thread of its own, after setup (if not
// nil) has run on that thread, and returns setup's error. A thread that
// setup changed is never handed back to the runtime: it ends with the
// canary.
func runCanary(setup func() error) (*canary, error) {
	ready := make(chan error, 1)
	c := &canary{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		runtime.LockOSThread()
		if setup == nil {
			defer runtime.UnlockOSThread()
			ready <- nil
		} else {
			ready <- setup()
		}
		last := time.Now()
		for {
			select {
			case <-c.stopc:
				return
			default:
			}
			time.Sleep(time.Millisecond)
			now := time.Now()
			g := now.Sub(last) - time.Millisecond
			c.longest = max(c.longest, g)
			if g > 10*time.Millisecond {
				c.over++
			}
			if g > 5*time.Millisecond && len(c.stalls) < 1000 {
				c.stalls = append(c.stalls, heldSpan{from: last, to: now})
			}
			last = now
		}
	}()
	return c, <-ready
}

// stop ends the canary and returns its longest oversleep and the number
// over 10 ms.
func (c *canary) stop() (time.Duration, int) {
	close(c.stopc)
	<-c.done
	return c.longest, c.over
}

// stopOnce stops the canary if it still runs (for a defer beside an
// earlier stop).
func (c *canary) stopOnce() {
	select {
	case <-c.done:
	default:
		c.stop()
	}
}
