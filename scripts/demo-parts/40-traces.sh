#!/usr/bin/env bash
# make demo, traces: observability is the operator's, not telemetry. A local OTLP receiver
# (crates/otlp-receiver, decoding with the official definitions) stands in for the
# operator's collector. The Go Chroma-like client (bindings/go/examples/chromalike, built by
# 20-go.sh) sends its HTTP requests to a small traced Python server
# (python/examples/traced_server.py); `traceparent` joins them into one trace per
# operation, printed as a tree of spans with durations. Both are configured as Chroma
# operators configure Chroma (CHROMA_OTEL_*), with telemetry itself opted out to show the
# two are independent. Then CHROMA_OTEL_GRANULARITY=none: nothing is recorded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PY="$ROOT/.venv/bin/python"
GO_BIN="$TARGET/go/chromalike"
: "${TELEMETRY_DEMO_HOME:?set by scripts/demo.sh}"
[ -x "$PY" ] || { echo "the traces part needs the venv: run make deps-python"; exit 1; }
[ -x "$GO_BIN" ] || { echo "the traces part needs $GO_BIN (scripts/demo-parts/20-go.sh builds it)"; exit 1; }

printf '\n\033[1m== %s\033[0m\n' "Traces: a Go client and a Python server, joined by traceparent, in a local OTLP receiver"
WORK="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$TARGET/debug/otlp-receiver" --ready-file "$WORK/ready.json" >"$WORK/receiver.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$WORK/ready.json" ] && break; sleep 0.1; done
[ -s "$WORK/ready.json" ] || { echo "the OTLP receiver did not start:"; cat "$WORK/receiver.out"; exit 1; }
read -r RX_HTTP RX_GRPC < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["http"], d["grpc"])' "$WORK/ready.json")
echo "OTLP receiver: gRPC on $RX_GRPC, HTTP on $RX_HTTP"

# The operator's configuration, the way Chroma's docs give it; telemetry opted out.
export ANONYMIZED_TELEMETRY=False
export CHROMA_OTEL_COLLECTION_ENDPOINT="http://$RX_GRPC"
export CHROMA_OTEL_GRANULARITY=operation_and_segment

HOME="$TELEMETRY_DEMO_HOME" CHROMA_OTEL_SERVICE_NAME=python-server \
  "$PY" "$ROOT/python/examples/traced_server.py" >"$WORK/server.out" 2>"$WORK/server.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://127.0.0.1:[0-9]*' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
SERVER="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/server.out" | head -1)"
[ -n "$SERVER" ] || { echo "the traced server did not start:"; cat "$WORK/server.log"; exit 1; }
echo "traced Python server: $SERVER"

spans() { curl -fsS "http://$RX_HTTP/spans" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
HOME="$TELEMETRY_DEMO_HOME" CHROMA_OTEL_SERVICE_NAME=go-client \
  "$GO_BIN" -server "$SERVER" -docs 20 -queries 2 >/dev/null
# The server exports on its own schedule: wait until the spans stop arriving.
last=-1
for _ in $(seq 50); do
  n="$(spans)"
  [ "$n" = "$last" ] && [ "$n" -gt 0 ] && break
  last="$n"; sleep 0.2
done
echo "the receiver holds $n spans; the traces, as the operator's backend would show them:"
# Read whole, then cut: `curl | head` fails under pipefail when head exits first.
curl -fsS -o "$WORK/tree.txt" "http://$RX_HTTP/tree"
head -60 "$WORK/tree.txt"
python3 - "http://$RX_HTTP/spans" <<'PY'
import json, sys, urllib.request
spans = json.load(urllib.request.urlopen(sys.argv[1]))
services = {s["resource"].get("service.name") for s in spans}
by_id = {s["span_id"]: s for s in spans}
joined = [s for s in spans if s["resource"].get("service.name") == "python-server" and s["parent_span_id"] in by_id
          and by_id[s["parent_span_id"]]["resource"].get("service.name") == "go-client"]
assert {"go-client", "python-server"} <= services, services
assert joined, "no server span has a Go client span as its parent"
print(f"{len(joined)} server spans joined their Go client's trace through traceparent")
PY

printf '\n\033[1m== %s\033[0m\n' "Traces: the same client with CHROMA_OTEL_GRANULARITY=none"
client_spans() {
  curl -fsS "http://$RX_HTTP/spans" |
    python3 -c 'import json,sys; print(sum(s["resource"].get("service.name") == "go-client" for s in json.load(sys.stdin)))'
}
before="$(client_spans)"
HOME="$TELEMETRY_DEMO_HOME" CHROMA_OTEL_SERVICE_NAME=go-client CHROMA_OTEL_GRANULARITY=none \
  "$GO_BIN" -server "$SERVER" -docs 5 -queries 1 >/dev/null
sleep 0.5
after="$(client_spans)"
echo "go-client spans in the receiver: $before before, $after after a run with granularity none"
[ "$before" = "$after" ] || { echo "FAIL: granularity none recorded spans"; exit 1; }
echo "granularity none: the client recorded nothing (and started no export thread)"
