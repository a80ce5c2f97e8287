package daemon

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/elect"
)

// This file holds what ucarp's signals do (carpd(8), SIGNALS), run in the
// event loop like every other input.

// giveUpHold is ucarp 1.5.2's pause after "Caught signal (USR2)
// considering going down": it sleeps 3 seconds, then listens for adverts
// as usual, so that another host takes over meanwhile.
var giveUpHold = 3 * time.Second

// holdOf is how long v stays released after giving up MASTER: ucarp's
// pause plus v's master-down interval, at least as long as ucarp waits
// before it may take over again (a released vhid's master-down timer
// starts again when it runs out, so that with no other master v takes
// over at its first expiry after the hold).
func holdOf(v *vhost) time.Duration {
	return giveUpHold + v.el.MasterDownInterval()
}

// LogStatus logs every vhid's state at info, one line each: ucarp's
// SIGUSR1 ("MASTER on eth0 id 1").
func (d *Daemon) LogStatus(ctx context.Context) error {
	return d.do(ctx, func(now time.Time) {
		for _, v := range d.vhosts {
			args := []any{"state", v.state().String(), "demotion", d.demotionOf(v), "addresses", strings.Join(v.addrStrings(), " ")}
			if af := v.el.Family(); af != "" {
				args = append(args, "family", af)
			}
			v.log.Info("carpd: status (SIGUSR1)", args...)
		}
	})
}

// GiveUpMaster makes every MASTER vhid BACKUP, as ucarp does on SIGUSR2:
// its addresses go and its down hooks run at once (a forced state, as
// `carpctl state VHID backup`), and it does not take over again for
// holdOf (released meanwhile), after which the protocol decides as
// usual: with no other master it becomes MASTER again. It returns how
// many vhids gave up.
func (d *Daemon) GiveUpMaster(ctx context.Context) (int, error) {
	var given []*vhost
	err := d.do(ctx, func(now time.Time) {
		for _, v := range d.vhosts {
			if v.state() != elect.Master || v.removing {
				continue
			}
			hold := holdOf(v)
			v.log.Info("carpd: caught SIGUSR2; giving up MASTER", "hold", hold)
			d.step(now, v, elect.Force{State: elect.Backup})
			v.releases++
			if v.releases == 1 {
				d.step(now, v, elect.Release{On: true})
			}
			given = append(given, v)
			time.AfterFunc(hold, func() { d.endHold(v) })
		}
	})
	return len(given), err
}

// endHold ends the hold of v after SIGUSR2.
func (d *Daemon) endHold(v *vhost) {
	_ = d.do(context.Background(), func(now time.Time) {
		if !slices.Contains(d.vhosts, v) {
			return // removed by a reload meanwhile
		}
		v.releases--
		if v.releases == 0 {
			v.log.Info("carpd: SIGUSR2's hold is over")
			d.step(now, v, elect.Release{On: false})
		}
	})
}
