#!/usr/bin/env bash
# The demo: nines's controller with its embedded store deploys a real three-node MariaDB
# Galera cluster on loopback addresses (127.0.0.11-13, standard ports on each), then
# watches it. Installs what it needs, builds, deploys, prints where to look, and runs until
# Ctrl-C (which stops the controller; `nines cluster delete --name demo --purge` removes
# the cluster). Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
nines_install_deps

DATA=${NINES_DEMO_DATA:-./nines-demo}
LISTEN=${NINES_DEMO_LISTEN:-127.0.0.1:9550}
NODES=${NINES_DEMO_NODES:-127.0.0.11,127.0.0.12,127.0.0.13}
# HAProxy in front of the cluster (read-write 3306, read-only 3307, stats 9101).
LB=${NINES_DEMO_LB:-127.0.0.10}
# Node files outside the checkout: mariadbd runs as mysql and must reach them.
DB=${NINES_DEMO_DB:-/var/lib/nines-demo}
echo "== building nines (release)" >&2
cargo build --release --locked -p nines --bin nines
NINES=$(pwd)/target/release/nines

# A previous demo's servers and files go first (they belong to the demo alone).
for pid_file in "$DB"/*.nines/mysqld.pid; do
  [ -f "$pid_file" ] && kill -9 "$(cat "$pid_file")" 2>/dev/null || true
done
for pid_file in /var/lib/nines-lb/demo-"$LB"-3306/haproxy.pid; do
  [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
done
rm -rf "$DATA" "$DB" /var/lib/nines-lb/demo-"$LB"-3306
mkdir -p "$DATA" "$DB"
chmod 755 "$DB"

"$NINES" serve --data-dir "$DATA" --listen "$LISTEN" 2>"$DATA/controller.log" &
CTL=$!
trap 'kill -INT $CTL 2>/dev/null || true; wait $CTL 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

export NINES_SERVER="http://$LISTEN" NINES_DATA_DIR="$DATA"
PASSWORD_FILE="$DATA/demo-admin.password"
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$PASSWORD_FILE"
chmod 600 "$PASSWORD_FILE"
"$NINES" cluster create --name demo --type galera --nodes "$NODES" \
  --db-admin-user demo --db-admin-password-file "$PASSWORD_FILE" \
  --datadir "$DB/{host}_{port}" --local --wait
"$NINES" lb add --cluster demo --type haproxy --host "$LB" --local --wait
# A person to sign in to the web UI as.
UI_PASSWORD_FILE="$DATA/demo-ui.password"
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$UI_PASSWORD_FILE"
chmod 600 "$UI_PASSWORD_FILE"
"$NINES" user add demo --role admin --password-file "$UI_PASSWORD_FILE" >/dev/null
sleep 2
"$NINES" cluster list
"$NINES" node list --cluster demo
"$NINES" lb list --cluster demo
FIRST=${NODES%%,*}
cat <<TXT

nines is running, and so is the Galera cluster it deployed.
  Open:       http://$LISTEN/   user demo, password: $(cat "$UI_PASSWORD_FILE")
  API:        http://$LISTEN   (token: $DATA/admin.token)
  OpenAPI:    curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://$LISTEN/api/openapi.json
  Prometheus: curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://$LISTEN/metrics
  CLI:        export NINES_SERVER=http://$LISTEN NINES_DATA_DIR=$DATA
              $NINES node list --cluster demo
              $NINES cluster rolling-restart --name demo --wait
              $NINES backup create --cluster demo --wait      (then: backup list, backup restore)
  Cluster:    mariadb -h ${FIRST%:*} -u demo -p"\$(cat $PASSWORD_FILE)"   (nodes: $NODES)
  HAProxy:    mariadb -h $LB -P 3306 -u demo -p…  (one writer; -P 3307 reads from every Synced node)
              $NINES lb list --cluster demo      (stats: http://$LB:9101/stats)
  Logs:       $DATA/controller.log, node logs in $DB/*.nines/error.log

Press Ctrl-C to stop the controller (the cluster and HAProxy keep running; remove them with
  $NINES lb remove --cluster demo --host $LB --wait
  $NINES cluster delete --name demo --purge --wait   while the controller runs).
TXT
wait $CTL
