// test_cpp.cpp - sdl.h with its implementation compiled as C++17 (what nvcc users get),
// training a small MLP for a few steps.
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static void test_cpp_mlp_learns(void) {
    sdl_model *m = sdl_model_new(5);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "0", 8, 16, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "2", 16, 3, true));
    sdl_optim_desc d = {};
    d.kind = SDL_OPTIM_SGD;
    d.lr = 0.1f;
    d.momentum = 0.9f;
    sdl_optim *opt = sdl_optim_new(m, &d);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(24, 8), SDL_F32);
    sdl_tensor_randn(x, 0.0f, 1.0f);
    sdl_tensor *y = test_ids(24, 3);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < 50; step++) {
        sdl_arena_reset();
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
        if (step == 0) first = sdl_item(loss);
        last = sdl_item(loss);
        sdl_backward(loss);
        sdl_optim_step(opt);
        sdl_model_zero_grad(m);
    }
    CHECK(last < 0.5f * first, "loss %g -> %g", first, last);
    sdl_optim_free(opt);
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_model_free(m);
}

int main() {
    RUN(test_cpp_mlp_learns);
    return sdl_test_finish();
}
