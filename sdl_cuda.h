/* sdl_cuda.h - v0.1 - the CUDA backend for sdl - public domain or MIT (see sdl.h)

   Runs sdl's ops on an NVIDIA GPU. A tensor whose device is SDL_CUDA keeps its header in host
   memory and its data (and gradient) in GPU memory; ops on such tensors run CUDA kernels and
   cuBLAS, backward and the optimizer step stay on the GPU, and nothing comes back to the host
   unless you ask (sdl_item, sdl_count_correct, sdl_cuda_to_host).

   Do this:
      #define SDL_CUDA_IMPLEMENTATION
   before you include this file in *one* .cu file compiled by nvcc. Include sdl.h first.
   Other files (C or C++, any compiler) may include it without the macro: the declarations
   need no CUDA header. A file that cc compiles may define the macro too: the
   implementation is then empty but for two stubs (>>cuda-stubs), so one program builds
   with cc and with nvcc, and picks its device at run time with sdl_device_parse (see
   sdl.h, >>decl-device).

   An example (an MLP on the GPU):

      #define SDL_IMPLEMENTATION
      #include "sdl.h"
      #define SDL_CUDA_IMPLEMENTATION
      #include "sdl_cuda.h"
      ...
      if (sdl_cuda_init() != SDL_OK) { printf("%s\n", sdl_last_error()); return 1; }
      sdl_model *m = sdl_model_new(42);  ... layers as on the CPU ...
      sdl_cuda_model_to_device(m);                          // before making the optimizer
      sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
      while (sdl_loader_next(loader, &x, &y)) {
          x = sdl_cuda_to_device(x); y = sdl_cuda_to_device(y);
          sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
          sdl_backward(loss); sdl_optim_step(opt);            // the step zeroes the grads
          printf("loss %f\n", sdl_item(loss));              // waits for the GPU
          sdl_arena_reset();
      }
      sdl_optim_free(opt); sdl_model_free(m); sdl_cuda_shutdown();

   Compile with  nvcc -std=c++17 -O2 -x cu prog.c -lcublas

   CONFIGURATION (define before including, in the implementation file)
      SDL_CUDA_ARENA_MIN     the first device arena block in bytes, default 64 MiB
      SDL_CUDA_WORKSPACE     cuBLAS workspace in bytes, default 32 MiB
      SDL_CUDA_SYNC_CHECK    wait for every kernel, so an error names the kernel that made it
                             (for debugging: slow)
      SDL_CUDA_CONV_SCRATCH  bytes of im2col columns per chunk of samples, default 256 MiB
                             (a conv runs its batch in chunks that fit; at least one sample)

   TOPICS
      Devices     sdl_cuda_init() registers the backend for the current CUDA device (call
                  cudaSetDevice first to pick another; one device per process). Everything
                  runs in order on one stream, sdl_cuda_stream(). sdl.h's device calls do
                  all that for you: sdl_device_parse("cuda:1", &dev), sdl_model_to(m, dev),
                  sdl_tensor_to(x, dev) start it on first use (this implementation registers
                  its opener before main), so a program written with those compiles with
                  cc, mpicc and nvcc alike.
                  Checkpoints (sdl_checkpoint_save/load) work on a GPU model and optimizer.
      Memory      A model's packed arrays (parameters, gradients, buffers) move to the GPU
                  with sdl_cuda_model_to_device; make the optimizer after that, so its state
                  is allocated there too. Step tensors come from a device arena: one
                  cudaMalloc'd block, bump allocation, dropped by sdl_arena_reset(). Only
                  what must start at zero (gradients) is cleared, one cudaMemsetAsync each;
                  op outputs are written whole by their kernels. It grows like the CPU
                  arena, so after the first steps a step calls cudaMalloc no more.
      Copies      Host <-> device copies wait for the GPU before they return, so the host
                  buffer may be reused or read at once. sdl_cuda_host_alloc gives pinned
                  memory, which copies faster.
      Errors      Every CUDA and cuBLAS call is checked; a failure sets sdl_last_error() to
                  "cuda: <call> failed: <reason> at <file>:<line>" and the first such error
                  is kept until sdl_cuda_synchronize() returns it. Kernels run
                  asynchronously, so a bad kernel may be reported at the next copy or sync.
                  Out-of-range class targets (cross entropy, nll) give a NaN loss and
                  out-of-range embedding ids a NaN row (no host check on the GPU).
      Ops         Every op of sdl.h, forward and backward, with the CPU's attrs, saved data
                  and math: linear, conv2d and conv_transpose2d (im2col + cuBLAS, batched over
                  samples), max/avg/global pooling, batch and layer norm, dropout (the CPU's
                  hash, so the masks are the same bits), embedding, the activations, softmax,
                  log_softmax, concat, transpose, causal attention (batched GEMMs + a masked
                  softmax), add/mul/scale, sum/mean, cross entropy, nll, bce, mse. Optimizers:
                  SGD, Adam, AdamW, LARS, LAMB, with gradient accumulation (accum_steps) and
                  clipping (max_grad_norm); sdl_grad_scale and sdl_clip_grad_norm work on a
                  GPU model too. Clipping reads the norm back to the host (one double per
                  update, which waits for the backward): o->grad_norm and
                  sdl_clip_grad_norm's result need it.
      Precision   f32 by default. sdl_cuda_set_tf32(true) lets cuBLAS round GEMM inputs to
                  TF32 (tensor cores; about 1e-3 relative error instead of 1e-6).
                  Mixed precision, as PyTorch's autocast does it for matmuls:
                  sdl_cuda_set_precision(SDL_BF16 or SDL_F16) makes every GEMM (linear,
                  conv2d and conv_transpose2d through their GEMMs, attention's batched GEMMs;
                  forward and backward) read bf16/fp16 copies of its inputs, rounded to
                  nearest even, and sum in f32 into f32 outputs (cublasGemmEx,
                  CUBLAS_COMPUTE_32F). Parameters, gradients, optimizer state and all other
                  ops stay f32 (the f32 master weights); the copies are made per GEMM in one
                  reused buffer, except attention's probabilities P and their gradient, which
                  its softmax writes in bf16/fp16 directly (P is kept so for the backward).
                  Expect about 1e-2 relative error in the GEMMs. fp16 needs a
                  loss scale, sdl.h's sdl_loss_scaler (PyTorch's GradScaler):
                     sdl_cuda_set_precision(SDL_F16);
                     sdl_loss_scaler sc = {0};                     // 65536, x2 per 2000 good
                     sdl_scaled_backward(&sc, loss);               // backward of loss * scale
                     sdl_scaler_step(&sc, opt);                    // unscale; skip on Inf/NaN
                  bf16 has f32's exponent range and needs none. The precision may change
                  between steps; sdl_cuda_shutdown sets it back to f32.
      Determinism No atomics anywhere: reductions use a fixed order, col2im and the pooling
                  backward gather (each input element sums the windows that read it), and the
                  embedding backward adds each id's rows in row order (one block owns an
                  id). Per-channel sums (batch norm, conv bias gradients) and column sums
                  (bias and layer norm gradients) are cut into chunks whose number depends on
                  the shape only, and the chunks' partial sums are added in chunk order. So a
                  run repeats bit for bit on the same GPU; results differ from the CPU in the
                  last bits (cuBLAS sums in another order).
      Graphs      A small model's step is ~100 short kernels; launching them costs more than
                  running them. sdl_cuda_graph_capture records one step as a CUDA graph and
                  sdl_cuda_graph_replay runs it again with one launch (PyTorch's CUDAGraph):

                     sdl_tensor *x = sdl_cuda_tensor_new(shape_x, SDL_F32);  // static inputs
                     sdl_tensor *y = sdl_cuda_tensor_new(shape_y, SDL_I32);
                     sdl_tensor *step(void *ctx) {                   // uses x, y only
                         sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
                         sdl_backward(loss); sdl_optim_step(opt); return loss;
                     }
                     sdl_cuda_copy(x, hx); sdl_cuda_copy(y, hy);
                     step(NULL); sdl_arena_reset();                   // warm-up: sizes the arena
                     sdl_cuda_graph *g = sdl_cuda_graph_capture(step, NULL); // records, runs nothing
                     sdl_arena_reset();
                     while (sdl_loader_next(loader, &hx, &hy)) {
                         sdl_cuda_copy(x, hx); sdl_cuda_copy(y, hy);  // new batch, same addresses
                         sdl_cuda_graph_replay(g);
                         printf("%f\n", sdl_item(sdl_cuda_graph_output(g)));
                         sdl_arena_reset();                           // before each replay
                     }
                     sdl_cuda_graph_free(g);

                  The graph keeps raw addresses. Step tensors repeat theirs because the arena
                  is a bump allocator reset per step (the same ops allocate the same sequence);
                  capture needs the arena big enough already (one eager step first), and a
                  replay checks that the arena and the scratch buffer did not move (an eager
                  step that grew them: capture again). The model, the optimizer and the static
                  inputs must stay where they were. Host values that change per step are not
                  baked in: the optimizer's lr (schedules work) and step count (Adam's bias
                  corrections, SGD's first step) and dropout's seed and RNG counter are read
                  from a small device buffer that one kernel fills before each launch, so
                  replay k computes what eager step k would, bit for bit; capturing changes no
                  host state and each replay moves the step counts and the RNG on as an eager
                  step does. Other host scalars (a changing sdl_scale factor, label smoothing)
                  are constants of the graph. Inside a captured step, host reads (sdl_item,
                  sdl_count_correct), uploads (sdl_cuda_to_device), allocations, frees and
                  sdl_arena_reset are errors: sdl_cuda_graph_end returns NULL and
                  sdl_last_error() names the call. The core's small constants (the loss
                  gradient's 1) become part of the graph. Accumulation is refused on the
                  device, and a graph holds whole steps only.

   TODO (in this order)
      - run it: this version was written without a GPU; tests/cuda_test_ops.cu and
        tools/gpu_check.sh check every op and optimizer against the CPU
      - faster kernels where the simple ones are slow: attention (full T x T GEMMs, then
        masked: 2x the flops of a fused flash-style kernel), conv (cuDNN, or implicit GEMM,
        instead of materialised columns); batch norm in fewer launches (three each way now:
        chunk sums, a per-channel finish, the elementwise pass) and fused with the relu
        after it; the linear bias in a cuBLASLt epilogue (now a fill and beta = 1)
      - one launch for SGD/Adam with per-parameter weight decay (now one launch per run of
        parameters with the same group, decay flag and freezing); one launch per optimizer step for LARS/LAMB
        (now two per parameter tensor)
      - mixed precision, faster: keep bf16 copies of the weights for a whole step (now
        converted per GEMM), bf16 activations between ops (half the memory traffic; now
        f32), clipping and the loss scaler's check without the host read of the norm
      - CUDA graphs: measure on a GPU (bench_cuda --graph); put the scalar kernel inside the
        graph (one launch per step instead of two)
      - overlap: async H2D copies from pinned buffers on a second stream with events
      - faster broadcast reductions (sdl__k_bcast_reduce: a block per element of b) and a warp
        per row in cross entropy when there are few classes (now a block of 256 per row)
      - device paths for the core's other host loops over the flat arrays
      - data parallel with sdl_mpi: CUDA-aware MPI or host staging of the gradients, then NCCL
*/
#ifndef SDL_H_INCLUDED
#error "include sdl.h before sdl_cuda.h"
#endif
#ifndef SDL_CUDA_H_INCLUDED
#define SDL_CUDA_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

/* >>cuda-decl */
/* true when a CUDA device is present (does not initialise anything) */
SDL_API bool sdl_cuda_available(void);
/* sets up the stream, cuBLAS and the arena on the current device and registers the
   backend for SDL_CUDA; safe to call again. SDL_ERR_DEVICE when there is no GPU. */
SDL_API sdl_result sdl_cuda_init(void);
/* frees the arena, cuBLAS and the stream and unregisters the backend. Free models and
   optimizers on the GPU before. */
SDL_API void sdl_cuda_shutdown(void);
/* waits for the GPU; returns (and clears) the first error since the last call */
SDL_API sdl_result sdl_cuda_synchronize(void);
SDL_API void *sdl_cuda_stream(void); /* the cudaStream_t every kernel runs on */
SDL_API void sdl_cuda_set_tf32(bool on); /* GEMMs on TF32 tensor cores (default off) */

/* packs the model if needed and moves its parameters, gradients and buffers to the GPU
   (the host arrays are freed); make optimizers after this */
SDL_API sdl_result sdl_cuda_model_to_device(sdl_model *m);
SDL_API sdl_result sdl_cuda_model_to_host(sdl_model *m); /* back, e.g. to save a checkpoint */
/* a step-arena copy on the GPU (t itself when it is there already); no gradient flows back */
SDL_API sdl_tensor *sdl_cuda_to_device(sdl_tensor *t);
/* a step-arena copy in host memory (t itself when it is there already) */
SDL_API sdl_tensor *sdl_cuda_to_host(sdl_tensor *t);

/* pinned (page-locked) host memory, for loader buffers that copy fast */
SDL_API void *sdl_cuda_host_alloc(size_t bytes);
SDL_API void sdl_cuda_host_free(void *p);

/* GPU time between start and stop, in milliseconds (stop waits for the GPU) */
SDL_API void sdl_cuda_timer_start(void);
SDL_API float sdl_cuda_timer_stop(void);
SDL_API size_t sdl_cuda_arena_capacity(void); /* bytes held by the device arena */

/* >>cuda-decl-amp: mixed precision (see TOPICS, Precision). SDL_BF16 or SDL_F16: every
   GEMM (linear, conv2d, conv_transpose2d, attention; forward and backward) reads bf16 or
   fp16 copies of its two inputs and sums in f32 into f32 outputs; all else stays f32, and
   so do the parameters. SDL_F32 (the default; SDL_DTYPE_DEFAULT too) turns it off. fp16
   needs a loss scale: sdl_loss_scaler in sdl.h. SDL_ERR_ARG for another dtype. */
SDL_API sdl_result sdl_cuda_set_precision(sdl_dtype precision);
SDL_API sdl_dtype sdl_cuda_precision(void);
/* >>cuda-graph-decl: a whole step captured once as a CUDA graph and replayed (Graphs, above) */
typedef struct sdl_cuda_graph sdl_cuda_graph;
/* a device tensor outside the arena (a static input: fill it before each replay) */
SDL_API sdl_tensor *sdl_cuda_tensor_new(sdl_shape shape, sdl_dtype dtype);
SDL_API void sdl_cuda_tensor_free(sdl_tensor *t);
/* dst = src (same numel and dtype; any devices; waits when host memory is involved) */
SDL_API sdl_result sdl_cuda_copy(sdl_tensor *dst, const sdl_tensor *src);
/* between begin and end the step's GPU work is recorded, not run; call after one eager step
   and sdl_arena_reset(). end returns NULL (and why in sdl_last_error) when the step did
   something a graph cannot hold (a host read, an upload, an allocation) */
SDL_API sdl_result sdl_cuda_graph_begin(void);
SDL_API sdl_cuda_graph *sdl_cuda_graph_end(void);
/* begin, step(ctx), end; the tensor step returns is kept (sdl_cuda_graph_output) */
SDL_API sdl_cuda_graph *sdl_cuda_graph_capture(sdl_tensor *(*step)(void *ctx), void *ctx);
/* a copy of a captured tensor's header that outlives sdl_arena_reset (freed with g): after
   each replay it holds that replay's value, until the next sdl_arena_reset */
SDL_API sdl_tensor *sdl_cuda_graph_keep(sdl_cuda_graph *g, const sdl_tensor *t);
SDL_API sdl_tensor *sdl_cuda_graph_output(const sdl_cuda_graph *g);
/* runs the step once more (call sdl_arena_reset() before each replay); the optimizers' step
   counts and the RNG move on as an eager step's would */
SDL_API sdl_result sdl_cuda_graph_replay(sdl_cuda_graph *g);
SDL_API void sdl_cuda_graph_free(sdl_cuda_graph *g);

#ifdef __cplusplus
}
#endif
#endif /* SDL_CUDA_H_INCLUDED */

/* ========================================================================================
   IMPLEMENTATION
   ======================================================================================== */
/* Compiled by anything but nvcc (cc, mpicc) the implementation is the few stubs at the end
   of the file: the program then has no CUDA backend, and sdl_device_parse("cuda") says so. */
#if defined(SDL_CUDA_IMPLEMENTATION) && defined(__CUDACC__)
#ifndef SDL_CUDA_IMPLEMENTATION_DONE
#define SDL_CUDA_IMPLEMENTATION_DONE

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <string.h>
#include <math.h>
#include <limits.h>

#ifndef SDL_CUDA_ARENA_MIN
#define SDL_CUDA_ARENA_MIN ((size_t)64 << 20)
#endif
#ifndef SDL_CUDA_WORKSPACE
#define SDL_CUDA_WORKSPACE ((size_t)32 << 20)
#endif

#define SDL__CU_THREADS 256   /* every 1-d kernel uses blocks of this size (a power of two) */
#define SDL__CU_ALIGN 256     /* arena alignment, as cudaMalloc's */
#define SDL__CU_MAX_CHUNKS 48 /* arena blocks before a reset merges them (each at least doubles) */

/* ----------------------------------------------------------------------------------------
   >>cuda-state and errors
   ---------------------------------------------------------------------------------------- */
static struct {
    bool ready, tf32;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *workspace;
    cudaEvent_t t0, t1;
    sdl_result first_error;
    char first_msg[512];
    struct { char *base; size_t cap; } chunk[SDL__CU_MAX_CHUNKS]; /* the arena: the last one is current */
    int nchunks;
    size_t used, total_cap;
    size_t step_bytes; /* allocated since the last reset, in all blocks */
    void *scratch; /* sdl__cu_scratch */
    size_t scratch_cap;
    sdl_backend table;
} sdl__cu;

static void sdl__cu_record(sdl_result code) {
    if (sdl__cu.first_error != SDL_OK) return;
    sdl__cu.first_error = code;
    snprintf(sdl__cu.first_msg, sizeof sdl__cu.first_msg, "%s", sdl_last_error());
}

static bool sdl__cu_ok(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError(); /* pop it, so the next launch check does not report it again */
    sdl_result code = e == cudaErrorMemoryAllocation ? SDL_ERR_OOM : SDL_ERR_DEVICE;
    sdl_fail(code, "cuda: %s failed: %s (%s) at %s:%d", call, cudaGetErrorName(e), cudaGetErrorString(e), file, line);
    sdl__cu_record(code);
    return false;
}

static bool sdl__cublas_ok(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    sdl_result code = s == CUBLAS_STATUS_ALLOC_FAILED ? SDL_ERR_OOM : SDL_ERR_DEVICE;
    sdl_fail(code, "cuda: %s failed: %s (%s) at %s:%d", call, cublasGetStatusName(s), cublasGetStatusString(s), file, line);
    sdl__cu_record(code);
    return false;
}

/* after a kernel launch: a bad launch configuration shows at once, a fault inside the
   kernel only at the next sync (or here with SDL_CUDA_SYNC_CHECK) */
static bool sdl__cu_launched(const char *kernel, const char *file, int line) {
    cudaError_t e = cudaGetLastError();
#ifdef SDL_CUDA_SYNC_CHECK
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone; /* no waiting inside a graph capture */
    if (e == cudaSuccess && cudaStreamIsCapturing(sdl__cu.stream, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusNone)
        e = cudaStreamSynchronize(sdl__cu.stream);
#endif
    return sdl__cu_ok(e, kernel, file, line);
}

#define SDL__CU(call) sdl__cu_ok((call), #call, __FILE__, __LINE__)
#define SDL__CUBLAS(call) sdl__cublas_ok((call), #call, __FILE__, __LINE__)
#define SDL__CU_LAUNCHED(kernel) sdl__cu_launched(kernel, __FILE__, __LINE__)

/* blocks for a grid-stride loop over n elements (at least one) */
static unsigned sdl__cu_grid(int64_t n) {
    int64_t b = (n + SDL__CU_THREADS - 1) / SDL__CU_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

#define SDL__CU_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ----------------------------------------------------------------------------------------
   >>cuda-graph-state: what a capture in progress records (the API is in >>cuda-graph). The
   ops and the optimizer ask it for device copies of the values that change every step.
   ---------------------------------------------------------------------------------------- */
#define SDL__CU_GRAPH_SLOTS 16  /* optimizer scalar sets per graph: one per (optimizer, decay, step) */
#define SDL__CU_GRAPH_OPTIMS 8  /* optimizers stepped in one graph */
#define SDL__CU_HP 8            /* floats per set: lr, first, lr / bc1, sqrt(bc2), 1 - lr wd, bc1, bc2 */
#define SDL__CU_GRAPH_CONST 64  /* host-to-device copies up to this size become constants of the graph */
#define SDL__CU_GRAPH_WORDS (2 + SDL__CU_GRAPH_SLOTS * SDL__CU_HP / 2)

/* a graph's device scalars, set by one small kernel before each launch: the RNG's seed and
   the shift of its counter since the capture, then the optimizer sets (as floats) */
typedef struct sdl__cu_graph_words { uint64_t w[SDL__CU_GRAPH_WORDS]; } sdl__cu_graph_words;

struct sdl_cuda_graph {
    cudaGraphExec_t exec;
    uint64_t *dev;                     /* SDL__CU_GRAPH_WORDS words on the device */
    char *arena_base;                  /* the device arena the step allocated from ... */
    size_t arena_used;                 /* ... and how much of it */
    void *scratch;                     /* sdl__cu_scratch at capture (NULL: unused) */
    uint64_t rng_counter0, rng_used;   /* the RNG counter at capture and what one step takes */
    int nslots, noptims, nkeep;
    struct { struct sdl_optim *o; float wd; int64_t k; } slot[SDL__CU_GRAPH_SLOTS];
    struct { struct sdl_optim *o; int64_t step0, steps; } optim[SDL__CU_GRAPH_OPTIMS];
    sdl_tensor *keep[16];              /* sdl_cuda_graph_keep's headers */
};

static struct {
    sdl_cuda_graph *cur; /* being captured, or NULL */
    bool failed;         /* something in the step cannot be captured: end returns NULL */
    sdl_result code;
    char msg[512];
} sdl__cug;

/* true while sdl_cuda_stream() is capturing (through sdl_cuda_graph_begin or the user's own
   cudaStreamBeginCapture) */
static bool sdl__cu_capturing(void) {
    cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    return sdl__cu.stream && cudaStreamIsCapturing(sdl__cu.stream, &s) == cudaSuccess && s != cudaStreamCaptureStatusNone;
}

/* a call that cannot be part of a graph was made during a capture: the error, kept for
   sdl_cuda_graph_end */
static void sdl__cu_graph_refuse(const char *what) {
    sdl_fail(SDL_ERR_STATE, "cuda graph: %s inside a captured step (see sdl_cuda.h, Graphs)", what);
    if (sdl__cug.cur && !sdl__cug.failed) {
        sdl__cug.failed = true;
        sdl__cug.code = SDL_ERR_STATE;
        snprintf(sdl__cug.msg, sizeof sdl__cug.msg, "%s", sdl_last_error());
    }
}

/* dst = the bytes, as one captured kernel (the value is a constant of the graph) */
typedef struct sdl__cu_const_bytes { unsigned char b[SDL__CU_GRAPH_CONST]; } sdl__cu_const_bytes;
static __global__ void sdl__k_const_bytes(unsigned char *dst, sdl__cu_const_bytes v, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = v.b[i];
}

/* the device slot of the RNG for a captured dropout (NULL when not capturing) */
static const uint64_t *sdl__cu_graph_rng(void) { return sdl__cug.cur ? sdl__cug.cur->dev : NULL; }

/* the device scalar set for optimizer o's kernels with weight decay wd in this captured step
   (NULL when not capturing); replays fill it from o's state at that time */
static const float *sdl__cu_graph_hp(struct sdl_optim *o, float wd) {
    sdl_cuda_graph *g = sdl__cug.cur;
    if (!g) return NULL;
    int i = 0;
    while (i < g->noptims && g->optim[i].o != o) i++;
    if (i == g->noptims) {
        if (i == SDL__CU_GRAPH_OPTIMS) { sdl__cu_graph_refuse("more than SDL__CU_GRAPH_OPTIMS optimizers"); return NULL; }
        g->optim[i].o = o;
        g->optim[i].step0 = o->step;
        g->optim[i].steps = 0;
        g->noptims++;
    }
    int64_t k = o->step - g->optim[i].step0;
    int s = 0;
    while (s < g->nslots && !(g->slot[s].o == o && g->slot[s].wd == wd && g->slot[s].k == k)) s++;
    if (s == g->nslots) {
        if (s == SDL__CU_GRAPH_SLOTS) { sdl__cu_graph_refuse("more than SDL__CU_GRAPH_SLOTS optimizer scalar sets"); return NULL; }
        g->slot[s].o = o;
        g->slot[s].wd = wd;
        g->slot[s].k = k;
        g->nslots++;
    }
    return (const float *)(g->dev + 2) + s * SDL__CU_HP;
}

/* ----------------------------------------------------------------------------------------
   >>cuda-memory: device blocks, copies, the step arena, pinned host memory
   ---------------------------------------------------------------------------------------- */
static void *sdl__cu_alloc(size_t bytes) {
    void *p = NULL;
    if (sdl__cu_capturing()) { sdl__cu_graph_refuse("a device allocation (cudaMalloc)"); return NULL; }
    if (!SDL__CU(cudaMalloc(&p, bytes < SDL__CU_ALIGN ? SDL__CU_ALIGN : bytes))) return NULL;
    return p;
}

static void sdl__cu_dealloc(void *p) {
    if (!p) return;
    if (sdl__cu_capturing()) { sdl__cu_graph_refuse("freeing device memory (cudaFree)"); return; }
    SDL__CU(cudaStreamSynchronize(sdl__cu.stream)); /* no kernel still reads it */
    SDL__CU(cudaFree(p));
}

static void sdl__cu_memset0(void *dst, size_t bytes) {
    if (bytes) SDL__CU(cudaMemsetAsync(dst, 0, bytes, sdl__cu.stream));
}

/* in stream order; waits when host memory is involved, so the host may read (D2H) or
   reuse (H2D) its buffer as soon as this returns */
static bool sdl__cu_copy_ok(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev) {
    bool dh = dst_dev != SDL_CUDA, sh = src_dev != SDL_CUDA;
    if (bytes == 0) return true;
    if (dh && sh) { memcpy(dst, src, bytes); return true; }
    cudaMemcpyKind kind = dh ? cudaMemcpyDeviceToHost : sh ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyDeviceToDevice && sdl__cu_capturing()) { /* the host would wait: not in a graph */
        if (dh) memset(dst, 0xFF, bytes); /* a float read gives NaN */
        sdl__cu_graph_refuse(dh ? "a device-to-host copy (sdl_item, sdl_count_correct, sdl_cuda_to_host)"
                                : "a host-to-device copy (sdl_cuda_to_device: copy each batch into a static input with sdl_cuda_copy before the replay)");
        return false;
    }
    if (!SDL__CU(cudaMemcpyAsync(dst, src, bytes, kind, sdl__cu.stream))) return false;
    return kind == cudaMemcpyDeviceToDevice || SDL__CU(cudaStreamSynchronize(sdl__cu.stream));
}

static void sdl__cu_copy(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev) {
    if (dst_dev == SDL_CUDA && src_dev != SDL_CUDA && bytes <= SDL__CU_GRAPH_CONST && bytes > 0 && sdl__cu_capturing()) {
        sdl__cu_const_bytes v; /* the core's small constants (the loss gradient's 1) become part of the graph */
        memset(&v, 0, sizeof v);
        memcpy(v.b, src, bytes);
        sdl__k_const_bytes<<<1, 32, 0, sdl__cu.stream>>>((unsigned char *)dst, v, (int)bytes);
        SDL__CU_LAUNCHED("sdl__k_const_bytes");
        return;
    }
    sdl__cu_copy_ok(dst, src, bytes, dst_dev, src_dev);
}

/* The arena: bump allocation in one block (several while a step outgrows it; reset merges
   them), and reset drops everything. Memory the core wants zeroed (gradients,
   sdl_arena_tensor_on) gets one cudaMemsetAsync per allocation; op outputs, saved data and
   the kernels' partial sums (sdl__cu_arena_alloc), which kernels write whole, are left as
   they are, and under SDL_DEBUG_POISON (the tests) start as NaN, so a kernel that leaves
   part of one unwritten shows. Blocks come from the registered table's alloc, so a test can
   count them. */
static bool sdl__cu_arena_add(size_t cap) {
    if (sdl__cu.nchunks == SDL__CU_MAX_CHUNKS) {
        sdl_fail(SDL_ERR_OOM, "cuda: device arena: too many blocks in one step");
        return false;
    }
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    char *p = be ? (char *)be->alloc(cap) : NULL;
    if (!p) return false;
    sdl__cu.chunk[sdl__cu.nchunks].base = p;
    sdl__cu.chunk[sdl__cu.nchunks].cap = cap;
    sdl__cu.nchunks++;
    sdl__cu.used = 0;
    sdl__cu.total_cap += cap;
    return true;
}

static void sdl__cu_arena_free(void) {
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    for (int i = 0; i < sdl__cu.nchunks; i++) {
        if (be) be->dealloc(sdl__cu.chunk[i].base);
        else sdl__cu_dealloc(sdl__cu.chunk[i].base);
    }
    sdl__cu.nchunks = 0;
    sdl__cu.used = sdl__cu.step_bytes = 0;
    sdl__cu.total_cap = 0;
}

static void *sdl__cu_arena_alloc(size_t bytes) {
    size_t need = (bytes + SDL__CU_ALIGN - 1) & ~(size_t)(SDL__CU_ALIGN - 1);
    if (need < bytes) { sdl_fail(SDL_ERR_OOM, "cuda: device arena: size overflow (%zu bytes)", bytes); return NULL; }
    if (need == 0) need = SDL__CU_ALIGN;
    int n = sdl__cu.nchunks;
    if (n == 0 || sdl__cu.chunk[n - 1].cap - sdl__cu.used < need) {
        if (sdl__cu_capturing()) {
            sdl__cu_graph_refuse("the device arena has to grow (run the step once before sdl_cuda_graph_begin, so it is big enough)");
            return NULL;
        }
        size_t cap = need > SDL_CUDA_ARENA_MIN ? need : SDL_CUDA_ARENA_MIN;
        if (sdl__cu.total_cap > cap) cap = sdl__cu.total_cap; /* grow geometrically */
        if (!sdl__cu_arena_add(cap)) return NULL;
        n = sdl__cu.nchunks;
    }
    void *p = sdl__cu.chunk[n - 1].base + sdl__cu.used;
    sdl__cu.used += need;
    sdl__cu.step_bytes += need;
#ifdef SDL_DEBUG_POISON
    SDL__CU(cudaMemsetAsync(p, 0xFF, need, sdl__cu.stream)); /* 0xFFFFFFFF is a NaN */
#endif
    return p;
}
static void *sdl__cu_arena_alloc_zeroed(size_t bytes) {
    void *p = sdl__cu_arena_alloc(bytes);
    if (p) sdl__cu_memset0(p, bytes);
    return p;
}

static void sdl__cu_arena_reset(void) {
    if (sdl__cu_capturing()) { sdl__cu_graph_refuse("sdl_arena_reset"); return; }
    if (sdl__cu.nchunks > 1) { /* several blocks: replace by one that holds what the step used
                                  (their sum could be twice that: they grow by doubling) */
        size_t total = sdl__cu.step_bytes;
        sdl__cu_arena_free();
        sdl__cu_arena_add(total);
    }
    sdl__cu.used = 0;
    sdl__cu.step_bytes = 0;
}

SDL_API size_t sdl_cuda_arena_capacity(void) { return sdl__cu.total_cap; }

SDL_API void *sdl_cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    if (!SDL__CU(cudaMallocHost(&p, bytes ? bytes : 1))) return NULL;
    return p;
}

SDL_API void sdl_cuda_host_free(void *p) {
    if (p) SDL__CU(cudaFreeHost(p));
}

/* ----------------------------------------------------------------------------------------
   >>cuda-kernels: shared helpers
   ---------------------------------------------------------------------------------------- */
#define SDL__CU_WARPS (SDL__CU_THREADS / 32)
/* one warp per row: blocks of SDL__CU_WARPS rows (the row loop is the same for every lane
   of a warp, so warp shuffles always see all 32 lanes) */
static unsigned sdl__cu_row_grid(int64_t rows) {
    int64_t b = (rows + SDL__CU_WARPS - 1) / SDL__CU_WARPS;
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}
#define SDL__CU_ROWS(r, R) \
    for (int64_t r = (int64_t)blockIdx.x * SDL__CU_WARPS + threadIdx.x / 32; r < (R); r += (int64_t)gridDim.x * SDL__CU_WARPS)

/* the sum over a block of SDL__CU_THREADS threads, in a fixed order; every thread gets it */
template <typename T>
static __device__ T sdl__cu_block_sum(T v, T *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = SDL__CU_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads();
    return r;
}

static __device__ float sdl__cu_block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = SDL__CU_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* n / d without a division instruction (a 64-bit division is tens of instructions on a GPU,
   a 32-bit one about twenty): q = (n m) >> s with m = ceil(2^s / d), s = 31 + ceil(log2 d),
   exact for 0 <= n < 2^31 and 1 <= d < 2^31 (Granlund and Montgomery's multiply-shift, as
   CUTLASS's FastDivmod; the error n (m d - 2^s) / (d 2^s) < n / 2^s < 1 / d never reaches the
   next multiple of d). The host makes one per divisor and launch, passing the largest n the
   kernel will divide: above 2^31 (huge tensors) m is 0 and the kernel divides in 64 bits. */
typedef struct sdl__cu_div { int64_t d; uint32_t m; int s; } sdl__cu_div;

static sdl__cu_div sdl__cu_div_make(int64_t d, int64_t nmax) {
    sdl__cu_div f;
    f.d = d < 1 ? 1 : d;
    f.m = 0;
    f.s = 0;
    if (f.d < ((int64_t)1 << 31) && nmax < ((int64_t)1 << 31)) {
        int l = 0;
        while (((int64_t)1 << l) < f.d) l++;
        f.s = 31 + l;
        f.m = (uint32_t)((((uint64_t)1 << f.s) + (uint64_t)f.d - 1) / (uint64_t)f.d); /* < 2^32 */
    }
    return f;
}
static __host__ __device__ int64_t sdl__cu_divq(const sdl__cu_div &f, int64_t n) {
    return f.m ? (int64_t)(((uint64_t)(uint32_t)n * f.m) >> f.s) : n / f.d;
}
/* q = n / d, returns n % d */
static __host__ __device__ int64_t sdl__cu_divmod(const sdl__cu_div &f, int64_t n, int64_t *q) {
    *q = sdl__cu_divq(f, n);
    return n - *q * f.d;
}

/* b broadcast into a (as sdl.h's sdl__bcast): for each dim of a its size, a's row-major
   stride, and b's stride (0 where b has size 1 or no such dim); div: the sizes as divisors
   for indices below numel(a) */
typedef struct sdl__cu_bcast {
    int nd;
    int64_t shape[SDL_MAX_DIMS], astride[SDL_MAX_DIMS], bstride[SDL_MAX_DIMS];
    sdl__cu_div div[SDL_MAX_DIMS];
} sdl__cu_bcast;

static sdl__cu_bcast sdl__cu_bcast_make(const sdl_tensor *a, const sdl_tensor *b) {
    sdl__cu_bcast bc;
    memset(&bc, 0, sizeof bc);
    bc.nd = a->ndim;
    int64_t bs = 1, as = 1;
    for (int i = a->ndim - 1; i >= 0; i--) {
        int bi = i - (a->ndim - b->ndim);
        bc.shape[i] = a->shape[i];
        bc.astride[i] = as;
        bc.bstride[i] = (bi >= 0 && b->shape[bi] != 1) ? bs : 0;
        bc.div[i] = sdl__cu_div_make(a->shape[i], a->numel);
        as *= a->shape[i];
        if (bi >= 0) bs *= b->shape[bi];
    }
    return bc;
}

/* true when b's index is a's index mod numel(b): b covers the trailing dims of a, so the
   reduction for db is a column sum of a viewed as (numel(a) / numel(b), numel(b)) */
static bool sdl__cu_bcast_trailing(const sdl__cu_bcast *bc) {
    bool reduced_seen = false;
    for (int d = bc->nd - 1; d >= 0; d--) {
        if (bc->shape[d] == 1) continue;
        if (bc->bstride[d] == 0) reduced_seen = true;
        else if (reduced_seen) return false;
    }
    return true;
}

static __device__ int64_t sdl__cu_bcast_index(const sdl__cu_bcast &bc, int64_t i) {
    int64_t j = 0;
    for (int d = bc.nd - 1; d >= 0 && i > 0; d--) {
        int64_t q, r = sdl__cu_divmod(bc.div[d], i, &q);
        j += r * bc.bstride[d];
        i = q;
    }
    return j;
}

/* db[c] += sum_r dy[r, c] (times a[r, c] when a is given); dy (R, C). Blocks of 32 x 8
   threads: blockIdx.x a tile of 32 columns (coalesced), blockIdx.y a slice of rows, whose
   sums (8 row strides, then the 8 in order) go to partial[slice, c], or straight into db when
   there is one slice. Then one thread per column adds the slices in order. The slice count
   depends only on R and C (a run repeats bit for bit) and gives about 2048 blocks: a GPT-2
   bias gradient (R 16384, C 768) is 24 column tiles x 85 slices, not 24 blocks. */
static __global__ void sdl__k_colsum(const float *dy, const float *a, int64_t R, int64_t C, int64_t rows, float *partial, float *db) {
    __shared__ float sh[8][33];
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x, r0 = (int64_t)blockIdx.y * rows, r1 = r0 + rows < R ? r0 + rows : R;
    float s = 0.0f;
    if (c < C)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += a ? dy[r * C + c] * a[r * C + c] : dy[r * C + c];
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t = 0.0f;
        for (int k = 0; k < 8; k++) t += sh[k][threadIdx.x];
        if (partial) partial[blockIdx.y * C + c] = t;
        else db[c] += t;
    }
}
static __global__ void sdl__k_colsum_slices(const float *partial, int64_t slices, int64_t C, float *db) {
    SDL__CU_LOOP(c, C) {
        float t = 0.0f;
        for (int64_t k = 0; k < slices; k++) t += partial[k * C + c];
        db[c] += t;
    }
}

/* the row slices of a column sum over (R, C) in blocks of 32 columns: about 2048 blocks, at
   least 64 rows a slice; depends only on R and C. Sets *rows, the rows of a slice. */
static int64_t sdl__cu_row_slices(int64_t R, int64_t C, int64_t *rows) {
    int64_t slices = (R + 63) / 64, most = 2048 / ((C + 31) / 32);
    if (slices > most) slices = most;
    if (slices < 1) slices = 1;
    *rows = (R + slices - 1) / slices;
    return (R + *rows - 1) / *rows;
}

static void sdl__cu_colsum(const float *dy, const float *a, int64_t R, int64_t C, float *db) {
    if (R <= 0 || C <= 0) return;
    int64_t rows, slices = sdl__cu_row_slices(R, C, &rows), tiles = (C + 31) / 32;
    float *partial = slices > 1 ? (float *)sdl__cu_arena_alloc((size_t)(slices * C) * sizeof(float)) : NULL;
    if (slices > 1 && !partial) return;
    sdl__k_colsum<<<dim3((unsigned)tiles, (unsigned)slices), dim3(32, 8), 0, sdl__cu.stream>>>(dy, a, R, C, rows, partial, db);
    if (!SDL__CU_LAUNCHED("sdl__k_colsum") || !partial) return;
    sdl__k_colsum_slices<<<sdl__cu_grid(C), SDL__CU_THREADS, 0, sdl__cu.stream>>>(partial, slices, C, db);
    SDL__CU_LAUNCHED("sdl__k_colsum_slices");
}

/* the general case: one block per element j of b sums the `per` elements of dy (times a)
   that broadcast from it */
static __global__ void sdl__k_bcast_reduce(const float *dy, const float *a, float *db, int64_t nb, int64_t per, sdl__cu_bcast bc) {
    __shared__ float sh[SDL__CU_THREADS];
    for (int64_t j = blockIdx.x; j < nb; j += gridDim.x) {
        int64_t base = 0;
        for (int d = 0; d < bc.nd; d++)
            if (bc.bstride[d]) base += ((j / bc.bstride[d]) % bc.shape[d]) * bc.astride[d];
        float s = 0.0f;
        for (int64_t k = threadIdx.x; k < per; k += blockDim.x) {
            int64_t i = base, kk = k;
            for (int d = bc.nd - 1; d >= 0; d--)
                if (!bc.bstride[d]) { i += (kk % bc.shape[d]) * bc.astride[d]; kk /= bc.shape[d]; }
            s += a ? dy[i] * a[i] : dy[i];
        }
        s = sdl__cu_block_sum(s, sh);
        if (threadIdx.x == 0) db[j] += s;
    }
}

/* two-stage sum in double, fixed order: per-block partial sums, then one block adds them.
   mode 0: x[i];  mode 1: (x[i] - t[i])^2;  mode 2: bce with logits x[i], target t[i] */
static __global__ void sdl__k_reduce_partial(const float *x, const float *t, int64_t n, int mode, double *partial) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    SDL__CU_LOOP(i, n) {
        double v = (double)x[i];
        if (mode == 1) v = sdl__mse_elem(x[i], t[i]);
        else if (mode == 2) v = sdl__bce_elem(x[i], t[i]);
        s += v;
    }
    s = sdl__cu_block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

/* out[0] = (float)(scale * sum of partial[0..np)); one block */
static __global__ void sdl__k_reduce_final(const double *partial, int64_t np, double scale, float *out) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < np; i += blockDim.x) s += partial[i];
    s = sdl__cu_block_sum(s, sh);
    if (threadIdx.x == 0) out[0] = (float)(s * scale);
}

static void sdl__cu_reduce(const float *x, const float *t, int64_t n, int mode, double scale, float *out) {
    unsigned g = sdl__cu_grid(n);
    if (g > 1024) g = 1024; /* depends only on n: the same order every run */
    double *partial = (double *)sdl__cu_arena_alloc((size_t)g * sizeof(double));
    if (!partial) return;
    sdl__k_reduce_partial<<<g, SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, t, n, mode, partial);
    if (!SDL__CU_LAUNCHED("sdl__k_reduce_partial")) return;
    sdl__k_reduce_final<<<1, SDL__CU_THREADS, 0, sdl__cu.stream>>>(partial, g, scale, out);
    SDL__CU_LAUNCHED("sdl__k_reduce_final");
}

/* ----------------------------------------------------------------------------------------
   >>cuda-gemm: row-major sdl_sgemm semantics on cuBLAS.
   cuBLAS is column-major. A row-major (r, c) matrix with leading dim ld is, read column-major
   with the same ld, its transpose (c, r). So row-major C = op(A) op(B) is column-major
   C^T = op(B)^T op(A)^T: call cuBLAS with A and B swapped, M and N swapped, and the same
   transpose flags (op(B)^T of the column-major view of B is op(B) read row-major).
   ---------------------------------------------------------------------------------------- */
static bool sdl__cu_gemm_lp(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, int64_t sA,
                            const float *B, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc, int64_t sC, int64_t batch); /* >>cuda-amp */
static void sdl__cu_gemm_batched_half_a(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *Ah, int64_t lda,
                                        int64_t sA, const float *B, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc,
                                        int64_t sC, int64_t batch); /* >>cuda-amp */
/* mixed precision's state (>>cuda-amp) */
static struct {
    sdl_dtype precision; /* SDL_F32, SDL_BF16, SDL_F16 */
    void *buf;           /* the converted inputs of the current GEMM: A's at the start */
    size_t cap;
    const float *a;      /* the A (and its span) whose copy is at buf's start */
    int64_t na;
    bool reuse_a;        /* set by sdl__cu_gemm_same_a for the next GEMM only */
} sdl__cu_amp = {SDL_F32, NULL, 0, NULL, 0, false};

/* the next GEMM's A is the previous GEMM's A, unchanged since: in bf16/fp16 it reads the copy
   that GEMM made instead of converting A again (linear's backward reads dY twice: for GPT-2's
   logits gradient that is a 3.3 GB pass saved) */
static void sdl__cu_gemm_same_a(void) { sdl__cu_amp.reuse_a = true; }
static void sdl__cu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                         const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) { sdl__cu_amp.reuse_a = false; return; }
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX) {
        sdl_fail(SDL_ERR_SHAPE, "cuda: gemm: a dimension exceeds INT_MAX (%lld x %lld x %lld)", (long long)M, (long long)N, (long long)K);
        sdl__cu_record(SDL_ERR_SHAPE);
        return;
    }
    if (sdl__cu_gemm_lp(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1)) return; /* bf16/fp16 */
    cublasComputeType_t compute = sdl__cu.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SDL__CUBLAS(cublasGemmEx(sdl__cu.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F, (int)lda,
                             &beta, C, CUDA_R_32F, (int)ldc, compute, CUBLAS_GEMM_DEFAULT));
}

/* ----------------------------------------------------------------------------------------
   >>cuda-ops: each op's kernels beside its backward, the same math as the CPU ones in sdl.h
   ---------------------------------------------------------------------------------------- */

/* >>ops-core (sdl.h's >>ops-core: linear, relu, add/mul, sum/mean) */

/* ---- linear: x (R, in), w (out, in), b (out) -> y (R, out)
   y = x w^T + b;  dx += dy w;  dw += dy^T x;  db += sum_rows dy */
static __global__ void sdl__k_fill_rows(float *y, const float *b, int64_t R, int64_t O) { /* a warp per row */
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) for (int64_t o = lane; o < O; o += 32) y[r * O + o] = b[o];
}

static void sdl__cu_linear_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = I ? x->numel / I : 0;
    float *y = sdl_f32(n->out);
    if (b && n->out->numel > 0) {
        sdl__k_fill_rows<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(y, sdl_f32(b), R, O);
        SDL__CU_LAUNCHED("sdl__k_fill_rows");
    }
    sdl__cu_gemm(false, true, R, O, I, 1.0f, sdl_f32(x), I, sdl_f32(w), I, b ? 1.0f : 0.0f, y, O);
}

static void sdl__cu_linear_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = I ? x->numel / I : 0;
    const float *dy = n->out->grad;
    if (x->requires_grad) sdl__cu_gemm(false, false, R, I, O, 1.0f, dy, O, sdl_f32(w), I, 1.0f, x->grad, I);
    if (w->requires_grad) {
        if (x->requires_grad) sdl__cu_gemm_same_a(); /* dy again */
        sdl__cu_gemm(true, false, O, I, R, 1.0f, dy, O, sdl_f32(x), I, 1.0f, w->grad, I);
    }
    if (b && b->requires_grad) sdl__cu_colsum(dy, NULL, R, O, b->grad);
}

/* ---- relu: y = max(x, 0);  dx += dy where x > 0 */
static __global__ void sdl__k_relu_fwd(const float *x, float *y, int64_t n) {
    SDL__CU_LOOP(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static __global__ void sdl__k_relu_bwd(const float *x, const float *dy, float *dx, int64_t n) {
    SDL__CU_LOOP(i, n) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}
static void sdl__cu_relu_fwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_relu_fwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), len);
    SDL__CU_LAUNCHED("sdl__k_relu_fwd");
}
static void sdl__cu_relu_bwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0 || !n->in[0]->requires_grad) return;
    sdl__k_relu_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), n->out->grad, n->in[0]->grad, len);
    SDL__CU_LAUNCHED("sdl__k_relu_bwd");
}

/* ---- add / mul with b broadcast into a
   y = a + b: da += dy, db += sum over broadcast dims of dy
   y = a * b: da += dy * b, db += sum over broadcast dims of dy * a */
static __global__ void sdl__k_binary_fwd(const float *a, const float *b, float *y, int64_t n, int mul, int same, sdl__cu_bcast bc) {
    SDL__CU_LOOP(i, n) {
        float bv = b[same ? i : sdl__cu_bcast_index(bc, i)];
        y[i] = mul ? a[i] * bv : a[i] + bv;
    }
}
static __global__ void sdl__k_binary_bwd_a(const float *dy, const float *b, float *da, int64_t n, int mul, int same, sdl__cu_bcast bc) {
    SDL__CU_LOOP(i, n) da[i] += mul ? dy[i] * b[same ? i : sdl__cu_bcast_index(bc, i)] : dy[i];
}
/* same shapes: db[i] += dy[i] (times a[i]) */
static __global__ void sdl__k_accumulate(const float *dy, const float *a, float *db, int64_t n) {
    SDL__CU_LOOP(i, n) db[i] += a ? dy[i] * a[i] : dy[i];
}

/* db += the reduction of dy (times a) over the dims where b broadcasts into a */
static void sdl__cu_bcast_grad(const sdl_tensor *at, const sdl_tensor *b, const float *dy, const float *a, float *db) {
    int64_t na = at->numel, nb = b->numel;
    if (na <= 0 || nb <= 0) return;
    if (na == nb) {
        sdl__k_accumulate<<<sdl__cu_grid(na), SDL__CU_THREADS, 0, sdl__cu.stream>>>(dy, a, db, na);
        SDL__CU_LAUNCHED("sdl__k_accumulate");
        return;
    }
    sdl__cu_bcast bc = sdl__cu_bcast_make(at, b);
    if (sdl__cu_bcast_trailing(&bc)) { sdl__cu_colsum(dy, a, na / nb, nb, db); return; }
    unsigned blocks = (unsigned)(nb > 65535 ? 65535 : nb);
    sdl__k_bcast_reduce<<<blocks, SDL__CU_THREADS, 0, sdl__cu.stream>>>(dy, a, db, nb, na / nb, bc);
    SDL__CU_LAUNCHED("sdl__k_bcast_reduce");
}

static void sdl__cu_binary_fwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    if (a->numel <= 0) return;
    sdl__cu_bcast bc = sdl__cu_bcast_make(a, b);
    sdl__k_binary_fwd<<<sdl__cu_grid(a->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(a), sdl_f32(b), sdl_f32(n->out), a->numel, n->op == SDL_OP_MUL, a->numel == b->numel, bc);
    SDL__CU_LAUNCHED("sdl__k_binary_fwd");
}

static void sdl__cu_binary_bwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    bool mul = n->op == SDL_OP_MUL;
    const float *dy = n->out->grad;
    if (a->numel <= 0) return;
    if (a->requires_grad) {
        sdl__cu_bcast bc = sdl__cu_bcast_make(a, b);
        sdl__k_binary_bwd_a<<<sdl__cu_grid(a->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            dy, sdl_f32(b), a->grad, a->numel, mul, a->numel == b->numel, bc);
        SDL__CU_LAUNCHED("sdl__k_binary_bwd_a");
    }
    if (b->requires_grad) sdl__cu_bcast_grad(a, b, dy, mul ? sdl_f32(a) : NULL, b->grad);
}

/* ---- sum / mean: y = sum_i x_i (times 1/n for mean); dx_i += dy (divided by n) */
static __global__ void sdl__k_sum_bwd(const float *dy, float *dx, int64_t n, float div) {
    float g = dy[0] / div;
    SDL__CU_LOOP(i, n) dx[i] += g;
}
static void sdl__cu_sum_fwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    double scale = n->op == SDL_OP_MEAN && len ? 1.0 / (double)len : 1.0;
    sdl__cu_reduce(sdl_f32(n->in[0]), NULL, len, 0, scale, sdl_f32(n->out));
}
static void sdl__cu_sum_bwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    if (len <= 0 || !n->in[0]->requires_grad) return;
    float div = n->op == SDL_OP_MEAN ? (float)len : 1.0f;
    sdl__k_sum_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(n->out->grad, n->in[0]->grad, len, div);
    SDL__CU_LAUNCHED("sdl__k_sum_bwd");
}

/* ----------------------------------------------------------------------------------------
   >>cuda-ops-more: helpers shared by the ops below
   ---------------------------------------------------------------------------------------- */
/* the sum over the 32 lanes of a warp (all lanes take part; each gets the same bits: the
   xor butterfly adds the same two values in every lane of a pair) */
template <typename T>
static __device__ T sdl__cu_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ float sdl__cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}


/* one block per item (channel, plane): at most 65535 blocks, the rest by a block-stride loop */
static unsigned sdl__cu_item_grid(int64_t items) {
    return (unsigned)(items < 1 ? 1 : items > 65535 ? 65535 : items);
}

/* A device buffer that ops reuse for temporary memory (im2col columns, optimizer partial
   sums). Kernels run in order on one stream, so an op's use of it starts after the previous
   op's kernels are done. It only grows, through the table's alloc (the tests count it). */
static void *sdl__cu_scratch(size_t bytes) {
    if (bytes <= sdl__cu.scratch_cap) return sdl__cu.scratch;
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    if (!be) return NULL;
    if (sdl__cu.scratch) be->dealloc(sdl__cu.scratch); /* waits for the stream first */
    sdl__cu.scratch = NULL;
    sdl__cu.scratch_cap = 0;
    size_t cap = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
    sdl__cu.scratch = be->alloc(cap);
    if (sdl__cu.scratch) sdl__cu.scratch_cap = cap;
    return sdl__cu.scratch;
}

/* Per-channel work on x (N, C, S) (batch norm, bias gradients) in chunks: channel c's N S
   values are cut into pn ranges of planes times ps ranges of columns, sp = pn ps chunks of
   about SDL__CU_CHUNK values, a number that depends on the shape only (so sums repeat bit for
   bit). Block b takes chunk b % sp of channel b / sp and walks it plane by plane: 2^lg
   threads over a plane's columns (contiguous), SDL__CU_THREADS >> lg planes at a time, so no
   thread divides per element. Sums over a channel: each block's partial in double to
   part[c sp + k], then one thread per channel adds its sp partials in order.
   ResNet-18 on CIFAR, batch 256: C = 64, N S = 262144 gives 64 chunks of 4 planes, 4096
   blocks (one per channel before); C = 512, S = 16 gives one chunk of 256 planes x 16
   columns per channel (16 planes at a time), 512 blocks. At most SDL__CU_CHUNKS_MAX chunks
   a channel (bigger chunks past that), so the finish adds few partials. */
#define SDL__CU_CHUNK 4096
#define SDL__CU_CHUNKS_MAX 1024

typedef struct sdl__cu_chunks { int64_t N, C, S, pn, ps, sp; int lg; } sdl__cu_chunks;
typedef struct sdl__cu_chunk { int64_t c, k, n0, n1, j0, j1; } sdl__cu_chunk; /* one block's */

static sdl__cu_chunks sdl__cu_chunks_make(int64_t N, int64_t C, int64_t S) {
    sdl__cu_chunks g;
    int64_t want = (N * S + SDL__CU_CHUNK - 1) / SDL__CU_CHUNK;
    if (want > SDL__CU_CHUNKS_MAX) want = SDL__CU_CHUNKS_MAX;
    g.N = N; g.C = C; g.S = S;
    g.pn = want < 1 ? 1 : want < N ? want : N;
    g.ps = (want + g.pn - 1) / g.pn;
    if (g.ps > S) g.ps = S;
    if (g.ps < 1) g.ps = 1;
    g.sp = g.pn * g.ps;
    int64_t cols = (S + g.ps - 1) / g.ps;
    g.lg = 0;
    while (((int64_t)1 << g.lg) < cols && ((int64_t)1 << g.lg) < SDL__CU_THREADS) g.lg++;
    return g;
}
static unsigned sdl__cu_chunk_grid(const sdl__cu_chunks &g) { return sdl__cu_item_grid(g.C * g.sp); }

static __host__ __device__ sdl__cu_chunk sdl__cu_chunk_at(const sdl__cu_chunks &g, int64_t b) {
    sdl__cu_chunk r;
    r.c = b / g.sp;
    r.k = b % g.sp;
    int64_t pi = r.k / g.ps, si = r.k % g.ps;
    r.n0 = g.N * pi / g.pn; r.n1 = g.N * (pi + 1) / g.pn;
    r.j0 = g.S * si / g.ps; r.j1 = g.S * (si + 1) / g.ps;
    return r;
}
/* the loops over this thread's values of chunk r: x[base + j] */
#define SDL__CU_CHUNK_LOOP(g, r, base, j)                                                                   \
    for (int64_t n_ = (r).n0 + (threadIdx.x >> (g).lg); n_ < (r).n1; n_ += SDL__CU_THREADS >> (g).lg)       \
        for (int64_t base = (n_ * (g).C + (r).c) * (g).S, j = (r).j0 + (threadIdx.x & ((1 << (g).lg) - 1)); \
             j < (r).j1; j += (int64_t)1 << (g).lg)

/* part[c sp + k] = (sum of dy, sum of dy xhat) over chunk k of channel c, xhat = (x - mean)
   rstd (x NULL: the first only; part2 NULL then) */
static __global__ void sdl__k_chan_dsums(const float *dy, const float *x, const float *mean, const float *rstd,
                                         sdl__cu_chunks g, double *part, double *part2) {
    __shared__ double sh[SDL__CU_THREADS];
    for (int64_t b = blockIdx.x; b < g.C * g.sp; b += gridDim.x) {
        sdl__cu_chunk r = sdl__cu_chunk_at(g, b);
        double s = 0.0, sx = 0.0;
        if (x) {
            float mc = mean[r.c], rc = rstd[r.c];
            SDL__CU_CHUNK_LOOP(g, r, base, j) {
                s += dy[base + j];
                sx += (double)dy[base + j] * ((x[base + j] - mc) * rc);
            }
        } else {
            SDL__CU_CHUNK_LOOP(g, r, base, j) s += dy[base + j];
        }
        s = sdl__cu_block_sum(s, sh);
        if (x) sx = sdl__cu_block_sum(sx, sh);
        if (threadIdx.x == 0) {
            part[b] = s;
            if (part2) part2[b] = sx;
        }
    }
}

/* out[c] += sum over i < N, j < S of x[(i C + c) S + j] (a bias gradient), summed in double */
static __global__ void sdl__k_chan_sum_finish(const double *part, int64_t C, int64_t sp, float *out) {
    SDL__CU_LOOP(c, C) {
        double s = 0.0;
        for (int64_t k = 0; k < sp; k++) s += part[c * sp + k];
        out[c] += (float)s;
    }
}
static void sdl__cu_chan_sum(const float *x, int64_t N, int64_t C, int64_t S, float *out) {
    if (N * S <= 0 || C <= 0) return;
    sdl__cu_chunks g = sdl__cu_chunks_make(N, C, S);
    double *part = (double *)sdl__cu_arena_alloc((size_t)(C * g.sp) * sizeof(double));
    if (!part) return;
    sdl__k_chan_dsums<<<sdl__cu_chunk_grid(g), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, NULL, NULL, NULL, g, part, NULL);
    if (!SDL__CU_LAUNCHED("sdl__k_chan_dsums")) return;
    sdl__k_chan_sum_finish<<<sdl__cu_grid(C), SDL__CU_THREADS, 0, sdl__cu.stream>>>(part, C, g.sp, out);
    SDL__CU_LAUNCHED("sdl__k_chan_sum_finish");
}

/* a batch of row-major GEMMs: C_i = alpha op(A_i) op(B_i) + beta C_i, X_i = X + i * sX
   (a stride may be 0: the same matrix for every i). The same swap as sdl__cu_gemm. */
static void sdl__cu_gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                 const float *A, int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB,
                                 float beta, float *C, int64_t ldc, int64_t sC, int64_t batch) {
    if (M <= 0 || N <= 0 || batch <= 0) { sdl__cu_amp.reuse_a = false; return; }
    if (batch == 1) { sdl__cu_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX || batch > INT_MAX) {
        sdl_fail(SDL_ERR_SHAPE, "cuda: batched gemm: a dimension exceeds INT_MAX (%lld x %lld x %lld, batch %lld)",
                 (long long)M, (long long)N, (long long)K, (long long)batch);
        sdl__cu_record(SDL_ERR_SHAPE);
        return;
    }
    if (sdl__cu_gemm_lp(ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch)) return; /* bf16/fp16 */
    cublasComputeType_t compute = sdl__cu.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SDL__CUBLAS(cublasGemmStridedBatchedEx(sdl__cu.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, (long long)sB,
                                           A, CUDA_R_32F, (int)lda, (long long)sA, &beta, C, CUDA_R_32F, (int)ldc,
                                           (long long)sC, (int)batch, compute, CUBLAS_GEMM_DEFAULT));
}

/* >>ops-conv */

/* ---- conv2d and conv_transpose2d through im2col and cuBLAS.
   Geometry as sdl.h's sdl__geom: an image (C, H, W) read through KH x KW windows with stride
   (sh, sw) and zero padding (ph, pw) at the OH x OW grid points; Kc = C KH KW, P = OH OW.
   The columns of nb samples are laid out "wide", col (Kc, nb, P): row r = (c KH + i) KW + j,
   sample s's (Kc, P) block starts at s P with leading dim nb P. So the weight gradient of a
   whole chunk of samples is one GEMM (K = nb P), and the per-sample products are one
   strided-batched GEMM.
   conv:      y_s = W (O, Kc) @ col_s + bias;  dW += dy (O, nb P) @ col^T;
              dx += col2im(W^T @ dy)                       (dy permuted to (O, nb, P) first)
   transpose: y = col2im(W^T (Kc, O) @ x_s) + bias;  col = im2col(dy);
              dW += x (O, nb P) @ col^T;  dx_s += W @ col_s  (x permuted to (O, nb, P) first)
   col2im gathers (each image element sums the window entries that read it, in the CPU's
   (i, j) order): no atomics, the same bits every run. Bias gradients: sdl__k_chan_sum. */
typedef struct sdl__cu_geom { int64_t C, H, W, KH, KW, OH, OW, sh, sw, ph, pw; } sdl__cu_geom;
/* the divisors of one im2col/col2im launch over nb samples (sdl__cu_div) */
typedef struct sdl__cu_conv_div { sdl__cu_div P, nb, KK, KW, OW, W, H, C, sh, sw; } sdl__cu_conv_div;

static sdl__cu_conv_div sdl__cu_conv_div_make(const sdl__cu_geom *g, int64_t nb) {
    int64_t P = g->OH * g->OW, KK = g->KH * g->KW, cols = g->C * KK * nb * P, img = nb * g->C * g->H * g->W;
    int64_t lim = (cols > img ? cols : img) + g->ph + g->pw; /* the largest index either kernel divides */
    sdl__cu_conv_div d;
    d.P = sdl__cu_div_make(P, lim); d.nb = sdl__cu_div_make(nb, lim); d.KK = sdl__cu_div_make(KK, lim);
    d.KW = sdl__cu_div_make(g->KW, lim); d.OW = sdl__cu_div_make(g->OW, lim); d.W = sdl__cu_div_make(g->W, lim);
    d.H = sdl__cu_div_make(g->H, lim); d.C = sdl__cu_div_make(g->C, lim);
    d.sh = sdl__cu_div_make(g->sh, lim); d.sw = sdl__cu_div_make(g->sw, lim);
    return d;
}

/* col (Kc, nb, P) from x (nb, C, H, W): one thread per entry (row r = c KK + i KW + j,
   sample s, grid point p = oh OW + ow) */
static __global__ void sdl__k_im2col(const float *x, sdl__cu_geom g, sdl__cu_conv_div d, int64_t nb, float *col) {
    int64_t P = g.OH * g.OW, n = g.C * g.KH * g.KW * nb * P;
    SDL__CU_LOOP(idx, n) {
        int64_t t, r, c, k, i, oh;
        int64_t p = sdl__cu_divmod(d.P, idx, &t), s = sdl__cu_divmod(d.nb, t, &r);
        k = sdl__cu_divmod(d.KK, r, &c);
        int64_t j = sdl__cu_divmod(d.KW, k, &i), ow = sdl__cu_divmod(d.OW, p, &oh);
        int64_t ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
        col[idx] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[((s * g.C + c) * g.H + ih) * g.W + iw] : 0.0f;
    }
}

/* img (nb, C, H, W) = (add ? img : bias ? bias[c] : 0) + the col entries that read it: for
   row h the kernel rows i = (h + ph) mod sh, then every sh-th, read grid row oh = (h + ph - i)
   / sh (one division per element; (i, j) in increasing order, as the CPU adds them) */
static __global__ void sdl__k_col2im(const float *col, sdl__cu_geom g, sdl__cu_conv_div d, int64_t nb, const float *bias, int add, float *img) {
    int64_t P = g.OH * g.OW, n = nb * g.C * g.H * g.W;
    SDL__CU_LOOP(idx, n) {
        int64_t t, u, s, c, h, qh, qw;
        int64_t w = sdl__cu_divmod(d.W, idx, &t);
        h = sdl__cu_divmod(d.H, t, &u);
        c = sdl__cu_divmod(d.C, u, &s);
        int64_t i0 = sdl__cu_divmod(d.sh, h + g.ph, &qh), j0 = sdl__cu_divmod(d.sw, w + g.pw, &qw);
        float sum = 0.0f;
        for (int64_t i = i0, oh = qh; i < g.KH && oh >= 0; i += g.sh, oh--) {
            if (oh >= g.OH) continue;
            for (int64_t j = j0, ow = qw; j < g.KW && ow >= 0; j += g.sw, ow--)
                if (ow < g.OW) sum += col[(((c * g.KH + i) * g.KW + j) * nb + s) * P + oh * g.OW + ow];
        }
        img[idx] = (add ? img[idx] : bias ? bias[c] : 0.0f) + sum;
    }
}

/* dst (O, nb, P) = src (nb, O, P) permuted */
static __global__ void sdl__k_to_wide(const float *src, int64_t nb, int64_t O, int64_t P, sdl__cu_div dP, sdl__cu_div dnb, float *dst) {
    SDL__CU_LOOP(idx, nb * O * P) {
        int64_t t, o;
        int64_t p = sdl__cu_divmod(dP, idx, &t), s = sdl__cu_divmod(dnb, t, &o);
        dst[idx] = src[(s * O + o) * P + p];
    }
}

/* y (N, C, P) = bias[c] over its n elements */
static __global__ void sdl__k_fill_chan(float *y, const float *bias, int64_t n, sdl__cu_div dP, sdl__cu_div dC) {
    SDL__CU_LOOP(i, n) {
        int64_t q;
        y[i] = bias[sdl__cu_divmod(dC, sdl__cu_divq(dP, i), &q)];
    }
}

#ifndef SDL_CUDA_CONV_SCRATCH
#define SDL_CUDA_CONV_SCRATCH ((size_t)256 << 20) /* bytes of im2col scratch per chunk of samples */
#endif

typedef struct sdl__cu_conv {
    sdl__cu_geom g;
    bool transpose;
    int64_t O, Kc, P, N, nb; /* conv: C_out, C_in KH KW, OH OW; transpose: C_in, C_out KH KW, H W */
    int64_t in_sz, out_sz;   /* floats per sample of x and of y */
    float *col, *col2, *wide;
} sdl__cu_conv;

/* the geometry, and scratch for chunks of nb samples: ncol wide column buffers and, with
   wide, an (O, nb, P) buffer */
static bool sdl__cu_conv_init(sdl__cu_conv *j, sdl_node *n, int ncol, bool wide) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    memset(j, 0, sizeof *j);
    j->transpose = n->op == SDL_OP_CONV_TRANSPOSE2D;
    sdl_tensor *img = j->transpose ? y : x, *grid = j->transpose ? x : y;
    j->g.C = img->shape[1]; j->g.H = img->shape[2]; j->g.W = img->shape[3];
    j->g.KH = w->shape[2]; j->g.KW = w->shape[3];
    j->g.OH = grid->shape[2]; j->g.OW = grid->shape[3];
    j->g.sh = n->attr.conv.stride_h; j->g.sw = n->attr.conv.stride_w;
    j->g.ph = n->attr.conv.pad_h; j->g.pw = n->attr.conv.pad_w;
    j->O = w->shape[0];
    j->Kc = w->shape[1] * j->g.KH * j->g.KW;
    j->P = j->g.OH * j->g.OW;
    j->N = x->shape[0];
    j->in_sz = j->N ? x->numel / j->N : 0;
    j->out_sz = j->N ? y->numel / j->N : 0;
    int64_t per = (ncol * j->Kc + (wide ? j->O : 0)) * j->P; /* floats per sample */
    if (per <= 0 || j->N <= 0) return false;
    int64_t fit = (int64_t)(SDL_CUDA_CONV_SCRATCH / sizeof(float)) / per;
    j->nb = fit < 1 ? 1 : fit > j->N ? j->N : fit;
    float *s = (float *)sdl__cu_scratch((size_t)(per * j->nb) * sizeof(float));
    if (!s) return false;
    j->col = s;
    j->col2 = ncol > 1 ? s + j->Kc * j->nb * j->P : NULL;
    j->wide = wide ? s + ncol * j->Kc * j->nb * j->P : NULL;
    return true;
}

static void sdl__cu_im2col(const sdl__cu_conv *j, const float *img, int64_t nb, float *col) {
    sdl__k_im2col<<<sdl__cu_grid(j->Kc * nb * j->P), SDL__CU_THREADS, 0, sdl__cu.stream>>>(img, j->g, sdl__cu_conv_div_make(&j->g, nb), nb, col);
    SDL__CU_LAUNCHED("sdl__k_im2col");
}
static void sdl__cu_col2im(const sdl__cu_conv *j, const float *col, int64_t nb, const float *bias, int add, float *img) {
    sdl__k_col2im<<<sdl__cu_grid(nb * j->g.C * j->g.H * j->g.W), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        col, j->g, sdl__cu_conv_div_make(&j->g, nb), nb, bias, add, img);
    SDL__CU_LAUNCHED("sdl__k_col2im");
}
static void sdl__cu_to_wide(const float *src, int64_t nb, int64_t O, int64_t P, float *dst) {
    int64_t n = nb * O * P;
    sdl__k_to_wide<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(src, nb, O, P, sdl__cu_div_make(P, n), sdl__cu_div_make(nb, n), dst);
    SDL__CU_LAUNCHED("sdl__k_to_wide");
}

static void sdl__cu_conv_fwd(sdl_node *n) {
    sdl__cu_conv j;
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL, *y = n->out;
    if (y->numel <= 0 || !sdl__cu_conv_init(&j, n, 1, false)) return;
    const float *W = sdl_f32(w);
    if (!j.transpose && b) {
        sdl__k_fill_chan<<<sdl__cu_grid(y->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            sdl_f32(y), sdl_f32(b), y->numel, sdl__cu_div_make(j.P, y->numel), sdl__cu_div_make(j.O, y->numel));
        if (!SDL__CU_LAUNCHED("sdl__k_fill_chan")) return;
    }
    for (int64_t s0 = 0; s0 < j.N; s0 += j.nb) {
        int64_t nb = j.N - s0 < j.nb ? j.N - s0 : j.nb, wP = nb * j.P;
        const float *xs = sdl_f32(x) + s0 * j.in_sz;
        float *ys = sdl_f32(y) + s0 * j.out_sz;
        if (!j.transpose) {
            sdl__cu_im2col(&j, xs, nb, j.col);
            sdl__cu_gemm_batched(false, false, j.O, j.P, j.Kc, 1.0f, W, j.Kc, 0, j.col, wP, j.P, b ? 1.0f : 0.0f, ys, j.P, j.out_sz, nb);
        } else {
            sdl__cu_gemm_batched(true, false, j.Kc, j.P, j.O, 1.0f, W, j.Kc, 0, xs, j.P, j.in_sz, 0.0f, j.col, wP, j.P, nb);
            sdl__cu_col2im(&j, j.col, nb, b ? sdl_f32(b) : NULL, 0, ys);
        }
    }
}

static void sdl__cu_conv_bwd(sdl_node *n) {
    sdl__cu_conv j;
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL, *y = n->out;
    const float *dy = y->grad;
    if (y->numel <= 0) return;
    if (b && b->requires_grad) {
        int64_t N = y->shape[0], C = y->shape[1];
        sdl__cu_chan_sum(dy, N, C, y->numel / (N * C), b->grad);
    }
    if (!x->requires_grad && !w->requires_grad) return;
    if (!sdl__cu_conv_init(&j, n, 2, true)) return;
    const float *W = sdl_f32(w);
    for (int64_t s0 = 0; s0 < j.N; s0 += j.nb) {
        int64_t nb = j.N - s0 < j.nb ? j.N - s0 : j.nb, wP = nb * j.P;
        const float *xs = sdl_f32(x) + s0 * j.in_sz, *dys = dy + s0 * j.out_sz;
        float *dxs = x->requires_grad ? x->grad + s0 * j.in_sz : NULL;
        if (!j.transpose) {
            sdl__cu_to_wide(dys, nb, j.O, j.P, j.wide);
            if (w->requires_grad) {
                sdl__cu_im2col(&j, xs, nb, j.col);
                sdl__cu_gemm(false, true, j.O, j.Kc, wP, 1.0f, j.wide, wP, j.col, wP, 1.0f, w->grad, j.Kc);
            }
            if (dxs) {
                sdl__cu_gemm(true, false, j.Kc, wP, j.O, 1.0f, W, j.Kc, j.wide, wP, 0.0f, j.col2, wP);
                sdl__cu_col2im(&j, j.col2, nb, NULL, 1, dxs);
            }
        } else {
            sdl__cu_im2col(&j, dys, nb, j.col);
            if (w->requires_grad) {
                sdl__cu_to_wide(xs, nb, j.O, j.P, j.wide);
                sdl__cu_gemm(false, true, j.O, j.Kc, wP, 1.0f, j.wide, wP, j.col, wP, 1.0f, w->grad, j.Kc);
            }
            if (dxs) sdl__cu_gemm_batched(false, false, j.O, j.P, j.Kc, 1.0f, W, j.Kc, 0, j.col, wP, j.P, 1.0f, dxs, j.P, j.in_sz, nb);
        }
    }
}

/* ---- pooling over each (n, c) plane: x (N, C, H, W) -> y (N, C, OH, OW), one thread per
   output (forward) or per input element (backward: it gathers from the windows that cover
   it, in the CPU's order, so no two threads write one float).
   max: y = max over the window (padding never wins; the first of ties; a NaN wins), the
        arg-max (index in the plane) saved as i32;  dx[argmax] += dy
   avg: y = window sum / (k k) (padding counts);  dx += dy / (k k) over the window */
typedef struct sdl__cu_pool {
    int64_t H, W, OH, OW, k, s, p;
    sdl__cu_div dH, dW, dOH, dOW, ds; /* for indices below max(numel(x), numel(y)) + k + p */
} sdl__cu_pool;

static __global__ void sdl__k_pool_fwd(const float *x, float *y, int32_t *arg, int64_t n, sdl__cu_pool g, int is_max) {
    const float inv = 1.0f / (float)(g.k * g.k);
    SDL__CU_LOOP(idx, n) {
        int64_t t, oh, pl;
        int64_t ow = sdl__cu_divmod(g.dOW, idx, &t);
        oh = sdl__cu_divmod(g.dOH, t, &pl);
        const float *xp = x + pl * g.H * g.W;
        int64_t h0 = oh * g.s - g.p, w0 = ow * g.s - g.p;
        int64_t h1 = h0 + g.k < g.H ? h0 + g.k : g.H, w1 = w0 + g.k < g.W ? w0 + g.k : g.W;
        if (h0 < 0) h0 = 0;
        if (w0 < 0) w0 = 0;
        if (is_max) {
            int64_t best = h0 * g.W + w0;
            float m = xp[best];
            bool nan = m != m;
            for (int64_t h = h0; h < h1 && !nan; h++)
                for (int64_t w = w0; w < w1; w++) {
                    float v = xp[h * g.W + w];
                    if (v != v) { best = h * g.W + w; m = v; nan = true; break; }
                    if (v > m) { best = h * g.W + w; m = v; }
                }
            y[idx] = m;
            arg[idx] = (int32_t)best;
        } else {
            float sum = 0.0f;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) sum += xp[h * g.W + w];
            y[idx] = sum * inv;
        }
    }
}

static __global__ void sdl__k_pool_bwd(const float *dy, const int32_t *arg, float *dx, int64_t n, sdl__cu_pool g, int is_max) {
    const float inv = 1.0f / (float)(g.k * g.k);
    SDL__CU_LOOP(idx, n) {
        int64_t t, h, pl;
        int64_t w = sdl__cu_divmod(g.dW, idx, &t);
        h = sdl__cu_divmod(g.dH, t, &pl);
        /* the windows oh with oh s - p <= h < oh s - p + k */
        int64_t lo_h = h + g.p - g.k + 1, lo_w = w + g.p - g.k + 1;
        int64_t oh0 = lo_h <= 0 ? 0 : sdl__cu_divq(g.ds, lo_h + g.s - 1), ow0 = lo_w <= 0 ? 0 : sdl__cu_divq(g.ds, lo_w + g.s - 1);
        int64_t oh1 = sdl__cu_divq(g.ds, h + g.p), ow1 = sdl__cu_divq(g.ds, w + g.p);
        if (oh1 > g.OH - 1) oh1 = g.OH - 1;
        if (ow1 > g.OW - 1) ow1 = g.OW - 1;
        const float *dyp = dy + pl * g.OH * g.OW;
        const int32_t *ap = is_max ? arg + pl * g.OH * g.OW : NULL;
        float sum = 0.0f;
        bool any = false;
        for (int64_t oh = oh0; oh <= oh1; oh++)
            for (int64_t ow = ow0; ow <= ow1; ow++) {
                int64_t o = oh * g.OW + ow;
                if (is_max) {
                    if (ap[o] == (int32_t)(h * g.W + w)) { sum += dyp[o]; any = true; }
                } else {
                    sum += dyp[o] * inv;
                    any = true;
                }
            }
        if (any) dx[idx] += sum;
    }
}

static sdl__cu_pool sdl__cu_pool_geom(const sdl_node *n) {
    sdl__cu_pool g;
    g.H = n->in[0]->shape[2]; g.W = n->in[0]->shape[3];
    g.OH = n->out->shape[2]; g.OW = n->out->shape[3];
    g.k = n->attr.pool.kernel_h; g.s = n->attr.pool.stride_h; g.p = n->attr.pool.pad_h;
    int64_t lim = (n->in[0]->numel > n->out->numel ? n->in[0]->numel : n->out->numel) + g.k + g.p;
    g.dH = sdl__cu_div_make(g.H, lim); g.dW = sdl__cu_div_make(g.W, lim);
    g.dOH = sdl__cu_div_make(g.OH, lim); g.dOW = sdl__cu_div_make(g.OW, lim);
    g.ds = sdl__cu_div_make(g.s, lim);
    return g;
}
static void sdl__cu_pool_fwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    int is_max = n->op == SDL_OP_MAX_POOL2D;
    sdl__k_pool_fwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(n->in[0]), sdl_f32(n->out), is_max ? (int32_t *)n->saved : NULL, len, sdl__cu_pool_geom(n), is_max);
    SDL__CU_LAUNCHED("sdl__k_pool_fwd");
}
static void sdl__cu_pool_bwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    if (len <= 0 || n->out->numel <= 0 || !n->in[0]->requires_grad) return;
    int is_max = n->op == SDL_OP_MAX_POOL2D;
    sdl__k_pool_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        n->out->grad, is_max ? (const int32_t *)n->saved : NULL, n->in[0]->grad, len, sdl__cu_pool_geom(n), is_max);
    SDL__CU_LAUNCHED("sdl__k_pool_bwd");
}

/* ---- global average pool: x (N, C, H, W) -> y (N, C);  y = mean over H W (a warp per
   plane);  dx += dy / (H W) */
static __global__ void sdl__k_gap_fwd(const float *x, float *y, int64_t planes, int64_t hw) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, planes) {
        float s = 0.0f;
        for (int64_t i = lane; i < hw; i += 32) s += x[r * hw + i];
        s = sdl__cu_warp_sum(s);
        if (lane == 0) y[r] = s / (float)hw;
    }
}
static __global__ void sdl__k_gap_bwd(const float *dy, float *dx, int64_t n, sdl__cu_div hw) {
    SDL__CU_LOOP(i, n) dx[i] += dy[sdl__cu_divq(hw, i)] / (float)hw.d;
}
static void sdl__cu_gap_fwd(sdl_node *n) {
    int64_t planes = n->out->numel, hw = planes ? n->in[0]->numel / planes : 0;
    if (planes <= 0 || hw <= 0) return;
    sdl__k_gap_fwd<<<sdl__cu_row_grid(planes), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), planes, hw);
    SDL__CU_LAUNCHED("sdl__k_gap_fwd");
}
static void sdl__cu_gap_bwd(sdl_node *n) {
    int64_t planes = n->out->numel, len = n->in[0]->numel, hw = planes ? len / planes : 0;
    if (len <= 0 || hw <= 0 || !n->in[0]->requires_grad) return;
    sdl__k_gap_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(n->out->grad, n->in[0]->grad, len, sdl__cu_div_make(hw, len));
    SDL__CU_LAUNCHED("sdl__k_gap_bwd");
}

/* >>ops-norm */

/* ---- batch norm: x (N, C) or (N, C, H, W), per channel c over its M = N S values (as
   sdl.h): xhat = (x - mean) rstd, y = gamma xhat + beta; training uses the batch mean and
   biased var (sums in double) and moves the running stats with the unbiased var; eval uses
   the running stats. saved: mean (C), rstd (C).
   dbeta += sum dy;  dgamma += sum dy xhat;
   dx += gamma rstd (dy - mean(dy) - xhat mean(dy xhat))   (eval: without the two means)
   In chunks (sdl__cu_chunks above), three launches each way:
   forward:  stats (training: each chunk's count, sum and sum of squares about its own mean),
             finish (one thread per channel merges its chunks in order, as Chan et al.:
             M2 = sum_k (M2_k + n_k (mean_k - mean)^2), the CPU's two-pass var in double;
             mean, rstd, the running stats), apply (y per chunk)
   backward: sums (sdl__k_chan_dsums: dy, dy xhat), finish (dgamma, dbeta, and the two means
             for dx), apply (dx per chunk) */
static __global__ void sdl__k_bn_stats(const float *x, sdl__cu_chunks g, double *part) {
    __shared__ double sh[SDL__CU_THREADS];
    for (int64_t b = blockIdx.x; b < g.C * g.sp; b += gridDim.x) {
        sdl__cu_chunk r = sdl__cu_chunk_at(g, b);
        double cnt = (double)((r.n1 - r.n0) * (r.j1 - r.j0)), s = 0.0, v = 0.0;
        SDL__CU_CHUNK_LOOP(g, r, base, j) s += x[base + j];
        s = sdl__cu_block_sum(s, sh);
        double mu = cnt > 0.0 ? s / cnt : 0.0;
        SDL__CU_CHUNK_LOOP(g, r, base, j) {
            double d = x[base + j] - mu;
            v += d * d;
        }
        v = sdl__cu_block_sum(v, sh);
        if (threadIdx.x == 0) { part[3 * b] = cnt; part[3 * b + 1] = s; part[3 * b + 2] = v; }
    }
}
/* part NULL: eval, the running stats */
static __global__ void sdl__k_bn_finish(const double *part, int64_t C, int64_t sp, int64_t M, float *mean, float *rstd,
                                        float *rm, float *rv, double mom, double eps) {
    SDL__CU_LOOP(c, C) {
        double mu, var;
        if (part) {
            const double *p = part + 3 * c * sp;
            double s = 0.0, v = 0.0;
            for (int64_t k = 0; k < sp; k++) s += p[3 * k + 1];
            mu = s / (double)M;
            for (int64_t k = 0; k < sp; k++) {
                double d = p[3 * k] > 0.0 ? p[3 * k + 1] / p[3 * k] - mu : 0.0;
                v += p[3 * k + 2] + p[3 * k] * d * d;
            }
            var = v / (double)M;
            if (rm) rm[c] = (float)((1.0 - mom) * rm[c] + mom * mu);
            if (rv) rv[c] = (float)((1.0 - mom) * rv[c] + mom * v / (double)(M - 1));
        } else {
            mu = rm[c];
            var = rv[c];
        }
        mean[c] = (float)mu;
        rstd[c] = (float)(1.0 / sqrt(var + eps));
    }
}
static __global__ void sdl__k_bn_apply(const float *x, const float *gm, const float *bt, const float *mean, const float *rstd,
                                       sdl__cu_chunks g, float *y) {
    for (int64_t b = blockIdx.x; b < g.C * g.sp; b += gridDim.x) {
        sdl__cu_chunk r = sdl__cu_chunk_at(g, b);
        float mc = mean[r.c], rc = rstd[r.c];
        float gc = gm ? gm[r.c] * rc : rc, bc = bt ? bt[r.c] : 0.0f;
        SDL__CU_CHUNK_LOOP(g, r, base, j) y[base + j] = gc * (x[base + j] - mc) + bc;
    }
}
/* coef[c] = mean(dy), coef[C + c] = mean(dy xhat) (0 in eval) */
static __global__ void sdl__k_bn_bwd_finish(const double *sdy, const double *sdyx, int64_t C, int64_t sp, int64_t M,
                                            int training, float *dg, float *db, float *coef) {
    SDL__CU_LOOP(c, C) {
        double s = 0.0, sx = 0.0;
        if (sdy)
            for (int64_t k = 0; k < sp; k++) { s += sdy[c * sp + k]; sx += sdyx[c * sp + k]; }
        if (dg) dg[c] += (float)sx;
        if (db) db[c] += (float)s;
        coef[c] = training ? (float)(s / (double)M) : 0.0f;
        coef[C + c] = training ? (float)(sx / (double)M) : 0.0f;
    }
}
static __global__ void sdl__k_bn_bwd_apply(const float *x, const float *gm, const float *dy, const float *mean, const float *rstd,
                                           const float *coef, sdl__cu_chunks g, float *dx) {
    for (int64_t b = blockIdx.x; b < g.C * g.sp; b += gridDim.x) {
        sdl__cu_chunk r = sdl__cu_chunk_at(g, b);
        float mc = mean[r.c], rc = rstd[r.c], a = coef[r.c], bb = coef[g.C + r.c];
        float k0 = gm ? gm[r.c] * rc : rc;
        SDL__CU_CHUNK_LOOP(g, r, base, j) dx[base + j] += k0 * (dy[base + j] - a - (x[base + j] - mc) * rc * bb);
    }
}
static void sdl__cu_bn_dims(const sdl_tensor *x, int64_t *N, int64_t *C, int64_t *S) {
    *N = x->shape[0];
    *C = x->shape[1];
    *S = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}
static void sdl__cu_bn_fwd(sdl_node *n) {
    int64_t N, C, S;
    sdl__cu_bn_dims(n->in[0], &N, &C, &S);
    if (N * C * S <= 0) return;
    sdl_tensor *rm = n->attr.norm.running_mean, *rv = n->attr.norm.running_var;
    float *mean = (float *)n->saved;
    const float *x = sdl_f32(n->in[0]);
    sdl__cu_chunks g = sdl__cu_chunks_make(N, C, S);
    double *part = NULL;
    if (n->attr.norm.training) {
        part = (double *)sdl__cu_arena_alloc((size_t)(3 * C * g.sp) * sizeof(double));
        if (!part) return;
        sdl__k_bn_stats<<<sdl__cu_chunk_grid(g), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, g, part);
        if (!SDL__CU_LAUNCHED("sdl__k_bn_stats")) return;
    }
    sdl__k_bn_finish<<<sdl__cu_grid(C), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        part, C, g.sp, N * S, mean, mean + C, rm ? sdl_f32(rm) : NULL, rv ? sdl_f32(rv) : NULL,
        (double)n->attr.norm.momentum, (double)n->attr.norm.eps);
    if (!SDL__CU_LAUNCHED("sdl__k_bn_finish")) return;
    sdl__k_bn_apply<<<sdl__cu_chunk_grid(g), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        x, n->nin > 1 ? sdl_f32(n->in[1]) : NULL, n->nin > 2 ? sdl_f32(n->in[2]) : NULL, mean, mean + C, g, sdl_f32(n->out));
    SDL__CU_LAUNCHED("sdl__k_bn_apply");
}
static void sdl__cu_bn_bwd(sdl_node *n) {
    int64_t N, C, S;
    sdl_tensor *x = n->in[0], *g = n->nin > 1 ? n->in[1] : NULL, *b = n->nin > 2 ? n->in[2] : NULL;
    sdl__cu_bn_dims(x, &N, &C, &S);
    if (N * C * S <= 0) return;
    int training = n->attr.norm.training;
    float *dg = g && g->requires_grad ? g->grad : NULL, *db = b && b->requires_grad ? b->grad : NULL;
    float *dx = x->requires_grad ? x->grad : NULL;
    if (!dg && !db && !dx) return;
    const float *mean = (const float *)n->saved;
    sdl__cu_chunks ch = sdl__cu_chunks_make(N, C, S);
    double *sdy = NULL;
    float *coef = (float *)sdl__cu_arena_alloc((size_t)(2 * C) * sizeof(float));
    if (!coef) return;
    if (dg || db || training) { /* eval's dx needs no sums */
        sdy = (double *)sdl__cu_arena_alloc((size_t)(2 * C * ch.sp) * sizeof(double));
        if (!sdy) return;
        sdl__k_chan_dsums<<<sdl__cu_chunk_grid(ch), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            n->out->grad, sdl_f32(x), mean, mean + C, ch, sdy, sdy + C * ch.sp);
        if (!SDL__CU_LAUNCHED("sdl__k_chan_dsums")) return;
    }
    sdl__k_bn_bwd_finish<<<sdl__cu_grid(C), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdy, sdy ? sdy + C * ch.sp : NULL, C, ch.sp, N * S, training, dg, db, coef);
    if (!SDL__CU_LAUNCHED("sdl__k_bn_bwd_finish") || !dx) return;
    sdl__k_bn_bwd_apply<<<sdl__cu_chunk_grid(ch), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), g ? sdl_f32(g) : NULL, n->out->grad, mean, mean + C, coef, ch, dx);
    SDL__CU_LAUNCHED("sdl__k_bn_bwd_apply");
}

/* ---- layer norm over the last dim D, a warp per row (as sdl.h, sums in double):
   xhat = (x - mean) rstd, y = gamma xhat + beta;  saved: mean (R), rstd (R)
   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = gamma dy;
   dgamma += sum_rows dy xhat, dbeta += sum_rows dy: blocks of 32 columns x 8 row lanes over a
   slice of rows, partial sums per slice (double), then the slices added in order, as
   sdl__k_colsum does */
static __global__ void sdl__k_ln_fwd(const float *x, const float *gm, const float *bt, float *y, float *mean, float *rstd,
                                     int64_t R, int64_t D, double eps) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0.0, v = 0.0;
        for (int64_t d = lane; d < D; d += 32) s += xr[d];
        double mu = sdl__cu_warp_sum(s) / (double)D;
        for (int64_t d = lane; d < D; d += 32) v += (xr[d] - mu) * (xr[d] - mu);
        v = sdl__cu_warp_sum(v);
        float mc = (float)mu, rc = (float)(1.0 / sqrt(v / (double)D + eps));
        if (lane == 0) { mean[r] = mc; rstd[r] = rc; }
        for (int64_t d = lane; d < D; d += 32) {
            float xh = (xr[d] - mc) * rc;
            yr[d] = gm ? gm[d] * xh + bt[d] : xh;
        }
    }
}
static __global__ void sdl__k_ln_bwd_rows(const float *x, const float *gm, const float *dy, const float *mean, const float *rstd,
                                          float *dx, int64_t R, int64_t D) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        float *dxr = dx + r * D, mc = mean[r], rc = rstd[r];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t d = lane; d < D; d += 32) {
            float dxh = gm ? gm[d] * dyr[d] : dyr[d];
            s1 += dxh;
            s2 += (double)dxh * ((xr[d] - mc) * rc);
        }
        s1 = sdl__cu_warp_sum(s1);
        s2 = sdl__cu_warp_sum(s2);
        float a = (float)(s1 / (double)D), bb = (float)(s2 / (double)D);
        for (int64_t d = lane; d < D; d += 32) {
            float dxh = gm ? gm[d] * dyr[d] : dyr[d];
            dxr[d] += rc * (dxh - a - (xr[d] - mc) * rc * bb);
        }
    }
}
static __global__ void sdl__k_ln_bwd_cols(const float *x, const float *dy, const float *mean, const float *rstd, int64_t R,
                                          int64_t D, int64_t rows, double *partial, float *dg, float *db) {
    __shared__ double shg[8][33], shb[8][33];
    int64_t d = (int64_t)blockIdx.x * 32 + threadIdx.x, r0 = (int64_t)blockIdx.y * rows, r1 = r0 + rows < R ? r0 + rows : R;
    double sg = 0.0, sb = 0.0;
    if (d < D)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
            float g = dy[r * D + d];
            sg += (double)g * ((x[r * D + d] - mean[r]) * rstd[r]);
            sb += g;
        }
    shg[threadIdx.y][threadIdx.x] = sg;
    shb[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && d < D) {
        double tg = 0.0, tb = 0.0;
        for (int k = 0; k < 8; k++) { tg += shg[k][threadIdx.x]; tb += shb[k][threadIdx.x]; }
        if (partial) {
            partial[(2 * blockIdx.y) * D + d] = tg;
            partial[(2 * blockIdx.y + 1) * D + d] = tb;
        } else {
            if (dg) dg[d] += (float)tg;
            if (db) db[d] += (float)tb;
        }
    }
}
static __global__ void sdl__k_ln_bwd_slices(const double *partial, int64_t slices, int64_t D, float *dg, float *db) {
    SDL__CU_LOOP(d, D) {
        double tg = 0.0, tb = 0.0;
        for (int64_t k = 0; k < slices; k++) { tg += partial[2 * k * D + d]; tb += partial[(2 * k + 1) * D + d]; }
        if (dg) dg[d] += (float)tg;
        if (db) db[d] += (float)tb;
    }
}
static void sdl__cu_ln_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t D = x->shape[x->ndim - 1], R = D ? x->numel / D : 0;
    if (R <= 0) return;
    float *mean = (float *)n->saved;
    sdl__k_ln_fwd<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), n->nin > 1 ? sdl_f32(n->in[1]) : NULL, n->nin > 2 ? sdl_f32(n->in[2]) : NULL, sdl_f32(n->out),
        mean, mean + R, R, D, (double)n->attr.norm.eps);
    SDL__CU_LAUNCHED("sdl__k_ln_fwd");
}
static void sdl__cu_ln_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *g = n->nin > 1 ? n->in[1] : NULL, *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t D = x->shape[x->ndim - 1], R = D ? x->numel / D : 0;
    if (R <= 0) return;
    const float *mean = (const float *)n->saved;
    if (x->requires_grad) {
        sdl__k_ln_bwd_rows<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            sdl_f32(x), g ? sdl_f32(g) : NULL, n->out->grad, mean, mean + R, x->grad, R, D);
        if (!SDL__CU_LAUNCHED("sdl__k_ln_bwd_rows")) return;
    }
    bool wg = g && g->requires_grad, wb = b && b->requires_grad;
    if (!wg && !wb) return;
    int64_t rows, slices = sdl__cu_row_slices(R, D, &rows), tiles = (D + 31) / 32;
    double *partial = slices > 1 ? (double *)sdl__cu_arena_alloc((size_t)(2 * slices * D) * sizeof(double)) : NULL;
    if (slices > 1 && !partial) return;
    float *dg = wg ? g->grad : NULL, *db = wb ? b->grad : NULL;
    sdl__k_ln_bwd_cols<<<dim3((unsigned)tiles, (unsigned)slices), dim3(32, 8), 0, sdl__cu.stream>>>(
        sdl_f32(x), n->out->grad, mean, mean + R, R, D, rows, partial, dg, db);
    if (!SDL__CU_LAUNCHED("sdl__k_ln_bwd_cols") || !partial) return;
    sdl__k_ln_bwd_slices<<<sdl__cu_grid(D), SDL__CU_THREADS, 0, sdl__cu.stream>>>(partial, slices, D, dg, db);
    SDL__CU_LAUNCHED("sdl__k_ln_bwd_slices");
}

/* ---- dropout (inverted), the CPU's mask bit for bit: keep_i = u_i >= p with
   u_i = (hash(seed, stream, i) >> 40) / 2^24, sdl.h's >>formulas (sdl__dropout_elem);
   y = keep ? x / (1 - p) : 0;  dx += keep ? dy / (1 - p) : 0 (the mask is recomputed).
   In a captured step (rng not NULL) the seed and the counter's shift since the capture come
   from the graph's device scalars, so each replay draws the mask an eager step would. */
static __global__ void sdl__k_dropout(const float *src, float *dst, int64_t n, uint64_t key, float p, float scale, int add,
                                      const uint64_t *rng, uint64_t stream) {
    if (rng) key = sdl__hash_key(rng[0], stream + rng[1]);
    SDL__CU_LOOP(i, n) {
        float v = sdl__dropout_elem(key, (uint64_t)i, src[i], p, scale);
        if (add) dst[i] += v;
        else dst[i] = v;
    }
}
static void sdl__cu_dropout_run(sdl_node *n, bool bwd) {
    int64_t len = n->out->numel;
    if (len <= 0 || (bwd && !n->in[0]->requires_grad)) return;
    float p = n->attr.dropout.p, scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t key = sdl__hash_key(n->attr.dropout.seed, n->attr.dropout.stream);
    sdl__k_dropout<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        bwd ? n->out->grad : sdl_f32(n->in[0]), bwd ? n->in[0]->grad : sdl_f32(n->out), len, key, p, scale, bwd,
        sdl__cu_graph_rng(), n->attr.dropout.stream);
    SDL__CU_LAUNCHED("sdl__k_dropout");
}
static void sdl__cu_dropout_fwd(sdl_node *n) { sdl__cu_dropout_run(n, false); }
static void sdl__cu_dropout_bwd(sdl_node *n) { sdl__cu_dropout_run(n, true); }

/* ---- embedding: ids i32 (R), table (V, D) -> y (R, D): y_r = table[ids_r] (an id outside
   [0, V) gives a NaN row: no host check on the GPU).
   dtable[ids_r] += dy_r, each id's rows added in row order (the CPU's order, no atomics):
   block b owns the ids with id % blocks == b. It reads the ids 256 at a time; each warp ORs
   its lanes' "mine" bits into a 32-bit mask (shuffles), then every thread walks the chunk's
   rows of the mask in order, adding its columns. Each block reads all R ids (4 R bytes,
   from L2); each dy row is read once, by the block that owns its id. */
static __global__ void sdl__k_emb_fwd(const int32_t *ids, const float *table, float *y, int64_t R, int64_t D, int64_t V) {
    SDL__CU_LOOP(i, R * D) {
        int32_t id = ids[i / D];
        y[i] = id >= 0 && id < V ? table[(int64_t)id * D + i % D] : NAN;
    }
}
static __global__ void sdl__k_emb_bwd(const int32_t *ids, const float *dy, float *dt, int64_t R, int64_t D, int64_t V) {
    __shared__ unsigned mask[SDL__CU_THREADS / 32];
    for (int64_t r0 = 0; r0 < R; r0 += SDL__CU_THREADS) { /* the same trip count in every thread */
        int64_t r = r0 + threadIdx.x;
        int32_t id = r < R ? ids[r] : -1;
        unsigned bit = id >= 0 && id < V && (unsigned)id % gridDim.x == blockIdx.x ? 1u << (threadIdx.x % 32) : 0u;
        for (int o = 16; o > 0; o >>= 1) bit |= __shfl_xor_sync(0xffffffffu, bit, o);
        if (threadIdx.x % 32 == 0) mask[threadIdx.x / 32] = bit;
        __syncthreads();
        for (int w = 0; w < SDL__CU_THREADS / 32; w++)
            for (unsigned m = mask[w]; m; m &= m - 1) { /* its set bits, lowest (first row) first */
                int64_t row = r0 + w * 32 + __ffs((int)m) - 1;
                float *dst = dt + (int64_t)ids[row] * D;
                for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dst[d] += dy[row * D + d];
            }
        __syncthreads(); /* before the next chunk's masks */
    }
}
static void sdl__cu_emb_fwd(sdl_node *n) {
    int64_t R = n->in[0]->numel, D = n->in[1]->shape[1], V = n->in[1]->shape[0];
    if (R * D <= 0) return;
    sdl__k_emb_fwd<<<sdl__cu_grid(R * D), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_i32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->out), R, D, V);
    SDL__CU_LAUNCHED("sdl__k_emb_fwd");
}
static void sdl__cu_emb_bwd(sdl_node *n) {
    int64_t R = n->in[0]->numel, D = n->in[1]->shape[1], V = n->in[1]->shape[0];
    if (R * D <= 0 || !n->in[1]->requires_grad) return;
    sdl__k_emb_bwd<<<(unsigned)(V < 1024 ? V : 1024), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_i32(n->in[0]), n->out->grad, n->in[1]->grad, R, D, V);
    SDL__CU_LAUNCHED("sdl__k_emb_bwd");
}

/* >>ops-act */

/* ---- elementwise unary ops (as sdl.h's >>ops-act): y = f(x);  dx += f'(x) dy, the formulas
   in sdl.h's >>formulas (the same functions the CPU loops call). One kernel pair for all of
   SDL_UNARY_OPS: a case per row, generated; the op is the same in every thread. */
static __global__ void sdl__k_unary_fwd(const float *x, float *y, int64_t n, int op, float a, float b) {
    SDL__CU_LOOP(i, n) {
        float r = NAN; /* only the rows below reach here (the table sends no other op) */
        switch (op) {
#define SDL__CU_UNARY_FWD(X_, NAME, name) case SDL_OP_##NAME: r = sdl__f_##name(x[i], a, b); break;
        SDL_UNARY_OPS(SDL__CU_UNARY_FWD, _)
#undef SDL__CU_UNARY_FWD
        }
        y[i] = r;
    }
}
static __global__ void sdl__k_unary_bwd(const float *x, const float *y, const float *dy, float *dx, int64_t n, int op, float a, float b) {
    SDL__CU_LOOP(i, n) {
        float r = NAN;
        switch (op) {
#define SDL__CU_UNARY_BWD(X_, NAME, name) case SDL_OP_##NAME: r = sdl__df_##name(x[i], y[i], dy[i], a, b); break;
        SDL_UNARY_OPS(SDL__CU_UNARY_BWD, _)
#undef SDL__CU_UNARY_BWD
        }
        dx[i] += r;
    }
}
static void sdl__cu_unary_fwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_unary_fwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), len, (int)n->op,
                                                                               n->attr.scalar.alpha, n->attr.scalar.beta);
    SDL__CU_LAUNCHED("sdl__k_unary_fwd");
}
static void sdl__cu_unary_bwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0 || !n->in[0]->requires_grad) return;
    sdl__k_unary_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(n->in[0]), sdl_f32(n->out), n->out->grad, n->in[0]->grad, len, (int)n->op, n->attr.scalar.alpha, n->attr.scalar.beta);
    SDL__CU_LAUNCHED("sdl__k_unary_bwd");
}

/* ---- softmax / log_softmax over the last dim, a warp per row, max subtracted first:
   softmax:      y = e^(x - max) / sum;  dx += y (dy - sum(dy y))
   log_softmax:  y = x - max - log sum;  dx += dy - e^y sum(dy) */
static __global__ void sdl__k_softmax_fwd(const float *x, float *y, int64_t R, int64_t D, int logsm) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        const float *xr = x + r * D;
        float *yr = y + r * D, mx = -INFINITY, s = 0.0f;
        for (int64_t d = lane; d < D; d += 32) mx = fmaxf(mx, xr[d]);
        mx = sdl__cu_warp_max(mx);
        for (int64_t d = lane; d < D; d += 32) {
            float e = expf(xr[d] - mx);
            if (!logsm) yr[d] = e;
            s += e;
        }
        s = sdl__cu_warp_sum(s);
        if (!logsm) {
            float inv = 1.0f / s;
            for (int64_t d = lane; d < D; d += 32) yr[d] *= inv;
        } else {
            float lse = mx + logf(s);
            for (int64_t d = lane; d < D; d += 32) yr[d] = xr[d] - lse;
        }
    }
}
static __global__ void sdl__k_softmax_bwd(const float *y, const float *dy, float *dx, int64_t R, int64_t D, int logsm) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        const float *yr = y + r * D, *dyr = dy + r * D;
        float *dxr = dx + r * D, s = 0.0f;
        for (int64_t d = lane; d < D; d += 32) s += logsm ? dyr[d] : dyr[d] * yr[d];
        s = sdl__cu_warp_sum(s);
        for (int64_t d = lane; d < D; d += 32) dxr[d] += logsm ? dyr[d] - expf(yr[d]) * s : yr[d] * (dyr[d] - s);
    }
}
static void sdl__cu_softmax_fwd(sdl_node *n) {
    int64_t D = n->out->shape[n->out->ndim - 1], R = D ? n->out->numel / D : 0;
    if (R <= 0) return;
    sdl__k_softmax_fwd<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), R, D, n->op == SDL_OP_LOG_SOFTMAX);
    SDL__CU_LAUNCHED("sdl__k_softmax_fwd");
}
static void sdl__cu_softmax_bwd(sdl_node *n) {
    int64_t D = n->out->shape[n->out->ndim - 1], R = D ? n->out->numel / D : 0;
    if (R <= 0 || !n->in[0]->requires_grad) return;
    sdl__k_softmax_bwd<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(n->out), n->out->grad, n->in[0]->grad, R, D, n->op == SDL_OP_LOG_SOFTMAX);
    SDL__CU_LAUNCHED("sdl__k_softmax_bwd");
}

/* >>ops-general */

/* ---- elementwise binary ops on equal shapes (sdl.h's >>ops-general, SDL_BINARY_OPS; the
   public functions broadcast first) and where: the same >>formulas as the CPU loops */
static __global__ void sdl__k_bin_fwd(const float *a, const float *b, float *y, int64_t n, int op) {
    SDL__CU_LOOP(i, n) {
        float r = NAN; /* only the rows below reach here */
        switch (op) {
#define SDL__CU_BIN_FWD(X_, NAME, name) case SDL_OP_##NAME: r = sdl__f_##name(a[i], b[i]); break;
        SDL_BINARY_OPS(SDL__CU_BIN_FWD, _)
#undef SDL__CU_BIN_FWD
        }
        y[i] = r;
    }
}
/* da or db may be NULL (no gradient wanted); a == b (x op x) adds both in one thread */
static __global__ void sdl__k_bin_bwd(const float *a, const float *b, const float *y, const float *dy, float *da, float *db,
                                      int64_t n, int op) {
    SDL__CU_LOOP(i, n) {
        float ga = NAN, gb = NAN;
        switch (op) {
#define SDL__CU_BIN_BWD(X_, NAME, name) \
        case SDL_OP_##NAME: ga = sdl__dfa_##name(a[i], b[i], y[i], dy[i]); gb = sdl__dfb_##name(a[i], b[i], y[i], dy[i]); break;
        SDL_BINARY_OPS(SDL__CU_BIN_BWD, _)
#undef SDL__CU_BIN_BWD
        }
        if (da) da[i] += ga;
        if (db) db[i] += gb;
    }
}
static void sdl__cu_bin_fwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_bin_fwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->out), len, (int)n->op);
    SDL__CU_LAUNCHED("sdl__k_bin_fwd");
}
static void sdl__cu_bin_bwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_bin_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->out),
        n->out->grad, n->in[0]->grad, n->in[1]->grad, len, (int)n->op);
    SDL__CU_LAUNCHED("sdl__k_bin_bwd");
}
/* where: y = c != 0 ? a : b;  da += c ? dy : 0, db += c ? 0 : dy */
static __global__ void sdl__k_where(const float *c, const float *a, const float *b, float *y, const float *dy, float *da, float *db, int64_t n) {
    SDL__CU_LOOP(i, n) {
        if (y) y[i] = c[i] != 0.0f ? a[i] : b[i];
        else if (c[i] != 0.0f && da) da[i] += dy[i];
        else if (c[i] == 0.0f && db) db[i] += dy[i];
    }
}
static void sdl__cu_where_fwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_where<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->in[2]),
        sdl_f32(n->out), NULL, NULL, NULL, len);
    SDL__CU_LAUNCHED("sdl__k_where");
}
static void sdl__cu_where_bwd(sdl_node *n) {
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__k_where<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->in[2]),
        NULL, n->out->grad, n->in[1]->grad, n->in[2]->grad, len);
    SDL__CU_LAUNCHED("sdl__k_where");
}

/* ---- the index map (sdl.h's >>ops-general: every shape op): y[i] = src[map[i]] over the
   inputs one after another (fill where map[i] < 0);  dsrc[j] += sum of dy over the CSR list
   of j, in its fixed order. The adjoint (scatter_add) swaps the two. One launch per input. */
static __global__ void sdl__k_imap_gather(const int64_t *map, const float *x, int64_t base, int64_t nx, float *y, int64_t n,
                                          float fill, int first) {
    SDL__CU_LOOP(i, n) {
        int64_t g = map[i] - base;
        if (map[i] < 0) { if (first) y[i] = fill; }
        else if (g >= 0 && g < nx) y[i] = x[g];
    }
}
/* y[j] (+)= sum of x[idx[p]] for p in the CSR list of base + j */
static __global__ void sdl__k_imap_csr_sum(const int64_t *start, const int64_t *idx, const float *x, int64_t base, float *y,
                                           int64_t n, int add) {
    SDL__CU_LOOP(j, n) {
        float s = 0.0f;
        for (int64_t p = start[base + j]; p < start[base + j + 1]; p++) s += x[idx[p]];
        y[j] = add ? y[j] + s : s;
    }
}
static __global__ void sdl__k_imap_adj_bwd(const int64_t *map, const float *dy, float *dx, int64_t n) {
    SDL__CU_LOOP(i, n) {
        if (map[i] >= 0) dx[i] += dy[map[i]];
    }
}
static void sdl__cu_index_map_fwd(sdl_node *n) {
    const sdl__imap *m = (const sdl__imap *)n->saved;
    int64_t len = n->out->numel, base = 0;
    if (len <= 0) return;
    if (m->adjoint) {
        sdl__k_imap_csr_sum<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(m->start, m->idx, sdl_f32(n->in[0]), 0, sdl_f32(n->out), len, 0);
        SDL__CU_LAUNCHED("sdl__k_imap_csr_sum");
        return;
    }
    for (int k = 0; k < n->nin; k++) {
        sdl__k_imap_gather<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(m->map, sdl_f32(n->in[k]), base, n->in[k]->numel,
                                                                                     sdl_f32(n->out), len, m->fill, k == 0);
        SDL__CU_LAUNCHED("sdl__k_imap_gather");
        base += n->in[k]->numel;
    }
}
static void sdl__cu_index_map_bwd(sdl_node *n) {
    const sdl__imap *m = (const sdl__imap *)n->saved;
    int64_t base = 0;
    for (int k = 0; k < n->nin; k++) { /* one input at a time: cat(x, x) adds twice, in order */
        int64_t len = n->in[k]->numel;
        if (len > 0 && n->in[k]->grad && m->adjoint) {
            sdl__k_imap_adj_bwd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(m->map, n->out->grad, n->in[k]->grad, len);
            SDL__CU_LAUNCHED("sdl__k_imap_adj_bwd");
        } else if (len > 0 && n->in[k]->grad) {
            sdl__k_imap_csr_sum<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(m->start, m->idx, n->out->grad, base,
                                                                                          n->in[k]->grad, len, 1);
            SDL__CU_LAUNCHED("sdl__k_imap_csr_sum");
        }
        base += len;
    }
}

/* ---- row reductions (sdl.h's >>ops-general): x (R, L) -> y (R), a warp per row, the sums
   in a fixed order. max keeps its argmax (the first of equals, NaN the largest):
   sum         y = sum x                            dx = dy
   mean        y = sum x / L                        dx = dy / L
   max         y = x[argmax]                        dx[argmax] = dy
   logsumexp   y = m + ln sum e^(x - m), m = max    dx = dy e^(x - y)
   var         y = sum (x - mu)^2 / (L - corr)      dx = dy 2 (x - mu) / (L - corr) */
static __device__ void sdl__cu_argmax_pick(float *m, int64_t *a, float m2, int64_t a2) {
    bool nan1 = *m != *m, nan2 = m2 != m2;
    if ((!nan1 && !nan2 && m2 > *m) || (nan2 && !nan1) || ((m2 == *m || (nan1 && nan2)) && a2 < *a)) { *m = m2; *a = a2; }
}
/* the row's max and argmax in every lane */
static __device__ float sdl__cu_row_argmax(const float *x, int64_t L, int64_t *arg) {
    float m = -INFINITY;
    int64_t a = INT64_MAX;
    for (int64_t j = threadIdx.x & 31; j < L; j += 32) sdl__cu_argmax_pick(&m, &a, x[j], j);
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        int64_t a2 = __shfl_xor_sync(0xffffffffu, a, o);
        sdl__cu_argmax_pick(&m, &a, m2, a2);
    }
    *arg = a;
    return m;
}
/* sum of (x - mu)^2 over the row, in every lane */
static __device__ float sdl__cu_row_sq(const float *x, int64_t L, float mu) {
    float s = 0.0f;
    for (int64_t j = threadIdx.x & 31; j < L; j += 32) s += (x[j] - mu) * (x[j] - mu);
    return sdl__cu_warp_sum(s);
}
static __device__ float sdl__cu_row_sum(const float *x, int64_t L, float shift, int exp_of) {
    float s = 0.0f;
    for (int64_t j = threadIdx.x & 31; j < L; j += 32) s += exp_of ? expf(x[j] - shift) : x[j] - shift;
    return sdl__cu_warp_sum(s);
}
static __global__ void sdl__k_reduce_fwd(const float *x, float *y, int64_t *argmax, int64_t R, int64_t L, int op, float corr) {
    SDL__CU_ROWS(r, R) {
        const float *xr = x + r * L;
        int64_t arg;
        float v, m = sdl__cu_row_argmax(xr, L, &arg);
        if (op == SDL_OP_REDUCE_MAX) {
            v = m;
            if ((threadIdx.x & 31) == 0) argmax[r] = arg;
        } else { /* every op below takes the same shuffles (the warp stays in step) */
            float e = sdl__cu_row_sum(xr, L, isfinite(m) ? m : 0.0f, 1), s = sdl__cu_row_sum(xr, L, 0.0f, 0);
            float q = sdl__cu_row_sq(xr, L, s / (float)L);
            if (op == SDL_OP_LOGSUMEXP) v = isfinite(m) ? m + logf(e) : m;
            else if (op == SDL_OP_REDUCE_SUM) v = s;
            else if (op == SDL_OP_REDUCE_MEAN) v = s / (float)L;
            else v = q / ((float)L - corr);
        }
        if ((threadIdx.x & 31) == 0) y[r] = v;
    }
}
static __global__ void sdl__k_reduce_bwd(const float *x, const float *y, const float *dy, float *dx, const int64_t *argmax,
                                         int64_t R, int64_t L, int op, float corr) {
    SDL__CU_ROWS(r, R) {
        const float *xr = x + r * L;
        float *dxr = dx + r * L, g = dy[r];
        /* the mean for var; every op takes the same shuffles (the warp stays in step) */
        float mu = sdl__cu_row_sum(xr, L, 0.0f, 0) / (float)L, k = 2.0f / ((float)L - corr);
        if (op == SDL_OP_REDUCE_MAX) {
            if ((threadIdx.x & 31) == 0 && L > 0) dxr[argmax[r]] += g;
            continue;
        }
        for (int64_t j = threadIdx.x & 31; j < L; j += 32)
            dxr[j] += op == SDL_OP_REDUCE_SUM ? g : op == SDL_OP_REDUCE_MEAN ? g / (float)L
                    : op == SDL_OP_LOGSUMEXP ? g * expf(xr[j] - y[r]) : g * k * (xr[j] - mu);
    }
}
static void sdl__cu_reduce_fwd(sdl_node *n) {
    int64_t R = n->out->numel, L = R ? n->in[0]->numel / R : 0;
    if (R <= 0) return;
    sdl__k_reduce_fwd<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), (int64_t *)n->saved,
                                                                                  R, L, (int)n->op, n->attr.scalar.alpha);
    SDL__CU_LAUNCHED("sdl__k_reduce_fwd");
}
static void sdl__cu_reduce_bwd(sdl_node *n) {
    int64_t R = n->out->numel, L = R ? n->in[0]->numel / R : 0;
    if (R <= 0 || !n->in[0]->grad) return;
    sdl__k_reduce_bwd<<<sdl__cu_row_grid(R), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(n->in[0]), sdl_f32(n->out), n->out->grad,
        n->in[0]->grad, (const int64_t *)n->saved, R, L, (int)n->op, n->attr.scalar.alpha);
    SDL__CU_LAUNCHED("sdl__k_reduce_bwd");
}

/* ---- batched matmul (sdl.h's >>ops-general): a (B, M, K) @ b (B, K, N), strided-batched
   cuBLAS;  dA_i += dY_i B_i^T,  dB_i += A_i^T dY_i */
static void sdl__cu_bmm_fwd(sdl_node *n) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    sdl__cu_gemm_batched(false, false, M, N, K, 1.0f, sdl_f32(a), K, M * K, sdl_f32(b), N, K * N, 0.0f, sdl_f32(n->out), N, M * N, B);
}
static void sdl__cu_bmm_bwd(sdl_node *n) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    if (a->grad) sdl__cu_gemm_batched(false, true, M, K, N, 1.0f, n->out->grad, N, M * N, sdl_f32(b), N, K * N, 1.0f, a->grad, K, M * K, B);
    if (b->grad) sdl__cu_gemm_batched(true, false, K, N, M, 1.0f, sdl_f32(a), K, M * K, n->out->grad, N, M * N, 1.0f, b->grad, N, K * N, B);
}

/* >>ops-shape */

/* ---- concat along dim: rows over the dims before dim, y_row = [a_row (la), b_row (lb)];
   backward splits dy */
static __global__ void sdl__k_concat_fwd(const float *a, const float *b, float *y, int64_t outer, int64_t la, int64_t lb) {
    int64_t L = la + lb;
    SDL__CU_LOOP(i, outer * L) {
        int64_t o = i / L, k = i % L;
        y[i] = k < la ? a[o * la + k] : b[o * lb + k - la];
    }
}
/* dpart[o, k] += dy[o, off + k] over outer rows of len floats */
static __global__ void sdl__k_concat_bwd(const float *dy, float *dpart, int64_t outer, int64_t len, int64_t off, int64_t L) {
    SDL__CU_LOOP(i, outer * len) dpart[i] += dy[(i / len) * L + off + i % len];
}
static void sdl__cu_concat_sizes(const sdl_node *n, int64_t *outer, int64_t *la, int64_t *lb) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int dim = n->attr.axis.dim;
    int64_t inner = 1;
    *outer = 1;
    for (int i = 0; i < dim; i++) *outer *= a->shape[i];
    for (int i = dim + 1; i < a->ndim; i++) inner *= a->shape[i];
    *la = a->shape[dim] * inner;
    *lb = b->shape[dim] * inner;
}
static void sdl__cu_concat_fwd(sdl_node *n) {
    int64_t outer, la, lb;
    sdl__cu_concat_sizes(n, &outer, &la, &lb);
    if (outer * (la + lb) <= 0) return;
    sdl__k_concat_fwd<<<sdl__cu_grid(outer * (la + lb)), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(n->in[0]), sdl_f32(n->in[1]), sdl_f32(n->out), outer, la, lb);
    SDL__CU_LAUNCHED("sdl__k_concat_fwd");
}
static void sdl__cu_concat_bwd(sdl_node *n) {
    int64_t outer, la, lb;
    sdl__cu_concat_sizes(n, &outer, &la, &lb);
    sdl_tensor *a = n->in[0], *b = n->in[1];
    if (a->requires_grad && outer * la > 0) {
        sdl__k_concat_bwd<<<sdl__cu_grid(outer * la), SDL__CU_THREADS, 0, sdl__cu.stream>>>(n->out->grad, a->grad, outer, la, 0, la + lb);
        if (!SDL__CU_LAUNCHED("sdl__k_concat_bwd")) return;
    }
    if (b->requires_grad && outer * lb > 0) {
        sdl__k_concat_bwd<<<sdl__cu_grid(outer * lb), SDL__CU_THREADS, 0, sdl__cu.stream>>>(n->out->grad, b->grad, outer, lb, la, la + lb);
        SDL__CU_LAUNCHED("sdl__k_concat_bwd");
    }
}

/* ---- transpose (a copy): x seen as (outer, A, mid, B, inner) -> y (outer, B, mid, A, inner);
   forward: each y row of `inner` floats copies its x row; backward: each x row adds its dy
   row. A warp per row when rows are 32 floats or longer (GPT-2's heads: 64): the divisions
   that find the source row are made once per row, and the row is read and written
   contiguously; else a thread per element. */
typedef struct sdl__cu_tr { int64_t outer, A, mid, B, inner; } sdl__cu_tr;
/* the source row of destination row r = (outer, P, mid, Q) with P, Q = B, A (forward) or A, B */
static __device__ int64_t sdl__cu_tr_row(int64_t r, const sdl__cu_tr &t, int bwd) {
    int64_t P = bwd ? t.A : t.B, Q = bwd ? t.B : t.A;
    int64_t q = r % Q, m = (r / Q) % t.mid, p = (r / (Q * t.mid)) % P, o = r / (Q * t.mid * P);
    return ((o * Q + q) * t.mid + m) * P + p;
}
static __global__ void sdl__k_transpose(const float *src, float *dst, int64_t rows, sdl__cu_tr t, int bwd) {
    if (t.inner >= 32) {
        int lane = threadIdx.x & 31;
        SDL__CU_ROWS(r, rows) {
            const float *s = src + sdl__cu_tr_row(r, t, bwd) * t.inner;
            float *d = dst + r * t.inner;
            for (int64_t e = lane; e < t.inner; e += 32) d[e] = bwd ? d[e] + s[e] : s[e];
        }
        return;
    }
    SDL__CU_LOOP(i, rows * t.inner) {
        int64_t r = i / t.inner, e = i - r * t.inner;
        float v = src[sdl__cu_tr_row(r, t, bwd) * t.inner + e];
        dst[i] = bwd ? dst[i] + v : v;
    }
}
static void sdl__cu_transpose_run(const float *src, float *dst, int64_t n, sdl__cu_tr t, int bwd) {
    int64_t rows = n / t.inner;
    unsigned grid = t.inner >= 32 ? sdl__cu_row_grid(rows) : sdl__cu_grid(n);
    sdl__k_transpose<<<grid, SDL__CU_THREADS, 0, sdl__cu.stream>>>(src, dst, rows, t, bwd);
    SDL__CU_LAUNCHED("sdl__k_transpose");
}
static sdl__cu_tr sdl__cu_tr_dims(const sdl_node *n) {
    const sdl_tensor *x = n->in[0];
    int d0 = n->attr.axis.dim, d1 = n->attr.axis.dim1;
    sdl__cu_tr t;
    t.outer = t.mid = t.inner = 1;
    t.A = x->shape[d0];
    t.B = d0 == d1 ? 1 : x->shape[d1];
    for (int i = 0; i < x->ndim; i++) {
        if (i < d0) t.outer *= x->shape[i];
        else if (i > d0 && i < d1) t.mid *= x->shape[i];
        else if (i > d1) t.inner *= x->shape[i];
    }
    return t;
}
static void sdl__cu_transpose_fwd(sdl_node *n) {
    sdl__cu_tr t = sdl__cu_tr_dims(n);
    int64_t len = n->out->numel;
    if (len <= 0) return;
    sdl__cu_transpose_run(sdl_f32(n->in[0]), sdl_f32(n->out), len, t, 0);
}
static void sdl__cu_transpose_bwd(sdl_node *n) {
    sdl__cu_tr t = sdl__cu_tr_dims(n);
    int64_t len = n->in[0]->numel;
    if (len <= 0 || !n->in[0]->requires_grad) return;
    sdl__cu_transpose_run(n->out->grad, n->in[0]->grad, len, t, 1);
}

/* ---- causal self-attention, q, k, v (B, H, T, hd) -> y, as sdl.h: s_ij = q_i . k_j / sqrt(hd)
   for j <= i, p_i = softmax_j s_i, y_i = sum_j p_ij v_j. Batched GEMMs over the B H heads on
   full T x T matrices (the masked half is computed and then zeroed: simple, 2x the flops of a
   fused kernel), a warp-per-row masked softmax. saved: P (B H, T, T), zero above the diagonal.
   dP = dY V^T;  dS = P (dP - rowsum(P dP));  dQ += dS K / sqrt(hd);  dK += dS^T Q / sqrt(hd);
   dV += P^T dY
   S and dP are f32 in the scratch buffer (one layer's worth, reused). In bf16/fp16 runs P and
   dS are kept in that 2-byte type, which their GEMMs read as they are (half the bytes of f32
   and no conversion pass; P's saved buffer, sized for f32 by sdl.h, is half used). */
static __device__ float sdl__cu_ld(const void *p, int64_t i, int kind) { /* kind 0 f32, 1 bf16, 2 fp16 */
    return kind == 0 ? ((const float *)p)[i]
           : kind == 1 ? __bfloat162float(((const __nv_bfloat16 *)p)[i]) : __half2float(((const __half *)p)[i]);
}
static __device__ void sdl__cu_st(void *p, int64_t i, float v, int kind) {
    if (kind == 0) ((float *)p)[i] = v;
    else if (kind == 1) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
    else ((__half *)p)[i] = __float2half_rn(v);
}
static int sdl__cu_kind(sdl_dtype d) { return d == SDL_BF16 ? 1 : d == SDL_F16 ? 2 : 0; }

/* p = the masked softmax of each row of s (p may be s when kind is 0) */
static __global__ void sdl__k_causal_softmax(const float *s, void *p, int kind, int64_t R, int64_t T) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        int64_t i = r % T;
        const float *sr = s + r * T;
        float mx = -INFINITY, sum = 0.0f;
        for (int64_t j = lane; j <= i; j += 32) mx = fmaxf(mx, sr[j]);
        mx = sdl__cu_warp_max(mx);
        for (int64_t j = lane; j <= i; j += 32) sum += expf(sr[j] - mx);
        float inv = 1.0f / sdl__cu_warp_sum(sum);
        for (int64_t j = lane; j < T; j += 32) sdl__cu_st(p, r * T + j, j <= i ? expf(sr[j] - mx) * inv : 0.0f, kind);
    }
}
/* ds = p (dp - sum_j p dp), zero above the diagonal (ds may be dp when kind is 0) */
static __global__ void sdl__k_causal_softmax_bwd(const void *p, const float *dp, void *ds, int kind, int64_t R, int64_t T) {
    int lane = threadIdx.x & 31;
    SDL__CU_ROWS(r, R) {
        int64_t i = r % T;
        const float *dr = dp + r * T;
        float s = 0.0f;
        for (int64_t j = lane; j <= i; j += 32) s += sdl__cu_ld(p, r * T + j, kind) * dr[j];
        s = sdl__cu_warp_sum(s);
        for (int64_t j = lane; j < T; j += 32)
            sdl__cu_st(ds, r * T + j, j <= i ? sdl__cu_ld(p, r * T + j, kind) * (dr[j] - s) : 0.0f, kind);
    }
}
static void sdl__cu_attn_fwd(sdl_node *n) {
    sdl_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    int64_t T = q->shape[2], hd = q->shape[3], BH = q->shape[0] * q->shape[1];
    if (BH * T * hd <= 0) return;
    int kind = sdl__cu_kind(sdl__cu_amp.precision);
    n->attr.attn.p_dtype = kind ? sdl__cu_amp.precision : SDL_F32;
    float scale = 1.0f / sqrtf((float)hd), *S = kind ? (float *)sdl__cu_scratch((size_t)(BH * T * T) * sizeof(float)) : (float *)n->saved;
    if (!S) return; /* (the size was checked by sdl.h's forward) */
    sdl__cu_gemm_batched(false, true, T, T, hd, scale, sdl_f32(q), hd, T * hd, sdl_f32(k), hd, T * hd, 0.0f, S, T, T * T, BH);
    sdl__k_causal_softmax<<<sdl__cu_row_grid(BH * T), SDL__CU_THREADS, 0, sdl__cu.stream>>>(S, n->saved, kind, BH * T, T);
    if (!SDL__CU_LAUNCHED("sdl__k_causal_softmax")) return;
    if (kind)
        sdl__cu_gemm_batched_half_a(false, false, T, hd, T, 1.0f, n->saved, T, T * T, sdl_f32(v), hd, T * hd, 0.0f, sdl_f32(n->out), hd, T * hd, BH);
    else
        sdl__cu_gemm_batched(false, false, T, hd, T, 1.0f, (const float *)n->saved, T, T * T, sdl_f32(v), hd, T * hd, 0.0f, sdl_f32(n->out), hd, T * hd, BH);
}
/* C (+)= alpha op(A) op(B) for attention's T x T operands A, which are kept as `kind` */
static void sdl__cu_attn_gemm(int kind, bool ta, int64_t M, int64_t N, int64_t K, float alpha, const void *A, const float *B,
                              int64_t ldb, int64_t sB, float *C, int64_t ldc, int64_t sC, int64_t batch) {
    int64_t T = ta ? K : M;
    if (kind) sdl__cu_gemm_batched_half_a(ta, false, M, N, K, alpha, A, T, T * T, B, ldb, sB, 1.0f, C, ldc, sC, batch);
    else sdl__cu_gemm_batched(ta, false, M, N, K, alpha, (const float *)A, T, T * T, B, ldb, sB, 1.0f, C, ldc, sC, batch);
}
static void sdl__cu_attn_bwd(sdl_node *n) {
    sdl_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    int64_t T = q->shape[2], hd = q->shape[3], BH = q->shape[0] * q->shape[1];
    if (BH * T * hd <= 0) return;
    int kind = sdl__cu_kind(n->attr.attn.p_dtype);
    float scale = 1.0f / sqrtf((float)hd);
    const float *dy = n->out->grad;
    if (v->requires_grad) sdl__cu_attn_gemm(kind, true, T, hd, T, 1.0f, n->saved, dy, hd, T * hd, v->grad, hd, T * hd, BH);
    if (!q->requires_grad && !k->requires_grad) return;
    size_t f32_bytes = (size_t)(BH * T * T) * sizeof(float); /* size checked in forward */
    float *dP = (float *)sdl__cu_scratch(kind ? f32_bytes + f32_bytes / 2 : f32_bytes);
    if (!dP) return;
    void *dS = kind ? (void *)((char *)dP + f32_bytes) : (void *)dP;
    sdl__cu_gemm_batched(false, true, T, T, hd, 1.0f, dy, hd, T * hd, sdl_f32(v), hd, T * hd, 0.0f, dP, T, T * T, BH);
    sdl__k_causal_softmax_bwd<<<sdl__cu_row_grid(BH * T), SDL__CU_THREADS, 0, sdl__cu.stream>>>(n->saved, dP, dS, kind, BH * T, T);
    if (!SDL__CU_LAUNCHED("sdl__k_causal_softmax_bwd")) return;
    if (q->requires_grad) sdl__cu_attn_gemm(kind, false, T, hd, T, scale, dS, sdl_f32(k), hd, T * hd, q->grad, hd, T * hd, BH);
    if (k->requires_grad) sdl__cu_attn_gemm(kind, true, T, hd, T, scale, dS, sdl_f32(q), hd, T * hd, k->grad, hd, T * hd, BH);
}

/* >>ops-loss (cross entropy, mse, nll, bce_with_logits) */

/* ---- cross entropy from logits (B, C), targets i32 (B), smoothing s:
   q = (1-s) onehot(t) + s/C;  loss = mean_b -sum_c q_c log softmax(x)_c
   dlogits_bc += (softmax(x)_bc - q_bc) / B
   One block per row, forward and backward. The forward keeps only each row's log of the
   softmax's denominator, logz (a double per row at n->saved, sized for B x C floats: room
   when C >= 2; with one class the softmax is 1), and the row's loss (double); the backward
   computes softmax = exp(x - logz) again from the logits, as the CPU does (no B x C
   probabilities written and read: GPT-2's are 3.3 GB). A target outside [0, C) makes that
   row's loss NaN. */
static __global__ void sdl__k_ce_fwd(const float *x, const int32_t *t, int64_t B, int64_t C, float s, double *logz_out, double *rowloss) {
    __shared__ double shd[SDL__CU_THREADS];
    __shared__ float shf[SDL__CU_THREADS];
    for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
        const float *row = x + b * C;
        float mx = -INFINITY;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, row[c]);
        mx = sdl__cu_block_max(mx, shf);
        double z = 0.0, rs = 0.0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            z += exp((double)row[c] - mx);
            rs += row[c];
        }
        z = sdl__cu_block_sum(z, shd);
        rs = sdl__cu_block_sum(rs, shd);
        double logz = mx + log(z);
        if (threadIdx.x == 0) {
            int32_t tb = t[b];
            double lsum = rs - (double)C * logz; /* sum_c log p_c */
            if (C > 1) logz_out[b] = logz;
            rowloss[b] = (tb < 0 || tb >= C) ? nan("")
                                              : -(1.0 - s) * ((double)row[tb] - logz) - (double)s / (double)C * lsum;
        }
    }
}
static __global__ void sdl__k_ce_bwd(const float *x, const double *logz, const int32_t *t, const float *dy, float *dx, int64_t B,
                                     int64_t C, float s) {
    float g = dy[0] / (float)(B ? B : 1), off = s / (float)C;
    for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
        const float *row = x + b * C;
        float *drow = dx + b * C;
        double lz = C > 1 ? logz[b] : (double)row[0];
        int64_t tb = t[b];
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
            drow[c] += g * ((float)exp((double)row[c] - lz) - (c == tb ? off + 1.0f - s : off));
    }
}
static void sdl__cu_ce_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = B ? x->numel / B : 0;
    double *rowloss = (double *)sdl__cu_arena_alloc((size_t)(B ? B : 1) * sizeof(double));
    if (!rowloss) return;
    if (B > 0 && C > 0) {
        sdl__k_ce_fwd<<<(unsigned)(B > 65535 ? 65535 : B), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            sdl_f32(x), sdl_i32(n->in[1]), B, C, n->attr.scalar.alpha, (double *)n->saved, rowloss);
        if (!SDL__CU_LAUNCHED("sdl__k_ce_fwd")) return;
    }
    sdl__k_reduce_final<<<1, SDL__CU_THREADS, 0, sdl__cu.stream>>>(rowloss, B, 1.0 / (double)(B ? B : 1), sdl_f32(n->out));
    SDL__CU_LAUNCHED("sdl__k_reduce_final");
}
static void sdl__cu_ce_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = B ? x->numel / B : 0;
    if (B * C <= 0 || !x->requires_grad) return;
    sdl__k_ce_bwd<<<(unsigned)(B > 65535 ? 65535 : B), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), (const double *)n->saved, sdl_i32(n->in[1]), n->out->grad, x->grad, B, C, n->attr.scalar.alpha);
    SDL__CU_LAUNCHED("sdl__k_ce_bwd");
}

/* ---- mse: loss = mean (x - t)^2;  dx += 2 (x - t) / n,  dt -= 2 (x - t) / n (each may be NULL) */
static __global__ void sdl__k_mse_bwd(const float *x, const float *t, const float *dy, float *dx, float *dt, int64_t n) {
    float g = 2.0f * dy[0] / (float)n;
    SDL__CU_LOOP(i, n) {
        float d = g * (x[i] - t[i]);
        if (dx) dx[i] += d;
        if (dt) dt[i] -= d;
    }
}
static void sdl__cu_mse_fwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    sdl__cu_reduce(sdl_f32(n->in[0]), sdl_f32(n->in[1]), len, 1, 1.0 / (double)(len ? len : 1), sdl_f32(n->out));
}
static void sdl__cu_mse_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *t = n->in[1];
    if (x->numel <= 0 || !(x->requires_grad || t->requires_grad)) return;
    sdl__k_mse_bwd<<<sdl__cu_grid(x->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), sdl_f32(t), n->out->grad, x->requires_grad ? x->grad : NULL, t->requires_grad ? t->grad : NULL, x->numel);
    SDL__CU_LAUNCHED("sdl__k_mse_bwd");
}

/* ---- nll: log_probs (B, C), targets i32 (B): loss = -mean_b x[b, t_b] (one block, double;
   a target outside [0, C) makes the loss NaN);  dx[b, t_b] -= dy / B */
static __global__ void sdl__k_nll_fwd(const float *x, const int32_t *t, int64_t B, int64_t C, float *out) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    for (int64_t b = threadIdx.x; b < B; b += blockDim.x) {
        int32_t tb = t[b];
        s -= tb >= 0 && tb < C ? (double)x[b * C + tb] : nan("");
    }
    s = sdl__cu_block_sum(s, sh);
    if (threadIdx.x == 0) out[0] = (float)(s / (double)(B ? B : 1));
}
static __global__ void sdl__k_nll_bwd(const int32_t *t, const float *dy, float *dx, int64_t B, int64_t C) {
    float g = dy[0] / (float)(B ? B : 1);
    SDL__CU_LOOP(b, B) {
        int32_t tb = t[b];
        if (tb >= 0 && tb < C) dx[b * C + tb] -= g;
    }
}
static void sdl__cu_nll_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    sdl__k_nll_fwd<<<1, SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_f32(x), sdl_i32(n->in[1]), x->shape[0], x->shape[1], sdl_f32(n->out));
    SDL__CU_LAUNCHED("sdl__k_nll_fwd");
}
static void sdl__cu_nll_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    if (x->shape[0] <= 0 || !x->requires_grad) return;
    sdl__k_nll_bwd<<<sdl__cu_grid(x->shape[0]), SDL__CU_THREADS, 0, sdl__cu.stream>>>(sdl_i32(n->in[1]), n->out->grad, x->grad, x->shape[0], x->shape[1]);
    SDL__CU_LAUNCHED("sdl__k_nll_bwd");
}

/* ---- bce with logits, mean over all n (sdl__cu_reduce mode 2):
   l = max(x, 0) - x t + log(1 + e^-|x|);  dx += (sigmoid(x) - t) / n;  dt += -x / n */
static __global__ void sdl__k_bce_bwd(const float *x, const float *t, const float *dy, float *dx, float *dt, int64_t n) {
    float g = dy[0] / (float)(n ? n : 1);
    SDL__CU_LOOP(i, n) {
        if (dx) dx[i] += g * sdl__bce_grad(x[i], t[i]);
        if (dt) dt[i] -= g * x[i];
    }
}
static void sdl__cu_bce_fwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    sdl__cu_reduce(sdl_f32(n->in[0]), sdl_f32(n->in[1]), len, 2, 1.0 / (double)(len ? len : 1), sdl_f32(n->out));
}
static void sdl__cu_bce_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *t = n->in[1];
    if (x->numel <= 0 || (!x->requires_grad && !t->requires_grad)) return;
    sdl__k_bce_bwd<<<sdl__cu_grid(x->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), sdl_f32(t), n->out->grad, x->requires_grad ? x->grad : NULL, t->requires_grad ? t->grad : NULL, x->numel);
    SDL__CU_LAUNCHED("sdl__k_bce_bwd");
}

/* ----------------------------------------------------------------------------------------
   >>cuda-optim: fused updates over the flat parameter array, the CPU's update rules (sdl.h
   >>optim) element for element
   sgd (PyTorch's form): g = grad + wd p;  v = mu v + g (v = g on the first step);
   p -= lr * (nesterov ? g + mu v : v)
   adam: g = grad + wd p (adamw: p *= 1 - lr wd instead);  m = b1 m + (1 - b1) g;
   v = b2 v + (1 - b2) g^2;  p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
   lars: trust = eta ||p|| / (||grad|| + wd ||p||) (1 when a norm is 0 or decay is off),
   then sgd on trust (grad + wd p)
   lamb: m, v as adam;  r = (m / bc1) / (sqrt(v / bc2) + eps) + wd p (kept in grad's place);
   trust = ||p|| / ||r|| (1 when a norm is 0 or decay is off);  p -= lr trust r
   The norms are per parameter tensor: a first kernel leaves per-block double sums (at most
   SDL__CU_NORM_BLOCKS, a number that depends only on the tensor's size), then every block of
   the update kernel adds them in the same fixed order. No atomics, no host round trip.
   ---------------------------------------------------------------------------------------- */
#define SDL__CU_NORM_BLOCKS 256

static __global__ void sdl__k_sgd(float *p, const float *grad, float *v, int64_t n, float lr, float mu, float wd, int first, int nesterov,
                                  const float *hp) {
    if (hp) { lr = hp[0]; first = hp[1] != 0.0f; }
    SDL__CU_LOOP(j, n) sdl__sgd_elem(&p[j], v ? &v[j] : NULL, grad[j] + wd * p[j], lr, mu, first, nesterov);
}

static __global__ void sdl__k_adam(float *p, const float *grad, float *m, float *v, int64_t n, float b1, float b2, float eps,
                                   float step_size, float sqrt_bc2, float wd, float shrink, int decoupled, const float *hp) {
    if (hp) { step_size = hp[2]; sqrt_bc2 = hp[3]; shrink = hp[4]; }
    SDL__CU_LOOP(j, n) sdl__adam_elem(&p[j], &m[j], &v[j], grad[j], b1, b2, eps, step_size, sqrt_bc2, wd, shrink, decoupled);
}

/* partial[2 b], partial[2 b + 1]: block b's sums of a^2 and c^2 */
static __global__ void sdl__k_sumsq2(const float *a, const float *c, int64_t n, double *partial) {
    __shared__ double sh[SDL__CU_THREADS];
    double s0 = 0.0, s1 = 0.0;
    SDL__CU_LOOP(j, n) {
        s0 += (double)a[j] * (double)a[j];
        s1 += (double)c[j] * (double)c[j];
    }
    s0 = sdl__cu_block_sum(s0, sh);
    s1 = sdl__cu_block_sum(s1, sh);
    if (threadIdx.x == 0) { partial[2 * blockIdx.x] = s0; partial[2 * blockIdx.x + 1] = s1; }
}

/* lamb's first pass: the moments, r in grad's place, and the partial sums of p^2 and r^2 */
static __global__ void sdl__k_lamb_moments(const float *p, float *g, float *m, float *v, int64_t n, float b1, float b2, float eps,
                                           float bc1, float bc2, float wd, double *partial, const float *hp) {
    __shared__ double sh[SDL__CU_THREADS];
    double s0 = 0.0, s1 = 0.0;
    if (hp) { bc1 = hp[5]; bc2 = hp[6]; }
    SDL__CU_LOOP(j, n) {
        float r = sdl__lamb_elem(&m[j], &v[j], g[j], p[j], b1, b2, eps, bc1, bc2, wd);
        g[j] = r;
        s0 += (double)p[j] * (double)p[j];
        s1 += (double)r * (double)r;
    }
    s0 = sdl__cu_block_sum(s0, sh);
    s1 = sdl__cu_block_sum(s1, sh);
    if (threadIdx.x == 0) { partial[2 * blockIdx.x] = s0; partial[2 * blockIdx.x + 1] = s1; }
}

/* the trust ratio from np partial sums (partial NULL: 1), then lars's sgd step or lamb's
   p -= lr trust r */
static __global__ void sdl__k_trust_update(float *p, const float *g, float *mom, int64_t n, const double *partial, int np, int lamb,
                                           float lr, float mu, float wd, float eta, int first, int nesterov, const float *hp) {
    __shared__ double sh[SDL__CU_THREADS];
    float trust = 1.0f;
    if (hp) { lr = hp[0]; first = hp[1] != 0.0f; }
    if (partial) {
        double a = 0.0, b = 0.0;
        for (int i = threadIdx.x; i < np; i += blockDim.x) { a += partial[2 * i]; b += partial[2 * i + 1]; }
        a = sdl__cu_block_sum(a, sh);
        b = sdl__cu_block_sum(b, sh);
        if (lamb) {
            if (a > 0.0 && b > 0.0) trust = (float)sqrt(a / b);
        } else {
            double pn = sqrt(a), gn = sqrt(b);
            if (pn > 0.0 && gn > 0.0) trust = (float)((double)eta * pn / (gn + (double)wd * pn));
        }
    }
    if (lamb) {
        float step = lr * trust;
        SDL__CU_LOOP(j, n) p[j] -= step * g[j];
        return;
    }
    SDL__CU_LOOP(j, n) sdl__sgd_elem(&p[j], mom ? &mom[j] : NULL, trust * (g[j] + wd * p[j]), lr, mu, first, nesterov);
}

/* the host-side scalars of o's update at step `step` (0 first) for weight decay wd, the
   SDL__CU_HP floats a captured step reads from its graph (>>cuda-graph): lr, first,
   lr / bc1, sqrt(bc2), 1 - lr wd, bc1, bc2 */
static void sdl__cu_optim_scalars(const struct sdl_optim *o, int64_t step, float wd, float *hp) {
    const sdl_optim_desc *d = &o->desc;
    double t = (double)(step + 1);
    float bc1 = (float)(1.0 - pow((double)d->beta1, t)), bc2 = (float)(1.0 - pow((double)d->beta2, t));
    hp[0] = o->lr;
    hp[1] = step == 0 ? 1.0f : 0.0f;
    hp[2] = o->lr / bc1;
    hp[3] = sqrtf(bc2);
    hp[4] = 1.0f - o->lr * wd;
    hp[5] = bc1;
    hp[6] = bc2;
    hp[7] = 0.0f;
}

/* the scalars of parameter i's update (its group's lr scale and weight decay, sdl.h's
   sdl__optim_param): 1, or 0 when it is frozen, -1 on an error (set) */
static int sdl__cu_param_scalars(struct sdl_optim *o, int i, float *wd, float *h, const float **hp) {
    float scale;
    if (!sdl__optim_param(o, i, &scale, wd)) return 0;
    *hp = sdl__cu_graph_hp(o, *wd);
    if (*hp && scale != 1.0f) {
        sdl__cu_graph_refuse("a parameter group with lr_scale != 1");
        return -1;
    }
    sdl__cu_optim_scalars(o, o->step, *wd, h);
    h[0] *= scale; /* the rates: lr, lr / bc1, and the decoupled decay 1 - lr wd */
    h[2] *= scale;
    h[4] = 1.0f - h[0] * *wd;
    return 1;
}

/* sgd and adam: one launch per run of parameters with the same group, weight decay and
   freezing (one launch when there are no groups, no frozen parameters and wd is 0); lars
   and lamb: two launches per parameter tensor (its norms). Frozen parameters are skipped.
   In a captured step every kernel also gets its scalars' device copy (hp), which it reads
   instead. */
static sdl_result sdl__cu_optim_step(struct sdl_optim *o) {
    sdl_model *m = o->model;
    const sdl_optim_desc *d = &o->desc;
    sdl_optim_kind kind = d->kind == SDL_OPTIM_DEFAULT ? SDL_OPTIM_SGD : d->kind;
    float mu = d->momentum;
    float *s0 = o->nstate > 0 ? o->state : NULL, *s1 = o->nstate > 1 ? o->state + m->param_floats : NULL;
    float h[SDL__CU_HP];
    if (kind == SDL_OPTIM_SGD || kind == SDL_OPTIM_ADAM || kind == SDL_OPTIM_ADAMW) {
        for (int i = 0; i < m->nparams;) {
            float si, wdi, sj, wdj;
            bool on = sdl__optim_param(o, i, &si, &wdi);
            int j = i + 1;
            while (j < m->nparams && sdl__optim_param(o, j, &sj, &wdj) == on && sj == si && wdj == wdi) j++;
            int64_t off = m->param_offset[i], len = m->param_offset[j] - off;
            const float *hp = NULL;
            if (on && len > 0 && sdl__cu_param_scalars(o, i, &wdi, h, &hp) < 0) return sdl_last_result();
            if (on && len > 0) {
                float *p = m->param_data + off, *g = m->grad_data + off;
                if (kind == SDL_OPTIM_SGD) {
                    sdl__k_sgd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
                        p, g, s0 ? s0 + off : NULL, len, h[0], mu, wdi, h[1] != 0.0f, d->nesterov, hp);
                    if (!SDL__CU_LAUNCHED("sdl__k_sgd")) return sdl_last_result();
                } else {
                    sdl__k_adam<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
                        p, g, s0 + off, s1 + off, len, d->beta1, d->beta2, d->eps, h[2], h[3], wdi, h[4],
                        kind == SDL_OPTIM_ADAMW, hp);
                    if (!SDL__CU_LAUNCHED("sdl__k_adam")) return sdl_last_result();
                }
            }
            i = j;
        }
        return SDL_OK;
    }
    if (kind != SDL_OPTIM_LARS && kind != SDL_OPTIM_LAMB)
        return sdl_fail(SDL_ERR_DEVICE, "cuda: optimizer kind %d has no GPU kernel", (int)kind);
    double *partial = (double *)sdl__cu_scratch(2 * SDL__CU_NORM_BLOCKS * sizeof(double));
    if (!partial) return sdl_last_result();
    bool lamb = kind == SDL_OPTIM_LAMB;
    for (int i = 0; i < m->nparams; i++) {
        int64_t off = m->param_offset[i], len = m->params[i]->numel;
        if (len <= 0) continue;
        bool decay = m->params[i]->decay;
        float wdi, *p = m->param_data + off, *g = m->grad_data + off;
        const float *hp = NULL;
        int run = sdl__cu_param_scalars(o, i, &wdi, h, &hp);
        if (run < 0) return sdl_last_result();
        if (run == 0) continue; /* frozen */
        unsigned np = sdl__cu_grid(len);
        if (np > SDL__CU_NORM_BLOCKS) np = SDL__CU_NORM_BLOCKS;
        if (lamb) {
            sdl__k_lamb_moments<<<np, SDL__CU_THREADS, 0, sdl__cu.stream>>>(p, g, s0 + off, s1 + off, len, d->beta1, d->beta2,
                                                                            d->eps, h[5], h[6], wdi, partial, hp);
            if (!SDL__CU_LAUNCHED("sdl__k_lamb_moments")) return sdl_last_result();
        } else if (decay) {
            sdl__k_sumsq2<<<np, SDL__CU_THREADS, 0, sdl__cu.stream>>>(p, g, len, partial);
            if (!SDL__CU_LAUNCHED("sdl__k_sumsq2")) return sdl_last_result();
        }
        sdl__k_trust_update<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            p, g, lamb ? NULL : (s0 ? s0 + off : NULL), len, decay ? partial : NULL, (int)np, lamb, h[0], mu, wdi,
            d->trust_coef, h[1] != 0.0f, d->nesterov, hp);
        if (!SDL__CU_LAUNCHED("sdl__k_trust_update")) return sdl_last_result();
    }
    return SDL_OK;
}

/* ----------------------------------------------------------------------------------------
   >>cuda-amp: the gradient helpers of the backend table (sdl_grad_scale, sdl_clip_grad_norm,
   gradient accumulation, the loss scaler in sdl.h), and mixed-precision GEMMs.

   sumsq: the sum of x^2 in double in two fixed-order stages (at most 1024 block sums, a
   number that depends only on n, then one block adds them), so a run repeats bit for bit;
   no atomics. Its one double comes back to the host (a wait for the GPU): clipping needs it
   for o->grad_norm and sdl_clip_grad_norm's result (PyTorch's clip_grad_norm_ returns a
   tensor instead and does not wait), the loss scaler for its skip decision.

   Mixed precision (PyTorch's autocast for matmuls, without its op lists): with
   sdl_cuda_set_precision(SDL_BF16 or SDL_F16) each GEMM converts its two f32 inputs into one
   reused device buffer of 2-byte values (round to nearest even, as __float2bfloat16 and
   __float2half_rn) and runs cublasGemmEx in bf16/fp16 with CUBLAS_COMPUTE_32F: f32 sums and
   f32 outputs. So weights are converted per GEMM that reads them (no cached copies to keep
   in sync with the f32 master weights, at the price of one pass over them per GEMM), and
   everything but the GEMMs (norms, softmax, losses, the optimizer) stays f32. Linear's
   backward converts dY once for its two GEMMs; attention keeps P and dS in the 2-byte type.
   ---------------------------------------------------------------------------------------- */
static __global__ void sdl__k_scale(float *x, int64_t n, float s) {
    SDL__CU_LOOP(i, n) x[i] *= s;
}
static void sdl__cu_scale(float *x, int64_t n, float s) {
    if (n <= 0) return;
    sdl__k_scale<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, n, s);
    SDL__CU_LAUNCHED("sdl__k_scale");
}

/* partial[b]: block b's sum of x^2 */
static __global__ void sdl__k_sumsq_partial(const float *x, int64_t n, double *partial) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    SDL__CU_LOOP(i, n) s += (double)x[i] * (double)x[i];
    s = sdl__cu_block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
/* out[0] = the sum of partial[0..np), one block */
static __global__ void sdl__k_sum_final(const double *partial, int np, double *out) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < np; i += blockDim.x) s += partial[i];
    s = sdl__cu_block_sum(s, sh);
    if (threadIdx.x == 0) out[0] = s;
}
static double sdl__cu_sumsq(const float *x, int64_t n) {
    if (n <= 0) return 0.0;
    unsigned g = sdl__cu_grid(n);
    if (g > 1024) g = 1024;
    double *partial = (double *)sdl__cu_scratch((size_t)(g + 1) * sizeof(double)), h = NAN;
    if (!partial) return NAN;
    sdl__k_sumsq_partial<<<g, SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, n, partial);
    if (!SDL__CU_LAUNCHED("sdl__k_sumsq_partial")) return NAN;
    sdl__k_sum_final<<<1, SDL__CU_THREADS, 0, sdl__cu.stream>>>(partial, (int)g, partial + g);
    if (!SDL__CU_LAUNCHED("sdl__k_sum_final")) return NAN;
    if (!sdl__cu_copy_ok(&h, partial + g, sizeof h, SDL_CPU, SDL_CUDA)) return NAN;
    return h;
}


static __global__ void sdl__k_to_bf16(const float *x, __nv_bfloat16 *y, int64_t n) {
    SDL__CU_LOOP(i, n) y[i] = __float2bfloat16(x[i]);
}
static __global__ void sdl__k_to_f16(const float *x, __half *y, int64_t n) {
    SDL__CU_LOOP(i, n) y[i] = __float2half_rn(x[i]);
}

static void sdl__cu_amp_release(void) {
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    if (sdl__cu_amp.buf) {
        if (be) be->dealloc(sdl__cu_amp.buf);
        else sdl__cu_dealloc(sdl__cu_amp.buf);
    }
    sdl__cu_amp.buf = NULL;
    sdl__cu_amp.cap = 0;
    sdl__cu_amp.precision = SDL_F32;
    sdl__cu_amp.a = NULL;
}

/* the elements a batch of row-major (rows, cols) matrices with leading dim ld spans */
static int64_t sdl__cu_span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
    if (rows <= 0 || cols <= 0) return 0;
    int64_t one = (rows - 1) * ld + cols;
    return stride == 0 || batch <= 1 ? one : (batch - 1) * stride + one;
}

/* converts n floats into dst as the current precision's 2-byte type */
static bool sdl__cu_to_half(const float *x, void *dst, int64_t n) {
    if (n <= 0) return true;
    if (sdl__cu_amp.precision == SDL_BF16) {
        sdl__k_to_bf16<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, (__nv_bfloat16 *)dst, n);
        return SDL__CU_LAUNCHED("sdl__k_to_bf16");
    }
    sdl__k_to_f16<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, (__half *)dst, n);
    return SDL__CU_LAUNCHED("sdl__k_to_f16");
}

static size_t sdl__cu_half_bytes(int64_t n) { return ((size_t)n * 2 + SDL__CU_ALIGN - 1) & ~(size_t)(SDL__CU_ALIGN - 1); }

/* the conversion buffer with room for `need` bytes (NULL and an error recorded when it cannot
   grow); growing it loses what it held */
static void *sdl__cu_amp_buffer(size_t need) {
    if (need > sdl__cu_amp.cap) {
        const sdl_backend *be = sdl_get_backend(SDL_CUDA);
        if (sdl__cu_amp.buf) be->dealloc(sdl__cu_amp.buf); /* waits for the stream */
        size_t cap = need > 2 * sdl__cu_amp.cap ? need : 2 * sdl__cu_amp.cap;
        sdl__cu_amp.buf = be->alloc(cap);
        sdl__cu_amp.cap = sdl__cu_amp.buf ? cap : 0;
        if (!sdl__cu_amp.buf) sdl__cu_record(sdl_last_result());
    }
    return sdl__cu_amp.buf;
}

/* C = alpha op(A) op(B) + beta C on 2-byte A and B of the precision's type, f32 sums and C */
static void sdl__cu_gemm_half(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *ha, int64_t lda, int64_t sA,
                              const void *hb, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc, int64_t sC, int64_t batch) {
    cudaDataType t = sdl__cu_amp.precision == SDL_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1) {
        SDL__CUBLAS(cublasGemmEx(sdl__cu.blas, opb, opa, (int)N, (int)M, (int)K, &alpha, hb, t, (int)ldb, ha, t, (int)lda,
                                 &beta, C, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
        SDL__CUBLAS(cublasGemmStridedBatchedEx(sdl__cu.blas, opb, opa, (int)N, (int)M, (int)K, &alpha, hb, t, (int)ldb, (long long)sB,
                                               ha, t, (int)lda, (long long)sA, &beta, C, CUDA_R_32F, (int)ldc, (long long)sC,
                                               (int)batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
}

/* sdl__cu_gemm(_batched) in bf16/fp16 (the callers checked the sizes against INT_MAX);
   false when the precision is f32 and the caller goes on. The buffer is reused by the next
   GEMM: kernels run in stream order, and growing it waits for the stream first. A's copy is
   kept for the next GEMM when it asked (sdl__cu_gemm_same_a) and nothing moved it. */
static bool sdl__cu_gemm_lp(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, int64_t sA,
                            const float *B, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc, int64_t sC, int64_t batch) {
    bool same_a = sdl__cu_amp.reuse_a;
    sdl__cu_amp.reuse_a = false;
    if (sdl__cu_amp.precision != SDL_BF16 && sdl__cu_amp.precision != SDL_F16) return false;
    int64_t na = sdl__cu_span(ta ? K : M, ta ? M : K, lda, sA, batch), nb = sdl__cu_span(tb ? N : K, tb ? K : N, ldb, sB, batch);
    size_t abytes = sdl__cu_half_bytes(na);
    same_a = same_a && A == sdl__cu_amp.a && na == sdl__cu_amp.na && abytes + (size_t)nb * 2 <= sdl__cu_amp.cap;
    sdl__cu_amp.a = NULL; /* until A's copy is made below */
    void *ha = sdl__cu_amp_buffer(abytes + (size_t)nb * 2), *hb = (char *)ha + abytes;
    if (!ha) return true;
    if ((!same_a && !sdl__cu_to_half(A, ha, na)) || !sdl__cu_to_half(B, hb, nb)) return true;
    sdl__cu_amp.a = A;
    sdl__cu_amp.na = na;
    sdl__cu_gemm_half(ta, tb, M, N, K, alpha, ha, lda, sA, hb, ldb, sB, beta, C, ldc, sC, batch);
    return true;
}

/* sdl__cu_gemm_batched with A already in the precision's 2-byte type (attention's P and dS;
   the caller checked the sizes with an f32 GEMM of the same shape) */
static void sdl__cu_gemm_batched_half_a(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *Ah, int64_t lda,
                                        int64_t sA, const float *B, int64_t ldb, int64_t sB, float beta, float *C, int64_t ldc,
                                        int64_t sC, int64_t batch) {
    int64_t nb = sdl__cu_span(tb ? N : K, tb ? K : N, ldb, sB, batch);
    sdl__cu_amp.reuse_a = false;
    sdl__cu_amp.a = NULL; /* the buffer's start now holds B */
    void *hb = sdl__cu_amp_buffer((size_t)nb * 2);
    if (hb && sdl__cu_to_half(B, hb, nb)) sdl__cu_gemm_half(ta, tb, M, N, K, alpha, Ah, lda, sA, hb, ldb, sB, beta, C, ldc, sC, batch);
}

SDL_API sdl_result sdl_cuda_set_precision(sdl_dtype precision) {
    if (precision == SDL_DTYPE_DEFAULT) precision = SDL_F32;
    if (precision != SDL_F32 && precision != SDL_BF16 && precision != SDL_F16)
        return sdl_fail(SDL_ERR_ARG, "cuda: set_precision: %d is not SDL_F32, SDL_BF16 or SDL_F16", (int)precision);
    sdl__cu_amp.precision = precision;
    sdl__cu_amp.a = NULL; /* a kept copy is of the old type */
    return SDL_OK;
}
SDL_API sdl_dtype sdl_cuda_precision(void) { return sdl__cu_amp.precision; }

/* ----------------------------------------------------------------------------------------
   >>cuda-graph: capture a whole training step once as a CUDA graph, replay it with one
   launch (see Graphs in the doc block). The graph holds raw device addresses: the step's
   arena tensors (the same sequence of allocations gives the same addresses), the model's
   and the optimizer's arrays, static inputs and the scratch buffer. What changes between
   steps on the host (the optimizer's lr and step count, the RNG's seed and counter) lives
   in the graph's device scalars, which one small kernel sets before each launch.
   ---------------------------------------------------------------------------------------- */
static __global__ void sdl__k_graph_words(uint64_t *dst, sdl__cu_graph_words v, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = v.w[i];
}

SDL_API sdl_tensor *sdl_cuda_tensor_new(sdl_shape shape, sdl_dtype dtype) {
    if (sdl_cuda_init() != SDL_OK) return NULL;
    sdl_tensor hdr;
    size_t bytes;
    if (!sdl__tensor_init(&hdr, shape, dtype, &bytes)) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl__alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = hdr;
    t->device = SDL_CUDA;
    t->data = sdl__cu_alloc(bytes);
    if (!t->data) { SDL_DEALLOC(t); return NULL; }
    sdl__cu_memset0(t->data, bytes);
    return t;
}

SDL_API void sdl_cuda_tensor_free(sdl_tensor *t) {
    if (!t) return;
    sdl__cu_dealloc(t->data);
    SDL_DEALLOC(t);
}

SDL_API sdl_result sdl_cuda_copy(sdl_tensor *dst, const sdl_tensor *src) {
    if (!dst || !src) return sdl_fail(SDL_ERR_ARG, "cuda_copy: NULL tensor");
    if (dst->numel != src->numel || dst->dtype != src->dtype) {
        char a[96], b[96];
        return sdl_fail(SDL_ERR_SHAPE, "cuda_copy: %s into %s: numel or dtype differ", sdl_shape_str(sdl_tensor_shape(src), a, sizeof a),
                        sdl_shape_str(sdl_tensor_shape(dst), b, sizeof b));
    }
    if ((dst->device == SDL_CUDA || src->device == SDL_CUDA) && sdl_cuda_init() != SDL_OK) return sdl_last_result();
    bool ok = sdl__cu_copy_ok(dst->data, src->data, (size_t)src->numel * sdl_dtype_size(src->dtype), dst->device, src->device);
    return ok ? SDL_OK : sdl_last_result();
}

SDL_API sdl_result sdl_cuda_graph_begin(void) {
    if (!sdl__cu.ready) return sdl_fail(SDL_ERR_STATE, "cuda graph: sdl_cuda_init() was not called");
    if (sdl__cug.cur || sdl__cu_capturing()) return sdl_fail(SDL_ERR_STATE, "cuda graph: begin: a capture is already on");
    if (sdl__cu.nchunks != 1)
        return sdl_fail(SDL_ERR_STATE, "cuda graph: begin: run the step once eagerly first (and sdl_arena_reset()), so the device arena is big enough");
    if (sdl__cu.used != 0)
        return sdl_fail(SDL_ERR_STATE, "cuda graph: begin: call sdl_arena_reset() first (the device arena holds %zu bytes)", sdl__cu.used);
    sdl_cuda_graph *g = (sdl_cuda_graph *)sdl__alloc(sizeof(sdl_cuda_graph));
    if (!g) return sdl_last_result();
    memset(g, 0, sizeof *g);
    g->dev = (uint64_t *)sdl__cu_alloc(SDL__CU_GRAPH_WORDS * sizeof(uint64_t));
    if (!g->dev) { SDL_DEALLOC(g); return sdl_last_result(); }
    sdl__cu_memset0(g->dev, SDL__CU_GRAPH_WORDS * sizeof(uint64_t));
    g->rng_counter0 = sdl_rng_state();
    if (!SDL__CU(cudaStreamBeginCapture(sdl__cu.stream, cudaStreamCaptureModeThreadLocal))) {
        sdl__cu_dealloc(g->dev);
        SDL_DEALLOC(g);
        return sdl_last_result();
    }
    sdl__cug.cur = g;
    sdl__cug.failed = false;
    return SDL_OK;
}

SDL_API void sdl_cuda_graph_free(sdl_cuda_graph *g) {
    if (!g) return;
    if (g->exec) SDL__CU(cudaGraphExecDestroy(g->exec));
    sdl__cu_dealloc(g->dev);
    for (int i = 0; i < g->nkeep; i++) SDL_DEALLOC(g->keep[i]);
    SDL_DEALLOC(g);
}

SDL_API sdl_cuda_graph *sdl_cuda_graph_end(void) {
    sdl_cuda_graph *g = sdl__cug.cur;
    if (!g) { sdl_fail(SDL_ERR_STATE, "cuda graph: end without begin"); return NULL; }
    sdl__cug.cur = NULL;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(sdl__cu.stream, &graph);
    /* nothing ran: the host state goes back to where the capture began */
    for (int i = 0; i < g->noptims; i++) {
        g->optim[i].steps = g->optim[i].o->step - g->optim[i].step0;
        g->optim[i].o->step = g->optim[i].step0;
    }
    g->rng_used = sdl_rng_state() - g->rng_counter0;
    sdl_rng_set_state(sdl_rng_seed(), g->rng_counter0);
    g->arena_base = sdl__cu.nchunks == 1 ? sdl__cu.chunk[0].base : NULL;
    g->arena_used = sdl__cu.used;
    g->scratch = sdl__cu.scratch;
    bool ok = !sdl__cug.failed && SDL__CU(e) && g->arena_base && SDL__CU(cudaGraphInstantiate(&g->exec, graph, 0));
    if (graph) SDL__CU(cudaGraphDestroy(graph));
    if (!ok) {
        char msg[512];
        sdl_result r = sdl__cug.failed ? sdl__cug.code : sdl_last_result();
        snprintf(msg, sizeof msg, "%s", sdl__cug.failed ? sdl__cug.msg : sdl_last_error());
        sdl__cug.failed = false;
        sdl_cuda_graph_free(g);
        sdl_fail(r != SDL_OK ? r : SDL_ERR_DEVICE, "%s", msg);
        return NULL;
    }
    return g;
}

SDL_API sdl_tensor *sdl_cuda_graph_keep(sdl_cuda_graph *g, const sdl_tensor *t) {
    if (!g || !t) { sdl_fail(SDL_ERR_ARG, "cuda graph: keep: NULL %s", g ? "tensor" : "graph"); return NULL; }
    if (g->nkeep == (int)(sizeof g->keep / sizeof g->keep[0])) { sdl_fail(SDL_ERR_ARG, "cuda graph: keep: at most 16 tensors"); return NULL; }
    sdl_tensor *k = (sdl_tensor *)sdl__alloc(sizeof(sdl_tensor));
    if (!k) return NULL;
    *k = *t;
    k->grad = NULL;
    k->requires_grad = false;
    k->heap = false;
    k->node = NULL;
    k->model = NULL;
    k->param_index = -1;
    k->first_use = NULL;
    g->keep[g->nkeep++] = k;
    return k;
}

SDL_API sdl_tensor *sdl_cuda_graph_output(const sdl_cuda_graph *g) { return g && g->nkeep > 0 ? g->keep[0] : NULL; }

SDL_API sdl_cuda_graph *sdl_cuda_graph_capture(sdl_tensor *(*step)(void *ctx), void *ctx) {
    if (!step) { sdl_fail(SDL_ERR_ARG, "cuda graph: capture: NULL step function"); return NULL; }
    if (sdl_cuda_graph_begin() != SDL_OK) return NULL;
    sdl_tensor *out = step(ctx);
    sdl_cuda_graph *g = sdl_cuda_graph_end();
    if (g && out && !sdl_cuda_graph_keep(g, out)) { sdl_cuda_graph_free(g); return NULL; }
    return g;
}

SDL_API sdl_result sdl_cuda_graph_replay(sdl_cuda_graph *g) {
    if (!g) return sdl_fail(SDL_ERR_ARG, "cuda graph: replay: NULL graph");
    if (sdl__cug.cur || sdl__cu_capturing()) return sdl_fail(SDL_ERR_STATE, "cuda graph: replay inside a capture");
    if (sdl__cu.nchunks != 1 || sdl__cu.chunk[0].base != g->arena_base || sdl__cu.chunk[0].cap < g->arena_used)
        return sdl_fail(SDL_ERR_STATE, "cuda graph: replay: the device arena was reallocated after the capture (a bigger eager step grew it): capture again");
    if (g->scratch && sdl__cu.scratch != g->scratch)
        return sdl_fail(SDL_ERR_STATE, "cuda graph: replay: the device scratch buffer was reallocated after the capture (a bigger conv or optimizer): capture again");
    if (sdl__cu.used != 0)
        return sdl_fail(SDL_ERR_STATE, "cuda graph: replay: call sdl_arena_reset() before each replay (the device arena holds %zu bytes)", sdl__cu.used);
    sdl__cu_graph_words v;
    memset(&v, 0, sizeof v);
    uint64_t seed = sdl_rng_seed(), counter = sdl_rng_state();
    v.w[0] = seed;
    v.w[1] = counter - g->rng_counter0;
    float hp[SDL__CU_GRAPH_SLOTS * SDL__CU_HP];
    memset(hp, 0, sizeof hp);
    for (int s = 0; s < g->nslots; s++)
        sdl__cu_optim_scalars(g->slot[s].o, g->slot[s].o->step + g->slot[s].k, g->slot[s].wd, hp + s * SDL__CU_HP);
    memcpy(v.w + 2, hp, sizeof hp);
    int words = 2 + (g->nslots * SDL__CU_HP + 1) / 2;
    sdl__k_graph_words<<<1, 64, 0, sdl__cu.stream>>>(g->dev, v, words);
    if (!SDL__CU_LAUNCHED("sdl__k_graph_words") || !SDL__CU(cudaGraphLaunch(g->exec, sdl__cu.stream))) return sdl_last_result();
    /* the host state moves on as an eager step's would */
    for (int i = 0; i < g->noptims; i++) g->optim[i].o->step += g->optim[i].steps;
    sdl_rng_set_state(seed, counter + g->rng_used);
    sdl__cu.used = sdl__cu.step_bytes = g->arena_used; /* the step's tensors (kept ones too) stay until sdl_arena_reset */
    return SDL_OK;
}

/* ----------------------------------------------------------------------------------------
   >>cuda-init: the backend table, set-up and tear-down
   ---------------------------------------------------------------------------------------- */
SDL_API bool sdl_cuda_available(void) {
    int count = 0;
    bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
    (void)cudaGetLastError(); /* "no device" must not stay as the last error */
    return ok;
}

SDL_API void sdl_cuda_shutdown(void) {
    if (sdl__cu.stream) SDL__CU(cudaStreamSynchronize(sdl__cu.stream));
    sdl__cu_arena_free();
    sdl__cu_amp_release();
    if (sdl__cu.scratch) {
        const sdl_backend *be = sdl_get_backend(SDL_CUDA);
        if (be) be->dealloc(sdl__cu.scratch);
        else sdl__cu_dealloc(sdl__cu.scratch);
    }
    sdl_backend none;
    memset(&none, 0, sizeof none);
    sdl_register_backend(SDL_CUDA, &none);
    if (sdl__cu.blas) SDL__CUBLAS(cublasDestroy(sdl__cu.blas));
    if (sdl__cu.workspace) SDL__CU(cudaFree(sdl__cu.workspace));
    if (sdl__cu.t0) SDL__CU(cudaEventDestroy(sdl__cu.t0));
    if (sdl__cu.t1) SDL__CU(cudaEventDestroy(sdl__cu.t1));
    if (sdl__cu.stream) SDL__CU(cudaStreamDestroy(sdl__cu.stream));
    memset(&sdl__cu, 0, sizeof sdl__cu);
}

SDL_API sdl_result sdl_cuda_init(void) {
    if (sdl__cu.ready) return SDL_OK;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        return sdl_fail(SDL_ERR_DEVICE, "cuda: no GPU found (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    bool ok = SDL__CU(cudaStreamCreateWithFlags(&sdl__cu.stream, cudaStreamNonBlocking)) &&
              SDL__CU(cudaEventCreate(&sdl__cu.t0)) && SDL__CU(cudaEventCreate(&sdl__cu.t1)) &&
              SDL__CUBLAS(cublasCreate(&sdl__cu.blas)) && SDL__CUBLAS(cublasSetStream(sdl__cu.blas, sdl__cu.stream)) &&
              SDL__CU(cudaMalloc(&sdl__cu.workspace, SDL_CUDA_WORKSPACE)) &&
              SDL__CUBLAS(cublasSetWorkspace(sdl__cu.blas, sdl__cu.workspace, SDL_CUDA_WORKSPACE));
    if (!ok) {
        sdl_result r = sdl_last_result();
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sdl_last_error());
        sdl_cuda_shutdown();
        return sdl_fail(r, "%s", msg);
    }
    sdl_backend *be = &sdl__cu.table;
    memset(be, 0, sizeof *be);
    be->name = "cuda";
    be->alloc = sdl__cu_alloc;
    be->dealloc = sdl__cu_dealloc;
    be->memset0 = sdl__cu_memset0;
    be->copy = sdl__cu_copy;
    be->copy_checked = sdl__cu_copy_ok;
    be->arena_alloc = sdl__cu_arena_alloc_zeroed;
    be->arena_alloc_raw = sdl__cu_arena_alloc;
    be->arena_reset = sdl__cu_arena_reset;
    be->optim_step = sdl__cu_optim_step;
    be->scale = sdl__cu_scale;
    be->sumsq = sdl__cu_sumsq;
    be->set_precision = sdl_cuda_set_precision; /* sdl_autocast */
    /* >>cuda-table: the CUDA columns of sdl.h's SDL_OPS (new ops get their kernels there) */
#define SDL__CU_KERNELS(NAME, name, f, b, cf, cb) be->forward[SDL_OP_##NAME] = cf; be->backward[SDL_OP_##NAME] = cb;
    SDL_OPS(SDL__CU_KERNELS)
#undef SDL__CU_KERNELS
    sdl_register_backend(SDL_CUDA, be);
    sdl__cu.ready = true;
    return SDL_OK;
}

SDL_API sdl_result sdl_cuda_synchronize(void) {
    if (!sdl__cu.ready) return sdl_fail(SDL_ERR_STATE, "cuda: sdl_cuda_init() was not called");
    SDL__CU(cudaStreamSynchronize(sdl__cu.stream));
    sdl_result r = sdl__cu.first_error;
    if (r != SDL_OK) sdl_fail(r, "%s", sdl__cu.first_msg);
    sdl__cu.first_error = SDL_OK;
    return r;
}

SDL_API void *sdl_cuda_stream(void) { return (void *)sdl__cu.stream; }
SDL_API void sdl_cuda_set_tf32(bool on) { sdl__cu.tf32 = on; }

SDL_API void sdl_cuda_timer_start(void) {
    if (sdl__cu.ready) SDL__CU(cudaEventRecord(sdl__cu.t0, sdl__cu.stream));
}

SDL_API float sdl_cuda_timer_stop(void) {
    float ms = 0.0f;
    if (!sdl__cu.ready) return 0.0f;
    if (SDL__CU(cudaEventRecord(sdl__cu.t1, sdl__cu.stream)) && SDL__CU(cudaEventSynchronize(sdl__cu.t1)))
        SDL__CU(cudaEventElapsedTime(&ms, sdl__cu.t0, sdl__cu.t1));
    return ms;
}

/* ----------------------------------------------------------------------------------------
   >>cuda-move: tensors and models between host and device (sdl.h's sdl_tensor_to and
   sdl_model_to through this backend's table), and "cuda:N" for sdl_device_parse
   ---------------------------------------------------------------------------------------- */
SDL_API sdl_tensor *sdl_cuda_to_device(sdl_tensor *t) { return sdl_tensor_to(t, SDL_CUDA); }
SDL_API sdl_tensor *sdl_cuda_to_host(sdl_tensor *t) { return sdl_tensor_to(t, SDL_CPU); }
SDL_API sdl_result sdl_cuda_model_to_device(sdl_model *m) { return sdl_model_to(m, SDL_CUDA); }
SDL_API sdl_result sdl_cuda_model_to_host(sdl_model *m) { return sdl_model_to(m, SDL_CPU); }

/* sdl.h starts the backend through this on first use: index -1 the current device, else
   that one (set before the first init; one device per process) */
static sdl_result sdl__cu_open(int index) {
    if (index >= 0) {
        int count = 0, cur = -1;
        if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
        (void)cudaGetLastError();
        if (index >= count) return sdl_fail(SDL_ERR_DEVICE, "cuda:%d: this machine has %d CUDA device%s", index, count, count == 1 ? "" : "s");
        if (sdl__cu.ready) {
            if (SDL__CU(cudaGetDevice(&cur)) && cur != index)
                return sdl_fail(SDL_ERR_STATE, "cuda:%d: this process already runs on cuda:%d (one device per process)", index, cur);
        } else if (!SDL__CU(cudaSetDevice(index))) {
            return sdl_last_result();
        }
    }
    return sdl_cuda_init();
}
/* a C++ static initializer (nvcc compiles this file as C++): the backend is known before main */
static const bool sdl__cu_registered = (sdl_register_device(SDL_CUDA, sdl__cu_open), true);

#endif /* SDL_CUDA_IMPLEMENTATION_DONE */
#endif /* SDL_CUDA_IMPLEMENTATION */

/* >>cuda-stubs: compiled by cc or mpicc, the settings a device-agnostic program hands on
   (--tf32, the shutdown after a GPU run) exist, so one file links everywhere with no #ifdef,
   as torch.cuda's calls exist in a CPU build of PyTorch. There is no GPU to set: both do
   nothing. (The precision goes through sdl.h's sdl_autocast, which any build has.) */
#if defined(SDL_CUDA_IMPLEMENTATION) && !defined(__CUDACC__) && !defined(SDL_CUDA_IMPLEMENTATION_DONE)
#define SDL_CUDA_IMPLEMENTATION_DONE
SDL_API void sdl_cuda_set_tf32(bool on) { (void)on; }
SDL_API void sdl_cuda_shutdown(void) {}
#endif
