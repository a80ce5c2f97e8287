package e2e

// Helpers of the interop tests: one segment with a carpd host, a ucarp host
// and a client, vhid 100, pass lampros, VIP 192.0.2.50, advbase 1.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/probe"
)

// Addresses of the interop segment. Which of the two CARP hosts gets the
// lower address matters only for ucarp's tie-break between equal adverts.
var (
	lowAddr  = netip.MustParsePrefix("192.0.2.21/24")
	highAddr = netip.MustParsePrefix("192.0.2.22/24")
)

// needBinary returns the path of a program an interop test runs. When it is
// missing the test is skipped, unless the environment variable CI is set:
// scripts/setup.sh installs it there, so its absence is a failure.
func needBinary(t testing.TB, name string) string {
	t.Helper()
	requireRoot(t)
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required (scripts/setup.sh installs it): %v", name, err)
	}
	t.Skipf("skipping: %s is not installed (scripts/setup.sh installs it; with CI set this is a failure)", name)
	return ""
}

// ucarpUp is ucarp's up script: ucarp runs it with the interface and the
// virtual address when it becomes MASTER. ucarp waits for its scripts, so
// the gratuitous ARPs (Habets' arping, Debian's arping package: -U
// unsolicited, -S source, -i interface) go to the background.
const ucarpUp = `#!/bin/sh
# ucarp up script: $1 = interface, $2 = virtual address.
ip addr add "$2/32" dev "$1"
arping -q -U -c 3 -i "$1" -S "$2" "$2" >/dev/null 2>&1 &
exit 0
`

// ucarpDown is ucarp's down script, run at start (ucarp begins as BACKUP),
// on every MASTER -> BACKUP and, with -z, at exit.
const ucarpDown = `#!/bin/sh
# ucarp down script: $1 = interface, $2 = virtual address.
ip addr del "$2/32" dev "$1" 2>/dev/null
exit 0
`

// peers is a carpd host, a ucarp host and a client on one segment.
type peers struct {
	t                    testing.TB
	lab                  *lab.Lab
	dir                  string
	carpd, ucarp, client *lab.Host
	carpdAddr, ucarpAddr netip.Prefix

	mu    sync.Mutex
	procs []*lab.Proc
}

// newPeers builds the segment. ucarpLow gives ucarp the lower address
// (192.0.2.21) and carpd the higher one (192.0.2.22); false swaps them.
// It skips the test when ucarp is missing outside CI.
func newPeers(t testing.TB, ucarpLow bool) *peers {
	t.Helper()
	needBinary(t, "ucarp")
	needBinary(t, "arping")
	l := labtest.New(t, "carpx")
	p := &peers{t: t, lab: l, dir: t.TempDir(), carpdAddr: highAddr, ucarpAddr: lowAddr}
	if !ucarpLow {
		p.carpdAddr, p.ucarpAddr = lowAddr, highAddr
	}
	for _, h := range []struct {
		name string
		addr netip.Prefix
		dst  **lab.Host
	}{{"carpd", p.carpdAddr, &p.carpd}, {"ucarp", p.ucarpAddr, &p.ucarp}, {"client", clientAddr, &p.client}} {
		host, err := l.AddHost(h.name, h.addr)
		if err != nil {
			t.Fatal(err)
		}
		*h.dst = host
	}
	for name, body := range map[string]string{"up.sh": ucarpUp, "down.sh": ucarpDown} {
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pr := range p.procs {
			t.Logf("%s output:\n%s", pr.Name, pr.Output())
		}
	})
	return p
}

func (p *peers) record(pr *lab.Proc) {
	p.mu.Lock()
	p.procs = append(p.procs, pr)
	p.mu.Unlock()
}

// startCarpd starts carpd on the carpd host with the given advskew, debug
// logging (dropped adverts are logged at debug level) and extra flags.
func (p *peers) startCarpd(advskew int, flags ...string) *lab.Proc {
	p.t.Helper()
	rc := fmt.Sprintf("ifconfig_eth0=\"inet %s netmask 255.255.255.0\"\n"+
		"ifconfig_eth0_alias0=\"inet alias %s/32 vhid 100 advskew %d pass lampros\"\n",
		p.carpdAddr.Addr(), vip, advskew)
	path := filepath.Join(p.dir, "carpd.rc.conf")
	if err := os.WriteFile(path, []byte(rc), 0o644); err != nil {
		p.t.Fatal(err)
	}
	args := append(append([]string{carpdBin, "--rc-conf", path, "--log-level", "debug"}, ownFiles(path)...), flags...)
	pr, err := p.carpd.Start("carpd", args...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.record(pr)
	return pr
}

// startUcarp starts ucarp in the foreground on the ucarp host: vhid 100,
// pass lampros, advbase 1, the given advskew, the up and down scripts, and
// -z (run the down script at exit). ucarp writes its [WARNING] and [ERROR]
// lines to stderr and its [INFO] and [DEBUG] lines to stdout (and tries
// syslog as well, which is absent here); stdbuf makes stdout line-buffered
// so that nothing is lost when the test kills it.
func (p *peers) startUcarp(advskew int, flags ...string) *lab.Proc {
	p.t.Helper()
	args := []string{"ucarp", "-i", lab.Iface, "-s", p.ucarpAddr.Addr().String(), "-v", "100",
		"-p", "lampros", "-a", vip.String(), "-k", fmt.Sprint(advskew), "-b", "1",
		"-u", filepath.Join(p.dir, "up.sh"), "-d", filepath.Join(p.dir, "down.sh"), "-z"}
	args = append(args, flags...)
	if _, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{"stdbuf", "-oL"}, args...)
	}
	pr, err := p.ucarp.Start("ucarp", args...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.record(pr)
	return pr
}

// holders returns the names of the CARP hosts that hold the VIP.
func (p *peers) holders() []string {
	p.t.Helper()
	return holdersOf(p.t, vip, p.carpd, p.ucarp)
}

// waitSole polls until h alone holds the VIP and returns how long it took.
func (p *peers) waitSole(h *lab.Host, timeout time.Duration) (time.Duration, bool) {
	return waitSole(p.t, h, timeout, p.carpd, p.ucarp)
}

// waitHolds polls until h holds the VIP, whoever else does (a dead host
// keeps its addresses), and returns the time since from.
func waitHolds(t testing.TB, h *lab.Host, from time.Time, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	for time.Since(from) < timeout {
		ok, err := h.Holds(vip)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return time.Since(from), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(from), false
}

// steady fails the test unless h alone holds the VIP during d.
func (p *peers) steady(h *lab.Host, d time.Duration) {
	p.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if got := p.holders(); len(got) != 1 || got[0] != h.Name {
			p.t.Fatalf("VIP held by %v, want only %s", got, h.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// die takes a host off the segment as a power cut would: its CARP process
// (and anything it started) SIGKILLed, its switch port down. It returns the
// moment of the kill.
func die(t testing.TB, h *lab.Host, pr *lab.Proc) time.Time {
	t.Helper()
	at := time.Now()
	if err := pr.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := h.PortDown(); err != nil {
		t.Fatal(err)
	}
	return at
}

// ucarpStates returns the states ucarp switched to, in order, from its
// "[WARNING] Switching to state: MASTER" lines.
func ucarpStates(out string) []string {
	var states []string
	for _, l := range strings.Split(out, "\n") {
		if _, s, ok := strings.Cut(l, "Switching to state: "); ok {
			states = append(states, strings.TrimSpace(s))
		}
	}
	return states
}

// ucarpBadDigests returns ucarp's "Bad digest" lines: adverts whose HMAC it
// rejected.
func ucarpBadDigests(out string) []string { return grepLines(out, "Bad digest") }

// carpdDrops returns carpd's debug lines for dropped adverts
// (`msg="carp: dropped advert" reason=badauth ...`).
func carpdDrops(out string) []string { return grepLines(out, "carp: dropped advert") }

func grepLines(out, substr string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkClean fails the test if ucarp rejected an advert's HMAC or carpd
// dropped one of ucarp's adverts.
func checkClean(t testing.TB, carpd, ucarp *lab.Proc) {
	t.Helper()
	if bad := ucarpBadDigests(ucarp.Output()); len(bad) > 0 {
		t.Errorf("ucarp rejected carpd's HMAC %d times:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if drops := carpdDrops(carpd.Output()); len(drops) > 0 {
		t.Errorf("carpd dropped %d adverts (want none, in particular no reason=badauth):\n%s", len(drops), strings.Join(drops, "\n"))
	}
}

// pingVIP pings the VIP from client every interval until the prober is
// stopped (at the latest when the test ends).
func pingVIP(t testing.TB, client *lab.Host, interval time.Duration) *prober {
	t.Helper()
	return startPing(t, client, vip, interval)
}

// waitRecovered fails the test unless a probe sent after t is answered
// within timeout.
func (p *prober) waitRecovered(tb testing.TB, after time.Time, timeout time.Duration) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !p.answeredSince(after) {
		if time.Now().After(deadline) {
			tb.Fatalf("the client's pings did not recover within %v of the takeover", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range p.results() {
		if !r.Lost && r.Sent.After(after) {
			return r.Sent.Sub(after)
		}
	}
	return 0
}

// checkNoLoss fails the test unless every probe was answered.
func checkNoLoss(t testing.TB, pr *prober, minSent int) {
	t.Helper()
	pr.stop()
	st := probe.Summarize(pr.results())
	if st.Sent < minSent || st.Lost != 0 {
		t.Errorf("client pings: sent %d, lost %d; want >= %d sent and none lost", st.Sent, st.Lost, minSent)
	}
}

// stopGracefully sends SIGTERM and waits for the process to end.
func stopGracefully(t testing.TB, pr *lab.Proc) {
	t.Helper()
	if err := pr.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pr.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10 s of SIGTERM", pr.Name)
	}
}

// isolate splits (on) or joins the hosts; see isolatePorts.
func (p *peers) isolate(on bool, hosts ...*lab.Host) {
	p.t.Helper()
	isolatePorts(p.t, p.lab, on, hosts...)
}

// settle waits until one CARP host alone has held the VIP for hold, at
// most limit. It returns that host's name, the time it took (up to the
// start of the hold) and the longest time in between when no host held the
// VIP; the host is "" when the pair did not settle.
func (p *peers) settle(hold, limit time.Duration) (holder string, took, gap time.Duration) {
	start := time.Now()
	since := start
	var gapStart time.Time
	for time.Since(start) < limit {
		now := time.Now()
		got := p.holders()
		if len(got) == 0 {
			if gapStart.IsZero() {
				gapStart = now
			}
			gap = max(gap, now.Sub(gapStart))
		} else {
			gapStart = time.Time{}
		}
		if len(got) != 1 || got[0] != holder {
			holder, since = "", now
			if len(got) == 1 {
				holder = got[0]
			}
		}
		if holder != "" && now.Sub(since) >= hold {
			return holder, since.Sub(start), gap
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", time.Since(start), gap
}

// tail returns the last n lines of out.
func tail(out string, n int) []string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}
