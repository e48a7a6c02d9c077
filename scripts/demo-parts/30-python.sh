#!/usr/bin/env bash
# make demo, Python part: a small Chroma app (python/examples/chroma_app.py) with
# telemetry_core.integrations.chroma as chromadb's product telemetry, sending Chroma's own
# events to the demo's local collector. Runs in the project venv (`make deps-python`).
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
