# palid: build, test and cross-compile. See README.md.
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
QEMU     ?= qemu-aarch64-static

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
	PALID_TFLITE_LIB=$$(./scripts/tflite.sh) $(GO) test -count=1 -timeout 20m ./...

test-purego:
	$(GO) test -count=1 -tags purego ./neon/...

# Every arm64 kernel path runs for real under qemu, once per CPU model.
test-arm64:
	QEMU_CPU=cortex-a53 NEON_EXPECT_PATH=asimd GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU) ./neon/...
	QEMU_CPU=cortex-a76 NEON_EXPECT_PATH=sdot GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU) ./neon/...
	QEMU_CPU=max NEON_EXPECT_PATH=smmla GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU) ./neon/...
	QEMU_CPU=cortex-a76 GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU) ./runtime/ ./runtime/gguf/
	QEMU_LD_PREFIX=/usr/aarch64-linux-gnu QEMU_CPU=cortex-a76 GOARCH=arm64 $(GO) test -count=1 -tags hwtest -exec $(QEMU) -v ./hwtests/...

cross:
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/palid-linux-arm64 ./cmd/palid
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/palid-linux-amd64 ./cmd/palid

# Release binaries (docs/release.md): reproducible, so the same commit and Go
# give byte-identical files on any machine, in any directory, with any build
# cache. The tree's path (-trimpath), the build id (-buildid=), cgo, the
# microarchitecture levels and the VCS stamp are pinned. DISTDIR=... writes
# elsewhere than dist/.
dist:
	rm -rf $(or $(DISTDIR),dist)
	mkdir -p $(or $(DISTDIR),dist)
	for p in linux/arm64 linux/amd64; do \
		os=$${p%/*}; arch=$${p#*/}; \
		GOOS=$$os GOARCH=$$arch GOAMD64=v1 GOARM64=v8.0 CGO_ENABLED=0 \
		$(GO) build -trimpath -buildvcs=true -ldflags '$(LDFLAGS)' \
			-o $(or $(DISTDIR),dist)/palid-$$os-$$arch ./cmd/palid || exit 1; \
	done
	cd $(or $(DISTDIR),dist) && sha256sum palid-linux-* > SHA256SUMS
	cat $(or $(DISTDIR),dist)/SHA256SUMS

# dist-check builds the release twice from two copies of the tree (what git
# sees, tracked and untracked, plus .git) at different paths, the second
# with an empty build cache, and fails unless every file is byte-identical
# and the amd64 binary reports the version.
.PHONY: dist-check
dist-check:
	@set -e; tmp=$$(mktemp -d /tmp/palid-dist-check.XXXXXX); \
	trap 'chmod -R u+w "$$tmp"; rm -rf "$$tmp"' EXIT; \
	mkdir -p "$$tmp/a/src" "$$tmp/b/palid"; \
	git ls-files -z -co --exclude-standard | \
		tar --null -T - --ignore-failed-read -c -f - .git 2>/dev/null | tar -x -C "$$tmp/a/src"; \
	cp -a "$$tmp/a/src/." "$$tmp/b/palid/"; \
	echo "== build 1 in $$tmp/a/src"; \
	nice $(MAKE) --no-print-directory -C "$$tmp/a/src" dist VERSION=$(VERSION); \
	echo "== build 2 in $$tmp/b/palid, empty GOCACHE"; \
	GOCACHE="$$tmp/cache" nice $(MAKE) --no-print-directory -C "$$tmp/b/palid" dist VERSION=$(VERSION); \
	for f in palid-linux-arm64 palid-linux-amd64 SHA256SUMS; do \
		cmp "$$tmp/a/src/dist/$$f" "$$tmp/b/palid/dist/$$f" || { echo "dist-check: $$f differs between the two builds" >&2; exit 1; }; \
	done; \
	"$$tmp/a/src/dist/palid-linux-amd64" version | grep -qF "palid $(VERSION)" || \
		{ echo "dist-check: palid version does not report $(VERSION)" >&2; exit 1; }; \
	echo "dist-check: the two builds are byte-identical (version $(VERSION))"

clean:
	rm -rf bin dist
