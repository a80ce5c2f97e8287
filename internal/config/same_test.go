package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCheckSame: two checks are the same when they differ in Origin only;
// a change of any other field, of Argv or VHIDs included, makes them
// differ. A field added to Check without a comparison in Same fails here.
func TestCheckSame(t *testing.T) {
	base := Check{
		Name: "web", Kind: CheckExec, Target: "/bin/true x", Argv: []string{"/bin/true", "x"},
		ExpectStatus: 200, ExpectBody: "ok", Interval: time.Second, Timeout: time.Second,
		Rise: 2, Fall: 3, Weight: 240, Release: false,
		VHIDs: []CheckVHID{{VHID: 100, Interface: "eth0"}}, Origin: "carpd.toml:1",
	}
	moved := base
	moved.Origin = "carpd.toml:9"
	if !base.Same(moved) {
		t.Error("checks that differ in Origin only are not the same")
	}
	copied := base
	copied.Argv = append([]string(nil), base.Argv...)
	copied.VHIDs = append([]CheckVHID(nil), base.VHIDs...)
	if !base.Same(copied) {
		t.Error("a copy is not the same")
	}
	typ := reflect.TypeFor[Check]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Origin" {
			continue
		}
		other := base
		other.Argv = append([]string(nil), base.Argv...)
		other.VHIDs = append([]CheckVHID(nil), base.VHIDs...)
		v := reflect.ValueOf(&other).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "!")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			if f.Name == "Argv" {
				other.Argv[1] = "y"
			} else {
				other.VHIDs[0].VHID++
			}
		default:
			t.Fatalf("field %s of kind %v: teach this test to change it", f.Name, v.Kind())
		}
		if base.Same(other) {
			t.Errorf("checks that differ in %s are the same", f.Name)
		}
	}
}

// TestTwice: the one "configured twice": a vhid number an interface has
// already, of the same protocol or of the other; other numbers and other
// interfaces are no error.
func TestTwice(t *testing.T) {
	first := VHID{Interface: "eth0", VHID: 100, Version: VersionCARP, Origin: "carpd.toml:1"}
	for _, tc := range []struct {
		name string
		v    VHID
		want string
	}{
		{"same", VHID{Interface: "eth0", VHID: 100, Version: VersionCARP, Origin: "carpd.toml:8"},
			"carpd.toml:8: vhid 100 on eth0 is already defined at carpd.toml:1"},
		{"vrrp", VHID{Interface: "eth0", VHID: 100, Version: VersionVRRP, Origin: "carpd.toml:8"},
			"carpd.toml:8: vhid 100 on eth0 is already defined at carpd.toml:1: a CARP vhid and a VRRP vrid (carpver 3) share the numbers of an interface"},
		{"other number", VHID{Interface: "eth0", VHID: 101, Origin: "carpd.toml:8"}, ""},
		{"other interface", VHID{Interface: "eth1", VHID: 100, Origin: "carpd.toml:8"}, ""},
	} {
		err := Twice(&first, &tc.v)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: Twice = %q, want %q", tc.name, got, tc.want)
		}
	}
	if strings.Contains(twiceMessage(1, "eth0", "x", false), "share") {
		t.Error("a same-protocol duplicate is called mixed")
	}
}
