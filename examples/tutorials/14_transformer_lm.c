/* 14_transformer_lm.c - 13_char_lstm.c with a small GPT in place of the LSTM (diff the two):
   token + position embeddings, pre-LN blocks (x += causal self-attention(ln_1(x)), then
   x += MLP(ln_2(x))), a final layer norm and a head sharing the token table (tied weights)
   predict the next byte at every position. Sampling feeds the last --seq-len bytes back in
   for each new byte (no state to carry: the context is the state).

   build:  cc -O3 -march=native -I. examples/tutorials/14_transformer_lm.c -o build/14_transformer_lm -lm -lpthread
   run:    ./build/14_transformer_lm --steps 1000 --temperature 0.8 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <math.h>
#include <string.h>

/* a byte drawn from softmax(logits / temperature) of the last row of logits (T, V), anywhere */
static int sample(sdl_tensor *logits, float temperature) {
    sdl_tensor *l = sdl_tensor_to(logits, SDL_CPU);
    int64_t v = l->shape[l->ndim - 1];
    float *p = sdl_f32(l) + l->numel - v, top = p[0], sum = 0.0f;
    for (int64_t i = 1; i < v; i++) top = p[i] > top ? p[i] : top;
    for (int64_t i = 0; i < v; i++) sum += p[i] = expf((p[i] - top) / temperature);
    float u = sdl_rand_uniform() * sum;
    int64_t i = 0;
    while (i < v - 1 && (u -= p[i]) > 0.0f) i++;
    return (int)i;
}

enum { LN1, ATTN, LN2, FC, OUT, PARTS, LAYERS = 2, HEADS = 4, CHANNELS = 64 }; /* the model: tables, blocks of these parts, ln_f */
static const char *const part[PARTS] = {"ln_1", "attn", "ln_2", "mlp.fc", "mlp.proj"};
static sdl_module *wte, *wpe, *ln_f, *block[LAYERS][PARTS];
/* ids (B, T) on dev -> logits (B*T, V) */
static sdl_tensor *gpt(sdl_tensor *ids, sdl_device dev) {
    int64_t B = ids->shape[0], T = ids->shape[1], C = wte->weight->shape[1];
    sdl_tensor *pos = sdl_arena_tensor(sdl_shape1(T), SDL_I32); /* 0 .. T-1 */
    for (int64_t t = 0; t < T; t++) sdl_i32(pos)[t] = (int32_t)t;
    sdl_tensor *x = sdl_add(sdl_forward(wte, ids), sdl_forward(wpe, sdl_tensor_to(pos, dev))); /* (B, T, C) */
    for (int l = 0; l < LAYERS; l++) { /* x += causal self-attention of ln_1(x); x += MLP (C -> 4C -> C) of ln_2(x) */
        x = sdl_add(x, sdl_forward(block[l][ATTN], sdl_forward(block[l][LN1], x)));
        x = sdl_add(x, sdl_forward(block[l][OUT], sdl_gelu(sdl_forward(block[l][FC], sdl_forward(block[l][LN2], x)))));
    }
    return sdl_linear(sdl_reshape(sdl_forward(ln_f, x), sdl_shape2(B * T, C)), wte->weight, NULL); /* tied head */
}

int main(int argc, char **argv) {
    int steps = 1000, batch_size = 32, seq_len = 64, print_every = 100, length = 300, seed = 42;
    float lr = 3e-3f, temperature = 0.8f;
    const char *data = "/usr/share/common-licenses/GPL-3", *prime = "The ", *device = "cpu";
    sdl_arg args[] = {
        {"steps", SDL_ARG_INT, &steps, "training steps"}, {"batch-size", SDL_ARG_INT, &batch_size, "windows per step"},
        {"seq-len", SDL_ARG_INT, &seq_len, "bytes per window (the context the model sees)"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "Adam's learning rate"},
        {"print-every", SDL_ARG_INT, &print_every, "print the mean loss every N steps"},
        {"temperature", SDL_ARG_FLOAT, &temperature, "sampling temperature (> 0)"},
        {"length", SDL_ARG_INT, &length, "bytes to sample at the end"}, {"prime", SDL_ARG_STRING, &prime, "text the sample starts from"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, windows and sampling"}, {"data", SDL_ARG_STRING, &data, "a text file to learn"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (attention runs on the CPU for now)"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev = SDL_CPU;
    FILE *f = NULL;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        (!(temperature > 0.0f) && sdl_fail(SDL_ERR_ARG, "--temperature must be > 0")) ||
        (!(f = fopen(data, "rb")) && sdl_fail(SDL_ERR_IO, "cannot open --data %s", data))) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    static unsigned char text[1 << 22]; /* the first 4 MiB of the file */
    long n = (long)fread(text, 1, sizeof text, f);
    fclose(f);
    int id_of[256], vocab = 0; /* byte -> token id (-1: not in the text), and back in byte_of */
    unsigned char byte_of[256];
    for (int b = 0; b < 256; b++) id_of[b] = -1;
    for (long i = 0; i < n; i++) id_of[text[i]] = 0;
    for (int b = 0; b < 256; b++) if (id_of[b] == 0) byte_of[vocab] = (unsigned char)b, id_of[b] = vocab++;
    if (n < seq_len + 2) return fprintf(stderr, "%s: %ld bytes, fewer than --seq-len + 2\n", data, n), 1;
    printf("14_transformer_lm: %s, %ld bytes, vocabulary %d, uniform loss ln(%d) = %.3f\n", data, n, vocab, vocab, log((double)vocab));

    sdl_model *model = sdl_model_new((uint64_t)seed); /* ids (B, T) -> tables (B, T, C) -> blocks -> ln_f -> logits (B*T, V) */
    sdl_mha_desc md = {CHANNELS, HEADS, false, true, true}; /* nn.MultiheadAttention(C, heads, batch_first=True), causal */
    for (int l = 0; l < LAYERS; l++) { /* named h.<l>.<part> */
        char n[PARTS][32];
        for (int i = 0; i < PARTS; i++) snprintf(n[i], sizeof n[i], "h.%d.%s", l, part[i]);
        block[l][LN1] = sdl_layer_norm_layer(model, n[LN1], CHANNELS), block[l][ATTN] = sdl_mha_layer(model, n[ATTN], &md);
        block[l][LN2] = sdl_layer_norm_layer(model, n[LN2], CHANNELS), block[l][FC] = sdl_linear_layer(model, n[FC], CHANNELS, 4 * CHANNELS, true);
        block[l][OUT] = sdl_linear_layer(model, n[OUT], 4 * CHANNELS, CHANNELS, true);
    }
    wte = sdl_embedding_layer(model, "wte", vocab, CHANNELS), wpe = sdl_embedding_layer(model, "wpe", seq_len, CHANNELS);
    ln_f = sdl_layer_norm_layer(model, "ln_f", CHANNELS);
    if (sdl_last_result() == SDL_OK) sdl_tensor_randn(wte->weight, 0.0f, 0.02f), sdl_tensor_randn(wpe->weight, 0.0f, 0.02f); /* GPT-2's init */
    sdl_optim *opt = sdl_last_result() == SDL_OK && sdl_model_to(model, dev) == SDL_OK ? sdl_adam(model, lr, 0.0f, 0.0f, 0.0f) : NULL;
    if (!opt) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
    double sum = 0.0, t0 = sdl_now();
    for (int step = 1; step <= steps; step++) {
        sdl_tensor *x = sdl_arena_tensor(sdl_shape2(batch_size, seq_len), SDL_I32);
        sdl_tensor *y = sdl_arena_tensor(sdl_shape1((int64_t)batch_size * seq_len), SDL_I32);
        for (int b = 0; b < batch_size; b++) /* a random window; y is x shifted by one */
            for (long t = 0, start = (long)(sdl_rand_uniform() * (float)(n - seq_len - 1)); t < seq_len; t++)
                sdl_i32(x)[b * seq_len + t] = id_of[text[start + t]], sdl_i32(y)[b * seq_len + t] = id_of[text[start + t + 1]];
        sdl_tensor *loss = sdl_cross_entropy(gpt(sdl_tensor_to(x, dev), dev), sdl_tensor_to(y, dev), 0.0f);
        if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        sum += sdl_item(loss), sdl_arena_reset();
        if (step % print_every == 0) printf("step %d/%d: loss %.4f (%.1fs)\n", step, steps, sum / print_every, sdl_now() - t0), sum = 0.0;
    }
    /* sampling: text now holds the prime, then each new byte, drawn given the last seq_len bytes */
    int plen = (int)strlen(prime) < seq_len ? (int)strlen(prime) : seq_len;
    for (int i = 0; i < plen; i++) text[i] = id_of[(unsigned char)prime[i]] < 0 ? byte_of[0] : (unsigned char)prime[i];
    printf("sample (temperature %g):\n%.*s", (double)temperature, plen, (const char *)text), sdl_set_grad_enabled(false);
    for (int i = plen ? plen : (text[0] = byte_of[0], 1); i < plen + length && i < (int)sizeof text; i++) {
        int t = i < seq_len ? i : seq_len; /* the context: bytes i - t .. i - 1 */
        sdl_tensor *x = sdl_arena_tensor(sdl_shape2(1, t), SDL_I32);
        for (int j = 0; j < t; j++) sdl_i32(x)[j] = id_of[text[i - t + j]];
        sdl_tensor *logits = gpt(sdl_tensor_to(x, dev), dev); /* (t, V): the last row predicts byte i */
        if (!logits) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        putchar(text[i] = byte_of[sample(logits, temperature)]), sdl_arena_reset();
    }
    printf("\n");
    return 0;
}
