package benchreport

import (
	"strings"
	"testing"
)

// microOut is go test -bench -benchmem output of two packages, two runs.
const microOut = `goos: linux
goarch: amd64
pkg: github.com/carpd/carpd/internal/carp
cpu: AMD EPYC
BenchmarkParseVerify-2   	 6332889	       187.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkParseVerify-2   	 6332889	       191.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkStep/tick-2     	 5249539	       230.0 ns/op	      80 B/op	       3 allocs/op
BenchmarkStep/tick-2     	 5249539	       240.0 ns/op	      80 B/op	       3 allocs/op
PASS
ok  	github.com/carpd/carpd/internal/carp	3.574s
goos: linux
goarch: amd64
pkg: github.com/carpd/carpd/internal/vrrp
cpu: AMD EPYC
BenchmarkStep/tick-2              	22515490	        54.14 ns/op	      48 B/op	       2 allocs/op
BenchmarkStep/tick-2              	22515490	        50.00 ns/op	      48 B/op	       2 allocs/op
PASS
ok  	github.com/carpd/carpd/internal/vrrp	5.934s
`

func TestParseMicro(t *testing.T) {
	ms, err := ParseMicro(strings.NewReader(microOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d benchmarks, want 3: %+v", len(ms), ms)
	}
	// Same name, different packages: two rows.
	if ms[1].Name != "Step/tick" || ms[2].Name != "Step/tick" ||
		!strings.HasSuffix(ms[1].Package, "/carp") || !strings.HasSuffix(ms[2].Package, "/vrrp") {
		t.Errorf("names/packages: %+v", ms)
	}
	if s := ms[0].NsOp; s.N != 2 || s.Min != 187 || s.Max != 191 || s.Median != 189 {
		t.Errorf("ParseVerify ns/op = %+v", s)
	}
	if s := ms[1].Allocs; s.Median != 3 || ms[1].BytesOp.Median != 80 {
		t.Errorf("carp Step/tick allocs %+v bytes %+v", s, ms[1].BytesOp)
	}
	meta := testMeta
	meta.Micro, meta.MicroCommand = ms, "go test -bench ."
	md := Markdown(meta, testRows, nil)
	for _, want := range []string{
		"## Micro-benchmarks",
		"`go test -bench .`",
		"| internal/carp | ParseVerify | 189.0 [187.0 .. 191.0] | 0 [0 .. 0] | 0 [0 .. 0] | 2 |",
		"| internal/vrrp | Step/tick | 52.1 [50.0 .. 54.1] | 48 [48 .. 48] | 2 [2 .. 2] | 2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	if _, err := ParseMicro(strings.NewReader("BenchmarkX-2 12 abc ns/op\n")); err == nil {
		t.Error("a malformed line parsed without error")
	}
}
