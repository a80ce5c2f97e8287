package etcdlab

import (
	"context"
	"testing"
	"time"
)

// TestCluster starts the three members, writes and reads a key from a node,
// kills the leader and sees a new one elected, restarts it, and cuts the
// node's cable: its reads fail then.
func TestCluster(t *testing.T) {
	c := Start(t, Raft{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client(n)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Kill(); err != nil {
		t.Logf("kill %s: %v", old.Name, err)
	}
	nw, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nw == old {
		t.Fatalf("leader still %s after its kill", old.Name)
	}
	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx, "k")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Fatalf("get after failover: %v %v", r, err)
	}
	if err := Cut(n); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cli.Get(cctx, "k")
	ccancel()
	if err == nil {
		t.Fatal("get succeeded through a cut cable")
	}
	if err := Mend(n); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leader(ctx); err != nil {
		t.Fatal(err)
	}
}
