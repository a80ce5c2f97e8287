package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/elect"
)

// This file is what an operator changes: the sources of the demotion,
// forced states and the log level. What the operator sees is status.go,
// the event stream events.go, the persistent maintenance demotion
// persist.go. Every call goes through the event loop (do), and returns
// once the snapshot that shows what it changed is published (snapshot.go).

// demotionKey names one source of demotion.
type demotionKey struct {
	source string
	v      *vhost // for the sources of a vhid
}

type demotionEntry struct {
	delta  int
	reason string
	since  time.Time
}

// The operator's demotion sources.
const (
	sourceOperator   = "operator"
	sourcePersistent = "operator (persistent)"
)

// ErrUnknownVHID is returned for a vhid that is not configured.
var ErrUnknownVHID = errors.New("no such vhid")

// ErrBadRequest wraps the errors of a request that makes no sense.
var ErrBadRequest = errors.New("bad request")

// Force forces a vhid's state (FreeBSD's `ifconfig ... state master`):
// not sticky, the protocol corrects it. iface may be "" when the vhid is
// on one interface only.
func (d *Daemon) Force(ctx context.Context, vhid int, iface, state string) (api.Status, error) {
	var st api.Status
	var ferr error
	var s carp.State
	switch state {
	case "master":
		s = carp.Master
	case "backup":
		s = carp.Backup
	default:
		return st, fmt.Errorf("%w: state must be master or backup, not %q", ErrBadRequest, state)
	}
	err := d.do(ctx, func(now time.Time) {
		vs, err := d.find(vhid, iface)
		if err != nil {
			ferr = err
			return
		}
		for _, v := range vs {
			v.log.Info("carp: forced state requested", "state", state)
			d.step(now, v, elect.Force{State: s})
		}
		st = d.status(now)
	})
	return st, errors.Join(err, ferr)
}

// find returns the vhid on iface, or the only one with that number: one
// vhost, or a VRRP vhid's instances (one per family).
func (d *Daemon) find(vhid int, iface string) ([]*vhost, error) {
	var found []*vhost
	for _, v := range d.vhosts {
		if int(v.cfg.VHID) == vhid && (iface == "" || v.cfg.Interface == iface) {
			found = append(found, v)
		}
	}
	oneIface := len(found) > 0
	for _, v := range found {
		oneIface = oneIface && v.cfg.Interface == found[0].cfg.Interface
	}
	switch {
	case oneIface:
		return found, nil
	case len(found) == 0 && iface != "":
		return nil, fmt.Errorf("%w %d on %s", ErrUnknownVHID, vhid, iface)
	case len(found) == 0:
		return nil, fmt.Errorf("%w %d", ErrUnknownVHID, vhid)
	}
	var names []string
	for _, v := range found {
		names = append(names, fmt.Sprintf("%d@%s", vhid, v.cfg.Interface))
	}
	return nil, fmt.Errorf("%w: vhid %d is on several interfaces: say which (%s)", ErrBadRequest, vhid, strings.Join(names, ", "))
}

// DemoteOperator changes the operator's demotion: adds req.Delta (to the
// persistent maintenance demotion with req.Persist, which the state file
// keeps across restarts), or clears both with req.Clear.
func (d *Daemon) DemoteOperator(ctx context.Context, req api.DemoteRequest) (api.Status, error) {
	var st api.Status
	var derr error
	if req.Clear && req.Delta != 0 {
		return st, fmt.Errorf("%w: give a demotion or clear, not both", ErrBadRequest)
	}
	if !req.Clear && req.Delta == 0 {
		return st, fmt.Errorf("%w: a demotion of 0 changes nothing", ErrBadRequest)
	}
	if req.Delta > 1000 || req.Delta < -1000 {
		return st, fmt.Errorf("%w: demotion %+d out of range -1000..1000", ErrBadRequest, req.Delta)
	}
	err := d.do(ctx, func(now time.Time) {
		if req.Clear {
			for _, src := range []string{sourceOperator, sourcePersistent} {
				if e := d.demotions[demotionKey{source: src}]; e != nil {
					d.adjustDemotion(now, -e.delta, "cleared by the operator", src, nil)
				}
			}
			derr = d.savePersistent()
			st = d.status(now)
			return
		}
		src := sourceOperator
		if req.Persist {
			src = sourcePersistent
		}
		reason := req.Reason
		if reason == "" {
			reason = "operator"
		}
		d.adjustDemotion(now, req.Delta, reason, src, nil)
		if req.Persist {
			derr = d.savePersistent()
		}
		st = d.status(now)
	})
	return st, errors.Join(err, derr)
}

// SetLogLevel sets the log level ("debug", "info", "warn", "error").
func (d *Daemon) SetLogLevel(ctx context.Context, level string) error {
	if d.level == nil {
		return errors.New("the log level cannot be changed")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("%w: log level %q: want debug, info, warn or error", ErrBadRequest, level)
	}
	return d.do(ctx, func(time.Time) {
		d.level.Set(l)
		d.log.Warn("carpd: log level set", "level", strings.ToLower(l.String()))
	})
}
