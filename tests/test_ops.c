/* test_ops.c - norms, dropout, embedding, activations, softmax, concat/transpose, attention,
   nll and bce losses, and their layers. Every backward is checked with gradcheck() against a
   plain double-precision forward written here. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define T_PI 3.14159265358979323846

/* sizes shared by a case's op and its reference */
typedef struct dims { int64_t a, b, c, d; float s; sdl_tensor *t0, *t1, *t2; uint64_t seed, stream; } dims;

/* ---- batch norm: x (N, C, S) in double, training (batch stats) or eval (running stats) ---- */
typedef struct bn_ctx { int64_t N, C, S; bool training, affine; sdl_tensor *rm, *rv; } bn_ctx;
static sdl_tensor *f_bn(sdl_tensor **in, void *ctx) {
    bn_ctx *c = (bn_ctx *)ctx;
    return sdl_batch_norm(in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, c->rm, c->rv, c->training, 0.1f, 1e-5f);
}
static void r_bn(double **in, double *out, void *ctx) {
    bn_ctx *c = (bn_ctx *)ctx;
    int64_t N = c->N, C = c->C, S = c->S;
    for (int64_t ch = 0; ch < C; ch++) {
        double mu = 0, var = 0;
        if (c->training) {
            for (int64_t i = 0; i < N; i++) for (int64_t j = 0; j < S; j++) mu += in[0][(i * C + ch) * S + j];
            mu /= (double)(N * S);
            for (int64_t i = 0; i < N; i++) for (int64_t j = 0; j < S; j++) {
                double d = in[0][(i * C + ch) * S + j] - mu;
                var += d * d;
            }
            var /= (double)(N * S);
        } else {
            mu = sdl_f32(c->rm)[ch];
            var = sdl_f32(c->rv)[ch];
        }
        double g = c->affine ? in[1][ch] : 1.0, b = c->affine ? in[2][ch] : 0.0;
        for (int64_t i = 0; i < N; i++) for (int64_t j = 0; j < S; j++) {
            int64_t k = (i * C + ch) * S + j;
            out[k] = g * (in[0][k] - mu) / sqrt(var + 1e-5) + b;
        }
    }
}
static void test_gradcheck_batch_norm(void) {
    bn_ctx c2 = {7, 5, 1, true, true, NULL, NULL};
    gc_case a = {"batch_norm train 2-d", 3, {sdl_shape2(7, 5), sdl_shape1(5), sdl_shape1(5)}, {0}, 0, 0, f_bn, r_bn, &c2, 0};
    CHECK(gradcheck(&a), "batch norm, training, (7, 5)");
    bn_ctx c4 = {3, 5, 42, true, true, NULL, NULL};
    c4.rm = sdl_tensor_new(sdl_shape1(5), SDL_F32);
    c4.rv = sdl_tensor_new(sdl_shape1(5), SDL_F32);
    sdl_tensor_fill(c4.rv, 1.0f);
    gc_case b = {"batch_norm train 4-d", 3, {sdl_shape4(3, 5, 7, 6), sdl_shape1(5), sdl_shape1(5)}, {0}, 0, 0, f_bn, r_bn, &c4, 0};
    CHECK(gradcheck(&b), "batch norm, training, (3, 5, 7, 6) with running stats");
    c4.affine = false;
    gc_case b2 = {"batch_norm train 4-d no affine", 1, {sdl_shape4(3, 5, 7, 6)}, {0}, 0, 0, f_bn, r_bn, &c4, 0};
    CHECK(gradcheck(&b2), "batch norm, training, no gamma/beta");
    c4.affine = true;
    c4.training = false;
    sdl_tensor_uniform(c4.rm, -0.5f, 0.5f);
    sdl_tensor_uniform(c4.rv, 0.2f, 2.0f);
    gc_case e = {"batch_norm eval 4-d", 3, {sdl_shape4(3, 5, 7, 6), sdl_shape1(5), sdl_shape1(5)}, {0}, 0, 0, f_bn, r_bn, &c4, 0};
    CHECK(gradcheck(&e), "batch norm, eval, (3, 5, 7, 6)");
    bn_ctx c2e = {7, 5, 1, false, true, c4.rm, c4.rv};
    gc_case e2 = {"batch_norm eval 2-d", 3, {sdl_shape2(7, 5), sdl_shape1(5), sdl_shape1(5)}, {0}, 0, 0, f_bn, r_bn, &c2e, 0};
    CHECK(gradcheck(&e2), "batch norm, eval, (7, 5)");
    sdl_tensor_free(c4.rm);
    sdl_tensor_free(c4.rv);
}

/* running = 0.9 running + 0.1 stat, with the unbiased variance, checked in double */
static void check_running_update(sdl_shape xs) {
    int64_t N = xs.d[0], C = xs.d[1], S = xs.ndim == 4 ? xs.d[2] * xs.d[3] : 1;
    sdl_tensor *x = sdl_tensor_new(xs, SDL_F32), *rm = sdl_tensor_new(sdl_shape1(C), SDL_F32), *rv = sdl_tensor_new(sdl_shape1(C), SDL_F32);
    sdl_tensor_uniform(x, -2.0f, 3.0f);
    sdl_tensor_uniform(rm, -1.0f, 1.0f);
    sdl_tensor_uniform(rv, 0.5f, 1.5f);
    double *rm0 = (double *)malloc(sizeof(double) * (size_t)C), *rv0 = (double *)malloc(sizeof(double) * (size_t)C);
    for (int64_t c = 0; c < C; c++) { rm0[c] = sdl_f32(rm)[c]; rv0[c] = sdl_f32(rv)[c]; }
    sdl_tensor *y = sdl_batch_norm(x, NULL, NULL, rm, rv, true, 0.1f, 1e-5f);
    CHECK(y != NULL, "batch norm: %s", sdl_last_error());
    double err = 0;
    for (int64_t c = 0; c < C; c++) {
        double mu = 0, v = 0;
        for (int64_t i = 0; i < N; i++) for (int64_t j = 0; j < S; j++) mu += sdl_f32(x)[(i * C + c) * S + j];
        mu /= (double)(N * S);
        for (int64_t i = 0; i < N; i++) for (int64_t j = 0; j < S; j++) {
            double d = sdl_f32(x)[(i * C + c) * S + j] - mu;
            v += d * d;
        }
        double em = 0.9 * rm0[c] + 0.1 * mu, ev = 0.9 * rv0[c] + 0.1 * v / (double)(N * S - 1);
        double e1 = fabs(sdl_f32(rm)[c] - em), e2 = fabs(sdl_f32(rv)[c] - ev);
        err = fmax(err, fmax(e1, e2));
    }
    CHECK(err < 1e-6, "running stats differ from the double reference by %g", err);
    /* eval: uses the running stats and leaves them alone */
    float m0 = sdl_f32(rm)[0], v0 = sdl_f32(rv)[0];
    sdl_tensor *ye = sdl_batch_norm(x, NULL, NULL, rm, rv, false, 0.1f, 1e-5f);
    CHECK(ye && sdl_f32(rm)[0] == m0 && sdl_f32(rv)[0] == v0, "eval leaves the running stats alone");
    double ee = 0;
    for (int64_t k = 0; ye && k < x->numel; k++) {
        int64_t c = (k / S) % C;
        double r = (sdl_f32(x)[k] - sdl_f32(rm)[c]) / sqrt((double)sdl_f32(rv)[c] + 1e-5);
        ee = fmax(ee, fabs(r - sdl_f32(ye)[k]));
    }
    CHECK(ee < 1e-5, "eval output differs from the running-stat formula by %g", ee);
    free(rm0);
    free(rv0);
    sdl_tensor_free(x);
    sdl_tensor_free(rm);
    sdl_tensor_free(rv);
}
static void test_batch_norm_running_stats(void) {
    check_running_update(sdl_shape2(9, 5));
    check_running_update(sdl_shape4(3, 5, 7, 6));
}

/* ---- layer norm over the last dim ---- */
typedef struct ln_ctx { int64_t R, D; bool affine; } ln_ctx;
static sdl_tensor *f_ln(sdl_tensor **in, void *ctx) {
    ln_ctx *c = (ln_ctx *)ctx;
    return sdl_layer_norm(in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, 1e-5f);
}
static void r_ln(double **in, double *out, void *ctx) {
    ln_ctx *c = (ln_ctx *)ctx;
    for (int64_t r = 0; r < c->R; r++) {
        const double *x = in[0] + r * c->D;
        double mu = 0, var = 0;
        for (int64_t d = 0; d < c->D; d++) mu += x[d] / (double)c->D;
        for (int64_t d = 0; d < c->D; d++) var += (x[d] - mu) * (x[d] - mu) / (double)c->D;
        for (int64_t d = 0; d < c->D; d++) {
            double xh = (x[d] - mu) / sqrt(var + 1e-5);
            out[r * c->D + d] = c->affine ? in[1][d] * xh + in[2][d] : xh;
        }
    }
}
static void test_gradcheck_layer_norm(void) {
    ln_ctx c = {15, 7, true};
    gc_case a = {"layer_norm", 3, {sdl_shape3(3, 5, 7), sdl_shape1(7), sdl_shape1(7)}, {0}, 0, 0, f_ln, r_ln, &c, 0};
    CHECK(gradcheck(&a), "layer norm (3, 5, 7)");
    ln_ctx c2 = {3, 11, false};
    gc_case b = {"layer_norm no affine", 1, {sdl_shape2(3, 11)}, {0}, 0, 0, f_ln, r_ln, &c2, 0};
    CHECK(gradcheck(&b), "layer norm without gamma/beta (3, 11)");
    ln_ctx c3 = {3, 70, true}; /* gamma/beta gradients go in blocks of 64 columns */
    gc_case d = {"layer_norm D=70", 3, {sdl_shape2(3, 70), sdl_shape1(70), sdl_shape1(70)}, {0}, 0, 0, f_ln, r_ln, &c3, 0};
    CHECK(gradcheck(&d), "layer norm (3, 70)");
}

/* ---- dropout: the reference rebuilds the mask the op drew, from its (seed, stream) ---- */
static sdl_tensor *f_dropout(sdl_tensor **in, void *ctx) {
    dims *c = (dims *)ctx;
    sdl_tensor *y = sdl_dropout(in[0], c->s, true);
    if (y && y->node) { c->seed = y->node->attr.dropout.seed; c->stream = y->node->attr.dropout.stream; }
    return y;
}
static void r_dropout(double **in, double *out, void *ctx) {
    dims *c = (dims *)ctx;
    for (int64_t i = 0; i < c->a; i++)
        out[i] = sdl_hash_uniform(c->seed, c->stream, (uint64_t)i) >= c->s ? in[0][i] / (1.0 - c->s) : 0.0;
}
static void test_gradcheck_dropout(void) {
    dims c = {105, 0, 0, 0, 0.3f, NULL, NULL, NULL, 0, 0};
    gc_case a = {"dropout", 1, {sdl_shape3(3, 5, 7)}, {0}, 0, 0, f_dropout, r_dropout, &c, 0};
    CHECK(gradcheck(&a), "dropout p=0.3 against its own mask");
}

static void test_dropout_mask(void) {
    enum { N = 100000 };
    float p = 0.3f, scale = 1.0f / (1.0f - p);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(100, N / 100), SDL_F32);
    sdl_tensor_uniform(x, 0.5f, 1.5f); /* never zero, so a zero output means dropped */
    sdl_tensor_requires_grad(x);
    sdl_manual_seed(5);
    sdl_tensor *y = sdl_dropout(x, p, true);
    CHECK(y && y != x, "dropout in training makes a new tensor");
    int64_t zeros = 0, bad = 0;
    for (int64_t i = 0; i < N; i++) {
        float v = sdl_f32(y)[i];
        zeros += v == 0.0f;
        bad += v != 0.0f && v != sdl_f32(x)[i] * scale;
    }
    CHECK(bad == 0, "%lld kept values are not x / (1 - p)", (long long)bad);
    CHECK(fabs((double)zeros / N - p) < 0.01, "dropped fraction %g, p %g", (double)zeros / N, p);
    /* backward uses the same mask */
    sdl_tensor *dy = sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32);
    sdl_tensor_uniform(dy, -1.0f, 1.0f);
    sdl_backward(sdl_sum(sdl_mul(y, dy)));
    int64_t gbad = 0;
    for (int64_t i = 0; i < N; i++) {
        float want = sdl_f32(y)[i] == 0.0f ? 0.0f : sdl_f32(dy)[i] * scale;
        gbad += x->grad[i] != want;
    }
    CHECK(gbad == 0, "%lld gradients do not follow the forward mask", (long long)gbad);
    /* the same seed gives the same mask, with any thread count; the next call a new one */
    sdl_set_num_threads(1);
    sdl_manual_seed(5);
    sdl_tensor *y1 = sdl_dropout(x, p, true), *y2 = sdl_dropout(x, p, true);
    sdl_set_num_threads(3);
    sdl_manual_seed(5);
    sdl_tensor *y3 = sdl_dropout(x, p, true);
    sdl_set_num_threads(0);
    CHECK(memcmp(y->data, y1->data, N * sizeof(float)) == 0, "same seed, same mask (1 thread)");
    CHECK(memcmp(y->data, y3->data, N * sizeof(float)) == 0, "same seed, same mask (3 threads)");
    int64_t diff = 0;
    for (int64_t i = 0; i < N; i++) diff += (sdl_f32(y1)[i] == 0.0f) != (sdl_f32(y2)[i] == 0.0f);
    CHECK(diff > N / 4, "two calls draw different masks (%lld differ)", (long long)diff);
    /* eval and p = 0: the identity; p = 1: all dropped; p outside [0, 1]: an error */
    CHECK(sdl_dropout(x, p, false) == x && sdl_dropout(x, 0.0f, true) == x, "eval / p=0 return x");
    sdl_tensor *y0 = sdl_dropout(x, 1.0f, true);
    int64_t nz = 0;
    for (int64_t i = 0; y0 && i < N; i++) nz += sdl_f32(y0)[i] != 0.0f;
    CHECK(y0 && nz == 0 && sdl_all_finite(y0), "p=1 drops everything");
    CHECK(sdl_dropout(x, 1.5f, true) == NULL && strstr(sdl_last_error(), "dropout"), "p=1.5: %s", sdl_last_error());
    sdl_tensor_free(x);
}

/* ---- embedding ---- */
static sdl_tensor *f_emb(sdl_tensor **in, void *ctx) { return sdl_embedding(((dims *)ctx)->t0, in[0]); }
static void r_emb(double **in, double *out, void *ctx) {
    dims *c = (dims *)ctx; /* t0: ids, b = D */
    for (int64_t r = 0; r < c->t0->numel; r++)
        for (int64_t d = 0; d < c->b; d++) out[r * c->b + d] = in[0][sdl_i32(c->t0)[r] * c->b + d];
}
static void test_gradcheck_embedding(void) {
    sdl_tensor *ids1 = test_ids(15, 7); /* 15 ids among 7 rows: some repeat */
    sdl_tensor *ids = sdl_tensor_new(sdl_shape2(3, 5), SDL_I32);
    memcpy(ids->data, ids1->data, 15 * sizeof(int32_t));
    sdl_i32(ids)[3] = sdl_i32(ids)[11] = 6; /* a repeat for sure */
    dims c = {7, 6, 0, 0, 0, ids, NULL, NULL, 0, 0};
    gc_case a = {"embedding", 1, {sdl_shape2(7, 6)}, {0}, 0, 0, f_emb, r_emb, &c, 0};
    CHECK(gradcheck(&a), "embedding (3, 5) ids into (7, 6)");
    sdl_tensor *table = sdl_arena_tensor(sdl_shape2(7, 6), SDL_F32);
    sdl_tensor *y = sdl_embedding(ids, table);
    CHECK(y && y->ndim == 3 && y->shape[0] == 3 && y->shape[1] == 5 && y->shape[2] == 6, "out shape (3, 5, 6)");
    sdl_i32(ids)[4] = 7;
    CHECK(!sdl_embedding(ids, table) && strstr(sdl_last_error(), "embedding") && strstr(sdl_last_error(), "id 7"), "id 7: %s", sdl_last_error());
    sdl_i32(ids)[4] = -2;
    CHECK(!sdl_embedding(ids, table) && strstr(sdl_last_error(), "id -2"), "id -2: %s", sdl_last_error());
    sdl_tensor_free(ids);
    sdl_tensor_free(ids1);
}

/* ---- activations, scale, softmax, log_softmax on (3, 5, 7) ---- */
typedef struct act_ctx { int which; float a; } act_ctx;
enum { A_LEAKY, A_GELU, A_TANH, A_SIGMOID, A_SILU, A_SCALE, A_SOFTMAX, A_LOGSOFTMAX, A_COUNT };
static const char *act_names[A_COUNT] = {"leaky_relu", "gelu", "tanh", "sigmoid", "silu", "scale", "softmax", "log_softmax"};
static sdl_tensor *f_act(sdl_tensor **in, void *ctx) {
    act_ctx *c = (act_ctx *)ctx;
    switch (c->which) {
    case A_LEAKY: return sdl_leaky_relu(in[0], c->a);
    case A_GELU: return sdl_gelu_tanh(in[0]); /* the reference is the tanh form; test_layers.c checks both */
    case A_TANH: return sdl_tanh(in[0]);
    case A_SIGMOID: return sdl_sigmoid(in[0]);
    case A_SILU: return sdl_silu(in[0]);
    case A_SCALE: return sdl_scale(in[0], c->a);
    case A_SOFTMAX: return sdl_softmax(in[0]);
    default: return sdl_log_softmax(in[0]);
    }
}
static void r_act(double **in, double *out, void *ctx) {
    act_ctx *c = (act_ctx *)ctx;
    const double *x = in[0];
    for (int r = 0; r < 15; r++) {
        double mx = -1e300, z = 0;
        for (int d = 0; d < 7; d++) mx = fmax(mx, x[r * 7 + d]);
        for (int d = 0; d < 7; d++) z += exp(x[r * 7 + d] - mx);
        for (int d = 0; d < 7; d++) {
            int i = r * 7 + d;
            double v = x[i], s = 1.0 / (1.0 + exp(-v));
            switch (c->which) {
            case A_LEAKY: out[i] = v > 0 ? v : c->a * v; break;
            case A_GELU: out[i] = 0.5 * v * (1.0 + tanh(sqrt(2.0 / T_PI) * (v + 0.044715 * v * v * v))); break;
            case A_TANH: out[i] = tanh(v); break;
            case A_SIGMOID: out[i] = s; break;
            case A_SILU: out[i] = v * s; break;
            case A_SCALE: out[i] = c->a * v; break;
            case A_SOFTMAX: out[i] = exp(v - mx) / z; break;
            default: out[i] = v - mx - log(z); break;
            }
        }
    }
}
static void test_gradcheck_activations(void) {
    for (int w = 0; w < A_COUNT; w++) {
        act_ctx c = {w, w == A_LEAKY ? 0.1f : -1.7f};
        gc_case a = {act_names[w], 1, {sdl_shape3(3, 5, 7)}, {0}, -3, 3, f_act, r_act, &c, 0};
        CHECK(gradcheck(&a), "%s", act_names[w]);
    }
}

/* large logits: softmax and sigmoid stay finite; gelu_tanh(1) is the tanh form's value */
static void test_activations_stable(void) {
    float v[4] = {1000.0f, -1000.0f, 0.0f, 88.0f};
    sdl_tensor *x = sdl_tensor_from(sdl_shape2(1, 4), v);
    sdl_tensor *sm = sdl_softmax(x), *ls = sdl_log_softmax(x), *sg = sdl_sigmoid(x), *si = sdl_silu(x);
    CHECK(sdl_all_finite(sm) && sdl_all_finite(ls) && sdl_all_finite(sg) && sdl_all_finite(si), "finite for +-1000");
    CHECK(sdl_f32(sm)[0] == 1.0f && sdl_f32(sm)[1] == 0.0f && sdl_f32(ls)[0] == 0.0f && sdl_f32(ls)[1] == -2000.0f,
          "softmax %g %g, log_softmax %g %g", sdl_f32(sm)[0], sdl_f32(sm)[1], sdl_f32(ls)[0], sdl_f32(ls)[1]);
    CHECK(sdl_f32(sg)[1] == 0.0f && sdl_f32(sg)[0] == 1.0f && sdl_f32(si)[1] == 0.0f, "sigmoid/silu saturate");
    float one = 1.0f;
    sdl_tensor *x1 = sdl_tensor_from(sdl_shape1(1), &one), *g = sdl_gelu_tanh(x1);
    double want = 0.5 * (1.0 + tanh(sqrt(2.0 / T_PI) * 1.044715));
    CHECK(fabs(sdl_item(g) - want) < 1e-6, "gelu_tanh(1) = %.7f, want %.7f", sdl_item(g), want);
    sdl_tensor_free(x1);
    sdl_tensor_free(x);
}

/* ---- concat and transpose: index arithmetic in the reference ---- */
typedef struct cat_ctx { int nd, dim; int64_t sa[4], sb[4]; } cat_ctx;
static sdl_tensor *f_cat(sdl_tensor **in, void *ctx) { return sdl_concat(in[0], in[1], ((cat_ctx *)ctx)->dim); }
static void r_cat(double **in, double *out, void *ctx) {
    cat_ctx *c = (cat_ctx *)ctx;
    int d = c->dim < 0 ? c->dim + c->nd : c->dim;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++) outer *= c->sa[i];
    for (int i = d + 1; i < c->nd; i++) inner *= c->sa[i];
    int64_t la = c->sa[d] * inner, lb = c->sb[d] * inner, k = 0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < la; i++) out[k++] = in[0][o * la + i];
        for (int64_t i = 0; i < lb; i++) out[k++] = in[1][o * lb + i];
    }
}
static void test_gradcheck_concat(void) {
    int dims_[4] = {0, 1, 2, -1};
    for (int t = 0; t < 4; t++) {
        cat_ctx c = {3, dims_[t], {3, 5, 7, 1}, {3, 5, 7, 1}};
        int d = dims_[t] < 0 ? 2 : dims_[t];
        c.sb[d] = 2 + d; /* b differs in dim d only */
        gc_case a = {"concat", 2, {sdl_shapen(3, c.sa), sdl_shapen(3, c.sb)}, {0}, 0, 0, f_cat, r_cat, &c, 0};
        CHECK(gradcheck(&a), "concat along dim %d", dims_[t]);
    }
    sdl_tensor *a = sdl_arena_tensor(sdl_shape3(3, 5, 7), SDL_F32), *b = sdl_arena_tensor(sdl_shape3(3, 4, 6), SDL_F32);
    CHECK(!sdl_concat(a, b, 1) && strstr(sdl_last_error(), "concat") && strstr(sdl_last_error(), "(3, 5, 7)") && strstr(sdl_last_error(), "(3, 4, 6)"),
          "mismatch names op and shapes: %s", sdl_last_error());
    CHECK(!sdl_concat(a, a, 3) && sdl_last_result() == SDL_ERR_SHAPE, "dim 3 of a 3-d tensor: %s", sdl_last_error());
}

typedef struct tr_ctx { int d0, d1; int64_t s[4]; } tr_ctx;
static sdl_tensor *f_tr(sdl_tensor **in, void *ctx) { return sdl_transpose(in[0], ((tr_ctx *)ctx)->d0, ((tr_ctx *)ctx)->d1); }
static void r_tr(double **in, double *out, void *ctx) { /* 4-d: out[idx with d0, d1 swapped] = in[idx] */
    tr_ctx *c = (tr_ctx *)ctx;
    int d0 = c->d0 < 0 ? c->d0 + 4 : c->d0, d1 = c->d1 < 0 ? c->d1 + 4 : c->d1;
    int64_t os[4] = {c->s[0], c->s[1], c->s[2], c->s[3]};
    os[d0] = c->s[d1];
    os[d1] = c->s[d0];
    int64_t idx[4];
    for (idx[0] = 0; idx[0] < c->s[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < c->s[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < c->s[2]; idx[2]++)
                for (idx[3] = 0; idx[3] < c->s[3]; idx[3]++) {
                    int64_t o[4] = {idx[0], idx[1], idx[2], idx[3]};
                    o[d0] = idx[d1];
                    o[d1] = idx[d0];
                    int64_t src = ((idx[0] * c->s[1] + idx[1]) * c->s[2] + idx[2]) * c->s[3] + idx[3];
                    int64_t dst = ((o[0] * os[1] + o[1]) * os[2] + o[2]) * os[3] + o[3];
                    out[dst] = in[0][src];
                }
}
static void test_gradcheck_transpose(void) {
    int pairs[6][2] = {{0, 2}, {1, 3}, {2, 1}, {-1, -2}, {0, 3}, {2, 2}};
    for (int t = 0; t < 6; t++) {
        tr_ctx c = {pairs[t][0], pairs[t][1], {3, 5, 7, 2}};
        gc_case a = {"transpose", 1, {sdl_shape4(3, 5, 7, 2)}, {0}, 0, 0, f_tr, r_tr, &c, 0};
        CHECK(gradcheck(&a), "transpose(%d, %d)", pairs[t][0], pairs[t][1]);
    }
    sdl_tensor *x = sdl_arena_tensor(sdl_shape4(3, 5, 7, 2), SDL_F32);
    sdl_tensor *y = sdl_transpose(x, 1, -1);
    CHECK(y && y->shape[1] == 2 && y->shape[3] == 5, "transpose(1, -1) shape");
    CHECK(!sdl_transpose(x, 0, 4) && strstr(sdl_last_error(), "transpose"), "bad dim: %s", sdl_last_error());
}

/* ---- attention: a double reference, then causality ---- */
typedef struct at_ctx { int64_t B, H, T, hd; } at_ctx;
static sdl_tensor *f_attn(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_attention(in[0], in[1], in[2]); }
static void r_attn(double **in, double *out, void *ctx) {
    at_ctx *c = (at_ctx *)ctx;
    int64_t T = c->T, hd = c->hd;
    double *p = (double *)malloc(sizeof(double) * (size_t)T);
    for (int64_t bh = 0; bh < c->B * c->H; bh++) {
        const double *q = in[0] + bh * T * hd, *k = in[1] + bh * T * hd, *v = in[2] + bh * T * hd;
        for (int64_t i = 0; i < T; i++) {
            double mx = -1e300, z = 0;
            for (int64_t j = 0; j <= i; j++) {
                double s = 0;
                for (int64_t d = 0; d < hd; d++) s += q[i * hd + d] * k[j * hd + d];
                p[j] = s / sqrt((double)hd);
                mx = fmax(mx, p[j]);
            }
            for (int64_t j = 0; j <= i; j++) { p[j] = exp(p[j] - mx); z += p[j]; }
            for (int64_t d = 0; d < hd; d++) {
                double y = 0;
                for (int64_t j = 0; j <= i; j++) y += p[j] / z * v[j * hd + d];
                out[(bh * T + i) * hd + d] = y;
            }
        }
    }
    free(p);
}
static void test_gradcheck_attention(void) {
    at_ctx c = {2, 3, 5, 4};
    sdl_shape s = sdl_shape4(2, 3, 5, 4);
    gc_case a = {"attention", 3, {s, s, s}, {0}, -2, 2, f_attn, r_attn, &c, 0};
    CHECK(gradcheck(&a), "attention (2, 3, 5, 4)");
    at_ctx c1 = {1, 1, 7, 3};
    sdl_shape s1 = sdl_shape4(1, 1, 7, 3);
    gc_case b = {"attention T=7 hd=3", 3, {s1, s1, s1}, {0}, -2, 2, f_attn, r_attn, &c1, 0};
    CHECK(gradcheck(&b), "attention (1, 1, 7, 3)");
}
static void test_attention_causal(void) {
    sdl_shape s = sdl_shape4(2, 3, 9, 4);
    sdl_tensor *q = sdl_tensor_new(s, SDL_F32), *k = sdl_tensor_new(s, SDL_F32), *v = sdl_tensor_new(s, SDL_F32);
    sdl_tensor_uniform(q, -1, 1);
    sdl_tensor_uniform(k, -1, 1);
    sdl_tensor_uniform(v, -1, 1);
    sdl_tensor *y0 = sdl_attention(q, k, v);
    int64_t T = 9, hd = 4, j = 5;
    for (int64_t bh = 0; bh < 6; bh++) /* change key and value at position j in every head */
        for (int64_t d = 0; d < hd; d++) {
            sdl_f32(k)[(bh * T + j) * hd + d] += 0.5f;
            sdl_f32(v)[(bh * T + j) * hd + d] -= 0.7f;
        }
    sdl_tensor *y1 = sdl_attention(q, k, v);
    int64_t before_changed = 0, after_changed = 0;
    for (int64_t bh = 0; bh < 6; bh++)
        for (int64_t i = 0; i < T; i++)
            for (int64_t d = 0; d < hd; d++) {
                bool ch = sdl_f32(y0)[(bh * T + i) * hd + d] != sdl_f32(y1)[(bh * T + i) * hd + d];
                if (i < j) before_changed += ch; else after_changed += ch;
            }
    CHECK(before_changed == 0, "%lld outputs before position %lld changed", (long long)before_changed, (long long)j);
    CHECK(after_changed == 6 * (T - j) * hd, "outputs at and after %lld changed: %lld", (long long)j, (long long)after_changed);
    sdl_tensor *bad = sdl_tensor_new(sdl_shape4(2, 3, 8, 4), SDL_F32);
    CHECK(!sdl_attention(q, bad, v) && strstr(sdl_last_error(), "attention") && strstr(sdl_last_error(), "(2, 3, 8, 4)"), "%s", sdl_last_error());
    sdl_tensor_free(bad);
    sdl_tensor_free(q);
    sdl_tensor_free(k);
    sdl_tensor_free(v);
}

/* ---- losses ---- */
static sdl_tensor *f_nll(sdl_tensor **in, void *ctx) { return sdl_nll_loss(in[0], ((dims *)ctx)->t0); }
static void r_nll(double **in, double *out, void *ctx) {
    dims *c = (dims *)ctx;
    for (int64_t b = 0; b < c->a; b++) out[0] -= in[0][b * c->b + sdl_i32(c->t0)[b]] / (double)c->a;
}
static sdl_tensor *f_bce(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_bce_with_logits(in[0], in[1]); }
static void r_bce(double **in, double *out, void *ctx) {
    dims *c = (dims *)ctx;
    for (int64_t i = 0; i < c->a; i++) {
        double x = in[0][i], t = in[1][i], s = 1.0 / (1.0 + exp(-x));
        out[0] += -(t * log(s) + (1 - t) * log(1 - s)) / (double)c->a;
    }
}
static sdl_tensor *f_nll_of_logsoftmax(sdl_tensor **in, void *ctx) { return sdl_nll_loss(sdl_log_softmax(in[0]), ((dims *)ctx)->t0); }
static void test_gradcheck_losses(void) {
    dims c = {9, 7, 0, 0, 0, test_ids(9, 7), NULL, NULL, 0, 0};
    gc_case a = {"nll_loss", 1, {sdl_shape2(9, 7)}, {0}, -3, 0, f_nll, r_nll, &c, 0};
    CHECK(gradcheck(&a), "nll");
    dims cb = {105, 0, 0, 0, 0, NULL, NULL, NULL, 0, 0};
    gc_case b = {"bce_with_logits", 2, {sdl_shape3(3, 5, 7), sdl_shape3(3, 5, 7)}, {false, false}, -3, 3, f_bce, r_bce, &cb, 0};
    CHECK(gradcheck(&b), "bce with logits, gradient to logits and targets");
    /* nll(log_softmax(x)) equals cross entropy */
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(9, 7), SDL_F32);
    sdl_tensor_uniform(x, -3, 3);
    sdl_tensor *l1 = f_nll_of_logsoftmax(&x, &c), *l2 = sdl_cross_entropy(x, c.t0, 0.0f);
    CHECK(l1 && l2 && fabsf(sdl_item(l1) - sdl_item(l2)) < 1e-5f, "nll(log_softmax) %g vs cross_entropy %g", sdl_item(l1), sdl_item(l2));
    sdl_i32(c.t0)[2] = 7;
    CHECK(!sdl_nll_loss(x, c.t0) && strstr(sdl_last_error(), "nll_loss") && strstr(sdl_last_error(), "target 7"), "%s", sdl_last_error());
    /* bce stays finite and exact for large logits */
    float xv[4] = {100.0f, -100.0f, 100.0f, -100.0f}, tv[4] = {0.0f, 1.0f, 1.0f, 0.0f};
    sdl_tensor *bx = sdl_tensor_from(sdl_shape1(4), xv), *bt = sdl_tensor_from(sdl_shape1(4), tv);
    sdl_tensor *bl = sdl_bce_with_logits(bx, bt);
    CHECK(bl && fabsf(sdl_item(bl) - 50.0f) < 1e-4f, "bce of +-100 logits: %g, want 50", sdl_item(bl));
    CHECK(!sdl_bce_with_logits(bx, x) && strstr(sdl_last_error(), "bce_with_logits"), "%s", sdl_last_error());
    sdl_tensor_free(bx);
    sdl_tensor_free(bt);
    sdl_tensor_free(x);
    sdl_tensor_free(c.t0);
}

/* ---- argument errors name the op and the shapes ---- */
static void test_errors(void) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape4(2, 3, 4, 4), SDL_F32), *g4 = sdl_arena_tensor(sdl_shape1(4), SDL_F32);
    sdl_tensor *g3 = sdl_arena_tensor(sdl_shape1(3), SDL_F32);
    CHECK(!sdl_batch_norm(x, g4, g4, NULL, NULL, true, 0.1f, 1e-5f) && strstr(sdl_last_error(), "batch_norm") && strstr(sdl_last_error(), "(4)"),
          "%s", sdl_last_error());
    CHECK(!sdl_batch_norm(x, g3, NULL, NULL, NULL, true, 0.1f, 1e-5f) && sdl_last_result() == SDL_ERR_ARG, "gamma without beta");
    CHECK(!sdl_batch_norm(x, g3, g3, NULL, NULL, false, 0.1f, 1e-5f) && strstr(sdl_last_error(), "eval"), "%s", sdl_last_error());
    sdl_tensor *x1 = sdl_arena_tensor(sdl_shape2(1, 3), SDL_F32);
    CHECK(!sdl_batch_norm(x1, g3, g3, NULL, NULL, true, 0.1f, 1e-5f) && strstr(sdl_last_error(), "more than one"), "%s", sdl_last_error());
    CHECK(!sdl_layer_norm(x, g3, g3, 1e-5f) && strstr(sdl_last_error(), "layer_norm") && strstr(sdl_last_error(), "(3)"), "%s", sdl_last_error());
    CHECK(sdl_layer_norm(x, g4, g4, 1e-5f) != NULL, "layer norm over the last dim 4");
    CHECK(sdl_softmax(NULL) == NULL && sdl_gelu(NULL) == NULL && sdl_embedding(NULL, x) == NULL, "NULL in, NULL out");
}

/* ---- the same results, bit for bit, with 1 and 3 threads (sizes that split the work) ---- */
static void run_ops(float *out, int64_t *pos) {
    sdl_manual_seed(77);
    sdl_tensor *x4 = sdl_tensor_new(sdl_shape4(16, 12, 10, 10), SDL_F32), *g = sdl_tensor_new(sdl_shape1(12), SDL_F32);
    sdl_tensor *b = sdl_tensor_new(sdl_shape1(12), SDL_F32), *xl = sdl_tensor_new(sdl_shape2(300, 100), SDL_F32);
    sdl_tensor *gl = sdl_tensor_new(sdl_shape1(100), SDL_F32), *bl = sdl_tensor_new(sdl_shape1(100), SDL_F32);
    sdl_tensor *q = sdl_tensor_new(sdl_shape4(2, 3, 40, 16), SDL_F32), *tab = sdl_tensor_new(sdl_shape2(50, 256), SDL_F32);
    sdl_tensor *xb = sdl_tensor_new(sdl_shape2(400, 300), SDL_F32); /* big enough to split: add, mul, cross entropy */
    sdl_tensor *ids = test_ids(600, 50), *targets = test_ids(400, 300);
    sdl_tensor *all[9] = {x4, g, b, xl, gl, bl, q, tab, xb};
    for (int i = 0; i < 9; i++) { sdl_tensor_uniform(all[i], -1, 1); sdl_tensor_requires_grad(all[i]); }
    sdl_tensor *outs[7];
    outs[0] = sdl_gelu(sdl_batch_norm(x4, g, b, NULL, NULL, true, 0.1f, 1e-5f));
    outs[1] = sdl_softmax(sdl_layer_norm(xl, gl, bl, 1e-5f));
    outs[2] = sdl_attention(q, sdl_tanh(q), sdl_transpose(sdl_transpose(q, 1, 2), 1, 2));
    outs[3] = sdl_log_softmax(sdl_embedding(ids, tab));
    outs[4] = sdl_dropout(sdl_concat(xl, xl, 0), 0.5f, true);
    outs[5] = sdl_silu(sdl_sigmoid(xl));
    outs[6] = sdl_mul(sdl_add(xb, sdl_tanh(xb)), xb);
    sdl_tensor *loss = sdl_cross_entropy(xb, targets, 0.1f);
    out[(*pos)++] = sdl_f32(loss)[0];
    for (int i = 0; i < 7; i++) {
        sdl_tensor *w = sdl_arena_tensor(sdl_tensor_shape(outs[i]), SDL_F32);
        sdl_tensor_uniform(w, -1, 1);
        sdl_tensor *l = sdl_sum(sdl_mul(outs[i], w));
        loss = sdl_add(loss, l);
        memcpy(out + *pos, outs[i]->data, (size_t)outs[i]->numel * sizeof(float));
        *pos += outs[i]->numel;
    }
    sdl_backward(loss);
    for (int i = 0; i < 9; i++) {
        memcpy(out + *pos, all[i]->grad, (size_t)all[i]->numel * sizeof(float));
        *pos += all[i]->numel;
        sdl_tensor_free(all[i]);
    }
    sdl_tensor_free(ids);
    sdl_tensor_free(targets);
    sdl_arena_reset();
}
static void test_deterministic_across_threads(void) {
    size_t cap = 2000000;
    float *a = (float *)malloc(cap * sizeof(float)), *b = (float *)malloc(cap * sizeof(float));
    int64_t na = 0, nb = 0;
    sdl_set_num_threads(1);
    run_ops(a, &na);
    sdl_set_num_threads(3);
    run_ops(b, &nb);
    sdl_set_num_threads(0);
    CHECK(na == nb && (size_t)na <= cap, "sizes %lld %lld", (long long)na, (long long)nb);
    int64_t diff = 0;
    for (int64_t i = 0; i < na; i++) diff += memcmp(a + i, b + i, sizeof(float)) != 0;
    CHECK(diff == 0, "%lld of %lld floats differ between 1 and 3 threads", (long long)diff, (long long)na);
    free(a);
    free(b);
}

/* ---- layers ---- */
static void test_layers(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *bn = sdl_batch_norm_layer(m, "bn1", 4), *ln = sdl_layer_norm_layer(m, "ln", 6);
    sdl_module *emb = sdl_embedding_layer(m, "wte", 100, 50);
    CHECK(bn && ln && emb, "layers made: %s", sdl_last_error());
    sdl_tensor *w = sdl_model_find(m, "bn1.weight"), *rm = sdl_model_find(m, "bn1.running_mean"), *rv = sdl_model_find(m, "bn1.running_var");
    CHECK(w && !w->decay && sdl_f32(w)[3] == 1.0f && sdl_model_find(m, "bn1.bias") && !sdl_model_find(m, "bn1.bias")->decay, "bn weight 1, no decay");
    CHECK(rm && rv && sdl_f32(rm)[2] == 0.0f && sdl_f32(rv)[2] == 1.0f && !rm->requires_grad && m->nbuffers == 2, "bn buffers 0 and 1");
    CHECK(sdl_model_find(m, "ln.weight") && sdl_f32(sdl_model_find(m, "ln.weight"))[5] == 1.0f && !sdl_model_find(m, "ln.weight")->decay, "ln weight 1");
    sdl_tensor *we = sdl_model_find(m, "wte.weight");
    double mean = 0, var = 0;
    for (int64_t i = 0; i < we->numel; i++) mean += sdl_f32(we)[i] / (double)we->numel;
    for (int64_t i = 0; i < we->numel; i++) var += (sdl_f32(we)[i] - mean) * (sdl_f32(we)[i] - mean) / (double)we->numel;
    CHECK(fabs(mean) < 0.05 && fabs(var - 1) < 0.1, "embedding init N(0, 1): mean %g var %g", mean, var);
    /* bn follows the model's mode; its buffers survive packing */
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(5, 4, 3, 3), SDL_F32);
    sdl_tensor_uniform(x, 1, 3);
    sdl_tensor *y = sdl_forward(bn, x);
    CHECK(y && m->packed && rm->data == m->buffer_data && sdl_f32(rm)[0] > 0.1f, "training moves running_mean: %g", sdl_f32(rm)[0]);
    float rm0 = sdl_f32(rm)[0];
    sdl_model_train(m, false);
    sdl_tensor *ye = sdl_forward(bn, x);
    CHECK(ye && sdl_f32(rm)[0] == rm0, "eval leaves running_mean alone");
    float want = (sdl_f32(x)[0] - sdl_f32(rm)[0]) / sqrtf(sdl_f32(rv)[0] + 1e-5f);
    CHECK(ye && fabsf(sdl_f32(ye)[0] - want) < 1e-5f, "eval output %g, want %g", sdl_f32(ye)[0], want);
    /* dropout: identity in eval, drops in training */
    sdl_module *dr = sdl_dropout_layer(m, 0.5f);
    CHECK(dr && sdl_forward(dr, x) == x, "dropout layer in eval is the identity");
    sdl_model_train(m, true);
    sdl_tensor *yd = sdl_forward(dr, x);
    CHECK(yd && yd != x, "dropout layer in training drops");
    CHECK(sdl_dropout_layer(m, -0.1f) == NULL, "p < 0 refused");
    /* activation layers match their ops */
    sdl_module *acts[5] = {sdl_leaky_relu_layer(m, 0.2f), sdl_gelu_layer(m), sdl_tanh_layer(m), sdl_sigmoid_layer(m), sdl_silu_layer(m)};
    sdl_tensor *xa = sdl_arena_tensor(sdl_shape2(3, 5), SDL_F32);
    sdl_tensor_uniform(xa, -2, 2);
    sdl_tensor *want_t[5] = {sdl_leaky_relu(xa, 0.2f), sdl_gelu(xa), sdl_tanh(xa), sdl_sigmoid(xa), sdl_silu(xa)};
    for (int i = 0; i < 5; i++) {
        sdl_tensor *ya = sdl_forward(acts[i], xa);
        CHECK(ya && memcmp(ya->data, want_t[i]->data, 15 * sizeof(float)) == 0, "%s layer", acts[i] ? acts[i]->kind : "?");
    }
    sdl_tensor_free(x);
    sdl_model_free(m);
}

/* a small net with every new layer learns a toy task, and a steady-state step allocates nothing */
static void test_layers_train(void) {
    enum { N = 64, V = 10 };
    sdl_model *m = sdl_model_new(9);
    sdl_module *emb = sdl_embedding_layer(m, "emb", V, 16);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_layer_norm_layer(m, "ln", 16));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 16, 32, true));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn", 32));
    sdl_seq_add(net, sdl_gelu_layer(m));
    sdl_seq_add(net, sdl_dropout_layer(m, 0.1f));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 32, V, true));
    sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    sdl_tensor *ids = test_ids(N, V), *y = sdl_tensor_new(sdl_shape1(N), SDL_I32);
    for (int i = 0; i < N; i++) sdl_i32(y)[i] = (sdl_i32(ids)[i] * 3 + 1) % V; /* a permutation to learn */
    float first = 0, last = 0;
    long before = 0;
    for (int step = 0; step < 60; step++) {
        if (step == 10) before = sdl_test_allocs;
        sdl_arena_reset();
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, sdl_forward(emb, ids)), y, 0.0f);
        if (step == 0) first = sdl_item(loss);
        last = sdl_item(loss);
        sdl_backward(loss);
        sdl_optim_step(opt);
        sdl_model_zero_grad(m);
    }
    CHECK(sdl_test_allocs == before, "%ld allocations in 50 steady-state steps", sdl_test_allocs - before);
    CHECK(last < 0.3f * first, "loss %g -> %g", first, last);
    sdl_model_train(m, false);
    sdl_arena_reset();
    sdl_tensor *logits = sdl_forward(net, sdl_forward(emb, ids));
    CHECK(sdl_count_correct(logits, y) >= N * 9 / 10, "eval accuracy %lld / %d", (long long)sdl_count_correct(logits, y), N);
    sdl_optim_free(opt);
    sdl_tensor_free(ids);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

int main(void) {
    RUN(test_gradcheck_batch_norm);
    RUN(test_batch_norm_running_stats);
    RUN(test_gradcheck_layer_norm);
    RUN(test_gradcheck_dropout);
    RUN(test_dropout_mask);
    RUN(test_gradcheck_embedding);
    RUN(test_gradcheck_activations);
    RUN(test_activations_stable);
    RUN(test_gradcheck_concat);
    RUN(test_gradcheck_transpose);
    RUN(test_gradcheck_attention);
    RUN(test_attention_causal);
    RUN(test_gradcheck_losses);
    RUN(test_errors);
    RUN(test_deterministic_across_threads);
    RUN(test_layers);
    RUN(test_layers_train);
    return sdl_test_finish();
}
