package bgp

// This file is the mover process of the tests against bird: the test
// binary run again inside a host's namespace (a BGP speaker's sockets must
// be opened in the namespace, by every thread GoBGP uses, so it needs a
// process of its own; and a crash is a SIGKILL of that process). It is
// driven by signals: SIGUSR1 acquires, SIGUSR2 releases, SIGTERM closes
// the speaker and exits. It writes what it did to stdout, numbered, for
// Proc.WaitOutput.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/mover"
	"github.com/carpd/carpd/internal/vip"
)

// helperEnv holds the helper's configuration (helperConfig as JSON).
const helperEnv = "CARPD_BGP_MOVER_HELPER"

type helperConfig struct {
	Speaker  Config
	Iface    string
	Prefixes []netip.Prefix
	// Tenure is the time from an acquisition to its deadline (10 s when
	// 0).
	Tenure time.Duration
}

func TestMain(m *testing.M) {
	if s := os.Getenv(helperEnv); s != "" {
		os.Exit(runHelper(s))
	}
	os.Exit(m.Run())
}

func runHelper(s string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(s), &hc); err != nil {
		fmt.Println("helper: bad configuration:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	hc.Speaker.Log = log
	ctx := context.Background()
	sp, err := Start(ctx, hc.Speaker)
	if err != nil {
		fmt.Println("helper:", err)
		return 1
	}
	m := &Mover{
		Speaker: sp, Iface: hc.Iface, Prefixes: hc.Prefixes, Log: log,
		Addresses: vip.New(nil, vip.AddOptions{ValidLifetime: time.Minute}),
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	fmt.Println("helper: started")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	up, acquired, released := -1, 0, 0
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				// A deadline as etcd's fence gives one.
				tenure := hc.Tenure
				if tenure == 0 {
					tenure = 10 * time.Second
				}
				t := mover.Tenure{Token: 1, Deadline: time.Now().Add(tenure)}
				if err := m.Acquire(ctx, t); err != nil {
					fmt.Println("helper: acquire:", err)
					continue
				}
				acquired++
				h, err := m.Holder(ctx)
				fmt.Printf("helper: acquired %d (here %v, missing %v, %v)\n", acquired, h.Here, h.Missing, err)
			case syscall.SIGUSR2:
				if err := m.Release(ctx); err != nil {
					fmt.Println("helper: release:", err)
					continue
				}
				released++
				h, err := m.Holder(ctx)
				fmt.Printf("helper: released %d (here %v, missing %v, %v)\n", released, h.Here, h.Missing, err)
			default:
				_ = sp.Close()
				fmt.Println("helper: closed")
				return 0
			}
		case <-tick.C:
			st, err := sp.Status(ctx)
			if err != nil {
				fmt.Println("helper: status:", err)
				continue
			}
			if st.PeersUp != up {
				up = st.PeersUp
				fmt.Printf("helper: peers up %d routes %d\n", up, len(st.Routes))
			}
		}
	}
}
