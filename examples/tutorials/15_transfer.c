/* 15_transfer.c - transfer learning: a small CNN learns Fashion-MNIST classes 0-4 (or is
   loaded, --pretrained), is saved, and its convolutions become the backbone of a new model
   with a new head for classes 5-9. The load is non-strict: the report names the new head
   as missing and the old head as unexpected. First only the head trains (the backbone
   frozen, as requires_grad_(False)); then everything trains, the backbone at lr x 0.1
   (a parameter group) so the features it learned are adjusted, not overwritten.
   build:  cc -O3 -march=native -I. examples/tutorials/15_transfer.c -o build/15_transfer -lm -lpthread
   run:    ./build/15_transfer --epochs 2 --limit 10000 */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>

/* the samples of classes first..first+4, relabelled 0..4 (the arrays go with the process) */
static sdl_dataset five_classes(const sdl_dataset *d, int first) {
    sdl_dataset s = *d;
    size_t img = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    s.images = (uint8_t *)malloc((size_t)d->n * img), s.labels = (int32_t *)malloc((size_t)d->n * sizeof(int32_t));
    s.n = 0, s.num_classes = 5;
    for (int64_t i = 0; i < d->n && s.images && s.labels; i++)
        if (d->labels[i] >= first && d->labels[i] < first + 5) {
            memcpy(s.images + (size_t)s.n * img, d->images + (size_t)i * img, img);
            s.labels[s.n++] = d->labels[i] - first;
        }
    return s;
}

/* backbone: (N,1,28,28) conv s2 -> (N,16,14,14) relu -> conv s2 -> (N,32,7,7) relu -> GAP
   -> (N,32); then head (a linear layer named `head`) -> (N,5) */
static sdl_module *cnn(sdl_model *m, const char *head) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, "backbone.conv1", 1, 16, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_conv2d_layer(m, "backbone.conv2", 16, 32, 3, 2, 1, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_global_avg_pool_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, head, 32, 5, true));
    return net;
}

/* epochs over data (training when opt is given), then the accuracy on test */
static float fit(sdl_module *net, const sdl_dataset *data, const sdl_dataset *test, sdl_optim *opt, int epochs, sdl_device dev) {
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.batch_size = 64, ld.shuffle = true, ld.prefetch = -1, ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f;
    sdl_tensor *x, *y;
    for (int e = 0;; e++) { /* epochs passes train, the last one measures */
        ld.data = e < epochs ? data : test, ld.seed = (uint64_t)e;
        sdl_loader *l = sdl_loader_new(&ld);
        sdl_meter m;
        sdl_meter_reset(&m);
        sdl_set_grad_enabled(e < epochs);
        while (l && sdl_loader_next(l, &x, &y)) {
            sdl_tensor *logits = sdl_forward(net, sdl_tensor_to(x, dev)), *yd = sdl_tensor_to(y, dev);
            sdl_tensor *loss = sdl_cross_entropy(logits, yd, 0.0f);
            if (e < epochs && (sdl_backward(loss) != SDL_OK || sdl_optim_step(opt) != SDL_OK)) fprintf(stderr, "%s\n", sdl_last_error());
            sdl_meter_add(&m, sdl_item(loss), sdl_count_correct(logits, yd), y->numel);
            sdl_arena_reset();
        }
        sdl_loader_free(l), sdl_set_grad_enabled(true);
        if (e == epochs) return sdl_meter_accuracy(&m);
    }
}

int main(int argc, char **argv) {
    int epochs = 2, limit = 0;
    bool pretrained = false;
    float lr = 0.01f;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *ckpt = "15_backbone.safetensors";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "epochs of each stage"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "Adam's learning rate (the backbone's is x0.1 when it fine-tunes)"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"checkpoint", SDL_ARG_STRING, &ckpt, "where the classes 0-4 model is saved"},
        {"pretrained", SDL_ARG_BOOL, &pretrained, "load --checkpoint instead of training it"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev;
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_dataset train_a = five_classes(&train_set, 0), test_a = five_classes(&test_set, 0);
    sdl_dataset train_b = five_classes(&train_set, 5), test_b = five_classes(&test_set, 5);
    if (!pretrained) { /* 1. the source task: classes 0-4, saved */
        sdl_model *ma = sdl_model_new(1);
        sdl_module *net_a = cnn(ma, "head");
        sdl_optim *opt = sdl_model_to(ma, dev) == SDL_OK ? sdl_adam(ma, lr, 0.0f, 0.0f, 0.0f) : NULL;
        if (!opt) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        float acc = fit(net_a, &train_a, &test_a, opt, epochs, dev);
        if (sdl_checkpoint_save(ckpt, ma, NULL, epochs) != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        printf("classes 0-4: %lld images, test acc %.4f, saved %s\n", (long long)train_a.n, (double)acc, ckpt);
    }
    sdl_model *mb = sdl_model_new(2); /* 2. the target task: the backbone loaded, a new head, classes 5-9 */
    sdl_module *net_b = cnn(mb, "new_head");
    sdl_load_desc d = {true, false, NULL, NULL}; /* non-strict: the heads differ */
    sdl_load_report rep;
    if (sdl_checkpoint_load_weights(ckpt, mb, &d, &rep) != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
    printf("loaded %d tensors from %s; missing:", rep.loaded, ckpt);
    for (int i = 0; i < rep.nmissing; i++) printf(" %s", rep.missing[i]);
    for (int i = 0; i < rep.nunexpected; i++) printf("%s %s", i ? "" : "; unexpected:", rep.unexpected[i]);
    printf("\n");
    sdl_load_report_free(&rep);
    sdl_optim *opt = sdl_model_to(mb, dev) == SDL_OK ? sdl_adam(mb, lr, 0.0f, 0.0f, 0.0f) : NULL;
    sdl_param_group g = {"backbone.", 0.1f, 0.0f, false}; /* the backbone at lr x 0.1 once unfrozen */
    if (!opt || sdl_optim_add_group(opt, &g) != SDL_OK || sdl_model_freeze(mb, "backbone.", true) != SDL_OK)
        return fprintf(stderr, "%s\n", sdl_last_error()), 1;
    printf("classes 5-9, new head only (backbone frozen): test acc %.4f\n", (double)fit(net_b, &train_b, &test_b, opt, epochs, dev));
    sdl_model_freeze(mb, "backbone.", false);
    printf("classes 5-9, all unfrozen (backbone lr x0.1): test acc %.4f\n", (double)fit(net_b, &train_b, &test_b, opt, epochs, dev));
    return 0;
}
