/* fuzz_tar.c - one WebDataset tar shard (see fuzz_common.h) */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    sdl_dataset d;
    if (sdl_load_shards(path, 0, &d) == SDL_OK) sdl_dataset_free(&d);
}
