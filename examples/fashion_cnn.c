/* fashion_cnn.c - a Fashion-MNIST classifier, the C version of PyTorch's MNIST example
   (examples/mnist/main.py). --model cnn (the default) is that example's network: conv 32,
   conv 64, max-pool, fc 128, fc 10; --model mlp is a 784-256-128-10 multi-layer perceptron,
   PyTorch's "build a model, train it, test it" tutorial. Everything else is the same loop.

   build:  cc -O3 -march=native -I. examples/fashion_cnn.c -o build/fashion_cnn -lm -lpthread
           nvcc -std=c++17 -O2 -x cu -I. examples/fashion_cnn.c -o build/fashion_cnn_cuda -lcublas   (GPU)
   run:    ./build/fashion_cnn --epochs 5 --batch-size 64 --lr 0.01
           ./build/fashion_cnn --model mlp --epochs 5 --batch-size 64 --lr 0.05
   data:   Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or --data DIR
           holding train-images-idx3-ubyte.gz and friends.
   --device cuda (an nvcc build; cuda:N for another GPU) trains on the GPU: the model moves
   there before the optimizer is made, each batch is copied there (sdl_model_to,
   sdl_tensor_to); checkpoints work there too. --optimizer and --lr-scheduler take names
   (sdl_optim_by_name, sdl_sched_by_name).
   Every flag has an underscore twin (--batch_size); --help lists them. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* mean loss and accuracy over a loader, without recording gradients */
static void evaluate(sdl_module *net, sdl_loader *loader, sdl_device dev, double *loss, double *acc) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_tensor *x, *y;
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(loader, &x, &y)) {
        x = sdl_tensor_to(x, dev);
        y = sdl_tensor_to(y, dev);
        sdl_tensor *logits = sdl_forward(net, x);
        sdl_meter_add(&m, sdl_item(sdl_cross_entropy(logits, y, 0.0f)), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    *loss = sdl_meter_loss(&m);
    *acc = sdl_meter_accuracy(&m);
}

/* the model, shapes for a batch of N:
   cnn: (N,1,28,28) conv1 3x3 -> (N,32,26,26) relu -> conv2 3x3 -> (N,64,24,24) relu
        -> max-pool 2 -> (N,64,12,12) -> flatten (N,9216) -> fc1 -> (N,128) relu -> fc2 -> (N,10)
   mlp: (N,1,28,28) flatten -> (N,784) fc1 -> (N,256) relu -> fc2 -> (N,128) relu -> fc3 -> (N,10) */
static sdl_module *fashion_net(sdl_model *model, bool cnn) {
    sdl_module *net = sdl_sequential(model, "");
    if (cnn) {
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 32, 3, 1, 0, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 32, 64, 3, 1, 0, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_max_pool2d_layer(model, 2, 2));
        sdl_seq_add(net, sdl_flatten_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc1", 64 * 12 * 12, 128, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    } else {
        sdl_seq_add(net, sdl_flatten_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc1", 28 * 28, 256, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc2", 256, 128, true));
        sdl_seq_add(net, sdl_relu_layer(model));
        sdl_seq_add(net, sdl_linear_layer(model, "fc3", 128, 10, true));
    }
    return net;
}

int main(int argc, char **argv) {
    int epochs = 5, batch_size = 64, seed = 42, threads = 0, warmup_epochs = 0, limit = 0;
    float weight_decay = 0.0f, lr = 0.0f;
    bool help = false;
    const char *data_dir = "/usr/share/datasets/fashion-mnist", *optimizer = "sgd", *scheduler = "cosine";
    const char *checkpoint = "", *resume = "", *result_file = "", *device = "cpu", *model_name = "cnn";
    sdl_arg args[] = {
        {"model", SDL_ARG_STRING, &model_name, "cnn (conv 32, conv 64, fc 128) or mlp (784-256-128-10)"},
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate (0: 0.01 for cnn, 0.05 for mlp)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, shuffling and augmentation"},
        {"data", SDL_ARG_STRING, &data_dir, "folder with the Fashion-MNIST IDX files"},
        {"threads", SDL_ARG_INT, &threads, "CPU threads (0: all cores)"},
        {"optimizer", SDL_ARG_STRING, &optimizer, "sgd (momentum 0.9), nesterov, adam, adamw, lars, lamb"},
        {"weight-decay", SDL_ARG_FLOAT, &weight_decay, "weight decay (L2; decoupled for adamw, lamb)"},
        {"lr-scheduler", SDL_ARG_STRING, &scheduler, "none, cosine, step (x0.1 at 50% and 75%), clr, step_wise_decay[_with_warmup]"},
        {"warmup-epochs", SDL_ARG_INT, &warmup_epochs, "linear warm-up epochs"},
        {"checkpoint", SDL_ARG_STRING, &checkpoint, "save a .safetensors file here after every epoch"},
        {"resume", SDL_ARG_STRING, &resume, "go on from this checkpoint"},
        {"result-file", SDL_ARG_STRING, &result_file, "per-epoch CSV results"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (cuda: an nvcc build)"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (help) { sdl_args_usage(stdout, argv[0], args, nargs); return 0; }
    sdl_device dev;
    if (sdl_device_parse(device, &dev) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 2; }
    bool cnn = !strcmp(model_name, "cnn");
    if (!cnn && strcmp(model_name, "mlp") != 0) { fprintf(stderr, "--model %s: cnn or mlp\n", model_name); return 2; }
    if (lr == 0.0f) lr = cnn ? 0.01f : 0.05f;
    if (epochs < 1 || batch_size < 1 || !(lr > 0.0f)) { fprintf(stderr, "--epochs, --batch-size and --lr must be positive\n"); return 2; }
    sdl_set_num_threads(threads);

    /* data: 60000 training and 10000 test images of 28 x 28 bytes */
    sdl_dataset train_set, test_set;
    if (sdl_load_fashion_mnist(data_dir, true, &train_set) != SDL_OK ||
        sdl_load_fashion_mnist(data_dir, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n(install Debian's dataset-fashion-mnist or pass --data DIR)\n", sdl_last_error());
        return 1;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc train_desc;
    memset(&train_desc, 0, sizeof train_desc);
    train_desc.data = &train_set;
    train_desc.batch_size = batch_size;
    train_desc.shuffle = true;
    train_desc.seed = (uint64_t)seed;
    train_desc.mean[0] = 0.2860f; /* Fashion-MNIST's pixel mean and std */
    train_desc.std[0] = 0.3530f;
    sdl_loader_desc test_desc = train_desc;
    test_desc.data = &test_set;
    test_desc.shuffle = false;
    sdl_loader *train_loader = sdl_loader_new(&train_desc), *test_loader = sdl_loader_new(&test_desc);

    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = fashion_net(model, cnn);
    if (sdl_model_to(model, dev) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    sdl_optim *opt = sdl_optim_by_name(model, optimizer, lr, weight_decay);
    if (!train_loader || !test_loader || !opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }

    /* the learning rate per epoch */
    sdl_sched_desc sched;
    memset(&sched, 0, sizeof sched);
    sched.base_lr = lr;
    sched.total = epochs;
    sched.warmup = warmup_epochs;
    sched.warmup_start_factor = 0.1f;
    if (sdl_sched_by_name(&sched, scheduler) != SDL_OK) { fprintf(stderr, "--lr-scheduler: %s\n", sdl_last_error()); return 2; }

    int start_epoch = 0;
    if (resume[0]) {
        sdl_checkpoint_info info;
        if (sdl_checkpoint_load(resume, model, opt, &info) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        start_epoch = (int)info.epoch;
        printf("resumed from %s after epoch %d\n", resume, start_epoch);
    } else if (result_file[0]) {
        remove(result_file); /* a fresh run starts a fresh CSV */
    }
    printf("fashion %s: %lld parameters, %lld training images, batch %d, %s lr %g, %s, %d threads\n",
           model_name, (long long)sdl_model_num_params(model), (long long)train_set.n, batch_size, optimizer, (double)lr,
           device, sdl_get_num_threads());

    double train_time = 0.0, test_loss = 0.0, test_acc = 0.0;
    int64_t images = 0;
    sdl_meter meter;
    sdl_meter_reset(&meter);
    for (int epoch = start_epoch; epoch < epochs; epoch++) {
        sdl_optim_set_lr(opt, sdl_sched_lr(&sched, epoch));
        sdl_loader_set_epoch(train_loader, epoch);
        sdl_meter_reset(&meter);
        sdl_progress bar;
        sdl_progress_begin(&bar, stdout, epoch + 1, epochs, sdl_loader_num_batches(train_loader));
        double t0 = sdl_now();
        sdl_tensor *x, *y;
        while (sdl_loader_next(train_loader, &x, &y)) {
            x = sdl_tensor_to(x, dev);
            y = sdl_tensor_to(y, dev);
            sdl_tensor *logits = sdl_forward(net, x);
            sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
            if (sdl_backward(loss) != SDL_OK || !isfinite(sdl_item(loss))) {
                fprintf(stderr, "epoch %d: training failed: %s (loss %g)\n", epoch + 1, sdl_last_error(), (double)sdl_item(loss));
                return 1;
            }
            if (sdl_optim_step(opt) != SDL_OK) { fprintf(stderr, "epoch %d: %s\n", epoch + 1, sdl_last_error()); return 1; }
            sdl_meter_add(&meter, sdl_item(loss), sdl_count_correct(logits, y), y->numel);
            sdl_arena_reset();
            sdl_progress_update(&bar, meter.batches, &meter);
        }
        double dt = sdl_now() - t0;
        train_time += dt;
        images += meter.count;
        evaluate(net, test_loader, dev, &test_loss, &test_acc);
        sdl_epoch_stats stats = {epoch + 1, sdl_meter_loss(&meter), sdl_meter_accuracy(&meter), test_loss, test_acc, opt->lr, dt};
        sdl_progress_end(&bar, &stats);
        if (result_file[0] && sdl_csv_append(result_file, &stats) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
        if (checkpoint[0] && sdl_checkpoint_save(checkpoint, model, opt, epoch + 1) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
    }
    if (start_epoch >= epochs) evaluate(net, test_loader, dev, &test_loss, &test_acc);
    printf("final: test_acc=%.4f test_loss=%.4f train_acc=%.4f epochs=%d time=%.1fs\n", test_acc, test_loss,
           sdl_meter_accuracy(&meter), epochs, train_time);
    sdl_print_throughput(stdout, (double)images, train_time);

    sdl_loader_free(train_loader);
    sdl_loader_free(test_loader);
    sdl_optim_free(opt);
    sdl_model_free(model);
    sdl_dataset_free(&train_set);
    sdl_dataset_free(&test_set);
    sdl_arena_release();
    return 0;
}
