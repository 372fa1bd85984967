# cioq — make targets. `make run` and `make test` work on a fresh Debian machine.

GO          ?= go
# Redis used by `make run` (and the demo). Database 9, so the demo never
# touches data in database 0.
REDIS_URL   ?= redis://127.0.0.1:6379/9
# Redis server reserved for tests: its own port, 256 databases, one per test.
TEST_REDIS  ?= 127.0.0.1:6399
TEST_FLAGS  ?= -race -timeout 30m

export REDIS_URL

.PHONY: all build test vet lint vuln fmt run redis-run redis-test bench e2e clean

all: build

build:
	$(GO) build -o bin/cioq ./cmd/cioq

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

redis-run:
	./scripts/redis.sh $$(./scripts/redis-hostport.sh "$(REDIS_URL)")

# go vet, staticcheck, govulncheck (when vuln.go.dev answers), gofmt check and the whole
# test suite with the race detector against a real Redis server of its own.
test: redis-test
	./scripts/deps.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	./scripts/staticcheck.sh
	./scripts/govulncheck.sh
	CIOQ_TEST_REDIS=$(TEST_REDIS) $(GO) test $(TEST_FLAGS) ./...

# The demo: Redis (installed and started if nothing answers at REDIS_URL), the
# embedded sandbox, a worker, and the demo scenarios. Real credentials in
# the environment (CUSTOMERIO_*) send to Customer.io instead.
run: redis-run build
	./bin/cioq demo

# Go benchmarks of the hot paths, then `cioq bench` (cioq against raw asynq
# and the sandbox, one table) on database 254 of the test Redis, which it flushes.
bench: redis-test
	CIOQ_TEST_REDIS=$(TEST_REDIS) $(GO) test -run '^$$' -bench . -benchmem ./...
	REDIS_URL=redis://$(TEST_REDIS)/254 $(GO) run ./cmd/cioq bench

# The dashboard browser test: Redis, sandbox, worker and serve from a fresh
# build, then headless chromium (installed with apt-get/npm when missing).
e2e:
	./e2e/run.sh

clean:
	rm -rf bin
