#!/usr/bin/env bash
# make demo, the collector as ingest infrastructure: a second collector, set up the way an
# integrator exposes one (admin token, a list of project API keys, a per-key rate limit),
# still on loopback and SQLite here. Each refusal is shown with its status and reason:
# an unknown API key (401, nothing stored), the API without the token (401), a Host that
# is not loopback (403: DNS rebinding), a burst over the key's rate (429 + Retry-After).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

printf '\n\033[1m== %s\033[0m\n' "The collector with access control: admin token, API keys, rate limit"
WORK="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "demo-admin-token" >"$WORK/admin-token"
"$TARGET/debug/telemetry-collector" serve --listen 127.0.0.1:0 --db "$WORK/events.db" \
  --admin-token-file "$WORK/admin-token" --api-key phc_acme --rate-per-key 20 \
  >"$WORK/out" 2>"$WORK/log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -n 's/^listening on //p' "$WORK/out")"
[ -n "$URL" ] || { echo "the collector did not start:"; cat "$WORK/log"; exit 1; }
echo "collector: $URL  (--admin-token-file, --api-key phc_acme, --rate-per-key 20)"

# One line per request: what was asked, the status and the collector's reason.
show() {
  local what="$1"; shift
  local status
  status="$(curl -sS -o "$WORK/body" -w '%{http_code}' "$@")"
  printf '  %-46s -> %s %s\n' "$what" "$status" "$(head -c 160 "$WORK/body")"
}
batch() { # batch KEY N: a batch of N events under API key KEY
  python3 -c 'import json,sys,uuid; print(json.dumps({"api_key": sys.argv[1], "batch": [
      {"event": "collection_add", "distinct_id": "demo-install", "uuid": str(uuid.uuid4()),
       "properties": {"product": "chroma", "batch_size": 1}} for _ in range(int(sys.argv[2]))]}))' "$1" "$2"
}
show "POST 5 events, key phc_acme" -H 'Content-Type: application/json' -d "$(batch phc_acme 5)" "$URL/batch/"
show "POST 5 events, key phc_unknown" -H 'Content-Type: application/json' -d "$(batch phc_unknown 5)" "$URL/batch/"
show "GET /api/summary, no token" "$URL/api/summary"
show "GET /api/summary, Bearer token" -H 'Authorization: Bearer demo-admin-token' "$URL/api/summary"
show "GET /api/summary, Host: rebind.example" -H 'Host: rebind.example' -H 'Authorization: Bearer demo-admin-token' "$URL/api/summary"
show "POST 30 events (the burst is 40: 2 s at 20/s)" -H 'Content-Type: application/json' -d "$(batch phc_acme 30)" "$URL/batch/"
show "POST 30 events right after" -H 'Content-Type: application/json' -d "$(batch phc_acme 30)" "$URL/batch/"
curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$(batch phc_acme 30)" "$URL/batch/" \
  | grep -i '^retry-after' | sed 's/^/  the 429 says: /'
stored="$(curl -fsS -H 'Authorization: Bearer demo-admin-token' "$URL/api/summary" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')"
echo "stored: $stored events: the two accepted requests' 5 + 30, nothing of the refused ones"
[ "$stored" = 35 ] || { echo "expected 35 stored events"; exit 1; }
