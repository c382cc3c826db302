/* cuda_test_amp.cu - the CUDA backend's gradient helpers and mixed precision against the CPU:
   sdl_grad_scale and sdl_clip_grad_norm (NaN gradients left alone), gradient accumulation
   and clipping with every optimizer, bf16/fp16 conversions (round to nearest even), every
   GEMM op in bf16 and fp16 within 1e-2 of the CPU's f32, a bf16 training run of the Fashion
   CNN shape, and the loss scaler on the GPU (an injected Inf skips the update and halves the
   scale, good updates grow it, an fp16 run that starts with an overflowing scale backs off
   and then tracks the CPU). Without a GPU it prints a skip line and "0 passed, 0 failed".

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_amp.cu -o cuda_test_amp -lcublas */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_CONV_SCRATCH ((size_t)256 << 10) /* the conv runs several chunks of samples */
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"

#define TOL_LP 1e-2 /* bf16/fp16 GEMM inputs against the CPU's f32 (the issue's tolerance) */

/* ---- helpers ---------------------------------------------------------------------------- */
static void dev_set(float *d, float v) { cudaMemcpy(d, &v, sizeof v, cudaMemcpyHostToDevice); }

/* max |got - want| / max |want|; NaN counts as the worst */
static double rel_err(const float *got, const float *want, int64_t n) {
    double mx = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mx = mx > fabs((double)want[i]) ? mx : fabs((double)want[i]);
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= err)) err = e;
    }
    return err / (mx > 0.0 ? mx : 1.0);
}
static double dev_err(const float *dev, const float *host, int64_t n) {
    float *h = dev_floats(dev, n);
    double e = rel_err(h, host, n);
    free(h);
    return e;
}

static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 20, 64, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 64, 33, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "4", 33, 5, true));
    return net;
}

/* the same model twice (the init draws from the global RNG: each right after its seed), the
   second moved to the GPU */
static void model_pair(sdl_model **mc, sdl_module **nc, sdl_model **mg, sdl_module **ng, uint64_t seed) {
    *mc = sdl_model_new(seed);
    *nc = make_mlp(*mc);
    *mg = sdl_model_new(seed);
    *ng = make_mlp(*mg);
    CHECK(sdl_cuda_model_to_device(*mg) == SDL_OK, "model_to_device: %s", sdl_last_error());
}

/* batch k: x (16, 20) uniform in [-1, 1), y (16) in [0, 5); the same on every call */
static void batch(int k, sdl_tensor **x, sdl_tensor **y) {
    sdl_manual_seed(500 + (uint64_t)k);
    *x = sdl_tensor_new(sdl_shape2(16, 20), SDL_F32);
    sdl_tensor_uniform(*x, -1.0f, 1.0f);
    *y = test_ids(16, 5);
}
static sdl_tensor *mlp_loss(sdl_module *net, sdl_tensor *x, sdl_tensor *y, bool gpu) {
    if (gpu) { x = sdl_cuda_to_device(x); y = sdl_cuda_to_device(y); }
    return sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
}

/* ---- conversions: CUDA's rounding (nearest, ties to even), checked on the host ----------- */
static unsigned bf16_bits(float f) { __nv_bfloat16 h = __float2bfloat16(f); unsigned short u; memcpy(&u, &h, 2); return u; }
static unsigned f16_bits(float f) { __half h = __float2half_rn(f); unsigned short u; memcpy(&u, &h, 2); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_conversions(void) {
    struct { uint32_t in; unsigned want; } bf[] = {
        {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80}, /* 1 + 2^-8: a tie, to even (down) */
        {0x3f818000u, 0x3f82},                        /* a tie with an odd last bit: up */
        {0x3f808001u, 0x3f81}, {0xbf80ffffu, 0xbf81}, /* above the tie: up; -1.0078 */
        {0x7f7fffffu, 0x7f80},                        /* FLT_MAX rounds to Inf */
        {0x7f800000u, 0x7f80}, {0x80000000u, 0x8000}, {0x00000001u, 0x0000}};
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++)
        CHECK(bf16_bits(from_bits(bf[i].in)) == bf[i].want, "bf16(%08x) = %04x, want %04x", bf[i].in, bf16_bits(from_bits(bf[i].in)), bf[i].want);
    struct { uint32_t in; unsigned want; } hf[] = {
        {0x3f800000u, 0x3c00}, {0x3f801000u, 0x3c00}, /* 1 + 2^-11: a tie, to even */
        {0x3f803000u, 0x3c02}, {0xc0000000u, 0xc000},
        {0x477fe000u, 0x7bff}, {0x477fefffu, 0x7bff}, /* 65504, just below 65520 */
        {0x477ff000u, 0x7c00},                        /* 65520: the tie goes to Inf */
        {0x38800000u, 0x0400},                        /* 2^-14, the smallest normal */
        {0x33800000u, 0x0001}, {0x33000000u, 0x0000}, /* 2^-24; 2^-25 ties to 0 */
        {0x33400000u, 0x0001}, {0x34400000u, 0x0003}}; /* 1.5 2^-25 -> 2^-24; 3 2^-24 */
    for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++)
        CHECK(f16_bits(from_bits(hf[i].in)) == hf[i].want, "f16(%08x) = %04x, want %04x", hf[i].in, f16_bits(from_bits(hf[i].in)), hf[i].want);
    CHECK(isnan(__bfloat162float(__float2bfloat16(NAN))) && isnan(__half2float(__float2half_rn(NAN))), "NaN stays NaN");
    CHECK(__half2float(__float2half_rn(from_bits(0x33800000u))) == from_bits(0x33800000u), "a subnormal half converts back exactly");
    CHECK(sdl_cuda_set_precision(SDL_I32) == SDL_ERR_ARG && sdl_cuda_precision() == SDL_F32, "set_precision rejects i32");
}

/* sdl.h's sdl_autocast (what a program that cc also builds calls) reaches
   sdl_cuda_set_precision through the backend table */
static void test_autocast(void) {
    CHECK(sdl_autocast(SDL_CUDA, SDL_F16) == SDL_OK && sdl_cuda_precision() == SDL_F16, "autocast f16: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_CUDA, SDL_BF16) == SDL_OK && sdl_cuda_precision() == SDL_BF16, "autocast bf16: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_CUDA, SDL_I32) == SDL_ERR_ARG && sdl_cuda_precision() == SDL_BF16, "autocast rejects i32, keeps bf16");
    CHECK(sdl_autocast(SDL_CUDA, SDL_F32) == SDL_OK && sdl_cuda_precision() == SDL_F32, "autocast f32 turns it off");
    sdl_clear_error();
}

/* ---- sdl_grad_scale and sdl_clip_grad_norm on the GPU ------------------------------------ */
static void test_grad_scale_clip(void) {
    sdl_model *mc, *mg;
    sdl_module *nc, *ng;
    model_pair(&mc, &nc, &mg, &ng, 7);
    sdl_tensor *x, *y;
    batch(0, &x, &y);
    CHECK(sdl_backward(mlp_loss(nc, x, y, false)) == SDL_OK && sdl_backward(mlp_loss(ng, x, y, true)) == SDL_OK, "backward: %s", sdl_last_error());
    int64_t n = mc->param_floats;
    CHECK(dev_err(mg->grad_data, mc->grad_data, n) <= 1e-5, "gradients before");
    sdl_grad_scale(mc, 0.37f);
    sdl_grad_scale(mg, 0.37f);
    CHECK(dev_err(mg->grad_data, mc->grad_data, n) <= 1e-5, "sdl_grad_scale: %g", dev_err(mg->grad_data, mc->grad_data, n));
    float big_c = sdl_clip_grad_norm(mc, 1e9f), big_g = sdl_clip_grad_norm(mg, 1e9f);
    CHECK(big_g > 0.0f && fabs((double)big_g - big_c) <= 1e-5 * big_c, "norm GPU %.9g CPU %.9g", big_g, big_c);
    float again = sdl_clip_grad_norm(mg, 1e9f);
    CHECK(memcmp(&again, &big_g, sizeof again) == 0, "the GPU norm repeats bit for bit (%.9g, %.9g)", again, big_g);
    CHECK(dev_err(mg->grad_data, mc->grad_data, n) <= 1e-5, "a norm below max_norm changes nothing");
    float nc3 = sdl_clip_grad_norm(mc, big_c / 3.0f), ng3 = sdl_clip_grad_norm(mg, big_c / 3.0f);
    CHECK(fabs((double)ng3 - nc3) <= 1e-5 * nc3, "clip norms %g %g", ng3, nc3);
    CHECK(dev_err(mg->grad_data, mc->grad_data, n) <= 1e-5, "clipped gradients: %g", dev_err(mg->grad_data, mc->grad_data, n));
    float after = sdl_clip_grad_norm(mg, 1e9f);
    CHECK(fabs((double)after - big_c / 3.0) <= 1e-5 * big_c, "norm after clipping %g, want %g", after, big_c / 3.0);
    /* a NaN gradient: the norm is NaN and the gradients stay as they were */
    dev_set(mg->grad_data + n / 2, NAN);
    float *before = dev_floats(mg->grad_data, n);
    float bad = sdl_clip_grad_norm(mg, 1e-3f);
    float *now = dev_floats(mg->grad_data, n);
    CHECK(isnan(bad) && memcmp(before, now, sizeof(float) * (size_t)n) == 0, "NaN norm %g; gradients left alone", bad);
    dev_set(mg->grad_data + n / 2, INFINITY);
    CHECK(isinf(sdl_clip_grad_norm(mg, 1e-3f)), "an Inf gradient gives an Inf norm");
    free(before);
    free(now);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

/* ---- accumulation (k = 3) and clipping with each optimizer: 9 calls, 3 updates ------------ */
static void accum_clip(const char *name, sdl_optim_desc d) {
    d.accum_steps = 3;
    d.max_grad_norm = 0.1f; /* below the norms here (0.19 to 0.29): every update clips */
    sdl_model *mc, *mg;
    sdl_module *nc, *ng;
    model_pair(&mc, &nc, &mg, &ng, 11);
    sdl_optim *oc = sdl_optim_new(mc, &d), *og = sdl_optim_new(mg, &d);
    CHECK(oc && og, "%s: optimizers: %s", name, sdl_last_error());
    if (!oc || !og) return;
    for (int call = 0; call < 9; call++) {
        sdl_tensor *x, *y;
        batch(call, &x, &y);
        CHECK(sdl_backward(mlp_loss(nc, x, y, false)) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "%s: CPU: %s", name, sdl_last_error());
        CHECK(sdl_backward(mlp_loss(ng, x, y, true)) == SDL_OK && sdl_optim_step(og) == SDL_OK, "%s: GPU call %d: %s", name, call, sdl_last_error());
        if (call % 3 == 2) {
            CHECK(og->grad_norm > 0.1f && fabs((double)og->grad_norm - oc->grad_norm) <= 1e-5 * oc->grad_norm,
                  "%s update %d: norm GPU %.8g CPU %.8g", name, call / 3, og->grad_norm, oc->grad_norm);
        } else {
            /* between updates the gradients add up on the device as on the CPU */
            CHECK(dev_err(mg->grad_data, mc->grad_data, mc->param_floats) <= 1e-5, "%s call %d: accumulated gradients", name, call);
        }
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
    }
    CHECK(og->step == 3 && oc->step == 3 && og->micro == 0, "%s: updates %lld", name, (long long)og->step);
    for (int i = 0; i < mc->nparams; i++) {
        double e = dev_err(sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel);
        CHECK(e <= 1e-5, "%s: %s differs from the CPU by %g", name, mc->params[i]->name, e);
    }
    for (int k = 0; k < sdl_optim_state_count(oc); k++) {
        double e = dev_err(sdl_optim_state_data(og, k), sdl_optim_state_data(oc, k), mc->param_floats);
        CHECK(e <= 1e-4, "%s: state %d differs by %g", name, k, e);
    }
    sdl_optim_free(oc);
    sdl_optim_free(og);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

static void test_accum_clip(void) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD; d.lr = 0.1f; d.momentum = 0.9f; d.weight_decay = 1e-3f;
    accum_clip("sgd", d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_ADAM; d.lr = 1e-3f; d.eps = 1e-6f;
    accum_clip("adam", d);
    d.kind = SDL_OPTIM_ADAMW; d.weight_decay = 0.1f;
    accum_clip("adamw", d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_LARS; d.lr = 0.5f; d.momentum = 0.9f; d.weight_decay = 0.05f; d.trust_coef = 0.01f;
    accum_clip("lars", d);
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_LAMB; d.lr = 1e-2f; d.weight_decay = 0.1f;
    accum_clip("lamb", d);
}

/* ---- every GEMM op in bf16 and fp16 against the CPU's f32 --------------------------------- */
typedef sdl_tensor *(*op_fn)(sdl_tensor **in);
static sdl_tensor *f_linear(sdl_tensor **in) { return sdl_linear(in[0], in[1], in[2]); }
static sdl_tensor *f_linear_nb(sdl_tensor **in) { return sdl_linear(in[0], in[1], NULL); }
static sdl_tensor *f_conv(sdl_tensor **in) { return sdl_conv2d(in[0], in[1], in[2], 1, 1); }
static sdl_tensor *f_conv_s2(sdl_tensor **in) { return sdl_conv2d(in[0], in[1], NULL, 2, 0); }
static sdl_tensor *f_convt(sdl_tensor **in) { return sdl_conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); }
static sdl_tensor *f_attn(sdl_tensor **in) { return sdl_attention(in[0], in[1], in[2]); }

/* L = sum(op(in) * w): the output and every input's gradient, GPU at `prec` vs CPU f32.
   Returns the forward's error (to show that the precision took effect). */
static double check_lp(const char *name, op_fn f, int nin, const sdl_shape *shapes, sdl_dtype prec) {
    sdl_tensor *h[3] = {0}, *d[3] = {0};
    for (int i = 0; i < nin; i++) {
        h[i] = sdl_tensor_new(shapes[i], SDL_F32);
        sdl_tensor_uniform(h[i], -1.0f, 1.0f);
        sdl_tensor_requires_grad(h[i]);
        d[i] = sdl_cuda_to_device(h[i]);
        d[i]->requires_grad = true;
    }
    const char *pn = prec == SDL_BF16 ? "bf16" : "fp16";
    sdl_tensor *out = f(h);
    sdl_tensor *w = sdl_tensor_new(sdl_tensor_shape(out), SDL_F32);
    sdl_tensor_uniform(w, -1.0f, 1.0f);
    CHECK(sdl_backward(sdl_sum(sdl_mul(out, w))) == SDL_OK, "%s: CPU backward", name);
    sdl_cuda_set_precision(prec);
    sdl_tensor *dout = f(d);
    CHECK(dout && sdl_backward(sdl_sum(sdl_mul(dout, sdl_cuda_to_device(w)))) == SDL_OK && sdl_cuda_synchronize() == SDL_OK,
          "%s %s: GPU: %s", name, pn, sdl_last_error());
    sdl_cuda_set_precision(SDL_F32);
    double ef = dout ? dev_err(sdl_f32(dout), sdl_f32(out), out->numel) : 1.0;
    CHECK(ef <= TOL_LP, "%s %s: forward differs from the CPU's f32 by %g", name, pn, ef);
    for (int i = 0; i < nin; i++) {
        double e = d[i]->grad ? dev_err(d[i]->grad, h[i]->grad, h[i]->numel) : 1.0;
        CHECK(e <= TOL_LP, "%s %s: grad of input %d differs by %g", name, pn, i, e);
    }
    sdl_tensor_free(w);
    for (int i = 0; i < nin; i++) sdl_tensor_free(h[i]);
    sdl_arena_reset();
    return ef;
}

static float round_lp(float v, sdl_dtype prec) {
    return prec == SDL_BF16 ? __bfloat162float(__float2bfloat16(v)) : __half2float(__float2half_rn(v));
}

static void test_gemm_ops_lp(void) {
    sdl_dtype precs[2] = {SDL_BF16, SDL_F16};
    for (int p = 0; p < 2; p++) {
        sdl_dtype prec = precs[p];
        sdl_shape lin[3] = {sdl_shape2(33, 65), sdl_shape2(17, 65), sdl_shape1(17)};
        double e = check_lp("linear", f_linear, 3, lin, prec);
        CHECK(e > 1e-6, "linear: the low precision shows (error %g vs f32)", e);
        sdl_shape lin3[2] = {sdl_shape3(3, 5, 40), sdl_shape2(9, 40)};
        check_lp("linear 3-d, no bias", f_linear_nb, 2, lin3, prec);
        sdl_shape cv[3] = {sdl_shape4(5, 3, 11, 9), sdl_shape4(7, 3, 3, 3), sdl_shape1(7)};
        check_lp("conv2d 3x3 s1 p1", f_conv, 3, cv, prec);
        sdl_shape cv2[2] = {sdl_shape4(4, 6, 13, 12), sdl_shape4(5, 6, 3, 3)};
        check_lp("conv2d 3x3 s2, no bias", f_conv_s2, 2, cv2, prec);
        sdl_shape ct[3] = {sdl_shape4(3, 4, 5, 6), sdl_shape4(4, 6, 3, 3), sdl_shape1(6)};
        check_lp("conv_transpose2d s2", f_convt, 3, ct, prec);
        sdl_shape at[3] = {sdl_shape4(2, 3, 9, 8), sdl_shape4(2, 3, 9, 8), sdl_shape4(2, 3, 9, 8)};
        check_lp("attention", f_attn, 3, at, prec);
    }
    /* the forward of a linear against a double reference on rounded inputs: the GEMM reads
       round-to-nearest-even copies and sums in f32 (1e-5 leaves room only for f32 sums) */
    for (int p = 0; p < 2; p++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape2(9, 50), SDL_F32), *w = sdl_tensor_new(sdl_shape2(6, 50), SDL_F32);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        sdl_tensor_uniform(w, -1.0f, 1.0f);
        sdl_cuda_set_precision(precs[p]);
        sdl_tensor *y = sdl_linear(sdl_cuda_to_device(x), sdl_cuda_to_device(w), NULL);
        sdl_cuda_set_precision(SDL_F32);
        float want[54];
        for (int r = 0; r < 9; r++)
            for (int o = 0; o < 6; o++) {
                double s = 0.0;
                for (int k = 0; k < 50; k++) s += (double)round_lp(sdl_f32(x)[r * 50 + k], precs[p]) * (double)round_lp(sdl_f32(w)[o * 50 + k], precs[p]);
                want[r * 6 + o] = (float)s;
            }
        double e = y ? dev_err(sdl_f32(y), want, 54) : 1.0;
        CHECK(e <= 1e-5, "%s linear vs a double GEMM on rounded inputs: %g", precs[p] == SDL_BF16 ? "bf16" : "fp16", e);
        sdl_tensor_free(x);
        sdl_tensor_free(w);
        sdl_arena_reset();
    }
}

/* the launches of op's backward at precision prec (the emulator counts them) */
#ifdef CUDA_EMU
static long backward_launches(op_fn f, int nin, const sdl_shape *shapes, sdl_dtype prec) {
    sdl_tensor *d[3] = {0};
    for (int i = 0; i < nin; i++) {
        sdl_tensor *h = sdl_tensor_new(shapes[i], SDL_F32);
        sdl_tensor_uniform(h, -1.0f, 1.0f);
        d[i] = sdl_cuda_to_device(h);
        d[i]->requires_grad = true;
        sdl_tensor_free(h);
    }
    sdl_cuda_set_precision(prec);
    sdl_tensor *loss = sdl_sum(f(d));
    long before = emu_launches;
    CHECK(sdl_backward(loss) == SDL_OK, "backward: %s", sdl_last_error());
    long n = emu_launches - before;
    sdl_cuda_set_precision(SDL_F32);
    sdl_arena_reset();
    return n;
}
#endif

/* linear's backward reads dY in two GEMMs: in bf16 it is converted once, so the conversions
   are dY, w, x (3). Attention's P and dS are made in bf16: only dY, dY, V, K, Q are (5). */
static void test_gemm_same_a(void) {
#ifdef CUDA_EMU
    sdl_shape lin[2] = {sdl_shape2(9, 50), sdl_shape2(6, 50)};
    long lf = backward_launches(f_linear_nb, 2, lin, SDL_F32), lb = backward_launches(f_linear_nb, 2, lin, SDL_BF16);
    CHECK(lb - lf == 3, "linear backward: %ld conversions in bf16, want 3 (dY once)", lb - lf);
    sdl_shape at[3] = {sdl_shape4(2, 3, 9, 8), sdl_shape4(2, 3, 9, 8), sdl_shape4(2, 3, 9, 8)};
    long af = backward_launches(f_attn, 3, at, SDL_F32), ab = backward_launches(f_attn, 3, at, SDL_BF16);
    CHECK(ab - af == 5, "attention backward: %ld conversions in bf16, want 5 (P and dS are bf16)", ab - af);
#else
    printf("  (conversion count: under the emulator only, which counts launches)\n");
#endif
}

/* ---- a bf16 training run of the Fashion CNN shape against f32 on the CPU ------------------ */

static void test_bf16_cnn(void) {
    sdl_model *mc = sdl_model_new(21);
    sdl_module *nc = fashion_cnn_net(mc);
    sdl_model *mg = sdl_model_new(21);
    sdl_module *ng = fashion_cnn_net(mg);
    CHECK(sdl_cuda_model_to_device(mg) == SDL_OK, "to device: %s", sdl_last_error());
    sdl_optim *oc = sdl_sgd(mc, 0.05f, 0.9f, 0.0f, false), *og = sdl_sgd(mg, 0.05f, 0.9f, 0.0f, false);
    bool differs = false;
    float *p0 = (float *)malloc(sizeof(float) * (size_t)mc->param_floats);
    memcpy(p0, mc->param_data, sizeof(float) * (size_t)mc->param_floats);
    for (int step = 0; step < 3; step++) {
        sdl_manual_seed(900 + (uint64_t)step);
        sdl_tensor *x = sdl_tensor_new(sdl_shape4(8, 1, 28, 28), SDL_F32), *y = test_ids(8, 10);
        sdl_tensor_uniform(x, 0.0f, 1.0f);
        sdl_tensor *lc = sdl_cross_entropy(sdl_forward(nc, x), y, 0.0f);
        CHECK(sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU step: %s", sdl_last_error());
        sdl_cuda_set_precision(SDL_BF16);
        sdl_tensor *lg = sdl_cross_entropy(sdl_forward(ng, sdl_cuda_to_device(x)), sdl_cuda_to_device(y), 0.0f);
        CHECK(lg && sdl_backward(lg) == SDL_OK && sdl_optim_step(og) == SDL_OK && sdl_cuda_synchronize() == SDL_OK, "GPU bf16 step %d: %s", step, sdl_last_error());
        sdl_cuda_set_precision(SDL_F32);
        float a = sdl_item(lc), b = lg ? sdl_item(lg) : NAN;
        CHECK(fabs((double)a - b) <= TOL_LP * fabs((double)a), "step %d: loss CPU f32 %.6f GPU bf16 %.6f", step, a, b);
        differs = differs || a != b;
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
    }
    CHECK(differs, "bf16 losses equal the f32 ones bit for bit: the precision did not take effect");
    /* the parameters: how far bf16 ends from f32 against how far f32 moved, in L2 norm per
       tensor (a max-norm would be ruled by the few relu units whose sign the rounding flips,
       which change their rows' updates whole). PyTorch's bf16 autocast on this net and these
       steps ends 0.1% to 12% of the update away from its f32 (10 seeds; sdl here: 0.2% to
       12%): allow 25%. */
    float *pg = dev_floats(mg->param_data, mc->param_floats);
    for (int i = 0; i < mc->nparams; i++) {
        double dist = 0.0, moved = 0.0;
        for (int64_t j = mc->param_offset[i]; j < mc->param_offset[i + 1]; j++) {
            dist += ((double)pg[j] - mc->param_data[j]) * ((double)pg[j] - mc->param_data[j]);
            moved += ((double)mc->param_data[j] - p0[j]) * ((double)mc->param_data[j] - p0[j]);
        }
        printf("%s %s %.3f%s", i == 0 ? "  bf16 distance from f32 / f32 update:" : "", mc->params[i]->name, sqrt(dist / moved), i == mc->nparams - 1 ? "\n" : "");
        CHECK(moved > 0.0 && sqrt(dist) <= 0.25 * sqrt(moved), "%s: bf16 ends %g of the f32 update away from f32", mc->params[i]->name, sqrt(dist / moved));
    }
    free(pg);
    free(p0);
    sdl_optim_free(oc);
    sdl_optim_free(og);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

/* ---- the loss scaler on the GPU ------------------------------------------------------------ */
static void test_scaler_inject(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_mlp(m);
    CHECK(sdl_cuda_model_to_device(m) == SDL_OK, "to device");
    sdl_optim *o = sdl_adam(m, 1e-3f, 0.9f, 0.999f, 0.0f);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    sc.growth_interval = 2;
    int64_t n = m->param_floats;
    sdl_tensor *x, *y;
    batch(0, &x, &y);
    CHECK(sdl_scaled_backward(&sc, mlp_loss(net, x, y, true)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK && !sc.found_inf, "good step");
    sdl_arena_reset();
    float *p0 = dev_floats(m->param_data, n), *s0 = dev_floats(o->state, 2 * n);
    CHECK(sdl_scaled_backward(&sc, mlp_loss(net, x, y, true)) == SDL_OK, "backward: %s", sdl_last_error());
    dev_set(m->grad_data + n - 3, INFINITY);
    CHECK(sdl_scaler_step(&sc, o) == SDL_OK && sc.found_inf && sc.skipped == 1, "the injected Inf skips the update");
    CHECK(sc.scale == 32768.0f && sc.good_steps == 0 && o->step == 1, "scale %g after the skip", sc.scale);
    float *p1 = dev_floats(m->param_data, n), *s1 = dev_floats(o->state, 2 * n), *g1 = dev_floats(m->grad_data, n);
    CHECK(memcmp(p0, p1, sizeof(float) * (size_t)n) == 0 && memcmp(s0, s1, sizeof(float) * (size_t)(2 * n)) == 0, "parameters and state unchanged");
    bool zero = true;
    for (int64_t i = 0; i < n; i++) zero = zero && g1[i] == 0.0f;
    CHECK(zero, "the gradients are zeroed after a skip");
    sdl_arena_reset();
    for (int k = 0; k < 2; k++) {
        CHECK(sdl_scaled_backward(&sc, mlp_loss(net, x, y, true)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK && !sc.found_inf, "good step %d", k);
        sdl_arena_reset();
    }
    CHECK(sc.scale == 65536.0f && o->step == 3, "two good steps grow the scale back: %g", sc.scale);
    free(p0); free(s0); free(p1); free(s1); free(g1);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
}

/* fp16 with a scale of 2^40: the scaled gradients overflow fp16 in the backward GEMMs, so the
   first updates are skipped while the scale halves; then the run tracks f32 on the CPU
   (batch k for update k on both) */
static void test_scaler_fp16(void) {
    sdl_model *mc, *mg;
    sdl_module *nc, *ng;
    model_pair(&mc, &nc, &mg, &ng, 13);
    sdl_optim *oc = sdl_sgd(mc, 0.1f, 0.9f, 0.0f, false), *og = sdl_sgd(mg, 0.1f, 0.9f, 0.0f, false);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    sc.scale = 1099511627776.0f; /* 2^40 */
    float *p0 = dev_floats(mg->param_data, mg->param_floats);
    int tries = 0;
    sdl_cuda_set_precision(SDL_F16);
    while (og->step < 4 && tries < 80) {
        sdl_tensor *x, *y;
        batch((int)og->step, &x, &y);
        CHECK(sdl_scaled_backward(&sc, mlp_loss(ng, x, y, true)) == SDL_OK && sdl_scaler_step(&sc, og) == SDL_OK, "fp16 step: %s", sdl_last_error());
        if (tries == 0) {
            float *p1 = dev_floats(mg->param_data, mg->param_floats);
            CHECK(sc.found_inf && memcmp(p0, p1, sizeof(float) * (size_t)mg->param_floats) == 0, "2^40 overflows fp16: the first update is skipped");
            free(p1);
        }
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
        tries++;
    }
    sdl_cuda_set_precision(SDL_F32);
    CHECK(og->step == 4 && sc.skipped >= 1 && sc.skipped == tries - 4, "updates %lld, skipped %lld of %d", (long long)og->step, (long long)sc.skipped, tries);
    CHECK(sc.scale < 1099511627776.0f && sc.scale >= 1.0f, "the scale backed off to %g", sc.scale);
    for (int k = 0; k < 4; k++) {
        sdl_tensor *x, *y;
        batch(k, &x, &y);
        CHECK(sdl_backward(mlp_loss(nc, x, y, false)) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU step");
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
    }
    for (int i = 0; i < mc->nparams; i++) {
        double e = dev_err(sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel);
        CHECK(e <= TOL_LP, "%s after 4 fp16 updates differs from f32 by %g", mc->params[i]->name, e);
    }
    free(p0);
    sdl_optim_free(oc);
    sdl_optim_free(og);
    sdl_model_free(mc);
    sdl_model_free(mg);
}

/* ---- steady state: fp16 GEMMs, the loss scaler, accumulation (k = 2) and clipping allocate
   nothing after the first steps, on the device or the host ------------------------------- */
static long dev_allocs;
static void *(*real_alloc)(size_t);
static void *counting_alloc(size_t n) { dev_allocs++; return real_alloc(n); }

static void test_steady_state_amp(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_mlp(m);
    sdl_cuda_model_to_device(m);
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_ADAMW; d.accum_steps = 2; d.max_grad_norm = 1.0f;
    sdl_optim *o = sdl_optim_new(m, &d);
    sdl_loss_scaler sc;
    memset(&sc, 0, sizeof sc);
    sdl_tensor *x, *y;
    batch(0, &x, &y);
    sdl_cuda_set_precision(SDL_F16);
    long dev0 = 0, host0 = 0;
    size_t cap0 = 0;
    for (int i = 0; i < 8; i++) {
        if (i == 4) { dev0 = dev_allocs; host0 = sdl_test_allocs; cap0 = sdl_cuda_arena_capacity(); }
        CHECK(sdl_scaled_backward(&sc, mlp_loss(net, x, y, true)) == SDL_OK && sdl_scaler_step(&sc, o) == SDL_OK, "step %d: %s", i, sdl_last_error());
        sdl_arena_reset();
    }
    sdl_cuda_set_precision(SDL_F32);
    CHECK(o->step == 4 && sc.skipped == 0, "4 updates (%lld), none skipped (%lld)", (long long)o->step, (long long)sc.skipped);
    CHECK(dev_allocs == dev0, "%ld device allocations in 4 steady-state steps", dev_allocs - dev0);
    CHECK(sdl_test_allocs == host0, "%ld host allocations in 4 steady-state steps", sdl_test_allocs - host0);
    CHECK(sdl_cuda_arena_capacity() == cap0, "device arena grew from %zu to %zu", cap0, sdl_cuda_arena_capacity());
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
    sdl_register_backend(SDL_CUDA, &orig);
}

int main(void) {
    (void)gradcheck;
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n0 passed, 1 failed\n", sdl_last_error());
        return 1;
    }
    RUN(test_conversions);
    RUN(test_autocast);
    RUN(test_grad_scale_clip);
    RUN(test_accum_clip);
    RUN(test_gemm_ops_lp);
    RUN(test_gemm_same_a);
    RUN(test_bf16_cnn);
    RUN(test_scaler_inject);
    RUN(test_scaler_fp16);
    RUN(test_steady_state_amp);
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
