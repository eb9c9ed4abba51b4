# nitro-signer — see README.md. `make help` lists the targets.

# go1.26.8 (the machine's Go) has GO-2026-6809 in crypto/x509; the build and
# tests use the patched toolchain, fetched from the module proxy once.
export GOTOOLCHAIN := go1.26.10
export CGO_ENABLED := 0

GO        ?= go
BIN       := bin
DEV_STATE := .dev
SIMTAGS   := nsmsim
# Reproducible builds: no paths, no VCS stamp, a fixed (empty) build id.
GOFLAGS_REPRO := -trimpath -buildvcs=false -ldflags=-buildid=
FUZZTIME  ?= 10m
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB    := $(CURDIR)/.cache/govulndb

.PHONY: help build run test lint vet fmt-check staticcheck vulncheck bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build the development binaries (simulated NSM) into bin/
	$(GO) build $(GOFLAGS_REPRO) -tags $(SIMTAGS) -o $(BIN)/ ./client/cmd/signerctl

test: vet fmt-check staticcheck ## run every check and test (what CI runs)
	$(GO) build ./...
	$(GO) test -count=1 -tags $(SIMTAGS) ./...
	$(GO) test -count=1 ./...

lint: vet fmt-check staticcheck vulncheck ## vet, gofmt, staticcheck and govulncheck

vet:
	$(GO) vet ./...
	$(GO) vet -tags $(SIMTAGS) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

staticcheck:
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags $(SIMTAGS) ./...

# govulncheck reads an offline copy of the Go vulnerability database, built
# from the golang.org/x/vulndb module (vuln.go.dev is not reachable here).
vulncheck: $(VULNDB)/index/db.json
	$(GO) tool govulncheck -db file://$(VULNDB) ./...
	$(GO) tool govulncheck -db file://$(VULNDB) -tags $(SIMTAGS) ./...

$(VULNDB)/index/db.json:
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
		-vulns $$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv -out $(VULNDB)

bench: ## run the benchmarks (ratios are measured within one run)
	$(GO) test -tags $(SIMTAGS) -run '^$$' -bench . -benchtime 2s ./...

fuzz: ## run every fuzz target for FUZZTIME (default 10m) each
	./.ci/fuzz $(FUZZTIME) $(SIMTAGS)

clean: ## remove build outputs (not the development state)
	rm -rf $(BIN)
