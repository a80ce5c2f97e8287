package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// TestRun plays a shortened walkthrough against the carpd binary named by
// CARPD_BIN, with and without preemption, and checks the outcome the
// walkthrough promises: the backup takes over while the master is away,
// and with preemption the master takes the address back. The three
// walkthroughs run at once, each in its own lab (namespaces named at
// random, its own directory): they judge no timing finer than seconds (the
// printed outage is measured with 100 ms probes and not asserted), so
// another lab beside them changes nothing (20 s instead of 58 s).
func TestRun(t *testing.T) {
	bin := os.Getenv("CARPD_BIN")
	if bin == "" {
		labtest.Missing(t, "CARPD_BIN does not name a carpd binary")
	}
	labtest.RequireRoot(t)
	tests := []struct {
		preempt, etcd bool
		holder        string // who holds the address at the end
	}{
		{false, false, "backup (master is BACKUP)"},
		{true, false, "master (backup is BACKUP)"},
		{false, true, "backup (master is BACKUP)"},
	}
	for _, tt := range tests {
		name := "no-preempt"
		if tt.preempt {
			name = "preempt"
		}
		if tt.etcd {
			name += "-etcd"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := Run(ctx, Options{
				Carpd:    bin,
				Stdout:   &out,
				Preempt:  tt.preempt,
				Etcd:     tt.etcd,
				Before:   3 * time.Second,
				Down:     7 * time.Second,
				After:    5 * time.Second,
				Interval: 500 * time.Millisecond,
			})
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			for _, want := range []string{
				"(master)", // the master answered before its reboot
				"(backup)", // the backup answered after
				"Request timed out.",
				"192.0.2.50 is held by: " + tt.holder,
				"BACKUP -> MASTER",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			assertClean(t, got)
		})
	}
}

// TestRunBadBinary checks that a carpd that exits at once makes Run fail
// and leaves nothing behind.
func TestRunBadBinary(t *testing.T) {
	labtest.RequireRoot(t)
	var out bytes.Buffer
	err := Run(context.Background(), Options{Carpd: "/bin/false", Stdout: &out, Settle: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exited with code 1") {
		t.Errorf("Run with /bin/false: %v, want carpd exited with code 1", err)
	}
	assertClean(t, out.String())
}

// TestRunCancel checks that cancelling Run, while it waits for a master
// and while the client pings, removes everything promptly.
func TestRunCancel(t *testing.T) {
	labtest.RequireRoot(t)
	// Stubs stand in for carpd to get the demo going; they sleep until the
	// cleanup kills them. The "master" stub takes the address at once.
	sleeper := "#!/bin/sh\nexec sleep 600\n"
	master := "#!/bin/sh\ngrep -q 'advskew 100 ' \"$2\" && ip addr add 192.0.2.50/32 dev eth0\nexec sleep 600\n"
	for _, tt := range []struct {
		name, stub string
		after      time.Duration
		want       string // in the output when cancelled
	}{
		{"settling", sleeper, 1500 * time.Millisecond, "Waiting for a master"},
		{"pinging", master, 3 * time.Second, "Reply from 192.0.2.50"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			carpd := filepath.Join(t.TempDir(), "carpd")
			if err := os.WriteFile(carpd, []byte(tt.stub), 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.after)
			defer cancel()
			var out bytes.Buffer
			start := time.Now()
			err := Run(ctx, Options{Carpd: carpd, Stdout: &out, Interval: 200 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), "interrupted") {
				t.Errorf("Run cancelled: %v, want interrupted", err)
			}
			if took := time.Since(start) - tt.after; took > 5*time.Second {
				t.Errorf("Run took %v to give up after cancellation", took)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
			assertClean(t, out.String())
		})
	}
}

func TestRunNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root")
	}
	err := Run(context.Background(), Options{Carpd: "/bin/true"})
	if err == nil || err.Error() != "carpd-demo: needs root (network namespaces); run it with sudo" {
		t.Errorf("Run as non-root: %v", err)
	}
}

// labID finds the lab's ID in the demo's output.
var labID = regexp.MustCompile(`\(lab ([0-9a-f]{6})\)`)

// assertClean fails if a namespace of the demo that printed output is
// left.
func assertClean(t *testing.T, output string) {
	t.Helper()
	m := labID.FindStringSubmatch(output)
	if m == nil {
		t.Fatalf("no lab ID in the output:\n%s", output)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), "carpdemo-"+m[1]) {
		t.Errorf("demo namespaces left behind:\n%s", out)
	}
}
