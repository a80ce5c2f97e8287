package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/control/client"
)

// TestDependencies: carpctl links the control client and the API documents,
// never the daemon, the configuration, the protocol machines or the TOML
// parser (a client of a socket needs none of them; before the client had a
// package of its own, carpctl linked all of them through the server).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %q", len(deps), deps)
	}
	const mod = "github.com/carpd/carpd/"
	banned := []string{
		mod + "internal/daemon",
		mod + "internal/config",
		mod + "internal/carp",
		mod + "internal/vrrp",
		mod + "internal/control", // the server; its client is internal/control/client
		"github.com/pelletier/go-toml",
	}
	has := map[string]bool{}
	for _, d := range deps {
		has[d] = true
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b+"/") && !strings.HasPrefix(d, mod+"internal/control/client") {
				t.Errorf("carpctl links %s", d)
			}
		}
	}
	for _, want := range []string{mod + "internal/api", mod + "internal/control/client"} {
		if !has[want] {
			t.Errorf("carpctl does not link %s", want)
		}
	}
}

// TestDefaultSocket: carpctl's default socket is carpd's (the client
// cannot import the configuration to share the constant).
func TestDefaultSocket(t *testing.T) {
	if client.DefaultPath != config.DefaultControl {
		t.Errorf("carpctl's default socket %s, carpd's %s", client.DefaultPath, config.DefaultControl)
	}
}
