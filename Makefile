# Sentinel DynFW — build, test, lint, benchmark and release.
#
#   make test      vet, race-enabled tests, then every fuzz target briefly
#   make lint      gofmt, go mod tidy -diff, go vet, staticcheck
#   make bench     Go benchmarks plus the side-by-side libzmq comparison
#   make release   static binaries for routers and servers into dist/
#   make size-check  fail if the router client outgrows its budget

GO       ?= go
FUZZTIME ?= 3s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BINARIES := dynfw-client sentinel
# GOOS/GOARCH[/GOARM or GOMIPS] of the release targets.
TARGETS  := linux/amd64 linux/arm64 linux/arm/7 linux/mips/softfloat linux/mipsle/softfloat
# Build tags of the router client: it fetches one certificate over HTTPS
# and serves /metrics in plain HTTP, so net/http's HTTP/2 support (0.6 MiB
# on mips) is dead weight there. The server keeps it.
CLIENT_TAGS := nethttpomithttp2
# The router client's budget, stripped, on every release target; size-check
# builds the largest (mips) and fails above it.
CLIENT_MAX_BYTES := 8388608

.PHONY: all build test test-short fuzz lint bench bench-go bench-zmq bench-codec release size-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/sentinel
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(CLIENT_TAGS)' -ldflags '$(LDFLAGS)' -o bin/ ./cmd/dynfw-client

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-short.sh

test-short:
	$(GO) test -short -count=1 ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-short.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# cross builds one release binary: $(call cross,GOOS,GOARCH,GOARM or GOMIPS
# or empty,binary,output).
cross = env CGO_ENABLED=0 GOOS=$(1) GOARCH=$(2) \
	$$( [ $(2) = arm ] && echo GOARM=$(3) ) \
	$$( case $(2) in mips*) echo GOMIPS=$(3);; esac ) \
	$(GO) build -trimpath $$( [ $(4) = dynfw-client ] && echo "-tags $(CLIENT_TAGS)" ) -ldflags '$(LDFLAGS)' -o $(5) ./cmd/$(4)

bench: bench-go bench-zmq bench-codec

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

bench-zmq:
	./scripts/bench-zmq.sh

release:
	@rm -rf dist && mkdir -p dist
	@for t in $(TARGETS); do \
	  os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; variant=$${rest#$$arch}; variant=$${variant#/}; \
	  suffix=$$os-$$arch$${variant:+-$$variant}; \
	  for b in $(BINARIES); do \
	    $(call cross,$$os,$$arch,$$variant,$$b,dist/$$b-$$suffix) || exit 1; \
	  done; \
	done
	@cd dist && ls -l | awk 'NR>1 {printf "%-40s %6.1f MiB\n", $$9, $$5/1048576}' && sha256sum * > SHA256SUMS

size-check:
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	  $(call cross,linux,mips,softfloat,dynfw-client,$$out/dynfw-client) && \
	  size=$$(stat -c %s $$out/dynfw-client) && \
	  awk -v s=$$size -v m=$(CLIENT_MAX_BYTES) 'BEGIN {printf "dynfw-client linux/mips/softfloat: %d bytes (%.2f MiB), budget %d\n", s, s/1048576, m}' && \
	  if [ $$size -gt $(CLIENT_MAX_BYTES) ]; then echo "dynfw-client is over its size budget: see what it links with go tool nm -size -sort size" >&2; exit 1; fi

clean:
	rm -rf bin dist

bench-codec:
	./scripts/bench-codec.sh
