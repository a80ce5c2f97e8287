package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// TestReplayHoldsBackup: the master dies while an attacker on the segment
// replays one of its adverts captured earlier, in its name, 10 times a
// second. The HMAC is right and the backup cannot tell the replay from the
// master by the bytes.
//
//   - Without replay protection (the default, FreeBSD's behaviour) every
//     replay restarts the backup's master-down timer: nobody holds the
//     address until the replay stops (the control: it shows the attack
//     works and that the test can fail).
//   - With `replay-protection = true` the replayed counter is one the
//     backup has already heard, so each replay is dropped (counted as
//     replay) and the backup takes over within its master-down interval.
func TestReplayHoldsBackup(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	for _, protect := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay-protection=%v", protect), func(t *testing.T) {
			c := newCluster(t)
			attacker, err := c.lab.AddHost("attacker", attackerAddr)
			if err != nil {
				t.Fatal(err)
			}
			procs := map[*lab.Host]*lab.Proc{}
			for h, skew := range map[*lab.Host]int{c.master: 100, c.backup: 200} {
				conf := fmt.Sprintf("[[vhid]]\ninterface = \"eth0\"\nvhid = 100\nadvskew = %d\npassword = \"lampros\"\n"+
					"addresses = [\"192.0.2.50/32\"]\nreplay-protection = %v\n", skew, protect)
				if err := os.WriteFile(c.tomlPath(h), []byte(conf), 0o600); err != nil {
					t.Fatal(err)
				}
				procs[h] = c.startCarpd(h, "--config", c.tomlPath(h))
			}
			if took, ok := waitSole(t, c.master, 20*time.Second, c.master, c.backup); !ok {
				t.Fatalf("after %v the VIP is held by %v, want the master only", took, c.holders())
			}
			carpcraftBin(t)
			capture := startPcap(t, attacker.NS, "eth0", c.dir, fmt.Sprintf("ip proto 112 and src host %v", masterAddr.Addr()))
			time.Sleep(2500 * time.Millisecond)
			capture.stop(t)
			// Let the backup hear a few more adverts: the captured ones
			// are then old.
			time.Sleep(2 * time.Second)
			before := c.counts(c.backup)

			const replayFor = 10 * time.Second
			var wg sync.WaitGroup
			var res craftResult
			wg.Add(1)
			go func() {
				defer wg.Done()
				res = runCarpcraft(t, attacker, "--iface", "eth0", "--vhid", "100", "--kind", "replay",
					"--replay", capture.path, "--replay-src", masterAddr.Addr().String(), "--src", masterAddr.Addr().String(),
					"--rate", "10", "--duration", replayFor.String())
			}()
			time.Sleep(300 * time.Millisecond)
			powerCut(t, c.master, procs[c.master])
			took, ok := c.waitHolder(c.backup, replayFor+masterDown+3*time.Second)
			wg.Wait()
			after := c.counts(c.backup)
			replays := after.drops["replay"] - before.drops["replay"]
			t.Logf("the backup took over %v after the cut (ok %v); %d replays sent, %d dropped as replay", took, ok, res.Sent, replays)
			if !ok {
				t.Fatalf("the backup never took over: %s", strings.Join(transitions(procs[c.backup].Output()), "; "))
			}
			if protect {
				if took > masterDown+1500*time.Millisecond {
					t.Errorf("with replay protection the backup took over %v after the cut, want within its master-down interval %v + 1.5 s", took, masterDown)
				}
				// The replays before the takeover are dropped as
				// replay; those after it reach a master, which drops
				// them as replay too.
				if want := uint64(res.Sent) - 3; replays < want {
					t.Errorf("%d replays dropped as replay, want at least %d of the %d sent", replays, want, res.Sent)
				}
			} else {
				// The replay ends 9.7 s after the cut; the backup takes
				// over a master-down interval after the last one.
				if took < replayFor-time.Second {
					t.Errorf("without replay protection the backup took over %v after the cut, during the replay: the attack did not hold it", took)
				}
				if replays != 0 {
					t.Errorf("%d adverts dropped as replay without replay protection", replays)
				}
			}
		})
	}
}
