#!/usr/bin/env bash
# make demo, the dashboard: a collector holding a generated, realistic data set (three
# products, their versions and environments, feature events, usage reports, crashes),
# an admin token, a browser-style sign-in (a session cookie), then what the views show,
# read through /api/stats/* with that cookie. Set DEMO_DASHBOARD_KEEP=1 to keep the
# collector running at the end and look at it in a browser.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

printf '\n\033[1m== %s\033[0m\n' "The dashboard: a generated data set, a sign-in, what the views show"
WORK="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

"$TARGET/debug/telemetry-collector" sample-data --db "$WORK/events.db" --events 20000 --seed 1 --days 90 >"$WORK/filled.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("sample-data: %(events)d events from %(installs)d installs, %(from)s to %(to)s" % d)' "$WORK/filled.json"
echo "demo-admin-token" >"$WORK/admin-token"
"$TARGET/debug/telemetry-collector" serve --listen 127.0.0.1:0 --db "$WORK/events.db" \
  --admin-token-file "$WORK/admin-token" >"$WORK/out" 2>"$WORK/log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL="$(sed -n 's/^listening on //p' "$WORK/out")"
[ -n "$URL" ] || { echo "the collector did not start:"; cat "$WORK/log"; exit 1; }
echo "collector: $URL  (open it in a browser; the admin token is demo-admin-token)"

printf '  %-44s -> %s\n' "GET / without a session" \
  "$(curl -sS -o /dev/null -w '%{http_code} to %{redirect_url}' "$URL/")"
printf '  %-44s -> %s\n' "POST /login with the admin token" \
  "$(curl -sS -o /dev/null -c "$WORK/cookies" -w '%{http_code}' --data-urlencode token@"$WORK/admin-token" "$URL/login")"
awk '$6 == "telemetry_session" { print "  session cookie (HttpOnly, SameSite=Strict): " $6 "=" substr($7, 1, 16) "..." }' "$WORK/cookies"
printf '  %-44s -> %s\n' "GET / with the session cookie" \
  "$(curl -sS -o "$WORK/page.html" -b "$WORK/cookies" -w '%{http_code}, %{size_download} bytes of HTML in %{time_total} s' "$URL/")"

fetch() { curl -sS -b "$WORK/cookies" -o "$WORK/$1.json" "$URL/api/stats/$2"; }
fetch ids ids
fetch versions 'versions?range=7'
fetch environment environment
fetch properties 'properties?event=collection_add&property=embedding_function'
fetch usage usage
fetch crashes crashes
python3 - "$WORK" <<'PY'
import json, os, sys
view = lambda name: json.load(open(os.path.join(sys.argv[1], name + ".json")))
ids = view("ids")
print("  distinct ids active in the last 30 days: %d, new: %d"
      % (ids["active_in_range"], sum(d["new"] for d in ids["daily"])))
print("  versions in use (last 7 days): "
      + ", ".join("%s %s: %d" % (v["product"], v["version"], v["installs"]) for v in view("versions")["now"][:5]))
env = view("environment")
print("  environment: " + "; ".join(
    k + " " + ", ".join("%s %d" % (s["value"], s["installs"]) for s in env[k][:3]) for k in ("os", "runtime", "container")))
print("  collection_add by embedding_function: "
      + ", ".join("%s %d" % (v["value"], v["events"]) for v in view("properties")["values"][:3]))
usage = view("usage")
print("  usage reports from %d installs; " % len(usage["reports"]) + ", ".join(
    "%s p50 %.0f us, %.2f %% failed" % (o["operation"], o["avg_micros_p50"], 100 * o["fail_ratio"])
    for o in usage["operations"][:2]))
crashes = view("crashes")
top = crashes["groups"][0]
print("  crashes: %d reports in %d groups; the top one %s: %d reports from %d installs, versions %s"
      % (crashes["reports"], len(crashes["groups"]), top["fingerprint"], top["count"], top["installs"],
         " ".join(top["versions"])))
PY
printf '  %-44s -> %s\n' "CSV of versions-now" \
  "$(curl -sS -b "$WORK/cookies" -o "$WORK/versions.csv" "$URL/api/stats/versions.csv?table=versions-now"; head -2 "$WORK/versions.csv" | tr '\r\n' '  ')"
if [ "${DEMO_DASHBOARD_KEEP:-0}" = 1 ]; then
  echo "DEMO_DASHBOARD_KEEP=1: the collector stays at $URL until Ctrl-C"
  wait "$pid"
fi
