/* 22_parallel_inference.c - syllabus: parallel inference. A trained model classifies the
   test set on all ranks at once: rank r takes a contiguous share (sizes differ by at most
   one image and nothing is padded: torch's DistributedSampler would classify 1002 images
   of 1000 on 3 ranks), goes through it in order, and the predictions are gathered back in
   dataset order (sdl_mpi_allgather_rows); the correct counts are summed. Rank 0 writes one
   line per image to --out. The file and the accuracy are the same on any number of ranks.
   The model: --checkpoint if the file exists, else rank 0 first trains 04's FCNet for
   --epochs and saves it there.

   build:  mpicc -O3 -march=native -I. examples/tutorials/22_parallel_inference.c -o build/22_parallel_inference -lm -lpthread
   run:    mpirun -np 2 ./build/22_parallel_inference --checkpoint fcnet.safetensors --out predictions.csv */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <string.h>

/* rank 0: --epochs of SGD on the training set, then the weights into path */
static sdl_result train(sdl_model *model, sdl_module *net, const sdl_loader_desc *desc, int epochs, float lr, const char *path) {
    sdl_loader *loader = sdl_loader_new(desc);
    sdl_optim *opt = loader ? sdl_sgd(model, lr, 0.9f, 0.0f, true) : NULL;
    sdl_tensor *x, *y;
    for (int epoch = 0; opt && epoch < epochs; epoch++) {
        sdl_loader_set_epoch(loader, epoch);
        while (sdl_loader_next(loader, &x, &y)) {
            if (sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f)) != SDL_OK || sdl_optim_step(opt) != SDL_OK) return sdl_last_result();
            sdl_arena_reset();
        }
    }
    sdl_result r = opt ? sdl_checkpoint_save(path, model, NULL, epochs) : sdl_last_result();
    if (r == SDL_OK) printf("trained %d epochs on %lld images, saved %s\n", epochs, (long long)desc->data->n, path);
    sdl_optim_free(opt), sdl_loader_free(loader);
    return r;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size(), epochs = 2, batch_size = 250, seed = 42, limit = 0;
    float lr = 0.05f;
    const char *data = "/usr/share/datasets/fashion-mnist", *checkpoint = "fcnet.safetensors", *out = "predictions.csv";
    sdl_arg args[] = {
        {"checkpoint", SDL_ARG_STRING, &checkpoint, "the model's weights (trained and saved first when missing)"},
        {"out", SDL_ARG_STRING, &out, "rank 0 writes index,prediction,label per test image here"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per forward"},
        {"epochs", SDL_ARG_INT, &epochs, "training epochs, when the checkpoint is missing"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "training rate, when the checkpoint is missing"},
        {"seed", SDL_ARG_INT, &seed, "seed for the weights and the training order"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"data", SDL_ARG_STRING, &data, "folder with the Fashion-MNIST IDX files"},
    };
    const int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_dataset train_set, test_set, mine;
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK || sdl_load_fashion_mnist(data, true, &train_set) != SDL_OK ||
        sdl_load_fashion_mnist(data, false, &test_set) != SDL_OK) {
        fprintf(stderr, "%s\n", sdl_last_error());
        if (rank == 0) sdl_args_usage(stderr, argv[0], args, nargs);
        sdl_mpi_finalize();
        return 2;
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &train_set, ld.batch_size = 64, ld.shuffle = true, ld.seed = (uint64_t)seed;
    ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f; /* Fashion-MNIST's pixel mean and std */

    /* 04's FCNet: (N,1,28,28) -> 784 -> 128 -> 10 */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 784, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    FILE *f = fopen(checkpoint, "rb");
    int missing = !f, ok = !f || fclose(f) == 0;
    MPI_Bcast(&missing, 1, MPI_INT, 0, MPI_COMM_WORLD); /* rank 0's file system decides */
    if (missing && rank == 0) ok = train(model, net, &ld, epochs, lr, checkpoint) == SDL_OK;
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD); /* the others wait for the file */
    if (!ok || sdl_checkpoint_load(checkpoint, model, NULL, NULL) != SDL_OK || sdl_mpi_dataset_shard(&test_set, &mine) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, ok ? sdl_last_error() : "rank 0 could not train and save the model");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* this rank's share, in order: predictions into pred[0 .. rows) */
    sdl_model_train(model, false), sdl_set_grad_enabled(false);
    sdl_loader_desc td = ld;
    td.data = &mine, td.batch_size = batch_size, td.shuffle = false; /* world_size 0: the whole share */
    sdl_loader *test = sdl_loader_new(&td);
    int32_t *pred = (int32_t *)calloc((size_t)mine.n + 1, sizeof(int32_t)), *all = (int32_t *)calloc((size_t)test_set.n + 1, sizeof(int32_t));
    double counts[2] = {0.0, 0.0}, t0 = sdl_now(); /* images, correct */
    sdl_tensor *x, *y;
    while (test && pred && sdl_loader_next(test, &x, &y)) {
        sdl_tensor *logits = sdl_forward(net, x); /* (B, 10): the arg-max is the prediction */
        for (int64_t i = 0; logits && i < logits->shape[0]; i++) {
            const float *z = sdl_f32(logits) + i * 10;
            int best = 0;
            for (int c = 1; c < 10; c++) best = z[c] > z[best] ? c : best;
            pred[(int64_t)counts[0]] = best, counts[0] += 1.0, counts[1] += best == sdl_i32(y)[i];
        }
        sdl_arena_reset();
    }
    int64_t rows = (int64_t)counts[0], *share = (int64_t *)calloc((size_t)size, sizeof(int64_t)); /* images per rank */
    MPI_Gather(&rows, 1, MPI_INT64_T, share, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (rows != mine.n || sdl_mpi_sum(counts, 2) != SDL_OK || sdl_mpi_allgather_rows(pred, rows, sizeof(int32_t), all, test_set.n) != SDL_OK) {
        fprintf(stderr, "rank %d: %lld of %lld images classified: %s\n", rank, (long long)rows, (long long)mine.n, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double dt = sdl_now() - t0;
    if (rank == 0) {
        printf("%d ranks, images per rank:", size);
        for (int r = 0; share && r < size; r++) printf(" %lld", (long long)share[r]);
        printf("\ntest accuracy %.4f (%.0f of %.0f images, each once) in %.3f s\n", counts[1] / counts[0], counts[1], counts[0], dt);
        FILE *o = fopen(out, "w");
        for (int64_t i = 0; o && i < test_set.n; i++) fprintf(o, "%lld,%d,%d\n", (long long)i, all[i], test_set.labels[i]);
        if (!o || fclose(o) != 0) fprintf(stderr, "cannot write %s\n", out);
        else printf("wrote %lld predictions to %s\n", (long long)test_set.n, out);
    }
    free(pred), free(all), free(share);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1; /* the model and loaders go with the process */
}
