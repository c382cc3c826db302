/* bench_cpu.c - sdl on the CPU against OpenBLAS (sgemm) and PyTorch (training steps), in one
   run with the same thread count. Build and run: make bench-cpu   (or ./build/bench_cpu --threads 2)
   Prints a table, then one line per number:
     BENCH name=<name> sdl=<value> ref=<value> unit=<unit> ratio=<sdl/ref>
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

/* samples/s of SGD (lr 0.01, momentum 0.9) steps on random data; steps for ~secs seconds.
   *per_cpu_s: samples per second of process CPU time (all threads), which other programs on a
   loaded machine do not inflate */
static double train_throughput(bool cnn, int batch, double secs, double *per_cpu_s) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = cnn ? make_cnn(m) : make_mlp(m);
    sdl_optim *opt = sdl_sgd(m, 0.01f, 0.9f, 0.0f, false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(batch), SDL_I32);
    sdl_tensor_uniform(x, 0, 1);
    for (int i = 0; i < batch; i++) sdl_i32(y)[i] = (int32_t)(sdl_rand_uniform() * 10) % 10;
    double t0 = 0;
    clock_t c0 = 0;
    int steps = 0;
    float loss0 = 0, loss = 0;
    for (int s = 0;; s++) {
        if (s == 2) { t0 = now(); c0 = clock(); } /* two warm-up steps */
        sdl_arena_reset();
        sdl_tensor *l = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
        if (!l) { fprintf(stderr, "bench: %s\n", sdl_last_error()); exit(1); }
        loss = sdl_item(l);
        if (s == 0) loss0 = loss;
        sdl_backward(l);
        sdl_optim_step(opt);
        if (s >= 2) steps++;
        if (s >= 4 && now() - t0 > secs) break;
    }
    double rate = (double)steps * batch / (now() - t0);
    *per_cpu_s = (double)steps * batch / ((double)(clock() - c0) / CLOCKS_PER_SEC);
    if (!(loss < loss0)) fprintf(stderr, "bench: warning: %s loss did not fall (%g -> %g)\n", cnn ? "cnn" : "mlp", loss0, loss);
    sdl_arena_reset();
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
    return rate;
}

static void bench_line(const char *name, double sdl, double ref, const char *unit) {
    printf("BENCH name=%s sdl=%.1f ref=%.1f unit=%s ratio=%.2f\n", name, sdl, ref, unit, ref > 0 ? sdl / ref : 0.0);
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
    bool skip_torch = false, skip_gemm = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--threads") || !strcmp(argv[i], "--num_threads")) && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) skip_torch = true;
        else if (!strcmp(argv[i], "--no-gemm")) skip_gemm = true;
        else if (!strcmp(argv[i], "--keep-coretype")) continue;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) { only = argv[++i]; skip_gemm = skip_torch = true; }
        else {
            fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--no-torch] [--no-gemm] [--keep-coretype] [--only mlp_b64|mlp_b512|cnn_b64|cnn_b512]\n"
                            "  (--only times one model, for SDL_PROFILE=1 runs)\n", argv[0]);
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

    const char *tnames[4] = {"mlp_b64", "mlp_b512", "cnn_b64", "cnn_b512"};
    double t_sdl[4] = {0, 0, 0, 0}, t_ref[4] = {0, 0, 0, 0}, c_sdl[4] = {0, 0, 0, 0}, c_ref[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        if (!only || !strcmp(only, tnames[i])) t_sdl[i] = train_throughput(i >= 2, i % 2 ? 512 : 64, secs, &c_sdl[i]);
    if (!skip_torch) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/bench_torch.py --threads %d --seconds %g", threads, secs);
        FILE *p = popen(cmd, "r");
        char line[256];
        while (p && fgets(line, sizeof line, p)) {
            char nm[64];
            double v, c;
            if (sscanf(line, "TORCH name=%63s value=%lf cpu=%lf", nm, &v, &c) == 3)
                for (int i = 0; i < 4; i++) if (!strcmp(nm, tnames[i])) { t_ref[i] = v; c_ref[i] = c; }
        }
        if (!p || pclose(p) != 0) printf("(torch run failed: see bench/bench_torch.py; ratios against torch are 0)\n");
    }
    printf("\n%-12s %14s %14s %6s   %14s %14s %6s\n", "training", "sdl samples/s", "torch", "ratio", "sdl per CPU-s", "torch", "ratio");
    for (int i = 0; i < 4; i++)
        if (t_sdl[i] > 0.0)
            printf("%-12s %14.0f %14.0f %6.2f   %14.0f %14.0f %6.2f\n", tnames[i], t_sdl[i], t_ref[i], t_ref[i] > 0 ? t_sdl[i] / t_ref[i] : 0.0,
                   c_sdl[i], c_ref[i], c_ref[i] > 0 ? c_sdl[i] / c_ref[i] : 0.0);
    for (int i = 0; i < 4; i++) {
        char name[64];
        if (t_sdl[i] == 0.0) continue; /* not run (--only) */
        snprintf(name, sizeof name, "train_%s", tnames[i]);
        bench_line(name, t_sdl[i], t_ref[i], "samples/s");
        snprintf(name, sizeof name, "train_%s_per_cpu_s", tnames[i]);
        bench_line(name, c_sdl[i], c_ref[i], "samples/cpu-s");
    }
    return 0;
}
