#!/usr/bin/env bash
# Runs the FreeBSD CARP walkthrough in network namespaces (see README.md).
# Needs root; installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/demo.sh: needs root for network namespaces: sudo scripts/demo.sh" >&2
	exit 2
fi
scripts/setup.sh
go build -o bin/carpd ./cmd/carpd
go build -o bin/carpd-demo ./tools/carpd-demo
exec bin/carpd-demo --carpd bin/carpd "$@"
