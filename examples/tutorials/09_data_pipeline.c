/* 09_data_pipeline.c - JSC day 3: where does the time go? 04's dense net learns from
   WebDataset tar shards through sdl_stream (shards shuffled and split by rank, decoded by
   worker threads through a shuffle buffer); each epoch's time splits into loading (waiting
   for a batch), compute (forward, backward, update) and communication (the allreduce of the
   gradients, under mpirun). The net is small, so a batch costs the CPU about what decoding
   it does, as a big net on a GPU would. The pipeline's stages are flags:
     --workers N         decoding threads (the parallel map: decode + normalise)
     --prefetch N        batches decoded ahead while the net computes; 0: none, the training
                         thread decodes each batch when it asks (the same batches either way)
     --shuffle-buffer N  samples each worker shuffles before batching (0: shard order)
     --cache             epoch 1 decodes every shard into RAM (tf.data's cache()), later
                         epochs read batches from there
   SDL_TIMELINE=trace.json writes each rank's timeline too (ui.perfetto.dev draws it).

   data:   /usr/bin/python3 examples/tutorials/make_data.py data
   build:  mpicc -O3 -march=native -I. examples/tutorials/09_data_pipeline.c -o build/09_data_pipeline -lm -lpthread
   run:    mpirun -np 2 ./build/09_data_pipeline --workers 2 --prefetch 4 --shuffle-buffer 1000 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    int epochs = 2, batch_size = 64, seed = 42, steps_per_epoch = 0, workers = 2, prefetch = 2, shuffle_buffer = 1000;
    bool cache = false;
    float lr = 0.1f;
    const char *data = "data/shards/fashion-{000000..000009}.tar", *device = "cpu";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the shards"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step and rank"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate (x ranks)"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"workers", SDL_ARG_INT, &workers, "decoding threads"},
        {"prefetch", SDL_ARG_INT, &prefetch, "batches decoded ahead (0: none)"},
        {"shuffle-buffer", SDL_ARG_INT, &shuffle_buffer, "samples each worker shuffles (0: none)"},
        {"cache", SDL_ARG_BOOL, &cache, "decode every shard once into RAM, then read from there"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"data", SDL_ARG_STRING, &data, "the shards, as name-{000000..000009}.tar"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (one GPU per rank)"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK || prefetch < 0) {
        if (rank == 0) fprintf(stderr, "%s\n", prefetch < 0 ? "--prefetch: 0 or more batches" : sdl_last_error());
        if (rank == 0) sdl_args_usage(stderr, argv[0], args, nargs);
        sdl_mpi_finalize();
        return 2;
    }
    sdl_stream_desc sd; /* the shards of each epoch: shuffled, rank r takes r, r + size, ... */
    memset(&sd, 0, sizeof sd);
    sd.shards = data, sd.batch_size = batch_size, sd.rank = rank, sd.world_size = size, sd.seed = (uint64_t)seed;
    sd.workers = workers, sd.prefetch = cache || !prefetch ? -1 : prefetch, sd.shuffle_buffer = shuffle_buffer; /* sdl's none: -1 */
    sd.shuffle_shards = true, sd.channels = 1, sd.drop_last = true;
    sd.aug.mean[0] = 0.2860f, sd.aug.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_stream *stream = sdl_stream_new(&sd);
    sdl_loader *cached = NULL; sdl_dataset ram; /* --cache: batches (each rank its share) from every sample, decoded */
    sdl_model *model = sdl_model_new((uint64_t)seed); /* (N,1,28,28) -> (N,784) -> fc1 (N,128) -> relu -> fc2 (N,10) */
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 784, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    if (dev == SDL_CUDA) sdl_mpi_cuda_set_device(); /* GPU = local rank */
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, sdl_scale_lr(lr, size, 0, 0), 0.0f, 0.0f, false) : NULL;
    sdl_mpi_ddp_desc dd = {SDL_MPI_MODE_FLAT, SDL_MPI_ALGO_DEFAULT, 0.0f, false}; /* one allreduce after backward */
    sdl_mpi_ddp *ddp = opt && sdl_mpi_broadcast_model(model, opt, 0) == SDL_OK ? sdl_mpi_ddp_new(model, &dd) : NULL;
    if (!stream || !ddp) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (rank == 0) printf("09_data_pipeline: %lld samples, %d ranks x batch %d, %d workers, prefetch %d, shuffle buffer %d, %s, %s\n",
                          (long long)sdl_stream_total_samples(stream), size, batch_size, workers, prefetch, shuffle_buffer,
                          cache ? "cache in RAM" : "no cache", device);
    double images = 0.0, seconds = 0.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        double t[4] = {0.0, 0.0, 0.0, sdl_now()}; /* load, compute, communication, start */
        if (cache && !cached) { /* epoch 1: read and decode everything once */
            sdl_loader_desc ld = {&ram, batch_size, shuffle_buffer > 0, true, (uint64_t)seed, rank, size, prefetch ? prefetch : -1, {0.2860f}, {0.3530f}, 0, false};
            if (sdl_load_shards(data, 1, &ram) != SDL_OK || !(cached = sdl_loader_new(&ld))) { fprintf(stderr, "%s\n", sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
            t[0] = sdl_now() - t[3];
        }
        if (cached) sdl_loader_set_epoch(cached, epoch);
        else if (sdl_stream_epoch(stream) != epoch) sdl_stream_set_position(stream, epoch, 0); /* after a cut epoch */
        sdl_meter m = {0.0, 0, 0, 0};
        sdl_tensor *x, *y;
        for (;;) {
            double t0 = sdl_now();
            sdl_mpi_timeline_begin("load");
            bool more = (steps_per_epoch <= 0 || m.batches < steps_per_epoch) && (cached ? sdl_loader_next(cached, &x, &y) : sdl_stream_next(stream, &x, &y));
            sdl_mpi_timeline_end();
            if (!more) break;
            double t1 = sdl_now();
            sdl_mpi_timeline_begin("compute");
            y = sdl_tensor_to(y, dev);
            sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev)), *loss = sdl_cross_entropy(logits, y, 0.0f);
            if (sdl_backward(loss) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
            sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel); /* sdl_item waits for a GPU */
            sdl_mpi_timeline_end();
            double t2 = sdl_now();
            if (sdl_mpi_ddp_sync(ddp) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error()); /* the allreduce */
            double t3 = sdl_now();
            if (sdl_optim_step(opt) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
            sdl_arena_reset();
            t[0] += t1 - t0, t[1] += t2 - t1 + sdl_now() - t3, t[2] += t3 - t2;
        }
        if (sdl_stream_error(stream) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        t[3] = sdl_now() - t[3];
        double sum[3] = {m.loss_sum, (double)m.correct, (double)m.count}; /* over all ranks */
        sdl_mpi_sum(sum, 3);
        sdl_mpi_mean(t, 4);
        if (rank == 0) printf("epoch %d/%d: loss %.4f acc %.4f images %.0f | load %.2fs compute %.2fs comm %.2fs of %.2fs | %.0f images/s\n", epoch + 1, epochs,
                              sum[0] / sum[2], sum[1] / sum[2], sum[2], t[0], t[1], t[2], t[3], sum[2] / t[3]);
        images += sum[2], seconds += t[3];
    }
    if (rank == 0) sdl_print_throughput(stdout, images, seconds);
    sdl_mpi_ddp_free(ddp);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model, streams and loaders go with the process */
}
