#!/usr/bin/env bash
# Checks the packaging on this machine (CI's): the man pages pass
# `mandoc -Tlint` and read with `man -l`; the Debian package builds and
# installs with dpkg; the installed carpd --version answers; the installed
# unit passes `systemd-analyze verify` (which also wants the binaries and
# the man pages it names). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== man pages"
mandoc -Tlint -Wwarning man/carpd.8 man/carpctl.8 man/carpd.toml.5
for page in man/carpd.8 man/carpctl.8 man/carpd.toml.5; do
	man -l "$page" | grep -q "SYNOPSIS\|DESCRIPTION" || { echo "man -l $page: nothing readable" >&2; exit 1; }
done
echo "== Debian package"
deb=$(scripts/build-deb.sh)
dpkg -i "$deb" >/dev/null
/usr/sbin/carpd --version
/usr/bin/carpctl version 2>/dev/null | head -1 || true # carpd is not running here: exit 3
getent passwd carpd >/dev/null || { echo "the package did not create the user carpd" >&2; exit 1; }
echo "== systemd-analyze verify"
mandb -q 2>/dev/null || true
systemd-analyze verify /lib/systemd/system/carpd.service
echo "packaging OK: $deb"
