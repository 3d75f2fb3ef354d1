# Sentinel DynFW — build, test, lint, benchmark and release.
#
#   make test      vet, race-enabled tests, then every fuzz target briefly
#   make lint      gofmt, go vet, staticcheck
#   make bench     Go benchmarks plus the side-by-side libzmq comparison
#   make release   static binaries for routers and servers into dist/

GO       ?= go
FUZZTIME ?= 3s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BINARIES := dynfw-client sentinel
# GOOS/GOARCH[/GOARM or GOMIPS] of the release targets.
TARGETS  := linux/amd64 linux/arm64 linux/arm/7 linux/mips/softfloat linux/mipsle/softfloat

.PHONY: all build test test-short fuzz lint bench bench-go bench-zmq bench-codec release clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

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
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

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
	    env CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch \
	      $$( [ $$arch = arm ] && echo GOARM=$$variant ) \
	      $$( case $$arch in mips*) echo GOMIPS=$$variant;; esac ) \
	      $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/$$b-$$suffix ./cmd/$$b || exit 1; \
	  done; \
	done
	@cd dist && ls -l | awk 'NR>1 {printf "%-40s %6.1f MiB\n", $$9, $$5/1048576}' && sha256sum * > SHA256SUMS

clean:
	rm -rf bin dist

bench-codec:
	./scripts/bench-codec.sh
