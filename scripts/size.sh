#!/usr/bin/env bash
# `make size`: what telemetry-core adds to what an integrator ships, each figure beside its
# reference and its target, measured in one run from release builds (fat LTO, one codegen
# unit, stripped: the workspace's release profile).
#
#   scripts/size.sh <target dir> <repository root>
#
# Rows: the C shared library with the default features and with gRPC; the abi3 wheel; a
# stripped Go program (a net/http "hello" server, bindings/go/bench/size/) without any
# telemetry, with telemetry-core, and with posthog-go.
set -euo pipefail
target=$1
root=$2
out=$target/size
mkdir -p "$out"
cargo=${CARGO:-cargo}
go=${GO:-go}
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
delta() { awk -v b="$1" 'BEGIN { printf "%+.2f MiB", b / 1048576 }'; }
bytes() { stat -c %s "$1"; }

# Each library on its own (cargo rustc --crate-type): built together with the staticlib and
# rlib, LTO would not apply to the shared library the same way, and the Go module ships the
# staticlib built alone.
# The two variants share one output file name (a cdylib's carries no hash): removing it
# makes cargo link the variant asked for instead of taking the other's file as fresh.
fresh_so() { rm -f "$target/release/libtelemetry_ffi.so" "$target/release/deps/libtelemetry_ffi.so"; }
echo "size: C shared library, default features (events, usage statistics, crash reports, OTLP over HTTP)"
fresh_so
"$cargo" rustc -q --release -p telemetry-ffi --crate-type cdylib
cp "$target/release/libtelemetry_ffi.so" "$out/libtelemetry_ffi.so"
echo "size: C shared library with --features grpc"
fresh_so
"$cargo" rustc -q --release -p telemetry-ffi --features grpc --crate-type cdylib
cp "$target/release/libtelemetry_ffi.so" "$out/libtelemetry_ffi-grpc.so"
echo "size: the static library the Go module carries"
"$cargo" rustc -q --release -p telemetry-ffi --crate-type staticlib

echo "size: the wheel (maturin build --release)"
rm -rf "$out/wheel"
VIRTUAL_ENV="$root/.venv" "$root/.venv/bin/maturin" build -q --release -o "$out/wheel" >/dev/null
wheel=$(ls "$out"/wheel/*.whl)

echo "size: Go programs (go build -trimpath -ldflags='-s -w')"
for program in plain telemetry posthog; do
	(cd "$root/bindings/go/bench" && "$go" build -trimpath -ldflags='-s -w' \
		-o "$out/go-$program" "./size/$program")
done

so=$(bytes "$out/libtelemetry_ffi.so")
so_grpc=$(bytes "$out/libtelemetry_ffi-grpc.so")
whl=$(bytes "$wheel")
plain=$(bytes "$out/go-plain")
ours=$(bytes "$out/go-telemetry")
posthog=$(bytes "$out/go-posthog")
limit_so=$((3 * 1048576))
limit_whl=$((3 * 1048576 / 2))
limit_go=$((3 * 1048576))
verdict() { if [ "$1" -le "$2" ]; then echo "within"; else echo "OVER"; fi; }

echo
echo "make size: features measured: telemetry-core's default for what ships (events, usage statistics, crash reports, OTLP over HTTP); gRPC apart"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "artifact" "size" "reference" "target"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------" "--------------" "------------------------------------" "------------------"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "libtelemetry_ffi.so (stripped)" "$(mib "$so")" "" "<= 3.00 MiB: $(verdict "$so" $limit_so)"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "libtelemetry_ffi.so --features grpc" "$(mib "$so_grpc")" "gRPC adds $(delta $((so_grpc - so)))" "(reported apart)"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "wheel $(basename "$wheel" | cut -c1-40)" "$(mib "$whl")" "" "<= 1.50 MiB: $(verdict "$whl" $limit_whl)"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "Go net/http hello, no telemetry" "$(mib "$plain")" "the reference" ""
printf '| %-46s | %-12s | %-34s | %-16s |\n' "Go hello + telemetry-core" "$(mib "$ours")" "adds $(delta $((ours - plain)))" "<= +3.00 MiB: $(verdict $((ours - plain)) $limit_go)"
printf '| %-46s | %-12s | %-34s | %-16s |\n' "Go hello + posthog-go" "$(mib "$posthog")" "adds $(delta $((posthog - plain)))" ""
