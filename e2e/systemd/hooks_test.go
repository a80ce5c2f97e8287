package systemd

// The hooks under the shipped units (issue 23, item 2): carpd runs as the
// user carpd with three capabilities, and a hook with hook-user = "root"
// runs as root through the root hook helper (carpd-hook.socket, one
// carpd-hook@.service per hook). Each scenario uses the package as
// shipped and one setting, hook-user = "root", in carpd.toml (the ucarp
// one also manage-addresses = false, which is what makes its scripts hold
// the address, as with ucarp).

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// carpdCaps is CapEff (and CapPrm, CapBnd) of carpd under its unit:
// CAP_NET_ADMIN (12), CAP_NET_RAW (13) and CAP_SYS_NICE (23).
const carpdCaps = 1<<12 | 1<<13 | 1<<23

// Debian's ucarp scripts (package ucarp): vip-up runs `/sbin/ifup
// $1:ucarp`, vip-down `/sbin/ifdown $1:ucarp`; the address is the
// eth0:ucarp stanza of /etc/network/interfaces (README.Debian's).
const (
	vipUp      = "/usr/share/ucarp/vip-up"
	vipDown    = "/usr/share/ucarp/vip-down"
	ucarpIface = `# the virtual address, brought up by ucarp's vip-up (ifup eth0:ucarp)
iface eth0:ucarp inet static
	address 192.0.2.50
	netmask 255.255.255.0
`
)

// The hooks' settings: hook-user = "root" and the hooks; the ucarp scripts
// with manage-addresses = false.
var (
	ucarpHooks = `hook-user = "root"
manage-addresses = false
upscript = "` + vipUp + `"
downscript = "` + vipDown + `"`
	notifyHooks = `hook-user = "root"
notify_master = "/etc/carpd/notify.sh"`
	devdHooks = `hook-user = "root"
hook = "/etc/carpd/devd.sh"`
)

// notifyScript is a keepalived-style notify_master script: it restarts
// the service that goes with the address.
const notifyScript = `#!/bin/sh
# keepalived-style notify_master: restart the service that follows the address
exec systemctl restart dummy.service
`

// dummyUnit is the service notifyScript restarts: each start adds a line
// to /var/lib/dummy-starts.
const dummyUnit = `[Unit]
Description=carpd e2e: the service a notify_master script restarts

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'date +%%s.%%N >> /var/lib/dummy-starts'
`

// devdScript is a FreeBSD devd-style hook (SCRIPT vhid@iface STATE): it
// writes its arguments and its uid.
const devdScript = `#!/bin/sh
# devd-style: $1 is vhid@iface, $2 MASTER, BACKUP or INIT
echo "$1 $2 uid=$(id -u)" >> /var/log/carpd-devd.log
`

// advskew is a container's advskew (install's).
func (p *pair) advskew(c *container) int {
	if c == p.cs[0] {
		return 100
	}
	return 200
}

// writeConfig writes c's carpd.toml (root:carpd 0640 since install) with
// extra, and checks it as the unit would run it: carpd --check says where
// the hooks run.
func (p *pair) writeConfig(t *testing.T, c *container, extra string) {
	t.Helper()
	if _, err := c.runIn(10*time.Second, "cat > /etc/carpd/carpd.toml", config(p.advskew(c), extra)); err != nil {
		t.Fatalf("%s: writing /etc/carpd/carpd.toml: %v", c.name, err)
	}
	out, err := c.run(30*time.Second, "carpd --check")
	if err != nil {
		t.Fatalf("%s: carpd --check: %v", c.name, err)
	}
	if !strings.Contains(out, "hooks run as root in the root hook helper (carpd-hook@.service)") {
		t.Errorf("%s: carpd --check does not say the hooks run in the root hook helper", c.name)
	}
}

// writeScript writes an executable root:root 0755 file.
func writeScript(t *testing.T, c *container, path, text string) {
	t.Helper()
	if _, err := c.runIn(10*time.Second, "cat > "+path+" && chmod 0755 "+path+" && ls -l "+path, text); err != nil {
		t.Fatalf("%s: writing %s: %v", c.name, path, err)
	}
}

// switchHooks gives both carpds the hooks of extra, as an operator changes
// them under a running pair: on each container in turn, systemctl stop,
// edit, systemctl start. Stop first: the helper reads the file, and the
// down scripts carpd runs as it stops must still be in it. The backup goes
// first; the master's stop hands over to it (a transition under the new
// hooks). before runs on the future master once it is BACKUP under them.
// It returns the new master and backup.
func (p *pair) switchHooks(t *testing.T, extra string, before func(master *container)) (master, backup *container) {
	t.Helper()
	oldMaster, oldBackup := p.roles(t)
	oldBackup.sh("systemctl stop carpd")
	p.writeConfig(t, oldBackup, extra)
	oldBackup.sh("systemctl start carpd")
	if _, err := oldBackup.waitState("BACKUP", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(oldBackup)
	}
	oldMaster.sh("systemctl stop carpd")
	if _, err := oldBackup.waitState("MASTER", failoverMargin); err != nil {
		t.Fatal(err)
	}
	p.writeConfig(t, oldMaster, extra)
	oldMaster.sh("systemctl start carpd")
	if _, err := oldMaster.waitState("BACKUP", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return oldBackup, oldMaster
}

// checkCarpdCredentials checks that carpd runs as the user carpd with only
// its three capabilities (and NoNewPrivileges).
func checkCarpdCredentials(t *testing.T, c *container) {
	t.Helper()
	pid := c.mainPID()
	if pid == 0 {
		t.Fatalf("%s: carpd is not running", c.name)
	}
	out := c.sh(fmt.Sprintf("grep -E '^(Uid|Gid|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/%d/status; "+
		"capsh --decode=$(awk '/^CapEff/ {print $2}' /proc/%d/status); ps -o user=,group=,comm= -p %d; id -u carpd", pid, pid, pid))
	fields := map[string][]string{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.Fields(v)
		}
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		v := fields[k]
		n, err := strconv.ParseUint(strings.Join(v, ""), 16, 64)
		if len(v) != 1 || err != nil || n != carpdCaps {
			t.Errorf("%s: carpd's %s is %q, want %016x (CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_NICE)", c.name, k, v, carpdCaps)
		}
	}
	uid := lines[len(lines)-1]
	if u := fields["Uid"]; len(u) != 4 || u[0] != uid || u[1] != uid || u[2] != uid || u[3] != uid {
		t.Errorf("%s: carpd's Uid %q, want the user carpd's (%s) in all four", c.name, u, uid)
	}
	if nnp := fields["NoNewPrivs"]; len(nnp) != 1 || nnp[0] != "1" {
		t.Errorf("%s: carpd's NoNewPrivs %q, want 1", c.name, nnp)
	}
}

// hookSocket: the package installed carpd-hook.socket and started it,
// root:carpd 0660; carpd itself runs as carpd with its three capabilities.
func (p *pair) hookSocket(t *testing.T) {
	p.withT(t)
	for _, c := range p.cs {
		out, _ := c.run(10*time.Second, "systemctl is-enabled carpd-hook.socket; systemctl is-active carpd-hook.socket; "+
			"stat -c '%U:%G %a %F %n' /run/carpd-hook.sock")
		if want := "enabled\nactive\nroot:carpd 660 socket /run/carpd-hook.sock\n"; out != want {
			t.Errorf("%s: carpd-hook.socket: %q, want %q", c.name, out, want)
		}
		checkCarpdCredentials(t, c)
	}
}

// hasVIP reports whether c's eth0 holds the virtual address.
func hasVIP(c *container) bool {
	out, _ := c.quiet("ip -4 -o addr show dev eth0")
	return strings.Contains(out, " "+vip.String()+"/")
}

// waitVIP waits until c's eth0 holds the virtual address (want) or not.
func waitVIP(c *container, want bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if hasVIP(c) == want {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: eth0 holding %v is still %v after %v", c.name, vip, !want, timeout)
}

// heldAddresses is what carpctl status shows held (nil if no answer).
func heldAddresses(c *container) []string {
	s, ok := c.status()
	if !ok {
		return nil
	}
	return s.VHIDs[0].Addresses
}

// hookUcarpScripts: Debian's ucarp vip-up and vip-down, unchanged, with
// manage-addresses = false: the new master's vip-up brings the address up
// (ifup eth0:ucarp, as root through the helper), the client's probes are
// answered, carpctl status shows it held; on a planned stop vip-down takes
// it down.
func (p *pair) hookUcarpScripts(t *testing.T) {
	p.withT(t)
	for _, c := range p.cs {
		// The scripts as the package ships them: dpkg --verify prints
		// nothing for an unchanged package.
		out, err := c.run(10*time.Second, "dpkg -L ucarp | grep /usr/share/ucarp/; dpkg --verify ucarp && echo unchanged; "+
			"head -n 10 "+vipUp+" "+vipDown)
		if err != nil || !strings.Contains(out, "\nunchanged\n") {
			t.Fatalf("%s: ucarp's scripts not as shipped (%v)", c.name, err)
		}
		if _, err := c.runIn(10*time.Second, "cat > /etc/network/interfaces.d/ucarp", ucarpIface); err != nil {
			t.Fatal(err)
		}
	}
	var from time.Time
	master, backup := p.switchHooks(t, ucarpHooks, func(*container) { from = time.Now() })
	if err := waitVIP(master, true, 5*time.Second); err != nil {
		t.Error(err)
	}
	up := time.Now()
	master.sh("ip -4 -o addr show dev eth0; ifquery --state eth0:ucarp")
	if hasVIP(backup) {
		t.Errorf("%s: the backup holds %v", backup.name, vip)
	}
	// carpd, started with hook-user = "root": still its own three
	// capabilities, as the user carpd.
	checkCarpdCredentials(t, master)
	master.sh("carpctl status")
	if got := heldAddresses(master); len(got) != 1 || got[0] != "192.0.2.50/24" {
		t.Errorf("%s: carpctl status shows %q held, want [192.0.2.50/24]", master.name, got)
	}
	if got := heldAddresses(backup); len(got) != 0 {
		t.Errorf("%s: carpctl status of the backup shows %q held, want none", backup.name, got)
	}
	logStats(t, "hand-over to vip-up's address (systemctl stop of the master)", p.probes.window(from, up))
	time.Sleep(time.Second)
	s := p.probes.window(up, time.Now())
	logStats(t, "after vip-up", s)
	if s.Sent == 0 || s.Lost != 0 {
		t.Errorf("%d of %d probes lost after vip-up brought the address up", s.Lost, s.Sent)
	}

	// A planned stop: vip-down takes the address down on the stopped
	// one, vip-up brings it up on the other.
	stopped := time.Now()
	master.sh("systemctl stop carpd")
	if err := waitVIP(master, false, 5*time.Second); err != nil {
		t.Error(err)
	}
	master.run(10*time.Second, "ip -4 -o addr show dev eth0; ifquery --state eth0:ucarp; journalctl --no-pager -u carpd -n 4 -o cat")
	if _, err := backup.waitState("MASTER", failoverMargin); err != nil {
		t.Error(err)
	}
	if err := waitVIP(backup, true, 5*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Second)
	s = p.probes.window(stopped, time.Now())
	logStats(t, "systemctl stop of the master, the scripts moving the address", s)
	if !s.Recovered || s.Outage > failoverMargin {
		t.Errorf("outage %v (recovered %v), bound %v", s.Outage, s.Recovered, failoverMargin)
	}
	master.sh("systemctl start carpd")
	if _, err := master.waitState("BACKUP", 15*time.Second); err != nil {
		t.Error(err)
	}
}

// dummyStarts is how many times dummy.service started on c.
func dummyStarts(c *container) int {
	out, _ := c.quiet("cat /var/lib/dummy-starts 2>/dev/null | wc -l")
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// hookNotifyRestart: a keepalived-style notify_master script that runs
// `systemctl restart dummy.service`: the new master's dummy.service ran
// once more, the backup's not.
func (p *pair) hookNotifyRestart(t *testing.T) {
	p.withT(t)
	for _, c := range p.cs {
		writeScript(t, c, "/etc/carpd/notify.sh", notifyScript)
		if _, err := c.runIn(10*time.Second, "cat > /etc/systemd/system/dummy.service && systemctl daemon-reload", dummyUnit); err != nil {
			t.Fatal(err)
		}
	}
	before := map[*container]int{}
	master, backup := p.switchHooks(t, notifyHooks, func(*container) {
		for _, c := range p.cs {
			before[c] = dummyStarts(c)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for dummyStarts(master) == before[master] && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a second restart would show by now
	for c, want := range map[*container]int{master: before[master] + 1, backup: before[backup]} {
		c.run(10*time.Second, "cat /var/lib/dummy-starts; journalctl --no-pager -u dummy.service -o short-precise")
		if got := dummyStarts(c); got != want {
			t.Errorf("%s: dummy.service started %d times, was %d before the takeover, want %d", c.name, got, before[c], want)
		}
	}
}

// hookDevd: a devd-style hook (script vhid@iface STATE) as root: the new
// master's script got "100@eth0 MASTER" last, and ran as uid 0.
func (p *pair) hookDevd(t *testing.T) {
	p.withT(t)
	for _, c := range p.cs {
		writeScript(t, c, "/etc/carpd/devd.sh", devdScript)
		c.sh("rm -f /var/log/carpd-devd.log")
	}
	master, backup := p.switchHooks(t, devdHooks, nil)
	want := map[*container]string{master: "100@eth0 MASTER uid=0", backup: "100@eth0 BACKUP uid=0"}
	for c, last := range want {
		deadline := time.Now().Add(10 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			out, _ := c.quiet("tail -n 1 /var/log/carpd-devd.log")
			if got = strings.TrimSpace(out); got == last {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.run(10*time.Second, "ls -l /var/log/carpd-devd.log; cat /var/log/carpd-devd.log")
		if got != last {
			t.Errorf("%s: the devd hook's last call %q, want %q", c.name, got, last)
		}
	}
}

// hookJournal: each hook's run is in the journal twice: the helper's line
// under carpd-hook@*.service, and carpd's with via=hook-helper; and the
// helper refused no request.
func (p *pair) hookJournal(t *testing.T) {
	p.withT(t)
	helper, daemon := map[string]bool{}, map[string]bool{}
	hooks := []string{"upscript", "downscript", "notify_master", "devd"}
	for _, c := range p.cs {
		c.run(10*time.Second, "journalctl --no-pager -o cat -u 'carpd-hook@*' | tail -n 6; "+
			"journalctl --no-pager -o cat -u carpd | grep via=hook-helper | tail -n 4")
		hs, err := c.journal("-u 'carpd-hook@*'")
		if err != nil {
			t.Fatalf("%v: no entries of the helper's units?", err)
		}
		ds, err := c.journal("-u carpd")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hs {
			// The steps change hooks with carpd stopped: the helper,
			// which reads the file, refused nothing.
			if strings.Contains(e.message(), "hook not run") {
				t.Errorf("%s: the helper refused a hook or could not run it: %s", c.name, e.message())
			}
		}
		for _, h := range hooks {
			for _, e := range hs {
				m := e.message()
				helper[h] = helper[h] || e.Identifier == "carpd" && e.Priority == "6" &&
					strings.Contains(m, "carpd hook-helper: hook ran") && strings.Contains(m, " hook="+h+" ") && strings.Contains(m, " exit=0")
			}
			for _, e := range ds {
				m := e.message()
				daemon[h] = daemon[h] || e.Identifier == "carpd" && strings.Contains(m, "carpd: hook ran") &&
					strings.Contains(m, " hook="+h+" ") && strings.Contains(m, " via=hook-helper")
			}
		}
	}
	for _, h := range hooks {
		if !helper[h] {
			t.Errorf("journalctl -u 'carpd-hook@*': no line of the helper's (info) saying the %s hook ran with exit 0", h)
		}
		if !daemon[h] {
			t.Errorf("journalctl -u carpd: no line of carpd's saying the %s hook ran via=hook-helper", h)
		}
	}
}

// hookCheckRefuses: carpd --check (root, checking as the unit's user)
// refuses hook-user = "nobody", which carpd under the unit cannot become
// (exit 2, naming hook-user), and says where the hooks run: in carpd's
// sandbox without hook-user, in the helper with "root".
func (p *pair) hookCheckRefuses(t *testing.T) {
	p.withT(t)
	c := p.cs[0]
	for _, f := range []struct{ name, extra string }{
		{"nobody", `hook-user = "nobody"` + "\n" + `hook = "/etc/carpd/devd.sh"`},
		{"sandboxed", `hook = "/etc/carpd/devd.sh"`},
	} {
		path := "/etc/carpd/" + f.name + ".toml"
		if _, err := c.runIn(10*time.Second, "cat > "+path+" && chown root:carpd "+path+" && chmod 0640 "+path, config(100, f.extra)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.run(30*time.Second, "carpd --config /etc/carpd/nobody.toml --check")
	if code := exitCode(err); code != 2 || !strings.Contains(out, `hook-user "nobody"`) {
		t.Errorf("%s: carpd --check with hook-user = \"nobody\": exit %d, want 2 naming hook-user \"nobody\"", c.name, code)
	}
	out, err = c.run(30*time.Second, "carpd --config /etc/carpd/sandboxed.toml --check")
	if err != nil || !strings.Contains(out, "hooks run as carpd inside carpd's sandbox") {
		t.Errorf("%s: carpd --check without hook-user: %v, want it to say the hooks run as carpd in its sandbox", c.name, err)
	}
	out, err = c.run(30*time.Second, "carpd --check")
	if err != nil || !strings.Contains(out, "hooks run as root in the root hook helper (carpd-hook@.service)") {
		t.Errorf("%s: carpd --check with hook-user = \"root\": %v, want it to say the hooks run as root in the helper", c.name, err)
	}
	c.sh("rm /etc/carpd/nobody.toml /etc/carpd/sandboxed.toml")
}
