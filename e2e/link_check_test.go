package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLinkCheckDemotes: a link check tracks another interface of the
// master (keepalived's track_interface): its peer taken down, the link
// loses carrier, the check fails, the demoted master loses the VIP to the
// backup; the link back, the master takes the VIP back.
func TestLinkCheckDemotes(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	// up0, the tracked uplink, is one end of a veth pair inside the
	// master's namespace; up1 is its far end.
	if out, err := c.master.Run(context.Background(), "sh", "-c",
		"ip link add up0 type veth peer name up1 && ip link set up0 up && ip link set up1 up"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	check := `
[[check]]
name = "uplink"
link = "up0"
interval = "200ms"
`
	c.startCarpd(c.master, "--config", checkTOML(t, filepath.Join(c.dir, "m.toml"), 100, "preempt = true", check))
	c.startCarpd(c.backup, "--config", checkTOML(t, filepath.Join(c.dir, "b.toml"), 200, "preempt = true", ""))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	if out, err := c.master.Run(context.Background(), "ip", "link", "set", "up1", "down"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, ok := c.waitHolder(c.backup, time.Second+masterDown+2*time.Second); !ok {
		t.Fatalf("the tracked link went down, the VIP did not move: holders %v\n%s", c.holders(), c.procs[c.master].Output())
	}
	st := c.status(c.master)
	if len(st.Checks) != 1 || st.Checks[0].Up || !strings.Contains(st.Checks[0].Detail, "up0 has no carrier") {
		t.Errorf("master's checks: %+v", st.Checks)
	}
	if len(st.VHIDs) != 1 || st.VHIDs[0].Demotion != 240 {
		t.Errorf("master's vhid: %+v", st.VHIDs)
	}
	if out, err := c.master.Run(context.Background(), "ip", "link", "set", "up1", "up"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Fatalf("the link is back, the master did not take the VIP back: holders %v", c.holders())
	}
	if st := c.status(c.master); len(st.Checks) != 1 || !st.Checks[0].Up || st.VHIDs[0].Demotion != 0 {
		t.Errorf("the check did not clear: %+v", st.Checks)
	}
}
