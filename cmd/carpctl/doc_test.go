package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/doccheck"
)

// command matches a command in carpctl's usage: a word at the start of a
// line indented by two spaces.
var usageCommand = regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)`)

// TestUsageDocumented fails for every flag and command of carpctl (as its
// --help lists them) that carpctl(8) does not mark up with Fl or Ic.
func TestUsageDocumented(t *testing.T) {
	var out, help bytes.Buffer
	run(context.Background(), []string{"-help"}, &out, &help)
	flags := doccheck.FlagsInUsage(help.String())
	var commands []string
	for _, m := range usageCommand.FindAllStringSubmatch(help.String(), -1) {
		commands = append(commands, m[1])
	}
	if !slices.Contains(flags, "json") || !slices.Contains(flags, "persist") || !slices.Contains(commands, "is-master") {
		t.Fatalf("flags %v, commands %v: is the scan broken?", flags, commands)
	}
	page, err := doccheck.ReadPage("../../man/carpctl.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range page.Missing("Fl", flags) {
		t.Errorf("flag --%s is not documented in man/carpctl.8 (as .Fl \\-%s)", f, f)
	}
	for _, c := range page.Missing("Ic", commands) {
		t.Errorf("command %s is not documented in man/carpctl.8 (as .Ic %s)", c, c)
	}
}
