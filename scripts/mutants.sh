#!/usr/bin/env bash
# Mutation testing: each file in scripts/mutants/ describes a mutant of
# carpd, a one-line change a real regression could make, and the tests
# that must catch it. For each, in a copy of the working tree (the files
# git tracks or would track, uncommitted changes included), this script
# applies the change, checks that the tree still builds, runs the tests
# and records the mutant caught (the tests fail) or SURVIVED (they pass).
# A surviving mutant is a missing test.
#
# Usage: scripts/mutants.sh [-l] [name...]   (-l lists the mutants)
#
# A mutant file has lines `key: value` (other lines, # comments, are ignored):
#   what:    the regression, in words
#   file:    the file to change
#   after:   optional: a text that occurs on exactly one line of the file;
#            the change is made after that line
#   match:   the text to replace, on the first line (after `after`)
#            that contains it; without `after`, exactly one line may
#            contain it
#   replace: what replaces it (the empty string deletes it)
#   test:    the arguments of `go test` that must fail on the mutant
#            (packages, -run); an e2e test gets CARPD_BIN built from
#            the mutant
# Texts are literal, not patterns. A mutant whose text is no longer found
# (the code moved), that does not change the file or that does not build
# is an error of this script, never skipped: fix the mutant file.
#
# Before the mutants, each distinct test line runs on the unchanged copy
# and must pass, so that "caught" means caught by the mutation. Mutants
# run one at a time (the namespace tests must not overlap). Needs root
# for the e2e tests among them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
# A test whose prerequisite is missing fails rather than skips
# (internal/lab/labtest): a skipped test would pass the baseline and let
# every mutant survive.
export CI=true
dir=${MUTANTS_DIR:-scripts/mutants} # another directory of mutants, to try new ones

list=false
if [ "${1:-}" = -l ]; then
	list=true
	shift
fi
if [ $# -gt 0 ]; then
	names=("$@")
else
	names=()
	for f in "$dir"/*.mutant; do
		names+=("$(basename "$f" .mutant)")
	done
fi

# field FILE KEY: the value of KEY in FILE ("" if absent).
field() { sed -n "s/^$2: \{0,1\}//p" "$1" | head -n 1; }

fail() {
	echo "scripts/mutants.sh: $*" >&2
	exit 1
}

for n in "${names[@]}"; do
	f="$dir/$n.mutant"
	[ -f "$f" ] || fail "no mutant $n ($f)"
	for k in what file match test; do
		[ -n "$(field "$f" "$k")" ] || fail "mutant $n: no '$k:' line in $f"
	done
	grep -q '^replace:' "$f" || fail "mutant $n: no 'replace:' line in $f"
	if $list; then
		printf '%-24s %s\n' "$n" "$(field "$f" what)"
	fi
done
$list && exit 0

start=$SECONDS
tmp=$(mktemp -d /tmp/carpd-mutants.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src="$tmp/src"
mkdir -p "$src/bin"
git ls-files -z --cached --others --exclude-standard |
	tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -

# mutate FILE: applies the mutant described by FILE in $src, prints the
# line number changed.
mutate() {
	local f=$1 target
	target="$src/$(field "$f" file)"
	[ -f "$target" ] || return 10
	MUT_AFTER=$(field "$f" after) MUT_MATCH=$(field "$f" match) MUT_REPLACE=$(field "$f" replace) \
		awk -v out="$target.mutated" '
		BEGIN {
			after = ENVIRON["MUT_AFTER"]; m = ENVIRON["MUT_MATCH"]; r = ENVIRON["MUT_REPLACE"]
			armed = (after == ""); anchors = 0; hits = 0; line = 0
		}
		{
			if (after != "" && index($0, after)) {
				anchors++
				if (!armed) { armed = 1; print > out; next }
			}
			if (armed && index($0, m)) {
				hits++
				if (line == 0) {
					i = index($0, m)
					$0 = substr($0, 1, i - 1) r substr($0, i + length(m))
					line = NR
				}
			}
			print > out
		}
		END {
			if (after != "" && anchors != 1) { print "after: found on " anchors " lines, want 1" > "/dev/stderr"; exit 11 }
			if (line == 0) { print "match: not found" > "/dev/stderr"; exit 12 }
			if (after == "" && hits != 1) { print "match: found on " hits " lines, want 1 (give an after: line)" > "/dev/stderr"; exit 13 }
			print line
		}' "$target" || return $?
	if cmp -s "$target" "$target.mutated"; then
		echo "the change leaves the file as it was" >&2
		return 14
	fi
	mv "$target.mutated" "$target"
}

# runtests ARGS: runs `go test ARGS` in $src; 0 when the tests pass, 1
# when they fail, 2 when they did not build.
runtests() {
	local log=$tmp/test.log rc=0
	(cd "$src" && eval "CARPD_BIN='$src/bin/carpd' go test -count=1 -timeout 5m $1") >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ] && grep -q -e '\[build failed\]' -e '\[setup failed\]' "$log"; then
		return 2
	fi
	[ $rc -eq 0 ] || return 1
}

# build [FILE [TEST]]: builds the package of FILE (every package without
# one) and, for an e2e TEST (or none), bin/carpd.
build() {
	local pkg=./... carpd=true
	[ -z "${1:-}" ] || pkg=./$(dirname "$1")
	case ${2-e2e} in *e2e*) ;; *) carpd=false ;; esac
	(
		cd "$src" && go build "$pkg" &&
			if $carpd; then go build -o bin/carpd ./cmd/carpd; fi
	) >"$tmp/build.log" 2>&1
}

# Every mutant applies, before anything runs.
for n in "${names[@]}"; do
	f="$dir/$n.mutant"
	file=$(field "$f" file)
	if ! mutate "$f" >/dev/null 2>"$tmp/mutate.log"; then
		fail "mutant $n does not apply to $file: $(cat "$tmp/mutate.log"); the code moved: update $f"
	fi
	cp "$file" "$src/$file"
done

echo "== baseline: the tests pass without a mutant"
build || { cat "$tmp/build.log" >&2; fail "the unchanged tree does not build"; }
declare -A seen=()
for n in "${names[@]}"; do
	t=$(field "$dir/$n.mutant" test)
	[ -z "${seen[$t]:-}" ] || continue
	seen[$t]=1
	t0=$SECONDS
	if ! runtests "$t"; then
		cat "$tmp/test.log" >&2
		fail "go test $t fails without a mutant (see above): no mutant can be caught by it"
	fi
	if grep -q 'no tests to run' "$tmp/test.log"; then
		fail "go test $t runs no test in some package: check its -run"
	fi
	printf '   pass  %4ds  go test %s\n' $((SECONDS - t0)) "$t"
done

echo "== mutants"
caught=0
survived=()
for n in "${names[@]}"; do
	f="$dir/$n.mutant"
	file=$(field "$f" file)
	t=$(field "$f" test)
	cp "$file" "$src/$file"
	t0=$SECONDS
	if ! line=$(mutate "$f" 2>"$tmp/mutate.log"); then
		fail "mutant $n does not apply to $file: $(cat "$tmp/mutate.log"); the code moved: update $f"
	fi
	if ! build "$file" "$t"; then
		cat "$tmp/build.log" >&2
		fail "mutant $n ($file:$line) does not build: fix $f"
	fi
	rc=0
	by=
	runtests "$t" || rc=$?
	cp "$file" "$src/$file"
	case $rc in
	0)
		survived+=("$n")
		verdict=SURVIVED
		;;
	1)
		caught=$((caught + 1))
		verdict=caught
		# The tests that failed, for the record.
		by=$(sed -n 's/^ *--- FAIL: \([^ ]*\).*/\1/p' "$tmp/test.log" | head -n 3 | tr '\n' ' ')
		by="$by$(grep -m 1 -E '^ +[a-z_]+_test\.go:[0-9]+: ' "$tmp/test.log" | sed 's/^ *//' | cut -c 1-160 || true)"
		;;
	*)
		cat "$tmp/test.log" >&2
		fail "mutant $n ($file:$line): the tests do not build: fix $f"
		;;
	esac
	printf '%-8s %-24s %-34s %4ds  go test %s\n' "$verdict" "$n" "$file:$line" $((SECONDS - t0)) "$t"
	[ -z "$by" ] || echo "         failed: $by"
done
build || { cat "$tmp/build.log" >&2; fail "the tree does not build once restored"; }

echo "$caught of ${#names[@]} mutants caught ($((SECONDS - start)) s)"
if [ ${#survived[@]} -gt 0 ]; then
	echo "survived (each is a missing test): ${survived[*]}" >&2
	exit 1
fi
