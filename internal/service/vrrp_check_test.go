package service

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckConfigVRRP: --check-config accepts a file with a VRRPv3 vhid,
// without a warning (this carpd runs VRRP), as a CARP-only file.
func TestCheckConfigVRRP(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, warn string
	}{
		{"rc.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 1 carpver 3 vrrpprio 150 vrrpinterval 10"` + "\n",
			""},
		{"carpd.toml", "[[vhid]]\ninterface = \"eth0\"\nvhid = 7\naddresses = [\"192.0.2.50\"]\ncarpver = 3\n",
			""},
		{"carp.conf", `ifconfig_eth0_alias0="inet 192.0.2.50/32 vhid 1 advskew 100"` + "\n", ""},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := checkRun([]string{"--check-config", path}, &stdout, &stderr)
		if code != ExitOK {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, ExitOK, stderr.String())
		}
		if want := path + ": configuration OK (1 vhid(s))\n"; stdout.String() != want {
			t.Errorf("%s: stdout %q, want %q", tc.name, stdout.String(), want)
		}
		if want := string(bytes.ReplaceAll([]byte(tc.warn), []byte("DIR"), []byte(dir))); stderr.String() != want {
			t.Errorf("%s: stderr %q, want %q", tc.name, stderr.String(), want)
		}
	}
}
