#!/usr/bin/env bash
# make demo, Go part: the Chroma-like Go service (bindings/go/examples/chromalike) reports
# its usage to the demo's collector through the Go package, statically linked against the
# C ABI; then the same binary with DO_NOT_TRACK=1 sends nothing and writes nothing.
# Receives TELEMETRY_DEMO_ENDPOINT (the collector) and TELEMETRY_DEMO_HOME (a temp HOME).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
: "${TELEMETRY_DEMO_ENDPOINT:?the collector URL}" "${TELEMETRY_DEMO_HOME:?a temporary HOME}"
BIN="$TARGET/go/chromalike"

printf '\n\033[1m== %s\033[0m\n' "Go: a Chroma-like service, telemetry through the Go package (cgo, static)"
mkdir -p "$TARGET/go"
# Removing the old binary makes `go build` relink: it does not notice a rebuilt .a by itself.
rm -f "$BIN"
(cd "$ROOT/bindings/go" && go build -tags telemetry_ffi_debug -o "$BIN" ./examples/chromalike)
if ldd "$BIN" | grep -q telemetry; then
  echo "FAIL: the Go binary needs a telemetry shared library at run time"; exit 1
fi

count() { curl -fsS "$TELEMETRY_DEMO_ENDPOINT/api/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])'; }
before="$(count)"
HOME="$TELEMETRY_DEMO_HOME" "$BIN" -endpoint "$TELEMETRY_DEMO_ENDPOINT" | sed -n "1p;\$p"
after="$(count)"
echo "go: the collector stored $((after - before)) events from chromalike-go"

optout_home="$(mktemp -d)"
trap 'rm -rf "$optout_home"' EXIT
HOME="$optout_home" DO_NOT_TRACK=1 "$BIN" -endpoint "$TELEMETRY_DEMO_ENDPOINT" | sed -n "1p;\$p"
final="$(count)"
[ "$final" = "$after" ] || { echo "FAIL: DO_NOT_TRACK=1 delivered $((final - after)) events"; exit 1; }
[ -z "$(ls -A "$optout_home")" ] || { echo "FAIL: DO_NOT_TRACK=1 wrote into HOME"; exit 1; }
echo "go: with DO_NOT_TRACK=1 nothing arrived and nothing was written to HOME"
