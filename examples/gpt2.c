/* gpt2.c - a GPT-2 (124M) shaped transformer trained on synthetic tokens: the C version of
   nanoGPT's model.py / llm.c's train_gpt2.c, for timing (tokens/sec) and as a readable
   transformer.

   build:  cc -O3 -march=native -I. examples/gpt2.c -o build/gpt2 -lm -lpthread
           nvcc -std=c++17 -O2 -x cu -I. examples/gpt2.c -o build/gpt2_cuda -lcublas   (GPU)
   run:    ./build/gpt2 --layers 2 --heads 4 --channels 64 --seq-len 64 --vocab 512 --steps 10
           ./build/gpt2_cuda --device cuda --batch-size 16 --seq-len 1024 --steps 10     (GPT-2 124M)
           ./build/gpt2_cuda --device cuda --batch-size 16 --precision bf16   (bf16 GEMMs; fp16 too)
   Defaults are GPT-2 small: vocab 50257, T 1024, 12 layers, 12 heads, 768 channels.
   The token and position tables, the pre-LN blocks (attention and a 4x GELU-tanh MLP, each
   added to the residual stream) and the final layer norm are GPT-2's; the LM head shares the
   token table (tied weights), so the 124M model has GPT-2's 124,439,808 parameters.
   One difference: attention's q, k, v come from three C x C linears rather than GPT-2's one
   C x 3C c_attn (sdl has no op that splits a tensor); parameters and FLOPs are the same.
   Data: one fixed batch of random tokens (the target of each is the next one); a model that
   learns brings the loss from ln(vocab) towards 0 as it memorises the batch.
   Every flag has an underscore twin (--batch_size); --help lists them. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define GPT2_MAX_LAYERS 64

typedef struct gpt2_config {
    int vocab, seq_len, layers, heads, channels; /* V, T (max), L, NH, C */
} gpt2_config;

/* one transformer block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) */
typedef struct gpt2_block {
    sdl_module *ln_1, *q, *k, *v, *attn_proj; /* attention: q, k, v (C, C), c_proj (C, C) */
    sdl_module *ln_2, *fc, *mlp_proj;         /* MLP: c_fc (C, 4C), c_proj (4C, C) */
} gpt2_block;

typedef struct gpt2 {
    gpt2_config cfg;
    sdl_model *model;
    sdl_tensor *wte, *wpe; /* token (V, C) and position (T, C) tables; wte is also the LM head */
    gpt2_block h[GPT2_MAX_LAYERS];
    sdl_module *ln_f;
} gpt2;

/* nn.Linear (weight (out, in), bias (out)) left at zero: gpt2_init draws GPT-2's weights */
static sdl_tensor *gpt2_linear_forward(sdl_module *l, sdl_tensor *x) { return sdl_linear(x, l->weight, l->bias); }
static sdl_module *gpt2_linear(sdl_model *m, const char *name, int64_t in, int64_t out) {
    char n[80];
    sdl_module *l = sdl_module_new(m, "linear", name, gpt2_linear_forward);
    if (!l) return NULL;
    snprintf(n, sizeof n, "%s.weight", name);
    l->weight = sdl_model_param(m, n, sdl_shape2(out, in), true);
    snprintf(n, sizeof n, "%s.bias", name);
    l->bias = sdl_model_param(m, n, sdl_shape1(out), false);
    return l->weight && l->bias ? l : NULL;
}

/* makes the model's parameters on a new g->model (names as Hugging Face's GPT-2:
   "h.0.ln_1.weight", "h.0.mlp.c_fc.bias"); linear weights and the tables stay zero until
   gpt2_init. false (sdl_last_error says why) on failure. */
bool gpt2_build(gpt2 *g, gpt2_config cfg, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->cfg = cfg;
    int64_t V = cfg.vocab, T = cfg.seq_len, C = cfg.channels;
    if (V < 1 || T < 1 || C < 1 || cfg.heads < 1 || C % cfg.heads != 0 || cfg.layers < 1 || cfg.layers > GPT2_MAX_LAYERS) {
        sdl_fail(SDL_ERR_ARG, "gpt2: vocab %lld, seq-len %lld, channels %lld, heads %d, layers %d: all positive, "
                 "channels a multiple of heads, at most %d layers", (long long)V, (long long)T, (long long)C, cfg.heads,
                 cfg.layers, GPT2_MAX_LAYERS);
        return false;
    }
    g->model = sdl_model_new(seed);
    if (!g->model) return false;
    sdl_model *m = g->model;
    g->wte = sdl_model_param(m, "wte.weight", sdl_shape2(V, C), true);
    g->wpe = sdl_model_param(m, "wpe.weight", sdl_shape2(T, C), true);
    if (!g->wte || !g->wpe) return false;
    for (int l = 0; l < cfg.layers; l++) {
        gpt2_block *b = &g->h[l];
        char n[64];
#define GPT2_NAME(s) (snprintf(n, sizeof n, "h.%d.%s", l, s), n)
        b->ln_1 = sdl_layer_norm_layer(m, GPT2_NAME("ln_1"), C);
        b->q = gpt2_linear(m, GPT2_NAME("attn.q"), C, C);
        b->k = gpt2_linear(m, GPT2_NAME("attn.k"), C, C);
        b->v = gpt2_linear(m, GPT2_NAME("attn.v"), C, C);
        b->attn_proj = gpt2_linear(m, GPT2_NAME("attn.c_proj"), C, C);
        b->ln_2 = sdl_layer_norm_layer(m, GPT2_NAME("ln_2"), C);
        b->fc = gpt2_linear(m, GPT2_NAME("mlp.c_fc"), C, 4 * C);
        b->mlp_proj = gpt2_linear(m, GPT2_NAME("mlp.c_proj"), 4 * C, C);
#undef GPT2_NAME
        if (!b->ln_1 || !b->q || !b->k || !b->v || !b->attn_proj || !b->ln_2 || !b->fc || !b->mlp_proj) return false;
    }
    g->ln_f = sdl_layer_norm_layer(m, "ln_f", C);
    return g->ln_f != NULL;
}

/* GPT-2's init: weights and the token table N(0, 0.02), the position table N(0, 0.01), the
   projections back into the residual stream (c_proj) N(0, 0.02 / sqrt(2 L)); biases 0 and
   layer norms 1, 0 (as made: the parameters without weight decay) */
void gpt2_init(gpt2 *g) {
    sdl_model *m = g->model;
    float proj_std = 0.02f / sqrtf(2.0f * (float)g->cfg.layers);
    for (int i = 0; i < m->nparams; i++) {
        sdl_tensor *p = m->params[i];
        if (!p->decay) continue;
        sdl_tensor_randn(p, 0.0f, p == g->wpe ? 0.01f : strstr(p->name, "c_proj.weight") ? proj_std : 0.02f);
    }
}

/* (B, T, C) -> (B, NH, T, hd): split the channels into heads, heads before time */
static sdl_tensor *gpt2_split_heads(sdl_tensor *x, int heads) {
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    return sdl_transpose(sdl_reshape(x, sdl_shape4(B, T, heads, C / heads)), 1, 2);
}

/* causal self-attention: y = c_proj(softmax(q k^T / sqrt(hd), causal) v), per head */
static sdl_tensor *gpt2_attention(gpt2_block *b, sdl_tensor *x, int heads) {
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    sdl_tensor *q = gpt2_split_heads(sdl_forward(b->q, x), heads);
    sdl_tensor *k = gpt2_split_heads(sdl_forward(b->k, x), heads);
    sdl_tensor *v = gpt2_split_heads(sdl_forward(b->v, x), heads);
    sdl_tensor *y = sdl_transpose(sdl_attention(q, k, v), 1, 2); /* (B, T, NH, hd) */
    return sdl_forward(b->attn_proj, sdl_reshape(y, sdl_shape3(B, T, C)));
}

/* ids, targets: i32 (B, T), on the model's device; returns the mean cross entropy of the
   next-token prediction. pos: i32 (T) holding 0 .. T-1. */
sdl_tensor *gpt2_loss(gpt2 *g, sdl_tensor *ids, sdl_tensor *pos, sdl_tensor *targets) {
    if (!ids || !pos || !targets) return NULL;
    int64_t B = ids->shape[0], T = ids->shape[1];
    sdl_tensor *x = sdl_add(sdl_embedding(ids, g->wte), sdl_embedding(pos, g->wpe)); /* (B, T, C) */
    for (int l = 0; l < g->cfg.layers; l++) {
        gpt2_block *b = &g->h[l];
        x = sdl_residual_add(x, gpt2_attention(b, sdl_forward(b->ln_1, x), g->cfg.heads));
        sdl_tensor *hidden = sdl_gelu_tanh(sdl_forward(b->fc, sdl_forward(b->ln_2, x))); /* (B, T, 4C) */
        x = sdl_residual_add(x, sdl_forward(b->mlp_proj, hidden));
    }
    sdl_tensor *logits = sdl_linear(sdl_forward(g->ln_f, x), g->wte, NULL); /* (B, T, V), tied head */
    return sdl_cross_entropy(sdl_reshape(logits, sdl_shape2(B * T, g->cfg.vocab)), sdl_reshape(targets, sdl_shape1(B * T)), 0.0f);
}

/* training FLOPs per token, llm.c's estimate: 6 per parameter (forward and backward) plus
   attention's scores and weighted sum, 6 L T C (causal: half of 12 L T C) */
static double gpt2_flops_per_token(const gpt2 *g, int64_t T) {
    return 6.0 * (double)sdl_model_num_params(g->model) + 6.0 * g->cfg.layers * (double)T * g->cfg.channels;
}

/* --device cuda (cuda:N; an nvcc build): the model moves to the GPU before the optimizer is
   made, and each batch is copied there (a step-arena copy). --precision: f32; on the GPU
   also bf16, or fp16 with a loss scaler (see sdl_cuda.h, Precision). */
static sdl_device gpt2_dev;
static sdl_loss_scaler gpt2_scaler;
static bool gpt2_fp16;
static sdl_result gpt2_use_device(const char *device, sdl_model *m, bool tf32, const char *precision) {
    sdl_dtype prec = !strcmp(precision, "f32") ? SDL_F32 : !strcmp(precision, "bf16") ? SDL_BF16 : !strcmp(precision, "fp16") ? SDL_F16 : SDL_DTYPE_DEFAULT;
    if (prec == SDL_DTYPE_DEFAULT) return sdl_fail(SDL_ERR_ARG, "--precision %s: f32, bf16 or fp16", precision);
    if (sdl_device_parse(device, &gpt2_dev) != SDL_OK) return sdl_last_result();
    if (prec != SDL_F32 && gpt2_dev != SDL_CUDA) return sdl_fail(SDL_ERR_ARG, "--precision %s needs --device cuda", precision);
    gpt2_fp16 = prec == SDL_F16;
    if (sdl_model_to(m, gpt2_dev) != SDL_OK) return sdl_last_result();
    if (gpt2_dev != SDL_CUDA) return SDL_OK;
    sdl_cuda_set_tf32(tf32);
    return sdl_autocast(gpt2_dev, prec);
}

/* one training step on the fixed batch; returns the loss (NaN when something failed) */
static float gpt2_train_step(gpt2 *g, sdl_optim *opt, sdl_tensor *ids, sdl_tensor *targets) {
    int64_t T = ids->shape[1];
    sdl_tensor *pos = sdl_arena_tensor(sdl_shape1(T), SDL_I32);
    if (!pos) return NAN;
    for (int64_t t = 0; t < T; t++) sdl_i32(pos)[t] = (int32_t)t;
    sdl_tensor *loss = gpt2_loss(g, sdl_tensor_to(ids, gpt2_dev), sdl_tensor_to(pos, gpt2_dev), sdl_tensor_to(targets, gpt2_dev));
    if (gpt2_fp16) { /* the loss scaler: a step whose gradients overflow is skipped */
        if (sdl_scaled_backward(&gpt2_scaler, loss) != SDL_OK || sdl_scaler_step(&gpt2_scaler, opt) != SDL_OK) return NAN;
    } else if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) {
        return NAN;
    }
    return sdl_item(loss); /* waits for the GPU */
}

/* B x (T + 1) random tokens: ids are the first T of each row, targets the last T */
static void gpt2_random_batch(sdl_tensor *ids, sdl_tensor *targets, int vocab, uint64_t seed) {
    int64_t B = ids->shape[0], T = ids->shape[1];
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t <= T; t++) {
            int32_t tok = (int32_t)(sdl_hash_uniform(seed, 7, (uint64_t)(b * (T + 1) + t)) * (float)vocab) % vocab;
            if (t < T) sdl_i32(ids)[b * T + t] = tok;
            if (t > 0) sdl_i32(targets)[b * T + t - 1] = tok;
        }
}

int main(int argc, char **argv) {
    int batch_size = 4, seq_len = 1024, layers = 12, heads = 12, channels = 768, vocab = 50257;
    int steps = 10, warmup = 2, seed = 42, threads = 0;
    float lr = 3e-4f, weight_decay = 0.1f;
    bool help = false, tf32 = false;
    const char *device = "cpu", *optimizer = "adamw", *precision = "f32", *scheduler = "none";
    sdl_arg args[] = {
        {"batch-size", SDL_ARG_INT, &batch_size, "sequences per step (B)"},
        {"seq-len", SDL_ARG_INT, &seq_len, "tokens per sequence (T, also the position table size)"},
        {"layers", SDL_ARG_INT, &layers, "transformer blocks (L)"},
        {"heads", SDL_ARG_INT, &heads, "attention heads (NH)"},
        {"channels", SDL_ARG_INT, &channels, "width of the residual stream (C)"},
        {"vocab", SDL_ARG_INT, &vocab, "vocabulary size (V)"},
        {"steps", SDL_ARG_INT, &steps, "timed training steps"},
        {"warmup", SDL_ARG_INT, &warmup, "untimed steps first"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"lr-scheduler", SDL_ARG_STRING, &scheduler, "over the warm-up and timed steps: none, cosine, step, clr, ..."},
        {"weight-decay", SDL_ARG_FLOAT, &weight_decay, "weight decay (decoupled for adamw, lamb; L2 for the others; not on biases and norms)"},
        {"optimizer", SDL_ARG_STRING, &optimizer, "adamw (betas 0.9, 0.95), sgd (momentum 0.9), nesterov, adam, lars, lamb"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and tokens"},
        {"threads", SDL_ARG_INT, &threads, "CPU threads (0: all cores)"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (cuda: an nvcc build)"},
        {"tf32", SDL_ARG_BOOL, &tf32, "cuda: GEMMs on TF32 tensor cores"},
        {"precision", SDL_ARG_STRING, &precision, "f32, or with cuda bf16 / fp16 GEMMs (fp16 with a loss scaler)"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (help) { sdl_args_usage(stdout, argv[0], args, nargs); return 0; }
    if (batch_size < 1 || steps < 1 || warmup < 0 || !(lr > 0.0f)) { fprintf(stderr, "--batch-size, --steps and --lr must be positive\n"); return 2; }
    sdl_set_num_threads(threads);

    static gpt2 g; /* big (the block table): not on the stack */
    gpt2_config cfg = {vocab, seq_len, layers, heads, channels};
    bool ok = gpt2_build(&g, cfg, (uint64_t)seed);
    if (ok) gpt2_init(&g);
    if (!ok || gpt2_use_device(device, g.model, tf32, precision) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_model_free(g.model);
        return 1;
    }
    /* AdamW with GPT-2's betas (0.9, 0.95), or another optimizer by name; the rate per step */
    sdl_optim *opt = !strcmp(optimizer, "adamw") ? sdl_adamw(g.model, lr, 0.9f, 0.95f, weight_decay)
                                                 : sdl_optim_by_name(g.model, optimizer, lr, weight_decay);
    if (!opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    sdl_sched_desc sched;
    memset(&sched, 0, sizeof sched);
    sched.base_lr = lr;
    sched.total = warmup + steps;
    if (sdl_sched_by_name(&sched, scheduler) != SDL_OK) { fprintf(stderr, "--lr-scheduler: %s\n", sdl_last_error()); return 2; }
    double flops = gpt2_flops_per_token(&g, seq_len);
    printf("gpt2: %lld parameters (tied LM head), L %d, NH %d, C %d, V %d, B %d, T %d, %s, %s, %s, %d threads\n",
           (long long)sdl_model_num_params(g.model), layers, heads, channels, vocab, batch_size, seq_len, optimizer, device, precision,
           sdl_get_num_threads());

    sdl_tensor *ids = sdl_tensor_new(sdl_shape2(batch_size, seq_len), SDL_I32);
    sdl_tensor *targets = sdl_tensor_new(sdl_shape2(batch_size, seq_len), SDL_I32);
    if (!ids || !targets) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    gpt2_random_batch(ids, targets, vocab, (uint64_t)seed);

    float loss = 0.0f;
    double t0 = sdl_now(), t_step = t0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = sdl_now();
        sdl_optim_set_lr(opt, sdl_sched_lr(&sched, s));
        loss = gpt2_train_step(&g, opt, ids, targets);
        sdl_arena_reset();
        double t1 = sdl_now();
        if (!isfinite(loss)) { fprintf(stderr, "step %d: %s (loss %g)\n", s + 1, sdl_last_error(), (double)loss); return 1; }
        printf("step %d: loss %.4f (%.1f ms)%s\n", s + 1, (double)loss, 1e3 * (t1 - t_step), s < warmup ? " warm-up" : "");
        t_step = t1;
    }
    double dt = sdl_now() - t0, tokens = (double)steps * batch_size * seq_len;
    printf("final loss: %.4f after %d steps\n", (double)loss, warmup + steps);
    if (gpt2_fp16) printf("fp16 loss scale %g, %lld steps skipped (gradient overflow)\n", (double)gpt2_scaler.scale, (long long)gpt2_scaler.skipped);
    printf("tokens/sec: %.1f\n", tokens / dt);
    printf("model TFLOP/s: %.2f (%.3g GFLOP per token, 6 N + 6 L T C)\n", tokens / dt * flops * 1e-12, flops * 1e-9);

    sdl_tensor_free(ids);
    sdl_tensor_free(targets);
    sdl_optim_free(opt);
    sdl_model_free(g.model);
    sdl_arena_release();
    if (gpt2_dev == SDL_CUDA) sdl_cuda_shutdown();
    return 0;
}
