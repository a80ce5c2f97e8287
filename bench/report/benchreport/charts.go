package benchreport

import (
	"fmt"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// outageScenarios are the outage chart's groups, in order.
var outageScenarios = []struct{ id, label string }{
	{"portcut", "port cut"},
	{"sigkill", "SIGKILL"},
	{"sigterm", "SIGTERM"},
	{"failback", "failback"},
}

// logFloor is where the outage chart's log axis starts: an outage of 0
// (no probe lost) is drawn there.
const logFloor = 0.1

// whiskers are points with asymmetric error bars, for plotter.YErrorBars.
type whiskers struct {
	xys    plotter.XYs
	lo, hi []float64
}

func (w whiskers) Len() int                        { return len(w.xys) }
func (w whiskers) XY(i int) (float64, float64)     { return w.xys[i].X, w.xys[i].Y }
func (w whiskers) YError(i int) (float64, float64) { return w.lo[i], w.hi[i] }
func floorLog(v float64) float64                   { return math.Max(v, logFloor) }
func (w *whiskers) add(x float64, s Summary)       { w.addXY(x, s.Median, s.Min, s.Max) }
func (w *whiskers) addXY(x, med, mn, mx float64) {
	w.append(x, floorLog(med), floorLog(mn), floorLog(mx))
}
func (w *whiskers) append(x, med, mn, mx float64) {
	w.xys = append(w.xys, plotter.XY{X: x, Y: med})
	w.lo = append(w.lo, med-mn)
	w.hi = append(w.hi, mx-med)
}

// Charts draws the outage chart and the jitter charts that have data into
// dir and returns their file names.
func Charts(dir string, meta Meta, rows []Row, qs []Quantile) ([]string, error) {
	var names []string
	if ok, err := outageChart(filepath.Join(dir, "outage.png"), meta, rows); err != nil {
		return nil, err
	} else if ok {
		names = append(names, "outage.png")
	}
	for _, cond := range []string{"idle", "busy"} {
		name := "jitter-" + cond + ".png"
		if ok, err := jitterChart(filepath.Join(dir, name), meta, qs, cond); err != nil {
			return nil, err
		} else if ok {
			names = append(names, name)
		}
	}
	return names, nil
}

func outageChart(path string, meta Meta, rows []Row) (bool, error) {
	p := plot.New()
	p.Title.Text = "Client outage per scenario: median, whiskers min .. max"
	p.Y.Label.Text = fmt.Sprintf("outage, ms (log; 0 drawn at %g)", logFloor)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	var labels []string
	for _, s := range outageScenarios {
		labels = append(labels, s.label)
	}
	p.NominalX(labels...)
	n := len(meta.Daemons)
	any := false
	for i, d := range meta.Daemons {
		var w whiskers
		for j, s := range outageScenarios {
			c := Cell(rows, d.ID, s.id, "outage_ms")
			if c.N == 0 {
				continue
			}
			x := float64(j) + (float64(i)-float64(n-1)/2)*0.14
			w.add(x, c)
		}
		if w.Len() == 0 {
			continue
		}
		any = true
		sc, err := plotter.NewScatter(w.xys)
		if err != nil {
			return false, err
		}
		sc.GlyphStyle.Color = plotutil.Color(i)
		sc.GlyphStyle.Shape = plotutil.Shape(i)
		sc.GlyphStyle.Radius = vg.Points(3)
		eb, err := plotter.NewYErrorBars(w)
		if err != nil {
			return false, err
		}
		eb.LineStyle.Color = plotutil.Color(i)
		eb.LineStyle.Width = vg.Points(1)
		p.Add(sc, eb)
		p.Legend.Add(d.ID, sc)
	}
	if !any {
		return false, nil
	}
	p.Y.Min = logFloor / 2
	if p.Y.Max < 10 {
		p.Y.Max = 10
	}
	p.Y.Max *= 2
	return true, p.Save(22*vg.Centimeter, 13*vg.Centimeter, path)
}

func jitterChart(path string, meta Meta, qs []Quantile, cond string) (bool, error) {
	p := plot.New()
	what := "255 vhids idle"
	if cond == "busy" {
		what = "255 vhids, the other core busy"
	}
	p.Title.Text = "Advert send lateness (gap minus the interval), " + what
	p.X.Label.Text = "percentile of the gaps (all vhids and runs pooled)"
	p.Y.Label.Text = "lateness, ms"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	any := false
	for i, d := range meta.Daemons {
		var xys plotter.XYs
		for _, q := range qs {
			if q.Daemon == d.ID && q.Condition == cond {
				xys = append(xys, plotter.XY{X: q.P, Y: q.LateMS})
			}
		}
		if len(xys) == 0 {
			continue
		}
		any = true
		l, err := plotter.NewLine(xys)
		if err != nil {
			return false, err
		}
		l.LineStyle.Color = plotutil.Color(i)
		l.LineStyle.Width = vg.Points(1.5)
		l.LineStyle.Dashes = plotutil.Dashes(i)
		p.Add(l)
		p.Legend.Add(d.ID, l)
	}
	if !any {
		return false, nil
	}
	p.Legend.ThumbnailWidth = vg.Points(30)
	return true, p.Save(22*vg.Centimeter, 13*vg.Centimeter, path)
}
