package vrrp

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var writeSeeds = flag.Bool("seeds", false, "rewrite testdata/fuzz/FuzzParseVRRP from the keepalived captures")

// TestWriteFuzzSeeds writes the first advert of every keepalived capture
// as a seed of FuzzParseVRRP: `go test ./internal/vrrp/ -run
// TestWriteFuzzSeeds -seeds`.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("-seeds not given")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseVRRP")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range captureCases {
		p := readCapture(t, c.pcap())[0]
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n[]byte(%q)\n", p.Payload, p.Src.AsSlice(), p.Dst.AsSlice())
		if err := os.WriteFile(filepath.Join(dir, c.name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzParseVRRP: Parse never panics, errors are the sentinels, and what
// parses marshals back to the same bytes (with the reserved bits, which
// Parse ignores, cleared and the checksum recomputed when they were set,
// and a checksum field of 0xffff, the other form of zero, written as
// 0x0000), unless its VRID is 0, which Parse leaves to the VRID lookup and
// Marshal refuses.
func FuzzParseVRRP(f *testing.F) {
	f.Add([]byte{0x31, 1, 100, 1, 0, 100, 0, 0, 192, 0, 2, 50}, src4.AsSlice(), GroupIPv4.AsSlice())
	f.Add([]byte{0x31, 0, 100, 1, 0xf0, 100, 0, 0, 192, 0, 2, 50}, src4.AsSlice(), GroupIPv4.AsSlice())
	f.Fuzz(func(t *testing.T, b, s, d []byte) {
		src, _ := netip.AddrFromSlice(s)
		dst, _ := netip.AddrFromSlice(d)
		roundTrip(t, b, src, dst)
		// The same with the checksum made right, so that the fuzzer
		// reaches the checks after it.
		if len(b) >= HeaderLen && len(b) <= 1<<16 {
			roundTrip(t, fix(bytes.Clone(b), src, dst), src, dst)
		}
	})
}

func roundTrip(t *testing.T, b []byte, src, dst netip.Addr) {
	{
		in := bytes.Clone(b)
		var a Advert
		err := ParseInto(b, src, dst, &a)
		if !bytes.Equal(b, in) {
			t.Fatal("ParseInto changed its input")
		}
		if err != nil {
			if _, ok := DropReasonOf(err); !ok && err != ErrNotVRRP {
				t.Fatalf("error %v without a drop reason", err)
			}
			return
		}
		out, err := a.Marshal(src, dst)
		if a.VRID == 0 {
			if err != ErrBadVRID {
				t.Fatalf("VRID 0 marshalled: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("parsed %+v does not marshal: %v", a, err)
		}
		want := in
		switch {
		case want[4]&0xf0 != 0:
			want[4] &= 0x0f
			fix(want, src, dst)
		case want[6] == 0xff && want[7] == 0xff:
			// One's complement's other zero: a checksum field of
			// 0xffff checks as 0x0000 does, and Marshal writes 0x0000.
			fix(want, src, dst)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("re-marshalled % x, want % x", out, want)
		}
	}
}
