#!/usr/bin/env bash
# run.sh - builds and runs the broker locally, in the foreground, on the embedded defaults.
#
#   ./run.sh              Postgres (deploy/pg.sh) and the broker in one process: the gateway hosts the silo
#                         (Gateway:HostsSilo; dashboard on port 8080; silo and Orleans gateway ports 11111, 30000)
#   SILOS=3 ./run.sh      the gateway and 3 separate silos (ports 11111+i, 30000+i, 8081+i for silo i = 0..N-1)
#   ONE_PROCESS=0 ./run.sh  the gateway and 1 separate silo
#
# Environment (all optional):
#   SILOS                      separate silos, each its own process (setting it implies ONE_PROCESS=0)
#   ONE_PROCESS                1 (default unless SILOS is set): the gateway is the silo; 0: separate processes
#   BROKER_POSTGRES            an Npgsql connection string; when set, deploy/pg.sh is not started
#   BROKER_DASHBOARD_PASSWORD  the silos' dashboard password (user admin); generated and printed when unset
#   BROKER_ADMIN_TOKEN         the admin token handed to the gateway; generated and printed when unset
#   RUN_TAIL_LOGS=0            do not copy the logs to the terminal (they are always in .run/)
#   BROKER_Providers__Local__Root  where the local provider keeps its sandboxes (default .sandboxes); one per database:
#                              another database's sandboxes there are orphans to this broker's reconciler
#
# Logs: .run/silo-N.log, .run/gateway.log. Ctrl-C (or SIGTERM) stops the processes this script started,
# by their recorded PIDs; Postgres keeps running (stop it with: deploy/pg.sh stop).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$REPO"

# One process unless separate silos are asked for: it costs a fifth to a third less CPU per new lease (docs/BENCHMARKS.md, round 23).
if [[ -n "${SILOS:-}" ]]; then ONE_PROCESS="${ONE_PROCESS:-0}"; else ONE_PROCESS="${ONE_PROCESS:-1}"; fi
SILOS="${SILOS:-1}"
SANDBOX_ROOT="${BROKER_Providers__Local__Root:-$REPO/.sandboxes}"
READY_TIMEOUT=120
STOP_TIMEOUT=20
GATEWAY_PORT=8080
RUN_DIR="$REPO/.run"
SILO_DLL="src/Silo/bin/Release/net10.0/SandboxBroker.Silo.dll"
GATEWAY_DLL="src/Gateway/bin/Release/net10.0/SandboxBroker.Gateway.dll"

say() { echo "run.sh: $*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

[[ "$SILOS" =~ ^[1-9][0-9]*$ ]] || die "SILOS must be a positive integer (got '$SILOS')"
[[ "$ONE_PROCESS" == 0 || "$ONE_PROCESS" == 1 ]] || die "ONE_PROCESS must be 0 or 1 (got '$ONE_PROCESS')"
if [[ "$ONE_PROCESS" == 1 ]]; then
    [[ "$SILOS" == 1 ]] || die "ONE_PROCESS=1 runs one process, the gateway with its silo; leave SILOS unset or set ONE_PROCESS=0"
    SILOS=0 # no separate silo process
fi
command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is not on PATH"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

# --- what this script started: names and PIDs, in start order ------------------------------------------
NAMES=()
PIDS=()
TAIL_PIDS=()
STOPPING=""

alive() {
    # kill -0 alone also succeeds for a zombie; bash reaps its children, but be exact anyway.
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z* ]]
}

stop_all() {
    [[ -n "$STOPPING" ]] && return 0
    STOPPING=1
    local i pid waited
    if ((${#PIDS[@]} > 0)); then
        say "stopping ${NAMES[*]} (PIDs ${PIDS[*]})"
        # Gateway first, then the silos in reverse start order.
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
            alive "${PIDS[i]}" && kill -TERM "${PIDS[i]}" 2>/dev/null || true
        done
        waited=0
        while ((waited < STOP_TIMEOUT * 2)); do
            local any=""
            for pid in "${PIDS[@]}"; do alive "$pid" && any=1; done
            [[ -z "$any" ]] && break
            sleep 0.5
            waited=$((waited + 1))
        done
        for i in "${!PIDS[@]}"; do
            if alive "${PIDS[i]}"; then
                say "${NAMES[i]} (PID ${PIDS[i]}) did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
                kill -KILL "${PIDS[i]}" 2>/dev/null || true
            fi
        done
        for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    fi
    for pid in "${TAIL_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${TAIL_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for name in "${NAMES[@]}"; do rm -f "$RUN_DIR/$name.pid"; done
    if ((${#PIDS[@]} > 0)); then
        say "stopped. Postgres is still running (deploy/pg.sh status); stop it with: deploy/pg.sh stop"
    fi
}

on_signal() {
    echo
    say "received SIG$1"
    stop_all
    exit 0
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'stop_all' EXIT

log_tails() {
    local i log
    for i in "${!NAMES[@]}"; do
        log="$RUN_DIR/${NAMES[i]}.log"
        [[ -f "$log" ]] || continue
        echo "----- last lines of $log -----" >&2
        tail -n 20 "$log" >&2 || true
    done
}

# Starts "$@" with the repo as working directory, output to .run/NAME.log; records the PID.
start_process() {
    local name="$1"
    shift
    local log="$RUN_DIR/$name.log"
    : >"$log"
    # setsid: the child is out of the terminal's process group, so Ctrl-C reaches only this script,
    # which then stops the children in order. (setsid execs in place: $! is the child's PID.)
    setsid "$@" >"$log" 2>&1 </dev/null &
    local pid=$!
    NAMES+=("$name")
    PIDS+=("$pid")
    echo "$pid" >"$RUN_DIR/$name.pid"
    if [[ "${RUN_TAIL_LOGS:-1}" != 0 ]]; then
        tail -n +1 -F --pid="$$" "$log" 2>/dev/null > >(sed -u "s/^/[$name] /") &
        TAIL_PIDS+=("$!")
    fi
    say "started $name (PID $pid), log $log"
}

# Fails (after printing why) when a started process has exited.
check_children() {
    local i status
    for i in "${!PIDS[@]}"; do
        if ! alive "${PIDS[i]}"; then
            status=0
            wait "${PIDS[i]}" 2>/dev/null || status=$?
            echo "run.sh: ${NAMES[i]} (PID ${PIDS[i]}) exited with status $status" >&2
            return 1
        fi
    done
    return 0
}

http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- Postgres --------------------------------------------------------------------------------------------
mkdir -p "$RUN_DIR"
if [[ -n "${BROKER_POSTGRES:-}" ]]; then
    say "using BROKER_POSTGRES (${BROKER_POSTGRES%%;Username*}); not starting the local Postgres"
else
    deploy/pg.sh start
    eval "$(deploy/pg.sh env)"
fi
export BROKER_POSTGRES

# --- build -----------------------------------------------------------------------------------------------
say "building (Release)"
dotnet build SandboxBroker.sln -c Release -nologo -v quiet -clp:ErrorsOnly >"$RUN_DIR/build.log" 2>&1 || {
    cat "$RUN_DIR/build.log" >&2
    die "build failed (log: $RUN_DIR/build.log)"
}

# --- credentials -----------------------------------------------------------------------------------------
generated_password=""
if [[ -z "${BROKER_DASHBOARD_PASSWORD:-}" ]]; then
    BROKER_DASHBOARD_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    generated_password=1
fi
generated_token=""
if [[ -z "${BROKER_ADMIN_TOKEN:-}" ]]; then
    BROKER_ADMIN_TOKEN="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    generated_token=1
fi

# A foreign server on the gateway port would answer the readiness probe: refuse early.
# (Silo ports are checked by the silo itself: it prints the port and exits 2.)
if port_in_use "$GATEWAY_PORT"; then
    die "the gateway port 127.0.0.1:$GATEWAY_PORT is already in use"
fi

# --- silos -----------------------------------------------------------------------------------------------
for ((i = 0; i < SILOS; i++)); do
    start_process "silo-$((i + 1))" env \
        ASPNETCORE_CONTENTROOT="$REPO/src/Silo/bin/Release/net10.0" \
        BROKER_Orleans__SiloPort=$((11111 + i)) \
        BROKER_Orleans__GatewayPort=$((30000 + i)) \
        BROKER_Http__Port=$((8081 + i)) \
        BROKER_Providers__Local__Root="$SANDBOX_ROOT" \
        BROKER_Dashboard__Password="$BROKER_DASHBOARD_PASSWORD" \
        dotnet "$SILO_DLL"
done

# --- gateway ---------------------------------------------------------------------------------------------
# With ONE_PROCESS=1 it hosts the silo and takes the silo's settings (silo and gateway ports 11111, 30000).
start_process gateway env \
    ASPNETCORE_CONTENTROOT="$REPO/src/Gateway/bin/Release/net10.0" \
    BROKER_Gateway__Urls="http://127.0.0.1:$GATEWAY_PORT" \
    BROKER_ADMIN_TOKEN="$BROKER_ADMIN_TOKEN" \
    BROKER_Gateway__HostsSilo="$([[ "$ONE_PROCESS" == 1 ]] && echo true || echo false)" \
    BROKER_Providers__Local__Root="$SANDBOX_ROOT" \
    BROKER_Dashboard__Password="$BROKER_DASHBOARD_PASSWORD" \
    dotnet "$GATEWAY_DLL"

# --- wait for readiness ----------------------------------------------------------------------------------
say "waiting up to ${READY_TIMEOUT}s for the gateway and $SILOS separate silo(s) to be ready"
start=$SECONDS
last_progress=$SECONDS
while :; do
    if ! check_children; then
        log_tails
        die "a process exited during start-up; stopping the rest"
    fi
    pending=()
    [[ "$(http_code "http://127.0.0.1:$GATEWAY_PORT/readyz")" == 200 ]] || pending+=("gateway")
    for ((i = 0; i < SILOS; i++)); do
        [[ "$(http_code "http://127.0.0.1:$((8081 + i))/readyz")" == 200 ]] || pending+=("silo-$((i + 1))")
    done
    ((${#pending[@]} == 0)) && break
    elapsed=$((SECONDS - start))
    if ((elapsed >= READY_TIMEOUT)); then
        log_tails
        die "not ready after ${READY_TIMEOUT}s (waiting for: ${pending[*]}); stopping what was started"
    fi
    if ((SECONDS - last_progress >= 5)); then
        say "still waiting (${elapsed}s/${READY_TIMEOUT}s) for: ${pending[*]}"
        last_progress=$SECONDS
    fi
    sleep 1 &
    wait $! || true
done

# --- where things are ------------------------------------------------------------------------------------
cat <<EOF

SandboxBroker is running ($([[ "$ONE_PROCESS" == 1 ]] && echo "one process: the gateway hosts the silo" || echo "$SILOS silo(s)"), ready after $((SECONDS - start))s).
  gateway          http://127.0.0.1:$GATEWAY_PORT   (/healthz, /readyz)   log .run/gateway.log
EOF
if [[ "$ONE_PROCESS" == 1 ]]; then
    echo "  its silo         dashboard http://127.0.0.1:$GATEWAY_PORT/dashboard, metrics /metrics/silo   (silo port 11111, gateway port 30000)"
fi
for ((i = 0; i < SILOS; i++)); do
    port=$((8081 + i))
    echo "  silo-$((i + 1))           http://127.0.0.1:$port/healthz, /readyz, dashboard http://127.0.0.1:$port/dashboard   (silo port $((11111 + i)), gateway port $((30000 + i)); log .run/silo-$((i + 1)).log)"
done
cat <<EOF
  dashboard login  admin / $BROKER_DASHBOARD_PASSWORD$([[ -n "$generated_password" ]] && echo "   (generated; set BROKER_DASHBOARD_PASSWORD to choose it)")
  admin token      $BROKER_ADMIN_TOKEN$([[ -n "$generated_token" ]] && echo "   (generated; set BROKER_ADMIN_TOKEN to choose it)")
  Postgres         ${BROKER_POSTGRES%%;Password*}
  sandboxes        $SANDBOX_ROOT
Ctrl-C stops the broker's processes; Postgres keeps running (stop it with: deploy/pg.sh stop).

EOF

# --- run until a signal or until a process dies ----------------------------------------------------------
while :; do
    if ! check_children; then
        log_tails
        echo "run.sh: a process stopped unexpectedly; stopping the rest" >&2
        exit 1
    fi
    sleep 1 &
    wait $! || true
done
