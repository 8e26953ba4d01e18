# KMT — the two commands a newcomer needs are `make demo` and `make test`.

CARGO ?= cargo
PORT ?= 8080
DATA ?= ./data

.PHONY: demo test lint unit web-test build release bench bench-relevance bench-recommend bench-events fmt clean model

## make demo: build and start the demo on the embedded store (http://127.0.0.1:$(PORT)/)
demo: model
	$(CARGO) build --release -p kmt-api
	$${CARGO_TARGET_DIR:-target}/release/kmt demo --port $(PORT) --data $(DATA)

## make test: provision PostgreSQL, then run lints and every test (Rust, then the web client and browser tests)
test: model lint unit web-test

unit:
	@. scripts/ensure-postgres.sh && $(CARGO) test --workspace --all-targets

## make web-test: type-check the JavaScript client, its unit tests, then the browser tests
## (Debian's chromium driven by playwright-core against a real `kmt demo`)
web-test:
	$(CARGO) build -p kmt-api
	bash scripts/ensure-browser.sh
	web/node_modules/.bin/tsc -p web/jsconfig.json
	node --test web/test/*.test.mjs
	node --test --test-concurrency=1 web/e2e/*.test.mjs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p kmt-api -p kmt-indexer -p kmt-benches

## make model: fetch and verify the embedding model (all-MiniLM-L6-v2) into KMT_MODEL_DIR
model:
	bash scripts/fetch-model.sh

## make bench: the latency benchmark at 100,000 articles (writes BENCHMARKS.md)
bench:
	bash benches/run-latency.sh

## make bench-relevance: nDCG@10 / recall@100 / MRR@10 on msmarco-5k against a bm25s reference
bench-relevance:
	bash benches/run-relevance.sh

## make bench-recommend: our CF models vs Surprise on ml-100k (same run), then ranking quality
bench-recommend:
	bash benches/run-recommend.sh

## make bench-events: search latency with usage-event recording on and off
bench-events:
	bash benches/run-events.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
