/* test_models.c - the model examples (examples/resnet18.c, examples/gpt2.c), built into this
   test with their main renamed: a tiny ResNet and a tiny GPT train on a fixed batch on the CPU
   (finite losses that fall), the full-size models have the published parameter counts (built,
   not run), a GPT step gives the same bits on 1 and 2 threads, and each program runs end to end
   with small flags and refuses --device cuda in a cc build. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define main resnet18_main
#include "../examples/resnet18.c"
#undef main
#define main gpt2_main
#include "../examples/gpt2.c"
#undef main

/* ResNet-18 for CIFAR: torchvision's resnet18 with the 3x3 stem and fc 10 has 11,173,962 */
static void test_resnet18_param_count(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = resnet18_new(m, 64, 10);
    CHECK(net != NULL, "resnet18_new: %s", sdl_last_error());
    CHECK(sdl_model_num_params(m) == 11173962, "ResNet-18 has %lld parameters, want 11173962", (long long)sdl_model_num_params(m));
    sdl_tensor *w = sdl_model_find(m, "layer2.0.downsample.0.weight");
    CHECK(w && w->ndim == 4 && w->shape[0] == 128 && w->shape[1] == 64 && w->shape[2] == 1, "layer2.0.downsample.0.weight is (128, 64, 1, 1)");
    CHECK(sdl_model_find(m, "layer4.1.bn2.running_var") && !sdl_model_find(m, "layer1.0.downsample.0.weight"),
          "buffers named as torchvision's; layer1 has no downsample");
    sdl_model_free(m);
}

/* width 8, a fixed batch of 4: the logits are (4, 10), every loss is finite and the loss falls */
static void test_resnet_tiny_trains(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = resnet18_new(m, 8, 10);
    sdl_optim *opt = net ? sdl_sgd(m, 0.05f, 0.9f, 5e-4f, false) : NULL;
    CHECK(net && opt, "tiny resnet: %s", sdl_last_error());
    if (!opt) { sdl_model_free(m); return; }
    sdl_tensor *x = sdl_tensor_new(sdl_shape4(4, 3, 32, 32), SDL_F32), *y = sdl_tensor_new(sdl_shape1(4), SDL_I32);
    sdl_tensor_randn(x, 0.0f, 1.0f);
    for (int i = 0; i < 4; i++) sdl_i32(y)[i] = (i * 3) % 10;
    float loss[4];
    sdl_tensor *logits = NULL;
    for (int s = 0; s < 4; s++) {
        loss[s] = resnet_train_step(net, opt, x, y, &logits);
        CHECK(isfinite(loss[s]), "step %d loss %g: %s", s, (double)loss[s], sdl_last_error());
        if (s == 0) CHECK(logits && logits->ndim == 2 && logits->shape[0] == 4 && logits->shape[1] == 10, "logits (4, 10)");
        sdl_arena_reset();
    }
    CHECK(loss[3] < loss[0] - 0.1f && loss[1] < loss[0], "loss falls on a fixed batch: %g %g %g %g", (double)loss[0],
          (double)loss[1], (double)loss[2], (double)loss[3]);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

/* GPT-2 small: 124,439,808 parameters with the LM head tied to the token table (untied it
   would be 50257 * 768 = 38,597,376 more, 163,037,184). Built, not initialised, not run. */
static void test_gpt2_124m_param_count(void) {
    static gpt2 g;
    gpt2_config cfg = {50257, 1024, 12, 12, 768};
    CHECK(gpt2_build(&g, cfg, 1), "gpt2_build 124M: %s", sdl_last_error());
    CHECK(sdl_model_num_params(g.model) == 124439808, "GPT-2 124M has %lld parameters, want 124439808",
          (long long)sdl_model_num_params(g.model));
    sdl_tensor *w = sdl_model_find(g.model, "h.11.mlp.c_proj.weight");
    CHECK(w && w->shape[0] == 768 && w->shape[1] == 3072, "h.11.mlp.c_proj.weight is (768, 3072)");
    CHECK(!sdl_model_find(g.model, "h.12.ln_1.weight") && sdl_model_find(g.model, "ln_f.bias"), "12 blocks and ln_f");
    sdl_model_free(g.model);
}

static gpt2_config tiny_gpt = {64, 16, 2, 4, 32}; /* V, T, L, NH, C */

/* the loss of `steps` AdamW steps on one random batch (B 3, T 16) with `threads` threads */
static void tiny_gpt_losses(int threads, int steps, float *loss) {
    static gpt2 g;
    sdl_set_num_threads(threads);
    CHECK(gpt2_build(&g, tiny_gpt, 5), "gpt2_build: %s", sdl_last_error());
    gpt2_init(&g);
    sdl_optim *opt = sdl_adamw(g.model, 1e-3f, 0.9f, 0.95f, 0.1f);
    sdl_tensor *ids = sdl_tensor_new(sdl_shape2(3, 16), SDL_I32), *targets = sdl_tensor_new(sdl_shape2(3, 16), SDL_I32);
    gpt2_random_batch(ids, targets, tiny_gpt.vocab, 9);
    for (int s = 0; s < steps; s++) {
        loss[s] = opt ? gpt2_train_step(&g, opt, ids, targets) : NAN;
        sdl_arena_reset();
    }
    sdl_optim_free(opt);
    sdl_tensor_free(ids);
    sdl_tensor_free(targets);
    sdl_model_free(g.model);
    sdl_set_num_threads(0);
}

/* 2 layers, C 32, T 16, vocab 64: the first loss is about ln(64) (GPT-2's small init makes
   the logits nearly equal), every loss is finite, and 6 steps bring it down */
static void test_gpt_tiny_trains(void) {
    float loss[6];
    tiny_gpt_losses(2, 6, loss);
    for (int s = 0; s < 6; s++) CHECK(isfinite(loss[s]), "step %d loss %g: %s", s, (double)loss[s], sdl_last_error());
    CHECK(fabsf(loss[0] - logf(64.0f)) < 0.1f, "first loss %g, about ln 64 = %g", (double)loss[0], (double)logf(64.0f));
    bool falls = true;
    for (int s = 1; s < 6; s++) falls = falls && loss[s] < loss[s - 1];
    CHECK(falls && loss[5] < loss[0] - 0.1f, "loss falls at every step: %g %g %g %g %g %g", (double)loss[0], (double)loss[1],
          (double)loss[2], (double)loss[3], (double)loss[4], (double)loss[5]);
}

static void test_gpt_threads_same_bits(void) {
    float a[2], b[2];
    tiny_gpt_losses(1, 2, a);
    tiny_gpt_losses(2, 2, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "1 and 2 threads: %.9g %.9g vs %.9g %.9g", (double)a[0], (double)a[1], (double)b[0], (double)b[1]);
}

static void test_gpt_bad_config(void) {
    static gpt2 g;
    gpt2_config cfg = {64, 16, 2, 5, 32}; /* 32 channels do not split into 5 heads */
    CHECK(!gpt2_build(&g, cfg, 1) && g.model == NULL && strstr(sdl_last_error(), "multiple of heads"), "5 heads of 32: %s", sdl_last_error());
}

/* the programs end to end, small; their output goes to this test's log */
static void test_programs_run(void) {
    char *r1[] = {(char *)"resnet18", (char *)"--width", (char *)"4", (char *)"--synthetic", (char *)"--synthetic-size", (char *)"10",
                  (char *)"--batch-size", (char *)"4", (char *)"--epochs", (char *)"1", (char *)"--threads", (char *)"2", NULL};
    CHECK(resnet18_main(12, r1) == 0, "resnet18 trains an epoch of synthetic data: %s", sdl_last_error());
    char *r2[] = {(char *)"resnet18", (char *)"--width", (char *)"4", (char *)"--steps", (char *)"2", (char *)"--warmup", (char *)"1",
                  (char *)"--batch-size", (char *)"4", (char *)"--threads", (char *)"2", NULL};
    CHECK(resnet18_main(11, r2) == 0, "resnet18 benchmark mode: %s", sdl_last_error());
    char *g1[] = {(char *)"gpt2", (char *)"--layers", (char *)"2", (char *)"--heads", (char *)"2", (char *)"--channels", (char *)"16",
                  (char *)"--seq-len", (char *)"8", (char *)"--vocab", (char *)"32", (char *)"--steps", (char *)"2", (char *)"--batch-size",
                  (char *)"2", (char *)"--threads", (char *)"2", NULL};
    CHECK(gpt2_main(17, g1) == 0, "gpt2 runs: %s", sdl_last_error());
    fflush(stdout);
#ifndef __CUDACC__
    char *c1[] = {(char *)"resnet18", (char *)"--width", (char *)"4", (char *)"--steps", (char *)"1", (char *)"--device", (char *)"cuda", NULL};
    CHECK(resnet18_main(7, c1) == 1 && strstr(sdl_last_error(), "nvcc"), "a cc build refuses --device cuda: %s", sdl_last_error());
    char *c2[] = {(char *)"gpt2", (char *)"--layers", (char *)"1", (char *)"--heads", (char *)"1", (char *)"--channels", (char *)"8",
                  (char *)"--seq-len", (char *)"4", (char *)"--vocab", (char *)"8", (char *)"--device", (char *)"cuda", NULL};
    CHECK(gpt2_main(13, c2) == 1 && strstr(sdl_last_error(), "nvcc"), "a cc build refuses --device cuda: %s", sdl_last_error());
#endif
}

int main(void) {
    (void)gradcheck;
    RUN(test_resnet18_param_count);
    RUN(test_resnet_tiny_trains);
    RUN(test_gpt2_124m_param_count);
    RUN(test_gpt_tiny_trains);
    RUN(test_gpt_threads_same_bits);
    RUN(test_gpt_bad_config);
    RUN(test_programs_run);
    return sdl_test_finish();
}
