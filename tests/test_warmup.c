/* test_warmup.c - no second warm-up step: everything a training step needs (the step arena,
   the GEMM packing buffers, the tape, the optimizer state, the pool's threads) reaches its
   steady size in step 1, so step 2 and later allocate nothing, the arena's capacity after
   step 1 is its steady one, and the reset after step 1 allocates nothing either (a reset that
   moved the arena to a new block made step 2 touch every page of it again: the slow second
   step). An MLP, a CNN and a small GPT-2 (examples/gpt2.c), 1 and 2 threads. Counts, not
   timings; the page faults of each step are printed, not checked (the C library's heap
   may give pages back). Start-up: the weight draws, split over threads, give the bits of
   the plain one-element-at-a-time loop on any thread count. sdl_parallel_for_work splits by
   estimated work: one part below 2 SDL_PART_NS, as many as threads above. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include <sys/resource.h>
#include <pthread.h>

#define main gpt2_main
#include "../examples/gpt2.c"
#undef main

#define WARMUP_STEPS 5

typedef struct warmup_run {
    long allocs[WARMUP_STEPS];       /* heap allocations in step s */
    long reset_allocs[WARMUP_STEPS]; /* ... in the arena reset after it */
    long faults[WARMUP_STEPS];       /* minor page faults in step s */
    size_t cap[WARMUP_STEPS];        /* arena capacity after step s's reset */
} warmup_run;

static long warmup_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

typedef float (*warmup_step_fn)(void *ctx);

static void warmup_measure(warmup_step_fn step, void *ctx, warmup_run *r) {
    for (int s = 0; s < WARMUP_STEPS; s++) {
        long before = sdl_test_allocs, faults = warmup_faults();
        float loss = step(ctx);
        r->faults[s] = warmup_faults() - faults;
        r->allocs[s] = sdl_test_allocs - before;
        before = sdl_test_allocs;
        sdl_arena_reset();
        r->reset_allocs[s] = sdl_test_allocs - before;
        r->cap[s] = sdl_arena_capacity();
        CHECK(isfinite(loss), "step %d: loss %g: %s", s + 1, (double)loss, sdl_last_error());
    }
}

static void warmup_check(const char *what, int threads, const warmup_run *r) {
    printf("  %s, %d threads: arena %zu bytes; allocations (page faults) per step:", what, threads, r->cap[0]);
    for (int s = 0; s < WARMUP_STEPS; s++) printf(" %ld (%ld)", r->allocs[s] + r->reset_allocs[s], r->faults[s]);
    printf("\n");
    for (int s = 0; s < WARMUP_STEPS; s++)
        CHECK(r->reset_allocs[s] == 0, "%s, %d threads: the reset after step %d allocates %ld blocks", what, threads, s + 1, r->reset_allocs[s]);
    for (int s = 1; s < WARMUP_STEPS; s++) {
        CHECK(r->allocs[s] == 0, "%s, %d threads: step %d allocates %ld blocks", what, threads, s + 1, r->allocs[s]);
        CHECK(r->cap[s] == r->cap[0], "%s, %d threads: arena %zu bytes after step %d, %zu after step 1", what, threads,
              r->cap[s], s + 1, r->cap[0]);
    }
}

/* a module network trained with SGD on a fixed batch */
typedef struct warmup_net {
    sdl_module *net;
    sdl_optim *opt;
    sdl_tensor *x, *y;
} warmup_net;

static float warmup_net_step(void *ctx) {
    warmup_net *w = (warmup_net *)ctx;
    sdl_model_zero_grad(w->opt->model);
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(w->net, w->x), w->y, 0.0f);
    if (!loss || sdl_backward(loss) != SDL_OK || sdl_optim_step(w->opt) != SDL_OK) return NAN;
    return sdl_item(loss);
}

static void warmup_net_run(const char *what, sdl_module *net, sdl_model *m, sdl_shape xs, int classes) {
    for (int threads = 1; threads <= 2; threads++) {
        sdl_set_num_threads(threads);
        warmup_net w = {net, sdl_sgd(m, 0.01f, 0.9f, 1e-4f, false), sdl_tensor_new(xs, SDL_F32), sdl_tensor_new(sdl_shape1(xs.d[0]), SDL_I32)};
        CHECK(w.opt && w.x && w.y, "%s: %s", what, sdl_last_error());
        if (w.opt && w.x && w.y) {
            sdl_tensor_randn(w.x, 0.0f, 1.0f);
            for (int64_t i = 0; i < w.y->numel; i++) sdl_i32(w.y)[i] = (int32_t)(i % classes);
            sdl_arena_release(); /* every run starts from an empty arena */
            warmup_run r;
            warmup_measure(warmup_net_step, &w, &r);
            warmup_check(what, threads, &r);
        }
        sdl_optim_free(w.opt);
        sdl_tensor_free(w.x);
        sdl_tensor_free(w.y);
    }
    sdl_set_num_threads(0);
}

/* MLP 784-256-256-10, batch 64 */
static void test_mlp_no_second_warmup(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = sdl_sequential(m, "mlp");
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 256, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 256, 256, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc3", 256, 10, true));
    warmup_net_run("MLP", net, m, sdl_shape2(64, 784), 10);
    sdl_model_free(m);
}

/* CNN conv32-bn-relu-conv32-relu-pool-fc128-fc10 on 3 x 32 x 32, batch 16 */
static void test_cnn_no_second_warmup(void) {
    sdl_model *m = sdl_model_new(2);
    sdl_module *net = sdl_sequential(m, "cnn");
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 3, 32, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn1", 32));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv2", 32, 32, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 32 * 16 * 16, 128, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
    warmup_net_run("CNN", net, m, sdl_shape4(16, 3, 32, 32), 10);
    sdl_model_free(m);
}

/* examples/gpt2.c with V 512, T 64, L 2, NH 4, C 128, AdamW, B 4 (an arena of several chunks) */
typedef struct warmup_gpt {
    gpt2 *g;
    sdl_optim *opt;
    sdl_tensor *ids, *targets;
} warmup_gpt;

static float warmup_gpt_step(void *ctx) {
    warmup_gpt *w = (warmup_gpt *)ctx;
    sdl_model_zero_grad(w->opt->model);
    return gpt2_train_step(w->g, w->opt, w->ids, w->targets);
}

static void test_gpt2_no_second_warmup(void) {
    static gpt2 g;
    gpt2_config cfg = {512, 64, 2, 4, 128};
    for (int threads = 1; threads <= 2; threads++) {
        sdl_set_num_threads(threads);
        CHECK(gpt2_build(&g, cfg, 3), "gpt2_build: %s", sdl_last_error());
        gpt2_init(&g);
        warmup_gpt w = {&g, sdl_adamw(g.model, 1e-3f, 0.9f, 0.95f, 0.1f), sdl_tensor_new(sdl_shape2(4, 64), SDL_I32),
                        sdl_tensor_new(sdl_shape2(4, 64), SDL_I32)};
        CHECK(w.opt && w.ids && w.targets, "gpt2: %s", sdl_last_error());
        if (w.opt && w.ids && w.targets) {
            gpt2_random_batch(w.ids, w.targets, cfg.vocab, 4);
            sdl_arena_release();
            warmup_run r;
            warmup_measure(warmup_gpt_step, &w, &r);
            warmup_check("GPT-2", threads, &r);
        }
        sdl_optim_free(w.opt);
        sdl_tensor_free(w.ids);
        sdl_tensor_free(w.targets);
        sdl_model_free(g.model);
    }
    sdl_set_num_threads(0);
}

/* the draws as one loop, through the public per-element hash (what they were before threads) */
static void plain_uniform(float *x, int64_t n, uint64_t seed, uint64_t base, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * sdl_hash_uniform(seed, 0, base + (uint64_t)i);
}
static void plain_randn(float *x, int64_t n, uint64_t seed, uint64_t base, float mean, float std) {
    for (int64_t i = 0; i < n; i++) {
        float u1 = sdl__u24(sdl__hash3(seed, 1, base + (uint64_t)i)) + 0.5f / 16777216.0f, u2 = sdl__u24(sdl__hash3(seed, 2, base + (uint64_t)i));
        x[i] = mean + std * (sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2));
    }
}

static void test_draws_same_bits_on_threads(void) {
    int64_t n = 300001; /* several parts on 2 and 3 threads, and a ragged end */
    sdl_tensor *t = sdl_tensor_new(sdl_shape1(n), SDL_F32);
    float *ref = (float *)malloc((size_t)n * sizeof(float));
    for (int threads = 1; threads <= 3; threads++) {
        sdl_set_num_threads(threads);
        sdl_manual_seed(11);
        sdl_tensor_uniform(t, 0.0f, 1.0f); /* moves the counter: the randn below starts at n */
        sdl_tensor_uniform(t, -0.3f, 0.7f);
        plain_uniform(ref, n, 11, (uint64_t)n, -0.3f, 0.7f);
        CHECK(memcmp(ref, sdl_f32(t), (size_t)n * sizeof(float)) == 0, "%d threads: uniform differs from the plain loop", threads);
        sdl_tensor_randn(t, 0.5f, 0.02f);
        plain_randn(ref, n, 11, 2 * (uint64_t)n, 0.5f, 0.02f);
        CHECK(memcmp(ref, sdl_f32(t), (size_t)n * sizeof(float)) == 0, "%d threads: randn differs from the plain loop", threads);
        CHECK(sdl_rng_state() == 3 * (uint64_t)n, "%d threads: counter %llu after 3 draws of %lld", threads,
              (unsigned long long)sdl_rng_state(), (long long)n);
    }
    sdl_set_num_threads(0);
    free(ref);
    sdl_tensor_free(t);
}

/* sdl_parallel_for_work: a job below 2 SDL_PART_NS runs on the caller as one range; a big
   one is split in as many parts as threads, covering [0, n) once */
typedef struct work_calls {
    int calls;
    int64_t covered;
    pthread_mutex_t mu;
} work_calls;
static void work_count(void *ctx, int64_t i0, int64_t i1) {
    work_calls *w = (work_calls *)ctx;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->covered += i1 - i0;
    pthread_mutex_unlock(&w->mu);
}
static void test_parallel_for_work_splits_by_work(void) {
    sdl_set_num_threads(2);
    work_calls w = {0, 0, PTHREAD_MUTEX_INITIALIZER};
    sdl_parallel_for_work(1000, 1.0, work_count, &w); /* 1 us of work */
    CHECK(w.calls == 1 && w.covered == 1000, "1 us: %d calls covering %lld, want 1 and 1000", w.calls, (long long)w.covered);
    w.calls = 0;
    w.covered = 0;
    sdl_parallel_for_work(1000, 2.0 * sdl_test_part_ns(), work_count, &w); /* 2000 parts' worth on 2 threads */
    CHECK(w.calls == 2 && w.covered == 1000, "big: %d calls covering %lld, want 2 and 1000", w.calls, (long long)w.covered);
    w.calls = 0;
    w.covered = 0;
    sdl_parallel_for_work(3, 0.9 * sdl_test_part_ns(), work_count, &w); /* 2.7 parts' worth: 2 parts */
    CHECK(w.calls == 2 && w.covered == 3, "2.7 parts: %d calls covering %lld, want 2 and 3", w.calls, (long long)w.covered);
    sdl_set_num_threads(0);
}

int main(void) {
    RUN(test_mlp_no_second_warmup);
    RUN(test_cnn_no_second_warmup);
    RUN(test_gpt2_no_second_warmup);
    RUN(test_draws_same_bits_on_threads);
    RUN(test_parallel_for_work_splits_by_work);
    return sdl_test_finish();
}
