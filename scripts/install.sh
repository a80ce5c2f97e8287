#!/usr/bin/env bash
# Installs carpd: the binaries, the systemd unit, the man pages and the
# example configuration. DESTDIR stages the files (packaging); without it,
# as root, the system user carpd is also created. PREFIX is /usr.
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
install -Dm0644 packaging/carpd.service "$DESTDIR/lib/systemd/system/carpd.service"
install -Dm0644 packaging/carpd.sysusers "$DESTDIR$PREFIX/lib/sysusers.d/carpd.conf"
for page in man/carpd.8 man/carpctl.8 man/carpd.toml.5; do
	sec=${page##*.}
	install -d "$DESTDIR$PREFIX/share/man/man$sec"
	gzip -9n < "$page" > "$DESTDIR$PREFIX/share/man/man$sec/$(basename "$page").gz"
done
install -Dm0644 examples/carpd.toml "$DESTDIR$PREFIX/share/doc/carpd/examples/carpd.toml"
install -Dm0644 README.md "$DESTDIR$PREFIX/share/doc/carpd/README.md"
install -d -m0755 "$DESTDIR/etc/carpd"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; then
	getent passwd carpd >/dev/null ||
		useradd --system --user-group --no-create-home --home-dir /var/lib/carpd --shell /usr/sbin/nologin carpd
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	echo "installed; write /etc/carpd/carpd.toml (see $PREFIX/share/doc/carpd/examples/carpd.toml), then: systemctl enable --now carpd"
fi
