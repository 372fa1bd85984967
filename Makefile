# cioq — make targets. `make run` and `make test` work on a fresh Debian machine.

GO          ?= go
# bash: the recipes that start a PostgreSQL remove it in an EXIT trap, which
# bash also runs when Ctrl-C or SIGTERM ends the recipe.
SHELL       := /bin/bash
# Redis used by `make run` (and the demo). Database 9, so the demo never
# touches data in database 0.
REDIS_URL   ?= redis://127.0.0.1:6379/9
# Redis server reserved for tests: its own port, 256 databases, one per test.
TEST_REDIS  ?= 127.0.0.1:6399
TEST_FLAGS  ?= -race -timeout 30m
# PostgreSQL servers of cioq's own (scripts/postgres.sh: initdb in a temp
# dir, installed with apt-get when missing, stopped and removed afterwards):
# one for the tests (a database per test), one for the demo's outbox.
TEST_PG     ?= 127.0.0.1:6533
RUN_PG      ?= 127.0.0.1:6534
PG          = ./scripts/postgres.sh
TEST_PG_ARGS = $(word 1,$(subst :, ,$(TEST_PG))) $(word 2,$(subst :, ,$(TEST_PG)))
RUN_PG_ARGS  = $(word 1,$(subst :, ,$(RUN_PG))) $(word 2,$(subst :, ,$(RUN_PG)))

export REDIS_URL

.PHONY: all build test vet lint vuln fmt run redis-run redis-test pg-test bench e2e clean

all: build

# Static, as the Dockerfile builds it (what users deploy): without cgo the
# binary maps no libc or dynamic loader, about 2 MiB less resident memory
# per process.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/cioq ./cmd/cioq

vet:
	$(GO) vet ./...

lint:
	./scripts/staticcheck.sh

# govulncheck when its database answers (skipped with one line when not).
vuln:
	./scripts/govulncheck.sh

fmt:
	gofmt -l -w $$(git ls-files '*.go')

redis-test:
	./scripts/redis.sh $(word 1,$(subst :, ,$(TEST_REDIS))) $(word 2,$(subst :, ,$(TEST_REDIS)))

# Starts the test PostgreSQL and leaves it running (make test starts and
# removes its own): `./scripts/postgres.sh stop $(TEST_PG_ARGS)` removes it.
pg-test:
	$(PG) start $(TEST_PG_ARGS)

redis-run:
	./scripts/redis.sh $$(./scripts/redis-hostport.sh "$(REDIS_URL)")

# go vet, staticcheck, govulncheck (when vuln.go.dev answers), gofmt check and the whole
# test suite with the race detector against a real Redis server and a throwaway
# PostgreSQL server of its own (removed afterwards).
test: redis-test
	./scripts/deps.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	./scripts/staticcheck.sh
	./scripts/govulncheck.sh
	$(PG) start $(TEST_PG_ARGS)
	trap '$(PG) stop $(TEST_PG_ARGS)' EXIT; trap 'exit 130' INT TERM; \
	  CIOQ_TEST_REDIS=$(TEST_REDIS) CIOQ_TEST_PG=$(TEST_PG) $(GO) test $(TEST_FLAGS) ./...

# The demo: Redis (installed and started if nothing answers at REDIS_URL), a
# throwaway PostgreSQL for the outbox scenario (removed when the demo stops),
# the embedded sandbox, a worker, a relay and the demo scenarios. Real
# credentials in the environment (CUSTOMERIO_*) send to Customer.io instead.
run: redis-run build
	$(PG) start $(RUN_PG_ARGS)
	trap '$(PG) stop $(RUN_PG_ARGS)' EXIT; trap 'exit 130' INT TERM; \
	  CIOQ_OUTBOX_URL=$$($(PG) url $(RUN_PG_ARGS)) ./bin/cioq demo

# Go benchmarks of the hot paths, then `cioq bench` (cioq against raw asynq
# and the sandbox, one table) on database 254 of the test Redis, which it
# flushes, run from bin/cioq: its worker processes are the static build.
bench: redis-test build
	$(PG) start $(TEST_PG_ARGS)
	trap '$(PG) stop $(TEST_PG_ARGS)' EXIT; trap 'exit 130' INT TERM; \
	  CIOQ_TEST_REDIS=$(TEST_REDIS) CIOQ_TEST_PG=$(TEST_PG) $(GO) test -run '^$$' -bench . -benchmem ./... && \
	  REDIS_URL=redis://$(TEST_REDIS)/254 CIOQ_OUTBOX_URL=$$($(PG) url $(TEST_PG_ARGS)) ./bin/cioq bench

# The dashboard browser test: Redis, sandbox, worker and serve from a fresh
# build, then headless chromium (installed with apt-get/npm when missing).
e2e:
	./e2e/run.sh

clean:
	rm -rf bin
