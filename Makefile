# palid: build, test and cross-compile. See README.md.
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
QEMU     ?= qemu-aarch64-static
# CPU models for the arm64 kernel tests: baseline ASIMD, dotprod, dotprod+i8mm.
QEMU_CPUS ?= cortex-a53 cortex-a76 max

.PHONY: all build test deps vet test-amd64 test-purego test-arm64 cross dist clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/palid ./cmd/palid

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...

test: deps vet test-amd64 test-purego test-arm64 cross

test-amd64:
	$(GO) test -count=1 -timeout 15m ./...

test-purego:
	$(GO) test -count=1 -tags purego ./neon/...

# Every arm64 kernel path runs for real under qemu, once per CPU model.
test-arm64:
	for cpu in $(QEMU_CPUS); do \
		echo "== neon under qemu $$cpu"; \
		QEMU_CPU=$$cpu GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU) ./neon/... || exit 1; \
	done
	QEMU_CPU=cortex-a76 GOARCH=arm64 $(GO) test -count=1 -tags hwtest -exec $(QEMU) -v ./hwtests/...

cross:
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/palid-linux-arm64 ./cmd/palid
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/palid-linux-amd64 ./cmd/palid

dist: cross
	mkdir -p dist
	cp bin/palid-linux-arm64 bin/palid-linux-amd64 dist/
	cd dist && sha256sum palid-linux-* > SHA256SUMS

clean:
	rm -rf bin dist
