# shellcheck shell=bash
# pgtandem under test (source it): config, capture reset, daemon start/stop.
#
#   pgt_config DB           writes $BENCH_DIR/pgt-DB.json: one sync "bench",
#                           src.DB -> dst.DB, tables public.pgbench_* and
#                           public.bench_marker; daemon defaults, log level info;
#                           the default capture ("auto"), pointed at the module
#                           bench/run copied where the package would put it;
#                           and pgt-DB-plpgsql.json, the same with "plpgsql"
#   pgt_reset DB [install|install-plpgsql]
#                           uninstall on source and target (capture and the
#                           target's progress gone); with "install", install
#                           again (the default capture), "install-plpgsql" with
#                           the PL/pgSQL one, as on a managed source
#   pgt_capture DB          "c" or "plpgsql": what DB's capture triggers run
#   pgt_start DB            starts `pgtandem run`; sets PGT_PID, PGT_T0
#   pgt_stop                SIGTERM, wait; a second SIGTERM, then SIGKILL, if it hangs
#   pgt_hwm_kib             VmHWM of the running daemon
#   pgt_done_sql XID AID V  a query true on the target once the transaction XID
#                           is applied (see below)

# shellcheck disable=SC2034  # PGT_T0 is read by workloads.sh
PGT_PID='' PGT_T0=''
PGT_RUNS=0

pgt() {
  local db=$1
  shift
  "$PGTANDEM" --config "$BENCH_DIR/pgt-$db.json" "$@"
}

pgt_config() {
  local db=$1
  local library=''
  [[ -z $PGTANDEM_CAPTURE ]] || library=", \"capture_library\": \"$PGTANDEM_CAPTURE\""
  _pgt_config_file "$db" "$library" >"$BENCH_DIR/pgt-$db.json"
  _pgt_config_file "$db" ', "capture": "plpgsql"' >"$BENCH_DIR/pgt-$db-plpgsql.json"
}

pgt_capture() {
  sql src "$1" -c "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'pgtandem_capture'
                     AND tgfoid = to_regproc('pgtandem.capture_row')) THEN 'c' ELSE 'plpgsql' END"
}

_pgt_config_file() {
  local db=$1 capture=$2
  cat <<EOF
{
  // bench/run: one sync over the pgbench tables and the lag markers.
  "nodes": {
    "src": { "dsn": "$(dsn src "$db")"$capture },
    "dst": { "dsn": "$(dsn dst "$db")" }
  },
  "syncs": [
    { "name": "bench", "source": "src", "targets": ["dst"],
      "tables": ["public.pgbench_*", "public.bench_marker"] }
  ],
  "log": { "level": "info" }
}
EOF
}

pgt_reset() {
  local db=$1 install=${2:-}
  [[ -z $PGT_PID ]] || { echo "bench: pgt_reset while the daemon runs" >&2; return 1; }
  {
    pgt "$db" uninstall &&
      pgt "$db" uninstall --node dst &&
      case $install in
        install) pgt "$db" install ;;
        install-plpgsql) "$PGTANDEM" --config "$BENCH_DIR/pgt-$db-plpgsql.json" install ;;
      esac
  } >>"$BENCH_DIR/pgtandem-cli.log" 2>&1 || {
    echo "bench: pgtandem install/uninstall failed on $db; last lines of its log:" >&2
    tail -n 20 "$BENCH_DIR/pgtandem-cli.log" >&2
    return 1
  }
}

pgt_start() {
  local db=$1
  PGT_RUNS=$((PGT_RUNS + 1))
  local log=$BENCH_DIR/logs/pgtandem-$PGT_RUNS.log
  PGT_T0=$(now)
  "$PGTANDEM" --config "$BENCH_DIR/pgt-$db.json" run 2>"$log" &
  PGT_PID=$!
}

pgt_hwm_kib() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$PGT_PID/status" 2>/dev/null
}

pgt_stop() {
  [[ -n $PGT_PID ]] || return 0
  local pid=$PGT_PID i
  kill -TERM "$pid" 2>/dev/null
  # The first SIGTERM lets the batch in flight commit (at most one batch).
  for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench: pgtandem (pid $pid) still running 60 s after SIGTERM; sending it again" >&2
    kill -TERM "$pid" 2>/dev/null
    sleep 5
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  PGT_PID=''
}

# pgtandem applies a window of more than batch.max_rows deltas in several
# target transactions, in delta order, not key order, so no single row tells
# when a backlog is done (Bucardo applies a sync run in one transaction, where
# the last aid does). Done = the target's progress row says the backlog's
# transaction XID is visible in its applied snapshot and no split window is
# open, and aid AID holds the source's value V.
pgt_done_sql() {
  local xid=$1 aid=$2 value=$3
  echo "SELECT coalesce((SELECT abalance FROM pgbench_accounts WHERE aid = $aid) = $value, false)
     AND coalesce((SELECT pg_visible_in_snapshot('$xid'::xid8, applied_snapshot::pg_snapshot) AND window_end IS NULL
                   FROM pgtandem.progress WHERE sync = 'bench'), false)"
}
