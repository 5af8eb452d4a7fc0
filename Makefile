# Slipway: `make run` brings up the local stack, `make test` runs every test on it.
# Tools are built once into .tools/bin (pinned versions, see scripts/tools.sh) and reused.

SHELL      := /bin/bash
TOOLS_DIR  ?= $(CURDIR)/.tools/bin
BIN_DIR    := $(CURDIR)/bin
GO         ?= go
export PATH := $(TOOLS_DIR):/usr/local/go/bin:/usr/sbin:/sbin:$(PATH)
export SLIPWAY_TOOLS_DIR := $(TOOLS_DIR)

.PHONY: all tools build run test unit e2e vet fmt-check bench

all: build

## tools: install Debian packages and build pinned temporal, buildkitd, buildctl (once)
tools:
	@TOOLS_DIR=$(TOOLS_DIR) scripts/tools.sh

## build: the worker, the gateway and the local stack launcher into bin/
build:
	$(GO) build -o $(BIN_DIR)/ ./worker ./gateway ./cmd/slipway-dev

## run: the whole local stack in the foreground; Ctrl-C stops it
run: tools build
	$(BIN_DIR)/slipway-dev -tools $(TOOLS_DIR) -worker $(BIN_DIR)/worker -gateway $(BIN_DIR)/gateway

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n $$out ]]; then echo "gofmt needed: $$out"; exit 1; fi

## test: static checks, unit tests, and end-to-end tests on a real stack started by the tests
test: tools fmt-check vet
	$(GO) test -count=1 -timeout 40m ./...

## unit: tests that need no stack
unit:
	$(GO) test -count=1 ./activities/... ./workflows/... ./logstore/... ./config/...

## e2e: only the end-to-end tests
e2e: tools
	$(GO) test -count=1 -timeout 30m -v ./e2e/...
