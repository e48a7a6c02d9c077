# PostHog's official SDKs sending to the collector binary (tests/senders): posthog-go from
# the Go module proxy in a module of its own, posthog-node from npm, and posthog-js's
# request shapes through node's fetch. The collector comes from the workspace's debug build.
.PHONY: deps-senders test-senders

DEPS_TARGETS += deps-senders
TEST_TARGETS += test-senders

GO ?= go
NODE ?= node
NPM ?= npm
SENDERS_GO := $(ROOT)/tests/senders/go
SENDERS_NODE := $(ROOT)/tests/senders/node
SENDERS_COLLECTOR := $(CARGO_TARGET_DIR)/debug/telemetry-collector
# npm ci again only when node_modules is missing or the lock changed: the stamp is named
# after the lock's hash.
SENDERS_NODE_STAMP := $(SENDERS_NODE)/node_modules/.deps-$(shell sha256sum $(SENDERS_NODE)/package-lock.json 2>/dev/null | cut -c1-16)

deps-senders: $(SENDERS_NODE_STAMP) ## posthog-go (go mod download) and posthog-node (npm ci) for tests/senders
	@command -v $(GO) >/dev/null || { echo "go not found: install Go >= 1.24"; exit 1; }
	cd $(SENDERS_GO) && $(GO) mod download

$(SENDERS_NODE_STAMP): $(SENDERS_NODE)/package-lock.json
	@command -v $(NODE) >/dev/null || { echo "node not found: install Node.js 20.20+ or 22.22+ (Debian: apt-get install nodejs npm)"; exit 1; }
	@command -v $(NPM) >/dev/null || { echo "npm not found: install npm (Debian: apt-get install npm)"; exit 1; }
	@major="$$($(NODE) -p 'process.versions.node.split(".")[0]')"; [ "$$major" -ge 20 ] || \
		{ echo "node $$($(NODE) --version) is too old: posthog-node needs 20.20+ or 22.22+"; exit 1; }
	cd $(SENDERS_NODE) && $(NPM) ci --no-audit --no-fund
	rm -f $(SENDERS_NODE)/node_modules/.deps-* && touch $@

test-senders: build deps-senders ## Official PostHog SDKs to the collector: posthog-go, posthog-node, posthog-js's body shapes
	@test -x $(SENDERS_COLLECTOR) || { echo "$(SENDERS_COLLECTOR) missing: the workspace build should make it"; exit 1; }
	@unformatted="$$(cd $(SENDERS_GO) && gofmt -l .)"; [ -z "$$unformatted" ] || { echo "gofmt needed: $$unformatted"; exit 1; }
	cd $(SENDERS_GO) && $(GO) vet ./...
	# Both suites run even when the first fails, so one SDK's failure hides nothing of the
	# other's. -count=1: go caches test results without knowing the collector changed.
	status=0; \
	(cd $(SENDERS_GO) && TELEMETRY_COLLECTOR_BIN=$(SENDERS_COLLECTOR) $(GO) test -count=1 ./...) || status=1; \
	(cd $(SENDERS_NODE) && TELEMETRY_COLLECTOR_BIN=$(SENDERS_COLLECTOR) $(NODE) --test --test-timeout=20000) || status=1; \
	exit $$status
