/* custom_op.c - write your own differentiable op, check its gradient, train with it.
   The C version of PyTorch's "Defining new autograd functions" tutorial.

   build:  cc -O3 -march=native -I. examples/custom_op.c -o build/custom_op -lm -lpthread
   run:    ./build/custom_op --epochs 300 --lr 0.01 --seed 1

   The op is Swish with a learnable slope, y = x * sigmoid(beta * x) (beta a one-element
   parameter). You write its forward and backward over raw floats; sdl_function_apply puts it
   on the tape like any built-in op, and sdl_gradcheck compares your backward with finite
   differences before you trust it. Then a small network with it learns y = sin(x). */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <math.h>

/* x (any shape), beta (1) -> y like x.  With s = sigmoid(beta x):
   dy/dx = s + beta x s (1 - s),   dy/dbeta = x^2 s (1 - s).
   Forward keeps s for backward (sdl_function_save, like ctx.save_for_backward). */
static sdl_result swish_forward(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)nin;
    const float *x = sdl_f32(in[0]), beta = sdl_f32(in[1])[0];
    float *y = sdl_f32(out), *s = (float *)sdl_function_save(out, (size_t)out->numel * sizeof(float));
    if (!s) return sdl_last_result();
    for (int64_t i = 0; i < out->numel; i++) {
        s[i] = 1.0f / (1.0f + expf(-beta * x[i]));
        y[i] = x[i] * s[i];
    }
    return SDL_OK;
}

static sdl_result swish_backward(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx; (void)nin;
    const float *x = sdl_f32(in[0]), beta = sdl_f32(in[1])[0], *dy = out->grad;
    const float *s = (const float *)sdl_function_saved(out);
    double dbeta = 0.0;
    for (int64_t i = 0; i < out->numel; i++) {
        float ds = s[i] * (1.0f - s[i]);
        if (in[0]->grad) in[0]->grad[i] += dy[i] * (s[i] + beta * x[i] * ds); /* += : grads add up */
        dbeta += (double)dy[i] * x[i] * x[i] * ds;
    }
    if (in[1]->grad) in[1]->grad[0] += (float)dbeta;
    return SDL_OK;
}

static const sdl_function swish = {"swish", swish_forward, swish_backward};

static sdl_tensor *swish_op(sdl_tensor *x, sdl_tensor *beta) {
    sdl_tensor *in[2] = {x, beta};
    return x && beta ? sdl_function_apply(&swish, sdl_tensor_shape(x), 2, in, NULL) : NULL;
}

/* what sdl_gradcheck differentiates: any ops of the inputs, here just ours */
static sdl_tensor *swish_check(void *user, int nin, sdl_tensor *const *in) {
    (void)user; (void)nin;
    return swish_op(in[0], in[1]);
}

int main(int argc, char **argv) {
    int epochs = 300, seed = 1;
    float lr = 0.01f;
    sdl_arg args[] = {{"epochs", SDL_ARG_INT, &epochs, "full-batch steps"},
                      {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "Adam learning rate"},
                      {"seed", SDL_ARG_INT, &seed, "random seed"}};
    if (sdl_args_parse(argc, argv, args, 3) != SDL_OK) { puts(sdl_last_error()); return 2; }

    /* 1. check the gradient on small random inputs */
    sdl_manual_seed((uint64_t)seed);
    sdl_tensor *cx = sdl_tensor_new(sdl_shape2(3, 4), SDL_F32), *cb = sdl_tensor_new(sdl_shape1(1), SDL_F32);
    sdl_tensor_uniform(cx, -2.0f, 2.0f);
    sdl_tensor_uniform(cb, 0.5f, 1.5f);
    sdl_tensor_requires_grad(cx);
    sdl_tensor_requires_grad(cb);
    sdl_tensor *cin[2] = {cx, cb};
    double err;
    bool ok = sdl_gradcheck(swish_check, NULL, 2, cin, NULL, &err);
    printf("gradcheck swish: %s (max |backward - finite difference| %.2g)\n", ok ? "ok" : sdl_last_error(), err);
    sdl_tensor_free(cx);
    sdl_tensor_free(cb);
    if (!ok) return 1;

    /* 2. train 1 -> 32 -> 1 with it on y = sin(x), x in [-3, 3] */
    sdl_model *m = sdl_model_new((uint64_t)seed);
    sdl_module *fc1 = sdl_linear_layer(m, "fc1", 1, 32, true), *fc2 = sdl_linear_layer(m, "fc2", 32, 1, true);
    sdl_tensor *beta = sdl_model_param(m, "beta", sdl_shape1(1), false);
    sdl_f32(beta)[0] = 1.0f;
    sdl_optim *opt = sdl_adam(m, lr, 0.9f, 0.999f, 0.0f);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(64, 1), SDL_F32), *y = sdl_tensor_new(sdl_shape2(64, 1), SDL_F32);
    for (int i = 0; i < 64; i++) {
        sdl_f32(x)[i] = -3.0f + 6.0f * (float)i / 63.0f;
        sdl_f32(y)[i] = sinf(sdl_f32(x)[i]);
    }
    for (int epoch = 1; epoch <= epochs; epoch++) {
        sdl_tensor *loss = sdl_mse_loss(sdl_forward(fc2, swish_op(sdl_forward(fc1, x), beta)), y);
        if (!loss || sdl_backward(loss) != SDL_OK) { puts(sdl_last_error()); return 1; }
        if (epoch == 1 || epoch % 50 == 0 || epoch == epochs)
            printf("epoch %d/%d: loss %.5f beta %.3f\n", epoch, epochs, sdl_item(loss), sdl_f32(beta)[0]);
        sdl_optim_step(opt);
        sdl_arena_reset();
    }
    sdl_optim_free(opt);
    sdl_model_free(m);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    return 0;
}
