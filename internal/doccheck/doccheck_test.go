package doccheck

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// tables are the places a key can be written, as the start of a file.
var tables = map[string]string{
	"[etcd]":    "[etcd]\n",
	"global":    "",
	"[[vhid]]":  "[[vhid]]\n",
	"[[check]]": "[[check]]\n",
	"[bgp]":     "[bgp]\n",
}

// tomlKeys returns every key that config.ParseTOML accepts, with the
// table it is accepted in. The candidates are the string literals of the
// config package (a key the parser knows is written there, as a case or
// a map entry); the parser decides which of them are keys: a key it
// accepts gets an error about its value at most, never "unknown key".
func tomlKeys(t *testing.T) map[string][]string {
	t.Helper()
	lits, err := StringLiterals("../config")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, k := range KeyCandidates(lits) {
		for _, table := range []string{"global", "[[vhid]]", "[[check]]", "[etcd]", "[bgp]"} {
			if accepted(tables[table], k) {
				keys[k] = append(keys[k], table)
			}
		}
	}
	return keys
}

// accepted reports whether ParseTOML takes key in the table that prefix
// opens, whatever it says of the value.
func accepted(prefix, key string) bool {
	_, err := config.ParseTOML("doc.toml", []byte(prefix+key+" = 1\n"), "")
	for _, e := range flatten(err) {
		var ce *config.Error
		if !errors.As(e, &ce) || ce.Word != key {
			continue
		}
		if strings.HasPrefix(ce.Msg, "unknown key") || strings.Contains(ce.Msg, "belongs in") ||
			strings.Contains(ce.Msg, "is a global setting") {
			return false
		}
	}
	return true
}

// flatten returns the errors joined in err.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// TestTOMLKeysDocumented fails for every key the parser accepts that
// carpd.toml(5) does not mark up with Ic.
func TestTOMLKeysDocumented(t *testing.T) {
	keys := tomlKeys(t)
	// The oracle must tell keys from other words, or the test proves
	// nothing.
	for _, k := range []string{"preempt", "vhid", "advskew", "vrrp-priority", "weight", "hook-timeout"} {
		if keys[k] == nil {
			t.Fatalf("the parser does not seem to accept %q: is the oracle broken?", k)
		}
	}
	for _, k := range []string{"no-such-key", "pass", "priority", "mcast"} {
		if keys[k] != nil {
			t.Fatalf("the parser seems to accept %q in %v: is the oracle broken?", k, keys[k])
		}
	}
	page, err := ReadPage("../../man/carpd.toml.5")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	for _, k := range page.Missing("Ic", names) {
		t.Errorf("TOML key %q (accepted in %s) is not documented in man/carpd.toml.5 (as .Ic %s)",
			k, strings.Join(keys[k], ", "), k)
	}
	t.Logf("%d TOML keys checked", len(keys))
}

// TestHookEnvironmentDocumented fails for every CARP_* variable that
// internal/hooks sets and carpd.toml(5) does not mark up with Ev.
func TestHookEnvironmentDocumented(t *testing.T) {
	lits, err := StringLiterals("../hooks")
	if err != nil {
		t.Fatal(err)
	}
	vars := EnvVars(lits)
	for _, v := range []string{"CARP_VHID", "CARP_PROTO", "CARP_PRIORITY"} {
		if !slices.Contains(vars, v) {
			t.Fatalf("%s not found in internal/hooks (found %v): is the scan broken?", v, vars)
		}
	}
	page, err := ReadPage("../../man/carpd.toml.5")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range page.Missing("Ev", vars) {
		t.Errorf("hook variable %s is not documented in man/carpd.toml.5 (as .Ev %s)", v, v)
	}
}

func TestPage(t *testing.T) {
	p := Page{}
	for _, l := range []string{
		`.It Fl \-ifdown\-demotion Ar n , Fl \-senderr\-demotion Ar n`,
		`.It Ic hook , upscript , downscript`,
		`.It Ev CARP_VHID`,
		`Ic notmarked plain text`,
	} {
		p.addLine(l)
	}
	for _, c := range []struct{ m, w string }{
		{"Fl", "ifdown-demotion"}, {"Fl", "senderr-demotion"}, {"Ic", "hook"},
		{"Ic", "upscript"}, {"Ic", "downscript"}, {"Ev", "CARP_VHID"},
	} {
		if !p.Has(c.m, c.w) {
			t.Errorf("%s %s not found in %v", c.m, c.w, p)
		}
	}
	for _, c := range []struct{ m, w string }{{"Ic", "n"}, {"Ic", "notmarked"}, {"Fl", "n"}} {
		if p.Has(c.m, c.w) {
			t.Errorf("%s %s found", c.m, c.w)
		}
	}
}

func TestFlagsInUsage(t *testing.T) {
	got := FlagsInUsage("usage: carpctl [--control PATH] [--json] X\n  demote +N|-N [--reason TEXT]\n  -check-user string\n  --clear")
	want := []string{"check-user", "clear", "control", "json", "reason"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestLinksResolve fails for every relative link of the README and the
// documentation whose file is not in the repository.
func TestLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md", "../../bench/README.md")
	for _, f := range files {
		broken, err := BrokenLinks(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range broken {
			t.Errorf("%s: the link %s leads to no file", strings.TrimPrefix(f, "../../"), l)
		}
	}
	if len(files) < 7 {
		t.Errorf("only %d documents found: %v", len(files), files)
	}
}
