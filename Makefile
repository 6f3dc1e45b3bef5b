# husk project commands. `make demo` and `make test` are the two that matter;
# both install what they need (hack/install-deps.sh) first.

PREFIX ?= /usr/local
CARGO ?= cargo
DEFAULT_HUSK := $(CURDIR)/target/release/husk
# The runtime the demo drives; HUSK=/usr/sbin/runc make demo checks the flow with runc.
HUSK ?= $(DEFAULT_HUSK)
# make test V2=0 skips the cgroup v2 guest (qemu under TCG: ~10 s per boot).
V2 ?= 1

.PHONY: all deps deps-v2 build demo test test-host test-v2 test-v2-suite install lint

all: build

deps:
	hack/install-deps.sh

deps-v2:
	hack/install-deps.sh --v2

build:
	$(CARGO) build --release --workspace

# The demo only needs a build when it drives our own binary.
demo: deps $(if $(filter $(DEFAULT_HUSK),$(HUSK)),build)
	HUSK=$(HUSK) hack/demo.sh

# Host tests (this machine: cgroup v1), then the same test binaries on a pure
# cgroup v2 guest.
test: test-host $(if $(filter 1,$(V2)),test-v2 test-v2-suite)

test-host: deps build
	HUSK_BIN=$(CURDIR)/target/release/husk $(CARGO) test --workspace --release

# Boots Debian's kernel with cgroup v1 disabled and checks the guest is a pure
# cgroup v2 host. SMOKE_FLAGS=--with-husk also runs a husk container in it.
test-v2: deps-v2 build
	hack/v2guest/smoke.sh $(SMOKE_FLAGS)

# The workspace's cargo test binaries (built on the host) run inside the guest.
test-v2-suite: deps-v2 build
	HUSK_BIN=$(CURDIR)/target/release/husk hack/v2guest/cargo-tests.sh --workspace

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m755 target/release/husk $(DESTDIR)$(PREFIX)/bin/husk

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Start-up latency, throughput and footprint of husk vs runc vs crun on this machine (and
# the containerd shims when containerd-shim-husk-v2 is built). Not part of `make test`:
# takes about 10 minutes and writes bench/results.md + bench/lifecycle.svg.
# BENCH_FLAGS=--quick checks the script in a few seconds.
.PHONY: bench
bench: deps build
	python3 bench/bench.py $(BENCH_FLAGS)
