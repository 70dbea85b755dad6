#!/usr/bin/env bash
# Installs the real servers the tests and the demo run (Debian packages), then the npm dependencies.
# Idempotent: skips apt when everything is already installed. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(postgresql etcd-server zookeeper haproxy patroni python3-etcd python3-psycopg2 python3-kazoo python3-pythonjsonlogger python3-behave jq bc curl time iproute2 util-linux zsh)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

# Debian's postgresql package may create and start a cluster of its own on 5432; the tests never use it
# (they start their own instances on free ports), so leave it alone.
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<18)) { console.error("pgwarden needs Node >= 20.18, found "+process.versions.node); process.exit(1) }'
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
