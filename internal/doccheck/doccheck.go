// Package doccheck finds what the code accepts but the manual pages do not
// document: TOML keys, command-line flags, carpctl's commands and the
// hooks' environment. Its tests (here, in internal/service and in cmd/carpctl)
// derive each set from the code itself and fail naming every word that a
// page leaves out.
package doccheck

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Page holds the words an mdoc(7) manual page marks up, by macro: "Fl"
// (flags, without the leading dashes), "Ic" (keys, commands), "Ev"
// (environment variables), and every other macro the page uses.
type Page map[string]map[string]bool

// macro matches an mdoc macro name callable on a line: Fl, Ic, Ar, Ns, ...
var macro = regexp.MustCompile(`^[A-Z][a-zA-Z]{1,2}$`)

// ReadPage reads the mdoc page at path.
func ReadPage(path string) (Page, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := Page{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p.addLine(sc.Text())
	}
	return p, sc.Err()
}

// addLine records the words of one line under the macro that marks them
// up. Only macro lines (".Xx ...") mark words up; in one, a word belongs to
// the last macro before it, as mdoc parses "Ic a , b" (both commands).
func (p Page) addLine(line string) {
	if !strings.HasPrefix(line, ".") {
		return
	}
	line = strings.ReplaceAll(line[1:], `\-`, "-")
	line = strings.ReplaceAll(line, `\&`, "")
	mode := ""
	for _, w := range strings.Fields(line) {
		if macro.MatchString(w) {
			mode = w
			continue
		}
		w = strings.Trim(w, `"`)
		if mode == "" || w == "" || strings.Trim(w, ",.;:()|[]") == "" {
			continue
		}
		if p[mode] == nil {
			p[mode] = map[string]bool{}
		}
		p[mode][w] = true
	}
}

// Has reports whether the page marks word up with macro m. A flag is
// written "Fl -name" or "Fl name"; the dashes do not count.
func (p Page) Has(m, word string) bool {
	if m == "Fl" {
		return p[m]["-"+word] || p[m]["--"+word] || p[m][word]
	}
	return p[m][word]
}

// Missing returns the words of want that the page does not mark up with
// macro m, sorted.
func (p Page) Missing(m string, want []string) []string {
	var out []string
	for _, w := range want {
		if !p.Has(m, w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Flags returns the names of every flag of fs.
func Flags(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// usageFlag matches a flag in a usage text: "--name" anywhere, or "-name"
// at the start of one of flag.PrintDefaults's lines ("  -name value").
var usageFlag = regexp.MustCompile(`(?m)(?:^\s+-|--)([a-z][a-z0-9-]*)`)

// FlagsInUsage returns the flags named in a program's usage text (its
// --help output, which lists every flag of its flag.FlagSet).
func FlagsInUsage(usage string) []string {
	var names []string
	for _, m := range usageFlag.FindAllStringSubmatch(usage, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// StringLiterals returns every string constant written in the non-test Go
// files of the package in dir (string literals, constants included), each
// once, sorted.
func StringLiterals(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					seen[s] = true
				}
			}
			return true
		})
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no Go string literals in %s", dir)
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// envVar matches the name of a hook environment variable at the start of
// a literal such as "CARP_VHID=".
var envVar = regexp.MustCompile(`^(CARP_[A-Z0-9_]+)=`)

// EnvVars returns the CARP_* variables that the literals set ("CARP_X=...").
func EnvVars(literals []string) []string {
	var out []string
	for _, s := range literals {
		if m := envVar.FindStringSubmatch(s); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// keyLike matches what could be a TOML key of carpd's: a bare word in
// lower case with dashes or underscores.
var keyLike = regexp.MustCompile(`^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$`)

// KeyCandidates returns the literals that could be TOML keys.
func KeyCandidates(literals []string) []string {
	var out []string
	for _, s := range literals {
		if keyLike.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// mdLink matches the target of a Markdown link or image: "](target)".
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// BrokenLinks returns the relative links of the Markdown file at path
// whose target file does not exist, as written. Links to a scheme
// (https:, mailto:) and to an anchor of the same page are not checked; an
// anchor after a file name is dropped.
func BrokenLinks(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var broken []string
	for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
		target := m[1]
		if strings.Contains(target, ":") || strings.HasPrefix(target, "#") {
			continue
		}
		file, _, _ := strings.Cut(target, "#")
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), file)); err != nil {
			broken = append(broken, target)
		}
	}
	return broken, nil
}
