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

VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# For `make image`: the Go toolchain image pinned by digest, and the
# production enclave configuration to bake in.
GO_IMAGE       ?=
ENCLAVE_CONFIG ?=
EIF            := $(BIN)/nitro-signer.eif
# Signing (make eif, make eif-sign): the release certificate (PEM, ECDSA
# P-384; its hash is PCR8) and its key (a PEM file, or for nitro-cli an AWS
# KMS key ARN). Both or neither.
RELEASE_CERT   ?=
RELEASE_KEY    ?=
SIGNED_EIF     := $(BIN)/nitro-signer-signed.eif
# For make pcrs and make release: the image measured, and the release's
# window (RFC 3339) and pinned PCRs (pcr0,pcr1,pcr2 by default; pcr8; pcr0,pcr8).
RELEASE_EIF    ?= $(EIF)
RELEASES       ?= releases.json
NOT_BEFORE     ?=
NOT_AFTER      ?=
MATCH          ?=

.PHONY: help build run test weed race lint vet fmt-check staticcheck cross-build vulncheck bench fuzz soak clean \
	enclave image eif eif-sign pcrs release reproducible-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build the development enclave (simulated NSM), the parent, signerctl and signer-bench into bin/
	$(GO) build $(GOFLAGS_REPRO) -tags $(SIMTAGS) -o $(BIN)/ ./enclave/cmd/enclave
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/ ./parent/cmd/parent ./client/cmd/signerctl ./e2e/cmd/signer-bench

# The binaries run as deployed: with the Go runtime's sysmon thread kept out
# of deep sleep and heap pages given back with MADV_FREE
# (internal/procs.GODEBUG; Dockerfile.enclave and the parent's systemd unit
# set the same), after any GODEBUG of the caller's.
comma   := ,
RUN_ENV := GODEBUG='$(if $(GODEBUG),$(GODEBUG)$(comma))schedtrace=2147483647,madvdontneed=0'

PARENT_ADDR  := 127.0.0.1:8443
METRICS_ADDR := 127.0.0.1:9090

run: build ## start the enclave (simulated NSM) and the parent locally; Ctrl-C stops both
	@test -f $(DEV_STATE)/pki/enclave.json || $(BIN)/signerctl dev-pki --out $(DEV_STATE)/pki
	@mkdir -p $(DEV_STATE)/nsm
	@set -e; \
	$(RUN_ENV) $(BIN)/enclave --config $(DEV_STATE)/pki/enclave.json --listen unix://$(CURDIR)/$(DEV_STATE)/enclave.sock \
		--state-dir $(DEV_STATE)/nsm --host unix://$(CURDIR)/$(DEV_STATE)/host.sock 2>>$(DEV_STATE)/enclave.log & enclave=$$!; \
	$(RUN_ENV) $(BIN)/parent --listen $(PARENT_ADDR) --metrics-listen $(METRICS_ADDR) \
		--enclave unix://$(CURDIR)/$(DEV_STATE)/enclave.sock --tls-cert $(DEV_STATE)/pki/server.pem \
		--tls-key $(DEV_STATE)/pki/server-key.pem --client-ca $(DEV_STATE)/pki/caller-ca.pem \
		--state-dir $(DEV_STATE)/state --host-listen unix://$(CURDIR)/$(DEV_STATE)/host.sock --imds off \
		2>>$(DEV_STATE)/parent.log & parent=$$!; \
	trap 'kill -TERM $$parent $$enclave 2>/dev/null; wait $$parent $$enclave 2>/dev/null; echo; echo stopped.' INT TERM EXIT; \
	sleep 1; \
	echo "nitro-signer is running (development build, simulated NSM)"; \
	echo "  parent   https://$(PARENT_ADDR)   metrics http://$(METRICS_ADDR)/metrics"; \
	echo "  enclave  unix://$(CURDIR)/$(DEV_STATE)/enclave.sock"; \
	echo "  logs     $(DEV_STATE)/enclave.log $(DEV_STATE)/parent.log"; \
	echo; \
	echo "Attest (fresh nonce, dev root, PCRs pinned from $(DEV_STATE)/nsm/pcrs.json):"; \
	echo "  $(BIN)/signerctl attest fetch --dev $(DEV_STATE) --out /tmp/doc.cbor"; \
	echo "  $(BIN)/signerctl attest verify --doc /tmp/doc.cbor --root $(DEV_STATE)/nsm/dev-root.pem --max-age 5m"; \
	echo "Call (each answer is verified against the attested key):"; \
	echo "  $(BIN)/signerctl call v1/derive-address --dev $(DEV_STATE) --params '{\"operator_omni\":\"$$(printf '11%.0s' $$(seq 32))\"}'"; \
	echo "  $(BIN)/signerctl call dev/sign-message --dev $(DEV_STATE) --params '{\"omni_account\":\"$$(printf '11%.0s' $$(seq 32))\",\"message_hex\":\"0x68656c6c6f\"}'"; \
	echo "Keys (sealed under $(DEV_STATE)/nsm/dev-seal.key, stored in $(DEV_STATE)/state):"; \
	echo "  $(BIN)/signerctl keys status --dev $(DEV_STATE)"; \
	echo "  $(BIN)/signerctl keys rotate --dev $(DEV_STATE)"; \
	echo "Health: curl --cacert $(DEV_STATE)/pki/server-ca.pem --cert $(DEV_STATE)/pki/broker.pem --key $(DEV_STATE)/pki/broker-key.pem https://$(PARENT_ADDR)/readyz"; \
	echo; echo "Ctrl-C stops both."; \
	wait $$parent $$enclave

# Every package's tests run untagged; those whose code differs with the
# simulator's tag (.ci/tagged-packages: their own files, or code their
# tests link) run again with it. The end-to-end tests build their binaries
# with the tags each needs, so their test process does not depend on tags:
# the untagged run covers them.
TAGGED = $$(./.ci/tagged-packages $(SIMTAGS))
NON_E2E = $$($(GO) list ./... | grep -v '/e2e$$')

# The S3 tests (internal/s3test) start a real S3 server, SeaweedFS, built
# once at the version in .ci/weed.version into .cache/weed (about 8 minutes
# on 2 cores the first time).
weed: ## build the S3 server the tests start (SeaweedFS, pinned) into .cache/weed, once
	@./.ci/ensure-weed >/dev/null

test: weed vet fmt-check staticcheck cross-build ## run every check and test (what CI runs)
	$(GO) build ./...
	@tagged=$(TAGGED); test -n "$$tagged" || { echo "test: .ci/tagged-packages found no package"; exit 1; }; \
	echo "$(GO) test -count=1 -tags $(SIMTAGS) (the packages .ci/tagged-packages lists)"; \
	$(GO) test -count=1 -tags $(SIMTAGS) $$tagged
	@mkdir -p $(BIN); rm -f $(BIN)/e2e-report.txt
	NITRO_SIGNER_E2E_REPORT=$(abspath $(BIN))/e2e-report.txt $(GO) test -count=1 ./...
	@if test -s $(BIN)/e2e-report.txt; then cat $(BIN)/e2e-report.txt; else echo "e2e: no test wrote a report"; fi
	$(MAKE) --no-print-directory race
	$(MAKE) --no-print-directory reproducible-check

# signerctl runs on operators' machines: it builds for every OS they use.
# (signer-bench times the crypto floor in Linux thread CPU time.)
cross-build: ## build signerctl for darwin and windows
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./client/cmd/signerctl
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./client/cmd/signerctl

# The race detector needs cgo, so a C compiler: .ci/ensure-cc prints one, or
# installs gcc with apt-get. This is the one step built with CGO_ENABLED=1.
RACE_GO = cc=$$(./.ci/ensure-cc) && CC=$$cc CGO_ENABLED=1 $(GO)
# The end-to-end tests that drive the stack concurrently (restarts and
# replicas under load, hostile traffic, replays, key changes); under -race
# the harness builds the enclave and the parent with the detector too and
# fails a test whose processes report a race.
E2E_RACE := TestFleetConcurrentRotationsLeaveOneEpoch TestFleetReplicaKilledUnderLoadFailsNoCall TestKeysSurviveKillUnderLoad TestParentRestartUnderLoad TestClientRidesThroughRestartAndReplicaChange \
	TestEnclaveRestartIsSurvivedWithReattestation TestOneRotateCallChangesOneReplica TestReplayToAnotherReplicaIsRefused \
	TestOneCallerCannotFillTheReplayCacheForAll TestClientDetectsTamperedResponses TestHostileTrafficAtTheParent \
	TestKeysPeerCopy TestSigningSurfaceThroughTheStack TestKeysUnsealThroughLocalKMS \
	TestHostileParentMalformedFramesDoNotStopTheEnclave TestChannelConnectionsAreCapped
empty :=
space := $(empty) $(empty)

race: weed ## the race detector over every package (simulator tests included) and the e2e tests that load the stack
	@listed=$$($(GO) test -list . ./e2e); for t in $(E2E_RACE); do \
		echo "$$listed" | grep -qx "$$t" || { echo "race: E2E_RACE names $$t, which ./e2e does not have"; exit 1; }; \
	done
	$(RACE_GO) test -count=1 -race -tags $(SIMTAGS) $(NON_E2E)
	$(RACE_GO) test -count=1 -race -run '^($(subst $(space),|,$(strip $(E2E_RACE))))$$' ./e2e

enclave: ## build the production enclave binary (no simulator) reproducibly into bin/enclave-production
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/enclave-production ./enclave/cmd/enclave
	@sha256sum $(BIN)/enclave-production

reproducible-check: ## build the production enclave twice, apart in place, time and cache; compare the bytes
	@set -e; work=$$(mktemp -d); trap 'chmod -R u+w $$work; rm -rf $$work' EXIT; \
	for n in 1 2; do \
		mkdir -p $$work/src$$n $$work/cache$$n; \
		git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $$work/src$$n; \
		(cd $$work/src$$n && GOCACHE=$$work/cache$$n $(GO) build $(GOFLAGS_REPRO) -o $$work/enclave$$n ./enclave/cmd/enclave); \
		sleep 1; \
	done; \
	a=$$(sha256sum < $$work/enclave1); b=$$(sha256sum < $$work/enclave2); \
	if [ "$$a" != "$$b" ]; then echo "reproducible-check: the two builds differ"; exit 1; fi; \
	echo "reproducible-check: identical ($${a%% *})"

image: enclave ## docker build of Dockerfile.enclave (needs a Docker engine, GO_IMAGE=…@sha256:… and ENCLAVE_CONFIG=…)
	@echo "$(GO_IMAGE)" | grep -Eq '@sha256:[0-9a-f]{64}$$' || { echo "image: GO_IMAGE must be pinned by digest (name@sha256:…)"; exit 2; }
	@test -f "$(ENCLAVE_CONFIG)" || { echo "image: ENCLAVE_CONFIG must name the production enclave configuration"; exit 2; }
	docker build -f Dockerfile.enclave --build-arg GO_IMAGE=$(GO_IMAGE) --build-arg ENCLAVE_CONFIG=$(ENCLAVE_CONFIG) \
		-t nitro-signer-enclave:$(VERSION) .

# Both RELEASE_CERT and RELEASE_KEY, or neither.
check-release-key = @if [ -n "$(RELEASE_CERT)$(RELEASE_KEY)" ] && { [ -z "$(RELEASE_CERT)" ] || [ -z "$(RELEASE_KEY)" ]; }; then \
		echo "$@: set both RELEASE_CERT and RELEASE_KEY (to sign) or neither"; exit 2; fi

eif: ## nitro-cli build-enclave of the image (on an AWS host with nitro-cli); signed when RELEASE_CERT and RELEASE_KEY are set
	$(check-release-key)
	@command -v nitro-cli >/dev/null || { echo "eif: nitro-cli is not installed (run this on the AWS build host)"; exit 2; }
	nitro-cli build-enclave --docker-uri nitro-signer-enclave:$(VERSION) --output-file $(EIF) \
		$(if $(RELEASE_CERT),--signing-certificate $(RELEASE_CERT) --private-key $(RELEASE_KEY)) > $(BIN)/eif-build.json
	@cat $(BIN)/eif-build.json
ifneq ($(RELEASE_CERT),)
	@# nitro-cli has built unsigned images, exiting 0, when signing failed (aws-nitro-enclaves-cli#756).
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/ ./client/cmd/signerctl
	$(BIN)/signerctl eif measure $(EIF) --signed-by $(RELEASE_CERT) > /dev/null
endif

eif-sign: ## sign the built EIF without nitro-cli, on the offline machine holding the key: RELEASE_CERT, RELEASE_KEY (PEM) -> bin/nitro-signer-signed.eif
	@test -n "$(RELEASE_CERT)" && test -n "$(RELEASE_KEY)" || { echo "eif-sign: RELEASE_CERT and RELEASE_KEY (PEM files) are required"; exit 2; }
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/ ./client/cmd/signerctl
	$(BIN)/signerctl eif sign $(EIF) --cert $(RELEASE_CERT) --key $(RELEASE_KEY) --out $(SIGNED_EIF)

pcrs: ## write pcrs.json from the built EIF (RELEASE_EIF), recomputed independently of nitro-cli
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/ ./client/cmd/signerctl
	$(BIN)/signerctl eif measure $(RELEASE_EIF) --manifest --version $(VERSION) \
		--input enclave=$(BIN)/enclave-production --input config=$(ENCLAVE_CONFIG) --input dockerfile=Dockerfile.enclave > pcrs.json.tmp \
		|| { rm -f pcrs.json.tmp; exit 1; }
	@mv pcrs.json.tmp pcrs.json && cat pcrs.json

release: ## append the built EIF (RELEASE_EIF) to RELEASES (releases.json) as release VERSION, from NOT_BEFORE [to NOT_AFTER], pinning MATCH
	@test -n "$(NOT_BEFORE)" || { echo "release: NOT_BEFORE=<RFC 3339 time> is required: when clients start to accept the release"; exit 2; }
	$(GO) build $(GOFLAGS_REPRO) -o $(BIN)/ ./client/cmd/signerctl
	$(BIN)/signerctl eif measure $(RELEASE_EIF) --releases $(RELEASES) --version $(VERSION) --not-before $(NOT_BEFORE) \
		$(if $(NOT_AFTER),--not-after $(NOT_AFTER)) $(if $(MATCH),--match $(MATCH))

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

BENCH_DURATION    ?= 20s
BENCH_CONCURRENCY ?= 256
# The sweep: SWEEP_STEP_DURATION at each of SWEEP_STEPS (fractions of the
# maximum; the last two past it, to show the queue grow).
SWEEP_STEP_DURATION ?= 5s
SWEEP_STEPS         ?= 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,1.1,1.25

bench: build ## Go benchmarks, then signer-bench against a local stack: at saturation (bin/bench-report.json), at 70% of it (bin/bench-report-70.json), and a sweep up to it (bin/bench-sweep.json, bin/bench-sweep.svg)
	$(GO) test -tags $(SIMTAGS) -run '^$$' -bench . -benchtime 2s ./...
	@test -f $(DEV_STATE)/pki/enclave.json || $(BIN)/signerctl dev-pki --out $(DEV_STATE)/pki
	@mkdir -p $(DEV_STATE)/nsm
	@set -e; sock=$(CURDIR)/$(DEV_STATE)/bench.sock; \
	$(RUN_ENV) $(BIN)/enclave --config $(DEV_STATE)/pki/enclave.json --listen unix://$$sock --state-dir $(DEV_STATE)/nsm 2>/dev/null & enclave=$$!; \
	$(RUN_ENV) $(BIN)/parent --listen 127.0.0.1:18443 --metrics-listen 127.0.0.1:19090 --enclave unix://$$sock \
		--tls-cert $(DEV_STATE)/pki/server.pem --tls-key $(DEV_STATE)/pki/server-key.pem \
		--client-ca $(DEV_STATE)/pki/caller-ca.pem 2>/dev/null & parent=$$!; \
	trap 'kill -TERM $$parent $$enclave 2>/dev/null; wait $$parent $$enclave 2>/dev/null || true' EXIT; \
	sleep 2; \
	$(RUN_ENV) $(BIN)/signer-bench --dev $(DEV_STATE) --parent https://127.0.0.1:18443 --concurrency $(BENCH_CONCURRENCY) \
		--duration $(BENCH_DURATION) --pid parent=$$parent --pid enclave=$$enclave --out $(BIN)/bench-report.json; \
	$(RUN_ENV) $(BIN)/signer-bench --dev $(DEV_STATE) --parent https://127.0.0.1:18443 --concurrency $(BENCH_CONCURRENCY) \
		--duration $(BENCH_DURATION) --rate-of-max 0.7 --pid parent=$$parent --pid enclave=$$enclave --out $(BIN)/bench-report-70.json; \
	$(RUN_ENV) $(BIN)/signer-bench --dev $(DEV_STATE) --parent https://127.0.0.1:18443 --concurrency $(BENCH_CONCURRENCY) \
		--sweep --sweep-steps $(SWEEP_STEPS) --duration $(SWEEP_STEP_DURATION) --pid parent=$$parent --pid enclave=$$enclave \
		--out $(BIN)/bench-sweep.json --svg $(BIN)/bench-sweep.svg

fuzz: ## run every fuzz target for FUZZTIME (default 10m) each
	./.ci/fuzz $(FUZZTIME) $(SIMTAGS)

SOAK_DURATION      ?= 10m
SOAK_RESTART_EVERY ?= 2m

soak: ## load the real stack at 70% of its maximum for SOAK_DURATION with enclave restarts; fail on unexpected errors or growth
	SOAK_DURATION=$(SOAK_DURATION) SOAK_RESTART_EVERY=$(SOAK_RESTART_EVERY) \
		$(GO) test -count=1 -tags soak -run '^TestSoak$$' -timeout 0 -v ./e2e

clean: ## remove build outputs (not the development state)
	rm -rf $(BIN)
