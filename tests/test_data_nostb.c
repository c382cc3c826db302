/* test_data_nostb.c - built with SDL_NO_STB: the readers that need no stb work, the others
   return an error that says why */
#define _POSIX_C_SOURCE 200809L
#define SDL_NO_STB
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <unistd.h>

#ifdef STBI_INCLUDE_STB_IMAGE_H
#error "SDL_NO_STB still included stb_image.h"
#endif

static char dir[64];

static void test_without_stb(void) {
    char a[128], b[128], cmd[400];
    uint8_t lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 5};
    uint8_t img[16 + 2 * 2 * 2] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    snprintf(a, sizeof a, "%s/i", dir);
    snprintf(b, sizeof b, "%s/l", dir);
    FILE *f = fopen(a, "wb"); fwrite(img, 1, sizeof img, f); fclose(f);
    f = fopen(b, "wb"); fwrite(lab, 1, sizeof lab, f); fclose(f);
    sdl_dataset d;
    CHECK(sdl_load_idx(a, b, &d) == SDL_OK && d.n == 2 && d.labels[1] == 5, "plain IDX: %s", sdl_last_error());
    sdl_dataset_free(&d);
    snprintf(cmd, sizeof cmd, "gzip -k -f '%s'", b);
    CHECK(system(cmd) == 0, "gzip");
    strcat(b, ".gz");
    CHECK(sdl_load_idx(a, b, &d) == SDL_ERR_ARG && strstr(sdl_last_error(), "SDL_NO_STB") && strstr(sdl_last_error(), "l.gz"), "gz: %s", sdl_last_error());
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(1, 2, 2), SDL_U8);
    snprintf(a, sizeof a, "%s/x.png", dir);
    CHECK(sdl_write_png(a, t, 0, 0, 0) == SDL_ERR_ARG && strstr(sdl_last_error(), "SDL_NO_STB"), "png: %s", sdl_last_error());
    snprintf(a, sizeof a, "%s/x.npy", dir);
    CHECK(sdl_save_npy(a, t) == SDL_OK, "npy needs no stb");
    sdl_tensor *u = sdl_load_npy(a);
    CHECK(u && u->numel == 4, "npy read");
    sdl_tensor_free(u);
    CHECK(!sdl_load_image(a, 0) && strstr(sdl_last_error(), "SDL_NO_STB"), "image: %s", sdl_last_error());
    u = sdl_load_npz("tests/data/stored.npz", "x");
    CHECK(u && u->numel == 6, "stored npz: %s", sdl_last_error());
    sdl_tensor_free(u);
    u = sdl_load_npz("tests/data/deflated.npz", "x");
    CHECK(!u && strstr(sdl_last_error(), "SDL_NO_STB"), "deflated npz: %s", sdl_last_error());
    sdl_tensor_free(t);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(dir, sizeof dir, "/tmp/sdl_test_nostb_XXXXXX");
    if (!mkdtemp(dir)) { printf("no temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_without_stb);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("  could not remove %s\n", dir);
    return sdl_test_finish();
}
