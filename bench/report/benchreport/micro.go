package benchreport

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// Micro is one Go micro-benchmark (go test -bench) over its runs
// (-count), read from the standard benchmark format.
type Micro struct {
	Package string // e.g. github.com/carpd/carpd/internal/carp
	Name    string // as benchfmt gives it: no "Benchmark", no GOMAXPROCS, e.g. Step/tick
	NsOp    Summary
	BytesOp Summary
	Allocs  Summary
}

// ParseMicro reads `go test -bench -benchmem` output (any number of
// packages and -count runs) with golang.org/x/perf/benchfmt and summarises
// each benchmark, in the order first seen. A line benchfmt cannot read is
// an error; a benchmark without ns/op is left out.
func ParseMicro(r io.Reader) ([]Micro, error) {
	type acc struct {
		pkg, name         string
		ns, bytes, allocs []float64
	}
	var order []*acc
	by := map[string]*acc{}
	br := benchfmt.NewReader(r, "micro")
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			base, parts := rec.Name.Parts()
			name := string(base)
			for _, p := range parts {
				if !strings.HasPrefix(string(p), "-") { // -GOMAXPROCS
					name += string(p)
				}
			}
			pkg := rec.GetConfig("pkg")
			key := pkg + " " + name
			a := by[key]
			if a == nil {
				a = &acc{pkg: pkg, name: name}
				by[key] = a
				order = append(order, a)
			}
			if ns, ok := nsPerOp(rec); ok {
				a.ns = append(a.ns, ns)
			}
			if v, ok := rec.Value("B/op"); ok {
				a.bytes = append(a.bytes, v)
			}
			if v, ok := rec.Value("allocs/op"); ok {
				a.allocs = append(a.allocs, v)
			}
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	var out []Micro
	for _, a := range order {
		if len(a.ns) == 0 {
			continue
		}
		out = append(out, Micro{Package: a.pkg, Name: a.name, NsOp: Summarize(a.ns, 0),
			BytesOp: Summarize(a.bytes, 0), Allocs: Summarize(a.allocs, 0)})
	}
	return out, nil
}

// nsPerOp is the result's time per op in ns, as written when it was
// (benchfmt tidies ns/op into sec/op).
func nsPerOp(rec *benchfmt.Result) (float64, bool) {
	for _, v := range rec.Values {
		if v.OrigUnit == "ns/op" {
			return v.OrigValue, true
		}
	}
	if v, ok := rec.Value("sec/op"); ok {
		return v * 1e9, true
	}
	return 0, false
}

// microMarkdown renders the micro-benchmarks' table.
func microMarkdown(b *strings.Builder, meta Meta) {
	if len(meta.Micro) == 0 {
		return
	}
	b.WriteString("## Micro-benchmarks\n\n")
	if meta.MicroCommand != "" {
		fmt.Fprintf(b, "`%s`, each the median [min .. max] over its runs; the raw output is [micro.txt](micro.txt).\n\n", meta.MicroCommand)
	}
	b.WriteString("| package | benchmark | ns/op | B/op | allocs/op | runs |\n|---|---|---|---|---|---|\n")
	for _, m := range meta.Micro {
		pkg := m.Package
		if i := strings.LastIndex(pkg, "/internal/"); i >= 0 {
			pkg = pkg[i+1:]
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %d |\n", pkg, m.Name,
			format(m.NsOp, 1), format(m.BytesOp, 0), format(m.Allocs, 0), m.NsOp.N)
	}
	b.WriteString("\n")
}
