# Slipway: `make run` brings up the local stack, `make test` runs every test on it.
# Tools are built once into .tools/bin (pinned versions, see scripts/tools.sh) and reused.

SHELL      := /bin/bash
TOOLS_DIR  ?= $(CURDIR)/.tools/bin
BIN_DIR    := $(CURDIR)/bin
GO         ?= go
export PATH := $(TOOLS_DIR):/usr/local/go/bin:/usr/sbin:/sbin:$(PATH)
export SLIPWAY_TOOLS_DIR := $(TOOLS_DIR)

.PHONY: all tools build run test unit e2e vet fmt-check bench chaos

all: build

## tools: install Debian packages and build pinned temporal, buildkitd, buildctl, temporal-ui-server (once)
tools:
	@TOOLS_DIR=$(TOOLS_DIR) scripts/tools.sh

## build: the worker, the gateway and the local stack launcher into bin/
build:
	$(GO) build -o $(BIN_DIR)/ ./cmd/worker ./cmd/gateway ./cmd/slipway-dev

## run: the whole local stack in the foreground; Ctrl-C stops it
run: tools build
	$(BIN_DIR)/slipway-dev -tools $(TOOLS_DIR)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n $$out ]]; then echo "gofmt needed: $$out"; exit 1; fi

## test: static checks, unit tests, and end-to-end tests on a real stack started by the tests
test: tools fmt-check vet
	$(GO) vet -tags opscheck ./e2e/
	$(GO) test -tags opscheck -count=1 -timeout 40m ./...

## unit: tests that need no stack (no Temporal, BuildKit or registry process)
unit:
	$(GO) test -count=1 ./build/... ./builds/... ./activities/... ./workflows/... ./webhook/... \
		./store/... ./accounts/... ./providers/... ./secretbox/... ./logstore/... ./config/... \
		./metrics/... ./registryauth/... ./registryclean/... ./retention/... ./worker/... ./cmd/reliability-report/... \
		./gateway/console/...

## e2e: only the end-to-end tests
e2e: tools
	$(GO) test -count=1 -timeout 30m -v ./e2e/...

## chaos: fault, load, fuzz and hostile-input tests on the real stack (e2e/chaos_*_test.go,
## build tag chaos); cmd/reliability-report renders what they log into docs/reliability.md
chaos: tools
	$(GO) vet -tags chaos ./e2e/
	set -o pipefail; $(GO) test -tags chaos -count=1 -timeout 40m -json -run 'Chaos' ./e2e/... | \
		$(GO) run ./cmd/reliability-report -out docs/reliability.md

## bench: Slipway against git clone + buildctl side by side, webhooks, build lists, rebuilds,
## throughput and the build network, on a stack of its own; prints the figures and writes them
## to docs/bench-results.md, which docs/performance.md explains (flags: go run ./bench -h)
bench: tools-prod
	$(GO) run ./bench -out docs/bench-results.md

.PHONY: compose-check ops-check tools-prod test-prod

## tools-prod: the tools, plus temporal-server and temporal-sql-tool built from
## go.temporal.io/server with its PostgreSQL schemas (once)
tools-prod:
	@TOOLS_DIR=$(TOOLS_DIR) scripts/tools.sh prod

## test-prod: the end-to-end tests on the production shape without containers: PostgreSQL from
## Debian's packages, the Temporal server built from source on it (schema by temporal-sql-tool,
## advanced visibility on PostgreSQL), gateways on PostgreSQL, several workers; one killed
## mid-build while the other finishes it (TestTwoWorkersOneKilled)
test-prod: tools-prod
	SLIPWAY_E2E_TOPOLOGY=prod $(GO) test -count=1 -timeout 30m -v ./e2e/...

## compose-check: validate docker-compose.temporal.yml and its deploy/ scripts without a Docker
## engine (Debian's docker-compose validates offline; installed when missing)
compose-check:
	@command -v docker-compose >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose; }
	docker-compose -f docker-compose.temporal.yml config -q
	sh -n deploy/temporal-schema.sh
	sh -n deploy/temporal-init.sh

## ops-check: run every command of the README's "Operating builds with the temporal CLI" on a
## real local stack (e2e/opscheck_test.go, build tag opscheck; also part of `make test`)
ops-check: tools
	$(GO) vet -tags opscheck ./e2e/
	$(GO) test -tags opscheck -count=1 -v -timeout 15m -run '^TestTemporalCLIOperations$$' ./e2e/
