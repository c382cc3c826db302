/* bench_cuda.c - sdl's training throughput on the GPU for the two Fashion-MNIST-shaped models
   of bench_cpu.c (MLP 784-256-128-10, CNN conv 32, conv 64, max-pool, fc 128, fc 10), batch 64,
   f32, one fixed random batch (as bench_torch_cuda.py). Before timing, each model trains three
   steps on the CPU and on the GPU from the same weights and batch; the losses must agree
   (relative 1e-4), or the model is not timed.

   build:  nvcc -std=c++17 -O2 -x cu -I. bench/bench_cuda.c -o build/bench_cuda -lcublas
   run:    ./build/bench_cuda [--seconds 2] [--batch-size 64] [--only mlp|cnn] [--tf32]
   Prints, per model:  SDL name=<mlp_b64|cnn_b64> value=<samples/s> unit=samples/s check=<ok|FAIL>
   Bench/bench_cuda.sh runs it beside PyTorch and prints the BENCH lines. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#ifdef __CUDACC__
#define SDL_CUDA_IMPLEMENTATION
#include "sdl_cuda.h"
#endif
#include <stdlib.h>
#include <string.h>
#include <math.h>

static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 256, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 256, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc3", 128, 10, true));
    return net;
}
static sdl_module *make_cnn(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 9216, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
    return net;
}

/* one SGD step (lr 0.01, momentum 0.9) on the batch, copied to the model's device; the loss,
   or NaN on an error. wait: read the loss back (waits for the GPU) */
static float step(sdl_module *net, sdl_optim *opt, sdl_tensor *x, sdl_tensor *y, bool gpu, bool wait) {
#ifdef __CUDACC__
    if (gpu) { x = sdl_cuda_to_device(x); y = sdl_cuda_to_device(y); }
#else
    (void)gpu;
#endif
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
    if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) return NAN;
    float v = wait ? sdl_item(loss) : 0.0f;
    sdl_arena_reset();
    return v;
}

typedef struct result { double rate; bool ok; } result;

static result bench_model(bool cnn, int batch, double seconds, bool tf32) {
    result r = {0.0, false};
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(batch), SDL_I32);
    sdl_manual_seed(7);
    sdl_tensor_uniform(x, 0.0f, 1.0f);
    for (int i = 0; i < batch; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(7, 1, (uint64_t)i) * 10.0f) % 10;

    /* the check: three steps on each device from the same weights */
    sdl_model *mc = sdl_model_new(1), *mg = sdl_model_new(1);
    sdl_module *nc = cnn ? make_cnn(mc) : make_mlp(mc), *ng = cnn ? make_cnn(mg) : make_mlp(mg);
    bool gpu = false;
#ifdef __CUDACC__
    gpu = sdl_cuda_model_to_device(mg) == SDL_OK;
#endif
    sdl_optim *oc = sdl_sgd(mc, 0.01f, 0.9f, 0.0f, false), *og = sdl_sgd(mg, 0.01f, 0.9f, 0.0f, false);
    if (!nc || !ng || !oc || !og || !gpu) {
        printf("%s: setup failed: %s\n", cnn ? "cnn" : "mlp", sdl_last_error());
    } else {
        r.ok = true;
        for (int s = 0; s < 3; s++) {
            float lc = step(nc, oc, x, y, false, true), lg = step(ng, og, x, y, true, true);
            double e = fabs((double)lg - (double)lc) / fabs((double)lc);
            printf("%s check step %d: cpu loss %.6f gpu loss %.6f (relative difference %.1e)\n", cnn ? "cnn" : "mlp", s + 1,
                   (double)lc, (double)lg, e);
            if (!(e <= 1e-4)) { r.ok = false; printf("%s: the GPU loss differs from the CPU's: %s\n", cnn ? "cnn" : "mlp", sdl_last_error()); }
        }
    }
    /* the timing: warm-up, then steps for about `seconds`, the loss read back at the end */
#ifdef __CUDACC__
    sdl_cuda_set_tf32(tf32);
#else
    (void)tf32;
#endif
    if (r.ok) {
        for (int s = 0; s < 5; s++) step(ng, og, x, y, true, false);
        step(ng, og, x, y, true, true);
        int64_t steps = 0;
        double t0 = sdl_now(), dt = 0.0;
        do {
            for (int s = 0; s < 49; s++) step(ng, og, x, y, true, false);
            float l = step(ng, og, x, y, true, true);
            steps += 50;
            dt = sdl_now() - t0;
            if (!isfinite(l)) { r.ok = false; printf("timing: loss %g: %s\n", (double)l, sdl_last_error()); break; }
        } while (dt < seconds);
        r.rate = (double)steps * batch / dt;
    }
    sdl_optim_free(oc);
    sdl_optim_free(og);
    sdl_model_free(mc);
    sdl_model_free(mg);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    return r;
}

int main(int argc, char **argv) {
    int batch = 64;
    float seconds = 2.0f;
    bool tf32 = false, help = false;
    const char *only = "";
    sdl_arg args[] = {
        {"batch-size", SDL_ARG_INT, &batch, "samples per step"},
        {"seconds", SDL_ARG_FLOAT, &seconds, "time each model about this long"},
        {"only", SDL_ARG_STRING, &only, "mlp or cnn (default both)"},
        {"tf32", SDL_ARG_BOOL, &tf32, "time with GEMMs on TF32 tensor cores (the check runs in f32)"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 2; }
    if (help) { sdl_args_usage(stdout, argv[0], args, nargs); return 0; }
#ifdef __CUDACC__
    if (sdl_cuda_init() != SDL_OK) { fprintf(stderr, "bench_cuda: %s\n", sdl_last_error()); return 1; }
#else
    fprintf(stderr, "bench_cuda: build it with nvcc -std=c++17 -O2 -x cu -I. bench/bench_cuda.c -lcublas\n");
    return 1;
#endif
    int bad = 0;
    for (int cnn = 0; cnn < 2; cnn++) {
        const char *name = cnn ? "cnn" : "mlp";
        if (only[0] && strcmp(only, name) != 0) continue;
        result r = bench_model(cnn != 0, batch, seconds, tf32);
        printf("SDL name=%s_b%d value=%.1f unit=samples/s check=%s\n", name, batch, r.rate, r.ok ? "ok" : "FAIL");
        fflush(stdout);
        bad |= !r.ok;
    }
#ifdef __CUDACC__
    sdl_cuda_set_tf32(false);
    sdl_cuda_shutdown();
#endif
    sdl_arena_release();
    return bad;
}
