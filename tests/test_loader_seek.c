/* test_loader_seek.c - sdl_loader_seek and sdl_loader_samples_done: an epoch interrupted
   after some rounds at one world size and batch size and resumed at another sees every
   sample exactly once, in the epoch's order; a checkpoint carries the position. The ranks
   are loaders in one process (rank r of world_size W). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

enum { N = 240 };
static uint8_t g_img[N * 2];
static int32_t g_lab[N];
static sdl_dataset g_data = {N, 1, 1, 2, 7, g_img, g_lab};

/* sample id from its two pixels (id % 256, id / 256 as bytes) */
static int id_of(const sdl_tensor *x, int64_t i) {
    const float *p = sdl_f32(x) + i * 2;
    return (int)lrintf(p[0] * 255.0f) + 256 * (int)lrintf(p[1] * 255.0f);
}

/* `rounds` rounds (0: to the end) of world W, batch B, from position `from` of epoch e:
   appends the ids to seen[] in the epoch's position order; returns the position reached */
static int64_t run(int W, int B, int64_t e, int64_t from, int rounds, int *seen, int *nseen, bool prefetch) {
    sdl_loader *l[4];
    for (int r = 0; r < W; r++) {
        l[r] = sdl_loader_new(&(sdl_loader_desc){.data = &g_data, .batch_size = B, .shuffle = true, .seed = 9,
                                                 .rank = r, .world_size = W, .prefetch = prefetch ? 2 : -1});
        CHECK(sdl_loader_seek(l[r], e, from) == SDL_OK, "%s", sdl_last_error());
    }
    int64_t done = from;
    for (int k = 0; rounds == 0 || k < rounds; k++) {
        sdl_tensor *x[4] = {NULL, NULL, NULL, NULL}, *y[4] = {NULL, NULL, NULL, NULL};
        bool more = true;
        for (int r = 0; r < W; r++) more = sdl_loader_next(l[r], &x[r], &y[r]) && more;
        if (!more) break;
        /* the round's positions: rank r's i-th sample is position base + i * W + r */
        int64_t cnt = x[0]->shape[0];
        for (int64_t i = 0; i < cnt; i++)
            for (int r = 0; r < W; r++)
                if (i < x[r]->shape[0]) seen[(*nseen)++] = id_of(x[r], i);
        done = sdl_loader_samples_done(l[0]);
        for (int r = 1; r < W; r++) CHECK(sdl_loader_samples_done(l[r]) == done, "ranks disagree on the position");
    }
    for (int r = 0; r < W; r++) sdl_loader_free(l[r]);
    return done;
}

static void check_once(const int *seen, int nseen, const char *what) {
    int count[N] = {0};
    CHECK(nseen == N, "%s: %d samples seen, want %d", what, nseen, N);
    for (int i = 0; i < nseen; i++) if (seen[i] >= 0 && seen[i] < N) count[seen[i]]++;
    int bad = 0;
    for (int i = 0; i < N; i++) bad += count[i] != 1;
    CHECK(bad == 0, "%s: %d samples not seen exactly once", what, bad);
}

static void test_resume_other_world(void) {
    static int ref[N + 8], got[N + 8];
    int nref = 0;
    run(1, 24, 3, 0, 0, ref, &nref, false); /* one process, the whole epoch 3 */
    check_once(ref, nref, "one process");
    struct { int w1, b1, rounds, w2, b2; bool pf; } cases[] = {
        {3, 4, 7, 2, 6, false}, {3, 4, 7, 2, 6, true}, {2, 6, 5, 3, 4, true}, {3, 8, 2, 1, 5, false}, {1, 24, 4, 3, 4, true}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n = 0;
        int64_t at = run(cases[c].w1, cases[c].b1, 3, 0, cases[c].rounds, got, &n, cases[c].pf);
        CHECK(at == (int64_t)cases[c].rounds * cases[c].w1 * cases[c].b1, "case %zu: position %lld", c, (long long)at);
        run(cases[c].w2, cases[c].b2, 3, at, 0, got, &n, cases[c].pf);
        char what[64];
        snprintf(what, sizeof what, "case %zu", c);
        check_once(got, n, what);
        int order = 0; /* the same order as one process */
        for (int i = 0; i < n && i < nref; i++) order += got[i] != ref[i];
        CHECK(order == 0, "case %zu: %d positions out of order", c, order);
    }
}

/* padding only at the end: 240 - 10 left on 7 ranks, 33 each, 1 repeated */
static void test_seek_padding_and_errors(void) {
    sdl_loader *l = sdl_loader_new(&(sdl_loader_desc){.data = &g_data, .batch_size = 5, .rank = 6, .world_size = 7, .prefetch = -1});
    CHECK(sdl_loader_seek(l, 0, 10) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_loader_num_samples(l) == 33, "%lld samples", (long long)sdl_loader_num_samples(l));
    CHECK(sdl_loader_num_batches(l) == 7, "%lld batches", (long long)sdl_loader_num_batches(l));
    CHECK(sdl_loader_seek(l, 0, N + 1) == SDL_ERR_ARG, "past the end accepted");
    CHECK(sdl_loader_seek(l, -1, 0) == SDL_ERR_ARG, "epoch -1 accepted");
    CHECK(sdl_loader_seek(NULL, 0, 0) == SDL_ERR_ARG, "NULL accepted");
    /* set_epoch after a seek starts the epoch from its beginning */
    sdl_loader_set_epoch(l, 0);
    CHECK(sdl_loader_num_samples(l) == 35 && sdl_loader_samples_done(l) == 0, "%lld", (long long)sdl_loader_num_samples(l));
    /* the next epoch, reached by running out, starts whole */
    CHECK(sdl_loader_seek(l, 2, 238) == SDL_OK, "%s", sdl_last_error());
    sdl_tensor *x, *y;
    int batches = 0;
    while (sdl_loader_next(l, &x, &y)) batches++;
    CHECK(batches == 1 && sdl_loader_epoch(l) == 3 && sdl_loader_num_samples(l) == 35, "%d batches, epoch %lld", batches, (long long)sdl_loader_epoch(l));
    sdl_loader_free(l);
}

/* the position goes through a checkpoint */
static void test_checkpoint_position(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_linear_layer(m, "fc", 2, 3, true);
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.0f, 0.0f, false);
    const char *path = "/tmp/sdl_test_seek.safetensors";
    CHECK(sdl_checkpoint_save_at(path, m, o, 4, 96) == SDL_OK, "%s", sdl_last_error());
    sdl_checkpoint_info info;
    CHECK(sdl_checkpoint_load(path, m, o, &info) == SDL_OK, "%s", sdl_last_error());
    CHECK(info.epoch == 4 && info.samples == 96, "epoch %lld samples %lld", (long long)info.epoch, (long long)info.samples);
    CHECK(sdl_checkpoint_save(path, m, o, 5) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_checkpoint_load(path, m, o, &info) == SDL_OK && info.samples == 0, "samples %lld", (long long)info.samples);
    remove(path);
    sdl_optim_free(o);
    sdl_model_free(m);
}

int main(void) {
    for (int i = 0; i < N; i++) {
        g_img[2 * i] = (uint8_t)(i % 256);
        g_img[2 * i + 1] = (uint8_t)(i / 256);
        g_lab[i] = i % 7;
    }
    RUN(test_resume_other_world);
    RUN(test_seek_padding_and_errors);
    RUN(test_checkpoint_position);
    return sdl_test_finish();
}
