#!/usr/bin/env bash
# Runs every fuzz target of the repository, one at a time, niced, each for
# the given -fuzztime (default 10m; anything go test's -fuzztime takes:
# 10s, 10m, 100000x). Targets are discovered with `go test -list '^Fuzz'`
# in every package that has them. Prints a line per target (execs, new
# interesting inputs, corpus size) and fails if any target finds a
# crasher, naming the file go test wrote it to (testdata/fuzz/<Target>/ in
# the package: keep it there, and it runs as a regression test with
# `go test`). It also fails when a package with fuzz targets does not
# build, and when the number of targets run differs from the number of
# `func Fuzz` declarations in the repository's test files (those matching
# FUZZ_MATCH when it is set).
#
#   scripts/fuzz.sh [FUZZTIME]
#
# FUZZ_PARALLEL sets the number of fuzzing workers per target (default 1:
# the machine may be shared; go test's default is GOMAXPROCS). FUZZ_MATCH
# runs only the targets whose name matches the given regexp.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
fuzztime=${1:-10m}
parallel=${FUZZ_PARALLEL:-1}
match=${FUZZ_MATCH:-.}

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# Every `func Fuzz` declared in a test file of the repository (whose name
# matches FUZZ_MATCH): the number of targets found below, and run, must be
# this number, so a target is never dropped without failing.
declared=0
while read -r name; do
	[[ $name =~ $match ]] && declared=$((declared + 1))
done < <(find . -name '*_test.go' -not -path '*/testdata/*' -not -path './.git/*' -exec sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' {} +)

# Packages with a func Fuzz in a test file, then the targets go test lists.
# A package that does not build (go test -list fails) is a failure, with
# its compiler output: its targets would otherwise be silently skipped.
targets=()
broken=()
while read -r pkg dir; do
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	list="$logdir/list.out"
	if ! go test -list '^Fuzz' "$pkg" >"$list" 2>&1; then
		broken+=("$pkg")
		echo "fuzz: $pkg does not build; its fuzz targets cannot run:" >&2
		sed 's/^/    /' "$list" | tail -40 >&2
		continue
	fi
	while read -r name; do
		case $name in Fuzz*) [[ $name =~ $match ]] && targets+=("$pkg $dir $name") ;; esac
	done <"$list"
done < <(go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)
if [ ${#broken[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${#broken[@]} package(s) with fuzz targets do not build: ${broken[*]}" >&2
	exit 1
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
if [ ${#targets[@]} -ne "$declared" ]; then
	echo "fuzz: FAILED: go test lists ${#targets[@]} fuzz targets matching '$match' but the test files declare $declared (grep '^func Fuzz')" >&2
	exit 1
fi

failed=()
ran=0
for t in "${targets[@]}"; do
	read -r pkg dir name <<<"$t"
	log="$logdir/$name.log"
	corpus="$dir/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null || true)
	start=$(date +%s)
	status=0
	ran=$((ran + 1))
	nice -n 19 go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg" >"$log" 2>&1 || status=$?
	secs=$(($(date +%s) - start))
	# The last progress line: "fuzz: elapsed: 10s, execs: 123 (12/sec), new interesting: 4 (total: 20)".
	progress=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$progress")
	interesting=$(sed -nE 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/\1 new, corpus \2/p' <<<"$progress")
	crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | head -1)
	if [ -z "$crasher" ]; then
		crasher=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null || true) | head -1)
		[ -z "$crasher" ] || crasher="testdata/fuzz/$name/$crasher"
	fi
	# Go 1.26's fuzzing coordinator can fail a target with a bare
	# "context deadline exceeded" when -fuzztime runs out while a worker
	# is mid-call (golang/go#75804, fixed in Go 1.27): no input failed.
	# It is reported, not counted as a failure; anything else is one.
	if [ "$status" -ne 0 ] && [ -z "$crasher" ] &&
		[ "$(grep -cvE '^(fuzz: elapsed: |--- FAIL: '"$name"' \(|    context deadline exceeded$|FAIL|exit status 1$|warning: starting with empty corpus$)' "$log")" -eq 0 ] &&
		grep -q '^    context deadline exceeded$' "$log"; then
		printf 'fuzz: %-22s %-45s ok   %4ss  execs %s, interesting %s (no crasher; Go'"'"'s end-of-fuzztime race, golang/go#75804)\n' "$name" "$pkg" "$secs" "${execs:-?}" "${interesting:-?}"
		continue
	fi
	if [ "$status" -eq 0 ]; then
		printf 'fuzz: %-22s %-45s ok   %4ss  execs %s, interesting %s\n' "$name" "$pkg" "$secs" "${execs:-?}" "${interesting:-?}"
		continue
	fi
	failed+=("$name")
	printf 'fuzz: %-22s %-45s FAIL %4ss  execs %s, interesting %s\n' "$name" "$pkg" "$secs" "${execs:-?}" "${interesting:-?}"
	if [ -n "$crasher" ]; then
		echo "fuzz: $name: crasher kept in $dir/$crasher" >&2
		echo "fuzz: re-run with: go test -run '^$name/$(basename "$crasher")\$' $pkg" >&2
	fi
	sed 's/^/    /' "$log" | grep -v '^    fuzz: elapsed' | tail -40 >&2
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
if [ "$ran" -ne "$declared" ]; then
	echo "fuzz: FAILED: ran $ran fuzz targets, $declared declared" >&2
	exit 1
fi
echo "fuzz: $ran targets (all $declared declared), no crasher"
