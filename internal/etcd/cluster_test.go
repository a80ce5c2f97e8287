package etcd

// Tests against a real 3-member etcd cluster (internal/lab/etcdlab): every
// candidate is this test binary re-run as a process in its own namespace on
// the ctl bridge (candidateMain), printing its decisions with their wall
// clock time, so that SIGKILL, SIGSTOP and a cut cable are real.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/etcdlab"
)

const candidateEnv = "CARPD_ETCD_CANDIDATE"

// Timing of the cluster tests: ttl 4 s, renew 1 s, margin 1 s (T - M = 3 ×
// renew), requests 800 ms.
const (
	labTTL     = 4 * time.Second
	labRenew   = time.Second
	labMargin  = time.Second
	labRequest = 800 * time.Millisecond
	labListen  = 2 * time.Second
)

type candidateConf struct {
	Endpoints []string
	Node      string
	AdvSkew   int
	Preempt   bool
}

func TestMain(m *testing.M) {
	if s := os.Getenv(candidateEnv); s != "" {
		os.Exit(candidateMain(s))
	}
	os.Exit(m.Run())
}

// decisionLine is one line a candidate prints.
type decisionLine struct {
	At     int64 // Unix nanoseconds
	Kind   string
	On     bool
	Until  int64
	Tenure int64
	Node   string
	Reason string
}

func candidateMain(conf string) int {
	var cc candidateConf
	if err := json.Unmarshal([]byte(conf), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "candidate:", err)
		return 2
	}
	m, err := NewMachine(Config{Node: cc.Node, AdvSkew: cc.AdvSkew, Preempt: cc.Preempt, Renew: labRenew, Margin: labMargin, Listen: labListen})
	if err != nil {
		fmt.Fprintln(os.Stderr, "candidate:", err)
		return 2
	}
	c, err := NewClient(ClientConfig{Endpoints: cc.Endpoints, Prefix: "/carpd/", VHID: 1, Node: cc.Node,
		TTL: labTTL, RequestTimeout: labRequest, ReadEvery: labTTL,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "candidate:", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	enc := json.NewEncoder(os.Stdout)
	Run(ctx, &Electorate{M: m, C: c}, nil, func(now time.Time, a Action) {
		d := decisionLine{At: now.UnixNano()}
		switch a := a.(type) {
		case Hold:
			d.Kind, d.On, d.Tenure, d.Reason = "hold", a.On, a.Tenure, a.Reason
			if a.On {
				d.Until = a.Until.UnixNano()
			}
		case Observe:
			d.Kind, d.Node, d.Tenure = "observe", a.Node, a.Tenure
		}
		_ = enc.Encode(d)
	})
	fmt.Printf("{\"Kind\":\"stopped\",\"At\":%d,\"Dropped\":%d}\n", time.Now().UnixNano(), c.Stats.Dropped.Load())
	return 0
}

// cand is a candidate process.
type cand struct {
	name string
	host *lab.Host
	proc *lab.Proc
}

func startCand(t *testing.T, c *etcdlab.Cluster, h *lab.Host, advskew int, preempt bool) *cand {
	t.Helper()
	conf, _ := json.Marshal(candidateConf{Endpoints: c.Endpoints(), Node: h.Name, AdvSkew: advskew, Preempt: preempt})
	p, err := h.Start("cand-"+h.Name, "env", candidateEnv+"="+string(conf), os.Args[0], "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cd := &cand{name: h.Name, host: h, proc: p}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s output:\n%s", cd.name, p.Output())
		}
	})
	return cd
}

func (cd *cand) decisions() []decisionLine {
	var ds []decisionLine
	sc := bufio.NewScanner(strings.NewReader(cd.proc.Output()))
	for sc.Scan() {
		var d decisionLine
		if json.Unmarshal(sc.Bytes(), &d) == nil && d.Kind != "" {
			ds = append(ds, d)
		}
	}
	return ds
}

// holds returns the hold intervals [on, off) of the candidate's addresses
// (off 0: still held), by its own decisions.
func (cd *cand) holds() [][2]int64 {
	var iv [][2]int64
	for _, d := range cd.decisions() {
		if d.Kind != "hold" {
			continue
		}
		switch {
		case d.On && (len(iv) == 0 || iv[len(iv)-1][1] != 0):
			iv = append(iv, [2]int64{d.At, 0})
		case !d.On && len(iv) > 0 && iv[len(iv)-1][1] == 0:
			iv[len(iv)-1][1] = d.At
		}
	}
	return iv
}

func (cd *cand) holding() bool {
	iv := cd.holds()
	return len(iv) > 0 && iv[len(iv)-1][1] == 0
}

// lastUntil returns the Until (D) of the candidate's last hold-on decision.
func (cd *cand) lastUntil() int64 {
	var u int64
	for _, d := range cd.decisions() {
		if d.Kind == "hold" && d.On {
			u = d.Until
		}
	}
	return u
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	return time.Time{}
}

// noOverlap fails if any two candidates' hold intervals overlap.
func noOverlap(t *testing.T, cs ...*cand) {
	t.Helper()
	for i, a := range cs {
		for _, b := range cs[i+1:] {
			for _, x := range a.holds() {
				for _, y := range b.holds() {
					xe, ye := x[1], y[1]
					if xe == 0 {
						xe = 1 << 62
					}
					if ye == 0 {
						ye = 1 << 62
					}
					if x[0] < ye && y[0] < xe {
						t.Errorf("%s held %v and %s held %v: overlap", a.name, fmtIv(x), b.name, fmtIv(y))
					}
				}
			}
		}
	}
}

func fmtIv(x [2]int64) string {
	on := time.Unix(0, x[0]).Format("15:04:05.000")
	if x[1] == 0 {
		return "[" + on + ", now)"
	}
	return "[" + on + ", " + time.Unix(0, x[1]).Format("15:04:05.000") + ")"
}

// pair starts a cluster and two candidates, a better (advskew 0) and a
// worse (100), and waits for the better one to hold.
func pair(t *testing.T) (*etcdlab.Cluster, *cand, *cand) {
	labRoot(t)
	c := etcdlab.Start(t, etcdlab.Raft{})
	h1, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	worse := startCand(t, c, h1, 100, false)
	better := startCand(t, c, h2, 0, false)
	waitFor(t, 20*time.Second, "the better candidate to hold", better.holding)
	return c, better, worse
}

// labRoot skips in -short, and runs the test beside the other cluster
// tests (go test's -parallel, GOMAXPROCS by default): each has a cluster
// and namespaces of its own, and its bounds are seconds.
func labRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a real etcd cluster: not in -short")
	}
	t.Parallel()
}

// TestClusterBetterWins: two candidates started together; the one with
// the lower advskew holds, the other never does.
func TestClusterBetterWins(t *testing.T) {
	_, better, worse := pair(t)
	time.Sleep(2 * labTTL)
	if !better.holding() || len(worse.holds()) != 0 {
		t.Fatalf("better holds %v, worse holds %v", better.holds(), worse.holds())
	}
}

// TestClusterKillHolder: SIGKILL of the holder; the other acquires after
// the server expired the lease, never before the old holder's D.
func TestClusterKillHolder(t *testing.T) {
	_, better, worse := pair(t)
	time.Sleep(1500 * time.Millisecond)
	d := better.lastUntil()
	killed := time.Now()
	if err := better.proc.Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	got := waitFor(t, 3*labTTL, "the other candidate to hold", worse.holding)
	on := worse.holds()[0][0]
	t.Logf("killed at %s, old D %s, taken over %s (%.2fs after the kill)", clock(killed.UnixNano()), clock(d), clock(on), got.Sub(killed).Seconds())
	if on < d {
		t.Fatalf("took over at %s, before the old holder's D %s", clock(on), clock(d))
	}
	if got.Sub(killed) > labTTL+time.Second {
		t.Fatalf("took over %v after the kill: more than TTL + 1 s", got.Sub(killed))
	}
}

func clock(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }

// TestClusterCutHolder: the holder's ctl cable is cut: it releases at its D,
// before the other acquires (no overlap), and the other acquires.
func TestClusterCutHolder(t *testing.T) {
	_, better, worse := pair(t)
	time.Sleep(1500 * time.Millisecond)
	cut := time.Now()
	if err := etcdlab.Cut(better.host); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*labTTL, "the other candidate to hold", worse.holding)
	iv := better.holds()
	if better.holding() {
		t.Fatalf("the cut holder still holds: %v", iv)
	}
	off := iv[len(iv)-1][1]
	on := worse.holds()[0][0]
	t.Logf("cut %s, released %s (%.2fs), other acquired %s (%.2fs)", clock(cut.UnixNano()), clock(off),
		time.Duration(off-cut.UnixNano()).Seconds(), clock(on), time.Duration(on-cut.UnixNano()).Seconds())
	noOverlap(t, better, worse)
	if time.Duration(off-cut.UnixNano()) > labTTL-labMargin {
		t.Errorf("released %v after the cut: later than TTL - margin", time.Duration(off-cut.UnixNano()))
	}
	// Mended, it does not take the address back (no preempt).
	if err := etcdlab.Mend(better.host); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * labTTL)
	if better.holding() || !worse.holding() {
		t.Fatalf("after mending: better %v, worse %v", better.holds(), worse.holds())
	}
	noOverlap(t, better, worse)
}

// TestClusterEtcdLeaderKilled: killing the etcd leader moves nothing.
func TestClusterEtcdLeaderKilled(t *testing.T) {
	c, better, worse := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ld, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ld.Kill(); err != nil {
		t.Logf("kill %s: %v", ld.Name, err)
	}
	time.Sleep(2 * labTTL)
	if len(better.holds()) != 1 || !better.holding() || len(worse.holds()) != 0 {
		t.Fatalf("moved: better %v, worse %v", better.holds(), worse.holds())
	}
	if err := ld.Restart(); err != nil {
		t.Fatal(err)
	}
}

// TestClusterQuorumLost: two of three members stopped: the holder releases
// at D, nobody acquires; quorum back: someone acquires.
func TestClusterQuorumLost(t *testing.T) {
	c, better, worse := pair(t)
	time.Sleep(1500 * time.Millisecond)
	lost := time.Now()
	for _, m := range c.Members[:2] {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*labTTL, "the holder to release", func() bool { return !better.holding() })
	iv := better.holds()
	off := iv[len(iv)-1][1]
	t.Logf("quorum lost %s, released %s (%.2fs)", clock(lost.UnixNano()), clock(off), time.Duration(off-lost.UnixNano()).Seconds())
	time.Sleep(2 * labTTL)
	if better.holding() || worse.holding() {
		t.Fatalf("someone holds without quorum: better %v, worse %v", better.holds(), worse.holds())
	}
	back := time.Now()
	for _, m := range c.Members[:2] {
		if err := m.Cont(); err != nil {
			t.Fatal(err)
		}
	}
	got := waitFor(t, 4*labTTL, "someone to hold again", func() bool { return better.holding() || worse.holding() })
	t.Logf("quorum back, held again after %.2fs", got.Sub(back).Seconds())
	noOverlap(t, better, worse)
}

// TestClusterPlannedStop: SIGTERM of the holder: it releases, deletes the
// key, and the other acquires within one watch round trip.
func TestClusterPlannedStop(t *testing.T) {
	_, better, worse := pair(t)
	time.Sleep(1500 * time.Millisecond)
	if err := better.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, labTTL, "the other candidate to hold", worse.holding)
	iv := better.holds()
	off, on := iv[len(iv)-1][1], worse.holds()[0][0]
	gap := time.Duration(on - off)
	t.Logf("released %s, other acquired %s: gap %v", clock(off), clock(on), gap)
	noOverlap(t, better, worse)
	// One watch round trip, plus the worse candidate's rank step (the
	// stopped node's member key is revoked after the leader key).
	if gap > DefaultRankStep+500*time.Millisecond {
		t.Fatalf("gap %v: more than a rank step and a round trip", gap)
	}
}

// TestClusterGarbage: garbage in member keys and a garbage leader key:
// counted drops, no panic, no wrong move; once the garbage leader key is
// deleted the better candidate acquires.
func TestClusterGarbage(t *testing.T) {
	labRoot(t)
	c := etcdlab.Start(t, etcdlab.Raft{})
	hw, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client(hw)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for k, v := range map[string]string{
		"/carpd/1/leader":        "\x00\xff/garbage",
		"/carpd/1/members/evil":  `{"advskew":-7,"healthy":true}`,
		"/carpd/1/members/junk":  "{{{{",
		"/carpd/1/members/a b":   `{"advskew":0,"healthy":true}`,
		"/carpd/1/members/fine0": `{"advskew":0,"healthy":false}`,
	} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	h1, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	cd := startCand(t, c, h1, 100, false)
	time.Sleep(2 * labTTL)
	if len(cd.holds()) != 0 {
		t.Fatalf("held while a (garbage) leader key exists: %v", cd.holds())
	}
	if _, err := cli.Delete(ctx, "/carpd/1/leader"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, labTTL, "the candidate to hold", cd.holding)
	if err := cd.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the candidate to stop", func() bool { return strings.Contains(cd.proc.Output(), `"stopped"`) })
	if !strings.Contains(cd.proc.Output(), `"Dropped":4`) {
		t.Fatalf("want 4 drops counted (leader value, three members):\n%s", cd.proc.Output())
	}
}

// TestClusterStopHolder: SIGSTOP of the holder for 2 × TTL: the other
// acquires, not before the stopped holder's D (its addresses' kernel
// lifetime ends before it), and on SIGCONT the old holder's first decision
// is a release; it never holds again.
func TestClusterStopHolder(t *testing.T) {
	_, better, worse := pair(t)
	time.Sleep(1500 * time.Millisecond)
	if err := better.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer better.proc.Signal(syscall.SIGCONT)
	d := better.lastUntil()
	waitFor(t, 2*labTTL, "the other candidate to hold", worse.holding)
	on := worse.holds()[0][0]
	t.Logf("stopped holder's D %s, other acquired %s", clock(d), clock(on))
	if on < d {
		t.Fatalf("acquired at %s, before the stopped holder's D %s", clock(on), clock(d))
	}
	time.Sleep(labTTL)
	before := len(better.decisions())
	if err := better.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the old holder to release", func() bool { return !better.holding() })
	var after []decisionLine
	for _, dl := range better.decisions()[before:] {
		if dl.Kind == "hold" {
			after = append(after, dl)
		}
	}
	if len(after) == 0 || after[0].On {
		t.Fatalf("first decision after SIGCONT is not a release: %+v", after)
	}
	time.Sleep(labTTL)
	if better.holding() || !worse.holding() {
		t.Fatalf("after SIGCONT: better %v, worse %v", better.holds(), worse.holds())
	}
}
