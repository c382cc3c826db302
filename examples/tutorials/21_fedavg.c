/* 21_fedavg.c - syllabus: federated averaging (McMahan et al. 2017). Each rank is a client
   (or, with --clients K, holds clients k = rank, rank + size, ...) with a private, non-IID
   part of Fashion-MNIST: the training set sorted by label and cut into two shards per client,
   so with 5 or more clients each sees about two classes. A round: every client trains
   --local-epochs of SGD on its own images, starting from the global weights; the new global
   weights are the clients' weights averaged, each weighted by its number of images
   (sdl_fed_round: the updates are all-gathered, no server). Every rank then holds the same
   global model, and rank 0 reports its test accuracy. The average is summed in client
   order, so one process running K clients prints exactly what K ranks print.

   build:  mpicc -O3 -march=native -I. examples/tutorials/21_fedavg.c -o build/21_fedavg -lm -lpthread
   run:    mpirun -np 2 ./build/21_fedavg --rounds 10 --clients 10
           ./build/21_fedavg --rounds 10 --clients 10      (one process, the same numbers) */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

/* the training loss of one client batch (sdl_fed_desc.loss): x (B, 1, 28, 28) normalised */
static sdl_tensor *loss_fn(void *net, sdl_tensor *x, sdl_tensor *y) { return sdl_cross_entropy(sdl_forward((sdl_module *)net, x), y, 0.0f); }

/* the global model's test accuracy, on this process */
static double accuracy(sdl_module *net, sdl_loader *test) {
    int64_t correct = 0, n = 0;
    sdl_tensor *x, *y;
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(test, &x, &y)) {
        correct += sdl_count_correct(sdl_forward(net, x), y), n += y->numel;
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    return n ? (double)correct / (double)n : 0.0;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    int rounds = 10, clients = 0, local_epochs = 1, batch_size = 32, seed = 42, limit = 0;
    float lr = 0.05f;
    const char *data = "/usr/share/datasets/fashion-mnist";
    sdl_arg args[] = {
        {"rounds", SDL_ARG_INT, &rounds, "communication rounds"},
        {"clients", SDL_ARG_INT, &clients, "K clients, client k on rank k mod size (0: one per rank)"},
        {"local-epochs", SDL_ARG_INT, &local_epochs, "E, passes a client makes over its images per round"},
        {"batch-size", SDL_ARG_INT, &batch_size, "B, local batch size"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "local SGD rate"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights, shards and shuffling"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_dataset train_set, test_set;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || (rounds < 1 && sdl_fail(SDL_ERR_ARG, "--rounds must be >= 1")) ||
        sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK || sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        if (rank == 0) sdl_args_usage(stderr, argv[0], args, nargs);
        sdl_mpi_finalize();
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc td;
    memset(&td, 0, sizeof td);
    td.data = &test_set, td.batch_size = 1000;
    td.mean[0] = 0.2860f, td.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */
    sdl_loader *test = sdl_loader_new(&td);

    /* McMahan et al.'s "2NN", smaller: (N,1,28,28) -> 784 -> 200 -> 10 */
    sdl_model *model = sdl_model_new((uint64_t)seed); /* the same initial weights on every rank */
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 784, 200, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 200, 10, true));
    sdl_fed_desc fd;
    memset(&fd, 0, sizeof fd);
    fd.model = model, fd.loss = loss_fn, fd.user = net, fd.data = &train_set;
    fd.clients = clients > 0 ? clients : size, fd.split = SDL_FED_SHARDS, fd.shards_per_client = 2; /* sorted by label, 2 shards each */
    fd.local_epochs = local_epochs, fd.batch_size = batch_size, fd.lr = lr, fd.shuffle = true, fd.seed = (uint64_t)seed;
    fd.mean[0] = 0.2860f, fd.std[0] = 0.3530f;
    sdl_fed *fed = test ? sdl_fed_new(&fd) : NULL;
    if (!fed) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (rank == 0) printf("21_fedavg: %d clients on %d ranks, %d local epochs, batch %d, lr %g, %lld parameters\n", fd.clients, size,
                          local_epochs, batch_size, (double)lr, (long long)sdl_model_num_params(model));
    for (int k = 0; rank == 0 && k < fd.clients && k < 10; k++) { /* what each client holds (the first 10) */
        int64_t nk, count[10] = {0};
        const int64_t *idx = sdl_fed_client_samples(fed, k, &nk);
        for (int64_t i = 0; i < nk; i++) count[train_set.labels[idx[i]]]++;
        printf("client %d: %lld images, by class:", k, (long long)nk);
        for (int c = 0; c < 10; c++) printf(" %lld", (long long)count[c]);
        printf("\n");
    }

    double t0 = sdl_now();
    for (int r = 1; r <= rounds; r++) {
        sdl_fed_stats st;
        if (sdl_fed_round(fed, &st) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        if (rank == 0) printf("round %d/%d: local loss %.4f, %lld images, %.2f MB of updates, test acc %.4f\n", r, rounds,
                              st.train_loss, (long long)st.samples, (double)st.bytes / 1e6, accuracy(net, test));
    }
    if (rank == 0) printf("time: %.1f s\n", sdl_now() - t0);
    sdl_fed_free(fed);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model and loader go with the process */
}
