package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// This file is the persistent maintenance demotion: the state file.

// persistentState is the state file's document.
type persistentState struct {
	Version  int       `json:"version"`
	Demotion int       `json:"demotion"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
}

// loadPersistent applies the persistent demotion of the state file, if
// there is one. A state file that cannot be read is an error: a host in
// maintenance must not come up undemoted.
func (d *Daemon) loadPersistent(now time.Time) error {
	if d.stateFile == "" {
		return nil
	}
	data, err := os.ReadFile(d.stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	var ps persistentState
	if err := json.Unmarshal(data, &ps); err != nil {
		return fmt.Errorf("state file %s: %w (fix it or remove it to clear the maintenance demotion)", d.stateFile, err)
	}
	if ps.Demotion != 0 {
		d.adjustDemotion(now, ps.Demotion, ps.Reason, sourcePersistent, nil)
		d.demotions[demotionKey{source: sourcePersistent}].since = ps.Since
	}
	return nil
}

// savePersistent writes the persistent demotion to the state file
// (atomically: a new file renamed over the old), or removes the file when
// there is none.
func (d *Daemon) savePersistent() error {
	if d.stateFile == "" {
		return errors.New("no state file configured: the demotion lasts until carpd stops")
	}
	e := d.demotions[demotionKey{source: sourcePersistent}]
	if e == nil {
		if err := os.Remove(d.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state file: %w", err)
		}
		return nil
	}
	data, err := json.Marshal(persistentState{Version: 1, Demotion: e.delta, Reason: e.reason, Since: e.since})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.stateFile), 0o755); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := d.stateFile + ".new"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, d.stateFile); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
