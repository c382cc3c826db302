/* 05_lr_sweep.c - JSC day 2: the FCNet of 04_fcnet.c on normalised input, trained once per
   learning rate of a sweep (same seed, so the same start), to see which rates learn, which
   crawl and which diverge. Prints the test accuracy per rate and draws one curve per rate.

   build:  cc -O3 -march=native -I. examples/tutorials/05_lr_sweep.c -o build/05_lr_sweep -lm -lpthread
   run:    ./build/05_lr_sweep --epochs 5 --lrs 0.001,0.01,0.1,1 --plot lr_sweep.png
   (23_sweep_array.sbatch runs such a sweep as a SLURM job array instead, one job per rate) */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <stdlib.h>
#include <string.h>

/* one pass over a loader: trains when opt is given, else only measures (no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, sdl_device dev) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while (sdl_loader_next(loader, &x, &y)) {
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
    int epochs = 5, batch_size = 64, seed = 42, limit = 0;
    const char *lrs = "0.001,0.01,0.1,1", *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *plot = "";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set, per rate"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lrs", SDL_ARG_STRING, &lrs, "the learning rates to try, comma separated"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling (the same for every rate)"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
        {"plot", SDL_ARG_STRING, &plot, "draw test accuracy per epoch, one curve per rate, into this PNG"},
    };
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, 8) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, 8);
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

    enum { MAX_RATES = 10 };
    float rate[MAX_RATES], *acc = (float *)calloc((size_t)MAX_RATES * (size_t)epochs, sizeof(float));
    char label[MAX_RATES][32];
    sdl_plot_series curves[MAX_RATES];
    int n = 0, best = 0;
    for (const char *p = lrs; *p && n < MAX_RATES; n++) { /* "0.001,0.01" -> 0.001, 0.01 */
        char *end;
        rate[n] = strtof(p, &end);
        if (end == p || rate[n] <= 0.0f) { fprintf(stderr, "--lrs %s: not a list of positive numbers\n", lrs); return 2; }
        p = *end == ',' ? end + 1 : end;
    }
    for (int r = 0; r < n; r++) {
        /* (N,1,28,28) -> flatten (N,784) -> fc1 (N,128) -> relu -> fc2 (N,10); the same start for every rate */
        sdl_model *model = sdl_model_new((uint64_t)seed);
        sdl_module *net = sdl_sequential(model, "");
        sdl_seq_add(net, sdl_flatten_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc1", 784, 128, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
        sdl_optim *opt = sdl_model_to(model, dev) == SDL_OK ? sdl_sgd(model, rate[r], 0.0f, 0.0f, false) : NULL;
        if (!train || !test || !opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        for (int epoch = 0; epoch < epochs; epoch++) {
            sdl_loader_set_epoch(train, epoch);
            run(net, train, opt, dev);
            sdl_meter v = run(net, test, NULL, dev);
            acc[r * epochs + epoch] = (float)sdl_meter_accuracy(&v);
        }
        printf("lr %-8g test_acc=%.4f\n", (double)rate[r], (double)acc[r * epochs + epochs - 1]);
        if (acc[r * epochs + epochs - 1] > acc[best * epochs + epochs - 1]) best = r;
        snprintf(label[r], sizeof label[r], "lr %g", (double)rate[r]);
        sdl_plot_series s = {label[r], acc + r * epochs, NULL, epochs};
        curves[r] = s;
        sdl_optim_free(opt);
        sdl_model_free(model);
    }
    printf("best: lr %g test_acc=%.4f\n", (double)rate[best], (double)acc[best * epochs + epochs - 1]);
    sdl_plot_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.title = "FCNet: learning-rate sweep";
    pd.xlabel = "epoch";
    pd.ylabel = "test accuracy";
    if (plot[0] && sdl_plot_lines(plot, curves, n, &pd) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
    free(acc);
    return 0; /* the loaders go with the process */
}
