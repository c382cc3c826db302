/* test_autograd_semantics.c - backward passes that share a graph: the DCGAN step written
   as in PyTorch (D on detach(fake), then G through D(fake)), two losses over one subgraph
   (retain_graph), and the errors for a graph that an earlier backward used up. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

enum { B = 4, Z = 8, C = 3 };

/* G: z (B, Z) -> linear -> (B, C, 4, 4) view -> relu -> conv_transpose 4x4 s2 p1 -> (B, 1, 8, 8) -> tanh */
typedef struct gen { sdl_model *m; sdl_tensor *w1, *b1, *w2, *b2; } gen;
/* D: x (B, 1, 8, 8) -> conv 4x4 s2 p1 -> (B, C, 4, 4) -> leaky relu -> flatten view -> linear -> (B, 1) */
typedef struct disc { sdl_model *m; sdl_tensor *w1, *b1, *w2, *b2; } disc;

static gen gen_new(uint64_t seed) {
    gen g;
    g.m = sdl_model_new(seed);
    g.w1 = sdl_model_param(g.m, "fc.weight", sdl_shape2(C * 16, Z), true);
    g.b1 = sdl_model_param(g.m, "fc.bias", sdl_shape1(C * 16), false);
    g.w2 = sdl_model_param(g.m, "up.weight", sdl_shape4(C, 1, 4, 4), true);
    g.b2 = sdl_model_param(g.m, "up.bias", sdl_shape1(1), false);
    sdl_tensor *ts[4] = {g.w1, g.b1, g.w2, g.b2};
    for (int i = 0; i < 4; i++) sdl_tensor_uniform(ts[i], -0.4f, 0.4f);
    return g;
}
static disc disc_new(uint64_t seed) {
    disc d;
    d.m = sdl_model_new(seed);
    d.w1 = sdl_model_param(d.m, "conv.weight", sdl_shape4(C, 1, 4, 4), true);
    d.b1 = sdl_model_param(d.m, "conv.bias", sdl_shape1(C), false);
    d.w2 = sdl_model_param(d.m, "fc.weight", sdl_shape2(1, C * 16), true);
    d.b2 = sdl_model_param(d.m, "fc.bias", sdl_shape1(1), false);
    sdl_tensor *ts[4] = {d.w1, d.b1, d.w2, d.b2};
    for (int i = 0; i < 4; i++) sdl_tensor_uniform(ts[i], -0.4f, 0.4f);
    return d;
}
static sdl_tensor *gen_fwd(gen *g, sdl_tensor *z) {
    sdl_tensor *h = sdl_reshape(sdl_linear(z, g->w1, g->b1), sdl_shape4(B, C, 4, 4));
    return sdl_tanh(sdl_conv_transpose2d(sdl_relu(h), g->w2, g->b2, 2, 1, 0));
}
static sdl_tensor *disc_fwd(disc *d, sdl_tensor *x) {
    sdl_tensor *h = sdl_leaky_relu(sdl_conv2d(x, d->w1, d->b1, 2, 1), 0.2f);
    return sdl_linear(sdl_flatten(h), d->w2, d->b2);
}
static sdl_tensor *labels(float v) {
    sdl_tensor *t = sdl_arena_tensor(sdl_shape2(B, 1), SDL_F32);
    sdl_tensor_fill(t, v);
    return t;
}
static sdl_tensor *noise(uint64_t seed) {
    sdl_tensor *z = sdl_arena_tensor(sdl_shape2(B, Z), SDL_F32);
    sdl_rng_set_state(seed, 0);
    sdl_tensor_randn(z, 0, 1);
    return z;
}
static sdl_tensor *real_batch(void) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape4(B, 1, 8, 8), SDL_F32);
    sdl_rng_set_state(99, 0);
    sdl_tensor_uniform(x, -1, 1);
    return x;
}
static float *grads_copy(const sdl_model *m) {
    float *g = (float *)malloc((size_t)m->param_floats * sizeof(float));
    memcpy(g, m->grad_data, (size_t)m->param_floats * sizeof(float));
    return g;
}
static double abs_sum(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)x[i]);
    return s;
}
static void set_trainable(sdl_model *m, bool on) {
    for (int i = 0; i < m->nparams; i++) m->params[i]->requires_grad = on;
}

/* One DCGAN iteration as in PyTorch's example: fake = G(z); the D step on detach(fake);
   then the G step through D(fake), with D frozen (freeze_d) or not. Returns G's
   gradients from the G step; *d_grad_sum gets D's gradient after it. */
static float *dcgan_g_grads(gen *g, disc *d, sdl_optim *opt_d, bool freeze_d, double *d_grad_sum) {
    sdl_tensor *fake = gen_fwd(g, noise(7));
    sdl_tensor *loss_d = sdl_add(sdl_bce_with_logits(disc_fwd(d, real_batch()), labels(1)),
                                 sdl_bce_with_logits(disc_fwd(d, sdl_detach(fake)), labels(0)));
    CHECK(sdl_backward(loss_d) == SDL_OK, "%s", sdl_last_error());
    CHECK(abs_sum(g->m->grad_data, g->m->param_floats) == 0.0, "the D step gave G a gradient");
    CHECK(sdl_optim_step(opt_d) == SDL_OK, "%s", sdl_last_error());
    if (freeze_d) CHECK(sdl_model_freeze(d->m, "", true) == SDL_OK, "%s", sdl_last_error());
    sdl_tensor *loss_g = sdl_bce_with_logits(disc_fwd(d, fake), labels(1));
    CHECK(sdl_backward(loss_g) == SDL_OK, "%s", sdl_last_error());
    if (freeze_d) sdl_model_freeze(d->m, "", false);
    *d_grad_sum = abs_sum(d->m->grad_data, d->m->param_floats);
    return grads_copy(g->m);
}

/* G's gradient from a fresh forward of G through the same D */
static float *recomputed_g_grads(gen *g, disc *d) {
    sdl_model_zero_grad(g->m);
    set_trainable(d->m, false);
    CHECK(sdl_backward(sdl_bce_with_logits(disc_fwd(d, gen_fwd(g, noise(7))), labels(1))) == SDL_OK, "%s", sdl_last_error());
    set_trainable(d->m, true);
    return grads_copy(g->m);
}

static void test_dcgan_step_trains_g(void) {
    for (int freeze = 1; freeze >= 0; freeze--) {
        gen g = gen_new(1);
        disc d = disc_new(2);
        sdl_optim *opt_g = sdl_adam(g.m, 2e-4f, 0.5f, 0.999f, 0);
        sdl_optim *opt_d = sdl_adam(d.m, 2e-4f, 0.5f, 0.999f, 0);
        double d_sum = -1;
        float *got = dcgan_g_grads(&g, &d, opt_d, freeze != 0, &d_sum);
        double g_sum = abs_sum(got, g.m->param_floats);
        CHECK(g_sum > 1e-4, "freeze %d: G got no gradient from the G step (%g)", freeze, g_sum);
        if (freeze) CHECK(d_sum == 0.0, "a frozen D got a gradient from the G step (%g)", d_sum);
        else CHECK(d_sum > 0.0, "an unfrozen D got no gradient from the G step");
        sdl_model_zero_grad(d.m); /* PyTorch's netD.zero_grad() before the next D step */
        float *want = recomputed_g_grads(&g, &d);
        int bad = 0;
        for (int64_t i = 0; i < g.m->param_floats; i++) bad += got[i] != want[i];
        CHECK(bad == 0, "freeze %d: %d of %lld G gradients differ from a recomputed forward", freeze, bad, (long long)g.m->param_floats);
        /* the G step moves G */
        float before = g.m->param_data[0];
        memcpy(g.m->grad_data, got, (size_t)g.m->param_floats * sizeof(float));
        CHECK(sdl_optim_step(opt_g) == SDL_OK, "%s", sdl_last_error());
        CHECK(g.m->param_data[0] != before, "the G step left G as it was");
        free(got);
        free(want);
        sdl_optim_free(opt_g);
        sdl_optim_free(opt_d);
        sdl_model_free(g.m);
        sdl_model_free(d.m);
        sdl_arena_reset();
    }
}

/* two losses over one subgraph h = G(z): loss1 = D(h) and loss2 = mean(h^2) */
static sdl_tensor *shared_losses(gen *g, disc *d, sdl_tensor **loss2) {
    sdl_tensor *h = gen_fwd(g, noise(3));
    *loss2 = sdl_mean(sdl_mul(h, h));
    return sdl_mean(disc_fwd(d, h));
}

static void test_two_losses_share_a_subgraph(void) {
    gen g = gen_new(5);
    disc d = disc_new(6);
    /* the reference: each loss from its own forward, gradients adding up */
    sdl_tensor *l2;
    CHECK(sdl_backward(shared_losses(&g, &d, &l2)) == SDL_OK, "%s", sdl_last_error());
    sdl_arena_reset();
    shared_losses(&g, &d, &l2);
    CHECK(sdl_backward(l2) == SDL_OK, "%s", sdl_last_error());
    sdl_arena_reset();
    float *want_g = grads_copy(g.m), *want_d = grads_copy(d.m);
    sdl_model_zero_grad(g.m);
    sdl_model_zero_grad(d.m);
    /* one forward, two backward passes: the first keeps the graph */
    sdl_tensor *l1 = shared_losses(&g, &d, &l2);
    sdl_backward_desc keep = {true};
    CHECK(sdl_backward_ex(l1, &keep) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_backward(l2) == SDL_OK, "%s", sdl_last_error());
    int bad = 0;
    for (int64_t i = 0; i < g.m->param_floats; i++) bad += g.m->grad_data[i] != want_g[i];
    for (int64_t i = 0; i < d.m->param_floats; i++) bad += d.m->grad_data[i] != want_d[i];
    CHECK(bad == 0, "%d gradients differ from two separate forwards", bad);
    CHECK(abs_sum(want_g, g.m->param_floats) > 1e-4, "no gradient at all");
    /* without retain_graph the second pass fails, naming the op, and changes nothing */
    sdl_arena_reset();
    sdl_model_zero_grad(g.m);
    l1 = shared_losses(&g, &d, &l2);
    CHECK(sdl_backward(l1) == SDL_OK, "%s", sdl_last_error());
    float *after1 = grads_copy(g.m);
    CHECK(sdl_backward(l2) == SDL_ERR_STATE, "a second backward through a used-up graph returned %d", (int)sdl_last_result());
    CHECK(strstr(sdl_last_error(), "tanh") && strstr(sdl_last_error(), "retain_graph"), "error: %s", sdl_last_error());
    bad = 0;
    for (int64_t i = 0; i < g.m->param_floats; i++) bad += g.m->grad_data[i] != after1[i];
    CHECK(bad == 0, "the failed backward changed %d gradients", bad);
    /* the same loss twice */
    CHECK(sdl_backward(l1) == SDL_ERR_STATE, "backward of the same loss twice returned %d", (int)sdl_last_result());
    CHECK(strstr(sdl_last_error(), "'mean'") != NULL, "error: %s", sdl_last_error());
    free(want_g);
    free(want_d);
    free(after1);
    sdl_model_free(g.m);
    sdl_model_free(d.m);
}

/* retain_graph: a second backward of the same loss adds the same gradients again, through
   conv, batch norm, pooling, a view, linear, cross entropy */
static void test_retained_graph_runs_twice(void) {
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "c1", 1, 4, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn1", 4));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 4 * 4 * 4, 5, true));
    sdl_seq_add(net, sdl_gelu_layer(m));
    sdl_seq_add(net, sdl_layer_norm_layer(m, "ln", 5));
    sdl_tensor *x = sdl_arena_tensor(sdl_shape4(3, 1, 8, 8), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = test_ids(3, 5);
    sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.1f);
    sdl_backward_desc keep = {true};
    CHECK(sdl_backward_ex(loss, &keep) == SDL_OK, "%s", sdl_last_error());
    float *once = grads_copy(m);
    CHECK(sdl_backward(loss) == SDL_OK, "%s", sdl_last_error());
    /* relative to each tensor's largest gradient (the conv has no bias: before batch norm
       its gradient is zero up to rounding, which the two passes round differently) */
    double worst = 0;
    for (int p = 0; p < m->nparams; p++) {
        int64_t o0 = m->param_offset[p], o1 = m->param_offset[p + 1];
        double top = 1e-30;
        for (int64_t i = o0; i < o1; i++) top = fmax(top, fabs(2.0 * once[i]));
        for (int64_t i = o0; i < o1; i++) worst = fmax(worst, fabs((double)m->grad_data[i] - 2.0 * once[i]) / top);
    }
    CHECK(worst < 1e-5, "second pass is not the first one again: worst error %g", worst);
    CHECK(fabs((double)sdl_model_find(m, "c1.weight")->grad[0]) > 0, "the conv before the view got no gradient");
    CHECK(sdl_backward(loss) == SDL_ERR_STATE, "a third backward (the second without retain_graph) was accepted");
    free(once);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* a node reached by nobody stays on the tape for a later loss; the tape drops what ran */
static void test_unreached_part_stays(void) {
    gen g = gen_new(8);
    sdl_tensor *z = noise(1);
    sdl_tensor *a = sdl_mean(gen_fwd(&g, z));
    sdl_tensor *b = sdl_sum(sdl_linear(z, g.w1, g.b1));
    CHECK(sdl_backward(b) == SDL_OK, "%s", sdl_last_error());
    float *gb = grads_copy(g.m);
    CHECK(sdl_backward(a) == SDL_OK, "the loss b never reached was refused: %s", sdl_last_error());
    CHECK(g.m->grad_data[g.m->param_offset[2]] != 0.0f, "the second loss gave up.weight no gradient");
    int changed = 0;
    for (int64_t i = 0; i < g.m->param_offset[1]; i++) changed += g.m->grad_data[i] != gb[i];
    CHECK(changed > 0, "the second loss gave fc.weight no gradient");
    free(gb);
    sdl_model_free(g.m);
}

/* grad hooks (what data-parallel training allreduces on) fire once per parameter and pass,
   after its last contribution: D is read twice in its step (real and fake batches) */
typedef struct hook_log { int fired[8]; float seen[8]; } hook_log;
static sdl_result log_hook(void *user, sdl_model *m, int i) {
    hook_log *h = (hook_log *)user;
    h->fired[i]++;
    h->seen[i] = m->grad_data[m->param_offset[i + 1] - 1]; /* the tensor's last element */
    return SDL_OK;
}
static void check_hooks(hook_log *h, const sdl_model *m, int want, const char *when) {
    for (int i = 0; i < m->nparams; i++) {
        CHECK(h->fired[i] == want, "%s: %s fired %d times", when, m->params[i]->name, h->fired[i]);
        if (want) CHECK(h->seen[i] == m->grad_data[m->param_offset[i + 1] - 1], "%s: %s fired before its gradient was final", when, m->params[i]->name);
    }
    memset(h, 0, sizeof *h);
}

static void test_grad_hooks_per_pass(void) {
    gen g = gen_new(21);
    disc d = disc_new(22);
    hook_log hg, hd;
    memset(&hg, 0, sizeof hg);
    memset(&hd, 0, sizeof hd);
    sdl_model_set_grad_hook(g.m, log_hook, &hg);
    sdl_model_set_grad_hook(d.m, log_hook, &hd);
    sdl_tensor *fake = gen_fwd(&g, noise(4));
    sdl_tensor *loss_d = sdl_add(sdl_bce_with_logits(disc_fwd(&d, real_batch()), labels(1)),
                                 sdl_bce_with_logits(disc_fwd(&d, sdl_detach(fake)), labels(0)));
    CHECK(sdl_backward(loss_d) == SDL_OK, "%s", sdl_last_error());
    check_hooks(&hd, d.m, 1, "D step, D");
    check_hooks(&hg, g.m, 0, "D step, G");
    sdl_model_zero_grad(d.m);
    CHECK(sdl_backward(sdl_bce_with_logits(disc_fwd(&d, fake), labels(1))) == SDL_OK, "%s", sdl_last_error());
    check_hooks(&hd, d.m, 1, "G step, D");
    check_hooks(&hg, g.m, 1, "G step, G");
    sdl_model_free(g.m);
    sdl_model_free(d.m);
}

/* an error raised in forward reads the same when backward reports it again */
static void test_forward_error_reported_whole(void) {
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(8, 784), SDL_F32);
    sdl_tensor *w = sdl_tensor_new(sdl_shape2(10, 100), SDL_F32);
    sdl_tensor_requires_grad(w);
    sdl_tensor *y = sdl_linear(x, w, NULL);
    CHECK(y == NULL, "a bad linear returned a tensor");
    char first[512];
    snprintf(first, sizeof first, "%s", sdl_last_error());
    CHECK(sdl_backward(sdl_mean(y)) == SDL_ERR_ARG, "backward of NULL returned %d", (int)sdl_last_result());
    const char *e = sdl_last_error();
    CHECK(strncmp(e, "backward: loss is NULL (an earlier op failed: ", 46) == 0 && strstr(e, first) != NULL,
          "first: [%s] then: [%s]", first, e);
    CHECK(strstr(e + 46, "backward") == NULL, "garbled: %s", e);
    sdl_tensor_free(w);
}

int main(void) {
    RUN(test_dcgan_step_trains_g);
    RUN(test_two_losses_share_a_subgraph);
    RUN(test_retained_graph_runs_twice);
    RUN(test_unreached_part_stays);
    RUN(test_grad_hooks_per_pass);
    RUN(test_forward_error_reported_whole);
    return sdl_test_finish();
}
