#!/usr/bin/env bash
# Builds the Debian package of carpd with debhelper (dpkg-buildpackage, see
# debian/) and puts it in dist/: dist/carpd_<version>_<arch>.deb, whose
# path is the last line printed on stdout (the build's log goes to stderr
# only when it fails).
#
# The version is debian/changelog's plus +git<commit date>.<commit>, so
# that each commit's build is newer than the last; DEB_VERSION=X builds
# version X instead (e.g. for an upgrade test). Either way a changelog
# entry for it is written in the copy the package is built from.
#
# The build runs in a temporary copy of the tree (the files git knows of,
# tracked or not ignored): no build artefact lands in the checkout. It uses
# the caller's Go (`go` in PATH, else /usr/local/go/bin/go) and its module
# cache. Needs dpkg-dev and debhelper (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

go=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$go" ] || { echo "build-deb.sh: no Go toolchain (go in PATH or /usr/local/go/bin/go)" >&2; exit 1; }
export PATH="$(dirname "$go"):$PATH"
# debhelper may give the build another HOME: pin Go's caches to the caller's.
for v in GOCACHE GOMODCACHE GOPATH GOPROXY GOSUMDB GOFLAGS GOTOOLCHAIN; do
	export "$v=$("$go" env "$v")"
done
export GO="$go"

base=$(dpkg-parsechangelog -l debian/changelog -SVersion)
if [ -n "${DEB_VERSION:-}" ]; then
	version=$DEB_VERSION
else
	rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo 0)
	when=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
	version=$base+git$when.$rev
fi
if ! dpkg --validate-version "$version" 2>/dev/null || [[ $version == *-* ]]; then
	echo "build-deb.sh: bad version $version (a native package's version: no '-')" >&2
	exit 1
fi
unset DEB_VERSION

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/carpd-$version
mkdir "$src"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf - | tar -xf - -C "$src"
else
	tar --exclude=./.git --exclude=./bin --exclude=./dist -cf - . | tar -xf - -C "$src"
fi

if [ "$version" != "$base" ]; then
	maint=$(dpkg-parsechangelog -l debian/changelog -SMaintainer)
	dist=$(dpkg-parsechangelog -l debian/changelog -SDistribution)
	{
		printf 'carpd (%s) %s; urgency=medium\n\n' "$version" "$dist"
		printf '  * Build of %s by scripts/build-deb.sh.\n\n' "$(git describe --always --dirty 2>/dev/null || echo "a tree without git")"
		printf ' -- %s  %s\n\n' "$maint" "$(date -R)"
		cat debian/changelog
	} >"$src/debian/changelog"
fi

echo "build-deb.sh: building carpd $version with $("$go" version)" >&2
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	tail -n 60 "$tmp/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed (the end of its log above)" >&2
	exit 1
fi
arch=$(dpkg --print-architecture)
deb=carpd_${version#*:}_$arch.deb
mkdir -p "$root/dist"
cp "$tmp/$deb" "$root/dist/$deb"
echo "dist/$deb"
