/* fuzz_image.c - one image file through stb_image (see fuzz_common.h) */
#include "fuzz_common.h"
static void fuzz_read(const char *path) { sdl_tensor_free(sdl_load_image(path, 0)); }
