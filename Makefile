# sdl - make test | make test-sanitize | make demo | make bench-cpu | make bench-mpi | make bench-nccl
CC ?= cc
CFLAGS ?= -O3 -march=native
LDLIBS = -lm -lpthread

.PHONY: test test-sanitize clean

test:
	CC="$(CC)" bash tests/run.sh

test-sanitize:
	SAN=1 CC="$(CC)" TEST_OPT="-O1" bash tests/run.sh

clean:
	rm -rf build

# CUDA: builds the GPU test with nvcc; on a GPU machine also runs the checks, the
# sanitizers, the suite and the benchmark (tools/gpu_check.sh prints a table)
.PHONY: cuda
cuda:
	bash tools/gpu_check.sh

# ---- bench-cpu: sdl vs OpenBLAS (sgemm) and PyTorch (training), same threads. BENCH_ARGS="--threads 1"
.PHONY: bench-cpu
bench-cpu: build/bench_cpu
	./build/bench_cpu $(BENCH_ARGS)

build/bench_cpu: bench/bench_cpu.c sdl.h
	mkdir -p build
	$(CC) $(CFLAGS) -Wall -Wextra -I. bench/bench_cpu.c -o $@ -lopenblas $(LDLIBS)

# ---- make demo: train the Fashion-MNIST CNN on the CPU and print its test accuracy.
# Needs libstb-dev (stb_image's zlib reads the .gz files) and dataset-fashion-mnist; as root
# (or with password-less sudo) they are installed with apt-get, else the target says what to
# install. FASHION_DIR=dir uses IDX files elsewhere; DEMO_FLAGS="--epochs 1" passes flags.
FASHION_DIR ?= /usr/share/datasets/fashion-mnist
STB_HEADER ?= /usr/include/stb/stb_image.h
DEMO_FLAGS ?=
.PHONY: demo
demo:
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
	@mkdir -p build
	$(CC) $(CFLAGS) -I. examples/fashion_cnn.c -o build/fashion_cnn $(LDLIBS)
	./build/fashion_cnn --data $(FASHION_DIR) $(DEMO_FLAGS)

# ---- make bench-mpi: allreduce bandwidth (ring vs MPI_Allreduce, 4 B .. 64 MiB, np 2) and
# the weak scaling of data-parallel CNN training at np 1 and 2, one thread per rank, each
# rank bound to its own core (MPIBIND; empty it for launchers without these flags). Each run
# measures its own T(1) the same way: every rank alone in turn, the others asleep.
# MPIRUN overrides the launcher. Then bench_mpar: the pipeline bubble (GPipe vs 1F1B), tensor
# parallel bytes and step time, FedAvg bytes per round and rounds to 80% (see its top comment).
MPICC ?= mpicc
MPIRUN ?= mpirun --allow-run-as-root --oversubscribe
MPIBIND ?= --bind-to core --map-by core
.PHONY: bench-mpi
bench-mpi:
	@mkdir -p build
	$(MPICC) $(CFLAGS) -I. bench/bench_mpi.c -o build/bench_mpi $(LDLIBS)
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

build/resnet18: examples/resnet18.c sdl.h
	mkdir -p build
	$(CC) $(CFLAGS) -I. examples/resnet18.c -o $@ $(LDLIBS)

build/gpt2: examples/gpt2.c sdl.h
	mkdir -p build
	$(CC) $(CFLAGS) -I. examples/gpt2.c -o $@ $(LDLIBS)

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
# PyTorch's DataLoader + PIL on the same files, W = 1 and 2; BENCH lines with ratios
.PHONY: bench-data
bench-data:
	@mkdir -p build
	bash bench/bench_data.sh

# ---- make tutorials: examples/tutorials/*.c into build/tutorials/: the plain ones with $(CC)
# and with $(MPICC) (NAME.mpicc), the MPI ones (they include sdl_mpi.h) with $(MPICC); where
# nvcc is found (NVCC=), every one compiled as CUDA too (-c only: checks the GPU build).
# The expected output of each: examples/tutorials/README.md.
NVCC ?= $(shell command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
.PHONY: tutorials
tutorials:
	mkdir -p build/tutorials
	set -e; for src in examples/tutorials/*.c; do \
	    n=$$(basename $$src .c); \
	    if grep -q '"sdl_mpi.h"' $$src; then \
	        $(MPICC) $(CFLAGS) -I. $$src -o build/tutorials/$$n $(LDLIBS); \
	        nvflags="$$($(MPICC) --showme:compile)"; \
	    else \
	        $(CC) $(CFLAGS) -I. $$src -o build/tutorials/$$n $(LDLIBS); \
	        $(MPICC) $(CFLAGS) -I. $$src -o build/tutorials/$$n.mpicc $(LDLIBS); \
	        nvflags=""; \
	    fi; \
	    if [ -n "$(NVCC)" ]; then echo "nvcc -c $$src"; $(NVCC) -std=c++17 -O2 -x cu $$nvflags -I. -c $$src -o build/tutorials/$$n.cu.o; fi; \
	done
