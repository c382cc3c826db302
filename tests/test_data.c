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
    CHECK(sdl__crc32(0, (const uint8_t *)s, 9) == 0xCBF43926u, "CRC-32 check value, got %08x", sdl__crc32(0, (const uint8_t *)s, 9));
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)tr();
    CHECK(sdl__crc32(0, buf, 1000) == ref_crc32(buf, 1000), "CRC-32 against a bitwise reference");
    CHECK(sdl__crc32(sdl__crc32(0, buf, 300), buf + 300, 700) == ref_crc32(buf, 1000), "CRC-32 continues across calls");
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
static void fuzz_file(const char *what, const char *path, const uint8_t *good, size_t n, int nflips,
                      fuzz_load_fn load, void *ctx, bool (*flip_must_fail)(size_t pos, void *ctx)) {
    uint8_t *buf = (uint8_t *)malloc(n + 1);
    for (size_t cut = 0; cut < n; cut += cut < 600 ? 1 : 7) {
        write_bytes(path, good, cut);
        int got = load(path, ctx);
        fuzz_expect(what, path, got, true, cut);
    }
    for (int i = 0; i < nflips; i++) {
        memcpy(buf, good, n);
        size_t pos = tr() % n;
        buf[pos] ^= (uint8_t)(1u << (tr() % 8));
        write_bytes(path, buf, n);
        int got = load(path, ctx);
        fuzz_expect(what, path, got, flip_must_fail ? flip_must_fail(pos, ctx) : false, pos);
    }
    write_bytes(path, good, n);
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

/* ---- the real Fashion-MNIST, when Debian's dataset-fashion-mnist is installed ---- */
static void test_fashion_mnist_real(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (!sdl__is_dir(dir)) {
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sdl_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temporary folder\n0 passed, 1 failed\n"); return 1; }
    RUN(test_crc32);
    RUN(test_idx_plain);
    RUN(test_idx_gz);
    RUN(test_fashion_mnist_missing);
    RUN(test_fuzz_idx);
    RUN(test_fashion_mnist_real);
    run_cmd("rm -rf '%s'%s", tmpdir, "");
    return sdl_test_finish();
}
