# Targets people type. `make test` is the README's test command and what .ci/run calls.
GO ?= go
PKGS := ./...

.PHONY: run test unit bench lint fuzz accuracy

# Run the service on embedded defaults with demo data.
run:
	$(GO) run ./cmd/flagd -demo

# Unit tests (race detector on), then every benchmark once so none can rot.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -run '^$$' -bench . -benchtime=1x -count=1 $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

# Full benchmarks (see docs/benchmarks.md for the figures and what they mean).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./matcher/...

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

accuracy:
	$(GO) run ./bench/cmd/flagbench accuracy
