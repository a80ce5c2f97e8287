#!/usr/bin/env bash
# Runs the FreeBSD CARP walkthrough in network namespaces (see README.md).
# Needs root; installs what it needs first. --etcd: the vhid elected on a
# real 3-member etcd cluster instead (--preempt: carpd --preempt).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/demo.sh: needs root for network namespaces: sudo scripts/demo.sh" >&2
	exit 2
fi
scripts/setup.sh
go build -o bin/carpd ./cmd/carpd
go build -o bin/carpd-demo ./tools/carpd-demo
for a in "$@"; do
	if [ "$a" = --etcd ]; then
		(cd e2e/etcdlab && go build -o ../../bin/etcdlab .)
		export CARPD_ETCDLAB_BIN="$PWD/bin/etcdlab"
	fi
done
exec bin/carpd-demo --carpd bin/carpd "$@"
