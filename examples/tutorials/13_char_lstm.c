/* 13_char_lstm.c - a character-level language model (Karpathy's char-rnn): each byte of a
   text file is a token; an embedding, an LSTM and a linear head predict the next byte at
   every position (cross entropy over the vocabulary). Training takes random windows of the
   text; at the end the model writes new text one byte at a time, carrying the LSTM's (h, c)
   from step to step and sampling from softmax(logits / temperature): low temperatures pick
   the likely byte, high ones take risks.

   build:  cc -O3 -march=native -I. examples/tutorials/13_char_lstm.c -o build/13_char_lstm -lm -lpthread
   run:    ./build/13_char_lstm --steps 2000 --temperature 0.8 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <math.h>
#include <string.h>

/* a byte drawn from softmax(logits / temperature), logits (1, V) anywhere */
static int sample(sdl_tensor *logits, float temperature) {
    sdl_tensor *l = sdl_tensor_to(logits, SDL_CPU);
    int64_t v = l->numel;
    float *p = sdl_f32(l), top = p[0], sum = 0.0f;
    for (int64_t i = 1; i < v; i++) top = p[i] > top ? p[i] : top;
    for (int64_t i = 0; i < v; i++) sum += p[i] = expf((p[i] - top) / temperature);
    float u = sdl_rand_uniform() * sum;
    int64_t i = 0;
    while (i < v - 1 && (u -= p[i]) > 0.0f) i++;
    return (int)i;
}

int main(int argc, char **argv) {
    int steps = 1000, batch_size = 32, seq_len = 64, hidden = 128, print_every = 100, length = 300, seed = 42;
    float lr = 3e-3f, temperature = 0.8f;
    const char *data = "/usr/share/common-licenses/GPL-3", *prime = "The ", *device = "cpu";
    sdl_arg args[] = {
        {"steps", SDL_ARG_INT, &steps, "training steps"},
        {"batch-size", SDL_ARG_INT, &batch_size, "windows per step"},
        {"seq-len", SDL_ARG_INT, &seq_len, "bytes per window (backpropagation through time)"},
        {"hidden", SDL_ARG_INT, &hidden, "LSTM hidden size"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "Adam's learning rate"},
        {"print-every", SDL_ARG_INT, &print_every, "print the mean loss every N steps"},
        {"temperature", SDL_ARG_FLOAT, &temperature, "sampling temperature (> 0)"},
        {"length", SDL_ARG_INT, &length, "bytes to sample at the end"},
        {"prime", SDL_ARG_STRING, &prime, "text the sample starts from"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, windows and sampling"},
        {"data", SDL_ARG_STRING, &data, "a text file to learn"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (the LSTM runs on the CPU for now)"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
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
    int id_of[256], vocab = 0;
    unsigned char byte_of[256];
    for (int b = 0; b < 256; b++) id_of[b] = -1;
    for (long i = 0; i < n; i++) id_of[text[i]] = 0;
    for (int b = 0; b < 256; b++) if (id_of[b] == 0) byte_of[vocab] = (unsigned char)b, id_of[b] = vocab++;
    if (n < seq_len + 2) return fprintf(stderr, "%s: %ld bytes, fewer than --seq-len + 2\n", data, n), 1;
    printf("13_char_lstm: %s, %ld bytes, vocabulary %d, uniform loss ln(%d) = %.3f\n", data, n, vocab, vocab, log((double)vocab));

    /* ids (B, T) -> embedding (B, T, 32) -> LSTM (B, T, H) -> linear (B*T, V) logits */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *embed = sdl_embedding_layer(model, "embed", vocab, 32);
    sdl_rnn_desc rd = {SDL_RNN_LSTM, 32, hidden, 1, false, true, 0.0f};
    sdl_module *lstm = sdl_rnn_layer(model, "lstm", &rd), *head = sdl_linear_layer(model, "head", hidden, vocab, true);
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_adam(model, lr, 0.0f, 0.0f, 0.0f) : NULL;
    if (!embed || !lstm || !head || !opt) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
    double sum = 0.0, t0 = sdl_now();
    for (int step = 1; step <= steps; step++) {
        sdl_tensor *x = sdl_arena_tensor(sdl_shape2(batch_size, seq_len), SDL_I32);
        sdl_tensor *y = sdl_arena_tensor(sdl_shape1((int64_t)batch_size * seq_len), SDL_I32);
        for (int b = 0; b < batch_size; b++) { /* a random window; y is x shifted by one */
            long start = (long)(sdl_rand_uniform() * (float)(n - seq_len - 1));
            for (int t = 0; t < seq_len; t++) {
                sdl_i32(x)[b * seq_len + t] = id_of[text[start + t]];
                sdl_i32(y)[b * seq_len + t] = id_of[text[start + t + 1]];
            }
        }
        sdl_tensor *h = sdl_forward(lstm, sdl_forward(embed, sdl_tensor_to(x, dev)));
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(head, sdl_reshape(h, sdl_shape2(-1, hidden))), sdl_tensor_to(y, dev), 0.0f);
        if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        sum += sdl_item(loss);
        sdl_arena_reset();
        if (step % print_every == 0 || step == steps) {
            int k = step % print_every ? step % print_every : print_every;
            printf("step %d/%d: loss %.4f (%.1fs)\n", step, steps, sum / k, sdl_now() - t0);
            sum = 0.0;
        }
    }

    /* sampling: the prime, then one byte at a time with the LSTM's state carried along */
    sdl_model_train(model, false), sdl_set_grad_enabled(false);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(1, 1), SDL_I32), *hc = NULL, *cc = NULL;
    int next = id_of[(unsigned char)prime[0]] < 0 ? 0 : id_of[(unsigned char)prime[0]];
    printf("sample (temperature %g):\n%s", (double)temperature, prime);
    for (int i = 1; i < (int)strlen(prime) + length; i++) {
        sdl_i32(x)[0] = next;
        sdl_tensor *h = sdl_rnn_forward(lstm, sdl_forward(embed, sdl_tensor_to(x, dev)), hc, cc, &hc, &cc);
        if (!h) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        int want = i < (int)strlen(prime) ? id_of[(unsigned char)prime[i]] : -1; /* still priming? */
        next = want >= 0 ? want : sample(sdl_forward(head, sdl_reshape(h, sdl_shape2(1, hidden))), temperature);
        if (i >= (int)strlen(prime)) putchar(byte_of[next]);
    }
    printf("\n");
    return 0;
}
