#!/usr/bin/env bash
# Runs every test: static checks, unit tests, fuzz seeds, and the
# network-namespace tests against the real carpd binary and real peers.
# Needs root (network namespaces); installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh: needs root for network namespaces: sudo scripts/test.sh" >&2
	exit 2
fi
# With CI set, a test whose prerequisite is missing (root, tshark, ucarp,
# keepalived, tracefs, the ucarp example scripts...) fails rather than
# skipping (internal/lab/labtest.Missing): setup.sh installs them all, so
# under the test command a skip would hide a test that never ran.
export CI=${CI:-true}
scripts/setup.sh
echo "== gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== go test"
# internal/demo's walkthrough test runs the real binary named here.
go build -o bin/carpd ./cmd/carpd
export CARPD_BIN="$PWD/bin/carpd"
# The race detector over the unit tests (the namespace tests run once,
# without it, below).
go test -race -count=1 -timeout 10m $(go list ./... | grep -v -e /e2e -e /internal/demo)
go test -count=1 -p 1 -timeout 40m ./...
echo "== fuzz (short)"
# Every fuzz target for 10 s (their seed corpora already ran above as unit
# tests); the 10-minute runs are `scripts/fuzz.sh` on its own.
scripts/fuzz.sh 10s
echo "== VRRP benchmarks (short form: 1 run each, 20 s steady state without the CPU burner)"
# The full runs are `scripts/vrrp-bench.sh` on its own (about 45 minutes);
# this checks that they still work end to end against keepalived.
CARPD_VRRP_BURN=0 scripts/vrrp-bench.sh --quick
echo "== idle wake phases (short form: 1 run, 10 s traced per daemon)"
# The full run is 5 runs of 20 s (see e2e/phases_bench_test.go).
CARPD_PHASES_WINDOW=10s go test ./e2e -count=1 -run '^$' -bench 'BenchmarkIdleWakePhases$' -benchtime=1x -timeout 10m
echo "== packaging (man pages, Debian package, systemd unit)"
scripts/package-test.sh
echo "== the package under a real systemd (systemd-nspawn containers booting systemd as PID 1)"
scripts/systemd-test.sh
