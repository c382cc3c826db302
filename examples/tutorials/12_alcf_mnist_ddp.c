/* 12_alcf_mnist_ddp.c - ALCF's data-parallel MNIST (Horovod/DDP versions of PyTorch's mnist
   example) on Fashion-MNIST: conv10-conv20-320-50-10, log_softmax + NLL, SGD momentum 0.5 at
   lr x ranks, weights and optimizer state broadcast from rank 0, a distributed sampler,
   --fp16-allreduce, test metrics over all ranks. Rank 0 writes args_size<N>.json and
   epoch_times_size<N>.csv, and prints the mean epoch time without the first (warm-up).
   build:  mpicc -O3 -march=native -I. examples/tutorials/12_alcf_mnist_ddp.c -o build/12_alcf_mnist_ddp -lm -lpthread
   run:    mpirun -np 2 ./build/12_alcf_mnist_ddp --epochs 3 --lr 0.01 --fp16-allreduce */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

/* one pass: trains when opt is given (rank 0 logs), else tests; the meter sums all ranks */
static sdl_meter run(sdl_model *model, sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_mpi_ddp *ddp, sdl_device dev, int epoch, int log_interval) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_model_train(model, opt != NULL); /* dropout on while training */
    sdl_set_grad_enabled(opt != NULL); /* no tape while testing */
    sdl_tensor *x, *y;
    while (sdl_loader_next(loader, &x, &y)) {
        sdl_tensor *out = sdl_log_softmax(sdl_forward(net, sdl_tensor_to(x, dev)));
        y = sdl_tensor_to(y, dev);
        sdl_tensor *loss = sdl_nll_loss(out, y);
        if (opt && (sdl_backward(loss) != SDL_OK || sdl_mpi_ddp_sync(ddp) != SDL_OK || sdl_optim_step(opt) != SDL_OK)) fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(out, y), y->numel);
        if (opt && sdl_mpi_rank() == 0 && m.batches % log_interval == 1) printf("Train Epoch: %d [%lld/%lld]\tLoss: %.6f\n", epoch,
                   (long long)m.count, (long long)sdl_loader_num_samples(loader), (double)sdl_item(loss));
        sdl_arena_reset();
    }
    double sum[3] = {m.loss_sum, (double)m.correct, (double)m.count}; /* over all ranks */
    sdl_mpi_sum(sum, 3);
    m.loss_sum = sum[0], m.correct = (int64_t)sum[1], m.count = (int64_t)sum[2];
    return m;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size(), batch_size = 64, test_batch_size = 1000, epochs = 3, seed = 42, log_interval = 10, limit = 0;
    float lr = 0.01f, momentum = 0.5f;
    bool fp16 = false;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu";
    sdl_arg args[] = {
        {"batch-size", SDL_ARG_INT, &batch_size, "input batch size for training, per rank"},
        {"test-batch-size", SDL_ARG_INT, &test_batch_size, "input batch size for testing"},
        {"epochs", SDL_ARG_INT, &epochs, "number of epochs to train"},
        {"lr", SDL_ARG_FLOAT, &lr, "learning rate for one rank (times the number of ranks)"},
        {"momentum", SDL_ARG_FLOAT, &momentum, "SGD momentum"},
        {"seed", SDL_ARG_INT, &seed, "random seed"},
        {"log-interval", SDL_ARG_INT, &log_interval, "batches between training log lines"},
        {"fp16-allreduce", SDL_ARG_BOOL, &fp16, "fp16 compression during allreduce"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the (Fashion-)MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (one GPU per rank)"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK || log_interval < 1 ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        if (rank == 0) sdl_args_usage(stderr, argv[0], args, nargs);
        sdl_mpi_finalize();
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc ld; /* DistributedSampler: rank r takes samples r, r + size, ... */
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set, ld.batch_size = batch_size;
    ld.shuffle = true, ld.seed = (uint64_t)seed, ld.rank = rank, ld.world_size = size;
    ld.mean[0] = 0.1307f, ld.std[0] = 0.3081f; /* the example's MNIST normalisation */
    sdl_loader_desc td = ld;
    td.data = &test_set, td.shuffle = false, td.batch_size = test_batch_size;
    sdl_loader *train = sdl_loader_new(&ld), *test = sdl_loader_new(&td);

    /* (N,1,28,28) conv 5x5 -> (N,10,24,24) max-pool 2, relu -> conv 5x5 -> (N,20,8,8) dropout (not Dropout2d's
       channels: elements), max-pool 2, relu -> flatten (N,320) -> fc 50, relu, dropout -> fc 10 -> log_softmax */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 10, 5, 1, 0, true));
    sdl_seq_add(net, sdl_max_pool2d_layer(model, 2, 2));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 10, 20, 5, 1, 0, true));
    sdl_seq_add(net, sdl_dropout_layer(model, 0.5f));
    sdl_seq_add(net, sdl_max_pool2d_layer(model, 2, 2));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 320, 50, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_dropout_layer(model, 0.5f));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 50, 10, true));
    if (dev == SDL_CUDA) sdl_mpi_cuda_set_device(); /* GPU = local rank */
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, lr * (float)size, momentum, 0.0f, false) : NULL;
    sdl_mpi_ddp_desc dd = {SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_DEFAULT, 0.0f, fp16};
    sdl_mpi_ddp *ddp = opt && sdl_mpi_broadcast_model(model, opt, 0) == SDL_OK ? sdl_mpi_ddp_new(model, &dd) : NULL;
    if (!train || !test || !ddp) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    char path[64];
    snprintf(path, sizeof path, "args_size%d.json", size);
    if (rank == 0 && sdl_args_save_json(path, args, nargs) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
    double *times = (double *)calloc((size_t)epochs, sizeof(double)), mean = 0.0;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        sdl_loader_set_epoch(train, epoch); /* train_sampler.set_epoch(epoch) */
        double t0 = sdl_now();
        run(model, net, train, opt, ddp, dev, epoch, log_interval);
        times[epoch - 1] = sdl_now() - t0;
        if (epoch > 1) mean += times[epoch - 1] / (epochs - 1); /* the first epoch warms up */
        sdl_meter v = run(model, net, test, NULL, NULL, dev, epoch, log_interval);
        if (rank == 0) printf("\nTest set: Average loss: %.4f, Accuracy: %lld/%lld (%.2f%%)\n\n", sdl_meter_loss(&v), (long long)v.correct,
                              (long long)v.count, 100.0 * sdl_meter_accuracy(&v));
    }
    snprintf(path, sizeof path, "epoch_times_size%d.csv", size);
    FILE *f = rank == 0 ? fopen(path, "w") : NULL;
    for (int e = 0; f && e < epochs; e++) fprintf(f, "%s%d,%.6f\n", e ? "" : "epoch,time\n", e + 1, times[e]);
    if (f) fclose(f);
    if (rank == 0 && epochs > 1) printf("mean epoch time (skipping the first): %.3f s, written to %s\n", mean, path);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the rest goes with the process */
}
