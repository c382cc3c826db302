/* test_general_ops.c - the general differentiable ops (issue 15): elementwise unary,
   broadcasting binary, comparisons and where, reductions over dims, softmax over any dim,
   matmul with batch broadcasting, shape and index ops. Each is gradchecked against double
   code (tests/sdl_test.h), with broadcasting on both sides and inputs that come through a
   permute or a strided slice (PyTorch's non-contiguous cases); an LSTM cell made only of
   these ops passes sdl_gradcheck. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* ---- elementwise unary ------------------------------------------------------------------ */
typedef struct unary_case {
    const char *name;
    sdl_tensor *(*f)(sdl_tensor *x, float a, float b);
    double (*ref)(double x, double a, double b);
    float a, b, lo, hi;
} unary_case;

static sdl_tensor *u_neg(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_neg(x); }
static sdl_tensor *u_exp(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_exp(x); }
static sdl_tensor *u_ln(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_ln(x); }
static sdl_tensor *u_sqrt(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_sqrt(x); }
static sdl_tensor *u_rsqrt(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_rsqrt(x); }
static sdl_tensor *u_abs(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_abs(x); }
static sdl_tensor *u_pow(sdl_tensor *x, float a, float b) { (void)b; return sdl_pow(x, a); }
static sdl_tensor *u_clamp(sdl_tensor *x, float a, float b) { return sdl_clamp(x, a, b); }
static sdl_tensor *u_sin(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_sin(x); }
static sdl_tensor *u_cos(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_cos(x); }

static double r_neg(double x, double a, double b) { (void)a; (void)b; return -x; }
static double r_exp(double x, double a, double b) { (void)a; (void)b; return exp(x); }
static double r_ln(double x, double a, double b) { (void)a; (void)b; return log(x); }
static double r_sqrt(double x, double a, double b) { (void)a; (void)b; return sqrt(x); }
static double r_rsqrt(double x, double a, double b) { (void)a; (void)b; return 1.0 / sqrt(x); }
static double r_abs(double x, double a, double b) { (void)a; (void)b; return fabs(x); }
static double r_pow(double x, double a, double b) { (void)b; return pow(x, a); }
static double r_clamp(double x, double a, double b) { return x < a ? a : x > b ? b : x; }
static double r_sin(double x, double a, double b) { (void)a; (void)b; return sin(x); }
static double r_cos(double x, double a, double b) { (void)a; (void)b; return cos(x); }
static double r_tanh(double x, double a, double b) { (void)a; (void)b; return tanh(x); }
static sdl_tensor *u_tanh(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_tanh(x); }
static sdl_tensor *u_hardswish(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_hardswish(x); }
static double r_hardswish(double x, double a, double b) { (void)a; (void)b; return x <= -3 ? 0 : x >= 3 ? x : x * (x + 3) / 6; }

static const unary_case unary_cases[] = {
    {"neg", u_neg, r_neg, 0, 0, -2, 2},       {"exp", u_exp, r_exp, 0, 0, -2, 2},
    {"ln", u_ln, r_ln, 0, 0, 0.3f, 3},        {"sqrt", u_sqrt, r_sqrt, 0, 0, 0.3f, 3},
    {"rsqrt", u_rsqrt, r_rsqrt, 0, 0, 0.3f, 3}, {"abs", u_abs, r_abs, 0, 0, -2, 2},
    {"pow 2.5", u_pow, r_pow, 2.5f, 0, 0.2f, 2}, {"pow -1", u_pow, r_pow, -1.0f, 0, 0.5f, 2},
    {"clamp", u_clamp, r_clamp, -0.5f, 0.7f, -2, 2}, {"sin", u_sin, r_sin, 0, 0, -3, 3},
    {"cos", u_cos, r_cos, 0, 0, -3, 3},       {"tanh", u_tanh, r_tanh, 0, 0, -2, 2},
    {"hardswish", u_hardswish, r_hardswish, 0, 0, -5, 5},
};

static sdl_tensor *unary_f(sdl_tensor **in, void *ctx) {
    const unary_case *c = (const unary_case *)ctx;
    return c->f(in[0], c->a, c->b);
}
static void unary_ref(double **in, double *out, void *ctx) {
    const unary_case *c = (const unary_case *)ctx;
    for (int i = 0; i < 4 * 7; i++) out[i] = c->ref(in[0][i], c->a, c->b);
}

static void test_unary(void) {
    for (size_t k = 0; k < sizeof unary_cases / sizeof unary_cases[0]; k++) {
        const unary_case *u = &unary_cases[k];
        gc_case c = {u->name, 1, {sdl_shape2(4, 7)}, {false}, u->lo, u->hi, unary_f, unary_ref, (void *)u, 0};
        CHECK(gradcheck(&c), "%s", u->name);
    }
    sdl_tensor *x = sdl_tensor_new(sdl_shape1(3), SDL_F32);
    CHECK(!sdl_clamp(x, 1.0f, 0.0f) && strstr(sdl_last_error(), "clamp: lo 1 > hi 0"), "%s", sdl_last_error());
    sdl_f32(x)[0] = NAN;
    sdl_f32(x)[1] = -5;
    sdl_f32(x)[2] = 5;
    sdl_tensor *y = sdl_clamp(x, -INFINITY, 1.0f);
    CHECK(y && isnan(sdl_f32(y)[0]) && sdl_f32(y)[1] == -5 && sdl_f32(y)[2] == 1, "clamp keeps NaN, -inf is no bound");
    sdl_tensor_free(x);
}

/* ---- the op table: every op has a unique name and CPU kernels; a backend without an op
   fails at its first call, naming it */
static void test_op_table(void) {
    const sdl_backend *cpu = sdl_get_backend(SDL_CPU);
    for (int op = 1; op < SDL_OP_COUNT; op++) {
        const char *name = sdl_op_name((sdl_op)op);
        CHECK(name && strcmp(name, "none") && cpu->forward[op] && cpu->backward[op], "op %d (%s) has CPU kernels", op, name);
        for (int k = 1; k < op; k++) CHECK(strcmp(name, sdl_op_name((sdl_op)k)), "ops %d and %d are both %s", k, op, name);
    }
    CHECK(!strcmp(sdl_op_name(SDL_OP_NONE), "none") && !strcmp(sdl_op_name(SDL_OP_COUNT), "none"), "out of range");
    sdl_backend be = *cpu; /* a "CUDA" backend on host memory, without exp */
    be.name = "partial";
    be.arena_alloc = sdl_arena_alloc;
    be.forward[SDL_OP_EXP] = NULL;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_tensor *x = sdl_arena_tensor_on(sdl_shape1(4), SDL_F32, SDL_CUDA);
    CHECK(x && sdl_sin(x), "sin runs: %s", sdl_last_error());
    CHECK(!sdl_exp(x) && sdl_last_result() == SDL_ERR_DEVICE && !strcmp(sdl_last_error(), "exp has no CUDA kernel"), "%s", sdl_last_error());
    CHECK(!strcmp(sdl_optim_name(SDL_OPTIM_ADAMW), "adamw") && !strcmp(sdl_optim_name(SDL_OPTIM_DEFAULT), "sgd") &&
          !sdl_optim_name(SDL_OPTIM_COUNT), "optimizer names");
}

/* ---- index helpers for the double references ------------------------------------------ */
static void unravel(int64_t i, const int64_t *shape, int nd, int64_t *c) {
    for (int d = nd - 1; d >= 0; d--) { c[d] = i % shape[d]; i /= shape[d]; }
}
static int64_t ravel(const int64_t *c, const int64_t *shape, int nd) {
    int64_t g = 0;
    for (int d = 0; d < nd; d++) g = g * shape[d] + c[d];
    return g;
}
/* the element of x (shape xs, nx dims, right-aligned) that broadcasts to out coords c */
static int64_t bidx(const int64_t *c, int nd, const int64_t *xs, int nx) {
    int64_t g = 0;
    for (int d = 0; d < nx; d++) {
        int64_t cd = c[d + nd - nx];
        g = g * xs[d] + (xs[d] == 1 ? 0 : cd);
    }
    return g;
}

/* ---- binary ops with broadcasting on both sides; a arrives through a permute (PyTorch's
   non-contiguous case): a0 (1, 4, 3) -> a = permute(a0, 2, 0, 1) (3, 1, 4);  b (2, 1);
   out (3, 2, 4) */
typedef struct bin_case { const char *name; sdl_tensor *(*f)(sdl_tensor *, sdl_tensor *); int op; } bin_case;
static double bin_ref1(int op, double a, double b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return a > b ? a : b;
    default: return a < b ? a : b;
    }
}
static const int perm_a[3] = {2, 0, 1};
static sdl_tensor *bin_f(sdl_tensor **in, void *ctx) {
    const bin_case *c = (const bin_case *)ctx;
    return c->f(sdl_permute(in[0], perm_a), in[1]);
}
static void bin_ref(double **in, double *out, void *ctx) {
    const bin_case *bc = (const bin_case *)ctx;
    const int64_t os[3] = {3, 2, 4}, as[3] = {3, 1, 4}, a0s[3] = {1, 4, 3}, bs[2] = {2, 1};
    for (int64_t i = 0; i < 24; i++) {
        int64_t c[3], ca[3], c0[3];
        unravel(i, os, 3, c);
        unravel(bidx(c, 3, as, 3), as, 3, ca);
        c0[2] = ca[0]; c0[0] = ca[1]; c0[1] = ca[2]; /* a[c] = a0[c[1], c[2], c[0]] */
        out[i] = bin_ref1(bc->op, in[0][ravel(c0, a0s, 3)], in[1][bidx(c, 3, bs, 2)]);
    }
}
static void test_binary_broadcast(void) {
    static const bin_case cases[] = {{"add", sdl_add, 0}, {"sub", sdl_sub, 1}, {"mul", sdl_mul, 2},
                                     {"div", sdl_div, 3}, {"maximum", sdl_maximum, 4}, {"minimum", sdl_minimum, 5}};
    for (int k = 0; k < 6; k++) {
        gc_case c = {cases[k].name, 2, {sdl_shape3(1, 4, 3), sdl_shape2(2, 1)}, {false, false}, 0.5f, 2.0f, bin_f, bin_ref, (void *)&cases[k], 0};
        CHECK(gradcheck(&c), "%s", cases[k].name);
    }
    sdl_tensor *a = sdl_arena_tensor(sdl_shape2(2, 3), SDL_F32), *b = sdl_arena_tensor(sdl_shape2(4, 1), SDL_F32);
    CHECK(!sdl_sub(a, b) && strstr(sdl_last_error(), "sub: shapes do not broadcast: (2, 3) and (4, 1)"), "%s", sdl_last_error());
    sdl_tensor *x = sdl_tensor_new(sdl_shape1(3), SDL_F32);
    sdl_tensor_requires_grad(x);
    for (int i = 0; i < 3; i++) sdl_f32(x)[i] = (float)i;
    sdl_tensor *y = sdl_maximum(x, sdl_scalar(1.0f)); /* a tie at 1 sends half the gradient */
    CHECK(y && sdl_backward(sdl_sum(y)) == SDL_OK && x->grad[0] == 0 && x->grad[1] == 0.5f && x->grad[2] == 1, "ties");
    sdl_tensor *e = sdl_ge(x, sdl_scalar(1.0f)), *l = sdl_lt(x, sdl_scalar(1.0f));
    CHECK(e && l && !e->requires_grad && sdl_f32(e)[0] == 0 && sdl_f32(e)[1] == 1 && sdl_f32(l)[0] == 1 && sdl_f32(l)[2] == 0, "comparisons");
    sdl_tensor_free(x);
}

/* ---- where and masked_fill: cond (3, 1) from a comparison, a (3, 4), b (4) */
static sdl_tensor *where_f(sdl_tensor **in, void *ctx) {
    (void)ctx;
    sdl_tensor *cond = sdl_gt(in[0], sdl_scalar(0.0f));
    return sdl_add(sdl_where(cond, in[1], in[2]), sdl_masked_fill(in[1], sdl_lt(in[2], sdl_scalar(0.0f)), 2.0f));
}
static void where_ref(double **in, double *out, void *ctx) {
    (void)ctx;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 4; j++)
            out[r * 4 + j] = (in[0][r] > 0 ? in[1][r * 4 + j] : in[2][j]) + (in[2][j] < 0 ? 2.0 : in[1][r * 4 + j]);
}
static void test_where(void) {
    gc_case c = {"where", 3, {sdl_shape2(3, 1), sdl_shape2(3, 4), sdl_shape1(4)}, {true, false, false}, -1, 1, where_f, where_ref, NULL, 0};
    CHECK(gradcheck(&c), "where / masked_fill");
}

/* ---- reductions of x (3, 4, 5), which arrives as a strided slice of (3, 8, 5) */
typedef struct red_case { const char *name; int op, ndims, dims[2]; bool keepdim; int64_t out; } red_case;
static sdl_tensor *red_f(sdl_tensor **in, void *ctx) {
    const red_case *c = (const red_case *)ctx;
    sdl_tensor *x = sdl_slice(in[0], 1, 1, 8, 2); /* rows 1, 3, 5, 7 */
    switch (c->op) {
    case 0: return sdl_sum_dims(x, c->ndims, c->dims, c->keepdim);
    case 1: return sdl_mean_dims(x, c->ndims, c->dims, c->keepdim);
    case 2: return sdl_logsumexp(x, c->ndims, c->dims, c->keepdim);
    case 3: return sdl_var_dims(x, c->ndims, c->dims, 1, c->keepdim);
    case 4: return sdl_max_dim(x, c->dims[0], c->keepdim, NULL);
    case 5: return sdl_softmax_dim(x, c->dims[0]);
    default: return sdl_log_softmax_dim(x, c->dims[0]);
    }
}
static void red_ref(double **in, double *out, void *ctx) {
    const red_case *c = (const red_case *)ctx;
    const int64_t xs[3] = {3, 4, 5};
    double x[60];
    for (int64_t i = 0; i < 60; i++) {
        int64_t k[3];
        unravel(i, xs, 3, k);
        x[i] = in[0][(k[0] * 8 + 1 + 2 * k[1]) * 5 + k[2]];
    }
    if (c->op >= 5) { /* softmax over dims[0]: the row through each element */
        int d = (c->dims[0] + 3) % 3;
        for (int64_t i = 0; i < 60; i++) {
            int64_t k[3], kk[3];
            unravel(i, xs, 3, k);
            double m = -INFINITY, s = 0;
            memcpy(kk, k, sizeof k);
            for (kk[d] = 0; kk[d] < xs[d]; kk[d]++) m = fmax(m, x[ravel(kk, xs, 3)]);
            for (kk[d] = 0; kk[d] < xs[d]; kk[d]++) s += exp(x[ravel(kk, xs, 3)] - m);
            out[i] = c->op == 5 ? exp(x[i] - m) / s : x[i] - m - log(s);
        }
        return;
    }
    unsigned set = c->ndims ? 0u : 7u;
    for (int i = 0; i < c->ndims; i++) set |= 1u << ((c->dims[i] + 3) % 3);
    for (int64_t o = 0; o < c->out; o++) { /* the elements of x that reduce into o */
        double v[60], s = 0, m = -INFINITY, var = 0;
        int L = 0;
        for (int64_t i = 0; i < 60; i++) {
            int64_t k[3], oi = 0;
            unravel(i, xs, 3, k);
            for (int d = 0; d < 3; d++)
                if (!(set & (1u << d))) oi = oi * xs[d] + k[d];
            if (oi == o) v[L++] = x[i];
        }
        for (int j = 0; j < L; j++) { s += v[j]; m = fmax(m, v[j]); }
        for (int j = 0; j < L; j++) var += (v[j] - s / L) * (v[j] - s / L);
        double lse = 0;
        for (int j = 0; j < L; j++) lse += exp(v[j] - m);
        out[o] = c->op == 0 ? s : c->op == 1 ? s / L : c->op == 2 ? m + log(lse) : c->op == 3 ? var / (L - 1) : m;
    }
}
static void test_reductions(void) {
    static const red_case cases[] = {
        {"sum dims 0, 2 keepdim", 0, 2, {0, 2}, true, 4}, {"mean dim 1", 1, 1, {1, 0}, false, 15},
        {"logsumexp dim -1", 2, 1, {-1, 0}, false, 12},   {"var dims 0, 1", 3, 2, {0, 1}, false, 5},
        {"max dim 1", 4, 1, {1, 0}, true, 15},            {"sum all", 0, 0, {0, 0}, false, 1},
        {"softmax dim 0", 5, 1, {0, 0}, false, 60},       {"log_softmax dim 1", 6, 1, {1, 0}, false, 60},
        {"softmax dim -1", 5, 1, {-1, 0}, false, 60},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gc_case c = {cases[k].name, 1, {sdl_shape3(3, 8, 5)}, {false}, -1, 1, red_f, red_ref, (void *)&cases[k], 0};
        CHECK(gradcheck(&c), "%s", cases[k].name);
    }
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(2, 3), SDL_F32), *idx = NULL;
    float v[6] = {1, 5, 5, -1, -2, -3};
    memcpy(x->data, v, sizeof v);
    sdl_tensor *m = sdl_max_dim(x, 1, false, &idx);
    CHECK(m && idx && idx->dtype == SDL_I32 && sdl_i32(idx)[0] == 1 && sdl_i32(idx)[1] == 0 && sdl_f32(m)[0] == 5, "max/argmax: first of equals");
    sdl_tensor *k = sdl_sum_dims(x, 1, (const int[]){0}, true);
    CHECK(k && k->ndim == 2 && k->shape[0] == 1 && k->shape[1] == 3, "keepdim shape");
    CHECK(!sdl_sum_dims(x, 2, (const int[]){1, -1}, false) && strstr(sdl_last_error(), "twice"), "%s", sdl_last_error());
    CHECK(!sdl_mean_dims(x, 1, (const int[]){2}, false) && strstr(sdl_last_error(), "dim 2 out of range"), "%s", sdl_last_error());
}

/* ---- shape and index ops on x (2, 3, 4) (and a second, third input where the op has one) */
static const int perm_201[3] = {2, 0, 1};
static int32_t sel_idx[3] = {3, 0, 3};
static int32_t gat_idx[16] = {0, 2, 1, 1, 2, 2, 0, 1, 1, 0, 0, 2, 2, 1, 2, 0}; /* (2, 2, 4) in [0, 3) */
static sdl_tensor *idx_tensor(int32_t *v, sdl_shape s) {
    sdl_tensor *t = sdl_arena_tensor(s, SDL_I32);
    if (t) memcpy(t->data, v, (size_t)t->numel * sizeof(int32_t));
    return t;
}
static sdl_tensor *shape_f(sdl_tensor **in, void *ctx) {
    sdl_tensor *x = in[0], *p[4];
    switch ((int)(intptr_t)ctx) {
    case 0: return sdl_permute(x, perm_201);
    case 1: return sdl_transpose(x, 2, 0);
    case 2: return sdl_slice(x, 2, 1, 4, 2);
    case 3: return sdl_slice(x, -1, -3, 100, 1);
    case 4: return sdl_narrow(x, 1, 1, 2);
    case 5: return sdl_chunk(x, 2, 1, p, 4) == 2 ? sdl_cat(2, (sdl_tensor *[]){p[1], p[0]}, 1) : NULL;
    case 6: return sdl_split(x, 3, -1, p, 4) == 2 ? sdl_mul(p[1], sdl_narrow(p[0], 2, 0, 1)) : NULL;
    case 7: return sdl_cat(3, in, 1);
    case 8: return sdl_stack(2, (sdl_tensor *[]){x, x}, 1);
    case 9: return sdl_index_select(x, 2, idx_tensor(sel_idx, sdl_shape1(3)));
    case 10: return sdl_gather(x, 1, idx_tensor(gat_idx, sdl_shape3(2, 2, 4)));
    case 11: return sdl_scatter_add(x, 1, idx_tensor(gat_idx, sdl_shape3(2, 2, 4)), in[1]);
    case 12: return sdl_expand(in[1], sdl_shape3(2, 3, 4));
    case 13: return sdl_pad(x, 4, (const int64_t[]){1, 2, 0, 1}, SDL_PAD_CONSTANT, 0.5f);
    default: return sdl_pad(x, 4, (const int64_t[]){2, 1, 1, 1}, SDL_PAD_REFLECT, 0.0f);
    }
}
static void shape_ref(double **in, double *out, void *ctx) {
    const double *x = in[0];
    const int64_t xs[3] = {2, 3, 4};
    int op = (int)(intptr_t)ctx, o = 0;
    int64_t c[3];
    for (int64_t i = 0; i < 24; i++) { /* the ops with one output element per x element */
        unravel(i, xs, 3, c);
        if (op == 0) out[(c[2] * 2 + c[0]) * 3 + c[1]] = x[i];
        if (op == 1) out[(c[2] * 3 + c[1]) * 2 + c[0]] = x[i];
        if (op == 2 && c[2] % 2 == 1) out[(c[0] * 3 + c[1]) * 2 + c[2] / 2] = x[i];
        if (op == 3 && c[2] >= 1) out[(c[0] * 3 + c[1]) * 3 + c[2] - 1] = x[i];
        if (op == 4 && c[1] >= 1) out[(c[0] * 2 + c[1] - 1) * 4 + c[2]] = x[i];
        if (op == 5) out[(c[0] * 3 + (c[1] == 2 ? 0 : c[1] + 1)) * 4 + c[2]] = x[i];
        if (op == 8) out[((c[0] * 2 + 0) * 3 + c[1]) * 4 + c[2]] = out[((c[0] * 2 + 1) * 3 + c[1]) * 4 + c[2]] = x[i];
        if (op == 11) out[i] = x[i];
        if (op == 12) out[i] = in[1][c[1]];
    }
    if (op == 6)
        for (int64_t a = 0; a < 2; a++)
            for (int64_t b = 0; b < 3; b++) out[a * 3 + b] = x[(a * 3 + b) * 4 + 3] * x[(a * 3 + b) * 4];
    if (op == 7)
        for (int64_t a = 0; a < 2; a++)
            for (int64_t r = 0; r < 6; r++)
                for (int64_t k = 0; k < 4; k++)
                    out[(a * 6 + r) * 4 + k] = r < 3 ? x[(a * 3 + r) * 4 + k] : r < 4 ? in[1][a * 4 + k] : in[2][(a * 2 + r - 4) * 4 + k];
    if (op == 9)
        for (int64_t a = 0; a < 6; a++)
            for (int k = 0; k < 3; k++) out[a * 3 + k] = x[a * 4 + sel_idx[k]];
    if (op == 10 || op == 11)
        for (int64_t a = 0; a < 2; a++)
            for (int64_t r = 0; r < 2; r++)
                for (int64_t k = 0; k < 4; k++) {
                    int64_t g = (a * 2 + r) * 4 + k, t = (a * 3 + gat_idx[g]) * 4 + k;
                    if (op == 10) out[g] = x[t];
                    else out[t] += in[1][(a * 3 + r) * 4 + k];
                }
    if (op >= 13) { /* pad: (2, 3, 4) -> constant (2, 4, 7) with (1, 2, 0, 1); reflect (2, 5, 7) with (2, 1, 1, 1) */
        int64_t H = op == 13 ? 4 : 5, top = op == 13 ? 0 : 1, left = op == 13 ? 1 : 2;
        for (int64_t a = 0; a < 2; a++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < 7; w++, o++) {
                    int64_t sh = h - top, sw = w - left;
                    if (op == 13) { out[o] = sh < 3 && sw >= 0 && sw < 4 ? x[(a * 3 + sh) * 4 + sw] : 0.5; continue; }
                    sh = sh < 0 ? -sh : sh > 2 ? 4 - sh : sh;
                    sw = sw < 0 ? -sw : sw > 3 ? 6 - sw : sw;
                    out[o] = x[(a * 3 + sh) * 4 + sw];
                }
    }
}
static void test_shape_ops(void) {
    static const char *names[15] = {"permute", "transpose 2 0", "slice step 2", "slice -3:", "narrow", "chunk + cat",
                                    "split", "cat 3", "stack x x", "index_select", "gather", "scatter_add", "expand",
                                    "pad constant", "pad reflect"};
    for (int k = 0; k < 15; k++) {
        gc_case c = {names[k], 1, {sdl_shape3(2, 3, 4)}, {false}, -1, 1, shape_f, shape_ref, (void *)(intptr_t)k, 0};
        if (k == 7) { c.nin = 3; c.shape[1] = sdl_shape3(2, 1, 4); c.shape[2] = sdl_shape3(2, 2, 4); }
        if (k == 11) { c.nin = 2; c.shape[1] = sdl_shape3(2, 3, 4); }
        if (k == 12) { c.shape[0] = sdl_shape1(1); c.nin = 2; c.nodiff[0] = true; c.shape[1] = sdl_shape2(3, 1); }
        CHECK(gradcheck(&c), "%s", names[k]);
    }
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(2, 3), SDL_F32), *p[2];
    CHECK(!sdl_index_select(x, 1, idx_tensor((int32_t[]){0, 3}, sdl_shape1(2))) && strstr(sdl_last_error(), "index_select: index[1] = 3 out of range [0, 3)"),
          "%s", sdl_last_error());
    CHECK(sdl_split(x, 1, 1, p, 2) == -1 && strstr(sdl_last_error(), "split: 3 pieces, room for 2"), "%s", sdl_last_error());
    CHECK(!sdl_pad(x, 2, (const int64_t[]){3, 0}, SDL_PAD_REFLECT, 0) && strstr(sdl_last_error(), "reflect"), "%s", sdl_last_error());
    CHECK(!sdl_expand(x, sdl_shape2(2, 4)) && strstr(sdl_last_error(), "expand"), "%s", sdl_last_error());
    CHECK(!sdl_permute(x, (const int[]){1, 1}) && strstr(sdl_last_error(), "twice"), "%s", sdl_last_error());
}

/* ---- matmul: batch broadcasting, the 2-D fast path, 1-D operands */
typedef struct mm_case { const char *name; sdl_shape a, b; int64_t out; } mm_case;
static sdl_tensor *mm_f(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_matmul(in[0], in[1]); }
static void mm_ref(double **in, double *out, void *ctx) {
    const mm_case *c = (const mm_case *)ctx;
    sdl_shape a = c->a, b = c->b;
    bool a1 = a.ndim == 1, b1 = b.ndim == 1;
    if (a1) a = sdl_shape2(1, a.d[0]);
    if (b1) b = sdl_shape2(b.d[0], 1);
    int64_t M = a.d[a.ndim - 2], K = a.d[a.ndim - 1], N = b.d[b.ndim - 1];
    int nb = (a.ndim > b.ndim ? a.ndim : b.ndim) - 2;
    int64_t batch[8], nbat = 1;
    for (int i = 0; i < nb; i++) {
        int ia = i - (nb - (a.ndim - 2)), ib = i - (nb - (b.ndim - 2));
        int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
        batch[i] = da > db ? da : db;
        nbat *= batch[i];
    }
    for (int64_t t = 0; t < nbat; t++) {
        int64_t cb[8];
        unravel(t, batch, nb, cb);
        int64_t oa = bidx(cb, nb, a.d, a.ndim - 2), ob = bidx(cb, nb, b.d, b.ndim - 2);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += in[0][(oa * M + m) * K + k] * in[1][(ob * K + k) * N + n];
                out[(t * M + m) * N + n] = s;
            }
    }
}
static void test_matmul(void) {
    static mm_case cases[5];
    cases[0] = (mm_case){"(2,1,3,4) @ (5,4,2)", sdl_shape4(2, 1, 3, 4), sdl_shape3(5, 4, 2), 60};
    cases[1] = (mm_case){"(2,3,4) @ (4,5)", sdl_shape3(2, 3, 4), sdl_shape2(4, 5), 30};
    cases[2] = (mm_case){"(4) @ (2,4,3)", sdl_shape1(4), sdl_shape3(2, 4, 3), 6};
    cases[3] = (mm_case){"(3,4) @ (4)", sdl_shape2(3, 4), sdl_shape1(4), 3};
    cases[4] = (mm_case){"(4) @ (4)", sdl_shape1(4), sdl_shape1(4), 1};
    for (int k = 0; k < 5; k++) {
        gc_case c = {cases[k].name, 2, {cases[k].a, cases[k].b}, {false, false}, -1, 1, mm_f, mm_ref, &cases[k], 0};
        CHECK(gradcheck(&c), "%s", cases[k].name);
    }
    sdl_tensor *a = sdl_arena_tensor(sdl_shape4(2, 1, 3, 4), SDL_F32), *b = sdl_arena_tensor(sdl_shape3(5, 4, 2), SDL_F32);
    sdl_tensor *y = sdl_matmul(a, b);
    CHECK(y && y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 3 && y->shape[3] == 2, "batch shape");
    CHECK(!sdl_matmul(a, sdl_arena_tensor(sdl_shape2(3, 2), SDL_F32)) && strstr(sdl_last_error(), "matmul: inner dims differ"), "%s", sdl_last_error());
}

/* ---- an LSTM cell from the general ops only (PyTorch's nn.LSTMCell gate order i, f, g, o):
   gates = x W + h U + b;  c' = sigmoid(f) c + sigmoid(i) tanh(g);  h' = sigmoid(o) tanh(c') */
static sdl_tensor *lstm_cell(void *user, int nin, sdl_tensor *const *in) {
    (void)user; (void)nin;
    sdl_tensor *x = in[0], *h = in[1], *c = in[2], *W = in[3], *U = in[4], *b = in[5], *g[4];
    sdl_tensor *gates = sdl_add(sdl_add(sdl_matmul(x, W), sdl_matmul(h, U)), b);
    if (sdl_chunk(gates, 4, 1, g, 4) != 4) return NULL;
    sdl_tensor *c2 = sdl_add(sdl_mul(sdl_sigmoid(g[1]), c), sdl_mul(sdl_sigmoid(g[0]), sdl_tanh(g[2])));
    sdl_tensor *h2 = sdl_mul(sdl_sigmoid(g[3]), sdl_tanh(c2));
    return sdl_stack(2, (sdl_tensor *[]){h2, c2}, 0);
}
static void test_lstm_cell_gradcheck(void) {
    const int B = 2, I = 3, H = 4;
    sdl_shape s[6] = {sdl_shape2(B, I), sdl_shape2(B, H), sdl_shape2(B, H), sdl_shape2(I, 4 * H), sdl_shape2(H, 4 * H), sdl_shape1(4 * H)};
    sdl_tensor *in[6];
    for (int i = 0; i < 6; i++) {
        in[i] = sdl_tensor_new(s[i], SDL_F32);
        sdl_tensor_uniform(in[i], -1, 1);
        sdl_tensor_requires_grad(in[i]);
    }
    double err = 0;
    CHECK(sdl_gradcheck(lstm_cell, NULL, 6, in, NULL, &err), "LSTM cell (max err %g): %s", err, sdl_last_error());
    printf("  lstm cell: max |backward - finite difference| %.2g\n", err);
    for (int i = 0; i < 6; i++) sdl_tensor_free(in[i]);
}

int main(void) {
    RUN(test_shape_ops);
    RUN(test_matmul);
    RUN(test_lstm_cell_gradcheck);
    RUN(test_binary_broadcast);
    RUN(test_where);
    RUN(test_reductions);
    RUN(test_op_table);
    RUN(test_unary);
    return sdl_test_finish();
}
