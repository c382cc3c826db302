/* fashion_tp.c - the Fashion-MNIST MLP of fashion_cnn.c --model mlp (784-256-128-10), tensor parallel
   (Megatron-LM): fc1 is column-parallel (each rank holds 256/T of its output units), fc2
   row-parallel (the matching 256/T of its inputs), so the hidden layer never leaves its
   rank: one all-reduce of fc2's output forward, none backward (the input needs no
   gradient). fc3 is small and replicated. Every rank sees the whole batch.

   build:  mpicc -O3 -march=native -I. examples/fashion_tp.c -o build/fashion_tp -lm -lpthread
   run:    mpirun -np 2 ./build/fashion_tp --epochs 2 --batch-size 64 --lr 0.05
           (T = the ranks; 256 must divide by it. One process: plain fashion_cnn --model mlp numbers.)
   output: per epoch the loss and test accuracy (rank 0), the bytes each rank handed to
           all-reduces per step against 4 B x 128 floats per image, "total images/sec: X". */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
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
    int rank = sdl_mpi_rank();
    int epochs = 2, batch_size = 64, seed = 42, steps_per_epoch = 0;
    float lr = 0.05f;
    bool help = false;
    const char *data_dir = "/usr/share/datasets/fashion-mnist";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step (every rank sees all of them)"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "SGD rate (momentum 0.9)"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "weights and shuffling"},
        {"data", SDL_ARG_STRING, &data_dir, "folder with the Fashion-MNIST IDX files"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    bool parsed = sdl_args_parse(argc, argv, args, nargs) == SDL_OK, bad = !parsed || epochs < 1 || batch_size < 1;
    if (help || bad) {
        if (rank == 0) {
            if (bad) fprintf(stderr, "%s\n", parsed ? "bad --epochs or --batch-size" : sdl_last_error());
            sdl_args_usage(help ? stdout : stderr, argv[0], args, nargs);
        }
        sdl_mpi_finalize();
        return help ? 0 : 2;
    }
    sdl_set_num_threads(1);
    sdl_dataset train, test;
    if (sdl_load_fashion_mnist(data_dir, true, &train) != SDL_OK || sdl_load_fashion_mnist(data_dir, false, &test) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld); /* the same batches on every rank: no rank/world_size */
    ld.data = &train, ld.batch_size = batch_size, ld.shuffle = true, ld.drop_last = true, ld.seed = (uint64_t)seed;
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f;
    sdl_loader *train_loader = sdl_loader_new(&ld);
    ld.data = &test, ld.batch_size = 1000, ld.shuffle = false, ld.drop_last = false;
    sdl_loader *test_loader = sdl_loader_new(&ld);

    sdl_tp *tp = sdl_tp_new(0); /* every rank of the job in one group */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_tp_column_linear(model, tp, "fc1", 28 * 28, 256, true, false)); /* (B, 256/T) */
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_tp_row_linear(model, tp, "fc2", 256, 128, true));               /* (B, 128), all-reduced */
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc3", 128, 10, true));
    sdl_optim *opt = sdl_sgd(model, lr, 0.9f, 0.0f, false);
    if (!tp || !opt || !train_loader || !test_loader || sdl_last_result() != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0) printf("fashion_tp: T = %d ranks, %lld parameters on each (one process: 235146)\n", sdl_tp_size(tp), (long long)model->param_floats);
    for (int e = 0; e < epochs; e++) {
        sdl_tensor *x, *y;
        double loss = 0, t0 = sdl_now();
        int64_t steps = 0, bytes0 = sdl_tp_bytes(tp);
        while (sdl_loader_next(train_loader, &x, &y) && (!steps_per_epoch || steps < steps_per_epoch)) {
            sdl_tensor *l = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
            if (!l || sdl_backward(l) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
            loss += sdl_item(l), steps++;
            sdl_optim_step(opt);
            sdl_arena_reset();
        }
        double secs = sdl_now() - t0, per_step = (double)(sdl_tp_bytes(tp) - bytes0) / (double)steps;
        double acc = accuracy(net, test_loader);
        if (rank == 0) {
            printf("epoch %d: loss %.4f, test accuracy %.4f, all-reduce bytes per step %.0f (formula 4 x %d x 128 = %d)\n", e + 1,
                   loss / (double)steps, acc, per_step, batch_size, 4 * batch_size * 128);
            printf("total images/sec: %.1f\n", (double)steps * batch_size / secs);
        }
    }
    sdl_optim_free(opt);
    sdl_model_free(model);
    sdl_tp_free(tp);
    sdl_loader_free(train_loader);
    sdl_loader_free(test_loader);
    sdl_dataset_free(&train);
    sdl_dataset_free(&test);
    sdl_mpi_finalize();
    return 0;
}
