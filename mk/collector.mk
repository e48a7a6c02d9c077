# The collector (crates/telemetry-collector) is a workspace member, so `make build` builds
# it and `make test-rust` runs its tests; this fragment adds its benchmark to `make bench`.
.PHONY: bench-collector

BENCH_TARGETS += bench-collector

# Release build (cargo bench). PostgreSQL rows start a temporary cluster from
# /usr/lib/postgresql/*/bin (deps-system installs it); BENCH_COLLECTOR_PG=off skips them,
# BENCH_COLLECTOR_SECS sets the seconds per row (default 3; the whole run takes ~30 s).
bench-collector: deps-rust ## Collector: HTTP ingest (SQLite, PostgreSQL) beside each store's own bulk rate; latency idle and under 500 slow connections
	$(CARGO) bench -p telemetry-collector --bench ingest
