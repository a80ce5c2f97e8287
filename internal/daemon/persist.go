package daemon

import (
	"errors"
	"time"

	"github.com/carpd/carpd/internal/statefile"
)

// This file is the persistent maintenance demotion: the state file
// (internal/statefile).

// ErrStateFile marks a state file carpd cannot read at start
// (statefile.ErrStateFile): carpd refuses to start rather than come up
// undemoted on a host the operator put in maintenance.
var ErrStateFile = statefile.ErrStateFile

// loadPersistent applies the persistent demotion of the state file, if
// there is one. A state file that cannot be read is an error: a host in
// maintenance must not come up undemoted.
func (d *Daemon) loadPersistent(now time.Time) error {
	if d.stateFile == "" {
		return nil
	}
	ps, err := statefile.Read(d.stateFile)
	if err != nil {
		return err
	}
	if ps.Demotion != 0 {
		d.adjustDemotion(now, ps.Demotion, ps.Reason, sourcePersistent, nil)
		d.demotions[demotionKey{source: sourcePersistent}].since = ps.Since
	}
	return nil
}

// savePersistent writes the persistent demotion to the state file, or
// removes the file when there is none, crash-safely (statefile.Write).
func (d *Daemon) savePersistent() error {
	if d.stateFile == "" {
		return errors.New("no state file configured: the demotion lasts until carpd stops")
	}
	var ps *statefile.State
	if e := d.demotions[demotionKey{source: sourcePersistent}]; e != nil {
		ps = &statefile.State{Demotion: e.delta, Reason: e.reason, Since: e.since}
	}
	return statefile.Write(d.stateFile, ps)
}
