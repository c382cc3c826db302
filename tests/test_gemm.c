/* test_gemm.c - sdl_sgemm against a double-precision loop (every transpose, odd sizes, alpha,
   beta, padded leading dimensions), bit for bit across 1, 2 and 3 threads (C split by rows
   and by columns), called from inside a pool job, and without per-call allocation. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static float *rnd(int64_t n) {
    float *p = (float *)malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) p[i] = sdl_rand_uniform() - 0.5f;
    return p;
}

typedef struct gemm_case {
    int M, N, K;
    bool ta, tb;
    float alpha, beta;
    int64_t lda, ldb, ldc; /* each larger than the minimum */
    float *A, *B, *C0;     /* C0: C before the call */
} gemm_case;

static void case_make(gemm_case *c, int M, int N, int K, bool ta, bool tb, float alpha, float beta) {
    c->M = M; c->N = N; c->K = K; c->ta = ta; c->tb = tb; c->alpha = alpha; c->beta = beta;
    c->lda = (ta ? M : K) + 3;
    c->ldb = (tb ? K : N) + 5;
    c->ldc = N + 2;
    c->A = rnd((int64_t)(ta ? K : M) * c->lda);
    c->B = rnd((int64_t)(tb ? N : K) * c->ldb);
    c->C0 = rnd((int64_t)M * c->ldc);
    if (beta == 0.0f) /* beta 0 must never read C: NaN there would show */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) c->C0[i * c->ldc + j] = NAN;
}
static void case_free(gemm_case *c) { free(c->A); free(c->B); free(c->C0); }

/* C = copy of C0, then sdl_sgemm with `threads` threads */
static float *case_run(const gemm_case *c, int threads) {
    float *C = (float *)malloc(sizeof(float) * (size_t)((int64_t)c->M * c->ldc + 1));
    memcpy(C, c->C0, sizeof(float) * (size_t)((int64_t)c->M * c->ldc));
    sdl_set_num_threads(threads);
    sdl_sgemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, c->beta, C, c->ldc);
    return C;
}

/* max |C - ref| over C, ref in double; also checks the padding columns were not written */
static double case_err(const gemm_case *c, const float *C) {
    double err = 0;
    for (int i = 0; i < c->M; i++) {
        for (int j = 0; j < c->N; j++) {
            double s = 0;
            for (int k = 0; k < c->K; k++)
                s += (double)(c->ta ? c->A[k * c->lda + i] : c->A[i * c->lda + k]) *
                     (c->tb ? c->B[j * c->ldb + k] : c->B[k * c->ldb + j]);
            double want = c->alpha * s + (c->beta == 0.0f ? 0.0 : (double)c->beta * c->C0[i * c->ldc + j]);
            double e = fabs((double)C[i * c->ldc + j] - want);
            if (!(e <= err)) err = e; /* NaN counts as a failure */
        }
        for (int64_t j = c->N; j < c->ldc; j++)
            if (memcmp(&C[i * c->ldc + j], &c->C0[i * c->ldc + j], sizeof(float)) != 0) return INFINITY;
    }
    return err;
}

/* every transpose combination: against double with 1 thread, and the same bits with 2 and 3 */
static void check(int M, int N, int K, float alpha, float beta) {
    for (int t = 0; t < 4; t++) {
        gemm_case c;
        case_make(&c, M, N, K, t & 1, (t & 2) != 0, alpha, beta);
        float *C1 = case_run(&c, 1), *C2 = case_run(&c, 2), *C3 = case_run(&c, 3);
        double err = case_err(&c, C1), tol = 2e-6 * (K + 8) * (fabs(alpha) + fabs(beta) + 1);
        CHECK(err < tol, "sgemm %dx%dx%d ta=%d tb=%d alpha %g beta %g: err %g (tol %g)", M, N, K, c.ta, c.tb, alpha, beta, err, tol);
        size_t bytes = sizeof(float) * (size_t)((int64_t)M * c.ldc);
        CHECK(memcmp(C1, C2, bytes) == 0, "sgemm %dx%dx%d ta=%d tb=%d: 2 threads differ from 1", M, N, K, c.ta, c.tb);
        CHECK(memcmp(C1, C3, bytes) == 0, "sgemm %dx%dx%d ta=%d tb=%d: 3 threads differ from 1", M, N, K, c.ta, c.tb);
        free(C1); free(C2); free(C3);
        case_free(&c);
    }
    sdl_set_num_threads(0);
}

static void test_tiny_and_odd(void) {
    check(1, 1, 1, 1.0f, 0.0f);
    check(7, 13, 1, 0.5f, 2.0f);
    check(13, 7, 33, -1.0f, 1.0f);
    check(33, 65, 13, 1.0f, 0.5f);
    check(65, 33, 7, 2.0f, 0.0f);
    check(1, 257, 65, 1.0f, 1.0f);
    check(257, 1, 65, -0.5f, 0.25f);
}

/* big enough to use 2 and 3 threads (~4 and ~8 MFLOP per part), split by rows and by
   columns (a wrong range in either split fails here), more than MC rows, more
   than KC deep, more than NC wide */
static void test_threaded_sizes(void) {
    check(257, 65, 257, 1.0f, 0.0f);   /* rows split */
    check(129, 257, 385, 0.75f, 1.0f); /* 3 parts; rows or columns by the transposes */
    check(7, 2100, 513, 1.0f, -1.0f);  /* 1 panel of rows: columns split, more than NC wide */
    check(33, 1100, 1100, 1.0f, 0.0f); /* more than KC deep and NC wide, columns split */
    check(301, 37, 1030, -2.0f, 0.5f); /* more than MC rows, K past one KC block, rows split */
    check(600, 100, 160, 1.0f, 0.0f);  /* B small enough to be read in place (AVX-512), split over threads */
    check(300, 512, 32, 0.5f, 1.0f);
}

/* K = 0 or alpha = 0: C = beta * C, A and B never read */
static void test_trivial(void) {
    float C[6] = {1, 2, 3, 4, 5, 6}, C0[6] = {NAN, NAN, NAN, 1, 1, 1};
    sdl_sgemm(false, false, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 0.5f, C, 3);
    for (int i = 0; i < 6; i++) CHECK(C[i] == 0.5f * (float)(i + 1), "K = 0: C[%d] = %g", i, C[i]);
    sdl_sgemm(false, false, 1, 3, 4, 0.0f, NULL, 4, NULL, 3, 0.0f, C0, 3);
    for (int i = 0; i < 3; i++) CHECK(C0[i] == 0.0f, "alpha = 0, beta = 0: C[%d] = %g", i, C0[i]);
    for (int i = 3; i < 6; i++) CHECK(C0[i] == 1.0f, "row past M written: C[%d] = %g", i, C0[i]);
}

/* sdl_sgemm called from a pool job runs on that thread alone: the same bits */
typedef struct nested_ctx { const gemm_case *c; float *C; } nested_ctx;
static void nested_fn(void *ctx, int64_t b, int64_t e) {
    nested_ctx *n = (nested_ctx *)ctx;
    const gemm_case *c = n->c;
    for (int64_t i = b; i < e; i++) /* only part 1 multiplies: one thread uses the buffers */
        if (i == 1) sdl_sgemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, c->beta, n->C, c->ldc);
}
static void test_nested_call(void) {
    gemm_case c;
    case_make(&c, 200, 150, 300, false, true, 1.0f, 0.0f);
    float *C1 = case_run(&c, 1);
    float *C = (float *)malloc(sizeof(float) * (size_t)((int64_t)c.M * c.ldc));
    memcpy(C, c.C0, sizeof(float) * (size_t)((int64_t)c.M * c.ldc));
    nested_ctx n = {&c, C};
    sdl_set_num_threads(2);
    sdl_parallel_for(2, 1, nested_fn, &n);
    CHECK(memcmp(C, C1, sizeof(float) * (size_t)((int64_t)c.M * c.ldc)) == 0, "sgemm inside a pool job differs");
    free(C); free(C1);
    case_free(&c);
    sdl_set_num_threads(0);
}

/* the packing buffers are allocated once: later calls allocate nothing */
static void test_no_allocation(void) {
    gemm_case c;
    case_make(&c, 300, 200, 600, false, false, 1.0f, 0.0f);
    float *C = case_run(&c, 3); /* warm-up: buffers for 3 threads */
    for (int th = 1; th <= 3; th++) {
        sdl_set_num_threads(th);
        long before = sdl_test_allocs;
        for (int r = 0; r < 3; r++)
            sdl_sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, c.A, c.lda, c.B, c.ldb, c.beta, C, c.ldc);
        CHECK(sdl_test_allocs == before, "%d threads: %ld allocations in 3 calls", th, sdl_test_allocs - before);
    }
    free(C);
    case_free(&c);
    sdl_set_num_threads(0);
}

int main(void) {
    sdl_manual_seed(11);
    RUN(test_tiny_and_odd);
    RUN(test_threaded_sizes);
    RUN(test_trivial);
    RUN(test_nested_call);
    RUN(test_no_allocation);
    return sdl_test_finish();
}
