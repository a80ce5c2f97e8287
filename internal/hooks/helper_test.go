package hooks

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// helperScripts is a fake configuration: vhid 100 on eth0 with every
// convention.
func helperScripts() map[Key]Scripts {
	return map[Key]Scripts{key: {
		Devd: "/etc/carpd/devd.sh", Up: "/usr/share/ucarp/vip-up", Down: "/usr/share/ucarp/vip-down",
		Notify: "/etc/carpd/notify.sh", NotifyMaster: []string{"/bin/systemctl", "restart", "haproxy"},
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24")},
	}}
}

func TestValidate(t *testing.T) {
	env := []string{"CARP_VHID=100", "CARP_STATE=MASTER"}
	good := []Request{
		{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{"/etc/carpd/devd.sh", "100@eth0", "MASTER"}, Env: env},
		{VHID: 100, Interface: "eth0", Hook: "upscript", Argv: []string{"/usr/share/ucarp/vip-up", "eth0", "192.0.2.50"}},
		{VHID: 100, Interface: "eth0", Hook: "downscript", Argv: []string{"/usr/share/ucarp/vip-down", "eth0", "192.0.2.50"}},
		{VHID: 100, Interface: "eth0", Hook: "notify", Argv: []string{"/etc/carpd/notify.sh", "INSTANCE", "100@eth0", "FAULT", "155"}},
		{VHID: 100, Interface: "eth0", Hook: "notify_master", Argv: []string{"/bin/systemctl", "restart", "haproxy"}},
	}
	for _, r := range good {
		if err := Validate(r, helperScripts(), "root"); err != nil {
			t.Errorf("%v: %v", r.Argv, err)
		}
	}
	for _, tc := range []struct {
		req  Request
		user string
		want string
	}{
		{good[0], "", `does not set hook-user = "root"`},
		{good[0], "nobody", `does not set hook-user = "root"`},
		{Request{VHID: 7, Interface: "eth0", Hook: "devd", Argv: good[0].Argv}, "root", "no hook is configured for 7@eth0"},
		{Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{"/bin/sh", "100@eth0", "MASTER"}}, "root", "/bin/sh is not the configured /etc/carpd/devd.sh"},
		{Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{"/etc/carpd/devd.sh", "100@eth0", "; rm -rf /"}}, "root", "want 100@eth0 and a state"},
		{Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{"/etc/carpd/devd.sh", "100@eth0", "MASTER", "x"}}, "root", "3 arguments, want 2"},
		{Request{VHID: 100, Interface: "eth0", Hook: "upscript", Argv: []string{"/usr/share/ucarp/vip-up", "eth0", "203.0.113.9"}}, "root", "one of its addresses"},
		{Request{VHID: 100, Interface: "eth0", Hook: "upscript", Argv: []string{"/usr/share/ucarp/vip-down", "eth0", "192.0.2.50"}}, "root", "is not the configured"},
		{Request{VHID: 100, Interface: "eth0", Hook: "notify_backup", Argv: []string{"/bin/systemctl", "restart", "haproxy"}}, "root", "not configured"},
		{Request{VHID: 100, Interface: "eth0", Hook: "notify_master", Argv: []string{"/bin/systemctl", "stop", "haproxy"}}, "root", "is not the configured command"},
		{Request{VHID: 100, Interface: "eth0", Hook: "exec", Argv: []string{"/bin/sh"}}, "root", `unknown hook "exec"`},
		{Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: good[0].Argv, Env: []string{"LD_PRELOAD=/tmp/x.so"}}, "root", `"LD_PRELOAD" is not one carpd sets`},
		{Request{VHID: 100, Interface: "eth0", Hook: "devd"}, "root", "no command"},
	} {
		err := Validate(tc.req, helperScripts(), tc.user)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v as %q: %v, want %q", tc.req, tc.user, err, tc.want)
		}
	}
}

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"vhid":100,"iface":"eth0","hook":"devd","argv":["/x"]}` + "\n", ""},
		{`{"vhid":100,"shell":"rm -rf /"}` + "\n", `unknown field "shell"`},
		{`not json` + "\n", "malformed request"},
		{`{"vhid":100}`, "no end of line"},
		{`{"vhid":100} {"vhid":1}` + "\n", "more than one JSON value"},
		{`{"vhid":100,"argv":["` + strings.Repeat("a", MaxRequest) + `"]}` + "\n", "request longer than 65536 bytes"},
	} {
		_, err := ReadRequest(bufio.NewReader(strings.NewReader(tc.in)))
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// serveHelper serves the helper on a unix socket in dir, as
// carpd-hook.socket would, with scripts as root's configuration.
func serveHelper(t *testing.T, dir string, scripts map[Key]Scripts, timeout time.Duration) string {
	t.Helper()
	return serveAllowed(t, dir, Allowed{Scripts: scripts, HookUser: "root"}, timeout)
}

// serveAllowed serves the helper on a unix socket in dir with a.
func serveAllowed(t *testing.T, dir string, a Allowed, timeout time.Duration) string {
	t.Helper()
	sock := filepath.Join(dir, "hook.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				Serve(c, a, timeout)
			}()
		}
	}()
	return sock
}

// TestRunnerThroughHelper: a runner whose hooks run in the helper gets
// their results as if it ran them; a hook that hangs is killed, children
// and all; a request for what root did not configure runs nothing.
func TestRunnerThroughHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the hook must run as uid 0")
	}
	dir := safeDir(t)
	log := filepath.Join(dir, "log")
	up := script(t, dir, "up.sh", `echo "up $* uid=$(id -u) $CARP_STATE" >> `+log+"\necho oops >&2\nexit 3\n", 0o755)
	devd := script(t, dir, "devd.sh", "sleep 300 &\necho $! > "+filepath.Join(dir, "child")+"\nsleep 300\n", 0o755)
	scripts := map[Key]Scripts{key: {Up: up, Devd: devd, Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")}}}
	sock := serveHelper(t, dir, scripts, time.Second)

	var res results
	r, err := New(Options{Report: res.add, HelperSocket: sock, Timeout: 5 * time.Second}, scripts)
	if err != nil {
		t.Fatal(err)
	}
	r.helper = sock // as with hook-user = "root" in a carpd that is not root
	r.Transition(event("BACKUP", "MASTER", "master timed out"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	if got := string(data); got != "up eth0 192.0.2.50 uid=0 MASTER\n" {
		t.Errorf("the up script ran as %q", got)
	}
	got := res.all()
	if len(got) != 3 {
		t.Fatalf("results %+v", got)
	}
	byHook := map[string]string{}
	for _, e := range got {
		byHook[e.Hook+" "+e.Command] = e.Result + " " + e.Error
	}
	if s := byHook["upscript "+up+" eth0 192.0.2.50"]; s != "failed oops" {
		t.Errorf("the up script's result %q, want failed with its stderr", s)
	}
	if s := byHook["upscript "+up+" eth0 2001:db8::50"]; !strings.HasPrefix(s, "error refused: upscript of 100@eth0") {
		t.Errorf("an address root did not configure: %q, want a refusal", s)
	}
	if s := byHook["devd "+devd+" 100@eth0 MASTER"]; !strings.HasPrefix(s, "timeout") {
		t.Errorf("the hanging hook: %q, want timeout", s)
	}
	pid, _ := os.ReadFile(filepath.Join(dir, "child"))
	time.Sleep(200 * time.Millisecond)
	if p := strings.TrimSpace(string(pid)); p == "" || processRunning(p) {
		t.Errorf("the hanging hook's child %q survived", p)
	}
}

// TestRunnerRegister: a runner whose hooks run in the helper registers
// its configuration there; a helper that cannot (or none) is an error for
// carpd's log; a runner that runs its hooks itself asks nothing.
func TestRunnerRegister(t *testing.T) {
	dir := safeDir(t)
	var registered atomic.Int32
	a := Allowed{HookUser: "root", Register: func() error { registered.Add(1); return nil }}
	sock := serveAllowed(t, dir, a, time.Second)
	r, err := New(Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(); err != nil || registered.Load() != 0 {
		t.Errorf("hooks run by carpd itself: %v, %d registers", err, registered.Load())
	}
	r.helper = sock
	if err := r.Register(); err != nil || registered.Load() != 1 {
		t.Errorf("register: %v, %d registers", err, registered.Load())
	}
	a.HookUser = ""
	r.helper = serveAllowed(t, t.TempDir(), a, time.Second)
	if err := r.Register(); err == nil || !strings.Contains(err.Error(), `does not set hook-user = "root"`) || registered.Load() != 1 {
		t.Errorf("register without hook-user = root: %v, %d registers", err, registered.Load())
	}
	r.helper = filepath.Join(dir, "none.sock")
	if err := r.Register(); err == nil {
		t.Error("register with no helper: no error")
	}
}

// TestHelperKillsWhenCarpdGivesUp: carpd closing the connection (its own
// deadline) kills the hook at once.
func TestHelperKillsWhenCarpdGivesUp(t *testing.T) {
	// The helper runs only hooks root owns: a script of another user's is
	// refused before it starts.
	labtest.RequireRoot(t)
	dir := safeDir(t)
	marker := filepath.Join(dir, "child")
	devd := script(t, dir, "devd.sh", "sleep 300 &\necho $! > "+marker+"\nsleep 300\n", 0o755)
	scripts := map[Key]Scripts{key: {Devd: devd}}
	sock := serveHelper(t, dir, scripts, time.Hour)
	start := time.Now()
	o := runInHelper(sock, Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{devd, "100@eth0", "MASTER"}}, 100*time.Millisecond)
	if o.Result != ResultTimeout || time.Since(start) > 10*time.Second {
		t.Errorf("outcome %+v after %v", o, time.Since(start))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pid, _ := os.ReadFile(marker)
		p := strings.TrimSpace(string(pid))
		if p != "" && !processRunning(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's child %q runs on after carpd gave up", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processRunning(pid string) bool {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestNotifyStateCommands: notify_master and friends run as configured,
// before notify, on entering their state; notify_stop at a stop.
func TestNotifyStateCommands(t *testing.T) {
	dir := safeDir(t)
	log := filepath.Join(dir, "log")
	rec := script(t, dir, "rec.sh", `echo "$*" >> `+log+"\n", 0o755)
	r, err := New(Options{}, map[Key]Scripts{key: {
		Notify: rec, NotifyMaster: []string{rec, "master", "a b"}, NotifyBackup: []string{rec, "backup"},
		NotifyFault: []string{rec, "fault"}, NotifyStop: []string{rec, "stop"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []daemon.HookEvent{
		event("INIT", "BACKUP", "initialization complete"), event("BACKUP", "MASTER", "master timed out"),
		event("MASTER", "INIT", "hardware interface down"), event("INIT", "INIT", "shutting down"),
	} {
		r.Transition(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	want := `backup
INSTANCE 100@eth0 BACKUP 155
master a b
INSTANCE 100@eth0 MASTER 155
fault
INSTANCE 100@eth0 FAULT 155
stop
INSTANCE 100@eth0 STOP 155
`
	if string(data) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", data, want)
	}
}

// TestHelperRefusesScriptsRootDoesNotOwn: a configured hook that carpd's
// user (here nobody) could change is refused by the helper, which runs it
// as root.
func TestHelperRefusesScriptsRootDoesNotOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	dir := safeDir(t)
	marker := filepath.Join(dir, "ran")
	devd := script(t, dir, "devd.sh", "touch "+marker+"\n", 0o755)
	if err := os.Chown(devd, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	sock := serveHelper(t, dir, map[Key]Scripts{key: {Devd: devd}}, time.Second)
	o := runInHelper(sock, Request{VHID: 100, Interface: "eth0", Hook: "devd", Argv: []string{devd, "100@eth0", "MASTER"}}, time.Second)
	if o.Result != ResultError || !strings.Contains(o.Error, "is owned by uid 65534, not root") {
		t.Errorf("outcome %+v", o)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook ran")
	}
	// A carpd whose hooks run as root (itself root here) refuses it at
	// the start.
	if _, err := New(Options{}, map[Key]Scripts{key: {Devd: devd}}); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("New: %v", err)
	}
}
