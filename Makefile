# promptcascade — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   ?= bin
PKGS  ?= ./...
# Tests talk to the machine's Postgres (database "test") and embed their own nats-server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_DATABASE_URL
# The pinned linter, built from the Go module proxy by `make lint-install`.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT ?= $(shell $(GO) env GOPATH)/bin/golangci-lint

.PHONY: help build test test-race test-short lint lint-install deploy-check bench bench-go bench-postgres demo demo-router fuzz clean nats-server promtool rules-check

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/worker, bin/enqueue, bin/cascadectl
	$(GO) build -o $(BIN)/ ./cmd/...

nats-server: ## build a current nats-server from the pinned Go module into bin/
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

test: ## all tests: unit, integration (Postgres + embedded JetStream) and end-to-end
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 12m $(PKGS)

test-short: ## unit and integration tests, without the end-to-end and fault-injection tests (they skip under -short)
	$(GO) test -count=1 -short $(PKGS)

test-race: ## all tests under the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

lint-install: ## install golangci-lint v2.15.0 (the pinned version) unless it is there
	@$(GOLANGCI_LINT) version 2>/dev/null | grep -q 'version $(GOLANGCI_LINT_VERSION:v%=%) ' || \
		{ echo "installing golangci-lint $(GOLANGCI_LINT_VERSION)"; $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); }

lint: lint-install deploy-check rules-check ## gofmt, go vet, golangci-lint v2.15.0 (.golangci.yml), the deployment files, and promtool on the alerts
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GOLANGCI_LINT) run ./...

# deploy/check is a module of its own (kustomize v5.7.1's library, k8s.io/api,
# compose-go: pinned in deploy/check/go.mod, offline once downloaded): it
# renders deploy/kubernetes, decodes every object strictly and checks the
# fields the README promises; it loads docker-compose.yml as docker compose
# does. `docker compose config -q` runs too where the plugin is installed.
deploy-check: ## render and check deploy/kubernetes and docker-compose.yml
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 ./...
	@if docker compose version >/dev/null 2>&1; then docker compose config -q && docker compose --profile cluster --profile tools config -q; else echo "docker compose plugin not installed; docker-compose.yml checked by deploy/check only"; fi

promtool: ## build promtool from the pinned Prometheus module (tools/promtool/go.mod) into bin/
	cd tools/promtool && $(GO) build -o $(abspath $(BIN))/promtool github.com/prometheus/prometheus/cmd/promtool

rules-check: promtool ## promtool check rules and test rules (alerts_test.yml) on deploy/prometheus
	$(BIN)/promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && $(abspath $(BIN))/promtool test rules alerts_test.yml

bench: build nats-server ## measured run of the real binaries: prints one table, rewrites BENCHMARKS.md (a few minutes)
	$(GO) build -o $(BIN)/ ./bench/...
	$(BIN)/benchrun -o BENCHMARKS.md $(BENCH_FLAGS)

bench-go: ## go test benchmarks of the hot path (classifier, tokens, cascade, store, queue, worker)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

bench-postgres: ## write path and report queries at 10M request_log rows; rewrites the postgres section of BENCHMARKS.md (takes minutes; not in make bench or make test)
	PC_SCALE_ROWS=$${PC_SCALE_ROWS:-10000000} PC_SCALE_REPORT=$(CURDIR)/BENCHMARKS.md $(GO) test -run '^$$' -bench BenchmarkPostgresScale -benchtime 1x -timeout 90m ./internal/store

fuzz: ## run each fuzz target for 20s
	$(GO) test -run '^$$' -fuzz FuzzClassify -fuzztime 20s ./internal/classify
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 20s ./internal/input

demo: ## enqueue the 1,250-prompt sample and run two workers on simulated models (no API keys)
	./scripts/demo.sh

demo-router: ## the learned-router loop: heuristic batch, router train --from-db, learned batch, compare
	./scripts/router-demo.sh

clean: ## remove build output
	rm -rf $(BIN)
