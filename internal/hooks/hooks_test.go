package hooks

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/daemon"
)

// safeDir returns a directory whose every ancestor is safe for scripts:
// under the test's temporary directory, itself in a root-owned sticky /tmp
// or a private directory.
func safeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := CheckScriptDir(dir); err != nil {
		t.Skipf("no safe directory for scripts here: %v", err)
	}
	return dir
}

// CheckScriptDir is CheckScript's test of the directories, for safeDir.
func CheckScriptDir(dir string) error {
	p := filepath.Join(dir, "probe.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		return err
	}
	defer os.Remove(p)
	return CheckScript(p)
}

func script(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckScript(t *testing.T) {
	dir := safeDir(t)
	good := script(t, dir, "good.sh", "", 0o755)
	if err := CheckScript(good); err != nil {
		t.Errorf("a safe script: %v", err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"relative":       {"hook.sh", "not an absolute path"},
		"missing":        {filepath.Join(dir, "none.sh"), "no such file"},
		"directory":      {dir, "not a regular file"},
		"not executable": {script(t, dir, "noexec.sh", "", 0o644), "not executable"},
		"world-writable": {script(t, dir, "ww.sh", "", 0o757), "is group- or world-writable"},
		"group-writable": {script(t, dir, "gw.sh", "", 0o775), "is group- or world-writable"},
		"in an open dir": {script(t, open, "x.sh", "", 0o755), open + " is group- or world-writable"},
	} {
		if err := CheckScript(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// results collects the reported runs.
type results struct {
	mu sync.Mutex
	ev []api.Event
}

func (r *results) add(e api.Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }

func (r *results) all() []api.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]api.Event(nil), r.ev...)
}

var key = Key{VHID: 100, Interface: "eth0"}

func event(from, to, reason string) daemon.HookEvent {
	return daemon.HookEvent{VHID: 100, Interface: "eth0", From: from, To: to, Reason: reason,
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32"), netip.MustParsePrefix("2001:db8::50/64")}, AdvSkew: 100, Priority: 155}
}

// TestConventions: the argument lists of the three conventions, in order.
func TestConventions(t *testing.T) {
	dir := safeDir(t)
	log := filepath.Join(dir, "log")
	rec := script(t, dir, "rec.sh", `echo "$(basename $0) $* [$CARP_STATE $CARP_PREVIOUS $CARP_ADDRESSES]" >> `+log+"\n", 0o755)
	link := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(rec, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var res results
	r, err := New(Options{Report: res.add}, map[Key]Scripts{key: {
		Devd: link("devd"), Up: link("up"), Down: link("down"), XParam: "x", Notify: link("notify"), Name: "VI_1",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/32")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	r.Transition(event("BACKUP", "MASTER", "master timed out"))
	r.Transition(event("MASTER", "INIT", "hardware interface down"))
	r.Transition(daemon.HookEvent{VHID: 7, Interface: "eth0", To: "MASTER"}) // no hooks: ignored
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := `down eth0 192.0.2.50 x [ ]
devd 100@eth0 MASTER [MASTER BACKUP 192.0.2.50/32 2001:db8::50/64]
up eth0 192.0.2.50 x [MASTER BACKUP 192.0.2.50/32 2001:db8::50/64]
up eth0 2001:db8::50 x [MASTER BACKUP 192.0.2.50/32 2001:db8::50/64]
notify INSTANCE VI_1 MASTER 155 [MASTER BACKUP 192.0.2.50/32 2001:db8::50/64]
devd 100@eth0 INIT [INIT MASTER 192.0.2.50/32 2001:db8::50/64]
down eth0 192.0.2.50 x [INIT MASTER 192.0.2.50/32 2001:db8::50/64]
down eth0 2001:db8::50 x [INIT MASTER 192.0.2.50/32 2001:db8::50/64]
notify INSTANCE VI_1 FAULT 155 [INIT MASTER 192.0.2.50/32 2001:db8::50/64]
`
	// The start's down script has CARP_STATE=INIT too; the line shows
	// what the script saw.
	want = strings.Replace(want, "down eth0 192.0.2.50 x [ ]", "down eth0 192.0.2.50 x [INIT INIT ]", 1)
	if string(data) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", data, want)
	}
	if n := len(res.all()); n != 9 {
		t.Errorf("%d results reported, want 9", n)
	}
	for _, e := range res.all() {
		if e.Type != "hook" || e.Result != "ok" || e.Exit == nil || *e.Exit != 0 {
			t.Errorf("result %+v", e)
		}
	}
}

// TestOrderAndTimeout: runs of one vhid keep their order behind a slow
// one; a hanging run is killed at the timeout and reported; other vhids
// do not wait.
func TestOrderAndTimeout(t *testing.T) {
	dir := safeDir(t)
	log := filepath.Join(dir, "log")
	slow := script(t, dir, "slow.sh", `[ "$2" = MASTER ] && sleep 0.3; echo "$1 $2" >> `+log+"\n", 0o755)
	hang := script(t, dir, "hang.sh", "sleep 30\n", 0o755)
	fail := script(t, dir, "fail.sh", "echo oops >&2; exit 3\n", 0o755)
	var res results
	other := Key{VHID: 7, Interface: "eth1"}
	third := Key{VHID: 8, Interface: "eth1"}
	// The timeout well above the slow script's 0.3 s (a loaded machine
	// took it past 500 ms: the line went missing) and far below the
	// hanging one's 30 s.
	r, err := New(Options{Report: res.add, Timeout: 2 * time.Second}, map[Key]Scripts{
		key: {Devd: slow}, other: {Devd: hang}, third: {Devd: fail},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Transition(daemon.HookEvent{VHID: 7, Interface: "eth1", To: "MASTER"})
	for _, to := range []string{"MASTER", "BACKUP", "MASTER", "BACKUP"} {
		r.Transition(daemon.HookEvent{VHID: 100, Interface: "eth0", To: to})
	}
	r.Transition(daemon.HookEvent{VHID: 8, Interface: "eth1", To: "BACKUP"})
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("Transition took %v: it must not wait for hooks", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	if want := "100@eth0 MASTER\n100@eth0 BACKUP\n100@eth0 MASTER\n100@eth0 BACKUP\n"; string(data) != want {
		t.Errorf("order:\n%s\nwant:\n%s", data, want)
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("the hanging hook held things up: %v", took)
	}
	byCmd := map[string]api.Event{}
	for _, e := range res.all() {
		byCmd[e.Command] = e
	}
	if e := byCmd[hang+" 7@eth1 MASTER"]; e.Result != "timeout" {
		t.Errorf("hanging hook: %+v, want timeout", e)
	}
	if e := byCmd[fail+" 8@eth1 BACKUP"]; e.Result != "failed" || e.Exit == nil || *e.Exit != 3 || e.Error != "oops" {
		t.Errorf("failing hook: %+v, want failed, exit 3, stderr oops", e)
	}
}

// TestNewRefusesUnsafe: New checks every script.
func TestNewRefusesUnsafe(t *testing.T) {
	dir := safeDir(t)
	ww := script(t, dir, "ww.sh", "", 0o777)
	if _, err := New(Options{}, map[Key]Scripts{key: {Up: ww}}); err == nil || !strings.Contains(err.Error(), "world-writable") {
		t.Errorf("New = %v", err)
	}
}
