/* sdl_cuda.h - v0.1 - the CUDA backend for sdl - public domain or MIT (see sdl.h)

   Runs sdl's ops on an NVIDIA GPU. A tensor whose device is SDL_CUDA keeps its header in host
   memory and its data (and gradient) in GPU memory; ops on such tensors run CUDA kernels and
   cuBLAS, backward and the optimizer step stay on the GPU, and nothing comes back to the host
   unless you ask (sdl_item, sdl_count_correct, sdl_cuda_to_host).

   Do this:
      #define SDL_CUDA_IMPLEMENTATION
   before you include this file in *one* .cu file compiled by nvcc. Include sdl.h first.
   Other files (C or C++, any compiler) may include it without the macro: the declarations
   need no CUDA header.

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

   TOPICS
      Devices     sdl_cuda_init() registers the backend for the current CUDA device (call
                  cudaSetDevice first to pick another; one device per process). Everything
                  runs in order on one stream, sdl_cuda_stream().
      Memory      A model's packed arrays (parameters, gradients, buffers) move to the GPU
                  with sdl_cuda_model_to_device; make the optimizer after that, so its state
                  is allocated there too. Step tensors come from a device arena: one
                  cudaMalloc'd block, bump allocation, zeroed with one cudaMemsetAsync per
                  sdl_arena_reset(). It grows like the CPU arena, so after the first steps a
                  step calls cudaMalloc no more.
      Copies      Host <-> device copies wait for the GPU before they return, so the host
                  buffer may be reused or read at once. sdl_cuda_host_alloc gives pinned
                  memory, which copies faster.
      Errors      Every CUDA and cuBLAS call is checked; a failure sets sdl_last_error() to
                  "cuda: <call> failed: <reason> at <file>:<line>" and the first such error
                  is kept until sdl_cuda_synchronize() returns it. Kernels run
                  asynchronously, so a bad kernel may be reported at the next copy or sync.
                  Out-of-range class targets give a NaN loss (no host check on the GPU).
      Precision   f32 everywhere. sdl_cuda_set_tf32(true) lets cuBLAS round GEMM inputs to
                  TF32 (tensor cores; about 1e-3 relative error instead of 1e-6).
      Determinism Reductions use a fixed order (no atomics), so a run repeats bit for bit on
                  the same GPU; results differ from the CPU in the last bits.

   TODO (in this order)
      - the other ops of sdl.h (conv via im2col + cuBLAS or cuDNN, pooling, batch/layer norm,
        dropout, embedding, activations, softmax, concat/transpose, attention, nll, bce)
      - the other optimizers (Adam, AdamW, LARS, LAMB) as fused kernels like SGD's
      - one launch for SGD with per-parameter weight decay (now one launch per run of
        parameters with the same decay flag)
      - bf16/fp16 mixed precision: bf16 copies of weights and activations, cublasGemmEx with
        f32 accumulation, f32 master weights, a loss scale for fp16
      - CUDA graphs: capture a whole step once (the arena makes addresses repeat) and replay
      - overlap: async H2D copies from pinned buffers on a second stream with events
      - faster bias/broadcast reductions (now simple deterministic block sums) and a warp
        per row in cross entropy when there are few classes (now a block of 256 per row)
      - device paths for the core's other host loops over the flat arrays (gradient
        clipping and scaling, checkpoints of optimizer state: move the model to the host
        with sdl_cuda_model_to_host before saving, for now)
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

#ifdef __cplusplus
}
#endif
#endif /* SDL_CUDA_H_INCLUDED */

/* ========================================================================================
   IMPLEMENTATION
   ======================================================================================== */
#ifdef SDL_CUDA_IMPLEMENTATION
#ifndef SDL_CUDA_IMPLEMENTATION_DONE
#define SDL_CUDA_IMPLEMENTATION_DONE

#ifndef __CUDACC__
#error "sdl_cuda.h: compile the file that defines SDL_CUDA_IMPLEMENTATION with nvcc"
#endif

#include <cuda_runtime.h>
#include <cublas_v2.h>
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
    if (e == cudaSuccess) e = cudaStreamSynchronize(sdl__cu.stream);
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
   >>cuda-memory: device blocks, copies, the step arena, pinned host memory
   ---------------------------------------------------------------------------------------- */
static void *sdl__cu_alloc(size_t bytes) {
    void *p = NULL;
    if (!SDL__CU(cudaMalloc(&p, bytes < SDL__CU_ALIGN ? SDL__CU_ALIGN : bytes))) return NULL;
    return p;
}

static void sdl__cu_dealloc(void *p) {
    if (!p) return;
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
    if (!SDL__CU(cudaMemcpyAsync(dst, src, bytes, kind, sdl__cu.stream))) return false;
    return kind == cudaMemcpyDeviceToDevice || SDL__CU(cudaStreamSynchronize(sdl__cu.stream));
}

static void sdl__cu_copy(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev) {
    sdl__cu_copy_ok(dst, src, bytes, dst_dev, src_dev);
}

/* The arena: memory past `used` in the current block is always zero. A new block is
   zeroed whole; reset zeroes what the step used. Blocks come from the registered table's
   alloc, so a test can count them. */
static bool sdl__cu_arena_add(size_t cap) {
    if (sdl__cu.nchunks == SDL__CU_MAX_CHUNKS) {
        sdl_fail(SDL_ERR_OOM, "cuda: device arena: too many blocks in one step");
        return false;
    }
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    char *p = be ? (char *)be->alloc(cap) : NULL;
    if (!p) return false;
    be->memset0(p, cap);
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
    sdl__cu.used = 0;
    sdl__cu.total_cap = 0;
}

static void *sdl__cu_arena_alloc(size_t bytes) {
    size_t need = (bytes + SDL__CU_ALIGN - 1) & ~(size_t)(SDL__CU_ALIGN - 1);
    if (need < bytes) { sdl_fail(SDL_ERR_OOM, "cuda: device arena: size overflow (%zu bytes)", bytes); return NULL; }
    if (need == 0) need = SDL__CU_ALIGN;
    int n = sdl__cu.nchunks;
    if (n == 0 || sdl__cu.chunk[n - 1].cap - sdl__cu.used < need) {
        size_t cap = need > SDL_CUDA_ARENA_MIN ? need : SDL_CUDA_ARENA_MIN;
        if (sdl__cu.total_cap > cap) cap = sdl__cu.total_cap; /* grow geometrically */
        if (!sdl__cu_arena_add(cap)) return NULL;
        n = sdl__cu.nchunks;
    }
    void *p = sdl__cu.chunk[n - 1].base + sdl__cu.used;
    sdl__cu.used += need;
    return p;
}

static void sdl__cu_arena_reset(void) {
    if (sdl__cu.nchunks > 1) { /* several blocks: replace by one that holds them all */
        size_t total = sdl__cu.total_cap;
        sdl__cu_arena_free();
        sdl__cu_arena_add(total);
    } else if (sdl__cu.nchunks == 1) {
        sdl__cu_memset0(sdl__cu.chunk[0].base, sdl__cu.used);
    }
    sdl__cu.used = 0;
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

/* b broadcast into a (as sdl.h's sdl__bcast): for each dim of a its size, a's row-major
   stride, and b's stride (0 where b has size 1 or no such dim) */
typedef struct sdl__cu_bcast {
    int nd;
    int64_t shape[SDL_MAX_DIMS], astride[SDL_MAX_DIMS], bstride[SDL_MAX_DIMS];
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
    for (int d = bc.nd - 1; d >= 0; d--) {
        j += (i % bc.shape[d]) * bc.bstride[d];
        i /= bc.shape[d];
    }
    return j;
}

/* db[c] += sum_r dy[r, c] (times a[r, c] when a is given); dy (R, C). Blocks of 32 x 8:
   x runs over 32 columns (coalesced), y over rows; then a fixed-order sum of the 8 rows. */
static __global__ void sdl__k_colsum(const float *dy, const float *a, int64_t R, int64_t C, float *db) {
    __shared__ float sh[8][33];
    for (int64_t c0 = (int64_t)blockIdx.x * 32; c0 < C; c0 += (int64_t)gridDim.x * 32) {
        int64_t c = c0 + threadIdx.x;
        float s = 0.0f;
        if (c < C)
            for (int64_t r = threadIdx.y; r < R; r += 8) s += a ? dy[r * C + c] * a[r * C + c] : dy[r * C + c];
        sh[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && c < C) {
            float t = 0.0f;
            for (int k = 0; k < 8; k++) t += sh[k][threadIdx.x];
            db[c] += t;
        }
        __syncthreads();
    }
}

static void sdl__cu_colsum(const float *dy, const float *a, int64_t R, int64_t C, float *db) {
    if (R <= 0 || C <= 0) return;
    int64_t tiles = (C + 31) / 32;
    sdl__k_colsum<<<(unsigned)(tiles > 65535 ? 65535 : tiles), dim3(32, 8), 0, sdl__cu.stream>>>(dy, a, R, C, db);
    SDL__CU_LAUNCHED("sdl__k_colsum");
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
   mode 0: x[i];  mode 1: (x[i] - t[i])^2 */
static __global__ void sdl__k_reduce_partial(const float *x, const float *t, int64_t n, int mode, double *partial) {
    __shared__ double sh[SDL__CU_THREADS];
    double s = 0.0;
    SDL__CU_LOOP(i, n) {
        double v = mode ? (double)x[i] - (double)t[i] : (double)x[i];
        s += mode ? v * v : v;
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
static void sdl__cu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                         const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX) {
        sdl_fail(SDL_ERR_SHAPE, "cuda: gemm: a dimension exceeds INT_MAX (%lld x %lld x %lld)", (long long)M, (long long)N, (long long)K);
        sdl__cu_record(SDL_ERR_SHAPE);
        return;
    }
    cublasComputeType_t compute = sdl__cu.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SDL__CUBLAS(cublasGemmEx(sdl__cu.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F, (int)lda,
                             &beta, C, CUDA_R_32F, (int)ldc, compute, CUBLAS_GEMM_DEFAULT));
}

/* ----------------------------------------------------------------------------------------
   >>cuda-ops: each op's kernels beside its backward, the same math as the CPU ones in sdl.h
   ---------------------------------------------------------------------------------------- */

/* ---- linear: x (R, in), w (out, in), b (out) -> y (R, out)
   y = x w^T + b;  dx += dy w;  dw += dy^T x;  db += sum_rows dy */
static __global__ void sdl__k_fill_rows(float *y, const float *b, int64_t n, int64_t O) {
    SDL__CU_LOOP(i, n) y[i] = b[i % O];
}

static void sdl__cu_linear_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = I ? x->numel / I : 0;
    float *y = sdl_f32(n->out);
    if (b && n->out->numel > 0) {
        sdl__k_fill_rows<<<sdl__cu_grid(n->out->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(y, sdl_f32(b), n->out->numel, O);
        SDL__CU_LAUNCHED("sdl__k_fill_rows");
    }
    sdl__cu_gemm(false, true, R, O, I, 1.0f, sdl_f32(x), I, sdl_f32(w), I, b ? 1.0f : 0.0f, y, O);
}

static void sdl__cu_linear_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = I ? x->numel / I : 0;
    const float *dy = n->out->grad;
    if (x->requires_grad) sdl__cu_gemm(false, false, R, I, O, 1.0f, dy, O, sdl_f32(w), I, 1.0f, x->grad, I);
    if (w->requires_grad) sdl__cu_gemm(true, false, O, I, R, 1.0f, dy, O, sdl_f32(x), I, 1.0f, w->grad, I);
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

/* ---- cross entropy from logits (B, C), targets i32 (B), smoothing s:
   q = (1-s) onehot(t) + s/C;  loss = mean_b -sum_c q_c log softmax(x)_c
   dlogits_bc += (softmax(x)_bc - q_bc) / B
   Forward: one block per row keeps softmax in `prob` (n->saved) and the row's loss (double);
   a target outside [0, C) makes that row's loss NaN. */
static __global__ void sdl__k_ce_fwd(const float *x, const int32_t *t, int64_t B, int64_t C, float s, float *prob, double *rowloss) {
    __shared__ double shd[SDL__CU_THREADS];
    __shared__ float shf[SDL__CU_THREADS];
    for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
        const float *row = x + b * C;
        float *p = prob + b * C;
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
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) p[c] = (float)exp((double)row[c] - logz);
        if (threadIdx.x == 0) {
            int32_t tb = t[b];
            double lsum = rs - (double)C * logz; /* sum_c log p_c */
            rowloss[b] = (tb < 0 || tb >= C) ? nan("")
                                              : -(1.0 - s) * ((double)row[tb] - logz) - (double)s / (double)C * lsum;
        }
    }
}
static __global__ void sdl__k_ce_bwd(const float *prob, const int32_t *t, const float *dy, float *dx, int64_t B, int64_t C, float s) {
    float g = dy[0] / (float)(B ? B : 1);
    SDL__CU_LOOP(i, B * C) {
        int64_t c = i % C;
        float q = s / (float)C + (c == t[i / C] ? 1.0f - s : 0.0f);
        dx[i] += g * (prob[i] - q);
    }
}
static void sdl__cu_ce_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = B ? x->numel / B : 0;
    double *rowloss = (double *)sdl__cu_arena_alloc((size_t)(B ? B : 1) * sizeof(double));
    if (!rowloss) return;
    if (B > 0 && C > 0) {
        sdl__k_ce_fwd<<<(unsigned)(B > 65535 ? 65535 : B), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
            sdl_f32(x), sdl_i32(n->in[1]), B, C, n->attr.scalar.alpha, (float *)n->saved, rowloss);
        if (!SDL__CU_LAUNCHED("sdl__k_ce_fwd")) return;
    }
    sdl__k_reduce_final<<<1, SDL__CU_THREADS, 0, sdl__cu.stream>>>(rowloss, B, 1.0 / (double)(B ? B : 1), sdl_f32(n->out));
    SDL__CU_LAUNCHED("sdl__k_reduce_final");
}
static void sdl__cu_ce_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = B ? x->numel / B : 0;
    if (B * C <= 0 || !x->requires_grad) return;
    sdl__k_ce_bwd<<<sdl__cu_grid(B * C), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        (const float *)n->saved, sdl_i32(n->in[1]), n->out->grad, x->grad, B, C, n->attr.scalar.alpha);
    SDL__CU_LAUNCHED("sdl__k_ce_bwd");
}

/* ---- mse: loss = mean (x - t)^2;  dx += 2 (x - t) / n */
static __global__ void sdl__k_mse_bwd(const float *x, const float *t, const float *dy, float *dx, int64_t n) {
    float g = 2.0f * dy[0] / (float)n;
    SDL__CU_LOOP(i, n) dx[i] += g * (x[i] - t[i]);
}
static void sdl__cu_mse_fwd(sdl_node *n) {
    int64_t len = n->in[0]->numel;
    sdl__cu_reduce(sdl_f32(n->in[0]), sdl_f32(n->in[1]), len, 1, 1.0 / (double)(len ? len : 1), sdl_f32(n->out));
}
static void sdl__cu_mse_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    if (x->numel <= 0 || !x->requires_grad) return;
    sdl__k_mse_bwd<<<sdl__cu_grid(x->numel), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
        sdl_f32(x), sdl_f32(n->in[1]), n->out->grad, x->grad, x->numel);
    SDL__CU_LAUNCHED("sdl__k_mse_bwd");
}

/* ----------------------------------------------------------------------------------------
   >>cuda-optim: fused updates over the flat parameter array
   sgd (PyTorch's form): g = grad + wd p;  v = mu v + g (v = g on the first step);
   p -= lr * (nesterov ? g + mu v : v)
   ---------------------------------------------------------------------------------------- */
static __global__ void sdl__k_sgd(float *p, const float *grad, float *v, int64_t n, float lr, float mu, float wd, int first, int nesterov) {
    SDL__CU_LOOP(j, n) {
        float gj = grad[j] + wd * p[j];
        if (v) {
            v[j] = first ? gj : mu * v[j] + gj;
            gj = nesterov ? gj + mu * v[j] : v[j];
        }
        p[j] -= lr * gj;
    }
}

/* one launch per run of parameters with the same weight decay (one launch when wd is 0) */
static sdl_result sdl__cu_optim_step(struct sdl_optim *o) {
    sdl_model *m = o->model;
    if (o->desc.kind != SDL_OPTIM_DEFAULT && o->desc.kind != SDL_OPTIM_SGD)
        return sdl_fail(SDL_ERR_DEVICE, "cuda: optimizer kind %d has no GPU kernel yet (only SGD)", (int)o->desc.kind);
    float wd = o->desc.weight_decay, mu = o->desc.momentum;
    float *v = o->nstate ? o->state : NULL;
    for (int i = 0; i < m->nparams;) {
        float wdi = m->params[i]->decay ? wd : 0.0f;
        int j = i + 1;
        while (j < m->nparams && (m->params[j]->decay ? wd : 0.0f) == wdi) j++;
        int64_t off = m->param_offset[i], len = m->param_offset[j] - off;
        if (len > 0) {
            sdl__k_sgd<<<sdl__cu_grid(len), SDL__CU_THREADS, 0, sdl__cu.stream>>>(
                m->param_data + off, m->grad_data + off, v ? v + off : NULL, len, o->lr, mu, wdi, o->step == 0, o->desc.nesterov);
            if (!SDL__CU_LAUNCHED("sdl__k_sgd")) return sdl_last_result();
        }
        i = j;
    }
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
    be->arena_alloc = sdl__cu_arena_alloc;
    be->arena_reset = sdl__cu_arena_reset;
    be->optim_step = sdl__cu_optim_step;
#define SDL__CU_KERNEL(op, f, b) (be->forward[op] = f, be->backward[op] = b)
    SDL__CU_KERNEL(SDL_OP_LINEAR, sdl__cu_linear_fwd, sdl__cu_linear_bwd);
    SDL__CU_KERNEL(SDL_OP_RELU, sdl__cu_relu_fwd, sdl__cu_relu_bwd);
    SDL__CU_KERNEL(SDL_OP_ADD, sdl__cu_binary_fwd, sdl__cu_binary_bwd);
    SDL__CU_KERNEL(SDL_OP_MUL, sdl__cu_binary_fwd, sdl__cu_binary_bwd);
    SDL__CU_KERNEL(SDL_OP_SUM, sdl__cu_sum_fwd, sdl__cu_sum_bwd);
    SDL__CU_KERNEL(SDL_OP_MEAN, sdl__cu_sum_fwd, sdl__cu_sum_bwd);
    SDL__CU_KERNEL(SDL_OP_CROSS_ENTROPY, sdl__cu_ce_fwd, sdl__cu_ce_bwd);
    SDL__CU_KERNEL(SDL_OP_MSE, sdl__cu_mse_fwd, sdl__cu_mse_bwd);
    /* >>cuda-table (new ops register here) */
#undef SDL__CU_KERNEL
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
   >>cuda-move: tensors and models between host and device
   ---------------------------------------------------------------------------------------- */
static sdl_tensor *sdl__cu_to(sdl_tensor *t, sdl_device device) {
    if (!t) return NULL;
    if (t->device == device) return t;
    if (sdl_cuda_init() != SDL_OK) return NULL;
    sdl_tensor *d = sdl_arena_tensor_on(sdl_tensor_shape(t), t->dtype, device);
    if (!d) return NULL;
    return sdl__cu_copy_ok(d->data, t->data, (size_t)t->numel * sdl_dtype_size(t->dtype), device, t->device) ? d : NULL;
}
SDL_API sdl_tensor *sdl_cuda_to_device(sdl_tensor *t) { return sdl__cu_to(t, SDL_CUDA); }
SDL_API sdl_tensor *sdl_cuda_to_host(sdl_tensor *t) { return sdl__cu_to(t, SDL_CPU); }

/* the model's device: where its first tensor lives */
static sdl_device sdl__cu_model_device(const sdl_model *m) {
    if (m->nparams > 0) return m->params[0]->device;
    if (m->nbuffers > 0) return m->buffers[0]->device;
    return SDL_CPU;
}

/* moves the three packed arrays to `to`; each tensor's data (and grad) keeps its offset */
static sdl_result sdl__cu_model_move(sdl_model *m, sdl_device to) {
    if (!m) return sdl_fail(SDL_ERR_ARG, "cuda: model_to_device: NULL model");
    if (sdl_cuda_init() != SDL_OK) return sdl_last_result();
    if (sdl_model_pack(m) != SDL_OK) return sdl_last_result();
    sdl_device from = sdl__cu_model_device(m);
    if (from == to) return SDL_OK;
    const sdl_backend *src = sdl_get_backend(from), *dst = sdl_get_backend(to);
    size_t pb = (size_t)m->param_floats * sizeof(float), bb = (size_t)m->buffer_floats * sizeof(float);
    float *p = (float *)dst->alloc(pb), *g = (float *)dst->alloc(pb), *b = (float *)dst->alloc(bb);
    bool ok = p && g && b && sdl__cu_copy_ok(p, m->param_data, pb, to, from) &&
              sdl__cu_copy_ok(g, m->grad_data, pb, to, from) && sdl__cu_copy_ok(b, m->buffer_data, bb, to, from);
    if (!ok) {
        sdl_result r = sdl_last_result();
        dst->dealloc(p);
        dst->dealloc(g);
        dst->dealloc(b);
        return r != SDL_OK ? r : SDL_ERR_DEVICE;
    }
    for (int i = 0; i < m->nparams; i++) {
        sdl_tensor *t = m->params[i];
        int64_t off = m->param_offset[i];
        t->data = p + off;
        t->grad = g + off;
        t->device = to;
    }
    for (int i = 0; i < m->nbuffers; i++) {
        sdl_tensor *t = m->buffers[i];
        t->data = b + ((float *)t->data - m->buffer_data);
        t->device = to;
    }
    src->dealloc(m->param_data);
    src->dealloc(m->grad_data);
    src->dealloc(m->buffer_data);
    m->param_data = p;
    m->grad_data = g;
    m->buffer_data = b;
    return SDL_OK;
}
SDL_API sdl_result sdl_cuda_model_to_device(sdl_model *m) { return sdl__cu_model_move(m, SDL_CUDA); }
SDL_API sdl_result sdl_cuda_model_to_host(sdl_model *m) { return sdl__cu_model_move(m, SDL_CPU); }

#endif /* SDL_CUDA_IMPLEMENTATION_DONE */
#endif /* SDL_CUDA_IMPLEMENTATION */
