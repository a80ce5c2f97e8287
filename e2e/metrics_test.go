package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/lab"
)

// metricsAddr is where the tests' carpd serve metrics: each namespace has
// a loopback of its own.
const metricsAddr = "127.0.0.1:9657"

// httpGet gets path from addr inside h's namespace: the connection is made
// there, the request goes through it.
func httpGet(t testing.TB, h *lab.Host, addr, path string) (int, string) {
	t.Helper()
	var conn net.Conn
	if err := h.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s in %s: %v", addr, h.Name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: carpd\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s in %s: %v", path, h.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape returns h's carpd's metrics, by family.
func scrape(t testing.TB, h *lab.Host) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, h, metricsAddr, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics on %s: %d\n%s", h.Name, code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s's metrics: %v\n%s", h.Name, err, body)
	}
	return mf
}

// value returns the value of the sample of family name whose labels are
// all of want ("k=v"); ok is false when there is none.
func value(mf map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := mf[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics scrapes both hosts before and after a failover and checks
// the values; /healthz answers 200.
func TestMetrics(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t, "--metrics-listen", metricsAddr)
	startPair(t, c)
	c.waitAdverts(t, 2, 10*time.Second) // the counts checked below
	if code, body := httpGet(t, c.backup, metricsAddr, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	m, b := scrape(t, c.master), scrape(t, c.backup)
	check := func(mf map[string]*dto.MetricFamily, who, name string, want float64, labels ...string) {
		t.Helper()
		if got, ok := value(mf, name, labels...); !ok || got != want {
			t.Errorf("%s: %s%v = %v (found %v), want %v", who, name, labels, got, ok, want)
		}
	}
	atLeast := func(mf map[string]*dto.MetricFamily, who, name string, min float64, labels ...string) {
		t.Helper()
		if got, ok := value(mf, name, labels...); !ok || got < min {
			t.Errorf("%s: %s%v = %v (found %v), want >= %v", who, name, labels, got, ok, min)
		}
	}
	l := []string{"iface=eth0", "vhid=100"}
	check(m, "master", "carpd_vhid_state", 2, l...)
	check(b, "backup", "carpd_vhid_state", 1, l...)
	check(m, "master", "carpd_transitions_total", 1, append(l, "to=MASTER", "reason=master_timed_out")...)
	check(b, "backup", "carpd_transitions_total", 1, append(l, "to=BACKUP", "reason=initialization_complete")...)
	atLeast(m, "master", "carpd_adverts_sent_total", 2, append(l, "af=inet")...)
	check(b, "backup", "carpd_adverts_sent_total", 0, append(l, "af=inet")...)
	atLeast(b, "backup", "carpd_adverts_received_total", 2, append(l, "af=inet")...)
	check(b, "backup", "carpd_adverts_dropped_total", 0, "iface=eth0", "reason=badauth")
	check(m, "master", "carpd_advertised_skew", 100, l...)
	check(m, "master", "carpd_demotion", 0)
	atLeast(m, "master", "carpd_announcements_total", 1, l...)
	check(m, "master", "carpd_address_restores_total", 0, l...)
	atLeast(m, "master", "carpd_last_transition_timestamp_seconds", float64(time.Now().Add(-time.Minute).Unix()), l...)
	check(m, "master", "carpd_config_last_reload_successful", 1)
	atLeast(m, "master", "carpd_config_last_reload_success_timestamp_seconds", float64(time.Now().Add(-time.Minute).Unix()))
	oneFamilyLabel(t, "master", m)
	oneFamilyLabel(t, "backup", b)
	check(m, "master", "carpd_build_info", 1)
	check(m, "master", "carpd_up", 1)
	atLeast(m, "master", "carpd_process_resident_memory_bytes", 1<<20)

	// The failover: the backup's metrics follow.
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+3*time.Second); !ok {
		t.Fatalf("no failover: holders %v", c.holders())
	}
	b = scrape(t, c.backup)
	check(b, "backup", "carpd_vhid_state", 2, l...)
	check(b, "backup", "carpd_transitions_total", 1, append(l, "to=MASTER", "reason=master_timed_out")...)
	atLeast(b, "backup", "carpd_adverts_sent_total", 1, append(l, "af=inet")...)
	atLeast(b, "backup", "carpd_announcements_total", 1, l...)
}

// oneFamilyLabel fails t when both an af and a family label occur among
// the families of mf: the address family has one name.
func oneFamilyLabel(t testing.TB, who string, mf map[string]*dto.MetricFamily) {
	t.Helper()
	seen := map[string]string{} // label name -> a family using it
	for name, f := range mf {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if n := l.GetName(); n == "af" || n == "family" {
					seen[n] = name
				}
			}
		}
	}
	if len(seen) > 1 {
		t.Errorf("%s: two address-family labels: af on %s, family on %s", who, seen["af"], seen["family"])
	}
}

// TestReloadMetrics: carpd_config_last_reload_successful is 1 after the
// start, 0 after a reload of a file that does not parse (the timestamp
// of the last good load stays), 1 again after a good reload, which moves
// the timestamp.
func TestReloadMetrics(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	cfg := filepath.Join(c.dir, "master.toml")
	reloadTOML(t, cfg, 100, false, "")
	c.startCarpd(c.master, "--config", cfg, "--metrics-listen", metricsAddr)
	reload := func(want float64) float64 {
		t.Helper()
		mf := scrape(t, c.master)
		ok, _ := value(mf, "carpd_config_last_reload_successful")
		at, found := value(mf, "carpd_config_last_reload_success_timestamp_seconds")
		if ok != want || !found {
			t.Errorf("carpd_config_last_reload_successful = %v, want %v (timestamp %v, found %v)", ok, want, at, found)
		}
		return at
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if listening(c.master, metricsAddr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("carpd's metrics did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := reload(1)
	if now := float64(time.Now().Unix()); start < now-60 || start > now+1 {
		t.Errorf("last successful load at %v, want the start (now %v)", start, now)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := os.WriteFile(cfg, []byte("[[vhid]\ninterface = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.carpctl(c.master, "reload"); code != 2 {
		t.Fatalf("reload of a bad file: exit %d, %s", code, errOut)
	}
	if at := reload(0); at != start {
		t.Errorf("a refused reload moved the timestamp: %v -> %v", start, at)
	}
	reloadTOML(t, cfg, 100, false, "")
	if out, errOut, code := c.carpctl(c.master, "reload"); code != 0 {
		t.Fatalf("reload of a good file: exit %d, %s %s", code, out, errOut)
	}
	if at := reload(1); at <= start {
		t.Errorf("a good reload did not move the timestamp: %v -> %v", start, at)
	}
}

// listening reports whether something accepts connections on addr in
// h's namespace.
func listening(h *lab.Host, addr string) bool {
	var conn net.Conn
	if err := h.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	}); err != nil {
		return false
	}
	conn.Close()
	return true
}

// TestSlowEventReaderDropped: a reader of the event stream that stops
// reading is dropped with a last "lagged" line, while carpd goes on (no
// transition, its adverts keep leaving).
func TestSlowEventReaderDropped(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	hc := unixClient(c.ctlPath(c.master))
	hc.Timeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://carpd/v1/events", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadBytes('\n')
	if err != nil || !strings.Contains(string(first), `"type":"snapshot"`) {
		t.Fatalf("first line %q, %v", first, err)
	}
	sentBefore := c.status(c.master).VHIDs[0].Counters.SentInet
	// Stop reading; make thousands of events (demotion +1, -1: no
	// transition, the master advertises each change).
	ctl := unixClient(c.ctlPath(c.master))
	for i := range 3000 {
		delta := 1 - 2*(i%2)
		body := fmt.Sprintf(`{"delta": %d}`, delta)
		r, err := ctl.Post("http://carpd/v1/demote", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	// Read on: the buffered events, then "lagged", then the end.
	var last api.Event
	n := 0
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 {
			n++
			if err := json.Unmarshal(line, &last); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
		if err != nil {
			break
		}
	}
	if last.Type != "lagged" {
		t.Errorf("the stream ended after %d lines with %+v, want a last lagged line", n, last)
	}
	if n >= 6000 {
		t.Errorf("%d lines: the reader was not dropped", n)
	}
	st := c.status(c.master)
	if st.VHIDs[0].State != "MASTER" || st.Demotion != 0 || st.VHIDs[0].Counters.Transitions != 2 {
		t.Errorf("after the flood of events: %+v", st.VHIDs[0])
	}
	if st.VHIDs[0].Counters.SentInet < sentBefore+3000 {
		t.Errorf("sent %d adverts during the flood, want one per demotion change (3000)", st.VHIDs[0].Counters.SentInet-sentBefore)
	}
	if got := c.holders(); len(got) != 1 || got[0] != "master" {
		t.Errorf("holders %v", got)
	}
}
