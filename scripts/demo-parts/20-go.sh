#!/usr/bin/env bash
# make demo, Go part: the Chroma-like Go service (bindings/go/examples/chromalike) reports
# its usage to the demo's collector through the Go package, statically linked against the
# C ABI; then the same binary with DO_NOT_TRACK=1 sends nothing and writes nothing. Then
# a Go program crashes on purpose (bindings/go/examples/crashlike): it dies as a Go panic
# does, and the collector already holds its scrubbed report.
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
crash_home="$(mktemp -d)"
trap 'rm -rf "$optout_home" "$crash_home"' EXIT
HOME="$optout_home" DO_NOT_TRACK=1 "$BIN" -endpoint "$TELEMETRY_DEMO_ENDPOINT" | sed -n "1p;\$p"
final="$(count)"
[ "$final" = "$after" ] || { echo "FAIL: DO_NOT_TRACK=1 delivered $((final - after)) events"; exit 1; }
[ -z "$(ls -A "$optout_home")" ] || { echo "FAIL: DO_NOT_TRACK=1 wrote into HOME"; exit 1; }
echo "go: with DO_NOT_TRACK=1 nothing arrived and nothing was written to HOME"

printf '\n\033[1m== %s\033[0m\n' "Go: a crash, reported before the program dies (defer client.ReportPanic())"
CRASH_BIN="$TARGET/go/crashlike"
rm -f "$CRASH_BIN"
(cd "$ROOT/bindings/go" && go build -tags telemetry_ffi_debug -o "$CRASH_BIN" ./examples/crashlike)
status=0
HOME="$crash_home" "$CRASH_BIN" -endpoint "$TELEMETRY_DEMO_ENDPOINT" 2>"$crash_home/stderr" || status=$?
[ "$status" = 2 ] || { echo "FAIL: crashlike exited with status $status, a Go panic exits with 2:"; cat "$crash_home/stderr"; exit 1; }
echo "go: crashlike exited with status 2; the runtime printed, on this machine only:"
grep -m1 '^panic: ' "$crash_home/stderr" | sed 's/^/    /'
echo "go: what the collector received before the program died (GET /api/errors?product=crashlike):"
curl -fsS "$TELEMETRY_DEMO_ENDPOINT/api/errors?product=crashlike" >"$crash_home/errors.json"
python3 - "$crash_home/errors.json" <<'PY'
import json, sys

groups = json.load(open(sys.argv[1]))
if not any(g["example"].get("$exception_level") == "fatal" for g in groups):
    sys.exit("FAIL: no crash report arrived before the program died")
def one_line(text):
    return text.replace("\n", " / ")  # errors.Join's message has one line per error


for g in sorted(groups, key=lambda g: g["example"].get("$exception_level") != "fatal"):
    p = g["example"]
    chain = p["$exception_list"]
    level, versions = p["$exception_level"], ", ".join(g["versions"])
    print(f"  {level:5}  fingerprint {g['fingerprint']}  reports {g['count']}  version {versions}")
    print(f"         {chain[0]['type']}: {one_line(chain[0]['value'])}")
    for cause in chain[1:]:
        print(f"           caused by {cause['type']}: {one_line(cause['value'])}")
    for f in chain[0]["stacktrace"]["frames"]:
        mark = "app" if f["in_app"] else "lib"
        print(f"           [{mark}] {f['function']}  {f['filename']}:{f['lineno']}")
PY
