package daemon

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/vrrp"
)

// This file is a deterministic simulation of several carpd hosts on one
// segment: each runs a real Daemon (handle, timers, readers' checks, the
// state machines) on in-memory adapters, the segment delivers adverts with
// a delay, loss and partitions, and a fake clock jumps from one event to
// the next. Scenario scripts in testdata/sim/*.txt drive it; they need no
// root and run in milliseconds.

var rewriteSim = flag.Bool("rewrite", false, "rewrite the expected output of testdata/sim/*.txt")

// TestSimulation runs the scripts in testdata/sim/. Each block is a
// command, a line "----", the expected output and a blank line, as in
// internal/carp's scenarios; `go test -rewrite` regenerates the output.
//
// Commands:
//
//	node NAME [advskew=N advbase=N vhids=GROUPS pass=P preempt
//	          preempt-delay=D ifdown=N quiet
//	          vrrp=PRIO interval=CS nopreempt notiebreak]
//	                             a host; vhid N holds 198.51.100.N/32 (vhid
//	                             100, the default: 192.0.2.50/32); GROUPS is
//	                             N[-M][/ADVSKEW],...; quiet leaves its
//	                             transitions out of the output; vrrp=PRIO
//	                             makes its vhids VRRPv3 (carpver 3) of
//	                             that priority, at interval CS
//	                             centiseconds (100), preempting unless
//	                             nopreempt, with the RFC's tie-break
//	                             unless notiebreak
//	start NAME...                carpd starts on the hosts
//	advance DURATION             run the segment and the clocks
//	partition A,B|C              the groups hear only each other
//	heal                         one segment again, no loss
//	loss PERCENT                 drop this share of adverts, at random
//	delay DURATION               every advert takes this long
//	link NAME down|up            the host's cable
//	stop NAME                    SIGTERM: carpd bows out, then exits
//	kill NAME                    power cut: carpd and its addresses vanish
//	demote NAME N                the operator's demotion
//	holders                      who holds each vhid's addresses
//
// The output lists, with the time, each transition and each change of the
// holders ("holders: 100=b" lists each vhid's holders; "-" is none).
func TestSimulation(t *testing.T) {
	files, err := filepath.Glob("testdata/sim/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runSimScript(t, file)
		})
	}
}

type simBlock struct {
	pre  string
	line int
	cmd  string
	want string
}

func readSimBlocks(t *testing.T, file string) (blocks []simBlock) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var cur *simBlock
	inWant := false
	var pre strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "#"):
			pre.WriteString(line + "\n")
		case cur == nil && strings.TrimSpace(line) == "":
		case cur == nil:
			cur = &simBlock{pre: pre.String(), line: n, cmd: line}
			pre.Reset()
		case !inWant && line == "----":
			inWant = true
		case !inWant:
			t.Fatalf("%s:%d: expected ---- after the command", file, n)
		case line == "":
			blocks = append(blocks, *cur)
			cur, inWant = nil, false
		default:
			cur.want += line + "\n"
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

func runSimScript(t *testing.T, file string) {
	s := newSim(1)
	var rewritten strings.Builder
	for _, b := range readSimBlocks(t, file) {
		got, err := s.run(b.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, b.line, b.cmd, err)
		}
		if got == "" {
			got = "ok\n"
		}
		if *rewriteSim {
			fmt.Fprintf(&rewritten, "%s%s\n----\n%s\n", b.pre, b.cmd, got)
			continue
		}
		if got != b.want {
			t.Errorf("%s:%d: %s\nwant:\n%sgot:\n%s", file, b.line, b.cmd, b.want, got)
		}
	}
	if *rewriteSim {
		if err := os.WriteFile(file, []byte(strings.TrimSuffix(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sim is the segment, its hosts and the clock.
type sim struct {
	start, now time.Time
	rng        *rand.Rand
	nodes      []*simNode
	byName     map[string]*simNode
	inFlight   []delivery
	seq        int
	loss       float64
	delay      time.Duration
	group      map[string]int // partition group of each host; all 0 when healed
	out        strings.Builder
	holders    string // the last holders line printed
	pending    bool   // the holders may have changed at this instant
	vhids      []int  // every configured vhid, sorted
	// afterEvent, when set, runs after every event the hosts handle (a
	// delivery, a timer, a command): FuzzSimulation's invariants.
	afterEvent func()
}

// event runs afterEvent, if any.
func (s *sim) event() {
	if s.afterEvent != nil {
		s.afterEvent()
	}
}

// delivery is an advert on its way to one host.
type delivery struct {
	at   time.Time
	seq  int
	to   *simNode
	gen  int // the host's life it was sent to
	fam  carp.Family
	pkt  Packet
	data []byte
}

func newSim(seed uint64) *sim {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &sim{
		start: start, now: start,
		rng:    rand.New(rand.NewPCG(seed, seed)),
		byName: map[string]*simNode{},
		group:  map[string]int{},
		delay:  time.Millisecond,
	}
}

// simNode is one host: its configuration, its carpd (nil when not
// running) and the addresses its eth0 holds.
type simNode struct {
	s       *sim
	name    string
	cfg     *config.Config
	own     netip.Addr
	d       *Daemon
	gen     int  // incremented at each start
	linkUp  bool // its cable
	quiet   bool
	leaving bool // stopped, bowing out
	held    map[netip.Prefix]bool
	sets    int // calls of its Addresses.Set
	// setCost is how long each Addresses.Set takes: the simulated time
	// moves on by that much while it runs (a busy kernel; with
	// simClock as the daemon's clock).
	setCost time.Duration
}

func (s *sim) at() string { return fmt.Sprintf("t=%.3f", s.now.Sub(s.start).Seconds()) }

func (s *sim) run(cmd string) (string, error) {
	s.out.Reset()
	f := strings.Fields(cmd)
	args, bare := simArgs(f[1:])
	var err error
	switch f[0] {
	case "node":
		err = s.addNode(bare[0], args, bare[1:])
	case "start":
		for _, name := range bare {
			n, ok := s.byName[name]
			if !ok {
				return "", fmt.Errorf("no host %q", name)
			}
			if err := n.startDaemon(); err != nil {
				return "", err
			}
		}
		s.noteHolders()
	case "advance":
		var d time.Duration
		if d, err = time.ParseDuration(bare[0]); err == nil {
			s.advance(d)
		}
	case "partition":
		clear(s.group)
		for i, g := range strings.Split(bare[0], "|") {
			for _, name := range strings.Split(g, ",") {
				s.group[name] = i + 1
			}
		}
	case "heal":
		clear(s.group)
		s.loss = 0
	case "loss":
		var p float64
		p, err = strconv.ParseFloat(strings.TrimSuffix(bare[0], "%"), 64)
		s.loss = p / 100
	case "delay":
		s.delay, err = time.ParseDuration(bare[0])
	case "link":
		n := s.byName[bare[0]]
		n.linkUp = bare[1] == "up"
		if n.d != nil {
			l := n.link()
			n.d.handle(s.now, linkIn{l})
			s.noteHolders()
		}
	case "stop":
		n := s.byName[bare[0]]
		if n.d != nil {
			n.leaving = true
			n.d.handle(s.now, shutdownIn{})
			n.checkLeft()
			s.noteHolders()
		}
	case "kill":
		n := s.byName[bare[0]]
		n.d = nil
		clear(n.held)
		fmt.Fprintf(&s.out, "%s %s: power cut\n", s.at(), n.name)
		s.noteHolders()
	case "demote":
		n := s.byName[bare[0]]
		var delta int
		if delta, err = strconv.Atoi(bare[1]); err == nil {
			n.d.handle(s.now, commandIn{run: func(now time.Time) { n.d.adjustDemotion(now, delta, "operator", sourceOperator, nil) }, done: make(chan struct{})})
			s.noteHolders()
		}
	case "holders":
		fmt.Fprintf(&s.out, "%s\n", s.holdersLine())
	default:
		return "", fmt.Errorf("unknown command %q", f[0])
	}
	s.event()
	s.flushHolders()
	return s.out.String(), err
}

func simArgs(fields []string) (map[string]string, []string) {
	m := map[string]string{}
	var bare []string
	for _, a := range fields {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			bare = append(bare, a)
		}
	}
	return m, bare
}

// simVIP is vhid n's address.
func simVIP(n int) netip.Prefix {
	if n == 100 {
		return netip.MustParsePrefix("192.0.2.50/32")
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(n)}), 32)
}

func (s *sim) addNode(name string, args map[string]string, flags []string) error {
	cfg := config.Default()
	cfg.Preempt = slices.Contains(flags, "preempt")
	num := func(k string, def int) (int, error) {
		if v, ok := args[k]; ok {
			return strconv.Atoi(v)
		}
		return def, nil
	}
	advskew, err := num("advskew", 0)
	if err != nil {
		return err
	}
	advbase, err := num("advbase", 1)
	if err != nil {
		return err
	}
	if cfg.IfDownDemotion, err = num("ifdown", 240); err != nil {
		return err
	}
	if v, ok := args["preempt-delay"]; ok {
		if cfg.PreemptDelay, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	pass := "lampros"
	if v, ok := args["pass"]; ok {
		pass = v
	}
	prio, err := num("vrrp", 0)
	if err != nil {
		return err
	}
	interval, err := num("interval", 100)
	if err != nil {
		return err
	}
	if prio > 0 && slices.Contains(flags, "nopreempt") {
		cfg.Preempt, cfg.PreemptGiven = false, true
	}
	groups := "100"
	if v, ok := args["vhids"]; ok {
		groups = v
	}
	// Groups of vhids, each a range with its own advskew:
	// "1-16/0,17-32/100"; without /N, advskew applies.
	for _, g := range strings.Split(groups, ",") {
		rng, skew, hasSkew := strings.Cut(g, "/")
		gskew := advskew
		if hasSkew {
			if gskew, err = strconv.Atoi(skew); err != nil {
				return err
			}
		}
		a, b, isRange := strings.Cut(rng, "-")
		first, err := strconv.Atoi(a)
		if err != nil {
			return err
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(b); err != nil {
				return err
			}
		}
		for n := first; n <= last; n++ {
			vc := config.VHID{
				Interface: "eth0", VHID: uint8(n), AdvBase: uint8(advbase), AdvSkew: uint8(gskew),
				Password: pass, Addresses: []netip.Prefix{simVIP(n)}, Origin: "sim:" + name,
			}
			if prio > 0 {
				vc.AdvBase, vc.AdvSkew, vc.Password = 0, 0, ""
				vc.Version, vc.VRRPPriority, vc.VRRPInterval = config.VersionVRRP, uint8(prio), uint16(interval)
				vc.VRRPTieBreak = !slices.Contains(flags, "notiebreak")
			}
			cfg.VHIDs = append(cfg.VHIDs, vc)
			if !slices.Contains(s.vhids, n) {
				s.vhids = append(s.vhids, n)
			}
		}
	}
	sort.Ints(s.vhids)
	node := &simNode{
		s: s, name: name, cfg: cfg, linkUp: true, quiet: slices.Contains(flags, "quiet"),
		own:  netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + len(s.nodes))}),
		held: map[netip.Prefix]bool{},
	}
	s.nodes = append(s.nodes, node)
	s.byName[name] = node
	return nil
}

func (n *simNode) link() Link {
	return Link{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(n.own.As4()[3])}, Up: n.linkUp}
}

func (n *simNode) startDaemon() error {
	h := &Host{Conns: [2]Conn{simConn{n}, nil}, Addresses: simAddrs{n}, Announcer: simAddrs{n}, Links: simAddrs{n}}
	d, err := New(n.cfg, h, Options{
		Log:     slog.New(&simLog{n: n}),
		Counter: func() uint64 { return n.s.rng.Uint64() },
	})
	if err != nil {
		return err
	}
	n.d, n.leaving = d, false
	n.gen++
	if err := d.setUp(); err != nil {
		return err
	}
	d.handle(n.s.now, commandIn{run: d.start, done: make(chan struct{})})
	return nil
}

// checkLeft ends a stopped carpd once its bow-out is over.
func (n *simNode) checkLeft() {
	if n.d != nil && n.leaving && n.d.finished() {
		fmt.Fprintf(&n.s.out, "%s %s: carpd exited\n", n.s.at(), n.name)
		n.d = nil
	}
}

// advance runs every delivery and deadline up to now + d, in time order.
func (s *sim) advance(d time.Duration) {
	end := s.now.Add(d)
	for {
		var next time.Time
		var node *simNode
		for _, n := range s.nodes {
			if n.d == nil {
				continue
			}
			if dl := n.d.nextDeadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
				next, node = dl, n
			}
		}
		var dv *delivery
		if len(s.inFlight) > 0 && (next.IsZero() || !s.inFlight[0].at.After(next)) {
			dv = &s.inFlight[0]
			next = dv.at
		}
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(s.now) {
			s.flushHolders()
			s.now = next
		}
		if dv != nil {
			x := *dv
			s.inFlight = s.inFlight[1:]
			if x.to.d != nil && x.to.gen == x.gen && x.to.linkUp {
				x.pkt.Payload = x.data
				if in, ok := x.to.d.admitPacket(x.fam, x.pkt, &vrrp.Advert{}); ok {
					x.to.d.handle(s.now, in)
				}
				x.to.checkLeft()
			}
		} else {
			node.d.handle(s.now, tickIn{})
			node.checkLeft()
		}
		s.noteHolders()
		s.event()
	}
	s.flushHolders()
	s.now = end
}

// send puts an advert from n on the segment.
func (s *sim) send(from *simNode, fam carp.Family, dst netip.Addr, payload []byte) {
	if !from.linkUp {
		return
	}
	for _, to := range s.nodes {
		if to == from || to.d == nil || s.group[from.name] != s.group[to.name] {
			continue
		}
		if !dst.IsMulticast() && dst != to.own {
			continue
		}
		if s.loss > 0 && s.rng.Float64() < s.loss {
			continue
		}
		s.seq++
		dv := delivery{
			at: s.now.Add(s.delay), seq: s.seq, to: to, gen: to.gen, fam: fam,
			pkt:  Packet{IfIndex: 2, Src: from.own, Dst: dst, TTL: carp.TTL},
			data: slices.Clone(payload),
		}
		i := sort.Search(len(s.inFlight), func(i int) bool { return s.inFlight[i].at.After(dv.at) })
		s.inFlight = slices.Insert(s.inFlight, i, dv)
	}
}

// holdersLine lists the holders of each vhid's address.
func (s *sim) holdersLine() string {
	var b strings.Builder
	b.WriteString("holders:")
	// Runs of vhids with the same holders, for many vhids.
	var prev string
	runStart, runEnd := -1, -1
	flush := func() {
		if runStart < 0 {
			return
		}
		if runStart == runEnd {
			fmt.Fprintf(&b, " %d=%s", runStart, prev)
		} else {
			fmt.Fprintf(&b, " %d-%d=%s", runStart, runEnd, prev)
		}
	}
	for _, v := range s.vhids {
		var hs []string
		for _, n := range s.nodes {
			if n.held[simVIP(v)] {
				hs = append(hs, n.name)
			}
		}
		h := strings.Join(hs, "+")
		if h == "" {
			h = "-"
		}
		if runStart >= 0 && h == prev && v == runEnd+1 {
			runEnd = v
			continue
		}
		flush()
		prev, runStart, runEnd = h, v, v
	}
	flush()
	return b.String()
}

// noteHolders prints the holders when they changed. The changes of one
// instant make one line, printed when the clock moves on or the command
// ends.
func (s *sim) noteHolders() {
	s.pending = true
}

func (s *sim) flushHolders() {
	if !s.pending {
		return
	}
	s.pending = false
	if h := s.holdersLine(); h != s.holders {
		s.holders = h
		fmt.Fprintf(&s.out, "%s %s\n", s.at(), h)
	}
}

// simConn is a host's protocol socket on the segment.
type simConn struct{ n *simNode }

func (c simConn) ReadBatch([]Packet) (int, error) { select {} }

func (c simConn) WriteAdvert(ifindex int, src, dst netip.Addr, payload []byte) error {
	c.n.s.send(c.n, carp.IPv4, dst, payload)
	return nil
}

func (c simConn) Join(int) error { return nil }
func (c simConn) Close() error   { return nil }

// simAddrs is a host's eth0: its addresses, its link, its announcer.
type simAddrs struct{ n *simNode }

func (a simAddrs) Set(ifname string, managed, want []netip.Prefix) ([]string, error) {
	a.n.sets++
	a.n.s.now = a.n.s.now.Add(a.n.setCost)
	var changes []string
	for _, p := range managed {
		if a.n.held[p] && !slices.Contains(want, p) {
			delete(a.n.held, p)
			changes = append(changes, "ip addr del "+p.String())
		}
	}
	for _, p := range want {
		if !a.n.held[p] {
			a.n.held[p] = true
			changes = append(changes, "ip addr add "+p.String())
		}
	}
	return changes, nil
}

func (a simAddrs) Refresh(string, []netip.Prefix) error { return nil }

func (a simAddrs) SetLifetime(time.Duration) {}

func (a simAddrs) Announce(int, net.HardwareAddr, []netip.Addr) error { return nil }

func (a simAddrs) Link(string) (Link, error) { return a.n.link(), nil }

func (a simAddrs) Source(int, netip.Addr, []netip.Addr) (netip.Addr, error) { return a.n.own, nil }

// simLog prints the transitions and demotions of a host into the output.
type simLog struct {
	n     *simNode
	attrs []slog.Attr
}

func (l *simLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *simLog) Handle(_ context.Context, r slog.Record) error {
	msg := strings.TrimPrefix(r.Message, "carp: ")
	switch {
	case strings.Contains(msg, " -> ") && !l.n.quiet:
	case strings.HasPrefix(msg, "demoted by"):
	default:
		return nil
	}
	fmt.Fprintf(&l.n.s.out, "%s %s: %s\n", l.n.s.at(), l.n.name, msg)
	return nil
}

func (l *simLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &simLog{n: l.n, attrs: append(slices.Clip(l.attrs), as...)}
}

func (l *simLog) WithGroup(string) slog.Handler { return l }

// FuzzSimulation drives three hosts with distinct (or equal) advskews through random
// partitions, losses, link flaps, power cuts, restarts and planned stops.
// Invariants, the first checked after every event the hosts handle:
//   - at every instant, a host holds a vhid's address only while its
//     carpd says MASTER (or bows out, holding them until the new master
//     is heard);
//   - once the segment is healed and every host runs with its link up,
//     exactly one host holds the address within two master-down
//     intervals, and it is MASTER.
func FuzzSimulation(f *testing.F) {
	f.Add([]byte{0, 6, 1, 6, 3, 6, 4, 6})
	f.Add([]byte{2, 6, 2, 6, 5, 6, 7, 6, 1})
	f.Add([]byte{0, 3, 6, 6, 6, 1, 4, 5, 6})
	f.Add([]byte{8, 6, 1, 6, 3, 6, 4, 6})
	f.Add([]byte{9, 0, 6, 5, 6, 1, 6, 3, 6, 4, 6})
	f.Add([]byte{16, 6, 3, 6, 6, 4, 6, 11, 6, 6})
	f.Add([]byte{16, 0, 6, 6, 1, 6, 3, 6, 4, 6})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 200 {
			return
		}
		s := newSim(uint64(len(ops)))
		names := []string{"a", "b", "c"}
		// ops[0]'s bit 3 makes the hosts VRRPv3 (priorities 200, 150,
		// 100 at 100 ms), its bits 0-2 preempt (CARP) or nopreempt (VRRP),
		// its bit 4 the CARP hosts' advskews equal (100, the tie-break's
		// case).
		vrrpMode := len(ops) > 0 && ops[0]&8 != 0
		equalSkew := len(ops) > 0 && ops[0]&16 != 0
		for i, name := range names {
			args := map[string]string{"advskew": strconv.Itoa(100 * i)}
			if equalSkew {
				args["advskew"] = "100"
			}
			if vrrpMode {
				args = map[string]string{"vrrp": strconv.Itoa(200 - 50*i), "interval": "10"}
			}
			var flags []string
			if len(ops) > 0 && ops[0]&(1<<i) != 0 {
				flags = append(flags, "preempt", "nopreempt")
			}
			if err := s.addNode(name, args, flags); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range s.nodes {
			if err := n.startDaemon(); err != nil {
				t.Fatal(err)
			}
		}
		check := func() {
			t.Helper()
			for _, n := range s.nodes {
				if !n.held[simVIP(100)] {
					continue
				}
				if n.d == nil {
					t.Fatalf("%s t=%v: %s holds the address without carpd", s.out.String(), s.now.Sub(s.start), n.name)
				}
				v := n.d.vhosts[0]
				if v.state() != carp.Master {
					t.Fatalf("%s t=%v: %s holds the address in state %v", s.out.String(), s.now.Sub(s.start), n.name, v.state())
				}
			}
		}
		// After every event, not only between the operations.
		s.afterEvent = check
		for i, op := range ops {
			n := s.nodes[int(op>>3)%len(s.nodes)]
			var cmd string
			switch op & 7 {
			case 0:
				groups := []string{"a", "b", "c"}
				cmd = "partition " + groups[i%3] + "|" + groups[(i+1)%3] + "," + groups[(i+2)%3]
			case 1:
				cmd = "heal"
			case 2:
				if n.linkUp {
					cmd = "link " + n.name + " down"
				} else {
					cmd = "link " + n.name + " up"
				}
			case 3:
				cmd = "kill " + n.name
			case 4:
				if n.d == nil {
					cmd = "start " + n.name
				}
			case 5:
				if n.d != nil && !n.leaving {
					cmd = "stop " + n.name
				}
			case 6:
				cmd = fmt.Sprintf("advance %dms", 50+int(op)*37)
			case 7:
				cmd = fmt.Sprintf("loss %d%%", int(op)%90)
			}
			if cmd == "" {
				continue
			}
			if _, err := s.run(cmd); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			check()
		}
		// Heal everything and let it settle.
		if _, err := s.run("heal"); err != nil {
			t.Fatal(err)
		}
		for _, n := range s.nodes {
			if !n.linkUp {
				if _, err := s.run("link " + n.name + " up"); err != nil {
					t.Fatal(err)
				}
			}
		}
		// A host bowing out exits within 3 x advbase + 1 s.
		if _, err := s.run("advance 5s"); err != nil {
			t.Fatal(err)
		}
		for _, n := range s.nodes {
			if n.d == nil {
				if err := n.startDaemon(); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 80 { // 8 s in steps, checking on the way
			if _, err := s.run("advance 100ms"); err != nil {
				t.Fatal(err)
			}
			check()
		}
		var holders []string
		for _, n := range s.nodes {
			if n.held[simVIP(100)] {
				holders = append(holders, n.name)
			}
		}
		if len(holders) != 1 {
			t.Fatalf("after healing, the holders are %v, want one", holders)
		}
	})
}
