package service

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/access"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// checkRun is carpd --check-config or --check with args, as cmd/carpd
// runs it: the exit status.
func checkRun(args []string, stdout, stderr io.Writer) int {
	f, err := ParseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return ExitUsage
	}
	return Check(f, stdout, stderr)
}

// TestCheckAsServiceUser: --check run as root checks the configuration
// file, the password files, the hooks and the exec checks' programs as the
// service's user meets them (here nobody), and names each problem with its
// place and its fix.
func TestCheckAsServiceUser(t *testing.T) {
	labtest.RequireRoot(t)
	nobody, err := access.LookupUser("nobody")
	if err != nil {
		labtest.Missing(t, "no user nobody: %v", err)
	}
	dir := labtest.OpenDir(t)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// The tests' files are in /tmp, which the real unit hides: stand in
	// home for /home.
	old := unitSandbox
	unitSandbox = []access.Hidden{{Dir: home, Setting: "ProtectHome=yes"}}
	t.Cleanup(func() { unitSandbox = old })

	pass := labtest.WriteFile(t, filepath.Join(dir, "v.pass"), "secret\n", 0o600)
	up := labtest.WriteFile(t, filepath.Join(dir, "up.sh"), "#!/bin/sh\n", 0o700)
	notify := labtest.WriteFile(t, filepath.Join(home, "notify.sh"), "#!/bin/sh\n", 0o755)
	good := labtest.WriteFile(t, filepath.Join(dir, "good.sh"), "#!/bin/sh\n", 0o755)
	body := fmt.Sprintf(`upscript = %q
notify = %q

[[vhid]]
interface = "lo"
vhid = 1
addresses = ["192.0.2.50/32"]
password-file = "v.pass"

[[check]]
name = "db"
exec = "/nonexistent/check-db"

[[check]]
name = "web"
exec = [%q, "-q"]
`, up, notify, good)
	conf := labtest.WriteFile(t, filepath.Join(dir, "carpd.toml"), body, 0o600)
	var stdout, stderr bytes.Buffer
	code := checkRun([]string{"--config", conf, "--check", "--check-user", "nobody"}, &stdout, &stderr)
	if code != ExitProblems {
		t.Errorf("exit %d, want %d; stdout %q", code, ExitProblems, stdout.String())
	}
	g := nobody.GroupName
	want := []string{
		fmt.Sprintf("carpd: %s: configuration file %s: user nobody cannot read it (mode 0600, owner root:root); fix: chown root:%s %s; chmod 0640 %s", conf, conf, g, conf, conf),
		fmt.Sprintf("carpd: %s:1: upscript %s: user nobody cannot execute it (mode 0700, owner root:root); fix: chmod 0755 %s", conf, up, up),
		fmt.Sprintf("carpd: %s:2: notify %s: under %s, which the unit's ProtectHome=yes hides from the service; move it (to /etc/carpd or /usr/local/sbin, say)", conf, notify, home),
		fmt.Sprintf("carpd: %s:8: password file %s: user nobody cannot read it (mode 0600, owner root:root); fix: chown nobody %s; chmod 0600 %s", conf, pass, pass, pass),
		fmt.Sprintf("carpd: %s:12: exec check program /nonexistent/check-db: /nonexistent: does not exist", conf),
	}
	if diff := cmp.Diff(strings.Join(want, "\n")+"\n", stderr.String()); diff != "" {
		t.Errorf("stderr mismatch (-want +got):\n%s", diff)
	}

	// Put right as the messages say (the password file aside: as root,
	// carpd accepts only root's or carpd's), they pass.
	for _, p := range []string{up, conf} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body = strings.Replace(body, notify, good, 1)
	body = strings.Replace(body, "password-file = \"v.pass\"\n", "", 1)
	body = strings.Replace(body, "/nonexistent/check-db", good, 1)
	labtest.WriteFile(t, conf, body, 0o640)
	if err := os.Chown(conf, 0, nobody.GID); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := checkRun([]string{"--config", conf, "--check", "--check-user", "nobody"}, &stdout, &stderr); code != ExitOK {
		t.Errorf("put right: exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
}

// TestCheckHookUser: --check refuses a hook-user that cannot work under
// the unit (carpd as the user carpd) and says which sandbox hooks run in.
func TestCheckHookUser(t *testing.T) {
	// As another user, carpd without CAP_SETUID refuses any hook-user
	// first, for that reason.
	labtest.RequireRoot(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "hook.sock")
	t.Setenv("CARPD_HOOK_SOCKET", sock)
	conf := func(user string) string {
		p := filepath.Join(dir, "c.toml")
		body := user + "\nhook = \"/bin/true\"\n\n[[vhid]]\ninterface = \"lo\"\nvhid = 1\naddresses = [\"192.0.2.50/32\"]\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(user string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := checkRun([]string{"--config", conf(user), "--check"}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := check(""); code != ExitOK || !strings.Contains(out, "hooks run as carpd inside carpd's sandbox") || !strings.Contains(out, "ProtectHome=yes") {
		t.Errorf("no hook-user: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := check(`hook-user = "www-data"`); code == ExitOK || !strings.Contains(errOut, `c.toml:1: hook-user "www-data": carpd runs as carpd with NoNewPrivileges`) {
		t.Errorf("hook-user www-data: %d %q", code, errOut)
	}
	// A hook-user that cannot work is the one problem: the hook is not
	// checked as that user too (which advised giving it the directory).
	hook := filepath.Join(dir, "devd.sh") // dir: 0700 root, closed to nobody
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "hook-user = \"nobody\"\nhook = \"" + hook + "\"\n\n[[vhid]]\ninterface = \"lo\"\nvhid = 1\naddresses = [\"192.0.2.50/32\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "c.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := checkRun([]string{"--config", filepath.Join(dir, "c.toml"), "--check"}, &stdout, &stderr)
	if errOut := stderr.String(); code == ExitOK || !strings.Contains(errOut, `hook-user "nobody"`) || strings.Contains(errOut, "user nobody cannot") {
		t.Errorf("hook-user nobody, hook closed to it: %d %q", code, errOut)
	}
	for _, p := range []string{"/etc/systemd/system/carpd-hook.socket", "/usr/lib/systemd/system/carpd-hook.socket", "/lib/systemd/system/carpd-hook.socket"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s is installed here", p)
		}
	}
	if code, _, errOut := check(`hook-user = "root"`); code == ExitOK || !strings.Contains(errOut, "the root hook helper is not installed") {
		t.Errorf("hook-user root, no helper: %d %q", code, errOut)
	}
	if err := os.WriteFile(sock, nil, 0o600); err != nil { // the socket's place taken: "exists"
		t.Fatal(err)
	}
	if code, out, errOut := check(`hook-user = "root"`); code != ExitOK || !strings.Contains(out, "hooks run as root in the root hook helper (carpd-hook@.service)") {
		t.Errorf("hook-user root with the helper: %d %q %q", code, out, errOut)
	}
}
