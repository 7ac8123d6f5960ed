#!/usr/bin/env bash
# Backup throughput, measured on a standalone server nines deploys (local execution,
# release build), loaded with sysbench tables, in one run:
#   bare:  mariabackup --backup --stream=xbstream | zstd -3 > file    (on the same server)
#   nines: nines backup create (stream through the controller, zstd-3, AES-256-GCM,
#          chunks into the default directory repository), from its record's start and
#          end (the check that follows each backup is timed apart)
#   restore: nines backup restore --force --wait (check every chunk, stream back,
#          prepare, swap, start)
# Runs alternate bare and nines; prints each run and the medians.
# Usage: bash bench/backup.sh [RUNS=3] [TABLES=8] [ROWS_PER_TABLE=400000]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
TABLES=${2:-8}
ROWS=${3:-400000}
source scripts/deps.sh
nines_install_deps
if ! command -v sysbench >/dev/null || ! command -v zstd >/dev/null; then
  echo "installing sysbench and zstd" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sysbench zstd >/dev/null
fi
cargo build --release --locked -p nines --bin nines >&2
NINES=$(pwd)/target/release/nines
WORK=$(mktemp -d /var/tmp/nines-bench-backup.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/db" && chmod 755 "$WORK/db"
ADDR=127.0.0.251
CTL=""
cleanup() {
  set +e
  trap - EXIT INT TERM
  [ -n "$CTL" ] && kill "$CTL" 2>/dev/null && wait "$CTL" 2>/dev/null
  for f in "$WORK"/db/*.nines/mysqld.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if (exec 3<>"/dev/tcp/$ADDR/3306") 2>/dev/null; then
  echo "something already listens on $ADDR:3306" >&2
  exit 1
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NINES" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" 2>"$WORK/controller.log" &
CTL=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
export NINES_SERVER="http://127.0.0.1:$PORT" NINES_DATA_DIR="$WORK/data"
echo "Bench-Adm1n-Passw0rd" >"$WORK/pw"
"$NINES" cluster create --name bk --type standalone --nodes "$ADDR" --datadir "$WORK/db/{host}_{port}" \
  --db-admin-user dba --db-admin-password-file "$WORK/pw" --local --wait >/dev/null
CFG="$WORK/db/${ADDR//./_}_3306.nines/my.cnf"
[ -f "$CFG" ] || CFG=$(ls "$WORK"/db/*.nines/my.cnf)
SOCK="$(dirname "$CFG")/mysqld.sock"
mariadb --socket="$SOCK" -uroot -e "CREATE DATABASE sbtest"
echo "loading $TABLES sysbench tables of $ROWS rows" >&2
sysbench oltp_read_write --db-driver=mysql --mysql-socket="$SOCK" --mysql-user=root \
  --tables="$TABLES" --table-size="$ROWS" --threads=2 prepare >/dev/null
DATA=$(du -sb "$(dirname "$CFG" | sed 's/\.nines$//')" | cut -f1)

echo "nines $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (with uncommitted changes)'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), datadir $((DATA >> 20)) MiB"
bare=() ours=() restores=() ratio=() bare_ratio=()
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
for run in $(seq 1 "$RUNS"); do
  rm -f "$WORK/bare.xbs.zst"
  t0=$(date +%s.%N)
  mariabackup --defaults-file="$CFG" --socket="$SOCK" --user=root --backup --stream=xbstream \
    --target-dir="$WORK/bare-tmp" 2>"$WORK/bare.log" | zstd -3 -q >"$WORK/bare.xbs.zst"
  t1=$(date +%s.%N)
  rm -rf "$WORK/bare-tmp"
  b=$(python3 -c "print($t1-$t0)")
  bare_bytes=$(stat -c %s "$WORK/bare.xbs.zst")
  json=$("$NINES" -o json backup create --cluster bk --wait)
  read -r o plain stored <<<"$(python3 -c '
import json, sys
from datetime import datetime
b = json.loads(sys.stdin.read())
f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
print((f(b["finished_at"]) - f(b["started_at"])).total_seconds(), b["size_bytes"], b["stored_bytes"])' <<<"$json")"
  id=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["id"])' <<<"$json")
  t2=$(date +%s.%N)
  "$NINES" backup restore "$id" --cluster bk --force --wait >/dev/null
  t3=$(date +%s.%N)
  r=$(python3 -c "print($t3-$t2)")
  mib=$(python3 -c "print($plain/1048576)")
  printf 'run %d: stream %.0f MiB; bare %.2f s (%.0f MiB/s); nines %.2f s (%.0f MiB/s, %.2fx bare); restore %.2f s; stored %.1f%% of the stream (bare zstd %.1f%%)\n' \
    "$run" "$mib" "$b" "$(python3 -c "print($mib/$b)")" "$o" "$(python3 -c "print($mib/$o)")" \
    "$(python3 -c "print($b/$o)")" "$r" "$(python3 -c "print(100*$stored/$plain)")" \
    "$(python3 -c "print(100*$bare_bytes/$plain)")"
  bare+=("$b") ours+=("$o") restores+=("$r") ratio+=("$(python3 -c "print($stored/$plain)")")
  bare_ratio+=("$(python3 -c "print($bare_bytes/$plain)")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${bare[@]}") mo=$(median "${ours[@]}") mr=$(median "${restores[@]}")
echo
echo "| median of $RUNS | seconds | relative |"
echo "|---|---|---|"
echo "| bare mariabackup \| zstd -3 | $(secs "$mb") | 1.00 |"
echo "| nines backup create (stream, zstd-3, AES-256-GCM, store) | $(secs "$mo") | $(python3 -c "print(f'{$mb/$mo:.2f}')")x the bare throughput |"
echo "| nines backup restore (check, stream back, prepare, start) | $(secs "$mr") | |"
echo "| stored / stream | nines $(python3 -c "print(f'{100*$(median "${ratio[@]}"):.1f}')")% | bare zstd $(python3 -c "print(f'{100*$(median "${bare_ratio[@]}"):.1f}')")% |"
