package e2e

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// The comparison benchmark's raw figures, which it writes into its output
// directory; the report (BENCHMARKS.md and the charts) is drawn from them
// afterwards by the module bench/report (scripts/bench.sh runs it), so
// that carpd's module does not carry the plotting libraries. The column
// and field names are the ones bench/report/benchreport reads.

// mxRow is one figure of one run of one daemon in one scenario: a line of
// results.csv.
type mxRow struct {
	Daemon, Scenario, Metric string
	Run                      int
	Value                    float64
	Censored                 bool // the value is a lower bound
	Note                     string
}

// mxQuantile is one point of a daemon's advert lateness distribution, all
// runs pooled: a line of jitter.csv.
type mxQuantile struct {
	Daemon, Condition string
	P, LateMS         float64
}

// mxMetaDaemon and mxMeta are meta.json.
type mxMetaDaemon struct {
	ID, Title string
	Version   string
	Probe     string
	BoundMS   float64
}

type mxMeta struct {
	Date, Command, Mode string
	Runs                int
	CPU                 string
	Cores               int
	Kernel              string
	Daemons             []mxMetaDaemon
	Settings, Notes     []string
	Elapsed             string
	MicroCommand        string `json:",omitempty"`
}

// mxWriteRaw writes results.csv, jitter.csv and meta.json into dir.
func mxWriteRaw(dir string, meta mxMeta, rows []mxRow, qs []mxQuantile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	results := [][]string{{"daemon", "scenario", "metric", "run", "value", "censored", "note"}}
	for _, r := range rows {
		censored := "0"
		if r.Censored {
			censored = "1"
		}
		results = append(results, []string{r.Daemon, r.Scenario, r.Metric, strconv.Itoa(r.Run),
			strconv.FormatFloat(r.Value, 'f', -1, 64), censored, r.Note})
	}
	if err := mxWriteCSV(filepath.Join(dir, "results.csv"), results); err != nil {
		return err
	}
	jitter := [][]string{{"daemon", "condition", "percentile", "late_ms"}}
	for _, q := range qs {
		jitter = append(jitter, []string{q.Daemon, q.Condition, strconv.FormatFloat(q.P, 'f', -1, 64), strconv.FormatFloat(q.LateMS, 'f', 4, 64)})
	}
	if err := mxWriteCSV(filepath.Join(dir, "jitter.csv"), jitter); err != nil {
		return err
	}
	mj, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "meta.json"), append(mj, '\n'), 0o644)
}

func mxWriteCSV(path string, recs [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	if err := cw.WriteAll(recs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mxPercentiles returns the quantiles of vals (any order) at 0, 1, ..., 100
// and 99.9, nearest rank.
func mxPercentiles(daemon, condition string, vals []float64) []mxQuantile {
	if len(vals) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(vals))
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var qs []mxQuantile
	for p := 0; p <= 100; p++ {
		qs = append(qs, mxQuantile{daemon, condition, float64(p), at(float64(p))})
		if p == 99 {
			qs = append(qs, mxQuantile{daemon, condition, 99.9, at(99.9)})
		}
	}
	return qs
}

func TestMXPercentiles(t *testing.T) {
	qs := mxPercentiles("d", "idle", []float64{3, 1, 2, 4})
	if len(qs) != 102 || qs[0].LateMS != 1 || qs[len(qs)-1].LateMS != 4 || qs[50].LateMS != 2 {
		t.Errorf("mxPercentiles = %v", qs)
	}
}
