/* mpi_test_elastic.c - fault tolerance and elastic restart. Rank 0 starts this program as a
   training job of its own (--train) twice: once uninterrupted at np 3, once under
   tools/sdl_elastic.sh where rank 1 of 3 dies by SIGKILL in the middle of an epoch (and of a
   gradient accumulation). Checked: the job ends within 10 s of the death with the dead rank
   named; the launcher relaunches at np 2, which resumes from the last checkpoint (written
   every 5 updates, with the loader's position) with the same global batch (24 = 3 x 4 x 2
   = 2 x 4 x 3 through accumulation) and the LR schedule where it was, and runs at least 50
   more updates; its final weights equal the uninterrupted run's within 1e-4 relative; every
   sample of every epoch was trained on exactly once (counting what each checkpoint
   committed). And under a launcher that does not end the job (mpirun --enable-recovery),
   sdl_mpi's collective checker names the dead rank and ends it within 10 s. */
// mpirun-np: 2
#define _POSIX_C_SOURCE 200809L /* popen, clock_gettime */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N = 480, GLOBAL_BATCH = 24, B = 4, EPOCHS = 4, EVERY = 5, FEAT = 8 };
#define TOTAL_UPDATES (EPOCHS * N / GLOBAL_BATCH)

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the child: a resumable data-parallel training run ------------------------------- */
static uint8_t g_img[N * FEAT];
static int32_t g_lab[N];

static void make_data(void) {
    for (int i = 0; i < N; i++) {
        g_img[i * FEAT + 0] = (uint8_t)(i % 256); /* the id, to count what was seen */
        g_img[i * FEAT + 1] = (uint8_t)(i / 256);
        for (int j = 2; j < FEAT; j++) g_img[i * FEAT + j] = (uint8_t)(sdl_hash_uniform(17, (uint64_t)i, (uint64_t)j) * 256.0f);
        g_lab[i] = (int32_t)(g_img[i * FEAT + 2] / 64);
    }
}

/* ids trained on since the last checkpoint, appended to dir/seen-<pid> once one commits them */
static int g_pending[N * EPOCHS][2], g_npending;
static void commit_seen(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/seen-%d", dir, (int)getpid());
    FILE *f = fopen(path, "a");
    for (int i = 0; f && i < g_npending; i++) fprintf(f, "%d %d\n", g_pending[i][0], g_pending[i][1]);
    if (f) fclose(f);
    g_npending = 0;
}

static int train(const char *dir, int die_at) {
    if (sdl_mpi_init(NULL, NULL) != SDL_OK) return 2;
    int rank = sdl_mpi_rank(), W = sdl_mpi_size();
    sdl_set_num_threads(1);
    make_data();
    if (GLOBAL_BATCH % (W * B) != 0) { fprintf(stderr, "global batch %d is not a multiple of %d x %d\n", GLOBAL_BATCH, W, B); return 2; }
    int accum = GLOBAL_BATCH / (W * B);
    sdl_dataset data = {N, 1, 1, FEAT, 4, g_img, g_lab};
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", FEAT, 16, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 16, 4, true));
    sdl_optim_desc od = {.kind = SDL_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .accum_steps = accum};
    sdl_optim *opt = sdl_optim_new(m, &od);
    sdl_sched_desc sched = {.kind = SDL_SCHED_COSINE, .base_lr = 0.2f, .total = TOTAL_UPDATES, .warmup = 5, .warmup_start_factor = 0.1f};
    char ckpt[512], final[512];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
    snprintf(final, sizeof final, "%s/final.safetensors", dir);
    sdl_checkpoint_info info = {0};
    bool resumed = access(ckpt, F_OK) == 0;
    if (resumed && sdl_checkpoint_load(ckpt, m, opt, &info) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    sdl_mpi_broadcast_model(m, opt, 0);
    opt->desc.accum_steps = accum; /* this world size's accumulation, whatever the file says */
    int64_t start_step = opt->step;
    if (rank == 0) printf("train: np %d, accumulation %d, %s at update %lld (epoch %lld, sample %lld)\n", W, accum,
                          resumed ? "resumed" : "started", (long long)start_step, (long long)info.epoch, (long long)info.samples);
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(m, NULL);
    sdl_loader *l = sdl_loader_new(&(sdl_loader_desc){.data = &data, .batch_size = B, .shuffle = true, .seed = 5,
                                                      .rank = rank, .world_size = W, .prefetch = -1});
    fflush(stdout);
    for (int64_t e = info.epoch; e < EPOCHS; e++) {
        sdl_loader_seek(l, e, e == info.epoch ? info.samples : 0);
        sdl_tensor *x, *y;
        while (sdl_loader_next(l, &x, &y)) {
            for (int64_t i = 0; i < x->shape[0]; i++)
                g_pending[g_npending][0] = (int)e,
                g_pending[g_npending++][1] = (int)lrintf(sdl_f32(x)[i * FEAT] * 255.0f) + 256 * (int)lrintf(sdl_f32(x)[i * FEAT + 1] * 255.0f);
            bool update = sdl_optim_is_update_step(opt);
            sdl_optim_set_lr(opt, sdl_sched_lr(&sched, opt->step));
            sdl_mpi_ddp_set_sync(ddp, update);
            sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f)); /* the optimizer divides by accum */
            if (die_at > 0 && !resumed && rank == 1 && opt->step == die_at && !update) {
                fprintf(stderr, "rank 1 dies at %.3f\n", wall());
                fflush(stderr);
                raise(SIGKILL);
            }
            if (update) sdl_mpi_ddp_sync(ddp);
            sdl_optim_step(opt);
            sdl_arena_reset();
            if (update && opt->step % EVERY == 0 && opt->step < TOTAL_UPDATES) {
                if (rank == 0) sdl_checkpoint_save_at(ckpt, m, opt, e, sdl_loader_samples_done(l));
                sdl_mpi_barrier(); /* the file is whole before anyone commits its samples */
                commit_seen(dir);
            }
        }
    }
    if (rank == 0) {
        sdl_checkpoint_save(final, m, opt, EPOCHS);
        printf("train: finished at update %lld, %lld after the start\n", (long long)opt->step, (long long)(opt->step - start_step));
    }
    sdl_mpi_barrier();
    commit_seen(dir);
    sdl_loader_free(l);
    sdl_mpi_ddp_free(ddp);
    sdl_optim_free(opt);
    sdl_model_free(m);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}

/* ---- the parent ------------------------------------------------------------------------ */
static int g_size;
static const char *g_argv0;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    fn();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* runs cmd in a clean environment (no mpirun variables of ours); returns its exit status */
static int spawn(const char *cmd, char *out, size_t cap) {
    char full[4096];
    const char *path = getenv("PATH"), *home = getenv("HOME");
    snprintf(full, sizeof full, "env -i PATH='%s' HOME='%s' SDL_MPI_TIMEOUT=5 SDL_LAUNCHER='mpirun --allow-run-as-root --oversubscribe' "
             "timeout 240 %s 2>&1", path ? path : "/usr/bin:/bin", home ? home : "/tmp", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0, k;
    while ((k = fread(out + n, 1, cap - 1 - n, p)) > 0 && n + k < cap - 1) n += k;
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* every sample of every epoch exactly once in the seen-* files of dir */
static void check_seen(const char *dir, const char *what) {
    static int count[EPOCHS][N];
    memset(count, 0, sizeof count);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat %s/seen-*", dir);
    FILE *p = popen(cmd, "r");
    int e, id, lines = 0;
    while (p && fscanf(p, "%d %d", &e, &id) == 2) {
        if (e >= 0 && e < EPOCHS && id >= 0 && id < N) count[e][id]++;
        lines++;
    }
    if (p) pclose(p);
    int bad = 0;
    for (e = 0; e < EPOCHS; e++)
        for (id = 0; id < N; id++) bad += count[e][id] != 1;
    CHECK(lines == EPOCHS * N && bad == 0, "%s: %d samples trained on, %d (epoch, sample) pairs not seen exactly once", what, lines, bad);
}

static bool load_final(const char *dir, float **out, int64_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/final.safetensors", dir);
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", FEAT, 16, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 16, 4, true));
    bool ok = sdl_model_pack(m) == SDL_OK && sdl_checkpoint_load(path, m, NULL, NULL) == SDL_OK;
    if (ok) {
        *n = m->param_floats;
        *out = (float *)malloc((size_t)*n * sizeof(float));
        memcpy(*out, m->param_data, (size_t)*n * sizeof(float));
    }
    sdl_model_free(m);
    return ok;
}

static void test_kill_and_relaunch(void) {
    if (g_rank != 0) return;
    static char out[1 << 17];
    char ref_dir[256], el_dir[256], cmd[2048];
    snprintf(ref_dir, sizeof ref_dir, "/tmp/sdl_elastic_ref_%d", (int)getpid());
    snprintf(el_dir, sizeof el_dir, "/tmp/sdl_elastic_run_%d", (int)getpid());
    mkdir(ref_dir, 0755);
    mkdir(el_dir, 0755);
    /* uninterrupted, np 3 */
    snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe -np 3 '%s' --train %s", g_argv0, ref_dir);
    int rc = spawn(cmd, out, sizeof out);
    CHECK(rc == 0, "the uninterrupted run exited with %d:\n%s", rc, out);
    /* rank 1 of 3 dies at update 27 (epoch 1), the launcher goes on at np 2 */
    snprintf(cmd, sizeof cmd, "sh tools/sdl_elastic.sh --np 3 --min-np 2 --max-restarts 1 -- '%s' --train %s --die-at 27", g_argv0, el_dir);
    rc = spawn(cmd, out, sizeof out);
    CHECK(rc == 0, "the elastic run exited with %d", rc);
    const char *died = strstr(out, "rank 1 dies at "), *ended = strstr(out, "attempt 1 (np 3) exited with ");
    double t_die = died ? atof(died + 15) : 0, t_end = 0;
    int rc1 = ended ? atoi(ended + 29) : 0;
    const char *at = ended ? strstr(ended, " at ") : NULL;
    if (at) t_end = atof(at + 4);
    CHECK(died && ended && rc1 != 0, "no death or no failed first attempt (rc %d)", rc1);
    CHECK(t_end - t_die >= 0 && t_end - t_die < 10, "the job ended %.2f s after the death", t_end - t_die);
    CHECK(strstr(out, "process rank 1") || strstr(out, "rank 1 is missing"), "the output does not name rank 1");
    CHECK(strstr(out, "attempt 2 with 2 ranks") != NULL, "no second attempt at np 2");
    const char *res = strstr(out, "train: np 2, accumulation 3, resumed at update ");
    long resumed_at = res ? atol(res + strlen("train: np 2, accumulation 3, resumed at update ")) : -1;
    CHECK(resumed_at == 25, "resumed at update %ld, want 25 (the checkpoint before the death)", resumed_at);
    const char *fin = strstr(out, "train: finished at update ");
    long fin_at = fin ? atol(fin + strlen("train: finished at update ")) : -1;
    CHECK(fin_at == TOTAL_UPDATES && fin_at - resumed_at >= 50, "finished at update %ld after resuming at %ld", fin_at, resumed_at);
    float *a = NULL, *b = NULL;
    int64_t na = 0, nb = 0;
    bool la = load_final(ref_dir, &a, &na), lb = load_final(el_dir, &b, &nb);
    CHECK(la && lb && na == nb, "final weights missing: %s", sdl_last_error());
    if (la && lb && na == nb) {
        double mx = 1e-30, e = 0;
        for (int64_t i = 0; i < na; i++) mx = fmax(mx, fabs((double)a[i])), e = fmax(e, fabs((double)a[i] - b[i]));
        CHECK(e / mx <= 1e-4, "final weights differ by %g relative", e / mx);
        printf("     rank 1 died at update 27; job over %.2f s later; resumed at np 2 from update %ld, %ld updates more; "
               "final weights %.2g relative from the uninterrupted np-3 run\n", t_end - t_die, resumed_at, fin_at - resumed_at, e / mx);
    }
    check_seen(ref_dir, "uninterrupted");
    check_seen(el_dir, "elastic");
    if (!sdl_test_ok) printf("     elastic output:\n%s\n", out);
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", ref_dir, el_dir);
    if (sdl_test_ok && system(cmd) != 0) printf("     could not remove %s\n", el_dir);
}

/* the same death under a launcher that keeps the job alive (mpirun --enable-recovery, or srun
   without --kill-on-bad-exit): the others stop at their next checked collective, and the
   checker names the missing rank after SDL_MPI_TIMEOUT (5 s here) and ends the job */
static void test_checker_names_dead_rank(void) {
    if (g_rank != 0) return;
    static char out[1 << 16];
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "/tmp/sdl_elastic_rec_%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe --enable-recovery -np 3 '%s' --train %s --die-at 3",
             g_argv0, dir);
    double t0 = wall();
    spawn(cmd, out, sizeof out);
    double t_end = wall();
    const char *died = strstr(out, "rank 1 dies at ");
    double t_die = died ? atof(died + 15) : t0;
    CHECK(died != NULL, "rank 1 did not die:\n%s", out);
    CHECK(strstr(out, "rank 1 is missing it") != NULL, "the checker does not name rank 1:\n%s", out);
    CHECK(t_end - t_die < 10, "the job ended %.2f s after the death", t_end - t_die);
    printf("     without the launcher's help: the checker named rank 1, job over %.2f s after the death\n", t_end - t_die);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("     could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--train") == 0) return train(argv[2], argc >= 5 ? atoi(argv[4]) : 0);
    g_argv0 = argv[0];
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_mpi_set_timeout(300); /* rank 0 runs child jobs while the others wait */
    MRUN(test_kill_and_relaunch);
    MRUN(test_checker_names_dead_rank);
    return mpi_test_finish();
}
