# deskgate — see README.md.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/deskgate/deskgate/appliance.Version=$(VERSION)
STATICCHECK_VERSION := v0.7.0
export CGO_ENABLED ?= 0

.PHONY: all build demo demo-fleet test test-deps test-openssl test-clock lint bench bench-image image bundle fuzz clean

all: build

# Static, with OpenSSL's libcrypto for RSA signatures when gcc and
# libssl-dev are present (scripts/gobuild.sh; DESKGATE_OPENSSL=0|1|auto).
build:
	@mkdir -p $(BIN)
	LDFLAGS='$(LDFLAGS)' scripts/gobuild.sh -trimpath -o $(BIN)/ ./cmd/...

# Runs the simulator and the daemon with a seeded demo space in the
# foreground (Ctrl-C stops both). State lives in .demo/.
demo: build
	@scripts/demo.sh

# Three boxes of one space on loopback (127.0.0.2-4) joined into a fleet,
# with the simulator; see docs/fleet.md. State lives in .demo-fleet/.
demo-fleet: build
	@scripts/demo-fleet.sh

test-deps:
	@scripts/install-test-deps.sh

# Every test. Root-only tests (netns, iptables, qemu) run when root; under
# CI=true nothing may skip for a missing tool. One package at a time (-p 1):
# the shaping tests measure rates with iperf3 on a 2-core machine, and
# another package's load would skew them.
test: test-deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 25m ./...
	@$(MAKE) --no-print-directory test-openssl
	@$(MAKE) --no-print-directory test-clock

# The EAP server again as it ships: RSA signatures through OpenSSL
# (internal/rsasign, cgo and the openssl tag; fails if gcc or libssl-dev
# is missing).
OPENSSL_TAGS = openssl,netgo,osusergo
test-openssl:
	CGO_ENABLED=1 $(GO) test -p 1 -count=1 -timeout 10m -tags $(OPENSSL_TAGS) ./internal/rsasign/ ./appliance/eap/

# The clock-sensitive packages (their tests start from internal/testepoch)
# again, with the tests' epoch 400 days ahead and just before a DST change
# in the demo time zone: the suite must pass on any date.
CLOCK_PKGS = $$(grep -rl --include='*_test.go' 'internal/testepoch"' . | xargs -n1 dirname | sort -u)
test-clock:
	DESKGATE_TEST_EPOCH=+400d $(GO) test -p 1 -count=1 -timeout 20m $(CLOCK_PKGS)
	DESKGATE_TEST_EPOCH=dst $(GO) test -p 1 -count=1 -timeout 20m $(CLOCK_PKGS)

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	CGO_ENABLED=1 $(GO) vet -tags $(OPENSSL_TAGS) ./internal/rsasign/ ./appliance/eap/
	CGO_ENABLED=1 $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags $(OPENSSL_TAGS) ./internal/rsasign/ ./appliance/eap/

# Benchmarks with figures (medians of repeated runs), see scripts/bench.sh.
bench: test-deps build
	@scripts/bench.sh

# The install image (A/B root slots, GRUB boot counting, RAUC) assembled
# from Debian packages with the board files of buildroot/; see the README's
# "Install image and updates". Output in build/image/ (disk.img, bundle).
IMAGE_DIR ?= build/image
image:
	VERSION=$(VERSION) DESKGATE_NO_BUNDLE=1 scripts/image/build.sh $(IMAGE_DIR)

# A RAUC bundle of the image's root slot, signed with the update key
# (DESKGATE_SIGN_CERT/DESKGATE_SIGN_KEY, else the dev keys in IMAGE_DIR/keys).
bundle: image
	DESKGATE_KEYS_DIR=$${DESKGATE_KEYS_DIR:-$(IMAGE_DIR)/keys} buildroot/board/deskgate/mkbundle.sh \
		$(IMAGE_DIR)/rootfs.squashfs $(VERSION) $(IMAGE_DIR)/update.raucb
	@ls -l $(IMAGE_DIR)/update.raucb

# Image figures under qemu: size, boot to first RADIUS answer, bundle size,
# install and rollback time (scripts/image/bench.sh).
bench-image: test-deps
	@scripts/image/bench.sh

# Short fuzzing of every parser (20 s each).
fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf $(BIN) .demo .demo-fleet build
