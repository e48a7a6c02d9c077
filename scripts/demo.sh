#!/usr/bin/env bash
# make demo: everything on this machine, nothing on the internet.
#  1. how consent is decided, and the exact anonymized payloads (debug sink);
#  2. the local collector on loopback receives a Chroma-like session from Rust, then from
#     each binding's example (scripts/demo-parts/*.sh);
#  3. the same app opted out with ANONYMIZED_TELEMETRY=False: nothing arrives, no id file.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DEMO="$ROOT/.demo"
rm -rf "$DEMO" && mkdir -p "$DEMO/home" "$DEMO/home-optout"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Consent, explained (decisions for a few environments) and what would be sent"
"$TARGET/debug/examples/explain" 2>&1

say "2. The local collector on loopback"
"$TARGET/debug/telemetry-collector" serve --listen 127.0.0.1:0 --db "$DEMO/events.db" \
  >"$DEMO/collector.out" 2>"$DEMO/collector.log" &
COLLECTOR=$!
stop_collector() { kill -TERM "$COLLECTOR" 2>/dev/null && wait "$COLLECTOR" 2>/dev/null || true; }
trap stop_collector EXIT
for _ in $(seq 100); do
  grep -q '^listening on ' "$DEMO/collector.out" 2>/dev/null && break
  sleep 0.1
done
ENDPOINT="$(sed -n 's/^listening on //p' "$DEMO/collector.out")"
[ -n "$ENDPOINT" ] || { echo "the collector did not start:"; cat "$DEMO/collector.log"; exit 1; }
echo "collector: $ENDPOINT (SQLite at .demo/events.db)"

# Each example runs in its own temporary HOME, so the demo touches none of yours.
export TELEMETRY_DEMO_ENDPOINT="$ENDPOINT"
export TELEMETRY_DEMO_HOME="$DEMO/home"
env -u ANONYMIZED_TELEMETRY -u DO_NOT_TRACK HOME="$DEMO/home" TELEMETRY_ENDPOINT="$ENDPOINT" \
  "$TARGET/debug/examples/chroma_app"
for part in "$ROOT"/scripts/demo-parts/*.sh; do
  [ -e "$part" ] || continue
  env -u ANONYMIZED_TELEMETRY -u DO_NOT_TRACK bash "$part"
done

say "What the collector stored: GET /api/summary"
curl -fsS "$ENDPOINT/api/summary" | python3 -m json.tool
say "Three stored events, anonymized: GET /api/events?event=collection_add&limit=3"
curl -fsS "$ENDPOINT/api/events?event=collection_add&limit=3" | python3 -m json.tool

say "3. The same app with ANONYMIZED_TELEMETRY=False"
before="$(curl -fsS "$ENDPOINT/api/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')"
env -u DO_NOT_TRACK HOME="$DEMO/home-optout" ANONYMIZED_TELEMETRY=False TELEMETRY_ENDPOINT="$ENDPOINT" \
  "$TARGET/debug/examples/chroma_app"
after="$(curl -fsS "$ENDPOINT/api/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')"
echo "events stored before: $before, after: $after"
[ "$before" = "$after" ] || { echo "FAIL: an opted-out run delivered events"; exit 1; }
if [ -e "$DEMO/home-optout/.cache/chroma/telemetry_user_id" ] || [ -n "$(ls -A "$DEMO/home-optout")" ]; then
  echo "FAIL: the opted-out run wrote into its HOME"; exit 1
fi
echo "opted out: nothing arrived, and no id file (or any file) was written to its HOME"

say "Stopping the collector (SIGTERM: graceful, nothing accepted is lost)"
stop_collector
trap - EXIT
echo "done"
