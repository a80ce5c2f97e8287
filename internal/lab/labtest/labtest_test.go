package labtest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for the test given to Missing: it records whether
// the test was failed or skipped, and with what message, and ends the
// goroutine as testing's Fatalf and Skipf do.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.failed = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, a ...any) {
	r.skipped = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// run calls f with a recorder in a goroutine of its own, as testing runs
// a test, and returns the recorder once f returned or ended it.
func run(f func(r *recorder)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestMissing: with CI set a missing prerequisite fails the test, without
// it the test is skipped; the message names what is missing either way.
func TestMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := run(func(r *recorder) { Missing(r, "%s is not installed", "tshark") })
		got, other, want := r.skipped, r.failed, "skip"
		if ci != "" {
			got, other, want = r.failed, r.skipped, "failure"
		}
		if !strings.Contains(got, "tshark is not installed") || other != "" {
			t.Errorf("CI=%q: failed %q, skipped %q; want only a %s, naming tshark", ci, r.failed, r.skipped, want)
		}
	}
}

// TestTool: a program that is installed is found, one that is not is
// missing.
func TestTool(t *testing.T) {
	t.Setenv("CI", "true")
	var path string
	if r := run(func(r *recorder) { path = Tool(r, "sh") }); path == "" || r.failed != "" {
		t.Errorf("Tool(sh) = %q, failed %q", path, r.failed)
	}
	if r := run(func(r *recorder) { Tool(r, "carpd-no-such-program") }); !strings.Contains(r.failed, "carpd-no-such-program") {
		t.Errorf("Tool of a missing program: failed %q, want it named", r.failed)
	}
}
