#!/usr/bin/env bash
# The web UI with hundreds of clusters: CLUSTERS simulated MariaDB servers
# (examples/bench_sim_fleet.rs: the MySQL protocol on loopback ports, answering the probe
# from a real server's recorded output), each imported as a standalone cluster and probed
# every second, then, signed in as an admin through the login form:
#   - p50/p99 of GET / (the overview of every cluster), GET /?q=… (filtered),
#     GET /clusters/NAME (a cluster's page);
#   - the overview's size, and the size of the `states` events of /ui/stream (all states
#     first, then what changed, every two seconds, to every open page).
# Usage: bash bench/ui.sh [CLUSTERS=500] [REQUESTS=200]
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTERS=${1:-500}
REQUESTS=${2:-200}
source scripts/deps.sh
nines_install_deps
cargo build --release --locked -p nines --bin nines --example bench_sim_fleet >&2
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

./target/release/examples/bench_sim_fleet "$WORK/sim.txt" "$CLUSTERS" &
pids+=($!)
for _ in $(seq 1 120); do [ -s "$WORK/sim.txt" ] && break; sleep 0.5; done
[ -s "$WORK/sim.txt" ] || { echo "simulated fleet did not start" >&2; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA="$WORK/data"
mkdir -p "$DATA"
./target/release/nines serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
CTL=$!
pids+=($CTL)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
export NINES_SERVER="http://127.0.0.1:$PORT" NINES_DATA_DIR="$DATA"
printf '%s' 'bench-ui-password-1' > "$WORK/pw"
./target/release/nines user add bench --role admin --password-file "$WORK/pw" >/dev/null

python3 bench/import_fleet.py "$PORT" "$DATA/admin.token" "$WORK/sim.txt"
python3 - "$PORT" "$WORK/sim.txt" "$REQUESTS" <<'PY'
import http.client, re, sys, time, urllib.parse
port, fleet, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
count = sum(1 for line in open(fleet) if line.strip())
time.sleep(5)  # every probe task reaches its steady state

# Sign in as a person does: the form's token, then the session cookie.
conn.request("GET", "/login"); page = conn.getresponse().read().decode()
csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
form = urllib.parse.urlencode({"username": "bench", "password": "bench-ui-password-1", "csrf_token": csrf})
conn.request("POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}"})
r = conn.getresponse(); r.read()
cookie = r.getheader("Set-Cookie").split(";")[0]
assert r.status in (302, 303), r.status
print(f"clusters={count}")
for path in ["/", "/?q=s12", f"/clusters/s{count // 2}"]:
    lat, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse(); body = r.read()
        assert r.status == 200, (path, r.status)
        lat.append((time.perf_counter() - t) * 1000)
        size = len(body)
    if path == "/":
        shown = body.decode().count("<tr data-name=")
        assert shown == count, f"the overview shows {shown} of {count} clusters"
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"GET {path}: n={n} p50={p(0.50):.1f}ms p99={p(0.99):.1f}ms max={lat[-1]:.1f}ms size={size // 1024}KiB")
s = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
s.request("GET", "/ui/stream", headers={"Cookie": cookie})
r = s.getresponse()
buf = b""
while buf.count(b"event: states") < 3 or not buf.endswith(b"\n\n"):
    buf += r.read1(65536)
events = [e for e in buf.split(b"\n\n") if b"event: states" in e]
print(f"/ui/stream: first states event {len(events[0]) / 1024:.0f}KiB (every cluster and node), "
      f"then {len(events[1])}B and {len(events[2])}B every 2 s (what changed)")
PY
