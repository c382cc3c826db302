/* test_tensor_checks.c - issue 16, point 5: mse_loss's gradient for its targets (gradcheck,
   and only the targets needing one), and the tensor helpers' dtype and device checks
   (sdl_tensor_fill on u8 wrote floats past the buffer; each helper now takes the dtypes it
   can and refuses the rest with an error). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static sdl_tensor *mse_f(sdl_tensor **in, void *ctx) { (void)ctx; return sdl_mse_loss(in[0], in[1]); }
static void mse_ref(double **in, double *out, void *ctx) {
    (void)ctx;
    double s = 0;
    for (int i = 0; i < 12; i++) s += (in[0][i] - in[1][i]) * (in[0][i] - in[1][i]);
    out[0] = s / 12.0;
}

static void test_mse_gradients(void) {
    gc_case both = {0};
    both.name = "mse, input and targets";
    both.nin = 2;
    both.shape[0] = both.shape[1] = sdl_shape2(3, 4);
    both.f = mse_f;
    both.ref = mse_ref;
    CHECK(gradcheck(&both), "mse: both inputs");
    gc_case only_t = both; /* the case that wrote through a NULL gradient */
    only_t.name = "mse, targets only";
    only_t.nodiff[0] = true;
    CHECK(gradcheck(&only_t), "mse: targets only");
    sdl_tensor *x = sdl_arena_tensor(sdl_shape1(3), SDL_F32), *t = sdl_arena_tensor(sdl_shape1(3), SDL_I32);
    CHECK(sdl_mse_loss(x, t) == NULL && strstr(sdl_last_error(), "f32"), "mse took i32 targets: %s", sdl_last_error());
}

static void test_fill_checks_dtype(void) {
    /* a u8 tensor in a heap block with a guard after it: fill writes bytes, not floats */
    sdl_tensor *u = sdl_tensor_new(sdl_shape1(5), SDL_U8);
    CHECK(sdl_tensor_fill(u, 7.0f) == SDL_OK, "%s", sdl_last_error());
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= sdl_u8(u)[i] == 7;
    CHECK(ok, "u8 fill wrote %d %d %d %d %d", sdl_u8(u)[0], sdl_u8(u)[1], sdl_u8(u)[2], sdl_u8(u)[3], sdl_u8(u)[4]);
    CHECK(sdl_tensor_fill(u, 256.0f) == SDL_ERR_ARG, "256 into u8 was accepted");
    CHECK(sdl_tensor_fill(u, 0.5f) == SDL_ERR_ARG, "0.5 into u8 was accepted");
    CHECK(sdl_u8(u)[0] == 7, "a refused fill changed the tensor");
    sdl_tensor *i32 = sdl_tensor_new(sdl_shape1(3), SDL_I32);
    CHECK(sdl_tensor_fill(i32, -4.0f) == SDL_OK && sdl_i32(i32)[2] == -4, "i32 fill: %s", sdl_last_error());
    sdl_tensor *h = sdl_tensor_new(sdl_shape1(3), SDL_BF16);
    CHECK(sdl_tensor_fill(h, 1.0f) == SDL_ERR_ARG && strstr(sdl_last_error(), "bf16"), "bf16 fill: %s", sdl_last_error());
    CHECK(sdl_tensor_fill(NULL, 1.0f) == SDL_ERR_ARG, "NULL fill");
    sdl_tensor *f = sdl_tensor_new(sdl_shape2(2, 2), SDL_F32);
    CHECK(sdl_tensor_fill(f, 1.5f) == SDL_OK && sdl_f32(f)[3] == 1.5f, "f32 fill");
    sdl_tensor_free(u);
    sdl_tensor_free(i32);
    sdl_tensor_free(h);
    sdl_tensor_free(f);
}

static void test_helpers_check_dtype(void) {
    const float src[5] = {1, 2, 3, 4, 5};
    sdl_tensor *u = sdl_tensor_new(sdl_shape1(5), SDL_U8), *f = sdl_tensor_new(sdl_shape1(5), SDL_F32);
    CHECK(sdl_tensor_copy_from(u, src) == SDL_ERR_ARG, "copy_from floats into u8 was accepted");
    CHECK(sdl_tensor_copy_from(f, src) == SDL_OK && sdl_f32(f)[4] == 5.0f, "copy_from: %s", sdl_last_error());
    CHECK(sdl_tensor_copy_from(f, NULL) == SDL_ERR_ARG, "copy_from NULL");
    sdl_u8(u)[0] = 200;
    CHECK(!sdl_all_finite(u) && strstr(sdl_last_error(), "u8"), "all_finite on u8: %s", sdl_last_error());
    sdl_f32(f)[2] = NAN;
    CHECK(!sdl_all_finite(f), "all_finite missed a NaN");
    sdl_f32(f)[2] = 0;
    CHECK(sdl_all_finite(f), "all_finite");
    CHECK(sdl_item(u) == 200.0f, "item of u8");
    sdl_tensor *h = sdl_tensor_new(sdl_shape1(1), SDL_F16);
    CHECK(isnan(sdl_item(h)) && strstr(sdl_last_error(), "f16"), "item of f16: %s", sdl_last_error());
    sdl_clear_error();
    sdl_tensor_uniform(u, 0, 1);
    CHECK(sdl_last_result() == SDL_ERR_ARG && sdl_u8(u)[1] == 0, "tensor_uniform wrote floats into u8");
    sdl_clear_error();
    sdl_tensor_randn(u, 0, 1);
    CHECK(sdl_last_result() == SDL_ERR_ARG && sdl_u8(u)[1] == 0, "tensor_randn wrote floats into u8");
    CHECK(sdl_tensor_requires_grad(u) == SDL_ERR_ARG && u->grad == NULL, "requires_grad on u8 was accepted");
    CHECK(sdl_tensor_new(sdl_shape1(2), (sdl_dtype)42) == NULL && strstr(sdl_last_error(), "dtype 42"), "dtype 42: %s", sdl_last_error());
    CHECK(sdl_arena_tensor_on(sdl_shape1(2), SDL_F32, (sdl_device)9) == NULL && sdl_last_result() == SDL_ERR_DEVICE, "device 9 accepted");
    sdl_tensor_free(u);
    sdl_tensor_free(f);
    sdl_tensor_free(h);
}

/* a tensor that claims to be on the GPU without a GPU backend: every helper refuses it
   instead of writing through its pointer */
static void test_helpers_check_device(void) {
    sdl_tensor fake = *sdl_arena_tensor(sdl_shape1(4), SDL_F32);
    fake.device = SDL_CUDA;
    const float src[4] = {1, 2, 3, 4};
    bool gpu = sdl_get_backend(SDL_CUDA) != NULL;
    if (gpu) { printf("  (a CUDA backend is registered: skipped)\n"); return; }
    CHECK(sdl_tensor_fill(&fake, 1.0f) == SDL_ERR_DEVICE, "fill of a device tensor without its backend");
    CHECK(sdl_tensor_copy_from(&fake, src) == SDL_ERR_DEVICE, "copy_from to a device tensor without its backend");
    CHECK(!sdl_all_finite(&fake) && sdl_last_result() == SDL_ERR_DEVICE, "all_finite of a device tensor");
    CHECK(isnan(sdl_item(&fake)) && sdl_last_result() == SDL_ERR_DEVICE, "item of a device tensor");
    sdl_clear_error();
    sdl_tensor_uniform(&fake, 0, 1);
    CHECK(sdl_last_result() == SDL_ERR_DEVICE, "tensor_uniform of a device tensor");
}

int main(void) {
    RUN(test_mse_gradients);
    RUN(test_fill_checks_dtype);
    RUN(test_helpers_check_dtype);
    RUN(test_helpers_check_device);
    return sdl_test_finish();
}
