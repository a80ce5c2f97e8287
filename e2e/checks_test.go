package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// serveHealth serves /health with 200 inside h's namespace on addr, until
// stop is called.
func serveHealth(t testing.TB, h *lab.Host, addr string) (stop func()) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(ln)
	return func() { srv.Close() }
}

// checkTOML is a host's configuration with one [[check]].
func checkTOML(t testing.TB, path string, advskew int, global, check string) string {
	t.Helper()
	body := fmt.Sprintf(`%s

[[vhid]]
interface = "eth0"
vhid = 100
advskew = %d
password = "lampros"
addresses = ["192.0.2.50/32"]
%s`, global, advskew, check)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const healthAddr = "127.0.0.1:8080"

// TestHealthCheckDemotes: an HTTP service on the master stops, its check
// fails (fall 2 x interval 500 ms), the demoted master loses the VIP to
// the backup (preempt); the service returns and the master takes it back.
func TestHealthCheckDemotes(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	check := `
[[check]]
name = "web"
http = "http://` + healthAddr + `/health"
interval = "500ms"
timeout = "300ms"
fall = 2
rise = 2
weight = 240
`
	stop := serveHealth(t, c.master, healthAddr)
	c.startCarpd(c.master, "--config", checkTOML(t, filepath.Join(c.dir, "m.toml"), 100, "preempt = true", check))
	c.startCarpd(c.backup, "--config", checkTOML(t, filepath.Join(c.dir, "b.toml"), 200, "preempt = true", ""))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	stop()
	took, ok := c.waitHolder(c.backup, 2*500*time.Millisecond+masterDown+2*time.Second)
	if !ok {
		t.Fatalf("the check's failure did not move the VIP: holders %v\n%s", c.holders(), c.procs[c.master].Output())
	}
	t.Logf("VIP on the backup %v after the service stopped (fall x interval = 1 s)", took.Round(time.Millisecond))
	if took > 2*500*time.Millisecond+masterDown {
		t.Errorf("took %v, want within fall x interval + the bound", took)
	}
	st := c.status(c.master)
	if len(st.Checks) != 1 || st.Checks[0].Up || st.Demotion != 240 || !strings.Contains(st.Checks[0].Detail, "connection refused") {
		t.Errorf("master's status: %+v %+v", st.Checks, st.Demotions)
	}
	out, _, _ := c.carpctl(c.master, "status")
	if !strings.Contains(out, "check web: http http://"+healthAddr+"/health: FAILING") {
		t.Errorf("status text:\n%s", out)
	}
	stop = serveHealth(t, c.master, healthAddr)
	defer stop()
	if _, ok := c.waitHolder(c.master, 2*500*time.Millisecond+5*time.Second); !ok {
		t.Fatalf("the service is back, the master did not take the VIP back: holders %v", c.holders())
	}
}

// TestHealthCheckReleases: the same with action release and preempt off:
// the master bows out at once and the backup keeps the VIP afterwards.
func TestHealthCheckReleases(t *testing.T) {
	c := newCluster(t)
	check := `
[[check]]
name = "web"
tcp = "` + healthAddr + `"
interval = "500ms"
fall = 2
action = "release"
vhids = [100]
`
	stop := serveHealth(t, c.master, healthAddr)
	mp := c.startCarpd(c.master, "--config", checkTOML(t, filepath.Join(c.dir, "m.toml"), 100, "", check))
	c.startCarpd(c.backup, "--config", checkTOML(t, filepath.Join(c.dir, "b.toml"), 200, "", ""))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	pr := c.ping(10 * time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	stop()
	took, ok := c.waitHolder(c.backup, 2*500*time.Millisecond+3*time.Second)
	if !ok {
		t.Fatalf("the release did not move the VIP: holders %v\n%s", c.holders(), mp.Output())
	}
	t.Logf("VIP on the backup %v after the service stopped", took.Round(time.Millisecond))
	if err := waitOutput(mp, "carp: 100@eth0: MASTER -> BACKUP (released by a check)", 2*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(500 * time.Millisecond)
	pr.stop()
	if lost := lostProbes(pr); lost > 3 {
		t.Errorf("%d probes lost in the release (a bow-out: make before break)", lost)
	}
	// The service returns: released no more, but without preempt the
	// backup keeps the VIP.
	stop = serveHealth(t, c.master, healthAddr)
	defer stop()
	time.Sleep(3 * time.Second)
	if got := c.holders(); len(got) != 1 || got[0] != "backup" {
		t.Errorf("holders %v, want the backup (no preempt)", got)
	}
	if st := c.status(c.master); st.VHIDs[0].Released || !st.Checks[0].Up {
		t.Errorf("master after the service returned: %+v %+v", st.VHIDs[0], st.Checks)
	}
}

// TestHangingCheck: an exec check that hangs is killed at its timeout and
// counts as failed; checks never delay adverts (the master's adverts keep
// their interval on the wire).
func TestHangingCheck(t *testing.T) {
	c := newCluster(t)
	check := `
[[check]]
name = "hang"
exec = ["/bin/sleep", "30"]
interval = "1s"
timeout = "500ms"
weight = 1
`
	mp := c.startCarpd(c.master, "--config", checkTOML(t, filepath.Join(c.dir, "m.toml"), 100, "", check))
	c.startCarpd(c.backup, "--config", checkTOML(t, filepath.Join(c.dir, "b.toml"), 200, "", ""))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	if err := waitOutput(mp, "carpd: check failing", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := c.status(c.master)
	if st.Checks[0].Up || !strings.Contains(st.Checks[0].Detail, "killed at its timeout") || st.Demotion != 1 {
		t.Errorf("hanging check: %+v, demotion %d", st.Checks[0], st.Demotion)
	}
	capt := captureAdverts(t, c.backup, "eth0", c.dir)
	time.Sleep(6 * time.Second)
	ads := capt.stop(t)
	var mine []wireAdvert
	for _, a := range ads {
		if a.Src == masterAddr.Addr() {
			mine = append(mine, a)
		}
	}
	// vhid 100 only (advertLateness would want vhids 1 to 100: its error
	// was always set, and thrown away).
	lates, err := vhidLateness(mine, 6*time.Second)
	if err != nil {
		t.Errorf("the master's adverts while the check hangs: %v", err)
	}
	if len(lates) < 3 {
		t.Fatalf("%d advert gaps captured", len(lates))
	}
	slices.Sort(lates)
	if worst := lates[len(lates)-1]; worst > 0.02 {
		t.Errorf("an advert %.1f ms late while the check hangs, want at most 20 ms", worst*1000)
	}
	if got := c.holders(); len(got) != 1 || got[0] != "master" {
		t.Errorf("holders %v", got)
	}
}

// lostProbes counts the lost probes of a stopped prober.
func lostProbes(p *prober) int {
	n := 0
	for _, r := range p.results() {
		if r.Lost {
			n++
		}
	}
	return n
}
