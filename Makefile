# Targets people type. `make test` is the README's test command and what .ci/run calls.
GO ?= go
PKGS := ./...

.PHONY: run test unit bench lint fuzz accuracy

# Run the service on embedded defaults with demo data.
run:
	$(GO) run ./cmd/flagd -demo

# Every test, with the race detector, against a real Kafka broker and Redis
# that scripts/services.sh installs if missing, starts and stops (-p 1: some
# integration tests restart the broker or stop Redis, which other packages'
# tests must not see); then every benchmark once so none can rot (on a
# 20,000-plan index; `make bench` measures at 1,000,000).
test:
	$(GO) vet $(PKGS)
	scripts/with-services.sh $(GO) test -race -count=1 -p 1 $(PKGS)
	# The allocation budgets, which the race detector's own allocations skip.
	$(GO) test -count=1 -run 'Alloc' ./matcher/ ./alert/
	PLANFLAG_BENCH_PLANS=20000 $(GO) test -run '^$$' -bench . -benchtime=1x -count=1 $(PKGS)

# The tests that need no services (integration tests skip).
unit:
	$(GO) test -count=1 $(PKGS)

# Matcher benchmarks at 1,000,000 plans, the HTTP load benchmark and the
# feed benchmark against real Kafka and Redis (docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench 'Match|ApplyLive|JaroWinkler' -benchtime=300000x -count=1 ./matcher/
	$(GO) test -run '^$$' -bench 'ApplyBurst' -benchtime=5x -count=1 ./matcher/
	$(GO) run ./cmd/flagbench load
	scripts/with-services.sh $(GO) run ./cmd/flagbench ingest

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

# Accuracy on the synthetic set and FEBRL 4 (docs/accuracy.md).
accuracy:
	$(GO) run ./cmd/flagbench accuracy
	$(GO) run ./cmd/flagbench accuracy -febrl testdata/febrl
	$(GO) run ./cmd/flagbench accuracy -febrl testdata/febrl -id-as-nhs
