package daemon

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// This file holds what ucarp's signals do (carpd(8), SIGNALS), run in the
// event loop like every other input.

// giveUpHold is how long a vhid that gave up MASTER on SIGUSR2 waits
// before it may take over again: ucarp 1.5.2 sleeps 3 seconds after
// "Caught signal (USR2) considering going down", then listens for
// adverts as usual, so that another host takes over meanwhile.
var giveUpHold = 3 * time.Second

// LogStatus logs every vhid's state at info, one line each: ucarp's
// SIGUSR1 ("MASTER on eth0 id 1").
func (d *Daemon) LogStatus(ctx context.Context) error {
	return d.do(ctx, func(now time.Time) {
		for _, v := range d.vhosts {
			args := []any{"state", v.state().String(), "demotion", d.demotionOf(v), "addresses", strings.Join(v.addrStrings(), " ")}
			if v.vm != nil {
				args = append(args, "family", afName(v.fam))
			}
			v.log.Info("carpd: status (SIGUSR1)", args...)
		}
	})
}

// GiveUpMaster makes every MASTER vhid BACKUP, as ucarp does on SIGUSR2:
// its addresses go and its down hooks run at once (a forced state, as
// `carpctl state VHID backup`), and it does not take over again for
// giveUpHold (released meanwhile), after which the protocol decides as
// usual: with no other master it becomes MASTER again. It returns how
// many vhids gave up.
func (d *Daemon) GiveUpMaster(ctx context.Context) (int, error) {
	var given []*vhost
	err := d.do(ctx, func(now time.Time) {
		for _, v := range d.vhosts {
			if v.state() != carp.Master || v.removing {
				continue
			}
			v.log.Info("carpd: caught SIGUSR2; giving up MASTER", "hold", giveUpHold)
			d.step(now, v, carp.Force{State: carp.Backup})
			v.releases++
			if v.releases == 1 {
				d.step(now, v, carp.Release{On: true})
			}
			given = append(given, v)
		}
	})
	if err != nil || len(given) == 0 {
		return len(given), err
	}
	time.AfterFunc(giveUpHold, func() {
		_ = d.do(context.Background(), func(now time.Time) {
			for _, v := range given {
				if !slices.Contains(d.vhosts, v) {
					continue // removed by a reload meanwhile
				}
				v.releases--
				if v.releases == 0 {
					v.log.Info("carpd: SIGUSR2's hold is over")
					d.step(now, v, carp.Release{On: false})
				}
			}
		})
	})
	return len(given), nil
}
