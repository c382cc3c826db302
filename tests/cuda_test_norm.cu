/* cuda_test_norm.cu - sdl_cuda.h's per-channel kernels in chunks (batch norm, the conv bias
   gradient) and its division-free index math, against the CPU:
   - sdl__cu_divq (multiply-shift division) against / at the edges of its range, and its 64-bit
     fallback for dividends past 2^31
   - the chunks of sdl__cu_chunks_make cover each channel's (plane, column) values once, in
     about SDL__CU_CHUNK values each, for shapes that split by planes, by columns and by both
   - batch norm forward and backward (training and eval; 4-d and (N, C); with and without
     gamma, beta and running stats) on shapes with several chunks per channel, and right at
     the boundary of one and two chunks: output, the gradients and the running stats
   - conv2d and conv_transpose2d bias gradients (sdl__cu_chan_sum) over several chunks
   - add and mul with b broadcast along a middle dim (every dim of a enters b's index)
   - a ResNet basic block (conv, bn, relu, conv, bn, + x, relu), forward and backward; under
     the emulator it prints the kernel launches of each
   - batch norm repeats bit for bit
   Without a GPU it prints a skip line after the two host tests and exits 0.

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_norm.cu -o cuda_test_norm -lcublas

   Tolerances as cuda_test_ops.cu: max |gpu - cpu| / max |cpu| <= 1e-5 (f32), and
   max(1e-5, 1e-6 sqrt(K)) where cuBLAS sums K products in another order (conv). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"

#define TOL_F32 1e-5
static double tol_k(double K) { return 1e-6 * sqrt(K) > TOL_F32 ? 1e-6 * sqrt(K) : TOL_F32; }

/* ---- host: the division and the chunks ------------------------------------------------ */
static void test_div(void) {
    const int64_t big = ((int64_t)1 << 31) - 1;
    int64_t ds[] = {1, 2, 3, 5, 7, 9, 16, 17, 31, 32, 33, 49, 255, 256, 257, 676, 1000, 4095, 4096, 4097,
                    65535, 65536, 65537, 1000003, (int64_t)1 << 30, ((int64_t)1 << 30) + 1, big - 1, big};
    long bad = 0, checked = 0;
    for (size_t a = 0; a < sizeof ds / sizeof ds[0]; a++) {
        int64_t d = ds[a];
        sdl__cu_div f = sdl__cu_div_make(d, big);
        CHECK(f.m != 0, "d = %lld: the fast path for dividends below 2^31", (long long)d);
        /* near 0, near each multiple of d up to 2^31 (sampled), and the top of the range */
        int64_t ns[64];
        int k = 0;
        for (int64_t n = 0; n < 20; n++) ns[k++] = n;
        for (int64_t q = 1; q <= big / d && k < 52; q = q * 3 + 1) { ns[k++] = q * d - 1; ns[k++] = q * d; ns[k++] = q * d + 1; }
        ns[k++] = big - 1;
        ns[k++] = big;
        for (int i = 0; i < k; i++) {
            int64_t n = ns[i];
            if (n < 0 || n > big) continue;
            int64_t q, r = sdl__cu_divmod(f, n, &q);
            checked++;
            if (q != n / d || r != n % d) {
                if (bad++ < 5) printf("  n = %lld, d = %lld: q %lld r %lld, want %lld %lld\n", (long long)n, (long long)d, (long long)q, (long long)r, (long long)(n / d), (long long)(n % d));
            }
        }
    }
    /* every n below 2^20 for the divisors of small shapes */
    for (int64_t d = 1; d <= 40; d++) {
        sdl__cu_div f = sdl__cu_div_make(d, 1 << 20);
        for (int64_t n = 0; n < (1 << 20); n++) {
            checked++;
            if (sdl__cu_divq(f, n) != n / d && bad++ < 5) printf("  n = %lld, d = %lld: q %lld\n", (long long)n, (long long)d, (long long)sdl__cu_divq(f, n));
        }
    }
    CHECK(bad == 0, "%ld of %ld quotients wrong", bad, checked);
    /* past 2^31 the 64-bit division */
    sdl__cu_div f = sdl__cu_div_make(7, (int64_t)1 << 31);
    int64_t q, r = sdl__cu_divmod(f, ((int64_t)1 << 40) + 5, &q);
    CHECK(f.m == 0 && q == (((int64_t)1 << 40) + 5) / 7 && r == (((int64_t)1 << 40) + 5) % 7, "64-bit fallback: m %u q %lld r %lld", f.m, (long long)q, (long long)r);
    f = sdl__cu_div_make((int64_t)1 << 31, 10);
    CHECK(f.m == 0 && sdl__cu_divq(f, ((int64_t)1 << 33) + 1) == 4, "a divisor of 2^31 divides in 64 bits");
}

/* every value of every channel in exactly one chunk; chunk sizes near SDL__CU_CHUNK */
static void check_chunks(int64_t N, int64_t C, int64_t S, int64_t want_sp) {
    sdl__cu_chunks g = sdl__cu_chunks_make(N, C, S);
    CHECK(g.sp == g.pn * g.ps && g.sp == want_sp, "(%lld, %lld, %lld): %lld chunks (%lld x %lld), want %lld", (long long)N, (long long)C,
          (long long)S, (long long)g.sp, (long long)g.pn, (long long)g.ps, (long long)want_sp);
    CHECK(g.lg >= 0 && (1 << g.lg) <= SDL__CU_THREADS, "lg %d", g.lg);
    unsigned char *seen = (unsigned char *)calloc((size_t)(N * C * S), 1);
    int64_t lo = N * S, hi = 0;
    for (int64_t b = 0; b < C * g.sp; b++) {
        sdl__cu_chunk r = sdl__cu_chunk_at(g, b);
        int64_t cnt = (r.n1 - r.n0) * (r.j1 - r.j0);
        lo = cnt < lo ? cnt : lo;
        hi = cnt > hi ? cnt : hi;
        CHECK(r.c == b / g.sp && r.n0 >= 0 && r.n1 <= N && r.j0 >= 0 && r.j1 <= S, "chunk %lld out of range", (long long)b);
        CHECK(r.j1 - r.j0 <= ((int64_t)1 << g.lg) || (1 << g.lg) == SDL__CU_THREADS, "chunk %lld: a plane's columns in one pass of 2^%d threads", (long long)b, g.lg);
        for (int64_t n = r.n0; n < r.n1; n++)
            for (int64_t j = r.j0; j < r.j1; j++) seen[(n * C + r.c) * S + j]++;
    }
    int64_t wrong = 0;
    for (int64_t i = 0; i < N * C * S; i++) wrong += seen[i] != 1;
    CHECK(wrong == 0, "(%lld, %lld, %lld): %lld values not in exactly one chunk", (long long)N, (long long)C, (long long)S, (long long)wrong);
    int64_t most = N * S / SDL__CU_CHUNKS_MAX > SDL__CU_CHUNK ? N * S / SDL__CU_CHUNKS_MAX : SDL__CU_CHUNK;
    CHECK(lo >= 1 && (g.sp == 1 || hi <= 2 * most), "(%lld, %lld, %lld): chunks of %lld to %lld values", (long long)N, (long long)C,
          (long long)S, (long long)lo, (long long)hi);
    free(seen);
}

static void test_chunks(void) {
    check_chunks(16, 2, 256, 1);    /* exactly SDL__CU_CHUNK values: one chunk */
    check_chunks(4097, 2, 1, 2);    /* one more (batch norm 1d): two chunks of planes */
    check_chunks(17, 2, 256, 2);    /* planes */
    check_chunks(2, 3, 4160, 4);    /* 3 wanted: 2 plane ranges x 2 column ranges */
    check_chunks(1, 2, 8190, 2);    /* one sample: columns only */
    check_chunks(100, 2, 49, 2);    /* 7 x 7 planes: 64 threads a plane */
    check_chunks(300, 3, 9, 1);
    check_chunks(3, 1, 100000, 75); /* 74 wanted: 3 planes x 25 column ranges */
    check_chunks(5, 1, 1000003, 1025); /* 1221 wanted, capped at 1024: 5 planes x 205 column ranges */
}

/* ---- ops on both devices ---------------------------------------------------------------- */
enum { IN_GRAD, IN_NOGRAD, IN_STATE };
#define MAX_IN 5
typedef sdl_tensor *(*op_fn)(sdl_tensor **in, void *ctx);

/* max |got - want| / max |want| <= tol, else prints the worst element */
static int close_to(const char *label, const char *what, const float *dev, const float *host, int64_t n, double tol) {
    float *h = dev_floats(dev, n);
    double mx = 0.0, err = -1.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fabs((double)host[i]) > mx ? fabs((double)host[i]) : mx;
        double e = fabs((double)h[i] - (double)host[i]);
        if (!(e <= err)) { err = e; worst = i; }
    }
    double rel = err / (mx > 0.0 ? mx : 1.0);
    int ok = rel <= tol;
    if (!ok)
        printf("  FAIL %s: %s differs from the CPU by %g relative (tolerance %g); element %lld of %lld: gpu %.9g cpu %.9g\n", label, what,
               rel, tol, (long long)worst, (long long)n, n ? h[worst] : 0.0f, n ? host[worst] : 0.0f);
    free(h);
    return ok;
}

/* L = sum(op(in) * w) on both devices (random inputs in [-1, 1), state in [0.5, 1.5)):
   compares the output, the gradients of the IN_GRAD inputs, the IN_STATE inputs after */
static int both(const char *label, int nin, const sdl_shape *shape, const int *kind, op_fn f, void *ctx, double tol) {
    sdl_tensor *h[MAX_IN] = {0}, *d[MAX_IN] = {0};
    int ok = 1;
    for (int i = 0; i < nin; i++) {
        h[i] = sdl_tensor_new(shape[i], SDL_F32);
        sdl_tensor_uniform(h[i], kind[i] == IN_STATE ? 0.5f : -1.0f, kind[i] == IN_STATE ? 1.5f : 1.0f);
        if (kind[i] == IN_GRAD) sdl_tensor_requires_grad(h[i]);
        d[i] = sdl_cuda_to_device(h[i]); /* before the CPU op changes the running stats */
        if (!d[i]) { printf("  FAIL %s: to the device: %s\n", label, sdl_last_error()); ok = 0; }
        else d[i]->requires_grad = kind[i] == IN_GRAD;
    }
    sdl_tensor *out = ok ? f(h, ctx) : NULL, *w = NULL;
    float *cpu_out = NULL;
    if (ok && !out) { printf("  FAIL %s: CPU op: %s\n", label, sdl_last_error()); ok = 0; }
    if (ok) {
        w = sdl_tensor_new(sdl_tensor_shape(out), SDL_F32);
        sdl_tensor_uniform(w, -1.0f, 1.0f);
        cpu_out = (float *)malloc(sizeof(float) * (size_t)(out->numel + 1));
        memcpy(cpu_out, out->data, sizeof(float) * (size_t)out->numel);
        if (sdl_backward(sdl_sum(sdl_mul(out, w))) != SDL_OK) { printf("  FAIL %s: CPU backward: %s\n", label, sdl_last_error()); ok = 0; }
    }
    if (ok) {
        sdl_tensor *dout = f(d, ctx);
        if (!dout || sdl_cuda_synchronize() != SDL_OK) { printf("  FAIL %s: GPU op: %s\n", label, sdl_last_error()); ok = 0; }
        else if (!close_to(label, "forward output", sdl_f32(dout), cpu_out, out->numel, tol)) ok = 0;
        else if (sdl_backward(sdl_sum(sdl_mul(dout, sdl_cuda_to_device(w)))) != SDL_OK || sdl_cuda_synchronize() != SDL_OK) {
            printf("  FAIL %s: GPU backward: %s\n", label, sdl_last_error());
            ok = 0;
        } else {
            for (int i = 0; i < nin; i++) {
                char what[48];
                snprintf(what, sizeof what, kind[i] == IN_STATE ? "input %d after the op" : "gradient of input %d", i);
                if (kind[i] == IN_STATE) ok &= close_to(label, what, sdl_f32(d[i]), sdl_f32(h[i]), h[i]->numel, TOL_F32);
                else if (kind[i] == IN_GRAD) ok &= d[i]->grad ? close_to(label, what, d[i]->grad, h[i]->grad, h[i]->numel, tol) : 0;
            }
        }
    }
    free(cpu_out);
    sdl_tensor_free(w);
    for (int i = 0; i < nin; i++) sdl_tensor_free(h[i]);
    sdl_arena_reset();
    return ok;
}

/* ---- batch norm ------------------------------------------------------------------------- */
typedef struct bn_cfg { bool training, affine, stats; } bn_cfg;
static sdl_tensor *f_bn(sdl_tensor **in, void *ctx) {
    bn_cfg *c = (bn_cfg *)ctx;
    return sdl_batch_norm(in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, c->stats ? in[3] : NULL,
                          c->stats ? in[4] : NULL, c->training, 0.1f, 1e-5f);
}
static int bn_case(const char *name, sdl_shape xs, bn_cfg cfg, int xkind, int gkind) {
    int64_t C = xs.d[1];
    sdl_shape s[5] = {xs, sdl_shape1(C), sdl_shape1(C), sdl_shape1(C), sdl_shape1(C)};
    int k[5] = {xkind, gkind, gkind, cfg.stats ? IN_STATE : IN_NOGRAD, cfg.stats ? IN_STATE : IN_NOGRAD};
    return both(name, 5, s, k, f_bn, &cfg, TOL_F32);
}

static void test_batch_norm_chunks(void) {
    bn_cfg tr = {true, true, true}, bare = {true, false, false}, ev = {false, true, true};
    CHECK(bn_case("bn train (2, 3, 64, 65): 2 x 2 chunks", sdl_shape4(2, 3, 64, 65), tr, IN_GRAD, IN_GRAD), "planes and columns");
    CHECK(bn_case("bn train (1, 2, 91, 90): 2 column chunks", sdl_shape4(1, 2, 91, 90), tr, IN_GRAD, IN_GRAD), "one sample");
    CHECK(bn_case("bn train (17, 2, 16, 16): 2 plane chunks", sdl_shape4(17, 2, 16, 16), tr, IN_GRAD, IN_GRAD), "planes");
    CHECK(bn_case("bn train (16, 2, 16, 16): one chunk", sdl_shape4(16, 2, 16, 16), tr, IN_GRAD, IN_GRAD), "at the boundary");
    CHECK(bn_case("bn train (100, 2, 7, 7) bare", sdl_shape4(100, 2, 7, 7), bare, IN_GRAD, IN_NOGRAD), "7x7 planes, no affine, no stats");
    CHECK(bn_case("bn train 1d (4097, 3)", sdl_shape2(4097, 3), tr, IN_GRAD, IN_GRAD), "(N, C), two chunks");
    CHECK(bn_case("bn train 1d (300, 70)", sdl_shape2(300, 70), tr, IN_GRAD, IN_GRAD), "(N, C), one chunk");
    CHECK(bn_case("bn train (3, 1, 100, 111) only gamma, beta grads", sdl_shape4(3, 1, 100, 111), tr, IN_NOGRAD, IN_GRAD), "no dx");
    CHECK(bn_case("bn eval (2, 3, 64, 65)", sdl_shape4(2, 3, 64, 65), ev, IN_GRAD, IN_GRAD), "eval");
    CHECK(bn_case("bn eval (2, 3, 64, 65) only dx", sdl_shape4(2, 3, 64, 65), ev, IN_GRAD, IN_NOGRAD), "eval, no sums needed");
    CHECK(bn_case("bn eval 1d (4097, 3)", sdl_shape2(4097, 3), ev, IN_GRAD, IN_GRAD), "eval (N, C)");
}

/* the same inputs twice give the same bits (fixed chunks, fixed order) */
static void test_batch_norm_repeats(void) {
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(2, 3, 64, 65), SDL_F32), *w = sdl_tensor_new(sdl_shape4(2, 3, 64, 65), SDL_F32);
    sdl_tensor_uniform(x, -1.0f, 3.0f);
    sdl_tensor_uniform(w, -1.0f, 1.0f);
    float *got[2][2];
    for (int run = 0; run < 2; run++) {
        sdl_tensor *dx = sdl_cuda_to_device(x), *dw = sdl_cuda_to_device(w);
        dx->requires_grad = true;
        sdl_tensor *y = sdl_batch_norm(dx, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f);
        CHECK(y && sdl_backward(sdl_sum(sdl_mul(y, dw))) == SDL_OK, "%s", sdl_last_error());
        got[run][0] = dev_floats(sdl_f32(y), x->numel);
        got[run][1] = dev_floats(dx->grad, x->numel);
        sdl_arena_reset();
    }
    for (int k = 0; k < 2; k++) {
        CHECK(memcmp(got[0][k], got[1][k], sizeof(float) * (size_t)x->numel) == 0, "%s differs between two runs", k ? "dx" : "y");
        free(got[0][k]);
        free(got[1][k]);
    }
    sdl_tensor_free(x);
    sdl_tensor_free(w);
}

/* ---- conv bias gradients over several chunks -------------------------------------------- */
typedef struct conv_cfg { int stride, pad, out_pad; bool transpose; } conv_cfg;
static sdl_tensor *f_conv(sdl_tensor **in, void *ctx) {
    conv_cfg *c = (conv_cfg *)ctx;
    return c->transpose ? sdl_conv_transpose2d(in[0], in[1], in[2], c->stride, c->pad, c->out_pad)
                        : sdl_conv2d(in[0], in[1], in[2], c->stride, c->pad);
}
static void test_bias_grad(void) {
    conv_cfg a = {1, 1, 0, false}, t = {2, 1, 1, true};
    int k[3] = {IN_GRAD, IN_GRAD, IN_GRAD};
    /* y (5, 2, 30, 30): 4500 values per channel, two chunks */
    sdl_shape sa[3] = {sdl_shape4(5, 1, 30, 30), sdl_shape4(2, 1, 3, 3), sdl_shape1(2)};
    CHECK(both("conv2d bias over 2 chunks", 3, sa, k, f_conv, &a, tol_k(5 * 900)), "conv2d");
    /* y (3, 2, 40, 36): 4320 values per channel, one sample's planes split too */
    sdl_shape st[3] = {sdl_shape4(3, 2, 20, 18), sdl_shape4(2, 2, 3, 3), sdl_shape1(2)};
    CHECK(both("conv_transpose2d bias over chunks", 3, st, k, f_conv, &t, tol_k(3 * 360)), "conv_transpose2d");
}

/* ---- add / mul with b broadcast along a middle dim (its index takes every dim of a) ---- */
static sdl_tensor *f_binary(sdl_tensor **in, void *ctx) { return ctx ? sdl_mul(in[0], in[1]) : sdl_add(in[0], in[1]); }
static void test_broadcast(void) {
    sdl_shape as[3] = {sdl_shape3(3, 5, 7), sdl_shape4(2, 3, 4, 5), sdl_shape4(2, 3, 4, 5)};
    sdl_shape bs[3] = {sdl_shape3(3, 1, 7), sdl_shape4(2, 3, 1, 1), sdl_shape3(3, 1, 5)};
    int k[2] = {IN_GRAD, IN_GRAD};
    for (int mul = 0; mul < 2; mul++)
        for (int c = 0; c < 3; c++) {
            sdl_shape s[2] = {as[c], bs[c]};
            CHECK(both(mul ? "mul, broadcast" : "add, broadcast", 2, s, k, f_binary, mul ? (void *)1 : NULL, TOL_F32), "%s case %d", mul ? "mul" : "add", c);
        }
}

/* ---- a ResNet basic block: relu(bn(conv(relu(bn(conv(x))))) + x) ----------------------- */
static sdl_module *resnet_block(sdl_model *m, int64_t C) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "c1", C, C, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn1", C));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "c2", C, C, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn2", C));
    return net;
}
static void test_resnet_block(void) {
    const int64_t C = 8;
    sdl_model *mc = sdl_model_new(5); /* the seed restarts the RNG: the same weights */
    sdl_module *nc = resnet_block(mc, C);
    sdl_model *mg = sdl_model_new(5);
    sdl_module *ng = resnet_block(mg, C);
    CHECK(sdl_cuda_model_to_device(mg) == SDL_OK, "%s", sdl_last_error());
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(4, C, 33, 32), SDL_F32); /* 4224 values per channel: two chunks */
    sdl_tensor_uniform(x, -1.0f, 1.0f);
    sdl_tensor *lc = sdl_mean(sdl_relu(sdl_add(sdl_forward(nc, x), x)));
    CHECK(lc && sdl_backward(lc) == SDL_OK, "CPU: %s", sdl_last_error());
    sdl_tensor *xg = sdl_cuda_to_device(x);
#ifdef CUDA_EMU
    long l0 = emu_launches;
#endif
    sdl_tensor *yg = sdl_relu(sdl_add(sdl_forward(ng, xg), xg));
#ifdef CUDA_EMU
    long l1 = emu_launches;
#endif
    sdl_tensor *lg = sdl_mean(yg);
#ifdef CUDA_EMU
    long l2 = emu_launches;
#endif
    CHECK(lg && sdl_backward(lg) == SDL_OK && sdl_cuda_synchronize() == SDL_OK, "GPU: %s", sdl_last_error());
#ifdef CUDA_EMU
    printf("   (emulator) ResNet basic block (4, %d, 33, 32): %ld kernel launches forward, %ld backward (with the loss's)\n", (int)C, l1 - l0,
           emu_launches - l2);
#endif
    double tol = tol_k(4 * 33 * 32);
    float lcpu = sdl_item(lc), lgpu = sdl_item(lg);
    CHECK(fabs((double)lcpu - lgpu) <= tol * fabs((double)lcpu), "loss CPU %.8f GPU %.8f", lcpu, lgpu);
    for (int i = 0; i < mc->nparams; i++)
        CHECK(close_to(mc->params[i]->name, "gradient", mg->params[i]->grad, mc->params[i]->grad, mc->params[i]->numel, tol), "%s", mc->params[i]->name);
    for (int i = 0; i < mc->nbuffers; i++)
        CHECK(close_to(mc->buffers[i]->name, "buffer", sdl_f32(mg->buffers[i]), sdl_f32(mc->buffers[i]), mc->buffers[i]->numel, TOL_F32), "%s",
              mc->buffers[i]->name);
    sdl_tensor_free(x);
    sdl_arena_reset();
    sdl_model_free(mc);
    sdl_model_free(mg);
}

int main(void) {
    (void)gradcheck; /* the CPU ops are checked elsewhere; here the CPU is the reference */
    RUN(test_div);
    RUN(test_chunks);
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none): only the host tests ran\n");
        return sdl_test_finish();
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n", sdl_last_error());
        sdl_test_failed++;
        return sdl_test_finish();
    }
    RUN(test_batch_norm_chunks);
    RUN(test_batch_norm_repeats);
    RUN(test_bias_grad);
    RUN(test_broadcast);
    RUN(test_resnet_block);
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
