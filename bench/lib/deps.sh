# shellcheck shell=bash
# Installs what bench/run needs on Debian 12, as root (source it, don't run it).
#
#   deps_ensure    pgtandem's build dependencies and PostgreSQL 15 (through
#                  scripts/ensure-deps), then Bucardo 5.6, its Perl modules and
#                  postgresql-plperl-15 pinned to the installed server version.
#
# Pitfalls of installing Bucardo 5.6 on PostgreSQL 15 handled here (numbers as
# in the Bucardo baseline notes):
#  1. postgresql-plperl-15's only candidate may be a newer point release whose
#     Depends pulls a server upgrade: it is pinned to postgresql-15's version.
#  2. another apt-get may hold the dpkg lock: wait for it up to 10 minutes.
#  3. bucardo's postinst tries localhost:5432 and prints connection errors and
#     "cannot be upgraded to version 5"; that is noise (rc 0), so its output
#     goes to a log shown only when the install fails. The init script and
#     /etc/default/bucardo are never used.

DEPS_APT_OPTS=(-o DPkg::Lock::Timeout=600 -y --no-install-recommends)

# True when every named package is installed.
_deps_installed() {
  local package status
  for package in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [[ $status == installed ]] || return 1
  done
}

# Runs apt-get update when something is missing, unless the package lists
# were refreshed in the last hour (scripts/ensure-deps may just have done it).
_deps_apt_update() {
  [[ -n ${_DEPS_UPDATED:-} ]] && return 0
  if find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | grep -q .; then
    _DEPS_UPDATED=1
    return 0
  fi
  apt-get -o DPkg::Lock::Timeout=600 update >>"$1" 2>&1
  _DEPS_UPDATED=1
}

deps_ensure() {
  local root=$1 log=$2
  if ((EUID != 0)); then
    echo "bench: must run as root (it installs packages and runs clusters as postgres)" >&2
    return 1
  fi
  # pgtandem's own dependencies, PostgreSQL 15 among them.
  "$root/scripts/ensure-deps" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; return 1; }
  local base=(bucardo libdbd-pg-perl libdbix-safe-perl libboolean-perl postgresql-plperl-15 util-linux procps)
  _deps_installed "${base[@]}" && return 0
  local server
  server=$(dpkg-query -W -f='${Version}' postgresql-15)
  echo "bench: installing Bucardo, its Perl modules and postgresql-plperl-15=$server (pinned to the server)"
  _deps_apt_update "$log"
  if ! DEBIAN_FRONTEND=noninteractive apt-get "${DEPS_APT_OPTS[@]}" install \
    bucardo libdbd-pg-perl libdbix-safe-perl libboolean-perl \
    "postgresql-plperl-15=$server" util-linux procps >>"$log" 2>&1; then
    echo "bench: apt-get install failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
}
