/* 16_grad_accum.c - gradient accumulation: 06_allconv.c (diff the two) takes each batch of
   --batch-size images as --accum-steps micro-batches, adding up their gradients and updating
   once, scaled by 1/accum-steps: the same step as one big batch, with the memory of a small
   one. --accum-steps 1 is 06_allconv.c exactly; --steps-per-epoch counts micro-batches. When
   the last batch of an epoch is short, its micro-batches join the next epoch's first update.

   build:  cc -O3 -march=native -I. examples/tutorials/16_grad_accum.c -o build/16_grad_accum -lm -lpthread
   run:    ./build/16_grad_accum --epochs 2 --batch-size 64 --accum-steps 4 --lr 0.05 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>

/* one pass over a loader (at most `steps` batches if > 0): trains when opt is given, else
   only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_device dev, int steps) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while ((steps <= 0 || m.batches < steps) && sdl_loader_next(loader, &x, &y)) {
        sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev));
        y = sdl_tensor_to(y, dev);
        sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
        if (opt && (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK)) fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    return m;
}

int main(int argc, char **argv) {
    int epochs = 2, batch_size = 64, seed = 42, limit = 0, steps_per_epoch = 0, accum_steps = 1;
    float lr = 0.05f;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"accum-steps", SDL_ARG_INT, &accum_steps, "micro-batches per step (batch-size / accum-steps images each)"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || accum_steps < 1 || batch_size % accum_steps || sdl_device_parse(device, &dev) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set;
    ld.batch_size = batch_size / accum_steps; /* a micro-batch */
    ld.shuffle = true, ld.seed = (uint64_t)seed;
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
    sdl_optim_desc od; /* sdl_sgd(model, lr, 0.9f, 0.0f, true), updating on every accum_steps-th sdl_optim_step */
    memset(&od, 0, sizeof od);
    od.kind = SDL_OPTIM_SGD, od.lr = lr, od.momentum = 0.9f, od.nesterov = true, od.accum_steps = accum_steps;
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_optim_new(model, &od) : NULL;
    if (!train || !test || !opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    printf("16_grad_accum: %lld parameters, batch %d = %d x %d, lr %g, %s\n", (long long)sdl_model_num_params(model), batch_size,
           accum_steps, batch_size / accum_steps, (double)lr, device);

    double seconds = 0.0, images = 0.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        sdl_loader_set_epoch(train, epoch);
        double t0 = sdl_now();
        sdl_meter m = run(net, train, opt, dev, steps_per_epoch);
        double dt = sdl_now() - t0;
        sdl_meter v = run(net, test, NULL, dev, 0);
        printf("epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f time %.1fs\n", epoch + 1, epochs,
               sdl_meter_loss(&m), sdl_meter_accuracy(&m), sdl_meter_loss(&v), sdl_meter_accuracy(&v), dt);
        seconds += dt;
        images += (double)m.count;
    }
    sdl_print_throughput(stdout, images, seconds);
    return 0; /* the model, optimizer and loaders go with the process */
}
