/* test_tutorials_resnet.c - examples/tutorials/10_resnet.c (JSC day 4) and its large-batch study:
   both programs keep the ladder's rules (at most 120 lines, no #if) and build warning-free as C99
   ($CC), with mpicc and as C++17; a bad --depth, --optimizer or --lr_scheduler and a batch larger
   than the data exit non-zero naming what is wrong; short runs with SGD, LARS and LAMB and each
   schedule print their lines with sane numbers and the rates the flags ask for (linear rescaling,
   step decay, warm-up, one-cycle); a longer SGD run learns; 10_large_batch.sh in a smoke setting
   writes its 12-row CSV and a decodable bar chart. Without Fashion-MNIST the runs are skipped. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-tutorials-resnet"
#define TUT "examples/tutorials/"
#define RESNET "SDL_NUM_THREADS=1 " OUT "/10_resnet --depth 8 --width 4 --limit 256 --epochs 1 --batch-size 16 --accum-steps 2 "

static const char *cc(void) { const char *c = getenv("CC"); return c && *c ? c : "cc"; }
static char log_[1 << 14];

/* runs cmd with stdout and stderr into OUT/log; returns the exit status, the text in log_ */
static int run(const char *cmd) {
    return sdl_test_run_log(cmd, OUT "/log", log_, sizeof log_);
}
static bool have_data(void) { FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb"); if (f) fclose(f); return f != NULL; }
static double field(const char *text, const char *key) { const char *p = strstr(text, key); return p ? atof(p + strlen(key)) : -1.0; }
static bool near(double a, double b) { return fabs(a - b) <= 1e-6 + 1e-4 * fabs(b); }

/* the rules, the C++17 and mpicc compiles, then TUT<name>.c linked against run.sh's implementation (run alone: the one-file build) */
static void build(const char *name) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, TUT "%s.c", name);
    sdl_test_tutorial_rules(cmd);
    snprintf(cmd, sizeof cmd, "g++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -I. " TUT "%s.c", name);
    CHECK(run(cmd) == 0, "%s compiles as C++17:\n%s", name, log_);
    if (system("command -v mpicc > /dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "mpicc -std=c99 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -I. " TUT "%s.c", name);
        CHECK(run(cmd) == 0, "%s compiles with mpicc:\n%s", name, log_);
    }
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -Wall -Wextra -Werror -I. " TUT "%s.c %s -o " OUT "/%s -lm -lpthread", cc(), name,
             sdl_test_tutorial_link(0), name);
    CHECK(run(cmd) == 0, "%s builds:\n%s", name, log_);
}

static void test_build(void) {
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    build("10_resnet");
    build("10_large_batch_plot");
}

static void test_bad_depth(void) { /* before the data is read */
    CHECK(run(OUT "/10_resnet --depth 9") != 0 && strstr(log_, "--depth 9: not 6n+2"), "depth 9 is refused:\n%s", log_);
    CHECK(run(OUT "/10_resnet --depth 2") != 0 && strstr(log_, "--depth 2: not 6n+2"), "depth 2 is refused:\n%s", log_);
    CHECK(run(OUT "/10_resnet --optimizer") != 0 && strstr(log_, "optimizer"), "a flag without its value:\n%s", log_);
}

static void test_bad_values(void) {
    CHECK(run(RESNET "--optimizer adamx") != 0 && strstr(log_, "optimizer 'adamx'"), "a bad optimizer is named:\n%s", log_);
    CHECK(run(RESNET "--lr_scheduler cosinus") != 0 && strstr(log_, "lr scheduler 'cosinus'"), "a bad scheduler is named:\n%s", log_);
    CHECK(run(RESNET "--accum-steps 32") != 0 && strstr(log_, "<= 256 images per update"), "a global batch over the data:\n%s", log_);
    CHECK(run(RESNET "--batch-size 1") != 0 && strstr(log_, "--batch-size >= 2"), "batch norm needs 2 images:\n%s", log_);
}

/* one short run (flags after RESNET's win); the base lr (header) and the lr at the end of epoch 1;
   false if a line is missing or a number is off */
static bool short_run(const char *flags, double *base, double *lr1) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, RESNET "%s", flags);
    int rc = run(cmd);
    const char *h = strstr(log_, "10_resnet: ResNet-8, "), *e = strstr(log_, "epoch 1/"), *fin = strstr(log_, "final: val_acc ");
    double loss = e ? field(e, ": loss ") : -1.0, acc = field(log_, "final: val_acc "), best = field(log_, "best_val_acc ");
    *base = field(log_, "updates/epoch, lr "), *lr1 = e ? field(e, " lr ") : -1.0;
    bool ok = rc == 0 && h && strstr(h, "global batch 32 = 2 x 16, 8 updates/epoch") && e && fin && loss > 0.5 && loss < 10.0 &&
              acc >= 0.0 && acc <= best && best <= 1.0 && *base > 0.0 && *lr1 > 0.0;
    CHECK(ok, "%s: the header, epoch and final lines with sane numbers (rc %d):\n%s", flags, rc, log_);
    return ok;
}

static void test_optimizers_and_schedules(void) {
    double base, last;
    if (short_run("--optimizer SGD --lr 0.1", &base, &last)) CHECK(near(base, 0.1) && near(last, 0.1), "SGD, none: lr 0.1 (%g, %g)", base, last);
    if (short_run("--optimizer LARS --lr 0.1 --enable_lr_rescaling", &base, &last)) /* 0.1 x 32 / 256 */
        CHECK(near(base, 0.0125) && near(last, 0.0125) && strstr(log_, "LARS"), "LARS, rescaled: lr 0.0125 (%g, %g)", base, last);
    if (short_run("--optimizer lamb", &base, &last)) CHECK(near(base, 0.001) && near(last, 0.001), "LAMB: its default lr 0.001 (%g, %g)", base, last);
    if (short_run("--lr 0.1 --lr_scheduler step_wise_decay", &base, &last)) /* 8 updates: x0.1 at update 4 and 6 */
        CHECK(near(base, 0.1) && near(last, 0.001), "step_wise_decay: 0.1 -> 0.001 (%g, %g)", base, last);
    if (short_run("--lr 0.1 --lr_scheduler step_wise_decay_with_warmup --epochs 4 --warmup-epochs 2", &base, &last)) /* 7 of 16 updates */
        CHECK(near(base, 0.1) && near(last, 0.1 * (0.1 + 0.9 * 7.0 / 16.0)), "warm-up: update 7 of 16 from 0.01 to 0.1 (%g, %g)", base, last);
    /* global batch 512: lr x2, the warm-up starts from the unscaled 0.1 (1 update per epoch, 2 of warm-up) */
    int rc = run(RESNET "--limit 512 --accum-steps 32 --epochs 8 --warmup-epochs 2 --lr 0.1 --enable_lr_rescaling --lr_scheduler step_wise_decay_with_warmup");
    base = field(log_, "updates/epoch, lr "), last = field(log_, "epoch 1/8: loss ") > 0 ? field(strstr(log_, "epoch 1/8: "), " lr ") : -1;
    double lr2 = strstr(log_, "epoch 2/8: ") ? field(strstr(log_, "epoch 2/8: "), " lr ") : -1;
    CHECK(rc == 0 && strstr(log_, "global batch 512 = 32 x 16, 1 updates/epoch") && near(base, 0.2) && near(last, 0.1) && near(lr2, 0.15),
          "rescaled warm-up: 0.1, 0.15, then 0.2 (%g, %g, base %g):\n%s", last, lr2, base, log_);
    if (short_run("--lr 0.1 --lr_scheduler clr", &base, &last)) CHECK(near(base, 0.1) && last < 0.1 / 25, "clr: ends low (%g, %g)", base, last);
}

static void test_learns(void) {
    int rc = run("SDL_NUM_THREADS=1 " OUT "/10_resnet --depth 8 --width 4 --limit 1024 --epochs 2 --batch-size 32 --lr 0.05");
    double acc = field(log_, "final: val_acc ");
    CHECK(rc == 0 && acc > 0.3, "ResNet-8 on 1024 images, 2 epochs, beats chance (0.1) clearly: %.4f (rc %d):\n%s", acc, rc, log_);
}

static void test_study(void) {
    remove(OUT "/study/large_batch.csv"), remove(OUT "/study/large_batch.png");
    int rc = run("EPOCHS=1 LIMIT=256 MICRO=8 SMALL=2 LARGE=4 WIDTH=4 BUILD=" OUT " OUT=" OUT "/study bash " TUT "10_large_batch.sh");
    CHECK(rc == 0 && strstr(log_, "12 runs in ") && strstr(log_, "wrote " OUT "/study/large_batch.png"), "the study runs (rc %d):\n%s", rc, log_);
    FILE *f = fopen(OUT "/study/large_batch.csv", "r");
    char line[256], setting[32];
    int rows = 0, batch;
    float fin, best;
    bool header = f && fgets(line, sizeof line, f) && !strcmp(line, "setting,batch,final_val_acc,best_val_acc\n");
    while (f && fgets(line, sizeof line, f)) {
        bool ok = sscanf(line, "%31[^,],%d,%f,%f", setting, &batch, &fin, &best) == 4 && (batch == 16 || batch == 32) && fin >= 0.0f &&
                  fin <= best && best <= 1.0f;
        CHECK(ok, "a row: setting,batch 16 or 32,final <= best <= 1: %s", line);
        rows += ok;
    }
    if (f) fclose(f);
    CHECK(header && rows == 12, "the CSV: header and 12 rows (%d)", rows);
    sdl_tensor *png = sdl_load_image(OUT "/study/large_batch.png", 3);
    CHECK(png && png->shape[1] == 400 && png->shape[2] == 80 * 12 + 120, "the bar chart decodes, 1080 x 400: %s", png ? "" : sdl_last_error());
    sdl_tensor_free(png);
    CHECK(run(OUT "/10_large_batch_plot " OUT "/no_such.csv " OUT "/x.png") != 0 && strstr(log_, "no_such.csv"), "a missing CSV:\n%s", log_);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    RUN(test_build);
    RUN(test_bad_depth);
    if (!have_data()) {
        printf("  skip: the runs (%s not installed: apt-get install dataset-fashion-mnist)\n", FASHION);
        return sdl_test_finish();
    }
    RUN(test_bad_values);
    RUN(test_optimizers_and_schedules);
    RUN(test_learns);
    RUN(test_study);
    return sdl_test_finish();
}
