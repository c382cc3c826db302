/* cuda_test_ops.cu - the CUDA backend against the CPU one: every op's forward and gradients
   on random inputs, a full MLP training step, no cudaMalloc in a steady-state step, the
   device arena, and error reports. Without a GPU it prints a skip line and
   "0 passed, 0 failed" and exits 0.

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_ops.cu -o cuda_test_ops -lcublas
   Run:    ./cuda_test_ops            the checks
           ./cuda_test_ops --bench    the checks, then (if all pass) a short timing table

   Tolerances: the error is max |gpu - cpu| / max |cpu| over a tensor; f32 <= 1e-5,
   TF32 GEMMs <= 1e-3. Where cuBLAS sums K products in another order than the CPU's GEMM
   (conv, attention, the training steps), the tolerance is max(1e-5, 1e-6 sqrt(K)): the
   rounding error of a K-term f32 sum grows like sqrt(K) eps for random signs.

   The im2col scratch is made small here (SDL_CUDA_CONV_SCRATCH), so the conv tests run
   several chunks of samples with a remainder, as a big batch does with the default. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_CONV_SCRATCH ((size_t)256 << 10)
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"
#include <time.h>

#define TOL_F32 1e-5
#define TOL_TF32 1e-3
static double tol_k(double K) { return 1e-6 * sqrt(K) > TOL_F32 ? 1e-6 * sqrt(K) : TOL_F32; }

/* ---- helpers -------------------------------------------------------------------------- */

/* max |got - want| / max |want| (or the absolute error when want is all zero) */
static double rel_err(const float *got, const float *want, int64_t n) {
    double mx = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mx = mx > fabs((double)want[i]) ? mx : fabs((double)want[i]);
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= err)) err = e; /* NaN counts as the worst */
    }
    return err / (mx > 0.0 ? mx : 1.0);
}

/* device floats against host floats; prints (with the worst element) and returns 0 when
   they differ */
static int same_floats(const char *what, const char *name, const float *dev, const float *host, int64_t n, double tol) {
    float *h = dev_floats(dev, n);
    double e = rel_err(h, host, n);
    if (!(e <= tol)) {
        int64_t worst = 0;
        double we = -1.0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)h[i] - (double)host[i]);
            if (!(d <= we)) { we = d; worst = i; }
        }
        printf("  FAIL %s: %s differs from the CPU by %g relative (tolerance %g); worst element %lld of %lld: gpu %.9g cpu %.9g\n",
               name, what, e, tol, (long long)worst, (long long)n, n ? h[worst] : 0.0f, n ? host[worst] : 0.0f);
        free(h);
        return 0;
    }
    free(h);
    return 1;
}

/* ---- each op: CPU and GPU on the same random inputs ------------------------------------ */
enum {
    IN_GRAD = 0,   /* uniform [-1, 1), with a gradient (compared) */
    IN_NOGRAD = 1, /* uniform [-1, 1), no gradient */
    IN_IDS = 2,    /* i32 in [0, ids), the case's shape */
    IN_PROB = 3,   /* uniform [0, 1), no gradient (bce targets) */
    IN_STATE = 4,  /* uniform [0.5, 1.5), no gradient, compared after the run (running stats) */
    IN_WIDE = 5,   /* uniform [-5, 5), with a gradient */
    IN_TIES = 6    /* multiples of 0.5 in [-1, 1], with a gradient: ties in max pooling */
};
#define MAX_IN 6
typedef sdl_tensor *(*op_fn)(sdl_tensor **in, void *ctx);
typedef struct op_case {
    const char *name;
    int nin;
    sdl_shape shape[MAX_IN];
    int kind[MAX_IN];
    int32_t ids;
    op_fn f;
    void *ctx;
    double tol;      /* 0: TOL_F32 */
} op_case;

static sdl_tensor *ids_new(sdl_shape s, int32_t n) {
    sdl_tensor *t = sdl_tensor_new(s, SDL_I32);
    for (int64_t i = 0; i < t->numel; i++) sdl_i32(t)[i] = (int32_t)(sdl_rand_uniform() * (float)n) % n;
    return t;
}

/* L = sum(op(inputs) * w) for a random w, on both devices; compares the op's output, the
   gradient of every IN_GRAD/IN_WIDE/IN_TIES input and the final value of every IN_STATE input.
   Messages name the op and the shape of its first input. */
static int check_op(const op_case *c) {
    int ok = 1;
    double tol = c->tol > 0 ? c->tol : TOL_F32;
    sdl_tensor *h[MAX_IN] = {0}, *d[MAX_IN] = {0};
    char label[160], sh[96];
    snprintf(label, sizeof label, "%s %s", c->name, sdl_shape_str(c->shape[0], sh, sizeof sh));
    for (int i = 0; i < c->nin; i++) {
        int k = c->kind[i];
        if (k == IN_IDS) {
            h[i] = ids_new(c->shape[i], c->ids);
        } else {
            h[i] = sdl_tensor_new(c->shape[i], SDL_F32);
            float lo = k == IN_PROB ? 0.0f : k == IN_STATE ? 0.5f : k == IN_WIDE ? -5.0f : -1.0f;
            float hi = k == IN_PROB ? 1.0f : k == IN_STATE ? 1.5f : k == IN_WIDE ? 5.0f : 1.0f;
            sdl_tensor_uniform(h[i], lo, hi);
            if (k == IN_TIES)
                for (int64_t j = 0; j < h[i]->numel; j++) sdl_f32(h[i])[j] = roundf(2.0f * sdl_f32(h[i])[j]) * 0.5f;
            if (k == IN_GRAD || k == IN_WIDE || k == IN_TIES) sdl_tensor_requires_grad(h[i]);
        }
    }
    /* the device copies first: the CPU op may change an input (running stats) */
    for (int i = 0; i < c->nin; i++) {
        d[i] = sdl_cuda_to_device(h[i]);
        if (d[i] && (c->kind[i] == IN_GRAD || c->kind[i] == IN_WIDE || c->kind[i] == IN_TIES)) d[i]->requires_grad = true;
        if (!d[i]) { printf("  FAIL %s: input %d to the device: %s\n", label, i, sdl_last_error()); ok = 0; }
    }
    sdl_tensor *out = ok ? c->f(h, c->ctx) : NULL;
    if (ok && !out) { printf("  FAIL %s: CPU op failed: %s\n", label, sdl_last_error()); ok = 0; }
    sdl_tensor *w = out ? sdl_tensor_new(sdl_tensor_shape(out), SDL_F32) : NULL;
    float *cpu_out = NULL;
    if (ok) {
        sdl_tensor_uniform(w, -1.0f, 1.0f);
        cpu_out = (float *)malloc(sizeof(float) * (size_t)(out->numel + 1));
        memcpy(cpu_out, out->data, sizeof(float) * (size_t)out->numel);
        if (sdl_backward(sdl_sum(sdl_mul(out, w))) != SDL_OK) { printf("  FAIL %s: CPU backward: %s\n", label, sdl_last_error()); ok = 0; }
    }
    if (ok) {
        sdl_tensor *dout = c->f(d, c->ctx);
        sdl_tensor *dw = sdl_cuda_to_device(w);
        if (!dout || dout->device != SDL_CUDA) {
            printf("  FAIL %s: GPU op failed: %s\n", label, sdl_last_error());
            ok = 0;
        } else if (sdl_cuda_synchronize() != SDL_OK) {
            printf("  FAIL %s: GPU forward: %s\n", label, sdl_last_error());
            ok = 0;
        } else if (!same_floats("forward output", label, sdl_f32(dout), cpu_out, out->numel, tol)) {
            ok = 0;
        } else if (sdl_backward(sdl_sum(sdl_mul(dout, dw))) != SDL_OK || sdl_cuda_synchronize() != SDL_OK) {
            printf("  FAIL %s: GPU backward: %s\n", label, sdl_last_error());
            ok = 0;
        } else {
            for (int i = 0; i < c->nin; i++) {
                char what[64];
                if (c->kind[i] == IN_STATE) {
                    snprintf(what, sizeof what, "input %d after the op (state)", i);
                    ok &= same_floats(what, label, sdl_f32(d[i]), sdl_f32(h[i]), h[i]->numel, TOL_F32);
                }
                if (c->kind[i] != IN_GRAD && c->kind[i] != IN_WIDE && c->kind[i] != IN_TIES) continue;
                snprintf(what, sizeof what, "backward: grad of input %d", i);
                if (!d[i]->grad) { printf("  FAIL %s: no gradient for input %d on the GPU\n", label, i); ok = 0; continue; }
                ok &= same_floats(what, label, d[i]->grad, h[i]->grad, h[i]->numel, tol);
            }
        }
    }
    free(cpu_out);
    sdl_tensor_free(w);
    for (int i = 0; i < c->nin; i++) sdl_tensor_free(h[i]);
    sdl_arena_reset();
    return ok;
}

static sdl_tensor *f_linear(sdl_tensor **in, void *ctx) { return sdl_linear(in[0], in[1], ctx ? in[2] : NULL); }
static sdl_tensor *f_relu(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_relu(in[0]); }
static sdl_tensor *f_add(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_add(in[0], in[1]); }
static sdl_tensor *f_mul(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mul(in[0], in[1]); }
static sdl_tensor *f_sum(sdl_tensor **in, void *ctx) { return ctx ? sdl_mean(in[0]) : sdl_sum(in[0]); }
static sdl_tensor *f_mse(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mse_loss(in[0], in[1]); }
static sdl_tensor *f_ce(sdl_tensor **in, void *ctx) { return sdl_cross_entropy(in[0], in[1], *(float *)ctx); }
/* a view in the middle: relu(reshape(x, (5, -1))) then a linear on the flattened rows */
static sdl_tensor *f_view(sdl_tensor **in, void *ctx) {
    (void)ctx;
    return sdl_linear(sdl_relu(sdl_flatten(sdl_reshape(in[0], sdl_shape3(6, -1, 7)))), in[1], NULL);
}

static void test_linear(void) {
    op_case a = {"linear+bias", 3, {sdl_shape2(33, 65), sdl_shape2(17, 65), sdl_shape1(17)}, {0}, 0, f_linear, (void *)1, 0};
    CHECK(check_op(&a), "linear with bias");
    op_case b = {"linear 3-d, no bias", 2, {sdl_shape3(3, 5, 7), sdl_shape2(5, 7)}, {0}, 0, f_linear, NULL, 0};
    CHECK(check_op(&b), "linear without bias");
    op_case c = {"linear, x without grad", 3, {sdl_shape2(40, 300), sdl_shape2(129, 300), sdl_shape1(129)}, {IN_NOGRAD, IN_GRAD, IN_GRAD}, 0, f_linear, (void *)1, 0};
    CHECK(check_op(&c), "linear with a constant input");
    op_case d = {"linear, 300 rows", 3, {sdl_shape2(300, 6), sdl_shape2(37, 6), sdl_shape1(37)}, {0}, 0, f_linear, (void *)1, 0};
    CHECK(check_op(&d), "linear whose bias gradient sums 5 slices of rows");
}

static void test_linear_tf32(void) {
    sdl_cuda_set_tf32(true);
    op_case a = {"linear tf32", 3, {sdl_shape2(64, 256), sdl_shape2(96, 256), sdl_shape1(96)}, {0}, 0, f_linear, (void *)1, TOL_TF32};
    CHECK(check_op(&a), "linear with TF32");
    sdl_cuda_set_tf32(false);
}

static void test_relu_view(void) {
    op_case a = {"relu", 1, {sdl_shape3(3, 7, 5)}, {0}, 0, f_relu, NULL, 0};
    CHECK(check_op(&a), "relu");
    op_case b = {"relu large", 1, {sdl_shape2(1000, 333)}, {0}, 0, f_relu, NULL, 0};
    CHECK(check_op(&b), "relu on more elements than one grid pass");
    op_case c = {"reshape view", 2, {sdl_shape2(30, 14), sdl_shape2(3, 70)}, {0}, 0, f_view, NULL, 0};
    CHECK(check_op(&c), "reshape/flatten views between ops");
}

static void test_add_mul(void) {
    /* a (3, 5, 7) with b (7), (5, 1), full; bias-style (129, 33) + (33); a middle
       broadcast (3, 4, 5, 6) with (4, 1, 6) (the general reduction) */
    sdl_shape as[5] = {sdl_shape3(3, 5, 7), sdl_shape3(3, 5, 7), sdl_shape3(3, 5, 7), sdl_shape2(129, 33), sdl_shape4(3, 4, 5, 6)};
    sdl_shape bs[5] = {sdl_shape1(7), sdl_shape2(5, 1), sdl_shape3(3, 5, 7), sdl_shape1(33), sdl_shape3(4, 1, 6)};
    for (int mul = 0; mul < 2; mul++)
        for (int k = 0; k < 5; k++) {
            op_case c = {mul ? "mul" : "add", 2, {as[k], bs[k]}, {0}, 0, mul ? f_mul : f_add, NULL, 0};
            CHECK(check_op(&c), "%s with broadcast case %d", c.name, k);
        }
}

static void test_sum_mean(void) {
    op_case a = {"sum", 1, {sdl_shape2(3, 11)}, {0}, 0, f_sum, NULL, 0};
    CHECK(check_op(&a), "sum");
    op_case b = {"mean", 1, {sdl_shape2(3, 11)}, {0}, 0, f_sum, (void *)1, 0};
    CHECK(check_op(&b), "mean");
    op_case c = {"sum large", 1, {sdl_shape2(1000, 777)}, {0}, 0, f_sum, NULL, 0};
    CHECK(check_op(&c), "sum over many blocks");
}

static void test_losses(void) {
    float s0 = 0.0f, s1 = 0.1f;
    op_case a = {"cross_entropy", 2, {sdl_shape2(9, 7), sdl_shape1(9)}, {IN_GRAD, IN_IDS}, 7, f_ce, &s0, 0};
    CHECK(check_op(&a), "cross entropy");
    op_case b = {"cross_entropy smoothing", 2, {sdl_shape2(9, 7), sdl_shape1(9)}, {IN_GRAD, IN_IDS}, 7, f_ce, &s1, 0};
    CHECK(check_op(&b), "cross entropy with label smoothing");
    op_case c = {"cross_entropy wide", 2, {sdl_shape2(300, 1000), sdl_shape1(300)}, {IN_GRAD, IN_IDS}, 1000, f_ce, &s1, 0};
    CHECK(check_op(&c), "cross entropy with more classes than threads");
    op_case d = {"mse", 2, {sdl_shape2(13, 17), sdl_shape2(13, 17)}, {IN_GRAD, IN_NOGRAD}, 0, f_mse, NULL, 0};
    CHECK(check_op(&d), "mse");
    op_case dt = {"mse, targets too", 2, {sdl_shape2(13, 17), sdl_shape2(13, 17)}, {IN_GRAD, IN_GRAD}, 0, f_mse, NULL, 0};
    CHECK(check_op(&dt), "mse with a gradient for the targets");
    op_case d1 = {"mse, targets only", 2, {sdl_shape2(13, 17), sdl_shape2(13, 17)}, {IN_NOGRAD, IN_GRAD}, 0, f_mse, NULL, 0};
    CHECK(check_op(&d1), "mse with only the targets needing a gradient");
}


/* ---- conv2d, conv_transpose2d, pooling -------------------------------------------------- */
typedef struct conv_cfg { int stride, pad, out_pad; bool bias; } conv_cfg;
static sdl_tensor *f_conv(sdl_tensor **in, void *ctx) {
    conv_cfg *c = (conv_cfg *)ctx;
    return sdl_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad);
}
static sdl_tensor *f_convt(sdl_tensor **in, void *ctx) {
    conv_cfg *c = (conv_cfg *)ctx;
    return sdl_conv_transpose2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad, c->out_pad);
}

static void test_conv2d(void) {
    /* K for the tolerance: the longest sum, C_in kh kw (forward), C_out kh kw (dx) or N OH OW (dW) */
    conv_cfg a = {1, 1, 0, true}, b = {2, 0, 0, false}, c1 = {1, 0, 0, true}, d = {3, 2, 0, true}, e = {1, 1, 0, true};
    op_case ca = {"conv2d 3x3 s1 p1 bias", 3, {sdl_shape4(3, 5, 11, 9), sdl_shape4(7, 5, 3, 3), sdl_shape1(7)}, {0}, 0, f_conv, &a, tol_k(3 * 11 * 9)};
    CHECK(check_op(&ca), "conv2d 3x3 stride 1 pad 1");
    op_case cb = {"conv2d 3x2 s2 p0", 2, {sdl_shape4(2, 4, 10, 9), sdl_shape4(6, 4, 3, 2)}, {0}, 0, f_conv, &b, tol_k(2 * 4 * 4)};
    CHECK(check_op(&cb), "conv2d non-square kernel stride 2");
    op_case cc = {"conv2d 1x1", 3, {sdl_shape4(3, 13, 5, 7), sdl_shape4(9, 13, 1, 1), sdl_shape1(9)}, {0}, 0, f_conv, &c1, tol_k(3 * 35)};
    CHECK(check_op(&cc), "conv2d 1x1");
    op_case cd = {"conv2d 5x5 s3 p2, x without grad", 3, {sdl_shape4(2, 3, 12, 11), sdl_shape4(4, 3, 5, 5), sdl_shape1(4)}, {IN_NOGRAD, IN_GRAD, IN_GRAD}, 0, f_conv, &d, tol_k(2 * 16)};
    CHECK(check_op(&cd), "conv2d 5x5 stride 3 pad 2, constant input");
    /* 37 samples: forward and backward run in chunks with a remainder (the small scratch) */
    op_case ce = {"conv2d chunked batch", 3, {sdl_shape4(37, 3, 10, 10), sdl_shape4(4, 3, 3, 3), sdl_shape1(4)}, {0}, 0, f_conv, &e, tol_k(37 * 100)};
    CHECK(check_op(&ce), "conv2d over several chunks of samples");
}

static void test_conv_transpose2d(void) {
    conv_cfg a = {2, 1, 1, true}, b = {1, 0, 0, false}, c = {3, 1, 2, true};
    op_case ca = {"conv_transpose2d s2 p1 op1 bias", 3, {sdl_shape4(3, 6, 5, 4), sdl_shape4(6, 4, 3, 3), sdl_shape1(4)}, {0}, 0, f_convt, &a, tol_k(3 * 10 * 8)};
    CHECK(check_op(&ca), "conv_transpose2d stride 2 pad 1 out_pad 1");
    op_case cb = {"conv_transpose2d s1 p0", 2, {sdl_shape4(2, 5, 4, 6), sdl_shape4(5, 3, 2, 3)}, {0}, 0, f_convt, &b, tol_k(2 * 24)};
    CHECK(check_op(&cb), "conv_transpose2d stride 1, non-square kernel");
    op_case cc = {"conv_transpose2d chunked s3 p1 op2", 3, {sdl_shape4(29, 4, 6, 5), sdl_shape4(4, 3, 4, 4), sdl_shape1(3)}, {0}, 0, f_convt, &c, tol_k(29 * 30)};
    CHECK(check_op(&cc), "conv_transpose2d over several chunks");
}

typedef struct pool_cfg { int kernel, stride, pad; bool max, ties; } pool_cfg;
static sdl_tensor *f_pool(sdl_tensor **in, void *ctx) {
    pool_cfg *c = (pool_cfg *)ctx;
    return c->max ? sdl_max_pool2d(in[0], c->kernel, c->stride, c->pad) : sdl_avg_pool2d(in[0], c->kernel, c->stride, c->pad);
}
static sdl_tensor *f_gap(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_global_avg_pool(in[0]); }

static void test_pooling(void) {
    pool_cfg cfg[7] = {{2, 2, 0, true, false}, {3, 2, 1, true, false}, {3, 1, 1, true, false}, {2, 2, 0, true, true},
                       {3, 1, 1, true, true}, {3, 2, 1, false, false}, {2, 2, 0, false, false}};
    const char *names[7] = {"max_pool2d k2 s2", "max_pool2d k3 s2 p1", "max_pool2d k3 s1 p1 (overlapping)", "max_pool2d k2 s2 on ties",
                            "max_pool2d k3 s1 p1 on ties", "avg_pool2d k3 s2 p1", "avg_pool2d k2 s2"};
    for (int k = 0; k < 7; k++) {
        /* ties: inputs in {-1, -0.5, 0, 0.5, 1}, so most windows hold equal maxima and the
           gradient must go to the first of them, as on the CPU */
        op_case c = {names[k], 1, {sdl_shape4(3, 4, 11, 9)}, {cfg[k].ties ? IN_TIES : IN_GRAD}, 0, f_pool, &cfg[k], 0};
        CHECK(check_op(&c), "%s", names[k]);
    }
    op_case g = {"global_avg_pool", 1, {sdl_shape4(3, 5, 7, 6)}, {0}, 0, f_gap, NULL, 0};
    CHECK(check_op(&g), "global_avg_pool");
    op_case g2 = {"global_avg_pool 1x1 planes", 1, {sdl_shape4(2, 70, 1, 1)}, {0}, 0, f_gap, NULL, 0};
    CHECK(check_op(&g2), "global_avg_pool of 1x1 planes");
}

/* ---- batch norm, layer norm, dropout, embedding ----------------------------------------- */
typedef struct bn_cfg { bool training, affine, stats; } bn_cfg;
/* in: x, gamma, beta, running_mean, running_var (unused ones are passed as NULL) */
static sdl_tensor *f_bn(sdl_tensor **in, void *ctx) {
    bn_cfg *c = (bn_cfg *)ctx;
    return sdl_batch_norm(in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, c->stats ? in[3] : NULL,
                          c->stats ? in[4] : NULL, c->training, 0.1f, 1e-5f);
}
static void test_batch_norm(void) {
    bn_cfg tr = {true, true, true}, bare = {true, false, false}, ev = {false, true, true};
    op_case a = {"batch_norm train 4-d", 5, {sdl_shape4(3, 5, 7, 6), sdl_shape1(5), sdl_shape1(5), sdl_shape1(5), sdl_shape1(5)},
                 {IN_GRAD, IN_GRAD, IN_GRAD, IN_STATE, IN_STATE}, 0, f_bn, &tr, 0};
    CHECK(check_op(&a), "batch norm, training, affine, running stats updated");
    op_case b = {"batch_norm train 2-d bare", 5, {sdl_shape2(33, 7), sdl_shape1(7), sdl_shape1(7), sdl_shape1(7), sdl_shape1(7)},
                 {IN_GRAD, IN_NOGRAD, IN_NOGRAD, IN_NOGRAD, IN_NOGRAD}, 0, f_bn, &bare, 0};
    CHECK(check_op(&b), "batch norm, training, no affine, no stats");
    op_case c = {"batch_norm eval 4-d", 5, {sdl_shape4(3, 5, 7, 6), sdl_shape1(5), sdl_shape1(5), sdl_shape1(5), sdl_shape1(5)},
                 {IN_GRAD, IN_GRAD, IN_GRAD, IN_STATE, IN_STATE}, 0, f_bn, &ev, 0};
    CHECK(check_op(&c), "batch norm, eval");
    op_case d = {"batch_norm train many values", 5, {sdl_shape4(9, 3, 31, 29), sdl_shape1(3), sdl_shape1(3), sdl_shape1(3), sdl_shape1(3)},
                 {IN_GRAD, IN_GRAD, IN_GRAD, IN_STATE, IN_STATE}, 0, f_bn, &tr, 0};
    CHECK(check_op(&d), "batch norm with more values per channel than threads");
}

static sdl_tensor *f_ln(sdl_tensor **in, void *ctx) { return sdl_layer_norm(in[0], ctx ? in[1] : NULL, ctx ? in[2] : NULL, 1e-5f); }
static void test_layer_norm(void) {
    op_case a = {"layer_norm affine", 3, {sdl_shape3(3, 5, 37), sdl_shape1(37), sdl_shape1(37)}, {0}, 0, f_ln, (void *)1, 0};
    CHECK(check_op(&a), "layer norm with gamma, beta");
    op_case b = {"layer_norm bare", 1, {sdl_shape2(7, 1000)}, {0}, 0, f_ln, NULL, 0};
    CHECK(check_op(&b), "layer norm, D = 1000, no affine");
    op_case c = {"layer_norm D=5", 3, {sdl_shape2(300, 5), sdl_shape1(5), sdl_shape1(5)}, {IN_NOGRAD, IN_GRAD, IN_GRAD}, 0, f_ln, (void *)1, 0};
    CHECK(check_op(&c), "layer norm, short rows, only gamma/beta gradients");
}

typedef struct drop_cfg { float p; uint64_t seed; } drop_cfg;
/* the same RNG state before each call, so the CPU and GPU ops draw the same stream */
static sdl_tensor *f_dropout(sdl_tensor **in, void *ctx) {
    drop_cfg *c = (drop_cfg *)ctx;
    sdl_rng_set_state(c->seed, 1000);
    return sdl_dropout(in[0], c->p, true);
}
static void test_dropout(void) {
    drop_cfg a = {0.3f, 5}, b = {0.5f, 6}, c = {1.0f, 7};
    op_case ca = {"dropout p=0.3", 1, {sdl_shape3(7, 13, 11)}, {0}, 0, f_dropout, &a, 0};
    CHECK(check_op(&ca), "dropout: the GPU mask is the CPU's");
    op_case cb = {"dropout p=0.5 large", 1, {sdl_shape2(1000, 333)}, {0}, 0, f_dropout, &b, 0};
    CHECK(check_op(&cb), "dropout over many blocks");
    op_case cc = {"dropout p=1", 1, {sdl_shape2(5, 9)}, {0}, 0, f_dropout, &c, 0};
    CHECK(check_op(&cc), "dropout p = 1 drops everything");
}

static sdl_tensor *f_emb(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_embedding(in[0], in[1]); }
static void test_embedding(void) {
    op_case a = {"embedding", 2, {sdl_shape2(3, 7), sdl_shape2(11, 13)}, {IN_IDS, IN_GRAD}, 11, f_emb, NULL, 0};
    CHECK(check_op(&a), "embedding (repeated ids add up)");
    op_case b = {"embedding wide", 2, {sdl_shape1(300), sdl_shape2(5, 300)}, {IN_IDS, IN_GRAD}, 5, f_emb, NULL, 0};
    CHECK(check_op(&b), "embedding, many repeats, D > one block");
    op_case c = {"embedding, V > 1024", 2, {sdl_shape1(600), sdl_shape2(1100, 3)}, {IN_IDS, IN_GRAD}, 1100, f_emb, NULL, 0};
    CHECK(check_op(&c), "embedding, more ids than blocks (a block owns several ids)");
}

/* ---- activations, softmax --------------------------------------------------------------- */
typedef struct act_cfg { int which; float a; } act_cfg;
static sdl_tensor *f_act(sdl_tensor **in, void *ctx) {
    act_cfg *c = (act_cfg *)ctx;
    switch (c->which) {
    case 0: return sdl_leaky_relu(in[0], c->a);
    case 1: return sdl_gelu(in[0]);
    case 2: return sdl_tanh(in[0]);
    case 3: return sdl_sigmoid(in[0]);
    case 4: return sdl_silu(in[0]);
    case 5: return sdl_scale(in[0], c->a);
    case 6: return sdl_softmax(in[0]);
    case 8: return sdl_gelu_tanh(in[0]);
    default: return sdl_log_softmax(in[0]);
    }
}
static void test_activations(void) {
    const char *names[9] = {"leaky_relu", "gelu", "tanh", "sigmoid", "silu", "scale", "", "", "gelu_tanh"};
    for (int k = 0; k < 9; k++) {
        if (k == 6) k = 8; /* 6 and 7: softmax, log_softmax below */
        act_cfg c = {k, k == 0 ? 0.1f : -1.7f};
        op_case oc = {names[k], 1, {sdl_shape3(5, 7, 9)}, {IN_WIDE}, 0, f_act, &c, 0};
        CHECK(check_op(&oc), "%s on [-5, 5)", names[k]);
    }
}
static void test_softmax(void) {
    sdl_shape shapes[4] = {sdl_shape3(3, 5, 37), sdl_shape2(4, 1000), sdl_shape2(6, 1), sdl_shape2(300, 7)};
    for (int lg = 0; lg < 2; lg++)
        for (int k = 0; k < 4; k++) {
            act_cfg c = {6 + lg, 0.0f};
            op_case oc = {lg ? "log_softmax" : "softmax", 1, {shapes[k]}, {IN_WIDE}, 0, f_act, &c, 0};
            CHECK(check_op(&oc), "%s case %d", oc.name, k);
        }
}

/* ---- concat, transpose, attention -------------------------------------------------------- */
static sdl_tensor *f_concat(sdl_tensor **in, void *ctx) { return sdl_concat(in[0], in[1], (int)(intptr_t)ctx); }
typedef struct tr_cfg { int d0, d1; } tr_cfg;
static sdl_tensor *f_transpose(sdl_tensor **in, void *ctx) { tr_cfg *c = (tr_cfg *)ctx; return sdl_transpose(in[0], c->d0, c->d1); }
static sdl_tensor *f_attn(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_attention(in[0], in[1], in[2]); }

static void test_shape_ops(void) {
    op_case c0 = {"concat dim 0", 2, {sdl_shape3(3, 4, 5), sdl_shape3(2, 4, 5)}, {0}, 0, f_concat, (void *)0, 0};
    CHECK(check_op(&c0), "concat along dim 0");
    op_case c1 = {"concat dim 1", 2, {sdl_shape3(3, 4, 5), sdl_shape3(3, 2, 5)}, {IN_GRAD, IN_NOGRAD}, 0, f_concat, (void *)1, 0};
    CHECK(check_op(&c1), "concat along dim 1, b constant");
    op_case c2 = {"concat dim -1", 2, {sdl_shape3(3, 4, 5), sdl_shape3(3, 4, 6)}, {0}, 0, f_concat, (void *)-1, 0};
    CHECK(check_op(&c2), "concat along the last dim");
    tr_cfg t[5] = {{1, 2}, {0, 3}, {1, 3}, {2, 1}, {1, 1}};
    for (int k = 0; k < 5; k++) {
        op_case c = {"transpose", 1, {sdl_shape4(3, 4, 5, 6)}, {0}, 0, f_transpose, &t[k], 0};
        CHECK(check_op(&c), "transpose dims %d, %d", t[k].d0, t[k].d1);
    }
    for (int k = 0; k < 3; k++) { /* rows of 40 and 120 floats: a warp per row */
        op_case c = {"transpose, long rows", 1, {sdl_shape4(2, 5, 3, 40)}, {0}, 0, f_transpose, &t[k], 0};
        CHECK(check_op(&c), "transpose of (2, 5, 3, 40), dims %d, %d", t[k].d0, t[k].d1);
    }
}

static void test_attention(void) {
    op_case a = {"attention", 3, {sdl_shape4(2, 3, 7, 5), sdl_shape4(2, 3, 7, 5), sdl_shape4(2, 3, 7, 5)}, {0}, 0, f_attn, NULL, tol_k(7)};
    CHECK(check_op(&a), "causal attention");
    op_case b = {"attention T=33", 3, {sdl_shape4(1, 2, 33, 8), sdl_shape4(1, 2, 33, 8), sdl_shape4(1, 2, 33, 8)}, {0}, 0, f_attn, NULL, tol_k(33)};
    CHECK(check_op(&b), "causal attention with T > 32");
    op_case c = {"attention, only v grad", 3, {sdl_shape4(2, 2, 9, 4), sdl_shape4(2, 2, 9, 4), sdl_shape4(2, 2, 9, 4)},
                 {IN_NOGRAD, IN_NOGRAD, IN_GRAD}, 0, f_attn, NULL, tol_k(9)};
    CHECK(check_op(&c), "causal attention, gradient for v only");
}

/* ---- nll, bce ----------------------------------------------------------------------------- */
static sdl_tensor *f_nll(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_nll_loss(in[0], in[1]); }
static sdl_tensor *f_lsm_nll(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_nll_loss(sdl_log_softmax(in[0]), in[1]); }
static sdl_tensor *f_bce(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_bce_with_logits(in[0], in[1]); }
static void test_more_losses(void) {
    op_case a = {"nll", 2, {sdl_shape2(9, 7), sdl_shape1(9)}, {IN_GRAD, IN_IDS}, 7, f_nll, NULL, 0};
    CHECK(check_op(&a), "nll");
    op_case b = {"log_softmax + nll", 2, {sdl_shape2(300, 11), sdl_shape1(300)}, {IN_GRAD, IN_IDS}, 11, f_lsm_nll, NULL, 0};
    CHECK(check_op(&b), "log_softmax then nll");
    op_case c = {"bce_with_logits", 2, {sdl_shape2(5, 7), sdl_shape2(5, 7)}, {IN_WIDE, IN_PROB}, 0, f_bce, NULL, 0};
    CHECK(check_op(&c), "bce with logits");
    op_case d = {"bce_with_logits, target grad", 2, {sdl_shape2(50, 77), sdl_shape2(50, 77)}, {IN_GRAD, IN_GRAD}, 0, f_bce, NULL, 0};
    CHECK(check_op(&d), "bce with logits, gradient for the targets too");
    /* a bad id on the GPU gives NaN (no host check), as cross entropy */
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(3, 4), SDL_F32), *y = sdl_tensor_new(sdl_shape1(3), SDL_I32);
    sdl_i32(y)[2] = -1;
    float l = sdl_item(sdl_nll_loss(sdl_cuda_to_device(x), sdl_cuda_to_device(y)));
    CHECK(isnan(l), "a bad nll target on the GPU gives a NaN loss, got %g", l);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
}

/* ---- a training step: the same model, data and SGD on both devices --------------------- */
static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 20, 33, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 33, 5, true));
    return net;
}

static void test_mlp_steps(void) {
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        sdl_model *mc = sdl_model_new(7); /* the seed restarts the RNG: the same weights */
        sdl_module *nc = make_mlp(mc);
        sdl_model *mg = sdl_model_new(7);
        sdl_module *ng = make_mlp(mg);
        CHECK(sdl_cuda_model_to_device(mg) == SDL_OK, "model_to_device: %s", sdl_last_error());
        CHECK(mg->params[0]->device == SDL_CUDA && mg->params[0]->data == mg->param_data, "parameters point into the device array");
        sdl_optim *oc = sdl_sgd(mc, 0.05f, 0.9f, 1e-2f, nesterov != 0);
        sdl_optim *og = sdl_sgd(mg, 0.05f, 0.9f, 1e-2f, nesterov != 0);
        CHECK(og && og->device == SDL_CUDA, "optimizer state on the device");
        for (int step = 0; step < 4; step++) {
            sdl_tensor *x = sdl_tensor_new(sdl_shape2(16, 20), SDL_F32);
            sdl_tensor_uniform(x, -1.0f, 1.0f);
            sdl_tensor *y = test_ids(16, 5);
            sdl_tensor *lc_logits = sdl_forward(nc, x);
            sdl_tensor *lc = sdl_cross_entropy(lc_logits, y, 0.1f);
            CHECK(sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU step");
            sdl_model_zero_grad(mc);
            sdl_tensor *lg_logits = sdl_forward(ng, sdl_cuda_to_device(x));
            sdl_tensor *lg = sdl_cross_entropy(lg_logits, sdl_cuda_to_device(y), 0.1f);
            CHECK(lg && lg->device == SDL_CUDA, "GPU loss: %s", sdl_last_error());
            CHECK(sdl_backward(lg) == SDL_OK, "GPU backward: %s", sdl_last_error());
            CHECK(sdl_optim_step(og) == SDL_OK, "GPU optim step: %s", sdl_last_error());
            sdl_model_zero_grad(mg);
            float a = sdl_item(lc), b = sdl_item(lg);
            CHECK(fabs((double)a - b) <= TOL_F32 * fabs((double)a), "step %d loss CPU %.8f GPU %.8f", step, a, b);
            CHECK(sdl_count_correct(lc_logits, y) == sdl_count_correct(lg_logits, sdl_cuda_to_device(y)), "count_correct");
            CHECK(sdl_cuda_synchronize() == SDL_OK, "sync: %s", sdl_last_error());
            sdl_tensor_free(x);
            sdl_tensor_free(y);
            sdl_arena_reset();
        }
        for (int i = 0; i < mc->nparams; i++)
            CHECK(same_floats("parameter after 4 steps", mc->params[i]->name, sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel, TOL_F32),
                  "%s (nesterov %d)", mc->params[i]->name, nesterov);
        float *g = dev_floats(mg->grad_data, mg->param_floats);
        int64_t nonzero = 0;
        for (int64_t i = 0; i < mg->param_floats; i++) nonzero += g[i] != 0.0f;
        free(g);
        CHECK(nonzero == 0, "zero_grad on the device left %lld non-zero", (long long)nonzero);
        /* back to the host: the parameters are the CPU model's */
        CHECK(sdl_cuda_model_to_host(mg) == SDL_OK && mg->params[0]->device == SDL_CPU, "model_to_host: %s", sdl_last_error());
        for (int i = 0; i < mc->nparams; i++)
            CHECK(rel_err(sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel) <= TOL_F32, "%s after model_to_host", mc->params[i]->name);
        sdl_optim_free(og);
        sdl_optim_free(oc);
        sdl_model_free(mc);
        sdl_model_free(mg);
    }
}

/* ---- no cudaMalloc (and no host allocation) once a step has run ------------------------ */
static long dev_allocs;
static void *(*real_alloc)(size_t);
static void *counting_alloc(size_t n) { dev_allocs++; return real_alloc(n); }

static void train_step(sdl_module *net, sdl_optim *o, sdl_tensor *x, sdl_tensor *y) {
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, sdl_cuda_to_device(x)), sdl_cuda_to_device(y), 0.0f);
    sdl_backward(loss);
    sdl_optim_step(o);
    sdl_model_zero_grad(o->model);
    (void)sdl_item(loss);
    sdl_arena_reset();
}

static void test_steady_state(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_mlp(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    CHECK(dev_allocs >= 4, "the model and optimizer arrays went through the alloc hook (%ld)", dev_allocs);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(64, 20), SDL_F32), *y = test_ids(64, 5);
    sdl_tensor_uniform(x, -1.0f, 1.0f);
    for (int i = 0; i < 3; i++) train_step(net, o, x, y);
    long dev0 = dev_allocs, host0 = sdl_test_allocs;
    size_t cap0 = sdl_cuda_arena_capacity();
    for (int i = 0; i < 5; i++) train_step(net, o, x, y);
    CHECK(dev_allocs == dev0, "%ld device allocations in 5 steady-state steps", dev_allocs - dev0);
    CHECK(sdl_test_allocs == host0, "%ld host allocations in 5 steady-state steps", sdl_test_allocs - host0);
    CHECK(sdl_cuda_arena_capacity() == cap0, "device arena grew from %zu to %zu", cap0, sdl_cuda_arena_capacity());
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
    sdl_register_backend(SDL_CUDA, &orig);
}


/* ---- each optimizer: 5 steps on both devices, parameters and state compared after each ---- */
static sdl_module *make_wide_mlp(sdl_model *m) {
    /* 300 x 257 = 77100 weights: more norm blocks than SDL__CU_NORM_BLOCKS (LARS, LAMB) */
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 20, 300, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 300, 257, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "4", 257, 5, true));
    return net;
}

/* the GEMMs sum over K <= 300 in another order: tol_k(300) for losses, parameters, state */
static void optim_trajectory(const char *name, const sdl_optim_desc *desc) {
    double tol = tol_k(300);
    sdl_model *mc = sdl_model_new(5);
    sdl_module *nc = make_wide_mlp(mc);
    sdl_model *mg = sdl_model_new(5);
    sdl_module *ng = make_wide_mlp(mg);
    CHECK(sdl_cuda_model_to_device(mg) == SDL_OK, "%s: model_to_device: %s", name, sdl_last_error());
    sdl_optim *oc = sdl_optim_new(mc, desc), *og = sdl_optim_new(mg, desc);
    CHECK(oc && og && og->device == SDL_CUDA, "%s: optimizers: %s", name, sdl_last_error());
    if (!oc || !og) { sdl_optim_free(oc); sdl_optim_free(og); sdl_model_free(mc); sdl_model_free(mg); return; }
    int bad_step = -1;
    for (int step = 0; step < 5 && bad_step < 0; step++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape2(16, 20), SDL_F32), *y = test_ids(16, 5);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        int64_t nf = mc->param_floats;
        float *pc0 = (float *)malloc(sizeof(float) * (size_t)nf), *pg0 = dev_floats(mg->param_data, nf);
        memcpy(pc0, mc->param_data, sizeof(float) * (size_t)nf);
        sdl_tensor *lc = sdl_cross_entropy(sdl_forward(nc, x), y, 0.0f);
        CHECK(sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "%s: CPU step: %s", name, sdl_last_error());
        sdl_tensor *lg = sdl_cross_entropy(sdl_forward(ng, sdl_cuda_to_device(x)), sdl_cuda_to_device(y), 0.0f);
        CHECK(lg && sdl_backward(lg) == SDL_OK, "%s: GPU forward/backward: %s", name, sdl_last_error());
        sdl_result r = sdl_optim_step(og);
        CHECK(r == SDL_OK && sdl_cuda_synchronize() == SDL_OK, "%s: GPU optim step %d: %s", name, step, sdl_last_error());
        /* the update itself, p_after - p_before, per parameter: more sensitive than p (the
           step is small next to p). A difference of two f32 values: tolerance 1e-4. */
        float *pg1 = dev_floats(mg->param_data, nf);
        for (int64_t i = 0; i < nf; i++) { pg0[i] = pg1[i] - pg0[i]; pc0[i] = mc->param_data[i] - pc0[i]; }
        for (int i = 0; i < mc->nparams; i++) {
            int64_t off = mc->param_offset[i], len = mc->params[i]->numel;
            double e = rel_err(pg0 + off, pc0 + off, len);
            if (!(e <= 1e-4)) {
                printf("  FAIL %s step %d: the update of %s differs from the CPU's by %g relative (tolerance 1e-4)\n", name, step, mc->params[i]->name, e);
                bad_step = step;
            }
        }
        free(pc0);
        free(pg0);
        free(pg1);
        float a = sdl_item(lc), b = sdl_item(lg);
        if (!(fabs((double)a - b) <= tol * fabs((double)a))) { printf("  FAIL %s step %d: loss CPU %.8f GPU %.8f\n", name, step, a, b); bad_step = step; }
        for (int i = 0; i < mc->nparams; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s after step %d", mc->params[i]->name, step);
            if (!same_floats(what, name, sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel, tol)) bad_step = step;
        }
        for (int k = 0; k < sdl_optim_state_count(oc); k++) {
            char what[96];
            snprintf(what, sizeof what, "state %s after step %d", sdl_optim_state_name(oc, k), step);
            if (!same_floats(what, name, sdl_optim_state_data(og, k), sdl_optim_state_data(oc, k), mc->param_floats, tol)) bad_step = step;
        }
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
    }
    CHECK(bad_step < 0, "%s: the GPU trajectory leaves the CPU's at step %d", name, bad_step);
    sdl_optim_free(og);
    sdl_optim_free(oc);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

static void test_optimizers(void) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    /* eps 1e-6, not 1e-8: a gradient element within rounding of 0 (|g| ~ 1e-10) whose sign
       differs between the devices moves by lr g / (|g| + eps): negligible with 1e-6, up to
       0.1 lr with 1e-8, which would fail a correct kernel */
    d.kind = SDL_OPTIM_ADAM; d.lr = 1e-3f; d.weight_decay = 0.1f; d.eps = 1e-6f;
    optim_trajectory("adam (L2 decay)", &d);
    d.kind = SDL_OPTIM_ADAMW; d.lr = 2e-3f; d.weight_decay = 0.5f; d.beta1 = 0.8f; d.beta2 = 0.99f;
    optim_trajectory("adamw", &d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_LARS; d.lr = 0.5f; d.momentum = 0.9f; d.weight_decay = 0.05f; d.trust_coef = 0.01f;
    optim_trajectory("lars momentum", &d);
    d.nesterov = true;
    optim_trajectory("lars nesterov", &d);
    d.nesterov = false; d.momentum = 0.0f;
    optim_trajectory("lars without momentum", &d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_LAMB; d.lr = 1e-2f; d.weight_decay = 0.1f;
    optim_trajectory("lamb", &d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD; d.lr = 0.05f; d.momentum = 0.9f; d.weight_decay = 5e-4f;
    optim_trajectory("sgd momentum", &d);
}

/* ---- CNN training steps, GPU vs CPU ---------------------------------------------------------
   the Fashion CNN (examples/fashion_cnn.c), and a small net with batch norm, pooling with
   padding, leaky relu, dropout and global average pooling. fc1 sums K = 9216 products: the
   tolerance is tol_k(9216) ~ 1e-4. */
static sdl_module *make_bn_cnn(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 1, 8, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn1", 8));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 3, 2));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 8, 12, 3, 2, 0, true));
    sdl_seq_add(net, sdl_leaky_relu_layer(m, 0.1f));
    sdl_seq_add(net, sdl_dropout_layer(m, 0.25f));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 12, 10, true));
    return net;
}

typedef sdl_module *(*net_fn)(sdl_model *m);
static void cnn_steps(const char *name, net_fn make, sdl_shape xs, const sdl_optim_desc *desc, int steps) {
    double tol = tol_k(9216);
    sdl_model *mc = sdl_model_new(21);
    sdl_module *nc = make(mc);
    sdl_model *mg = sdl_model_new(21);
    sdl_module *ng = make(mg);
    CHECK(nc && ng && sdl_cuda_model_to_device(mg) == SDL_OK, "%s: model: %s", name, sdl_last_error());
    sdl_optim *oc = sdl_optim_new(mc, desc), *og = sdl_optim_new(mg, desc);
    CHECK(oc && og, "%s: optimizers: %s", name, sdl_last_error());
    if (!nc || !ng || !oc || !og) { sdl_optim_free(oc); sdl_optim_free(og); sdl_model_free(mc); sdl_model_free(mg); return; }
    for (int step = 0; step < steps; step++) {
        sdl_tensor *x = sdl_tensor_new(xs, SDL_F32), *y = test_ids(xs.d[0], 10);
        sdl_tensor_uniform(x, 0.0f, 1.0f);
        sdl_rng_set_state(77, (uint64_t)step * 1000); /* dropout draws the same streams on both */
        sdl_tensor *lc = sdl_cross_entropy(sdl_forward(nc, x), y, 0.0f);
        CHECK(lc && sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "%s: CPU step: %s", name, sdl_last_error());
        sdl_rng_set_state(77, (uint64_t)step * 1000);
        sdl_tensor *lg = sdl_cross_entropy(sdl_forward(ng, sdl_cuda_to_device(x)), sdl_cuda_to_device(y), 0.0f);
        CHECK(lg && lg->device == SDL_CUDA, "%s: GPU forward: %s", name, sdl_last_error());
        CHECK(lg && sdl_backward(lg) == SDL_OK && sdl_optim_step(og) == SDL_OK && sdl_cuda_synchronize() == SDL_OK,
              "%s: GPU step %d: %s", name, step, sdl_last_error());
        float a = lc ? sdl_item(lc) : NAN, b = lg ? sdl_item(lg) : NAN;
        CHECK(fabs((double)a - b) <= tol * fabs((double)a), "%s step %d: loss CPU %.8f GPU %.8f", name, step, a, b);
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
        sdl_manual_seed(1000 + (uint64_t)step); /* the next batch */
    }
    for (int i = 0; i < mc->nparams; i++)
        CHECK(same_floats("parameter after the steps", mc->params[i]->name, sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel, tol),
              "%s: %s", name, mc->params[i]->name);
    for (int i = 0; i < mc->nbuffers; i++)
        CHECK(same_floats("buffer after the steps", mc->buffers[i]->name, sdl_f32(mg->buffers[i]), sdl_f32(mc->buffers[i]), mc->buffers[i]->numel, tol),
              "%s: %s", name, mc->buffers[i]->name);
    /* eval mode: batch norm on the running stats, dropout off */
    sdl_model_train(mc, false);
    sdl_model_train(mg, false);
    sdl_tensor *x = sdl_tensor_new(xs, SDL_F32);
    sdl_tensor_uniform(x, 0.0f, 1.0f);
    sdl_set_grad_enabled(false);
    sdl_tensor *yc = sdl_forward(nc, x), *yg = sdl_forward(ng, sdl_cuda_to_device(x));
    sdl_set_grad_enabled(true);
    CHECK(yc && yg && same_floats("eval logits", name, sdl_f32(yg), sdl_f32(yc), yc->numel, tol), "%s: eval forward", name);
    sdl_tensor_free(x);
    sdl_arena_reset();
    sdl_optim_free(og);
    sdl_optim_free(oc);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

static void test_cnn_steps(void) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD; d.lr = 0.05f; d.momentum = 0.9f;
    cnn_steps("fashion cnn, sgd", fashion_cnn_net, sdl_shape4(8, 1, 28, 28), &d, 3);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_ADAM; d.lr = 1e-3f; d.eps = 1e-6f; /* eps: see test_optimizers */
    cnn_steps("bn cnn, adam", make_bn_cnn, sdl_shape4(6, 1, 17, 15), &d, 3);
}

/* no cudaMalloc once a CNN step with LAMB has run: the im2col and norm scratch stop growing */
static void test_steady_state_cnn(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_bn_cnn(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_lamb(m, 1e-3f, 0.9f, 0.999f, 0.01f);
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(16, 1, 17, 15), SDL_F32), *y = test_ids(16, 10);
    sdl_tensor_uniform(x, -1.0f, 1.0f);
    for (int i = 0; i < 3; i++) train_step(net, o, x, y);
    long dev0 = dev_allocs, host0 = sdl_test_allocs;
    for (int i = 0; i < 4; i++) train_step(net, o, x, y);
    CHECK(dev_allocs == dev0, "%ld device allocations in 4 steady-state CNN steps", dev_allocs - dev0);
    CHECK(sdl_test_allocs == host0, "%ld host allocations in 4 steady-state CNN steps", sdl_test_allocs - host0);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
    sdl_register_backend(SDL_CUDA, &orig);
}

/* ---- the device arena: growth, merge on reset, zeroed memory ---------------------------- */
static void test_arena(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    size_t big = SDL_CUDA_ARENA_MIN / 2 + 4096, cap1 = 0;
    long allocs1 = 0;
    for (int step = 0; step < 3; step++) {
        for (int k = 0; k < 4; k++) { /* more than one block holds: grows in step 0 */
            unsigned char *p = (unsigned char *)be.arena_alloc(big);
            CHECK(p != NULL, "arena_alloc %zu: %s", big, sdl_last_error());
            if (!p) break;
            unsigned char head[256], tail[256];
            sdl_cuda_synchronize();
            cudaMemcpy(head, p, sizeof head, cudaMemcpyDeviceToHost);
            cudaMemcpy(tail, p + big - sizeof tail, sizeof tail, cudaMemcpyDeviceToHost);
            int nz = 0;
            for (size_t i = 0; i < sizeof head; i++) nz += head[i] != 0 || tail[i] != 0;
            CHECK(nz == 0, "step %d block %d: arena memory not zero", step, k);
            cudaMemset(p, 0xff, big); /* dirty it: the next reset must clean it */
            cudaDeviceSynchronize();
        }
        if (step == 1) { cap1 = sdl_cuda_arena_capacity(); allocs1 = dev_allocs; }
        sdl_arena_reset();
    }
    float *raw = (float *)be.arena_alloc_raw(64 * sizeof(float)), got[64];
    CHECK(raw != NULL, "arena_alloc_raw: %s", sdl_last_error());
    if (raw) {
        cudaMemcpy(got, raw, sizeof got, cudaMemcpyDeviceToHost);
        int nan = 0;
        for (int i = 0; i < 64; i++) nan += isnan(got[i]);
        CHECK(nan == 64, "raw arena memory starts as NaN under SDL_DEBUG_POISON (%d of 64)", nan);
    }
    sdl_arena_reset();
    CHECK(sdl_cuda_arena_capacity() == cap1 && cap1 >= 4 * big, "capacity after merging: %zu then %zu", cap1, sdl_cuda_arena_capacity());
    CHECK(dev_allocs == allocs1, "a step that fits allocated %ld blocks", dev_allocs - allocs1);
    sdl_register_backend(SDL_CUDA, &orig);
}

/* ---- errors are reported, named, and kept ---------------------------------------------- */
static void test_errors(void) {
    void *p = sdl_get_backend(SDL_CUDA)->alloc((size_t)1 << 53);
    CHECK(p == NULL && sdl_last_result() == SDL_ERR_OOM, "an impossible cudaMalloc fails with SDL_ERR_OOM");
    CHECK(strstr(sdl_last_error(), "cudaMalloc") && strstr(sdl_last_error(), "sdl_cuda.h:"), "the message names the call and line: %s", sdl_last_error());
    CHECK(sdl_cuda_synchronize() == SDL_ERR_OOM, "synchronize returns the kept error");
    CHECK(sdl_cuda_synchronize() == SDL_OK, "and clears it");

    sdl_tensor *h = sdl_tensor_new(sdl_shape1(4), SDL_F32);
    sdl_tensor *d = sdl_cuda_to_device(h);
    sdl_clear_error();
    CHECK(sdl_add(h, d) == NULL && sdl_last_result() == SDL_ERR_DEVICE, "mixing devices fails: %s", sdl_last_error());
    sdl_tensor_free(h);

    sdl_model *m = sdl_model_new(1);
    sdl_module *net = make_mlp(m);
    (void)net;
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    sdl_cuda_model_to_device(m);
    CHECK(sdl_optim_step(o) == SDL_ERR_DEVICE, "an optimizer made before the move refuses to step");
    sdl_optim_free(o);
    sdl_model_free(m);

    sdl_tensor *x = sdl_tensor_new(sdl_shape2(3, 4), SDL_F32), *y = sdl_tensor_new(sdl_shape1(3), SDL_I32);
    sdl_i32(y)[1] = 9; /* outside [0, 4) */
    float l = sdl_item(sdl_cross_entropy(sdl_cuda_to_device(x), sdl_cuda_to_device(y), 0.0f));
    CHECK(isnan(l), "a bad target on the GPU gives a NaN loss, got %g", l);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "no error left behind: %s", sdl_last_error());
}

/* ---- the same steps twice on the GPU give the same bits (fixed-order reductions) -------- */
static void run_gpu_steps(float *params_out) {
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = make_mlp(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 1e-3f, false);
    sdl_manual_seed(99); /* the same batches */
    for (int step = 0; step < 3; step++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape2(300, 20), SDL_F32), *y = test_ids(300, 5);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        train_step(net, o, x, y);
        sdl_tensor_free(x);
        sdl_tensor_free(y);
    }
    float *p = dev_floats(m->param_data, m->param_floats);
    memcpy(params_out, p, sizeof(float) * (size_t)m->param_floats);
    free(p);
    sdl_optim_free(o);
    sdl_model_free(m);
}

static void test_deterministic(void) {
    int64_t n = 20 * 33 + 33 + 33 * 5 + 5;
    float *a = (float *)calloc((size_t)n, sizeof(float)), *b = (float *)calloc((size_t)n, sizeof(float));
    run_gpu_steps(a);
    run_gpu_steps(b);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "two identical GPU runs differ");
    free(a);
    free(b);
}

/* the same for a CNN with batch norm, dropout, pooling and LAMB: conv, col2im, pooling
   backward and the norm reductions are all fixed-order */
static void run_gpu_cnn_steps(float **params_out, int64_t *np, float **buffers_out, int64_t *nb) {
    sdl_model *m = sdl_model_new(12);
    sdl_module *net = make_bn_cnn(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_lamb(m, 1e-3f, 0.9f, 0.999f, 0.01f);
    sdl_manual_seed(98);
    for (int step = 0; step < 3; step++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape4(16, 1, 17, 15), SDL_F32), *y = test_ids(16, 10);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        train_step(net, o, x, y);
        sdl_tensor_free(x);
        sdl_tensor_free(y);
    }
    *np = m->param_floats;
    *nb = m->buffer_floats;
    *params_out = dev_floats(m->param_data, m->param_floats);
    *buffers_out = dev_floats(m->buffer_data, m->buffer_floats);
    sdl_optim_free(o);
    sdl_model_free(m);
}

static void test_deterministic_cnn(void) {
    float *a, *b, *ab, *bb;
    int64_t na, nb, nab, nbb;
    run_gpu_cnn_steps(&a, &na, &ab, &nab);
    run_gpu_cnn_steps(&b, &nb, &bb, &nbb);
    CHECK(na == nb && nab == nbb && nab > 0, "model sizes %lld %lld %lld %lld", (long long)na, (long long)nb, (long long)nab, (long long)nbb);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)na) == 0, "two identical GPU CNN runs give different parameters");
    CHECK(memcmp(ab, bb, sizeof(float) * (size_t)nab) == 0, "two identical GPU CNN runs give different running stats");
    free(a);
    free(b);
    free(ab);
    free(bb);
}

/* ---- pinned host memory and the timer ---------------------------------------------------- */
static void test_pinned_timer(void) {
    int64_t n = 1000;
    float *h = (float *)sdl_cuda_host_alloc((size_t)n * sizeof(float)), *back = (float *)calloc((size_t)n, sizeof(float));
    CHECK(h != NULL, "host_alloc: %s", sdl_last_error());
    if (!h) { free(back); return; }
    for (int64_t i = 0; i < n; i++) h[i] = (float)i * 0.5f;
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    float *d = (float *)be->arena_alloc((size_t)n * sizeof(float));
    sdl_cuda_timer_start();
    be->copy(d, h, (size_t)n * sizeof(float), SDL_CUDA, SDL_CPU);
    be->copy(back, d, (size_t)n * sizeof(float), SDL_CPU, SDL_CUDA);
    float ms = sdl_cuda_timer_stop();
    CHECK(memcmp(h, back, (size_t)n * sizeof(float)) == 0, "pinned -> device -> host round trip");
    CHECK(ms >= 0.0f && ms < 1e4f, "timer: %g ms", ms);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    sdl_cuda_host_free(h);
    free(back);
}

/* ---- --bench: a short table (after the checks pass) ------------------------------------ */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_gemm(bool tf32) {
    int64_t n = 4096;
    size_t bytes = (size_t)(n * n) * sizeof(float);
    float *a = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes), *b = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes), *c = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes);
    if (!a || !b || !c) { printf("bench gemm: %s\n", sdl_last_error()); return; }
    sdl_get_backend(SDL_CUDA)->memset0(a, bytes);
    sdl_get_backend(SDL_CUDA)->memset0(b, bytes);
    sdl_cuda_set_tf32(tf32);
    for (int i = 0; i < 2; i++) sdl__cu_gemm(false, true, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    int reps = 10;
    sdl_cuda_timer_start();
    for (int i = 0; i < reps; i++) sdl__cu_gemm(false, true, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    float ms = sdl_cuda_timer_stop() / (float)reps;
    sdl_cuda_set_tf32(false);
    printf("| %-26s | %-16s | %9.3f | %9.1f TFLOP/s |\n", tf32 ? "gemm tf32 (x w^T)" : "gemm f32 (x w^T)", "4096^3", ms, 2.0 * (double)n * n * n / (ms * 1e-3) / 1e12);
    sdl_get_backend(SDL_CUDA)->dealloc(a);
    sdl_get_backend(SDL_CUDA)->dealloc(b);
    sdl_get_backend(SDL_CUDA)->dealloc(c);
}

/* the kernels alone, on buffers outside the arena */
static void bench_elementwise(void) {
    int64_t n = (int64_t)1 << 26;
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    float *x = (float *)be->alloc((size_t)n * sizeof(float)), *y = (float *)be->alloc((size_t)n * sizeof(float));
    float *out = (float *)be->alloc(sizeof(float));
    if (!x || !y || !out) { printf("bench relu: %s\n", sdl_last_error()); return; }
    be->memset0(x, (size_t)n * sizeof(float));
    int reps = 20;
    for (int i = 0; i <= reps; i++) {
        if (i == 1) sdl_cuda_timer_start();
        sdl__k_relu_fwd<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, y, n);
    }
    float ms = sdl_cuda_timer_stop() / (float)reps;
    printf("| %-26s | %-16s | %9.3f | %9.1f GB/s    |\n", "relu forward kernel", "2^26 floats", ms, 8.0 * (double)n / (ms * 1e-3) / 1e9);
    for (int i = 0; i <= reps; i++) {
        if (i == 1) sdl_cuda_timer_start();
        sdl__cu_reduce(x, NULL, n, 0, 1.0, out);
    }
    ms = sdl_cuda_timer_stop() / (float)reps;
    printf("| %-26s | %-16s | %9.3f | %9.1f GB/s    |\n", "sum kernels (2 stages)", "2^26 floats", ms, 4.0 * (double)n / (ms * 1e-3) / 1e9);
    be->dealloc(x);
    be->dealloc(y);
    be->dealloc(out);
    sdl_arena_reset();
}

/* 784-1024-1024-10 MLP, batch 256, SGD momentum: images/s for a whole step (upload,
   forward, backward, update, loss read back) */
static void bench_mlp(int device, bool tf32) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 784, 1024, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 1024, 1024, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "4", 1024, 10, true));
    if (device == SDL_CUDA) sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.01f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(256, 784), SDL_F32), *y = test_ids(256, 10);
    sdl_tensor_uniform(x, 0.0f, 1.0f);
    sdl_cuda_set_tf32(tf32);
    int warm = 3, reps = device == SDL_CUDA ? 50 : 5;
    double t0 = 0.0;
    for (int i = 0; i < warm + reps; i++) {
        if (i == warm) t0 = now_s();
        sdl_tensor *xs = device == SDL_CUDA ? sdl_cuda_to_device(x) : x, *ys = device == SDL_CUDA ? sdl_cuda_to_device(y) : y;
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, xs), ys, 0.0f);
        sdl_backward(loss);
        sdl_optim_step(o);
        sdl_model_zero_grad(m);
        (void)sdl_item(loss);
        sdl_arena_reset();
    }
    double dt = (now_s() - t0) / reps;
    sdl_cuda_set_tf32(false);
    char name[64];
    snprintf(name, sizeof name, "mlp step %s", device == SDL_CUDA ? (tf32 ? "gpu tf32" : "gpu f32") : "cpu");
    printf("| %-26s | %-16s | %9.3f | %9.0f img/s     |\n", name, "784-1024-1024-10", dt * 1e3, 256.0 / dt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
}

int main(int argc, char **argv) {
    bool bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
    (void)gradcheck; /* sdl_test.h's finite differences check the CPU ops; here the CPU is the reference */
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n", sdl_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    RUN(test_linear);
    RUN(test_linear_tf32);
    RUN(test_relu_view);
    RUN(test_add_mul);
    RUN(test_sum_mean);
    RUN(test_losses);
    RUN(test_conv2d);
    RUN(test_conv_transpose2d);
    RUN(test_pooling);
    RUN(test_batch_norm);
    RUN(test_layer_norm);
    RUN(test_dropout);
    RUN(test_embedding);
    RUN(test_activations);
    RUN(test_softmax);
    RUN(test_shape_ops);
    RUN(test_attention);
    RUN(test_more_losses);
    RUN(test_mlp_steps);
    RUN(test_optimizers);
    RUN(test_cnn_steps);
    RUN(test_steady_state);
    RUN(test_steady_state_cnn);
    RUN(test_arena);
    RUN(test_deterministic);
    RUN(test_deterministic_cnn);
    RUN(test_pinned_timer);
    RUN(test_errors);
    if (bench && sdl_test_failed == 0) {
        printf("| %-26s | %-16s | %9s | %-18s |\n", "bench", "size", "ms", "rate");
        bench_gemm(false);
        bench_gemm(true);
        bench_elementwise();
        bench_mlp(SDL_CPU, false);
        bench_mlp(SDL_CUDA, false);
        bench_mlp(SDL_CUDA, true);
    }
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
