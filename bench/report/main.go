// Command report writes the comparison benchmark's report (BENCHMARKS.md
// and its PNG charts) from the raw figures the benchmark left in a
// directory: results.csv, jitter.csv, meta.json and micro.txt (see
// scripts/bench.sh, which runs it). It is a module of its own so that
// carpd's module does not carry gonum.org/v1/plot and golang.org/x/perf.
//
//	cd bench/report && go run . DIR
package main

import (
	"fmt"
	"os"

	"github.com/carpd/carpd/bench/report/benchreport"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" || os.Args[1][0] == '-' {
		fmt.Fprintln(os.Stderr, "usage: report DIR  (DIR holds results.csv, jitter.csv, meta.json, micro.txt)")
		os.Exit(2)
	}
	if err := benchreport.Render(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}
