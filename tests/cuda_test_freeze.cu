/* cuda_test_freeze.cu - the GPU optimizer step with frozen parameters and parameter groups
   against the CPU's, for every optimizer with weight decay on: the same values and state,
   and the frozen ones the bits they were. Without a GPU it prints a skip line and
   "0 passed, 0 failed".

   Build:  nvcc -std=c++17 -O2 -Itests -I. tests/cuda_test_freeze.cu -o cuda_test_freeze -lcublas */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#define SDL_CUDA_IMPLEMENTATION
#include "../sdl_cuda.h"
#include "sdl_cuda_test.h"

/* backbone.w decays, backbone.b does not, head.w decays */
static sdl_model *make_model(bool gpu) {
    sdl_model *m = sdl_model_new(3);
    sdl_tensor_uniform(sdl_model_param(m, "backbone.w", sdl_shape2(40, 50), true), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "backbone.b", sdl_shape1(50), false), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "head.w", sdl_shape2(30, 40), true), -1, 1);
    sdl_model_pack(m);
    if (gpu) CHECK(sdl_cuda_model_to_device(m) == SDL_OK, "model_to_device: %s", sdl_last_error());
    return m;
}
/* the same gradients on both: every element, frozen ones included */
static void set_grads(sdl_model *mc, sdl_model *mg, int s) {
    for (int64_t j = 0; j < mc->param_floats; j++) mc->grad_data[j] = (float)(0.3 * mc->param_data[j] + 0.5 * sin(0.37 * (double)j + 1.1 * s));
    cudaMemcpy(mg->grad_data, mc->grad_data, (size_t)mc->param_floats * sizeof(float), cudaMemcpyHostToDevice);
}
static double max_err(const float *dev, const float *host, int64_t n) {
    float *h = dev_floats(dev, n);
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)h[i] - (double)host[i]);
        if (!(d <= e)) e = d;
    }
    free(h);
    return e;
}

static void test_freeze_groups_match_cpu(void) {
    const sdl_optim_kind kinds[5] = {SDL_OPTIM_SGD, SDL_OPTIM_ADAM, SDL_OPTIM_ADAMW, SDL_OPTIM_LARS, SDL_OPTIM_LAMB};
    for (int k = 0; k < 5; k++) {
        sdl_optim_desc d;
        memset(&d, 0, sizeof d);
        d.kind = kinds[k];
        d.lr = k == 0 || k == 3 ? 0.1f : 0.01f;
        d.momentum = k == 0 || k == 3 ? 0.9f : 0.0f;
        d.weight_decay = 0.01f;
        sdl_model *mc = make_model(false), *mg = make_model(true);
        sdl_optim *oc = sdl_optim_new(mc, &d), *og = sdl_optim_new(mg, &d);
        CHECK(oc && og, "kind %d: %s", k, sdl_last_error());
        sdl_param_group g;
        memset(&g, 0, sizeof g);
        g.prefix = "backbone.";
        g.lr_scale = 0.5f;
        CHECK(sdl_optim_add_group(oc, &g) == SDL_OK && sdl_optim_add_group(og, &g) == SDL_OK, "%s", sdl_last_error());
        g.prefix = "head.";
        g.lr_scale = 0.0f;
        g.weight_decay = 0.05f;
        CHECK(sdl_optim_add_group(oc, &g) == SDL_OK && sdl_optim_add_group(og, &g) == SDL_OK, "%s", sdl_last_error());
        for (int s = 0; s < 5; s++) {
            if (s == 2) { sdl_model_freeze(mc, "backbone.w", true); sdl_model_freeze(mg, "backbone.w", true); }
            set_grads(mc, mg, s);
            CHECK(sdl_optim_step(oc) == SDL_OK && sdl_optim_step(og) == SDL_OK, "kind %d step %d: %s", k, s, sdl_last_error());
        }
        double e = max_err(mg->param_data, mc->param_data, mc->param_floats);
        CHECK(e < 1e-5, "kind %d: parameters differ from the CPU by %g", k, e);
        for (int q = 0; q < oc->nstate; q++) {
            double es = max_err(sdl_optim_state_data(og, q), sdl_optim_state_data(oc, q), mc->param_floats);
            CHECK(es < 1e-5, "kind %d: state slot %d differs from the CPU by %g", k, q, es);
        }
        /* frozen for three steps: the GPU's backbone.w is the bits it was after step 2 */
        int64_t nw = mc->params[0]->numel;
        float *before = dev_floats(mg->param_data, nw);
        set_grads(mc, mg, 9);
        sdl_optim_step(og);
        float *after = dev_floats(mg->param_data, nw);
        CHECK(memcmp(before, after, (size_t)nw * sizeof(float)) == 0, "kind %d: a frozen parameter moved on the GPU", k);
        free(before);
        free(after);
        sdl_optim_free(oc); sdl_optim_free(og);
        sdl_model_free(mc); sdl_model_free(mg);
    }
}

int main(void) {
    (void)gradcheck;
    if (!sdl_cuda_available()) {
        printf("skip: no CUDA GPU on this machine (cudaGetDeviceCount found none)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
    if (sdl_cuda_init() != SDL_OK) {
        printf("FAIL sdl_cuda_init: %s\n0 passed, 1 failed\n", sdl_last_error());
        return 1;
    }
    RUN(test_freeze_groups_match_cpu);
    sdl_cuda_shutdown();
    return sdl_test_finish();
}
