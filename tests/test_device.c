/* test_device.c - devices by name and the core's moves without a GPU: sdl_device_parse,
   sdl_model_to, sdl_tensor_to and checkpoints of a model and optimizer on a device. A fake
   backend starts as SDL_CUDA when the core first needs it (sdl_register_device, as
   sdl_cuda.h does); its "device" memory is host memory, reached only through its table, and
   it counts its calls. tests/cuda_test_device.cu runs the same calls on sdl_cuda.h. The
   file includes sdl_cuda.h's implementation as a tutorial does: under cc it is empty but
   for the stubs a device-agnostic program links against (tf32, precision, shutdown). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION /* cc compiles it to stubs: no CUDA backend, and parse says so */
#include "../sdl_cuda.h"

static struct { long alloc, copy, opened; int index; } fk;

static void *fake_alloc(size_t n) { fk.alloc++; return malloc(n ? n : 1); }
static void fake_dealloc(void *p) { free(p); }
static void fake_memset0(void *p, size_t n) { memset(p, 0, n); }
static void fake_copy(void *d, const void *s, size_t n, sdl_device dd, sdl_device sd) {
    (void)dd, (void)sd;
    fk.copy++;
    memcpy(d, s, n);
}
static sdl_result fake_step(struct sdl_optim *o) { sdl__optim_update(o); return SDL_OK; }

/* what sdl_cuda.h's opener does: start the device, register the table */
static sdl_result fake_open(int index) {
    if (index > 1) return sdl_fail(SDL_ERR_DEVICE, "fake:%d: no such device", index);
    if (sdl_get_backend(SDL_CUDA)) return SDL_OK;
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
    fk.opened++;
    fk.index = index;
    return SDL_OK;
}

static sdl_module *make_net(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv", 1, 3, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn", 3));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 3, 4, true));
    return net;
}

/* k Adam steps on a fixed batch; x and y are CPU tensors, moved to dev each step */
static void train(sdl_module *net, sdl_optim *o, sdl_device dev, sdl_tensor *x, sdl_tensor *y, int k) {
    for (int s = 0; s < k; s++) {
        sdl_backward(sdl_cross_entropy(sdl_forward(net, sdl_tensor_to(x, dev)), sdl_tensor_to(y, dev), 0.0f));
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}

/* the model's parameters, buffers and optimizer state as host floats (through the table) */
static float *host_copy(sdl_model *m, sdl_optim *o, int64_t *n) {
    int64_t pf = m->param_floats, bf = m->buffer_floats, sf = o ? (int64_t)o->nstate * pf : 0;
    float *h = (float *)malloc((size_t)(pf + bf + sf) * sizeof(float));
    const sdl_backend *be = sdl_get_backend(m->params[0]->device);
    be->copy(h, m->param_data, (size_t)pf * 4, SDL_CPU, m->params[0]->device);
    be->copy(h + pf, m->buffer_data, (size_t)bf * 4, SDL_CPU, m->params[0]->device);
    if (sf) be->copy(h + pf + bf, o->state, (size_t)sf * 4, SDL_CPU, o->device);
    *n = pf + bf + sf;
    return h;
}

static void test_parse(void) {
    sdl_device d = SDL_DEVICE_DEFAULT;
    CHECK(sdl_device_parse("cpu", &d) == SDL_OK && d == SDL_CPU, "cpu");
    sdl_result r = sdl_device_parse("cuda", &d);
    CHECK(r == SDL_ERR_DEVICE && strstr(sdl_last_error(), "built without the CUDA backend") && strstr(sdl_last_error(), "nvcc"),
          "cuda without a backend compiled in: %d %s", (int)r, sdl_last_error());
    const char *bad[] = {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "CPU", ""};
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        r = sdl_device_parse(bad[i], &d);
        CHECK(r == SDL_ERR_ARG && strstr(sdl_last_error(), "device '"), "'%s' is refused: %s", bad[i], sdl_last_error());
    }
    CHECK(sdl_device_parse(NULL, &d) == SDL_ERR_ARG, "NULL name");
    sdl_register_device(SDL_CUDA, fake_open);
    CHECK(sdl_device_parse("cuda:7", &d) == SDL_OK && d == SDL_CUDA && fk.opened == 0, "cuda:7 parses; nothing starts yet");
    sdl_model *m = sdl_model_new(1);
    make_net(m);
    r = sdl_model_to(m, d);
    CHECK(r == SDL_ERR_DEVICE && strstr(sdl_last_error(), "fake:7") && m->params[0]->device == SDL_CPU,
          "a device that fails to start: the error, and the model stays: %s", sdl_last_error());
    CHECK(sdl_device_parse("cuda:1", &d) == SDL_OK && sdl_model_to(m, d) == SDL_OK && fk.opened == 1 && fk.index == 1,
          "cuda:1 starts the backend on index 1 at the first move (opened %ld, index %d)", fk.opened, fk.index);
    CHECK(!strcmp(sdl_device_name(SDL_CUDA), "cuda") && !strcmp(sdl_device_name(SDL_CPU), "cpu"), "names");
    sdl_model_free(m);
    CHECK(sdl_device_parse("cuda", &d) == SDL_OK && d == SDL_CUDA, "cuda once a backend registered");
}

static void test_tensor_to(void) {
    float v[6] = {1, -2, 3.5f, 4, 5, -6};
    sdl_tensor *h = sdl_tensor_from(sdl_shape2(2, 3), v);
    long copies = fk.copy;
    sdl_tensor *d = sdl_tensor_to(h, SDL_CUDA);
    CHECK(d && d != h && d->device == SDL_CUDA && fk.copy == copies + 1 && !memcmp(d->data, v, sizeof v) &&
          sdl_shape_equal(sdl_tensor_shape(d), sdl_shape2(2, 3)), "to the device: one copy, same values and shape");
    CHECK(sdl_tensor_to(d, SDL_CUDA) == d && fk.copy == copies + 1, "already there: the same tensor, no copy");
    sdl_tensor *b = sdl_tensor_to(d, SDL_CPU);
    CHECK(b && b->device == SDL_CPU && !memcmp(b->data, v, sizeof v) && sdl_tensor_to(h, SDL_DEVICE_DEFAULT) == h, "and back");
    CHECK(sdl_tensor_to(NULL, SDL_CUDA) == NULL, "NULL travels");
    sdl_arena_reset();
    sdl_tensor_free(h);
}

/* a model moved to the device trains like the CPU one, bit for bit (same kernels); its
   checkpoint, optimizer state included, loads into a CPU model and into a device model,
   and either goes on as the uninterrupted run does */
static void test_model_and_checkpoint(void) {
    const char *path = "build/test_device.safetensors";
    (void)system("mkdir -p build");
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(4, 1, 5, 5), SDL_F32);
    sdl_tensor *y = sdl_tensor_new(sdl_shape1(4), SDL_I32);
    sdl_manual_seed(9);
    sdl_tensor_randn(x, 0.0f, 1.0f);
    for (int i = 0; i < 4; i++) sdl_i32(y)[i] = i % 4;
    sdl_model *mc = sdl_model_new(3); /* the seed restarts the RNG: the same weights */
    sdl_module *nc = make_net(mc);
    sdl_model *md = sdl_model_new(3);
    sdl_module *nd = make_net(md);
    CHECK(sdl_model_to(md, SDL_CUDA) == SDL_OK && md->params[0]->device == SDL_CUDA && md->buffers[0]->device == SDL_CUDA,
          "model_to: parameters and buffers on the device");
    CHECK(sdl_model_to(md, SDL_CUDA) == SDL_OK, "model_to the same device: a no-op");
    sdl_optim *oc = sdl_adam(mc, 0.01f, 0, 0, 0), *od = sdl_adam(md, 0.01f, 0, 0, 0);
    CHECK(od->device == SDL_CUDA, "the optimizer made after the move keeps its state there");
    train(nc, oc, SDL_CPU, x, y, 3);
    train(nd, od, SDL_CUDA, x, y, 3);
    int64_t n1, n2;
    float *a = host_copy(mc, oc, &n1), *b = host_copy(md, od, &n2);
    CHECK(n1 == n2 && !memcmp(a, b, (size_t)n1 * 4), "3 Adam steps on the device = on the CPU, bit for bit");
    free(b);

    long copies = fk.copy;
    CHECK(sdl_checkpoint_save(path, md, od, 3) == SDL_OK, "save from the device: %s", sdl_last_error());
    int items = md->nparams + md->nbuffers + od->nstate * md->nparams;
    CHECK(fk.copy == copies + items, "save copies each item back through the table once (%ld copies, %d items)", fk.copy - copies, items);
    train(nd, od, SDL_CUDA, x, y, 2); /* the uninterrupted run */
    b = host_copy(md, od, &n2);

    /* into a fresh CPU model: the saved values are the CPU run's */
    sdl_model *m2 = sdl_model_new(77);
    sdl_module *n2c = make_net(m2);
    sdl_optim *o2 = sdl_adam(m2, 0.5f, 0, 0, 0);
    sdl_checkpoint_info info;
    CHECK(sdl_checkpoint_load(path, m2, o2, &info) == SDL_OK && info.epoch == 3 && o2->step == 3, "load on the CPU: %s", sdl_last_error());
    int64_t n3;
    float *c = host_copy(m2, o2, &n3);
    CHECK(n3 == n1 && !memcmp(a, c, (size_t)n1 * 4), "the device's checkpoint holds what the CPU run holds");
    free(c);
    train(n2c, o2, SDL_CPU, x, y, 2);
    c = host_copy(m2, o2, &n3);
    CHECK(!memcmp(b, c, (size_t)n1 * 4), "resumed on the CPU = the uninterrupted device run");
    free(c);

    /* into a fresh device model and optimizer */
    sdl_model *m3 = sdl_model_new(78);
    sdl_module *n3d = make_net(m3);
    sdl_model_to(m3, SDL_CUDA);
    sdl_optim *o3 = sdl_adam(m3, 0.5f, 0, 0, 0);
    copies = fk.copy;
    CHECK(sdl_checkpoint_load(path, m3, o3, &info) == SDL_OK && o3->step == 3, "load on the device: %s", sdl_last_error());
    CHECK(fk.copy == copies + items, "load copies each item over once (%ld)", fk.copy - copies);
    train(n3d, o3, SDL_CUDA, x, y, 2);
    c = host_copy(m3, o3, &n3);
    CHECK(!memcmp(b, c, (size_t)n1 * 4), "resumed on the device = the uninterrupted run");
    free(c);

    /* and the whole model back to the CPU */
    CHECK(sdl_model_to(md, SDL_CPU) == SDL_OK && md->params[0]->device == SDL_CPU, "model_to cpu");
    c = host_copy(md, NULL, &n3);
    CHECK(!memcmp(b, c, (size_t)n3 * 4), "back on the CPU with the same values");
    free(c);
    free(a);
    free(b);
    sdl_optim_free(o3);
    sdl_model_free(m3);
    sdl_optim_free(o2);
    sdl_model_free(m2);
    sdl_optim_free(oc);
    sdl_optim_free(od);
    sdl_model_free(mc);
    sdl_model_free(md);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    remove(path);
}

/* sdl_cuda.h under cc: the settings examples pass on link (--tf32), and the precision
   (--precision, through sdl_autocast) keeps f32 and says how to build for bf16 */
static void test_cuda_stubs(void) {
    sdl_cuda_set_tf32(true);
    CHECK(sdl_autocast(SDL_CPU, SDL_F32) == SDL_OK && sdl_autocast(SDL_CPU, SDL_DTYPE_DEFAULT) == SDL_OK, "f32: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_CPU, SDL_BF16) == SDL_ERR_DEVICE && strstr(sdl_last_error(), "nvcc"), "bf16 without CUDA: %s", sdl_last_error());
    sdl_cuda_shutdown();
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    RUN(test_parse);
    RUN(test_tensor_to);
    RUN(test_model_and_checkpoint);
    RUN(test_cuda_stubs);
    sdl_arena_release();
    return sdl_test_finish();
}
