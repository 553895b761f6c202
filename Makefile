# rtmp2sip - plain GNU make. `make help` lists the targets.
#
#   make                 build the daemons (and build/relayctl), test tools and unit tests
#   make run             install missing dependencies, build, start redis + signaler (+ workers)
#   make install         copy signaler, mediaworker, relayctl to $(DESTDIR)$(PREFIX)/bin
#   make test            unit + integration tests + fuzz smoke; ends with "N passed, N failed"
#   make bench           benchmarks that print figures
#   make soak            hold SOAK_CALLS calls for SOAK_MINUTES (default 60) and judge leaks and audio
#   make fuzz            run every fuzz target for FUZZ_SECONDS (default 300) each
#   make deps            install the Debian packages the project needs
#   make SANITIZER=address|undefined ...   build with a sanitizer (own build folder)

SHELL := /bin/bash
CC ?= cc
SANITIZER ?=
BUILD := build$(if $(SANITIZER),-$(SANITIZER))

PKGS := openssl libzmq hiredis speex speexdsp libsrtp2 ortp sofia-sip-ua libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The worker's codec libraries (mediaworker/acodec.c): its objects, the mediaworker binary, the unit
# tests, tools and fuzz targets get them; the signaler and relayctl never link them.
MW_PKGS := libavcodec libavutil opus
MW_CFLAGS := $(shell pkg-config --cflags $(MW_PKGS) 2>/dev/null)
MW_LIBS := $(shell pkg-config --libs $(MW_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wno-unused-parameter -Wpointer-arith -Wvla
ifeq ($(CI),true)
WARN += -Werror
endif
ifneq ($(WERROR),)
WARN += -Werror
endif

OPT ?= -O2 -g
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -MMD -MP -Icommon -Isignaler -Imediaworker $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
LDLIBS := $(PKG_LIBS) -lm

ifneq ($(SANITIZER),)
CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif

# signaler/evloop_su.c is the signaler's evloop backend on sofia-sip's su_root (the mediaworker's
# is common/evloop.c): it is kept out of the archives and linked ahead of them, so those binaries
# never pull evloop.o.
COMMON_SRC := $(wildcard common/*.c)
EVLOOP_SU_OBJ := $(BUILD)/obj/signaler/evloop_su.o
# signaler/relayctl/ is the operator's CLI (its own main, on libcommon only), not part of the
# signaler library.
SIGNALER_SRC := $(filter-out signaler/main.c signaler/evloop_su.c,$(wildcard signaler/*.c))
RELAYCTL_SRC := $(wildcard signaler/relayctl/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
SIGNALER_OBJ := $(SIGNALER_SRC:%.c=$(BUILD)/obj/%.o)
MEDIAWORKER_SRC := $(filter-out mediaworker/main.c,$(wildcard mediaworker/*.c))
MEDIAWORKER_OBJ := $(MEDIAWORKER_SRC:%.c=$(BUILD)/obj/%.o)
MEDIAWORKER_BIN := $(if $(wildcard mediaworker/main.c),$(BUILD)/mediaworker)
RELAYCTL_BIN := $(if $(RELAYCTL_SRC),$(BUILD)/relayctl)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%) $(BUILD)/tests/test_evloop_su
# Unit tests and tools that link the SIP UA (sip_ua.c, or callrec.c that uses it) need the su_root
# evloop backend: they are listed here by name.
SIP_UNIT_BIN := $(BUILD)/tests/test_callrec $(BUILD)/tests/test_sip_ua
SIP_TOOL_BIN := $(BUILD)/tools/sipua_probe
# callbench_*.c, sipphone_*.c and rtmp_client_*.c are parts of callbench, sipphone and rtmp_client
# (one binary each), not tools of their own.
TOOL_SRC := $(filter-out tests/tools/callbench_%.c tests/tools/sipphone_%.c tests/tools/rtmp_client_%.c,$(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

.PHONY: all daemons tests tools fuzz-build run test unit integration fuzz-smoke fuzz bench soak deps \
	check-deps check-deps-bench clean help format install test-deploy sofia-fuzz

all: daemons tools tests

daemons: $(BUILD)/signaler $(MEDIAWORKER_BIN) $(RELAYCTL_BIN)
tests: $(UNIT_BIN)
tools: $(TOOL_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Worker objects and everything built on them see the codec libraries' headers.
$(BUILD)/obj/mediaworker/%.o $(BUILD)/obj/tests/%.o: CFLAGS += $(MW_CFLAGS)

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/libsignaler.a: $(SIGNALER_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/libmediaworker.a: $(MEDIAWORKER_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/mediaworker: $(BUILD)/obj/mediaworker/main.o $(BUILD)/libmediaworker.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MW_LIBS)

# relayctl: the operator's CLI (synchronous hiredis), on libcommon only.
$(BUILD)/relayctl: $(RELAYCTL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/signaler: $(BUILD)/obj/signaler/main.o $(EVLOOP_SU_OBJ) $(BUILD)/libsignaler.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libsignaler.a $(BUILD)/libmediaworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MW_LIBS)

# test_evloop_su: test_evloop.c run against the su_root backend.
$(BUILD)/tests/test_evloop_su: $(BUILD)/obj/tests/unit/test_evloop.o $(EVLOOP_SU_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SIP_UNIT_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(EVLOOP_SU_OBJ) $(BUILD)/libsignaler.a $(BUILD)/libmediaworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MW_LIBS)

# Test tools: rtmp_client links librtmp (a client library no one here wrote), G.711 from the
# worker's library (its player finds delay markers in G.711 audio) and libopus (Enhanced RTMP).
RTMP_CLIENT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/tools/rtmp_client*.c))
$(BUILD)/tools/rtmp_client: $(RTMP_CLIENT_OBJ) $(BUILD)/libmediaworker.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs librtmp 2>/dev/null || echo -lrtmp) \
		$(MW_LIBS) $(LDLIBS)

# callbench: the end-to-end call benchmark, on librtmp too (threads; Speex for its tone).
CALLBENCH_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/tools/callbench*.c))
$(BUILD)/tools/callbench: $(CALLBENCH_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(shell pkg-config --libs librtmp speex 2>/dev/null || echo -lrtmp -lspeex) $(LDLIBS)

# sipphone: a scripted softphone for the sip app; librtmp plus libspeex for its Speex audio.
SIPPHONE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/tools/sipphone*.c))
$(BUILD)/tools/sipphone: $(SIPPHONE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs librtmp 2>/dev/null || echo -lrtmp) \
		$(shell pkg-config --libs speex 2>/dev/null || echo -lspeex) $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libsignaler.a $(BUILD)/libmediaworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MW_LIBS)

$(SIP_TOOL_BIN): $(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(EVLOOP_SU_OBJ) $(BUILD)/libsignaler.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz targets: clang + libFuzzer with ASan and UBSan, built from the module sources directly.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Icommon -Isignaler -Imediaworker $(PKG_CFLAGS) $(MW_CFLAGS)
# signaler/sip_guard.c is left out: it defines msg_extract(), which would stand in for sofia's
# in fuzz_sip_stream (that target applies the same bound itself, or not: FUZZ_SIP_UNGUARDED=1).
FUZZ_LIB_SRC := $(filter-out signaler/sip_guard.c,$(SIGNALER_SRC)) $(MEDIAWORKER_SRC) $(COMMON_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=build-fuzz/obj/%.o)
fuzz-build: $(FUZZ_BIN)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
build-fuzz/libfuzzlib.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^
build-fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_target.h build-fuzz/libfuzzlib.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< build-fuzz/libfuzzlib.a $(PKG_LIBS) $(MW_LIBS) -lm

# fuzz_sip_stream: against the instrumented static sofia-sip when scripts/sofia-fuzz.sh built it
# (`make fuzz` does), so the fuzzer sees coverage inside the SIP parser; else the system's.
SOFIA_FUZZ_LIB := build-fuzz/sofia/libsofia-sip-ua.a
build-fuzz/fuzz_sip_stream: tests/fuzz/fuzz_sip_stream.c tests/fuzz/fuzz_target.h \
		build-fuzz/libfuzzlib.a $(wildcard $(SOFIA_FUZZ_LIB))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< build-fuzz/libfuzzlib.a $(if $(wildcard $(SOFIA_FUZZ_LIB)), \
		$(SOFIA_FUZZ_LIB) $(filter-out -lsofia-sip-ua,$(PKG_LIBS)) -lpthread,$(PKG_LIBS)) $(MW_LIBS) -lm

sofia-fuzz:
	@scripts/sofia-fuzz.sh build-fuzz/sofia

deps:
	@scripts/deps.sh install

check-deps:
	@scripts/deps.sh check || scripts/deps.sh install

# What only `make bench` needs (rtpengine, the peer it measures against): run and test never ask.
# Not fatal: without it, bench.sh's rtpengine section says so and is skipped.
check-deps-bench:
	@scripts/deps.sh check bench || scripts/deps.sh install bench || \
		echo "deps: no rtpengine: the bench section rtpengine will be skipped"

PREFIX ?= /usr/local
install: daemons
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/signaler $(MEDIAWORKER_BIN) $(RELAYCTL_BIN) $(DESTDIR)$(PREFIX)/bin/

# On a terminal, run.sh runs as a job of its own in the foreground (set -m; the "exit" keeps bash
# from exec'ing it in make's process group): a Ctrl-C reaches run.sh and not make, so make ends
# with run.sh's status (0 after a clean stop), not "Interrupt".
run: check-deps
	@$(MAKE) --no-print-directory daemons $(BUILD)/tools/sipphone
	@if [ -t 0 ] && [ -t 1 ]; then set -m; fi; BUILD=$(BUILD) scripts/run.sh; exit $$?

# test_codecs.sh's callees are baresip instances: `make test` installs it too (run does not).
test: check-deps
	@scripts/deps.sh check codecs || scripts/deps.sh install codecs
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz-build
	@BUILD=$(BUILD) scripts/test.sh all

# test-deploy: deploy/ for real, with podman and with docker (scripts/test_deploy.sh says what;
# DEPLOY_ENGINES="podman" or "docker" for one). Root; minutes.
DEPLOY_ENGINES ?= podman docker
test-deploy: check-deps
	@$(MAKE) --no-print-directory daemons tools
	@BUILD=$(BUILD) DEPLOY_ENGINES="$(DEPLOY_ENGINES)" scripts/test_deploy.sh

unit: all
	@BUILD=$(BUILD) scripts/test.sh unit

integration: all
	@BUILD=$(BUILD) scripts/test.sh integration

fuzz-smoke: fuzz-build
	@BUILD=$(BUILD) scripts/test.sh fuzz

fuzz: sofia-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} scripts/fuzz.sh

bench: check-deps check-deps-bench
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/bench.sh

# Not part of `make test`: an hour by default (scripts/soak.sh says what it holds and judges).
soak: daemons tools
	@BUILD=$(BUILD) scripts/soak.sh

format:
	clang-format -i $(wildcard common/*.[ch] signaler/*.[ch] signaler/relayctl/*.[ch] \
		mediaworker/*.[ch] tests/*/*.[ch])

clean:
	rm -rf build build-* 

help:
	@sed -n '1,11p' Makefile

-include $(shell find build* -name '*.d' 2>/dev/null)
