package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// vrrpConfig returns testConfig with its vhid made VRRPv3 (carpver 3), as
// the configuration parsers produce it.
func vrrpConfig() *config.Config {
	cfg := testConfig()
	v := &cfg.VHIDs[0]
	v.Version, v.AdvBase, v.AdvSkew, v.Password = config.VersionVRRP, 0, 0, ""
	v.VRRPPriority, v.VRRPInterval, v.VRRPTieBreak = 100, 100, true
	return cfg
}

const vrrpNotRunMsg = "rc.conf:2: vhid 100 on eth0: carpver 3 (VRRPv3) is configured but this carpd does not run VRRP yet"

// TestNewRefusesVRRP: until the daemon runs VRRP, a carpver 3 vhid stops
// carpd at start rather than running as CARP, and Check (carpd --check)
// says so; the host is not touched.
func TestNewRefusesVRRP(t *testing.T) {
	f := newFakeHost()
	if _, err := New(vrrpConfig(), f.host(), Options{}); err == nil || err.Error() != vrrpNotRunMsg {
		t.Errorf("New: err = %v, want %q", err, vrrpNotRunMsg)
	}
	if err := Check(vrrpConfig(), f.host().Links); err == nil || err.Error() != vrrpNotRunMsg {
		t.Errorf("Check: err = %v, want %q", err, vrrpNotRunMsg)
	}
	if n := f.count(); n != 0 {
		t.Errorf("New touched the host: %q", f.opsSince(0))
	}
	// The same vhid as CARP starts.
	if _, err := New(testConfig(), f.host(), Options{}); err != nil {
		t.Errorf("New of the CARP vhid: %v", err)
	}
}

// TestReloadRefusesVRRP: a reload that makes a vhid VRRP, or adds a VRRP
// one, is refused as a whole and changes nothing.
func TestReloadRefusesVRRP(t *testing.T) {
	f := newFakeHost()
	d, err := New(testConfig(), f.host(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(t, d, f, ctx)
	bg := context.Background()

	added := testConfig()
	v := vrrpConfig().VHIDs[0]
	v.VHID, v.Origin = 101, "rc.conf:3"
	added.VHIDs = append(added.VHIDs, v)
	for name, tc := range map[string]struct {
		cfg  *config.Config
		want string
	}{
		"changed to VRRP": {vrrpConfig(), vrrpNotRunMsg},
		"VRRP added":      {added, "rc.conf:3: vhid 101 on eth0: carpver 3 (VRRPv3) is configured but this carpd does not run VRRP yet"},
	} {
		_, err := d.Reload(bg, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Reload err = %v, want %q", name, err, tc.want)
		}
	}
	st, err := d.Status(bg)
	if err != nil || len(st.VHIDs) != 1 || st.VHIDs[0].VHID != 100 {
		t.Errorf("Status after the refused reloads = %+v, %v; want vhid 100 alone", st, err)
	}
}
