# modstore - see README.md.  `make`, `make test`, `make run`.
#
# SANITIZE=address,undefined (or thread) builds everything with sanitizers
# into build/<variant>/, leaving the plain build alone.

comma     := ,
PKGS      := libmicrohttpd jansson libsodium libcurl gnutls
CC        ?= cc
SANITIZE  ?=
RUN_DIR   ?= ./state
RUN_LISTEN ?= 127.0.0.1:8080

ifeq ($(filter clean distclean format,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),ok)
$(info modstore: installing missing build dependencies (tools/install-deps))
DEPS_LOG := $(shell tools/install-deps >&2; echo $$?)
ifneq ($(DEPS_LOG),0)
$(error tools/install-deps failed; run it by hand to see why)
endif
endif
endif

WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wwrite-strings \
	  -Wvla -fno-common
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -pthread \
	  $(shell pkg-config --cflags $(PKGS))
LDLIBS_STORE := $(shell pkg-config --libs libsodium) -pthread
LDLIBS_ALL   := $(shell pkg-config --libs $(PKGS)) -pthread -lm

ifeq ($(SANITIZE),)
VARIANT := plain
BIN     := bin
else
VARIANT := $(subst $(comma),-,$(SANITIZE))
BIN     := build/$(VARIANT)/bin
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=$(SANITIZE)
endif
O := build/$(VARIANT)

STORE_SRC  := $(wildcard store/*.c)
API_SRC    := $(wildcard api/*.c)
SERVER_SRC := $(wildcard server/*.c)
CLUSTER_SRC := $(wildcard cluster/*.c)
CLI_SRC    := $(wildcard cli/*.c)
TLIB_SRC   := $(wildcard tests/lib/*.c)
UNIT_SRC   := $(wildcard tests/unit_*.c)
E2E_SRC    := $(wildcard tests/e2e_*.c)

obj = $(patsubst %.c,$(O)/%.o,$(1))

LIBSTORE := $(O)/libstore.a
LIBAPI   := $(O)/libapi.a
LIBCLUSTER := $(O)/libcluster.a
TLIB     := $(O)/libtest.a
DAEMON   := $(BIN)/modstored
CLIBIN   := $(if $(CLI_SRC),$(BIN)/modstore)
UNIT_BIN := $(patsubst tests/%.c,$(O)/tests/%,$(UNIT_SRC))
E2E_BIN  := $(patsubst tests/%.c,$(O)/tests/%,$(E2E_SRC))

# keep the objects of test programs (intermediates of pattern rules)
.SECONDARY:

.PHONY: all test test-suite test-tsan test-valgrind run deps clean format format-check \
	tests fuzz fuzz-build torture test-openapi
all: $(DAEMON) $(CLIBIN)
SHIM     := $(O)/faultshim.so
tests: $(UNIT_BIN) $(E2E_BIN) $(SHIM)

# LD_PRELOAD library of the I/O fault tests (tests/shim/faultshim.c)
$(SHIM): tests/shim/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -fPIC -shared -o $@ $< -ldl

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Istore -Iapi -Icluster -Itests/lib -c -o $@ $<

$(LIBSTORE): $(call obj,$(STORE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(LIBAPI): $(call obj,$(API_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(LIBCLUSTER): $(call obj,$(CLUSTER_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(TLIB): $(call obj,$(TLIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(DAEMON): $(call obj,$(SERVER_SRC)) $(LIBCLUSTER) $(LIBAPI) $(LIBSTORE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(BIN)/modstore: $(call obj,$(CLI_SRC)) $(LIBSTORE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# unit_alloc wraps the allocator to fail each allocation in turn
WRAP_ALLOC := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
$(O)/tests/unit_%: $(O)/tests/unit_%.o $(TLIB) $(LIBSTORE)
	$(CC) $(LDFLAGS) $(if $(findstring unit_alloc,$@),$(WRAP_ALLOC)) \
		-o $@ $^ $(LDLIBS_ALL)
$(O)/tests/e2e_%: $(O)/tests/e2e_%.o $(TLIB) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
# e2e_access walks the api's route table (both tokens on every route)
$(O)/tests/e2e_access: $(O)/tests/e2e_access.o $(TLIB) $(LIBAPI) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
# unit_cluster tests the log's records of cluster/ with the store
$(O)/tests/unit_cluster: $(O)/tests/unit_cluster.o $(TLIB) $(LIBCLUSTER) $(LIBAPI) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
# unit_openapi compares docs/openapi.yaml with the api's route table
$(O)/tests/unit_openapi: $(O)/tests/unit_openapi.o $(TLIB) $(LIBAPI) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

# `make test` runs the whole suite, then again built with ASan and UBSan,
# then the concurrency tests built with TSan. `make test-suite` runs the
# suite of one build only (SANITIZE= chooses which).
TSAN_TESTS := unit_sessions unit_model e2e_concurrent e2e_sigterm e2e_kill \
	unit_proofs e2e_proofs

test:
	@tools/install-deps
	@$(MAKE) -s format-check
	$(MAKE) test-suite
	$(MAKE) test-openapi
	$(MAKE) test-powercut
	$(MAKE) SANITIZE=address,undefined test-suite
	$(MAKE) SANITIZE=thread test-tsan
	$(MAKE) test-valgrind
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

test-suite: all tests
	@O=$(O) BIN=$(BIN) FAULTSHIM=$(abspath $(SHIM)) tests/run \
		$(UNIT_BIN) $(E2E_BIN)

# docs/openapi.yaml: `redocly lint` (no error), then Prism as a validating
# proxy in front of the real daemon while tests/openapi/conformance drives
# every route through it. Both from npm, in build/node (tools/install-deps).
NODE_BIN := build/node/node_modules/.bin
test-openapi: all
	@tools/install-deps
	$(NODE_BIN)/redocly lint --format=stylish docs/openapi.yaml
	@MODSTORED=$(DAEMON) PRISM=$(NODE_BIN)/prism tests/run \
		tests/openapi/conformance

# end-to-end tests with the daemon under valgrind memcheck
VALGRIND_TESTS := e2e_routes e2e_walkthrough e2e_restart e2e_token
test-valgrind: all tests
	@O=$(O) BIN=$(BIN) FAULTSHIM=$(abspath $(SHIM)) \
		VALGRIND_DAEMON=$(DAEMON) MODSTORED=tests/valgrind-modstored \
		tests/run $(addprefix $(O)/tests/,$(VALGRIND_TESTS))

test-tsan: all tests
	@O=$(O) BIN=$(BIN) FAULTSHIM=$(abspath $(SHIM)) tests/run \
		$(addprefix $(O)/tests/,$(TSAN_TESTS))

# Build the container image of docker/Dockerfile and run it: docker where an
# engine runs, else buildah (chroot isolation). Beside `make test` in .ci/run.
.PHONY: docker-test
docker-test:
	docker/test.sh

run: $(DAEMON) $(CLIBIN)
	$(DAEMON) --dir $(RUN_DIR) --listen $(RUN_LISTEN)

deps:
	tools/install-deps

# libFuzzer targets: tests/fuzz/fuzz_*.c, built with clang and linked with
# the store and api sources built the same way. `make fuzz` runs each for
# FUZZ_SECONDS from its committed corpus tests/fuzz/corpus/<name>/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined \
		-fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE $(WARN) \
		-fno-omit-frame-pointer -pthread \
		$(shell pkg-config --cflags $(PKGS))
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIBOBJ  := $(patsubst %.c,build/fuzz/%.o,$(STORE_SRC) $(API_SRC))

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -MMD -MP -Istore -Iapi \
		-Itests/lib -c -o $@ $<
build/fuzz/fuzz_%: build/fuzz/tests/fuzz/fuzz_%.o $(FUZZ_LIBOBJ)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS_ALL)

# long runs: SIGKILL rounds by the thousand, then each fuzz target longer
TORTURE_ROUNDS ?= 2000
torture: all tests
	@O=$(O) BIN=$(BIN) MODSTORE_KILL_ROUNDS=$(TORTURE_ROUNDS) tests/run \
		$(O)/tests/e2e_kill
	$(MAKE) fuzz FUZZ_SECONDS=1800

fuzz-build: $(FUZZ_BIN)
fuzz: fuzz-build
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BIN)

FORMAT_SRC := $(wildcard store/*.[ch] api/*.[ch] server/*.[ch] cli/*.[ch] \
		cluster/*.[ch] \
		bench/*.[ch] tests/*.c tests/lib/*.[ch] tests/fuzz/*.[ch] \
		tests/shim/*.c)
# `make bench`: the benchmark suite of bench/README.md against its peers
# (installed by bench/install-peers). Not part of `make test`.
BENCH_BIN := $(O)/bench/bench
BENCH_LIB := $(O)/bench/nofsync.so
.PHONY: bench
$(BENCH_BIN): $(O)/bench/bench.o $(TLIB) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(BENCH_LIB): bench/nofsync.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -fPIC -shared -o $@ $<
bench: $(DAEMON) $(BENCH_BIN) $(BENCH_LIB)
	@bench/install-peers
	@MODSTORED=$(abspath $(DAEMON)) BENCH_LIB=$(abspath $(O)/bench) \
		BENCH_SRC=$(abspath bench) $(BENCH_BIN) $(BENCH)

format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && \
		echo "format: $(words $(FORMAT_SRC)) files follow .clang-format"

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# --- the power-cut test (tests/powercut/) ------------------------------------
# A FUSE file system (libfuse3) that keeps what was not flushed apart and
# drops it on a simulated cut; the store is cut at every step of its
# operations and at random events, and each of its flushes is removed in
# turn. `make test-powercut` runs it alone; POWERCUT_SCALE multiplies its
# rounds (`make torture` uses TORTURE_POWERCUT_SCALE).
PC_SRC := $(wildcard tests/powercut/*.c)
PC_BIN := $(O)/tests/powercut/powercut
TORTURE_POWERCUT_SCALE ?= 20
FORMAT_SRC += $(wildcard tests/powercut/*.[ch])
# expanded when used: after powercut-deps has installed libfuse3-dev
PC_CFLAGS = $(shell pkg-config --cflags fuse3)
PC_LIBS = $(shell pkg-config --libs fuse3)

# only building the test needs libfuse3 (not `make`, nor the image)
powercut-deps:
	@pkg-config --exists fuse3 || tools/install-deps
$(call obj,$(PC_SRC)): | powercut-deps
$(O)/tests/powercut/%.o: CFLAGS += $(PC_CFLAGS)
$(PC_BIN): $(call obj,$(PC_SRC)) $(TLIB) $(LIBSTORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL) $(PC_LIBS)

.PHONY: test-powercut torture-powercut powercut-deps
tests: $(PC_BIN)
test-powercut: $(PC_BIN)
	@O=$(O) BIN=$(BIN) tests/run $(PC_BIN)
torture: torture-powercut
torture-powercut: $(PC_BIN)
	@O=$(O) BIN=$(BIN) POWERCUT_SCALE=$(TORTURE_POWERCUT_SCALE) \
		tests/run $(PC_BIN)
