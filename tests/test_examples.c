/* test_examples.c - the examples build, and fashion_cnn --model mlp trains a short epoch on a
   subset of Fashion-MNIST (when the dataset is installed), writes its CSV and checkpoint,
   resumes from it, and rejects an unknown flag or model. Compiles the examples with $CC
   (default cc). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-examples"

static const char *cc(void) { const char *c = getenv("CC"); return c && *c ? c : "cc"; }

/* runs cmd with stdout and stderr into OUT/log; returns the exit status and the log text */
static int run(const char *cmd, char *log, size_t cap) {
    char full[1024];
    snprintf(full, sizeof full, "%s > " OUT "/log 2>&1", cmd);
    int rc = system(full);
    FILE *f = fopen(OUT "/log", "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    log[n] = 0;
    if (f) fclose(f);
    return rc;
}

static bool have_data(void) {
    FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void test_build(void) {
    char cmd[512], log[8192];
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -Wall -Wextra -Werror -I. examples/fashion_cnn.c -o " OUT "/fashion_cnn -lm -lpthread", cc());
    CHECK(run(cmd, log, sizeof log) == 0, "fashion_cnn builds:\n%s", log);
}

static void test_flags(void) {
    char log[8192];
    int rc = run(OUT "/fashion_cnn --epochs 1 --no-such-flag 3", log, sizeof log);
    CHECK(rc != 0 && strstr(log, "unknown flag --no-such-flag") && strstr(log, "--batch-size"), "unknown flag: rc %d\n%s", rc, log);
    rc = run(OUT "/fashion_cnn --help", log, sizeof log);
    CHECK(rc == 0 && strstr(log, "--lr, --learning-rate") && strstr(log, "--result-file") && strstr(log, "--model"), "--help lists the flags:\n%s", log);
    rc = run(OUT "/fashion_cnn --model rnn", log, sizeof log);
    CHECK(rc != 0 && strstr(log, "--model rnn: cnn or mlp"), "an unknown model is refused: rc %d\n%s", rc, log);
}

static double field(const char *log, const char *key) {
    const char *p = strstr(log, key);
    return p ? atof(p + strlen(key)) : -1.0;
}

static void test_short_run_and_resume(void) {
    if (!have_data()) { printf("  skip: %s not installed (apt-get install dataset-fashion-mnist)\n", FASHION); return; }
    char log[8192];
    remove(OUT "/r.csv");
    remove(OUT "/c.safetensors");
    int rc = run(OUT "/fashion_cnn --model mlp --limit 3000 --epochs 1 --batch_size 32 --threads 2 --result_file " OUT "/r.csv --checkpoint " OUT "/c.safetensors", log, sizeof log);
    double acc = field(log, "final: test_acc=");
    CHECK(strstr(log, "fashion mlp: 235146 parameters, 3000 training images, batch 32, sgd lr 0.05, cpu"),
          "the MLP (784-256-128-10) with its default rate:\n%s", log);
    CHECK(rc == 0 && acc > 0.6 && acc <= 1.0, "one epoch on 3000 images reaches test_acc %.4f > 0.6 (rc %d):\n%s", acc, rc, log);
    CHECK(strstr(log, "epoch 1/1: loss ") && field(log, "total images/sec: ") > 0, "progress and throughput lines:\n%s", log);
    FILE *f = fopen(OUT "/r.csv", "r");
    char csv[512] = "";
    size_t n = f ? fread(csv, 1, sizeof csv - 1, f) : 0;
    csv[n] = 0;
    if (f) fclose(f);
    CHECK(!strncmp(csv, "epoch,loss,accuracy,val_loss,val_accuracy,lr,time\n1,", 52), "CSV header and row 1:\n%s", csv);
    rc = run(OUT "/fashion_cnn --model mlp --limit 3000 --epochs 2 --batch-size 32 --threads 2 --resume " OUT "/c.safetensors --result-file " OUT "/r.csv", log, sizeof log);
    double acc2 = field(log, "final: test_acc=");
    CHECK(rc == 0 && strstr(log, "resumed from") && strstr(log, "epoch 2/2") && !strstr(log, "epoch 1/2") && acc2 > 0.6,
          "resume runs only epoch 2 (rc %d):\n%s", rc, log);
    f = fopen(OUT "/r.csv", "r");
    n = f ? fread(csv, 1, sizeof csv - 1, f) : 0;
    csv[n] = 0;
    if (f) fclose(f);
    CHECK(strstr(csv, "\n1,") && strstr(csv, "\n2,"), "the resumed run appends row 2:\n%s", csv);
}

/* examples/custom_op.c: its gradcheck passes and the net with the user op fits sin(x) */
static void test_custom_op(void) {
    char cmd[512], log[8192];
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -Wall -Wextra -Werror -I. examples/custom_op.c -o " OUT "/custom_op -lm -lpthread", cc());
    CHECK(run(cmd, log, sizeof log) == 0, "custom_op builds:\n%s", log);
    int rc = run(OUT "/custom_op --epochs 300", log, sizeof log);
    CHECK(rc == 0 && strstr(log, "gradcheck swish: ok") && field(log, "epoch 300/300: loss ") < 0.01 * field(log, "epoch 1/300: loss "),
          "gradcheck ok and the loss falls 100x (rc %d):\n%s", rc, log);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    RUN(test_build);
    RUN(test_flags);
    RUN(test_short_run_and_resume);
    RUN(test_custom_op);
    return sdl_test_finish();
}
