/* fuzz_image.c - one image file through stb_image (see fuzz_common.h). The pixel cap is
   2^20 here, not 2^26: a few hundred bytes of truncated JPEG that declare 23821 x 2304
   pixels decode (stb fills the missing data) to 165 MB in 4 s, 60 s under ASan, and such
   inputs stalled the first 10-minute run; the cap's check is the same code at any value. */
#define SDL_MAX_IMAGE_PIXELS ((int64_t)1 << 20)
#include "fuzz_common.h"
static void fuzz_read(const char *path) { sdl_tensor_free(sdl_load_image(path, 0)); }
