package config

import (
	"strings"
	"testing"
)

func TestCheckHookUser(t *testing.T) {
	exists := func(name string) bool { return name == "www-data" || name == "root" }
	for _, tc := range []struct {
		user, service string
		helper        bool
		want          string // "" = accepted
	}{
		{"", "carpd", false, ""},
		{"root", "carpd", true, ""},
		{"root", "carpd", false, `carpd.toml:1: hook-user = "root": carpd runs as carpd, which cannot become root, and the root hook helper is not installed`},
		{"www-data", "carpd", true, `carpd.toml:1: hook-user "www-data": carpd runs as carpd with NoNewPrivileges and without CAP_SETUID`},
		{"carpd", "carpd", false, ""},
		{"www-data", "root", false, ""},
		{"root", "root", false, ""},
		{"nosuchuser", "root", false, `hook-user "nosuchuser": no such user`},
	} {
		cfg, err := ParseTOML("carpd.toml", []byte("hook-user = \""+tc.user+"\"\n"+oneVHID), "")
		if tc.user == "" {
			cfg, err = ParseTOML("carpd.toml", []byte(oneVHID), "")
		}
		if err != nil {
			t.Fatal(err)
		}
		err = CheckHookUser(cfg, HookHost{ServiceUser: tc.service, HelperInstalled: tc.helper, UserExists: exists})
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("hook-user %q as %s (helper %v): %v, want %q", tc.user, tc.service, tc.helper, err, tc.want)
		}
	}
}

func TestHookSandbox(t *testing.T) {
	none, _ := ParseTOML("carpd.toml", []byte(oneVHID), "")
	if s := HookSandbox(none, "carpd"); s != "" {
		t.Errorf("no hooks: %q", s)
	}
	plain, _ := ParseTOML("carpd.toml", []byte("hook = \"/x\"\n"+oneVHID), "")
	if s := HookSandbox(plain, "carpd"); !strings.Contains(s, "inside carpd's sandbox") || !strings.Contains(s, "NoNewPrivileges=yes") || !strings.Contains(s, "ProtectSystem=strict") {
		t.Errorf("hooks as carpd: %q", s)
	}
	root, _ := ParseTOML("carpd.toml", []byte("hook-user = \"root\"\nnotify_master = \"/x\"\n"+oneVHID), "")
	if s := HookSandbox(root, "carpd"); !strings.Contains(s, "carpd-hook@.service") {
		t.Errorf("hooks as root: %q", s)
	}
}
