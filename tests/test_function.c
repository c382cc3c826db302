/* test_function.c - user-defined ops (sdl_function_apply, save/saved) and sdl_gradcheck:
   a user op's gradient against a double reference, gradcheck passing good gradients and
   catching wrong ones, callback errors naming the function, and a model with a user op
   that trains. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* ---- softplus as a user op: y = log(1 + e^x); dx += sigmoid(x) dy, sigmoid kept by forward */
static sdl_result softplus_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)nin;
    float *sig = (float *)sdl_function_save(out, (size_t)out->numel * sizeof(float));
    if (!sig) return sdl_last_result();
    const float *x = sdl_f32(in[0]);
    for (int64_t i = 0; i < out->numel; i++) {
        sdl_f32(out)[i] = x[i] > 0 ? x[i] + log1pf(expf(-x[i])) : log1pf(expf(x[i]));
        sig[i] = 1.0f / (1.0f + expf(-x[i]));
    }
    return SDL_OK;
}
static sdl_result softplus_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)nin;
    const float *sig = (const float *)sdl_function_saved(out);
    if (!sig) return sdl_fail(SDL_ERR_STATE, "softplus: nothing saved");
    for (int64_t i = 0; i < out->numel; i++) in[0]->grad[i] += sig[i] * out->grad[i];
    return SDL_OK;
}
static const sdl_function softplus = {"softplus", softplus_fwd, softplus_bwd};
static sdl_tensor *softplus_apply(sdl_tensor *x) { return x ? sdl_function_apply(&softplus, sdl_tensor_shape(x), 1, &x, NULL) : NULL; }

static sdl_tensor *softplus_gc(sdl_tensor **in, void *ctx) { (void)ctx; return softplus_apply(in[0]); }
static void softplus_ref(double **in, double *out, void *ctx) {
    (void)ctx;
    for (int i = 0; i < 3 * 5; i++) out[i] = log1p(exp(in[0][i]));
}

static void test_user_op_matches_double_reference(void) {
    gc_case c = {"softplus", 1, {sdl_shape2(3, 5)}, {false}, -3.0f, 3.0f, softplus_gc, softplus_ref, NULL, 0};
    CHECK(gradcheck(&c), "softplus user op against the double reference");
}

/* ---- five inputs, one of them i32: out = a * b + w[k] * c - d over rows k of e (ids) */
static sdl_result axpb_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    float scale = *(const float *)ctx;
    if (nin != 5) return sdl_fail(SDL_ERR_ARG, "wants 5 inputs");
    for (int64_t i = 0; i < out->numel; i++) {
        int32_t k = sdl_i32(in[4])[i];
        sdl_f32(out)[i] = scale * (sdl_f32(in[0])[i] * sdl_f32(in[1])[i] + sdl_f32(in[3])[k] * sdl_f32(in[2])[i]);
    }
    return SDL_OK;
}
static sdl_result axpb_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    float scale = *(const float *)ctx;
    (void)nin;
    for (int64_t i = 0; i < out->numel; i++) {
        float g = scale * out->grad[i];
        int32_t k = sdl_i32(in[4])[i];
        if (in[0]->grad) in[0]->grad[i] += g * sdl_f32(in[1])[i];
        if (in[1]->grad) in[1]->grad[i] += g * sdl_f32(in[0])[i];
        if (in[2]->grad) in[2]->grad[i] += g * sdl_f32(in[3])[k];
        if (in[3]->grad) in[3]->grad[k] += g * sdl_f32(in[2])[i];
    }
    return SDL_OK;
}
static const sdl_function axpb = {"axpb", axpb_fwd, axpb_bwd};
static float axpb_scale = 0.5f;
static sdl_tensor *axpb_gc(void *user, int nin, sdl_tensor *const *in) {
    return sdl_tanh(sdl_function_apply(&axpb, sdl_tensor_shape(in[0]), nin, in, user));
}

static void test_gradcheck_five_inputs(void) {
    sdl_tensor *in[5];
    for (int i = 0; i < 3; i++) in[i] = sdl_tensor_new(sdl_shape2(2, 3), SDL_F32);
    in[3] = sdl_tensor_new(sdl_shape1(4), SDL_F32);
    in[4] = sdl_tensor_new(sdl_shape2(2, 3), SDL_I32);
    for (int i = 0; i < 4; i++) { sdl_tensor_uniform(in[i], -1, 1); sdl_tensor_requires_grad(in[i]); }
    for (int i = 0; i < 6; i++) sdl_i32(in[4])[i] = (i * 3) % 4;
    sdl_f32(in[0])[2] = 0.25f;
    in[0]->grad[0] = 7.0f; /* gradcheck leaves grads as they were */
    double err = -1;
    bool ok = sdl_gradcheck(axpb_gc, &axpb_scale, 5, in, NULL, &err);
    CHECK(ok && err >= 0 && err < 1e-3, "axpb passes (max err %g): %s", err, sdl_last_error());
    CHECK(in[0]->grad[0] == 7.0f && in[1]->grad[0] == 0.0f, "grads put back: %g %g", in[0]->grad[0], in[1]->grad[0]);
    CHECK(sdl_f32(in[0])[2] == 0.25f, "data put back");
    for (int i = 0; i < 5; i++) sdl_tensor_free(in[i]);
}

/* ---- a wrong backward (factor 1.5 on input 1) is caught and named */
static sdl_result bad_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    sdl_result r = axpb_bwd(ctx, out, nin, in);
    for (int64_t i = 0; i < in[1]->numel; i++) in[1]->grad[i] *= 1.5f;
    return r;
}
static const sdl_function axpb_bad = {"axpb_bad", axpb_fwd, bad_bwd};
static sdl_tensor *bad_gc(void *user, int nin, sdl_tensor *const *in) {
    return sdl_function_apply(&axpb_bad, sdl_tensor_shape(in[0]), nin, in, user);
}

static void test_gradcheck_catches_wrong_gradient(void) {
    sdl_tensor *in[5];
    for (int i = 0; i < 4; i++) in[i] = sdl_tensor_new(i == 3 ? sdl_shape1(4) : sdl_shape1(5), SDL_F32);
    in[4] = sdl_tensor_new(sdl_shape1(5), SDL_I32);
    for (int i = 0; i < 4; i++) { sdl_tensor_uniform(in[i], 0.5f, 1); if (i != 2) sdl_tensor_requires_grad(in[i]); }
    for (int i = 0; i < 5; i++) sdl_i32(in[4])[i] = i % 4;
    double err = 0;
    bool ok = sdl_gradcheck(bad_gc, &axpb_scale, 5, in, NULL, &err);
    CHECK(!ok && err > 0.1, "the wrong gradient fails (max err %g)", err);
    CHECK(strstr(sdl_last_error(), "gradcheck: input 1 element"), "names the input: %s", sdl_last_error());
    /* without input 1 checked it passes */
    in[1]->requires_grad = false;
    ok = sdl_gradcheck(bad_gc, &axpb_scale, 5, in, NULL, &err);
    CHECK(ok, "passes when input 1 is not checked: %s", sdl_last_error());
    for (int i = 0; i < 5; i++) sdl_tensor_free(in[i]);
}

/* ---- built-in ops through gradcheck too, and its argument errors */
static sdl_tensor *mlp_gc(void *user, int nin, sdl_tensor *const *in) {
    (void)user; (void)nin;
    return sdl_sum(sdl_tanh(sdl_linear(softplus_apply(in[0]), in[1], in[2])));
}

static void test_gradcheck_builtin_and_errors(void) {
    sdl_tensor *in[3] = {sdl_tensor_new(sdl_shape2(3, 4), SDL_F32), sdl_tensor_new(sdl_shape2(2, 4), SDL_F32),
                         sdl_tensor_new(sdl_shape1(2), SDL_F32)};
    for (int i = 0; i < 3; i++) { sdl_tensor_uniform(in[i], -1, 1); sdl_tensor_requires_grad(in[i]); }
    CHECK(sdl_gradcheck(mlp_gc, NULL, 3, in, &(sdl_gradcheck_desc){.eps = 1e-2}, NULL), "mlp: %s", sdl_last_error());
    sdl_tensor *pending = sdl_tanh(in[0]);
    CHECK(pending && !sdl_gradcheck(mlp_gc, NULL, 3, in, NULL, NULL) && strstr(sdl_last_error(), "tape"),
          "refuses with ops on the tape: %s", sdl_last_error());
    sdl_backward(sdl_sum(pending));
    for (int i = 0; i < 3; i++) in[i]->requires_grad = false;
    CHECK(!sdl_gradcheck(mlp_gc, NULL, 3, in, NULL, NULL) && strstr(sdl_last_error(), "no input"), "%s", sdl_last_error());
    for (int i = 0; i < 3; i++) sdl_tensor_free(in[i]);
}

/* ---- callback errors come back naming the function; a failed forward leaves no node */
static sdl_result fail_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)out; (void)nin; (void)in;
    return ctx ? sdl_fail(SDL_ERR_SHAPE, "wants rows of 3") : SDL_ERR_ARG;
}
static sdl_result copy_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)nin;
    memcpy(out->data, in[0]->data, (size_t)out->numel * sizeof(float));
    return SDL_OK;
}
static sdl_result fail_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)out; (void)nin; (void)in;
    return sdl_fail(SDL_ERR_NOT_FINITE, "grad blew up");
}

static void test_callback_errors(void) {
    sdl_tensor *x = sdl_tensor_new(sdl_shape1(4), SDL_F32);
    sdl_tensor_requires_grad(x);
    sdl_tensor_uniform(x, -1, 1);
    static const sdl_function f1 = {"picky", fail_fwd, NULL};
    int flag = 1;
    CHECK(!sdl_function_apply(&f1, sdl_shape1(4), 1, &x, &flag) && sdl_last_result() == SDL_ERR_SHAPE &&
          strstr(sdl_last_error(), "function 'picky' forward failed: wants rows of 3"), "%s", sdl_last_error());
    CHECK(!sdl_function_apply(&f1, sdl_shape1(4), 1, &x, NULL) && strstr(sdl_last_error(), "'picky' forward failed: no message"),
          "%s", sdl_last_error());
    /* the failed ops left nothing on the tape: a later loss backwards cleanly */
    CHECK(sdl_backward(sdl_sum(x)) == SDL_OK && x->grad[0] == 1.0f, "%s", sdl_last_error());
    static const sdl_function f2 = {"fragile", copy_fwd, fail_bwd};
    sdl_tensor *y = sdl_function_apply(&f2, sdl_shape1(4), 1, &x, NULL);
    CHECK(y && sdl_f32(y)[3] == sdl_f32(x)[3], "copy forward");
    CHECK(sdl_backward(sdl_sum(y)) == SDL_ERR_NOT_FINITE && strstr(sdl_last_error(), "function 'fragile' backward failed: grad blew up"),
          "%s", sdl_last_error());
    sdl_arena_reset();
    static const sdl_function f3 = {"forward_only", copy_fwd, NULL};
    y = sdl_function_apply(&f3, sdl_shape1(4), 1, &x, NULL);
    CHECK(y && sdl_backward(sdl_sum(y)) != SDL_OK && strstr(sdl_last_error(), "'forward_only' has no backward"), "%s", sdl_last_error());
    sdl_arena_reset();
    CHECK(!sdl_function_apply(&f3, sdl_shape1(4), 0, &x, NULL) && strstr(sdl_last_error(), "at least one input"), "%s", sdl_last_error());
    CHECK(!sdl_function_save(x, 4) && strstr(sdl_last_error(), "function_save"), "%s", sdl_last_error());
    /* no grad: it runs, records nothing, and save still works inside forward */
    sdl_set_grad_enabled(false);
    y = softplus_apply(x);
    sdl_set_grad_enabled(true);
    CHECK(y && !y->requires_grad && !y->node && fabsf(sdl_f32(y)[0] - log1pf(expf(sdl_f32(x)[0]))) < 1e-6f, "no-grad apply");
    sdl_tensor_free(x);
}

/* ---- a model with a user op in it trains: y = softplus(x W1^T + b1) W2^T + b2 fits sin */
static void test_user_op_trains(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_tensor *w1 = sdl_model_param(m, "w1", sdl_shape2(16, 1), true), *b1 = sdl_model_param(m, "b1", sdl_shape1(16), false);
    sdl_tensor *w2 = sdl_model_param(m, "w2", sdl_shape2(1, 16), true), *b2 = sdl_model_param(m, "b2", sdl_shape1(1), false);
    sdl_tensor_uniform(w1, -1, 1);
    sdl_tensor_uniform(w2, -0.5f, 0.5f);
    sdl_optim *opt = sdl_adam(m, 0.02f, 0.9f, 0.999f, 0.0f);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(32, 1), SDL_F32), *t = sdl_tensor_new(sdl_shape2(32, 1), SDL_F32);
    for (int i = 0; i < 32; i++) { sdl_f32(x)[i] = -3.0f + 6.0f * (float)i / 31.0f; sdl_f32(t)[i] = sinf(sdl_f32(x)[i]); }
    float first = 0, last = 0;
    for (int step = 0; step < 400; step++) {
        sdl_tensor *loss = sdl_mse_loss(sdl_linear(softplus_apply(sdl_linear(x, w1, b1)), w2, b2), t);
        if (step == 0) first = sdl_item(loss);
        last = sdl_item(loss);
        CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(opt);
        sdl_arena_reset();
    }
    CHECK(last < 0.05f * first && last < 0.02f, "mse %g -> %g", first, last);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(t);
    sdl_model_free(m);
}

int main(void) {
    RUN(test_user_op_matches_double_reference);
    RUN(test_gradcheck_five_inputs);
    RUN(test_gradcheck_catches_wrong_gradient);
    RUN(test_gradcheck_builtin_and_errors);
    RUN(test_callback_errors);
    RUN(test_user_op_trains);
    return sdl_test_finish();
}
