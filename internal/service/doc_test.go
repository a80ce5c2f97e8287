package service

import (
	"bytes"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/doccheck"
)

// TestFlagsDocumented fails for every flag of carpd (as its --help lists
// them, from its flag set) that carpd(8) does not mark up with Fl.
func TestFlagsDocumented(t *testing.T) {
	var usage bytes.Buffer
	ParseFlags([]string{"-help"}, &usage)
	flags := doccheck.FlagsInUsage(usage.String())
	for _, f := range []string{"config", "preempt", "metrics-listen"} {
		if !slices.Contains(flags, f) {
			t.Fatalf("--%s not in carpd's --help (found %v): is the scan broken?", f, flags)
		}
	}
	page, err := doccheck.ReadPage("../../man/carpd.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range page.Missing("Fl", flags) {
		t.Errorf("flag --%s is not documented in man/carpd.8 (as .Fl \\-%s)", f, f)
	}
}
