// Package metrics serves carpd's Prometheus metrics and /healthz over
// HTTP. One collector takes a snapshot of the daemon through its event
// loop at each scrape (a private registry: nothing of the Go runtime's
// default registry leaks in unless asked for).
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/version"
)

// DefaultListen is the address the README suggests (9657 is free in the
// Prometheus default port allocations list).
const DefaultListen = "127.0.0.1:9657"

// Source is what the metrics are read from (*daemon.Daemon).
type Source interface {
	Status(ctx context.Context) (api.Status, error)
	Stats(ctx context.Context) (api.Stats, error)
}

// scrapeTimeout bounds a snapshot; /healthz fails beyond it.
const scrapeTimeout = 2 * time.Second

var (
	descState = prometheus.NewDesc("carpd_vhid_state",
		"State of the vhid: 0 INIT, 1 BACKUP, 2 MASTER.", []string{"iface", "vhid", "proto", "af"}, nil)
	descTransitions = prometheus.NewDesc("carpd_transitions_total",
		"State transitions, by the state entered and the reason.", []string{"iface", "vhid", "proto", "af", "to", "reason"}, nil)
	descSent = prometheus.NewDesc("carpd_adverts_sent_total",
		"Adverts sent, by address family.", []string{"iface", "vhid", "proto", "af"}, nil)
	descSendFailed = prometheus.NewDesc("carpd_adverts_send_failures_total",
		"Adverts that could not be sent.", []string{"iface", "vhid", "proto", "af"}, nil)
	descReceived = prometheus.NewDesc("carpd_adverts_received_total",
		"Valid adverts received from other hosts, by address family.", []string{"iface", "vhid", "proto", "af"}, nil)
	descDropped = prometheus.NewDesc("carpd_adverts_dropped_total",
		"Received adverts dropped, by reason (FreeBSD's carpstats names).", []string{"iface", "proto", "reason"}, nil)
	descSkew = prometheus.NewDesc("carpd_advertised_skew",
		"The advskew a CARP vhid advertises: the configured one plus the demotion, clamped to 0..240.", []string{"iface", "vhid", "proto", "af"}, nil)
	descPriority = prometheus.NewDesc("carpd_vrrp_priority",
		"The priority a VRRP instance advertises: vrrpprio minus the demotion, floored at 1.", []string{"iface", "vhid", "proto", "af"}, nil)
	descMasterAdverInterval = prometheus.NewDesc("carpd_vrrp_master_adver_interval_seconds",
		"A VRRP instance's Master_Adver_Interval: its own interval, or the master's once heard.", []string{"iface", "vhid", "proto", "af"}, nil)
	descDemotion = prometheus.NewDesc("carpd_demotion",
		"The host's demotion (FreeBSD's net.inet.carp.demotion).", nil, nil)
	descDemotionSource = prometheus.NewDesc("carpd_demotion_source",
		"The demotion of each source in force.", []string{"source", "iface", "vhid"}, nil)
	descAnnouncements = prometheus.NewDesc("carpd_announcements_total",
		"Announcements of the addresses (gratuitous ARP, unsolicited neighbour advertisements).", []string{"iface", "vhid", "proto", "af"}, nil)
	descRestores = prometheus.NewDesc("carpd_address_restores_total",
		"Addresses put right after they were changed underneath carpd.", []string{"iface", "vhid", "proto", "af"}, nil)
	descLastTransition = prometheus.NewDesc("carpd_last_transition_timestamp_seconds",
		"When the vhid last changed state.", []string{"iface", "vhid", "proto", "af"}, nil)
	descHookRuns = prometheus.NewDesc("carpd_hook_runs_total",
		"Hook runs by result (ok, failed: did not exit 0 or timed out).", []string{"result"}, nil)
	descResyncs = prometheus.NewDesc("carpd_monitor_resyncs_total",
		"Times the link and address monitor lost changes and read the state afresh.", nil, nil)
	descQueueDrops = prometheus.NewDesc("carpd_adverts_queue_dropped_total",
		"Checked adverts dropped because the event loop was behind.", nil, nil)
	descReload = prometheus.NewDesc("carpd_config_last_reload_successful",
		"Whether the last configuration reload succeeded (1 until one is refused).", nil, nil)
	descReloadTime = prometheus.NewDesc("carpd_config_last_reload_success_timestamp_seconds",
		"When the configuration in force was loaded: at start, or by the last reload that succeeded.", nil, nil)
	descBuild = prometheus.NewDesc("carpd_build_info",
		"carpd's version, as labels; always 1.", []string{"version", "goversion"}, nil)
	descUp = prometheus.NewDesc("carpd_up",
		"Whether carpd's event loop answered this scrape.", nil, nil)
	descCheckUp = prometheus.NewDesc("carpd_check_up",
		"Whether the health check is up (1) or failing (0).", []string{"check"}, nil)
	descCheckDemotion = prometheus.NewDesc("carpd_check_demotion",
		"The demotion a failing check applies (0 while up, or for action release).", []string{"check"}, nil)
)

// Collector is the one collector of carpd's metrics.
type Collector struct {
	src Source
	log *slog.Logger
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descTransitions, descSent, descSendFailed, descReceived, descDropped,
		descSkew, descPriority, descMasterAdverInterval, descDemotion, descDemotionSource, descAnnouncements, descRestores, descLastTransition, descHookRuns,
		descResyncs, descQueueDrops, descReload, descReloadTime, descBuild, descUp, descCheckUp, descCheckDemotion} {
		ch <- d
	}
}

// Collect takes a snapshot through the daemon's loop.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, version.String(), version.Go())
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err1 := c.src.Status(ctx)
	stats, err2 := c.src.Stats(ctx)
	if err := errors.Join(err1, err2); err != nil {
		c.log.Warn("carpd: metrics snapshot failed", "err", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	for _, v := range st.VHIDs {
		// A VRRP vhid with both families is two instances: af tells
		// them apart ("" for a CARP vhid, which covers both).
		l := []string{v.Interface, strconv.Itoa(v.VHID), v.Protocol, v.Family}
		with := func(extra ...string) []string { return append(l[:4:4], extra...) }
		// The advert counters, by family: af is the adverts' family
		// (for a CARP vhid, inet and inet6; for a VRRP instance, its own).
		withAF := func(af string) []string { return append(l[:3:3], af) }
		gauge(descState, stateValue(v.State), l...)
		if v.Protocol == "vrrp" {
			gauge(descPriority, float64(v.AdvertisedPriority), l...)
			gauge(descMasterAdverInterval, float64(v.MasterAdverInterval)/100, l...)
		} else {
			gauge(descSkew, float64(v.AdvertisedSkew), l...)
		}
		k := v.Counters
		for _, f := range []struct {
			af             string
			sent, received uint64
		}{{"inet", k.SentInet, k.ReceivedInet}, {"inet6", k.SentInet6, k.ReceivedInet6}} {
			if v.Family == "" || v.Family == f.af {
				counter(descSent, f.sent, withAF(f.af)...)
				counter(descReceived, f.received, withAF(f.af)...)
			}
		}
		counter(descSendFailed, k.SendFailed, l...)
		counter(descAnnouncements, k.Announcements, l...)
		counter(descRestores, k.AddressRestores, l...)
		for _, t := range k.TransitionsByKind {
			counter(descTransitions, t.Count, with(t.To, Slug(t.Reason))...)
		}
		if v.LastChange != nil {
			gauge(descLastTransition, float64(v.LastChange.Time.UnixNano())/1e9, l...)
		}
	}
	gauge(descDemotion, float64(st.Demotion))
	for _, c := range st.Checks {
		up := 0.0
		if c.Up {
			up = 1
		}
		gauge(descCheckUp, up, c.Name)
		gauge(descCheckDemotion, float64(c.Demotion), c.Name)
	}
	for _, d := range st.Demotions {
		vhid := ""
		if d.VHID != 0 {
			vhid = strconv.Itoa(d.VHID)
		}
		gauge(descDemotionSource, float64(d.Delta), d.Source, d.Interface, vhid)
	}
	for _, id := range stats.DropsByInterface {
		proto := id.Proto
		if proto == "" {
			proto = "carp"
		}
		for reason, n := range id.Drops {
			counter(descDropped, n, id.Interface, proto, reason)
		}
	}
	counter(descHookRuns, stats.HookRuns-stats.HookFailures, "ok")
	counter(descHookRuns, stats.HookFailures, "failed")
	counter(descResyncs, stats.MonitorResyncs)
	counter(descQueueDrops, stats.DroppedQueueFull)
	reloaded := 0.0
	if stats.ConfigLastReloadSuccessful {
		reloaded = 1
	}
	gauge(descReload, reloaded)
	gauge(descReloadTime, float64(stats.ConfigLastReloadSuccess.UnixNano())/1e9)
}

func stateValue(s string) float64 {
	switch s {
	case "BACKUP":
		return 1
	case "MASTER":
		return 2
	}
	return 0
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// Slug turns a transition reason into a label value: "master timed out"
// -> "master_timed_out".
func Slug(reason string) string {
	return strings.Trim(nonWord.ReplaceAllString(strings.ToLower(reason), "_"), "_")
}

// Handler returns the HTTP handler: /metrics and /healthz (200 while the
// event loop answers within 2 s).
func Handler(src Source, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{src: src, log: log})
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "carpd"}))
	reg.MustRegister(collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
		defer cancel()
		if _, err := src.Status(ctx); err != nil {
			http.Error(w, "event loop not answering: "+err.Error()+"\n", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("carpd: /metrics, /healthz\n"))
	})
	return mux
}

// Server serves the metrics on a TCP address.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on addr ("127.0.0.1:9657").
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln}, nil
}

// Addr returns the address listened on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Close. A client that holds a half-written request
// open is cut off: the header must arrive within 5 s, the whole request
// (a body too, which no endpoint reads) within 10 s, and the reply be
// taken within 30 s.
func (s *Server) Serve(src Source, log *slog.Logger) error {
	s.srv = &http.Server{Handler: Handler(src, log), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving.
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	return s.srv.Close()
}
