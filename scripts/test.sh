#!/usr/bin/env bash
# Install everything the tests need (Debian packages when root, Python packages in .venv), lint, and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBIAN_PACKAGES="dnsmasq unbound dnsutils nftables openssh-server iputils-ping iproute2 procps chromium"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  for pkg in $DEBIAN_PACKAGES; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
  if [ -n "$missing" ]; then
    echo "Installing Debian packages:$missing"
    apt-get update -qq
    # policy-rc.d keeps the freshly installed resolvers and sshd from starting as system services
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
else
  echo "Not root: skipping apt-get; tests that need $DEBIAN_PACKAGES skip with a reason if they are missing."
fi
scripts/install.sh dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
