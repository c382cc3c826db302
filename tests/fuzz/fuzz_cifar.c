/* fuzz_cifar.c - one CIFAR-10 binary batch file (see fuzz_common.h) */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    sdl_dataset d;
    if (sdl_load_cifar10_file(path, &d) == SDL_OK) sdl_dataset_free(&d);
}
