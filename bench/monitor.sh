#!/usr/bin/env bash
# Monitoring cost and API latency, on ten real MariaDB nodes (a primary with three
# replicas, a three-node Galera cluster, three standalone servers) probed every second.
#   - controller CPU time (user+system, from /proc/PID/stat) per node per second of monitoring
#   - p50/p99 latency of GET /api/v1/clusters and GET /api/v1/nodes
# The ten real nodes are measured twice in the same run: with the advisors and the query
# monitor off (--advisor-interval off) and on (the default, every 30 s).
# Then, unless SIMULATED=0, the same on a simulated fleet: SIMULATED fake MariaDB servers
# (examples/bench_sim_fleet.rs: the MySQL protocol on loopback ports, answering the probe
# from a real server's recorded output), each imported as a standalone cluster.
# Usage: bash bench/monitor.sh [SECONDS=60] [REQUESTS=2000] [SIMULATED=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_MEASURE=${1:-60}
REQUESTS=${2:-2000}
SIMULATED=${3:-1000}
source scripts/deps.sh
nines_install_deps
cargo build --release --locked -p nines --bin nines --example bench_fleet --example bench_sim_fleet >&2
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

./target/release/examples/bench_fleet "$WORK/fleet.txt" &
pids+=($!)
for _ in $(seq 1 360); do [ -s "$WORK/fleet.txt" ] && break; sleep 0.5; done
[ -s "$WORK/fleet.txt" ] || { echo "fleet did not start" >&2; exit 1; }

# Starts a controller on DATA (more serve flags after it); sets CTL and PORT.
start_controller() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local data=$1
  shift
  mkdir -p "$data"
  ./target/release/nines serve --data-dir "$data" --listen "127.0.0.1:$PORT" "$@" 2>"$data.log" &
  CTL=$!
  pids+=($CTL)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  export NINES_SERVER="http://127.0.0.1:$PORT" NINES_DATA_DIR="$data"
}

# Controller CPU per node-second over the window, then the list routes' latency.
measure() {
local nodes=$1
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$CTL/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$SECONDS_TO_MEASURE"
c1=$(cpu); t1=$(date +%s.%N)
python3 - "$c0" "$c1" "$t0" "$t1" "$ticks" "$nodes" <<'PY'
import sys
c0, c1, t0, t1, hz, n = map(float, sys.argv[1:])
secs = t1 - t0
cpu = (c1 - c0) / hz
print(f"nodes={int(n)} window={secs:.1f}s controller_cpu={cpu:.2f}s "
      f"cpu_per_node_per_second={cpu / secs / n * 1000:.3f}ms ({cpu / secs * 100:.2f}% of one core)")
PY
python3 - "$PORT" "$NINES_DATA_DIR/admin.token" "$REQUESTS" <<'PY'
import http.client, sys, time
port, token_file, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
token = open(token_file).read().strip()
conn = http.client.HTTPConnection("127.0.0.1", port)
for path in ["/api/v1/clusters", "/api/v1/nodes"]:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"GET {path}: n={n} p50={p(0.50):.2f}ms p99={p(0.99):.2f}ms max={lat[-1]:.2f}ms")
PY
}

for advisors in off on; do
  echo "== ten real nodes, advisors and query monitor $advisors"
  if [ "$advisors" = off ]; then
    start_controller "$WORK/data-$advisors" --advisor-interval off
  else
    start_controller "$WORK/data-$advisors"
  fi
  i=0
  while read -r seed user pwfile; do
    i=$((i+1))
    ./target/release/nines cluster import --name "c$i" --seed "$seed" --db-user "$user" --db-password-file "$pwfile" --wait >/dev/null
  done < "$WORK/fleet.txt"
  NODES=$(./target/release/nines -o json node list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  sleep 5  # let every probe task reach its steady state before the window opens
  measure "$NODES"
  kill -INT "$CTL" 2>/dev/null || true
  wait "$CTL" 2>/dev/null || true
done

if [ "$SIMULATED" -gt 0 ]; then
  echo "== $SIMULATED simulated nodes"
  ./target/release/examples/bench_sim_fleet "$WORK/sim.txt" "$SIMULATED" &
  pids+=($!)
  for _ in $(seq 1 120); do [ -s "$WORK/sim.txt" ] && break; sleep 0.5; done
  [ -s "$WORK/sim.txt" ] || { echo "simulated fleet did not start" >&2; exit 1; }
  start_controller "$WORK/sim-data"
  # One standalone cluster per server.
  python3 bench/import_fleet.py "$PORT" "$NINES_DATA_DIR/admin.token" "$WORK/sim.txt"
  NODES=$(./target/release/nines -o json node list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  sleep 10  # every probe task reaches its steady state before the window opens
  measure "$NODES"
fi
