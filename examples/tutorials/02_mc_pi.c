/* 02_mc_pi.c - Monte-Carlo pi (JSC day 1): each rank throws darts at the unit square and
   counts those inside the quarter circle; MPI_Reduce adds the counts on rank 0, MPI_Gather
   brings each rank's own estimate to rank 0 so it can show how they scatter.

   build:  mpicc -O2 -I. examples/tutorials/02_mc_pi.c -o build/02_mc_pi -lm -lpthread
   run:    mpirun -np 4 ./build/02_mc_pi --samples 10000000 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <math.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int samples = 10000000, seed = 42; /* per rank */
    sdl_arg args[] = {{"samples", SDL_ARG_INT, &samples, "darts per rank"},
                      {"seed", SDL_ARG_INT, &seed, "seed (each rank draws its own stream)"}};
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    if (sdl_args_parse(argc, argv, args, 2) != SDL_OK || samples < 1) {
        if (rank == 0) { fprintf(stderr, "%s\n", sdl_last_error()); sdl_args_usage(stderr, argv[0], args, 2); }
        sdl_mpi_finalize();
        return 2;
    }
    double t0 = MPI_Wtime();
    /* dart i of rank r: two numbers from the counter-based generator, stream = rank */
    long long inside = 0;
    for (int i = 0; i < samples; i++) {
        float x = sdl_hash_uniform((uint64_t)seed, 2 * (uint64_t)rank, (uint64_t)i);
        float y = sdl_hash_uniform((uint64_t)seed, 2 * (uint64_t)rank + 1, (uint64_t)i);
        inside += x * x + y * y < 1.0f;
    }
    double mine = 4.0 * (double)inside / samples;
    long long total = 0;
    MPI_Reduce(&inside, &total, 1, MPI_LONG_LONG, MPI_SUM, 0, sdl_mpi_comm());
    double *all = rank == 0 ? (double *)malloc(sizeof(double) * (size_t)size) : NULL;
    MPI_Gather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, sdl_mpi_comm());
    double dt = MPI_Wtime() - t0;
    if (rank == 0) {
        for (int r = 0; r < size; r++) printf("rank %d: pi ~ %.6f\n", r, all[r]);
        double pi = 4.0 * (double)total / ((double)samples * size);
        printf("pi ~ %.8f from %lld darts, error %.2e, %.3f s\n", pi, (long long)samples * size, fabs(pi - 3.14159265358979), dt);
        free(all);
    }
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}
