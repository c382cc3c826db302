/* test_freeze.c - frozen parameters stay bit-identical, value and optimizer state, under
   every optimizer with weight decay on; parameter groups with their own rate scale and
   weight decay, moved together by a schedule. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

/* backbone.w decays, backbone.b does not, head.w decays */
static sdl_model *make_model(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_tensor_uniform(sdl_model_param(m, "backbone.w", sdl_shape2(4, 5), true), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "backbone.b", sdl_shape1(5), false), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "head.w", sdl_shape2(3, 4), true), -1, 1);
    sdl_model_pack(m);
    return m;
}
/* every gradient, frozen ones included (a stale gradient must not move a frozen weight) */
static void set_grads(sdl_model *m, int s) {
    for (int64_t j = 0; j < m->param_floats; j++) m->grad_data[j] = (float)(0.3 * m->param_data[j] + 0.5 * sin(0.37 * (double)j + 1.1 * s));
}
static bool same_floats(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static const sdl_optim_desc kinds[] = {
    {SDL_OPTIM_SGD, 0.1f, 0.9f, 0.01f, true, 0, 0, 0, 0, 0, 0},
    {SDL_OPTIM_ADAM, 0.01f, 0, 0.01f, false, 0, 0, 0, 0, 0, 0},
    {SDL_OPTIM_ADAMW, 0.01f, 0, 0.05f, false, 0, 0, 0, 0, 0, 0},
    {SDL_OPTIM_LARS, 0.1f, 0.9f, 0.01f, false, 0, 0, 0, 0, 0, 0},
    {SDL_OPTIM_LAMB, 0.01f, 0, 0.05f, false, 0, 0, 0, 0, 0, 0},
};
static const char *kind_names[] = {"sgd", "adam", "adamw", "lars", "lamb"};

/* two steps to build state, freeze the backbone, three more: the backbone's values and
   state slots are the bits they were; the head moves exactly as in an unfrozen twin */
static void test_freeze_every_optimizer(void) {
    for (int k = 0; k < 5; k++) {
        sdl_model *m = make_model(), *twin = make_model();
        sdl_optim *o = sdl_optim_new(m, &kinds[k]), *ot = sdl_optim_new(twin, &kinds[k]);
        for (int s = 0; s < 2; s++) {
            set_grads(m, s); set_grads(twin, s);
            sdl_optim_step(o); sdl_optim_step(ot);
        }
        int64_t nb = m->param_offset[2], nall = m->param_floats; /* the backbone is [0, nb) */
        float keep_p[64], keep_s[2][64];
        memcpy(keep_p, m->param_data, (size_t)nb * sizeof(float));
        for (int q = 0; q < o->nstate; q++) memcpy(keep_s[q], sdl_optim_state_data(o, q), (size_t)nb * sizeof(float));
        if (k == 0) { m->params[0]->requires_grad = false; m->params[1]->requires_grad = false; } /* the plain way */
        else CHECK(sdl_model_freeze(m, "backbone.", true) == SDL_OK, "%s", sdl_last_error());
        for (int s = 2; s < 5; s++) {
            set_grads(m, s); set_grads(twin, s);
            CHECK(sdl_optim_step(o) == SDL_OK && sdl_optim_step(ot) == SDL_OK, "%s", sdl_last_error());
        }
        CHECK(same_floats(m->param_data, keep_p, nb), "%s: a frozen value changed", kind_names[k]);
        for (int q = 0; q < o->nstate; q++)
            CHECK(same_floats(sdl_optim_state_data(o, q), keep_s[q], nb), "%s: frozen state slot %d changed", kind_names[k], q);
        CHECK(same_floats(m->param_data + nb, twin->param_data + nb, nall - nb), "%s: the unfrozen head differs from its twin", kind_names[k]);
        CHECK(!same_floats(m->param_data, twin->param_data, nb), "%s: the twin's backbone did not move", kind_names[k]);
        for (int64_t j = 0; j < nall; j++) CHECK(m->grad_data[j] == 0.0f, "%s: gradient %lld left after the step", kind_names[k], (long long)j);
        /* unfrozen, it moves again */
        sdl_model_freeze(m, "backbone.", false);
        set_grads(m, 5);
        sdl_optim_step(o);
        CHECK(!same_floats(m->param_data, keep_p, nb), "%s: unfrozen, the backbone stayed", kind_names[k]);
        sdl_optim_free(o); sdl_optim_free(ot);
        sdl_model_free(m); sdl_model_free(twin);
    }
}

/* a frozen layer gets no gradient from backward, and the step leaves it */
static void test_frozen_layer_in_backward(void) {
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 6, 8, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 8, 3, true));
    sdl_optim *o = sdl_sgd(m, 0.1f, 0.9f, 0.01f, false);
    CHECK(sdl_model_freeze(m, "fc1.", true) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_model_freeze(m, "nothing.", true) == SDL_ERR_ARG, "a prefix that matches nothing was accepted");
    CHECK(sdl_param_freeze(sdl_arena_tensor(sdl_shape1(2), SDL_F32), true) == SDL_ERR_ARG, "froze a tensor that is no parameter");
    sdl_tensor *fc1 = sdl_model_find(m, "fc1.weight");
    float before[48];
    memcpy(before, fc1->data, sizeof before);
    sdl_tensor *x = sdl_arena_tensor(sdl_shape2(4, 6), SDL_F32);
    sdl_tensor_uniform(x, -1, 1);
    sdl_tensor *y = test_ids(4, 3);
    CHECK(sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0)) == SDL_OK, "%s", sdl_last_error());
    sdl_tensor_free(y);
    double g1 = 0, g2 = 0;
    for (int64_t j = 0; j < m->param_floats; j++) *(j < m->param_offset[2] ? &g1 : &g2) += fabs(m->grad_data[j]);
    CHECK(g1 == 0.0 && g2 > 0.0, "frozen fc1 got %g, fc2 got %g", g1, g2);
    sdl_optim_step(o);
    CHECK(memcmp(before, fc1->data, sizeof before) == 0, "the step moved frozen fc1");
    sdl_optim_free(o);
    sdl_model_free(m);
}

/* sgd without momentum: p -= lr * scale * (g + wd p), each group its own scale and wd */
static void test_param_groups_sgd(void) {
    sdl_model *m = make_model();
    sdl_optim *o = sdl_sgd(m, 0.1f, 0, 0.01f, false);
    sdl_param_group bb = {0}, hd = {0};
    bb.prefix = "backbone.";
    bb.lr_scale = 0.1f;
    hd.prefix = "head.";
    hd.weight_decay = 0.05f;
    CHECK(sdl_optim_add_group(o, &bb) == SDL_OK && sdl_optim_add_group(o, &hd) == SDL_OK, "%s", sdl_last_error());
    const float scale[3] = {0.1f, 0.1f, 1.0f}, wd[3] = {0.01f, 0.0f, 0.05f}; /* backbone.b: decay = false */
    for (int s = 0; s < 3; s++) {
        float lr = s == 2 ? 0.05f : 0.1f; /* a schedule halves the rate: both groups follow */
        sdl_optim_set_lr(o, lr);
        set_grads(m, s);
        float want[64];
        for (int i = 0; i < 3; i++)
            for (int64_t j = m->param_offset[i]; j < m->param_offset[i + 1]; j++)
                want[j] = m->param_data[j] - lr * scale[i] * (m->grad_data[j] + wd[i] * m->param_data[j]);
        sdl_optim_step(o);
        double worst = 0;
        for (int64_t j = 0; j < m->param_floats; j++) worst = fmax(worst, fabs((double)m->param_data[j] - want[j]));
        CHECK(worst < 1e-6, "step %d: worst error %g", s, worst);
    }
    sdl_param_group bad = {0};
    bad.prefix = "neck.";
    CHECK(sdl_optim_add_group(o, &bad) == SDL_ERR_ARG, "a group that takes no parameter was accepted");
    bad.prefix = "head.";
    bad.lr_scale = -1.0f;
    CHECK(sdl_optim_add_group(o, &bad) == SDL_ERR_ARG, "a negative lr_scale was accepted");
    sdl_optim_free(o);
    sdl_model_free(m);
}

/* a group without weight decay is the same as parameters made with decay = false, for the
   optimizers where decay also switches the trust ratio off only through wd (adam, adamw) */
static void test_param_group_no_decay(void) {
    for (int k = 1; k <= 2; k++) {
        sdl_model *a = make_model(), *b = make_model();
        b->params[2]->decay = false;
        sdl_optim *oa = sdl_optim_new(a, &kinds[k]), *ob = sdl_optim_new(b, &kinds[k]);
        sdl_param_group g = {0};
        g.prefix = "head.";
        g.no_weight_decay = true;
        CHECK(sdl_optim_add_group(oa, &g) == SDL_OK, "%s", sdl_last_error());
        for (int s = 0; s < 3; s++) {
            set_grads(a, s); set_grads(b, s);
            sdl_optim_step(oa); sdl_optim_step(ob);
        }
        CHECK(same_floats(a->param_data, b->param_data, a->param_floats), "%s: no_weight_decay group differs from decay = false", kind_names[k]);
        sdl_optim_free(oa); sdl_optim_free(ob);
        sdl_model_free(a); sdl_model_free(b);
    }
}

int main(void) {
    RUN(test_freeze_every_optimizer);
    RUN(test_frozen_layer_in_backward);
    RUN(test_param_groups_sgd);
    RUN(test_param_group_no_decay);
    return sdl_test_finish();
}
