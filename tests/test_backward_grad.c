/* test_backward_grad.c - sdl_backward_grad: backward seeded with a non-scalar gradient runs
   only the graph the output depends on (views included) and leaves the others on the tape;
   the same gradients as sdl_backward of sum(out * g); bad input. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* y = tanh(reshape(x W^T + b)) for one micro-batch, (4, 6) -> (2, 12) */
static sdl_tensor *graph(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b) {
    return sdl_tanh(sdl_reshape(sdl_linear(x, w, b), sdl_shape2(2, 12)));
}

static sdl_tensor *rand_tensor(sdl_shape s, uint64_t seed, bool grad) {
    sdl_tensor *t = sdl_tensor_new(s, SDL_F32);
    sdl_manual_seed(seed);
    sdl_tensor_uniform(t, -1.0f, 1.0f);
    if (grad) sdl_tensor_requires_grad(t);
    return t;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) e = fabs((double)a[i] - b[i]) > e ? fabs((double)a[i] - b[i]) : e;
    return e;
}

static void test_two_graphs(void) {
    sdl_tensor *w = rand_tensor(sdl_shape2(6, 5), 1, true), *b = rand_tensor(sdl_shape1(6), 2, true);
    sdl_tensor *x1 = rand_tensor(sdl_shape2(4, 5), 3, true), *x2 = rand_tensor(sdl_shape2(4, 5), 4, true);
    sdl_tensor *g1 = rand_tensor(sdl_shape2(2, 12), 5, false), *g2 = rand_tensor(sdl_shape2(2, 12), 6, false);
    /* the reference: one graph at a time, loss = sum(y * g), gradients copied out */
    float ref_w[30], ref_b[6], ref_x1[20], ref_x2[20];
    sdl_tensor *xs[2] = {x1, x2}, *gs[2] = {g1, g2};
    memset(w->grad, 0, 30 * sizeof(float));
    memset(b->grad, 0, 6 * sizeof(float));
    for (int k = 0; k < 2; k++) CHECK(sdl_backward(sdl_sum(sdl_mul(graph(xs[k], w, b), gs[k]))) == SDL_OK, "%s", sdl_last_error());
    memcpy(ref_w, w->grad, sizeof ref_w), memcpy(ref_b, b->grad, sizeof ref_b);
    memcpy(ref_x1, x1->grad, sizeof ref_x1), memcpy(ref_x2, x2->grad, sizeof ref_x2);
    sdl_arena_reset();
    sdl_tensor *leaves[4] = {w, b, x1, x2};
    for (int i = 0; i < 4; i++) memset(leaves[i]->grad, 0, (size_t)leaves[i]->numel * sizeof(float));
    /* both forwards first, then backward of graph 2, then graph 1 (a pipeline's order) */
    sdl_tensor *y1 = graph(x1, w, b), *y2 = graph(x2, w, b);
    CHECK(sdl_backward_grad(y2, sdl_f32(g2)) == SDL_OK, "%s", sdl_last_error());
    double e = 0;
    for (int64_t i = 0; i < 20; i++) e += x1->grad[i] != 0.0f;
    CHECK(e == 0, "graph 1's input got a gradient from graph 2's backward");
    CHECK(max_diff(x2->grad, ref_x2, 20) < 1e-6, "x2 grad off by %g", max_diff(x2->grad, ref_x2, 20));
    CHECK(sdl_backward_grad(y1, sdl_f32(g1)) == SDL_OK, "%s", sdl_last_error());
    CHECK(max_diff(x1->grad, ref_x1, 20) < 1e-6, "x1 grad off by %g", max_diff(x1->grad, ref_x1, 20));
    CHECK(max_diff(w->grad, ref_w, 30) < 1e-5 && max_diff(b->grad, ref_b, 6) < 1e-5, "w/b grads off by %g/%g",
          max_diff(w->grad, ref_w, 30), max_diff(b->grad, ref_b, 6));
    /* the tape is empty now: a plain backward of a new graph still works */
    CHECK(sdl_backward(sdl_sum(graph(x1, w, b))) == SDL_OK, "%s", sdl_last_error());
    for (int i = 0; i < 4; i++) sdl_tensor_free(leaves[i]);
    sdl_tensor_free(g1);
    sdl_tensor_free(g2);
}

/* a scalar seed of 1 is sdl_backward */
static void test_scalar_seed(void) {
    sdl_tensor *x = rand_tensor(sdl_shape2(3, 4), 7, true);
    float one = 1.0f, a[12];
    CHECK(sdl_backward(sdl_mean(sdl_gelu(x))) == SDL_OK, "%s", sdl_last_error());
    memcpy(a, x->grad, sizeof a);
    memset(x->grad, 0, sizeof a);
    CHECK(sdl_backward_grad(sdl_mean(sdl_gelu(x)), &one) == SDL_OK, "%s", sdl_last_error());
    CHECK(memcmp(a, x->grad, sizeof a) == 0, "differs from sdl_backward");
    sdl_tensor_free(x);
}

static void test_bad_input(void) {
    sdl_tensor *x = rand_tensor(sdl_shape2(3, 4), 7, false);
    float g[12] = {0};
    CHECK(sdl_backward_grad(NULL, g) == SDL_ERR_ARG && strstr(sdl_last_error(), "NULL output"), "%s", sdl_last_error());
    CHECK(sdl_backward_grad(x, NULL) == SDL_ERR_ARG && strstr(sdl_last_error(), "NULL grad"), "%s", sdl_last_error());
    CHECK(sdl_backward_grad(sdl_relu(x), g) == SDL_ERR_STATE, "%s", sdl_last_error());
    sdl_tensor_free(x);
}

int main(void) {
    sdl_set_num_threads(1);
    RUN(test_two_graphs);
    RUN(test_scalar_seed);
    RUN(test_bad_input);
    return sdl_test_finish();
}
