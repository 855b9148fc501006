# taskgen: the two commands for a fresh machine are `make demo` and `make test`.
GO ?= go
# Commands that need root to install packages use sudo when not run as root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test demo generate check lint bench bench-all bench-gen fuzz chaos durability redis-server tools

## test: install redis-server and the diff tools if missing, then vet and run every test
## once (the tests start their own redis-server processes on free loopback ports): the
## runtime and internal packages under the race detector, the rest (generator, e2e,
## examples) plainly. runtime/task alone takes about 10 minutes under the race detector on
## two cores, past go test's default timeout of 10.
RACE_PKGS := ./runtime/... ./internal/...
MODULE = $(shell $(GO) list -m)
OTHER_PKGS = $(shell $(GO) list ./... | grep -v -e '^$(MODULE)/runtime/' -e '^$(MODULE)/internal/')
test: tools
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m $(RACE_PKGS)
	$(GO) test -count=1 $(OTHER_PKGS)

## demo: generate, then run the example end to end on an embedded Redis
## (set TASKGEN_REDIS_URL=redis://host:port to use a real one).
demo: generate
	$(GO) run ./examples/welcome/cmd/welcome

## generate: regenerate every tasks_gen.go of the repository.
generate:
	$(GO) run ./cmd/taskgen ./...

## check: fail, with a diff, when a checked-in tasks_gen.go is stale.
check:
	$(GO) run ./cmd/taskgen -check ./...

## lint: formatting, vet and generated-code freshness.
lint: check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: issue 14's side-by-side run against asynq (bench/, a module of its own, so this
## module never depends on asynq: it starts its own redis-server; see BENCHMARKS.md), then
## the Go benchmarks of the envelope against plain JSON and of a worker's cost per task.
## BENCH_FLAGS goes to the harness, BENCHTIME and BENCH_COUNT to the Go benchmarks; a smoke
## run: make bench BENCH_FLAGS='-tasks 500 -rounds 1 -rate-for 1s' BENCHTIME=100x BENCH_COUNT=1
BENCH_FLAGS ?=
BENCHTIME ?= 1s
BENCH_COUNT ?= 3
bench: tools
	cd bench && $(GO) run ./cmd/taskbench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench '^BenchmarkEnvelope$$' -benchmem -benchtime $(BENCHTIME) -count $(BENCH_COUNT) ./internal/envelope
	$(GO) test -run '^$$' -bench '^BenchmarkWorkerPerTask$$' -benchmem -benchtime $(BENCHTIME) -count $(BENCH_COUNT) ./runtime/task

## bench-all: every benchmark of this module, once.
bench-all:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-gen: the generator against a bare packages.Load of the same package.
bench-gen:
	$(GO) test -run '^$$' -bench '^BenchmarkGenerate$$' -benchmem -count 5 ./gen

## chaos: 10,000 tasks, 3 queues, 4 worker processes, one SIGKILLed every 300 ms, and
## 48 tasks of 9 s on workers of their own, stopped or killed mid-run; redis-server is
## killed and restarted once; fails if any task is lost or dead-lettered, or if a long
## task whose worker was not killed runs twice.
chaos: redis-server
	$(GO) test -run '^TestChaosNoTaskIsLost$$' -v -count=1 ./e2e

## durability: the figures of README.md's "Durability": 100 + 100 tasks across a
## failover, with and without WithDurability, and 50,000 tasks across a SIGKILL of
## redis-server per persistence mode (REDIS_SERVER=<a 7.2+ redis-server> adds WAITAOF).
durability: redis-server
	$(GO) test -run '^TestDurabilityOfSubmits' -v -count=1 ./e2e -durability.tasks=100 -durability.persist=50000

## fuzz: run every fuzz target for FUZZTIME each (seed corpora in testdata/fuzz): a
## duration, or a count of executions such as 150000x, which CI uses because go1.26's
## coordinator can fail a duration-bounded run at its end (golang/go#75804).
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzOpen:./internal/envelope FuzzSignOpen:./internal/envelope FuzzDecodeV2:./internal/envelope \
	FuzzTrace:./internal/envelope FuzzV2String:./internal/envelope FuzzCompactJSON:./internal/envelope \
	FuzzCallerBlock:./internal/envelope FuzzParseUTC:./internal/envelope \
	FuzzParseDirective:./gen FuzzParse:./internal/wireschema
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} in $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}" || exit 1; \
	done

## tools: install what the tests need and the machine lacks, as Debian packages with one
## apt-get update: redis-server (and redis-tools' redis-benchmark, for make bench), GNU
## diff, GNU patch and git, which the generator's tests check the diffs of taskgen -check
## against, and chromium, which the taskctl console's browser test drives headless
## ($$CHROME names another binary).
tools:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v redis-benchmark >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	[ -n "$$CHROME" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	diff --version 2>/dev/null | grep -q 'GNU diffutils' || missing="$$missing diffutils"; \
	patch --version 2>/dev/null | grep -q 'GNU patch' || missing="$$missing patch"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@redis-server --version

redis-server: tools
