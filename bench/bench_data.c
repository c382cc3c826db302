/* bench_data.c - sdl_stream's decode + augment + batch rate (images/s) over JPEG tar shards
   (make bench-data: bench/bench_data.sh makes the shards and runs PyTorch's DataLoader + PIL
   on the same files). Usage: bench_data SHARD_PATTERN SIZE WORKERS [EPOCHS]
   SIZE 64: RandomCrop(64, padding=4) + flip + normalise (CIFAR style);
   SIZE 224: RandomResizedCrop(224) + flip + normalise (ImageNet style). Batch 64.
   Before timing, one batch is checked: shape, labels 0..9, normalised values in range. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bench_data SHARD_PATTERN SIZE WORKERS [EPOCHS]\n"); return 2; }
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
