package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/probe"
)

// unprivileged is carpd's command line prefix that runs it as nobody with
// only CAP_NET_ADMIN and CAP_NET_RAW, as the systemd unit does.
var unprivileged = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
	"--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw",
	"--bounding-set=-all,+net_admin,+net_raw", "--no-new-privs"}

// TestUnprivileged runs both carpd as an unprivileged user with only
// CAP_NET_ADMIN and CAP_NET_RAW through a failover and a planned stop.
func TestUnprivileged(t *testing.T) {
	c := newCluster(t)
	// nobody's files: its control socket and state file, and the rc.conf
	// files it reads.
	run := filepath.Join(c.dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{run, c.dir, filepath.Dir(c.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(run, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	start := func(name string) {
		h := c.master
		if name == "backup" {
			h = c.backup
		}
		c.startWrapped(h, unprivileged, "--rc-conf", c.rcPath(h), "--log-level", "debug",
			"--control", filepath.Join(run, name+".sock"), "--state-file", filepath.Join(run, name+".state"))
	}
	start("master")
	start("backup")
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	// The processes run as nobody with the two capabilities only.
	for _, p := range c.procs {
		st, err := os.ReadFile("/proc/" + itoa(p.PID()) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "CapEff:\t0000000000003000", "CapBnd:\t0000000000003000"} {
			if !strings.Contains(string(st), want) {
				t.Errorf("carpd's /proc status lacks %q", want)
			}
		}
	}
	pr := c.ping(10 * time.Millisecond)
	time.Sleep(time.Second)
	// Unplanned: the master's power cut.
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+3*time.Second); !ok {
		t.Fatalf("no failover: holders %v\n%s", c.holders(), c.procs[c.backup].Output())
	}
	// The master comes back (BACKUP); a planned stop of the backup hands
	// the VIP back without a lost probe.
	if err := c.master.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if err := c.master.AddAddr(masterAddr); err != nil {
		t.Fatal(err)
	}
	start("master")
	time.Sleep(4 * time.Second)
	pr.stop()
	pr = c.ping(10 * time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	if err := c.procs[c.backup].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.procs[c.backup].Wait(); err != nil {
		t.Errorf("carpd's planned stop: %v", err)
	}
	if _, ok := c.waitHolder(c.master, 5*time.Second); !ok {
		t.Fatalf("planned stop: holders %v", c.holders())
	}
	time.Sleep(time.Second)
	pr.stop()
	// A planned stop's target, 0, as in TestPlannedFailover.
	if st := probe.Summarize(pr.results()); st.Lost > 0 {
		t.Errorf("planned stop as nobody: %d probes lost, want 0", st.Lost)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSystemdNotify: carpd's sd_notify messages, in order, to a fake
// NOTIFY_SOCKET: READY=1 with a STATUS once the first state is set,
// WATCHDOG=1 from the loop (WATCHDOG_USEC), RELOADING=1 then READY=1
// around a reload, STOPPING=1 at the stop.
func TestSystemdNotify(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	sock := filepath.Join(c.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	p := c.startWrapped(c.master, []string{"env", "NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=600000"},
		"--rc-conf", c.rcPath(c.master))
	var got []string
	wait := func(prefix string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				got = append(got, m)
				if strings.HasPrefix(m, prefix) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q; got %q", prefix, got)
			}
		}
	}
	if ready := wait("READY=1"); !strings.Contains(ready, "STATUS=1 vhid: 1 BACKUP") {
		t.Errorf("READY: %q", ready)
	}
	wait("WATCHDOG=1")
	wait("WATCHDOG=1")
	if st := wait("STATUS="); !strings.Contains(st, "1 MASTER") {
		t.Errorf("status after the takeover: %q", st)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("RELOADING=1")
	wait("READY=1")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait("STOPPING=1")
	// In order: READY before the reload's RELOADING, READY after it,
	// STOPPING last of these.
	var order []string
	for _, m := range got {
		for _, w := range []string{"READY=1", "RELOADING=1", "STOPPING=1"} {
			if strings.HasPrefix(m, w) {
				order = append(order, w)
			}
		}
	}
	if strings.Join(order, " ") != "READY=1 RELOADING=1 READY=1 STOPPING=1" {
		t.Errorf("notifications in this order: %v", order)
	}
}
