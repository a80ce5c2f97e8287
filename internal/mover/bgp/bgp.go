// Package bgp is carpd's bgp mover: a BGP speaker (GoBGP as a library)
// that announces each address of the vhids this host holds as a host route
// (/32 or /128) with this host as next hop, to the configured peers, and
// withdraws it on release.
//
// One Speaker serves the whole daemon (one BGP identity, one session per
// peer); each vhid gets a Mover from it. The speaker never listens (GoBGP's
// ListenPort -1): it connects to its peers. Graceful restart stays off and
// the hold time is the configured one (at most the etcd lease TTL, which
// internal/config checks), so a peer drops this host's routes when the
// session closes (carpd exits or crashes: the kernel closes the TCP
// connection) or falls silent for the hold time.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// DefaultPort is BGP's TCP port.
const DefaultPort = 179

// Peer is one BGP neighbour.
type Peer struct {
	Address netip.Addr
	AS      uint32
	// Port is the peer's TCP port (DefaultPort when 0).
	Port uint16
	// Password is the TCP MD5 signature key (RFC 2385); "" for none.
	Password string
}

// Config is the speaker's configuration.
type Config struct {
	LocalAS  uint32
	RouterID netip.Addr
	// Hold is the hold time offered to the peers (whole seconds, at least
	// 3 s); Keepalive the interval of keepalives (Hold/3 when 0).
	Hold, Keepalive time.Duration
	Peers           []Peer
	// Log gets the speaker's events and GoBGP's warnings (slog.Default
	// when nil).
	Log *slog.Logger
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.LocalAS == 0 {
		errs = append(errs, errors.New("no local AS"))
	}
	if !c.RouterID.Is4() {
		errs = append(errs, fmt.Errorf("router id %v is not an IPv4 address", c.RouterID))
	}
	if c.Hold < 3*time.Second || c.Hold%time.Second != 0 {
		errs = append(errs, fmt.Errorf("hold time %v: want whole seconds, at least 3 s (RFC 4271)", c.Hold))
	}
	if ka := c.keepalive(); ka < time.Second || ka%time.Second != 0 || ka > c.Hold/3 {
		errs = append(errs, fmt.Errorf("keepalive %v: want whole seconds, at least 1 s and at most a third of the hold time", ka))
	}
	if len(c.Peers) == 0 {
		errs = append(errs, errors.New("no peers"))
	}
	seen := map[netip.Addr]bool{}
	for _, p := range c.Peers {
		switch {
		case !p.Address.IsValid():
			errs = append(errs, errors.New("a peer without address"))
		case seen[p.Address]:
			errs = append(errs, fmt.Errorf("peer %v given twice", p.Address))
		case p.AS == 0:
			errs = append(errs, fmt.Errorf("peer %v: no AS", p.Address))
		}
		seen[p.Address] = true
	}
	return errors.Join(errs...)
}

func (c Config) keepalive() time.Duration {
	if c.Keepalive != 0 {
		return c.Keepalive
	}
	return (c.Hold / 3).Truncate(time.Second)
}

// Speaker is a running BGP speaker. Its methods are safe for concurrent
// use.
type Speaker struct {
	srv *server.BgpServer
	log *slog.Logger
	// stopWatch ends the watch of the sessions' state.
	stopWatch context.CancelFunc

	mu sync.Mutex
	// routes counts the holders of each announced host route (two vhids
	// may name one address).
	routes map[netip.Prefix]int
	closed bool
}

// Start starts a speaker that connects to cfg's peers; ctx bounds the
// start only.
func Start(ctx context.Context, cfg Config) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	srv := server.NewBgpServer(server.LoggerOption(log.With("component", "gobgp"), lvl))
	go srv.Serve()
	s := &Speaker{srv: srv, log: log, routes: map[netip.Prefix]int{}}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.LocalAS,
		RouterId:   cfg.RouterID.String(),
		ListenPort: -1, // no listening socket: carpd connects
	}})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("bgp: starting the speaker: %w", err)
	}
	watch, stopWatch := context.WithCancel(context.Background())
	s.stopWatch = stopWatch
	err = srv.WatchEvent(watch, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer())
	for _, p := range cfg.Peers {
		if err != nil {
			break
		}
		err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(cfg, p)})
	}
	if err != nil {
		stopWatch()
		srv.Stop()
		return nil, fmt.Errorf("bgp: %w", err)
	}
	return s, nil
}

// apiPeer is p as GoBGP configures it: the timers, graceful restart off,
// the unicast family of the peer's address.
func apiPeer(cfg Config, p Peer) *api.Peer {
	port := uint32(p.Port)
	if port == 0 {
		port = DefaultPort
	}
	afi := api.Family_AFI_IP
	if p.Address.Is6() {
		afi = api.Family_AFI_IP6
	}
	ka := uint64(cfg.keepalive() / time.Second)
	return &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.AS,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(cfg.Hold / time.Second),
			KeepaliveInterval: ka,
			// Reconnect soon after a reset or a failed connection
			// (GoBGP's defaults: 30 s idle, 120 s between attempts).
			ConnectRetry:           ka,
			IdleHoldTimeAfterReset: 1,
		}},
		Transport:       &api.Transport{RemotePort: port},
		GracefulRestart: &api.GracefulRestart{Enabled: false},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family:  &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST},
			Enabled: true,
		}}},
	}
}

// peerEvent logs the sessions' state changes.
func (s *Speaker) peerEvent(e *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if e.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := e.Peer.State
	s.log.Info("bgp: peer session", "peer", st.NeighborAddress, "as", st.PeerASN, "state", st.SessionState.String())
}

// HostRoute is the host route (/32 or /128) of p's address.
func HostRoute(p netip.Prefix) netip.Prefix {
	a := p.Addr().Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// Announce announces the host routes of ps, next hop self. A route already
// announced gets one more holder (Withdraw takes it back).
func (s *Speaker) Announce(ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp: speaker closed")
	}
	var add []*apiutil.Path
	for _, p := range ps {
		r := HostRoute(p)
		if s.routes[r] == 0 {
			path, err := hostPath(r)
			if err != nil {
				return err
			}
			add = append(add, path)
		}
	}
	if len(add) > 0 {
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
			return fmt.Errorf("bgp: announcing %v: %w", ps, err)
		}
	}
	for _, p := range ps {
		s.routes[HostRoute(p)]++
	}
	return nil
}

// Withdraw takes back one holder of the host routes of ps, withdrawing
// each route that has none left. Routes not announced are skipped.
func (s *Speaker) Withdraw(ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil // the sessions are closed: nothing is announced
	}
	var del []*apiutil.Path
	for _, p := range ps {
		r := HostRoute(p)
		switch s.routes[r] {
		case 0:
			continue
		case 1:
			path, err := hostPath(r)
			if err != nil {
				return err
			}
			del = append(del, path)
		}
		s.routes[r]--
		if s.routes[r] == 0 {
			delete(s.routes, r)
		}
	}
	if len(del) == 0 {
		return nil
	}
	before := s.sentUpdates()
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
		return fmt.Errorf("bgp: withdrawing %v: %w", ps, err)
	}
	s.awaitSent(before)
	return nil
}

// WithdrawFlush bounds how long Withdraw waits for its UPDATE to be
// written to each established session.
const WithdrawFlush = 100 * time.Millisecond

// sentUpdates returns the UPDATE messages written so far to each
// established session, by peer address.
func (s *Speaker) sentUpdates() map[string]uint64 {
	n := map[string]uint64{}
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil || p.State.SessionState != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		var sent uint64
		if p.State.Messages != nil && p.State.Messages.Sent != nil {
			sent = p.State.Messages.Sent.Update
		}
		n[p.Conf.NeighborAddress] = sent
	})
	return n
}

// awaitSent waits, at most WithdrawFlush, until every session of before
// that is still established has had an UPDATE written after before was
// read. GoBGP's DeletePath returns once the withdrawal is queued for the
// sessions; their writer goroutines send it later (with carpd's one
// processor, after the loop has moved on: a planned stop's bow-out advert
// left before the withdrawal, the successor announced, and the router
// had two paths for a few milliseconds). GoBGP counts a message sent once
// it is written.
func (s *Speaker) awaitSent(before map[string]uint64) {
	deadline := time.Now().Add(WithdrawFlush)
	for len(before) > 0 && time.Now().Before(deadline) {
		now := s.sentUpdates()
		for peer, n := range before {
			if m, up := now[peer]; !up || m > n {
				delete(before, peer)
			}
		}
		if len(before) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// hostPath is the path of host route r with next hop self: GoBGP puts the
// session's local address in place of the unspecified next hop.
func hostPath(r netip.Prefix) (*apiutil.Path, error) {
	nlri, err := bgppkt.NewIPAddrPrefix(r)
	if err != nil {
		return nil, fmt.Errorf("bgp: route %v: %w", r, err)
	}
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgppkt.RF_IPv4_UC
	if r.Addr().Is4() {
		nh, err := bgppkt.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		family = bgppkt.RF_IPv6_UC
		mp, err := bgppkt.NewPathAttributeMpReachNLRI(family, []bgppkt.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// Announced returns the host routes announced, sorted.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := slices.Collect(maps.Keys(s.routes))
	slices.SortFunc(rs, netip.Prefix.Compare)
	return rs
}

// PeerStatus is one session as GoBGP reports it.
type PeerStatus struct {
	Address netip.Addr
	AS      uint32
	// State is the session's state: "established", "active", "idle", ...
	State string
	// Up says that the session is established.
	Up bool
	// Advertised counts the routes sent to the peer and not withdrawn.
	Advertised uint64
}

// Status is the speaker's state for carpctl status and the metrics.
type Status struct {
	Peers []PeerStatus
	// PeersUp counts the established sessions.
	PeersUp int
	// Routes are the host routes announced.
	Routes []netip.Prefix
}

// Status returns the sessions' state and the routes announced.
func (s *Speaker) Status(ctx context.Context) (Status, error) {
	st := Status{Routes: s.Announced()}
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		ps := PeerStatus{}
		if p.Conf != nil {
			ps.Address, _ = netip.ParseAddr(p.Conf.NeighborAddress)
			ps.AS = p.Conf.PeerAsn
		}
		if p.State != nil {
			ps.State = sessionState(p.State.SessionState)
			ps.Up = p.State.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				ps.Advertised += af.State.Advertised
			}
		}
		if ps.Up {
			st.PeersUp++
		}
		st.Peers = append(st.Peers, ps)
	})
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return st, err
}

// sessionState names a session state as RFC 4271 does, in lower case.
func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Close closes the sessions (a NOTIFICATION Cease to each established
// peer, which withdraws every route) and stops the speaker.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	clear(s.routes)
	s.stopWatch()
	s.srv.Stop()
	return nil
}
