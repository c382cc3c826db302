/* 19_pipeline.c - syllabus: pipeline parallelism (GPipe). 06_allconv.c (diff the two) with its
   layers cut into S stages, one per rank (balanced by counted FLOPs), and each batch into M
   micro-batches: stage s runs its layers on a micro-batch and sends the activations on, the
   last computes the loss, gradients flow back. They are the whole batch's, so the numbers are
   06's. A stage idles while the pipe fills and drains: (S-1)/(M+S-1) of a step (the bubble).
   build:  mpicc -O3 -march=native -I. examples/tutorials/19_pipeline.c -o build/19_pipeline -lm -lpthread
   run:    mpirun -np 2 ./build/19_pipeline --epochs 2 --batch-size 64 --micro-batches 4 --lr 0.05 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>
static int64_t correct; /* the last stage counts the right answers as it computes the loss */
static sdl_tensor *loss_fn(void *user, sdl_tensor *out, sdl_tensor *y) {
    (void)user, correct += sdl_count_correct(out, y);
    return sdl_cross_entropy(out, y, 0.0f);
}
/* one pass over a loader (at most `steps` batches if > 0): trains through the pipeline when p
   is given (adding this rank's busy and step seconds to time[0..1]), else measures */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_pipe *p, sdl_optim *opt, int steps, double *time) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(p != NULL);
    sdl_tensor *x, *y;
    while ((steps <= 0 || m.batches < steps) && sdl_loader_next(loader, &x, &y)) {
        sdl_pipe_stats st; /* training: the M micro-batches forward through the stages, then backward */
        int64_t before = correct;
        if (p && (sdl_pipe_step(p, x, y, &st) != SDL_OK || sdl_optim_step(opt) != SDL_OK))
            fprintf(stderr, "%s\n", sdl_last_error()), MPI_Abort(MPI_COMM_WORLD, 1); /* the other stages wait for its messages */
        sdl_tensor *logits = p ? NULL : sdl_forward(net, x); /* measuring: the whole model */
        if (p) sdl_meter_add(&m, (float)st.loss, correct - before, y->numel), time[0] += st.busy_s, time[1] += st.step_s;
        else sdl_meter_add(&m, sdl_item(sdl_cross_entropy(logits, y, 0.0f)), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    if (p) { double c = (double)m.correct; sdl_mpi_sum(&c, 1); m.correct = (int64_t)c; } /* training: counted on the last stage */
    return m;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    int epochs = 2, batch_size = 64, seed = 42, limit = 0, steps_per_epoch = 0, micro = 4;
    float lr = 0.05f;
    const char *data = "/usr/share/datasets/fashion-mnist";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"micro-batches", SDL_ARG_INT, &micro, "M, micro-batches per step (must divide the batch)"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        if (rank == 0) sdl_args_usage(stderr, argv[0], args, nargs);
        sdl_mpi_finalize();
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set;
    ld.batch_size = batch_size;
    ld.shuffle = true, ld.seed = (uint64_t)seed; /* the same batches on every rank */
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_loader_desc td = ld;
    td.data = &test_set, td.shuffle = false;
    sdl_loader *train = sdl_loader_new(&ld), *test = sdl_loader_new(&td);
    /* (N,1,28,28) conv 3x3 -> (N,16,28,28) relu -> conv 3x3 stride 2 -> (N,32,14,14) relu
       -> conv 3x3 stride 2 -> (N,64,7,7) relu -> conv 1x1 -> (N,10,7,7) class maps
       -> global average pool -> (N,10) class scores */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 16, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 16, 32, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv3", 32, 64, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv4", 64, 10, 1, 1, 0, true));
    sdl_seq_add(net, sdl_global_avg_pool_layer(model));
    sdl_optim *opt = sdl_sgd(model, lr, 0.9f, 0.0f, true); /* every rank holds the whole model; only its stage's layers change */
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = net, pd.sample = sdl_shape3(1, 28, 28), pd.micro_batches = micro, pd.schedule = SDL_PIPE_GPIPE, pd.loss = loss_fn;
    sdl_pipe *p = opt ? sdl_pipe_new(&pd) : NULL;
    if (!train || !test || !p) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (rank == 0) printf("19_pipeline: %lld parameters, %d stages, batch %d = %d micro-batches of %d, lr %g\n",
                          (long long)sdl_model_num_params(model), size, batch_size, micro, batch_size / micro, (double)lr);

    double seconds = 0.0, images = 0.0, time[2] = {0.0, 0.0};
    for (int epoch = 0; epoch < epochs; epoch++) {
        sdl_loader_set_epoch(train, epoch);
        double t0 = sdl_now();
        sdl_meter m = run(net, train, p, opt, steps_per_epoch, time);
        double dt = sdl_now() - t0;
        sdl_pipe_gather_params(p); /* every rank's copy of the whole model made current */
        sdl_meter v = run(net, test, NULL, NULL, 0, NULL);
        if (rank == 0) printf("epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f time %.1fs\n", epoch + 1, epochs,
               sdl_meter_loss(&m), sdl_meter_accuracy(&m), sdl_meter_loss(&v), sdl_meter_accuracy(&v), dt);
        seconds += dt;
        images += (double)m.count;
    }
    int first, end, stage = sdl_pipe_stage(p, &first, &end); /* this rank's stage: children [first, end) of the sequential */
    double mine[5] = {(double)stage, (double)first, (double)end - 1, time[0], time[1]}, *all = (double *)calloc(5 * (size_t)size, sizeof(double));
    MPI_Gather(mine, 5, MPI_DOUBLE, all, 5, MPI_DOUBLE, 0, MPI_COMM_WORLD); /* idle: waiting for the pipe to fill and drain, and messages */
    for (double *a = all; rank == 0 && a < all + 5 * size; a += 5)
        printf("stage %g (layers %g-%g): busy %.1fs of %.1fs, idle %.2f\n", a[0], a[1], a[2], a[3], a[4], 1.0 - a[3] / a[4]);
    if (rank == 0) printf("bubble with equal stages: (S-1)/(M+S-1) = %.2f\n", (double)(size - 1) / (micro + size - 1));
    if (rank == 0) sdl_print_throughput(stdout, images, seconds);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model, optimizer, pipe and loaders go with the process */
}
