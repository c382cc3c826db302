/* fashion_ddp.c - the Fashion-MNIST CNN of fashion_cnn.c, data parallel over MPI
   (JSC day 2-3, ALCF's DDP/Horovod MNIST): every rank holds the model, trains on its own
   shard of each epoch (the loader's distributed sampler), averages gradients with
   sdl_mpi_ddp, and rank 0 prints metrics averaged over all ranks.

   build:  mpicc -O3 -march=native -I. examples/fashion_ddp.c -o build/fashion_ddp -lm -lpthread
           GPUs (one rank per GPU, gradients averaged on the GPU, NCCL when built with it):
           nvcc -std=c++17 -O2 -x cu -DSDL_MPI_NCCL $(mpicc --showme:compile) -I. examples/fashion_ddp.c \
                -o build/fashion_ddp_cuda -lcublas -lnccl $(mpicc --showme:link)
           then --device cuda (without NCCL: drop -DSDL_MPI_NCCL -lnccl; MPI moves the gradients)
   run:    mpirun -np 2 ./build/fashion_ddp --epochs 2 --batch-size 64 --lr 0.01 --lr-scaling
           srun -n 8 ./build/fashion_ddp ...        (see examples/slurm/)
   flags:  --batch-size is per rank (the global batch is size x batch); --lr-scaling multiplies
           the rate by the world size (Horovod's rule) and --warmup-epochs ramps it up from the
           single-rank rate (Goyal et al.), then --lr-scheduler none|cosine|step|clr|... (per
           update); --optimizer sgd|nesterov|adam|adamw|lars|lamb (SGD with momentum 0.9 by
           default). --fp16-allreduce, --mode flat|buckets, --algo mpi|ring|shm, --bucket-mb
           pick how gradients travel (shm: ranks of one node average through shared memory);
           --device cuda trains on the GPUs (device = local rank mod GPUs; cuda:N picks one)
           and --transport auto|nccl|cuda-mpi|host, --bf16-allreduce pick how; the same file
           builds with mpicc and nvcc. --steps-per-epoch N stops each epoch early (for
           throughput runs). SDL_TIMELINE=trace.json writes a Perfetto timeline per rank.
           Beyond replicas (CPU models): --batch-norm puts batch norm after each conv,
           --sync-bn makes it SyncBatchNorm (statistics over all ranks; plain BN's running
           stats are averaged before each evaluation instead); --zero 1|2|3 shards the
           optimizer state (and the gradients, and the parameters) over the ranks (ZeRO); --global-batch G keeps
           G images per update whatever the world size (gradient accumulation makes up the
           rest); --checkpoint-every K writes --checkpoint PATH every K updates, with the
           loader's place in the epoch, and a run that finds PATH resumes from it, at any
           world size: tools/sdl_elastic.sh --np 4 -- ./build/fashion_ddp --global-batch 256
           --checkpoint-every 50 reruns it with the ranks left after a failure. The test set
           is split exactly (each image once, sdl_mpi_dataset_shard).
   output: per epoch (rank 0): loss, accuracy, test loss and accuracy over all ranks; at
           the end "rank r: images/sec: X" for each rank, "total images/sec: X" (the sum,
           the line the scaling driver greps), "total images/sec/gpu: X". */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_CUDA_IMPLEMENTATION /* the GPU backend when nvcc compiles this file (and sdl_mpi averages there); empty for mpicc */
#include "sdl_cuda.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* loss and accuracy over this rank's share of the test set (each image on one rank), summed */
static void evaluate(sdl_module *net, sdl_loader *loader, sdl_device dev, double *loss, double *acc) {
    double s[3] = {0, 0, 0}; /* loss * n, correct, n */
    sdl_tensor *x, *y;
    sdl_set_grad_enabled(false);
    while (sdl_loader_next(loader, &x, &y)) {
        x = sdl_tensor_to(x, dev);
        y = sdl_tensor_to(y, dev);
        sdl_tensor *logits = sdl_forward(net, x);
        s[0] += (double)sdl_item(sdl_cross_entropy(logits, y, 0.0f)) * (double)y->numel;
        s[1] += (double)sdl_count_correct(logits, y);
        s[2] += (double)y->numel;
        sdl_arena_reset();
    }
    sdl_set_grad_enabled(true);
    sdl_mpi_sum(s, 3);
    *loss = s[2] > 0 ? s[0] / s[2] : 0;
    *acc = s[2] > 0 ? s[1] / s[2] : 0;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    int epochs = 2, batch_size = 64, seed = 42, threads = 1, warmup_epochs = 0, steps_per_epoch = 0, limit = 0;
    int zero = 0, global_batch = 0, ckpt_every = 0;
    float lr = 0.01f, bucket_mb = 0.0f;
    bool lr_scaling = false, fp16 = false, bf16 = false, help = false, batch_norm = false, sync_bn = false;
    const char *data_dir = "/usr/share/datasets/fashion-mnist", *mode = "buckets", *algo = "mpi", *result_file = "";
    const char *ckpt_path = "fashion_ddp.ckpt.safetensors";
    const char *device = "cpu", *transport = "auto", *optimizer = "sgd", *scheduler = "none";
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "passes over the training set"},
        {"batch-size", SDL_ARG_INT, &batch_size, "images per step on each rank"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate for one rank"},
        {"lr-scaling|enable-lr-rescaling", SDL_ARG_BOOL, &lr_scaling, "multiply the rate by the number of ranks"},
        {"warmup-epochs", SDL_ARG_INT, &warmup_epochs, "ramp the rate up linearly over these epochs"},
        {"optimizer", SDL_ARG_STRING, &optimizer, "sgd (momentum 0.9), nesterov, adam, adamw, lars, lamb"},
        {"lr-scheduler", SDL_ARG_STRING, &scheduler, "none, cosine, step (x0.1 at 50% and 75%), clr, step_wise_decay[_with_warmup] (per update)"},
        {"seed", SDL_ARG_INT, &seed, "seed for weights and shuffling (same on every rank)"},
        {"data", SDL_ARG_STRING, &data_dir, "folder with the Fashion-MNIST IDX files"},
        {"threads", SDL_ARG_INT, &threads, "CPU threads per rank (0: all cores)"},
        {"steps-per-epoch", SDL_ARG_INT, &steps_per_epoch, "stop each epoch after this many steps (0: all)"},
        {"limit", SDL_ARG_INT, &limit, "use only the first N training and test images (0: all)"},
        {"fp16-allreduce", SDL_ARG_BOOL, &fp16, "send gradients as fp16"},
        {"mode", SDL_ARG_STRING, &mode, "buckets (overlap with backward) or flat (one allreduce)"},
        {"algo", SDL_ARG_STRING, &algo, "mpi (MPI_Allreduce), ring (sdl's ring allreduce) or shm (one node: shared memory)"},
        {"bucket-mb", SDL_ARG_FLOAT, &bucket_mb, "bucket size in MiB (0: 25)"},
        {"device", SDL_ARG_STRING, &device, "cpu, cuda (an nvcc build: one GPU per rank, local rank mod GPUs) or cuda:N"},
        {"transport", SDL_ARG_STRING, &transport, "GPU gradients: auto, nccl, cuda-mpi or host"},
        {"bf16-allreduce", SDL_ARG_BOOL, &bf16, "send GPU gradients as bf16"},
        {"result-file", SDL_ARG_STRING, &result_file, "per-epoch CSV results (rank 0)"},
        {"batch-norm", SDL_ARG_BOOL, &batch_norm, "batch norm after each conv"},
        {"sync-bn", SDL_ARG_BOOL, &sync_bn, "synced batch norm over all ranks (implies --batch-norm)"},
        {"zero", SDL_ARG_INT, &zero, "ZeRO stage: 1 shards the optimizer state, 2 the gradients too, 3 the parameters too (0: plain DDP)"},
        {"global-batch", SDL_ARG_INT, &global_batch, "images per update, a multiple of ranks x batch-size (0: ranks x batch-size)"},
        {"checkpoint-every", SDL_ARG_INT, &ckpt_every, "write --checkpoint every K updates and resume from it (0: never)"},
        {"checkpoint", SDL_ARG_STRING, &ckpt_path, "the checkpoint file"},
        {"help", SDL_ARG_BOOL, &help, "show this text"},
    };
    int nargs = (int)(sizeof args / sizeof args[0]);
    sdl_result ar = sdl_args_parse(argc, argv, args, nargs);
    sdl_device dev = SDL_CPU;
    if (ar == SDL_OK) ar = sdl_device_parse(device, &dev);
    if (global_batch == 0) global_batch = size * batch_size;
    int accum = global_batch / (size * batch_size);
    if (ar == SDL_OK && (zero < 0 || zero > 3 || ckpt_every < 0 || accum < 1 || global_batch % (size * batch_size) != 0 ||
                         ((zero || sync_bn) && dev != SDL_CPU))) {
        if (rank == 0) fprintf(stderr, "bad --zero (0, 1, 2, 3), --checkpoint-every, or --global-batch %d (a multiple of %d ranks x "
                                       "batch %d); --zero and --sync-bn train on the CPU\n", global_batch, size, batch_size);
        sdl_mpi_finalize();
        return 2;
    }
    if (ar != SDL_OK || help || epochs < 1 || batch_size < 1 || lr <= 0.0f ||
        (strcmp(mode, "buckets") && strcmp(mode, "flat")) || (strcmp(algo, "mpi") && strcmp(algo, "ring") && strcmp(algo, "shm")) ||
        (strcmp(transport, "auto") && strcmp(transport, "nccl") && strcmp(transport, "cuda-mpi") && strcmp(transport, "host"))) {
        if (rank == 0) {
            if (ar != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
            else if (!help) fprintf(stderr, "bad --epochs, --batch-size, --lr, --mode, --algo or --transport\n");
            sdl_args_usage(help ? stdout : stderr, argv[0], args, nargs);
        }
        sdl_mpi_finalize();
        return help ? 0 : 2;
    }
    sdl_set_num_threads(threads);

    /* every rank reads the files; the loader hands each its own shard */
    sdl_dataset train_set, test_set;
    if (sdl_load_fashion_mnist(data_dir, true, &train_set) != SDL_OK ||
        sdl_load_fashion_mnist(data_dir, false, &test_set) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n(install Debian's dataset-fashion-mnist or pass --data DIR)\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (limit > 0 && limit < train_set.n) train_set.n = limit;
    if (limit > 0 && limit < test_set.n) test_set.n = limit;
    sdl_loader_desc train_desc;
    memset(&train_desc, 0, sizeof train_desc);
    train_desc.data = &train_set;
    train_desc.batch_size = batch_size;
    train_desc.shuffle = true;
    train_desc.drop_last = true;
    train_desc.seed = (uint64_t)seed; /* the same on every rank: one permutation, split by rank */
    train_desc.rank = rank;
    train_desc.world_size = size;
    train_desc.mean[0] = 0.2860f;
    train_desc.std[0] = 0.3530f;
    sdl_loader_desc test_desc = train_desc;
    test_desc.data = &test_set;
    test_desc.shuffle = false;
    test_desc.drop_last = false;
    sdl_dataset test_share; /* exact evaluation: this rank's contiguous share, no padding */
    sdl_mpi_dataset_shard(&test_set, &test_share);
    test_desc.data = &test_share;
    test_desc.rank = test_desc.world_size = 0;
    sdl_loader *train_loader = sdl_loader_new(&train_desc), *test_loader = sdl_loader_new(&test_desc);

    /* (N,1,28,28) conv 3x3 32 -> relu -> conv 3x3 64 -> relu -> max-pool 2 -> (N,9216)
       -> fc 128 -> relu -> fc 10 */
    sdl_model *model = sdl_model_new((uint64_t)seed);
    sdl_module *net = sdl_sequential(model, "");
    batch_norm = batch_norm || sync_bn;
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv1", 1, 32, 3, 1, 0, true));
    if (batch_norm) sdl_seq_add(net, sdl_batch_norm_layer(model, "bn1", 32));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_conv2d_layer(model, "conv2", 32, 64, 3, 1, 0, true));
    if (batch_norm) sdl_seq_add(net, sdl_batch_norm_layer(model, "bn2", 64));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_max_pool2d_layer(model, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc1", 64 * 12 * 12, 128, true));
    sdl_seq_add(net, sdl_relu_layer(model));
    sdl_seq_add(net, sdl_linear_layer(model, "fc2", 128, 10, true));
    /* --device cuda: this rank's GPU (local rank mod GPUs), then the model moves there before
       the optimizer is made */
    if ((dev == SDL_CUDA && sdl_mpi_cuda_set_device() < 0) || sdl_model_to(model, dev) != SDL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    float peak_lr = lr_scaling ? sdl_scale_lr(lr, size, 0, 0) : lr;
    if (sync_bn) sdl_mpi_sync_batch_norm(model);
    sdl_optim *opt = sdl_optim_by_name(model, optimizer, peak_lr, 0.0f); /* with --zero only until the broadcast */
    if (!train_loader || !test_loader || !opt) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    opt->desc.accum_steps = accum; /* update on every accum-th micro-batch (--global-batch) */

    /* every rank starts from rank 0's weights, then averages gradients every step */
    sdl_mpi_ddp_desc dd;
    memset(&dd, 0, sizeof dd);
    dd.mode = strcmp(mode, "flat") == 0 ? SDL_MPI_MODE_FLAT : SDL_MPI_MODE_BUCKETS;
    dd.algo = strcmp(algo, "ring") == 0 ? SDL_MPI_ALGO_RING : strcmp(algo, "shm") == 0 ? SDL_MPI_ALGO_SHM : SDL_MPI_ALGO_MPI;
    dd.bucket_mb = bucket_mb;
    dd.fp16 = fp16;
    sdl_mpi_gpu_desc gd; /* for a model on the GPU */
    memset(&gd, 0, sizeof gd);
    gd.bf16 = bf16;
    gd.transport = !strcmp(transport, "nccl") ? SDL_MPI_TRANSPORT_NCCL : !strcmp(transport, "cuda-mpi") ? SDL_MPI_TRANSPORT_CUDA_MPI
                 : !strcmp(transport, "host") ? SDL_MPI_TRANSPORT_HOST : SDL_MPI_TRANSPORT_AUTO;
    sdl_mpi_set_transport(gd.transport); /* the broadcast's too */
    sdl_mpi_ddp *ddp = NULL;
    sdl_mpi_zero *z = NULL;
    if (sdl_mpi_broadcast_model(model, opt, 0) != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (zero) { /* each rank keeps its shard's optimizer state */
        sdl_mpi_zero_desc zd = {.stage = zero, .optim = opt->desc, .wire = fp16 ? SDL_MPI_WIRE_F16 : SDL_MPI_WIRE_F32, .bucket_mb = bucket_mb};
        sdl_optim_free(opt);
        opt = NULL;
        z = sdl_mpi_zero_new(model, &zd);
    } else {
        ddp = sdl_mpi_ddp_new_gpu(model, &dd, &gd);
    }
    if (!ddp && !z) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    /* resume: the checkpoint says the epoch and how many of its images were done */
    sdl_checkpoint_info resume;
    memset(&resume, 0, sizeof resume);
    FILE *found = ckpt_every > 0 ? fopen(ckpt_path, "rb") : NULL;
    bool resumed = found != NULL;
    if (found) fclose(found);
    if (resumed) {
        sdl_result lr_ = z ? sdl_mpi_zero_load(z, ckpt_path, &resume) : sdl_checkpoint_load(ckpt_path, model, opt, &resume);
        if (lr_ != SDL_OK) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
        if (opt) opt->desc.accum_steps = accum; /* this world size's, whatever the file's run used */
        if (rank == 0) printf("resumed from %s: epoch %lld, %lld images into it, update %lld\n", ckpt_path, (long long)resume.epoch + 1,
                              (long long)resume.samples, (long long)resume.step);
    }

    /* per update: a linear warm-up from the one-rank rate to peak_lr, then --lr-scheduler */
    int64_t steps = sdl_loader_num_batches(train_loader); /* micro-batches per epoch */
    if (steps_per_epoch > 0 && steps_per_epoch < steps) steps = steps_per_epoch;
    int64_t updates = steps / accum; /* per epoch */
    sdl_sched_desc sched;
    memset(&sched, 0, sizeof sched);
    sched.base_lr = peak_lr;
    sched.total = (int64_t)epochs * updates;
    sched.warmup = (int64_t)warmup_epochs * updates;
    sched.warmup_start_factor = lr / peak_lr;
    if (sdl_sched_by_name(&sched, scheduler) != SDL_OK) { fprintf(stderr, "rank %d: --lr-scheduler: %s\n", rank, sdl_last_error()); MPI_Abort(MPI_COMM_WORLD, 1); }
    if (rank == 0) {
        char acc[40] = "";
        if (accum > 1) snprintf(acc, sizeof acc, " x accumulation %d", accum);
        printf("fashion_ddp: %d ranks x batch %d%s = global batch %d, lr %g (peak %g, warm-up %d epochs, then %s), %s, %s%s %s%s%s, "
               "%lld parameters, %lld steps/epoch\n", size, batch_size, acc, global_batch, (double)lr, (double)peak_lr, warmup_epochs,
               scheduler, optimizer,
               zero == 1 ? "ZeRO-1" : zero == 2 ? "ZeRO-2" : zero == 3 ? "ZeRO-3" : mode, sync_bn ? " sync-bn" : batch_norm ? " bn" : "",
               z ? "cpu" : dev == SDL_CUDA ? sdl_mpi_transport_name(sdl_mpi_ddp_transport(ddp)) : algo, fp16 ? " fp16" : "", bf16 ? " bf16" : "",
               (long long)sdl_model_num_params(model), (long long)steps);
        if (z) printf("ZeRO-%d: rank 0 holds %.1f MiB of parameters, gradients and optimizer state\n", zero, sdl_mpi_zero_bytes(z) / 1048576.0);
        if (dev == SDL_CUDA) printf("device: %s, one GPU per rank\n", device);
        if (result_file[0] && !resumed) remove(result_file);
    }

    double train_time = 0.0;
    int64_t images = 0;
    for (int epoch = (int)resume.epoch; epoch < epochs; epoch++) {
        /* a new permutation, the same on every rank; a resumed epoch goes on where it was */
        sdl_loader_seek(train_loader, epoch, epoch == resume.epoch ? resume.samples : 0);
        int64_t left = sdl_loader_num_batches(train_loader), todo = (steps < left ? steps : left) / accum * accum; /* whole updates */
        double s[3] = {0, 0, 0};                   /* loss * n, correct, n */
        double t0 = sdl_now();
        sdl_tensor *x, *y;
        for (int64_t step = 0; step < todo; step++) {
            int64_t done = z ? sdl_mpi_zero_steps(z) : opt->step; /* updates so far */
            bool update = z ? sdl_mpi_zero_is_update_step(z) : sdl_optim_is_update_step(opt);
            if (z) sdl_mpi_zero_set_lr(z, sdl_sched_lr(&sched, done));
            else sdl_optim_set_lr(opt, sdl_sched_lr(&sched, done));
            if (ddp) sdl_mpi_ddp_set_sync(ddp, update); /* accumulation: communicate on the update only */
            sdl_mpi_timeline_begin("data loading");
            bool more = sdl_loader_next(train_loader, &x, &y);
            if (more) x = sdl_tensor_to(x, dev), y = sdl_tensor_to(y, dev);
            sdl_mpi_timeline_end();
            if (!more) break;
            sdl_mpi_timeline_begin("forward");
            sdl_tensor *logits = sdl_forward(net, x);
            sdl_tensor *loss = sdl_cross_entropy(logits, y, 0.0f);
            sdl_mpi_timeline_end();
            sdl_mpi_timeline_begin("backward");
            sdl_result r = sdl_backward(loss);
            sdl_mpi_timeline_end();
            if (r == SDL_OK && ddp && update) r = sdl_mpi_ddp_sync(ddp); /* waits for the buckets: mean gradients */
            if (r == SDL_OK && z) r = sdl_mpi_zero_step(z);                /* reduce-scatter, update shard, allgather */
            if (r != SDL_OK || !isfinite(sdl_item(loss))) {
                fprintf(stderr, "rank %d epoch %d: training failed: %s (loss %g)\n", rank, epoch + 1, sdl_last_error(), (double)sdl_item(loss));
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            sdl_mpi_timeline_begin("optimizer step");
            if (opt) sdl_optim_step(opt);
            sdl_mpi_timeline_end();
            s[0] += (double)sdl_item(loss) * (double)y->numel;
            s[1] += (double)sdl_count_correct(logits, y);
            s[2] += (double)y->numel;
            sdl_arena_reset();
            done = z ? sdl_mpi_zero_steps(z) : opt->step;
            if (ckpt_every > 0 && update && done % ckpt_every == 0) { /* atomic: path.tmp, fsync, rename */
                bool over = step + 1 == todo; /* the epoch's last update: a resume starts the next */
                int64_t e = epoch + (over ? 1 : 0), at = over ? 0 : sdl_loader_samples_done(train_loader);
                sdl_result cr = z ? sdl_mpi_zero_save(z, ckpt_path, e, at)
                                  : rank == 0 ? sdl_checkpoint_save_at(ckpt_path, model, opt, e, at) : SDL_OK;
                if (cr != SDL_OK) fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error());
                sdl_mpi_barrier();
            }
        }
        double dt = sdl_now() - t0;
        if (steps_per_epoch > 0) sdl_loader_set_epoch(train_loader, epoch + 1); /* drop the rest */
        train_time += dt;
        images += (int64_t)s[2];
        sdl_mpi_sum(s, 3); /* metrics over all ranks */
        double test_loss, test_acc, cur_lr = sdl_sched_lr(&sched, z ? sdl_mpi_zero_steps(z) : opt->step);
        if (batch_norm && !sync_bn) sdl_mpi_sync_buffers(model); /* each rank's running stats: their mean */
        sdl_model_train(model, false);
        evaluate(net, test_loader, dev, &test_loss, &test_acc);
        sdl_mpi_zero_release(z); /* ZeRO-3: the parameters the evaluation gathered */
        sdl_model_train(model, true);
        if (rank == 0) {
            sdl_epoch_stats st = {epoch + 1, s[0] / s[2], s[1] / s[2], test_loss, test_acc, cur_lr, dt};
            printf("epoch %d/%d: loss %.4f acc %.4f test_loss %.4f test_acc %.4f lr %.4g time %.1fs\n", epoch + 1, epochs,
                   st.loss, st.accuracy, test_loss, test_acc, cur_lr, dt);
            if (result_file[0] && sdl_csv_append(result_file, &st) != SDL_OK) fprintf(stderr, "%s\n", sdl_last_error());
        }
    }

    /* throughput: each rank's own, and the sum (ranks work at the same time) */
    double mine = train_time > 0 ? (double)images / train_time : 0.0;
    double *all = (double *)calloc((size_t)size, sizeof(double));
    MPI_Gather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, sdl_mpi_comm());
    if (rank == 0) {
        double total = 0, sq = 0;
        for (int r = 0; r < size; r++) { printf("rank %d: images/sec: %.2f\n", r, all[r]); total += all[r]; }
        double mean = total / size;
        for (int r = 0; r < size; r++) sq += (all[r] - mean) * (all[r] - mean);
        double sd = size > 1 ? sqrt(sq / (size - 1)) : 0.0;
        printf("Img/sec per GPU: %.2f +-%.2f\n", mean, 1.96 * sd);
        printf("total images/sec: %.2f\n", total);
        printf("total images/sec/gpu: %.2f\n", mean);
        printf("total training time in sec: %.2f\n", train_time);
    }
    free(all);
    sdl_mpi_ddp_free(ddp);
    sdl_mpi_zero_free(z);
    sdl_loader_free(train_loader);
    sdl_loader_free(test_loader);
    sdl_optim_free(opt);
    sdl_model_free(model);
    if (dev == SDL_CUDA) sdl_cuda_shutdown();
    sdl_dataset_free(&train_set);
    sdl_dataset_free(&test_set);
    sdl_arena_release();
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}
