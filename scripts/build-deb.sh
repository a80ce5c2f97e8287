#!/usr/bin/env bash
# Builds the Debian package of carpd from this repository with dpkg-deb:
# bin/carpd_<version>_<arch>.deb. It installs the binaries, the unit, the
# man pages and the example; its postinst creates the user carpd and
# enables and starts the service, which runs once /etc/carpd/carpd.toml
# exists (the unit's ConditionPathExists): installing never makes a host
# take addresses over with an example configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(dpkg --print-architecture)
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo 0)
date=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || date +%Y%m%d%H%M%S)
version=${DEB_VERSION:-0.1.0+git$date.$rev}
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" PREFIX=/usr VERSION="$version" scripts/install.sh
mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: carpd
Version: $version
Architecture: $arch
Maintainer: carpd developers <carpd@example.org>
Installed-Size: $size
Section: net
Priority: optional
Recommends: iproute2
Homepage: https://github.com/carpd/carpd
Description: CARP (Common Address Redundancy Protocol) daemon
 carpd runs FreeBSD's and OpenBSD's CARP on Linux: hosts share virtual
 addresses, a backup takes them over within seconds when the master dies.
 It speaks CARP byte for byte as carp(4) and ucarp, reads FreeBSD rc.conf
 lines or its own TOML file, manages the addresses itself, and comes with
 carpctl, hooks, health checks and Prometheus metrics.
CONTROL
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if ! getent passwd carpd >/dev/null; then
		useradd --system --user-group --no-create-home --home-dir /var/lib/carpd --shell /usr/sbin/nologin carpd
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable carpd.service >/dev/null 2>&1 || true
		# Starts once /etc/carpd/carpd.toml exists.
		systemctl start carpd.service || true
	fi
fi
POSTINST
cat > "$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop carpd.service || true
	systemctl disable carpd.service >/dev/null 2>&1 || true
fi
PRERM
cat > "$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
mkdir -p bin
out="bin/carpd_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
