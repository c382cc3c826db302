/* test_loader.c - the data loader: order, epochs, ranks, drop_last, prefetch, transforms */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* n samples of c x h x w; label i = sample index i, pixel bytes a pattern of i */
static sdl_dataset make_data(int64_t n, int c, int h, int w) {
    sdl_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n; d.c = c; d.h = h; d.w = w; d.num_classes = (int)n;
    d.images = (uint8_t *)malloc((size_t)(n * c * h * w));
    d.labels = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        d.labels[i] = (int32_t)i;
        for (int64_t k = 0; k < (int64_t)c * h * w; k++) d.images[i * c * h * w + k] = (uint8_t)((i * 7 + k * 13) & 255);
    }
    return d;
}
static void free_data(sdl_dataset *d) { free(d->images); free(d->labels); }

/* every label the loader hands out this epoch, in order; returns the count */
static int64_t epoch_labels(sdl_loader *l, int32_t *out, int64_t *nbatches) {
    sdl_tensor *x, *y;
    int64_t k = 0, b = 0;
    while (sdl_loader_next(l, &x, &y)) {
        for (int64_t i = 0; i < y->numel; i++) out[k++] = sdl_i32(y)[i];
        b++;
    }
    if (nbatches) *nbatches = b;
    return k;
}

static void test_order_and_epochs(void) {
    sdl_dataset d = make_data(50, 1, 2, 3);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 8; desc.shuffle = true; desc.seed = 7; desc.prefetch = -1;
    sdl_loader *l = sdl_loader_new(&desc);
    CHECK(l != NULL, "loader_new: %s", sdl_last_error());
    if (!l) { free_data(&d); return; }
    int32_t e0[64], e1[64], e0b[64];
    int64_t nb = 0;
    CHECK(sdl_loader_num_batches(l) == 7, "50 / 8 rounded up is 7, got %lld", (long long)sdl_loader_num_batches(l));
    int64_t n0 = epoch_labels(l, e0, &nb);
    CHECK(n0 == 50 && nb == 7, "one epoch: %lld samples in %lld batches", (long long)n0, (long long)nb);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[e0[i]]++;
    int perm_ok = 1, ident = 1;
    for (int i = 0; i < 50; i++) { perm_ok &= seen[i] == 1; ident &= e0[i] == i; }
    CHECK(perm_ok, "an epoch is a permutation of the dataset");
    CHECK(!ident, "shuffled order differs from 0..n-1");
    CHECK(sdl_loader_epoch(l) == 1, "the loader moved to epoch 1 by itself, at %lld", (long long)sdl_loader_epoch(l));
    epoch_labels(l, e1, NULL);
    CHECK(memcmp(e0, e1, sizeof(int32_t) * 50) != 0, "epoch 1 differs from epoch 0");
    sdl_loader_set_epoch(l, 0);
    epoch_labels(l, e0b, NULL);
    CHECK(memcmp(e0, e0b, sizeof(int32_t) * 50) == 0, "set_epoch(0) repeats epoch 0");
    /* a mid-epoch set_epoch restarts the epoch */
    sdl_tensor *x, *y;
    sdl_loader_set_epoch(l, 1);
    CHECK(sdl_loader_next(l, &x, &y) && sdl_i32(y)[0] == e1[0], "first batch of epoch 1");
    sdl_loader_set_epoch(l, 1);
    epoch_labels(l, e0b, NULL);
    CHECK(memcmp(e1, e0b, sizeof(int32_t) * 50) == 0, "set_epoch mid-epoch restarts it");
    sdl_loader_free(l);
    /* another seed, another order; no shuffle: 0..n-1 */
    desc.seed = 8;
    l = sdl_loader_new(&desc);
    epoch_labels(l, e0b, NULL);
    CHECK(memcmp(e0, e0b, sizeof(int32_t) * 50) != 0, "seed 8 differs from seed 7");
    sdl_loader_free(l);
    desc.shuffle = false;
    l = sdl_loader_new(&desc);
    epoch_labels(l, e0b, NULL);
    ident = 1;
    for (int i = 0; i < 50; i++) ident &= e0b[i] == i;
    CHECK(ident, "without shuffle the order is 0..n-1");
    sdl_loader_free(l);
    free_data(&d);
}

/* every batch (x bytes and y) is the same with and without the prefetch thread, for any
   queue depth and with a consumer that sometimes waits */
static void test_prefetch_same_sequence(void) {
    sdl_dataset d = make_data(37, 3, 5, 4);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 5; desc.shuffle = true; desc.seed = 3; desc.pad_crop = 2; desc.hflip = true;
    for (int c = 0; c < 3; c++) { desc.mean[c] = 0.1f * (float)c; desc.std[c] = 0.5f + 0.1f * (float)c; }
    int depths[4] = {-1, 1, 2, 5};
    float *ref = NULL;
    int64_t total = 3 * 37 * 60;
    for (int di = 0; di < 4; di++) {
        desc.prefetch = depths[di];
        sdl_loader *l = sdl_loader_new(&desc);
        float *got = (float *)calloc((size_t)total + 64, sizeof(float));
        int64_t k = 0;
        for (int e = 0; e < 3; e++) {
            sdl_loader_set_epoch(l, e);
            sdl_tensor *x, *y;
            int b = 0;
            while (sdl_loader_next(l, &x, &y)) {
                CHECK(x->shape[0] == y->shape[0] && x->numel == x->shape[0] * 60, "batch shapes agree");
                memcpy(got + k, x->data, sizeof(float) * (size_t)x->numel);
                k += x->numel;
                if ((b++ + di) % 3 == 0) { volatile double s = 0; for (int i = 0; i < 20000; i++) s += i; }
            }
        }
        CHECK(k == total, "prefetch %d: %lld floats over 3 epochs, want %lld", depths[di], (long long)k, (long long)total);
        if (!ref) ref = got;
        else { CHECK(memcmp(ref, got, sizeof(float) * (size_t)total) == 0, "prefetch %d gives the same batches as none", depths[di]); free(got); }
        sdl_loader_free(l);
    }
    free(ref);
    free_data(&d);
}

/* the loader copies the dataset's descriptor: a descriptor that is gone after sdl_loader_new
   (one on main's stack after main returned, while the prefetch thread still fills a batch:
   16_grad_accum crashed so at exit, now and then) changes nothing */
static sdl_tensor *first_batch(sdl_loader *l) {
    sdl_tensor *x, *y;
    return sdl_loader_next(l, &x, &y) ? x : NULL;
}
static void test_descriptor_copied(void) {
    sdl_dataset d = make_data(23, 1, 2, 2);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 4; desc.shuffle = true; desc.seed = 9; desc.prefetch = -1;
    sdl_loader *ref = sdl_loader_new(&desc);
    sdl_dataset *gone = (sdl_dataset *)malloc(sizeof *gone);
    *gone = d;
    desc.data = gone; desc.prefetch = 2;
    sdl_loader *l = sdl_loader_new(&desc);
    memset(gone, 0xFF, sizeof *gone); /* what a dead stack frame may hold */
    free(gone);
    sdl_tensor *a = first_batch(ref), *b = first_batch(l);
    CHECK(a && b && a->numel == b->numel && !memcmp(a->data, b->data, sizeof(float) * (size_t)a->numel),
          "the batches do not depend on the caller's descriptor after sdl_loader_new");
    sdl_loader_free(l);
    sdl_loader_free(ref);
    free_data(&d);
}

/* torch DistributedSampler: pad to a multiple of world by repeating from the start; rank r
   takes positions r, r + world, ... */
static void test_ranks_cover(void) {
    sdl_dataset d = make_data(10, 1, 1, 1);
    for (int world = 1; world <= 4; world++) {
        int64_t T = (10 + world - 1) / world * world;
        int32_t pos[16];
        for (int r = 0; r < world; r++) {
            sdl_loader_desc desc;
            memset(&desc, 0, sizeof desc);
            desc.data = &d; desc.batch_size = 3; desc.shuffle = true; desc.seed = 11; desc.rank = r; desc.world_size = world;
            sdl_loader *l = sdl_loader_new(&desc);
            sdl_loader_set_epoch(l, 2);
            int32_t got[16];
            int64_t k = epoch_labels(l, got, NULL);
            CHECK(k == T / world && sdl_loader_num_samples(l) == T / world, "world %d rank %d: %lld samples", world, r, (long long)k);
            for (int64_t i = 0; i < k; i++) pos[r + i * world] = got[i];
            sdl_loader_free(l);
        }
        int seen[10] = {0}, ok = 1;
        for (int i = 0; i < 10; i++) seen[pos[i]]++;
        for (int i = 0; i < 10; i++) ok &= seen[i] == 1;
        CHECK(ok, "world %d: the first n positions over all ranks are a permutation", world);
        for (int64_t p = 10; p < T; p++) CHECK(pos[p] == pos[p - 10], "world %d: padding position %lld repeats the start", world, (long long)p);
    }
    /* more ranks than samples: the list repeats */
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    sdl_dataset d3 = make_data(3, 1, 1, 1);
    desc.data = &d3; desc.batch_size = 1; desc.rank = 6; desc.world_size = 7;
    sdl_loader *l = sdl_loader_new(&desc);
    int32_t got[4];
    CHECK(epoch_labels(l, got, NULL) == 1 && got[0] == 0, "rank 6 of 7 over 3 samples gets position 6 = sample 0");
    sdl_loader_free(l);
    desc.rank = 7;
    CHECK(sdl_loader_new(&desc) == NULL && sdl_last_result() == SDL_ERR_ARG, "rank 7 of 7 is an error");
    free_data(&d3);
    free_data(&d);
}

static void test_drop_last(void) {
    sdl_dataset d = make_data(10, 1, 1, 1);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 3;
    int32_t got[16];
    int64_t nb;
    for (int drop = 0; drop < 2; drop++) {
        desc.drop_last = drop != 0;
        desc.world_size = 1;
        sdl_loader *l = sdl_loader_new(&desc);
        int64_t k = epoch_labels(l, got, &nb);
        CHECK(nb == (drop ? 3 : 4) && sdl_loader_num_batches(l) == nb, "drop_last %d: %lld batches", drop, (long long)nb);
        CHECK(k == (drop ? 9 : 10), "drop_last %d: %lld samples", drop, (long long)k);
        sdl_loader_free(l);
        desc.world_size = 3; desc.rank = 1; /* 4 per rank */
        l = sdl_loader_new(&desc);
        k = epoch_labels(l, got, &nb);
        CHECK(nb == (drop ? 1 : 2) && k == (drop ? 3 : 4), "drop_last %d, 3 ranks: %lld batches %lld samples", drop, (long long)nb, (long long)k);
        sdl_loader_free(l);
        desc.rank = 0;
    }
    /* last partial batch has the right shape */
    desc.drop_last = false; desc.world_size = 1;
    sdl_loader *l = sdl_loader_new(&desc);
    sdl_tensor *x, *y;
    int64_t last_n = -1, last_numel = -1;
    int last_ndim = -1;
    while (sdl_loader_next(l, &x, &y)) { /* x is valid only until the next call: copy its shape */
        last_n = x->shape[0];
        last_numel = x->numel;
        last_ndim = x->ndim;
    }
    CHECK(last_n == 1 && last_numel == 1 && last_ndim == 4, "the last batch is (1, 1, 1, 1)");
    sdl_loader_free(l);
    free_data(&d);
}

/* the reference transform, written the plain way: pad the bytes into a bigger image, crop
   at (top, left), flip, then scale and normalise */
static void ref_transform(const uint8_t *img, int C, int H, int W, int p, int top, int left, int flip,
                          const float *mean, const float *sd, float *out) {
    int PH = H + 2 * p, PW = W + 2 * p;
    uint8_t *padded = (uint8_t *)calloc((size_t)(C * PH * PW), 1);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) padded[(c * PH + i + p) * PW + j + p] = img[(c * H + i) * W + j];
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int jj = flip ? W - 1 - j : j;
                float v = (float)padded[(c * PH + top + i) * PW + left + jj] / 255.0f;
                out[(c * H + i) * W + j] = sd[c] != 0.0f ? (v - mean[c]) / sd[c] : v;
            }
    free(padded);
}

static void test_transforms(void) {
    /* one 2-channel 3x4 image with distinct bytes */
    sdl_dataset d = make_data(1, 2, 3, 4);
    for (int k = 0; k < 24; k++) d.images[k] = (uint8_t)(10 * k + 5);
    float mean[2] = {0.25f, 0.5f}, sd[2] = {0.5f, 2.0f}, none[2] = {0, 0}, out[24];
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 1; desc.prefetch = -1;
    sdl_tensor *x, *y;
    /* plain: bytes / 255 */
    sdl_loader *l = sdl_loader_new(&desc);
    CHECK(sdl_loader_next(l, &x, &y), "one batch");
    CHECK(x->ndim == 4 && x->shape[0] == 1 && x->shape[1] == 2 && x->shape[2] == 3 && x->shape[3] == 4, "x is (1, 2, 3, 4)");
    CHECK(sdl_f32(x)[0] == 5.0f / 255.0f && sdl_f32(x)[23] == 235.0f / 255.0f, "x = byte / 255: %g %g", sdl_f32(x)[0], sdl_f32(x)[23]);
    sdl_loader_free(l);
    /* normalised per channel */
    memcpy(desc.mean, mean, sizeof mean);
    memcpy(desc.std, sd, sizeof sd);
    l = sdl_loader_new(&desc);
    sdl_loader_next(l, &x, &y);
    ref_transform(d.images, 2, 3, 4, 0, 0, 0, 0, mean, sd, out);
    CHECK(memcmp(out, x->data, sizeof out) == 0, "per-channel normalisation");
    CHECK(fabsf(sdl_f32(x)[12] - ((125.0f / 255.0f) - 0.5f) / 2.0f) < 1e-7f, "channel 1 uses mean 0.5 std 2");
    sdl_loader_free(l);
    /* pad-crop 1 and flip: each epoch's output is one of the 3 x 3 x 2 candidates, and over
       many epochs several distinct ones occur, flipped and not */
    desc.pad_crop = 1; desc.hflip = true;
    memcpy(desc.std, none, sizeof none);
    l = sdl_loader_new(&desc);
    int hits[18] = {0};
    for (int e = 0; e < 60; e++) {
        sdl_loader_set_epoch(l, e);
        sdl_loader_next(l, &x, &y);
        int found = -1;
        for (int cand = 0; cand < 18 && found < 0; cand++) {
            ref_transform(d.images, 2, 3, 4, 1, cand / 6, (cand / 2) % 3, cand % 2, mean, none, out);
            if (memcmp(out, x->data, sizeof out) == 0) found = cand;
        }
        CHECK(found >= 0, "epoch %d: output is a padded crop, maybe flipped", e);
        if (found >= 0) hits[found]++;
    }
    int distinct = 0, flipped = 0;
    for (int c = 0; c < 18; c++) { distinct += hits[c] > 0; flipped += c % 2 ? hits[c] : 0; }
    CHECK(distinct >= 10, "60 epochs show %d of 18 crops", distinct);
    CHECK(flipped > 10 && flipped < 50, "about half flipped: %d of 60", flipped);
    sdl_loader_free(l);
    /* zero padding normalises to -mean/std: crop shifted down by one shows it in row 0 */
    memcpy(desc.std, sd, sizeof sd);
    l = sdl_loader_new(&desc);
    int shown = 0;
    for (int e = 0; e < 60 && !shown; e++) {
        sdl_loader_set_epoch(l, e);
        sdl_loader_next(l, &x, &y);
        ref_transform(d.images, 2, 3, 4, 1, 0, 1, 0, mean, sd, out); /* top 0: row 0 is padding */
        if (memcmp(out, x->data, sizeof out) == 0) {
            shown = 1;
            CHECK(sdl_f32(x)[0] == (0.0f - 0.25f) / 0.5f && sdl_f32(x)[12] == (0.0f - 0.5f) / 2.0f, "padding is byte 0, normalised");
        }
    }
    CHECK(shown, "some epoch crops from the top padding row");
    sdl_loader_free(l);
    free_data(&d);
}

/* steady state: an epoch allocates nothing (batches live in preallocated slots) */
static void test_no_alloc(void) {
    sdl_dataset d = make_data(100, 1, 4, 4);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = &d; desc.batch_size = 7; desc.shuffle = true; desc.pad_crop = 1; desc.hflip = true;
    for (int pf = -1; pf <= 2; pf += 3) {
        desc.prefetch = pf;
        sdl_loader *l = sdl_loader_new(&desc);
        int32_t got[128];
        epoch_labels(l, got, NULL);
        long before = sdl_test_allocs;
        for (int e = 0; e < 3; e++) epoch_labels(l, got, NULL);
        CHECK(sdl_test_allocs == before, "prefetch %d: %ld allocations in 3 epochs", pf, sdl_test_allocs - before);
        sdl_loader_free(l);
    }
    free_data(&d);
}

static void test_errors(void) {
    sdl_dataset empty;
    memset(&empty, 0, sizeof empty);
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    CHECK(sdl_loader_new(&desc) == NULL && sdl_last_result() == SDL_ERR_ARG, "no dataset");
    desc.data = &empty;
    CHECK(sdl_loader_new(&desc) == NULL && strstr(sdl_last_error(), "empty"), "empty dataset: %s", sdl_last_error());
    sdl_loader_free(NULL);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    RUN(test_order_and_epochs);
    RUN(test_prefetch_same_sequence);
    RUN(test_descriptor_copied);
    RUN(test_ranks_cover);
    RUN(test_drop_last);
    RUN(test_transforms);
    RUN(test_no_alloc);
    RUN(test_errors);
    return sdl_test_finish();
}
