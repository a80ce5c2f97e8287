package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/lab/labtest"
)

// privateTestdata makes testdata/vhid100.pass private (0600), as carpd
// wants a password file: git records no such mode, a checkout gives it the
// umask's 0644.
func privateTestdata(t *testing.T) {
	t.Helper()
	if err := os.Chmod(filepath.Join("testdata", "vhid100.pass"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// parsePasswordFile parses oneVHID with password-file = path (line 5) and
// returns the password or the error's message, checking its line.
func parsePasswordFile(t *testing.T, path string) (string, string) {
	t.Helper()
	in := oneVHID + "password-file = '" + path + "'\n"
	cfg, err := ParseTOML("carpd.toml", []byte(in), filepath.Dir(path))
	if err != nil {
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("ParseTOML: error %v, want a config error", err)
		}
		if cerr.Line != 5 || cerr.Word != "password-file = '"+path+"'" {
			t.Errorf("error at line %d, word %q; want line 5, the password-file line", cerr.Line, cerr.Word)
		}
		return "", cerr.Msg
	}
	return cfg.VHIDs[0].Password, ""
}

// TestPasswordFileMode: a password file with any permission for its group
// or others is refused with its mode and the chmod that puts it right.
func TestPasswordFileMode(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode    fs.FileMode
		wantErr string // after "password file PATH "; "" when accepted
	}{
		{mode: 0o600},
		{mode: 0o400},
		{mode: 0o700},
		{mode: 0o640, wantErr: "has mode 0640: its group may read it"},
		{mode: 0o604, wantErr: "has mode 0604: others may read it"},
		{mode: 0o644, wantErr: "has mode 0644: its group and others may read it"},
		{mode: 0o440, wantErr: "has mode 0440: its group may read it"},
		{mode: 0o620, wantErr: "has mode 0620: its group may write it"},
		{mode: 0o602, wantErr: "has mode 0602: others may write it"},
		{mode: 0o666, wantErr: "has mode 0666: its group and others may read and write it"},
		{mode: 0o610, wantErr: "has mode 0610: its group may execute it"},
		{mode: 0o601, wantErr: "has mode 0601: others may execute it"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%04o.pass", tc.mode))
			if err := os.WriteFile(path, []byte("lampros\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, msg := parsePasswordFile(t, path)
			if tc.wantErr == "" {
				if msg != "" || got != "lampros" {
					t.Errorf("mode %04o: password %q, error %q; want it accepted", tc.mode, got, msg)
				}
				return
			}
			want := "password file " + path + " " + tc.wantErr + " (it must be 0600 or 0400); fix: chmod 600 " + path
			if msg != want {
				t.Errorf("mode %04o:\n got %q\nwant %q", tc.mode, msg, want)
			}
		})
	}
}

// TestPasswordFileOwner: a password file owned by neither root nor carpd's
// user is refused with its owner and the chown that puts it right; when
// carpd runs as root, one owned by the service's user carpd is accepted
// (so that `sudo carpd --check-config` agrees with the service). Needs
// root to give files away.
func TestPasswordFileOwner(t *testing.T) {
	labtest.RequireRoot(t)

	const other, service = 64123, 64124 // uids without a name here
	for _, uid := range []int{other, service} {
		if _, err := lookupUID(uid); err == nil {
			labtest.Missing(t, "uid %d exists on this machine; the test needs it free", uid)
		}
	}
	old := serviceUID
	serviceUID = func() (int, bool) { return service, true }
	t.Cleanup(func() { serviceUID = old })

	dir := t.TempDir()
	write := func(name string, uid int) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("lampros\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name    string
		uid     int
		wantErr string
	}{
		{name: "root.pass", uid: 0},
		{name: "service.pass", uid: service},
		{name: "other.pass", uid: other, wantErr: "password file %[1]s is owned by uid 64123, neither root nor the service's user carpd; fix: chown root %[1]s"},
	} {
		path := write(tc.name, tc.uid)
		got, msg := parsePasswordFile(t, path)
		if tc.wantErr == "" {
			if msg != "" || got != "lampros" {
				t.Errorf("%s owned by %d: password %q, error %q; want it accepted", tc.name, tc.uid, got, msg)
			}
			continue
		}
		if want := fmt.Sprintf(tc.wantErr, path); msg != want {
			t.Errorf("%s owned by %d:\n got %q\nwant %q", tc.name, tc.uid, msg, want)
		}
	}

	// Without a service user, only root's and carpd's own files pass.
	serviceUID = func() (int, bool) { return 0, false }
	path := filepath.Join(dir, "service.pass")
	if _, msg := parsePasswordFile(t, path); msg == "" {
		t.Errorf("without a user carpd, a file owned by uid %d was accepted", service)
	}
	// The owner is checked before the mode: the chown comes first.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, msg := parsePasswordFile(t, path); msg != fmt.Sprintf("password file %[1]s is owned by uid %[2]d, not root; fix: chown root %[1]s", path, service) {
		t.Errorf("owner and mode wrong: %q", msg)
	}
}

// TestOwnerAllowed: the owners accepted for each user carpd runs as.
func TestOwnerAllowed(t *testing.T) {
	old := serviceUID
	serviceUID = func() (int, bool) { return 998, true }
	t.Cleanup(func() { serviceUID = old })
	for _, tc := range []struct {
		owner, euid int
		want        bool
	}{
		{0, 0, true},
		{998, 0, true},   // the service's user, carpd run as root
		{1000, 0, false}, // anyone else
		{998, 998, true}, // the service itself
		{0, 998, true},   // root's file (the service cannot open it if 0600: see passwordReadError)
		{1000, 998, false},
		{998, 1000, false}, // carpd run by another user: only its own files and root's
		{1000, 1000, true},
	} {
		if got := ownerAllowed(tc.owner, tc.euid); got != tc.want {
			t.Errorf("ownerAllowed(owner %d, euid %d) = %v, want %v", tc.owner, tc.euid, got, tc.want)
		}
	}
}

// TestPasswordReadError: a file carpd may not open gets the hint of who
// carpd runs as and the chown; other errors are left as they are.
func TestPasswordReadError(t *testing.T) {
	euid := os.Geteuid()
	err := passwordReadError("/etc/carpd/v.pass", &fs.PathError{Op: "open", Path: "/etc/carpd/v.pass", Err: fs.ErrPermission})
	want := fmt.Sprintf("cannot read the password: open /etc/carpd/v.pass: permission denied (carpd runs as %s: give the file to it, mode 0600; fix: chown %s /etc/carpd/v.pass)",
		describeUID(euid), userName(euid))
	if err.Error() != want {
		t.Errorf("permission denied:\n got %q\nwant %q", err, want)
	}
	err = passwordReadError("/x", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist})
	if want := "cannot read the password: open /x: file does not exist"; err.Error() != want {
		t.Errorf("not found: %q, want %q", err, want)
	}
}

func lookupUID(uid int) (string, error) {
	if name := userName(uid); name != fmt.Sprint(uid) {
		return name, nil
	}
	return "", errors.New("no such user")
}

// TestParseRCConfErrorsNeverShowPass checks that no rc.conf error repeats
// a pass phrase or a part of it, whatever the mistake around it: a phrase
// with a space in it (FreeBSD's rc.conf splits it into words) makes the
// words after the first unknown, and they are not shown either.
func TestParseRCConfErrorsNeverShowPass(t *testing.T) {
	const pre = `ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1 `
	tests := []struct {
		line    string
		want    string // the first error
		secrets []string
	}{
		{pre + `pass secret words"`, `rc.conf:1: "pass": unknown word after the pass phrase, not shown (a pass phrase cannot hold a space; or a keyword misspelt)`, []string{"secret", "words"}},
		{pre + `pass secret two words advskew 5"`, `rc.conf:1: "pass": unknown word after the pass phrase, not shown (a pass phrase cannot hold a space; or a keyword misspelt)`, []string{"secret", "two", "words"}},
		{pre + `pass secret advskw 100"`, `rc.conf:1: "pass": unknown word after the pass phrase, not shown (a pass phrase cannot hold a space; or a keyword misspelt)`, []string{"secret"}},
		{pre + `passs secret"`, `rc.conf:1: "passs": unknown keyword`, []string{"secret"}},
		{pre + `pass secret pass other"`, `rc.conf:1: "pass": conflicts with "pass" earlier in this entry`, []string{"secret", "other"}},
		{pre + `pass secret`, `rc.conf:1: "ifconfig_em0_alias0": unterminated quote (values spanning lines are not supported)`, []string{"secret"}},
		{pre + `pass secret" junk`, `rc.conf:1: "junk": unexpected text after the value`, []string{"secret"}},
		{pre + `advskew 300 pass secret"`, `rc.conf:1: "advskew 300": advskew must be 0..254`, []string{"secret"}},
	}
	for _, tc := range tests {
		_, err := ParseRCConf("rc.conf", strings.NewReader(tc.line+"\n"))
		if err == nil {
			t.Errorf("%s: parsed, want an error", tc.line)
			continue
		}
		got := errorStrings(t, err)
		if got[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.line, got[0], tc.want)
		}
		for _, s := range tc.secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q shows %q", tc.line, err, s)
			}
		}
	}
}
