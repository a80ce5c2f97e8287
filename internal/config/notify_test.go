package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keepalived's notify_master and friends: a command line split as
// keepalived splits it, or a list; a vhid's own replaces the global one.
func TestNotifyKeys(t *testing.T) {
	in := `notify_master = "/etc/carpd/master.sh 'two words' \"x y\" z"
notify_backup = ["/etc/carpd/backup.sh", "a b"]
notify_stop = "/etc/carpd/stop.sh"

[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["192.0.2.50/32"]
notify_fault = "/etc/carpd/fault.sh 100"
notify_master = "/etc/carpd/own-master.sh"
`
	cfg, err := ParseTOML("carpd.toml", []byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.HooksOf(&cfg.VHIDs[0])
	want := Hooks{
		NotifyMaster: []string{"/etc/carpd/own-master.sh"},
		NotifyBackup: []string{"/etc/carpd/backup.sh", "a b"},
		NotifyFault:  []string{"/etc/carpd/fault.sh", "100"},
		NotifyStop:   []string{"/etc/carpd/stop.sh"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/etc/carpd/master.sh", "two words", "x y", "z"}, cfg.Hooks.NotifyMaster); diff != "" {
		t.Errorf("the global notify_master (-want +got):\n%s", diff)
	}
}

func TestNotifyKeyErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`notify_master = "master.sh"`, `notify_master must start with an absolute path`},
		{`notify_backup = "/x 'open"`, `notify_backup: unterminated ' quote`},
		{`notify_fault = ""`, `notify_fault: empty command`},
		{`notify_stop = 3`, `notify_stop must be a command like`},
		{`notify_stop = ["/x", 3]`, `notify_stop must be a command like`},
	} {
		_, err := ParseTOML("carpd.toml", []byte(tc.in+"\n"+oneVHID), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
