#!/usr/bin/env bash
# A Rust program crashes on purpose (crates/telemetry-core/examples/crash_app.rs): its panic
# reaches the demo's collector, scrubbed, before it dies, and it dies as it would have
# (exit status 101, Rust's own message on stderr). Run by scripts/demo.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ENDPOINT="${TELEMETRY_DEMO_ENDPOINT:?run by scripts/demo.sh}"
HOME_DIR="$(mktemp -d)"
trap 'rm -rf "$HOME_DIR"' EXIT

printf '\n\033[1m== %s\033[0m\n' "Rust: a program that panics; its crash report reaches the collector first"
set +e
env -i PATH="$PATH" HOME="$HOME_DIR" "$TARGET/debug/examples/crash_app" --endpoint "$ENDPOINT" \
  2>"$HOME_DIR/stderr"
status=$?
set -e
echo "exit status $status (a Rust panic's), and its own message on stderr:"
grep -A1 "panicked at" "$HOME_DIR/stderr" | sed 's/^/  /'
echo "what the collector received (GET /api/errors?product=crashapp):"
curl -fsS "$ENDPOINT/api/errors?product=crashapp" | python3 -c '
import json, sys
for g in json.load(sys.stdin):
    e = g["example"]["$exception_list"][0]
    print("  fingerprint %s: %d report(s), versions %s" % (g["fingerprint"], g["count"], g["versions"]))
    print("    %s: %s" % (e["type"], e["value"]))
    for f in [f for f in e["stacktrace"]["frames"] if f["in_app"]][-3:]:
        print("      at %s (%s:%s)" % (f["function"], f["filename"], f["lineno"]))
'
[ "$status" = 101 ] || { echo "FAIL: the crash changed the exit status"; exit 1; }
