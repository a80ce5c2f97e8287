#!/usr/bin/env bash
# The test command: every test, once. Needs root (network namespaces);
# installs what the tests need first (scripts/setup.sh). In order:
#
#   scripts/check.sh        gofmt, go vet, staticcheck, and the unit and
#                           simulation tests with -race, once; as root,
#                           their tests that need root run there too
#   the namespace tests     e2e/ and internal/demo against the real carpd
#                           binary and real peers (ucarp, keepalived), one
#                           package at a time, without -race; then the 15
#                           slowest of them, with their times, and when
#                           some failed, the first line of each of their
#                           messages (scripts/failures), last
#   scripts/package-test.sh the man pages, the Debian package, the unit
#   scripts/systemd-test.sh the package under a real systemd (e2e/systemd)
#
# and at the end the wall time of each step. At most 20 minutes on 2 cores
# (the namespace tests about 13, with the tests whose bounds are seconds 4
# at a time: e2e/parallel_test.go; the package's two tests about 2, its
# two builds made while check runs). It
# changes no kernel setting outside the network namespaces its tests
# create. The benchmarks (scripts/bench.sh, scripts/vrrp-bench.sh,
# scripts/flood.sh), the wake-phase tracer (scripts/trace-wake.sh, which
# mounts tracefs and sets tracing on the host) and long fuzzing
# (scripts/fuzz.sh) are commands of their own; CI (.ci/run) runs their
# short forms after this. `make check` is the
# first step alone, without root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh: needs root for network namespaces: sudo scripts/test.sh (make check runs the tests that need no root)" >&2
	exit 2
fi
export PATH="$PATH:/usr/local/go/bin"
# With CI set, a test whose prerequisite is missing (root, tshark, ucarp,
# keepalived, the ucarp example scripts...) fails rather than skipping
# (internal/lab/labtest.Missing): setup.sh installs them all, so under the
# test command a skip would hide a test that never ran.
export CI=${CI:-true}
began=$SECONDS
# The wall time of each step, printed at the end.
steps=()
step() { steps+=("$(printf '%-16s %4d s' "$1" $((SECONDS - mark)))"); mark=$SECONDS; }
mark=$SECONDS
scripts/setup.sh
step setup
# The etcd member of the real-cluster tests, built once for all of them
# (check's internal/etcd and internal/lab/etcdlab, e2e, internal/demo)
# rather than by each test binary (etcdlab.Binary).
(cd e2e/etcdlab && go build -o ../../bin/etcdlab .)
export CARPD_ETCDLAB_BIN="$PWD/bin/etcdlab"
# The Debian packages of the packaging step, built while check runs (its
# tests leave a core idle at times; the packaging step then only checks
# them): the one a user builds, then the newer version the systemd test
# upgrades to, compressed with zstd (dpkg-deb's xz takes most of a
# package's build; only the package checked is the one a user builds).
debs=$(mktemp -d /tmp/carpd-test-debs.XXXXXX)
events=$(mktemp /tmp/carpd-test-events.XXXXXX)
trap 'rm -rf "$events" "$debs"' EXIT
(
	set -euo pipefail
	make -s deb | tail -n 1 >"$debs/deb"
	DPKG_DEB_COMPRESSOR_TYPE=zstd DEB_VERSION="$(dpkg-deb --field "$(cat "$debs/deb")" Version)+newer1" \
		make -s deb | tail -n 1 >"$debs/newer"
) >"$debs/log" 2>&1 &
debs_pid=$!
status=0
scripts/check.sh || status=$?
if [ "$status" -ne 0 ]; then
	kill "$debs_pid" 2>/dev/null || true
	wait "$debs_pid" 2>/dev/null || true
	exit "$status"
fi
# Done before the namespace tests, whose timing a build beside them
# would disturb.
if ! wait "$debs_pid"; then
	cat "$debs/log" >&2
	echo "test: building the Debian packages failed (above)" >&2
	exit 1
fi
step check
echo "== namespace tests: e2e, internal/demo"
# internal/demo's walkthrough test runs the binary CARPD_BIN names (the e2e
# tests build their own).
go build -o bin/carpd ./cmd/carpd
export CARPD_BIN="$PWD/bin/carpd"
gotestsum=gotest.tools/gotestsum@v1.13.0
go run "$gotestsum" --format testname --jsonfile "$events" -- \
	-count=1 -p 1 -parallel 4 -timeout 40m ./e2e ./internal/demo || status=$?
echo "== the slowest namespace tests"
go run "$gotestsum" tool slowest --jsonfile "$events" --threshold 10s | head -15 || true
step "namespace tests"
if [ "$status" -ne 0 ]; then
	# Last, as the end of a long output is what a CI summary keeps: the
	# first line of each message of the failed tests, without the logs
	# they dump.
	echo "== the failed namespace tests: the first line of each message"
	go run ./scripts/failures "$events" || true
	exit "$status"
fi
echo "== packaging (man pages, Debian package, systemd unit)"
deb=$(cat "$debs/deb")
newer=$(cat "$debs/newer")
PACKAGE_DEB=$deb scripts/package-test.sh
step packaging
echo "== the package under a real systemd (systemd-nspawn containers booting systemd as PID 1)"
SYSTEMD_TEST_DEB=$deb SYSTEMD_TEST_DEB_NEWER=$newer scripts/systemd-test.sh
step systemd
echo "== the time of each step"
printf '%s\n' "${steps[@]}"
echo "test: ok in $(((SECONDS - began) / 60)) min $(((SECONDS - began) % 60)) s"
