/* fashion_fedavg.c - federated averaging (McMahan et al. 2017) on Fashion-MNIST: K clients
   each hold a part of the training set, a fraction C of them trains E local epochs of SGD
   per round from the global model, and the global model becomes the average of their
   models weighted by sample counts. Two federations train side by side from the same
   start: IID clients, and non-IID clients whose label mix is drawn from Dirichlet(alpha).
   Each round prints both test accuracies, so the gap non-IID data opens is plain to see.

   build:  mpicc -O3 -march=native -I. examples/fashion_fedavg.c -o build/fashion_fedavg -lm -lpthread
   run:    mpirun -np 2 ./build/fashion_fedavg --rounds 30     (clients k on rank k mod size;
           the same numbers on any number of ranks, one process too: ./build/fashion_fedavg)
   flags:  --clients 100 --fraction 0.1 --local-epochs 1 --batch-size 10 --lr 0.05
           --alpha 0.1 (the non-IID federation) --mu 0 (FedProx) --compress none|fp16|topk
           --topk 0.01 --seed --data DIR; --help lists them (underscore spellings too)
   output: "round r  iid: acc A  non-iid(alpha a): acc B  MB sent M" per round, then the
           rounds each federation took to reach 80% test accuracy. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

/* McMahan et al.'s "2NN" made smaller: 784-200-10 */
static sdl_module *mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 200, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 200, 10, true));
    return net;
}

static sdl_tensor *ce_loss(void *net, sdl_tensor *x, sdl_tensor *y) {
    return sdl_cross_entropy(sdl_forward((sdl_module *)net, x), y, 0.0f);
}

/* test accuracy; every rank holds the same global model, so each computes it alone */
static double accuracy(sdl_module *net, sdl_loader *test) {
    int64_t correct = 0, n = 0;
    sdl_tensor *x, *y;
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(test, &x, &y)) {
        correct += sdl_count_correct(sdl_forward(net, x), y);
        n += y->numel;
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    return n ? (double)correct / (double)n : 0.0;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank();
    int rounds = 30, clients = 100, local_epochs = 1, batch_size = 10, seed = 42;
    float fraction = 0.1f, lr = 0.05f, alpha = 0.1f, mu = 0.0f, topk = 0.01f;
    bool help = false;
    const char *data_dir = "/usr/share/datasets/fashion-mnist", *compress = "none";
    sdl_arg args[] = {
        {"rounds", SDL_ARG_INT, &rounds, "communication rounds"},
        {"clients", SDL_ARG_INT, &clients, "K, clients in each federation"},
        {"fraction", SDL_ARG_FLOAT, &fraction, "C, share of the clients training each round"},
        {"local-epochs|epochs", SDL_ARG_INT, &local_epochs, "E, passes over its data a client makes per round"},
        {"batch-size", SDL_ARG_INT, &batch_size, "B, local batch size"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "local SGD rate"},
        {"alpha", SDL_ARG_FLOAT, &alpha, "Dirichlet concentration of the non-IID federation"},
        {"mu", SDL_ARG_FLOAT, &mu, "FedProx proximal weight (0: FedAvg)"},
        {"compress", SDL_ARG_STRING, &compress, "updates as none (float32), fp16 or topk"},
        {"topk", SDL_ARG_FLOAT, &topk, "share of parameters a top-k update sends"},
        {"seed", SDL_ARG_INT, &seed, "weights, partitions, client choice"},
        {"data", SDL_ARG_STRING, &data_dir, "folder with the Fashion-MNIST IDX files"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    bool parsed = sdl_args_parse(argc, argv, args, nargs) == SDL_OK;
    bool bad = !parsed || rounds < 1 || (strcmp(compress, "none") && strcmp(compress, "fp16") && strcmp(compress, "topk"));
    if (help || bad) {
        if (rank == 0) {
            if (bad) fprintf(stderr, "%s\n", parsed ? "bad --rounds or --compress (none, fp16 or topk)" : sdl_last_error());
            sdl_args_usage(help ? stdout : stderr, argv[0], args, nargs);
        }
        sdl_mpi_finalize();
        return help ? 0 : 2;
    }
    sdl_set_num_threads(1);
    sdl_dataset train, test;
    if (sdl_load_fashion_mnist(data_dir, true, &train) != SDL_OK || sdl_load_fashion_mnist(data_dir, false, &test) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &test, ld.batch_size = 1000, ld.prefetch = -1, ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f;
    sdl_loader *test_loader = sdl_loader_new(&ld);

    /* two federations from the same initial weights (the same seed) */
    sdl_model *model[2];
    sdl_module *net[2];
    sdl_fed *fed[2];
    for (int i = 0; i < 2; i++) {
        model[i] = sdl_model_new((uint64_t)seed);
        net[i] = mlp(model[i]);
        sdl_fed_desc fd;
        memset(&fd, 0, sizeof fd);
        fd.model = model[i], fd.loss = ce_loss, fd.user = net[i], fd.data = &train;
        fd.clients = clients, fd.fraction = fraction, fd.local_epochs = local_epochs, fd.batch_size = batch_size;
        fd.lr = lr, fd.mu = mu, fd.shuffle = true, fd.seed = (uint64_t)seed, fd.topk = topk;
        fd.split = i == 0 ? SDL_FED_IID : SDL_FED_DIRICHLET, fd.alpha = alpha;
        fd.compress = !strcmp(compress, "fp16") ? SDL_FED_FP16 : !strcmp(compress, "topk") ? SDL_FED_TOPK : SDL_FED_FLOAT32;
        fd.mean[0] = 0.2860f, fd.std[0] = 0.3530f;
        if (!(fed[i] = sdl_fed_new(&fd))) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    }
    if (rank == 0)
        printf("fashion_fedavg: %d ranks, K %d clients, C %g, E %d, B %d, lr %g, mu %g, updates %s, %lld parameters\n",
               sdl_mpi_size(), clients, (double)fraction, local_epochs, batch_size, (double)lr, (double)mu, compress,
               (long long)model[0]->param_floats);
    int reached[2] = {0, 0};
    double t0 = sdl_now();
    for (int r = 1; r <= rounds; r++) {
        double acc[2];
        sdl_fed_stats st[2];
        for (int i = 0; i < 2; i++) {
            if (sdl_fed_round(fed[i], &st[i]) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
            acc[i] = accuracy(net[i], test_loader);
            if (!reached[i] && acc[i] >= 0.80) reached[i] = r;
        }
        if (rank == 0)
            printf("round %3d  iid: acc %.4f  non-iid(alpha %g): acc %.4f  MB sent %.2f (dense %.2f)  local loss %.3f / %.3f\n", r, acc[0],
                   (double)alpha, acc[1], (double)st[0].bytes / 1e6, (double)st[0].bytes_dense / 1e6, st[0].train_loss, st[1].train_loss);
    }
    if (rank == 0) {
        printf("rounds to 80%% test accuracy: iid %d, non-iid %d (0: not reached in %d rounds)\n", reached[0], reached[1], rounds);
        printf("time: %.1f s\n", sdl_now() - t0);
    }
    for (int i = 0; i < 2; i++) sdl_fed_free(fed[i]), sdl_model_free(model[i]);
    sdl_loader_free(test_loader);
    sdl_dataset_free(&train);
    sdl_dataset_free(&test);
    sdl_mpi_finalize();
    return 0;
}
