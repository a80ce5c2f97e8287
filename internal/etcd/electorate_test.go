package etcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

func TestConfigsFromTOML(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	toml := `[etcd]
endpoints = ["http://198.51.100.11:2379"]
node = "h1"
ttl = "5s"
username = "carpd"
password-file = "pw"

[[vhid]]
interface = "eth0"
vhid = 7
addresses = ["192.0.2.50/32"]
electorate = "etcd"
advskew = 40
`
	cfg, err := config.ParseTOML("carpd.toml", []byte(toml), dir)
	if err != nil {
		t.Fatal(err)
	}
	mc, cc, err := Configs(cfg.Etcd, &cfg.VHIDs[0], true, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if mc.Node != "h1" || mc.AdvSkew != 40 || !mc.Preempt || mc.PreemptDelay != 3*time.Second ||
		mc.Renew != time.Second || mc.Margin != time.Second || mc.Listen != time.Second {
		t.Fatalf("machine config %+v", mc)
	}
	if cc.VHID != 7 || cc.Prefix != "/carpd/" || cc.TTL != 5*time.Second || cc.RequestTimeout != 750*time.Millisecond ||
		cc.ReadEvery != 5*time.Second || cc.Username != "carpd" || cc.Password != "s3cret" || cc.TLS != nil {
		t.Fatalf("client config %+v", cc)
	}
	if _, err := NewMachine(mc); err != nil {
		t.Fatal(err)
	}
	// A CA file without a certificate is an error, not a silent plain
	// connection.
	cfg, err = config.ParseTOML("carpd.toml", []byte(strings.Replace(toml, `node = "h1"`, "node = \"h1\"\nca-file = \"ca.pem\"", 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Configs(cfg.Etcd, &cfg.VHIDs[0], false, 0); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA: %v", err)
	}
}
