/* cuda_test_general.cu - the CUDA kernels of the general ops against the CPU: every row of
   SDL_UNARY_OPS and SDL_BINARY_OPS (the list drives the test, so a new row is tested here
   without an edit), broadcasting, where and masked_fill, the shape ops, reductions over
   dims, softmax over a dim and matmul. Both backends call the same >>formulas, so the tolerance is f32 rounding
   of the device's math library (the emulator's is the host's: equal bits).
   Without a GPU it prints a skip line and "0 passed, 0 failed".

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_general.cu -o cuda_test_general -lcublas */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"

#define TOL 1e-5

/* max |gpu - cpu| / max |cpu| over n device floats against host floats */
static int close_to(const char *what, const char *name, const float *dev, const float *host, int64_t n) {
    float *h = dev_floats(dev, n);
    double mx = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mx = mx > fabs((double)host[i]) ? mx : fabs((double)host[i]);
        double e = fabs((double)h[i] - (double)host[i]);
        if (!(e <= err)) err = e;
    }
    err /= mx > 0.0 ? mx : 1.0;
    if (!(err <= TOL)) printf("  FAIL %s: %s differs from the CPU by %g relative\n", name, what, err);
    free(h);
    return err <= TOL;
}

/* f on both devices from the same random inputs (uniform [lo, hi)); compares the output and
   the gradient of L = sum(f * w) for every input */
typedef sdl_tensor *(*gen_fn)(sdl_tensor **in, const void *ctx);
static int check(const char *name, int nin, const sdl_shape *shape, float lo, float hi, gen_fn f, const void *ctx) {
    sdl_tensor *h[3] = {0}, *d[3] = {0};
    int ok = 1;
    for (int i = 0; i < nin; i++) {
        h[i] = sdl_tensor_new(shape[i], SDL_F32);
        sdl_tensor_uniform(h[i], lo, hi);
        sdl_tensor_requires_grad(h[i]);
        d[i] = sdl_cuda_to_device(h[i]);
        if (d[i]) d[i]->requires_grad = true;
    }
    sdl_tensor *y = f(h, ctx); /* the CPU's forward and backward, then the GPU's (one tape each) */
    sdl_tensor *w = y ? sdl_tensor_new(sdl_tensor_shape(y), SDL_F32) : NULL;
    if (w) sdl_tensor_uniform(w, -1.0f, 1.0f);
    bool cpu_ok = w && sdl_backward(sdl_sum(sdl_mul(y, w))) == SDL_OK;
    sdl_tensor *dy = cpu_ok ? f(d, ctx) : NULL;
    if (!dy || dy->device != SDL_CUDA || sdl_backward(sdl_sum(sdl_mul(dy, sdl_cuda_to_device(w)))) != SDL_OK) {
        printf("  FAIL %s: %s\n", name, sdl_last_error());
        ok = 0;
    } else {
        ok &= close_to("forward", name, sdl_f32(dy), sdl_f32(y), y->numel);
        for (int i = 0; i < nin; i++) {
            char what[32];
            snprintf(what, sizeof what, "grad of input %d", i);
            bool reached = false; /* an input f does not use gets no GPU gradient */
            for (int64_t j = 0; j < h[i]->numel; j++) reached = reached || h[i]->grad[j] != 0.0f;
            if (!d[i]->grad && reached) printf("  FAIL %s: no gradient for input %d on the GPU\n", name, i);
            if (d[i]->grad || reached) ok &= d[i]->grad && close_to(what, name, d[i]->grad, h[i]->grad, h[i]->numel);
        }
    }
    sdl_tensor_free(w);
    for (int i = 0; i < nin; i++) sdl_tensor_free(h[i]);
    sdl_arena_reset();
    return ok;
}

/* ---- every unary row: its op through sdl__unary, with a domain and parameters that fit */
typedef struct unary_arg { sdl_op op; float a, b, lo, hi; } unary_arg;
static sdl_tensor *f_unary(sdl_tensor **in, const void *ctx) {
    const unary_arg *u = (const unary_arg *)ctx;
    return sdl__unary(u->op, in[0], u->a, u->b);
}
static unary_arg unary_arg_of(sdl_op op) {
    unary_arg u = {op, 0.0f, 0.0f, -3.0f, 3.0f};
    if (op == SDL_OP_LOG || op == SDL_OP_SQRT || op == SDL_OP_RSQRT) u.lo = 0.2f;
    if (op == SDL_OP_POW) { u.a = 2.5f; u.lo = 0.1f; }
    if (op == SDL_OP_CLAMP) { u.a = -0.5f; u.b = 0.7f; }
    if (op == SDL_OP_LEAKY_RELU) u.a = 0.1f;
    if (op == SDL_OP_SCALE) u.a = 1.5f;
    return u;
}
static void test_unary_rows(void) {
    int rows = 0;
#define UNARY_CASE(X_, NAME, name) { \
        unary_arg u = unary_arg_of(SDL_OP_##NAME); \
        sdl_shape s = sdl_shape2(37, 29); \
        CHECK(check(#name, 1, &s, u.lo, u.hi, f_unary, &u), "%s", #name); \
        rows++; \
    }
    SDL_UNARY_OPS(UNARY_CASE, _)
#undef UNARY_CASE
    CHECK(rows >= 16, "%d unary rows", rows);
}

/* ---- every binary row on equal shapes, then broadcasting on both sides and where */
static sdl_tensor *f_binary(sdl_tensor **in, const void *ctx) {
    sdl_op op = *(const sdl_op *)ctx;
    return sdl__op_run(sdl__op_begin(op, sdl_tensor_shape(in[0]), in[0], in[1], NULL, NULL));
}
static void test_binary_rows(void) {
    sdl_shape s[2] = {sdl_shape2(41, 13), sdl_shape2(41, 13)};
#define BINARY_CASE(X_, NAME, name) { \
        sdl_op op = SDL_OP_##NAME; \
        CHECK(check(#name, 2, s, 0.5f, 2.0f, f_binary, &op), "%s", #name); \
    }
    SDL_BINARY_OPS(BINARY_CASE, _)
#undef BINARY_CASE
}
static sdl_tensor *f_bcast(sdl_tensor **in, const void *ctx) {
    (void)ctx;
    sdl_tensor *m = sdl_maximum(sdl_sub(in[0], in[1]), sdl_div(in[1], in[0]));
    return sdl_add(sdl_mul(m, in[1]), sdl_where(sdl_gt(in[0], in[1]), in[0], sdl_masked_fill(in[1], sdl_lt(in[1], sdl_scalar(1.0f)), 3.0f)));
}
static void test_broadcast_where(void) {
    sdl_shape s[2] = {sdl_shape3(5, 1, 7), sdl_shape2(6, 1)};
    CHECK(check("broadcast + where", 2, s, 0.5f, 2.0f, f_bcast, NULL), "broadcast, where, masked_fill");
}

/* ---- the shape ops (one index-map kernel pair): x (4, 6, 5), y (4, 2, 5) */
static int32_t idx_v[40];
static sdl_tensor *idx(sdl_shape s) {
    sdl_tensor *t = sdl_arena_tensor(s, SDL_I32);
    for (int64_t i = 0; t && i < t->numel; i++) sdl_i32(t)[i] = idx_v[i];
    return t;
}
static const int perm[3] = {2, 0, 1}, dim1[1] = {1};
static const int64_t pad_r[4] = {2, 3, 1, 4}, pad_c[2] = {1, 2};
static sdl_tensor *f_shape(sdl_tensor **in, const void *ctx) {
    sdl_tensor *x = in[0], *y = in[1], *p[3], *yxy[3] = {y, x, y}, *two[2];
    switch (*(const int *)ctx) {
    case 0: return sdl_permute(x, perm);
    case 1: return sdl_slice(x, 1, 1, 6, 2);
    case 2: return sdl_cat(3, yxy, 1);
    case 3:
        if (sdl_chunk(x, 3, 1, p, 3) != 3) return NULL;
        two[0] = p[2];
        two[1] = p[0];
        return sdl_stack(2, two, 0);
    case 4: return sdl_index_select(x, 2, idx(sdl_shape1(7)));
    case 5: return sdl_gather(x, 1, idx(sdl_shape3(4, 2, 5)));
    case 6: return sdl_scatter_add(x, 1, idx(sdl_shape3(4, 2, 5)), y);
    case 7: return sdl_pad(x, 4, pad_r, SDL_PAD_REFLECT, 0.0f);
    default: return sdl_pad(x, 2, pad_c, SDL_PAD_CONSTANT, 0.25f);
    }
}
static void test_shape_ops(void) {
    for (int i = 0; i < 40; i++) idx_v[i] = (int32_t)((i * 7 + 3) % 5); /* < 5, repeats */
    static const char *names[9] = {"permute", "slice step 2", "cat y x y", "chunk + stack", "index_select", "gather",
                                   "scatter_add", "pad reflect", "pad constant"};
    sdl_shape s[2] = {sdl_shape3(4, 6, 5), sdl_shape3(4, 2, 5)};
    for (int k = 0; k < 9; k++) CHECK(check(names[k], 2, s, -1.0f, 1.0f, f_shape, &k), "%s", names[k]);
}

/* ---- reductions over dims, softmax over a dim, matmul: x (4, 6, 5) (ties in max: none,
   the inputs are random floats), y (4, 5, 3) */
static const int d02[2] = {0, 2};
static sdl_tensor *f_reduce(sdl_tensor **in, const void *ctx) {
    sdl_tensor *x = in[0], *y = in[1];
    switch (*(const int *)ctx) {
    case 0: return sdl_sum_dims(x, 2, d02, true);
    case 1: return sdl_mean_dims(x, 1, dim1, false);
    case 2: return sdl_logsumexp(x, 2, d02, false);
    case 3: return sdl_var_dims(x, 1, dim1, 1, true);
    case 4: return sdl_max_dim(x, 1, false, NULL);
    case 5: return sdl_softmax_dim(x, 1);
    case 6: return sdl_log_softmax_dim(x, 0);
    case 7: return sdl_matmul(x, y);                       /* (4, 6, 5) @ (4, 5, 3): bmm */
    default: return sdl_matmul(sdl_narrow(x, 0, 0, 1), y); /* (1, 6, 5) @ (4, 5, 3): batch broadcast */
    }
}
static void test_reductions_matmul(void) {
    static const char *names[9] = {"sum dims 0 2", "mean dim 1", "logsumexp dims 0 2", "var dim 1", "max dim 1",
                                   "softmax dim 1", "log_softmax dim 0", "bmm", "matmul broadcast"};
    sdl_shape s[2] = {sdl_shape3(4, 6, 5), sdl_shape3(4, 5, 3)};
    for (int k = 0; k < 9; k++) CHECK(check(names[k], 2, s, -1.0f, 1.0f, f_reduce, &k), "%s", names[k]);
}

static void test_cpu_only(void) {
    sdl_tensor *x = sdl_arena_tensor_on(sdl_shape2(2, 3), SDL_F32, SDL_CUDA);
    CHECK(x && !sdl_argmax(x, 1, false) && strstr(sdl_last_error(), "argmax: needs a CPU tensor"), "%s", sdl_last_error());
    static const sdl_function fn = {"mine", NULL, NULL};
    CHECK(!sdl_function_apply(&fn, sdl_shape1(1), 1, &x, NULL), "a user function needs a forward");
}

int main(void) {
    (void)gradcheck; /* the CPU is the reference here; test_general_ops.c gradchecks it */
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n", sdl_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_unary_rows);
    RUN(test_binary_rows);
    RUN(test_broadcast_where);
    RUN(test_shape_ops);
    RUN(test_reductions_matmul);
    RUN(test_cpu_only);
    return sdl_test_finish();
}
