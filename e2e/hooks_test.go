package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeScript writes an executable script (mode 0755, in the test's
// directory, which is root's and not writable by others).
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// hookTOML is vhid 100 with advskew and extra keys, hooks among them.
func hookTOML(t testing.TB, dir, name string, advskew int, extra string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	body := fmt.Sprintf(`%s

[[vhid]]
interface = "eth0"
vhid = 100
advskew = %d
password = "lampros"
addresses = ["192.0.2.50/32"]
`, extra, advskew)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFileLines polls until the file has at least n lines and returns
// them.
func waitFileLines(t testing.TB, path string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(data) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines after %v, want %d:\n%s", path, len(lines), timeout, n, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUcarpScriptsUnchanged: the up and down scripts of ucarp's
// documentation (Debian's /usr/share/doc/ucarp/examples), unchanged, hold
// the VIP on their own with manage-addresses = false: they get IFACE VIP
// as ucarp passes them, and a failover moves the VIP.
func TestUcarpScriptsUnchanged(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	var scripts [2]string
	for i, name := range []string{"vip-up.sh", "vip-down.sh"} {
		data, err := os.ReadFile(filepath.Join("/usr/share/doc/ucarp/examples", name))
		if err != nil {
			t.Skipf("ucarp's example scripts: %v", err)
		}
		scripts[i] = filepath.Join(c.dir, name)
		if err := os.WriteFile(scripts[i], data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	extra := fmt.Sprintf("manage-addresses = false\nupscript = %q\ndownscript = %q", scripts[0], scripts[1])
	c.startCarpd(c.master, "--config", hookTOML(t, c.dir, "master.toml", 100, extra))
	c.startCarpd(c.backup, "--config", hookTOML(t, c.dir, "backup.toml", 200, extra))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("the master's up script did not add the VIP: holders %v\n%s", c.holders(), c.procs[c.master].Output())
	}
	out, err := c.master.Run(context.Background(), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, "192.0.2.50/24") {
		t.Errorf("the VIP as the script adds it (/24): %v\n%s", err, out)
	}
	for _, want := range []string{
		"hook=downscript command=\"" + scripts[1] + " eth0 192.0.2.50\"", // at start, not neutral
		"hook=upscript command=\"" + scripts[0] + " eth0 192.0.2.50\"",
	} {
		if err := waitOutput(c.procs[c.master], want, time.Second); err != nil {
			t.Error(err)
		}
	}
	pr := c.ping(100 * time.Millisecond)
	time.Sleep(time.Second)
	c.reboot(c.master)
	if _, ok := c.waitHolder(c.backup, masterDown+3*time.Second); !ok {
		t.Fatalf("the backup's up script did not take the VIP: holders %v", c.holders())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !pr.answeredSince(time.Now().Add(-300*time.Millisecond)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !pr.answeredSince(time.Now().Add(-time.Second)) {
		t.Error("the client does not reach the VIP on the backup")
	}
	// A planned stop: the down script removes the VIP.
	if err := c.procs[c.backup].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = c.procs[c.backup].Wait()
	if ok, _ := c.backup.Holds(vip); ok {
		t.Errorf("the VIP is held after carpd stopped (the down script did not run):\n%s", c.procs[c.backup].Output())
	}
}

// TestHookConventions: devd's, ucarp's and keepalived's conventions get
// the right arguments and environment, in order, at start, on becoming
// MASTER and at a planned stop.
func TestHookConventions(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	log := filepath.Join(c.dir, "hooks.log")
	devd := writeScript(t, c.dir, "devd.sh", `echo "devd $* VHID=$CARP_VHID IFACE=$CARP_IFACE STATE=$CARP_STATE PREV=$CARP_PREVIOUS REASON=$CARP_REASON ADDRS=$CARP_ADDRESSES" >> `+log+"\n")
	up := writeScript(t, c.dir, "up.sh", `echo "up $*" >> `+log+"\n")
	down := writeScript(t, c.dir, "down.sh", `echo "down $*" >> `+log+"\n")
	notify := writeScript(t, c.dir, "notify.sh", `echo "notify $*" >> `+log+"\n")
	extra := fmt.Sprintf("hook = %q\nupscript = %q\ndownscript = %q\nxparam = \"extra\"\nnotify = %q", devd, up, down, notify)
	p := c.startCarpd(c.master, "--config", hookTOML(t, c.dir, "master.toml", 100, extra))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatal("not MASTER")
	}
	waitFileLines(t, log, 6, 5*time.Second)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	got := waitFileLines(t, log, 9, 5*time.Second)
	want := []string{
		"down eth0 192.0.2.50 extra",
		"devd 100@eth0 BACKUP VHID=100 IFACE=eth0 STATE=BACKUP PREV=INIT REASON=initialization complete ADDRS=192.0.2.50/32",
		"notify INSTANCE 100@eth0 BACKUP 155",
		"devd 100@eth0 MASTER VHID=100 IFACE=eth0 STATE=MASTER PREV=BACKUP REASON=master timed out ADDRS=192.0.2.50/32",
		"up eth0 192.0.2.50 extra",
		"notify INSTANCE 100@eth0 MASTER 155",
		"devd 100@eth0 INIT VHID=100 IFACE=eth0 STATE=INIT PREV=MASTER REASON=shutting down ADDRS=192.0.2.50/32",
		"down eth0 192.0.2.50 extra",
		"notify INSTANCE 100@eth0 STOP 155",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHooksInOrderAndKilledAtTimeout: when transitions come faster than a
// slow hook, its runs keep the transitions' order; a hook that hangs is
// killed with its whole process group at the timeout and counted as
// failed, and the protocol goes on meanwhile.
func TestHooksInOrderAndKilledAtTimeout(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	log := filepath.Join(c.dir, "order.log")
	slow := writeScript(t, c.dir, "slow.sh", `sleep 0.3; echo "$2 $CARP_REASON" >> `+log+"\n")
	p := c.startCarpd(c.master, "--config", hookTOML(t, c.dir, "master.toml", 100, fmt.Sprintf("hook = %q", slow)))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatal("not MASTER")
	}
	// Four forced changes within a fraction of the hook's time.
	for _, s := range []string{"backup", "master", "backup", "master"} {
		if _, errOut, code := c.carpctl(c.master, "state", "100", s); code != 0 {
			t.Fatalf("state %s: %s", s, errOut)
		}
	}
	got := waitFileLines(t, log, 6, 10*time.Second)
	want := []string{"BACKUP initialization complete", "MASTER master timed out",
		"BACKUP user requested via ifconfig", "MASTER user requested via ifconfig",
		"BACKUP user requested via ifconfig", "MASTER user requested via ifconfig"}
	if strings.Join(got[:6], "\n") != strings.Join(want, "\n") {
		t.Errorf("hook runs out of order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()

	// A hook that hangs, with a child of its own.
	pidFile := filepath.Join(c.dir, "child.pid")
	hang := writeScript(t, c.dir, "hang.sh", "sleep 300 &\necho $! > "+pidFile+"\nsleep 300\n")
	p = c.startCarpd(c.master, "--config", hookTOML(t, c.dir, "hang.toml", 100, fmt.Sprintf("hook = %q\nhook-timeout = \"1s\"", hang)))
	if err := waitOutput(p, "carpd: hook killed at its timeout", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	time.Sleep(200 * time.Millisecond)
	if pid <= 0 || running(pid) {
		t.Errorf("the hook's child %d survived the timeout", pid)
	}
	// The protocol went on: MASTER while the hooks hang.
	if _, ok := c.waitHolder(c.master, 10*time.Second); !ok {
		t.Error("not MASTER while the hooks hang")
	}
	out, _, _ := c.carpctl(c.master, "stats", "--json")
	if !strings.Contains(out, `"hook-failures": `) || strings.Contains(out, `"hook-failures": 0,`) {
		t.Errorf("the timed-out hook is not counted as failed:\n%s", out)
	}
}

// TestInsecureHookRefused: a hook others could change is refused, as
// keepalived's enable_script_security does, and nothing starts.
func TestInsecureHookRefused(t *testing.T) {
	c := newCluster(t)
	script := writeScript(t, c.dir, "open.sh", "exit 0\n")
	if err := os.Chmod(script, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg := hookTOML(t, c.dir, "c.toml", 0, fmt.Sprintf("hook = %q", script))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := execIn(ctx, c.master.NS, carpdBin, "--config", cfg, "--check").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "is group- or world-writable") {
		t.Errorf("carpd with a world-writable hook: %v, %s; want exit 2 naming it", err, out)
	}
}

// running reports whether the process exists and is not a zombie (a
// killed orphan waits for its reaper).
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
