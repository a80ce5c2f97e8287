#!/usr/bin/env bash
# make check: the checks to run before a commit, without root, in a few
# minutes: gofmt, go vet, staticcheck, and the unit and simulation tests of
# every package with the race detector, once (e2e/, e2e/systemd and
# internal/demo excepted: they are the namespace and systemd tests against
# the real binary and package, which sudo scripts/test.sh runs after this). The modules
# of their own, the benchmark report (bench/report) and the etcd member of
# the tests' clusters (e2e/etcdlab), are vetted too.
#
# As a normal user, a test that needs root (a network namespace, chown,
# nice) skips with a message, and the summary at the end lists the skipped
# tests with their reason. CI is unset then: with CI set such a test fails
# instead (internal/lab/labtest.Missing), and no user but root can run it.
# As root (scripts/test.sh calls this) they run, CI as given.
#
#   make check                     (or scripts/check.sh)
#   CHECK_TEST_ARGS=-short make check   extra go test flags
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2
gotestsum=gotest.tools/gotestsum@v1.13.0
if [ "$(id -u)" -ne 0 ]; then
	echo "check: not root: the tests that need root skip, listed at the end (sudo scripts/test.sh runs them)${CI:+; CI unset for this run}"
	unset CI
fi
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
echo "== go.mod"
# The benchmark report's plotting and statistics libraries belong to its
# own module (bench/report), not to carpd's. The packages are checked, not
# the module graph: grpc (under GoBGP) requires gonum for its own tests.
if heavy=$(go list -deps -test ./... | grep -e '^gonum.org/' -e '^golang.org/x/perf/'); then
	echo "carpd's packages use what only bench/report should: $heavy" >&2
	exit 1
fi
echo "== go vet"
go vet ./...
(cd bench/report && go vet ./...)
(cd e2e/etcdlab && go vet ./...)
echo "== staticcheck"
go run "$staticcheck" ./...
(cd bench/report && go run "$staticcheck" ./...)
(cd e2e/etcdlab && go run "$staticcheck" ./...)
echo "== unit and simulation tests (-race)"
# The etcd member of the real-cluster tests (internal/etcd,
# internal/lab/etcdlab), built once here rather than by each test binary
# (etcdlab.Binary): on a clean clone two of them would compile etcd at the
# same time. scripts/test.sh builds it before and passes it on.
if [ "$(id -u)" -eq 0 ] && [ -z "${CARPD_ETCDLAB_BIN:-}" ]; then
	(cd e2e/etcdlab && go build -o ../../bin/etcdlab .)
	export CARPD_ETCDLAB_BIN="$PWD/bin/etcdlab"
fi
# shellcheck disable=SC2046,SC2086
go run "$gotestsum" --format pkgname --format-hide-empty-pkg -- \
	-race -count=1 -timeout 15m ${CHECK_TEST_ARGS:-} \
	$(go list ./... | grep -v -e '/e2e$' -e '/e2e/' -e '/internal/demo$')
(cd bench/report && go test -count=1 ./...)
echo "check: ok"
