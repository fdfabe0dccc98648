#!/usr/bin/env bash
# bench/run.sh - the documented benchmark run (docs/BENCHMARKS.md).
#
#   bench/run.sh                          both baselines and the broker, the default plan, a table and JSON at the end
#   bench/run.sh --plan repeat@10000 --duration 20s      extra arguments go to `SandboxBroker.LoadGen compare`
#
# What it does:
#   1. makes sure Postgres answers on 127.0.0.1:54329 (starts deploy/pg.sh's cluster only when nothing listens
#      there);
#   2. when no gateway answers at BROKER_URL (default http://127.0.0.1:8080), starts ./run.sh in the background
#      (in its default shape, the gateway hosting the silo in one process, or with ONE_PROCESS=0 a separate silo;
#      with a generated admin token) on an empty database (BENCH_DB, default
#      sandboxbroker_bench, dropped and created again) and an empty local-provider root of its own
#      (.artifacts/bench/sandboxes), and waits until it is ready. A root shared with an earlier run or with
#      ./run.sh's broker holds sandboxes this broker's database does not know: its reconciler would delete them,
#      tens of thousands of directories, in the middle of a measurement (it did, in round 9). The baselines' database
#      (sandboxbroker_baseline) is dropped too, whoever runs the broker;
#   3. runs the load generator's `compare`: every scenario of the plan against the two Postgres baselines
#      (minimal, and fair: with the audit rows and the refill; `--baselines minimal` for the first only) and
#      against the broker, with progress on the terminal; the table and the ratios (the broker against each
#      baseline) are printed, and the JSON goes to .artifacts/bench/compare-<time>.json;
#   4. stops what it started (run.sh, by its PID; run.sh stops its silo and gateway) and removes its sandboxes'
#      directories. Postgres keeps running.
#
# Environment (all optional):
#   BROKER_URL             the gateway (default http://127.0.0.1:8080)
#   BROKER_TOKEN           a token for an already running broker (else BROKER_ADMIN_TOKEN)
#   BENCH_DB               the broker's database when this script starts the broker (default sandboxbroker_bench)
#   BROKER_PG_PORT         Postgres port (default 54329)
#   BENCH_RATE_LIMIT       the gateway's per-tenant rate limit when this script starts the broker (default 1000000/s)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BROKER_URL="${BROKER_URL:-http://127.0.0.1:8080}"
BENCH_DB="${BENCH_DB:-sandboxbroker_bench}"
PG_PORT="${BROKER_PG_PORT:-54329}"
PG_BASE="Host=127.0.0.1;Port=$PG_PORT;Username=broker;Password=broker"
LOADGEN_DLL="bench/SandboxBroker.LoadGen/bin/Release/net10.0/SandboxBroker.LoadGen.dll"
RUN_DIR="$REPO/.run"
OUT_DIR="$REPO/.artifacts/bench"
SANDBOX_ROOT="$OUT_DIR/sandboxes"
READY_TIMEOUT=180

say() { echo "bench/run.sh: $*" >&2; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is not on PATH"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
mkdir -p "$RUN_DIR" "$OUT_DIR"

RUN_PID=""
stop_started() {
    if [[ -n "$RUN_PID" ]] && kill -0 "$RUN_PID" 2>/dev/null; then
        say "stopping the broker this script started (run.sh PID $RUN_PID)"
        kill -TERM "$RUN_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$RUN_PID" 2>/dev/null && kill -KILL "$RUN_PID" 2>/dev/null || true
        wait "$RUN_PID" 2>/dev/null || true
        remove_sandboxes
    fi
    RUN_PID=""
}
trap stop_started EXIT
trap 'echo; say "interrupted"; exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true; }

# --- Postgres --------------------------------------------------------------------------------------------
if ! port_open "$PG_PORT"; then
    say "no Postgres on 127.0.0.1:$PG_PORT; starting deploy/pg.sh's cluster"
    deploy/pg.sh start >&2
fi
psql_cmd() {
    PGPASSWORD=broker PGCONNECT_TIMEOUT=5 psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U broker "$@"
}

# The baselines' database starts empty too: their tables grew run after run (1.2 million audit rows by round 9), and
# autovacuum then went through them in the broker's next measurement window (Postgres at ~950 µs per acquire in it,
# against ~320 in runs without the baselines). The generator creates it again.
command -v psql >/dev/null || die "psql is needed to reset the benchmark databases (apt-get install postgresql-client)"
psql_cmd -d postgres -c "DROP DATABASE IF EXISTS sandboxbroker_baseline WITH (FORCE)"

# The sandboxes' directories of the broker this script started (each run's own, so no reconciler finds another run's).
remove_sandboxes() {
    if [[ -d "$SANDBOX_ROOT" ]]; then
        say "removing the local provider's sandboxes ($SANDBOX_ROOT)"
        rm -rf "$SANDBOX_ROOT"
    fi
}

# --- the broker ------------------------------------------------------------------------------------------
CPU_ARGS=()
if [[ "$(http_code "$BROKER_URL/readyz")" == 200 ]]; then
    say "using the broker already running at $BROKER_URL"
    BROKER_TOKEN="${BROKER_TOKEN:-${BROKER_ADMIN_TOKEN:-}}"
    [[ -n "$BROKER_TOKEN" ]] || die "a broker is running at $BROKER_URL: set BROKER_TOKEN (or BROKER_ADMIN_TOKEN) to its admin token"
    BROKER_DB_ARG="${BROKER_POSTGRES:-$PG_BASE;Database=sandboxbroker}"
    say "building the load generator"
    dotnet build bench/SandboxBroker.LoadGen -c Release -nologo -v quiet -clp:ErrorsOnly >&2
else
    [[ "$BROKER_URL" == "http://127.0.0.1:8080" ]] || die "nothing ready at $BROKER_URL (this script starts a broker only on the default http://127.0.0.1:8080)"
    for port in 8080 8081 11111 30000; do
        port_open "$port" && die "port $port is in use (another run.sh?); stop it, or start the broker yourself and set BROKER_URL and BROKER_TOKEN"
    done
    say "starting on an empty database $BENCH_DB and an empty sandbox root"
    psql_cmd -d postgres -c "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$BENCH_DB\""
    remove_sandboxes
    BROKER_TOKEN="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    BROKER_DB_ARG="$PG_BASE;Database=$BENCH_DB"
    say "starting the broker (./run.sh, database $BENCH_DB); log $RUN_DIR/bench-run.log"
    # setsid: Ctrl-C reaches only this script, which then stops run.sh, which stops its silo and gateway.
    # The gateway's per-tenant rate limit (default 2000/s with a burst of 4000) stays on, raised above the
    # benchmark's rates: the limiter's cost is part of the measured path, its 429s are not.
    BROKER_RateLimit__PermitsPerSecond="${BENCH_RATE_LIMIT:-1000000}" BROKER_RateLimit__Burst="${BENCH_RATE_LIMIT:-1000000}" \
    BROKER_POSTGRES="$BROKER_DB_ARG" BROKER_ADMIN_TOKEN="$BROKER_TOKEN" RUN_TAIL_LOGS=0 BROKER_Providers__Local__Root="$SANDBOX_ROOT" \
        setsid ./run.sh >"$RUN_DIR/bench-run.log" 2>&1 </dev/null &
    RUN_PID=$!
    waited=0
    until [[ "$(http_code "$BROKER_URL/readyz")" == 200 && -s "$RUN_DIR/gateway.pid" ]] && grep -q "SandboxBroker is running" "$RUN_DIR/bench-run.log"; do
        kill -0 "$RUN_PID" 2>/dev/null || { tail -n 30 "$RUN_DIR/bench-run.log" >&2; die "run.sh exited during start-up"; }
        ((waited >= READY_TIMEOUT)) && { tail -n 30 "$RUN_DIR/bench-run.log" >&2; die "the broker was not ready after ${READY_TIMEOUT}s"; }
        ((waited % 10 == 0)) && say "waiting for the broker (${waited}s): $(tail -n 1 "$RUN_DIR/bench-run.log" | cut -c1-120)"
        sleep 1
        waited=$((waited + 1))
    done
    say "broker ready after ${waited}s"
fi
for name in silo-1 gateway; do
    if [[ -s "$RUN_DIR/$name.pid" ]] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
        CPU_ARGS+=(--cpu "${name%-1}=$(cat "$RUN_DIR/$name.pid")")
    fi
done

# --- the run ---------------------------------------------------------------------------------------------
out="$OUT_DIR/compare-$(date -u +%Y%m%d-%H%M%S).json"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
set +e
BROKER_TOKEN="$BROKER_TOKEN" dotnet "$LOADGEN_DLL" compare \
    --url "$BROKER_URL" --broker-db "$BROKER_DB_ARG" --baseline-db "$PG_BASE;Database=sandboxbroker_baseline" \
    "${CPU_ARGS[@]}" --out "$out" "$@"
status=$?
set -e
[[ -f "$out" ]] && say "results: $out"
exit "$status"
