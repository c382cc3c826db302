/* test_data_stb.cpp - a C++ program that builds stb_image itself and includes it before
   sdl.h: sdl then uses that copy (and compiles none of its own), and both can decode. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <unistd.h>

#ifdef SDL__OWN_STBI
#error "sdl compiled its own stb_image although the program included one"
#endif
#ifndef SDL__OWN_STBIW
#error "sdl should compile its own stb_image_write: the program did not include one"
#endif

static char dir[64];

static void test_user_stb_decodes(void) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(3, 4, 5), SDL_U8);
    for (int64_t i = 0; i < t->numel; i++) sdl_u8(t)[i] = (uint8_t)(i * 37 + 11);
    char path[128];
    snprintf(path, sizeof path, "%s/a.png", dir);
    CHECK(sdl_write_png(path, t, 0, 0, 0) == SDL_OK, "write: %s", sdl_last_error());
    sdl_tensor *u = sdl_load_image(path, 0); /* decoded by the program's stb_image */
    CHECK(u && u->numel == t->numel && !memcmp(u->data, t->data, (size_t)t->numel), "round trip: %s", sdl_last_error());
    int w = 0, h = 0, c = 0;
    unsigned char *p = stbi_load(path, &w, &h, &c, 0); /* the program's own call */
    CHECK(p && w == 5 && h == 4 && c == 3 && p[1] == sdl_u8(t)[20], "stbi_load in the program");
    stbi_image_free(p);
    sdl_tensor_free(u);
    sdl_tensor_free(t);
}

static void test_gz_with_user_stb(void) {
    uint8_t img[16 + 2 * 3 * 3], lab[8 + 2];
    const uint8_t hi[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3}, hl[8] = {0, 0, 8, 1, 0, 0, 0, 2};
    memcpy(img, hi, 16);
    memcpy(lab, hl, 8);
    for (int i = 0; i < 18; i++) img[16 + i] = (uint8_t)(i * 13);
    lab[8] = 4; lab[9] = 1;
    char a[128], b[128], cmd[400];
    snprintf(a, sizeof a, "%s/i", dir);
    snprintf(b, sizeof b, "%s/l", dir);
    FILE *f = fopen(a, "wb"); fwrite(img, 1, sizeof img, f); fclose(f);
    f = fopen(b, "wb"); fwrite(lab, 1, sizeof lab, f); fclose(f);
    snprintf(cmd, sizeof cmd, "gzip -f '%s' '%s'", a, b);
    CHECK(system(cmd) == 0, "gzip");
    strcat(a, ".gz");
    strcat(b, ".gz");
    sdl_dataset d;
    sdl_result r = sdl_load_idx(a, b, &d);
    CHECK(r == SDL_OK && d.n == 2 && d.h == 3 && d.w == 3 && !memcmp(d.images, img + 16, 18) && d.labels[0] == 4 && d.labels[1] == 1,
          "gz IDX through the program's stb_image: %s", sdl_last_error());
    sdl_dataset_free(&d);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(dir, sizeof dir, "/tmp/sdl_test_stb_XXXXXX");
    if (!mkdtemp(dir)) { printf("no temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_user_stb_decodes);
    RUN(test_gz_with_user_stb);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("  could not remove %s\n", dir);
    return sdl_test_finish();
}
