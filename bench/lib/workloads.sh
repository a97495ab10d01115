# shellcheck shell=bash
# The benchmark's workloads (source it). Each appends its measurements to
# $BENCH_RAW as JSON lines; bench/lib/report.pl turns them into the table.
#
#   w_overhead REPS SECONDS      1. pgbench TPS on the source: no capture,
#                                   each tool's triggers with its daemon
#                                   stopped and running (pgtandem's default
#                                   capture: C, as the module is there), and
#                                   pgtandem's PL/pgSQL capture, a managed
#                                   source's, with its daemon stopped
#   w_catchup REPS SIZES...      2. + 4. catch-up time of a backlog, the bare
#                                   COPY limit, and the daemons' peak RSS
#   w_lag REPS SECONDS           3. marker lag under pgbench -R 200
#
# Databases: bench_pgt holds pgtandem's capture, bench_buc Bucardo's (each
# on both clusters), so one tool's triggers never exist where the other is
# measured; bench_pgt50 (scale 50) holds the 5,000,000-row backlog.
#
# A backlog is every pgbench_accounts row of a database updated, as the issue
# defines the 1M one: 100k on bench_pgt1 (scale 1), 1M on bench_pgt, 5M on
# bench_pgt50, so that the three sizes differ in size only. Bucardo is set up
# on bench_buc alone and runs the 1M backlog there. --quick runs the 1M only.

PGBENCH_CLIENTS=(-c 4 -j 2)

# The database whose every account makes a backlog of ROWS; account ROWS is its last.
_catchup_db() {
  case $1 in
    100000) echo bench_pgt1 ;;
    1000000) echo bench_pgt ;;
    5000000) echo bench_pgt50 ;;
    *) echo "bench: no database holds a backlog of $1 rows (100000, 1000000 or 5000000)" >&2; return 1 ;;
  esac
}

# pgbench against the source database DB with extra arguments; prints TPS.
_pgbench_tps() {
  local db=$1 out
  shift
  out=$("$PG_BIN/pgbench" "${PGBENCH_CLIENTS[@]}" "$@" -h 127.0.0.1 -p "$SRC_PORT" -U postgres "$db" 2>&1)
  printf '%s\n' "$out" >>"$BENCH_DIR/logs/pgbench.log"
  awk '/^tps = / { print $3; exit }' <<<"$out"
}

# Waits until a new marker row, committed on the source now, is on the target:
# the daemon is connected and has caught up with everything before it.
_barrier() {
  local db=$1 id
  id=$(sql src "$db" -c "INSERT INTO bench_marker (id, note) SELECT coalesce(max(id), 0) + 1, 'barrier' FROM bench_marker RETURNING id") || return 1
  perl "$BENCH_LIB/waitfor.pl" --dsn "$(dbi dst "$db")" --interval 0.05 --timeout 180 \
    --sql "SELECT EXISTS (SELECT 1 FROM bench_marker WHERE id = $id)" >/dev/null
}

_tool_start() {
  case $1 in
    pgtandem) pgt_start bench_pgt ;;
    bucardo) buc_start ;;
  esac
}
_tool_stop() {
  case $1 in
    pgtandem) pgt_stop ;;
    bucardo) buc_stop ;;
  esac
}

# ---------------------------------------------------------------------------
# 1. Source overhead.

# One pgbench run under CONDITION (none, pgtandem-stopped, pgtandem-running,
# pgtandem_plpgsql-stopped, bucardo-stopped, bucardo-running); records its TPS
# and, for pgtandem, which capture its install chose.
_overhead_run() {
  local condition=$1 rep=$2 seconds=$3
  local tool=${condition%-*} state=${condition#*-} db capture=''
  case $tool in
    none) db=bench_pgt; pgt_reset bench_pgt ;;
    pgtandem) db=bench_pgt; pgt_reset bench_pgt install ;;
    pgtandem_plpgsql) db=bench_pgt; pgt_reset bench_pgt install-plpgsql ;;
    bucardo) db=bench_buc; buc_reset bench_buc ;;
  esac || return 1
  [[ $tool != pgtandem* ]] || capture=",\"capture\":\"$(pgt_capture "$db")\""
  sql src "$db" -c "VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
  if [[ $state == running ]]; then
    if ! { _tool_start "$tool" && _barrier "$db"; }; then
      note "$condition: daemon did not carry a marker to the target in 180 s"
      _tool_stop "$tool"
      return 1
    fi
  fi
  checkpoint_both
  local tps t0
  t0=$(now)
  tps=$(_pgbench_tps "$db" -T "$seconds")
  [[ $state == running ]] && _tool_stop "$tool"
  [[ -n $tps ]] || { note "$condition: pgbench failed (see logs/pgbench.log)"; return 1; }
  note "$(printf '%-18s rep %d: %8.1f TPS' "$condition" "$rep" "$tps")"
  record "{\"w\":\"overhead\",\"condition\":\"$condition\",\"rep\":$rep,\"tps\":$tps$capture,\"t0\":$t0,\"t1\":$(now)}"
}

w_overhead() {
  local reps=$1 seconds=$2 rep group
  log_step "1. source overhead: pgbench TPC-B -c 4 -j 2 -T $seconds on the source, $reps rounds"
  # Groups rotate from round to round, and so does stopped/running inside a
  # group, so slow drift of the machine falls on every condition alike.
  local groups=(none pgtandem bucardo)
  for ((rep = 1; rep <= reps; rep++)); do
    local i
    for ((i = 0; i < 3; i++)); do
      group=${groups[(i + rep - 1) % 3]}
      if [[ $group == none ]]; then
        _overhead_run none "$rep" "$seconds"
      elif ((rep % 2)); then
        _overhead_run "$group-stopped" "$rep" "$seconds"
        _overhead_run "$group-running" "$rep" "$seconds"
      else
        _overhead_run "$group-running" "$rep" "$seconds"
        _overhead_run "$group-stopped" "$rep" "$seconds"
      fi
      # pgtandem's PL/pgSQL capture, between its default runs and the next group.
      if [[ $group == pgtandem ]]; then _overhead_run pgtandem_plpgsql-stopped "$rep" "$seconds"; fi
    done
  done
  pgt_reset bench_pgt
  buc_reset bench_buc
}

# ---------------------------------------------------------------------------
# 2. Catch-up, and 4. the daemons' memory during it.

# Makes the backlog: one UPDATE of every account in DB, in one transaction;
# AID is its last account. Sets BACKLOG_XID, BACKLOG_VALUE (account AID's
# balance after it) and BACKLOG_S. No vacuum first: the source's table was
# vacuumed when its database was created or by the settle_both of the run
# before, and nothing has written to it since; the timed run that follows
# starts with settle_both, which vacuums both sides again.
_backlog() {
  local db=$1 aid=$2 t0
  t0=$(now)
  BACKLOG_XID=$(sql src "$db" -c "BEGIN" \
    -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid > 0" \
    -c "SELECT pg_current_xact_id()" -c "COMMIT") || return 1
  BACKLOG_S=$(secs_between "$t0" "$(now)")
  BACKLOG_VALUE=$(sql src "$db" -c "SELECT abalance FROM pgbench_accounts WHERE aid = $aid")
}

# Confirms target = source with an md5 over every account; re-copies the
# target when not, so that the next run starts level.
_confirm() {
  local db=$1 a b
  a=$(accounts_md5 src "$db")
  b=$(accounts_md5 dst "$db")
  if [[ -n $a && $a == "$b" ]]; then
    echo true
  else
    note "md5 of pgbench_accounts differs between source and target of $db; copying the target again" >&2
    env_resync "$db" >&2
    echo false
  fi
}

_catchup_pgtandem() {
  local rows=$1 rep=$2 db aid seconds hwm ok
  db=$(_catchup_db "$rows") || return 1
  aid=$rows
  pgt_reset "$db" install && _backlog "$db" "$aid" || return 1
  settle_both
  pgt_start "$db"
  seconds=$(perl "$BENCH_LIB/waitfor.pl" --dsn "$(dbi dst "$db")" --since "$PGT_T0" --interval 0.02 \
    --timeout "$CATCHUP_TIMEOUT" --sql "$(pgt_done_sql "$BACKLOG_XID" "$aid" "$BACKLOG_VALUE")" 2>>"$BENCH_DIR/logs/waitfor.log")
  hwm=$(pgt_hwm_kib)
  local t1
  t1=$(now)
  pgt_stop
  ok=$(_confirm "$db")
  [[ $seconds == TIMEOUT ]] && seconds=null
  note "$(printf 'pgtandem %8d rows rep %d: %s s (backlog UPDATE %s s), peak RSS %s KiB, md5 %s' \
    "$rows" "$rep" "$seconds" "$BACKLOG_S" "${hwm:-?}" "$ok")"
  record "{\"w\":\"catchup\",\"tool\":\"pgtandem\",\"rows\":$rows,\"rep\":$rep,\"seconds\":$seconds,\"update_s\":$BACKLOG_S,\"md5_ok\":$ok,\"rss_kib\":${hwm:-null},\"t0\":$PGT_T0,\"t1\":$t1}"
}

_catchup_bucardo() {
  local rows=$1 rep=$2 db=bench_buc aid=1000000 seconds ok rss
  buc_reset "$db" && _backlog "$db" "$aid" || return 1
  settle_both
  buc_start || return 1
  perl "$BENCH_LIB/rss.pl" --pidfile "$(buc_mcp_pidfile)" --match '^Bucardo ' >"$BENCH_DIR/rss.json" &
  local sampler=$!
  # Bucardo applies a sync run in one target transaction: the last account
  # changing means the whole run is visible (as in the baseline).
  seconds=$(perl "$BENCH_LIB/waitfor.pl" --dsn "$(dbi dst "$db")" --since "$BUC_T0" --interval 0.02 \
    --timeout "$CATCHUP_TIMEOUT" \
    --sql "SELECT abalance = $BACKLOG_VALUE FROM pgbench_accounts WHERE aid = $aid" 2>>"$BENCH_DIR/logs/waitfor.log")
  local t1
  t1=$(now)
  kill -TERM "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  buc_stop
  rss=$(cat "$BENCH_DIR/rss.json")
  ok=$(_confirm "$db")
  [[ $seconds == TIMEOUT ]] && seconds=null
  note "$(printf 'bucardo  %8d rows rep %d: %s s (backlog UPDATE %s s), md5 %s, memory %s' \
    "$rows" "$rep" "$seconds" "$BACKLOG_S" "$ok" "$rss")"
  record "{\"w\":\"catchup\",\"tool\":\"bucardo\",\"rows\":$rows,\"rep\":$rep,\"seconds\":$seconds,\"update_s\":$BACKLOG_S,\"md5_ok\":$ok,\"memory\":${rss:-null},\"t0\":$BUC_T0,\"t1\":$t1}"
}

# The physical limit: the same rows, COPY out of the source piped into COPY
# into an empty table with the same definition and primary key on the target.
_catchup_copy() {
  local rows=$1 rep=$2 db t0 seconds
  db=$(_catchup_db "$rows") || return 1
  sql dst "$db" -c "CREATE TABLE IF NOT EXISTS bench_copy (LIKE pgbench_accounts INCLUDING ALL)" \
    -c "TRUNCATE bench_copy" || return 1
  settle_both
  t0=$(now)
  sql src "$db" -c "COPY (SELECT * FROM pgbench_accounts WHERE aid > 0) TO STDOUT" |
    sql dst "$db" -c "COPY bench_copy FROM STDIN" || return 1
  seconds=$(secs_between "$t0" "$(now)")
  sql dst "$db" -c "TRUNCATE bench_copy"
  note "$(printf 'bare COPY %7d rows rep %d: %s s' "$rows" "$rep" "$seconds")"
  record "{\"w\":\"catchup\",\"tool\":\"copy\",\"rows\":$rows,\"rep\":$rep,\"seconds\":$seconds,\"t0\":$t0,\"t1\":$(now)}"
}

w_catchup() {
  local reps=$1 rep rows i
  shift
  local sizes=("$@")
  log_step "2. catch-up of backlogs of ${sizes[*]} rows (replicator stopped, then started), $reps rounds (Bucardo $BUCARDO_CATCHUP_REPS); 4. peak RSS"
  local tools=(pgtandem bucardo copy)
  for ((rep = 1; rep <= reps; rep++)); do
    for rows in "${sizes[@]}"; do
      for ((i = 0; i < 3; i++)); do
        local tool=${tools[(i + rep - 1) % 3]}
        # Bucardo runs where it is set up, bench_buc; at 5M it would take ~7
        # minutes a run anyway (see README); BUCARDO_CATCHUP_REPS rounds.
        [[ $tool == bucardo && ($(_catchup_db "$rows") != bench_pgt || $rep -gt $BUCARDO_CATCHUP_REPS) ]] && continue
        "_catchup_$tool" "$rows" "$rep" || note "$tool $rows rows rep $rep: failed"
      done
    done
  done
  local db
  for db in bench_pgt bench_pgt1 bench_pgt50; do
    [[ -n ${DB_CREATED[$db]:-} ]] && sql dst "$db" -c "DROP TABLE IF EXISTS bench_copy"
  done
  pgt_reset bench_pgt
  buc_reset bench_buc
}

# ---------------------------------------------------------------------------
# 3. Lag.

_lag_run() {
  local tool=$1 rep=$2 seconds=$3 db result tps sampler
  case $tool in
    pgtandem) db=bench_pgt; pgt_reset "$db" install ;;
    bucardo) db=bench_buc; buc_reset "$db" ;;
  esac || return 1
  sql src "$db" -c "VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
  checkpoint_both
  if ! { _tool_start "$tool" && _barrier "$db"; }; then
    note "$tool: daemon did not carry a marker to the target in 180 s"
    _tool_stop "$tool"
    return 1
  fi
  case $tool in
    pgtandem) perl "$BENCH_LIB/rss.pl" --pid "$PGT_PID" >"$BENCH_DIR/cpu.json" & ;;
    bucardo) perl "$BENCH_LIB/rss.pl" --pidfile "$(buc_mcp_pidfile)" --match '^Bucardo ' >"$BENCH_DIR/cpu.json" & ;;
  esac
  sampler=$!
  local t0 t1
  t0=$(now)
  _pgbench_tps "$db" -R 200 -T "$seconds" >"$BENCH_DIR/lag-tps" &
  local bench=$!
  result=$(perl "$BENCH_LIB/lag.pl" --src "$(dbi src "$db")" --dst "$(dbi dst "$db")" --duration "$seconds" \
    --every 0.1 --poll 0.005 --drain 60)
  wait "$bench"
  t1=$(now)
  kill -TERM "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  _tool_stop "$tool"
  tps=$(cat "$BENCH_DIR/lag-tps")
  local cpu
  cpu=$(perl -MJSON::PP -0777 -ne 'print decode_json($_)->{cpu_s} // "null"' "$BENCH_DIR/cpu.json" 2>/dev/null)
  [[ -n $result ]] || { note "$tool lag rep $rep: lag.pl failed"; return 1; }
  note "$(printf '%-8s rep %d: %s, pgbench %s TPS, daemon CPU %s s' "$tool" "$rep" "$result" "${tps:-?}" "${cpu:-?}")"
  record "{\"w\":\"lag\",\"tool\":\"$tool\",\"rep\":$rep,\"lag\":$result,\"pgbench_tps\":${tps:-null},\"daemon_cpu_s\":${cpu:-null},\"seconds\":$seconds,\"t0\":$t0,\"t1\":$t1}"
}

w_lag() {
  local reps=$1 seconds=$2 rep
  log_step "3. lag: a marker every 100 ms, polled every 5 ms, under pgbench -R 200 -c 4 -j 2 -T $seconds, $reps rounds"
  for ((rep = 1; rep <= reps; rep++)); do
    if ((rep % 2)); then
      _lag_run pgtandem "$rep" "$seconds"
      _lag_run bucardo "$rep" "$seconds"
    else
      _lag_run bucardo "$rep" "$seconds"
      _lag_run pgtandem "$rep" "$seconds"
    fi
  done
  pgt_reset bench_pgt
  buc_reset bench_buc
}
