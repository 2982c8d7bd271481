# One way to build, test and run Miroir. The README and .ci/run use these targets.
CARGO ?= cargo

.PHONY: demo plugins test soak chart-test lint fmt ci

## Start a development node with sample data and print a search.
demo:
	bash scripts/demo.sh

## Build every plugin (plugins/, examples/plugins/) for wasm32-wasip2 into target/plugins/.
plugins:
	bash scripts/build-plugins.sh

## Run the whole test suite (the plugin runtime's tests load the components `plugins` builds).
test: plugins
	$(CARGO) test --workspace
	$(MAKE) chart-test

## The soak test (a few minutes): searches and writes while nodes are killed, emptied and slowed
## in turn (MIROIR_SOAK_SECONDS, default 120).
soak:
	$(CARGO) test -p miroir --test soak -- --ignored --nocapture

## The Helm chart's tests: rendered by Helm's engine, validated against Kubernetes' schemas, and
## the rendered configuration checked by the `miroir` binary the workspace tests built.
chart-test:
	python3 -m unittest discover -s charts/tests -v

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

ci: test lint
