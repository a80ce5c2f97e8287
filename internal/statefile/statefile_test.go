package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStateFileSynced: the state file is written to a temporary file that
// is synced before it is renamed over the old one, and the directory is
// synced after the rename; a crash at any point leaves the old document
// or the new one, never an empty or partial file.
func TestStateFileSynced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var synced []string
	old := syncFile
	t.Cleanup(func() { syncFile = old })
	syncFile = func(f *os.File) error {
		data, _ := os.ReadFile(path)
		synced = append(synced, f.Name()+" with "+strings.TrimSpace(string(data)))
		return f.Sync()
	}
	if err := Write(path, &State{Demotion: 240, Reason: "patching", Since: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := []string{path + ".new with old", dir + " with " + strings.TrimSpace(string(data))}
	if strings.Join(synced, "\n") != strings.Join(want, "\n") {
		t.Errorf("synced:\n%s\nwant (the new file before the rename, the directory after):\n%s", strings.Join(synced, "\n"), strings.Join(want, "\n"))
	}
	if ps, err := Read(path); err != nil || ps.Demotion != 240 || ps.Reason != "patching" {
		t.Errorf("state file %q: %+v, %v", data, ps, err)
	}

	// A cleared demotion: the file removed, the directory synced.
	synced = nil
	if err := Write(path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) || len(synced) != 1 || !strings.HasPrefix(synced[0], dir+" with") {
		t.Errorf("after the clear: %v, synced %q", err, synced)
	}
}

// TestStateFileWriteFaults: a write that fails (the directory cannot be
// made, the rename fails, the sync fails) is an error, leaves the old file
// as it was and no temporary file behind.
func TestStateFileWriteFaults(t *testing.T) {
	old := syncFile
	t.Cleanup(func() { syncFile = old })
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the state file's path
	}{
		{"directory cannot be made", func(t *testing.T, dir string) string {
			notDir := filepath.Join(dir, "file")
			if err := os.WriteFile(notDir, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(notDir, "state.json")
		}},
		{"rename fails", func(t *testing.T, dir string) string {
			// A directory with an entry cannot be renamed over.
			path := filepath.Join(dir, "state.json")
			if err := os.MkdirAll(filepath.Join(path, "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			return path
		}},
		{"sync fails", func(t *testing.T, dir string) string {
			syncFile = func(*os.File) error { return errors.New("EIO, say") }
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			syncFile = old
			dir := t.TempDir()
			path := tc.setup(t, dir)
			before, _ := os.ReadFile(path)
			err := Write(path, &State{Demotion: 240, Reason: "patching", Since: time.Unix(1e9, 0)})
			if err == nil || !strings.Contains(err.Error(), "state file") {
				t.Errorf("Write = %v, want a state file error", err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("the state file changed: %q -> %q", before, after)
			}
			if _, err := os.Lstat(path + ".new"); err == nil {
				t.Errorf("temporary file %s.new left behind", path)
			}
		})
	}
}
