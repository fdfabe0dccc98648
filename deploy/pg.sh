#!/usr/bin/env bash
# deploy/pg.sh - the project's private, local PostgreSQL for development and tests.
#
#   deploy/pg.sh start            init (first time) and start the cluster, create the database
#   deploy/pg.sh stop             stop it (pg_ctl stop -m fast); no-op when not running
#   deploy/pg.sh status           exit 0 when running, 3 when not
#   deploy/pg.sh env              print `export BROKER_POSTGRES=...` (use: eval "$(deploy/pg.sh env)")
#   deploy/pg.sh psql [ARGS...]   psql on the database (extra args are passed through)
#   deploy/pg.sh reset-db NAME    drop (WITH (FORCE)) and recreate database NAME
#   deploy/pg.sh apply-sql [DB]   apply deploy/sql/*.sql in lexical order with psql (ON_ERROR_STOP)
#
# Environment (all optional):
#   BROKER_PG_DATA  data directory            (default: <repo>/.pgdata)
#   BROKER_PG_PORT  TCP port on 127.0.0.1     (default: 54329)
#   BROKER_PG_DB    application database      (default: sandboxbroker)
#   BROKER_PG_BIN   PostgreSQL bin directory  (default: /usr/lib/postgresql/15/bin, else the newest installed)
#
# The cluster is private to this checkout: it listens on 127.0.0.1 only, its unix socket and log live
# in <data dir>-run (e.g. <repo>/.pgdata-run/postgres.log), and it never touches a system cluster.
# When run as root the server runs as the `postgres` OS user (PostgreSQL refuses to run as root).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
SQL_DIR="$SCRIPT_DIR/sql"

PGDATA_DIR="${BROKER_PG_DATA:-$REPO/.pgdata}"
PGDATA_DIR="${PGDATA_DIR%/}"
RUN_DIR="${PGDATA_DIR}-run"
LOG_FILE="$RUN_DIR/postgres.log"
PG_PORT="${BROKER_PG_PORT:-54329}"
PG_DB="${BROKER_PG_DB:-sandboxbroker}"
PG_USER="broker"
PG_PASSWORD="broker"
PG_HOST="127.0.0.1"
START_TIMEOUT=30

SERVER_USER=""   # OS user the server runs as; set by resolve_server_user
PG_BIN=""        # PostgreSQL bin dir; set by find_bin

die() { echo "pg.sh: $*" >&2; exit 1; }
info() { echo "pg.sh: $*"; }

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------------------------------
find_bin() {
    local candidate
    if [[ -n "${BROKER_PG_BIN:-}" ]]; then
        [[ -x "$BROKER_PG_BIN/initdb" ]] || die "BROKER_PG_BIN=$BROKER_PG_BIN has no initdb"
        PG_BIN="$BROKER_PG_BIN"
        return 0
    fi
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        PG_BIN=/usr/lib/postgresql/15/bin
        return 0
    fi
    candidate="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sed 's|/bin/initdb$||' | sort -V | tail -n 1 || true)"
    if [[ -n "$candidate" ]]; then
        PG_BIN="$candidate/bin"
        return 0
    fi
    return 1
}

install_postgres() {
    local -a sudo_cmd=()
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "PostgreSQL is not installed and this user cannot install it (no sudo); install the Debian package 'postgresql'"
        sudo_cmd=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available; install PostgreSQL and set BROKER_PG_BIN"
    info "PostgreSQL not found; installing the Debian package 'postgresql'"
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    # The package may create and auto-start its own cluster on 5432; it is left alone on purpose.
}

ensure_bin() {
    if ! find_bin; then
        install_postgres
        find_bin || die "PostgreSQL was installed but no initdb was found under /usr/lib/postgresql/*/bin"
    fi
}

# Client tools (psql, pg_isready) work with any version; prefer the cluster's own.
client_bin() {
    local tool="$1"
    if [[ -z "$PG_BIN" ]]; then find_bin || true; fi
    if [[ -n "$PG_BIN" && -x "$PG_BIN/$tool" ]]; then
        echo "$PG_BIN/$tool"
    elif command -v "$tool" >/dev/null 2>&1; then
        command -v "$tool"
    else
        die "$tool not found; run '$0 start' once (it installs PostgreSQL) or set BROKER_PG_BIN"
    fi
}

# ---------------------------------------------------------------------------------------------------
# the OS user of the server
# ---------------------------------------------------------------------------------------------------
resolve_server_user() {
    if [[ $EUID -eq 0 ]]; then
        SERVER_USER=postgres
    else
        SERVER_USER="$(id -un)"
    fi
}

ensure_server_user() {
    resolve_server_user
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        info "creating the system user 'postgres'"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
}

# Runs a command as the server user (a no-op wrapper when not root).
as_server() {
    if [[ $EUID -eq 0 ]]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u "$SERVER_USER" -- "$@"
        else
            local quoted
            quoted="$(printf '%q ' "$@")"
            su -s /bin/sh "$SERVER_USER" -c "$quoted"
        fi
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------------------------------
# directories
# ---------------------------------------------------------------------------------------------------

# The unix socket path (dir + "/.s.PGSQL.<port>") must fit in sun_path (107 bytes).
socket_dir() {
    local sock="$RUN_DIR/.s.PGSQL.$PG_PORT"
    if (( ${#sock} <= 100 )); then
        echo "$RUN_DIR"
    else
        echo "/tmp/broker-pg-$(id -u "$SERVER_USER")-$PG_PORT"
    fi
}

ensure_dirs() {
    local sockdir
    sockdir="$(socket_dir)"
    mkdir -p "$PGDATA_DIR" "$RUN_DIR" "$sockdir"
    if [[ $EUID -eq 0 ]]; then
        chown "$SERVER_USER:" "$PGDATA_DIR" "$RUN_DIR" "$sockdir"
        if ! as_server test -x "$(dirname "$PGDATA_DIR")"; then
            die "the '$SERVER_USER' user cannot reach $(dirname "$PGDATA_DIR") (check the permissions of its parents, or set BROKER_PG_DATA to a path it can reach)"
        fi
    fi
    if [[ $EUID -ne 0 && ! -O "$PGDATA_DIR" ]]; then
        die "$PGDATA_DIR is owned by $(stat -c %U "$PGDATA_DIR"), not $(id -un); run as root or as that user"
    fi
    chmod 700 "$PGDATA_DIR" "$RUN_DIR" "$sockdir"
}

is_initialized() { [[ -f "$PGDATA_DIR/PG_VERSION" ]]; }

init_cluster() {
    local pwfile sockdir
    sockdir="$(socket_dir)"
    info "initializing a new cluster in $PGDATA_DIR"
    pwfile="$RUN_DIR/.initdb-pw"
    (umask 077; printf '%s\n' "$PG_PASSWORD" > "$pwfile")
    if [[ $EUID -eq 0 ]]; then chown "$SERVER_USER:" "$pwfile"; fi
    if ! as_server "$PG_BIN/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --pwfile="$pwfile" \
            -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 >"$RUN_DIR/initdb.log" 2>&1; then
        rm -f "$pwfile"
        cat "$RUN_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"
    # Local (unix socket) connections are trusted: the socket directory is private to the server user.
    # Host connections need the password (scram-sha-256).
    as_server tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<EOF

# ---- SandboxBroker dev/test settings (deploy/pg.sh) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 300
shared_buffers = 256MB
password_encryption = scram-sha-256
# durability stays on: the tests kill processes and restart Postgres
fsync = on
synchronous_commit = on
full_page_writes = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
# statements per operation for the benchmark (bench/, docs/BENCHMARKS.md)
shared_preload_libraries = 'pg_stat_statements'
EOF
    ensure_wal_settings
}

# Appends "NAME = VALUE" once, after a marker comment: a later line wins in postgresql.conf, so this overrides initdb's
# own line (max_wal_size has one), and an edit made after it by hand is left alone.
ensure_setting() {
    local name="$1" value="$2" why="$3"
    if ! grep -q "^# pg.sh sets $name:" "$PGDATA_DIR/postgresql.conf"; then
        printf "\n# pg.sh sets %s: %s\n%s = %s\n" "$name" "$why" "$name" "$value" | as_server tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
    fi
}

# Checkpoints far enough apart for bursts of leases: a lease writes about 4 KB of WAL, so at 1,000 leases a second the
# default 1GB filled in about four minutes and forced the next checkpoint; after each one the first change of every page
# writes the whole page to the WAL (5.9 KB per lease in a checkpoint's wake, docs/BENCHMARKS.md round 8). lz4 shrinks
# those pages.
ensure_wal_settings() {
    ensure_setting max_wal_size 4GB "WAL between checkpoints (docs/BENCHMARKS.md: full-page writes after a checkpoint)"
    ensure_setting checkpoint_timeout 15min "at most this long between checkpoints"
    ensure_setting wal_compression lz4 "full-page images compressed"
}

# ---------------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------------
is_running() {
    [[ -n "$PG_BIN" ]] || find_bin || return 1
    is_initialized || return 1
    [[ -n "$SERVER_USER" ]] || resolve_server_user
    as_server "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

server_pid() { head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; }

port_in_use() {
    # bash's /dev/tcp: succeeds when something accepts connections on the port.
    (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

client_env() {
    export PGPASSWORD="$PG_PASSWORD"
    export PGCONNECT_TIMEOUT=5
}

run_psql() {
    # run_psql DB [psql args...]
    local db="$1"; shift
    client_env
    "$(client_bin psql)" -X -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"
}

ensure_database() {
    local db="$1" exists
    exists="$(run_psql postgres -v ON_ERROR_STOP=1 -tA -v db="$db" <<'EOF'
SELECT 1 FROM pg_database WHERE datname = :'db';
EOF
)"
    if [[ "$exists" != "1" ]]; then
        info "creating database $db"
        run_psql postgres -q -v ON_ERROR_STOP=1 -v db="$db" <<'EOF'
CREATE DATABASE :"db";
EOF
    fi
}

print_status() {
    if is_running; then
        echo "running: pid $(server_pid), $PG_HOST:$PG_PORT, data $PGDATA_DIR, log $LOG_FILE"
        return 0
    fi
    echo "not running (data $PGDATA_DIR)"
    return 3
}

# ---------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------
with_lock() {
    # Serializes start/stop of this data dir between concurrent invocations (e.g. parallel test runs).
    mkdir -p "$RUN_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN_DIR/.pg.sh.lock"
        flock -w 120 9 || die "timed out waiting for another pg.sh on $PGDATA_DIR"
    fi
    "$@"
}

cmd_start() {
    ensure_bin
    ensure_server_user
    ensure_dirs
    is_initialized || init_cluster

    if is_running; then
        print_status
        ensure_database "$PG_DB"
        return 0
    fi

    if port_in_use; then
        die "port $PG_HOST:$PG_PORT is already in use by another process (set BROKER_PG_PORT to use another port)"
    fi
    # Clusters initialized before a setting was added get it on their next start.
    if ! grep -q "^shared_preload_libraries" "$PGDATA_DIR/postgresql.conf"; then
        ensure_setting shared_preload_libraries "'pg_stat_statements'" "statements per operation for the benchmark (bench/, docs/BENCHMARKS.md)"
    fi
    ensure_wal_settings

    local sockdir
    sockdir="$(socket_dir)"
    touch "$LOG_FILE"
    if [[ $EUID -eq 0 ]]; then chown "$SERVER_USER:" "$LOG_FILE"; fi
    info "starting PostgreSQL ($("$PG_BIN/postgres" --version | awk '{print $3}')) on $PG_HOST:$PG_PORT"
    # 9>&-: the server must not inherit the lock descriptor of with_lock.
    if ! as_server "$PG_BIN/pg_ctl" start -W -D "$PGDATA_DIR" -l "$LOG_FILE" \
            -o "-p $PG_PORT -k '$sockdir' -c listen_addresses=$PG_HOST" >/dev/null 9>&-; then
        echo "---- last lines of $LOG_FILE ----" >&2
        tail -n 30 "$LOG_FILE" >&2 || true
        die "pg_ctl start failed"
    fi

    local waited=0 isready
    isready="$(client_bin pg_isready)"
    until "$isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2; do
        if (( waited >= START_TIMEOUT )) || { (( waited >= 2 )) && ! is_running; }; then
            echo "---- last lines of $LOG_FILE ----" >&2
            tail -n 30 "$LOG_FILE" >&2 || true
            if is_running; then
                die "PostgreSQL did not become ready within ${START_TIMEOUT}s"
            fi
            die "PostgreSQL failed to start"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    ensure_database "$PG_DB"
    print_status
}

cmd_stop() {
    if ! find_bin; then
        echo "not running (PostgreSQL is not installed)"
        return 0
    fi
    resolve_server_user
    if is_running; then
        as_server "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 >/dev/null
        echo "stopped"
    else
        echo "not running"
    fi
}

cmd_env() {
    echo "export BROKER_POSTGRES='Host=$PG_HOST;Port=$PG_PORT;Database=$PG_DB;Username=$PG_USER;Password=$PG_PASSWORD'"
}

cmd_psql() {
    client_env
    exec "$(client_bin psql)" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" "$@"
}

cmd_reset_db() {
    local db="${1:-}"
    [[ -n "$db" ]] || die "usage: $0 reset-db NAME"
    case "$db" in
        postgres|template0|template1) die "refusing to reset the system database '$db'" ;;
    esac
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
        run_psql postgres -q -v ON_ERROR_STOP=1 -v db="$db" <<'EOF'
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
CREATE DATABASE :"db";
EOF
    info "database $db recreated"
}

cmd_apply_sql() {
    local db="${1:-$PG_DB}" f
    local -a files=()
    shopt -s nullglob
    # Lexical order (C collation), as the C# migration runner applies them.
    while IFS= read -r f; do files+=("$f"); done < <(printf '%s\n' "$SQL_DIR"/*.sql | LC_ALL=C sort)
    shopt -u nullglob
    (( ${#files[@]} > 0 )) || die "no .sql files in $SQL_DIR"
    for f in "${files[@]}"; do
        [[ -f "$f" ]] || continue
        info "applying $(basename "$f") to $db"
        # Each file runs in one transaction; every file is idempotent, so re-applying is safe.
        PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
            run_psql "$db" -q -1 -v ON_ERROR_STOP=1 -f "$f" >/dev/null
    done
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) with_lock cmd_start ;;
        stop) with_lock cmd_stop ;;
        status) print_status || exit $? ;;
        env) cmd_env ;;
        psql) cmd_psql "$@" ;;
        reset-db) cmd_reset_db "$@" ;;
        apply-sql) cmd_apply_sql "$@" ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
