/* cuda_runtime.h - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   A CPU stand-in for the few CUDA runtime pieces sdl_cuda.h uses, so its GPU test builds with
   g++ and runs where there is no GPU (see tools/cuda_emu/README for what it does not see).
   - kernels (after convert.py) run in emu_launch: one block at a time, each thread a fiber
     (ucontext stack, then _setjmp/_longjmp); __syncthreads and __shfl_xor_sync are barriers,
     a barrier some threads never reach is reported as a deadlock (abort)
   - launch limits are checked as a GPU does (block <= 1024 threads, z <= 64, grid y, z <=
     65535); a bad launch sets the error cudaGetLastError returns
   - device memory is mmap'd pages filled with garbage and kept PROT_NONE while host code runs,
     so a host read or write of device memory faults; copies, memsets, kernels and GEMMs open
     them. Copies check that their pointers are on the side their cudaMemcpyKind says
   - streams and events are synchronous: every call has finished when it returns
   Environment: EMU_NO_GPU=1 makes cudaGetDeviceCount report 0 devices; EMU_NO_PROTECT=1
   leaves device memory readable from the host; EMU_DRY=1 checks and counts without running
   (the last block of this file). */
#pragma once
#include <ucontext.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <functional>
#include <vector>
#include <map>
#include <string>
#include <algorithm>

/* >>emu-race: schedule perturbation, race checks and the result digest, defined at the end */
static void emu_digest_add(const void *p, size_t n);
static void emu_sched_launch(uint64_t nblocks);
static uint64_t emu_sched_block(uint64_t k);
static void emu_sched_pass(unsigned nt);
static unsigned emu_sched_thread(unsigned j);
static void emu_race_launch(bool begin);
static void emu_race_block(uint64_t linear_block);
static void emu_race_barrier(void);
static void emu_shfl_check(unsigned mask, int lane, int o);
#define EMU_SHARED_NAME(a) /* convert.py writes one after each __shared__ array; see the end */

struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9 };
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp { char name[256]; int major, minor; };
#define __host__
#ifdef EMU_RACECHECK /* >>emu-race: the race checks (end of file) need the static __shared__ arrays in one
                        section and every kernel and device function kept out of line */
#define __global__ __attribute__((noinline))
#define __device__ __attribute__((noinline))
#define __shared__ static __attribute__((section("emu_shared")))
#else
#define __global__
#define __device__
#define __shared__ static
#endif

static cudaError_t emu_err = cudaSuccess;
static long emu_launches;
/* dry run (EMU_DRY=1): the block at the end of this file */
static bool emu_dry(void);
static void emu_dry_mem(long long delta);
static void emu_dry_launch(const char *name, dim3 g, dim3 b);
static bool emu_dry_d2h(void *d, size_t n);
template <typename... P> static inline void emu_args_check(P... p);
static inline void emu_args_report(const char *name);
static inline const char *cudaGetErrorName(cudaError_t e) {
    return e == cudaSuccess ? "cudaSuccess" : e == cudaErrorInvalidValue ? "cudaErrorInvalidValue"
         : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaErrorInvalidConfiguration";
}
static inline const char *cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
static inline cudaError_t cudaGetLastError(void) { cudaError_t e = emu_err; emu_err = cudaSuccess; return e; }
static inline int emu_devices(void) { const char *e = getenv("EMU_DEVICES"); return getenv("EMU_NO_GPU") ? 0 : e && atoi(e) > 0 ? atoi(e) : 1; }
static inline cudaError_t cudaGetDeviceCount(int *n) { *n = emu_devices(); return cudaSuccess; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) { strcpy(p->name, "CPU emulation"); p->major = 9; p->minor = 0; return cudaSuccess; }
/* device memory: mmap'd pages, PROT_NONE while host code runs (a host read of device data
   faults), opened for kernels, copies and GEMMs */
struct emu_region { void *p; size_t n; };
static std::vector<emu_region> emu_regions;
static int emu_open_depth;
static inline void emu_protect(int prot) { for (auto &r : emu_regions) mprotect(r.p, r.n, prot); }
static inline void emu_open() { if (emu_open_depth++ == 0) emu_protect(PROT_READ | PROT_WRITE); }
static inline void emu_close() { if (--emu_open_depth == 0 && !getenv("EMU_NO_PROTECT")) emu_protect(PROT_NONE); }
/* len bytes of pages; from 2 MiB on aligned to 2 MiB and asking for transparent huge pages,
   so that opening and closing the region changes one page-table entry per 2 MiB, not 512 */
static inline void *emu_map(size_t len) {
    const size_t huge = (size_t)2 << 20;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (emu_dry() ? MAP_NORESERVE : 0);
    bool big = len >= huge && !emu_dry();
    char *q = (char *)mmap(NULL, big ? len + huge : len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (q == (char *)MAP_FAILED) return NULL;
    if (!big) return q;
    char *a = (char *)(((uintptr_t)q + huge - 1) & ~(uintptr_t)(huge - 1));
    if (a > q) munmap(q, (size_t)(a - q));
    munmap(a + len, (size_t)(q + huge - a));
    madvise(a, len, MADV_HUGEPAGE);
    return a;
}
static inline cudaError_t cudaMalloc(void **p, size_t n) {
    if (n > ((size_t)1 << 40)) { *p = NULL; return cudaErrorMemoryAllocation; }
    size_t len = (n + 4095) & ~(size_t)4095;
    void *q = emu_map(len ? len : 4096);
    if (!q) { *p = NULL; return cudaErrorMemoryAllocation; }
    if (!emu_dry()) memset(q, 0xA5, n); /* garbage, as cudaMalloc's (a dry run leaves the pages untouched) */
    emu_regions.push_back({q, len ? len : 4096});
    emu_dry_mem((long long)(len ? len : 4096));
    if (emu_open_depth == 0 && !getenv("EMU_NO_PROTECT")) mprotect(q, len ? len : 4096, PROT_NONE);
    *p = q;
    return cudaSuccess;
}
static inline cudaError_t cudaFree(void *p) {
    for (size_t i = 0; i < emu_regions.size(); i++)
        if (emu_regions[i].p == p) { emu_dry_mem(-(long long)emu_regions[i].n); munmap(p, emu_regions[i].n); emu_regions.erase(emu_regions.begin() + (long)i); return cudaSuccess; }
    return p ? cudaErrorInvalidValue : cudaSuccess;
}
/* true if [p, p + n) lies in one cudaMalloc'd region */
static inline bool emu_on_device(const void *p, size_t n) {
    for (auto &r : emu_regions)
        if ((const char *)p >= (const char *)r.p && (const char *)p + n <= (const char *)r.p + r.n) return true;
    return false;
}
static inline cudaError_t emu_copy(void *d, const void *s, size_t n, cudaMemcpyKind k) {
    if (n == 0) return cudaSuccess;
    bool dd = emu_on_device(d, n), sd = emu_on_device(s, n);
    if (dd != (k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice) ||
        sd != (k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice)) {
        fprintf(stderr, "emu: cudaMemcpy kind %d but destination %s, source %s (%zu bytes)\n", (int)k,
                dd ? "on the device" : "on the host", sd ? "on the device" : "on the host", n);
        return cudaErrorInvalidValue;
    }
    if (emu_dry() && k == cudaMemcpyDeviceToDevice) return cudaSuccess; /* a dry run copies host data only */
    if (k == cudaMemcpyDeviceToHost && emu_dry_d2h(d, n)) return cudaSuccess; /* EMU_DRY=nan */
    emu_open(); memmove(d, s, n); emu_close();
    if (k == cudaMemcpyDeviceToHost) emu_digest_add(d, n); /* >>emu-race */
    return cudaSuccess;
}
static inline cudaError_t emu_set(void *p, int v, size_t n) {
    if (n == 0) return cudaSuccess;
    if (!emu_on_device(p, n)) { fprintf(stderr, "emu: cudaMemset of %zu bytes outside device memory\n", n); return cudaErrorInvalidValue; }
    if (emu_dry()) return cudaSuccess;
    emu_open(); memset(p, v, n); emu_close();
    return cudaSuccess;
}
static inline cudaError_t cudaMallocHost(void **p, size_t n) { *p = malloc(n); return cudaSuccess; }
static inline cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
static inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { return emu_set(p, v, n); }
static inline cudaError_t cudaMemset(void *p, int v, size_t n) { return emu_set(p, v, n); }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) { return emu_copy(d, s, n, k); }
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) { return emu_copy(d, s, n, k); }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
static inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (void *)1; return cudaSuccess; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
/* no GPU timing: every interval reads 0.1 ms */
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0.1f; return cudaSuccess; }

/* ---- kernels: a block's threads are fibers, barriers switch between them ------------------ */
struct emu_bar { int count, gen, size; };
static dim3 emu_tid, emu_bid, emu_bdim, emu_gdim;
#define threadIdx emu_tid
#define blockIdx emu_bid
#define blockDim emu_bdim
#define gridDim emu_gdim
static ucontext_t emu_main;
static std::vector<ucontext_t> emu_ctx;
static std::vector<char *> emu_stack;
static std::vector<dim3> emu_tids;
static std::vector<int> emu_done;
static int emu_cur, emu_n;
static long emu_progress;
static emu_bar emu_block_bar, emu_warp_bar[32];
static uint64_t emu_slot[1024];
static std::function<void()> *emu_body;
#define EMU_STACK (256 << 10)

static jmp_buf emu_main_jb;
struct emu_jmp { jmp_buf b; };
static std::vector<emu_jmp> emu_jb;
static std::vector<int> emu_started;
/* first entry by swapcontext, then plain _setjmp/_longjmp (no signal-mask syscalls) */
static inline void emu_yield() { if (!_setjmp(emu_jb[emu_cur].b)) _longjmp(emu_main_jb, 1); }
static int emu_direct, emu_hit;
static const char *emu_name;
static inline void emu_wait(emu_bar &b) {
    emu_hit = 1;
    if (emu_direct) { fprintf(stderr, "emu: a barrier in %s, run without fibers\n", emu_name); abort(); }
    int g = b.gen;
    if (++b.count == b.size) { b.count = 0; b.gen++; emu_progress++; if (&b == &emu_block_bar) emu_race_barrier(); }
    else while (b.gen == g) emu_yield();
}
static inline int emu_linear() { return (int)(emu_tid.x + emu_tid.y * emu_bdim.x + emu_tid.z * emu_bdim.x * emu_bdim.y); }
static inline void __syncthreads() { emu_wait(emu_block_bar); }
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int o) {
    int lin = emu_linear(), w = lin / 32;
    static_assert(sizeof(T) <= 8, "shfl");
    emu_shfl_check(mask, lin, o); /* >>emu-race */
    memcpy(&emu_slot[lin], &v, sizeof v);
    emu_wait(emu_warp_bar[w]);
    T r;
    memcpy(&r, &emu_slot[lin ^ o], sizeof r);
    emu_wait(emu_warp_bar[w]);
    return r;
}
static void emu_entry() {
    (*emu_body)();
    emu_done[emu_cur] = 1;
    emu_progress++;
    _longjmp(emu_main_jb, 2);
}
/* kernel<<<g, b, shmem, stream>>>(args), as convert.py writes it: f runs the kernel body for
   the thread in threadIdx/blockIdx. Kernels seen to reach no barrier (in a launch of 2 or more
   blocks) run later launches thread after thread without fibers; if one then reaches a
   barrier the emulator aborts with a message rather than guess. */
template <typename F> static void emu_launch(dim3 g, dim3 b, size_t shmem, const char *name, F f) {
    emu_launches++;
    emu_name = name;
    if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || b.x * b.y * b.z > 1024 ||
        g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
        fprintf(stderr, "emu: bad launch configuration for %s: grid (%u %u %u) block (%u %u %u)\n", name, g.x, g.y, g.z, b.x, b.y, b.z);
        emu_err = cudaErrorInvalidConfiguration;
        return;
    }
    if (shmem) { fprintf(stderr, "emu: %s asks for %zu bytes of dynamic shared memory: not emulated\n", name, shmem); abort(); }
    if (emu_dry()) { emu_dry_launch(name, g, b); return; } /* checked, not run */
    unsigned nt = b.x * b.y * b.z;
    std::function<void()> body = f;
    struct guard { guard() { emu_open(); } ~guard() { emu_close(); } } open_while_running;
    emu_body = &body;
    emu_gdim = g;
    emu_bdim = b;
    emu_n = (int)nt;
    if (emu_jb.size() < nt) emu_jb.resize(nt);
    emu_started.assign(nt, 0);
    if (emu_ctx.size() < nt) {
        emu_ctx.resize(nt);
        while (emu_stack.size() < nt) emu_stack.push_back((char *)malloc(EMU_STACK));
    }
    emu_tids.resize(nt);
    emu_done.assign(nt, 0);
    static std::map<std::string, int> fiberless; /* kernels seen to use no barrier */
    /* >>emu-race: blocks and threads in the order emu_sched_* give (EMU_SCHEDULE) */
    uint64_t nblocks = (uint64_t)g.x * g.y * g.z;
    struct race_scope { race_scope() { emu_race_launch(true); } ~race_scope() { emu_race_launch(false); } } race_checks;
    emu_sched_launch(nblocks);
    if (fiberless[name] > 0) {
        emu_direct = 1;
        for (uint64_t k = 0; k < nblocks; k++) {
            uint64_t lb = emu_sched_block(k);
            emu_bid = dim3((unsigned)(lb % g.x), (unsigned)(lb / g.x % g.y), (unsigned)(lb / ((uint64_t)g.x * g.y)));
            emu_race_block(lb);
            emu_sched_pass(nt);
            for (unsigned j = 0; j < nt; j++) { unsigned i = emu_sched_thread(j); emu_tid = dim3(i % b.x, (i / b.x) % b.y, i / (b.x * b.y)); body(); }
        }
        emu_direct = 0;
        return;
    }
    emu_hit = 0;
    for (volatile uint64_t k = 0; k < nblocks; k++) {
                uint64_t lb = emu_sched_block(k);
                unsigned bx = (unsigned)(lb % g.x);
                emu_bid = dim3(bx, (unsigned)(lb / g.x % g.y), (unsigned)(lb / ((uint64_t)g.x * g.y)));
                emu_race_block(lb);
                emu_block_bar.count = 0; emu_block_bar.size = (int)nt;
                for (int w = 0; w < 32; w++) { emu_warp_bar[w].count = 0; emu_warp_bar[w].size = 0; }
                for (unsigned i = 0; i < nt; i++) {
                    emu_tids[i] = dim3(i % b.x, (i / b.x) % b.y, i / (b.x * b.y));
                    emu_warp_bar[i / 32].size++;
                    emu_done[i] = 0;
                    emu_started[i] = 0;
                    getcontext(&emu_ctx[i]);
                    emu_ctx[i].uc_stack.ss_sp = emu_stack[i];
                    emu_ctx[i].uc_stack.ss_size = EMU_STACK;
                    emu_ctx[i].uc_link = &emu_main;
                    makecontext(&emu_ctx[i], emu_entry, 0);
                }
                volatile int live = (int)nt;
                while (live > 0) {
                    long before = emu_progress;
                    emu_sched_pass(nt);
                    for (volatile unsigned j = 0; j < nt; j++) {
                        unsigned i = emu_sched_thread(j);
                        if (emu_done[i]) continue;
                        emu_cur = (int)i;
                        emu_tid = emu_tids[i];
                        if (!_setjmp(emu_main_jb)) {
                            if (!emu_started[i]) { emu_started[i] = 1; swapcontext(&emu_main, &emu_ctx[i]); }
                            else _longjmp(emu_jb[i].b, 1);
                        }
                        if (emu_done[i]) live--;
                    }
                    if (live > 0 && emu_progress == before) {
                        fprintf(stderr, "emu: deadlock in %s (block %u: %d threads stuck at a barrier)\n", name, bx, live);
                        abort();
                    }
                }
            }
    if (emu_hit) fiberless[name] = -1;
    else if (g.x * g.y * g.z >= 2 && fiberless[name] == 0) fiberless[name] = 1;
}

/* ---- CUDA graphs: stream capture and replay (for sdl_cuda.h's >>cuda-graph) -----------------
   cudaStreamBeginCapture puts the stream in capture mode: from then on kernel launches,
   cudaMemcpyAsync, cudaMemsetAsync (and cuBLAS GEMMs, see cublas_v2.h) are checked as usual
   but recorded as closures, not run. A kernel's arguments are taken at the launch (convert.py's
   lambdas copy them), a copy's source is read when it runs, as on a GPU. cudaGraphLaunch runs
   the closures in order. While a capture is on, the calls a GPU refuses in the default
   cudaStreamCaptureModeGlobal (cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost, the
   synchronous cudaMemcpy/cudaMemset, stream, device and event synchronisation) return
   cudaErrorStreamCaptureUnsupported and invalidate the capture: cudaStreamEndCapture then
   returns cudaErrorStreamCaptureInvalidated and no graph. One capture at a time. The calls
   are redirected with macros, so the functions above stay as they were. */
enum { cudaErrorStreamCaptureUnsupported = 900, cudaErrorStreamCaptureInvalidated = 901 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
struct emu_graph { std::vector<std::function<void()>> ops; };
typedef emu_graph *cudaGraph_t;
typedef emu_graph *cudaGraphExec_t;
static emu_graph *emu_rec; /* the graph being captured, or NULL */
static cudaStream_t emu_rec_stream;
static bool emu_rec_invalid;
static long emu_graph_launches;
static inline const char *emu_graph_error_name(cudaError_t e) {
    return e == cudaErrorStreamCaptureUnsupported ? "cudaErrorStreamCaptureUnsupported"
         : e == cudaErrorStreamCaptureInvalidated ? "cudaErrorStreamCaptureInvalidated" : cudaGetErrorName(e);
}
/* a call a GPU refuses during a capture: true (the caller returns the error), and the
   capture is invalidated */
static inline bool emu_refused(void) {
    if (!emu_rec) return false;
    emu_rec_invalid = true;
    return true;
}
static inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
    if (emu_rec) return cudaErrorInvalidValue; /* already capturing */
    emu_rec = new emu_graph;
    emu_rec_stream = s;
    emu_rec_invalid = false;
    return cudaSuccess;
}
static inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    *g = NULL;
    if (!emu_rec || s != emu_rec_stream) return cudaErrorInvalidValue; /* cudaErrorIllegalState on a GPU */
    emu_graph *r = emu_rec;
    emu_rec = NULL;
    if (emu_rec_invalid) { delete r; return cudaErrorStreamCaptureInvalidated; }
    *g = r;
    return cudaSuccess;
}
static inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st) {
    *st = emu_rec && s == emu_rec_stream ? (emu_rec_invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                                         : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
static inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long = 0) {
    if (!g) return cudaErrorInvalidValue;
    *e = new emu_graph(*g); /* a copy: the graph may be destroyed after */
    return cudaSuccess;
}
static inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    if (!e) return cudaErrorInvalidValue;
    if (emu_rec) return cudaErrorStreamCaptureUnsupported; /* a child graph node on a GPU; not emulated */
    emu_graph_launches++;
    for (auto &op : e->ops) op();
    return cudaSuccess;
}
static inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete e; return cudaSuccess; }
static inline cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
/* emu_args(kernel)(args) converts the arguments to the kernel's parameter types and copies
   them into the closure it returns: convert.py writes every launch so, and a recorded launch
   then runs with the values of its launch, as on a GPU (a lambda reading n->x at the replay
   would see whatever the host arena holds by then) */
template <typename... P> struct emu_binder {
    void (*k)(P...);
    std::function<void()> operator()(P... p) const {
        emu_args_check(p...); /* pointers must be device memory (the dry-run block) */
        void (*kk)(P...) = k;
        return [=] { kk(p...); };
    }
};
template <typename... P> static emu_binder<P...> emu_args(void (*k)(P...)) { return emu_binder<P...>{k}; }
/* the recorded calls: checked now, run at each launch */
template <typename F> static void emu_cap_launch(dim3 g, dim3 b, size_t shmem, const char *name, F f) {
    emu_args_report(name);
    bool bad = b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || b.x * b.y * b.z > 1024 ||
               g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535;
    if (!emu_rec || bad) { emu_launch(g, b, shmem, name, f); return; } /* a bad one reports now */
    emu_rec->ops.push_back([=] { emu_launch(g, b, shmem, name, f); });
}
static inline cudaError_t emu_cap_memset_async(void *p, int v, size_t n, cudaStream_t s) {
    if (!emu_rec) return cudaMemsetAsync(p, v, n, s);
    if (n && !emu_on_device(p, n)) { fprintf(stderr, "emu: cudaMemset of %zu bytes outside device memory\n", n); return cudaErrorInvalidValue; }
    emu_rec->ops.push_back([=] { emu_set(p, v, n); });
    return cudaSuccess;
}
static inline cudaError_t emu_cap_memcpy_async(void *d, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s) {
    if (!emu_rec) return cudaMemcpyAsync(d, src, n, k, s);
    bool dd = emu_on_device(d, n), sd = emu_on_device(src, n);
    if (n && (dd != (k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice) ||
              sd != (k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice))) {
        fprintf(stderr, "emu: captured cudaMemcpyAsync kind %d with the wrong sides (%zu bytes)\n", (int)k, n);
        return cudaErrorInvalidValue;
    }
    emu_rec->ops.push_back([=] { emu_copy(d, src, n, k); });
    return cudaSuccess;
}
static inline cudaError_t emu_cap_malloc(void **p, size_t n) { if (emu_refused()) { *p = NULL; return cudaErrorStreamCaptureUnsupported; } return cudaMalloc(p, n); }
static inline cudaError_t emu_cap_free(void *p) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaFree(p); }
static inline cudaError_t emu_cap_malloc_host(void **p, size_t n) { if (emu_refused()) { *p = NULL; return cudaErrorStreamCaptureUnsupported; } return cudaMallocHost(p, n); }
static inline cudaError_t emu_cap_free_host(void *p) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaFreeHost(p); }
static inline cudaError_t emu_cap_memcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaMemcpy(d, s, n, k); }
static inline cudaError_t emu_cap_memset(void *p, int v, size_t n) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaMemset(p, v, n); }
static inline cudaError_t emu_cap_stream_sync(cudaStream_t s) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaStreamSynchronize(s); }
static inline cudaError_t emu_cap_device_sync(void) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaDeviceSynchronize(); }
static inline cudaError_t emu_cap_event_sync(cudaEvent_t e) { return emu_refused() ? cudaErrorStreamCaptureUnsupported : cudaEventSynchronize(e); }
#define cudaGetErrorName emu_graph_error_name
#define cudaGetErrorString emu_graph_error_name
#define emu_launch emu_cap_launch
#define cudaMemsetAsync emu_cap_memset_async
#define cudaMemcpyAsync emu_cap_memcpy_async
#define cudaMalloc emu_cap_malloc
#define cudaFree emu_cap_free
#define cudaMallocHost emu_cap_malloc_host
#define cudaFreeHost emu_cap_free_host
#define cudaMemcpy emu_cap_memcpy
#define cudaMemset emu_cap_memset
#define cudaStreamSynchronize emu_cap_stream_sync
#define cudaDeviceSynchronize emu_cap_device_sync
#define cudaEventSynchronize emu_cap_event_sync

/* ---- for sdl_mpi.h's GPU path (tools/cuda_emu/README: "What it emulates") ----------------
   devices: EMU_DEVICES=n makes cudaGetDeviceCount report n (default 1); cudaSetDevice checks
   the number and remembers it (one memory for all: each process is one "GPU"); device d's
   PCI bus id is 0000:<d+1>:00.0.
   cudaEventQuery finds the work done every other call; cudaStreamWaitEvent orders nothing
   (every call is synchronous already). */
#define CUDA_EMU 1
enum { cudaErrorInvalidDevice = 101, cudaErrorNotReady = 600 };
#define cudaEventDisableTiming 2
static int emu_device;
static inline cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= emu_devices()) { emu_err = cudaErrorInvalidDevice; return cudaErrorInvalidDevice; }
    emu_device = d;
    return cudaSuccess;
}
static inline cudaError_t cudaGetDevice(int *d) { *d = emu_device; return cudaSuccess; }
static inline cudaError_t cudaDeviceGetPCIBusId(char *id, int len, int d) {
    if (d < 0 || d >= emu_devices()) return cudaErrorInvalidDevice;
    snprintf(id, (size_t)len, "0000:%02x:00.0", d + 1);
    return cudaSuccess;
}
static inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (void *)1; return cudaSuccess; }
/* every other query says "not ready" and, as CUDA does, leaves that as the last error: code
   that polls must pop it (else the next launch check reports cudaErrorNotReady) */
static long emu_queries;
static inline cudaError_t cudaEventQuery(cudaEvent_t) {
    if (emu_queries++ % 2 == 0) return cudaSuccess;
    emu_err = cudaErrorNotReady;
    return cudaErrorNotReady;
}
static inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
/* ---- integer intrinsics: __ffs (the 1-based index of the lowest set bit, 0 for none) ---- */
static inline int __ffs(int x) { return __builtin_ffs(x); }

/* ---- >>emu-race: schedule perturbation, race checks, a digest of the results ----------------
   A GPU runs the blocks of a launch in any order and at once, and the threads of a block in
   warps that interleave freely; here blocks run one after another and fibers switch only at
   barriers. So a kernel whose result depends on that order passes here and fails on a GPU.
   - EMU_SCHEDULE=shuffle (EMU_SEED=n, default 1): each launch runs its blocks in a
     pseudo-random order and, at every barrier phase, resumes the block's threads in a fresh
     pseudo-random order (kernels run without fibers: each block's threads in a random order).
     The order depends on the seed and the launch's number only, so a run can be repeated.
   - EMU_DIGEST=1: at exit, prints "emu: digest <hex> (<n> bytes copied to the host)", a hash
     of every device-to-host copy. sdl_cuda.h has no atomics: its results must have the same
     bits under any schedule, so two runs (in order, shuffled) must print the same digest.
   - built with -DEMU_RACECHECK and clang's -fsanitize-coverage=inline-bool-flag,trace-loads,
     trace-stores (allowlist: the __global__ and __device__ functions, which convert.py's third
     argument lists), every load and store of a kernel calls emu_race_access, which keeps per
     byte the last writer and reader (thread, barrier epoch) and aborts on
       shared memory (static __shared__ arrays): a thread reading or writing what another thread
         of its block wrote, or writing what another read, with no __syncthreads between;
       device memory: the same inside a block, and any element one block wrote and another
         block of the same launch read or wrote (or read and another wrote);
       a read of a __shared__ element no thread of the block wrote (uninitialised).
     __shfl_xor_sync orders no memory (as on a GPU, where only __syncwarp or __syncthreads
     does): shared-memory traffic between lanes still needs a __syncthreads. EMU_RACECHECK=0
     in the environment turns the checks off in such a build.
   - __shfl_xor_sync with a full mask in a warp of fewer than 32 threads (a block size that is
     not a multiple of 32), or with a lane or its partner outside the mask, aborts: undefined
     on a GPU.
   - EMU_KERNELS=1: at exit, each kernel's launches and the most blocks of one launch. */
static int emu_sched_mode = -1; /* 0 in order, 1 shuffle */
static uint64_t emu_sched_seed, emu_sched_rng;
static std::vector<uint32_t> emu_sched_bperm, emu_sched_tperm;
static inline uint64_t emu_splitmix(uint64_t &s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline bool emu_shuffling(void) {
    if (emu_sched_mode < 0) {
        const char *m = getenv("EMU_SCHEDULE"), *seed = getenv("EMU_SEED");
        if (m && *m && strcmp(m, "shuffle") != 0 && strcmp(m, "inorder") != 0) {
            fprintf(stderr, "emu: EMU_SCHEDULE=%s: expected shuffle or inorder\n", m);
            abort();
        }
        emu_sched_mode = m && strcmp(m, "shuffle") == 0;
        emu_sched_seed = seed ? strtoull(seed, NULL, 10) : 1;
    }
    return emu_sched_mode == 1;
}
static void emu_permute(std::vector<uint32_t> &v, uint64_t n) {
    v.resize(n);
    for (uint64_t i = 0; i < n; i++) v[i] = (uint32_t)i;
    for (uint64_t i = n; i > 1; i--) std::swap(v[i - 1], v[emu_splitmix(emu_sched_rng) % i]);
}
/* EMU_KERNELS=1: at exit, each kernel's launches and most blocks in one launch (a kernel
   never launched with 2 or more blocks had no block order to get wrong in this run) */
struct emu_kernel_stats {
    std::map<std::string, std::pair<long, uint64_t>> k;
    ~emu_kernel_stats() {
        for (auto &e : k) fprintf(stderr, "emu: kernel %s: %ld launches, at most %llu blocks\n", e.first.c_str(), e.second.first, (unsigned long long)e.second.second);
    }
};
static void emu_sched_launch(uint64_t nblocks) {
    static int stats_on = getenv("EMU_KERNELS") && atoi(getenv("EMU_KERNELS")) > 0;
    if (stats_on) {
        static emu_kernel_stats stats;
        auto &e = stats.k[emu_name];
        e.first++;
        if (nblocks > e.second) e.second = nblocks;
    }
    if (!emu_shuffling()) return;
    emu_sched_rng = emu_sched_seed * 0x100000001B3ull + (uint64_t)emu_launches;
    if (nblocks > ((uint64_t)1 << 26)) { fprintf(stderr, "emu: %llu blocks: too many to shuffle\n", (unsigned long long)nblocks); abort(); }
    emu_permute(emu_sched_bperm, nblocks);
}
static uint64_t emu_sched_block(uint64_t k) { return emu_sched_mode == 1 ? emu_sched_bperm[k] : k; }
static void emu_sched_pass(unsigned nt) { if (emu_sched_mode == 1) emu_permute(emu_sched_tperm, nt); }
static unsigned emu_sched_thread(unsigned j) { return emu_sched_mode == 1 ? emu_sched_tperm[j] : j; }

static void emu_shfl_check(unsigned mask, int lane, int o) {
    int w = lane / 32;
    if (mask == 0xffffffffu && emu_warp_bar[w].size != 32) {
        fprintf(stderr, "emu: __shfl_xor_sync with a full mask in %s, but warp %d of its block has %d threads "
                "(block size not a multiple of 32): undefined on a GPU\n", emu_name, w, emu_warp_bar[w].size);
        abort();
    }
    if (!(mask >> (lane % 32) & 1) || !(mask >> ((lane ^ o) % 32) & 1) || (lane ^ o) / 32 != w) {
        fprintf(stderr, "emu: __shfl_xor_sync in %s: lane %d or its partner %d not in the mask %08x\n", emu_name, lane % 32, (lane ^ o) % 32, mask);
        abort();
    }
}

/* the digest: FNV-1a over 8-byte words of every device-to-host copy */
static int emu_digest_on = -1;
static uint64_t emu_digest_h = 1469598103934665603ull, emu_digest_n;
static void emu_digest_add(const void *p, size_t n) {
    if (emu_digest_on < 0) emu_digest_on = getenv("EMU_DIGEST") && atoi(getenv("EMU_DIGEST")) > 0;
    if (!emu_digest_on) return;
    const unsigned char *c = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t w; memcpy(&w, c + i, 8); emu_digest_h = (emu_digest_h ^ w) * 0x100000001B3ull; }
    for (; i < n; i++) emu_digest_h = (emu_digest_h ^ c[i]) * 0x100000001B3ull;
    emu_digest_n += n;
}
struct emu_digest_report {
    ~emu_digest_report() {
        if (emu_digest_on > 0 || (emu_digest_on < 0 && getenv("EMU_DIGEST") && atoi(getenv("EMU_DIGEST")) > 0))
            fprintf(stderr, "emu: digest %016llx (%llu bytes copied to the host)\n", (unsigned long long)emu_digest_h, (unsigned long long)emu_digest_n);
    }
};
static emu_digest_report emu_digest_at_exit;

/* barrier epochs: one number for each block's start and each __syncthreads, counted over
   the whole run, so a stamp older than the launch's first epoch is from an earlier launch */
static uint64_t emu_ep = 1, emu_launch_ep0, emu_block_ep0;
static int emu_in_kernel;
static std::vector<std::pair<uint64_t, uint64_t>> emu_block_eps; /* (first epoch, block) of this launch */
static void emu_race_barrier(void) { emu_ep++; }

#ifndef EMU_RACECHECK
static void emu_race_launch(bool) {}
static void emu_race_block(uint64_t) { emu_ep++; }
#else
#undef EMU_SHARED_NAME
#define EMU_SHARED_NAME(a) static const int emu_shared_name_##a = emu_shared_name(a, #a);
extern "C" char __start_emu_shared[] __attribute__((weak)), __stop_emu_shared[] __attribute__((weak));
#include <type_traits>
struct emu_shared_info { uintptr_t p; size_t size, row, elem; std::string name; };
static std::vector<emu_shared_info> emu_shared_names;
/* row: the size of a[0] (a row of a 2-d array, else one element) */
template <typename A> static int emu_shared_name(A &a, const char *name) {
    emu_shared_names.push_back({(uintptr_t)&a, sizeof a, sizeof a[0], sizeof(typename std::remove_all_extents<A>::type), name});
    return 0;
}
struct emu_race_region { uintptr_t lo, hi; uint64_t *shadow; }; /* shadow: 2 stamps per byte */
static std::vector<emu_race_region> emu_race_regions;           /* device memory, sorted */
static std::map<uintptr_t, std::pair<size_t, uint64_t *>> emu_race_shadows;
static std::vector<uint64_t> emu_race_shared;
static struct { uintptr_t page; long region; } emu_race_cache[64];
static int emu_race_on = -1;
static void emu_race_launch(bool begin) {
    if (emu_race_on < 0) emu_race_on = !(getenv("EMU_RACECHECK") && strcmp(getenv("EMU_RACECHECK"), "0") == 0);
    emu_in_kernel = begin && emu_race_on;
    if (!emu_in_kernel) return;
    emu_launch_ep0 = ++emu_ep;
    emu_block_eps.clear();
    emu_race_regions.clear();
    for (auto &r : emu_regions) emu_race_regions.push_back({(uintptr_t)r.p, (uintptr_t)r.p + r.n, NULL});
    std::sort(emu_race_regions.begin(), emu_race_regions.end(), [](const emu_race_region &a, const emu_race_region &b) { return a.lo < b.lo; });
    for (auto &c : emu_race_cache) c.page = 0;
    size_t sh = (size_t)(__stop_emu_shared - __start_emu_shared);
    if (emu_race_shared.size() < 2 * sh) emu_race_shared.assign(2 * sh, 0);
}
static void emu_race_block(uint64_t lb) {
    emu_block_ep0 = ++emu_ep;
    if (emu_in_kernel) emu_block_eps.push_back({emu_block_ep0, lb});
}
static std::string emu_race_thread(unsigned t) {
    char b[96];
    snprintf(b, sizeof b, "thread %u (%u,%u,%u)", t, t % emu_bdim.x, t / emu_bdim.x % emu_bdim.y, t / (emu_bdim.x * emu_bdim.y));
    return b;
}
static std::string emu_race_block_name(uint64_t ep) {
    uint64_t lb = 0;
    for (auto &e : emu_block_eps) if (e.first <= ep) lb = e.second;
    char b[96];
    snprintf(b, sizeof b, "block (%llu,%llu,%llu)", (unsigned long long)(lb % emu_gdim.x), (unsigned long long)(lb / emu_gdim.x % emu_gdim.y),
             (unsigned long long)(lb / ((uint64_t)emu_gdim.x * emu_gdim.y)));
    return b;
}
static std::string emu_race_where(uintptr_t a, bool shared) {
    char b[160];
    if (shared)
        for (auto &s : emu_shared_names)
            if (a >= s.p && a < s.p + s.size) {
                size_t off = a - s.p, i = off / s.elem, k = s.row / s.elem;
                if (k > 1) snprintf(b, sizeof b, "%s[%zu][%zu]", s.name.c_str(), i / k, i % k);
                else snprintf(b, sizeof b, "%s[%zu]", s.name.c_str(), i);
                return b;
            }
    snprintf(b, sizeof b, shared ? "shared memory at %p" : "device memory at %p", (void *)a);
    return b;
}
[[noreturn]] static void emu_race_report(const char *what, uintptr_t a, bool shared, uint64_t other, bool other_wrote, bool me_wrote) {
    unsigned t = (unsigned)emu_linear(), ot = (unsigned)(other & 0xffff);
    std::string whom = ot == 0xffff ? std::string("other threads") : emu_race_thread(ot);
    fprintf(stderr, "emu: %s race in %s (%s): %s %s %s, %s %s it with no __syncthreads between (EMU_SCHEDULE=%s EMU_SEED=%llu)\n",
            what, emu_name, emu_race_block_name(emu_ep).c_str(), whom.c_str(), other_wrote ? "wrote" : "read",
            emu_race_where(a, shared).c_str(), emu_race_thread(t).c_str(), me_wrote ? "wrote" : "read",
            emu_sched_mode == 1 ? "shuffle" : "inorder", (unsigned long long)emu_sched_seed);
    abort();
}
[[noreturn]] static void emu_race_report_blocks(uintptr_t a, uint64_t other, bool other_wrote, bool me_wrote) {
    fprintf(stderr, "emu: race between blocks in %s: %s %s %s, %s %s it in the same launch (blocks run in any order, "
            "and at once, on a GPU)\n", emu_name, emu_race_block_name(other >> 16).c_str(), other_wrote ? "wrote" : "read",
            emu_race_where(a, false).c_str(), emu_race_block_name(emu_ep).c_str(), me_wrote ? "wrote" : "read");
    abort();
}
/* stamps: epoch << 16 | thread (0xffff: several threads read it in that epoch) */
static inline void emu_race_byte(uint64_t *w, uint64_t *r, uintptr_t a, bool write, bool shared, unsigned t) {
    uint64_t wv = *w, we = wv >> 16, rv = *r, re = rv >> 16;
    bool other_block_w = !shared && we >= emu_launch_ep0 && we < emu_block_ep0;
    bool other_block_r = !shared && re >= emu_launch_ep0 && re < emu_block_ep0;
    if (we == emu_ep && (wv & 0xffff) != t) emu_race_report(shared ? "shared-memory" : "device-memory", a, shared, wv, true, write);
    if (other_block_w) emu_race_report_blocks(a, wv, true, write);
    if (shared && !write && we < emu_block_ep0) {
        fprintf(stderr, "emu: %s (%s): %s read %s, which no thread of its block wrote (uninitialised shared memory)\n",
                emu_name, emu_race_block_name(emu_ep).c_str(), emu_race_thread(t).c_str(), emu_race_where(a, true).c_str());
        abort();
    }
    if (write) {
        if (re == emu_ep && (rv & 0xffff) != t) emu_race_report(shared ? "shared-memory" : "device-memory", a, shared, rv, false, true);
        if (other_block_r) emu_race_report_blocks(a, rv, false, true);
        *w = emu_ep << 16 | t;
    } else if (!other_block_r) { /* a read by an earlier block stays, for the check of a later write */
        *r = emu_ep << 16 | (re == emu_ep && (rv & 0xffff) != t ? 0xffff : t);
    }
}
/* true for memory a kernel may touch besides device memory: its own stack (the fiber's, or
   the host thread's for kernels run without fibers; frames above this function's) and the
   program's static data (threadIdx is one, __shared__ arrays, constant tables) */
extern "C" char __executable_start[] __attribute__((weak)), _end[] __attribute__((weak));
static bool emu_race_own(uintptr_t a) {
    char here;
    uintptr_t sp = (uintptr_t)&here;
    if (a >= sp - 4096 && a < sp + ((uintptr_t)1 << 20)) return true;
    return __executable_start && a >= (uintptr_t)__executable_start && a < (uintptr_t)_end;
}
[[noreturn]] static void emu_race_host(uintptr_t a, bool write) {
    fprintf(stderr, "emu: %s (%s, %s) %s host memory at %p (not from cudaMalloc): a GPU cannot reach it\n", emu_name,
            emu_race_block_name(emu_ep).c_str(), emu_race_thread((unsigned)emu_linear()).c_str(), write ? "wrote" : "read", (void *)a);
    abort();
}
static void emu_race_access(const void *p, unsigned n, bool write) {
    if (!emu_in_kernel) return;
    uintptr_t a = (uintptr_t)p, s0 = (uintptr_t)__start_emu_shared, s1 = (uintptr_t)__stop_emu_shared;
    unsigned t = (unsigned)emu_linear();
    if (a >= s0 && a < s1) {
        size_t sz = s1 - s0;
        for (unsigned i = 0; i < n && a + i < s1; i++)
            emu_race_byte(&emu_race_shared[a + i - s0], &emu_race_shared[sz + a + i - s0], a + i, write, true, t);
        return;
    }
    uintptr_t page = a >> 12;
    auto &c = emu_race_cache[page & 63];
    if (c.page != page) {
        c.page = page;
        c.region = -1;
        auto it = std::upper_bound(emu_race_regions.begin(), emu_race_regions.end(), a,
                                   [](uintptr_t x, const emu_race_region &r) { return x < r.lo; });
        if (it != emu_race_regions.begin() && a < (it - 1)->hi) c.region = (it - 1) - emu_race_regions.begin();
        else if (!emu_race_own(a)) c.region = -2;
    }
    if (c.region == -2) emu_race_host(a, write);
    if (c.region < 0) return; /* the kernel's stack (its arguments), the emulator's variables */
    emu_race_region &r = emu_race_regions[(size_t)c.region];
    if (!r.shadow) {
        auto &sh = emu_race_shadows[r.lo];
        size_t len = r.hi - r.lo;
        if (sh.first != len) {
            if (sh.second) munmap(sh.second, 16 * sh.first);
            void *q = mmap(NULL, 16 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (q == MAP_FAILED) { fprintf(stderr, "emu: no memory for the race check's shadow of %zu bytes\n", len); abort(); }
            sh = {len, (uint64_t *)q};
        }
        r.shadow = sh.second;
    }
    size_t len = r.hi - r.lo;
    for (unsigned i = 0; i < n && a + i < r.hi; i++)
        emu_race_byte(&r.shadow[a + i - r.lo], &r.shadow[len + a + i - r.lo], a + i, write, false, t);
}
#define EMU_RACE_HOOK(n, T)                                                                      \
    extern "C" void __sanitizer_cov_load##n(T *p) { emu_race_access(p, n, false); }             \
    extern "C" void __sanitizer_cov_store##n(T *p) { emu_race_access(p, n, true); }
EMU_RACE_HOOK(1, uint8_t)
EMU_RACE_HOOK(2, uint16_t)
EMU_RACE_HOOK(4, uint32_t)
EMU_RACE_HOOK(8, uint64_t)
EMU_RACE_HOOK(16, __int128)
#endif

/* ---- dry run: EMU_DRY=1 (tools/cuda_emu/README, "Dry run") ----------------------------------
   For a program at its real size (GPT-2 124M, ResNet-18 batch 256) on a machine with less
   memory than the GPU: cudaMalloc reserves address space (MAP_NORESERVE, pages never touched,
   so 50 GB cost nothing), kernel launches are checked (limits, pointer arguments) and counted
   but not run, cuBLAS GEMMs are checked (arguments, and that the span each matrix reads or
   writes lies in one live cudaMalloc block) and their FLOPs added up, not run; memsets and
   device-to-device copies are skipped; host <-> device copies copy (device memory nothing
   wrote reads as zeros). At exit it prints to stderr the cudaMalloc high-water mark, the
   launch and GEMM counts, the GEMM FLOPs, the same for the last "step" (the work between the
   last two device-to-host copies that had work between them: one training step where each
   step ends with sdl_item) and the launches per kernel, ending with one line
   "emu dry: summary key=value ...". Errors still print as "emu: ..." lines.
   Also in a normal run: a kernel argument that is a pointer must be NULL or point into
   device memory (a host pointer faults on a GPU); reported as "emu: ..." with the kernel. */
struct emu_dry_count { long launches, blas_calls, gemms, graph_launches; double flop; };
static emu_dry_count emu_dry_now, emu_dry_mark, emu_dry_step;
static long long emu_dry_cur, emu_dry_peak, emu_dry_big, emu_dry_gemm_elems; /* the last: the largest span a GEMM operand had */
static long emu_dry_mallocs, emu_dry_d2h_copies;
static std::map<std::string, long> *emu_dry_kernels, *emu_dry_step_kernels, *emu_dry_mark_kernels;
static std::map<std::string, long long> *emu_dry_threads; /* the fewest threads a launch of the kernel had */
static int emu_arg_bad; /* 1 + the index of a kernel argument that is a host pointer */
static inline double emu_gib(long long b) { return (double)b / (double)(1LL << 30); }
static void emu_dry_report(void) {
    emu_dry_count &a = emu_dry_now, &s = emu_dry_step;
    a.graph_launches = emu_graph_launches;
    fprintf(stderr, "emu dry: peak device memory %.3f GiB (%lld bytes; %ld cudaMalloc, largest %.3f GiB, %.3f GiB still allocated at exit)\n",
            emu_gib(emu_dry_peak), emu_dry_peak, emu_dry_mallocs, emu_gib(emu_dry_big), emu_gib(emu_dry_cur));
    fprintf(stderr, "emu dry: %ld kernel launches, %ld cuBLAS calls (%ld GEMMs), %.4g GFLOP in GEMMs, %ld graph launches, %ld device-to-host copies\n",
            a.launches, a.blas_calls, a.gemms, a.flop * 1e-9, a.graph_launches, emu_dry_d2h_copies);
    fprintf(stderr, "emu dry: the largest GEMM operand spans %lld elements (%s 2^31 - 1, the int of cuBLAS's sizes)\n", emu_dry_gemm_elems,
            emu_dry_gemm_elems > 2147483647LL ? "over" : "under");
    fprintf(stderr, "emu dry: last step: %ld kernel launches, %ld cuBLAS calls (%ld GEMMs), %.4g GFLOP in GEMMs, %ld graph launches\n",
            s.launches, s.blas_calls, s.gemms, s.flop * 1e-9, s.graph_launches);
    std::vector<std::pair<long, std::string>> k;
    if (emu_dry_kernels)
        for (auto &e : *emu_dry_kernels) k.push_back({-e.second, e.first});
    std::sort(k.begin(), k.end());
    for (auto &e : k)
        fprintf(stderr, "emu dry: kernel %-28s %8ld launches, %6ld in the last step, %9lld threads in the smallest\n", e.second.c_str(),
                -e.first, emu_dry_step_kernels->count(e.second) ? (*emu_dry_step_kernels)[e.second] : 0L, (*emu_dry_threads)[e.second]);
    fprintf(stderr, "emu dry: summary peak_bytes=%lld launches=%ld blas_calls=%ld gemm_flop=%.0f step_launches=%ld step_blas_calls=%ld "
            "step_gemm_flop=%.0f step_graph_launches=%ld gemm_max_elems=%lld\n", emu_dry_peak, a.launches, a.blas_calls, a.flop, s.launches,
            s.blas_calls, s.flop, s.graph_launches, emu_dry_gemm_elems);
}
static bool emu_dry(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("EMU_DRY");
        on = e && *e && strcmp(e, "0") != 0;
        if (on) {
            emu_dry_kernels = new std::map<std::string, long>;
            emu_dry_step_kernels = new std::map<std::string, long>;
            emu_dry_mark_kernels = new std::map<std::string, long>;
            emu_dry_threads = new std::map<std::string, long long>;
            atexit(emu_dry_report);
        }
    }
    return on != 0;
}
static void emu_dry_mem(long long delta) {
    emu_dry_cur += delta;
    if (delta > 0) { emu_dry_mallocs++; if (delta > emu_dry_big) emu_dry_big = delta; }
    if (emu_dry_cur > emu_dry_peak) emu_dry_peak = emu_dry_cur;
}
static void emu_dry_launch(const char *name, dim3 g, dim3 b) {
    emu_dry_now.launches++;
    (*emu_dry_kernels)[name]++;
    long long t = (long long)g.x * g.y * g.z * b.x * b.y * b.z;
    auto it = emu_dry_threads->find(name);
    if (it == emu_dry_threads->end()) (*emu_dry_threads)[name] = t;
    else if (t < it->second) it->second = t;
}
/* a device-to-host copy ends a "step" when work was done since the last one. EMU_DRY=nan:
   true, the copy gives 0xFF bytes (NaN floats, -1 integers) in place of device memory's */
static bool emu_dry_d2h(void *d, size_t n) {
    if (!emu_dry()) return false;
    bool nan = !strcmp(getenv("EMU_DRY"), "nan");
    if (nan) memset(d, 0xFF, n);
    emu_dry_d2h_copies++;
    emu_dry_now.graph_launches = emu_graph_launches;
    emu_dry_count &a = emu_dry_now, &m = emu_dry_mark;
    if (a.launches == m.launches && a.blas_calls == m.blas_calls && a.graph_launches == m.graph_launches) return nan;
    emu_dry_step = {a.launches - m.launches, a.blas_calls - m.blas_calls, a.gemms - m.gemms, a.graph_launches - m.graph_launches, a.flop - m.flop};
    emu_dry_step_kernels->clear();
    for (auto &e : *emu_dry_kernels) {
        long d = e.second - (emu_dry_mark_kernels->count(e.first) ? (*emu_dry_mark_kernels)[e.first] : 0L);
        if (d) (*emu_dry_step_kernels)[e.first] = d;
    }
    *emu_dry_mark_kernels = *emu_dry_kernels;
    emu_dry_mark = emu_dry_now;
    return nan;
}
/* kernel arguments: a pointer must be NULL or point into (or just past) device memory */
template <typename T> static inline void emu_arg_check(int, const T &) {}
template <typename T> static inline void emu_arg_check(int i, T *p) {
    if (p && !emu_arg_bad && !emu_on_device((const void *)p, 0)) emu_arg_bad = i + 1;
}
template <typename... P> static inline void emu_args_check(P... p) {
    int i = 0;
    int unused[] = {0, (emu_arg_check(i++, p), 0)...};
    (void)unused;
}
/* called by emu_cap_launch with the kernel's name: reports what emu_args_check found */
static inline void emu_args_report(const char *name) {
    if (!emu_arg_bad) return;
    fprintf(stderr, "emu: %s: argument %d is a pointer outside device memory (a host pointer faults on a GPU)\n", name, emu_arg_bad);
    emu_arg_bad = 0;
    emu_err = cudaErrorInvalidValue;
}
