/* fuzz_common.h - libFuzzer entry points for sdl's readers (not run by CI).
   Each tests/fuzz/fuzz_*.c defines FUZZ_READ(path), a call of one reader on a file.
   Build and run one with clang's libFuzzer, e.g.
      clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_npy.c -o fuzz_npy -lm -lpthread
      mkdir -p corpus && cp tests/data/f32_2x3.npy tests/data/u8_4x5x2.npy corpus/ && ./fuzz_npy corpus -max_total_time=60
   Without -fsanitize=fuzzer, define FUZZ_MAIN to get a main() that runs each file given on
   the command line once (to replay a crash):
      cc -g -DFUZZ_MAIN -fsanitize=address -I. tests/fuzz/fuzz_npy.c -o replay -lm -lpthread && ./replay crash-...
   The readers take paths, so each input is written to a file in /dev/shm (or /tmp) first. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fuzz_read(const char *path);

static const char *fuzz_path(void) {
    static char path[128];
    if (!path[0]) snprintf(path, sizeof path, "%s/sdl_fuzz_%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path();
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    sdl_clear_error();
    fuzz_read(path);
    remove(path);
    return 0;
}

#ifdef FUZZ_MAIN
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { fprintf(stderr, "cannot open %s\n", argv[i]); continue; }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = (uint8_t *)malloc((size_t)n + 1);
        size_t got = fread(buf, 1, (size_t)n, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, got);
        printf("%s: %s\n", argv[i], sdl_last_error()[0] ? sdl_last_error() : "ok");
        free(buf);
    }
    return 0;
}
#endif
