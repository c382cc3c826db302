/* test_fused.c - the linear + activation epilogue (sdl_linear_act, and a sequential's
   linear + relu fusion), and backward writing gradients (=) where nothing was in them yet
   (node->grad_fresh): gradchecks, fused vs unfused and overwrite vs add-only training
   trajectories, accumulation, parameters used twice, every element written, no allocation
   per step, the same bits for 1 and 2 threads. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* ---- gradchecks against a double reference ---- */
typedef struct { int64_t R, I, O; bool bias; } lin_ctx;

static void ref_linear_relu(double **in, double *out, void *ctx) {
    const lin_ctx *c = (const lin_ctx *)ctx;
    for (int64_t r = 0; r < c->R; r++)
        for (int64_t o = 0; o < c->O; o++) {
            double z = c->bias ? in[2][o] : 0.0;
            for (int64_t i = 0; i < c->I; i++) z += in[0][r * c->I + i] * in[1][o * c->I + i];
            out[r * c->O + o] = z > 0.0 ? z : 0.0;
        }
}
static sdl_tensor *f_linear_relu(sdl_tensor **in, void *ctx) {
    const lin_ctx *c = (const lin_ctx *)ctx;
    return sdl_linear_act(in[0], in[1], c->bias ? in[2] : NULL, SDL_ACT_RELU);
}

static void test_gradcheck_linear_relu(void) {
    lin_ctx a = {7, 13, 11, true}, nb = {5, 9, 6, false};
    gc_case c1 = {"linear_act relu (7,13) (11,13) + b", 3, {sdl_shape2(7, 13), sdl_shape2(11, 13), sdl_shape1(11)}, {0},
                  0, 0, f_linear_relu, ref_linear_relu, &a, 0};
    gc_case c2 = {"linear_act relu, no bias", 2, {sdl_shape2(5, 9), sdl_shape2(6, 9)}, {0}, 0, 0, f_linear_relu,
                  ref_linear_relu, &nb, 0};
    CHECK(gradcheck(&c1), "with bias");
    CHECK(gradcheck(&c2), "without bias");
    /* x with leading dims (2, 3, 13): R = 6 rows */
    lin_ctx d = {6, 13, 4, true};
    gc_case c3 = {"linear_act relu, x (2,3,13)", 3, {sdl_shape3(2, 3, 13), sdl_shape2(4, 13), sdl_shape1(4)}, {0},
                  0, 0, f_linear_relu, ref_linear_relu, &d, 0};
    CHECK(gradcheck(&c3), "3-d input");
}

/* a chain whose intermediates get their first gradient written, not added: relu's input
   (from the first linear), the fused op's input (from relu) */
typedef struct { int64_t R, I, H, O; } chain2_ctx;
static void ref_chain2(double **in, double *out, void *ctx) {
    const chain2_ctx *c = (const chain2_ctx *)ctx;
    double *h = (double *)malloc(sizeof(double) * (size_t)(c->R * c->H));
    for (int64_t r = 0; r < c->R; r++)
        for (int64_t j = 0; j < c->H; j++) {
            double z = in[2][j];
            for (int64_t i = 0; i < c->I; i++) z += in[0][r * c->I + i] * in[1][j * c->I + i];
            h[r * c->H + j] = z > 0.0 ? z : 0.0;
        }
    for (int64_t r = 0; r < c->R; r++)
        for (int64_t o = 0; o < c->O; o++) {
            double z = 0.0;
            for (int64_t j = 0; j < c->H; j++) z += h[r * c->H + j] * in[3][o * c->H + j];
            out[r * c->O + o] = z > 0.0 ? z : 0.0;
        }
    free(h);
}
static sdl_tensor *f_chain2(sdl_tensor **in, void *ctx) {
    (void)ctx;
    return sdl_linear_act(sdl_relu(sdl_linear(in[0], in[1], in[2])), in[3], NULL, SDL_ACT_RELU);
}

static void test_gradcheck_chain(void) {
    chain2_ctx c = {6, 9, 7, 5};
    gc_case g = {"linear -> relu -> linear_act", 4, {sdl_shape2(6, 9), sdl_shape2(7, 9), sdl_shape1(7), sdl_shape2(5, 7)},
                 {0}, 0, 0, f_chain2, ref_chain2, &c, 0};
    CHECK(gradcheck(&g), "chain");
}

/* ---- training: fused vs unfused, overwrite vs add-only ---- */
static sdl_module *mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 37, 23, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 23, 17, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc3", 17, 5, true));
    return net;
}
/* the same net without the sequential's fusion: each layer on its own */
static sdl_tensor *mlp_unfused(sdl_module *net, sdl_tensor *x) {
    for (int i = 0; i < net->nchildren && x; i++) x = sdl_forward(net->children[i], x);
    return x;
}

typedef struct {
    bool unfused;    /* run the layers one by one */
    bool add_only;   /* a CPU backend whose kernels never overwrite */
    int accum;       /* accum_steps */
    int threads;
    int steps;
} run_cfg;

/* trains the MLP; losses[steps] and the final parameters (caller frees) */
static float *train(run_cfg cfg, float *losses) {
    sdl_backend saved = *sdl_get_backend(SDL_CPU);
    if (cfg.add_only) {
        sdl_backend be = saved;
        memset(be.grad_overwrite, 0, sizeof be.grad_overwrite);
        sdl_register_backend(SDL_CPU, &be);
    }
    sdl_set_num_threads(cfg.threads);
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = mlp(m);
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD;
    d.lr = 0.05f;
    d.momentum = 0.9f;
    d.accum_steps = cfg.accum;
    sdl_optim *opt = sdl_optim_new(m, &d);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(12, 37), SDL_F32);
    sdl_tensor *y = sdl_tensor_new(sdl_shape1(12), SDL_I32);
    sdl_tensor_uniform(x, -1, 1);
    for (int i = 0; i < 12; i++) sdl_i32(y)[i] = (int32_t)(sdl_rand_uniform() * 5) % 5;
    for (int s = 0; s < cfg.steps; s++) {
        sdl_arena_reset();
        sdl_tensor *out = cfg.unfused ? mlp_unfused(net, x) : sdl_forward(net, x);
        sdl_tensor *loss = sdl_cross_entropy(out, y, 0.0f);
        losses[s] = loss ? sdl_item(loss) : NAN;
        sdl_backward(loss);
        sdl_optim_step(opt);
    }
    float *p = (float *)malloc(sizeof(float) * (size_t)m->param_floats);
    memcpy(p, m->param_data, sizeof(float) * (size_t)m->param_floats);
    sdl_arena_reset();
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
    sdl_register_backend(SDL_CPU, &saved);
    sdl_set_num_threads(1);
    return p;
}

static int64_t mlp_params(void) { return 37 * 23 + 23 + 23 * 17 + 17 + 17 * 5 + 5; }

/* the same losses and parameters, bit for bit (== also takes -0 for +0) */
static void same_run(run_cfg a, run_cfg b, const char *what) {
    float la[40], lb[40];
    float *pa = train(a, la), *pb = train(b, lb);
    int bad = -1;
    for (int s = 0; s < a.steps && bad < 0; s++)
        if (!(la[s] == lb[s])) bad = s;
    CHECK(bad < 0, "%s: losses differ at step %d: %.9g vs %.9g", what, bad, la[bad < 0 ? 0 : bad], lb[bad < 0 ? 0 : bad]);
    int64_t diff = 0;
    for (int64_t i = 0; i < mlp_params(); i++) diff += !(pa[i] == pb[i]);
    CHECK(diff == 0, "%s: %lld parameters differ", what, (long long)diff);
    CHECK(la[a.steps - 1] < la[0], "%s: the loss falls (%g -> %g)", what, la[0], la[a.steps - 1]);
    free(pa);
    free(pb);
}

static void test_fused_equals_unfused(void) {
    run_cfg f = {false, false, 1, 1, 30}, u = {true, false, 1, 1, 30};
    same_run(f, u, "fused vs unfused");
}

static void test_overwrite_equals_add_only(void) {
    run_cfg o = {false, false, 1, 1, 30}, a = {true, true, 1, 1, 30};
    same_run(o, a, "overwrite vs add-only, unfused");
    run_cfg o2 = {false, false, 3, 1, 30}, a2 = {false, true, 3, 1, 30};
    same_run(o2, a2, "accum_steps 3: overwrite vs add-only");
}

static void test_threads_same_bits(void) {
    run_cfg t1 = {false, false, 1, 1, 20}, t2 = {false, false, 1, 2, 20};
    same_run(t1, t2, "1 vs 2 threads");
}

/* ---- the gradient after backward is the whole gradient, whatever was in memory ---- */
static void test_fresh_writes_every_element(void) {
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = mlp(m);
    sdl_optim *opt = sdl_sgd(m, 0.01f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(9, 37), SDL_F32), *y = test_ids(9, 5);
    sdl_tensor_uniform(x, -1, 1);
    /* reference gradients: plain add-only backward into zeros */
    sdl_backend saved = *sdl_get_backend(SDL_CPU), be = saved;
    memset(be.grad_overwrite, 0, sizeof be.grad_overwrite);
    sdl_register_backend(SDL_CPU, &be);
    sdl_model_zero_grad(m);
    CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f)) == SDL_OK, "backward: %s", sdl_last_error());
    float *ref = (float *)malloc(sizeof(float) * (size_t)m->param_floats);
    memcpy(ref, m->grad_data, sizeof(float) * (size_t)m->param_floats);
    sdl_register_backend(SDL_CPU, &saved);
    sdl_arena_reset();
    sdl_model_zero_grad(m);
    /* NaN where the gradients should be: the flags say "zeros", so every kernel must write
       every element (this breaks the flags' promise on purpose) */
    for (int64_t i = 0; i < m->param_floats; i++) m->grad_data[i] = NAN;
    CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f)) == SDL_OK, "backward: %s", sdl_last_error());
    int64_t diff = 0;
    for (int64_t i = 0; i < m->param_floats; i++) diff += !(m->grad_data[i] == ref[i]);
    CHECK(diff == 0, "%lld gradient elements differ from the add-only backward", (long long)diff);
    /* a second backward adds */
    sdl_arena_reset();
    CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f)) == SDL_OK, "backward: %s", sdl_last_error());
    double worst = 0.0;
    for (int64_t i = 0; i < m->param_floats; i++) {
        double e = fabs((double)m->grad_data[i] - 2.0 * ref[i]);
        worst = e > worst ? e : worst;
    }
    CHECK(worst <= 1e-6, "second backward adds: off by %g", worst);
    /* the optimizer step leaves zeros behind, as it always did */
    sdl_optim_step(opt);
    int64_t nz = 0;
    for (int64_t i = 0; i < m->param_floats; i++) nz += m->grad_data[i] != 0.0f;
    CHECK(nz == 0, "%lld gradient elements are not zero after sdl_optim_step", (long long)nz);
    free(ref);
    sdl_arena_reset();
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* a parameter read by two ops (tied weights), by one op twice (y = x x^T), and one that the
   graph never reads: each gradient equals the add-only backward's */
static void test_shared_and_unused_params(void) {
    sdl_model *m = sdl_model_new(6);
    sdl_tensor *w = sdl_model_param(m, "w", sdl_shape2(8, 8), true);
    sdl_tensor *s = sdl_model_param(m, "s", sdl_shape2(5, 8), true);
    sdl_tensor *u = sdl_model_param(m, "unused", sdl_shape1(3), false);
    sdl_tensor_uniform(w, -0.5f, 0.5f);
    sdl_tensor_uniform(s, -0.5f, 0.5f);
    sdl_tensor_uniform(u, -0.5f, 0.5f);
    sdl_optim *opt = sdl_sgd(m, 0.01f, 0.0f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(4, 8), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    float ref[200], got[200];
    int64_t n = m->param_floats;
    CHECK(n <= 200, "size");
    for (int pass = 0; pass < 2; pass++) {
        sdl_backend saved = *sdl_get_backend(SDL_CPU), be = saved;
        if (pass == 0) {
            memset(be.grad_overwrite, 0, sizeof be.grad_overwrite);
            sdl_register_backend(SDL_CPU, &be);
        }
        for (int rep = 0; rep < 2; rep++) { /* rep 1: after an optimizer step (gradients zeroed by it) */
            sdl_arena_reset();
            sdl_tensor *h = sdl_linear_act(sdl_linear(x, w, NULL), w, NULL, SDL_ACT_RELU); /* w twice */
            sdl_tensor *ss = sdl_linear(s, s, NULL); /* s as input and weight of one op: (5, 5) */
            sdl_tensor *loss = sdl_add(sdl_sum(sdl_mul(h, h)), sdl_mean(ss));
            CHECK(sdl_backward(loss) == SDL_OK, "backward: %s", sdl_last_error());
            memcpy(pass == 0 ? ref : got, m->grad_data, sizeof(float) * (size_t)n);
            if (rep == 0) {
                /* undo the update so both passes see the same parameters */
                float keep[200];
                memcpy(keep, m->param_data, sizeof(float) * (size_t)n);
                sdl_optim_step(opt);
                memcpy(m->param_data, keep, sizeof(float) * (size_t)n);
            }
        }
        sdl_model_zero_grad(m);
        sdl_register_backend(SDL_CPU, &saved);
    }
    int64_t diff = 0;
    for (int64_t i = 0; i < n; i++) diff += !(ref[i] == got[i]);
    CHECK(diff == 0, "%lld gradient elements differ", (long long)diff);
    for (int64_t i = 0; i < 3; i++) CHECK(u->grad[i] == 0.0f, "unused parameter's gradient %g", u->grad[i]);
    double nw = 0.0;
    for (int64_t i = 0; i < 64; i++) nw += fabs(ref[i]);
    CHECK(nw > 0.0, "w gets a gradient");
    sdl_arena_reset();
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_model_free(m);
}

/* sequential fusion: eval (no grad) gives the same outputs as the layers one by one, and an
   op error still travels (a NULL input) */
static void test_fused_forward_no_grad(void) {
    sdl_model *m = sdl_model_new(8);
    sdl_module *net = mlp(m);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(3, 37), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_set_grad_enabled(false);
    sdl_tensor *a = sdl_forward(net, x), *b = mlp_unfused(net, x);
    sdl_set_grad_enabled(true);
    CHECK(a && b && a->numel == 15 && b->numel == 15, "outputs");
    for (int64_t i = 0; a && b && i < a->numel; i++) CHECK(sdl_f32(a)[i] == sdl_f32(b)[i], "output %lld", (long long)i);
    CHECK(sdl_linear_act(NULL, net->children[1]->weight, NULL, SDL_ACT_RELU) == NULL, "NULL in, NULL out");
    CHECK(sdl_linear_act(x, net->children[1]->weight, NULL, (sdl_act)7) == NULL && sdl_last_result() == SDL_ERR_ARG, "bad act");
    sdl_tensor *wrong = sdl_tensor_new(sdl_shape2(3, 36), SDL_F32);
    CHECK(sdl_linear_act(wrong, net->children[1]->weight, NULL, SDL_ACT_RELU) == NULL && sdl_last_result() == SDL_ERR_SHAPE, "shape");
    sdl_clear_error();
    sdl_tensor_free(wrong);
    sdl_tensor_free(x);
    sdl_model_free(m);
}

/* the fused step allocates nothing once the arena has grown */
static void test_fused_steady_state(void) {
    sdl_model *m = sdl_model_new(4);
    sdl_module *net = mlp(m);
    sdl_optim *opt = sdl_sgd(m, 0.05f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(16, 37), SDL_F32), *y = test_ids(16, 5);
    sdl_tensor_uniform(x, -1, 1);
    long before = 0;
    for (int s = 0; s < 13; s++) {
        if (s == 3) before = sdl_test_allocs;
        sdl_arena_reset();
        sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f));
        sdl_optim_step(opt);
    }
    CHECK(sdl_test_allocs == before, "%ld allocations in 10 steady-state steps", sdl_test_allocs - before);
    sdl_arena_reset();
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* ---- conv2d + relu: the fused op gives the same bits as conv2d then relu, forward and
   backward, on the Winograd path (3x3, stride 1, C_in and C_out >= 16) and on im2col */
static sdl_tensor *conv_param(sdl_shape s, uint64_t seed) {
    sdl_tensor *t = sdl_tensor_new(s, SDL_F32);
    for (int64_t i = 0; i < t->numel; i++) sdl_f32(t)[i] = sdl_hash_uniform(seed, 0, (uint64_t)i) - 0.5f;
    sdl_tensor_requires_grad(t);
    return t;
}
static int conv_act_case(sdl_shape xs, sdl_shape ws, int stride, int pad) {
    sdl_tensor *in[2][3];
    sdl_tensor *ys[2];
    for (int k = 0; k < 2; k++) { /* k = 0 fused, 1 unfused, from the same numbers */
        in[k][0] = conv_param(xs, 1);
        in[k][1] = conv_param(ws, 2);
        in[k][2] = conv_param(sdl_shape1(ws.d[0]), 3);
        sdl_tensor *y = k == 0 ? sdl_conv2d_act(in[k][0], in[k][1], in[k][2], stride, pad, SDL_ACT_RELU)
                               : sdl_relu(sdl_conv2d(in[k][0], in[k][1], in[k][2], stride, pad));
        ys[k] = y;
        sdl_tensor *r = sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32);
        for (int64_t i = 0; i < r->numel; i++) sdl_f32(r)[i] = sdl_hash_uniform(4, 0, (uint64_t)i) - 0.5f;
        CHECK(sdl_backward(sdl_sum(sdl_mul(y, r))) == SDL_OK, "%s", sdl_last_error());
    }
    int bad = memcmp(ys[0]->data, ys[1]->data, (size_t)ys[0]->numel * sizeof(float)) != 0;
    int64_t positive = 0;
    for (int64_t i = 0; i < ys[0]->numel; i++) positive += sdl_f32(ys[0])[i] > 0.0f;
    CHECK(positive > 0 && positive < ys[0]->numel, "relu should cut some outputs, not all (%lld of %lld)",
          (long long)positive, (long long)ys[0]->numel);
    for (int i = 0; i < 3; i++)
        bad += memcmp(in[0][i]->grad, in[1][i]->grad, (size_t)in[0][i]->numel * sizeof(float)) != 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++) sdl_tensor_free(in[k][i]);
    sdl_arena_reset();
    return bad;
}
static void test_conv_act_equals_unfused(void) {
    CHECK(conv_act_case(sdl_shape4(2, 16, 9, 11), sdl_shape4(16, 16, 3, 3), 1, 1) == 0, "winograd shape differs");
    CHECK(conv_act_case(sdl_shape4(3, 3, 8, 7), sdl_shape4(5, 3, 3, 3), 2, 1) == 0, "im2col shape differs");
    CHECK(conv_act_case(sdl_shape4(2, 1, 6, 6), sdl_shape4(4, 1, 3, 3), 1, 0) == 0, "C_in = 1 differs");
    /* a sequential runs conv + relu fused: the same bits as the layers one by one */
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = sdl_sequential(m, "");
    sdl_module *conv = sdl_conv2d_layer(m, "c", 16, 16, 3, 1, 1, true), *relu = sdl_relu_layer(m);
    sdl_seq_add(net, conv);
    sdl_seq_add(net, relu);
    sdl_tensor *x = conv_param(sdl_shape4(2, 16, 6, 6), 7);
    sdl_tensor *a = sdl_forward(net, x), *b = sdl_forward(relu, sdl_forward(conv, x));
    CHECK(a && b && memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0, "sequential conv + relu differs");
    CHECK(sdl_conv2d_act(x, conv->weight, conv->bias, 1, 1, (sdl_act)7) == NULL, "an unknown activation is refused");
    sdl_arena_reset();
    sdl_tensor_free(x);
    sdl_model_free(m);
    sdl_clear_error();
}

int main(void) {
    sdl_set_num_threads(1);
    RUN(test_gradcheck_linear_relu);
    RUN(test_gradcheck_chain);
    RUN(test_fused_equals_unfused);
    RUN(test_overwrite_equals_add_only);
    RUN(test_threads_same_bits);
    RUN(test_fresh_writes_every_element);
    RUN(test_shared_and_unused_params);
    RUN(test_fused_forward_no_grad);
    RUN(test_fused_steady_state);
    RUN(test_conv_act_equals_unfused);
    return sdl_test_finish();
}
