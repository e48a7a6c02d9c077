#!/usr/bin/env bash
# The Qdrant-shaped service (crates/telemetry-core/examples/qdrant_like.rs): per-route
# timings, its own /telemetry and /metrics, a usage report sent to the local collector;
# then Qdrant's three opt-outs, with which nothing reaches the collector while /telemetry
# and /metrics still answer. Run by scripts/demo.sh with TELEMETRY_DEMO_ENDPOINT set.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ENDPOINT="${TELEMETRY_DEMO_ENDPOINT:?run by scripts/demo.sh}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# start NAME [ENV=VALUE...] [-- ARGS...]: starts the service in its own HOME, sets URL.
start() {
  local name="$1"; shift
  local envs=() args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift && args=("$@")
  mkdir -p "$WORK/$name/config"
  env -i PATH="$PATH" HOME="$WORK/$name" "${envs[@]}" "$TARGET/debug/examples/qdrant_like" \
    --listen 127.0.0.1:0 --endpoint "$ENDPOINT" --config-dir "$WORK/$name" \
    --report-delay-ms 200 "${args[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  for _ in $(seq 100); do
    grep -q '^listening on ' "$WORK/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  URL="$(sed -n 's/^listening on //p' "$WORK/$name.out")"
  [ -n "$URL" ] || { echo "the service did not start:"; cat "$WORK/$name.err"; exit 1; }
}

traffic() {
  curl -fsS -X PUT "$URL/collections/docs/points" -d '[1, 2, 3]' >/dev/null
  curl -fsS -X PUT "$URL/collections/images/points" -d '[4]' >/dev/null
  for _ in 1 2 3; do curl -fsS -X POST "$URL/collections/docs/points/search" -d '{}' >/dev/null; done
  curl -sS -o /dev/null -X POST "$URL/collections/missing/points/search" -d '{}'
}

stop() { kill -TERM "$PID"; wait "$PID"; }

usage_reports() {
  curl -fsS "$ENDPOINT/api/events?event=usage_report&limit=10000" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

say "Qdrant-like service: per-route timings, its own /telemetry and /metrics"
start enabled
traffic
echo "GET $URL/telemetry?details_level=2&anonymize=true (operations):"
curl -fsS "$URL/telemetry?details_level=2&anonymize=true" |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"id": r["id"], "operations": r["operations"], "collections": r["collections"]}, indent=1))'
echo "GET $URL/metrics (search route):"
curl -fsS "$URL/metrics" | grep 'points/search",status="200"' | grep -E '_(count|sum)|le="0.001"'
sleep 0.5 # past the report delay: the first report goes home
stop
echo "stopped (SIGTERM): the last report went home too"
say "The collector's view: GET /api/usage?product=qdrant (newest report per install)"
curl -fsS "$ENDPOINT/api/usage?product=qdrant" |
  python3 -c 'import json,sys; [print(u["distinct_id"], "->", json.dumps(u["report"]["operations"]["rest_responses"]["count"]), "requests,", u["report"]["system"]["cpu_cores"], "cores,", u["report"]["system"]["distribution"]) for u in json.load(sys.stdin)]'

say "Qdrant's opt-outs: nothing reaches the collector; /telemetry and /metrics still answer"
before="$(usage_reports)"
for how in env config flag; do
  case "$how" in
    env) start env QDRANT__TELEMETRY_DISABLED=true; label="QDRANT__TELEMETRY_DISABLED=true" ;;
    config) mkdir -p "$WORK/config/config"; echo "telemetry_disabled: true" >"$WORK/config/config/config.yaml"
            start config; label="telemetry_disabled: true in config/config.yaml" ;;
    flag) start flag -- --disable-telemetry; label="--disable-telemetry" ;;
  esac
  traffic
  count="$(curl -fsS "$URL/telemetry" | python3 -c 'import json,sys; print(json.load(sys.stdin)["operations"]["rest_responses"]["count"])')"
  # Read whole, then searched: `curl | grep -q` fails under pipefail whenever grep exits
  # before curl has written everything (curl: (23) Failed writing body).
  metrics="$(curl -fsS "$URL/metrics")" || { echo "FAIL: /metrics did not answer"; exit 1; }
  grep -q '^qdrant_rest_responses_seconds_count' <<<"$metrics" || { echo "FAIL: /metrics"; exit 1; }
  sleep 0.4
  stop
  echo "$label: /telemetry counted $count requests, /metrics answered; $(head -1 "$WORK/$how.err" | sed 's/^qdrant_like: //')"
done
after="$(usage_reports)"
echo "usage reports stored before: $before, after the three opted-out runs: $after"
[ "$before" = "$after" ] || { echo "FAIL: an opted-out service reported home"; exit 1; }
