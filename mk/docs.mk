# The documentation's code: every block of every README and docs/*.md is run or checked
# (tests/docs/check_readmes.py says how, per language). Runs after the workspace build,
# with its debug binaries and C library.
.PHONY: test-docs

TEST_TARGETS += test-docs

test-docs: build ## README and docs code blocks: C and shell examples run, the rest proven covered
	$(PYTHON) tests/docs/check_readmes.py $(ROOT) $(CARGO_TARGET_DIR)
