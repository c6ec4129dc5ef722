#!/usr/bin/env bash
# Starts the system services the integration tests need, when they are installed but not
# running: dockerd (rootful, no iptables, no bridge: these machines have no outside network) and
# the PostgreSQL 15 cluster, with an `ascendnet` role and database for the tests.
# Usage: scripts/services.sh [docker] [postgres]   (default: both)
set -uo pipefail
say() { printf '\033[1m[services]\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m[services]\033[0m %s\n' "$*" >&2; }

PG_USER=${ASCENDNET_PG_USER:-ascendnet}
PG_PASSWORD=${ASCENDNET_PG_PASSWORD:-ascendnet}
PG_DB=${ASCENDNET_PG_DB:-ascendnet}

start_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null; then warn "dockerd is not installed (make setup installs docker.io as root)"; return 1; fi
  if [ "$(id -u)" != 0 ]; then warn "dockerd is not running and only root can start it here"; return 1; fi
  say "starting dockerd"
  mkdir -p /var/log
  nohup dockerd --iptables=false --ip6tables=false --bridge=none >>/var/log/ascendnet-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { say "dockerd is up"; return 0; }
    sleep 0.5
  done
  warn "dockerd did not come up; see /var/log/ascendnet-dockerd.log"
  return 1
}

start_postgres() {
  if ! command -v pg_lsclusters >/dev/null; then warn "PostgreSQL is not installed (make setup installs it as root)"; return 1; fi
  if [ "$(id -u)" != 0 ]; then
    pg_isready -q -h 127.0.0.1 && return 0
    warn "PostgreSQL is not running and only root can start it here"; return 1
  fi
  local ver
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
    say "creating PostgreSQL $ver cluster"
    pg_createcluster "$ver" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
    say "starting PostgreSQL $ver"
    pg_ctlcluster "$ver" main start || { warn "pg_ctlcluster failed"; return 1; }
  fi
  for _ in $(seq 1 40); do pg_isready -q -h 127.0.0.1 && break; sleep 0.25; done
  pg_isready -q -h 127.0.0.1 || { warn "PostgreSQL does not answer on 127.0.0.1"; return 1; }
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE $PG_USER LOGIN CREATEDB CREATEROLE PASSWORD '$PG_PASSWORD'\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"" | grep -q 1 \
    || su postgres -c "createdb -O $PG_USER $PG_DB"
  say "PostgreSQL is up: postgresql://$PG_USER:***@127.0.0.1:5432/$PG_DB"
}

rc=0
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(docker postgres)
for t in "${targets[@]}"; do
  case "$t" in
    docker) start_docker || rc=1 ;;
    postgres) start_postgres || rc=1 ;;
    *) warn "unknown service $t"; rc=2 ;;
  esac
done
exit $rc
