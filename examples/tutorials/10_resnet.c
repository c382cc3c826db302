/* 10_resnet.c - JSC day 4, accuracy at large batch: a CIFAR ResNet (He et al. 2015, 6n+2 layers) on
   Fashion-MNIST, the course's flags. --accum-steps micro-batches of --batch-size stand for as many
   ranks (global batch = batch-size x accum-steps). Rescaling: the linear scaling rule, lr x global
   batch / 256, and warm-up starts at the unscaled lr (else at lr/10); LARS: the course's trust
   coefficient 0.01. step_wise_decay: x0.1 at 80/150, 120/150 of the updates; clr: one-cycle. Study: 10_large_batch.sh
   build:  cc -O3 -march=native -I. examples/tutorials/10_resnet.c -o build/10_resnet -lm -lpthread
   run:    ./build/10_resnet --accum-steps 16 --lr 0.1 --enable_lr_rescaling --lr_scheduler clr --optimizer LARS */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>

/* the basic block: relu(s(x) + bn2(conv2(relu(bn1(conv1(x)))))), s(x) = x, or 1x1 conv + bn (the
   projection shortcut) where stride and channels change. children: conv1 bn1 conv2 bn2 [s.0 s.1] */
static sdl_tensor *block_forward(sdl_module *b, sdl_tensor *x) {
    sdl_module **l = b->children;
    sdl_tensor *out = sdl_forward(l[3], sdl_forward(l[2], sdl_relu(sdl_forward(l[1], sdl_forward(l[0], x)))));
    return sdl_relu(sdl_add(out, b->nchildren == 6 ? sdl_forward(l[5], sdl_forward(l[4], x)) : x));
}
static void conv_bn(sdl_module *seq, const char *prefix, const char *conv, const char *bn, int64_t c_in, int64_t c_out, int k, int stride) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%s%s", prefix, conv), snprintf(b, sizeof b, "%s%s", prefix, bn);
    sdl_seq_add(seq, sdl_conv2d_layer(seq->model, a, c_in, c_out, k, stride, k / 2, false));
    sdl_seq_add(seq, sdl_batch_norm_layer(seq->model, b, c_out));
}

/* (N,1,28,28) conv 3x3 + bn + relu -> (N,w,28,28); 3 stages of n blocks (w, 2w, 4w channels; stages
   2, 3 start with stride 2) -> (N,4w,7,7); global average pool -> (N,4w); linear -> (N,10) */
static sdl_module *resnet(sdl_model *m, int n, int64_t w) {
    sdl_module *net = sdl_sequential(m, "");
    conv_bn(net, "", "conv1", "bn1", 1, w, 3, 1);
    sdl_seq_add(net, sdl_relu_layer(m));
    for (int j = 0; j < 3 * n; j++) { /* block i of stage s */
        int s = j / n, i = j % n, stride = s > 0 && i == 0 ? 2 : 1;
        int64_t c_out = w << s, c_in = c_out / stride;
        char p[32];
        snprintf(p, sizeof p, "layer%d.%d.", s + 1, i);
        sdl_module *b = sdl_module_new(m, "basic_block", p, block_forward);
        conv_bn(b, p, "conv1", "bn1", c_in, c_out, 3, stride);
        conv_bn(b, p, "conv2", "bn2", c_out, c_out, 3, 1);
        if (stride != 1) conv_bn(b, p, "shortcut.0", "shortcut.1", c_in, c_out, 1, 2);
        sdl_seq_add(net, b);
    }
    sdl_seq_add(net, sdl_global_avg_pool_layer(m)), sdl_seq_add(net, sdl_linear_layer(m, "fc", 4 * w, 10, true));
    return net->nchildren == 3 * n + 5 ? net : NULL; /* a layer that failed was not added */
}

/* one pass over a loader: trains when opt is given (the rate from the schedule at each update),
   else measures (batch norm on its running statistics, no gradients) */
static sdl_meter run(sdl_module *net, sdl_loader *loader, sdl_optim *opt, const sdl_sched_desc *sched, sdl_device dev) {
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_model_train(net->model, opt != NULL), sdl_set_grad_enabled(opt != NULL);
    sdl_tensor *x, *y;
    while (sdl_loader_next(loader, &x, &y)) {
        if (opt) sdl_optim_set_lr(opt, sdl_sched_lr(sched, opt->step));
        sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev)), *yd = sdl_tensor_to(y, dev);
        sdl_tensor *loss = sdl_cross_entropy(logits, yd, 0.0f);
        if (opt && (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK)) fprintf(stderr, "%s\n", sdl_last_error());
        sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, yd), y->numel);
        sdl_arena_reset();
    }
    return m;
}

int main(int argc, char **argv) {
    int epochs = 10, batch_size = 64, accum_steps = 1, depth = 20, width = 16, warmup_epochs = 5, limit = 0;
    float lr = 0.0f, weight_decay = 1e-4f; /* He et al.'s */
    bool rescale = false;
    const char *optimizer = "SGD", *scheduler = "none", *data = "/usr/share/datasets/fashion-mnist", *device = "cpu";
    sdl_arg args[] = {
        {"depth", SDL_ARG_INT, &depth, "layers: 6n+2 (8, 14, 20, 32, 44, 56, 110)"}, {"width", SDL_ARG_INT, &width, "channels of stage 1"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per micro-batch (per simulated rank)"}, {"epochs", SDL_ARG_INT, &epochs, ""},
        {"accum-steps", SDL_ARG_INT, &accum_steps, "simulated ranks"}, {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "at batch 256 (0: default)"},
        {"optimizer", SDL_ARG_STRING, &optimizer, "SGD, LARS or LAMB"}, {"enable_lr_rescaling", SDL_ARG_BOOL, &rescale, "lr x batch / 256"},
        {"lr_scheduler", SDL_ARG_STRING, &scheduler, "none, step_wise_decay, step_wise_decay_with_warmup or clr"},
        {"warmup-epochs", SDL_ARG_INT, &warmup_epochs, "epochs of warm-up (with_warmup)"}, {"weight_decay", SDL_ARG_FLOAT, &weight_decay, ""},
        {"limit", SDL_ARG_INT, &limit, "use the first N training and test images"}, {"data", SDL_ARG_STRING, &data, "Fashion-MNIST folder"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        (depth < 8 || (depth - 2) % 6 ? sdl_fail(SDL_ERR_ARG, "--depth %d: not 6n+2 (8, 14, 20, ..., 56, 110)", depth) : SDL_OK) ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK)
        return fprintf(stderr, "%s\n", sdl_last_error()), sdl_args_usage(stderr, argv[0], args, nargs), 2;
    if (limit > 0) train_set.n = limit < train_set.n ? limit : train_set.n, test_set.n = limit < test_set.n ? limit : test_set.n;
    int global = batch_size * accum_steps, steps = batch_size > 1 && accum_steps > 0 && width > 0 && epochs > 0 ? (int)(train_set.n / global) : 0;
    if (steps < 1) return fprintf(stderr, "want --batch-size >= 2, the other sizes >= 1, <= %lld images per update\n", (long long)train_set.n), 2;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set, ld.batch_size = batch_size, ld.drop_last = true, ld.shuffle = true; /* batch norm: no batch of one */
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_loader_desc td = ld;
    td.data = &test_set, td.shuffle = false, td.drop_last = false;
    sdl_loader *train = sdl_loader_new(&ld), *test = sdl_loader_new(&td);
    sdl_model *model = sdl_model_new(42);
    sdl_module *net = resnet(model, (depth - 2) / 6, width);
    sdl_sched_desc sd = {SDL_SCHED_DEFAULT, 0.0f, (int64_t)epochs * steps, 0, 0.0f, {0}, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}; /* total: in updates */
    sdl_optim *opt = net && sdl_sched_by_name(&sd, scheduler) == SDL_OK && sdl_model_to(model, dev) == SDL_OK
                         ? sdl_optim_by_name(model, optimizer, lr, weight_decay) : NULL;
    if (!train || !test || !opt) return fprintf(stderr, "%s\n", sdl_last_error()), 2;
    opt->desc.accum_steps = accum_steps, opt->desc.trust_coef = 0.01f; /* the trust coefficient: LARS only */
    float scale = rescale ? (float)global / 256.0f : 1.0f, best = 0.0f;
    sd.base_lr = opt->lr * scale;
    if (sd.warmup > 0) sd.warmup = (int64_t)warmup_epochs * steps, sd.warmup_start_factor = scale > 1.0f ? 1.0f / scale : 0.1f;
    printf("10_resnet: ResNet-%d, %lld parameters, global batch %d = %d x %d, %d updates/epoch, lr %g, %s, %s, %s\n", depth,
           (long long)sdl_model_num_params(model), global, accum_steps, batch_size, steps, (double)sd.base_lr, optimizer, scheduler, device);
    for (int epoch = 0, best_epoch = 0; epoch < epochs; epoch++) {
        double t0 = sdl_now();
        sdl_meter m = run(net, train, opt, &sd, dev), v = run(net, test, NULL, &sd, dev);
        if (sdl_meter_accuracy(&v) > best) best = (float)sdl_meter_accuracy(&v), best_epoch = epoch + 1;
        printf("epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f lr %.4g time %.1fs\n", epoch + 1, epochs, sdl_meter_loss(&m),
               sdl_meter_accuracy(&m), sdl_meter_loss(&v), sdl_meter_accuracy(&v), (double)opt->lr, sdl_now() - t0);
        if (epoch + 1 == epochs) printf("final: val_acc %.4f best_val_acc %.4f (epoch %d)\n", sdl_meter_accuracy(&v), (double)best, best_epoch);
    }
    return 0; /* the model, optimizer and loaders go with the process */
}
