# shellcheck shell=bash
# Throwaway PostgreSQL 15 clusters for scripts (bash; source it, don't run it).
#
# The bash twin of tests/support/pg_cluster.cpp: each cluster lives in a
# directory the caller made (and removes), listens on 127.0.0.1 only, on a
# free port, with its unix socket in that directory (never /var/run/postgresql,
# where Debian's own cluster lives), trust authentication for local and
# loopback connections. PostgreSQL refuses to run as root, so when the
# caller is root the server tools run as the `postgres` OS user (created by
# the postgresql-15 package; scripts/ensure-deps installs it).
#
#   clusters_init NAME DIR       initdb into DIR/NAME (DIR must exist)
#   clusters_start NAME          start on a free port; sets CLUSTER_PORT[NAME]
#   clusters_stop_all            stop every cluster started here (immediate)
#   clusters_psql NAME DB ARGS   psql -X to it as user postgres over TCP
#   clusters_free_port           a free loopback port for another server
#
# Only processes this file started are ever signalled: the postmaster PID is
# read from its own postmaster.pid and checked against its data directory.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

declare -gA CLUSTER_DIR=()   # NAME -> directory holding the data dir, socket and log
declare -gA CLUSTER_PORT=()  # NAME -> TCP port on 127.0.0.1
declare -ga CLUSTER_NAMES=() # in creation order

# Runs a server tool as the cluster owner, from a directory it may read
# (`postgres` cannot enter /root, and initdb and pg_ctl complain about that).
# Descriptors 3-9 of the caller are closed first: a postmaster would otherwise
# keep them (say, a pipe the caller's caller reads to its end) open for life.
_clusters_as_owner() {
  local dir=$1
  shift
  if ((EUID == 0)); then
    local runuser=runuser
    [[ -x /usr/sbin/runuser ]] && runuser=/usr/sbin/runuser
    set -- "$runuser" -u postgres -- "$@"
  fi
  (
    exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
    cd "$dir" && exec "$@"
  )
}

# Hands DIR to the cluster owner when running as root.
clusters_prepare_dir() {
  local dir=$1
  if ((EUID == 0)); then
    if ! id postgres >/dev/null 2>&1; then
      echo "clusters: there is no 'postgres' OS user to run the servers; is postgresql-15 installed (scripts/ensure-deps)?" >&2
      return 1
    fi
    chown postgres:postgres "$dir"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
_clusters_port_busy() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# A port nobody listens on, below Linux's ephemeral range (32768-60999) so
# that outgoing connections and the test harness's ports don't race for it.
_clusters_free_port() {
  local attempt port name taken
  for ((attempt = 0; attempt < 100; attempt++)); do
    port=$((20000 + RANDOM % 12000))
    taken=0
    for name in "${!CLUSTER_PORT[@]}"; do
      [[ ${CLUSTER_PORT[$name]} == "$port" ]] && taken=1
    done
    ((taken)) && continue
    _clusters_port_busy "$port" && continue
    echo "$port"
    return 0
  done
  echo "clusters: found no free port on 127.0.0.1 in 100 attempts" >&2
  return 1
}

# A free port on 127.0.0.1 for a server of the caller's own (the demo's
# metrics endpoint), chosen as the clusters' ports are.
clusters_free_port() { _clusters_free_port; }

# The PID of the postmaster running on DATA_DIR, or nothing. A stale
# postmaster.pid may name a PID since given to an unrelated process, so the
# process must also be running in that data directory.
clusters_postmaster_pid() {
  local data=$1 pid
  [[ -r $data/postmaster.pid ]] || return 0
  read -r pid <"$data/postmaster.pid" || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(readlink -f "$data")" ]] && echo "$pid"
  return 0
}

clusters_init() {
  local name=$1 dir=$2
  local data=$dir/$name
  CLUSTER_DIR[$name]=$dir
  CLUSTER_NAMES+=("$name")
  # --no-sync: thrown away afterwards. C.UTF-8 is built into glibc and sorts
  # bytewise, so every host gets the same collation.
  if ! _clusters_as_owner "$dir" "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync --no-instructions >"$dir/$name-initdb.log" 2>&1; then
    echo "clusters: initdb of '$name' failed:" >&2
    tail -n 30 "$dir/$name-initdb.log" >&2
    return 1
  fi
  # Appended as the owner would: root can write it, and the file stays the
  # postgres user's (it must read it again at every start).
  cat >>"$data/postgresql.conf" <<EOF

# ---- throwaway cluster (scripts/lib/clusters.sh) ----
# Loopback only, socket in our own directory; the port is given at start.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
# Thrown away afterwards: durability buys nothing.
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
# English messages and UTC timestamps whatever the host.
lc_messages = 'C'
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

clusters_start() {
  local name=$1
  local dir=${CLUSTER_DIR[$name]}
  local data=$dir/$name log=$dir/$name.log
  local attempt port
  # Between picking a port and binding it, someone else may take it: retry.
  for ((attempt = 1; attempt <= 5; attempt++)); do
    port=$(_clusters_free_port) || return 1
    : >"$log"
    ((EUID == 0)) && chown postgres:postgres "$log"
    if _clusters_as_owner "$dir" "$PG_BIN/pg_ctl" start -D "$data" -l "$log" -w -t 60 -s \
      -o "-p $port" >>"$dir/$name-pg_ctl.log" 2>&1; then
      CLUSTER_PORT[$name]=$port
      return 0
    fi
    grep -q 'could not bind\|Address already in use' "$log" || break
  done
  echo "clusters: could not start '$name'; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  return 1
}

# Stops one cluster at once (immediate: it is thrown away, nothing to flush).
clusters_stop() {
  local name=$1
  local dir=${CLUSTER_DIR[$name]}
  local data=$dir/$name pid
  pid=$(clusters_postmaster_pid "$data")
  [[ -n $pid ]] || return 0
  _clusters_as_owner "$dir" "$PG_BIN/pg_ctl" stop -D "$data" -m immediate -w -t 30 -s >/dev/null 2>&1 || true
  # Last resort, if pg_ctl could not stop it: the postmaster we started, by PID.
  pid=$(clusters_postmaster_pid "$data")
  if [[ -n $pid ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      [[ -z $(clusters_postmaster_pid "$data") ]] && break
      sleep 0.1
    done
  fi
}

clusters_stop_all() {
  local name
  for name in "${CLUSTER_NAMES[@]}"; do clusters_stop "$name"; done
}

clusters_dsn() {
  echo "host=127.0.0.1 port=${CLUSTER_PORT[$1]} dbname=$2 user=postgres"
}

clusters_psql() {
  local name=$1 db=$2
  shift 2
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${CLUSTER_PORT[$name]}" -U postgres -d "$db" "$@"
}
