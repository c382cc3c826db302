/* fuzz_npy.c - .npy (see fuzz_common.h) */
#include "fuzz_common.h"
static void fuzz_read(const char *path) { sdl_tensor_free(sdl_load_npy(path)); }
