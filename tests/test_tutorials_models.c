/* test_tutorials_models.c - the model tutorials (examples/tutorials/11, 13, 15) build warning-free
   and run briefly on Fashion-MNIST (when installed) and a text file, each checked on its key
   output: the DCGAN's sample grids decode and change as G trains, the char LSTM's loss falls
   and it samples text, the transfer run reports the new head as missing and fine-tunes.
   Compiles the tutorials with $CC (default cc). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define OUT "build/tests-tutorials-models"

static const char *cc(void) { const char *c = getenv("CC"); return c && *c ? c : "cc"; }

/* runs cmd with stdout and stderr into OUT/log; returns the exit status and the log text */
static int run(const char *cmd, char *log, size_t cap) {
    char full[2304];
    snprintf(full, sizeof full, "%s > " OUT "/log 2>&1", cmd);
    int rc = system(full);
    FILE *f = fopen(OUT "/log", "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    log[n] = 0;
    if (f) fclose(f);
    return rc;
}

static bool exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static double field(const char *log, const char *key) {
    const char *p = strstr(log, key);
    return p ? atof(p + strlen(key)) : -1.0;
}

/* the tutorial rules (at most 120 lines, no #if lines; compiles as C++17 and with mpicc
   warning-free), then builds examples/tutorials/<name>.c into OUT/<name>; false (and a
   failed check) if it does not build */
static bool build(const char *name) {
    char cmd[2048], log[8192];
    snprintf(cmd, sizeof cmd, "examples/tutorials/%s.c", name);
    sdl_test_tutorial_rules(cmd);
    snprintf(cmd, sizeof cmd, "g++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -DSDL_MPI_IMPLEMENTATION_DONE -I. examples/tutorials/%s.c", name);
    CHECK(run(cmd, log, sizeof log) == 0, "%s compiles as C++17:\n%s", name, log);
    if (system("command -v mpicc > /dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "mpicc -std=c99 -Wall -Wextra -Werror -fsyntax-only -DSDL_IMPLEMENTATION_DONE -I. examples/tutorials/%s.c", name);
        CHECK(run(cmd, log, sizeof log) == 0, "%s compiles with mpicc:\n%s", name, log);
    }
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -Wall -Wextra -Werror -I. examples/tutorials/%s.c %s -o " OUT "/%s -lm -lpthread", cc(), name,
             sdl_test_tutorial_link(0), name);
    int rc = run(cmd, log, sizeof log);
    CHECK(rc == 0, "%s builds:\n%s", name, log);
    return rc == 0;
}

static void test_dcgan(void) {
    if (!build("11_dcgan")) return;
    if (!exists(FASHION "/train-images-idx3-ubyte.gz")) { printf("  skip: %s not installed\n", FASHION); return; }
    char log[8192];
    remove(OUT "/dcgan_epoch1.png"), remove(OUT "/dcgan_epoch2.png");
    int rc = run(OUT "/11_dcgan --limit 128 --batch_size 32 --epochs 2 --out " OUT, log, sizeof log);
    double ld = field(log, "epoch 2/2: loss_d "), lg = field(log, "loss_g ");
    CHECK(rc == 0 && strstr(log, "epoch 1/2: loss_d ") && ld > 0.0 && ld < 5.0 && lg > 0.0 && lg < 10.0,
          "two epochs with finite losses (rc %d):\n%s", rc, log);
    sdl_tensor *a = sdl_load_image(OUT "/dcgan_epoch1.png", 1), *b = sdl_load_image(OUT "/dcgan_epoch2.png", 1);
    CHECK(a && b && a->shape[1] >= 8 * 28 && a->shape[2] >= 8 * 28 && a->numel == b->numel, "the sample grids decode: %s", sdl_last_error());
    if (!a || !b || a->numel != b->numel) { sdl_tensor_free(a), sdl_tensor_free(b); return; }
    int64_t changed = 0, lo = 255, hi = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        changed += sdl_u8(a)[i] != sdl_u8(b)[i];
        lo = sdl_u8(b)[i] < lo ? sdl_u8(b)[i] : lo, hi = sdl_u8(b)[i] > hi ? sdl_u8(b)[i] : hi;
    }
    CHECK(changed > a->numel / 10 && hi - lo > 64, "G's samples change from epoch 1 to 2 (%lld of %lld pixels) and are not flat (%lld..%lld)",
          (long long)changed, (long long)a->numel, (long long)lo, (long long)hi);
    sdl_tensor_free(a), sdl_tensor_free(b);
}

static void test_char_lstm(void) {
    if (!build("13_char_lstm")) return;
    char log[8192];
    int rc = run(OUT "/13_char_lstm --temperature 0", log, sizeof log);
    CHECK(rc != 0 && strstr(log, "--temperature must be > 0"), "temperature 0 is refused (rc %d):\n%s", rc, log);
    FILE *f = fopen(OUT "/text.txt", "w"); /* a small text of its own, so the test needs no Debian file */
    for (int i = 0; f && i < 200; i++) fprintf(f, "the cat sat on the mat. a dog ate the hat %d times.\n", i % 7);
    if (f) fclose(f);
    rc = run(OUT "/13_char_lstm --data " OUT "/text.txt --steps 40 --print_every 10 --batch-size 8 --seq-len 32 --hidden 64 --lr 0.01 --length 60",
             log, sizeof log);
    double uniform = field(log, ") = "), first = field(log, "step 10/40: loss "), last = field(log, "step 40/40: loss ");
    const char *s = strstr(log, "sample (temperature 0.8):\nThe ");
    CHECK(rc == 0 && uniform > 2.0 && first > 0.0 && first < uniform && last > 0.0 && last < first - 0.3,
          "the loss falls below ln(V) = %.3f: %.4f at step 10, %.4f at step 40 (rc %d):\n%s", uniform, first, last, rc, log);
    CHECK(s && strlen(s) >= strlen("sample (temperature 0.8):\nThe ") + 60, "60 sampled bytes after the prime:\n%s", log);
}

static void test_transfer(void) {
    if (!build("15_transfer")) return;
    if (!exists(FASHION "/train-images-idx3-ubyte.gz")) { printf("  skip: %s not installed\n", FASHION); return; }
    static char log[8192], log2[8192];
    remove(OUT "/bb.safetensors");
    int rc = run(OUT "/15_transfer --pretrained --checkpoint " OUT "/bb.safetensors", log, sizeof log);
    CHECK(rc != 0 && strstr(log, "bb.safetensors"), "--pretrained without a checkpoint fails naming it (rc %d):\n%s", rc, log);
    rc = run(OUT "/15_transfer --limit 3000 --epochs 1 --checkpoint " OUT "/bb.safetensors", log, sizeof log);
    double a = field(log, "classes 0-4: "), frozen = field(log, "(backbone frozen): test acc "), all = field(log, "(backbone lr x0.1): test acc ");
    CHECK(rc == 0 && a > 0 && strstr(log, "loaded 4 tensors from " OUT "/bb.safetensors; missing: new_head.weight new_head.bias; unexpected: head.weight head.bias\n"),
          "trains, saves, loads non-strict with the new head missing (rc %d):\n%s", rc, log);
    CHECK(frozen > 0.3 && frozen <= 1.0 && all > 0.3 && all <= 1.0, "both stages beat chance (0.2): %.4f, %.4f", frozen, all);
    rc = run(OUT "/15_transfer --limit 3000 --epochs 1 --pretrained --checkpoint " OUT "/bb.safetensors", log2, sizeof log2);
    const char *b1 = strstr(log, "loaded "), *b2 = strstr(log2, "loaded ");
    CHECK(rc == 0 && !strstr(log2, "classes 0-4") && b1 && b2 && !strcmp(b1, b2), "--pretrained skips stage 1 and fine-tunes the same (rc %d):\n%s", rc, log2);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    CHECK(system("mkdir -p " OUT) == 0, "mkdir");
    RUN(test_dcgan);
    RUN(test_char_lstm);
    RUN(test_transfer);
    return sdl_test_finish();
}
