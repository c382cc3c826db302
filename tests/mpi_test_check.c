/* mpi_test_check.c - the collective checker. Rank 0 starts this program again in a child
   mpirun with ranks that disagree (another name, another count, a rank that never arrives)
   and checks that the job ends within the timeout, non-zero, naming the collective and the
   rank, instead of hanging. The ddp's buckets start during backward and are checked at
   sdl_mpi_ddp_sync: the same reports come from there. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* popen */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

#include <sys/wait.h>
#include <time.h>

static int g_size;
static const char *g_argv0;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    fn();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* ---- the child: ranks that disagree on purpose ---------------------------------------- */
static int child(const char *mode) {
    if (sdl_mpi_init(NULL, NULL) != SDL_OK) return 2;
    if (strcmp(mode, "--single") == 0) { /* started without a launcher */
        float v = 3;
        sdl_mpi_allreduce(&v, 1, SDL_MPI_ALGO_RING);
        printf("single: rank %d of %d, local %d of %d, sum %g\n", sdl_mpi_rank(), sdl_mpi_size(), sdl_mpi_local_rank(),
               sdl_mpi_local_size(), (double)v);
        return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
    }
    int r = sdl_mpi_rank(), n = sdl_mpi_size();
    float buf[8] = {0};
    sdl_mpi_barrier(); /* #1 agrees */
    if (strcmp(mode, "--mismatch") == 0) {
        double v = 1;
        if (r == 1) sdl_mpi_sum(&v, 1);
        else sdl_mpi_allreduce(buf, 5, SDL_MPI_ALGO_MPI);
    } else if (strcmp(mode, "--count") == 0) {
        sdl_mpi_allreduce(buf, r == n - 1 ? 6 : 5, SDL_MPI_ALGO_MPI);
    } else if (strncmp(mode, "--ddp-", 6) == 0) { /* --ddp-mismatch, --ddp-missing, -shm: with SDL_MPI_ALGO_SHM */
        bool missing = strstr(mode, "missing") != NULL, shm = strstr(mode, "-shm") != NULL;
        sdl_model *m = sdl_model_new(3);
        sdl_module *net = sdl_sequential(m, "");
        sdl_seq_add(net, sdl_linear_layer(m, "fc1", 6, 8, true));
        sdl_seq_add(net, sdl_linear_layer(m, "fc2", 8, 3, true));
        sdl_mpi_ddp_desc desc = {SDL_MPI_MODE_BUCKETS, shm ? SDL_MPI_ALGO_SHM : SDL_MPI_ALGO_MPI, 0.0001f, false}; /* 26 floats: 2 buckets */
        sdl_mpi_ddp *d = sdl_mpi_ddp_new(m, &desc);
        sdl_tensor *x = sdl_arena_tensor(sdl_shape2(4, 6), SDL_F32);
        sdl_tensor_fill(x, 0.5f);
        double v = 1;
        if (r == 1 && !missing) {
            sdl_mpi_sum(&v, 1);
        } else if (r == n - 1 && missing) {
            double until = MPI_Wtime() + 60;
            while (MPI_Wtime() < until) {}
        } else {
            sdl_backward(sdl_sum(sdl_forward(net, x)));
            sdl_mpi_ddp_sync(d);
        }
        sdl_mpi_ddp_free(d);
        sdl_model_free(m);
    } else if (strcmp(mode, "--missing") == 0) {
        if (r == n - 1) { /* never arrives: busy elsewhere for far longer than the timeout */
            double until = MPI_Wtime() + 60;
            while (MPI_Wtime() < until) {}
        } else {
            sdl_mpi_allreduce(buf, 5, SDL_MPI_ALGO_RING);
        }
    }
    sdl_mpi_finalize();
    return 0;
}

/* runs `mpirun -np N this mode` (np 0: no launcher at all) with a clean environment;
   returns the exit status */
static int spawn(const char *mode, double timeout, char *out, size_t cap, double *seconds, int np) {
    char cmd[2048], launcher[128] = "";
    const char *path = getenv("PATH"), *home = getenv("HOME");
    if (np > 0) snprintf(launcher, sizeof launcher, "mpirun --allow-run-as-root --oversubscribe -np %d", np);
    snprintf(cmd, sizeof cmd, "env -i PATH='%s' HOME='%s' SDL_MPI_TIMEOUT=%g timeout 60 %s '%s' %s 2>&1",
             path ? path : "/usr/bin:/bin", home ? home : "/tmp", timeout, launcher, g_argv0, mode);
    double t0 = MPI_Wtime();
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, k;
    while ((k = fread(out + n, 1, cap - 1 - n, p)) > 0 && n + k < cap - 1) n += k;
    out[n] = 0;
    int st = pclose(p);
    *seconds = MPI_Wtime() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void expect(const char *mode, double timeout, const char **needles, int nneedles) {
    if (g_rank != 0) return;
    static char out[1 << 16];
    double secs;
    int rc = spawn(mode, timeout, out, sizeof out, &secs, g_size);
    CHECK(rc != 0 && rc != 124, "%s: the child job exited with %d (want non-zero, not the 60 s timeout)", mode, rc);
    CHECK(secs < timeout + 15, "%s: took %.1f s", mode, secs);
    bool all = true;
    for (int i = 0; i < nneedles; i++) {
        bool found = strstr(out, needles[i]) != NULL;
        CHECK(found, "%s: the output does not say \"%s\"", mode, needles[i]);
        all = all && found;
    }
    if (!all || rc == 0) printf("     child output:\n%s\n", out);
}

static void test_agreeing_collectives_pass(void) {
    float buf[3] = {1, 2, 3};
    double v = 1;
    CHECK(sdl_mpi_barrier() == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_mpi_allreduce(buf, 3, SDL_MPI_ALGO_MPI) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_mpi_sum(&v, 1) == SDL_OK && v == g_size, "%s", sdl_last_error());
    CHECK(buf[2] == 3.0f * g_size, "allreduce gave %g", (double)buf[2]);
}

static void test_name_mismatch(void) {
    char want[128];
    snprintf(want, sizeof want, "rank 0 calls 'allreduce' (count 5) but rank 1 calls 'metric sum'");
    const char *needles[] = {"collective mismatch at #2", want};
    expect("--mismatch", 1, needles, 2);
}

static void test_count_mismatch(void) {
    char want[128];
    snprintf(want, sizeof want, "rank %d calls 'allreduce' (count 6", g_size - 1);
    const char *needles[] = {"collective mismatch at #2", want};
    expect("--count", 1, needles, 2);
}

static void test_missing_rank(void) {
    char want[160];
    snprintf(want, sizeof want, "at collective #2 'ring allreduce': rank %d is missing it (rank %d was last seen at #1 'barrier')",
             g_size - 1, g_size - 1);
    const char *needles[] = {want};
    expect("--missing", 1, needles, 1);
}

/* the ddp's single check at sync, with buckets already started during backward */
static void test_ddp_mismatch(void) {
    const char *needles[] = {"collective mismatch at #2", "calls 'ddp sync, 2 buckets, first 27' (count 83) but rank 1 calls 'metric sum'"};
    expect("--ddp-mismatch", 1, needles, 2);
}

static void test_ddp_missing(void) {
    char want[160];
    snprintf(want, sizeof want, "at collective #2 'ddp sync, 2 buckets, first 27': rank %d is missing it", g_size - 1);
    const char *needles[] = {want};
    expect("--ddp-missing", 1, needles, 1);
}

/* SDL_MPI_ALGO_SHM: the check runs while the rank spins on the shared counters */
static void test_ddp_shm_mismatch(void) {
    const char *needles[] = {"collective mismatch at #2", "calls 'ddp sync shm, 2 buckets, first 27' (count 83) but rank 1 calls 'metric sum'"};
    expect("--ddp-mismatch-shm", 1, needles, 2);
}

static void test_ddp_shm_missing(void) {
    char want[160];
    snprintf(want, sizeof want, "at collective #2 'ddp sync shm, 2 buckets, first 27': rank %d is missing it", g_size - 1);
    const char *needles[] = {want};
    expect("--ddp-missing-shm", 1, needles, 1);
}

/* a program started with no launcher is rank 0 of 1 (MPI's singleton start) */
static void test_singleton(void) {
    if (g_rank != 0) return;
    static char out[1 << 14];
    double secs;
    int rc = spawn("--single", 5, out, sizeof out, &secs, 0);
    CHECK(rc == 0 && strstr(out, "single: rank 0 of 1, local 0 of 1, sum 3"), "exit %d, output:\n%s", rc, out);
}

/* srun's variables, read without MPI */
static void test_launcher_env(void) {
    int r, n, l;
    CHECK(sdl_mpi_launcher_env(&r, &n, &l) && r == g_rank && n == g_size, "mpirun: %d of %d", r, n);
    /* as under srun: no mpirun variables, SLURM's only */
    const char *ompi[3] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"};
    char saved[3][32];
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(ompi[i]);
        snprintf(saved[i], sizeof saved[i], "%s", v ? v : "");
        unsetenv(ompi[i]);
    }
    setenv("SLURM_PROCID", "5", 1);
    setenv("SLURM_NTASKS", "8", 1);
    setenv("SLURM_LOCALID", "1", 1);
    CHECK(sdl_mpi_launcher_env(&r, &n, &l) && r == 5 && n == 8 && l == 1, "srun: %d of %d local %d", r, n, l);
    for (int i = 0; i < 3; i++) if (saved[i][0]) setenv(ompi[i], saved[i], 1);
    /* mpirun inside an sbatch script: the batch step's SLURM_PROCID must not win */
    setenv("SLURM_PROCID", "0", 1);
    CHECK(sdl_mpi_launcher_env(&r, &n, &l) && r == g_rank && n == g_size, "mpirun in sbatch: %d of %d", r, n);
    unsetenv("SLURM_PROCID");
    unsetenv("SLURM_NTASKS");
    unsetenv("SLURM_LOCALID");
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (argc > 1) return child(argv[1]);
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    MRUN(test_agreeing_collectives_pass);
    MRUN(test_singleton);
    MRUN(test_launcher_env);
    MRUN(test_name_mismatch);
    MRUN(test_count_mismatch);
    MRUN(test_missing_rank);
    MRUN(test_ddp_mismatch);
    MRUN(test_ddp_missing);
    MRUN(test_ddp_shm_mismatch);
    MRUN(test_ddp_shm_missing);
    return mpi_test_finish();
}
