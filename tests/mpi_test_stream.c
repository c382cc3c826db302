/* mpi_test_stream.c - sdl_stream under real ranks: 2 workers per rank, 10 shards of 12
   samples; every rank runs the same number of steps, every sample of an epoch is seen at
   least once over all ranks, and exactly once when the ranks split the shards evenly
   (np 2); epochs reshuffle. Rank 0 writes the shards into a folder all ranks see. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"
#include <unistd.h>

#define NSHARDS 10
#define PER 12

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("%s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    int world;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char dir[64] = "";
    if (g_rank == 0) {
        snprintf(dir, sizeof dir, "%s/sdl_mpi_stream_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) dir[0] = 0;
        for (int s = 0; dir[0] && s < NSHARDS; s++) {
            char pre[128];
            snprintf(pre, sizeof pre, "%s/p%d", dir, s);
            sdl_shard_writer *w = sdl_shard_writer_new(pre, 0);
            for (int i = 0; i < PER; i++) {
                int id = s * PER + i;
                uint8_t px[16];
                for (int k = 0; k < 16; k++) px[k] = (uint8_t)(id + k);
                char key[16];
                snprintf(key, sizeof key, "k%04d", id);
                sdl_shard_writer_add_image(w, key, px, 1, 4, 4, id % 7);
            }
            sdl_shard_writer_close(w);
            char from[160], to[160];
            snprintf(from, sizeof from, "%s-000000.tar", pre);
            snprintf(to, sizeof to, "%s/s-%06d.tar", dir, s);
            rename(from, to);
        }
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    char pat[128];
    snprintf(pat, sizeof pat, "%s/s-{000000..%06d}.tar", dir, NSHARDS - 1);
    sdl_stream_desc d;
    memset(&d, 0, sizeof d);
    d.shards = pat;
    d.batch_size = 5;
    d.rank = g_rank;
    d.world_size = world;
    d.workers = 2;
    d.shuffle_buffer = 6;
    d.shuffle_shards = true;
    d.seed = 3;
    d.channels = 1;
    sdl_stream *s = dir[0] ? sdl_stream_new(&d) : NULL;
    int ok_open = s != NULL;
    if (!s) printf("rank %d: %s\n", g_rank, sdl_last_error());
    mpi_test_collect("stream opens on every rank", ok_open);
    int first[NSHARDS * PER];
    for (int e = 0; e < 2; e++) {
        int seen[NSHARDS * PER] = {0}, order[NSHARDS * PER], n = 0;
        long long steps = 0;
        sdl_tensor *x, *y;
        while (s && sdl_stream_next(s, &x, &y)) {
            steps++;
            for (int64_t i = 0; i < x->shape[0]; i++) {
                int id = (int)lroundf(sdl_f32(x)[i * 16] * 255.0f);
                if (id >= 0 && id < NSHARDS * PER) { seen[id]++; if (n < NSHARDS * PER) order[n++] = id; }
            }
        }
        long long lo = steps, hi = steps;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
        mpi_test_collect("every rank runs the same number of steps", s && lo == hi && lo > 0);
        MPI_Allreduce(MPI_IN_PLACE, seen, NSHARDS * PER, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        int all = 1, exact = 1;
        for (int i = 0; i < NSHARDS * PER; i++) { all &= seen[i] >= 1; exact &= seen[i] == 1; }
        mpi_test_collect("every sample seen (exactly once when the shards split evenly)", all && (NSHARDS % world != 0 || exact));
        if (e == 0) memcpy(first, order, sizeof first);
        else mpi_test_collect("the next epoch reshuffles", memcmp(first, order, sizeof(int) * (size_t)(n < 10 ? n : 10)) != 0);
    }
    sdl_stream_free(s);
    quiet_barrier();
    if (g_rank == 0 && dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) printf("could not remove %s\n", dir);
    }
    return mpi_test_finish();
}
