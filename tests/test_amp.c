/* test_amp.c - the loss scaler (sdl_loss_scaler) on the CPU: with a power-of-two scale and
   no overflow it trains bit for bit as without it; an injected Inf gradient skips the
   update, zeroes the gradients and halves the scale; good updates grow it; accumulation
   under the scaler matches plain accumulation; clipping after unscaling. Also the backend
   table's gradient helpers (scale, sumsq) that sdl_grad_scale and sdl_clip_grad_norm use. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 7, 13, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 13, 4, true));
    return net;
}

/* a fixed batch per step: x (6, 7), y (6) in [0, 4) */
static sdl_tensor *batch_loss(sdl_module *net, int step) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(6, 7), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(6), SDL_I32);
    for (int64_t i = 0; i < x->numel; i++) sdl_f32(x)[i] = (float)sin(0.7 * (double)i + 1.3 * step);
    for (int64_t i = 0; i < 6; i++) sdl_i32(y)[i] = (int32_t)((i + step) % 4);
    return sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
}

static bool same_params(sdl_model *a, sdl_model *b) {
    return a->param_floats == b->param_floats && memcmp(a->param_data, b->param_data, sizeof(float) * (size_t)a->param_floats) == 0;
}

/* the scaler with scale 2^k and no overflow: the same bits as plain training (the scale
   and the unscale are exact); with accumulation (k = 3) and clipping too */
static void scaler_matches_plain(int accum, float max_norm, sdl_optim_kind kind) {
    sdl_model *ma = sdl_model_new(3);
    sdl_module *na = make_mlp(ma); /* the init draws from the global RNG: make each after its seed */
    sdl_model *mb = sdl_model_new(3);
    sdl_module *nb = make_mlp(mb);
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = kind; d.lr = 0.05f; d.momentum = 0.9f; d.weight_decay = 0.01f;
    d.accum_steps = accum; d.max_grad_norm = max_norm;
    sdl_optim *oa = sdl_optim_new(ma, &d), *ob = sdl_optim_new(mb, &d);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    sc.growth_interval = 2; /* grows during the run: 2^16 .. 2^19 */
    for (int step = 0; step < 8; step++) {
        CHECK(sdl_backward(batch_loss(na, step)) == SDL_OK && sdl_optim_step(oa) == SDL_OK, "plain step: %s", sdl_last_error());
        CHECK(sdl_scaled_backward(&sc, batch_loss(nb, step)) == SDL_OK && sdl_scaler_step(&sc, ob) == SDL_OK, "scaled step: %s", sdl_last_error());
        sdl_arena_reset();
    }
    CHECK(same_params(ma, mb), "accum %d clip %g kind %d: parameters differ from plain training", accum, max_norm, (int)kind);
    CHECK(oa->step == ob->step && oa->step == 8 / accum, "updates: %lld and %lld", (long long)oa->step, (long long)ob->step);
    if (max_norm > 0.0f) CHECK(oa->grad_norm == ob->grad_norm, "grad_norm %g vs %g", oa->grad_norm, ob->grad_norm);
    int updates = 8 / accum;
    float want = 65536.0f * (float)(1 << (updates / 2));
    CHECK(sc.scale == want && sc.skipped == 0 && !sc.found_inf, "scale %g (want %g), skipped %lld", sc.scale, want, (long long)sc.skipped);
    sdl_optim_free(oa);
    sdl_optim_free(ob);
    sdl_model_free(ma);
    sdl_model_free(mb);
}

static void test_scaler_plain(void) {
    scaler_matches_plain(1, 0.0f, SDL_OPTIM_SGD);
    scaler_matches_plain(2, 0.0f, SDL_OPTIM_ADAMW);
    scaler_matches_plain(1, 0.05f, SDL_OPTIM_LAMB); /* clipping on the unscaled gradients */
}

/* an Inf (and a NaN) in one gradient: the update is skipped, the parameters and the optimizer
   state stay, the gradients are zero, the scale halves; then growth after 3 good updates */
static void test_scaler_overflow(void) {
    sdl_model *m = sdl_model_new(4);
    sdl_module *net = make_mlp(m);
    sdl_optim *o = sdl_adam(m, 1e-2f, 0.9f, 0.999f, 0.0f);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    sc.growth_interval = 3;
    CHECK(sdl_scaled_backward(&sc, batch_loss(net, 0)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK, "first step: %s", sdl_last_error());
    CHECK(sc.scale == 65536.0f && sc.good_steps == 1 && o->step == 1, "after one good step: scale %g good %d", sc.scale, sc.good_steps);
    sdl_arena_reset();
    size_t bytes = sizeof(float) * (size_t)m->param_floats;
    float *p0 = (float *)malloc(bytes), *s0 = (float *)malloc(2 * bytes);
    for (int k = 0; k < 2; k++) {
        memcpy(p0, m->param_data, bytes);
        memcpy(s0, o->state, 2 * bytes);
        CHECK(sdl_scaled_backward(&sc, batch_loss(net, 1)) == SDL_OK, "backward: %s", sdl_last_error());
        m->grad_data[m->param_floats / 2] = k == 0 ? INFINITY : NAN; /* the overflow */
        CHECK(sdl_scaler_step(&sc, o) == SDL_OK, "skipped step returns SDL_OK: %s", sdl_last_error());
        CHECK(sc.found_inf && sc.skipped == k + 1 && sc.good_steps == 0, "skip %d: found_inf %d skipped %lld", k, sc.found_inf, (long long)sc.skipped);
        CHECK(sc.scale == (k == 0 ? 32768.0f : 16384.0f), "skip %d: the scale halves (%g)", k, sc.scale);
        CHECK(memcmp(p0, m->param_data, bytes) == 0 && memcmp(s0, o->state, 2 * bytes) == 0, "skip %d: parameters or state changed", k);
        CHECK(o->step == 1, "skip %d: o->step %lld", k, (long long)o->step);
        bool zero = true;
        for (int64_t i = 0; i < m->param_floats; i++) zero = zero && m->grad_data[i] == 0.0f;
        CHECK(zero, "skip %d: the gradients are not zeroed", k);
        sdl_arena_reset();
    }
    for (int step = 0; step < 3; step++) {
        CHECK(sdl_scaled_backward(&sc, batch_loss(net, 2 + step)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK, "good step: %s", sdl_last_error());
        CHECK(!sc.found_inf, "good step %d flagged", step);
        CHECK(sc.scale == (step < 2 ? 16384.0f : 32768.0f), "good step %d: scale %g", step, sc.scale);
        sdl_arena_reset();
    }
    CHECK(o->step == 4 && sc.good_steps == 0, "updates %lld good %d", (long long)o->step, sc.good_steps);
    /* growth stops short of Inf */
    sc.scale = 3e38f;
    sc.growth_interval = 1;
    CHECK(sdl_scaled_backward(&sc, batch_loss(net, 9)) == SDL_OK, "backward");
    sc.scale = 3e38f; /* unscaled by this: gradients become tiny but finite */
    CHECK(sdl_scaler_step(&sc, o) == SDL_OK && sc.scale == 3e38f, "scale grew past FLT_MAX: %g", sc.scale);
    free(p0);
    free(s0);
    sdl_optim_free(o);
    sdl_model_free(m);
}

/* accumulation: an Inf in the first micro-batch is kept (Inf + x = Inf) and found at the
   update, which is skipped; the next update starts from zero gradients */
static void test_scaler_accum_overflow(void) {
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = make_mlp(m);
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD; d.lr = 0.1f; d.accum_steps = 2;
    sdl_optim *o = sdl_optim_new(m, &d);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    size_t bytes = sizeof(float) * (size_t)m->param_floats;
    float *p0 = (float *)malloc(bytes);
    memcpy(p0, m->param_data, bytes);
    CHECK(sdl_scaled_backward(&sc, batch_loss(net, 0)) == SDL_OK, "backward");
    m->grad_data[3] = -INFINITY;
    CHECK(sdl_scaler_step(&sc, o) == SDL_OK && !sc.found_inf && o->micro == 1, "micro step: found_inf %d micro %d", sc.found_inf, o->micro);
    CHECK(sdl_scaled_backward(&sc, batch_loss(net, 1)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK, "update step");
    CHECK(sc.found_inf && o->micro == 0 && o->step == 0 && memcmp(p0, m->param_data, bytes) == 0, "the accumulated Inf skips the update");
    CHECK(sc.scale == 32768.0f, "scale %g", sc.scale);
    CHECK(sdl_optim_is_update_step(o) == false, "a new accumulation window starts");
    free(p0);
    sdl_optim_free(o);
    sdl_model_free(m);
    sdl_arena_reset();
}

/* the table's helpers: sumsq is the double sum of squares (against a plain loop, over more
   elements than one block of the CPU's fixed-order sum), scale multiplies */
static void test_grad_helpers(void) {
    const sdl_backend *be = sdl_get_backend(SDL_CPU);
    CHECK(be && be->scale && be->sumsq, "the CPU registers scale and sumsq");
    if (!be || !be->scale || !be->sumsq) return;
    int64_t n = 100003;
    float *x = (float *)malloc(sizeof(float) * (size_t)n);
    double want = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = (float)sin(0.1 * (double)i) * 3.0f; want += (double)x[i] * (double)x[i]; }
    double got = be->sumsq(x, n);
    CHECK(fabs(got - want) <= 1e-12 * want, "sumsq %.17g want %.17g", got, want);
    be->scale(x, n, 0.25f);
    CHECK(x[7] == (float)sin(0.7) * 3.0f * 0.25f, "scale");
    x[n - 1] = NAN;
    CHECK(isnan(be->sumsq(x, n)), "a NaN element gives a NaN sum");
    free(x);
}

/* ---- the device path of sdl_optim_step and the scaler, without a GPU: a fake backend
   registered as SDL_CUDA keeps device memory on the host and reuses the CPU kernels,
   counting the calls of its scale and sumsq. Accumulation (k = 3), clipping and the scaler
   on it must go through the table and match the CPU bit for bit. */
static struct { long scale, sumsq, step; } fk;
static void fk_scale(float *x, int64_t n, float s) { fk.scale++; sdl_test_cpu_scale(x, n, s); }
static double fk_sumsq(const float *x, int64_t n) { fk.sumsq++; return sdl_test_cpu_sumsq(x, n); }
static sdl_result fk_step(struct sdl_optim *o) { fk.step++; sdl_test_optim_update(o); return SDL_OK; }

static void to_fake_device(sdl_model *m) { /* the arrays stay where they are: host memory */
    sdl_model_pack(m);
    for (int i = 0; i < m->nparams; i++) m->params[i]->device = SDL_CUDA;
}
static sdl_tensor *fake_copy(sdl_tensor *t) {
    sdl_tensor *d = sdl_arena_tensor_on(sdl_tensor_shape(t), t->dtype, SDL_CUDA);
    memcpy(d->data, t->data, (size_t)t->numel * sdl_dtype_size(t->dtype));
    return d;
}
static sdl_tensor *batch_loss_on(sdl_module *net, int step, bool dev) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(6, 7), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(6), SDL_I32);
    for (int64_t i = 0; i < x->numel; i++) sdl_f32(x)[i] = (float)sin(0.7 * (double)i + 1.3 * step);
    for (int64_t i = 0; i < 6; i++) sdl_i32(y)[i] = (int32_t)((i + step) % 4);
    if (dev) { x = fake_copy(x); y = fake_copy(y); }
    return sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
}

static void test_device_path(void) {
    sdl_backend be = *sdl_get_backend(SDL_CPU);
    be.name = "fake";
    be.arena_reset = NULL;
    be.optim_step = fk_step;
    be.scale = fk_scale;
    be.sumsq = fk_sumsq;
    sdl_register_backend(SDL_CUDA, &be);
    memset(&fk, 0, sizeof fk);
    sdl_model *mc = sdl_model_new(8);
    sdl_module *nc = make_mlp(mc);
    sdl_model *md = sdl_model_new(8);
    sdl_module *nd = make_mlp(md);
    to_fake_device(md);
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_ADAMW; d.lr = 0.01f; d.weight_decay = 0.1f; d.accum_steps = 3; d.max_grad_norm = 0.2f;
    sdl_optim *oc = sdl_optim_new(mc, &d), *od = sdl_optim_new(md, &d);
    CHECK(od && od->device == SDL_CUDA, "the optimizer is on the fake device");
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    for (int call = 0; call < 6; call++) {
        CHECK(sdl_backward(batch_loss_on(nc, call, false)) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU: %s", sdl_last_error());
        CHECK(sdl_scaled_backward(&sc, batch_loss_on(nd, call, true)) == SDL_OK && sdl_scaler_step(&sc, od) == SDL_OK, "device: %s", sdl_last_error());
        sdl_arena_reset();
    }
    CHECK(od->step == 2 && fk.step == 2, "two updates on the device (%lld, backend %ld)", (long long)od->step, fk.step);
    /* per update: the scaler's check and unscale, 1/k, the clip's norm and its scale */
    CHECK(fk.sumsq == 4 && fk.scale == 6, "the table's helpers ran: sumsq %ld scale %ld", fk.sumsq, fk.scale);
    CHECK(oc->grad_norm > 0.2f && oc->grad_norm == od->grad_norm, "clipped: norm %g and %g", oc->grad_norm, od->grad_norm);
    CHECK(memcmp(mc->param_data, md->param_data, sizeof(float) * (size_t)mc->param_floats) == 0, "parameters equal bit for bit");
    sdl_optim_free(oc);
    sdl_optim_free(od);
    sdl_model_free(mc);
    sdl_model_free(md);
    /* a device without the helpers: accumulation still counts, an update with clipping fails loudly */
    be.scale = NULL;
    be.sumsq = NULL;
    sdl_register_backend(SDL_CUDA, &be);
    md = sdl_model_new(8);
    nd = make_mlp(md);
    to_fake_device(md);
    d.accum_steps = 1;
    od = sdl_optim_new(md, &d);
    CHECK(isnan(sdl_clip_grad_norm(md, 1.0f)) && strstr(sdl_last_error(), "no gradient scale") != NULL, "clip without helpers: %s", sdl_last_error());
    CHECK(sdl_scaler_step(&sc, od) == SDL_ERR_DEVICE, "the scaler without helpers: %s", sdl_last_error());
    CHECK(sdl_optim_step(od) == SDL_ERR_DEVICE && od->step == 0, "clipping without helpers: %s", sdl_last_error());
    sdl_optim_free(od);
    sdl_model_free(md);
    sdl_backend none;
    memset(&none, 0, sizeof none);
    sdl_register_backend(SDL_CUDA, &none);
}

int main(void) {
    RUN(test_grad_helpers);
    RUN(test_scaler_plain);
    RUN(test_scaler_overflow);
    RUN(test_scaler_accum_overflow);
    RUN(test_device_path);
    return sdl_test_finish();
}
