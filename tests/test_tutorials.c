/* test_tutorials.c - examples/tutorials: each file keeps the ladder's rules (at most 120
   lines, no #if), builds warning-free as C99 ($CC, or mpicc for those that use MPI) and as
   C++17 (what nvcc compiles), and a short run of each prints its key lines with sane
   numbers: 04 trains (normalised beats raw) and draws decodable curves, 05 sweeps, 06 trains
   and refuses --device cuda in a cc build, 16 with 4 micro-batches prints what 06 prints,
   07 on one rank prints what 06 prints and on two the throughput line, 12 writes
   epoch_times_size2.csv and args_size2.json, 08 draws the scaling CSV, 23 runs one array
   task. 01 and 02 run in tests/mpi_test_examples.c. Without mpicc/mpirun the MPI ones are
   skipped; without Fashion-MNIST the runs are. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <stdarg.h>

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-tutorials"
#define TUT "examples/tutorials/"
#define ENV "SDL_NUM_THREADS=1 "
#define MPIRUN ENV "mpirun --allow-run-as-root --oversubscribe "

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
static bool have_data(void) { FILE *f = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb"); if (f) fclose(f); return f != NULL; }
static double field(const char *text, const char *key) { const char *p = strstr(text, key); return p ? atof(p + strlen(key)) : -1.0; }
/* the first line starting with prefix, up to (not with) " time" */
static void line_of(const char *text, const char *prefix, char *out, size_t cap) {
    const char *p = strstr(text, prefix), *e = p ? strstr(p, " time") : NULL;
    size_t n = p && e && (size_t)(e - p) < cap ? (size_t)(e - p) : 0;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
}
static bool png_ok(const char *path, int w, int h) {
    sdl_tensor *t = sdl_load_image(path, 3);
    bool ok = t && t->shape[1] == h && t->shape[2] == w;
    sdl_tensor_free(t);
    return ok;
}

static const char *const plain[] = {"04_fcnet", "05_lr_sweep", "06_allconv", "08_scaling_plot", "16_grad_accum"};
static const char *const mpi[] = {"01_hello_mpi", "02_mc_pi", "07_allconv_ddp", "12_alcf_mnist_ddp"};

static void test_rules(void) {
    const char *all[] = {"01_hello_mpi", "02_mc_pi", "04_fcnet", "05_lr_sweep", "06_allconv", "07_allconv_ddp", "08_scaling_plot",
                         "12_alcf_mnist_ddp", "16_grad_accum"};
    for (int i = 0; i < 9; i++) {
        char path[128];
        snprintf(path, sizeof path, TUT "%s.c", all[i]);
        sdl_test_tutorial_rules(path);
    }
}

/* each tutorial linked against tests/run.sh's implementation objects, as make links against
   build/sdl.o (run alone: the one-file build; the implementation's own C99/C++ builds are the
   header checks of tests/run.sh) */
static void test_build(void) {
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    for (int i = 0; i < 5; i++) {
        CHECK(run("%s -std=c99 -O1 -Wall -Wextra -Werror -I. " TUT "%s.c %s -o " OUT "/%s -lm -lpthread", cc(), plain[i],
                  sdl_test_tutorial_link(0), plain[i]) == 0,
              "%s builds with %s:\n%s", plain[i], cc(), log_);
        CHECK(run("g++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE -I. " TUT "%s.c", plain[i]) == 0, "%s compiles as C++17:\n%s",
              plain[i], log_);
    }
    if (!have("mpicc")) { printf("  skip: mpicc not found\n"); return; }
    for (int i = 0; i < 4; i++)
        CHECK(run("mpicc -std=c99 -O1 -Wall -Wextra -Werror -I. " TUT "%s.c %s -o " OUT "/%s -lm -lpthread", mpi[i], sdl_test_tutorial_link(1),
                  mpi[i]) == 0,
              "%s builds with mpicc:\n%s", mpi[i], log_);
}

static void test_fcnet_and_sweep(void) {
    int rc = run(ENV OUT "/04_fcnet --epochs 2 --limit 2000 --normalize --plot " OUT "/fc");
    double acc = field(log_, "final: test_acc=");
    CHECK(rc == 0 && acc > 0.5 && strstr(log_, "epoch 2/2: loss ") && field(log_, "total images/sec: ") > 0,
          "04 normalised: test_acc %.4f > 0.5:\n%s", acc, log_);
    CHECK(png_ok(OUT "/fc_loss.png", 640, 400) && png_ok(OUT "/fc_accuracy.png", 640, 400), "04 draws both curves as 640x400 PNGs");
    rc = run(ENV OUT "/04_fcnet --epochs 2 --limit 2000");
    double raw = field(log_, "final: test_acc=");
    CHECK(rc == 0 && raw >= 0 && raw < acc, "04 raw input learns worse (%.4f) than normalised (%.4f):\n%s", raw, acc, log_);
    rc = run(ENV OUT "/05_lr_sweep --epochs 1 --limit 1000 --lrs 0.01,0.1 --plot " OUT "/sweep.png");
    CHECK(rc == 0 && strstr(log_, "lr 0.01") && strstr(log_, "lr 0.1 ") && strstr(log_, "best: lr ") && png_ok(OUT "/sweep.png", 640, 400),
          "05 sweeps two rates and draws them:\n%s", log_);
    CHECK(run(ENV OUT "/05_lr_sweep --lrs 0.1,x") == 2 * 256 && strstr(log_, "not a list"), "05 refuses a bad list:\n%s", log_);
    rc = run("SLURM_ARRAY_TASK_ID=1 EPOCHS=1 LIMIT=1000 BUILD=" OUT " OUT=" OUT "/array bash " TUT "23_sweep_array.sbatch");
    CHECK(rc == 0 && strstr(log_, "array task 1: lr 0.01") && field(log_, "final: test_acc=") > 0.3, "23: array task 1:\n%s", log_);
    CHECK(run("SLURM_ARRAY_TASK_ID=9 BUILD=" OUT " bash " TUT "23_sweep_array.sbatch") != 0 && strstr(log_, "no learning rate"),
          "23: a task past the list:\n%s", log_);
}

static void test_allconv(void) {
    char l05[256], l09[256], l06[256];
    const char *flags = "--epochs 1 --limit 640 --steps-per-epoch 6";
    int rc = run(ENV OUT "/06_allconv %s", flags);
    line_of(log_, "epoch 1/1: loss ", l05, sizeof l05);
    CHECK(rc == 0 && l05[0] && field(log_, "total images/sec: ") > 0, "06 trains:\n%s", log_);
    CHECK(run(ENV OUT "/06_allconv %s --device cuda", flags) != 0 && strstr(log_, "built without the CUDA backend"),
          "06 in a cc build: --device cuda is a clear error:\n%s", log_);
    rc = run(ENV OUT "/16_grad_accum --epochs 1 --limit 640 --steps-per-epoch 24 --accum-steps 4"); /* 24 micro-batches: 6 steps */
    line_of(log_, "epoch 1/1: loss ", l09, sizeof l09);
    CHECK(rc == 0 && strstr(log_, "batch 64 = 4 x 16") && !strcmp(l05, l09), "16: 4 micro-batches of 16 print what 06 prints\n06: %s\n16 (exit %d): %s",
          l05, rc, log_);
    CHECK(run(ENV OUT "/16_grad_accum --accum-steps 3") != 0, "16 refuses a batch that accum-steps does not divide");
    if (!have("mpirun")) { printf("  skip: mpirun not found\n"); return; }
    rc = run(MPIRUN "-np 1 " OUT "/07_allconv_ddp %s", flags);
    line_of(log_, "epoch 1/1: loss ", l06, sizeof l06);
    CHECK(rc == 0 && !strcmp(l05, l06), "07 on one rank prints what 06 prints\n06: %s\n07: %s\n%s", l05, l06, log_);
    rc = run(MPIRUN "-np 2 " OUT "/07_allconv_ddp %s --fp16-allreduce", flags);
    CHECK(rc == 0 && strstr(log_, "2 ranks x batch 64, lr 0.1, cpu, fp16 gradients") && field(log_, "total images/sec: ") > 0 &&
          !strstr(strstr(log_, "epoch 1/1") ? strstr(log_, "epoch 1/1") + 1 : log_, "epoch 1/1"), "07 on two ranks (rank 0 prints once):\n%s", log_);
}

static void test_alcf(void) {
    if (!have("mpirun")) { printf("  skip: mpirun not found\n"); return; }
    remove(OUT "/epoch_times_size2.csv");
    remove(OUT "/args_size2.json");
    int rc = run("cd " OUT " && " MPIRUN "-np 2 ./12_alcf_mnist_ddp --epochs 2 --limit 1000 --log-interval 4 --fp16-allreduce");
    const char *t2 = strstr(log_, "Test set: Average loss: ");
    CHECK(rc == 0 && strstr(log_, "Train Epoch: 2 [") && t2 && strstr(t2 + 1, "Test set: Average loss: ") &&
          strstr(log_, "/1000 (") && strstr(log_, "mean epoch time (skipping the first): "), "12 trains 2 epochs on 2 ranks:\n%s", log_);
    char text[512] = "";
    FILE *f = fopen(OUT "/epoch_times_size2.csv", "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    CHECK(!strncmp(text, "epoch,time\n1,", 13) && strstr(text, "\n2,") && !strstr(text, "\n3,"), "epoch_times_size2.csv:\n%s", text);
    f = fopen(OUT "/args_size2.json", "r");
    n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    CHECK(strstr(text, "\"batch_size\": 64") && strstr(text, "\"lr\": 0.01,") && strstr(text, "\"fp16_allreduce\": true"), "args_size2.json:\n%s", text);
}

static void test_scaling_plot(void) {
    FILE *f = fopen(OUT "/scaling.csv", "w");
    if (f) fputs("NODES,LOCAL_BATCH_SIZE,GPUS_PER_NODE,TOTAL_IMAGES_PER_SEC,SPEEDUP,EFFICIENCY\n1,64,1,400.00,1.000,1.000\n1,64,2,720.00,1.800,0.900\n", f);
    if (f) fclose(f);
    int rc = run(OUT "/08_scaling_plot " OUT "/scaling.csv " OUT "/scaling");
    CHECK(rc == 0 && strstr(log_, "1 x 2 ranks, batch 64 each: 720.0 images/s, speed-up 1.80, efficiency 0.900"), "08 reads the CSV:\n%s", log_);
    CHECK(png_ok(OUT "/scaling_images.png", 640, 400) && png_ok(OUT "/scaling_efficiency.png", 640, 400), "08 draws both charts");
    CHECK(run(OUT "/08_scaling_plot " OUT "/no_such.csv x") != 0, "08: a missing CSV is an error");
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    RUN(test_rules);
    RUN(test_build);
    RUN(test_scaling_plot);
    if (!have_data()) {
        printf("  skip: the training runs (%s not installed: apt-get install dataset-fashion-mnist)\n", FASHION);
        return sdl_test_finish();
    }
    RUN(test_fcnet_and_sweep);
    RUN(test_allconv);
    RUN(test_alcf);
    return sdl_test_finish();
}
