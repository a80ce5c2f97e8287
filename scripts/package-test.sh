#!/usr/bin/env bash
# Checks the packaging without installing anything on this machine: the
# man pages pass `mandoc -Tlint` and read with `man -l`; the Debian package
# builds with `make deb` (or PACKAGE_DEB=FILE checks that file instead);
# lintian reports no error (E:); the package holds what it must (carpd,
# carpctl, the unit in /usr/lib/systemd/system, the sysusers file, the man
# pages, /etc/default/carpd as a conffile, copyright and changelog) and not
# the test tools (carpcraft, carpd-demo); its Depends are there; its
# maintainer scripts make the user with systemd-sysusers, enable the unit on
# install, restart it after an upgrade and stop it on removal
# (deb-systemd-helper / deb-systemd-invoke); the unit as shipped passes
# `systemd-analyze verify` in the extracted tree (its binaries and man
# pages resolved there) with nothing to say; the extracted carpd answers
# --version with the package's version. Exits 1 at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() {
	echo "package-test: FAIL: $*" >&2
	exit 1
}

echo "== man pages"
mandoc -Tlint -Wwarning man/carpd.8 man/carpctl.8 man/carpd.toml.5
for page in man/carpd.8 man/carpctl.8 man/carpd.toml.5; do
	man -l "$page" | grep -q "SYNOPSIS\|DESCRIPTION" || fail "man -l $page: nothing readable"
done

echo "== Debian package"
if [ -n "${PACKAGE_DEB:-}" ]; then
	deb=$PACKAGE_DEB
else
	deb=$(make -s deb | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
echo "$deb"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== lintian"
# lintian warns that it runs as root; its findings are the other lines.
lintian --fail-on none "$deb" 2>&1 | grep -v 'running with root privileges' >"$tmp/lintian" || true
cat "$tmp/lintian"
echo "lintian: $(grep -c '^E: ' "$tmp/lintian" || true) error(s), $(grep -c '^W: ' "$tmp/lintian" || true) warning(s)"
if grep -q '^E: ' "$tmp/lintian"; then
	fail "lintian reports errors"
fi

echo "== contents"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$tmp/files"
for f in /usr/sbin/carpd /usr/bin/carpctl \
	/usr/lib/systemd/system/carpd.service /usr/lib/sysusers.d/carpd.conf /etc/default/carpd /etc/carpd/ \
	/usr/share/man/man8/carpd.8.gz /usr/share/man/man8/carpctl.8.gz /usr/share/man/man5/carpd.toml.5.gz \
	/usr/share/doc/carpd/copyright /usr/share/doc/carpd/changelog.gz /usr/share/doc/carpd/examples/carpd.toml; do
	grep -qxF "$f" "$tmp/files" || fail "the package lacks $f"
done
if grep -E '(carpcraft|carpd-demo)' "$tmp/files"; then
	fail "the package holds a test tool"
fi
if grep -E '^/lib/' "$tmp/files"; then
	fail "the package installs under /lib, not /usr/lib"
fi

echo "== control"
dpkg-deb -I "$deb" >"$tmp/info"
dpkg-deb -f "$deb" Depends >"$tmp/depends"
grep -q 'libc6' "$tmp/depends" || fail "Depends lacks libc6 (shlibs): $(cat "$tmp/depends")"
grep -q 'systemd-sysusers' "$tmp/depends" || fail "Depends lacks systemd-sysusers: $(cat "$tmp/depends")"
mkdir "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
grep -qxF /etc/default/carpd "$tmp/control/conffiles" || fail "/etc/default/carpd is not a conffile"
# The snippets of dh_installsysusers and dh_installsystemd.
want() { # file pattern what
	[ -f "$tmp/control/$1" ] && grep -qE "$2" "$tmp/control/$1" || fail "$1 does not $3"
}
want postinst 'systemd-sysusers .*carpd\.conf' "make the user with systemd-sysusers"
want postinst "deb-systemd-helper enable (.* )?'carpd\.service'" "enable carpd.service on install"
want postinst '_dh_action=restart' "restart carpd.service after an upgrade"
want postinst "deb-systemd-invoke \\\$_dh_action (.* )?'carpd\.service'" "start or restart carpd.service"
want postinst 'chown root:carpd /etc/carpd' "make /etc/carpd root:carpd"
want prerm "deb-systemd-invoke stop (.* )?'carpd\.service'" "stop carpd.service on removal"
want postrm "deb-systemd-helper purge (.* )?'carpd\.service'" "purge carpd.service's state"
want postrm 'userdel carpd' "remove the user carpd on purge"
if grep -q useradd "$tmp/control/postinst"; then
	fail "postinst makes the user with useradd, not the sysusers file"
fi

echo "== unit"
root=$tmp/root
dpkg-deb -x "$deb" "$root"
unit=$root/usr/lib/systemd/system/carpd.service
grep -qxF 'EnvironmentFile=-/etc/default/carpd' "$unit" || fail "the unit does not read /etc/default/carpd"
grep -qxF 'ExecStart=/usr/sbin/carpd $CARPD_ARGS' "$unit" || fail "the unit's ExecStart is not carpd \$CARPD_ARGS"
grep -qxF 'ConditionPathExists=|/etc/carpd/carpd.toml' "$unit" || fail "the unit does not start on carpd.toml"
grep -qxF 'ConditionPathExists=|/etc/carpd/rc.conf' "$unit" || fail "the unit does not start on rc.conf"
prevent=$(sed -n 's/^RestartPreventExitStatus=//p' "$unit")
for code in 64 78; do
	[[ " $prevent " == *" $code "* ]] || fail "RestartPreventExitStatus='$prevent' lacks $code"
done
[[ " $prevent " != *" 2 "* ]] || fail "RestartPreventExitStatus='$prevent' stops restarts after a panic (2)"
grep -qxF 'Restart=on-failure' "$unit" || fail "the unit does not restart on failure"
grep -q '^CARPD_ARGS=' "$root/etc/default/carpd" || fail "/etc/default/carpd does not set CARPD_ARGS"
# systemd-analyze verify in the extracted tree, with this machine's units
# beside it (the targets it names): /usr/sbin/carpd, /usr/bin/carpctl and
# the man pages of Documentation= are the package's.
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
if ! MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" carpd.service >"$tmp/verify" 2>&1 || [ -s "$tmp/verify" ]; then
	cat "$tmp/verify" >&2
	fail "systemd-analyze verify carpd.service"
fi
version=$(dpkg-deb -f "$deb" Version)
got=$("$root/usr/sbin/carpd" --version)
[[ $got == "carpd $version "* ]] || fail "carpd --version says '$got', the package is $version"
echo "$got"
echo "packaging OK: $deb"
