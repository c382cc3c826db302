/* test_zip.c - ZIP members (stored, deflated, zip64) from files made by Python's zipfile
   (tests/make_zip.py; skipped without /usr/bin/python3), corrupt and truncated zips, the
   recursive file listing with globs, and the dataset helpers (split, class subset,
   mean/std against a double-precision reference). */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static bool have_zips;

static void make_zips(void) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/make_zip.py %s", tmpdir);
    have_zips = access("/usr/bin/python3", X_OK) == 0 && system(cmd) == 0;
    if (!have_zips) printf("  (no /usr/bin/python3: the zip tests are skipped)\n");
}

static void check_members(const char *path) {
    sdl_zip *z = sdl_zip_open(path);
    CHECK(z, "%s", sdl_last_error());
    if (!z) return;
    CHECK(sdl_zip_count(z) == 4, "%lld members", (long long)sdl_zip_count(z));
    int64_t a = sdl_zip_find(z, "a.txt"), b = sdl_zip_find(z, "dir/b.bin"), e = sdl_zip_find(z, "empty");
    CHECK(a >= 0 && b >= 0 && e >= 0 && sdl_zip_find(z, "nope") == -1, "find");
    CHECK(sdl_zip_size(z, b) == 10000 && sdl_zip_size(z, a) == 10, "sizes");
    size_t n;
    uint8_t *p = sdl_zip_read(z, a, &n);
    CHECK(p && n == 10 && !memcmp(p, "hello zip\n", 10), "a.txt: %s", sdl_last_error());
    sdl_bytes_free(p);
    p = sdl_zip_read(z, b, &n);
    bool same = p && n == 10000;
    for (int i = 0; same && i < 10000; i++) same = p[i] == (uint8_t)((i * 7 + i / 256) & 255);
    CHECK(same, "dir/b.bin (deflated): %s", sdl_last_error());
    sdl_bytes_free(p);
    p = sdl_zip_read(z, e, &n);
    CHECK(p && n == 0, "empty: %s", sdl_last_error());
    sdl_bytes_free(p);
    CHECK(!sdl_zip_read(z, 99, &n), "out of range");
    sdl_zip_close(z);
}

static void test_zip_plain(void) { if (have_zips) check_members(tpath("plain.zip")); }
static void test_zip64(void) {
    if (!have_zips) return;
    size_t n;
    uint8_t *raw = NULL;
    FILE *f = fopen(tpath("zip64.zip"), "rb");
    if (f) { raw = (uint8_t *)malloc(1 << 16); n = fread(raw, 1, 1 << 16, f); fclose(f); }
    bool z64 = false; /* the file really has a zip64 end record */
    for (size_t i = 0; raw && i + 4 <= n; i++) z64 |= !memcmp(raw + i, "PK\x06\x06", 4);
    free(raw);
    CHECK(z64, "zipfile wrote no zip64 end record");
    check_members(tpath("zip64.zip"));
}

static void write_bytes(const char *path, const uint8_t *p, size_t n) {
    remove(path);
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* every member of path: SDL_OK, or the first error's message */
static const char *read_all(const char *path) {
    static char msg[700];
    msg[0] = 0;
    sdl_zip *z = sdl_zip_open(path);
    if (!z) { snprintf(msg, sizeof msg, "%s", sdl_last_error()); return msg; }
    for (int64_t i = 0; i < sdl_zip_count(z); i++) {
        size_t n;
        uint8_t *p = sdl_zip_read(z, i, &n);
        if (!p) { snprintf(msg, sizeof msg, "%s", sdl_last_error()); break; }
        sdl_bytes_free(p);
    }
    sdl_zip_close(z);
    return msg;
}

static void test_zip_corrupt(void) {
    if (!have_zips) return;
    for (int k = 0; k < 2; k++) {
        const char *src = tpath(k ? "zip64.zip" : "plain.zip"), *bad = tpath("bad.zip");
        FILE *f = fopen(src, "rb");
        uint8_t *b = (uint8_t *)malloc(1 << 16);
        size_t n = fread(b, 1, 1 << 16, f);
        fclose(f);
        /* a byte of dir/b.bin's deflate data: an error naming the member */
        size_t at = 0;
        for (size_t i = 0; i + 9 < n; i++)
            if (!memcmp(b + i, "dir/b.bin", 9) && !memcmp(b + i - 30, "PK\x03\x04", 4)) { at = i + 9 + (b[i - 2] | b[i - 1] << 8) + 20; break; }
        CHECK(at, "found dir/b.bin");
        b[at] ^= 0x55;
        write_bytes(bad, b, n);
        const char *m = read_all(bad);
        CHECK(strstr(m, "bad.zip") && strstr(m, "dir/b.bin"), "deflate flip: %s", m);
        b[at] ^= 0x55;
        for (size_t cut = 0; cut < n; cut += 7) { /* every cut: an error, never a crash */
            write_bytes(bad, b, cut);
            CHECK(read_all(bad)[0], "cut at %zu went unnoticed", cut);
        }
        for (size_t i = 0; i < n; i++) { /* every byte flipped: an error or the same members */
            b[i] ^= 0xA5;
            write_bytes(bad, b, n);
            sdl_zip *z = sdl_zip_open(bad);
            for (int64_t j = 0; z && j < sdl_zip_count(z); j++) {
                size_t len;
                sdl_bytes_free(sdl_zip_read(z, j, &len));
            }
            sdl_zip_close(z);
            b[i] ^= 0xA5;
        }
        free(b);
    }
    CHECK(strstr(read_all(tpath("none.zip")), "none.zip"), "missing");
    write_bytes(tpath("text.zip"), (const uint8_t *)"not a zip at all, just text", 27);
    CHECK(strstr(read_all(tpath("text.zip")), "not a zip"), "not a zip: %s", read_all(tpath("text.zip")));
}

static void touch(const char *rel) {
    char p[600];
    snprintf(p, sizeof p, "%s/tree/%s", tmpdir, rel);
    for (char *s = p + strlen(tmpdir) + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0755); *s = '/'; }
    write_bytes(p, (const uint8_t *)"x", 1);
}

static void test_list_files(void) {
    const char *files[] = {"b/img2.JPEG", "a/img1.JPEG", "a/sub/img3.png", "a/notes.txt", "top.JPEG", ".hidden/x.JPEG", "a/.dot.JPEG"};
    for (int i = 0; i < 7; i++) touch(files[i]);
    int n;
    char **l = sdl_list_files(tpath("tree"), "*.JPEG", &n);
    CHECK(l && n == 3 && !strcmp(l[0], "a/img1.JPEG") && !strcmp(l[1], "b/img2.JPEG") && !strcmp(l[2], "top.JPEG") && !l[3], "*.JPEG: %d", n);
    sdl_names_free(l);
    l = sdl_list_files(tpath("tree"), NULL, &n);
    CHECK(l && n == 5, "all: %d", n);
    sdl_names_free(l);
    l = sdl_list_files(tpath("tree"), "a/*", &n); /* a path pattern: '*' crosses '/' */
    CHECK(l && n == 3 && !strcmp(l[2], "a/sub/img3.png"), "a/*: %d", n);
    sdl_names_free(l);
    l = sdl_list_files(tpath("tree"), "*.gif", &n);
    CHECK(l && n == 0 && !l[0], "none match");
    sdl_names_free(l);
    CHECK(!sdl_list_files(tpath("nope"), NULL, &n) && strstr(sdl_last_error(), "nope"), "missing folder: %s", sdl_last_error());
    CHECK(sdl_glob_match("img[0-9].[jJ]*", "img3.JPEG") && !sdl_glob_match("img[!0-9]*", "img3") && sdl_glob_match("a?c", "abc") &&
          sdl_glob_match("*a*b*", "xxaybz") && !sdl_glob_match("*a*b", "xxaybz") && sdl_glob_match("", "") && !sdl_glob_match("", "a") &&
          sdl_glob_match("[]]x", "]x") && sdl_glob_match("[x", "[x"), "glob");
}

static sdl_dataset make_ds(int64_t n) {
    sdl_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n; d.c = 3; d.h = 2; d.w = 3; d.num_classes = 5;
    d.images = (uint8_t *)malloc((size_t)n * 18);
    d.labels = (int32_t *)malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        d.labels[i] = (int32_t)(i % 5);
        for (int k = 0; k < 18; k++) d.images[i * 18 + k] = (uint8_t)((i * 37 + k * k * 11 + (k / 6) * 90) & 255);
    }
    return d;
}

static void test_helpers(void) {
    sdl_dataset d = make_ds(103), tr, va, sub;
    CHECK(sdl_dataset_split(&d, 0.2, 7, &tr, &va) == SDL_OK && va.n == 21 && tr.n == 82, "split %lld %lld", (long long)tr.n, (long long)va.n);
    /* every sample exactly once, each part in the original order (images identify samples) */
    int seen[103] = {0};
    int64_t last = -1;
    bool order = true;
    for (int part = 0; part < 2; part++) {
        const sdl_dataset *p = part ? &va : &tr;
        last = -1;
        for (int64_t i = 0; i < p->n; i++)
            for (int64_t j = 0; j < d.n; j++)
                if (!memcmp(p->images + i * 18, d.images + j * 18, 18) && p->labels[i] == d.labels[j]) { seen[j]++; order &= j > last; last = j; break; }
    }
    bool once = true;
    for (int j = 0; j < 103; j++) once &= seen[j] == 1;
    CHECK(once && order, "split covers each sample once, in order");
    sdl_dataset tr2, va2;
    sdl_dataset_split(&d, 0.2, 8, &tr2, &va2);
    CHECK(memcmp(va.images, va2.images, (size_t)va.n * 18) != 0, "another seed, another split");
    sdl_dataset_free(&tr2); sdl_dataset_free(&va2);
    sdl_dataset_free(&tr); sdl_dataset_free(&va);
    CHECK(sdl_dataset_split(&d, 1.5, 7, &tr, &va) == SDL_ERR_ARG, "bad fraction");
    int cls[2] = {3, 1};
    CHECK(sdl_dataset_select_classes(&d, cls, 2, &sub) == SDL_OK && sub.n == 41 && sub.num_classes == 2, "subset %lld", (long long)sub.n);
    bool relabel = true;
    for (int64_t i = 0; i < sub.n; i++) { /* find the source sample by its bytes */
        for (int64_t s = 0; s < d.n; s++)
            if (!memcmp(sub.images + i * 18, d.images + s * 18, 18)) { relabel &= sub.labels[i] == (d.labels[s] == 3 ? 0 : 1); break; }
    }
    CHECK(relabel, "relabelled by position in the list");
    sdl_dataset_free(&sub);
    int dup[2] = {1, 1};
    CHECK(sdl_dataset_select_classes(&d, dup, 2, &sub) == SDL_ERR_ARG, "duplicate class");
    float mean[3], sd[3];
    CHECK(sdl_dataset_mean_std(&d, mean, sd) == SDL_OK, "mean_std");
    for (int c = 0; c < 3; c++) { /* two-pass double reference */
        double m = 0, v = 0, cnt = 103.0 * 6;
        for (int64_t i = 0; i < d.n; i++) for (int k = 0; k < 6; k++) m += d.images[i * 18 + c * 6 + k] / 255.0;
        m /= cnt;
        for (int64_t i = 0; i < d.n; i++) for (int k = 0; k < 6; k++) { double x = d.images[i * 18 + c * 6 + k] / 255.0 - m; v += x * x; }
        v = sqrt(v / cnt);
        CHECK(fabs(mean[c] - m) < 1e-6 && fabs(sd[c] - v) < 1e-6, "channel %d: %g %g vs %g %g", c, mean[c], sd[c], m, v);
    }
    sdl_dataset_free(&d);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_zip_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    make_zips();
    RUN(test_zip_plain);
    RUN(test_zip64);
    RUN(test_zip_corrupt);
    RUN(test_list_files);
    RUN(test_helpers);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sdl_test_finish();
}
