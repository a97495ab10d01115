# shellcheck shell=bash
# Bucardo 5.6 under test (source it): install, sync, capture reset, start/stop.
#
#   buc_setup DB     Bucardo's own database on src, one sync "bench" from
#                    src.DB to dst.DB over the same tables as pgtandem's
#   buc_reset DB     empties Bucardo's delta/track/stage tables on the source
#                    (daemon stopped): no change pending, as after a fresh sync
#   buc_start        `bucardo start`; sets BUC_T0 (when it was invoked)
#   buc_stop         `bucardo stop`; kills what is left after a timeout
#   buc_mcp_pidfile  where the MCP writes its PID
#
# Every pitfall of the Bucardo baseline notes that concerns running it
# (4-15) is handled here; 1-3 (installing it) are in deps.sh:
#  4. /etc/bucardorc (port 5432, dbpass) is read by every bucardo command
#     unless told otherwise: we write our own rc and always pass --bucardorc,
#     and set HOME to our own directory so no ~/.bucardorc or ./.bucardorc
#     is picked up either.
#  5. the default piddir /var/run/bucardo does not exist: a dedicated piddir
#     under $BENCH_DIR, given to `install` (stored in bucardo_config) and in
#     the rc. Bucardo treats every *.pid file there as its own.
#  6. reason_file, warning_file, log_conflict_file default to /var/log/bucardo:
#     moved under $BENCH_DIR with `bucardo set`.
#  7. `bucardo stop` writes bucardo.restart.reason.* into the current
#     directory: every bucardo command runs from the piddir.
#  8. logdest in the rc and --log-destination on the command line would double
#     every log line: only the rc names it.
#  9. `install` needs --batch, and --dbuser/--dbname overriding the rc's
#     bucardo/bucardo; a missing role "bucardo" would be created with a random
#     password appended to $HOME/.pgpass: the role is created first on both
#     clusters (trust auth on 127.0.0.1), and HOME is ours anyway.
# 10. pgbench_history has no primary key: env_create_db gives it one.
# 11. triggers and schema bucardo in the source db come from `add sync`: the
#     target is never re-created with pg_dump (its data is copied table by
#     table when needed, env_resync), so the schema never travels.
# 12. pgbench's pre-run TRUNCATE pgbench_history fires Bucardo's truncate
#     trigger and is replayed on the target; pgtandem captures it too.
# 13. PostgreSQL 15 itself needs nothing special: bucardo.schema's CREATE
#     LANGUAGE plperlu maps to the extension, which postgresql-plperl-15
#     (deps.sh) provides; `install` fails loudly if it is missing.
# 14. Bucardo can stall in bucardo_delta_check, and its KID's long
#     REPEATABLE READ transactions hold back vacuum: every wait has a timeout,
#     a stall is reported as TIMEOUT, the stop kills what does not exit, and
#     every run starts from emptied delta/track tables.
# 15. process titles are "Bucardo Master Control Program", "Bucardo
#     Controller", "Bucardo Kid", "Bucardo VAC.": rss.pl matches on those.

# shellcheck disable=SC2034  # BUC_T0 is read by workloads.sh
BUC_DIR='' BUC_T0=''
BUC_RUNNING=0

# Runs the bucardo CLI from the piddir with our rc and HOME.
bucardo_cli() {
  (cd "$BUC_DIR/run" && HOME=$BUC_DIR/home bucardo --bucardorc "$BUC_DIR/bucardorc" "$@")
}

buc_mcp_pidfile() { echo "$BUC_DIR/run/bucardo.mcp.pid"; }

buc_setup() {
  local db=$1 node
  BUC_DIR=$BENCH_DIR/bucardo
  mkdir -p "$BUC_DIR/run" "$BUC_DIR/log" "$BUC_DIR/home"
  for node in src dst; do
    sql "$node" postgres -c "CREATE ROLE bucardo SUPERUSER LOGIN" || return 1
  done
  cat >"$BUC_DIR/bucardorc" <<EOF
# bench/run's own rc (pitfalls 4, 5, 8); no dbpass: trust auth on 127.0.0.1.
dbhost = 127.0.0.1
dbport = $SRC_PORT
dbname = bucardo
dbuser = bucardo
piddir = $BUC_DIR/run
logdest = $BUC_DIR/log
EOF
  local log=$BENCH_DIR/bucardo-cli.log tables
  tables=public.pgbench_accounts,public.pgbench_branches,public.pgbench_tellers,public.pgbench_history,public.bench_marker
  {
    bucardo_cli install --batch --dbuser postgres --dbname postgres --dbhost 127.0.0.1 \
      --dbport "$SRC_PORT" --piddir "$BUC_DIR/run" &&
      bucardo_cli set "reason_file=$BUC_DIR/log/restart.reason" "warning_file=$BUC_DIR/log/warning.log" \
        "log_conflict_file=$BUC_DIR/log/conflict.log" &&
      bucardo_cli add db buc_src "dbname=$db" host=127.0.0.1 "port=$SRC_PORT" user=bucardo &&
      bucardo_cli add db buc_dst "dbname=$db" host=127.0.0.1 "port=$DST_PORT" user=bucardo &&
      bucardo_cli add sync bench dbs=buc_src:source,buc_dst:target "tables=$tables"
  } >>"$log" 2>&1 || {
    echo "bench: setting up Bucardo failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return 1
  }
}

buc_reset() {
  local db=$1
  ((BUC_RUNNING == 0)) || { echo "bench: buc_reset while Bucardo runs" >&2; return 1; }
  sql src "$db" -c "DO \$\$
    DECLARE t regclass;
    BEGIN
      FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'bucardo' AND c.relkind = 'r'
                 AND (c.relname ~ '^(delta|track|stage)_' OR c.relname ~ '^bucardo_truncate_trigger')
      LOOP
        EXECUTE format('TRUNCATE %s', t);
      END LOOP;
    END \$\$" -c "ANALYZE"
}

buc_start() {
  rm -f "$BUC_DIR/run/fullstopbucardo" "$(buc_mcp_pidfile)"
  BUC_T0=$(now)
  BUC_RUNNING=1
  bucardo_cli start "bench/run" >>"$BENCH_DIR/bucardo-cli.log" 2>&1 || {
    echo "bench: bucardo start failed; last lines of its log:" >&2
    tail -n 20 "$BENCH_DIR/bucardo-cli.log" >&2
    return 1
  }
}

# PIDs of live Bucardo processes named in our piddir (checked by their title,
# so a recycled PID is never signalled).
_buc_pids() {
  local file pid
  for file in "$BUC_DIR"/run/*.pid; do
    [[ -r $file ]] || continue
    read -r pid <"$file" || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^Bucardo ' && echo "$pid"
  done
}

buc_stop() {
  ((BUC_RUNNING)) || return 0
  local pids i
  pids=$(_buc_pids)
  bucardo_cli stop "bench/run" >>"$BENCH_DIR/bucardo-cli.log" 2>&1
  # A KID finishes its current sync run before it looks at the stop file;
  # a stalled one (pitfall 14) never does.
  for ((i = 0; i < 300; i++)); do
    local alive=''
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ -z $alive ]] && break
    sleep 0.1
  done
  for pid in $pids; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench: Bucardo process $pid did not stop in 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  # Their sessions may still run a query (a stalled delta check): end them so
  # that the next reset's TRUNCATE does not wait behind them.
  local node
  for node in src dst; do
    sql "$node" postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'bucardo'" >/dev/null 2>&1
  done
  rm -f "$BUC_DIR"/run/*.pid
  BUC_RUNNING=0
}
