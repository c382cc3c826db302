/* fuzz_tfrecord.c - one TFRecord file: every record's CRCs, then each record parsed as a
   tf.train.Example and its bytes features as TensorProtos (see fuzz_common.h). Seed corpus:
   files written by tests/tfrecord_ref.py write and by tests/test_tfrecord.c. */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    sdl_tfrecord_reader *r = sdl_tfrecord_open(path);
    const uint8_t *p;
    size_t n;
    while (r && sdl_tfrecord_next(r, &p, &n)) {
        sdl_example *e = sdl_example_parse(p, n, path);
        for (int i = 0; e && i < sdl_example_num_features(e); i++) {
            const char *name = sdl_example_feature_name(e, i);
            int64_t count;
            sdl_feature_kind k = sdl_example_kind(e, name, &count);
            if (k == SDL_FEATURE_BYTES)
                for (int64_t j = 0; j < count; j++) {
                    size_t m;
                    const uint8_t *b = sdl_example_bytes(e, name, j, &m);
                    sdl_tensor_free(sdl_tensorproto_parse(b, m, name));
                }
            else if (k == SDL_FEATURE_FLOAT) { const float *f = sdl_example_floats(e, name, &count); if (count) (void)f[count - 1]; }
            else if (k == SDL_FEATURE_INT64) { const int64_t *v = sdl_example_int64s(e, name, &count); if (count) (void)v[count - 1]; }
        }
        sdl_example_free(e);
    }
    sdl_tfrecord_close(r);
}
