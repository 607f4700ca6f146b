# kpe-agent — see README.md. The two commands are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
FUZZTIME  ?= 8s
# Debian packages the lab and the tests need (pcscd with the vsmartcard vpcd
# driver; gcc and pkg-config for cgo against libpcsclite;
# opensc and pcsc-tools are the independent tools the acceptance
# checks use; PostgreSQL for the back office; chromium for its page;
# rpm so the package test reads the .rpm's header; man-db so it reads the
# installed man pages; systemd for systemd-analyze verify of the units (no
# running systemd needed); Node.js and npm for the OpenAPI linter, make openapi-lint;
# softhsm2, the PKCS#11 token the issuer signer's tests generate keys in
# (scripts/softhsm-init.sh, docs/renewal.md).
SYS_PKGS  := pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc curl pkg-config gcc postgresql chromium rpm man-db systemd nodejs npm softhsm2
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps pcscd postgres build run test check openapi-lint unit fuzz-smoke windows bench bio-bench soak clean package

help:
	@echo "make run    back office + virtual card lab + agent; one ASKES authentication, then stays up (no hardware needed)"
	@echo "make test   install what is missing, start pcscd and PostgreSQL, run every check"
	@echo "make bench  benchmarks: transport, sync, tap-to-code, the kiosk in Chromium and the agent's idle footprint (about 6 minutes)"
	@echo "make package  .deb, .rpm and the Windows zip into build/pkg/"
	@echo "make openapi-lint  lint the OpenAPI documents with the pinned Redocly CLI (part of make test)"

# Install missing system packages: apt-get update once, then install. A
# package counts as there when an installed package provides it (a Node.js
# build that bundles npm provides npm, and conflicts with Debian's).
deps:
	@provided=" $$(dpkg-query -W -f='$${db:Status-Abbrev}|$${Provides}\n' 2>/dev/null | \
	  awk -F'|' '$$1 ~ /^ii/ {print $$2}' | tr ',' '\n' | sed 's/(.*)//; s/ //g' | sort -u | tr '\n' ' ') "; \
	missing=""; for p in $(SYS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || \
	    [[ "$$provided" == *" $$p "* ]] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo ">> installing:$$missing"; \
	  $(SUDO) apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# Start pcscd when it is not running (there is no systemd in CI containers).
# Zombies do not count: where PID 1 does not reap, a killed pcscd stays
# listed, and its stale socket and pid file stop a new one from starting.
# pcscd gets no descriptor beyond 0-2: under `flock /tmp/kpe-vpcd.lock make
# ...` it would inherit the lock and hold it for its whole life.
LIVE_PCSCD = ps -C pcscd -o pid=,stat= | awk '$$2 !~ /^Z/ {print $$1; exit}'
pcscd: deps
	@if [ -z "$$($(LIVE_PCSCD))" ]; then \
	  echo ">> starting pcscd"; $(SUDO) rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid; \
	  ( for fd in $$(ls /proc/$$BASHPID/fd); do [ $$fd -le 2 ] || eval "exec $$fd>&-"; done; exec $(SUDO) pcscd ); \
	  for i in $$(seq 50); do [ -S /run/pcscd/pcscd.comm ] && break; sleep 0.1; done; \
	fi
	@pid=$$($(LIVE_PCSCD)); [ -n "$$pid" ] || { echo "pcscd did not start"; exit 1; }; echo ">> pcscd is running (pid $$pid)"

# Start the PostgreSQL cluster and the kpe role the tests use.
postgres: deps
	@./scripts/postgres.sh

# The binaries' `version` reads the commit from Go's VCS stamp: -buildvcs=auto
# overrides a -buildvcs=false in GOFLAGS (go env). The version, the build
# date and the commit (for a linked git worktree, which Go does not stamp)
# are also set with -X (internal/buildinfo).
BUILDINFO   = kpe-agent/internal/buildinfo
BUILD_DATE  = $(shell date -u $${SOURCE_DATE_EPOCH:+-d @$$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
GIT_COMMIT  = $(shell git rev-parse HEAD 2>/dev/null)
GO_LDFLAGS ?= -X $(BUILDINFO).version=$(shell installer/version.sh) -X $(BUILDINFO).buildDate=$(BUILD_DATE) -X $(BUILDINFO).commit=$(GIT_COMMIT)

build:
	$(GO) build -buildvcs=auto -ldflags "$(GO_LDFLAGS)" -o $(BIN)/ ./cmd/...

# The main job: the back office, the card lab on pcscd's virtual readers and
# the agent; one ASKES authentication through the local API, then it stays up.
# The script is tethered to make (kpe-cardsim tether: SIGTERM to it when make
# dies, even by SIGKILL), as it tethers what it starts to itself; Ctrl-C,
# SIGTERM or SIGHUP to make's process group stop everything
# (docs/card-lab.md, "Stopping make run").
run: pcscd build
	@exec $(BIN)/kpe-cardsim tether --parent $$PPID -- ./scripts/run-lab.sh

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# -timeout: a package's clock runs while it waits for the shared pcscd lock
# (scripts/pcsclock) behind other packages, so Go's 10-minute default is
# too close to what agent/daemon takes on a loaded 2-core machine.
unit:
	@./scripts/gotest.sh -race -count=1 -timeout=45m ./...

# A short run of every fuzz target; see the script for the retry of Go's
# fuzzing-coordinator race (golang/go#75804).
fuzz-smoke:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

windows:
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	@echo ">> GOOS=windows GOARCH=amd64 go build ./... ok"

test: pcscd postgres check openapi-lint windows fuzz-smoke unit

# The OpenAPI documents (agent/api/openapi.yaml, docs/backoffice-api.yaml,
# docs/institution-api.yaml)
# linted by Redocly CLI with redocly.yaml's rules; any problem fails. The CLI
# is the version pinned in tools/openapi/package-lock.json, installed with
# `npm ci` into build/tools/openapi (git-ignored), never globally; it is
# installed again when the lock file changes. It needs Node.js 20.19+ or
# 22.12+ (Debian bookworm's own nodejs is 18: then this says so and fails).
OPENAPI_TOOLS := build/tools/openapi
REDOCLY       := $(OPENAPI_TOOLS)/node_modules/.bin/redocly
NODE_CHECK    := const [a, b] = process.versions.node.split(".").map(Number); \
  if (!((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22)) { \
  console.error("openapi-lint: Redocly CLI needs Node.js 20.19+ or 22.12+, this is " + process.version); process.exit(1) }

$(OPENAPI_TOOLS)/.installed: tools/openapi/package.json tools/openapi/package-lock.json | deps
	@node -e '$(NODE_CHECK)'
	rm -rf $(OPENAPI_TOOLS) && mkdir -p $(OPENAPI_TOOLS)
	cp tools/openapi/package.json tools/openapi/package-lock.json $(OPENAPI_TOOLS)/
	cd $(OPENAPI_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

openapi-lint: $(OPENAPI_TOOLS)/.installed
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --config redocly.yaml

# Long reliability runs: the outbox killed with SIGKILL 500 times while
# appending and 500 times while compacting, and a terminal killed 500
# times while appending and uploading to the back office on PostgreSQL
# (make test runs 20 of each); and the outbox's size under a steady load
# with acknowledgements and pruning, over 100,000 records (5,000 in make
# test).
soak: postgres
	KPE_SOAK_ITERATIONS=500 $(GO) test -count=1 -run 'Kill9' -v ./sync/outbox/ ./sync/uploader/ | grep -E 'kills|^(---|ok|FAIL)' 
	KPE_SOAK_RECORDS=100000 $(GO) test -count=1 -timeout=30m -run 'TestSteadyStateOutboxSize' -v ./sync/uploader/ | grep -E 'records of|^(---|ok|FAIL)'

# The kiosk's benchmarks (cmd/kpe-agent/kiosk_bench_test.go, docs/kiosk.md):
# first paint and page weight, card to profile over 50 sessions, memory
# over 500 sessions, in headless Chromium through the make-run terminal.
BENCH_IDLE ?= 60s
bench: pcscd postgres bio-bench
	$(GO) test -run='^$$' -bench=. -benchtime=2s -count=1 ./apdu/pcsc/
	$(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 ./sync/uploader/
	$(GO) test -run='^$$' -bench=Settlement -benchtime=1x -count=1 -timeout=30m ./sync/backoffice/
	$(GO) test -run='^$$' -bench=TwoNodes -benchtime=1x -count=1 -timeout=20m ./lab/fleet/
	$(GO) test -run='^$$' -bench=TapToCode -benchtime=40x -count=1 ./agent/daemon/
	$(GO) test -run='^$$' -bench=Payment -benchtime=40x -count=1 ./agent/daemon/
	$(GO) test -run='^$$' -bench=Kiosk -benchtime=1x -count=1 -timeout=30m ./cmd/kpe-agent/
	KPE_BENCH_IDLE=$(BENCH_IDLE) $(GO) test -run='^$$' -bench=IdleFootprint -benchtime=1x -count=1 ./cmd/kpe-agent/

# The matcher on generated synthetic sets (deterministic seed): EER, FNMR at
# FMR 1e-2/1e-3/1e-4, comparisons per second, full precision and compact.
BIODIR ?= /tmp/kpe-bio
bio-bench: build
	@for level in easy hard; do \
	  bin/kpe-cardsim bio gen --out $(BIODIR)/$$level --level $$level --fingers 300 --impressions 4 --impostors 0 >/dev/null && \
	  bin/kpectl bio bench $(BIODIR)/$$level || exit 1; \
	done

clean:
	rm -rf $(BIN)

# ---- packaging (make package) ----------------------------------------------
# build/pkg/: the .deb and .rpm (nfpm, installer/nfpm.yaml) and
# kpe-agent-windows-amd64.zip; installer/package.sh does the work and
# docs/install.md says what the packages do. nfpm runs through `go run` at a
# pinned version; it is not a dependency of the module.
NFPM           ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0
PKG_DIR        ?= build/pkg
KPE_AGENT_YAML ?= configs/agent.yaml

package:
	@GO="$(GO)" NFPM="$(NFPM)" PKG_DIR="$(PKG_DIR)" KPE_AGENT_YAML="$(KPE_AGENT_YAML)" ./installer/package.sh
# ---- end packaging ----------------------------------------------------------
