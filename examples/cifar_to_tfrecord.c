/* cifar_to_tfrecord.c - CIFAR-10 to TFRecord shards, as the JSC course's day 2 converts it
   for tf.data: one tf.train.Example per image with "image" (bytes: the serialized
   TensorProto of the uint8 (32, 32, 3) image, what tf.io.serialize_tensor writes) and "label"
   (int64). TensorFlow reads the files back with
       tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, {
           'image': tf.io.FixedLenFeature([], tf.string), 'label': tf.io.FixedLenFeature([], tf.int64)}))
   and tf.io.parse_tensor(x['image'], tf.uint8); sdl reads them with sdl_stream (the last
   lines printed show the pattern).

   build:  cc -O2 -I. examples/cifar_to_tfrecord.c -o build/cifar_to_tfrecord -lm -lpthread
   run:    ./build/cifar_to_tfrecord --data DIR --out OUTDIR --per-shard 10000
   data:   DIR holds the binary CIFAR-10 (data_batch_1.bin ... test_batch.bin, or the
           cifar-10-batches-bin folder). Every flag has an underscore twin. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <stdlib.h>
#include <string.h>

/* one split: OUT/cifar10-<split>-000000.tfrecord, ... ; returns the number of shards or -1 */
static int convert(const sdl_dataset *d, const char *out, const char *split, int per_shard) {
    sdl_tensor *img = sdl_tensor_new(sdl_shape3(32, 32, 3), SDL_U8); /* HWC, as TF holds images */
    FILE *f = NULL;
    int shards = 0;
    sdl_result r = img ? SDL_OK : SDL_ERR_OOM;
    for (int64_t i = 0; r == SDL_OK && i < d->n; i++) {
        if (i % per_shard == 0) {
            char path[1100];
            if (f && fclose(f) != 0) r = sdl_fail(SDL_ERR_IO, "%s: write failed", out);
            snprintf(path, sizeof path, "%s/cifar10-%s-%06d.tfrecord", out, split, shards++);
            if (!(f = fopen(path, "wb"))) { r = sdl_fail(SDL_ERR_IO, "%s: cannot open for writing", path); break; }
        }
        const uint8_t *chw = d->images + i * 3072;
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int c = 0; c < 3; c++) sdl_u8(img)[(y * 32 + x) * 3 + c] = chw[c * 1024 + y * 32 + x];
        size_t tn, en;
        uint8_t *tp = sdl_tensorproto_serialize(img, &tn), *rec = NULL;
        sdl_example *e = sdl_example_new();
        int64_t label = d->labels[i];
        if (!tp || !e || sdl_example_add_bytes(e, "image", tp, tn) != SDL_OK || sdl_example_add_int64s(e, "label", &label, 1) != SDL_OK ||
            !(rec = sdl_example_serialize(e, &en)))
            r = sdl_last_result();
        else
            r = sdl_tfrecord_write_record(f, rec, en);
        sdl_bytes_free(tp);
        sdl_bytes_free(rec);
        sdl_example_free(e);
    }
    if (f && fclose(f) != 0 && r == SDL_OK) r = sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", out);
    sdl_tensor_free(img);
    return r == SDL_OK ? shards : -1;
}

int main(int argc, char **argv) {
    const char *data = "", *out = ".";
    int per_shard = 10000;
    bool help = false;
    sdl_arg args[] = {{"data", SDL_ARG_STRING, &data, "folder of the binary CIFAR-10"},
                      {"out", SDL_ARG_STRING, &out, "folder for the .tfrecord shards"},
                      {"per-shard", SDL_ARG_INT, &per_shard, "images per shard"},
                      {"help", SDL_ARG_BOOL, &help, "this list"}};
    if (sdl_args_parse(argc, argv, args, 4) != SDL_OK || per_shard < 1) { printf("%s\n", per_shard < 1 ? "--per-shard must be >= 1" : sdl_last_error()); return 2; }
    if (help) { sdl_args_usage(stdout, argv[0], args, 4); return 0; }
    for (int train = 1; train >= 0; train--) {
        sdl_dataset d;
        if (sdl_load_cifar10(data, train, &d) != SDL_OK) { printf("%s\n", sdl_last_error()); return 1; }
        const char *split = train ? "train" : "test";
        int shards = convert(&d, out, split, per_shard);
        if (shards < 0) { printf("%s\n", sdl_last_error()); sdl_dataset_free(&d); return 1; }
        printf("%s: %lld images in %d shards: sdl_stream_desc.shards = \"%s/cifar10-%s-{000000..%06d}.tfrecord\"\n", split, (long long)d.n, shards,
               out, split, shards - 1);
        sdl_dataset_free(&d);
    }
    return 0;
}
