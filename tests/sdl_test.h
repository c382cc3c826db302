/* sdl_test.h - the tests' tiny framework: TEST/CHECK, a closing "N passed, N failed" line,
   a counting allocator, and a finite-difference gradient check against double-precision
   reference code. Include it after defining SDL_IMPLEMENTATION, in place of sdl.h. */
#ifndef SDL_TEST_H
#define SDL_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* the counting allocator: every heap block the library takes goes through these. A test
   compiled with -DSDL_IMPLEMENTATION_DONE (tests/run.sh does that for a test that uses only the
   public API) skips the implementation and links build/tests/sdl_test.o, whose file defines
   SDL_IMPLEMENTATION and includes this header: the counter lives there. */
#ifdef __cplusplus
extern "C" {
#endif
extern long sdl_test_allocs;
void *sdl_test_alloc(size_t n);
void *sdl_test_realloc(void *p, size_t n);
#ifndef SDL_IMPLEMENTATION_DONE
long sdl_test_allocs;
void *sdl_test_alloc(size_t n) { sdl_test_allocs++; return malloc(n); }
void *sdl_test_realloc(void *p, size_t n) { sdl_test_allocs++; return realloc(p, n); }
#endif
#ifdef __cplusplus
}
#endif
#if defined(SDL_IMPLEMENTATION) && !defined(SDL_IMPLEMENTATION_DONE)
#define SDL_TEST__IMPL /* this file holds the implementation (and the exports below) */
#endif
#define SDL_DEBUG_POISON /* op outputs start as NaN: a kernel must write every element */
#define SDL_ALLOC(n) sdl_test_alloc(n)
#define SDL_REALLOC(p, n) sdl_test_realloc(p, n)
#define SDL_DEALLOC(p) free(p)
#include "../sdl.h"

/* The private functions and settings a test reaches. sdl.h's sdl__ names are static, so a test
   that used them compiled the whole implementation itself (15-25 s of CPU each at -O3); the
   file that holds the implementation (build/tests/sdl_test.o, or a test built alone) exports
   them here under sdl_test_ names, and the tests link it. */
#ifdef __cplusplus
extern "C" {
#endif
int *sdl_test_conv_algo(void);       /* 0: Winograd where it pays; 1: im2col only; 2: Winograd wherever it applies */
int64_t *sdl_test_wino_tiles(void);  /* Winograd tiles per group */
unsigned char *sdl_test_grad_overwrite(void); /* the CPU backend's flags, by op: writes fresh gradients */
double sdl_test_part_ns(void);       /* SDL_PART_NS, as the implementation was built */
void sdl_test_optim_update(sdl_optim *o);
void sdl_test_cpu_scale(float *x, int64_t n, float s);
double sdl_test_cpu_sumsq(const float *x, int64_t n);
void sdl_test_aligned_free(void *p);
void sdl_test_sgemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
uint32_t sdl_test_crc32(uint32_t crc, const uint8_t *p, size_t n);
bool sdl_test_is_dir(const char *path);
sdl_tensor *sdl_test_rnn_scan(sdl_rnn_mode mode, sdl_tensor *xw, sdl_tensor *w_hh, sdl_tensor *b_hh, sdl_tensor *s0, bool batch_first);
sdl_tensor *sdl_test_mha_attend(sdl_tensor *qs, sdl_tensor *ks, sdl_tensor *vs, sdl_tensor *mask, int n_head, bool batch_first);
uint8_t *sdl_test_png(const uint8_t *hwc, int w, int h, int c, size_t *n); /* SDL_ALLOC'd PNG bytes, NULL on failure */
#ifdef SDL_TEST__IMPL
int *sdl_test_conv_algo(void) { return &sdl__conv_algo; }
int64_t *sdl_test_wino_tiles(void) { return &sdl__wino_tiles; }
unsigned char *sdl_test_grad_overwrite(void) { return sdl__backends[SDL_CPU].grad_overwrite; }
double sdl_test_part_ns(void) { return SDL_PART_NS; }
void sdl_test_optim_update(sdl_optim *o) { sdl__optim_update(o); }
void sdl_test_cpu_scale(float *x, int64_t n, float s) { sdl__cpu_scale(x, n, s); }
double sdl_test_cpu_sumsq(const float *x, int64_t n) { return sdl__cpu_sumsq(x, n); }
void sdl_test_aligned_free(void *p) { sdl__aligned_free(p); }
void sdl_test_sgemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    sdl__sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
uint32_t sdl_test_crc32(uint32_t crc, const uint8_t *p, size_t n) { return sdl__crc32(crc, p, n); }
bool sdl_test_is_dir(const char *path) { return sdl__is_dir(path); }
sdl_tensor *sdl_test_rnn_scan(sdl_rnn_mode mode, sdl_tensor *xw, sdl_tensor *w_hh, sdl_tensor *b_hh, sdl_tensor *s0, bool batch_first) {
    return sdl__rnn_scan(mode, xw, w_hh, b_hh, s0, batch_first);
}
sdl_tensor *sdl_test_mha_attend(sdl_tensor *qs, sdl_tensor *ks, sdl_tensor *vs, sdl_tensor *mask, int n_head, bool batch_first) {
    return sdl__mha_attend(qs, ks, vs, mask, n_head, batch_first);
}
uint8_t *sdl_test_png(const uint8_t *hwc, int w, int h, int c, size_t *n) {
    sdl__buf b;
    memset(&b, 0, sizeof b);
    if (!sdl__png_encode("sdl_test_png", hwc, w, h, c, &b)) { SDL_DEALLOC(b.p); return NULL; }
    *n = b.n;
    return b.p;
}
#endif
#ifdef __cplusplus
}
#endif

static int sdl_test_passed, sdl_test_failed, sdl_test_ok;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
            sdl_test_ok = 0;                                               \
        }                                                                  \
    } while (0)

#define RUN(fn) sdl_test_run(#fn, fn)

static inline void sdl_test_run(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    sdl_set_grad_enabled(true);
    if (sdl_test_ok) sdl_test_passed++;
    else sdl_test_failed++;
    printf("%s %s\n", sdl_test_ok ? "ok  " : "FAIL", name);
    fflush(stdout);
}

static inline int sdl_test_finish(void) {
    sdl_arena_release();
    printf("%d passed, %d failed\n", sdl_test_passed, sdl_test_failed);
    return sdl_test_failed ? 1 : 0;
}

/* ---- gradient check ------------------------------------------------------------------
   f builds the op under test from float inputs with sdl; ref computes the same forward in
   double from double inputs. The check compares the forward outputs, then the analytic
   gradient of L = sum(out * w) (random w) with central differences of ref in double. */
/* runs cmd through sh (at most 300 s) with stdout and stderr into the file log_path; its text
   (cap - 1 bytes at most) into log; returns the exit status */
static inline int sdl_test_run_log(const char *cmd, const char *log_path, char *log, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "timeout 300 sh -c '%s' > %s 2>&1", cmd, log_path);
    int rc = system(full);
    FILE *f = fopen(log_path, "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    log[n] = 0;
    if (f) fclose(f);
    return rc;
}
/* the tutorial ladder's rules for one file: at most 120 lines, no #if lines (device and MPI
   choices belong in the library) */
static inline void sdl_test_tutorial_rules(const char *path) {
    char line[512];
    FILE *f = fopen(path, "r");
    int lines = 0, ifs = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        lines++, ifs += !strncmp(p, "#if", 3);
    }
    if (f) fclose(f);
    CHECK(f && lines <= 120 && ifs == 0, "%s: %d lines (at most 120), %d #if lines (none)", path, lines, ifs);
}
/* The tutorial tests and mpi_test_examples link each program against the implementation
   compiled once, as make does: tests/run.sh builds it at -O1 -march=native (cheap to compile;
   -march=native gives the GEMM its SIMD kernel, without which the training runs take several
   times longer: fashion_fedavg's 2 rounds 21 s against 2.5 s) and names the objects in
   SDL_TUTORIAL_OBJ (sdl.h, cc) and SDL_TUTORIAL_MPI_OBJ (sdl_mpi.h, mpicc). The link arguments
   for one program, or "" where run.sh set none: the program then compiles the implementation
   itself (the one-file build). */
static inline const char *sdl_test_tutorial_link(int mpi) {
    static char buf[1024];
    const char *o = getenv("SDL_TUTORIAL_OBJ"), *m = getenv("SDL_TUTORIAL_MPI_OBJ");
    if (!o || !*o || (mpi && (!m || !*m))) return "";
    snprintf(buf, sizeof buf, "-DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE %s %s", o, mpi ? m : "");
    return buf;
}

#define GC_MAX_IN 4
typedef sdl_tensor *(*gc_fn)(sdl_tensor **in, void *ctx);
typedef void (*gc_ref)(double **in, double *out, void *ctx);

typedef struct gc_case {
    const char *name;
    int nin;
    sdl_shape shape[GC_MAX_IN];
    bool nodiff[GC_MAX_IN]; /* inputs whose gradient is not checked (targets, stats) */
    float lo, hi;           /* inputs drawn uniform in [lo, hi); default [-1, 1) */
    gc_fn f;
    gc_ref ref;
    void *ctx;
    double tol;             /* default 1e-3 */
} gc_case;

static inline double gc_loss(gc_case *c, double **in, double *out, const double *w, int64_t n) {
    memset(out, 0, sizeof(double) * (size_t)n);
    c->ref(in, out, c->ctx);
    double L = 0.0;
    for (int64_t i = 0; i < n; i++) L += out[i] * w[i];
    return L;
}

static inline int gc_compare(gc_case *c, sdl_tensor **in, double **din, sdl_tensor *out, double tol) {
    int ok = 1;
    int64_t n = out->numel;
    sdl_tensor *w = sdl_arena_tensor(sdl_tensor_shape(out), SDL_F32);
    sdl_tensor_uniform(w, -1.0f, 1.0f);
    double *dw = (double *)calloc((size_t)n + 1, sizeof(double));
    double *dout = (double *)calloc((size_t)n + 1, sizeof(double));
    for (int64_t j = 0; j < n; j++) dw[j] = sdl_f32(w)[j];
    gc_loss(c, din, dout, dw, n);
    double fmax = 0.0, ferr = 0.0;
    for (int64_t j = 0; j < n; j++) {
        fmax = fmax > fabs(dout[j]) ? fmax : fabs(dout[j]);
        double e = fabs(dout[j] - sdl_f32(out)[j]);
        if (!(e <= ferr)) ferr = isnan(ferr) ? ferr : e; /* a NaN sticks */
    }
    if (!(ferr <= 1e-4 * (1.0 + fmax))) {
        printf("  FAIL gradcheck %s: forward differs from the reference by %g (max |ref| %g)\n", c->name, ferr, fmax);
        ok = 0;
    }
    if (sdl_backward(sdl_sum(sdl_mul(out, w))) != SDL_OK) {
        printf("  FAIL gradcheck %s: backward: %s\n", c->name, sdl_last_error());
        ok = 0;
    }
    for (int i = 0; ok && i < c->nin; i++) {
        if (c->nodiff[i]) continue;
        double gmax = 0.0, gerr = 0.0;
        int64_t worst = 0;
        double *num = (double *)malloc(sizeof(double) * (size_t)(in[i]->numel + 1));
        for (int64_t j = 0; j < in[i]->numel; j++) {
            double x0 = din[i][j], h = 1e-6 * (1.0 + fabs(x0));
            din[i][j] = x0 + h;
            double lp = gc_loss(c, din, dout, dw, n);
            din[i][j] = x0 - h;
            double lm = gc_loss(c, din, dout, dw, n);
            din[i][j] = x0;
            num[j] = (lp - lm) / (2.0 * h);
            gmax = gmax > fabs(num[j]) ? gmax : fabs(num[j]);
        }
        for (int64_t j = 0; j < in[i]->numel; j++) {
            double e = fabs(num[j] - in[i]->grad[j]);
            if (!(e <= gerr) && !isnan(gerr)) { gerr = e; worst = j; } /* a NaN sticks */
        }
        if (!(gerr <= tol * (1.0 + gmax))) {
            printf("  FAIL gradcheck %s: input %d grad[%lld] = %g, finite difference %g (max |grad| %g)\n",
                   c->name, i, (long long)worst, (double)in[i]->grad[worst], num[worst], gmax);
            ok = 0;
        }
        free(num);
    }
    free(dw);
    free(dout);
    return ok;
}

/* returns 1 when forward and every checked gradient match */
static inline int gradcheck(gc_case *c) {
    int ok = 1;
    float lo = c->lo, hi = c->hi;
    if (lo == 0.0f && hi == 0.0f) { lo = -1.0f; hi = 1.0f; }
    double tol = c->tol > 0 ? c->tol : 1e-3;
    sdl_tensor *in[GC_MAX_IN] = {0};
    double *din[GC_MAX_IN] = {0};
    for (int i = 0; i < c->nin; i++) {
        in[i] = sdl_tensor_new(c->shape[i], SDL_F32);
        sdl_tensor_uniform(in[i], lo, hi);
        if (!c->nodiff[i]) sdl_tensor_requires_grad(in[i]);
        din[i] = (double *)malloc(sizeof(double) * (size_t)(in[i]->numel + 1));
        for (int64_t j = 0; j < in[i]->numel; j++) din[i][j] = sdl_f32(in[i])[j];
    }
    sdl_tensor *out = c->f(in, c->ctx);
    if (!out) printf("  FAIL gradcheck %s: op returned NULL: %s\n", c->name, sdl_last_error());
    else ok = gc_compare(c, in, din, out, tol);
    for (int i = 0; i < c->nin; i++) { sdl_tensor_free(in[i]); free(din[i]); }
    sdl_arena_reset();
    return ok;
}

/* random i32 ids in [0, n) for targets, embedding ids */
static inline sdl_tensor *test_ids(int64_t count, int32_t n) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape1(count), SDL_I32);
    for (int64_t i = 0; i < count; i++) sdl_i32(t)[i] = (int32_t)(sdl_rand_uniform() * (float)n) % n;
    return t;
}

/* the Fashion-MNIST CNN of examples/fashion_cnn.c (1x28x28 -> 10) */
static inline sdl_module *fashion_cnn_net(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 64 * 12 * 12, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
    return net;
}

/* a small CNN (conv, relu, max-pool, conv, relu, global pool, fc) learns to tell a bright
   square from noise, and a steady-state step allocates nothing (test_conv.c, test_conv_fast.c) */
static inline void check_small_cnn_trains(void) {
    sdl_model *m = sdl_model_new(9);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "c1", 1, 6, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_conv2d_layer(m, "c2", 6, 8, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 8, 2, true));
    sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    /* class 1: a bright square somewhere; class 0: noise only */
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(32, 1, 10, 10), SDL_F32), *y = sdl_tensor_new(sdl_shape1(32), SDL_I32);
    sdl_tensor_uniform(x, 0, 0.3f);
    for (int i = 0; i < 32; i++) {
        sdl_i32(y)[i] = i % 2;
        if (i % 2)
            for (int h = 0; h < 3; h++)
                for (int w = 0; w < 3; w++) sdl_f32(x)[i * 100 + (h + i % 7) * 10 + w + i % 5] = 1.0f;
    }
    float first = 0, last = 0;
    long before = 0;
    for (int step = 0; step < 60; step++) {
        if (step == 5) before = sdl_test_allocs;
        sdl_arena_reset();
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
        if (step == 0) first = sdl_item(loss);
        last = sdl_item(loss);
        sdl_backward(loss);
        sdl_optim_step(opt);
        sdl_model_zero_grad(m);
    }
    CHECK(sdl_test_allocs == before, "%ld allocations in steady-state conv steps", sdl_test_allocs - before);
    CHECK(last < 0.5f * first, "loss %g -> %g", first, last);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

#endif
