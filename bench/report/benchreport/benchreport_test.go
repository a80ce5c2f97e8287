package benchreport

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var testMeta = Meta{
	Date: "2026-11-29T12:00:00Z", Command: "scripts/bench.sh --quick", Mode: "quick", Runs: 2,
	CPU: "Test CPU", Cores: 2, Kernel: "6.1.0",
	Daemons: []Daemon{
		{ID: "carpd-carp", Title: "CARP advbase 1", Version: "v1", Probe: "10 ms", BoundMS: 3781.25},
		{ID: "carpd-vrrp3-10ms", Title: "VRRPv3 10 ms", Version: "v1", Probe: "1 ms", BoundMS: 37.85},
	},
	Settings: []string{"a setting"},
}

var testRows = []Row{
	{Daemon: "carpd-carp", Scenario: "portcut", Metric: "outage_ms", Run: 1, Value: 3000},
	{Daemon: "carpd-carp", Scenario: "portcut", Metric: "outage_ms", Run: 2, Value: 3500},
	{Daemon: "carpd-carp", Scenario: "portcut", Metric: "outage_ms", Run: 3, Value: 3100},
	{Daemon: "carpd-vrrp3-10ms", Scenario: "portcut", Metric: "outage_ms", Run: 1, Value: 35},
	{Daemon: "carpd-vrrp3-10ms", Scenario: "sigterm", Metric: "outage_ms", Run: 1, Value: 0},
	{Daemon: "carpd-vrrp3-10ms", Scenario: "sigkill", Metric: "vip_kept_ms", Run: 1, Value: 8000, Censored: true, Note: "still held"},
}

func TestCSVRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, testRows); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testRows) || got[5] != testRows[5] || got[0] != testRows[0] {
		t.Errorf("round trip: got %+v, want %+v", got, testRows)
	}
	if _, err := ReadCSV(strings.NewReader("a,b\n")); err == nil {
		t.Error("a bad header is accepted")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{4, 1, 3, 2}, 0)
	if s.N != 4 || s.Median != 2.5 || s.Min != 1 || s.Max != 4 {
		t.Errorf("Summarize = %+v", s)
	}
	if s := Cell(testRows, "carpd-carp", "portcut", "outage_ms"); s.Median != 3100 || s.Min != 3000 || s.Max != 3500 || s.N != 3 {
		t.Errorf("Cell = %+v", s)
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(testMeta, testRows, []string{"outage.png"})
	for _, want := range []string{
		"| master's switch port cut: client outage | ms | 3100.0 [3000.0 .. 3500.0] | 35.0 |",
		"| SIGKILL: the dead host keeps the VIP for | ms | - | ≥ 8000 (a lower bound: the window ended first) |",
		"Machine: Test CPU, 2 cores, Linux 6.1.0.",
		"`scripts/bench.sh --quick`",
		"![outage](outage.png)",
		"| carpd-vrrp3-10ms | VRRPv3 10 ms | v1 | every 1 ms | 37.85 ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	// Rows with no figures are left out.
	if strings.Contains(md, "255 vhids") {
		t.Errorf("the report has a row with no figures:\n%s", md)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	var qs []Quantile
	for p := range 101 {
		qs = append(qs, Quantile{"carpd-carp", "idle", float64(p), float64(p) / 20},
			Quantile{"carpd-vrrp3-10ms", "busy", float64(p), float64(p)/100 - 0.1})
	}
	if err := writeRaw(dir, testMeta, testRows, qs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"BENCHMARKS.md", "results.csv", "jitter.csv", "meta.json", "outage.png", "jitter-idle.png", "jitter-busy.png"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	png, err := os.ReadFile(filepath.Join(dir, "outage.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("outage.png is not a PNG: %q", png[:min(8, len(png))])
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	for _, want := range []string{"(outage.png)", "(jitter-idle.png)", "(jitter-busy.png)", "(results.csv)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md does not link %s", want)
		}
	}
}

// writeRaw writes the raw figures as the benchmark does (results.csv,
// jitter.csv, meta.json) into dir, then the report from them (Render).
func writeRaw(dir string, meta Meta, rows []Row, qs []Quantile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	if err := WriteCSV(f, rows); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := writeQuantiles(filepath.Join(dir, "jitter.csv"), qs); err != nil {
		return err
	}
	mj, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), append(mj, '\n'), 0o644); err != nil {
		return err
	}
	return Render(dir)
}

func writeQuantiles(path string, qs []Quantile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	_ = cw.Write(quantileHeader)
	for _, q := range qs {
		_ = cw.Write([]string{q.Daemon, q.Condition, strconv.FormatFloat(q.P, 'f', -1, 64), strconv.FormatFloat(q.LateMS, 'f', 4, 64)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
