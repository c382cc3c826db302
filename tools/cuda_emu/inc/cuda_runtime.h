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

struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9 };
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp { char name[256]; int major, minor; };
#define __global__
#define __device__
#define __host__
#define __shared__ static

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
static inline cudaError_t cudaMalloc(void **p, size_t n) {
    if (n > ((size_t)1 << 40)) { *p = NULL; return cudaErrorMemoryAllocation; }
    size_t len = (n + 4095) & ~(size_t)4095;
    void *q = mmap(NULL, len ? len : 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (emu_dry() ? MAP_NORESERVE : 0), -1, 0);
    if (q == MAP_FAILED) { *p = NULL; return cudaErrorMemoryAllocation; }
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
    if (++b.count == b.size) { b.count = 0; b.gen++; emu_progress++; }
    else while (b.gen == g) emu_yield();
}
static inline int emu_linear() { return (int)(emu_tid.x + emu_tid.y * emu_bdim.x + emu_tid.z * emu_bdim.x * emu_bdim.y); }
static inline void __syncthreads() { emu_wait(emu_block_bar); }
template <typename T> static inline T __shfl_xor_sync(unsigned, T v, int o) {
    int lin = emu_linear(), w = lin / 32;
    static_assert(sizeof(T) <= 8, "shfl");
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
    if (fiberless[name] > 0) {
        emu_direct = 1;
        for (unsigned bz = 0; bz < g.z; bz++)
            for (unsigned by = 0; by < g.y; by++)
                for (unsigned bx = 0; bx < g.x; bx++) {
                    emu_bid = dim3(bx, by, bz);
                    for (unsigned i = 0; i < nt; i++) { emu_tid = dim3(i % b.x, (i / b.x) % b.y, i / (b.x * b.y)); body(); }
                }
        emu_direct = 0;
        return;
    }
    emu_hit = 0;
    for (volatile unsigned bz = 0; bz < g.z; bz++)
        for (volatile unsigned by = 0; by < g.y; by++)
            for (volatile unsigned bx = 0; bx < g.x; bx++) {
                emu_bid = dim3(bx, by, bz);
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
                    for (volatile unsigned i = 0; i < nt; i++) {
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
