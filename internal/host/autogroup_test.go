package host

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// TestMain runs prioritize in a child process when asked to (the test
// re-executes itself: prioritize changes the process's scheduling, which
// the test process must not).
func TestMain(m *testing.M) {
	if os.Getenv("CARPD_TEST_PRIORITIZE") == "1" {
		if f := os.Getenv("CARPD_TEST_AUTOGROUP_FILE"); f != "" {
			autogroupSelf = f
		}
		runtime.LockOSThread()
		err := prioritize()
		nice, nerr := autogroupNice()
		fmt.Printf("err=%v nice=%d nerr=%v\n", err, nice, nerr)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// prioritizeIn runs prioritize in a child, in a session of its own or
// not, and returns what it printed.
func prioritizeIn(t *testing.T, setsid bool, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "CARPD_TEST_PRIORITIZE=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPrioritizeAutogroup: carpd leading its session (as a systemd
// service does) raises its autogroup to LoopNice, so that the loop
// thread's nice value also counts against other sessions; carpd started
// from a shell leaves the shell's session's group as it is. A process in
// no autogroup (the kernel's default group, where the CI machine runs its
// jobs) reads errNoAutogroup, and prioritize does not touch it.
func TestPrioritizeAutogroup(t *testing.T) {
	needAutogroups(t)
	before, beforeErr := autogroupNice()
	if beforeErr != nil && !errors.Is(beforeErr, errNoAutogroup) {
		t.Fatal(beforeErr)
	}
	want := fmt.Sprintf("err=<nil> nice=%d nerr=<nil>", LoopNice)
	// setsid(2) gives the child an autogroup of its own whenever the
	// kernel has autogroups (needAutogroups): it is never left in the
	// default group, so anything but LoopNice there is a failure.
	if got := prioritizeIn(t, true); got != want {
		t.Errorf("leading its session: %q, want %q", got, want)
	}
	if got, want := prioritizeIn(t, false), fmt.Sprintf("err=<nil> nice=%d nerr=%v", before, beforeErr); got != want {
		t.Errorf("in the test's session: %q, want %q (the session's group left alone)", got, want)
	}
	if after, err := autogroupNice(); after != before || fmt.Sprint(err) != fmt.Sprint(beforeErr) {
		t.Errorf("the test's own autogroup: nice %d (%v), was %d (%v)", after, err, before, beforeErr)
	}
}

// TestPrioritizeNoAutogroup: leading its session but shown no autogroup
// (an empty file, as the kernel shows for its default group), prioritize
// neither fails nor writes a nice value there.
func TestPrioritizeNoAutogroup(t *testing.T) {
	needAutogroups(t)
	empty := filepath.Join(t.TempDir(), "autogroup")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := prioritizeIn(t, true, "CARPD_TEST_AUTOGROUP_FILE="+empty)
	if !strings.HasPrefix(got, "err=<nil> nice=0 nerr=") || !strings.Contains(got, errNoAutogroup.Error()) {
		t.Errorf("child: %q, want no error and errNoAutogroup", got)
	}
	if data, err := os.ReadFile(empty); err != nil || len(data) != 0 {
		t.Errorf("the empty autogroup file now holds %q (%v): prioritize wrote to it", data, err)
	}
}

// needAutogroups: the test needs root (CAP_SYS_NICE) and a kernel with
// autogroups (Debian's have them on); a failure with CI set
// (labtest.Missing).
func needAutogroups(t *testing.T) {
	t.Helper()
	labtest.RequireRoot(t)
	on, err := os.ReadFile(autogroupEnabled)
	if err != nil || strings.TrimSpace(string(on)) != "1" {
		labtest.Missing(t, "the kernel has no autogroups here (%s: %q, %v)", autogroupEnabled, on, err)
	}
}
