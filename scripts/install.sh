#!/usr/bin/env bash
# Installs carpd without a package (`make install`): the binaries, the
# systemd units, the sysusers file, /etc/default/carpd (unless there is
# one), the man pages and the example configuration. DESTDIR stages the
# files; without it, as root, the system user carpd is also made (by
# systemd-sysusers, from the file installed) and /etc/carpd made root:carpd
# 0750. PREFIX is /usr. The Debian package (`make deb`) is built from
# debian/, not from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
ldflags="-s -w -X github.com/carpd/carpd/internal/version.Version=$VERSION"
go build -trimpath -ldflags "$ldflags" -o "$build/carpd" ./cmd/carpd
go build -trimpath -ldflags "$ldflags" -o "$build/carpctl" ./cmd/carpctl
install -Dm0755 "$build/carpd" "$DESTDIR$PREFIX/sbin/carpd"
install -Dm0755 "$build/carpctl" "$DESTDIR$PREFIX/bin/carpctl"
install -d "$DESTDIR$PREFIX/lib/systemd/system"
install -m0644 packaging/*.service $(ls packaging/*.socket 2>/dev/null) "$DESTDIR$PREFIX/lib/systemd/system/"
install -Dm0644 packaging/carpd.sysusers "$DESTDIR$PREFIX/lib/sysusers.d/carpd.conf"
if [ ! -e "$DESTDIR/etc/default/carpd" ]; then
	install -Dm0644 packaging/carpd.default "$DESTDIR/etc/default/carpd"
fi
for page in man/carpd.8 man/carpctl.8 man/carpd.toml.5; do
	sec=${page##*.}
	install -d "$DESTDIR$PREFIX/share/man/man$sec"
	gzip -9n < "$page" > "$DESTDIR$PREFIX/share/man/man$sec/$(basename "$page").gz"
done
install -Dm0644 examples/carpd.toml "$DESTDIR$PREFIX/share/doc/carpd/examples/carpd.toml"
install -Dm0644 README.md "$DESTDIR$PREFIX/share/doc/carpd/README.md"
install -d -m0755 "$DESTDIR/etc/carpd"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; then
	systemd-sysusers "$PREFIX/lib/sysusers.d/carpd.conf"
	chown root:carpd /etc/carpd
	chmod 0750 /etc/carpd
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	echo "installed; write /etc/carpd/carpd.toml (see $PREFIX/share/doc/carpd/examples/carpd.toml), then: carpd --check && systemctl enable --now carpd"
fi
