/* test_tutorials_par.c - the syllabus's model-parallel and fault-tolerance tutorials, each
   run briefly under mpirun and checked against a run that does not use the idea:
     18_zero      --zero 1, 2, 3 print --zero 0's epoch line (the loss, accuracies), and the
                  bytes a rank holds match the formula (parameters, gradients, momentum: P or
                  P/N floats each by stage) computed here from the printed P, and
                  sdl_mpi_zero_bytes adds at most its two buckets to it
     19_pipeline  2 stages x 4 micro-batches print the epoch line of 06_allconv (one process,
                  no pipeline): the pipeline's gradients are the whole batch's
     20_elastic   killed after update 7 on 2 ranks (checkpoints every 5) and resumed by
                  tools/sdl_elastic.sh on 1 rank with 2 micro-batches per update, its final
                  line equals an uninterrupted 2-rank run's
     07           on 2 ranks prints what 06 prints with the global batch and rate (the
                  gradients are averaged: sdl_mpi_ddp_sync before each step)
   Each also builds warning-free as C99 with mpicc and parses as C++17 (what nvcc compiles).
   The tutorials are linked against tests/run.sh's library objects (run alone, each compiles
   the implementation itself, the one-file build). Without mpicc/mpirun or Fashion-MNIST the
   runs are skipped. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdarg.h>

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-tutorials-par"
#define TUT "examples/tutorials/"
#define MPIRUN "SDL_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe "

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
static bool have_data(void) { FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb"); if (f) fclose(f); return f != NULL; }
static double field(const char *text, const char *key) { const char *p = strstr(text, key); return p ? atof(p + strlen(key)) : -1.0; }
/* the first line of text starting with prefix, up to (not with) `end` if found in it, else the whole line */
static void line_of(const char *text, const char *prefix, const char *end, char *out, size_t cap) {
    const char *p = strstr(text, prefix), *nl = p ? strchr(p, '\n') : NULL, *e = p && end ? strstr(p, end) : NULL;
    if (nl && (!e || e > nl)) e = nl;
    size_t n = p && e && (size_t)(e - p) < cap ? (size_t)(e - p) : 0;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
}

static const char *const tuts[] = {"18_zero", "19_pipeline", "20_elastic"};
static bool g_built;

static void test_rules(void) {
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, TUT "%s.c", tuts[i]);
        sdl_test_tutorial_rules(path);
    }
}

static void test_build(void) {
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    for (int i = 0; i < 3; i++) /* the one-file build, as a student compiles it */
        CHECK(run("mpicc -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE -I. " TUT "%s.c", tuts[i]) == 0, "%s parses as C++17:\n%s", tuts[i], log_);
    const char *all[] = {"18_zero", "19_pipeline", "20_elastic", "07_allconv_ddp", "06_allconv"};
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        int rc = run("mpicc -std=c99 -O1 -Wall -Wextra -Werror -I. " TUT "%s.c %s -o " OUT "/%s -lm -lpthread", all[i],
                     sdl_test_tutorial_link(1), all[i]);
        CHECK(rc == 0, "%s builds with mpicc -std=c99:\n%s", all[i], log_);
        ok += rc == 0;
    }
    g_built = ok == 5;
}

/* the epoch line of --zero 0 (07's data parallel) against stages 1-3; the bytes per rank */
static void test_zero(void) {
    char ref[256] = "", got[256];
    for (int zero = 0; zero <= 3; zero++) {
        int rc = run(MPIRUN "-np 2 " OUT "/18_zero --epochs 1 --limit 640 --steps-per-epoch 4 --zero %d", zero);
        line_of(log_, "epoch 1/1: loss ", " time", got, sizeof got);
        if (zero == 0) memcpy(ref, got, sizeof ref);
        CHECK(rc == 0 && got[0] && !strcmp(got, ref), "--zero %d prints --zero 0's line\n--zero 0: %s\n--zero %d (exit %d):\n%s", zero, ref, zero, rc, log_);
        /* P floats; a rank's shard S = P/2 (SGD: even cuts); momentum one float each */
        double P = field(log_, "18_zero: "), S = P / 2, N = 2;
        double want[3] = {4 * (zero == 3 ? S : P), 4 * (zero >= 2 ? S : P), 4 * (zero >= 1 ? S : P)}, sum = want[0] + want[1] + want[2];
        double held = field(log_, "x DDP's ("), bucket = 4.0 * (double)(int64_t)(0.01 * 1048576 / 4);
        CHECK(P > 20000 && field(log_, "per rank: parameters ") == want[0] && field(log_, "gradients ") == want[1] && field(log_, "momentum ") == want[2],
              "--zero %d: the bytes per rank are P = %.0f floats each, or P/%.0f:\n%s", zero, P, N, log_);
        CHECK(fabs(field(log_, " = ") - sum) < 0.5, "--zero %d: the sum %.0f:\n%s", zero, sum, log_);
        CHECK(zero == 0 || (held >= sum && held <= sum + 2 * bucket), "--zero %d: sdl_mpi_zero_bytes %.0f is the formula's %.0f plus at most two "
              "buckets of %.0f bytes", zero, held, sum, bucket);
        if (zero == 3) CHECK(fabs(sum - 12 * P / N) < 8, "ZeRO-3 holds 12P/N bytes per rank: %.0f, want %.0f", sum, 12 * P / N);
    }
    CHECK(run(MPIRUN "-np 2 " OUT "/18_zero --zero 4") != 0, "--zero 4 is refused");
}

/* the pipeline against one process on whole batches (06), and the bubble lines */
static void test_pipeline(void) {
    char ref[256], got[256];
    int rc = run("SDL_NUM_THREADS=1 " OUT "/06_allconv --epochs 1 --limit 640 --steps-per-epoch 5");
    line_of(log_, "epoch 1/1: loss ", " time", ref, sizeof ref);
    CHECK(rc == 0 && ref[0], "06 trains:\n%s", log_);
    rc = run(MPIRUN "-np 2 " OUT "/19_pipeline --epochs 1 --limit 640 --steps-per-epoch 5 --micro-batches 4");
    line_of(log_, "epoch 1/1: loss ", " time", got, sizeof got);
    CHECK(rc == 0 && !strcmp(got, ref), "19 on 2 stages prints 06's line\n06: %s\n19 (exit %d):\n%s", ref, rc, log_);
    CHECK(strstr(log_, "2 stages, batch 64 = 4 micro-batches of 16") && strstr(log_, "stage 0 (layers 0-") && strstr(log_, "stage 1 (layers ") &&
          fabs(field(log_, "(S-1)/(M+S-1) = ") - 0.2) < 1e-9 && field(log_, "total images/sec: ") > 0, "19's stages and bubble:\n%s", log_);
    double idle = field(log_, "idle ");
    CHECK(idle >= 0.0 && idle < 1.0, "stage 0's idle share %g is a share", idle);
    CHECK(run(MPIRUN "-np 2 " OUT "/19_pipeline --epochs 1 --limit 640 --steps-per-epoch 1 --micro-batches 3") != 0 &&
          (strstr(log_, "does not split into 3 micro-batches") || strstr(log_, "another stage's input is bad")),
          "19: a batch that M does not divide is an error (stage 0 names it, the other stage says so):\n%s", log_);
}

/* stopped and resumed at another world size: the same final line as a run never stopped */
static void test_elastic(void) {
    const char *flags = "--epochs 2 --limit 640 --global-batch 64 --batch-size 32 --checkpoint-every 5";
    char ref[256], got[256];
    remove(OUT "/a.safetensors");
    remove(OUT "/b.safetensors");
    int rc = run(MPIRUN "-np 2 " OUT "/20_elastic %s --checkpoint " OUT "/a.safetensors", flags);
    line_of(log_, "final: ", NULL, ref, sizeof ref);
    CHECK(rc == 0 && strstr(ref, "after 20 updates") && !strstr(log_, "resumed"), "20 uninterrupted, 20 updates:\n%s", log_);
    rc = run("SDL_NUM_THREADS=1 SDL_LAUNCHER=\"mpirun --allow-run-as-root --oversubscribe\" tools/sdl_elastic.sh --np 2 -- " OUT
             "/20_elastic %s --checkpoint " OUT "/b.safetensors --stop-after 7", flags);
    line_of(log_, "final: ", NULL, got, sizeof got);
    CHECK(rc == 0 && strstr(log_, "attempt 1 (np 2) exited with") && strstr(log_, "attempt 2 with 1 ranks") &&
          strstr(log_, "1 ranks x batch 32 x 2 micro-batches = 64 images per update") && strstr(log_, "resumed: epoch 1 after 320 images, update 5"),
          "20 killed after update 7 on 2 ranks, resumed from update 5 on 1:\n%s", log_);
    CHECK(got[0] && !strcmp(got, ref), "the resumed run ends as the uninterrupted one\nuninterrupted: %s\nresumed: %s", ref, got);
    CHECK(run(MPIRUN "-np 2 " OUT "/20_elastic --global-batch 96 --batch-size 64") != 0 && strstr(log_, "--global-batch"),
          "20 refuses a global batch that ranks x batch does not divide:\n%s", log_);
}

/* 07 on 2 ranks = 06 with twice the batch and rate: the gradients are the mean over ranks */
static void test_ddp(void) {
    char ref[256], got[256];
    int rc = run("SDL_NUM_THREADS=1 " OUT "/06_allconv --epochs 1 --limit 640 --steps-per-epoch 3 --batch-size 128 --lr 0.1");
    line_of(log_, "epoch 1/1: loss ", " time", ref, sizeof ref);
    CHECK(rc == 0 && ref[0], "06 with batch 128:\n%s", log_);
    rc = run(MPIRUN "-np 2 " OUT "/07_allconv_ddp --epochs 1 --limit 640 --steps-per-epoch 3");
    line_of(log_, "epoch 1/1: loss ", " time", got, sizeof got);
    CHECK(rc == 0 && !strcmp(got, ref), "07 on 2 ranks x 64 at lr 0.05 x 2 prints 06's line at batch 128, lr 0.1\n06: %s\n07: %s\n%s", ref, got, log_);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    RUN(test_rules);
    if (!have("mpicc") || !have("mpirun")) {
        printf("  skip: the builds and runs (mpicc/mpirun not found: apt-get install libopenmpi-dev openmpi-bin)\n");
        return sdl_test_finish();
    }
    RUN(test_build);
    if (!have_data()) {
        printf("  skip: the runs (%s not installed: apt-get install dataset-fashion-mnist)\n", FASHION);
        return sdl_test_finish();
    }
    if (!g_built) return sdl_test_finish();
    RUN(test_zero);
    RUN(test_pipeline);
    RUN(test_elastic);
    RUN(test_ddp);
    return sdl_test_finish();
}
