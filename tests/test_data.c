/* test_data.c - the dataset readers: IDX (plain and .gz), and every reader given truncated
   and bit-flipped files (run under ASan by SAN=1). Files are made by the test itself in a
   fresh temporary folder; gzip files by the system gzip, so the format is the real one. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdint.h>
#include <unistd.h>

static char tmpdir[64];

/* path inside the temporary folder (a few rotating buffers) */
static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    remove(path); /* a fresh file: ext4 flushes a file truncated and rewritten in place */
    FILE *f = fopen(path, "wb");
    if (!f) { printf("  cannot write %s\n", path); return; }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long e = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = (uint8_t *)malloc((size_t)e + 1);
    *n = fread(p, 1, (size_t)e, f);
    fclose(f);
    return p;
}

static int run_cmd(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

/* a tiny deterministic generator for test content */
static uint64_t trng = 88172645463325252ull;
static uint32_t tr(void) {
    trng ^= trng << 13; trng ^= trng >> 7; trng ^= trng << 17;
    return (uint32_t)(trng >> 11);
}

static void put_be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* a bitwise CRC-32, independent of the library's table */
static uint32_t ref_crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* ---- IDX files ---- */
typedef struct { uint8_t *img; size_t nimg; uint8_t *lab; size_t nlab; int n, h, w; } idx_pair;

static idx_pair make_idx(int n, int h, int w, int classes) {
    idx_pair p;
    p.n = n; p.h = h; p.w = w;
    p.nimg = 16 + (size_t)n * h * w;
    p.nlab = 8 + (size_t)n;
    p.img = (uint8_t *)malloc(p.nimg);
    p.lab = (uint8_t *)malloc(p.nlab);
    put_be32(p.img, 0x803); put_be32(p.img + 4, (uint32_t)n); put_be32(p.img + 8, (uint32_t)h); put_be32(p.img + 12, (uint32_t)w);
    for (size_t i = 16; i < p.nimg; i++) p.img[i] = (uint8_t)tr();
    put_be32(p.lab, 0x801); put_be32(p.lab + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) p.lab[8 + i] = (uint8_t)(tr() % (uint32_t)classes);
    return p;
}
static void free_idx(idx_pair *p) { free(p->img); free(p->lab); }

/* the dataset holds exactly what the IDX bytes say */
static int idx_matches(const sdl_dataset *d, const uint8_t *img, const uint8_t *lab, int n, int h, int w) {
    if (d->n != n || d->c != 1 || d->h != h || d->w != w || !d->images || !d->labels) return 0;
    if (memcmp(d->images, img + 16, (size_t)n * h * w)) return 0;
    int maxl = 0;
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != lab[8 + i]) return 0;
        maxl = lab[8 + i] > maxl ? lab[8 + i] : maxl;
    }
    return d->num_classes == maxl + 1;
}

static void test_crc32(void) {
    const char *s = "123456789";
    CHECK(sdl_test_crc32(0, (const uint8_t *)s, 9) == 0xCBF43926u, "CRC-32 check value, got %08x", sdl_test_crc32(0, (const uint8_t *)s, 9));
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)tr();
    CHECK(sdl_test_crc32(0, buf, 1000) == ref_crc32(buf, 1000), "CRC-32 against a bitwise reference");
    CHECK(sdl_test_crc32(sdl_test_crc32(0, buf, 300), buf + 300, 700) == ref_crc32(buf, 1000), "CRC-32 continues across calls");
}

static void test_idx_plain(void) {
    idx_pair p = make_idx(37, 5, 7, 10);
    write_bytes(tpath("a-images-idx3-ubyte"), p.img, p.nimg);
    write_bytes(tpath("a-labels-idx1-ubyte"), p.lab, p.nlab);
    sdl_dataset d;
    long before = sdl_test_allocs;
    sdl_result r = sdl_load_idx(tpath("a-images-idx3-ubyte"), tpath("a-labels-idx1-ubyte"), &d);
    CHECK(r == SDL_OK, "load_idx: %s", sdl_last_error());
    CHECK(idx_matches(&d, p.img, p.lab, 37, 5, 7), "images and labels as written");
    CHECK(sdl_test_allocs > before, "the reader allocates through SDL_ALLOC");
    sdl_dataset_free(&d);
    CHECK(d.images == NULL && d.labels == NULL && d.n == 0, "dataset_free zeroes the struct");
    sdl_dataset_free(&d); /* twice is harmless */

    /* label count differs from image count: both files named */
    idx_pair q = make_idx(36, 5, 7, 10);
    write_bytes(tpath("b-labels-idx1-ubyte"), q.lab, q.nlab);
    r = sdl_load_idx(tpath("a-images-idx3-ubyte"), tpath("b-labels-idx1-ubyte"), &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "a-images-idx3-ubyte") && strstr(sdl_last_error(), "b-labels-idx1-ubyte") &&
          strstr(sdl_last_error(), "37") && strstr(sdl_last_error(), "36"), "count mismatch: %s", sdl_last_error());
    CHECK(d.images == NULL && d.n == 0, "out zeroed after an error");
    /* images and labels swapped */
    r = sdl_load_idx(tpath("a-labels-idx1-ubyte"), tpath("a-images-idx3-ubyte"), &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "dimensions"), "swapped files: %s", sdl_last_error());
    /* a missing file */
    r = sdl_load_idx(tpath("nope"), tpath("a-labels-idx1-ubyte"), &d);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "nope"), "missing file: %s", sdl_last_error());
    /* a folder where a file should be (Linux opens folders and reports a huge size) */
    r = sdl_load_idx(tmpdir, tpath("a-labels-idx1-ubyte"), &d);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), tmpdir) && strstr(sdl_last_error(), "folder"), "a folder: %s", sdl_last_error());
    CHECK(!sdl_load_npy(tmpdir) && strstr(sdl_last_error(), "folder"), "npy of a folder: %s", sdl_last_error());
    /* a non-u8 element type */
    p.img[2] = 0x0D;
    write_bytes(tpath("c-images"), p.img, p.nimg);
    r = sdl_load_idx(tpath("c-images"), tpath("a-labels-idx1-ubyte"), &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "c-images") && strstr(sdl_last_error(), "0x0d"), "float IDX: %s", sdl_last_error());
    free_idx(&p);
    free_idx(&q);
}

/* gzip by the system tool; with -n no name is stored (no FNAME flag) */
static void test_idx_gz(void) {
    idx_pair p = make_idx(50, 9, 4, 7);
    write_bytes(tpath("g-images-idx3-ubyte"), p.img, p.nimg);
    write_bytes(tpath("g-labels-idx1-ubyte"), p.lab, p.nlab);
    CHECK(run_cmd("gzip -k -f '%s' && gzip -n -c '%s' > /dev/null", tpath("g-images-idx3-ubyte"), tpath("g-images-idx3-ubyte")) == 0, "gzip ran");
    CHECK(run_cmd("gzip -n -c '%s' > '%s'", tpath("g-labels-idx1-ubyte"), tpath("g-labels.gz")) == 0, "gzip -n ran");
    size_t n;
    uint8_t *gz = read_bytes(tpath("g-images-idx3-ubyte.gz"), &n);
    CHECK(gz && n > 10 && (gz[3] & 8), "gzip stored the name (FNAME)");
    free(gz);
    gz = read_bytes(tpath("g-labels.gz"), &n);
    CHECK(gz && n > 10 && !(gz[3] & 8), "gzip -n stored no name");
    sdl_dataset d;
    sdl_result r = sdl_load_idx(tpath("g-images-idx3-ubyte.gz"), tpath("g-labels.gz"), &d);
    CHECK(r == SDL_OK, "load gz: %s", sdl_last_error());
    CHECK(idx_matches(&d, p.img, p.lab, 50, 9, 4), "gz contents as written");
    sdl_dataset_free(&d);
    /* mixed: plain images, gz labels */
    r = sdl_load_idx(tpath("g-images-idx3-ubyte"), tpath("g-labels.gz"), &d);
    CHECK(r == SDL_OK && idx_matches(&d, p.img, p.lab, 50, 9, 4), "plain + gz: %s", sdl_last_error());
    sdl_dataset_free(&d);

    /* the optional header fields GNU gzip never writes: FEXTRA, FCOMMENT, FHCRC */
    if (gz && n > 18) {
        uint8_t extra[] = {4, 0, 'a', 'b', 0, 0};        /* XLEN = 4, one subfield "ab" of length 0 */
        const char comment[] = "made by test_data";       /* with its zero */
        size_t m = 10 + sizeof extra + sizeof comment + 2 + (n - 10);
        uint8_t *g2 = (uint8_t *)malloc(m);
        memcpy(g2, gz, 10);
        g2[3] = 4 | 16 | 2;
        size_t k = 10;
        memcpy(g2 + k, extra, sizeof extra); k += sizeof extra;
        memcpy(g2 + k, comment, sizeof comment); k += sizeof comment;
        uint32_t hc = ref_crc32(g2, k);
        g2[k++] = (uint8_t)hc; g2[k++] = (uint8_t)(hc >> 8);
        memcpy(g2 + k, gz + 10, n - 10);
        write_bytes(tpath("g2-labels.gz"), g2, m);
        r = sdl_load_idx(tpath("g-images-idx3-ubyte.gz"), tpath("g2-labels.gz"), &d);
        CHECK(r == SDL_OK && idx_matches(&d, p.img, p.lab, 50, 9, 4), "FEXTRA+FCOMMENT+FHCRC: %s", sdl_last_error());
        sdl_dataset_free(&d);
        g2[k - 1] ^= 0x40; /* header CRC wrong */
        write_bytes(tpath("g2-labels.gz"), g2, m);
        r = sdl_load_idx(tpath("g-images-idx3-ubyte.gz"), tpath("g2-labels.gz"), &d);
        CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "g2-labels.gz") && strstr(sdl_last_error(), "header checksum"), "FHCRC checked: %s", sdl_last_error());
        free(g2);
    }
    free(gz);
    free_idx(&p);
}

static void test_fashion_mnist_missing(void) {
    sdl_dataset d;
    sdl_result r = sdl_load_fashion_mnist(tpath("no-such-folder"), true, &d);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "no-such-folder") && strstr(sdl_last_error(), "dataset-fashion-mnist"),
          "missing folder names it and the package: %s", sdl_last_error());
    r = sdl_load_fashion_mnist(tmpdir, false, &d); /* folder exists, files do not */
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "t10k-images-idx3-ubyte"), "missing file named: %s", sdl_last_error());
    r = sdl_load_mnist(NULL, true, &d);
    CHECK(r == SDL_ERR_ARG, "mnist needs a folder: %s", sdl_last_error());
    /* a folder with t10k files, one of them gzipped, labels up to 9 */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/fm", tmpdir);
    run_cmd("mkdir -p '%s'%s", sub, "");
    idx_pair p = make_idx(12, 28, 28, 10);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", sub);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", sub);
    write_bytes(a, p.img, p.nimg);
    write_bytes(b, p.lab, p.nlab);
    run_cmd("gzip -f '%s'%s", a, "");
    r = sdl_load_fashion_mnist(sub, false, &d);
    CHECK(r == SDL_OK && idx_matches(&d, p.img, p.lab, 12, 28, 28) == (d.num_classes == 10 ? 1 : 0) && d.num_classes == 10,
          "t10k from a folder (.gz images, plain labels): %s", sdl_last_error());
    CHECK(d.n == 12 && !memcmp(d.images, p.img + 16, 12 * 784), "pixels");
    sdl_dataset_free(&d);
    p.lab[8 + 5] = 10; /* an 11th class */
    write_bytes(b, p.lab, p.nlab);
    r = sdl_load_fashion_mnist(sub, false, &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "t10k-labels-idx1-ubyte") && strstr(sdl_last_error(), "index 5"),
          "label 10 rejected: %s", sdl_last_error());
    CHECK(d.images == NULL, "nothing left allocated");
    free_idx(&p);
}

/* ---- bad input: truncations and bit flips ------------------------------------------------
   Every corrupted file must give an error that names the file, or load exactly what an
   uncorrupted reading gives (flips in ignored bytes: gzip's time stamp, padding), or, for a
   flip inside raw payload bytes (pixels, labels), load those bytes as they now are. */
typedef int (*fuzz_load_fn)(const char *path, void *ctx); /* 1: ok+as expected, 0: ok+wrong, -1: error */
static int fuzz_failures;

static void fuzz_expect(const char *what, const char *path, int got, bool must_fail, size_t pos) {
    if (got == 0) {
        if (fuzz_failures++ < 5) printf("  %s at byte %zu: loaded without error but the data is wrong\n", what, pos);
    } else if (got < 0 && !strstr(sdl_last_error(), path)) {
        if (fuzz_failures++ < 5) printf("  %s at byte %zu: error does not name the file: %s\n", what, pos, sdl_last_error());
    } else if (got > 0 && must_fail) {
        if (fuzz_failures++ < 5) printf("  %s at byte %zu: loaded without error\n", what, pos);
    }
}

/* truncations at every byte up to 600 then every 7th, and nflips random single-bit flips;
   payload [p0, p1) may change without an error when flip_payload says so */
static bool fuzz_trunc_may_load; /* formats without a length (CIFAR): the loader checks */
static size_t fuzz_flip_pos;      /* the byte flipped, or SIZE_MAX while truncating */
static void fuzz_file(const char *what, const char *path, const uint8_t *good, size_t n, int nflips,
                      fuzz_load_fn load, void *ctx, bool (*flip_must_fail)(size_t pos, void *ctx)) {
    uint8_t *buf = (uint8_t *)malloc(n + 1);
    for (size_t cut = 0; cut < n; cut += cut < 600 ? 1 : 7) {
        write_bytes(path, good, cut);
        fuzz_flip_pos = SIZE_MAX;
        int got = load(path, ctx);
        fuzz_expect(what, path, got, !fuzz_trunc_may_load, cut);
    }
    for (int i = 0; i < nflips; i++) {
        memcpy(buf, good, n);
        size_t pos = tr() % n;
        buf[pos] ^= (uint8_t)(1u << (tr() % 8));
        write_bytes(path, buf, n);
        fuzz_flip_pos = pos;
        int got = load(path, ctx);
        fuzz_expect(what, path, got, flip_must_fail ? flip_must_fail(pos, ctx) : false, pos);
    }
    write_bytes(path, good, n);
    fuzz_flip_pos = SIZE_MAX;
    CHECK(load(path, ctx) == 1, "%s: the uncorrupted file loads", what);
    free(buf);
}

typedef struct { const char *other; bool images; const uint8_t *img, *lab; int n, h, w; bool gz; } idx_fuzz;

/* a flip in a plain file's payload changes exactly that pixel or label: compare with the
   flipped bytes themselves */
static int idx_fuzz_load(const char *path, void *vctx) {
    idx_fuzz *c = (idx_fuzz *)vctx;
    sdl_dataset d;
    sdl_result r = c->images ? sdl_load_idx(path, c->other, &d) : sdl_load_idx(c->other, path, &d);
    if (r != SDL_OK) return d.images == NULL && d.labels == NULL && d.n == 0 ? -1 : 0;
    int ok = idx_matches(&d, c->img, c->lab, c->n, c->h, c->w);
    if (!ok && !c->gz) { /* a payload flip: the file on disk is the truth */
        size_t m;
        uint8_t *now = read_bytes(path, &m);
        ok = idx_matches(&d, c->images ? now : c->img, c->images ? c->lab : now, c->n, c->h, c->w);
        free(now);
    }
    sdl_dataset_free(&d);
    return ok;
}
static bool idx_header_flip(size_t pos, void *vctx) { return pos < (((idx_fuzz *)vctx)->images ? 16u : 8u); }
static bool gz_any_flip(size_t pos, void *vctx) { (void)pos; (void)vctx; return false; }

static void test_fuzz_idx(void) {
    idx_pair p = make_idx(6, 5, 4, 10);
    write_bytes(tpath("f-labels"), p.lab, p.nlab);
    write_bytes(tpath("f-images"), p.img, p.nimg);
    fuzz_failures = 0;
    idx_fuzz c = {tpath("f-labels"), true, p.img, p.lab, 6, 5, 4, false};
    fuzz_file("idx images", tpath("f-images-bad"), p.img, p.nimg, 400, idx_fuzz_load, &c, idx_header_flip);
    idx_fuzz c2 = {tpath("f-images"), false, p.img, p.lab, 6, 5, 4, false};
    fuzz_file("idx labels", tpath("f-labels-bad"), p.lab, p.nlab, 200, idx_fuzz_load, &c2, idx_header_flip);
    CHECK(fuzz_failures == 0, "plain IDX: %d corrupted files misread", fuzz_failures);

    /* gzip: every flip is caught by the CRC or loads identical data */
    CHECK(run_cmd("gzip -c '%s' > '%s'", tpath("f-images"), tpath("f-images.gz")) == 0, "gzip");
    size_t n;
    uint8_t *gz = read_bytes(tpath("f-images.gz"), &n);
    fuzz_failures = 0;
    idx_fuzz c3 = {tpath("f-labels"), true, p.img, p.lab, 6, 5, 4, true};
    if (gz) fuzz_file("idx images .gz", tpath("f-images-bad.gz"), gz, n, 600, idx_fuzz_load, &c3, gz_any_flip);
    CHECK(fuzz_failures == 0, "gzip IDX: %d corrupted files misread", fuzz_failures);
    free(gz);
    free_idx(&p);
}

/* ---- CIFAR-10 binary ---- */
static void cifar_record(uint8_t *rec, int64_t idx) { /* label and pixels from the index */
    rec[0] = (uint8_t)(idx * 7 % 10);
    for (int j = 0; j < 3072; j++) rec[1 + j] = (uint8_t)(idx * 31 + j * 13 + (j >> 10));
}

/* the reference reading of a CIFAR file: valid iff a positive whole number of records, all
   labels < 10; returns 1 when the reader agrees (data equal), 0 when not, -1 on its error */
static int cifar_fuzz_load(const char *path, void *ctx) {
    (void)ctx;
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    bool valid = n > 0 && n % 3073 == 0;
    for (size_t i = 0; valid && i < n; i += 3073) valid = b[i] < 10;
    sdl_dataset d;
    sdl_result r = sdl_load_cifar10_file(path, &d);
    int ok = 0;
    if (r != SDL_OK) ok = valid || d.images ? 0 : -1;
    else if (valid && d.n == (int64_t)(n / 3073) && d.c == 3 && d.h == 32 && d.w == 32 && d.num_classes == 10) {
        ok = 1;
        for (int64_t i = 0; i < d.n && ok; i++)
            ok = d.labels[i] == b[i * 3073] && !memcmp(d.images + i * 3072, b + i * 3073 + 1, 3072);
    }
    sdl_dataset_free(&d);
    free(b);
    return ok;
}

static void test_cifar10(void) {
    uint8_t *buf = (uint8_t *)malloc(3073 * 5);
    for (int i = 0; i < 5; i++) cifar_record(buf + i * 3073, i);
    write_bytes(tpath("small.bin"), buf, 3073 * 5);
    sdl_dataset d;
    CHECK(cifar_fuzz_load(tpath("small.bin"), NULL) == 1, "five records: %s", sdl_last_error());
    /* CIFAR-100 style label 57 */
    buf[3073 * 2] = 57;
    write_bytes(tpath("c100.bin"), buf, 3073 * 5);
    sdl_result r = sdl_load_cifar10_file(tpath("c100.bin"), &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "c100.bin") && strstr(sdl_last_error(), "record 2"), "label 57: %s", sdl_last_error());
    buf[3073 * 2] = 3;
    write_bytes(tpath("odd.bin"), buf, 3073 * 5 - 1);
    r = sdl_load_cifar10_file(tpath("odd.bin"), &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "odd.bin") && strstr(sdl_last_error(), "3073"), "size: %s", sdl_last_error());

    /* the folder: five sparse batches of 10000 records (zeros: label 0), a few written */
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/cifar/cifar-10-batches-bin", tmpdir);
    run_cmd("mkdir -p '%s'%s", dir, "");
    r = sdl_load_cifar10(tmpdir, true, &d);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "data_batch_1.bin"), "missing: %s", sdl_last_error());
    uint8_t rec[3073];
    for (int k = 0; k <= 5; k++) {
        if (k < 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, k + 1);
        else snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        FILE *f = fopen(path, "wb");
        for (int j = 0; j < 10000; j += 4999) { /* records 0, 4999, 9998 */
            cifar_record(rec, (int64_t)k * 10000 + j);
            fseek(f, (long)j * 3073, SEEK_SET);
            fwrite(rec, 1, 3073, f);
        }
        fseek(f, 10000L * 3073 - 1, SEEK_SET);
        fputc(0, f);
        fclose(f);
    }
    char top[600];
    snprintf(top, sizeof top, "%s/cifar", tmpdir);
    for (int train = 0; train < 2; train++) {
        r = sdl_load_cifar10(top, train != 0, &d); /* finds cifar-10-batches-bin inside */
        CHECK(r == SDL_OK && d.n == (train ? 50000 : 10000), "load %s: %s", train ? "train" : "test", sdl_last_error());
        for (int k = 0; r == SDL_OK && k < (train ? 5 : 1); k++)
            for (int j = 0; j < 10000; j += 4999) {
                int64_t i = (int64_t)k * 10000 + j;
                cifar_record(rec, train ? i : 50000 + j);
                CHECK(d.labels[i] == rec[0] && !memcmp(d.images + i * 3072, rec + 1, 3072), "record %lld", (long long)i);
            }
        CHECK(r != SDL_OK || (d.labels[1] == 0 && d.images[3072] == 0), "unwritten records are zero");
        sdl_dataset_free(&d);
    }
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    if (truncate(path, 9999L * 3073) == 0) {
        r = sdl_load_cifar10(dir, true, &d);
        CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "data_batch_3.bin") && strstr(sdl_last_error(), "9999"), "short batch: %s", sdl_last_error());
        CHECK(d.images == NULL && d.n == 0, "nothing kept");
    }

    /* fuzz: the reader agrees with the reference reading for every corruption */
    fuzz_failures = 0;
    fuzz_trunc_may_load = true;
    for (int i = 0; i < 3; i++) cifar_record(buf + i * 3073, i + 3);
    fuzz_file("cifar", tpath("fuzz.bin"), buf, 3 * 3073, 300, cifar_fuzz_load, NULL, NULL);
    fuzz_trunc_may_load = false;
    CHECK(fuzz_failures == 0, "CIFAR: %d corrupted files misread", fuzz_failures);
    free(buf);
}

/* ---- .npy / .npz ---- */
static double fix_val(int64_t i, char kind) { /* the formula make_npy_fixtures.py uses */
    double v = (double)(i * 7 % 23) - 11;
    return kind == 'f' ? v + 0.25 : kind == 'u' ? v + 11 : v;
}

static int fixture_ok(const sdl_tensor *t, sdl_dtype dt, int ndim, const int64_t *shape, char kind) {
    if (!t) { printf("  load failed: %s\n", sdl_last_error()); return 0; }
    if (t->dtype != dt || t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = dt == SDL_F32 ? sdl_f32(t)[i] : dt == SDL_I32 ? sdl_i32(t)[i] : sdl_u8(t)[i];
        if (v != fix_val(i, kind)) return 0;
    }
    return 1;
}

static const char *fixture(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "tests/data/%s", name);
    return buf[k];
}

static void test_npy_fixtures(void) {
    sdl_tensor *t;
    int64_t s23[] = {2, 3}, s5[] = {5}, s452[] = {4, 5, 2}, s7[] = {7}, s32[] = {3, 2}, s203[] = {20, 3}, s6[] = {6}, s234[] = {2, 3, 4};
    t = sdl_load_npy(fixture("f32_2x3.npy"));  CHECK(fixture_ok(t, SDL_F32, 2, s23, 'f'), "f32 (2, 3)");  sdl_tensor_free(t);
    t = sdl_load_npy(fixture("f64_5.npy"));    CHECK(fixture_ok(t, SDL_F32, 1, s5, 'f'), "f64 (5) -> f32"); sdl_tensor_free(t);
    t = sdl_load_npy(fixture("u8_4x5x2.npy")); CHECK(fixture_ok(t, SDL_U8, 3, s452, 'u'), "u8 (4, 5, 2)"); sdl_tensor_free(t);
    t = sdl_load_npy(fixture("i32_7.npy"));    CHECK(fixture_ok(t, SDL_I32, 1, s7, 'i'), "i32 (7)");      sdl_tensor_free(t);
    t = sdl_load_npy(fixture("i64_3x2.npy"));  CHECK(fixture_ok(t, SDL_I32, 2, s32, 'i'), "i64 (3, 2) -> i32"); sdl_tensor_free(t);
    t = sdl_load_npy(fixture("f32_scalar.npy")); CHECK(fixture_ok(t, SDL_F32, 0, NULL, 'f') && t->numel == 1, "0-d f32"); sdl_tensor_free(t);
    t = sdl_load_npy(fixture("f32_fortran.npy"));
    CHECK(!t && strstr(sdl_last_error(), "f32_fortran.npy") && strstr(sdl_last_error(), "Fortran"), "fortran order refused: %s", sdl_last_error());
    t = sdl_load_npy(fixture("f32_bigendian.npy"));
    CHECK(!t && strstr(sdl_last_error(), "f32_bigendian.npy") && strstr(sdl_last_error(), ">f4"), "big-endian refused: %s", sdl_last_error());
    t = sdl_load_npz(fixture("stored.npz"), "x");      CHECK(fixture_ok(t, SDL_F32, 2, s23, 'f'), "stored npz x");          sdl_tensor_free(t);
    t = sdl_load_npz(fixture("stored.npz"), "labels.npy"); CHECK(fixture_ok(t, SDL_I32, 1, s6, 'i'), "stored npz labels.npy"); sdl_tensor_free(t);
    t = sdl_load_npz(fixture("deflated.npz"), "x");    CHECK(fixture_ok(t, SDL_F32, 2, s203, 'f'), "deflated npz x");       sdl_tensor_free(t);
    t = sdl_load_npz(fixture("deflated.npz"), "img");  CHECK(fixture_ok(t, SDL_U8, 3, s234, 'u'), "deflated npz img");      sdl_tensor_free(t);
    t = sdl_load_npz(fixture("deflated.npz"), "y");
    CHECK(!t && strstr(sdl_last_error(), "'y'") && strstr(sdl_last_error(), "x.npy") && strstr(sdl_last_error(), "img.npy"), "missing array lists the others: %s", sdl_last_error());
    /* an int64 beyond int32 */
    size_t n;
    uint8_t *b = read_bytes(fixture("i64_3x2.npy"), &n);
    if (b) {
        b[n - 8 + 4] = 1; /* the last element + 2^32 */
        write_bytes(tpath("big.npy"), b, n);
        t = sdl_load_npy(tpath("big.npy"));
        CHECK(!t && strstr(sdl_last_error(), "big.npy") && strstr(sdl_last_error(), "element 5"), "int64 range: %s", sdl_last_error());
        free(b);
    }
}

static void test_npy_roundtrip(void) {
    sdl_dtype dts[3] = {SDL_F32, SDL_I32, SDL_U8};
    sdl_shape shapes[4] = {sdl_shape3(2, 3, 5), sdl_shape1(7), sdl_shapen(0, NULL), sdl_shape4(1, 3, 1, 2)};
    for (int di = 0; di < 3; di++)
        for (int si = 0; si < 4; si++) {
            sdl_tensor *t = sdl_tensor_new(shapes[si], dts[di]);
            for (int64_t i = 0; i < t->numel; i++) {
                if (dts[di] == SDL_F32) sdl_f32(t)[i] = (float)fix_val(i, 'f');
                else if (dts[di] == SDL_I32) sdl_i32(t)[i] = (int32_t)fix_val(i, 'i') * 100000;
                else sdl_u8(t)[i] = (uint8_t)fix_val(i, 'u');
            }
            CHECK(sdl_save_npy(tpath("rt.npy"), t) == SDL_OK, "save: %s", sdl_last_error());
            size_t n;
            uint8_t *b = read_bytes(tpath("rt.npy"), &n);
            uint32_t hl = b ? (uint32_t)b[8] | (uint32_t)b[9] << 8 : 0;
            CHECK(b && (10 + hl) % 64 == 0 && b[10 + hl - 1] == '\n', "header padded to 64 bytes, ends in a newline");
            free(b);
            sdl_tensor *u = sdl_load_npy(tpath("rt.npy"));
            CHECK(u && u->dtype == t->dtype && sdl_shape_equal(sdl_tensor_shape(u), sdl_tensor_shape(t)) &&
                  !memcmp(u->data, t->data, (size_t)t->numel * sdl_dtype_size(t->dtype)), "round trip dtype %d shape %d: %s", di, si, sdl_last_error());
            sdl_tensor_free(u);
            sdl_tensor_free(t);
        }
    /* numpy reads what sdl writes (when /usr/bin/python3 has numpy) */
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(2, 3, 5), SDL_F32);
    for (int64_t i = 0; i < t->numel; i++) sdl_f32(t)[i] = (float)fix_val(i, 'f');
    sdl_save_npy(tpath("np.npy"), t);
    sdl_tensor_free(t);
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
        int rc = run_cmd("/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
                         "assert a.dtype == np.float32 and a.shape == (2, 3, 5), (a.dtype, a.shape); "
                         "assert (a.ravel() == np.array([(i * 7 %% 23) - 11.0 + 0.25 for i in range(30)])).all()\"%s", tpath("np.npy"), "");
        CHECK(rc == 0, "numpy loads the file sdl wrote");
    } else {
        printf("  skip: numpy not found at /usr/bin/python3\n");
    }
    CHECK(sdl_save_npy(tpath("no/such/dir.npy"), NULL) == SDL_ERR_ARG, "NULL tensor");
}

/* npy: flips in the data bytes change exactly those bytes; npz: error or identical */
typedef struct { const sdl_tensor *good; size_t data_off; bool npz; } npy_fuzz;
static int npy_fuzz_load(const char *path, void *vctx) {
    npy_fuzz *c = (npy_fuzz *)vctx;
    sdl_tensor *t = c->npz ? sdl_load_npz(path, "x") : sdl_load_npy(path);
    if (!t) return -1;
    int ok = t->dtype == c->good->dtype && sdl_shape_equal(sdl_tensor_shape(t), sdl_tensor_shape(c->good));
    size_t bytes = (size_t)c->good->numel * sdl_dtype_size(c->good->dtype);
    if (ok && memcmp(t->data, c->good->data, bytes)) {
        ok = 0;
        if (!c->npz) { /* the bytes on disk (a little-endian host) */
            size_t n;
            uint8_t *b = read_bytes(path, &n);
            ok = n == c->data_off + bytes && !memcmp(t->data, b + c->data_off, bytes);
            free(b);
        }
    }
    sdl_tensor_free(t);
    return ok;
}
static size_t npy_data_off;
static bool npy_header_flip(size_t pos, void *ctx) { (void)ctx; return pos < 6; } /* the magic; others may pass as identical */

static void test_fuzz_npy(void) {
    sdl_tensor *good = sdl_tensor_new(sdl_shape2(3, 5), SDL_F32);
    for (int64_t i = 0; i < good->numel; i++) sdl_f32(good)[i] = (float)fix_val(i, 'f');
    sdl_save_npy(tpath("g.npy"), good);
    size_t n;
    uint8_t *b = read_bytes(tpath("g.npy"), &n);
    npy_data_off = n - 60;
    npy_fuzz c = {good, npy_data_off, false};
    fuzz_failures = 0;
    fuzz_file("npy", tpath("bad.npy"), b, n, 800, npy_fuzz_load, &c, npy_header_flip);
    CHECK(fuzz_failures == 0, "npy: %d corrupted files misread", fuzz_failures);
    free(b);
    sdl_tensor_free(good);
    /* npz, stored and deflated (the fixtures' x) */
    const char *files[2] = {"stored.npz", "deflated.npz"};
    for (int k = 0; k < 2; k++) {
        sdl_tensor *x = sdl_load_npz(fixture(files[k]), "x");
        b = read_bytes(fixture(files[k]), &n);
        if (!x || !b) { CHECK(0, "fixture %s", files[k]); free(b); sdl_tensor_free(x); continue; }
        npy_fuzz cz = {x, 0, true};
        fuzz_failures = 0;
        fuzz_file(files[k], tpath(k ? "bad_d.npz" : "bad_s.npz"), b, n, 800, npy_fuzz_load, &cz, NULL);
        CHECK(fuzz_failures == 0, "%s: %d corrupted files misread", files[k], fuzz_failures);
        free(b);
        sdl_tensor_free(x);
    }
}

/* ---- images: PNG writing and reading, folders ---- */
static sdl_tensor *pattern_u8(sdl_shape s) {
    sdl_tensor *t = sdl_tensor_new(s, SDL_U8);
    for (int64_t i = 0; i < t->numel; i++) sdl_u8(t)[i] = (uint8_t)tr();
    return t;
}

/* width and height from the PNG's IHDR, read by hand */
static int png_size(const char *path, uint32_t *w, uint32_t *h) {
    size_t n;
    uint8_t *b = read_bytes(path, &n);
    int ok = b && n > 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4);
    if (ok) {
        *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
        *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
    }
    free(b);
    return ok;
}

static void test_png_write_read(void) {
    uint32_t pw = 0, ph = 0;
    for (int c = 1; c <= 4; c += (c == 1 ? 2 : 1)) { /* 1, 3, 4 channels */
        sdl_tensor *t = pattern_u8(sdl_shape3(c, 5, 7));
        CHECK(sdl_write_png(tpath("one.png"), t, 0, 0, 0) == SDL_OK, "write: %s", sdl_last_error());
        CHECK(png_size(tpath("one.png"), &pw, &ph) && pw == 7 && ph == 5, "a PNG of 7x5, got %ux%u", pw, ph);
        sdl_tensor *u = sdl_load_image(tpath("one.png"), 0);
        CHECK(u && u->dtype == SDL_U8 && u->ndim == 3 && u->shape[0] == c && u->shape[1] == 5 && u->shape[2] == 7 &&
              !memcmp(u->data, t->data, (size_t)t->numel), "%d-channel round trip: %s", c, sdl_last_error());
        sdl_tensor_free(u);
        if (c == 1) { /* grey read as RGB: three equal planes */
            u = sdl_load_image(tpath("one.png"), 3);
            CHECK(u && u->shape[0] == 3 && !memcmp(sdl_u8(u), t->data, 35) && !memcmp(sdl_u8(u) + 35, t->data, 35) &&
                  !memcmp(sdl_u8(u) + 70, t->data, 35), "grey as RGB");
            sdl_tensor_free(u);
        }
        sdl_tensor_free(t);
    }
    /* a grid: 5 grey 4x3 images, 2 per row, 2 pixels apart */
    sdl_tensor *g = pattern_u8(sdl_shape4(5, 1, 4, 3));
    CHECK(sdl_write_png(tpath("grid.png"), g, 2, 0, 0) == SDL_OK, "grid: %s", sdl_last_error());
    sdl_tensor *u = sdl_load_image(tpath("grid.png"), 1);
    CHECK(u && u->shape[1] == 3 * (4 + 2) + 2 && u->shape[2] == 2 * (3 + 2) + 2, "grid size");
    if (u && u->shape[1] == 20 && u->shape[2] == 12) {
        int bad = 0;
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 12; x++) {
                int col = (x - 2) / 5, row = (y - 2) / 6, ix = (x - 2) % 5, iy = (y - 2) % 6, k = row * 2 + col;
                bool inside = x >= 2 && y >= 2 && ix < 3 && iy < 4 && k < 5;
                uint8_t want = inside ? sdl_u8(g)[(k * 4 + iy) * 3 + ix] : 0;
                bad += sdl_u8(u)[y * 12 + x] != want;
            }
        CHECK(bad == 0, "%d grid pixels wrong", bad);
    }
    sdl_tensor_free(u);
    sdl_tensor_free(g);
    /* f32: lo -> 0, hi -> 255, clamped; lo == hi means [0, 1] */
    float v[4] = {-1.0f, 0.0f, 1.0f, 2.0f};
    sdl_tensor *f = sdl_tensor_from(sdl_shape3(1, 2, 2), v);
    sdl_write_png(tpath("f.png"), f, 0, -1.0f, 1.0f);
    u = sdl_load_image(tpath("f.png"), 1);
    CHECK(u && sdl_u8(u)[0] == 0 && sdl_u8(u)[1] == 128 && sdl_u8(u)[2] == 255 && sdl_u8(u)[3] == 255, "f32 in [-1, 1]");
    sdl_tensor_free(u);
    float v2[4] = {0.0f, 0.5f, 1.0f, -3.0f};
    sdl_tensor_copy_from(f, v2);
    sdl_write_png(tpath("f.png"), f, 0, 0, 0);
    u = sdl_load_image(tpath("f.png"), 1);
    CHECK(u && sdl_u8(u)[0] == 0 && sdl_u8(u)[1] == 128 && sdl_u8(u)[2] == 255 && sdl_u8(u)[3] == 0, "f32 in [0, 1]");
    sdl_tensor_free(u);
    sdl_tensor_free(f);
    sdl_tensor *two = sdl_tensor_new(sdl_shape3(2, 3, 3), SDL_U8);
    CHECK(sdl_write_png(tpath("x.png"), two, 0, 0, 0) == SDL_ERR_ARG && strstr(sdl_last_error(), "x.png"), "2 channels refused");
    sdl_tensor_free(two);
    /* a JPEG made by Pillow (tests/data/make_jpeg_fixture.py): lossy, so close */
    uint8_t rgb[8 * 8 * 3];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            for (int k = 0; k < 3; k++) rgb[(y * 8 + x) * 3 + k] = (uint8_t)(40 + 10 * x + 12 * y + 30 * k);
    u = sdl_load_image("tests/data/rgb_8x8.jpg", 3);
    int worst = 0;
    for (int k = 0; u && k < 3; k++)
        for (int i = 0; i < 64; i++) {
            int e = abs((int)sdl_u8(u)[k * 64 + i] - (int)rgb[i * 3 + k]);
            worst = e > worst ? e : worst;
        }
    CHECK(u && u->shape[0] == 3 && u->shape[1] == 8 && u->shape[2] == 8 && worst <= 8, "JPEG decoded to CHW, worst error %d", worst);
    sdl_tensor_free(u);
    CHECK(!sdl_load_image(tpath("grid.txt"), 0) && strstr(sdl_last_error(), "grid.txt"), "missing image named");
    write_bytes(tpath("junk.png"), "not a png at all", 16);
    CHECK(!sdl_load_image(tpath("junk.png"), 0) && strstr(sdl_last_error(), "junk.png"), "junk named: %s", sdl_last_error());
}

static void write_png_u8(const char *path, const uint8_t *chw, int c, int h, int w) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(c, h, w), SDL_U8);
    memcpy(t->data, chw, (size_t)(c * h * w));
    sdl_write_png(path, t, 0, 0, 0);
    sdl_tensor_free(t);
}

static void test_image_folder(void) {
    char root[600], p[800];
    snprintf(root, sizeof root, "%s/folder", tmpdir);
    const char *cls[3] = {"dog", "ant", "cat"}; /* made in this order, numbered sorted */
    uint8_t px[3][4][3 * 6 * 5];
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s", root, cls[k]);
        run_cmd("mkdir -p '%s'%s", p, "");
        for (int i = 0; i < 2 + k; i++) {
            for (int j = 0; j < 90; j++) px[k][i][j] = (uint8_t)tr();
            snprintf(p, sizeof p, "%s/%s/img%d.png", root, cls[k], 3 - i); /* files sorted backwards */
            write_png_u8(p, px[k][i], 3, 6, 5);
        }
    }
    snprintf(p, sizeof p, "%s/cat/README.txt", root);
    write_bytes(p, "not an image", 12);
    snprintf(p, sizeof p, "%s/cat/.DS_Store", root);
    write_bytes(p, "junk", 4);
    int n = 0;
    char **names = sdl_image_folder_classes(root, &n);
    CHECK(names && n == 3 && !strcmp(names[0], "ant") && !strcmp(names[1], "cat") && !strcmp(names[2], "dog") && !names[3], "classes sorted");
    sdl_names_free(names);
    sdl_dataset d;
    sdl_result r = sdl_load_image_folder(root, 0, &d);
    CHECK(r == SDL_OK && d.n == 2 + 3 + 4 && d.c == 3 && d.h == 6 && d.w == 5 && d.num_classes == 3, "folder: %s", sdl_last_error());
    if (r == SDL_OK) {
        int expect_cls[3] = {1, 2, 0}; /* dog -> 2 ... : index by creation order */
        (void)expect_cls;
        int64_t i = 0;
        int order[3] = {1, 2, 0}; /* sorted: ant (made 2nd), cat (3rd), dog (1st) */
        for (int id = 0; id < 3; id++) {
            int k = order[id];
            for (int f = 2 + k - 1; f >= 0; f--, i++) /* img1 (made last) first */
                CHECK(d.labels[i] == id && !memcmp(d.images + i * 90, px[k][f], 90), "sample %lld", (long long)i);
        }
    }
    sdl_dataset_free(&d);
    /* grey */
    r = sdl_load_image_folder(root, 1, &d);
    CHECK(r == SDL_OK && d.c == 1 && d.n == 9, "as grey: %s", sdl_last_error());
    sdl_dataset_free(&d);
    /* a different size is named with both sizes */
    snprintf(p, sizeof p, "%s/cat/img9.png", root);
    uint8_t big[3 * 7 * 5] = {0};
    write_png_u8(p, big, 3, 7, 5);
    r = sdl_load_image_folder(root, 3, &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "img9.png") && strstr(sdl_last_error(), "5x7") && strstr(sdl_last_error(), "5x6"),
          "size differs: %s", sdl_last_error());
    CHECK(d.images == NULL && d.n == 0, "nothing kept");
    /* a truncated PNG */
    size_t m;
    uint8_t *b = read_bytes(p, &m);
    write_bytes(p, b, m / 2);
    free(b);
    r = sdl_load_image_folder(root, 3, &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "img9.png"), "truncated png: %s", sdl_last_error());
    remove(p);
    snprintf(p, sizeof p, "%s/ant/scan.TIFF", root);
    write_bytes(p, "II*", 3);
    r = sdl_load_image_folder(root, 3, &d);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "scan.TIFF"), "tiff: %s", sdl_last_error());
    remove(p);
    r = sdl_load_image_folder(tpath("nothing-here"), 3, &d);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "nothing-here"), "missing folder: %s", sdl_last_error());
}

/* one class, one PNG: truncations and flips give an error naming the file (sdl checks the
   chunks' CRC-32s, which stb does not), or the same pixels (flips in ignored fields) */
static const uint8_t *folder_fuzz_px;
static int folder_fuzz_load(const char *path, void *ctx) {
    (void)path;
    const char *root = (const char *)ctx;
    sdl_dataset d;
    sdl_result r = sdl_load_image_folder(root, 0, &d);
    if (r != SDL_OK) return d.images || d.n ? 0 : -1;
    int ok = d.n == 1 && d.c == 3 && d.h == 5 && d.w == 4 && d.labels[0] == 0 && d.num_classes == 1 && !memcmp(d.images, folder_fuzz_px, 60);
    sdl_dataset_free(&d);
    return ok;
}

static void test_fuzz_image_folder(void) {
    char root[600], png[700];
    snprintf(root, sizeof root, "%s/ffold", tmpdir);
    run_cmd("mkdir -p '%s/only'%s", root, "");
    snprintf(png, sizeof png, "%s/only/x.png", root);
    uint8_t px[3 * 5 * 4];
    for (int i = 0; i < 60; i++) px[i] = (uint8_t)tr();
    write_png_u8(png, px, 3, 5, 4);
    size_t n;
    uint8_t *b = read_bytes(png, &n);
    fuzz_failures = 0;
    folder_fuzz_px = px;
    if (b) fuzz_file("png in a folder", png, b, n, 400, folder_fuzz_load, root, NULL);
    CHECK(fuzz_failures == 0, "image folder: %d corrupted files misread", fuzz_failures);
    free(b);
}

/* ---- tar shards ---- */
static sdl_dataset random_dataset(int64_t n, int c, int h, int w, int classes) {
    sdl_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n; d.c = c; d.h = h; d.w = w;
    d.images = (uint8_t *)malloc((size_t)(n * c * h * w));
    d.labels = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n * c * h * w; i++) d.images[i] = (uint8_t)tr();
    for (int64_t i = 0; i < n; i++) { d.labels[i] = (int32_t)(tr() % (uint32_t)classes); d.num_classes = d.labels[i] >= d.num_classes ? d.labels[i] + 1 : d.num_classes; }
    return d;
}
static void free_plain(sdl_dataset *d) { free(d->images); free(d->labels); memset(d, 0, sizeof *d); }

static int same_dataset(const sdl_dataset *a, const sdl_dataset *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->num_classes == b->num_classes &&
           !memcmp(a->images, b->images, (size_t)(a->n * a->c * a->h * a->w)) && !memcmp(a->labels, b->labels, sizeof(int32_t) * (size_t)a->n);
}

static void test_shard_list(void) {
    int n = 0;
    char **l = sdl_shard_list("d/x-{08..11}.tar", &n);
    CHECK(l && n == 4 && !strcmp(l[0], "d/x-08.tar") && !strcmp(l[3], "d/x-11.tar") && !l[4], "list of 4");
    sdl_names_free(l);
    l = sdl_shard_list("x-{000000..000002}.tar", &n);
    CHECK(l && n == 3 && !strcmp(l[2], "x-000002.tar"), "six digits");
    sdl_names_free(l);
    l = sdl_shard_list("plain.tar", &n);
    CHECK(l && n == 1 && !strcmp(l[0], "plain.tar"), "a plain path");
    sdl_names_free(l);
    const char *bad[] = {"x-{5..2}.tar", "x-{a..b}.tar", "x-{1..2}-{3..4}.tar", "x-{1..}.tar", "x-{..3}.tar", "x-{12.tar"};
    for (int i = 0; i < 6; i++) {
        l = sdl_shard_list(bad[i], &n);
        CHECK(!l && n == 0 && strstr(sdl_last_error(), bad[i]), "bad pattern %s", bad[i]);
    }
}

static void test_shards_roundtrip(void) {
    sdl_dataset d = random_dataset(23, 3, 6, 5, 10);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s/sh/train", tmpdir);
    run_cmd("mkdir -p '%s/sh'%s", tmpdir, "");
    CHECK(sdl_write_shards(&d, prefix, 10) == SDL_OK, "write: %s", sdl_last_error());
    CHECK(access(tpath("sh/train-000002.tar"), R_OK) == 0 && access(tpath("sh/train-000003.tar"), R_OK) != 0, "23 samples, 10 a shard: 3 shards");
    char pat[700];
    snprintf(pat, sizeof pat, "%s-{000000..000002}.tar", prefix);
    sdl_dataset e;
    sdl_result r = sdl_load_shards(pat, 0, &e);
    CHECK(r == SDL_OK && same_dataset(&d, &e), "read back what was written: %s", sdl_last_error());
    sdl_dataset_free(&e);
    /* GNU tar reads the shards: lists them, extracts a label */
    CHECK(run_cmd("tar -tf '%s' | head -2 | tr '\\n' ' ' | grep -q '^000000010.cls 000000010.png $'%s", tpath("sh/train-000001.tar"), "") == 0, "tar lists the members");
    char cmd[900];
    snprintf(cmd, sizeof cmd, "test \"$(tar -xOf '%s' 000000012.cls)\" = %d", tpath("sh/train-000001.tar"), d.labels[12]);
    CHECK(system(cmd) == 0, "tar extracts the label");
    /* shards missing: the error names the file */
    snprintf(pat, sizeof pat, "%s-{000000..000003}.tar", prefix);
    r = sdl_load_shards(pat, 0, &e);
    CHECK(r == SDL_ERR_IO && strstr(sdl_last_error(), "train-000003.tar"), "missing shard: %s", sdl_last_error());
    /* the writer's errors */
    sdl_shard_writer *w = sdl_shard_writer_new(tpath("sh/w"), 0);
    const char *ext[2] = {"cls", "png"};
    const void *data[2] = {"1", "x"};
    size_t sizes[2] = {1, 1};
    CHECK(sdl_shard_writer_add(w, "a.b", 2, ext, data, sizes) == SDL_ERR_ARG && strstr(sdl_last_error(), "a.b"), "a dot in the key");
    CHECK(sdl_shard_writer_add(w, "ok", 2, ext, data, sizes) == SDL_OK && sdl_shard_writer_num_shards(w) == 1, "one sample");
    CHECK(sdl_shard_writer_close(w) == SDL_OK, "close");
    r = sdl_load_shards(tpath("sh/w-000000.tar"), 0, &e);
    CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "w-000000.tar") && strstr(sdl_last_error(), "ok.png"), "undecodable image named: %s", sdl_last_error());
    free_plain(&d);
}

/* shards made by GNU tar itself in its three formats: gnu ('L' long names), pax ('x'
   headers), ustar (prefix field) */
static void test_shards_gnu_tar(void) {
    char dir[600], p[900];
    snprintf(dir, sizeof dir, "%s/tarsrc/s", tmpdir);
    char longdir[130]; /* two 60-byte parts: past 100 bytes, but ustar can split it */
    memset(longdir, 'L', 121);
    longdir[60] = '/';
    longdir[121] = 0;
    snprintf(p, sizeof p, "%s/%s", dir, longdir);
    run_cmd("mkdir -p '%s'%s", p, "");
    uint8_t px[3][2 * 3 * 4];
    int labels[3] = {7, 0, 12};
    const char *keys[3] = {"0001", "0002", NULL};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 24; j++) px[i][j] = (uint8_t)tr();
        char key[800];
        if (keys[i]) snprintf(key, sizeof key, "%s/%s", dir, keys[i]);
        else snprintf(key, sizeof key, "%s/%s/0003", dir, longdir);
        char f[900], txt[16];
        snprintf(f, sizeof f, "%s.png", key);
        write_png_u8(f, px[i], 1, 4, 6);
        snprintf(f, sizeof f, "%s.cls", key);
        snprintf(txt, sizeof txt, i == 1 ? "%d\n" : "%d", labels[i]);
        write_bytes(f, txt, strlen(txt));
    }
    snprintf(p, sizeof p, "%s/0002.json", dir);
    write_bytes(p, "{}", 2);
    const char *fmts[3] = {"gnu", "pax", "ustar"};
    for (int k = 0; k < 3; k++) {
        char tarf[700], cmd[2000];
        snprintf(tarf, sizeof tarf, "%s/sys-%s.tar", tmpdir, fmts[k]);
        snprintf(cmd, sizeof cmd, "tar --format=%s --sort=name -cf '%s' -C '%s/tarsrc' s", fmts[k], tarf, tmpdir);
        if (system(cmd) != 0) { printf("  skip: GNU tar with --format=%s --sort=name failed\n", fmts[k]); continue; }
        sdl_dataset d;
        sdl_result r = sdl_load_shards(tarf, 1, &d);
        CHECK(r == SDL_OK && d.n == 3 && d.c == 1 && d.h == 4 && d.w == 6 && d.num_classes == 13, "%s tar: %s", fmts[k], sdl_last_error());
        for (int i = 0; r == SDL_OK && i < 3; i++)
            CHECK(d.labels[i] == labels[i] && !memcmp(d.images + i * 24, px[i], 24), "%s tar sample %d", fmts[k], i);
        sdl_dataset_free(&d);
    }
    /* a sample without a label; a bad label */
    snprintf(p, sizeof p, "%s/0002.cls", dir);
    remove(p);
    snprintf(p, sizeof p, "tar --sort=name -cf '%s/nolabel.tar' -C '%s/tarsrc' s", tmpdir, tmpdir);
    if (system(p) == 0) {
        sdl_dataset d;
        sdl_result r = sdl_load_shards(tpath("nolabel.tar"), 1, &d);
        CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "nolabel.tar") && strstr(sdl_last_error(), "s/0002") && strstr(sdl_last_error(), "no label"),
              "missing .cls: %s", sdl_last_error());
    }
    snprintf(p, sizeof p, "%s/0002.cls", dir);
    write_bytes(p, "3x", 2);
    snprintf(p, sizeof p, "tar --sort=name -cf '%s/badlabel.tar' -C '%s/tarsrc' s", tmpdir, tmpdir);
    if (system(p) == 0) {
        sdl_dataset d;
        sdl_result r = sdl_load_shards(tpath("badlabel.tar"), 1, &d);
        CHECK(r == SDL_ERR_FORMAT && strstr(sdl_last_error(), "badlabel.tar") && strstr(sdl_last_error(), "s/0002.cls"), "bad .cls: %s", sdl_last_error());
    }
}

/* flips inside a member's data may change that sample's label or pixels (tar has no data
   checksum; stb does not check PNG CRCs); anywhere else: an error or the same samples */
typedef struct { const sdl_dataset *good; size_t regions[64][2]; int nreg; } tar_fuzz;
static int tar_fuzz_load(const char *path, void *vctx) {
    tar_fuzz *c = (tar_fuzz *)vctx;
    sdl_dataset d;
    sdl_result r = sdl_load_shards(path, 0, &d);
    if (r != SDL_OK) return d.images || d.n ? 0 : -1;
    int ok = same_dataset(&d, c->good);
    bool payload = false;
    for (int i = 0; i < c->nreg && fuzz_flip_pos != SIZE_MAX; i++)
        payload |= fuzz_flip_pos >= c->regions[i][0] && fuzz_flip_pos < c->regions[i][1];
    if (!ok && payload && d.n == c->good->n && d.c == c->good->c && d.h == c->good->h && d.w == c->good->w) {
        int differ = 0; /* at most the one sample hit */
        size_t per = (size_t)(d.c * d.h * d.w);
        for (int64_t i = 0; i < d.n; i++)
            differ += d.labels[i] != c->good->labels[i] || memcmp(d.images + i * per, c->good->images + i * per, per);
        ok = differ <= 1;
    }
    sdl_dataset_free(&d);
    return ok;
}

static void test_fuzz_tar(void) {
    sdl_dataset d = random_dataset(3, 3, 3, 4, 10);
    CHECK(sdl_write_shards(&d, tpath("fz"), 0) == SDL_OK, "write");
    size_t n;
    uint8_t *b = read_bytes(tpath("fz-000000.tar"), &n);
    tar_fuzz c;
    memset(&c, 0, sizeof c);
    c.good = &d;
    for (size_t off = 0; b && off + 512 <= n && b[off] && c.nreg < 64;) { /* the members' data regions */
        size_t size = (size_t)strtoul((const char *)b + off + 124, NULL, 8);
        c.regions[c.nreg][0] = off + 512;
        c.regions[c.nreg][1] = off + 512 + size;
        c.nreg++;
        off += 512 + (size + 511) / 512 * 512;
    }
    CHECK(c.nreg == 6, "six members, got %d", c.nreg);
    fuzz_failures = 0;
    fuzz_trunc_may_load = true; /* the second end block may go: then the same samples */
    if (b) fuzz_file("tar shard", tpath("fz-bad.tar"), b, n, 1500, tar_fuzz_load, &c, NULL);
    fuzz_trunc_may_load = false;
    CHECK(fuzz_failures == 0, "tar: %d corrupted files misread", fuzz_failures);
    free(b);
    free_plain(&d);
}

/* ---- the real Fashion-MNIST, when Debian's dataset-fashion-mnist is installed ---- */
static void test_fashion_mnist_real(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (!sdl_test_is_dir(dir)) {
        printf("  skip: %s absent (apt-get install dataset-fashion-mnist)\n", dir);
        return;
    }
    for (int train = 1; train >= 0; train--) {
        sdl_dataset d;
        sdl_result r = sdl_load_fashion_mnist(NULL, train != 0, &d);
        CHECK(r == SDL_OK, "load %s: %s", train ? "train" : "test", sdl_last_error());
        if (r != SDL_OK) continue;
        int64_t want = train ? 60000 : 10000;
        CHECK(d.n == want && d.c == 1 && d.h == 28 && d.w == 28 && d.num_classes == 10, "n %lld, %dx%dx%d", (long long)d.n, d.c, d.h, d.w);
        int64_t count[10] = {0};
        bool in_range = true;
        for (int64_t i = 0; i < d.n; i++) {
            if (d.labels[i] < 0 || d.labels[i] > 9) in_range = false;
            else count[d.labels[i]]++;
        }
        CHECK(in_range, "labels 0..9");
        for (int k = 0; k < 10; k++) CHECK(count[k] == want / 10, "class %d has %lld samples", k, (long long)count[k]);
        /* known statistics: mean pixel 0.2860 (train) / 0.2868 (test) of 255, first labels */
        double sum = 0;
        size_t np = (size_t)d.n * 784;
        uint8_t mx = 0;
        for (size_t i = 0; i < np; i++) { sum += d.images[i]; mx = d.images[i] > mx ? d.images[i] : mx; }
        double mean = sum / (double)np / 255.0;
        CHECK(fabs(mean - (train ? 0.2860 : 0.2868)) < 0.0005, "mean pixel %.4f", mean);
        CHECK(mx == 255, "max pixel %d", mx);
        if (train) CHECK(d.labels[0] == 9 && d.labels[1] == 0 && d.labels[2] == 0 && d.labels[3] == 3, "first train labels 9 0 0 3: %d %d %d %d", d.labels[0], d.labels[1], d.labels[2], d.labels[3]);
        else CHECK(d.labels[0] == 9 && d.labels[1] == 2 && d.labels[2] == 1 && d.labels[3] == 1, "first test labels 9 2 1 1: %d %d %d %d", d.labels[0], d.labels[1], d.labels[2], d.labels[3]);
        printf("  %s: %lld images, mean pixel %.4f\n", train ? "train" : "test", (long long)d.n, mean);
        sdl_dataset_free(&d);
    }
}

int main(void) {
    (void)gradcheck; /* sdl_test.h helpers this file does not need */
    (void)test_ids;
    /* memory-backed when there is /dev/shm: the fuzz loops write thousands of small files */
    snprintf(tmpdir, sizeof tmpdir, "%s/sdl_test_data_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_crc32);
    RUN(test_idx_plain);
    RUN(test_idx_gz);
    RUN(test_fashion_mnist_missing);
    RUN(test_fuzz_idx);
    RUN(test_cifar10);
    RUN(test_npy_fixtures);
    RUN(test_npy_roundtrip);
    RUN(test_fuzz_npy);
    RUN(test_png_write_read);
    RUN(test_image_folder);
    RUN(test_fuzz_image_folder);
    RUN(test_shard_list);
    RUN(test_shards_roundtrip);
    RUN(test_shards_gnu_tar);
    RUN(test_fuzz_tar);
    RUN(test_fashion_mnist_real);
    run_cmd("rm -rf '%s'%s", tmpdir, "");
    return sdl_test_finish();
}
