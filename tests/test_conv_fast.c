/* test_conv_fast.c - conv2d's fast paths (Winograd F(2x2, 3x3) for stride-1 3x3 convs) against
   double loops (gradcheck) and against the im2col path, bitwise across thread counts, and
   without heap allocation in steady state. *sdl_test_conv_algo() = 2 forces Winograd wherever it
   applies (any channel count), 1 forces im2col; *sdl_test_wino_tiles() sets the group size. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

typedef struct { int N, C, H, W, O, stride, pad; bool bias; } conv_ctx;

static int64_t conv_out(int in, int s, int p) { return (in + 2 * p - 3) / s + 1; }

static sdl_tensor *f_conv(sdl_tensor **in, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    return sdl_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad);
}
/* y[n, o, oh, ow] = b[o] + sum_{c, i, j} x[n, c, oh*s - p + i, ow*s - p + j] w[o, c, i, j] (3x3) */
static void r_conv(double **in, double *out, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    int64_t OH = conv_out(c->H, c->stride, c->pad), OW = conv_out(c->W, c->stride, c->pad);
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = c->bias ? in[2][o] : 0.0;
                    for (int ci = 0; ci < c->C; ci++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int64_t ih = oh * c->stride - c->pad + i, iw = ow * c->stride - c->pad + j;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                s += in[0][((n * c->C + ci) * c->H + ih) * c->W + iw] * in[1][((o * c->C + ci) * 3 + i) * 3 + j];
                            }
                    out[((n * c->O + o) * OH + oh) * OW + ow] = s;
                }
}

/* odd sizes (odd outputs leave half-empty edge tiles), pad 0/1/2, batch 1, batches that are
   no multiple of the group, and stride 2 (not Winograd: the im2col path under the same switch) */
static void test_gradcheck_winograd(void) {
    conv_ctx cases[] = {
        {2, 3, 7, 6, 4, 1, 0, true},  /* 5x4 output */
        {3, 2, 6, 9, 5, 1, 1, true},  /* 6x9 output, pad 1 */
        {1, 4, 5, 5, 3, 1, 1, false}, /* batch 1, no bias */
        {5, 3, 4, 6, 2, 1, 2, true},  /* pad 2: output bigger than the input */
        {1, 2, 3, 3, 2, 1, 0, true},  /* a single output pixel */
        {3, 2, 9, 7, 5, 2, 1, true},  /* stride 2 */
    };
    int64_t tiles[] = {576, 7}; /* one group for the batch; groups of 1-2 samples with a ragged last one */
    *sdl_test_conv_algo() = 2;
    for (int t = 0; t < 2; t++) {
        *sdl_test_wino_tiles() = tiles[t];
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            conv_ctx *c = &cases[k];
            gc_case g = {"conv2d winograd", c->bias ? 3 : 2,
                         {sdl_shape4(c->N, c->C, c->H, c->W), sdl_shape4(c->O, c->C, 3, 3), sdl_shape1(c->O)},
                         {0}, 0, 0, f_conv, r_conv, c, 0};
            CHECK(gradcheck(&g), "case %d (N %d, %dx%d, stride %d pad %d), group of %lld tiles", (int)k, c->N, c->H, c->W,
                  c->stride, c->pad, (long long)tiles[t]);
        }
    }
    /* the im2col path on the same cases, and C_in = 1 (conv1 of a CNN: dW is computed transposed) */
    *sdl_test_conv_algo() = 1;
    conv_ctx more[] = {{3, 1, 8, 7, 12, 1, 0, true}, {2, 1, 9, 8, 11, 2, 1, false}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0] + 2; k++) {
        conv_ctx *c = k < sizeof cases / sizeof cases[0] ? &cases[k] : &more[k - sizeof cases / sizeof cases[0]];
        gc_case g = {"conv2d im2col", c->bias ? 3 : 2,
                     {sdl_shape4(c->N, c->C, c->H, c->W), sdl_shape4(c->O, c->C, 3, 3), sdl_shape1(c->O)},
                     {0}, 0, 0, f_conv, r_conv, c, 0};
        CHECK(gradcheck(&g), "im2col case %d (N %d, C %d, %dx%d, stride %d pad %d)", (int)k, c->N, c->C, c->H, c->W, c->stride, c->pad);
    }
    *sdl_test_conv_algo() = 0;
    *sdl_test_wino_tiles() = 288;
}

/* one conv's output and x, w, b gradients under the given algorithm and thread count */
static void conv_run(int algo, int threads, const conv_ctx *c, const float *xv, const float *wv, const float *bv,
                     const float *dyv, float *out) {
    *sdl_test_conv_algo() = algo;
    sdl_set_num_threads(threads);
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(c->N, c->C, c->H, c->W), SDL_F32);
    sdl_tensor *w = sdl_tensor_new(sdl_shape4(c->O, c->C, 3, 3), SDL_F32);
    sdl_tensor *b = sdl_tensor_new(sdl_shape1(c->O), SDL_F32);
    memcpy(x->data, xv, sizeof(float) * (size_t)x->numel);
    memcpy(w->data, wv, sizeof(float) * (size_t)w->numel);
    memcpy(b->data, bv, sizeof(float) * (size_t)b->numel);
    sdl_tensor_requires_grad(x);
    sdl_tensor_requires_grad(w);
    sdl_tensor_requires_grad(b);
    sdl_tensor *y = sdl_conv2d(x, w, b, 1, c->pad);
    CHECK(y != NULL, "conv2d: %s", sdl_last_error());
    if (y) {
        sdl_tensor *dy = sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32);
        memcpy(dy->data, dyv, sizeof(float) * (size_t)y->numel);
        CHECK(sdl_backward(sdl_sum(sdl_mul(y, dy))) == SDL_OK, "backward: %s", sdl_last_error());
        float *o = out;
        memcpy(o, y->data, sizeof(float) * (size_t)y->numel), o += y->numel;
        memcpy(o, x->grad, sizeof(float) * (size_t)x->numel), o += x->numel;
        memcpy(o, w->grad, sizeof(float) * (size_t)w->numel), o += w->numel;
        memcpy(o, b->grad, sizeof(float) * (size_t)b->numel);
    }
    sdl_arena_reset();
    sdl_tensor_free(x);
    sdl_tensor_free(w);
    sdl_tensor_free(b);
    *sdl_test_conv_algo() = 0;
    sdl_set_num_threads(0);
}

/* Winograd against im2col on CNN-like layers (the default choice for C_in, C_out >= 16), and
   bitwise the same results for 1, 2 and 3 threads (batch 9: several groups split over
   threads; batch 1: one group, the GEMMs take the threads) */
static void test_winograd_vs_im2col_and_threads(void) {
    conv_ctx cases[] = {{9, 16, 13, 11, 12, 1, 0, true}, {1, 8, 10, 9, 20, 1, 1, true}, {7, 32, 26, 26, 64, 1, 0, true},
                        {21, 1, 12, 10, 16, 1, 1, true}}; /* the last: C_in = 1 stays on im2col (threads only) */
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        conv_ctx *c = &cases[k];
        int64_t OH = conv_out(c->H, 1, c->pad), OW = conv_out(c->W, 1, c->pad);
        int64_t nx = (int64_t)c->N * c->C * c->H * c->W, nw = (int64_t)c->O * c->C * 9, ny = (int64_t)c->N * c->O * OH * OW;
        int64_t nall = ny + nx + nw + c->O;
        float *xv = (float *)malloc(sizeof(float) * (size_t)nx), *wv = (float *)malloc(sizeof(float) * (size_t)nw);
        float *bv = (float *)malloc(sizeof(float) * (size_t)c->O), *dyv = (float *)malloc(sizeof(float) * (size_t)ny);
        float *r[4];
        for (int i = 0; i < 4; i++) r[i] = (float *)calloc((size_t)nall, sizeof(float));
        for (int64_t i = 0; i < nx; i++) xv[i] = sdl_rand_uniform() * 2.0f - 1.0f;
        for (int64_t i = 0; i < nw; i++) wv[i] = (sdl_rand_uniform() * 2.0f - 1.0f) / sqrtf((float)(c->C * 9));
        for (int64_t i = 0; i < c->O; i++) bv[i] = sdl_rand_uniform() - 0.5f;
        for (int64_t i = 0; i < ny; i++) dyv[i] = sdl_rand_uniform() * 2.0f - 1.0f;
        *sdl_test_wino_tiles() = k == 0 ? 60 : 288; /* case 0: groups of 2 samples, the last one alone */
        conv_run(1, 1, c, xv, wv, bv, dyv, r[0]);
        for (int t = 1; t <= 3; t++) conv_run(k >= 2 ? 0 : 2, t, c, xv, wv, bv, dyv, r[t]);
        *sdl_test_wino_tiles() = 288;
        /* each part (y, dx, dw, db) within 2e-5 of its largest magnitude */
        int64_t off[5] = {0, ny, ny + nx, ny + nx + nw, nall};
        const char *what[4] = {"y", "dx", "dw", "db"};
        for (int p = 0; p < 4; p++) {
            double mx = 0, err = 0;
            for (int64_t i = off[p]; i < off[p + 1]; i++) {
                mx = fabs(r[0][i]) > mx ? fabs(r[0][i]) : mx;
                double e = fabs((double)r[1][i] - r[0][i]);
                if (!(e <= err)) err = e;
            }
            CHECK(mx > 0 && err <= 2e-5 * mx, "case %d %s: winograd vs im2col max error %g (max |%s| %g)", (int)k, what[p], err, what[p], mx);
        }
        CHECK(memcmp(r[1], r[2], sizeof(float) * (size_t)nall) == 0 && memcmp(r[1], r[3], sizeof(float) * (size_t)nall) == 0,
              "case %d: results differ across 1, 2, 3 threads", (int)k);
        free(xv); free(wv); free(bv); free(dyv);
        for (int i = 0; i < 4; i++) free(r[i]);
    }
}

/* a small CNN on the Winograd path learns, and a steady-state step allocates nothing */
static void test_winograd_cnn_trains_without_allocating(void) {
    *sdl_test_conv_algo() = 2;
    *sdl_test_wino_tiles() = 40;
    check_small_cnn_trains();
    *sdl_test_conv_algo() = 0;
    *sdl_test_wino_tiles() = 288;
}

/* Gradients that hold nothing yet are written, not added to (node->grad_fresh): conv's dx
   (Winograd and im2col, plain and transposed) and the pools' dx. The same chain with the
   overwrite turned off (every kernel adds into zeros) gives the same bits; the test
   library's arena poisons fresh memory with NaN, so an element the fresh path leaves
   unwritten shows. */
static void chain_grads(float *out, int64_t nx, int64_t nw, sdl_tensor *x, sdl_tensor *w1, sdl_tensor *w2, sdl_tensor *w3) {
    sdl_tensor *h = sdl_relu(x);                                  /* intermediates from here on */
    sdl_tensor *a = sdl_conv2d(h, w1, NULL, 1, 1);                /* 16 -> 16 channels: Winograd */
    sdl_tensor *p = sdl_max_pool2d(sdl_relu(a), 2, 2, 0);
    sdl_tensor *q = sdl_conv2d(p, w2, NULL, 2, 1);                /* stride 2: im2col */
    sdl_tensor *t = sdl_conv_transpose2d(sdl_avg_pool2d(q, 2, 1, 0), w3, NULL, 2, 0, 0);
    sdl_tensor *loss = sdl_sum(sdl_mul(t, t));
    memset(x->grad, 0, sizeof(float) * (size_t)nx);
    memset(w1->grad, 0, sizeof(float) * (size_t)nw);
    CHECK(loss && sdl_backward(loss) == SDL_OK, "chain backward: %s", sdl_last_error());
    memcpy(out, x->grad, sizeof(float) * (size_t)nx);
    memcpy(out + nx, w1->grad, sizeof(float) * (size_t)nw);
    sdl_arena_reset();
}
static void test_fresh_grads_written_whole(void) {
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(3, 16, 10, 10), SDL_F32), *w1 = sdl_tensor_new(sdl_shape4(16, 16, 3, 3), SDL_F32);
    sdl_tensor *w2 = sdl_tensor_new(sdl_shape4(8, 16, 3, 3), SDL_F32), *w3 = sdl_tensor_new(sdl_shape4(8, 4, 2, 2), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor_uniform(w1, -0.3f, 0.3f);
    sdl_tensor_uniform(w2, -0.3f, 0.3f);
    sdl_tensor_uniform(w3, -0.3f, 0.3f);
    sdl_tensor_requires_grad(x);
    sdl_tensor_requires_grad(w1);
    sdl_tensor_requires_grad(w2);
    sdl_tensor_requires_grad(w3);
    int64_t nx = x->numel, nw = w1->numel;
    float *fresh = (float *)malloc(sizeof(float) * (size_t)(nx + nw)), *added = (float *)malloc(sizeof(float) * (size_t)(nx + nw));
    const sdl_op ops[] = {SDL_OP_CONV2D, SDL_OP_CONV_TRANSPOSE2D, SDL_OP_MAX_POOL2D, SDL_OP_AVG_POOL2D};
    unsigned char *ow = sdl_test_grad_overwrite();
    for (int i = 0; i < 4; i++) CHECK(ow[ops[i]] == 1, "the CPU backend overwrites fresh gradients of op %d", (int)ops[i]);
    chain_grads(fresh, nx, nw, x, w1, w2, w3);
    for (int i = 0; i < 4; i++) ow[ops[i]] = 0;
    chain_grads(added, nx, nw, x, w1, w2, w3);
    for (int i = 0; i < 4; i++) ow[ops[i]] = 1;
    bool finite = true;
    for (int64_t i = 0; i < nx + nw; i++) finite = finite && isfinite(fresh[i]);
    CHECK(finite && memcmp(fresh, added, sizeof(float) * (size_t)(nx + nw)) == 0,
          "gradients with fresh buffers written (finite: %d) equal those added into zeros", (int)finite);
    free(fresh); free(added);
    sdl_tensor_free(x); sdl_tensor_free(w1); sdl_tensor_free(w2); sdl_tensor_free(w3);
}

int main(void) {
    (void)test_ids;
    RUN(test_gradcheck_winograd);
    RUN(test_winograd_vs_im2col_and_threads);
    RUN(test_winograd_cnn_trains_without_allocating);
    RUN(test_fresh_grads_written_whole);
    return sdl_test_finish();
}
