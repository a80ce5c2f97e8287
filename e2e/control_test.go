package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/lab"
)

// carpctl runs carpctl against h's carpd and returns its stdout, stderr
// and exit status.
func (c *cluster) carpctl(h *lab.Host, args ...string) (string, string, int) {
	c.t.Helper()
	return runCarpctl(c.t, nil, append([]string{"--control", c.ctlPath(h)}, args...)...)
}

// runCarpctl runs carpctl with args; with cred, as that user.
func runCarpctl(t testing.TB, cred *syscall.Credential, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, carpctlBin, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("carpctl %v: %v", args, err)
	return "", "", -1
}

func (c *cluster) status(h *lab.Host) api.Status {
	c.t.Helper()
	out, errOut, code := c.carpctl(h, "status", "--json")
	if code != 0 {
		c.t.Fatalf("carpctl status on %s: exit %d: %s", h.Name, code, errOut)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("carpctl status --json: %v\n%s", err, out)
	}
	return st
}

// matchLines fails unless every regular expression matches a line of out.
func matchLines(t testing.TB, what, out string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
			t.Errorf("%s: no line matches %s:\n%s", what, re, out)
		}
	}
}

// TestCarpctlStatusAndStats: status and stats of master and backup, in
// text and JSON, checked field by field; is-master's exit statuses.
func TestCarpctlStatusAndStats(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	c.waitAdverts(t, 2, 10*time.Second) // the counts checked below

	out, _, code := c.carpctl(c.master, "status")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	matchLines(t, "master's status", out,
		`^eth0: carp: MASTER vhid 100 advbase 1 advskew 100$`,
		`^      peer 224\.0\.0\.18 peer6 ff02::12$`,
		`^      inet 192\.0\.2\.50/32 vhid 100$`,
		`^      demotion 0; last change \d\d:\d\d:\d\d BACKUP -> MASTER \(master timed out\); master since \d+(\.\d+)?s$`,
		`^      MASTER: advertising advbase 1 advskew 100; no other host heard$`)
	out, _, _ = c.carpctl(c.backup, "status")
	matchLines(t, "backup's status", out,
		`^eth0: carp: BACKUP vhid 100 advbase 1 advskew 200$`,
		`^      demotion 0; last change \d\d:\d\d:\d\d INIT -> BACKUP \(initialization complete\)$`,
		`^      BACKUP: master 192\.0\.2\.21 advertises advbase 1 advskew 100, ours 200$`)

	ms, bs := c.status(c.master), c.status(c.backup)
	if ms.Version != api.Version || len(ms.VHIDs) != 1 || len(bs.VHIDs) != 1 {
		t.Fatalf("status documents: %+v %+v", ms, bs)
	}
	m, b := ms.VHIDs[0], bs.VHIDs[0]
	if m.Interface != "eth0" || m.VHID != 100 || m.Protocol != "carp" || m.State != "MASTER" || m.AdvBase != 1 ||
		m.AdvSkew != 100 || m.AdvertisedSkew != 100 || m.Peer != "224.0.0.18" || m.Peer6 != "ff02::12" ||
		len(m.Addresses) != 1 || m.Addresses[0] != "192.0.2.50/32" || m.MasterSince == nil || m.LastChange == nil ||
		m.LastChange.To != "MASTER" || m.Counters.SentInet < 2 || m.Counters.Announcements < 1 {
		t.Errorf("master's vhid: %+v", m)
	}
	if b.State != "BACKUP" || b.AdvSkew != 200 || b.Heard == nil || b.Heard.Source != "192.0.2.21" || b.Heard.AdvSkew != 100 ||
		b.MasterSince != nil || b.Counters.ReceivedInet < 2 || b.Counters.SentInet != 0 {
		t.Errorf("backup's vhid: %+v (heard %+v)", b, b.Heard)
	}

	out, _, code = c.carpctl(c.backup, "stats")
	if code != 0 {
		t.Fatalf("stats: exit %d", code)
	}
	matchLines(t, "backup's stats", out,
		`^carp:$`, `^\t[1-9]\d* packets received \(IPv4\)$`, `^\t0 packets received \(IPv6\)$`,
		`^\t\t0 packets discarded for wrong TTL$`, `^\t\t0 discarded for bad authentication$`,
		`^\t0 packets sent \(IPv4\)$`, `^carpd:$`, `^\t1 state transition$`)
	out, _, _ = c.carpctl(c.master, "stats", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"received-inet-packets", "received-inet6-packets", "dropped-wrong-ttl", "dropped-short-header",
		"dropped-bad-checksum", "dropped-bad-version", "dropped-short-packet", "dropped-bad-authentication",
		"dropped-bad-vhid", "dropped-bad-address-list", "sent-inet-packets", "sent-inet6-packets", "send-failed",
		"dropped-loop", "dropped-bad-peer", "transitions", "announcements", "address-restores", "hook-runs"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats --json lacks %q", k)
		}
	}
	if n, _ := raw["sent-inet-packets"].(float64); n < 2 {
		t.Errorf("master sent-inet-packets = %v", raw["sent-inet-packets"])
	}

	for _, tc := range []struct {
		h    *lab.Host
		arg  string
		code int
	}{{c.master, "100", 0}, {c.master, "100@eth0", 0}, {c.backup, "100", 1}, {c.master, "7", 2}, {c.master, "100@eth9", 2}} {
		if _, errOut, code := c.carpctl(tc.h, "is-master", tc.arg); code != tc.code {
			t.Errorf("is-master %s on %s: exit %d (%s), want %d", tc.arg, tc.h.Name, code, strings.TrimSpace(errOut), tc.code)
		}
	}
}

// TestCarpctlChangesState: a forced state, demotion moving the master
// (peer with preempt) and back, the log level, a malformed request.
func TestCarpctlChangesState(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t, "--preempt")
	startPair(t, c)

	// A forced state is not sticky (FreeBSD): the master forced to
	// BACKUP hears nobody and, having the shorter master-down interval,
	// takes over again; the backup forced to MASTER steps down at the
	// master's next advert.
	mp, bp := c.procs[c.master], c.procs[c.backup]
	if out, errOut, code := c.carpctl(c.master, "state", "100", "backup"); code != 0 || out != "100@eth0: BACKUP\n" {
		t.Fatalf("state 100 backup: exit %d: %q %s", code, out, errOut)
	}
	for _, want := range []string{"carp: 100@eth0: MASTER -> BACKUP (user requested via ifconfig)", "carp: 100@eth0: BACKUP -> MASTER (master timed out)"} {
		if err := waitOutput(mp, want, masterDown+time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := c.carpctl(c.backup, "state", "100@eth0", "master"); code != 0 || out != "100@eth0: MASTER\n" {
		t.Fatalf("state 100@eth0 master: exit %d: %q %s", code, out, errOut)
	}
	for _, want := range []string{"carp: 100@eth0: BACKUP -> MASTER (user requested via ifconfig)", "carp: 100@eth0: MASTER -> BACKUP (more frequent advertisement received)"} {
		if err := waitOutput(bp, want, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.waitHolder(c.master, 5*time.Second); !ok {
		t.Fatalf("after the forced states: holders %v", c.holders())
	}

	// Demotion: the master advertises 100+200 (clamped 240) > 200, the
	// backup preempts; the sources are listed.
	out, errOut, code := c.carpctl(c.master, "demote", "+200", "--reason", "draining")
	if code != 0 || !strings.Contains(out, "demotion 200: +200 operator (draining)") {
		t.Fatalf("demote +200: exit %d, %q %q", code, out, errOut)
	}
	if _, ok := c.waitHolder(c.backup, 5*time.Second); !ok {
		t.Fatalf("demoted master: holders %v", c.holders())
	}
	st := c.status(c.master)
	if st.Demotion != 200 || len(st.Demotions) != 1 || st.Demotions[0].Source != "operator" || st.Demotions[0].Reason != "draining" ||
		st.VHIDs[0].AdvertisedSkew != 240 {
		t.Errorf("demoted status: %+v", st)
	}
	if out, _, code := c.carpctl(c.master, "demote", "-200"); code != 0 || !strings.HasPrefix(out, "demotion 0") {
		t.Fatalf("demote -200: exit %d, %q", code, out)
	}
	if _, ok := c.waitHolder(c.master, 5*time.Second); !ok {
		t.Fatalf("undemoted master: holders %v", c.holders())
	}

	// Log level.
	if _, errOut, code := c.carpctl(c.master, "log-level", "warn"); code != 0 {
		t.Errorf("log-level warn: exit %d: %s", code, errOut)
	}
	if err := waitOutput(c.procs[c.master], `msg="carpd: log level set" level=warn`, 2*time.Second); err != nil {
		t.Error(err)
	}
	if _, errOut, code := c.carpctl(c.master, "log-level", "loud"); code != 2 || !strings.Contains(errOut, "log level") {
		t.Errorf("log-level loud: exit %d: %s", code, errOut)
	}

	// Bad requests: one clear line, exit 2; the server keeps serving.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"state", "100", "init"}, "usage: carpctl state"},
		{[]string{"state", "300", "master"}, "want VHID[@IFACE]"},
		{[]string{"state", "42", "master"}, "no such vhid 42"},
		{[]string{"demote", "0"}, "a demotion of 0 changes nothing"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		if _, errOut, code := c.carpctl(c.master, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("carpctl %v: exit %d, %q; want 2 and one line with %q", tc.args, code, errOut, tc.want)
		}
	}
	hc := unixClient(c.ctlPath(c.master))
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/state", `{"vhid": 100, "state": "master"`, 400},
		{"POST", "/v1/state", `{"vhid": 100, "state": "master", "extra": 1}`, 400},
		{"POST", "/v1/demote", `{"delta": 1}{"delta": 2}`, 400},
		{"POST", "/v1/demote", `{"delta": 1, "reason": "` + strings.Repeat("x", 100<<10) + `"}`, 413},
		{"GET", "/v1/state", "", 405},
		{"GET", "/v1/nothing", "", 404},
	} {
		req, _ := http.NewRequest(tc.method, "http://carpd"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var e api.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.code || e.Error == "" {
			t.Errorf("%s %s %.40q: %d %q, want %d with an error", tc.method, tc.path, tc.body, resp.StatusCode, e.Error, tc.code)
		}
	}
	if st := c.status(c.master); st.VHIDs[0].State != "MASTER" || st.Demotion != 0 {
		t.Errorf("after the bad requests: %+v", st)
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// TestCarpctlAccess: carpd not running; an unprivileged user refused; the
// control group's members may read but not change.
func TestCarpctlAccess(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	if _, _, code := runCarpctl(t, nil, "--control", filepath.Join(t.TempDir(), "none.sock"), "status"); code != 3 {
		t.Errorf("no carpd: exit %d, want 3", code)
	}
	c := newCluster(t)
	// A configuration with a control group: nogroup (65534), the group of
	// the user nobody.
	dir := filepath.Join(c.dir, "ctl")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.dir, filepath.Dir(c.dir)} { // t.TempDir's are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "carpd.sock")
	cfg := filepath.Join(c.dir, "group.toml")
	if err := os.WriteFile(cfg, []byte(`control-group = "nogroup"

[[vhid]]
interface = "eth0"
vhid = 100
advskew = 100
password = "lampros"
addresses = ["192.0.2.50/32"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c.startCarpd(c.master, "--config", cfg, "--control", sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Gid != 65534 || st.Uid != 0 {
		t.Errorf("socket mode %v uid %d gid %d, want 0660 root:nogroup", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	other := &syscall.Credential{Uid: 65534, Gid: 65533}
	if out, errOut, code := runCarpctl(t, other, "--control", sock, "status"); code != 4 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("another user's status: exit %d, %q %q; want 4, permission denied", code, out, errOut)
	}
	if out, errOut, code := runCarpctl(t, nobody, "--control", sock, "status"); code != 0 || !strings.Contains(out, "carp: ") {
		t.Errorf("control group's status: exit %d, %q %q; want 0", code, out, errOut)
	}
	if _, errOut, code := runCarpctl(t, nobody, "--control", sock, "state", "100", "master"); code != 4 || !strings.Contains(errOut, "may only read") {
		t.Errorf("control group's state change: exit %d, %q; want 4, read only", code, errOut)
	}
	if _, errOut, code := runCarpctl(t, nobody, "--control", sock, "demote", "+10"); code != 4 {
		t.Errorf("control group's demote: exit %d, %q; want 4", code, errOut)
	}
}

// TestMaintenanceSurvivesRestart: `carpctl demote +240 --persist` keeps
// the demotion in the state file across a restart, until --clear.
func TestMaintenanceSurvivesRestart(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	out, errOut, code := c.carpctl(c.master, "demote", "+240", "--persist", "--reason", "patching")
	if code != 0 || !strings.Contains(out, "+240 operator (persistent) (patching)") {
		t.Fatalf("demote --persist: exit %d, %q %q", code, out, errOut)
	}
	state := filepath.Join(c.dir, "master.state")
	if data, err := os.ReadFile(state); err != nil || !strings.Contains(string(data), `"demotion":240`) {
		t.Fatalf("state file: %q, %v", data, err)
	}
	// Restart the master's carpd.
	p := c.procs[c.master]
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Logf("carpd exited: %v", err)
	}
	c.start(c.master)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(c.ctlPath(c.master)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := c.status(c.master)
	if st.Demotion != 240 || len(st.Demotions) != 1 || st.Demotions[0].Source != "operator (persistent)" || st.Demotions[0].Reason != "patching" {
		t.Fatalf("after the restart: %+v", st)
	}
	if err := waitOutput(c.procs[c.master], "carp: demoted by 240 to 240 (patching)", time.Second); err != nil {
		t.Error(err)
	}
	// Demoted, the returning master stays BACKUP; cleared, it is the
	// better one again (no preempt here: it stays BACKUP).
	out, _, code = c.carpctl(c.master, "demote", "--clear")
	if code != 0 || !strings.HasPrefix(out, "demotion 0") {
		t.Fatalf("demote --clear: exit %d, %q", code, out)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after --clear: %v", err)
	}
}

// TestCorruptStateFile: a state file carpd cannot read (here empty) stops
// the real carpd at start with exit 78 (EX_CONFIG: the unit does not
// restart it in vain), a message naming the file and the recovery, and
// no address taken; removed, carpd starts.
func TestCorruptStateFile(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	state := filepath.Join(c.dir, "master.state")
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := c.start(c.master)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("carpd runs with an empty state file")
	}
	out := p.Output()
	if code := p.ExitCode(); code != 78 {
		t.Errorf("exit %d, want 78:\n%s", code, out)
	}
	for _, want := range []string{"state file " + state + " is empty", "remove the file", "carpctl demote +N --persist", "carpd(8)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if h := c.holders(); len(h) != 0 {
		t.Errorf("the VIP is held by %v", h)
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	p = c.start(c.master)
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("no MASTER after the state file was removed:\n%s", p.Output())
	}
}

// TestCarpctlEvents: the stream starts with a snapshot, then numbered
// events without gaps (a failover); a reader that stops reading is dropped
// while the daemon keeps advertising.
func TestCarpctlEvents(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, carpctlBin, "--control", c.ctlPath(c.backup), "events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	events := make(chan api.Event, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e api.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
	}()
	next := func() api.Event {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return api.Event{}
	}
	snap := next()
	if snap.Type != "snapshot" || snap.VHID != 100 || snap.State != "BACKUP" || snap.Interface != "eth0" {
		t.Fatalf("first event %+v, want the snapshot of 100@eth0 BACKUP", snap)
	}
	c.reboot(c.master)
	var got []api.Event
	for len(got) < 3 {
		got = append(got, next())
	}
	for i, e := range got {
		if e.Seq != snap.Seq+uint64(i)+1 {
			t.Errorf("event %d: seq %d, want %d (no gaps after the snapshot's %d)", i, e.Seq, snap.Seq+uint64(i)+1, snap.Seq)
		}
	}
	if got[0].Type != "transition" || got[0].From != "BACKUP" || got[0].To != "MASTER" || got[0].Reason != "master timed out" {
		t.Errorf("first event after the snapshot: %+v, want BACKUP -> MASTER", got[0])
	}
	if got[1].Type != "announce" || len(got[1].Addresses) != 1 {
		t.Errorf("second event: %+v, want the announcement", got[1])
	}
}
