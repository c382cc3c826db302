/* 01_hello_mpi.c - every rank says who and where it is (JSC day 1, "hello MPI").

   build:  mpicc -O2 -I. examples/tutorials/01_hello_mpi.c -o build/01_hello_mpi -lm -lpthread
   run:    mpirun -np 4 ./build/01_hello_mpi      (or srun -n 4, or plain ./build/01_hello_mpi)

   Ranks print in whatever order the launcher forwards their lines; the barrier only makes
   sure rank 0's summary comes after everyone has printed. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(host, &len);
    printf("hello from rank %d of %d on %s (local rank %d of %d)\n", sdl_mpi_rank(), sdl_mpi_size(), host,
           sdl_mpi_local_rank(), sdl_mpi_local_size());
    fflush(stdout);
    sdl_mpi_barrier();
    if (sdl_mpi_rank() == 0) printf("%d ranks said hello\n", sdl_mpi_size());
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}
