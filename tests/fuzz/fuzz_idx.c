/* fuzz_idx.c - IDX images, plain or gzip (see fuzz_common.h); labels: a fixed valid file */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    static const uint8_t lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    static char lpath[160];
    if (!lpath[0]) {
        snprintf(lpath, sizeof lpath, "%s.labels", path);
        FILE *f = fopen(lpath, "wb");
        if (f) { fwrite(lab, 1, sizeof lab, f); fclose(f); }
    }
    sdl_dataset d;
    if (sdl_load_idx(path, lpath, &d) == SDL_OK) sdl_dataset_free(&d);
}
