#!/usr/bin/env bash
# Time to deploy, packages preinstalled: a three-node Galera cluster and a primary with two
# replicas, each from nothing to serving (the create job's start to its end), over local
# execution on loopback addresses. Median and spread of RUNS runs each.
# Usage: bash bench/deploy.sh [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
source scripts/deps.sh
nines_install_deps
cargo build --release --locked -p nines --bin nines >&2
NINES=$(pwd)/target/release/nines
WORK=$(mktemp -d /var/tmp/nines-bench-deploy.XXXXXX)
chmod 755 "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NINES" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/controller.log" &
CTL=$!
cleanup() {
  for f in "$WORK"/db/*.nines/mysqld.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  kill $CTL 2>/dev/null || true; wait $CTL 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
export NINES_SERVER="http://127.0.0.1:$PORT" NINES_DATA_DIR="$WORK/data"
echo "Bench-Passw0rd" > "$WORK/pw"
mkdir -p "$WORK/db" && chmod 755 "$WORK/db"

measure() { # type nodes -> seconds (job created_at to finished_at)
  local kind=$1 nodes=$2 name="b$RANDOM"
  "$NINES" cluster create --name "$name" --type "$kind" --nodes "$nodes" --db-admin-user dba \
    --db-admin-password-file "$WORK/pw" --datadir "$WORK/db/{host}_{port}" --local --wait >/dev/null
  local id
  id=$("$NINES" -o json job list --cluster "$name" --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  "$NINES" -o json job show "$id" | python3 -c '
import json, sys
from datetime import datetime
j = json.load(sys.stdin)
f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
d = f(j["finished_at"]) - f(j["started_at"])
print("%.2f" % d.total_seconds())'
  "$NINES" cluster delete --name "$name" --purge --wait >/dev/null
}

report() { # label values...
  python3 - "$@" <<'PY'
import statistics, sys
label, vals = sys.argv[1], sorted(map(float, sys.argv[2:]))
print(f"{label}: runs={len(vals)} median={statistics.median(vals):.2f}s min={vals[0]:.2f}s max={vals[-1]:.2f}s all={vals}")
PY
}

galera=(); repl=()
for _ in $(seq 1 "$RUNS"); do
  galera+=("$(measure galera 127.0.0.14,127.0.0.15,127.0.0.16)")
  repl+=("$(measure replication 127.0.0.17,127.0.0.18,127.0.0.19)")
done
report "galera, 3 nodes" "${galera[@]}"
report "replication, primary + 2 replicas" "${repl[@]}"
