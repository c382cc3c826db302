/* resnet18.c - ResNet-18 on CIFAR-10, the C version of the usual PyTorch CIFAR recipe
   (torchvision's resnet18 adapted to 32x32 images as in kuangliu/pytorch-cifar: a 3x3 stem
   conv, no max-pool, four stages of two BasicBlocks, global average pool, fc 10).

   build:  cc -O3 -march=native -I. examples/resnet18.c -o build/resnet18 -lm -lpthread
           nvcc -std=c++17 -O2 -x cu -I. examples/resnet18.c -o build/resnet18_cuda -lcublas   (GPU)
   run:    ./build/resnet18 --data DIR --epochs 30 --batch-size 128 --lr 0.1
           ./build/resnet18 --synthetic --steps 20 --batch-size 32      (a throughput benchmark)
           ./build/resnet18_cuda --device cuda --steps 50 --batch-size 256 --tf32
           ./build/resnet18_cuda --device cuda --steps 50 --batch-size 256 --precision bf16
   data:   the CIFAR-10 binary version (cifar-10-binary.tar.gz from the CIFAR page unpacks to
           cifar-10-batches-bin); --data DIR names it or its parent. Without --data (or with
           --synthetic) the images are random bytes with random labels: for timing only.
   --steps N: the benchmark mode of the courses' synthetic benchmarks: one fixed batch,
           --warmup steps, then N timed steps; prints "total images/sec: X".
   Every flag has an underscore twin (--batch_size); --help lists them. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* ---- the model ----------------------------------------------------------------------------
   BasicBlock, as torchvision's:
       out = relu(bn1(conv1(x)));  out = bn2(conv2(out));  out = relu(out + shortcut(x))
   conv1 is 3x3 with the block's stride, conv2 3x3 stride 1, both without bias. The shortcut
   is x itself, or "downsample" = 1x1 conv (stride) + batch norm where the shape changes.
   The block keeps its layers as children: conv1 bn1 conv2 bn2 [downsample.0 downsample.1]. */
static sdl_tensor *basic_block_forward(sdl_module *block, sdl_tensor *x) {
    sdl_module **l = block->children;
    sdl_tensor *out = sdl_relu(sdl_forward(l[1], sdl_forward(l[0], x)));
    out = sdl_forward(l[3], sdl_forward(l[2], out));
    sdl_tensor *shortcut = block->nchildren == 6 ? sdl_forward(l[5], sdl_forward(l[4], x)) : x;
    return sdl_relu(sdl_add(out, shortcut));
}

static sdl_module *basic_block(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int stride) {
    char n[64];
    sdl_module *block = sdl_module_new(m, "basic_block", name, basic_block_forward);
    if (!block) return NULL;
    snprintf(n, sizeof n, "%s.conv1", name);
    sdl_seq_add(block, sdl_conv2d_layer(m, n, c_in, c_out, 3, stride, 1, false));
    snprintf(n, sizeof n, "%s.bn1", name);
    sdl_seq_add(block, sdl_batch_norm_layer(m, n, c_out));
    snprintf(n, sizeof n, "%s.conv2", name);
    sdl_seq_add(block, sdl_conv2d_layer(m, n, c_out, c_out, 3, 1, 1, false));
    snprintf(n, sizeof n, "%s.bn2", name);
    sdl_seq_add(block, sdl_batch_norm_layer(m, n, c_out));
    if (stride != 1 || c_in != c_out) {
        snprintf(n, sizeof n, "%s.downsample.0", name);
        sdl_seq_add(block, sdl_conv2d_layer(m, n, c_in, c_out, 1, stride, 0, false));
        snprintf(n, sizeof n, "%s.downsample.1", name);
        sdl_seq_add(block, sdl_batch_norm_layer(m, n, c_out));
    }
    /* a layer that failed was not added (sdl_last_error says why) */
    return block->nchildren == (stride != 1 || c_in != c_out ? 6 : 4) ? block : NULL;
}

/* ResNet-18 for 32x32 images, width w (64 in the paper), shapes for a batch of N:
   (N,3,32,32) conv1 3x3 + bn1 + relu -> (N,w,32,32)
   layer1: 2 blocks w    -> (N,w,32,32)      layer2: 2 blocks 2w, stride 2 -> (N,2w,16,16)
   layer3: 2 blocks 4w   -> (N,4w,8,8)       layer4: 2 blocks 8w, stride 2 -> (N,8w,4,4)
   global average pool -> (N,8w) -> fc -> (N,classes).   w = 64: 11,173,962 parameters.
   Parameter names are torchvision's ("layer2.0.downsample.0.weight", "fc.bias"). */
sdl_module *resnet18_new(sdl_model *m, int width, int num_classes) {
    sdl_module *net = sdl_sequential(m, "");
    if (!net) return NULL;
    sdl_seq_add(net, sdl_conv2d_layer(m, "conv1", 3, width, 3, 1, 1, false));
    sdl_seq_add(net, sdl_batch_norm_layer(m, "bn1", width));
    sdl_seq_add(net, sdl_relu_layer(m));
    int64_t c_in = width;
    for (int stage = 0; stage < 4; stage++) {
        int64_t c_out = (int64_t)width << stage;
        for (int b = 0; b < 2; b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, b);
            sdl_seq_add(net, basic_block(m, name, c_in, c_out, stage > 0 && b == 0 ? 2 : 1));
            c_in = c_out;
        }
    }
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc", c_in, num_classes, true));
    return net->nchildren == 13 ? net : NULL; /* 3 stem layers, 8 blocks, pool, fc */
}

/* ---- data ---------------------------------------------------------------------------------- */

/* n random images (3 x 32 x 32 bytes) with random labels 0..9, the same for a given seed */
static sdl_result synthetic_cifar(int64_t n, uint64_t seed, sdl_dataset *out) {
    memset(out, 0, sizeof *out);
    out->n = n; out->c = 3; out->h = 32; out->w = 32; out->num_classes = 10;
    out->images = (uint8_t *)malloc((size_t)n * 3072);
    out->labels = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    if (!out->images || !out->labels) { sdl_dataset_free(out); return sdl_fail(SDL_ERR_OOM, "synthetic data: out of memory"); }
    for (int64_t i = 0; i < n * 3072; i++) out->images[i] = (uint8_t)(sdl_hash_uniform(seed, 1, (uint64_t)i) * 256.0f);
    for (int64_t i = 0; i < n; i++) out->labels[i] = (int32_t)(sdl_hash_uniform(seed, 2, (uint64_t)i) * 10.0f) % 10;
    return SDL_OK;
}

/* ---- the device ----------------------------------------------------------------------------
   --device cuda (cuda:N; an nvcc build): the model moves to the GPU before the optimizer is
   made, and every batch is copied there (a step-arena copy). --precision: f32; on the GPU
   also bf16, or fp16 with a loss scaler (see sdl_cuda.h, Precision). */
static sdl_device resnet_dev;
static sdl_loss_scaler resnet_scaler;
static bool resnet_fp16;
static sdl_result resnet_use_device(const char *device, sdl_model *m, bool tf32, const char *precision) {
    sdl_dtype prec = !strcmp(precision, "f32") ? SDL_F32 : !strcmp(precision, "bf16") ? SDL_BF16 : !strcmp(precision, "fp16") ? SDL_F16 : SDL_DTYPE_DEFAULT;
    if (prec == SDL_DTYPE_DEFAULT) return sdl_fail(SDL_ERR_ARG, "--precision %s: f32, bf16 or fp16", precision);
    if (sdl_device_parse(device, &resnet_dev) != SDL_OK) return sdl_last_result();
    if (prec != SDL_F32 && resnet_dev != SDL_CUDA) return sdl_fail(SDL_ERR_ARG, "--precision %s needs --device cuda", precision);
    resnet_fp16 = prec == SDL_F16;
    if (sdl_model_to(m, resnet_dev) != SDL_OK) return sdl_last_result();
    if (resnet_dev != SDL_CUDA) return SDL_OK;
    sdl_cuda_set_tf32(tf32);
    return sdl_autocast(resnet_dev, prec);
}

/* mean loss and accuracy over a loader in eval mode (batch norm uses its running stats) */
static void resnet_evaluate(sdl_model *model, sdl_module *net, sdl_loader *loader, double *loss, double *acc) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_tensor *x, *y;
    sdl_model_train(model, false);
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(loader, &x, &y)) {
        x = sdl_tensor_to(x, resnet_dev);
        y = sdl_tensor_to(y, resnet_dev);
        sdl_tensor *logits = sdl_forward(net, x);
        sdl_meter_add(&m, sdl_item(sdl_cross_entropy(logits, y, 0.0f)), sdl_count_correct(logits, y), y->numel);
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    sdl_model_train(model, true);
    *loss = sdl_meter_loss(&m);
    *acc = sdl_meter_accuracy(&m);
}

/* one SGD step on (x, y); returns the loss, NaN when something failed */
static float resnet_train_step(sdl_module *net, sdl_optim *opt, sdl_tensor *x, sdl_tensor *y, sdl_tensor **logits_out) {
    sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, resnet_dev));
    sdl_tensor *loss = sdl_cross_entropy(logits, sdl_tensor_to(y, resnet_dev), 0.0f);
    if (resnet_fp16) { /* the loss scaler: a step whose gradients overflow is skipped */
        if (sdl_scaled_backward(&resnet_scaler, loss) != SDL_OK || sdl_scaler_step(&resnet_scaler, opt) != SDL_OK) return NAN;
    } else if (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK) {
        return NAN;
    }
    if (logits_out) *logits_out = logits;
    return sdl_item(loss); /* waits for the GPU */
}

int main(int argc, char **argv) {
    int epochs = 30, batch_size = 128, seed = 42, threads = 0, width = 64, steps = 0, warmup = 5, limit = 0;
    int synthetic_size = 10000;
    float lr = 0.1f, weight_decay = 5e-4f, momentum = 0.9f;
    bool help = false, synthetic = false, tf32 = false;
    const char *data_dir = "", *device = "cpu", *result_file = "", *precision = "f32", *optimizer = "sgd", *scheduler = "cosine";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "peak learning rate"},
        {"optimizer", SDL_ARG_STRING, &optimizer, "sgd (with --momentum), nesterov, adam, adamw, lars, lamb"},
        {"momentum", SDL_ARG_FLOAT, &momentum, "SGD momentum"},
        {"weight-decay", SDL_ARG_FLOAT, &weight_decay, "weight decay (L2; decoupled for adamw, lamb; not on biases and batch norm)"},
        {"lr-scheduler", SDL_ARG_STRING, &scheduler, "over the epochs: cosine, none, step (x0.1 at 50% and 75%), clr, step_wise_decay[_with_warmup]"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, shuffling and augmentation"},
        {"data", SDL_ARG_STRING, &data_dir, "CIFAR-10 binary folder (cifar-10-batches-bin or its parent)"},
        {"synthetic", SDL_ARG_BOOL, &synthetic, "random images and labels instead of CIFAR-10"},
        {"synthetic-size", SDL_ARG_INT, &synthetic_size, "training images in the synthetic set"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"width", SDL_ARG_INT, &width, "channels of the first stage (64: ResNet-18)"},
        {"threads", SDL_ARG_INT, &threads, "CPU threads (0: all cores)"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N (cuda: an nvcc build)"},
        {"tf32", SDL_ARG_BOOL, &tf32, "cuda: GEMMs on TF32 tensor cores"},
        {"precision", SDL_ARG_STRING, &precision, "f32, or with cuda bf16 / fp16 GEMMs (fp16 with a loss scaler)"},
        {"steps", SDL_ARG_INT, &steps, "benchmark: time this many steps on one fixed batch (0: train)"},
        {"warmup", SDL_ARG_INT, &warmup, "benchmark: untimed steps first"},
        {"result-file", SDL_ARG_STRING, &result_file, "per-epoch CSV results"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (help) { sdl_args_usage(stdout, argv[0], args, nargs); return 0; }
    if (epochs < 1 || batch_size < 1 || width < 1 || steps < 0 || warmup < 0 || synthetic_size < 1 || !(lr > 0.0f)) {
        fprintf(stderr, "--epochs, --batch-size, --width, --synthetic-size and --lr must be positive\n");
        return 2;
    }
    sdl_set_num_threads(threads);

    /* the model and the optimizer: SGD with momentum and weight decay, as the CIFAR recipes,
       or another by name */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = resnet18_new(model, width, 10);
    if (!net || resnet_use_device(device, model, tf32, precision) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_model_free(model);
        return 1;
    }
    sdl_optim *opt = !strcmp(optimizer, "sgd") ? sdl_sgd(model, lr, momentum, weight_decay, false)
                                               : sdl_optim_by_name(model, optimizer, lr, weight_decay);
    if (!opt) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    printf("resnet18: width %d, %lld parameters, batch %d, %s, %s, %d threads\n", width,
           (long long)sdl_model_num_params(model), batch_size, optimizer, device, sdl_get_num_threads());

    if (steps > 0) {
        /* benchmark: one fixed random batch, as the synthetic benchmarks of the courses */
        sdl_tensor *x = sdl_tensor_new(sdl_shape4(batch_size, 3, 32, 32), SDL_F32);
        sdl_tensor *y = sdl_tensor_new(sdl_shape1(batch_size), SDL_I32);
        if (!x || !y) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        sdl_tensor_randn(x, 0.0f, 1.0f);
        for (int i = 0; i < batch_size; i++) sdl_i32(y)[i] = (int32_t)(sdl_hash_uniform((uint64_t)seed, 3, (uint64_t)i) * 10.0f) % 10;
        float loss = 0.0f;
        double t0 = sdl_now();
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) t0 = sdl_now();
            loss = resnet_train_step(net, opt, x, y, NULL);
            sdl_arena_reset();
            if (!isfinite(loss)) { fprintf(stderr, "step %d: %s (loss %g)\n", s, sdl_last_error(), (double)loss); return 1; }
            if (warmup + steps <= 20 || s < warmup || (s - warmup + 1) % 10 == 0 || s == warmup + steps - 1)
                printf("step %d: loss %.4f\n", s + 1, (double)loss);
        }
        double dt = sdl_now() - t0;
        printf("%d steps of %d images in %.3f s\n", steps, batch_size, dt);
        sdl_print_throughput(stdout, (double)steps * batch_size, dt);
        sdl_tensor_free(x);
        sdl_tensor_free(y);
    } else {
        /* data: CIFAR-10 (50000 training, 10000 test images) or random bytes of the same shape */
        sdl_dataset train_set, test_set;
        if (!synthetic && data_dir[0]) {
            if (sdl_load_cifar10(data_dir, true, &train_set) != SDL_OK || sdl_load_cifar10(data_dir, false, &test_set) != SDL_OK) {
                fprintf(stderr, "%s\n", sdl_last_error());
                return 1;
            }
        } else {
            printf("synthetic data: %d random training images (pass --data DIR for CIFAR-10)\n", synthetic_size);
            if (synthetic_cifar(synthetic_size, (uint64_t)seed, &train_set) != SDL_OK ||
                synthetic_cifar(synthetic_size / 5 + 1, (uint64_t)seed + 1, &test_set) != SDL_OK) {
                fprintf(stderr, "%s\n", sdl_last_error());
                return 1;
            }
        }
        if (limit > 0 && limit < train_set.n) train_set.n = limit;
        if (limit > 0 && limit < test_set.n) test_set.n = limit;
        sdl_loader_desc train_desc;
        memset(&train_desc, 0, sizeof train_desc);
        train_desc.data = &train_set;
        train_desc.batch_size = batch_size;
        train_desc.shuffle = true;
        train_desc.seed = (uint64_t)seed;
        const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f}; /* CIFAR-10's */
        for (int c = 0; c < 3; c++) { train_desc.mean[c] = mean[c]; train_desc.std[c] = std[c]; }
        sdl_loader_desc test_desc = train_desc;
        test_desc.data = &test_set;
        test_desc.shuffle = false;
        train_desc.pad_crop = 4; /* RandomCrop(32, padding=4) and RandomHorizontalFlip */
        train_desc.hflip = true;
        sdl_loader *train_loader = sdl_loader_new(&train_desc), *test_loader = sdl_loader_new(&test_desc);
        if (!train_loader || !test_loader) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        if (result_file[0]) remove(result_file);

        /* the learning rate per epoch: by default cosine decay (CosineAnnealingLR) */
        sdl_sched_desc sched;
        memset(&sched, 0, sizeof sched);
        sched.base_lr = lr;
        sched.total = epochs;
        if (sdl_sched_by_name(&sched, scheduler) != SDL_OK) { fprintf(stderr, "--lr-scheduler: %s\n", sdl_last_error()); return 2; }

        double train_time = 0.0, test_loss = 0.0, test_acc = 0.0;
        int64_t images = 0;
        sdl_meter meter;
        sdl_meter_reset(&meter);
        for (int epoch = 0; epoch < epochs; epoch++) {
            sdl_optim_set_lr(opt, sdl_sched_lr(&sched, epoch));
            sdl_meter_reset(&meter);
            sdl_progress bar;
            sdl_progress_begin(&bar, stdout, epoch + 1, epochs, sdl_loader_num_batches(train_loader));
            double t0 = sdl_now();
            sdl_tensor *x, *y, *logits = NULL;
            while (sdl_loader_next(train_loader, &x, &y)) {
                float loss = resnet_train_step(net, opt, x, y, &logits);
                if (!isfinite(loss)) { fprintf(stderr, "epoch %d: %s (loss %g)\n", epoch + 1, sdl_last_error(), (double)loss); return 1; }
                sdl_meter_add(&meter, loss, sdl_count_correct(logits, y), y->numel);
                sdl_arena_reset();
                sdl_progress_update(&bar, meter.batches, &meter);
            }
            double dt = sdl_now() - t0;
            train_time += dt;
            images += meter.count;
            resnet_evaluate(model, net, test_loader, &test_loss, &test_acc);
            sdl_epoch_stats stats = {epoch + 1, sdl_meter_loss(&meter), sdl_meter_accuracy(&meter), test_loss, test_acc, opt->lr, dt};
            sdl_progress_end(&bar, &stats);
            if (result_file[0] && sdl_csv_append(result_file, &stats) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
        }
        printf("final: test_acc=%.4f test_loss=%.4f train_acc=%.4f epochs=%d time=%.1fs\n", test_acc, test_loss,
               sdl_meter_accuracy(&meter), epochs, train_time);
        sdl_print_throughput(stdout, (double)images, train_time);
        sdl_loader_free(train_loader);
        sdl_loader_free(test_loader);
        sdl_dataset_free(&train_set);
        sdl_dataset_free(&test_set);
    }

    sdl_optim_free(opt);
    sdl_model_free(model);
    sdl_arena_release();
    if (resnet_dev == SDL_CUDA) sdl_cuda_shutdown();
    return 0;
}
