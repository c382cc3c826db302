/* test_emu.cu - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   Proves that the emulator's order checks (README: EMU_SCHEDULE, EMU_DIGEST, the race checks
   of a -DEMU_RACECHECK build) can fail: each kernel below is run by a child process (this
   program with the case's name) and the test checks how the child ended and what it said.
   Broken kernels (a missing __syncthreads, a block reading what another block writes, ...)
   must be reported; their correct versions must pass and give the same digest in order and
   shuffled. tests/run.sh builds it against the emulator with the race checks and runs it;
   it is not a GPU test (on a GPU the broken kernels just give wrong numbers). */
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#define N 256

/* a tree sum over a block in shared memory; `sync` 0 drops the __syncthreads in the loop */
static __global__ void emu_k_block_sum(const float *x, float *out, int sync) {
    __shared__ float sh[N];
    sh[threadIdx.x] = x[blockIdx.x * N + threadIdx.x];
    __syncthreads();
    for (int s = N / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        if (sync) __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}
/* y[b] = x[b - 1] + 1 (fine), or, with `chain`, x[b] = x[b - 1] + 1: each block reads what
   the block before it writes in the same launch */
static __global__ void emu_k_chain(float *x, float *y, int chain) {
    int b = (int)blockIdx.x;
    if (threadIdx.x != 0) return;
    if (chain) x[b] = b ? x[b - 1] + 1.0f : 0.0f;
    else y[b] = b ? x[b - 1] + 1.0f : 0.0f;
}
/* block b reads x[b + 1], which block b + 1 overwrites (a read before a write of another block) */
static __global__ void emu_k_shift_left(float *x) {
    if (threadIdx.x == 0 && blockIdx.x + 1 < gridDim.x) x[blockIdx.x] = x[blockIdx.x + 1];
    else if (threadIdx.x == 0) x[blockIdx.x] = 0.0f;
}
/* lanes swap values through shared memory, with a shuffle (orders nothing) or a
   __syncthreads between the write and the read */
static __global__ void emu_k_lane_swap(float *out, int barrier) {
    __shared__ float sh[64];
    sh[threadIdx.x] = (float)threadIdx.x;
    if (barrier) __syncthreads();
    else (void)__shfl_xor_sync(0xffffffffu, 0, 1);
    out[blockIdx.x * blockDim.x + threadIdx.x] = sh[threadIdx.x ^ 1];
}
/* no barrier at all: each thread reads its neighbour's slot (the fiberless path) */
static __global__ void emu_k_neighbour(float *out, int launch) {
    __shared__ float sh[N];
    sh[threadIdx.x] = (float)(threadIdx.x + 1000 * blockIdx.x + 10000 * launch);
    out[(launch * gridDim.x + blockIdx.x) * N + threadIdx.x] = sh[(threadIdx.x + 1) % N];
}
/* the warp sum of a block of `blockDim.x` threads (48: the second warp is partial) */
static __global__ void emu_k_warp_sum(float *out) {
    float v = (float)threadIdx.x;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
/* thread 0 writes x[0], thread 1 reads it (global memory, one block, no __syncthreads) */
static __global__ void emu_k_global_pair(float *x, int barrier) {
    if (threadIdx.x == 0) x[0] = 7.0f;
    if (barrier) __syncthreads();
    if (threadIdx.x == 1) x[1] = x[0];
}
/* reads shared memory no thread of the block wrote */
static __global__ void emu_k_uninit(float *out) {
    __shared__ float sh[N];
    if (threadIdx.x > 0) sh[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = sh[0];
}

/* reads a host array (a pointer that never went through cudaMalloc) */
static __global__ void emu_k_host(const float *h, float *out) { out[threadIdx.x] = h[threadIdx.x]; }

/* runs one case; its results go to the host (the digest) */
static int run_case(const char *c) {
    float *x, *y, h[8 * N];
    if (cudaMalloc((void **)&x, sizeof h) != cudaSuccess || cudaMalloc((void **)&y, sizeof h) != cudaSuccess) return 2;
    for (int i = 0; i < 8 * N; i++) h[i] = (float)((i * 37) % 101) * 0.25f;
    cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice);
    cudaMemset(y, 0, sizeof h);
    std::string s = c;
    if (s == "sum_ok" || s == "sum_nosync") emu_k_block_sum<<<8, N>>>(x, y, s == "sum_ok");
    else if (s == "chain_ok" || s == "chain") emu_k_chain<<<64, 32>>>(x, y, s == "chain");
    else if (s == "shift_left") emu_k_shift_left<<<64, 32>>>(x);
    else if (s == "swap_sync" || s == "swap_shfl") emu_k_lane_swap<<<2, 64>>>(y, s == "swap_sync");
    else if (s == "neighbour") {
        emu_k_neighbour<<<2, N>>>(y, 0); /* the first launch of 2+ blocks decides: no barrier */
        emu_k_neighbour<<<2, N>>>(y, 1); /* so this one runs without fibers */
    } else if (s == "warp_full") emu_k_warp_sum<<<2, 64>>>(y);
    else if (s == "warp_partial") emu_k_warp_sum<<<1, 48>>>(y);
    else if (s == "pair_sync" || s == "pair") emu_k_global_pair<<<1, 32>>>(y, s == "pair_sync");
    else if (s == "uninit") emu_k_uninit<<<1, N>>>(y);
    else if (s == "host_ok" || s == "host") emu_k_host<<<1, 32>>>(s == "host" ? h : x, y);
    else { fprintf(stderr, "unknown case %s\n", c); return 2; }
    if (cudaGetLastError() != cudaSuccess) return 3;
    cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
    cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(x);
    cudaFree(y);
    return 0;
}

static const char *self;
static int passed, failed;

/* runs `self c` with env (NAME=VALUE ...), returns its stderr; *aborted: killed by SIGABRT */
static std::string child(const char *c, const char *env1, const char *env2, bool *aborted) {
    char path[] = "/tmp/emu_test_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return "mkstemp failed";
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        if (env1) putenv((char *)env1);
        if (env2) putenv((char *)env2);
        putenv((char *)"EMU_DIGEST=1");
        execl(self, self, c, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    std::string out;
    char buf[4096];
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while ((k = read(fd, buf, sizeof buf)) > 0) out.append(buf, (size_t)k);
    close(fd);
    unlink(path);
    *aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    if (!*aborted && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) out += "[exit status " + std::to_string(st) + "]";
    return out;
}
static void check(bool ok, const char *what, const std::string &log) {
    if (ok) { passed++; printf("ok   %s\n", what); }
    else { failed++; printf("FAIL %s\n%s\n", what, log.c_str()); }
}
static std::string digest(const std::string &log) {
    size_t p = log.find("emu: digest ");
    return p == std::string::npos ? "none" : log.substr(p, log.find('\n', p) - p);
}
/* the case must pass, in order and shuffled, with the same digest */
static void expect_clean(const char *c) {
    bool a1, a2;
    std::string in = child(c, NULL, NULL, &a1), sh = child(c, "EMU_SCHEDULE=shuffle", "EMU_SEED=7", &a2);
    check(!a1 && !a2 && in.find("emu: ") == in.find("emu: digest") && digest(in) != "none" && digest(in) == digest(sh),
          (std::string(c) + ": passes, the same digest in order and shuffled").c_str(), in + sh);
}
/* the case must abort with a message containing `msg` (the race checks) */
static void expect_abort(const char *c, const char *msg) {
    bool a;
    std::string log = child(c, "EMU_SCHEDULE=shuffle", NULL, &a);
    check(a && log.find(msg) != std::string::npos, (std::string(c) + ": reported (" + msg + ")").c_str(), log);
}
/* with the race checks off, the schedule alone must change the case's result */
static void expect_order_dependent(const char *c) {
    bool a1, a2;
    std::string in = child(c, "EMU_RACECHECK=0", NULL, &a1), sh = child(c, "EMU_RACECHECK=0", "EMU_SCHEDULE=shuffle", &a2);
    check(!a1 && !a2 && digest(in) != "none" && digest(sh) != "none" && digest(in) != digest(sh),
          (std::string(c) + ": without the race checks, shuffled gives other bits").c_str(), in + sh);
}

int main(int argc, char **argv) {
    if (argc > 1) return run_case(argv[1]);
    self = "/proc/self/exe";
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) { exe[n] = 0; self = exe; }
    expect_clean("sum_ok");
    expect_clean("chain_ok");
    expect_clean("swap_sync");
    expect_clean("warp_full");
    expect_clean("pair_sync");
    expect_clean("host_ok");
    expect_order_dependent("chain");
    expect_order_dependent("sum_nosync");
    expect_order_dependent("neighbour");
#ifdef EMU_RACECHECK
    expect_abort("sum_nosync", "shared-memory race in emu_k_block_sum");
    expect_abort("chain", "race between blocks in emu_k_chain");
    expect_abort("shift_left", "race between blocks in emu_k_shift_left");
    expect_abort("swap_shfl", "shared-memory race in emu_k_lane_swap");
    expect_abort("neighbour", "emu_k_neighbour"); /* a race, or a read of a slot not yet written */
    expect_abort("pair", "device-memory race in emu_k_global_pair");
    expect_abort("uninit", "which no thread of its block wrote");
    expect_abort("host", "read host memory");
#else
    printf("(built without -DEMU_RACECHECK: the race checks are not tested)\n");
#endif
    expect_abort("warp_partial", "block size not a multiple of 32");
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
