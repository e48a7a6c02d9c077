# The `telemetry` command (crates/telemetry-cli). It is a workspace member, so `make build`
# builds it and `make test-rust` runs its tests; this fragment only adds a way to try it.
.PHONY: cli
CLI_PROFILE ?= chroma
CLI_ARGS ?= status

cli: deps-rust ## Run `telemetry $(CLI_ARGS) --profile $(CLI_PROFILE)` (defaults: status, chroma)
	$(CARGO) run -q -p telemetry-cli -- $(CLI_ARGS) --profile $(CLI_PROFILE)
