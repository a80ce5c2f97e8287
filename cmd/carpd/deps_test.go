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
