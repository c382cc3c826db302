/* 04_fcnet.c - JSC day 2, deep-learning basics: a fully connected net 784-128-10 on
   Fashion-MNIST, fed raw pixel values (0..255) or normalised ones (--normalize), with the
   loss and accuracy curves drawn as PNGs (--plot NAME: NAME_loss.png, NAME_accuracy.png).

   build:  cc -O3 -march=native -I. examples/tutorials/04_fcnet.c -o build/04_fcnet -lm -lpthread
           (the same file with nvcc -std=c++17 -O2 -x cu ... -lcublas also runs --device cuda)
   run:    ./build/04_fcnet --epochs 5 --lr 0.01 --normalize --plot fcnet
   try:    the same without --normalize: raw inputs 255 times larger make the same rate
           diverge (loss nan) or stall; 05_lr_sweep.c then looks for a rate that works. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <stdlib.h>
#include <string.h>

/* the input the net sees: (x/255 - mean)/std from the loader, or raw pixels x * 255 */
static sdl_tensor *input(sdl_tensor *x, bool normalize, sdl_device dev) {
    x = sdl_tensor_to(x, dev);
    return normalize ? x : sdl_scale(x, 255.0f);
}

/* one pass over a loader: trains when opt is given, else only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, bool normalize, sdl_device dev) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while (sdl_loader_next(loader, &x, &y)) {
        sdl_tensor *logits = sdl_forward(net, input(x, normalize, dev));
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
    int epochs = 5, batch_size = 64, seed = 42, limit = 0;
    float lr = 0.01f;
    bool normalize = false;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *plot = "";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate (SGD)"},
        {"normalize", SDL_ARG_BOOL, &normalize, "inputs (x/255 - mean)/std instead of raw 0..255"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
        {"plot", SDL_ARG_STRING, &plot, "write the curves to NAME_loss.png and NAME_accuracy.png"},
    };
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, 9) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, 9);
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set;
    ld.batch_size = batch_size;
    ld.shuffle = true, ld.seed = (uint64_t)seed;
    ld.mean[0] = 0.2860f, ld.std[0] = normalize ? 0.3530f : 0.0f; /* Fashion-MNIST's pixel mean and std; std 0: x = byte/255 */
    sdl_loader_desc td = ld;
    td.data = &test_set, td.shuffle = false;
    sdl_loader *train = sdl_loader_new(&ld), *test = sdl_loader_new(&td);

    /* (N,1,28,28) -> flatten (N,784) -> fc1 (N,128) -> relu -> fc2 (N,10) */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 784, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, lr, 0.0f, 0.0f, false) : NULL;
    if (!train || !test || !opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }

    float *curve = (float *)calloc((size_t)epochs * 4, sizeof(float)); /* loss, val_loss, acc, val_acc */
    double seconds = 0.0, images = 0.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        double t0 = sdl_now();
        sdl_meter m = run(net, train, opt, normalize, dev);
        double dt = sdl_now() - t0;
        sdl_meter v = run(net, test, NULL, normalize, dev);
        float row[4] = {(float)sdl_meter_loss(&m), (float)sdl_meter_loss(&v), (float)sdl_meter_accuracy(&m), (float)sdl_meter_accuracy(&v)};
        for (int k = 0; k < 4; k++) curve[k * epochs + epoch] = row[k];
        printf("epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f time %.1fs\n", epoch + 1, epochs, (double)row[0],
               (double)row[2], (double)row[1], (double)row[3], dt);
        seconds += dt;
        images += (double)m.count;
    }
    printf("final: test_acc=%.4f test_loss=%.4f\n", (double)curve[4 * epochs - 1], (double)curve[2 * epochs - 1]);
    sdl_print_throughput(stdout, images, seconds);
    if (plot[0]) {
        char path[512];
        sdl_plot_series loss[2] = {{"train", curve, NULL, epochs}, {"test", curve + epochs, NULL, epochs}};
        sdl_plot_series acc[2] = {{"train", curve + 2 * epochs, NULL, epochs}, {"test", curve + 3 * epochs, NULL, epochs}};
        sdl_plot_desc pd;
        memset(&pd, 0, sizeof pd);
        pd.title = normalize ? "FCNet, normalised input" : "FCNet, raw input";
        pd.xlabel = "epoch";
        pd.ylabel = "loss";
        snprintf(path, sizeof path, "%s_loss.png", plot);
        sdl_result r = sdl_plot_lines(path, loss, 2, &pd);
        pd.ylabel = "accuracy";
        snprintf(path, sizeof path, "%s_accuracy.png", plot);
        if (r != SDL_OK || sdl_plot_lines(path, acc, 2, &pd) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
    }
    free(curve);
    return 0; /* the model, optimizer and loaders go with the process */
}
