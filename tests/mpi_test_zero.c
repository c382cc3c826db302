/* mpi_test_zero.c - sdl_mpi.h's ZeRO stages 1, 2 and 3: for every optimizer, with gradient
   accumulation and global-norm clipping, sharded training equals sdl_mpi_ddp and one process
   on the whole batch; f16/bf16 on the wire stay close; the bytes each rank holds shrink as
   the formula says; a checkpoint written by a sharded run is an ordinary one that loads into
   one process (another world size) and into another stage, and training goes on the same. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"
#include <unistd.h>

static int g_size;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

enum { B = 4, ACCUM = 2 }; /* rows per rank per micro-batch */

typedef struct mlp { sdl_model *m; sdl_module *net; } mlp;
static mlp mlp_new(void) {
    mlp r;
    r.m = sdl_model_new(7);
    r.net = sdl_sequential(r.m, "");
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc1", 12, 24, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc2", 24, 16, true));
    sdl_seq_add(r.net, sdl_relu_layer(r.m));
    sdl_seq_add(r.net, sdl_linear_layer(r.m, "fc3", 16, 5, true));
    sdl_model_pack(r.m);
    return r;
}

static sdl_tensor *loss_of(mlp *r, int micro, int row0, int rows) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(rows, 12), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 12; j++) sdl_f32(x)[i * 12 + j] = 2.0f * sdl_hash_uniform(41, (uint64_t)micro, (uint64_t)((row0 + i) * 12 + j)) - 1.0f;
        sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(42, (uint64_t)micro, (uint64_t)(row0 + i)) * 5.0f) % 5;
    }
    /* the mean over the micro-batch: the update divides the sum of ACCUM by ACCUM */
    return sdl_cross_entropy(sdl_forward(r->net, x), y, 0.0f);
}

static sdl_optim_desc optim_of(sdl_optim_kind kind) {
    sdl_optim_desc d = {0};
    d.kind = kind;
    d.lr = kind == SDL_OPTIM_SGD || kind == SDL_OPTIM_LARS ? 0.1f : 0.01f;
    d.momentum = kind == SDL_OPTIM_SGD || kind == SDL_OPTIM_LARS ? 0.9f : 0.0f;
    d.weight_decay = 0.01f;
    d.accum_steps = ACCUM;
    d.max_grad_norm = 0.05f; /* small enough to clip */
    return d;
}

static double rel(const float *a, const float *b, int64_t n) {
    double mx = 1e-30, e = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)b[i]));
        e = fmax(e, fabs((double)a[i] - b[i]));
    }
    return e / mx;
}

/* micro-batches [from, to): one process on all rows */
static void run_single(mlp *r, sdl_optim *o, int from, int to) {
    for (int s = from; s < to; s++) {
        sdl_backward(loss_of(r, s, 0, B * g_size));
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}
static void run_zero(mlp *r, sdl_mpi_zero *z, int from, int to) {
    for (int s = from; s < to; s++) {
        CHECK(sdl_backward(loss_of(r, s, g_rank * B, B)) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_zero_step(z) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
    }
}
static void run_ddp(mlp *r, sdl_optim *o, sdl_mpi_ddp *d, int from, int to) {
    for (int s = from; s < to; s++) {
        sdl_mpi_ddp_set_sync(d, sdl_optim_is_update_step(o));
        sdl_backward(loss_of(r, s, g_rank * B, B));
        if (sdl_optim_is_update_step(o)) sdl_mpi_ddp_sync(d);
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}

/* 16 micro-batches (8 updates) of ZeRO stages 1, 2, 3 against ddp and one process */
static void zero_vs_single(sdl_optim_kind kind) {
    const int micro = 16;
    sdl_optim_desc od = optim_of(kind);
    mlp ref = mlp_new(), dp = mlp_new();
    sdl_optim *oref = sdl_optim_new(ref.m, &od), *odp = sdl_optim_new(dp.m, &od);
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(dp.m, NULL);
    run_single(&ref, oref, 0, micro);
    run_ddp(&dp, odp, ddp, 0, micro);
    double wd = rel(dp.m->param_data, ref.m->param_data, ref.m->param_floats);
    CHECK(wd <= 1e-5, "ddp differs from one process by %g", wd);
    for (int stage = 1; stage <= 3; stage++) {
        mlp a = mlp_new();
        sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = stage, .optim = od, .bucket_mb = 0.002f});
        CHECK(z != NULL, "%s", sdl_last_error());
        if (!z) continue;
        run_zero(&a, z, 0, micro);
        CHECK(stage < 3 || (!a.m->param_data && !a.m->grad_data), "stage 3: the model still holds its arrays");
        CHECK(sdl_mpi_zero_steps(z) == micro / ACCUM, "%lld updates", (long long)sdl_mpi_zero_steps(z));
        CHECK(fabsf(sdl_mpi_zero_grad_norm(z) - oref->grad_norm) <= 1e-5f * oref->grad_norm, "grad norm %g vs %g",
              (double)sdl_mpi_zero_grad_norm(z), (double)oref->grad_norm);
        sdl_mpi_zero_free(z); /* stage 3: gathers the parameters back into the model */
        double w = rel(a.m->param_data, ref.m->param_data, ref.m->param_floats);
        double wdp = rel(a.m->param_data, dp.m->param_data, ref.m->param_floats);
        CHECK(w <= 1e-5 && wdp <= 1e-5, "stage %d differs from one process by %g, from ddp by %g", stage, w, wdp);
        CHECK(oref->grad_norm > od.max_grad_norm, "the norm %g was not clipped", (double)oref->grad_norm);
        if (g_rank == 0) printf("     optimizer %d stage %d: %.2g from one process, %.2g from ddp (last norm %.3g clipped to %.3g)\n",
                                (int)kind, stage, w, wdp, (double)oref->grad_norm, (double)od.max_grad_norm);
        CHECK(a.m->grad_data != NULL, "stage %d: no gradient array after free", stage);
        sdl_model_free(a.m);
    }
    sdl_mpi_ddp_free(ddp);
    sdl_optim_free(oref); sdl_optim_free(odp);
    sdl_model_free(ref.m); sdl_model_free(dp.m);
}
static void test_zero_sgd(void) { zero_vs_single(SDL_OPTIM_SGD); }
static void test_zero_adam(void) { zero_vs_single(SDL_OPTIM_ADAM); }
static void test_zero_adamw(void) { zero_vs_single(SDL_OPTIM_ADAMW); }
static void test_zero_lars(void) { zero_vs_single(SDL_OPTIM_LARS); }
static void test_zero_lamb(void) { zero_vs_single(SDL_OPTIM_LAMB); }

/* f16 and bf16 gradients: close to f32, not equal to it (sgd: Adam would magnify the
   rounding of gradients near zero) */
static void test_zero_wire(void) {
    sdl_optim_desc od = optim_of(SDL_OPTIM_SGD);
    mlp ref = mlp_new();
    sdl_optim *oref = sdl_optim_new(ref.m, &od);
    run_single(&ref, oref, 0, 8);
    for (int w = SDL_MPI_WIRE_F16; w <= SDL_MPI_WIRE_BF16; w++) {
        mlp a = mlp_new();
        sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 2, .optim = od, .wire = (sdl_mpi_wire)w});
        CHECK(z != NULL, "%s", sdl_last_error());
        if (!z) continue;
        run_zero(&a, z, 0, 8);
        double e = rel(a.m->param_data, ref.m->param_data, ref.m->param_floats);
        CHECK(e <= (w == SDL_MPI_WIRE_F16 ? 1e-3 : 1e-2) && e > 0.0, "%s wire: %g from f32", w == SDL_MPI_WIRE_F16 ? "f16" : "bf16", e);
        sdl_mpi_zero_free(z);
        sdl_model_free(a.m);
    }
    sdl_optim_free(oref);
    sdl_model_free(ref.m);
}

/* the bytes: stage 1 keeps params + grads + state / N, stage 2 params + (grads + state) / N,
   stage 3 (params + grads + state) / N */
static void test_zero_bytes(void) {
    sdl_optim_desc od = optim_of(SDL_OPTIM_ADAMW);
    int64_t bytes[4];
    double P = 0;
    for (int stage = 1; stage <= 3; stage++) {
        mlp a = mlp_new();
        P = (double)a.m->param_floats;
        sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = stage, .optim = od, .bucket_mb = 0.001f});
        bytes[stage] = sdl_mpi_zero_bytes(z);
        int64_t b, e;
        sdl_mpi_zero_range(z, &b, &e);
        double shard = (double)(e - b), bucket = 262.0 /* 0.001 MiB in floats */;
        /* params, grads (stage 1: the model's; 2: the shard's), master (3), Adam, buckets */
        double want = stage == 1 ? 4 * (2 * P + 2 * shard + bucket) : stage == 2 ? 4 * (P + 3 * shard + 2 * bucket)
                                                                                 : 4 * (4 * shard + 2 * bucket);
        CHECK(fabs((double)bytes[stage] - want) <= 4 * 2, "stage %d: %lld bytes, want %.0f", stage, (long long)bytes[stage], want);
        sdl_mpi_zero_free(z);
        sdl_model_free(a.m);
    }
    CHECK(bytes[3] < bytes[2] && bytes[2] < bytes[1], "stage 3 holds %lld bytes, 2 %lld, 1 %lld", (long long)bytes[3],
          (long long)bytes[2], (long long)bytes[1]);
}

/* a stage-3 run writes a checkpoint after 4 updates and goes on for 4 more; the file
   loads into one process (world size 1) and into stage-1 and stage-3 runs, which go on the same */
static void test_zero_checkpoint(void) {
    sdl_optim_desc od = optim_of(SDL_OPTIM_ADAMW);
    char path[256];
    snprintf(path, sizeof path, "/tmp/sdl_zero_ckpt_%d.safetensors", (int)getppid());
    MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    mlp a = mlp_new();
    sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 3, .optim = od});
    run_zero(&a, z, 0, 8);
    CHECK(sdl_mpi_zero_save(z, path, 3, 0) == SDL_OK, "%s", sdl_last_error());
    run_zero(&a, z, 8, 16);
    sdl_mpi_zero_free(z); /* the parameters back in the model */
    z = NULL;
    /* one process */
    mlp s = mlp_new();
    sdl_optim *os = sdl_optim_new(s.m, &od);
    sdl_checkpoint_info info;
    CHECK(sdl_checkpoint_load(path, s.m, os, &info) == SDL_OK, "%s", sdl_last_error());
    CHECK(info.epoch == 3 && info.step == 4, "epoch %lld step %lld", (long long)info.epoch, (long long)info.step);
    run_single(&s, os, 8, 16);
    double w1 = rel(s.m->param_data, a.m->param_data, a.m->param_floats);
    CHECK(w1 <= 1e-5, "one process from the checkpoint differs by %g", w1);
    /* stage 1 */
    mlp c = mlp_new();
    sdl_mpi_zero *z1 = sdl_mpi_zero_new(c.m, &(sdl_mpi_zero_desc){.stage = 1, .optim = od});
    CHECK(sdl_mpi_zero_load(z1, path, NULL) == SDL_OK, "%s", sdl_last_error());
    run_zero(&c, z1, 8, 16);
    double w2 = rel(c.m->param_data, a.m->param_data, a.m->param_floats);
    CHECK(w2 <= 1e-5, "stage 1 from the checkpoint differs by %g", w2);
    CHECK(sdl_mpi_zero_steps(z1) == 8, "%lld updates", (long long)sdl_mpi_zero_steps(z1));
    /* stage 3 from the file, and an evaluation forward that gathers and releases */
    mlp e = mlp_new();
    sdl_mpi_zero *z3 = sdl_mpi_zero_new(e.m, &(sdl_mpi_zero_desc){.stage = 3, .optim = od});
    CHECK(sdl_mpi_zero_load(z3, path, NULL) == SDL_OK, "%s", sdl_last_error());
    run_zero(&e, z3, 8, 16);
    sdl_model_train(e.m, false);
    sdl_model_train(c.m, false);
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(3, 12), SDL_F32);
    sdl_tensor_fill(x, 0.25f);
    sdl_tensor *ye = sdl_forward(e.net, x), *yc = sdl_forward(c.net, x);
    CHECK(ye && yc && rel(sdl_f32(ye), sdl_f32(yc), 15) <= 1e-5, "stage 3 eval forward differs: %s", sdl_last_error());
    sdl_mpi_zero_release(z3);
    sdl_arena_reset();
    /* a sharded parameter used outside its layer is an error naming it, not a crash */
    sdl_tensor *w = sdl_model_find(e.m, "fc1.weight");
    CHECK(w && !w->data && sdl_linear(x, w, NULL) == NULL && strstr(sdl_last_error(), "fc1.weight"), "%s", sdl_last_error());
    sdl_arena_reset();
    sdl_mpi_zero_free(z3);
    double w3 = rel(e.m->param_data, a.m->param_data, a.m->param_floats);
    CHECK(w3 <= 1e-5, "stage 3 from the checkpoint differs by %g", w3);
    sdl_model_free(e.m);
    /* a checkpoint of another optimizer kind is refused, naming what differs */
    mlp d = mlp_new();
    sdl_optim_desc sgd = optim_of(SDL_OPTIM_SGD);
    sdl_mpi_zero *z2 = sdl_mpi_zero_new(d.m, &(sdl_mpi_zero_desc){.stage = 1, .optim = sgd});
    CHECK(sdl_mpi_zero_load(z2, path, NULL) != SDL_OK, "an AdamW checkpoint loaded into SGD");
    if (g_rank == 0) printf("     reloaded: one process %.2g, stage 1 %.2g relative\n", w1, w2);
    quiet_barrier();
    if (g_rank == 0) remove(path);
    sdl_mpi_zero_free(z1); sdl_mpi_zero_free(z2);
    sdl_optim_free(os);
    sdl_model_free(a.m); sdl_model_free(s.m); sdl_model_free(c.m); sdl_model_free(d.m);
}

/* stage 3: a layer's parameters are there for its forward and again for its backward, gone
   in between (but the last layer's, whose backward comes first) and after */
static void test_zero3_gather_free(void) {
    sdl_optim_desc od = optim_of(SDL_OPTIM_ADAMW);
    mlp a = mlp_new();
    sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 3, .optim = od});
    CHECK(z != NULL, "%s", sdl_last_error());
    if (!z) return;
    int left = 0;
    sdl_tensor *loss = loss_of(&a, 0, g_rank * B, B);
    for (int i = 0; i < a.m->nparams; i++) {
        bool last = strncmp(a.m->params[i]->name, "fc3.", 4) == 0;
        CHECK((a.m->params[i]->data != NULL) == last, "after forward %s is %s", a.m->params[i]->name,
              a.m->params[i]->data ? "gathered" : "not gathered");
    }
    CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
    for (int i = 0; i < a.m->nparams; i++) left += a.m->params[i]->data != NULL;
    CHECK(left == 0, "%d parameters still gathered after backward", left);
    CHECK(sdl_mpi_zero_step(z) == SDL_OK, "%s", sdl_last_error());
    /* fc1 + fc2 (312 + 400 floats) at once at most, the whole model (797) never */
    CHECK(sdl_mpi_zero_peak_gathered(z) == 4 * (312 + 400), "%lld bytes gathered at once", (long long)sdl_mpi_zero_peak_gathered(z));
    sdl_arena_reset();
    sdl_mpi_zero_free(z);
    sdl_model_free(a.m);
}

static void test_zero_bad_args(void) {
    mlp a = mlp_new();
    CHECK(sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 4}) == NULL, "stage 4 accepted");
    sdl_model *loose = sdl_model_new(1);
    sdl_model_param(loose, "scale", sdl_shape1(8), false);
    CHECK(sdl_mpi_zero_new(loose, &(sdl_mpi_zero_desc){.stage = 3}) == NULL && strstr(sdl_last_error(), "'scale'"),
          "a parameter outside any layer: %s", sdl_last_error());
    sdl_model_free(loose);
    CHECK(sdl_mpi_zero_new(NULL, &(sdl_mpi_zero_desc){.stage = 1}) == NULL, "NULL model accepted");
    CHECK(sdl_mpi_zero_step(NULL) == SDL_ERR_ARG, "NULL step accepted");
    sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 3});
    CHECK(z && sdl_mpi_ddp_new(a.m, NULL) == NULL && sdl_mpi_broadcast_model(a.m, NULL, 0) == SDL_ERR_STATE &&
          sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 1}) == NULL, "a sharded model accepted by ddp, broadcast or zero");
    sdl_mpi_zero_free(z);
    sdl_model_free(a.m);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_zero_sgd);
    MRUN(test_zero_adam);
    MRUN(test_zero_adamw);
    MRUN(test_zero_lars);
    MRUN(test_zero_lamb);
    MRUN(test_zero_wire);
    MRUN(test_zero_bytes);
    MRUN(test_zero_checkpoint);
    MRUN(test_zero3_gather_free);
    MRUN(test_zero_bad_args);
    return mpi_test_finish();
}
