/* mpi_cuda_test_ddp.cu - sdl_mpi.h's GPU path (>>mpi-gpu): data parallel training of a model on
   the GPU against one process training on the whole batch on the CPU, for each transport
   (NCCL, host staging, CUDA-aware MPI) in bucket and flat mode; fp16 and bf16 on the wire;
   broadcast of a GPU model; gradient accumulation; the timeline and the checker; the device
   choice; the srun file rendezvous; the errors. Every rank checks; rank 0 prints.

   tests/run.sh builds it against tools/cuda_emu (a CPU emulation of CUDA, with an nccl.h
   that does NCCL's calls over MPI on host copies: it checks the call sequence and the
   arithmetic, not NCCL) with mpicxx and runs it with mpirun -np 2 and 3, each rank with
   a "GPU" of its own (EMU_DEVICES), and with 2 ranks sharing one (EMU_DEVICES=1: NCCL
   refuses that, so the host-staged path is what runs). On a GPU machine
   (tools/gpu_check.sh):
     nvcc -std=c++17 -O2 -DSDL_MPI_NCCL $(mpicc --showme:compile) -Itests -I. \
          tests/mpi_cuda_test_ddp.cu -o t -lcublas -lnccl $(mpicc --showme:link)
     mpirun -np 1 ./t        the NCCL path with one rank
     mpirun -np 2 ./t        two ranks sharing the GPU: host staging (NCCL skipped)
   Tolerance against the CPU: 1e-4 relative after 5 steps (cuBLAS and the CPU's GEMM sum
   in different orders; the CPU-only test in mpi_test_ddp.c holds 1e-5). */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
/* small device arena and cuBLAS workspace: the model is tiny, and the emulator flips the
   protection of every device page at each copy (most of this test's time) */
#define SDL_CUDA_ARENA_MIN ((size_t)1 << 20)
#define SDL_CUDA_WORKSPACE ((size_t)1 << 20)
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"
#define SDL_MPI_IMPLEMENTATION
#include "../sdl_mpi.h"
#include "sdl_mpi_test.h"
#include <stdlib.h>

static int g_size, g_devices;
static bool g_own_gpu; /* every rank of the node has a device of its own: NCCL can run */
static const char *g_argv0;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    if (sdl_cuda_synchronize() != SDL_OK) { printf("  FAIL %s: %s\n", name, sdl_last_error()); sdl_test_ok = 0; }
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

static bool nccl_built(void) {
#ifdef SDL_MPI_NCCL
    return true;
#else
    return false;
#endif
}
static long nccl_calls(void) {
#ifdef SDL_EMU_NCCL
    return emu_nccl_calls;
#else
    return -1;
#endif
}

/* ---- the model: an MLP with a parameter no forward reads -------------------------------- */
typedef struct mlp { sdl_model *m; sdl_module *net; sdl_optim *opt; bool gpu; } mlp;

static mlp mlp_new(uint64_t seed, bool gpu) {
    mlp r;
    r.gpu = gpu;
    r.m = sdl_model_new(seed);
    r.net = sdl_sequential(r.m, "");
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc1", 20, 32, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_linear_layer(r.m, "unused", 7, 3, true);
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc2", 32, 16, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc3", 16, 5, true));
    sdl_model_buffer(r.m, "bn.running_mean", sdl_shape1(9));
    if (gpu && sdl_cuda_model_to_device(r.m) != SDL_OK) printf("  model_to_device: %s\n", sdl_last_error());
    r.opt = sdl_sgd(r.m, 0.1f, 0.9f, 1e-4f, false);
    return r;
}
static void mlp_free(mlp *r) { sdl_optim_free(r->opt); sdl_model_free(r->m); }

static sdl_tensor *loss_of(mlp *r, int step, int row0, int rows) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(rows, 20), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 20; j++) sdl_f32(x)[i * 20 + j] = 2.0f * sdl_hash_uniform(1234, (uint64_t)step, (uint64_t)((row0 + i) * 20 + j)) - 1.0f;
        sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(99, (uint64_t)step, (uint64_t)(row0 + i)) * 5.0f) % 5;
    }
    if (r->gpu) { x = sdl_cuda_to_device(x); y = sdl_cuda_to_device(y); }
    return sdl_cross_entropy(sdl_forward(r->net, x), y, 0.0f);
}

/* largest |a - b| / max |b| over each parameter (a, b: host arrays laid out as model m) */
static double worst_rel(const sdl_model *m, const float *a, const float *b, const char **where) {
    double worst = 0;
    for (int p = 0; p < m->nparams; p++) {
        int64_t off = m->param_offset[p], n = m->params[p]->numel;
        double mx = 1e-30, e = 0;
        for (int64_t i = 0; i < n; i++) {
            mx = fmax(mx, fabs((double)b[off + i]));
            double d = fabs((double)a[off + i] - b[off + i]);
            if (!(d <= e)) e = d; /* NaN counts */
        }
        if (!(e / mx <= worst)) { worst = e / mx; *where = m->params[p]->name; }
    }
    return worst;
}

/* CUDA-aware MPI can only be tried under the emulator: MPI is told to trust device pointers
   (SDL_MPI_CUDA_AWARE=1) and device memory is left readable by the host */
static void cuda_mpi(bool on) {
#ifdef CUDA_EMU
    if (on) { setenv("SDL_MPI_CUDA_AWARE", "1", 1); setenv("EMU_NO_PROTECT", "1", 1); }
    else { unsetenv("SDL_MPI_CUDA_AWARE"); unsetenv("EMU_NO_PROTECT"); }
    float one = 1.0f, *d = NULL; /* a copy re-applies the protection (or lifts it) */
    cudaMalloc((void **)&d, 4);
    cudaMemcpy(d, &one, 4, cudaMemcpyHostToDevice);
    cudaFree(d);
#else
    (void)on;
#endif
}
static bool cuda_mpi_possible(void) {
#ifdef CUDA_EMU
    return true;
#else
    return false; /* on a real GPU: only where MPI says it is CUDA-aware (not checked here) */
#endif
}

/* ---- the device and the transport ----------------------------------------------------- */
static void test_set_device(void) {
    int dev = sdl_mpi_cuda_set_device(), cur = -1;
    cudaGetDevice(&cur);
    CHECK(dev == sdl_mpi_local_rank() % g_devices && cur == dev, "device %d (current %d), local rank %d of %d devices", dev, cur,
          sdl_mpi_local_rank(), g_devices);
}

static void test_auto_transport(void) {
    mlp a = mlp_new(3, true);
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, NULL);
    CHECK(d != NULL, "%s", sdl_last_error());
    sdl_mpi_transport want = nccl_built() && g_own_gpu ? SDL_MPI_TRANSPORT_NCCL : SDL_MPI_TRANSPORT_HOST;
    CHECK(sdl_mpi_ddp_transport(d) == want, "auto chose %s, want %s (own GPU: %d)", sdl_mpi_transport_name(sdl_mpi_ddp_transport(d)),
          sdl_mpi_transport_name(want), (int)g_own_gpu);
    if (g_rank == 0) printf("     auto: %s (%d ranks on the node, %d devices)\n", sdl_mpi_transport_name(sdl_mpi_ddp_transport(d)),
                            sdl_mpi_local_size(), g_devices);
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
}

/* ---- data parallel on the GPU against one CPU process on the whole batch ----------------- */
static void dp_vs_single(sdl_mpi_transport t, sdl_mpi_mode mode) {
    const int B = 16, steps = 5;
    mlp a = mlp_new(7 + 1000 * (uint64_t)g_rank, true); /* different until the broadcast */
    sdl_mpi_set_transport(t);
    CHECK(sdl_mpi_broadcast_model(a.m, a.opt, 0) == SDL_OK, "broadcast: %s", sdl_last_error());
    sdl_mpi_ddp_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.mode = mode;
    desc.bucket_mb = 0.0002f; /* ~52 floats: 4 buckets */
    sdl_mpi_gpu_desc gd;
    memset(&gd, 0, sizeof gd);
    gd.transport = t;
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new_gpu(a.m, &desc, &gd);
    CHECK(ddp != NULL, "%s", sdl_last_error());
    if (!ddp) { mlp_free(&a); return; }
    CHECK(sdl_mpi_ddp_transport(ddp) == t, "transport %s", sdl_mpi_transport_name(sdl_mpi_ddp_transport(ddp)));
    int nb = sdl_mpi_ddp_num_buckets(ddp);
    CHECK(nb == (mode == SDL_MPI_MODE_FLAT ? 1 : 4), "%d buckets", nb);
    mlp ref = mlp_new(7, false);
    long calls0 = nccl_calls();
    int64_t seq0 = sdl__mpi.seq;
#ifdef CUDA_EMU
    size_t regions = 0;
#endif
    for (int s = 0; s < steps; s++) {
#ifdef CUDA_EMU
        if (s == 3) regions = emu_regions.size();
#endif
        CHECK(sdl_backward(loss_of(&a, s, g_rank * B, B)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(ddp) == SDL_OK, "sync: %s", sdl_last_error());
        CHECK(sdl_optim_step(a.opt) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
        CHECK(sdl_backward(loss_of(&ref, s, 0, B * g_size)) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(ref.opt);
        sdl_arena_reset();
    }
#ifdef CUDA_EMU
    CHECK(emu_regions.size() == regions, "cudaMalloc in steady-state steps: %zu regions, then %zu", regions, emu_regions.size());
#endif
    /* the checker saw one collective per sync, as on the CPU */
    if (g_size > 1 && sdl_mpi_get_timeout() > 0)
        CHECK(sdl__mpi.seq - seq0 == steps, "%lld checked collectives in %d syncs", (long long)(sdl__mpi.seq - seq0), steps);
    if (t == SDL_MPI_TRANSPORT_NCCL && nccl_calls() >= 0)
        CHECK(nccl_calls() - calls0 == (long)steps * nb, "%ld ncclAllReduce calls, want %d", nccl_calls() - calls0, steps * nb);
    float *p = dev_floats(a.m->param_data, a.m->param_floats);
    const char *where = "";
    double w = worst_rel(ref.m, p, ref.m->param_data, &where);
    CHECK(w <= 1e-4, "%s %s: after %d steps '%s' differs from one process by %g relative", sdl_mpi_transport_name(t),
          mode == SDL_MPI_MODE_FLAT ? "flat" : "buckets", steps, where, w);
    if (g_rank == 0)
        printf("     %s %s: %d ranks x %d on the GPU vs 1 x %d on the CPU, %d steps: worst parameter %.2g relative\n",
               sdl_mpi_transport_name(t), mode == SDL_MPI_MODE_FLAT ? "flat" : "buckets", g_size, B, g_size * B, steps, w);
    double moved = 0;
    mlp init = mlp_new(7, false);
    sdl_model_pack(init.m);
    for (int64_t i = 0; i < a.m->param_floats; i++) moved = fmax(moved, fabs((double)p[i] - init.m->param_data[i]));
    CHECK(moved > 1e-3, "weights moved only %g", moved);
    free(p);
    mlp_free(&init);
    sdl_mpi_ddp_free(ddp);
    mlp_free(&a);
    mlp_free(&ref);
    sdl_mpi_set_transport(SDL_MPI_TRANSPORT_AUTO);
}
static void test_dp_host_buckets(void) { dp_vs_single(SDL_MPI_TRANSPORT_HOST, SDL_MPI_MODE_BUCKETS); }
static void test_dp_host_flat(void) { dp_vs_single(SDL_MPI_TRANSPORT_HOST, SDL_MPI_MODE_FLAT); }
static void test_dp_nccl_buckets(void) { dp_vs_single(SDL_MPI_TRANSPORT_NCCL, SDL_MPI_MODE_BUCKETS); }
static void test_dp_nccl_flat(void) { dp_vs_single(SDL_MPI_TRANSPORT_NCCL, SDL_MPI_MODE_FLAT); }
static void test_dp_cuda_mpi_buckets(void) {
    cuda_mpi(true);
    dp_vs_single(SDL_MPI_TRANSPORT_CUDA_MPI, SDL_MPI_MODE_BUCKETS);
    cuda_mpi(false);
}

/* ---- fp16 / bf16 on the wire: within the format's rounding of the exact mean ------------- */
static void test_wire(void) {
    mlp a = mlp_new(11, true);
    sdl_mpi_ddp_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.mode = SDL_MPI_MODE_FLAT;
    sdl_mpi_gpu_desc gd;
    memset(&gd, 0, sizeof gd);
    gd.transport = SDL_MPI_TRANSPORT_HOST;
    sdl_mpi_ddp *exact = sdl_mpi_ddp_new_gpu(a.m, &desc, &gd);
    sdl_backward(loss_of(&a, 0, g_rank * 16, 16));
    CHECK(sdl_mpi_ddp_sync(exact) == SDL_OK, "%s", sdl_last_error());
    sdl_mpi_ddp_free(exact);
    float *want = dev_floats(a.m->grad_data, a.m->param_floats);
    for (int t = 0; t < 2; t++) {
        sdl_mpi_transport tr = t ? SDL_MPI_TRANSPORT_NCCL : SDL_MPI_TRANSPORT_HOST;
        if (tr == SDL_MPI_TRANSPORT_NCCL && !(nccl_built() && g_own_gpu)) continue;
        for (int bf = 0; bf < 2; bf++) {
            sdl_model_zero_grad(a.m);
            sdl_arena_reset();
            memset(&desc, 0, sizeof desc);
            desc.mode = SDL_MPI_MODE_BUCKETS;
            desc.bucket_mb = 0.001f;
            desc.fp16 = !bf;
            gd.transport = tr;
            gd.bf16 = bf;
            sdl_mpi_ddp *d = sdl_mpi_ddp_new_gpu(a.m, &desc, &gd);
            CHECK(d != NULL, "%s", sdl_last_error());
            if (!d) continue;
            sdl_backward(loss_of(&a, 0, g_rank * 16, 16));
            CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
            float *got = dev_floats(a.m->grad_data, a.m->param_floats);
            const char *where = "";
            double w = worst_rel(a.m, got, want, &where), tol = bf ? 1.6e-2 : 2e-3; /* 2^-8, 2^-11 per rounding, x N */
            CHECK(w < tol * (g_size > 2 ? 2 : 1) && w > 0, "%s %s: '%s' off by %g relative", sdl_mpi_transport_name(tr),
                  bf ? "bf16" : "fp16", where, w);
            if (g_rank == 0) printf("     %s %s on the wire: worst gradient %.2g relative\n", sdl_mpi_transport_name(tr), bf ? "bf16" : "fp16", w);
            free(got);
            sdl_mpi_ddp_free(d);
        }
    }
    free(want);
    mlp_free(&a);
}

/* the bf16 conversion: round to nearest even, NaN stays NaN, every bf16 round-trips */
static void test_bf16_convert(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sdl_mpi_bf16_to_f32((uint16_t)h);
        if (f != f) bad += sdl_mpi_bf16_to_f32(sdl_mpi_f32_to_bf16(f)) == sdl_mpi_bf16_to_f32(sdl_mpi_f32_to_bf16(f));
        else bad += sdl_mpi_f32_to_bf16(f) != h;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
    CHECK(sdl_mpi_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80 && sdl_mpi_f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82 &&
          sdl_mpi_f32_to_bf16(1.0f + 1.5f / 256) == 0x3f81, "ties to even / nearest wrong");
}

/* ---- broadcast of a GPU model (parameters, buffers, optimizer state and step) ------------- */
static void test_broadcast(void) {
    for (int t = 0; t < 3; t++) {
        sdl_mpi_transport tr = t == 0 ? SDL_MPI_TRANSPORT_HOST : t == 1 ? SDL_MPI_TRANSPORT_NCCL : SDL_MPI_TRANSPORT_CUDA_MPI;
        if (tr == SDL_MPI_TRANSPORT_NCCL && !(nccl_built() && g_own_gpu)) continue;
        if (tr == SDL_MPI_TRANSPORT_CUDA_MPI && !cuda_mpi_possible()) continue;
        if (tr == SDL_MPI_TRANSPORT_CUDA_MPI) cuda_mpi(true);
        mlp a = mlp_new(100 + (uint64_t)g_rank, true);
        a.opt->step = 10 * g_rank;
        a.opt->lr = 0.1f * (float)(g_rank + 1);
        /* a step on rank-dependent data gives each rank its own momentum */
        sdl_backward(loss_of(&a, 1, g_rank * 8, 8));
        sdl_optim_step(a.opt);
        sdl_arena_reset();
        sdl_mpi_set_transport(tr);
        CHECK(sdl_mpi_broadcast_model(a.m, a.opt, 0) == SDL_OK, "%s: %s", sdl_mpi_transport_name(tr), sdl_last_error());
        sdl_mpi_set_transport(SDL_MPI_TRANSPORT_AUTO);
        int64_t n = a.m->param_floats;
        float *p = dev_floats(a.m->param_data, n), *st = dev_floats(a.opt->state, n);
        float *root_p = (float *)malloc(sizeof(float) * (size_t)n), *root_st = (float *)malloc(sizeof(float) * (size_t)n);
        memcpy(root_p, p, sizeof(float) * (size_t)n);
        memcpy(root_st, st, sizeof(float) * (size_t)n);
        MPI_Bcast(root_p, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Bcast(root_st, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        CHECK(memcmp(p, root_p, sizeof(float) * (size_t)n) == 0 && memcmp(st, root_st, sizeof(float) * (size_t)n) == 0,
              "%s: parameters or momentum differ from rank 0's", sdl_mpi_transport_name(tr));
        CHECK(a.opt->step == 1 && a.opt->lr == 0.1f, "%s: step %lld lr %g", sdl_mpi_transport_name(tr), (long long)a.opt->step, (double)a.opt->lr);
        mlp b = mlp_new(100 + (uint64_t)g_rank, false); /* the seeds did differ */
        sdl_model_pack(b.m);
        double diff = 0;
        for (int64_t i = 0; i < n; i++) diff = fmax(diff, fabs((double)b.m->param_data[i] - root_p[i]));
        CHECK(g_rank == 0 || diff > 0, "different seeds gave the same weights");
        free(p), free(st), free(root_p), free(root_st);
        mlp_free(&b);
        mlp_free(&a);
        if (tr == SDL_MPI_TRANSPORT_CUDA_MPI) cuda_mpi(false);
    }
}

/* ---- gradient accumulation: nothing travels until the last micro-batch ------------------- */
static void test_accumulation(void) {
    const int k = 3, mb = 8;
    mlp a = mlp_new(21, true), ref = mlp_new(21, false);
    sdl_mpi_ddp_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.bucket_mb = 0.001f;
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &desc);
    CHECK(d != NULL, "%s", sdl_last_error());
    if (!d) return;
    long calls0 = nccl_calls();
    for (int j = 0; j < k; j++) {
        sdl_mpi_ddp_set_sync(d, j == k - 1);
        CHECK(sdl_backward(loss_of(&a, 3, g_rank * k * mb + j * mb, mb)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
        if (j == 0) {
            float *g = dev_floats(a.m->grad_data, 1);
            double lo = g[0], hi = g[0];
            free(g);
            MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
            MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            CHECK(lo != hi || g_size == 1, "gradients were communicated with sync off");
            if (nccl_calls() >= 0) CHECK(nccl_calls() == calls0, "NCCL was called with sync off");
        }
    }
    CHECK(sdl_backward(loss_of(&ref, 3, 0, g_size * k * mb)) == SDL_OK, "%s", sdl_last_error());
    float *g = dev_floats(a.m->grad_data, a.m->param_floats);
    for (int64_t i = 0; i < a.m->param_floats; i++) g[i] /= (float)k; /* the mean of k means */
    const char *where = "";
    double w = worst_rel(ref.m, g, ref.m->grad_data, &where);
    CHECK(w <= 1e-4, "accumulated '%s' differs by %g relative", where, w);
    free(g);
    /* backward twice with sync on and no sdl_mpi_ddp_sync between is reported (and the
       buckets already in flight are still waited for: the next sync works) */
    sdl_mpi_ddp_set_sync(d, true);
    sdl_arena_reset();
    sdl_backward(loss_of(&a, 4, 0, 4));
    sdl_arena_reset();
    sdl_backward(loss_of(&a, 4, 0, 4));
    CHECK(sdl_mpi_ddp_sync(d) == SDL_ERR_STATE, "a second backward without sync was not reported");
    sdl_clear_error();
    sdl_arena_reset();
    sdl_backward(loss_of(&a, 5, 0, 4));
    CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "sync after the reported error: %s", sdl_last_error());
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
    mlp_free(&ref);
}

/* ---- the timeline shows each bucket's GPU allreduce -------------------------------------- */
static void test_timeline(void) {
    char path[600];
    snprintf(path, sizeof path, "%s.trace.json", g_argv0);
    CHECK(sdl_mpi_timeline_open(path, 1000) == SDL_OK, "%s", sdl_last_error());
    mlp a = mlp_new(5, true);
    sdl_mpi_ddp_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.bucket_mb = 0.001f;
    sdl_mpi_ddp *d = sdl_mpi_ddp_new(a.m, &desc);
    CHECK(d != NULL, "%s", sdl_last_error());
    if (!d) return;
    bool nccl = sdl_mpi_ddp_transport(d) == SDL_MPI_TRANSPORT_NCCL;
    for (int s = 0; s < 3; s++) {
        sdl_mpi_timeline_begin("backward");
        sdl_backward(loss_of(&a, s, g_rank * 8, 8));
        sdl_mpi_timeline_end();
        CHECK(sdl_mpi_ddp_sync(d) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_arena_reset();
    }
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
        const char *want = nccl ? "\"nccl allreduce bucket 0\"" : "\"mpi allreduce bucket 0\"";
        CHECK(strstr(text, want) && strstr(text, "\"backward\"") && strstr(text, "\"wait\""), "%s or markers missing", want);
    }
    sdl_mpi_timeline_open(path, 1); /* drop the buffer's events: finalize writes it again */
    sdl_mpi_ddp_free(d);
    mlp_free(&a);
}

/* ---- the srun rendezvous file ------------------------------------------------------------- */
static void test_file_rendezvous(void) {
    char path[600];
    snprintf(path, sizeof path, "%s.ncclid", g_argv0);
    if (g_rank == 0) remove(path);
    quiet_barrier();
    unsigned char id[128], mine[128];
    for (int i = 0; i < 128; i++) id[i] = (unsigned char)(sdl_hash_uniform(77, 0, (uint64_t)i) * 256.0f);
    memcpy(mine, id, sizeof id);
    if (g_rank != 0) memset(mine, 0, sizeof mine);
    CHECK(sdl_mpi_file_rendezvous(path, mine, sizeof mine, g_rank, 20.0) == SDL_OK, "%s", sdl_last_error());
    CHECK(memcmp(mine, id, sizeof id) == 0, "rank %d read other bytes", g_rank);
    quiet_barrier();
    if (g_rank == 0) remove(path);
    /* nobody writes this one: a clear error after the timeout, naming the file */
    snprintf(path, sizeof path, "%s.missing", g_argv0);
    double t0 = MPI_Wtime();
    sdl_result r = sdl_mpi_file_rendezvous(path, mine, sizeof mine, 1, 0.2);
    CHECK(r == SDL_ERR_COMM && strstr(sdl_last_error(), path) && MPI_Wtime() - t0 < 5, "missing file: %d '%s'", (int)r, sdl_last_error());
    sdl_clear_error();
}

/* ---- errors ---------------------------------------------------------------------------------- */
static void test_errors(void) {
    mlp a = mlp_new(9, true), c = mlp_new(9, false);
    sdl_mpi_ddp_desc desc;
    sdl_mpi_gpu_desc gd;
    memset(&desc, 0, sizeof desc);
    memset(&gd, 0, sizeof gd);
    gd.transport = SDL_MPI_TRANSPORT_CUDA_MPI;
    desc.fp16 = true;
    CHECK(sdl_mpi_ddp_new_gpu(a.m, &desc, &gd) == NULL && strstr(sdl_last_error(), "CUDA-aware"), "cuda-mpi with fp16: %s", sdl_last_error());
    gd.transport = SDL_MPI_TRANSPORT_AUTO;
    gd.bf16 = true;
    CHECK(sdl_mpi_ddp_new_gpu(a.m, &desc, &gd) == NULL, "fp16 and bf16 at once accepted");
    desc.fp16 = false;
    CHECK(sdl_mpi_ddp_new_gpu(c.m, &desc, &gd) == NULL && strstr(sdl_last_error(), "bf16"), "bf16 on a CPU model: %s", sdl_last_error());
    if (nccl_built() && !g_own_gpu) { /* NCCL refuses two ranks on one GPU: reported, no hang */
        memset(&gd, 0, sizeof gd);
        gd.transport = SDL_MPI_TRANSPORT_NCCL;
        sdl_mpi_ddp *d = sdl_mpi_ddp_new_gpu(a.m, &desc, &gd);
        CHECK(d == NULL && sdl_last_result() == SDL_ERR_COMM, "nccl with a shared GPU: %s", sdl_last_error());
        sdl_mpi_ddp_free(d);
    }
    sdl_clear_error();
    mlp_free(&a);
    mlp_free(&c);
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    int dev = sdl_mpi_cuda_set_device();
    int have = dev >= 0 && sdl_cuda_init() == SDL_OK, all = 0;
    MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        if (g_rank == 0) printf("skip: no GPU on some rank (%s)\n", sdl_last_error());
        sdl_mpi_finalize();
        if (g_rank == 0) printf("0 passed, 0 failed\n");
        return 0;
    }
    cudaGetDeviceCount(&g_devices);
    g_own_gpu = sdl_mpi_local_size() <= g_devices;
    MRUN(test_set_device);
    MRUN(test_bf16_convert);
    MRUN(test_auto_transport);
    MRUN(test_dp_host_buckets);
    MRUN(test_dp_host_flat);
    if (nccl_built() && g_own_gpu) {
        MRUN(test_dp_nccl_buckets);
        MRUN(test_dp_nccl_flat);
    } else if (g_rank == 0) {
        printf("skip NCCL training: %s\n", nccl_built() ? "ranks share a GPU (NCCL needs one each)" : "built without SDL_MPI_NCCL");
    }
    if (cuda_mpi_possible()) MRUN(test_dp_cuda_mpi_buckets);
    MRUN(test_wire);
    MRUN(test_broadcast);
    MRUN(test_accumulation);
    MRUN(test_timeline);
    MRUN(test_file_rendezvous);
    MRUN(test_errors);
    sdl_cuda_shutdown();
    return mpi_test_finish();
}
