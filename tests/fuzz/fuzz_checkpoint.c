/* fuzz_checkpoint.c - safetensors checkpoints (see fuzz_common.h): the strict loader and the
   non-strict weights loader on the model of tests/data/torch_small.safetensors. Seed corpus:
   tests/data/torch_small.safetensors */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    sdl_model *m = sdl_model_new(1);
    sdl_conv2d_layer(m, "conv1", 1, 4, 3, 1, 1, true);
    sdl_batch_norm_layer(m, "bn1", 4);
    sdl_linear_layer(m, "fc", 64, 3, true);
    sdl_checkpoint_load(path, m, NULL, NULL);
    sdl_load_desc d = {0};
    d.non_strict = true;
    d.skip_mismatched = true;
    sdl_load_report r;
    if (sdl_checkpoint_load_weights(path, m, &d, &r) == SDL_OK) sdl_load_report_free(&r);
    sdl_model_free(m);
}
