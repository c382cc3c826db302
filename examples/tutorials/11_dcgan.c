/* 11_dcgan.c - JSC day 5: a DCGAN on Fashion-MNIST. The generator turns noise into images
   with transposed convolutions; the discriminator, strided convolutions with LeakyReLU,
   scores real against fake (BCE with logits); Adam 2e-4, beta1 0.5 for both, as in the
   DCGAN paper. One step: D learns on real and sdl_detach(fake) (no gradient reaches G),
   then G learns through D(fake) with D frozen (no gradient for D). A PNG grid of samples
   from fixed noise after each epoch shows G learning.

   build:  cc -O3 -march=native -I. examples/tutorials/11_dcgan.c -o build/11_dcgan -lm -lpthread
   run:    ./build/11_dcgan --epochs 5 --out build   (then look at build/dcgan_epoch5.png) */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file; empty for cc */
#include "sdl_cuda.h"
#include <string.h>
enum { NZ = 64 }; /* the noise vector's length */

static sdl_tensor *noise(int64_t n, sdl_device dev) { /* (n, NZ, 1, 1) from N(0, 1) */
    sdl_tensor *z = sdl_arena_tensor(sdl_shape4(n, NZ, 1, 1), SDL_F32);
    sdl_tensor_randn(z, 0.0f, 1.0f);
    return sdl_tensor_to(z, dev);
}
static sdl_tensor *labels(int64_t n, float value, sdl_device dev) { /* (n, 1) all value */
    sdl_tensor *t = sdl_arena_tensor(sdl_shape2(n, 1), SDL_F32);
    sdl_tensor_fill(t, value);
    return sdl_tensor_to(t, dev);
}

int main(int argc, char **argv) {
    int epochs = 5, batch_size = 64, seed = 42, limit = 0;
    float lr = 2e-4f, beta1 = 0.5f;
    const char *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *out = ".";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "Adam's learning rate (both nets)"},
        {"beta1", SDL_ARG_FLOAT, &beta1, "Adam's beta1"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, noise and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
        {"out", SDL_ARG_STRING, &out, "folder for dcgan_epochN.png"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda or cuda:N"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_device dev, cpu = SDL_CPU;
    sdl_dataset train_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_device_parse(device, &dev) != SDL_OK ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        sdl_args_usage(stderr, argv[0], args, nargs);
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set, ld.batch_size = batch_size, ld.drop_last = true, ld.shuffle = true, ld.seed = (uint64_t)seed;
    ld.mean[0] = 0.5f, ld.std[0] = 0.5f; /* pixels to [-1, 1], the range of G's tanh */
    sdl_loader *train = sdl_loader_new(&ld);

    /* G: z (N,64,1,1) -> convT 7x7 -> (N,64,7,7) BN relu -> convT 4x4 s2 -> (N,32,14,14)
       BN relu -> convT 4x4 s2 -> (N,1,28,28) tanh */
    sdl_model *gm = sdl_model_new((uint64_t)seed);
    sdl_module *G = sdl_sequential(gm, "");
    sdl_seq_add(G, sdl_conv_transpose2d_layer(gm, "up1", NZ, 64, 7, 1, 0, 0, false));
    sdl_seq_add(G, sdl_batch_norm_layer(gm, "bn1", 64));
    sdl_seq_add(G, sdl_relu_layer(gm));
    sdl_seq_add(G, sdl_conv_transpose2d_layer(gm, "up2", 64, 32, 4, 2, 1, 0, false));
    sdl_seq_add(G, sdl_batch_norm_layer(gm, "bn2", 32));
    sdl_seq_add(G, sdl_relu_layer(gm));
    sdl_seq_add(G, sdl_conv_transpose2d_layer(gm, "up3", 32, 1, 4, 2, 1, 0, true));
    sdl_seq_add(G, sdl_tanh_layer(gm));
    /* D: x (N,1,28,28) -> conv 4x4 s2 -> (N,16,14,14) leaky -> conv 4x4 s2 -> (N,32,7,7)
       leaky -> flatten -> linear -> (N,1) logit "real" */
    sdl_model *dm = sdl_model_new((uint64_t)seed + 1);
    sdl_module *D = sdl_sequential(dm, "");
    sdl_seq_add(D, sdl_conv2d_layer(dm, "conv1", 1, 16, 4, 2, 1, true));
    sdl_seq_add(D, sdl_leaky_relu_layer(dm, 0.2f));
    sdl_seq_add(D, sdl_conv2d_layer(dm, "conv2", 16, 32, 4, 2, 1, true));
    sdl_seq_add(D, sdl_leaky_relu_layer(dm, 0.2f));
    sdl_seq_add(D, sdl_flatten_layer(dm));
    sdl_seq_add(D, sdl_linear_layer(dm, "fc", 32 * 7 * 7, 1, true));
    sdl_optim *opt_g = sdl_model_to(gm, dev) == SDL_OK ? sdl_adam(gm, lr, beta1, 0.999f, 0.0f) : NULL;
    sdl_optim *opt_d = sdl_model_to(dm, dev) == SDL_OK ? sdl_adam(dm, lr, beta1, 0.999f, 0.0f) : NULL;
    sdl_tensor *fixed = sdl_tensor_new(sdl_shape4(64, NZ, 1, 1), SDL_F32); /* the same noise each epoch */
    sdl_tensor_randn(fixed, 0.0f, 1.0f);
    if (!train || !opt_g || !opt_d) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
    printf("11_dcgan: G %lld, D %lld parameters, batch %d, lr %g, %s\n", (long long)sdl_model_num_params(gm),
           (long long)sdl_model_num_params(dm), batch_size, (double)lr, device);
    for (int epoch = 1; epoch <= epochs; epoch++) {
        double t0 = sdl_now(), steps = 0.0, sum_d = 0.0, sum_g = 0.0, sum_real = 0.0, sum_fake = 0.0;
        sdl_tensor *x, *y;
        while (sdl_loader_next(train, &x, &y)) {
            int64_t n = x->shape[0];
            sdl_tensor *fake = sdl_forward(G, noise(n, dev));
            /* D step: real -> 1, fake -> 0; detach keeps this loss out of G */
            sdl_tensor *d_real = sdl_forward(D, sdl_tensor_to(x, dev)), *d_fake = sdl_forward(D, sdl_detach(fake));
            sdl_tensor *loss_d = sdl_add(sdl_bce_with_logits(d_real, labels(n, 1.0f, dev)),
                                         sdl_bce_with_logits(d_fake, labels(n, 0.0f, dev)));
            sdl_result rc = sdl_backward(loss_d) == SDL_OK ? sdl_optim_step(opt_d) : sdl_last_result();
            /* G step: make D call fake real, the gradient flowing through a frozen D */
            sdl_model_freeze(dm, "", true);
            sdl_tensor *loss_g = sdl_bce_with_logits(sdl_forward(D, fake), labels(n, 1.0f, dev));
            if (rc == SDL_OK) rc = sdl_backward(loss_g) == SDL_OK ? sdl_optim_step(opt_g) : sdl_last_result();
            sdl_model_freeze(dm, "", false);
            if (rc != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
            sum_d += sdl_item(loss_d), sum_g += sdl_item(loss_g);
            sum_real += sdl_item(sdl_mean(sdl_sigmoid(d_real))), sum_fake += sdl_item(sdl_mean(sdl_sigmoid(d_fake)));
            steps += 1.0, sdl_arena_reset();
        }
        char path[512];
        steps += steps == 0.0; /* a --limit below one batch: no step, no division by 0 */
        snprintf(path, sizeof path, "%s/dcgan_epoch%d.png", out, epoch);
        sdl_model_train(gm, false), sdl_set_grad_enabled(false); /* samples: BN in eval mode, no graph */
        sdl_result rc = sdl_write_png(path, sdl_tensor_to(sdl_forward(G, sdl_tensor_to(fixed, dev)), cpu), 8, -1.0f, 1.0f);
        sdl_model_train(gm, true), sdl_set_grad_enabled(true), sdl_arena_reset();
        if (rc != SDL_OK) return fprintf(stderr, "%s\n", sdl_last_error()), 1;
        printf("epoch %d/%d: loss_d %.4f loss_g %.4f D(x) %.3f D(G(z)) %.3f time %.1fs -> %s\n", epoch, epochs, sum_d / steps,
               sum_g / steps, sum_real / steps, sum_fake / steps, sdl_now() - t0, path);
    }
    return 0; /* the models, optimizers and loader go with the process */
}
