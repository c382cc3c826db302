/* mpi_test_fashion_shard.c - examples/fashion_ddp.c's flags beyond replicas: rank 0 builds it
   and runs a few steps at np 2 with --sync-bn --zero 3 --global-batch (accumulation) and a
   checkpoint every update, then resumes that run at np 1 with --zero 1 for a second epoch.
   Skips without Debian's dataset-fashion-mnist. */
// mpirun-np: 2
#define _POSIX_C_SOURCE 200809L /* popen */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[512];
static char out[1 << 16];

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    fn();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

static int sh(const char *cmd) {
    char full[4096];
    const char *path = getenv("PATH"), *home = getenv("HOME");
    snprintf(full, sizeof full, "env -i PATH='%s' HOME='%s' timeout 300 sh -c '%s' 2>&1", path ? path : "/usr/bin:/bin",
             home ? home : "/tmp", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0, k;
    while ((k = fread(out + n, 1, sizeof out - 1 - n, p)) > 0 && n + k < sizeof out - 1) n += k;
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_flags_and_resume(void) {
    if (g_rank != 0) return;
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (!f) { printf("  skip: dataset-fashion-mnist not installed\n"); return; }
    fclose(f);
    char cmd[3072], ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/fashion_shard_%d.safetensors", g_dir, (int)getpid());
    const char *run = "mpirun --allow-run-as-root --oversubscribe";
    const char *common = "--limit 128 --batch-size 16 --steps-per-epoch 4 --global-batch 64 --checkpoint-every 1";
    snprintf(cmd, sizeof cmd, "mpicc -O1 -I. examples/fashion_ddp.c -o %s/fashion_ddp_shard -lm -lpthread && "
             "%s -np 2 %s/fashion_ddp_shard --epochs 1 %s --sync-bn --zero 3 --checkpoint %s", g_dir, run, g_dir, common, ckpt);
    int rc = sh(cmd);
    CHECK(rc == 0, "np 2: exit %d:\n%s", rc, out);
    CHECK(strstr(out, "2 ranks x batch 16 x accumulation 2 = global batch 64") && strstr(out, "ZeRO-3 sync-bn") &&
          strstr(out, "epoch 1/1: loss ") && strstr(out, "\ntotal images/sec: "), "np 2: lines missing:\n%s", out);
    CHECK(access(ckpt, F_OK) == 0, "no checkpoint %s", ckpt);
    snprintf(cmd, sizeof cmd, "%s -np 1 %s/fashion_ddp_shard --epochs 2 %s --sync-bn --zero 1 --checkpoint %s", run, g_dir, common, ckpt);
    rc = sh(cmd);
    CHECK(rc == 0, "np 1: exit %d:\n%s", rc, out);
    CHECK(strstr(out, "resumed from ") && strstr(out, "epoch 2, 0 images into it, update 2") &&
          strstr(out, "1 ranks x batch 16 x accumulation 4 = global batch 64") && strstr(out, "epoch 2/2: loss ") &&
          !strstr(out, "epoch 1/2"), "np 1: lines missing:\n%s", out);
    /* a global batch the ranks cannot share is refused */
    snprintf(cmd, sizeof cmd, "%s -np 2 %s/fashion_ddp_shard --epochs 1 --limit 64 --batch-size 16 --global-batch 48", run, g_dir);
    rc = sh(cmd);
    CHECK(rc == 2 && strstr(out, "--global-batch 48"), "bad --global-batch: exit %d:\n%s", rc, out);
    remove(ckpt);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    g_rank = sdl_mpi_rank();
    snprintf(g_dir, sizeof g_dir, "%s", argv[0]);
    char *slash = strrchr(g_dir, '/');
    if (slash) *slash = 0;
    else snprintf(g_dir, sizeof g_dir, ".");
    sdl_mpi_set_timeout(0); /* rank 0 works alone for a while */
    MRUN(test_flags_and_resume);
    return mpi_test_finish();
}
