package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChecks(t *testing.T) {
	in := oneVHID + `
[[check]]
name = "web"
http = "http://127.0.0.1:8080/health"
expect-body = "ok"
interval = "2s"
timeout = "500ms"
fall = 2
rise = 3
weight = 100
vhids = [100, "100@eth0"]

[[check]]
name = "db"
exec = ["/usr/local/bin/check-db", "--quick"]
action = "release"

[[check]]
name = "weight"
file = "/run/carpd/weight"

[[check]]
name = "uplink"
link = "eth1"
`
	cfg, err := ParseTOML("carpd.toml", []byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Check{
		{Name: "web", Kind: CheckHTTP, Target: "http://127.0.0.1:8080/health", ExpectStatus: 200, ExpectBody: "ok",
			Interval: 2 * time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 2, Weight: 100,
			VHIDs: []CheckVHID{{VHID: 100}, {VHID: 100, Interface: "eth0"}}, Origin: "carpd.toml:6"},
		{Name: "db", Kind: CheckExec, Target: "/usr/local/bin/check-db --quick", Argv: []string{"/usr/local/bin/check-db", "--quick"},
			ExpectStatus: 200, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Release: true, Origin: "carpd.toml:17"},
		{Name: "weight", Kind: CheckFile, Target: "/run/carpd/weight", ExpectStatus: 200,
			Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Origin: "carpd.toml:22"},
		{Name: "uplink", Kind: CheckLink, Target: "eth1", ExpectStatus: 200,
			Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Weight: 240, Origin: "carpd.toml:26"},
	}
	if diff := cmp.Diff(want, cfg.Checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if !cfg.Checks[0].Matches(100, "eth1") || cfg.Checks[1].Matches(7, "eth0") != true {
		t.Error("Matches")
	}
}

func TestCheckErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[[check]]\nname = \"a\"\n", `carpd.toml:6: "[[check]]": give one of exec, shell, tcp, http, file or link`},
		{"[[check]]\ntcp = \"127.0.0.1:1\"\n", `carpd.toml:6: "[[check]]": name is required`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nhttp = \"http://x/\"\n", `give one of exec, shell, tcp, http, file or link, not tcp and http`},
		{"[[check]]\nname = \"a\"\nexec = \"check\"\n", `exec must start with an absolute path`},
		{"[[check]]\nname = \"a\"\ntcp = \"nowhere\"\n", `tcp must be HOST:PORT`},
		{"[[check]]\nname = \"a\"\nhttp = \"ftp://x\"\n", `http must be a URL`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nweight = 300\n", `weight must be 1..240`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\naction = \"release\"\nweight = 10\n", `weight is for action = "demote"`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nvhids = [7]\n", `carpd.toml:9: "7": no vhid 7 is configured`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\ninterval = \"0s\"\n", `interval must be a positive duration`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nexpect-body = \"x\"\n", `expect-body is for http checks`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:2\"\n", `check "a" is already defined at carpd.toml:6`},
		{"[[check]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nretries = 3\n", `"retries": unknown key in [[check]]`},
		{"[check]\nname = \"a\"\n", `write [[check]], with double brackets`},
		{"[[check]]\nname = \"a\"\nlink = \"eth/1\"\n", `link must be an interface name`},
		{"[[check]]\nname = \"a\"\nlink = \"\"\n", `link must be an interface name`},
		{"[[check]]\nname = \"a\"\nlink = \"eth1\"\nfile = \"/x\"\n", `not file and link`},
	} {
		_, err := ParseTOML("carpd.toml", []byte(oneVHID+"\n"+tc.in), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
