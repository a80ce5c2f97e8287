package host

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestMain runs prioritize in a child process when asked to (the test
// re-executes itself: prioritize changes the process's scheduling, which
// the test process must not).
func TestMain(m *testing.M) {
	if os.Getenv("CARPD_TEST_PRIORITIZE") == "1" {
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
func prioritizeIn(t *testing.T, setsid bool) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CARPD_TEST_PRIORITIZE=1")
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
// from a shell leaves the shell's session's group as it is.
func TestPrioritizeAutogroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE)")
	}
	on, err := os.ReadFile(autogroupEnabled)
	if err != nil || strings.TrimSpace(string(on)) != "1" {
		t.Skipf("the kernel has no autogroups here (%s: %q, %v)", autogroupEnabled, on, err)
	}
	before, err := autogroupNice()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prioritizeIn(t, true), fmt.Sprintf("err=<nil> nice=%d nerr=<nil>", LoopNice); got != want {
		t.Errorf("leading its session: %q, want %q", got, want)
	}
	if got, want := prioritizeIn(t, false), fmt.Sprintf("err=<nil> nice=%d nerr=<nil>", before); got != want {
		t.Errorf("in the test's session: %q, want %q (the session's group left alone)", got, want)
	}
	if after, err := autogroupNice(); err != nil || after != before {
		t.Errorf("the test's own autogroup: nice %d (%v), was %d", after, err, before)
	}
}
