#!/usr/bin/env bash
# The comparison benchmark (issue 13): carpd (CARP), ucarp, keepalived
# VRRPv2 at 1 s, carpd VRRPv3 at 10 ms and keepalived VRRPv3 at 10 ms, side
# by side on the same namespace topology (e2e/matrix_bench_test.go): the
# master's switch port cut, the daemon SIGKILLed, a planned stop, a
# failback; idle CPU and RSS with 1 and 255 vhids; the advert send lateness
# with 255 vhids, idle and with the other core busy. It installs the peers
# (scripts/setup.sh), prints a progress line per run of each cell (the runs
# of a scenario interleaved: run 1 of every daemon, then run 2 ...), and
# writes the raw figures: results.csv (every run's figures), jitter.csv,
# meta.json and micro.txt (the Go micro-benchmarks' output); then the
# report drawn from them, BENCHMARKS.md and PNG charts, by the module
# bench/report (a module of its own: carpd's does not carry its plotting
# libraries). All in bench/ (full) or a temporary directory (--quick).
#
#   sudo scripts/bench.sh            5 runs per cell (about an hour on 2 cores)
#   sudo scripts/bench.sh --quick    1 run per cell, short windows (about 8 min; CI)
#   sudo scripts/bench.sh --out DIR  the report in DIR
#
# CARPD_BENCH_RUNS, CARPD_BENCH_IDLE_RUNS, CARPD_BENCH_IDLE_WINDOW,
# CARPD_BENCH_SCALE_WINDOW, CARPD_BENCH_SCENARIOS, CARPD_BENCH_DAEMONS and
# CARPD_BENCH_SEED override the settings (see the test file).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
out=
cmd="scripts/bench.sh $*"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) mode=quick ;;
	--out)
		out=${2:?--out needs a directory}
		shift
		;;
	*)
		echo "usage: $0 [--quick] [--out DIR]" >&2
		exit 2
		;;
	esac
	shift
done
if [ -z "$out" ]; then
	if [ "$mode" = full ]; then
		out=$PWD/bench
	else
		out=$(mktemp -d /tmp/carpd-bench-quick.XXXXXX)
	fi
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The overrides in effect go into the command line the report shows.
envs=
for v in CARPD_BENCH_RUNS CARPD_BENCH_IDLE_RUNS CARPD_BENCH_IDLE_WINDOW CARPD_BENCH_SCALE_WINDOW \
	CARPD_BENCH_SCENARIOS CARPD_BENCH_DAEMONS CARPD_BENCH_SEED; do
	if [ -n "${!v:-}" ]; then
		envs="$envs$v=${!v} "
	fi
done
scripts/setup.sh
timeout=4h
[ "$mode" = quick ] && timeout=40m
status=0
# The micro-benchmarks first (parse + verify, a state machine's step, a
# daemon input handled), into micro.txt; the report gets their table.
micro_args=(-count 5)
[ "$mode" = quick ] && micro_args=(-count 1 -benchtime 100ms)
micro="go test -run ^\$ -bench ${micro_bench:=ParseVerify|ParseInto|Step|HandleAdvert|HandleTick} -benchmem ${micro_args[*]} ./internal/carp ./internal/vrrp ./internal/daemon"
echo "bench: micro-benchmarks: $micro"
if ! go test -run '^$' -bench "$micro_bench" -benchmem "${micro_args[@]}" \
	./internal/carp ./internal/vrrp ./internal/daemon >"$out/micro.txt"; then
	echo "bench: the micro-benchmarks failed:" >&2
	cat "$out/micro.txt" >&2
	exit 1
fi
# At nice 0, whatever this script's own: the daemons the test starts
# inherit its nice value, and every one must start at 0 (carpd then
# renices itself to -10, as it does in production; keepalived and ucarp
# stay at 0, their default; the test checks it).
CARPD_BENCH_MICRO_COMMAND="$micro" \
CARPD_BENCHMARKS=$mode CARPD_BENCH_OUT=$out CARPD_BENCH_COMMAND="${envs}${cmd% }" CI=1 \
	nice -n "$((-$(nice)))" go test ./e2e -count=1 -run '^TestBenchmarkMatrix$' -v -timeout "$timeout" 2>&1 |
	grep --line-buffered -v -e '^=== RUN' -e '^=== PAUSE' -e '^=== CONT' || status=$?
# The report from the figures, even after a failed run (those it has).
if [ -s "$out/meta.json" ]; then
	echo "bench: the report: (cd bench/report && go run . $out)"
	(cd bench/report && go run . "$out") || status=$?
fi
for f in BENCHMARKS.md results.csv outage.png micro.txt; do
	if [ ! -s "$out/$f" ]; then
		echo "bench: $out/$f is missing or empty" >&2
		status=1
	fi
done
echo "bench: the report is $out/BENCHMARKS.md"
exit "$status"
