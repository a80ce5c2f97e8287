package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These are parser test data only: nothing here sends traffic.

// defaultsWith returns Default() holding vhids, for the tables.
func defaultsWith(vhids ...VHID) *Config {
	c := Default()
	c.VHIDs = vhids
	return c
}

// configWith returns Default() changed by f.
func configWith(f func(*Config), vhids ...VHID) *Config {
	c := defaultsWith(vhids...)
	f(c)
	return c
}

func boolPtr(b bool) *bool { return &b }

// oneVHID is the smallest useful file; tests append keys to it.
const oneVHID = `[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["192.0.2.50/32"]
`

// eth0v100 is oneVHID's VHID.
var eth0v100 = vhid("eth0", 100, "carpd.toml:1", "192.0.2.50/32")

func TestParseTOML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Config
	}{
		{"empty file gives the defaults", "", defaultsWith()},
		{"comments only", "# nothing yet\n\n", defaultsWith()},
		{"minimal vhid gets carp(4)'s defaults", oneVHID, defaultsWith(eth0v100)},
		{
			"every global key",
			`preempt = true
preempt-delay = "30s"
ifdown-demotion-factor = 0
senderr-demotion-factor = 240
dscp = 0
log-level = "warn"
` + oneVHID,
			configWith(func(c *Config) {
				c.Preempt, c.PreemptGiven, c.PreemptDelay = true, true, 30*time.Second
				c.IfDownDemotion, c.SendErrDemotion = 0, 240
				c.DSCP, c.LogLevel = 0, "warn"
			}, with(eth0v100, func(v *VHID) { v.Origin = "carpd.toml:7" })),
		},
		{"preempt false", "preempt = false\n", configWith(func(c *Config) { c.PreemptGiven = true })},
		{
			"preempt-delay zero and compound",
			"preempt-delay = \"1m30s\"\n",
			configWith(func(c *Config) { c.PreemptDelay = 90 * time.Second }),
		},
		{"log-level in capitals", "log-level = \"ERROR\"\n", configWith(func(c *Config) { c.LogLevel = "error" })},
		{"dscp 63", "dscp = 63\n", configWith(func(c *Config) { c.DSCP = 63 })},
		{
			"every vhid key",
			`[[vhid]]
interface = "eth0.100"
vhid = 255
advbase = 255
advskew = 254
password = "lampros"
peer = "192.0.2.1"
peer6 = "2001:db8::1"
preempt = true
virtual-mac = true
state = "master"
addresses = ["192.0.2.50/24", "2001:db8::50/64"]
`,
			defaultsWith(VHID{
				Version:   VersionCARP,
				Interface: "eth0.100", VHID: 255, AdvBase: 255, AdvSkew: 254,
				Password: "lampros", State: "master",
				Addresses: prefixes("192.0.2.50/24", "2001:db8::50/64"),
				Peer:      netip.MustParseAddr("192.0.2.1"),
				Peer6:     netip.MustParseAddr("2001:db8::1"),
				Preempt:   boolPtr(true), VirtualMAC: true,
				Origin: "carpd.toml:1",
			}),
		},
		{
			"addresses without a length are /32 and /128, in file order",
			`[[vhid]]
interface = "eth0"
vhid = 1
addresses = ["2001:db8::50", "192.0.2.50", "192.0.2.51/25"]
`,
			defaultsWith(vhid("eth0", 1, "carpd.toml:1", "2001:db8::50/128", "192.0.2.50/32", "192.0.2.51/25")),
		},
		{
			"IPv6 only",
			`[[vhid]]
interface = "eth0"
vhid = 6
peer6 = "2001:db8::2"
addresses = ["2001:db8::50/64"]
`,
			defaultsWith(with(vhid("eth0", 6, "carpd.toml:1", "2001:db8::50/64"), func(v *VHID) {
				v.Peer6 = netip.MustParseAddr("2001:db8::2")
			})),
		},
		{
			"the CARP groups as peers mean multicast",
			oneVHID + "peer = \"224.0.0.18\"\n",
			defaultsWith(eth0v100),
		},
		{
			"preempt false overrides the global",
			"preempt = true\n" + oneVHID + "preempt = false\n",
			configWith(func(c *Config) { c.Preempt, c.PreemptGiven = true, true },
				with(eth0v100, func(v *VHID) { v.Preempt, v.Origin = boolPtr(false), "carpd.toml:2" })),
		},
		{
			"state in capitals",
			oneVHID + "state = \"BACKUP\"\n",
			defaultsWith(with(eth0v100, func(v *VHID) { v.State = "backup" })),
		},
		{
			"TOML integer forms",
			oneVHID + "advskew = 0x10\nadvbase = 1_0\n",
			defaultsWith(with(eth0v100, func(v *VHID) { v.AdvSkew, v.AdvBase = 16, 10 })),
		},
		{
			"same vhid on two interfaces, two vhids on one",
			oneVHID + `
[[vhid]]
interface = "eth1"
vhid = 100
addresses = ["192.0.2.51"]

[[vhid]]
interface = "eth0"
vhid = 101
addresses = ["192.0.2.52"]
`,
			defaultsWith(eth0v100,
				vhid("eth1", 100, "carpd.toml:6", "192.0.2.51/32"),
				vhid("eth0", 101, "carpd.toml:11", "192.0.2.52/32")),
		},
		{
			"inline array of tables",
			`dscp = 10
vhid = [
  { interface = "eth1", vhid = 1, addresses = ["203.0.113.10"] },
  { interface = "eth1", vhid = 2, addresses = ["203.0.113.11"], advskew = 50 },
]
`,
			configWith(func(c *Config) { c.DSCP = 10 },
				vhid("eth1", 1, "carpd.toml:3", "203.0.113.10/32"),
				with(vhid("eth1", 2, "carpd.toml:4", "203.0.113.11/32"), func(v *VHID) { v.AdvSkew = 50 })),
		},
		{
			"CRLF line endings, quoted keys, literal strings",
			"\"dscp\" = 8\r\n[[vhid]]\r\n'interface' = 'eth0'\r\nvhid = 100\r\naddresses = ['192.0.2.50/32']\r\n",
			configWith(func(c *Config) { c.DSCP = 8 }, with(eth0v100, func(v *VHID) { v.Origin = "carpd.toml:2" })),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseTOML("carpd.toml", []byte(tc.in), t.TempDir())
			if err != nil {
				t.Fatalf("ParseTOML: %v", err)
			}
			if diff := cmp.Diff(tc.want, cfg, cmpOpts...); diff != "" {
				t.Errorf("Config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// errorStrings returns the errors joined in err, each formatted, and fails
// the test if one of them is not an *Error.
func errorStrings(t *testing.T, err error) []string {
	t.Helper()
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var got []string
	for _, e := range errs {
		if _, ok := e.(*Error); !ok {
			t.Errorf("error %v is a %T, want a *config.Error", e, e)
		}
		got = append(got, e.Error())
	}
	return got
}

// tomlErrorTests are files with mistakes and the errors they give, all of
// them, in line order.
var tomlErrorTests = []struct {
	name string
	in   string
	want []string
}{
	// Ranges and types of the global keys.
	{"dscp range", "dscp = 64\n", []string{`carpd.toml:1: "dscp = 64": dscp must be 0..63`}},
	{"dscp negative", "dscp = -1\n", []string{`carpd.toml:1: "dscp = -1": dscp must be 0..63`}},
	{"dscp type", "dscp = \"56\"\n", []string{`carpd.toml:1: "dscp = \"56\"": dscp must be an integer 0..63`}},
	{"log-level value", "log-level = \"verbose\"\n", []string{`carpd.toml:1: "log-level = \"verbose\"": log-level must be debug, info, warn or error`}},
	{"log-level type", "log-level = 3\n", []string{`carpd.toml:1: "log-level = 3": log-level must be a string: debug, info, warn, error`}},
	{"preempt type", "preempt = \"yes\"\n", []string{`carpd.toml:1: "preempt = \"yes\"": preempt must be true or false`}},
	{"preempt-delay syntax", "preempt-delay = \"soon\"\n", []string{`carpd.toml:1: "preempt-delay = \"soon\"": preempt-delay must be a duration like "30s" or "1m30s"`}},
	{"preempt-delay negative", "preempt-delay = \"-1s\"\n", []string{`carpd.toml:1: "preempt-delay = \"-1s\"": preempt-delay must not be negative`}},
	{"preempt-delay as a number", "preempt-delay = 30\n", []string{`carpd.toml:1: "preempt-delay = 30": preempt-delay must be a string: a duration like "30s"`}},
	{"demotion range", "ifdown-demotion-factor = 241\nsenderr-demotion-factor = -1\n", []string{
		`carpd.toml:1: "ifdown-demotion-factor = 241": ifdown-demotion-factor must be 0..240`,
		`carpd.toml:2: "senderr-demotion-factor = -1": senderr-demotion-factor must be 0..240`,
	}},

	// Unknown keys and tables.
	{"unknown key at the top", "dscp = 1\nprempt = true\n", []string{`carpd.toml:2: "prempt": unknown key`}},
	{"unknown dotted key", "carp.preempt = true\n", []string{`carpd.toml:1: "carp.preempt": unknown key`}},
	{"unknown key in [[vhid]]", oneVHID + "\n\nadvskw = 3\n", []string{`carpd.toml:7: "advskw": unknown key in [[vhid]]`}},
	{"ifconfig's pass", oneVHID + "pass = \"x\"\n", []string{`carpd.toml:5: "pass": unknown key in [[vhid]] (did you mean password?)`}},
	{"unknown key in an inline vhid", "vhid = [\n  {interface = \"eth0\", vhid = 1, addresses = [\"192.0.2.1\"]},\n  {interface = \"eth0\", vhid = 2, addresses = [\"192.0.2.2\"], skew = 1},\n]\n",
		[]string{`carpd.toml:3: "skew": unknown key in [[vhid]]`}},
	{"global key after [[vhid]]", oneVHID + "dscp = 10\n", []string{
		`carpd.toml:5: "dscp": dscp is a global setting: move it above the first [[vhid]] (TOML puts the keys after a [[vhid]] header in that vhid)`,
	}},
	{"vhid key at the top", "advskew = 10\n" + oneVHID, []string{`carpd.toml:1: "advskew": advskew belongs in a [[vhid]] table`}},
	{"unknown table", "[global]\npreempt = true\n", []string{`carpd.toml:1: "global": unknown table (carpd knows [[vhid]], [[check]], [etcd] and [bgp])`}},
	{"unknown array table", "[[vhids]]\nvhid = 1\n", []string{`carpd.toml:1: "vhids": unknown table (carpd knows [[vhid]], [[check]], [etcd] and [bgp])`}},
	{"sub-table of a vhid", oneVHID + "[vhid.auth]\npassword = \"x\"\n", []string{`carpd.toml:5: "vhid.auth": unknown table (carpd knows [[vhid]], [[check]], [etcd] and [bgp])`}},
	{"[vhid] with single brackets", "[vhid]\ninterface = \"eth0\"\n", []string{`carpd.toml:1: "vhid": write [[vhid]], with double brackets: there may be several`}},
	{"vhid as a number", "vhid = 1\n", []string{`carpd.toml:1: "vhid": vhid must be written as [[vhid]] tables`}},

	// The keys of a vhid.
	{"vhid 0", "[[vhid]]\ninterface = \"eth0\"\nvhid = 0\naddresses = [\"192.0.2.1\"]\n", []string{`carpd.toml:3: "vhid = 0": vhid must be 1..255`}},
	{"vhid 256", "[[vhid]]\ninterface = \"eth0\"\nvhid = 256\naddresses = [\"192.0.2.1\"]\n", []string{`carpd.toml:3: "vhid = 256": vhid must be 1..255`}},
	{"advbase 0", oneVHID + "advbase = 0\n", []string{`carpd.toml:5: "advbase = 0": advbase must be 1..255`}},
	{"advskew 255", oneVHID + "advskew = 255\n", []string{`carpd.toml:5: "advskew = 255": advskew must be 0..254`}},
	{"advskew string", oneVHID + "advskew = \"x\"\n", []string{`carpd.toml:5: "advskew = \"x\"": advskew must be an integer 0..254`}},
	{"advskew float", oneVHID + "advskew = 1.5\n", []string{`carpd.toml:5: "advskew = 1.5": advskew must be an integer 0..254`}},
	{"state", oneVHID + "state = \"init\"\n", []string{`carpd.toml:5: "state = \"init\"": state must be master or backup`}},
	{"virtual-mac type", oneVHID + "virtual-mac = 1\n", []string{`carpd.toml:5: "virtual-mac = 1": virtual-mac must be true or false`}},
	{"password type hides the value", oneVHID + "password = 12345\n", []string{`carpd.toml:5: "password": password must be a string: a string`}},
	{"empty password", oneVHID + "password = \"\"\n", []string{`carpd.toml:5: "password": password is empty (leave it out for none)`}},
	{"password and password-file", oneVHID + "password = \"secret\"\npassword-file = \"/nonexistent/carpd-test.pass\"\n", []string{
		`carpd.toml:6: "password-file = \"/nonexistent/carpd-test.pass\"": cannot read the password: stat /nonexistent/carpd-test.pass: no such file or directory`,
		`carpd.toml:6: "password-file": give password (carpd.toml:5) or password-file, not both`,
	}},

	// Interfaces.
	{"interface too long", "[[vhid]]\ninterface = \"abcdefghijklmnop\"\nvhid = 1\naddresses = [\"192.0.2.1\"]\n", []string{
		`carpd.toml:2: "interface = \"abcdefghijklmnop\"": interface name "abcdefghijklmnop" is longer than 15 characters`,
	}},
	{"interface empty", "[[vhid]]\ninterface = \"\"\nvhid = 1\naddresses = [\"192.0.2.1\"]\n", []string{`carpd.toml:2: "interface = \"\"": interface must be an interface name`}},
	{"interface with a slash", "[[vhid]]\ninterface = \"eth0/1\"\nvhid = 1\naddresses = [\"192.0.2.1\"]\n", []string{
		`carpd.toml:2: "interface = \"eth0/1\"": interface name must not contain '/', ':' or blanks`,
	}},
	{"interface type", "[[vhid]]\ninterface = 0\nvhid = 1\naddresses = [\"192.0.2.1\"]\n", []string{`carpd.toml:2: "interface = 0": interface must be a string: an interface name`}},

	// Required keys.
	{"nothing in [[vhid]]", "dscp = 1\n\n[[vhid]]\n", []string{
		`carpd.toml:3: "[[vhid]]": interface is required`,
		`carpd.toml:3: "[[vhid]]": vhid is required`,
		`carpd.toml:3: "[[vhid]]": addresses is required`,
	}},
	{"empty addresses", "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = []\n", []string{`carpd.toml:4: "addresses = []": addresses must list at least one address`}},

	// Addresses.
	{"malformed addresses, each on its line", "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\n  \"192.0.2.300\",\n  \"192.0.2.1/33\",\n  \"fe80::1%eth0\",\n  \"192.0.2.2\",\n]\n", []string{
		`carpd.toml:5: "192.0.2.300": malformed address`,
		`carpd.toml:6: "192.0.2.1/33": malformed address`,
		`carpd.toml:7: "fe80::1%eth0": malformed address`,
	}},
	{"address not a string", "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\"192.0.2.1\", 7]\n", []string{
		`carpd.toml:4: "7": addresses must be a list of addresses like ["192.0.2.50/32", "2001:db8::50/64"]`,
	}},
	{"addresses a string", "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = \"192.0.2.1\"\n", []string{
		`carpd.toml:4: "addresses = \"192.0.2.1\"": addresses must be a list of addresses like ["192.0.2.50/32", "2001:db8::50/64"]`,
	}},
	{"same address twice in a vhid", "[[vhid]]\ninterface = \"eth0\"\nvhid = 1\naddresses = [\"192.0.2.1\", \"192.0.2.1/24\"]\n", []string{
		`carpd.toml:4: "192.0.2.1/24": duplicate address: already in vhid 1 on eth0 at carpd.toml:4`,
	}},
	{"same address in two vhids", oneVHID + "\n[[vhid]]\ninterface = \"eth1\"\nvhid = 7\naddresses = [\n  \"2001:db8::1\",\n  \"192.0.2.50/24\",\n]\n", []string{
		`carpd.toml:11: "192.0.2.50/24": address already used by vhid 100 on eth0 at carpd.toml:4`,
	}},
	{"vhid twice on one interface", oneVHID + "\n[[vhid]]\ninterface = \"eth0\"\nvhid = 100\naddresses = [\"192.0.2.51\"]\n", []string{
		`carpd.toml:8: "vhid = 100": vhid 100 on eth0 is already defined at carpd.toml:1`,
	}},

	// Peers.
	{"peer of the wrong family", oneVHID + "peer = \"2001:db8::1\"\npeer6 = \"192.0.2.1\"\n", []string{
		`carpd.toml:5: "peer = \"2001:db8::1\"": peer must be an IPv4 address (use peer6 for IPv6)`,
		`carpd.toml:6: "peer6 = \"192.0.2.1\"": peer6 must be an IPv6 address (use peer for IPv4)`,
	}},
	{"peer multicast", oneVHID + "peer = \"224.0.0.1\"\n", []string{`carpd.toml:5: "peer = \"224.0.0.1\"": peer must be a unicast address or the CARP group`}},
	{"peer without an address of its family", oneVHID + "peer6 = \"2001:db8::2\"\n", []string{
		`carpd.toml:5: "peer6 = \"2001:db8::2\"": peer6 is an IPv6 peer, but the vhid has no IPv6 address`,
	}},

	// Not TOML: one error, the first.
	{"syntax error", "dscp = 1\nlog-level = \"info\" x\npreempt = maybe\n", []string{`carpd.toml:2: "log-level = \"info\" x": invalid TOML: expected newline but got U+0078 'x'`}},
	{"syntax error near a password", oneVHID + "password = \"secret\" x\n", []string{`carpd.toml:5: invalid TOML: expected newline but got U+0078 'x'`}},
	{"long line", "log-level = \"info\" " + strings.Repeat("x", 100) + "\n", []string{
		`carpd.toml:1: "log-level = \"info\" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...": invalid TOML: expected newline but got U+0078 'x'`,
	}},
	{"key given twice", oneVHID + "vhid = 101\n", []string{`carpd.toml:5: "vhid": invalid TOML: key vhid is already defined`}},
	{"unterminated string", "log-level = \"info\n", []string{`carpd.toml:1: "log-level = \"info": invalid TOML: basic strings cannot have new lines`}},
	{"inline vhids mixed with [[vhid]]", "vhid = [{interface = \"eth0\", vhid = 1, addresses = [\"192.0.2.1\"]}]\n" + oneVHID, []string{
		`carpd.toml:2: "vhid": invalid TOML: key vhid already exists as a value, but should be an array table`,
	}},
}

func TestParseTOMLErrors(t *testing.T) {
	for _, tc := range tomlErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseTOML("carpd.toml", []byte(tc.in), t.TempDir())
			if err == nil {
				t.Fatalf("ParseTOML succeeded with %+v, want errors", cfg)
			}
			if cfg != nil {
				t.Errorf("ParseTOML returned a Config with its error")
			}
			if diff := cmp.Diff(tc.want, errorStrings(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseTOMLErrorsNeverShowPasswords checks that no message repeats a
// pass phrase, whatever the mistake around it.
func TestParseTOMLErrorsNeverShowPasswords(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p"), []byte("filesecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := `[[vhid]]
interface = "eth0"
vhid = 1
addresses = ["192.0.2.1"]
password = "inlinesecret"
password-file = "p"
`
	_, err := ParseTOML("carpd.toml", []byte(in), dir)
	if err == nil {
		t.Fatal("ParseTOML succeeded, want an error")
	}
	for _, secret := range []string{"inlinesecret", "filesecret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows the pass phrase %q", err, secret)
		}
	}
}

func TestParseTOMLPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lf.pass", "lampros\n")
	write("crlf.pass", "lampros\r\n")
	write("bare.pass", "lampros")
	write("two.pass", "lampros\n\n") // one newline is dropped, not all
	write("empty.pass", "\n")
	write("huge.pass", strings.Repeat("x", maxPasswordFile+1))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("sub/nested.pass", "nested\n")

	tests := []struct {
		file    string // the password-file value
		want    string // the password
		wantErr string // or the error's message
	}{
		{file: "lf.pass", want: "lampros"},
		{file: "crlf.pass", want: "lampros"},
		{file: "bare.pass", want: "lampros"},
		{file: "two.pass", want: "lampros\n"},
		{file: "sub/nested.pass", want: "nested"},
		{file: filepath.Join(dir, "lf.pass"), want: "lampros"},
		{file: "missing.pass", wantErr: "cannot read the password: stat " + filepath.Join(dir, "missing.pass") + ": no such file or directory"},
		{file: "empty.pass", wantErr: "password file " + filepath.Join(dir, "empty.pass") + " is empty"},
		{file: "huge.pass", wantErr: "password file " + filepath.Join(dir, "huge.pass") + " is longer than 1024 bytes"},
		{file: "sub", wantErr: "password file " + filepath.Join(dir, "sub") + " is not a regular file"},
		{file: "/dev/zero", wantErr: "password file /dev/zero is not a regular file"},
		{file: "", wantErr: "password-file must be a file name"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			in := oneVHID + "password-file = '" + tc.file + "'\n"
			cfg, err := ParseTOML("carpd.toml", []byte(in), dir)
			if tc.wantErr != "" {
				var cerr *Error
				if !errors.As(err, &cerr) {
					t.Fatalf("ParseTOML: error %v, want %q", err, tc.wantErr)
				}
				if cerr.Line != 5 || cerr.Msg != tc.wantErr {
					t.Errorf("error at line %d: %q, want line 5: %q", cerr.Line, cerr.Msg, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTOML: %v", err)
			}
			if got := cfg.VHIDs[0].Password; got != tc.want {
				t.Errorf("Password = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseTOMLReportsAllErrors reads a file with a mistake on several
// lines and expects every one of them, in line order.
func TestParseTOMLReportsAllErrors(t *testing.T) {
	path := filepath.Join("testdata", "errors.toml")
	_, err := LoadTOML(path)
	if err == nil {
		t.Fatal("LoadTOML succeeded, want errors")
	}
	f := path
	want := []string{
		f + `:2: "dscp = 64": dscp must be 0..63`,
		f + `:3: "log-level = \"verbose\"": log-level must be debug, info, warn or error`,
		f + `:8: "advbase = 0": advbase must be 1..255`,
		f + `:9: "advskw": unknown key in [[vhid]]`,
		f + `:10: "192.0.2.300": malformed address`,
		f + `:15: "192.0.2.50": address already used by vhid 2 on eth0 at ` + f + `:10`,
		f + `:16: "advskew = \"x\"": advskew must be an integer 0..254`,
		f + `:17: "preempt-delay": preempt-delay is a global setting: move it above the first [[vhid]] (TOML puts the keys after a [[vhid]] header in that vhid)`,
	}
	if diff := cmp.Diff(want, errorStrings(t, err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadTOML(t *testing.T) {
	privateTestdata(t)
	path := filepath.Join("testdata", "carpd.toml")
	cfg, err := LoadTOML(path)
	if err != nil {
		t.Fatalf("LoadTOML: %v", err)
	}
	want := &Config{
		Preempt: true, PreemptGiven: true, PreemptDelay: 90 * time.Second,
		IfDownDemotion: 0, SendErrDemotion: 100,
		DSCP: 4, LogLevel: "debug",
		Control: DefaultControl, StateFile: DefaultStateFile, HookTimeout: DefaultHookTimeout, ManageAddresses: true,
		VHIDs: []VHID{
			{
				Version:   VersionCARP,
				Interface: "eth0", VHID: 100, AdvBase: 1, AdvSkew: 100,
				Password:  "hunter2", // from vhid100.pass, next to the file
				Addresses: prefixes("192.0.2.50/24", "2001:db8::50/64"),
				Origin:    path + ":10",
			},
			{
				Version:   VersionCARP,
				Interface: "eth0.100", VHID: 1, AdvBase: 3, AdvSkew: 0,
				Password: "vlan", State: "backup",
				Addresses: prefixes("198.51.100.50/32", "198.51.100.51/32"),
				Peer:      netip.MustParseAddr("198.51.100.224"),
				Preempt:   boolPtr(false), VirtualMAC: true,
				Origin: path + ":20",
			},
		},
	}
	if diff := cmp.Diff(want, cfg, cmpOpts...); diff != "" {
		t.Errorf("LoadTOML mismatch (-want +got):\n%s", diff)
	}
	if cfg.PreemptOf(&cfg.VHIDs[0]) != true || cfg.PreemptOf(&cfg.VHIDs[1]) != false {
		t.Errorf("PreemptOf = %v, %v; want true (global), false (vhid's own)",
			cfg.PreemptOf(&cfg.VHIDs[0]), cfg.PreemptOf(&cfg.VHIDs[1]))
	}

	_, err = LoadTOML(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadTOML of a missing file: error %v, want fs.ErrNotExist", err)
	}
}

// TestExampleFile checks that the documented example parses to what its
// comments say.
func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "carpd.toml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Preempt: true, PreemptGiven: true, PreemptDelay: 30 * time.Second,
		IfDownDemotion: 240, SendErrDemotion: 240,
		DSCP: 56, LogLevel: "info",
		Control: DefaultControl, StateFile: DefaultStateFile, HookTimeout: DefaultHookTimeout, ManageAddresses: true,
		VHIDs: []VHID{
			{
				Version:   VersionCARP,
				Interface: "eth0", VHID: 100, AdvBase: 1, AdvSkew: 100,
				Password:  "correct horse",
				Addresses: prefixes("192.0.2.50/24", "2001:db8::50/64"),
			},
			{
				Version:   VersionCARP,
				Interface: "eth0", VHID: 101, AdvBase: 1, AdvSkew: 200,
				Addresses: prefixes("198.51.100.7/32"),
				Peer:      netip.MustParseAddr("198.51.100.2"),
				Preempt:   boolPtr(false),
			},
		},
	}
	ignoreOrigin := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Origin" }, cmp.Ignore())
	if diff := cmp.Diff(want, cfg, append(cmpOpts, ignoreOrigin)...); diff != "" {
		t.Errorf("example mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	privateTestdata(t)
	dir := t.TempDir()
	upper := filepath.Join(dir, "CARPD.TOML")
	if err := os.WriteFile(upper, []byte(oneVHID), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		wantVHIDs int
		wantDSCP  int // Default's for TOML, 0 for rc.conf
	}{
		{filepath.Join("testdata", "carpd.toml"), 2, 4},
		{upper, 1, DefaultDSCP},
		{filepath.Join("testdata", "rc.conf"), 3, DefaultDSCP},
	}
	for _, tc := range tests {
		cfg, err := Load(tc.path)
		if err != nil {
			t.Errorf("Load(%q): %v", tc.path, err)
			continue
		}
		if len(cfg.VHIDs) != tc.wantVHIDs || cfg.DSCP != tc.wantDSCP {
			t.Errorf("Load(%q): %d vhids, DSCP %d; want %d, %d", tc.path, len(cfg.VHIDs), cfg.DSCP, tc.wantVHIDs, tc.wantDSCP)
		}
	}
	// A TOML file read as rc.conf has no carp lines; as TOML it has errors.
	if _, err := Load(filepath.Join("testdata", "errors.toml")); err == nil {
		t.Errorf("Load(errors.toml) succeeded, want it read as TOML")
	}
}

func FuzzParseTOML(f *testing.F) {
	for _, name := range []string{"carpd.toml", "errors.toml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "carpd.toml")); err == nil {
		f.Add(string(b))
	}
	f.Add(oneVHID)
	for _, tc := range tomlErrorTests {
		f.Add(tc.in)
	}
	for _, tc := range vrrpTOMLTests {
		f.Add(tc.in)
	}
	for _, tc := range vrrpTOMLErrorTests {
		f.Add(tc.in)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseTOML("fuzz.toml", []byte(in), dir)
		if err != nil {
			checkFuzzErrors(t, cfg, err, "fuzz.toml")
			return
		}
		if cfg.DSCP < 0 || cfg.DSCP > globalRanges["dscp"][1] || cfg.PreemptDelay < 0 ||
			cfg.IfDownDemotion < 0 || cfg.IfDownDemotion > globalRanges["ifdown-demotion-factor"][1] ||
			cfg.SendErrDemotion < 0 || cfg.SendErrDemotion > globalRanges["senderr-demotion-factor"][1] {
			t.Errorf("invalid global settings %+v", cfg)
		}
		type key struct {
			iface string
			vhid  uint8
		}
		seenVHID := make(map[key]bool)
		seen := make(map[netip.Addr]bool)
		for _, v := range cfg.VHIDs {
			if v.VHID == 0 || !protocolValid(v) || v.Interface == "" ||
				len(v.Interface) > maxIfaceName || len(v.Addresses) == 0 || !strings.HasPrefix(v.Origin, "fuzz.toml:") {
				t.Errorf("invalid VHID %+v", v)
			}
			if v.State != "" && v.State != "master" && v.State != "backup" {
				t.Errorf("invalid state in %+v", v)
			}
			if k := (key{v.Interface, v.VHID}); seenVHID[k] {
				t.Errorf("vhid %d on %s twice", v.VHID, v.Interface)
			} else {
				seenVHID[k] = true
			}
			for _, p := range v.Addresses {
				if !p.IsValid() || seen[p.Addr()] {
					t.Errorf("invalid or duplicate address %v in %+v", p, v)
				}
				seen[p.Addr()] = true
			}
		}
	})
}
