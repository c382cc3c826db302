/* fuzz_zip.c - one ZIP file: the central directory, then every member read (CRC-checked)
   (see fuzz_common.h). Seed corpus: tests/make_zip.py's plain.zip and zip64.zip and the
   .npz fixtures in tests/data. */
#include "fuzz_common.h"
static void fuzz_read(const char *path) {
    sdl_zip *z = sdl_zip_open(path);
    for (int64_t i = 0; z && i < sdl_zip_count(z); i++) {
        size_t n;
        sdl_bytes_free(sdl_zip_read(z, i, &n));
    }
    sdl_zip_close(z);
}
