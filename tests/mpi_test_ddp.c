/* mpi_test_ddp.c - sdl_mpi.h: half conversion, ring allreduce against MPI_Allreduce,
   broadcast, data-parallel training against one process on the whole batch (flat and
   bucketed, MPI and ring), fp16 compression, gradient accumulation, metrics, the timeline.
   Every rank checks; rank 0 prints one line per test and the closing count. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;
static const char *g_argv0;

/* a test passes when it passed on every rank */
static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* ---- half precision ---------------------------------------------------------------- */
static void test_f16_convert(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) { /* every half survives the round trip */
        float f = sdl_mpi_f16_to_f32((uint16_t)h);
        uint16_t back = sdl_mpi_f32_to_f16(f);
        bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan ? !(f != f) : back != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    struct { float f; uint16_t h; } cases[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00},
        {1e9f, 0x7c00}, {5.9604645e-8f, 0x0001}, {2.9802322e-8f, 0x0000}, /* 2^-24, 2^-25 (tie to 0) */
        {4.4703484e-8f, 0x0001},                                           /* 1.5 * 2^-25 */
        {1.0f + 1.0f / 2048, 0x3c00}, {1.0f + 3.0f / 2048, 0x3c02},        /* ties to even */
        {6.1035156e-5f, 0x0400}, {0.0f, 0x0000}, {-0.0f, 0x8000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(sdl_mpi_f32_to_f16(cases[i].f) == cases[i].h, "%g -> 0x%04x, want 0x%04x", (double)cases[i].f,
              sdl_mpi_f32_to_f16(cases[i].f), cases[i].h);
#ifdef __FLT16_MAX__
    /* against the compiler's own conversion on random floats of every magnitude */
    bad = 0;
    for (uint32_t i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)(sdl_hash_uniform(5, 0, i) * 16777216.0f) | ((uint32_t)(sdl_hash_uniform(5, 1, i) * 256.0f) << 24);
        bits = (bits & 0x807fffffu) | ((90u + (bits >> 24) % 60u) << 23); /* exponents 2^-37 .. 2^22 */
        float f;
        memcpy(&f, &bits, 4);
        _Float16 ref = (_Float16)f;
        uint16_t rh;
        memcpy(&rh, &ref, 2);
        if (rh != sdl_mpi_f32_to_f16(f)) bad++;
    }
    CHECK(bad == 0, "%d of 200000 random floats differ from _Float16", bad);
#endif
}

/* ---- ring allreduce equals MPI_Allreduce ------------------------------------------ */
static void test_ring_equals_mpi(void) {
    int64_t counts[] = {0, 1, 7, (1 << 20) + 3};
    for (int c = 0; c < 4; c++) {
        int64_t n = counts[c];
        float *a = (float *)malloc(sizeof(float) * (size_t)(n + 1));
        float *b = (float *)malloc(sizeof(float) * (size_t)(n + 1));
        /* integer values: every order of summation gives the same float */
        for (int64_t i = 0; i < n; i++) a[i] = b[i] = (float)((i * 7 + g_rank * 13) % 1001 - 500);
        CHECK(sdl_mpi_ring_allreduce(a, n) == SDL_OK, "ring: %s", sdl_last_error());
        MPI_Allreduce(MPI_IN_PLACE, b, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        int64_t diff = 0;
        for (int64_t i = 0; i < n; i++) diff += a[i] != b[i];
        CHECK(diff == 0, "count %lld: %lld elements differ", (long long)n, (long long)diff);
        for (int64_t i = 0; i < n; i++) a[i] = (float)(i % 3 + g_rank);
        CHECK(sdl_mpi_allreduce(a, n, SDL_MPI_ALGO_MPI) == SDL_OK, "allreduce: %s", sdl_last_error());
        diff = 0;
        for (int64_t i = 0; i < n; i++) diff += a[i] != (float)(g_size * (i % 3) + g_size * (g_size - 1) / 2);
        CHECK(diff == 0, "sdl_mpi_allreduce count %lld: %lld wrong", (long long)n, (long long)diff);
        free(a);
        free(b);
    }
}

/* fp16 on the wire: the mean within half precision of the exact mean */
static void test_average_fp16(void) {
    int64_t n = 100003;
    float *x = (float *)malloc(sizeof(float) * (size_t)n), *y = (float *)malloc(sizeof(float) * (size_t)n);
    for (int a = 0; a < 2; a++) {
        sdl_mpi_algo algo = a ? SDL_MPI_ALGO_RING : SDL_MPI_ALGO_MPI;
        for (int64_t i = 0; i < n; i++) x[i] = y[i] = (sdl_hash_uniform(3, (uint64_t)g_rank, (uint64_t)i) - 0.5f) * 1e-2f;
        CHECK(sdl_mpi_average(x, n, algo, true) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_average(y, n, algo, false) == SDL_OK, "%s", sdl_last_error());
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)x[i] - y[i]) / 5e-3; /* relative to the inputs' size */
            worst = e > worst ? e : worst;
        }
        /* each half rounding is <= 2^-11 relative; N-1 additions plus the first conversion */
        CHECK(worst < (g_size + 1) * 1.0 / 2048 && (worst > 0 || g_size == 1), "%s fp16 mean off by %g relative", a ? "ring" : "MPI", worst);
    }
    free(x);
    free(y);
}

/* ---- an MLP on synthetic data -------------------------------------------------------- */
typedef struct mlp { sdl_model *m; sdl_module *net; sdl_optim *opt; } mlp;

static mlp mlp_new2(uint64_t seed, bool bn) {
    mlp r;
    r.m = sdl_model_new(seed);
    r.net = sdl_sequential(r.m, "");
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc1", 20, 32, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_linear_layer(r.m, "unused", 7, 3, true); /* a parameter no forward reads */
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc2", 32, 16, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc3", 16, 5, true));
    if (bn) sdl_model_buffer(r.m, "bn.running_mean", sdl_shape1(9)); /* batch-norm statistics */
    r.opt = sdl_sgd(r.m, 0.1f, 0.9f, 1e-4f, false);
    return r;
}
static mlp mlp_new(uint64_t seed) { return mlp_new2(seed, false); }
static void mlp_free(mlp *r) { sdl_optim_free(r->opt); sdl_model_free(r->m); }

/* rows [row0, row0 + rows) of step's global batch: the same numbers on every rank */
static void batch(int step, int row0, int rows, sdl_tensor **x, sdl_tensor **y) {
    *x = sdl_arena_tensor(sdl_shape2(rows, 20), SDL_F32);
    *y = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 20; j++) sdl_f32(*x)[i * 20 + j] = 2.0f * sdl_hash_uniform(1234, (uint64_t)step, (uint64_t)((row0 + i) * 20 + j)) - 1.0f;
        sdl_i32(*y)[i] = (int32_t)(sdl_hash_uniform(99, (uint64_t)step, (uint64_t)(row0 + i)) * 5.0f) % 5;
    }
}

static sdl_tensor *loss_of(mlp *r, int step, int row0, int rows) {
    sdl_tensor *x, *y;
    batch(step, row0, rows, &x, &y);
    return sdl_cross_entropy(sdl_forward(r->net, x), y, 0.0f);
}

/* largest |a - b| over largest |b|, parameter by parameter */
static double worst_rel(const sdl_model *a, const float *va, const sdl_model *b, const float *vb, const char **where) {
    double worst = 0;
    for (int p = 0; p < b->nparams; p++) {
        int64_t off = b->param_offset[p], n = b->params[p]->numel;
        double mx = 1e-30, e = 0;
        for (int64_t i = 0; i < n; i++) {
            mx = fmax(mx, fabs((double)vb[off + i]));
            e = fmax(e, fabs((double)va[off + i] - vb[off + i]));
        }
        if (e / mx > worst) { worst = e / mx; *where = b->params[p]->name; }
    }
    (void)a;
    return worst;
}

/* 20 steps: each rank 32 rows with sdl_mpi_ddp, against one model on all N * 32 rows */
static void dp_vs_single(sdl_mpi_mode mode, sdl_mpi_algo algo) {
    const int B = 32, steps = 20;
    mlp a = mlp_new(7 + 1000 * (uint64_t)g_rank); /* different on every rank until the broadcast */
    CHECK(sdl_mpi_broadcast_model(a.m, a.opt, 0) == SDL_OK, "%s", sdl_last_error());
    /* ~52 floats a bucket: 4 buckets, one holding the unused parameter */
    sdl_mpi_ddp_desc desc = {mode, algo, 0.0002f, false};
    bool dflt = mode == SDL_MPI_MODE_DEFAULT;
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(a.m, dflt ? NULL : &desc);
    CHECK(ddp != NULL, "%s", sdl_last_error());
    if (!ddp) return;
    int want = mode == SDL_MPI_MODE_BUCKETS ? 4 : 1;
    CHECK(sdl_mpi_ddp_num_buckets(ddp) == want, "%d buckets, want %d", sdl_mpi_ddp_num_buckets(ddp), want);
    mlp ref = mlp_new(7);
    for (int s = 0; s < steps; s++) {
        CHECK(sdl_backward(loss_of(&a, s, g_rank * B, B)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(ddp) == SDL_OK, "sync: %s", sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_model_zero_grad(a.m);
        sdl_arena_reset();
        CHECK(sdl_backward(loss_of(&ref, s, 0, B * g_size)) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(ref.opt);
        sdl_model_zero_grad(ref.m);
        sdl_arena_reset();
    }
    const char *where = "";
    double w = worst_rel(a.m, a.m->param_data, ref.m, ref.m->param_data, &where);
    CHECK(w <= 1e-5, "after %d steps '%s' differs by %g relative", steps, where, w);
    if (g_rank == 0) printf("     %d ranks x %d vs 1 x %d, %d steps: worst parameter differs by %.2g relative\n", g_size, B, g_size * B, steps, w);
    double moved = 0; /* and training did move the weights */
    mlp init = mlp_new(7);
    sdl_model_pack(init.m);
    for (int64_t i = 0; i < a.m->param_floats; i++) moved = fmax(moved, fabs((double)a.m->param_data[i] - init.m->param_data[i]));
    CHECK(moved > 1e-3, "weights moved only %g", moved);
    mlp_free(&init);
    sdl_mpi_ddp_free(ddp);
    mlp_free(&a);
    mlp_free(&ref);
}
static void test_dp_flat_mpi(void) { dp_vs_single(SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_MPI); }
static void test_dp_buckets_mpi(void) { dp_vs_single(SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_MPI); }
static void test_dp_flat_ring(void) { dp_vs_single(SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_RING); }
static void test_dp_buckets_ring(void) { dp_vs_single(SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_RING); }
static void test_dp_default_desc(void) { dp_vs_single(SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_DEFAULT); }
static void test_dp_flat_shm(void) { dp_vs_single(SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_SHM); }
static void test_dp_buckets_shm(void) { dp_vs_single(SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_SHM); }

/* 1 MiB buckets on a net whose last layers hold 1.2 MB: bucket 0 = fc3 + fc2 (started
   during backward with MPI_Iallreduce), bucket 1 = fc1 (the last: MPI_Allreduce at sync);
   the default (25 MiB) makes one bucket, as FLAT does. */
static void test_dp_mib_buckets(void) {
    const int B = 16, steps = 4;
    mlp a, ref;
    for (int k = 0; k < 2; k++) {
        mlp *r = k ? &ref : &a;
        r->m = sdl_model_new(k ? 8 : 8 + 1000 * (uint64_t)g_rank);
        r->net = sdl_sequential(r->m, "");
        sdl_seq_add(r->net, sdl_linear_layer(r->m, "fc1", 20, 512, true));
        sdl_seq_add(r->net, sdl_relu_layer(r->m));
        sdl_seq_add(r->net, sdl_linear_layer(r->m, "fc2", 512, 600, true)); /* 307200 floats */
        sdl_seq_add(r->net, sdl_relu_layer(r->m));
        sdl_seq_add(r->net, sdl_linear_layer(r->m, "fc3", 600, 5, true));
        r->opt = sdl_sgd(r->m, 0.05f, 0.9f, 0.0f, false);
    }
    CHECK(sdl_mpi_broadcast_model(a.m, a.opt, 0) == SDL_OK, "%s", sdl_last_error());
    sdl_mpi_ddp_desc flat = {SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_DEFAULT, 0, false};
    sdl_mpi_ddp *f = sdl_mpi_ddp_new(a.m, &flat);
    CHECK(f && sdl_mpi_ddp_num_buckets(f) == 1, "flat: %d buckets, want 1", sdl_mpi_ddp_num_buckets(f));
    sdl_mpi_ddp_free(f);
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(a.m, NULL);
    CHECK(ddp && sdl_mpi_ddp_num_buckets(ddp) == 1, "default: %d buckets, want 1", sdl_mpi_ddp_num_buckets(ddp));
    sdl_mpi_ddp_free(ddp);
    sdl_mpi_ddp_desc mib = {SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_MPI, 1.0f, false};
    ddp = sdl_mpi_ddp_new(a.m, &mib);
    CHECK(ddp && sdl_mpi_ddp_num_buckets(ddp) == 2, "1 MiB: %d buckets, want 2", sdl_mpi_ddp_num_buckets(ddp));
    for (int s = 0; s < steps && ddp; s++) {
        CHECK(sdl_backward(loss_of(&a, s, g_rank * B, B)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(ddp) == SDL_OK, "sync: %s", sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_arena_reset();
        CHECK(sdl_backward(loss_of(&ref, s, 0, B * g_size)) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(ref.opt);
        sdl_arena_reset();
    }
    const char *where = "";
    double w = worst_rel(a.m, a.m->param_data, ref.m, ref.m->param_data, &where);
    CHECK(w <= 1e-5, "after %d steps '%s' differs by %g relative", steps, where, w);
    sdl_mpi_ddp_free(ddp);
    mlp_free(&a);
    mlp_free(&ref);
}

/* ---- broadcast ---------------------------------------------------------------------- */
static void test_broadcast(void) {
    mlp a = mlp_new2(100 + (uint64_t)g_rank, true);
    sdl_tensor *rm = sdl_model_find(a.m, "bn.running_mean");
    sdl_tensor_fill(rm, (float)g_rank);
    for (int64_t i = 0; i < a.m->param_floats; i++) a.opt->state[i] = (float)(g_rank + 1);
    a.opt->step = 10 * g_rank;
    a.opt->lr = 0.1f * (float)(g_rank + 1);
    mlp root = mlp_new(100); /* what rank 0 holds */
    sdl_model_pack(root.m);
    bool differ = memcmp(a.m->param_data, root.m->param_data, sizeof(float) * (size_t)a.m->param_floats) != 0;
    CHECK(g_rank == 0 || differ, "different seeds gave the same weights");
    CHECK(sdl_mpi_broadcast_model(a.m, a.opt, 0) == SDL_OK, "%s", sdl_last_error());
    CHECK(memcmp(a.m->param_data, root.m->param_data, sizeof(float) * (size_t)a.m->param_floats) == 0, "parameters differ from rank 0's");
    int bad = 0;
    for (int i = 0; i < 9; i++) bad += sdl_f32(rm)[i] != 0.0f;
    for (int64_t i = 0; i < a.m->param_floats; i++) bad += a.opt->state[i] != 1.0f;
    CHECK(bad == 0, "%d buffer or optimizer-state values differ from rank 0's", bad);
    CHECK(a.opt->step == 0 && a.opt->lr == 0.1f, "step %lld lr %g", (long long)a.opt->step, (double)a.opt->lr);
    mlp_free(&a);
    mlp_free(&root);
}

/* ---- fp16 compression in the ddp -------------------------------------------------------- */
static void test_ddp_fp16(void) {
    mlp a = mlp_new(11);
    sdl_mpi_ddp_desc exact_d = {SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_MPI, 0, false};
    sdl_mpi_ddp *exact = sdl_mpi_ddp_new(a.m, &exact_d);
    sdl_backward(loss_of(&a, 0, g_rank * 16, 16));
    sdl_mpi_ddp_sync(exact);
    sdl_mpi_ddp_free(exact);
    float *want = (float *)malloc(sizeof(float) * (size_t)a.m->param_floats);
    memcpy(want, a.m->grad_data, sizeof(float) * (size_t)a.m->param_floats);
    sdl_mpi_ddp_desc variants[3] = {{SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_MPI, 0, true},
                                    {SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_MPI, 0.001f, true},
                                    {SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_RING, 0.001f, true}};
    for (int v = 0; v < 3; v++) {
        sdl_model_zero_grad(a.m);
        sdl_arena_reset();
        sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &variants[v]);
        sdl_backward(loss_of(&a, 0, g_rank * 16, 16));
        CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
        const char *where = "";
        double w = worst_rel(a.m, a.m->grad_data, a.m, want, &where);
        CHECK(w < 2e-3 && (w > 0 || g_size == 1), "variant %d: fp16 gradients of '%s' off by %g relative", v, where, w);
        sdl_mpi_ddp_free(d);
    }
    free(want);
    mlp_free(&a);
}

/* ---- gradient accumulation: k micro-batches, communication on the last only ------------ */
static void accumulation(sdl_mpi_algo algo) {
    const int k = 3, mb = 8;
    mlp a = mlp_new(21), ref = mlp_new(21);
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, NULL);
    sdl_mpi_ddp_desc small = {SDL_MPI_MODE_BUCKETS, algo, 0.001f, false};
    sdl_mpi_ddp_free(d);
    d = sdl_mpi_ddp_new(a.m, &small);
    for (int j = 0; j < k; j++) {
        sdl_mpi_ddp_set_sync(d, j == k - 1);
        sdl_tensor *loss = loss_of(&a, 3, g_rank * k * mb + j * mb, mb); /* sum of k means */
        CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error()); /* a no-op until the last */
        sdl_arena_reset();
        if (j == 0) { /* not averaged yet: the ranks' gradients still differ */
            double mine = a.m->grad_data[0], lo = mine, hi = mine;
            MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
            MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            CHECK(lo != hi || g_size == 1, "gradients were communicated with sync off");
        }
    }
    for (int64_t i = 0; i < a.m->param_floats; i++) a.m->grad_data[i] /= (float)k; /* the mean of the means */
    /* one process, one big batch of all N * k * mb rows */
    CHECK(sdl_backward(loss_of(&ref, 3, 0, g_size * k * mb)) == SDL_OK, "%s", sdl_last_error());
    const char *where = "";
    double w = worst_rel(a.m, a.m->grad_data, ref.m, ref.m->grad_data, &where);
    CHECK(w <= 1e-5, "accumulated '%s' differs by %g relative", where, w);
    /* backward twice with sync on and no sdl_mpi_ddp_sync between is reported */
    sdl_mpi_ddp_set_sync(d, true);
    sdl_arena_reset();
    sdl_backward(loss_of(&a, 4, 0, 4));
    sdl_arena_reset();
    sdl_result r = sdl_backward(loss_of(&a, 4, 0, 4));
    CHECK(r == SDL_ERR_STATE && strstr(sdl_last_error(), "without sdl_mpi_ddp_sync"),
          "the second backward without sync returns the hook's error (%d: %s)", (int)r, sdl_last_error());
    CHECK(sdl_mpi_ddp_sync(d) == SDL_ERR_STATE, "a second backward without sync was not reported");
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
    mlp_free(&ref);
}
static void test_accumulation(void) { accumulation(SDL_MPI_ALGO_MPI); }
static void test_accumulation_shm(void) { accumulation(SDL_MPI_ALGO_SHM); }

/* ---- a sync writes every gradient: a later backward adds to the averages -------------- */
static void sync_then_backward_adds(sdl_mpi_algo algo) {
    mlp a = mlp_new(23);
    sdl_mpi_ddp_desc desc = {SDL_MPI_MODE_DEFAULT, algo, 0, false};
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &desc);
    sdl_tensor *uw = sdl_model_find(a.m, "unused.weight"), *ones = sdl_arena_tensor(sdl_shape2(4, 7), SDL_F32);
    for (int i = 0; i < 28; i++) sdl_f32(ones)[i] = 1.0f;
    /* only the last rank reads 'unused': d/dW sum(ones W^T) = 4 everywhere, so its average is 4/N
       while the other ranks' own gradient of it stayed all zeros until the sync */
    sdl_tensor *loss = loss_of(&a, 5, g_rank * 8, 8);
    if (g_rank == g_size - 1) loss = sdl_add(loss, sdl_sum(sdl_linear(ones, uw, NULL)));
    CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
    sdl_arena_reset();
    sdl_mpi_ddp_set_sync(d, false); /* then one more backward, accumulating */
    ones = sdl_arena_tensor(sdl_shape2(4, 7), SDL_F32);
    for (int i = 0; i < 28; i++) sdl_f32(ones)[i] = 1.0f;
    CHECK(sdl_backward(sdl_sum(sdl_linear(ones, uw, NULL))) == SDL_OK, "%s", sdl_last_error());
    float want = 4.0f / (float)g_size + 4.0f, worst = 0.0f;
    for (int64_t i = 0; i < uw->numel; i++) worst = fmaxf(worst, fabsf(uw->grad[i] - want));
    CHECK(worst <= 1e-6f, "unused.weight gradient off by %g from %g (the average was overwritten?)", (double)worst, (double)want);
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
}
static void test_sync_then_backward_adds(void) { sync_then_backward_adds(SDL_MPI_ALGO_MPI); }
static void test_sync_then_backward_adds_shm(void) { sync_then_backward_adds(SDL_MPI_ALGO_SHM); }

/* ---- SDL_MPI_ALGO_SHM: the same means as MPI_Allreduce, in pieces, over several steps --- */
static void test_shm_equals_mpi(void) {
    mlp a = {0};
    a.m = sdl_model_new(31 + 1000 * (uint64_t)g_rank); /* every rank its own weights: different gradients */
    a.net = sdl_sequential(a.m, "");
    sdl_seq_add(a.net, sdl_linear_layer(a.m, "fc1", 20, 512, true));
    sdl_seq_add(a.net, sdl_relu_layer(a.m));
    sdl_seq_add(a.net, sdl_linear_layer(a.m, "fc2", 512, 600, true)); /* 307200 floats: 5 pieces of 65536 */
    sdl_seq_add(a.net, sdl_relu_layer(a.m));
    sdl_seq_add(a.net, sdl_linear_layer(a.m, "fc3", 600, 5, true));
    sdl_model_pack(a.m);
    int64_t n = a.m->param_floats;
    float *own = a.m->grad_data, *want = (float *)malloc(sizeof(float) * (size_t)n);
    sdl_mpi_ddp_desc shm = {SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_SHM, 0, false};
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &shm);
    CHECK(d != NULL, "%s", sdl_last_error());
    if (!d) { free(want); mlp_free(&a); return; }
    CHECK(a.m->grad_data != own, "the gradients did not move into the shared window");
    double worst = 0;
    for (int s = 0; s < 3; s++) { /* the counters carry over from step to step */
        sdl_mpi_ddp_set_sync(d, false);
        sdl_backward(loss_of(&a, s, g_rank * 8, 8));
        memcpy(want, a.m->grad_data, sizeof(float) * (size_t)n);
        sdl_mpi_ddp_set_sync(d, true);
        sdl_model_zero_grad(a.m);
        sdl_arena_reset();
        CHECK(sdl_mpi_average(want, n, SDL_MPI_ALGO_MPI, false) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_backward(loss_of(&a, s, g_rank * 8, 8)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)a.m->grad_data[i] - want[i]) / (fabs(want[i]) + 1e-30);
            if (e > worst) worst = e;
        }
        sdl_model_zero_grad(a.m);
        sdl_arena_reset();
    }
    /* two ranks: (g0 + g1) / 2 either way, bit for bit; three: MPI may add in another order */
    CHECK(g_size == 2 ? worst == 0 : worst <= 1e-6, "shm means differ from MPI_Allreduce's by %g relative", worst);
    sdl_backward(loss_of(&a, 9, g_rank * 8, 8));
    sdl_mpi_ddp_sync(d);
    memcpy(want, a.m->grad_data, sizeof(float) * (size_t)n);
    sdl_mpi_ddp_free(d);
    CHECK(a.m->grad_data == own && a.m->params[0]->grad == own, "sdl_mpi_ddp_free did not give the model its array back");
    CHECK(memcmp(own, want, sizeof(float) * (size_t)n) == 0, "the averaged gradients were lost at sdl_mpi_ddp_free");
    /* misuse is an error, not a hang */
    CHECK(sdl_mpi_allreduce(want, 4, SDL_MPI_ALGO_SHM) == SDL_ERR_ARG, "allreduce with SDL_MPI_ALGO_SHM: %s", sdl_last_error());
    sdl_mpi_ddp_desc fp16 = {SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_SHM, 0, true};
    CHECK(sdl_mpi_ddp_new(a.m, &fp16) == NULL && strstr(sdl_last_error(), "fp16"), "fp16 with shm: %s", sdl_last_error());
    free(want);
    mlp_free(&a);
}

/* ---- metrics -------------------------------------------------------------------------- */
static void test_metrics(void) {
    double v[3] = {(double)g_rank, 1.0, 0.5 * g_rank};
    CHECK(sdl_mpi_sum(v, 3) == SDL_OK, "%s", sdl_last_error());
    double s = g_size * (g_size - 1) / 2.0;
    CHECK(v[0] == s && v[1] == g_size && v[2] == 0.5 * s, "sum %g %g %g", v[0], v[1], v[2]);
    double m[1] = {(double)g_rank};
    sdl_mpi_mean(m, 1);
    CHECK(fabs(m[0] - (g_size - 1) / 2.0) < 1e-12, "mean %g", m[0]);
    int r, n, l;
    sdl_mpi_launcher_env(&r, &n, &l);
    CHECK(r == g_rank && n == g_size, "launcher env says %d of %d", r, n);
    CHECK(sdl_mpi_local_size() == g_size && sdl_mpi_local_rank() == g_rank, "local %d of %d", sdl_mpi_local_rank(), sdl_mpi_local_size());
}

/* ---- timeline, and no allocation per step ---------------------------------------------- */
static void test_timeline(void) {
    char path[600];
    snprintf(path, sizeof path, "%s.trace.json", g_argv0);
    CHECK(sdl_mpi_timeline_open(path, 1000) == SDL_OK, "%s", sdl_last_error());
    mlp a = mlp_new(5);
    sdl_mpi_ddp_desc desc = {SDL_MPI_MODE_BUCKETS, SDL_MPI_ALGO_MPI, 0.001f, false};
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &desc);
    long allocs = 0;
    for (int s = 0; s < 6; s++) {
        if (s == 3) allocs = sdl_test_allocs;
        sdl_mpi_timeline_begin("forward");
        sdl_tensor *loss = loss_of(&a, s, g_rank * 8, 8);
        sdl_mpi_timeline_end();
        sdl_mpi_timeline_begin("backward");
        sdl_backward(loss);
        sdl_mpi_timeline_end();
        sdl_mpi_ddp_sync(d);
        sdl_mpi_timeline_begin("optimizer step");
        sdl_optim_step(a.opt);
        sdl_model_zero_grad(a.m);
        sdl_mpi_timeline_end();
        sdl_arena_reset();
    }
    CHECK(sdl_test_allocs == allocs, "%ld allocations in 3 steady-state steps", sdl_test_allocs - allocs);
    CHECK(sdl_mpi_timeline_count() >= 6 * 3, "%lld events", (long long)sdl_mpi_timeline_count());
    CHECK(sdl_mpi_timeline_write() == SDL_OK, "%s", sdl_last_error());
    char file[700];
    snprintf(file, sizeof file, "%s.trace-rank%d.json", g_argv0, g_rank);
    FILE *f = fopen(file, "r");
    CHECK(f != NULL, "no file %s", file);
    if (f) {
        static char text[1 << 17];
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        CHECK(strstr(text, "\"traceEvents\"") && strstr(text, "\"forward\"") && strstr(text, "optimizer step"), "markers missing");
        CHECK(g_size == 1 || (strstr(text, "allreduce bucket 0") && strstr(text, "\"wait\"")), "bucket events missing");
        CHECK(text[n - 2] == '}' || text[n - 1] == '}', "file does not end the JSON object");
    }
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_f16_convert);
    MRUN(test_ring_equals_mpi);
    MRUN(test_average_fp16);
    MRUN(test_broadcast);
    MRUN(test_dp_flat_mpi);
    MRUN(test_dp_buckets_mpi);
    MRUN(test_dp_flat_ring);
    MRUN(test_dp_buckets_ring);
    MRUN(test_dp_default_desc);
    MRUN(test_dp_flat_shm);
    MRUN(test_dp_buckets_shm);
    MRUN(test_shm_equals_mpi);
    MRUN(test_dp_mib_buckets);
    MRUN(test_ddp_fp16);
    MRUN(test_accumulation);
    MRUN(test_accumulation_shm);
    MRUN(test_sync_then_backward_adds);
    MRUN(test_sync_then_backward_adds_shm);
    MRUN(test_metrics);
    MRUN(test_timeline);
    return mpi_test_finish();
}
