#!/usr/bin/env bash
# The demo: nines's controller with its embedded store, watching a real three-node
# MariaDB Galera cluster on loopback addresses. Installs what it needs, builds, starts
# the cluster and the controller, imports the cluster, prints where to look, and runs
# until Ctrl-C (which stops everything it started). Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
nines_install_deps

DATA=${NINES_DEMO_DATA:-./nines-demo}
LISTEN=${NINES_DEMO_LISTEN:-127.0.0.1:9550}
echo "== building nines (release)" >&2
cargo build --release --locked -p nines --bin nines --example demo_cluster
NINES=./target/release/nines
rm -rf "$DATA" && mkdir -p "$DATA"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

./target/release/examples/demo_cluster "$DATA/cluster.env" &
pids+=($!)
for _ in $(seq 1 240); do [ -s "$DATA/cluster.env" ] && break; sleep 0.5; done
[ -s "$DATA/cluster.env" ] || { echo "the demo cluster did not start" >&2; exit 1; }
source "$DATA/cluster.env"

"$NINES" serve --data-dir "$DATA" --listen "$LISTEN" 2>"$DATA/controller.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

export NINES_SERVER="http://$LISTEN" NINES_DATA_DIR="$DATA"
"$NINES" cluster import --name demo --seed "$SEED" --db-user "$DB_USER" --db-password-file "$DB_PASSWORD_FILE" --local --wait
sleep 2
"$NINES" cluster list
"$NINES" node list --cluster demo
cat <<TXT

nines is running.
  API:        http://$LISTEN   (token: $DATA/admin.token)
  OpenAPI:    curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://$LISTEN/api/openapi.json
  Prometheus: curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://$LISTEN/metrics
  CLI:        NINES_SERVER=http://$LISTEN NINES_DATA_DIR=$DATA $NINES node list --cluster demo
  Cluster:    mariadb -h ${SEED%:*} -P ${SEED##*:} -u $DB_USER -p\$(cat $DB_PASSWORD_FILE)   (nodes: $NODES)
  Logs:       $DATA/controller.log

Press Ctrl-C to stop the controller and the demo cluster.
TXT
wait "${pids[1]}"
