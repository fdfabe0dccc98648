#!/usr/bin/env bash
# Runs the whole test suite against a real Postgres.
#   ./test.sh                      build, start the project's Postgres if none is configured, run every test
#   ./test.sh --filter Claim       extra arguments go to `dotnet test`
# Uses BROKER_TEST_POSTGRES (an Npgsql connection string to a server where the tests may create databases)
# when set; otherwise starts deploy/pg.sh's private cluster, and stops it again if it was not running before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v dotnet >/dev/null || { echo "test.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2; exit 1; }

started_pg=""
if [[ -z "${BROKER_TEST_POSTGRES:-}" ]]; then
    if ! deploy/pg.sh status >/dev/null 2>&1; then
        started_pg=1
    fi
    deploy/pg.sh start
    export BROKER_TEST_POSTGRES="Host=127.0.0.1;Port=${BROKER_PG_PORT:-54329};Database=postgres;Username=broker;Password=broker"
    # Databases a killed earlier run left behind.
    deploy/pg.sh psql -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'" 2>/dev/null |
        while read -r db; do [[ -n "$db" ]] && deploy/pg.sh psql -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
fi
cleanup() { if [[ -n "$started_pg" ]]; then deploy/pg.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

results="$(pwd)/.artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
echo "test.sh: building"
dotnet build SandboxBroker.sln -c Release -nologo -v quiet -clp:ErrorsOnly
echo "test.sh: running tests (Postgres: ${BROKER_TEST_POSTGRES%%;Username*})"
set +e
dotnet test SandboxBroker.sln -c Release --no-build -nologo \
    --logger "trx;LogFilePrefix=results" --logger "console;verbosity=normal" --results-directory "$results" "$@"
status=$?
set -e

# One plain summary line, counted from the TRX files, then each failure's name and message again (the console log
# of a long run is often cut before them).
python3 - "$results" <<'PY' || true
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
failures = []
for f in glob.glob(sys.argv[1] + "/*.trx"):
    root = ET.parse(f).getroot()
    c = root.find(".//{*}Counters")
    if c is not None:
        passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0))
        skipped += int(c.get("notExecuted", 0))
    for r in root.iter("{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}UnitTestResult"):
        if r.get("outcome") == "Failed":
            message = r.find(".//{*}ErrorInfo/{*}Message")
            failures.append((r.get("testName"), (message.text or "").strip() if message is not None else ""))
for name, message in failures:
    lines = message.splitlines()
    print(f"FAILED {name}")
    for line in lines[:30]:
        print(f"    {line}")
    if len(lines) > 30:
        print(f"    ... ({len(lines) - 30} more lines in the TRX file)")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
