#!/usr/bin/env bash
# The wake-phase tracer (e2e/phases_bench_test.go, BenchmarkIdleWakePhases):
# where an idle master's wake goes, phase by phase (the call it slept in,
# the user space before the next call, each system call), for carpd,
# keepalived and wakeloop (a Go process that only wakes on carpd's timer),
# traced with the kernel's tracepoints.
#
# It is a command of its own, not part of scripts/test.sh, because it
# changes the host's kernel settings: it mounts tracefs on
# /sys/kernel/tracing if it is not mounted, and sets its events, filters
# and buffer for the run (put back at the end; the mount stays). Needs
# root and keepalived (scripts/setup.sh).
#
#   sudo scripts/trace-wake.sh           5 runs, 20 s traced per daemon (a few minutes)
#   sudo scripts/trace-wake.sh --quick   1 run, 10 s traced per daemon (CI)
#
# CARPD_PHASES_WINDOW and CARPD_PHASES_DAEMONS override the settings (see
# the test file); RUNS the number of runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/trace-wake.sh: needs root (tracefs, network namespaces): sudo scripts/trace-wake.sh" >&2
	exit 2
fi
runs=${RUNS:-5}
window=${CARPD_PHASES_WINDOW:-20s}
case "${1:-}" in
"") ;;
--quick)
	runs=${RUNS:-1}
	window=${CARPD_PHASES_WINDOW:-10s}
	;;
*)
	echo "usage: $0 [--quick]" >&2
	exit 2
	;;
esac
scripts/setup.sh
echo "== idle wake phases: $runs run(s), $window traced per daemon"
CARPD_PHASES_WINDOW=$window go test ./e2e -count=1 -run '^$' -bench 'BenchmarkIdleWakePhases$' \
	-benchtime="${runs}x" -timeout 30m
