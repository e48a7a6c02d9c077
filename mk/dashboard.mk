# The collector's web dashboard in a real browser (tests/dashboard): node's own test runner
# with playwright-core from npm driving Debian's chromium (/usr/bin/chromium, installed by
# deps-system; no browser is downloaded). The tests run the workspace's debug collector;
# the benchmark a release build, over SQLite and a PostgreSQL server of its own.
.PHONY: deps-dashboard test-dashboard bench-dashboard

DEPS_TARGETS += deps-dashboard
TEST_TARGETS += test-dashboard
BENCH_TARGETS += bench-dashboard

NODE ?= node
NPM ?= npm
DASHBOARD := $(ROOT)/tests/dashboard
DASHBOARD_COLLECTOR := $(CARGO_TARGET_DIR)/debug/telemetry-collector
DASHBOARD_CHROMIUM ?= /usr/bin/chromium
# The suites in order (node --test runs them one at a time: two cores, a browser and a
# collector each). The 1M-event one generates its data with the debug build.
DASHBOARD_SUITES := realistic.test.mjs empty.test.mjs access.test.mjs delete.test.mjs scale.test.mjs
# npm ci again only when node_modules is missing or the lock changed: the stamp is named
# after the lock's hash.
DASHBOARD_STAMP := $(DASHBOARD)/node_modules/.deps-$(shell sha256sum $(DASHBOARD)/package-lock.json 2>/dev/null | cut -c1-16)

deps-dashboard: $(DASHBOARD_STAMP) ## playwright-core (npm ci) for tests/dashboard; checks Debian's chromium is there
	@test -x $(DASHBOARD_CHROMIUM) || { echo "$(DASHBOARD_CHROMIUM) missing: run make deps-system (Debian's chromium package)"; exit 1; }

$(DASHBOARD_STAMP): $(DASHBOARD)/package-lock.json
	@command -v $(NODE) >/dev/null || { echo "node not found: install Node.js 20+ (Debian: apt-get install nodejs npm)"; exit 1; }
	@command -v $(NPM) >/dev/null || { echo "npm not found: install npm (Debian: apt-get install npm)"; exit 1; }
	@major="$$($(NODE) -p 'process.versions.node.split(".")[0]')"; [ "$$major" -ge 20 ] || \
		{ echo "node $$($(NODE) --version) is too old: the dashboard tests need 20+"; exit 1; }
	cd $(DASHBOARD) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(NPM) ci --no-audit --no-fund --loglevel=error
	rm -f $(DASHBOARD)/node_modules/.deps-* && touch $@

test-dashboard: build deps-dashboard ## Dashboard in headless Chromium: views vs /api/stats, filters, CSV, escaping, CSP, keyboard, login, delete, 1M events
	@test -x $(DASHBOARD_COLLECTOR) || { echo "$(DASHBOARD_COLLECTOR) missing: the workspace build should make it"; exit 1; }
	cd $(DASHBOARD) && TELEMETRY_COLLECTOR_BIN=$(DASHBOARD_COLLECTOR) DASHBOARD_CHROMIUM=$(DASHBOARD_CHROMIUM) \
		$(NODE) --test --test-concurrency=1 --test-timeout=900000 $(DASHBOARD_SUITES)
	@echo "screenshots: $(CARGO_TARGET_DIR)/dashboard-test/"

# Release build, as bench-collector's cargo bench. DASHBOARD_BENCH_EVENTS sets the size
# (default 1000000), DASHBOARD_BENCH_PG=off skips PostgreSQL.
bench-dashboard: deps-rust deps-dashboard ## Dashboard over 1M events, SQLite beside PostgreSQL: page loads (Chromium) and /api/stats times against < 1 s
	$(CARGO) build --release -p telemetry-collector
	cd $(DASHBOARD) && TELEMETRY_COLLECTOR_BIN=$(CARGO_TARGET_DIR)/release/telemetry-collector DASHBOARD_CHROMIUM=$(DASHBOARD_CHROMIUM) \
		$(NODE) bench.mjs
