/* test_tfrecord.c - TFRecord framing (CRC-32C), tf.train.Example and TensorProto: files
   written by sdl read back, and match tests/tfrecord_ref.py, a reader and writer written from
   the format descriptions in Python (skipped without /usr/bin/python3); corrupt and
   truncated files give errors naming the file and the record. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdint.h>
#include <unistd.h>

static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* the records tfrecord_ref.py's expected(i) describes (keep the two in step) */
#define NREC 6
static float f32(double x) { return (float)x; }

static sdl_example *expected(int i) {
    sdl_example *e = sdl_example_new();
    if (i == NREC - 1) return e; /* an empty Example */
    int64_t label[3] = {i, -3 * i, ((int64_t)1 << 40) + i};
    uint8_t image[32];
    for (int k = 0; k < 10 + i; k++) image[k] = (uint8_t)((i * 31 + k * 7) & 255);
    char key[16];
    snprintf(key, sizeof key, "key-%d", i);
    float score[3] = {f32(i * 0.5), -1.25f, f32(i * 0.125)};
    sdl_tensor *t = sdl_tensor_new(sdl_shape2(2, i + 1), SDL_F32);
    for (int k = 0; k < 2 * (i + 1); k++) sdl_f32(t)[k] = f32(k * 0.25 - i);
    size_t tn;
    uint8_t *tp = sdl_tensorproto_serialize(t, &tn);
    sdl_example_add_int64s(e, "label", label, 3);
    sdl_example_add_bytes(e, "image", image, (size_t)(10 + i));
    sdl_example_add_bytes(e, "image", key, strlen(key));
    sdl_example_add_floats(e, "score", score, 3);
    sdl_example_add_bytes(e, "tensor", tp, tn);
    sdl_bytes_free(tp);
    sdl_tensor_free(t);
    return e;
}

/* does the parsed example hold record i (the tensor compared by value, so either encoding) */
static bool matches(const sdl_example *got, int i) {
    sdl_example *want = expected(i);
    bool ok = sdl_example_num_features(got) == sdl_example_num_features(want);
    for (int f = 0; ok && f < sdl_example_num_features(want); f++) {
        const char *name = sdl_example_feature_name(want, f);
        int64_t nw, ng;
        sdl_feature_kind kw = sdl_example_kind(want, name, &nw), kg = sdl_example_kind(got, name, &ng);
        ok = kw == kg && nw == ng;
        for (int64_t k = 0; ok && k < nw; k++) {
            if (kw == SDL_FEATURE_FLOAT) ok = sdl_example_floats(got, name, &ng)[k] == sdl_example_floats(want, name, &nw)[k];
            if (kw == SDL_FEATURE_INT64) ok = sdl_example_int64s(got, name, &ng)[k] == sdl_example_int64s(want, name, &nw)[k];
            if (kw != SDL_FEATURE_BYTES) continue;
            size_t a, b;
            const uint8_t *pa = sdl_example_bytes(got, name, k, &a), *pb = sdl_example_bytes(want, name, k, &b);
            if (strcmp(name, "tensor")) { ok = a == b && !memcmp(pa, pb, a); continue; }
            sdl_tensor *ta = sdl_tensorproto_parse(pa, a, "got"), *tb = sdl_tensorproto_parse(pb, b, "want");
            ok = ta && tb && ta->ndim == tb->ndim && ta->numel == tb->numel && ta->dtype == SDL_F32 &&
                 !memcmp(ta->shape, tb->shape, sizeof ta->shape) && !memcmp(ta->data, tb->data, (size_t)ta->numel * 4);
            sdl_tensor_free(ta);
            sdl_tensor_free(tb);
        }
    }
    sdl_example_free(want);
    return ok;
}

static void write_file(const char *path) {
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < NREC; i++) {
        sdl_example *e = expected(i);
        size_t n;
        uint8_t *b = sdl_example_serialize(e, &n);
        CHECK(b && sdl_tfrecord_write_record(f, b, n) == SDL_OK, "record %d: %s", i, sdl_last_error());
        sdl_bytes_free(b);
        sdl_example_free(e);
    }
    fclose(f);
}

/* reads path and checks every record against expected(); returns the number that match */
static int read_file(const char *path) {
    sdl_tfrecord_reader *r = sdl_tfrecord_open(path);
    CHECK(r, "%s", sdl_last_error());
    const uint8_t *p;
    size_t n;
    int good = 0;
    while (r && sdl_tfrecord_next(r, &p, &n)) {
        int i = (int)sdl_tfrecord_count(r) - 1;
        sdl_example *e = sdl_example_parse(p, n, path);
        CHECK(e && matches(e, i), "%s record %d: %s", path, i, e ? "differs" : sdl_last_error());
        good += e && matches(e, i);
        sdl_example_free(e);
    }
    CHECK(sdl_tfrecord_close(r) == SDL_OK, "%s", sdl_last_error());
    return good;
}

static void test_crc32c(void) {
    /* the check value of CRC-32C (RFC 3720 B.4 / the CRC catalogue): "123456789" */
    CHECK(sdl_crc32c(0, "123456789", 9) == 0xE3069283u, "%08x", sdl_crc32c(0, "123456789", 9));
    uint8_t zeros[32] = {0}; /* RFC 3720 B.4: 32 bytes of zeros */
    CHECK(sdl_crc32c(0, zeros, 32) == 0x8A9136AAu, "%08x", sdl_crc32c(0, zeros, 32));
    CHECK(sdl_crc32c(sdl_crc32c(0, "12345", 5), "6789", 4) == 0xE3069283u, "incremental");
}

static void test_roundtrip(void) {
    const char *path = tpath("sdl.tfrecord");
    write_file(path);
    CHECK(read_file(path) == NREC, "read back");
}

static bool have_python(void) { return access("/usr/bin/python3", X_OK) == 0 && access("tests/tfrecord_ref.py", R_OK) == 0; }

static void test_python_reads_sdl(void) {
    if (!have_python()) { printf("  skipped: no /usr/bin/python3 or tests/tfrecord_ref.py\n"); return; }
    const char *path = tpath("sdl.tfrecord");
    write_file(path);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/tfrecord_ref.py check %s", path);
    CHECK(system(cmd) == 0, "%s", cmd);
}

static void test_sdl_reads_python(void) {
    if (!have_python()) { printf("  skipped: no /usr/bin/python3 or tests/tfrecord_ref.py\n"); return; }
    const char *path = tpath("py.tfrecord");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/tfrecord_ref.py write %s", path);
    CHECK(system(cmd) == 0, "%s", cmd);
    CHECK(read_file(path) == NREC, "python's file");
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = (uint8_t *)malloc(*n);
    *n = fread(b, 1, *n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n) {
    remove(path);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* reads every record; returns the first error's text (or "" for a clean end) */
static const char *read_all(const char *path) {
    static char msg[600];
    sdl_tfrecord_reader *r = sdl_tfrecord_open(path);
    const uint8_t *p;
    size_t n;
    while (r && sdl_tfrecord_next(r, &p, &n)) {}
    sdl_result e = r ? sdl_tfrecord_close(r) : sdl_last_result();
    snprintf(msg, sizeof msg, "%s", e == SDL_OK ? "" : sdl_last_error());
    return msg;
}

static void test_corrupt(void) {
    const char *path = tpath("sdl.tfrecord"), *bad = tpath("bad.tfrecord");
    write_file(path);
    size_t n;
    uint8_t *b = slurp(path, &n);
    /* offset of record 2: walk the lengths */
    size_t off2 = 0;
    for (int i = 0; i < 2; i++) off2 += 16 + (size_t)b[off2] + ((size_t)b[off2 + 1] << 8);
    b[off2 + 12 + 3] ^= 0x10; /* a data byte of record 2 */
    spit(bad, b, n);
    const char *m = read_all(bad);
    CHECK(strstr(m, bad) && strstr(m, "record 2") && strstr(m, "CRC"), "data flip: %s", m);
    b[off2 + 12 + 3] ^= 0x10;
    b[off2] ^= 1; /* its length */
    spit(bad, b, n);
    m = read_all(bad);
    CHECK(strstr(m, "record 2") && strstr(m, "length") && strstr(m, "CRC"), "length flip: %s", m);
    b[off2] ^= 1;
    spit(bad, b, off2 + 5); /* cut inside the header of record 2 */
    m = read_all(bad);
    CHECK(strstr(m, "record 2") && strstr(m, "truncated"), "cut header: %s", m);
    spit(bad, b, off2 + 20); /* cut inside its data */
    m = read_all(bad);
    CHECK(strstr(m, bad) && strstr(m, "record 2") && strstr(m, "truncated"), "cut data: %s", m);
    spit(bad, b, n - 2); /* the last record's CRC cut */
    m = read_all(bad);
    CHECK(strstr(m, "record 5") && strstr(m, "truncated"), "cut crc: %s", m);
    /* every single-bit flip and every cut of a short file: an error or the right records,
       never a crash (ASan) */
    size_t small = off2; /* records 0 and 1 */
    for (size_t k = 0; k < small * 8; k++) {
        b[k / 8] ^= (uint8_t)(1u << (k % 8));
        spit(bad, b, small);
        CHECK(read_all(bad)[0], "bit %zu flipped went unnoticed", k);
        b[k / 8] ^= (uint8_t)(1u << (k % 8));
    }
    size_t off1 = 16 + (size_t)b[0] + ((size_t)b[1] << 8);
    for (size_t k = 1; k < small; k++) {
        if (k == off1) continue; /* a whole first record: a valid file */
        spit(bad, b, k);
        CHECK(read_all(bad)[0], "cut at %zu went unnoticed", k);
    }
    free(b);
    CHECK(strstr(read_all(tpath("missing.tfrecord")), "missing.tfrecord"), "missing file");
}

static void test_example_errors(void) {
    sdl_example *e = sdl_example_new();
    float v = 1.0f;
    CHECK(sdl_example_add_floats(e, "x", &v, 1) == SDL_OK, "add");
    CHECK(sdl_example_add_bytes(e, "x", "a", 1) == SDL_ERR_ARG && strstr(sdl_last_error(), "'x'"), "kind clash: %s", sdl_last_error());
    CHECK(!sdl_example_int64s(e, "x", NULL) && strstr(sdl_last_error(), "float"), "wrong kind: %s", sdl_last_error());
    CHECK(!sdl_example_floats(e, "y", NULL) && strstr(sdl_last_error(), "no feature 'y'") && strstr(sdl_last_error(), "x (float)"),
          "missing: %s", sdl_last_error());
    size_t n;
    uint8_t *b = sdl_example_serialize(e, &n);
    /* every cut of the message is an error or a smaller valid message, never a crash */
    for (size_t k = 0; k < n; k++) sdl_example_free(sdl_example_parse(b, k, "cut"));
    b[1] = 0x7F; /* a length past the end */
    CHECK(!sdl_example_parse(b, n, "rec 7") && strstr(sdl_last_error(), "rec 7"), "bad length: %s", sdl_last_error());
    sdl_bytes_free(b);
    sdl_example_free(e);
}

static void test_tensorproto(void) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(4, 3, 2), SDL_U8);
    for (int64_t i = 0; i < t->numel; i++) sdl_u8(t)[i] = (uint8_t)(i * 11);
    size_t n;
    uint8_t *b = sdl_tensorproto_serialize(t, &n);
    sdl_tensor *u = sdl_tensorproto_parse(b, n, "u8");
    CHECK(u && u->dtype == SDL_U8 && u->ndim == 3 && u->shape[0] == 4 && u->shape[2] == 2 && !memcmp(u->data, t->data, 24), "u8 round trip");
    /* hand-written: DT_INT64 (9), shape (3), int64_val 5, -7, 2^33 (out of int32 range) */
    const uint8_t i64[] = {0x08, 0x09, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03, 0x50, 0x05, 0x50, 0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                           0x50, 0x80, 0x80, 0x80, 0x80, 0x20};
    CHECK(!sdl_tensorproto_parse(i64, sizeof i64, "i64") && strstr(sdl_last_error(), "int32"), "range: %s", sdl_last_error());
    sdl_tensor *w = sdl_tensorproto_parse(i64, sizeof i64 - 6, "i64"); /* without 2^33: 2 values for 3 elements */
    CHECK(!w && strstr(sdl_last_error(), "2 values for 3"), "count: %s", sdl_last_error());
    const uint8_t fill[] = {0x08, 0x03, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03, 0x38, 0x7B}; /* DT_INT32 (3), shape (3), int_val 123 */
    w = sdl_tensorproto_parse(fill, sizeof fill, "fill");
    CHECK(w && w->dtype == SDL_I32 && w->numel == 3 && sdl_i32(w)[2] == 123, "one value fills: %s", sdl_last_error());
    const uint8_t str[] = {0x08, 0x07}; /* DT_STRING */
    CHECK(!sdl_tensorproto_parse(str, sizeof str, "s") && strstr(sdl_last_error(), "dtype 7"), "string: %s", sdl_last_error());
    for (size_t k = 0; k < n; k++) sdl_tensor_free(sdl_tensorproto_parse(b, k, "cut"));
    sdl_tensor_free(w);
    sdl_bytes_free(b);
    sdl_tensor_free(t);
    sdl_tensor_free(u);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_tfr_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_crc32c);
    RUN(test_roundtrip);
    RUN(test_python_reads_sdl);
    RUN(test_sdl_reads_python);
    RUN(test_corrupt);
    RUN(test_example_errors);
    RUN(test_tensorproto);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sdl_test_finish();
}
