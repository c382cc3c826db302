/* test_tutorials_syllabus.c - the syllabus tutorials (examples/tutorials/14, 17, 21, 22) keep
   the ladder's rules (at most 120 lines, no #if, C++17 and mpicc compile them warning-free),
   build, and a short run of each is checked against something the test works out itself:
   14's loss falls below ln(V) of the text the test wrote, and it samples; 17 on the CPU
   says mixed precision needs CUDA, and its scaled run prints f32's numbers (a power-of-two
   scale is exact) with the scale doubled once per growth interval; 21 gives each client
   its 2 shards (n / K images), the test accuracy rises, and one process with K clients
   prints what K ranks print; 22 on 2 and 3 ranks writes the same predictions file as on
   1, in dataset order, and its accuracy is the file's. Also sdl_autocast on the CPU.
   Compiles with $CC (default cc) and mpicc; without mpicc/mpirun the MPI ones are skipped,
   without Fashion-MNIST the runs that need it. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdarg.h>

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-tutorials-syllabus"
#define ENV "SDL_NUM_THREADS=1 "
#define MPIRUN ENV "mpirun --allow-run-as-root --oversubscribe "

static const char *cc(void) { const char *c = getenv("CC"); return c && *c ? c : "cc"; }
static char log_[1 << 15];

/* runs the command (printf-style) with stdout and stderr into OUT/log; returns the exit
   status, the text in log_ */
static int run(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return sdl_test_run_log(cmd, OUT "/log", log_, sizeof log_);
}
static bool have(const char *tool) { char c[128]; snprintf(c, sizeof c, "command -v %s >/dev/null 2>&1", tool); return system(c) == 0; }
static bool have_data(void) { FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb"); if (f) fclose(f); return f != NULL; }
static double field(const char *text, const char *key) { const char *p = strstr(text, key); return p ? atof(p + strlen(key)) : -1.0; }

/* the whole file into a malloc'd string (NULL if it cannot be read) */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    char *s = (char *)malloc(n + 1);
    if (s) memcpy(s, buf, n), s[n] = 0;
    return s;
}

/* the rules, then builds examples/tutorials/<name>.c into OUT/<name> with $CC or (mpi)
   mpicc; false if it does not build (or mpicc is missing: a skip) */
static bool build(const char *name, bool mpi) {
    char path[256];
    snprintf(path, sizeof path, "examples/tutorials/%s.c", name);
    sdl_test_tutorial_rules(path);
    if (mpi && !have("mpicc")) { printf("  skip: %s needs mpicc\n", name); return false; }
    CHECK(run("g++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE -I. %s %s", mpi ? "`mpicc --showme:compile`" : "", path) == 0,
          "%s compiles as C++17:\n%s", name, log_);
    if (!mpi && have("mpicc")) CHECK(run("mpicc -std=c99 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -I. %s", path) == 0, "%s compiles with mpicc:\n%s", name, log_);
    int rc = run("%s -std=c99 -O1 -Wall -Wextra -Werror -I. %s %s -o " OUT "/%s -lm -lpthread", mpi ? "mpicc" : cc(), path, sdl_test_tutorial_link(mpi), name);
    CHECK(rc == 0, "%s builds:\n%s", name, log_);
    return rc == 0;
}

static void test_autocast_cpu(void) {
    CHECK(sdl_autocast(SDL_CPU, SDL_F32) == SDL_OK, "f32 on the CPU is a no-op: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_CPU, SDL_BF16) == SDL_ERR_DEVICE && strstr(sdl_last_error(), "CPU computes in f32 only (no bf16 GEMMs)"),
          "bf16 on the CPU: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_DEVICE_DEFAULT, SDL_F16) == SDL_ERR_DEVICE && strstr(sdl_last_error(), "no f16 GEMMs"), "f16: %s", sdl_last_error());
    CHECK(sdl_autocast(SDL_CPU, SDL_U8) == SDL_ERR_ARG && strstr(sdl_last_error(), "u8 is not f32, bf16 or f16"), "u8: %s", sdl_last_error());
    sdl_clear_error();
}

static void test_transformer(void) {
    if (!build("14_transformer_lm", false)) return;
    CHECK(run(OUT "/14_transformer_lm --temperature 0") != 0 && strstr(log_, "--temperature must be > 0"), "temperature 0 is refused:\n%s", log_);
    FILE *f = fopen(OUT "/text.txt", "w"); /* a small text of its own, so the test needs no Debian file */
    for (int i = 0; f && i < 200; i++) fprintf(f, "The cat sat on the mat. A dog ate the hat %d times.\n", i % 7);
    if (f) fclose(f);
    char *text = slurp(OUT "/text.txt");
    int seen[256] = {0}, vocab = 0;
    for (const char *p = text; p && *p; p++) vocab += !seen[(unsigned char)*p]++;
    free(text);
    int rc = run(OUT "/14_transformer_lm --data " OUT "/text.txt --steps 40 --print-every 10 --batch-size 8 --seq-len 32 --lr 0.01 --length 60");
    double uniform = log((double)vocab), first = field(log_, "step 10/40: loss "), last = field(log_, "step 40/40: loss ");
    CHECK(rc == 0 && fabs(field(log_, ") = ") - uniform) < 1e-3, "it reports ln(V) = ln(%d) = %.3f (rc %d):\n%s", vocab, uniform, rc, log_);
    CHECK(first > 0.0 && first < uniform && last > 0.0 && last < first - 0.3,
          "the loss falls below ln(V) = %.3f: %.4f at step 10, %.4f at step 40:\n%s", uniform, first, last, log_);
    const char *s = strstr(log_, "sample (temperature 0.8):\nThe ");
    size_t n = s ? strlen(s + strlen("sample (temperature 0.8):\nThe ")) : 0;
    CHECK(s && n >= 60, "60 sampled bytes after the prime:\n%s", log_);
}

static void test_mixed_precision(void) {
    if (!build("17_mixed_precision", false) || !have_data()) return;
    CHECK(run(OUT "/17_mixed_precision --precision fp8") == 2 * 256 && strstr(log_, "--precision fp8: fp16 or bf16"), "a bad --precision:\n%s", log_);
    int rc = run(ENV OUT "/17_mixed_precision --epochs 2 --limit 640 --steps-per-epoch 6 --growth-interval 4");
    CHECK(rc == 0 && strstr(log_, "cpu: autocast: the CPU computes in f32 only (no f16 GEMMs); mixed precision runs on CUDA") &&
          strstr(log_, "so the fp16 run below computes in f32, with the loss scaler"), "the CPU run says mixed precision needs CUDA (rc %d):\n%s", rc, log_);
    /* 12 good updates with growth interval 4: 65536 doubled 3 times; scale 2^k is exact, so f32's numbers */
    CHECK(strstr(log_, "time ") && strstr(log_, "| scale 131072, 0 updates skipped\n") && strstr(log_, "| scale 524288, 0 updates skipped\n"),
          "the scale doubles every 4 good updates:\n%s", log_);
    for (int e = 1; e <= 2; e++) {
        char key[32], a[128] = "", b[128] = "";
        snprintf(key, sizeof key, "epoch %d/2: loss ", e);
        const char *p = strstr(log_, key), *q = p ? strstr(p + 1, key) : NULL;
        if (p) sscanf(p, "epoch %*d/2: loss %127[^t]", a);
        if (q) sscanf(q, "epoch %*d/2: loss %127[^t]", b);
        CHECK(p && q && a[0] && !strcmp(a, b), "epoch %d: the scaled run prints f32's loss and accuracy: '%s' vs '%s'", e, a, b);
    }
    double f32 = field(log_, "final val_loss: f32 "), f16 = field(log_, ", fp16 ");
    CHECK(f32 > 0.0 && fabs(f16 - f32) < 1e-4, "final val_loss f32 %.4f, fp16 %.4f", f32, f16);
}

static void test_fedavg(void) {
    if (!build("21_fedavg", true) || !have_data()) return;
    if (!have("mpirun")) { printf("  skip: mpirun not found\n"); return; }
    const char *flags = "--rounds 3 --clients 4 --limit 2000";
    int rc = run(MPIRUN "-np 2 " OUT "/21_fedavg %s", flags);
    static char two[1 << 15];
    memcpy(two, log_, sizeof two);
    const char *r1 = strstr(two, "round 1/3: "), *r3 = strstr(two, "round 3/3: ");
    double a1 = r1 ? field(r1, "test acc ") : -1, a3 = r3 ? field(r3, "test acc ") : -1;
    CHECK(rc == 0 && strstr(two, "21_fedavg: 4 clients on 2 ranks") && a1 > 0.0 && a3 > a1, "the test accuracy rises: %.4f -> %.4f (rc %d):\n%s", a1, a3, rc, two);
    for (int k = 0; k < 4; k++) { /* 2000 images sorted by label, 8 shards of 250, two per client */
        char key[64];
        snprintf(key, sizeof key, "client %d: 500 images, by class:", k);
        const char *p = strstr(two, key);
        int c[10] = {0}, sum = 0;
        if (p) sscanf(p + strlen(key), "%d %d %d %d %d %d %d %d %d %d", c, c + 1, c + 2, c + 3, c + 4, c + 5, c + 6, c + 7, c + 8, c + 9);
        for (int i = 0; i < 10; i++) sum += c[i];
        CHECK(p && sum == 500, "client %d holds 500 images, its class counts add up (%d):\n%s", k, sum, two);
    }
    CHECK(strstr(two, "round 2/3: ") && strstr(strstr(two, "round 2/3: "), ", 2000 images, "), "every round averages all 2000 images:\n%s", two);
    rc = run(ENV OUT "/21_fedavg %s", flags);
    const char *o1 = strstr(log_, "round 1/3: "), *e1 = o1 ? strstr(o1, "time: ") : NULL, *e2 = r1 ? strstr(r1, "time: ") : NULL;
    CHECK(rc == 0 && o1 && e1 && e2 && e1 - o1 == e2 - r1 && !strncmp(o1, r1, (size_t)(e1 - o1)),
          "one process with 4 clients prints what 2 ranks print:\n%s\n2 ranks:\n%s", log_, two);
}

static void test_parallel_inference(void) {
    if (!build("22_parallel_inference", true) || !have_data()) return;
    if (!have("mpirun")) { printf("  skip: mpirun not found\n"); return; }
    remove(OUT "/fc.safetensors");
    const char *flags = "--limit 2000 --epochs 1 --checkpoint " OUT "/fc.safetensors";
    int rc = run(ENV OUT "/22_parallel_inference %s --out " OUT "/p1.csv", flags);
    double acc1 = field(log_, "test accuracy ");
    CHECK(rc == 0 && strstr(log_, "trained 1 epochs on 2000 images, saved " OUT "/fc.safetensors") && acc1 > 0.5,
          "one process trains, saves and classifies (acc %.4f, rc %d):\n%s", acc1, rc, log_);
    char *p1 = slurp(OUT "/p1.csv");
    sdl_dataset test;
    bool loaded = sdl_load_fashion_mnist(FASHION, false, &test) == SDL_OK;
    int64_t rows = 0, right = 0, in_order = 0;
    for (const char *p = p1; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        long long i;
        int pred, label;
        if (sscanf(p, "%lld,%d,%d", &i, &pred, &label) != 3) break;
        in_order += loaded && i == rows && label == test.labels[rows];
        right += pred == label, rows++;
    }
    CHECK(rows == 2000 && in_order == 2000, "p1.csv: %lld rows, %lld in dataset order with the dataset's labels", (long long)rows, (long long)in_order);
    CHECK(fabs(acc1 - (double)right / 2000.0) < 1e-4, "the accuracy printed (%.4f) is the file's (%lld / 2000)", acc1, (long long)right);
    for (int np = 2; np <= 3; np++) {
        char out[128];
        snprintf(out, sizeof out, OUT "/p%d.csv", np);
        remove(out);
        rc = run(MPIRUN "-np %d " OUT "/22_parallel_inference %s --out %s", np, flags, out);
        const char *shares = np == 2 ? "2 ranks, images per rank: 1000 1000\n" : "3 ranks, images per rank: 666 667 667\n";
        char *pn = slurp(out);
        CHECK(rc == 0 && !strstr(log_, "trained ") && strstr(log_, shares) && fabs(field(log_, "test accuracy ") - acc1) < 1e-9,
              "np %d loads the checkpoint, splits 2000 images as '%s' and gets the same accuracy (rc %d):\n%s", np, shares, rc, log_);
        CHECK(p1 && pn && !strcmp(p1, pn), "np %d writes the same predictions file as one process", np);
        free(pn);
    }
    free(p1);
    if (loaded) sdl_dataset_free(&test);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    RUN(test_autocast_cpu);
    RUN(test_transformer);
    if (!have_data()) printf("  skip: the Fashion-MNIST runs (%s not installed: apt-get install dataset-fashion-mnist)\n", FASHION);
    RUN(test_mixed_precision);
    RUN(test_fedavg);
    RUN(test_parallel_inference);
    return sdl_test_finish();
}
