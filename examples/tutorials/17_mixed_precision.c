/* 17_mixed_precision.c - syllabus: mixed precision (PyTorch's autocast + GradScaler). 06's
   all-conv net trains twice from the same weights: in f32, then with the convolutions'
   GEMMs reading fp16 (or bf16) copies of their inputs and summing in f32; weights, gradients
   and the optimizer stay f32 (the master weights). fp16's smallest numbers (6e-8) would
   flush small gradients to zero, so the loss is multiplied by a scale before backward and
   the gradients divided by it before the update; an update whose gradients overflowed
   (Inf/NaN) is skipped and the scale halved, growth_interval good ones double it. bf16 has
   f32's range and needs no scale. The CPU computes in f32 only: there the second run says
   so and keeps f32, with the loss scaler. For fp16 GEMMs build with nvcc and use a GPU.

   build:  cc -O3 -march=native -I. examples/tutorials/17_mixed_precision.c -o build/17_mixed_precision -lm -lpthread
           nvcc -std=c++17 -O2 -x cu -I. examples/tutorials/17_mixed_precision.c -o build/17_mixed_precision_cuda -lcublas
   run:    ./build/17_mixed_precision --epochs 2       (GPU: ./build/17_mixed_precision_cuda --device cuda --precision fp16) */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>

/* one pass over a loader (at most `steps` batches if > 0): trains when opt is given (through
   the loss scaler when sc is given), else only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_loss_scaler *sc, sdl_device dev, int steps) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while ((steps <= 0 || m.batches < steps) && sdl_loader_next(loader, &x, &y)) {
        sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev));
        y = sdl_tensor_to(y, dev);
        sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
        sdl_result r = !opt ? SDL_OK : sc ? (sdl_scaled_backward(sc, loss) == SDL_OK ? sdl_scaler_step(sc, opt) : sdl_last_result())
                                          : (sdl_backward(loss) == SDL_OK ? sdl_optim_step(opt) : sdl_last_result());
        if (r != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    return m;
}

int main(int argc, char **argv) {
    int epochs = 2, batch_size = 64, seed = 42, limit = 0, steps_per_epoch = 0, growth_interval = 2000;
    float lr = 0.05f, init_scale = 65536.0f;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *precision = "fp16";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"precision", SDL_ARG_STRING, &precision, "the mixed run's GEMM inputs: fp16 (with the loss scaler) or bf16"},
        {"init-scale", SDL_ARG_FLOAT, &init_scale, "fp16: the loss scale to start from (GradScaler's init_scale)"},
        {"growth-interval", SDL_ARG_INT, &growth_interval, "fp16: good updates in a row that double the scale"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    sdl_dtype mixed = SDL_DTYPE_DEFAULT;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        ((mixed = !strcmp(precision, "fp16") ? SDL_F16 : !strcmp(precision, "bf16") ? SDL_BF16 : SDL_DTYPE_DEFAULT) == SDL_DTYPE_DEFAULT &&
         sdl_fail(SDL_ERR_ARG, "--precision %s: fp16 or bf16", precision)) ||
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
    ld.batch_size = batch_size;
    ld.shuffle = true, ld.seed = (uint64_t)seed;
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_loader_desc td = ld;
    td.data = &test_set, td.shuffle = false;
    sdl_loader *train = sdl_loader_new(&ld), *test = sdl_loader_new(&td);
    if (!train || !test) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }

    double final_loss[2] = {0.0, 0.0};
    for (int pass = 0; pass < 2; pass++) { /* 0: f32, 1: mixed precision; the same start and batches */
        sdl_model *model = sdl_model_new((uint64_t)seed); /* 06's net: (N,1,28,28) -> (N,10) class scores */
        sdl_module *net = sdl_sequential(model, "");
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 16, 3, 1, 1, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 16, 32, 3, 2, 1, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv3", 32, 64, 3, 2, 1, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv4", 64, 10, 1, 1, 0, true));
        sdl_seq_add(net, sdl_global_avg_pool_layer(model));
        sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, lr, 0.9f, 0.0f, true) : NULL;
        if (!opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        const char *label = pass == 0 ? "f32" : precision;
        if (pass == 1 && sdl_autocast(dev, mixed) != SDL_OK) /* torch.autocast(device, dtype) */
            printf("%s: %s\nso the %s run below computes in f32%s\n", device, sdl_last_error(), precision, mixed == SDL_F16 ? ", with the loss scaler" : "");
        sdl_loss_scaler sc = {init_scale, 0.0f, 0.0f, growth_interval, 0, 0, false}; /* GradScaler(init_scale, growth_interval) */
        sdl_loss_scaler *scaler = pass == 1 && mixed == SDL_F16 ? &sc : NULL;
        for (int epoch = 0; epoch < epochs; epoch++) {
            sdl_loader_set_epoch(train, epoch);
            double t0 = sdl_now();
            sdl_meter m = run(net, train, opt, scaler, dev, steps_per_epoch);
            double dt = sdl_now() - t0;
            sdl_meter v = run(net, test, NULL, NULL, dev, 0);
            printf("%-4s epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f time %.1fs", label, epoch + 1, epochs,
                   sdl_meter_loss(&m), sdl_meter_accuracy(&m), sdl_meter_loss(&v), sdl_meter_accuracy(&v), dt);
            if (scaler) printf(" | scale %g, %lld updates skipped", (double)sc.scale, (long long)sc.skipped);
            printf("\n");
            final_loss[pass] = sdl_meter_loss(&v);
        }
        sdl_autocast(dev, SDL_F32);
        sdl_optim_free(opt);
        sdl_model_free(model);
    }
    printf("final val_loss: f32 %.4f, %s %.4f (difference %.4f)\n", final_loss[0], precision, final_loss[1], final_loss[1] - final_loss[0]);
    return 0; /* the loaders go with the process */
}
