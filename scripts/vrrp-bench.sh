#!/usr/bin/env bash
# The VRRPv3 benchmarks (issue 12): carpd's pair (carpver 3, vrrpprio 155 /
# 55, vrrpinterval 1 = 10 ms) beside Debian's keepalived (vrrp_version 3,
# advert_int 0.01, priority 155 / 55) on the same three-namespace topology,
# the client probing the VIP every 1 ms (e2e/vrrp_bench_test.go):
#
#   BenchmarkVRRPLinkCut      the master's switch port cut at a random phase
#                             of its advert interval (one draw per run, the
#                             same for both daemons): the client's outage
#   BenchmarkVRRPPlannedStop  SIGTERM to the master: the client's lost probes
#   BenchmarkVRRPIdleCPU      the master's CPU with one vrid at 10 ms
#   BenchmarkVRRPSteady       each daemon's pair at 10 ms for 10 minutes with a
#                             CPU burner busy in another namespace:
#                             transitions (carpd's target: 0)
#   BenchmarkVRRPWakeups      the master's context switches per advert, per
#                             thread, and its CPU (schedstat)
#
# Each prints median/min/max over the runs, every run's figures in the log,
# and a summary at the end. Needs root and keepalived (scripts/setup.sh).
#
#   sudo scripts/vrrp-bench.sh            10 runs each, 10 minutes steady each (~45 min)
#   sudo scripts/vrrp-bench.sh --quick    1 run each (3 of the idle CPU), 20 s steady (~3 min; for CI)
#
# RUNS, CPU_RUNS (the idle CPU's runs), CARPD_VRRP_STEADY, CARPD_VRRP_CPU_WINDOW and CARPD_VRRP_BURN
# override the settings; BENCH selects the benchmarks (a -bench regexp).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
cpu_runs=${CPU_RUNS:-$runs}
steady=${CARPD_VRRP_STEADY:-10m}
timeout=60m
if [ "${1:-}" = "--quick" ]; then
	runs=${RUNS:-1}
	steady=${CARPD_VRRP_STEADY:-20s}
	# The idle CPU is judged on its median: one 10 s window moves by
	# about half a percent of a core between runs (0.40 to 0.90 % in 6
	# quiet runs here, 1.20 % once in CI), so the short form takes 3.
	cpu_runs=${CPU_RUNS:-3}
	timeout=10m
elif [ -n "${1:-}" ]; then
	echo "usage: $0 [--quick]" >&2
	exit 2
fi
out=$(mktemp /tmp/vrrp-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
echo "== VRRP benchmarks: $runs run(s) each ($cpu_runs of the idle CPU), steady state $steady"
status=0
bench() { # bench REGEXP RUNS
	CARPD_VRRP_STEADY=$steady CARPD_VRRP_CPU_WINDOW=${CARPD_VRRP_CPU_WINDOW:-10s} CARPD_VRRP_BURN=${CARPD_VRRP_BURN:-1} \
		go test ./e2e -count=1 -run '^$' -bench "$1" -benchtime="$2x" -timeout "$timeout" 2>&1 |
		tee -a "$out" || status=$?
}
if [ -n "${BENCH:-}" ]; then
	bench "$BENCH" "$runs"
else
	bench 'VRRP(LinkCut|PlannedStop|Steady|Wakeups)$' "$runs"
	bench 'VRRPIdleCPU$' "$cpu_runs"
fi
# The summary: a figure per line, median [min .. max] over the runs, carpd's
# beside keepalived's.
echo
echo "== summary: median [min .. max] over $runs run(s); ms, % of a core, counts; bound 3 x 10 + 7.85 = 37.85 ms"
awk '
/^BenchmarkVRRP[A-Za-z]*-[0-9]+[ \t]/ {
	bench = $1; sub(/-[0-9]+$/, "", bench); sub(/^BenchmarkVRRP/, "", bench)
	for (i = 3; i + 1 <= NF; i += 2) {
		m = $(i+1); v = $i
		if (m == "ns/op") continue
		n = split(m, p, "-")
		d = p[1]
		if (d != "carpd" && d != "keepalived") { other[bench " " m] = v; continue }
		unit = ""; stat = ""
		if (p[n] == "median" || p[n] == "min" || p[n] == "max") { stat = p[n]; last = n - 1 }
		else if (p[n-1] == "median" || p[n-1] == "min" || p[n-1] == "max") { stat = p[n-1]; unit = p[n]; last = n - 2 }
		else { stat = "value"; last = n }
		fig = p[2]; for (k = 3; k <= last; k++) fig = fig "-" p[k]
		if (unit != "") fig = fig " (" unit ")"
		key = bench SUBSEP fig
		if (!(key in seen)) { seen[key] = 1; order[++count] = key }
		val[key, d, stat] = v
	}
}
function cell(key, d) {
	if ((key, d, "value") in val) return val[key, d, "value"]
	if (!((key, d, "median") in val)) return "-"
	return sprintf("%s [%s .. %s]", val[key, d, "median"], val[key, d, "min"], val[key, d, "max"])
}
END {
	printf "%-13s %-24s %-28s %s\n", "benchmark", "figure", "carpd", "keepalived"
	for (i = 1; i <= count; i++) {
		split(order[i], kk, SUBSEP)
		printf "%-13s %-24s %-28s %s\n", kk[1], kk[2], cell(order[i], "carpd"), cell(order[i], "keepalived")
	}
	for (o in other) printf "%-13s %s\n", o, other[o]
}' "$out"
if grep -q -e '^--- FAIL' -e '^FAIL' "$out"; then
	status=1
fi
exit "$status"
