package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestOperationKeys: the keys of the control socket, metrics and hooks,
// global and per vhid.
func TestOperationKeys(t *testing.T) {
	in := `control = "/run/carpd/a.sock"
control-group = "carpctl"
state-file = "/var/lib/carpd/a.json"
metrics-listen = "127.0.0.1:9657"
hook = "/usr/local/sbin/carpcontrol.sh"
upscript = "/etc/carpd/up.sh"
downscript = "/etc/carpd/down.sh"
xparam = "x"
neutral = true
notify = "/etc/carpd/notify.sh"
hook-timeout = "5s"
hook-user = "nobody"
manage-addresses = false

[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["192.0.2.50/32"]
name = "VI_1"
upscript = "/etc/carpd/up100.sh"
notify = "/etc/carpd/notify100.sh"
`
	cfg, err := ParseTOML("carpd.toml", []byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Hooks{Devd: "/usr/local/sbin/carpcontrol.sh", UpScript: "/etc/carpd/up.sh", DownScript: "/etc/carpd/down.sh", XParam: "x", Neutral: true, Notify: "/etc/carpd/notify.sh"}
	if diff := cmp.Diff(want, cfg.Hooks); diff != "" {
		t.Errorf("global hooks (-want +got):\n%s", diff)
	}
	if cfg.Control != "/run/carpd/a.sock" || cfg.ControlGroup != "carpctl" || cfg.StateFile != "/var/lib/carpd/a.json" ||
		cfg.MetricsListen != "127.0.0.1:9657" || cfg.HookTimeout != 5*time.Second || cfg.HookUser != "nobody" || cfg.ManageAddresses {
		t.Errorf("globals %+v", cfg)
	}
	v := &cfg.VHIDs[0]
	if v.Name != "VI_1" {
		t.Errorf("name %q", v.Name)
	}
	h := cfg.HooksOf(v)
	want.UpScript, want.Notify = "/etc/carpd/up100.sh", "/etc/carpd/notify100.sh"
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("the vhid's hooks (-want +got):\n%s", diff)
	}
}

func TestOperationKeyErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`control = "carpd.sock"`, `carpd.toml:1: "control = \"carpd.sock\"": control must be an absolute path`},
		{`hook = "hook.sh"`, `carpd.toml:1: "hook = \"hook.sh\"": hook must be an absolute path`},
		{`metrics-listen = "9657"`, `carpd.toml:1: "metrics-listen = \"9657\"": metrics-listen: want HOST:PORT`},
		{`metrics-listen = "localhost:9657"`, `the host must be an IP address`},
		{`hook-timeout = "0s"`, `hook-timeout must be a positive duration`},
		{`hook-user = ""`, `hook-user is empty`},
		{`manage-addresses = "no"`, `manage-addresses must be true or false`},
		{`name = "x"`, `name belongs in a [[vhid]] table`},
		{oneVHID + `name = "two words"`, `name must be a word`},
	} {
		_, err := ParseTOML("carpd.toml", []byte(tc.in+"\n"), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestApplyOverrides(t *testing.T) {
	c := Default()
	up, ctl, bad := "/etc/up.sh", "/tmp/c.sock", "rel.sh"
	tos, neutral := 0x10, true
	if err := c.Apply(Overrides{UpScript: &up, Control: &ctl, TOS: &tos, Neutral: &neutral}); err != nil {
		t.Fatal(err)
	}
	if c.Hooks.UpScript != up || c.Control != ctl || c.DSCP != 4 || c.TOS() != 0x10 || !c.Hooks.Neutral {
		t.Errorf("applied: %+v", c)
	}
	odd, ml := 0x11, "nowhere"
	for _, o := range []Overrides{{UpScript: &bad}, {TOS: &odd}, {MetricsListen: &ml}} {
		before := *c
		if err := c.Apply(o); err == nil {
			t.Errorf("Apply(%+v) succeeded", o)
		}
		if c.DSCP != before.DSCP || !c.Hooks.Equal(before.Hooks) {
			t.Error("a failed Apply changed the config")
		}
	}
}
