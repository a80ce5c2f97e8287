package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/elect"
)

// This file applies the health checks' results (internal/checks runs
// them): a failing check demotes the host (no vhids) or its vhids by its
// weight, or releases its vhids (elect.Release) while it fails.
//
// FreeBSD's demotion is one number for the host. A check of the whole
// host adds to it, as the interface and send-error demotions do; a check
// of some vhids adds to their advertised advskew alone.

// checkState is a check as the daemon knows it.
type checkState struct {
	cfg      config.Check
	up       bool
	demotion int // applied while failing
	since    time.Time
	detail   string
}

// checkIn is a change of a check's state.
type checkIn struct {
	name     string
	up       bool
	demotion int
	detail   string
}

func (checkIn) isInput() {}

// CheckChanged reports a change of a check's state (internal/checks'
// Report). It waits for the loop, and returns at once after Run or when
// ctx is done (the check stopped: the change is dropped).
func (d *Daemon) CheckChanged(ctx context.Context, name string, up bool, demotion int, detail string) {
	select {
	case d.checkResults <- checkIn{name, up, demotion, detail}:
	case <-d.stopped:
	case <-ctx.Done():
	}
}

// demotionOf is the demotion a vhid advertises with: the host's, and its
// failing checks'.
func (d *Daemon) demotionOf(v *vhost) int { return d.demotion + v.checkDemotion }

// setChecks takes the checks of a configuration: those unchanged keep
// their state; a removed or changed one that was failing gives back what
// it took.
func (d *Daemon) setChecks(now time.Time, checks []config.Check) {
	want := map[string]config.Check{}
	for _, c := range checks {
		want[c.Name] = c
	}
	for name, cs := range d.checks {
		if c, ok := want[name]; ok && c.Same(cs.cfg) {
			continue
		}
		if !cs.up {
			d.applyCheck(now, cs, true, 0, "removed")
		}
		delete(d.checks, name)
	}
	for name, c := range want {
		if _, ok := d.checks[name]; !ok {
			d.checks[name] = &checkState{cfg: c, up: true, since: now}
		}
	}
}

// checkChanged applies a check's new state.
func (d *Daemon) checkChanged(now time.Time, in checkIn) {
	cs := d.checks[in.name]
	if cs == nil {
		return // removed by a reload meanwhile
	}
	d.applyCheck(now, cs, in.up, in.demotion, in.detail)
}

// applyCheck moves a check to up (or failing with demotion, for file
// checks without weight) and does what that means.
func (d *Daemon) applyCheck(now time.Time, cs *checkState, up bool, demotion int, detail string) {
	c := cs.cfg
	newDemotion := 0
	if !up && !c.Release {
		newDemotion = c.Weight
		if c.Weight == 0 {
			newDemotion = demotion
		}
	}
	delta := newDemotion - cs.demotion
	wasUp := cs.up
	if up != cs.up {
		cs.since = now
	}
	cs.up, cs.demotion, cs.detail = up, newDemotion, detail
	if wasUp != up {
		state := "up"
		if !up {
			state = "failing"
		}
		d.emit(now, api.Event{Type: "check", Source: c.Name, State: state, Reason: detail})
	}
	source := "check " + c.Name
	if delta != 0 {
		if len(c.VHIDs) == 0 {
			d.adjustDemotion(now, delta, detailOr(detail, "check up"), source, nil)
		} else {
			for _, v := range d.vhosts {
				if c.Matches(v.cfg.VHID, v.cfg.Interface) {
					v.checkDemotion += delta
					v.log.Info(fmt.Sprintf("carp: demoted by %d to %d (%s: %s)", delta, d.demotionOf(v), source, detailOr(detail, "up")),
						"delta", delta, "demotion", d.demotionOf(v), "source", source)
					d.step(now, v, elect.SetDemotion{Demotion: d.demotionOf(v)})
				}
			}
		}
	}
	if c.Release && wasUp != up {
		for _, v := range d.vhosts {
			if !c.Matches(v.cfg.VHID, v.cfg.Interface) {
				continue
			}
			if up {
				v.releases--
			} else {
				v.releases++
			}
			if (v.releases == 0) == up && (v.releases == 0 || v.releases == 1) {
				on := v.releases > 0
				v.log.Info("carpd: vhid released by a check", "check", c.Name, "released", on)
				d.step(now, v, elect.Release{On: on})
			}
		}
	}
}

func detailOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkStatus lists the checks for the status.
func (d *Daemon) checkStatus() []api.Check {
	out := []api.Check{}
	for _, cs := range d.checks {
		c := cs.cfg
		ac := api.Check{Name: c.Name, Kind: c.Kind, Target: c.Target, Up: cs.up, Since: cs.since,
			Detail: cs.detail, Weight: c.Weight, Demotion: cs.demotion}
		if c.Release {
			ac.Action = "release"
		} else {
			ac.Action = "demote"
		}
		for _, cv := range c.VHIDs {
			if cv.Interface != "" {
				ac.VHIDs = append(ac.VHIDs, fmt.Sprintf("%d@%s", cv.VHID, cv.Interface))
			} else {
				ac.VHIDs = append(ac.VHIDs, fmt.Sprint(cv.VHID))
			}
		}
		out = append(out, ac)
	}
	slices.SortFunc(out, func(a, b api.Check) int { return strings.Compare(a.Name, b.Name) })
	return out
}
