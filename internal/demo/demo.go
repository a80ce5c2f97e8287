// Package demo runs `carpd-demo`: FreeBSD's CARP walkthrough (two routers
// sharing 192.0.2.50, a client pinging it while the master reboots) played
// in network namespaces on this machine, with the real carpd binary.
//
// The demo doubles as a smoke test: Run fails unless, at the end, exactly
// one node holds the virtual address and the client's pings recovered.
// Everything it creates (namespaces, processes, the rc.conf files) is
// removed on every way out, cancellation included.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/etcdlab"
	"github.com/carpd/carpd/internal/probe"
)

// Options configure Run. Zero durations take the defaults shown.
type Options struct {
	// Carpd is the path of the carpd binary to run on master and backup
	// (`carpd-demo` passes os.Executable()). Required.
	Carpd string
	// Stdout receives the walkthrough; nil means os.Stdout.
	Stdout io.Writer
	// Preempt starts carpd with --preempt, so the master takes the address
	// back when it returns.
	Preempt bool
	// Etcd plays the walkthrough with the vhid elected on etcd
	// (electorate = "etcd", the l2 mover): a real 3-member etcd cluster
	// (internal/lab/etcdlab) on a segment of its own, which both routers
	// reach on a second interface, ctl.
	Etcd bool
	// Settle bounds the wait for the first node to hold the address (15 s).
	Settle time.Duration
	// Before is how long the client pings before the master reboots (5 s).
	Before time.Duration
	// Down is how long the master stays down (10 s).
	Down time.Duration
	// After is how long the client pings after the master is back (6 s).
	After time.Duration
	// Interval is the time between the printed pings (1 s).
	Interval time.Duration
}

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.Settle, 15*time.Second)
	set(&o.Before, 5*time.Second)
	set(&o.Down, 10*time.Second)
	set(&o.After, 6*time.Second)
	set(&o.Interval, time.Second)
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
}

// outageInterval is the period of the silent second prober that measures
// the outage more finely than the printed once-a-second pings.
const outageInterval = 100 * time.Millisecond

// node is one of the two CARP routers of the walkthrough.
type node struct {
	name  string
	addr  netip.Prefix // the router's own address
	alias string       // the ifconfig_eth0_alias0 value, as in the handbook
	skew  int          // advskew in alias, for the printed bound
}

// The walkthrough's topology (FreeBSD Handbook, "Common Address Redundancy
// Protocol (CARP)", with em0 renamed eth0).
var (
	vip    = netip.MustParseAddr("192.0.2.50")
	vhid   = 100
	client = netip.MustParsePrefix("192.0.2.100/24")
	nodes  = []node{
		{"master", netip.MustParsePrefix("192.0.2.21/24"), "inet 192.0.2.50/32 vhid 100 advskew 100 pass lampros", 100},
		{"backup", netip.MustParsePrefix("192.0.2.22/24"), "inet alias 192.0.2.50/32 vhid 100 advskew 200 pass lampros", 200},
	}
)

// advbase is the walkthrough's advertisement base: carp(4)'s default.
const advbase = 1

// etcdTTL is the lease TTL of the etcd walkthrough: short, so that the
// backup takes over within the master's time away.
const etcdTTL = 4 * time.Second

// The bounds the outage is shown next to.
const (
	carpBound = "CARP bound 3*advbase + advskew/256"
	etcdBound = "etcd bound ttl + 0.3 s"
)

// etcdConf returns a node's carpd.toml in the etcd walkthrough: node i
// (0, 1) of nodes, the vhid on eth0 elected on the cluster at endpoints.
func etcdConf(i int, n node, endpoints []string) string {
	eps := make([]string, len(endpoints))
	for j, e := range endpoints {
		eps[j] = fmt.Sprintf("%q", e)
	}
	return fmt.Sprintf(`[etcd]
endpoints = [%s]
node = %q
ttl = %q

[[vhid]]
interface = %q
vhid = %d
addresses = ["%s/32"]
electorate = "etcd"
advskew = %d
`, strings.Join(eps, ", "), n.name, etcdTTL.String(), lab.Iface, vhid, vip, n.skew)
}

// ctlAddr is node i's address on the etcd cluster's segment.
func ctlAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(21 + i)}), 24)
}

// rcConf returns a node's rc.conf.
func rcConf(n node) string {
	mask := net.IP(net.CIDRMask(n.addr.Bits(), 32)).String()
	return fmt.Sprintf("ifconfig_%s=\"inet %s netmask %s\"\nifconfig_%s_alias0=\"%s\"\n",
		lab.Iface, n.addr.Addr(), mask, lab.Iface, n.alias)
}

// printer serialises the walkthrough's output.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

// Run plays the walkthrough. It needs root; it returns an error when
// something could not be set up, when ctx is cancelled, or when at the end
// not exactly one node holds the address or the pings did not recover.
func Run(ctx context.Context, o Options) error {
	if os.Geteuid() != 0 {
		return errors.New("carpd-demo: needs root (network namespaces); run it with sudo")
	}
	if o.Carpd == "" {
		return errors.New("carpd-demo: no carpd binary given")
	}
	if _, err := os.Stat(o.Carpd); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	o.defaults()
	d := &run{o: o, out: &printer{w: o.Stdout}, carpds: make(map[string][]*lab.Proc)}
	err := d.play(ctx)
	if ctx.Err() != nil {
		err = fmt.Errorf("carpd-demo: interrupted: %w", context.Cause(ctx))
	}
	if cerr := d.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("carpd-demo: cleanup: %w", cerr))
	}
	return err
}

// run is one play of the walkthrough.
type run struct {
	o   Options
	out *printer

	lab    *lab.Lab
	etcd   *etcdlab.Cluster // in etcd mode: the cluster, which owns lab
	dir    string           // holds the rc.conf (carpd.toml) files
	hosts  map[string]*lab.Host
	client *lab.Host

	mu     sync.Mutex
	carpds map[string][]*lab.Proc // per node, every carpd started, oldest first

	pings orderer
}

// orderer releases lines numbered 1, 2, ... in order.
type orderer struct {
	next    int
	pending map[int]string
}

func (o *orderer) add(seq int, line string, out *printer) {
	if o.pending == nil {
		o.pending, o.next = make(map[int]string), 1
	}
	o.pending[seq] = line
	for {
		l, ok := o.pending[o.next]
		if !ok {
			return
		}
		out.printf("%s", l)
		delete(o.pending, o.next)
		o.next++
	}
}

func (d *run) close() error {
	var err error
	switch {
	case d.etcd != nil:
		err = d.etcd.Close()
	case d.lab != nil:
		err = d.lab.Close()
	}
	if d.dir != "" {
		err = errors.Join(err, os.RemoveAll(d.dir))
	}
	return err
}

func (d *run) play(ctx context.Context) error {
	if err := d.build(ctx); err != nil {
		return err
	}
	d.printIntro()
	for _, n := range nodes {
		if err := d.startCarpd(n); err != nil {
			return err
		}
	}
	stopLog := d.streamLog()
	defer stopLog()

	first, err := d.waitForMaster(ctx)
	if err != nil {
		return err
	}
	d.out.printf("\nPinging %s from the client every %v (%s answers now):\n\n", vip, d.o.Interval, first)

	slow, fast, err := d.listen()
	if err != nil {
		return err
	}
	defer slow.Close()
	defer fast.Close()
	// Cancellation aborts the probers' wait for late replies.
	defer context.AfterFunc(ctx, func() { slow.Close(); fast.Close() })()

	pingCtx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	type runResult struct {
		rs  []probe.Result
		err error
	}
	slowDone, fastDone := make(chan runResult, 1), make(chan runResult, 1)
	go func() {
		rs, err := slow.Run(pingCtx, vip, d.o.Interval, d.printPing)
		slowDone <- runResult{rs, err}
	}()
	go func() {
		rs, err := fast.Run(pingCtx, vip, outageInterval, nil)
		fastDone <- runResult{rs, err}
	}()

	timelineErr := d.timeline(ctx)
	stopPing()
	s, f := <-slowDone, <-fastDone
	if timelineErr != nil {
		return timelineErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := errors.Join(s.err, f.err); err != nil {
		return fmt.Errorf("carpd-demo: ping: %w", err)
	}
	stopLog()
	return d.conclude(probe.Summarize(s.rs), probe.Summarize(f.rs))
}

// build makes the lab, the hosts and the rc.conf files; in etcd mode the
// etcd cluster first, whose lab it is, and carpd.toml files.
func (d *run) build(ctx context.Context) error {
	l, err := d.newLab(ctx)
	if err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	d.lab = l
	d.hosts = make(map[string]*lab.Host)
	for _, n := range nodes {
		h, err := l.AddHost(n.name, n.addr)
		if err != nil {
			return fmt.Errorf("carpd-demo: %w", err)
		}
		d.hosts[n.name] = h
	}
	if d.client, err = l.AddHost("client", client); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	if d.dir, err = os.MkdirTemp("", "carpd-demo-"); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	for i, n := range nodes {
		if d.etcd != nil {
			if err := d.hosts[n.name].Attach(etcdlab.Segment, "ctl", ctlAddr(i)); err != nil {
				return fmt.Errorf("carpd-demo: %w", err)
			}
		}
		if err := os.WriteFile(d.rcPath(n), []byte(d.conf(i, n)), 0o600); err != nil {
			return fmt.Errorf("carpd-demo: %w", err)
		}
	}
	return nil
}

// newLab makes the lab: in etcd mode, the etcd cluster's, once it has a
// leader.
func (d *run) newLab(ctx context.Context) (*lab.Lab, error) {
	if !d.o.Etcd {
		return lab.New("carpdemo")
	}
	bin, err := etcdlab.Binary()
	if err != nil {
		return nil, err
	}
	c, err := etcdlab.New(bin, "carpdemo", etcdlab.Raft{})
	if c != nil {
		d.etcd = c
	}
	if err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := c.Leader(wait); err != nil {
		return nil, fmt.Errorf("the etcd cluster has no leader: %w", err)
	}
	return c.Lab, nil
}

// conf is node i's configuration: the handbook's rc.conf, or in etcd
// mode a carpd.toml.
func (d *run) conf(i int, n node) string {
	if d.etcd != nil {
		return etcdConf(i, n, d.etcd.Endpoints())
	}
	return rcConf(n)
}

func (d *run) rcPath(n node) string {
	if d.o.Etcd {
		return filepath.Join(d.dir, n.name+".toml")
	}
	return filepath.Join(d.dir, n.name+".rc.conf")
}

func (d *run) carpdArgs(n node) []string {
	// Each carpd its own control socket and state file.
	flag := "--rc-conf"
	if d.o.Etcd {
		flag = "--config"
	}
	args := []string{d.o.Carpd, flag, d.rcPath(n),
		"--control", filepath.Join(d.dir, n.name+".sock"), "--state-file", filepath.Join(d.dir, n.name+".state")}
	if d.o.Preempt {
		args = append(args, "--preempt")
	}
	return args
}

func (d *run) printIntro() {
	p := d.out
	if d.etcd != nil {
		p.printf("carpd-demo: FreeBSD's CARP walkthrough with the vhid elected on etcd, in network namespaces (lab %s)\n\n", d.lab.ID)
		p.printf("etcd: 3 members on segment %s: %s\n", etcdlab.Segment, strings.Join(d.etcd.Endpoints(), " "))
		for i, n := range nodes {
			p.printf("  %-7s ctl %s\n", n.name, ctlAddr(i))
		}
		p.printf("\n")
	} else {
		p.printf("carpd-demo: FreeBSD's CARP walkthrough, in network namespaces (lab %s)\n\n", d.lab.ID)
	}
	p.printf("One Ethernet segment (bridge %s in namespace %s):\n", lab.Bridge, d.lab.Switch)
	for _, n := range nodes {
		h := d.hosts[n.name]
		p.printf("  %-7s %-15s %s %s  netns %s\n", n.name, n.addr, h.Iface, h.MAC, h.NS)
	}
	p.printf("  %-7s %-15s %s %s  netns %s\n", "client", client, d.client.Iface, d.client.MAC, d.client.NS)
	p.printf("  virtual address %s, vhid %d\n", vip, vhid)
	for i, n := range nodes {
		file := "/etc/rc.conf"
		if d.etcd != nil {
			file = "/etc/carpd/carpd.toml"
		}
		p.printf("\n%s's %s:\n", n.name, file)
		for _, line := range strings.Split(strings.TrimSuffix(d.conf(i, n), "\n"), "\n") {
			p.printf("  %s\n", line)
		}
	}
	p.printf("\nStarting on master and backup: %s\n", strings.Join(d.carpdArgs(node{name: "<node>"}), " "))
}

func (d *run) startCarpd(n node) error {
	h := d.hosts[n.name]
	p, err := h.Start("carpd@"+n.name, d.carpdArgs(n)...)
	if err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	d.mu.Lock()
	d.carpds[n.name] = append(d.carpds[n.name], p)
	d.mu.Unlock()
	return nil
}

// current returns the node's latest carpd.
func (d *run) current(name string) *lab.Proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.carpds[name]
	return ps[len(ps)-1]
}

// holders returns the nodes holding the virtual address.
func (d *run) holders() ([]string, error) {
	var hs []string
	for _, n := range nodes {
		ok, err := d.hosts[n.name].Holds(vip)
		if err != nil {
			return nil, fmt.Errorf("carpd-demo: %w", err)
		}
		if ok {
			hs = append(hs, n.name)
		}
	}
	return hs, nil
}

// waitForMaster waits until a node holds the address and returns its name.
func (d *run) waitForMaster(ctx context.Context) (string, error) {
	start := time.Now()
	d.out.printf("\nWaiting for a master (up to %v)...\n", d.o.Settle)
	deadline := time.NewTimer(d.o.Settle)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range nodes {
			if p := d.current(n.name); exited(p) {
				return "", fmt.Errorf("carpd-demo: carpd on %s exited with code %d:\n%s", n.name, p.ExitCode(), indent(p.Output()))
			}
		}
		hs, err := d.holders()
		if err != nil {
			return "", err
		}
		switch len(hs) {
		case 0:
		case 1:
			d.out.printf("%s holds %s after %.1f s.\n", hs[0], vip, time.Since(start).Seconds())
			return hs[0], nil
		default:
			return "", fmt.Errorf("carpd-demo: %s all hold %s at once after %.1f s; carpd said:\n%s",
				strings.Join(hs, " and "), vip, time.Since(start).Seconds(), d.logs(false))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", fmt.Errorf("carpd-demo: no node holds %s after %v; carpd said:\n%s", vip, d.o.Settle, d.logs(false))
		case <-tick.C:
		}
	}
}

func exited(p *lab.Proc) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// listen opens the client's two probers: the printed one and the fine one.
func (d *run) listen() (slow, fast *probe.Prober, err error) {
	err = d.client.Do(func() error {
		var err error
		if slow, err = probe.Listen(); err != nil {
			return err
		}
		if fast, err = probe.Listen(); err != nil {
			slow.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("carpd-demo: %w", err)
	}
	return slow, fast, nil
}

// printPing prints one probe in the style of Windows ping, in Seq order:
// a reply is labelled with the node that answered when it arrives, and
// printed once every earlier probe is settled.
func (d *run) printPing(r probe.Result) {
	line := fmt.Sprintf("Request timed out. (seq=%d)\n", r.Seq)
	if !r.Lost {
		line = fmt.Sprintf("Reply from %s: seq=%d time=%.1fms (%s)\n", vip, r.Seq, float64(r.RTT)/float64(time.Millisecond), d.answerer())
	}
	d.pings.add(r.Seq, line, d.out)
}

// answerer names the node that answers for the address: the one whose MAC
// the client's ARP entry names, or (if carpd answers with a virtual MAC)
// the node holding the address.
func (d *run) answerer() string {
	mac, _, err := d.client.Neigh(vip)
	if err == nil && mac != nil {
		for _, n := range nodes {
			if mac.String() == d.hosts[n.name].MAC.String() {
				return n.name
			}
		}
	}
	hs, err := d.holders()
	if err != nil || len(hs) == 0 {
		return "MAC " + mac.String()
	}
	return strings.Join(hs, "+") + " via MAC " + mac.String()
}

// timeline reboots the master between the pings.
func (d *run) timeline(ctx context.Context) error {
	if err := sleep(ctx, d.o.Before); err != nil {
		return err
	}
	master := d.hosts["master"]
	if err := d.current("master").Kill(); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	if err := master.LinkDown(); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	if err := master.FlushAddrs(); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	d.out.printf("\n*** master reboots: carpd killed (SIGKILL), eth0 down, addresses flushed ***\n\n")
	if err := sleep(ctx, d.o.Down); err != nil {
		return err
	}
	if err := master.LinkUp(); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	if err := master.AddAddr(nodes[0].addr); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	if err := d.startCarpd(nodes[0]); err != nil {
		return err
	}
	d.out.printf("\n*** master is back: eth0 up, %s re-added, carpd restarted ***\n\n", nodes[0].addr)
	return sleep(ctx, d.o.After)
}

func sleep(ctx context.Context, dur time.Duration) error {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// conclude prints the statistics and the transitions and checks the end
// state.
func (d *run) conclude(slow, fast probe.Stats) error {
	hs, err := d.holders()
	if err != nil {
		return err
	}
	states := make(map[string]string)
	for _, n := range nodes {
		states[n.name] = lastState(d.current(n.name).Output())
	}
	bound, what := masterDownBound(advbase, nodes[1].skew), carpBound
	if d.etcd != nil {
		bound, what = etcdTTL+300*time.Millisecond, etcdBound
	}
	d.out.printf("\n%s", formatStats(vip, slow, fast.Outage, outageInterval, bound, what))
	d.out.printf("%s is held by: %s\n", vip, heldBy(hs, states))
	d.out.printf("\ncarpd's state changes:\n%s", d.logs(true))

	var errs []error
	for _, n := range nodes {
		if p := d.current(n.name); exited(p) {
			errs = append(errs, fmt.Errorf("carpd on %s exited with code %d", n.name, p.ExitCode()))
		}
	}
	if len(hs) != 1 {
		errs = append(errs, fmt.Errorf("%d nodes hold %s at the end, want exactly one", len(hs), vip))
	}
	if !slow.Recovered {
		errs = append(errs, fmt.Errorf("the pings to %s did not recover", vip))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("carpd-demo: %w", err)
	}
	return nil
}

// logs returns the carpd lines of both nodes, prefixed with the node's
// name; only the "carp:" transition lines if transitions is set.
func (d *run) logs(transitions bool) string {
	var b strings.Builder
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range nodes {
		for i, p := range d.carpds[n.name] {
			label := n.name
			if i > 0 {
				label = fmt.Sprintf("%s (start %d)", n.name, i+1)
			}
			for _, line := range strings.Split(p.Output(), "\n") {
				if line == "" || transitions && !strings.Contains(line, "carp:") {
					continue
				}
				fmt.Fprintf(&b, "  %s: %s\n", label, logLine(line))
			}
		}
	}
	return b.String()
}

// streamLog prints carpd's transition lines as they appear, until the
// returned function is called (which is idempotent).
func (d *run) streamLog() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		seen := make(map[*lab.Proc]int) // bytes of output already scanned
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			d.mu.Lock()
			var ps []*lab.Proc
			var names []string
			for _, n := range nodes {
				for _, p := range d.carpds[n.name] {
					ps, names = append(ps, p), append(names, n.name)
				}
			}
			d.mu.Unlock()
			for i, p := range ps {
				out := p.Output()
				end := strings.LastIndexByte(out, '\n') + 1
				for _, line := range strings.Split(out[seen[p]:end], "\n") {
					if strings.Contains(line, "carp:") {
						d.out.printf("    [%s] %s\n", names[i], logLine(line))
					}
				}
				seen[p] = max(seen[p], end)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
