/* mpi_test_gpu_api.c - the parts of sdl_mpi.h's GPU section that a CPU build (mpicc) has: the
   srun rendezvous file, bf16 conversion, transport names, and the errors a GPU request gets
   in a build without CUDA (tests/mpi_cuda_test_ddp.cu runs the GPU path itself). Runs under
   the sanitizers too. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static const char *g_argv0;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* rank 0's bytes reach every rank through the file; a file nobody writes times out */
static void test_file_rendezvous(void) {
    char path[600];
    snprintf(path, sizeof path, "%s.id", g_argv0);
    if (g_rank == 0) remove(path);
    quiet_barrier();
    unsigned char want[200], got[200];
    for (int i = 0; i < 200; i++) want[i] = (unsigned char)(sdl_hash_uniform(5, 0, (uint64_t)i) * 256.0f);
    memcpy(got, want, sizeof got);
    if (g_rank != 0) memset(got, 0, sizeof got);
    CHECK(sdl_mpi_file_rendezvous(path, got, sizeof got, g_rank, 20.0) == SDL_OK, "%s", sdl_last_error());
    CHECK(memcmp(got, want, sizeof want) == 0, "rank %d read other bytes", g_rank);
    quiet_barrier();
    if (g_rank == 0) {
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "rb");
        CHECK(f == NULL, "the temporary file %s was left behind", tmp);
        if (f) fclose(f);
        remove(path);
    }
    /* a short file (rank 0 crashed half-way, or another program's) is not taken */
    char shortp[700];
    snprintf(shortp, sizeof shortp, "%s.short", g_argv0);
    if (g_rank == 0) {
        FILE *f = fopen(shortp, "wb");
        if (f) { fwrite(want, 1, 10, f); fclose(f); }
    }
    quiet_barrier();
    if (g_rank != 0) {
        sdl_result r = sdl_mpi_file_rendezvous(shortp, got, sizeof got, g_rank, 0.1);
        CHECK(r == SDL_ERR_COMM && strstr(sdl_last_error(), shortp), "short file: %d '%s'", (int)r, sdl_last_error());
    }
    quiet_barrier();
    if (g_rank == 0) remove(shortp);
    double t0 = MPI_Wtime();
    sdl_result r = sdl_mpi_file_rendezvous("/nonexistent-dir/sdl-id", got, sizeof got, 1, 0.2);
    CHECK(r == SDL_ERR_COMM && strstr(sdl_last_error(), "/nonexistent-dir/sdl-id") && MPI_Wtime() - t0 < 5, "missing: %d '%s'",
          (int)r, sdl_last_error());
    r = sdl_mpi_file_rendezvous("/nonexistent-dir/sdl-id", got, sizeof got, 0, 0.2);
    CHECK(r == SDL_ERR_IO, "rank 0 writing where it cannot: %d '%s'", (int)r, sdl_last_error());
    CHECK(sdl_mpi_file_rendezvous(NULL, got, 4, 0, 1.0) == SDL_ERR_ARG, "NULL path accepted");
    sdl_clear_error();
}

static void test_bf16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sdl_mpi_bf16_to_f32((uint16_t)h);
        if (f == f) bad += sdl_mpi_f32_to_bf16(f) != h;
        else bad += !(sdl_mpi_bf16_to_f32(sdl_mpi_f32_to_bf16(f)) != sdl_mpi_bf16_to_f32(sdl_mpi_f32_to_bf16(f))); /* NaN stays NaN */
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
    /* nearest, ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    CHECK(sdl_mpi_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80 && sdl_mpi_f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82 &&
          sdl_mpi_f32_to_bf16(1.0f + 1.5f / 256) == 0x3f81 && sdl_mpi_f32_to_bf16(-2.0f) == 0xc000, "rounding");
    double worst = 0;
    for (int i = 0; i < 10000; i++) {
        float f = (sdl_hash_uniform(9, 0, (uint64_t)i) - 0.5f) * 1e3f;
        double e = fabs((double)sdl_mpi_bf16_to_f32(sdl_mpi_f32_to_bf16(f)) - f) / fabs((double)f);
        worst = e > worst ? e : worst;
    }
    CHECK(worst <= 1.0 / 256 && worst > 1.0 / 2048, "bf16 relative error %g (want <= 2^-8)", worst);
}

/* a CPU build: GPU requests fail with what to do, CPU training is untouched */
static void test_cpu_build(void) {
    CHECK(sdl_mpi_cuda_set_device() == -1 && strstr(sdl_last_error(), "nvcc"), "set_device: %s", sdl_last_error());
    CHECK(!strcmp(sdl_mpi_transport_name(SDL_MPI_TRANSPORT_NCCL), "nccl") && !strcmp(sdl_mpi_transport_name(SDL_MPI_TRANSPORT_HOST), "host") &&
          !strcmp(sdl_mpi_transport_name(SDL_MPI_TRANSPORT_CUDA_MPI), "cuda-mpi") && !strcmp(sdl_mpi_transport_name((sdl_mpi_transport)9), "?"),
          "transport names");
    sdl_model *m = sdl_model_new(1);
    sdl_linear_layer(m, "fc", 4, 3, true);
    sdl_mpi_gpu_desc gd;
    memset(&gd, 0, sizeof gd);
    gd.bf16 = true;
    CHECK(sdl_mpi_ddp_new_gpu(m, NULL, &gd) == NULL && strstr(sdl_last_error(), "bf16"), "bf16 on a CPU model: %s", sdl_last_error());
    gd.bf16 = false;
    gd.transport = SDL_MPI_TRANSPORT_NCCL; /* ignored for a CPU model */
    sdl_mpi_ddp *d = sdl_mpi_ddp_new_gpu(m, NULL, &gd);
    CHECK(d != NULL && sdl_mpi_ddp_transport(d) == SDL_MPI_TRANSPORT_AUTO, "CPU model with GPU options: %s", sdl_last_error());
    sdl_mpi_ddp_free(d);
    sdl_model_free(m);
    sdl_clear_error();
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    MRUN(test_file_rendezvous);
    MRUN(test_bf16);
    MRUN(test_cpu_build);
    return mpi_test_finish();
}
