#!/usr/bin/env bash
# Load balancer failover, measured: a replication cluster (primary + 2 semi-sync replicas)
# deployed by nines with HAProxy in front (nines lb add --local) per run; an application
# account writes through the read-write port every 5 ms, reconnecting on error; kill -9 of
# the primary; the time until the first write acknowledged through the same port, and
# every acknowledged write checked on the new primary.
# Usage: bash bench/lb.sh [RUNS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash bench/ha.sh 0 0 0 0 "${1:-10}"
