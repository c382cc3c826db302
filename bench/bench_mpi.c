/* bench_mpi.c - sdl_mpi.h: allreduce bandwidth (our ring against MPI_Allreduce) and the
   weak scaling of data-parallel CNN training.

   make bench-mpi   runs  mpirun --bind-to core -np 2 bench_mpi --allreduce
                          mpirun --bind-to core -np 1 bench_mpi --weak
                          mpirun --bind-to core -np 2 bench_mpi --weak

   Allreduce: for each size from 4 B to 64 MiB, after checking that the ring and
   MPI_Allreduce give the same sums, the mean time t of one allreduce (the slowest rank's)
   gives, as nccl-tests defines them,
      algbw = bytes / t                    (what the caller sees)
      busbw = algbw * 2 (n - 1) / n        (what each link carried: a ring allreduce moves
                                            2 (n-1)/n of the buffer in and out of each rank)
   Each size runs 5 alternating rounds of ring and MPI and keeps each one's fastest round
   (the machine may be shared). The collective checker is off while timing (it adds two
   small messages per call).
   Weak scaling: each rank trains the Fashion-MNIST CNN on synthetic images, batch 32, one
   thread, sdl_mpi_ddp with its defaults (checker on).
   Rounds of 20 steps alternate four kinds: "alone" (one rank trains, the others sleep; the
   ranks take turns), "indep" (every rank trains, no communication: the ddp with sync off),
   "ddp" (MPI_Allreduce, the default) and "shm" (SDL_MPI_ALGO_SHM). T(1) is the mean over
   ranks of their images/s alone: the same job, binding, thread count and code path as the
   ranks of T(n), so efficiency = T(n) / (n T(1)) compares like with like. indep / (n T(1))
   shows what sharing the machine (memory, caches, a slower core) costs, ddp / indep what
   communicating costs. Images/s of a kind: its best round (a round lasts as long as its
   slowest rank); medians are printed too. The table gives each rank's phases per step in
   wall-clock ms and in the CPU time of its thread (less than the wall time when the rank
   was descheduled; a rank waiting in MPI spins, so sync's CPU time includes the wait).
   SDL_TIMELINE=trace.json writes each rank's timeline, with the rounds marked.
   ZeRO (--zero, run at np 1, 2, 4): the bytes each rank holds for a ResNet-18-shaped model's
   parameters (11.7M, ImageNet shape), gradients and Adam state, measured by counting sdl's
   allocations, for DDP (one sdl_optim) and ZeRO stages 1 and 2 (sdl_mpi_zero), against the
   formula of the ZeRO paper for f32: DDP 16P, stage 1 8P + 8P/N, stage 2 4P + 12P/N,
   stage 3 16P/N (what a rank holds between steps; stage 3 gathers each layer's parameters
   for the step). Then the peak of one training step of that ResNet-18 (2 images of 64x64 per
   rank, Adam): every byte sdl holds at the step's fullest moment (state, activations, the
   gradients, stage 3's gathered layers) for DDP and stage 3, the step arena's share of it
   (it grows by doubling), and stage 3's most gathered
   parameter bytes (sdl_mpi_zero_peak_gathered) against the whole model's, which is what
   stage 3 held when it kept each layer's parameters from its forward to its backward. Then, at np > 1, the time of a training step of the CNN with Adam for each
   stage against DDP in the same job (rounds alternate; best round), after checking that
   they give the same weights. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
/* a counting allocator: the bytes sdl holds now, and the most since g_peak was last set */
static long long g_live, g_peak;
static void *count_alloc(size_t n) {
    size_t *p = (size_t *)malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    g_live += (long long)n;
    if (g_live > g_peak) g_peak = g_live;
    return (char *)p + 16;
}
static void count_free(void *q) {
    if (!q) return;
    size_t *p = (size_t *)((char *)q - 16);
    g_live -= (long long)p[0];
    free(p);
}
static void *count_realloc(void *q, size_t n) {
    void *r = count_alloc(n);
    if (r && q) {
        size_t old = ((size_t *)((char *)q - 16))[0];
        memcpy(r, q, old < n ? old : n);
    }
    if (r || n == 0) count_free(q);
    return r;
}
#define SDL_ALLOC(n) count_alloc(n)
#define SDL_REALLOC(p, n) count_realloc(p, n)
#define SDL_DEALLOC(p) count_free(p)
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int rank_, size_;

static double time_allreduce(float *buf, int64_t count, bool ring, int iters) {
    for (int i = 0; i < 2; i++) { /* warm up */
        if (ring) sdl_mpi_ring_allreduce(buf, count);
        else MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, sdl_mpi_comm());
    }
    MPI_Barrier(sdl_mpi_comm());
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) {
        if (ring) sdl_mpi_ring_allreduce(buf, count);
        else MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, sdl_mpi_comm());
    }
    double t = (MPI_Wtime() - t0) / iters;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    return t;
}

static int bench_allreduce(void) {
    const int64_t max_bytes = 64ll << 20;
    float *a = (float *)malloc((size_t)max_bytes), *b = (float *)malloc((size_t)max_bytes);
    int64_t n = max_bytes / 4;
    /* check first: integer-valued floats sum exactly in any order */
    for (int64_t i = 0; i < n; i++) a[i] = b[i] = (float)((i * 31 + rank_ * 7) % 2001 - 1000);
    sdl_mpi_ring_allreduce(a, n);
    MPI_Allreduce(MPI_IN_PLACE, b, (int)n, MPI_FLOAT, MPI_SUM, sdl_mpi_comm());
    int bad = memcmp(a, b, (size_t)max_bytes) != 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, sdl_mpi_comm());
    if (bad) { if (rank_ == 0) printf("ring allreduce differs from MPI_Allreduce: not timing\n"); return 1; }
    memset(a, 0, (size_t)max_bytes);
    sdl_mpi_set_timeout(0);
    double bus = 2.0 * (size_ - 1) / size_;
    if (rank_ == 0) {
        printf("allreduce, %d ranks (float sum, in place); GB/s = 1e9 bytes/s\n", size_);
        printf("%10s %8s | %10s %10s | %10s %10s | %6s\n", "bytes", "iters", "ring algbw", "ring busbw", "MPI algbw", "MPI busbw", "ratio");
    }
    char lines[16][160];
    int nlines = 0;
    for (int64_t bytes = 4; bytes <= max_bytes; bytes *= 4) {
        int64_t count = bytes / 4;
        int iters = (int)(64ll * 1024 * 1024 / (bytes * 8));
        if (iters > 200) iters = 200;
        if (iters < 5) iters = 5;
        /* best of 5 alternating rounds: the machine may be shared, the minimum is the
           least disturbed measurement of each */
        double tr = 1e30, tm = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t1 = time_allreduce(a, count, true, iters), t2 = time_allreduce(a, count, false, iters);
            tr = t1 < tr ? t1 : tr;
            tm = t2 < tm ? t2 : tm;
        }
        double ar = bytes / tr / 1e9, am = bytes / tm / 1e9;
        if (rank_ == 0) {
            printf("%10lld %8d | %10.3f %10.3f | %10.3f %10.3f | %6.2f\n", (long long)bytes, iters, ar, ar * bus, am, am * bus, tm / tr);
            char size_name[32];
            if (bytes >= 1 << 20) snprintf(size_name, sizeof size_name, "%lldMiB", (long long)(bytes >> 20));
            else if (bytes >= 1 << 10) snprintf(size_name, sizeof size_name, "%lldKiB", (long long)(bytes >> 10));
            else snprintf(size_name, sizeof size_name, "%lldB", (long long)bytes);
            snprintf(lines[nlines++], sizeof lines[0], "BENCH name=allreduce_busbw_np%d_%s sdl=%.3f ref=%.3f unit=GB/s ratio=%.2f",
                     size_, size_name, ar * bus, am * bus, tm / tr);
        }
    }
    if (rank_ == 0) for (int i = 0; i < nlines; i++) printf("%s\n", lines[i]);
    free(a);
    free(b);
    return 0;
}

/* one training step's phases; sync is sdl_mpi_ddp_sync (the wait for the buckets) */
enum { PH_DATA, PH_FWD, PH_BWD, PH_SYNC, PH_OPTIM, PH_N };
static const char *phase_names[PH_N] = {"data", "forward", "backward", "sync", "optim"};
/* what a round runs: one rank alone (the others asleep), every rank on its own (no
   communication), or data parallel */
enum { K_ALONE, K_INDEP, K_DDP, K_SHM, K_N };
static const char *kind_names[K_N] = {"alone", "indep", "ddp", "shm"};

static double thread_cpu_s(void) {
#if defined(CLOCK_THREAD_CPUTIME_ID)
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) return ts.tv_sec + ts.tv_nsec * 1e-9;
#endif
    return 0;
}

/* a barrier that sleeps: the ranks sitting out a round leave their core idle */
static void quiet_barrier(void) {
    MPI_Request req;
    int done = 0;
    struct timespec ts = {0, 100000};
    MPI_Ibarrier(sdl_mpi_comm(), &req);
    while (MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done) nanosleep(&ts, NULL);
    MPI_Barrier(sdl_mpi_comm()); /* and a tight one, so that all start together */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* best and median of n values (sorted in place) */
static void best_median(double *v, int n, double *best, double *median) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    *best = v[n - 1];
    *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Weak scaling. Rounds alternate the three kinds, so that whatever else the machine does
   falls on all of them alike; "alone" rounds take the ranks in turn. The reference T(1) is
   measured in the same job, same binding, same code path (the ddp with sync off), as the
   mean over ranks of their images/s alone. */
static int bench_weak(double ref, int steps, int rounds, float bucket_mb, bool flat) {
    const int B = 32, warm = 5;
    sdl_set_num_threads(1);
    sdl_model *model = sdl_model_new(1);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_max_pool2d_layer(model, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 64 * 12 * 12, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    sdl_optim *opt = sdl_sgd(model, 0.01f, 0.9f, 0.0f, false);
    sdl_mpi_broadcast_model(model, opt, 0);
    sdl_mpi_ddp_desc desc = {flat ? SDL_MPI_MODE_FLAT : SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_DEFAULT, bucket_mb, false};
    sdl_mpi_ddp_desc shm_desc = {SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_SHM, 0, false};
    int nbuckets[2] = {0, 0}; /* MPI, shm */
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(B, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(B), SDL_I32);
    /* per kind: phase sums (wall, cpu) of this rank and the step count they cover;
       per kind and round: images/s of all ranks together (alone: of the one rank) */
    double ph[K_N][2][PH_N] = {{{0}}}, nsteps[K_N] = {0};
    double *rate = (double *)calloc((size_t)K_N * rounds, sizeof(double));
    double *alone = (double *)calloc((size_t)size_ * rounds, sizeof(double)); /* [rank][round] */
    int *nalone = (int *)calloc((size_t)size_, sizeof(int)), s = 0;
    for (int r = -1; r < rounds; r++) {       /* round -1: warm-up, not timed */
        for (int kind = 0; kind < K_N; kind++) {
            if (kind == K_INDEP && size_ == 1) continue; /* the same as alone */
            int solo = r < 0 ? -1 : r % size_;            /* alone: the rank that trains */
            bool train = kind != K_ALONE || solo < 0 || solo == rank_;
            int n = r < 0 ? warm : steps;
            if (kind >= K_DDP) sdl_mpi_broadcast_model(model, opt, 0); /* the others let the weights drift */
            sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(model, kind == K_SHM ? &shm_desc : &desc); /* a window per round: not timed */
            if (!ddp) { fprintf(stderr, "rank %d: %s\n", rank_, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
            nbuckets[kind == K_SHM] = sdl_mpi_ddp_num_buckets(ddp);
            sdl_mpi_ddp_set_sync(ddp, kind >= K_DDP);
            quiet_barrier();
            sdl_mpi_timeline_begin(kind_names[kind]);
            double t0 = MPI_Wtime();
            for (int i = 0; i < n && train; i++, s++) {
                double t[PH_N + 1], c[PH_N + 1];
                t[0] = MPI_Wtime(), c[0] = thread_cpu_s();
                sdl_mpi_timeline_begin("data");
                for (int64_t j = 0; j < x->numel; j++) sdl_f32(x)[j] = sdl_hash_uniform(7, (uint64_t)(s * size_ + rank_), (uint64_t)j);
                for (int j = 0; j < B; j++) sdl_i32(y)[j] = (int32_t)(sdl_hash_uniform(8, (uint64_t)(s * size_ + rank_), (uint64_t)j) * 10) % 10;
                sdl_mpi_timeline_end();
                t[1] = MPI_Wtime(), c[1] = thread_cpu_s();
                sdl_mpi_timeline_begin("forward");
                sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
                sdl_mpi_timeline_end();
                t[2] = MPI_Wtime(), c[2] = thread_cpu_s();
                sdl_mpi_timeline_begin("backward");
                sdl_backward(loss);
                sdl_mpi_timeline_end();
                t[3] = MPI_Wtime(), c[3] = thread_cpu_s();
                sdl_mpi_ddp_sync(ddp);
                t[4] = MPI_Wtime(), c[4] = thread_cpu_s();
                sdl_mpi_timeline_begin("optim");
                sdl_optim_step(opt);
                sdl_arena_reset();
                sdl_mpi_timeline_end();
                t[5] = MPI_Wtime(), c[5] = thread_cpu_s();
                for (int k = 0; k < PH_N && r >= 0; k++) ph[kind][0][k] += t[k + 1] - t[k], ph[kind][1][k] += c[k + 1] - c[k];
            }
            double dt = MPI_Wtime() - t0;
            sdl_mpi_timeline_end();
            sdl_mpi_ddp_free(ddp);
            if (r < 0 || !train) continue;
            nsteps[kind] += n;
            if (kind == K_ALONE) alone[rank_ * rounds + nalone[rank_]++] = B * n / dt;
            else rate[kind * rounds + r] = dt; /* the round lasts as long as its slowest rank: reduced below */
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, rate, K_N * rounds, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    MPI_Allreduce(MPI_IN_PLACE, alone, size_ * rounds, MPI_DOUBLE, MPI_SUM, sdl_mpi_comm());
    MPI_Allreduce(MPI_IN_PLACE, nalone, size_, MPI_INT, MPI_SUM, sdl_mpi_comm());
    double best[K_N], median[K_N], alone_best = 0, alone_median = 0;
    for (int kind = K_INDEP; kind < K_N; kind++) {
        for (int r = 0; r < rounds; r++) rate[kind * rounds + r] = (double)B * size_ * steps / rate[kind * rounds + r];
        best_median(rate + kind * rounds, rounds, &best[kind], &median[kind]);
    }
    for (int q = 0; q < size_; q++) {
        double b, m;
        best_median(alone + q * rounds, nalone[q], &b, &m);
        alone_best += b / size_, alone_median += m / size_;
    }
    if (size_ == 1) best[K_INDEP] = alone_best, median[K_INDEP] = alone_median;
    /* each rank's phases in ms per step, per kind */
    const int nv = K_N * 2 * PH_N;
    double mine[K_N * 2 * PH_N], *all = (double *)calloc((size_t)size_ * nv, sizeof(double));
    for (int kind = 0; kind < K_N; kind++)
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < PH_N; k++) mine[(kind * 2 + w) * PH_N + k] = nsteps[kind] > 0 ? ph[kind][w][k] * 1e3 / nsteps[kind] : 0;
    MPI_Gather(mine, nv, MPI_DOUBLE, all, nv, MPI_DOUBLE, 0, sdl_mpi_comm());
    /* check: the ranks still hold the same weights */
    double sum = 0, lo, hi;
    for (int64_t i = 0; i < model->param_floats; i++) sum += model->param_data[i];
    lo = hi = sum;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, sdl_mpi_comm());
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    if (rank_ == 0) {
        printf("weak scaling, %d ranks x batch %d, 1 thread each, CNN %lld parameters; ddp: MPI_Allreduce, %s, %d buckets; "
               "shm: SDL_MPI_ALGO_SHM, %d buckets; %d rounds of %d steps of each kind\n", size_, B, (long long)model->param_floats,
               flat ? "flat" : "buckets", nbuckets[0], nbuckets[1], rounds, steps);
        printf("ms per step, wall clock (CPU time of the rank's thread)\n%-5s %4s", "kind", "rank");
        for (int k = 0; k < PH_N; k++) printf(" %15s", phase_names[k]);
        printf(" %15s\n", "step");
        for (int kind = 0; kind < K_N; kind++) {
            if (kind == K_INDEP && size_ == 1) continue;
            for (int q = 0; q < size_; q++) {
                double *v = all + q * nv + kind * 2 * PH_N, step = 0, stepc = 0;
                printf("%-5s %4d", kind_names[kind], q);
                for (int k = 0; k < PH_N; k++) printf(" %6.2f (%6.2f)", v[k], v[PH_N + k]), step += v[k], stepc += v[PH_N + k];
                printf(" %6.2f (%6.2f)\n", step, stepc);
            }
        }
        if (lo != hi) printf("ranks' weights differ (%g vs %g): result invalid\n", lo, hi);
        printf("images/s (best round, median round): one rank alone %.1f, %.1f (mean over ranks); %d independent %.1f, %.1f; "
               "ddp %.1f, %.1f; shm %.1f, %.1f\n", alone_best, alone_median, size_, best[K_INDEP], median[K_INDEP], best[K_DDP],
               median[K_DDP], best[K_SHM], median[K_SHM]);
        printf("independent / (%d x alone) %.3f: the machine's share\n", size_, best[K_INDEP] / (size_ * alone_best));
        for (int kind = K_DDP; kind <= K_SHM; kind++)
            printf("efficiency %s / (%d x alone) %.3f (median rounds %.3f); %s / independent %.3f: communication\n",
                   kind_names[kind], size_, best[kind] / (size_ * alone_best), median[kind] / (size_ * alone_median),
                   kind_names[kind], best[kind] / best[K_INDEP]);
        printf("total images/sec: %.2f (ddp), %.2f (shm)\n", best[K_DDP], best[K_SHM]);
        double r1 = ref > 0 ? ref : alone_best;
        printf("BENCH name=weak_scaling_eff_np%d sdl=%.2f ref=%.2f unit=img/s ratio=%.3f\n", size_, best[K_DDP], size_ * r1,
               best[K_DDP] / (size_ * r1));
        printf("BENCH name=weak_scaling_eff_np%d_shm sdl=%.2f ref=%.2f unit=img/s ratio=%.3f\n", size_, best[K_SHM], size_ * r1,
               best[K_SHM] / (size_ * r1));
    }
    free(all);
    free(rate);
    free(alone);
    free(nalone);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(opt);
    sdl_model_free(model);
    sdl_arena_release();
    return lo != hi;
}

/* ---- ZeRO: bytes per rank and step time ----------------------------------------------- */
/* ResNet-18's layers (torchvision, 1000 classes; only their parameters are used here):
   stem, 4 stages of 2 basic blocks, fc */
static sdl_model *resnet18_params(void) {
    sdl_model *m = sdl_model_new(1);
    char n[64];
    sdl_conv2d_layer(m, "conv1", 3, 64, 7, 2, 3, false);
    sdl_batch_norm_layer(m, "bn1", 64);
    int64_t c_in = 64, widths[4] = {64, 128, 256, 512};
    for (int st = 0; st < 4; st++) {
        for (int b = 0; b < 2; b++) {
            int64_t c = widths[st], in = b == 0 ? c_in : c;
            for (int k = 0; k < 2; k++) {
                snprintf(n, sizeof n, "layer%d.%d.conv%d", st + 1, b, k + 1);
                sdl_conv2d_layer(m, n, k == 0 ? in : c, c, 3, k == 0 && b == 0 && st > 0 ? 2 : 1, 1, false);
                snprintf(n, sizeof n, "layer%d.%d.bn%d", st + 1, b, k + 1);
                sdl_batch_norm_layer(m, n, c);
            }
            if (b == 0 && in != c) {
                snprintf(n, sizeof n, "layer%d.0.downsample.0", st + 1);
                sdl_conv2d_layer(m, n, in, c, 1, 2, 0, false);
                snprintf(n, sizeof n, "layer%d.0.downsample.1", st + 1);
                sdl_batch_norm_layer(m, n, c);
            }
        }
        c_in = widths[st];
    }
    sdl_linear_layer(m, "fc", 512, 1000, true);
    return m;
}

/* the largest number of bytes a rank holds, over ranks */
static long long max_over_ranks(long long v) {
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_LONG_LONG, MPI_MAX, sdl_mpi_comm());
    return v;
}

static void bench_zero_memory(void) {
    sdl_optim_desc adam = {.kind = SDL_OPTIM_ADAM, .lr = 1e-3f};
    double P = 0, N = size_;
    if (rank_ == 0) printf("ZeRO memory: bytes per rank for parameters + gradients + Adam state, ResNet-18 shape, np %d\n"
                           "%-8s %14s %14s %8s %14s\n", size_, "kind", "measured", "formula", "ratio", "sdl_mpi_zero_bytes");
    for (int stage = 0; stage <= 3; stage++) {
        long long live0 = g_live;
        sdl_model *m = resnet18_params();
        sdl_model_pack(m);
        P = (double)m->param_floats;
        sdl_optim *o = NULL;
        sdl_mpi_zero *z = NULL;
        if (stage == 0) o = sdl_optim_new(m, &adam);
        else z = sdl_mpi_zero_new(m, &(sdl_mpi_zero_desc){.stage = stage, .optim = adam});
        if (!o && !z) { fprintf(stderr, "rank %d: %s\n", rank_, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        long long buffers = m->buffer_floats * (long long)sizeof(float); /* batch norm's running stats: not counted */
        long long measured = max_over_ranks(g_live - live0 - buffers), own = max_over_ranks(z ? sdl_mpi_zero_bytes(z) : 0);
        double formula = stage == 0 ? 16 * P : stage == 1 ? 8 * P + 8 * P / N : stage == 2 ? 4 * P + 12 * P / N : 16 * P / N;
        const char *names[4] = {"ddp", "zero-1", "zero-2", "zero-3"};
        if (rank_ == 0) {
            printf("%-8s %14lld %14.0f %8.3f %14lld\n", names[stage], measured, formula, measured / formula, own);
            printf("BENCH name=zero_memory_%s_np%d sdl=%lld ref=%.0f unit=bytes ratio=%.3f\n", names[stage], size_, measured, formula,
                   measured / formula);
        }
        sdl_mpi_zero_free(z);
        sdl_optim_free(o);
        sdl_model_free(m);
    }
    if (rank_ == 0) printf("(measured - formula: the gradient buckets, %d MiB each, and the tensors' names)\n", SDL_MPI_ZERO_BUCKET_MB);
}

/* ResNet-18's forward over the layers resnet18_params made (in creation order) */
static sdl_tensor *resnet18_forward(sdl_model *m, sdl_tensor *x) {
    sdl_module **l = m->modules;
    int i = 2;
    x = sdl_max_pool2d(sdl_relu(sdl_forward(l[1], sdl_forward(l[0], x))), 3, 2, 1);
    for (int st = 0; st < 4; st++)
        for (int b = 0; b < 2; b++, i += 4) {
            sdl_tensor *y = sdl_relu(sdl_forward(l[i + 1], sdl_forward(l[i], x)));
            y = sdl_forward(l[i + 3], sdl_forward(l[i + 2], y));
            if (b == 0 && st > 0) { /* the downsample */
                x = sdl_forward(l[i + 5], sdl_forward(l[i + 4], x));
                i += 2;
            }
            x = sdl_relu(sdl_add(y, x));
        }
    return sdl_forward(l[i], sdl_global_avg_pool(x));
}

static void bench_zero3_step_peak(void) {
    sdl_optim_desc adam = {.kind = SDL_OPTIM_ADAM, .lr = 1e-3f};
    const int B = 2, S = 64;
    if (rank_ == 0) printf("ZeRO-3 step peak: bytes per rank in one step, ResNet-18, %d images %dx%d per rank, Adam, np %d\n"
                           "%-8s %14s %14s %14s %14s %14s\n", B, S, S, size_, "kind", "between steps", "step peak", "of it arena", "gathered peak",
                           "model params");
    long long peak[4] = {0, 0, 0, 0};
    for (int stage = 0; stage <= 3; stage += 3) {
        sdl_arena_release(); /* the step's arena counts */
        long long live0 = g_live;
        sdl_model *m = resnet18_params();
        sdl_model_pack(m);
        sdl_optim *o = NULL;
        sdl_mpi_ddp *ddp = NULL;
        sdl_mpi_zero *z = NULL;
        if (stage == 0) o = sdl_optim_new(m, &adam), ddp = sdl_mpi_ddp_new(m, NULL);
        else z = sdl_mpi_zero_new(m, &(sdl_mpi_zero_desc){.stage = stage, .optim = adam});
        if (!(o && ddp) && !z) { fprintf(stderr, "rank %d: %s\n", rank_, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        sdl_tensor *x = sdl_tensor_new(sdl_shape4(B, 3, S, S), SDL_F32), *y = sdl_tensor_new(sdl_shape1(B), SDL_I32);
        for (int64_t j = 0; j < x->numel; j++) sdl_f32(x)[j] = sdl_hash_uniform(9, (uint64_t)rank_, (uint64_t)j);
        for (int j = 0; j < B; j++) sdl_i32(y)[j] = (rank_ * B + j) % 1000;
        long long held = g_live - live0;
        g_peak = g_live;
        sdl_result r = sdl_backward(sdl_cross_entropy(resnet18_forward(m, x), y, 0.0f));
        if (r == SDL_OK) r = stage == 0 ? sdl_mpi_ddp_sync(ddp) : sdl_mpi_zero_step(z);
        if (r == SDL_OK && stage == 0) r = sdl_optim_step(o);
        if (r != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank_, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        peak[stage] = max_over_ranks(g_peak - live0);
        held = max_over_ranks(held);
        long long gathered = max_over_ranks(z ? sdl_mpi_zero_peak_gathered(z) : 0), whole = m->param_floats * (long long)sizeof(float);
        long long arena = max_over_ranks((long long)sdl_arena_capacity()); /* activations, saved data, stage 3's gradients */
        if (rank_ == 0) {
            printf("%-8s %14lld %14lld %14lld %14lld %14lld\n", stage ? "zero-3" : "ddp", held, peak[stage], arena, gathered, whole);
            if (stage) {
                printf("BENCH name=zero3_step_peak_np%d sdl=%lld ref=%lld unit=bytes ratio=%.3f\n", size_, peak[3], peak[0],
                       (double)peak[3] / (double)peak[0]);
                printf("BENCH name=zero3_gathered_peak_np%d sdl=%lld ref=%lld unit=bytes ratio=%.3f\n", size_, gathered, whole,
                       (double)gathered / (double)whole);
            }
        }
        sdl_arena_reset();
        sdl_tensor_free(x);
        sdl_tensor_free(y);
        sdl_mpi_zero_free(z);
        sdl_mpi_ddp_free(ddp);
        sdl_optim_free(o);
        sdl_model_free(m);
    }
    sdl_arena_release();
    if (rank_ == 0) printf("(ref of zero3_gathered_peak: the whole model, what stage 3 held when each layer kept its parameters from forward to backward)\n");
}

/* step time: the CNN with Adam, batch 32 per rank; DDP and ZeRO 1, 2 in alternating rounds */
static sdl_model *cnn(sdl_module **net) {
    sdl_model *model = sdl_model_new(1);
    *net = sdl_sequential(model, "");
    sdl_seq_add(*net, sdl_conv2d_layer(model, "conv1", 1, 32, 3, 1, 0, true));
    sdl_seq_add(*net, sdl_relu_layer(model));
    sdl_seq_add(*net, sdl_conv2d_layer(model, "conv2", 32, 64, 3, 1, 0, true));
    sdl_seq_add(*net, sdl_relu_layer(model));
    sdl_seq_add(*net, sdl_max_pool2d_layer(model, 2, 2));
    sdl_seq_add(*net, sdl_flatten_layer(model));
    sdl_seq_add(*net, sdl_linear_layer(model, "fc1", 64 * 12 * 12, 128, true));
    sdl_seq_add(*net, sdl_relu_layer(model));
    sdl_seq_add(*net, sdl_linear_layer(model, "fc2", 128, 10, true));
    sdl_model_pack(model);
    return model;
}

static int bench_zero_time(int steps, int rounds) {
    const int B = 32;
    sdl_set_num_threads(1);
    sdl_optim_desc adam = {.kind = SDL_OPTIM_ADAM, .lr = 1e-3f};
    enum { K = 4 };
    sdl_module *net[K];
    sdl_model *m[K];
    sdl_optim *o = NULL;
    sdl_mpi_ddp *ddp = NULL;
    sdl_mpi_zero *z[K] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < K; k++) m[k] = cnn(&net[k]);
    o = sdl_optim_new(m[0], &adam);
    ddp = sdl_mpi_ddp_new(m[0], NULL);
    for (int k = 1; k < K; k++) z[k] = sdl_mpi_zero_new(m[k], &(sdl_mpi_zero_desc){.stage = k, .optim = adam});
    if (!o || !ddp || !z[1] || !z[2] || !z[3]) { fprintf(stderr, "rank %d: %s\n", rank_, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(B, 1, 28, 28), SDL_F32), *y = sdl_tensor_new(sdl_shape1(B), SDL_I32);
    double *best = (double *)calloc(K, sizeof(double));
    int s[K] = {0, 0, 0, 0};
    for (int r = -1; r < rounds; r++)
        for (int k = 0; k < K; k++) {
            int n = r < 0 ? 2 : steps;
            quiet_barrier();
            double t0 = MPI_Wtime();
            for (int i = 0; i < n; i++, s[k]++) { /* the same batches for each kind */
                for (int64_t j = 0; j < x->numel; j++) sdl_f32(x)[j] = sdl_hash_uniform(7, (uint64_t)(s[k] * size_ + rank_), (uint64_t)j);
                for (int j = 0; j < B; j++) sdl_i32(y)[j] = (int32_t)(sdl_hash_uniform(8, (uint64_t)(s[k] * size_ + rank_), (uint64_t)j) * 10) % 10;
                sdl_backward(sdl_cross_entropy(sdl_forward(net[k], x), y, 0.0f));
                if (k == 0) sdl_mpi_ddp_sync(ddp), sdl_optim_step(o);
                else sdl_mpi_zero_step(z[k]);
                sdl_arena_reset();
            }
            double dt = MPI_Wtime() - t0;
            MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
            if (r >= 0 && (best[k] == 0 || dt / n < best[k])) best[k] = dt / n;
        }
    /* check: all trained the same weights (stage 3 gives the model its parameters back) */
    for (int k = 1; k < K; k++) sdl_mpi_zero_free(z[k]);
    double worst = 0, mx = 1e-30;
    for (int k = 1; k < K; k++)
        for (int64_t i = 0; i < m[0]->param_floats; i++)
            worst = fmax(worst, fabs((double)m[k]->param_data[i] - m[0]->param_data[i])), mx = fmax(mx, fabs((double)m[0]->param_data[i]));
    worst = (double)max_over_ranks((long long)(worst / mx * 1e9)) * 1e-9;
    if (rank_ == 0) {
        printf("ZeRO step time, np %d, CNN %lld parameters, Adam, batch %d per rank, best of %d rounds of %d steps; "
               "weights equal to DDP's within %.2g relative\n", size_, (long long)m[0]->param_floats, B, rounds, steps, worst);
        printf("%-8s %10s %8s\n", "kind", "ms/step", "vs ddp");
        const char *names[K] = {"ddp", "zero-1", "zero-2", "zero-3"};
        for (int k = 0; k < K; k++) {
            printf("%-8s %10.2f %8.3f\n", names[k], best[k] * 1e3, best[k] / best[0]);
            if (k) printf("BENCH name=zero%d_step_time_np%d sdl=%.3f ref=%.3f unit=ms ratio=%.3f\n", k, size_, best[k] * 1e3, best[0] * 1e3, best[k] / best[0]);
        }
    }
    free(best);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_mpi_ddp_free(ddp);
    sdl_optim_free(o);
    for (int k = 0; k < K; k++) sdl_model_free(m[k]);
    sdl_arena_release();
    return worst > 1e-4;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    rank_ = sdl_mpi_rank();
    size_ = sdl_mpi_size();
    bool allreduce = false, weak = false, zero = false;
    float ref = 0, bucket_mb = 0;
    int steps = 20, rounds = 8;
    bool flat = false;
    sdl_arg args[] = {{"allreduce", SDL_ARG_BOOL, &allreduce, "allreduce bandwidth, ring vs MPI"},
                      {"weak", SDL_ARG_BOOL, &weak, "weak scaling of CNN training"},
                      {"ref", SDL_ARG_FLOAT, &ref, "images/s of one rank (default: measured in this job)"},
                      {"steps", SDL_ARG_INT, &steps, "weak scaling: steps per timed round"},
                      {"rounds", SDL_ARG_INT, &rounds, "weak scaling: timed rounds of each kind (the best one counts)"},
                      {"bucket-mb", SDL_ARG_FLOAT, &bucket_mb, "weak scaling: DDP bucket size in MiB (0: default)"},
                      {"flat", SDL_ARG_BOOL, &flat, "weak scaling: one allreduce after backward (SDL_MPI_MODE_FLAT)"},
                      {"zero", SDL_ARG_BOOL, &zero, "ZeRO: bytes per rank (ResNet-18 shape) and, np > 1, step time vs DDP"}};
    const int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || steps < 1 || rounds < 1) {
        if (rank_ == 0) { fprintf(stderr, "%s\n", sdl_last_error()); sdl_args_usage(stderr, argv[0], args, nargs); }
        sdl_mpi_finalize();
        return 2;
    }
    if (zero) {
        bench_zero_memory();
        bench_zero3_step_peak();
        int zr = size_ > 1 ? bench_zero_time(steps / 2 > 0 ? steps / 2 : 1, rounds < 3 ? rounds : 3) : 0;
        sdl_mpi_finalize();
        return zr;
    }
    if (!allreduce && !weak) allreduce = weak = true;
    if (rounds < size_) rounds = size_; /* every rank gets an "alone" round */
    int rc = 0;
    if (allreduce && size_ > 1) rc |= bench_allreduce();
    if (weak) rc |= bench_weak(ref, steps, rounds, bucket_mb, flat);
    sdl_mpi_finalize();
    return rc;
}
