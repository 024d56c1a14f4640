# shellcheck shell=bash
# A throwaway PostgreSQL cluster, for ./test, bench/ and contrib/demo.
# Source this file, then:
#   pg_check                       check what pg_start needs, naming the first
#                                  thing missing in one line; export PG_BIN
#   pg_start [-c name=value ...]   start one in a temp dir on a free port and
#                                  export DATABASE_URL, PG_BIN and PG_DIR
#   pg_stop                        stop it and remove its directory
# It needs the server binaries (initdb, pg_ctl, postgres) and python3 (for a
# free port). As root the server runs as the postgres user, since PostgreSQL
# refuses root; that takes runuser and the user postgres.

pg_find_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && [ -x "$(dirname "$(command -v pg_ctl)")/initdb" ]; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
      echo "$d"
      return
    fi
  done
  echo "$0: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; install them: apt-get install postgresql (Fedora: dnf install postgresql-server)" >&2
  return 1
}

pg_check() {
  PG_BIN=$(pg_find_bin) || return 1
  export PG_BIN
  if ! command -v python3 >/dev/null 2>&1; then
    echo "$0: python3 not found; install it: apt-get install python3" >&2
    return 1
  fi
  [ "$(id -u)" = 0 ] || return 0
  if ! command -v runuser >/dev/null 2>&1; then
    echo "$0: runuser not found (as root, PostgreSQL runs as the user postgres); install it: apt-get install util-linux" >&2
    return 1
  fi
  if ! id postgres >/dev/null 2>&1; then
    echo "$0: no user postgres to run PostgreSQL as (it refuses root); apt-get install postgresql creates it, or run as a normal user" >&2
    return 1
  fi
}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  pg_check || return 1
  PG_DIR=$(mktemp -d /tmp/spartakus-pg.XXXXXX)
  export PG_DIR
  chmod 755 "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    cat "$PG_DIR/initdb.log" >&2
    return 1
  fi
  local opts="-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300"
  local arg
  for arg in "$@"; do opts="$opts $arg"; done
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o "$opts" start >/dev/null; then
    cat "$PG_DIR/server.log" >&2
    return 1
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
