package access

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// The service user of the tests: carpd, uid 998, group carpd (998), also
// in group adm (4).
var svc = &User{Name: "carpd", UID: 998, GID: 998, Groups: []int{998, 4}, GroupName: "carpd"}

func dir(path string, mode fs.FileMode, uid, gid int) Node {
	return Node{Path: path, Mode: fs.ModeDir | mode, UID: uid, GID: gid, Owner: name(uid), Group: name(gid)}
}

func file(path string, mode fs.FileMode, uid, gid int) Node {
	return Node{Path: path, Mode: mode, UID: uid, GID: gid, Owner: name(uid), Group: name(gid)}
}

func name(id int) string {
	switch id {
	case 0:
		return "root"
	case 998:
		return "carpd"
	case 4:
		return "adm"
	}
	return "1000"
}

// chain is / and /etc (root 0755) and /etc/carpd (root:carpd 0750, as the
// package makes it) followed by the file.
func chain(f Node) []Node {
	return []Node{dir("/", 0o755, 0, 0), dir("/etc", 0o755, 0, 0), dir("/etc/carpd", 0o750, 0, 998), f}
}

func TestMay(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    Node
		u    *User
		want fs.FileMode
		ok   bool
	}{
		{"owner bits for the owner", file("f", 0o400, 998, 0), svc, read, true},
		{"owner bits only, even when others may", file("f", 0o044, 998, 0), svc, read, false},
		{"group bits for the primary group", file("f", 0o040, 0, 998), svc, read, true},
		{"group bits for a supplementary group", file("f", 0o040, 0, 4), svc, read, true},
		{"group bits only, even when others may", file("f", 0o704, 0, 998), svc, read, false},
		{"others' bits for the rest", file("f", 0o004, 0, 0), svc, read, true},
		{"root:root 0600", file("f", 0o600, 0, 0), svc, read, false},
		{"root reads anything", file("f", 0o000, 1000, 1000), &User{Name: "root"}, read, true},
		{"root executes with an x bit", file("f", 0o100, 1000, 1000), &User{Name: "root"}, execute, true},
		{"root does not execute without one", file("f", 0o600, 0, 0), &User{Name: "root"}, execute, false},
		{"search a directory", dir("d", 0o750, 0, 998), svc, execute, true},
		{"no search for others", dir("d", 0o750, 0, 0), svc, execute, false},
	} {
		if got := tc.u.may(tc.n, tc.want); got != tc.ok {
			t.Errorf("%s: may = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCheck(t *testing.T) {
	const conf = "/etc/carpd/carpd.toml"
	cfgT := Target{Path: conf, What: "configuration file", Origin: conf, Kind: Config}
	passT := Target{Path: "/etc/carpd/v.pass", What: "password file", Origin: conf + ":7", Kind: Password}
	progT := Target{Path: "/etc/carpd/up.sh", What: "upscript", Origin: conf + ":3", Kind: Program}
	script := func(n Node) Node { n.Script = true; return n }
	for _, tc := range []struct {
		name  string
		t     Target
		chain []Node
		want  []string
	}{
		{"config root:carpd 0640", cfgT, chain(file(conf, 0o640, 0, 998)), nil},
		{"config root:root 0600", cfgT, chain(file(conf, 0o600, 0, 0)), []string{
			conf + ": configuration file " + conf + ": user carpd cannot read it (mode 0600, owner root:root); fix: chown root:carpd " + conf + "; chmod 0640 " + conf}},
		{"config in a directory it cannot search", cfgT,
			[]Node{dir("/", 0o755, 0, 0), dir("/etc", 0o755, 0, 0), dir("/etc/carpd", 0o700, 0, 0), file(conf, 0o644, 0, 0)},
			[]string{conf + ": configuration file " + conf + ": user carpd cannot search the directory /etc/carpd (mode 0700, owner root:root); fix: chgrp carpd /etc/carpd; chmod g+x /etc/carpd"}},
		{"password file carpd's 0600", passT, chain(file(passT.Path, 0o600, 998, 998)), nil},
		{"password file root's 0600", passT, chain(file(passT.Path, 0o600, 0, 0)), []string{
			conf + ":7: password file /etc/carpd/v.pass: user carpd cannot read it (mode 0600, owner root:root); fix: chown carpd /etc/carpd/v.pass; chmod 0600 /etc/carpd/v.pass"}},
		{"missing program", progT, chain(Node{Path: progT.Path, Err: fs.ErrNotExist}), []string{
			conf + ":3: upscript /etc/carpd/up.sh: does not exist"}},
		{"missing directory", progT, []Node{dir("/", 0o755, 0, 0), {Path: "/etc", Err: &fs.PathError{Op: "stat", Path: "/etc", Err: fs.ErrNotExist}},
			{Path: progT.Path, Err: &fs.PathError{Op: "stat", Path: "/etc", Err: fs.ErrNotExist}}},
			[]string{conf + ":3: upscript /etc/carpd/up.sh: /etc: does not exist"}},
		{"a directory, not a file", progT, chain(dir(progT.Path, 0o755, 0, 0)), []string{
			conf + ":3: upscript /etc/carpd/up.sh: not a regular file"}},
		{"no execute bit", progT, chain(file(progT.Path, 0o644, 0, 0)), []string{
			conf + ":3: upscript /etc/carpd/up.sh: not executable (mode 0644, owner root:root); fix: chmod 0755 /etc/carpd/up.sh"}},
		{"the owner's execute bit only", progT, chain(file(progT.Path, 0o700, 0, 0)), []string{
			conf + ":3: upscript /etc/carpd/up.sh: user carpd cannot execute it (mode 0700, owner root:root); fix: chmod 0755 /etc/carpd/up.sh"}},
		{"a binary others may only execute", progT, chain(file(progT.Path, 0o711, 0, 0)), nil},
		{"a script others may only execute", progT, chain(script(file(progT.Path, 0o711, 0, 0))), []string{
			conf + ":3: upscript /etc/carpd/up.sh: user carpd cannot read it, and a script's interpreter must (mode 0711, owner root:root); fix: chmod 0755 /etc/carpd/up.sh"}},
		{"a script 0755", progT, chain(script(file(progT.Path, 0o755, 0, 0))), nil},
		{"under /root", Target{Path: "/root/up.sh", What: "upscript", Origin: conf + ":3", Kind: Program},
			[]Node{dir("/", 0o755, 0, 0), dir("/root", 0o700, 0, 0), file("/root/up.sh", 0o755, 0, 0)},
			[]string{conf + ":3: upscript /root/up.sh: under /root, which the unit's ProtectHome=yes hides from the service; move it (to /etc/carpd or /usr/local/sbin, say)"}},
		{"a link into /home", Target{Path: "/usr/local/sbin/up", What: "exec check", Origin: conf + ":9", Kind: Program},
			[]Node{dir("/", 0o755, 0, 0), dir("/usr", 0o755, 0, 0), dir("/usr/local", 0o755, 0, 0), dir("/usr/local/sbin", 0o755, 0, 0),
				dir("/home", 0o755, 0, 0), dir("/home/op", 0o755, 1000, 1000), file("/home/op/up", 0o755, 1000, 1000)},
			[]string{conf + ":9: exec check /usr/local/sbin/up: under /home, which the unit's ProtectHome=yes hides from the service; move it (to /etc/carpd or /usr/local/sbin, say)"}},
		{"under /tmp", Target{Path: "/tmp/x/check", What: "exec check", Origin: conf + ":9", Kind: Program},
			[]Node{dir("/", 0o755, 0, 0), dir("/tmp", 0o1777, 0, 0), dir("/tmp/x", 0o755, 0, 0), file("/tmp/x/check", 0o755, 0, 0)},
			[]string{conf + ":9: exec check /tmp/x/check: under /tmp, which the unit's PrivateTmp=yes hides from the service; move it (to /etc/carpd or /usr/local/sbin, say)"}},
		{"/homeless is not /home", Target{Path: "/homeless/up", What: "upscript", Origin: conf + ":3", Kind: Program},
			[]Node{dir("/", 0o755, 0, 0), dir("/homeless", 0o755, 0, 0), file("/homeless/up", 0o755, 0, 0)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range Check(tc.t, tc.chain, svc, Unit) {
				got = append(got, p.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckFilesAsNobody checks real files, made by root in a temporary
// directory, as the user nobody meets them, and compares with what nobody
// really can do (test -r, test -x run as nobody).
func TestCheckFilesAsNobody(t *testing.T) {
	labtest.RequireRoot(t) // to make files nobody cannot read
	nobody, err := LookupUser("nobody")
	if err != nil {
		labtest.Missing(t, "no user nobody: %v", err)
	}
	top := t.TempDir()
	open := filepath.Join(top, "open")
	closed := filepath.Join(top, "closed")
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{top, 0o755}, {filepath.Dir(top), 0o755}, {open, 0o755}, {closed, 0o700}} {
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, body string, mode fs.FileMode) string {
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name   string
		t      Target
		flag   string // test(1)'s flag for what nobody must be able to do
		broken bool
	}{
		{"config 0644", Target{Path: write(filepath.Join(open, "a.toml"), "", 0o644), Kind: Config}, "-r", false},
		{"config 0600", Target{Path: write(filepath.Join(open, "b.toml"), "", 0o600), Kind: Config}, "-r", true},
		{"config in a closed directory", Target{Path: write(filepath.Join(closed, "c.toml"), "", 0o644), Kind: Config}, "-r", true},
		{"program 0755", Target{Path: write(filepath.Join(open, "up"), "#!/bin/sh\n", 0o755), Kind: Program}, "-x", false},
		{"program 0700", Target{Path: write(filepath.Join(open, "down"), "#!/bin/sh\n", 0o700), Kind: Program}, "-x", true},
		{"missing program", Target{Path: filepath.Join(open, "none"), Kind: Program}, "-x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.t.What, tc.t.Origin = "file", "test"
			problems := CheckFiles([]Target{tc.t}, nobody, nil)
			if got := len(problems) > 0; got != tc.broken {
				t.Errorf("CheckFiles: %v, want broken = %v", problems, tc.broken)
			}
			// What the kernel says, as nobody.
			cmd := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "test", tc.flag, tc.t.Path)
			real := cmd.Run() == nil
			if real == tc.broken {
				t.Errorf("as nobody, test %s %s: %v; the test's expectation is wrong", tc.flag, tc.t.Path, real)
			}
			for _, p := range problems {
				if !strings.Contains(p.Msg, "user nobody") && !strings.Contains(p.Msg, "does not exist") {
					t.Errorf("problem %q does not name the user", p.Msg)
				}
			}
		})
	}
}
