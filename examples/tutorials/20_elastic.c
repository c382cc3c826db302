/* 20_elastic.c - syllabus: elastic, fault-tolerant training (torchrun style): 07_allconv_ddp.c (diff the
   two) made resumable. Every --checkpoint-every K updates rank 0 writes weights, momentum, update count
   and the loader's place in the epoch (a .tmp file, then renamed: a crash leaves the last one whole). A
   run that finds it goes on from there at any world size: the global batch kept by accumulation, the
   cosine rate from the update count. --stop-after U kills the last rank after update U, as a failure would.
   build:  mpicc -O3 -march=native -I. examples/tutorials/20_elastic.c -o build/20_elastic -lm -lpthread
   run:    tools/sdl_elastic.sh --np 2 -- ./build/20_elastic --checkpoint-every 5 --stop-after 12 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <signal.h>
#include <string.h>
static const char *path = "20_elastic.safetensors"; /* the checkpoint */
static int every, stop_after, resumed;
static sdl_sched_desc sched; /* the rate per update */
/* one pass over a loader (at most `steps` micro-batches if > 0): trains when opt is given, a
   checkpoint every `every` updates, else only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_mpi_ddp *ddp, int64_t steps, int epoch) {
    sdl_meter m = {0.0, 0, 0, 0};
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while ((steps <= 0 || m.batches < steps) && sdl_loader_next(loader, &x, &y)) {
        bool update = opt && sdl_optim_is_update_step(opt); /* else only add up this micro-batch's gradients */
        if (opt) sdl_mpi_ddp_set_sync(ddp, update), sdl_optim_set_lr(opt, sdl_sched_lr(&sched, opt->step));
        sdl_tensor *logits = sdl_forward(net, x);
        sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
        if (opt && (sdl_backward(loss) != SDL_OK || (update && sdl_mpi_ddp_sync(ddp) != SDL_OK) || sdl_optim_step(opt) != SDL_OK))
            fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
        bool save = update && every > 0 && opt->step % every == 0, over = m.batches == steps; /* over: a resume starts the next epoch */
        if (save && sdl_mpi_rank() == 0 && sdl_checkpoint_save_at(path, opt->model, opt, epoch + over, over ? 0 : sdl_loader_samples_done(loader)) != SDL_OK)
            fprintf(stderr, "%s\n", sdl_last_error());
        if (save) sdl_mpi_barrier(); /* the file is whole before anyone goes on */
        if (update && opt->step == stop_after && !resumed && sdl_mpi_rank() == sdl_mpi_size() - 1) raise(SIGKILL); /* mpirun ends the job */
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
    int epochs = 2, batch_size = 64, global_batch = 128, seed = 42, limit = 0;
    float lr = 0.1f;
    const char *data = "/usr/share/datasets/fashion-mnist";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per micro-batch and rank"},
        {"global-batch", SDL_ARG_INT, &global_batch, "images per update at any world size (a multiple of ranks x batch)"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "peak learning rate (cosine to 0 over the run)"},
        {"checkpoint-every", SDL_ARG_INT, &every, "write --checkpoint every K updates, and resume from it (0: never)"},
        {"checkpoint", SDL_ARG_STRING, &path, "the checkpoint file"},
        {"stop-after", SDL_ARG_INT, &stop_after, "kill the last rank after this update (0: never; not after a resume)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_dataset train_set, test_set, test_share;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || batch_size < 1 || global_batch % (size * batch_size) != 0 ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s (--global-batch: a multiple of %d ranks x --batch-size)\n", sdl_last_error(), size);
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
    ld.rank = rank, ld.world_size = size, ld.drop_last = true; /* one permutation per epoch, split by rank */
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_loader_desc td = ld;
    sdl_mpi_dataset_shard(&test_set, &test_share); /* each test image once, at any world size */
    td.data = &test_share, td.shuffle = false, td.drop_last = false, td.rank = td.world_size = 0;
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
    sdl_optim *opt = sdl_sgd(model, lr, 0.9f, 0.0f, true);
    sdl_checkpoint_info at = {0, 0, 0.0f, 0, 0, 0}; /* where the run stands: epoch, images of it done */
    FILE *found = every > 0 ? fopen(path, "rb") : NULL; /* there: resume from it */
    if (found) fclose(found), resumed = 1;
    if (resumed && sdl_checkpoint_load(path, model, opt, &at) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    int accum = opt->desc.accum_steps = global_batch / (size * batch_size); /* this world size's, whatever the file's run used */
    sdl_mpi_ddp *ddp = sdl_mpi_broadcast_model(model, opt, 0) == SDL_OK ? sdl_mpi_ddp_new(model, NULL) : NULL;
    if (!train || !test || !ddp) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    sched.kind = SDL_SCHED_COSINE, sched.base_lr = lr, sched.total = epochs * (sdl_loader_num_batches(train) / accum); /* any world size */
    if (rank == 0) printf("20_elastic: %d ranks x batch %d x %d micro-batches = %d images per update, %lld updates, lr %g cosine\n", size,
                          batch_size, accum, global_batch, (long long)sched.total, (double)lr);
    if (rank == 0 && resumed) printf("resumed: epoch %d after %lld images, update %lld\n", (int)at.epoch + 1, (long long)at.samples, (long long)opt->step);
    for (int epoch = (int)at.epoch; epoch < epochs; epoch++) {
        sdl_loader_seek(train, epoch, epoch == at.epoch ? at.samples : 0); /* a resumed epoch goes on from the next image */
        double t0 = sdl_now();
        sdl_meter m = run(net, train, opt, ddp, sdl_loader_num_batches(train) / accum * accum, epoch); /* whole updates */
        double dt = sdl_now() - t0;
        if (rank == 0) printf("epoch %d/%d: loss %.4f acc %.4f lr %.5f, %lld updates done, time %.1fs\n", epoch + 1, epochs, sdl_meter_loss(&m),
                              sdl_meter_accuracy(&m), (double)opt->lr, (long long)opt->step, dt);
    }
    sdl_meter v = run(net, test, NULL, NULL, 0, 0); /* the same at the end of any run, stopped and resumed or not */
    if (rank == 0) printf("final: val_loss %.4f val_acc %.4f after %lld updates\n", sdl_meter_loss(&v), sdl_meter_accuracy(&v), (long long)opt->step);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model, optimizer, ddp and loaders go with the process */
}
