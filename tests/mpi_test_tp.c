/* mpi_test_tp.c - sdl_mpi.h tensor parallelism: f, g and the gather forward and backward
   against their definitions, a column-parallel (gathered) linear and a transformer block
   (attention split by heads, MLP column -> GELU -> row) and a vocabulary-parallel
   embedding, head and cross entropy trained 10 steps against the same model in one
   process, bytes per step against the formula, bad input. T = the ranks. */
// mpirun-np: 2 4
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;
static sdl_tp *g_tp;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

static float val(int rank, int64_t i) { return (float)((i * 7 + rank * 3) % 11) - 5.0f; } /* small integers: exact sums */

static sdl_tensor *leaf(int64_t R, int64_t c, int rank) {
    sdl_tensor *t = sdl_tensor_new(sdl_shape2(R, c), SDL_F32);
    for (int64_t i = 0; i < R * c; i++) sdl_f32(t)[i] = val(rank, i);
    sdl_tensor_requires_grad(t);
    return t;
}

/* loss = sum(y * v), v_r[i] = val(r + 100, i): dy = v */
static sdl_tensor *weigh(sdl_tensor *y, int rank) {
    sdl_tensor *v = sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32);
    for (int64_t i = 0; i < y->numel; i++) sdl_f32(v)[i] = val(rank + 100, i);
    return sdl_sum(sdl_mul(y, v));
}

static void test_collectives(void) {
    int64_t R = 3, c = 5, T = g_size;
    sdl_tensor *x = leaf(R, c, g_rank);
    /* f: y = x, dx = sum over ranks of dy */
    CHECK(sdl_backward(weigh(sdl_tp_copy(g_tp, x), g_rank)) == SDL_OK, "%s", sdl_last_error());
    int bad = 0;
    for (int64_t i = 0; i < R * c; i++) {
        float want = 0;
        for (int r = 0; r < T; r++) want += val(r + 100, i);
        bad += x->grad[i] != want;
    }
    CHECK(!bad, "copy: %d gradients are not the sum over ranks", bad);
    /* g: y = sum over ranks of x, dx = dy */
    memset(x->grad, 0, (size_t)(R * c) * sizeof(float));
    sdl_tensor *y = sdl_tp_reduce(g_tp, x);
    bad = 0;
    for (int64_t i = 0; y && i < R * c; i++) {
        float want = 0;
        for (int r = 0; r < T; r++) want += val(r, i);
        bad += sdl_f32(y)[i] != want;
    }
    CHECK(y && !bad, "reduce: %d sums wrong", bad);
    CHECK(sdl_backward(weigh(y, 0)) == SDL_OK, "%s", sdl_last_error());
    bad = 0;
    for (int64_t i = 0; i < R * c; i++) bad += x->grad[i] != val(100, i);
    CHECK(!bad, "reduce: %d gradients are not dy", bad);
    /* gather: y[i, r c + j] = x_r[i, j];  dx[i, j] = dy[i, rank c + j] */
    memset(x->grad, 0, (size_t)(R * c) * sizeof(float));
    y = sdl_tp_gather(g_tp, x);
    CHECK(y && y->shape[1] == T * c, "gather shape");
    bad = 0;
    for (int64_t i = 0; y && i < R; i++)
        for (int r = 0; r < T; r++)
            for (int64_t j = 0; j < c; j++) bad += sdl_f32(y)[i * T * c + r * c + j] != val(r, i * c + j);
    CHECK(!bad, "gather: %d values misplaced", bad);
    CHECK(sdl_backward(weigh(y, 0)) == SDL_OK, "%s", sdl_last_error());
    bad = 0;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < c; j++) bad += x->grad[i * c + j] != val(100, i * T * c + g_rank * c + j);
    CHECK(!bad, "gather: %d gradients wrong", bad);
    sdl_tensor_free(x);
}

/* worst relative difference of a tensor-parallel parameter from its slice of the full one */
static double slice_diff(const sdl_tensor *part, const sdl_tensor *full, bool by_rows) {
    int64_t o = part->shape[0], i = part->ndim > 1 ? part->shape[1] : 1, fin = full->ndim > 1 ? full->shape[1] : 1;
    double e = 0, mx = 1e-12;
    for (int64_t r = 0; r < o; r++)
        for (int64_t c = 0; c < i; c++) {
            int64_t fr = by_rows && part->numel != full->numel ? g_rank * o + r : r, fc = !by_rows && part->numel != full->numel ? g_rank * i + c : c;
            double u = sdl_f32(part)[r * i + c], v = sdl_f32(full)[fr * fin + fc];
            e = fabs(u - v) > e ? fabs(u - v) : e;
            mx = fabs(v) > mx ? fabs(v) : mx;
        }
    return e / mx;
}

/* ---- a gathered column-parallel linear ------------------------------------------------- */
static void test_column_gather(void) {
    sdl_model *a = sdl_model_new(3); /* each model seeds the RNG: build one, then the other */
    sdl_module *ca = sdl_tp_column_linear(a, g_tp, "fc1", 6, 8, true, true), *ha = sdl_linear_layer(a, "head", 8, 3, true);
    sdl_model *b = sdl_model_new(3);
    sdl_module *cb = sdl_linear_layer(b, "fc1", 6, 8, true), *hb = sdl_linear_layer(b, "head", 8, 3, true);
    CHECK(ca && ha, "%s", sdl_last_error());
    CHECK(slice_diff(ca->weight, cb->weight, true) == 0 && slice_diff(ca->bias, cb->bias, true) == 0, "not the plain layer's slice at the start");
    sdl_optim *oa = sdl_sgd(a, 0.1f, 0.9f, 0, false), *ob = sdl_sgd(b, 0.1f, 0.9f, 0, false);
    for (int step = 0; step < 10; step++) {
        sdl_tensor *x = sdl_arena_tensor(sdl_shape2(5, 6), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(5), SDL_I32);
        for (int64_t i = 0; i < 30; i++) sdl_f32(x)[i] = sdl_hash_uniform(1, (uint64_t)step, (uint64_t)i) - 0.5f;
        for (int64_t i = 0; i < 5; i++) sdl_i32(y)[i] = (int32_t)(i % 3);
        CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(ha, sdl_tanh(sdl_forward(ca, x))), y, 0)) == SDL_OK, "%s", sdl_last_error());
        sdl_backward(sdl_cross_entropy(sdl_forward(hb, sdl_tanh(sdl_forward(cb, x))), y, 0));
        sdl_optim_step(oa);
        sdl_optim_step(ob);
        sdl_arena_reset();
    }
    double e = slice_diff(ca->weight, cb->weight, true);
    e = fmax(e, fmax(slice_diff(ca->bias, cb->bias, true), slice_diff(ha->weight, hb->weight, true)));
    CHECK(e <= 1e-5, "column-parallel training differs from one process by %g relative", e);
    sdl_optim_free(oa), sdl_optim_free(ob);
    sdl_model_free(a), sdl_model_free(b);
}

/* ---- a transformer block: x + attn(x), then + mlp, a head, cross entropy ----------------- */
enum { B = 2, T = 6, C = 16, H = 4, V = 10 };
typedef struct block { sdl_model *m; sdl_module *attn, *q, *k, *v, *proj, *mlp, *fc1, *fc2, *head; sdl_optim *opt; } block;

static block block_new(sdl_tp *tp) {
    block r;
    memset(&r, 0, sizeof r);
    r.m = sdl_model_new(8);
    if (tp) {
        r.attn = sdl_tp_attention(r.m, tp, "attn", C, H);
        r.mlp = sdl_tp_mlp(r.m, tp, "mlp", C, 4 * C);
    } else {
        r.q = sdl_linear_layer(r.m, "attn.q", C, C, true), r.k = sdl_linear_layer(r.m, "attn.k", C, C, true);
        r.v = sdl_linear_layer(r.m, "attn.v", C, C, true), r.proj = sdl_linear_layer(r.m, "attn.proj", C, C, true);
        r.fc1 = sdl_linear_layer(r.m, "mlp.fc1", C, 4 * C, true), r.fc2 = sdl_linear_layer(r.m, "mlp.fc2", 4 * C, C, true);
    }
    r.head = sdl_linear_layer(r.m, "head", C, V, true);
    r.opt = sdl_sgd(r.m, 0.1f, 0.9f, 0, false); /* not Adam: it blows the rounding noise of gradients that are 0 in exact arithmetic (the key bias: softmax ignores a shift) up to +-lr */
    return r;
}

static sdl_tensor *heads(sdl_tensor *t) {
    int64_t d[4] = {B, T, H, C / H};
    return sdl_transpose(sdl_reshape(t, sdl_shapen(4, d)), 1, 2);
}

static sdl_tensor *block_loss(block *r, sdl_tensor *x, sdl_tensor *y) {
    sdl_tensor *h;
    if (r->attn) {
        h = sdl_residual_add(x, sdl_forward(r->attn, x));
        h = sdl_residual_add(h, sdl_forward(r->mlp, h));
    } else {
        sdl_tensor *a = sdl_attention(heads(sdl_forward(r->q, x)), heads(sdl_forward(r->k, x)), heads(sdl_forward(r->v, x)));
        h = sdl_residual_add(x, sdl_forward(r->proj, sdl_reshape(sdl_transpose(a, 1, 2), sdl_shape3(B, T, C))));
        h = sdl_residual_add(h, sdl_forward(r->fc2, sdl_gelu(sdl_forward(r->fc1, h))));
    }
    return sdl_cross_entropy(sdl_reshape(sdl_forward(r->head, h), sdl_shape2(B * T, V)), y, 0);
}

static void test_transformer_block(void) {
    block a = block_new(g_tp), b = block_new(NULL);
    CHECK(a.attn && a.mlp, "%s", sdl_last_error());
    int64_t bytes0 = sdl_tp_bytes(g_tp);
    for (int step = 0; a.attn && step < 10; step++) {
        sdl_tensor *x = sdl_arena_tensor(sdl_shape3(B, T, C), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(B * T), SDL_I32);
        for (int64_t i = 0; i < B * T * C; i++) sdl_f32(x)[i] = sdl_hash_uniform(2, (uint64_t)step, (uint64_t)i) * 2 - 1;
        for (int64_t i = 0; i < B * T; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(3, (uint64_t)step, (uint64_t)i) * V);
        sdl_tensor *la = block_loss(&a, x, y); /* one graph on the tape at a time: backward clears it */
        float fa = la ? sdl_item(la) : 0.0f;
        CHECK(sdl_backward(la) == SDL_OK, "%s", sdl_last_error());
        sdl_tensor *lb = block_loss(&b, x, y);
        CHECK(fabsf(fa - sdl_item(lb)) <= 1e-5f * fabsf(sdl_item(lb)), "step %d: loss %g vs %g", step, (double)fa, (double)sdl_item(lb));
        CHECK(sdl_backward(lb) == SDL_OK, "%s", sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_optim_step(b.opt);
        sdl_arena_reset();
        /* per step: attention and MLP each one all-reduce forward (g) and one backward (f) of
           B T C floats, but x needs no gradient: attention's f has no backward */
        if (step == 0) CHECK(sdl_tp_bytes(g_tp) - bytes0 == 3 * (int64_t)B * T * C * 4, "%lld bytes a step, want %d",
                             (long long)(sdl_tp_bytes(g_tp) - bytes0), 3 * B * T * C * 4);
    }
    sdl_module *pa[6] = {a.attn->children[0], a.attn->children[1], a.attn->children[2], a.attn->children[3], a.mlp->children[0], a.mlp->children[1]};
    sdl_module *pb[6] = {b.q, b.k, b.v, b.proj, b.fc1, b.fc2};
    bool rows[6] = {true, true, true, false, true, false};
    double e = slice_diff(a.head->weight, b.head->weight, true);
    for (int i = 0; i < 6; i++) e = fmax(e, fmax(slice_diff(pa[i]->weight, pb[i]->weight, rows[i]), slice_diff(pa[i]->bias, pb[i]->bias, rows[i])));
    CHECK(e <= 1e-5, "the tensor-parallel block differs from one process by %g relative after 10 steps", e);
    double moved = 0;
    for (int64_t i = 0; i < a.m->param_floats; i++) moved = fmax(moved, fabs((double)a.m->param_data[i]));
    CHECK(moved > 0, "no parameters");
    sdl_optim_free(a.opt), sdl_optim_free(b.opt);
    sdl_model_free(a.m), sdl_model_free(b.m);
}

/* ---- vocabulary-parallel embedding, head and cross entropy ------------------------------- */
static void test_vocab_parallel(void) {
    enum { R = 12, D = 8 };
    int64_t Vt = 5 * g_size; /* V/T = 5 on every group size */
    sdl_model *a = sdl_model_new(4); /* each model seeds the RNG: build one, then the other */
    sdl_module *ea = sdl_tp_embedding(a, g_tp, "emb", Vt, D), *ha = sdl_tp_column_linear(a, g_tp, "head", D, Vt, true, false);
    sdl_model *b = sdl_model_new(4);
    sdl_module *eb = sdl_embedding_layer(b, "emb", Vt, D), *hb = sdl_linear_layer(b, "head", D, Vt, true);
    CHECK(ea && ha, "%s", sdl_last_error());
    CHECK(ea && slice_diff(ea->weight, eb->weight, true) == 0, "not the plain table's rows at the start");
    sdl_optim *oa = sdl_sgd(a, 0.5f, 0.9f, 0, false), *ob = sdl_sgd(b, 0.5f, 0.9f, 0, false);
    for (int step = 0; ea && step < 10; step++) {
        sdl_tensor *ids = sdl_arena_tensor(sdl_shape1(R), SDL_I32), *y = sdl_arena_tensor(sdl_shape1(R), SDL_I32);
        for (int64_t i = 0; i < R; i++) {
            sdl_i32(ids)[i] = (int32_t)(sdl_hash_uniform(5, (uint64_t)step, (uint64_t)i) * (float)Vt);
            sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform(6, (uint64_t)step, (uint64_t)i) * (float)Vt);
        }
        sdl_tensor *la = sdl_tp_cross_entropy(g_tp, sdl_forward(ha, sdl_tanh(sdl_forward(ea, ids))), y);
        float fa = la ? sdl_item(la) : 0.0f;
        CHECK(la && sdl_backward(la) == SDL_OK, "%s", sdl_last_error());
        sdl_tensor *lb = sdl_cross_entropy(sdl_forward(hb, sdl_tanh(sdl_forward(eb, ids))), y, 0);
        CHECK(fabsf(fa - sdl_item(lb)) <= 1e-5f * fabsf(sdl_item(lb)), "step %d: loss %g vs %g", step, (double)fa, (double)sdl_item(lb));
        sdl_backward(lb);
        sdl_optim_step(oa);
        sdl_optim_step(ob);
        sdl_arena_reset();
    }
    double e = fmax(slice_diff(ea->weight, eb->weight, true), fmax(slice_diff(ha->weight, hb->weight, true), slice_diff(ha->bias, hb->bias, true)));
    CHECK(e <= 1e-5, "vocabulary-parallel training differs from one process by %g relative after 10 steps", e);
    sdl_tensor *bad = sdl_arena_tensor(sdl_shape1(2), SDL_I32);
    sdl_i32(bad)[1] = (int32_t)Vt;
    CHECK(!sdl_forward(ea, bad) && strstr(sdl_last_error(), "outside"), "%s", sdl_last_error());
    CHECK(!sdl_tp_cross_entropy(g_tp, sdl_arena_tensor(sdl_shape2(2, 5), SDL_F32), bad) && strstr(sdl_last_error(), "outside"), "%s", sdl_last_error());
    sdl_optim_free(oa), sdl_optim_free(ob);
    sdl_model_free(a), sdl_model_free(b);
}

static void test_bad_input(void) {
    sdl_model *m = sdl_model_new(1);
    CHECK(!sdl_tp_column_linear(m, g_tp, "x", 4, 4 * g_size + 1, true, false) && strstr(sdl_last_error(), "divide"), "%s", sdl_last_error());
    CHECK(!sdl_tp_attention(m, g_tp, "a", 8 * g_size, 3 * g_size) && strstr(sdl_last_error(), "heads"), "%s", sdl_last_error());
    CHECK(!sdl_tp_copy(NULL, sdl_arena_tensor(sdl_shape1(2), SDL_F32)) && strstr(sdl_last_error(), "NULL group"), "%s", sdl_last_error());
    sdl_model_free(m);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    g_tp = sdl_tp_new(0);
    MRUN(test_collectives);
    MRUN(test_column_gather);
    MRUN(test_transformer_block);
    MRUN(test_vocab_parallel);
    MRUN(test_bad_input);
    sdl_tp_free(g_tp);
    return mpi_test_finish();
}
