/* test_tutorials_data.c - the data tutorials (examples/tutorials/03, 09, 24) keep the
   ladder's rules (at most 120 lines, no #if), build warning-free (03 and 09 with mpicc, 24
   with $CC; as C++17 too) and, run briefly on data this test writes, print what the test
   computes on its own:
   03: the histogram .npy holds exactly the pixel values of the images written here (PNGs
       from known bytes, a JPEG decoded here), dot-files and other files skipped; the same
       from the folder tree and from a ZIP of it, on 1 and 2 ranks (contiguous shares);
       numpy reads it; a corrupt image is an error naming the file.
   09: every sample once per epoch; the same losses with and without prefetching (no
       threads at all); the shuffle buffer changes the order; the loss falls; --cache; 2 ranks.
   24: the loader alone, training from the shards and from the mock, images of any size.
   make_data.py's tree, ZIP and shard (50 Fashion-MNIST images) feed 03 and 09.
   Also sdl_decode_image: a ZIP member decodes as the file does. Without mpicc the MPI
   tutorials are skipped, without mpirun their 2-rank runs, without python3 (zipfile) the
   ZIP runs, without numpy at /usr/bin/python3 its read-back. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdarg.h>

#define OUT "build/tests-tutorials-data"
#define FASHION "/usr/share/datasets/fashion-mnist"
#define TUT "examples/tutorials/"
#define ENV "SDL_NUM_THREADS=1 "
#define MPIRUN ENV "mpirun --allow-run-as-root --oversubscribe "
#define SHARDS OUT "/shards/s-{000000..000003}.tar"

static const char *cc(void) { const char *c = getenv("CC"); return c && *c ? c : "cc"; }
static char log_[1 << 15];

/* runs cmd with stdout and stderr into OUT/log; returns the exit status, the text in log_ */
static int run(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return sdl_test_run_log(cmd, OUT "/log", log_, sizeof log_);
}
static bool have(const char *tool) { char c[128]; snprintf(c, sizeof c, "command -v %s >/dev/null 2>&1", tool); return system(c) == 0; }
static double field(const char *text, const char *key) { const char *p = strstr(text, key); return p ? atof(p + strlen(key)) : -1.0; }
/* the line starting with prefix, up to (not with) `end` */
static void line_of(const char *text, const char *prefix, const char *end, char *out, size_t cap) {
    const char *p = strstr(text, prefix), *e = p ? strstr(p, end) : NULL;
    size_t n = p && e && (size_t)(e - p) < cap ? (size_t)(e - p) : 0;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
}
static bool same_file(const char *a, const char *b) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

/* the tutorial rules, then the build into OUT/<name> (mpicc for the MPI ones) */
static bool build(const char *name, bool mpi) {
    char path[128];
    snprintf(path, sizeof path, TUT "%s.c", name);
    sdl_test_tutorial_rules(path);
    if (mpi && !have("mpicc")) { printf("  skip: %s (mpicc not found)\n", name); return false; }
    const char *cxx = mpi ? "mpicxx" : "g++";
    if (have(cxx))
        CHECK(run("%s -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE -I. %s", cxx, path) == 0, "%s compiles as C++17:\n%s", name, log_);
    int rc = run("%s -std=c99 -O1 -Wall -Wextra -Werror -I. %s %s -o " OUT "/%s -lm -lpthread", mpi ? "mpicc" : cc(), path, sdl_test_tutorial_link(mpi), name);
    CHECK(rc == 0, "%s builds:\n%s", name, log_);
    return rc == 0;
}

/* ---- 03: the histogram ---- */
static long long expect[3 * 256];
static int64_t expect_pixels;

static void add_image(const sdl_tensor *img) {
    int64_t hw = img->shape[1] * img->shape[2];
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < hw; i++) expect[c * 256 + sdl_u8(img)[c * hw + i]]++;
    expect_pixels += hw;
}

/* OUT/tree: five PNGs of known bytes (one nested deeper), the JPEG fixture, and what must
   be skipped: a dot-file and a text file. Fills expect. */
static bool make_tree(void) {
    static const char *const pngs[] = {"a/p0.png", "a/p1.png", "b/p2.png", "b/c/p3.png", "p4.png", ".hidden.png"};
    if (system("rm -rf " OUT "/tree && mkdir -p " OUT "/tree/a " OUT "/tree/b/c && cp tests/data/rgb_8x8.jpg " OUT "/tree/b/rgb.jpg") != 0) return false;
    FILE *f = fopen(OUT "/tree/notes.txt", "w");
    if (f) fputs("not an image\n", f), fclose(f);
    memset(expect, 0, sizeof expect);
    expect_pixels = 0;
    for (int k = 0; k < 6; k++) {
        sdl_tensor *t = sdl_tensor_new(sdl_shape3(3, 5 + k, 7 - k / 2), SDL_U8);
        for (int64_t i = 0; i < t->numel; i++) sdl_u8(t)[i] = (uint8_t)(i * 37 + k * 11 + (i / 13) * 5);
        char path[256];
        snprintf(path, sizeof path, OUT "/tree/%s", pngs[k]);
        bool ok = sdl_write_png(path, t, 0, 0.0f, 0.0f) == SDL_OK;
        if (ok && k < 5) add_image(t);
        sdl_tensor_free(t);
        if (!ok) return false;
    }
    sdl_tensor *jpg = sdl_load_image("tests/data/rgb_8x8.jpg", 3);
    if (jpg) add_image(jpg);
    sdl_tensor_free(jpg);
    return jpg != NULL;
}

/* the histogram file is (3, 256) int32 and equals expect */
static bool hist_ok(const char *path) {
    sdl_tensor *h = sdl_load_npy(path);
    bool ok = h && h->dtype == SDL_I32 && h->ndim == 2 && h->shape[0] == 3 && h->shape[1] == 256;
    for (int i = 0; ok && i < 3 * 256; i++) ok = sdl_i32(h)[i] == expect[i];
    sdl_tensor_free(h);
    return ok;
}

static bool built03, built09;

static void test_histogram(void) {
    if (!(built03 = build("03_histogram", true))) return;
    CHECK(make_tree(), "the test tree: %s", sdl_last_error());
    int rc = run(ENV OUT "/03_histogram --data " OUT "/tree --out " OUT "/h1.npy");
    char want[128];
    snprintf(want, sizeof want, "histogram of 6 images from " OUT "/tree, %lld pixels a channel, mean ", (long long)expect_pixels);
    CHECK(rc == 0 && strstr(log_, want) && strstr(log_, "rank 0: images 0..5 (6)"), "03 over the tree, one process (want \"%s\"):\n%s", want, log_);
    CHECK(hist_ok(OUT "/h1.npy"), "03's histogram holds the pixel values of the 6 images (%lld pixels each channel)", (long long)expect_pixels);
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
        rc = run("/usr/bin/python3 -c \"import numpy as np; h = np.load(\\\"" OUT "/h1.npy\\\"); print(h.dtype, h.shape, h.sum(1).tolist())\"");
        snprintf(want, sizeof want, "int32 (3, 256) [%lld, %lld, %lld]", (long long)expect_pixels, (long long)expect_pixels, (long long)expect_pixels);
        CHECK(rc == 0 && strstr(log_, want), "numpy reads the histogram (want %s):\n%s", want, log_);
    } else printf("  skip: numpy not found at /usr/bin/python3\n");
    rc = run(ENV OUT "/03_histogram --data " OUT "/tree --out " OUT "/g.npy --channels 1 --limit 2");
    sdl_tensor *g = sdl_load_npy(OUT "/g.npy");
    int64_t sum = 0;
    for (int i = 0; g && i < g->numel; i++) sum += sdl_i32(g)[i];
    CHECK(rc == 0 && strstr(log_, "histogram of 2 images") && g && g->shape[0] == 1 && sum == 5 * 7 + 6 * 7, "03 --channels 1 --limit 2: %lld pixels:\n%s",
          (long long)sum, log_); /* a/p0.png 5x7 and a/p1.png 6x7 */
    sdl_tensor_free(g);
    FILE *f = fopen(OUT "/tree/b/bad.png", "wb");
    if (f) fputs("\x89PNG but not really", f), fclose(f);
    CHECK(run(ENV OUT "/03_histogram --data " OUT "/tree --out " OUT "/x.npy") != 0 && strstr(log_, "b/bad.png"), "a corrupt image is named:\n%s", log_);
    remove(OUT "/tree/b/bad.png");
    CHECK(run(ENV OUT "/03_histogram --data " OUT "/no_such_dir") != 0 && strstr(log_, "no_such_dir"), "a missing folder is named:\n%s", log_);

    bool python = have("python3"), mpirun = have("mpirun");
    if (python) { /* the tree in a ZIP, with a folder entry and macOS's ._ junk beside an image */
        rc = run("cd " OUT " && rm -f tree.zip && python3 -c \"import os, zipfile\nz = zipfile.ZipFile(\\\"tree.zip\\\", \\\"w\\\", zipfile.ZIP_DEFLATED)\n"
                 "z.writestr(\\\"tree/a/\\\", b\\\"\\\")\nz.writestr(\\\"__MACOSX/tree/a/._p0.png\\\", b\\\"junk\\\")\n"
                 "[z.write(os.path.join(r, f)) for r, d, fs in os.walk(\\\"tree\\\") for f in sorted(fs)]\nz.close()\"");
        CHECK(rc == 0, "python3 writes the ZIP:\n%s", log_);
        rc = run(ENV OUT "/03_histogram --zip " OUT "/tree.zip --out " OUT "/z1.npy");
        CHECK(rc == 0 && strstr(log_, "histogram of 6 images from " OUT "/tree.zip") && same_file(OUT "/h1.npy", OUT "/z1.npy"),
              "03 over the ZIP: the same histogram as over the tree:\n%s", log_);
        CHECK(run(ENV OUT "/03_histogram --zip " OUT "/no_such.zip") != 0 && strstr(log_, "no_such.zip"), "a missing ZIP is named:\n%s", log_);
        /* sdl_decode_image: the ZIP's member decodes as the file does */
        sdl_zip *z = sdl_zip_open(OUT "/tree.zip");
        int64_t i = z ? sdl_zip_find(z, "tree/b/rgb.jpg") : -1;
        size_t n = 0;
        uint8_t *bytes = i >= 0 ? sdl_zip_read(z, i, &n) : NULL;
        sdl_tensor *a = bytes ? sdl_decode_image(bytes, n, 3, "rgb.jpg in tree.zip") : NULL, *b = sdl_load_image(OUT "/tree/b/rgb.jpg", 3);
        CHECK(a && b && a->numel == b->numel && !memcmp(a->data, b->data, (size_t)a->numel), "sdl_decode_image = sdl_load_image: %s", sdl_last_error());
        CHECK(!sdl_decode_image(bytes, n > 20 ? 20 : n, 3, "cut.jpg") && strstr(sdl_last_error(), "cut.jpg"), "a cut JPEG: %s", sdl_last_error());
        CHECK(!sdl_decode_image("GIF89a", 6, 0, NULL) && strstr(sdl_last_error(), "image: not a PNG or JPEG"), "GIF: %s", sdl_last_error());
        CHECK(!sdl_decode_image(bytes, n, 5, "x") && sdl_last_result() == SDL_ERR_ARG, "5 channels: %s", sdl_last_error());
        sdl_tensor_free(a), sdl_tensor_free(b), sdl_bytes_free(bytes), sdl_zip_close(z);
    } else printf("  skip: the ZIP runs (python3 not found)\n");
    if (!mpirun) { printf("  skip: 03 on 2 ranks (mpirun not found)\n"); return; }
    rc = run(MPIRUN "-np 2 " OUT "/03_histogram --data " OUT "/tree --out " OUT "/h2.npy");
    CHECK(rc == 0 && strstr(log_, "rank 0: images 0..2 (3)") && strstr(log_, "rank 1: images 3..5 (3)") && strstr(log_, "on 2 ranks") &&
          same_file(OUT "/h1.npy", OUT "/h2.npy"), "03 on 2 ranks: contiguous shares, the same histogram:\n%s", log_);
    if (!python) return;
    rc = run(MPIRUN "-np 2 " OUT "/03_histogram --zip " OUT "/tree.zip --out " OUT "/z2.npy");
    CHECK(rc == 0 && strstr(log_, "rank 1: images 3..5 (3)") && same_file(OUT "/h1.npy", OUT "/z2.npy"), "03 over the ZIP on 2 ranks:\n%s", log_);
}

/* ---- 09 and 24: shards ---- */
/* 4 shards of 48 grey 28x28 images whose brightness tells the label (a net learns it fast) */
static bool make_shards(void) {
    sdl_dataset d = {192, 1, 28, 28, 10, NULL, NULL};
    d.images = (uint8_t *)calloc(192 * 784, 1), d.labels = (int32_t *)calloc(192, sizeof(int32_t));
    for (int i = 0; d.images && d.labels && i < 192; i++) {
        d.labels[i] = (i * 7) % 10;
        for (int k = 0; k < 784; k++) d.images[i * 784 + k] = (uint8_t)(d.labels[i] * 20 + (k * 13 + i) % 40);
    }
    bool ok = d.images && d.labels && system("rm -rf " OUT "/shards && mkdir -p " OUT "/shards") == 0 && sdl_write_shards(&d, OUT "/shards/s", 48) == SDL_OK;
    free(d.images), free(d.labels);
    return ok;
}

static void test_pipeline(void) {
    if (!(built09 = build("09_data_pipeline", true))) return;
    const char *base = ENV OUT "/09_data_pipeline --data \"" SHARDS "\" --batch-size 16 --epochs 3";
    char a[256], b[256];
    int rc = run("%s --prefetch 3 --workers 2", base);
    line_of(log_, "epoch 1/3: ", " |", a, sizeof a);
    double l1 = field(log_, "epoch 1/3: loss "), l3 = field(log_, "epoch 3/3: loss ");
    CHECK(rc == 0 && strstr(log_, "192 samples, 1 ranks x batch 16, 2 workers, prefetch 3") && strstr(log_, "acc ") &&
          strstr(strstr(log_, "epoch 3/3") ? strstr(log_, "epoch 3/3") : "", "images 192 | load ") && field(log_, "total images/sec: ") > 0,
          "09: three epochs of 192 images:\n%s", log_);
    CHECK(l1 > 0 && l3 >= 0 && l3 < l1, "09: the loss falls (%.4f -> %.4f)", l1, l3);
    CHECK(strstr(log_, "compute ") && strstr(log_, "comm ") && strstr(log_, " images/s"), "09 splits the time:\n%s", log_);
    rc = run("%s --prefetch 0 --workers 2", base);
    line_of(log_, "epoch 1/3: ", " |", b, sizeof b);
    CHECK(rc == 0 && a[0] && !strcmp(a, b), "09: the same batches without prefetching:\n%s\n%s", a, b);
    rc = run("%s --shuffle-buffer 0", base);
    line_of(log_, "epoch 1/3: ", " |", b, sizeof b);
    CHECK(rc == 0 && b[0] && strcmp(a, b) != 0, "09: the shuffle buffer changes the order:\n%s\n%s", a, b);
    rc = run("%s --cache", base);
    CHECK(rc == 0 && strstr(log_, "cache in RAM") && strstr(log_, "epoch 3/3: loss ") && strstr(log_, "images 192 | load "), "09 --cache:\n%s", log_);
    CHECK(run("%s --prefetch -1", base) == 2 * 256 && strstr(log_, "--prefetch: 0 or more"), "09 refuses --prefetch -1:\n%s", log_);
    CHECK(run(ENV OUT "/09_data_pipeline --data " OUT "/none-{000000..000001}.tar") != 0 && strstr(log_, "none-000000.tar"), "09: missing shards named:\n%s", log_);
    if (!have("mpirun")) { printf("  skip: 09 on 2 ranks (mpirun not found)\n"); return; }
    rc = run(MPIRUN "-np 2 %s", base + strlen(ENV));
    CHECK(rc == 0 && strstr(log_, "2 ranks x batch 16") && strstr(log_, "epoch 3/3: loss ") && strstr(log_, "images 192 | load ") &&
          !strstr(strstr(log_, "epoch 1/3") ? strstr(log_, "epoch 1/3") + 1 : log_, "epoch 1/3"), "09 on 2 ranks (rank 0 prints once):\n%s", log_);
}

static void test_webdataset(void) {
    if (!build("24_webdataset", false)) return;
    int rc = run(ENV OUT "/24_webdataset --data \"" SHARDS "\" --batch-size 16 --epochs 2 --steps-per-epoch 3");
    CHECK(rc == 0 && strstr(log_, "192 samples of 1x28x28, batch 16, 3 steps an epoch, from the shards") && strstr(log_, "loader alone: 48 images in ") &&
          strstr(log_, "epoch 2/2: loss ") && strstr(log_, "waiting for batches") && strstr(log_, "training: ") && field(log_, "total images/sec: ") > 0,
          "24 from the shards:\n%s", log_);
    rc = run(ENV OUT "/24_webdataset --data \"" SHARDS "\" --batch-size 16 --epochs 1 --mock");
    CHECK(rc == 0 && strstr(log_, "12 steps an epoch, mock loader (no I/O)") && !strstr(log_, "loader alone") && strstr(log_, "on the mock loader") &&
          field(log_, "total images/sec: ") > 0, "24 --mock:\n%s", log_);
    /* colour images of another size: the all-conv net takes them as they are */
    sdl_dataset d = {20, 3, 12, 10, 10, NULL, NULL};
    d.images = (uint8_t *)calloc(20 * 360, 1), d.labels = (int32_t *)calloc(20, sizeof(int32_t));
    for (int i = 0; d.images && d.labels && i < 20 * 360; i++) d.images[i] = (uint8_t)(i * 7), d.labels[i / 360] = i / 360 % 10;
    CHECK(d.images && d.labels && sdl_write_shards(&d, OUT "/shards/rgb", 10) == SDL_OK, "rgb shards: %s", sdl_last_error());
    free(d.images), free(d.labels);
    rc = run(ENV OUT "/24_webdataset --data \"" OUT "/shards/rgb-{000000..000001}.tar\" --batch-size 4 --epochs 1");
    CHECK(rc == 0 && strstr(log_, "20 samples of 3x12x10, batch 4, 5 steps an epoch") && strstr(log_, "loader alone: 20 images"), "24 on 3x12x10 images:\n%s", log_);
    CHECK(run(ENV OUT "/24_webdataset --data " OUT "/none.tar") == 2 * 256 && strstr(log_, "none.tar"), "24: missing shards named:\n%s", log_);
}

/* make_data.py on 50 Fashion-MNIST images: the tree, the ZIP and the shard it writes feed 03 and 09 */
static void test_make_data(void) {
    FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb");
    if (f) fclose(f);
    if (!f || system("/usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null") != 0) {
        printf("  skip: make_data.py needs numpy and PIL at /usr/bin/python3 and %s\n", FASHION);
        return;
    }
    int rc = run("rm -rf " OUT "/md && /usr/bin/python3 " TUT "make_data.py " OUT "/md 50");
    CHECK(rc == 0 && strstr(log_, "50 images: "), "make_data.py:\n%s", log_);
    if (built03) {
        rc = run(ENV OUT "/03_histogram --data " OUT "/md/fashion --out " OUT "/md/t.npy && " ENV OUT "/03_histogram --zip " OUT "/md/fashion.zip --out " OUT "/md/z.npy");
        CHECK(rc == 0 && strstr(log_, "histogram of 50 images from " OUT "/md/fashion, 39200 pixels") &&
              strstr(log_, "histogram of 50 images from " OUT "/md/fashion.zip, 39200 pixels") && same_file(OUT "/md/t.npy", OUT "/md/z.npy"),
              "03 on make_data's tree and ZIP:\n%s", log_);
    }
    if (built09) {
        rc = run(ENV OUT "/09_data_pipeline --data " OUT "/md/shards/fashion-000000.tar --batch-size 10 --epochs 1");
        CHECK(rc == 0 && strstr(log_, "09_data_pipeline: 50 samples") && strstr(log_, "images 50 | load "), "09 on make_data's shard:\n%s", log_);
    }
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    CHECK(system("mkdir -p " OUT) == 0, "mkdir " OUT);
    RUN(test_histogram);
    CHECK(make_shards(), "the test shards: %s", sdl_last_error());
    RUN(test_pipeline);
    RUN(test_webdataset);
    RUN(test_make_data);
    return sdl_test_finish();
}
