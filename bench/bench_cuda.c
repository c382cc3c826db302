/* bench_cuda.c - sdl's training throughput on the GPU for the two Fashion-MNIST-shaped models
   of bench_cpu.c (MLP 784-256-128-10, CNN conv 32, conv 64, max-pool, fc 128, fc 10), batch 64,
   f32, one fixed random batch (as bench_torch_cuda.py). Before timing, each model trains three
   steps on the CPU and on the GPU from the same weights and batch; the losses must agree
   (relative 1e-4), or the model is not timed.

   build:  nvcc -std=c++17 -O2 -x cu -I. bench/bench_cuda.c -o build/bench_cuda -lcublas
   run:    ./build/bench_cuda [--seconds 2] [--batch-size 64] [--only mlp|cnn] [--tf32] [--graph]
   Prints, per model:  SDL name=<mlp_b64|cnn_b64> value=<samples/s> unit=samples/s check=<ok|FAIL>
   --graph adds two rows per model, timed in the same run: <name>_static (eager steps on a
   batch kept in static device tensors: no upload per step, as PyTorch's loop) and <name>_graph
   (the same step captured once as a CUDA graph and replayed: sdl_cuda_graph_*). Their check:
   the first three losses of the graph run equal those of eager steps from the same weights
   (relative 1e-6).
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

#ifdef __CUDACC__
/* --graph: eager steps and graph replays on static device inputs */
typedef struct gstep { sdl_module *net; sdl_optim *opt; sdl_tensor *x, *y; } gstep;
static sdl_tensor *graph_step(void *ctx) {
    gstep *s = (gstep *)ctx;
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(s->net, s->x), s->y, 0.0f);
    if (sdl_backward(loss) != SDL_OK || sdl_optim_step(s->opt) != SDL_OK) return NULL;
    return loss;
}

/* steps for about `seconds` (the loss read back every 50); one call runs one step */
static double timed_rate(int batch, double seconds, bool *ok, float (*one)(void *ctx, bool wait), void *ctx) {
    for (int s = 0; s < 5; s++) one(ctx, false);
    one(ctx, true);
    int64_t steps = 0;
    double t0 = sdl_now(), dt = 0.0;
    do {
        for (int s = 0; s < 49; s++) one(ctx, false);
        float l = one(ctx, true);
        steps += 50;
        dt = sdl_now() - t0;
        if (!isfinite(l)) { *ok = false; printf("timing: loss %g: %s\n", (double)l, sdl_last_error()); break; }
    } while (dt < seconds);
    return (double)steps * batch / dt;
}
static float eager_one(void *ctx, bool wait) {
    sdl_tensor *loss = graph_step(ctx);
    float v = !loss ? NAN : wait ? sdl_item(loss) : 0.0f;
    sdl_arena_reset();
    return v;
}
static float replay_one(void *ctx, bool wait) {
    sdl_cuda_graph *g = (sdl_cuda_graph *)ctx;
    if (sdl_cuda_graph_replay(g) != SDL_OK) return NAN;
    float v = wait ? sdl_item(sdl_cuda_graph_output(g)) : 0.0f;
    sdl_arena_reset();
    return v;
}

/* rates[0]: eager on static inputs, rates[1]: graph replays */
static bool bench_graph(bool cnn, int batch, double seconds, bool tf32, const sdl_tensor *x, const sdl_tensor *y, double rates[2]) {
    const char *name = cnn ? "cnn" : "mlp";
    sdl_model *ma = sdl_model_new(1);
    sdl_module *na = cnn ? make_cnn(ma) : make_mlp(ma);
    sdl_model *mb = sdl_model_new(1);
    sdl_module *nb = cnn ? make_cnn(mb) : make_mlp(mb);
    bool ok = sdl_cuda_model_to_device(ma) == SDL_OK && sdl_cuda_model_to_device(mb) == SDL_OK;
    sdl_optim *oa = sdl_sgd(ma, 0.01f, 0.9f, 0.0f, false), *ob = sdl_sgd(mb, 0.01f, 0.9f, 0.0f, false);
    sdl_tensor *sx = sdl_cuda_tensor_new(sdl_tensor_shape(x), SDL_F32), *sy = sdl_cuda_tensor_new(sdl_tensor_shape(y), SDL_I32);
    ok = ok && na && nb && oa && ob && sx && sy && sdl_cuda_copy(sx, x) == SDL_OK && sdl_cuda_copy(sy, y) == SDL_OK;
    gstep a = {na, oa, sx, sy}, b = {nb, ob, sx, sy};
    sdl_cuda_graph *g = NULL;
    sdl_cuda_set_tf32(false);
    if (ok) { /* the check: 3 eager steps against 1 eager step (the warm-up) and 2 replays */
        float la[3], lb[3];
        for (int s = 0; s < 3; s++) la[s] = eager_one(&a, true);
        lb[0] = eager_one(&b, true);
        g = sdl_cuda_graph_capture(graph_step, &b);
        sdl_arena_reset();
        if (!g) { ok = false; printf("%s graph: capture failed: %s\n", name, sdl_last_error()); }
        for (int s = 1; s < 3 && g; s++) lb[s] = replay_one(g, true);
        for (int s = 0; s < 3 && g; s++) {
            double e = fabs((double)lb[s] - (double)la[s]) / fabs((double)la[s]);
            printf("%s graph check step %d: eager loss %.7f graph loss %.7f (relative difference %.1e)\n", name, s + 1, (double)la[s], (double)lb[s], e);
            if (!(e <= 1e-6)) ok = false;
        }
    } else {
        printf("%s graph: setup failed: %s\n", name, sdl_last_error());
    }
    sdl_cuda_set_tf32(tf32);
    if (ok) {
        rates[0] = timed_rate(batch, seconds, &ok, eager_one, &a);
        rates[1] = timed_rate(batch, seconds, &ok, replay_one, g);
    }
    sdl_cuda_graph_free(g);
    sdl_cuda_tensor_free(sx);
    sdl_cuda_tensor_free(sy);
    sdl_optim_free(oa);
    sdl_optim_free(ob);
    sdl_model_free(ma);
    sdl_model_free(mb);
    return ok;
}
#endif

static result bench_model(bool cnn, int batch, double seconds, bool tf32) {
    result r = {0.0, false};
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(batch), SDL_I32);
    sdl_manual_seed(7);
    sdl_tensor_uniform(x, 0.0f, 1.0f);
    for (int i = 0; i < batch; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(7, 1, (uint64_t)i) * 10.0f) % 10;

    /* the check: three steps on each device from the same weights */
    /* sdl_model_new seeds the global RNG the layers draw from: make each model right after */
    sdl_model *mc = sdl_model_new(1);
    sdl_module *nc = cnn ? make_cnn(mc) : make_mlp(mc);
    sdl_model *mg = sdl_model_new(1);
    sdl_module *ng = cnn ? make_cnn(mg) : make_mlp(mg);
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
    bool tf32 = false, help = false, graph = false;
    const char *only = "";
    sdl_arg args[] = {
        {"batch-size", SDL_ARG_INT, &batch, "samples per step"},
        {"seconds", SDL_ARG_FLOAT, &seconds, "time each model about this long"},
        {"only", SDL_ARG_STRING, &only, "mlp or cnn (default both)"},
        {"tf32", SDL_ARG_BOOL, &tf32, "time with GEMMs on TF32 tensor cores (the check runs in f32)"},
        {"graph", SDL_ARG_BOOL, &graph, "also time eager steps on static inputs and CUDA graph replays"},
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
#ifdef __CUDACC__
        if (graph) {
            sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(batch), SDL_I32);
            sdl_manual_seed(7);
            sdl_tensor_uniform(x, 0.0f, 1.0f);
            for (int i = 0; i < batch; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(7, 1, (uint64_t)i) * 10.0f) % 10;
            double rates[2] = {0.0, 0.0};
            bool ok = bench_graph(cnn != 0, batch, seconds, tf32, x, y, rates);
            printf("SDL name=%s_b%d_static value=%.1f unit=samples/s check=%s\n", name, batch, rates[0], ok ? "ok" : "FAIL");
            printf("SDL name=%s_b%d_graph value=%.1f unit=samples/s check=%s\n", name, batch, rates[1], ok ? "ok" : "FAIL");
            fflush(stdout);
            bad |= !ok;
            sdl_tensor_free(x);
            sdl_tensor_free(y);
        }
#else
        (void)graph;
#endif
    }
#ifdef __CUDACC__
    sdl_cuda_set_tf32(false);
    sdl_cuda_shutdown();
#endif
    sdl_arena_release();
    return bad;
}
