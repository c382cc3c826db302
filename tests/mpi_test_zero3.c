/* mpi_test_zero3.c - ZeRO stage 3 (FSDP) frees a layer's parameters after its forward and
   gathers them again just before its backward (the model's pre-grad hook), with the next
   layer's gather on the wire meanwhile: the most parameters whole at once is about two
   layers, not the model; and the training still equals sdl_mpi_ddp and one process on the
   whole batch (SGD, AdamW, accumulation, clipping), also with a layer run twice in one
   forward, a layer never run, and two backward passes through one graph. Stages 2 and 3
   send each bucket of gradients while backward goes on: after backward, before the step,
   the gradients are out of the arena. */
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

enum { B = 3, ACCUM = 2, IN = 16, OUT = 5, NLAYER = 6 }; /* rows per rank per micro-batch */

/* fc1 relu ln fc2 gelu fc3 relu fc3 relu fc4 relu fc5: fc3 runs twice; with `spare`, a
   layer made between fc2 and fc3 that never runs (its parameters get no gradient) */
typedef struct net { sdl_model *m; sdl_module *l[NLAYER]; } net;
static bool g_spare;
static net net_new(void) {
    net r;
    r.m = sdl_model_new(11);
    r.l[0] = sdl_linear_layer(r.m, "fc1", IN, 48, true);
    r.l[1] = sdl_layer_norm_layer(r.m, "ln", 48);
    r.l[2] = sdl_linear_layer(r.m, "fc2", 48, 32, true);
    if (g_spare) sdl_linear_layer(r.m, "spare", 32, 8, true);
    r.l[3] = sdl_linear_layer(r.m, "fc3", 32, 32, true);
    r.l[4] = sdl_linear_layer(r.m, "fc4", 32, 40, true);
    r.l[5] = sdl_linear_layer(r.m, "fc5", 40, OUT, true);
    sdl_model_pack(r.m);
    return r;
}
static sdl_tensor *net_forward(net *r, sdl_tensor *x) {
    x = sdl_forward(r->l[1], sdl_relu(sdl_forward(r->l[0], x)));
    x = sdl_gelu(sdl_forward(r->l[2], x));
    x = sdl_relu(sdl_forward(r->l[3], x));
    x = sdl_relu(sdl_forward(r->l[3], x));
    x = sdl_relu(sdl_forward(r->l[4], x));
    return sdl_forward(r->l[5], x);
}
/* floats of layer k's parameters */
static int64_t layer_floats(const net *r, int k) {
    return (r->l[k]->weight ? r->l[k]->weight->numel : 0) + (r->l[k]->bias ? r->l[k]->bias->numel : 0);
}

static sdl_tensor *batch_x(int micro, int row0, int rows) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(rows, IN), SDL_F32);
    for (int i = 0; i < rows * IN; i++) sdl_f32(x)[i] = 2.0f * sdl_hash_uniform(51, (uint64_t)micro, (uint64_t)(row0 * IN + i)) - 1.0f;
    return x;
}
static sdl_tensor *loss_of(net *r, int micro, int row0, int rows) {
    sdl_tensor *y = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
    for (int i = 0; i < rows; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(52, (uint64_t)micro, (uint64_t)(row0 + i)) * OUT) % OUT;
    return sdl_cross_entropy(net_forward(r, batch_x(micro, row0, rows)), y, 0.0f);
}

/* backward, twice through the same graph when `twice` (the gradient doubles) */
static sdl_result backward(sdl_tensor *loss, bool twice) {
    sdl_backward_desc keep = {true};
    sdl_result r = twice ? sdl_backward_ex(loss, &keep) : SDL_OK;
    return r == SDL_OK ? sdl_backward(loss) : r;
}

static sdl_optim_desc optim_of(sdl_optim_kind kind) {
    sdl_optim_desc d = {0};
    d.kind = kind;
    d.lr = kind == SDL_OPTIM_SGD ? 0.1f : 0.01f;
    d.momentum = kind == SDL_OPTIM_SGD ? 0.9f : 0.0f;
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

enum { MICRO = 8 };
static void run_single(net *r, sdl_optim *o, bool twice) {
    for (int s = 0; s < MICRO; s++) {
        CHECK(backward(loss_of(r, s, 0, B * g_size), twice) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}
static void run_ddp(net *r, sdl_optim *o, sdl_mpi_ddp *d, bool twice) {
    for (int s = 0; s < MICRO; s++) {
        sdl_tensor *loss = loss_of(r, s, g_rank * B, B);
        if (twice) { /* DDP marks each gradient ready once per sync: the first pass adds up locally (no_sync) */
            sdl_backward_desc keep = {true};
            sdl_mpi_ddp_set_sync(d, false);
            CHECK(sdl_backward_ex(loss, &keep) == SDL_OK, "%s", sdl_last_error());
        }
        sdl_mpi_ddp_set_sync(d, sdl_optim_is_update_step(o));
        CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
        if (sdl_optim_is_update_step(o)) sdl_mpi_ddp_sync(d);
        sdl_optim_step(o);
        sdl_arena_reset();
    }
}
static void run_zero(net *r, sdl_mpi_zero *z, bool twice) {
    for (int s = 0; s < MICRO; s++) {
        CHECK(backward(loss_of(r, s, g_rank * B, B), twice) == SDL_OK, "%s", sdl_last_error());
        CHECK(sdl_mpi_zero_step(z) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
    }
}

/* stages 2 and 3 against ddp and one process; stage 3's peak of gathered parameters */
static void zero3_vs_single(sdl_optim_kind kind, bool twice) {
    sdl_optim_desc od = optim_of(kind);
    net ref = net_new(), dp = net_new();
    sdl_optim *oref = sdl_optim_new(ref.m, &od), *odp = sdl_optim_new(dp.m, &od);
    sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(dp.m, NULL);
    run_single(&ref, oref, twice);
    run_ddp(&dp, odp, ddp, twice);
    CHECK(oref->grad_norm > od.max_grad_norm, "the norm %g was not clipped", (double)oref->grad_norm);
    int64_t P = ref.m->param_floats, big[2] = {0, 0};
    for (int k = 0; k < NLAYER; k++) {
        int64_t f = layer_floats(&ref, k);
        if (f > big[0]) big[1] = big[0], big[0] = f;
        else if (f > big[1]) big[1] = f;
    }
    for (int stage = 2; stage <= 3; stage++) {
        net a = net_new();
        sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = stage, .optim = od, .bucket_mb = 0.002f});
        CHECK(z != NULL, "%s", sdl_last_error());
        if (!z) continue;
        run_zero(&a, z, twice);
        int64_t peak = sdl_mpi_zero_peak_gathered(z);
        if (stage == 2)
            CHECK(peak == 0, "stage 2 gathered %lld bytes", (long long)peak);
        else if (!g_spare) /* keep-until-backward held the whole model, P floats (the spare layer: the first step
                              prefetches it after fc2 and it waits for the step, a layer more) */
            CHECK(peak >= 4 * big[0] && peak <= 4 * (big[0] + big[1]) && peak < 4 * P,
                  "%lld bytes gathered at once; the two largest layers %lld, the model %lld", (long long)peak,
                  (long long)(4 * (big[0] + big[1])), (long long)(4 * P));
        CHECK(fabsf(sdl_mpi_zero_grad_norm(z) - oref->grad_norm) <= 1e-5f * oref->grad_norm, "grad norm %g vs %g",
              (double)sdl_mpi_zero_grad_norm(z), (double)oref->grad_norm);
        sdl_mpi_zero_free(z);
        double w = rel(a.m->param_data, ref.m->param_data, P), wdp = rel(a.m->param_data, dp.m->param_data, P);
        CHECK(w <= 1e-5 && wdp <= 1e-5, "stage %d differs from one process by %g, from ddp by %g", stage, w, wdp);
        if (g_rank == 0)
            printf("     optimizer %d%s stage %d: %.2g from one process, %.2g from ddp; peak gathered %lld of %lld bytes\n",
                   (int)kind, twice ? " (two backwards)" : "", stage, w, wdp, (long long)peak, (long long)(4 * P));
        sdl_model_free(a.m);
    }
    sdl_mpi_ddp_free(ddp);
    sdl_optim_free(oref); sdl_optim_free(odp);
    sdl_model_free(ref.m); sdl_model_free(dp.m);
}
static void test_zero3_sgd(void) { zero3_vs_single(SDL_OPTIM_SGD, false); }
static void test_zero3_unused_layer(void) {
    g_spare = true;
    zero3_vs_single(SDL_OPTIM_SGD, false);
    g_spare = false;
}
static void test_zero3_adamw(void) { zero3_vs_single(SDL_OPTIM_ADAMW, false); }
static void test_zero3_adamw_two_backwards(void) { zero3_vs_single(SDL_OPTIM_ADAMW, true); }

/* where the parameters are during one step: after forward only the last layer's (its
   backward comes first); during backward at most two layers'; after it none */
static int gathered_layers(const net *r) {
    int n = 0;
    for (int k = 0; k < NLAYER; k++) n += r->l[k]->weight->data != NULL;
    return n;
}
/* the model's pre-grad hook, watched: the layers whole once it gathered what a backward kernel reads */
static int g_most;
static sdl_grad_hook g_pre;
static void *g_pre_user;
static const net *g_net;
static sdl_result watch(void *user, sdl_model *m, int param_index) {
    sdl_result r = g_pre(g_pre_user, m, param_index);
    int n = gathered_layers(g_net);
    (void)user;
    if (n > g_most) g_most = n;
    return r;
}
static void test_zero3_where(void) {
    net a = net_new();
    sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = 3, .optim = optim_of(SDL_OPTIM_SGD)});
    CHECK(z != NULL, "%s", sdl_last_error());
    if (!z) return;
    g_pre = a.m->pre_grad_hook;
    g_pre_user = a.m->pre_grad_hook_user;
    g_net = &a;
    sdl_model_set_pre_grad_hook(a.m, watch, NULL);
    for (int step = 0; step < 2; step++) { /* the second step prefetches in the order the first saw */
        sdl_tensor *loss = loss_of(&a, step, g_rank * B, B);
        CHECK(gathered_layers(&a) == 1 && a.l[NLAYER - 1]->weight->data, "after forward: %d layers gathered", gathered_layers(&a));
        g_most = 0;
        CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
        CHECK(g_most >= 1 && g_most <= 2, "%d layers gathered at once in backward", g_most);
        CHECK(gathered_layers(&a) == 0, "after backward: %d layers gathered", gathered_layers(&a));
        CHECK(sdl_mpi_zero_step(z) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
    }
    sdl_model_set_pre_grad_hook(a.m, g_pre, g_pre_user);
    /* an evaluation forward without gradients leaves nothing gathered, and gives the same output */
    sdl_set_grad_enabled(false);
    sdl_tensor *y = net_forward(&a, batch_x(9, 0, 2));
    sdl_set_grad_enabled(true);
    CHECK(y && gathered_layers(&a) == 0, "after a no-grad forward: %d layers gathered (%s)", gathered_layers(&a), sdl_last_error());
    float out[2 * OUT];
    if (y) memcpy(out, sdl_f32(y), sizeof out);
    sdl_arena_reset();
    sdl_mpi_zero_free(z); /* the model has its parameters again */
    sdl_set_grad_enabled(false);
    y = net_forward(&a, batch_x(9, 0, 2));
    sdl_set_grad_enabled(true);
    CHECK(y && rel(out, sdl_f32(y), 2 * OUT) <= 1e-6, "stage 3 eval forward differs");
    sdl_arena_reset();
    sdl_model_free(a.m);
}

/* stages 2, 3: the buckets went out during backward (each one copied from the arena and
   zeroed there), not at the step */
static void test_zero_overlap(void) {
    for (int stage = 2; stage <= 3; stage++) {
        net a = net_new();
        sdl_mpi_zero *z = sdl_mpi_zero_new(a.m, &(sdl_mpi_zero_desc){.stage = stage, .optim = optim_of(SDL_OPTIM_SGD), .bucket_mb = 0.002f});
        CHECK(z != NULL, "%s", sdl_last_error());
        if (!z) continue;
        CHECK(sdl_backward(loss_of(&a, 0, g_rank * B, B)) == SDL_OK, "%s", sdl_last_error());
        int with = 0, left = 0;
        for (int i = 0; i < a.m->nparams; i++) {
            const sdl_tensor *p = a.m->params[i];
            with += p->grad != NULL;
            for (int64_t j = 0; p->grad && j < p->numel; j++) left += p->grad[j] != 0.0f;
        }
        CHECK(with == a.m->nparams && left == 0, "stage %d: %d of %d parameters have a gradient, %d floats of it not sent",
              stage, with, a.m->nparams, left);
        CHECK(sdl_mpi_zero_step(z) == SDL_OK, "%s", sdl_last_error());
        sdl_arena_reset();
        sdl_mpi_zero_free(z);
        sdl_model_free(a.m);
    }
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_zero3_sgd);
    MRUN(test_zero3_adamw);
    MRUN(test_zero3_adamw_two_backwards);
    MRUN(test_zero3_unused_layer);
    MRUN(test_zero_overlap);
    MRUN(test_zero3_where);
    return mpi_test_finish();
}
