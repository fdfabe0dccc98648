#!/usr/bin/env bash
# tests/faults.sh - the long form of the process fault harness (tests/SandboxBroker.Tests/Faults).
#
#   tests/faults.sh                 5 minutes of storm, 200 keys, 5 rounds of every fault
#   FAULTS_DURATION=900 tests/faults.sh
#
# The harness starts its own Postgres (deploy/pg.sh on a private data directory and a free port), three silos and a
# gateway as processes on loopback, and needs nothing else running. Knobs (environment):
#   FAULTS_DURATION  seconds of storm at least (default here 300; the normal suite runs 30)
#   FAULTS_KEYS      claim keys (200; suite 20)
#   FAULTS_WORKERS   concurrent clients (12; suite 6)
#   FAULTS_ROUNDS    rounds of one fault of each kind, shuffled (5; suite 1)
#   FAULTS_SEED      the random seed (printed by every run; set it to replay a run's choices)
#   FAULTS_GATEWAY_HOSTS_SILO=1  the gateway hosts a silo too (the one-process shape ./run.sh starts): killing it
#                    kills a silo as well
#   FAULTS_KEEP=1    keep the run's directory (logs of every process, history.jsonl, Postgres data); it is kept anyway
#                    when a check fails
# Extra arguments go to dotnet test.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export FAULTS_DURATION="${FAULTS_DURATION:-300}"
export FAULTS_KEYS="${FAULTS_KEYS:-200}"
export FAULTS_WORKERS="${FAULTS_WORKERS:-12}"
export FAULTS_ROUNDS="${FAULTS_ROUNDS:-5}"
dotnet build SandboxBroker.sln -c Release -nologo -v quiet -clp:ErrorsOnly
exec dotnet test tests/SandboxBroker.Tests -c Release --no-build \
    --filter "FullyQualifiedName~SandboxBroker.Tests.Faults.ProcessFaultTests" \
    --logger "console;verbosity=detailed" "$@"
