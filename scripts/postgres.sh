#!/usr/bin/env bash
# A throwaway PostgreSQL server of cioq's own, for `make test`, `make run`
# and `make bench`: its data directory in a temp dir, its own port, trust
# authentication for the superuser "cioq" on HOST only, never the machine's
# own PostgreSQL.
#
# Usage: scripts/postgres.sh start HOST PORT   (initdb if needed, start; a no-op when it answers)
#        scripts/postgres.sh stop HOST PORT    (stop it and remove its data directory)
#        scripts/postgres.sh halt HOST PORT    (stop it, keeping its data directory)
#        scripts/postgres.sh url HOST PORT     (print its connection string)
#
# PostgreSQL is installed with apt-get (package postgresql, without the
# package's default cluster) when initdb is missing. As root, the server runs
# as the user "postgres" (initdb refuses root). The data directory is
# ${TMPDIR:-/tmp}/cioq-pg-PORT unless CIOQ_PG_DIR names one.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop|halt|url HOST PORT}
host=${2:-127.0.0.1}
port=${3:-6533}
dir=${CIOQ_PG_DIR:-${TMPDIR:-/tmp}/cioq-pg-$port}

if [ "$cmd" = url ]; then
  echo "postgres://cioq@$host:$port/postgres?sslmode=disable"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# bindir prints the directory of pg_ctl, initdb and pg_isready: pg_ctl's on
# PATH, else the newest /usr/lib/postgresql/N/bin.
bindir() {
  # On PATH (a link into the server's bin directory, as some images have,
  # is followed: pg_isready lives there too).
  if command -v pg_ctl >/dev/null 2>&1; then
    local d
    d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    if [ -x "$d/initdb" ] && [ -x "$d/pg_isready" ]; then
      echo "$d"
      return
    fi
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_isready" ]; then
    echo "$d"
  fi
}

bin=$(bindir)
if [ -z "$bin" ] && [ "$cmd" = start ]; then
  echo "postgres.sh: installing postgresql with apt-get" >&2
  # The package would create and start a cluster of its own on 5432: tell
  # it not to; cioq's tests start theirs.
  $SUDO mkdir -p /etc/postgresql-common
  if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  bin=$(bindir)
fi
if [ -z "$bin" ]; then
  [ "$cmd" = stop ] || [ "$cmd" = halt ] && exit 0
  echo "postgres.sh: no initdb found after installing postgresql" >&2
  exit 1
fi

# as runs a command as the server's user: "postgres" when we are root.
as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ready() { "$bin/pg_isready" -q -h "$host" -p "$port" -t 3 >/dev/null 2>&1; }

case "$cmd" in
  start)
    if ready; then exit 0; fi
    # Ours, running but slow to answer (a busy machine): wait for it.
    if [ -f "$dir/postmaster.pid" ] && kill -0 "$(head -n 1 "$dir/postmaster.pid")" 2>/dev/null; then
      for _ in $(seq 1 60); do
        if ready; then exit 0; fi
        sleep 0.5
      done
      echo "postgres.sh: the server in $dir runs but does not answer on $host:$port; see $dir/server.log" >&2
      exit 1
    fi
    case "$host" in
      127.0.0.1|localhost|::1) ;;
      *) echo "postgres.sh: nothing answers at $host:$port and it is not local" >&2; exit 1 ;;
    esac
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$dir"
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as "$bin/initdb" -D "$dir" -U cioq --auth=trust -E UTF8 --no-locale >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2; exit 1; }
    fi
    echo "postgres.sh: starting PostgreSQL on $host:$port (data in $dir)" >&2
    # fsync off: a test server whose data is thrown away; the socket in the
    # data directory, not /var/run/postgresql.
    as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=$host -p $port -c unix_socket_directories=$dir -c fsync=off -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop|halt)
    if [ -f "$dir/postmaster.pid" ]; then
      as "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    if [ "$cmd" = stop ]; then rm -rf "$dir" "$dir.initdb.log"; fi
    ;;
  *)
    echo "postgres.sh: unknown command $cmd (start, stop, halt or url)" >&2
    exit 2
    ;;
esac
