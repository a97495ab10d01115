# shellcheck shell=bash
# The benchmark's clusters, databases, logging and results file (source it).
#
#   env_start_clusters      two throwaway clusters, "src" and "dst", on loopback
#   env_create_db DB SCALE  the same pgbench database on both (see below)
#   sql NODE DB ARGS...     psql -X to a cluster as postgres (-qAt, ON_ERROR_STOP)
#   record JSON             appends one measurement to $BENCH_RAW
#   note / log_step         progress lines on stdout
#
# Uses scripts/lib/clusters.sh (initdb as postgres via runuser when root, free
# ports, sockets in our own directory, trust auth on 127.0.0.1, fsync off).

# shellcheck source=scripts/lib/clusters.sh
source "$BENCH_ROOT/scripts/lib/clusters.sh"

# Settings added to both clusters, on top of clusters.sh's. Durability stays
# off as clusters.sh sets it (fsync, synchronous_commit): every figure is then
# CPU-bound, which is the least flattering case for capture overhead, and the
# VM's disk does not add noise. Both tools run on the same settings.
_env_extra_conf() {
  cat <<'EOF'

# ---- bench/lib/env.sh ----
# Room for scale 10 and 50 databases; the machine has 24 GiB.
shared_buffers = 1GB
# Every run starts with an explicit CHECKPOINT; no timed one in between.
max_wal_size = 16GB
checkpoint_timeout = 1h
# Enough for pgbench, both daemons, pollers and Bucardo's KIDs.
max_connections = 200
EOF
}

env_start_clusters() {
  clusters_prepare_dir "$BENCH_DIR"
  local node
  for node in src dst; do
    clusters_init "$node" "$BENCH_DIR" || return 1
    _env_extra_conf >>"$BENCH_DIR/$node/postgresql.conf"
    clusters_start "$node" || return 1
  done
  SRC_PORT=${CLUSTER_PORT[src]}
  DST_PORT=${CLUSTER_PORT[dst]}
  note "clusters: src 127.0.0.1:$SRC_PORT, dst 127.0.0.1:$DST_PORT (data in $BENCH_DIR)"
}

# psql to NODE's database DB; extra arguments follow (-c SQL, -f FILE, ...).
sql() {
  local node=$1 db=$2
  shift 2
  PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${CLUSTER_PORT[$node]}" -U postgres -d "$db" "$@"
}

# libpq keyword DSN of NODE's database DB for USER (default postgres).
dsn() {
  echo "host=127.0.0.1 port=${CLUSTER_PORT[$1]} dbname=$2 user=${3:-postgres}"
}

# Perl DBI DSN for the helpers (bench/lib/*.pl take DBI strings).
dbi() {
  echo "dbi:Pg:host=127.0.0.1;port=${CLUSTER_PORT[$1]};dbname=$2"
}

# The same pgbench database DB at SCALE on both clusters, in parallel.
# pgbench -i data is deterministic (pgbench_history starts empty), so both
# sides are identical without copying anything. The rows are loaded with
# COPY (-I g), as pg_restore loads a table, not by the server's INSERT ...
# SELECT (-I G): that one leaves the table in shared buffers, unlike a
# restore, and the first catch-up into such a target ran 15-30 % slower in
# the lab than every later one. pgbench_history gets a bigserial primary key
# (both tools need one), and bench_marker is the lag workload's marker table.
env_create_db() {
  local db=$1 scale=$2 node pids=()
  for node in src dst; do
    (
      sql "$node" postgres -c "CREATE DATABASE $db" &&
        "$PG_BIN/pgbench" -i -s "$scale" -I dtgvp -q -h 127.0.0.1 -p "${CLUSTER_PORT[$node]}" -U postgres "$db" &&
        sql "$node" "$db" \
          -c "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY" \
          -c "CREATE TABLE bench_marker (id integer PRIMARY KEY, note text)" \
          -c "VACUUM ANALYZE"
    ) >>"$BENCH_DIR/setup.log" 2>&1 &
    pids+=($!)
  done
  local pid rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  if ((rc)); then
    echo "bench: creating database $db (scale $scale) failed; last lines of setup.log:" >&2
    tail -n 20 "$BENCH_DIR/setup.log" >&2
    return 1
  fi
}

# md5 of pgbench_accounts (key, branch and balance of every row) on NODE.
accounts_md5() {
  sql "$1" "$2" -c "SELECT md5(string_agg(aid::text || ':' || bid::text || ':' || abalance::text, ',' ORDER BY aid)) FROM pgbench_accounts"
}

# Copies every pgbench table and bench_marker from src to dst (data only),
# making the target identical again after a failed run.
env_resync() {
  local db=$1 table
  for table in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history bench_marker; do
    sql dst "$db" -c "TRUNCATE $table" || return 1
    sql src "$db" -c "COPY $table TO STDOUT" | sql dst "$db" -c "COPY $table FROM STDIN" || return 1
  done
  sql dst "$db" -c "VACUUM ANALYZE"
}

# CHECKPOINT on both clusters, then sync: every measured run starts with no
# dirty page in PostgreSQL or in the kernel, so that it does not pay for
# writing back what the run before it wrote (a 5M catch-up writes ~2 GB).
checkpoint_both() {
  sql src postgres -c CHECKPOINT && sql dst postgres -c CHECKPOINT && sync
}

# VACUUM ANALYZE of every database on both clusters, then checkpoint_both:
# a timed catch-up starts with nothing left for autovacuum to do. A backlog's
# tables (the source's updated table, the tools' delta tables) are vacuumed as
# autovacuum would have done while a real backlog built up over the hours of
# a dump and restore; and an autovacuum of what an earlier run wrote (a
# recopied target table, a delta table) cannot land inside a timed run, or
# not, at random. The first reader of unvacuumed rows also sets their hint
# bits, which should not depend on which tool reads them first.
settle_both() {
  local node
  for node in src dst; do
    "$PG_BIN/vacuumdb" -q --all --analyze -h 127.0.0.1 -p "${CLUSTER_PORT[$node]}" -U postgres || return 1
  done
  checkpoint_both
}

# Appends one JSON object (one line) to the raw results.
record() {
  printf '%s\n' "$1" >>"$BENCH_RAW"
}

note() { printf '  %s\n' "$*"; }
log_step() { printf '\n== %s  (%s elapsed)\n' "$*" "$(elapsed)"; }
elapsed() {
  local s=$((SECONDS - BENCH_T0))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# Seconds since the epoch, with microseconds (bash 5's EPOCHREALTIME).
now() { echo "$EPOCHREALTIME"; }
# B - A in seconds, 3 decimals.
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
