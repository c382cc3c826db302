/* test_stream_raw.c - raw-byte images in the streaming pipeline (sdl_stream_desc.raw_shape):
   .bin and .raw members of tar shards and raw image bytes in TFRecord examples (as
   tf.io.decode_raw reads them) arrive as (C, H, W) batches of the bytes / 255, transposed from
   HWC (to within float rounding of v * (1/255)); a byte count that does not match raw_shape, a raw member without raw_shape, a bad
   raw_shape and a channel mismatch are clear errors; so is a sample that fails half-read in the
   shuffle buffer, and it is freed. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <unistd.h>

enum { H = 3, W = 5, C = 2, N = 4 };
static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* sample i's bytes, HWC: distinct per sample, row, column and channel */
static uint8_t px(int i, int y, int x, int c) { return (uint8_t)(100 * c + 20 * y + 3 * x + i + 1); }

static void raw_bytes(int i, uint8_t *hwc) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) hwc[(y * W + x) * C + c] = px(i, y, x, c);
}

/* a tar shard of N samples: key.bin (or .raw for odd i) + key.cls + key.json; sample
   `short_one` (if >= 0) has one byte too few */
static void write_tar(const char *prefix, int short_one) {
    sdl_shard_writer *w = sdl_shard_writer_new(tpath(prefix), 0);
    for (int i = 0; i < N; i++) {
        uint8_t hwc[H * W * C];
        raw_bytes(i, hwc);
        char key[16], cls[8];
        snprintf(key, sizeof key, "k%02d", i);
        snprintf(cls, sizeof cls, "%d", 7 - i);
        const char *exts[3] = {i % 2 ? "raw" : "bin", "cls", "json"};
        const void *data[3] = {hwc, cls, "{}"};
        size_t sizes[3] = {sizeof hwc - (i == short_one), strlen(cls), 2};
        sdl_shard_writer_add(w, key, 3, exts, data, sizes);
    }
    CHECK(sdl_shard_writer_close(w) == SDL_OK, "%s", sdl_last_error());
}

static sdl_stream_desc raw_desc(const char *shards) {
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = shards;
    d.batch_size = N;
    d.workers = 1;
    d.raw_shape[0] = H;
    d.raw_shape[1] = W;
    d.raw_shape[2] = C;
    return d;
}

/* one epoch, in order (no shuffling): every sample's pixels and label */
static void check_epoch(const sdl_stream_desc *d, const char *what) {
    sdl_stream *s = sdl_stream_new(d);
    sdl_tensor *x, *y;
    bool got = s && sdl_stream_next(s, &x, &y);
    CHECK(got, "%s: %s", what, sdl_last_error());
    if (!got) { sdl_stream_free(s); return; }
    CHECK(x->shape[0] == N && x->shape[1] == C && x->shape[2] == H && x->shape[3] == W, "%s: x shape (%lld, %lld, %lld, %lld)", what,
          (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3]);
    int bad = 0, badlab = 0;
    for (int i = 0; i < N; i++) {
        badlab += sdl_i32(y)[i] != 7 - i;
        for (int c = 0; c < C; c++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) bad += fabsf(sdl_f32(x)[((i * C + c) * H + yy) * W + xx] - px(i, yy, xx, c) / 255.0f) > 1e-6f;
    }
    CHECK(bad == 0 && badlab == 0, "%s: %d pixels and %d labels differ", what, bad, badlab);
    CHECK(!sdl_stream_next(s, &x, &y) && sdl_stream_error(s) == SDL_OK, "%s: one batch per epoch: %s", what, sdl_last_error());
    sdl_stream_free(s);
}

static void test_tar_members(void) {
    write_tar("ok", -1);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("ok"));
    sdl_stream_desc d = raw_desc(pat);
    check_epoch(&d, "tar .bin/.raw");
    /* the same shard as a zip (Python's zipfile) */
    if (access("/usr/bin/python3", X_OK) != 0) { printf("  skipped zip: no /usr/bin/python3\n"); return; }
    char cmd[1500], zpat[600];
    snprintf(zpat, sizeof zpat, "%s.zip", tpath("ok"));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import tarfile, zipfile\n"
             "t = tarfile.open('%s'); z = zipfile.ZipFile('%s', 'w', zipfile.ZIP_DEFLATED)\n"
             "[z.writestr(m.name, t.extractfile(m).read()) for m in t]; z.close()\"", pat, zpat);
    CHECK(system(cmd) == 0, "%s", cmd);
    d.shards = zpat;
    check_epoch(&d, "zip .bin/.raw");
}

static void test_tfrecord_raw(void) {
    const char *path = tpath("raw.tfrecord");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < N; i++) { /* {"image": bytes of the HWC array, "label": int64}, as tf.io.decode_raw reads */
        uint8_t hwc[H * W * C];
        raw_bytes(i, hwc);
        sdl_example *e = sdl_example_new();
        int64_t label = 7 - i;
        sdl_example_add_bytes(e, "image", hwc, sizeof hwc);
        sdl_example_add_int64s(e, "label", &label, 1);
        size_t n;
        uint8_t *rec = sdl_example_serialize(e, &n);
        sdl_tfrecord_write_record(f, rec, n);
        sdl_bytes_free(rec);
        sdl_example_free(e);
    }
    fclose(f);
    sdl_stream_desc d = raw_desc(path);
    check_epoch(&d, "tfrecord raw");
    d.raw_shape[0] = d.raw_shape[1] = d.raw_shape[2] = 0; /* without raw_shape: a TensorProto, which these bytes are not */
    sdl_stream *s = sdl_stream_new(&d);
    CHECK(!s && strstr(sdl_last_error(), "raw.tfrecord: sample 'record 0'"), "tfrecord without raw_shape: %s", sdl_last_error());
    sdl_stream_free(s);
}

static void test_errors(void) {
    write_tar("short", 2);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("short"));
    sdl_stream_desc d = raw_desc(pat);
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    CHECK(s, "%s", sdl_last_error());
    bool got = s && sdl_stream_next(s, &x, &y);
    CHECK(!got && sdl_stream_error(s) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "short-000000.tar") && strstr(sdl_last_error(), "'k02'") &&
              strstr(sdl_last_error(), "29 raw image bytes") && strstr(sdl_last_error(), "needs 30"),
          "short sample: %s", sdl_last_error());
    sdl_stream_free(s);
    /* without raw_shape, .bin and .raw members are not images: the sample has none */
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("ok"));
    d = raw_desc(pat);
    d.raw_shape[0] = d.raw_shape[1] = d.raw_shape[2] = 0;
    s = sdl_stream_new(&d);
    CHECK(!s && strstr(sdl_last_error(), "'k00' has no image") && strstr(sdl_last_error(), "raw_shape"), "no raw_shape: %s", sdl_last_error());
    sdl_stream_free(s);
    /* raw_shape checked: C 1..4, every side set, the pixel cap */
    int bad[4][3] = {{H, W, 5}, {H, 0, C}, {-1, W, C}, {32768, 32768, 1}};
    for (int k = 0; k < 4; k++) {
        d = raw_desc(pat);
        memcpy(d.raw_shape, bad[k], sizeof d.raw_shape);
        s = sdl_stream_new(&d);
        CHECK(!s && sdl_last_result() == SDL_ERR_ARG && strstr(sdl_last_error(), "raw_shape"), "raw_shape %d %d %d: %s", bad[k][0], bad[k][1], bad[k][2],
              sdl_last_error());
        sdl_stream_free(s);
    }
    /* 2-channel samples into a 3-channel stream */
    d = raw_desc(pat);
    d.channels = 3;
    s = sdl_stream_new(&d);
    CHECK(!s && strstr(sdl_last_error(), "has 2 channels, the stream makes 3"), "channels: %s", sdl_last_error());
    sdl_stream_free(s);
}

/* fuzz_stream's finding: a sample that fails half-read (a second label after its image)
   while the shuffle buffer fills; the error names it, and the half-read sample is freed
   (a leak before: SAN=1 tests/run.sh's ASan build reports it) */
static void test_error_mid_sample(void) {
    sdl_shard_writer *w = sdl_shard_writer_new(tpath("twolabels"), 0);
    uint8_t hwc[H * W * C];
    raw_bytes(0, hwc);
    const char *exts[3] = {"bin", "cls", "cls"};
    const void *data[3] = {hwc, "1", "2"};
    size_t sizes[3] = {sizeof hwc, 1, 1};
    sdl_shard_writer_add(w, "a", 2, exts, data, sizes);
    sdl_shard_writer_add(w, "b", 3, exts, data, sizes);
    CHECK(sdl_shard_writer_close(w) == SDL_OK, "%s", sdl_last_error());
    char pat[600];
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("twolabels"));
    sdl_stream_desc d = raw_desc(pat);
    d.shuffle_buffer = 4;
    d.batch_size = 2;
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    CHECK(s, "%s", sdl_last_error());
    bool got = s && sdl_stream_next(s, &x, &y);
    CHECK(!got && sdl_stream_error(s) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "sample 'b' has two labels"), "%s", sdl_last_error());
    sdl_stream_free(s);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_raw_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_tar_members);
    RUN(test_tfrecord_raw);
    RUN(test_errors);
    RUN(test_error_mid_sample);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sdl_test_finish();
}
