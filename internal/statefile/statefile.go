// Package statefile keeps carpd's state file: the operator's persistent
// (maintenance) demotion, written crash-safely (write, fsync, rename,
// fsync the directory) so that after a crash or a power cut the file
// holds the old document or the new one, never a part of one; and read
// with a clear error, naming the recovery, when it cannot be.
package statefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// State is the state file's document.
type State struct {
	Version  int       `json:"version"`
	Demotion int       `json:"demotion"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
}

// Version is the state document's version.
const Version = 1

// ErrStateFile marks a state file carpd cannot read at start: carpd
// refuses to start (carpd exits 78, EX_CONFIG) rather than come up
// undemoted on a host the operator put in maintenance. The message names
// the file and the recovery (carpd(8), TROUBLESHOOTING).
var ErrStateFile = errors.New("state file")

// recovery is what the operator does about a state file carpd cannot
// read.
const recovery = "carpd keeps the operator's maintenance demotion there and does not start without knowing it; " +
	"if the host should stay demoted, remove the file, start carpd and run `carpctl demote +N --persist` again; " +
	"if not, remove the file and start carpd (see carpd(8), TROUBLESHOOTING)"

// Read reads the state file at path: the zero document when there is
// none, an error wrapping ErrStateFile when it cannot be read or is not
// a state document (empty, truncated, another version).
func Read(path string) (State, error) {
	var ps State
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ps, nil
	}
	if err != nil {
		return ps, fmt.Errorf("%w %s cannot be read (%v); %s", ErrStateFile, path, unwrapPath(err), recovery)
	}
	problem := ""
	if len(bytes.TrimSpace(data)) == 0 {
		problem = "is empty"
	} else if err := json.Unmarshal(data, &ps); err != nil {
		problem = fmt.Sprintf("is corrupt (%v)", err)
	} else if ps.Version != Version {
		problem = fmt.Sprintf("has version %d, not %d", ps.Version, Version)
	}
	if problem != "" {
		return State{}, fmt.Errorf("%w %s %s; %s", ErrStateFile, path, problem, recovery)
	}
	return ps, nil
}

// unwrapPath drops the path of an *os.PathError (the message names it).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Write writes s (its Version set) to the state file at path, or removes
// the file when s is nil, crash-safely (writeFileSynced, removeSynced).
// Its errors start with "state file".
func Write(path string, s *State) error {
	if s == nil {
		if err := removeSynced(path); err != nil {
			return fmt.Errorf("state file: %w", err)
		}
		return nil
	}
	doc := *s
	doc.Version = Version
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := writeFileSynced(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// syncFile is (*os.File).Sync; tests replace it to see the order of the
// syncs or to make one fail.
var syncFile = (*os.File).Sync

// writeFileSynced replaces path with data: written to path.new in the same
// directory, synced, renamed over path, and the directory synced, so that
// the rename itself is on the disk. On an error path is unchanged and the
// temporary file removed.
func writeFileSynced(path string, data []byte, perm os.FileMode) (err error) {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeSynced removes path (none is no error) and syncs its directory.
func removeSynced(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir syncs a directory: its entries (a rename, a removal) reach the
// disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = syncFile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
