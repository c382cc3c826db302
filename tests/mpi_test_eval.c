/* mpi_test_eval.c - sdl_mpi.h's exact distributed evaluation: shares that cover a dataset
   once (1000 of 1000 at any rank count, where the padded sampler sees 1002 at np 3), and
   predictions gathered back in dataset order equal to one process evaluating everything. */
// mpirun-np: 2 3
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

enum { N = 1000, CLASSES = 10 };
static uint8_t g_images[N * 16];
static int32_t g_labels[N];
static sdl_dataset g_data = {N, 1, 4, 4, CLASSES, g_images, g_labels};

static void make_data(void) {
    for (int i = 0; i < N * 16; i++) g_images[i] = (uint8_t)(sdl_hash_uniform(3, 0, (uint64_t)i) * 256.0f);
    for (int i = 0; i < N; i++) g_labels[i] = i % CLASSES;
}

static void test_shares_cover_once(void) {
    int64_t b, cnt;
    sdl_mpi_shard_range(N, &b, &cnt);
    double v[1] = {(double)cnt};
    CHECK(sdl_mpi_sum(v, 1) == SDL_OK, "%s", sdl_last_error());
    CHECK(v[0] == N, "the shares hold %g samples, want %d", v[0], N);
    /* contiguous and in rank order: rank r starts where rank r-1 ended */
    int64_t ends[16] = {0}, mine = b + cnt;
    MPI_Allgather(&mine, 1, MPI_INT64_T, ends, 1, MPI_INT64_T, MPI_COMM_WORLD);
    CHECK(b == (g_rank ? ends[g_rank - 1] : 0), "rank %d starts at %lld", g_rank, (long long)b);
    CHECK(cnt >= N / g_size && cnt <= N / g_size + 1, "rank %d holds %lld", g_rank, (long long)cnt);
    /* the padded sampler, for comparison: 1002 at np 3 */
    sdl_loader *pad = sdl_loader_new(&(sdl_loader_desc){.data = &g_data, .rank = g_rank, .world_size = g_size, .prefetch = -1});
    double padded = (double)sdl_loader_num_samples(pad);
    sdl_mpi_sum(&padded, 1);
    CHECK(padded == (double)((N + g_size - 1) / g_size * g_size), "padded %g", padded);
    sdl_loader_free(pad);
}

/* each rank evaluates its share with a loader in dataset order; counts add to N, and the
   gathered logits and predictions equal one process's over the whole dataset */
static void test_eval_exact(void) {
    sdl_model *m = sdl_model_new(11);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", 16, CLASSES, true));
    sdl_model_train(m, false);
    sdl_dataset view;
    CHECK(sdl_mpi_dataset_shard(&g_data, &view) == SDL_OK, "%s", sdl_last_error());
    sdl_loader *l = sdl_loader_new(&(sdl_loader_desc){.data = &view, .batch_size = 64, .prefetch = -1});
    float *mine = (float *)calloc((size_t)view.n * CLASSES + 1, sizeof(float)), *all = (float *)calloc(N * CLASSES, sizeof(float));
    int32_t *pm = (int32_t *)calloc((size_t)view.n + 1, sizeof(int32_t)), *pall = (int32_t *)calloc(N, sizeof(int32_t));
    sdl_tensor *x, *y;
    int64_t rows = 0;
    double stats[2] = {0, 0}; /* samples, correct */
    while (sdl_loader_next(l, &x, &y)) {
        sdl_tensor *z = sdl_forward(net, x);
        for (int64_t i = 0; i < z->shape[0]; i++, rows++) {
            int best = 0;
            for (int k = 0; k < CLASSES; k++) {
                mine[rows * CLASSES + k] = sdl_f32(z)[i * CLASSES + k];
                if (sdl_f32(z)[i * CLASSES + k] > sdl_f32(z)[i * CLASSES + best]) best = k;
            }
            pm[rows] = best;
            stats[1] += best == sdl_i32(y)[i];
        }
        sdl_arena_reset();
    }
    stats[0] = (double)rows;
    sdl_mpi_sum(stats, 2);
    CHECK(stats[0] == N, "evaluated %g samples of %d", stats[0], N);
    CHECK(sdl_mpi_allgather_rows(mine, rows, CLASSES * sizeof(float), all, N) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_mpi_allgather_rows(pm, rows, sizeof(int32_t), pall, N) == SDL_OK, "%s", sdl_last_error());
    /* the reference: this process, every sample */
    sdl_tensor *xa = sdl_arena_tensor(sdl_shape4(N, 1, 4, 4), SDL_F32);
    for (int i = 0; i < N * 16; i++) sdl_f32(xa)[i] = (float)g_images[i] / 255.0f;
    sdl_tensor *za = sdl_forward(net, xa);
    double worst = 0;
    int wrong = 0, correct = 0;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 0; k < CLASSES; k++) {
            worst = fmax(worst, fabs((double)all[i * CLASSES + k] - sdl_f32(za)[i * CLASSES + k]));
            if (sdl_f32(za)[i * CLASSES + k] > sdl_f32(za)[i * CLASSES + best]) best = k;
        }
        wrong += best != pall[i];
        correct += best == g_labels[i];
    }
    CHECK(worst <= 1e-5, "gathered logits differ from one process's by %g", worst);
    CHECK(wrong == 0, "%d gathered predictions differ", wrong);
    CHECK(correct == (int)stats[1], "accuracy: %d correct in one process, %g summed", correct, stats[1]);
    /* a wrong total is an error on every rank, not a short copy */
    CHECK(sdl_mpi_allgather_rows(pm, rows, sizeof(int32_t), pall, N - 1) == SDL_ERR_ARG, "a short buffer was accepted");
    free(mine); free(all); free(pm); free(pall);
    sdl_loader_free(l);
    sdl_model_free(m);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    make_data();
    MRUN(test_shares_cover_once);
    MRUN(test_eval_exact);
    return mpi_test_finish();
}
