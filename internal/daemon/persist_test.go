package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/statefile"
)

// persistDaemon returns a daemon (not running) with the state file path and
// a persistent demotion of 240, for savePersistent.
func persistDaemon(t *testing.T, path string) *Daemon {
	t.Helper()
	d, err := New(testConfig(), newFakeHost().host(), Options{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	d.adjustDemotion(time.Unix(1e9, 0), 240, "patching", sourcePersistent, nil)
	return d
}

// TestPersistentDemotionSaved: savePersistent writes the persistent
// demotion to the state file (its writing is internal/statefile's) and
// removes the file once the demotion is cleared.
func TestPersistentDemotionSaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := persistDaemon(t, path).savePersistent(); err != nil {
		t.Fatal(err)
	}
	if ps, err := statefile.Read(path); err != nil || ps.Demotion != 240 || ps.Reason != "patching" || !ps.Since.Equal(time.Unix(1e9, 0)) {
		t.Errorf("state file: %+v, %v", ps, err)
	}
	d := persistDaemon(t, path)
	d.adjustDemotion(time.Unix(1e9, 0), -240, "cleared", sourcePersistent, nil)
	if err := d.savePersistent(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the clear: %v, want no state file", err)
	}
}

// TestStateFileCorrupt: a state file carpd cannot read (empty, as a crash
// in the middle of a write left it before the writes were synced;
// truncated; another version; not a file) stops the start with an error
// that names the file, what is wrong and the recovery.
func TestStateFileCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty", "", "is empty"},
		{"blank", "\n", "is empty"},
		{"truncated", `{"version":1,"demotion":2`, "is corrupt (unexpected end of JSON input)"},
		{"version", `{"version":7,"demotion":240}`, "has version 7, not 1"},
		{"directory", "", "cannot be read (is a directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			var err error
			if tc.name == "directory" {
				err = os.Mkdir(path, 0o755)
			} else {
				err = os.WriteFile(path, []byte(tc.content), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(testConfig(), newFakeHost().host(), Options{StateFile: path})
			if err != nil {
				t.Fatal(err)
			}
			err = d.loadPersistent(time.Now())
			if !errors.Is(err, ErrStateFile) {
				t.Fatalf("loadPersistent = %v, want ErrStateFile", err)
			}
			msg := err.Error()
			for _, want := range []string{"state file " + path + " " + tc.want + ";", "remove the file", "carpctl demote +N --persist", "carpd(8)"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}
