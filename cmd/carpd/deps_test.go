package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestCodeInTheBinary: the production binary does not link the test
// lab, the prober or the walkthrough (they are carpd-demo's), nor the
// packet crafter (carpcraft's).
func TestNoTestCodeInTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"/internal/lab", "/internal/probe", "/internal/demo", "/internal/craft"} {
			if strings.Contains(d, banned) {
				t.Errorf("carpd links %s", d)
			}
		}
	}
}

// TestCmdHoldsOnlyTheInstalledCommands: `go install ./cmd/...` installs
// carpd and carpctl alone; the test tools (carpcraft, the hostile-packet
// sender, and carpd-demo) live in tools/, never on a production host.
func TestCmdHoldsOnlyTheInstalledCommands(t *testing.T) {
	out, err := exec.Command("go", "list", "github.com/carpd/carpd/cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	got := strings.Join(strings.Fields(string(out)), " ")
	want := "github.com/carpd/carpd/cmd/carpctl github.com/carpd/carpd/cmd/carpd"
	if got != want {
		t.Errorf("go list ./cmd/... = %q, want %q", got, want)
	}
}
