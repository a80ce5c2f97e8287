package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dryRun runs carpcraft --dry-run with args on lo (the source given) and
// returns its exit status, stdout and stderr.
func dryRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--iface", "lo", "--dry-run"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestDryRun: the first packet of a kind, printed and decoded, without a
// socket.
func TestDryRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // regular expressions, each matching a line
	}{
		{[]string{"--src", "192.0.2.23", "--kind", "forged", "--vhid", "100", "--counter", "7"},
			[]string{`^ip      192\.0\.2\.23 -> 224\.0\.0\.18 ttl 255, 36 bytes of payload$`,
				`^advert  advert vhid 100 advbase 1 advskew 0 counter 0x0000000000000007$`}},
		{[]string{"--src", "fe80::1", "--family", "6", "--kind", "ttl", "--dst", "2001:db8::21"},
			[]string{`^ip      fe80::1 -> 2001:db8::21 ttl 254, 36 bytes`}},
		{[]string{"--src", "192.0.2.23", "--kind", "truncated", "--len", "4"},
			[]string{`36 bytes|4 bytes of payload`, `^advert  4 bytes \(carp: .*shorter than the header\)$`}},
		{[]string{"--src", "192.0.2.23", "--kind", "oversized"}, []string{`1400 bytes of payload`}},
		{[]string{"--src", "192.0.2.23", "--kind", "valid", "--advbase", "0", "--advskew", "9", "--demote", "3", "--ttl", "1"},
			[]string{`ttl 1,`, `^advert  advert vhid 1 advbase 0 advskew 9 counter`}},
		{[]string{"--src", "192.0.2.23", "--kind", "badsum"}, []string{`bad checksum`}},
		{[]string{"--src", "192.0.2.23", "--kind", "replay", "--replay",
			"210164070001d3ff0102030405060708 8e95143e8c4c0d829b1e4de9d611eabc150c9b5d"},
			[]string{`^advert  advert vhid 1 advbase 1 advskew 100 counter 0x0102030405060708$`}},
	} {
		code, out, errOut := dryRun(tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, errOut)
			continue
		}
		for _, re := range tc.want {
			if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
				t.Errorf("%v: no line matches %s:\n%s", tc.args, re, out)
			}
		}
	}
}

// TestReplayFromPcap: --replay reads a capture, picks the source asked.
func TestReplayFromPcap(t *testing.T) {
	code, out, errOut := dryRun("--src", "192.0.2.23", "--kind", "replay", "--replay", "../../internal/carp/testdata/ucarp-adverts.pcap")
	if code != 0 || !strings.Contains(out, "advert vhid 100") || !strings.Contains(errOut, "replaying advert vhid 100") {
		t.Errorf("exit %d:\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = dryRun("--src", "192.0.2.23", "--kind", "replay", "--replay", "../../internal/carp/testdata/ucarp-adverts.pcap",
		"--replay-src", "198.51.100.1")
	if code != 2 || !strings.Contains(errOut, "no IPv4 protocol-112 packet from 198.51.100.1") {
		t.Errorf("a source not in the capture: exit %d: %s", code, errOut)
	}
	// An IP packet in hex is taken apart.
	p := "45e0003800014000ff70d84ac0000217e0000012" + "210164070001d3ff0102030405060708" + "8e95143e8c4c0d829b1e4de9d611eabc150c9b5d"
	if _, err := hex.DecodeString(p); err != nil {
		t.Fatal(err)
	}
	code, out, _ = dryRun("--src", "192.0.2.23", "--kind", "replay", "--replay", p)
	if code != 0 || !strings.Contains(out, "36 bytes of payload") {
		t.Errorf("an IP packet in hex: exit %d:\n%s", code, out)
	}
}

// TestUsageErrors: bad command lines exit 2 with a message naming the
// problem.
func TestUsageErrors(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("this is not a capture file, no"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "forged"}, "--iface is required"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--family", "5"}, "--family 5"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1"}, "give --count or --duration"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--vhid", "0"}, "--vhid 0"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--kind", "nope"}, `unknown kind "nope"`},
		{[]string{"--iface", "lo", "--src", "2001:db8::1", "--count", "1"}, "must be IPv4 addresses"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--advskew", "256"}, "want a number 0..255"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--version", "16"}, "want a number 0..15"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--kind", "replay", "--replay", "zz"}, "neither a file nor hex"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--kind", "replay", "--replay", garbage}, "not a pcap file"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--kind", "replay", "--replay", "21", "--advskew", "0"},
			"--advskew does not apply"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--kind", "echo", "--echo-of", "x"}, `--echo-of "x"`},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--pass", "forged"}, "the forged password is the vhid's own"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "--rate", "-1"}, "--rate -1"},
		{[]string{"--iface", "lo", "--src", "192.0.2.1", "--count", "1", "stray"}, `unexpected argument "stray"`},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "unknownvhid") {
		t.Errorf("--help: exit %d:\n%s", code, out.String())
	}
}
