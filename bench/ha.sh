#!/usr/bin/env bash
# High availability, measured on clusters nines deploys (local execution, loopback
# addresses leased from the test kit, release build, default settings):
#   1. failover: kill -9 of a semi-sync primary -> first write acknowledged by the new one
#      (a fresh primary + 2 replicas per run; also: until the old primary rejoined)
#   2. switchover: longest gap between acknowledged writes around `cluster switchover --wait`
#   3. Galera: kill -9 of all three nodes -> all Synced again and each taking a write
#   4. Galera: kill -9 of two of three nodes -> the survivor takes a write; all Synced
#   5. behind HAProxy (nines lb add): kill -9 of the primary -> first write acknowledged
#      through the same read-write port (a fresh cluster and load balancer per run)
# A writer inserts every 5 ms and tries the next node on error. Prints a line per run, a
# summary table, and the job logs of the slowest runs (what dominates).
# Usage: bash bench/ha.sh [FAILOVERS=10] [SWITCHOVERS=10] [GALERA_CRASHES=10] [GALERA_PARTIAL=10]
#                         [LB_FAILOVERS=0]   (bench/lb.sh runs part 5 alone)
#        (0 skips a part)
set -euo pipefail
cd "$(dirname "$0")/.."
FAILOVERS=${1:-10}
SWITCHOVERS=${2:-10}
GALERA_CRASHES=${3:-10}
GALERA_PARTIAL=${4:-10}
LB_FAILOVERS=${5:-0}
source scripts/deps.sh
nines_install_deps
cargo build --release --locked -p nines --bin nines --example bench_ha >&2
NINES=$(pwd)/target/release/nines
WORK=$(mktemp -d /var/tmp/nines-bench-ha.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/db" && chmod 755 "$WORK/db"
CTL=""
BENCH=""

# Every process whose command line names $WORK (servers, SST helpers), by pid.
work_pids() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -qF -- "$WORK/" && echo "${p#/proc/}"
  done
  return 0
}
cleanup() {
  set +e
  trap - EXIT INT TERM
  [ -n "$BENCH" ] && kill "$BENCH" 2>/dev/null && wait "$BENCH" 2>/dev/null
  # The controller first, so that it restarts nothing while the servers go.
  [ -n "$CTL" ] && kill "$CTL" 2>/dev/null && wait "$CTL" 2>/dev/null
  for _ in 1 2 3; do
    for f in "$WORK"/db/*.nines/mysqld.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    for p in $(work_pids); do kill -9 "$p" 2>/dev/null; done
    sleep 0.5
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NINES" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/controller.log" &
CTL=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
export NINES_SERVER="http://127.0.0.1:$PORT" NINES_DATA_DIR="$WORK/data"

echo "nines $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (with uncommitted changes)'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
./target/release/examples/bench_ha --nines "$NINES" --work "$WORK" \
  --failovers "$FAILOVERS" --switchovers "$SWITCHOVERS" --galera-crashes "$GALERA_CRASHES" --galera-partial "$GALERA_PARTIAL" --lb-failovers "$LB_FAILOVERS" &
BENCH=$!
status=0
wait "$BENCH" || status=$?
BENCH=""
if [ "$status" -ne 0 ]; then
  echo "bench_ha failed ($status); controller log tail:" >&2
  tail -n 40 "$WORK/controller.log" >&2
fi
exit "$status"
