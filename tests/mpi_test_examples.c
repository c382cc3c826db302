/* mpi_test_examples.c - the MPI examples and the benchmarks compile warning-free as C99, and
   mpi_hello, mpi_pi and a few steps of fashion_ddp, fashion_pipe, fashion_tp and
   fashion_fedavg run on 2 ranks with the right lines.
   Rank 0 builds and starts them in a child mpirun; the others wait. */
// mpirun-np: 2
#define _POSIX_C_SOURCE 200809L /* popen */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

#include <sys/wait.h>
#include <time.h>

static char g_dir[256]; /* where the binaries go: next to this test's own */

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    if (g_rank == 0) fn();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* runs cmd with a clean environment (a child mpirun must not see this job's variables) */
static int sh(const char *cmd, char *out, size_t cap) {
    char full[8192];
    const char *path = getenv("PATH"), *home = getenv("HOME");
    snprintf(full, sizeof full, "env -i PATH='%s' HOME='%s' timeout 300 sh -c '%s' 2>&1", path ? path : "/usr/bin:/bin",
             home ? home : "/tmp", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0, k;
    while (n < cap - 1 && (k = fread(out + n, 1, cap - 1 - n, p)) > 0) n += k;
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char out[1 << 16];

static void test_compile(void) {
    const char *srcs[] = {"examples/tutorials/01_hello_mpi.c", "examples/tutorials/02_mc_pi.c", "examples/fashion_ddp.c", "bench/bench_mpi.c",
                          "examples/fashion_pipe.c", "examples/fashion_tp.c", "examples/fashion_fedavg.c", "bench/bench_mpar.c"};
    for (int i = 0; i < (int)(sizeof srcs / sizeof srcs[0]); i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "mpicc -std=c99 -Wall -Wextra -Werror -fsyntax-only -I. %s", srcs[i]);
        int rc = sh(cmd, out, sizeof out);
        CHECK(rc == 0, "%s does not compile:\n%s", srcs[i], out);
    }
}

static void test_hello_and_pi(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mpicc -O1 -I. examples/tutorials/01_hello_mpi.c %s -o %s/mpi_hello -lm -lpthread && "
             "mpicc -O1 -I. examples/tutorials/02_mc_pi.c %s -o %s/mpi_pi -lm -lpthread && "
             "mpirun --allow-run-as-root --oversubscribe -np 2 %s/mpi_hello && "
             "mpirun --allow-run-as-root --oversubscribe -np 2 %s/mpi_pi --samples 200000",
             sdl_test_tutorial_link(1), g_dir, sdl_test_tutorial_link(1), g_dir, g_dir, g_dir);
    int rc = sh(cmd, out, sizeof out);
    CHECK(rc == 0, "exit %d:\n%s", rc, out);
    CHECK(strstr(out, "hello from rank 0 of 2") && strstr(out, "hello from rank 1 of 2") && strstr(out, "2 ranks said hello"),
          "hello lines missing:\n%s", out);
    const char *pi = strstr(out, "pi ~ 3.1");
    double v = 0;
    CHECK(pi && sscanf(pi, "pi ~ %lf from 400000 darts", &v) == 1 && fabs(v - 3.14159265) < 0.01, "pi line:\n%s", out);
}

static void test_fashion_ddp(void) {
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (!f) { printf("  skip: dataset-fashion-mnist not installed\n"); return; }
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mpicc -O1 -I. examples/fashion_ddp.c %s -o %s/fashion_ddp -lm -lpthread && "
             "mpirun --allow-run-as-root --oversubscribe -np 2 %s/fashion_ddp --epochs 1 --limit 512 --batch_size 32 "
             "--steps-per-epoch 3 --lr-scaling --fp16-allreduce",
             sdl_test_tutorial_link(1), g_dir, g_dir);
    int rc = sh(cmd, out, sizeof out);
    CHECK(rc == 0, "exit %d:\n%s", rc, out);
    CHECK(strstr(out, "2 ranks x batch 32 = global batch 64, lr 0.01 (peak 0.02") && strstr(out, "epoch 1/1: loss ") &&
          strstr(out, "rank 0: images/sec: ") && strstr(out, "rank 1: images/sec: ") && strstr(out, "\ntotal images/sec: "),
          "expected lines missing:\n%s", out);
    /* --algo shm averages (g0 + g1) / 2 as MPI_Allreduce does: the same losses, digit for digit */
    char line[2][160] = {"", ""};
    for (int k = 0; k < 2 && rc == 0; k++) {
        snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe -np 2 %s/fashion_ddp --epochs 1 --limit 512 "
                 "--batch_size 32 --steps-per-epoch 3 --algo %s", g_dir, k ? "shm" : "mpi");
        rc = sh(cmd, out, sizeof out);
        CHECK(rc == 0, "--algo %s: exit %d:\n%s", k ? "shm" : "mpi", rc, out);
        const char *e = strstr(out, "epoch 1/1: "), *end = e ? strstr(e, " lr ") : NULL;
        if (end) snprintf(line[k], sizeof line[k], "%.*s", (int)(end - e), e);
    }
    CHECK(line[0][0] && strcmp(line[0], line[1]) == 0, "--algo mpi: '%s', --algo shm: '%s'", line[0], line[1]);
}

/* the pipelined and the tensor-parallel MLP do one process's arithmetic: the same loss;
   FedAvg prints its rounds */
static void test_model_parallel(void) {
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (!f) { printf("  skip: dataset-fashion-mnist not installed\n"); return; }
    fclose(f);
    const char *names[3] = {"fashion_pipe", "fashion_tp", "fashion_fedavg"};
    const char *flags[3] = {"--epochs 1 --steps-per-epoch 30 --micro-batches 4 --schedule gpipe", "--epochs 1 --steps-per-epoch 30",
                            "--rounds 2 --clients 20 --fraction 0.2"};
    double loss[2] = {0, 0};
    for (int k = 0; k < 3; k++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "mpicc -O1 -I. examples/%s.c %s -o %s/%s -lm -lpthread && "
                 "mpirun --allow-run-as-root --oversubscribe -np 2 %s/%s %s", names[k], sdl_test_tutorial_link(1), g_dir, names[k], g_dir,
                 names[k], flags[k]);
        int rc = sh(cmd, out, sizeof out);
        CHECK(rc == 0, "%s: exit %d:\n%s", names[k], rc, out);
        const char *e = strstr(out, "epoch 1: loss ");
        if (k < 2) CHECK(e && sscanf(e, "epoch 1: loss %lf", &loss[k]) == 1 && strstr(out, "\ntotal images/sec: "), "%s:\n%s", names[k], out);
        else CHECK(strstr(out, "round   2  iid: acc 0.") && strstr(out, "rounds to 80% test accuracy"), "%s:\n%s", names[k], out);
    }
    CHECK(loss[0] > 0 && fabs(loss[0] - loss[1]) < 2e-4, "pipelined loss %g, tensor-parallel loss %g", loss[0], loss[1]);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    g_rank = sdl_mpi_rank();
    snprintf(g_dir, sizeof g_dir, "%s", argv[0]);
    char *slash = strrchr(g_dir, '/');
    if (slash) *slash = 0;
    else snprintf(g_dir, sizeof g_dir, ".");
    sdl_mpi_set_timeout(0); /* rank 0 works alone for a while; the others wait in MPI */
    MRUN(test_compile);
    MRUN(test_hello_and_pi);
    MRUN(test_fashion_ddp);
    MRUN(test_model_parallel);
    return mpi_test_finish();
}
