package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJournalLogFormat: carpd whose stderr is the stream JOURNAL_STREAM
// names (as systemd sets it) writes each line with its syslog priority
// first and without time=: the warning `carpctl log-level` logs starts
// with <4>. The backup, with a plain stderr, logs slog's text format.
func TestJournalLogFormat(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	stream := filepath.Join(c.dir, "journal-stream")
	// JOURNAL_STREAM is the device and inode of the file stderr is.
	wrap := []string{"sh", "-c", `f=$0; exec 2>>"$f"; JOURNAL_STREAM=$(stat -c %d:%i "$f") exec "$@"`, stream}
	c.startWrapped(c.master, wrap, "--rc-conf", c.rcPath(c.master))
	bp := c.startCarpd(c.backup, "--rc-conf", c.rcPath(c.backup))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	for _, h := range []string{"master", "backup"} {
		host := c.master
		if h == "backup" {
			host = c.backup
		}
		if out, errOut, code := c.carpctl(host, "log-level", "info"); code != 0 {
			t.Fatalf("log-level on %s: exit %d %s %s", h, code, out, errOut)
		}
	}
	var lines []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(stream)
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if strings.Contains(string(data), "log level set") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	prio := regexp.MustCompile(`^<[3467]>level=(DEBUG|INFO|WARN|ERROR) msg=`)
	warned := false
	for _, l := range lines {
		if !prio.MatchString(l) || strings.Contains(l, "time=") {
			t.Errorf("journal line %q: want <N>level=... msg=... without time=", l)
		}
		if strings.HasPrefix(l, `<4>level=WARN msg="carpd: log level set"`) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no <4> line for the log level's warning in:\n%s", strings.Join(lines, "\n"))
	}
	if !regexp.MustCompile(`(?m)^time=\S+ level=WARN msg="carpd: log level set"`).MatchString(bp.Output()) {
		t.Errorf("the backup's stderr (not the journal):\n%s", bp.Output())
	}
}
