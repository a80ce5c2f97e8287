#!/usr/bin/env bash
# Installs what carpd's demo and tests need on a fresh Debian 12 machine:
# iproute2 (ip netns, veth, bridge), the CARP/VRRP peers and the decoders,
# bird2 (the BGP router the bgp mover's tests peer with), util-linux
# (setpriv), passwd (useradd), libcap2-bin (capsh: the package's test
# reads carpd's capabilities), systemd (systemd-analyze), mandoc
# and man-db (the man pages' checks), systemd-container (systemd-nspawn:
# the package under a real systemd), debhelper and lintian (the package).
# Go itself (1.26) must already be installed. Needs root.
set -euo pipefail
pkgs=(iproute2 iputils-ping arping tcpdump tshark ucarp keepalived bird2 util-linux passwd libcap2-bin systemd systemd-container mandoc man-db debhelper lintian)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
	# bird2's package enables and starts bird.service: the tests run bird
	# in their own namespaces only, never the service (which the systemd
	# tests' containers, sharing /etc, would start as well).
	if [[ " ${missing[*]} " == *" bird2 "* ]]; then
		systemctl disable --now bird.service >/dev/null 2>&1 ||
			systemctl --root=/ disable bird.service >/dev/null 2>&1 || true
	fi
fi
