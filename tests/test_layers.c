/* test_layers.c - the layers of issue 16: GELU (exact and tanh), softmax/identity layers,
   embedding padding_idx, pooling with ceil_mode, RNN/LSTM/GRU. Each is gradchecked
   against a double reference, and matched against PyTorch 1.13 on the same weights
   (tests/data/layers/, made by tests/data/make_layer_fixtures.py). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* a fixture as a heap tensor, NULL (and a failed check) when missing */
static sdl_tensor *fx(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/layers/%s.npy", name);
    sdl_tensor *t = sdl_load_npy(path);
    CHECK(t != NULL, "fixture %s: %s", path, sdl_last_error());
    return t;
}

/* max |got - want| / (1 + max |want|) <= tol, printing the worst element when not */
static int close_to(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double err = 0.0, mx = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        mx = fmax(mx, fabs((double)want[i]));
        if (!(e <= err)) { err = e; worst = i; }
    }
    if (err <= tol * (1.0 + mx)) return 1;
    printf("  %s: [%lld] = %.8g, torch %.8g (max |torch| %g)\n", what, (long long)worst, (double)got[worst], (double)want[worst], mx);
    return 0;
}

/* y = f(x), checked against torch's out, and dx of sum(y * w) against torch's */
static void match_unary(const char *name, sdl_tensor *(*f)(sdl_tensor *), double tol) {
    char nm[64];
    sdl_tensor *x = fx(strcat(strcpy(nm, name), "_x")), *w = fx(strcat(strcpy(nm, name), "_w"));
    sdl_tensor *out = fx(strcat(strcpy(nm, name), "_out")), *dx = fx(strcat(strcpy(nm, name), "_dx"));
    if (x && w && out && dx) {
        sdl_tensor_requires_grad(x);
        sdl_tensor *y = f(x);
        CHECK(y && y->numel == out->numel, "%s: %s", name, sdl_last_error());
        if (y && y->numel == out->numel) {
            CHECK(close_to(name, sdl_f32(y), sdl_f32(out), y->numel, tol), "%s forward matches torch", name);
            sdl_backward(sdl_sum(sdl_mul(y, sdl_reshape(w, sdl_tensor_shape(y)))));
            CHECK(close_to(name, x->grad, sdl_f32(dx), x->numel, tol), "%s backward matches torch", name);
        }
    }
    sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(out); sdl_tensor_free(dx);
    sdl_arena_reset();
}

/* ---- GELU ---------------------------------------------------------------------------- */
#define T_SQRT1_2 0.70710678118654752440
static double ref_gelu(double x) { return 0.5 * x * erfc(-x * T_SQRT1_2); }
static double ref_gelu_grad(double x) { return 0.5 * erfc(-x * T_SQRT1_2) + x * exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846); }
/* x/2 (1 + tanh u) in long double, which tanh's cancellation still leaves ~1e-6 relative
   at x = -8 (1 + tanh u ~ 4e-22, long double's eps 1e-19) */
static double ref_gelu_tanh(double x) {
    long double c = sqrtl(2.0L / 3.14159265358979323846264L), X = x;
    return (double)(0.5L * X * (1.0L + tanhl(c * (X + 0.044715L * X * X * X))));
}
static double ref_gelu_tanh_grad(double x) {
    long double c = sqrtl(2.0L / 3.14159265358979323846264L), X = x, t = tanhl(c * (X + 0.044715L * X * X * X));
    return (double)(0.5L * (1.0L + t) + 0.5L * X * (1.0L - t * t) * c * (1.0L + 3.0L * 0.044715L * X * X));
}
static sdl_tensor *f_gelu(sdl_tensor **in, void *ctx) { return ctx ? sdl_gelu_tanh(in[0]) : sdl_gelu(in[0]); }
static void r_gelu(double **in, double *out, void *ctx) {
    for (int i = 0; i < 3 * 5 * 7; i++) out[i] = ctx ? ref_gelu_tanh(in[0][i]) : ref_gelu(in[0][i]);
}
static void test_gelu_gradcheck(void) {
    gc_case a = {"gelu", 1, {sdl_shape3(3, 5, 7)}, {0}, -4, 3, f_gelu, r_gelu, NULL, 0};
    CHECK(gradcheck(&a), "gelu (erf)");
    gc_case b = {"gelu_tanh", 1, {sdl_shape3(3, 5, 7)}, {0}, -4, 3, f_gelu, r_gelu, (void *)1, 0};
    CHECK(gradcheck(&b), "gelu (tanh)");
}

/* float32 relative accuracy in the negative tail, where 1 + erf and 1 + tanh cancel: the
   forward and the derivative within 2 float32 ulps of a reference without the cancellation
   (erfc; long double for the tanh form) */
static void test_gelu_tail(void) {
    enum { N = 481 };
    float xs[N];
    for (int i = 0; i < N; i++) xs[i] = -10.0f + 0.02f * (float)i; /* [-10, -0.4] */
    for (int form = 0; form < 2; form++) {
        sdl_tensor *x = sdl_tensor_from(sdl_shape1(N), xs);
        sdl_tensor_requires_grad(x);
        sdl_tensor *y = form ? sdl_gelu_tanh(x) : sdl_gelu(x);
        sdl_backward(sdl_sum(y));
        double worst = 0.0, worst_g = 0.0;
        for (int i = 0; i < N; i++) {
            double v = xs[i];
            if (form && v < -6.0) continue; /* past that the long double reference cancels too */
            double want = form ? ref_gelu_tanh(v) : ref_gelu(v), g = form ? ref_gelu_tanh_grad(v) : ref_gelu_grad(v);
            worst = fmax(worst, fabs(sdl_f32(y)[i] - want) / fabs(want));
            worst_g = fmax(worst_g, fabs(x->grad[i] - g) / fabs(g));
        }
        CHECK(worst < 2 * 1.2e-7 && worst_g < 2 * 1.2e-7, "%s: worst relative error %.3g (forward), %.3g (derivative) for x < 0",
              form ? "gelu_tanh" : "gelu", worst, worst_g);
        sdl_tensor_free(x);
        sdl_arena_reset();
    }
}

static sdl_tensor *u_gelu(sdl_tensor *x) { return sdl_gelu(x); }
static sdl_tensor *u_gelu_tanh(sdl_tensor *x) { return sdl_gelu_tanh(x); }
static void test_gelu_torch(void) {
    sdl_tensor *x = fx("gelu_x"), *w = fx("gelu_w"), *o = fx("gelu_out"), *d = fx("gelu_dx");
    sdl_tensor *wt = fx("gelu_tanh_w"), *ot = fx("gelu_tanh_out"), *dt = fx("gelu_tanh_dx");
    for (int form = 0; x && w && o && d && wt && ot && dt && form < 2; form++) {
        sdl_tensor *xx = sdl_tensor_from(sdl_tensor_shape(x), sdl_f32(x));
        sdl_tensor_requires_grad(xx);
        sdl_tensor *y = (form ? u_gelu_tanh : u_gelu)(xx);
        sdl_backward(sdl_sum(sdl_mul(y, form ? wt : w)));
        /* elementwise relative where torch's own double result is (1 + erf, 1 + tanh cancel
           below about -5); test_gelu_tail checks the rest */
        double worst = 0.0, worst_g = 0.0;
        for (int64_t i = 0; i < x->numel; i++) {
            if (sdl_f32(x)[i] < -5.0f) continue;
            float want = sdl_f32(form ? ot : o)[i], gw = sdl_f32(form ? dt : d)[i];
            worst = fmax(worst, fabs(sdl_f32(y)[i] - want) / (fabs(want) + 1e-30));
            worst_g = fmax(worst_g, fabs(xx->grad[i] - gw) / (fabs(gw) + 1e-30));
        }
        CHECK(worst < 1e-5 && worst_g < 1e-5, "%s matches torch on [-5, 5]: relative %.3g, grad %.3g", form ? "gelu_tanh" : "gelu", worst, worst_g);
        sdl_tensor_free(xx);
        sdl_arena_reset();
    }
    sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(o); sdl_tensor_free(d);
    sdl_tensor_free(wt); sdl_tensor_free(ot); sdl_tensor_free(dt);
}

/* ---- softmax / log_softmax / identity / gelu layers --------------------------------------- */
static void test_simple_layers(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(4, 9), SDL_F32);
    sdl_tensor_uniform(x, -3.0f, 3.0f);
    sdl_module *sm = sdl_softmax_layer(m), *ls = sdl_log_softmax_layer(m), *id = sdl_identity_layer(m);
    sdl_module *g = sdl_gelu_layer(m), *gt = sdl_gelu_tanh_layer(m);
    sdl_tensor *a = sdl_forward(sm, x), *b = sdl_softmax(x), *c = sdl_forward(ls, x), *d = sdl_log_softmax(x);
    sdl_tensor *e = sdl_forward(g, x), *f = sdl_gelu(x), *h = sdl_forward(gt, x), *k = sdl_gelu_tanh(x);
    CHECK(memcmp(a->data, b->data, 36 * 4) == 0 && memcmp(c->data, d->data, 36 * 4) == 0, "softmax/log_softmax layers");
    CHECK(memcmp(e->data, f->data, 36 * 4) == 0 && memcmp(h->data, k->data, 36 * 4) == 0, "gelu layers");
    CHECK(memcmp(e->data, h->data, 36 * 4) != 0, "the two gelu forms differ");
    CHECK(sdl_forward(id, x) == x, "identity returns x itself");
    CHECK(!strcmp(sm->kind, "softmax") && !strcmp(id->kind, "identity"), "kinds");
    sdl_tensor_free(x);
    sdl_arena_reset();
    sdl_model_free(m);
}

/* ---- embedding padding_idx ----------------------------------------------------------------- */
static void test_embedding_pad(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *e = sdl_embedding_pad_layer(m, "emb", 6, 4, -2); /* row 4 */
    CHECK(e && e->padding_idx == 4, "padding_idx -2 of 6 is row 4");
    int32_t idv[7] = {4, 1, 4, 0, 5, 1, 4};
    sdl_tensor *ids = sdl_tensor_new(sdl_shape1(7), SDL_I32);
    memcpy(ids->data, idv, sizeof idv);
    sdl_tensor *y = sdl_forward(e, ids);
    float zero[4] = {0};
    CHECK(y && memcmp(sdl_f32(y), zero, sizeof zero) == 0, "the padding row starts at zero");
    sdl_backward(sdl_sum(y));
    const float *g = e->weight->grad;
    int ok = 1;
    for (int d = 0; d < 4; d++) ok &= g[4 * 4 + d] == 0.0f && g[1 * 4 + d] == 2.0f && g[0 * 4 + d] == 1.0f && g[5 * 4 + d] == 1.0f;
    CHECK(ok, "no gradient to the padding row; others count their ids");
    CHECK(!sdl_embedding_pad_layer(m, "bad", 6, 4, 6) && strstr(sdl_last_error(), "padding_idx 6"), "%s", sdl_last_error());
    CHECK(!sdl_embedding_pad(ids, e->weight, -7) && strstr(sdl_last_error(), "padding_idx -7"), "%s", sdl_last_error());
    /* sdl_embedding itself still trains every row */
    sdl_model_zero_grad(m);
    sdl_backward(sdl_sum(sdl_embedding(ids, e->weight)));
    CHECK(e->weight->grad[16] == 3.0f, "plain embedding: row 4 gets 3, got %g", (double)e->weight->grad[16]);
    sdl_tensor_free(ids);
    sdl_arena_reset();
    sdl_model_free(m);
}

/* ---- pooling with ceil_mode ------------------------------------------------------------------ */
static int pool_k, pool_s, pool_p, pool_avg;
static sdl_tensor *u_pool(sdl_tensor *x) { return (pool_avg ? sdl_avg_pool2d_ceil : sdl_max_pool2d_ceil)(x, pool_k, pool_s, pool_p); }
static void test_pool_ceil(void) {
    struct { const char *name; int avg, k, s, p; } c[5] = {{"maxpool_ceil_a", 0, 3, 2, 1}, {"maxpool_ceil_b", 0, 2, 2, 0},
        {"avgpool_ceil_a", 1, 3, 2, 1}, {"avgpool_ceil_b", 1, 2, 2, 0}, {"avgpool_ceil_c", 1, 3, 3, 1}};
    for (int i = 0; i < 5; i++) {
        pool_avg = c[i].avg; pool_k = c[i].k; pool_s = c[i].s; pool_p = c[i].p;
        match_unary(c[i].name, u_pool, 1e-6);
    }
    /* the layer flag; ceil_mode where it changes nothing leaves the floor-mode numbers */
    sdl_model *m = sdl_model_new(1);
    sdl_module *mp = sdl_max_pool2d_layer(m, 2, 2);
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(1, 1, 5, 5), SDL_F32), *x4 = sdl_tensor_new(sdl_shape4(1, 1, 4, 4), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor_uniform(x4, -1, 1);
    CHECK(sdl_forward(mp, x)->shape[2] == 2, "floor mode: 5 -> 2");
    mp->ceil_mode = true;
    CHECK(sdl_forward(mp, x)->shape[2] == 3, "ceil mode: 5 -> 3");
    sdl_tensor *a = sdl_avg_pool2d(x4, 2, 2, 0), *b = sdl_avg_pool2d_ceil(x4, 2, 2, 0);
    CHECK(a->numel == 4 && b->numel == 4 && memcmp(a->data, b->data, 16) == 0, "even sizes: ceil = floor");
    sdl_tensor_free(x); sdl_tensor_free(x4);
    sdl_arena_reset();
    sdl_model_free(m);
}

/* ---- RNN, LSTM, GRU ------------------------------------------------------------------------
   the recurrence op itself against a double reference: xw (T, B, G H) time-major, w_hh, b_hh, s0 */
enum { RT = 3, RB = 2, RH = 3 };
typedef struct rnn_ctx { sdl_rnn_mode mode; int G; } rnn_ctx;
static sdl_tensor *f_rnn(sdl_tensor **in, void *ctx) {
    rnn_ctx *c = (rnn_ctx *)ctx;
    return sdl_test_rnn_scan(c->mode, in[0], in[1], in[2], in[3], false);
}
static double dsig(double x) { return 1.0 / (1.0 + exp(-x)); }
static void r_rnn(double **in, double *out, void *ctx) {
    rnn_ctx *c = (rnn_ctx *)ctx;
    const int G = c->G, GH = G * RH;
    double h[RB][RH], cs[RB][RH];
    for (int b = 0; b < RB; b++)
        for (int j = 0; j < RH; j++) { h[b][j] = in[3][b * RH + j]; cs[b][j] = c->mode == SDL_RNN_LSTM ? in[3][RB * RH + b * RH + j] : 0.0; }
    for (int t = 0; t < RT; t++) {
        double hn[RB][RH];
        for (int b = 0; b < RB; b++) {
            double q[4 * RH];
            const double *a = in[0] + (t * RB + b) * GH;
            for (int k = 0; k < GH; k++) {
                q[k] = in[2][k];
                for (int j = 0; j < RH; j++) q[k] += in[1][k * RH + j] * h[b][j];
            }
            for (int j = 0; j < RH; j++) {
                if (c->mode == SDL_RNN_LSTM) {
                    double i = dsig(a[j] + q[j]), f = dsig(a[RH + j] + q[RH + j]), g = tanh(a[2 * RH + j] + q[2 * RH + j]);
                    double o = dsig(a[3 * RH + j] + q[3 * RH + j]);
                    cs[b][j] = f * cs[b][j] + i * g;
                    hn[b][j] = o * tanh(cs[b][j]);
                } else if (c->mode == SDL_RNN_GRU) {
                    double r = dsig(a[j] + q[j]), z = dsig(a[RH + j] + q[RH + j]), n = tanh(a[2 * RH + j] + r * q[2 * RH + j]);
                    hn[b][j] = (1 - z) * n + z * h[b][j];
                } else {
                    hn[b][j] = tanh(a[j] + q[j]);
                }
            }
        }
        for (int b = 0; b < RB; b++)
            for (int j = 0; j < RH; j++) out[(t * RB + b) * RH + j] = h[b][j] = hn[b][j];
    }
    if (c->mode == SDL_RNN_LSTM)
        for (int b = 0; b < RB; b++)
            for (int j = 0; j < RH; j++) out[(RT * RB + b) * RH + j] = cs[b][j];
}
static void test_rnn_gradcheck(void) {
    const char *names[3] = {"rnn tanh", "lstm", "gru"};
    rnn_ctx cs[3] = {{SDL_RNN_TANH, 1}, {SDL_RNN_LSTM, 4}, {SDL_RNN_GRU, 3}};
    for (int k = 0; k < 3; k++) {
        int G = cs[k].G;
        gc_case a = {names[k], 4, {sdl_shape3(RT, RB, G * RH), sdl_shape2(G * RH, RH), sdl_shape1(G * RH), sdl_shape3(k == 1 ? 2 : 1, RB, RH)},
                     {0}, -1.5f, 1.5f, f_rnn, r_rnn, &cs[k], 0};
        CHECK(gradcheck(&a), "%s recurrence", names[k]);
    }
}

/* the layers against torch.nn.RNN / LSTM / GRU on the same weights: outputs, final states,
   and the gradients of every parameter, x, h0 and c0 */
static sdl_tensor *fx2(const char *c, const char *what) {
    char nm[96];
    snprintf(nm, sizeof nm, "%s_%s", c, what);
    return fx(nm);
}
static void match_rnn(const char *c, sdl_rnn_mode mode, bool batch_first, bool bias, int layers, bool state) {
    sdl_model *m = sdl_model_new(5);
    sdl_rnn_desc d = {mode, 3, 4, layers, !bias, batch_first, 0.0f};
    sdl_module *net = sdl_rnn_layer(m, "net", &d);
    CHECK(net != NULL, "%s: %s", c, sdl_last_error());
    if (!net) { sdl_model_free(m); return; }
    CHECK(m->nparams == layers * (bias ? 4 : 2), "%s: %d parameters", c, m->nparams);
    for (int i = 0; i < m->nparams; i++) { /* "net.weight_ih_l0" <- c_weight_ih_l0.npy */
        sdl_tensor *p = m->params[i], *v = fx2(c, p->name + 4);
        CHECK(v && v->numel == p->numel, "%s: %s has torch's shape", c, p->name);
        if (v && v->numel == p->numel) sdl_tensor_copy_from(p, sdl_f32(v));
        sdl_tensor_free(v);
    }
    sdl_tensor *x = fx2(c, "x"), *h0 = state ? fx2(c, "h0") : NULL, *c0 = state && mode == SDL_RNN_LSTM ? fx2(c, "c0") : NULL;
    sdl_tensor_requires_grad(x);
    if (h0) sdl_tensor_requires_grad(h0);
    if (c0) sdl_tensor_requires_grad(c0);
    sdl_tensor *hn = NULL, *cn = NULL, *y = sdl_rnn_forward(net, x, h0, c0, &hn, mode == SDL_RNN_LSTM ? &cn : NULL);
    CHECK(y && hn && (mode != SDL_RNN_LSTM || cn), "%s forward: %s", c, sdl_last_error());
    if (y && hn) {
        sdl_tensor *outs[3] = {y, hn, cn}, *loss = NULL, *ws[3] = {NULL, NULL, NULL};
        const char *sfx[3] = {"out", "hn", "cn"};
        for (int k = 0; k < 3 && outs[k]; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "w_%s", sfx[k]);
            sdl_tensor *want = fx2(c, sfx[k]), *w = ws[k] = fx2(c, nm);
            CHECK(want && outs[k]->numel == want->numel && close_to(sfx[k], sdl_f32(outs[k]), sdl_f32(want), want->numel, 2e-6),
                  "%s %s matches torch", c, sfx[k]);
            sdl_tensor *lk = sdl_sum(sdl_mul(outs[k], sdl_reshape(w, sdl_tensor_shape(outs[k]))));
            loss = loss ? sdl_add(loss, lk) : lk;
            sdl_tensor_free(want);
        }
        CHECK(sdl_backward(loss) == SDL_OK, "%s backward: %s", c, sdl_last_error());
        for (int k = 0; k < 3; k++) sdl_tensor_free(ws[k]); /* after backward: mul's reads them */
        sdl_tensor *dx = fx2(c, "dx");
        CHECK(dx && close_to("dx", x->grad, sdl_f32(dx), x->numel, 2e-6), "%s dx matches torch", c);
        sdl_tensor_free(dx);
        sdl_tensor *st[2] = {h0, c0};
        for (int k = 0; k < 2; k++) {
            if (!st[k]) continue;
            sdl_tensor *want = fx2(c, k ? "dc0" : "dh0");
            CHECK(want && close_to(k ? "dc0" : "dh0", st[k]->grad, sdl_f32(want), want->numel, 2e-6), "%s %s matches torch", c, k ? "dc0" : "dh0");
            sdl_tensor_free(want);
        }
        for (int i = 0; i < m->nparams; i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "d_%s", m->params[i]->name + 4);
            sdl_tensor *want = fx2(c, nm);
            CHECK(want && close_to(nm, m->params[i]->grad, sdl_f32(want), want->numel, 2e-6), "%s %s matches torch", c, nm);
            sdl_tensor_free(want);
        }
    }
    sdl_tensor_free(x); sdl_tensor_free(h0); sdl_tensor_free(c0);
    sdl_arena_reset();
    sdl_model_free(m);
}
static void test_rnn_torch(void) {
    match_rnn("rnn", SDL_RNN_TANH, false, true, 2, true);
    match_rnn("lstm", SDL_RNN_LSTM, true, true, 2, true);
    match_rnn("gru", SDL_RNN_GRU, false, true, 2, true);
    match_rnn("lstm1", SDL_RNN_LSTM, false, false, 1, false);
    match_rnn("gru_bf", SDL_RNN_GRU, true, true, 3, false);
}

/* dropout between layers: only while training, the same mask for the same seed; errors */
static void test_rnn_misc(void) {
    sdl_model *m = sdl_model_new(7);
    sdl_rnn_desc d = {SDL_RNN_LSTM, 3, 5, 2, false, true, 0.5f};
    sdl_module *net = sdl_rnn_layer(m, "lstm", &d);
    sdl_rnn_desc gd = {SDL_RNN_GRU, 3, 5, 2, false, true, 0.0f};
    sdl_module *gru = sdl_rnn_layer(m, "gru", &gd);
    CHECK(gru && strcmp(m->params[m->nparams - 1]->name, "gru.bias_hh_l1") == 0 && m->nparams == 16, "names: %s", m->params[m->nparams - 1]->name);
    sdl_tensor *x = sdl_tensor_new(sdl_shape3(2, 4, 3), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_model_train(m, false);
    sdl_tensor *e1 = sdl_forward(net, x);
    CHECK(e1 && e1->shape[0] == 2 && e1->shape[1] == 4 && e1->shape[2] == 5, "batch_first output (B, T, H)");
    sdl_model_train(m, true);
    sdl_manual_seed(1);
    sdl_tensor *t1 = sdl_forward(net, x);
    sdl_manual_seed(1);
    sdl_tensor *t2 = sdl_forward(net, x);
    CHECK(memcmp(t1->data, t2->data, 40 * 4) == 0 && memcmp(t1->data, e1->data, 40 * 4) != 0, "dropout: only in training, same seed same mask");
    sdl_model_train(m, false);
    sdl_set_grad_enabled(false); /* inference: no tape, the same numbers */
    sdl_tensor *hn = NULL, *cn = NULL, *e2 = sdl_rnn_forward(net, x, NULL, NULL, &hn, &cn);
    sdl_set_grad_enabled(true);
    CHECK(e2 && !e2->requires_grad && memcmp(e2->data, e1->data, 40 * 4) == 0 && hn && cn && hn->shape[0] == 2 && !cn->grad,
          "no-grad forward: %s", sdl_last_error());
    CHECK(e2 && hn && memcmp(sdl_f32(hn) + 10, sdl_f32(e2) + 15, 5 * 4) == 0, "h_n[1] of sample 0 is its last output");
    /* errors name the layer and the shapes */
    sdl_tensor *bad = sdl_tensor_new(sdl_shape3(2, 4, 7), SDL_F32), *h0 = sdl_tensor_new(sdl_shape3(1, 2, 5), SDL_F32);
    CHECK(!sdl_forward(net, bad) && strstr(sdl_last_error(), "lstm 'lstm'") && strstr(sdl_last_error(), "(2, 4, 7)"), "%s", sdl_last_error());
    CHECK(!sdl_rnn_forward(net, x, h0, NULL, NULL, NULL) && strstr(sdl_last_error(), "h0"), "%s", sdl_last_error());
    CHECK(!sdl_rnn_forward(gru, x, NULL, h0, NULL, NULL) && strstr(sdl_last_error(), "LSTM only"), "%s", sdl_last_error());
    CHECK(!sdl_rnn_forward(sdl_identity_layer(m), x, NULL, NULL, NULL, NULL) && strstr(sdl_last_error(), "not an rnn"), "%s", sdl_last_error());
    sdl_rnn_desc z = {SDL_RNN_TANH, 0, 5, 1, false, false, 0.0f};
    CHECK(!sdl_rnn_layer(m, "z", &z) && strstr(sdl_last_error(), "input_size 0"), "%s", sdl_last_error());
    sdl_tensor_free(bad); sdl_tensor_free(h0); sdl_tensor_free(x);
    sdl_arena_reset();
    sdl_model_free(m);
}

/* ---- GroupNorm ---------------------------------------------------------------------------- */
static sdl_tensor *f_gn(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_group_norm(in[0], 3, in[1], in[2], 1e-5f); }
static void r_gn(double **in, double *out, void *ctx) { /* x (2, 6, 2, 3), 3 groups of 2 channels */
    (void)ctx;
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 3; g++) {
            const double *x = in[0] + (b * 6 + g * 2) * 6;
            double mu = 0, var = 0;
            for (int i = 0; i < 12; i++) mu += x[i] / 12;
            for (int i = 0; i < 12; i++) var += (x[i] - mu) * (x[i] - mu) / 12;
            for (int i = 0; i < 12; i++) {
                int c = g * 2 + i / 6;
                out[(b * 6 + g * 2) * 6 + i] = (x[i] - mu) / sqrt(var + 1e-5) * in[1][c] + in[2][c];
            }
        }
}
static void test_group_norm(void) {
    gc_case a = {"group_norm", 3, {sdl_shape4(2, 6, 2, 3), sdl_shape1(6), sdl_shape1(6)}, {0}, -2, 2, f_gn, r_gn, NULL, 0};
    CHECK(gradcheck(&a), "group_norm (3 groups)");
    const char *cases[2] = {"gn", "gn1"};
    int groups[2] = {3, 1};
    for (int k = 0; k < 2; k++) {
        sdl_model *m = sdl_model_new(1);
        sdl_tensor *x = fx2(cases[k], "x"), *w = fx2(cases[k], "w"), *out = fx2(cases[k], "out"), *dx = fx2(cases[k], "dx");
        sdl_module *gn = x ? sdl_group_norm_layer(m, "gn", groups[k], x->shape[1]) : NULL;
        const char *pn[2] = {"weight", "bias"};
        sdl_tensor *ps[2] = {gn ? gn->weight : NULL, gn ? gn->bias : NULL};
        for (int i = 0; gn && i < 2; i++) {
            sdl_tensor *v = fx2(cases[k], pn[i]);
            if (v) sdl_tensor_copy_from(ps[i], sdl_f32(v));
            sdl_tensor_free(v);
        }
        if (gn && w && out && dx) {
            sdl_tensor_requires_grad(x);
            sdl_tensor *y = sdl_forward(gn, x);
            CHECK(y && close_to("gn out", sdl_f32(y), sdl_f32(out), out->numel, 2e-6), "%s matches torch", cases[k]);
            sdl_backward(sdl_sum(sdl_mul(y, w)));
            CHECK(close_to("gn dx", x->grad, sdl_f32(dx), dx->numel, 2e-6), "%s dx matches torch", cases[k]);
            for (int i = 0; i < 2; i++) {
                char nm[32];
                snprintf(nm, sizeof nm, "d_%s", pn[i]);
                sdl_tensor *want = fx2(cases[k], nm);
                CHECK(want && close_to(nm, ps[i]->grad, sdl_f32(want), want->numel, 2e-6), "%s %s matches torch", cases[k], nm);
                sdl_tensor_free(want);
            }
        }
        CHECK(!sdl_group_norm_layer(m, "bad", 4, 6) && strstr(sdl_last_error(), "6 channels"), "%s", sdl_last_error());
        sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(out); sdl_tensor_free(dx);
        sdl_arena_reset();
        sdl_model_free(m);
    }
}

/* ---- multi-head attention ------------------------------------------------------------------ */
enum { MB = 2, MQ = 3, MK = 4, ME = 4, MNH = 2 };
typedef struct mha_ctx { bool bf; } mha_ctx;
static sdl_tensor *f_mha(sdl_tensor **in, void *ctx) { return sdl_test_mha_attend(in[0], in[1], in[2], in[3], MNH, ((mha_ctx *)ctx)->bf); }
static void r_mha(double **in, double *out, void *ctx) {
    bool bf = ((mha_ctx *)ctx)->bf;
    const int W = 3 * ME, d = ME / MNH;
#define ROW(T, b, t) (bf ? (b) * (T) + (t) : (t) * MB + (b))
    for (int b = 0; b < MB; b++)
        for (int h = 0; h < MNH; h++)
            for (int i = 0; i < MQ; i++) {
                double s[MK], mx = -1e300, z = 0;
                for (int j = 0; j < MK; j++) {
                    s[j] = 0;
                    for (int c = 0; c < d; c++) s[j] += in[0][ROW(MQ, b, i) * W + h * d + c] * in[1][ROW(MK, b, j) * W + ME + h * d + c];
                    s[j] = s[j] / sqrt((double)d) + in[3][(b * MQ + i) * MK + j];
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < MK; j++) z += exp(s[j] - mx);
                for (int c = 0; c < d; c++) {
                    double o = 0;
                    for (int j = 0; j < MK; j++) o += exp(s[j] - mx) / z * in[2][ROW(MK, b, j) * W + 2 * ME + h * d + c];
                    out[ROW(MQ, b, i) * ME + h * d + c] = o;
                }
            }
#undef ROW
}
static void test_mha_gradcheck(void) {
    for (int bf = 0; bf < 2; bf++) {
        mha_ctx c = {bf != 0};
        sdl_shape sq = bf ? sdl_shape3(MB, MQ, 3 * ME) : sdl_shape3(MQ, MB, 3 * ME), sk = bf ? sdl_shape3(MB, MK, 3 * ME) : sdl_shape3(MK, MB, 3 * ME);
        gc_case a = {"mha", 4, {sq, sk, sk, sdl_shape3(MB, MQ, MK)}, {0, 0, 0, 1}, -1.5f, 1.5f, f_mha, r_mha, &c, 0};
        CHECK(gradcheck(&a), "masked attention, %s", bf ? "batch_first" : "time-major");
    }
}

/* the layer against nn.MultiheadAttention: self-attention with causal + key padding masks;
   cross-attention with a float mask; outputs and the gradients of inputs and parameters */
static void match_mha(const char *c, bool bf, bool cross) {
    sdl_model *m = sdl_model_new(2);
    sdl_mha_desc d = {8, 2, false, bf, !cross};
    sdl_module *a = sdl_mha_layer(m, "mha", &d);
    CHECK(a && m->nparams == 4, "%s: 4 parameters", c);
    for (int i = 0; a && i < m->nparams; i++) {
        sdl_tensor *v = fx2(c, m->params[i]->name + 4);
        CHECK(v && v->numel == m->params[i]->numel, "%s: %s has torch's shape", c, m->params[i]->name);
        if (v && v->numel == m->params[i]->numel) sdl_tensor_copy_from(m->params[i], sdl_f32(v));
        sdl_tensor_free(v);
    }
    sdl_tensor *q = fx2(c, "q"), *k = cross ? fx2(c, "k") : NULL, *am = cross ? fx2(c, "am") : NULL;
    sdl_tensor *kpm = cross ? NULL : fx2(c, "kpm"), *w = fx2(c, "w"), *out = fx2(c, "out");
    if (a && q && w && out) {
        sdl_tensor_requires_grad(q);
        if (k) sdl_tensor_requires_grad(k);
        sdl_tensor *y = sdl_mha_forward(a, q, k, k, am, kpm);
        CHECK(y && close_to("mha out", sdl_f32(y), sdl_f32(out), out->numel, 2e-6), "%s matches torch: %s", c, y ? "" : sdl_last_error());
        if (y) {
            sdl_backward(sdl_sum(sdl_mul(y, w)));
            sdl_tensor *dq = fx2(c, "dq"), *dk = cross ? fx2(c, "dk") : NULL;
            CHECK(dq && close_to("dq", q->grad, sdl_f32(dq), dq->numel, 2e-6), "%s dq matches torch", c);
            CHECK(!cross || (dk && close_to("dk", k->grad, sdl_f32(dk), dk->numel, 2e-6)), "%s dk matches torch", c);
            sdl_tensor_free(dq); sdl_tensor_free(dk);
            for (int i = 0; i < m->nparams; i++) {
                char nm[64];
                snprintf(nm, sizeof nm, "d_%s", m->params[i]->name + 4);
                for (char *p = nm; *p; p++) *p = *p == '.' ? '_' : *p;
                sdl_tensor *want = fx2(c, nm);
                CHECK(want && close_to(nm, m->params[i]->grad, sdl_f32(want), want->numel, 2e-6), "%s %s matches torch", c, nm);
                sdl_tensor_free(want);
            }
        }
    }
    sdl_tensor_free(q); sdl_tensor_free(k); sdl_tensor_free(am); sdl_tensor_free(kpm); sdl_tensor_free(w); sdl_tensor_free(out);
    sdl_arena_reset();
    sdl_model_free(m);
}
static void test_mha(void) {
    match_mha("mha_self", true, false);
    match_mha("mha_cross", false, true);
    /* a query whose keys are all padding gets 0, not NaN; names; errors */
    sdl_model *m = sdl_model_new(3);
    sdl_mha_desc d = {4, 2, false, true, false};
    sdl_module *a = sdl_mha_layer(m, "attn", &d);
    CHECK(a && !strcmp(m->params[2]->name, "attn.out_proj.weight"), "names");
    sdl_tensor *x = sdl_tensor_new(sdl_shape3(1, 3, 4), SDL_F32), *kpm = sdl_tensor_new(sdl_shape2(1, 3), SDL_U8);
    sdl_tensor_uniform(x, -1, 1);
    memset(kpm->data, 1, 3);
    sdl_tensor *y = sdl_mha_forward(a, x, NULL, NULL, NULL, kpm);
    CHECK(y && sdl_all_finite(y), "all keys padded: finite");
    CHECK(y && fabsf(sdl_f32(y)[0] - sdl_f32(a->model->params[3])[0]) < 1e-7f, "all keys padded: the output is out_proj.bias");
    sdl_tensor *bad = sdl_tensor_new(sdl_shape3(1, 3, 5), SDL_F32);
    CHECK(!sdl_forward(a, bad) && strstr(sdl_last_error(), "mha 'attn': query"), "%s", sdl_last_error());
    sdl_mha_desc bd = {6, 4, false, true, false};
    CHECK(!sdl_mha_layer(m, "b", &bd) && strstr(sdl_last_error(), "num_heads 4"), "%s", sdl_last_error());
    sdl_tensor_free(x); sdl_tensor_free(kpm); sdl_tensor_free(bad);
    sdl_arena_reset();
    sdl_model_free(m);
}

/* ---- Conv2d with dilation, groups, separate strides and pads, 'same' ---------------------------- */
typedef struct conv_ctx { sdl_conv2d_desc d; int N, C, H, W, O, KH, KW, OH, OW, ph, pw; } conv_ctx;
static sdl_tensor *f_conv(sdl_tensor **in, void *ctx) { return sdl_conv2d_ex(in[0], in[1], in[2], &((conv_ctx *)ctx)->d); }
static void r_conv(double **in, double *out, void *ctx) {
    conv_ctx *c = (conv_ctx *)ctx;
    int G = c->d.groups ? c->d.groups : 1, sh = c->d.stride_h ? c->d.stride_h : 1, sw = c->d.stride_w ? c->d.stride_w : 1;
    int dh = c->d.dilation_h ? c->d.dilation_h : 1, dw = c->d.dilation_w ? c->d.dilation_w : 1, Cg = c->C / G, Og = c->O / G;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int oh = 0; oh < c->OH; oh++)
                for (int ow = 0; ow < c->OW; ow++) {
                    double s = in[2][o];
                    for (int ci = 0; ci < Cg; ci++)
                        for (int i = 0; i < c->KH; i++)
                            for (int j = 0; j < c->KW; j++) {
                                int ih = oh * sh - c->ph + i * dh, iw = ow * sw - c->pw + j * dw, cin = o / Og * Cg + ci;
                                if (ih >= 0 && ih < c->H && iw >= 0 && iw < c->W)
                                    s += in[0][((n * c->C + cin) * c->H + ih) * c->W + iw] * in[1][((o * Cg + ci) * c->KH + i) * c->KW + j];
                            }
                    out[((n * c->O + o) * c->OH + oh) * c->OW + ow] = s;
                }
}
static void test_conv_ex_gradcheck(void) {
    /* dilation 2 x 1, groups 2, stride 2 x 1, pad 1 x 2: (2, 4, 7, 8) -> (2, 6, 3, 10) */
    conv_ctx a = {{2, 1, 1, 2, 2, 1, 2, false}, 2, 4, 7, 8, 6, 3, 3, 3, 10, 1, 2};
    gc_case ga = {"conv dilated grouped", 3, {sdl_shape4(2, 4, 7, 8), sdl_shape4(6, 2, 3, 3), sdl_shape1(6)}, {0}, -1, 1, f_conv, r_conv, &a, 0};
    CHECK(gradcheck(&ga), "dilated, grouped, strided");
    /* depthwise 'same' with an even kernel: pad 0 top/left... (2 x 4: pads 0/1 rows, 1/2 columns) */
    conv_ctx b = {{0, 0, 0, 0, 0, 0, 3, true}, 1, 3, 5, 6, 3, 2, 4, 5, 6, 0, 1};
    gc_case gb = {"conv depthwise same", 3, {sdl_shape4(1, 3, 5, 6), sdl_shape4(3, 1, 2, 4), sdl_shape1(3)}, {0}, -1, 1, f_conv, r_conv, &b, 0};
    CHECK(gradcheck(&gb), "depthwise, 'same' with an even kernel");
}
static void match_conv(const char *c, int cin, int cout, int kh, int kw, sdl_conv2d_desc d) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *conv = sdl_conv2d_ex_layer(m, "conv", cin, cout, kh, kw, &d, true);
    sdl_tensor *wt = fx2(c, "weight"), *bs = fx2(c, "bias"), *x = fx2(c, "x"), *w = fx2(c, "w"), *out = fx2(c, "out");
    sdl_tensor *dx = fx2(c, "dx"), *dw = fx2(c, "d_weight"), *db = fx2(c, "d_bias");
    CHECK(conv && wt && wt->numel == conv->weight->numel, "%s: weight shape", c);
    if (conv && wt && bs && x && w && out && dx && dw && db && wt->numel == conv->weight->numel) {
        sdl_tensor_copy_from(conv->weight, sdl_f32(wt));
        sdl_tensor_copy_from(conv->bias, sdl_f32(bs));
        sdl_tensor_requires_grad(x);
        sdl_tensor *y = sdl_forward(conv, x);
        CHECK(y && y->numel == out->numel && close_to("conv out", sdl_f32(y), sdl_f32(out), out->numel, 2e-6), "%s matches torch %s", c, y ? "" : sdl_last_error());
        if (y && y->numel == out->numel) {
            sdl_backward(sdl_sum(sdl_mul(y, w)));
            CHECK(close_to("dx", x->grad, sdl_f32(dx), dx->numel, 2e-6) && close_to("dw", conv->weight->grad, sdl_f32(dw), dw->numel, 2e-6) &&
                  close_to("db", conv->bias->grad, sdl_f32(db), db->numel, 2e-6), "%s gradients match torch", c);
        }
    }
    sdl_tensor_free(wt); sdl_tensor_free(bs); sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(out);
    sdl_tensor_free(dx); sdl_tensor_free(dw); sdl_tensor_free(db);
    sdl_arena_reset();
    sdl_model_free(m);
}
static void test_conv_ex_torch(void) {
    match_conv("conv_dg", 4, 6, 3, 3, (sdl_conv2d_desc){2, 1, 1, 2, 2, 1, 2, false});
    match_conv("conv_dw", 3, 6, 3, 3, (sdl_conv2d_desc){0, 0, 0, 0, 0, 0, 3, true});
    match_conv("conv_same2", 2, 3, 2, 4, (sdl_conv2d_desc){0, 0, 0, 0, 0, 0, 0, true});
    /* a dense conv with pad (0, 1) runs sdl_conv2d's op: im2col, and Winograd forced */
    match_conv("conv_asym", 4, 5, 3, 3, (sdl_conv2d_desc){0, 0, 0, 1, 0, 0, 0, false});
    *sdl_test_conv_algo() = 2;
    match_conv("conv_asym", 4, 5, 3, 3, (sdl_conv2d_desc){0, 0, 0, 1, 0, 0, 0, false});
    *sdl_test_conv_algo() = 0;
    /* which op runs, and errors */
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(1, 4, 5, 5), SDL_F32), *w = sdl_tensor_new(sdl_shape4(4, 4, 3, 3), SDL_F32);
    sdl_tensor *wg = sdl_tensor_new(sdl_shape4(4, 2, 3, 3), SDL_F32);
    sdl_tensor_requires_grad(x);
    sdl_conv2d_desc same = {0, 0, 0, 0, 0, 0, 0, true}, grp = {0, 0, 0, 0, 0, 0, 2, false}, bad = {2, 0, 0, 0, 0, 0, 0, true};
    sdl_tensor *y1 = sdl_conv2d_ex(x, w, NULL, &same), *y2 = sdl_conv2d_ex(x, wg, NULL, &grp);
    CHECK(y1 && y1->node->op == SDL_OP_CONV2D && y1->shape[2] == 5, "dense 'same' 3x3: the fast op, 5x5 out");
    CHECK(y2 && y2->node->op == SDL_OP_CONV2D_GROUPED && y2->shape[2] == 3, "groups 2: the general op");
    CHECK(!sdl_conv2d_ex(x, w, NULL, &bad) && strstr(sdl_last_error(), "'same' wants stride 1"), "%s", sdl_last_error());
    CHECK(!sdl_conv2d_ex(x, w, NULL, &grp) && strstr(sdl_last_error(), "C_in/groups"), "%s", sdl_last_error());
    sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(wg);
    sdl_arena_reset();
}

/* ---- model summary: counts against hand-computed numbers ------------------------------------ */
static void test_model_summary(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv", 1, 2, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 32, 3, true));
    sdl_roofline roof = {1e9, 1e9, "test"}; /* ridge at 1 FLOP/B */
    sdl_summary s;
    FILE *f = tmpfile();
    CHECK(sdl_model_summary(net, sdl_shape4(1, 1, 4, 4), &roof, f, &s) == SDL_OK, "%s", sdl_last_error());
    CHECK(s.nrows == 4, "4 rows, got %d", s.nrows);
    if (s.nrows == 4) {
        /* conv: y (1,2,4,4) = 32 outputs of 9 taps: 2*32*9 + 32 bias = 608 FLOPs; bytes 4 (16 x + 18 w + 2 b + 32 y) = 272
           relu: 32 FLOPs, 4 (32 + 32) = 256 bytes; flatten: a view, nothing
           fc:   2*3*32 + 3 = 195 FLOPs, 4 (32 + 96 + 3 + 3) = 536 bytes */
        double fl[4] = {608, 32, 0, 195}, by[4] = {272, 256, 0, 536};
        int64_t pa[4] = {20, 0, 0, 99};
        for (int i = 0; i < 4; i++)
            CHECK(s.rows[i].flops == fl[i] && s.rows[i].bytes == by[i] && s.rows[i].params == pa[i], "row %d (%s): %g FLOPs, %g bytes, %lld params",
                  i, s.rows[i].name, s.rows[i].flops, s.rows[i].bytes, (long long)s.rows[i].params);
        CHECK(s.params == 119 && s.flops == 835 && s.bytes == 1064, "totals %lld %g %g", (long long)s.params, s.flops, s.bytes);
        CHECK(!strcmp(s.rows[0].name, "conv") && !strcmp(s.rows[1].name, "relu") && s.rows[2].out_shape.ndim == 2 && s.rows[2].out_shape.d[1] == 32,
              "names and shapes");
        double fps = 0.0, mfu = sdl_summary_mfu(&s, 1000.0, 0.5, &fps); /* 3 * 835 * 1000 / 0.5 = 5.01e6 FLOP/s of 1e9 */
        CHECK(fabs(fps - 5.01e6) < 1.0 && fabs(mfu - 5.01e-3) < 1e-12, "mfu %g, %g FLOP/s", mfu, fps);
    }
    char text[4096] = {0};
    rewind(f);
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(got > 0 && strstr(text, "conv (conv2d)") && strstr(text, "Total params: 119"), "printed:\n%s", text);
    char *conv = strstr(text, "conv (conv2d)"), *relu = strstr(text, "relu (relu)");
    CHECK(conv && relu && strstr(conv, "compute") < relu && strstr(relu, "memory") != NULL, "conv compute-bound, relu memory-bound at ridge 1");
    sdl_summary_free(&s);
    sdl_model_free(m);

    /* an LSTM: params 4*4*(3+4) + 2*16 = 144; the projection 2*10*16*3 + 160 = 1120 FLOPs and the
       recurrence 10 (2*16*4 + 4*16) = 1920 */
    m = sdl_model_new(1);
    sdl_rnn_desc d = {SDL_RNN_LSTM, 3, 4, 1, false, true, 0.0f};
    sdl_module *lstm = sdl_rnn_layer(m, "lstm", &d);
    CHECK(sdl_model_summary(lstm, sdl_shape3(2, 5, 3), &roof, NULL, &s) == SDL_OK && s.nrows == 1, "%s", sdl_last_error());
    CHECK(s.params == 144 && s.flops == 3040 && s.rows[0].out_shape.d[2] == 4, "lstm: %lld params, %g FLOPs", (long long)s.params, s.flops);
    sdl_summary_free(&s);
    CHECK(sdl_model_summary(NULL, sdl_shape1(1), &roof, NULL, &s) == SDL_ERR_ARG, "NULL net");
    sdl_model_free(m);
    sdl_roofline cpu = sdl_roofline_cpu();
    CHECK(cpu.flops > 0 && cpu.bytes_per_s > 0, "measured: %.3g FLOP/s, %.3g B/s", cpu.flops, cpu.bytes_per_s);
    printf("  this machine: %.1f GFLOP/s, %.1f GB/s\n", cpu.flops * 1e-9, cpu.bytes_per_s * 1e-9);
}

/* ---- the new ops on another device: an error naming the op, never a wrong number ------------
   A fake backend registered as SDL_CUDA with the CPU's table minus the new ops (as the real
   CUDA table has none of them; it has embedding and pooling, which know no padding_idx and
   no ceil_mode divisor), its memory on the host. */
static void test_new_ops_on_device(void) {
    sdl_backend be = *sdl_get_backend(SDL_CPU);
    sdl_op fresh[4] = {SDL_OP_RNN, SDL_OP_GROUP_NORM, SDL_OP_MHA, SDL_OP_CONV2D_GROUPED};
    for (int i = 0; i < 4; i++) be.forward[fresh[i]] = be.backward[fresh[i]] = NULL;
    be.name = "fake";
    be.arena_alloc = sdl_arena_alloc;
    be.arena_reset = NULL;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_tensor *x4 = sdl_arena_tensor_on(sdl_shape4(1, 4, 5, 5), SDL_F32, SDL_CUDA), *w = sdl_arena_tensor_on(sdl_shape4(4, 2, 3, 3), SDL_F32, SDL_CUDA);
    sdl_tensor *table = sdl_arena_tensor_on(sdl_shape2(5, 3), SDL_F32, SDL_CUDA), *ids = sdl_arena_tensor_on(sdl_shape1(2), SDL_I32, SDL_CUDA);
    sdl_tensor *xw = sdl_arena_tensor_on(sdl_shape3(2, 1, 12), SDL_F32, SDL_CUDA), *whh = sdl_arena_tensor_on(sdl_shape2(12, 3), SDL_F32, SDL_CUDA);
    sdl_tensor *bhh = sdl_arena_tensor_on(sdl_shape1(12), SDL_F32, SDL_CUDA), *qkv = sdl_arena_tensor_on(sdl_shape3(1, 2, 12), SDL_F32, SDL_CUDA);
    sdl_conv2d_desc grp = {0, 0, 0, 0, 0, 0, 2, false};
    CHECK(!sdl_group_norm(x4, 2, NULL, NULL, 1e-5f) && strstr(sdl_last_error(), "group_norm: no kernel on device"), "%s", sdl_last_error());
    CHECK(!sdl_conv2d_ex(x4, w, NULL, &grp) && strstr(sdl_last_error(), "conv2d_ex") && strstr(sdl_last_error(), "CPU only"), "%s", sdl_last_error());
    CHECK(!sdl_embedding_pad(ids, table, 0) && strstr(sdl_last_error(), "embedding_pad"), "%s", sdl_last_error());
    CHECK(!sdl_avg_pool2d_ceil(x4, 2, 2, 0) && strstr(sdl_last_error(), "ceil_mode"), "%s", sdl_last_error());
    CHECK(sdl_max_pool2d_ceil(x4, 2, 2, 0) != NULL, "max_pool2d ceil_mode runs where the device has max pooling: %s", sdl_last_error());
    CHECK(!sdl_test_rnn_scan(SDL_RNN_LSTM, xw, whh, bhh, NULL, false) && strstr(sdl_last_error(), "rnn: the recurrence has no kernel"), "%s", sdl_last_error());
    CHECK(!sdl_test_mha_attend(qkv, qkv, qkv, NULL, 2, true) && strstr(sdl_last_error(), "mha: masked attention has no kernel"), "%s", sdl_last_error());
    sdl_arena_reset();
    memset(&be, 0, sizeof be); /* no device again */
    sdl_register_backend(SDL_CUDA, &be);
}

int main(void) {
    RUN(test_gelu_gradcheck);
    RUN(test_gelu_tail);
    RUN(test_gelu_torch);
    RUN(test_simple_layers);
    RUN(test_embedding_pad);
    RUN(test_pool_ceil);
    RUN(test_rnn_gradcheck);
    RUN(test_rnn_torch);
    RUN(test_rnn_misc);
    RUN(test_group_norm);
    RUN(test_mha_gradcheck);
    RUN(test_mha);
    RUN(test_conv_ex_gradcheck);
    RUN(test_conv_ex_torch);
    RUN(test_model_summary);
    RUN(test_new_ops_on_device);
    return sdl_test_finish();
}
