package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// TestUcarpSignals: SIGUSR1's LogStatus logs each vhid's state; SIGUSR2's
// GiveUpMaster makes a MASTER BACKUP at once, released for the hold, and
// leaves a BACKUP alone.
func TestUcarpSignals(t *testing.T) {
	defer func(h time.Duration) { giveUpHold = h }(giveUpHold)
	giveUpHold = 0 // the hold is then the master-down interval, 3.8 s
	f := newFakeHost()
	var logs lab.Buffer
	d, err := New(testConfig(), f.host(), Options{Log: testLog(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(t, d, f, ctx)
	bg := context.Background()
	if n, err := d.GiveUpMaster(bg); n != 0 || err != nil {
		t.Errorf("GiveUpMaster as BACKUP = %d, %v", n, err)
	}
	if st, err := d.Force(bg, 100, "", "master"); err != nil || st.VHIDs[0].State != "MASTER" {
		t.Fatalf("Force = %v", err)
	}
	if err := d.LogStatus(bg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="carpd: status (SIGUSR1)" vhid=100 iface=eth0 state=MASTER demotion=0 addresses=192.0.2.50/32`) {
		t.Errorf("no status line in the log:\n%s", logs.String())
	}
	if n, err := d.GiveUpMaster(bg); n != 1 || err != nil {
		t.Fatalf("GiveUpMaster = %d, %v", n, err)
	}
	st, _ := d.Status(bg)
	if v := st.VHIDs[0]; v.State != "BACKUP" || !v.Released || v.LastChange.From != "MASTER" {
		t.Errorf("after SIGUSR2: %+v", v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ = d.Status(bg)
		if !st.VHIDs[0].Released {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still released after the hold")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "carpd: SIGUSR2's hold is over") {
		t.Errorf("the hold's end is not logged")
	}
}
