/* test_conv.c - conv2d, conv_transpose2d, max/avg/global pooling, their layers, and the
   packed sgemm (against double loops, and bitwise across thread counts) */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* ---- conv2d: x (N, C, H, W), w (O, C, KH, KW), b (O) ---- */
typedef struct { int N, C, H, W, O, KH, KW, stride, pad, out_pad; bool bias; } conv_ctx;

static int64_t conv_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }
static int64_t convt_out(int in, int k, int s, int p, int op) { return (int64_t)(in - 1) * s - 2 * p + k + op; }

static sdl_tensor *f_conv(sdl_tensor **in, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    return sdl_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad);
}
static void r_conv(double **in, double *out, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    int64_t OH = conv_out(c->H, c->KH, c->stride, c->pad), OW = conv_out(c->W, c->KW, c->stride, c->pad);
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = c->bias ? in[2][o] : 0.0;
                    for (int ci = 0; ci < c->C; ci++)
                        for (int i = 0; i < c->KH; i++)
                            for (int j = 0; j < c->KW; j++) {
                                int64_t ih = oh * c->stride - c->pad + i, iw = ow * c->stride - c->pad + j;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                s += in[0][((n * c->C + ci) * c->H + ih) * c->W + iw] * in[1][((o * c->C + ci) * c->KH + i) * c->KW + j];
                            }
                    out[((n * c->O + o) * OH + oh) * OW + ow] = s;
                }
}

static void test_gradcheck_conv2d(void) {
    conv_ctx cases[] = {
        {2, 3, 7, 6, 4, 3, 2, 1, 0, 0, true},  /* non-square image and kernel */
        {2, 3, 7, 6, 4, 3, 3, 1, 1, 0, true},
        {3, 2, 9, 7, 5, 3, 3, 2, 1, 0, true},  /* stride 2, pad 1 */
        {1, 3, 8, 5, 2, 2, 3, 2, 0, 0, false}, /* stride 2, no bias */
        {3, 5, 4, 5, 2, 1, 1, 1, 0, 0, true},  /* 1x1: the direct path */
        {2, 3, 5, 5, 3, 1, 1, 2, 0, 0, false}, /* 1x1 strided */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        conv_ctx *c = &cases[k];
        gc_case g = {"conv2d", c->bias ? 3 : 2,
                     {sdl_shape4(c->N, c->C, c->H, c->W), sdl_shape4(c->O, c->C, c->KH, c->KW), sdl_shape1(c->O)},
                     {0}, 0, 0, f_conv, r_conv, c, 0};
        CHECK(gradcheck(&g), "conv2d case %d (stride %d pad %d kernel %dx%d)", (int)k, c->stride, c->pad, c->KH, c->KW);
    }
}

/* ---- conv_transpose2d: x (N, C, H, W), w (C, O, KH, KW), b (O): each input pixel scatters
   w[c, o] into the output window at (h*s - p, w*s - p) ---- */
static sdl_tensor *f_convt(sdl_tensor **in, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    return sdl_conv_transpose2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad, c->out_pad);
}
static void r_convt(double **in, double *out, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    int64_t OH = convt_out(c->H, c->KH, c->stride, c->pad, c->out_pad), OW = convt_out(c->W, c->KW, c->stride, c->pad, c->out_pad);
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int64_t q = 0; q < OH * OW; q++) out[(n * c->O + o) * OH * OW + q] = c->bias ? in[2][o] : 0.0;
    for (int n = 0; n < c->N; n++)
        for (int ci = 0; ci < c->C; ci++)
            for (int h = 0; h < c->H; h++)
                for (int w = 0; w < c->W; w++)
                    for (int o = 0; o < c->O; o++)
                        for (int i = 0; i < c->KH; i++)
                            for (int j = 0; j < c->KW; j++) {
                                int64_t oh = (int64_t)h * c->stride - c->pad + i, ow = (int64_t)w * c->stride - c->pad + j;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                                out[((n * c->O + o) * OH + oh) * OW + ow] += in[0][((n * c->C + ci) * c->H + h) * c->W + w] *
                                                                            in[1][((ci * c->O + o) * c->KH + i) * c->KW + j];
                            }
}
static void test_gradcheck_conv_transpose2d(void) {
    conv_ctx cases[] = {
        {2, 3, 4, 5, 4, 3, 2, 1, 0, 0, true},
        {2, 3, 4, 5, 2, 3, 3, 1, 1, 0, true},
        {2, 3, 3, 4, 2, 3, 3, 2, 1, 1, true},  /* stride 2, output padding 1 */
        {1, 2, 5, 3, 3, 4, 4, 2, 1, 0, false}, /* DCGAN-style 4x4 stride 2 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        conv_ctx *c = &cases[k];
        gc_case g = {"conv_transpose2d", c->bias ? 3 : 2,
                     {sdl_shape4(c->N, c->C, c->H, c->W), sdl_shape4(c->C, c->O, c->KH, c->KW), sdl_shape1(c->O)},
                     {0}, 0, 0, f_convt, r_convt, c, 0};
        CHECK(gradcheck(&g), "conv_transpose2d case %d", (int)k);
    }
    /* shape: 4x4 stride 2 pad 1 doubles the size; out_pad adds one */
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(1, 2, 5, 6), SDL_F32), *w = sdl_tensor_new(sdl_shape4(2, 3, 4, 4), SDL_F32);
    sdl_tensor *y = sdl_conv_transpose2d(x, w, NULL, 2, 1, 0);
    CHECK(y && y->shape[1] == 3 && y->shape[2] == 10 && y->shape[3] == 12, "conv_transpose2d 4x4/2 shape");
    sdl_tensor *w3 = sdl_tensor_new(sdl_shape4(2, 3, 3, 3), SDL_F32);
    y = sdl_conv_transpose2d(x, w3, NULL, 2, 1, 1);
    CHECK(y && y->shape[2] == 10 && y->shape[3] == 12, "conv_transpose2d 3x3/2 out_pad 1 shape");
    CHECK(sdl_conv_transpose2d(x, w3, NULL, 2, 1, 2) == NULL && strstr(sdl_last_error(), "conv_transpose2d"), "out_pad >= stride is refused");
    sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(w3);
}

/* ---- pooling ---- */
typedef struct { int N, C, H, W, k, s, p; bool is_max; } pool_ctx;
static sdl_tensor *f_pool(sdl_tensor **in, void *ctx) {
    pool_ctx *c = (pool_ctx *)ctx;
    return c->is_max ? sdl_max_pool2d(in[0], c->k, c->s, c->p) : sdl_avg_pool2d(in[0], c->k, c->s, c->p);
}
static void r_pool(double **in, double *out, void *ctx) {
    pool_ctx *c = (pool_ctx *)ctx;
    int64_t OH = conv_out(c->H, c->k, c->s, c->p), OW = conv_out(c->W, c->k, c->s, c->p);
    for (int pl = 0; pl < c->N * c->C; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double m = -1e300, s = 0.0;
                for (int i = 0; i < c->k; i++)
                    for (int j = 0; j < c->k; j++) {
                        int64_t h = oh * c->s - c->p + i, w = ow * c->s - c->p + j;
                        if (h < 0 || h >= c->H || w < 0 || w >= c->W) continue; /* padding: 0 for avg, never the max */
                        double v = in[0][(pl * c->H + h) * c->W + w];
                        m = v > m ? v : m;
                        s += v;
                    }
                out[(pl * OH + oh) * OW + ow] = c->is_max ? m : s / (c->k * c->k);
            }
}
static void test_gradcheck_pool(void) {
    pool_ctx cases[] = {
        {2, 3, 7, 6, 2, 2, 0, true}, {1, 2, 5, 41, 2, 2, 0, true} /* 20 windows a row: SIMD path + tail */, {2, 3, 7, 6, 3, 2, 1, true}, {1, 2, 5, 7, 2, 1, 1, true}, {2, 2, 6, 5, 3, 1, 0, true},
        {2, 3, 7, 6, 2, 2, 0, false}, {2, 3, 7, 6, 3, 2, 1, false}, {1, 2, 5, 7, 2, 1, 1, false}, {2, 2, 6, 5, 3, 1, 0, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pool_ctx *c = &cases[k];
        gc_case g = {c->is_max ? "max_pool2d" : "avg_pool2d", 1, {sdl_shape4(c->N, c->C, c->H, c->W)}, {0}, 0, 0, f_pool, r_pool, c, 0};
        CHECK(gradcheck(&g), "%s case %d (k %d s %d p %d)", g.name, (int)k, c->k, c->s, c->p);
    }
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(1, 1, 4, 4), SDL_F32);
    for (int k = 0; k < 3; k++) { /* NaN propagates like PyTorch, whichever path runs */
        int W = k == 0 ? 4 : 36;
        sdl_tensor *z = sdl_tensor_new(sdl_shape4(1, 2, 4, W), SDL_F32);
        sdl_tensor_uniform(z, -1, 1);
        int at = k == 2 ? 2 * W + 33 : W + 1; /* window row 1; column 0 or 16 */
        sdl_f32(z)[at] = NAN;
        sdl_tensor *y = sdl_max_pool2d(z, 2, 2, 0);
        int64_t o = (at / W / 2) * (W / 2) + (at % W) / 2;
        CHECK(y && isnan(sdl_f32(y)[o]), "max pool of a window with NaN is NaN (width %d)", W);
        for (int64_t i = 0; y && i < y->numel; i++)
            if (i != o) CHECK(!isnan(sdl_f32(y)[i]), "NaN leaked to window %lld", (long long)i);
        sdl_tensor_free(z);
    }
    CHECK(sdl_max_pool2d(x, 2, 2, 2) == NULL && strstr(sdl_last_error(), "max_pool2d"), "pad > kernel/2 is refused");
    CHECK(sdl_avg_pool2d(NULL, 2, 2, 0) == NULL, "NULL in, NULL out");
    sdl_tensor_free(x);
}

static sdl_tensor *f_gap(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_global_avg_pool(in[0]); }
static void r_gap(double **in, double *out, void *ctx) {
    (void)ctx;
    for (int p = 0; p < 3 * 5; p++) {
        for (int i = 0; i < 7 * 3; i++) out[p] += in[0][p * 21 + i];
        out[p] /= 21.0;
    }
}
static void test_gradcheck_global_avg_pool(void) {
    gc_case g = {"global_avg_pool", 1, {sdl_shape4(3, 5, 7, 3)}, {0}, 0, 0, f_gap, r_gap, NULL, 0};
    CHECK(gradcheck(&g), "global_avg_pool");
}

/* ---- sgemm ---- */
static float *rnd(int64_t n) {
    float *p = (float *)malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) p[i] = sdl_rand_uniform() - 0.5f;
    return p;
}

/* C (M, N) with leading dims larger than needed, every trans combination, alpha, beta */
static void check_sgemm(int M, int N, int K, float alpha, float beta) {
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = (t & 2) != 0;
        int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
        float *A = rnd((ta ? K : M) * lda), *B = rnd((tb ? N : K) * ldb), *C = rnd(M * ldc), *C0 = (float *)malloc(sizeof(float) * (size_t)(M * ldc + 1));
        float *R = (float *)malloc(sizeof(float) * (size_t)(M * ldc + 1));
        memcpy(C0, C, sizeof(float) * (size_t)(M * ldc));
        memcpy(R, C, sizeof(float) * (size_t)(M * ldc));
        sdl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        sdl_test_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
        double err = 0, rerr = 0;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++) s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                double want = alpha * s + (beta == 0.0f ? 0.0 : beta * C0[i * ldc + j]);
                double e = fabs(C[i * ldc + j] - want), re = fabs(R[i * ldc + j] - want);
                err = e > err ? e : err;
                rerr = re > rerr ? re : rerr;
            }
            for (int j = N; j < ldc; j++) CHECK(C[i * ldc + j] == C0[i * ldc + j], "sgemm wrote past N at (%d, %d)", i, j);
        }
        double tol = 2e-6 * (K + 8);
        CHECK(err < tol, "sgemm %dx%dx%d ta=%d tb=%d alpha %g beta %g: err %g", M, N, K, ta, tb, alpha, beta, err);
        CHECK(rerr < tol, "reference loop %dx%dx%d ta=%d tb=%d: err %g", M, N, K, ta, tb, rerr);
        free(A); free(B); free(C); free(C0); free(R);
    }
}
static void test_sgemm_odd_sizes(void) {
    check_sgemm(1, 1, 1, 1.0f, 0.0f);
    check_sgemm(7, 5, 3, 0.5f, 2.0f);
    check_sgemm(37, 29, 53, 1.0f, 1.0f);
    check_sgemm(13, 67, 1, -1.5f, 0.25f);
    check_sgemm(251, 45, 300, 1.0f, 0.0f);  /* more than MC rows, more than KC deep */
    check_sgemm(11, 4133, 17, 0.75f, 1.0f); /* more than NC columns */
    check_sgemm(5, 3, 0, 1.0f, 0.5f);       /* K = 0: C = beta C */
}

/* the same products, bit for bit, with 1, 2 and 3 threads */
static void test_sgemm_bitwise_across_threads(void) {
    int sizes[][3] = {{203, 311, 97}, {64, 784, 256}, {301, 37, 530}, {19, 1025, 300}, {150, 400, 300}, {400, 90, 300}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        for (int t = 0; t < 4; t++) {
            bool ta = t & 1, tb = (t & 2) != 0;
            float *A = rnd((int64_t)M * K), *B = rnd((int64_t)K * N), *C[3];
            for (int th = 1; th <= 3; th++) {
                sdl_set_num_threads(th);
                C[th - 1] = rnd((int64_t)M * N);
                sdl_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C[th - 1], N);
            }
            CHECK(memcmp(C[0], C[1], sizeof(float) * (size_t)M * N) == 0 && memcmp(C[0], C[2], sizeof(float) * (size_t)M * N) == 0,
                  "sgemm %dx%dx%d ta=%d tb=%d differs across thread counts", M, N, K, ta, tb);
            free(A); free(B); free(C[0]); free(C[1]); free(C[2]);
        }
    }
    sdl_set_num_threads(0);
}

/* ---- a conv net's forward and gradients, bit for bit, with 1, 2 and 3 threads ---- */
static void conv_net_run(int threads, int batch, float *out, int64_t nout, float *grads, int64_t ngrad) {
    sdl_set_num_threads(threads);
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "c1", 3, 8, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 0));
    sdl_seq_add(net, sdl_conv2d_layer(m, "c2", 8, 6, 3, 2, 0, true));
    sdl_seq_add(net, sdl_conv_transpose2d_layer(m, "t1", 6, 4, 3, 2, 1, 1, true));
    sdl_seq_add(net, sdl_avg_pool2d_layer(m, 2, 1));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch, 3, 13, 11), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor_requires_grad(x);
    sdl_tensor *y = sdl_forward(net, x);
    CHECK(y && y->numel == nout, "conv net output %lld values", y ? (long long)y->numel : -1LL);
    if (y) {
        memcpy(out, y->data, sizeof(float) * (size_t)nout);
        sdl_tensor *w = sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32);
        for (int64_t i = 0; i < w->numel; i++) sdl_f32(w)[i] = (float)(i % 7) - 3.0f;
        CHECK(sdl_backward(sdl_sum(sdl_mul(y, w))) == SDL_OK, "backward: %s", sdl_last_error());
        memcpy(grads, m->grad_data, sizeof(float) * (size_t)m->param_floats);
        memcpy(grads + m->param_floats, x->grad, sizeof(float) * (size_t)x->numel);
        CHECK(m->param_floats + x->numel == ngrad, "grad count");
    }
    sdl_arena_reset();
    sdl_tensor_free(x);
    sdl_model_free(m);
}
/* batch 21: samples split over threads; batch 1: one sample, the GEMMs take the threads */
static void test_conv_bitwise_across_threads(void) {
    for (int batch = 21; batch >= 1; batch -= 20) {
        int64_t nout = batch * 4, ngrad = (8 * 27 + 8) + (6 * 72 + 6) + (6 * 4 * 9 + 4) + batch * 3 * 13 * 11;
        float *o[3], *g[3];
        for (int t = 0; t < 3; t++) {
            o[t] = (float *)calloc((size_t)nout, sizeof(float));
            g[t] = (float *)calloc((size_t)ngrad, sizeof(float));
            conv_net_run(t + 1, batch, o[t], nout, g[t], ngrad);
        }
        sdl_set_num_threads(0);
        CHECK(memcmp(o[0], o[1], sizeof(float) * (size_t)nout) == 0 && memcmp(o[0], o[2], sizeof(float) * (size_t)nout) == 0, "batch %d: outputs differ", batch);
        CHECK(memcmp(g[0], g[1], sizeof(float) * (size_t)ngrad) == 0 && memcmp(g[0], g[2], sizeof(float) * (size_t)ngrad) == 0, "batch %d: gradients differ", batch);
        double gs = 0;
        for (int64_t i = 0; i < ngrad; i++) gs += fabs(g[0][i]);
        CHECK(gs > 0, "gradients are not all zero");
        for (int t = 0; t < 3; t++) { free(o[t]); free(g[t]); }
    }
}

/* ---- layers: names, shapes, PyTorch's init bounds ---- */
static void test_conv_layers(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *c = sdl_conv2d_layer(m, "conv1", 3, 16, 5, 1, 2, true);
    sdl_module *t = sdl_conv_transpose2d_layer(m, "up", 16, 8, 4, 2, 1, 0, true);
    sdl_module *nb = sdl_conv2d_layer(m, "c3", 8, 4, 3, 1, 1, false);
    CHECK(c && t && nb, "layers made: %s", sdl_last_error());
    CHECK(sdl_model_find(m, "conv1.weight") == c->weight && sdl_model_find(m, "conv1.bias") == c->bias, "conv names");
    CHECK(c->weight->shape[0] == 16 && c->weight->shape[1] == 3 && c->weight->shape[2] == 5 && c->bias->numel == 16, "conv weight (C_out, C_in, k, k)");
    CHECK(t->weight->shape[0] == 16 && t->weight->shape[1] == 8 && t->bias->numel == 8, "conv_transpose weight (C_in, C_out, k, k)");
    CHECK(nb->bias == NULL && sdl_model_find(m, "c3.bias") == NULL, "no bias when asked");
    struct { sdl_tensor *p; double fan; } chk[] = {{c->weight, 3 * 25}, {c->bias, 3 * 25}, {t->weight, 8 * 16}, {t->bias, 8 * 16}};
    for (int i = 0; i < 4; i++) {
        double bound = 1.0 / sqrt(chk[i].fan), mx = 0;
        for (int64_t j = 0; j < chk[i].p->numel; j++) mx = fabs(sdl_f32(chk[i].p)[j]) > mx ? fabs(sdl_f32(chk[i].p)[j]) : mx;
        CHECK(mx <= bound && mx > 0.8 * bound, "%s: max |w| %g, bound 1/sqrt(fan_in) = %g", chk[i].p->name, mx, bound);
    }
    sdl_module *mp = sdl_max_pool2d_layer(m, 2, 0), *ap = sdl_avg_pool2d_layer(m, 3, 2), *gp = sdl_global_avg_pool_layer(m);
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(2, 3, 9, 8), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = sdl_forward(c, x);
    CHECK(y && y->shape[1] == 16 && y->shape[2] == 9 && y->shape[3] == 8, "conv 5x5 pad 2 keeps the size");
    sdl_tensor *u = sdl_forward(t, y);
    CHECK(u && u->shape[1] == 8 && u->shape[2] == 18 && u->shape[3] == 16, "conv_transpose 4x4/2 doubles it");
    sdl_tensor *p = sdl_forward(mp, y);
    CHECK(p && p->shape[2] == 4 && p->shape[3] == 4, "max pool 2 (stride defaults to kernel)");
    sdl_tensor *q = sdl_forward(ap, y);
    CHECK(q && q->shape[2] == 4 && q->shape[3] == 3, "avg pool 3/2");
    sdl_tensor *g = sdl_forward(gp, y);
    CHECK(g && g->ndim == 2 && g->shape[0] == 2 && g->shape[1] == 16, "global avg pool (N, C)");
    CHECK(sdl_forward(c, sdl_forward(c, x)) == NULL && strstr(sdl_last_error(), "conv2d"), "channel mismatch names the op: %s", sdl_last_error());
    sdl_tensor_free(x);
    sdl_model_free(m);
}

/* ---- a small CNN learns, and a steady-state step allocates nothing ---- */
static void test_cnn_trains_without_allocating(void) { check_small_cnn_trains(); }

int main(void) {
    (void)test_ids;
    RUN(test_gradcheck_conv2d);
    RUN(test_gradcheck_conv_transpose2d);
    RUN(test_gradcheck_pool);
    RUN(test_gradcheck_global_avg_pool);
    RUN(test_sgemm_odd_sizes);
    RUN(test_sgemm_bitwise_across_threads);
    RUN(test_conv_bitwise_across_threads);
    RUN(test_conv_layers);
    RUN(test_cnn_trains_without_allocating);
    return sdl_test_finish();
}
