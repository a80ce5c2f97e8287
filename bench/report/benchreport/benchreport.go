// Package benchreport turns the per-run figures of the comparison
// benchmark (e2e/matrix_bench_test.go writes results.csv, jitter.csv and
// meta.json; scripts/bench.sh then runs this module's command) into its
// report:
// BENCHMARKS.md (a table of median [min .. max] per scenario and daemon,
// the machine, the daemons' versions, the command, the date), the raw
// figures as results.csv and jitter.csv, and PNG charts drawn with
// gonum.org/v1/plot, all in one directory.
package benchreport

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Row is one figure of one run of one daemon in one scenario.
type Row struct {
	Daemon   string  // a Daemon's ID
	Scenario string  // a Scenario's ID
	Metric   string  // a Metric's ID
	Run      int     // 1, 2, ...
	Value    float64 // in the metric's unit
	// Censored: the value is a lower bound (the measurement window ended
	// first: "at least").
	Censored bool
	Note     string // free text, e.g. the phase drawn
}

// Quantile is one point of a daemon's advert lateness distribution, all
// runs pooled.
type Quantile struct {
	Daemon    string
	Condition string  // "idle" or "busy"
	P         float64 // percentile, 0..100
	LateMS    float64 // lateness (gap minus nominal interval), ms
}

// Daemon describes a column.
type Daemon struct {
	ID, Title string
	Version   string
	Probe     string // the client's probe interval, e.g. "10 ms"
	BoundMS   float64
}

// Meta describes the run.
type Meta struct {
	Date     string // RFC 3339, UTC
	Command  string
	Mode     string // "full" or "quick"
	Runs     int    // runs per cell
	CPU      string
	Cores    int
	Kernel   string
	Daemons  []Daemon
	Settings []string // one line each, shown as a list
	Notes    []string // one paragraph each
	Elapsed  string
	// Micro are the Go micro-benchmarks run beside (ParseMicro), by
	// MicroCommand.
	Micro        []Micro `json:",omitempty"`
	MicroCommand string  `json:",omitempty"`
}

// Metric describes a table row.
type Metric struct {
	Scenario, ID string
	Title        string // the row's label
	Unit         string
	Decimals     int
}

// Metrics are the table's rows, in order; rows with no figures are left
// out.
var Metrics = []Metric{
	{"portcut", "outage_ms", "master's switch port cut: client outage", "ms", 1},
	{"portcut", "bound_distance_ms", "port cut: master's last advert to first answer, minus the bound", "ms", 1},
	{"sigkill", "outage_ms", "daemon SIGKILLed, link up: client outage", "ms", 1},
	{"sigkill", "vip_kept_ms", "SIGKILL: the dead host keeps the VIP for", "ms", 0},
	{"sigterm", "lost", "planned stop (SIGTERM): lost probes", "", 0},
	{"sigterm", "outage_ms", "planned stop: client outage", "ms", 1},
	{"failback", "lost", "failback with preempt: lost probes", "", 0},
	{"failback", "outage_ms", "failback: client outage", "ms", 1},
	{"idle1", "cpu_master_pct", "1 vhid idle: master CPU", "% of a core", 3},
	{"idle1", "cpu_backup_pct", "1 vhid idle: backup CPU", "% of a core", 3},
	{"idle1", "rss_master_mb", "1 vhid idle: master RSS", "MB", 1},
	{"idle1", "pss_master_mb", "1 vhid idle: master PSS (shared pages divided)", "MB", 1},
	{"idle255", "cpu_master_pct", "255 vhids idle: master CPU", "% of a core", 2},
	{"idle255", "cpu_backup_pct", "255 vhids idle: backup CPU", "% of a core", 2},
	{"idle255", "rss_master_mb", "255 vhids idle: master RSS", "MB", 1},
	{"idle255", "pss_master_mb", "255 vhids idle: master PSS (shared pages divided)", "MB", 1},
	{"idle255", "moves", "255 vhids idle: VIP moves and transitions seen", "", 0},
	{"jitter-idle", "late_p50_ms", "advert send lateness, 255 vhids idle: p50", "ms", 2},
	{"jitter-idle", "late_p99_ms", "advert send lateness, 255 vhids idle: p99", "ms", 2},
	{"jitter-busy", "late_p50_ms", "advert send lateness, 255 vhids, other core busy: p50", "ms", 2},
	{"jitter-busy", "late_p99_ms", "advert send lateness, 255 vhids, other core busy: p99", "ms", 2},
}

var header = []string{"daemon", "scenario", "metric", "run", "value", "censored", "note"}

// WriteCSV writes rows as CSV with a header line.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		c := "0"
		if r.Censored {
			c = "1"
		}
		if err := cw.Write([]string{r.Daemon, r.Scenario, r.Metric, strconv.Itoa(r.Run),
			strconv.FormatFloat(r.Value, 'g', 8, 64), c, r.Note}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads what WriteCSV wrote.
func ReadCSV(r io.Reader) ([]Row, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || !slices.Equal(recs[0], header) {
		return nil, fmt.Errorf("benchreport: the CSV header is not %v", header)
	}
	var rows []Row
	for i, rec := range recs[1:] {
		run, err1 := strconv.Atoi(rec[3])
		v, err2 := strconv.ParseFloat(rec[4], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("benchreport: line %d: %v %v", i+2, err1, err2)
		}
		rows = append(rows, Row{Daemon: rec[0], Scenario: rec[1], Metric: rec[2], Run: run, Value: v, Censored: rec[5] == "1", Note: rec[6]})
	}
	return rows, nil
}

// Summary is a cell's figures over its runs.
type Summary struct {
	N                int
	Median, Min, Max float64
	Censored         int // runs whose value is a lower bound
}

// Summarize returns the summary of the values.
func Summarize(vals []float64, censored int) Summary {
	if len(vals) == 0 {
		return Summary{}
	}
	s := slices.Sorted(slices.Values(vals))
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: s[0], Max: s[n-1], Censored: censored}
}

// Cell returns the summary of one daemon's metric in one scenario.
func Cell(rows []Row, daemon, scenario, metric string) Summary {
	var vals []float64
	cens := 0
	for _, r := range rows {
		if r.Daemon == daemon && r.Scenario == scenario && r.Metric == metric {
			vals = append(vals, r.Value)
			if r.Censored {
				cens++
			}
		}
	}
	return Summarize(vals, cens)
}

func format(s Summary, dec int) string {
	if s.N == 0 {
		return "-"
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', dec, 64) }
	ge := ""
	if s.Censored == s.N {
		ge = "≥ "
	}
	out := ge + f(s.Median)
	if s.N > 1 {
		out += fmt.Sprintf(" [%s .. %s]", f(s.Min), f(s.Max))
	}
	if s.Censored > 0 && s.Censored < s.N {
		out += fmt.Sprintf(" (a lower bound in %d of %d runs)", s.Censored, s.N)
	} else if s.Censored > 0 {
		out += " (a lower bound: the window ended first)"
	}
	return out
}

// Markdown renders the report. charts are the PNG files' names, linked
// relative to the report.
func Markdown(meta Meta, rows []Row, charts []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks: carpd, ucarp and keepalived side by side\n\n")
	fmt.Fprintf(&b, "Written by `%s` on %s (%s mode, %d run(s) per cell", meta.Command, meta.Date, meta.Mode, meta.Runs)
	if meta.Elapsed != "" {
		fmt.Fprintf(&b, ", %s in all", meta.Elapsed)
	}
	fmt.Fprintf(&b, "). Each cell is the median [min .. max] over the runs; every run's figure is in [results.csv](results.csv).\n\n")
	fmt.Fprintf(&b, "Machine: %s, %d cores, Linux %s.\n\n", meta.CPU, meta.Cores, meta.Kernel)
	b.WriteString("| daemon | settings | version | client probes | bound |\n|---|---|---|---|---|\n")
	for _, d := range meta.Daemons {
		fmt.Fprintf(&b, "| %s | %s | %s | every %s | %s ms |\n", d.ID, d.Title, d.Version, d.Probe, strconv.FormatFloat(d.BoundMS, 'f', 2, 64))
	}
	b.WriteString("\n| scenario | unit |")
	for _, d := range meta.Daemons {
		fmt.Fprintf(&b, " %s |", d.ID)
	}
	b.WriteString("\n|---|---|")
	for range meta.Daemons {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, m := range Metrics {
		any := false
		line := fmt.Sprintf("| %s | %s |", m.Title, m.Unit)
		for _, d := range meta.Daemons {
			s := Cell(rows, d.ID, m.Scenario, m.ID)
			if s.N > 0 {
				any = true
			}
			line += " " + format(s, m.Decimals) + " |"
		}
		if any {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\n")
	microMarkdown(&b, meta)
	if len(meta.Settings) > 0 {
		b.WriteString("## How it was measured\n\n")
		for _, s := range meta.Settings {
			fmt.Fprintf(&b, "- %s\n", s)
		}
		b.WriteString("\n")
	}
	for _, n := range meta.Notes {
		b.WriteString(n + "\n\n")
	}
	if len(charts) > 0 {
		b.WriteString("## Charts\n\n")
		for _, c := range charts {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
		}
	}
	b.WriteString("Raw figures: [results.csv](results.csv) (one line per run and figure), [jitter.csv](jitter.csv) (the lateness percentiles, runs pooled), [meta.json](meta.json).\n")
	return b.String()
}

// Render reads the raw figures the benchmark wrote into dir (meta.json,
// results.csv, jitter.csv, and micro.txt when present: the Go
// micro-benchmarks' output) and writes the charts and BENCHMARKS.md
// beside them.
func Render(dir string) error {
	var meta Meta
	mj, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(mj, &meta); err != nil {
		return fmt.Errorf("benchreport: %s: %v", filepath.Join(dir, "meta.json"), err)
	}
	rows, err := readFile(filepath.Join(dir, "results.csv"), ReadCSV)
	if err != nil {
		return err
	}
	qs, err := readFile(filepath.Join(dir, "jitter.csv"), ReadQuantiles)
	if err != nil {
		return err
	}
	if micro, err := os.Open(filepath.Join(dir, "micro.txt")); err == nil {
		meta.Micro, err = ParseMicro(micro)
		micro.Close()
		if err != nil {
			return fmt.Errorf("benchreport: %s: %v", filepath.Join(dir, "micro.txt"), err)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	charts, err := Charts(dir, meta, rows, qs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "BENCHMARKS.md"), []byte(Markdown(meta, rows, charts)), 0o644)
}

// readFile opens path and reads it with read, naming the file in an error.
func readFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return v, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}

var quantileHeader = []string{"daemon", "condition", "percentile", "late_ms"}

// ReadQuantiles reads what writeQuantiles wrote (jitter.csv).
func ReadQuantiles(r io.Reader) ([]Quantile, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || !slices.Equal(recs[0], quantileHeader) {
		return nil, fmt.Errorf("benchreport: the CSV header is not %v", quantileHeader)
	}
	var qs []Quantile
	for i, rec := range recs[1:] {
		p, err1 := strconv.ParseFloat(rec[2], 64)
		v, err2 := strconv.ParseFloat(rec[3], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("benchreport: line %d: %v %v", i+2, err1, err2)
		}
		qs = append(qs, Quantile{Daemon: rec[0], Condition: rec[1], P: p, LateMS: v})
	}
	return qs, nil
}
