package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// masked are the units of this machine's own OS that the containers do not
// start: they would only take time (a database, the console's getty), or
// act on the lab's segment (keepalived, ucarp). The lower layer is the
// host's /, so whatever the host has installed and enabled would boot.
var masked = []string{
	"postgresql.service", "postgresql@.service", "ipvsadm.service",
	"keepalived.service", "ucarp.service", "console-getty.service",
	"e2scrub_reap.service", "apt-daily.timer", "apt-daily-upgrade.timer",
	"man-db.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
}

// bootScript runs in a mount namespace of its own (unshare --mount
// --propagation private), so that every mount it makes goes with the
// container: a tmpfs on $1, holding the overlay's upper and work dirs,
// the overlay root with this machine's / as its lower layer, and a tmpfs
// on /run/systemd/nspawn. That last one because /run is no tmpfs here:
// nspawn refuses to clean its propagate directory off a disk file system
// ("Attempted to remove disk file system under
// /run/systemd/nspawn/propagate/NAME, and we can't allow that").
//
// nspawn's flags, each needed here: --register=no and --keep-unit because
// PID 1 of this machine is no systemd (without either: "Failed to open
// system bus: No such file or directory"); --capability=CAP_NET_ADMIN
// because nspawn drops it from the container otherwise (carpd then gets
// EPERM on its own addresses, and systemd cannot even bring lo up);
// --network-namespace-path to run in the lab host's namespace.
//
// This machine is a Docker image: its /usr/sbin/policy-rc.d ("exit 101")
// forbids maintainer scripts to start, restart or stop any service
// ("/usr/sbin/policy-rc.d returned 101, not running 'restart
// carpd.service'"). No Debian system an operator installs has it; the
// script removes it from the container's root (a whiteout in the upper
// layer).
//
// And a cgroup of its own: with --keep-unit, nspawn puts the container in
// <its own cgroup>/payload, and every process this machine's PID 1 starts
// is in the root cgroup, so that all containers started here would share
// /payload: their systemd would all run carpd.service in the same
// /payload/system.slice/carpd.service (`systemctl kill` then fails with
// "Failed to send signal SIGKILL to auxiliary processes: Input/output
// error", the other container's carpd being PID 0 in this one's PID
// namespace). The script moves itself into /<container name> of the
// name=systemd hierarchy (cgroup v1, as here) and of the cgroup2 one.
const bootScript = `set -e
dir=$1 name=$2 netns=$3 debs=$4
shift 4
mount -t tmpfs -o mode=0755 carpd-systemd-test "$dir"
mkdir "$dir/upper" "$dir/work" "$dir/root"
mount -t overlay carpd-systemd-test -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
mkdir -p /run/systemd/nspawn
mount -t tmpfs -o mode=0755 carpd-systemd-test /run/systemd/nspawn
# A cgroup of its own in each hierarchy that holds systemd's tree.
if [ -e /sys/fs/cgroup/cgroup.procs ]; then
	v2=/sys/fs/cgroup
else
	v2=$dir/cgroup2
	mkdir "$v2"
	mount -t cgroup2 carpd-systemd-test "$v2"
fi
for h in /sys/fs/cgroup/systemd "$v2"; do
	if [ -e "$h/cgroup.procs" ]; then
		mkdir "$h/$name"
		echo $$ > "$h/$name/cgroup.procs"
	fi
done
for u in "$@"; do ln -sf /dev/null "$dir/root/etc/systemd/system/$u"; done
rm -f "$dir/root/usr/sbin/policy-rc.d"
exec systemd-nspawn --directory="$dir/root" --machine="$name" --boot --register=no --keep-unit \
	--capability=CAP_NET_ADMIN --network-namespace-path="/run/netns/$netns" --bind-ro="$debs:/mnt/carpd"
`

// cgroupCleanup removes a container's cgroups (see bootScript), once its
// processes are gone; systemd leaves some behind when it is killed.
const cgroupCleanup = `name=$1
tmp=$(mktemp -d)
if [ -e /sys/fs/cgroup/cgroup.procs ]; then
	v2=/sys/fs/cgroup
else
	v2=$tmp
	mount -t cgroup2 carpd-systemd-test "$v2"
fi
rc=0
for h in /sys/fs/cgroup/systemd "$v2"; do
	if [ -d "$h/$name" ]; then
		find "$h/$name" -depth -type d -exec rmdir {} + || rc=1
	fi
done
if [ "$v2" = "$tmp" ]; then umount "$tmp"; fi
rmdir "$tmp"
exit $rc
`

// container is one systemd-nspawn container booting systemd as PID 1 in a
// lab host's network namespace.
type container struct {
	t       *testing.T // the (sub)test whose log gets the transcript
	root    *testing.T // the test that boots and stops the container
	name    string     // the lab host's name
	machine string     // the container's name, unique per run
	host    *lab.Host

	cmd     *exec.Cmd
	console buffer // nspawn's and the container's console output
	done    chan struct{}
	pid1    int // PID of the container's systemd, in this PID namespace
}

// buffer is a bytes.Buffer safe for concurrent use.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// boot starts the container named name (unique per run: "<lab id>-<host>")
// on host with debs bound read-only at /mnt/carpd, and waits until its
// systemd has finished booting. The container is powered off at cleanup.
func boot(t *testing.T, h *lab.Host, name, debs string) (*container, error) {
	dir := t.TempDir()
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", bootScript, "boot",
		dir, name, h.NS, debs}, masked...)
	c := &container{t: t, root: t, name: h.Name, machine: name, host: h, done: make(chan struct{})}
	c.cmd = exec.Command("unshare", args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.console, &c.console
	c.cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "TERM=dumb")
	// Its own process group; SIGTERM (a clean poweroff) if this test dies.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	t.Logf("%s: boot: unshare --mount --propagation private sh -c <script> (tmpfs %s, overlay lowerdir=/, "+
		"systemd-nspawn --directory=%s/root --machine=%s --boot --register=no --keep-unit "+
		"--capability=CAP_NET_ADMIN --network-namespace-path=/run/netns/%s --bind-ro=%s:/mnt/carpd); "+
		"in cgroup /%s; /usr/sbin/policy-rc.d removed; masked: %s",
		c.name, dir, dir, name, h.NS, debs, name, strings.Join(masked, " "))
	if err := lab.StartCmd(c.cmd); err != nil {
		return nil, fmt.Errorf("%s: start systemd-nspawn: %w", c.name, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.stop)
	start := time.Now()
	pid1, err := c.findPID1(60 * time.Second)
	if err != nil {
		return c, err
	}
	c.pid1 = pid1
	// "running", or "degraded" when some unit of the host's OS failed in
	// the container: carpd does not need them.
	// systemctl answers once systemd has made its private bus socket.
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.quiet("test -S /run/systemd/private"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := c.run(time.Until(deadline), "systemctl is-system-running --wait")
	state := strings.TrimSpace(out)
	if state != "running" && state != "degraded" {
		return c, fmt.Errorf("%s: systemd did not finish booting: %q (%v); console:\n%s", c.name, state, err, c.console.String())
	}
	if state == "degraded" {
		_, _ = c.run(10*time.Second, "systemctl --failed --no-pager")
	}
	t.Logf("%s: systemd is PID 1 (host PID %d), booted in %v: %s", c.name, pid1, time.Since(start).Round(time.Millisecond), state)
	return c, nil
}

// findPID1 waits for nspawn's child to be the container's systemd.
func (c *container) findPID1(timeout time.Duration) (int, error) {
	pid := c.cmd.Process.Pid
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return 0, fmt.Errorf("%s: systemd-nspawn exited: %v; console:\n%s", c.name, c.cmd.ProcessState, c.console.String())
		default:
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, f := range strings.Fields(string(kids)) {
			comm, _ := os.ReadFile("/proc/" + f + "/comm")
			if strings.TrimSpace(string(comm)) == "systemd" {
				return strconv.Atoi(f)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: no systemd under systemd-nspawn (PID %d) after %v; console:\n%s", c.name, pid, timeout, c.console.String())
}

// stop powers the container off: SIGTERM to nspawn, which has the
// container's systemd shut down; then SIGKILL to the container's PID 1
// (which takes every process of its PID namespace) and to nspawn. The
// mounts go with nspawn's mount namespace.
func (c *container) stop() {
	c.t = c.root
	c.powerOff()
	select {
	case <-c.done:
	default:
		return // still running: its cgroups cannot go
	}
	if err := removeCgroups(c.machine); err != nil {
		c.t.Errorf("%s: %v", c.name, err)
	}
}

// removeCgroups removes the cgroups of the container named machine.
func removeCgroups(machine string) error {
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", cgroupCleanup, "cleanup", machine).CombinedOutput()
	if err != nil {
		return fmt.Errorf("removing the cgroups /%s: %v: %s", machine, err, out)
	}
	return nil
}

// sweepCgroups removes the cgroups that the containers of an earlier run
// left when it was killed before its cleanup: those of its machines
// ("carpsd-*") that hold no process (rmdir refuses the others).
func sweepCgroups() {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/systemd/carpsd-*")
	for _, d := range dirs {
		_ = removeCgroups(filepath.Base(d))
	}
}

func (c *container) powerOff() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
		return
	case <-time.After(30 * time.Second):
	}
	c.t.Errorf("%s: still running 30 s after SIGTERM to systemd-nspawn; killing it", c.name)
	if c.pid1 > 0 {
		_ = syscall.Kill(c.pid1, syscall.SIGKILL)
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%s: systemd-nspawn (PID %d) still running after SIGKILL", c.name, c.cmd.Process.Pid)
	}
}

// run runs a shell command line inside the container (nsenter -a on its
// PID 1: every namespace, its root and its cgroup), logs it and its output
// as the operator's transcript, and returns the output.
func (c *container) run(timeout time.Duration, script string) (string, error) {
	return c.runIn(timeout, script, "")
}

func (c *container) runIn(timeout time.Duration, script, stdin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-a", "-t", strconv.Itoa(c.pid1), "sh", "-c", script)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	status := ""
	if err != nil {
		status = fmt.Sprintf(" [%v]", err)
	}
	if stdin != "" {
		script += " <<'EOF'\n" + strings.TrimRight(stdin, "\n") + "\nEOF"
	}
	c.t.Logf("%s# %s%s\n%s", c.name, script, status, strings.TrimRight(string(out), "\n"))
	return string(out), err
}

// sh runs a command that must succeed.
func (c *container) sh(script string) string {
	c.t.Helper()
	out, err := c.run(90*time.Second, script)
	if err != nil {
		c.t.Fatalf("%s: %s: %v", c.name, script, err)
	}
	return out
}

// quiet runs a command without logging it (polling).
func (c *container) quiet(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "-a", "-t", strconv.Itoa(c.pid1), "sh", "-c", script).Output()
	return string(out), err
}

// status is the part of `carpctl --json status` the test reads.
type status struct {
	VHIDs []struct {
		VHID      int      `json:"vhid"`
		State     string   `json:"state"`
		AdvSkew   int      `json:"advskew"`
		Addresses []string `json:"addresses"`
		Counters  struct {
			Transitions uint64 `json:"transitions"`
		} `json:"counters"`
	} `json:"vhids"`
}

// status asks the running carpd; ok is false when it does not answer.
func (c *container) status() (status, bool) {
	out, err := c.quiet("carpctl --json status")
	var s status
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || len(s.VHIDs) != 1 {
		return status{}, false
	}
	return s, true
}

// state is vhid 100's state, "" when carpd does not answer.
func (c *container) state() string {
	s, ok := c.status()
	if !ok {
		return ""
	}
	return s.VHIDs[0].State
}

// waitState waits until carpd reports state; it returns how long that took.
func (c *container) waitState(state string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = c.state(); last == state {
			return time.Since(start), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: carpd not %s after %v (last: %q)", c.name, state, timeout, last)
}

// mainPID is the unit's MainPID (0 when not running).
func (c *container) mainPID() int {
	out, _ := c.quiet("systemctl show -p MainPID --value carpd")
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// restarts is the unit's NRestarts.
func (c *container) restarts() int {
	out, _ := c.quiet("systemctl show -p NRestarts --value carpd")
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// waitNewPID waits until carpd runs under another PID than old.
func (c *container) waitNewPID(old int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p := c.mainPID(); p != 0 && p != old {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: carpd still PID %d (or not running) after %v", c.name, old, timeout)
}

// journalEntry is the part of `journalctl -o json` the test reads.
type journalEntry struct {
	Identifier string `json:"SYSLOG_IDENTIFIER"`
	Priority   string `json:"PRIORITY"`
	Message    any    `json:"MESSAGE"` // a string, or bytes as numbers
}

// journal returns the entries `journalctl args -o json` prints.
func (c *container) journal(args string) ([]journalEntry, error) {
	out, err := c.quiet("journalctl --no-pager -o json " + args)
	if err != nil {
		return nil, fmt.Errorf("%s: journalctl %s: %w", c.name, args, err)
	}
	var es []journalEntry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("%s: journalctl -o json: %w: %q", c.name, err, line)
		}
		es = append(es, e)
	}
	return es, nil
}

func (e journalEntry) message() string {
	switch m := e.Message.(type) {
	case string:
		return m
	case []any:
		b := make([]byte, 0, len(m))
		for _, x := range m {
			if f, ok := x.(float64); ok {
				b = append(b, byte(f))
			}
		}
		return string(b)
	}
	return ""
}

// waitJournal waits until the unit's journal has a line of carpd's that
// contains substr.
func (c *container) waitJournal(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, _ := c.quiet("journalctl --no-pager -o cat -u carpd")
		if strings.Contains(out, substr) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New(c.name + ": no journal line with " + strconv.Quote(substr))
}
