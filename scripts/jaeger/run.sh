#!/usr/bin/env bash
# Starts Jaeger v2 on free 127.0.0.1 ports from scripts/jaeger/config.yaml, waits until
# it answers, runs a command with the addresses in its environment, and stops Jaeger
# when the command ends (or this script is interrupted).
#
#   scripts/jaeger/run.sh cargo test -p otlp-receiver --test jaeger -- --ignored
#   scripts/jaeger/run.sh            # no command: print the addresses, wait for Ctrl-C
#
# The command gets:
#   JAEGER_OTLP_GRPC  http://127.0.0.1:PORT   OTLP/gRPC endpoint
#   JAEGER_OTLP_HTTP  http://127.0.0.1:PORT   OTLP/HTTP base URL (POST .../v1/traces)
#   JAEGER_QUERY      http://127.0.0.1:PORT   query API (GET .../api/traces?service=NAME)
# JAEGER_BIN names the binary (default: scripts/jaeger/build.sh builds or reuses it);
# JAEGER_LOG the log file (default: a temporary file, printed on failure).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${JAEGER_BIN:-$("$here/build.sh")}"
if [ -n "${JAEGER_LOG:-}" ]; then
  log="$JAEGER_LOG" own_log=""
else
  log="$(mktemp "${TMPDIR:-/tmp}/jaeger.XXXXXX.log")" own_log=yes
fi
pid=""

stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # A collector shuts down in well under a second; never leave one behind.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
# On success a temporary log goes with Jaeger; on failure it stays for reading.
finish() {
  local status=$?
  stop
  if [ "$status" = 0 ] && [ -n "$own_log" ]; then rm -f "$log"; fi
  return "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Four distinct ports the kernel just handed out. Another process could take one before
# Jaeger binds it, so a start that fails is retried with new ports.
free_ports() {
  python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started=""
for attempt in 1 2 3; do
  read -r grpc_port http_port query_port query_grpc_port < <(free_ports)
  JAEGER_OTLP_GRPC_PORT=$grpc_port JAEGER_OTLP_HTTP_PORT=$http_port \
    JAEGER_QUERY_HTTP_PORT=$query_port JAEGER_QUERY_GRPC_PORT=$query_grpc_port \
    "$bin" --config "file:$here/config.yaml" >"$log" 2>&1 &
  pid=$!
  # Ready: the query API answers and both OTLP ports accept connections.
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -fsS -o /dev/null "http://127.0.0.1:$query_port/api/services" 2>/dev/null &&
      listening "$grpc_port" && listening "$http_port"; then
      started=yes
      break
    fi
    sleep 0.1
  done
  [ -n "$started" ] && break
  echo "jaeger: not ready (attempt $attempt); its log:" >&2
  tail -20 "$log" >&2
  stop
done
[ -n "$started" ] || { echo "jaeger: could not start $bin" >&2; exit 1; }

export JAEGER_OTLP_GRPC="http://127.0.0.1:$grpc_port"
export JAEGER_OTLP_HTTP="http://127.0.0.1:$http_port"
export JAEGER_QUERY="http://127.0.0.1:$query_port"
echo "jaeger: ready (pid $pid, log $log): JAEGER_OTLP_GRPC=$JAEGER_OTLP_GRPC JAEGER_OTLP_HTTP=$JAEGER_OTLP_HTTP JAEGER_QUERY=$JAEGER_QUERY" >&2

if [ $# -eq 0 ]; then
  # For a shell: eval "$(scripts/jaeger/run.sh)" would not keep Jaeger alive, so print
  # the exports to copy into another terminal.
  echo "export JAEGER_OTLP_GRPC=$JAEGER_OTLP_GRPC JAEGER_OTLP_HTTP=$JAEGER_OTLP_HTTP JAEGER_QUERY=$JAEGER_QUERY"
  echo "jaeger: Ctrl-C stops it" >&2
  wait "$pid"
  exit $?
fi
status=0
"$@" || status=$?
kill -0 "$pid" 2>/dev/null || { echo "jaeger: died during the run; its log:" >&2; tail -20 "$log" >&2; status=1; }
exit $status
