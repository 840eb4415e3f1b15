# Small build glue. The README's two commands are `go run ./server` and
# `make test`; everything else here is for people changing the contracts.

BUF := go tool -modfile=.ci/tools/go.mod buf

.PHONY: run test lighthouse bench bench-quick generate lint breaking check-generated publish-api openapi-lint redis-topologies chaos soak flake-gate

# Browser tests save a screenshot of every view here for review.
export SCREENSHOT_DIR ?= $(CURDIR)/.screenshots
# The browser tests run axe-core on every view; .ci/openapi pins it (npm ci
# there runs before the Go tests, in openapi-lint).
export AXE_JS ?= $(CURDIR)/.ci/openapi/node_modules/axe-core/axe.min.js

run:
	go run ./server

# The full suite: contracts, vet, and every Go test against the embedded
# store and against real PostgreSQL and Redis started by .ci/with-services,
# with the race detector. Then the flake gate's CI size: the whole suite a
# second time under a CPU hog on both cores, with REST through a separate
# gateway over a real gRPC connection (TEST_GATEWAY=split, the path a
# `server gateway` deployment takes; the race run took the in-process
# one), and the canvas and vote live tests 20 times under the hog. Then the
# Redis Cluster and Sentinel runs and the chaos run.
test: check-generated lint breaking openapi-lint crdb-parse deploy-check
	go vet ./...
	.ci/with-services go test -race -count=1 -timeout 40m ./...
	FLAKE_RUNS=1 .ci/flake-gate
	$(MAKE) redis-topologies
	$(MAKE) chaos

# The packages whose tests reach Redis, run again on a 3-master Redis
# Cluster and on Sentinel (1 master, 1 replica, 3 sentinels) started by
# .ci/with-redis; there the e2e cases run on PostgreSQL + Redis only (the
# embedded engine ran above), and TestSentinelFailover kills the master
# under load. The browser tests stay on the single node (they add minutes
# and no Redis path the API cases miss), and so does the race detector
# (the code is the same; the topology is what these runs are about).
REDIS_PKGS := ./server/platform/... ./server/canvas/ ./server/vote/ ./server/shortener/ ./server/app/
redis-topologies:
	.ci/with-services sh -c '.ci/with-redis cluster go test -count=1 -timeout 30m -skip TestBrowser $(REDIS_PKGS) && \
		.ci/with-redis sentinel go test -count=1 -timeout 30m -skip TestBrowser $(REDIS_PKGS)'

# Three replicas behind HAProxy with faults injected under a mixed load,
# then a check of every acknowledged operation (.ci/chaos). CHAOS_ROUNDS
# rounds of the four fault kinds.
CHAOS_ROUNDS ?= 3
chaos:
	.ci/with-services sh -c 'cd .ci/chaos && go vet ./... && go run . -rounds $(CHAOS_ROUNDS)'

# The chaos run's replicas and load without faults for SOAK (10 minutes),
# RSS, Go heap and goroutines of every replica printed every 30 s; fails
# unless each replica is back within 10% of its warmed-up footprint within
# 3 minutes of the load stopping, or if the checker finds a violation.
# Not in CI (it takes a quarter of an hour).
SOAK ?= 10m
soak:
	.ci/with-services sh -c 'cd .ci/chaos && go run . -soak $(SOAK)'

# The suite must not depend on an idle machine: with stress-ng keeping both
# cores busy, the whole suite twice in a row, then the canvas and vote live
# tests 20 times (.ci/flake-gate; `make test` runs it with one whole run).
flake-gate:
	.ci/flake-gate

# Lighthouse's mobile performance score of the canvas and election pages,
# on a platform built from this tree (embedded store, free loopback ports)
# and this machine's Chromium (.ci/lighthouse). Not part of `make test`:
# the scores move with the machine's load. LIGHTHOUSE_MIN=90 fails a run
# that scores lower.
lighthouse:
	.ci/lighthouse/run

# Benchmarks on the embedded store and on PostgreSQL + Redis; each reports
# its cost as a multiple of a baseline measured in the same run.
bench:
	bash -o pipefail -c '.ci/with-services .ci/bench 2>&1 | tee bench.out'

# Under three minutes: the REST edge against the bare ceiling (one short
# round) and the hot paths' allocations; also saved to bench.out.
bench-quick:
	bash -o pipefail -c '.ci/with-services .ci/bench quick 2>&1 | tee bench.out'

# buf writes the Go code and an OpenAPI 2 document; gateway/openapigen turns
# that into the OpenAPI 3 document served at /openapi.json (gen/openapi),
# adding what the plugin cannot express; the API reference at /docs is
# Redoc's bundle from the npm package pinned in .ci/openapi.
generate:
	.ci/protodeps
	$(BUF) generate
	go run ./gateway/openapigen
	.ci/openapi/run docs

# The served OpenAPI document passes redocly lint (pinned in .ci/openapi).
openapi-lint:
	.ci/openapi/run lint

lint:
	.ci/protodeps
	$(BUF) lint

# Published contracts must not break: compare with the image of the last
# published API (refresh it with `make publish-api` when cutting a release).
breaking:
	.ci/protodeps
	$(BUF) breaking api --against api/published.binpb

publish-api:
	.ci/protodeps
	$(BUF) build api -o api/published.binpb

# gen/ and the API reference bundle are committed; fail when they differ
# from what `make generate` produces.
check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen gateway/docs)" ]; then \
		git status --short -- gen gateway/docs; \
		echo "gen/ or gateway/docs/ is out of date: run 'make generate' and commit it" >&2; exit 1; fi

# Every migration, portable and CockroachDB-only, and the multi-region
# statements generated for 1, 2 and 3 regions must each be exactly one
# statement that CockroachDB's own parser accepts. The parser is a module of
# its own (.ci/crdbparse) so its weight stays out of the server's go.mod;
# its first build takes a minute or two.
.PHONY: crdb-parse
crdb-parse:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	go run ./server/storage/sqlstore/internal/dumpddl "$$dir" && \
	cd .ci/crdbparse && go test ./... && go run . "$$dir"

# deploy/ checked without Docker or a cluster: the Dockerfile with BuildKit's
# parser and lint rules, the compose file with compose-go, the Kubernetes
# manifests built with kustomize and decoded strictly into the API types,
# the alert rules with Prometheus' rulefmt. A module of its own
# (.ci/deploycheck) so its weight stays out of the server's go.mod; its
# first build takes a few minutes.
.PHONY: deploy-check
deploy-check:
	cd .ci/deploycheck && go vet ./... && go test -count=1 ./... && go run . -root ../..
