/* sdl_cuda_test.h - what the CUDA tests share (include after sdl_test.h and sdl_cuda.h) */
#ifndef SDL_CUDA_TEST_H
#define SDL_CUDA_TEST_H

/* n floats from device memory into a new host array (after the stream is done; NaN when the
   copy fails); free() it */
static float *dev_floats(const float *d, int64_t n) {
    float *h = (float *)calloc((size_t)n + 1, sizeof(float));
    if (sdl_cuda_synchronize() != SDL_OK) { printf("  FAIL a kernel before this copy: %s\n", sdl_last_error()); sdl_test_ok = 0; }
    if (cudaMemcpy(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
        for (int64_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

#endif
