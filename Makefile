# outpost — GNU make + pkg-config build.
#
#   make               build outpostd and outpost into $(BUILD)/ (default build/)
#   make check         unit tests (cmocka) + integration tests (pytest)
#   make check-asan    the same, built with AddressSanitizer + UBSan
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make fuzz [FUZZ_SECONDS=60]   every libFuzzer harness in fuzz/ (clang, build-fuzz/)
#   make lint          clang-tidy + cppcheck (.clang-tidy, .cppcheck-suppressions)
#
# Sources are found by wildcard, so adding a file to a subsystem folder needs
# no edit here.  A file named *_test.c is a cmocka unit test; it may #include
# the .c it tests to reach static helpers.

PKGS      := openssl libevent libevent_openssl libevent_pthreads libcares sqlite3 libsodium jansson libcurl
BUILD     ?= build
PREFIX    ?= /usr/local
CC        ?= cc
PYTHON    ?= /usr/bin/python3
SAN       ?=

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
QR_CFLAGS  = $(shell pkg-config --cflags libqrencode 2>/dev/null)
QR_LIBS    = $(shell pkg-config --libs libqrencode 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)

OPT       ?= -O2
CFLAGS    ?= $(OPT) -g
WARN      := -std=c17 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
DEFS      := -D_GNU_SOURCE -DOUTPOST_VERSION=\"$(shell cat VERSION 2>/dev/null || echo 0.1.0)\"
ifeq ($(SAN),1)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT      := -O1
endif
# SAN=fuzz: the library instrumented for libFuzzer (make fuzz sets it).
ifeq ($(SAN),fuzz)
  SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT      := -O1
  # clang warns where gcc does not; gcc's -Werror build is the gate.
  WARN     += -Wno-error
endif
FUZZ_SECONDS ?= 60
FUZZ_CC   ?= clang
FUZZ_BIN  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
ALL_CFLAGS = $(WARN) $(DEFS) $(CFLAGS) $(SANFLAGS) -Isrc $(PKG_CFLAGS) $(QR_CFLAGS) -MMD -MP
LDLIBS     = $(SANFLAGS) $(PKG_LIBS) $(QR_LIBS) -lpthread -lm

SUBSYS    := util smtp tls auth queue message delivery dns smtpc web
LIB_SRC   := $(filter-out %_test.c,$(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.c)))
CLI_SRC   := $(filter-out %_test.c,$(wildcard src/cli/*.c))
TEST_SRC  := $(wildcard $(foreach d,$(SUBSYS) cli,src/$(d)/*_test.c)) $(wildcard tests/unit/*_test.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ := $(BUILD)/src/outpostd.o
TEST_BIN  := $(patsubst %.c,$(BUILD)/unit/%,$(notdir $(TEST_SRC)))
LIBCORE   := $(BUILD)/libcore.a

.NOTPARALLEL: check check-asan
.PHONY: all check units check-unit check-integration check-asan bench install clean fuzz fuzz-bins lint

all: $(BUILD)/outpostd $(BUILD)/outpost

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCORE): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/outpostd: $(DAEMON_OBJ) $(LIBCORE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/outpost: $(CLI_OBJ) $(LIBCORE)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# One binary per *_test.c; vpath finds it in its subsystem folder.
vpath %_test.c $(sort $(dir $(TEST_SRC)))
$(BUILD)/unit/%: %.c $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MF $@.d -o $@ $< $(LIBCORE) $(LDLIBS) $(CMOCKA_LIBS)

check: check-unit check-integration

units: $(TEST_BIN)

check-unit: all $(TEST_BIN)
	@scripts/run-unit $(TEST_BIN)

check-integration: all
	OUTPOST_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

check-asan:
	ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	$(MAKE) BUILD=build-asan SAN=1 check

# One binary per fuzz/fuzz_*.c, linked against the instrumented library;
# scripts/fuzz runs each for FUZZ_SECONDS over a copy of its seed corpus.
fuzz:
	$(MAKE) BUILD=build-fuzz SAN=fuzz CC=$(FUZZ_CC) fuzz-bins
	scripts/fuzz build-fuzz $(FUZZ_SECONDS)

fuzz-bins: $(FUZZ_BIN)

$(BUILD)/fuzz/%: fuzz/%.c $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -MF $@.d -o $@ $< $(LIBCORE) $(LDLIBS)

lint:
	scripts/lint

bench: all
	$(MAKE) -C bench BUILD=$(abspath $(BUILD))

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0755 $(BUILD)/outpostd $(DESTDIR)$(PREFIX)/sbin/outpostd
	install -m 0755 $(BUILD)/outpost $(DESTDIR)$(PREFIX)/bin/outpost
	ln -sf ../bin/outpost $(DESTDIR)$(PREFIX)/sbin/sendmail
	install -m 0644 docs/outpost.1 $(DESTDIR)$(PREFIX)/share/man/man1/outpost.1
	install -m 0644 docs/outpost.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/outpost.conf.5
	install -m 0644 docs/outpostd.8 $(DESTDIR)$(PREFIX)/share/man/man8/outpostd.8

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
