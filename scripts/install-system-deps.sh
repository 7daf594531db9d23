#!/usr/bin/env bash
# Installs the Debian packages lnlb's demo and tests use, if any is missing:
# iproute2 (ip, bridge), iputils-ping, curl, netcat-openbsd (nc), wrk, nftables, procps,
# keepalived (the bench reference), iperf3 (bond throughput) and tshark (decodes our LACPDUs in a test).
set -euo pipefail
declare -A pkg_for=(
  [ip]=iproute2 [ping]=iputils-ping [curl]=curl [nc]=netcat-openbsd
  [wrk]=wrk [nft]=nftables [pkill]=procps
  [keepalived]=keepalived [iperf3]=iperf3 [tshark]=tshark
)
missing=()
for tool in "${!pkg_for[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_for[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} — run as root: sudo $0" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
