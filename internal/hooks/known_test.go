package hooks

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// downOf is a configuration whose vhid 100 on eth0 has the down script
// down with address addr.
func downOf(down, addr string) map[Key]Scripts {
	return map[Key]Scripts{key: {Down: down, Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}}}
}

func downReq(down, addr string) Request {
	return Request{VHID: 100, Interface: "eth0", Hook: "downscript", Argv: []string{down, "eth0", addr}}
}

// TestAllowedKnown: a request the file as it is now refuses runs when a
// registered configuration allows it; one no configuration ever allowed
// is still refused; an unreadable file leaves the registered ones.
func TestAllowedKnown(t *testing.T) {
	a := Allowed{
		Scripts:  downOf("/etc/carpd/new-down", "198.51.100.7/24"), // B, the file now
		HookUser: "root",
		Known:    []KnownConfig{KnownOf(downOf("/etc/carpd/old-down", "192.0.2.50/24"))}, // A
	}
	for _, r := range []Request{downReq("/etc/carpd/new-down", "198.51.100.7"), downReq("/etc/carpd/old-down", "192.0.2.50")} {
		if err := a.Validate(r); err != nil {
			t.Errorf("%q: %v, want allowed", r.Argv, err)
		}
	}
	for _, r := range []Request{
		downReq("/etc/carpd/old-down", "198.51.100.7"), // A's script, B's address: neither
		downReq("/bin/sh", "192.0.2.50"),
		{VHID: 7, Interface: "eth0", Hook: "downscript", Argv: []string{"/etc/carpd/old-down", "eth0", "192.0.2.50"}},
	} {
		err := a.Validate(r)
		if err == nil || !strings.Contains(err.Error(), "nor does any of the 1 configurations registered since boot allow it") {
			t.Errorf("%d %q: %v, want refused", r.VHID, r.Argv, err)
		}
	}
	// hook-user no longer root in the file: the registered root hooks stay.
	a.HookUser = ""
	if err := a.Validate(downReq("/etc/carpd/old-down", "192.0.2.50")); err != nil {
		t.Errorf("registered hook with hook-user unset now: %v", err)
	}
	a.LoadErr = os.ErrNotExist
	if err := a.Validate(downReq("/etc/carpd/old-down", "192.0.2.50")); err != nil {
		t.Errorf("registered hook with the file unreadable: %v", err)
	}
	if err := a.Validate(downReq("/etc/carpd/new-down", "198.51.100.7")); err == nil || !strings.Contains(err.Error(), "cannot read the configuration") {
		t.Errorf("the unreadable file's hook: %v, want refused", err)
	}
}

// TestRemember: the last MaxKnown configurations stay, oldest dropped; a
// configuration registered again moves to the end instead of taking a
// second place.
func TestRemember(t *testing.T) {
	conf := func(i int) KnownConfig {
		return KnownOf(downOf("/etc/carpd/down"+string(rune('a'+i)), "192.0.2.50/24"))
	}
	var known []KnownConfig
	for i := range MaxKnown + 1 {
		known = Remember(known, conf(i))
	}
	if len(known) != MaxKnown {
		t.Fatalf("%d configurations kept, want %d", len(known), MaxKnown)
	}
	a := Allowed{LoadErr: os.ErrNotExist, Known: known}
	if err := a.Validate(downReq("/etc/carpd/downa", "192.0.2.50")); err == nil {
		t.Error("the oldest configuration is still allowed after MaxKnown newer ones")
	}
	for _, i := range []int{1, MaxKnown} {
		if err := a.Validate(downReq("/etc/carpd/down"+string(rune('a'+i)), "192.0.2.50")); err != nil {
			t.Errorf("configuration %d: %v", i, err)
		}
	}
	again := Remember(known, conf(1))
	if len(again) != MaxKnown || again[MaxKnown-1].Hooks[0].Scripts.Down != "/etc/carpd/downb" || again[0].Hooks[0].Scripts.Down != "/etc/carpd/downc" {
		t.Errorf("registering configuration 1 again: %d kept, newest %q", len(again), again[len(again)-1].Hooks[0].Scripts.Down)
	}
}

// TestRegisterKnown: the record survives a round trip through the file,
// in a directory only root may enter, bounded, with no temporary file
// left; a corrupt record is an error to read and is replaced at the
// next register.
func TestRegisterKnown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd-hook", "known.json")
	if k, err := LoadKnown(path); err != nil || k != nil {
		t.Fatalf("no record: %v %v", k, err)
	}
	for i := range MaxKnown + 3 {
		if err := RegisterKnown(path, KnownOf(downOf("/etc/carpd/down"+string(rune('a'+i)), "192.0.2.50/24"))); err != nil {
			t.Fatal(err)
		}
	}
	k, err := LoadKnown(path)
	if err != nil || len(k) != MaxKnown {
		t.Fatalf("%d configurations, %v", len(k), err)
	}
	if got := k[len(k)-1].Hooks[0].Scripts; got.Down != "/etc/carpd/down"+string(rune('a'+MaxKnown+2)) || got.Addresses[0].String() != "192.0.2.50/24" {
		t.Errorf("newest %+v", got)
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory %v %v, want mode 0700", st.Mode(), err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v %v, want 0600", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
	if err := os.WriteFile(path, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKnown(path); err == nil {
		t.Error("a corrupt record reads without error")
	}
	if err := RegisterKnown(path, KnownOf(downOf("/etc/carpd/x", "192.0.2.50/24"))); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadKnown(path); err != nil || len(k) != 1 {
		t.Errorf("after a corrupt record: %d, %v", len(k), err)
	}
}
