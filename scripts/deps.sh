#!/usr/bin/env bash
# Installs what nines's demo and tests need on Debian 12, when missing. Sourced by
# scripts/test.sh and scripts/demo.sh; safe to run again (it installs nothing present).
set -euo pipefail

NINES_APT_PACKAGES=(
  mariadb-server mariadb-client galera-4 mariadb-backup   # the servers nines manages
  rsync socat                                             # Galera SST
  openssh-server openssh-client                           # the SSH transport, tested against a real sshd
  prometheus                                              # promtool checks /metrics
  iptables                                                # failover_cutoff cuts the controller off from a primary
  haproxy keepalived                                      # the load balancers nines deploys
  chromium chromium-driver openssl                        # the web UI, driven by a real headless browser
  iproute2 procps curl ca-certificates
  python3-venv                                            # the PyPI tools below
)

# PyPI tools the tests start (moto's S3-compatible server, aiosmtpd's SMTP sink), in a
# virtualenv of their own.
NINES_VENV="${NINES_VENV:-$HOME/.cache/nines/venv}"
NINES_PIP_PACKAGES=("moto[server]==5.*" "aiosmtpd==1.*")

nines_install_deps() {
  local missing=()
  for p in "${NINES_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    # Packages must not start their services here: nines starts its own servers.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
      $sudo chmod +x /usr/sbin/policy-rc.d
      NINES_REMOVE_POLICY=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "${NINES_REMOVE_POLICY:-0}" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  fi
  if [ ! -x "$NINES_VENV/bin/moto_server" ] || [ ! -x "$NINES_VENV/bin/aiosmtpd" ]; then
    echo "installing PyPI tools in $NINES_VENV: ${NINES_PIP_PACKAGES[*]}" >&2
    python3 -m venv "$NINES_VENV"
    "$NINES_VENV/bin/pip" install -q --disable-pip-version-check "${NINES_PIP_PACKAGES[@]}"
  fi
  export NINES_MOTO_SERVER="$NINES_VENV/bin/moto_server"
  export NINES_AIOSMTPD="$NINES_VENV/bin/aiosmtpd"
  if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest" >&2
    cargo install cargo-nextest --locked
  fi
}
