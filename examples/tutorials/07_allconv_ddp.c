/* 07_allconv_ddp.c - JSC days 2-3: 06_allconv.c made data parallel (diff the two): rank 0's
   weights to all, a shard of each epoch per rank, gradients averaged after each backward
   (--fp16-allreduce: sent as fp16), lr x ranks (Horovod's rule), metrics over all ranks.
   examples/slurm/scaling.sh collects "total images/sec:", 08_scaling_plot.c draws it.

   build:  mpicc -O3 -march=native -I. examples/tutorials/07_allconv_ddp.c -o build/07_allconv_ddp -lm -lpthread
   run:    mpirun -np 2 ./build/07_allconv_ddp --epochs 2 --batch-size 64 --lr 0.05 --fp16-allreduce */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

/* one pass over a loader (at most `steps` batches if > 0): trains when opt is given, else
   only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_mpi_ddp *ddp, sdl_device dev, int steps) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while ((steps <= 0 || m.batches < steps) && sdl_loader_next(loader, &x, &y)) {
        sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev));
        y = sdl_tensor_to(y, dev);
        sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
        if (opt && (sdl_backward(loss) != SDL_OK || sdl_mpi_ddp_sync(ddp) != SDL_OK || sdl_optim_step(opt) != SDL_OK)) /* sync: the mean gradients */
            fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    double sum[3] = {m.loss_sum, (double)m.correct, (double)m.count}; /* over all ranks */
    sdl_mpi_sum(sum, 3);
    m.loss_sum = sum[0], m.correct = (int64_t)sum[1], m.count = (int64_t)sum[2];
    return m;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    bool fp16 = false;
    int epochs = 2, batch_size = 64, seed = 42, limit = 0, steps_per_epoch = 0;
    float lr = 0.05f;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (one GPU per rank)"},
        {"fp16-allreduce", SDL_ARG_BOOL, &fp16, "send gradients as fp16"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
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
    ld.shuffle = true, ld.seed = (uint64_t)seed;
    ld.rank = rank, ld.world_size = size; /* one permutation per epoch, split by rank */
    ld.drop_last = true;
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
    if (dev == SDL_CUDA) sdl_mpi_cuda_set_device(); /* GPU = local rank */
    lr = sdl_scale_lr(lr, size, 0, 0);
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, lr, 0.9f, 0.0f, true) : NULL;
    sdl_mpi_ddp_desc dd = {SDL_MPI_MODE_DEFAULT, SDL_MPI_ALGO_DEFAULT, 0.0f, fp16};
    sdl_mpi_ddp *ddp = opt && sdl_mpi_broadcast_model(model, opt, 0) == SDL_OK ? sdl_mpi_ddp_new(model, &dd) : NULL;
    if (!train || !test || !ddp) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (rank == 0) printf("07_allconv_ddp: %lld parameters, %d ranks x batch %d, lr %g, %s%s\n", (long long)sdl_model_num_params(model),
                          size, batch_size, (double)lr, device, fp16 ? ", fp16 gradients" : "");

    double seconds = 0.0, images = 0.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        sdl_loader_set_epoch(train, epoch);
        double t0 = sdl_now();
        sdl_meter m = run(net, train, opt, ddp, dev, steps_per_epoch);
        double dt = sdl_now() - t0;
        sdl_meter v = run(net, test, NULL, NULL, dev, 0);
        if (rank == 0) printf("epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f time %.1fs\n", epoch + 1, epochs,
               sdl_meter_loss(&m), sdl_meter_accuracy(&m), sdl_meter_loss(&v), sdl_meter_accuracy(&v), dt);
        seconds += dt;
        images += (double)m.count;
    }
    sdl_mpi_mean(&seconds, 1); /* images are summed over ranks already */
    if (rank == 0) sdl_print_throughput(stdout, images, seconds);
    sdl_mpi_ddp_free(ddp);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model, optimizer and loaders go with the process */
}
