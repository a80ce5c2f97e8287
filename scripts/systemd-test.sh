#!/usr/bin/env bash
# Runs the package under a real systemd (e2e/systemd): builds the Debian
# package twice, the second time with a higher version for the upgrade
# step, and boots two systemd-nspawn containers (systemd as PID 1, over an
# overlay of this machine's own OS) that install it, joined by a bridge in
# network namespaces, with a client probing the virtual address. Needs
# root and systemd-nspawn (systemd-container, which scripts/setup.sh
# installs). About 4 minutes on 2 cores: 2.5 to build, 1.5 to run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/systemd-test.sh: needs root (namespaces, mounts, systemd-nspawn): sudo scripts/systemd-test.sh" >&2
	exit 2
fi
export PATH="/usr/local/go/bin:$PATH"
# The package as the repository builds it, and the same code as a newer
# version (the upgrade step installs it over the first).
# `make deb` prints the package's path last (dist/carpd_<version>_<arch>.deb).
# SYSTEMD_TEST_DEB: a package already built from this tree (scripts/test.sh
# passes the one package-test.sh checked) instead of building it again;
# SYSTEMD_TEST_DEB_NEWER: its newer version, built already (scripts/test.sh
# builds it while package-test.sh runs). The newer one is compressed with
# zstd rather than xz: it is built only to be upgraded to, and xz takes
# most of a package's build.
deb=${SYSTEMD_TEST_DEB:-$(make -s deb | tail -n 1)}
base=$(dpkg-deb --field "$deb" Version)
newer=${SYSTEMD_TEST_DEB_NEWER:-$(DPKG_DEB_COMPRESSOR_TYPE=zstd DEB_VERSION="$base+newer1" make -s deb | tail -n 1)}
export CARPD_DEB="$PWD/$deb" CARPD_DEB_NEWER="$PWD/$newer"
# Under CI a missing requirement fails the test rather than skipping it.
go test -count=1 -v -timeout 10m ./e2e/systemd "$@"
