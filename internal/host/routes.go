package host

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/mover"
	"github.com/carpd/carpd/internal/mover/bgp"
)

// routes is the bgp mover's speaker as the daemon uses it (daemon.Routes).
type routes struct {
	sp  *bgp.Speaker
	cfg *config.BGP
	log *slog.Logger
}

// usesBGP says whether some vhid of cfg has mover = "bgp".
func usesBGP(cfg *config.Config) bool {
	for _, v := range cfg.VHIDs {
		if v.MoverOf() == config.MoverBGP {
			return true
		}
	}
	return false
}

// startRoutes starts the speaker of cfg's [bgp] table; it and the movers
// log through log.
func startRoutes(ctx context.Context, cfg *config.BGP, log *slog.Logger) (*routes, error) {
	c := bgp.Config{LocalAS: cfg.LocalAS, RouterID: cfg.RouterID, Hold: cfg.Hold, Keepalive: cfg.Keepalive, Log: log}
	for _, p := range cfg.Peers {
		c.Peers = append(c.Peers, bgp.Peer{Address: p.Address, AS: p.AS, Port: p.Port, Password: p.Password})
	}
	sp, err := bgp.Start(ctx, c)
	if err != nil {
		return nil, err
	}
	return &routes{sp: sp, cfg: cfg, log: log}, nil
}

// Mover returns the routes-only mover of a vhid: the loop keeps its
// addresses on the interface.
func (r *routes) Mover(prefixes []netip.Prefix) mover.Mover {
	return &bgp.Mover{Speaker: r.sp, Prefixes: prefixes, Log: r.log}
}

func (r *routes) Config() *config.BGP { return r.cfg }

func (r *routes) Status(ctx context.Context) (daemon.RoutesStatus, error) {
	st, err := r.sp.Status(ctx)
	out := daemon.RoutesStatus{Routes: st.Routes}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, daemon.PeerStatus{Address: p.Address, AS: p.AS, State: p.State, Up: p.Up, Advertised: p.Advertised})
	}
	return out, err
}
