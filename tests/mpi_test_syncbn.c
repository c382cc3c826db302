/* mpi_test_syncbn.c - sdl_mpi.h's SyncBatchNorm: data parallel with synced batch norm equals
   one process with plain batch norm on the whole batch (parameters, running stats, eval
   outputs) after 20 steps; running stats the same bits on every rank; the distributed
   backward against central differences of the summed loss; sdl_mpi_sync_buffers. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* conv -> bn2d -> relu -> flatten -> linear -> bn1d -> relu -> linear */
typedef struct net { sdl_model *m; sdl_module *seq; sdl_optim *opt; } net;
static net net_new(void) {
    net r;
    r.m = sdl_model_new(5);
    r.seq = sdl_sequential(r.m, "");
    sdl_seq_add(r.seq, sdl_conv2d_layer(r.m, "conv", 2, 4, 3, 1, 1, false));
    sdl_seq_add(r.seq, sdl_batch_norm_layer(r.m, "bn1", 4));
    sdl_seq_add(r.seq, sdl_relu_layer(r.m));
    sdl_seq_add(r.seq, sdl_flatten_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc1", 4 * 16, 8, false));
    sdl_seq_add(r.seq, sdl_batch_norm_layer(r.m, "bn2", 8));
    sdl_seq_add(r.seq, sdl_relu_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc2", 8, 3, true));
    r.opt = sdl_sgd(r.m, 0.05f, 0.9f, 1e-4f, false);
    sdl_model_pack(r.m);
    return r;
}
static void net_free(net *r) { sdl_optim_free(r->opt); sdl_model_free(r->m); }

/* rows [row0, row0 + rows) of step's global batch, the same on every rank; mean/scale vary
   by channel so the statistics matter */
static void batch(int step, int row0, int rows, sdl_tensor **x, sdl_tensor **y) {
    *x = sdl_arena_tensor(sdl_shape4(rows, 2, 4, 4), SDL_F32);
    *y = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 32; j++)
            sdl_f32(*x)[i * 32 + j] = (j < 16 ? 3.0f : 0.5f) * sdl_hash_uniform(77, (uint64_t)step, (uint64_t)((row0 + i) * 32 + j)) + (j < 16 ? 1.0f : -2.0f);
        sdl_i32(*y)[i] = (int32_t)(sdl_hash_uniform(78, (uint64_t)step, (uint64_t)(row0 + i)) * 3.0f) % 3;
    }
}

/* largest |a - b| over largest |b| */
static double rel(const float *a, const float *b, int64_t n) {
    double mx = 1e-30, e = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)b[i]));
        e = fmax(e, fabs((double)a[i] - b[i]));
    }
    return e / mx;
}

/* true when v (n floats) holds the same bits on every rank */
static bool same_everywhere(const float *v, int64_t n) {
    float *r0 = (float *)malloc((size_t)n * sizeof(float));
    memcpy(r0, v, (size_t)n * sizeof(float));
    MPI_Bcast(r0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = memcmp(r0, v, (size_t)n * sizeof(float)) == 0;
    MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(r0);
    return same != 0;
}

/* 20 steps: each rank B rows with synced batch norm and sdl_mpi_ddp, against one process on
   all size * B rows with plain batch norm */
static void test_syncbn_equals_one_process(void) {
    const int B = 6, steps = 20;
    net a = net_new(), ref = net_new();
    CHECK(sdl_mpi_sync_batch_norm(a.m) == 2, "converted %s", sdl_last_error());
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(a.m, NULL);
    CHECK(ddp != NULL, "%s", sdl_last_error());
    if (!ddp) return;
    sdl_tensor *x, *y;
    for (int s = 0; s < steps; s++) {
        batch(s, g_rank * B, B, &x, &y);
        CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(a.seq, x), y, 0.0f)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_ddp_sync(ddp) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_arena_reset();
        batch(s, 0, B * g_size, &x, &y);
        CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(ref.seq, x), y, 0.0f)) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(ref.opt);
        sdl_arena_reset();
    }
    double wp = rel(a.m->param_data, ref.m->param_data, ref.m->param_floats);
    double wb = rel(a.m->buffer_data, ref.m->buffer_data, ref.m->buffer_floats);
    CHECK(wp <= 1e-5, "parameters differ by %g relative", wp);
    CHECK(wb <= 1e-5, "running stats differ by %g relative", wb);
    CHECK(same_everywhere(a.m->buffer_data, a.m->buffer_floats), "running stats differ between ranks");
    CHECK(same_everywhere(a.m->param_data, a.m->param_floats), "parameters differ between ranks");
    /* eval: the running stats, the same outputs as the reference */
    sdl_model_train(a.m, false);
    sdl_model_train(ref.m, false);
    batch(99, 0, 5, &x, &y);
    sdl_tensor *za = sdl_forward(a.seq, x), *zr = sdl_forward(ref.seq, x);
    double we = rel(sdl_f32(za), sdl_f32(zr), zr->numel);
    CHECK(we <= 1e-5, "eval outputs differ by %g relative", we);
    if (g_rank == 0) printf("     %d ranks x %d vs 1 x %d, %d steps: parameters %.2g, running stats %.2g, eval %.2g relative\n",
                            g_size, B, g_size * B, steps, wp, wb, we);
    /* and plain data parallel is not that (the test can fail) */
    double moved = fabs((double)a.m->buffer_data[0]);
    CHECK(moved > 1e-3, "running mean did not move (%g)", moved);
    sdl_mpi_ddp_free(ddp);
    net_free(&a);
    net_free(&ref);
}

/* the synced op's dx against central differences of the loss summed over ranks: x's
   element k on rank `who` moves by +-h, every rank recomputes its loss */
static double summed_loss(sdl_tensor *x, sdl_tensor *g, sdl_tensor *b, sdl_tensor *w) {
    sdl_tensor *z = sdl_batch_norm_synced(x, g, b, NULL, NULL, 0.1f, 1e-5f, sdl__mpi_bn_sum, NULL);
    sdl_tensor *l = sdl_sum(sdl_mul(z, w));
    double v = sdl_f32(l)[0];
    sdl_mpi_sum(&v, 1);
    return v;
}
static void test_syncbn_gradcheck(void) {
    const int B = 3, C = 2, S = 3;
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(B, C, 1, S), SDL_F32), *w = sdl_tensor_new(sdl_shape4(B, C, 1, S), SDL_F32);
    sdl_tensor *g = sdl_tensor_new(sdl_shape1(C), SDL_F32), *b = sdl_tensor_new(sdl_shape1(C), SDL_F32);
    for (int i = 0; i < B * C * S; i++) {
        sdl_f32(x)[i] = 2.0f * sdl_hash_uniform(5, (uint64_t)g_rank, (uint64_t)i) - 0.5f * (float)g_rank;
        sdl_f32(w)[i] = sdl_hash_uniform(6, (uint64_t)g_rank, (uint64_t)i) - 0.5f;
    }
    for (int c = 0; c < C; c++) sdl_f32(g)[c] = 1.5f - (float)c, sdl_f32(b)[c] = 0.25f;
    sdl_tensor_requires_grad(x); sdl_tensor_requires_grad(g); sdl_tensor_requires_grad(b);
    sdl_tensor *z = sdl_batch_norm_synced(x, g, b, NULL, NULL, 0.1f, 1e-5f, sdl__mpi_bn_sum, NULL);
    CHECK(sdl_backward(sdl_sum(sdl_mul(z, w))) == SDL_OK, "%s", sdl_last_error());
    sdl_arena_reset();
    double worst = 0;
    const float h = 1e-2f;
    for (int who = 0; who < g_size; who++)
        for (int k = 0; k < B * C * S; k++) {
            float keep = sdl_f32(x)[k];
            if (g_rank == who) sdl_f32(x)[k] = keep + h;
            double up = summed_loss(x, g, b, w);
            sdl_arena_reset();
            if (g_rank == who) sdl_f32(x)[k] = keep - h;
            double down = summed_loss(x, g, b, w);
            sdl_arena_reset();
            sdl_f32(x)[k] = keep;
            double num = (up - down) / (2.0 * h), ana = g_rank == who ? x->grad[k] : 0.0;
            sdl_mpi_sum(&ana, 1);
            worst = fmax(worst, fabs(num - ana) / fmax(1.0, fabs(num)));
        }
    CHECK(worst <= 2e-3, "dx differs from central differences by %g", worst);
    sdl_tensor_free(x); sdl_tensor_free(w); sdl_tensor_free(g); sdl_tensor_free(b);
}

/* plain batch norm in data parallel: each rank's running stats are its own until
   sdl_mpi_sync_buffers averages them */
static void test_sync_buffers(void) {
    net a = net_new();
    sdl_tensor *x, *y;
    batch(0, g_rank * 4, 4, &x, &y);
    sdl_forward(a.seq, x);
    sdl_arena_reset();
    int64_t n = a.m->buffer_floats;
    float *mean = (float *)malloc((size_t)n * sizeof(float));
    memcpy(mean, a.m->buffer_data, (size_t)n * sizeof(float));
    MPI_Allreduce(MPI_IN_PLACE, mean, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int64_t i = 0; i < n; i++) mean[i] /= (float)g_size;
    CHECK(!same_everywhere(a.m->buffer_data, n), "the ranks' stats agree before the sync");
    CHECK(sdl_mpi_sync_buffers(a.m) == SDL_OK, "%s", sdl_last_error());
    CHECK(same_everywhere(a.m->buffer_data, n), "the ranks' stats differ after the sync");
    CHECK(rel(a.m->buffer_data, mean, n) <= 1e-6, "not the mean: %g", rel(a.m->buffer_data, mean, n));
    CHECK(sdl_mpi_sync_buffers(NULL) == SDL_ERR_ARG, "NULL model accepted");
    free(mean);
    net_free(&a);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_syncbn_equals_one_process);
    MRUN(test_syncbn_gradcheck);
    MRUN(test_sync_buffers);
    return mpi_test_finish();
}
