#!/usr/bin/env bash
# cluster-down.sh - stops what scripts/cluster-up.sh started (by pid: agents, then any PostgreSQL left, then
# etcd) and deletes its directory. KEEP=1 keeps the directory (data and logs).
set -euo pipefail
DIR=${PGWARDEN_LOCAL_DIR:-/tmp/pgwarden-local}
[ -d "$DIR" ] || { echo "cluster-down: nothing in $DIR" >&2; exit 0; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
stop_pid() { # pid, seconds[, signal]: the signal (TERM), a wait, then SIGKILL
  local pid=$1 n=$(($2 * 10))
  alive "$pid" || return 0
  kill "-${3:-TERM}" "$pid" 2>/dev/null || true
  while alive "$pid" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
}
# Agents first, all at once: each stops its PostgreSQL; the leader hands over or releases the lock.
for f in "$DIR"/pg*/agent.pid; do [ -f "$f" ] && { kill -TERM "$(cat "$f")" 2>/dev/null || true; }; done
for f in "$DIR"/pg*/agent.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" 60 && rm -f "$f"; done
for f in "$DIR"/pg*/data/postmaster.pid; do [ -f "$f" ] && stop_pid "$(head -1 "$f")" 30 INT; done # fast shutdown
[ -f "$DIR/etcd.pid" ] && stop_pid "$(cat "$DIR/etcd.pid")" 10 && rm -f "$DIR/etcd.pid"
if [ "${KEEP:-}" = 1 ]; then echo "cluster-down: stopped; kept $DIR" >&2; else rm -rf "$DIR"; echo "cluster-down: stopped and removed $DIR" >&2; fi
