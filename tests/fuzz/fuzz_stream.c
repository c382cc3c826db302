/* fuzz_stream.c - one shard through the streaming pipeline (sdl_stream, 2 workers, a
   shuffle buffer, every augmentation): the input is written as x.tar, or as x.tfrecord
   when its first byte is odd (see fuzz_common.h; the path gets the extension); a tar's .bin
   and .raw members are raw images of raw_shape (2, 3, 3). Seed corpus: seed_corpora.sh.
   The pixel cap is 2^20, as in fuzz_image.c: images of a few megapixels that a few hundred
   bytes declare slowed the first run to a tenth of its speed. */
#define SDL_MAX_IMAGE_PIXELS ((int64_t)1 << 20)
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    FILE *f = fopen(path, "rb");
    int first = f ? fgetc(f) : EOF;
    if (f) fclose(f);
    char shard[200];
    bool tfrecord = first != EOF && (first & 1);
    snprintf(shard, sizeof shard, "%s.%s", path, tfrecord ? "tfrecord" : "tar");
    if (rename(path, shard) != 0) return;
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = shard;
    d.batch_size = 3;
    d.workers = 2;
    d.shuffle_buffer = 4;
    d.channels = 3;
    d.aug.height = d.aug.width = 8;
    d.aug.random_resized_crop = true;
    d.aug.hflip = true;
    d.aug.pad = 2;
    if (!tfrecord) { /* TFRecord image bytes stay PNG/JPEG or TensorProto */
        d.raw_shape[0] = 2;
        d.raw_shape[1] = d.raw_shape[2] = 3;
    }
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    for (int e = 0; s && e < 2; e++)
        while (sdl_stream_next(s, &x, &y)) {}
    sdl_stream_free(s);
    rename(shard, path);
}
