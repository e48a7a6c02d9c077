# Jaeger v2 as a real OTLP backend (issue 13): spans exported over OTLP/HTTP and OTLP/gRPC
# are read back from Jaeger's query API. Not part of `make test`, which keeps the fast
# in-process receiver (crates/otlp-receiver); .ci/run calls it after `make test`.
# The Jaeger binary is built from the Go module proxy once per machine (about 4 minutes)
# and cached under $${XDG_CACHE_HOME:-$$HOME/.cache}/telemetry-core/ (scripts/jaeger/build.sh).
.PHONY: test-jaeger jaeger-bin

JAEGER_VERSION ?= v1.76.0
JAEGER_RUN := JAEGER_VERSION=$(JAEGER_VERSION) bash $(ROOT)/scripts/jaeger/run.sh
# The core's own Jaeger test, when it exists (crates/telemetry-core/tests/jaeger.rs).
JAEGER_CORE_TEST := $(ROOT)/crates/telemetry-core/tests/jaeger.rs

jaeger-bin: ## Build (or reuse) the cached Jaeger v2 binary
	JAEGER_VERSION=$(JAEGER_VERSION) bash scripts/jaeger/build.sh

# --include-ignored: these tests are #[ignore] in `make test`, where no Jaeger runs.
# run.sh gives them JAEGER_OTLP_GRPC, JAEGER_OTLP_HTTP and JAEGER_QUERY (URLs on 127.0.0.1).
test-jaeger: deps-rust jaeger-bin ## Jaeger v2 on free loopback ports: spans over OTLP HTTP and gRPC read back from its query API
	$(JAEGER_RUN) $(CARGO) test -p otlp-receiver --test jaeger -- --include-ignored
	@if [ -f $(JAEGER_CORE_TEST) ]; then \
		echo "$(JAEGER_RUN) $(CARGO) test -p telemetry-core --test jaeger -- --include-ignored"; \
		$(JAEGER_RUN) $(CARGO) test -p telemetry-core --test jaeger -- --include-ignored; \
	else echo "test-jaeger: no $(JAEGER_CORE_TEST) yet, skipped"; fi
