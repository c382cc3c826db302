/* bench_data.c - sdl_stream's decode + augment + batch rate (images/s) over JPEG tar shards
   (make bench-data: bench/bench_data.sh makes the shards and runs PyTorch's DataLoader + PIL
   on the same files). Usage: bench_data SHARD_PATTERN SIZE WORKERS [EPOCHS]
   SIZE 64: RandomCrop(64, padding=4) + flip + normalise (CIFAR style);
   SIZE 224: RandomResizedCrop(224) + flip + normalise (ImageNet style). Batch 64.
   Before timing, one batch is checked: shape, labels 0..9, normalised values in range.

   The loader against the training step (is the loader the bottleneck?):
     bench_data --fashion-shards DIR      DIR/fashion-{000000..000003}.tar: the first 8192
                                          Fashion-MNIST training images as 28x28 grey PNGs
     bench_data --step MODEL SHARD_PATTERN WORKERS THREADS SECONDS
   MODEL fashion_cnn: examples/fashion_cnn.c's network and step (SGD momentum 0.9), batch 64,
   its input (1, 28, 28) normalised as there; resnet18: examples/resnet18.c's model and
   resnet_train_step, batch 16, (3, 32, 32) with its CIFAR augmentation (RandomCrop(32,
   padding=4) + flip + normalise). Three rates, each over ~SECONDS: the loader alone
   (sdl_stream, WORKERS threads), the step alone on one fixed batch (THREADS threads), and
   training fed by the loader. Prints one BENCH line: images/s of wall time and of process
   CPU time (all threads; on a loaded machine other programs slow the wall-clock rates, not
   these), the ratios loader / step (the target: >= 2) and fed / step (1: the
   loader does not slow training down). */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <stdlib.h>
#include <time.h>
#define main resnet18_main /* its model and training step */
#include "../examples/resnet18.c"
#undef main

/* examples/fashion_cnn.c's network (built in its main): conv 32, conv 64, max-pool, fc 128, fc 10 */
static sdl_module *fashion_cnn_new(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 64 * 12 * 12, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
    return net->nchildren == 9 ? net : NULL;
}

static int fashion_shards(const char *dir) {
    sdl_dataset d;
    if (sdl_load_fashion_mnist("/usr/share/datasets/fashion-mnist", true, &d) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    d.n = 8192;
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "%s/fashion", dir);
    sdl_result r = sdl_write_shards(&d, prefix, 2048);
    if (r != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
    sdl_dataset_free(&d);
    return r == SDL_OK ? 0 : 1;
}

typedef struct rate { double wall, cpu; } rate; /* images per second of wall and of CPU time */

static double cpu_now(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* images/s of the loader alone: whole batches for at least secs seconds after one warm-up
   batch (epochs roll over by themselves) */
static rate loader_rate(sdl_stream *s, double secs) {
    sdl_tensor *x, *y;
    int64_t images = 0;
    sdl_stream_next(s, &x, &y);
    double t0 = sdl_now(), c0 = cpu_now();
    while (sdl_now() - t0 < secs && sdl_stream_error(s) == SDL_OK)
        if (sdl_stream_next(s, &x, &y)) images += x->shape[0];
    if (sdl_stream_error(s) != SDL_OK) { fprintf(stderr, "stream: %s\n", sdl_last_error()); exit(1); }
    rate r = {(double)images / (sdl_now() - t0), (double)images / (cpu_now() - c0)};
    return r;
}

/* images/s of training steps (examples/resnet18.c's resnet_train_step: forward, cross
   entropy, backward, SGD) for at least secs seconds and 3 steps, after 2 warm-up steps: on
   the fixed batch (x0, y0), or fed by the stream s */
static rate step_rate(sdl_module *net, sdl_optim *opt, sdl_stream *s, sdl_tensor *x0, sdl_tensor *y0, double secs) {
    int64_t images = 0;
    double t0 = 0, c0 = 0;
    for (int k = 0; k < 5 || sdl_now() - t0 < secs;) {
        if (k == 2 && images == 0) { t0 = sdl_now(); c0 = cpu_now(); }
        sdl_tensor *x = x0, *y = y0;
        if (s && !sdl_stream_next(s, &x, &y)) { /* the end of an epoch: the next call starts the next */
            if (sdl_stream_error(s) != SDL_OK) { fprintf(stderr, "stream: %s\n", sdl_last_error()); exit(1); }
            continue;
        }
        sdl_arena_reset();
        if (isnan(resnet_train_step(net, opt, x, y, NULL))) { fprintf(stderr, "step: %s\n", sdl_last_error()); exit(1); }
        if (k++ >= 2) images += x->shape[0];
    }
    rate r = {(double)images / (sdl_now() - t0), (double)images / (cpu_now() - c0)};
    return r;
}

static int vs_step(const char *model, const char *shards, int workers, int threads, double secs) {
    bool resnet = !strcmp(model, "resnet18");
    if (!resnet && strcmp(model, "fashion_cnn") != 0) { fprintf(stderr, "--step: fashion_cnn or resnet18\n"); return 2; }
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = shards;
    d.batch_size = resnet ? 16 : 64;
    d.workers = workers;
    d.prefetch = 4;
    d.shuffle_buffer = 256;
    d.shuffle_shards = true;
    d.seed = 1;
    d.channels = resnet ? 3 : 1;
    if (resnet) { /* the CIFAR recipe: RandomCrop(32, padding=4), flip, normalise */
        d.aug.height = d.aug.width = 32;
        d.aug.pad = 4;
        d.aug.hflip = true;
        const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
        memcpy(d.aug.mean, mean, sizeof mean);
        memcpy(d.aug.std, sd, sizeof sd);
    } else { /* fashion_cnn.c: normalise only */
        d.aug.mean[0] = 0.2860f;
        d.aug.std[0] = 0.3530f;
    }
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    if (!s || !sdl_stream_next(s, &x, &y)) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int64_t want[4] = {d.batch_size, d.channels, resnet ? 32 : 28, resnet ? 32 : 28};
    for (int i = 0; i < 4; i++)
        if (x->shape[i] != want[i]) {
            fprintf(stderr, "%s: batch dimension %d is %lld, the model takes %lld\n", shards, i, (long long)x->shape[i], (long long)want[i]);
            return 1;
        }
    sdl_tensor *x0 = sdl_tensor_new(sdl_shape4(want[0], want[1], want[2], want[3]), SDL_F32), *y0 = sdl_tensor_new(sdl_shape1(want[0]), SDL_I32);
    if (!x0 || !y0) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    memcpy(x0->data, x->data, (size_t)x->numel * sizeof(float)); /* the step's fixed batch: the loader's first */
    memcpy(y0->data, y->data, (size_t)y->numel * sizeof(int32_t));
    rate load = loader_rate(s, secs);
    sdl_set_num_threads(threads);
    sdl_model *m = sdl_model_new(42);
    sdl_module *net = resnet ? resnet18_new(m, 64, 10) : fashion_cnn_new(m);
    sdl_optim *opt = !net ? NULL : resnet ? sdl_sgd(m, 0.1f, 0.9f, 5e-4f, false) : sdl_sgd(m, 0.01f, 0.9f, 0.0f, false);
    if (!opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    rate step = step_rate(net, opt, NULL, x0, y0, secs);
    rate fed = step_rate(net, opt, s, NULL, NULL, secs);
    printf("BENCH data_vs_step %s b%d %lldx%lldx%lld workers=%d threads=%d loader=%.1f step=%.1f fed=%.1f images/s loader_cpu=%.1f step_cpu=%.1f "
           "images/cpu-s ratio=%.2f ratio_cpu=%.2f fed/step=%.2f\n",
           model, d.batch_size, (long long)want[1], (long long)want[2], (long long)want[3], workers, sdl_get_num_threads(), load.wall, step.wall, fed.wall, load.cpu, step.cpu, load.wall / step.wall,
           load.cpu / step.cpu, fed.wall / step.wall);
    sdl_optim_free(opt);
    sdl_model_free(m);
    sdl_tensor_free(x0);
    sdl_tensor_free(y0);
    sdl_stream_free(s);
    sdl_arena_release();
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--fashion-shards")) return fashion_shards(argv[2]);
    if (argc == 7 && !strcmp(argv[1], "--step")) return vs_step(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
    if (argc < 4) { fprintf(stderr, "usage: bench_data SHARD_PATTERN SIZE WORKERS [EPOCHS] | --fashion-shards DIR | --step MODEL SHARD_PATTERN WORKERS THREADS SECONDS\n"); return 2; }
    int size = atoi(argv[2]), workers = atoi(argv[3]), epochs = argc > 4 ? atoi(argv[4]) : 3;
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = argv[1];
    d.batch_size = 64;
    d.workers = workers;
    d.prefetch = 4;
    d.shuffle_buffer = 256;
    d.shuffle_shards = true;
    d.seed = 1;
    d.channels = 3;
    d.aug.height = d.aug.width = size;
    d.aug.hflip = true;
    if (size == 64) d.aug.pad = 4;
    else d.aug.random_resized_crop = true;
    for (int c = 0; c < 3; c++) { d.aug.mean[c] = 0.5f; d.aug.std[c] = 0.25f; }
    sdl_stream *s = sdl_stream_new(&d);
    if (!s) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    sdl_tensor *x, *y;
    if (!sdl_stream_next(s, &x, &y) || x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != size || x->shape[3] != size) {
        fprintf(stderr, "check failed: %s\n", sdl_last_error());
        return 1;
    }
    for (int64_t i = 0; i < x->numel; i++)
        if (!(sdl_f32(x)[i] >= -2.0f - 1e-5f && sdl_f32(x)[i] <= 2.0f + 1e-5f)) { fprintf(stderr, "check failed: x[%lld] = %g\n", (long long)i, sdl_f32(x)[i]); return 1; }
    for (int64_t i = 0; i < y->numel; i++)
        if (sdl_i32(y)[i] < 0 || sdl_i32(y)[i] > 9) { fprintf(stderr, "check failed: label %d\n", sdl_i32(y)[i]); return 1; }
    while (sdl_stream_next(s, &x, &y)) {} /* the rest of epoch 0: warms the file cache */
    int64_t images = 0;
    double t0 = sdl_now();
    for (int e = 0; e < epochs; e++)
        while (sdl_stream_next(s, &x, &y)) images += x->shape[0];
    double dt = sdl_now() - t0;
    if (sdl_stream_error(s) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    printf("sdl jpeg%d workers %d: %lld images in %.3f s: %.1f images/s\n", size, workers, (long long)images, dt, (double)images / dt);
    sdl_stream_free(s);
    return 0;
}
