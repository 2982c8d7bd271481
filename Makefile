# One way to build, test and run Miroir. The README and .ci/run use these targets.
CARGO ?= cargo

.PHONY: demo plugins test soak chart-test lint fmt ci bench-proxy

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

## What a search costs Miroir against nginx and against no proxy (needs wrk and nginx; see
## docs/benchmarks.md). Release binaries in $(BENCH_TARGET).
BENCH_TARGET ?= target
bench-proxy:
	CARGO_TARGET_DIR=$(BENCH_TARGET) $(CARGO) build --release -p miroir -p miroir-devnode
	python3 scripts/proxy_bench.py --bin $(BENCH_TARGET)/release

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
