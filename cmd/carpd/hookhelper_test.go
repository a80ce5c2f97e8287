package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/hooks"
)

// buildCarpd builds this carpd into dir.
func buildCarpd(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "carpd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("go build: %v\n%s", err, out)
	}
	return bin
}

// helperRequest runs `carpd hook-helper args...` on one end of a socket
// pair (its stdin and stdout, as systemd's Accept=yes gives it), sends req
// on the other and returns the answer and the helper's stderr.
func helperRequest(t *testing.T, bin string, args []string, req string) (hooks.Outcome, string) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "carpd"), os.NewFile(uintptr(fds[1]), "helper")
	defer ours.Close()
	cmd := exec.Command(bin, append([]string{hooks.HelperCommand}, args...)...)
	cmd.Stdin, cmd.Stdout = theirs, theirs
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	if _, err := ours.WriteString(req + "\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(ours).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no answer: %v; stderr %s", err, stderr.String())
	}
	_ = cmd.Wait()
	var o hooks.Outcome
	if err := json.Unmarshal(line, &o); err != nil {
		t.Fatalf("answer %q: %v", line, err)
	}
	return o, stderr.String()
}

// TestHookHelper runs the real `carpd hook-helper` over a socket pair: a
// hook root configured with hook-user = "root" runs as root and its exit
// status and stderr come back; anything else is refused and nothing runs.
func TestHookHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildCarpd(t, dir)
	t.Setenv("CARPD_HOOK_STATE", filepath.Join(dir, "state", "known.json"))
	log := filepath.Join(dir, "log")
	up := filepath.Join(dir, "up.sh")
	if err := os.WriteFile(up, []byte("#!/bin/sh\necho \"$* uid=$(id -u) $CARP_VHID\" >> "+log+"\necho done >&2\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := func(name, extra string) string {
		p := filepath.Join(dir, name)
		body := fmt.Sprintf("%s\nupscript = %q\n\n[[vhid]]\ninterface = \"eth0\"\nvhid = 100\naddresses = [\"192.0.2.50/24\"]\n", extra, up)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := conf("root.toml", `hook-user = "root"`)
	req := func(argv ...string) string {
		data, _ := json.Marshal(hooks.Request{VHID: 100, Interface: "eth0", Hook: "upscript", Argv: argv, Env: []string{"CARP_VHID=100"}})
		return string(data)
	}

	o, stderr := helperRequest(t, bin, []string{"--config", root}, req(up, "eth0", "192.0.2.50"))
	if o.Result != hooks.ResultFailed || o.Exit == nil || *o.Exit != 7 || o.Stderr != "done" {
		t.Errorf("a configured hook: %+v, want failed, exit 7, stderr done; helper: %s", o, stderr)
	}
	if data, _ := os.ReadFile(log); string(data) != "eth0 192.0.2.50 uid=0 100\n" {
		t.Errorf("the hook ran as %q", data)
	}
	for _, tc := range []struct {
		args []string
		req  string
		want string
	}{
		{[]string{"--config", root}, req("/bin/sh", "-c", "id"), "is not the configured"},
		{[]string{"--config", root}, req(up, "eth0", "203.0.113.1"), "one of its addresses"},
		{[]string{"--config", root}, `{"vhid":100,"iface":"eth0","hook":"upscript","argv":["` + up + `"],"cmd":"x"}`, `unknown field "cmd"`},
		{[]string{"--config", root}, `garbage`, "malformed request"},
		{[]string{"--config", conf("user.toml", "")}, req(up, "eth0", "192.0.2.50"), `does not set hook-user = "root"`},
		{[]string{"--config", filepath.Join(dir, "none.toml")}, req(up, "eth0", "192.0.2.50"), "cannot read the configuration"},
	} {
		o, stderr := helperRequest(t, bin, tc.args, tc.req)
		if o.Result != hooks.ResultRefused || !strings.Contains(o.Error, tc.want) {
			t.Errorf("%s: %+v, want refused: %q", tc.req, o, tc.want)
		}
		if !strings.Contains(stderr, "hook not run") && !strings.Contains(stderr, "request refused") {
			t.Errorf("the helper does not log the refusal: %s", stderr)
		}
	}
	if data, _ := os.ReadFile(log); strings.Count(string(data), "\n") != 1 {
		t.Errorf("a refused request ran the hook:\n%s", data)
	}
}

// TestHookHelperRegistered runs the real `carpd hook-helper`: carpd
// registers configuration A, root edits the file to B (another down
// script, another address, vhid 100 gone); A's down script, which the
// running carpd still calls, runs; a hook in neither A nor B is refused;
// without the register, A's down script is refused.
func TestHookHelperRegistered(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildCarpd(t, dir)
	state := filepath.Join(dir, "state", "known.json")
	t.Setenv("CARPD_HOOK_STATE", state)
	log := filepath.Join(dir, "log")
	script := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho \""+name+" $*\" >> "+log+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	downA, downB, other := script("down-a.sh"), script("down-b.sh"), script("other.sh")
	conf := filepath.Join(dir, "carpd.toml")
	write := func(down string, vhid int, addr string) {
		body := fmt.Sprintf("hook-user = \"root\"\ndownscript = %q\n\n[[vhid]]\ninterface = \"eth0\"\nvhid = %d\naddresses = [%q]\n", down, vhid, addr)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	req := func(vhid uint8, argv ...string) string {
		data, _ := json.Marshal(hooks.Request{VHID: vhid, Interface: "eth0", Hook: "downscript", Argv: argv})
		return string(data)
	}
	args := []string{"--config", conf}
	oldDown := req(100, downA, "eth0", "192.0.2.50")

	write(downA, 100, "192.0.2.50/24")
	write(downB, 101, "198.51.100.7/24") // edited before any register
	if o, _ := helperRequest(t, bin, args, oldDown); o.Result != hooks.ResultRefused {
		t.Fatalf("A's down script with A never registered: %+v, want refused", o)
	}

	write(downA, 100, "192.0.2.50/24")
	if o, stderr := helperRequest(t, bin, args, `{"register":true}`); o.Result != hooks.ResultOK || !strings.Contains(stderr, "configuration registered") {
		t.Fatalf("register A: %+v; helper: %s", o, stderr)
	}
	write(downB, 101, "198.51.100.7/24")
	o, stderr := helperRequest(t, bin, args, oldDown)
	if o.Result != hooks.ResultOK || o.Exit == nil || *o.Exit != 0 {
		t.Errorf("A's down script after the edit to B: %+v, want run; helper: %s", o, stderr)
	}
	if o, stderr := helperRequest(t, bin, args, req(101, downB, "eth0", "198.51.100.7")); o.Result != hooks.ResultOK {
		t.Errorf("B's down script: %+v; helper: %s", o, stderr)
	}
	for _, r := range []string{
		req(100, other, "eth0", "192.0.2.50"),   // never configured
		req(100, downA, "eth0", "198.51.100.7"), // A's script, an address A never had for it
		req(101, downA, "eth0", "198.51.100.7"), // A's script on B's vhid
		`{"register":true,"argv":["/bin/sh"]}`,  // a register carries nothing else
	} {
		o, stderr := helperRequest(t, bin, args, r)
		if o.Result != hooks.ResultRefused {
			t.Errorf("%s: %+v, want refused; helper: %s", r, o, stderr)
		}
	}
	data, _ := os.ReadFile(log)
	if want := "down-a.sh eth0 192.0.2.50\ndown-b.sh eth0 198.51.100.7\n"; string(data) != want {
		t.Errorf("ran:\n%s\nwant:\n%s", data, want)
	}
	if st, err := os.Stat(filepath.Dir(state)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v", st, err)
	}
	// A register the helper cannot serve (no configuration) is refused.
	if o, _ := helperRequest(t, bin, []string{"--config", filepath.Join(dir, "none.toml")}, `{"register":true}`); o.Result != hooks.ResultRefused {
		t.Errorf("register with no configuration: %+v, want refused", o)
	}
}
