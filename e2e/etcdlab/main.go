// Command etcdlab runs one member of an etcd cluster for carpd's tests: the
// real etcd server (go.etcd.io/etcd/server/v3, embedded), started by the
// test harness (internal/lab/etcdlab) inside a network namespace. It is a
// module of its own so that carpd's module does not carry the server's
// dependencies. It prints "etcdlab: ready" once the member serves clients,
// and stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "etcdlab:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "", "member name")
	dir := flag.String("data-dir", "", "data directory (a tmpfs in the tests)")
	ip := flag.String("ip", "", "address to listen on (client port 2379, peer port 2380)")
	cluster := flag.String("initial-cluster", "", "name=http://ip:2380,...")
	state := flag.String("initial-cluster-state", "new", "new or existing")
	heartbeat := flag.Uint("heartbeat-ms", 100, "raft heartbeat interval, ms")
	election := flag.Uint("election-ms", 1000, "raft election timeout, ms")
	flag.Parse()
	if *name == "" || *dir == "" || *ip == "" || *cluster == "" {
		return fmt.Errorf("-name, -data-dir, -ip and -initial-cluster are required")
	}
	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dir
	cfg.LogLevel = "warn"
	cfg.TickMs = *heartbeat
	cfg.ElectionMs = *election
	cfg.InitialCluster = *cluster
	cfg.ClusterState = *state
	cfg.InitialClusterToken = "carpd-etcdlab"
	client, err := url.Parse("http://" + *ip + ":2379")
	if err != nil {
		return err
	}
	peer, err := url.Parse("http://" + *ip + ":2380")
	if err != nil {
		return err
	}
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("etcdlab: ready")
	case <-time.After(60 * time.Second):
		return fmt.Errorf("not ready after 60s")
	case s := <-sig:
		return fmt.Errorf("stopped by %v before ready", s)
	}
	select {
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
}
