# Targets people type. `make test` is the README's test command and what .ci/run calls.
GO ?= go
PKGS := ./...

.PHONY: run test unit bench lint fuzz accuracy

# Run the service on embedded defaults with demo data.
run:
	$(GO) run ./cmd/flagd -demo

# Unit tests (race detector on), then every benchmark once so none can rot
# (on a 20,000-plan index; `make bench` measures at 1,000,000).
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	PLANFLAG_BENCH_PLANS=20000 $(GO) test -run '^$$' -bench . -benchtime=1x -count=1 $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

# Matcher benchmarks at 1,000,000 plans (docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchtime=300000x -count=1 ./matcher/

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

# Accuracy on the synthetic set and FEBRL 4 (docs/accuracy.md).
accuracy:
	$(GO) run ./cmd/flagbench accuracy
	$(GO) run ./cmd/flagbench accuracy -febrl ../shared/data/febrl
	$(GO) run ./cmd/flagbench accuracy -febrl ../shared/data/febrl -id-as-nhs
