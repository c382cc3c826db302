/* cuda_test_ops.cu - the CUDA backend against the CPU one: every op's forward and gradients
   on random inputs, a full MLP training step, no cudaMalloc in a steady-state step, the
   device arena, and error reports. Without a GPU it prints a skip line and
   "0 passed, 0 failed" and exits 0.

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_ops.cu -o cuda_test_ops -lcublas
   Run:    ./cuda_test_ops            the checks
           ./cuda_test_ops --bench    the checks, then (if all pass) a short timing table

   Tolerances: the error is max |gpu - cpu| / max |cpu| over a tensor; f32 <= 1e-5,
   TF32 GEMMs <= 1e-3. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include <time.h>

#define TOL_F32 1e-5
#define TOL_TF32 1e-3

/* ---- helpers -------------------------------------------------------------------------- */

/* n floats from device memory into a new host array (after the stream is done) */
static float *dev_floats(const float *d, int64_t n) {
    float *h = (float *)calloc((size_t)n + 1, sizeof(float));
    if (sdl_cuda_synchronize() != SDL_OK) { printf("  FAIL a kernel before this copy: %s\n", sdl_last_error()); sdl_test_ok = 0; }
    if (cudaMemcpy(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
        for (int64_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

/* max |got - want| / max |want| (or the absolute error when want is all zero) */
static double rel_err(const float *got, const float *want, int64_t n) {
    double mx = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mx = mx > fabs((double)want[i]) ? mx : fabs((double)want[i]);
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= err)) err = e; /* NaN counts as the worst */
    }
    return err / (mx > 0.0 ? mx : 1.0);
}

/* device floats against host floats; prints and returns 0 when they differ */
static int same_floats(const char *what, const char *name, const float *dev, const float *host, int64_t n, double tol) {
    float *h = dev_floats(dev, n);
    double e = rel_err(h, host, n);
    free(h);
    if (!(e <= tol)) {
        printf("  FAIL %s: %s differs from the CPU by %g relative (tolerance %g)\n", name, what, e, tol);
        return 0;
    }
    return 1;
}

/* ---- each op: CPU and GPU on the same random inputs ------------------------------------ */
enum { IN_GRAD = 0, IN_NOGRAD = 1, IN_IDS = 2 };
typedef sdl_tensor *(*op_fn)(sdl_tensor **in, void *ctx);
typedef struct op_case {
    const char *name;
    int nin;
    sdl_shape shape[4];
    int kind[4];     /* IN_GRAD: float with gradient; IN_NOGRAD; IN_IDS: i32 in [0, ids) */
    int32_t ids;
    op_fn f;
    void *ctx;
    double tol;      /* 0: TOL_F32 */
} op_case;

/* L = sum(op(inputs) * w) for a random w, on both devices; compares the op's output and
   the gradient of every IN_GRAD input */
static int check_op(const op_case *c) {
    int ok = 1;
    double tol = c->tol > 0 ? c->tol : TOL_F32;
    sdl_tensor *h[4] = {0}, *d[4] = {0};
    for (int i = 0; i < c->nin; i++) {
        if (c->kind[i] == IN_IDS) {
            h[i] = test_ids(c->shape[i].d[0], c->ids);
        } else {
            h[i] = sdl_tensor_new(c->shape[i], SDL_F32);
            sdl_tensor_uniform(h[i], -1.0f, 1.0f);
            if (c->kind[i] == IN_GRAD) sdl_tensor_requires_grad(h[i]);
        }
    }
    sdl_tensor *out = c->f(h, c->ctx);
    if (!out) { printf("  FAIL %s: CPU op failed: %s\n", c->name, sdl_last_error()); ok = 0; }
    sdl_tensor *w = out ? sdl_tensor_new(sdl_tensor_shape(out), SDL_F32) : NULL;
    float *cpu_out = NULL;
    if (ok) {
        sdl_tensor_uniform(w, -1.0f, 1.0f);
        cpu_out = (float *)malloc(sizeof(float) * (size_t)(out->numel + 1));
        memcpy(cpu_out, out->data, sizeof(float) * (size_t)out->numel);
        if (sdl_backward(sdl_sum(sdl_mul(out, w))) != SDL_OK) { printf("  FAIL %s: CPU backward: %s\n", c->name, sdl_last_error()); ok = 0; }
    }
    if (ok) {
        for (int i = 0; i < c->nin; i++) {
            d[i] = sdl_cuda_to_device(h[i]);
            if (d[i] && c->kind[i] == IN_GRAD) d[i]->requires_grad = true;
        }
        sdl_tensor *dout = c->f(d, c->ctx);
        sdl_tensor *dw = sdl_cuda_to_device(w);
        if (!dout || dout->device != SDL_CUDA) {
            printf("  FAIL %s: GPU op failed: %s\n", c->name, sdl_last_error());
            ok = 0;
        } else if (sdl_backward(sdl_sum(sdl_mul(dout, dw))) != SDL_OK || sdl_cuda_synchronize() != SDL_OK) {
            printf("  FAIL %s: GPU backward: %s\n", c->name, sdl_last_error());
            ok = 0;
        } else {
            ok &= same_floats("output", c->name, sdl_f32(dout), cpu_out, out->numel, tol);
            for (int i = 0; i < c->nin; i++) {
                if (c->kind[i] != IN_GRAD) continue;
                char what[32];
                snprintf(what, sizeof what, "grad of input %d", i);
                if (!d[i]->grad) { printf("  FAIL %s: no gradient for input %d on the GPU\n", c->name, i); ok = 0; continue; }
                ok &= same_floats(what, c->name, d[i]->grad, h[i]->grad, h[i]->numel, tol);
            }
        }
    }
    free(cpu_out);
    sdl_tensor_free(w);
    for (int i = 0; i < c->nin; i++) sdl_tensor_free(h[i]);
    sdl_arena_reset();
    return ok;
}

static sdl_tensor *f_linear(sdl_tensor **in, void *ctx) { return sdl_linear(in[0], in[1], ctx ? in[2] : NULL); }
static sdl_tensor *f_relu(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_relu(in[0]); }
static sdl_tensor *f_add(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_add(in[0], in[1]); }
static sdl_tensor *f_mul(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mul(in[0], in[1]); }
static sdl_tensor *f_sum(sdl_tensor **in, void *ctx) { return ctx ? sdl_mean(in[0]) : sdl_sum(in[0]); }
static sdl_tensor *f_mse(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mse_loss(in[0], in[1]); }
static sdl_tensor *f_ce(sdl_tensor **in, void *ctx) { return sdl_cross_entropy(in[0], in[1], *(float *)ctx); }
/* a view in the middle: relu(reshape(x, (5, -1))) then a linear on the flattened rows */
static sdl_tensor *f_view(sdl_tensor **in, void *ctx) {
    (void)ctx;
    return sdl_linear(sdl_relu(sdl_flatten(sdl_reshape(in[0], sdl_shape3(6, -1, 7)))), in[1], NULL);
}

static void test_linear(void) {
    op_case a = {"linear+bias", 3, {sdl_shape2(33, 65), sdl_shape2(17, 65), sdl_shape1(17)}, {0}, 0, f_linear, (void *)1, 0};
    CHECK(check_op(&a), "linear with bias");
    op_case b = {"linear 3-d, no bias", 2, {sdl_shape3(3, 5, 7), sdl_shape2(5, 7)}, {0}, 0, f_linear, NULL, 0};
    CHECK(check_op(&b), "linear without bias");
    op_case c = {"linear, x without grad", 3, {sdl_shape2(40, 300), sdl_shape2(129, 300), sdl_shape1(129)}, {IN_NOGRAD, IN_GRAD, IN_GRAD}, 0, f_linear, (void *)1, 0};
    CHECK(check_op(&c), "linear with a constant input");
}

static void test_linear_tf32(void) {
    sdl_cuda_set_tf32(true);
    op_case a = {"linear tf32", 3, {sdl_shape2(64, 256), sdl_shape2(96, 256), sdl_shape1(96)}, {0}, 0, f_linear, (void *)1, TOL_TF32};
    CHECK(check_op(&a), "linear with TF32");
    sdl_cuda_set_tf32(false);
}

static void test_relu_view(void) {
    op_case a = {"relu", 1, {sdl_shape3(3, 7, 5)}, {0}, 0, f_relu, NULL, 0};
    CHECK(check_op(&a), "relu");
    op_case b = {"relu large", 1, {sdl_shape2(1000, 333)}, {0}, 0, f_relu, NULL, 0};
    CHECK(check_op(&b), "relu on more elements than one grid pass");
    op_case c = {"reshape view", 2, {sdl_shape2(30, 14), sdl_shape2(3, 70)}, {0}, 0, f_view, NULL, 0};
    CHECK(check_op(&c), "reshape/flatten views between ops");
}

static void test_add_mul(void) {
    /* a (3, 5, 7) with b (7), (5, 1), full; bias-style (129, 33) + (33); a middle
       broadcast (3, 4, 5, 6) with (4, 1, 6) (the general reduction) */
    sdl_shape as[5] = {sdl_shape3(3, 5, 7), sdl_shape3(3, 5, 7), sdl_shape3(3, 5, 7), sdl_shape2(129, 33), sdl_shape4(3, 4, 5, 6)};
    sdl_shape bs[5] = {sdl_shape1(7), sdl_shape2(5, 1), sdl_shape3(3, 5, 7), sdl_shape1(33), sdl_shape3(4, 1, 6)};
    for (int mul = 0; mul < 2; mul++)
        for (int k = 0; k < 5; k++) {
            op_case c = {mul ? "mul" : "add", 2, {as[k], bs[k]}, {0}, 0, mul ? f_mul : f_add, NULL, 0};
            CHECK(check_op(&c), "%s with broadcast case %d", c.name, k);
        }
}

static void test_sum_mean(void) {
    op_case a = {"sum", 1, {sdl_shape2(3, 11)}, {0}, 0, f_sum, NULL, 0};
    CHECK(check_op(&a), "sum");
    op_case b = {"mean", 1, {sdl_shape2(3, 11)}, {0}, 0, f_sum, (void *)1, 0};
    CHECK(check_op(&b), "mean");
    op_case c = {"sum large", 1, {sdl_shape2(1000, 777)}, {0}, 0, f_sum, NULL, 0};
    CHECK(check_op(&c), "sum over many blocks");
}

static void test_losses(void) {
    float s0 = 0.0f, s1 = 0.1f;
    op_case a = {"cross_entropy", 2, {sdl_shape2(9, 7), sdl_shape1(9)}, {IN_GRAD, IN_IDS}, 7, f_ce, &s0, 0};
    CHECK(check_op(&a), "cross entropy");
    op_case b = {"cross_entropy smoothing", 2, {sdl_shape2(9, 7), sdl_shape1(9)}, {IN_GRAD, IN_IDS}, 7, f_ce, &s1, 0};
    CHECK(check_op(&b), "cross entropy with label smoothing");
    op_case c = {"cross_entropy wide", 2, {sdl_shape2(300, 1000), sdl_shape1(300)}, {IN_GRAD, IN_IDS}, 1000, f_ce, &s1, 0};
    CHECK(check_op(&c), "cross entropy with more classes than threads");
    op_case d = {"mse", 2, {sdl_shape2(13, 17), sdl_shape2(13, 17)}, {IN_GRAD, IN_NOGRAD}, 0, f_mse, NULL, 0};
    CHECK(check_op(&d), "mse");
}

/* ---- a training step: the same model, data and SGD on both devices --------------------- */
static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 20, 33, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 33, 5, true));
    return net;
}

static void test_mlp_steps(void) {
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        sdl_model *mc = sdl_model_new(7); /* the seed restarts the RNG: the same weights */
        sdl_module *nc = make_mlp(mc);
        sdl_model *mg = sdl_model_new(7);
        sdl_module *ng = make_mlp(mg);
        CHECK(sdl_cuda_model_to_device(mg) == SDL_OK, "model_to_device: %s", sdl_last_error());
        CHECK(mg->params[0]->device == SDL_CUDA && mg->params[0]->data == mg->param_data, "parameters point into the device array");
        sdl_optim *oc = sdl_sgd(mc, 0.05f, 0.9f, 1e-2f, nesterov != 0);
        sdl_optim *og = sdl_sgd(mg, 0.05f, 0.9f, 1e-2f, nesterov != 0);
        CHECK(og && og->device == SDL_CUDA, "optimizer state on the device");
        for (int step = 0; step < 4; step++) {
            sdl_tensor *x = sdl_tensor_new(sdl_shape2(16, 20), SDL_F32);
            sdl_tensor_uniform(x, -1.0f, 1.0f);
            sdl_tensor *y = test_ids(16, 5);
            sdl_tensor *lc_logits = sdl_forward(nc, x);
            sdl_tensor *lc = sdl_cross_entropy(lc_logits, y, 0.1f);
            CHECK(sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU step");
            sdl_model_zero_grad(mc);
            sdl_tensor *lg_logits = sdl_forward(ng, sdl_cuda_to_device(x));
            sdl_tensor *lg = sdl_cross_entropy(lg_logits, sdl_cuda_to_device(y), 0.1f);
            CHECK(lg && lg->device == SDL_CUDA, "GPU loss: %s", sdl_last_error());
            CHECK(sdl_backward(lg) == SDL_OK, "GPU backward: %s", sdl_last_error());
            CHECK(sdl_optim_step(og) == SDL_OK, "GPU optim step: %s", sdl_last_error());
            sdl_model_zero_grad(mg);
            float a = sdl_item(lc), b = sdl_item(lg);
            CHECK(fabs((double)a - b) <= TOL_F32 * fabs((double)a), "step %d loss CPU %.8f GPU %.8f", step, a, b);
            CHECK(sdl_count_correct(lc_logits, y) == sdl_count_correct(lg_logits, sdl_cuda_to_device(y)), "count_correct");
            CHECK(sdl_cuda_synchronize() == SDL_OK, "sync: %s", sdl_last_error());
            sdl_tensor_free(x);
            sdl_tensor_free(y);
            sdl_arena_reset();
        }
        for (int i = 0; i < mc->nparams; i++)
            CHECK(same_floats("parameter after 4 steps", mc->params[i]->name, sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel, TOL_F32),
                  "%s (nesterov %d)", mc->params[i]->name, nesterov);
        float *g = dev_floats(mg->grad_data, mg->param_floats);
        int64_t nonzero = 0;
        for (int64_t i = 0; i < mg->param_floats; i++) nonzero += g[i] != 0.0f;
        free(g);
        CHECK(nonzero == 0, "zero_grad on the device left %lld non-zero", (long long)nonzero);
        /* back to the host: the parameters are the CPU model's */
        CHECK(sdl_cuda_model_to_host(mg) == SDL_OK && mg->params[0]->device == SDL_CPU, "model_to_host: %s", sdl_last_error());
        for (int i = 0; i < mc->nparams; i++)
            CHECK(rel_err(sdl_f32(mg->params[i]), sdl_f32(mc->params[i]), mc->params[i]->numel) <= TOL_F32, "%s after model_to_host", mc->params[i]->name);
        sdl_optim_free(og);
        sdl_optim_free(oc);
        sdl_model_free(mc);
        sdl_model_free(mg);
    }
}

/* ---- no cudaMalloc (and no host allocation) once a step has run ------------------------ */
static long dev_allocs;
static void *(*real_alloc)(size_t);
static void *counting_alloc(size_t n) { dev_allocs++; return real_alloc(n); }

static void train_step(sdl_module *net, sdl_optim *o, sdl_tensor *x, sdl_tensor *y) {
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, sdl_cuda_to_device(x)), sdl_cuda_to_device(y), 0.0f);
    sdl_backward(loss);
    sdl_optim_step(o);
    sdl_model_zero_grad(o->model);
    (void)sdl_item(loss);
    sdl_arena_reset();
}

static void test_steady_state(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = make_mlp(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    CHECK(dev_allocs >= 4, "the model and optimizer arrays went through the alloc hook (%ld)", dev_allocs);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(64, 20), SDL_F32), *y = test_ids(64, 5);
    sdl_tensor_uniform(x, -1.0f, 1.0f);
    for (int i = 0; i < 3; i++) train_step(net, o, x, y);
    long dev0 = dev_allocs, host0 = sdl_test_allocs;
    size_t cap0 = sdl_cuda_arena_capacity();
    for (int i = 0; i < 5; i++) train_step(net, o, x, y);
    CHECK(dev_allocs == dev0, "%ld device allocations in 5 steady-state steps", dev_allocs - dev0);
    CHECK(sdl_test_allocs == host0, "%ld host allocations in 5 steady-state steps", sdl_test_allocs - host0);
    CHECK(sdl_cuda_arena_capacity() == cap0, "device arena grew from %zu to %zu", cap0, sdl_cuda_arena_capacity());
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
    sdl_register_backend(SDL_CUDA, &orig);
}

/* ---- the device arena: growth, merge on reset, zeroed memory ---------------------------- */
static void test_arena(void) {
    sdl_backend be = *sdl_get_backend(SDL_CUDA), orig = be;
    real_alloc = be.alloc;
    be.alloc = counting_alloc;
    sdl_register_backend(SDL_CUDA, &be);
    size_t big = SDL_CUDA_ARENA_MIN / 2 + 4096, cap1 = 0;
    long allocs1 = 0;
    for (int step = 0; step < 3; step++) {
        for (int k = 0; k < 4; k++) { /* more than one block holds: grows in step 0 */
            unsigned char *p = (unsigned char *)be.arena_alloc(big);
            CHECK(p != NULL, "arena_alloc %zu: %s", big, sdl_last_error());
            if (!p) break;
            unsigned char head[256], tail[256];
            sdl_cuda_synchronize();
            cudaMemcpy(head, p, sizeof head, cudaMemcpyDeviceToHost);
            cudaMemcpy(tail, p + big - sizeof tail, sizeof tail, cudaMemcpyDeviceToHost);
            int nz = 0;
            for (size_t i = 0; i < sizeof head; i++) nz += head[i] != 0 || tail[i] != 0;
            CHECK(nz == 0, "step %d block %d: arena memory not zero", step, k);
            cudaMemset(p, 0xff, big); /* dirty it: the next reset must clean it */
            cudaDeviceSynchronize();
        }
        if (step == 1) { cap1 = sdl_cuda_arena_capacity(); allocs1 = dev_allocs; }
        sdl_arena_reset();
    }
    CHECK(sdl_cuda_arena_capacity() == cap1 && cap1 >= 4 * big, "capacity after merging: %zu then %zu", cap1, sdl_cuda_arena_capacity());
    CHECK(dev_allocs == allocs1, "a step that fits allocated %ld blocks", dev_allocs - allocs1);
    sdl_register_backend(SDL_CUDA, &orig);
}

/* ---- errors are reported, named, and kept ---------------------------------------------- */
static void test_errors(void) {
    void *p = sdl_get_backend(SDL_CUDA)->alloc((size_t)1 << 53);
    CHECK(p == NULL && sdl_last_result() == SDL_ERR_OOM, "an impossible cudaMalloc fails with SDL_ERR_OOM");
    CHECK(strstr(sdl_last_error(), "cudaMalloc") && strstr(sdl_last_error(), "sdl_cuda.h:"), "the message names the call and line: %s", sdl_last_error());
    CHECK(sdl_cuda_synchronize() == SDL_ERR_OOM, "synchronize returns the kept error");
    CHECK(sdl_cuda_synchronize() == SDL_OK, "and clears it");

    sdl_tensor *h = sdl_tensor_new(sdl_shape1(4), SDL_F32);
    sdl_tensor *d = sdl_cuda_to_device(h);
    sdl_clear_error();
    CHECK(sdl_add(h, d) == NULL && sdl_last_result() == SDL_ERR_DEVICE, "mixing devices fails: %s", sdl_last_error());
    sdl_tensor_free(h);

    sdl_model *m = sdl_model_new(1);
    sdl_module *net = make_mlp(m);
    (void)net;
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    sdl_cuda_model_to_device(m);
    CHECK(sdl_optim_step(o) == SDL_ERR_DEVICE, "an optimizer made before the move refuses to step");
    sdl_optim_free(o);
    sdl_model_free(m);

    sdl_tensor *x = sdl_tensor_new(sdl_shape2(3, 4), SDL_F32), *y = sdl_tensor_new(sdl_shape1(3), SDL_I32);
    sdl_i32(y)[1] = 9; /* outside [0, 4) */
    float l = sdl_item(sdl_cross_entropy(sdl_cuda_to_device(x), sdl_cuda_to_device(y), 0.0f));
    CHECK(isnan(l), "a bad target on the GPU gives a NaN loss, got %g", l);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "no error left behind: %s", sdl_last_error());
}

/* ---- the same steps twice on the GPU give the same bits (fixed-order reductions) -------- */
static void run_gpu_steps(float *params_out) {
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = make_mlp(m);
    sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 1e-3f, false);
    sdl_manual_seed(99); /* the same batches */
    for (int step = 0; step < 3; step++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape2(300, 20), SDL_F32), *y = test_ids(300, 5);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        train_step(net, o, x, y);
        sdl_tensor_free(x);
        sdl_tensor_free(y);
    }
    float *p = dev_floats(m->param_data, m->param_floats);
    memcpy(params_out, p, sizeof(float) * (size_t)m->param_floats);
    free(p);
    sdl_optim_free(o);
    sdl_model_free(m);
}

static void test_deterministic(void) {
    int64_t n = 20 * 33 + 33 + 33 * 5 + 5;
    float *a = (float *)calloc((size_t)n, sizeof(float)), *b = (float *)calloc((size_t)n, sizeof(float));
    run_gpu_steps(a);
    run_gpu_steps(b);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "two identical GPU runs differ");
    free(a);
    free(b);
}

/* ---- pinned host memory and the timer ---------------------------------------------------- */
static void test_pinned_timer(void) {
    int64_t n = 1000;
    float *h = (float *)sdl_cuda_host_alloc((size_t)n * sizeof(float)), *back = (float *)calloc((size_t)n, sizeof(float));
    CHECK(h != NULL, "host_alloc: %s", sdl_last_error());
    if (!h) { free(back); return; }
    for (int64_t i = 0; i < n; i++) h[i] = (float)i * 0.5f;
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    float *d = (float *)be->arena_alloc((size_t)n * sizeof(float));
    sdl_cuda_timer_start();
    be->copy(d, h, (size_t)n * sizeof(float), SDL_CUDA, SDL_CPU);
    be->copy(back, d, (size_t)n * sizeof(float), SDL_CPU, SDL_CUDA);
    float ms = sdl_cuda_timer_stop();
    CHECK(memcmp(h, back, (size_t)n * sizeof(float)) == 0, "pinned -> device -> host round trip");
    CHECK(ms >= 0.0f && ms < 1e4f, "timer: %g ms", ms);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    sdl_cuda_host_free(h);
    free(back);
}

/* ---- --bench: a short table (after the checks pass) ------------------------------------ */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_gemm(bool tf32) {
    int64_t n = 4096;
    size_t bytes = (size_t)(n * n) * sizeof(float);
    float *a = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes), *b = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes), *c = (float *)sdl_get_backend(SDL_CUDA)->alloc(bytes);
    if (!a || !b || !c) { printf("bench gemm: %s\n", sdl_last_error()); return; }
    sdl_get_backend(SDL_CUDA)->memset0(a, bytes);
    sdl_get_backend(SDL_CUDA)->memset0(b, bytes);
    sdl_cuda_set_tf32(tf32);
    for (int i = 0; i < 2; i++) sdl__cu_gemm(false, true, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    int reps = 10;
    sdl_cuda_timer_start();
    for (int i = 0; i < reps; i++) sdl__cu_gemm(false, true, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    float ms = sdl_cuda_timer_stop() / (float)reps;
    sdl_cuda_set_tf32(false);
    printf("| %-26s | %-16s | %9.3f | %9.1f TFLOP/s |\n", tf32 ? "gemm tf32 (x w^T)" : "gemm f32 (x w^T)", "4096^3", ms, 2.0 * (double)n * n * n / (ms * 1e-3) / 1e12);
    sdl_get_backend(SDL_CUDA)->dealloc(a);
    sdl_get_backend(SDL_CUDA)->dealloc(b);
    sdl_get_backend(SDL_CUDA)->dealloc(c);
}

/* the kernels alone, on buffers outside the arena */
static void bench_elementwise(void) {
    int64_t n = (int64_t)1 << 26;
    const sdl_backend *be = sdl_get_backend(SDL_CUDA);
    float *x = (float *)be->alloc((size_t)n * sizeof(float)), *y = (float *)be->alloc((size_t)n * sizeof(float));
    float *out = (float *)be->alloc(sizeof(float));
    if (!x || !y || !out) { printf("bench relu: %s\n", sdl_last_error()); return; }
    be->memset0(x, (size_t)n * sizeof(float));
    int reps = 20;
    for (int i = 0; i <= reps; i++) {
        if (i == 1) sdl_cuda_timer_start();
        sdl__k_relu_fwd<<<sdl__cu_grid(n), SDL__CU_THREADS, 0, sdl__cu.stream>>>(x, y, n);
    }
    float ms = sdl_cuda_timer_stop() / (float)reps;
    printf("| %-26s | %-16s | %9.3f | %9.1f GB/s    |\n", "relu forward kernel", "2^26 floats", ms, 8.0 * (double)n / (ms * 1e-3) / 1e9);
    for (int i = 0; i <= reps; i++) {
        if (i == 1) sdl_cuda_timer_start();
        sdl__cu_reduce(x, NULL, n, 0, 1.0, out);
    }
    ms = sdl_cuda_timer_stop() / (float)reps;
    printf("| %-26s | %-16s | %9.3f | %9.1f GB/s    |\n", "sum kernels (2 stages)", "2^26 floats", ms, 4.0 * (double)n / (ms * 1e-3) / 1e9);
    be->dealloc(x);
    be->dealloc(y);
    be->dealloc(out);
    sdl_arena_reset();
}

/* 784-1024-1024-10 MLP, batch 256, SGD momentum: images/s for a whole step (upload,
   forward, backward, update, loss read back) */
static void bench_mlp(int device, bool tf32) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 784, 1024, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 1024, 1024, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "4", 1024, 10, true));
    if (device == SDL_CUDA) sdl_cuda_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.01f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(256, 784), SDL_F32), *y = test_ids(256, 10);
    sdl_tensor_uniform(x, 0.0f, 1.0f);
    sdl_cuda_set_tf32(tf32);
    int warm = 3, reps = device == SDL_CUDA ? 50 : 5;
    double t0 = 0.0;
    for (int i = 0; i < warm + reps; i++) {
        if (i == warm) t0 = now_s();
        sdl_tensor *xs = device == SDL_CUDA ? sdl_cuda_to_device(x) : x, *ys = device == SDL_CUDA ? sdl_cuda_to_device(y) : y;
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, xs), ys, 0.0f);
        sdl_backward(loss);
        sdl_optim_step(o);
        sdl_model_zero_grad(m);
        (void)sdl_item(loss);
        sdl_arena_reset();
    }
    double dt = (now_s() - t0) / reps;
    sdl_cuda_set_tf32(false);
    char name[64];
    snprintf(name, sizeof name, "mlp step %s", device == SDL_CUDA ? (tf32 ? "gpu tf32" : "gpu f32") : "cpu");
    printf("| %-26s | %-16s | %9.3f | %9.0f img/s     |\n", name, "784-1024-1024-10", dt * 1e3, 256.0 / dt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(o);
    sdl_model_free(m);
}

int main(int argc, char **argv) {
    bool bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
    (void)gradcheck; /* sdl_test.h's finite differences check the CPU ops; here the CPU is the reference */
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
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    RUN(test_linear);
    RUN(test_linear_tf32);
    RUN(test_relu_view);
    RUN(test_add_mul);
    RUN(test_sum_mean);
    RUN(test_losses);
    RUN(test_mlp_steps);
    RUN(test_steady_state);
    RUN(test_arena);
    RUN(test_deterministic);
    RUN(test_pinned_timer);
    RUN(test_errors);
    if (bench && sdl_test_failed == 0) {
        printf("| %-26s | %-16s | %9s | %-18s |\n", "bench", "size", "ms", "rate");
        bench_gemm(false);
        bench_gemm(true);
        bench_elementwise();
        bench_mlp(SDL_CPU, false);
        bench_mlp(SDL_CUDA, false);
        bench_mlp(SDL_CUDA, true);
    }
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
