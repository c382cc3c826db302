/* fashion_pipe.c - the Fashion-MNIST MLP of fashion_cnn.c --model mlp (784-256-128-10), pipeline
   parallel: its layers are cut into S stages, one per rank, each batch into M
   micro-batches that flow through the stages (GPipe or 1F1B); with --data-parallel D the
   ranks form D pipelines of S = size / D stages, each on its shard of the batch, and the
   gradients are averaged over the pipelines (a 2-D grid).

   build:  mpicc -O3 -march=native -I. examples/fashion_pipe.c -o build/fashion_pipe -lm -lpthread
   run:    mpirun -np 2 ./build/fashion_pipe --epochs 2 --micro-batches 4 --schedule 1f1b
           mpirun -np 4 ./build/fashion_pipe --data-parallel 2         (2 pipelines of 2 stages)
   flags:  --batch-size is per pipeline; --cuts 3,5 cuts the sequential before children 3
           and 5 (default: balanced by counted FLOPs); --steps-per-epoch N stops early;
           SDL_TIMELINE=trace.json writes each rank's schedule (F0, B0, waits) for Perfetto.
   output: the stages' layers, then per epoch the loss, the test accuracy (every rank
           gathers the whole model), each stage's measured idle share against
           (S-1)/(M+S-1), and "total images/sec: X". */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>

static double accuracy(sdl_module *net, sdl_loader *test) {
    int64_t correct = 0, n = 0;
    sdl_tensor *x, *y;
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(test, &x, &y)) {
        correct += sdl_count_correct(sdl_forward(net, x), y);
        n += y->numel;
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    return n ? (double)correct / (double)n : 0.0;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    int epochs = 2, batch_size = 64, seed = 42, micro = 4, dp = 1, steps_per_epoch = 0;
    float lr = 0.05f;
    bool help = false;
    const char *data_dir = "/usr/share/datasets/fashion-mnist", *schedule = "1f1b", *cuts_arg = "";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step and pipeline"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "SGD rate (momentum 0.9)"},
        {"micro-batches", SDL_ARG_INT, &micro, "M, micro-batches per batch"},
        {"schedule", SDL_ARG_STRING, &schedule, "gpipe or 1f1b"},
        {"data-parallel", SDL_ARG_INT, &dp, "D pipelines of size / D stages"},
        {"cuts", SDL_ARG_STRING, &cuts_arg, "child indices where stages 1.. begin, e.g. 3,5"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "weights and shuffling"},
        {"data", SDL_ARG_STRING, &data_dir, "folder with the Fashion-MNIST IDX files"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    bool parsed = sdl_args_parse(argc, argv, args, nargs) == SDL_OK;
    bool bad = !parsed || epochs < 1 || micro < 1 || batch_size % (micro > 0 ? micro : 1) || dp < 1 || size % dp ||
               (strcmp(schedule, "gpipe") && strcmp(schedule, "1f1b"));
    if (help || bad) {
        if (rank == 0) {
            if (bad) fprintf(stderr, "%s\n", parsed ? "bad --epochs, --micro-batches (must divide --batch-size), --schedule or --data-parallel (must divide the ranks)" : sdl_last_error());
            sdl_args_usage(help ? stdout : stderr, argv[0], args, nargs);
        }
        sdl_mpi_finalize();
        return help ? 0 : 2;
    }
    sdl_set_num_threads(1);
    int S = size / dp, cuts[8], ncuts = 0;
    for (const char *c = cuts_arg; *c && ncuts < 8; c++)
        if (c == cuts_arg || c[-1] == ',') cuts[ncuts++] = atoi(c);
    MPI_Comm pipe, data;
    if (sdl_mpi_grid(S, &pipe, &data) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    int d = rank / S; /* this rank's pipeline: its shard of every batch */

    sdl_dataset train, test;
    if (sdl_load_fashion_mnist(data_dir, true, &train) != SDL_OK || sdl_load_fashion_mnist(data_dir, false, &test) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train, ld.batch_size = batch_size, ld.shuffle = true, ld.drop_last = true, ld.seed = (uint64_t)seed;
    ld.rank = d, ld.world_size = dp, ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f;
    sdl_loader *train_loader = sdl_loader_new(&ld);
    ld.data = &test, ld.batch_size = 1000, ld.shuffle = false, ld.drop_last = false, ld.rank = 0, ld.world_size = 1;
    sdl_loader *test_loader = sdl_loader_new(&ld);

    sdl_model *model = sdl_model_new((uint64_t)seed); /* every rank builds the whole model */
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 28 * 28, 256, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 256, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc3", 128, 10, true));
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = net, pd.sample = sdl_shape3(1, 28, 28), pd.micro_batches = micro;
    pd.schedule = strcmp(schedule, "gpipe") ? SDL_PIPE_1F1B : SDL_PIPE_GPIPE;
    pd.cuts = ncuts ? cuts : NULL, pd.comm = pipe, pd.data_comm = data;
    sdl_pipe *p = sdl_pipe_new(&pd);
    sdl_optim *opt = sdl_sgd(model, lr, 0.9f, 0.0f, false);
    if (!p || !opt || !train_loader || !test_loader) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    int first, end, stage = sdl_pipe_stage(p, &first, &end);
    for (int r = 0; r < size; r++) { /* who runs what, in rank order */
        MPI_Barrier(MPI_COMM_WORLD);
        if (r == rank) printf("rank %d: pipeline %d stage %d of %d, layers %d..%d\n", rank, d, stage, S, first, end - 1), fflush(stdout);
    }
    if (rank == 0) printf("fashion_pipe: %s, M %d micro-batches of %d, %d pipeline(s) x %d stages\n", schedule, micro, batch_size / micro, dp, S);
    double *idle_all = (double *)calloc((size_t)size, sizeof(double));
    for (int e = 0; e < epochs; e++) {
        sdl_tensor *x, *y;
        double loss = 0, idle = 0, t0 = sdl_now();
        int64_t steps = 0;
        while (sdl_loader_next(train_loader, &x, &y) && (!steps_per_epoch || steps < steps_per_epoch)) {
            sdl_pipe_stats st;
            if (sdl_pipe_step(p, x, y, &st) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
            sdl_optim_step(opt);
            sdl_arena_reset();
            loss += st.loss, idle += st.idle, steps++;
        }
        double secs = sdl_now() - t0, mean_idle = idle / (double)steps;
        MPI_Gather(&mean_idle, 1, MPI_DOUBLE, idle_all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        sdl_pipe_gather_params(p);
        double acc = accuracy(net, test_loader);
        if (rank == 0) {
            printf("epoch %d: loss %.4f, test accuracy %.4f, idle per stage (pipeline 0):", e + 1, loss / (double)steps, acc);
            for (int s = 0; s < S; s++) printf(" %.2f", idle_all[s]);
            printf(" (formula %.2f)\n", (double)(S - 1) / (micro + S - 1));
            printf("total images/sec: %.1f\n", (double)steps * batch_size * dp / secs);
        }
    }
    free(idle_all);
    sdl_pipe_free(p);
    sdl_optim_free(opt);
    sdl_model_free(model);
    sdl_loader_free(train_loader);
    sdl_loader_free(test_loader);
    sdl_dataset_free(&train);
    sdl_dataset_free(&test);
    MPI_Comm_free(&pipe);
    MPI_Comm_free(&data);
    sdl_mpi_finalize();
    return 0;
}
