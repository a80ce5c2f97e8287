package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/etcdlab"
	"github.com/carpd/carpd/internal/probe"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdTTL is the lease TTL of the etcd tests: 4 s in the test command,
// short to keep them short; CARPD_ETCD_TTL sets another (10s: the
// default, for the figures). At 4 s the defaults are renew 0.8 s,
// fence margin 1 s: D is 3 s after the last acknowledged renewal was sent,
// the addresses' lifetime 1 or 2 s.
var etcdTTL = 4 * time.Second

// At TTL 10 s (CARPD_ETCD_TTL=10s CARPD_ETCD_RUNS=20, machine loaded by
// other builds) the holder cut off from etcd overlapped its successor in
// 0 of 20 cuts; the successor held the VIP median 9.21 s after the cut
// (min 8.28, max 10.27; the target TTL + 1 s); the cut holder
// dropped it median 0.93 s before its D (min 0.59, max 1.04).

// etcdRuns is how many times the crash (SIGKILL), planned stop, etcd
// leader killed and idle CPU scenarios run: once in the test command,
// CARPD_ETCD_RUNS=10 for the figures (median, min, max; scripts/etcd-bench.sh).
func etcdRuns(t testing.TB) int { return max(envInt(t, "CARPD_ETCD_RUNS", 1), 1) }

// etcdCutRuns is how many times the cut scenario runs: CARPD_ETCD_CUT_RUNS
// (the 20), CARPD_ETCD_RUNS when unset.
func etcdCutRuns(t testing.TB) int { return max(envInt(t, "CARPD_ETCD_CUT_RUNS", etcdRuns(t)), 1) }

// etcdIdleWindow is how long each run of the Idle subtest measures the
// two carpds' CPU: CARPD_ETCD_IDLE_WINDOW; unset, the subtest is skipped
// (a CPU figure needs a quiet window longer than the test command gives).
func etcdIdleWindow(t testing.TB) time.Duration { return envDuration(t, "CARPD_ETCD_IDLE_WINDOW", 0) }

// etcdIdleCPU is the target for one idle vhid in etcd mode: under
// 0.1 % of a core, for the holder and the candidate alike.
const etcdIdleCPU = 0.1

// etcdCrashOutage is the target for a crashed holder at the TTL:
// TTL + 0.3 s of client outage. Measured at TTL 10 s (CARPD_ETCD_TTL=10s
// CARPD_ETCD_RUNS=10, machine loaded by other builds): client outage
// median 4.14 s (min 4.04, max 4.28): it runs from the end of the killed
// carpd's addresses' kernel lifetime (about 6 s after the kill; the host
// answers until then) to the successor's add, median 10.20 s after the
// kill (min 9.52, max 10.33: etcd revokes an expired lease a little after
// its TTL).
func etcdCrashOutage() time.Duration { return etcdTTL + 300*time.Millisecond }

// etcdPlannedLoss is the target for a planned stop: 300 ms of lost
// probes.
const etcdPlannedLoss = 300 * time.Millisecond

// vip51 is the address of vhid 101, which the Reloads subtest adds and
// removes.
var vip51 = netip.MustParseAddr("192.0.2.51")

// etcdYieldLoss is the most probes a yield may lose (a preempt, an
// unhealthy holder): break before make, the holder removes the address,
// deletes the leader key, the successor's watch sees it and it campaigns
// at once (rank 0) and adds the address. As a planned stop, the issue's
// 300 ms. Measured at TTL 4 s (3 runs of the subtests, machine loaded by
// other builds): 0 probes lost in every yield (preempt, check release,
// check demotion, each back, a reload removing the holder's vhid); the
// address timelines show 4 to 64 ms between the old holder's removal and
// the new holder's add.
const etcdYieldLoss = etcdPlannedLoss

// notifySlack is how late the watch may see a removal made at D: the
// release at D itself (the loop's deadline) is seen about 1 ms after it.
const notifySlack = 20 * time.Millisecond

// etcdLab is a real 3-member etcd cluster (etcdlab) and two carpd hosts,
// each on the cluster's segment (ctl) and on a data segment (br0, its
// interface "data") with a client that probes the VIP there.
type etcdLab struct {
	t      *testing.T
	c      *etcdlab.Cluster
	nodes  []*lab.Host
	client *lab.Host
	dir    string
	procs  map[*lab.Host]*lab.Proc
	watch  *vipWatch
	probes *prober
	// quiet starts carpd at its default log level rather than debug
	// (the fence deadlines are debug lines): the idle figures, as
	// shipped.
	quiet bool
}

func newEtcdLab(t *testing.T) *etcdLab {
	t.Helper()
	requireRoot(t)
	// The cluster's raft runs at etcd's default timing scaled to the TTL
	// (etcdlab.RaftFor): an etcd leader change then takes the share of the
	// lease it takes at carpd's default 10 s TTL with etcd's defaults. At
	// a 4 s TTL with etcd's 1 s election timeout, the holder's addresses
	// (kernel lifetime ending 1 to 2 s after the last acknowledged
	// renewal, before D) can expire during the election.
	e := &etcdLab{t: t, c: etcdlab.Start(t, etcdlab.RaftFor(etcdTTL)), dir: t.TempDir(), procs: map[*lab.Host]*lab.Proc{}}
	for i := 1; i <= 2; i++ {
		h, err := e.c.AddNode()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Attach(lab.Bridge, "data", netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", 20+i))); err != nil {
			t.Fatal(err)
		}
		e.nodes = append(e.nodes, h)
		e.writeCfg(h, "", etcdVHID(100, vip, e.skew(h), ""))
	}
	client, err := e.c.Lab.AddHost("client", clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	t.Cleanup(func() {
		if t.Failed() {
			for h, p := range e.procs {
				t.Logf("carpd on %s:\n%s", h.Name, p.Output())
			}
		}
	})
	e.watch = watchVIP(t, append(slices.Clone(e.nodes), client)...)
	return e
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func (e *etcdLab) cfgPath(h *lab.Host) string { return filepath.Join(e.dir, h.Name+".toml") }

// skew is node h's configured advskew: 0 for the first, 100 for the second.
func (e *etcdLab) skew(h *lab.Host) int { return slices.Index(e.nodes, h) * 100 }

// other is the node that is not h.
func (e *etcdLab) other(h *lab.Host) *lab.Host {
	if h == e.nodes[0] {
		return e.nodes[1]
	}
	return e.nodes[0]
}

// writeCfg writes node h's configuration: the [etcd] table, the global
// keys, then the tables (vhids, checks).
func (e *etcdLab) writeCfg(h *lab.Host, global string, tables ...string) {
	e.t.Helper()
	cfg := fmt.Sprintf(`%s
[etcd]
endpoints = [%s]
node = %q
ttl = %q
%s`, global, quoted(e.c.Endpoints()), h.Name, etcdTTL.String(), strings.Join(tables, ""))
	if err := os.WriteFile(e.cfgPath(h), []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// etcdVHID is an etcd vhid's table on the data interface.
func etcdVHID(n int, a netip.Addr, advskew int, keys string) string {
	return fmt.Sprintf(`
[[vhid]]
interface = "data"
vhid = %d
addresses = ["%s/32"]
electorate = "etcd"
advskew = %d
%s`, n, a, advskew, keys)
}

// reload reloads h's carpd and returns carpctl's output; it fails the
// test if the reload does not succeed with want in its output.
func (e *etcdLab) reload(t testing.TB, h *lab.Host, want string) string {
	t.Helper()
	out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, h.Name+".sock"), "reload")
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("reload on %s: exit %d, want %q: %s%s", h.Name, code, want, out, errOut)
	}
	return out
}

// status is carpctl status on h.
func (e *etcdLab) status(t testing.TB, h *lab.Host) string {
	t.Helper()
	out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, h.Name+".sock"), "status")
	if code != 0 {
		t.Fatalf("carpctl status on %s: exit %d: %s", h.Name, code, errOut)
	}
	return out
}

// statusOrWhy is carpctl status on h, or carpctl's error (a carpd just
// started has no control socket yet).
func (e *etcdLab) statusOrWhy(t testing.TB, h *lab.Host) string {
	t.Helper()
	out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, h.Name+".sock"), "status")
	if code != 0 {
		return fmt.Sprintf("carpctl status: exit %d: %s", code, errOut)
	}
	return out
}

// candidate waits until h's carpd has a lease and has read the leader key
// held by leader, for vhid 100: it is a live candidate.
func (e *etcdLab) candidate(t testing.TB, h, leader *lab.Host, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := e.statusOrWhy(t, h)
		if strings.Contains(out, "etcd: BACKUP vhid 100") && strings.Contains(out, "leader "+leader.Name+" tenure ") && strings.Contains(out, " lease ") {
			// Its member key follows the grant; its first campaign
			// waits one renewal period (Listen).
			time.Sleep(etcdTTL / 5)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is no live candidate after %v:\n%s", h.Name, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start starts carpd on h.
func (e *etcdLab) start(h *lab.Host) *lab.Proc {
	e.t.Helper()
	args := []string{"--config", e.cfgPath(h), "--log-level", "debug",
		"--control", filepath.Join(e.dir, h.Name+".sock"), "--state-file", filepath.Join(e.dir, h.Name+".state")}
	if e.quiet {
		args = slices.Delete(args, 2, 4)
	}
	p, err := h.Start("carpd", append([]string{carpdBin}, args...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.procs[h] = p
	return p
}

// restartAll restarts both carpds, the candidate first, at the default log
// level (quiet) or at debug, and waits for a holder and a live candidate.
func (e *etcdLab) restartAll(t *testing.T, quiet bool) {
	t.Helper()
	e.quiet = quiet
	old := e.holder(20 * time.Second)
	for _, h := range []*lab.Host{e.other(old), old} {
		if err := e.procs[h].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := e.procs[h].Wait(); err != nil {
			t.Errorf("carpd on %s after SIGTERM: %v", h.Name, err)
		}
		e.start(h)
		next := e.holder(etcdTTL + 5*time.Second)
		e.candidate(t, e.other(next), next, 3*etcdTTL)
	}
}

// holder waits until one node alone, not one of not, holds the VIP and
// the client reaches it, and returns that node.
func (e *etcdLab) holder(timeout time.Duration, not ...*lab.Host) *lab.Host {
	e.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if hs := e.watch.holders(); len(hs) == 1 {
			for _, h := range e.nodes {
				if h.Name == hs[0] && !slices.Contains(not, h) && e.probes.answeredSince(time.Now().Add(-50*time.Millisecond)) {
					return h
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	var names []string
	for _, h := range not {
		names = append(names, h.Name)
	}
	e.t.Fatalf("no sole holder of the VIP but %v in %v (holders %v)", names, timeout, e.watch.holders())
	return nil
}

// outage is the client's longest outage among the probes sent since from.
func (e *etcdLab) outage(from time.Time) probe.Stats {
	var res []probe.Result
	for _, r := range e.probes.results() {
		if !r.Sent.Before(from) {
			res = append(res, r)
		}
	}
	return probe.Summarize(res)
}

// firstAdd is how long after from h first held the VIP.
func (e *etcdLab) firstAdd(h *lab.Host, from time.Time) (time.Duration, bool) {
	return e.watch.heldSince(h.Name, from)
}

// TestEtcdElectorate runs carpd's etcd electorate with the l2 mover end
// to end: two carpd hosts beside a real 3-member etcd cluster, a client
// probing the VIP every 10 ms on the data segment, judged by the address
// timelines (one netlink socket on every namespace) and the probes. The
// scenarios run in order on one lab; each starts from one sole holder.
func TestEtcdElectorate(t *testing.T) {
	etcdTTL = envDuration(t, "CARPD_ETCD_TTL", etcdTTL)
	runs := etcdRuns(t)
	e := newEtcdLab(t)
	for _, h := range e.nodes {
		e.start(h)
	}
	e.probes = startPing(t, e.client, vip, 10*time.Millisecond)

	t.Run("Status", func(t *testing.T) {
		old := e.holder(20 * time.Second)
		for _, h := range e.nodes {
			out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, h.Name+".sock"), "status")
			state := "BACKUP"
			if h == old {
				state = "MASTER"
			}
			for _, want := range []string{"data: etcd: " + state + " vhid 100", "node " + h.Name + " leader " + old.Name + " tenure ", "watch restarts"} {
				if !strings.Contains(out, want) {
					t.Errorf("carpctl status on %s (exit %d, %s): no %q in\n%s", h.Name, code, errOut, want, out)
				}
			}
			if h == old && !strings.Contains(out, "fence deadline in ") {
				t.Errorf("the holder's status shows no time to D:\n%s", out)
			}
			// No CARP or VRRP socket (protocol 112, 0x70) in the namespace.
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/raw", e.procs[h].PID()))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), ":0070 ") {
				t.Errorf("a protocol-112 socket on %s:\n%s", h.Name, raw)
			}
		}
	})

	t.Run("Reloads", func(t *testing.T) {
		old := e.holder(20 * time.Second)
		at := time.Now()
		for i := 0; i < 100; i++ {
			for _, h := range e.nodes {
				out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, h.Name+".sock"), "reload")
				if code != 0 || !strings.Contains(out, "0 added, 0 removed, 0 changed, 1 unchanged") {
					t.Fatalf("reload %d on %s: exit %d: %s%s", i, h.Name, code, out, errOut)
				}
			}
		}
		took := time.Since(at)
		time.Sleep(500 * time.Millisecond)
		st := e.outage(at)
		t.Logf("figure: 100 reloads of both hosts in %v: %d moves, %d probes lost", took.Round(time.Millisecond), e.watch.changes(at), st.Lost)
		if got := e.watch.changes(at); got != 0 {
			t.Errorf("%d changes of the VIP during the reloads, want none", got)
		}
		if hs := e.watch.holders(); len(hs) != 1 || hs[0] != old.Name {
			t.Errorf("holders %v after the reloads, want %s alone", hs, old.Name)
		}
		if st.Lost != 0 {
			t.Errorf("%d probes lost during the reloads", st.Lost)
		}

		// A reload that changes the [etcd] table is refused (the table
		// takes effect at a restart) and changes nothing.
		at = time.Now()
		cfg, err := os.ReadFile(e.cfgPath(old))
		if err != nil {
			t.Fatal(err)
		}
		ttlLine := fmt.Sprintf("ttl = %q", etcdTTL.String())
		changed := strings.Replace(string(cfg), ttlLine, fmt.Sprintf("ttl = %q", (2*etcdTTL).String()), 1)
		if changed == string(cfg) {
			t.Fatalf("no %s in %s", ttlLine, cfg)
		}
		if err := os.WriteFile(e.cfgPath(old), []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCarpctl(t, nil, "--control", filepath.Join(e.dir, old.Name+".sock"), "reload")
		if code == 0 || !strings.Contains(out+errOut, "the [etcd] table changed: carpd takes it when it restarts (reload refused)") {
			t.Errorf("reload of a changed [etcd] table on %s: exit %d: %s%s", old.Name, code, out, errOut)
		}
		if err := os.WriteFile(e.cfgPath(old), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		e.reload(t, old, "0 added, 0 removed, 0 changed, 1 unchanged")
		if got := e.watch.changes(at); got != 0 {
			t.Errorf("%d changes of the VIP after a refused reload, want none", got)
		}

		// A reload removes the holder's vhid 100 (it yields: release,
		// then the guarded delete) and adds vhid 101, without a restart;
		// the other node takes 100 over.
		o := e.other(old)
		e.candidate(t, o, old, 3*etcdTTL)
		at = time.Now()
		e.writeCfg(old, "", etcdVHID(101, vip51, e.skew(old), ""))
		e.reload(t, old, "1 added, 1 removed, 0 changed, 0 unchanged")
		if next := e.holder(etcdTTL+5*time.Second, old); next != o {
			t.Fatalf("%s holds the VIP, want %s", next.Name, o.Name)
		}
		time.Sleep(200 * time.Millisecond)
		st = e.outage(at)
		added, _ := e.firstAdd(o, at)
		t.Logf("figure: vhid 100 removed from its holder by a reload: %d probes lost (target %v), %s added the VIP %v after the reload",
			st.Lost, etcdYieldLoss, o.Name, added)
		if time.Duration(st.Lost)*10*time.Millisecond > etcdYieldLoss {
			t.Errorf("%d probes lost, want at most %v", st.Lost, etcdYieldLoss)
		}
		e.watch.checkOverlapsZero(t, at)
		e.waitStatus(t, old, "etcd: MASTER vhid 101", etcdTTL+5*time.Second)

		// Back: 100 comes back as a candidate (no preempt: no move), 101
		// goes.
		at = time.Now()
		e.writeCfg(old, "", etcdVHID(100, vip, e.skew(old), ""))
		e.reload(t, old, "1 added, 1 removed, 0 changed, 0 unchanged")
		e.candidate(t, old, o, 3*etcdTTL)
		if out := e.status(t, old); strings.Contains(out, "vhid 101") {
			t.Errorf("vhid 101 still in %s's status after the reload removed it:\n%s", old.Name, out)
		}
		if got := e.watch.changes(at); got != 0 {
			t.Errorf("%d changes of the VIP when vhid 100 came back on %s (no preempt), want none", got, old.Name)
		}
		if st := e.outage(at); st.Lost != 0 {
			t.Errorf("%d probes lost when vhid 100 came back on %s", st.Lost, old.Name)
		}
	})

	t.Run("Idle", func(t *testing.T) {
		window := etcdIdleWindow(t)
		if window == 0 {
			t.Skip("CARPD_ETCD_IDLE_WINDOW unset")
		}
		// At the default log level, as shipped: both restarted, the
		// candidate first; back at debug afterwards.
		e.restartAll(t, true)
		defer e.restartAll(t, false)
		old := e.holder(20 * time.Second)
		e.candidate(t, e.other(old), old, 3*etcdTTL)
		cpu := map[*lab.Host][]float64{}
		for run := 0; run < runs; run++ {
			at := time.Now()
			used := e.idleCPU(t, window)
			for _, h := range e.nodes {
				pct := 100 * used[h].Seconds() / window.Seconds()
				cpu[h] = append(cpu[h], pct)
				t.Logf("figure: idle etcd vhid, %s (%s): %.4f %% of a core over %v", h.Name, e.role(h, old), pct, window)
				if pct >= etcdIdleCPU {
					t.Errorf("%s (%s) used %.4f %% of a core idle, want under %v %%", h.Name, e.role(h, old), pct, etcdIdleCPU)
				}
			}
			if got := e.watch.changes(at); got != 0 {
				t.Errorf("%d changes of the VIP while idle, want none", got)
			}
		}
		for _, h := range e.nodes {
			t.Logf("figure: one idle etcd vhid at TTL %v, %s (%s): CPU in %% of a core %s (target under %v %%)",
				etcdTTL, h.Name, e.role(h, old), pcts(cpu[h]), etcdIdleCPU)
		}
	})

	t.Run("SIGKILL", func(t *testing.T) {
		e.crashes(t, runs, "SIGKILL of the holder", func(old *lab.Host) {
			if err := e.procs[old].Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = e.procs[old].Wait()
		}, func(old, _ *lab.Host) { e.start(old) })
	})

	t.Run("LinkCut", func(t *testing.T) {
		// The holder's data cable cut (its vhid's interface loses its
		// carrier), its ctl cable still in: unhealthy, it yields to the
		// candidate at once, break before make.
		old := e.holder(20 * time.Second)
		e.candidate(t, e.other(old), old, 3*etcdTTL)
		at := time.Now()
		if err := old.PortDownOn("data"); err != nil {
			t.Fatal(err)
		}
		next := e.holder(etcdTTL+5*time.Second, old)
		e.judgeYield(t, "the holder's data link cut", old, next, at)
		e.mendNoMove(t, old, next, func() error { return old.PortUpOn("data") })

		// Both cables cut, the process alive (a host whose network is
		// gone): the candidate acquires once the server has expired the
		// lease, as after a crash; the cut holder released at its
		// interface's loss.
		e.crashes(t, runs, "both links of the holder cut", func(old *lab.Host) {
			if err := errors.Join(etcdlab.Cut(old), old.PortDownOn("data")); err != nil {
				t.Fatal(err)
			}
		}, func(old, next *lab.Host) {
			e.mendNoMove(t, old, next, func() error { return errors.Join(etcdlab.Mend(old), old.PortUpOn("data")) })
		})
	})

	t.Run("PlannedStop", func(t *testing.T) {
		var losses, adds []time.Duration
		for run := 0; run < runs; run++ {
			old := e.holder(20 * time.Second)
			e.candidate(t, e.other(old), old, 3*etcdTTL) // the restarted carpd is a candidate
			at := time.Now()
			if err := e.procs[old].Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			next := e.holder(etcdTTL+5*time.Second, old)
			if err := e.procs[old].Wait(); err != nil {
				t.Errorf("carpd on %s after SIGTERM: %v", old.Name, err)
			}
			time.Sleep(200 * time.Millisecond)
			st := e.outage(at)
			took, _ := e.firstAdd(next, at)
			t.Logf("figure: planned stop: client outage %v, %d probes lost (target %v), %s added the VIP %v after SIGTERM",
				st.Outage, st.Lost, etcdPlannedLoss, next.Name, took)
			if time.Duration(st.Lost)*10*time.Millisecond > etcdPlannedLoss {
				t.Errorf("%d probes lost (%v), want at most %v", st.Lost, time.Duration(st.Lost)*10*time.Millisecond, etcdPlannedLoss)
			}
			e.watch.checkOverlapsZero(t, at)
			losses, adds = append(losses, time.Duration(st.Lost)*10*time.Millisecond), append(adds, took)
			e.start(old)
		}
		t.Logf("figure: planned stop at TTL %v: lost probes (10 ms each) %s (target at most %v); VIP added after SIGTERM %s",
			etcdTTL, figures(losses), etcdPlannedLoss, figures(adds))
	})

	t.Run("SIGSTOP", func(t *testing.T) {
		old := e.holder(20 * time.Second)
		time.Sleep(2 * time.Second)
		at := time.Now()
		if err := e.procs[old].Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		next := e.holder(etcdTTL+5*time.Second, old)
		time.Sleep(etcdTTL)
		if err := e.procs[old].Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		cont := time.Now()
		time.Sleep(3 * time.Second)
		e.watch.checkOverlapsZero(t, at)
		if d, ok := e.firstAdd(old, cont); ok {
			t.Errorf("%s added the VIP again %v after SIGCONT", old.Name, d)
		}
		gone := e.watch.lastRemoved(old.Name, at)
		took, _ := e.firstAdd(next, at)
		st := e.outage(at)
		d := e.fenceDeadline(old, stopped)
		t.Logf("figure: SIGSTOP of the holder: its VIP gone (kernel lifetime) %v after the stop, %v before its D; %s added it %v after the stop; client outage %v",
			gone.Sub(at), d.Sub(gone), next.Name, took, st.Outage)
		if gone.IsZero() || gone.Sub(at) > took {
			t.Errorf("the stopped holder's VIP went at %v, the successor added it at %v", gone.Sub(at), took)
		}
		if gone.IsZero() || gone.After(d.Add(notifySlack)) {
			t.Errorf("the stopped holder's VIP went %v after the stop, its fence deadline D was %v after: the kernel lifetime must end before D", gone.Sub(at), d.Sub(at))
		}
	})

	t.Run("CutFromEtcd", func(t *testing.T) {
		var adds, margins []time.Duration
		start := time.Now()
		for run := 0; run < etcdCutRuns(t); run++ {
			took, margin := e.cutOnce(t)
			adds, margins = append(adds, took), append(margins, margin)
		}
		t.Logf("figure: holder cut off from etcd at TTL %v: %d overlaps in %d cuts (target 0); new holder after the cut %s (target: within %v); old holder's VIP gone before its D by %s",
			etcdTTL, len(e.watch.overlaps(start)), len(adds), figures(adds), etcdTTL+time.Second, figures(margins))
	})

	t.Run("EtcdLeaderKilled", func(t *testing.T) {
		var moves []int
		var outages []time.Duration
		for run := 0; run < runs; run++ {
			old := e.holder(20 * time.Second)
			time.Sleep(2 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := e.c.Leader(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			if err := m.Kill(); err != nil {
				t.Logf("kill %s: %v", m.Name, err)
			}
			time.Sleep(2 * etcdTTL)
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			if hs := e.watch.holders(); len(hs) != 1 || hs[0] != old.Name {
				t.Errorf("holders %v after the etcd leader was killed, want %s alone", hs, old.Name)
			}
			if got := e.watch.changes(at); got != 0 {
				t.Errorf("%d changes of the VIP after the etcd leader was killed, want none", got)
			}
			st := e.outage(at)
			t.Logf("figure: etcd leader %s killed: %d moves, client outage %v", m.Name, e.watch.changes(at), st.Outage)
			moves, outages = append(moves, e.watch.changes(at)), append(outages, st.Outage)
		}
		t.Logf("figure: etcd leader killed at TTL %v: moves %s (target 0); client outage %s", etcdTTL, counts(moves), figures(outages))
	})

	t.Run("QuorumLost", func(t *testing.T) {
		old := e.holder(30 * time.Second)
		at := time.Now()
		lost := e.c.Members[:2]
		for _, m := range lost {
			if err := m.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(etcdTTL + time.Second)
		if hs := e.watch.holders(); len(hs) != 0 {
			t.Errorf("holders %v %v after quorum was lost, want none (released at D)", hs, time.Since(at))
		}
		gone := e.watch.lastRemoved(old.Name, at)
		back := time.Now()
		for _, m := range lost {
			if err := m.Cont(); err != nil {
				t.Fatal(err)
			}
		}
		next := e.holder(3 * etcdTTL)
		took, _ := e.firstAdd(next, back)
		t.Logf("figure: quorum lost: %s released the VIP %v after, %s held it %v after quorum came back",
			old.Name, gone.Sub(at), next.Name, took)
		e.watch.checkOverlapsZero(t, at)
	})

	t.Run("Preempt", func(t *testing.T) {
		old := e.holder(3 * etcdTTL)
		o := e.other(old)
		e.candidate(t, o, old, 30*time.Second+3*etcdTTL)
		// Preempt off: the holder, made worse than the other by a
		// reload (its ranking changes in place), keeps the VIP.
		at := time.Now()
		e.writeCfg(old, "", etcdVHID(100, vip, 200, ""))
		e.reload(t, old, "0 added, 0 removed, 1 changed, 0 unchanged")
		time.Sleep(etcdTTL / 2)
		if got := e.watch.changes(at); got != 0 {
			t.Fatalf("%d changes of the VIP without preempt, want none", got)
		}
		// Preempt on, on both: the better candidate takes over, break
		// before make.
		e.writeCfg(o, "preempt = true\n", etcdVHID(100, vip, e.skew(o), ""))
		e.reload(t, o, "0 added, 0 removed, 1 changed, 0 unchanged")
		at = time.Now()
		e.writeCfg(old, "preempt = true\n", etcdVHID(100, vip, 200, ""))
		e.reload(t, old, "0 added, 0 removed, 1 changed, 0 unchanged")
		if next := e.holder(etcdTTL+5*time.Second, old); next != o {
			t.Fatalf("%s holds the VIP, want %s", next.Name, o.Name)
		}
		time.Sleep(200 * time.Millisecond)
		e.judgeYield(t, "preempt", old, o, at)
		if !strings.Contains(e.procs[old].Output(), "a better member preempts") {
			t.Errorf("no preempt in %s's log", old.Name)
		}
		// Back to the configured ranking, preempt off (the holder
		// first): no move.
		at = time.Now()
		e.writeCfg(o, "", etcdVHID(100, vip, e.skew(o), ""))
		e.reload(t, o, "0 added, 0 removed, 1 changed, 0 unchanged")
		e.writeCfg(old, "", etcdVHID(100, vip, e.skew(old), ""))
		e.reload(t, old, "0 added, 0 removed, 1 changed, 0 unchanged")
		time.Sleep(etcdTTL / 2)
		if got := e.watch.changes(at); got != 0 {
			t.Errorf("%d changes of the VIP after preempt went off, want none", got)
		}
	})

	t.Run("CheckFails", func(t *testing.T) {
		// Two file checks of vhid 100 on each node: "rel" releases (the
		// member key says unhealthy: the holder yields at once, here
		// with preempt off on it), "dem" demotes by 240 (the holder
		// ranks after the other: it yields, with preempt on). Each comes
		// back, and the VIP with it: the other node has preempt on.
		best, o := e.nodes[0], e.nodes[1]
		checks := func(h *lab.Host) string {
			return fmt.Sprintf(`
[[check]]
name = "rel"
file = %q
interval = "100ms"
action = "release"
vhids = [100]

[[check]]
name = "dem"
file = %q
interval = "100ms"
weight = 240
vhids = [100]
`, e.checkFile(h, "rel"), e.checkFile(h, "dem"))
		}
		for _, h := range []*lab.Host{o, best} {
			e.setCheck(t, h, "rel", "0")
			e.setCheck(t, h, "dem", "0")
		}
		e.writeCfg(o, "preempt = true\n", etcdVHID(100, vip, e.skew(o), ""), checks(o))
		e.reload(t, o, "0 added, 0 removed, 1 changed, 0 unchanged")
		e.writeCfg(best, "", etcdVHID(100, vip, e.skew(best), ""), checks(best))
		e.reload(t, best, "0 added, 0 removed, 0 changed, 1 unchanged")
		e.waitHolder(t, best, 3*etcdTTL)
		cli, err := e.c.Client(o)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		for _, c := range []struct{ name, preempt, member string }{
			{"rel", "", `"healthy":false`},
			{"dem", "preempt = true\n", `"demotion":240`},
		} {
			if c.preempt != "" {
				e.writeCfg(best, c.preempt, etcdVHID(100, vip, e.skew(best), ""), checks(best))
				e.reload(t, best, "0 added, 0 removed, 1 changed, 0 unchanged")
			}
			e.candidate(t, o, best, 3*etcdTTL)
			at := time.Now()
			e.setCheck(t, best, c.name, "1")
			if next := e.holder(etcdTTL+5*time.Second, best); next != o {
				t.Fatalf("%s holds the VIP, want %s", next.Name, o.Name)
			}
			time.Sleep(200 * time.Millisecond)
			e.judgeYield(t, "check "+c.name+" failing", best, o, at)
			if m := e.member(t, cli, best); !strings.Contains(m, c.member) {
				t.Errorf("%s's member key %s while check %s fails, want %s", best.Name, m, c.name, c.member)
			}
			e.candidate(t, best, o, 3*etcdTTL)
			at = time.Now()
			e.setCheck(t, best, c.name, "0")
			if next := e.holder(etcdTTL+5*time.Second, o); next != best {
				t.Fatalf("%s holds the VIP, want %s", next.Name, best.Name)
			}
			time.Sleep(200 * time.Millisecond)
			e.judgeYield(t, "check "+c.name+" up again (preempt)", o, best, at)
		}
		for _, h := range []*lab.Host{o, best} {
			e.writeCfg(h, "", etcdVHID(100, vip, e.skew(h), ""))
			e.reload(t, h, "0 added, 0 removed, 1 changed, 0 unchanged")
		}
	})
}

// judgeYield judges a move from old to next that started at at (a
// yield: break before make): no overlap, at most etcdYieldLoss of lost
// probes.
func (e *etcdLab) judgeYield(t *testing.T, what string, old, next *lab.Host, at time.Time) {
	t.Helper()
	st := e.outage(at)
	gone := e.watch.lastRemoved(old.Name, at)
	took, _ := e.firstAdd(next, at)
	t.Logf("figure: %s: %s dropped the VIP %v after, %s added it %v after; %d probes lost (target %v), client outage %v",
		what, old.Name, gone.Sub(at), next.Name, took, st.Lost, etcdYieldLoss, st.Outage)
	if time.Duration(st.Lost)*10*time.Millisecond > etcdYieldLoss {
		t.Errorf("%s: %d probes lost, want at most %v", what, st.Lost, etcdYieldLoss)
	}
	e.watch.checkOverlapsZero(t, at)
}

// crashes runs a crash of the holder runs times: crash stops it (a SIGKILL,
// its cables cut) with the candidate live, the candidate must hold the VIP
// within the crash target (etcdCrashOutage of client outage) and never
// beside it; restore brings the old holder back as a candidate.
func (e *etcdLab) crashes(t *testing.T, runs int, what string, crash func(old *lab.Host), restore func(old, next *lab.Host)) {
	t.Helper()
	var outages, adds []time.Duration
	for run := 0; run < runs; run++ {
		old := e.holder(20 * time.Second)
		e.candidate(t, e.other(old), old, 3*etcdTTL)
		at := time.Now()
		crash(old)
		next := e.holder(etcdTTL+5*time.Second, old)
		took, _ := e.firstAdd(next, at)
		st := e.outage(at)
		t.Logf("figure: %s: client outage %v (target %v), %s added the VIP %v after, %d probes lost",
			what, st.Outage, etcdCrashOutage(), next.Name, took, st.Lost)
		if st.Outage > etcdCrashOutage() {
			t.Errorf("%s: outage %v, want at most %v", what, st.Outage, etcdCrashOutage())
		}
		e.watch.checkOverlapsZero(t, at)
		outages, adds = append(outages, st.Outage), append(adds, took)
		restore(old, next)
	}
	t.Logf("figure: %s at TTL %v: client outage %s (target %v); VIP added after %s",
		what, etcdTTL, figures(outages), etcdCrashOutage(), figures(adds))
}

// mendNoMove mends old's cables (mend) and fails the test if the VIP moves
// away from next while old comes back as a candidate (preempt is off).
func (e *etcdLab) mendNoMove(t *testing.T, old, next *lab.Host, mend func() error) {
	t.Helper()
	mended := time.Now()
	if err := mend(); err != nil {
		t.Fatal(err)
	}
	e.candidate(t, old, next, 3*etcdTTL)
	time.Sleep(time.Second)
	if n := e.watch.changes(mended); n != 0 {
		t.Errorf("%d changes of the VIP after %s's cables were mended, want none (%s holds it, preempt off)", n, old.Name, next.Name)
	}
	e.waitHolder(t, next, time.Second)
}

// waitHolder waits until h alone holds the VIP.
func (e *etcdLab) waitHolder(t *testing.T, h *lab.Host, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if hs := e.watch.holders(); len(hs) == 1 && hs[0] == h.Name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("holders %v after %v, want %s", e.watch.holders(), timeout, h.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFile is the file of node h's file check name.
func (e *etcdLab) checkFile(h *lab.Host, name string) string {
	return filepath.Join(e.dir, h.Name+"."+name)
}

// setCheck writes v in node h's file check name.
func (e *etcdLab) setCheck(t *testing.T, h *lab.Host, name, v string) {
	t.Helper()
	if err := os.WriteFile(e.checkFile(h, name), []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// member is node h's member key of vhid 100, read from the cluster.
func (e *etcdLab) member(t *testing.T, cli *clientv3.Client, h *lab.Host) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, "/carpd/100/members/"+h.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 1 {
		return "(none)"
	}
	return string(r.Kvs[0].Value)
}

// cutOnce cuts the holder off from etcd (its L2 link stays up) and mends
// it once the other node holds: the cut holder must drop the VIP by its
// D, before anyone else adds it. It returns when the new holder added the
// VIP after the cut and how long before D the old one dropped it.
func (e *etcdLab) cutOnce(t *testing.T) (took, margin time.Duration) {
	t.Helper()
	old := e.holder(20 * time.Second)
	e.candidate(t, e.other(old), old, 30*time.Second+3*etcdTTL)
	at := time.Now()
	if err := etcdlab.Cut(old); err != nil {
		t.Fatal(err)
	}
	cut := time.Now() // the port is down: no renewal sent later is acknowledged
	defer func() {
		if err := etcdlab.Mend(old); err != nil {
			t.Fatal(err)
		}
	}()
	next := e.holder(etcdTTL+5*time.Second, old)
	took, _ = e.firstAdd(next, at)
	gone := e.watch.lastRemoved(old.Name, at)
	d := e.fenceDeadline(old, cut)
	t.Logf("figure: holder cut off from etcd: it dropped the VIP %v after the cut (%v before its D), %s added it %v after (target: within %v)",
		gone.Sub(at), d.Sub(gone), next.Name, took, etcdTTL+time.Second)
	if gone.IsZero() || gone.After(d.Add(notifySlack)) {
		t.Errorf("the cut holder's VIP went %v after the cut, its fence deadline D was %v after", gone.Sub(at), d.Sub(at))
	}
	e.watch.checkOverlapsZero(t, at)
	if took > etcdTTL+time.Second {
		t.Errorf("new holder %v after the cut, want within %v", took, etcdTTL+time.Second)
	}
	return took, d.Sub(gone)
}

// waitStatus waits until carpctl status on h shows want.
func (e *etcdLab) waitStatus(t testing.TB, h *lab.Host, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := e.statusOrWhy(t, h)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %s's status after %v:\n%s", want, h.Name, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fenceDeadline is the fence deadline D of h's carpd cut off (or stopped)
// at: the latest its debug lines ("holding the addresses until the fence
// deadline") give for a renewal sent before at. D is t_s + TTL - fence
// margin (the defaults: max(TTL/5, 1 s)), t_s the renewal's send time; a
// renewal sent just before the cut may be acknowledged, and logged, just
// after it, and that renewal's D is the one that counts.
func (e *etcdLab) fenceDeadline(h *lab.Host, at time.Time) time.Time {
	e.t.Helper()
	held := etcdTTL - max(etcdTTL/5, time.Second)
	var d time.Time
	for _, l := range strings.Split(e.procs[h].Output(), "\n") {
		if !strings.Contains(l, "until the fence deadline") {
			continue
		}
		u, err := time.Parse(time.RFC3339Nano, field(l, "until"))
		if err == nil && u.Add(-held).Before(at) && u.After(d) {
			d = u
		}
	}
	if d.IsZero() {
		e.t.Fatalf("no fence deadline in %s's log for a renewal sent before %v", h.Name, at)
	}
	return d
}

// field is the value of key in a logfmt line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if strings.HasPrefix(line, key+"=") {
		i = -1
	} else if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return strings.Trim(v, `"`)
}

// checkOverlapsZero fails the test if two hosts held the VIP at once, for
// however short a time, since from: an etcd holder releases before its
// successor can acquire.
func (w *vipWatch) checkOverlapsZero(t testing.TB, from time.Time) {
	t.Helper()
	for _, s := range w.overlaps(from) {
		t.Errorf("two holders of the VIP for %v (from %s), want none", s.len(), s.from.Format("15:04:05.000"))
	}
}

// lastRemoved is when host last stopped holding the VIP after from (zero:
// not seen).
func (w *vipWatch) lastRemoved(host string, from time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var at time.Time
	for _, e := range w.evs {
		if e.host == host && e.n == 0 && e.at.After(from) {
			at = e.at
		}
	}
	return at
}

// changes counts the VIP's comings and goings after from.
func (w *vipWatch) changes(from time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.evs {
		if e.at.After(from) {
			n++
		}
	}
	return n
}

// idleCPU is the CPU time each node's carpd used over window (the summed
// run time of its threads, threadCPU).
func (e *etcdLab) idleCPU(t *testing.T, window time.Duration) map[*lab.Host]time.Duration {
	t.Helper()
	before := map[*lab.Host]time.Duration{}
	threads := map[*lab.Host][]int{}
	for _, h := range e.nodes {
		d, tids, err := threadCPU(e.procs[h].PID())
		if err != nil {
			t.Fatal(err)
		}
		before[h], threads[h] = d, tids
	}
	time.Sleep(window)
	used := map[*lab.Host]time.Duration{}
	for _, h := range e.nodes {
		d, tids, err := threadCPU(e.procs[h].PID())
		if err != nil {
			t.Fatal(err)
		}
		for _, tid := range threads[h] {
			if !slices.Contains(tids, tid) {
				t.Fatalf("thread %d of carpd on %s exited during the window: its CPU time is not counted", tid, h.Name)
			}
		}
		used[h] = d - before[h]
	}
	return used
}

// role is "holder" for the holder, "candidate" for the other node.
func (e *etcdLab) role(h, holder *lab.Host) string {
	if h == holder {
		return "holder"
	}
	return "candidate"
}

// pcts is the median, min and max of ps and their number.
func pcts(ps []float64) string {
	s := slices.Clone(ps)
	slices.Sort(s)
	return fmt.Sprintf("median %.4f, min %.4f, max %.4f, N %d", s[len(s)/2], s[0], s[len(s)-1], len(s))
}

// counts is the median, min and max of ns and their number.
func counts(ns []int) string {
	s := slices.Clone(ns)
	slices.Sort(s)
	return fmt.Sprintf("median %d, min %d, max %d, N %d", s[len(s)/2], s[0], s[len(s)-1], len(s))
}
