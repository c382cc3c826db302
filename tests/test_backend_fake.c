/* test_backend_fake.c - the core's device paths without a GPU. A fake backend registered
   as SDL_CUDA keeps its "device" memory in host memory and reuses the CPU kernels, counting
   every call. A model trained on it must match the CPU model bit for bit, and the core must
   reach device memory only through the backend (seed of backward, sdl_item, count_correct,
   zero_grad, optimizer state and step, model and optimizer free). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "../sdl_cuda.h" /* its declarations compile as plain C (no CUDA headers, no nvcc) */

static struct { long alloc, dealloc, memset0, copy, step; } fk;

static void *fake_alloc(size_t n) { fk.alloc++; return malloc(n ? n : 1); }
static void fake_dealloc(void *p) { if (p) { fk.dealloc++; free(p); } }
static void fake_memset0(void *p, size_t n) { fk.memset0++; memset(p, 0, n); }
static void fake_copy(void *d, const void *s, size_t n, sdl_device dd, sdl_device sd) {
    (void)dd;
    (void)sd;
    fk.copy++;
    memcpy(d, s, n);
}
static sdl_result fake_step(struct sdl_optim *o) { fk.step++; sdl_test_optim_update(o); return SDL_OK; }

static void fake_register(void) {
    sdl_backend be = *sdl_get_backend(SDL_CPU); /* the CPU kernels work on host memory */
    be.name = "fake";
    be.alloc = fake_alloc;
    be.dealloc = fake_dealloc;
    be.memset0 = fake_memset0;
    be.copy = fake_copy;
    be.arena_alloc = sdl_arena_alloc;
    be.arena_reset = NULL;
    be.optim_step = fake_step;
    sdl_register_backend(SDL_CUDA, &be);
}

/* what sdl_cuda_model_to_device does, with the fake's memory */
static void fake_model_to_device(sdl_model *m) {
    sdl_model_pack(m);
    size_t pb = (size_t)m->param_floats * sizeof(float), bb = (size_t)m->buffer_floats * sizeof(float);
    float *p = (float *)fake_alloc(pb), *g = (float *)fake_alloc(pb), *b = (float *)fake_alloc(bb);
    memcpy(p, m->param_data, pb);
    memcpy(g, m->grad_data, pb);
    memcpy(b, m->buffer_data, bb);
    for (int i = 0; i < m->nparams; i++) {
        m->params[i]->data = p + m->param_offset[i];
        m->params[i]->grad = g + m->param_offset[i];
        m->params[i]->device = SDL_CUDA;
    }
    sdl_test_aligned_free(m->param_data);
    sdl_test_aligned_free(m->grad_data);
    sdl_test_aligned_free(m->buffer_data);
    m->param_data = p;
    m->grad_data = g;
    m->buffer_data = b;
}

static sdl_tensor *fake_to_device(sdl_tensor *t) {
    sdl_tensor *d = sdl_arena_tensor_on(sdl_tensor_shape(t), t->dtype, SDL_CUDA);
    if (d) memcpy(d->data, t->data, (size_t)t->numel * sdl_dtype_size(t->dtype));
    return d;
}

static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 6, 9, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 9, 4, true));
    return net;
}

static void test_train_on_fake_device(void) {
    memset(&fk, 0, sizeof fk);
    sdl_model *mc = sdl_model_new(5); /* the seed restarts the RNG: the same weights */
    sdl_module *nc = make_mlp(mc);
    sdl_model *md = sdl_model_new(5);
    sdl_module *nd = make_mlp(md);
    fake_model_to_device(md);
    sdl_optim *oc = sdl_sgd(mc, 0.1f, 0.9f, 1e-2f, true), *od = sdl_sgd(md, 0.1f, 0.9f, 1e-2f, true);
    CHECK(od && od->device == SDL_CUDA && oc->device == SDL_CPU, "optimizers know their device");
    CHECK(fk.alloc == 4 && fk.memset0 == 1, "the device optimizer state came from the backend (allocs %ld, memsets %ld)", fk.alloc, fk.memset0);
    for (int step = 0; step < 3; step++) {
        sdl_tensor *x = sdl_tensor_new(sdl_shape2(5, 6), SDL_F32), *y = test_ids(5, 4);
        sdl_tensor_uniform(x, -1.0f, 1.0f);
        /* one after the other: the tape is global, and backward clears it */
        sdl_tensor *lc_logits = sdl_forward(nc, x);
        sdl_tensor *lc = sdl_cross_entropy(lc_logits, y, 0.0f);
        CHECK(sdl_backward(lc) == SDL_OK && sdl_optim_step(oc) == SDL_OK, "CPU step: %s", sdl_last_error());
        sdl_tensor *ld_logits = sdl_forward(nd, fake_to_device(x));
        sdl_tensor *ld = sdl_cross_entropy(ld_logits, fake_to_device(y), 0.0f);
        CHECK(ld && ld->device == SDL_CUDA, "the loss is on the device: %s", sdl_last_error());
        long copies = fk.copy;
        CHECK(sdl_backward(ld) == SDL_OK, "backward: %s", sdl_last_error());
        CHECK(fk.copy == copies + 1, "backward seeds the device loss gradient with one copy");
        CHECK(sdl_optim_step(od) == SDL_OK, "step: %s", sdl_last_error());
        CHECK(fk.step == step + 1 && od->step == step + 1, "the device step went to the backend");
        long memsets = fk.memset0;
        sdl_model_zero_grad(mc);
        sdl_model_zero_grad(md);
        CHECK(fk.memset0 == memsets + 1, "zero_grad on the device goes through memset0");
        copies = fk.copy;
        CHECK(sdl_item(lc) == sdl_item(ld), "step %d: same loss", step);
        CHECK(fk.copy == copies + 1, "sdl_item copies one element back");
        copies = fk.copy;
        CHECK(sdl_count_correct(lc_logits, y) == sdl_count_correct(ld_logits, fake_to_device(y)), "count_correct");
        CHECK(fk.copy == copies + 2, "count_correct copies logits and targets back");
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_arena_reset();
    }
    CHECK(memcmp(mc->param_data, md->param_data, (size_t)mc->param_floats * sizeof(float)) == 0, "parameters equal bit for bit");
    sdl_tensor *ids = sdl_tensor_new(sdl_shape1(2), SDL_I32);
    sdl_i32(ids)[0] = -7;
    CHECK(sdl_item(fake_to_device(ids)) == -7.0f, "sdl_item reads an i32 device tensor");
    sdl_tensor_free(ids);
    sdl_optim_free(od);
    sdl_optim_free(oc);
    sdl_model_free(md);
    sdl_model_free(mc);
    CHECK(fk.dealloc == fk.alloc, "every device block freed through the backend (%ld of %ld)", fk.dealloc, fk.alloc);
}

static void test_optimizer_before_move(void) {
    memset(&fk, 0, sizeof fk);
    sdl_model *m = sdl_model_new(1);
    make_mlp(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);
    fake_model_to_device(m);
    CHECK(sdl_optim_step(o) == SDL_ERR_DEVICE && fk.step == 0, "an optimizer made before the move refuses to step");
    CHECK(strstr(sdl_last_error(), "after the optimizer") != NULL, "and says why: %s", sdl_last_error());
    sdl_optim_free(o); /* its state is host memory: freed with SDL_DEALLOC (ASan checks) */
    sdl_model_free(m);
    CHECK(fk.dealloc == fk.alloc, "model arrays freed through the backend");
}

static void test_no_optim_kernel(void) {
    memset(&fk, 0, sizeof fk);
    sdl_backend be = *sdl_get_backend(SDL_CUDA);
    be.optim_step = NULL;
    sdl_register_backend(SDL_CUDA, &be);
    sdl_model *m = sdl_model_new(1);
    make_mlp(m);
    fake_model_to_device(m);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.0f, 0.0f, false);
    CHECK(sdl_optim_step(o) == SDL_ERR_DEVICE && o->step == 0, "no optimizer kernel: an error, no step counted");
    sdl_optim_free(o);
    sdl_model_free(m);
    fake_register();
}

int main(void) {
    (void)gradcheck; /* the CPU model is the reference here */
    fake_register();
    RUN(test_train_on_fake_device);
    RUN(test_optimizer_before_move);
    RUN(test_no_optim_kernel);
    sdl_backend none;
    memset(&none, 0, sizeof none);
    sdl_register_backend(SDL_CUDA, &none);
    return sdl_test_finish();
}
