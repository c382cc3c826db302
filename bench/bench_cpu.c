/* bench_cpu.c - sdl on the CPU against OpenBLAS (sgemm) and PyTorch (training steps), in one
   run with the same thread count. Build and run: make bench-cpu   (or ./build/bench_cpu --threads 2)
   Models: MLP and CNN (batch 64, 512), ResNet-18 (CIFAR shape, batch 32) and GPT-2 124M shapes
   (B 4, T 64, AdamW), each trained on a fixed random batch; then the same at 1, 2 and all
   cores (thread scaling, sdl's and torch's own speed-up over 1 thread; --no-scaling skips it).
   Prints tables, then one line per number:
     BENCH name=<name> sdl=<value> ref=<value> unit=<unit> ratio=<sdl/ref>
     (train_<model>, train_<model>_per_cpu_s, scale_<model>_t<N>, scale_<model>_t<N>_over_t1)
   Every sgemm is checked against OpenBLAS before it is timed. */
#define _GNU_SOURCE
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <cblas.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* OpenBLAS's worker threads spin for 2^28 TSC ticks (~0.13 s here) after each call before they
   sleep: timing sdl's threads within that time means sharing cores with them (at 2 threads that
   halved sdl's speed). The bench naps longer than that before each sdl round. */
#define OPENBLAS_IDLE_S 0.25
static void nap(double s) { /* lets OpenBLAS's spinning threads go idle before we time sdl */
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

typedef struct { const char *name; int M, N, K; bool ta, tb; } gemm_case;
static const gemm_case cases[] = {
    {"sq64", 64, 64, 64, 0, 0}, {"sq128", 128, 128, 128, 0, 0}, {"sq256", 256, 256, 256, 0, 0},
    {"sq512", 512, 512, 512, 0, 0}, {"sq1024", 1024, 1024, 1024, 0, 0}, {"sq2048", 2048, 2048, 2048, 0, 0},
    {"mlp_fc1_fwd", 64, 256, 784, 0, 1},  /* y = x W^T, batch 64 */
    {"mlp_fc1_dw", 256, 784, 64, 1, 0},   /* dW = dy^T x */
    {"cnn_conv2_fwd", 64, 576, 288, 0, 0}, /* W (64, 288) @ col (288, 576), per sample */
    {"cnn_conv2_dw", 64, 288, 576, 0, 1}, /* dy (64, 576) @ col^T */
    {"cnn_conv2_dx", 288, 576, 64, 1, 0}, /* W^T dy */
    {"cnn_fc1_fwd", 64, 128, 9216, 0, 1},
    {"cnn_fc1_dx", 64, 9216, 128, 0, 0},
    {"mlp_fc1_fwd_b512", 512, 256, 784, 0, 1},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static float *rnd(int64_t n) {
    float *p = (float *)malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = sdl_rand_uniform() - 0.5f;
    return p;
}

typedef struct { float *A, *B, *C; } gemm_bufs;
static void run_gemm(const gemm_case *c, gemm_bufs *b, bool blas) {
    int lda = c->ta ? c->M : c->K, ldb = c->tb ? c->K : c->N;
    if (blas)
        cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans, c->M, c->N, c->K,
                    1.0f, b->A, lda, b->B, ldb, 0.0f, b->C, c->N);
    else
        sdl_sgemm(c->ta, c->tb, c->M, c->N, c->K, 1.0f, b->A, lda, b->B, ldb, 0.0f, b->C, c->N);
}
/* seconds per call: the mean over enough calls to last ~0.1 s */
static double time_calls(const gemm_case *c, gemm_bufs *b, bool blas) {
    int reps = (int)(0.1 * 150e9 / (2.0 * c->M * c->N * c->K)) + 1;
    double t = now();
    for (int i = 0; i < reps; i++) run_gemm(c, b, blas);
    return (now() - t) / reps;
}
/* GFLOP/s of sdl and OpenBLAS: best of 3 rounds, the two timed alternately so a change in
   machine load hits both; a nap before each sdl round lets OpenBLAS's spinning threads go idle
   (sdl's own pool spins only ~50 us after a job: nothing next to a 0.1 s round) */
static void time_gemm(const gemm_case *c, gemm_bufs *b, double *g_sdl, double *g_ref) {
    double flops = 2.0 * c->M * c->N * c->K, best_sdl = 1e30, best_ref = 1e30;
    for (int r = 0; r < 3; r++) {
        nap(OPENBLAS_IDLE_S);
        double t = time_calls(c, b, false);
        best_sdl = t < best_sdl ? t : best_sdl;
        t = time_calls(c, b, true);
        best_ref = t < best_ref ? t : best_ref;
    }
    *g_sdl = flops / best_sdl * 1e-9;
    *g_ref = flops / best_ref * 1e-9;
}

/* ---- training throughput ---- */
/* examples/resnet18.c and examples/gpt2.c with their main renamed: the models the course runs */
#define main resnet18_main
#include "../examples/resnet18.c"
#undef main
#define main gpt2_main
#include "../examples/gpt2.c"
#undef main

enum { BM_MLP, BM_CNN, BM_RESNET, BM_GPT2 };
typedef struct bench_model {
    const char *name; /* bench_torch.py prints the same names */
    int kind, batch;
    const char *unit;
} bench_model;
static const bench_model models[] = {
    {"mlp_b64", BM_MLP, 64, "samples/s"},       {"mlp_b512", BM_MLP, 512, "samples/s"},
    {"cnn_b64", BM_CNN, 64, "samples/s"},       {"cnn_b512", BM_CNN, 512, "samples/s"},
    {"resnet18_b32", BM_RESNET, 32, "samples/s"}, /* CIFAR shape: 3 x 32 x 32, 10 classes */
    {"gpt2_b4_t64", BM_GPT2, 4, "tokens/s"},    /* GPT-2 124M shapes, B 4, T 64, AdamW */
};
#define NMODELS (int)(sizeof models / sizeof models[0])
#define GPT2_T 64

static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 256, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 256, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc3", 128, 10, true));
    return net;
}
static sdl_module *make_cnn(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 9216, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
    return net;
}

/* one model's training state: a module net with SGD (lr 0.01, momentum 0.9) on random
   images, or the GPT-2 of examples/gpt2.c with AdamW on random tokens */
typedef struct bench_run {
    const bench_model *bm;
    sdl_model *m;
    sdl_module *net;
    gpt2 *g;
    sdl_optim *opt;
    sdl_tensor *x, *y;
} bench_run;

static bool bench_run_new(bench_run *r, const bench_model *bm) {
    static gpt2 g;
    memset(r, 0, sizeof *r);
    r->bm = bm;
    int B = bm->batch;
    if (bm->kind == BM_GPT2) {
        gpt2_config cfg = {50257, GPT2_T, 12, 12, 768};
        if (!gpt2_build(&g, cfg, 1)) return false;
        gpt2_init(&g);
        r->g = &g;
        r->m = g.model;
        r->opt = sdl_adamw(r->m, 3e-4f, 0.9f, 0.95f, 0.1f);
        r->x = sdl_tensor_new(sdl_shape2(B, GPT2_T), SDL_I32);
        r->y = sdl_tensor_new(sdl_shape2(B, GPT2_T), SDL_I32);
        if (r->x && r->y) gpt2_random_batch(r->x, r->y, cfg.vocab, 1);
        return r->opt && r->x && r->y;
    }
    r->m = sdl_model_new(1);
    r->net = bm->kind == BM_MLP ? make_mlp(r->m) : bm->kind == BM_CNN ? make_cnn(r->m) : resnet18_new(r->m, 64, 10);
    r->opt = r->net ? sdl_sgd(r->m, 0.01f, 0.9f, 0.0f, false) : NULL;
    r->x = bm->kind == BM_RESNET ? sdl_tensor_new(sdl_shape4(B, 3, 32, 32), SDL_F32) : sdl_tensor_new(sdl_shape4(B, 1, 28, 28), SDL_F32);
    r->y = sdl_tensor_new(sdl_shape1(B), SDL_I32);
    if (!r->opt || !r->x || !r->y) return false;
    sdl_tensor_uniform(r->x, 0, 1);
    for (int i = 0; i < B; i++) sdl_i32(r->y)[i] = (int32_t)(sdl_rand_uniform() * 10) % 10;
    return true;
}

static float bench_step(bench_run *r) {
    sdl_arena_reset();
    if (r->g) return gpt2_train_step(r->g, r->opt, r->x, r->y);
    sdl_tensor *l = sdl_cross_entropy(sdl_forward(r->net, r->x), r->y, 0.0f);
    if (!l || sdl_backward(l) != SDL_OK || sdl_optim_step(r->opt) != SDL_OK) return NAN;
    return sdl_item(l);
}

static void bench_run_free(bench_run *r) {
    sdl_arena_reset();
    sdl_optim_free(r->opt);
    sdl_tensor_free(r->x);
    sdl_tensor_free(r->y);
    sdl_model_free(r->m);
}

/* samples (GPT-2: tokens) per second of training steps on a fixed batch, for ~secs seconds
   after two warm-up steps, at least 3 timed. *per_cpu_s: the same per second of process
   CPU time (all threads), which other programs on a loaded machine do not inflate */
static double train_throughput(const bench_model *bm, double secs, double *per_cpu_s) {
    bench_run r;
    if (!bench_run_new(&r, bm)) { fprintf(stderr, "bench %s: %s\n", bm->name, sdl_last_error()); exit(1); }
    double t0 = 0, per_step = (double)bm->batch * (bm->kind == BM_GPT2 ? GPT2_T : 1);
    clock_t c0 = 0;
    int steps = 0;
    float loss0 = 0, loss = 0;
    for (int s = 0;; s++) {
        if (s == 2) { t0 = now(); c0 = clock(); } /* two warm-up steps */
        loss = bench_step(&r);
        if (!isfinite(loss)) { fprintf(stderr, "bench %s: %s\n", bm->name, sdl_last_error()); exit(1); }
        if (s == 0) loss0 = loss;
        if (s >= 2) steps++;
        if (s >= 4 && now() - t0 > secs) break;
    }
    double rate = steps * per_step / (now() - t0);
    *per_cpu_s = steps * per_step / ((double)(clock() - c0) / CLOCKS_PER_SEC);
    if (!(loss < loss0)) fprintf(stderr, "bench: warning: %s loss did not fall (%g -> %g)\n", bm->name, loss0, loss);
    bench_run_free(&r);
    return rate;
}

/* bench_torch.py at `threads` for the models in `want` (NULL: all): its rates by model */
static bool torch_rates(int threads, double secs, const bool *want, double *rate, double *per_cpu) {
    char cmd[512] = "", list[256] = "";
    for (int i = 0; i < NMODELS; i++)
        if (want[i]) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "", models[i].name);
    if (!list[0]) return true;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/bench_torch.py --threads %d --seconds %g --models %s", threads, secs, list);
    FILE *p = popen(cmd, "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        char nm[64];
        double v, c;
        if (sscanf(line, "TORCH name=%63s value=%lf cpu=%lf", nm, &v, &c) == 3)
            for (int i = 0; i < NMODELS; i++) if (!strcmp(nm, models[i].name)) { rate[i] = v; per_cpu[i] = c; }
    }
    return p && pclose(p) == 0;
}

static void bench_line(const char *name, double sdl, double ref, const char *unit) {
    int d = !strcmp(unit, "x") ? 2 : 1; /* speed-ups (x) with two decimals */
    printf("BENCH name=%s sdl=%.*f ref=%.*f unit=%s ratio=%.2f\n", name, d, sdl, d, ref, unit, ref > 0 ? sdl / ref : 0.0);
}

int main(int argc, char **argv) {
    /* OpenBLAS 0.3.21 (Debian 12) takes AMD Zen 4/5 for Haswell (AVX2 kernels; this machine's
       environment even sets OPENBLAS_CORETYPE=Haswell). Compare against its AVX-512 kernels where
       the CPU has them: the variable is read when the library loads, so set it and start again.
       --keep-coretype keeps whatever the environment says. */
    bool keep = false;
    for (int i = 1; i < argc; i++) keep = keep || !strcmp(argv[i], "--keep-coretype");
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (!keep && !getenv("SDL_BENCH_REEXEC") && __builtin_cpu_supports("avx512f") &&
        (!ct || (strcmp(ct, "SkylakeX") && strcmp(ct, "Cooperlake") && strcmp(ct, "SapphireRapids")))) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        setenv("SDL_BENCH_REEXEC", "1", 1);
        execv("/proc/self/exe", argv);
    }
#endif
    int threads = 0;
    double secs = 2.0;
    bool skip_torch = false, skip_gemm = false, scaling = true;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--threads") || !strcmp(argv[i], "--num_threads")) && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) skip_torch = true;
        else if (!strcmp(argv[i], "--no-gemm")) skip_gemm = true;
        else if (!strcmp(argv[i], "--no-scaling")) scaling = false;
        else if (!strcmp(argv[i], "--keep-coretype")) continue;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) { only = argv[++i]; skip_gemm = skip_torch = true; scaling = false; }
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--no-torch] [--no-gemm] [--no-scaling] [--keep-coretype]\n"
                            "  [--models LIST] [--only LIST]   LIST: comma-separated of mlp_b64 mlp_b512 cnn_b64 cnn_b512\n"
                            "  resnet18_b32 gpt2_b4_t64 (--models: those only; --only: those on sdl alone, no sgemm, no\n"
                            "  scaling, for SDL_PROFILE=1 runs)\n", argv[0]);
            return 2;
        }
    }
    sdl_set_num_threads(threads);
    threads = sdl_get_num_threads();
    openblas_set_num_threads(threads);
    printf("sdl CPU bench, %d thread(s); OpenBLAS kernels: %s\n", threads, openblas_get_corename());

    if (!skip_gemm) {
        double g_sdl[NCASES], g_ref[NCASES];
        gemm_bufs bufs[NCASES];
        /* check every case against OpenBLAS first */
        for (int i = 0; i < NCASES; i++) {
            const gemm_case *c = &cases[i];
            bufs[i].A = rnd((int64_t)c->M * c->K);
            bufs[i].B = rnd((int64_t)c->K * c->N);
            bufs[i].C = rnd((int64_t)c->M * c->N);
            float *R = (float *)malloc(sizeof(float) * (size_t)c->M * c->N);
            run_gemm(c, &bufs[i], false);
            memcpy(R, bufs[i].C, sizeof(float) * (size_t)c->M * c->N);
            run_gemm(c, &bufs[i], true);
            double err = 0, mx = 0;
            for (int64_t j = 0; j < (int64_t)c->M * c->N; j++) {
                err = fmax(err, fabs(R[j] - bufs[i].C[j]));
                mx = fmax(mx, fabs(bufs[i].C[j]));
            }
            free(R);
            if (err > 1e-5 * (1 + mx) * sqrt((double)c->K)) {
                printf("sgemm %s differs from OpenBLAS by %g (max |C| %g): not timed\n", c->name, err, mx);
                return 1;
            }
        }
        nap(0.3);
        for (int i = 0; i < NCASES; i++) time_gemm(&cases[i], &bufs[i], &g_sdl[i], &g_ref[i]);
        nap(0.3);
        printf("\n%-18s %6s %6s %6s %3s %3s %10s %10s %6s\n", "sgemm", "M", "N", "K", "tA", "tB", "sdl GF/s", "OpenBLAS", "ratio");
        for (int i = 0; i < NCASES; i++) {
            const gemm_case *c = &cases[i];
            printf("%-18s %6d %6d %6d %3d %3d %10.1f %10.1f %6.2f\n", c->name, c->M, c->N, c->K, c->ta, c->tb, g_sdl[i], g_ref[i], g_sdl[i] / g_ref[i]);
        }
        for (int i = 0; i < NCASES; i++) {
            char name[64];
            snprintf(name, sizeof name, "sgemm_%s", cases[i].name);
            bench_line(name, g_sdl[i], g_ref[i], "GFLOP/s");
            free(bufs[i].A); free(bufs[i].B); free(bufs[i].C);
        }
    }

    /* every model at the asked thread count, then (unless --no-scaling) at 1, 2 and all cores */
    int tl[4] = {threads, 1, 2, (int)sysconf(_SC_NPROCESSORS_ONLN)}, nt = scaling ? 4 : 1;
    bool want[NMODELS];
    for (int i = 0; i < NMODELS; i++) { /* --only / --models: a comma-separated list */
        size_t len = strlen(models[i].name);
        const char *at = only;
        while (at && (at = strstr(at, models[i].name)) && ((at != only && at[-1] != ',') || (at[len] && at[len] != ','))) at += len;
        want[i] = !only || at;
    }
    static double t_sdl[4][NMODELS], c_sdl[4][NMODELS], t_ref[4][NMODELS], c_ref[4][NMODELS];
    for (int k = 0; k < nt; k++) {
        int dup = -1;
        for (int j = 0; j < k; j++) if (tl[j] == tl[k]) dup = j;
        if (dup >= 0 || tl[k] < 1) { /* measured already (or no core count): copy the row */
            if (dup >= 0) {
                memcpy(t_sdl[k], t_sdl[dup], sizeof t_sdl[k]); memcpy(c_sdl[k], c_sdl[dup], sizeof c_sdl[k]);
                memcpy(t_ref[k], t_ref[dup], sizeof t_ref[k]); memcpy(c_ref[k], c_ref[dup], sizeof c_ref[k]);
            }
            continue;
        }
        sdl_set_num_threads(tl[k]);
        for (int i = 0; i < NMODELS; i++)
            if (want[i]) t_sdl[k][i] = train_throughput(&models[i], secs, &c_sdl[k][i]);
        if (!skip_torch && !torch_rates(tl[k], secs, want, t_ref[k], c_ref[k]))
            printf("(torch run at %d threads failed: see bench/bench_torch.py; ratios against torch are 0)\n", tl[k]);
    }
    sdl_set_num_threads(threads);
    printf("\n%-13s %14s %14s %6s   %14s %14s %6s   (%d threads)\n", "training", "sdl per s", "torch", "ratio", "sdl per CPU-s", "torch", "ratio", threads);
    for (int i = 0; i < NMODELS; i++)
        if (t_sdl[0][i] > 0.0)
            printf("%-13s %14.0f %14.0f %6.2f   %14.0f %14.0f %6.2f   %s\n", models[i].name, t_sdl[0][i], t_ref[0][i],
                   t_ref[0][i] > 0 ? t_sdl[0][i] / t_ref[0][i] : 0.0, c_sdl[0][i], c_ref[0][i],
                   c_ref[0][i] > 0 ? c_sdl[0][i] / c_ref[0][i] : 0.0, models[i].unit);
    for (int i = 0; i < NMODELS; i++) {
        char name[64], unit[32];
        if (t_sdl[0][i] == 0.0) continue; /* not run (--only) */
        snprintf(name, sizeof name, "train_%s", models[i].name);
        bench_line(name, t_sdl[0][i], t_ref[0][i], models[i].unit);
        snprintf(name, sizeof name, "train_%s_per_cpu_s", models[i].name);
        snprintf(unit, sizeof unit, "%.*s/cpu-s", (int)(strlen(models[i].unit) - 2), models[i].unit);
        bench_line(name, c_sdl[0][i], c_ref[0][i], unit);
    }
    if (nt > 1) { /* thread scaling: rows 1 (1 thread), 2 (2), 3 (all cores) */
        int rows = tl[3] > 2 ? 4 : 3;
        printf("\n%-13s %8s %12s %12s %8s %8s\n", "scaling", "threads", "sdl per s", "torch", "sdl xN", "torch xN");
        for (int i = 0; i < NMODELS; i++)
            for (int k = 1; k < rows; k++) {
                if (t_sdl[k][i] == 0.0) continue;
                double sx = t_sdl[k][i] / t_sdl[1][i], tx = t_ref[1][i] > 0 ? t_ref[k][i] / t_ref[1][i] : 0.0;
                printf("%-13s %8d %12.0f %12.0f %8.2f %8.2f\n", models[i].name, tl[k], t_sdl[k][i], t_ref[k][i], sx, tx);
            }
        for (int i = 0; i < NMODELS; i++)
            for (int k = 1; k < rows; k++) {
                char name[64];
                if (t_sdl[k][i] == 0.0) continue;
                snprintf(name, sizeof name, "scale_%s_t%d", models[i].name, tl[k]);
                bench_line(name, t_sdl[k][i], t_ref[k][i], models[i].unit);
                if (k == 1) continue;
                snprintf(name, sizeof name, "scale_%s_t%d_over_t1", models[i].name, tl[k]);
                bench_line(name, t_sdl[k][i] / t_sdl[1][i], t_ref[1][i] > 0 ? t_ref[k][i] / t_ref[1][i] : 0.0, "x");
            }
    }
    return 0;
}
