/* cuda_test_device.cu - sdl.h's device calls on sdl_cuda.h: sdl_device_parse("cuda:N")
   starts the backend at the first sdl_model_to (no sdl_cuda_init in this file), a model
   moved there trains like the CPU one, sdl_tensor_to round-trips, and a checkpoint of a GPU
   model with its Adam state loads into a CPU model (the same values) and into a fresh GPU
   model, which then goes on bit for bit as the uninterrupted run. A device index the
   machine lacks is an error. Without a GPU it prints a skip line and "0 passed, 0 failed".

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_device.cu -o cuda_test_device -lcublas */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"

static sdl_module *make_net(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv", 1, 3, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn", 3));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 3, 4, true));
    return net;
}

static void train(sdl_module *net, sdl_optim *o, sdl_device dev, sdl_tensor *x, sdl_tensor *y, int k) {
    for (int s = 0; s < k; s++) {
        sdl_backward(sdl_cross_entropy(sdl_forward(net, sdl_tensor_to(x, dev)), sdl_tensor_to(y, dev), 0.0f));
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}

/* parameters, buffers and optimizer state as host floats */
static float *host_copy(sdl_model *m, sdl_optim *o, int64_t *n) {
    int64_t pf = m->param_floats, bf = m->buffer_floats, sf = o ? (int64_t)o->nstate * pf : 0;
    float *h = (float *)malloc((size_t)(pf + bf + sf) * sizeof(float));
    bool dev = m->params[0]->device == SDL_CUDA;
    float *p = dev ? dev_floats(m->param_data, pf) : m->param_data, *b = dev ? dev_floats(m->buffer_data, bf) : m->buffer_data;
    memcpy(h, p, (size_t)pf * 4);
    memcpy(h + pf, b, (size_t)bf * 4);
    if (dev) free(p), free(b);
    if (sf) {
        float *s = o->device == SDL_CUDA ? dev_floats(o->state, sf) : o->state;
        memcpy(h + pf + bf, s, (size_t)sf * 4);
        if (o->device == SDL_CUDA) free(s);
    }
    *n = pf + bf + sf;
    return h;
}

static double max_rel(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]) / (fabs((double)a[i]) + 1e-3));
    return m;
}

static void test_parse_and_index(void) {
    sdl_device d = SDL_CPU;
    int count = 0;
    cudaGetDeviceCount(&count);
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", count);
    CHECK(sdl_device_parse(name, &d) == SDL_OK && d == SDL_CUDA, "%s parses (the backend is compiled in)", name);
    sdl_model *m = sdl_model_new(1);
    make_net(m);
    sdl_result r = sdl_model_to(m, d);
    CHECK(r == SDL_ERR_DEVICE && strstr(sdl_last_error(), "this machine has") && m->params[0]->device == SDL_CPU,
          "a device index the machine lacks: %s", sdl_last_error());
    CHECK(sdl_device_parse("cuda:0", &d) == SDL_OK && sdl_model_to(m, d) == SDL_OK && m->params[0]->device == SDL_CUDA,
          "cuda:0 starts the backend at the first move: %s", sdl_last_error());
    sdl_model_free(m);
    float v[5] = {1, 2, -3, 4.5f, 1e-7f};
    sdl_tensor *h = sdl_tensor_from(sdl_shape1(5), v);
    sdl_tensor *g = sdl_tensor_to(h, SDL_CUDA), *back = sdl_tensor_to(g, SDL_CPU);
    CHECK(g && g->device == SDL_CUDA && sdl_tensor_to(g, SDL_CUDA) == g && back && !memcmp(back->data, v, sizeof v), "tensor_to round trip");
    sdl_arena_reset();
    sdl_tensor_free(h);
}

static void test_model_and_checkpoint(void) {
    const char *path = "build/cuda_test_device.safetensors";
    (void)system("mkdir -p build");
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(4, 1, 5, 5), SDL_F32);
    sdl_tensor *y = sdl_tensor_new(sdl_shape1(4), SDL_I32);
    sdl_manual_seed(9);
    sdl_tensor_randn(x, 0.0f, 1.0f);
    for (int i = 0; i < 4; i++) sdl_i32(y)[i] = i % 4;
    sdl_model *mc = sdl_model_new(3);
    sdl_module *nc = make_net(mc);
    sdl_model *md = sdl_model_new(3);
    sdl_module *nd = make_net(md);
    CHECK(sdl_model_to(md, SDL_CUDA) == SDL_OK, "model_to cuda");
    sdl_optim *oc = sdl_adam(mc, 0.01f, 0, 0, 0), *od = sdl_adam(md, 0.01f, 0, 0, 0);
    train(nc, oc, SDL_CPU, x, y, 3);
    train(nd, od, SDL_CUDA, x, y, 3);
    int64_t n1, n2, n3;
    float *a = host_copy(mc, oc, &n1), *b = host_copy(md, od, &n2);
    double e = max_rel(a, b, n1);
    CHECK(n1 == n2 && e < 1e-3, "3 Adam steps on the GPU ~ on the CPU (max rel %.2e)", e);
    free(a);
    a = b; /* the GPU's state at the save */
    CHECK(sdl_checkpoint_save(path, md, od, 3) == SDL_OK, "save from the GPU: %s", sdl_last_error());
    train(nd, od, SDL_CUDA, x, y, 2);
    b = host_copy(md, od, &n2);

    sdl_model *m2 = sdl_model_new(77);
    make_net(m2);
    sdl_optim *o2 = sdl_adam(m2, 0.5f, 0, 0, 0);
    CHECK(sdl_checkpoint_load(path, m2, o2, NULL) == SDL_OK && o2->step == 3, "load on the CPU: %s", sdl_last_error());
    float *c = host_copy(m2, o2, &n3);
    CHECK(n3 == n1 && !memcmp(a, c, (size_t)n1 * 4), "the CPU model holds the GPU's values, optimizer state included");
    free(c);

    sdl_model *m3 = sdl_model_new(78);
    sdl_module *n3d = make_net(m3);
    sdl_model_to(m3, SDL_CUDA);
    sdl_optim *o3 = sdl_adam(m3, 0.5f, 0, 0, 0);
    CHECK(sdl_checkpoint_load(path, m3, o3, NULL) == SDL_OK && o3->step == 3, "load on the GPU: %s", sdl_last_error());
    train(n3d, o3, SDL_CUDA, x, y, 2);
    c = host_copy(m3, o3, &n3);
    CHECK(!memcmp(b, c, (size_t)n1 * 4), "resumed on the GPU = the uninterrupted GPU run, bit for bit");
    free(c);
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

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA device\n");
        return sdl_test_finish();
    }
    RUN(test_parse_and_index);
    RUN(test_model_and_checkpoint);
    sdl_arena_release();
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
