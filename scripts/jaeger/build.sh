#!/usr/bin/env bash
# Builds Jaeger v2 (an OpenTelemetry Collector distribution) from the Go module proxy and
# caches the binary, so `make test-jaeger` pays the ~4 minute build once per machine.
#
#   scripts/jaeger/build.sh          # prints the binary's path on stdout
#   JAEGER_BIN=$(scripts/jaeger/build.sh)
#
# Why a scratch module: `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0`
# refuses the module (its go.mod has replace directives), while `go get -tool` in a module
# of our own resolves it and `go build` of the package then works.
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/telemetry-core/jaeger-${JAEGER_VERSION}"
BIN="$CACHE_DIR/jaeger"
GO="${GO:-go}"

if [ -x "$BIN" ] && "$BIN" --help >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

command -v "$GO" >/dev/null || { echo "jaeger build: go not found (Go >= 1.24 is needed)" >&2; exit 1; }
mkdir -p "$CACHE_DIR"
scratch="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

start=$SECONDS
log="$CACHE_DIR/build.log"
echo "jaeger build: building github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION (minutes, once per machine; log: $log)" >&2
if ! (
  cd "$scratch"
  # GOFLAGS from the environment (e.g. -mod=vendor) must not leak into the scratch module.
  export GOFLAGS=-buildvcs=false
  "$GO" mod init jaeger-build
  "$GO" get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
  # nice: the machine is small and shared; the build is not urgent next to other work.
  nice -n 10 "$GO" build -trimpath -o "$scratch/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
) >"$log" 2>&1; then
  echo "jaeger build: failed; the end of $log:" >&2
  tail -30 "$log" >&2
  exit 1
fi
# Moved into place only once complete, so an interrupted build never leaves a broken cache.
mv -f "$scratch/jaeger" "$BIN"
echo "jaeger build: done in $((SECONDS - start)) s: $BIN" >&2
echo "$BIN"
