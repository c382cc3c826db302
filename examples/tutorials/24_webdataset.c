/* 24_webdataset.c - BigData'19: is the loader the bottleneck? WebDataset tar shards
   (name-000000.tar, ...: the members key.jpg and key.cls make one sample) are read by
   sdl_stream: the shard list shuffled each epoch, worker threads decoding through a shuffle
   buffer. First the loader runs alone (every batch read and decoded, nothing trained), then
   06's all-conv net trains from it. --mock trains on a synthetic batch of the same shape
   instead, as many steps (no file read, nothing decoded), as the course's mock loader does.
   Training from the shards as fast as from the mock: the loader keeps up. As slow as the
   loader alone: the loader is the bottleneck (more --workers, faster storage, smaller files).

   data:   /usr/bin/python3 examples/tutorials/make_data.py data   (or any WebDataset shards)
   build:  cc -O3 -march=native -I. examples/tutorials/24_webdataset.c -o build/24_webdataset -lm -lpthread
   run:    ./build/24_webdataset --data 'data/shards/fashion-{000000..000009}.tar' --workers 2
           ./build/24_webdataset --data 'data/shards/fashion-{000000..000009}.tar' --mock */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>

int main(int argc, char **argv) {
    int epochs = 2, batch_size = 64, seed = 42, steps_per_epoch = 0, workers = 2, shuffle_buffer = 1000;
    bool mock = false;
    float lr = 0.05f;
    const char *data = "data/shards/fashion-{000000..000009}.tar", *device = "cpu";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the shards"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"workers", SDL_ARG_INT, &workers, "decoding threads"},
        {"shuffle-buffer", SDL_ARG_INT, &shuffle_buffer, "samples each worker shuffles (0: none)"},
        {"mock", SDL_ARG_BOOL, &mock, "train on a synthetic batch: no I/O, no decoding"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"data", SDL_ARG_STRING, &data, "the shards, as name-{000000..000009}.tar"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    sdl_stream_desc sd;
    memset(&sd, 0, sizeof sd);
    sd.shards = data, sd.batch_size = batch_size, sd.workers = workers, sd.shuffle_buffer = shuffle_buffer;
    sd.shuffle_shards = true, sd.seed = (uint64_t)seed, sd.drop_last = true;
    sd.aug.mean[0] = sd.aug.mean[1] = sd.aug.mean[2] = 0.5f, sd.aug.std[0] = sd.aug.std[1] = sd.aug.std[2] = 0.25f;
    sdl_stream *stream = sdl_stream_new(&sd);
    sdl_tensor *x = NULL, *y = NULL;
    if (!stream || !sdl_stream_next(stream, &x, &y)) { fprintf(stderr, "%s\n", sdl_last_error()); return 2; } /* the first batch: the images' shape */
    int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3], steps = sdl_stream_num_batches(stream);
    if (steps_per_epoch > 0 && steps_per_epoch < steps) steps = steps_per_epoch;
    sdl_tensor *mock_x = sdl_tensor_new(sdl_shape4(batch_size, C, H, W), SDL_F32), *mock_y = sdl_tensor_new(sdl_shape1(batch_size), SDL_I32);
    sdl_tensor_randn(mock_x, 0.0f, 1.0f); /* the mock loader's one batch, served every step */
    for (int i = 0; i < batch_size; i++) sdl_i32(mock_y)[i] = i % 10;
    printf("24_webdataset: %lld samples of %lldx%lldx%lld, batch %d, %lld steps an epoch, %s, %s\n", (long long)sdl_stream_total_samples(stream),
           (long long)C, (long long)H, (long long)W, batch_size, (long long)steps, mock ? "mock loader (no I/O)" : "from the shards", device);

    double load_rate = 0.0; /* images/s of the loader alone: epoch 0 of the stream, nothing trained */
    if (!mock) {
        double t0 = sdl_now(), n = 0.0;
        sdl_stream_set_position(stream, 0, 0);
        for (int64_t s = 0; s < steps && sdl_stream_next(stream, &x, &y); s++) n += (double)y->numel;
        double dt = sdl_now() - t0;
        load_rate = n / dt;
        printf("loader alone: %.0f images in %.2f s, %.0f images/s\n", n, dt, load_rate);
    }

    /* 06's net, on C channels: conv 3x3 -> 16, conv stride 2 -> 32, conv stride 2 -> 64, 1x1 -> 10 maps, global average pool */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", (int)C, 16, 3, 1, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 16, 32, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv3", 32, 64, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv4", 64, 10, 1, 1, 0, true));
    sdl_seq_add(net, sdl_global_avg_pool_layer(model));
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, lr, 0.9f, 0.0f, true) : NULL;
    if (!opt || !mock_x || !mock_y) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }

    double images = 0.0, seconds = 0.0;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        if (!mock && sdl_stream_epoch(stream) != epoch) sdl_stream_set_position(stream, epoch, 0);
        sdl_meter m = {0.0, 0, 0, 0};
        double start = sdl_now(), wait = 0.0;
        for (int64_t s = 0; s < steps; s++) {
            double t0 = sdl_now();
            if (mock) x = mock_x, y = mock_y;
            else if (!sdl_stream_next(stream, &x, &y)) break;
            wait += sdl_now() - t0;
            y = sdl_tensor_to(y, dev);
            sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev)), *loss = sdl_cross_entropy(logits, y, 0.0f);
            if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
            sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
            sdl_arena_reset();
        }
        if (sdl_stream_error(stream) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        double dt = sdl_now() - start;
        printf("epoch %d/%d: loss %.4f acc %.4f, %.0f images/s, %.2f s of %.2f s waiting for batches\n", epoch, epochs, sdl_meter_loss(&m),
               sdl_meter_accuracy(&m), (double)m.count / dt, wait, dt);
        images += (double)m.count, seconds += dt;
    }
    if (mock) printf("training: %.0f images/s on the mock loader; run without --mock to compare\n", images / seconds);
    else printf("training: %.0f images/s from the shards; the loader alone: %.0f images/s (%.1fx)\n", images / seconds, load_rate, load_rate * seconds / images);
    sdl_print_throughput(stdout, images, seconds);
    sdl_stream_free(stream);
    return 0; /* the model and optimizer go with the process */
}
