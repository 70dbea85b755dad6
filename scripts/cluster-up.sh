#!/usr/bin/env bash
# cluster-up.sh - the main job on one machine: a local etcd and three pgwarden agents (PostgreSQL 15) on
# 127.0.0.1, left running; then `pgwarden list`. Installs what is missing first (apt + npm ci; needs root).
# Stop everything with scripts/cluster-down.sh (npm run cluster:down).
#   env: PGWARDEN_LOCAL_DIR (default /tmp/pgwarden-local), ETCD_PORT (12379), REST_PORT (18101..), PG_PORT (15501..)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${PGWARDEN_LOCAL_DIR:-/tmp/pgwarden-local}
ETCD_PORT=${ETCD_PORT:-12379}
REST_PORT=${REST_PORT:-18101}
PG_PORT=${PG_PORT:-15501}
PG_BIN=/usr/lib/postgresql/15/bin
die() { echo "cluster-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it installs packages and runs PostgreSQL as the postgres user"
[ ! -e "$DIR/etcd.pid" ] || die "a local cluster already runs in $DIR (stop it: npm run cluster:down)"
bash scripts/install-deps.sh
npm run -s build
for p in "$ETCD_PORT" $((ETCD_PORT + 1)) $(seq "$REST_PORT" $((REST_PORT + 2))) $(seq "$PG_PORT" $((PG_PORT + 2))); do
  ! ss -Hltn "sport = :$p" | grep -q . || die "port $p on 127.0.0.1 is in use (set ETCD_PORT / REST_PORT / PG_PORT)"
done

mkdir -p "$DIR"
chmod 755 "$DIR"
setsid /usr/bin/etcd --name local --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "local=http://127.0.0.1:$((ETCD_PORT + 1))" \
  >"$DIR/etcd.log" 2>&1 </dev/null &
echo $! >"$DIR/etcd.pid"
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null || die "etcd did not start: see $DIR/etcd.log"

for i in 1 2 3; do
  d=$DIR/pg$i
  mkdir -p "$d/pglog"
  cat >"$d/pgwarden.yml" <<YML
scope: local
namespace: /service
name: pg$i

restapi:
  listen: 127.0.0.1:$((REST_PORT + i - 1))
  connect_address: 127.0.0.1:$((REST_PORT + i - 1))

etcd3:
  hosts: 127.0.0.1:$ETCD_PORT

bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 50
        shared_buffers: 32MB
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
  initdb:
  - encoding: UTF8
  - data-checksums

postgresql:
  listen: 127.0.0.1:$((PG_PORT + i - 1))
  connect_address: 127.0.0.1:$((PG_PORT + i - 1))
  data_dir: $d/data
  bin_dir: $PG_BIN
  pgpass: $d/pgpass
  authentication:
    replication: {username: replicator, password: rep-pass}
    superuser: {username: postgres, password: zalando}
    rewind: {username: rewind_user, password: rewind_password}
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 md5
  - host all all 127.0.0.1/32 md5
  parameters:
    unix_socket_directories: '$d'
    logging_collector: 'on'
    log_directory: '$d/pglog'
YML
  chown -R postgres:postgres "$d"
  chmod 700 "$d"
  # PostgreSQL refuses root: the agent runs as postgres, in a session of its own so it outlives this script.
  setsid setpriv --reuid=postgres --regid=postgres --init-groups env -i HOME="$d" PATH=/usr/bin:/bin LANG=C.UTF-8 \
    "$(command -v node)" "$ROOT/bin/run.js" agent "$d/pgwarden.yml" >>"$d/agent.log" 2>&1 </dev/null &
  echo $! >"$d/agent.pid"
done

pgwarden() { node "$ROOT/bin/run.js" -c "$DIR/pg1/pgwarden.yml" "$@"; }
echo "cluster-up: waiting for a leader and two streaming replicas (logs: $DIR/pg*/agent.log)" >&2
ready() { # one leader running, two replicas streaming (a 4.x replica's state), and the leader sees both streaming
  local leader_rest
  leader_rest=$(pgwarden list -f json 2>/dev/null | jq -r '
    if ([.[] | select(.Role == "Leader" and .State == "running")] | length) == 1 and
       ([.[] | select(.Role == "Replica" and .State == "streaming")] | length) == 2
    then .[] | select(.Role == "Leader") | .Member else empty end') || return 1
  [ -n "$leader_rest" ] || return 1
  curl -fsS "http://127.0.0.1:$((REST_PORT + ${leader_rest#pg} - 1))/patroni" 2>/dev/null |
    jq -e '[.replication[]? | select(.state == "streaming")] | length == 2' >/dev/null
}
# A deadline in seconds, not a count of tries: on a loaded machine one try (a `pgwarden list`) takes seconds itself.
deadline=$((SECONDS + 120))
until ready; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.5
done
ready || { tail -n 20 "$DIR"/pg*/agent.log >&2; die "the cluster did not come up within 120 s"; }
pgwarden list
cat <<TXT

Three pgwarden agents run on 127.0.0.1 (etcd $ETCD_PORT, REST $REST_PORT-$((REST_PORT + 2)), PostgreSQL $PG_PORT-$((PG_PORT + 2))).
Try:  node bin/run.js -c $DIR/pg1/pgwarden.yml list        (or: switchover, topology, history, ...)
      psql "host=127.0.0.1 port=$PG_PORT user=postgres password=zalando"
Stop: npm run cluster:down
TXT
