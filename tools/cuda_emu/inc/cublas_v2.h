/* cublas_v2.h - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   The cuBLAS calls sdl_cuda.h makes (cublasGemmEx, cublasGemmStridedBatchedEx and the handle
   set-up), as a plain column-major loop GEMM with cuBLAS's argument checks. The sum runs in
   f32 in one fixed order (k = 0, 1, ...); CUBLAS_COMPUTE_32F_FAST_TF32 rounds both inputs to
   TF32 (10-bit mantissa, nearest) first. Real cuBLAS sums in other orders (tiles, split-K),
   so its rounding differs: a test passing here says nothing about its tolerances on a GPU. */
#pragma once
#include "cuda_runtime.h"
typedef void *cublasHandle_t;
typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_ALLOC_FAILED = 3, CUBLAS_STATUS_INVALID_VALUE = 7 };
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef int cudaDataType;
#define CUDA_R_32F 0
typedef enum { CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32 } cublasComputeType_t;
typedef int cublasGemmAlgo_t;
#define CUBLAS_GEMM_DEFAULT (-1)
static inline const char *cublasGetStatusName(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : s == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE"
         : s == CUBLAS_STATUS_ALLOC_FAILED ? "CUBLAS_STATUS_ALLOC_FAILED" : "CUBLAS_STATUS_(unknown)";
}
static inline const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }
static inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (void *)1; return 0; }
static inline cublasStatus_t cublasDestroy(cublasHandle_t) { return 0; }
static inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return 0; }
static inline cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return 0; }
static long emu_gemms;
static inline float emu_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x1000u) & ~0x1fffu;
    memcpy(&x, &u, 4);
    return x;
}
static bool emu_gemm_span_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, size_t asz, int lda,
                             const void *B, size_t bsz, int ldb, const void *C, int ldc); /* the dry-run block at the end */
static void emu_dry_gemm(int m, int n, int k);
static bool emu_batch_span_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, size_t asz, int lda, long long sA,
                              const void *B, size_t bsz, int ldb, long long sB, const void *C, int ldc, long long sC, int batch);
/* column-major, as cuBLAS: C (m, n) = alpha op(A) op(B) + beta C */
static inline cublasStatus_t emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc, bool tf32) {
    int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "emu: cublas gemm invalid: m %d n %d k %d lda %d ldb %d ldc %d ta %d tb %d\n", m, n, k, lda, ldb, ldc, ta, tb);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m > 0 && n > 0 && ((k > 0 && (!emu_on_device(A, 4) || !emu_on_device(B, 4))) || !emu_on_device(C, 4))) {
        fprintf(stderr, "emu: cublas gemm with a matrix outside device memory\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!emu_gemm_span_ok(ta, tb, m, n, k, A, 4, lda, B, 4, ldb, C, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    emu_gemms++;
    if (emu_dry()) { emu_dry_gemm(m, n, k); return 0; }
    emu_open();
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                float a = ta == CUBLAS_OP_N ? A[i + (int64_t)p * lda] : A[p + (int64_t)i * lda];
                float b = tb == CUBLAS_OP_N ? B[p + (int64_t)j * ldb] : B[j + (int64_t)p * ldb];
                if (tf32) { a = emu_tf32(a); b = emu_tf32(b); }
                s += a * b;
            }
            float *c = C + i + (int64_t)j * ldc;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
    emu_close();
    return 0;
}
static inline cublasStatus_t emu_gemm_half(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                                           cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, float beta, void *C,
                                           cudaDataType ct, int ldc, cublasComputeType_t compute); /* bf16/fp16 inputs: at the end */
static inline cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                                          const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                                          void *C, cudaDataType cty, int ldc, cublasComputeType_t ct, cublasGemmAlgo_t) {
    emu_dry_now.blas_calls++;
    if (at != CUDA_R_32F || bt != CUDA_R_32F || cty != CUDA_R_32F)
        return emu_gemm_half(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb, *(const float *)beta, C, cty, ldc, ct);
    return emu_gemm(ta, tb, m, n, k, *(const float *)alpha, (const float *)A, lda, (const float *)B, ldb, *(const float *)beta, (float *)C, ldc, ct == CUBLAS_COMPUTE_32F_FAST_TF32);
}
static inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                                                        const void *A, cudaDataType at, int lda, long long sA, const void *B, cudaDataType bt, int ldb, long long sB,
                                                        const void *beta, void *C, cudaDataType cty, int ldc, long long sC, int batch,
                                                        cublasComputeType_t ct, cublasGemmAlgo_t) {
    emu_dry_now.blas_calls++;
    if (batch < 0) { fprintf(stderr, "emu: cublasGemmStridedBatchedEx with batch %d\n", batch); return CUBLAS_STATUS_INVALID_VALUE; }
    if (!emu_batch_span_ok(ta, tb, m, n, k, A, at == CUDA_R_32F ? 4 : 2, lda, sA, B, bt == CUDA_R_32F ? 4 : 2, ldb, sB, C, ldc, sC, batch))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (at != CUDA_R_32F || bt != CUDA_R_32F || cty != CUDA_R_32F) {
        for (int i = 0; i < batch; i++) { /* 2-byte inputs, f32 output */
            cublasStatus_t s = emu_gemm_half(ta, tb, m, n, k, *(const float *)alpha, (const char *)A + 2 * i * sA, at, lda,
                                             (const char *)B + 2 * i * sB, bt, ldb, *(const float *)beta, (float *)C + i * sC, cty, ldc, ct);
            if (s) return s;
        }
        return 0;
    }
    for (int i = 0; i < batch; i++) {
        cublasStatus_t s = emu_gemm(ta, tb, m, n, k, *(const float *)alpha, (const float *)A + i * sA, lda, (const float *)B + i * sB, ldb,
                                    *(const float *)beta, (float *)C + i * sC, ldc, ct == CUBLAS_COMPUTE_32F_FAST_TF32);
        if (s) return s;
    }
    return 0;
}

/* ---- bf16 and fp16 inputs (mixed precision): A and B both CUDA_R_16BF or both CUDA_R_16F,
   C CUDA_R_32F, CUBLAS_COMPUTE_32F, as cuBLAS allows. Each input converted to float exactly,
   the products summed in f32 in the order of emu_gemm (k = 0, 1, ...). Other combinations
   return CUBLAS_STATUS_NOT_SUPPORTED, as cuBLAS does for the ones it lacks. */
#include "cuda_bf16.h"
#include "cuda_fp16.h"
#define CUDA_R_16F 2
#define CUDA_R_16BF 14
enum { CUBLAS_STATUS_NOT_SUPPORTED = 15 };
static inline float emu_half_at(const void *p, cudaDataType t, int64_t i) {
    unsigned short x = ((const unsigned short *)p)[i];
    if (t == CUDA_R_16BF) { __nv_bfloat16 h; h.__x = x; return __bfloat162float(h); }
    __half h;
    h.__x = x;
    return __half2float(h);
}
static inline cublasStatus_t emu_gemm_half(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                                           cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, float beta, void *C,
                                           cudaDataType ct, int ldc, cublasComputeType_t compute) {
    if (at != bt || (at != CUDA_R_16BF && at != CUDA_R_16F) || ct != CUDA_R_32F || compute != CUBLAS_COMPUTE_32F) {
        fprintf(stderr, "emu: cublas gemm with types A %d B %d C %d compute %d: not supported\n", at, bt, ct, (int)compute);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "emu: cublas gemm invalid: m %d n %d k %d lda %d ldb %d ldc %d ta %d tb %d\n", m, n, k, lda, ldb, ldc, ta, tb);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m > 0 && n > 0 && ((k > 0 && (!emu_on_device(A, 2) || !emu_on_device(B, 2))) || !emu_on_device(C, 4))) {
        fprintf(stderr, "emu: cublas gemm with a matrix outside device memory\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!emu_gemm_span_ok(ta, tb, m, n, k, A, 2, lda, B, 2, ldb, C, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    emu_gemms++;
    if (emu_dry()) { emu_dry_gemm(m, n, k); return 0; }
    emu_open();
    float *Cf = (float *)C;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                float a = emu_half_at(A, at, ta == CUBLAS_OP_N ? i + (int64_t)p * lda : p + (int64_t)i * lda);
                float b = emu_half_at(B, bt, tb == CUBLAS_OP_N ? p + (int64_t)j * ldb : j + (int64_t)p * ldb);
                s += a * b;
            }
            float *c = Cf + i + (int64_t)j * ldc;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
    emu_close();
    return 0;
}

/* ---- CUDA graphs: a GEMM on a capturing stream is checked now and recorded (its alpha and
   beta read now, as cuBLAS's host pointer mode does), run at each cudaGraphLaunch; see
   cuda_runtime.h's graph block. Any input type: the recorded call is the one above. */
static inline bool emu_gemm_args_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, cudaDataType at, int lda,
                                    const void *B, cudaDataType bt, int ldb, const void *C, int ldc) {
    int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
    size_t asz = at == CUDA_R_32F ? 4 : 2, bsz = bt == CUDA_R_32F ? 4 : 2;
    return m >= 0 && n >= 0 && k >= 0 && lda >= (arows > 1 ? arows : 1) && ldb >= (brows > 1 ? brows : 1) && ldc >= (m > 1 ? m : 1) &&
           !(m > 0 && n > 0 && ((k > 0 && (!emu_on_device(A, asz) || !emu_on_device(B, bsz))) || !emu_on_device(C, 4))) &&
           emu_gemm_span_ok(ta, tb, m, n, k, A, asz, lda, B, bsz, ldb, C, ldc);
}
static inline cublasStatus_t emu_cap_cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                                                  const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                                                  void *C, cudaDataType cty, int ldc, cublasComputeType_t ct, cublasGemmAlgo_t algo) {
    if (!emu_rec || !emu_gemm_args_ok(ta, tb, m, n, k, A, at, lda, B, bt, ldb, C, ldc)) /* runs now, or reports the error */
        return cublasGemmEx(h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, cty, ldc, ct, algo);
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_rec->ops.push_back([=] { cublasGemmEx(h, ta, tb, m, n, k, &al, A, at, lda, B, bt, ldb, &be, C, cty, ldc, ct, algo); });
    return 0;
}
static inline cublasStatus_t emu_cap_cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                                                const void *alpha, const void *A, cudaDataType at, int lda, long long sA,
                                                                const void *B, cudaDataType bt, int ldb, long long sB, const void *beta, void *C,
                                                                cudaDataType cty, int ldc, long long sC, int batch, cublasComputeType_t ct,
                                                                cublasGemmAlgo_t algo) {
    if (!emu_rec || !emu_gemm_args_ok(ta, tb, m, n, k, A, at, lda, B, bt, ldb, C, ldc))
        return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, sA, B, bt, ldb, sB, beta, C, cty, ldc, sC, batch, ct, algo);
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_rec->ops.push_back([=] {
        cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, &al, A, at, lda, sA, B, bt, ldb, sB, &be, C, cty, ldc, sC, batch, ct, algo);
    });
    return 0;
}
#define cublasGemmEx emu_cap_cublasGemmEx
#define cublasGemmStridedBatchedEx emu_cap_cublasGemmStridedBatchedEx

/* ---- dry run (EMU_DRY=1, see cuda_runtime.h's last block) and the span check --------------
   emu_gemm_span_ok (every run, dry or not): each matrix's span, (cols - 1) ld + rows elements
   from its pointer, must lie inside one live cudaMalloc block (cuBLAS would read or write
   past it: a fault or silent corruption on a GPU). emu_dry_gemm counts a GEMM's FLOPs,
   2 m n k, in place of running it. */
static bool emu_span_in_block(const char *what, const void *p, int rows, int cols, int ld, size_t esz, int m, int n, int k,
                              long long stride = 0, int batch = 1) {
    if (rows <= 0 || cols <= 0 || batch <= 0) return true;
    long long elems = (long long)(cols - 1) * ld + rows, first = 0;
    if (batch > 1 && stride > 0) elems += (long long)(batch - 1) * stride;
    if (batch > 1 && stride < 0) first = (long long)(batch - 1) * stride, elems -= first;
    const char *q = (const char *)p + first * (long long)esz;
    if (batch == 1 && elems > emu_dry_gemm_elems) emu_dry_gemm_elems = elems;
    if (emu_on_device(q, (size_t)elems * esz)) return true;
    fprintf(stderr, "emu: cublas gemm (m %d n %d k %d, batch %d): %s (%d x %d, ld %d, stride %lld) spans %lld bytes from %p, past the end of "
            "its cudaMalloc block\n", m, n, k, batch, what, rows, cols, ld, stride, elems * (long long)esz, (const void *)q);
    return false;
}
/* a strided batch: the whole run of matrices in one block */
static bool emu_batch_span_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, size_t asz, int lda, long long sA,
                              const void *B, size_t bsz, int ldb, long long sB, const void *C, int ldc, long long sC, int batch) {
    if (m <= 0 || n <= 0) return true;
    bool ok = true;
    if (k > 0) {
        ok = emu_span_in_block("A", A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, asz, m, n, k, sA, batch) && ok;
        ok = emu_span_in_block("B", B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, bsz, m, n, k, sB, batch) && ok;
    }
    return emu_span_in_block("C", C, m, n, ldc, 4, m, n, k, sC, batch) && ok;
}
static bool emu_gemm_span_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, size_t asz, int lda,
                             const void *B, size_t bsz, int ldb, const void *C, int ldc) {
    if (m <= 0 || n <= 0) return true;
    bool ok = true;
    if (k > 0) {
        ok = emu_span_in_block("A", A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, asz, m, n, k) && ok;
        ok = emu_span_in_block("B", B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, bsz, m, n, k) && ok;
    }
    return emu_span_in_block("C", C, m, n, ldc, 4, m, n, k) && ok;
}
static void emu_dry_gemm(int m, int n, int k) {
    emu_dry_now.gemms++;
    emu_dry_now.flop += 2.0 * m * n * k;
}
