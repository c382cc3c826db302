# sdl - make test | make test-sanitize | make demo | make bench-cpu | make bench-mpi
CC ?= cc
CFLAGS ?= -O2 -march=native
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
