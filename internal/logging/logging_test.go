package logging

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// devIno returns f's "DEV:INODE", as systemd puts it in JOURNAL_STREAM.
func devIno(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// logTo logs a debug line, an info line (with attributes, a group and a
// multi-line value), a warning and an error through NewHandler writing to
// a temporary file, and returns the lines written. journalStream is
// JOURNAL_STREAM, or "self" for the file's own.
func logTo(t *testing.T, journalStream string) []string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if journalStream == "self" {
		journalStream = devIno(t, f)
	}
	t.Setenv("JOURNAL_STREAM", journalStream)
	log := slog.New(NewHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("carpd: debug")
	log.With("vhid", 100).WithGroup("g").Info("carp: state", "to", "MASTER", "why", "two\nlines")
	log.Warn("carpd: reload refused", "err", "bad")
	log.Error("carpd: stopped")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestJournalFormat: with stderr the journal's stream, each line starts
// with its syslog priority and has no time=.
func TestJournalFormat(t *testing.T) {
	lines := logTo(t, "self")
	want := []string{
		`<7>level=DEBUG msg="carpd: debug"`,
		`<6>level=INFO msg="carp: state" vhid=100 g.to=MASTER g.why="two\nlines"`,
		`<4>level=WARN msg="carpd: reload refused" err=bad`,
		`<3>level=ERROR msg="carpd: stopped"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestNotJournal: with JOURNAL_STREAM naming another file, none, or
// garbage, the lines are slog's text format, with their time.
func TestNotJournal(t *testing.T) {
	other, err := os.Create(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	text := regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`)
	for _, js := range []string{devIno(t, other), "", "12"} {
		lines := logTo(t, js)
		if len(lines) != 4 {
			t.Errorf("JOURNAL_STREAM=%q: %d lines: %q", js, len(lines), lines)
		}
		for _, l := range lines {
			if !text.MatchString(l) {
				t.Errorf("JOURNAL_STREAM=%q: line %q, want slog's text format", js, l)
			}
		}
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{
		slog.LevelDebug - 4: 7, slog.LevelDebug: 7, slog.LevelInfo: 6, slog.LevelInfo + 2: 6,
		slog.LevelWarn: 4, slog.LevelError: 3, slog.LevelError + 4: 3,
	} {
		if got := Priority(l); got != want {
			t.Errorf("Priority(%v) = %d, want %d", l, got, want)
		}
	}
}
