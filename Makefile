# sdl - the targets (README.md, "Building and testing", says the same):
#   make                 build/: the library compiled once per configuration (build/sdl.o; with
#                        mpicc also build/sdl_mpi.o), every program in examples/ linked against it,
#                        the CPU benches, the fuzz replay tools. Real dependencies: touching an
#                        example rebuilds that example; touching sdl.h rebuilds build/sdl.o and relinks.
#   make test            the quick tier (tests/run.sh): the headers as C99/C11/C++17/nvcc, every
#                        test program, the emulated CUDA tests in order. Builds run in parallel.
#                        TESTS="test_ops mpi_test_ddp" runs only the test files with those names
#   make test-full       everything (.ci/run): the quick tier, the shuffled race-checked emulator
#                        runs, the full-size dry run, then test-sanitize
#   make test-sanitize   every test program under -fsanitize=address,undefined
#   make bench-build     compile times (the implementation at -O3, a program against build/sdl.o)
#                        and the wall time of make test, as BENCH lines
#   make bench-cpu       sgemm vs OpenBLAS, training vs PyTorch (BENCH_ARGS="--threads 1")
#   make bench-mpi | bench-cuda | bench-nccl | demo | models | cuda | clean   (see below)
# Variables: CC, CFLAGS (-O3 -march=native), MPICC, JOBS (parallel test jobs; default nproc), TESTS.
CC ?= cc
CFLAGS ?= -O3 -march=native
WARN = -Wall -Wextra
LDLIBS = -lm -lpthread
MPICC ?= mpicc
MPIRUN ?= mpirun --allow-run-as-root --oversubscribe
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
HAVE_OPENBLAS := $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -o /dev/null -lopenblas 2>/dev/null && echo 1)

# the one implementation file, compiled once: what a student's sdl_impl.c holds (README.md)
IMPL_SRC = '\#define SDL_IMPLEMENTATION\n\#include "sdl.h"\n'
MPI_IMPL_SRC = '\#include "sdl.h"\n\#define SDL_MPI_IMPLEMENTATION\n\#include "sdl_mpi.h"\n'
# Each example keeps its one-file build (it defines SDL_IMPLEMENTATION); here it is compiled
# with the header's own guard against a second copy, SDL_IMPLEMENTATION_DONE, and linked.
LINKED = -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE

MPI_EXAMPLES := $(sort $(shell grep -l 'sdl_mpi\.h' examples/*.c))
CPU_EXAMPLES := $(filter-out $(MPI_EXAMPLES),$(sort $(wildcard examples/*.c)))
FUZZ := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TUTORIALS := $(sort $(wildcard examples/tutorials/*.c))
TUT_MPI := $(sort $(shell grep -l '"sdl_mpi\.h"' examples/tutorials/*.c))
TUT_CPU := $(filter-out $(TUT_MPI),$(TUTORIALS))

ALL := build/sdl.o $(CPU_EXAMPLES:examples/%.c=build/%) $(TUT_CPU:examples/tutorials/%.c=build/tutorials/%) \
       $(FUZZ:tests/fuzz/%.c=build/%) build/peak
ifneq ($(HAVE_MPICC),)
ALL += build/sdl_mpi.o $(MPI_EXAMPLES:examples/%.c=build/%) $(TUT_MPI:examples/tutorials/%.c=build/tutorials/%) build/bench_mpi
endif
ifneq ($(HAVE_OPENBLAS),)
ALL += build/bench_cpu
endif

.PHONY: all test test-full test-sanitize clean bench-build
all: $(ALL)
ifeq ($(HAVE_MPICC),)
	@echo "make: skipped the MPI programs ($(MPI_EXAMPLES:examples/%.c=%) bench_mpi): $(MPICC) not found (apt-get install libopenmpi-dev openmpi-bin)"
endif
ifeq ($(HAVE_OPENBLAS),)
	@echo "make: skipped build/bench_cpu: OpenBLAS not found (apt-get install libopenblas-dev)"
endif

build/sdl.o: sdl.h
	@mkdir -p build
	printf $(IMPL_SRC) | $(CC) $(CFLAGS) $(WARN) -I. -x c -c - -o $@

build/sdl_mpi.o: sdl_mpi.h sdl.h
	@mkdir -p build
	printf $(MPI_IMPL_SRC) | $(MPICC) $(CFLAGS) $(WARN) -I. -x c -c - -o $@

$(CPU_EXAMPLES:examples/%.c=build/%): build/%: examples/%.c build/sdl.o sdl.h sdl_cuda.h
	$(CC) $(CFLAGS) $(WARN) $(LINKED) -I. $< build/sdl.o -o $@ $(LDLIBS)

$(MPI_EXAMPLES:examples/%.c=build/%): build/%: examples/%.c build/sdl.o build/sdl_mpi.o sdl.h sdl_mpi.h sdl_cuda.h
	$(MPICC) $(CFLAGS) $(WARN) $(LINKED) -I. $< build/sdl.o build/sdl_mpi.o -o $@ $(LDLIBS)

$(TUT_CPU:examples/tutorials/%.c=build/tutorials/%): build/tutorials/%: examples/tutorials/%.c build/sdl.o sdl.h sdl_cuda.h
	@mkdir -p build/tutorials
	$(CC) $(CFLAGS) $(WARN) $(LINKED) -I. $< build/sdl.o -o $@ $(LDLIBS)

$(TUT_MPI:examples/tutorials/%.c=build/tutorials/%): build/tutorials/%: examples/tutorials/%.c build/sdl.o build/sdl_mpi.o sdl.h sdl_mpi.h sdl_cuda.h
	@mkdir -p build/tutorials
	$(MPICC) $(CFLAGS) $(WARN) $(LINKED) -I. $< build/sdl.o build/sdl_mpi.o -o $@ $(LDLIBS)

# tests/fuzz: each reader's replay driver (FUZZ_MAIN: runs each file named on the command line)
$(FUZZ:tests/fuzz/%.c=build/%): build/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h build/sdl.o sdl.h
	$(CC) $(CFLAGS) $(WARN) $(LINKED) -DFUZZ_MAIN -I. $< build/sdl.o -o $@ $(LDLIBS)

build/peak: bench/peak.c
	@mkdir -p build
	$(CC) -O2 -march=native $< -o $@

# bench_mpi counts the bytes sdl holds (ZeRO's memory table) through its own SDL_ALLOC, so it
# compiles the implementation itself
build/bench_mpi: bench/bench_mpi.c sdl.h sdl_mpi.h
	@mkdir -p build
	$(MPICC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

TESTS ?=
test:
	CC="$(CC)" bash tests/run.sh $(TESTS)

# what CI runs: the quick tier with the slow extras (TEST_FULL=1), then the sanitizer suite
test-full:
	TEST_FULL=1 CC="$(CC)" bash tests/run.sh $(TESTS)
	SAN=1 CC="$(CC)" TEST_OPT="-O1" bash tests/run.sh $(TESTS)

test-sanitize:
	SAN=1 CC="$(CC)" TEST_OPT="-O1" bash tests/run.sh $(TESTS)

clean:
	rm -rf build

# ---- make bench-build: CPU seconds (user) of compiling the implementation at $(CFLAGS) and of
# a tutorial-sized program against the prebuilt build/sdl.o, then the wall time of make test
BENCH_PROG ?= examples/fashion_cnn.c
bench-build: build/sdl.o
	@printf $(IMPL_SRC) >build/bench_impl.c
	@best=""; for i in 1 2 3; do t=$$( { /usr/bin/time -f %U $(CC) $(CFLAGS) -I. -c build/bench_impl.c -o build/bench_impl.o; } 2>&1 | tail -1); \
	  best=$$(echo "$$best $$t" | tr ' ' '\n' | grep . | sort -g | head -1); done; \
	echo "BENCH name=compile_impl_O3 cpu_s=$$best flags=\"$(CFLAGS)\" (min of 3)"
	@best=""; for i in 1 2 3; do t=$$( { /usr/bin/time -f %U $(CC) $(CFLAGS) $(LINKED) -I. $(BENCH_PROG) build/sdl.o -o build/bench_prog $(LDLIBS); } 2>&1 | tail -1); \
	  best=$$(echo "$$best $$t" | tr ' ' '\n' | grep . | sort -g | head -1); done; \
	echo "BENCH name=compile_user_prog cpu_s=$$best prog=$(BENCH_PROG) (compile + link against build/sdl.o, min of 3)"
	@s=$$(date +%s); CC="$(CC)" bash tests/run.sh $(TESTS) >build/bench_test.log 2>&1; rc=$$?; e=$$(date +%s); \
	  echo "BENCH name=make_test wall_s=$$((e - s)) exit=$$rc result=\"$$(tail -1 build/bench_test.log)\" (log: build/bench_test.log)"

# CUDA: builds the GPU test with nvcc; on a GPU machine also runs the checks, the
# sanitizers, the suite and the benchmark (tools/gpu_check.sh prints a table)
.PHONY: cuda
cuda:
	bash tools/gpu_check.sh

# ---- bench-cpu: sdl vs OpenBLAS (sgemm) and PyTorch (training), same threads. BENCH_ARGS="--threads 1"
.PHONY: bench-cpu
bench-cpu: build/bench_cpu
	./build/bench_cpu $(BENCH_ARGS)

build/bench_cpu: bench/bench_cpu.c build/sdl.o sdl.h
	$(CC) $(CFLAGS) -Wall -Wextra $(LINKED) -I. bench/bench_cpu.c build/sdl.o -o $@ -lopenblas $(LDLIBS)

# ---- make demo: train the Fashion-MNIST CNN on the CPU and print its test accuracy.
# Needs libstb-dev (stb_image's zlib reads the .gz files) and dataset-fashion-mnist; as root
# (or with password-less sudo) they are installed with apt-get, else the target says what to
# install. FASHION_DIR=dir uses IDX files elsewhere; DEMO_FLAGS="--epochs 1" passes flags.
FASHION_DIR ?= /usr/share/datasets/fashion-mnist
STB_HEADER ?= /usr/include/stb/stb_image.h
DEMO_FLAGS ?=
.PHONY: demo demo-deps
demo: demo-deps
	@$(MAKE) --no-print-directory build/fashion_cnn
	./build/fashion_cnn --data $(FASHION_DIR) $(DEMO_FLAGS)

demo-deps:
	@need=""; \
	[ -f $(STB_HEADER) ] || need="$$need libstb-dev"; \
	[ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ] || [ -f $(FASHION_DIR)/train-images-idx3-ubyte ] || \
	  { [ "$(FASHION_DIR)" = /usr/share/datasets/fashion-mnist ] && need="$$need dataset-fashion-mnist"; } || \
	  { echo "make demo: no Fashion-MNIST files in $(FASHION_DIR)"; exit 1; }; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "make demo needs:$$need. Install them with:  sudo apt-get install$$need"; exit 1; fi; \
	  echo "installing$$need"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need || exit 1; \
	fi

# ---- make bench-mpi: allreduce bandwidth (ring vs MPI_Allreduce, 4 B .. 64 MiB, np 2) and
# the weak scaling of data-parallel CNN training at np 1 and 2, one thread per rank, each
# rank bound to its own core (MPIBIND; empty it for launchers without these flags). Each run
# measures its own T(1) the same way: every rank alone in turn, the others asleep.
# MPIRUN overrides the launcher. Then bench_mpar: the pipeline bubble (GPipe vs 1F1B), tensor
# parallel bytes and step time, FedAvg bytes per round and rounds to 80% (see its top comment).
MPIBIND ?= --bind-to core --map-by core
.PHONY: bench-mpi
bench-mpi: build/bench_mpi
	$(MPIRUN) $(MPIBIND) -np 2 build/bench_mpi --allreduce
	$(MPIRUN) $(MPIBIND) -np 1 build/bench_mpi --weak
	$(MPIRUN) $(MPIBIND) -np 2 build/bench_mpi --weak
	$(MPICC) $(CFLAGS) -I. bench/bench_mpar.c -o build/bench_mpar $(LDLIBS)
	$(MPIRUN) $(MPIBIND) -np 2 build/bench_mpar
	$(MPIRUN) $(MPIBIND) -np 1 build/bench_mpi --zero
	$(MPIRUN) $(MPIBIND) -np 2 build/bench_mpi --zero
	$(MPIRUN) -np 4 build/bench_mpi --zero

# ---- the model examples on the CPU (nvcc builds: see tools/gpu_check.sh). make models, then e.g.
#   ./build/resnet18 --synthetic --steps 20 --batch-size 32    ./build/gpt2 --layers 2 --channels 64 --heads 4 --seq-len 64 --vocab 512
.PHONY: models
models: build/resnet18 build/gpt2

# ---- make bench-cuda: sdl against PyTorch on one GPU (MLP, CNN, ResNet-18, GPT-2 124M): BENCH
# lines with MFU against the H100 SXM dense BF16 peak. PYTHON=python3 with CUDA torch, ARCH=sm_90.
.PHONY: bench-cuda
bench-cuda:
	bash bench/bench_cuda.sh

# ---- make bench-nccl: sdl_mpi.h's GPU allreduce per message size for each transport that can
# run here (NCCL with one rank and per GPU, host staging with 2 ranks sharing a GPU, CUDA-aware
# MPI where MPI has it): BENCH lines. Without a GPU it says what it skipped and why.
.PHONY: bench-nccl
bench-nccl:
	bash bench/bench_nccl.sh

# ---- make bench-data: sdl_stream (decode + augment + batch of JPEG tar shards) against
# PyTorch's DataLoader + PIL on the same files, W = 1 and 2; BENCH lines with ratios; then
# the loader against the CPU training step of the Fashion CNN and ResNet-18 (data_vs_step)
.PHONY: bench-data
bench-data:
	@mkdir -p build
	bash bench/bench_data.sh

# ---- make tutorials: examples/tutorials/*.c into build/tutorials/ (make builds them too), linked
# against build/sdl.o: the plain ones with $(CC), the MPI ones (they include sdl_mpi.h) with
# $(MPICC); where nvcc is found (NVCC=), every one compiled as CUDA too (-c only: checks the
# GPU build). tests/test_tutorials*.c check each also compiles alone with cc, mpicc and g++.
# The expected output of each: examples/tutorials/README.md.
NVCC ?= $(shell command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
.PHONY: tutorials
tutorials: $(TUT_CPU:examples/tutorials/%.c=build/tutorials/%) $(if $(HAVE_MPICC),$(TUT_MPI:examples/tutorials/%.c=build/tutorials/%))
	@set -e; if [ -n "$(NVCC)" ]; then for src in $(TUTORIALS); do \
	    n=$$(basename $$src .c); nvflags=""; \
	    if grep -q '"sdl_mpi.h"' $$src; then nvflags="$$($(MPICC) --showme:compile)"; fi; \
	    echo "nvcc -c $$src"; $(NVCC) -std=c++17 -O2 -x cu $$nvflags -I. -c $$src -o build/tutorials/$$n.cu.o; \
	done; fi
