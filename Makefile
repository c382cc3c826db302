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
