/* test_core.c - tensors, arena, autograd, the first ops and losses, models, threads */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* ---- gradient checks: each op against a plain double-precision loop ---- */
static sdl_tensor *f_linear(sdl_tensor **in, void *ctx) { return sdl_linear(in[0], in[1], ctx ? in[2] : NULL); }
/* x (R, I), w (O, I), b (O) */
static void r_linear(double **in, double *out, void *ctx) {
    int64_t R = 15, I = 7, O = 5; /* rows = 3 * 5 when x is (3, 5, 7) */
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) {
            double s = ctx ? in[2][o] : 0.0;
            for (int64_t i = 0; i < I; i++) s += in[0][r * I + i] * in[1][o * I + i];
            out[r * O + o] = s;
        }
}
static void test_gradcheck_linear(void) {
    gc_case c = {"linear+bias", 3, {sdl_shape2(15, 7), sdl_shape2(5, 7), sdl_shape1(5)}, {0}, 0, 0, f_linear, r_linear, (void *)1, 0};
    CHECK(gradcheck(&c), "linear with bias");
    gc_case c2 = {"linear 3-d, no bias", 2, {sdl_shape3(3, 5, 7), sdl_shape2(5, 7)}, {0}, 0, 0, f_linear, r_linear, NULL, 0};
    CHECK(gradcheck(&c2), "linear without bias on (3, 5, 7)");
}

static sdl_tensor *f_relu(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_relu(in[0]); }
static void r_relu(double **in, double *out, void *ctx) { (void)ctx; for (int i = 0; i < 3 * 7 * 5; i++) out[i] = in[0][i] > 0 ? in[0][i] : 0; }
static void test_gradcheck_relu(void) {
    gc_case c = {"relu", 1, {sdl_shape3(3, 7, 5)}, {0}, 0, 0, f_relu, r_relu, NULL, 0};
    CHECK(gradcheck(&c), "relu");
}

/* a (3, 5, 7) with b (7), (5, 1), (3, 5, 7) */
static sdl_tensor *f_add(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_add(in[0], in[1]); }
static sdl_tensor *f_mul(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mul(in[0], in[1]); }
typedef struct { int mode; bool mul; } bc_ctx; /* mode 0: b (7), 1: b (5, 1), 2: b full */
static void r_binary(double **in, double *out, void *ctx) {
    bc_ctx *b = (bc_ctx *)ctx;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 7; k++) {
                int ai = (i * 5 + j) * 7 + k, bi = b->mode == 0 ? k : b->mode == 1 ? j : ai;
                out[ai] = b->mul ? in[0][ai] * in[1][bi] : in[0][ai] + in[1][bi];
            }
}
static void test_gradcheck_add_mul(void) {
    sdl_shape bs[3] = {sdl_shape1(7), sdl_shape2(5, 1), sdl_shape3(3, 5, 7)};
    for (int mul = 0; mul < 2; mul++)
        for (int mode = 0; mode < 3; mode++) {
            bc_ctx ctx = {mode, mul != 0};
            gc_case c = {mul ? "mul" : "add", 2, {sdl_shape3(3, 5, 7), bs[mode]}, {0}, 0, 0, mul ? f_mul : f_add, r_binary, &ctx, 0};
            CHECK(gradcheck(&c), "%s with broadcast mode %d", c.name, mode);
        }
}

static sdl_tensor *f_mean(sdl_tensor **in, void *ctx) { return ctx ? sdl_mean(in[0]) : sdl_sum(in[0]); }
static void r_mean(double **in, double *out, void *ctx) {
    for (int i = 0; i < 33; i++) out[0] += in[0][i];
    if (ctx) out[0] /= 33.0;
}
static void test_gradcheck_sum_mean(void) {
    gc_case c = {"sum", 1, {sdl_shape2(3, 11)}, {0}, 0, 0, f_mean, r_mean, NULL, 0};
    CHECK(gradcheck(&c), "sum");
    gc_case c2 = {"mean", 1, {sdl_shape2(3, 11)}, {0}, 0, 0, f_mean, r_mean, (void *)1, 0};
    CHECK(gradcheck(&c2), "mean");
}

typedef struct { sdl_tensor *targets; float smoothing; } ce_ctx;
static sdl_tensor *f_ce(sdl_tensor **in, void *ctx) {
    ce_ctx *c = (ce_ctx *)ctx;
    return sdl_cross_entropy(in[0], c->targets, c->smoothing);
}
static void r_ce(double **in, double *out, void *ctx) { /* logits (9, 7) */
    ce_ctx *c = (ce_ctx *)ctx;
    double total = 0;
    for (int b = 0; b < 9; b++) {
        double mx = -1e300, z = 0;
        for (int k = 0; k < 7; k++) mx = in[0][b * 7 + k] > mx ? in[0][b * 7 + k] : mx;
        for (int k = 0; k < 7; k++) z += exp(in[0][b * 7 + k] - mx);
        for (int k = 0; k < 7; k++) {
            double q = c->smoothing / 7.0 + (k == sdl_i32(c->targets)[b] ? 1.0 - c->smoothing : 0.0);
            total -= q * (in[0][b * 7 + k] - mx - log(z));
        }
    }
    out[0] = total / 9.0;
}
static void test_gradcheck_cross_entropy(void) {
    ce_ctx ctx = {test_ids(9, 7), 0.0f};
    gc_case c = {"cross_entropy", 1, {sdl_shape2(9, 7)}, {0}, -3, 3, f_ce, r_ce, &ctx, 0};
    CHECK(gradcheck(&c), "cross entropy");
    ctx.smoothing = 0.1f;
    CHECK(gradcheck(&c), "cross entropy with label smoothing 0.1");
    sdl_tensor_free(ctx.targets);
}

static sdl_tensor *f_mse(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mse_loss(in[0], in[1]); }
static void r_mse(double **in, double *out, void *ctx) {
    (void)ctx;
    for (int i = 0; i < 35; i++) out[0] += (in[0][i] - in[1][i]) * (in[0][i] - in[1][i]) / 35.0;
}
static void test_gradcheck_mse(void) {
    gc_case c = {"mse", 2, {sdl_shape2(5, 7), sdl_shape2(5, 7)}, {false, true}, 0, 0, f_mse, r_mse, NULL, 0};
    CHECK(gradcheck(&c), "mse");
}

/* ---- tensors, errors ---- */
static void test_tensor_basics(void) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(2, 3, 4), SDL_F32);
    CHECK(t && t->numel == 24 && t->ndim == 3, "new tensor (2,3,4)");
    sdl_tensor_fill(t, 2.5f);
    CHECK(sdl_f32(t)[23] == 2.5f, "fill");
    sdl_tensor *v = sdl_reshape(t, sdl_shape2(-1, 4));
    CHECK(v && v->shape[0] == 6 && v->data == t->data, "reshape (-1, 4) is a view");
    sdl_tensor *bad = sdl_reshape(t, sdl_shape2(5, 5));
    CHECK(!bad && sdl_last_result() == SDL_ERR_SHAPE, "reshape to 25 elements fails");
    CHECK(strstr(sdl_last_error(), "(2, 3, 4)") != NULL, "error names the shape: %s", sdl_last_error());
    sdl_tensor *huge = sdl_tensor_new(sdl_shape3(INT64_MAX / 2, 4, 4), SDL_F32);
    CHECK(!huge && sdl_last_result() == SDL_ERR_SHAPE, "overflowing shape is refused");
    sdl_tensor_free(t);
}

static void test_shape_mismatch_names_op(void) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(4, 10), SDL_F32);
    sdl_tensor *w = sdl_arena_tensor(sdl_shape2(3, 9), SDL_F32);
    sdl_tensor *y = sdl_linear(x, w, NULL);
    CHECK(y == NULL, "linear with mismatched shapes returns NULL");
    CHECK(strstr(sdl_last_error(), "linear") && strstr(sdl_last_error(), "(4, 10)") && strstr(sdl_last_error(), "(3, 9)"),
          "error names op and both shapes: %s", sdl_last_error());
    /* NULL flows through a chain, backward reports it */
    sdl_tensor *z = sdl_relu(sdl_add(y, x));
    CHECK(z == NULL, "NULL propagates");
    CHECK(sdl_backward(z) == SDL_ERR_ARG, "backward(NULL) is an error");
}

static void test_nan_detectable(void) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(2, 3), SDL_F32);
    sdl_tensor *t = sdl_arena_tensor(sdl_shape1(2), SDL_I32);
    sdl_f32(x)[1] = NAN;
    sdl_tensor *loss = sdl_cross_entropy(x, t, 0.0f);
    CHECK(loss && !sdl_all_finite(loss), "NaN logits give a non-finite loss");
    sdl_i32(t)[0] = 7;
    CHECK(sdl_cross_entropy(x, t, 0.0f) == NULL && strstr(sdl_last_error(), "target 7"), "bad target: %s", sdl_last_error());
}

/* ---- models ---- */
static sdl_module *make_mlp(sdl_model *m, int in, int hidden, int out) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", in, hidden, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", hidden, hidden, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc3", hidden, out, true));
    return net;
}

static void test_model_names_and_count(void) {
    sdl_model *m = sdl_model_new(1);
    make_mlp(m, 784, 256, 10);
    CHECK(m->nparams == 6, "6 parameters, got %d", m->nparams);
    CHECK(sdl_model_num_params(m) == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10, "count %lld", (long long)sdl_model_num_params(m));
    sdl_tensor *w = sdl_model_find(m, "fc2.weight");
    CHECK(w && w->shape[0] == 256 && w->decay, "fc2.weight found, decays");
    CHECK(sdl_model_find(m, "fc3.bias") && !sdl_model_find(m, "fc3.bias")->decay, "bias does not decay");
    /* kaiming-uniform(a=sqrt(5)) bound is 1/sqrt(fan_in) */
    float mx = 0;
    for (int64_t i = 0; i < w->numel; i++) mx = fabsf(sdl_f32(w)[i]) > mx ? fabsf(sdl_f32(w)[i]) : mx;
    CHECK(mx <= 1.0f / 16.0f && mx > 0.9f / 16.0f, "init bound 1/sqrt(256): max %g", mx);
    CHECK(sdl_model_pack(m) == SDL_OK && m->params[1]->data == m->param_data + 784 * 256, "packed in creation order");
    CHECK(sdl_linear_layer(m, "late", 2, 2, true) == NULL && sdl_last_result() == SDL_ERR_STATE, "no params after packing");
    sdl_model_free(m);
}

static int hook_order[16], hook_count;
static sdl_result record_hook(void *user, sdl_model *m, int i) { (void)user; (void)m; if (hook_count < 16) hook_order[hook_count++] = i; return SDL_OK; }

static void test_grad_hook_reverse_order(void) {
    sdl_model *m = sdl_model_new(2);
    sdl_module *net = make_mlp(m, 5, 8, 3);
    sdl_model_set_grad_hook(m, record_hook, NULL);
    hook_count = 0;
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(4, 5), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = test_ids(4, 3);
    sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f));
    CHECK(hook_count == 6, "6 hooks, got %d", hook_count);
    /* fc3 (params 4, 5) is final first, fc1 (0, 1) last */
    CHECK(hook_count == 6 && hook_order[0] >= 4 && hook_order[1] >= 4 && hook_order[4] <= 1 && hook_order[5] <= 1,
          "reverse layer order: %d %d %d %d %d %d", hook_order[0], hook_order[1], hook_order[2], hook_order[3], hook_order[4], hook_order[5]);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

static void test_grads_accumulate_until_zeroed(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_mlp(m, 5, 8, 3);
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(4, 5), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = test_ids(4, 3);
    sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f));
    float g1 = m->grad_data[7];
    sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f));
    CHECK(fabsf(m->grad_data[7] - 2 * g1) <= 1e-6f * fabsf(g1) + 1e-9f, "second backward adds: %g vs 2*%g", m->grad_data[7], g1);
    sdl_model_zero_grad(m);
    CHECK(m->grad_data[7] == 0.0f, "zero_grad");
    sdl_set_grad_enabled(false);
    sdl_tensor *out = sdl_forward(net, x);
    CHECK(out && !out->requires_grad && out->node == NULL, "no-grad mode records nothing");
    sdl_set_grad_enabled(true);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* ---- steady state: no heap allocation per step ---- */
static void train_step(sdl_module *net, sdl_optim *opt, sdl_tensor *x, sdl_tensor *y) {
    sdl_arena_reset();
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
    sdl_backward(loss);
    sdl_optim_step(opt);
    sdl_model_zero_grad(opt->model);
}

static void test_steady_state_allocates_nothing(void) {
    sdl_model *m = sdl_model_new(4);
    sdl_module *net = make_mlp(m, 20, 64, 5);
    sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 1e-4f, true);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(32, 20), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = test_ids(32, 5);
    for (int i = 0; i < 3; i++) train_step(net, opt, x, y); /* warm-up: arena grows */
    long before = sdl_test_allocs;
    for (int i = 0; i < 10; i++) train_step(net, opt, x, y);
    CHECK(sdl_test_allocs == before, "%ld allocations in 10 steady-state steps", sdl_test_allocs - before);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* ---- the same seed gives the same 20 losses, bit for bit, with 1 or 2 threads ---- */
static void mlp_trajectory(int threads, float *losses) {
    sdl_set_num_threads(threads);
    sdl_model *m = sdl_model_new(1234);
    sdl_module *net = make_mlp(m, 64, 128, 10);
    sdl_optim *opt = sdl_sgd(m, 0.05f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(64, 64), SDL_F32);
    sdl_tensor_randn(x, 0, 1);
    sdl_tensor *y = test_ids(64, 10);
    for (int i = 0; i < 20; i++) {
        sdl_arena_reset();
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
        losses[i] = sdl_item(loss);
        sdl_backward(loss);
        sdl_optim_step(opt);
        sdl_model_zero_grad(m);
    }
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

static void test_deterministic_across_threads(void) {
    float a[20], b[20], c[20];
    mlp_trajectory(1, a);
    mlp_trajectory(2, b);
    mlp_trajectory(3, c);
    sdl_set_num_threads(0);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(a, c, sizeof a) == 0, "loss trajectories differ: %.9g %.9g %.9g", a[19], b[19], c[19]);
    CHECK(a[19] < a[0], "loss decreases: %g -> %g", a[0], a[19]);
}

/* ---- two spirals: a non-linear toy problem learned to ~100% ---- */
static void test_two_spirals(void) {
    enum { N = 400 };
    sdl_manual_seed(7);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(N, 2), SDL_F32);
    sdl_tensor *y = sdl_tensor_new(sdl_shape1(N), SDL_I32);
    for (int i = 0; i < N; i++) {
        int cls = i % 2;
        float t = 0.5f + 3.0f * (float)(i / 2) / (N / 2); /* 1.5 turns */
        float r = t / 3.5f, ang = 3.14159265f * t + (float)cls * 3.14159265f;
        sdl_f32(x)[2 * i] = r * cosf(ang);
        sdl_f32(x)[2 * i + 1] = r * sinf(ang);
        sdl_i32(y)[i] = cls;
    }
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = make_mlp(m, 2, 64, 2);
    sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    int64_t correct = 0;
    for (int step = 0; step < 1500; step++) {
        sdl_arena_reset();
        sdl_tensor *logits = sdl_forward(net, x);
        correct = sdl_count_correct(logits, y);
        sdl_backward(sdl_cross_entropy(logits, y, 0.0f));
        sdl_optim_step(opt);
        sdl_model_zero_grad(m);
    }
    CHECK(correct >= N * 99 / 100, "two spirals: %lld of %d right", (long long)correct, N);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

static void test_rng_counter_based(void) {
    sdl_manual_seed(99);
    sdl_tensor *a = sdl_tensor_new(sdl_shape1(1000), SDL_F32), *b = sdl_tensor_new(sdl_shape1(1000), SDL_F32);
    sdl_tensor_randn(a, 0, 1);
    sdl_manual_seed(99);
    sdl_tensor_randn(b, 0, 1);
    CHECK(memcmp(a->data, b->data, 4000) == 0, "same seed, same numbers");
    double mean = 0, var = 0;
    for (int i = 0; i < 1000; i++) mean += sdl_f32(a)[i] / 1000.0;
    for (int i = 0; i < 1000; i++) var += (sdl_f32(a)[i] - mean) * (sdl_f32(a)[i] - mean) / 1000.0;
    CHECK(fabs(mean) < 0.1 && fabs(var - 1) < 0.1, "randn mean %g var %g", mean, var);
    sdl_tensor_free(a);
    sdl_tensor_free(b);
}

static void test_sgemm_against_loops(void) {
    int M = 37, N = 29, K = 53;
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        float *A = (float *)malloc(sizeof(float) * M * K), *B = (float *)malloc(sizeof(float) * K * N), *C = (float *)malloc(sizeof(float) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = sdl_rand_uniform() - 0.5f;
        for (int i = 0; i < K * N; i++) B[i] = sdl_rand_uniform() - 0.5f;
        for (int i = 0; i < M * N; i++) C[i] = 1.0f;
        sdl_sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, C, N);
        double err = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++) s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                double e = fabs(C[i * N + j] - (0.5 * s + 2.0));
                err = e > err ? e : err;
            }
        CHECK(err < 1e-4, "sgemm ta=%d tb=%d err %g", ta, tb, err);
        free(A); free(B); free(C);
    }
}

/* sdl_set_flush_denormal: tiny products become 0 on this thread and in the pool, and
   back when it is turned off */
static volatile float g_tiny = 1e-30f, g_small = 1e-10f; /* 1e-40 is below 2^-126 */
static void tiny_products(void *ctx, int64_t begin, int64_t end) {
    float *out = (float *)ctx;
    for (int64_t i = begin; i < end; i++) out[i] = g_tiny * g_small;
}
/* counted by their bits: with DAZ on, this thread would read a denormal as 0 */
static int count_nonzero_bits(const float *x, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        k += (u & 0x7fffffffu) != 0;
    }
    return k;
}
static void test_flush_denormal(void) {
    float out[64];
    sdl_set_num_threads(3);
    if (!sdl_set_flush_denormal(true)) { printf("  skip: no flush-to-zero mode on this CPU\n"); return; }
    sdl_parallel_for(64, 1, tiny_products, out);
    int nonzero = count_nonzero_bits(out, 64);
    CHECK(nonzero == 0, "%d of 64 tiny products were not flushed to zero", nonzero);
    CHECK(sdl_set_flush_denormal(false), "turning it off failed");
    sdl_parallel_for(64, 1, tiny_products, out);
    nonzero = count_nonzero_bits(out, 64);
    CHECK(nonzero == 64 && out[0] > 0.0f && out[0] < 1.2e-38f, "only %d of 64 tiny products stayed denormal after turning it off", nonzero);
    sdl_set_num_threads(0);
}

int main(void) {
    RUN(test_gradcheck_linear);
    RUN(test_gradcheck_relu);
    RUN(test_gradcheck_add_mul);
    RUN(test_gradcheck_sum_mean);
    RUN(test_gradcheck_cross_entropy);
    RUN(test_gradcheck_mse);
    RUN(test_tensor_basics);
    RUN(test_shape_mismatch_names_op);
    RUN(test_nan_detectable);
    RUN(test_model_names_and_count);
    RUN(test_grad_hook_reverse_order);
    RUN(test_grads_accumulate_until_zeroed);
    RUN(test_flush_denormal);
    RUN(test_steady_state_allocates_nothing);
    RUN(test_deterministic_across_threads);
    RUN(test_two_spirals);
    RUN(test_rng_counter_based);
    RUN(test_sgemm_against_loops);
    return sdl_test_finish();
}
