/* dry_check.cu - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   Checks the emulator's dry run (EMU_DRY=1) and the checks it added (kernel pointer
   arguments, GEMM spans): built by tools/cuda_emu/dry_run.sh through convert.py against
   inc/, never by nvcc (it reads the emulator's counters). Ends with "N passed, N failed". */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>

static int passed, failed;
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) passed++;                                                  \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static __global__ void fill(float *p, int n, float v) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] = v;
}

static long resident_kib(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0; fclose(f); }
    return rss * 4;
}

int main(void) {
    setenv("EMU_DRY", "1", 1);
    /* 100 GiB of device memory costs no host memory */
    long rss0 = resident_kib();
    float *big = NULL, *a = NULL, *c = NULL;
    CHECK(cudaMalloc((void **)&big, (size_t)100 << 30) == cudaSuccess && big, "cudaMalloc of 100 GiB in a dry run");
    CHECK(resident_kib() - rss0 < (64 << 10), "100 GiB reserved, %ld KiB resident", resident_kib() - rss0);
    CHECK(emu_dry_peak == (long long)100 << 30, "peak %lld", emu_dry_peak);
    CHECK(cudaMalloc((void **)&a, 1000 * sizeof(float)) == cudaSuccess, "small cudaMalloc");
    CHECK(emu_dry_peak == ((long long)100 << 30) + 4096, "peak %lld after 4000 more bytes (a page)", emu_dry_peak);
    cudaFree(big);
    CHECK(emu_dry_cur == 4096 && emu_dry_peak == ((long long)100 << 30) + 4096, "after cudaFree: %lld allocated, peak %lld", emu_dry_cur, emu_dry_peak);

    /* kernels: checked and counted, not run; host <-> device copies copy; memsets and
       device-to-device copies are skipped */
    float h[1000], back[1000];
    for (int i = 0; i < 1000; i++) h[i] = (float)i;
    CHECK(cudaMemcpy(a, h, sizeof h, cudaMemcpyHostToDevice) == cudaSuccess, "upload");
    long launches = emu_dry_now.launches;
    fill<<<4, 256>>>(a, 1000, -1.0f);
    CHECK(cudaGetLastError() == cudaSuccess && emu_dry_now.launches == launches + 1, "a launch counted");
    CHECK(cudaMemset(a, 0, 400) == cudaSuccess, "memset");
    CHECK(cudaMalloc((void **)&c, 1000 * sizeof(float)) == cudaSuccess, "cudaMalloc");
    CHECK(cudaMemcpy(c, a, sizeof h, cudaMemcpyDeviceToDevice) == cudaSuccess, "device-to-device copy");
    CHECK(cudaMemcpy(back, a, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess, "download");
    CHECK(back[0] == 0.0f && back[999] == 999.0f, "the upload came back (%g %g): no kernel, no memset ran", back[0], back[999]);
    CHECK(cudaMemcpy(back, c, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess && back[999] == 0.0f,
          "the device-to-device copy was skipped (%g)", back[999]);

    /* launch limits and pointer arguments are still checked */
    fill<<<dim3(1, 70000), 256>>>(a, 1000, 0.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid y 70000 refused");
    fill<<<1, 2048>>>(a, 1000, 0.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "block of 2048 refused");
    fill<<<1, 32>>>(h, 1000, 0.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "a host pointer as a kernel argument refused");
    fill<<<1, 32>>>(a + 1000, 0, 0.0f);
    CHECK(cudaGetLastError() == cudaSuccess, "a pointer just past a block is fine (an empty range)");

    /* GEMMs: counted with their FLOPs, not run; spans checked */
    cublasHandle_t hd;
    cublasCreate(&hd);
    float one = 1.0f, zero = 0.0f;
    double flop = emu_dry_now.flop;
    /* C (3, 5) = A (3, 7) B (7, 5), column-major, batch 4: a 21 + b 35 + c 15 floats each, 284 in all */
    cublasStatus_t s = cublasGemmStridedBatchedEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, 3, 5, 7, &one, a, CUDA_R_32F, 3, 21, a + 84, CUDA_R_32F,
                                                  7, 35, &zero, c, CUDA_R_32F, 3, 15, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK(s == CUBLAS_STATUS_SUCCESS && emu_dry_now.flop - flop == 2.0 * 3 * 5 * 7 * 4, "batched GEMM: status %d, %g FLOP",
          (int)s, emu_dry_now.flop - flop);
    CHECK(cudaMemcpy(back, c, 60 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess && back[0] == 0.0f, "the GEMM did not run");
    /* blocks are page-rounded (1000 floats: 1024). C with ldc 3, n 5 from c + 1018: 3 + 4 x 3 = 15 floats, 9 past the end */
    s = cublasGemmEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, 3, 5, 7, &one, a, CUDA_R_32F, 3, a + 84, CUDA_R_32F, 7, &zero, c + 1018, CUDA_R_32F, 3,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK(s == CUBLAS_STATUS_INVALID_VALUE, "C's span past its block refused (status %d)", (int)s);
    /* A transposed: op(A) (3, 7) is A (7, 3) stored with lda 7: 7 + 2 x 7 = 21 floats from a + 1010, 7 past the end */
    s = cublasGemmEx(hd, CUBLAS_OP_T, CUBLAS_OP_N, 3, 5, 7, &one, a + 1010, CUDA_R_32F, 7, a, CUDA_R_32F, 7, &zero, c, CUDA_R_32F, 3,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK(s == CUBLAS_STATUS_INVALID_VALUE, "transposed A's span past its block refused (status %d)", (int)s);
    /* the last GEMM of a batch past the block: C's stride 256: with 4 GEMMs the last ends at 768 + 15, with 5 at 1024 + 15 */
    s = cublasGemmStridedBatchedEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, 3, 5, 7, &one, a, CUDA_R_32F, 3, 0, a, CUDA_R_32F, 7, 0, &zero, c,
                                   CUDA_R_32F, 3, 256, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK(s == CUBLAS_STATUS_SUCCESS, "4 strided GEMMs inside the block (status %d)", (int)s);
    s = cublasGemmStridedBatchedEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, 3, 5, 7, &one, a, CUDA_R_32F, 3, 0, a, CUDA_R_32F, 7, 0, &zero, c,
                                   CUDA_R_32F, 3, 256, 5, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    CHECK(s == CUBLAS_STATUS_INVALID_VALUE, "the fifth strided GEMM past the block refused (status %d)", (int)s);

    /* a step: the work between the last two device-to-host copies */
    cudaMemcpy(back, a, 4, cudaMemcpyDeviceToHost);
    fill<<<1, 32>>>(a, 1000, 0.0f);
    fill<<<1, 32>>>(a, 1000, 0.0f);
    cudaMemcpy(back, a, 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(back, a, 4, cudaMemcpyDeviceToHost); /* nothing between: not a step */
    CHECK(emu_dry_step.launches == 2 && emu_dry_step.blas_calls == 0, "last step: %ld launches, %ld cuBLAS calls", emu_dry_step.launches,
          emu_dry_step.blas_calls);
    cublasDestroy(hd);
    cudaFree(a);
    cudaFree(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
