package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/carpd/carpd/internal/api"
)

// fakeSource serves a fixed status and counters.
type fakeSource struct {
	st     api.Status
	stats  api.Stats
	health error
}

func (f *fakeSource) Status(context.Context) (api.Status, error) { return f.st, nil }
func (f *fakeSource) Stats(context.Context) (api.Stats, error)   { return f.stats, nil }
func (f *fakeSource) Healthy() error                             { return f.health }

// scrape returns the families served by Handler(src).
func scrape(t *testing.T, src Source) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src, slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d\n%s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parsing the metrics: %v\n%s", err, rec.Body)
	}
	return mf
}

// gauge returns the value of the only sample of a label-less gauge.
func gauge(t *testing.T, mf map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := mf[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("%s: %v", name, f)
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// TestReloadMetrics: carpd_config_last_reload_successful is the last
// reload's result and the timestamp the last successful load's, both
// from the daemon's counters.
func TestReloadMetrics(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 0, 0, 500_000_000, time.UTC)
	src := &fakeSource{st: api.Status{Version: api.Version},
		stats: api.Stats{ConfigLastReloadSuccessful: true, ConfigLastReloadSuccess: start}}
	check := func(what string, ok, at float64) {
		t.Helper()
		mf := scrape(t, src)
		if got := gauge(t, mf, "carpd_config_last_reload_successful"); got != ok {
			t.Errorf("%s: carpd_config_last_reload_successful = %v, want %v", what, got, ok)
		}
		if got := gauge(t, mf, "carpd_config_last_reload_success_timestamp_seconds"); got != at {
			t.Errorf("%s: carpd_config_last_reload_success_timestamp_seconds = %v, want %v", what, got, at)
		}
	}
	at := float64(start.Unix()) + 0.5
	check("at start", 1, at)
	src.stats.ConfigLastReloadSuccessful = false
	check("after a refused reload", 0, at)
	src.stats.ConfigLastReloadSuccessful, src.stats.ConfigLastReloadSuccess = true, start.Add(time.Hour)
	check("after a good reload", 1, at+3600)
}

// TestOneFamilyLabel: every per-vhid series names the address family
// af, none family; the advert counters of a CARP vhid have one series
// per family, those of a VRRP instance its own family's only (the two
// instances of a vhid would collide otherwise).
func TestOneFamilyLabel(t *testing.T) {
	src := &fakeSource{st: api.Status{Version: api.Version, VHIDs: []api.VHID{
		{Interface: "eth0", VHID: 100, Protocol: "carp", State: "MASTER",
			Counters: api.VHIDCounters{SentInet: 5, SentInet6: 6, ReceivedInet: 7, ReceivedInet6: 8}},
		{Interface: "eth0", VHID: 1, Protocol: "vrrp", Family: "inet", State: "BACKUP", Counters: api.VHIDCounters{ReceivedInet: 3}},
		{Interface: "eth0", VHID: 1, Protocol: "vrrp", Family: "inet6", State: "BACKUP", Counters: api.VHIDCounters{ReceivedInet6: 4}},
	}}, stats: api.Stats{ConfigLastReloadSuccessful: true}}
	mf := scrape(t, src)
	checkOneFamilyLabel(t, mf)
	want := map[string]float64{
		"100 carp inet": 7, "100 carp inet6": 8, "1 vrrp inet": 3, "1 vrrp inet6": 4,
	}
	got := map[string]float64{}
	for _, m := range mf["carpd_adverts_received_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		got[l["vhid"]+" "+l["proto"]+" "+l["af"]] = m.GetCounter().GetValue()
	}
	if len(got) != len(want) {
		t.Errorf("carpd_adverts_received_total: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("carpd_adverts_received_total{%s} = %v, want %v", k, got[k], v)
		}
	}
}

// checkOneFamilyLabel fails t when both an af and a family label occur
// among the families of mf.
func checkOneFamilyLabel(t testing.TB, mf map[string]*dto.MetricFamily) {
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
		t.Errorf("two address-family labels: af on %s, family on %s", seen["af"], seen["family"])
	}
}

// TestEtcdMetrics: an etcd vhid's series (renewal latency, watch
// restarts, read failures, tenure, time left to D) come from its status;
// a CARP vhid has none; the time to D is 0 once D is past.
func TestEtcdMetrics(t *testing.T) {
	d := time.Now().Add(time.Hour)
	src := &fakeSource{st: api.Status{Version: api.Version, VHIDs: []api.VHID{
		{Interface: "eth0", VHID: 1, Protocol: "carp", State: "MASTER"},
		{Interface: "eth0", VHID: 2, Protocol: "etcd", State: "MASTER", Etcd: &api.Etcd{
			Node: "h1", Leader: "h1", Tenure: 42, RenewLatency: 0.003, WatchRestarts: 2, ReadFailures: 1, FenceDeadline: &d}},
	}}}
	one := func(mf map[string]*dto.MetricFamily, name string) *dto.Metric {
		t.Helper()
		f := mf[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s: want one series (the etcd vhid's), got %v", name, f)
		}
		m := f.GetMetric()[0]
		for _, l := range m.GetLabel() {
			if l.GetName() == "vhid" && l.GetValue() != "2" || l.GetName() == "proto" && l.GetValue() != "etcd" {
				t.Errorf("%s: label %s=%s", name, l.GetName(), l.GetValue())
			}
		}
		return m
	}
	mf := scrape(t, src)
	if v := one(mf, "carpd_etcd_renew_latency_seconds").GetGauge().GetValue(); v != 0.003 {
		t.Errorf("renew latency %v", v)
	}
	if v := one(mf, "carpd_etcd_watch_restarts_total").GetCounter().GetValue(); v != 2 {
		t.Errorf("watch restarts %v", v)
	}
	if v := one(mf, "carpd_etcd_read_failures_total").GetCounter().GetValue(); v != 1 {
		t.Errorf("read failures %v", v)
	}
	if v := one(mf, "carpd_etcd_leader_tenure").GetGauge().GetValue(); v != 42 {
		t.Errorf("tenure %v", v)
	}
	if v := one(mf, "carpd_etcd_fence_remaining_seconds").GetGauge().GetValue(); v < 3590 || v > 3600 {
		t.Errorf("time to D %v, want about an hour", v)
	}
	past := time.Now().Add(-time.Second)
	src.st.VHIDs[1].Etcd.FenceDeadline = &past
	if v := one(scrape(t, src), "carpd_etcd_fence_remaining_seconds").GetGauge().GetValue(); v != 0 {
		t.Errorf("time to a past D %v, want 0", v)
	}
}
