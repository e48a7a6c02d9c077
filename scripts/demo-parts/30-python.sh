#!/usr/bin/env bash
# make demo, Python part: a small Chroma app (python/examples/chroma_app.py) with
# telemetry_core.integrations.chroma as chromadb's product telemetry, sending Chroma's own
# events to the demo's local collector; then a program that crashes on purpose
# (python/examples/crash_app.py): its crash report reaches the collector, scrubbed, before
# it dies as it would (exit status 1, Python's traceback). Runs in the project venv
# (`make deps-python`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
: "${TELEMETRY_DEMO_ENDPOINT:?set by scripts/demo.sh}" "${TELEMETRY_DEMO_HOME:?set by scripts/demo.sh}"
[ -x "$PY" ] || { echo "the Python part needs the venv: run make deps-python"; exit 1; }

printf '\n\033[1m== %s\033[0m\n' "Python: a Chroma app with telemetry_core.integrations.chroma"
# Its own temporary HOME and working directory: no .env or id of yours is read or written.
cd "$TELEMETRY_DEMO_HOME"
HOME="$TELEMETRY_DEMO_HOME" \
  TELEMETRY_CORE_ENDPOINT="$TELEMETRY_DEMO_ENDPOINT" TELEMETRY_CORE_API_KEY=phc_demo \
  "$PY" "$ROOT/python/examples/chroma_app.py"

printf '\n\033[1m== %s\033[0m\n' "Python: a program that crashes; its crash report reaches the collector first"
# python/examples/crash_app.py: client.report_crashes(), a handled error, then an uncaught
# exception (with a cause) whose message holds an e-mail, an IP and a path in HOME.
set +e
HOME="$TELEMETRY_DEMO_HOME" "$PY" "$ROOT/python/examples/crash_app.py" \
  --endpoint "$TELEMETRY_DEMO_ENDPOINT" 2>"$TELEMETRY_DEMO_HOME/crash_app.stderr"
status=$?
set -e
echo "exit status $status (an uncaught exception's), and Python's own traceback on stderr:"
tail -n 4 "$TELEMETRY_DEMO_HOME/crash_app.stderr" | sed 's/^/  /'
# Asked right after the exit: the report was stored before the process died.
echo "what the collector received (GET /api/errors?product=pycrash):"
curl -fsS "$TELEMETRY_DEMO_ENDPOINT/api/errors?product=pycrash" | "$PY" -c '
import json, sys
for g in json.load(sys.stdin):
    p = g["example"]
    print("  fingerprint %s: %d report(s), level %s, versions %s"
          % (g["fingerprint"], g["count"], p["$exception_level"], g["versions"]))
    for i, e in enumerate(p["$exception_list"]):
        print("    %s%s: %s" % ("caused by " if i else "", e["type"], e["value"]))
        for f in e["stacktrace"]["frames"]:
            print("      at %s (%s:%s)%s" % (f["function"], f["filename"], f["lineno"],
                                            "" if f["in_app"] else "  [library]"))
'
[ "$status" = 1 ] || { echo "FAIL: the crash changed the exit status"; exit 1; }
fatal="$(curl -fsS "$TELEMETRY_DEMO_ENDPOINT/api/errors?product=pycrash" | "$PY" -c '
import json, sys
print(sum(g["count"] for g in json.load(sys.stdin) if g["example"]["$exception_level"] == "fatal"))')"
[ "$fatal" = 1 ] || { echo "FAIL: the crash report did not arrive before the exit ($fatal)"; exit 1; }
