package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// serveHookHelper emulates carpd-hook.socket (Accept=yes) for h's carpd:
// it listens on a socket in dir and, per connection, runs `carpd
// hook-helper --config cfg` as root in h's network namespace with the
// connection as its stdin and stdout, as carpd-hook@.service does. setup
// is a shell line run first in a mount namespace of the helper's own (the
// test's /etc/network for ifupdown). It returns the socket's path.
func serveHookHelper(t *testing.T, h *lab.Host, dir, cfg, setup string) string {
	t.Helper()
	sock := filepath.Join(dir, "hook.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	// carpd runs as nobody: the unit's SocketGroup=carpd, SocketMode=0660.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			f, err := conn.(*net.UnixConn).File()
			conn.Close()
			if err != nil {
				continue
			}
			cmd := exec.Command("ip", "netns", "exec", h.NS, "unshare", "-m", "sh", "-c",
				setup+` && exec "$0" hook-helper --config "$1"`, carpdBin, cfg)
			cmd.Stdin, cmd.Stdout = f, f
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Logf("hook helper: %v", err)
			} else {
				go func() { _ = cmd.Wait() }()
			}
			f.Close()
		}
	}()
	return sock
}

// TestDebianUcarpScriptsAsRoot: carpd runs unprivileged (as nobody with
// only CAP_NET_ADMIN and CAP_NET_RAW, NoNewPrivileges, as under the
// unit), manage-addresses = false, and Debian's ucarp scripts, unchanged
// (/usr/share/ucarp/vip-up: `ifup $1:ucarp`), hold the VIP with
// hook-user = "root": they run as root in the hook helper, the VIP answers,
// and carpd keeps only its own capabilities; at a stop vip-down removes it.
func TestDebianUcarpScriptsAsRoot(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	for _, p := range []string{"/usr/share/ucarp/vip-up", "/usr/share/ucarp/vip-down", "/sbin/ifup"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("Debian's ucarp and ifupdown: %v", err)
		}
	}
	c := newCluster(t)
	for _, d := range []string{c.dir, filepath.Dir(c.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// ifupdown's configuration as ucarp's README.Debian has it, and its
	// state, kept across the helper's runs.
	etc, state := filepath.Join(c.dir, "etc-network"), filepath.Join(c.dir, "run-network")
	for _, d := range []string{etc, state, filepath.Join(etc, "if-up.d"), filepath.Join(etc, "if-down.d"),
		filepath.Join(etc, "if-pre-up.d"), filepath.Join(etc, "if-post-down.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "interfaces"), []byte("iface eth0:ucarp inet static\n\taddress 192.0.2.50\n\tnetmask 255.255.255.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setup := fmt.Sprintf("mount --bind %s /etc/network && mount -t tmpfs tmpfs /run && mkdir /run/network && mount --bind %s /run/network", etc, state)
	// keepalived's notify_master and notify_stop beside them, as root too.
	notifyLog := filepath.Join(c.dir, "notify.log")
	notify := writeScript(t, c.dir, "notify.sh", `echo "$* uid=$(id -u)" >> `+notifyLog+"\n")
	cfg := hookTOML(t, c.dir, "master.toml", 100, fmt.Sprintf(`manage-addresses = false
hook-user = "root"
hook-timeout = "10s"
upscript = "/usr/share/ucarp/vip-up"
downscript = "/usr/share/ucarp/vip-down"
notify_master = "%s 'became master'"
notify_stop = ["%s", "stopped"]`, notify, notify))
	sock := serveHookHelper(t, c.master, c.dir, cfg, setup)
	run := filepath.Join(c.dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wrap := append([]string{"env", "CARPD_HOOK_SOCKET=" + sock}, unprivileged...)
	p := c.startWrapped(c.master, wrap, "--config", cfg, "--control", filepath.Join(run, "m.sock"), "--state-file", filepath.Join(run, "m.state"))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("vip-up did not add the VIP: holders %v\n%s", c.holders(), p.Output())
	}
	out, err := c.master.Run(context.Background(), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, "192.0.2.50/24") || !strings.Contains(out, "eth0:ucarp") {
		t.Errorf("the VIP as ifup adds it (/24, label eth0:ucarp): %v\n%s", err, out)
	}
	if err := waitOutput(p, `hook=upscript command="/usr/share/ucarp/vip-up eth0 192.0.2.50" took=`, 5*time.Second); err != nil {
		t.Error(err)
	}
	if !strings.Contains(p.Output(), "via=hook-helper") || strings.Contains(p.Output(), "hook could not run") {
		t.Errorf("the hooks did not run through the helper:\n%s", p.Output())
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "CapEff:\t0000000000003000", "NoNewPrivs:\t1"} {
		if !strings.Contains(string(st), want) {
			t.Errorf("carpd's /proc status lacks %q", want)
		}
	}
	pr := startPing(t, c.client, vip, 50*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for !pr.answeredSince(time.Now().Add(-500*time.Millisecond)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !pr.answeredSince(time.Now().Add(-time.Second)) {
		t.Error("the VIP does not answer")
	}
	pr.stop()
	// A planned stop: vip-down (ifdown) removes it.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	if ok, _ := c.master.Holds(vip); ok {
		t.Errorf("the VIP is held after carpd stopped (vip-down did not run):\n%s", p.Output())
	}
	if got := waitFileLines(t, notifyLog, 2, 5*time.Second); strings.Join(got, "\n") != "became master uid=0\nstopped uid=0" {
		t.Errorf("notify_master and notify_stop ran as %q", got)
	}
}

// TestRootHookRefusedWithoutHelper: hook-user = "root" in a carpd that is
// not root, with no helper listening: the hook does not run, and the log
// says why (not an EPERM of setuid).
func TestRootHookRefusedWithoutHelper(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	for _, d := range []string{c.dir, filepath.Dir(c.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	marker := filepath.Join(c.dir, "ran")
	up := writeScript(t, c.dir, "up.sh", "touch "+marker+"\n")
	cfg := hookTOML(t, c.dir, "master.toml", 100, fmt.Sprintf("hook-user = \"root\"\nupscript = %q", up))
	run := filepath.Join(c.dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wrap := append([]string{"env", "CARPD_HOOK_SOCKET=" + filepath.Join(c.dir, "none.sock")}, unprivileged...)
	p := c.startWrapped(c.master, wrap, "--config", cfg, "--control", filepath.Join(run, "m.sock"), "--state-file", filepath.Join(run, "m.state"))
	if err := waitOutput(p, `msg="carpd: hook could not run"`, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Output(), `the root hook helper (hook-user = \"root\")`) {
		t.Errorf("the log does not name the helper:\n%s", p.Output())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook ran")
	}
}

// TestStatusShowsOnlyHeldAddresses: with manage-addresses = false, a
// MASTER whose up script fails shows no inet line for the VIP in carpctl
// status; with an up script that adds the VIP, status shows it as held.
func TestStatusShowsOnlyHeldAddresses(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	fail := writeScript(t, c.dir, "fail.sh", "echo 'RTNETLINK answers: Operation not permitted' >&2\nexit 2\n")
	add := writeScript(t, c.dir, "add.sh", `ip addr add "$2"/24 dev "$1"`+"\n")
	for i, tc := range []struct {
		up   string
		want bool
	}{{fail, false}, {add, true}} {
		cfg := hookTOML(t, c.dir, fmt.Sprintf("m%d.toml", i), 100, fmt.Sprintf("manage-addresses = false\nupscript = %q", tc.up))
		p := c.startCarpd(c.master, "--config", cfg)
		if err := waitOutput(p, "BACKUP -> MASTER", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := waitOutput(p, "hook=upscript", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		out, _, _ := c.carpctl(c.master, "status")
		has := strings.Contains(out, "inet 192.0.2.50/24 vhid 100")
		if has != tc.want || (!tc.want && strings.Contains(out, "192.0.2.50")) {
			t.Errorf("up script %s: status shows the VIP %v, want %v:\n%s", filepath.Base(tc.up), has, tc.want, out)
		}
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.Wait()
	}
}

// TestUcarpSignals: SIGUSR1 logs each vhid's status; SIGUSR2 makes the
// MASTER give up (BACKUP, its down script runs, the backup takes the VIP),
// as ucarp 1.5.2 does.
func TestUcarpSignals(t *testing.T) {
	t.Parallel() // bounds of seconds at advbase 1: see parallel_test.go
	c := newCluster(t)
	log := filepath.Join(c.dir, "down.log")
	down := writeScript(t, c.dir, "down.sh", `echo "down $*" >> `+log+"\n")
	m := c.startCarpd(c.master, "--config", hookTOML(t, c.dir, "m.toml", 100, fmt.Sprintf("neutral = true\ndownscript = %q", down)))
	c.startCarpd(c.backup, "--config", hookTOML(t, c.dir, "b.toml", 200, ""))
	if _, ok := c.waitHolder(c.master, 15*time.Second); !ok {
		t.Fatalf("holders %v", c.holders())
	}
	if err := m.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(m, `msg="carpd: status (SIGUSR1)" vhid=100 iface=eth0 state=MASTER`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.waitHolder(c.backup, masterDown+2*time.Second); !ok {
		t.Fatalf("SIGUSR2: the backup did not take over: holders %v\n%s", c.holders(), m.Output())
	}
	if got := waitFileLines(t, log, 1, 5*time.Second); got[0] != "down eth0 192.0.2.50" {
		t.Errorf("down script: %q", got)
	}
	if st := c.status(c.master); st.VHIDs[0].State != "BACKUP" {
		t.Errorf("the master after SIGUSR2: %s", st.VHIDs[0].State)
	}
	if m.ExitCode() != -1 && strings.Contains(m.Output(), "signal: user defined signal") {
		t.Errorf("carpd died of the signal:\n%s", m.Output())
	}
}
