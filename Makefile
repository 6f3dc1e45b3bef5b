# husk project commands. `make demo` and `make test` are the two that matter;
# both install what they need (hack/install-deps.sh) first.

PREFIX ?= /usr/local
CARGO ?= cargo
# husk and the containerd shim are linked statically (glibc and libseccomp, crt-static,
# still position-independent: static-pie). husk starts twice per create/run/exec (its
# CVE-2019-5736 re-exec), and dynamic loading cost each start its relocations' copy-on-
# write faults: static, a `run` is 1.5-2.5 ms faster (bench/findings.md). An idle shim's
# memory is mostly the pages of the code it maps, and a static shim maps only the parts of
# libc it uses instead of all of libc.so, ld.so and libgcc_s (shim/README.md, "Memory").
# crt-static is a target feature that applies to a whole build (proc macros cannot take
# it), so both get a build with --target (their own dir under target/); the plain
# `cargo build` output (target/release/husk, dynamic) is what `cargo test` builds and is
# not what make tests, installs or benchmarks.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
HUSK_BIN := $(CURDIR)/target/$(HOST_TRIPLE)/release/husk
SHIM_BIN := $(CURDIR)/target/$(HOST_TRIPLE)/release/containerd-shim-husk-v2
DEFAULT_HUSK := $(HUSK_BIN)
# The runtime the demo drives; HUSK=/usr/sbin/runc make demo checks the flow with runc.
HUSK ?= $(DEFAULT_HUSK)
# make test V2=0 skips the cgroup v2 guest (qemu under TCG: ~10 s per boot).
V2 ?= 1

.PHONY: all deps deps-v2 build shim-symbol-order demo test test-host test-v2 test-v2-suite install lint test-shim test-shim-v2

all: build

deps:
	hack/install-deps.sh

deps-v2:
	hack/install-deps.sh --v2

# The shim's functions that run up to idle (shim/symbol-order.txt, made by
# hack/shim-symbol-order.py) are laid out first, so its idle pages are few and
# contiguous instead of spread over all of its text (rust-lld, rustc's default linker
# on x86_64 Linux since 1.90; names missing from the list only lose their place).
SHIM_LINK := -C link-arg=-Wl,--symbol-ordering-file=$(CURDIR)/shim/symbol-order.txt \
	-C link-arg=-Wl,--no-warn-symbol-ordering

# Two static builds with the same flags (so neither rebuilds the other's dependencies),
# but separate, so the shim's dependency features are not unified with husk's.
# libseccomp-sys must be told to link libseccomp.a: its default (dylib) links the .so
# into the static-pie binary, which then crashes before main.
STATIC_FLAGS := LIBSECCOMP_LINK_TYPE=static \
	LIBSECCOMP_LIB_PATH="$$(dirname "$$(cc -print-file-name=libseccomp.a)")" \
	RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static $(SHIM_LINK)"
build:
	$(CARGO) build --release --workspace
	$(STATIC_FLAGS) $(CARGO) build --release -p husk --bin husk --target $(HOST_TRIPLE)
	$(HUSK_BIN) --version >/dev/null
	$(STATIC_FLAGS) $(CARGO) build --release -p husk-shim --bin containerd-shim-husk-v2 --target $(HOST_TRIPLE)

# Regenerates shim/symbol-order.txt after changes to the shim (valgrind, ~1 min): the
# static shim is linked once with its symbols and traced under callgrind up to idle.
shim-symbol-order: build
	$(STATIC_FLAGS) $(CARGO) rustc --release -p husk-shim --bin containerd-shim-husk-v2 --target $(HOST_TRIPLE) -- -C strip=none
	hack/shim-symbol-order.py $(SHIM_BIN) $(HUSK_BIN) shim/symbol-order.txt
	$(MAKE) build

# The demo only needs a build when it drives our own binary.
demo: deps $(if $(filter $(DEFAULT_HUSK),$(HUSK)),build)
	HUSK=$(HUSK) hack/demo.sh

# Host tests (this machine: cgroup v1), then the same test binaries on a pure
# cgroup v2 guest.
test: test-host test-e2e test-shim test-conformance $(if $(filter 1,$(V2)),test-v2 test-v2-suite test-shim-v2 test-conformance-v2)
	hack/check-leaks.sh

test-host: deps build
	HUSK_BIN=$(HUSK_BIN) $(CARGO) test --workspace --release

# Boots Debian's kernel with cgroup v1 disabled and checks the guest is a pure
# cgroup v2 host, and runs a busybox container with husk in it.
SMOKE_FLAGS ?= --with-husk
test-v2: deps-v2 build
	HUSK_BIN=$(HUSK_BIN) hack/v2guest/smoke.sh $(SMOKE_FLAGS)

# The workspace's cargo test binaries (built on the host) run inside the guest.
test-v2-suite: deps-v2 build
	HUSK_BIN=$(HUSK_BIN) hack/v2guest/cargo-tests.sh --workspace

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m755 $(HUSK_BIN) $(DESTDIR)$(PREFIX)/bin/husk
	install -m755 $(SHIM_BIN) $(DESTDIR)$(PREFIX)/bin/containerd-shim-husk-v2

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# End-to-end: husk as runc's drop-in under Debian's Docker 20.10 and containerd
# 1.6, through containerd-shim-runc-v2 (private daemons; hack/e2e/run.sh installs
# docker.io/containerd itself). HUSK=/usr/sbin/runc make test-e2e checks the
# scenarios against runc.
.PHONY: test-e2e
test-e2e: $(if $(filter $(DEFAULT_HUSK),$(HUSK)),build)
	HUSK=$(HUSK) hack/e2e/run.sh

# containerd shim v2 (io.containerd.husk.v2): unit tests of the task service, then
# a private containerd driving busybox containers through the shim and husk.
test-shim: build
	$(CARGO) test --release -p husk-shim
	$(CARGO) build --release -p husk-shim --example task_update
	hack/shim-e2e.sh $(SHIM_BIN) $(HUSK_BIN)

# The shim on the pure cgroup v2 guest: Debian's containerd + ctr run busybox through
# it; Stats must be io.containerd.cgroups.v2.Metrics and an OOM kill a TaskOOM (~45 s).
test-shim-v2: deps-v2 build
	hack/shim-e2e-v2.sh $(CURDIR)/target/release/containerd-shim-husk-v2 $(HUSK_BIN)

# --- OCI runtime-tools validation suite (hack/conformance/) ---
# test-conformance: husk against spec-tests/conformance/expected.tsv (fails when a test
# expected to pass does not); conformance: husk, runc and crun side by side.
CONFORMANCE_EXPECT := spec-tests/conformance/expected.tsv
CONFORMANCE_RUNTIMES ?= --runtime husk=$(HUSK) --runtime runc=/usr/sbin/runc --runtime crun=/usr/bin/crun

.PHONY: conformance-build conformance test-conformance

conformance-build:
	hack/conformance/build.sh

test-conformance: build conformance-build
	hack/conformance/run.py --runtime husk=$(HUSK) --expect $(CONFORMANCE_EXPECT) --check husk

conformance: build conformance-build
	hack/conformance/run.py $(CONFORMANCE_RUNTIMES) --expect $(CONFORMANCE_EXPECT)

# The same suite inside the pure cgroup v2 guest (husk only; ~10 min under emulation).
.PHONY: test-conformance-v2
test-conformance-v2: build deps-v2 conformance-build
	HUSK=$(HUSK) hack/conformance/v2.sh --expect $(CONFORMANCE_EXPECT) --check

# Start-up latency, throughput and footprint of husk vs runc vs crun on this machine (and
# the containerd shims when containerd-shim-husk-v2 is built). Not part of `make test`:
# takes about 10 minutes and writes bench/results.md + bench/lifecycle.svg.
# BENCH_FLAGS=--quick checks the script in a few seconds.
.PHONY: bench
bench: deps build
	HUSK_BENCH_SHIM=$(SHIM_BIN) python3 bench/bench.py --husk $(HUSK_BIN) $(BENCH_FLAGS)
