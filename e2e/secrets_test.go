package e2e

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// The pass phrases of TestSecretsNeverShown: distinctive, and longer than
// the 19 bytes of the HMAC key (carp.MaxKeyLen), so that the phrase and
// the key are two different needles.
const (
	secretRC    = "Qv7-SeCrEt-rc-9xK4-tail-z3"    // rc.conf's pass
	secretRC2   = "Hm5-OtHeR-rc-2wQ8-tail-b6"     // the backup's, changed by a reload
	secretFile  = "Fw2-FiLeSeC-e2e-8jP6-tail-m1"  // password-file's
	secretTOML  = "Tn4-InLiNe-toml-5rD1-tail-k9"  // written in carpd.toml (check-config only)
	secretOther = "Yb8-IntRuDeR-3sV7-longer-tail" // another password-file's (check-config only)
)

// secretKeyLen is carp.MaxKeyLen: the bytes of a phrase that count.
const secretKeyLen = 19

// secretNeedle is one form in which a secret could show.
type secretNeedle struct {
	what string // "phrase Qv7-... as hex", for the report
	text string
}

// secretNeedles returns the forms of a pass phrase that must never show:
// the phrase, its first 19 bytes (the HMAC key), each in hex (lower and
// upper case) and base64 (as encoding/json writes a []byte), and as a
// goroutine dump prints an argument: every 8-byte run as a little-endian
// word (0x...), every 6-byte run as a byte array's elements (0x51, 0x76,
// ...).
func secretNeedles(secret string) []secretNeedle {
	var ns []secretNeedle
	for _, s := range []struct{ what, v string }{{"phrase", secret}, {"key", secret[:secretKeyLen]}} {
		b := []byte(s.v)
		ns = append(ns,
			secretNeedle{s.what + " " + s.v, s.v},
			secretNeedle{s.what + " " + s.v + " as hex", hex.EncodeToString(b)},
			secretNeedle{s.what + " " + s.v + " as HEX", strings.ToUpper(hex.EncodeToString(b))},
			secretNeedle{s.what + " " + s.v + " as base64", strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")},
		)
		for i := 0; i+8 <= len(b); i++ {
			ns = append(ns, secretNeedle{fmt.Sprintf("%s %s bytes %d..%d as a word", s.what, s.v, i, i+8),
				fmt.Sprintf("0x%x", binary.LittleEndian.Uint64(b[i:]))})
		}
		// A byte array argument: {0x51, 0x76, 0x37, ...}.
		for i := 0; i+6 <= len(b); i++ {
			var list []string
			for _, c := range b[i : i+6] {
				list = append(list, fmt.Sprintf("0x%x", c))
			}
			ns = append(ns, secretNeedle{fmt.Sprintf("%s %s bytes %d..%d as a byte array", s.what, s.v, i, i+6),
				strings.Join(list, ", ")})
		}
	}
	return ns
}

// secretScan collects everything carpd and carpctl showed, to grep it for
// the secrets at the end.
type secretScan struct {
	needles []secretNeedle
	samples []secretSample
}

type secretSample struct{ name, text string }

func newSecretScan(secrets ...string) *secretScan {
	s := &secretScan{}
	for _, sec := range secrets {
		s.needles = append(s.needles, secretNeedles(sec)...)
	}
	return s
}

func (s *secretScan) add(name, text string) {
	s.samples = append(s.samples, secretSample{name, text})
}

// find returns the needles found in text.
func (s *secretScan) find(text string) []string {
	var found []string
	for _, n := range s.needles {
		if strings.Contains(text, n.text) {
			found = append(found, n.what)
		}
	}
	return found
}

// selfTest shows that the scan can fail: each needle is found in a text
// made to hold it among other words, and none in a text without them.
func (s *secretScan) selfTest(t *testing.T) {
	t.Helper()
	for _, n := range s.needles {
		text := "level=DEBUG msg=x value=" + n.text + " other=1"
		if got := s.find(text); len(got) == 0 {
			t.Fatalf("self-test: %s not found in %q", n.what, text)
		}
	}
	if got := s.find("level=INFO msg=\"carp: 100@eth0: BACKUP -> MASTER\" 0xdeadbeef lampros"); len(got) != 0 {
		t.Fatalf("self-test: found %v in a text without secrets", got)
	}
}

// check fails the test for every sample that shows a secret, and logs how
// much was scanned.
func (s *secretScan) check(t *testing.T) {
	t.Helper()
	total := 0
	for _, smp := range s.samples {
		total += len(smp.text)
		if got := s.find(smp.text); len(got) != 0 {
			if len(got) > 4 {
				got = append(got[:4], fmt.Sprintf("and %d more", len(got)-4))
			}
			t.Errorf("%s shows secrets: %s\n%s", smp.name, strings.Join(got, "; "), excerpt(smp.text, 4000))
		}
	}
	t.Logf("scanned %d samples, %d bytes, for %d forms of the secrets", len(s.samples), total, len(s.needles))
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "\n[...]\n" + s[len(s)-n/2:]
}

// followEvents runs carpctl events against the socket at path until
// stop, which returns all it printed. It returns once the stream's first
// line (the snapshot) has arrived.
func followEvents(t *testing.T, path string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, carpctlBin, "--control", path, "events")
	var out lab.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() string {
		cancel()
		<-done
		return out.String()
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		select {
		case <-done:
			t.Fatalf("carpctl events on %s ended at once: %s", path, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("carpctl events on %s: no snapshot within 10 s", path)
		}
	}
	return stop
}

// waitOutputFrom waits until p's output after its first from bytes holds
// substr.
func waitOutputFrom(p *lab.Proc, from int, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output()[from:], substr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q within %v:\n%s", substr, timeout, p.Output()[from:])
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitControl waits until h's carpd answers on its control socket.
func waitControl(t *testing.T, c *cluster, h *lab.Host) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errOut, code := c.carpctl(h, "version")
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("carpd on %s does not answer: %s", h.Name, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secretRCConf is the walkthrough's rc.conf for a host with pass phrase
// pass.
func secretRCConf(own string, advskew int, pass string) string {
	return fmt.Sprintf("ifconfig_eth0=\"inet %s netmask 255.255.255.0\"\n"+
		"ifconfig_eth0_alias0=\"inet 192.0.2.50/32 vhid 100 advskew %d pass %s\"\n", own, advskew, pass)
}

// secretTOMLConf is a host's carpd.toml with its pass phrase in passFile
// and hook as every vhid's devd-style hook.
func secretTOMLConf(advskew int, passFile, hook string) string {
	return fmt.Sprintf(`preempt = true
hook = %q

[[vhid]]
interface = "eth0"
vhid = 100
advskew = %d
password-file = %q
addresses = ["192.0.2.50/32"]
`, hook, advskew, passFile)
}

// writeFile writes a file of the test with mode perm (whatever the umask).
func writeFile(t *testing.T, path, body string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsNeverShown runs two carpd pairs, the first with rc.conf's
// pass, the second with TOML password files, both at log level debug,
// through what shows carpd's state: every carpctl command in text and
// JSON, the event streams, /metrics and /healthz, the state file, reloads
// (good, with a changed password, refused), a demotion that moves the
// address, a planned and an unplanned failover, hooks that print their
// environment, carpd --check-config of files with mistakes beside the pass
// phrase, a start refused for a password file others can read, and a
// goroutine dump (SIGQUIT, with GOTRACEBACK=system on one host). Nothing
// of it may show a pass phrase, its 19-byte key, their hex or base64, or
// a word of them as a dump prints it.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t, "--metrics-listen", metricsAddr, "--preempt")
	scan := newSecretScan(secretRC, secretRC2, secretFile, secretTOML, secretOther)
	scan.selfTest(t)

	type tracked struct {
		host string
		p    *lab.Proc
	}
	var procs []tracked
	var events []func() string
	follow := func(h *lab.Host) {
		waitControl(t, c, h)
		events = append(events, followEvents(t, c.ctlPath(h)))
	}
	carpctl := func(h *lab.Host, wantCode int, args ...string) {
		t.Helper()
		out, errOut, code := c.carpctl(h, args...)
		if wantCode >= 0 && code != wantCode {
			t.Errorf("carpctl %v on %s: exit %d, want %d\n%s%s", args, h.Name, code, wantCode, out, errOut)
		}
		scan.add(fmt.Sprintf("carpctl %s on %s", strings.Join(args, " "), h.Name), out+errOut)
	}
	everyCommand := func(h *lab.Host) {
		t.Helper()
		for _, args := range [][]string{
			{"status"}, {"--json", "status"}, {"stats"}, {"--json", "stats"},
			{"version"}, {"--json", "version"}, {"log-level", "debug"}, {"--json", "log-level", "debug"},
		} {
			carpctl(h, 0, args...)
		}
		carpctl(h, -1, "is-master", "100")
		carpctl(h, -1, "--json", "is-master", "100@eth0")
		carpctl(h, 2, "state", "99", "master")
		carpctl(h, 2, "--json", "state", "99@eth0", "backup")
		carpctl(h, 2, "demote", "x")
		for _, path := range []string{"/metrics", "/healthz"} {
			code, body := httpGet(t, h, metricsAddr, path)
			if code != 200 {
				t.Errorf("%s on %s: %d", path, h.Name, code)
			}
			scan.add(path+" on "+h.Name, body)
		}
	}
	sigquit := func(h *lab.Host, p *lab.Proc) {
		t.Helper()
		if err := p.Signal(syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("carpd on %s did not exit on SIGQUIT", h.Name)
		}
		// The control: the dump is there to be scanned.
		if out := p.Output(); !strings.Contains(out, "SIGQUIT: quit") || !strings.Contains(out, "goroutine ") {
			t.Errorf("carpd on %s: no goroutine dump after SIGQUIT (exit %d):\n%s", h.Name, p.ExitCode(), excerpt(out, 2000))
		}
	}
	waitSoleHolder := func(h *lab.Host, timeout time.Duration, what string) {
		t.Helper()
		if _, ok := c.waitHolder(h, timeout); !ok {
			t.Fatalf("%s: holders %v, want only %s", what, c.holders(), h.Name)
		}
	}

	// A hook that prints its whole environment and fails, so that the
	// environment reaches the log and the events.
	hook := filepath.Join(c.dir, "env-hook.sh")
	writeFile(t, hook, "#!/bin/sh\nenv >&2\necho \"args: $*\" >&2\nexit 1\n", 0o755)

	// 1. rc.conf lines with pass, ucarp's hooks.
	t.Log("rc.conf")
	rc := map[*lab.Host]string{
		c.master: secretRCConf("192.0.2.21", 100, secretRC),
		c.backup: secretRCConf("192.0.2.22", 200, secretRC),
	}
	for h, body := range rc {
		writeFile(t, c.rcPath(h), body, 0o600)
		// The control: the scan finds the phrase where it is.
		if got := scan.find(body); len(got) == 0 {
			t.Fatalf("the scan does not find the phrase in %s's rc.conf", h.Name)
		}
	}
	startRC := func(h *lab.Host) *lab.Proc {
		p := c.startCarpd(h, "--rc-conf", c.rcPath(h), "--log-level", "debug", "--upscript", hook, "--downscript", hook)
		procs = append(procs, tracked{h.Name, p})
		return p
	}
	mp, bp := startRC(c.master), startRC(c.backup)
	waitSoleHolder(c.master, 15*time.Second, "start")
	follow(c.master)
	follow(c.backup)
	for _, h := range []*lab.Host{c.master, c.backup} {
		everyCommand(h)
		carpctl(h, 0, "demote", "+1", "--reason", "secrets test", "--persist")
		st, err := os.ReadFile(filepath.Join(c.dir, h.Name+".state"))
		if err != nil {
			t.Errorf("state file of %s: %v", h.Name, err)
		}
		scan.add("state file of "+h.Name, string(st))
		carpctl(h, 0, "demote", "--clear")
		carpctl(h, 0, "reload")
		if err := c.procs[h].Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// A demotion moves the address (the backup preempts), its end moves it
	// back.
	carpctl(c.master, 0, "demote", "+200", "--reason", "secrets test")
	waitSoleHolder(c.backup, 10*time.Second, "master demoted")
	carpctl(c.backup, 0, "status")
	carpctl(c.master, 0, "--json", "status")
	carpctl(c.master, 0, "demote", "--clear")
	waitSoleHolder(c.master, 10*time.Second, "demotion cleared")

	// A reload with another password on the backup: each side drops the
	// other's adverts (badauth, logged at debug), the backup takes over
	// beside the master; the right password again, and it steps down.
	writeFile(t, c.rcPath(c.backup), secretRCConf("192.0.2.22", 200, secretRC2), 0o600)
	from := len(bp.Output())
	carpctl(c.backup, 0, "reload")
	if err := waitOutputFrom(bp, from, "BACKUP -> MASTER (master timed out)", masterDown+5*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(3 * time.Second) // badauth drops on both sides, logged at debug after the first
	carpctl(c.master, 0, "--json", "stats")
	carpctl(c.backup, 0, "stats")
	writeFile(t, c.rcPath(c.backup), rc[c.backup], 0o600)
	carpctl(c.backup, 0, "reload")
	waitSoleHolder(c.master, 10*time.Second, "the password agreed again")

	// Refused reloads: mistakes on the line that holds the pass phrase.
	for _, bad := range []string{
		`ifconfig_eth0_alias0="inet 192.0.2.50/33 vhid 100 advskew 200 pass ` + secretRC + `"`,
		`ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 advskew 200 pass ` + secretRC,
		`ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 advskew 200 pass ` + secretRC + `" junk`,
		`ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 advskew 200 pass ` + secretRC + ` pass x"`,
		`ifconfig_eth0_alias0=inet 192.0.2.50/32 vhid 100 advskew 200 pass ` + secretRC,
	} {
		writeFile(t, c.rcPath(c.backup), bad+"\n", 0o600)
		carpctl(c.backup, 2, "reload")
		if err := bp.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitOutputFrom(bp, from, "reload refused", 5*time.Second); err != nil {
		t.Error(err)
	}
	writeFile(t, c.rcPath(c.backup), rc[c.backup], 0o600)
	carpctl(c.backup, 0, "reload")

	// A planned failover (SIGTERM: bow-out) and the master back.
	if err := mp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitSoleHolder(c.backup, 10*time.Second, "master stopped")
	_ = mp.Wait()
	mp = startRC(c.master)
	waitSoleHolder(c.master, 15*time.Second, "master restarted (preempt)")
	follow(c.master)
	everyCommand(c.backup)
	sigquit(c.master, mp)
	sigquit(c.backup, bp)
	// The address left behind expires (its lifetime is 3 adverts).
	deadline := time.Now().Add(10 * time.Second)
	for len(c.holders()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the address is still held by %v after both carpd died", c.holders())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 2. carpd.toml with password files and a devd-style hook.
	t.Log("TOML")
	passFile := map[*lab.Host]string{c.master: filepath.Join(c.dir, "master.pass"), c.backup: filepath.Join(c.dir, "backup.pass")}
	tomlPath := map[*lab.Host]string{c.master: filepath.Join(c.dir, "master.toml"), c.backup: filepath.Join(c.dir, "backup.toml")}
	for h, skew := range map[*lab.Host]int{c.master: 100, c.backup: 200} {
		writeFile(t, passFile[h], secretFile+"\n", 0o600)
		writeFile(t, tomlPath[h], secretTOMLConf(skew, passFile[h], hook), 0o644)
	}
	// A password file others may read: carpd refuses to start, naming
	// the file, its mode and the fix.
	writeFile(t, passFile[c.master], secretFile+"\n", 0o644)
	refused := c.startCarpd(c.master, "--config", tomlPath[c.master], "--log-level", "debug")
	procs = append(procs, tracked{"master (refused)", refused})
	_ = refused.Wait()
	wantRefusal := fmt.Sprintf(`master.toml:8: "password-file = \"%s\"": password file %s has mode 0644: its group and others may read it (it must be 0600 or 0400); fix: chmod 600 %s`,
		passFile[c.master], passFile[c.master], passFile[c.master])
	if refused.ExitCode() != 78 || !strings.Contains(refused.Output(), wantRefusal) {
		t.Errorf("carpd with a password file of mode 0644: exit %d, want 78 and %q:\n%s", refused.ExitCode(), wantRefusal, refused.Output())
	}
	writeFile(t, passFile[c.master], secretFile+"\n", 0o600)

	startTOML := func(h *lab.Host) *lab.Proc {
		var wrap []string
		if h == c.backup {
			wrap = []string{"env", "GOTRACEBACK=system"}
		}
		p := c.startWrapped(h, wrap, "--config", tomlPath[h], "--log-level", "debug")
		procs = append(procs, tracked{h.Name, p})
		return p
	}
	startTOML(c.master)
	bp = startTOML(c.backup)
	waitSoleHolder(c.master, 15*time.Second, "TOML start")
	follow(c.master)
	follow(c.backup)
	for _, h := range []*lab.Host{c.master, c.backup} {
		everyCommand(h)
		carpctl(h, 0, "reload")
	}
	// A reload refused for the password file's mode: the running
	// configuration stays.
	if err := os.Chmod(passFile[c.backup], 0o640); err != nil {
		t.Fatal(err)
	}
	carpctl(c.backup, 2, "reload")
	if err := bp.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := waitOutputFrom(bp, 0, "has mode 0640: its group may read it", 5*time.Second); err != nil {
		t.Error(err)
	}
	if st := c.status(c.backup); st.VHIDs[0].State != "BACKUP" || st.VHIDs[0].AdvSkew != 200 {
		t.Errorf("after the refused reload: %+v", st.VHIDs[0])
	}
	if err := os.Chmod(passFile[c.backup], 0o600); err != nil {
		t.Fatal(err)
	}
	carpctl(c.backup, 0, "reload")
	// An unplanned failover and the master back.
	c.reboot(c.master)
	waitSoleHolder(c.backup, masterDown+5*time.Second, "master cut")
	if err := c.master.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if err := c.master.AddAddr(masterAddr); err != nil {
		t.Fatal(err)
	}
	mp = startTOML(c.master)
	waitSoleHolder(c.master, 15*time.Second, "master back (preempt)")
	follow(c.master)
	everyCommand(c.master)
	carpctl(c.backup, 0, "--json", "status")
	time.Sleep(time.Second) // the hooks of the last transitions
	sigquit(c.master, mp)
	sigquit(c.backup, bp)

	// 3. carpd --check-config of files with mistakes beside a pass phrase.
	t.Log("check-config")
	dir := t.TempDir()
	toml := func(lines string) string {
		return "[[vhid]]\ninterface = \"eth0\"\nvhid = 100\naddresses = [\"192.0.2.50/32\"]\n" + lines + "\n"
	}
	for i, bad := range []struct{ name, body string }{
		{"c.toml", toml(`password = "` + secretTOML + `" x`)},
		{"c.toml", toml(`password = "` + secretTOML + `"` + "\n" + `password = "` + secretTOML + `"`)},
		{"c.toml", toml(`password = "` + secretTOML)},
		{"c.toml", toml(`password = "` + secretTOML + `\q"`)},
		{"c.toml", toml(`password = ["` + secretTOML + `"]`)},
		{"c.toml", toml(`password = { a = "` + secretTOML + `" }`)},
		{"c.toml", toml(`password = "` + secretTOML + `"` + "\npassword-file = \"other.pass\"")},
		{"c.toml", `password = "` + secretTOML + `"` + "\n" + toml("")},
		{"c.toml", toml(`password = "` + secretTOML + `"` + "\nadvskew = 300")},
		{"c.toml", toml(`password = '''` + secretTOML + "\n'''\nvhid = 7")},
		{"c.toml", toml("password-file = \"other.pass\"\nadvbase = 0")},
		{"rc.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/33 vhid 100 pass ` + secretRC + `"`},
		{"rc.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 300 pass ` + secretRC + `"`},
		{"rc.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 pass ` + secretRC + `\`},
		{"rc.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 100 pass ` + secretRC + `"` + "\n" +
			`ifconfig_eth0_alias1="inet 192.0.2.51/32 vhid 100 pass ` + secretRC2 + `"`},
	} {
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(sub, "other.pass"), secretOther+"\n", 0o600)
		path := filepath.Join(sub, bad.name)
		writeFile(t, path, bad.body, 0o600)
		out, err := exec.Command(carpdBin, "--check-config", path).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != 2 {
			t.Errorf("carpd --check-config of\n%s\nexit %d, want 2: %s", bad.body, code, out)
		}
		scan.add(fmt.Sprintf("carpd --check-config of\n%s\n", bad.body), string(out))
	}

	var logs strings.Builder
	for i, p := range procs {
		scan.add(fmt.Sprintf("carpd #%d on %s (exit %d)", i, p.host, p.p.ExitCode()), p.p.Output())
		logs.WriteString(p.p.Output())
	}
	// The controls: what the scan is for did happen and was captured.
	for _, want := range []string{
		"level=DEBUG", "hook failed", "CARP_VHID=100", "badauth", "configuration reloaded", "reload refused",
		"BACKUP -> MASTER", "MASTER -> BACKUP", "goroutine ", " fp=0x", // fp=: GOTRACEBACK=system's frames
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in carpd's output: the scan would miss what shows it", want)
		}
	}
	allEvents := ""
	for i, stop := range events {
		out := stop()
		// The control: the streams were read.
		if !strings.Contains(out, `"type":"snapshot"`) {
			t.Errorf("event stream #%d: no snapshot:\n%s", i, out)
		}
		scan.add(fmt.Sprintf("event stream #%d", i), out)
		allEvents += out
	}
	for _, want := range []string{`"type":"transition"`, `"type":"demotion"`, `"type":"hook"`, "CARP_VHID=100"} {
		if !strings.Contains(allEvents, want) {
			t.Errorf("no %s in the event streams", want)
		}
	}
	scan.check(t)
}
