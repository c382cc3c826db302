/* sdl_mpi.h - v0.1 - data-parallel training over MPI for sdl - public domain or MIT (see sdl.h)

   Every rank holds the whole model, trains on its own shard of each batch, and averages the
   gradients with the others before the optimizer step (PyTorch's DistributedDataParallel,
   Horovod). Plain MPI-3, so it runs with Open MPI, MPICH, Intel MPI, under mpirun or srun, and
   as a single process with no launcher at all (rank 0 of 1).
   Beyond replicas: SyncBatchNorm, ZeRO stages 1-3 (sharded optimizer state, gradients,
   parameters), exact distributed evaluation, and checkpoints that resume at another world
   size (see Evaluation, SyncBN, ZeRO and Restarts under TOPICS).

   Do this:
      #define SDL_MPI_IMPLEMENTATION
   before you include this file in *one* C or C++ file. Include sdl.h first.
   Compile with  mpicc -O3 -march=native prog.c -lm -lpthread  and run with  mpirun -np 4 ./prog

   A ten-line example (see examples/fashion_ddp.c for the whole program):

      sdl_mpi_init(&argc, &argv);
      sdl_model *m = sdl_model_new(42);  ... build the net ...
      sdl_optim *opt = sdl_sgd(m, 0.01f * sdl_mpi_size(), 0.9f, 0.0f, false);
      sdl_mpi_broadcast_model(m, opt, 0);                   // every rank starts from rank 0's
      sdl_mpi_ddp *ddp = sdl_mpi_ddp_new(m, NULL);          // 25 MiB buckets, MPI_Allreduce
      for (...) {                                           // loader desc: .rank, .world_size
          sdl_backward(sdl_cross_entropy(sdl_forward(net, x), y, 0.0f));
          sdl_mpi_ddp_sync(ddp);                            // gradients are now the mean
          sdl_optim_step(opt); sdl_arena_reset();           // the step also zeroes the grads
      }
      sdl_mpi_ddp_free(ddp); sdl_mpi_finalize();

   CONFIGURATION (define before including; (impl) = only in the implementation file)

      SDL_MPI_BUCKET_MB        (impl) default bucket size in MiB, default 25 (as DDP)
      SDL_MPI_ZERO_BUCKET_MB   (impl) ZeRO's gradient buckets in MiB, default 4
      SDL_MPI_TIMEOUT_S        (impl) collective checker timeout in seconds, default 60
      SDL_MPI_TRACE_EVENTS     (impl) timeline events kept per rank, default 65536
      SDL_MPI_RING_SEGMENT     (impl) floats per ring message while reducing, default 262144
                               (1 MiB; longer chunks are pipelined in pieces of this size)
      SDL_MPI_SHM_BUCKET_MB    (impl) default bucket size with SDL_MPI_ALGO_SHM, default 1
      SDL_MPI_SHM_PIECE        (impl) floats a rank reduces at a time with SDL_MPI_ALGO_SHM,
                               default 65536

      SDL_MPI_NCCL             (impl) the GPU path may use NCCL (nccl.h, -lnccl)

   ENVIRONMENT (read by sdl_mpi_init; the last three when a GPU model is synchronised)

      SDL_MPI_TIMEOUT=3        checker timeout in seconds (0 turns the checker off)
      SDL_TIMELINE=trace.json  write a Chrome-trace / Perfetto timeline per rank, named
                               trace-rank0.json, trace-rank1.json, ... (open in ui.perfetto.dev)
      SDL_MPI_TRANSPORT=host   GPU models: nccl, cuda-mpi, host or auto (the default)
      SDL_MPI_CUDA_AWARE=1     trust (1) or distrust (0) MPI with device pointers
      SDL_NCCL_ID_FILE=path    srun without MPI: where rank 0 leaves the ncclUniqueId

   TOPICS
      Ranks       sdl_mpi_rank/size from MPI_COMM_WORLD; local rank/size (ranks on this node,
                  to pick a GPU) from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED).
                  sdl_mpi_launcher_env() reads mpirun's (OMPI_*, PMI_*) or srun's variables
                  (SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID) without MPI, e.g. before MPI_Init.
                  Sharded data: give the loader .rank = sdl_mpi_rank(), .world_size =
                  sdl_mpi_size() and the same seed on every rank; sdl_loader_set_epoch(l, e)
                  draws epoch e's permutation, the same on every rank, each taking its share.
      Gradients   sdl_mpi_ddp averages the model's flat gradient array. Mode FLAT: one
                  allreduce over everything after backward. Mode BUCKETS (default): the array
                  is cut into ~25 MiB buckets of whole parameters in reverse creation order
                  (the order backward finishes them); a bucket's MPI_Iallreduce starts as
                  soon as its last gradient is final (the model's grad hook), so
                  communication overlaps the rest of backward. The last bucket goes at
                  sdl_mpi_ddp_sync with MPI_Allreduce: nothing is left to overlap, and the
                  blocking call is faster (a model under 25 MiB: one bucket, as FLAT); sync
                  then waits for the others. MPI moves nonblocking messages on only inside
                  MPI calls: the grad hook calls MPI_Test on the buckets in flight. Between
                  ranks of one node (shared memory) the copies are the ranks' own CPU work,
                  so smaller buckets buy no overlap there: Open MPI 4.1's MPI_Iallreduce of
                  4.7 MB, 2 ranks, took 0.9-1.6 ms against MPI_Allreduce's 0.56-0.66 ms.
                  Algorithm: MPI_Allreduce (default) or our ring (run at sync time in bucket
                  mode), or SDL_MPI_ALGO_SHM when every rank is on one node: the gradient
                  arrays live in one shared-memory window, and the ranks waiting in sync
                  average each bucket in pieces, reading the others' arrays directly, as soon
                  as it is final on every rank (1 MiB buckets by default). The rank done with
                  backward first does the work while the others still compute, instead of
                  idling in MPI_Allreduce until they arrive (see >>mpi-shm). It sends no
                  messages, so it has no fp16; sdl_mpi_ddp_new and _free are then collective,
                  and the model's gradients live in the window until sdl_mpi_ddp_free gives
                  them back: free the ddp before the model.
                  fp16: gradients travel as IEEE half after division by world size.
                  Averages are over ranks, so a loss that is a mean over each rank's batch
                  gives the gradient of the mean over the global batch. Every backward with
                  sync on must be followed by sdl_mpi_ddp_sync before the next one.
                  sdl_mpi_ddp_set_sync(ddp, false) skips communication (gradient
                  accumulation, DDP's no_sync); set it true again before the last micro-batch
                  (scale each micro-batch's loss by 1/k for the mean over k micro-batches).
      Checker     Every collective sdl_mpi makes first exchanges (sequence number, name,
                  count) with all ranks. When ranks disagree, or one does not arrive within
                  the timeout, every rank that can prints which rank is where, then the job is
                  ended with MPI_Abort. This is the one place the library ends the program:
                  an MPI job whose ranks disagree would otherwise hang until the batch system
                  kills it, with no word of why, and MPI offers no way to cancel a collective.
                  Call sdl_mpi_check("name", count) before your own collectives too.
                  The ddp checks once per sdl_mpi_ddp_sync (name and bucket layout), not at
                  each bucket: a check waits for the other ranks, which in the middle of
                  backward would pay each rank's delays twice.
                  Cost: 2(N-1) small messages per checked collective; timeout 0 turns it off.
      Evaluation  sdl_mpi_dataset_shard(&test, &mine) gives rank r a contiguous share of the
                  test set (sdl_mpi_shard_range: sizes differ by at most one, nothing padded,
                  so 1000 samples on 3 ranks are evaluated 1000 times, not 1002 as with the
                  padded sampler); a loader with world_size 0 and no shuffle walks it in
                  order, sdl_mpi_sum adds the counts, and sdl_mpi_allgather_rows puts every
                  rank's predictions (or logits) back in dataset order on every rank.
      SyncBN      sdl_mpi_sync_batch_norm(m) makes every batch-norm layer of m use the batch
                  statistics of all ranks together (PyTorch's SyncBatchNorm): forward sums
                  counts, sums and squared deviations per channel over ranks, backward the
                  sums of dy and dy xhat; running stats move by the same numbers on every
                  rank. With plain BN each rank's running stats are its own: call
                  sdl_mpi_sync_buffers(m) (their mean over ranks) before evaluating.
      ZeRO        sdl_mpi_zero shards what data parallel replicates (DeepSpeed's stages):
                  stage 1 the optimizer state, stage 2 the gradients too, stage 3 the
                  parameters too (FSDP). Each rank owns a range of the flat parameter array
                  with an ordinary sdl_optim over it (any kind; lars and lamb get ranges cut
                  at tensor boundaries). The gradients are reduce-scattered to their owners
                  (4 MiB buckets, f32, f16 or bf16: stage 1 in sdl_mpi_zero_step, stages 2
                  and 3 each bucket as soon as backward has finished it), and on an
                  update step scales them for the accumulation, clips to the global norm
                  (sums of squares added over ranks), updates the shard and, stages 1 and 2,
                  allgathers the parameters. Use it in place of sdl_mpi_ddp + sdl_optim_step:
                      sdl_mpi_zero *z = sdl_mpi_zero_new(m, &(sdl_mpi_zero_desc){.stage = 2,
                          .optim = {.kind = SDL_OPTIM_ADAMW, .lr = 1e-3f, .accum_steps = 4}});
                      ... sdl_backward(loss); sdl_mpi_zero_step(z); sdl_arena_reset(); ...
                  Stages 2 and 3: backward puts gradients in the step arena
                  (sdl_model_arena_grads) and each micro-batch is reduced (the grad hook
                  sends each bucket while backward goes on; the step waits). Stage 3:
                  the model keeps no parameters (sdl_model_external_params); each layer
                  gathers its own just before its forward, while the next layer's gather is
                  already on the wire, and frees them after it; backward gathers them again
                  just before the layer's backward (the model's pre-grad hook), while the
                  previous layer's gather is on the wire, and frees them after it. So about
                  two layers' parameters are whole at a time, not the model
                  (sdl_mpi_zero_peak_gathered; sdl_mpi_zero_release after evaluation
                  forwards frees a prefetch nobody used). Per rank, P floats, Adam,
                  f32: DDP 16P bytes, stage 1 8P + 8P/N, stage 2 4P + 12P/N, stage 3 16P/N
                  (plus two 4 MiB buckets; make bench-mpi measures them for ResNet-18);
                  sdl_mpi_zero_bytes says what a rank holds. sdl_mpi_zero_save gathers one
                  ordinary checkpoint (the file sdl_checkpoint_save writes for the whole
                  model and optimizer); sdl_mpi_zero_load reads one at any world size and
                  stage, and so does sdl_checkpoint_load in one process.
      Restarts    Fault tolerance and elastic restart (torchrun style), with the pieces in
                  sdl.h: every K updates rank 0 writes sdl_checkpoint_save_at(path, m, opt,
                  epoch, sdl_loader_samples_done(loader)) (sdl_mpi_zero_save with ZeRO):
                  path.tmp, fsync, rename, so a crash leaves the last file whole. A rank
                  that dies (kill -9) ends the job: mpirun notices within a second and names
                  it ("process rank 1 ... exited on signal 9"); where a launcher does not, the
                  others wait at their next checked collective and the checker names the
                  missing rank after SDL_MPI_TIMEOUT seconds. tools/sdl_elastic.sh reruns
                  the job with one rank fewer, up to --max-restarts times; the program loads
                  the checkpoint, sets accum_steps = global batch / (world x batch) so the
                  global batch stays, and calls sdl_loader_seek(loader, info.epoch,
                  info.samples): the epoch goes on with nothing skipped or repeated, and the
                  schedule goes on from opt->step (examples/fashion_ddp.c --checkpoint-every).
      Timeline    sdl_mpi_timeline_begin("forward") / _end() mark phases; sdl_mpi adds its
                  broadcasts, bucket allreduces and waits. Events go to a buffer allocated once
                  (no allocation per step), written by sdl_mpi_timeline_write or at finalize.
      Metrics     sdl_mpi_sum / sdl_mpi_mean over a few doubles (loss, accuracy; images/s is a
                  sum). Print on rank 0 only: if (sdl_mpi_rank() == 0) printf(...).
      GPUs        When the implementation is compiled by nvcc after sdl_cuda.h, a model on the
                  GPU (sdl_cuda_model_to_device) is averaged on the GPU: one rank per GPU,
                  sdl_mpi_cuda_set_device() picks device = local rank mod GPUs (call it
                  before sdl_cuda_init). Three transports, chosen per ddp
                  (sdl_mpi_ddp_new_gpu) or for the process (SDL_MPI_TRANSPORT /
                  sdl_mpi_set_transport), default the best available:
                    NCCL      define SDL_MPI_NCCL and link -lnccl. rank 0's ncclUniqueId is
                              broadcast over MPI; buckets go to ncclAllReduce on a second
                              (communication) stream, each after a CUDA event recorded on
                              the compute stream when backward finished its gradients, so a
                              bucket is reduced while backward goes on; sync makes the compute
                              stream wait for the last bucket's event (no host wait at all).
                              Chosen when every rank on a node has a GPU of its own (NCCL
                              refuses two ranks on one GPU).
                    CUDA_MPI  MPI_Iallreduce straight on device memory (CUDA-aware MPI:
                              Open MPI's MPIX_Query_cuda_support(); SDL_MPI_CUDA_AWARE=1 or 0
                              overrides what MPI says, e.g. for MPICH/Cray).
                    HOST      each bucket is copied to pinned host memory on the
                              communication stream, reduced with MPI_Iallreduce, copied back.
                  fp16 or bf16 on the wire (desc.fp16 / gpu desc bf16): a kernel divides by the
                  world size and converts, the halves travel, a kernel converts back (NCCL
                  and HOST; CUDA-aware MPI cannot run a user op on device memory).
                  desc.algo (our ring) is for CPU models; on the GPU, NCCL picks its own
                  ring or tree, and the MPI transports use MPI_Allreduce.
                  srun without MPI (MPI sees one rank, SLURM_NTASKS more): NCCL only; the
                  ranks meet through a file on a shared file system (SDL_NCCL_ID_FILE,
                  default $SLURM_SUBMIT_DIR/.sdl-nccl-id-<job>.<step>) that rank 0 writes
                  atomically and the others poll (SDL_MPI_TIMEOUT); sdl_mpi_sum and the
                  checker then see one rank. The checker and the timeline work on every
                  transport: a bucket's event lasts what the GPU measured, from its start
                  on the communication stream to its result (placed at the host's launch;
                  with the timeline on, sync waits for the GPU to read the times).
      Federated   sdl_fed: FedAvg rounds over K clients (IID, Dirichlet or label-shard
                  partitions), local SGD, FedProx, fp16 or top-k updates (>>decl-mpi-fed).
      Pipeline    sdl_pipe: a sequential cut into stages over ranks, GPipe or 1F1B over M
                  micro-batches, with data parallelism on a grid (>>decl-mpi-pipe).
      Tensor      sdl_tp: Megatron's column- and row-parallel linears, a parallel MLP,
                  attention split by heads, a vocabulary-parallel embedding and cross
                  entropy, built on user-defined ops (>>decl-mpi-tp).
*/
#ifndef SDL_H_INCLUDED
#error "include sdl.h before sdl_mpi.h"
#endif
#ifndef SDL_MPI_H_INCLUDED
#define SDL_MPI_H_INCLUDED
/* the C API only: the deprecated C++ bindings do not compile warning-free */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* >>decl-mpi-init */
/* MPI_Init unless MPI is up already (then sdl_mpi_finalize leaves MPI_Finalize to you).
   Without a launcher this is a single process, rank 0 of 1. */
SDL_API sdl_result sdl_mpi_init(int *argc, char ***argv);
SDL_API sdl_result sdl_mpi_finalize(void); /* checks every rank got here, writes the timeline */
SDL_API int sdl_mpi_rank(void);
SDL_API int sdl_mpi_size(void);
SDL_API int sdl_mpi_local_rank(void);  /* rank among the processes on this node */
SDL_API int sdl_mpi_local_size(void);
SDL_API MPI_Comm sdl_mpi_comm(void);   /* sdl's own copy of MPI_COMM_WORLD */
/* rank, size and local rank from the launcher's environment (Open MPI's mpirun:
   OMPI_COMM_WORLD_*, MPICH/Intel: PMI_*, srun: SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, in
   that order); works before MPI_Init. false (and 0, 1, 0) without a launcher. */
SDL_API bool sdl_mpi_launcher_env(int *rank, int *size, int *local_rank);

/* >>decl-mpi-check */
/* Every rank must call the same checked collectives in the same order. Before each one the
   ranks exchange (sequence number, name, count); a disagreement or a rank missing for
   longer than the timeout is reported and ends the job (see Checker above). */
SDL_API void sdl_mpi_check(const char *name, int64_t count);
SDL_API void sdl_mpi_set_timeout(double seconds); /* 0 turns the checker off */
SDL_API double sdl_mpi_get_timeout(void);

/* >>decl-mpi-collectives */
typedef enum sdl_mpi_algo {
    SDL_MPI_ALGO_DEFAULT = 0, /* MPI_Allreduce */
    SDL_MPI_ALGO_MPI,
    SDL_MPI_ALGO_RING,        /* ours: reduce-scatter then allgather around a ring */
    SDL_MPI_ALGO_SHM          /* ranks of one node, sdl_mpi_ddp only: a shared-memory reduce
                                 that the first rank done with backward does while it waits */
} sdl_mpi_algo;
/* sum in place over all ranks */
SDL_API sdl_result sdl_mpi_allreduce(float *data, int64_t count, sdl_mpi_algo algo);
SDL_API sdl_result sdl_mpi_ring_allreduce(float *data, int64_t count);
/* mean in place; fp16: sent as half after dividing by the world size */
SDL_API sdl_result sdl_mpi_average(float *data, int64_t count, sdl_mpi_algo algo, bool fp16);
SDL_API sdl_result sdl_mpi_sum(double *v, int n);   /* metrics: in place, every rank gets it */
SDL_API sdl_result sdl_mpi_mean(double *v, int n);
SDL_API sdl_result sdl_mpi_barrier(void);
/* parameters, buffers (batch-norm statistics) and, if opt, optimizer state, step, lr and
   micro-step count, from root to every rank */
SDL_API sdl_result sdl_mpi_broadcast_model(sdl_model *m, sdl_optim *opt, int root);
/* IEEE half <-> float, round to nearest even (exported for tests and your own use) */
SDL_API uint16_t sdl_mpi_f32_to_f16(float f);
SDL_API float sdl_mpi_f16_to_f32(uint16_t h);

/* >>decl-mpi-gpu: models on the GPU (see GPUs above) */
typedef enum sdl_mpi_transport {
    SDL_MPI_TRANSPORT_AUTO = 0, /* NCCL, else CUDA-aware MPI, else host staging */
    SDL_MPI_TRANSPORT_NCCL,
    SDL_MPI_TRANSPORT_CUDA_MPI, /* MPI on device pointers */
    SDL_MPI_TRANSPORT_HOST      /* device -> pinned host, MPI, host -> device */
} sdl_mpi_transport;
typedef struct sdl_mpi_ddp sdl_mpi_ddp;
/* cudaSetDevice(local rank mod device count); returns the device, -1 on failure (no GPU, or
   built without sdl_cuda.h and nvcc). Call it before sdl_cuda_init. */
SDL_API int sdl_mpi_cuda_set_device(void);
/* the process default for GPU models (broadcast_model, and a ddp whose desc says AUTO);
   starts as SDL_MPI_TRANSPORT from the environment */
SDL_API void sdl_mpi_set_transport(sdl_mpi_transport t);
SDL_API const char *sdl_mpi_transport_name(sdl_mpi_transport t); /* "nccl", "cuda-mpi", ... */
/* what a ddp on a GPU model uses (SDL_MPI_TRANSPORT_AUTO for a CPU model) */
SDL_API sdl_mpi_transport sdl_mpi_ddp_transport(const sdl_mpi_ddp *d);
/* bytes from rank 0 to every rank through a file on a shared file system: rank 0 writes
   path.tmp and renames it to path (atomic), the others poll until it is there (at most
   timeout_s seconds, then SDL_ERR_COMM naming the file). */
SDL_API sdl_result sdl_mpi_file_rendezvous(const char *path, void *data, size_t bytes, int rank, double timeout_s);
/* bf16 (the top half of a float, round to nearest even), as the GPU wire uses it */
SDL_API uint16_t sdl_mpi_f32_to_bf16(float f);
SDL_API float sdl_mpi_bf16_to_f32(uint16_t h);

/* >>decl-mpi-ddp */
typedef enum sdl_mpi_mode {
    SDL_MPI_MODE_DEFAULT = 0, /* buckets */
    SDL_MPI_MODE_BUCKETS,
    SDL_MPI_MODE_FLAT         /* one allreduce over all gradients after backward */
} sdl_mpi_mode;
typedef struct sdl_mpi_ddp_desc {
    sdl_mpi_mode mode;
    sdl_mpi_algo algo;
    float bucket_mb;   /* 0: SDL_MPI_BUCKET_MB (25 MiB) */
    bool fp16;         /* half precision on the wire */
} sdl_mpi_ddp_desc;
/* desc may be NULL (defaults). Installs the model's grad hook. */
SDL_API sdl_mpi_ddp *sdl_mpi_ddp_new(sdl_model *m, const sdl_mpi_ddp_desc *desc);
/* the same, with the GPU options (gpu NULL: the process default transport, no bf16) */
typedef struct sdl_mpi_gpu_desc {
    sdl_mpi_transport transport; /* AUTO: the process default (sdl_mpi_set_transport) */
    bool bf16;                   /* bfloat16 on the wire (desc->fp16: IEEE half) */
} sdl_mpi_gpu_desc;
SDL_API sdl_mpi_ddp *sdl_mpi_ddp_new_gpu(sdl_model *m, const sdl_mpi_ddp_desc *desc, const sdl_mpi_gpu_desc *gpu);
/* false: backward only accumulates locally (no communication) until set true again */
SDL_API void sdl_mpi_ddp_set_sync(sdl_mpi_ddp *d, bool sync);
/* after backward, before the optimizer step: every gradient is the mean over ranks */
SDL_API sdl_result sdl_mpi_ddp_sync(sdl_mpi_ddp *d);
SDL_API int sdl_mpi_ddp_num_buckets(const sdl_mpi_ddp *d);
SDL_API void sdl_mpi_ddp_free(sdl_mpi_ddp *d);

/* >>decl-mpi-eval: exact distributed evaluation (each sample once, nothing padded) */
/* this rank's contiguous share [*begin, *begin + *count) of n items; the shares of ranks
   0, 1, ... follow each other and differ by at most one item (before sdl_mpi_init: all) */
SDL_API void sdl_mpi_shard_range(int64_t n, int64_t *begin, int64_t *count);
/* this rank's share of full as a view into full's arrays (do not free it); a loader on it
   with world_size 0 and no shuffle goes through the share in dataset order */
SDL_API sdl_result sdl_mpi_dataset_shard(const sdl_dataset *full, sdl_dataset *view);
/* every rank's rows, in rank order, into all on every rank (total rows over all ranks, of
   row_bytes each); with the shares above that is dataset order (predictions, logits) */
SDL_API sdl_result sdl_mpi_allgather_rows(const void *mine, int64_t rows, size_t row_bytes, void *all, int64_t total);

/* >>decl-mpi-syncbn: SyncBatchNorm */
/* every batch-norm layer of m becomes synced over all ranks (sdl_batch_norm_synced while the
   model trains, plain batch norm on the running stats in eval); returns how many, -1 on error.
   Every rank must run the same layers in the same order (their sums are collectives). */
SDL_API int sdl_mpi_sync_batch_norm(sdl_model *m);
/* plain batch norm's running stats (every buffer) averaged over ranks, e.g. before evaluation */
SDL_API sdl_result sdl_mpi_sync_buffers(sdl_model *m);

/* >>decl-mpi-zero: ZeRO sharding (DeepSpeed's stages; see ZeRO above) */
typedef enum sdl_mpi_wire {
    SDL_MPI_WIRE_DEFAULT = 0, /* f32 */
    SDL_MPI_WIRE_F32,
    SDL_MPI_WIRE_F16,         /* gradients as IEEE half, after division by the world size */
    SDL_MPI_WIRE_BF16         /* gradients as bfloat16, the same way */
} sdl_mpi_wire;
typedef struct sdl_mpi_zero_desc {
    int stage;            /* 1: optimizer state sharded; 2: gradients too; 3: parameters too; 0: 1 */
    sdl_optim_desc optim; /* any kind; accum_steps and max_grad_norm act on the whole model */
    sdl_mpi_wire wire;
    float bucket_mb;      /* gradients reduced in pieces of this many MiB; 0: SDL_MPI_ZERO_BUCKET_MB (4) */
} sdl_mpi_zero_desc;
typedef struct sdl_mpi_zero sdl_mpi_zero;
/* collective; m as every rank's copy after sdl_mpi_broadcast_model (a CPU model). Stage 3
   shards the weight and bias of every layer (module) and needs every parameter to be one */
SDL_API sdl_mpi_zero *sdl_mpi_zero_new(sdl_model *m, const sdl_mpi_zero_desc *desc);
/* after each backward (each micro-batch), before sdl_arena_reset, in place of ddp sync +
   optimizer step: reduces the gradients to their owners and, on an update step, updates
   this rank's shard and gathers the parameters. Collective. */
SDL_API sdl_result sdl_mpi_zero_step(sdl_mpi_zero *z);
SDL_API bool sdl_mpi_zero_is_update_step(const sdl_mpi_zero *z);
SDL_API void sdl_mpi_zero_set_lr(sdl_mpi_zero *z, float lr);
SDL_API int64_t sdl_mpi_zero_steps(const sdl_mpi_zero *z);   /* updates taken */
SDL_API float sdl_mpi_zero_grad_norm(const sdl_mpi_zero *z); /* with max_grad_norm: before clipping */
/* this rank's float range [*begin, *end) of the flat parameter array */
SDL_API void sdl_mpi_zero_range(const sdl_mpi_zero *z, int64_t *begin, int64_t *end);
/* bytes this rank holds for parameters, gradients and optimizer state (the model's flat
   arrays as they are now, the shard's master copy, gradient and state, the buckets) */
SDL_API int64_t sdl_mpi_zero_bytes(const sdl_mpi_zero *z);
/* one safetensors file, as sdl_checkpoint_save_at writes for an unsharded model + optimizer
   (rank 0 writes it; collective; samples: the loader's position, sdl_loader_samples_done);
   load reads such a file at any world size and stage */
SDL_API sdl_result sdl_mpi_zero_save(sdl_mpi_zero *z, const char *path, int64_t epoch, int64_t samples);
SDL_API sdl_result sdl_mpi_zero_load(sdl_mpi_zero *z, const char *path, sdl_checkpoint_info *info);
/* stage 3: frees the parameters gathered since the last step (after an evaluation's forwards;
   sdl_mpi_zero_step does it itself) */
SDL_API void sdl_mpi_zero_release(sdl_mpi_zero *z);
/* stage 3: the most bytes of gathered layer parameters (whole or on the wire) this rank held
   at once since sdl_mpi_zero_new; 0 for stages 1, 2 */
SDL_API int64_t sdl_mpi_zero_peak_gathered(const sdl_mpi_zero *z);
/* gives the model its gradient and parameter arrays back (stages 2, 3); collective */
SDL_API void sdl_mpi_zero_free(sdl_mpi_zero *z);

/* >>decl-mpi-timeline */
/* path "trace.json" writes trace-rank<r>.json; max_events 0: SDL_MPI_TRACE_EVENTS */
SDL_API sdl_result sdl_mpi_timeline_open(const char *path, int max_events);
SDL_API void sdl_mpi_timeline_begin(const char *name); /* name: up to 31 characters kept */
SDL_API void sdl_mpi_timeline_end(void);               /* ends the innermost begin */
SDL_API sdl_result sdl_mpi_timeline_write(void);
SDL_API int64_t sdl_mpi_timeline_count(void);          /* events recorded so far */

/* >>decl-mpi-fed: federated averaging (McMahan et al. 2017, "Communication-efficient
   learning of deep networks from decentralized data"), FedProx's proximal term (Li et al.
   2020), compressed updates. K clients, client k on rank k mod size; every rank holds the
   global model. One call of sdl_fed_round:
     1. the round's clients: max(1, round(C K)) of the K, drawn from (seed, round), the same
        on every rank;
     2. each rank trains its own chosen clients one after another, each from the global
        weights w: E local epochs (or a fixed number of local steps) of plain SGD on the
        client's samples, w_k -= lr (g + mu (w_k - w)), batches of B in the client's
        order (reshuffled each local epoch with .shuffle), the loss your loss_fn returns;
     3. each client's update d_k = w_k - w is encoded (float32, fp16, or the top k% of
        d_k + e_k by magnitude with error feedback e_k = what was left out) and every
        rank gathers every payload (MPI_Allgatherv: a serverless all-to-all);
     4. every rank decodes them in client order and sets w += sum_k (n_k / n) d_k, n_k the
        client's sample count, n their sum: the same bits on any number of ranks.
   Bytes per round: the payloads as encoded (what each client would upload to a server).

      sdl_fed_desc fd = {0};
      fd.model = m; fd.loss = my_loss; fd.user = net; fd.data = &train;
      fd.clients = 100; fd.split = SDL_FED_DIRICHLET; fd.alpha = 0.1f; fd.fraction = 0.1f;
      fd.local_epochs = 1; fd.batch_size = 10; fd.lr = 0.05f; fd.mean[0] = 0.286f; fd.std[0] = 0.353f;
      sdl_fed *f = sdl_fed_new(&fd);
      for (int r = 0; r < 50; r++) { sdl_fed_round(f, &st); ... evaluate m ... }
      sdl_fed_free(f);

   The round resets the step arena after each local step (as a training loop does). */
typedef enum sdl_fed_split {
    SDL_FED_IID = 0,     /* shuffled, then K equal parts */
    SDL_FED_DIRICHLET,   /* per class, proportions over clients ~ Dirichlet(alpha) (Hsu et al. 2019) */
    SDL_FED_SHARDS       /* sorted by label, cut into K * shards_per_client shards, dealt at random */
} sdl_fed_split;
typedef enum sdl_fed_compress {
    SDL_FED_FLOAT32 = 0, /* d_k as it is: 4 bytes a parameter */
    SDL_FED_FP16,        /* IEEE half: 2 bytes a parameter */
    SDL_FED_TOPK         /* the largest topk * P of d_k + e_k: 8 bytes each (index, value) */
} sdl_fed_compress;
/* the training loss of one batch: x f32 (B, C, H, W) normalised, y i32 (B) */
typedef sdl_tensor *(*sdl_fed_loss_fn)(void *user, sdl_tensor *x, sdl_tensor *y);
typedef struct sdl_fed_desc {
    sdl_model *model;          /* the global model (same weights on every rank) */
    sdl_fed_loss_fn loss;
    void *user;
    const sdl_dataset *data;   /* the whole training set, the same on every rank */
    int clients;               /* K (0: the number of ranks) */
    sdl_fed_split split;
    float alpha;               /* Dirichlet concentration (0: 0.5) */
    int shards_per_client;     /* SDL_FED_SHARDS (0: 2) */
    float fraction;            /* C, clients per round (0: all) */
    int local_epochs;          /* E (0: 1) */
    int local_steps;           /* > 0: this many local batches instead of E epochs */
    int batch_size;            /* B (0: 32) */
    float lr;                  /* local SGD rate (0: 0.01) */
    float mu;                  /* FedProx proximal weight; 0: plain FedAvg */
    bool shuffle;              /* reshuffle a client's samples each local epoch */
    sdl_fed_compress compress;
    float topk;                /* SDL_FED_TOPK: share of parameters sent (0: 0.01) */
    uint64_t seed;             /* partition, client choice, shuffles */
    float mean[4], std[4];     /* per channel, after /255; std 0: none */
    MPI_Comm comm;             /* 0: sdl_mpi_comm() */
} sdl_fed_desc;
typedef struct sdl_fed_stats {
    int64_t round;             /* rounds done, this one included */
    int clients;               /* clients trained this round */
    int64_t samples;           /* their sample counts summed (n) */
    int64_t bytes;             /* payload bytes this round, as encoded */
    int64_t bytes_dense;       /* the same updates as float32 */
    double train_loss;         /* mean local training loss over every local batch */
} sdl_fed_stats;
typedef struct sdl_fed sdl_fed;
/* index (d->n): sample indices grouped by client; offset (clients + 1): client k holds
   index[offset[k] .. offset[k+1]). The same on every machine for a seed. */
SDL_API sdl_result sdl_fed_partition(const sdl_dataset *d, int clients, sdl_fed_split split, float alpha,
                                     int shards_per_client, uint64_t seed, int64_t *index, int64_t *offset);
SDL_API sdl_fed *sdl_fed_new(const sdl_fed_desc *desc);
SDL_API sdl_result sdl_fed_round(sdl_fed *f, sdl_fed_stats *stats); /* stats may be NULL */
/* client k's sample indices (a pointer into the partition) and their count */
SDL_API const int64_t *sdl_fed_client_samples(const sdl_fed *f, int k, int64_t *count);
SDL_API void sdl_fed_free(sdl_fed *f);

/* >>decl-mpi-pipe: pipeline parallelism. A sequential model (built the same on every rank)
   is cut into S stages, one per rank of the pipeline's communicator; each step splits the
   batch into M micro-batches. Stage s runs children [first, end) of the sequential on
   the activations stage s-1 sends it (MPI_Isend/MPI_Irecv, receives posted at the step's
   start) and sends back the gradient of its input; the loss is on the last stage, each
   micro-batch's scaled by 1/M, so the gradients equal one process on the whole batch.
   Schedules (Huang et al. 2019 GPipe; Narayanan et al. 2021 PipeDream-flush = 1F1B):
     GPipe  all M forwards, then all M backwards: M micro-batches' activations held.
     1F1B   stage s runs S-1-s forwards, then alternates one forward, one backward, then
            the remaining backwards: at most S-s micro-batches held; the same bubble.
   With equal times per micro-batch the idle share of each stage is (S-1)/(M+S-1) for
   both (sdl_pipe_simulate counts it; sdl_pipe_stats.idle measures it).
   Pipeline x data parallel: sdl_mpi_grid(S, &pipe, &data) splits the ranks into size/S
   pipelines; give .comm = pipe, .data_comm = data and each pipeline its shard of the
   batch; the step then averages the gradients over data_comm.

      sdl_pipe_desc pd = {0};
      pd.net = net; pd.sample = sdl_shape3(1, 28, 28); pd.micro_batches = 8;
      sdl_pipe *p = sdl_pipe_new(&pd);           // cuts balanced by counted FLOPs
      for (...) { sdl_pipe_step(p, x, y, &st); sdl_optim_step(opt); sdl_arena_reset(); }

   Every rank keeps the whole model; only its stage's parameters get gradients (the
   optimizer leaves the others as they are: their gradients are zero). Bad input (no x on
   stage 0, no y on the last, a batch M does not divide) is found before any message and
   every stage returns the error; an op failing inside the schedule leaves the other
   stages waiting for its messages (MPI cannot cancel them): end the job with MPI_Abort. */
typedef enum sdl_pipe_schedule {
    SDL_PIPE_1F1B = 0,
    SDL_PIPE_GPIPE
} sdl_pipe_schedule;
/* the loss of one micro-batch (a mean over its rows): out of the last stage, its targets */
typedef sdl_tensor *(*sdl_pipe_loss_fn)(void *user, sdl_tensor *out, sdl_tensor *y);
typedef struct sdl_pipe_desc {
    sdl_module *net;            /* a sequential: the whole model */
    sdl_shape sample;           /* one input sample's shape without the batch dim, e.g. (1, 28, 28) */
    int micro_batches;          /* M (0: 1); the batch must divide by it */
    sdl_pipe_schedule schedule;
    const int *cuts;            /* S - 1 increasing child indices where stages 1 .. S-1 begin;
                                   NULL: balanced by counted FLOPs */
    sdl_pipe_loss_fn loss;      /* NULL: sdl_cross_entropy with i32 targets */
    void *user;
    MPI_Comm comm;              /* the pipeline's ranks, stage = rank; 0: sdl_mpi_comm() */
    MPI_Comm data_comm;         /* 0: none; else gradients are averaged over it each step */
} sdl_pipe_desc;
typedef struct sdl_pipe_stats {
    double loss;                /* the batch's mean loss (the last stage's, on every rank) */
    double step_s, busy_s;      /* this rank's step time, and its time in forwards and backwards */
    double idle;                /* 1 - busy_s / step_s: the bubble, with communication */
    int peak_in_flight;         /* most micro-batches forwarded and not yet backwarded */
    int64_t act_bytes;          /* counted: this stage's layer outputs for one micro-batch */
    int64_t bytes_sent;         /* activations and gradients this rank sent */
} sdl_pipe_stats;
typedef struct sdl_pipe sdl_pipe;
SDL_API sdl_pipe *sdl_pipe_new(const sdl_pipe_desc *desc);
/* x: the batch (read by stage 0), y: its targets (read by the last stage); the others may
   pass NULL. Collective over the pipeline (and data_comm). stats may be NULL. */
SDL_API sdl_result sdl_pipe_step(sdl_pipe *p, sdl_tensor *x, sdl_tensor *y, sdl_pipe_stats *stats);
/* this rank's stage; *first, *end (may be NULL): its children of the sequential */
SDL_API int sdl_pipe_stage(const sdl_pipe *p, int *first, int *end);
/* every rank's copy of the whole model made current: each parameter of a stage's layers
   (weight and bias of its children, and of theirs) from the rank that trains it. For
   evaluation and checkpoints on any rank; collective over the pipeline. */
SDL_API sdl_result sdl_pipe_gather_params(sdl_pipe *p);
SDL_API void sdl_pipe_free(sdl_pipe *p);
/* stage s's order of work: ops[i] = m + 1 for the forward of micro-batch m, -(m + 1) for its
   backward; 2M entries */
SDL_API sdl_result sdl_pipe_schedule_ops(sdl_pipe_schedule sch, int stages, int stage, int micro_batches, int *ops);
/* the schedule run with forward time t_fwd and backward t_bwd per micro-batch and stage, no
   communication cost: idle[s] = the share of the step stage s waits, peak[s] = its most
   micro-batches held (either may be NULL; arrays of `stages`) */
SDL_API sdl_result sdl_pipe_simulate(sdl_pipe_schedule sch, int stages, int micro_batches, double t_fwd, double t_bwd,
                                     double *idle, int *peak);
/* world rank r: pipeline r / stages, stage r % stages; free both with MPI_Comm_free */
SDL_API sdl_result sdl_mpi_grid(int stages, MPI_Comm *pipe_comm, MPI_Comm *data_comm);

/* >>decl-mpi-tp: tensor parallelism (Shoeybi et al. 2019, Megatron-LM). The T ranks of a
   group each hold 1/T of a layer's weights and see the whole input; activations between
   the split layers stay split, and two conjugate ops join them:
     f = sdl_tp_copy    forward: identity       backward: all-reduce (sum) of the gradient
     g = sdl_tp_reduce  forward: all-reduce     backward: identity
   Column-parallel linear: W (out, in) cut by rows, y_r = f(x) W_r^T + b_r (out/T columns
   of y; .gather: all-gathered to the whole y). Row-parallel linear: W cut by columns,
   x_r is the matching columns of the input, y = g(x_r W_r^T) + b (b whole on every rank).
   MLP: column (no gather) -> GELU -> row: one f and one g, so one all-reduce of the
   block's output forward and one of its input's gradient backward, (B T C) floats each.
   Attention: q, k, v column-parallel (each rank n_head/T heads), causal attention on its
   heads, the output projection row-parallel: again one f and one g.
   A layer drawn on a model with seed s gets this rank's slice of exactly the weights the
   plain layers (sdl_linear_layer, in the same order) would get with seed s, so a
   tensor-parallel model starts as its one-process twin. Everything outside the split
   layers is replicated: every rank computes the same loss and gradients for it. */
typedef struct sdl_tp sdl_tp;
SDL_API sdl_tp *sdl_tp_new(MPI_Comm comm); /* 0: sdl_mpi_comm(); collective */
SDL_API int sdl_tp_rank(const sdl_tp *tp);
SDL_API int sdl_tp_size(const sdl_tp *tp);
SDL_API int64_t sdl_tp_bytes(const sdl_tp *tp); /* bytes handed to the collectives so far */
SDL_API void sdl_tp_free(sdl_tp *tp);
SDL_API sdl_tensor *sdl_tp_copy(sdl_tp *tp, sdl_tensor *x);   /* f */
SDL_API sdl_tensor *sdl_tp_reduce(sdl_tp *tp, sdl_tensor *x); /* g */
/* x (..., c) -> (..., T c), rank r's part at columns [r c, (r+1) c); backward: its own part */
SDL_API sdl_tensor *sdl_tp_gather(sdl_tp *tp, sdl_tensor *x);
/* layers (sdl_forward runs them); in, out, dim and hidden must divide by T, n_head too */
SDL_API sdl_module *sdl_tp_column_linear(sdl_model *m, sdl_tp *tp, const char *name, int64_t in, int64_t out, bool bias, bool gather);
SDL_API sdl_module *sdl_tp_row_linear(sdl_model *m, sdl_tp *tp, const char *name, int64_t in, int64_t out, bool bias);
/* x (..., dim) -> fc2(gelu(fc1(x))); parameters name.fc1.*, name.fc2.* */
SDL_API sdl_module *sdl_tp_mlp(sdl_model *m, sdl_tp *tp, const char *name, int64_t dim, int64_t hidden);
/* x (B, T, dim) causal self-attention; parameters name.q, .k, .v, .proj (weight and bias) */
SDL_API sdl_module *sdl_tp_attention(sdl_model *m, sdl_tp *tp, const char *name, int64_t dim, int n_head);
/* Vocabulary parallel: rank r holds rows [r V/T, (r+1) V/T) of the (V, dim) table (drawn as
   sdl_embedding_layer draws the whole one). ids i32 (...) -> (..., dim): each rank looks up
   the ids it holds (zeros for the others), then an all-reduce sums them. */
SDL_API sdl_module *sdl_tp_embedding(sdl_model *m, sdl_tp *tp, const char *name, int64_t vocab, int64_t dim);
/* logits (R, V/T): this rank's vocabulary slice (a column-parallel head without gather);
   targets i32 (R) over the whole vocabulary. The mean cross entropy over all V classes, as
   sdl_cross_entropy of the gathered (R, V) logits, with three all-reduces of R numbers (row
   max, sum of exponentials, target logit) instead of gathering R x V. */
SDL_API sdl_tensor *sdl_tp_cross_entropy(sdl_tp *tp, sdl_tensor *logits, sdl_tensor *targets);

#ifdef __cplusplus
}
#endif
#endif /* SDL_MPI_H_INCLUDED */

/* ========================================================================================
   IMPLEMENTATION
   ======================================================================================== */
#ifdef SDL_MPI_IMPLEMENTATION
#ifndef SDL_MPI_IMPLEMENTATION_DONE
#define SDL_MPI_IMPLEMENTATION_DONE

#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>

/* >>mpi-gpu includes: the GPU path exists when nvcc compiles this after sdl_cuda.h */
#if defined(SDL_CUDA_H_INCLUDED) && defined(__CUDACC__)
#define SDL__MPI_GPU 1
#include <cuda_runtime.h>
#ifdef SDL_MPI_NCCL
#include <nccl.h>
#endif
#if defined(OPEN_MPI) && defined(__has_include)
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h> /* MPIX_Query_cuda_support */
#endif
#endif
#endif

#ifndef SDL_MPI_BUCKET_MB
#define SDL_MPI_BUCKET_MB 25
#endif
#ifndef SDL_MPI_TIMEOUT_S
#define SDL_MPI_TIMEOUT_S 60
#endif
#ifndef SDL_MPI_TRACE_EVENTS
#define SDL_MPI_TRACE_EVENTS 65536
#endif
#ifndef SDL_MPI_RING_SEGMENT
#define SDL_MPI_RING_SEGMENT 262144
#endif
#ifndef SDL_MPI_SHM_BUCKET_MB
#define SDL_MPI_SHM_BUCKET_MB 1
#endif
#ifndef SDL_MPI_SHM_PIECE
#define SDL_MPI_SHM_PIECE 65536
#endif

/* the core's allocator when it is in this file (the tests count), else malloc */
#if defined(SDL_ALLOC) && defined(SDL_DEALLOC)
#define SDL__MPI_ALLOC(n) SDL_ALLOC(n)
#define SDL__MPI_FREE(p) SDL_DEALLOC(p)
#else
#define SDL__MPI_ALLOC(n) malloc(n)
#define SDL__MPI_FREE(p) free(p)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------
   >>mpi-state
   ---------------------------------------------------------------------------------------- */
typedef struct sdl__mpi_check_msg {
    int64_t seq, count;
    uint64_t hash;
    char name[48];
} sdl__mpi_check_msg;

typedef struct sdl__mpi_event {
    char name[32];
    double ts, dur; /* microseconds since init */
    int tid;        /* 0: compute (your markers), 1: communication */
} sdl__mpi_event;

static struct {
    bool up, we_init;
    MPI_Comm comm, check_comm;
    int rank, size, local_rank, local_size;
    double t0;
    /* checker */
    double timeout;
    int64_t seq;
    sdl__mpi_check_msg mine, *peer, *last; /* peer: this round; last: last seen per rank */
    MPI_Request *reqs;                      /* size - 1 receives, then size - 1 sends */
    /* ring and fp16 workspaces, allocated once */
    float *ring_tmp;
    uint16_t *half_a, *half_b;
    MPI_Op half_sum;
    /* timeline */
    char trace_path[512];
    sdl__mpi_event *ev;
    int64_t nev, cap_ev, dropped;
    int stack[16], depth;
} sdl__mpi;

static void *sdl__mpi_alloc(size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) { sdl_fail(SDL_ERR_OOM, "sdl_mpi: size overflow %zu x %zu", n, size); return NULL; }
    size_t bytes = n * size;
    void *p = SDL__MPI_ALLOC(bytes > 0 ? bytes : 1);
    if (!p) sdl_fail(SDL_ERR_OOM, "sdl_mpi: out of memory (%zu bytes)", n * size);
    else memset(p, 0, n * size);
    return p;
}

/* an MPI error code into sdl's last error; returns SDL_ERR_COMM */
static sdl_result sdl__mpi_err(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    msg[0] = 0;
    MPI_Error_string(rc, msg, &len);
    return sdl_fail(SDL_ERR_COMM, "sdl_mpi: %s failed on rank %d: %s", what, sdl__mpi.rank, msg);
}
#define SDL__MPI_TRY(call, what)                       \
    do {                                               \
        int sdl__rc_ = (call);                         \
        if (sdl__rc_ != MPI_SUCCESS) return sdl__mpi_err(sdl__rc_, what); \
    } while (0)

static double sdl__mpi_now_us(void) { return (MPI_Wtime() - sdl__mpi.t0) * 1e6; }

/* ----------------------------------------------------------------------------------------
   >>mpi-timeline: Chrome-trace "complete" events (ph X) in a buffer allocated once
   ---------------------------------------------------------------------------------------- */
static void sdl__mpi_event_add(const char *name, double ts, double dur, int tid) {
    if (!sdl__mpi.ev) return;
    if (sdl__mpi.nev >= sdl__mpi.cap_ev) { sdl__mpi.dropped++; return; }
    sdl__mpi_event *e = &sdl__mpi.ev[sdl__mpi.nev++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ts = ts;
    e->dur = dur;
    e->tid = tid;
}

SDL_API sdl_result sdl_mpi_timeline_open(const char *path, int max_events) {
    if (!path || !path[0]) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_timeline_open: empty path");
    if (!sdl__mpi.up) return sdl_fail(SDL_ERR_STATE, "sdl_mpi_timeline_open: call sdl_mpi_init first");
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".json") == 0)
        snprintf(sdl__mpi.trace_path, sizeof sdl__mpi.trace_path, "%.*s-rank%d.json", (int)(n - 5), path, sdl__mpi.rank);
    else
        snprintf(sdl__mpi.trace_path, sizeof sdl__mpi.trace_path, "%s.rank%d", path, sdl__mpi.rank);
    SDL__MPI_FREE(sdl__mpi.ev);
    sdl__mpi.cap_ev = max_events > 0 ? max_events : SDL_MPI_TRACE_EVENTS;
    sdl__mpi.ev = (sdl__mpi_event *)sdl__mpi_alloc((size_t)sdl__mpi.cap_ev, sizeof(sdl__mpi_event));
    sdl__mpi.nev = sdl__mpi.dropped = 0;
    sdl__mpi.depth = 0;
    return sdl__mpi.ev ? SDL_OK : SDL_ERR_OOM;
}

/* begin records the start in an event slot; end fills in its duration */
SDL_API void sdl_mpi_timeline_begin(const char *name) {
    if (!sdl__mpi.ev) return;
    if (sdl__mpi.depth >= 16 || sdl__mpi.nev >= sdl__mpi.cap_ev) { sdl__mpi.dropped++; sdl__mpi.depth++; return; }
    sdl__mpi.stack[sdl__mpi.depth++] = (int)sdl__mpi.nev;
    sdl__mpi_event_add(name ? name : "?", sdl__mpi_now_us(), -1.0, 0);
}

SDL_API void sdl_mpi_timeline_end(void) {
    if (!sdl__mpi.ev || sdl__mpi.depth <= 0) return;
    sdl__mpi.depth--;
    if (sdl__mpi.depth >= 16) return;
    sdl__mpi_event *e = &sdl__mpi.ev[sdl__mpi.stack[sdl__mpi.depth]];
    if (e->dur < 0) e->dur = sdl__mpi_now_us() - e->ts;
}

SDL_API int64_t sdl_mpi_timeline_count(void) { return sdl__mpi.nev; }

SDL_API sdl_result sdl_mpi_timeline_write(void) {
    if (!sdl__mpi.ev) return SDL_OK;
    FILE *f = fopen(sdl__mpi.trace_path, "w");
    if (!f) return sdl_fail(SDL_ERR_IO, "sdl_mpi: cannot write the timeline '%s'", sdl__mpi.trace_path);
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"rank %d\"}},\n", sdl__mpi.rank, sdl__mpi.rank);
    fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"compute\"}},\n", sdl__mpi.rank);
    fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":1,\"args\":{\"name\":\"communication\"}}", sdl__mpi.rank);
    for (int64_t i = 0; i < sdl__mpi.nev; i++) {
        const sdl__mpi_event *e = &sdl__mpi.ev[i];
        char name[64];
        size_t k = 0;
        for (const char *s = e->name; *s && k < sizeof name - 2; s++) /* JSON-safe */
            if (*s != '"' && *s != '\\' && (unsigned char)*s >= 32) name[k++] = *s;
        name[k] = 0;
        fprintf(f, ",\n{\"name\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f}", name,
                sdl__mpi.rank, e->tid, e->ts, e->dur < 0 ? 0.0 : e->dur);
    }
    fprintf(f, "\n]}\n");
    bool ok = fclose(f) == 0;
    if (sdl__mpi.dropped) sdl_log(SDL_LOG_WARN, "sdl_mpi: timeline full, %lld events dropped (raise max_events)", (long long)sdl__mpi.dropped);
    return ok ? SDL_OK : sdl_fail(SDL_ERR_IO, "sdl_mpi: writing the timeline '%s' failed", sdl__mpi.trace_path);
}

/* ----------------------------------------------------------------------------------------
   >>mpi-check: the collective checker
   Before a checked collective every rank sends (seq, name hash, count, name) to every other
   rank with MPI_Isend and posts an MPI_Irecv from each, then polls MPI_Testall until all
   arrive or the deadline passes. Messages between two ranks on one tag arrive in order, so
   round k on one rank always meets round k on the others. Cost: 2(N-1) small messages per
   collective, fine for tens of ranks; turn the checker off (timeout 0) for thousands.
   ---------------------------------------------------------------------------------------- */
static uint64_t sdl__mpi_hash(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void sdl__mpi_busy_wait(double seconds) {
    double until = MPI_Wtime() + seconds;
    while (MPI_Wtime() < until) {}
}

/* reported, then the whole job ends: see the doc block for why */
static void sdl__mpi_die(void) {
    fflush(stdout);
    fflush(stderr);
    sdl__mpi_busy_wait(0.5); /* give the other ranks time to print their view */
    MPI_Abort(MPI_COMM_WORLD, 3);
}

SDL_API void sdl_mpi_set_timeout(double seconds) { sdl__mpi.timeout = seconds > 0 ? seconds : 0; }
SDL_API double sdl_mpi_get_timeout(void) { return sdl__mpi.timeout; }

/* a check in two halves, so a rank can work while the others arrive (sdl_mpi_ddp with
   SDL_MPI_ALGO_SHM): post sends this rank's (seq, name, count) to every other rank and
   posts the receives; finish waits for them until `start` + timeout, then compares */
static void sdl__mpi_check_post(const char *name, int64_t count) {
    int n = sdl__mpi.size, me = sdl__mpi.rank, tag = 7;
    sdl__mpi_check_msg *mine = &sdl__mpi.mine;
    mine->seq = ++sdl__mpi.seq;
    mine->count = count;
    mine->hash = sdl__mpi_hash(name);
    snprintf(mine->name, sizeof mine->name, "%s", name);
    int k = 0;
    for (int r = 0; r < n; r++) {
        if (r == me) continue;
        MPI_Irecv(&sdl__mpi.peer[r], (int)sizeof(sdl__mpi_check_msg), MPI_BYTE, r, tag, sdl__mpi.check_comm, &sdl__mpi.reqs[k]);
        MPI_Isend(mine, (int)sizeof(sdl__mpi_check_msg), MPI_BYTE, r, tag, sdl__mpi.check_comm, &sdl__mpi.reqs[n - 1 + k]);
        k++;
    }
}

static bool sdl__mpi_check_arrived(void) {
    int done = 0;
    MPI_Testall(2 * (sdl__mpi.size - 1), sdl__mpi.reqs, &done, MPI_STATUSES_IGNORE);
    return done != 0;
}

static void sdl__mpi_check_finish(double start) {
    int n = sdl__mpi.size, me = sdl__mpi.rank;
    const sdl__mpi_check_msg *mine = &sdl__mpi.mine;
    double deadline = start + sdl__mpi.timeout;
    bool done = false;
    while (!done && MPI_Wtime() < deadline) done = sdl__mpi_check_arrived();
    bool bad = false;
    int k = 0;
    for (int r = 0; r < n; r++) {
        if (r == me) continue;
        int got = 1;
        if (!done) MPI_Test(&sdl__mpi.reqs[k], &got, MPI_STATUS_IGNORE);
        k++;
        if (!got) {
            const sdl__mpi_check_msg *l = &sdl__mpi.last[r];
            sdl_log(SDL_LOG_ERROR, "sdl_mpi: rank %d waited %.1f s at collective #%lld '%s': rank %d is missing it "
                    "(rank %d was last seen at #%lld '%s')", me, sdl__mpi.timeout, (long long)mine->seq, mine->name,
                    r, r, (long long)l->seq, l->seq ? l->name : "(none)");
            bad = true;
            continue;
        }
        const sdl__mpi_check_msg *p = &sdl__mpi.peer[r];
        if (p->hash != mine->hash || p->count != mine->count || p->seq != mine->seq) {
            sdl_log(SDL_LOG_ERROR, "sdl_mpi: collective mismatch at #%lld: rank %d calls '%s' (count %lld) but rank %d "
                    "calls '%s' (count %lld, #%lld)", (long long)mine->seq, me, mine->name, (long long)mine->count, r,
                    p->name, (long long)p->count, (long long)p->seq);
            bad = true;
        }
        sdl__mpi.last[r] = *p;
    }
    if (bad) {
        sdl_fail(SDL_ERR_COMM, "sdl_mpi: ranks disagree at collective '%s'; ending the job", mine->name);
        sdl__mpi_die();
    }
}

static bool sdl__mpi_checking(void) { return sdl__mpi.up && sdl__mpi.size > 1 && sdl__mpi.timeout > 0; }

SDL_API void sdl_mpi_check(const char *name, int64_t count) {
    if (!sdl__mpi_checking()) return;
    double start = MPI_Wtime();
    sdl__mpi_check_post(name, count);
    sdl__mpi_check_finish(start);
}

/* ----------------------------------------------------------------------------------------
   >>mpi-init
   ---------------------------------------------------------------------------------------- */
static bool sdl__mpi_env_int(const char *name, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return false;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}

SDL_API bool sdl_mpi_launcher_env(int *rank, int *size, int *local_rank) {
    /* mpirun's own variables first: an mpirun inside an sbatch script inherits the batch
       step's SLURM_PROCID (0 on every rank); srun sets SLURM_* per task */
    static const char *names[3][3] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
        {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}};
    int r = 0, s = 1, l = 0;
    bool found = false;
    for (int i = 0; i < 3 && !found; i++) {
        if (sdl__mpi_env_int(names[i][0], &r) && sdl__mpi_env_int(names[i][1], &s)) {
            found = true;
            if (!sdl__mpi_env_int(names[i][2], &l)) l = 0;
        } else {
            r = 0, s = 1;
        }
    }
    if (rank) *rank = r;
    if (size) *size = s;
    if (local_rank) *local_rank = l;
    return found;
}

static void sdl__mpi_half_sum(void *in, void *inout, int *len, MPI_Datatype *type);

SDL_API sdl_result sdl_mpi_init(int *argc, char ***argv) {
    if (sdl__mpi.up) return SDL_OK;
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag) {
        SDL__MPI_TRY(MPI_Init(argc, argv), "MPI_Init");
        sdl__mpi.we_init = true;
    }
    sdl__mpi.t0 = MPI_Wtime();
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    SDL__MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &sdl__mpi.comm), "MPI_Comm_dup");
    SDL__MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &sdl__mpi.check_comm), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(sdl__mpi.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(sdl__mpi.comm, &sdl__mpi.rank);
    MPI_Comm_size(sdl__mpi.comm, &sdl__mpi.size);
    /* ranks on this node: the shared-memory split; srun's SLURM_LOCALID if that fails */
    MPI_Comm node;
    if (MPI_Comm_split_type(sdl__mpi.comm, MPI_COMM_TYPE_SHARED, sdl__mpi.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &sdl__mpi.local_rank);
        MPI_Comm_size(node, &sdl__mpi.local_size);
        MPI_Comm_free(&node);
    } else {
        int r, s, l;
        sdl_mpi_launcher_env(&r, &s, &l);
        sdl__mpi.local_rank = l;
        sdl__mpi.local_size = 1;
    }
    int er, es, el;
    if (sdl_mpi_launcher_env(&er, &es, &el) && (er != sdl__mpi.rank || es != sdl__mpi.size))
        sdl_log(SDL_LOG_WARN, "sdl_mpi: the launcher says rank %d of %d but MPI says %d of %d (MPI built without "
                "this launcher's support? try srun --mpi=pmix)", er, es, sdl__mpi.rank, sdl__mpi.size);
    int n = sdl__mpi.size;
    sdl__mpi.peer = (sdl__mpi_check_msg *)sdl__mpi_alloc((size_t)n, sizeof(sdl__mpi_check_msg));
    sdl__mpi.last = (sdl__mpi_check_msg *)sdl__mpi_alloc((size_t)n, sizeof(sdl__mpi_check_msg));
    sdl__mpi.reqs = (MPI_Request *)sdl__mpi_alloc(2 * (size_t)n, sizeof(MPI_Request));
    sdl__mpi.ring_tmp = (float *)sdl__mpi_alloc(2 * (size_t)SDL_MPI_RING_SEGMENT, sizeof(float));
    sdl__mpi.half_a = (uint16_t *)sdl__mpi_alloc(SDL_MPI_RING_SEGMENT, sizeof(uint16_t));
    sdl__mpi.half_b = (uint16_t *)sdl__mpi_alloc(SDL_MPI_RING_SEGMENT, sizeof(uint16_t));
    if (!sdl__mpi.peer || !sdl__mpi.last || !sdl__mpi.reqs || !sdl__mpi.ring_tmp || !sdl__mpi.half_a || !sdl__mpi.half_b)
        return SDL_ERR_OOM;
    SDL__MPI_TRY(MPI_Op_create(sdl__mpi_half_sum, 1, &sdl__mpi.half_sum), "MPI_Op_create");
    sdl__mpi.timeout = SDL_MPI_TIMEOUT_S;
    const char *t = getenv("SDL_MPI_TIMEOUT");
    if (t && *t) sdl__mpi.timeout = atof(t);
    sdl__mpi.seq = 0;
    sdl__mpi.up = true;
    const char *tl = getenv("SDL_TIMELINE");
    if (tl && *tl) return sdl_mpi_timeline_open(tl, 0);
    return SDL_OK;
}

static void sdl__mg_finalize(void); /* >>mpi-gpu: the NCCL communicator */

SDL_API sdl_result sdl_mpi_finalize(void) {
    if (!sdl__mpi.up) return SDL_OK;
    sdl_mpi_check("finalize", 0); /* a rank that stopped early is reported here */
    sdl__mg_finalize();
    sdl_result r = sdl_mpi_timeline_write();
    SDL__MPI_FREE(sdl__mpi.ev);
    SDL__MPI_FREE(sdl__mpi.peer);
    SDL__MPI_FREE(sdl__mpi.last);
    SDL__MPI_FREE(sdl__mpi.reqs);
    SDL__MPI_FREE(sdl__mpi.ring_tmp);
    SDL__MPI_FREE(sdl__mpi.half_a);
    SDL__MPI_FREE(sdl__mpi.half_b);
    MPI_Op_free(&sdl__mpi.half_sum);
    MPI_Comm_free(&sdl__mpi.comm);
    MPI_Comm_free(&sdl__mpi.check_comm);
    bool we = sdl__mpi.we_init;
    memset(&sdl__mpi, 0, sizeof sdl__mpi);
    sdl__mpi.size = 1;
    if (we) SDL__MPI_TRY(MPI_Finalize(), "MPI_Finalize");
    return r;
}

SDL_API int sdl_mpi_rank(void) { return sdl__mpi.rank; }
SDL_API int sdl_mpi_size(void) { return sdl__mpi.up ? sdl__mpi.size : 1; }
SDL_API int sdl_mpi_local_rank(void) { return sdl__mpi.local_rank; }
SDL_API int sdl_mpi_local_size(void) { return sdl__mpi.up ? sdl__mpi.local_size : 1; }
SDL_API MPI_Comm sdl_mpi_comm(void) { return sdl__mpi.up ? sdl__mpi.comm : MPI_COMM_WORLD; }

/* ----------------------------------------------------------------------------------------
   >>mpi-f16: IEEE 754 half. 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
   Largest finite 65504; below 2^-14 the numbers are subnormal, steps of 2^-24.
   ---------------------------------------------------------------------------------------- */
/* the conversions run on the host and, in the GPU path's kernels, on the device */
#ifdef SDL__MPI_GPU
#define SDL__MPI_HD __host__ __device__
#else
#define SDL__MPI_HD
#endif
static SDL__MPI_HD inline uint16_t sdl__mpi_f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u)); /* inf, nan */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                     /* below 2^-14: subnormal or 0 */
        if (ax < 0x33000000u) return (uint16_t)sign;           /* <= 2^-25 rounds to 0 */
        uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;                              /* value / 2^-24 = mant >> shift */
        uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 of 23 mantissa bits, round to even;
       a carry out of the mantissa correctly bumps the exponent */
    uint32_t r = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

static SDL__MPI_HD inline float sdl__mpi_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
    if (e == 0x1f) x = sign | 0x7f800000u | (mant << 13);
    else if (e == 0) {
        float f = (float)mant * (1.0f / 16777216.0f); /* exact: mant * 2^-24 */
        return sign ? -f : f;
    } else x = sign | ((e + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

SDL_API uint16_t sdl_mpi_f32_to_f16(float f) { return sdl__mpi_f2h(f); }
SDL_API float sdl_mpi_f16_to_f32(uint16_t h) { return sdl__mpi_h2f(h); }

/* MPI_Op for sums of halves: each add in f32, rounded back to half */
static void sdl__mpi_half_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) b[i] = sdl_mpi_f32_to_f16(sdl_mpi_f16_to_f32(a[i]) + sdl_mpi_f16_to_f32(b[i]));
}

/* ----------------------------------------------------------------------------------------
   >>mpi-ring: ring allreduce (sum), the algorithm of Baidu's allreduce, Horovod and NCCL.
   The N ranks stand in a ring; rank r sends to r+1 and receives from r-1. The buffer is cut
   into N chunks (chunk i: [count*i/N, count*(i+1)/N)).
   1. reduce-scatter, N-1 steps: in step s rank r sends chunk (r-s) mod N and adds the chunk
      (r-s-1) mod N it receives into its own. After N-1 steps rank r holds the full sum of
      chunk (r+1) mod N.
   2. allgather, N-1 steps: in step s rank r sends chunk (r+1-s) mod N, finished, and stores
      the chunk (r-s) mod N it receives.
   Traffic: each rank sends 2(N-1) chunks of count/N floats, 2(N-1)/N * count in all, close
   to 2*count however many ranks there are, and every link carries the same load. That is
   why nccl-tests reports "bus bandwidth" = algorithm bandwidth * 2(N-1)/N: it is the speed
   each link actually ran at, comparable across N.
   Sums: each chunk is added in ring order starting at a different rank, while
   MPI_Allreduce may use another order (or a tree), so float results can differ in the last
   bits (float addition is not associative). Integer-valued floats (below 2^24) sum exactly
   in any order, which is how the tests compare the two.
   Long chunks go in segments of SDL_MPI_RING_SEGMENT floats so the workspace stays small.
   ---------------------------------------------------------------------------------------- */
/* chunk i of count over n: [begin(i), begin(i+1)); the split only needs to be the same on
   every rank and cover the buffer */
static void sdl__mpi_chunk(int64_t count, int n, int i, int64_t *begin, int64_t *len) {
    i = ((i % n) + n) % n;
    int64_t b = count / n * i + (count % n) * i / n;
    int64_t e = count / n * (i + 1) + (count % n) * (i + 1) / n;
    *begin = b;
    *len = e - b;
}

/* dst += src; eight at a time so that -O2 turns the body into vector adds */
static void sdl__mpi_add(float *SDL_RESTRICT dst, const float *SDL_RESTRICT src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        dst[i + 0] += src[i + 0]; dst[i + 1] += src[i + 1]; dst[i + 2] += src[i + 2]; dst[i + 3] += src[i + 3];
        dst[i + 4] += src[i + 4]; dst[i + 5] += src[i + 5]; dst[i + 6] += src[i + 6]; dst[i + 7] += src[i + 7];
    }
    for (; i < n; i++) dst[i] += src[i];
}

/* segment k of a chunk of len floats: its length (0 past the end) */
static int sdl__mpi_seg_len(int64_t len, int64_t k, int64_t seg) {
    int64_t left = len - k * seg;
    return (int)(left <= 0 ? 0 : (left < seg ? left : seg));
}

/* one ring step: send send_len floats from data+send_at to the right, receive recv_len
   from the left; add them in (reduce) or store them (gather). Every rank cuts both chunks
   into the same nseg segments, so each send meets its receive. f32 reduce is pipelined:
   segment k+1 is on the wire while segment k is added (two receive buffers). fp16: halves
   on the wire, one segment at a time. */
static sdl_result sdl__mpi_ring_step(float *data, int64_t send_at, int64_t send_len, int64_t recv_at,
                                     int64_t recv_len, int64_t nseg, bool reduce, bool fp16) {
    int n = sdl__mpi.size, me = sdl__mpi.rank, right = (me + 1) % n, left = (me + n - 1) % n;
    const int64_t seg = SDL_MPI_RING_SEGMENT;
    MPI_Comm comm = sdl__mpi.comm;
    if (fp16) {
        for (int64_t k = 0; k < nseg; k++) {
            int sc = sdl__mpi_seg_len(send_len, k, seg), rc = sdl__mpi_seg_len(recv_len, k, seg);
            const float *src = data + send_at + k * seg;
            float *dst = data + recv_at + k * seg;
            for (int i = 0; i < sc; i++) sdl__mpi.half_a[i] = sdl_mpi_f32_to_f16(src[i]);
            SDL__MPI_TRY(MPI_Sendrecv(sdl__mpi.half_a, sc, MPI_UINT16_T, right, 11, sdl__mpi.half_b, rc, MPI_UINT16_T,
                                      left, 11, comm, MPI_STATUS_IGNORE), "ring MPI_Sendrecv");
            if (reduce) for (int i = 0; i < rc; i++) dst[i] += sdl_mpi_f16_to_f32(sdl__mpi.half_b[i]);
            else for (int i = 0; i < rc; i++) dst[i] = sdl_mpi_f16_to_f32(sdl__mpi.half_b[i]);
        }
        return SDL_OK;
    }
    if (!reduce) { /* gather: straight into place, in as few messages as MPI's int counts allow */
        const int64_t big = 1 << 30;
        int64_t longest = (nseg * seg + big - 1) / big;
        for (int64_t k = 0; k < longest; k++) {
            int sc = sdl__mpi_seg_len(send_len, k, big), rc = sdl__mpi_seg_len(recv_len, k, big);
            SDL__MPI_TRY(MPI_Sendrecv(data + send_at + k * big, sc, MPI_FLOAT, right, 11, data + recv_at + k * big, rc,
                                      MPI_FLOAT, left, 11, comm, MPI_STATUS_IGNORE), "ring MPI_Sendrecv");
        }
        return SDL_OK;
    }
    MPI_Request rr[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, sr[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    for (int64_t k = 0; k <= nseg; k++) {
        if (k < nseg) { /* start segment k: its buffer and send slot were freed at k-1 */
            int b = (int)(k & 1);
            SDL__MPI_TRY(MPI_Wait(&sr[b], MPI_STATUS_IGNORE), "ring MPI_Wait");
            SDL__MPI_TRY(MPI_Irecv(sdl__mpi.ring_tmp + b * seg, sdl__mpi_seg_len(recv_len, k, seg), MPI_FLOAT, left, 11,
                                   comm, &rr[b]), "ring MPI_Irecv");
            SDL__MPI_TRY(MPI_Isend(data + send_at + k * seg, sdl__mpi_seg_len(send_len, k, seg), MPI_FLOAT, right, 11,
                                   comm, &sr[b]), "ring MPI_Isend");
        }
        if (k > 0) { /* finish segment k-1 while k travels */
            int b = (int)((k - 1) & 1), rc = sdl__mpi_seg_len(recv_len, k - 1, seg);
            SDL__MPI_TRY(MPI_Wait(&rr[b], MPI_STATUS_IGNORE), "ring MPI_Wait");
            sdl__mpi_add(data + recv_at + (k - 1) * seg, sdl__mpi.ring_tmp + b * seg, rc);
        }
    }
    SDL__MPI_TRY(MPI_Waitall(2, sr, MPI_STATUSES_IGNORE), "ring MPI_Waitall");
    return SDL_OK;
}

/* the ring without the checker; fp16: halves on the wire, f32 accumulation, and the
   chunk each rank finishes is rounded to half too so every rank ends with the same bits */
static sdl_result sdl__mpi_ring(float *data, int64_t count, bool fp16) {
    int n = sdl__mpi.size, me = sdl__mpi.rank;
    if (n == 1 || count == 0) return SDL_OK;
    int64_t longest = (count + n - 1) / n, nseg = (longest + SDL_MPI_RING_SEGMENT - 1) / SDL_MPI_RING_SEGMENT;
    for (int s = 0; s < n - 1; s++) { /* reduce-scatter */
        int64_t sb, sl, rb, rl;
        sdl__mpi_chunk(count, n, me - s, &sb, &sl);
        sdl__mpi_chunk(count, n, me - s - 1, &rb, &rl);
        sdl_result r = sdl__mpi_ring_step(data, sb, sl, rb, rl, nseg, true, fp16);
        if (r != SDL_OK) return r;
    }
    if (fp16) {
        int64_t ob, ol;
        sdl__mpi_chunk(count, n, me + 1, &ob, &ol);
        for (int64_t i = 0; i < ol; i++) data[ob + i] = sdl_mpi_f16_to_f32(sdl_mpi_f32_to_f16(data[ob + i]));
    }
    for (int s = 0; s < n - 1; s++) { /* allgather */
        int64_t sb, sl, rb, rl;
        sdl__mpi_chunk(count, n, me + 1 - s, &sb, &sl);
        sdl__mpi_chunk(count, n, me - s, &rb, &rl);
        sdl_result r = sdl__mpi_ring_step(data, sb, sl, rb, rl, nseg, false, fp16);
        if (r != SDL_OK) return r;
    }
    return SDL_OK;
}

/* ----------------------------------------------------------------------------------------
   >>mpi-collectives
   ---------------------------------------------------------------------------------------- */
#define SDL__MPI_MAX_COUNT (1 << 30) /* MPI counts are int: longer buffers go in pieces */

static sdl_result sdl__mpi_allreduce_mpi(float *data, int64_t count) {
    for (int64_t off = 0; off < count; off += SDL__MPI_MAX_COUNT) {
        int c = (int)(count - off < SDL__MPI_MAX_COUNT ? count - off : SDL__MPI_MAX_COUNT);
        SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, data + off, c, MPI_FLOAT, MPI_SUM, sdl__mpi.comm), "MPI_Allreduce");
    }
    return SDL_OK;
}

static sdl_result sdl__mpi_need_init(const char *what) {
    if (sdl__mpi.up) return SDL_OK;
    return sdl_fail(SDL_ERR_STATE, "%s: call sdl_mpi_init first", what);
}

SDL_API sdl_result sdl_mpi_ring_allreduce(float *data, int64_t count) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_ring_allreduce");
    if (r != SDL_OK) return r;
    if (count < 0 || (!data && count)) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ring_allreduce: bad buffer (count %lld)", (long long)count);
    sdl_mpi_check("ring allreduce", count);
    return sdl__mpi_ring(data, count, false);
}

/* the shared-memory reduce needs a window made beforehand: sdl_mpi_ddp makes one */
static sdl_result sdl__mpi_no_shm(sdl_mpi_algo algo, const char *what) {
    if (algo != SDL_MPI_ALGO_SHM) return SDL_OK;
    return sdl_fail(SDL_ERR_ARG, "%s: SDL_MPI_ALGO_SHM works inside sdl_mpi_ddp only; use SDL_MPI_ALGO_MPI", what);
}

SDL_API sdl_result sdl_mpi_allreduce(float *data, int64_t count, sdl_mpi_algo algo) {
    if (algo == SDL_MPI_ALGO_RING) return sdl_mpi_ring_allreduce(data, count);
    sdl_result r = sdl__mpi_need_init("sdl_mpi_allreduce");
    if (r == SDL_OK) r = sdl__mpi_no_shm(algo, "sdl_mpi_allreduce");
    if (r != SDL_OK) return r;
    if (count < 0 || (!data && count)) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_allreduce: bad buffer (count %lld)", (long long)count);
    sdl_mpi_check("allreduce", count);
    return sdl__mpi_allreduce_mpi(data, count);
}

/* fp16 through MPI: scale, convert in segments of the workspace, allreduce with half_sum */
static sdl_result sdl__mpi_average_f16_mpi(float *data, int64_t count) {
    float inv = 1.0f / (float)sdl__mpi.size;
    for (int64_t off = 0; off < count; off += SDL_MPI_RING_SEGMENT) {
        int c = (int)(count - off < SDL_MPI_RING_SEGMENT ? count - off : SDL_MPI_RING_SEGMENT);
        for (int i = 0; i < c; i++) sdl__mpi.half_a[i] = sdl_mpi_f32_to_f16(data[off + i] * inv);
        SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, sdl__mpi.half_a, c, MPI_UINT16_T, sdl__mpi.half_sum, sdl__mpi.comm), "MPI_Allreduce (fp16)");
        for (int i = 0; i < c; i++) data[off + i] = sdl_mpi_f16_to_f32(sdl__mpi.half_a[i]);
    }
    return SDL_OK;
}

static sdl_result sdl__mpi_average_unchecked(float *data, int64_t count, sdl_mpi_algo algo, bool fp16) {
    float inv = 1.0f / (float)sdl__mpi.size;
    if (sdl__mpi.size == 1 || count == 0) return SDL_OK;
    if (fp16 && algo != SDL_MPI_ALGO_RING) return sdl__mpi_average_f16_mpi(data, count);
    if (fp16) for (int64_t i = 0; i < count; i++) data[i] *= inv; /* the sum of halves cannot overflow */
    sdl_result r = algo == SDL_MPI_ALGO_RING ? sdl__mpi_ring(data, count, fp16) : sdl__mpi_allreduce_mpi(data, count);
    if (r == SDL_OK && !fp16) for (int64_t i = 0; i < count; i++) data[i] *= inv;
    return r;
}

SDL_API sdl_result sdl_mpi_average(float *data, int64_t count, sdl_mpi_algo algo, bool fp16) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_average");
    if (r == SDL_OK) r = sdl__mpi_no_shm(algo, "sdl_mpi_average");
    if (r != SDL_OK) return r;
    if (count < 0 || (!data && count)) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_average: bad buffer (count %lld)", (long long)count);
    sdl_mpi_check(fp16 ? "average fp16" : "average", count);
    return sdl__mpi_average_unchecked(data, count, algo, fp16);
}

SDL_API sdl_result sdl_mpi_sum(double *v, int n) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_sum");
    if (r != SDL_OK) return r;
    if (n < 0 || (!v && n)) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_sum: bad buffer");
    sdl_mpi_check("metric sum", n);
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, sdl__mpi.comm), "MPI_Allreduce (metrics)");
    return SDL_OK;
}

SDL_API sdl_result sdl_mpi_mean(double *v, int n) {
    sdl_result r = sdl_mpi_sum(v, n);
    for (int i = 0; r == SDL_OK && i < n; i++) v[i] /= sdl__mpi.size;
    return r;
}

SDL_API sdl_result sdl_mpi_barrier(void) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_barrier");
    if (r != SDL_OK) return r;
    sdl_mpi_check("barrier", 0);
    SDL__MPI_TRY(MPI_Barrier(sdl__mpi.comm), "MPI_Barrier");
    return SDL_OK;
}

static sdl_result sdl__mpi_bcast(void *data, int64_t count, MPI_Datatype type, size_t elem, int root, const char *name) {
    sdl_mpi_check(name, count);
    for (int64_t off = 0; off < count; off += SDL__MPI_MAX_COUNT) {
        int c = (int)(count - off < SDL__MPI_MAX_COUNT ? count - off : SDL__MPI_MAX_COUNT);
        SDL__MPI_TRY(MPI_Bcast((char *)data + (size_t)off * elem, c, type, root, sdl__mpi.comm), "MPI_Bcast");
    }
    return SDL_OK;
}

/* >>mpi-gpu hooks: defined in >>mpi-gpu at the end of the file */
struct sdl__mpi_gpu_ddp;
static bool sdl__mg_model_on_gpu(const sdl_model *m);
static sdl_result sdl__mg_broadcast_model(sdl_model *m, sdl_optim *opt, int root);

SDL_API sdl_result sdl_mpi_broadcast_model(sdl_model *m, sdl_optim *opt, int root) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_broadcast_model");
    if (r != SDL_OK) return r;
    if (!m) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_broadcast_model: NULL model");
    if ((r = sdl_model_pack(m)) != SDL_OK) return r;
    if (sdl__mg_model_on_gpu(m)) return sdl__mg_broadcast_model(m, opt, root);
    if (!m->param_data) return sdl_fail(SDL_ERR_STATE, "sdl_mpi_broadcast_model: the parameters are sharded (ZeRO-3): broadcast before sdl_mpi_zero_new");
    if (root < 0 || root >= sdl__mpi.size) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_broadcast_model: root %d of %d ranks", root, sdl__mpi.size);
    double t = sdl__mpi_now_us();
    r = sdl__mpi_bcast(m->param_data, m->param_floats, MPI_FLOAT, sizeof(float), root, "broadcast parameters");
    if (r == SDL_OK) r = sdl__mpi_bcast(m->buffer_data, m->buffer_floats, MPI_FLOAT, sizeof(float), root, "broadcast buffers");
    if (r == SDL_OK && opt) {
        int64_t n = (int64_t)opt->nstate * m->param_floats;
        double hdr[4] = {(double)opt->step, (double)opt->lr, (double)opt->nstate, (double)opt->micro};
        r = sdl__mpi_bcast(hdr, 4, MPI_DOUBLE, sizeof(double), root, "broadcast optimizer step");
        if (r == SDL_OK && hdr[2] != (double)opt->nstate)
            return sdl_fail(SDL_ERR_COMM, "sdl_mpi_broadcast_model: rank %d's optimizer has %d state slots, the root's %d",
                            sdl__mpi.rank, opt->nstate, (int)hdr[2]);
        if (r == SDL_OK) r = sdl__mpi_bcast(opt->state, n, MPI_FLOAT, sizeof(float), root, "broadcast optimizer state");
        opt->step = (int64_t)hdr[0];
        opt->lr = (float)hdr[1];
        opt->micro = (int)hdr[3];
    }
    sdl__mpi_event_add("broadcast", t, sdl__mpi_now_us() - t, 1);
    return r;
}

/* ----------------------------------------------------------------------------------------
   >>mpi-ddp: gradient averaging for one model
   ---------------------------------------------------------------------------------------- */
typedef struct sdl__mpi_bucket {
    int64_t begin, end;  /* float range of the flat gradient array */
    int pending;         /* parameters whose gradient is not final yet */
    int nparams;
    bool launched;
    MPI_Request req;
    double t_launch, t_done; /* t_done: when a test or wait first saw it complete */
    char name[32];
} sdl__mpi_bucket;

struct sdl_mpi_ddp {
    sdl_model *model;
    sdl_mpi_ddp_desc desc;
    bool sync, error;
    sdl__mpi_bucket *buckets;
    int nbuckets, next_launch;
    int *param_bucket;   /* bucket of each parameter */
    bool *param_ready;
    uint16_t *half;      /* fp16 with MPI: the wire copy of the gradients */
    char check_name[48]; /* what sync tells the checker: the bucket layout */
    /* SDL_MPI_ALGO_SHM (>>mpi-shm) */
    MPI_Comm node;         /* the ranks of this node: all of them */
    MPI_Win win;           /* one segment per rank: counters, then its gradient array */
    float **grads;         /* every rank's gradient array, readable and writable by all */
    int64_t **ready;       /* [rank][bucket]: the steps for which that rank's bucket was final */
    int64_t *claim, *done; /* [bucket], in rank 0's segment: pieces taken / finished, all steps */
    float *own_grad;       /* the model's own gradient array, given back at sdl_mpi_ddp_free */
    int64_t step;          /* syncs done */
    struct sdl__mpi_gpu_ddp *gpu; /* a model on the GPU: see >>mpi-gpu */
};
static sdl_result sdl__mg_ddp_init(sdl_mpi_ddp *d, const sdl_mpi_gpu_desc *gd);
static void sdl__mg_bucket_launch(sdl_mpi_ddp *d, int b);
static void sdl__mg_progress(sdl_mpi_ddp *d);
static sdl_result sdl__mg_ddp_sync(sdl_mpi_ddp *d);
static void sdl__mg_ddp_free(sdl_mpi_ddp *d);

/* ----------------------------------------------------------------------------------------
   >>mpi-shm: SDL_MPI_ALGO_SHM, gradient averaging through shared memory, for ranks that
   share a node. Every rank's gradient array lives in one MPI-3 shared-memory window
   (MPI_Win_allocate_shared), so any rank can read and write any other's:

      rank r, bucket b final     ready[r][b] = step + 1          (a release store)
      b final on every rank      its pieces (SDL_MPI_SHM_PIECE floats) are up for grabs:
                                 a rank takes the next one by bumping claim[b], computes
                                 mean_i = (g_0,i + g_1,i + ... + g_n-1,i) / n (rank order),
                                 writes it into every rank's array, then bumps done[b]
      sync returns               when every piece of every bucket is done

   Ranks take pieces while they wait in sdl_mpi_ddp_sync. So the rank that finished
   backward first, which with MPI_Allreduce would idle until the last one arrives, does the
   reducing while the others still compute, and ranks that arrive together share it. Per
   float and rank this is one read and one write; MPI_Allreduce on shared memory copies
   each float through a buffer and back, then sdl scales it in another pass.
   The counters only grow: step s owns claims s P .. (s + 1) P - 1 of a bucket of P pieces,
   so nothing is reset between steps. A rank starts step s + 1's pieces only once every rank
   marked the bucket ready for s + 1, which each does after its sync of step s returned,
   that is after all of step s's pieces were done.
   ---------------------------------------------------------------------------------------- */
static int64_t sdl__mpi_acquire(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void sdl__mpi_release(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* every parameter's gradient pointer into g, laid out as the model's flat array */
static void sdl__mpi_grads_to(sdl_model *m, float *g) {
    for (int i = 0; i < m->nparams; i++) m->params[i]->grad = g + m->param_offset[i];
    m->grad_data = g;
}

static sdl_result sdl__mpi_shm_setup(sdl_mpi_ddp *d) {
    sdl_model *m = d->model;
    int n = sdl__mpi.size, me = sdl__mpi.rank, nb = d->nbuckets;
    if (sdl__mpi.local_size != n)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp: SDL_MPI_ALGO_SHM needs every rank on one node, but this node has %d of "
                        "the %d ranks; use SDL_MPI_ALGO_MPI", sdl__mpi.local_size, n);
    if (d->desc.fp16) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp: fp16 shrinks messages, and SDL_MPI_ALGO_SHM sends none");
    SDL__MPI_TRY(MPI_Comm_split_type(sdl__mpi.comm, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &d->node), "MPI_Comm_split_type");
    size_t counters = ((size_t)3 * (size_t)nb * sizeof(int64_t) + 4095) / 4096 * 4096; /* keeps the floats page-aligned */
    size_t bytes = counters + (size_t)m->param_floats * sizeof(float);
    void *mine = NULL;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* each segment on its rank's own pages */
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, d->node, &mine, &d->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) { d->win = MPI_WIN_NULL; return sdl__mpi_err(rc, "MPI_Win_allocate_shared"); }
    d->grads = (float **)sdl__mpi_alloc((size_t)n, sizeof(float *));
    d->ready = (int64_t **)sdl__mpi_alloc((size_t)n, sizeof(int64_t *));
    if (!d->grads || !d->ready) return SDL_ERR_OOM;
    for (int r = 0; r < n; r++) {
        MPI_Aint size;
        int unit;
        char *base;
        SDL__MPI_TRY(MPI_Win_shared_query(d->win, r, &size, &unit, &base), "MPI_Win_shared_query");
        d->ready[r] = (int64_t *)base + 2 * nb;
        d->grads[r] = (float *)(base + counters);
        if (r == 0) d->claim = (int64_t *)base, d->done = (int64_t *)base + nb;
    }
    memset(mine, 0, counters);
    memcpy(d->grads[me], m->grad_data, (size_t)m->param_floats * sizeof(float));
    d->own_grad = m->grad_data;
    sdl__mpi_grads_to(m, d->grads[me]);
    SDL__MPI_TRY(MPI_Win_lock_all(MPI_MODE_NOCHECK, d->win), "MPI_Win_lock_all");
    MPI_Win_sync(d->win);
    SDL__MPI_TRY(MPI_Barrier(d->node), "MPI_Barrier"); /* every rank's counters are zero */
    return SDL_OK;
}

/* gives the model its own gradient array back (with the window's values) */
static void sdl__mpi_shm_free(sdl_mpi_ddp *d) {
    if (d->own_grad) {
        memcpy(d->own_grad, d->model->grad_data, (size_t)d->model->param_floats * sizeof(float));
        sdl__mpi_grads_to(d->model, d->own_grad);
        MPI_Win_unlock_all(d->win);
    }
    if (d->win != MPI_WIN_NULL) MPI_Win_free(&d->win);
    if (d->node != MPI_COMM_NULL) MPI_Comm_free(&d->node);
    SDL__MPI_FREE(d->grads);
    SDL__MPI_FREE(d->ready);
}

static void sdl__mpi_shm_publish(sdl_mpi_ddp *d, int b) {
    d->buckets[b].launched = true;
    d->buckets[b].t_launch = sdl__mpi_now_us();
    sdl__mpi_release(&d->ready[sdl__mpi.rank][b], d->step + 1);
}

/* the first rank whose bucket b is not final for this step yet, or -1 */
static int sdl__mpi_shm_waiting_for(sdl_mpi_ddp *d, int b) {
    for (int r = 0; r < sdl__mpi.size; r++)
        if (sdl__mpi_acquire(&d->ready[r][b]) <= d->step) return r;
    return -1;
}

/* floats [begin, end): the mean over ranks, summed in rank order, into every rank's array */
static void sdl__mpi_shm_reduce(sdl_mpi_ddp *d, int64_t begin, int64_t end) {
    float mean[1024];
    const int64_t tile = (int64_t)(sizeof mean / sizeof mean[0]);
    int n = sdl__mpi.size;
    float inv = 1.0f / (float)n;
    for (int64_t at = begin; at < end; at += tile) {
        int len = (int)(end - at < tile ? end - at : tile);
        memcpy(mean, d->grads[0] + at, (size_t)len * sizeof(float));
        for (int r = 1; r < n; r++) sdl__mpi_add(mean, d->grads[r] + at, len);
        for (int i = 0; i < len; i++) mean[i] *= inv;
        for (int r = 0; r < n; r++) memcpy(d->grads[r] + at, mean, (size_t)len * sizeof(float));
    }
}

/* a bucket's pieces of SDL_MPI_SHM_PIECE floats (an empty one still counts one, so it gets done) */
static int64_t sdl__mpi_shm_pieces(const sdl__mpi_bucket *k) {
    int64_t len = k->end - k->begin;
    return len > 0 ? (len + SDL_MPI_SHM_PIECE - 1) / SDL_MPI_SHM_PIECE : 1;
}

/* takes and reduces this step's free pieces of the buckets final on every rank; true
   when every piece of every bucket is done */
static bool sdl__mpi_shm_work(sdl_mpi_ddp *d) {
    bool all_done = true;
    for (int b = 0; b < d->nbuckets; b++) {
        const sdl__mpi_bucket *k = &d->buckets[b];
        int64_t first = d->step * sdl__mpi_shm_pieces(k), last = first + sdl__mpi_shm_pieces(k);
        if (sdl__mpi_acquire(&d->done[b]) >= last) continue;
        all_done = false;
        if (sdl__mpi_shm_waiting_for(d, b) >= 0) continue;
        for (int64_t t = sdl__mpi_acquire(&d->claim[b]); t < last; t = sdl__mpi_acquire(&d->claim[b])) {
            if (!__atomic_compare_exchange_n(&d->claim[b], &t, t + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
            int64_t lo = k->begin + (t - first) * SDL_MPI_SHM_PIECE, hi = lo + SDL_MPI_SHM_PIECE;
            sdl__mpi_shm_reduce(d, lo, hi < k->end ? hi : k->end);
            __atomic_fetch_add(&d->done[b], 1, __ATOMIC_RELEASE);
        }
    }
    return all_done;
}

/* the collective check runs alongside: posted first, evaluated once every rank's message
   is in. Each rank publishes all its buckets before it posts, so once the check passed
   every piece can be taken and the loop ends; until then the check's timeout bounds it. */
static void sdl__mpi_shm_sync(sdl_mpi_ddp *d) {
    if (sdl__mpi.size == 1) return; /* the mean over one rank is its own gradient */
    for (int b = 0; b < d->nbuckets; b++)
        if (!d->buckets[b].launched) sdl__mpi_shm_publish(d, b); /* unused parameters; flat mode */
    double start = MPI_Wtime(), tw = sdl__mpi_now_us();
    bool checking = sdl__mpi_checking(), checked = !checking;
    if (checking) sdl__mpi_check_post(d->check_name, d->model->param_floats);
    for (;;) {
        bool done = sdl__mpi_shm_work(d);
        if (!checked && sdl__mpi_check_arrived()) {
            sdl__mpi_check_finish(start); /* ends the job if the ranks disagree */
            checked = true;
        }
        if (done && checked) break;
        if (!checked && MPI_Wtime() > start + sdl__mpi.timeout) sdl__mpi_check_finish(start); /* reports, ends the job */
    }
    sdl__mpi_event_add("shm reduce and wait", tw, sdl__mpi_now_us() - tw, 1);
    d->step++;
}

SDL_API int sdl_mpi_ddp_num_buckets(const sdl_mpi_ddp *d) { return d ? d->nbuckets : 0; }
SDL_API void sdl_mpi_ddp_set_sync(sdl_mpi_ddp *d, bool sync) { if (d) d->sync = sync; }

/* starts bucket b: MPI_Iallreduce in place (fp16: of its half copy). The last bucket is
   only started at sync, where nothing is left to overlap with: it goes with the blocking
   MPI_Allreduce, which is much faster than an MPI_Iallreduce waited on at once (Open MPI
   4.1, 2 ranks, 4.7 MB: 0.56-0.66 ms against 0.9-1.6 ms). The ring runs at sync. */
static void sdl__mpi_bucket_launch(sdl_mpi_ddp *d, int b) {
    sdl__mpi_bucket *k = &d->buckets[b];
    int64_t n = k->end - k->begin;
    k->launched = true;
    k->t_launch = k->t_done = sdl__mpi_now_us();
    if (d->gpu) { sdl__mg_bucket_launch(d, b); return; }
    if (d->desc.algo == SDL_MPI_ALGO_RING || sdl__mpi.size == 1) return;
    float *g = d->model->grad_data + k->begin;
    int rc;
    bool now = b == d->nbuckets - 1;
    void *buf = g;
    MPI_Datatype type = MPI_FLOAT;
    MPI_Op op = MPI_SUM;
    if (d->desc.fp16) {
        float inv = 1.0f / (float)sdl__mpi.size;
        uint16_t *h = d->half + k->begin;
        for (int64_t i = 0; i < n; i++) h[i] = sdl_mpi_f32_to_f16(g[i] * inv);
        buf = h, type = MPI_UINT16_T, op = sdl__mpi.half_sum;
    }
    if (now) rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, type, op, sdl__mpi.comm);
    else rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, type, op, sdl__mpi.comm, &k->req);
    if (now) k->t_done = sdl__mpi_now_us();
    if (rc != MPI_SUCCESS) { sdl__mpi_err(rc, now ? "MPI_Allreduce (bucket)" : "MPI_Iallreduce"); d->error = true; k->req = MPI_REQUEST_NULL; }
}

/* launches ready buckets in index order, so every rank starts them in the same order;
   the last one waits for sync */
static void sdl__mpi_launch_ready(sdl_mpi_ddp *d) {
    while (d->next_launch < d->nbuckets - 1 && d->buckets[d->next_launch].pending == 0)
        sdl__mpi_bucket_launch(d, d->next_launch++);
}

static sdl_result sdl__mpi_grad_hook(void *user, sdl_model *m, int param_index) {
    sdl_mpi_ddp *d = (sdl_mpi_ddp *)user;
    if (!d->sync || m != d->model || param_index < 0 || param_index >= m->nparams) return SDL_OK;
    if (d->param_ready[param_index]) { /* a second backward without sync in between */
        sdl_fail(SDL_ERR_STATE, "sdl_mpi_ddp: backward ran twice without sdl_mpi_ddp_sync; for gradient accumulation "
                 "call sdl_mpi_ddp_set_sync(ddp, false) before the first micro-batches");
        d->error = true;
        return SDL_ERR_STATE;
    }
    d->param_ready[param_index] = true;
    int bucket = d->param_bucket[param_index];
    d->buckets[bucket].pending--;
    if (d->desc.algo == SDL_MPI_ALGO_SHM) { /* published when final; reduced at sync */
        if (d->buckets[bucket].pending == 0) sdl__mpi_shm_publish(d, bucket);
        return SDL_OK;
    }
    sdl__mpi_launch_ready(d);
    if (d->gpu) { sdl__mg_progress(d); return SDL_OK; }
    for (int b = 0; b < d->next_launch; b++) { /* let MPI progress the ones in flight */
        int flag = 0;
        if (d->buckets[b].req != MPI_REQUEST_NULL) MPI_Test(&d->buckets[b].req, &flag, MPI_STATUS_IGNORE);
        if (flag) d->buckets[b].t_done = sdl__mpi_now_us();
    }
    return SDL_OK;
}

SDL_API sdl_mpi_ddp *sdl_mpi_ddp_new(sdl_model *m, const sdl_mpi_ddp_desc *desc) { return sdl_mpi_ddp_new_gpu(m, desc, NULL); }

SDL_API sdl_mpi_ddp *sdl_mpi_ddp_new_gpu(sdl_model *m, const sdl_mpi_ddp_desc *desc, const sdl_mpi_gpu_desc *gdesc) {
    if (sdl__mpi_need_init("sdl_mpi_ddp_new") != SDL_OK) return NULL;
    if (!m) { sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: NULL model"); return NULL; }
    if (sdl_model_pack(m) != SDL_OK) return NULL;
    if (!m->grad_data) { sdl_fail(SDL_ERR_STATE, "sdl_mpi_ddp_new: the model's gradients are sharded (ZeRO); use one or the other"); return NULL; }
    sdl_mpi_ddp *d = (sdl_mpi_ddp *)sdl__mpi_alloc(1, sizeof(sdl_mpi_ddp));
    if (!d) return NULL;
    d->node = MPI_COMM_NULL;
    d->win = MPI_WIN_NULL;
    if (desc) d->desc = *desc;
    if (d->desc.mode == SDL_MPI_MODE_DEFAULT) d->desc.mode = SDL_MPI_MODE_BUCKETS;
    if (d->desc.algo == SDL_MPI_ALGO_DEFAULT) d->desc.algo = SDL_MPI_ALGO_MPI;
    if (d->desc.bucket_mb <= 0) d->desc.bucket_mb = d->desc.algo == SDL_MPI_ALGO_SHM ? SDL_MPI_SHM_BUCKET_MB : SDL_MPI_BUCKET_MB;
    d->model = m;
    d->sync = true;
    int np = m->nparams;
    d->param_bucket = (int *)sdl__mpi_alloc((size_t)np + 1, sizeof(int));
    d->param_ready = (bool *)sdl__mpi_alloc((size_t)np + 1, sizeof(bool));
    d->buckets = (sdl__mpi_bucket *)sdl__mpi_alloc((size_t)np + 1, sizeof(sdl__mpi_bucket));
    bool gpu = sdl__mg_model_on_gpu(m);
    if (d->desc.fp16 && d->desc.mode == SDL_MPI_MODE_BUCKETS && d->desc.algo == SDL_MPI_ALGO_MPI && !gpu)
        d->half = (uint16_t *)sdl__mpi_alloc((size_t)m->param_floats + 1, sizeof(uint16_t));
    if (!d->param_bucket || !d->param_ready || !d->buckets || (d->desc.fp16 && d->desc.mode == SDL_MPI_MODE_BUCKETS &&
                                                               d->desc.algo == SDL_MPI_ALGO_MPI && !gpu && !d->half)) {
        sdl_mpi_ddp_free(d);
        return NULL;
    }
    /* buckets: whole parameters from the last one back, each closed once it holds
       bucket_mb; parameters are contiguous in creation order, so a bucket is one range */
    int64_t cap = (int64_t)((double)d->desc.bucket_mb * 1048576.0 / sizeof(float));
    if (cap < 1) cap = 1;
    if (cap > INT_MAX) cap = INT_MAX;
    if (d->desc.mode == SDL_MPI_MODE_FLAT) cap = INT64_MAX;
    for (int i = np - 1; i >= 0; i--) {
        int64_t lo = m->param_offset[i], hi = m->param_offset[i + 1];
        sdl__mpi_bucket *k = d->nbuckets ? &d->buckets[d->nbuckets - 1] : NULL;
        if (!k || k->end - k->begin >= cap || (k->end - lo > INT_MAX && d->desc.mode == SDL_MPI_MODE_BUCKETS)) {
            k = &d->buckets[d->nbuckets++];
            k->end = hi;
            snprintf(k->name, sizeof k->name, "allreduce bucket %d", (d->nbuckets - 1) & 0xffffff);
        }
        if (hi - lo > INT_MAX && d->desc.mode == SDL_MPI_MODE_BUCKETS) {
            sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: parameter '%s' has more than 2^31 floats; use SDL_MPI_MODE_FLAT", m->params[i]->name);
            sdl_mpi_ddp_free(d);
            return NULL;
        }
        k->begin = lo;
        k->nparams++;
        d->param_bucket[i] = d->nbuckets - 1;
    }
    for (int b = 0; b < d->nbuckets; b++) {
        d->buckets[b].pending = d->buckets[b].nparams;
        d->buckets[b].req = MPI_REQUEST_NULL;
    }
    snprintf(d->check_name, sizeof d->check_name, "ddp sync%s, %d buckets, first %lld",
             d->desc.fp16 ? " fp16" : d->desc.algo == SDL_MPI_ALGO_SHM ? " shm" : "",
             d->nbuckets & 0xffffff, d->nbuckets ? (long long)(d->buckets[0].end - d->buckets[0].begin) : 0ll);
    if (gpu && d->desc.algo == SDL_MPI_ALGO_SHM) {
        sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: SDL_MPI_ALGO_SHM is for models on the CPU; GPU models pick a transport");
        sdl_mpi_ddp_free(d);
        return NULL;
    }
    if (gpu && sdl__mg_ddp_init(d, gdesc) != SDL_OK) {
        sdl_mpi_ddp_free(d);
        return NULL;
    }
    if (!gpu && gdesc && gdesc->bf16) {
        sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: bf16 on the wire is for models on the GPU; use fp16");
        sdl_mpi_ddp_free(d);
        return NULL;
    }
    if (d->desc.algo == SDL_MPI_ALGO_SHM && sdl__mpi_shm_setup(d) != SDL_OK) {
        sdl_mpi_ddp_free(d);
        return NULL;
    }
    if (d->desc.mode == SDL_MPI_MODE_BUCKETS) sdl_model_set_grad_hook(m, sdl__mpi_grad_hook, d);
    return d;
}

static void sdl__mpi_ddp_reset(sdl_mpi_ddp *d) {
    for (int b = 0; b < d->nbuckets; b++) {
        d->buckets[b].pending = d->buckets[b].nparams;
        d->buckets[b].launched = false;
        d->buckets[b].req = MPI_REQUEST_NULL;
    }
    memset(d->param_ready, 0, (size_t)d->model->nparams * sizeof(bool));
    d->next_launch = 0;
    d->error = false;
}

SDL_API sdl_result sdl_mpi_ddp_sync(sdl_mpi_ddp *d) {
    if (!d) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_sync: NULL ddp");
    if (!d->sync) return SDL_OK; /* accumulating: no communication */
    sdl_model *m = d->model;
    sdl_result r = SDL_OK;
    /* averaging writes every gradient, also of parameters this rank left at zero: a
       backward before the next optimizer step must add to them, not overwrite */
    for (int i = 0; m->grad_zero && i < m->nparams; i++) m->grad_zero[i] = false;
    if (d->gpu) {
        r = sdl__mg_ddp_sync(d);
        sdl__mpi_ddp_reset(d);
        return r;
    }
    if (d->desc.algo == SDL_MPI_ALGO_SHM) {
        bool had_error = d->error; /* the grad hook said why */
        sdl__mpi_shm_sync(d);
        sdl__mpi_ddp_reset(d);
        return had_error ? SDL_ERR_STATE : SDL_OK;
    }
    if (d->desc.mode == SDL_MPI_MODE_FLAT) {
        double t = sdl__mpi_now_us();
        sdl_mpi_check(d->desc.fp16 ? "ddp allreduce fp16" : "ddp allreduce", m->param_floats);
        r = sdl__mpi_average_unchecked(m->grad_data, m->param_floats, d->desc.algo, d->desc.fp16);
        sdl__mpi_event_add("allreduce", t, sdl__mpi_now_us() - t, 1);
        return r;
    }
    bool had_error = d->error;
    sdl__mpi_launch_ready(d);
    while (d->next_launch < d->nbuckets - 1) sdl__mpi_bucket_launch(d, d->next_launch++); /* unused params */
    double tw = sdl__mpi_now_us();
    /* one check for all buckets, here rather than at each launch: a check waits for the
       other ranks, and a wait in the middle of backward would add each rank's delays twice
       (at the launch and again here). The buckets' MPI_Iallreduce calls only start; a
       mismatch found here ends the job before anything waits on them. */
    sdl_mpi_check(d->check_name, m->param_floats);
    if (d->next_launch < d->nbuckets) sdl__mpi_bucket_launch(d, d->next_launch++); /* the last: blocking */
    float inv = 1.0f / (float)sdl__mpi.size;
    for (int b = 0; b < d->nbuckets && sdl__mpi.size > 1; b++) {
        sdl__mpi_bucket *k = &d->buckets[b];
        int64_t n = k->end - k->begin;
        float *g = m->grad_data + k->begin;
        if (d->desc.algo == SDL_MPI_ALGO_RING) {
            double t = sdl__mpi_now_us();
            if (d->desc.fp16) for (int64_t i = 0; i < n; i++) g[i] *= inv;
            sdl_result rr = sdl__mpi_ring(g, n, d->desc.fp16);
            if (rr != SDL_OK && r == SDL_OK) r = rr;
            if (!d->desc.fp16) for (int64_t i = 0; i < n; i++) g[i] *= inv;
            sdl__mpi_event_add(k->name, t, sdl__mpi_now_us() - t, 1);
            continue;
        }
        if (k->req != MPI_REQUEST_NULL) {
            int rc = MPI_Wait(&k->req, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS && r == SDL_OK) r = sdl__mpi_err(rc, "MPI_Wait (bucket)");
            k->t_done = sdl__mpi_now_us();
        }
        sdl__mpi_event_add(k->name, k->t_launch, k->t_done - k->t_launch, 1);
        if (d->desc.fp16) {
            const uint16_t *h = d->half + k->begin;
            for (int64_t i = 0; i < n; i++) g[i] = sdl_mpi_f16_to_f32(h[i]);
        } else {
            for (int64_t i = 0; i < n; i++) g[i] *= inv;
        }
    }
    if (sdl__mpi.size > 1) sdl__mpi_event_add("wait", tw, sdl__mpi_now_us() - tw, 0);
    if (had_error || d->error) r = r != SDL_OK ? r : (sdl_last_result() != SDL_OK ? sdl_last_result() : SDL_ERR_COMM);
    sdl__mpi_ddp_reset(d);
    return r;
}

SDL_API void sdl_mpi_ddp_free(sdl_mpi_ddp *d) {
    if (!d) return;
    for (int b = 0; d->buckets && b < d->nbuckets; b++)
        if (d->buckets[b].req != MPI_REQUEST_NULL) MPI_Wait(&d->buckets[b].req, MPI_STATUS_IGNORE);
    if (d->model && d->model->grad_hook_user == d) sdl_model_set_grad_hook(d->model, NULL, NULL);
    sdl__mpi_shm_free(d);
    sdl__mg_ddp_free(d);
    SDL__MPI_FREE(d->param_bucket);
    SDL__MPI_FREE(d->param_ready);
    SDL__MPI_FREE(d->buckets);
    SDL__MPI_FREE(d->half);
    SDL__MPI_FREE(d);
}

/* ----------------------------------------------------------------------------------------
   >>mpi-eval: exact distributed evaluation. torch's DistributedSampler pads the last round
   (1000 samples on 3 ranks: 1002 evaluated); here rank r takes the contiguous share
   sdl__mpi_chunk(n, size, r), so the shares add up to n exactly and, concatenated in rank
   order, are the dataset in order: one MPI_Allgatherv puts predictions back in place.
   ---------------------------------------------------------------------------------------- */
SDL_API void sdl_mpi_shard_range(int64_t n, int64_t *begin, int64_t *count) {
    int64_t b = 0, len = n > 0 ? n : 0;
    if (sdl__mpi.up && len > 0) sdl__mpi_chunk(len, sdl__mpi.size, sdl__mpi.rank, &b, &len);
    if (begin) *begin = b;
    if (count) *count = len;
}

SDL_API sdl_result sdl_mpi_dataset_shard(const sdl_dataset *full, sdl_dataset *view) {
    if (!full || !view) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_dataset_shard: NULL dataset");
    if (full->n < 0 || (full->n > 0 && (!full->images || !full->labels)))
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi_dataset_shard: the dataset has no arrays (n %lld)", (long long)full->n);
    int64_t b, cnt;
    sdl_mpi_shard_range(full->n, &b, &cnt);
    *view = *full;
    view->n = cnt;
    view->images = full->images ? full->images + b * (int64_t)full->c * full->h * full->w : NULL;
    view->labels = full->labels ? full->labels + b : NULL;
    return SDL_OK;
}

SDL_API sdl_result sdl_mpi_allgather_rows(const void *mine, int64_t rows, size_t row_bytes, void *all, int64_t total) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_allgather_rows");
    if (r != SDL_OK) return r;
    if (rows < 0 || total < 0 || (!mine && rows) || (!all && total) || row_bytes == 0)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi_allgather_rows: bad buffers (rows %lld, total %lld, row_bytes %zu)",
                        (long long)rows, (long long)total, row_bytes);
    int n = sdl__mpi.size;
    if ((uint64_t)total > (uint64_t)INT_MAX / row_bytes)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi_allgather_rows: %lld rows of %zu bytes pass MPI's int count", (long long)total, row_bytes);
    int64_t *cnt = (int64_t *)sdl__mpi_alloc((size_t)n, sizeof(int64_t));
    int *bytes = (int *)sdl__mpi_alloc(2 * (size_t)n, sizeof(int)), *displ = bytes ? bytes + n : NULL;
    if (!cnt || !bytes) { SDL__MPI_FREE(cnt); SDL__MPI_FREE(bytes); return SDL_ERR_OOM; }
    sdl_mpi_check("allgather rows", (int64_t)row_bytes);
    int rc = MPI_Allgather(&rows, 1, MPI_INT64_T, cnt, 1, MPI_INT64_T, sdl__mpi.comm);
    int64_t sum = 0;
    for (int i = 0; rc == MPI_SUCCESS && i < n; i++) {
        displ[i] = (int)(sum * (int64_t)row_bytes);
        sum += cnt[i];
        bytes[i] = sum <= total ? (int)(cnt[i] * (int64_t)row_bytes) : 0;
    }
    if (rc != MPI_SUCCESS) r = sdl__mpi_err(rc, "MPI_Allgather (row counts)");
    else if (sum != total) r = sdl_fail(SDL_ERR_ARG, "sdl_mpi_allgather_rows: the ranks hold %lld rows, all has room for %lld", (long long)sum, (long long)total);
    else if ((rc = MPI_Allgatherv(mine, bytes[sdl__mpi.rank], MPI_BYTE, all, bytes, displ, MPI_BYTE, sdl__mpi.comm)) != MPI_SUCCESS)
        r = sdl__mpi_err(rc, "MPI_Allgatherv");
    SDL__MPI_FREE(cnt);
    SDL__MPI_FREE(bytes);
    return r;
}

/* ----------------------------------------------------------------------------------------
   >>mpi-syncbn: SyncBatchNorm. The layer's forward becomes sdl_batch_norm_synced with the
   sum below (an MPI_Allreduce of C + 1, C and, in backward, 2C doubles); running stats move
   by the group's statistics, so they stay the same on every rank.
   ---------------------------------------------------------------------------------------- */
/* a collective inside forward or backward cannot return an error to the caller: reported
   and the job ended, as the checker does */
static void sdl__mpi_bn_sum(double *v, int64_t n, void *user) {
    (void)user;
    int rc = n > INT_MAX ? MPI_ERR_COUNT : MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM, sdl__mpi.comm);
    if (rc == MPI_SUCCESS) return;
    sdl__mpi_err(rc, "MPI_Allreduce (sync batch norm)");
    sdl_log(SDL_LOG_ERROR, "%s; ending the job", sdl_last_error());
    sdl__mpi_die();
}

static sdl_tensor *sdl__mpi_sync_bn_fwd(sdl_module *l, sdl_tensor *x) {
    if (!l->model->training || sdl__mpi.size == 1)
        return sdl_batch_norm(x, l->weight, l->bias, l->running_mean, l->running_var, l->model->training, 0.1f, l->p);
    return sdl_batch_norm_synced(x, l->weight, l->bias, l->running_mean, l->running_var, 0.1f, l->p, sdl__mpi_bn_sum, NULL);
}

SDL_API int sdl_mpi_sync_batch_norm(sdl_model *m) {
    if (sdl__mpi_need_init("sdl_mpi_sync_batch_norm") != SDL_OK) return -1;
    if (!m) { sdl_fail(SDL_ERR_ARG, "sdl_mpi_sync_batch_norm: NULL model"); return -1; }
    int k = 0;
    for (int i = 0; i < m->nmodules; i++) {
        sdl_module *l = m->modules[i];
        if (strcmp(l->kind, "batch_norm") != 0 && strcmp(l->kind, "sync_batch_norm") != 0) continue;
        l->kind = "sync_batch_norm";
        l->forward = sdl__mpi_sync_bn_fwd;
        k++;
    }
    return k;
}

SDL_API sdl_result sdl_mpi_sync_buffers(sdl_model *m) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_sync_buffers");
    if (r != SDL_OK) return r;
    if (!m) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_sync_buffers: NULL model");
    if ((r = sdl_model_pack(m)) != SDL_OK) return r;
    if (sdl__mg_model_on_gpu(m)) return sdl_fail(SDL_ERR_DEVICE, "sdl_mpi_sync_buffers: the model is on the GPU; CPU models only");
    sdl_mpi_check("sync buffers", m->buffer_floats);
    return sdl__mpi_average_unchecked(m->buffer_data, m->buffer_floats, SDL_MPI_ALGO_MPI, false);
}

/* ----------------------------------------------------------------------------------------
   >>mpi-zero: ZeRO stages 1, 2 and 3 (Rajbhandari et al. 2020; DeepSpeed's semantics).
   The flat parameter array is cut into one range per rank, [bound[r], bound[r + 1]): even
   cuts (sdl__mpi_chunk) for the element-wise optimizers (sgd, adam, adamw), cuts moved to
   the nearest tensor boundary for lars and lamb, whose trust ratios need whole tensors.
   Rank r's range is a small model of its own (z->shard: one tensor per piece of a parameter,
   the same decay flags) with an ordinary sdl_optim over it, so every optimizer works
   unchanged, with 1/N of the state. Its parameters are a view of the model's array in
   stages 1 and 2 (the model keeps them all) and the only copy in stage 3; its gradient is
   a view of the model's gradient array in stage 1 and an array of its own in 2 and 3.
     gradients  bucket by bucket (desc.bucket_mb), MPI_Reduce_scatter sends each range of the
                bucket to its owner (f16/bf16 on the wire: divided by N first, as sdl_mpi_ddp)
                stage 1: micro-batches add up in the model's gradient array; only the update
                step reduces (DDP's no_sync), into the owner's range of that array
                stage 2, 3: the model has no gradient array: backward puts each gradient in
                the step arena; once all of a bucket's gradients are final (the grad hook)
                it is copied out (and zeroed there, so a second backward through the graph
                adds only what is new) and MPI_Ireduce_scatter'd in place while backward
                goes on, two buckets on the wire at most; buckets go out from the last one
                down, the order backward finishes them, the same on every rank. The step
                sends what is left (gradients never reached: zeros) and adds each rank's
                part into the shard's gradient
     update     scale by 1 / (N accum_steps), clip to the global norm (shard sums of squares
                added over ranks), the shard optimizer's step
     parameters stages 1, 2: MPI_Allgatherv of the shards into the model's array
                stage 3: the model has no parameter array. Every module with a weight or bias
                gets a forward of its own (sdl__zero3_fwd) that gathers the module's range
                just before the module runs (MPI_Iallgatherv into a buffer) and starts the
                gather of the module that ran after it in the last step (creation order at
                first), so the next layer's parameters travel while this one computes, and
                frees the module's after it (all but the last one's: backward needs it
                first). Backward gathers them again before the first node that reads them
                (the model's pre-grad hook, sdl__zero3_pre_hook) and starts the gather of
                the module whose forward ran before it this step; they go once the layer's
                gradients are final (the grad hook, sdl__zero_hook). sdl_mpi_zero_step
                frees what is left (sdl_mpi_zero_release after evaluation forwards).
   ---------------------------------------------------------------------------------------- */
#ifndef SDL_MPI_ZERO_BUCKET_MB
#define SDL_MPI_ZERO_BUCKET_MB 4
#endif

typedef struct sdl__zero_layer { /* stage 3: a module whose weight and bias are sharded */
    sdl_module *module;
    sdl_forward_fn forward;      /* its own */
    int64_t lo, hi;              /* the float range of its parameters */
    float *full;                 /* gathered parameters, or NULL */
    bool in_flight;
    MPI_Request req;
    int *counts, *displs;        /* per rank, for its MPI_Iallgatherv */
    int next;                    /* the layer whose forward came next in the last step, -1: none */
    int prev;                    /* the layer whose forward came before it this step, -1: none */
    int pending;                 /* its parameters whose backward is not done yet */
} sdl__zero_layer;

typedef struct sdl__zero_slot { /* stages 2, 3: a bucket of gradients on the wire */
    float *f32;            /* f32 wire: the bucket, reduce-scattered in place */
    uint16_t *half;        /* f16, bf16 wire: the same, divided by N first */
    int *counts, *displs;  /* per rank */
    int64_t w0;            /* where the bucket begins */
    bool busy;             /* on the wire, or arrived and not yet added into the shard */
    MPI_Request req;
} sdl__zero_slot;

struct sdl_mpi_zero {
    sdl_model *model;
    sdl_mpi_zero_desc desc;
    sdl_model *shard;     /* this rank's pieces: parameters and gradient (views or its own) */
    sdl_optim *opt;       /* over the shard: no accumulation, no clipping (done here) */
    int64_t *bound;       /* size + 1 */
    int *counts, *displs; /* per rank: floats of one bucket, for MPI */
    int64_t bucket;       /* floats per bucket */
    float *recv;          /* stage 1: this rank's part of a bucket */
    uint16_t *half;       /* stage 1: the wire copy of a bucket (f16, bf16) */
    MPI_Op bf16_sum;
    /* stages 2, 3: buckets go out while backward runs (the grad hook), from the last down */
    sdl__zero_slot slot[2];  /* the buckets on the wire, two at most */
    int turn;                /* the slot the next bucket takes */
    int nbuckets, next;      /* next: the bucket that goes out next, once its gradients are final */
    int *left, *nparam;      /* per bucket: parameters whose gradient is still to come, and all */
    bool *sent;              /* per bucket: out since the last step */
    sdl_result err;          /* a collective that failed inside backward, for the step */
    int micro;            /* micro-batches since the last update */
    float grad_norm;
    sdl__zero_layer *layers; /* stage 3 */
    int nlayers, last;       /* last: the layer whose forward ran last this step, -1: none */
    int *param_layer;        /* the layer of each parameter */
    int64_t gathered, peak_gathered; /* floats of layers gathered (or on the wire) now, and the most */
};
static sdl_mpi_zero *sdl__zero3; /* the stage-3 object whose forwards run (one at a time) */

static void sdl__mpi_bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) b[i] = sdl_mpi_f32_to_bf16(sdl_mpi_bf16_to_f32(a[i]) + sdl_mpi_bf16_to_f32(b[i]));
}

static int64_t sdl__zero_overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
    int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* counts and displacements of [w0, w1) over the ranks' ranges, relative to w0 */
static void sdl__zero_split(const sdl_mpi_zero *z, int64_t w0, int64_t w1, int *counts, int *displs) {
    for (int r = 0; r < sdl__mpi.size; r++) {
        counts[r] = (int)sdl__zero_overlap(w0, w1, z->bound[r], z->bound[r + 1]);
        displs[r] = counts[r] ? (int)((z->bound[r] > w0 ? z->bound[r] : w0) - w0) : 0;
    }
}

/* the cuts: even, or at the tensor boundary nearest each even cut (lars, lamb) */
static void sdl__zero_bounds(sdl_mpi_zero *z) {
    const sdl_model *m = z->model;
    int n = sdl__mpi.size;
    bool whole = z->desc.optim.kind == SDL_OPTIM_LARS || z->desc.optim.kind == SDL_OPTIM_LAMB;
    z->bound[0] = 0;
    z->bound[n] = m->param_floats;
    for (int r = 1; r < n; r++) {
        int64_t b, len;
        sdl__mpi_chunk(m->param_floats, n, r, &b, &len);
        if (whole) {
            int64_t best = m->param_floats;
            for (int i = 0; i <= m->nparams; i++) {
                int64_t off = m->param_offset[i];
                if (off >= z->bound[r - 1] && llabs(off - b) < llabs(best - b)) best = off;
            }
            b = best;
        }
        z->bound[r] = b;
    }
}

/* the shard's arrays as views of the model's (parameters in stages 1, 2; gradient in 1) */
static void sdl__zero_views(sdl_mpi_zero *z, bool on) {
    sdl_model *sm = z->shard, *m = z->model;
    int64_t b = z->bound[sdl__mpi.rank];
    if (!on && (sm->param_data != m->param_data + b || !m->param_data)) return; /* not made yet */
    if (z->desc.stage <= 2) sm->param_data = on ? m->param_data + b : NULL;
    if (z->desc.stage == 1) sm->grad_data = on ? m->grad_data + b : NULL;
    for (int i = 0; i < sm->nparams; i++) {
        if (z->desc.stage <= 2) sm->params[i]->data = sm->param_data ? sm->param_data + sm->param_offset[i] : NULL;
        if (z->desc.stage == 1) sm->params[i]->grad = sm->grad_data ? sm->grad_data + sm->param_offset[i] : NULL;
    }
}

/* the shard model: one tensor per piece of a parameter inside [begin, end), its values the
   model's (made without touching the global RNG), and its optimizer */
static sdl_result sdl__zero_shard(sdl_mpi_zero *z) {
    sdl_model *m = z->model;
    int64_t b = z->bound[sdl__mpi.rank], e = z->bound[sdl__mpi.rank + 1];
    uint64_t seed = sdl_rng_seed(), ctr = sdl_rng_state();
    z->shard = sdl_model_new(0);
    sdl_rng_set_state(seed, ctr);
    if (!z->shard) return SDL_ERR_OOM;
    for (int i = 0; i < m->nparams; i++) {
        int64_t off = m->param_offset[i], len = sdl__zero_overlap(off, off + m->params[i]->numel, b, e);
        if (len > 0 && !sdl_model_param(z->shard, m->params[i]->name, sdl_shape1(len), m->params[i]->decay)) return sdl_last_result();
    }
    sdl_result r = sdl_model_pack(z->shard);
    if (r == SDL_OK && z->desc.stage <= 2) r = sdl_model_external_params(z->shard, true);
    if (r == SDL_OK && z->desc.stage == 1) r = sdl_model_arena_grads(z->shard, true);
    if (r != SDL_OK) return r;
    if (z->desc.stage == 3) memcpy(z->shard->param_data, m->param_data + b, (size_t)(e - b) * sizeof(float));
    sdl__zero_views(z, true);
    sdl_optim_desc od = z->desc.optim;
    od.accum_steps = 1;
    od.max_grad_norm = 0.0f;
    z->opt = sdl_optim_new(z->shard, &od);
    return z->opt ? SDL_OK : sdl_last_result();
}

/* ---- stage 3: gathering a module's parameters ---- */
static void sdl__zero3_start(sdl_mpi_zero *z, sdl__zero_layer *L) {
    if (L->full || L->in_flight) return;
    int64_t b = z->bound[sdl__mpi.rank], lo = L->lo > b ? L->lo : b;
    int mine = (int)sdl__zero_overlap(L->lo, L->hi, b, z->bound[sdl__mpi.rank + 1]);
    L->full = (float *)sdl__mpi_alloc((size_t)(L->hi - L->lo), sizeof(float));
    z->gathered += L->hi - L->lo;
    if (z->gathered > z->peak_gathered) z->peak_gathered = z->gathered;
    int rc = L->full ? MPI_Iallgatherv(z->shard->param_data + (mine ? lo - b : 0), mine, MPI_FLOAT, L->full, L->counts, L->displs,
                                       MPI_FLOAT, sdl__mpi.comm, &L->req)
                     : MPI_ERR_NO_MEM;
    if (rc != MPI_SUCCESS) { /* inside a forward: reported, and the job ends (as the checker) */
        sdl__mpi_err(rc, "MPI_Iallgatherv (ZeRO-3 parameters)");
        sdl_log(SDL_LOG_ERROR, "%s; ending the job", sdl_last_error());
        sdl__mpi_die();
    }
    L->in_flight = true;
}
static void sdl__zero3_finish(sdl__zero_layer *L) {
    if (!L->in_flight) return;
    MPI_Wait(&L->req, MPI_STATUS_IGNORE);
    L->in_flight = false;
    sdl_module *mod = L->module;
    if (mod->weight) mod->weight->data = L->full + (mod->model->param_offset[mod->weight->param_index] - L->lo);
    if (mod->bias) mod->bias->data = L->full + (mod->model->param_offset[mod->bias->param_index] - L->lo);
    /* the grad hook counts down those that get a gradient (a frozen layer waits for the step) */
    L->pending = (mod->weight && mod->weight->requires_grad ? 1 : 0) + (mod->bias && mod->bias->requires_grad ? 1 : 0);
}
static void sdl__zero3_drop(sdl_mpi_zero *z, sdl__zero_layer *L) {
    if (!L->full) return;
    sdl__zero3_finish(L);
    if (L->module->weight) L->module->weight->data = NULL;
    if (L->module->bias) L->module->bias->data = NULL;
    SDL__MPI_FREE(L->full);
    L->full = NULL;
    z->gathered -= L->hi - L->lo;
}

static sdl_tensor *sdl__zero3_fwd(sdl_module *self, sdl_tensor *x) {
    sdl_mpi_zero *z = sdl__zero3;
    int k = 0;
    while (k < z->nlayers && z->layers[k].module != self) k++;
    sdl__zero_layer *L = &z->layers[k];
    sdl__zero3_start(z, L);
    sdl__zero3_finish(L);
    if (z->last >= 0 && z->last != k) z->layers[z->last].next = k; /* the order, for the next step */
    if (z->last != k) L->prev = z->last; /* for backward's prefetch */
    z->last = k;
    int next = L->next >= 0 ? L->next : (k + 1 < z->nlayers ? k + 1 : -1);
    if (next >= 0) sdl__zero3_start(z, &z->layers[next]); /* travels while this layer computes */
    sdl_tensor *y = L->forward(self, x);
    if (next >= 0 || !sdl_is_grad_enabled()) sdl__zero3_drop(z, L); /* the last layer's backward comes first */
    return y;
}

/* the model's pre-grad hook: a layer's parameters whole again before backward reads them,
   and the gather of the layer whose forward ran before it (whose backward comes next) started */
static sdl_result sdl__zero3_pre_hook(void *user, sdl_model *m, int param_index) {
    sdl_mpi_zero *z = (sdl_mpi_zero *)user;
    (void)m;
    sdl__zero_layer *L = &z->layers[z->param_layer[param_index]];
    sdl__zero3_start(z, L);
    sdl__zero3_finish(L);
    if (L->prev >= 0) sdl__zero3_start(z, &z->layers[L->prev]);
    return SDL_OK;
}

/* a layer's parameters go once backward is done with all of them */
static void sdl__zero3_done(sdl_mpi_zero *z, int param_index) {
    sdl__zero_layer *L = &z->layers[z->param_layer[param_index]];
    if (L->full && !L->in_flight && --L->pending == 0) sdl__zero3_drop(z, L);
}

SDL_API void sdl_mpi_zero_release(sdl_mpi_zero *z) {
    for (int k = 0; z && k < z->nlayers; k++) {
        sdl__zero3_drop(z, &z->layers[k]);
        z->layers[k].prev = -1;
    }
    if (z) z->last = -1;
}

SDL_API int64_t sdl_mpi_zero_peak_gathered(const sdl_mpi_zero *z) { return z ? z->peak_gathered * (int64_t)sizeof(float) : 0; }

/* every module with a weight or bias; every parameter must belong to one */
static sdl_result sdl__zero3_wrap(sdl_mpi_zero *z) {
    sdl_model *m = z->model;
    int n = sdl__mpi.size;
    if (sdl__zero3) return sdl_fail(SDL_ERR_STATE, "sdl_mpi_zero_new: one ZeRO-3 run at a time (free the other first)");
    z->layers = (sdl__zero_layer *)sdl__mpi_alloc((size_t)m->nmodules + 1, sizeof(sdl__zero_layer));
    z->param_layer = (int *)sdl__mpi_alloc((size_t)m->nparams + 1, sizeof(int));
    bool *owned = (bool *)sdl__mpi_alloc((size_t)m->nparams + 1, sizeof(bool));
    if (!z->layers || !z->param_layer || !owned) { SDL__MPI_FREE(owned); return SDL_ERR_OOM; }
    for (int i = 0; i < m->nmodules; i++) {
        sdl_module *mod = m->modules[i];
        sdl_tensor *ts[2] = {mod->weight, mod->bias};
        if (!ts[0] && !ts[1]) continue;
        sdl__zero_layer *L = &z->layers[z->nlayers];
        L->module = mod;
        L->forward = mod->forward;
        L->next = L->prev = -1;
        L->lo = m->param_floats;
        for (int t = 0; t < 2; t++) {
            if (!ts[t]) continue;
            int64_t off = m->param_offset[ts[t]->param_index];
            if (off < L->lo) L->lo = off;
            if (off + ts[t]->numel > L->hi) L->hi = off + ts[t]->numel;
            owned[ts[t]->param_index] = true;
            z->param_layer[ts[t]->param_index] = z->nlayers;
        }
        L->counts = (int *)sdl__mpi_alloc(2 * (size_t)n, sizeof(int));
        if (!L->counts) { SDL__MPI_FREE(owned); return SDL_ERR_OOM; }
        L->displs = L->counts + n;
        sdl__zero_split(z, L->lo, L->hi, L->counts, L->displs);
        z->nlayers++;
    }
    for (int i = 0; i < m->nparams; i++)
        if (!owned[i]) {
            SDL__MPI_FREE(owned);
            return sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: stage 3 shards the weight and bias of layers; parameter '%s' is "
                            "neither (use stage 2)", m->params[i]->name);
        }
    SDL__MPI_FREE(owned);
    for (int k = 0; k < z->nlayers; k++) z->layers[k].module->forward = sdl__zero3_fwd;
    sdl_model_set_pre_grad_hook(m, sdl__zero3_pre_hook, z);
    z->last = -1;
    sdl__zero3 = z;
    return SDL_OK;
}

/* ---- stages 2, 3: gradient buckets on the wire while backward runs ---- */
static bool sdl__zero_stage1_buffers(sdl_mpi_zero *z) {
    z->recv = (float *)sdl__mpi_alloc((size_t)z->bucket, sizeof(float));
    if (z->desc.wire != SDL_MPI_WIRE_F32) z->half = (uint16_t *)sdl__mpi_alloc((size_t)z->bucket, sizeof(uint16_t));
    return z->recv && (z->desc.wire == SDL_MPI_WIRE_F32 || z->half);
}

/* every bucket waits for all its parameters that get a gradient */
static void sdl__zero_arm(sdl_mpi_zero *z) {
    for (int b = 0; b < z->nbuckets; b++) {
        z->left[b] = z->nparam[b];
        z->sent[b] = false;
    }
    z->next = z->nbuckets - 1;
}

/* the slots, and each bucket's parameters that get a gradient (one across a cut counts in both) */
static bool sdl__zero_slots(sdl_mpi_zero *z) {
    const sdl_model *m = z->model;
    int n = sdl__mpi.size;
    bool f32 = z->desc.wire == SDL_MPI_WIRE_F32;
    z->nbuckets = (int)((m->param_floats + z->bucket - 1) / z->bucket);
    z->left = (int *)sdl__mpi_alloc((size_t)z->nbuckets + 1, sizeof(int));
    z->nparam = (int *)sdl__mpi_alloc((size_t)z->nbuckets + 1, sizeof(int));
    z->sent = (bool *)sdl__mpi_alloc((size_t)z->nbuckets + 1, sizeof(bool));
    bool ok = z->left && z->nparam && z->sent;
    for (int k = 0; k < 2 && ok; k++) {
        sdl__zero_slot *s = &z->slot[k];
        s->req = MPI_REQUEST_NULL;
        if (f32) s->f32 = (float *)sdl__mpi_alloc((size_t)z->bucket, sizeof(float));
        else s->half = (uint16_t *)sdl__mpi_alloc((size_t)z->bucket, sizeof(uint16_t));
        s->counts = (int *)sdl__mpi_alloc(2 * (size_t)n, sizeof(int));
        ok = (s->f32 || s->half) && s->counts;
        if (ok) s->displs = s->counts + n;
    }
    for (int i = 0; ok && i < m->nparams; i++) {
        int64_t o0 = m->param_offset[i], o1 = m->param_offset[i + 1];
        for (int64_t b = o0 / z->bucket; m->params[i]->requires_grad && o1 > o0 && b <= (o1 - 1) / z->bucket; b++) z->nparam[b]++;
    }
    if (ok) sdl__zero_arm(z);
    return ok;
}

/* the slot's bucket, arrived (waits for it) and added into the shard's gradient (f32: divided by N) */
static void sdl__zero_land(sdl_mpi_zero *z, sdl__zero_slot *s) {
    if (!s->busy) return;
    int rc = MPI_Wait(&s->req, MPI_STATUS_IGNORE);
    s->busy = false;
    if (rc != MPI_SUCCESS) {
        if (z->err == SDL_OK) z->err = sdl__mpi_err(rc, "MPI_Ireduce_scatter (zero gradients)");
        return;
    }
    int me = sdl__mpi.rank, mine = s->counts[me];
    float inv = 1.0f / (float)sdl__mpi.size, *g = z->shard->grad_data + (s->w0 > z->bound[me] ? s->w0 - z->bound[me] : 0);
    bool bf = z->desc.wire == SDL_MPI_WIRE_BF16;
    if (s->f32) for (int i = 0; i < mine; i++) g[i] += s->f32[i] * inv;
    else for (int i = 0; i < mine; i++) g[i] += bf ? sdl_mpi_bf16_to_f32(s->half[i]) : sdl_mpi_f16_to_f32(s->half[i]);
}

/* bucket b out: its gradients copied from the arena (zeros where backward did not reach) and
   zeroed there, then MPI_Ireduce_scatter in place; the slot's bucket before lands first */
static void sdl__zero_launch(sdl_mpi_zero *z, int b) {
    const sdl_model *m = z->model;
    sdl__zero_slot *s = &z->slot[z->turn];
    z->turn ^= 1;
    sdl__zero_land(z, s);
    int64_t w0 = (int64_t)b * z->bucket, w1 = w0 + z->bucket < m->param_floats ? w0 + z->bucket : m->param_floats;
    float inv = 1.0f / (float)sdl__mpi.size;
    bool bf = z->desc.wire == SDL_MPI_WIRE_BF16;
    for (int q = 0; q < m->nparams; q++) {
        int64_t o0 = m->param_offset[q], o1 = m->param_offset[q + 1], lo = o0 > w0 ? o0 : w0, hi = o1 < w1 ? o1 : w1;
        if (hi <= lo) continue;
        float *g = m->params[q]->grad ? m->params[q]->grad + (lo - o0) : NULL;
        for (int64_t i = 0; i < hi - lo; i++) {
            float v = g ? g[i] : 0.0f;
            if (s->f32) s->f32[lo - w0 + i] = v;
            else s->half[lo - w0 + i] = bf ? sdl_mpi_f32_to_bf16(v * inv) : sdl_mpi_f32_to_f16(v * inv);
        }
        if (g) memset(g, 0, (size_t)(hi - lo) * sizeof(float));
    }
    sdl__zero_split(z, w0, w1, s->counts, s->displs);
    int rc = s->f32 ? MPI_Ireduce_scatter(MPI_IN_PLACE, s->f32, s->counts, MPI_FLOAT, MPI_SUM, sdl__mpi.comm, &s->req)
                    : MPI_Ireduce_scatter(MPI_IN_PLACE, s->half, s->counts, MPI_UINT16_T, bf ? z->bf16_sum : sdl__mpi.half_sum,
                                          sdl__mpi.comm, &s->req);
    z->sent[b] = true;
    z->left[b] = z->nparam[b];
    if (rc != MPI_SUCCESS) {
        if (z->err == SDL_OK) z->err = sdl__mpi_err(rc, "MPI_Ireduce_scatter (zero gradients)");
        return;
    }
    s->w0 = w0;
    s->busy = true;
}

/* the grad hook (stages 2, 3): the parameter's gradient is final for this backward */
static sdl_result sdl__zero_hook(void *user, sdl_model *m, int param_index) {
    sdl_mpi_zero *z = (sdl_mpi_zero *)user;
    int64_t o0 = m->param_offset[param_index], o1 = m->param_offset[param_index + 1];
    for (int64_t b = o0 / z->bucket; o1 > o0 && b <= (o1 - 1) / z->bucket; b++) z->left[b]--;
    while (z->next >= 0 && z->left[z->next] <= 0) sdl__zero_launch(z, z->next--);
    if (z->next < 0) z->next = z->nbuckets - 1; /* all out: a second backward starts over */
    for (int k = 0; k < 2; k++) { /* lets MPI move them along */
        int flag;
        if (z->slot[k].busy) MPI_Test(&z->slot[k].req, &flag, MPI_STATUS_IGNORE);
    }
    if (z->desc.stage == 3) sdl__zero3_done(z, param_index);
    return SDL_OK;
}

/* the step: the buckets not out yet, or with gradients that came after they went, then
   both slots landed */
static sdl_result sdl__zero_flush(sdl_mpi_zero *z) {
    for (int b = z->nbuckets - 1; b >= 0; b--)
        if (!z->sent[b] || z->left[b] < z->nparam[b]) sdl__zero_launch(z, b);
    for (int k = 0; k < 2; k++) sdl__zero_land(z, &z->slot[k]);
    sdl__zero_arm(z);
    sdl_result r = z->err;
    z->err = SDL_OK;
    return r;
}

SDL_API sdl_mpi_zero *sdl_mpi_zero_new(sdl_model *m, const sdl_mpi_zero_desc *desc) {
    if (sdl__mpi_need_init("sdl_mpi_zero_new") != SDL_OK) return NULL;
    if (!m || !desc) { sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: NULL model or desc"); return NULL; }
    if (sdl_model_pack(m) != SDL_OK) return NULL;
    if (m->param_floats >= INT_MAX) { sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: %lld floats pass MPI's int counts", (long long)m->param_floats); return NULL; }
    if (sdl__mg_model_on_gpu(m)) { sdl_fail(SDL_ERR_DEVICE, "sdl_mpi_zero_new: the model is on the GPU; ZeRO here shards CPU models"); return NULL; }
    if (!m->param_data || !m->grad_data) { sdl_fail(SDL_ERR_STATE, "sdl_mpi_zero_new: the model is sharded already"); return NULL; }
    sdl_mpi_zero_desc d = *desc;
    if (d.stage == 0) d.stage = 1;
    if (d.wire == SDL_MPI_WIRE_DEFAULT) d.wire = SDL_MPI_WIRE_F32;
    if (d.stage < 1 || d.stage > 3 || (int)d.wire < 0 || (int)d.wire > (int)SDL_MPI_WIRE_BF16 || !(d.bucket_mb >= 0.0f)) {
        sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: bad stage %d (1, 2 or 3), wire %d or bucket_mb %g", d.stage, (int)d.wire, (double)d.bucket_mb);
        return NULL;
    }
    if (d.optim.accum_steps < 1) d.optim.accum_steps = 1;
    if (!(d.optim.max_grad_norm >= 0.0f)) { sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: bad max_grad_norm"); return NULL; }
    sdl_mpi_check("zero new", m->param_floats * 4 + d.stage);
    int n = sdl__mpi.size;
    sdl_mpi_zero *z = (sdl_mpi_zero *)sdl__mpi_alloc(1, sizeof(sdl_mpi_zero));
    if (!z) return NULL;
    z->model = m;
    z->desc = d;
    z->bf16_sum = MPI_OP_NULL;
    double mb = d.bucket_mb > 0.0f ? (double)d.bucket_mb : (double)SDL_MPI_ZERO_BUCKET_MB;
    z->bucket = (int64_t)(mb * 1048576.0 / sizeof(float));
    if (z->bucket < 1) z->bucket = 1;
    if (z->bucket > m->param_floats) z->bucket = m->param_floats > 0 ? m->param_floats : 1;
    z->bound = (int64_t *)sdl__mpi_alloc((size_t)n + 1, sizeof(int64_t));
    z->counts = (int *)sdl__mpi_alloc(2 * (size_t)n, sizeof(int));
    bool ok = z->bound && z->counts && (d.stage >= 2 ? sdl__zero_slots(z) : sdl__zero_stage1_buffers(z));
    if (ok) {
        z->displs = z->counts + n;
        sdl__zero_bounds(z);
        for (int r = 0; r < n && ok; r++)
            if (z->bound[r + 1] <= z->bound[r]) {
                sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_new: rank %d's shard would be empty (%lld floats in %d tensors over %d ranks)", r,
                         (long long)m->param_floats, m->nparams, n);
                ok = false;
            }
    }
    if (ok) ok = sdl__zero_shard(z) == SDL_OK;
    if (ok && d.stage == 3) ok = sdl__zero3_wrap(z) == SDL_OK;
    if (ok && d.wire == SDL_MPI_WIRE_BF16 && MPI_Op_create(sdl__mpi_bf16_sum, 1, &z->bf16_sum) != MPI_SUCCESS) {
        sdl_fail(SDL_ERR_COMM, "sdl_mpi_zero_new: MPI_Op_create failed");
        ok = false;
    }
    /* the model gives up what the shards now hold */
    if (ok && d.stage >= 2) ok = sdl_model_arena_grads(m, true) == SDL_OK;
    if (ok && d.stage == 3) ok = sdl_model_external_params(m, true) == SDL_OK;
    if (ok && d.stage >= 2) sdl_model_set_grad_hook(m, sdl__zero_hook, z);
    if (!ok) { sdl_mpi_zero_free(z); return NULL; }
    return z;
}

/* stage 1: one bucket [w0, w1) of the model's gradient to the owners of its pieces, into the
   owner's range of that array */
static sdl_result sdl__zero_reduce_bucket(sdl_mpi_zero *z, const float *src, int64_t w0, int64_t w1) {
    int n = sdl__mpi.size, me = sdl__mpi.rank;
    sdl__zero_split(z, w0, w1, z->counts, z->displs);
    int mine = z->counts[me], rc;
    float inv = 1.0f / (float)n;
    if (z->desc.wire == SDL_MPI_WIRE_F32) {
        rc = MPI_Reduce_scatter(src, z->recv, z->counts, MPI_FLOAT, MPI_SUM, sdl__mpi.comm);
        for (int i = 0; rc == MPI_SUCCESS && i < mine; i++) z->recv[i] *= inv;
    } else {
        bool bf = z->desc.wire == SDL_MPI_WIRE_BF16;
        int64_t len = w1 - w0;
        for (int64_t i = 0; i < len; i++) z->half[i] = bf ? sdl_mpi_f32_to_bf16(src[i] * inv) : sdl_mpi_f32_to_f16(src[i] * inv);
        rc = MPI_Reduce_scatter(MPI_IN_PLACE, z->half, z->counts, MPI_UINT16_T, bf ? z->bf16_sum : sdl__mpi.half_sum, sdl__mpi.comm);
        for (int i = 0; rc == MPI_SUCCESS && i < mine; i++) z->recv[i] = bf ? sdl_mpi_bf16_to_f32(z->half[i]) : sdl_mpi_f16_to_f32(z->half[i]);
    }
    if (rc != MPI_SUCCESS) return sdl__mpi_err(rc, "MPI_Reduce_scatter (zero)");
    memcpy(z->shard->grad_data + (w0 > z->bound[me] ? w0 - z->bound[me] : 0), z->recv, (size_t)mine * sizeof(float));
    return SDL_OK;
}

/* stage 1: every bucket of the model's gradient array */
static sdl_result sdl__zero_reduce(sdl_mpi_zero *z) {
    sdl_model *m = z->model;
    sdl_result r = SDL_OK;
    for (int64_t w0 = 0; w0 < m->param_floats && r == SDL_OK; w0 += z->bucket) {
        int64_t w1 = w0 + z->bucket < m->param_floats ? w0 + z->bucket : m->param_floats;
        r = sdl__zero_reduce_bucket(z, m->grad_data + w0, w0, w1);
    }
    return r;
}

SDL_API bool sdl_mpi_zero_is_update_step(const sdl_mpi_zero *z) { return z && z->micro + 1 >= z->desc.optim.accum_steps; }

/* scale, clip over all shards, update the shard, gather the parameters (stages 1, 2) */
static sdl_result sdl__zero_update(sdl_mpi_zero *z) {
    sdl_model *sm = z->shard, *m = z->model;
    int64_t len = sm->param_floats;
    float s = 1.0f / (float)z->desc.optim.accum_steps;
    if (s != 1.0f) for (int64_t i = 0; i < len; i++) sm->grad_data[i] *= s;
    if (z->desc.optim.max_grad_norm > 0.0f) {
        double sq = 0.0;
        for (int64_t i = 0; i < len; i++) sq += (double)sm->grad_data[i] * sm->grad_data[i];
        SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &sq, 1, MPI_DOUBLE, MPI_SUM, sdl__mpi.comm), "MPI_Allreduce (zero grad norm)");
        double norm = sqrt(sq), mx = (double)z->desc.optim.max_grad_norm;
        z->grad_norm = (float)norm;
        if (isfinite(norm) && norm > mx) sdl_grad_scale(sm, (float)(mx / (norm + 1e-6)));
    }
    sdl_result r = sdl_optim_step(z->opt); /* zeroes the shard's gradient */
    if (r != SDL_OK || z->desc.stage == 3) return r;
    for (int q = 0; q < sdl__mpi.size; q++) {
        z->counts[q] = (int)(z->bound[q + 1] - z->bound[q]);
        z->displs[q] = (int)z->bound[q];
    }
    SDL__MPI_TRY(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, m->param_data, z->counts, z->displs, MPI_FLOAT, sdl__mpi.comm),
                 "MPI_Allgatherv (zero parameters)");
    return SDL_OK;
}

SDL_API sdl_result sdl_mpi_zero_step(sdl_mpi_zero *z) {
    if (!z) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_step: NULL");
    sdl_model *m = z->model;
    bool update = sdl_mpi_zero_is_update_step(z);
    double t = sdl__mpi_now_us();
    sdl_result r = SDL_OK;
    if (update || z->desc.stage >= 2) {
        sdl_mpi_check(update ? "zero update" : "zero reduce", m->param_floats);
        r = z->desc.stage >= 2 ? sdl__zero_flush(z) : sdl__zero_reduce(z);
        if (z->desc.stage >= 2) sdl_model_zero_grad(m); /* forgets the arena gradients */
    }
    sdl_mpi_zero_release(z); /* stage 3: the gathered parameters, their backward done */
    z->micro = update ? 0 : z->micro + 1;
    if (r == SDL_OK && update) r = sdl__zero_update(z);
    if (z->desc.stage == 1 && update) sdl_model_zero_grad(m); /* the others' ranges */
    sdl__mpi_event_add(update ? "zero update" : "zero reduce", t, sdl__mpi_now_us() - t, 1);
    return r;
}

SDL_API void sdl_mpi_zero_set_lr(sdl_mpi_zero *z, float lr) { if (z) sdl_optim_set_lr(z->opt, lr); }
SDL_API int64_t sdl_mpi_zero_steps(const sdl_mpi_zero *z) { return z && z->opt ? z->opt->step : 0; }
SDL_API float sdl_mpi_zero_grad_norm(const sdl_mpi_zero *z) { return z ? z->grad_norm : 0.0f; }

SDL_API void sdl_mpi_zero_range(const sdl_mpi_zero *z, int64_t *begin, int64_t *end) {
    if (begin) *begin = z ? z->bound[sdl__mpi.rank] : 0;
    if (end) *end = z ? z->bound[sdl__mpi.rank + 1] : 0;
}

SDL_API int64_t sdl_mpi_zero_bytes(const sdl_mpi_zero *z) {
    if (!z) return 0;
    const sdl_model *m = z->model, *sm = z->shard;
    int64_t P = m->param_floats, S = sm->param_floats;
    int64_t f = (m->param_data ? P : 0) + (m->grad_data ? P : 0);    /* the model's arrays */
    f += (z->desc.stage == 3 ? S : 0) + (z->desc.stage >= 2 ? S : 0); /* the shard's own */
    f += (int64_t)z->opt->nstate * S + (z->recv ? z->bucket : 0) + (z->slot[0].f32 ? 2 * z->bucket : 0);
    return f * (int64_t)sizeof(float) + (z->half || z->slot[0].half ? 2 * z->bucket : 0); /* stage 1's, or two slots' */
}

/* stage 3 reads and writes checkpoints through a whole parameter array for the while */
static float *sdl__zero3_whole(sdl_mpi_zero *z, bool on) {
    sdl_model *m = z->model;
    float *all = on ? (float *)sdl__mpi_alloc((size_t)m->param_floats, sizeof(float)) : NULL;
    for (int i = 0; i < m->nparams; i++) m->params[i]->data = all ? all + m->param_offset[i] : NULL;
    return all;
}

/* a whole optimizer for the model (rank 0 to save; every rank to load) */
static sdl_optim *sdl__zero_full_optim(sdl_mpi_zero *z) {
    sdl_optim_desc od = z->desc.optim;
    return sdl_optim_new(z->model, &od);
}

SDL_API sdl_result sdl_mpi_zero_save(sdl_mpi_zero *z, const char *path, int64_t epoch, int64_t samples) {
    if (!z || !path) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_save: NULL");
    int n = sdl__mpi.size, me = sdl__mpi.rank;
    sdl_mpi_zero_release(z);
    sdl_optim *full = me == 0 ? sdl__zero_full_optim(z) : NULL;
    float *all = me == 0 && z->desc.stage == 3 ? sdl__zero3_whole(z, true) : NULL;
    int ok = me != 0 || (full != NULL && (z->desc.stage < 3 || all != NULL));
    sdl_mpi_check("zero save", z->model->param_floats);
    MPI_Bcast(&ok, 1, MPI_INT, 0, sdl__mpi.comm);
    int res = ok ? SDL_OK : SDL_ERR_OOM;
    for (int q = 0; q < n; q++) {
        z->counts[q] = (int)(z->bound[q + 1] - z->bound[q]);
        z->displs[q] = (int)z->bound[q];
    }
    int rc = MPI_SUCCESS, len = (int)z->shard->param_floats;
    if (ok && z->desc.stage == 3)
        rc = MPI_Gatherv(z->shard->param_data, len, MPI_FLOAT, all, z->counts, z->displs, MPI_FLOAT, 0, sdl__mpi.comm);
    for (int k = 0; ok && k < z->opt->nstate && rc == MPI_SUCCESS; k++)
        rc = MPI_Gatherv(sdl_optim_state_data(z->opt, k), len, MPI_FLOAT, full ? sdl_optim_state_data(full, k) : NULL, z->counts,
                         z->displs, MPI_FLOAT, 0, sdl__mpi.comm);
    if (rc != MPI_SUCCESS) res = (int)sdl__mpi_err(rc, "MPI_Gatherv (zero save)");
    if (full && res == SDL_OK) {
        full->step = z->opt->step;
        full->lr = z->opt->lr;
        full->micro = z->micro;
        res = (int)sdl_checkpoint_save_at(path, z->model, full, epoch, samples);
    }
    if (all) { sdl__zero3_whole(z, false); SDL__MPI_FREE(all); }
    sdl_optim_free(full);
    MPI_Bcast(&res, 1, MPI_INT, 0, sdl__mpi.comm); /* every rank returns rank 0's result */
    if (res != SDL_OK && me != 0) return sdl_fail((sdl_result)res, "sdl_mpi_zero_save: rank 0 could not write '%s'", path);
    return (sdl_result)res;
}

SDL_API sdl_result sdl_mpi_zero_load(sdl_mpi_zero *z, const char *path, sdl_checkpoint_info *info) {
    if (!z || !path) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_zero_load: NULL");
    sdl_mpi_zero_release(z);
    sdl_optim *full = sdl__zero_full_optim(z);
    float *all = z->desc.stage == 3 ? sdl__zero3_whole(z, true) : NULL;
    sdl_result r = !full || (z->desc.stage == 3 && !all) ? SDL_ERR_OOM : sdl_checkpoint_load(path, z->model, full, info);
    if (r == SDL_OK) {
        int64_t b = z->bound[sdl__mpi.rank], len = z->shard->param_floats;
        if (all) memcpy(z->shard->param_data, all + b, (size_t)len * sizeof(float));
        for (int k = 0; k < z->opt->nstate; k++)
            memcpy(sdl_optim_state_data(z->opt, k), sdl_optim_state_data(full, k) + b, (size_t)len * sizeof(float));
        z->opt->step = full->step;
        z->opt->lr = full->lr;
        z->micro = full->micro;
        if (z->desc.stage >= 2) memset(z->shard->grad_data, 0, (size_t)len * sizeof(float));
        else sdl_model_zero_grad(z->model);
    }
    if (all) { sdl__zero3_whole(z, false); SDL__MPI_FREE(all); }
    sdl_optim_free(full);
    return r;
}

SDL_API void sdl_mpi_zero_free(sdl_mpi_zero *z) {
    if (!z) return;
    sdl_model *m = z->model;
    sdl_mpi_zero_release(z);
    for (int k = 0; k < 2; k++) { /* a backward without its step left buckets on the wire */
        if (z->slot[k].busy) MPI_Wait(&z->slot[k].req, MPI_STATUS_IGNORE);
        SDL__MPI_FREE(z->slot[k].f32);
        SDL__MPI_FREE(z->slot[k].half);
        SDL__MPI_FREE(z->slot[k].counts);
    }
    SDL__MPI_FREE(z->left);
    SDL__MPI_FREE(z->nparam);
    SDL__MPI_FREE(z->sent);
    for (int k = 0; k < z->nlayers; k++) {
        z->layers[k].module->forward = z->layers[k].forward;
        SDL__MPI_FREE(z->layers[k].counts);
    }
    if (sdl__zero3 == z) sdl__zero3 = NULL;
    if (m->grad_hook_user == z) sdl_model_set_grad_hook(m, NULL, NULL);
    if (m->pre_grad_hook_user == z) sdl_model_set_pre_grad_hook(m, NULL, NULL);
    if (z->shard && !m->param_data) { /* stage 3: the model gets its parameters back */
        sdl_model_external_params(m, false);
        for (int q = 0; q < sdl__mpi.size && m->param_data; q++) {
            z->counts[q] = (int)(z->bound[q + 1] - z->bound[q]);
            z->displs[q] = (int)z->bound[q];
        }
        if (m->param_data)
            MPI_Allgatherv(z->shard->param_data, (int)z->shard->param_floats, MPI_FLOAT, m->param_data, z->counts, z->displs, MPI_FLOAT, sdl__mpi.comm);
    }
    if (!m->grad_data) sdl_model_arena_grads(m, false); /* stages 2, 3: a gradient array again */
    if (z->shard) sdl__zero_views(z, false);
    if (z->bf16_sum != MPI_OP_NULL) MPI_Op_free(&z->bf16_sum);
    sdl_optim_free(z->opt);
    sdl_model_free(z->shard);
    SDL__MPI_FREE(z->layers);
    SDL__MPI_FREE(z->param_layer);
    SDL__MPI_FREE(z->bound);
    SDL__MPI_FREE(z->counts);
    SDL__MPI_FREE(z->recv);
    SDL__MPI_FREE(z->half);
    SDL__MPI_FREE(z);
}

/* ----------------------------------------------------------------------------------------
   >>mpi-gpu: data parallel for models on the GPU (NCCL, CUDA-aware MPI, host staging)
   The ddp above keeps its buckets and its checker; for a GPU model each bucket launch
   (sdl__mg_bucket_launch) is put on a communication stream behind an event the compute
   stream recorded when backward finished the bucket's gradients:
     NCCL      [f32->wire kernel] ncclAllReduce [wire->f32 kernel] on the comm stream
     HOST      [f32->wire kernel] cudaMemcpyAsync D2H into pinned memory, event "staged";
               the host starts MPI_Iallreduce once the event is done (the grad hook polls,
               sync waits), then H2D and the scale (or wire->f32) kernel on the comm stream
     CUDA_MPI  event "staged" right after the ready event; MPI_Iallreduce on device memory
   sync records "all done" on the comm stream and makes the compute stream wait for it,
   so the optimizer step's kernels run after the averages without the host waiting (NCCL).
   ---------------------------------------------------------------------------------------- */
static const char *sdl__mg_names[4] = {"auto", "nccl", "cuda-mpi", "host"};
SDL_API const char *sdl_mpi_transport_name(sdl_mpi_transport t) {
    return (int)t >= 0 && (int)t < 4 ? sdl__mg_names[t] : "?";
}

static struct {
    bool have_default;
    sdl_mpi_transport dflt;
} sdl__mg_cfg;

SDL_API void sdl_mpi_set_transport(sdl_mpi_transport t) {
    sdl__mg_cfg.dflt = t;
    sdl__mg_cfg.have_default = true;
}

static bool sdl__mg_model_on_gpu(const sdl_model *m) {
    if (!m) return false;
    if (m->nparams > 0) return m->params[0]->device != SDL_CPU;
    return m->nbuffers > 0 && m->buffers[0]->device != SDL_CPU;
}

/* bf16: the float's top 16 bits, rounded to nearest even; NaN stays NaN */
static SDL__MPI_HD inline uint16_t sdl__mg_f2bf(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
static SDL__MPI_HD inline float sdl__mg_bf2f(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}
SDL_API uint16_t sdl_mpi_f32_to_bf16(float f) { return sdl__mg_f2bf(f); }
SDL_API float sdl_mpi_bf16_to_f32(uint16_t h) { return sdl__mg_bf2f(h); }

SDL_API sdl_result sdl_mpi_file_rendezvous(const char *path, void *data, size_t bytes, int rank, double timeout_s) {
    if (!path || !path[0] || (!data && bytes)) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_file_rendezvous: no path or no buffer");
    if (rank == 0) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (!f) return sdl_fail(SDL_ERR_IO, "sdl_mpi: rank 0 cannot write '%s' (the rendezvous file)", tmp);
        bool ok = fwrite(data, 1, bytes, f) == bytes;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) { /* rename: the others see all of it or nothing */
            remove(tmp);
            return sdl_fail(SDL_ERR_IO, "sdl_mpi: rank 0 cannot write the rendezvous file '%s'", path);
        }
        return SDL_OK;
    }
    double start = MPI_Wtime();
    for (;;) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(data, 1, bytes, f);
            fclose(f);
            if (got == bytes) return SDL_OK;
        }
        if (MPI_Wtime() - start > timeout_s)
            return sdl_fail(SDL_ERR_COMM, "sdl_mpi: rank %d waited %.1f s for '%s', which rank 0 writes: is its folder on a file "
                            "system every node shares, and did rank 0 start? (SDL_NCCL_ID_FILE sets the path)", rank, timeout_s, path);
        sdl__mpi_busy_wait(0.002); /* polls a few hundred times a second; only at start-up */
    }
}

#ifndef SDL__MPI_GPU
/* built without the GPU path: a GPU model is an error that says how to build */
struct sdl__mpi_gpu_ddp { int unused; };
static sdl_result sdl__mg_no_gpu(const char *what) {
    return sdl_fail(SDL_ERR_DEVICE, "%s: the model is on the GPU, but sdl_mpi.h's implementation was compiled without it: "
                    "compile it with nvcc, after sdl_cuda.h", what);
}
SDL_API int sdl_mpi_cuda_set_device(void) {
    sdl_fail(SDL_ERR_DEVICE, "sdl_mpi_cuda_set_device: compile sdl_mpi.h's implementation with nvcc after sdl_cuda.h");
    return -1;
}
static sdl_result sdl__mg_broadcast_model(sdl_model *m, sdl_optim *opt, int root) {
    (void)m, (void)opt, (void)root;
    return sdl__mg_no_gpu("sdl_mpi_broadcast_model");
}
static sdl_result sdl__mg_ddp_init(sdl_mpi_ddp *d, const sdl_mpi_gpu_desc *gd) { (void)d, (void)gd; return sdl__mg_no_gpu("sdl_mpi_ddp_new"); }
static void sdl__mg_bucket_launch(sdl_mpi_ddp *d, int b) { (void)d, (void)b; }
static void sdl__mg_progress(sdl_mpi_ddp *d) { (void)d; }
static sdl_result sdl__mg_ddp_sync(sdl_mpi_ddp *d) { (void)d; return sdl__mg_no_gpu("sdl_mpi_ddp_sync"); }
static void sdl__mg_ddp_free(sdl_mpi_ddp *d) { (void)d; }
static void sdl__mg_finalize(void) {}
SDL_API sdl_mpi_transport sdl_mpi_ddp_transport(const sdl_mpi_ddp *d) { (void)d; return SDL_MPI_TRANSPORT_AUTO; }
#else

/* the GPU world: MPI's ranks, or srun's when MPI sees only this process (NCCL only) */
static struct {
    bool world_known, file_mode;
    int rank, size;
    int own_gpus; /* 0 unknown, 1 every rank of each node has a device of its own, -1 not */
#ifdef SDL_MPI_NCCL
    bool nccl_up;
    ncclComm_t nccl;
#endif
} sdl__mg;

/* the process default: sdl_mpi_set_transport, else SDL_MPI_TRANSPORT, else AUTO */
static sdl_mpi_transport sdl__mg_default(void) {
    if (sdl__mg_cfg.have_default) return sdl__mg_cfg.dflt;
    const char *e = getenv("SDL_MPI_TRANSPORT");
    for (int i = 1; e && i < 4; i++)
        if (strcmp(e, sdl__mg_names[i]) == 0) return (sdl_mpi_transport)i;
    if (e && *e && strcmp(e, "auto") != 0)
        sdl_log(SDL_LOG_WARN, "sdl_mpi: SDL_MPI_TRANSPORT=%s is none of nccl, cuda-mpi, host, auto: using auto", e);
    return SDL_MPI_TRANSPORT_AUTO;
}

/* MPI_Op for sums of bf16 (the wire of the host path): each add in f32, rounded back */
static void sdl__mg_bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) b[i] = sdl__mg_f2bf(sdl__mg_bf2f(a[i]) + sdl__mg_bf2f(b[i]));
}

static bool sdl__mg_cu(cudaError_t e, const char *call) {
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError();
    sdl_fail(SDL_ERR_DEVICE, "sdl_mpi: %s failed on rank %d: %s", call, sdl__mpi.rank, cudaGetErrorString(e));
    return false;
}
#define SDL__MG_CU(call) sdl__mg_cu((call), #call)

SDL_API int sdl_mpi_cuda_set_device(void) {
    int count = 0, local = sdl__mpi.local_rank;
    if (!sdl__mpi.up) sdl_mpi_launcher_env(NULL, NULL, &local);
    if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
        (void)cudaGetLastError();
        sdl_fail(SDL_ERR_DEVICE, "sdl_mpi_cuda_set_device: no GPU on rank %d", sdl__mpi.rank);
        return -1;
    }
    int dev = local % count;
    if (!SDL__MG_CU(cudaSetDevice(dev))) return -1;
    return dev;
}

static void sdl__mg_world(void) {
    if (sdl__mg.world_known) return;
    int r = 0, n = 1, l = 0;
    sdl__mg.rank = sdl__mpi.rank;
    sdl__mg.size = sdl__mpi.size;
    if (sdl__mpi.size == 1 && sdl_mpi_launcher_env(&r, &n, &l) && n > 1) {
        sdl__mg.file_mode = true;
        sdl__mg.rank = r;
        sdl__mg.size = n;
    }
    sdl__mg.world_known = true;
}

/* does MPI take device pointers? SDL_MPI_CUDA_AWARE overrides what MPI says */
static bool sdl__mg_cuda_aware(void) {
    const char *e = getenv("SDL_MPI_CUDA_AWARE");
    if (e && *e) return atoi(e) != 0;
#if defined(MPIX_CUDA_AWARE_SUPPORT)
    return MPIX_Query_cuda_support() == 1;
#else
    return false;
#endif
}

/* does every rank of every node drive a GPU no other rank of its node uses? (NCCL refuses
   two ranks on one device.) Compares the devices' PCI bus ids within each node, so it holds
   whether each rank sees all GPUs or only its own (CUDA_VISIBLE_DEVICES, srun
   --gpu-bind=single). Collective over MPI; the answer is kept. */
static bool sdl__mg_own_gpus(void) {
    if (sdl__mg.own_gpus) return sdl__mg.own_gpus > 0;
    char id[32];
    int dev = 0, mine = 1;
    memset(id, 0, sizeof id);
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetPCIBusId(id, (int)sizeof id - 1, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        mine = 0;
    }
    MPI_Comm node;
    if (sdl__mpi.size > 1 && MPI_Comm_split_type(sdl__mpi.comm, MPI_COMM_TYPE_SHARED, sdl__mpi.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        int n = 1;
        MPI_Comm_size(node, &n);
        char *all = (char *)sdl__mpi_alloc((size_t)n, sizeof id);
        if (all && MPI_Allgather(id, (int)sizeof id, MPI_CHAR, all, (int)sizeof id, MPI_CHAR, node) == MPI_SUCCESS) {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < i; j++) if (memcmp(all + (size_t)i * sizeof id, all + (size_t)j * sizeof id, sizeof id) == 0) mine = 0;
        } else {
            mine = 0;
        }
        SDL__MPI_FREE(all);
        MPI_Comm_free(&node);
        MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_INT, MPI_MIN, sdl__mpi.comm); /* every rank decides alike */
    }
    sdl__mg.own_gpus = mine ? 1 : -1;
    return mine != 0;
}

/* want (AUTO: the best that can run), checked against what this build and MPI offer. AUTO
   is decided alike on every rank (a collective call). */
static sdl_result sdl__mg_choose(sdl_mpi_transport want, bool compressed, sdl_mpi_transport *out) {
    sdl__mg_world();
#ifdef SDL_MPI_NCCL
    const bool nccl = true;
#else
    const bool nccl = false;
#endif
    if (want == SDL_MPI_TRANSPORT_AUTO) {
        int aware = !compressed && sdl__mg_cuda_aware();
        if (!sdl__mg.file_mode && sdl__mpi.size > 1) MPI_Allreduce(MPI_IN_PLACE, &aware, 1, MPI_INT, MPI_MIN, sdl__mpi.comm);
        if (sdl__mg.file_mode || (nccl && sdl__mg_own_gpus())) want = SDL_MPI_TRANSPORT_NCCL;
        else if (aware) want = SDL_MPI_TRANSPORT_CUDA_MPI;
        else want = SDL_MPI_TRANSPORT_HOST;
    }
    if (want == SDL_MPI_TRANSPORT_NCCL && !nccl)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi: transport nccl, but this program was built without it (define SDL_MPI_NCCL, link -lnccl)");
    if (sdl__mg.file_mode && want != SDL_MPI_TRANSPORT_NCCL)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi: MPI sees 1 rank but the launcher %d: only NCCL can reach the others (build with "
                        "SDL_MPI_NCCL, or start MPI properly: srun --mpi=pmix)", sdl__mg.size);
    if (want == SDL_MPI_TRANSPORT_CUDA_MPI && compressed)
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi: fp16/bf16 on the wire needs nccl or host: CUDA-aware MPI cannot run a user "
                        "reduction on device memory");
    if (want == SDL_MPI_TRANSPORT_CUDA_MPI && !sdl__mg_cuda_aware())
        return sdl_fail(SDL_ERR_ARG, "sdl_mpi: transport cuda-mpi, but MPI says it is not CUDA-aware (SDL_MPI_CUDA_AWARE=1 "
                        "overrides)");
    *out = want;
    return SDL_OK;
}

#ifdef SDL_MPI_NCCL
static sdl_result sdl__mg_nccl_ok(ncclResult_t r, const char *call) {
    if (r == ncclSuccess) return SDL_OK;
    return sdl_fail(SDL_ERR_COMM, "sdl_mpi: %s failed on rank %d: %s", call, sdl__mg.rank, ncclGetErrorString(r));
}
#define SDL__MG_NCCL(call) sdl__mg_nccl_ok((call), #call)

/* one communicator per process, made on first use: rank 0's ncclUniqueId goes to the
   others over MPI (or through the rendezvous file under srun without MPI) */
static sdl_result sdl__mg_nccl_up(void) {
    if (sdl__mg.nccl_up) return SDL_OK;
    sdl__mg_world();
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    sdl_result r = SDL_OK;
    if (sdl__mg.rank == 0) r = SDL__MG_NCCL(ncclGetUniqueId(&id));
    char path[1024] = "";
    if (sdl__mg.file_mode) {
        const char *p = getenv("SDL_NCCL_ID_FILE"), *dir = getenv("SLURM_SUBMIT_DIR"), *job = getenv("SLURM_JOB_ID"),
                   *step = getenv("SLURM_STEP_ID");
        if (p && *p) snprintf(path, sizeof path, "%s", p);
        else snprintf(path, sizeof path, "%s/.sdl-nccl-id-%s.%s", dir && *dir ? dir : ".", job ? job : "0", step ? step : "0");
        if (r == SDL_OK) r = sdl_mpi_file_rendezvous(path, &id, sizeof id, sdl__mg.rank, sdl__mpi.timeout > 0 ? sdl__mpi.timeout : 60);
    } else {
        sdl_mpi_check("nccl unique id", (int64_t)sizeof id);
        int ok = r == SDL_OK; /* every rank learns whether rank 0 has an id */
        int rc = MPI_Bcast(&ok, 1, MPI_INT, 0, sdl__mpi.comm);
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, sdl__mpi.comm);
        if (rc != MPI_SUCCESS) return sdl__mpi_err(rc, "MPI_Bcast (ncclUniqueId)");
        if (!ok && r == SDL_OK) r = sdl_fail(SDL_ERR_COMM, "sdl_mpi: rank 0 could not make an ncclUniqueId");
    }
    if (r != SDL_OK) return r;
    double t = sdl__mpi_now_us();
    r = SDL__MG_NCCL(ncclCommInitRank(&sdl__mg.nccl, sdl__mg.size, id, sdl__mg.rank));
    if (sdl__mg.file_mode && sdl__mg.rank == 0 && r == SDL_OK) remove(path); /* everyone has joined */
    sdl__mpi_event_add("nccl init", t, sdl__mpi_now_us() - t, 1);
    if (r == SDL_OK) sdl__mg.nccl_up = true;
    return r;
}
#endif

static void sdl__mg_finalize(void) {
#ifdef SDL_MPI_NCCL
    if (sdl__mg.nccl_up) ncclCommDestroy(sdl__mg.nccl);
#endif
    memset(&sdl__mg, 0, sizeof sdl__mg);
}

/* ---- kernels: scale, and f32 <-> wire (fp16 or bf16), grid-stride ------------------------ */
#define SDL__MG_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
static __global__ void sdl__mg_k_scale(float *g, int64_t n, float s) { SDL__MG_LOOP(i, n) g[i] *= s; }
static __global__ void sdl__mg_k_to_wire(const float *g, uint16_t *w, int64_t n, float s, int bf16) {
    SDL__MG_LOOP(i, n) w[i] = bf16 ? sdl__mg_f2bf(g[i] * s) : sdl__mpi_f2h(g[i] * s);
}
static __global__ void sdl__mg_k_from_wire(const uint16_t *w, float *g, int64_t n, int bf16) {
    SDL__MG_LOOP(i, n) g[i] = bf16 ? sdl__mg_bf2f(w[i]) : sdl__mpi_h2f(w[i]);
}
static unsigned sdl__mg_grid(int64_t n) {
    int64_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : b > 1024 ? 1024 : b);
}

/* ---- per ddp ------------------------------------------------------------------------------ */
typedef struct sdl__mg_bucket {
    cudaEvent_t ready, staged, start, done; /* compute: grads final; comm: on the host / started / averaged */
    MPI_Request req;
    bool mpi_started;
} sdl__mg_bucket;

struct sdl__mpi_gpu_ddp {
    sdl_mpi_transport transport;
    int wire;             /* 0 f32, 1 fp16, 2 bf16 */
    cudaStream_t comm;
    cudaEvent_t all_done;
    uint16_t *wire_dev;   /* the gradients as halves (compression) */
    void *host;           /* HOST: pinned staging, floats or halves */
    sdl__mg_bucket *b;
    int next_mpi;         /* MPI transports: buckets whose MPI call has started */
    MPI_Op bf16_op;
    bool bf16_op_made;
};

SDL_API sdl_mpi_transport sdl_mpi_ddp_transport(const sdl_mpi_ddp *d) {
    return d && d->gpu ? d->gpu->transport : SDL_MPI_TRANSPORT_AUTO;
}

static cudaStream_t sdl__mg_compute(void) { return (cudaStream_t)sdl_cuda_stream(); }
static size_t sdl__mg_elem(const struct sdl__mpi_gpu_ddp *g) { return g->wire ? sizeof(uint16_t) : sizeof(float); }

static sdl_result sdl__mg_ddp_init(sdl_mpi_ddp *d, const sdl_mpi_gpu_desc *gd) {
    sdl_mpi_gpu_desc none;
    memset(&none, 0, sizeof none);
    if (!gd) gd = &none;
    if (d->desc.fp16 && gd->bf16) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: fp16 or bf16 on the wire, not both");
    struct sdl__mpi_gpu_ddp *g = (struct sdl__mpi_gpu_ddp *)sdl__mpi_alloc(1, sizeof *g);
    if (!g) return SDL_ERR_OOM;
    d->gpu = g;
    g->wire = gd->bf16 ? 2 : d->desc.fp16 ? 1 : 0;
    sdl_mpi_transport want = gd->transport != SDL_MPI_TRANSPORT_AUTO ? gd->transport : sdl__mg_default();
    sdl_result r = sdl__mg_choose(want, g->wire != 0, &g->transport);
    if (r != SDL_OK) return r;
    sdl_model *m = d->model;
    for (int b = 0; b < d->nbuckets; b++)
        if (d->buckets[b].end - d->buckets[b].begin > INT_MAX && g->transport != SDL_MPI_TRANSPORT_NCCL)
            return sdl_fail(SDL_ERR_ARG, "sdl_mpi_ddp_new: a bucket of more than 2^31 values does not fit an MPI count; use buckets");
#ifdef SDL_MPI_NCCL
    if (g->transport == SDL_MPI_TRANSPORT_NCCL && (r = sdl__mg_nccl_up()) != SDL_OK) return r;
#endif
    g->b = (sdl__mg_bucket *)sdl__mpi_alloc((size_t)d->nbuckets + 1, sizeof(sdl__mg_bucket));
    if (!g->b) return SDL_ERR_OOM;
    for (int b = 0; b < d->nbuckets; b++) g->b[b].req = MPI_REQUEST_NULL; /* not 0 in every MPI */
    if (!SDL__MG_CU(cudaStreamCreateWithFlags(&g->comm, cudaStreamNonBlocking)) || !SDL__MG_CU(cudaEventCreate(&g->all_done)))
        return SDL_ERR_DEVICE;
    for (int b = 0; b < d->nbuckets; b++) {
        sdl__mg_bucket *k = &g->b[b];
        if (!SDL__MG_CU(cudaEventCreateWithFlags(&k->ready, cudaEventDisableTiming)) ||
            !SDL__MG_CU(cudaEventCreateWithFlags(&k->staged, cudaEventDisableTiming)) ||
            !SDL__MG_CU(cudaEventCreate(&k->start)) || !SDL__MG_CU(cudaEventCreate(&k->done)))
            return SDL_ERR_DEVICE;
    }
    size_t n = (size_t)m->param_floats + 1;
    if (g->wire && !SDL__MG_CU(cudaMalloc((void **)&g->wire_dev, n * sizeof(uint16_t)))) return SDL_ERR_DEVICE;
    if (g->transport == SDL_MPI_TRANSPORT_HOST && !SDL__MG_CU(cudaMallocHost(&g->host, n * sdl__mg_elem(g)))) return SDL_ERR_DEVICE;
    if (g->wire == 2 && g->transport != SDL_MPI_TRANSPORT_NCCL) {
        int rc = MPI_Op_create(sdl__mg_bf16_sum, 1, &g->bf16_op);
        if (rc != MPI_SUCCESS) return sdl__mpi_err(rc, "MPI_Op_create (bf16)");
        g->bf16_op_made = true;
    }
    static const char *wires[3] = {"", " fp16", " bf16"};
    snprintf(d->check_name, sizeof d->check_name, "ddp sync %s%s, %d buckets, first %lld", sdl_mpi_transport_name(g->transport),
             wires[g->wire], d->nbuckets & 0xffffff, d->nbuckets ? (long long)(d->buckets[0].end - d->buckets[0].begin) : 0ll);
    for (int b = 0; b < d->nbuckets; b++)
        snprintf(d->buckets[b].name, sizeof d->buckets[b].name, "%s bucket %d", g->transport == SDL_MPI_TRANSPORT_NCCL ?
                 "nccl allreduce" : "mpi allreduce", b & 0xffffff);
    return SDL_OK;
}

static void sdl__mg_ddp_free(sdl_mpi_ddp *d) {
    struct sdl__mpi_gpu_ddp *g = d->gpu;
    if (!g) return;
    if (g->comm) SDL__MG_CU(cudaStreamSynchronize(g->comm));
    for (int b = 0; g->b && b < d->nbuckets; b++) {
        sdl__mg_bucket *k = &g->b[b];
        if (k->req != MPI_REQUEST_NULL) MPI_Wait(&k->req, MPI_STATUS_IGNORE);
        if (k->ready) cudaEventDestroy(k->ready);
        if (k->staged) cudaEventDestroy(k->staged);
        if (k->start) cudaEventDestroy(k->start);
        if (k->done) cudaEventDestroy(k->done);
    }
    if (g->all_done) cudaEventDestroy(g->all_done);
    if (g->comm) cudaStreamDestroy(g->comm);
    if (g->wire_dev) cudaFree(g->wire_dev);
    if (g->host) cudaFreeHost(g->host);
    if (g->bf16_op_made) MPI_Op_free(&g->bf16_op);
    SDL__MPI_FREE(g->b);
    SDL__MPI_FREE(g);
    d->gpu = NULL;
}

/* float or half buffer of bucket b that the MPI call reduces, and its type and op */
static void *sdl__mg_mpi_buffer(sdl_mpi_ddp *d, int b, MPI_Datatype *type, MPI_Op *op) {
    struct sdl__mpi_gpu_ddp *g = d->gpu;
    int64_t at = d->buckets[b].begin;
    *type = g->wire ? MPI_UINT16_T : MPI_FLOAT;
    *op = g->wire == 2 ? g->bf16_op : g->wire == 1 ? sdl__mpi.half_sum : MPI_SUM;
    if (g->transport == SDL_MPI_TRANSPORT_HOST) return (char *)g->host + (size_t)at * sdl__mg_elem(g);
    return d->model->grad_data + at; /* CUDA-aware MPI: in place on the device (never compressed) */
}

/* bucket b's gradients are final on the compute stream: queue its part on the comm stream */
static void sdl__mg_bucket_launch(sdl_mpi_ddp *d, int b) {
    struct sdl__mpi_gpu_ddp *g = d->gpu;
    sdl__mg_bucket *k = &g->b[b];
    int64_t at = d->buckets[b].begin, n = d->buckets[b].end - at;
    float *grad = d->model->grad_data + at, inv = 1.0f / (float)sdl__mg.size;
    uint16_t *w = g->wire_dev ? g->wire_dev + at : NULL;
    bool ok = SDL__MG_CU(cudaEventRecord(k->ready, sdl__mg_compute())) && SDL__MG_CU(cudaStreamWaitEvent(g->comm, k->ready, 0)) &&
              SDL__MG_CU(cudaEventRecord(k->start, g->comm));
    if (ok && g->wire) {
        sdl__mg_k_to_wire<<<sdl__mg_grid(n), 256, 0, g->comm>>>(grad, w, n, inv, g->wire == 2);
        ok = SDL__MG_CU(cudaGetLastError());
    }
    if (ok && g->transport == SDL_MPI_TRANSPORT_NCCL) {
#ifdef SDL_MPI_NCCL
        ncclDataType_t type = g->wire == 2 ? ncclBfloat16 : g->wire == 1 ? ncclHalf : ncclFloat32;
        void *buf = g->wire ? (void *)w : (void *)grad;
#if NCCL_VERSION_CODE >= 21000
        ncclRedOp_t op = g->wire ? ncclSum : ncclAvg; /* halves: scaled before the sum */
#else
        ncclRedOp_t op = ncclSum;
#endif
        ok = SDL__MG_NCCL(ncclAllReduce(buf, buf, (size_t)n, type, op, sdl__mg.nccl, g->comm)) == SDL_OK;
        if (ok && g->wire) {
            sdl__mg_k_from_wire<<<sdl__mg_grid(n), 256, 0, g->comm>>>(w, grad, n, g->wire == 2);
            ok = SDL__MG_CU(cudaGetLastError());
        }
#if NCCL_VERSION_CODE < 21000
        if (ok && !g->wire) {
            sdl__mg_k_scale<<<sdl__mg_grid(n), 256, 0, g->comm>>>(grad, n, inv);
            ok = SDL__MG_CU(cudaGetLastError());
        }
#endif
        ok = ok && SDL__MG_CU(cudaEventRecord(k->done, g->comm));
#endif
    } else if (ok && g->transport == SDL_MPI_TRANSPORT_HOST) {
        void *src = g->wire ? (void *)w : (void *)grad;
        ok = SDL__MG_CU(cudaMemcpyAsync((char *)g->host + (size_t)at * sdl__mg_elem(g), src, (size_t)n * sdl__mg_elem(g),
                                        cudaMemcpyDeviceToHost, g->comm)) &&
             SDL__MG_CU(cudaEventRecord(k->staged, g->comm));
    } else if (ok) {
        ok = SDL__MG_CU(cudaEventRecord(k->staged, g->comm));
    }
    if (!ok) d->error = true;
}

/* starts bucket b's MPI call (its data is staged): the last one blocking, as on the CPU */
static void sdl__mg_mpi_start(sdl_mpi_ddp *d, int b) {
    sdl__mg_bucket *k = &d->gpu->b[b];
    MPI_Datatype type;
    MPI_Op op;
    void *buf = sdl__mg_mpi_buffer(d, b, &type, &op);
    int n = (int)(d->buckets[b].end - d->buckets[b].begin), rc;
    k->mpi_started = true;
    if (b == d->nbuckets - 1) {
        rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, type, op, sdl__mpi.comm);
        d->buckets[b].t_done = sdl__mpi_now_us();
    } else {
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, op, sdl__mpi.comm, &k->req);
    }
    if (rc != MPI_SUCCESS) { sdl__mpi_err(rc, "MPI allreduce (GPU bucket)"); d->error = true; k->req = MPI_REQUEST_NULL; }
}

/* from the grad hook: MPI calls for buckets whose copy is done (in order, never the last),
   and MPI_Test on those in flight (MPI moves messages on only inside its calls) */
static void sdl__mg_progress(sdl_mpi_ddp *d) {
    struct sdl__mpi_gpu_ddp *g = d->gpu;
    if (g->transport == SDL_MPI_TRANSPORT_NCCL) return;
    while (g->next_mpi < d->next_launch && g->next_mpi < d->nbuckets - 1) {
        cudaError_t e = cudaEventQuery(g->b[g->next_mpi].staged);
        if (e == cudaErrorNotReady) { (void)cudaGetLastError(); break; } /* not an error: pop it */
        if (!SDL__MG_CU(e)) { d->error = true; break; }
        sdl__mg_mpi_start(d, g->next_mpi++);
    }
    for (int b = 0; b < g->next_mpi; b++) {
        int flag = 0;
        if (g->b[b].req != MPI_REQUEST_NULL) MPI_Test(&g->b[b].req, &flag, MPI_STATUS_IGNORE);
        if (flag) d->buckets[b].t_done = sdl__mpi_now_us();
    }
}

static sdl_result sdl__mg_ddp_sync(sdl_mpi_ddp *d) {
    struct sdl__mpi_gpu_ddp *g = d->gpu;
    sdl_model *m = d->model;
    bool had_error = d->error;
    double tw = sdl__mpi_now_us();
    sdl_mpi_check(d->check_name, m->param_floats);
    while (d->next_launch < d->nbuckets) sdl__mpi_bucket_launch(d, d->next_launch++);
    if (g->transport != SDL_MPI_TRANSPORT_NCCL) {
        float inv = 1.0f / (float)sdl__mg.size;
        for (; g->next_mpi < d->nbuckets; g->next_mpi++) {
            if (!SDL__MG_CU(cudaEventSynchronize(g->b[g->next_mpi].staged))) { d->error = true; break; }
            sdl__mg_mpi_start(d, g->next_mpi);
        }
        bool bad = false; /* after a failure: still wait for every MPI call, copy nothing */
        for (int b = 0; b < d->nbuckets; b++) {
            sdl__mg_bucket *k = &g->b[b];
            if (k->req != MPI_REQUEST_NULL) {
                int rc = MPI_Wait(&k->req, MPI_STATUS_IGNORE);
                if (rc != MPI_SUCCESS) { sdl__mpi_err(rc, "MPI_Wait (GPU bucket)"); bad = true; }
                d->buckets[b].t_done = sdl__mpi_now_us();
            }
            if (bad) continue;
            int64_t at = d->buckets[b].begin, n = d->buckets[b].end - at;
            float *grad = m->grad_data + at;
            uint16_t *w = g->wire_dev ? g->wire_dev + at : NULL;
            if (g->transport == SDL_MPI_TRANSPORT_HOST &&
                !SDL__MG_CU(cudaMemcpyAsync(g->wire ? (void *)w : (void *)grad, (char *)g->host + (size_t)at * sdl__mg_elem(g),
                                            (size_t)n * sdl__mg_elem(g), cudaMemcpyHostToDevice, g->comm))) { bad = true; continue; }
            if (g->wire) sdl__mg_k_from_wire<<<sdl__mg_grid(n), 256, 0, g->comm>>>(w, grad, n, g->wire == 2);
            else sdl__mg_k_scale<<<sdl__mg_grid(n), 256, 0, g->comm>>>(grad, n, inv);
            if (!SDL__MG_CU(cudaGetLastError()) || !SDL__MG_CU(cudaEventRecord(k->done, g->comm))) bad = true;
        }
        if (bad) d->error = true;
    }
    /* the compute stream (the optimizer step next) waits for every bucket's average */
    if (!SDL__MG_CU(cudaEventRecord(g->all_done, g->comm)) || !SDL__MG_CU(cudaStreamWaitEvent(sdl__mg_compute(), g->all_done, 0)))
        d->error = true;
    if (sdl__mpi.ev && !d->error && SDL__MG_CU(cudaEventSynchronize(g->all_done))) {
        for (int b = 0; b < d->nbuckets; b++) { /* the GPU's own time from start to averaged */
            float ms = 0.0f;
            if (cudaEventElapsedTime(&ms, g->b[b].start, g->b[b].done) != cudaSuccess) { (void)cudaGetLastError(); ms = 0.0f; }
            sdl__mpi_event_add(d->buckets[b].name, d->buckets[b].t_launch, (double)ms * 1000.0, 1);
        }
        sdl__mpi_event_add("wait", tw, sdl__mpi_now_us() - tw, 0);
    }
    g->next_mpi = 0;
    for (int b = 0; b < d->nbuckets; b++) { g->b[b].mpi_started = false; g->b[b].req = MPI_REQUEST_NULL; }
    if (had_error || d->error) return sdl_last_result() != SDL_OK ? sdl_last_result() : SDL_ERR_COMM;
    return SDL_OK;
}

/* ---- broadcast of a GPU model ----------------------------------------------------------- */
/* count floats of device memory from root to everyone */
static sdl_result sdl__mg_bcast_dev(float *p, int64_t count, sdl_mpi_transport t, int root, const char *name, float *tmp) {
    if (count == 0) return SDL_OK;
    cudaStream_t cs = sdl__mg_compute();
#ifdef SDL_MPI_NCCL
    if (t == SDL_MPI_TRANSPORT_NCCL) {
        sdl_mpi_check(name, count);
        sdl_result r = SDL__MG_NCCL(ncclBroadcast(p, p, (size_t)count, ncclFloat32, root, sdl__mg.nccl, cs));
        return r == SDL_OK && SDL__MG_CU(cudaStreamSynchronize(cs)) ? r : sdl_last_result();
    }
#endif
    if (!SDL__MG_CU(cudaStreamSynchronize(cs))) return SDL_ERR_DEVICE;
    if (t == SDL_MPI_TRANSPORT_CUDA_MPI) return sdl__mpi_bcast(p, count, MPI_FLOAT, sizeof(float), root, name);
    size_t bytes = (size_t)count * sizeof(float);
    if (!SDL__MG_CU(cudaMemcpy(tmp, p, bytes, cudaMemcpyDeviceToHost))) return SDL_ERR_DEVICE;
    sdl_result r = sdl__mpi_bcast(tmp, count, MPI_FLOAT, sizeof(float), root, name);
    if (r == SDL_OK && !SDL__MG_CU(cudaMemcpy(p, tmp, bytes, cudaMemcpyHostToDevice))) return SDL_ERR_DEVICE;
    return r;
}

static sdl_result sdl__mg_broadcast_model(sdl_model *m, sdl_optim *opt, int root) {
    sdl__mg_world();
    if (root < 0 || root >= sdl__mg.size) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_broadcast_model: root %d of %d ranks", root, sdl__mg.size);
    sdl_mpi_transport t;
    sdl_result r = sdl__mg_choose(sdl__mg_default(), false, &t);
    if (r != SDL_OK) return r;
#ifdef SDL_MPI_NCCL
    if (t == SDL_MPI_TRANSPORT_NCCL && (r = sdl__mg_nccl_up()) != SDL_OK) return r;
#endif
    int64_t most = m->param_floats > m->buffer_floats ? m->param_floats : m->buffer_floats;
    bool opt_gpu = opt && opt->device != SDL_CPU;
    float *tmp = NULL;
    if (t == SDL_MPI_TRANSPORT_HOST && !(tmp = (float *)sdl__mpi_alloc((size_t)most + 1, sizeof(float)))) return SDL_ERR_OOM;
    double ts = sdl__mpi_now_us();
    r = sdl__mg_bcast_dev(m->param_data, m->param_floats, t, root, "broadcast parameters", tmp);
    if (r == SDL_OK) r = sdl__mg_bcast_dev(m->buffer_data, m->buffer_floats, t, root, "broadcast buffers", tmp);
    if (r == SDL_OK && opt) {
        double hdr[4] = {(double)opt->step, (double)opt->lr, (double)opt->nstate, (double)opt->micro};
        if (sdl__mg.file_mode) { /* no MPI: the header travels through NCCL as floats */
#ifdef SDL_MPI_NCCL
            float *dh = NULL, fh[8];
            for (int i = 0; i < 4; i++) { fh[2 * i] = (float)hdr[i]; fh[2 * i + 1] = (float)(hdr[i] - (double)fh[2 * i]); }
            r = SDL__MG_CU(cudaMalloc((void **)&dh, sizeof fh)) && SDL__MG_CU(cudaMemcpy(dh, fh, sizeof fh, cudaMemcpyHostToDevice))
                    ? sdl__mg_bcast_dev(dh, 8, t, root, "broadcast optimizer step", NULL) : SDL_ERR_DEVICE;
            if (r == SDL_OK && !SDL__MG_CU(cudaMemcpy(fh, dh, sizeof fh, cudaMemcpyDeviceToHost))) r = SDL_ERR_DEVICE;
            for (int i = 0; i < 4; i++) hdr[i] = (double)fh[2 * i] + (double)fh[2 * i + 1];
            if (dh) cudaFree(dh);
#endif
        } else {
            r = sdl__mpi_bcast(hdr, 4, MPI_DOUBLE, sizeof(double), root, "broadcast optimizer step");
        }
        if (r == SDL_OK && hdr[2] != (double)opt->nstate)
            r = sdl_fail(SDL_ERR_COMM, "sdl_mpi_broadcast_model: rank %d's optimizer has %d state slots, the root's %d",
                         sdl__mg.rank, opt->nstate, (int)hdr[2]);
        for (int s = 0; r == SDL_OK && s < opt->nstate; s++) {
            float *st = opt->state + (size_t)s * (size_t)m->param_floats;
            if (opt_gpu) r = sdl__mg_bcast_dev(st, m->param_floats, t, root, "broadcast optimizer state", tmp);
            else r = sdl__mpi_bcast(st, m->param_floats, MPI_FLOAT, sizeof(float), root, "broadcast optimizer state");
        }
        if (r == SDL_OK) {
            opt->step = (int64_t)hdr[0];
            opt->lr = (float)hdr[1];
            opt->micro = (int)hdr[3];
        }
    }
    SDL__MPI_FREE(tmp);
    sdl__mpi_event_add("broadcast", ts, sdl__mpi_now_us() - ts, 1);
    return r;
}
#endif /* SDL__MPI_GPU */

/* ----------------------------------------------------------------------------------------
   >>mpi-fed: federated averaging (see >>decl-mpi-fed)
   ---------------------------------------------------------------------------------------- */
/* one client's record in the gathered payloads; the encoded update follows it */
typedef struct sdl__fed_hdr {
    int64_t client, samples, nvals, batches;
    double loss_sum;
} sdl__fed_hdr;

struct sdl_fed {
    sdl_fed_desc d;
    MPI_Comm comm;
    int rank, size, nchosen;
    int64_t P, round, rec_bytes, topk_n;
    int64_t *index, *offset; /* the partition */
    int64_t *order;          /* a client's samples in this epoch's order */
    int *chosen;             /* this round's clients, ascending */
    const char **rec;        /* per client: its record in recv, this round */
    float *global, *work, *mag, *resid; /* resid: top-k error feedback, P per owned client */
    double *acc;
    char *send, *recv;
    int *counts, *displs;
};

/* Fisher-Yates from hash(seed, stream, i): the same order on every machine */
static void sdl__fed_shuffle(int64_t *a, int64_t n, uint64_t seed, uint64_t stream) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(sdl_hash_uniform(seed, stream, (uint64_t)i) * (float)(i + 1));
        if (j > i) j = i;
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static double sdl__fed_unif(uint64_t seed, uint64_t stream, uint64_t *ctr) {
    double u = sdl_hash_uniform(seed, stream, (*ctr)++);
    return u > 0.0 ? u : 1e-12;
}

/* Gamma(a, 1): Marsaglia and Tsang (2000); a < 1 via Gamma(a + 1) U^(1/a) */
static double sdl__fed_gamma(double a, uint64_t seed, uint64_t stream, uint64_t *ctr) {
    if (a < 1.0) return sdl__fed_gamma(a + 1.0, seed, stream, ctr) * pow(sdl__fed_unif(seed, stream, ctr), 1.0 / a);
    double dd = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (;;) {
        double u1 = sdl__fed_unif(seed, stream, ctr), u2 = sdl__fed_unif(seed, stream, ctr);
        double x = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        if (log(sdl__fed_unif(seed, stream, ctr)) < 0.5 * x * x + dd - dd * v + dd * log(v)) return dd * v;
    }
}

/* seq: sample ids, all of them, in the order each split deals them; owner[p] the client of
   seq[p]. Dirichlet: per class c, shuffled, cut at the cumulative proportions p ~ Dir(alpha). */
static bool sdl__fed_deal(const sdl_dataset *d, int K, sdl_fed_split split, float alpha, int spc, uint64_t seed,
                          int64_t *seq, int *owner) {
    int64_t n = d->n;
    if (split == SDL_FED_IID) {
        for (int64_t i = 0; i < n; i++) seq[i] = i;
        sdl__fed_shuffle(seq, n, seed, 0);
        for (int64_t p = 0; p < n; p++) owner[p] = (int)(p * K / n);
        return true;
    }
    int64_t p = 0; /* seq = samples grouped by class (stable) */
    for (int c = 0; c < d->num_classes; c++) {
        int64_t begin = p;
        for (int64_t i = 0; i < n; i++)
            if (d->labels[i] == c) seq[p++] = i;
        if (split == SDL_FED_DIRICHLET) {
            int64_t nc = p - begin;
            sdl__fed_shuffle(seq + begin, nc, seed, 1 + (uint64_t)c);
            uint64_t ctr = 0;
            double *g = (double *)sdl__mpi_alloc((size_t)K, sizeof(double)), sum = 0.0, cum = 0.0;
            if (!g) return false;
            for (int k = 0; k < K; k++) sum += g[k] = sdl__fed_gamma(alpha, seed, 0x10000 + (uint64_t)c, &ctr);
            int64_t q = 0;
            for (int k = 0; k < K; k++) {
                cum += sum > 0.0 ? g[k] / sum : 1.0 / K;
                int64_t end = k == K - 1 ? nc : (int64_t)(cum * (double)nc + 0.5);
                for (; q < end && q < nc; q++) owner[begin + q] = k;
            }
            SDL__MPI_FREE(g);
        }
    }
    if (split == SDL_FED_SHARDS) {
        int64_t S = (int64_t)K * spc;
        int64_t *deal = (int64_t *)sdl__mpi_alloc((size_t)S, sizeof(int64_t));
        if (!deal) return false;
        for (int64_t j = 0; j < S; j++) deal[j] = j;
        sdl__fed_shuffle(deal, S, seed, 2);
        for (int64_t q = 0; q < n; q++) owner[q] = (int)(deal[q * S / n] / spc);
        SDL__MPI_FREE(deal);
    }
    return true;
}

SDL_API sdl_result sdl_fed_partition(const sdl_dataset *d, int clients, sdl_fed_split split, float alpha,
                                     int shards_per_client, uint64_t seed, int64_t *index, int64_t *offset) {
    if (!d || !index || !offset || d->n < 0 || (d->n && !d->labels))
        return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: NULL dataset, index or offset");
    if (clients < 1) return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: %d clients", clients);
    if (split < SDL_FED_IID || split > SDL_FED_SHARDS) return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: unknown split %d", (int)split);
    if (split == SDL_FED_DIRICHLET && !(alpha > 0.0f)) return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: Dirichlet alpha %g must be > 0", (double)alpha);
    if (split == SDL_FED_SHARDS && shards_per_client < 1) return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: %d shards per client", shards_per_client);
    for (int64_t i = 0; split != SDL_FED_IID && i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->num_classes)
            return sdl_fail(SDL_ERR_ARG, "sdl_fed_partition: sample %lld has label %d, outside 0..%d", (long long)i, d->labels[i], d->num_classes - 1);
    int64_t n = d->n;
    int64_t *seq = (int64_t *)sdl__mpi_alloc((size_t)n + 1, sizeof(int64_t));
    int *owner = (int *)sdl__mpi_alloc((size_t)n + 1, sizeof(int));
    if (!seq || !owner) { SDL__MPI_FREE(seq); SDL__MPI_FREE(owner); return SDL_ERR_OOM; }
    if (!sdl__fed_deal(d, clients, split, alpha, shards_per_client, seed, seq, owner)) {
        SDL__MPI_FREE(seq);
        SDL__MPI_FREE(owner);
        return SDL_ERR_OOM;
    }
    for (int k = 0; k <= clients; k++) offset[k] = 0; /* a counting sort by owner, stable */
    for (int64_t p = 0; p < n; p++) offset[owner[p] + 1]++;
    for (int k = 0; k < clients; k++) offset[k + 1] += offset[k];
    for (int64_t p = 0; p < n; p++) index[offset[owner[p]]++] = seq[p];
    for (int k = clients; k > 0; k--) offset[k] = offset[k - 1];
    offset[0] = 0;
    SDL__MPI_FREE(seq);
    SDL__MPI_FREE(owner);
    return SDL_OK;
}

SDL_API const int64_t *sdl_fed_client_samples(const sdl_fed *f, int k, int64_t *count) {
    if (count) *count = 0;
    if (!f || k < 0 || k >= f->d.clients) { sdl_fail(SDL_ERR_ARG, "sdl_fed_client_samples: no client %d", k); return NULL; }
    if (count) *count = f->offset[k + 1] - f->offset[k];
    return f->index + f->offset[k];
}

SDL_API void sdl_fed_free(sdl_fed *f) {
    if (!f) return;
    void *bufs[] = {f->index, f->offset, f->order, f->chosen, (void *)f->rec, f->global, f->work, f->mag,
                    f->resid, f->acc, f->send, f->recv, f->counts, f->displs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) SDL__MPI_FREE(bufs[i]);
    SDL__MPI_FREE(f);
}

static sdl_result sdl__fed_check(const sdl_fed_desc *d) {
    const char *bad = !d ? "NULL desc" : !d->model ? "NULL model" : !d->loss ? "NULL loss" : !d->data ? "NULL data" : NULL;
    if (bad) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: %s", bad);
    if (d->data->n < 1 || !d->data->images) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: the dataset is empty");
    if (d->clients < 0 || d->local_epochs < 0 || d->local_steps < 0 || d->batch_size < 0)
        return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: negative clients, local_epochs, local_steps or batch_size");
    if (!(d->fraction >= 0.0f && d->fraction <= 1.0f)) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: fraction %g outside [0, 1]", (double)d->fraction);
    if (!(d->topk >= 0.0f && d->topk <= 1.0f)) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: topk %g outside [0, 1]", (double)d->topk);
    if (!(d->mu >= 0.0f) || !(d->lr >= 0.0f)) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: lr and mu must be >= 0");
    if (d->compress < SDL_FED_FLOAT32 || d->compress > SDL_FED_TOPK) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: unknown compress %d", (int)d->compress);
    if (d->data->c > 4) return sdl_fail(SDL_ERR_ARG, "sdl_fed_new: %d channels (mean/std hold 4)", d->data->c);
    if (d->model->nparams && d->model->params[0]->device != SDL_CPU) return sdl_fail(SDL_ERR_DEVICE, "sdl_fed_new: a CPU model only");
    return SDL_OK;
}

SDL_API sdl_fed *sdl_fed_new(const sdl_fed_desc *desc) {
    if (sdl__mpi_need_init("sdl_fed_new") != SDL_OK || sdl__fed_check(desc) != SDL_OK) return NULL;
    if (sdl_model_pack(desc->model) != SDL_OK) return NULL;
    sdl_fed *f = (sdl_fed *)sdl__mpi_alloc(1, sizeof(sdl_fed));
    if (!f) return NULL;
    f->d = *desc;
    f->comm = desc->comm == (MPI_Comm)0 ? sdl__mpi.comm : desc->comm;
    MPI_Comm_rank(f->comm, &f->rank);
    MPI_Comm_size(f->comm, &f->size);
    sdl_fed_desc *d = &f->d;
    if (!d->clients) d->clients = f->size;
    if (!d->alpha) d->alpha = 0.5f;
    if (!d->shards_per_client) d->shards_per_client = 2;
    if (!d->fraction) d->fraction = 1.0f;
    if (!d->local_epochs) d->local_epochs = 1;
    if (!d->batch_size) d->batch_size = 32;
    if (!d->lr) d->lr = 0.01f;
    if (!d->topk) d->topk = 0.01f;
    int K = d->clients, owned = (K + f->size - 1) / f->size;
    f->P = d->model->param_floats;
    f->nchosen = (int)(d->fraction * (float)K + 0.5f);
    if (f->nchosen < 1) f->nchosen = 1;
    f->topk_n = (int64_t)ceil((double)d->topk * (double)f->P);
    if (f->topk_n < 1) f->topk_n = 1;
    int64_t body = d->compress == SDL_FED_FP16 ? (2 * f->P + 7) / 8 * 8 : d->compress == SDL_FED_TOPK ? 8 * f->topk_n : 4 * f->P;
    f->rec_bytes = (int64_t)sizeof(sdl__fed_hdr) + body;
    if (f->P >= INT32_MAX || (int64_t)f->nchosen * f->rec_bytes >= INT_MAX) {
        sdl_fail(SDL_ERR_ARG, "sdl_fed_new: %d clients x %lld bytes a round is more than one MPI message holds", f->nchosen, (long long)f->rec_bytes);
        sdl_fed_free(f);
        return NULL;
    }
    size_t P = (size_t)f->P;
    f->index = (int64_t *)sdl__mpi_alloc((size_t)d->data->n, sizeof(int64_t));
    f->offset = (int64_t *)sdl__mpi_alloc((size_t)K + 1, sizeof(int64_t));
    f->order = (int64_t *)sdl__mpi_alloc((size_t)(d->data->n > K ? d->data->n : K), sizeof(int64_t));
    f->chosen = (int *)sdl__mpi_alloc((size_t)K, sizeof(int));
    f->rec = (const char **)sdl__mpi_alloc((size_t)K, sizeof(char *));
    f->global = (float *)sdl__mpi_alloc(P, sizeof(float));
    f->work = (float *)sdl__mpi_alloc(P, sizeof(float));
    f->mag = (float *)sdl__mpi_alloc(P, sizeof(float));
    f->resid = d->compress == SDL_FED_TOPK ? (float *)sdl__mpi_alloc((size_t)owned * P, sizeof(float)) : NULL;
    f->acc = (double *)sdl__mpi_alloc(P, sizeof(double));
    f->send = (char *)sdl__mpi_alloc((size_t)owned, (size_t)f->rec_bytes);
    f->recv = (char *)sdl__mpi_alloc((size_t)f->nchosen, (size_t)f->rec_bytes);
    f->counts = (int *)sdl__mpi_alloc((size_t)f->size, sizeof(int));
    f->displs = (int *)sdl__mpi_alloc((size_t)f->size, sizeof(int));
    if (!f->index || !f->offset || !f->order || !f->chosen || !f->rec || !f->global || !f->work || !f->mag || !f->acc ||
        !f->send || !f->recv || !f->counts || !f->displs || (d->compress == SDL_FED_TOPK && !f->resid) ||
        sdl_fed_partition(d->data, K, d->split, d->alpha, d->shards_per_client, d->seed, f->index, f->offset) != SDL_OK) {
        sdl_fed_free(f);
        return NULL;
    }
    sdl_model_zero_grad(d->model);
    return f;
}

/* the round's clients: the first m of a shuffle of 0..K-1 drawn from (seed, round), sorted */
static void sdl__fed_choose(sdl_fed *f) {
    int K = f->d.clients;
    int64_t *perm = f->order; /* free until the clients train */
    for (int k = 0; k < K; k++) perm[k] = k;
    if (f->nchosen < K) sdl__fed_shuffle(perm, K, f->d.seed, 0x20000000ull + (uint64_t)f->round);
    for (int i = 0; i < K; i++) f->chosen[i] = 0;
    for (int i = 0; i < f->nchosen; i++) f->chosen[perm[i]] = 1;
    int m = 0;
    for (int k = 0; k < K; k++)
        if (f->chosen[k]) f->chosen[m++] = k;
}

/* one batch of the client's samples in f->order[pos ..]: x normalised, y the labels */
static void sdl__fed_batch(const sdl_fed *f, int64_t pos, int64_t b, sdl_tensor *x, sdl_tensor *y) {
    const sdl_dataset *ds = f->d.data;
    int64_t per = (int64_t)ds->c * ds->h * ds->w, plane = (int64_t)ds->h * ds->w;
    for (int64_t i = 0; i < b; i++) {
        int64_t s = f->order[pos + i];
        const uint8_t *src = ds->images + s * per;
        float *dst = sdl_f32(x) + i * per;
        for (int64_t j = 0; j < per; j++) {
            int c = (int)(j / plane);
            float v = (float)src[j] / 255.0f;
            dst[j] = f->d.std[c] > 0.0f ? (v - f->d.mean[c]) / f->d.std[c] : v;
        }
        sdl_i32(y)[i] = ds->labels[s];
    }
}

/* ClientUpdate: local SGD from the global weights (in model->param_data), leaving w_k there */
static sdl_result sdl__fed_train(sdl_fed *f, int k, sdl__fed_hdr *h) {
    const sdl_fed_desc *d = &f->d;
    const sdl_dataset *ds = d->data;
    int64_t nk;
    const int64_t *idx = sdl_fed_client_samples(f, k, &nk);
    memset(h, 0, sizeof *h);
    h->client = k;
    h->samples = nk;
    if (nk == 0) return SDL_OK;
    memcpy(f->order, idx, (size_t)nk * sizeof(int64_t));
    int64_t B = d->batch_size, steps = d->local_steps ? d->local_steps : d->local_epochs * ((nk + B - 1) / B);
    int64_t pos = 0, epoch = 0;
    float *w = d->model->param_data, *g = d->model->grad_data;
    for (int64_t s = 0; s < steps; s++) {
        if (pos == 0 && d->shuffle)
            sdl__fed_shuffle(f->order, nk, d->seed ^ 0x5fed5fedull, (((uint64_t)f->round * (uint64_t)d->clients + (uint64_t)k) << 20) + (uint64_t)epoch);
        int64_t b = nk - pos < B ? nk - pos : B;
        sdl_tensor *x = sdl_arena_tensor(sdl_shape4(b, ds->c, ds->h, ds->w), SDL_F32);
        sdl_tensor *y = sdl_arena_tensor(sdl_shape1(b), SDL_I32);
        if (!x || !y) return sdl_last_result();
        sdl__fed_batch(f, pos, b, x, y);
        sdl_tensor *loss = d->loss(d->user, x, y);
        sdl_result r = loss ? sdl_backward(loss) : sdl_fail(SDL_ERR_ARG, "sdl_fed_round: client %d's loss is NULL: %s", k, sdl_last_error());
        if (r != SDL_OK) return r;
        h->loss_sum += sdl_item(loss);
        h->batches++;
        /* w -= lr (g + mu (w - w_global)): FedProx's proximal term when mu > 0 */
        for (int64_t i = 0; i < f->P; i++) w[i] -= d->lr * (g[i] + d->mu * (w[i] - f->global[i]));
        sdl_model_zero_grad(d->model);
        sdl_arena_reset();
        if ((pos += b) == nk) pos = 0, epoch++;
    }
    return SDL_OK;
}

/* the k-th largest of a[0..n) (moved about): quickselect, middle pivot */
static float sdl__fed_kth_largest(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) { float t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return a[want];
}

/* d_k = w_k - w into the record after h; returns the record's size */
static int64_t sdl__fed_encode(sdl_fed *f, int k, sdl__fed_hdr *h, char *out) {
    const float *w = f->d.model->param_data;
    char *body = out + sizeof *h;
    int64_t P = f->P;
    h->nvals = P;
    if (f->d.compress == SDL_FED_FLOAT32) {
        float *v = (float *)(void *)body;
        for (int64_t i = 0; i < P; i++) v[i] = w[i] - f->global[i];
    } else if (f->d.compress == SDL_FED_FP16) {
        uint16_t *v = (uint16_t *)(void *)body;
        for (int64_t i = 0; i < P; i++) v[i] = sdl_mpi_f32_to_f16(w[i] - f->global[i]);
    } else { /* top-k of d_k + e_k; what is left out becomes e_k */
        float *e = f->resid + (size_t)(k / f->size) * (size_t)P;
        for (int64_t i = 0; i < P; i++) f->work[i] = w[i] - f->global[i] + e[i], f->mag[i] = fabsf(f->work[i]);
        float t = sdl__fed_kth_largest(f->mag, P, f->topk_n);
        int64_t above = 0, kept = 0;
        for (int64_t i = 0; i < P; i++) above += fabsf(f->work[i]) > t;
        int64_t ties = f->topk_n - above;
        for (int64_t i = 0; i < P; i++) {
            float v = f->work[i], a = fabsf(v);
            bool keep = a > t || (a == t && ties-- > 0);
            e[i] = keep ? 0.0f : v;
            if (keep) {
                int32_t ix = (int32_t)i;
                memcpy(body + 8 * kept, &ix, 4);
                memcpy(body + 8 * kept + 4, &v, 4);
                kept++;
            }
        }
        h->nvals = kept;
    }
    memcpy(out, h, sizeof *h);
    return f->rec_bytes;
}

/* acc += scale * the update a record holds */
static void sdl__fed_decode_add(const sdl_fed *f, const char *rec, double scale) {
    sdl__fed_hdr h;
    memcpy(&h, rec, sizeof h);
    const char *body = rec + sizeof h;
    for (int64_t i = 0; i < h.nvals; i++) {
        float v;
        int32_t ix = (int32_t)i;
        if (f->d.compress == SDL_FED_FLOAT32) memcpy(&v, body + 4 * i, 4);
        else if (f->d.compress == SDL_FED_FP16) { uint16_t u; memcpy(&u, body + 2 * i, 2); v = sdl_mpi_f16_to_f32(u); }
        else { memcpy(&ix, body + 8 * i, 4); memcpy(&v, body + 8 * i + 4, 4); }
        f->acc[ix] += scale * (double)v;
    }
}

/* every rank's payloads to every rank; f->rec[k] points at client k's record */
static sdl_result sdl__fed_exchange(sdl_fed *f, int send_bytes) {
    double ts = sdl__mpi_now_us();
    SDL__MPI_TRY(MPI_Allgather(&send_bytes, 1, MPI_INT, f->counts, 1, MPI_INT, f->comm), "MPI_Allgather (fed sizes)");
    int total = 0;
    for (int r = 0; r < f->size; r++) f->displs[r] = total, total += f->counts[r];
    if (total > f->nchosen * f->rec_bytes) return sdl_fail(SDL_ERR_COMM, "sdl_fed_round: the ranks sent %d bytes, more than the round's clients", total);
    SDL__MPI_TRY(MPI_Allgatherv(f->send, send_bytes, MPI_BYTE, f->recv, f->counts, f->displs, MPI_BYTE, f->comm), "MPI_Allgatherv (fed updates)");
    sdl__mpi_event_add("fed updates", ts, sdl__mpi_now_us() - ts, 1);
    for (int k = 0; k < f->d.clients; k++) f->rec[k] = NULL;
    for (const char *p = f->recv; p < f->recv + total; p += f->rec_bytes) {
        sdl__fed_hdr h;
        memcpy(&h, p, sizeof h);
        if (h.client < 0 || h.client >= f->d.clients) return sdl_fail(SDL_ERR_COMM, "sdl_fed_round: a record names client %lld", (long long)h.client);
        f->rec[h.client] = p;
    }
    return SDL_OK;
}

SDL_API sdl_result sdl_fed_round(sdl_fed *f, sdl_fed_stats *stats) {
    if (!f) return sdl_fail(SDL_ERR_ARG, "sdl_fed_round: NULL");
    if (f->comm == sdl__mpi.comm) sdl_mpi_check("fed round", f->round); /* every rank in the same round */
    float *w = f->d.model->param_data;
    size_t bytes = (size_t)f->P * sizeof(float);
    memcpy(f->global, w, bytes);
    sdl__fed_choose(f);
    sdl_result r = SDL_OK, all;
    char *p = f->send;
    for (int i = 0; i < f->nchosen && r == SDL_OK; i++) {
        int k = f->chosen[i];
        if (k % f->size != f->rank) continue;
        sdl__fed_hdr h;
        double ts = sdl__mpi_now_us();
        r = sdl__fed_train(f, k, &h);
        sdl__mpi_event_add("client update", ts, sdl__mpi_now_us() - ts, 0);
        if (r == SDL_OK) p += sdl__fed_encode(f, k, &h, p);
        memcpy(w, f->global, bytes);
    }
    /* every rank learns whether one failed before they exchange */
    int bad = r != SDL_OK;
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, f->comm), "MPI_Allreduce (fed status)");
    if (bad) return r != SDL_OK ? r : sdl_fail(SDL_ERR_COMM, "sdl_fed_round: a client failed on another rank");
    if ((all = sdl__fed_exchange(f, (int)(p - f->send))) != SDL_OK) return all;
    sdl_fed_stats st;
    memset(&st, 0, sizeof st);
    int64_t batches = 0;
    double loss = 0.0;
    for (int i = 0; i < f->nchosen; i++) {
        sdl__fed_hdr h;
        if (!f->rec[f->chosen[i]]) return sdl_fail(SDL_ERR_COMM, "sdl_fed_round: no update from client %d", f->chosen[i]);
        memcpy(&h, f->rec[f->chosen[i]], sizeof h);
        st.samples += h.samples;
        batches += h.batches;
        loss += h.loss_sum;
        st.bytes += (int64_t)sizeof h + (f->d.compress == SDL_FED_TOPK ? 8 * h.nvals : f->rec_bytes - (int64_t)sizeof h);
        st.bytes_dense += (int64_t)sizeof h + 4 * f->P;
    }
    /* w += sum_k (n_k / n) d_k, in client order: the same bits on any number of ranks */
    memset(f->acc, 0, (size_t)f->P * sizeof(double));
    for (int i = 0; i < f->nchosen && st.samples > 0; i++) {
        sdl__fed_hdr h;
        memcpy(&h, f->rec[f->chosen[i]], sizeof h);
        sdl__fed_decode_add(f, f->rec[f->chosen[i]], (double)h.samples / (double)st.samples);
    }
    for (int64_t i = 0; i < f->P; i++) w[i] = (float)((double)f->global[i] + f->acc[i]);
    f->round++;
    st.round = f->round;
    st.clients = f->nchosen;
    st.train_loss = batches ? loss / (double)batches : 0.0;
    if (stats) *stats = st;
    return SDL_OK;
}

/* ----------------------------------------------------------------------------------------
   >>mpi-pipe: pipeline parallelism (see >>decl-mpi-pipe)
   ---------------------------------------------------------------------------------------- */
struct sdl_pipe {
    sdl_pipe_desc d;
    MPI_Comm comm, data;
    int stage, S, first, end, data_size;
    sdl_module *seq;                /* this stage's children of the sequential */
    sdl_shape in_shape, out_shape;  /* per sample: the activation received, sent */
    int64_t in_numel, out_numel, act_numel;
    int *ops;                       /* this stage's schedule, 2M entries */
};

SDL_API sdl_result sdl_pipe_schedule_ops(sdl_pipe_schedule sch, int stages, int stage, int micro_batches, int *ops) {
    if (stages < 1 || stage < 0 || stage >= stages || micro_batches < 1 || !ops)
        return sdl_fail(SDL_ERR_ARG, "sdl_pipe_schedule_ops: stage %d of %d, %d micro-batches", stage, stages, micro_batches);
    int M = micro_batches, n = 0, f = 0, b = 0;
    if (sch == SDL_PIPE_GPIPE) {
        for (int m = 0; m < M; m++) ops[n++] = m + 1;
        for (int m = 0; m < M; m++) ops[n++] = -(m + 1);
        return SDL_OK;
    }
    if (sch != SDL_PIPE_1F1B) return sdl_fail(SDL_ERR_ARG, "sdl_pipe_schedule_ops: unknown schedule %d", (int)sch);
    int warm = stages - 1 - stage < M ? stages - 1 - stage : M; /* forwards before the first backward */
    for (; f < warm; f++) ops[n++] = f + 1;
    for (; f < M; f++, b++) ops[n++] = f + 1, ops[n++] = -(b + 1);
    for (; b < M; b++) ops[n++] = -(b + 1);
    return SDL_OK;
}

SDL_API sdl_result sdl_pipe_simulate(sdl_pipe_schedule sch, int stages, int micro_batches, double t_fwd, double t_bwd,
                                     double *idle, int *peak) {
    int S = stages, M = micro_batches;
    if (S < 1 || M < 1 || !(t_fwd > 0) || !(t_bwd > 0))
        return sdl_fail(SDL_ERR_ARG, "sdl_pipe_simulate: %d stages, %d micro-batches, times %g %g", S, M, t_fwd, t_bwd);
    int *ops = (int *)sdl__mpi_alloc((size_t)S * 2 * (size_t)M, sizeof(int)), *pos = (int *)sdl__mpi_alloc((size_t)S, sizeof(int));
    int *held = (int *)sdl__mpi_alloc((size_t)S, sizeof(int)), *most = (int *)sdl__mpi_alloc((size_t)S, sizeof(int));
    double *fend = (double *)sdl__mpi_alloc((size_t)S * (size_t)M, sizeof(double)), *bend = (double *)sdl__mpi_alloc((size_t)S * (size_t)M, sizeof(double));
    double *free_at = (double *)sdl__mpi_alloc((size_t)S, sizeof(double));
    sdl_result r = ops && pos && held && most && fend && bend && free_at ? SDL_OK : SDL_ERR_OOM;
    for (int s = 0; r == SDL_OK && s < S; s++) r = sdl_pipe_schedule_ops(sch, S, s, M, ops + (size_t)s * 2 * (size_t)M);
    for (int i = 0; r == SDL_OK && i < S * M; i++) fend[i] = bend[i] = -1.0; /* not run yet */
    for (int left = S * 2 * M; r == SDL_OK && left > 0;) {
        int ran = 0;
        for (int s = 0; s < S; s++)
            while (pos[s] < 2 * M) { /* run stage s's next op once what it needs is done */
                int op = ops[(size_t)s * 2 * (size_t)M + (size_t)pos[s]], m = (op > 0 ? op : -op) - 1;
                double ready = op > 0 ? (s == 0 ? 0.0 : fend[(s - 1) * M + m]) : (s == S - 1 ? fend[s * M + m] : bend[(s + 1) * M + m]);
                if (ready < 0) break;
                double start = ready > free_at[s] ? ready : free_at[s];
                free_at[s] = start + (op > 0 ? t_fwd : t_bwd);
                (op > 0 ? fend : bend)[s * M + m] = free_at[s];
                held[s] += op > 0 ? 1 : -1;
                most[s] = held[s] > most[s] ? held[s] : most[s];
                pos[s]++, left--, ran++;
            }
        if (!ran) r = sdl_fail(SDL_ERR_STATE, "sdl_pipe_simulate: the schedule deadlocks");
    }
    double T = 0;
    for (int s = 0; s < S && r == SDL_OK; s++) T = free_at[s] > T ? free_at[s] : T;
    for (int s = 0; s < S && r == SDL_OK; s++) {
        if (idle) idle[s] = 1.0 - (double)M * (t_fwd + t_bwd) / T;
        if (peak) peak[s] = most[s];
    }
    void *bufs[] = {ops, pos, held, most, fend, bend, free_at};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) SDL__MPI_FREE(bufs[i]);
    return r;
}

SDL_API sdl_result sdl_mpi_grid(int stages, MPI_Comm *pipe_comm, MPI_Comm *data_comm) {
    sdl_result r = sdl__mpi_need_init("sdl_mpi_grid");
    if (r != SDL_OK) return r;
    if (!pipe_comm || !data_comm) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_grid: NULL communicator");
    if (stages < 1 || sdl__mpi.size % stages) return sdl_fail(SDL_ERR_ARG, "sdl_mpi_grid: %d ranks do not split into pipelines of %d stages", sdl__mpi.size, stages);
    sdl_mpi_check("grid", stages);
    int rank = sdl__mpi.rank;
    SDL__MPI_TRY(MPI_Comm_split(sdl__mpi.comm, rank / stages, rank % stages, pipe_comm), "MPI_Comm_split (pipeline)");
    SDL__MPI_TRY(MPI_Comm_split(sdl__mpi.comm, rank % stages, rank / stages, data_comm), "MPI_Comm_split (data)");
    return SDL_OK;
}

SDL_API int sdl_pipe_stage(const sdl_pipe *p, int *first, int *end) {
    if (first) *first = p ? p->first : 0;
    if (end) *end = p ? p->end : 0;
    return p ? p->stage : -1;
}

SDL_API void sdl_pipe_free(sdl_pipe *p) {
    if (!p) return;
    SDL__MPI_FREE(p->ops);
    SDL__MPI_FREE(p);
}

/* own[i] = 1 for the parameters of l and of its children, recursively */
static void sdl__pipe_mark(const sdl_module *l, int *own) {
    if (l->weight && l->weight->param_index >= 0) own[l->weight->param_index] = 1;
    if (l->bias && l->bias->param_index >= 0) own[l->bias->param_index] = 1;
    for (int i = 0; i < l->nchildren; i++) sdl__pipe_mark(l->children[i], own);
}

SDL_API sdl_result sdl_pipe_gather_params(sdl_pipe *p) {
    if (!p) return sdl_fail(SDL_ERR_ARG, "sdl_pipe_gather_params: NULL pipe");
    sdl_model *m = p->d.net->model;
    int np = m->nparams;
    int *own = (int *)sdl__mpi_alloc((size_t)np + 1, sizeof(int)), *owners = (int *)sdl__mpi_alloc((size_t)np + 1, sizeof(int));
    float *sum = (float *)sdl__mpi_alloc((size_t)m->param_floats + 1, sizeof(float));
    sdl_result r = own && owners && sum ? SDL_OK : SDL_ERR_OOM;
    if (r == SDL_OK) {
        sdl__pipe_mark(p->seq, own);
        for (int i = 0; i < np; i++) /* mine, or zeros: the sum over stages is the owner's */
            if (own[i]) memcpy(sum + m->param_offset[i], m->params[i]->data, (size_t)m->params[i]->numel * sizeof(float));
        if (MPI_Allreduce(own, owners, np, MPI_INT, MPI_SUM, p->comm) != MPI_SUCCESS ||
            MPI_Allreduce(MPI_IN_PLACE, sum, (int)m->param_floats, MPI_FLOAT, MPI_SUM, p->comm) != MPI_SUCCESS)
            r = sdl_fail(SDL_ERR_COMM, "sdl_pipe_gather_params: MPI_Allreduce failed");
    }
    for (int i = 0; r == SDL_OK && i < np; i++) /* parameters no stage's layers hold stay as they are */
        if (owners[i] == 1) memcpy(m->params[i]->data, sum + m->param_offset[i], (size_t)m->params[i]->numel * sizeof(float));
    SDL__MPI_FREE(own);
    SDL__MPI_FREE(owners);
    SDL__MPI_FREE(sum);
    return r;
}

/* counted work of one child for one sample: 2 x weight size x output positions for linear
   and conv layers (a multiply-add each), else one per output element */
static int64_t sdl__pipe_flops(const sdl_module *c, const sdl_tensor *y) {
    bool mm = c->weight && (!strcmp(c->kind, "linear") || !strcmp(c->kind, "conv2d"));
    return mm ? 2 * c->weight->numel * (y->numel / c->weight->shape[0]) : y->numel;
}

/* every child run once on one zero sample (no gradients, eval mode): the per-sample shapes
   between them and their counted FLOPs */
static sdl_result sdl__pipe_probe(const sdl_pipe *p, sdl_shape *shapes, int64_t *flops) {
    sdl_module *net = p->d.net;
    sdl_shape s = p->d.sample;
    s.ndim++;
    for (int i = s.ndim - 1; i > 0; i--) s.d[i] = s.d[i - 1];
    s.d[0] = 1;
    bool grad = sdl_is_grad_enabled(), training = net->model->training;
    sdl_set_grad_enabled(false);
    sdl_model_train(net->model, false);
    sdl_tensor *x = sdl_arena_tensor(s, SDL_F32);
    for (int i = 0; i < net->nchildren && x; i++) {
        sdl_module *c = net->children[i];
        if (!(x = c->forward(c, x))) break;
        shapes[i].ndim = x->ndim - 1;
        for (int k = 1; k < x->ndim; k++) shapes[i].d[k - 1] = x->shape[k];
        flops[i] = sdl__pipe_flops(c, x);
    }
    sdl_set_grad_enabled(grad);
    sdl_model_train(net->model, training);
    if (x) return SDL_OK;
    char why[512]; /* sdl_fail formats into the buffer sdl_last_error() returns */
    snprintf(why, sizeof why, "%s", sdl_last_error());
    return sdl_fail(sdl_last_result(), "sdl_pipe_new: a sample of the given shape does not pass the net: %s", why);
}

/* starts[s]: the first child of stage s; starts[S] = n. Balanced: stage s starts where the
   counted FLOPs before it come nearest s/S of the total. */
static sdl_result sdl__pipe_cuts(const sdl_pipe *p, const int64_t *flops, int n, int *starts) {
    int S = p->S;
    starts[0] = 0, starts[S] = n;
    if (p->d.cuts) {
        for (int s = 1; s < S; s++) starts[s] = p->d.cuts[s - 1];
        for (int s = 0; s < S; s++)
            if (starts[s + 1] <= starts[s])
                return sdl_fail(SDL_ERR_ARG, "sdl_pipe_new: cuts must rise from 1 to at most %d (stage %d would get children %d..%d)",
                                n - 1, s, starts[s], starts[s + 1] - 1);
        return SDL_OK;
    }
    double total = 0, before = 0;
    for (int i = 0; i < n; i++) total += (double)flops[i];
    for (int s = 1, i = 0; s < S; s++) {
        double target = total * s / S;
        while (i < n && before + (double)flops[i] / 2 < target) before += (double)flops[i++]; /* nearest cut */
        int c = i, lo = starts[s - 1] + 1, hi = n - (S - s);
        starts[s] = c < lo ? lo : c > hi ? hi : c;
        for (; i < starts[s]; i++) before += (double)flops[i];
        for (; i > starts[s]; i--) before -= (double)flops[i - 1];
    }
    return SDL_OK;
}

static sdl_result sdl__pipe_setup(sdl_pipe *p) {
    sdl_module *net = p->d.net;
    int n = net->nchildren;
    sdl_shape *shapes = (sdl_shape *)sdl__mpi_alloc((size_t)n, sizeof(sdl_shape));
    int64_t *flops = (int64_t *)sdl__mpi_alloc((size_t)n, sizeof(int64_t));
    int *starts = (int *)sdl__mpi_alloc((size_t)p->S + 1, sizeof(int));
    sdl_result r = shapes && flops && starts ? sdl__pipe_probe(p, shapes, flops) : SDL_ERR_OOM;
    if (r == SDL_OK) r = sdl__pipe_cuts(p, flops, n, starts);
    if (r == SDL_OK) {
        p->first = starts[p->stage], p->end = starts[p->stage + 1];
        p->seq = sdl_sequential(net->model, net->name);
        for (int i = p->first; i < p->end && p->seq; i++) sdl_seq_add(p->seq, net->children[i]);
        p->in_shape = p->stage == 0 ? p->d.sample : shapes[p->first - 1];
        p->out_shape = shapes[p->end - 1];
        p->in_numel = p->out_numel = 1;
        for (int k = 0; k < p->in_shape.ndim; k++) p->in_numel *= p->in_shape.d[k];
        for (int k = 0; k < p->out_shape.ndim; k++) p->out_numel *= p->out_shape.d[k];
        for (int i = p->first; i < p->end; i++) {
            int64_t e = 1;
            for (int k = 0; k < shapes[i].ndim; k++) e *= shapes[i].d[k];
            p->act_numel += e;
        }
        if (!p->seq) r = sdl_last_result();
    }
    SDL__MPI_FREE(shapes);
    SDL__MPI_FREE(flops);
    SDL__MPI_FREE(starts);
    return r;
}

SDL_API sdl_pipe *sdl_pipe_new(const sdl_pipe_desc *desc) {
    if (sdl__mpi_need_init("sdl_pipe_new") != SDL_OK) return NULL;
    const char *bad = !desc ? "NULL desc" : !desc->net ? "NULL net" : !desc->net->children || !desc->net->nchildren ? "net is not a sequential (no children)" : NULL;
    if (!bad && (desc->sample.ndim < 1 || desc->sample.ndim >= SDL_MAX_DIMS)) bad = "sample shape needs 1 to SDL_MAX_DIMS - 1 dims";
    if (!bad && (desc->micro_batches < 0 || desc->micro_batches > 16383)) bad = "micro_batches outside 0..16383";
    if (!bad && (desc->schedule < SDL_PIPE_1F1B || desc->schedule > SDL_PIPE_GPIPE)) bad = "unknown schedule";
    if (!bad && desc->net->model->nparams && desc->net->model->params[0]->device != SDL_CPU) bad = "a CPU model only";
    if (bad) { sdl_fail(SDL_ERR_ARG, "sdl_pipe_new: %s", bad); return NULL; }
    sdl_pipe *p = (sdl_pipe *)sdl__mpi_alloc(1, sizeof(sdl_pipe));
    if (!p) return NULL;
    p->d = *desc;
    if (!p->d.micro_batches) p->d.micro_batches = 1;
    p->comm = desc->comm == (MPI_Comm)0 ? sdl__mpi.comm : desc->comm;
    p->data = desc->data_comm == (MPI_Comm)0 ? MPI_COMM_NULL : desc->data_comm;
    MPI_Comm_rank(p->comm, &p->stage);
    MPI_Comm_size(p->comm, &p->S);
    p->data_size = 1;
    if (p->data != MPI_COMM_NULL) MPI_Comm_size(p->data, &p->data_size);
    if (desc->net->nchildren < p->S) {
        sdl_fail(SDL_ERR_ARG, "sdl_pipe_new: %d children cannot make %d stages", desc->net->nchildren, p->S);
        sdl_pipe_free(p);
        return NULL;
    }
    p->ops = (int *)sdl__mpi_alloc(2 * (size_t)p->d.micro_batches, sizeof(int));
    if (!p->ops || sdl__pipe_setup(p) != SDL_OK ||
        sdl_pipe_schedule_ops(p->d.schedule, p->S, p->stage, p->d.micro_batches, p->ops) != SDL_OK) {
        sdl_pipe_free(p);
        return NULL;
    }
    return p;
}

/* rows [m * rows, (m + 1) * rows) of t as a new arena tensor */
static sdl_tensor *sdl__pipe_slice(const sdl_tensor *t, int64_t m, int64_t rows) {
    sdl_shape s = sdl_tensor_shape(t);
    s.d[0] = rows;
    sdl_tensor *r = sdl_arena_tensor(s, t->dtype);
    if (!r) return NULL;
    size_t bytes = (size_t)r->numel * sdl_dtype_size(t->dtype);
    memcpy(r->data, (const char *)t->data + (size_t)m * bytes, bytes);
    return r;
}

/* (rows, per-sample shape) */
static sdl_shape sdl__pipe_rows(sdl_shape per, int64_t rows) {
    sdl_shape s;
    s.ndim = per.ndim + 1;
    s.d[0] = rows;
    for (int k = 0; k < per.ndim; k++) s.d[k + 1] = per.d[k];
    return s;
}

/* the batch size from stage 0, checked by every stage before any message: all go on or
   all return the error */
static sdl_result sdl__pipe_agree(sdl_pipe *p, const sdl_tensor *x, const sdl_tensor *y, int64_t *batch) {
    bool first = p->stage == 0, last = p->stage == p->S - 1;
    int64_t info[3] = {0, 0, 0}; /* batch (stage 0), failed, target rows (last stage) */
    if (first && (!x || x->ndim != p->d.sample.ndim + 1 || x->numel != x->shape[0] * p->in_numel || x->dtype != SDL_F32))
        info[1] = 1, sdl_fail(SDL_ERR_SHAPE, "sdl_pipe_step: stage 0 needs x f32 (batch, sample shape)");
    else if (first && (x->shape[0] < p->d.micro_batches || x->shape[0] % p->d.micro_batches))
        info[1] = 1, sdl_fail(SDL_ERR_SHAPE, "sdl_pipe_step: batch %lld does not split into %d micro-batches", (long long)x->shape[0], p->d.micro_batches);
    else if (first)
        info[0] = x->shape[0];
    if (last && !y) info[1] = 1, sdl_fail(SDL_ERR_ARG, "sdl_pipe_step: the last stage needs the targets y");
    else if (last) info[2] = y->shape[0];
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, info, 3, MPI_INT64_T, MPI_MAX, p->comm), "MPI_Allreduce (pipeline batch)");
    if (info[1]) return sdl_last_result() != SDL_OK ? sdl_last_result() : sdl_fail(SDL_ERR_ARG, "sdl_pipe_step: another stage's input is bad");
    if (info[0] != info[2]) return sdl_fail(SDL_ERR_SHAPE, "sdl_pipe_step: %lld inputs but %lld targets", (long long)info[0], (long long)info[2]);
    *batch = info[0];
    return SDL_OK;
}

static double sdl__pipe_wait(MPI_Request *rq, const char *what) {
    double t = sdl__mpi_now_us();
    MPI_Wait(rq, MPI_STATUS_IGNORE);
    sdl__mpi_event_add(what, t, sdl__mpi_now_us() - t, 1);
    return t;
}

/* one step's state, in the arena */
typedef struct sdl__pipe_run {
    sdl_tensor **in, **root; /* per micro-batch: the stage's input, its output (loss) */
    float **gout;            /* per micro-batch: the gradient of the output, received */
    MPI_Request *rq;         /* M act receives, M grad receives, M act sends, M grad sends */
    int64_t rows, bytes_sent;
    double busy, loss;
    int held, peak;
} sdl__pipe_run;

static sdl_result sdl__pipe_fwd(sdl_pipe *p, sdl__pipe_run *st, int m, sdl_tensor *x, sdl_tensor *y) {
    int M = p->d.micro_batches, s = p->stage;
    bool last = s == p->S - 1;
    if (s > 0) sdl__pipe_wait(&st->rq[m], "wait activation");
    double t = sdl__mpi_now_us();
    sdl_tensor *in = s == 0 ? sdl__pipe_slice(x, m, st->rows) : st->in[m];
    sdl_tensor *out = sdl_forward(p->seq, in);
    if (!out) return sdl_last_result();
    if (out->numel != st->rows * p->out_numel) return sdl_fail(SDL_ERR_SHAPE, "sdl_pipe_step: stage %d's output changed shape", s);
    if (last) {
        sdl_tensor *ym = sdl__pipe_slice(y, m, st->rows);
        out = p->d.loss ? p->d.loss(p->d.user, out, ym) : sdl_cross_entropy(out, ym, 0.0f);
        if (!out) return sdl_last_result();
        st->loss += sdl_item(out) / M;
    } else {
        SDL__MPI_TRY(MPI_Isend(out->data, (int)out->numel, MPI_FLOAT, s + 1, 2 * m, p->comm, &st->rq[2 * M + m]), "MPI_Isend (activation)");
        st->bytes_sent += out->numel * 4;
    }
    st->in[m] = in;
    st->root[m] = out;
    if (++st->held > st->peak) st->peak = st->held;
    char name[16];
    snprintf(name, sizeof name, "F%d", m);
    sdl__mpi_event_add(name, t, sdl__mpi_now_us() - t, 0);
    st->busy += sdl__mpi_now_us() - t;
    return SDL_OK;
}

static sdl_result sdl__pipe_bwd(sdl_pipe *p, sdl__pipe_run *st, int m) {
    int M = p->d.micro_batches, s = p->stage;
    bool last = s == p->S - 1;
    if (!last) sdl__pipe_wait(&st->rq[M + m], "wait gradient");
    double t = sdl__mpi_now_us();
    float inv = 1.0f / (float)M; /* the batch's loss is the mean of the micro-batches' */
    bool nothing = s == 0 && !st->root[m]->requires_grad; /* a first stage without parameters */
    sdl_result r = nothing ? SDL_OK : sdl_backward_grad(st->root[m], last ? &inv : st->gout[m]);
    if (r != SDL_OK) return r;
    if (s > 0) {
        sdl_tensor *in = st->in[m];
        if (!in->grad) return sdl_fail(SDL_ERR_STATE, "sdl_pipe_step: stage %d's input got no gradient", s);
        SDL__MPI_TRY(MPI_Isend(in->grad, (int)in->numel, MPI_FLOAT, s - 1, 2 * m + 1, p->comm, &st->rq[3 * M + m]), "MPI_Isend (gradient)");
        st->bytes_sent += in->numel * 4;
    }
    st->held--;
    char name[16];
    snprintf(name, sizeof name, "B%d", m);
    sdl__mpi_event_add(name, t, sdl__mpi_now_us() - t, 0);
    st->busy += sdl__mpi_now_us() - t;
    return SDL_OK;
}

/* receives for every micro-batch, posted before the first forward */
static sdl_result sdl__pipe_post(sdl_pipe *p, sdl__pipe_run *st) {
    int M = p->d.micro_batches, s = p->stage;
    for (int m = 0; m < M; m++) {
        if (s > 0) {
            if (!(st->in[m] = sdl_arena_tensor(sdl__pipe_rows(p->in_shape, st->rows), SDL_F32))) return sdl_last_result();
            st->in[m]->requires_grad = true; /* a leaf: backward leaves its gradient to send back */
            SDL__MPI_TRY(MPI_Irecv(st->in[m]->data, (int)st->in[m]->numel, MPI_FLOAT, s - 1, 2 * m, p->comm, &st->rq[m]), "MPI_Irecv (activation)");
        }
        if (s < p->S - 1) {
            if (!(st->gout[m] = (float *)sdl_arena_alloc((size_t)(st->rows * p->out_numel) * sizeof(float)))) return sdl_last_result();
            SDL__MPI_TRY(MPI_Irecv(st->gout[m], (int)(st->rows * p->out_numel), MPI_FLOAT, s + 1, 2 * m + 1, p->comm, &st->rq[M + m]), "MPI_Irecv (gradient)");
        }
    }
    return SDL_OK;
}

SDL_API sdl_result sdl_pipe_step(sdl_pipe *p, sdl_tensor *x, sdl_tensor *y, sdl_pipe_stats *stats) {
    if (!p) return sdl_fail(SDL_ERR_ARG, "sdl_pipe_step: NULL pipe");
    double t0 = sdl__mpi_now_us();
    if (p->comm == sdl__mpi.comm) sdl_mpi_check("pipe step", p->d.micro_batches); /* on sdl's own ranks */
    int64_t batch = 0;
    sdl_result r = sdl__pipe_agree(p, x, y, &batch);
    if (r != SDL_OK) return r;
    int M = p->d.micro_batches;
    sdl__pipe_run st;
    memset(&st, 0, sizeof st);
    st.rows = batch / M;
    st.in = (sdl_tensor **)sdl_arena_alloc((size_t)M * sizeof(sdl_tensor *));
    st.root = (sdl_tensor **)sdl_arena_alloc((size_t)M * sizeof(sdl_tensor *));
    st.gout = (float **)sdl_arena_alloc((size_t)M * sizeof(float *));
    st.rq = (MPI_Request *)sdl_arena_alloc(4 * (size_t)M * sizeof(MPI_Request));
    if (!st.in || !st.root || !st.gout || !st.rq) return sdl_last_result();
    for (int i = 0; i < 4 * M; i++) st.rq[i] = MPI_REQUEST_NULL;
    r = sdl__pipe_post(p, &st);
    for (int i = 0; i < 2 * M && r == SDL_OK; i++)
        r = p->ops[i] > 0 ? sdl__pipe_fwd(p, &st, p->ops[i] - 1, x, y) : sdl__pipe_bwd(p, &st, -p->ops[i] - 1);
    if (r != SDL_OK) return r; /* the other stages wait for this one: end the job (MPI cannot cancel) */
    double tw = sdl__mpi_now_us();
    SDL__MPI_TRY(MPI_Waitall(2 * M, st.rq + 2 * M, MPI_STATUSES_IGNORE), "MPI_Waitall (pipeline sends)");
    sdl__mpi_event_add("wait sends", tw, sdl__mpi_now_us() - tw, 1);
    SDL__MPI_TRY(MPI_Bcast(&st.loss, 1, MPI_DOUBLE, p->S - 1, p->comm), "MPI_Bcast (pipeline loss)");
    if (p->data != MPI_COMM_NULL && p->data_size > 1) { /* pipeline x data: the mean over the pipelines */
        sdl_model *m = p->d.net->model;
        double ta = sdl__mpi_now_us();
        SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, m->grad_data, (int)m->param_floats, MPI_FLOAT, MPI_SUM, p->data), "MPI_Allreduce (pipeline data)");
        SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &st.loss, 1, MPI_DOUBLE, MPI_SUM, p->data), "MPI_Allreduce (pipeline loss)");
        sdl_grad_scale(m, 1.0f / (float)p->data_size);
        st.loss /= p->data_size;
        sdl__mpi_event_add("allreduce data", ta, sdl__mpi_now_us() - ta, 1);
    }
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->loss = st.loss;
        stats->step_s = (sdl__mpi_now_us() - t0) * 1e-6;
        stats->busy_s = st.busy * 1e-6;
        stats->idle = stats->step_s > 0 ? 1.0 - stats->busy_s / stats->step_s : 0.0;
        stats->peak_in_flight = st.peak;
        stats->act_bytes = p->act_numel * st.rows * 4;
        stats->bytes_sent = st.bytes_sent;
    }
    return SDL_OK;
}

/* ----------------------------------------------------------------------------------------
   >>mpi-tp: tensor parallelism (see >>decl-mpi-tp). f, g and the gather are user-defined
   ops (sdl_function) whose forward or backward runs the collective.
   ---------------------------------------------------------------------------------------- */
struct sdl_tp {
    MPI_Comm comm;
    int rank, size;
    int64_t bytes;
};

SDL_API sdl_tp *sdl_tp_new(MPI_Comm comm) {
    if (sdl__mpi_need_init("sdl_tp_new") != SDL_OK) return NULL;
    sdl_tp *tp = (sdl_tp *)sdl__mpi_alloc(1, sizeof(sdl_tp));
    if (!tp) return NULL;
    tp->comm = comm == (MPI_Comm)0 ? sdl__mpi.comm : comm;
    MPI_Comm_rank(tp->comm, &tp->rank);
    MPI_Comm_size(tp->comm, &tp->size);
    return tp;
}
SDL_API int sdl_tp_rank(const sdl_tp *tp) { return tp ? tp->rank : 0; }
SDL_API int sdl_tp_size(const sdl_tp *tp) { return tp ? tp->size : 1; }
SDL_API int64_t sdl_tp_bytes(const sdl_tp *tp) { return tp ? tp->bytes : 0; }
SDL_API void sdl_tp_free(sdl_tp *tp) { SDL__MPI_FREE(tp); }

/* sum over the group in place */
static sdl_result sdl__tp_allreduce(sdl_tp *tp, float *x, int64_t n) {
    if (n > INT_MAX) return sdl_fail(SDL_ERR_ARG, "sdl_tp: %lld floats in one all-reduce", (long long)n);
    double t = sdl__mpi_now_us();
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, tp->comm), "MPI_Allreduce (tensor parallel)");
    sdl__mpi_event_add("tp allreduce", t, sdl__mpi_now_us() - t, 1);
    tp->bytes += n * 4;
    return SDL_OK;
}

static void sdl__tp_add(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* f: y = x;  dx += allreduce(dy) */
static sdl_result sdl__tp_copy_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx, (void)nin;
    memcpy(out->data, in[0]->data, (size_t)out->numel * sizeof(float));
    return SDL_OK;
}
static sdl_result sdl__tp_copy_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    sdl_result r = sdl__tp_allreduce((sdl_tp *)ctx, out->grad, out->numel); /* out's gradient is read no more */
    if (r == SDL_OK && in[0]->grad) sdl__tp_add(in[0]->grad, out->grad, out->numel);
    return r;
}
/* g: y = allreduce(x);  dx += dy */
static sdl_result sdl__tp_reduce_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    memcpy(out->data, in[0]->data, (size_t)out->numel * sizeof(float));
    return sdl__tp_allreduce((sdl_tp *)ctx, sdl_f32(out), out->numel);
}
static sdl_result sdl__tp_reduce_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)ctx, (void)nin;
    if (in[0]->grad) sdl__tp_add(in[0]->grad, out->grad, out->numel);
    return SDL_OK;
}
/* gather: x (R, c) -> y (R, T c), y[r, t c + j] = x_t[r, j];  dx[r, j] += dy[r, rank c + j] */
static sdl_result sdl__tp_gather_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    sdl_tp *tp = (sdl_tp *)ctx;
    int64_t n = in[0]->numel, c = in[0]->shape[in[0]->ndim - 1], R = c ? n / c : 0;
    float *all = (float *)sdl_arena_alloc((size_t)out->numel * sizeof(float)); /* rank-major */
    if (!all) return sdl_last_result();
    if (n > INT_MAX) return sdl_fail(SDL_ERR_ARG, "sdl_tp_gather: %lld floats", (long long)n);
    double t = sdl__mpi_now_us();
    SDL__MPI_TRY(MPI_Allgather(in[0]->data, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, tp->comm), "MPI_Allgather (tensor parallel)");
    sdl__mpi_event_add("tp allgather", t, sdl__mpi_now_us() - t, 1);
    tp->bytes += out->numel * 4;
    for (int r = 0; r < tp->size; r++)
        for (int64_t i = 0; i < R; i++) memcpy(sdl_f32(out) + i * c * tp->size + r * c, all + r * n + i * c, (size_t)c * sizeof(float));
    return SDL_OK;
}
static sdl_result sdl__tp_gather_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    sdl_tp *tp = (sdl_tp *)ctx;
    int64_t c = in[0]->shape[in[0]->ndim - 1], R = c ? in[0]->numel / c : 0;
    for (int64_t i = 0; in[0]->grad && i < R; i++) sdl__tp_add(in[0]->grad + i * c, out->grad + i * c * tp->size + tp->rank * c, c);
    return SDL_OK;
}

static const sdl_function sdl__tp_copy_fn = {"tp_copy", sdl__tp_copy_fwd, sdl__tp_copy_bwd};
static const sdl_function sdl__tp_reduce_fn = {"tp_reduce", sdl__tp_reduce_fwd, sdl__tp_reduce_bwd};
static const sdl_function sdl__tp_gather_fn = {"tp_gather", sdl__tp_gather_fwd, sdl__tp_gather_bwd};

static sdl_tensor *sdl__tp_apply(const sdl_function *fn, sdl_tp *tp, sdl_tensor *x, int64_t widen) {
    if (!x) return NULL;
    if (!tp) { sdl_fail(SDL_ERR_ARG, "sdl_%s: NULL group", fn->name); return NULL; }
    if (x->dtype != SDL_F32 || x->ndim < 1) { sdl_fail(SDL_ERR_ARG, "sdl_%s: needs an f32 tensor with a last dim", fn->name); return NULL; }
    sdl_shape s = sdl_tensor_shape(x);
    s.d[s.ndim - 1] *= widen;
    return sdl_function_apply(fn, s, 1, &x, tp);
}
SDL_API sdl_tensor *sdl_tp_copy(sdl_tp *tp, sdl_tensor *x) { return sdl__tp_apply(&sdl__tp_copy_fn, tp, x, 1); }
SDL_API sdl_tensor *sdl_tp_reduce(sdl_tp *tp, sdl_tensor *x) { return sdl__tp_apply(&sdl__tp_reduce_fn, tp, x, 1); }
SDL_API sdl_tensor *sdl_tp_gather(sdl_tp *tp, sdl_tensor *x) { return sdl__tp_apply(&sdl__tp_gather_fn, tp, x, tp ? tp->size : 1); }

/* ---- layers. A split linear draws the whole (out, in) weight and (out) bias as
   sdl_linear_layer does (same RNG sequence), then keeps its slice. */
static sdl_result sdl__tp_linear_params(sdl_module *l, sdl_tp *tp, int64_t in, int64_t out, bool bias, bool by_rows) {
    int64_t T = tp->size, r = tp->rank, o = by_rows ? out / T : out, i = by_rows ? in : in / T;
    char full[96];
    sdl_tensor *w = sdl_tensor_new(sdl_shape2(out, in), SDL_F32), *b = bias ? sdl_tensor_new(sdl_shape1(out), SDL_F32) : NULL;
    sdl_result res = w && (b || !bias) ? SDL_OK : SDL_ERR_OOM;
    if (res == SDL_OK) {
        sdl_init_kaiming_uniform(w, sqrtf(5.0f), in);
        if (b) sdl_init_bias(b, in);
        snprintf(full, sizeof full, "%s%sweight", l->name, l->name[0] ? "." : "");
        l->weight = sdl_model_param(l->model, full, sdl_shape2(o, i), true);
        snprintf(full, sizeof full, "%s%sbias", l->name, l->name[0] ? "." : "");
        l->bias = b ? sdl_model_param(l->model, full, sdl_shape1(by_rows ? o : out), false) : NULL;
        if (!l->weight || (b && !l->bias)) res = sdl_last_result();
    }
    for (int64_t row = 0; res == SDL_OK && row < o; row++) /* rows [r o, (r+1) o), or columns [r i, (r+1) i) */
        memcpy(sdl_f32(l->weight) + row * i, sdl_f32(w) + (by_rows ? (r * o + row) * in : row * in + r * i), (size_t)i * sizeof(float));
    if (res == SDL_OK && b) memcpy(l->bias->data, sdl_f32(b) + (by_rows ? r * o : 0), (size_t)l->bias->numel * sizeof(float));
    sdl_tensor_free(w);
    sdl_tensor_free(b);
    return res;
}

static sdl_result sdl__tp_check(const char *what, sdl_model *m, const sdl_tp *tp, int64_t a, int64_t b) {
    if (!m || !tp) return sdl_fail(SDL_ERR_ARG, "%s: NULL %s", what, m ? "group" : "model");
    if (a < 1 || b < 1 || a % tp->size || b % tp->size)
        return sdl_fail(SDL_ERR_SHAPE, "%s: sizes %lld and %lld must be positive and divide by the group's %d ranks", what, (long long)a, (long long)b, tp->size);
    return SDL_OK;
}

/* column: y = f(x) W_r^T + b_r, gathered with .gather (kernel = 1) */
static sdl_tensor *sdl__tp_column_fwd(sdl_module *l, sdl_tensor *x) {
    sdl_tp *tp = (sdl_tp *)l->user;
    sdl_tensor *y = sdl_linear(sdl_tp_copy(tp, x), l->weight, l->bias);
    return l->kernel ? sdl_tp_gather(tp, y) : y;
}
/* row: y = g(x_r W_r^T) + b */
static sdl_tensor *sdl__tp_row_fwd(sdl_module *l, sdl_tensor *x) {
    sdl_tensor *y = sdl_tp_reduce((sdl_tp *)l->user, sdl_linear(x, l->weight, NULL));
    return l->bias ? sdl_add(y, l->bias) : y;
}

static sdl_module *sdl__tp_linear(sdl_model *m, sdl_tp *tp, const char *kind, const char *name, int64_t in, int64_t out, bool bias, bool by_rows) {
    if (sdl__tp_check(kind, m, tp, by_rows ? out : in, by_rows ? out : in) != SDL_OK) return NULL;
    sdl_module *l = sdl_module_new(m, kind, name, by_rows ? sdl__tp_column_fwd : sdl__tp_row_fwd);
    if (!l) return NULL;
    l->user = tp;
    return sdl__tp_linear_params(l, tp, in, out, bias, by_rows) == SDL_OK ? l : NULL;
}
SDL_API sdl_module *sdl_tp_column_linear(sdl_model *m, sdl_tp *tp, const char *name, int64_t in, int64_t out, bool bias, bool gather) {
    sdl_module *l = sdl__tp_linear(m, tp, "tp_column_linear", name, in, out, bias, true);
    if (l) l->kernel = gather;
    return l;
}
SDL_API sdl_module *sdl_tp_row_linear(sdl_model *m, sdl_tp *tp, const char *name, int64_t in, int64_t out, bool bias) {
    return sdl__tp_linear(m, tp, "tp_row_linear", name, in, out, bias, false);
}

/* "name" + ".sub" */
static sdl_module *sdl__tp_child(sdl_module *parent, sdl_tp *tp, const char *sub, int64_t in, int64_t out, bool by_rows) {
    char full[96];
    snprintf(full, sizeof full, "%s%s%s", parent->name, parent->name[0] ? "." : "", sub);
    sdl_module *c = by_rows ? sdl_tp_column_linear(parent->model, tp, full, in, out, true, false)
                            : sdl_tp_row_linear(parent->model, tp, full, in, out, true);
    if (c && sdl_seq_add(parent, c) != SDL_OK) return NULL;
    return c;
}

/* MLP: x (..., C) -> g(gelu(f(x) W1_r^T + b1_r) W2_r^T) + b2 */
static sdl_tensor *sdl__tp_mlp_fwd(sdl_module *l, sdl_tensor *x) {
    sdl_module *fc1 = l->children[0], *fc2 = l->children[1];
    return fc2->forward(fc2, sdl_gelu(fc1->forward(fc1, x)));
}
SDL_API sdl_module *sdl_tp_mlp(sdl_model *m, sdl_tp *tp, const char *name, int64_t dim, int64_t hidden) {
    if (sdl__tp_check("sdl_tp_mlp", m, tp, hidden, hidden) != SDL_OK) return NULL;
    sdl_module *l = sdl_module_new(m, "tp_mlp", name, sdl__tp_mlp_fwd);
    if (!l || !sdl__tp_child(l, tp, "fc1", dim, hidden, true) || !sdl__tp_child(l, tp, "fc2", hidden, dim, false)) return NULL;
    l->user = tp;
    return l;
}

/* attention: x (B, T, C); per rank H/T heads of hd = C/H: q, k, v (B, T, C/T) ->
   (B, H/T, T, hd) -> causal attention -> (B, T, C/T) -> row-parallel projection */
static sdl_tensor *sdl__tp_heads(sdl_tensor *t, int64_t heads) {
    if (!t) return NULL;
    int64_t B = t->shape[0], T = t->shape[1], c = t->shape[2];
    int64_t d[4] = {B, T, heads, c / heads};
    return sdl_transpose(sdl_reshape(t, sdl_shapen(4, d)), 1, 2);
}
static sdl_tensor *sdl__tp_attention_fwd(sdl_module *l, sdl_tensor *x) {
    sdl_tp *tp = (sdl_tp *)l->user;
    if (!x) return NULL;
    if (x->ndim != 3) return (sdl_tensor *)(sdl_fail(SDL_ERR_SHAPE, "sdl_tp_attention: x must be (B, T, C)"), NULL);
    int64_t heads = l->kernel / tp->size, B = x->shape[0], T = x->shape[1];
    sdl_tensor *xc = sdl_tp_copy(tp, x), *w[3];
    for (int i = 0; i < 3; i++) w[i] = sdl_linear(xc, l->children[i]->weight, l->children[i]->bias);
    sdl_tensor *y = sdl_attention(sdl__tp_heads(w[0], heads), sdl__tp_heads(w[1], heads), sdl__tp_heads(w[2], heads));
    y = sdl_reshape(sdl_transpose(y, 1, 2), sdl_shape3(B, T, -1));
    return l->children[3]->forward(l->children[3], y);
}
/* ---- vocabulary-parallel embedding: y[i] = table[ids[i]] from the rank holding that row
   (the others add zeros);  dtable[ids[i] - lo] += dy[i] for the ids this rank holds */
static sdl_result sdl__tp_embed_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    const sdl_tensor *ids = in[0], *tab = in[1];
    int64_t v = tab->shape[0], D = tab->shape[1], lo = (int64_t)((sdl_tp *)ctx)->rank * v;
    for (int64_t i = 0; i < ids->numel; i++) {
        int64_t row = (int64_t)sdl_i32(ids)[i] - lo;
        float *y = sdl_f32(out) + i * D;
        if (row >= 0 && row < v) memcpy(y, sdl_f32(tab) + row * D, (size_t)D * sizeof(float));
        else memset(y, 0, (size_t)D * sizeof(float));
    }
    return sdl__tp_allreduce((sdl_tp *)ctx, sdl_f32(out), out->numel);
}
static sdl_result sdl__tp_embed_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    const sdl_tensor *ids = in[0], *tab = in[1];
    int64_t v = tab->shape[0], D = tab->shape[1], lo = (int64_t)((sdl_tp *)ctx)->rank * v;
    for (int64_t i = 0; tab->grad && i < ids->numel; i++) {
        int64_t row = (int64_t)sdl_i32(ids)[i] - lo;
        if (row >= 0 && row < v) sdl__tp_add(tab->grad + row * D, out->grad + i * D, D);
    }
    return SDL_OK;
}
static const sdl_function sdl__tp_embed_fn = {"tp_embedding", sdl__tp_embed_fwd, sdl__tp_embed_bwd};

static sdl_tensor *sdl__tp_embedding_fwd(sdl_module *l, sdl_tensor *ids) {
    if (!ids) return NULL;
    sdl_tp *tp = (sdl_tp *)l->user;
    int64_t V = l->weight->shape[0] * tp->size;
    if (ids->dtype != SDL_I32 || ids->ndim >= SDL_MAX_DIMS) return (sdl_tensor *)(sdl_fail(SDL_ERR_ARG, "sdl_tp_embedding: ids must be i32"), NULL);
    for (int64_t i = 0; i < ids->numel; i++)
        if (sdl_i32(ids)[i] < 0 || sdl_i32(ids)[i] >= V)
            return (sdl_tensor *)(sdl_fail(SDL_ERR_ARG, "sdl_tp_embedding: id %d at %lld outside 0..%lld", sdl_i32(ids)[i], (long long)i, (long long)V - 1), NULL);
    sdl_shape s = sdl_tensor_shape(ids);
    s.d[s.ndim++] = l->weight->shape[1];
    sdl_tensor *in[2] = {ids, l->weight};
    return sdl_function_apply(&sdl__tp_embed_fn, s, 2, in, tp);
}
SDL_API sdl_module *sdl_tp_embedding(sdl_model *m, sdl_tp *tp, const char *name, int64_t vocab, int64_t dim) {
    if (sdl__tp_check("sdl_tp_embedding", m, tp, vocab, vocab) != SDL_OK) return NULL;
    if (dim < 1) { sdl_fail(SDL_ERR_SHAPE, "sdl_tp_embedding: dim %lld", (long long)dim); return NULL; }
    sdl_module *l = sdl_module_new(m, "tp_embedding", name, sdl__tp_embedding_fwd);
    sdl_tensor *full = sdl_tensor_new(sdl_shape2(vocab, dim), SDL_F32);
    char pname[96];
    snprintf(pname, sizeof pname, "%s%sweight", name ? name : "", name && name[0] ? "." : "");
    int64_t v = vocab / tp->size;
    if (l && full) {
        sdl_tensor_randn(full, 0.0f, 1.0f); /* as sdl_embedding_layer, then this rank's rows */
        l->user = tp;
        if ((l->weight = sdl_model_param(m, pname, sdl_shape2(v, dim), true)))
            memcpy(l->weight->data, sdl_f32(full) + tp->rank * v * dim, (size_t)(v * dim) * sizeof(float));
    }
    sdl_tensor_free(full);
    return l && l->weight ? l : NULL;
}

/* ---- vocabulary-parallel cross entropy over rows r with target t_r:
   loss = mean_r (logz_r - x[r, t_r]),  logz_r = m_r + log sum_all-ranks exp(x - m_r);
   dx[r, j] += dy (exp(x[r, j] - logz_r) - [j is t_r]) / R on the rank holding column j */
typedef struct sdl__tp_ce_saved { double *logz; } sdl__tp_ce_saved;

static sdl_result sdl__tp_ce_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    sdl_tp *tp = (sdl_tp *)ctx;
    const sdl_tensor *x = in[0], *t = in[1];
    int64_t R = x->shape[0], v = x->shape[1], lo = (int64_t)tp->rank * v;
    sdl__tp_ce_saved *sv = (sdl__tp_ce_saved *)sdl_function_save(out, sizeof *sv);
    double *buf = (double *)sdl_arena_alloc((size_t)(3 * R) * sizeof(double)); /* max, sum, target logit */
    if (!sv || !buf) return sdl_last_result();
    if (R > INT_MAX / 3) return sdl_fail(SDL_ERR_ARG, "sdl_tp_cross_entropy: %lld rows", (long long)R);
    for (int64_t r = 0; r < R; r++) {
        const float *xr = sdl_f32(x) + r * v;
        double mx = -HUGE_VAL;
        for (int64_t j = 0; j < v; j++) mx = xr[j] > mx ? xr[j] : mx;
        buf[r] = mx;
    }
    double ts = sdl__mpi_now_us();
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)R, MPI_DOUBLE, MPI_MAX, tp->comm), "MPI_Allreduce (tp cross entropy max)");
    for (int64_t r = 0; r < R; r++) {
        const float *xr = sdl_f32(x) + r * v;
        int64_t j = (int64_t)sdl_i32(t)[r] - lo;
        double sum = 0;
        for (int64_t k = 0; k < v; k++) sum += exp((double)xr[k] - buf[r]);
        buf[R + r] = sum;
        buf[2 * R + r] = j >= 0 && j < v ? (double)xr[j] : 0.0;
    }
    SDL__MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf + R, (int)(2 * R), MPI_DOUBLE, MPI_SUM, tp->comm), "MPI_Allreduce (tp cross entropy sums)");
    sdl__mpi_event_add("tp cross entropy", ts, sdl__mpi_now_us() - ts, 1);
    tp->bytes += 3 * R * 8;
    double loss = 0;
    for (int64_t r = 0; r < R; r++) {
        buf[r] += log(buf[R + r]); /* logz */
        loss += buf[r] - buf[2 * R + r];
    }
    sv->logz = buf;
    sdl_f32(out)[0] = (float)(loss / (double)R);
    return SDL_OK;
}
static sdl_result sdl__tp_ce_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
    (void)nin;
    const sdl_tensor *x = in[0], *t = in[1];
    int64_t R = x->shape[0], v = x->shape[1], lo = (int64_t)((sdl_tp *)ctx)->rank * v;
    const double *logz = ((const sdl__tp_ce_saved *)sdl_function_saved(out))->logz;
    double g = (double)out->grad[0] / (double)R;
    for (int64_t r = 0; x->grad && r < R; r++) {
        const float *xr = sdl_f32(x) + r * v;
        float *dx = x->grad + r * v;
        int64_t j = (int64_t)sdl_i32(t)[r] - lo;
        for (int64_t k = 0; k < v; k++) dx[k] += (float)(g * (exp((double)xr[k] - logz[r]) - (k == j ? 1.0 : 0.0)));
    }
    return SDL_OK;
}
static const sdl_function sdl__tp_ce_fn = {"tp_cross_entropy", sdl__tp_ce_fwd, sdl__tp_ce_bwd};

SDL_API sdl_tensor *sdl_tp_cross_entropy(sdl_tp *tp, sdl_tensor *logits, sdl_tensor *targets) {
    if (!logits || !targets) return NULL;
    if (!tp) return (sdl_tensor *)(sdl_fail(SDL_ERR_ARG, "sdl_tp_cross_entropy: NULL group"), NULL);
    if (logits->ndim != 2 || logits->dtype != SDL_F32 || targets->dtype != SDL_I32 || targets->numel != logits->shape[0])
        return (sdl_tensor *)(sdl_fail(SDL_ERR_SHAPE, "sdl_tp_cross_entropy: wants logits f32 (R, V/T) and targets i32 (R)"), NULL);
    int64_t V = logits->shape[1] * tp->size;
    for (int64_t r = 0; r < targets->numel; r++)
        if (sdl_i32(targets)[r] < 0 || sdl_i32(targets)[r] >= V)
            return (sdl_tensor *)(sdl_fail(SDL_ERR_ARG, "sdl_tp_cross_entropy: target %d at %lld outside 0..%lld", sdl_i32(targets)[r], (long long)r, (long long)V - 1), NULL);
    sdl_tensor *in[2] = {logits, targets};
    return sdl_function_apply(&sdl__tp_ce_fn, sdl_shapen(0, NULL), 2, in, tp);
}

SDL_API sdl_module *sdl_tp_attention(sdl_model *m, sdl_tp *tp, const char *name, int64_t dim, int n_head) {
    if (sdl__tp_check("sdl_tp_attention", m, tp, dim, n_head) != SDL_OK) return NULL;
    if (dim % n_head) { sdl_fail(SDL_ERR_SHAPE, "sdl_tp_attention: dim %lld does not divide into %d heads", (long long)dim, n_head); return NULL; }
    sdl_module *l = sdl_module_new(m, "tp_attention", name, sdl__tp_attention_fwd);
    if (!l || !sdl__tp_child(l, tp, "q", dim, dim, true) || !sdl__tp_child(l, tp, "k", dim, dim, true) ||
        !sdl__tp_child(l, tp, "v", dim, dim, true) || !sdl__tp_child(l, tp, "proj", dim, dim, false))
        return NULL;
    l->user = tp;
    l->kernel = n_head;
    return l;
}

#ifdef __cplusplus
}
#endif
#endif /* SDL_MPI_IMPLEMENTATION_DONE */
#endif /* SDL_MPI_IMPLEMENTATION */
