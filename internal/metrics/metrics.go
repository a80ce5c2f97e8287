// Package metrics serves carpd's Prometheus metrics and /healthz over
// HTTP. One collector reads the snapshot the daemon's event loop last
// published at each scrape, without entering the loop (a private
// registry: nothing of the Go runtime's default registry leaks in unless
// asked for).
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

// Source is what the metrics are read from (*daemon.Daemon): its status
// and counters as last published, which never wait for the event loop,
// and whether the loop runs and is not stuck.
type Source interface {
	Status(ctx context.Context) (api.Status, error)
	Stats(ctx context.Context) (api.Stats, error)
	Healthy() error
}

// scrapeTimeout bounds a snapshot.
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
		"Whether carpd's event loop runs and is not stuck (busy with one input for over 2 s).", nil, nil)
	descCheckUp = prometheus.NewDesc("carpd_check_up",
		"Whether the health check is up (1) or failing (0).", []string{"check"}, nil)
	descBGPPeerUp = prometheus.NewDesc("carpd_bgp_peer_up",
		"Whether the bgp mover's session with the peer is established (1) or not (0).", []string{"peer", "as"}, nil)
	descBGPPeerState = prometheus.NewDesc("carpd_bgp_peer_state",
		"The bgp mover's session with the peer: 1 for its state (RFC 4271's, lower case), 0 for the others.", []string{"peer", "state"}, nil)
	descBGPAdvertised = prometheus.NewDesc("carpd_bgp_peer_advertised_routes",
		"Routes the bgp mover sent to the peer and did not withdraw.", []string{"peer"}, nil)
	descBGPRoutes = prometheus.NewDesc("carpd_bgp_routes_announced",
		"Host routes the bgp mover announces (the addresses of the vhids with mover = \"bgp\" this host holds).", nil, nil)
	descMoverFailures = prometheus.NewDesc("carpd_mover_failures_total",
		"Calls of a vhid's mover (mover = \"bgp\": an announcement or a withdrawal) that failed.", []string{"iface", "vhid", "proto", "af"}, nil)
	descCheckDemotion = prometheus.NewDesc("carpd_check_demotion",
		"The demotion a failing check applies (0 while up, or for action release).", []string{"check"}, nil)
	descEtcdRenewLatency = prometheus.NewDesc("carpd_etcd_renew_latency_seconds",
		"The round trip of an etcd vhid's last acknowledged lease renewal.", vhidLabels, nil)
	descEtcdWatchRestarts = prometheus.NewDesc("carpd_etcd_watch_restarts_total",
		"Watches of an etcd vhid's keys that broke (error, compaction, close) and were read again.", vhidLabels, nil)
	descEtcdReadFailures = prometheus.NewDesc("carpd_etcd_read_failures_total",
		"Linearizable reads of an etcd vhid's keys that failed.", vhidLabels, nil)
	descEtcdFence = prometheus.NewDesc("carpd_etcd_fence_remaining_seconds",
		"Time left to an etcd holder's fence deadline D, when it releases whatever the network does (0: not holding).", vhidLabels, nil)
	descEtcdTenure = prometheus.NewDesc("carpd_etcd_leader_tenure",
		"The create revision of an etcd vhid's leader key as last read (the holder's tenure; 0: no holder).", vhidLabels, nil)
)

// vhidLabels are the labels of a vhid's series.
var vhidLabels = []string{"iface", "vhid", "proto", "af"}

// Collector is the one collector of carpd's metrics.
type Collector struct {
	src Source
	log *slog.Logger
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descTransitions, descSent, descSendFailed, descReceived, descDropped,
		descSkew, descPriority, descMasterAdverInterval, descDemotion, descDemotionSource, descAnnouncements, descRestores, descLastTransition, descHookRuns,
		descResyncs, descQueueDrops, descReload, descReloadTime, descBuild, descUp, descCheckUp, descCheckDemotion,
		descBGPPeerUp, descBGPPeerState, descBGPAdvertised, descBGPRoutes, descMoverFailures,
		descEtcdRenewLatency, descEtcdWatchRestarts, descEtcdReadFailures, descEtcdFence, descEtcdTenure} {
		ch <- d
	}
}

// Collect reads the daemon's last snapshot; carpd_up says whether its
// loop is well.
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
	up := 1.0
	if err := c.src.Healthy(); err != nil {
		c.log.Warn("carpd: metrics: the event loop is not well", "err", err)
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
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
		if v.Mover != "" {
			counter(descMoverFailures, k.MoverFailures, l...)
		}
		for _, t := range k.TransitionsByKind {
			counter(descTransitions, t.Count, with(t.To, Slug(t.Reason))...)
		}
		if v.LastChange != nil {
			gauge(descLastTransition, float64(v.LastChange.Time.UnixNano())/1e9, l...)
		}
		if e := v.Etcd; e != nil {
			gauge(descEtcdRenewLatency, e.RenewLatency, l...)
			counter(descEtcdWatchRestarts, e.WatchRestarts, l...)
			counter(descEtcdReadFailures, e.ReadFailures, l...)
			gauge(descEtcdTenure, float64(e.Tenure), l...)
			left := 0.0
			if e.FenceDeadline != nil {
				left = max(time.Until(*e.FenceDeadline).Seconds(), 0)
			}
			gauge(descEtcdFence, left, l...)
		}
	}
	gauge(descDemotion, float64(st.Demotion))
	if g := st.BGP; g != nil {
		for _, p := range g.Peers {
			up := 0.0
			if p.State == "established" {
				up = 1
			}
			gauge(descBGPPeerUp, up, p.Address, strconv.FormatUint(uint64(p.AS), 10))
			for _, s := range bgpStates {
				in := 0.0
				if s == p.State {
					in = 1
				}
				gauge(descBGPPeerState, in, p.Address, s)
			}
			gauge(descBGPAdvertised, float64(p.Advertised), p.Address)
		}
		gauge(descBGPRoutes, float64(len(g.Routes)))
	}
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
// event loop runs and has not been busy with one input for over 2 s).
func Handler(src Source, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{src: src, log: log})
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "carpd"}))
	reg.MustRegister(collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := src.Healthy(); err != nil {
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

// bgpStates are the states of a BGP session (RFC 4271), as status names
// them.
var bgpStates = []string{"idle", "connect", "active", "opensent", "openconfirm", "established"}
