package vmac

import "testing"

func TestMACAndName(t *testing.T) {
	if got := MAC(100).String(); got != "00:00:5e:00:01:64" {
		t.Errorf("MAC(100) = %s, want 00:00:5e:00:01:64", got)
	}
	if got := Name(2, 100); got != "carp2.100" {
		t.Errorf("Name(2, 100) = %q, want carp2.100", got)
	}
	// Interface names have at most 15 bytes (IFNAMSIZ - 1).
	if got := Name(9999999, 255); len(got) > 15 {
		t.Errorf("Name(9999999, 255) = %q: %d bytes, want <= 15", got, len(got))
	}
}
