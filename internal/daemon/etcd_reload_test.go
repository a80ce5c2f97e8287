package daemon

import (
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// etcdTestConfig is an [etcd] table (nothing listens at its endpoint: the
// connection is made lazily and never used here) and etcd vhid 100, plus
// vhid 101 when extra.
func etcdTestConfig(t *testing.T, node string, extra bool, vhid100 string) *config.Config {
	t.Helper()
	src := `[etcd]
endpoints = ["http://127.0.0.1:1"]
node = "` + node + `"
ttl = "5s"
`
	if vhid100 != "" {
		src += `
[[vhid]]
interface = "eth0"
vhid = 100
addresses = ["192.0.2.50/32"]
electorate = "etcd"
` + vhid100
	}
	if extra {
		src += `
[[vhid]]
interface = "eth0"
vhid = 101
addresses = ["198.51.100.1/32"]
electorate = "etcd"
`
	}
	cfg, err := config.ParseTOML("carpd.toml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReloadPlanEtcd: a reload adds and removes etcd vhids and changes an
// etcd vhid's ranking in place (no restart of the vhid); a changed [etcd]
// table is refused with its place in the file.
func TestReloadPlanEtcd(t *testing.T) {
	f := newFakeHost()
	d, err := New(etcdTestConfig(t, "h1", false, "advskew = 100\n"), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.etcd.Close()
	type want = planWant
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		want want
	}{
		{"unchanged", etcdTestConfig(t, "h1", false, "advskew = 100\n"), want{kept: []string{"100@eth0"}}},
		{"ranking changed", etcdTestConfig(t, "h1", false, "advskew = 10\npreempt = true\n"), want{kept: []string{"100@eth0"}}},
		{"added", etcdTestConfig(t, "h1", true, "advskew = 100\n"), want{kept: []string{"100@eth0"}, added: []string{"101@eth0"}}},
		{"removed", etcdTestConfig(t, "h1", true, ""), want{added: []string{"101@eth0"}, removed: []string{"100@eth0"}}},
		{"[etcd] changed", etcdTestConfig(t, "h2", false, "advskew = 100\n"), want{err: "carpd.toml:1: the [etcd] table changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkPlan(t, d, f, tc.cfg, tc.want) })
	}
}
