/* cuda_test_graph.cu - CUDA graphs (sdl_cuda.h's >>cuda-graph): a training step captured
   once and replayed gives the same bits as the same steps run eagerly (Adam, whose bias
   corrections change every step, with dropout, whose masks change every step; SGD with an
   lr schedule, captured before its first step; a CNN with AdamW; LAMB), a replay allocates
   nothing, and every misuse is an error with a message, not a crash or a wrong graph.
   Without a GPU it prints a skip line and "0 passed, 0 failed" and exits 0.

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_graph.cu -o cuda_test_graph -lcublas

   The arena starts at 1 MiB here (SDL_CUDA_ARENA_MIN), so the arena-growth error is cheap. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_ARENA_MIN ((size_t)1 << 20)
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"

#define STEPS 4

enum { OPT_ADAM, OPT_SGD_SCHED, OPT_ADAMW, OPT_LAMB };

typedef struct rig {
    sdl_model *m;
    sdl_module *net;
    sdl_optim *o;
    sdl_tensor *x, *y; /* static inputs on the device */
    int batch, cnn;
} rig;

static sdl_module *make_net(sdl_model *m, int cnn, float drop) {
    sdl_module *net = sdl_sequential(m, "");
    if (cnn) {
        sdl_seq_add(net, sdl_conv2d_layer(m, "c1", 1, 4, 3, 1, 1, true));
        sdl_seq_add(net, sdl_batch_norm_layer(m, "bn", 4));
        sdl_seq_add(net, sdl_relu_layer(m));
        sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
        sdl_seq_add(net, sdl_flatten_layer(m));
        if (drop > 0.0f) sdl_seq_add(net, sdl_dropout_layer(m, drop));
        sdl_seq_add(net, sdl_linear_layer(m, "fc", 4 * 3 * 3, 5, true));
    } else {
        sdl_seq_add(net, sdl_linear_layer(m, "fc1", 12, 16, true));
        sdl_seq_add(net, sdl_relu_layer(m));
        if (drop > 0.0f) sdl_seq_add(net, sdl_dropout_layer(m, drop));
        sdl_seq_add(net, sdl_linear_layer(m, "fc2", 16, 5, true));
    }
    return net;
}

static void rig_make(rig *r, int cnn, int opt, float drop) {
    memset(r, 0, sizeof *r);
    r->cnn = cnn;
    r->batch = 6;
    r->m = sdl_model_new(11);
    r->net = make_net(r->m, cnn, drop);
    sdl_cuda_model_to_device(r->m);
    r->o = opt == OPT_ADAM ? sdl_adam(r->m, 0.01f, 0.9f, 0.999f, 0.01f)
         : opt == OPT_SGD_SCHED ? sdl_sgd(r->m, 0.1f, 0.9f, 1e-3f, true)
         : opt == OPT_ADAMW ? sdl_adamw(r->m, 0.01f, 0.9f, 0.99f, 0.1f)
                            : sdl_lamb(r->m, 0.01f, 0.9f, 0.999f, 0.01f);
    r->x = sdl_cuda_tensor_new(cnn ? sdl_shape4(r->batch, 1, 6, 6) : sdl_shape2(r->batch, 12), SDL_F32);
    r->y = sdl_cuda_tensor_new(sdl_shape1(r->batch), SDL_I32);
}

static void rig_free(rig *r) {
    sdl_cuda_tensor_free(r->x);
    sdl_cuda_tensor_free(r->y);
    sdl_optim_free(r->o);
    sdl_model_free(r->m);
}

/* a new random batch (from the global RNG, as a loader's augmentation would) into the
   static inputs */
static void rig_batch(rig *r) {
    sdl_tensor *hx = sdl_tensor_new(sdl_tensor_shape(r->x), SDL_F32), *hy = test_ids(r->batch, 5);
    sdl_tensor_uniform(hx, -1.0f, 1.0f);
    CHECK(sdl_cuda_copy(r->x, hx) == SDL_OK && sdl_cuda_copy(r->y, hy) == SDL_OK, "%s", sdl_last_error());
    sdl_tensor_free(hx);
    sdl_tensor_free(hy);
}

/* the step that is captured: forward, backward, update; returns the loss */
static sdl_tensor *rig_step(void *ctx) {
    rig *r = (rig *)ctx;
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(r->net, r->x), r->y, 0.0f);
    if (sdl_backward(loss) != SDL_OK || sdl_optim_step(r->o) != SDL_OK) return NULL;
    return loss;
}

static float *dev_copy(const float *d, int64_t n) {
    float *h = (float *)calloc((size_t)n + 1, sizeof(float));
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
    CHECK(cudaMemcpy(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy");
    return h;
}

typedef struct trace {
    float loss[STEPS];
    float *params; /* STEPS x param_floats */
    float *buffers;
    int64_t np, nb, opt_step;
    uint64_t rng;
} trace;

/* STEPS steps with a new batch each. graph: step 0 runs eagerly (or, warm_only, a forward
   and backward without the update), the rest replay a graph captured after it. */
static void run(trace *t, int cnn, int opt, float drop, bool graph, bool warm_only) {
    sdl_manual_seed(5);
    rig r;
    rig_make(&r, cnn, opt, drop);
    sdl_sched_desc sched;
    memset(&sched, 0, sizeof sched);
    sched.kind = SDL_SCHED_COSINE;
    sched.base_lr = 0.1f;
    sched.total = STEPS;
    sched.warmup = 1;
    sched.warmup_start_factor = 0.3f;
    t->np = r.m->param_floats;
    t->nb = r.m->buffer_floats;
    t->params = (float *)calloc((size_t)(STEPS * t->np), sizeof(float));
    sdl_cuda_graph *g = NULL;
    if (graph && warm_only) { /* the arena's warm-up, no update: the graph then holds step 0 */
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(r.net, r.x), r.y, 0.0f);
        CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
        sdl_model_zero_grad(r.m);
        sdl_arena_reset();
    }
    for (int k = 0; k < STEPS; k++) {
        if (opt == OPT_SGD_SCHED) sdl_optim_set_lr(r.o, sdl_sched_lr(&sched, k));
        rig_batch(&r);
        if (!graph || (k == 0 && !warm_only)) {
            sdl_tensor *loss = rig_step(&r);
            CHECK(loss != NULL, "%s", sdl_last_error());
            t->loss[k] = loss ? sdl_item(loss) : NAN;
        } else {
            if (!g) {
                g = sdl_cuda_graph_capture(rig_step, &r);
                CHECK(g != NULL && sdl_cuda_graph_output(g) != NULL, "capture: %s", sdl_last_error());
                if (!g) break;
                sdl_arena_reset();
            }
            CHECK(sdl_cuda_graph_replay(g) == SDL_OK, "replay %d: %s", k, sdl_last_error());
            t->loss[k] = sdl_item(sdl_cuda_graph_output(g));
        }
        sdl_arena_reset();
        float *p = dev_copy(r.m->param_data, t->np);
        memcpy(t->params + k * t->np, p, (size_t)t->np * sizeof(float));
        free(p);
    }
    t->opt_step = r.o->step;
    t->rng = sdl_rng_state();
    t->buffers = t->nb ? dev_copy(r.m->buffer_data, t->nb) : NULL;
    if (g) { /* steady state: a replay allocates nothing, on the device or the host */
        long host0 = sdl_test_allocs;
        size_t cap0 = sdl_cuda_arena_capacity();
        for (int i = 0; i < 2; i++) {
            CHECK(sdl_cuda_graph_replay(g) == SDL_OK, "%s", sdl_last_error());
            sdl_arena_reset();
        }
        CHECK(sdl_test_allocs == host0, "%ld host allocations in 2 replays", sdl_test_allocs - host0);
        CHECK(sdl_cuda_arena_capacity() == cap0, "the arena grew in a replay");
    }
    sdl_cuda_graph_free(g);
    rig_free(&r);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "%s", sdl_last_error());
}

/* eager and graph runs agree bit for bit, step for step */
static void check_same(int cnn, int opt, float drop, bool warm_only, const char *what) {
    trace a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    run(&a, cnn, opt, drop, false, false);
    run(&b, cnn, opt, drop, true, warm_only);
    for (int k = 0; k < STEPS; k++) {
        CHECK(memcmp(&a.loss[k], &b.loss[k], sizeof(float)) == 0 && a.loss[k] == a.loss[k], "%s: step %d loss eager %.9g graph %.9g", what, k,
              a.loss[k], b.loss[k]);
        int64_t bad = -1;
        for (int64_t i = 0; i < a.np && bad < 0; i++)
            if (memcmp(&a.params[k * a.np + i], &b.params[k * a.np + i], sizeof(float)) != 0) bad = i;
        CHECK(bad < 0, "%s: step %d parameter %lld eager %.9g graph %.9g", what, k, (long long)bad, bad < 0 ? 0.0 : a.params[k * a.np + bad],
              bad < 0 ? 0.0 : b.params[k * a.np + bad]);
    }
    CHECK(a.nb == b.nb && (a.nb == 0 || memcmp(a.buffers, b.buffers, (size_t)a.nb * sizeof(float)) == 0), "%s: buffers (running stats) differ", what);
    CHECK(a.opt_step == STEPS && b.opt_step == STEPS, "%s: optimizer steps eager %lld graph %lld", what, (long long)a.opt_step, (long long)b.opt_step);
    if (drop > 0.0f) CHECK(a.rng == b.rng, "%s: RNG counter eager %llu graph %llu", what, (unsigned long long)a.rng, (unsigned long long)b.rng);
    if (a.np > 0) CHECK(memcmp(a.params, a.params + a.np, (size_t)a.np * sizeof(float)) != 0, "%s: the parameters did not change", what);
    free(a.params);
    free(b.params);
    free(a.buffers);
    free(b.buffers);
}

static void test_adam_dropout(void) { check_same(0, OPT_ADAM, 0.25f, false, "mlp, dropout, adam"); }
static void test_sgd_schedule(void) { check_same(0, OPT_SGD_SCHED, 0.0f, true, "mlp, sgd nesterov, cosine lr, captured at step 0"); }
static void test_cnn_adamw(void) { check_same(1, OPT_ADAMW, 0.2f, false, "cnn, batch norm, dropout, adamw"); }
static void test_lamb(void) { check_same(0, OPT_LAMB, 0.0f, false, "mlp, lamb"); }

/* the things a captured step cannot do: each gives an error and no graph */
static void test_errors(void) {
    rig r;
    sdl_manual_seed(3);
    rig_make(&r, 0, OPT_ADAM, 0.0f);
    rig_batch(&r);
    CHECK(rig_step(&r) != NULL, "%s", sdl_last_error());
    sdl_arena_reset();
    int64_t step0 = r.o->step;
    uint64_t rng0 = sdl_rng_state();

    /* a host read inside the step */
    CHECK(sdl_cuda_graph_begin() == SDL_OK, "%s", sdl_last_error());
    sdl_tensor *loss = rig_step(&r);
    float v = sdl_item(loss);
    CHECK(v != v, "sdl_item during a capture gives NaN, not %g", v);
    CHECK(sdl_cuda_graph_end() == NULL && strstr(sdl_last_error(), "device-to-host"), "end after sdl_item: %s", sdl_last_error());
    CHECK(r.o->step == step0 && sdl_rng_state() == rng0, "a failed capture leaves the optimizer (%lld) and the RNG as they were",
          (long long)r.o->step);
    sdl_arena_reset();

    /* an upload inside the step */
    sdl_tensor *h = sdl_tensor_new(sdl_shape1(4), SDL_F32);
    CHECK(sdl_cuda_graph_begin() == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_cuda_to_device(h) == NULL, "sdl_cuda_to_device during a capture");
    CHECK(sdl_cuda_graph_end() == NULL && strstr(sdl_last_error(), "host-to-device"), "end after an upload: %s", sdl_last_error());
    sdl_arena_reset();

    /* the arena would have to grow */
    CHECK(sdl_cuda_graph_begin() == SDL_OK, "%s", sdl_last_error());
    size_t cap = sdl_cuda_arena_capacity();
    CHECK(sdl_arena_tensor_on(sdl_shape1((int64_t)(cap / 4 + 1)), SDL_F32, SDL_CUDA) == NULL, "an arena tensor bigger than the arena");
    CHECK(sdl_cuda_graph_end() == NULL && strstr(sdl_last_error(), "arena"), "end after arena growth: %s", sdl_last_error());
    CHECK(sdl_cuda_arena_capacity() == cap, "the arena did not grow during the capture");
    sdl_arena_reset();

    /* sdl_arena_reset inside the step */
    CHECK(sdl_cuda_graph_begin() == SDL_OK, "%s", sdl_last_error());
    sdl_arena_reset();
    CHECK(sdl_cuda_graph_end() == NULL && strstr(sdl_last_error(), "sdl_arena_reset"), "end after a reset: %s", sdl_last_error());
    sdl_arena_reset();

    /* begin twice, end without begin, begin with the arena in use, replay misuse */
    CHECK(sdl_cuda_graph_begin() == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_cuda_graph_begin() != SDL_OK && strstr(sdl_last_error(), "already"), "begin twice: %s", sdl_last_error());
    sdl_cuda_graph *g = sdl_cuda_graph_end();
    CHECK(g != NULL, "an empty capture: %s", sdl_last_error());
    CHECK(sdl_cuda_graph_replay(g) == SDL_OK, "an empty graph replays: %s", sdl_last_error());
    sdl_cuda_graph_free(g);
    CHECK(sdl_cuda_graph_end() == NULL && strstr(sdl_last_error(), "without begin"), "end without begin: %s", sdl_last_error());
    CHECK(sdl_cuda_to_device(h) != NULL, "%s", sdl_last_error());
    CHECK(sdl_cuda_graph_begin() != SDL_OK && strstr(sdl_last_error(), "sdl_arena_reset"), "begin with the arena in use: %s", sdl_last_error());
    sdl_arena_reset();
    g = sdl_cuda_graph_capture(rig_step, &r);
    CHECK(g != NULL, "%s", sdl_last_error());
    sdl_arena_reset();
    CHECK(sdl_cuda_graph_replay(NULL) != SDL_OK, "replay NULL");
    CHECK(sdl_cuda_to_device(h) != NULL, "%s", sdl_last_error());
    CHECK(sdl_cuda_graph_replay(g) != SDL_OK && strstr(sdl_last_error(), "sdl_arena_reset"), "replay with the arena in use: %s", sdl_last_error());
    sdl_arena_reset();
    /* an eager step that grows the arena moves it: the graph's addresses are stale */
    CHECK(sdl_arena_tensor_on(sdl_shape1((int64_t)(sdl_cuda_arena_capacity() / 4 + 1)), SDL_F32, SDL_CUDA) != NULL, "%s", sdl_last_error());
    sdl_arena_reset();
    CHECK(sdl_cuda_graph_replay(g) != SDL_OK && strstr(sdl_last_error(), "reallocated"), "replay after the arena moved: %s", sdl_last_error());
    sdl_cuda_graph_free(g);
    sdl_tensor_free(h);
    rig_free(&r);
    CHECK(sdl_cuda_synchronize() == SDL_OK, "no error is left over: %s", sdl_last_error());
}

/* the runtime itself: captured work does not run until the graph is launched, and calls a
   capture cannot hold are refused and invalidate it */
static void test_runtime(void) {
    cudaStream_t s = (cudaStream_t)sdl_cuda_stream();
    unsigned char *d = NULL, h[64];
    CHECK(cudaMalloc((void **)&d, 64) == cudaSuccess && cudaMemset(d, 0, 64) == cudaSuccess, "cudaMalloc");
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin");
    CHECK(cudaStreamIsCapturing(s, &st) == cudaSuccess && st == cudaStreamCaptureStatusActive, "capturing");
    CHECK(cudaMemsetAsync(d, 7, 64, s) == cudaSuccess, "memset recorded");
    CHECK(cudaStreamEndCapture(s, &graph) == cudaSuccess && graph, "end");
    CHECK(cudaMemcpy(h, d, 64, cudaMemcpyDeviceToHost) == cudaSuccess && h[0] == 0 && h[63] == 0, "captured memset ran early (%d)", h[0]);
    CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");
    CHECK(cudaGraphLaunch(exec, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess, "launch");
    CHECK(cudaMemcpy(h, d, 64, cudaMemcpyDeviceToHost) == cudaSuccess && h[0] == 7 && h[63] == 7, "the launch ran the memset (%d)", h[0]);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    void *p = NULL;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin");
    CHECK(cudaMalloc(&p, 256) == cudaErrorStreamCaptureUnsupported, "cudaMalloc during a capture is refused");
    graph = NULL;
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated && graph == NULL, "the capture is invalidated");
    (void)cudaGetLastError();
    CHECK(cudaStreamIsCapturing(s, &st) == cudaSuccess && st == cudaStreamCaptureStatusNone, "not capturing after the end");
    cudaFree(d);
}

int main(void) {
    (void)gradcheck;
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n", sdl_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_adam_dropout);
    RUN(test_sgd_schedule);
    RUN(test_cnn_adamw);
    RUN(test_lamb);
    RUN(test_errors);
    RUN(test_runtime);
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
