/* test_stream.c - the streaming pipeline (sdl_stream): every sample of an epoch seen once
   across 2 simulated ranks x 2 workers; the equal-steps policies; the same batches whatever
   the thread timing, and with no threads (prefetch -1); a mid-epoch resume gives the
   remaining batches; TFRecord shards (PNG and TensorProto images); augmentations against
   hand-computed pixels; bad samples named.
   Shards are written by the test: 8x8 grey PNGs whose first two pixels hold the sample id. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* sample id's pixels: id in bytes 0 and 1, the rest a pattern */
static void id_image(int id, uint8_t *px) {
    for (int k = 0; k < 64; k++) px[k] = (uint8_t)(k * 3 + id);
    px[0] = (uint8_t)(id & 255);
    px[1] = (uint8_t)(id >> 8);
}

/* shards prefix-000000.tar ... with sizes[i] samples each; ids run on across shards */
static int write_shards(const char *prefix, const int *sizes, int n) {
    int id = 0;
    for (int s = 0; s < n; s++) {
        char pre[600];
        snprintf(pre, sizeof pre, "%s-%d", tpath(prefix), s); /* one writer per shard: prefix-s-000000.tar */
        sdl_shard_writer *w = sdl_shard_writer_new(pre, 0);
        for (int i = 0; i < sizes[s]; i++, id++) {
            uint8_t px[64];
            id_image(id, px);
            char key[32];
            snprintf(key, sizeof key, "s%03d", id);
            sdl_shard_writer_add_image(w, key, px, 1, 8, 8, id % 10);
        }
        sdl_shard_writer_close(w);
        char from[700], to[700];
        snprintf(from, sizeof from, "%s-000000.tar", pre);
        snprintf(to, sizeof to, "%s-%06d.tar", tpath(prefix), s);
        rename(from, to);
    }
    return id;
}

static int batch_id(const sdl_tensor *x, int64_t i) { /* the id from an unnormalised batch */
    const float *p = sdl_f32(x) + i * 64;
    return (int)lroundf(p[0] * 255.0f) | (int)lroundf(p[1] * 255.0f) << 8;
}

static sdl_stream_desc base_desc(const char *pattern) {
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = pattern;
    d.batch_size = 8;
    d.workers = 2;
    d.shuffle_buffer = 5;
    d.shuffle_shards = true;
    d.seed = 42;
    d.channels = 1;
    return d;
}

/* ids of one epoch of one rank; returns the count, nb = batches */
static int epoch_ids(sdl_stream_desc d, int rank, int world, int *ids, int cap, int64_t *nb) {
    d.rank = rank;
    d.world_size = world;
    sdl_stream *s = sdl_stream_new(&d);
    CHECK(s, "%s", sdl_last_error());
    if (!s) return 0;
    sdl_tensor *x, *y;
    int n = 0;
    *nb = 0;
    while (sdl_stream_next(s, &x, &y)) {
        (*nb)++;
        for (int64_t i = 0; i < x->shape[0]; i++) {
            int id = batch_id(x, i);
            CHECK(sdl_i32(y)[i] == id % 10, "label of %d", id);
            if (n < cap) ids[n++] = id;
        }
    }
    CHECK(sdl_stream_error(s) == SDL_OK, "%s", sdl_last_error());
    CHECK(*nb == sdl_stream_num_batches(s), "batches %lld vs %lld", (long long)*nb, (long long)sdl_stream_num_batches(s));
    sdl_stream_free(s);
    return n;
}

static void test_every_sample_once(void) {
    int sizes[10];
    for (int i = 0; i < 10; i++) sizes[i] = 12;
    int total = write_shards("eq", sizes, 10);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000009}.tar", tpath("eq"));
    sdl_stream_desc d = base_desc(pat);
    int seen[200] = {0}, ids[200];
    int64_t nb[2];
    for (int r = 0; r < 2; r++) {
        int n = epoch_ids(d, r, 2, ids, 200, &nb[r]);
        CHECK(n == total / 2, "rank %d: %d samples", r, n);
        for (int i = 0; i < n; i++) seen[ids[i]]++;
    }
    bool once = true;
    for (int i = 0; i < total; i++) once &= seen[i] == 1;
    CHECK(once && nb[0] == nb[1] && nb[0] == 8, "each of %d samples once (batches %lld, %lld)", total, (long long)nb[0], (long long)nb[1]);
}

static void test_equal_policies(void) {
    int sizes[5] = {9, 3, 14, 6, 11}, seen[100], ids[200];
    int total = write_shards("uneq", sizes, 5);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000004}.tar", tpath("uneq"));
    for (int pol = 0; pol < 2; pol++) {
        sdl_stream_desc d = base_desc(pat);
        d.shuffle_shards = false; /* rank 0: shards 0, 2, 4 (34 samples); rank 1: 1, 3 (9) */
        d.equal = pol ? SDL_STREAM_DROP : SDL_STREAM_PAD;
        memset(seen, 0, sizeof seen);
        int64_t nb[2];
        int n[2];
        for (int r = 0; r < 2; r++) {
            n[r] = epoch_ids(d, r, 2, ids, 200, &nb[r]);
            for (int i = 0; i < n[r]; i++) seen[ids[i]]++;
        }
        CHECK(nb[0] == nb[1], "%s: equal steps %lld %lld", pol ? "drop" : "pad", (long long)nb[0], (long long)nb[1]);
        if (pol == 0) { /* pad: 34 each; rank 1 repeats its 9 samples */
            bool all = true;
            for (int i = 0; i < total; i++) all &= seen[i] >= 1;
            CHECK(n[0] == 34 && n[1] == 34 && all, "pad: %d %d, every sample at least once", n[0], n[1]);
        } else { /* drop: 9 each, none twice */
            bool twice = false;
            for (int i = 0; i < total; i++) twice |= seen[i] > 1;
            CHECK(n[0] == 9 && n[1] == 9 && !twice, "drop: %d %d", n[0], n[1]);
        }
    }
}

/* a checksum of every batch of `epochs` epochs (x bits and y) */
static void run_sums(sdl_stream_desc d, int epochs, bool jitter, uint64_t *sums, int cap, int *n) {
    sdl_stream *s = sdl_stream_new(&d);
    CHECK(s, "%s", sdl_last_error());
    *n = 0;
    sdl_tensor *x, *y;
    unsigned seed = 7;
    for (int e = 0; s && e < epochs; e++)
        while (sdl_stream_next(s, &x, &y)) {
            uint64_t h = 1469598103934665603ull;
            const uint8_t *b = (const uint8_t *)x->data;
            for (int64_t i = 0; i < x->numel * 4; i++) h = (h ^ b[i]) * 1099511628211ull;
            for (int64_t i = 0; i < y->numel; i++) h = (h ^ (uint64_t)sdl_i32(y)[i]) * 1099511628211ull;
            if (*n < cap) sums[(*n)++] = h;
            if (jitter) {
                seed = seed * 1103515245u + 12345u;
                struct timespec ts = {0, (long)(seed % 3000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
    sdl_stream_free(s);
}

static sdl_stream_desc aug_desc(const char *pat) {
    sdl_stream_desc d = base_desc(pat);
    d.aug.height = d.aug.width = 6;
    d.aug.random_resized_crop = true;
    d.aug.hflip = true;
    d.aug.pad = 1;
    d.aug.mean[0] = 0.5f;
    d.aug.std[0] = 0.25f;
    return d;
}

static void test_thread_timing(void) {
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000004}.tar", tpath("uneq"));
    sdl_stream_desc d = aug_desc(pat);
    uint64_t a[64], b[64], c[64];
    int na, nb, nc;
    d.prefetch = 1;
    run_sums(d, 2, false, a, 64, &na);
    d.prefetch = 5;
    run_sums(d, 2, true, b, 64, &nb);
    d.prefetch = 2;
    d.workers = 2;
    run_sums(d, 2, true, c, 64, &nc);
    CHECK(na == 12 && na == nb && na == nc && !memcmp(a, b, sizeof(uint64_t) * (size_t)na) && !memcmp(a, c, sizeof(uint64_t) * (size_t)na),
          "same batches: %d %d %d", na, nb, nc);
    d.prefetch = -1; /* no threads: next() decodes on this thread */
    run_sums(d, 2, false, b, 64, &nb);
    CHECK(nb == na && !memcmp(a, b, sizeof(uint64_t) * (size_t)na), "prefetch -1 gives the same batches: %d of %d", nb, na);
    d.prefetch = -2;
    CHECK(!sdl_stream_new(&d) && strstr(sdl_last_error(), "prefetch -2"), "prefetch -2 is an error: %s", sdl_last_error());
    CHECK(memcmp(a, a + 6, 6 * sizeof(uint64_t)) != 0, "epochs differ");
}

static void test_resume(void) {
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000004}.tar", tpath("uneq"));
    sdl_stream_desc d = aug_desc(pat);
    uint64_t full[64];
    int n;
    run_sums(d, 2, false, full, 64, &n); /* epochs 0 and 1, 6 batches each */
    sdl_stream *s = sdl_stream_new(&d);
    CHECK(s && sdl_stream_set_position(s, 1, 2) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_stream_epoch(s) == 1 && sdl_stream_batches_done(s) == 2, "position");
    sdl_tensor *x, *y;
    int k = 0;
    bool same = true;
    while (s && sdl_stream_next(s, &x, &y)) {
        uint64_t h = 1469598103934665603ull;
        const uint8_t *b = (const uint8_t *)x->data;
        for (int64_t i = 0; i < x->numel * 4; i++) h = (h ^ b[i]) * 1099511628211ull;
        for (int64_t i = 0; i < y->numel; i++) h = (h ^ (uint64_t)sdl_i32(y)[i]) * 1099511628211ull;
        same &= 6 + 2 + k < n && h == full[6 + 2 + k];
        k++;
    }
    CHECK(same && k == 4, "resumed batches match (%d)", k);
    CHECK(sdl_stream_set_position(s, 0, 99) != SDL_OK, "past the end");
    sdl_stream_free(s);
}

static void test_tfrecord_shards(void) {
    int id = 0;
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "tf-%06d.tfrecord", s);
        FILE *f = fopen(tpath(name), "wb");
        for (int i = 0; i < 7; i++, id++) {
            uint8_t px[64];
            id_image(id, px);
            sdl_example *e = sdl_example_new();
            size_t n;
            uint8_t *img;
            if (s == 1) { /* TensorProto u8 (8, 8, 1), as tf.io.serialize_tensor */
                sdl_tensor *t = sdl_tensor_new(sdl_shape3(8, 8, 1), SDL_U8);
                memcpy(t->data, px, 64);
                img = sdl_tensorproto_serialize(t, &n);
                sdl_tensor_free(t);
            } else {
                img = sdl_test_png(px, 8, 8, 1, &n);
            }
            int64_t label = id % 10;
            sdl_example_add_bytes(e, "image", img, n);
            sdl_example_add_int64s(e, "label", &label, 1);
            uint8_t *rec = sdl_example_serialize(e, &n);
            sdl_tfrecord_write_record(f, rec, n);
            sdl_bytes_free(rec);
            sdl_bytes_free(img);
            sdl_example_free(e);
        }
        fclose(f);
    }
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000002}.tfrecord", tpath("tf"));
    sdl_stream_desc d = base_desc(pat);
    d.channels = 0; /* from the first sample: 1 */
    int ids[64], seen[21] = {0};
    int64_t nb;
    int n = epoch_ids(d, 0, 1, ids, 64, &nb);
    for (int i = 0; i < n; i++) seen[ids[i] < 21 ? ids[i] : 0]++;
    bool once = n == 21;
    for (int i = 0; i < 21; i++) once &= seen[i] == 1;
    CHECK(once, "tfrecord shards: %d samples", n);
}

static void test_zip_shards(void) { /* the "eq" tar shards repacked by Python's zipfile */
    if (access("/usr/bin/python3", X_OK) != 0) { printf("  skipped: no /usr/bin/python3\n"); return; }
    char cmd[1500];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import tarfile, zipfile, sys\n"
             "for i in range(2):\n"
             "  t = tarfile.open('%s-%%06d.tar' %% i)\n"
             "  z = zipfile.ZipFile('%s-%%06d.zip' %% i, 'w', zipfile.ZIP_DEFLATED)\n"
             "  [z.writestr(m.name, t.extractfile(m).read()) for m in t]\n"
             "  z.close()\"", tpath("eq"), tpath("zz"));
    CHECK(system(cmd) == 0, "%s", cmd);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-{000000..000001}.zip", tpath("zz"));
    sdl_stream_desc d = base_desc(pat);
    int ids[64], seen[24] = {0};
    int64_t nb;
    int n = epoch_ids(d, 0, 1, ids, 64, &nb);
    bool once = n == 24;
    for (int i = 0; i < n; i++) seen[ids[i] < 24 ? ids[i] : 0]++;
    for (int i = 0; i < 24; i++) once &= seen[i] == 1;
    CHECK(once, "zip shards: %d samples", n);
}

static void test_augment_pixels(void) {
    /* one 4x4 grey image, values 16 * (4 y + x); batch of 1, one worker */
    uint8_t px[16];
    for (int i = 0; i < 16; i++) px[i] = (uint8_t)(16 * i);
    sdl_shard_writer *w = sdl_shard_writer_new(tpath("aug"), 0);
    sdl_shard_writer_add_image(w, "a", px, 1, 4, 4, 3);
    sdl_shard_writer_close(w);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("aug"));
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = pat;
    d.batch_size = 1;
    d.workers = 1;
    d.channels = 3; /* grey to 3 channels */
    d.aug.height = d.aug.width = 2; /* half size: bilinear at half-pixel centres = 2x2 means */
    d.aug.mean[1] = 0.5f;
    d.aug.std[1] = 2.0f;
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    CHECK(s && sdl_stream_next(s, &x, &y), "%s", sdl_last_error());
    if (s && x) {
        const float *o = sdl_f32(x);
        float want[4] = {(0 + 16 + 64 + 80) / 4.0f, (32 + 48 + 96 + 112) / 4.0f, (128 + 144 + 192 + 208) / 4.0f, (160 + 176 + 224 + 240) / 4.0f};
        bool ok = x->shape[1] == 3 && sdl_i32(y)[0] == 3;
        for (int i = 0; i < 4; i++) {
            ok &= fabsf(o[i] - want[i] / 255.0f) < 1e-6f && fabsf(o[4 + i] - (want[i] / 255.0f - 0.5f) / 2.0f) < 1e-6f && o[8 + i] == o[i];
        }
        CHECK(ok, "downscale by 2: %g %g %g %g", o[0] * 255, o[1] * 255, o[2] * 255, o[3] * 255);
    }
    sdl_stream_free(s);
    /* center crop 2x2 with hflip forced over seeds: each output is the middle, flipped or not */
    d.channels = 1;
    d.aug.center_crop = true;
    d.aug.hflip = true;
    int flips = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        d.seed = seed;
        s = sdl_stream_new(&d);
        if (!s || !sdl_stream_next(s, &x, &y)) { CHECK(0, "%s", sdl_last_error()); sdl_stream_free(s); break; }
        const float *o = sdl_f32(x);
        bool plain = lroundf(o[0] * 255) == 80 && lroundf(o[1] * 255) == 96 && lroundf(o[2] * 255) == 144 && lroundf(o[3] * 255) == 160;
        bool flip = lroundf(o[0] * 255) == 96 && lroundf(o[1] * 255) == 80 && lroundf(o[2] * 255) == 160 && lroundf(o[3] * 255) == 144;
        CHECK(plain || flip, "center crop: %g %g", o[0] * 255, o[1] * 255);
        flips += flip;
        sdl_stream_free(s);
    }
    CHECK(flips > 0 && flips < 16, "flips %d of 16", flips);
}

static void test_bad_sample(void) {
    sdl_shard_writer *w = sdl_shard_writer_new(tpath("bad"), 0);
    uint8_t px[64];
    id_image(1, px);
    sdl_shard_writer_add_image(w, "good", px, 1, 8, 8, 1);
    const char *ext[1] = {"cls"};
    const void *data[1] = {"4"};
    size_t n[1] = {1};
    sdl_shard_writer_add(w, "noimage", 1, ext, data, n); /* a label and no image */
    sdl_shard_writer_close(w);
    w = sdl_shard_writer_new(tpath("bad2"), 0);
    sdl_shard_writer_add_image(w, "good", px, 1, 8, 8, 1);
    const char *pext[1] = {"png"};
    size_t pn[1] = {0};
    uint8_t *png = sdl_test_png(px, 8, 8, 1, &pn[0]);
    const void *pdata[1] = {png};
    sdl_shard_writer_add(w, "nolabel", 1, pext, pdata, pn); /* an image and no label */
    sdl_shard_writer_close(w);
    SDL_DEALLOC(png);
    char pat[600];
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("bad"));
    sdl_stream_desc d = base_desc(pat);
    sdl_stream *s = sdl_stream_new(&d);
    sdl_tensor *x, *y;
    CHECK(s, "%s", sdl_last_error());
    bool got = s && sdl_stream_next(s, &x, &y);
    CHECK(!got && sdl_stream_error(s) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "noimage") && strstr(sdl_last_error(), "bad-000000.tar") &&
          strstr(sdl_last_error(), "no image"), "%s", sdl_last_error());
    sdl_stream_free(s);
    snprintf(pat, sizeof pat, "%s-000000.tar", tpath("bad2"));
    d.shards = pat;
    s = sdl_stream_new(&d);
    got = s && sdl_stream_next(s, &x, &y);
    CHECK(!got && strstr(sdl_last_error(), "nolabel") && strstr(sdl_last_error(), "bad2-000000.tar") && strstr(sdl_last_error(), "no label"), "%s",
          sdl_last_error());
    sdl_stream_free(s);
    d.shards = tpath("none-{000..003}.tar");
    CHECK(!sdl_stream_new(&d) && strstr(sdl_last_error(), "none-000.tar"), "missing shard: %s", sdl_last_error());
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_stream_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_every_sample_once);
    RUN(test_equal_policies);
    RUN(test_thread_timing);
    RUN(test_resume);
    RUN(test_tfrecord_shards);
    RUN(test_zip_shards);
    RUN(test_augment_pixels);
    RUN(test_bad_sample);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sdl_test_finish();
}
