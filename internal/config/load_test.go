package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadRefuses: the loaders refuse a file in the other format than its
// name says, and a file without a vhid, naming the file (and the line that
// gives the format away).
func TestLoadRefuses(t *testing.T) {
	const tomlBody = "preempt = true\n\n[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\"192.0.2.50/32\"]\n"
	const rcBody = "hostname=\"fw1\"\nifconfig_eth0_alias0=\"inet 192.0.2.50/32 vhid 1\"\n"
	for _, tc := range []struct {
		name, body string
		rcFlag     bool // read with LoadRCConf, as --rc-conf does
		want       string
	}{
		{"empty.toml", "", false, "empty.toml: no vhid configured: add a [[vhid]] table (see carpd.toml(5))"},
		{"comments.toml", "# nothing yet\n\n# preempt = true\n", false, "comments.toml: no vhid configured: add a [[vhid]] table (see carpd.toml(5))"},
		{"globals.toml", "preempt = true\n", false, "globals.toml: no vhid configured: add a [[vhid]] table (see carpd.toml(5))"},
		{"rc.conf", "", false, "rc.conf: no vhid configured: no ifconfig_<iface>_alias<N> line has a vhid"},
		{"rc.conf", "hostname=\"fw1\"\nifconfig_eth0=\"inet 192.0.2.2/24\"\n", false,
			"rc.conf: no vhid configured: no ifconfig_<iface>_alias<N> line has a vhid"},
		{"carpd.conf", tomlBody, false,
			`carpd.conf:1: "preempt": read as a FreeBSD rc.conf, but this looks like carpd TOML: name it *.toml or pass --config with a .toml name`},
		{"rc.conf", "vhid = 7\n", false,
			`rc.conf:1: "vhid": read as a FreeBSD rc.conf, but this looks like carpd TOML: name it *.toml or pass --config with a .toml name`},
		{"rc.conf", "# carpd\n[check]\n", false,
			`rc.conf:2: "[check]": read as a FreeBSD rc.conf, but this looks like carpd TOML: name it *.toml or pass --config with a .toml name`},
		{"given.toml", tomlBody, true,
			`given.toml:1: "preempt": read as a FreeBSD rc.conf, but this looks like carpd TOML: name it *.toml or pass --config with a .toml name`},
		{"carpd.toml", rcBody, false,
			`carpd.toml:2: "ifconfig_eth0_alias0": read as carpd TOML (the name ends in .toml), but this looks like a FreeBSD rc.conf: pass it with --rc-conf, or give it a name that does not end in .toml`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			load := Load
			if tc.rcFlag {
				load = LoadRCConf
			}
			cfg, err := load(path)
			if err == nil {
				t.Fatalf("loaded %d vhid(s), want an error", len(cfg.VHIDs))
			}
			if diff := cmp.Diff(filepath.Join(dir, tc.want), err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSniffAccepts: what each format really holds passes: an rc.conf with
// shell tests and the usual variables, a TOML file with every table.
func TestSniffAccepts(t *testing.T) {
	rc := `hostname="fw1"
[ -r /etc/rc.conf.local ] && . /etc/rc.conf.local
[ -f /etc/x ]
ifconfig_em0_alias0="inet 192.0.2.50/32 vhid 1"
`
	if err := sniff("rc.conf", []byte(rc), formatRCConf); err != nil {
		t.Errorf("an rc.conf: %v", err)
	}
	toml := "[[vhid]]\ninterface = \"em0\"\n# ifconfig_em0_alias0 is what it was on FreeBSD\n[[check]]\nname = \"x\"\n"
	if err := sniff("carpd.toml", []byte(toml), formatTOML); err != nil {
		t.Errorf("a TOML file: %v", err)
	}
}

// TestFiles: the files a configuration names, each where it is named;
// --upscript adds one.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "v.pass")
	if err := os.WriteFile(pass, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := `upscript = "/usr/local/sbin/up"

[[vhid]]
interface = "eth0"
vhid = 1
addresses = ["192.0.2.50/32"]
password-file = "v.pass"
notify = "/etc/carpd/notify"

[[check]]
name = "db"
exec = ["/usr/local/bin/check-db", "-q"]
`
	path := filepath.Join(dir, "carpd.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadTOML(path)
	if err != nil {
		t.Fatal(err)
	}
	up := "/opt/up"
	if err := cfg.Apply(Overrides{UpScript: &up}); err != nil {
		t.Fatal(err)
	}
	want := []FileRef{
		{Path: "/usr/local/sbin/up", Key: "upscript", Origin: path + ":1", Program: true},
		{Path: pass, Key: "password-file", Origin: path + ":7"},
		{Path: "/etc/carpd/notify", Key: "notify", Origin: path + ":8", Program: true},
		{Path: "/usr/local/bin/check-db", Key: "exec", Origin: path + ":12", Program: true},
		{Path: "/opt/up", Key: "--upscript", Origin: "--upscript", Program: true},
	}
	if diff := cmp.Diff(want, cfg.Files); diff != "" {
		t.Errorf("Files mismatch (-want +got):\n%s", diff)
	}
}

// TestReadConfigPermission: a file carpd may not open is reported with the
// user carpd runs as and the fix. Root opens every file, so the test runs
// only as another user.
func TestReadConfigPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file; cmd/carpd's TestExitStatus runs this as nobody")
	}
	path := filepath.Join(t.TempDir(), "carpd.toml")
	if err := os.WriteFile(path, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "carpd runs as uid ") || !strings.Contains(err.Error(), "chmod 0640 "+path) {
		t.Errorf("Load of a mode 0000 file: %v, want the user and the fix", err)
	}
}
