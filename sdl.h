/* sdl.h - v0.1 - scalable deep learning in C - public domain or MIT (see end of file)

   The core of sdl: tensors, reverse-mode autograd, layers, losses, optimizers and
   learning-rate schedules, dataset readers and a data loader, checkpoints, logging and
   timers. CPU kernels live here; sdl_cuda.h adds a CUDA backend, sdl_mpi.h data
   parallelism over MPI.

   Do this:
      #define SDL_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the macro.

   A ten-line example (an MLP on Fashion-MNIST, one epoch):

      #define SDL_IMPLEMENTATION
      #include "sdl.h"
      int main(void) {
          sdl_dataset train;
          if (sdl_load_fashion_mnist(NULL, true, &train) != SDL_OK) { puts(sdl_last_error()); return 1; }
          sdl_loader_desc ld = {0};
          ld.data = &train; ld.batch_size = 64; ld.shuffle = true; ld.mean[0] = 0.286f; ld.std[0] = 0.353f;
          sdl_loader *loader = sdl_loader_new(&ld);
          sdl_model *m = sdl_model_new(42);                         // seed
          sdl_module *net = sdl_sequential(m, "");
          sdl_seq_add(net, sdl_flatten_layer(m));
          sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 128, true));
          sdl_seq_add(net, sdl_relu_layer(m));
          sdl_seq_add(net, sdl_linear_layer(m, "fc2", 128, 10, true));
          sdl_optim *opt = sdl_sgd(m, 0.05f, 0.9f, 0.0f, false);     // lr, momentum, wd, nesterov
          sdl_tensor *x, *y;
          while (sdl_loader_next(loader, &x, &y)) {
              sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
              sdl_backward(loss);
              sdl_optim_step(opt);                                    // updates, zeroes the grads
              sdl_arena_reset();                                      // drops this step's tensors
          }
          return 0;
      }

   Compile with  cc -O3 -march=native prog.c -lm -lpthread   (-O3: gcc -O2 leaves most
   loops of unknown length scalar; the MLP trains ~1.5x faster at -O3)

   CONFIGURATION (define before including; those marked (impl) matter only in the file that
   defines SDL_IMPLEMENTATION, the others must be the same in every file):

      SDL_ALLOC(n), SDL_REALLOC(p,n), SDL_DEALLOC(p)   (impl) your allocator; all three or none.
                           (named to stay clear of libSDL's SDL_malloc/SDL_free)
      SDL_CHECK(c)         (impl) internal invariant check, default assert(c)
      SDL_STATIC           every function is static to the implementation file
      SDL_NO_THREADS       (impl) run every kernel on the calling thread (no pthreads)
      SDL_NO_HUGEPAGES     (impl) Linux: do not ask for 2 MiB pages (madvise) on blocks of
                           4 MiB and more
      SDL_PART_NS          (impl) the least one-thread work, in nanoseconds, worth a part of
                           its own in sdl_parallel_for_work (default 25000)
      SDL_NO_STB           (impl) build without stb_image: no image decoding, no .gz/.npz
                           decompression, no PNG writing (those return an error saying so)
      SDL_STB_IMAGE_PATH, SDL_STB_IMAGE_WRITE_PATH  (impl) where stb_image.h and
                           stb_image_write.h are; default <stb/stb_image.h> and
                           <stb/stb_image_write.h> (Debian/Ubuntu: apt-get install libstb-dev).
                           A copy beside your program: #define SDL_STB_IMAGE_PATH "stb_image.h"
                           sdl compiles a private copy of both (every function static), so your
                           program may also build stb_image itself (STB_IMAGE_IMPLEMENTATION in
                           any file) without a clash. If the file that defines SDL_IMPLEMENTATION
                           includes stb_image.h or stb_image_write.h before sdl.h, sdl uses that
                           one instead and compiles no copy of its own.
      SDL_STB_EASY_FONT_PATH  (impl) stb_easy_font.h, the plots' text; default
                           <stb/stb_easy_font.h> (libstb-dev has it too)
      SDL_NO_SIMD          (impl) portable C kernels even where -march enables AVX2/AVX-512
      SDL_MAX_DIMS         the most dimensions a tensor has, default 8

   CONTENTS (search for the >>name to jump there)

      To learn how autograd works, read >>decl-core, >>decl-autograd, >>formulas, then the
      implementation from >>tensor through >>ops-loss, >>model and >>optim: the forward of
      each op beside its backward. Skip the engine room (>>threads, >>gemm, >>winograd) and
      the file formats (>>npy ... >>tfrecord) on a first reading; they only make things fast
      or read bytes.

      Declarations
      >>decl-core        results, dtypes, shapes, tensors
      >>decl-errors      result codes, sdl_last_error, logging
      >>decl-tensor      creating, copying and freeing tensors
      >>decl-rng         counter-based random numbers
      >>decl-init        PyTorch's weight initialisers
      >>op-table         every op once (SDL_OPS), and how to add one
      >>formulas         the per-element math shared by the CPU loops and the CUDA kernels
      >>decl-autograd    grad mode, backward, hooks
      >>decl-backend     the per-device kernel table
      >>decl-device      devices by name ("cpu", "cuda:1"), moving tensors and models
      >>decl-ops         the differentiable ops
      >>decl-losses      cross entropy, mse, nll, bce
      >>decl-general     PyTorch's general tensor ops (matmul, slice, gather, ...)
      >>decl-function    user-defined ops and sdl_gradcheck
      >>decl-model       models: parameters, buffers, freezing
      >>decl-layers      layers (modules) and sdl_forward
      >>decl-optim       optimizers, parameter groups, the loss scaler
      >>decl-sched       learning-rate schedules
      >>decl-data        datasets and their readers
      >>decl-tfrecord    TFRecord files, tf.train.Example, TensorProto
      >>decl-zip         ZIP members, folder trees, dataset helpers
      >>decl-loader      batches from a dataset
      >>decl-stream      the streaming shard pipeline (WebDataset / tf.data style)
      >>decl-train       timers, meters, progress lines, CSV, flags
      >>decl-checkpoint  safetensors checkpoints
      >>decl-plot        PNG line and bar charts
      >>decl-summary     TensorBoard event files
      >>decl-profile     time per op type
      >>decl-threads     the thread pool and parallel loops
      >>decl-gemm        sdl_sgemm

      Implementation, in the order data flows (sdl_cuda.h's kernels sit under the same
      >>ops-* anchors)
      >>errors           the error message and the log
      >>memory           overflow-checked sizes, aligned blocks, growable byte buffers
      >>stb              the private stb_image / stb_image_write copy
      >>ahead            private functions used before the engine room and the file formats
      >>shape            shape helpers
      >>rng              splitmix64 draws
      >>init             initialisers
      >>arena            the step arena
      >>tensor           tensors
      >>backend          the backend registry and op names
      >>device           devices, sdl_tensor_to, sdl_model_to
      >>autograd         the tape, backward, grad modes
      >>ops-core         linear, activations, add/mul, reshape, sum/mean
      >>ops-conv         conv2d, conv_transpose2d, pooling
      >>ops-norm         batch, layer and group norm, dropout, embedding
      >>ops-act          elementwise unary ops, softmax, log_softmax
      >>ops-shape        concat, transpose, attention
      >>ops-general      index maps, cat/stack, gather/scatter, pad, binary ops, reductions, bmm
      >>ops-rnn          RNN/LSTM/GRU recurrences, multi-head attention
      >>ops-loss         cross entropy, mse, nll, bce_with_logits
      >>function         user-defined ops and sdl_gradcheck
      >>cpu-table        the CPU backend table, filled from SDL_OPS
      >>model            parameters, buffers, packing into flat arrays
      >>layers           modules made on a model, sequential containers
      >>layers-conv      conv, pooling and flatten layers
      >>layers-norm      normalisation and dropout layers
      >>layers-act       activation layers
      >>layers-rnn       RNN, LSTM, GRU
      >>layers-attn      group norm and multi-head attention layers
      >>layers-summary   sdl_model_summary: FLOPs, bytes, the roofline
      >>optim            optimizers and the loss scaler
      >>sched            schedules
      >>data             dataset readers: IDX, CIFAR-10, image folders, globs, tar shards
      >>loader           sdl_loader
      >>stream           the streaming pipeline
      >>checkpoint       safetensors writer and reader
      >>train            timers, meters, progress, CSV, flags
      >>plot             PNG charts
      >>summary          TensorBoard events
      >>profile          time per op type
      The engine room
      >>threads          the thread pool
      >>gemm             the packed, cache-blocked SGEMM and the SIMD helpers
      >>winograd         Winograd F(2x2, 3x3) convolution
      The file formats
      >>npy              .npy / .npz
      >>zip              ZIP central directory, stored and deflated members
      >>images           image decoding (with the JPEG/PNG checks) and PNG encoding
      >>tfrecord         TFRecord framing, protobuf, tf.train.Example, TensorProto

   TOPICS
      Errors      Functions return a result code (SDL_OK is 0) or NULL. sdl_last_error()
                  says what went wrong and where. Ops given a NULL input return NULL, so an
                  error travels to the end of a chain like a NaN. The library never exits.
      Tensors     f32 compute, N-d shapes, contiguous storage. sdl_tensor_new() lives on
                  the heap until sdl_tensor_free(); every tensor an op makes lives in the
                  step arena until sdl_arena_reset(). A steady-state step allocates nothing.
      Autograd    Ops record themselves on a tape while grad mode is on and an input needs
                  a gradient. sdl_backward(loss) runs the part of the tape that loss
                  depends on in reverse, adds (+=) into each .grad, and drops that part;
                  the rest stays for another loss (a GAN's G step after its D step on
                  detach(fake)). A backward that reaches a dropped part fails naming the
                  op, unless the first one kept it (sdl_backward_ex, .retain_graph, as
                  PyTorch's retain_graph=True). Gradients accumulate until zeroed.
      Models      An sdl_model owns parameters (names like "fc1.weight"), buffers (batch-norm
                  statistics) and layers. On first use its parameters are packed into one
                  flat buffer and their gradients into another, so an optimizer or an
                  allreduce sees one array. A hook fires as each parameter's gradient
                  becomes final during backward (reverse layer order).
      Devices     Each tensor knows its device. Op kernels are looked up in a per-device
                  backend table (sdl_backend); sdl.h fills the CPU one, sdl_cuda.h the CUDA
                  one, so this file compiles with any C compiler and knows nothing of CUDA.
                  sdl_device_parse("cuda:1"), sdl_model_to, sdl_tensor_to: one program
                  for cc, mpicc and nvcc (sdl_cuda.h's implementation is empty under cc).
      Optimizers  SGD (momentum, Nesterov), Adam, AdamW, LARS, LAMB, one pass over the flat
                  arrays; sdl_optim_step updates and zeroes the gradients (with
                  accum_steps = k it updates on every k-th call). Frozen parameters
                  (sdl_model_freeze) stay exactly as they are; parameter groups
                  (sdl_optim_add_group) scale the rate and set the weight decay by name
                  prefix. Schedules (sdl_sched_lr): constant, step, cosine, one-cycle,
                  each with optional linear warm-up.
      Data        Readers fill an sdl_dataset (u8 images, CHW, i32 labels): IDX (.gz too),
                  CIFAR-10, image folders (PNG, JPEG), WebDataset tar shards, TFRecord files (with
                  tf.train.Example), ZIP members; .npy/.npz as tensors.
                  sdl_loader batches it: shuffle by (seed, epoch), distributed sampling,
                  a prefetch thread, normalise/crop/flip. The batches depend only on the seed.
      Training    sdl_args_parse (--batch-size and --batch_size alike), sdl_progress,
                  sdl_meter, sdl_csv_append, sdl_print_throughput ("total images/sec: X").
      Checkpoints safetensors files that PyTorch reads, written atomically; parameters,
                  buffers, optimizer state, epoch and RNG state. Resuming is bit-exact.
                  sdl_checkpoint_load_weights loads what fits for fine-tuning (missing,
                  unexpected and reshaped tensors reported, name prefixes mapped), from
                  sdl's files or PyTorch state_dicts saved as safetensors.
      Plots       sdl_plot_lines and sdl_plot_bars write PNG charts (loss per epoch, images/s
                  per number of ranks) with no Python needed; sdl_summary_* writes
                  TensorBoard event files (scalars, image grids).
      Profile     SDL_PROFILE=1 in the environment prints the time per op type at exit.
*/
#ifndef SDL_H_INCLUDED
#define SDL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h> /* malloc/calloc for programs linked against a prebuilt implementation */
#include <math.h>
#include <string.h> /* memcpy: the bit casts of sdl__exp_vec */

#ifdef SDL_STATIC
#define SDL_API static
#else
#define SDL_API extern
#endif

#ifndef SDL_MAX_DIMS
#define SDL_MAX_DIMS 8
#endif

#if defined(__cplusplus) || defined(_MSC_VER)
#define SDL_RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define SDL_RESTRICT restrict
#else
#define SDL_RESTRICT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------
   >>decl-core: results, dtypes, shapes, tensors
   ---------------------------------------------------------------------------------------- */
typedef enum sdl_result {
    SDL_OK = 0,
    SDL_ERR_ARG,        /* a bad argument (NULL, negative size, unknown name) */
    SDL_ERR_SHAPE,      /* shapes do not fit the op */
    SDL_ERR_OOM,        /* allocation failed or size overflowed */
    SDL_ERR_IO,         /* a file could not be opened, read or written */
    SDL_ERR_FORMAT,     /* a file is truncated or corrupt */
    SDL_ERR_STATE,      /* called at the wrong time (e.g. a parameter after packing) */
    SDL_ERR_NOT_FINITE, /* NaN or Inf where a finite number is needed */
    SDL_ERR_DEVICE,     /* a backend (CUDA) call failed */
    SDL_ERR_COMM        /* a communication (MPI/NCCL) call failed or ranks disagree */
} sdl_result;

typedef enum sdl_dtype {
    SDL_DTYPE_DEFAULT = 0, /* f32 */
    SDL_F32,
    SDL_BF16,
    SDL_F16,
    SDL_U8,
    SDL_I32
} sdl_dtype;

typedef enum sdl_device {
    SDL_DEVICE_DEFAULT = 0, /* cpu */
    SDL_CPU,
    SDL_CUDA,
    SDL_DEVICE_COUNT
} sdl_device;

typedef struct sdl_shape {
    int ndim;
    int64_t d[SDL_MAX_DIMS];
} sdl_shape;

typedef struct sdl_tensor sdl_tensor;
typedef struct sdl_node sdl_node;
typedef struct sdl_model sdl_model;
typedef struct sdl_module sdl_module;

struct sdl_tensor {
    int ndim;
    int64_t shape[SDL_MAX_DIMS];
    int64_t numel;
    sdl_dtype dtype;
    sdl_device device;
    void *data;          /* numel elements of dtype, contiguous, row-major */
    float *grad;         /* numel floats, or NULL until a gradient flows */
    bool requires_grad;
    bool heap;           /* made by sdl_tensor_new: free with sdl_tensor_free */
    bool decay;          /* parameters: weight decay and LARS apply (false for bias/norm) */
    sdl_node *node;      /* the op that made it (NULL for leaves) */
    sdl_model *model;    /* parameters: the owning model, else NULL */
    int param_index;     /* parameters: index in the model, else -1 */
    const char *name;    /* parameters and buffers: "fc1.weight" */
    sdl_node *first_use; /* parameters: the oldest node that reads it in this backward pass */
};

SDL_API sdl_shape sdl_shape1(int64_t a);
SDL_API sdl_shape sdl_shape2(int64_t a, int64_t b);
SDL_API sdl_shape sdl_shape3(int64_t a, int64_t b, int64_t c);
SDL_API sdl_shape sdl_shape4(int64_t a, int64_t b, int64_t c, int64_t e);
SDL_API sdl_shape sdl_shapen(int ndim, const int64_t *d);
SDL_API sdl_shape sdl_tensor_shape(const sdl_tensor *t);
SDL_API bool sdl_shape_equal(sdl_shape a, sdl_shape b);
/* "(64, 3, 32, 32)" into buf; returns buf */
SDL_API const char *sdl_shape_str(sdl_shape s, char *buf, size_t cap);

/* >>decl-errors */
SDL_API const char *sdl_last_error(void);
SDL_API sdl_result sdl_last_result(void);
SDL_API void sdl_clear_error(void);
typedef void (*sdl_log_fn)(void *user, int level, const char *msg);
enum { SDL_LOG_ERROR = 0, SDL_LOG_WARN = 1, SDL_LOG_INFO = 2 };
/* Where the library's few messages go (default: stderr for errors and warnings). */
SDL_API void sdl_set_log(sdl_log_fn fn, void *user);
SDL_API void sdl_log(int level, const char *fmt, ...);
/* Sets the last error and returns code; for code built on sdl (readers, examples). */
SDL_API sdl_result sdl_fail(sdl_result code, const char *fmt, ...);

/* >>decl-tensor */
/* Heap tensors: zeros, owned by the caller. */
SDL_API sdl_tensor *sdl_tensor_new(sdl_shape shape, sdl_dtype dtype);
SDL_API sdl_tensor *sdl_tensor_from(sdl_shape shape, const float *data);
SDL_API void sdl_tensor_free(sdl_tensor *t);
/* Step-arena tensors: zeros, gone at the next sdl_arena_reset(). */
SDL_API sdl_tensor *sdl_arena_tensor(sdl_shape shape, sdl_dtype dtype);
SDL_API sdl_tensor *sdl_arena_tensor_on(sdl_shape shape, sdl_dtype dtype, sdl_device device);
/* gives a heap leaf tensor a zeroed gradient buffer (freed with it) */
SDL_API sdl_result sdl_tensor_requires_grad(sdl_tensor *t);
SDL_API void *sdl_arena_alloc(size_t bytes);
SDL_API void sdl_arena_reset(void);
SDL_API size_t sdl_arena_capacity(void);
SDL_API void sdl_arena_release(void); /* frees the arena's memory too */
/* value into every element: f32, i32 (value must be a whole number in range) or u8 (0..255);
   on the host or a device */
SDL_API sdl_result sdl_tensor_fill(sdl_tensor *t, float value);
SDL_API sdl_result sdl_tensor_copy_from(sdl_tensor *t, const float *src); /* f32: numel floats from the host */
SDL_API float sdl_item(const sdl_tensor *t); /* element 0 as float (NaN with an error for bf16/f16) */
SDL_API bool sdl_all_finite(const sdl_tensor *t); /* f32 (false with an error for other dtypes) */
static inline float *sdl_f32(const sdl_tensor *t) { return (float *)t->data; }
static inline int32_t *sdl_i32(const sdl_tensor *t) { return (int32_t *)t->data; }
static inline uint8_t *sdl_u8(const sdl_tensor *t) { return (uint8_t *)t->data; }
SDL_API size_t sdl_dtype_size(sdl_dtype dtype);

/* >>decl-rng: counter-based, so a seed gives the same numbers on any machine, thread
   count or rank. Element i of a draw depends only on (seed, counter + i). */
SDL_API void sdl_manual_seed(uint64_t seed);
SDL_API uint64_t sdl_rng_state(void);      /* the counter, for checkpoints */
SDL_API void sdl_rng_set_state(uint64_t seed, uint64_t counter);
SDL_API uint64_t sdl_rng_seed(void);
SDL_API float sdl_rand_uniform(void);        /* one number in [0, 1) */
SDL_API void sdl_tensor_uniform(sdl_tensor *t, float lo, float hi);
SDL_API void sdl_tensor_randn(sdl_tensor *t, float mean, float std);
/* a stateless draw: uniform [0,1) number for (seed, stream, index) */
SDL_API float sdl_hash_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* >>decl-init: PyTorch's defaults and the usual variants. fan_in = in_features for a
   linear weight (out, in), C_in*kh*kw for a conv weight (out, in, kh, kw). */
SDL_API void sdl_init_kaiming_uniform(sdl_tensor *w, float a, int64_t fan_in);
SDL_API void sdl_init_kaiming_normal(sdl_tensor *w, int64_t fan_in);   /* He: std = sqrt(2/fan_in) */
SDL_API void sdl_init_xavier_uniform(sdl_tensor *w, int64_t fan_in, int64_t fan_out);
SDL_API void sdl_init_xavier_normal(sdl_tensor *w, int64_t fan_in, int64_t fan_out);
SDL_API void sdl_init_bias(sdl_tensor *b, int64_t fan_in);          /* U(+-1/sqrt(fan_in)) */

/* >>op-table: every op, once. X(NAME, name, cpu forward, cpu backward, cuda forward, cuda
   backward) generates the sdl_op enum (SDL_OP_NAME), sdl_op_name() and both backend tables
   (sdl.h's >>cpu-table, sdl_cuda.h's >>cuda-table, which expand the columns they own; the
   kernel names need only exist where their columns are expanded). 0 in a column: that
   backend has no kernel, and the op fails there at its first call, by name ("conv3d has
   no CUDA kernel"), never computing something else. (An op for your own program only: an
   sdl_function, see >>decl-function.)

   How to add an op (an elementwise one: a row of SDL_UNARY_OPS or SDL_BINARY_OPS in
   >>formulas with its formulas, and its public function; tests/cuda_test_general.cu walks
   those lists, so the CUDA kernel is checked without an edit; hardswish is the example):
     1. a row here (at the end of a group; the enum order is only a numbering);
     2. the public function in >>decl-ops, and beside it in the right >>ops-* section the
        maker (checks shapes, sdl__op_begin, sets node->attr, sdl__op_run) and the CPU
        forward/backward kernels, one comment above them with shapes and the derivative;
     3. the CUDA kernels in sdl_cuda.h under the same >>ops-* anchor (or 0 in the row);
     4. a gradcheck against double code in tests/ (tests/sdl_test.h's gradcheck), and a
        CUDA-vs-CPU case in a tests/cuda_test_*.cu file.
   Switches over sdl_op have no default: -Wswitch names a forgotten op. */
#define SDL_OPS(X) \
    X(LINEAR, linear, sdl__linear_fwd, sdl__linear_bwd, sdl__cu_linear_fwd, sdl__cu_linear_bwd) \
    X(CONV2D, conv2d, sdl__conv_fwd, sdl__conv_bwd, sdl__cu_conv_fwd, sdl__cu_conv_bwd) \
    X(CONV_TRANSPOSE2D, conv_transpose2d, sdl__conv_fwd, sdl__conv_bwd, sdl__cu_conv_fwd, sdl__cu_conv_bwd) \
    X(MAX_POOL2D, max_pool2d, sdl__pool_fwd, sdl__pool_bwd, sdl__cu_pool_fwd, sdl__cu_pool_bwd) \
    X(AVG_POOL2D, avg_pool2d, sdl__pool_fwd, sdl__pool_bwd, sdl__cu_pool_fwd, sdl__cu_pool_bwd) \
    X(GLOBAL_AVG_POOL, global_avg_pool, sdl__gap_fwd, sdl__gap_bwd, sdl__cu_gap_fwd, sdl__cu_gap_bwd) \
    X(BATCH_NORM, batch_norm, sdl__bn_fwd, sdl__bn_bwd, sdl__cu_bn_fwd, sdl__cu_bn_bwd) \
    X(LAYER_NORM, layer_norm, sdl__ln_fwd, sdl__ln_bwd, sdl__cu_ln_fwd, sdl__cu_ln_bwd) \
    X(DROPOUT, dropout, sdl__dropout_fwd, sdl__dropout_bwd, sdl__cu_dropout_fwd, sdl__cu_dropout_bwd) \
    X(EMBEDDING, embedding, sdl__emb_fwd, sdl__emb_bwd, sdl__cu_emb_fwd, sdl__cu_emb_bwd) \
    X(RELU, relu, sdl__relu_fwd, sdl__relu_bwd, sdl__cu_relu_fwd, sdl__cu_relu_bwd) \
    X(SOFTMAX, softmax, sdl__softmax_fwd, sdl__softmax_bwd, sdl__cu_softmax_fwd, sdl__cu_softmax_bwd) \
    X(LOG_SOFTMAX, log_softmax, sdl__softmax_fwd, sdl__softmax_bwd, sdl__cu_softmax_fwd, sdl__cu_softmax_bwd) \
    X(ADD, add, sdl__add_fwd, sdl__add_bwd, sdl__cu_binary_fwd, sdl__cu_binary_bwd) \
    X(MUL, mul, sdl__mul_fwd, sdl__mul_bwd, sdl__cu_binary_fwd, sdl__cu_binary_bwd) \
    X(CONCAT, concat, sdl__concat_fwd, sdl__concat_bwd, sdl__cu_concat_fwd, sdl__cu_concat_bwd) \
    X(TRANSPOSE, transpose, sdl__transpose_fwd, sdl__transpose_bwd, sdl__cu_transpose_fwd, sdl__cu_transpose_bwd) \
    X(ATTENTION, attention, sdl__attn_fwd, sdl__attn_bwd, sdl__cu_attn_fwd, sdl__cu_attn_bwd) \
    X(SUM, sum, sdl__sum_fwd, sdl__sum_bwd, sdl__cu_sum_fwd, sdl__cu_sum_bwd) \
    X(MEAN, mean, sdl__sum_fwd, sdl__sum_bwd, sdl__cu_sum_fwd, sdl__cu_sum_bwd) \
    X(CROSS_ENTROPY, cross_entropy, sdl__ce_fwd, sdl__ce_bwd, sdl__cu_ce_fwd, sdl__cu_ce_bwd) \
    X(NLL, nll, sdl__nll_fwd, sdl__nll_bwd, sdl__cu_nll_fwd, sdl__cu_nll_bwd) \
    X(BCE_LOGITS, bce_logits, sdl__bce_fwd, sdl__bce_bwd, sdl__cu_bce_fwd, sdl__cu_bce_bwd) \
    X(MSE, mse, sdl__mse_fwd, sdl__mse_bwd, sdl__cu_mse_fwd, sdl__cu_mse_bwd) \
    /* a user-defined op (sdl_function_apply, see >>decl-function): the CPU only */ \
    X(FUNCTION, function, sdl__function_fwd, sdl__function_bwd, 0, 0) \
    /* the layers' ops (>>ops-rnn, >>ops-norm, >>ops-conv): the CPU only for now */ \
    X(RNN, rnn, sdl__rnn_fwd, sdl__rnn_bwd, 0, 0) \
    X(GROUP_NORM, group_norm, sdl__gn_fwd, sdl__gn_bwd, 0, 0) \
    X(MHA, mha, sdl__mha_fwd, sdl__mha_bwd, 0, 0) \
    X(CONV2D_GROUPED, conv2d_grouped, sdl__gconv_fwd, sdl__gconv_bwd, 0, 0) \
    /* the elementwise ops of SDL_UNARY_OPS (>>formulas), their kernels generated */ \
    SDL_UNARY_OPS(SDL__UNARY_ROW, X) \
    /* >>ops-general */ \
    SDL_BINARY_OPS(SDL__BINARY_ROW, X) \
    X(WHERE, where, sdl__where_fwd, sdl__where_bwd, sdl__cu_where_fwd, sdl__cu_where_bwd) \
    X(INDEX_MAP, index_map, sdl__index_map_fwd, sdl__index_map_bwd, sdl__cu_index_map_fwd, sdl__cu_index_map_bwd) \
    X(REDUCE_SUM, sum_dims, sdl__reduce_fwd, sdl__reduce_bwd, sdl__cu_reduce_fwd, sdl__cu_reduce_bwd) \
    X(REDUCE_MEAN, mean_dims, sdl__reduce_fwd, sdl__reduce_bwd, sdl__cu_reduce_fwd, sdl__cu_reduce_bwd) \
    X(REDUCE_MAX, max_dim, sdl__reduce_fwd, sdl__reduce_bwd, sdl__cu_reduce_fwd, sdl__cu_reduce_bwd) \
    X(LOGSUMEXP, logsumexp, sdl__reduce_fwd, sdl__reduce_bwd, sdl__cu_reduce_fwd, sdl__cu_reduce_bwd) \
    X(VAR, var_dims, sdl__reduce_fwd, sdl__reduce_bwd, sdl__cu_reduce_fwd, sdl__cu_reduce_bwd) \
    X(BMM, bmm, sdl__bmm_fwd, sdl__bmm_bwd, sdl__cu_bmm_fwd, sdl__cu_bmm_bwd)
#define SDL__UNARY_ROW(X, NAME, name) X(NAME, name, sdl__##name##_fwd, sdl__##name##_bwd, sdl__cu_unary_fwd, sdl__cu_unary_bwd)
#define SDL__BINARY_ROW(X, NAME, name) X(NAME, name, sdl__##name##_fwd, sdl__##name##_bwd, sdl__cu_bin_fwd, sdl__cu_bin_bwd)

/* >>formulas: the per-element math, written once for the CPU loops and the CUDA kernels
   (SDL_HD is __host__ __device__ under nvcc). Private (sdl__), here so that sdl_cuda.h sees
   them in any file.

   Elementwise unary ops: y = f(x; a, b),  dx += f'(x) dy. U(X, NAME, name) needs
   sdl__f_name(x, a, b) -> y and sdl__df_name(x, y, dy, a, b) -> what dx gains; the CPU
   loops, the CUDA kernel's case, the enum row and the name are generated from the row.
   Adding an activation: its two formulas and its row at the end of the list below them,
   its public function (declaration and definition, a call of sdl__unary), its gradcheck. */

#if defined(__CUDACC__) && defined(__host__)
#define SDL_HD __host__ __device__
#else
#define SDL_HD
#endif

/* 1/(1 + e^-x), written so no exp overflows */
static SDL_HD inline float sdl__act_sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* leaky_relu  f = x > 0 ? x : a x                      f' = x > 0 ? 1 : a */
static SDL_HD inline float sdl__f_leaky_relu(float x, float a, float b) { (void)b; return x > 0.0f ? x : a * x; }
static SDL_HD inline float sdl__df_leaky_relu(float x, float y, float dy, float a, float b) { (void)y; (void)b; return x > 0.0f ? dy : a * dy; }
/* gelu        f = x Phi(x) = x/2 erfc(-x/sqrt 2)       f' = Phi(x) + x e^(-x^2/2)/sqrt(2 pi)
   gelu_tanh   f = x/2 (1 + tanh u) = x s, s = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
               f' = s + 2 x s (1 - s) u',  u' = sqrt(2/pi) (1 + 3 0.044715 x^2)
   Both in double, with erfc and 1/(1 + e^-2u) rather than 1 + erf or 1 + tanh: no
   cancellation and no float rounding of the argument (which the tail magnifies about x^2
   times), so f and f' stay within a float32 ulp or two even for x < -2, where f is tiny. */
static SDL_HD inline float sdl__f_gelu(float x, float a, float b) {
    (void)a; (void)b;
    return (float)(0.5 * (double)x * erfc(-0.70710678118654752 * (double)x));
}
static SDL_HD inline float sdl__df_gelu(float x, float y, float dy, float a, float b) {
    (void)y; (void)a; (void)b;
    double v = x;
    return dy * (float)(0.5 * erfc(-0.70710678118654752 * v) + v * exp(-0.5 * v * v) * 0.39894228040143268);
}
/* e^x in double (to ~1e-14 relative: x = k ln2 + r, |r| <= ln2/2, Taylor to r^11, 2^k from
   k's bits) in plain arithmetic, so the CPU loops that use it vectorise (exp does not) */
static SDL_HD inline double sdl__exp_vec(double x) {
    double xc = x > 709.0 ? 709.0 : x;
    xc = xc < -708.0 ? -708.0 : xc;
    xc = xc == xc ? xc : 0.0; /* NaN: a defined k below; y is NaN again at the end */
    double k = (xc * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0; /* round to nearest */
    double r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double q = 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r * r + r + 1.0;
    uint64_t bits = (uint64_t)((int64_t)k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double y = q * scale; /* (selects between computed values only: gcc if-converts those) */
    y = x < -708.0 ? 0.0 : y;
    y = x > 709.0 ? (double)INFINITY : y;
    return x == x ? y : x;
}
static SDL_HD inline double sdl__gelu_tanh_s(double x) { return 1.0 / (1.0 + sdl__exp_vec(-2.0 * 0.79788456080286536 * (x + 0.044715 * x * x * x))); }
static SDL_HD inline float sdl__f_gelu_tanh(float x, float a, float b) { (void)a; (void)b; return (float)((double)x * sdl__gelu_tanh_s(x)); }
static SDL_HD inline float sdl__df_gelu_tanh(float x, float y, float dy, float a, float b) {
    (void)y; (void)a; (void)b;
    double v = x, s = sdl__gelu_tanh_s(v);
    return dy * (float)(s + 2.0 * v * s * (1.0 - s) * 0.79788456080286536 * (1.0 + 3.0 * 0.044715 * v * v));
}
/* tanh        f' = 1 - y^2 */
static SDL_HD inline float sdl__f_tanh(float x, float a, float b) { (void)a; (void)b; return tanhf(x); }
static SDL_HD inline float sdl__df_tanh(float x, float y, float dy, float a, float b) { (void)x; (void)a; (void)b; return dy * (1.0f - y * y); }
/* sigmoid     f' = y (1 - y) */
static SDL_HD inline float sdl__f_sigmoid(float x, float a, float b) { (void)a; (void)b; return sdl__act_sigmoid(x); }
static SDL_HD inline float sdl__df_sigmoid(float x, float y, float dy, float a, float b) { (void)x; (void)a; (void)b; return dy * y * (1.0f - y); }
/* silu        f = x s, s = sigmoid(x)                  f' = s (1 + x (1 - s)) */
static SDL_HD inline float sdl__f_silu(float x, float a, float b) { (void)a; (void)b; return x * sdl__act_sigmoid(x); }
static SDL_HD inline float sdl__df_silu(float x, float y, float dy, float a, float b) {
    (void)y; (void)a; (void)b;
    float s = sdl__act_sigmoid(x);
    return dy * s * (1.0f + x * (1.0f - s));
}
/* scale       f = a x                                  f' = a */
static SDL_HD inline float sdl__f_scale(float x, float a, float b) { (void)b; return a * x; }
static SDL_HD inline float sdl__df_scale(float x, float y, float dy, float a, float b) { (void)x; (void)y; (void)b; return a * dy; }
/* neg         f = -x                                   f' = -1 */
static SDL_HD inline float sdl__f_neg(float x, float a, float b) { (void)a; (void)b; return -x; }
static SDL_HD inline float sdl__df_neg(float x, float y, float dy, float a, float b) { (void)x; (void)y; (void)a; (void)b; return -dy; }
/* exp         f = e^x                                  f' = y */
static SDL_HD inline float sdl__f_exp(float x, float a, float b) { (void)a; (void)b; return expf(x); }
static SDL_HD inline float sdl__df_exp(float x, float y, float dy, float a, float b) { (void)x; (void)a; (void)b; return dy * y; }
/* log         f = ln x                                 f' = 1/x */
static SDL_HD inline float sdl__f_log(float x, float a, float b) { (void)a; (void)b; return logf(x); }
static SDL_HD inline float sdl__df_log(float x, float y, float dy, float a, float b) { (void)y; (void)a; (void)b; return dy / x; }
/* sqrt        f = x^(1/2)                              f' = 1 / (2 y) */
static SDL_HD inline float sdl__f_sqrt(float x, float a, float b) { (void)a; (void)b; return sqrtf(x); }
static SDL_HD inline float sdl__df_sqrt(float x, float y, float dy, float a, float b) { (void)x; (void)a; (void)b; return dy / (2.0f * y); }
/* rsqrt       f = x^(-1/2)                             f' = -y^3 / 2 */
static SDL_HD inline float sdl__f_rsqrt(float x, float a, float b) { (void)a; (void)b; return 1.0f / sqrtf(x); }
static SDL_HD inline float sdl__df_rsqrt(float x, float y, float dy, float a, float b) { (void)x; (void)a; (void)b; return -0.5f * dy * y * y * y; }
/* abs         f = |x|                                  f' = sign(x) (0 at 0, as PyTorch) */
static SDL_HD inline float sdl__f_abs(float x, float a, float b) { (void)a; (void)b; return fabsf(x); }
static SDL_HD inline float sdl__df_abs(float x, float y, float dy, float a, float b) { (void)y; (void)a; (void)b; return x > 0.0f ? dy : x < 0.0f ? -dy : 0.0f; }
/* pow         f = x^a (a a scalar)                     f' = a x^(a-1) (0 when a = 0) */
static SDL_HD inline float sdl__f_pow(float x, float a, float b) { (void)b; return powf(x, a); }
static SDL_HD inline float sdl__df_pow(float x, float y, float dy, float a, float b) { (void)y; (void)b; return a == 0.0f ? 0.0f : dy * a * powf(x, a - 1.0f); }
/* clamp       f = min(max(x, a), b) (NaN stays NaN)    f' = a <= x <= b ? 1 : 0 */
static SDL_HD inline float sdl__f_clamp(float x, float a, float b) { return x < a ? a : x > b ? b : x; }
static SDL_HD inline float sdl__df_clamp(float x, float y, float dy, float a, float b) { (void)y; return x >= a && x <= b ? dy : 0.0f; }
/* sin, cos    f' = cos x, -sin x */
static SDL_HD inline float sdl__f_sin(float x, float a, float b) { (void)a; (void)b; return sinf(x); }
static SDL_HD inline float sdl__df_sin(float x, float y, float dy, float a, float b) { (void)y; (void)a; (void)b; return dy * cosf(x); }
static SDL_HD inline float sdl__f_cos(float x, float a, float b) { (void)a; (void)b; return cosf(x); }
static SDL_HD inline float sdl__df_cos(float x, float y, float dy, float a, float b) { (void)y; (void)a; (void)b; return -dy * sinf(x); }
/* hardswish   f = x relu6(x + 3) / 6                   f' = x < -3 ? 0 : x > 3 ? 1 : x/3 + 1/2 (PyTorch's) */
static SDL_HD inline float sdl__f_hardswish(float x, float a, float b) {
    (void)a; (void)b;
    return x <= -3.0f ? 0.0f : x >= 3.0f ? x : x * (x + 3.0f) / 6.0f;
}
static SDL_HD inline float sdl__df_hardswish(float x, float y, float dy, float a, float b) {
    (void)y; (void)a; (void)b;
    return x < -3.0f ? 0.0f : x > 3.0f ? dy : dy * (x / 3.0f + 0.5f);
}
/* the unary ops, one row each (above: their formulas) */
#define SDL_UNARY_OPS(U, X) \
    U(X, LEAKY_RELU, leaky_relu) U(X, GELU, gelu) U(X, TANH, tanh) U(X, SIGMOID, sigmoid) \
    U(X, SILU, silu) U(X, SCALE, scale) U(X, NEG, neg) U(X, EXP, exp) U(X, LOG, log) \
    U(X, SQRT, sqrt) U(X, RSQRT, rsqrt) U(X, ABS, abs) U(X, POW, pow) U(X, CLAMP, clamp) \
    U(X, SIN, sin) U(X, COS, cos) U(X, HARDSWISH, hardswish) U(X, GELU_TANH, gelu_tanh)

/* Elementwise binary ops on equal shapes (the public functions broadcast first, with
   sdl_expand): y = f(a, b),  da += df/da dy,  db += df/db dy. U(X, NAME, name) needs
   sdl__f_name(a, b), sdl__dfa_name(a, b, y, dy) and sdl__dfb_name(a, b, y, dy).
   Comparisons give 1 or 0 and no gradient (their makers record nothing). */
#define SDL_BINARY_OPS(U, X) \
    U(X, SUB, sub) U(X, DIV, div) U(X, MAXIMUM, maximum) U(X, MINIMUM, minimum) \
    U(X, EQ, eq) U(X, NE, ne) U(X, LT, lt) U(X, LE, le) U(X, GT, gt) U(X, GE, ge)
/* sub         y = a - b                 da = 1, db = -1 */
static SDL_HD inline float sdl__f_sub(float a, float b) { return a - b; }
static SDL_HD inline float sdl__dfa_sub(float a, float b, float y, float dy) { (void)a; (void)b; (void)y; return dy; }
static SDL_HD inline float sdl__dfb_sub(float a, float b, float y, float dy) { (void)a; (void)b; (void)y; return -dy; }
/* div         y = a / b                 da = 1/b, db = -a/b^2 */
static SDL_HD inline float sdl__f_div(float a, float b) { return a / b; }
static SDL_HD inline float sdl__dfa_div(float a, float b, float y, float dy) { (void)a; (void)y; return dy / b; }
static SDL_HD inline float sdl__dfb_div(float a, float b, float y, float dy) { (void)y; return -dy * a / (b * b); }
/* maximum     y = a > b ? a : b (NaN wins)   the larger input gets dy; a tie gives each dy/2
   minimum     the same with <  (PyTorch's gradients) */
static SDL_HD inline float sdl__f_maximum(float a, float b) { return a > b || a != a ? a : b; }
static SDL_HD inline float sdl__dfa_maximum(float a, float b, float y, float dy) { (void)y; return a > b ? dy : a == b ? 0.5f * dy : 0.0f; }
static SDL_HD inline float sdl__dfb_maximum(float a, float b, float y, float dy) { (void)y; return b > a ? dy : a == b ? 0.5f * dy : 0.0f; }
static SDL_HD inline float sdl__f_minimum(float a, float b) { return a < b || a != a ? a : b; }
static SDL_HD inline float sdl__dfa_minimum(float a, float b, float y, float dy) { (void)y; return a < b ? dy : a == b ? 0.5f * dy : 0.0f; }
static SDL_HD inline float sdl__dfb_minimum(float a, float b, float y, float dy) { (void)y; return b < a ? dy : a == b ? 0.5f * dy : 0.0f; }
/* comparisons: 1 where true, else 0; no gradient */
#define SDL__CMP(name, expr) \
    static SDL_HD inline float sdl__f_##name(float a, float b) { return (expr) ? 1.0f : 0.0f; } \
    static SDL_HD inline float sdl__dfa_##name(float a, float b, float y, float dy) { (void)a; (void)b; (void)y; (void)dy; return 0.0f; } \
    static SDL_HD inline float sdl__dfb_##name(float a, float b, float y, float dy) { (void)a; (void)b; (void)y; (void)dy; return 0.0f; }
SDL__CMP(eq, a == b) SDL__CMP(ne, a != b) SDL__CMP(lt, a < b) SDL__CMP(le, a <= b) SDL__CMP(gt, a > b) SDL__CMP(ge, a >= b)
#undef SDL__CMP

/* The RNG (>>rng): splitmix64 of (seed, stream, index), and a uniform float in [0, 1) from
   a hash's top 24 bits. Dropout keeps element i when u24(mix(key ^ i)) >= p, key the hash
   of (seed, stream): the CPU and the GPU draw the same mask. */
static SDL_HD inline uint64_t sdl__mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static SDL_HD inline uint64_t sdl__hash_key(uint64_t seed, uint64_t stream) { return sdl__mix64(seed ^ sdl__mix64(stream)); }
static SDL_HD inline uint64_t sdl__hash3(uint64_t seed, uint64_t stream, uint64_t index) {
    return sdl__mix64(sdl__hash_key(seed, stream) ^ index);
}
static SDL_HD inline float sdl__u24(uint64_t h) { return (float)(h >> 40) * (1.0f / 16777216.0f); }
static SDL_HD inline float sdl__dropout_elem(uint64_t key, uint64_t i, float v, float p, float scale) {
    return sdl__u24(sdl__mix64(key ^ i)) >= p ? v * scale : 0.0f;
}

/* Optimizer element updates (>>optim), g the gradient with weight decay and trust applied:
   sgd    v = first ? g : mu v + g;  g = nesterov ? g + mu v : v;  p -= lr g   (v NULL: p -= lr g)
   adam   (adamw decays first: p *= 1 - lr wd; adam adds wd p to g)
          m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
   lamb   the same moments, r = (m / bc1) / (sqrt(v / bc2) + eps) + wd p (returned) */
static SDL_HD inline void sdl__sgd_elem(float *p, float *v, float g, float lr, float mu, bool first, bool nesterov) {
    if (v) {
        *v = first ? g : mu * *v + g;
        g = nesterov ? g + mu * *v : *v;
    }
    *p -= lr * g;
}
static SDL_HD inline void sdl__adam_elem(float *p, float *m, float *v, float g, float b1, float b2, float eps, float step_size,
                                         float sqrt_bc2, float wd, float shrink, bool decoupled) {
    if (decoupled) *p *= shrink;
    else g += wd * *p;
    *m = b1 * *m + (1.0f - b1) * g;
    *v = b2 * *v + (1.0f - b2) * g * g;
    *p -= step_size * *m / (sqrtf(*v) / sqrt_bc2 + eps);
}
static SDL_HD inline float sdl__lamb_elem(float *m, float *v, float g, float p, float b1, float b2, float eps, float bc1, float bc2, float wd) {
    *m = b1 * *m + (1.0f - b1) * g;
    *v = b2 * *v + (1.0f - b2) * g * g;
    return (*m / bc1) / (sqrtf(*v / bc2) + eps) + wd * p;
}

/* Loss elements (>>ops, >>ops-loss), summed in double:
   bce with logits  l = max(x, 0) - x t + ln(1 + e^-|x|)   dl/dx = sigmoid(x) - t
   mse              l = (x - t)^2                          dl/dx = 2 (x - t) */
static SDL_HD inline double sdl__bce_elem(float x, float t) {
    double v = (double)x;
    return (x > 0.0f ? v : 0.0) - v * (double)t + log1p(exp(-fabs(v)));
}
static SDL_HD inline float sdl__bce_grad(float x, float t) { return sdl__act_sigmoid(x) - t; }
static SDL_HD inline double sdl__mse_elem(float x, float t) { return ((double)x - (double)t) * ((double)x - (double)t); }

/* >>decl-autograd */
#define SDL__OP_ENUM(NAME, name, f, b, cf, cb) SDL_OP_##NAME,
typedef enum sdl_op {
    SDL_OP_NONE = 0,
    SDL_OPS(SDL__OP_ENUM)
    SDL_OP_COUNT
} sdl_op;
#undef SDL__OP_ENUM
SDL_API const char *sdl_op_name(sdl_op op); /* "linear"; "none" for SDL_OP_NONE or out of range */

/* One recorded op: what made `out` from `in`, with what settings, and what forward kept
   for backward. Backend kernels receive the node. */
struct sdl_node {
    sdl_op op;
    sdl_tensor *out;
    sdl_tensor **in; /* nin inputs, in the arena beside the node */
    int nin;
    union {
        struct { int stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w; } conv;
        struct { int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w; } pool;
        struct { float eps, momentum; bool training; sdl_tensor *running_mean, *running_var; /* stats may be NULL */
                 void (*sum)(double *v, int64_t n, void *user); void *sum_user; } norm; /* sum: synced batch norm */
        struct { float p; uint64_t seed, stream; } dropout;
        struct { float alpha, beta; } scalar;  /* leaky_relu slope, scale factor, label smoothing; pow exponent; clamp lo, hi */
        struct { int dim, dim1; } axis;  /* concat (dim); transpose (dim, dim1), dim < dim1 */
        struct { int n_head; sdl_dtype p_dtype; } attn; /* p_dtype: how a device kept P (CUDA: bf16/fp16 runs) */
        struct { int64_t padding_idx; } emb; /* the table row that gets no gradient, -1: none */
        struct { int mode; bool batch_first; } rnn; /* mode: sdl_rnn_mode */
        struct { float eps; int groups; } gn;
        struct { int n_head; bool batch_first; } mha;
        struct { int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups; } gconv;
        struct { const struct sdl_function *fn; void *ctx; } func; /* user-defined ops */
    } attr;
    void *saved;   /* arena memory forward left for backward */
    sdl_node *prev; /* the tape, newest first */
    int act;       /* sdl_act fused into the output (the activation epilogue), 0: none */
    /* set by sdl_backward for ops whose backend sets grad_overwrite[op]: bit i says that
       in[i]->grad holds no gradient yet (zeros or stale memory), so the backward kernel
       writes (=) every element of it instead of adding (+=) */
    unsigned grad_fresh;
    uint64_t pass; /* the last sdl_backward pass that reached it */
    bool used;     /* a backward ran through it without retain_graph (it is off the tape) */
};

/* Activation epilogues: an op that takes one applies it to its output in place, y = f(z),
   and its backward first turns dy into dz = f'(z) dy, with f' computed from y (so z need
   not be kept). sdl_linear_act and sdl_conv2d_act take one; a sequential fuses linear + relu
   and conv2d + relu. */
typedef enum sdl_act {
    SDL_ACT_NONE = 0,
    SDL_ACT_RELU         /* y = max(z, 0);  dz = y > 0 ? dy : 0 */
} sdl_act;

/* sdl_backward_ex(loss, NULL) is sdl_backward(loss). Two losses over one graph (C and C++):
      sdl_backward_desc keep = {true};
      sdl_backward_ex(loss1, &keep);     // the graph stays
      sdl_backward(loss2);               // runs through it and drops it */
typedef struct sdl_backward_desc {
    bool retain_graph; /* keep this part of the tape for another backward through it */
} sdl_backward_desc;
SDL_API sdl_result sdl_backward(sdl_tensor *loss);
SDL_API sdl_result sdl_backward_ex(sdl_tensor *loss, const sdl_backward_desc *desc);
SDL_API void sdl_set_grad_enabled(bool enabled);
SDL_API bool sdl_is_grad_enabled(void);
SDL_API sdl_tensor *sdl_detach(sdl_tensor *x); /* same data, no gradient flows back */
/* Backward from a non-scalar output: out->grad += grad (out->numel floats on out's device;
   a device tensor must have no gradient yet), then the tape's nodes that out depends on run,
   newest first, and leave the tape. Nodes of other graphs stay on it for their own backward
   (a pipeline stage keeps one graph per micro-batch in flight). Parameter grad hooks fire
   as in sdl_backward, at the earliest reader on the tape when this call runs. */
SDL_API sdl_result sdl_backward_grad(sdl_tensor *out, const float *grad);

/* >>decl-backend: per-device kernels, indexed by sdl_op. */
typedef void (*sdl_kernel_fn)(sdl_node *node);
struct sdl_optim;
typedef struct sdl_backend {
    const char *name;
    void *(*alloc)(size_t bytes);
    void (*dealloc)(void *p);
    void (*memset0)(void *dst, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev);
    void *(*arena_alloc)(size_t bytes); /* zeroed step memory on the device */
    /* step memory left as it is (op outputs and saved data, which device kernels write
       whole); NULL: arena_alloc */
    void *(*arena_alloc_raw)(size_t bytes);
    void (*arena_reset)(void);
    sdl_kernel_fn forward[SDL_OP_COUNT];
    sdl_kernel_fn backward[SDL_OP_COUNT];
    /* one optimizer step on a model whose flat arrays (and the optimizer state) live on this
       device; sdl_optim_step calls it instead of the CPU loop */
    sdl_result (*optim_step)(struct sdl_optim *o);
    /* 1 where backward[op] honours node->grad_fresh; 0 (the default): sdl_backward hands
       that op zeroed gradient buffers, into which it adds */
    unsigned char grad_overwrite[SDL_OP_COUNT];
    /* the flat gradient array on this device (sdl_grad_scale, sdl_clip_grad_norm, the loss
       scaler): x *= s, and the sum of x^2 in double in a fixed order (the same bits every
       run; NaN or Inf when an element is). NULL: the device has none, those calls fail. */
    void (*scale)(float *x, int64_t n, float s);
    double (*sumsq)(const float *x, int64_t n);
    /* whole tensors and model arrays across devices (sdl_tensor_to, sdl_model_to,
       checkpoints): like copy, but false (and why, in sdl_last_error) when it failed or may
       not run now (CUDA: a host copy inside a graph capture). NULL: copy, then the error
       state says. */
    bool (*copy_checked)(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev);
    /* mixed precision (sdl_autocast): SDL_BF16 or SDL_F16 GEMM inputs, SDL_F32 none. NULL:
       the device computes in f32 only. */
    sdl_result (*set_precision)(sdl_dtype dtype);
} sdl_backend;
SDL_API void sdl_register_backend(sdl_device device, const sdl_backend *backend);
SDL_API const sdl_backend *sdl_get_backend(sdl_device device);

/* >>decl-device: devices by name, as PyTorch writes them, so one program runs anywhere:

      sdl_device dev;
      if (sdl_device_parse(flag, &dev) != SDL_OK) ...  // "cpu", "cuda", "cuda:1"
      sdl_model_to(model, dev);                         // before making the optimizer
      x = sdl_tensor_to(x, dev);                        // each batch

   A backend that is not compiled in is an error of sdl_device_parse, which says how to
   build it. A device backend starts on first use (sdl_model_to, sdl_tensor_to), on the
   index the name gave (one device per process). A program that includes sdl_cuda.h with
   SDL_CUDA_IMPLEMENTATION after sdl.h has the CUDA backend when nvcc compiles it and none
   when cc does (the implementation is then empty), with no #ifdef of its own. A backend's
   implementation registers how to start it with sdl_register_device. */
typedef sdl_result (*sdl_device_open_fn)(int index); /* index -1: the current/default one */
SDL_API void sdl_register_device(sdl_device device, sdl_device_open_fn open);
SDL_API sdl_result sdl_device_parse(const char *name, sdl_device *device);
SDL_API const char *sdl_device_name(sdl_device device); /* "cpu", "cuda" */
/* moves the model's packed parameters, gradients and buffers to device (packing it first);
   a no-op when they are there. Optimizer state lives where the model was when the
   optimizer was made: move the model first, as in PyTorch. */
SDL_API sdl_result sdl_model_to(sdl_model *m, sdl_device device);
/* a step-arena copy of t on device (t itself when it is there); no gradient flows back */
SDL_API sdl_tensor *sdl_tensor_to(sdl_tensor *t, sdl_device device);
/* mixed precision on device for the steps that follow, as torch.autocast(device, dtype)
   does it for matmuls: SDL_BF16 or SDL_F16 make every GEMM (linear, convolutions,
   attention; forward and backward) read 2-byte copies of its inputs and sum in f32, while
   parameters, gradients, optimizer state and the other ops stay f32; SDL_F32 turns it off.
   fp16 needs a loss scale (sdl_loss_scaler). Only CUDA has such GEMMs (sdl_cuda.h,
   Precision): elsewhere, the CPU included, bf16/f16 is an SDL_ERR_DEVICE that says so and
   f32 is a no-op. */
SDL_API sdl_result sdl_autocast(sdl_device device, sdl_dtype dtype);

/* >>decl-ops. Shapes: x (B, ...) batch first; images NCHW. Each returns a new arena
   tensor, or NULL with sdl_last_error() set. */
SDL_API sdl_tensor *sdl_linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b);      /* x (..., in), w (out, in), b (out) or NULL */
/* act(linear(x, w, b)) as one op: the same numbers as the two ops, one pass less each way */
SDL_API sdl_tensor *sdl_linear_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, sdl_act act);
/* act(conv2d(x, w, b, stride, pad)) as one op, the same way */
SDL_API sdl_tensor *sdl_conv2d_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, sdl_act act);
SDL_API sdl_tensor *sdl_conv2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad);  /* w (C_out, C_in, kh, kw) */
SDL_API sdl_tensor *sdl_conv_transpose2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, int out_pad); /* w (C_in, C_out, kh, kw) */
/* nn.Conv2d's other settings; zero means PyTorch's default (stride 1, pad 0, dilation 1,
   groups 1). same: padding='same' (stride 1; an odd total pads one more at the bottom and
   right, as PyTorch). w (C_out, C_in/groups, kh, kw); groups = C_in is depthwise. A dense
   conv (groups 1, dilation 1) runs sdl_conv2d's op with its fast paths on any device;
   groups, dilation or uneven 'same' run a general op, CPU only for now. */
typedef struct sdl_conv2d_desc {
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dilation_h, dilation_w;
    int groups;
    bool same;
} sdl_conv2d_desc;
SDL_API sdl_tensor *sdl_conv2d_ex(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, const sdl_conv2d_desc *d);
SDL_API sdl_tensor *sdl_max_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_avg_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_global_avg_pool(sdl_tensor *x);                            /* (N,C,H,W) -> (N,C) */
/* PyTorch's ceil_mode=True: the output size rounds up, so a last, partial window is kept
   (it must start inside the input or the left padding); avg divides it by its part inside
   the padded input. CPU; CUDA refuses avg windows that hang over. */
SDL_API sdl_tensor *sdl_max_pool2d_ceil(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_avg_pool2d_ceil(sdl_tensor *x, int kernel, int stride, int pad);
/* x (N, C) or (N, C, H, W); gamma, beta (C), or both NULL for no affine. Training normalises
   with the batch stats and, if the running stats are given, sets running = (1 - momentum)
   running + momentum stat (unbiased var, as PyTorch; momentum 0.1, eps 1e-5 are its defaults).
   Eval uses running_mean/running_var (needed then) and leaves them alone. */
SDL_API sdl_tensor *sdl_batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps);
/* Synced batch norm (PyTorch's SyncBatchNorm), training only, CPU: sum(v, n, user) adds n
   doubles in place over a group of processes (sdl_mpi.h's sdl_mpi_sync_batch_norm gives MPI's).
   Forward normalises with the group's mean and biased var (two sums of C + 1 values: the
   counts and sums, then the squared deviations) and moves the running stats with the group's
   unbiased var, the same on every process; backward's dx uses the group's sums of dy and
   dy xhat over the group's count, dgamma and dbeta this process's own (data parallel then
   averages them). Every process of the group must call it with the same C. */
SDL_API sdl_tensor *sdl_batch_norm_synced(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                          sdl_tensor *running_var, float momentum, float eps,
                                          void (*sum)(double *v, int64_t n, void *user), void *user);
/* over the last dim D; gamma, beta (D), or both NULL for no affine */
SDL_API sdl_tensor *sdl_layer_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, float eps);
/* F.group_norm: x (N, C, ...), the channels in `groups` groups, each (n, group) normalised
   over its channels and positions; gamma, beta (C) or both NULL. CPU only for now. */
SDL_API sdl_tensor *sdl_group_norm(sdl_tensor *x, int groups, sdl_tensor *gamma, sdl_tensor *beta, float eps);
/* inverted dropout: kept values scaled by 1/(1-p); the mask comes from the global RNG (a seed
   fixes it on any thread count). Eval or p = 0 returns x itself. */
SDL_API sdl_tensor *sdl_dropout(sdl_tensor *x, float p, bool training);
SDL_API sdl_tensor *sdl_embedding(sdl_tensor *ids, sdl_tensor *table); /* ids i32 (...), table (V, D) -> (..., D) */
/* PyTorch's padding_idx: as sdl_embedding, but row padding_idx (negative: V + padding_idx)
   gets no gradient. CPU only for now (CUDA returns an error). */
SDL_API sdl_tensor *sdl_embedding_pad(sdl_tensor *ids, sdl_tensor *table, int64_t padding_idx);
SDL_API sdl_tensor *sdl_relu(sdl_tensor *x);
SDL_API sdl_tensor *sdl_leaky_relu(sdl_tensor *x, float slope);
SDL_API sdl_tensor *sdl_gelu(sdl_tensor *x);      /* exact: x/2 (1 + erf(x/sqrt 2)), PyTorch's default */
SDL_API sdl_tensor *sdl_gelu_tanh(sdl_tensor *x); /* tanh form, GELU(approximate='tanh') (GPT-2) */
SDL_API sdl_tensor *sdl_tanh(sdl_tensor *x);
SDL_API sdl_tensor *sdl_sigmoid(sdl_tensor *x);
SDL_API sdl_tensor *sdl_silu(sdl_tensor *x);
SDL_API sdl_tensor *sdl_softmax(sdl_tensor *x);     /* over the last dim */
SDL_API sdl_tensor *sdl_log_softmax(sdl_tensor *x); /* over the last dim */
/* a + b, a * b: b's shape right-aligned to a's, each dim equal or 1 (bias-style) */
SDL_API sdl_tensor *sdl_add(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_mul(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_scale(sdl_tensor *x, float s);
/* elementwise, differentiable, PyTorch's names (>>formulas has each f and f') */
SDL_API sdl_tensor *sdl_neg(sdl_tensor *x);
SDL_API sdl_tensor *sdl_exp(sdl_tensor *x);
SDL_API sdl_tensor *sdl_ln(sdl_tensor *x); /* torch.log (sdl_log is the logger) */
SDL_API sdl_tensor *sdl_sqrt(sdl_tensor *x);
SDL_API sdl_tensor *sdl_rsqrt(sdl_tensor *x);
SDL_API sdl_tensor *sdl_abs(sdl_tensor *x);
SDL_API sdl_tensor *sdl_pow(sdl_tensor *x, float exponent);
SDL_API sdl_tensor *sdl_clamp(sdl_tensor *x, float lo, float hi); /* -INFINITY / INFINITY: no bound */
SDL_API sdl_tensor *sdl_sin(sdl_tensor *x);
SDL_API sdl_tensor *sdl_cos(sdl_tensor *x);
SDL_API sdl_tensor *sdl_hardswish(sdl_tensor *x); /* x relu6(x + 3) / 6 (MobileNetV3) */
SDL_API sdl_tensor *sdl_residual_add(sdl_tensor *a, sdl_tensor *b); /* same shapes */
SDL_API sdl_tensor *sdl_concat(sdl_tensor *a, sdl_tensor *b, int dim);
SDL_API sdl_tensor *sdl_reshape(sdl_tensor *x, sdl_shape shape); /* a view; one dim may be -1 */
SDL_API sdl_tensor *sdl_flatten(sdl_tensor *x);                   /* (N, ...) -> (N, rest) view */
SDL_API sdl_tensor *sdl_transpose(sdl_tensor *x, int dim0, int dim1); /* a copy */
/* q, k, v (B, n_head, T, hd) -> (B, n_head, T, hd), causal, scaled by 1/sqrt(hd) */
SDL_API sdl_tensor *sdl_attention(sdl_tensor *q, sdl_tensor *k, sdl_tensor *v);
SDL_API sdl_tensor *sdl_sum(sdl_tensor *x);  /* -> scalar */
SDL_API sdl_tensor *sdl_mean(sdl_tensor *x); /* -> scalar */

/* >>decl-losses: each returns the scalar mean over the batch. targets are i32 class ids
   (cross_entropy, nll) or floats shaped like the input (bce_logits, mse). */
SDL_API sdl_tensor *sdl_cross_entropy(sdl_tensor *logits, sdl_tensor *targets, float label_smoothing);
SDL_API sdl_tensor *sdl_nll_loss(sdl_tensor *log_probs, sdl_tensor *targets);
SDL_API sdl_tensor *sdl_bce_with_logits(sdl_tensor *logits, sdl_tensor *targets); /* mean over every element */
SDL_API sdl_tensor *sdl_mse_loss(sdl_tensor *x, sdl_tensor *targets);
/* number of rows whose arg-max equals the target */
SDL_API int64_t sdl_count_correct(const sdl_tensor *logits, const sdl_tensor *targets);

/* >>decl-general: PyTorch's general tensor ops, differentiable (gradients flow to every
   f32 input; index tensors are i32 on the CPU). dims count from the end when negative.
   Outputs are new contiguous arena tensors: a permute, slice or expand is a copy, not a
   view. All run on the CPU; on CUDA the elementwise ones (unary, binary, where,
   broadcasting), the shape ops (index tensors stay on the CPU), the reductions and
   matmul do; argmax is CPU-only (an error elsewhere). */
/* NumPy broadcasting on both sides (sdl_add and sdl_mul broadcast this way too) */
SDL_API sdl_tensor *sdl_sub(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_div(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_maximum(sdl_tensor *a, sdl_tensor *b); /* a tie sends half the gradient each way */
SDL_API sdl_tensor *sdl_minimum(sdl_tensor *a, sdl_tensor *b);
/* comparisons: 1.0 where true, else 0.0 (f32, not bool); they record no gradient */
SDL_API sdl_tensor *sdl_eq(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_ne(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_lt(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_le(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_gt(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_ge(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_scalar(float value); /* a 0-d CPU arena tensor; broadcasts on any device */
SDL_API sdl_tensor *sdl_where(sdl_tensor *cond, sdl_tensor *a, sdl_tensor *b); /* cond != 0 ? a : b, all broadcast */
SDL_API sdl_tensor *sdl_masked_fill(sdl_tensor *x, sdl_tensor *mask, float value); /* value where mask != 0 */
/* reductions over ndims dims (ndims 0: all), dropped or kept as 1 (keepdim) */
SDL_API sdl_tensor *sdl_sum_dims(sdl_tensor *x, int ndims, const int *dims, bool keepdim);
SDL_API sdl_tensor *sdl_mean_dims(sdl_tensor *x, int ndims, const int *dims, bool keepdim);
SDL_API sdl_tensor *sdl_logsumexp(sdl_tensor *x, int ndims, const int *dims, bool keepdim);
/* sum (x - mean)^2 / (n - correction): correction 1 is PyTorch's default (unbiased) */
SDL_API sdl_tensor *sdl_var_dims(sdl_tensor *x, int ndims, const int *dims, int correction, bool keepdim);
/* torch.max(x, dim): the values; *indices (may be NULL) gets sdl_argmax's i32 indices */
SDL_API sdl_tensor *sdl_max_dim(sdl_tensor *x, int dim, bool keepdim, sdl_tensor **indices);
SDL_API sdl_tensor *sdl_argmax(sdl_tensor *x, int dim, bool keepdim); /* i32, no gradient */
SDL_API sdl_tensor *sdl_softmax_dim(sdl_tensor *x, int dim);
SDL_API sdl_tensor *sdl_log_softmax_dim(sdl_tensor *x, int dim);
/* torch.matmul: 1-D operands, broadcast batch dims; bmm is (B, M, K) @ (B, K, N) */
SDL_API sdl_tensor *sdl_matmul(sdl_tensor *a, sdl_tensor *b);
/* shape ops */
SDL_API sdl_tensor *sdl_permute(sdl_tensor *x, const int *dims);     /* y dim d = x dim dims[d] */
SDL_API sdl_tensor *sdl_slice(sdl_tensor *x, int dim, int64_t start, int64_t end, int64_t step); /* x[start:end:step] */
SDL_API sdl_tensor *sdl_narrow(sdl_tensor *x, int dim, int64_t start, int64_t length);
/* pieces into out[0..cap-1]; return how many, -1 on error */
SDL_API int sdl_split(sdl_tensor *x, int64_t split_size, int dim, sdl_tensor **out, int cap);
SDL_API int sdl_chunk(sdl_tensor *x, int chunks, int dim, sdl_tensor **out, int cap);
SDL_API sdl_tensor *sdl_cat(int n, sdl_tensor *const *xs, int dim);
SDL_API sdl_tensor *sdl_stack(int n, sdl_tensor *const *xs, int dim);
SDL_API sdl_tensor *sdl_expand(sdl_tensor *x, sdl_shape shape); /* -1 keeps a dim; x itself when equal */
SDL_API sdl_tensor *sdl_index_select(sdl_tensor *x, int dim, sdl_tensor *index);  /* index i32 (n) */
SDL_API sdl_tensor *sdl_gather(sdl_tensor *x, int dim, sdl_tensor *index);        /* y shaped like index */
SDL_API sdl_tensor *sdl_scatter_add(sdl_tensor *x, int dim, sdl_tensor *index, sdl_tensor *src);
typedef enum sdl_pad_mode {
    SDL_PAD_CONSTANT = 0, /* value outside */
    SDL_PAD_REFLECT       /* mirrored, the edge not repeated (widths < the dim) */
} sdl_pad_mode;
/* pad[2i], pad[2i+1]: the widths before and after the i-th dim from the end (F.pad) */
SDL_API sdl_tensor *sdl_pad(sdl_tensor *x, int npad, const int64_t *pad, sdl_pad_mode mode, float value);

/* >>decl-function: user-defined ops, like torch.autograd.Function, and a gradient check.
   Write forward and backward over raw floats; sdl_function_apply runs forward (on the CPU,
   grad mode off inside, so ops it calls are not recorded) and records one node on the tape
   like any op; sdl_backward calls backward with out->grad filled. A callback that returns
   an error (after sdl_fail, or just a code) makes the apply return NULL, or sdl_backward
   return the code, with sdl_last_error() naming the function:

      static sdl_result cube_fwd(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in) {
          const float *x = sdl_f32(in[0]); float *y = sdl_f32(out);
          for (int64_t i = 0; i < out->numel; i++) y[i] = x[i] * x[i] * x[i];
          return SDL_OK;
      }
      static sdl_result cube_bwd(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in) {
          const float *x = sdl_f32(in[0]);                      // dx += 3 x^2 dy
          for (int64_t i = 0; i < out->numel; i++) in[0]->grad[i] += 3 * x[i] * x[i] * out->grad[i];
          return SDL_OK;
      }
      static const sdl_function cube = {"cube", cube_fwd, cube_bwd};
      sdl_tensor *y = sdl_function_apply(&cube, sdl_tensor_shape(x), 1, &x, NULL);

   Inputs are contiguous CPU tensors of any dtype; out is a new f32 arena tensor of
   out_shape whose data forward must fill (it starts uninitialised). Gradients are f32. */
typedef struct sdl_function {
    const char *name;
    /* fill out->data from in[0..nin-1]->data; ctx is the pointer given to sdl_function_apply */
    sdl_result (*forward)(void *ctx, sdl_tensor *out, int nin, sdl_tensor *const *in);
    /* add (+=) into in[i]->grad for each in[i] whose grad is non-NULL, from out->grad.
       NULL: the function has no gradient (sdl_backward through it fails, naming it). */
    sdl_result (*backward)(void *ctx, const sdl_tensor *out, int nin, sdl_tensor *const *in);
} sdl_function;
SDL_API sdl_tensor *sdl_function_apply(const sdl_function *fn, sdl_shape out_shape, int nin, sdl_tensor *const *in, void *ctx);
/* From forward: `bytes` of zeroed step-arena memory kept for backward, where
   sdl_function_saved(out) returns it (ctx.save_for_backward). One block per call of the
   function (put several things in one struct); NULL with an error when called elsewhere. */
SDL_API void *sdl_function_save(sdl_tensor *out, size_t bytes);
SDL_API void *sdl_function_saved(const sdl_tensor *out);

/* sdl_gradcheck (torch.autograd.gradcheck for f32): f builds an output from the inputs with
   any ops (user functions too). For L = sum(v * f(in)), v fixed random in [-1, 1), it
   compares the gradient sdl_backward gives each f32 input that requires a gradient with
   central differences (L(x + h) - L(x - h)) / 2h summed in double, h = eps (1 + |x|), one
   element at a time. An element passes when |analytic - numeric| <= atol + rtol |numeric|.
   Returns true when all pass; *max_err (may be NULL) gets the largest |analytic - numeric|;
   on a failure sdl_last_error() names the input, element and both values. Inputs must be
   CPU tensors; their data and grads are left as they were. Call it with an empty tape
   (before building a loss, or after sdl_backward); each evaluation takes arena memory,
   so keep inputs small (tens to hundreds of elements). desc may be NULL. */
typedef sdl_tensor *(*sdl_gradcheck_fn)(void *user, int nin, sdl_tensor *const *in);
typedef struct sdl_gradcheck_desc {
    double eps;  /* 0: 1e-3 */
    double atol; /* 0: 1e-3 */
    double rtol; /* 0: 1e-2 */
} sdl_gradcheck_desc;
SDL_API bool sdl_gradcheck(sdl_gradcheck_fn f, void *user, int nin, sdl_tensor *const *in,
                           const sdl_gradcheck_desc *desc, double *max_err);

/* >>decl-model */
/* A hook returns SDL_OK, or an error (after sdl_fail) that ends the backward pass and is what
   sdl_backward returns (e.g. sdl_mpi.h's DDP hook when backward runs twice without a sync). */
typedef sdl_result (*sdl_grad_hook)(void *user, sdl_model *m, int param_index);

struct sdl_model {
    int nparams, nbuffers;
    sdl_tensor **params;   /* in creation order */
    sdl_tensor **buffers;
    int64_t param_floats, buffer_floats;
    float *param_data;     /* after packing: every parameter, one array */
    float *grad_data;      /* after packing: every gradient, same offsets */
    float *buffer_data;
    int64_t *param_offset; /* float offset of each parameter in param_data */
    bool packed;
    bool training;
    sdl_grad_hook grad_hook;
    void *grad_hook_user;
    bool *grad_zero;       /* after packing: per parameter, its gradient is all zeros now
                              (set by zeroing, cleared when backward writes it), so backward
                              may write it (=) instead of adding into it. Code that writes
                              gradients itself between zeroing and backward clears it. */
    sdl_module **modules;  /* every layer made on this model, freed with it */
    int nmodules;
    /* called before a backward kernel that reads a parameter of this model runs, once per
       such node and parameter (ZeRO stage 3 gathers the layer's parameters again here) */
    sdl_grad_hook pre_grad_hook;
    void *pre_grad_hook_user;
};

/* The model draws its initial weights from the global RNG after sdl_manual_seed(seed). */
SDL_API sdl_model *sdl_model_new(uint64_t seed);
SDL_API void sdl_model_free(sdl_model *m);
SDL_API sdl_tensor *sdl_model_param(sdl_model *m, const char *name, sdl_shape shape, bool decay);
SDL_API sdl_tensor *sdl_model_buffer(sdl_model *m, const char *name, sdl_shape shape);
SDL_API sdl_result sdl_model_pack(sdl_model *m); /* done on first use; no params after it */
SDL_API sdl_tensor *sdl_model_find(sdl_model *m, const char *name); /* param or buffer */
SDL_API int64_t sdl_model_num_params(const sdl_model *m);
SDL_API void sdl_model_zero_grad(sdl_model *m);
/* on: frees the flat gradient array; backward then gives each parameter a gradient in the
   step arena, to be read before sdl_arena_reset, and sdl_model_zero_grad forgets them (the
   params' grad pointers go NULL). ZeRO stage 2 (sdl_mpi.h) keeps only a shard that way.
   off: a zeroed flat array again. CPU models. */
SDL_API sdl_result sdl_model_arena_grads(sdl_model *m, bool on);
/* on: frees the flat parameter array; each parameter's data is NULL until its owner points it
   at memory of its own (ZeRO stage 3 gathers a layer's parameters just before its forward;
   a shard model points into a whole model's array), and an op given a parameter without
   data fails, naming it. off: a zeroed flat array again. CPU models. */
SDL_API sdl_result sdl_model_external_params(sdl_model *m, bool on);
SDL_API void sdl_model_train(sdl_model *m, bool training);
SDL_API void sdl_model_set_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user);
SDL_API void sdl_model_set_pre_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user);
/* Freezing (PyTorch's p.requires_grad_(False)): a frozen parameter gets no gradient, and
   every optimizer leaves it and its state exactly as they are (no weight decay, momentum
   or Adam moments; its gradient is zeroed). p->requires_grad = false is the same thing.
   The optimizer's step count (Adam's t) is one for the whole model: a parameter unfrozen
   later takes bias corrections for the steps the model has taken. A captured CUDA step
   (sdl_cuda_graph) replays the freezing it was captured with: capture again after a change. */
SDL_API sdl_result sdl_param_freeze(sdl_tensor *p, bool frozen);
/* every parameter whose name starts with prefix ("backbone."; "" all of them); an error
   when none does */
SDL_API sdl_result sdl_model_freeze(sdl_model *m, const char *prefix, bool frozen);

/* >>decl-layers. Every layer is an sdl_module; sdl_forward(layer, x) runs it. */
typedef sdl_tensor *(*sdl_forward_fn)(sdl_module *self, sdl_tensor *x);
struct sdl_module {
    const char *kind;      /* "linear", "conv2d", ... */
    char name[64];         /* "fc1"; parameters are name + ".weight" */
    sdl_forward_fn forward;
    sdl_model *model;
    sdl_tensor *weight, *bias;               /* NULL when the layer has none */
    sdl_tensor *running_mean, *running_var;  /* batch norm */
    int stride, pad, out_pad, kernel;
    float p;                                 /* dropout probability, leaky slope, eps */
    sdl_module **children;                   /* sequential */
    int nchildren, cap_children;
    void *user;                              /* for your own modules */
    bool ceil_mode;                          /* pooling: PyTorch's ceil_mode (set it after making the layer) */
    int64_t padding_idx;                     /* sdl_embedding_pad_layer */
};
SDL_API sdl_tensor *sdl_forward(sdl_module *layer, sdl_tensor *x);
SDL_API sdl_module *sdl_module_new(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd);
SDL_API sdl_module *sdl_sequential(sdl_model *m, const char *name);
SDL_API sdl_result sdl_seq_add(sdl_module *seq, sdl_module *layer);
SDL_API sdl_module *sdl_linear_layer(sdl_model *m, const char *name, int64_t in, int64_t out, bool bias);
SDL_API sdl_module *sdl_conv2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel, int stride, int pad, bool bias);
SDL_API sdl_module *sdl_conv_transpose2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel, int stride, int pad, int out_pad, bool bias);
SDL_API sdl_module *sdl_conv2d_ex_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel_h, int kernel_w,
                                        const sdl_conv2d_desc *d, bool bias); /* see sdl_conv2d_ex */
SDL_API sdl_module *sdl_batch_norm_layer(sdl_model *m, const char *name, int64_t channels);
SDL_API sdl_module *sdl_layer_norm_layer(sdl_model *m, const char *name, int64_t dim);
SDL_API sdl_module *sdl_embedding_layer(sdl_model *m, const char *name, int64_t vocab, int64_t dim);
/* nn.Embedding(vocab, dim, padding_idx): that row starts at zero and gets no gradient */
SDL_API sdl_module *sdl_embedding_pad_layer(sdl_model *m, const char *name, int64_t vocab, int64_t dim, int64_t padding_idx);
SDL_API sdl_module *sdl_relu_layer(sdl_model *m);
SDL_API sdl_module *sdl_leaky_relu_layer(sdl_model *m, float slope);
SDL_API sdl_module *sdl_gelu_layer(sdl_model *m);      /* exact (erf), nn.GELU() */
SDL_API sdl_module *sdl_gelu_tanh_layer(sdl_model *m); /* nn.GELU(approximate='tanh') */
SDL_API sdl_module *sdl_softmax_layer(sdl_model *m);   /* over the last dim, nn.Softmax(dim=-1) */
SDL_API sdl_module *sdl_log_softmax_layer(sdl_model *m);
SDL_API sdl_module *sdl_identity_layer(sdl_model *m);  /* returns x itself, nn.Identity() */

/* Recurrent layers as nn.RNN (tanh), nn.LSTM and nn.GRU: the same gate order and parameter
   names ("name.weight_ih_l0" (G*H, I), "weight_hh_l0" (G*H, H), "bias_ih_l0", "bias_hh_l0",
   then _l1 ...; G = 4 gates i,f,g,o for the LSTM, 3 gates r,z,n for the GRU), so a torch
   state_dict loads as it is; the same init, U(+-1/sqrt(hidden_size)). dropout applies to
   each layer's output but the last while the model trains. Each layer's recurrence over the
   sequence is one op (CPU only for now; CUDA returns an error). */
typedef enum sdl_rnn_mode { SDL_RNN_DEFAULT = 0 /* tanh */, SDL_RNN_TANH, SDL_RNN_LSTM, SDL_RNN_GRU } sdl_rnn_mode;
typedef struct sdl_rnn_desc {
    sdl_rnn_mode mode;
    int64_t input_size, hidden_size;
    int num_layers;     /* 0: 1 */
    bool no_bias;       /* PyTorch's bias=False */
    bool batch_first;   /* x and the output (B, T, .) instead of (T, B, .) */
    float dropout;
} sdl_rnn_desc;
SDL_API sdl_module *sdl_rnn_layer(sdl_model *m, const char *name, const sdl_rnn_desc *desc);
/* x (T, B, I), or (B, T, I) with batch_first -> the last layer's h for every step, (T, B, H)
   or (B, T, H). h0, c0 (num_layers, B, H) or NULL for zeros (c0: LSTM only). h_n, c_n, when
   not NULL, get the final states (num_layers, B, H) (c_n: LSTM only). sdl_forward(layer, x)
   is this with zero states. */
SDL_API sdl_tensor *sdl_rnn_forward(sdl_module *layer, sdl_tensor *x, sdl_tensor *h0, sdl_tensor *c0,
                                    sdl_tensor **h_n, sdl_tensor **c_n);

/* nn.GroupNorm(groups, channels): weight 1, bias 0, eps 1e-5 */
SDL_API sdl_module *sdl_group_norm_layer(sdl_model *m, const char *name, int groups, int64_t channels);

/* Multi-head attention as nn.MultiheadAttention(embed_dim, num_heads, bias, batch_first)
   with PyTorch's parameters and init: "name.in_proj_weight" (3E, E) = [W_q; W_k; W_v],
   "in_proj_bias" (3E), "out_proj.weight" (E, E), "out_proj.bias" (E). No attention dropout.
   causal masks each query's later keys (a causal attn_mask). CPU only for now. */
typedef struct sdl_mha_desc {
    int64_t embed_dim;
    int num_heads;
    bool no_bias;      /* PyTorch's bias=False */
    bool batch_first;  /* (B, T, E) instead of (T, B, E) */
    bool causal;
} sdl_mha_desc;
SDL_API sdl_module *sdl_mha_layer(sdl_model *m, const char *name, const sdl_mha_desc *desc);
/* query (Tq, B, E), key and value (Tk, B, E) ((B, T, E) with batch_first); key NULL: the
   query (self-attention), value NULL: the key. attn_mask (Tq, Tk): f32 added to the scores,
   or u8 where nonzero means "may not attend" (PyTorch's bool mask); key_padding_mask (B, Tk)
   u8 or i32, nonzero = a padding key. Either may be NULL. Returns (Tq, B, E) or (B, Tq, E).
   A query that may attend to no key gets 0 (PyTorch: NaN). sdl_forward(layer, x) is
   self-attention with no masks but causal. */
SDL_API sdl_tensor *sdl_mha_forward(sdl_module *layer, sdl_tensor *query, sdl_tensor *key, sdl_tensor *value,
                                    sdl_tensor *attn_mask, sdl_tensor *key_padding_mask);

/* Model summary and roofline (Keras' model.summary() plus the cost of each layer). A
   machine's roofs: peak FLOP/s and memory bytes/s. sdl_roofline_cpu() measures this CPU
   (FMA chains of this build's widest vectors on every sdl thread, and a parallel read of
   64 MiB; ~50 ms); for a GPU give its spec sheet's numbers, e.g. an H100 SXM's
   {989e12 (bf16 dense), 3.35e12, "H100 SXM"}. */
typedef struct sdl_roofline { double flops, bytes_per_s; const char *name; } sdl_roofline;
SDL_API sdl_roofline sdl_roofline_cpu(void);
typedef struct sdl_summary_row {
    char name[64];         /* the layer's name, or its kind when unnamed */
    const char *kind;
    sdl_shape out_shape;
    int64_t params;        /* parameters this layer reads (a shared one counts at its first use) */
    double flops, bytes;   /* forward: FLOPs (a multiply-add is 2), bytes each op reads and writes */
} sdl_summary_row;
typedef struct sdl_summary {
    sdl_summary_row *rows; /* one per layer; sequentials are opened up */
    int nrows;
    int64_t params;
    double flops, bytes;   /* forward totals; a training step is about 3x the FLOPs */
    sdl_roofline machine;
} sdl_summary;
/* Runs one forward of `net` on zeros of input_shape (i32 ids when it starts with an
   embedding) in eval mode, counting each layer's ops, and prints the table to `out` (NULL:
   nothing): name (type), output shape, parameters, FLOPs, bytes, FLOP/byte and whether the
   layer is compute- or memory-bound on `machine` (NULL: sdl_roofline_cpu()), i.e. above or
   below the ridge FLOP/s / bytes/s. With `result`, the numbers (free with sdl_summary_free).
   Call it between steps: it resets the step arena. */
SDL_API sdl_result sdl_model_summary(sdl_module *net, sdl_shape input_shape, const sdl_roofline *machine, FILE *out, sdl_summary *result);
SDL_API void sdl_summary_free(sdl_summary *s);
/* For an epoch's log line: the model FLOPs utilisation of `steps` training steps of the
   summarised batch shape that took `seconds` (3x the forward FLOPs per step, over
   s->machine.flops), and the achieved FLOP/s in *flops_per_s when not NULL. */
SDL_API double sdl_summary_mfu(const sdl_summary *s, double steps, double seconds, double *flops_per_s);
SDL_API sdl_module *sdl_tanh_layer(sdl_model *m);
SDL_API sdl_module *sdl_sigmoid_layer(sdl_model *m);
SDL_API sdl_module *sdl_silu_layer(sdl_model *m);
SDL_API sdl_module *sdl_dropout_layer(sdl_model *m, float p);
SDL_API sdl_module *sdl_max_pool2d_layer(sdl_model *m, int kernel, int stride);
SDL_API sdl_module *sdl_avg_pool2d_layer(sdl_model *m, int kernel, int stride);
SDL_API sdl_module *sdl_global_avg_pool_layer(sdl_model *m);
SDL_API sdl_module *sdl_flatten_layer(sdl_model *m);

/* >>decl-optim: every optimizer updates the model's flat parameter array in one pass.
   Its state (momentum, Adam moments) is one flat array too: nstate * param_floats floats,
   slot k of parameter i at state + k * param_floats + param_offset[i].

   Parameters made with decay = false (biases, norm scales) get no weight decay and, in
   LARS and LAMB, no trust-ratio adaptation (their ratio is 1).

      sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 5e-4f, true);     // lr, momentum, wd, nesterov
      sdl_optim *g = sdl_adam(m, 2e-4f, 0.5f, 0.999f, 0.0f);      // lr, beta1, beta2, wd
      sdl_optim_desc d = {.kind = SDL_OPTIM_LAMB, .lr = 1e-3f, .weight_decay = 0.01f,
                          .accum_steps = 4};                       // or fill a desc
      sdl_optim *o = sdl_optim_new(m, &d);

   The step: sdl_backward(loss); sdl_optim_step(opt);  An update zeroes the gradients
   (calling sdl_model_zero_grad after it as well does no harm).

   Gradient accumulation: with desc.accum_steps = k, only every k-th call of sdl_optim_step
   updates; it first scales the summed gradients by 1/k, so k micro-batches of B/k with a
   mean loss act as one batch of B. The other calls leave the gradients adding up: do not
   zero them between micro-batches. sdl_optim_is_update_step() says, before the backward,
   whether the coming sdl_optim_step will update (the MPI helper allreduces only then).
   o->step counts updates, not calls, so schedules advance once per k micro-batches. */
/* One row per optimizer: X(KIND, name, state slots (1: only with momentum), their
   names (PyTorch's), default lr, default eps, the CPU update of one tensor (>>optim)). The
   enum, sdl_optim_name, the defaults, the state names and the CPU step come from it. */
#define SDL_OPTIMS(X) \
    X(SGD, sgd, 1, "momentum_buffer", NULL, 0.01f, 1e-8f, sdl__sgd_tensor) \
    X(ADAM, adam, 2, "exp_avg", "exp_avg_sq", 0.001f, 1e-8f, sdl__adam_tensor) \
    X(ADAMW, adamw, 2, "exp_avg", "exp_avg_sq", 0.001f, 1e-8f, sdl__adam_tensor) \
    X(LARS, lars, 1, "momentum_buffer", NULL, 0.01f, 1e-8f, sdl__lars_tensor) \
    X(LAMB, lamb, 2, "exp_avg", "exp_avg_sq", 0.001f, 1e-6f, sdl__lamb_tensor)
#define SDL__OPTIM_ENUM(KIND, name, slots, s0, s1, lr, eps, update) SDL_OPTIM_##KIND,
typedef enum sdl_optim_kind {
    SDL_OPTIM_DEFAULT = 0, /* sgd */
    SDL_OPTIMS(SDL__OPTIM_ENUM)
    SDL_OPTIM_COUNT
} sdl_optim_kind;
#undef SDL__OPTIM_ENUM
SDL_API const char *sdl_optim_name(sdl_optim_kind kind); /* "sgd", "adamw"; NULL when out of range */

typedef struct sdl_optim_desc {
    sdl_optim_kind kind;
    float lr;            /* 0: 0.01 for sgd/lars, 0.001 for adam/adamw/lamb */
    float momentum;      /* sgd, lars; 0: none */
    float weight_decay;  /* L2 for sgd/adam/lars, decoupled for adamw/lamb; skips decay=false params */
    bool nesterov;       /* sgd, lars (needs momentum) */
    float beta1, beta2;  /* 0: 0.9, 0.999 */
    float eps;           /* 0: 1e-8 (adam, adamw), 1e-6 (lamb) */
    float trust_coef;    /* lars eta, 0: 0.001 */
    int accum_steps;     /* update on every accum_steps-th call of sdl_optim_step; 0, 1: each call */
    float max_grad_norm; /* > 0: each update first clips the global gradient norm to this */
} sdl_optim_desc;

typedef struct sdl_optim {
    sdl_optim_desc desc; /* as given, zeros replaced by the defaults */
    sdl_model *model;
    float lr;            /* the rate the next step uses (schedules set it) */
    int64_t step;        /* updates taken (Adam's t - 1; 0 before the first) */
    int nstate;
    float *state;
    int micro;           /* sdl_optim_step calls since the last update (accumulation) */
    float grad_norm;     /* the global gradient norm before clipping, when max_grad_norm > 0 */
    sdl_device device;   /* where state lives: the model's device when the optimizer was made */
    float *group_lr;     /* per parameter: its group's lr_scale and weight decay; NULL until */
    float *group_wd;     /*   sdl_optim_add_group (then 1 and desc.weight_decay for the rest) */
} sdl_optim;

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc);
/* the common ones; a 0 argument takes the default named in sdl_optim_desc */
SDL_API sdl_optim *sdl_sgd(sdl_model *m, float lr, float momentum, float weight_decay, bool nesterov);
SDL_API sdl_optim *sdl_adam(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
SDL_API sdl_optim *sdl_adamw(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
SDL_API sdl_optim *sdl_lars(sdl_model *m, float lr, float momentum, float weight_decay, float trust_coef);
SDL_API sdl_optim *sdl_lamb(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
/* by the name a --optimizer flag gives, any case, '-' or '_': "sgd" (momentum 0.9),
   "nesterov" (the same, Nesterov), "adam", "adamw", "lars" (momentum 0.9), "lamb"; the
   other settings are the desc defaults. NULL and an error listing them for another name. */
SDL_API sdl_optim *sdl_optim_by_name(sdl_model *m, const char *name, float lr, float weight_decay);
SDL_API sdl_result sdl_optim_step(sdl_optim *o);
/* Parameter groups (PyTorch's param_groups): the parameters whose names start with prefix
   update with lr_scale times the optimizer's rate and with the group's weight decay.
   The rate stays o->lr times the scale, so a schedule (sdl_optim_set_lr) moves every group
   alike: a backbone at x0.1 stays at x0.1 through warm-up and decay. A parameter in several
   groups takes the last added; decay = false parameters get no weight decay in any group.
   On a GPU a captured step (sdl_cuda_graph) refuses an lr_scale other than 1.

      sdl_param_group g = {0};                                  // C++: = {}
      g.prefix = "backbone."; g.lr_scale = 0.1f;
      sdl_optim_add_group(opt, &g);                             // the head keeps the full rate */
typedef struct sdl_param_group {
    const char *prefix;   /* the parameters it takes (read during the call only) */
    float lr_scale;       /* 0: 1 */
    float weight_decay;   /* 0: the optimizer's desc.weight_decay */
    bool no_weight_decay; /* none in this group (0 above means the optimizer's) */
} sdl_param_group;
SDL_API sdl_result sdl_optim_add_group(sdl_optim *o, const sdl_param_group *g);
SDL_API bool sdl_optim_is_update_step(const sdl_optim *o); /* will the next sdl_optim_step update? */
SDL_API void sdl_optim_set_lr(sdl_optim *o, float lr);
SDL_API void sdl_optim_free(sdl_optim *o);
/* State for checkpoints and broadcasts: count slots, each named ("momentum_buffer" for
   sgd/lars; "exp_avg", "exp_avg_sq" for adam/adamw/lamb, PyTorch's names) and
   model->param_floats floats laid out like param_data. Save o->step with them. */
SDL_API int sdl_optim_state_count(const sdl_optim *o);
SDL_API const char *sdl_optim_state_name(const sdl_optim *o, int k);
SDL_API float *sdl_optim_state_data(sdl_optim *o, int k);

/* Scales every gradient so that their global L2 norm is at most max_norm (PyTorch's
   clip_grad_norm_: factor max_norm / (norm + 1e-6) when norm > max_norm). Returns the norm
   before clipping, summed in double, the same bits for any thread count. A NaN or Inf
   norm is returned and the gradients are left alone (skip that step). */
SDL_API float sdl_clip_grad_norm(sdl_model *m, float max_norm);
SDL_API void sdl_grad_scale(sdl_model *m, float s); /* every gradient *= s */

/* Loss scaling for fp16 training (PyTorch's GradScaler; sdl_cuda_set_precision(SDL_F16)).
   fp16 gradients below 6e-8 round to zero, so the loss is multiplied by a large scale before
   the backward and the gradients divided by it before the update. A scale so large that a
   gradient overflows (Inf or NaN) skips that update, halves the scale and zeroes the
   gradients; growth_interval good updates in a row double it. Zero fields take PyTorch's
   defaults. It works on any device (the CPU too, where f32 needs no scaling):

      sdl_loss_scaler sc = {0};                       // or {.scale = 1024, .growth_interval = 100}
      sdl_scaled_backward(&sc, loss);                 // backward of loss * sc.scale
      sdl_scaler_step(&sc, opt);                      // unscale, check, sdl_optim_step or skip

   sdl_scaler_step reads one number per update back from the device (the gradients' sum of
   squares, which is Inf or NaN when any gradient is), so on a GPU it waits for the backward.
   With accum_steps = k only every k-th call checks; the others just add up the gradients. */
typedef struct sdl_loss_scaler {
    float scale;           /* the current scale; 0: 65536 */
    float growth_factor;   /* 0: 2 */
    float backoff_factor;  /* 0: 0.5 */
    int growth_interval;   /* 0: 2000 */
    int good_steps;        /* updates since the last skip or growth */
    int64_t skipped;       /* updates skipped so far */
    bool found_inf;        /* the last update was skipped */
} sdl_loss_scaler;
SDL_API sdl_result sdl_scaled_backward(sdl_loss_scaler *s, sdl_tensor *loss);
/* SDL_OK also when the update was skipped (s->found_inf says so) */
SDL_API sdl_result sdl_scaler_step(sdl_loss_scaler *s, sdl_optim *o);

/* >>decl-sched: the learning rate as a function of an integer step and a total. Steps or
   epochs: your choice, as long as step, total, warmup and milestones use the same unit.

      sdl_sched_desc s = {.kind = SDL_SCHED_STEP, .base_lr = 0.1f,    // ResNet-56 on CIFAR-10
                          .warmup = 5, .warmup_start_factor = 0.1f, .milestones = {80, 120}};
      for (int epoch = 0; epoch < 160; epoch++) { sdl_optim_set_lr(opt, sdl_sched_lr(&s, epoch)); ... }

   Linear warm-up (warmup > 0) goes with any kind: for step < warmup the rate rises
   linearly from warmup_start_factor * L to L, where L is the main schedule's rate at step
   warmup (base_lr, except one-cycle's max_lr / div_factor); from step warmup on, the main
   schedule. Cosine and one-cycle run over the steps after warm-up, [warmup, total);
   step-decay milestones count from step 0. */
typedef enum sdl_sched_kind {
    SDL_SCHED_DEFAULT = 0, /* constant */
    SDL_SCHED_CONSTANT,    /* base_lr */
    SDL_SCHED_STEP,        /* base_lr * gamma^(number of milestones <= step) */
    SDL_SCHED_COSINE,      /* min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2, t = step - warmup, T = total - warmup */
    SDL_SCHED_ONE_CYCLE    /* PyTorch's OneCycleLR (cosine annealing, two phases), max_lr = base_lr */
} sdl_sched_kind;

#define SDL_SCHED_MAX_MILESTONES 8
typedef struct sdl_sched_desc {
    sdl_sched_kind kind;
    float base_lr;             /* the rate after warm-up; one-cycle: the peak (max_lr) */
    int64_t total;             /* cosine, one-cycle: steps in the whole run, warm-up included */
    int64_t warmup;            /* linear warm-up steps; 0: none */
    float warmup_start_factor; /* the warm-up starts at this times L (0 starts at rate 0) */
    int64_t milestones[SDL_SCHED_MAX_MILESTONES]; /* step decay: ascending, unused ones 0 */
    float gamma;               /* step decay factor; 0: 0.1 */
    float min_lr;              /* cosine: the rate at step total */
    float pct_start;           /* one-cycle: share of the steps spent rising; 0: 0.3 */
    float div_factor;          /* one-cycle: starts at max_lr / div_factor; 0: 25 */
    float final_div_factor;    /* one-cycle: ends at start / final_div_factor; 0: 1e4 */
} sdl_sched_desc;

SDL_API float sdl_sched_lr(const sdl_sched_desc *d, int64_t step);
/* The linear scaling rule (Goyal et al. 2017): lr * world_size with base_batch 0 (Horovod's
   lr * size), else lr * world_size * local_batch / base_batch. */
SDL_API float sdl_scale_lr(float lr, int world_size, int local_batch, int base_batch);
/* d->kind (and milestones, warm-up) from the name a --lr-scheduler flag gives (any case,
   '-' or '_'); set d->base_lr and d->total first, in epochs or steps:
      "none", "constant"   the base rate
      "cosine"             cosine to min_lr over total
      "step"               x0.1 at 50% and 75% of total
      "one-cycle", "clr"   PyTorch's OneCycleLR, peak base_lr
      "step_wise_decay"    the JSC course's: x0.1 at epochs 80 and 120 of 150 (scaled to total)
      "step_wise_decay_with_warmup"  the same after a linear warm-up from 0.1 x over 5 of
                           150 epochs (scaled; d->warmup when already set)
   SDL_ERR_ARG listing the names for another. */
SDL_API sdl_result sdl_sched_by_name(sdl_sched_desc *d, const char *name);

/* >>decl-data: every image reader fills an sdl_dataset: n samples of c x h x w bytes
   (CHW per sample, the layout the tensors use) and one i32 label each. */
typedef struct sdl_dataset {
    int64_t n;
    int c, h, w;
    int num_classes;
    uint8_t *images; /* n * c * h * w bytes */
    int32_t *labels; /* n */
} sdl_dataset;
SDL_API void sdl_dataset_free(sdl_dataset *d); /* frees the arrays, zeroes the struct */
/* Every reader below zeroes *out first, fills it on SDL_OK, and on an error leaves it zeroed
   (nothing to free) with sdl_last_error() naming the file and what is wrong with it. */

/* IDX files (MNIST's format, "train-images-idx3-ubyte"), plain or gzip-compressed (.gz is
   recognised by its magic bytes, not by the name). images: u8 (n, rows, cols) -> c = 1;
   labels: u8 (n). num_classes = the largest label + 1. */
SDL_API sdl_result sdl_load_idx(const char *images_path, const char *labels_path, sdl_dataset *out);
/* Fashion-MNIST from dir (NULL or "": /usr/share/datasets/fashion-mnist, Debian's package
   dataset-fashion-mnist): train-* (60000) or t10k-* (10000) files, with or without .gz. */
SDL_API sdl_result sdl_load_fashion_mnist(const char *dir, bool train, sdl_dataset *out);
/* MNIST: the same file names and format; dir is required. */
SDL_API sdl_result sdl_load_mnist(const char *dir, bool train, sdl_dataset *out);

/* CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (3 x 32 x 32, CHW).
   dir holds data_batch_1.bin .. data_batch_5.bin (train: 50000) and test_batch.bin (10000),
   or holds the folder cifar-10-batches-bin the archive unpacks to. Each batch must hold
   10000 records, so a truncated file is an error. */
SDL_API sdl_result sdl_load_cifar10(const char *dir, bool train, sdl_dataset *out);
/* one file of any number of records */
SDL_API sdl_result sdl_load_cifar10_file(const char *path, sdl_dataset *out);

/* .npy arrays (C order, little-endian) as heap tensors (free with sdl_tensor_free):
   float32 and float64 -> f32, uint8 -> u8, int32 and int64 (range-checked) -> i32. */
SDL_API sdl_tensor *sdl_load_npy(const char *path);
/* the array saved as `name` in an .npz (np.savez or np.savez_compressed) */
SDL_API sdl_tensor *sdl_load_npz(const char *path, const char *name);
/* f32, i32 and u8 tensors; numpy reads them with np.load */
SDL_API sdl_result sdl_save_npy(const char *path, const sdl_tensor *t);

/* One image file (PNG or JPEG) as a u8 heap tensor (C, H, W). channels: 1 grey, 3 RGB,
   4 RGBA (stb converts), 0: as stored. Images may come from untrusted datasets: sdl
   compiles stb_image for PNG and JPEG only, checks PNG chunk CRCs and the JPEG marker
   segments that stb v2.27 mishandles (Huffman tables with over 256 codes or DC values over
   15, fractional sampling factors) and refuses images over SDL_MAX_IMAGE_SIDE (32768) a
   side or SDL_MAX_IMAGE_PIXELS (2^26) pixels before decoding; each is a clear error. */
SDL_API sdl_tensor *sdl_load_image(const char *path, int channels);
/* the same from a PNG or JPEG file's bytes in memory (a ZIP or tar member, a download);
   what names the image in errors ("train.zip: a/b.JPEG"; NULL: "image") */
SDL_API sdl_tensor *sdl_decode_image(const void *bytes, size_t n, int channels, const char *what);
/* Image folders, torchvision's ImageFolder layout: dir/<class>/<image>. The classes are the
   sub-folders in bytewise sorted order, ids 0, 1, ...; in each, the files ending in .png,
   .jpg, .jpeg are read (sorted) and must decode; names starting with '.' are skipped,
   other image files (TIFF, WebP, BMP, GIF, ...) are an error. All
   images must have one size (sdl does not resize); the error names the first that differs.
   channels as for sdl_load_image (0: those of the first image). */
SDL_API sdl_result sdl_load_image_folder(const char *dir, int channels, sdl_dataset *out);
/* the class names sdl_load_image_folder numbers, in id order: a NULL-terminated array of
   *count strings; free it with sdl_names_free */
SDL_API char **sdl_image_folder_classes(const char *dir, int *count);
SDL_API void sdl_names_free(char **names);

/* A PNG of one image or a grid of images, like torchvision's save_image: t is u8 or f32,
   (C, H, W) or (N, C, H, W) with C = 1, 3 or 4; a grid has nrow images per row (0: 8) with
   2 black pixels between them. f32 values map lo -> 0 and hi -> 255, clamped (lo == hi
   means 0 and 1; a tanh generator's samples: -1, 1). */
SDL_API sdl_result sdl_write_png(const char *path, const sdl_tensor *t, int nrow, float lo, float hi);

/* WebDataset tar shards. Consecutive members whose names share a key form one sample; the
   key is the member path up to the first dot in its last path component, the extension is
   the rest ("a/b.c/x01.seg.png": key "a/b.c/x01", extension "seg.png"). A sample needs a
   ".cls" member (an ASCII integer label) and one image (.png, .jpg, .jpeg); other members
   are skipped. Reads ustar, GNU and pax tar files (GNU tar's). */
/* "name-{000000..000099}.tar" -> the 100 names (a plain path -> itself); a NULL-terminated
   array of *count names, free with sdl_names_free */
SDL_API char **sdl_shard_list(const char *pattern, int *count);
/* every sample of the shards a pattern names, decoded to channels (0: as the first image);
   all images one size; num_classes = the largest label + 1 */
SDL_API sdl_result sdl_load_shards(const char *pattern, int channels, sdl_dataset *out);
SDL_API sdl_result sdl_load_shard_files(const char *const *paths, int npaths, int channels, sdl_dataset *out);

/* Writes prefix-000000.tar, prefix-000001.tar, ... (POSIX ustar), at most max_samples
   samples per shard (0: 10000). After an error every call returns it; close returns the
   first error and frees the writer (shards written so far stay on disk). */
typedef struct sdl_shard_writer sdl_shard_writer;
SDL_API sdl_shard_writer *sdl_shard_writer_new(const char *prefix, int64_t max_samples);
/* one sample: members key.exts[i] holding sizes[i] bytes of data[i] */
SDL_API sdl_result sdl_shard_writer_add(sdl_shard_writer *w, const char *key, int nmembers, const char *const *exts,
                                        const void *const *data, const size_t *sizes);
/* one image (CHW bytes) as key.png and its label as key.cls */
SDL_API sdl_result sdl_shard_writer_add_image(sdl_shard_writer *w, const char *key, const uint8_t *chw, int c, int h, int wd, int label);
SDL_API int sdl_shard_writer_num_shards(const sdl_shard_writer *w);
SDL_API sdl_result sdl_shard_writer_close(sdl_shard_writer *w);
/* a whole dataset, sample i as key "%09d" (.png + .cls) */
SDL_API sdl_result sdl_write_shards(const sdl_dataset *d, const char *prefix, int64_t max_per_shard);

/* >>decl-tfrecord: TensorFlow's record files and the messages stored in them.
   A TFRecord file is a run of records: u64 length, u32 masked CRC-32C of those 8 bytes, the
   data, u32 masked CRC-32C of the data (all little-endian; masked: rotate right 15, add
   0xa282ead8). Readers check both CRCs and name the file and record in each error.
   TensorBoard event files are TFRecord files too. */
SDL_API uint32_t sdl_crc32c(uint32_t crc, const void *data, size_t n); /* Castagnoli; start with 0 */
SDL_API uint32_t sdl_tfrecord_masked_crc(const void *data, size_t n);
/* one record: header, data, CRC */
SDL_API sdl_result sdl_tfrecord_write_record(FILE *f, const void *data, size_t n);
/* The next record of f into *buf (grown with realloc as needed; *cap is its size; free it
   with sdl_bytes_free). Returns 1 with the record's size in *n, 0 at a clean end of the file,
   -1 on an error (truncated, bad CRC, read error), whose message names `what` (the file's
   name) and the record index `index`. */
SDL_API int sdl_tfrecord_read_record(FILE *f, const char *what, int64_t index, uint8_t **buf, size_t *cap, size_t *n);
SDL_API void sdl_bytes_free(void *p); /* frees a heap block sdl handed out (records, members) */
/* Reading a file record by record: while (sdl_tfrecord_next(r, &p, &n)) { ... }, then
   sdl_tfrecord_close returns SDL_OK for a clean end or the first error. p stays valid until
   the next call. */
typedef struct sdl_tfrecord_reader sdl_tfrecord_reader;
SDL_API sdl_tfrecord_reader *sdl_tfrecord_open(const char *path);
SDL_API bool sdl_tfrecord_next(sdl_tfrecord_reader *r, const uint8_t **data, size_t *n);
SDL_API int64_t sdl_tfrecord_count(const sdl_tfrecord_reader *r); /* records read so far */
SDL_API sdl_result sdl_tfrecord_close(sdl_tfrecord_reader *r);

/* tf.train.Example: named features, each a list of byte strings, floats or int64s. Build one
   with the add calls (each appends values to the named feature's list; a name keeps one
   kind) and serialize it, or parse one and read features by name. Pointers returned by the
   getters stay valid until the example changes or is freed. A getter given a missing name
   or the wrong kind returns NULL and says which features there are. */
typedef enum sdl_feature_kind {
    SDL_FEATURE_NONE = 0,
    SDL_FEATURE_BYTES,
    SDL_FEATURE_FLOAT,
    SDL_FEATURE_INT64
} sdl_feature_kind;
typedef struct sdl_example sdl_example;
SDL_API sdl_example *sdl_example_new(void);
SDL_API void sdl_example_free(sdl_example *e);
SDL_API sdl_result sdl_example_add_bytes(sdl_example *e, const char *name, const void *data, size_t n);
SDL_API sdl_result sdl_example_add_floats(sdl_example *e, const char *name, const float *v, int64_t n);
SDL_API sdl_result sdl_example_add_int64s(sdl_example *e, const char *name, const int64_t *v, int64_t n);
/* the message's bytes in a heap block (sdl_bytes_free), features in the order first added */
SDL_API uint8_t *sdl_example_serialize(const sdl_example *e, size_t *n);
/* what names the data in errors ("train-0.tfrecord record 12") */
SDL_API sdl_example *sdl_example_parse(const void *data, size_t n, const char *what);
SDL_API int sdl_example_num_features(const sdl_example *e);
SDL_API const char *sdl_example_feature_name(const sdl_example *e, int i);
/* the kind of feature `name` and its number of values (SDL_FEATURE_NONE, 0: absent) */
SDL_API sdl_feature_kind sdl_example_kind(const sdl_example *e, const char *name, int64_t *count);
SDL_API const uint8_t *sdl_example_bytes(const sdl_example *e, const char *name, int64_t i, size_t *n);
SDL_API const float *sdl_example_floats(const sdl_example *e, const char *name, int64_t *count);
SDL_API const int64_t *sdl_example_int64s(const sdl_example *e, const char *name, int64_t *count);
/* tensorflow.TensorProto, what tf.io.serialize_tensor writes: parse gives a heap tensor
   (DT_FLOAT, DT_DOUBLE -> f32; DT_UINT8 -> u8; DT_INT32, DT_INT64 (range-checked) -> i32),
   from tensor_content or the typed value lists; serialize writes dtype, shape and
   tensor_content (f32 -> DT_FLOAT, u8 -> DT_UINT8, i32 -> DT_INT32). Images from TF are
   (H, W, C). */
SDL_API sdl_tensor *sdl_tensorproto_parse(const void *data, size_t n, const char *what);
SDL_API uint8_t *sdl_tensorproto_serialize(const sdl_tensor *t, size_t *n);

/* >>decl-zip: members of a ZIP file (stored or deflated, zip64), folder trees, dataset helpers */
typedef struct sdl_zip sdl_zip;
/* reads the central directory (the members' bytes are read on demand) */
SDL_API sdl_zip *sdl_zip_open(const char *path);
SDL_API void sdl_zip_close(sdl_zip *z);
SDL_API int64_t sdl_zip_count(const sdl_zip *z);
SDL_API const char *sdl_zip_name(const sdl_zip *z, int64_t i);  /* "tiny-imagenet-200/train/..." */
SDL_API uint64_t sdl_zip_size(const sdl_zip *z, int64_t i);     /* uncompressed bytes */
/* the index of the member called name, or -1 (no error set) */
SDL_API int64_t sdl_zip_find(const sdl_zip *z, const char *name);
/* member i's bytes in a heap block (free with sdl_bytes_free), CRC-32 checked; errors name
   the file and the member */
SDL_API uint8_t *sdl_zip_read(sdl_zip *z, int64_t i, size_t *n);

/* The files under dir, recursively, as paths relative to dir ("n01443537/images/a.JPEG"),
   sorted bytewise; names starting with '.' are skipped. pattern (NULL: every file) is a glob
   (* any run of characters, ? one, [a-z] [!0-9] sets) matched against the relative path
   when it holds a '/', else against the file name: "*.JPEG", "train/n0[0-9]*.png".
   A NULL-terminated array of *count names; free with sdl_names_free. */
SDL_API char **sdl_list_files(const char *dir, const char *pattern, int *count);
/* does name match the glob pattern (the rules above; '*' also crosses '/') */
SDL_API bool sdl_glob_match(const char *pattern, const char *name);

/* Dataset helpers. Each fills *out (or *train and *val) with copies, zeroed on an error. */
/* a random split: round(n * val_fraction) samples drawn by seed go to val, the rest to
   train, each in the original order (torch.utils.data.random_split, then sorted) */
SDL_API sdl_result sdl_dataset_split(const sdl_dataset *d, double val_fraction, uint64_t seed, sdl_dataset *train, sdl_dataset *val);
/* the samples whose label is in classes[0..k), relabelled to their position in the list */
SDL_API sdl_result sdl_dataset_select_classes(const sdl_dataset *d, const int *classes, int k, sdl_dataset *out);
/* per-channel mean and standard deviation (population, as numpy's std) of pixel/255 over
   every sample: the numbers for sdl_loader_desc.mean/std. mean, std: d->c floats each */
SDL_API sdl_result sdl_dataset_mean_std(const sdl_dataset *d, float *mean, float *std);

/* >>decl-loader: batches of (x f32 (B, C, H, W), y i32 (B)) from an sdl_dataset.
   The sequence depends only on (seed, epoch, rank, world_size), never on prefetch timing. */
typedef struct sdl_loader sdl_loader;
typedef struct sdl_loader_desc {
    const sdl_dataset *data; /* copied by sdl_loader_new; its images and labels must outlive the loader */
    int batch_size;          /* 0: 64 */
    bool shuffle;            /* order seeded by (seed, epoch) */
    bool drop_last;
    uint64_t seed;
    int rank, world_size;    /* distributed sampler: pad to a multiple of world_size, rank r
                                takes indices r, r + world, ...; 0, 0 means 1 process */
    int prefetch;            /* batches queued by a background thread; 0: 2, -1: no thread */
    float mean[4], std[4];   /* per channel, after /255; std 0 means no normalisation */
    int pad_crop;            /* pad by this many pixels and random-crop back (0: off) */
    bool hflip;              /* random horizontal flip */
} sdl_loader_desc;
SDL_API sdl_loader *sdl_loader_new(const sdl_loader_desc *desc);
SDL_API void sdl_loader_set_epoch(sdl_loader *l, int64_t epoch);
/* the next batch of this epoch, or false at its end; x and y stay valid until the next call */
SDL_API bool sdl_loader_next(sdl_loader *l, sdl_tensor **x, sdl_tensor **y);
SDL_API int64_t sdl_loader_num_batches(const sdl_loader *l);
SDL_API void sdl_loader_free(sdl_loader *l);
/* Loader details. An epoch's order is a Fisher-Yates shuffle drawn from hash(seed, epoch, i);
   pad-crop offsets and flips from hash(seed, epoch, sample index). Crop and flip act on the
   bytes (padding is byte 0, so it normalises to -mean/std), then x = (byte/255 - mean) / std.
   After an epoch's last batch the loader moves to the next epoch by itself (and starts
   prefetching it); sdl_loader_set_epoch(e) chooses one explicitly, as on resume. */
SDL_API int64_t sdl_loader_num_samples(const sdl_loader *l); /* this rank's, padding included */
SDL_API int64_t sdl_loader_epoch(const sdl_loader *l);       /* the epoch next() serves */
/* Resuming mid-epoch. An epoch's order is one list of positions (the permutation); each
   round of batches takes the next batch_size x world_size of them, rank r every world_size-th
   from r. sdl_loader_seek(l, e, done) starts epoch e after its first `done` positions, so a
   relaunch with another world size or batch size goes on where the last left off: nothing
   skipped, nothing seen twice (padding, as the distributed sampler's, only at the epoch's end:
   each rank gets ceil((n - done) / world_size) samples). sdl_loader_samples_done(l) is that
   global count for the batches handed out so far (the same on every rank): save it with a
   checkpoint (sdl_checkpoint_save_at). */
SDL_API sdl_result sdl_loader_seek(sdl_loader *l, int64_t epoch, int64_t global_samples_done);
SDL_API int64_t sdl_loader_samples_done(const sdl_loader *l);

/* >>decl-stream: a streaming pipeline over shards (WebDataset / tf.data style): shards are
   read sequentially, never all in memory; decoding and augmentation run in worker threads.
   Per epoch: the shard list is shuffled by (seed, epoch); rank r takes shards r, r + world,
   ...; its worker w takes the rank's shards w, w + W, ... and reads them in order through a
   shuffle buffer of its own (seeded by seed, epoch, rank, w). The rank's sample sequence
   takes one sample from each worker in turn (worker 0, 1, ..., skipping a worker that has
   run out), so it depends on the seed and never on thread timing; batches are consecutive
   runs of batch_size samples of it. Shards: "name-{000000..000099}.tar" patterns as
   sdl_shard_list; by extension .tar (WebDataset samples: members key.png/.jpg/.jpeg or
   key.npy, and key.cls or key.txt holding the integer label), .tfrecord/.tfrecords
   (tf.train.Example records: a bytes feature holding a PNG/JPEG file or a serialized
   TensorProto image (H, W, C), and an int64 label), .zip (members grouped as in a tar).
   Raw bytes: with raw_shape set, a key.bin or key.raw member is the image, raw_shape's
   H x W x C bytes (u8, HWC), and a TFRecord image feature that is no PNG/JPEG is such bytes
   (tf.io.decode_raw) instead of a TensorProto; any other byte count is an error.
   sdl_stream_new counts every shard's samples once (tar and zip: headers only; TFRecord:
   every record read and CRC-checked), so each rank knows every rank's count and all ranks
   run the same number of steps (the equal policy). Memory: each worker keeps an int64 per
   sample of the dataset (positions) and its shuffle buffer of encoded samples. */
typedef enum sdl_stream_equal {
    SDL_STREAM_PAD = 0, /* default: each rank serves as many samples as the largest rank has;
                           a shorter rank repeats its own first samples (DistributedSampler) */
    SDL_STREAM_DROP     /* each rank serves as many as the smallest has; the rest wait for
                           another epoch (they are reshuffled with the shards) */
} sdl_stream_equal;

/* Augmentations, applied per sample in the workers, in torchvision's order: a crop of the
   source (random_resized_crop; or resize the shorter side then center_crop; or center_crop;
   or the whole image), scaled to height x width (bilinear, half-pixel centres, edges
   clamped: torchvision's tensor resize without antialiasing), then pad + random crop, then
   horizontal flip, then x = (v/255 - mean) / std (std 0: no normalisation; .npy and
   TensorProto float images are taken as they are, not divided by 255). Random draws come
   from hash(seed, epoch, rank, position), so they repeat on resume. */
typedef struct sdl_augment_desc {
    int height, width;         /* output size; 0, 0: the first sample's (all must match) */
    bool random_resized_crop;  /* RandomResizedCrop(scale, ratio) */
    float scale[2], ratio[2];  /* 0: (0.08, 1) and (3/4, 4/3) */
    int resize;                /* Resize(int): shorter side to this, then center_crop */
    bool center_crop;          /* CenterCrop(height, width) */
    int pad;                   /* RandomCrop(size, padding=pad): zero padding */
    bool hflip;                /* RandomHorizontalFlip(0.5) */
    float mean[4], std[4];
} sdl_augment_desc;

typedef struct sdl_stream_desc {
    const char *shards;        /* a pattern, as sdl_shard_list */
    int batch_size;            /* 0: 64 */
    int rank, world_size;      /* 0, 0: one process */
    int workers;               /* decoding threads W; 0: 2 */
    int prefetch;              /* batches decoded ahead by the worker threads; 0: 2; -1: no
                                  threads, next() decodes each batch on the calling thread
                                  (the same samples: the workers take their turns) */
    int shuffle_buffer;        /* samples per worker; 0, 1: none */
    bool shuffle_shards;       /* shuffle the shard list each epoch */
    uint64_t seed;
    int channels;              /* 1, 3 or 4 (0: as the first sample) */
    sdl_stream_equal equal;
    bool drop_last;            /* drop the last batch when it is short */
    const char *image_key, *label_key; /* TFRecord feature names; NULL: "image", "label" */
    sdl_augment_desc aug;
    int raw_shape[3];          /* H, W, C (1..4) of raw-byte images; 0, 0, 0: none */
} sdl_stream_desc;

typedef struct sdl_stream sdl_stream;
SDL_API sdl_stream *sdl_stream_new(const sdl_stream_desc *desc);
/* the next batch, x f32 (B, C, H, W) and y i32 (B), valid until the next call; false at
   the end of the epoch (the next call starts the next one) or on an error (a bad sample,
   named with its shard and key, in sdl_last_error(); sdl_stream_error() says which). */
SDL_API bool sdl_stream_next(sdl_stream *s, sdl_tensor **x, sdl_tensor **y);
/* Resume: continue epoch `epoch` after its first batches_done batches (from a checkpoint
   of sdl_stream_epoch / sdl_stream_batches_done); the batches that follow are those an
   uninterrupted run gives. Also clears an error. */
SDL_API sdl_result sdl_stream_set_position(sdl_stream *s, int64_t epoch, int64_t batches_done);
SDL_API int64_t sdl_stream_epoch(const sdl_stream *s);
SDL_API int64_t sdl_stream_batches_done(const sdl_stream *s);  /* this epoch's, handed out */
SDL_API int64_t sdl_stream_num_batches(const sdl_stream *s);   /* this epoch's, every rank */
SDL_API int64_t sdl_stream_total_samples(const sdl_stream *s); /* in every shard */
SDL_API sdl_result sdl_stream_error(const sdl_stream *s);
SDL_API void sdl_stream_free(sdl_stream *s);

/* >>decl-train: timers, meters, progress lines, results CSV, flags */
SDL_API double sdl_now(void); /* seconds from a monotonic clock (wall clock under strict -std=c99/c11) */

/* running mean of a per-batch loss, weighted by batch size, and accuracy */
typedef struct sdl_meter {
    double loss_sum;  /* sum of loss * count */
    int64_t correct, count, batches;
} sdl_meter;
SDL_API void sdl_meter_reset(sdl_meter *m);
SDL_API void sdl_meter_add(sdl_meter *m, float batch_loss, int64_t correct, int64_t count);
SDL_API double sdl_meter_loss(const sdl_meter *m);     /* 0 when empty */
SDL_API double sdl_meter_accuracy(const sdl_meter *m); /* 0 when empty */

/* one row of the results CSV */
typedef struct sdl_epoch_stats {
    int64_t epoch;           /* 1-based in the CSV, as printed */
    double loss, accuracy, val_loss, val_accuracy, lr, time; /* time: seconds this epoch */
} sdl_epoch_stats;
/* Appends a row to path, writing the header "epoch,loss,accuracy,val_loss,val_accuracy,lr,time"
   first when the file is new or empty. remove() the file yourself to start over. */
SDL_API sdl_result sdl_csv_append(const char *path, const sdl_epoch_stats *s);

/* A per-epoch progress bar on a terminal (redrawn at most 10 times a second), nothing on a
   pipe or file; sdl_progress_end prints one plain summary line in both cases. */
typedef struct sdl_progress {
    FILE *out;               /* NULL: stdout */
    int64_t epoch, epochs;   /* 1-based epoch of epochs, for the label */
    int64_t total;           /* batches this epoch */
    double start, last_draw;
    bool tty;
} sdl_progress;
SDL_API void sdl_progress_begin(sdl_progress *p, FILE *out, int64_t epoch, int64_t epochs, int64_t total);
SDL_API void sdl_progress_update(sdl_progress *p, int64_t done, const sdl_meter *m);
SDL_API void sdl_progress_end(sdl_progress *p, const sdl_epoch_stats *s);
/* prints "total images/sec: X" (the line the courses' scripts grep for) */
SDL_API void sdl_print_throughput(FILE *out, double images, double seconds);

/* Flags. A program lists its flags in a table whose values hold the defaults:
      int epochs = 5; float lr = 0.01f; const char *data = "data";
      sdl_arg args[] = {{"epochs", SDL_ARG_INT, &epochs, "epochs to train"},
                        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
                        {"data", SDL_ARG_STRING, &data, "dataset folder"}};
      if (sdl_args_parse(argc, argv, args, 3) != SDL_OK) { puts(sdl_last_error()); return 2; }
   "--batch-size 64", "--batch_size=64" and "--batch-size=64" all work ('_' and '-' match);
   "a|b" gives a flag two names; a bool flag takes no value ("--flag", "--flag=false",
   "--no-flag"); "-h" means "--help" when the table has "help". Unknown flags, missing or
   bad values are an SDL_ERR_ARG naming the flag; the library never exits. */
typedef enum sdl_arg_type {
    SDL_ARG_DEFAULT = 0, /* int */
    SDL_ARG_INT,         /* value: int * */
    SDL_ARG_FLOAT,       /* value: float * */
    SDL_ARG_STRING,      /* value: const char ** (points into argv) */
    SDL_ARG_BOOL         /* value: bool * */
} sdl_arg_type;
typedef struct sdl_arg {
    const char *name;    /* "batch-size", or "lr|learning-rate" */
    sdl_arg_type type;
    void *value;         /* holds the default; set by the parser */
    const char *help;
} sdl_arg;
SDL_API sdl_result sdl_args_parse(int argc, char **argv, sdl_arg *args, int nargs);
SDL_API void sdl_args_usage(FILE *out, const char *prog, const sdl_arg *args, int nargs);
/* the flags' values as one JSON object, {"batch_size": 64, "lr": 0.01, "data": "...",
   "fp16_allreduce": false}: each under its first name with '-' as '_' (argparse's dest),
   as the ALCF examples dump their args. Floats print with the fewest digits that read back
   as the same float (0.01), NaN and Inf as null. */
SDL_API sdl_result sdl_args_save_json(const char *path, const sdl_arg *args, int nargs);

/* >>decl-checkpoint: safetensors files (PyTorch's safetensors.torch.load_file reads them).
   Layout: u64 little-endian header size N, N bytes of JSON (space padded to 8 bytes), data.
   Tensors (all "F32"): every parameter and buffer under its own name ("fc1.weight"), and,
   with an optimizer, its state slot of each parameter as "optim.<slot>.<name>" with
   PyTorch's slot names (sdl_optim_state_name: "optim.momentum_buffer.fc1.weight",
   "optim.exp_avg.fc1.weight", "optim.exp_avg_sq.fc1.weight"). "__metadata__" holds
   strings: format "pt", sdl "1", epoch, step, lr, optim (sdl_optim_kind number),
   optim_nstate, optim_micro (accumulation), rng_seed, rng_counter, samples (save_at). Saving writes path.tmp in the same folder, fsyncs and renames, so a crash
   leaves the old file whole. Loading checks every name, shape and dtype before it changes
   anything, restores the optimizer (state, step, lr) and the global RNG (so dropout goes on
   as if never stopped), and names what differs. Data is little-endian f32. A model (and
   its optimizer) on a GPU is saved and loaded the same way, one tensor at a time through
   host memory; the file does not say where it was made. */
typedef struct sdl_checkpoint_info {
    int64_t epoch;       /* what was passed to save: epochs finished */
    int64_t step;        /* optimizer steps taken */
    float lr;
    uint64_t rng_seed, rng_counter;
    int64_t samples;     /* sdl_checkpoint_save_at: samples of epoch `epoch` done (the loader's position) */
} sdl_checkpoint_info;
/* o may be NULL (weights only) */
SDL_API sdl_result sdl_checkpoint_save(const char *path, sdl_model *m, const sdl_optim *o, int64_t epoch);
/* mid-epoch: also the loader's position, samples of epoch `epoch` done (metadata "samples",
   sdl_loader_samples_done; resume with sdl_loader_seek(l, info.epoch, info.samples)) */
SDL_API sdl_result sdl_checkpoint_save_at(const char *path, sdl_model *m, const sdl_optim *o, int64_t epoch, int64_t samples);
/* o may be NULL (optimizer entries in the file are then skipped); info may be NULL.
   PyTorch's BatchNorm "num_batches_tracked" entries are skipped (sdl keeps no counter). */
SDL_API sdl_result sdl_checkpoint_load(const char *path, sdl_model *m, sdl_optim *o, sdl_checkpoint_info *info);

/* Loading weights into a model that differs (fine-tuning; PyTorch's
   load_state_dict(strict=False)): parameters and buffers only (no optimizer, no RNG), from
   an sdl checkpoint or a PyTorch state_dict saved as safetensors (save_file(model.state_dict(),
   path); num_batches_tracked is skipped). A model tensor named model_prefix + k takes the
   file's file_prefix + k; model tensors outside model_prefix and file entries outside
   file_prefix take no part. Nothing changes unless the whole load succeeds.

      sdl_load_desc d = {0};              // C++: = {}
      d.model_prefix = "backbone.";       // the file was saved from the backbone alone
      d.non_strict = true;                // the new head is missing from the file: listed
      d.skip_mismatched = true;           // a 1000-class fc in the file, 10 here: listed
      sdl_load_report rep;
      if (sdl_checkpoint_load_weights("resnet.safetensors", m, &d, &rep) == SDL_OK) {
          for (int i = 0; i < rep.nmissing; i++) printf("not loaded: %s\n", rep.missing[i]);
          sdl_load_report_free(&rep);
      }
   The model must be on the host (load, then move it to the GPU). */
typedef struct sdl_load_desc {
    bool non_strict;          /* missing and unexpected names go to the report instead of failing */
    bool skip_mismatched;     /* a tensor whose shape or dtype differs is skipped and reported */
    const char *model_prefix; /* "backbone.": only these model tensors, matched without it */
    const char *file_prefix;  /* "module." (a DDP state_dict): only these file entries, without it */
} sdl_load_desc;
typedef struct sdl_load_report {
    int loaded;                       /* tensors read */
    int nmissing, nunexpected, nskipped;
    char **missing;    /* model names the file lacks; NULL-terminated (NULL when none) */
    char **unexpected; /* file names the model lacks */
    char **skipped;    /* "name: F32 (10, 64) in the file, F32 (3, 64) in the model" */
} sdl_load_report;
/* desc NULL: strict (all of it must fit); report may be NULL, else free it with
   sdl_load_report_free (on an error it is left empty) */
SDL_API sdl_result sdl_checkpoint_load_weights(const char *path, sdl_model *m, const sdl_load_desc *desc, sdl_load_report *report);
SDL_API void sdl_load_report_free(sdl_load_report *r);
/* >>decl-plot: line and bar charts as PNG files (through stb_image_write; text from
   stb_easy_font), so the curves show without Python. Lines: each series is n points
   (x, y), x NULL meaning 1, 2, ..., n (epochs); non-finite points are left out (a gap).
   Bars: one bar per value with its label under it (images/s per number of ranks, scaling
   efficiency). The canvas is desc.width x desc.height (0: 640 x 400), white; the plot area
   (inside the axes) spans pixels x in [64, width - 17] and y in [28, height - 41], y up:
   x_min and y_min sit at its bottom left. The y range is desc's when ymin < ymax, else the
   data's widened to round ticks (bars: 8% more above, for their value labels); lines span
   the data's x range exactly, bars start at 0.
   Series k (and the bars) are drawn in matplotlib's tab10 colour k: (31, 119, 180),
   (255, 127, 14), (44, 160, 44), (214, 39, 40), ...; a 7 x 7 marker on each point. The
   legend takes the corner of the plot area with the fewest points. Text is cut at 63
   characters.

      float loss[3] = {0.9f, 0.6f, 0.5f}, val[3] = {0.8f, 0.7f, 0.65f};
      sdl_plot_series s[2] = {{"train loss", loss, NULL, 3}, {"test loss", val, NULL, 3}};
      sdl_plot_desc d = {0};
      d.title = "Fashion-MNIST MLP"; d.xlabel = "epoch"; d.ylabel = "loss";
      sdl_plot_lines("loss.png", s, 2, &d);
      const char *ranks[3] = {"1", "2", "4"};
      float ips[3] = {1500, 2900, 5400};
      sdl_plot_bars("scaling.png", ranks, ips, 3, &d);   // d with its own labels */
typedef struct sdl_plot_series {
    const char *label; /* in the legend; NULL: not listed */
    const float *y;
    const float *x;    /* NULL: 1, 2, ..., n */
    int n;
} sdl_plot_series;
typedef struct sdl_plot_desc {
    const char *title, *xlabel, *ylabel; /* NULL: none */
    int width, height;                   /* 0: 640, 400; at least 160 x 120 */
    float ymin, ymax;                    /* ymin < ymax: this y range, else the data's */
} sdl_plot_desc;
SDL_API sdl_result sdl_plot_lines(const char *path, const sdl_plot_series *series, int nseries, const sdl_plot_desc *desc);
SDL_API sdl_result sdl_plot_bars(const char *path, const char *const *labels, const float *values, int n, const sdl_plot_desc *desc);

/* >>decl-summary: TensorBoard event files, PyTorch's SummaryWriter in C. A writer makes
   logdir (one level) and writes logdir/events.out.tfevents.<time>.<$HOSTNAME>.<pid>: TFRecord
   records (sdl_tfrecord_write_record: masked CRC-32C), each an Event message (wall_time,
   step; the first holds file_version "brain.Event:2") with a Summary of one value: a scalar
   (simple_value) or an image (a PNG as sdl_write_png draws it). Every event is flushed, so
   TensorBoard shows it at once. Write from rank 0 only: every call takes a NULL writer and
   does nothing, so
      sdl_summary_writer *tb = rank == 0 ? sdl_summary_open("runs/exp1") : NULL;
      sdl_summary_scalar(tb, "loss/train", loss, epoch);   // on every rank, written by one
   (on rank 0 check that open did not return NULL). */
typedef struct sdl_summary_writer sdl_summary_writer;
SDL_API sdl_summary_writer *sdl_summary_open(const char *logdir);
SDL_API const char *sdl_summary_path(const sdl_summary_writer *w); /* the events file */
SDL_API sdl_result sdl_summary_scalar(sdl_summary_writer *w, const char *tag, float value, int64_t step);
/* images (C, H, W) or (N, C, H, W), C 1, 3 or 4, as a grid of nrow per row (f32 mapped from
   [lo, hi]): sdl_write_png's picture */
SDL_API sdl_result sdl_summary_image(sdl_summary_writer *w, const char *tag, const sdl_tensor *images, int nrow, float lo,
                                     float hi, int64_t step);
SDL_API void sdl_summary_close(sdl_summary_writer *w);

/* >>decl-profile */
/* Time per op type, forward and backward, summed over calls. On when the environment has
   SDL_PROFILE=1 (then the table is printed through sdl_log when the program exits) or after
   sdl_profile_enable(true). Kernels that run on a GPU are timed as launched (asynchronously). */
SDL_API void sdl_profile_enable(bool on);
SDL_API void sdl_profile_reset(void);
SDL_API void sdl_profile_print(void); /* the table, one sdl_log line (SDL_LOG_WARN, so it shows) per op */

/* >>decl-threads: a fixed pool started once. Work is split by index, never by timing,
   so results are bitwise identical for any thread count. */
typedef void (*sdl_range_fn)(void *ctx, int64_t begin, int64_t end);
SDL_API void sdl_set_num_threads(int n); /* 0: SDL_NUM_THREADS from the environment, else all cores */
SDL_API int sdl_get_num_threads(void);
SDL_API void sdl_parallel_for(int64_t n, int64_t grain, sdl_range_fn fn, void *ctx);
/* the same, split by work: item_ns is one item's estimated one-thread time in nanoseconds;
   each part gets at least SDL_PART_NS of it, so small jobs run on the caller alone */
SDL_API void sdl_parallel_for_work(int64_t n, double item_ns, sdl_range_fn fn, void *ctx);
/* PyTorch's torch.set_flush_denormal: on, floats below 2^-126 count as zero (inputs) and
   become zero (results) on the calling thread and sdl's pool threads (x86 FTZ + DAZ, ARM
   FZ). Many CPUs compute on such tiny numbers far more slowly than on normal ones. Off by
   default, as in PyTorch. False where the CPU has no such mode (nothing changed). */
SDL_API bool sdl_set_flush_denormal(bool on);

/* >>decl-gemm: row-major C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T.
   op(A): (M, K), op(B): (K, N), C: (M, N). */
SDL_API void sdl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif /* SDL_H_INCLUDED */

/* ========================================================================================
   IMPLEMENTATION
   ======================================================================================== */
#ifdef SDL_IMPLEMENTATION
#ifndef SDL_IMPLEMENTATION_DONE
#define SDL_IMPLEMENTATION_DONE

#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <math.h>
#include <assert.h>
#include <float.h>
#ifndef SDL_NO_THREADS
#include <pthread.h>
#include <unistd.h>
#endif

#if defined(SDL_ALLOC) && defined(SDL_REALLOC) && defined(SDL_DEALLOC)
#elif !defined(SDL_ALLOC) && !defined(SDL_REALLOC) && !defined(SDL_DEALLOC)
#define SDL_ALLOC(n) malloc(n)
#define SDL_REALLOC(p, n) realloc(p, n)
#define SDL_DEALLOC(p) free(p)
#else
#error "sdl.h: define all of SDL_ALLOC, SDL_REALLOC and SDL_DEALLOC, or none"
#endif

#ifndef SDL_CHECK
#define SDL_CHECK(c) assert(c)
#endif

#if defined(__cplusplus)
#define SDL_THREAD_LOCAL thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define SDL_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__)
#define SDL_THREAD_LOCAL __thread
#else
#define SDL_THREAD_LOCAL
#endif

#define SDL__ALIGN 64
#define SDL__UNUSED(x) ((void)(x))

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#include <time.h>
#include <errno.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#include <fcntl.h>
#define SDL__TRAIN_POSIX 1
#endif
#ifdef __cplusplus
extern "C" {
#endif
/* SIMD width and the GEMM blocking, chosen at compile time: the kernels and >>gemm use them */
#if (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))) && !defined(__CUDA_ARCH__) && !defined(SDL_NO_SIMD)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && !defined(__CUDA_ARCH__) && !defined(SDL_NO_SIMD)
#define SDL__GEMM_AVX512 1
#define SDL__MR 12
#define SDL__NR 32
#elif defined(__AVX2__) && defined(__FMA__) && !defined(__CUDA_ARCH__) && !defined(SDL_NO_SIMD)
#define SDL__GEMM_AVX2 1
#define SDL__MR 6
#define SDL__NR 16
#else
#define SDL__MR 4
#define SDL__NR 16
#endif
/* the largest blocks; a dimension is cut into equal blocks no larger than these (K = 1100:
   two of 552, not 1024 + 76). With AVX-512, KC 1024 halves the passes over C that KC 512
   needs (at 2048^3 C's loads and stores took ~12% of the time with KC 512); A's MC x KC
   block (480 KB) stays in a 1 MB L2. Smaller caches (AVX2-era) keep KC 512. */
#if defined(SDL__GEMM_AVX512)
#define SDL__KC 1024
#define SDL__MC 120
#define SDL__GEMM_DIRECT_B (16 * 1024) /* B of at most this many floats (64 KB) is read in place */
#else
#define SDL__KC 512
#define SDL__MC (SDL__MR * 20)
#endif
#define SDL__NC 1024
/* ----------------------------------------------------------------------------------------
   >>errors
   ---------------------------------------------------------------------------------------- */
static SDL_THREAD_LOCAL char sdl__err_msg[512];
static SDL_THREAD_LOCAL sdl_result sdl__err_code;
static sdl_log_fn sdl__log_fn;
static void *sdl__log_user;

SDL_API const char *sdl_last_error(void) { return sdl__err_msg; }
SDL_API sdl_result sdl_last_result(void) { return sdl__err_code; }
SDL_API void sdl_clear_error(void) { sdl__err_msg[0] = 0; sdl__err_code = SDL_OK; }

SDL_API void sdl_set_log(sdl_log_fn fn, void *user) { sdl__log_fn = fn; sdl__log_user = user; }

SDL_API void sdl_log(int level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sdl__log_fn) sdl__log_fn(sdl__log_user, level, msg);
    else if (level <= SDL_LOG_WARN) fprintf(stderr, "sdl: %s\n", msg);
}

SDL_API sdl_result sdl_fail(sdl_result code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sdl__err_msg, sizeof sdl__err_msg, fmt, ap);
    va_end(ap);
    sdl__err_code = code;
    return code;
}

/* ----------------------------------------------------------------------------------------
   >>memory: overflow-checked sizes and aligned heap blocks
   ---------------------------------------------------------------------------------------- */
static bool sdl__mul_overflows(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return true;
    *out = a * b;
    return false;
}

static void *sdl__alloc(size_t bytes) {
    void *p = SDL_ALLOC(bytes ? bytes : 1);
    if (!p) sdl_fail(SDL_ERR_OOM, "out of memory allocating %zu bytes", bytes);
    return p;
}

/* Linux: blocks of 4 MiB and more ask for 2 MiB pages (transparent huge pages in "madvise"
   mode, the usual default): 512x fewer page faults on first touch and TLB misses after */
#if defined(__linux__) && !defined(SDL_NO_HUGEPAGES)
#include <sys/mman.h>
#endif
static void sdl__advise_huge(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(SDL_NO_HUGEPAGES)
    uintptr_t huge = (uintptr_t)1 << 21, lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (bytes >= ((size_t)1 << 22) && hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* a hint: failure is fine */
#else
    (void)p;
    (void)bytes;
#endif
}

/* memcpy (src) or zeros (src NULL) of n bytes on the pool's threads: most of the time of
   filling a big fresh block (packing a model, zeroing optimizer state) is the kernel handing
   out its pages on their first touch, and that spreads over cores */
typedef struct sdl__bytes_job {
    char *dst;
    const char *src;
} sdl__bytes_job;

static void sdl__bytes_part(void *ctx, int64_t i0, int64_t i1) {
    const sdl__bytes_job *j = (const sdl__bytes_job *)ctx;
    if (j->src) memcpy(j->dst + i0, j->src + i0, (size_t)(i1 - i0));
    else memset(j->dst + i0, 0, (size_t)(i1 - i0));
}

static void sdl__parallel_bytes(void *dst, const void *src, size_t n) {
    sdl__bytes_job j;
    j.dst = (char *)dst;
    j.src = (const char *)src;
    if (n < ((size_t)1 << 21)) sdl__bytes_part(&j, 0, (int64_t)n); /* small: no pool (nor its start) */
    else sdl_parallel_for_work((int64_t)n, 0.1, sdl__bytes_part, &j); /* ~0.1 ns a byte (fresh pages) */
}

static void *sdl__calloc(size_t n, size_t size) {
    size_t bytes;
    if (sdl__mul_overflows(n, size, &bytes)) {
        sdl_fail(SDL_ERR_OOM, "size overflow: %zu x %zu bytes", n, size);
        return NULL;
    }
    void *p = sdl__alloc(bytes);
    if (p) sdl__advise_huge(p, bytes);
    if (p) sdl__parallel_bytes(p, NULL, bytes);
    return p;
}

/* 64-byte aligned block: the pointer to free sits just before the aligned address */
static void *sdl__aligned_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - SDL__ALIGN - sizeof(void *)) {
        sdl_fail(SDL_ERR_OOM, "size overflow: %zu bytes", bytes);
        return NULL;
    }
    char *raw = (char *)sdl__alloc(bytes + SDL__ALIGN + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)(raw + sizeof(void *)) + SDL__ALIGN - 1) & ~(uintptr_t)(SDL__ALIGN - 1);
    ((void **)p)[-1] = raw;
    sdl__advise_huge((void *)p, bytes);
    return (void *)p;
}

static void sdl__aligned_free(void *p) {
    if (p) SDL_DEALLOC(((void **)p)[-1]);
}

static char *sdl__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)sdl__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

typedef struct sdl__buf { uint8_t *p; size_t n, cap; bool oom; } sdl__buf;

static void sdl__buf_put(sdl__buf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        uint8_t *p = (uint8_t *)SDL_REALLOC(b->p, cap);
        if (!p) { b->oom = true; sdl_fail(SDL_ERR_OOM, "out of memory growing a buffer to %zu bytes", cap); return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* >>stb: stb_image (and stb_image_write for sdl_write_png) decode .gz/.npz deflate data, PNG and
   JPEG. A private copy (all functions static) is compiled here unless SDL_NO_STB, so it
   never clashes with a copy the program builds itself; if the program included
   stb_image.h / stb_image_write.h before this point, that copy is used instead. */
#ifdef __cplusplus
} /* system and stb headers: not inside extern "C" */
#endif
#ifndef _WIN32
#include <dirent.h>
#include <sys/stat.h>
#endif
/* images from untrusted datasets: the largest side and pixel count sdl decodes (checked
   from the header before stb allocates anything) */
#ifndef SDL_MAX_IMAGE_SIDE
#define SDL_MAX_IMAGE_SIDE 32768
#endif
#ifndef SDL_MAX_IMAGE_PIXELS
#define SDL_MAX_IMAGE_PIXELS ((int64_t)1 << 26) /* 8192 x 8192 */
#endif
#ifndef SDL_NO_STB
#ifndef SDL_STB_IMAGE_PATH
#define SDL_STB_IMAGE_PATH <stb/stb_image.h>
#endif
#ifndef SDL_STB_IMAGE_WRITE_PATH
#define SDL_STB_IMAGE_WRITE_PATH <stb/stb_image_write.h>
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#if defined(__GNUC__) && !defined(__clang__) /* gcc -O3 inlines stb's reader into ours */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/* gcc compiles stb at -O2 where the program is optimised: at -O3 -march=native stb_image and
   stb_image_write took 3.1 s of the implementation's 10 s of compile time (1.4 s at -O2), for
   file decoding, not training kernels. Integer code: the same bytes come out. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__)
#define SDL__STB_O2
#pragma GCC push_options
#pragma GCC optimize("O2")
#endif
#ifndef STBI_INCLUDE_STB_IMAGE_H
#define SDL__OWN_STBI
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
/* v2.27 defines this function under a misspelt name, so its static declaration would be
   "declared but never defined"; the name is right from v2.28 on, where this is a no-op */
#define stbi__unpremultiply_on_load_thread stbi_set_unpremultiply_on_load_thread
/* only the formats sdl reads: less code for a crafted file to reach */
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#ifndef STBI_MAX_DIMENSIONS
#define STBI_MAX_DIMENSIONS SDL_MAX_IMAGE_SIDE
#endif
#if !defined(STBI_MALLOC) && !defined(STBI_REALLOC) && !defined(STBI_FREE)
/* zeroed: v2.27 leaves its decoder state uninitialised, so a JPEG scan that names a Huffman
   table no DHT defined decodes with whatever the heap held (a wild read; fixed in 2.28) */
#define STBI_MALLOC(n) sdl__calloc((n), 1)
#define STBI_REALLOC(p, n) SDL_REALLOC(p, n)
#define STBI_FREE(p) SDL_DEALLOC(p)
#endif
#include SDL_STB_IMAGE_PATH
#undef STB_IMAGE_IMPLEMENTATION
#undef stbi__unpremultiply_on_load_thread
/* declared (static) whatever the formats, defined only with GIF: a body, so no compiler
   warns of a static function never defined */
static stbi_uc *stbi_load_gif_from_memory(stbi_uc const *buffer, int len, int **delays, int *x, int *y, int *z, int *comp, int req_comp) {
    (void)buffer; (void)len; (void)delays; (void)x; (void)y; (void)z; (void)comp; (void)req_comp;
    return NULL;
}
#endif
#ifndef INCLUDE_STB_IMAGE_WRITE_H
#define SDL__OWN_STBIW
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if !defined(STBIW_MALLOC) && !defined(STBIW_REALLOC) && !defined(STBIW_FREE)
#define STBIW_MALLOC(n) SDL_ALLOC(n)
#define STBIW_REALLOC(p, n) SDL_REALLOC(p, n)
#define STBIW_FREE(p) SDL_DEALLOC(p)
#endif
#include SDL_STB_IMAGE_WRITE_PATH
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#ifdef SDL__STB_O2
#pragma GCC pop_options
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* SDL_NO_STB */

/* Cold code: model summaries, schedules, dataset readers, checkpoints, logging, plots,
   TensorBoard files and the file-format parsers run once per file, step or epoch, never per
   element of a step. gcc compiles those sections for size (-Os) where the program is
   optimised: at -O3 -march=native they took about a quarter of the implementation's compile
   time, for no speed a benchmark sees (make bench-cpu is the same either way). gcc inlines
   nothing across the boundary, so no kernel calls a function between SDL__COLD_BEGIN and
   SDL__COLD_END. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__)
#define SDL__GCC_OPTIMIZING 1
#define SDL__COLD_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"Os\")")
#define SDL__COLD_END _Pragma("GCC pop_options")
#else
#define SDL__COLD_BEGIN
#define SDL__COLD_END
#endif
/* Inlining: gcc inlines what the kernels' inner loops call: the >>formulas and sdl_f32
   (small enough at any -O level) and the engine room's SIMD helpers (marked inline:
   sdl__gemm_put, sdl__wmask, sdl__vsum, ...). At -O3 it would also inline, on its own guess
   (-finline-functions), larger functions into every caller: sdl_parallel_for_work into 71 op
   kernels, sdl__op_begin into 29 op builders, the shape helpers, sdl_module_new into every
   layer constructor, sdl_sgemm into its callers. That was 14% of the implementation's code
   (614 KB of text, 526 KB without) and about as much of its compile time, for dispatch and
   setup code that runs once per op, so the implementation is compiled without it; everything
   else -O3 does is unchanged. */
#ifdef SDL__GCC_OPTIMIZING
#pragma GCC push_options
#pragma GCC optimize("no-inline-functions")
#endif
#ifdef __cplusplus
extern "C" {
#endif
/* ----------------------------------------------------------------------------------------
   >>ahead: private functions defined further down, in the engine room and the file formats,
   that the sections before them call
   ---------------------------------------------------------------------------------------- */
/* in the engine room (see >>gemm): the packed GEMM on one part of a split, its workspaces,
   SIMD vector helpers */
static bool sdl__gemm_ws_ready(int parts);
static void sdl__relu_grad_add(float *SDL_RESTRICT dx, const float *SDL_RESTRICT x, const float *SDL_RESTRICT dy, int64_t n);
static void sdl__sgemm_serial(int part, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                              const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                              float *C, int64_t ldc);
static inline void sdl__vadd(float *SDL_RESTRICT y, const float *SDL_RESTRICT x, int64_t n);
static void sdl__vfill(float *y, float v, int64_t n);
static inline float sdl__vsum(const float *x, int64_t n);
/* with the file formats (see >>images, >>npy, >>tfrecord): decoders and encoders */
static uint8_t *sdl__decode_image(const char *what, const uint8_t *bytes, size_t n, int *c, int *h, int *w);
static uint8_t *sdl__decode_image_hwc(const char *what, const uint8_t *bytes, size_t n, int *c, int *h, int *w);
static sdl_tensor *sdl__npy_parse(const char *path, const uint8_t *b, size_t n);
static void sdl__pb_put_bytes(sdl__buf *b, int field, const void *data, size_t n);
static void sdl__pb_put_varint(sdl__buf *b, uint64_t v);
static bool sdl__png_encode(const char *what, const uint8_t *hwc, int w, int h, int c, sdl__buf *b);
static sdl_result sdl__png_grid(const char *path, const sdl_tensor *t, int nrow, float lo, float hi, sdl__buf *b, int *w, int *h);

/* ----------------------------------------------------------------------------------------
   >>shape
   ---------------------------------------------------------------------------------------- */
SDL_API sdl_shape sdl_shapen(int ndim, const int64_t *d) {
    sdl_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim < 0 ? 0 : (ndim > SDL_MAX_DIMS ? SDL_MAX_DIMS : ndim);
    for (int i = 0; i < s.ndim; i++) s.d[i] = d[i];
    return s;
}
SDL_API sdl_shape sdl_shape1(int64_t a) { return sdl_shapen(1, &a); }
SDL_API sdl_shape sdl_shape2(int64_t a, int64_t b) { int64_t d[2] = {a, b}; return sdl_shapen(2, d); }
SDL_API sdl_shape sdl_shape3(int64_t a, int64_t b, int64_t c) { int64_t d[3] = {a, b, c}; return sdl_shapen(3, d); }
SDL_API sdl_shape sdl_shape4(int64_t a, int64_t b, int64_t c, int64_t e) { int64_t d[4] = {a, b, c, e}; return sdl_shapen(4, d); }
SDL_API sdl_shape sdl_tensor_shape(const sdl_tensor *t) { return sdl_shapen(t->ndim, t->shape); }

SDL_API bool sdl_shape_equal(sdl_shape a, sdl_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return false;
    return true;
}

SDL_API const char *sdl_shape_str(sdl_shape s, char *buf, size_t cap) {
    size_t n = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < s.ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)s.d[i]);
    if (n < cap) snprintf(buf + n, cap - n, ")");
    return buf;
}

/* element count, or -1 when a dim is negative or the count overflows */
static int64_t sdl__shape_numel(sdl_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) {
        if (s.d[i] < 0) return -1;
        if (s.d[i] != 0 && n > INT64_MAX / s.d[i]) return -1;
        n *= s.d[i];
    }
    return n;
}

/* "op: shape (2, 3) does not fit (4, 5)" */
static void *sdl__shape_error(const char *op, const char *what, const sdl_tensor *a, const sdl_tensor *b) {
    char sa[96], sb[96];
    sdl_shape_str(sdl_tensor_shape(a), sa, sizeof sa);
    if (b) {
        sdl_shape_str(sdl_tensor_shape(b), sb, sizeof sb);
        sdl_fail(SDL_ERR_SHAPE, "%s: %s: %s and %s", op, what, sa, sb);
    } else {
        sdl_fail(SDL_ERR_SHAPE, "%s: %s: %s", op, what, sa);
    }
    return NULL;
}

/* ----------------------------------------------------------------------------------------
   >>rng: splitmix64 of (seed, counter) - counter-based, so draws never depend on threads
   ---------------------------------------------------------------------------------------- */
static uint64_t sdl__rng_seed_v = 0x5D1u, sdl__rng_counter;

/* sdl__mix64, sdl__hash3 and sdl__u24 are in >>formulas (the GPU's dropout uses them too) */
SDL_API float sdl_hash_uniform(uint64_t seed, uint64_t stream, uint64_t index) { return sdl__u24(sdl__hash3(seed, stream, index)); }

SDL_API void sdl_manual_seed(uint64_t seed) { sdl__rng_seed_v = seed; sdl__rng_counter = 0; }
SDL_API uint64_t sdl_rng_state(void) { return sdl__rng_counter; }
SDL_API uint64_t sdl_rng_seed(void) { return sdl__rng_seed_v; }
SDL_API void sdl_rng_set_state(uint64_t seed, uint64_t counter) { sdl__rng_seed_v = seed; sdl__rng_counter = counter; }

/* the next n counters of the global stream: element i uses counter base + i */
static uint64_t sdl__rng_take(uint64_t n) {
    uint64_t base = sdl__rng_counter;
    sdl__rng_counter += n;
    return base;
}

SDL_API float sdl_rand_uniform(void) { return sdl_hash_uniform(sdl__rng_seed_v, 0, sdl__rng_take(1)); }

/* A tensor's draw: element i takes counter base + i of stream s, whose key
   mix64(seed ^ mix64(s)) is worked out once (sdl__hash3(seed, s, c) = mix64(key ^ c)).
   Elements depend on their index alone, so threads split them and the bits stay. */
typedef struct sdl__draw {
    float *x;
    uint64_t base, key[3]; /* streams 0 (uniform), 1 and 2 (the two uniforms of randn) */
    float a, b;            /* lo, hi or mean, std */
} sdl__draw;

static sdl__draw sdl__draw_new(sdl_tensor *t, float a, float b) {
    sdl__draw d;
    d.x = sdl_f32(t);
    d.base = sdl__rng_take((uint64_t)t->numel);
    for (int s = 0; s < 3; s++) d.key[s] = sdl__hash_key(sdl__rng_seed_v, (uint64_t)s);
    d.a = a;
    d.b = b;
    return d;
}


static void sdl__uniform_part(void *ctx, int64_t i0, int64_t i1) {
    const sdl__draw *d = (const sdl__draw *)ctx;
    float lo = d->a, hi = d->b;
    for (int64_t i = i0; i < i1; i++) {
        float u = sdl__u24(sdl__mix64(d->key[0] ^ (d->base + (uint64_t)i))); /* sdl_hash_uniform */
        d->x[i] = lo + (hi - lo) * u;
    }
}

static bool sdl__host_f32(const sdl_tensor *t, const char *who); /* >>tensor */

SDL_API void sdl_tensor_uniform(sdl_tensor *t, float lo, float hi) {
    if (!sdl__host_f32(t, "tensor_uniform")) return;
    sdl__draw d = sdl__draw_new(t, lo, hi);
    sdl_parallel_for_work(t->numel, 3.0, sdl__uniform_part, &d); /* ~3 ns an element */
}

/* Box-Muller on two 24-bit uniforms drawn for element i, in float: u1 in (0, 1) keeps |z| <
   5.9, as far as float initialisation needs; logf and cosf take half the time of the double
   versions (GPT-2's 124M weights: 1.9 s on 2 threads before, a start-up the user waits for) */
static void sdl__randn_part(void *ctx, int64_t i0, int64_t i1) {
    const sdl__draw *d = (const sdl__draw *)ctx;
    float mean = d->a, std = d->b;
    for (int64_t i = i0; i < i1; i++) {
        uint64_t c = d->base + (uint64_t)i;
        float u1 = sdl__u24(sdl__mix64(d->key[1] ^ c)) + 0.5f / 16777216.0f, u2 = sdl__u24(sdl__mix64(d->key[2] ^ c));
        d->x[i] = mean + std * (sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2));
    }
}

SDL_API void sdl_tensor_randn(sdl_tensor *t, float mean, float std) {
    if (!sdl__host_f32(t, "tensor_randn")) return;
    sdl__draw d = sdl__draw_new(t, mean, std);
    sdl_parallel_for_work(t->numel, 12.0, sdl__randn_part, &d); /* ~12 ns an element */
}

/* >>init */
SDL_API void sdl_init_kaiming_uniform(sdl_tensor *w, float a, int64_t fan_in) {
    /* gain = sqrt(2 / (1 + a^2)), bound = gain * sqrt(3 / fan_in); a = sqrt(5) gives 1/sqrt(fan_in) */
    double gain = sqrt(2.0 / (1.0 + (double)a * a));
    float bound = (float)(gain * sqrt(3.0 / (double)(fan_in > 0 ? fan_in : 1)));
    sdl_tensor_uniform(w, -bound, bound);
}
SDL_API void sdl_init_kaiming_normal(sdl_tensor *w, int64_t fan_in) {
    sdl_tensor_randn(w, 0.0f, (float)sqrt(2.0 / (double)(fan_in > 0 ? fan_in : 1)));
}
SDL_API void sdl_init_xavier_uniform(sdl_tensor *w, int64_t fan_in, int64_t fan_out) {
    float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out > 0 ? fan_in + fan_out : 1));
    sdl_tensor_uniform(w, -bound, bound);
}
SDL_API void sdl_init_xavier_normal(sdl_tensor *w, int64_t fan_in, int64_t fan_out) {
    sdl_tensor_randn(w, 0.0f, (float)sqrt(2.0 / (double)(fan_in + fan_out > 0 ? fan_in + fan_out : 1)));
}
SDL_API void sdl_init_bias(sdl_tensor *b, int64_t fan_in) {
    float bound = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
    sdl_tensor_uniform(b, -bound, bound);
}

/* ----------------------------------------------------------------------------------------
   >>arena: the step arena. Chunks are kept across resets and filled again in the order they
   were made: a step that asks for the same sizes as the one before lands on the same bytes,
   so step 2 allocates nothing and touches no new page (merging step 1's chunks into one
   fresh block made step 2 fault the whole arena in again).
   ---------------------------------------------------------------------------------------- */
static sdl_backend sdl__backends[SDL_DEVICE_COUNT];

typedef struct sdl__chunk {
    struct sdl__chunk *next; /* the one made after this */
    size_t cap, used;
    char *base;
} sdl__chunk;

static struct {
    sdl__chunk *first, *cur; /* the oldest chunk; the one being filled */
    size_t total_cap;
    uint64_t tape_id;  /* changes whenever the tape is cleared and at each backward pass */
    sdl_node *tape;
    bool no_grad;
} sdl__g;

static sdl__chunk *sdl__chunk_new(size_t cap) {
    sdl__chunk *c = (sdl__chunk *)sdl__alloc(sizeof(sdl__chunk));
    if (!c) return NULL;
    c->base = (char *)sdl__aligned_alloc(cap);
    if (!c->base) { SDL_DEALLOC(c); return NULL; }
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void sdl__chunk_free_all(sdl__chunk *c) {
    while (c) {
        sdl__chunk *n = c->next;
        sdl__aligned_free(c->base);
        SDL_DEALLOC(c);
        c = n;
    }
}

/* the first chunk after the current one with room for `need` bytes; a new last one (at
   least 4 MiB, and as big as all the others together: geometric growth) when none has */
static sdl__chunk *sdl__arena_next_chunk(size_t need) {
    sdl__chunk *last = sdl__g.cur;
    for (sdl__chunk *c = last ? last->next : sdl__g.first; c; last = c, c = c->next)
        if (c->cap - c->used >= need) return c;
    size_t cap = need > ((size_t)1 << 22) ? need : ((size_t)1 << 22);
    if (sdl__g.total_cap > cap) cap = sdl__g.total_cap;
    sdl__chunk *n = sdl__chunk_new(cap);
    if (!n) return NULL;
    if (last) last->next = n;
    else sdl__g.first = n;
    sdl__g.total_cap += cap;
    return n;
}

/* bump allocation, not zeroed: op outputs, which their kernels overwrite (zeroing them cost
   ~18% of a CNN step). SDL_DEBUG_POISON fills them with NaN instead, so a kernel that
   forgets to write an element shows up in the tests' reference checks. */
static void *sdl__arena_bump(size_t bytes) {
    size_t need = (bytes + SDL__ALIGN - 1) & ~(size_t)(SDL__ALIGN - 1);
    if (need < bytes) { sdl_fail(SDL_ERR_OOM, "arena: size overflow (%zu bytes)", bytes); return NULL; }
    sdl__chunk *c = sdl__g.cur;
    if (!c || c->cap - c->used < need) {
        c = sdl__arena_next_chunk(need);
        if (!c) return NULL;
        sdl__g.cur = c;
    }
    void *p = c->base + c->used;
    c->used += need;
#ifdef SDL_DEBUG_POISON
    memset(p, 0xFF, need); /* 0xFFFFFFFF is a NaN */
#endif
    return p;
}

SDL_API void *sdl_arena_alloc(size_t bytes) {
    void *p = sdl__arena_bump(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

SDL_API void sdl_arena_reset(void) {
    for (sdl__chunk *c = sdl__g.first; c; c = c->next) c->used = 0;
    sdl__g.cur = sdl__g.first;
    for (int d = SDL_CPU + 1; d < SDL_DEVICE_COUNT; d++)
        if (sdl__backends[d].arena_reset) sdl__backends[d].arena_reset();
    sdl__g.tape = NULL;
    sdl__g.tape_id++;
}

SDL_API size_t sdl_arena_capacity(void) { return sdl__g.total_cap; }

SDL_API void sdl_arena_release(void) {
    sdl__chunk_free_all(sdl__g.first);
    sdl__g.first = sdl__g.cur = NULL;
    sdl__g.total_cap = 0;
    sdl__g.tape = NULL;
    sdl__g.tape_id++;
}

/* ----------------------------------------------------------------------------------------
   >>tensor
   ---------------------------------------------------------------------------------------- */
SDL_API size_t sdl_dtype_size(sdl_dtype dtype) {
    switch (dtype) {
    case SDL_BF16: case SDL_F16: return 2;
    case SDL_U8: return 1;
    default: return 4;
    }
}

static sdl_dtype sdl__dtype(sdl_dtype d) { return d == SDL_DTYPE_DEFAULT ? SDL_F32 : d; }

/* fills the header; returns the data size in bytes or 0 with an error set (numel 0 is ok) */
static bool sdl__tensor_init(sdl_tensor *t, sdl_shape shape, sdl_dtype dtype, size_t *bytes) {
    memset(t, 0, sizeof *t);
    if ((int)dtype < (int)SDL_DTYPE_DEFAULT || (int)dtype > (int)SDL_I32) {
        sdl_fail(SDL_ERR_ARG, "tensor: unknown dtype %d", (int)dtype);
        return false;
    }
    int64_t numel = sdl__shape_numel(shape);
    if (numel < 0 || sdl__mul_overflows((size_t)numel, sdl_dtype_size(sdl__dtype(dtype)), bytes)) {
        char s[128];
        sdl_fail(SDL_ERR_SHAPE, "tensor: invalid shape %s", sdl_shape_str(shape, s, sizeof s));
        return false;
    }
    t->ndim = shape.ndim;
    for (int i = 0; i < shape.ndim; i++) t->shape[i] = shape.d[i];
    t->numel = numel;
    t->dtype = sdl__dtype(dtype);
    t->device = SDL_CPU;
    t->param_index = -1;
    return true;
}

SDL_API sdl_tensor *sdl_tensor_new(sdl_shape shape, sdl_dtype dtype) {
    sdl_tensor hdr;
    size_t bytes;
    if (!sdl__tensor_init(&hdr, shape, dtype, &bytes)) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl__alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = hdr;
    t->data = sdl__aligned_alloc(bytes);
    if (!t->data) { SDL_DEALLOC(t); return NULL; }
    memset(t->data, 0, bytes);
    t->heap = true;
    return t;
}

SDL_API sdl_tensor *sdl_tensor_from(sdl_shape shape, const float *data) {
    sdl_tensor *t = sdl_tensor_new(shape, SDL_F32);
    if (t && data) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}

SDL_API void sdl_tensor_free(sdl_tensor *t) {
    if (!t || !t->heap) return;
    sdl__aligned_free(t->data);
    sdl__aligned_free(t->grad);
    SDL_DEALLOC(t);
}

static void *sdl__device_arena_alloc(sdl_device device, size_t bytes, bool zeroed);

/* an arena tensor; its data is zeroed or, for op outputs, left as it is */
static sdl_tensor *sdl__arena_tensor(sdl_shape shape, sdl_dtype dtype, sdl_device device, bool zeroed) {
    sdl_tensor hdr;
    size_t bytes;
    if ((int)device < (int)SDL_DEVICE_DEFAULT || (int)device >= (int)SDL_DEVICE_COUNT) {
        sdl_fail(SDL_ERR_DEVICE, "arena_tensor: unknown device %d", (int)device);
        return NULL;
    }
    if (!sdl__tensor_init(&hdr, shape, dtype, &bytes)) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl_arena_alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = hdr;
    t->device = device == SDL_DEVICE_DEFAULT ? SDL_CPU : device;
    t->data = sdl__device_arena_alloc(t->device, bytes, zeroed);
    return t->data ? t : NULL;
}

SDL_API sdl_tensor *sdl_arena_tensor_on(sdl_shape shape, sdl_dtype dtype, sdl_device device) {
    return sdl__arena_tensor(shape, dtype, device, true);
}

SDL_API sdl_tensor *sdl_arena_tensor(sdl_shape shape, sdl_dtype dtype) {
    return sdl_arena_tensor_on(shape, dtype, SDL_CPU);
}

SDL_API sdl_result sdl_tensor_requires_grad(sdl_tensor *t) {
    if (!t || !t->heap) return sdl_fail(SDL_ERR_ARG, "tensor_requires_grad: needs a heap tensor");
    if (!sdl__host_f32(t, "tensor_requires_grad")) return sdl__err_code;
    if (!t->grad) t->grad = (float *)sdl__aligned_alloc((size_t)t->numel * sizeof(float));
    if (!t->grad) return SDL_ERR_OOM;
    memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    t->requires_grad = true;
    return SDL_OK;
}

static const char *sdl__dtype_name(sdl_dtype d) {
    switch (d) {
    case SDL_DTYPE_DEFAULT: case SDL_F32: return "f32";
    case SDL_BF16: return "bf16";
    case SDL_F16: return "f16";
    case SDL_U8: return "u8";
    case SDL_I32: return "i32";
    }
    return "an unknown dtype";
}

/* the error for a NULL tensor: the earlier op's that made it NULL, if one failed */
static sdl_result sdl__null_tensor(const char *who) {
    return sdl__err_code != SDL_OK ? sdl__err_code : sdl_fail(SDL_ERR_ARG, "%s: NULL tensor", who);
}

/* t is an f32 tensor in host memory, as the helpers that read or write its floats need */
static bool sdl__host_f32(const sdl_tensor *t, const char *who) {
    if (!t) sdl__null_tensor(who);
    else if (t->dtype != SDL_F32) sdl_fail(SDL_ERR_ARG, "%s: wants an f32 tensor, got %s", who, sdl__dtype_name(t->dtype));
    else if (t->device != SDL_CPU) sdl_fail(SDL_ERR_DEVICE, "%s: the tensor is on device %d, not in host memory", who, (int)t->device);
    else return true;
    return false;
}

/* a host copy of t's bytes for the helpers below, or t->data itself on the host; NULL on
   an error (set). Free with sdl__host_view_free(t, p). */
static void *sdl__host_view(const sdl_tensor *t, const char *who) {
    if (t->device == SDL_CPU) return t->data;
    const sdl_backend *be = sdl_get_backend(t->device);
    size_t bytes = (size_t)t->numel * sdl_dtype_size(t->dtype);
    void *h = be && be->copy ? sdl__alloc(bytes ? bytes : 1) : NULL;
    if (!be || !be->copy) sdl_fail(SDL_ERR_DEVICE, "%s: no backend for device %d", who, (int)t->device);
    if (h) be->copy(h, t->data, bytes, SDL_CPU, t->device);
    return h;
}
static void sdl__host_view_free(const sdl_tensor *t, void *p) { if (t->device != SDL_CPU) SDL_DEALLOC(p); }

/* the host bytes h back into t (a device tensor; nothing to do on the host) */
static void sdl__host_view_store(sdl_tensor *t, const void *h) {
    if (t->device != SDL_CPU) sdl_get_backend(t->device)->copy(t->data, h, (size_t)t->numel * sdl_dtype_size(t->dtype), t->device, SDL_CPU);
}

SDL_API sdl_result sdl_tensor_fill(sdl_tensor *t, float value) {
    if (!t) return sdl__null_tensor("tensor_fill");
    bool whole = value == floorf(value);
    if (t->dtype == SDL_U8 && !(whole && value >= 0.0f && value <= 255.0f))
        return sdl_fail(SDL_ERR_ARG, "tensor_fill: %g does not fit a u8 tensor (0..255)", (double)value);
    if (t->dtype == SDL_I32 && !(whole && value >= -2147483648.0f && value < 2147483648.0f))
        return sdl_fail(SDL_ERR_ARG, "tensor_fill: %g is not an i32", (double)value);
    if (t->dtype != SDL_F32 && t->dtype != SDL_U8 && t->dtype != SDL_I32)
        return sdl_fail(SDL_ERR_ARG, "tensor_fill: %s tensors are not supported (f32, i32, u8)", sdl__dtype_name(t->dtype));
    if (t->device != SDL_CPU && !sdl_get_backend(t->device)) return sdl_fail(SDL_ERR_DEVICE, "tensor_fill: no backend for device %d", (int)t->device);
    void *h = t->device == SDL_CPU ? t->data : sdl__alloc((size_t)t->numel * sdl_dtype_size(t->dtype) + 1);
    if (!h) return sdl__err_code;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == SDL_F32) ((float *)h)[i] = value;
        else if (t->dtype == SDL_I32) ((int32_t *)h)[i] = (int32_t)value;
        else ((uint8_t *)h)[i] = (uint8_t)value;
    }
    sdl__host_view_store(t, h);
    sdl__host_view_free(t, h);
    return SDL_OK;
}

SDL_API sdl_result sdl_tensor_copy_from(sdl_tensor *t, const float *src) {
    if (!t) return sdl__null_tensor("tensor_copy_from");
    if (!src) return sdl_fail(SDL_ERR_ARG, "tensor_copy_from: NULL source");
    if (t->dtype != SDL_F32) return sdl_fail(SDL_ERR_ARG, "tensor_copy_from: wants an f32 tensor, got %s", sdl__dtype_name(t->dtype));
    if (t->device != SDL_CPU && !sdl_get_backend(t->device)) return sdl_fail(SDL_ERR_DEVICE, "tensor_copy_from: no backend for device %d", (int)t->device);
    if (t->device == SDL_CPU) memcpy(t->data, src, (size_t)t->numel * sizeof(float));
    else sdl__host_view_store(t, src);
    return SDL_OK;
}

SDL_API float sdl_item(const sdl_tensor *t) {
    if (!t) return NAN; /* an earlier op failed: its error stays */
    if (t->numel < 1 || t->dtype == SDL_BF16 || t->dtype == SDL_F16) {
        sdl_fail(SDL_ERR_ARG, "item: wants a non-empty f32, i32 or u8 tensor (got %s, %lld elements)", sdl__dtype_name(t->dtype), (long long)t->numel);
        return NAN;
    }
    union { float f; int32_t i; uint8_t u; } v;
    v.i = 0;
    if (t->device != SDL_CPU) { /* one element back from the device (waits for it) */
        const sdl_backend *be = sdl_get_backend(t->device);
        if (!be || !be->copy) { sdl_fail(SDL_ERR_DEVICE, "item: no backend for device %d", (int)t->device); return NAN; }
        be->copy(&v, t->data, sdl_dtype_size(t->dtype), SDL_CPU, t->device);
    } else {
        memcpy(&v, t->data, sdl_dtype_size(t->dtype));
    }
    return t->dtype == SDL_I32 ? (float)v.i : t->dtype == SDL_U8 ? (float)v.u : v.f;
}

SDL_API bool sdl_all_finite(const sdl_tensor *t) {
    if (!t) return false;
    if (t->dtype != SDL_F32) { sdl_fail(SDL_ERR_ARG, "all_finite: wants an f32 tensor, got %s", sdl__dtype_name(t->dtype)); return false; }
    const float *x = (const float *)sdl__host_view(t, "all_finite");
    bool ok = x != NULL;
    for (int64_t i = 0; ok && i < t->numel; i++) ok = isfinite(x[i]);
    if (x) sdl__host_view_free(t, (void *)x);
    return ok;
}

/* ----------------------------------------------------------------------------------------
   >>backend: the CPU table is filled by the op sections below
   ---------------------------------------------------------------------------------------- */
SDL_API void sdl_register_backend(sdl_device device, const sdl_backend *backend) {
    if (device > SDL_DEVICE_DEFAULT && device < SDL_DEVICE_COUNT && backend) sdl__backends[device] = *backend;
}

#define SDL__OP_NAME(NAME, name, f, b, cf, cb) #name,
static const char *const sdl__op_names[SDL_OP_COUNT] = {"none", SDL_OPS(SDL__OP_NAME)};
#undef SDL__OP_NAME
SDL_API const char *sdl_op_name(sdl_op op) { return op > SDL_OP_NONE && op < SDL_OP_COUNT ? sdl__op_names[op] : "none"; }

/* "CPU", "CUDA": for "conv3d has no CUDA kernel" */
static const char *sdl__device_label(sdl_device d) { return d == SDL_CUDA ? "CUDA" : d == SDL_CPU ? "CPU" : "unknown device"; }

static void sdl__cpu_init(void);
SDL_API const sdl_backend *sdl_get_backend(sdl_device device) {
    if (!sdl__backends[SDL_CPU].name) sdl__cpu_init();
    if (device == SDL_DEVICE_DEFAULT) device = SDL_CPU;
    return device < SDL_DEVICE_COUNT && sdl__backends[device].name ? &sdl__backends[device] : NULL;
}

/* >>device: names, starting a backend on first use, moving tensors and models */
static const char *const sdl__device_names[SDL_DEVICE_COUNT] = {"cpu", "cpu", "cuda"};
static sdl_device_open_fn sdl__device_open[SDL_DEVICE_COUNT];
static int sdl__device_index[SDL_DEVICE_COUNT] = {-1, -1, -1};

SDL_API void sdl_register_device(sdl_device device, sdl_device_open_fn open) {
    if (device > SDL_CPU && device < SDL_DEVICE_COUNT) sdl__device_open[device] = open;
}

SDL_API const char *sdl_device_name(sdl_device device) {
    return device >= 0 && device < SDL_DEVICE_COUNT ? sdl__device_names[device] : "unknown";
}

SDL_API sdl_result sdl_device_parse(const char *name, sdl_device *device) {
    if (!name || !device) return sdl_fail(SDL_ERR_ARG, "device_parse: NULL name or result");
    if (!strcmp(name, "cpu")) { *device = SDL_CPU; return SDL_OK; }
    size_t n = strlen(sdl__device_names[SDL_CUDA]);
    if (strncmp(name, sdl__device_names[SDL_CUDA], n) != 0 || (name[n] != 0 && name[n] != ':'))
        return sdl_fail(SDL_ERR_ARG, "device '%s': cpu, cuda or cuda:N", name);
    int index = -1;
    if (name[n] == ':') {
        char *end = NULL;
        long v = strtol(name + n + 1, &end, 10);
        if (end == name + n + 1 || *end || v < 0 || v > 4095) return sdl_fail(SDL_ERR_ARG, "device '%s': the index after ':' must be a number 0..4095", name);
        index = (int)v;
    }
    if (!sdl__device_open[SDL_CUDA] && !sdl__backends[SDL_CUDA].name)
        return sdl_fail(SDL_ERR_DEVICE, "device '%s': this program was built without the CUDA backend; compile it with "
                        "nvcc -std=c++17 -x cu ... -lcublas (sdl.h then builds sdl_cuda.h in)", name);
    sdl__device_index[SDL_CUDA] = index;
    *device = SDL_CUDA;
    return SDL_OK;
}

/* the device's backend, started (on the index sdl_device_parse saw) if it is not yet */
static const sdl_backend *sdl__device_ready(sdl_device device) {
    if (device == SDL_DEVICE_DEFAULT) device = SDL_CPU;
    if (device < SDL_CPU || device >= SDL_DEVICE_COUNT) { sdl_fail(SDL_ERR_ARG, "device %d: no such device", (int)device); return NULL; }
    if (device != SDL_CPU && sdl__device_open[device] && sdl__device_open[device](sdl__device_index[device]) != SDL_OK) return NULL;
    const sdl_backend *be = sdl_get_backend(device);
    if (!be) sdl_fail(SDL_ERR_DEVICE, "device %s: its backend is not compiled in (see sdl_device_parse)", sdl__device_names[device]);
    return be;
}

/* dst = src across devices through the device side's table; false (and why) on failure */
static bool sdl__device_copy(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev) {
    const sdl_backend *be = sdl_get_backend(dst_dev != SDL_CPU ? dst_dev : src_dev);
    if (!be || !be->copy) { sdl_fail(SDL_ERR_DEVICE, "copy: no backend for device %d", (int)(dst_dev != SDL_CPU ? dst_dev : src_dev)); return false; }
    if (be->copy_checked) return be->copy_checked(dst, src, bytes, dst_dev, src_dev);
    sdl_clear_error(); /* a plain copy reports through sdl_fail only */
    be->copy(dst, src, bytes, dst_dev, src_dev);
    return sdl_last_result() == SDL_OK;
}

SDL_API sdl_tensor *sdl_tensor_to(sdl_tensor *t, sdl_device device) {
    if (!t) return NULL;
    if (device == SDL_DEVICE_DEFAULT) device = SDL_CPU;
    if (t->device == device) return t;
    if (!sdl__device_ready(device) || !sdl__device_ready(t->device)) return NULL;
    sdl_tensor *d = sdl_arena_tensor_on(sdl_tensor_shape(t), t->dtype, device);
    if (!d) return NULL;
    return sdl__device_copy(d->data, t->data, (size_t)t->numel * sdl_dtype_size(t->dtype), device, t->device) ? d : NULL;
}

SDL_API sdl_result sdl_autocast(sdl_device device, sdl_dtype dtype) {
    if (dtype == SDL_DTYPE_DEFAULT) dtype = SDL_F32;
    if (dtype != SDL_F32 && dtype != SDL_BF16 && dtype != SDL_F16)
        return sdl_fail(SDL_ERR_ARG, "autocast: %s is not f32, bf16 or f16", sdl__dtype_name(dtype));
    const sdl_backend *be = sdl__device_ready(device);
    if (!be) return sdl_last_result();
    if (be->set_precision) return be->set_precision(dtype);
    if (dtype == SDL_F32) return SDL_OK;
    return sdl_fail(SDL_ERR_DEVICE, "autocast: the %s computes in f32 only (no %s GEMMs); mixed precision runs on CUDA "
                    "(compile with nvcc, move the model to a cuda device)", sdl__device_label(device == SDL_DEVICE_DEFAULT ? SDL_CPU : device),
                    sdl__dtype_name(dtype));
}

static sdl_device sdl__model_device(const sdl_model *m); /* >>model */

/* the three packed arrays go to `to`; each tensor's data (and grad) keeps its offset */
SDL_API sdl_result sdl_model_to(sdl_model *m, sdl_device to) {
    if (!m) return sdl_fail(SDL_ERR_ARG, "model_to: NULL model");
    if (to == SDL_DEVICE_DEFAULT) to = SDL_CPU;
    const sdl_backend *dst = sdl__device_ready(to);
    if (!dst || sdl_model_pack(m) != SDL_OK) return sdl_last_result();
    sdl_device from = sdl__model_device(m);
    if (from == to) return SDL_OK;
    const sdl_backend *src = sdl__device_ready(from);
    if (!src) return sdl_last_result();
    size_t pb = (size_t)m->param_floats * sizeof(float), bb = (size_t)m->buffer_floats * sizeof(float);
    float *p = (float *)dst->alloc(pb), *g = (float *)dst->alloc(pb), *b = (float *)dst->alloc(bb);
    bool ok = (p || !pb) && (g || !pb) && (b || !bb) && sdl__device_copy(p, m->param_data, pb, to, from) &&
              sdl__device_copy(g, m->grad_data, pb, to, from) && sdl__device_copy(b, m->buffer_data, bb, to, from);
    if (!ok) {
        sdl_result r = sdl_last_result();
        dst->dealloc(p);
        dst->dealloc(g);
        dst->dealloc(b);
        return sdl_fail(r != SDL_OK ? r : SDL_ERR_OOM, "model_to %s: %s", sdl__device_names[to], r != SDL_OK ? sdl_last_error() : "out of device memory");
    }
    for (int i = 0; i < m->nparams; i++) {
        sdl_tensor *t = m->params[i];
        t->data = p + m->param_offset[i];
        t->grad = g + m->param_offset[i];
        t->device = to;
    }
    for (int i = 0; i < m->nbuffers; i++) {
        sdl_tensor *t = m->buffers[i];
        t->data = b + ((float *)t->data - m->buffer_data);
        t->device = to;
    }
    src->dealloc(m->param_data);
    src->dealloc(m->grad_data);
    src->dealloc(m->buffer_data);
    m->param_data = p;
    m->grad_data = g;
    m->buffer_data = b;
    return SDL_OK;
}

static void *sdl__device_arena_alloc(sdl_device device, size_t bytes, bool zeroed) {
    if (device == SDL_CPU) return zeroed ? sdl_arena_alloc(bytes) : sdl__arena_bump(bytes);
    const sdl_backend *be = sdl_get_backend(device);
    if (!be || !be->arena_alloc) { sdl_fail(SDL_ERR_DEVICE, "no backend for device %d", (int)device); return NULL; }
    return !zeroed && be->arena_alloc_raw ? be->arena_alloc_raw(bytes) : be->arena_alloc(bytes);
}

/* memory that a node keeps from forward for backward, on the node's device (zeroed on the
   CPU; device kernels write all they keep) */
static void *sdl__saved(sdl_node *n, size_t bytes) {
    n->saved = sdl__device_arena_alloc(n->out->device, bytes, n->out->device == SDL_CPU);
    return n->saved;
}

/* ----------------------------------------------------------------------------------------
   >>autograd: a tape of nodes in the arena, newest first
   ---------------------------------------------------------------------------------------- */
SDL_API void sdl_set_grad_enabled(bool enabled) { sdl__g.no_grad = !enabled; }
SDL_API bool sdl_is_grad_enabled(void) { return !sdl__g.no_grad; }

/* the gradient buffer of t, zeros in the arena on first use (parameters have theirs) */
static float *sdl__grad(sdl_tensor *t) {
    if (!t->grad) t->grad = (float *)sdl__device_arena_alloc(t->device, (size_t)t->numel * sizeof(float), true);
    return t->grad;
}

/* parameters get their flat gradient buffer when their model is first used */
static bool sdl__ready(sdl_tensor *t) {
    return !t->model || t->model->packed || sdl_model_pack(t->model) == SDL_OK;
}

/* A new arena tensor `out` and its node, from the nin inputs ins[0..nin-1] (nin >= 1, the
   first NULL ends them early). The node goes on the tape when grad mode is on and an input
   needs a gradient. Returns the node (out is node->out), or NULL on error. */
static sdl_node *sdl__op_begin_n(sdl_op op, sdl_shape out_shape, int nin, sdl_tensor *const *ins) {
    size_t bytes = sizeof(sdl_node) + (size_t)nin * sizeof(sdl_tensor *);
    sdl_node *n = (sdl_node *)sdl_arena_alloc(bytes);
    if (!n) return NULL;
    n->op = op;
    n->in = (sdl_tensor **)(n + 1);
    sdl_tensor *a = ins[0];
    for (int i = 0; i < nin && ins[i]; i++) {
        if (!sdl__ready(ins[i])) return NULL;
        if (!ins[i]->data && ins[i]->numel > 0) { /* sdl_model_external_params */
            sdl_fail(SDL_ERR_STATE, "op %d: '%s' has no data (a sharded parameter nobody gathered?)", (int)op, ins[i]->name ? ins[i]->name : "?");
            return NULL;
        }
        if (ins[i]->device != a->device) {
            sdl_fail(SDL_ERR_DEVICE, "%s: inputs on different devices (%d and %d)", sdl_op_name(op), (int)a->device, (int)ins[i]->device);
            return NULL;
        }
        n->in[n->nin++] = ins[i];
    }
    n->out = sdl__arena_tensor(out_shape, SDL_F32, a->device, false); /* the kernel writes all of it */
    if (!n->out) return NULL;
    bool needs_grad = false;
    for (int i = 0; i < n->nin; i++) needs_grad = needs_grad || n->in[i]->requires_grad;
    if (needs_grad && !sdl__g.no_grad) {
        n->out->requires_grad = true;
        n->out->node = n;
        n->prev = sdl__g.tape;
        sdl__g.tape = n;
    }
    return n;
}

/* the usual case: up to four inputs, the first NULL ends them */
static sdl_node *sdl__op_begin(sdl_op op, sdl_shape out_shape, sdl_tensor *a, sdl_tensor *b,
                               sdl_tensor *c, sdl_tensor *d) {
    sdl_tensor *ins[4] = {a, b, c, d};
    return sdl__op_begin_n(op, out_shape, 4, ins);
}

/* A kernel that can fail (a user function's callback) calls sdl_fail and sets this; the op
   or sdl_backward then returns the error. Built-in kernels never fail. */
static sdl_result sdl__kernel_err;

/* SDL_PROFILE=1: time per op type (see >>profile); one branch when off */
static int sdl__prof_on;
static void sdl__prof_add(sdl_op op, int backward, double seconds);

/* runs the node's forward kernel on its device; returns out or NULL */
static sdl_tensor *sdl__op_run(sdl_node *n) {
    if (!n) return NULL;
    const sdl_backend *be = sdl_get_backend(n->out->device);
    sdl_kernel_fn fn = be ? be->forward[n->op] : NULL;
    if (!fn) sdl__kernel_err = sdl_fail(SDL_ERR_DEVICE, "%s has no %s kernel", sdl_op_name(n->op), sdl__device_label(n->out->device));
    else if (sdl__prof_on) {
        double t0 = sdl_now();
        fn(n);
        sdl__prof_add(n->op, 0, sdl_now() - t0);
    } else {
        fn(n);
    }
    if (sdl__kernel_err) { /* the op failed: its node leaves the tape */
        sdl__kernel_err = SDL_OK;
        if (sdl__g.tape == n) sdl__g.tape = n->prev;
        n->out->node = NULL;
        return NULL;
    }
    return n->out;
}

static bool sdl__any_null(const sdl_tensor *a, const sdl_tensor *b) { return !a || !b; }

SDL_API sdl_tensor *sdl_detach(sdl_tensor *x) {
    if (!x) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl_arena_alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = *x;
    t->grad = NULL;
    t->requires_grad = false;
    t->node = NULL;
    t->model = NULL;
    t->param_index = -1;
    t->heap = false;
    return t;
}

/* Gives each input that needs a gradient its buffer before n's backward runs. The first
   write of a gradient in a step need not add into zeros: where the kernel can overwrite
   (`overwrite`), an intermediate's first buffer is left unzeroed and a parameter whose
   gradient is all zeros (model->grad_zero, set by the optimizer step) is written, not
   added to; node->grad_fresh tells the kernel which. A tensor that is two of n's inputs
   is never fresh (the kernel would overwrite its own first write). */
static bool sdl__grad_prepare(sdl_node *n, bool overwrite) {
    n->grad_fresh = 0;
    for (int i = 0; i < n->nin; i++) {
        sdl_tensor *p = n->in[i];
        if (!p->requires_grad) continue;
        bool fresh = overwrite;
        for (int j = 0; j < n->nin; j++) fresh = fresh && (j == i || n->in[j] != p);
        if (!p->grad) {
            if (fresh && p->device == SDL_CPU) p->grad = (float *)sdl__arena_bump((size_t)p->numel * sizeof(float));
            else fresh = false;
            if (!sdl__grad(p)) return false;
        } else if (p->model && p->model->grad_zero && p->model->grad_zero[p->param_index]) {
            p->model->grad_zero[p->param_index] = false; /* written from here on */
        } else {
            fresh = false;
        }
        if (fresh) n->grad_fresh |= 1u << i;
    }
    return true;
}


/* n is reached by this pass. An earlier pass that reached it kept the graph (retain_graph)
   and left n's output gradient, which starts from zero again (zeroed, not replaced: a view
   shares its base's buffer); a first pass finds it NULL or zeros. */
static void sdl__backward_reach(sdl_node *n, uint64_t pass) {
    sdl_tensor *out = n->out;
    if (n->pass != 0 && n->pass != pass && out->grad) {
        if (out->device == SDL_CPU) memset(out->grad, 0, (size_t)out->numel * sizeof(float));
        else sdl_get_backend(out->device)->memset0(out->grad, (size_t)out->numel * sizeof(float));
    }
    n->pass = pass;
}

/* Marks the nodes that loss depends on with this pass's number (the tape is newest first,
   so a node's readers come before it) and points each parameter's first_use at the oldest
   node reading it, after whose backward its gradient is final. */
static sdl_result sdl__backward_mark(sdl_node *root, uint64_t pass) {
    sdl__backward_reach(root, pass);
    for (sdl_node *n = sdl__g.tape; n; n = n->prev) {
        if (n->pass != pass) continue;
        for (int i = 0; i < n->nin; i++) {
            sdl_tensor *t = n->in[i];
            if (!t->requires_grad) continue;
            if (t->model) t->first_use = n;
            if (!t->node) continue;
            if (t->node->used)
                return sdl_fail(SDL_ERR_STATE, "backward: the graph through op '%s' (input of '%s') was used up by an earlier "
                                "sdl_backward: keep it there with sdl_backward_ex and retain_graph = true, or detach it",
                                sdl_op_name((sdl_op)(t->node->op)), sdl_op_name((sdl_op)(n->op)));
            sdl__backward_reach(t->node, pass);
        }
    }
    return SDL_OK;
}

/* takes the nodes of this pass off the tape: a later backward that reaches them fails */
static void sdl__backward_drop(uint64_t pass) {
    sdl_node **link = &sdl__g.tape;
    while (*link) {
        sdl_node *n = *link;
        if (n->pass == pass) { n->used = true; *link = n->prev; }
        else link = &n->prev;
    }
}

/* Runs the backward of every node root depends on, newest first, after seeding root's
   gradient (1 for a scalar loss, or the given gradient on root's device); see sdl_backward_ex */
static sdl_result sdl__backward_run(sdl_tensor *root, const float *seed, bool retain_graph) {
    uint64_t pass = ++sdl__g.tape_id;
    if (root->node && root->node->used)
        return sdl_fail(SDL_ERR_STATE, "backward: the op '%s' was used up by an earlier sdl_backward: keep it there "
                        "with sdl_backward_ex and retain_graph = true", sdl_op_name((sdl_op)(root->node->op)));
    if (root->node && sdl__backward_mark(root->node, pass) != SDL_OK) return sdl__err_code;
    float *g = sdl__grad(root);
    if (!g) return sdl__err_code;
    if (seed && root->device == SDL_CPU) {
        for (int64_t i = 0; i < root->numel; i++) g[i] += seed[i];
    } else if (seed) { /* a fresh device gradient is zeroed memory: writing the seed adds it */
        sdl_get_backend(root->device)->copy(g, seed, (size_t)root->numel * sizeof(float), root->device, root->device);
    } else if (root->device == SDL_CPU) {
        g[0] += 1.0f;
    } else {
        const float one = 1.0f;
        sdl_get_backend(root->device)->copy(g, &one, sizeof one, root->device, SDL_CPU);
    }
    for (sdl_node *n = sdl__g.tape; n; n = n->prev) {
        if (n->pass != pass) continue;
        if (n->out->grad) {
            const sdl_backend *be = sdl_get_backend(n->out->device);
            if (!be->backward[n->op]) return sdl_fail(SDL_ERR_DEVICE, "%s has no %s backward kernel", sdl_op_name(n->op), sdl__device_label(n->out->device));
            for (int i = 0; i < n->nin; i++) { /* parameters the kernel reads (ZeRO-3 gathers them) */
                sdl_tensor *p = n->in[i];
                if (p->model && p->model->pre_grad_hook) {
                    sdl_result r = p->model->pre_grad_hook(p->model->pre_grad_hook_user, p->model, p->param_index);
                    if (r != SDL_OK) return r;
                }
            }
            if (!sdl__grad_prepare(n, be->grad_overwrite[n->op] != 0)) return sdl__err_code;
            if (sdl__prof_on) {
                double t0 = sdl_now();
                be->backward[n->op](n);
                sdl__prof_add(n->op, 1, sdl_now() - t0);
            } else {
                be->backward[n->op](n);
            }
            if (sdl__kernel_err) { sdl_result r = sdl__kernel_err; sdl__kernel_err = SDL_OK; return r; }
        }
        for (int i = 0; i < n->nin; i++) { /* parameters whose last contribution this was */
            sdl_tensor *p = n->in[i];
            if (p->model && p->requires_grad && p->first_use == n && p->model->grad_hook) {
                p->first_use = NULL;
                sdl_result r = p->model->grad_hook(p->model->grad_hook_user, p->model, p->param_index);
                if (r != SDL_OK) return r;
            }
        }
    }
    if (!retain_graph) sdl__backward_drop(pass);
    return SDL_OK;
}

SDL_API sdl_result sdl_backward_ex(sdl_tensor *loss, const sdl_backward_desc *desc) {
    if (!loss) { /* sdl_fail writes the message it would read: copy it first */
        char earlier[sizeof sdl__err_msg];
        memcpy(earlier, sdl__err_msg, sizeof earlier);
        return sdl_fail(SDL_ERR_ARG, "backward: loss is NULL (an earlier op failed: %s)", earlier);
    }
    if (loss->numel != 1) return (sdl__shape_error("backward", "loss must be a scalar", loss, NULL), SDL_ERR_SHAPE);
    if (!loss->requires_grad) return sdl_fail(SDL_ERR_STATE, "backward: loss does not depend on anything that needs a gradient");
    return sdl__backward_run(loss, NULL, desc && desc->retain_graph);
}

SDL_API sdl_result sdl_backward(sdl_tensor *loss) { return sdl_backward_ex(loss, NULL); }

SDL_API sdl_result sdl_backward_grad(sdl_tensor *out, const float *grad) {
    if (!out || !grad) {
        char earlier[sizeof sdl__err_msg];
        memcpy(earlier, sdl__err_msg, sizeof earlier);
        return sdl_fail(SDL_ERR_ARG, "backward_grad: NULL %s (an earlier op failed? %s)", out ? "grad" : "output", earlier);
    }
    if (!out->requires_grad) return sdl_fail(SDL_ERR_STATE, "backward_grad: the output does not depend on anything that needs a gradient");
    if (out->device != SDL_CPU && out->grad) return sdl_fail(SDL_ERR_STATE, "backward_grad: a device output that has a gradient already");
    return sdl__backward_run(out, grad, false);
}
/* >>ops-core: kernels beside their backward. Shapes and the derivative above each pair. */

/* ---- activation epilogues (sdl_act), for any op whose output is y = f(z):
   forward applies f to z in place; backward turns dy into dz = f'(z) dy, computed from y,
   so the op's own backward then runs on dz as if there were no activation. */
/* one-thread nanoseconds an element of a memory-bound elementwise loop, for the split over
   the pool (sdl_parallel_for_work: two parts from about 100K elements) */
#define SDL__EW_NS 0.5
typedef struct sdl__relu_job { const float *x; float *y; } sdl__relu_job; /* x may be y */
static void sdl__relu_range(void *ctx, int64_t i0, int64_t i1) {
    const sdl__relu_job *j = (const sdl__relu_job *)ctx;
    for (int64_t i = i0; i < i1; i++) j->y[i] = j->x[i] > 0.0f ? j->x[i] : 0.0f;
}
static void sdl__relu_over_pool(const float *x, float *y, int64_t n) {
    sdl__relu_job j = {x, y};
    sdl_parallel_for_work(n, SDL__EW_NS, sdl__relu_range, &j);
}
static void sdl__act_epilogue_fwd(int act, float *y, int64_t n) {
    if (act == SDL_ACT_RELU) sdl__relu_over_pool(y, y, n);
}
/* dz (rows x cols) from dy and y; with db, also db[c] (=, or += unless fresh) sum_r dz[r][c],
   in row order as the plain bias loop adds. Threads split the columns: each adds its db
   columns in row order, so any thread count gives the same bits. */
typedef struct sdl__epilogue_job { const float *y, *dy; float *dz, *db; int64_t rows, cols; } sdl__epilogue_job;
static void sdl__epilogue_bwd_cols(void *ctx, int64_t c0, int64_t c1) {
    const sdl__epilogue_job *j = (const sdl__epilogue_job *)ctx;
    for (int64_t r = 0; r < j->rows; r++) {
        const float *SDL_RESTRICT yr = j->y + r * j->cols, *SDL_RESTRICT dyr = j->dy + r * j->cols;
        float *SDL_RESTRICT dzr = j->dz + r * j->cols;
        for (int64_t c = c0; c < c1; c++) dzr[c] = yr[c] > 0.0f ? dyr[c] : 0.0f;
        if (j->db) {
            float *SDL_RESTRICT d = j->db;
            for (int64_t c = c0; c < c1; c++) d[c] += dzr[c];
        }
    }
}
static void sdl__act_epilogue_bwd(int act, const float *y, const float *dy, float *dz, int64_t rows, int64_t cols,
                                  float *db, bool db_fresh) {
    SDL__UNUSED(act); /* SDL_ACT_RELU, the only one so far */
    if (db && db_fresh) memset(db, 0, (size_t)cols * sizeof(float));
    sdl__epilogue_job j = {y, dy, dz, db, rows, cols};
    sdl_parallel_for_work(cols, (double)rows * (db ? 2 : 1) * SDL__EW_NS, sdl__epilogue_bwd_cols, &j);
}

/* ---- linear: x (R, in) with R = all leading dims, w (out, in), b (out) -> y (R, out)
   y = act(x w^T + b);  with dz = act'(y) dy (dz = dy without act):
   dx += dz w;  dw += dz^T x;  db += sum_rows dz.  A gradient flagged fresh is written (=). */
static void sdl__linear_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = x->numel / I;
    float *y = sdl_f32(n->out);
    if (b) for (int64_t r = 0; r < R; r++) memcpy(y + r * O, b->data, (size_t)O * sizeof(float));
    sdl_sgemm(false, true, R, O, I, 1.0f, sdl_f32(x), I, sdl_f32(w), I, b ? 1.0f : 0.0f, y, O);
    sdl__act_epilogue_fwd(n->act, y, R * O);
}

static void sdl__linear_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = x->numel / I;
    const float *dy = n->out->grad;
    bool db_fresh = (n->grad_fresh >> 2) & 1u;
    float *db = b && b->requires_grad ? b->grad : NULL;
    if (n->act != SDL_ACT_NONE) { /* dz in the arena (dy stays as it is: the caller may read it) */
        float *dz = (float *)sdl__arena_bump((size_t)(R * O) * sizeof(float));
        if (!dz) return; /* out of memory: the error is set */
        sdl__act_epilogue_bwd(n->act, sdl_f32(n->out), dy, dz, R, O, db, db_fresh);
        dy = dz;
        db = NULL;
    }
    if (x->requires_grad) sdl_sgemm(false, false, R, I, O, 1.0f, dy, O, sdl_f32(w), I, (n->grad_fresh & 1u) ? 0.0f : 1.0f, x->grad, I);
    if (w->requires_grad) sdl_sgemm(true, false, O, I, R, 1.0f, dy, O, sdl_f32(x), I, (n->grad_fresh & 2u) ? 0.0f : 1.0f, w->grad, I);
    if (db) {
        if (db_fresh) memset(db, 0, (size_t)O * sizeof(float));
        for (int64_t r = 0; r < R; r++) {
            const float *SDL_RESTRICT d = dy + r * O;
            float *SDL_RESTRICT acc = db;
            for (int64_t o = 0; o < O; o++) acc[o] += d[o];
        }
    }
}

static sdl_tensor *sdl__linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, sdl_act act) {
    if (sdl__any_null(x, w)) return NULL;
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return (sdl_tensor *)sdl__shape_error("linear", "input (..., in) does not fit weight (out, in)", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return (sdl_tensor *)sdl__shape_error("linear", "bias must be (out) for weight (out, in)", b, w);
    sdl_shape s = sdl_tensor_shape(x);
    s.d[s.ndim - 1] = w->shape[0];
    sdl_node *n = sdl__op_begin(SDL_OP_LINEAR, s, x, w, b, NULL);
    if (n) n->act = (int)act;
    return sdl__op_run(n);
}

SDL_API sdl_tensor *sdl_linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b) { return sdl__linear(x, w, b, SDL_ACT_NONE); }

SDL_API sdl_tensor *sdl_linear_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, sdl_act act) {
    if ((int)act < (int)SDL_ACT_NONE || (int)act > (int)SDL_ACT_RELU) {
        sdl_fail(SDL_ERR_ARG, "linear_act: unknown activation %d", (int)act);
        return NULL;
    }
    if (act == SDL_ACT_NONE) return sdl_linear(x, w, b);
    /* other devices' kernels know no epilogue yet: two ops there */
    if (x && x->device != SDL_CPU && x->device != SDL_DEVICE_DEFAULT) return sdl_relu(sdl_linear(x, w, b));
    return sdl__linear(x, w, b, act);
}

/* ---- elementwise activations: y = f(x); dx += f'(x) dy */
static void sdl__relu_fwd(sdl_node *n) { sdl__relu_over_pool(sdl_f32(n->in[0]), sdl_f32(n->out), n->out->numel); }
static void sdl__relu_bwd(sdl_node *n) {
    if (n->grad_fresh & 1u) sdl__act_epilogue_bwd(SDL_ACT_RELU, sdl_f32(n->out), n->out->grad, n->in[0]->grad, 1, n->out->numel, NULL, false);
    else sdl__relu_grad_add(n->in[0]->grad, sdl_f32(n->in[0]), n->out->grad, n->out->numel); /* SIMD, in >>gemm */
}
SDL_API sdl_tensor *sdl_relu(sdl_tensor *x) {
    if (!x) return NULL;
    return sdl__op_run(sdl__op_begin(SDL_OP_RELU, sdl_tensor_shape(x), x, NULL, NULL, NULL));
}

/* ---- add / mul with b broadcast into a (b right-aligned, each dim equal or 1)
   y = a + b: da += dy, db += sum over broadcast dims of dy
   y = a * b: da += dy * b, db += sum over broadcast dims of dy * a */
static bool sdl__broadcastable(const sdl_tensor *a, const sdl_tensor *b) {
    if (b->ndim > a->ndim) return false;
    for (int i = 1; i <= b->ndim; i++) {
        int64_t bd = b->shape[b->ndim - i], ad = a->shape[a->ndim - i];
        if (bd != ad && bd != 1) return false;
    }
    return true;
}

/* index into b for each flat index of a: precomputed strides, zero where b broadcasts */
typedef struct sdl__bcast { int nd; int64_t shape[SDL_MAX_DIMS], bstride[SDL_MAX_DIMS]; } sdl__bcast;
static sdl__bcast sdl__bcast_make(const sdl_tensor *a, const sdl_tensor *b) {
    sdl__bcast bc;
    memset(&bc, 0, sizeof bc);
    bc.nd = a->ndim;
    int64_t stride = 1;
    for (int i = a->ndim - 1; i >= 0; i--) {
        int bi = i - (a->ndim - b->ndim);
        bc.shape[i] = a->shape[i];
        bc.bstride[i] = (bi >= 0 && b->shape[bi] != 1) ? stride : 0;
        if (bi >= 0) stride *= b->shape[bi];
    }
    return bc;
}
static int64_t sdl__bcast_index(const sdl__bcast *bc, int64_t i) {
    int64_t j = 0;
    for (int d = bc->nd - 1; d >= 0; d--) {
        j += (i % bc->shape[d]) * bc->bstride[d];
        i /= bc->shape[d];
    }
    return j;
}

/* add and mul: b the shape of a (a residual connection, a gate) or broadcast onto it (a
   bias). Equal shapes: restrict loops split over the pool by work; a broadcast b is indexed
   per element, on the caller's thread. */
static void sdl__add_loop(float *SDL_RESTRICT y, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
static void sdl__mul_loop(float *SDL_RESTRICT y, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}
static void sdl__mul_grad_loop(float *SDL_RESTRICT d, const float *SDL_RESTRICT dy, const float *SDL_RESTRICT o, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += dy[i] * o[i];
}
static void sdl__add_same_fwd(void *ctx, int64_t i0, int64_t i1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__add_loop(sdl_f32(n->out) + i0, sdl_f32(n->in[0]) + i0, sdl_f32(n->in[1]) + i0, i1 - i0);
}
static void sdl__add_same_bwd(void *ctx, int64_t i0, int64_t i1) { /* x + x: both into one buffer, in turn */
    sdl_node *n = (sdl_node *)ctx;
    for (int k = 0; k < 2; k++)
        if (n->in[k]->requires_grad) sdl__vadd(n->in[k]->grad + i0, n->out->grad + i0, i1 - i0);
}
static void sdl__mul_same_fwd(void *ctx, int64_t i0, int64_t i1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__mul_loop(sdl_f32(n->out) + i0, sdl_f32(n->in[0]) + i0, sdl_f32(n->in[1]) + i0, i1 - i0);
}
static void sdl__mul_same_bwd(void *ctx, int64_t i0, int64_t i1) { /* da += dy b, db += dy a */
    sdl_node *n = (sdl_node *)ctx;
    for (int k = 0; k < 2; k++)
        if (n->in[k]->requires_grad) sdl__mul_grad_loop(n->in[k]->grad + i0, n->out->grad + i0, sdl_f32(n->in[1 - k]) + i0, i1 - i0);
}
static bool sdl__same_numel(const sdl_node *n) { return n->in[0]->numel == n->in[1]->numel; }
static void sdl__add_fwd(sdl_node *n) {
    if (sdl__same_numel(n)) { sdl_parallel_for_work(n->out->numel, SDL__EW_NS, sdl__add_same_fwd, n); return; }
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b);
    float *y = sdl_f32(n->out);
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) y[i] = pa[i] + pb[sdl__bcast_index(&bc, i)];
}
static void sdl__add_bwd(sdl_node *n) {
    if (sdl__same_numel(n)) { sdl_parallel_for_work(n->out->numel, 2 * SDL__EW_NS, sdl__add_same_bwd, n); return; }
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *dy = n->out->grad;
    if (a->requires_grad) sdl__vadd(a->grad, dy, a->numel);
    if (!b->requires_grad) return;
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) b->grad[sdl__bcast_index(&bc, i)] += dy[i];
}
static void sdl__mul_fwd(sdl_node *n) {
    if (sdl__same_numel(n)) { sdl_parallel_for_work(n->out->numel, SDL__EW_NS, sdl__mul_same_fwd, n); return; }
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b);
    float *y = sdl_f32(n->out);
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) y[i] = pa[i] * pb[sdl__bcast_index(&bc, i)];
}
static void sdl__mul_bwd(sdl_node *n) {
    if (sdl__same_numel(n)) { sdl_parallel_for_work(n->out->numel, 2 * SDL__EW_NS, sdl__mul_same_bwd, n); return; }
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b), *dy = n->out->grad;
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) {
        int64_t j = sdl__bcast_index(&bc, i);
        if (a->requires_grad) a->grad[i] += dy[i] * pb[j];
        if (b->requires_grad) b->grad[j] += dy[i] * pa[i];
    }
}
static bool sdl__expand2(const char *op, sdl_tensor **a, sdl_tensor **b); /* >>ops-general */
static sdl_tensor *sdl__scalar_to(sdl_tensor *t, sdl_device dev);
/* b bias-style onto a (the kernels' case); a onto b swapped (a + b = b + a); otherwise both
   expanded to their NumPy broadcast first */
static sdl_tensor *sdl__binary(sdl_op op, const char *name, sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(a, b)) return NULL;
    a = sdl__scalar_to(a, b->device);
    b = sdl__scalar_to(b, a ? a->device : SDL_CPU);
    if (sdl__any_null(a, b)) return NULL;
    if (!sdl__broadcastable(a, b)) {
        if (sdl__broadcastable(b, a)) { sdl_tensor *t = a; a = b; b = t; }
        else if (!sdl__expand2(name, &a, &b)) return NULL;
    }
    return sdl__op_run(sdl__op_begin(op, sdl_tensor_shape(a), a, b, NULL, NULL));
}
SDL_API sdl_tensor *sdl_add(sdl_tensor *a, sdl_tensor *b) { return sdl__binary(SDL_OP_ADD, "add", a, b); }
SDL_API sdl_tensor *sdl_mul(sdl_tensor *a, sdl_tensor *b) { return sdl__binary(SDL_OP_MUL, "mul", a, b); }
SDL_API sdl_tensor *sdl_residual_add(sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(a, b)) return NULL;
    if (!sdl_shape_equal(sdl_tensor_shape(a), sdl_tensor_shape(b)))
        return (sdl_tensor *)sdl__shape_error("residual_add", "shapes differ", a, b);
    return sdl_add(a, b);
}

/* ---- reshape: a view sharing data and gradient; its backward has nothing to do */
static void sdl__view_bwd(sdl_node *n) { SDL__UNUSED(n); }
SDL_API sdl_tensor *sdl_reshape(sdl_tensor *x, sdl_shape shape) {
    if (!x) return NULL;
    int64_t known = 1;
    int infer = -1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.d[i] == -1 && infer < 0) infer = i;
        else known *= shape.d[i];
    }
    if (infer >= 0 && known > 0 && x->numel % known == 0) shape.d[infer] = x->numel / known;
    if (sdl__shape_numel(shape) != x->numel) {
        char s[128];
        sdl_shape_str(shape, s, sizeof s);
        return (sdl_tensor *)sdl__shape_error("reshape", s, x, NULL);
    }
    if (!sdl__ready(x) || (x->requires_grad && !sdl__g.no_grad && !sdl__grad(x))) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl_arena_alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = *x;
    t->heap = false;
    t->model = NULL;
    t->param_index = -1;
    t->ndim = shape.ndim; /* node stays x's: a backward through the view reaches x's op */
    for (int i = 0; i < shape.ndim; i++) t->shape[i] = shape.d[i];
    if (sdl__g.no_grad) { t->requires_grad = false; t->grad = NULL; }
    return t;
}
SDL_API sdl_tensor *sdl_flatten(sdl_tensor *x) {
    if (!x) return NULL;
    if (x->ndim < 1) return (sdl_tensor *)sdl__shape_error("flatten", "needs a batch dim", x, NULL);
    return sdl_reshape(x, sdl_shape2(x->shape[0], x->shape[0] ? x->numel / x->shape[0] : 0));
}

/* ---- sum / mean: y = sum_i x_i (times 1/n for mean); dx_i += dy (times 1/n) */
static void sdl__sum_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]);
    double s = 0.0;
    for (int64_t i = 0; i < n->in[0]->numel; i++) s += x[i];
    if (n->op == SDL_OP_MEAN && n->in[0]->numel) s /= (double)n->in[0]->numel;
    sdl_f32(n->out)[0] = (float)s;
}
static void sdl__sum_bwd(sdl_node *n) {
    float g = n->out->grad[0];
    if (n->op == SDL_OP_MEAN && n->in[0]->numel) g /= (float)n->in[0]->numel;
    for (int64_t i = 0; i < n->in[0]->numel; i++) n->in[0]->grad[i] += g;
}
SDL_API sdl_tensor *sdl_sum(sdl_tensor *x) {
    if (!x) return NULL;
    return sdl__op_run(sdl__op_begin(SDL_OP_SUM, sdl_shapen(0, NULL), x, NULL, NULL, NULL));
}
SDL_API sdl_tensor *sdl_mean(sdl_tensor *x) {
    if (!x) return NULL;
    return sdl__op_run(sdl__op_begin(SDL_OP_MEAN, sdl_shapen(0, NULL), x, NULL, NULL, NULL));
}

/* >>ops-conv (conv2d, conv_transpose2d, pooling) */

/* Images are NCHW. A conv's geometry: an image (C, H, W) read through KH x KW windows with
   stride (sh, sw) and zero padding (ph, pw) at the OH x OW grid points. im2col lays the
   windows out as col (C*KH*KW, OH*OW), so a conv is one GEMM per sample; col2im adds such
   a matrix back into the image (the adjoint). conv_transpose2d uses the same two with the
   roles swapped: its output is the image, its input the grid. */
typedef struct sdl__geom { int64_t C, H, W, KH, KW, OH, OW; int64_t sh, sw, ph, pw; } sdl__geom;

static void sdl__im2col(const float *x, const sdl__geom *g, float *col) {
    int64_t P = g->OH * g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->KH; i++)
            for (int64_t j = 0; j < g->KW; j++) {
                float *dst = col + ((c * g->KH + i) * g->KW + j) * P;
                for (int64_t oh = 0; oh < g->OH; oh++, dst += g->OW) {
                    int64_t ih = oh * g->sh - g->ph + i;
                    if (ih < 0 || ih >= g->H) { memset(dst, 0, (size_t)g->OW * sizeof(float)); continue; }
                    const float *src = x + (c * g->H + ih) * g->W;
                    if (g->sw == 1) { /* zeros, a contiguous run, zeros */
                        int64_t lo = g->pw - j, hi = g->W + g->pw - j; /* ow range reading inside */
                        if (lo < 0) lo = 0;
                        if (hi > g->OW) hi = g->OW;
                        if (hi < lo) hi = lo;
                        for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                        if (hi > lo) memcpy(dst + lo, src + lo - g->pw + j, (size_t)(hi - lo) * sizeof(float));
                        for (int64_t ow = hi; ow < g->OW; ow++) dst[ow] = 0.0f;
                    } else {
                        for (int64_t ow = 0; ow < g->OW; ow++) {
                            int64_t iw = ow * g->sw - g->pw + j;
                            dst[ow] = iw >= 0 && iw < g->W ? src[iw] : 0.0f;
                        }
                    }
                }
            }
}

static void sdl__col2im(const float *col, const sdl__geom *g, float *x) {
    int64_t P = g->OH * g->OW;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->KH; i++)
            for (int64_t j = 0; j < g->KW; j++) {
                const float *src = col + ((c * g->KH + i) * g->KW + j) * P;
                for (int64_t oh = 0; oh < g->OH; oh++, src += g->OW) {
                    int64_t ih = oh * g->sh - g->ph + i;
                    if (ih < 0 || ih >= g->H) continue;
                    float *dst = x + (c * g->H + ih) * g->W;
                    if (g->sw == 1) { /* one contiguous run, like im2col */
                        int64_t lo = g->pw - j, hi = g->W + g->pw - j;
                        if (lo < 0) lo = 0;
                        if (hi > g->OW) hi = g->OW;
                        if (hi > lo) sdl__vadd(dst + lo + j - g->pw, src + lo, hi - lo);
                    } else {
                        for (int64_t ow = 0; ow < g->OW; ow++) {
                            int64_t iw = ow * g->sw - g->pw + j;
                            if (iw >= 0 && iw < g->W) dst[iw] += src[ow];
                        }
                    }
                }
            }
}

/* One conv op's work, split over samples. Weight grads are summed per fixed chunk of
   samples (the chunking depends on the batch, never on the thread count), then the chunk
   sums are added in order, so results are bitwise the same for any number of threads. */
typedef struct sdl__conv_job {
    sdl_node *n;
    bool transpose;
    sdl__geom g;          /* image = conv input (transpose: output), grid = the other */
    int64_t O, Kc, P;     /* conv: C_out, C_in*kh*kw, OH*OW; transpose: C_in, C_out*kh*kw, H*W */
    int64_t nb, nchunks, parts;
    bool inner_threads;   /* one part: let each GEMM use the threads instead */
    bool dx_fresh;        /* x->grad holds no gradient yet (node->grad_fresh): written, not added to */
    float *scratch;       /* per part: 2 * Kc * P floats */
    float *wpart, *bpart; /* per chunk: O*Kc and bias-sized partial sums */
    /* Winograd (see below): */
    bool wino;
    int64_t TH, TW, T1;   /* tile rows, columns, tiles per sample */
    int64_t wg, ngroups;  /* samples per group, groups */
    size_t wper;          /* floats of scratch per part: V, M, the E and O planes */
    float *wbuf, *U, *dU; /* per part scratch; U (16, O, C); dU per group (16, O, C), or (16, C, O) if C < O */
} sdl__conv_job;

static void sdl__gemm_in(const sdl__conv_job *j, int part, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (j->inner_threads) sdl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    else sdl__sgemm_serial(part, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

static bool sdl__conv_is_1x1(const sdl__geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* conv:      y_b (O, P) = W (O, Kc) @ im2col(x_b) + bias
   transpose: y_b = col2im(W^T (Kc, C_in) @ x_b (C_in, P)) + bias */
static void sdl__conv_fwd_part(void *ctx, int64_t p0, int64_t p1) {
    const sdl__conv_job *j = (const sdl__conv_job *)ctx;
    sdl_tensor *x = j->n->in[0], *w = j->n->in[1], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    const float *W = sdl_f32(w);
    int64_t in_sz = x->numel / j->nb, out_sz = j->n->out->numel / j->nb;
    int64_t Cb = b ? b->numel : 0, plane = Cb ? out_sz / Cb : 0;
    for (int64_t part = p0; part < p1; part++) {
        float *col = j->scratch + part * 2 * j->Kc * j->P;
        for (int64_t s = j->nb * part / j->parts; s < j->nb * (part + 1) / j->parts; s++) {
            const float *xs = sdl_f32(x) + s * in_sz;
            float *ys = sdl_f32(j->n->out) + s * out_sz;
            for (int64_t c = 0; c < Cb; c++) sdl__vfill(ys + c * plane, sdl_f32(b)[c], plane);
            if (!Cb && j->transpose) memset(ys, 0, (size_t)out_sz * sizeof(float)); /* col2im adds */
            if (!j->transpose) {
                const float *cs = xs;
                if (!sdl__conv_is_1x1(&j->g)) { sdl__im2col(xs, &j->g, col); cs = col; }
                sdl__gemm_in(j, (int)part, false, false, j->O, j->P, j->Kc, W, j->Kc, cs, j->P, Cb ? 1.0f : 0.0f, ys, j->P);
            } else {
                sdl__gemm_in(j, (int)part, true, false, j->Kc, j->P, j->O, W, j->Kc, xs, j->P, 0.0f, col, j->P);
                sdl__col2im(col, &j->g, ys);
            }
        }
    }
}

/* conv:      dW += dy_b im2col(x_b)^T;  dx_b += col2im(W^T dy_b);  db += sum dy_b
   transpose: dW += x_b im2col(dy_b)^T;  dx_b += W im2col(dy_b);      db += sum dy_b */
static void sdl__conv_bwd_part(void *ctx, int64_t p0, int64_t p1) {
    const sdl__conv_job *j = (const sdl__conv_job *)ctx;
    sdl_tensor *x = j->n->in[0], *w = j->n->in[1], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    const float *W = sdl_f32(w);
    int64_t in_sz = x->numel / j->nb, out_sz = j->n->out->numel / j->nb;
    int64_t Cb = b ? b->numel : 0, plane = Cb ? out_sz / Cb : 0;
    bool want_b = b && b->requires_grad;
    for (int64_t part = p0; part < p1; part++) {
        float *col = j->scratch + part * 2 * j->Kc * j->P, *dcol = col + j->Kc * j->P;
        /* this part's chunks: [c0, c1) */
        int64_t c0 = j->nchunks * part / j->parts, c1 = j->nchunks * (part + 1) / j->parts;
        for (int64_t ch = c0; ch < c1; ch++) {
            float *wp = j->wpart + ch * j->O * j->Kc, *bp = j->bpart + ch * Cb;
            bool first = true;
            for (int64_t s = j->nb * ch / j->nchunks; s < j->nb * (ch + 1) / j->nchunks; s++) {
                const float *xs = sdl_f32(x) + s * in_sz, *dys = j->n->out->grad + s * out_sz;
                float *dxs = x->requires_grad ? x->grad + s * in_sz : NULL;
                if (dxs && j->dx_fresh) memset(dxs, 0, (size_t)in_sz * sizeof(float)); /* the kernels below add */
                if (want_b)
                    for (int64_t c = 0; c < Cb; c++) bp[c] = (first ? 0.0f : bp[c]) + sdl__vsum(dys + c * plane, plane);
                if (!j->transpose) {
                    const float *cs = xs;
                    bool direct = sdl__conv_is_1x1(&j->g);
                    if (w->requires_grad) {
                        if (!direct) { sdl__im2col(xs, &j->g, col); cs = col; }
                        if (j->Kc < j->O) /* few columns (conv1: C_in*9 = 9): dW^T (Kc, O) = col dy^T pads less */
                            sdl__gemm_in(j, (int)part, false, true, j->Kc, j->O, j->P, cs, j->P, dys, j->P, first ? 0.0f : 1.0f, wp, j->O);
                        else sdl__gemm_in(j, (int)part, false, true, j->O, j->Kc, j->P, dys, j->P, cs, j->P, first ? 0.0f : 1.0f, wp, j->Kc);
                    }
                    if (dxs) {
                        if (direct) sdl__gemm_in(j, (int)part, true, false, j->Kc, j->P, j->O, W, j->Kc, dys, j->P, 1.0f, dxs, j->P);
                        else {
                            sdl__gemm_in(j, (int)part, true, false, j->Kc, j->P, j->O, W, j->Kc, dys, j->P, 0.0f, dcol, j->P);
                            sdl__col2im(dcol, &j->g, dxs);
                        }
                    }
                } else {
                    sdl__im2col(dys, &j->g, col);
                    if (w->requires_grad)
                        sdl__gemm_in(j, (int)part, false, true, j->O, j->Kc, j->P, xs, j->P, col, j->P, first ? 0.0f : 1.0f, wp, j->Kc);
                    if (dxs) sdl__gemm_in(j, (int)part, false, false, j->O, j->P, j->Kc, W, j->Kc, col, j->P, 1.0f, dxs, j->P);
                }
                first = false;
            }
        }
    }
}

/* in the engine room (see >>winograd) */
static bool sdl__wino_applies(const sdl__conv_job *j);
static void sdl__wino_bwd_finish(sdl__conv_job *j);
static void sdl__wino_bwd_part(void *ctx, int64_t p0, int64_t p1);
static void sdl__wino_fwd_part(void *ctx, int64_t p0, int64_t p1);
static bool sdl__wino_init(sdl__conv_job *j, bool backward);

static int64_t sdl__wino_tiles = 288; /* tiles per group: 2 samples of 24x24 outputs (tests make it small) */
static int sdl__conv_algo = 0; /* 0: Winograd where it pays; 1: im2col only; 2: Winograd wherever it applies (tests) */
/* chunks of samples for the weight-gradient sums: at most 16, fewer for big weights */
static int64_t sdl__conv_chunks(int64_t nb, int64_t wsize) {
    int64_t c = nb < 16 ? nb : 16, cap = ((int64_t)1 << 22) / (wsize > 0 ? wsize : 1);
    if (c > cap) c = cap;
    return c < 1 ? 1 : c;
}

static bool sdl__conv_job_init(sdl__conv_job *j, sdl_node *n, bool backward) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    memset(j, 0, sizeof *j);
    j->n = n;
    j->transpose = n->op == SDL_OP_CONV_TRANSPOSE2D;
    sdl_tensor *img = j->transpose ? y : x, *grid = j->transpose ? x : y;
    j->g.C = img->shape[1]; j->g.H = img->shape[2]; j->g.W = img->shape[3];
    j->g.KH = w->shape[2]; j->g.KW = w->shape[3];
    j->g.OH = grid->shape[2]; j->g.OW = grid->shape[3];
    j->g.sh = n->attr.conv.stride_h; j->g.sw = n->attr.conv.stride_w;
    j->g.ph = n->attr.conv.pad_h; j->g.pw = n->attr.conv.pad_w;
    j->O = w->shape[0];
    j->Kc = w->shape[1] * j->g.KH * j->g.KW;
    j->P = j->g.OH * j->g.OW;
    j->nb = x->shape[0];
    j->wino = sdl__wino_applies(j);
    if (j->wino) return sdl__wino_init(j, backward);
    j->nchunks = backward ? sdl__conv_chunks(j->nb, j->O * j->Kc) : j->nb;
    int64_t units = backward ? j->nchunks : j->nb;
    int nt = sdl_get_num_threads();
    j->parts = units < nt ? units : nt;
    if (j->parts < 1) j->parts = 1;
    j->inner_threads = j->parts == 1 && nt > 1;
    if (!sdl__gemm_ws_ready((int)j->parts)) return false;
    size_t per = 0, total = 0;
    if (sdl__mul_overflows((size_t)j->Kc, (size_t)j->P, &per) || sdl__mul_overflows(per, 2 * (size_t)j->parts, &total)) {
        sdl_fail(SDL_ERR_OOM, "conv: scratch size overflows");
        return false;
    }
    j->scratch = (float *)sdl__arena_bump(total * sizeof(float)); /* written before it is read: not zeroed */
    if (!j->scratch) return false;
    if (backward) {
        int64_t Cb = n->nin > 2 ? n->in[2]->numel : 0;
        j->wpart = (float *)sdl__arena_bump((size_t)(j->nchunks * (j->O * j->Kc + Cb)) * sizeof(float));
        if (!j->wpart) return false;
        j->bpart = j->wpart + j->nchunks * j->O * j->Kc;
    }
    return true;
}

static void sdl__conv_fwd(sdl_node *n) {
    sdl__conv_job j;
    if (!sdl__conv_job_init(&j, n, false)) return;
    void (*part)(void *, int64_t, int64_t) = j.wino ? sdl__wino_fwd_part : sdl__conv_fwd_part;
    if (j.parts == 1) part(&j, 0, 1);
    else sdl_parallel_for(j.parts, 1, part, &j);
    sdl__act_epilogue_fwd(n->act, sdl_f32(n->out), n->out->numel);
}

/* backward of y = act(conv(x)): dz = act'(y) dy in the arena, then conv's backward on dz */
static void sdl__conv_bwd_dz(sdl_node *n);
static void sdl__conv_bwd(sdl_node *n) {
    if (n->act == SDL_ACT_NONE) { sdl__conv_bwd_dz(n); return; }
    float *dy = n->out->grad, *dz = (float *)sdl__arena_bump((size_t)n->out->numel * sizeof(float));
    if (!dz) return; /* out of memory: the error is set */
    sdl__act_epilogue_bwd(n->act, sdl_f32(n->out), dy, dz, 1, n->out->numel, NULL, false);
    n->out->grad = dz; /* for the conv kernels only; dy is back before anyone else looks */
    sdl__conv_bwd_dz(n);
    n->out->grad = dy;
}

static void sdl__conv_bwd_dz(sdl_node *n) {
    sdl__conv_job j;
    if (!sdl__conv_job_init(&j, n, true)) return;
    j.dx_fresh = n->grad_fresh & 1u; /* dx: each sample's written whole by its part; w and b: zeroed here, added to below */
    if (n->grad_fresh & 2u) memset(n->in[1]->grad, 0, (size_t)n->in[1]->numel * sizeof(float));
    if (n->grad_fresh & 4u) memset(n->in[2]->grad, 0, (size_t)n->in[2]->numel * sizeof(float));
    if (j.wino) {
        if (j.parts == 1) sdl__wino_bwd_part(&j, 0, 1);
        else sdl_parallel_for(j.parts, 1, sdl__wino_bwd_part, &j);
        sdl__wino_bwd_finish(&j);
        return;
    }
    if (j.parts == 1) sdl__conv_bwd_part(&j, 0, 1);
    else sdl_parallel_for(j.parts, 1, sdl__conv_bwd_part, &j);
    sdl_tensor *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t wn = j.O * j.Kc, Cb = b ? b->numel : 0;
    bool wt = !j.transpose && j.Kc < j.O; /* chunk sums stored as dW^T (see sdl__conv_bwd_part) */
    for (int64_t ch = 0; ch < j.nchunks; ch++) { /* chunk sums, in order */
        if (w->requires_grad && wt)
            for (int64_t o = 0; o < j.O; o++)
                for (int64_t k = 0; k < j.Kc; k++) w->grad[o * j.Kc + k] += j.wpart[ch * wn + k * j.O + o];
        else if (w->requires_grad) for (int64_t i = 0; i < wn; i++) w->grad[i] += j.wpart[ch * wn + i];
        if (b && b->requires_grad) for (int64_t i = 0; i < Cb; i++) b->grad[i] += j.bpart[ch * Cb + i];
    }
}

static sdl_tensor *sdl__conv_common(const char *name, sdl_op op, sdl_tensor *x, sdl_tensor *w, sdl_tensor *b,
                                    int stride, int pad, int out_pad, sdl_act act) {
    if (sdl__any_null(x, w)) return NULL;
    bool tr = op == SDL_OP_CONV_TRANSPOSE2D;
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[tr ? 0 : 1])
        return (sdl_tensor *)sdl__shape_error(name, tr ? "input (N, C_in, H, W) does not fit weight (C_in, C_out, kh, kw)"
                                                       : "input (N, C_in, H, W) does not fit weight (C_out, C_in, kh, kw)", x, w);
    int64_t cout = w->shape[tr ? 1 : 0];
    if (b && (b->ndim != 1 || b->shape[0] != cout))
        return (sdl_tensor *)sdl__shape_error(name, "bias must be (C_out)", b, w);
    if (stride < 1 || pad < 0 || out_pad < 0 || (out_pad > 0 && out_pad >= stride)) {
        sdl_fail(SDL_ERR_ARG, "%s: stride %d, pad %d, out_pad %d: need stride >= 1, pad >= 0, 0 <= out_pad < stride",
                 name, stride, pad, out_pad);
        return NULL;
    }
    int64_t kh = w->shape[2], kw = w->shape[3], oh, ow;
    if (!tr) {
        oh = x->shape[2] + 2 * pad - kh; ow = x->shape[3] + 2 * pad - kw;
        if (oh < 0 || ow < 0) return (sdl_tensor *)sdl__shape_error(name, "kernel larger than the padded input", x, w);
        oh = oh / stride + 1; ow = ow / stride + 1;
    } else {
        oh = (x->shape[2] - 1) * stride - 2 * pad + kh + out_pad;
        ow = (x->shape[3] - 1) * stride - 2 * pad + kw + out_pad;
        if (oh < 1 || ow < 1) return (sdl_tensor *)sdl__shape_error(name, "output would be empty", x, w);
    }
    sdl_node *n = sdl__op_begin(op, sdl_shape4(x->shape[0], cout, oh, ow), x, w, b, NULL);
    if (!n) return NULL;
    n->attr.conv.stride_h = n->attr.conv.stride_w = stride;
    n->attr.conv.pad_h = n->attr.conv.pad_w = pad;
    n->attr.conv.out_pad_h = n->attr.conv.out_pad_w = out_pad;
    n->act = (int)act;
    return sdl__op_run(n);
}

SDL_API sdl_tensor *sdl_conv2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad) {
    return sdl__conv_common("conv2d", SDL_OP_CONV2D, x, w, b, stride, pad, 0, SDL_ACT_NONE);
}
SDL_API sdl_tensor *sdl_conv2d_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, sdl_act act) {
    if ((int)act < (int)SDL_ACT_NONE || (int)act > (int)SDL_ACT_RELU) {
        sdl_fail(SDL_ERR_ARG, "conv2d_act: unknown activation %d", (int)act);
        return NULL;
    }
    /* other devices' kernels know no epilogue yet: two ops there */
    if (act != SDL_ACT_NONE && x && x->device != SDL_CPU && x->device != SDL_DEVICE_DEFAULT)
        return sdl_relu(sdl_conv2d(x, w, b, stride, pad));
    return sdl__conv_common("conv2d", SDL_OP_CONV2D, x, w, b, stride, pad, 0, act);
}
SDL_API sdl_tensor *sdl_conv_transpose2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, int out_pad) {
    return sdl__conv_common("conv_transpose2d", SDL_OP_CONV_TRANSPOSE2D, x, w, b, stride, pad, out_pad, SDL_ACT_NONE);
}

/* ---- conv2d with dilation and groups (and 'same' padding that needs one more row or
   column at the end), the general case behind sdl_conv2d_ex; plain dense convs keep the op
   above with its fast paths. x (N, C, H, W), w (O, C/G, KH, KW), b (O) -> y (N, O, OH, OW).
   Group g reads channels [g C/G, (g+1) C/G) and writes [g O/G, (g+1) O/G). Tap (i, j) of
   output (oh, ow) reads x[oh sh - ph + i dh][ow sw - pw + j dw] (zero outside). Per sample
   and group, with col (C/G KH KW, OH OW) the taps:
   y_g = W_g col + b_g;  dW_g += dy_g col^T;  dx_g += the taps of W_g^T dy_g added back;  db += sum dy */
typedef struct sdl__gconv { int64_t N, C, H, W, O, G, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw; } sdl__gconv;
static sdl__gconv sdl__gconv_of(const sdl_node *n) {
    sdl__gconv g;
    const sdl_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    g.N = x->shape[0]; g.C = x->shape[1]; g.H = x->shape[2]; g.W = x->shape[3];
    g.O = w->shape[0]; g.KH = w->shape[2]; g.KW = w->shape[3]; g.OH = y->shape[2]; g.OW = y->shape[3];
    g.G = n->attr.gconv.groups;
    g.sh = n->attr.gconv.stride_h; g.sw = n->attr.gconv.stride_w; g.ph = n->attr.gconv.pad_h; g.pw = n->attr.gconv.pad_w;
    g.dh = n->attr.gconv.dil_h; g.dw = n->attr.gconv.dil_w;
    return g;
}
/* col (C/G KH KW, OH OW) = the taps of one group's channels x; or, add: x += col's taps back */
static void sdl__gconv_taps(const sdl__gconv *g, float *x, float *col, bool add) {
    int64_t P = g->OH * g->OW;
    for (int64_t c = 0; c < g->C / g->G; c++)
        for (int64_t i = 0; i < g->KH; i++)
            for (int64_t j = 0; j < g->KW; j++) {
                float *cr = col + ((c * g->KH + i) * g->KW + j) * P;
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    bool row_in = ih >= 0 && ih < g->H;
                    for (int64_t ow = 0; ow < g->OW; ow++) {
                        int64_t iw = ow * g->sw - g->pw + j * g->dw;
                        bool in = row_in && iw >= 0 && iw < g->W;
                        if (add) { if (in) x[(c * g->H + ih) * g->W + iw] += cr[oh * g->OW + ow]; }
                        else cr[oh * g->OW + ow] = in ? x[(c * g->H + ih) * g->W + iw] : 0.0f;
                    }
                }
            }
}
static void sdl__gconv_fwd(sdl_node *n) {
    sdl__gconv g = sdl__gconv_of(n);
    const sdl_tensor *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t Cg = g.C / g.G, Og = g.O / g.G, Kc = Cg * g.KH * g.KW, P = g.OH * g.OW;
    float *col = (float *)sdl_arena_alloc((size_t)(Kc * P) * sizeof(float));
    if (!col) return;
    for (int64_t s = 0; s < g.N; s++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            float *y = sdl_f32(n->out) + (s * g.O + grp * Og) * P;
            for (int64_t o = 0; o < Og; o++) sdl__vfill(y + o * P, b ? sdl_f32(b)[grp * Og + o] : 0.0f, P);
            sdl__gconv_taps(&g, sdl_f32(n->in[0]) + (s * g.C + grp * Cg) * g.H * g.W, col, false);
            sdl_sgemm(false, false, Og, P, Kc, 1.0f, sdl_f32(n->in[1]) + grp * Og * Kc, Kc, col, P, 1.0f, y, P);
        }
}
static void sdl__gconv_bwd(sdl_node *n) {
    sdl__gconv g = sdl__gconv_of(n);
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t Cg = g.C / g.G, Og = g.O / g.G, Kc = Cg * g.KH * g.KW, P = g.OH * g.OW;
    float *col = (float *)sdl_arena_alloc((size_t)(2 * Kc * P) * sizeof(float)), *dcol = col + Kc * P;
    if (!col) return;
    for (int64_t s = 0; s < g.N; s++)
        for (int64_t grp = 0; grp < g.G; grp++) {
            const float *dy = n->out->grad + (s * g.O + grp * Og) * P;
            int64_t xo = (s * g.C + grp * Cg) * g.H * g.W;
            if (b && b->requires_grad)
                for (int64_t o = 0; o < Og; o++) b->grad[grp * Og + o] += sdl__vsum(dy + o * P, P);
            if (w->requires_grad) {
                sdl__gconv_taps(&g, sdl_f32(x) + xo, col, false);
                sdl_sgemm(false, true, Og, Kc, P, 1.0f, dy, P, col, P, 1.0f, w->grad + grp * Og * Kc, Kc);
            }
            if (x->requires_grad) {
                sdl_sgemm(true, false, Kc, P, Og, 1.0f, sdl_f32(w) + grp * Og * Kc, Kc, dy, P, 0.0f, dcol, P);
                sdl__gconv_taps(&g, x->grad + xo, dcol, true);
            }
        }
}

SDL_API sdl_tensor *sdl_conv2d_ex(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, const sdl_conv2d_desc *desc) {
    if (sdl__any_null(x, w)) return NULL;
    sdl_conv2d_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    int sh = d.stride_h ? d.stride_h : 1, sw = d.stride_w ? d.stride_w : 1, G = d.groups ? d.groups : 1;
    int dh = d.dilation_h ? d.dilation_h : 1, dw = d.dilation_w ? d.dilation_w : 1;
    if (sh < 1 || sw < 1 || G < 1 || dh < 1 || dw < 1 || d.pad_h < 0 || d.pad_w < 0 || (d.same && (sh != 1 || sw != 1 || d.pad_h || d.pad_w))) {
        sdl_fail(SDL_ERR_ARG, "conv2d_ex: stride (%d, %d), pad (%d, %d), dilation (%d, %d), groups %d%s: need positive strides, "
                 "dilations and groups, pads >= 0 ('same' wants stride 1 and no pad)", sh, sw, d.pad_h, d.pad_w, dh, dw, G, d.same ? ", same" : "");
        return NULL;
    }
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] % G != 0 || w->shape[0] % G != 0 || x->shape[1] / G != w->shape[1])
        return (sdl_tensor *)sdl__shape_error("conv2d_ex", "input (N, C_in, H, W) does not fit weight (C_out, C_in/groups, kh, kw) with C_in and C_out divisible by groups", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) return (sdl_tensor *)sdl__shape_error("conv2d_ex", "bias must be (C_out)", b, w);
    int64_t eh = (w->shape[2] - 1) * dh, ew = (w->shape[3] - 1) * dw; /* the kernels' extents - 1 */
    int ph = d.same ? (int)(eh / 2) : d.pad_h, pw = d.same ? (int)(ew / 2) : d.pad_w;
    int64_t oh = d.same ? x->shape[2] : (x->shape[2] + 2 * ph - eh - 1) / sh + 1, ow = d.same ? x->shape[3] : (x->shape[3] + 2 * pw - ew - 1) / sw + 1;
    if (x->shape[2] + 2 * ph - eh < 1 || x->shape[3] + 2 * pw - ew < 1)
        return (sdl_tensor *)sdl__shape_error("conv2d_ex", "kernel (dilated) larger than the padded input", x, w);
    bool dense = G == 1 && dh == 1 && dw == 1 && (!d.same || (eh % 2 == 0 && ew % 2 == 0)); /* the op above, with its fast paths */
    if (!dense && x->device != SDL_CPU) {
        sdl_fail(SDL_ERR_DEVICE, "conv2d_ex: groups, dilation or uneven 'same' padding have no kernel on device %d yet (CPU only)", (int)x->device);
        return NULL;
    }
    sdl_node *n = sdl__op_begin(dense ? SDL_OP_CONV2D : SDL_OP_CONV2D_GROUPED, sdl_shape4(x->shape[0], w->shape[0], oh, ow), x, w, b, NULL);
    if (!n) return NULL;
    if (dense) {
        n->attr.conv.stride_h = sh; n->attr.conv.stride_w = sw;
        n->attr.conv.pad_h = ph; n->attr.conv.pad_w = pw;
    } else {
        n->attr.gconv.stride_h = sh; n->attr.gconv.stride_w = sw;
        n->attr.gconv.pad_h = ph; n->attr.gconv.pad_w = pw;
        n->attr.gconv.dil_h = dh; n->attr.gconv.dil_w = dw;
        n->attr.gconv.groups = G;
    }
    return sdl__op_run(n);
}

/* ---- pooling over each (n, c) plane: x (N, C, H, W) -> y (N, C, OH, OW)
   max: y = max over the window (padding never wins), forward keeps the arg-max (first
        of ties, like PyTorch); dx[argmax] += dy
   avg: y = sum over the window / (kh*kw) (padding counts, PyTorch's count_include_pad);
        dx += dy / (kh*kw) over the window. A ceil_mode window that hangs over the padded
        input divides by its part inside it instead (as PyTorch). */
typedef struct sdl__pool_job { sdl_node *n; int64_t H, W, OH, OW; int k, s, p; } sdl__pool_job;

static void sdl__pool_planes(void *ctx, int64_t p0, int64_t p1, bool backward) {
    const sdl__pool_job *j = (const sdl__pool_job *)ctx;
    sdl_node *n = j->n;
    const bool is_max = n->op == SDL_OP_MAX_POOL2D;
    const int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW, k = j->k, st = j->s, pd = j->p;
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = sdl_f32(n->in[0]) + pl * H * W;
        float *dx = backward ? n->in[0]->grad + pl * H * W : NULL;
        float *y = sdl_f32(n->out) + pl * OH * OW;
        const float *dy = backward ? n->out->grad + pl * OH * OW : NULL;
        int32_t *arg = is_max ? (int32_t *)n->saved + pl * OH * OW : NULL;
        if (backward && (n->grad_fresh & 1u)) memset(dx, 0, (size_t)(H * W) * sizeof(float)); /* dx holds no gradient yet */
        if (is_max && backward) {
            for (int64_t o = 0; o < OH * OW; o++) dx[arg[o]] += dy[o];
            continue;
        }
        int64_t oh = 0;
        if (is_max && k == 2 && st == 2 && pd == 0 && 2 * OH <= H && 2 * OW <= W) /* the common 2x2/2 window, row by row */
            for (; oh < OH; oh++) {
                const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
                float *yo = y + oh * OW;
                int32_t *ao = arg + oh * OW;
                int nan = 0;
                int64_t ow = 0;
#if defined(SDL__GEMM_AVX512)
                const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
                const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
                const __m512i one = _mm512_set1_epi32(1), wv = _mm512_set1_epi32((int)W), w1 = _mm512_set1_epi32((int)W + 1);
                for (; ow < OW && !nan; ow += 16) { /* 16 windows: even/odd columns of two rows */
                    int64_t rem = OW - ow < 16 ? OW - ow : 16;
                    __mmask16 mlo = (__mmask16)(rem >= 8 ? 0xFFFF : (1u << (2 * rem)) - 1u);
                    __mmask16 mhi = (__mmask16)(rem > 8 ? (rem == 16 ? 0xFFFF : (1u << (2 * rem - 16)) - 1u) : 0u);
                    __mmask16 mo = (__mmask16)(rem == 16 ? 0xFFFF : (1u << rem) - 1u);
                    __m512 l0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ow), h0 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ow + 16);
                    __m512 l1 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ow), h1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ow + 16);
                    __m512 a = _mm512_permutex2var_ps(l0, ev, h0), b = _mm512_permutex2var_ps(l0, od, h0);
                    __m512 c = _mm512_permutex2var_ps(l1, ev, h1), d = _mm512_permutex2var_ps(l1, od, h1);
                    __mmask16 kab = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), kcd = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
                    __m512 mab = _mm512_mask_blend_ps(kab, a, b), mcd = _mm512_mask_blend_ps(kcd, c, d);
                    __m512i iab = _mm512_maskz_mov_epi32(kab, one), icd = _mm512_mask_blend_epi32(kcd, wv, w1);
                    __mmask16 k = _mm512_cmp_ps_mask(mcd, mab, _CMP_GT_OQ);
                    __m512i base = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oh * W + 2 * ow)), ev);
                    _mm512_mask_storeu_ps(yo + ow, mo, _mm512_mask_blend_ps(k, mab, mcd));
                    _mm512_mask_storeu_epi32(ao + ow, mo, _mm512_add_epi32(base, _mm512_mask_blend_epi32(k, iab, icd)));
                    nan |= (_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q)) != 0;
                }
                if (nan) break;
#endif
                for (; ow < OW; ow++) {
                    float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                    float mab = b > a ? b : a, mcd = d > c ? d : c;
                    int32_t iab = b > a ? 1 : 0, icd = d > c ? (int32_t)W + 1 : (int32_t)W;
                    yo[ow] = mcd > mab ? mcd : mab;
                    ao[ow] = (int32_t)(2 * oh * W + 2 * ow) + (mcd > mab ? icd : iab);
                    nan |= (a != a) | (b != b) | (c != c) | (d != d);
                }
                if (nan) break; /* NaN in this row: the general loop below propagates it */
            }
        for (; oh < OH; oh++) {
            int64_t h0 = oh * st - pd, h1 = h0 + k < H ? h0 + k : H;
            int64_t kh = (h0 + k < H + pd ? h0 + k : H + pd) - h0; /* k but at a ceil_mode edge */
            if (h0 < 0) h0 = 0;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * st - pd, w1 = w0 + k < W ? w0 + k : W, o = oh * OW + ow;
                const float inv = is_max ? 0.0f : 1.0f / (float)(kh * ((w0 + k < W + pd ? w0 + k : W + pd) - w0));
                if (w0 < 0) w0 = 0;
                if (is_max) { /* max, then the first index holding it: no data-dependent branches */
                    float m = x[h0 * W + w0];
                    int nan = 0;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) {
                            float v = x[h * W + w];
                            m = v > m ? v : m;
                            nan |= v != v;
                        }
                    int64_t best = 0;
                    for (int64_t h = h1 - 1; h >= h0; h--)
                        for (int64_t w = w1 - 1; w >= w0; w--) {
                            int64_t eq = nan ? x[h * W + w] != x[h * W + w] : x[h * W + w] == m;
                            best = eq * (h * W + w) + (1 - eq) * best;
                        }
                    y[o] = x[best];
                    arg[o] = (int32_t)best;
                } else if (!backward) {
                    float sum = 0.0f;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) sum += x[h * W + w];
                    y[o] = sum * inv;
                } else {
                    float g = dy[o] * inv;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) dx[h * W + w] += g;
                }
            }
        }
    }
}
static void sdl__pool_fwd_range(void *ctx, int64_t p0, int64_t p1) { sdl__pool_planes(ctx, p0, p1, false); }
static void sdl__pool_bwd_range(void *ctx, int64_t p0, int64_t p1) { sdl__pool_planes(ctx, p0, p1, true); }
static void sdl__pool_run(sdl_node *n, bool backward) {
    sdl__pool_job j;
    j.n = n;
    j.H = n->in[0]->shape[2]; j.W = n->in[0]->shape[3];
    j.OH = n->out->shape[2]; j.OW = n->out->shape[3];
    j.k = n->attr.pool.kernel_h; j.s = n->attr.pool.stride_h; j.p = n->attr.pool.pad_h;
    int64_t planes = n->in[0]->shape[0] * n->in[0]->shape[1];
    int64_t grain = 1 + 16384 / (j.OH * j.OW * j.k * j.k + 1);
    sdl_parallel_for(planes, grain, backward ? sdl__pool_bwd_range : sdl__pool_fwd_range, &j);
}
static void sdl__pool_fwd(sdl_node *n) { sdl__pool_run(n, false); }
/* PyTorch's output size: (n + 2p - k)/s + 1 rounded down, or up with ceil_mode, where a
   last window must start inside the input or the left padding; needs n + 2p >= k */
static int64_t sdl__pool_out(int64_t n, int k, int s, int p, bool ceil_mode) {
    int64_t span = n + 2 * p - k, o = (ceil_mode ? span + s - 1 : span) / s + 1;
    if (ceil_mode && (o - 1) * s >= n + p) o--;
    return o;
}
static void sdl__pool_bwd(sdl_node *n) { sdl__pool_run(n, true); }

static sdl_tensor *sdl__pool_common(const char *name, sdl_op op, sdl_tensor *x, int kernel, int stride, int pad, bool ceil_mode) {
    if (!x) return NULL;
    if (x->ndim != 4) return (sdl_tensor *)sdl__shape_error(name, "wants (N, C, H, W)", x, NULL);
    if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel) {
        sdl_fail(SDL_ERR_ARG, "%s: kernel %d, stride %d, pad %d: need kernel, stride >= 1 and 0 <= pad <= kernel/2",
                 name, kernel, stride, pad);
        return NULL;
    }
    int64_t oh = x->shape[2] + 2 * pad - kernel, ow = x->shape[3] + 2 * pad - kernel;
    if (oh < 0 || ow < 0) return (sdl_tensor *)sdl__shape_error(name, "window larger than the padded input", x, NULL);
    int64_t OH = sdl__pool_out(x->shape[2], kernel, stride, pad, ceil_mode), OW = sdl__pool_out(x->shape[3], kernel, stride, pad, ceil_mode);
    bool over = (OH - 1) * stride + kernel > x->shape[2] + 2 * pad || (OW - 1) * stride + kernel > x->shape[3] + 2 * pad;
    if (over && op == SDL_OP_AVG_POOL2D && x->device != SDL_CPU) {
        sdl_fail(SDL_ERR_DEVICE, "%s: ceil_mode windows over the edge have no kernel on device %d yet (CPU only)", name, (int)x->device);
        return NULL;
    }
    sdl_node *n = sdl__op_begin(op, sdl_shape4(x->shape[0], x->shape[1], OH, OW), x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.pool.kernel_h = n->attr.pool.kernel_w = kernel;
    n->attr.pool.stride_h = n->attr.pool.stride_w = stride;
    n->attr.pool.pad_h = n->attr.pool.pad_w = pad;
    if (op == SDL_OP_MAX_POOL2D && !sdl__saved(n, (size_t)n->out->numel * sizeof(int32_t))) return NULL;
    return sdl__op_run(n);
}
SDL_API sdl_tensor *sdl_max_pool2d(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("max_pool2d", SDL_OP_MAX_POOL2D, x, kernel, stride, pad, false);
}
SDL_API sdl_tensor *sdl_avg_pool2d(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("avg_pool2d", SDL_OP_AVG_POOL2D, x, kernel, stride, pad, false);
}
SDL_API sdl_tensor *sdl_max_pool2d_ceil(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("max_pool2d", SDL_OP_MAX_POOL2D, x, kernel, stride, pad, true);
}
SDL_API sdl_tensor *sdl_avg_pool2d_ceil(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("avg_pool2d", SDL_OP_AVG_POOL2D, x, kernel, stride, pad, true);
}

/* ---- global average pool: x (N, C, H, W) -> y (N, C);  y = mean over H*W;  dx += dy / (H*W) */
static void sdl__gap_fwd(sdl_node *n) {
    int64_t planes = n->out->numel, hw = planes ? n->in[0]->numel / planes : 0;
    const float *x = sdl_f32(n->in[0]);
    for (int64_t p = 0; p < planes; p++) {
        float s = 0.0f;
        for (int64_t i = 0; i < hw; i++) s += x[p * hw + i];
        sdl_f32(n->out)[p] = s / (float)hw;
    }
}
static void sdl__gap_bwd(sdl_node *n) {
    int64_t planes = n->out->numel, hw = planes ? n->in[0]->numel / planes : 0;
    for (int64_t p = 0; p < planes; p++) {
        float g = n->out->grad[p] / (float)hw;
        for (int64_t i = 0; i < hw; i++) n->in[0]->grad[p * hw + i] += g;
    }
}
SDL_API sdl_tensor *sdl_global_avg_pool(sdl_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[2] * x->shape[3] < 1) return (sdl_tensor *)sdl__shape_error("global_avg_pool", "wants (N, C, H, W) with H*W > 0", x, NULL);
    return sdl__op_run(sdl__op_begin(SDL_OP_GLOBAL_AVG_POOL, sdl_shape2(x->shape[0], x->shape[1]), x, NULL, NULL, NULL));
}

/* >>ops-norm (batch norm, layer norm, dropout, embedding) */

/* ---- batch norm: x (N, C) or (N, C, H, W); gamma, beta (C), or both NULL (no affine).
   Per channel c over its M = N*H*W values: xhat = (x - mean) * rstd, rstd = 1/sqrt(var + eps),
   y = gamma xhat + beta. Training uses the batch mean and biased var, and moves the running
   stats (if given) toward the batch's: running = (1 - m) running + m stat, with the unbiased
   var M/(M-1) var as PyTorch does. Eval uses the running stats and changes nothing.
   dbeta += sum dy;  dgamma += sum dy xhat;  dxhat = gamma dy;
   training: dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))  (mean, var depend on x)
   eval:     dx += rstd dxhat
   saved: mean (C), rstd (C) as forward used them. Work is split by channel. */
static void sdl__bn_dims(const sdl_tensor *x, int64_t *N, int64_t *C, int64_t *S) {
    *N = x->shape[0];
    *C = x->shape[1];
    *S = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}
/* Batch norm's sums, in double: 8 running sums along a row (they vectorise; one chain of
   dependent adds ran at a quarter of the speed), added in a fixed order, rows in order */
static inline double sdl__dsum_row(const float *SDL_RESTRICT x, int64_t n) { /* sum x */
    double acc[8] = {0}, s = 0.0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[j + l];
    for (; j < n; j++) s += x[j];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}
static inline double sdl__dsq_row(const float *SDL_RESTRICT x, int64_t n, double mu) { /* sum (x - mu)^2 */
    double acc[8] = {0}, s = 0.0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) {
            double d = (double)x[j + l] - mu;
            acc[l] += d * d;
        }
    for (; j < n; j++) s += ((double)x[j] - mu) * ((double)x[j] - mu);
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}
/* channel c of x (N, C, S): sum x, sum (x - mu)^2 */
static double sdl__bn_sum(const float *x, int64_t N, int64_t C, int64_t S, int64_t c) {
    double s = 0.0;
    for (int64_t i = 0; i < N; i++) s += sdl__dsum_row(x + (i * C + c) * S, S);
    return s;
}
static double sdl__bn_sq(const float *x, int64_t N, int64_t C, int64_t S, int64_t c, double mu) {
    double v = 0.0;
    for (int64_t i = 0; i < N; i++) v += sdl__dsq_row(x + (i * C + c) * S, S, mu);
    return v;
}
/* sum dy xhat along a row, xhat = (x - m) r */
static double sdl__dxhat_row(const float *SDL_RESTRICT x, const float *SDL_RESTRICT dy, int64_t n, float m, float r) {
    double acc[8] = {0}, s = 0.0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)dy[j + l] * ((x[j + l] - m) * r);
    for (; j < n; j++) s += (double)dy[j] * ((x[j] - m) * r);
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}
/* channel c: sum dy and sum dy xhat */
static void sdl__bn_dsums(const float *x, const float *dy, int64_t N, int64_t C, int64_t S, int64_t c, float m, float r,
                          double *sdy, double *sdyx) {
    *sdy = sdl__bn_sum(dy, N, C, S, c);
    *sdyx = 0.0;
    for (int64_t i = 0; i < N; i++) *sdyx += sdl__dxhat_row(x + (i * C + c) * S, dy + (i * C + c) * S, S, m, r);
}
static void sdl__bn_fwd_range(void *ctx, int64_t c0, int64_t c1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    int64_t M = N * S;
    const float *x = sdl_f32(n->in[0]);
    const float *g = n->nin > 1 ? sdl_f32(n->in[1]) : NULL, *b = n->nin > 2 ? sdl_f32(n->in[2]) : NULL;
    float *y = sdl_f32(n->out), *mean = (float *)n->saved, *rstd = mean + C;
    float *rm = n->attr.norm.running_mean ? sdl_f32(n->attr.norm.running_mean) : NULL;
    float *rv = n->attr.norm.running_var ? sdl_f32(n->attr.norm.running_var) : NULL;
    double m = n->attr.norm.momentum;
    const double *group = (const double *)(rstd + C); /* synced: the group's mean (C), var (C) */
    for (int64_t c = c0; c < c1; c++) {
        double mu, var;
        if (n->attr.norm.sum) {
            mu = group[c];
            var = group[C + c];
        } else if (n->attr.norm.training) {
            mu = sdl__bn_sum(x, N, C, S, c) / (double)M;
            double v = sdl__bn_sq(x, N, C, S, c, mu);
            var = v / (double)M;
            if (rm) rm[c] = (float)((1.0 - m) * rm[c] + m * mu);
            if (rv) rv[c] = (float)((1.0 - m) * rv[c] + m * v / (double)(M - 1));
        } else {
            mu = rm[c];
            var = rv[c];
        }
        float mc = (float)mu, rc = (float)(1.0 / sqrt(var + (double)n->attr.norm.eps));
        mean[c] = mc;
        rstd[c] = rc;
        float gc = g ? g[c] * rc : rc, bc = b ? b[c] : 0.0f;
        for (int64_t i = 0; i < N; i++) {
            const float *xr = x + (i * C + c) * S;
            float *yr = y + (i * C + c) * S;
            for (int64_t j = 0; j < S; j++) yr[j] = gc * (xr[j] - mc) + bc;
        }
    }
}
static void sdl__bn_bwd_range(void *ctx, int64_t c0, int64_t c1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *xt = n->in[0], *gt = n->nin > 1 ? n->in[1] : NULL, *bt = n->nin > 2 ? n->in[2] : NULL;
    int64_t N, C, S;
    sdl__bn_dims(xt, &N, &C, &S);
    int64_t M = N * S;
    const float *x = sdl_f32(xt), *dy = n->out->grad, *mean = (const float *)n->saved, *rstd = mean + C;
    for (int64_t c = c0; c < c1; c++) {
        float mc = mean[c], rc = rstd[c];
        double sdy, sdyx;
        sdl__bn_dsums(x, dy, N, C, S, c, mc, rc, &sdy, &sdyx);
        if (gt && gt->requires_grad) gt->grad[c] += (float)sdyx;
        if (bt && bt->requires_grad) bt->grad[c] += (float)sdy;
        if (!xt->requires_grad) continue;
        float k0 = gt ? sdl_f32(gt)[c] * rc : rc;
        double gdy = sdy, gdyx = sdyx, gm = (double)M; /* synced: the group's sums and count */
        if (n->attr.norm.sum) {
            const double *group = (const double *)(rstd + C);
            gdy = group[2 * C + c], gdyx = group[3 * C + c], gm = group[4 * C];
        }
        float a = n->attr.norm.training ? (float)(gdy / gm) : 0.0f;
        float bb = n->attr.norm.training ? (float)(gdyx / gm) : 0.0f;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < S; j++) {
                int64_t k = (i * C + c) * S + j;
                xt->grad[k] += k0 * (dy[k] - a - (x[k] - mc) * rc * bb);
            }
    }
}
static int64_t sdl__ops_grain(int64_t work_per_item) { /* items per part so a part does ~32k flops */
    return work_per_item > 0 ? 1 + 32768 / work_per_item : 1;
}
/* synced batch norm: saved holds mean, rstd (C floats each), then the group's numbers in
   doubles: forward's mean (C) and var (C), backward's sums of dy and dy xhat (C each: this
   process's, then the group's after the sum), the group's count (1). The passes below fill
   them; the ranges above read them. Sums in double in a fixed order, as the unsynced op's. */
static double *sdl__bn_group(sdl_node *n, int64_t C) { return (double *)((float *)n->saved + 2 * C); }
static void sdl__bn_sum_range(void *ctx, int64_t c0, int64_t c1) { /* group[c] = sum x */
    sdl_node *n = (sdl_node *)ctx;
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    const float *x = sdl_f32(n->in[0]);
    double *group = sdl__bn_group(n, C);
    for (int64_t c = c0; c < c1; c++) group[c] = sdl__bn_sum(x, N, C, S, c);
}
static void sdl__bn_dev_range(void *ctx, int64_t c0, int64_t c1) { /* group[C + c] = sum (x - mean)^2 */
    sdl_node *n = (sdl_node *)ctx;
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    const float *x = sdl_f32(n->in[0]);
    double *group = sdl__bn_group(n, C);
    for (int64_t c = c0; c < c1; c++) group[C + c] = sdl__bn_sq(x, N, C, S, c, group[c]);
}
static void sdl__bn_dsum_range(void *ctx, int64_t c0, int64_t c1) { /* group[2C + c], [3C + c]: sum dy, dy xhat */
    sdl_node *n = (sdl_node *)ctx;
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    const float *x = sdl_f32(n->in[0]), *dy = n->out->grad, *mean = (const float *)n->saved, *rstd = mean + C;
    double *group = sdl__bn_group(n, C);
    for (int64_t c = c0; c < c1; c++) sdl__bn_dsums(x, dy, N, C, S, c, mean[c], rstd[c], &group[2 * C + c], &group[3 * C + c]);
}
/* the group's mean and biased var into group[0, 2C), its count into group[4C], and the
   running stats moved with the unbiased var (the same numbers on every process) */
static void sdl__bn_group_stats(sdl_node *n) {
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    double *group = sdl__bn_group(n, C), m = n->attr.norm.momentum;
    sdl_parallel_for(C, sdl__ops_grain(N * S), sdl__bn_sum_range, n);
    group[C] = (double)(N * S); /* counts beside the sums: one message */
    n->attr.norm.sum(group, C + 1, n->attr.norm.sum_user);
    double gm = group[C];
    group[4 * C] = gm;
    for (int64_t c = 0; c < C; c++) group[c] /= gm;
    sdl_parallel_for(C, sdl__ops_grain(N * S * 2), sdl__bn_dev_range, n);
    n->attr.norm.sum(group + C, C, n->attr.norm.sum_user);
    float *rm = n->attr.norm.running_mean ? sdl_f32(n->attr.norm.running_mean) : NULL;
    float *rv = n->attr.norm.running_var ? sdl_f32(n->attr.norm.running_var) : NULL;
    for (int64_t c = 0; c < C; c++) {
        if (rm) rm[c] = (float)((1.0 - m) * rm[c] + m * group[c]);
        if (rv) rv[c] = (float)((1.0 - m) * rv[c] + m * group[C + c] / (gm - 1.0));
        group[C + c] /= gm;
    }
}
static void sdl__bn_fwd(sdl_node *n) {
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    if (n->attr.norm.sum) sdl__bn_group_stats(n);
    sdl_parallel_for(C, sdl__ops_grain(N * S * 4), sdl__bn_fwd_range, n);
}
static void sdl__bn_bwd(sdl_node *n) {
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    if (n->attr.norm.sum) { /* the group's sums of dy and dy xhat */
        sdl_parallel_for(C, sdl__ops_grain(N * S * 3), sdl__bn_dsum_range, n);
        n->attr.norm.sum(sdl__bn_group(n, C) + 2 * C, 2 * C, n->attr.norm.sum_user);
    }
    sdl_parallel_for(C, sdl__ops_grain(N * S * 6), sdl__bn_bwd_range, n);
}

/* a per-feature vector: NULL, or f32 (C) on x's device */
static bool sdl__norm_vec_ok(const sdl_tensor *v, int64_t C, const sdl_tensor *x) {
    return !v || (v->ndim == 1 && v->shape[0] == C && v->dtype == SDL_F32 && v->device == x->device);
}

static sdl_tensor *sdl__batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps,
                                   void (*sum)(double *v, int64_t n, void *user), void *user) {
    if (!x) return NULL;
    if (x->ndim != 2 && x->ndim != 4)
        return (sdl_tensor *)sdl__shape_error("batch_norm", "wants x (N, C) or (N, C, H, W)", x, NULL);
    int64_t N, C, S;
    sdl__bn_dims(x, &N, &C, &S);
    if (!gamma != !beta) { sdl_fail(SDL_ERR_ARG, "batch_norm: give both gamma and beta, or neither"); return NULL; }
    if (!sdl__norm_vec_ok(gamma, C, x) || !sdl__norm_vec_ok(beta, C, x))
        return (sdl_tensor *)sdl__shape_error("batch_norm", "gamma and beta must be (C) for x", gamma && !sdl__norm_vec_ok(gamma, C, x) ? gamma : beta, x);
    if (!sdl__norm_vec_ok(running_mean, C, x) || !sdl__norm_vec_ok(running_var, C, x))
        return (sdl_tensor *)sdl__shape_error("batch_norm", "running stats must be (C) for x", running_mean && !sdl__norm_vec_ok(running_mean, C, x) ? running_mean : running_var, x);
    if (!running_mean != !running_var) { sdl_fail(SDL_ERR_ARG, "batch_norm: give both running_mean and running_var, or neither"); return NULL; }
    if (!training && !running_mean) { sdl_fail(SDL_ERR_ARG, "batch_norm: eval mode needs running_mean and running_var"); return NULL; }
    if (training && N * S < 2)
        return (sdl_tensor *)sdl__shape_error("batch_norm", "training needs more than one value per channel", x, NULL);
    if (!(eps >= 0.0f)) { sdl_fail(SDL_ERR_ARG, "batch_norm: eps = %g must be >= 0", (double)eps); return NULL; }
    sdl_node *n = sdl__op_begin(SDL_OP_BATCH_NORM, sdl_tensor_shape(x), x, gamma, beta, NULL);
    if (!n) return NULL;
    n->attr.norm.eps = eps;
    n->attr.norm.momentum = momentum;
    n->attr.norm.training = training;
    n->attr.norm.running_mean = running_mean;
    n->attr.norm.running_var = running_var;
    n->attr.norm.sum = sum;
    n->attr.norm.sum_user = user;
    size_t group = sum ? (4 * (size_t)C + 1) * sizeof(double) : 0;
    return sdl__saved(n, 2 * (size_t)C * sizeof(float) + group) ? sdl__op_run(n) : NULL;
}
SDL_API sdl_tensor *sdl_batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps) {
    return sdl__batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps, NULL, NULL);
}
SDL_API sdl_tensor *sdl_batch_norm_synced(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                          sdl_tensor *running_var, float momentum, float eps,
                                          void (*sum)(double *v, int64_t n, void *user), void *user) {
    if (!sum) { sdl_fail(SDL_ERR_ARG, "batch_norm_synced: NULL sum function"); return NULL; }
    if (x && x->device != SDL_CPU && x->device != SDL_DEVICE_DEFAULT) { sdl_fail(SDL_ERR_DEVICE, "batch_norm_synced: x is on a GPU; synced batch norm runs on the CPU"); return NULL; }
    return sdl__batch_norm(x, gamma, beta, running_mean, running_var, true, momentum, eps, sum, user);
}

/* ---- layer norm over the last dim: x (R, D) with R = all leading dims; gamma, beta (D) or
   both NULL. xhat = (x - mean_row) * rstd_row, y = gamma xhat + beta (biased var, like PyTorch).
   dbeta += sum_rows dy;  dgamma += sum_rows dy xhat;  dxhat = gamma dy;
   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
   saved: mean (R), rstd (R). Rows are split among threads; dgamma, dbeta by column. */
static void sdl__ln_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *xt = n->in[0];
    int64_t D = xt->shape[xt->ndim - 1], R = D ? xt->numel / D : 0;
    const float *g = n->nin > 1 ? sdl_f32(n->in[1]) : NULL, *b = n->nin > 2 ? sdl_f32(n->in[2]) : NULL;
    float *mean = (float *)n->saved, *rstd = mean + R;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(xt) + r * D;
        float *y = sdl_f32(n->out) + r * D;
        double s = 0.0, v = 0.0;
        for (int64_t d = 0; d < D; d++) s += x[d];
        double mu = s / (double)D;
        for (int64_t d = 0; d < D; d++) v += (x[d] - mu) * (x[d] - mu);
        float mc = (float)mu, rc = (float)(1.0 / sqrt(v / (double)D + (double)n->attr.norm.eps));
        mean[r] = mc;
        rstd[r] = rc;
        for (int64_t d = 0; d < D; d++) {
            float xh = (x[d] - mc) * rc;
            y[d] = g ? g[d] * xh + b[d] : xh;
        }
    }
}
static void sdl__ln_bwd_rows(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *xt = n->in[0];
    int64_t D = xt->shape[xt->ndim - 1], R = xt->numel / D;
    const float *g = n->nin > 1 ? sdl_f32(n->in[1]) : NULL;
    const float *mean = (const float *)n->saved, *rstd = mean + R;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(xt) + r * D, *dy = n->out->grad + r * D;
        float *dx = xt->grad + r * D, mc = mean[r], rc = rstd[r];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t d = 0; d < D; d++) {
            float dxh = g ? g[d] * dy[d] : dy[d];
            s1 += dxh;
            s2 += (double)dxh * ((x[d] - mc) * rc);
        }
        float a = (float)(s1 / (double)D), bb = (float)(s2 / (double)D);
        for (int64_t d = 0; d < D; d++) {
            float dxh = g ? g[d] * dy[d] : dy[d];
            dx[d] += rc * (dxh - a - (x[d] - mc) * rc * bb);
        }
    }
}
/* columns [d0, d1) in blocks of 64, rows in order inside: each column's sum runs over r = 0..R-1
   whatever the split, and the reads go along rows */
static void sdl__ln_bwd_cols(void *ctx, int64_t d0, int64_t d1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *xt = n->in[0], *gt = n->in[1], *bt = n->in[2];
    int64_t D = xt->shape[xt->ndim - 1], R = xt->numel / D;
    const float *mean = (const float *)n->saved, *rstd = mean + R;
    for (int64_t c0 = d0; c0 < d1; c0 += 64) {
        int64_t w = d1 - c0 < 64 ? d1 - c0 : 64;
        double sg[64] = {0}, sb[64] = {0};
        for (int64_t r = 0; r < R; r++) {
            const float *x = sdl_f32(xt) + r * D + c0, *dy = n->out->grad + r * D + c0;
            float mr = mean[r], rr = rstd[r];
            for (int64_t d = 0; d < w; d++) {
                sg[d] += (double)dy[d] * ((x[d] - mr) * rr);
                sb[d] += dy[d];
            }
        }
        for (int64_t d = 0; d < w; d++) {
            if (gt->requires_grad) gt->grad[c0 + d] += (float)sg[d];
            if (bt->requires_grad) bt->grad[c0 + d] += (float)sb[d];
        }
    }
}
static void sdl__ln_fwd(sdl_node *n) {
    int64_t D = n->in[0]->shape[n->in[0]->ndim - 1];
    if (D > 0) sdl_parallel_for(n->in[0]->numel / D, sdl__ops_grain(D * 6), sdl__ln_fwd_range, n);
}
static void sdl__ln_bwd(sdl_node *n) {
    int64_t D = n->in[0]->shape[n->in[0]->ndim - 1], R = D ? n->in[0]->numel / D : 0;
    if (D == 0) return;
    if (n->in[0]->requires_grad) sdl_parallel_for(R, sdl__ops_grain(D * 8), sdl__ln_bwd_rows, n);
    if (n->nin > 1 && (n->in[1]->requires_grad || n->in[2]->requires_grad))
        sdl_parallel_for(D, sdl__ops_grain(R * 4), sdl__ln_bwd_cols, n);
}
SDL_API sdl_tensor *sdl_layer_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, float eps) {
    if (!x) return NULL;
    if (x->ndim < 1) return (sdl_tensor *)sdl__shape_error("layer_norm", "wants x (..., D)", x, NULL);
    int64_t D = x->shape[x->ndim - 1];
    if (!gamma != !beta) { sdl_fail(SDL_ERR_ARG, "layer_norm: give both gamma and beta, or neither"); return NULL; }
    if (!sdl__norm_vec_ok(gamma, D, x) || !sdl__norm_vec_ok(beta, D, x))
        return (sdl_tensor *)sdl__shape_error("layer_norm", "gamma and beta must be (D) for x (..., D)", gamma && !sdl__norm_vec_ok(gamma, D, x) ? gamma : beta, x);
    if (!(eps >= 0.0f)) { sdl_fail(SDL_ERR_ARG, "layer_norm: eps = %g must be >= 0", (double)eps); return NULL; }
    sdl_node *n = sdl__op_begin(SDL_OP_LAYER_NORM, sdl_tensor_shape(x), x, gamma, beta, NULL);
    if (!n) return NULL;
    n->attr.norm.eps = eps;
    int64_t R = D ? x->numel / D : 0;
    return sdl__saved(n, 2 * (size_t)R * sizeof(float)) ? sdl__op_run(n) : NULL;
}

/* ---- group norm (nn.GroupNorm): x (N, C, ...) with S = the product of the dims after C;
   the C channels in G groups of C/G, so group (n, g) is one contiguous row of M = (C/G) S
   floats. gamma, beta (C) or both NULL. Per row, as layer norm does (biased var):
   xhat = (x - mean) rstd, y = gamma_c xhat + beta_c with c the element's channel.
   dbeta_c += sum dy;  dgamma_c += sum dy xhat (over n and S);  dxhat = gamma_c dy;
   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).  saved: mean, rstd (N G). */
typedef struct sdl__gn_dims { int64_t N, C, G, S, M; } sdl__gn_dims;
static sdl__gn_dims sdl__gn_dims_of(const sdl_node *n) {
    sdl__gn_dims d;
    const sdl_tensor *x = n->in[0];
    d.N = x->shape[0]; d.C = x->shape[1]; d.G = n->attr.gn.groups;
    d.S = d.N > 0 && d.C > 0 ? x->numel / (d.N * d.C) : 0;
    d.M = d.C / d.G * d.S;
    return d;
}
static void sdl__gn_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__gn_dims d = sdl__gn_dims_of(n);
    const float *g = n->nin > 1 ? sdl_f32(n->in[1]) : NULL, *b = n->nin > 2 ? sdl_f32(n->in[2]) : NULL;
    float *mean = (float *)n->saved, *rstd = mean + d.N * d.G;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(n->in[0]) + r * d.M;
        float *y = sdl_f32(n->out) + r * d.M;
        double s = 0.0, v = 0.0;
        for (int64_t i = 0; i < d.M; i++) s += x[i];
        double mu = s / (double)d.M;
        for (int64_t i = 0; i < d.M; i++) v += (x[i] - mu) * (x[i] - mu);
        float mc = (float)mu, rc = (float)(1.0 / sqrt(v / (double)d.M + (double)n->attr.gn.eps));
        mean[r] = mc;
        rstd[r] = rc;
        int64_t c0 = r % d.G * (d.C / d.G);
        for (int64_t i = 0; i < d.M; i++) {
            float xh = (x[i] - mc) * rc;
            y[i] = g ? g[c0 + i / d.S] * xh + b[c0 + i / d.S] : xh;
        }
    }
}
static void sdl__gn_bwd_rows(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__gn_dims d = sdl__gn_dims_of(n);
    const float *g = n->nin > 1 ? sdl_f32(n->in[1]) : NULL;
    const float *mean = (const float *)n->saved, *rstd = mean + d.N * d.G;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(n->in[0]) + r * d.M, *dy = n->out->grad + r * d.M;
        float *dx = n->in[0]->grad + r * d.M, mc = mean[r], rc = rstd[r];
        int64_t c0 = r % d.G * (d.C / d.G);
        double s1 = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < d.M; i++) {
            float dxh = g ? g[c0 + i / d.S] * dy[i] : dy[i];
            s1 += dxh;
            s2 += (double)dxh * ((x[i] - mc) * rc);
        }
        float a = (float)(s1 / (double)d.M), bb = (float)(s2 / (double)d.M);
        for (int64_t i = 0; i < d.M; i++) {
            float dxh = g ? g[c0 + i / d.S] * dy[i] : dy[i];
            dx[i] += rc * (dxh - a - (x[i] - mc) * rc * bb);
        }
    }
}
/* channels [c0, c1), each summed over n then s in order whatever the split */
static void sdl__gn_bwd_affine(void *ctx, int64_t c0, int64_t c1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__gn_dims d = sdl__gn_dims_of(n);
    sdl_tensor *gt = n->in[1], *bt = n->in[2];
    const float *mean = (const float *)n->saved, *rstd = mean + d.N * d.G;
    for (int64_t c = c0; c < c1; c++) {
        double sg = 0.0, sb = 0.0;
        for (int64_t b = 0; b < d.N; b++) {
            int64_t r = b * d.G + c / (d.C / d.G);
            const float *x = sdl_f32(n->in[0]) + (b * d.C + c) * d.S, *dy = n->out->grad + (b * d.C + c) * d.S;
            for (int64_t s = 0; s < d.S; s++) {
                sg += (double)dy[s] * ((x[s] - mean[r]) * rstd[r]);
                sb += dy[s];
            }
        }
        if (gt->requires_grad) gt->grad[c] += (float)sg;
        if (bt->requires_grad) bt->grad[c] += (float)sb;
    }
}
static void sdl__gn_fwd(sdl_node *n) {
    sdl__gn_dims d = sdl__gn_dims_of(n);
    if (d.M > 0) sdl_parallel_for(d.N * d.G, sdl__ops_grain(d.M * 6), sdl__gn_fwd_range, n);
}
static void sdl__gn_bwd(sdl_node *n) {
    sdl__gn_dims d = sdl__gn_dims_of(n);
    if (d.M == 0) return;
    if (n->in[0]->requires_grad) sdl_parallel_for(d.N * d.G, sdl__ops_grain(d.M * 8), sdl__gn_bwd_rows, n);
    if (n->nin > 1 && (n->in[1]->requires_grad || n->in[2]->requires_grad))
        sdl_parallel_for(d.C, sdl__ops_grain(d.N * d.S * 4), sdl__gn_bwd_affine, n);
}
SDL_API sdl_tensor *sdl_group_norm(sdl_tensor *x, int groups, sdl_tensor *gamma, sdl_tensor *beta, float eps) {
    if (!x) return NULL;
    if (x->ndim < 2 || groups < 1 || x->shape[1] % groups != 0) {
        char s[96];
        sdl_fail(SDL_ERR_SHAPE, "group_norm: x %s wants (N, C, ...) with C divisible by groups = %d", sdl_shape_str(sdl_tensor_shape(x), s, sizeof s), groups);
        return NULL;
    }
    int64_t C = x->shape[1];
    if (!gamma != !beta) { sdl_fail(SDL_ERR_ARG, "group_norm: give both gamma and beta, or neither"); return NULL; }
    if (!sdl__norm_vec_ok(gamma, C, x) || !sdl__norm_vec_ok(beta, C, x))
        return (sdl_tensor *)sdl__shape_error("group_norm", "gamma and beta must be (C) for x (N, C, ...)", gamma && !sdl__norm_vec_ok(gamma, C, x) ? gamma : beta, x);
    if (!(eps >= 0.0f)) { sdl_fail(SDL_ERR_ARG, "group_norm: eps = %g must be >= 0", (double)eps); return NULL; }
    if (x->device != SDL_CPU) { sdl_fail(SDL_ERR_DEVICE, "group_norm: no kernel on device %d yet (CPU only)", (int)x->device); return NULL; }
    sdl_node *n = sdl__op_begin(SDL_OP_GROUP_NORM, sdl_tensor_shape(x), x, gamma, beta, NULL);
    if (!n) return NULL;
    n->attr.gn.eps = eps;
    n->attr.gn.groups = groups;
    return sdl__saved(n, 2 * (size_t)(x->shape[0] * groups) * sizeof(float)) ? sdl__op_run(n) : NULL;
}

/* ---- dropout (inverted): keep_i = u_i >= p with u_i = hash(seed, stream, i) uniform in [0, 1);
   y = keep ? x / (1 - p) : 0;  dx += keep ? dy / (1 - p) : 0. The mask is a pure function of
   (seed, stream, i): backward recomputes it, and it is the same for any thread count. Each
   call takes a fresh stream from the global RNG, so a seed fixes every mask of a run. */
static void sdl__dropout_range(void *ctx, int64_t i0, int64_t i1, bool bwd) {
    sdl_node *n = (sdl_node *)ctx;
    float p = n->attr.dropout.p, scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; /* p = 1 keeps nothing */
    uint64_t key = sdl__hash_key(n->attr.dropout.seed, n->attr.dropout.stream);
    const float *x = sdl_f32(n->in[0]), *dy = n->out->grad;
    float *y = sdl_f32(n->out), *dx = n->in[0]->grad;
    for (int64_t i = i0; i < i1; i++) {
        if (bwd) dx[i] += sdl__dropout_elem(key, (uint64_t)i, dy[i], p, scale);
        else y[i] = sdl__dropout_elem(key, (uint64_t)i, x[i], p, scale);
    }
}
static void sdl__dropout_fwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__dropout_range(ctx, i0, i1, false); }
static void sdl__dropout_bwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__dropout_range(ctx, i0, i1, true); }
static void sdl__dropout_fwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, 2.0, sdl__dropout_fwd_range, n); } /* a hash an element */
static void sdl__dropout_bwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, 2.0, sdl__dropout_bwd_range, n); }
/* eval mode or p = 0 returns x itself, as PyTorch does */
SDL_API sdl_tensor *sdl_dropout(sdl_tensor *x, float p, bool training) {
    if (!x) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) { sdl_fail(SDL_ERR_ARG, "dropout: p = %g is outside [0, 1]", (double)p); return NULL; }
    if (!training || p == 0.0f) return x;
    sdl_node *n = sdl__op_begin(SDL_OP_DROPOUT, sdl_tensor_shape(x), x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.dropout.p = p;
    n->attr.dropout.seed = sdl_rng_seed();
    n->attr.dropout.stream = ((uint64_t)1 << 63) | sdl__rng_take(1); /* apart from streams 0-2 of the draws */
    return sdl__op_run(n);
}

/* ---- embedding: ids i32 (...) with R ids, table (V, D) -> y (..., D): y_r = table[ids_r]
   dtable[ids_r] += dy_r (rows that repeat add up; split by column, so no two threads share
   a float and the sum order is fixed) */
static void sdl__emb_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t D = n->in[1]->shape[1];
    const int32_t *ids = sdl_i32(n->in[0]);
    for (int64_t r = r0; r < r1; r++)
        memcpy(sdl_f32(n->out) + r * D, sdl_f32(n->in[1]) + (int64_t)ids[r] * D, (size_t)D * sizeof(float));
}
static void sdl__emb_bwd_range(void *ctx, int64_t d0, int64_t d1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t D = n->in[1]->shape[1], R = n->in[0]->numel, pad = n->attr.emb.padding_idx;
    const int32_t *ids = sdl_i32(n->in[0]);
    const float *dy = n->out->grad;
    float *dt = n->in[1]->grad;
    for (int64_t r = 0; r < R; r++) {
        if (ids[r] == pad) continue; /* padding_idx: no gradient */
        float *row = dt + (int64_t)ids[r] * D;
        for (int64_t d = d0; d < d1; d++) row[d] += dy[r * D + d];
    }
}
static void sdl__emb_fwd(sdl_node *n) { sdl_parallel_for(n->in[0]->numel, sdl__ops_grain(n->in[1]->shape[1]), sdl__emb_fwd_range, n); }
static void sdl__emb_bwd(sdl_node *n) {
    if (n->in[1]->requires_grad) sdl_parallel_for(n->in[1]->shape[1], sdl__ops_grain(n->in[0]->numel), sdl__emb_bwd_range, n);
}
static sdl_tensor *sdl__embedding(sdl_tensor *ids, sdl_tensor *table, int64_t padding_idx) {
    if (sdl__any_null(ids, table)) return NULL;
    if (ids->dtype != SDL_I32 || table->ndim != 2 || ids->ndim >= SDL_MAX_DIMS)
        return (sdl_tensor *)sdl__shape_error("embedding", "wants i32 ids (...) and a table (V, D)", ids, table);
    if (ids->device == SDL_CPU) {
        const int32_t *id = sdl_i32(ids);
        for (int64_t i = 0; i < ids->numel; i++)
            if (id[i] < 0 || id[i] >= table->shape[0]) {
                sdl_fail(SDL_ERR_ARG, "embedding: id %d at position %lld is outside [0, %lld)", id[i], (long long)i, (long long)table->shape[0]);
                return NULL;
            }
    }
    sdl_shape s = sdl_tensor_shape(ids);
    s.d[s.ndim++] = table->shape[1];
    sdl_node *n = sdl__op_begin(SDL_OP_EMBEDDING, s, ids, table, NULL, NULL);
    if (!n) return NULL;
    n->attr.emb.padding_idx = padding_idx;
    return sdl__op_run(n);
}
SDL_API sdl_tensor *sdl_embedding(sdl_tensor *ids, sdl_tensor *table) { return sdl__embedding(ids, table, -1); }
SDL_API sdl_tensor *sdl_embedding_pad(sdl_tensor *ids, sdl_tensor *table, int64_t padding_idx) {
    if (sdl__any_null(ids, table)) return NULL;
    int64_t V = table->ndim == 2 ? table->shape[0] : 0;
    if (padding_idx < -V || padding_idx >= V) {
        sdl_fail(SDL_ERR_ARG, "embedding_pad: padding_idx %lld is outside [-%lld, %lld)", (long long)padding_idx, (long long)V, (long long)V);
        return NULL;
    }
    if (table->device != SDL_CPU) {
        sdl_fail(SDL_ERR_DEVICE, "embedding_pad: padding_idx has no kernel on device %d yet (CPU only)", (int)table->device);
        return NULL;
    }
    return sdl__embedding(ids, table, padding_idx < 0 ? V + padding_idx : padding_idx);
}

/* >>ops-act (leaky_relu, gelu, tanh, sigmoid, silu, softmax, log_softmax, scale) */

/* ---- elementwise unary ops (SDL_UNARY_OPS): y = f(x);  dx += f'(x) dy, each formula in
   >>formulas. One loop pair per op, generated from its row. The loops take restrict
   pointers (an op's output and gradients are buffers of their own): gcc then compiles each
   loop once, not twice behind a run-time overlap check (gcc honours restrict on parameters). */
/* one-thread nanoseconds an element, for the split over the pool: the piecewise-linear ops
   are memory-bound, gelu_tanh's vectorised exp ~2 ns, the others call exp/tanh/erfc/sin/pow */
static double sdl__unary_ns(sdl_op op) {
    return op == SDL_OP_LEAKY_RELU || op == SDL_OP_SCALE || op == SDL_OP_NEG || op == SDL_OP_ABS || op == SDL_OP_CLAMP ||
                   op == SDL_OP_HARDSWISH || op == SDL_OP_SQRT || op == SDL_OP_RSQRT
               ? SDL__EW_NS
           : op == SDL_OP_GELU_TANH ? 2.0
                                    : 10.0;
}
#define SDL__UNARY_CPU(X_, NAME, name) \
    static void sdl__##name##_fwd_loop(float *SDL_RESTRICT y, const float *SDL_RESTRICT x, int64_t n, float a, float b) { \
        for (int64_t i = 0; i < n; i++) y[i] = sdl__f_##name(x[i], a, b); \
    } \
    static void sdl__##name##_bwd_loop(float *SDL_RESTRICT dx, const float *SDL_RESTRICT x, const float *SDL_RESTRICT y, \
                                       const float *SDL_RESTRICT dy, int64_t n, float a, float b) { \
        for (int64_t i = 0; i < n; i++) dx[i] += sdl__df_##name(x[i], y[i], dy[i], a, b); \
    } \
    static void sdl__##name##_fwd_range(void *ctx, int64_t i0, int64_t i1) { \
        sdl_node *n = (sdl_node *)ctx; \
        sdl__##name##_fwd_loop(sdl_f32(n->out) + i0, sdl_f32(n->in[0]) + i0, i1 - i0, n->attr.scalar.alpha, n->attr.scalar.beta); \
    } \
    static void sdl__##name##_bwd_range(void *ctx, int64_t i0, int64_t i1) { \
        sdl_node *n = (sdl_node *)ctx; \
        sdl__##name##_bwd_loop(n->in[0]->grad + i0, sdl_f32(n->in[0]) + i0, sdl_f32(n->out) + i0, n->out->grad + i0, i1 - i0, \
                               n->attr.scalar.alpha, n->attr.scalar.beta); \
    } \
    static void sdl__##name##_fwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, sdl__unary_ns(n->op), sdl__##name##_fwd_range, n); } \
    static void sdl__##name##_bwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, sdl__unary_ns(n->op), sdl__##name##_bwd_range, n); }
SDL_UNARY_OPS(SDL__UNARY_CPU, _)
#undef SDL__UNARY_CPU

static sdl_tensor *sdl__unary(sdl_op op, sdl_tensor *x, float a, float b) {
    if (!x) return NULL;
    sdl_node *n = sdl__op_begin(op, sdl_tensor_shape(x), x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.scalar.alpha = a;
    n->attr.scalar.beta = b;
    return sdl__op_run(n);
}
SDL_API sdl_tensor *sdl_leaky_relu(sdl_tensor *x, float slope) { return sdl__unary(SDL_OP_LEAKY_RELU, x, slope, 0.0f); }
SDL_API sdl_tensor *sdl_gelu(sdl_tensor *x) { return sdl__unary(SDL_OP_GELU, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_gelu_tanh(sdl_tensor *x) { return sdl__unary(SDL_OP_GELU_TANH, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_tanh(sdl_tensor *x) { return sdl__unary(SDL_OP_TANH, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_sigmoid(sdl_tensor *x) { return sdl__unary(SDL_OP_SIGMOID, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_silu(sdl_tensor *x) { return sdl__unary(SDL_OP_SILU, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_scale(sdl_tensor *x, float s) { return sdl__unary(SDL_OP_SCALE, x, s, 0.0f); }
SDL_API sdl_tensor *sdl_neg(sdl_tensor *x) { return sdl__unary(SDL_OP_NEG, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_exp(sdl_tensor *x) { return sdl__unary(SDL_OP_EXP, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_ln(sdl_tensor *x) { return sdl__unary(SDL_OP_LOG, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_sqrt(sdl_tensor *x) { return sdl__unary(SDL_OP_SQRT, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_rsqrt(sdl_tensor *x) { return sdl__unary(SDL_OP_RSQRT, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_abs(sdl_tensor *x) { return sdl__unary(SDL_OP_ABS, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_pow(sdl_tensor *x, float exponent) { return sdl__unary(SDL_OP_POW, x, exponent, 0.0f); }
SDL_API sdl_tensor *sdl_clamp(sdl_tensor *x, float lo, float hi) {
    if (x && !(lo <= hi)) { sdl_fail(SDL_ERR_ARG, "clamp: lo %g > hi %g (or NaN)", (double)lo, (double)hi); return NULL; }
    return sdl__unary(SDL_OP_CLAMP, x, lo, hi);
}
SDL_API sdl_tensor *sdl_sin(sdl_tensor *x) { return sdl__unary(SDL_OP_SIN, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_cos(sdl_tensor *x) { return sdl__unary(SDL_OP_COS, x, 0.0f, 0.0f); }
SDL_API sdl_tensor *sdl_hardswish(sdl_tensor *x) { return sdl__unary(SDL_OP_HARDSWISH, x, 0.0f, 0.0f); }

/* ---- softmax / log_softmax over the last dim, row by row, max subtracted first:
   softmax:      y = e^(x - max) / sum e^(x - max);   dx += y (dy - sum(dy y))
   log_softmax:  y = x - max - log sum e^(x - max);   dx += dy - e^y sum(dy) */
static void sdl__softmax_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t D = n->out->shape[n->out->ndim - 1];
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(n->in[0]) + r * D;
        float *y = sdl_f32(n->out) + r * D, mx = x[0], s = 0.0f;
        for (int64_t d = 1; d < D; d++) mx = x[d] > mx ? x[d] : mx;
        for (int64_t d = 0; d < D; d++) { y[d] = expf(x[d] - mx); s += y[d]; }
        if (n->op == SDL_OP_SOFTMAX) {
            float inv = 1.0f / s;
            for (int64_t d = 0; d < D; d++) y[d] *= inv;
        } else {
            float lse = mx + logf(s);
            for (int64_t d = 0; d < D; d++) y[d] = x[d] - lse;
        }
    }
}
static void sdl__softmax_bwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t D = n->out->shape[n->out->ndim - 1];
    for (int64_t r = r0; r < r1; r++) {
        const float *y = sdl_f32(n->out) + r * D, *dy = n->out->grad + r * D;
        float *dx = n->in[0]->grad + r * D, s = 0.0f;
        if (n->op == SDL_OP_SOFTMAX) {
            for (int64_t d = 0; d < D; d++) s += dy[d] * y[d];
            for (int64_t d = 0; d < D; d++) dx[d] += y[d] * (dy[d] - s);
        } else {
            for (int64_t d = 0; d < D; d++) s += dy[d];
            for (int64_t d = 0; d < D; d++) dx[d] += dy[d] - expf(y[d]) * s;
        }
    }
}
static void sdl__softmax_fwd(sdl_node *n) {
    int64_t D = n->out->shape[n->out->ndim - 1];
    if (D > 0) sdl_parallel_for(n->out->numel / D, sdl__ops_grain(D * 8), sdl__softmax_fwd_range, n);
}
static void sdl__softmax_bwd(sdl_node *n) {
    int64_t D = n->out->shape[n->out->ndim - 1];
    if (D > 0) sdl_parallel_for(n->out->numel / D, sdl__ops_grain(D * 4), sdl__softmax_bwd_range, n);
}
static sdl_tensor *sdl__softmax(sdl_op op, const char *name, sdl_tensor *x) {
    if (!x) return NULL;
    if (x->ndim < 1) return (sdl_tensor *)sdl__shape_error(name, "wants x (..., D)", x, NULL);
    return sdl__op_run(sdl__op_begin(op, sdl_tensor_shape(x), x, NULL, NULL, NULL));
}
SDL_API sdl_tensor *sdl_softmax(sdl_tensor *x) { return sdl__softmax(SDL_OP_SOFTMAX, "softmax", x); }
SDL_API sdl_tensor *sdl_log_softmax(sdl_tensor *x) { return sdl__softmax(SDL_OP_LOG_SOFTMAX, "log_softmax", x); }

/* >>ops-shape (concat, transpose, attention) */

/* ---- concat along dim: a (..., Da, ...), b (..., Db, ...) -> y (..., Da + Db, ...)
   Seen as rows over the dims before `dim`: y_row = [a_row, b_row]; backward splits dy. */
static void sdl__concat_sizes(const sdl_node *n, int64_t *outer, int64_t *la, int64_t *lb) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int dim = n->attr.axis.dim;
    int64_t inner = 1;
    *outer = 1;
    for (int i = 0; i < dim; i++) *outer *= a->shape[i];
    for (int i = dim + 1; i < a->ndim; i++) inner *= a->shape[i];
    *la = a->shape[dim] * inner;
    *lb = b->shape[dim] * inner;
}
static void sdl__concat_range(void *ctx, int64_t o0, int64_t o1, bool bwd) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *a = n->in[0], *b = n->in[1];
    int64_t outer, la, lb;
    sdl__concat_sizes(n, &outer, &la, &lb);
    for (int64_t o = o0; o < o1; o++) {
        float *y = sdl_f32(n->out) + o * (la + lb);
        if (!bwd) {
            memcpy(y, sdl_f32(a) + o * la, (size_t)la * sizeof(float));
            memcpy(y + la, sdl_f32(b) + o * lb, (size_t)lb * sizeof(float));
            continue;
        }
        const float *dy = n->out->grad + o * (la + lb);
        if (a->requires_grad) for (int64_t i = 0; i < la; i++) a->grad[o * la + i] += dy[i];
        if (b->requires_grad) for (int64_t i = 0; i < lb; i++) b->grad[o * lb + i] += dy[la + i];
    }
}
static void sdl__concat_fwd_range(void *ctx, int64_t o0, int64_t o1) { sdl__concat_range(ctx, o0, o1, false); }
static void sdl__concat_bwd_range(void *ctx, int64_t o0, int64_t o1) { sdl__concat_range(ctx, o0, o1, true); }
static void sdl__concat_fwd(sdl_node *n) {
    int64_t outer, la, lb;
    sdl__concat_sizes(n, &outer, &la, &lb);
    sdl_parallel_for(outer, sdl__ops_grain(la + lb), sdl__concat_fwd_range, n);
}
static void sdl__concat_bwd(sdl_node *n) {
    int64_t outer, la, lb;
    sdl__concat_sizes(n, &outer, &la, &lb);
    sdl_parallel_for(outer, sdl__ops_grain(la + lb), sdl__concat_bwd_range, n);
}
SDL_API sdl_tensor *sdl_concat(sdl_tensor *a, sdl_tensor *b, int dim) {
    if (sdl__any_null(a, b)) return NULL;
    int d = dim < 0 ? dim + a->ndim : dim;
    bool ok = a->ndim == b->ndim && d >= 0 && d < a->ndim;
    for (int i = 0; ok && i < a->ndim; i++) ok = i == d || a->shape[i] == b->shape[i];
    if (!ok) {
        char what[80];
        snprintf(what, sizeof what, "shapes must match in every dim but dim %d", dim);
        return (sdl_tensor *)sdl__shape_error("concat", what, a, b);
    }
    sdl_shape s = sdl_tensor_shape(a);
    s.d[d] += b->shape[d];
    sdl_node *n = sdl__op_begin(SDL_OP_CONCAT, s, a, b, NULL, NULL);
    if (!n) return NULL;
    n->attr.axis.dim = d;
    return sdl__op_run(n);
}

/* ---- transpose (a copy): x seen as (outer, A, mid, B, inner) with A = dim0, B = dim1
   -> y (outer, B, mid, A, inner), y[o, b, m, a, :] = x[o, a, m, b, :];  dx is dy moved back */
typedef struct sdl__tr { int64_t outer, A, mid, B, inner; } sdl__tr;
static sdl__tr sdl__tr_dims(const sdl_node *n) {
    const sdl_tensor *x = n->in[0];
    int d0 = n->attr.axis.dim, d1 = n->attr.axis.dim1;
    sdl__tr t;
    t.outer = t.mid = t.inner = 1;
    t.A = x->shape[d0];
    t.B = d0 == d1 ? 1 : x->shape[d1]; /* the same dim twice: a plain copy */
    for (int i = 0; i < x->ndim; i++) {
        if (i < d0) t.outer *= x->shape[i];
        else if (i > d0 && i < d1) t.mid *= x->shape[i];
        else if (i > d1) t.inner *= x->shape[i];
    }
    return t;
}
/* row r of the destination (outer, P, mid, Q) copies from row (o, q, m, p) of the source */
static void sdl__tr_range(void *ctx, int64_t r0, int64_t r1, bool bwd) {
    sdl_node *n = (sdl_node *)ctx;
    sdl__tr t = sdl__tr_dims(n);
    int64_t P = bwd ? t.A : t.B, Q = bwd ? t.B : t.A, in_ = t.inner;
    const float *src = bwd ? n->out->grad : sdl_f32(n->in[0]);
    float *dst = bwd ? n->in[0]->grad : sdl_f32(n->out);
    for (int64_t r = r0; r < r1; r++) {
        int64_t q = r % Q, m = (r / Q) % t.mid, p = (r / (Q * t.mid)) % P, o = r / (Q * t.mid * P);
        const float *s = src + (((o * Q + q) * t.mid + m) * P + p) * in_;
        float *d = dst + r * in_;
        if (bwd) for (int64_t i = 0; i < in_; i++) d[i] += s[i];
        else memcpy(d, s, (size_t)in_ * sizeof(float));
    }
}
static void sdl__tr_fwd_range(void *ctx, int64_t r0, int64_t r1) { sdl__tr_range(ctx, r0, r1, false); }
static void sdl__tr_bwd_range(void *ctx, int64_t r0, int64_t r1) { sdl__tr_range(ctx, r0, r1, true); }
static void sdl__transpose_fwd(sdl_node *n) {
    sdl__tr t = sdl__tr_dims(n);
    if (t.inner > 0) sdl_parallel_for(n->out->numel / t.inner, sdl__ops_grain(t.inner), sdl__tr_fwd_range, n);
}
static void sdl__transpose_bwd(sdl_node *n) {
    sdl__tr t = sdl__tr_dims(n);
    if (t.inner > 0) sdl_parallel_for(n->out->numel / t.inner, sdl__ops_grain(t.inner), sdl__tr_bwd_range, n);
}
SDL_API sdl_tensor *sdl_transpose(sdl_tensor *x, int dim0, int dim1) {
    if (!x) return NULL;
    int d0 = dim0 < 0 ? dim0 + x->ndim : dim0, d1 = dim1 < 0 ? dim1 + x->ndim : dim1;
    if (d0 < 0 || d0 >= x->ndim || d1 < 0 || d1 >= x->ndim) {
        char what[80];
        snprintf(what, sizeof what, "dims %d and %d do not exist", dim0, dim1);
        return (sdl_tensor *)sdl__shape_error("transpose", what, x, NULL);
    }
    if (d0 > d1) { int t = d0; d0 = d1; d1 = t; }
    sdl_shape s = sdl_tensor_shape(x);
    s.d[d0] = x->shape[d1];
    s.d[d1] = x->shape[d0];
    sdl_node *n = sdl__op_begin(SDL_OP_TRANSPOSE, s, x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.axis.dim = d0;
    n->attr.axis.dim1 = d1;
    return sdl__op_run(n);
}

/* ---- causal self-attention, per head: q, k, v (B, H, T, hd) -> y (B, H, T, hd)
   s_ij = q_i . k_j / sqrt(hd) for j <= i (later keys are masked);  p_i = softmax_j s_i;
   y_i = sum_j p_ij v_j
   dp_ij = dy_i . v_j;  ds_ij = p_ij (dp_ij - sum_j p_ij dp_ij);
   dq_i += sum_j ds_ij k_j / sqrt(hd);  dk_j += sum_i ds_ij q_i / sqrt(hd);  dv_j += sum_i p_ij dy_i
   saved: P (B, H, T, T). Forward and dq split by query row; dk, dv by key row, from dS kept
   in step memory, so every sum runs in one fixed order. */
typedef struct sdl__attn_job { sdl_node *n; float *ds; } sdl__attn_job;
/* a . b over n floats in 8 interleaved partial sums: a fixed order the compiler can vectorise */
static float sdl__attn_dot(const float *a, const float *b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
/* y += a x over n floats */
static void sdl__attn_axpy(float *SDL_RESTRICT y, float a, const float *SDL_RESTRICT x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void sdl__attn_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t T = n->in[0]->shape[2], hd = n->in[0]->shape[3];
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t r = r0; r < r1; r++) { /* r = (b h) * T + i */
        int64_t bh = r / T, i = r % T;
        const float *q = sdl_f32(n->in[0]) + r * hd, *k = sdl_f32(n->in[1]) + bh * T * hd, *v = sdl_f32(n->in[2]) + bh * T * hd;
        float *p = (float *)n->saved + r * T, *y = sdl_f32(n->out) + r * hd, mx = -INFINITY, s = 0.0f;
        for (int64_t j = 0; j <= i; j++) {
            p[j] = sdl__attn_dot(q, k + j * hd, hd) * scale;
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int64_t j = 0; j <= i; j++) { p[j] = expf(p[j] - mx); s += p[j]; }
        float inv = 1.0f / s;
        for (int64_t j = 0; j <= i; j++) p[j] *= inv;
        for (int64_t d = 0; d < hd; d++) y[d] = 0.0f;
        for (int64_t j = 0; j <= i; j++) sdl__attn_axpy(y, p[j], v + j * hd, hd);
    }
}
/* query rows: dS and dq */
static void sdl__attn_bwd_q(void *ctx, int64_t r0, int64_t r1) {
    sdl__attn_job *job = (sdl__attn_job *)ctx;
    sdl_node *n = job->n;
    sdl_tensor *qt = n->in[0];
    int64_t T = qt->shape[2], hd = qt->shape[3];
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t r = r0; r < r1; r++) {
        int64_t bh = r / T, i = r % T;
        const float *p = (const float *)n->saved + r * T, *dy = n->out->grad + r * hd;
        const float *k = sdl_f32(n->in[1]) + bh * T * hd, *v = sdl_f32(n->in[2]) + bh * T * hd;
        float *ds = job->ds + r * T, sum = 0.0f;
        for (int64_t j = 0; j <= i; j++) {
            ds[j] = sdl__attn_dot(dy, v + j * hd, hd);
            sum += p[j] * ds[j];
        }
        for (int64_t j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - sum);
        if (qt->requires_grad)
            for (int64_t j = 0; j <= i; j++) sdl__attn_axpy(qt->grad + r * hd, scale * ds[j], k + j * hd, hd);
    }
}
/* key rows: dk and dv, summing over the queries i >= j that see key j */
static void sdl__attn_bwd_kv(void *ctx, int64_t r0, int64_t r1) {
    sdl__attn_job *job = (sdl__attn_job *)ctx;
    sdl_node *n = job->n;
    sdl_tensor *kt = n->in[1], *vt = n->in[2];
    int64_t T = kt->shape[2], hd = kt->shape[3];
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t r = r0; r < r1; r++) {
        int64_t bh = r / T, j = r % T;
        const float *q = sdl_f32(n->in[0]) + bh * T * hd, *dy = n->out->grad + bh * T * hd;
        const float *p = (const float *)n->saved + bh * T * T, *ds = job->ds + bh * T * T;
        if (kt->requires_grad)
            for (int64_t i = j; i < T; i++) sdl__attn_axpy(kt->grad + r * hd, scale * ds[i * T + j], q + i * hd, hd);
        if (vt->requires_grad)
            for (int64_t i = j; i < T; i++) sdl__attn_axpy(vt->grad + r * hd, p[i * T + j], dy + i * hd, hd);
    }
}
static void sdl__attn_fwd(sdl_node *n) {
    int64_t T = n->in[0]->shape[2], hd = n->in[0]->shape[3];
    sdl_parallel_for(n->out->numel / (hd ? hd : 1), sdl__ops_grain(T * hd * 2), sdl__attn_fwd_range, n);
}
static void sdl__attn_bwd(sdl_node *n) {
    int64_t T = n->in[0]->shape[2], hd = n->in[0]->shape[3], rows = hd ? n->out->numel / hd : 0;
    sdl__attn_job job;
    job.n = n;
    job.ds = (float *)sdl_arena_alloc((size_t)rows * (size_t)T * sizeof(float)); /* size checked in forward */
    if (!job.ds) return;
    sdl_parallel_for(rows, sdl__ops_grain(T * hd * 2), sdl__attn_bwd_q, &job);
    if (n->in[1]->requires_grad || n->in[2]->requires_grad) sdl_parallel_for(rows, sdl__ops_grain(T * hd * 2), sdl__attn_bwd_kv, &job);
}
SDL_API sdl_tensor *sdl_attention(sdl_tensor *q, sdl_tensor *k, sdl_tensor *v) {
    if (sdl__any_null(q, k) || !v) return NULL;
    if (q->ndim != 4) return (sdl_tensor *)sdl__shape_error("attention", "wants q, k, v (B, n_head, T, hd)", q, NULL);
    if (!sdl_shape_equal(sdl_tensor_shape(q), sdl_tensor_shape(k)))
        return (sdl_tensor *)sdl__shape_error("attention", "q and k shapes differ", q, k);
    if (!sdl_shape_equal(sdl_tensor_shape(q), sdl_tensor_shape(v)))
        return (sdl_tensor *)sdl__shape_error("attention", "q and v shapes differ", q, v);
    int64_t T = q->shape[2], hd = q->shape[3], rows = hd ? q->numel / hd : 0;
    size_t pn, pbytes;
    if (sdl__mul_overflows((size_t)rows, (size_t)T, &pn) || sdl__mul_overflows(pn, sizeof(float), &pbytes)) {
        sdl_fail(SDL_ERR_OOM, "attention: T x T probabilities overflow for T = %lld", (long long)T);
        return NULL;
    }
    sdl_node *n = sdl__op_begin(SDL_OP_ATTENTION, sdl_tensor_shape(q), q, k, v, NULL);
    if (!n) return NULL;
    n->attr.attn.n_head = (int)q->shape[1];
    return sdl__saved(n, pbytes) ? sdl__op_run(n) : NULL;
}

/* >>ops-general: PyTorch's general ops (issue 15), differentiable, on any shapes. Tensors
   are contiguous, so a permute, slice or expand is a copy (not a view as in PyTorch).
   Broadcasting ops expand their inputs to the common shape first; the shape ops are one
   op, an index map; a reduction over some dims moves them last and reduces rows. */

/* row-major strides of a shape, in elements */
static void sdl__strides(const int64_t *shape, int ndim, int64_t *st) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) { st[d] = s; s *= shape[d]; }
}

/* dim counted from the end when negative; -1 (and an error naming op) when out of range */
static int sdl__dim(const char *op, const sdl_tensor *x, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    if (d >= 0 && d < ndim) return d;
    char what[64];
    snprintf(what, sizeof what, "dim %d out of range", dim);
    sdl__shape_error(op, what, x, NULL);
    return -1;
}

/* bytes of host memory copied into fresh step memory on device */
static void *sdl__to_device_arena(sdl_device device, const void *src, size_t bytes) {
    void *d = sdl__device_arena_alloc(device, bytes, false);
    if (d) sdl_get_backend(device)->copy(d, src, bytes, device, SDL_CPU);
    return d;
}

/* ---- the index map: y[i] = src[map[i]] (fill where map[i] < 0), src being the inputs'
   elements one after another;  dsrc[j] += sum of dy[i] over map[i] = j (CSR lists those i in
   increasing order, so every sum has one fixed order on any thread count).
   The adjoint (scatter): y[j] = sum of x[i] over map[i] = j;  dx[i] += dy[map[i]]. */
typedef struct sdl__imap {
    int64_t *map;         /* per destination element: a source element or -1 */
    int64_t *start, *idx; /* the destinations of source j: idx[start[j] .. start[j + 1]) */
                          /* (all three in the out's device memory: built here, copied there) */
    int64_t nd, ns;
    float fill;
    bool adjoint;
} sdl__imap;
/* destination coordinates -> source element (inputs concatenated) or -1 */
typedef int64_t (*sdl__imap_fn)(const int64_t *c, const void *ctx);

static bool sdl__imap_csr(sdl__imap *m) {
    m->start = (int64_t *)sdl_arena_alloc((size_t)(m->ns + 1) * sizeof(int64_t));
    m->idx = (int64_t *)sdl_arena_alloc((size_t)(m->nd + 1) * sizeof(int64_t));
    int64_t *cur = (int64_t *)sdl_arena_alloc((size_t)(m->ns + 1) * sizeof(int64_t));
    if (!m->start || !m->idx || !cur) return false;
    for (int64_t i = 0; i < m->nd; i++)
        if (m->map[i] >= 0) m->start[m->map[i] + 1]++;
    for (int64_t j = 0; j < m->ns; j++) m->start[j + 1] += m->start[j];
    memcpy(cur, m->start, (size_t)m->ns * sizeof(int64_t));
    for (int64_t i = 0; i < m->nd; i++)
        if (m->map[i] >= 0) m->idx[cur[m->map[i]]++] = i;
    return true;
}

/* the element g of the inputs taken one after another */
static float sdl__imap_src(const sdl_node *n, int64_t g) {
    int k = 0;
    while (g >= n->in[k]->numel) g -= n->in[k++]->numel;
    return sdl_f32(n->in[k])[g];
}
static void sdl__imap_fwd_range(void *ctx, int64_t i0, int64_t i1) {
    sdl_node *n = (sdl_node *)ctx;
    const sdl__imap *m = (const sdl__imap *)n->saved;
    float *y = sdl_f32(n->out);
    for (int64_t i = i0; i < i1; i++) {
        if (!m->adjoint) {
            y[i] = m->map[i] < 0 ? m->fill : sdl__imap_src(n, m->map[i]);
        } else {
            float s = 0.0f;
            for (int64_t p = m->start[i]; p < m->start[i + 1]; p++) s += sdl_f32(n->in[0])[m->idx[p]];
            y[i] = s;
        }
    }
}
static void sdl__index_map_fwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 4096, sdl__imap_fwd_range, n); }

typedef struct sdl__imap_job { sdl_node *n; int64_t base; float *dx; } sdl__imap_job;
static void sdl__imap_bwd_range(void *ctx, int64_t j0, int64_t j1) {
    const sdl__imap_job *job = (const sdl__imap_job *)ctx;
    const sdl__imap *m = (const sdl__imap *)job->n->saved;
    const float *dy = job->n->out->grad;
    for (int64_t j = j0; j < j1; j++) {
        if (m->adjoint) { /* j: a destination element, the input's */
            if (m->map[j] >= 0) job->dx[j] += dy[m->map[j]];
            continue;
        }
        float s = 0.0f;
        for (int64_t p = m->start[job->base + j]; p < m->start[job->base + j + 1]; p++) s += dy[m->idx[p]];
        job->dx[j] += s;
    }
}
/* one input at a time, so the same tensor twice (cat(x, x)) never races with itself */
static void sdl__index_map_bwd(sdl_node *n) {
    int64_t base = 0;
    for (int k = 0; k < n->nin; k++) {
        sdl__imap_job job = {n, base, n->in[k]->grad};
        if (job.dx) sdl_parallel_for(n->in[k]->numel, 4096, sdl__imap_bwd_range, &job);
        base += n->in[k]->numel;
    }
}

/* out (of out_shape) from the inputs through the map f over the destination shape dst
   (out's shape, or for the adjoint the single input's) */
static sdl_tensor *sdl__imap_run(sdl_shape out_shape, int nin, sdl_tensor *const *in, sdl_shape dst,
                                 sdl__imap_fn f, const void *ctx, float fill, bool adjoint) {
    sdl_node *n = sdl__op_begin_n(SDL_OP_INDEX_MAP, out_shape, nin, in);
    const sdl_backend *be = n ? sdl_get_backend(n->out->device) : NULL;
    if (!n) return NULL;
    if (!be || !be->forward[SDL_OP_INDEX_MAP]) return sdl__op_run(n); /* fails, naming the op */
    sdl__imap *m = (sdl__imap *)sdl_arena_alloc(sizeof(sdl__imap));
    if (!m) return NULL;
    m->nd = sdl__shape_numel(dst);
    m->ns = adjoint ? n->out->numel : 0;
    for (int k = 0; !adjoint && k < nin; k++) m->ns += in[k]->numel;
    m->fill = fill;
    m->adjoint = adjoint;
    m->map = (int64_t *)sdl_arena_alloc((size_t)(m->nd + 1) * sizeof(int64_t));
    if (!m->map) return NULL;
    int64_t c[SDL_MAX_DIMS] = {0};
    for (int64_t i = 0; i < m->nd; i++) {
        m->map[i] = f(c, ctx);
        for (int d = dst.ndim - 1; d >= 0 && ++c[d] == dst.d[d]; d--) c[d] = 0;
    }
    bool csr = adjoint || n->out->requires_grad;
    if (csr && !sdl__imap_csr(m)) return NULL;
    if (n->out->device != SDL_CPU) { /* the device kernels read the map from device memory */
        m->map = (int64_t *)sdl__to_device_arena(n->out->device, m->map, (size_t)(m->nd + 1) * sizeof(int64_t));
        m->start = csr ? (int64_t *)sdl__to_device_arena(n->out->device, m->start, (size_t)(m->ns + 1) * sizeof(int64_t)) : NULL;
        m->idx = csr ? (int64_t *)sdl__to_device_arena(n->out->device, m->idx, (size_t)(m->nd + 1) * sizeof(int64_t)) : NULL;
        if (!m->map || (csr && (!m->start || !m->idx))) return NULL;
    }
    n->saved = m;
    return sdl__op_run(n);
}

/* ---- strided maps: src = base + sum_d c[d] st[d] (permute, slice, expand) */
typedef struct sdl__strided { int64_t base, st[SDL_MAX_DIMS]; int ndim; } sdl__strided;
static int64_t sdl__strided_fn(const int64_t *c, const void *ctx) {
    const sdl__strided *s = (const sdl__strided *)ctx;
    int64_t g = s->base;
    for (int d = 0; d < s->ndim; d++) g += c[d] * s->st[d];
    return g;
}
static sdl_tensor *sdl__strided_run(sdl_tensor *x, sdl_shape out, const sdl__strided *s) {
    return sdl__imap_run(out, 1, &x, out, sdl__strided_fn, s, 0.0f, false);
}

/* permute: y's dim d is x's dim dims[d] */
SDL_API sdl_tensor *sdl_permute(sdl_tensor *x, const int *dims) {
    if (!x) return NULL;
    if (!dims) return (sdl_tensor *)sdl__shape_error("permute", "dims is NULL", x, NULL);
    int64_t xst[SDL_MAX_DIMS] = {0};
    sdl__strides(x->shape, x->ndim, xst);
    sdl_shape out = sdl_tensor_shape(x);
    sdl__strided s;
    memset(&s, 0, sizeof s);
    s.ndim = x->ndim;
    unsigned seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        int k = sdl__dim("permute", x, dims[d], x->ndim);
        if (k < 0) return NULL;
        if (seen & (1u << k)) return (sdl_tensor *)sdl__shape_error("permute", "a dim appears twice", x, NULL);
        seen |= 1u << k;
        out.d[d] = x->shape[k];
        s.st[d] = xst[k];
    }
    return sdl__strided_run(x, out, &s);
}

/* x[..., start:end:step, ...] along dim, Python's rules: negative start/end count from the
   end, both are clamped to [0, size]; step >= 1 */
SDL_API sdl_tensor *sdl_slice(sdl_tensor *x, int dim, int64_t start, int64_t end, int64_t step) {
    if (!x) return NULL;
    int d = sdl__dim("slice", x, dim, x->ndim);
    if (d < 0) return NULL;
    if (step < 1) return (sdl_tensor *)sdl__shape_error("slice", "step must be >= 1", x, NULL);
    int64_t size = x->shape[d];
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = start < 0 ? 0 : start > size ? size : start;
    end = end < start ? start : end > size ? size : end;
    int64_t xst[SDL_MAX_DIMS] = {0};
    sdl__strides(x->shape, x->ndim, xst);
    sdl__strided s;
    memset(&s, 0, sizeof s);
    s.ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++) s.st[i] = xst[i];
    s.base = start * xst[d];
    s.st[d] = step * xst[d];
    sdl_shape out = sdl_tensor_shape(x);
    out.d[d] = (end - start + step - 1) / step;
    return sdl__strided_run(x, out, &s);
}

SDL_API sdl_tensor *sdl_narrow(sdl_tensor *x, int dim, int64_t start, int64_t length) {
    if (!x) return NULL;
    int d = sdl__dim("narrow", x, dim, x->ndim);
    if (d < 0) return NULL;
    if (start < 0) start += x->shape[d];
    if (start < 0 || length < 0 || start + length > x->shape[d])
        return (sdl_tensor *)sdl__shape_error("narrow", "start and length must lie inside the dim", x, NULL);
    return sdl_slice(x, d, start, start + length, 1);
}

/* torch.split with one size: pieces of split_size along dim (the last may be smaller) into
   out[0 .. cap-1]; returns how many, or -1 on error (also when cap is too small) */
SDL_API int sdl_split(sdl_tensor *x, int64_t split_size, int dim, sdl_tensor **out, int cap) {
    if (!x) return -1;
    int d = sdl__dim("split", x, dim, x->ndim);
    if (d < 0) return -1;
    if (split_size < 1) return (sdl__shape_error("split", "split_size must be >= 1", x, NULL), -1);
    int64_t count = x->shape[d] ? (x->shape[d] + split_size - 1) / split_size : 1;
    if (!out || count > cap) return sdl_fail(SDL_ERR_ARG, "split: %lld pieces, room for %d", (long long)count, cap), -1;
    for (int64_t k = 0; k < count; k++)
        if (!(out[k] = sdl_slice(x, d, k * split_size, (k + 1) * split_size, 1))) return -1;
    return (int)count;
}

/* torch.chunk: ceil(size / chunks) per piece, so there may be fewer than chunks */
SDL_API int sdl_chunk(sdl_tensor *x, int chunks, int dim, sdl_tensor **out, int cap) {
    if (!x) return -1;
    int d = sdl__dim("chunk", x, dim, x->ndim);
    if (d < 0) return -1;
    if (chunks < 1) return (sdl__shape_error("chunk", "chunks must be >= 1", x, NULL), -1);
    int64_t size = (x->shape[d] + chunks - 1) / chunks;
    return sdl_split(x, size > 0 ? size : 1, d, out, cap);
}

/* the NumPy broadcast of shapes a and b into *out; false (an error naming op) when they clash */
static bool sdl__broadcast_shapes(const char *op, sdl_shape a, sdl_shape b, sdl_shape *out) {
    out->ndim = a.ndim > b.ndim ? a.ndim : b.ndim;
    for (int i = 0; i < out->ndim; i++) {
        int ia = i - (out->ndim - a.ndim), ib = i - (out->ndim - b.ndim);
        int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            sdl_fail(SDL_ERR_SHAPE, "%s: shapes do not broadcast: %s and %s", op, sdl_shape_str(a, sa, sizeof sa), sdl_shape_str(b, sb, sizeof sb));
            return false;
        }
        out->d[i] = da == 1 ? db : da;
    }
    return true;
}
static bool sdl__broadcast(const char *op, const sdl_tensor *a, const sdl_tensor *b, sdl_shape *out) {
    return sdl__broadcast_shapes(op, sdl_tensor_shape(a), sdl_tensor_shape(b), out);
}

/* torch.expand (a copy): x's dims right-aligned to shape, each equal or 1; -1 keeps x's */
SDL_API sdl_tensor *sdl_expand(sdl_tensor *x, sdl_shape shape) {
    if (!x) return NULL;
    if (shape.ndim < x->ndim || shape.ndim > SDL_MAX_DIMS) return (sdl_tensor *)sdl__shape_error("expand", "fewer dims than the input", x, NULL);
    int64_t xst[SDL_MAX_DIMS] = {0};
    sdl__strides(x->shape, x->ndim, xst);
    sdl__strided s;
    memset(&s, 0, sizeof s);
    s.ndim = shape.ndim;
    for (int i = 0; i < shape.ndim; i++) {
        int k = i - (shape.ndim - x->ndim);
        int64_t xd = k >= 0 ? x->shape[k] : 1;
        if (shape.d[i] == -1 && k >= 0) shape.d[i] = xd;
        if (shape.d[i] < 0 || (xd != shape.d[i] && xd != 1)) {
            char what[128];
            sdl_shape_str(shape, what, sizeof what);
            return (sdl_tensor *)sdl__shape_error("expand", what, x, NULL);
        }
        s.st[i] = k >= 0 && xd == shape.d[i] && xd != 1 ? xst[k] : 0;
    }
    return sdl_shape_equal(shape, sdl_tensor_shape(x)) ? x : sdl__strided_run(x, shape, &s);
}

/* ---- cat and stack on any dim: the source of y's c[dim] is input k */
typedef struct sdl__cat { int dim, n; const int64_t *size, *base; sdl_tensor *const *in; } sdl__cat;
static int64_t sdl__cat_fn(const int64_t *c, const void *ctx) {
    const sdl__cat *t = (const sdl__cat *)ctx;
    int64_t cd = c[t->dim];
    int k = 0;
    while (cd >= t->size[k]) cd -= t->size[k++];
    const sdl_tensor *x = t->in[k];
    int64_t g = 0;
    for (int d = 0; d < x->ndim; d++) g = g * x->shape[d] + (d == t->dim ? cd : c[d]);
    return t->base[k] + g;
}
SDL_API sdl_tensor *sdl_cat(int n, sdl_tensor *const *xs, int dim) {
    if (n < 1 || !xs) { sdl_fail(SDL_ERR_ARG, "cat: needs at least one tensor"); return NULL; }
    for (int k = 0; k < n; k++)
        if (!xs[k]) return NULL;
    int d = sdl__dim("cat", xs[0], dim, xs[0]->ndim);
    if (d < 0) return NULL;
    int64_t *size = (int64_t *)sdl_arena_alloc(2 * (size_t)n * sizeof(int64_t));
    if (!size) return NULL;
    sdl_shape out = sdl_tensor_shape(xs[0]);
    out.d[d] = 0;
    for (int k = 0; k < n; k++) {
        bool ok = xs[k]->ndim == xs[0]->ndim;
        for (int i = 0; ok && i < out.ndim; i++) ok = i == d || xs[k]->shape[i] == xs[0]->shape[i];
        if (!ok) return (sdl_tensor *)sdl__shape_error("cat", "shapes must match in every dim but the cat dim", xs[0], xs[k]);
        size[k] = xs[k]->shape[d];
        size[n + k] = k ? size[n + k - 1] + xs[k - 1]->numel : 0;
        out.d[d] += size[k];
    }
    sdl__cat t = {d, n, size, size + n, xs};
    return sdl__imap_run(out, n, xs, out, sdl__cat_fn, &t, 0.0f, false);
}

/* each x (the same shape) gains a dim of size 1 at dim, then cat */
SDL_API sdl_tensor *sdl_stack(int n, sdl_tensor *const *xs, int dim) {
    if (n < 1 || !xs) { sdl_fail(SDL_ERR_ARG, "stack: needs at least one tensor"); return NULL; }
    sdl_tensor **u = (sdl_tensor **)sdl_arena_alloc((size_t)n * sizeof(sdl_tensor *));
    if (!u || !xs[0]) return NULL;
    int d = sdl__dim("stack", xs[0], dim, xs[0]->ndim + 1);
    if (d < 0 || xs[0]->ndim >= SDL_MAX_DIMS) return NULL;
    for (int k = 0; k < n; k++) {
        if (!xs[k]) return NULL;
        if (!sdl_shape_equal(sdl_tensor_shape(xs[k]), sdl_tensor_shape(xs[0])))
            return (sdl_tensor *)sdl__shape_error("stack", "every tensor must have the same shape", xs[0], xs[k]);
        sdl_shape s = sdl_tensor_shape(xs[k]);
        for (int i = s.ndim; i > d; i--) s.d[i] = s.d[i - 1];
        s.d[d] = 1;
        s.ndim++;
        if (!(u[k] = sdl_reshape(xs[k], s))) return NULL;
    }
    return sdl_cat(n, u, d);
}

/* ---- index_select, gather, scatter_add: i32 index tensors on the CPU */
typedef struct sdl__gidx {
    int dim, ndim;
    int64_t xst[SDL_MAX_DIMS], ist[SDL_MAX_DIMS];
    const int32_t *index;
    bool per_element; /* gather, scatter: one index per element; index_select: per c[dim] */
} sdl__gidx;
static int64_t sdl__gidx_fn(const int64_t *c, const void *ctx) {
    const sdl__gidx *t = (const sdl__gidx *)ctx;
    int64_t g = 0, ii = 0;
    for (int d = 0; d < t->ndim; d++) ii += c[d] * t->ist[d];
    for (int d = 0; d < t->ndim; d++) g += (d == t->dim ? (int64_t)t->index[t->per_element ? ii : c[d]] : c[d]) * t->xst[d];
    return g;
}
/* checks an index tensor and its values against size; names op */
static bool sdl__index_ok(const char *op, const sdl_tensor *index, int64_t size, const sdl_tensor *x) {
    if (index->dtype != SDL_I32 || index->device != SDL_CPU) {
        sdl__shape_error(op, "index must be an i32 tensor on the CPU", x, index);
        return false;
    }
    for (int64_t i = 0; i < index->numel; i++)
        if (sdl_i32(index)[i] < 0 || sdl_i32(index)[i] >= size) {
            sdl_fail(SDL_ERR_ARG, "%s: index[%lld] = %d out of range [0, %lld)", op, (long long)i, (int)sdl_i32(index)[i], (long long)size);
            return false;
        }
    return true;
}

/* y = x with dim's entries picked by index (1-D): y.shape[dim] = len(index) */
SDL_API sdl_tensor *sdl_index_select(sdl_tensor *x, int dim, sdl_tensor *index) {
    if (sdl__any_null(x, index)) return NULL;
    int d = sdl__dim("index_select", x, dim, x->ndim);
    if (d < 0) return NULL;
    if (index->ndim != 1) return (sdl_tensor *)sdl__shape_error("index_select", "index must be 1-D", x, index);
    if (!sdl__index_ok("index_select", index, x->shape[d], x)) return NULL;
    sdl__gidx t;
    memset(&t, 0, sizeof t);
    t.dim = d;
    t.ndim = x->ndim;
    t.index = sdl_i32(index);
    sdl__strides(x->shape, x->ndim, t.xst);
    sdl_shape out = sdl_tensor_shape(x);
    out.d[d] = index->numel;
    return sdl__imap_run(out, 1, &x, out, sdl__gidx_fn, &t, 0.0f, false);
}

/* PyTorch's gather/scatter rule: index has x's ndim, and index.size(d) <= x.size(d) for
   every d != dim */
static bool sdl__gather_setup(const char *op, sdl_tensor *x, int dim, sdl_tensor *index, sdl__gidx *t) {
    memset(t, 0, sizeof *t);
    t->dim = sdl__dim(op, x, dim, x->ndim);
    if (t->dim < 0) return false;
    bool ok = index->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++) ok = d == t->dim || index->shape[d] <= x->shape[d];
    if (!ok) { sdl__shape_error(op, "index must have x's dims, each no larger (but dim)", x, index); return false; }
    if (!sdl__index_ok(op, index, x->shape[t->dim], x)) return false;
    t->ndim = x->ndim;
    t->index = sdl_i32(index);
    t->per_element = true;
    sdl__strides(x->shape, x->ndim, t->xst);
    sdl__strides(index->shape, index->ndim, t->ist);
    return true;
}

/* y[c] = x[c with c[dim] = index[c]], y shaped like index */
SDL_API sdl_tensor *sdl_gather(sdl_tensor *x, int dim, sdl_tensor *index) {
    if (sdl__any_null(x, index)) return NULL;
    sdl__gidx t;
    if (!sdl__gather_setup("gather", x, dim, index, &t)) return NULL;
    sdl_shape out = sdl_tensor_shape(index);
    return sdl__imap_run(out, 1, &x, out, sdl__gidx_fn, &t, 0.0f, false);
}

/* y = x, then y[c with c[dim] = index[c]] += src[c] for c over index's shape (src may be
   larger; its leading part is used), as torch.Tensor.scatter_add */
SDL_API sdl_tensor *sdl_scatter_add(sdl_tensor *x, int dim, sdl_tensor *index, sdl_tensor *src) {
    if (sdl__any_null(x, index) || !src) return NULL;
    sdl__gidx t;
    if (!sdl__gather_setup("scatter_add", x, dim, index, &t)) return NULL;
    bool ok = src->ndim == index->ndim;
    for (int d = 0; ok && d < src->ndim; d++) ok = src->shape[d] >= index->shape[d];
    if (!ok) return (sdl_tensor *)sdl__shape_error("scatter_add", "src must be at least index's shape", src, index);
    for (int d = 0; d < src->ndim && src; d++)
        if (src->shape[d] > index->shape[d]) src = sdl_narrow(src, d, 0, index->shape[d]);
    sdl_tensor *s = src ? sdl__imap_run(sdl_tensor_shape(x), 1, &src, sdl_tensor_shape(index), sdl__gidx_fn, &t, 0.0f, true) : NULL;
    return s ? sdl_add(x, s) : NULL;
}

/* ---- pad: pad[2i], pad[2i + 1] are the left and right widths of the i-th dim from the
   end (torch.nn.functional.pad); constant fills with value, reflect mirrors without
   repeating the edge (each width < that dim's size) */
typedef struct sdl__pad { int ndim; int64_t left[SDL_MAX_DIMS], size[SDL_MAX_DIMS]; bool reflect; } sdl__pad;
static int64_t sdl__pad_fn(const int64_t *c, const void *ctx) {
    const sdl__pad *p = (const sdl__pad *)ctx;
    int64_t g = 0;
    for (int d = 0; d < p->ndim; d++) {
        int64_t s = c[d] - p->left[d], n = p->size[d];
        if (s < 0 || s >= n) {
            if (!p->reflect) return -1;
            s = s < 0 ? -s : 2 * (n - 1) - s;
        }
        g = g * n + s;
    }
    return g;
}
SDL_API sdl_tensor *sdl_pad(sdl_tensor *x, int npad, const int64_t *pad, sdl_pad_mode mode, float value) {
    if (!x) return NULL;
    if (npad < 0 || npad % 2 || npad / 2 > x->ndim || (npad && !pad))
        return (sdl_tensor *)sdl__shape_error("pad", "needs an even number of widths, two per dim at most", x, NULL);
    sdl__pad p;
    memset(&p, 0, sizeof p);
    p.ndim = x->ndim;
    p.reflect = mode == SDL_PAD_REFLECT;
    sdl_shape out = sdl_tensor_shape(x);
    for (int d = 0; d < x->ndim; d++) p.size[d] = x->shape[d];
    for (int i = 0; i < npad / 2; i++) {
        int d = x->ndim - 1 - i;
        int64_t l = pad[2 * i], r = pad[2 * i + 1];
        if (l < 0 || r < 0 || (p.reflect && (l >= x->shape[d] || r >= x->shape[d])))
            return (sdl_tensor *)sdl__shape_error("pad", p.reflect ? "reflect widths must be >= 0 and < the dim" : "widths must be >= 0", x, NULL);
        p.left[d] = l;
        out.d[d] += l + r;
    }
    return sdl__imap_run(out, 1, &x, out, sdl__pad_fn, &p, p.reflect ? 0.0f : value, false);
}

/* ---- elementwise binary ops on equal shapes (SDL_BINARY_OPS, formulas in >>formulas) */
#define SDL__BINARY_CPU(X_, NAME, name) \
    static void sdl__##name##_fwd_loop(float *SDL_RESTRICT y, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, int64_t n) { \
        for (int64_t i = 0; i < n; i++) y[i] = sdl__f_##name(a[i], b[i]); \
    } \
    static void sdl__##name##_bwd_loop(float *SDL_RESTRICT da, float *SDL_RESTRICT db, const float *SDL_RESTRICT a, \
                                       const float *SDL_RESTRICT b, const float *SDL_RESTRICT y, const float *SDL_RESTRICT dy, int64_t n) { \
        if (da) for (int64_t i = 0; i < n; i++) da[i] += sdl__dfa_##name(a[i], b[i], y[i], dy[i]); \
        if (db) for (int64_t i = 0; i < n; i++) db[i] += sdl__dfb_##name(a[i], b[i], y[i], dy[i]); \
    } \
    static void sdl__##name##_fwd_range(void *ctx, int64_t i0, int64_t i1) { \
        sdl_node *n = (sdl_node *)ctx; \
        sdl__##name##_fwd_loop(sdl_f32(n->out) + i0, sdl_f32(n->in[0]) + i0, sdl_f32(n->in[1]) + i0, i1 - i0); \
    } \
    static void sdl__##name##_bwd_range(void *ctx, int64_t i0, int64_t i1) { \
        sdl_node *n = (sdl_node *)ctx; \
        float *da = n->in[0]->grad ? n->in[0]->grad + i0 : NULL, *db = n->in[1]->grad ? n->in[1]->grad + i0 : NULL; \
        const float *a = sdl_f32(n->in[0]) + i0, *b = sdl_f32(n->in[1]) + i0, *y = sdl_f32(n->out) + i0, *dy = n->out->grad + i0; \
        if (da == db) { /* x op x: both terms into one buffer, one loop each */ \
            sdl__##name##_bwd_loop(da, NULL, a, b, y, dy, i1 - i0); \
            sdl__##name##_bwd_loop(NULL, db, a, b, y, dy, i1 - i0); \
        } else sdl__##name##_bwd_loop(da, db, a, b, y, dy, i1 - i0); \
    } \
    static void sdl__##name##_fwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, SDL__EW_NS, sdl__##name##_fwd_range, n); } \
    static void sdl__##name##_bwd(sdl_node *n) { sdl_parallel_for_work(n->out->numel, 2 * SDL__EW_NS, sdl__##name##_bwd_range, n); }
SDL_BINARY_OPS(SDL__BINARY_CPU, _)
#undef SDL__BINARY_CPU

/* a 0-d CPU tensor that needs no gradient meets a tensor on another device there (PyTorch
   lets CPU scalars mix with CUDA tensors): a copy on dev; anything else as it is */
static sdl_tensor *sdl__scalar_to(sdl_tensor *t, sdl_device dev) {
    if (!t || t->ndim || t->device != SDL_CPU || dev == SDL_CPU || t->requires_grad || t->dtype != SDL_F32) return t;
    sdl_tensor *d = sdl__arena_tensor(sdl_shapen(0, NULL), SDL_F32, dev, false);
    if (d) sdl_get_backend(dev)->copy(d->data, t->data, sizeof(float), dev, SDL_CPU);
    return d;
}

/* a and b expanded to their broadcast shape (either may stay as it is) */
static bool sdl__expand2(const char *op, sdl_tensor **a, sdl_tensor **b) {
    sdl_shape s;
    *a = sdl__scalar_to(*a, (*b)->device);
    *b = sdl__scalar_to(*b, (*a)->device);
    if (!*a || !*b) return false;
    if (!sdl__broadcast(op, *a, *b, &s)) return false;
    *a = sdl_expand(*a, s);
    *b = sdl_expand(*b, s);
    return *a && *b;
}
static sdl_tensor *sdl__binary_bcast(sdl_op op, const char *name, sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(a, b) || !sdl__expand2(name, &a, &b)) return NULL;
    return sdl__op_run(sdl__op_begin(op, sdl_tensor_shape(a), a, b, NULL, NULL));
}
SDL_API sdl_tensor *sdl_sub(sdl_tensor *a, sdl_tensor *b) { return sdl__binary_bcast(SDL_OP_SUB, "sub", a, b); }
SDL_API sdl_tensor *sdl_div(sdl_tensor *a, sdl_tensor *b) { return sdl__binary_bcast(SDL_OP_DIV, "div", a, b); }
SDL_API sdl_tensor *sdl_maximum(sdl_tensor *a, sdl_tensor *b) { return sdl__binary_bcast(SDL_OP_MAXIMUM, "maximum", a, b); }
SDL_API sdl_tensor *sdl_minimum(sdl_tensor *a, sdl_tensor *b) { return sdl__binary_bcast(SDL_OP_MINIMUM, "minimum", a, b); }

/* comparisons record nothing: their output has no gradient */
static sdl_tensor *sdl__compare(sdl_op op, const char *name, sdl_tensor *a, sdl_tensor *b) {
    bool no_grad = sdl__g.no_grad;
    sdl__g.no_grad = true;
    sdl_tensor *y = sdl__binary_bcast(op, name, a, b);
    sdl__g.no_grad = no_grad;
    return y;
}
SDL_API sdl_tensor *sdl_eq(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_EQ, "eq", a, b); }
SDL_API sdl_tensor *sdl_ne(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_NE, "ne", a, b); }
SDL_API sdl_tensor *sdl_lt(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_LT, "lt", a, b); }
SDL_API sdl_tensor *sdl_le(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_LE, "le", a, b); }
SDL_API sdl_tensor *sdl_gt(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_GT, "gt", a, b); }
SDL_API sdl_tensor *sdl_ge(sdl_tensor *a, sdl_tensor *b) { return sdl__compare(SDL_OP_GE, "ge", a, b); }

/* a scalar (0-d) tensor in the step arena, to broadcast against anything */
SDL_API sdl_tensor *sdl_scalar(float value) {
    sdl_tensor *t = sdl__arena_tensor(sdl_shapen(0, NULL), SDL_F32, SDL_CPU, false);
    if (t) sdl_f32(t)[0] = value;
    return t;
}

/* ---- where: y = c != 0 ? a : b (all three broadcast);  da += c ? dy : 0, db += c ? 0 : dy */
static void sdl__where_range(void *ctx, int64_t i0, int64_t i1, bool bwd) {
    sdl_node *n = (sdl_node *)ctx;
    const float *c = sdl_f32(n->in[0]), *a = sdl_f32(n->in[1]), *b = sdl_f32(n->in[2]), *dy = n->out->grad;
    float *y = sdl_f32(n->out), *da = n->in[1]->grad, *db = n->in[2]->grad;
    for (int64_t i = i0; i < i1; i++) {
        if (!bwd) y[i] = c[i] != 0.0f ? a[i] : b[i];
        else if (c[i] != 0.0f && da) da[i] += dy[i];
        else if (c[i] == 0.0f && db) db[i] += dy[i];
    }
}
static void sdl__where_fwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__where_range(ctx, i0, i1, false); }
static void sdl__where_bwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__where_range(ctx, i0, i1, true); }
static void sdl__where_fwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 8192, sdl__where_fwd_range, n); }
static void sdl__where_bwd(sdl_node *n) {
    if (n->in[1] == n->in[2]) sdl__where_bwd_range(n, 0, n->out->numel);
    else sdl_parallel_for(n->out->numel, 8192, sdl__where_bwd_range, n);
}
SDL_API sdl_tensor *sdl_where(sdl_tensor *cond, sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(cond, a) || !b) return NULL;
    sdl_device dev = a->device != SDL_CPU ? a->device : b->device != SDL_CPU ? b->device : cond->device;
    cond = sdl__scalar_to(cond, dev);
    a = sdl__scalar_to(a, dev);
    b = sdl__scalar_to(b, dev);
    if (!cond || !a || !b) return NULL;
    sdl_shape ab, s;
    if (!sdl__broadcast("where", a, b, &ab) || !sdl__broadcast_shapes("where", sdl_tensor_shape(cond), ab, &s)) return NULL;
    bool no_grad = sdl__g.no_grad;
    sdl__g.no_grad = true;
    sdl_tensor *c = sdl_expand(cond, s); /* no gradient flows to the condition */
    sdl__g.no_grad = no_grad;
    a = sdl_expand(a, s);
    b = sdl_expand(b, s);
    if (!c || !a || !b) return NULL;
    return sdl__op_run(sdl__op_begin(SDL_OP_WHERE, s, c, a, b, NULL));
}
/* x with value where mask != 0 (mask broadcasts to x) */
SDL_API sdl_tensor *sdl_masked_fill(sdl_tensor *x, sdl_tensor *mask, float value) {
    if (sdl__any_null(x, mask)) return NULL;
    sdl_tensor *v = sdl__arena_tensor(sdl_shapen(0, NULL), SDL_F32, x->device, false);
    if (v && x->device == SDL_CPU) sdl_f32(v)[0] = value;
    else if (v) sdl_get_backend(x->device)->copy(v->data, &value, sizeof value, x->device, SDL_CPU);
    return v ? sdl_where(mask, v, x) : NULL;
}

/* ---- row reductions of x (R, L) -> y (R), the kernels under the dim reductions:
   sum         y = sum x                            dx = dy
   mean        y = sum x / L                        dx = dy / L
   max         y = x[argmax] (first of equals)      dx[argmax] = dy (argmax kept)
   logsumexp   y = m + ln sum e^(x - m), m = max    dx = dy e^(x - y)
   var         y = sum (x - mu)^2 / (L - corr)      dx = dy 2 (x - mu) / (L - corr) */
static int64_t sdl__rows_len(const sdl_node *n) { return n->out->numel ? n->in[0]->numel / n->out->numel : 0; }
static void sdl__reduce_fwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t L = sdl__rows_len(n);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(n->in[0]) + r * L;
        double s = 0.0, m = L ? x[0] : -INFINITY;
        int64_t arg = 0;
        for (int64_t j = 1; j < L; j++)
            if (x[j] > m || (x[j] != x[j] && m == m)) { m = x[j]; arg = j; } /* NaN wins, as PyTorch */
        if (n->op == SDL_OP_REDUCE_MAX) {
            ((int64_t *)n->saved)[r] = arg;
            sdl_f32(n->out)[r] = (float)m;
            continue;
        }
        if (n->op == SDL_OP_LOGSUMEXP) {
            for (int64_t j = 0; j < L; j++) s += exp((double)x[j] - m);
            sdl_f32(n->out)[r] = L && isfinite(m) ? (float)(m + log(s)) : (float)m;
            continue;
        }
        for (int64_t j = 0; j < L; j++) s += x[j];
        if (n->op == SDL_OP_REDUCE_SUM) { sdl_f32(n->out)[r] = (float)s; continue; }
        double mu = s / (double)L, v = 0.0;
        if (n->op == SDL_OP_REDUCE_MEAN) { sdl_f32(n->out)[r] = (float)mu; continue; }
        for (int64_t j = 0; j < L; j++) v += ((double)x[j] - mu) * ((double)x[j] - mu);
        sdl_f32(n->out)[r] = (float)(v / ((double)L - (double)n->attr.scalar.alpha));
    }
}
static void sdl__reduce_bwd_range(void *ctx, int64_t r0, int64_t r1) {
    sdl_node *n = (sdl_node *)ctx;
    int64_t L = sdl__rows_len(n);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = sdl_f32(n->in[0]) + r * L, y = sdl_f32(n->out)[r], g = n->out->grad[r];
        float *dx = n->in[0]->grad + r * L;
        double mu = 0.0;
        if (n->op == SDL_OP_VAR)
            for (int64_t j = 0; j < L; j++) mu += x[j];
        mu /= (double)(L ? L : 1);
        float k = n->op == SDL_OP_VAR ? (float)(2.0 / ((double)L - (double)n->attr.scalar.alpha)) : 0.0f;
        if (n->op == SDL_OP_REDUCE_MAX) {
            if (L) dx[((const int64_t *)n->saved)[r]] += g;
            continue;
        }
        for (int64_t j = 0; j < L; j++)
            dx[j] += n->op == SDL_OP_REDUCE_SUM ? g : n->op == SDL_OP_REDUCE_MEAN ? g / (float)L
                   : n->op == SDL_OP_LOGSUMEXP ? g * expf(x[j] - y) : g * k * (float)((double)x[j] - mu);
    }
}
static void sdl__reduce_fwd(sdl_node *n) { sdl_parallel_for(n->out->numel, sdl__ops_grain(sdl__rows_len(n)), sdl__reduce_fwd_range, n); }
static void sdl__reduce_bwd(sdl_node *n) { sdl_parallel_for(n->out->numel, sdl__ops_grain(sdl__rows_len(n)), sdl__reduce_bwd_range, n); }

/* the dims to reduce as a bit set; none given: all (PyTorch's dim=None) */
static bool sdl__reduce_dims(const char *op, const sdl_tensor *x, int ndims, const int *dims, unsigned *set) {
    *set = ndims > 0 ? 0u : (1u << x->ndim) - 1u;
    for (int i = 0; i < ndims; i++) {
        int d = sdl__dim(op, x, dims ? dims[i] : 99, x->ndim > 0 ? x->ndim : 1);
        if (d < 0) return false;
        if (*set & (1u << d)) { sdl__shape_error(op, "a dim appears twice", x, NULL); return false; }
        *set |= 1u << d;
    }
    return true;
}

/* x with the dims in set moved last (kept dims in order first), as (R, L) rows */
static sdl_tensor *sdl__reduce_rows(sdl_tensor *x, unsigned set, int64_t *R, int64_t *L) {
    int perm[SDL_MAX_DIMS], k = 0;
    bool moved = false;
    *R = *L = 1;
    for (int d = 0; d < x->ndim; d++)
        if (!(set & (1u << d))) { perm[k++] = d; *R *= x->shape[d]; }
    for (int d = 0; d < x->ndim; d++)
        if (set & (1u << d)) { perm[k++] = d; *L *= x->shape[d]; }
    for (int d = 0; d < x->ndim; d++) moved = moved || perm[d] != d;
    sdl_tensor *p = moved ? sdl_permute(x, perm) : x;
    return p ? sdl_reshape(p, sdl_shape2(*R, *L)) : NULL;
}

/* the reduced shape: set dims dropped, or kept as 1 */
static sdl_shape sdl__reduced_shape(const sdl_tensor *x, unsigned set, bool keepdim) {
    sdl_shape s;
    s.ndim = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!(set & (1u << d))) s.d[s.ndim++] = x->shape[d];
        else if (keepdim) s.d[s.ndim++] = 1;
    return s;
}

static sdl_tensor *sdl__reduce(sdl_op op, const char *name, sdl_tensor *x, int ndims, const int *dims, bool keepdim, float corr) {
    unsigned set;
    int64_t R, L;
    if (!x || !sdl__reduce_dims(name, x, ndims, dims, &set)) return NULL;
    sdl_tensor *rows = sdl__reduce_rows(x, set, &R, &L);
    if (!rows) return NULL;
    if (L == 0 && (op == SDL_OP_REDUCE_MAX || op == SDL_OP_VAR || op == SDL_OP_REDUCE_MEAN))
        return (sdl_tensor *)sdl__shape_error(name, "reduces an empty dim", x, NULL);
    sdl_node *n = sdl__op_begin(op, sdl_shape1(R), rows, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.scalar.alpha = corr;
    if (op == SDL_OP_REDUCE_MAX && !sdl__saved(n, (size_t)(R + 1) * sizeof(int64_t))) return NULL;
    return sdl_reshape(sdl__op_run(n), sdl__reduced_shape(x, set, keepdim));
}
SDL_API sdl_tensor *sdl_sum_dims(sdl_tensor *x, int ndims, const int *dims, bool keepdim) {
    return sdl__reduce(SDL_OP_REDUCE_SUM, "sum_dims", x, ndims, dims, keepdim, 0.0f);
}
SDL_API sdl_tensor *sdl_mean_dims(sdl_tensor *x, int ndims, const int *dims, bool keepdim) {
    return sdl__reduce(SDL_OP_REDUCE_MEAN, "mean_dims", x, ndims, dims, keepdim, 0.0f);
}
SDL_API sdl_tensor *sdl_logsumexp(sdl_tensor *x, int ndims, const int *dims, bool keepdim) {
    return sdl__reduce(SDL_OP_LOGSUMEXP, "logsumexp", x, ndims, dims, keepdim, 0.0f);
}
SDL_API sdl_tensor *sdl_var_dims(sdl_tensor *x, int ndims, const int *dims, int correction, bool keepdim) {
    return sdl__reduce(SDL_OP_VAR, "var_dims", x, ndims, dims, keepdim, (float)correction);
}
SDL_API sdl_tensor *sdl_max_dim(sdl_tensor *x, int dim, bool keepdim, sdl_tensor **indices) {
    sdl_tensor *y = sdl__reduce(SDL_OP_REDUCE_MAX, "max_dim", x, 1, &dim, keepdim, 0.0f);
    if (indices) *indices = y ? sdl_argmax(x, dim, keepdim) : NULL;
    return y;
}

/* i32 indices of the largest along dim (the first of equals; NaN counts as largest) */
SDL_API sdl_tensor *sdl_argmax(sdl_tensor *x, int dim, bool keepdim) {
    unsigned set;
    int64_t R, L;
    if (!x || !sdl__reduce_dims("argmax", x, 1, &dim, &set)) return NULL;
    if (x->device != SDL_CPU) return (sdl_tensor *)sdl__shape_error("argmax", "needs a CPU tensor", x, NULL);
    bool no_grad = sdl__g.no_grad;
    sdl__g.no_grad = true;
    sdl_tensor *rows = sdl__reduce_rows(x, set, &R, &L);
    sdl__g.no_grad = no_grad;
    sdl_tensor *y = rows ? sdl__arena_tensor(sdl__reduced_shape(x, set, keepdim), SDL_I32, SDL_CPU, false) : NULL;
    if (!y) return NULL;
    if (L == 0) return (sdl_tensor *)sdl__shape_error("argmax", "reduces an empty dim", x, NULL);
    for (int64_t r = 0; r < R; r++) {
        const float *v = sdl_f32(rows) + r * L;
        int32_t arg = 0;
        for (int64_t j = 1; j < L; j++)
            if (v[j] > v[arg] || (v[j] != v[j] && v[arg] == v[arg])) arg = (int32_t)j;
        sdl_i32(y)[r] = arg;
    }
    return y;
}

/* softmax and log_softmax over any dim: the dim moved last, the last-dim op, moved back */
static sdl_tensor *sdl__softmax_dim(sdl_tensor *(*f)(sdl_tensor *), const char *name, sdl_tensor *x, int dim) {
    if (!x) return NULL;
    int d = sdl__dim(name, x, dim, x->ndim);
    if (d < 0) return NULL;
    if (d == x->ndim - 1) return f(x);
    return sdl_transpose(f(sdl_transpose(x, d, x->ndim - 1)), d, x->ndim - 1);
}
SDL_API sdl_tensor *sdl_softmax_dim(sdl_tensor *x, int dim) { return sdl__softmax_dim(sdl_softmax, "softmax_dim", x, dim); }
SDL_API sdl_tensor *sdl_log_softmax_dim(sdl_tensor *x, int dim) { return sdl__softmax_dim(sdl_log_softmax, "log_softmax_dim", x, dim); }

/* ---- batched matmul through the packed GEMM: a (B, M, K) @ b (B, K, N) -> y (B, M, N)
   dA_i += dY_i B_i^T,  dB_i += A_i^T dY_i */
static void sdl__bmm_fwd(sdl_node *n) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    for (int64_t i = 0; i < B; i++)
        sdl_sgemm(false, false, M, N, K, 1.0f, sdl_f32(a) + i * M * K, K, sdl_f32(b) + i * K * N, N, 0.0f,
                  sdl_f32(n->out) + i * M * N, N);
}
static void sdl__bmm_bwd(sdl_node *n) {
    const sdl_tensor *a = n->in[0], *b = n->in[1];
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    const float *dy = n->out->grad;
    for (int64_t i = 0; i < B; i++) {
        if (a->grad) sdl_sgemm(false, true, M, K, N, 1.0f, dy + i * M * N, N, sdl_f32(b) + i * K * N, N, 1.0f, a->grad + i * M * K, K);
        if (b->grad) sdl_sgemm(true, false, K, N, M, 1.0f, sdl_f32(a) + i * M * K, K, dy + i * M * N, N, 1.0f, b->grad + i * K * N, N);
    }
}

/* torch.matmul: 1-D operands gain a dim (then lose it), batch dims broadcast; a 2-D b
   makes one GEMM of every row of a */
SDL_API sdl_tensor *sdl_matmul(sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(a, b)) return NULL;
    if (a->ndim < 1 || b->ndim < 1) return (sdl_tensor *)sdl__shape_error("matmul", "needs at least 1-D operands", a, b);
    sdl_shape as = sdl_tensor_shape(a), bs = sdl_tensor_shape(b);
    bool a1 = as.ndim == 1, b1 = bs.ndim == 1;
    if (a1) as = sdl_shape2(1, as.d[0]);
    if (b1) bs = sdl_shape2(bs.d[0], 1);
    int64_t M = as.d[as.ndim - 2], K = as.d[as.ndim - 1], N = bs.d[bs.ndim - 1];
    if (bs.d[bs.ndim - 2] != K) return (sdl_tensor *)sdl__shape_error("matmul", "inner dims differ", a, b);
    sdl_shape ab = as, bb = bs, batch; /* the batch dims, broadcast */
    ab.ndim -= 2;
    bb.ndim -= 2;
    if (!sdl__broadcast_shapes("matmul", ab, bb, &batch)) return NULL;
    int64_t B = sdl__shape_numel(batch);
    sdl_shape ys = batch;
    ys.d[ys.ndim++] = M;
    ys.d[ys.ndim++] = N;
    sdl_tensor *y;
    if (bs.ndim == 2) { /* (..., M, K) @ (K, N): one GEMM over all rows */
        y = sdl_reshape(sdl_linear(sdl_reshape(a, sdl_shape2(B * M, K)), sdl_transpose(sdl_reshape(b, bs), 0, 1), NULL), ys);
    } else {
        sdl_shape ea = batch, eb = batch;
        ea.d[ea.ndim++] = M;
        ea.d[ea.ndim++] = K;
        eb.d[eb.ndim++] = K;
        eb.d[eb.ndim++] = N;
        sdl_tensor *a3 = sdl_reshape(sdl_expand(sdl_reshape(a, as), ea), sdl_shape3(B, M, K));
        sdl_tensor *b3 = sdl_reshape(sdl_expand(sdl_reshape(b, bs), eb), sdl_shape3(B, K, N));
        y = a3 && b3 ? sdl_reshape(sdl__op_run(sdl__op_begin(SDL_OP_BMM, sdl_shape3(B, M, N), a3, b3, NULL, NULL)), ys) : NULL;
    }
    if (!y || (!a1 && !b1)) return y;
    sdl_shape s = sdl_tensor_shape(y); /* drop the dims the 1-D operands gained */
    if (b1) s.ndim--;
    if (a1) { s.d[s.ndim - (b1 ? 1 : 2)] = s.d[s.ndim - 1]; s.ndim--; }
    return sdl_reshape(y, s);
}

/* >>ops-rnn (the recurrence of the RNN, LSTM and GRU layers) */

/* ---- one layer's recurrence over a whole sequence as one op; the input projection of
   every step, xw = x W_ih^T + b_ih, is one sdl_linear before it (one large GEMM).
   xw (T, B, G H) time-major, or (B, T, G H) with batch_first; w_hh (G H, H); b_hh (G H);
   s0: h_0 (B, H), for the LSTM (2, B, H) = [h_0; c_0]; NULL: zeros.
   out (T, B, H) = h_1 .. h_T; for the LSTM (T + 1, B, H) with c_T in the last row.
   Per step, a = xw_t and q = h' W_hh^T + b_hh (h' = h_{t-1}), gate blocks in PyTorch's order:
     tanh (G = 1)  h = tanh(a + q)
     lstm (G = 4)  i, f, g, o = sig, sig, tanh, sig of (a + q);  c = f c' + i g;  h = o tanh c
     gru  (G = 3)  r = sig(a_r + q_r), z = sig(a_z + q_z), n = tanh(a_n + r q_n);  h = (1 - z) n + z h'
   Backward, t = T .. 1, with dh = dout_t + the carry from step t + 1 (dc likewise):
     tanh  da = dq = dh (1 - h^2)
     lstm  dc += dh o (1 - tanh^2 c);  da_i = dc g i (1 - i), da_f = dc c' f (1 - f),
           da_g = dc i (1 - g^2), da_o = dh tanh(c) o (1 - o);  dq = da;  carry dc' = dc f
     gru   dn = dh (1 - z) (1 - n^2);  da_n = dn, dq_n = dn r;  da_r = dq_r = dn q_n r (1 - r);
           da_z = dq_z = dh (h' - n) z (1 - z);  carry dh' = dh z
   then dxw_t += da;  dW_hh += dq^T h';  db_hh += sum_b dq;  carry dh' += dq W_hh; ds0 += the
   carries left after t = 1. Forward keeps the gates (post-activation) and, for the LSTM c,
   for the GRU q_n. */
typedef struct sdl__rnn_dims { int64_t T, B, H, G; bool bf; } sdl__rnn_dims;
static sdl__rnn_dims sdl__rnn_dims_of(const sdl_node *n) {
    sdl__rnn_dims d;
    d.H = n->in[1]->shape[1];
    d.G = n->in[1]->shape[0] / d.H;
    d.bf = n->attr.rnn.batch_first != 0;
    d.T = n->in[0]->shape[d.bf ? 1 : 0];
    d.B = n->in[0]->shape[d.bf ? 0 : 1];
    return d;
}
/* row (b) of step t in xw and its gradient */
static int64_t sdl__rnn_row(const sdl__rnn_dims *d, int64_t t, int64_t b) { return d->bf ? b * d->T + t : t * d->B + b; }
static float sdl__sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void sdl__rnn_fwd(sdl_node *n) {
    sdl__rnn_dims d = sdl__rnn_dims_of(n);
    const int64_t B = d.B, H = d.H, GH = d.G * d.H, BH = B * H;
    const int mode = n->attr.rnn.mode;
    const float *xw = sdl_f32(n->in[0]), *w = sdl_f32(n->in[1]), *bias = sdl_f32(n->in[2]);
    const float *s0 = n->nin > 3 ? sdl_f32(n->in[3]) : NULL;
    float *out = sdl_f32(n->out), *gates = (float *)n->saved, *extra = gates + d.T * B * GH; /* c or q_n per step */
    float *q = gates + d.T * B * (GH + H), *zero = q + B * GH;                               /* scratch */
    for (int64_t t = 0; t < d.T; t++) {
        const float *hp = t ? out + (t - 1) * BH : s0 ? s0 : zero;
        const float *cp = t ? extra + (t - 1) * BH : s0 ? s0 + BH : zero;
        float *h = out + t * BH, *gt = gates + t * B * GH, *ex = extra + t * BH;
        for (int64_t b = 0; b < B; b++) memcpy(q + b * GH, bias, (size_t)GH * sizeof(float));
        sdl_sgemm(false, true, B, GH, H, 1.0f, hp, H, w, H, 1.0f, q, GH);
        for (int64_t b = 0; b < B; b++) {
            const float *a = xw + sdl__rnn_row(&d, t, b) * GH, *qb = q + b * GH;
            float *g = gt + b * GH;
            for (int64_t j = 0; j < H; j++) {
                int64_t o = b * H + j;
                if (mode == SDL_RNN_LSTM) {
                    float i = sdl__sigm(a[j] + qb[j]), f = sdl__sigm(a[H + j] + qb[H + j]);
                    float gg = tanhf(a[2 * H + j] + qb[2 * H + j]), og = sdl__sigm(a[3 * H + j] + qb[3 * H + j]);
                    g[j] = i; g[H + j] = f; g[2 * H + j] = gg; g[3 * H + j] = og;
                    ex[o] = f * cp[o] + i * gg;
                    h[o] = og * tanhf(ex[o]);
                } else if (mode == SDL_RNN_GRU) {
                    float r = sdl__sigm(a[j] + qb[j]), z = sdl__sigm(a[H + j] + qb[H + j]);
                    float nn = tanhf(a[2 * H + j] + r * qb[2 * H + j]);
                    g[j] = r; g[H + j] = z; g[2 * H + j] = nn;
                    ex[o] = qb[2 * H + j];
                    h[o] = (1.0f - z) * nn + z * hp[o];
                } else {
                    h[o] = g[j] = tanhf(a[j] + qb[j]);
                }
            }
        }
    }
    if (mode == SDL_RNN_LSTM) memcpy(out + d.T * BH, extra + (d.T - 1) * BH, (size_t)BH * sizeof(float));
}

static void sdl__rnn_bwd(sdl_node *n) {
    sdl__rnn_dims d = sdl__rnn_dims_of(n);
    const int64_t B = d.B, H = d.H, GH = d.G * d.H, BH = B * H;
    const int mode = n->attr.rnn.mode;
    const float *w = sdl_f32(n->in[1]), *s0 = n->nin > 3 ? sdl_f32(n->in[3]) : NULL;
    const float *out = sdl_f32(n->out), *dout = n->out->grad, *gates = (const float *)n->saved;
    const float *extra = gates + d.T * B * GH, *zero = gates + d.T * B * (GH + H) + B * GH;
    float *dxw = n->in[0]->requires_grad ? n->in[0]->grad : NULL;
    float *dw = n->in[1]->requires_grad ? n->in[1]->grad : NULL, *db = n->in[2]->requires_grad ? n->in[2]->grad : NULL;
    float *ds0 = n->nin > 3 && n->in[3]->requires_grad ? n->in[3]->grad : NULL;
    float *dq = (float *)sdl_arena_alloc((size_t)(B * GH + 2 * BH) * sizeof(float)), *ch = dq + B * GH, *cc = ch + BH;
    if (!dq) return;
    if (mode == SDL_RNN_LSTM) memcpy(cc, dout + d.T * BH, (size_t)BH * sizeof(float)); /* dc_T */
    for (int64_t t = d.T - 1; t >= 0; t--) {
        const float *hp = t ? out + (t - 1) * BH : s0 ? s0 : zero;
        const float *cp = t ? extra + (t - 1) * BH : s0 ? s0 + BH : zero;
        const float *h = out + t * BH, *gt = gates + t * B * GH, *ex = extra + t * BH, *dy = dout + t * BH;
        for (int64_t b = 0; b < B; b++) {
            const float *g = gt + b * GH;
            float *da = dxw ? dxw + sdl__rnn_row(&d, t, b) * GH : NULL, *dqb = dq + b * GH;
            for (int64_t j = 0; j < H; j++) {
                int64_t o = b * H + j;
                float dh = dy[o] + ch[o];
                if (mode == SDL_RNN_LSTM) {
                    float i = g[j], f = g[H + j], gg = g[2 * H + j], og = g[3 * H + j], tc = tanhf(ex[o]);
                    float dc = cc[o] + dh * og * (1.0f - tc * tc);
                    dqb[j] = dc * gg * i * (1.0f - i);
                    dqb[H + j] = dc * cp[o] * f * (1.0f - f);
                    dqb[2 * H + j] = dc * i * (1.0f - gg * gg);
                    dqb[3 * H + j] = dh * tc * og * (1.0f - og);
                    cc[o] = dc * f;
                    if (da) for (int k = 0; k < 4; k++) da[k * H + j] += dqb[k * H + j];
                } else if (mode == SDL_RNN_GRU) {
                    float r = g[j], z = g[H + j], nn = g[2 * H + j];
                    float dn = dh * (1.0f - z) * (1.0f - nn * nn);
                    float dr = dn * ex[o] * r * (1.0f - r), dz = dh * (hp[o] - nn) * z * (1.0f - z);
                    dqb[j] = dr; dqb[H + j] = dz; dqb[2 * H + j] = dn * r;
                    if (da) { da[j] += dr; da[H + j] += dz; da[2 * H + j] += dn; }
                    ch[o] = dh * z; /* the direct path h' -> h; the GEMM below adds dq W_hh */
                } else {
                    dqb[j] = dh * (1.0f - h[o] * h[o]);
                    if (da) da[j] += dqb[j];
                }
            }
        }
        if (dw) sdl_sgemm(true, false, GH, H, B, 1.0f, dq, GH, hp, H, 1.0f, dw, H);
        if (db) for (int64_t b = 0; b < B; b++) for (int64_t j = 0; j < GH; j++) db[j] += dq[b * GH + j];
        sdl_sgemm(false, false, B, H, GH, 1.0f, dq, GH, w, H, mode == SDL_RNN_GRU ? 1.0f : 0.0f, ch, H);
    }
    if (ds0) {
        for (int64_t o = 0; o < BH; o++) ds0[o] += ch[o];
        if (mode == SDL_RNN_LSTM) for (int64_t o = 0; o < BH; o++) ds0[BH + o] += cc[o];
    }
}

/* the op: checks the shapes, keeps room for the gates, runs forward */
static sdl_tensor *sdl__rnn_scan(sdl_rnn_mode mode, sdl_tensor *xw, sdl_tensor *w_hh, sdl_tensor *b_hh, sdl_tensor *s0, bool batch_first) {
    if (!xw || !w_hh || !b_hh) return NULL;
    int64_t G = mode == SDL_RNN_LSTM ? 4 : mode == SDL_RNN_GRU ? 3 : 1, H = w_hh->ndim == 2 ? w_hh->shape[1] : 0;
    if (xw->ndim != 3 || w_hh->ndim != 2 || H < 1 || w_hh->shape[0] != G * H || xw->shape[2] != G * H || b_hh->numel != G * H ||
        xw->shape[0] < 1 || xw->shape[1] < 1)
        return (sdl_tensor *)sdl__shape_error("rnn", "wants xw (T, B, G*H) or (B, T, G*H), w_hh (G*H, H), b_hh (G*H)", xw, w_hh);
    int64_t T = xw->shape[batch_first ? 1 : 0], B = xw->shape[batch_first ? 0 : 1];
    if (xw->device != SDL_CPU) {
        sdl_fail(SDL_ERR_DEVICE, "rnn: the recurrence has no kernel on device %d yet (CPU only)", (int)xw->device);
        return NULL;
    }
    if (s0 && (s0->numel != (mode == SDL_RNN_LSTM ? 2 : 1) * B * H))
        return (sdl_tensor *)sdl__shape_error("rnn", "initial state wants (B, H) ((2, B, H) for the LSTM)", s0, xw);
    sdl_node *n = sdl__op_begin(SDL_OP_RNN, sdl_shape3(T + (mode == SDL_RNN_LSTM), B, H), xw, w_hh, b_hh, s0);
    if (!n) return NULL;
    n->attr.rnn.mode = (int)mode;
    n->attr.rnn.batch_first = batch_first;
    /* gates (T, B, G H), c or q_n (T, B, H), scratch q (B, G H), zeros (2, B, H) */
    if (!sdl__saved(n, (size_t)(T * B * (G * H + H) + B * G * H + 2 * B * H) * sizeof(float))) return NULL;
    return sdl__op_run(n);
}

/* ---- multi-head attention with an additive mask, for sdl_mha_layer. The sources are the
   in-projection outputs, rows of 3E = [q | k | v] (PyTorch's in_proj_weight order): q from
   qs (B, Tq, 3E), k from ks and v from vs (B, Tk, 3E), or (T, B, 3E) each when time-major
   (!batch_first); self-attention passes one tensor three times. mask (B, Tq, Tk) is added
   to the scores (-inf: not attended) or NULL. With head h's d = E / n_head columns:
   S = Q K^T / sqrt(d) + mask,  P = softmax_rows(S),  O = P V  -> out (B, Tq, E) or (Tq, B, E)
   dV += P^T dO;  dP = dO V^T;  dS = P (dP - rowsum(dP P));  dQ += dS K / sqrt(d);  dK += dS^T Q / sqrt(d)
   A row whose keys are all masked attends to nothing: P = 0 and O = 0 (PyTorch gives NaN).
   saved: P (B, n_head, Tq, Tk). */
typedef struct sdl__mha_dims { int64_t B, Tq, Tk, E, d, nh; bool bf; } sdl__mha_dims;
static sdl__mha_dims sdl__mha_dims_of(const sdl_node *n) {
    sdl__mha_dims m;
    m.bf = n->attr.mha.batch_first;
    m.nh = n->attr.mha.n_head;
    m.B = n->in[0]->shape[m.bf ? 0 : 1];
    m.Tq = n->in[0]->shape[m.bf ? 1 : 0];
    m.Tk = n->in[1]->shape[m.bf ? 1 : 0];
    m.E = n->in[0]->shape[2] / 3;
    m.d = m.E / m.nh;
    return m;
}
/* where (batch b, head h, part p: 0 q, 1 k, 2 v) starts in a source with T rows per batch,
   and the stride between its rows */
static int64_t sdl__mha_at(const sdl__mha_dims *m, int64_t T, int64_t width, int64_t b, int64_t h, int64_t p) {
    return (m->bf ? b * T * width : b * width) + p * m->E + h * m->d;
}
static int64_t sdl__mha_ld(const sdl__mha_dims *m, int64_t width) { return m->bf ? width : m->B * width; }

static void sdl__mha_fwd(sdl_node *n) {
    sdl__mha_dims m = sdl__mha_dims_of(n);
    const int64_t W = 3 * m.E, ld = sdl__mha_ld(&m, W), ldo = sdl__mha_ld(&m, m.E);
    const float *mask = n->nin > 3 ? sdl_f32(n->in[3]) : NULL;
    float scale = 1.0f / sqrtf((float)m.d);
    for (int64_t b = 0; b < m.B; b++)
        for (int64_t h = 0; h < m.nh; h++) {
            const float *q = sdl_f32(n->in[0]) + sdl__mha_at(&m, m.Tq, W, b, h, 0);
            const float *k = sdl_f32(n->in[1]) + sdl__mha_at(&m, m.Tk, W, b, h, 1);
            const float *v = sdl_f32(n->in[2]) + sdl__mha_at(&m, m.Tk, W, b, h, 2);
            float *P = (float *)n->saved + (b * m.nh + h) * m.Tq * m.Tk, *o = sdl_f32(n->out) + sdl__mha_at(&m, m.Tq, m.E, b, h, 0);
            sdl_sgemm(false, true, m.Tq, m.Tk, m.d, scale, q, ld, k, ld, 0.0f, P, m.Tk);
            for (int64_t i = 0; i < m.Tq; i++) {
                float *p = P + i * m.Tk, mx = -INFINITY, s = 0.0f;
                if (mask) for (int64_t j = 0; j < m.Tk; j++) p[j] += mask[(b * m.Tq + i) * m.Tk + j];
                for (int64_t j = 0; j < m.Tk; j++) mx = p[j] > mx ? p[j] : mx;
                if (mx == -INFINITY) { memset(p, 0, (size_t)m.Tk * sizeof(float)); continue; } /* all masked */
                for (int64_t j = 0; j < m.Tk; j++) { p[j] = expf(p[j] - mx); s += p[j]; }
                for (int64_t j = 0; j < m.Tk; j++) p[j] /= s;
            }
            sdl_sgemm(false, false, m.Tq, m.d, m.Tk, 1.0f, P, m.Tk, v, ld, 0.0f, o, ldo);
        }
}
static void sdl__mha_bwd(sdl_node *n) {
    sdl__mha_dims m = sdl__mha_dims_of(n);
    const int64_t W = 3 * m.E, ld = sdl__mha_ld(&m, W), ldo = sdl__mha_ld(&m, m.E);
    float scale = 1.0f / sqrtf((float)m.d);
    float *dS = (float *)sdl_arena_alloc((size_t)(m.Tq * m.Tk) * sizeof(float));
    if (!dS) return;
    for (int64_t b = 0; b < m.B; b++)
        for (int64_t h = 0; h < m.nh; h++) {
            int64_t aq = sdl__mha_at(&m, m.Tq, W, b, h, 0), ak = sdl__mha_at(&m, m.Tk, W, b, h, 1), av = sdl__mha_at(&m, m.Tk, W, b, h, 2);
            const float *q = sdl_f32(n->in[0]) + aq, *k = sdl_f32(n->in[1]) + ak, *v = sdl_f32(n->in[2]) + av;
            const float *P = (const float *)n->saved + (b * m.nh + h) * m.Tq * m.Tk;
            const float *dO = n->out->grad + sdl__mha_at(&m, m.Tq, m.E, b, h, 0);
            if (n->in[2]->requires_grad) sdl_sgemm(true, false, m.Tk, m.d, m.Tq, 1.0f, P, m.Tk, dO, ldo, 1.0f, n->in[2]->grad + av, ld);
            sdl_sgemm(false, true, m.Tq, m.Tk, m.d, 1.0f, dO, ldo, v, ld, 0.0f, dS, m.Tk);
            for (int64_t i = 0; i < m.Tq; i++) {
                const float *p = P + i * m.Tk;
                float *ds = dS + i * m.Tk, s = 0.0f;
                for (int64_t j = 0; j < m.Tk; j++) s += ds[j] * p[j];
                for (int64_t j = 0; j < m.Tk; j++) ds[j] = p[j] * (ds[j] - s);
            }
            if (n->in[0]->requires_grad) sdl_sgemm(false, false, m.Tq, m.d, m.Tk, scale, dS, m.Tk, k, ld, 1.0f, n->in[0]->grad + aq, ld);
            if (n->in[1]->requires_grad) sdl_sgemm(true, false, m.Tk, m.d, m.Tq, scale, dS, m.Tk, q, ld, 1.0f, n->in[1]->grad + ak, ld);
        }
}
static sdl_tensor *sdl__mha_attend(sdl_tensor *qs, sdl_tensor *ks, sdl_tensor *vs, sdl_tensor *mask, int n_head, bool batch_first) {
    if (!qs || !ks || !vs) return NULL;
    int bd = batch_first ? 0 : 1, td = batch_first ? 1 : 0;
    if (qs->ndim != 3 || ks->ndim != 3 || vs->ndim != 3 || qs->shape[2] % (3 * n_head) != 0 || ks->shape[2] != qs->shape[2] ||
        vs->shape[2] != qs->shape[2] || ks->shape[bd] != qs->shape[bd] || vs->shape[bd] != qs->shape[bd] || vs->shape[td] != ks->shape[td])
        return (sdl_tensor *)sdl__shape_error("mha", "wants q, k, v sources (B, T, 3E) (or (T, B, 3E)) with one B, one Tk, E % n_head == 0", qs, ks);
    int64_t B = qs->shape[bd], Tq = qs->shape[td], Tk = ks->shape[td], E = qs->shape[2] / 3;
    if (mask && (mask->numel != B * Tq * Tk || mask->dtype != SDL_F32))
        return (sdl_tensor *)sdl__shape_error("mha", "the mask wants f32 (B, Tq, Tk)", mask, qs);
    if (qs->device != SDL_CPU) { sdl_fail(SDL_ERR_DEVICE, "mha: masked attention has no kernel on device %d yet (CPU only)", (int)qs->device); return NULL; }
    sdl_node *n = sdl__op_begin(SDL_OP_MHA, batch_first ? sdl_shape3(B, Tq, E) : sdl_shape3(Tq, B, E), qs, ks, vs, mask);
    if (!n) return NULL;
    n->attr.mha.n_head = n_head;
    n->attr.mha.batch_first = batch_first;
    return sdl__saved(n, (size_t)(B * n_head * Tq * Tk) * sizeof(float)) ? sdl__op_run(n) : NULL;
}

/* >>ops-loss (cross entropy, mse, nll, bce_with_logits) */

/* ---- cross entropy from logits (B, C), targets i32 (B), smoothing s:
   q = (1-s) onehot(t) + s/C;  loss = mean_b -sum_c q_c log softmax(x)_c
   dlogits_bc += (softmax(x)_bc - q_bc) / B.
   Rows split over the pool (GPT-2's 256 x 50257 logits took 134 ms on one thread, 9% of a
   step): row b's loss into loss[b], then added in row order, so any thread count gives the
   same bits. */
typedef struct sdl__ce_job { sdl_node *n; double *loss; } sdl__ce_job;
/* e^x within ~2 float ulps in plain arithmetic (Cephes' expf: x = k ln2 + r, |r| <= ln2/2,
   a degree-6 polynomial for e^r, 2^k from k's bits), so a loop of it vectorises where a loop
   calling expf or exp does not: the softmax below ran ~15 ns an element in double exp.
   0 below -88 (e^-88 is a float denormal), inf above 88.7, NaN stays NaN. */
static float sdl__expf_vec(float x) { /* (selects between computed values only: gcc if-converts those) */
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -88.0f ? -88.0f : xc;
    xc = xc == xc ? xc : 0.0f; /* NaN: a defined k below; y is NaN again at the end */
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = (xc - k * 0.693359375f) + k * 2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = q * scale;
    y = x < -88.0f ? 0.0f : y;
    y = x > 88.72f ? INFINITY : y;
    return x == x ? y : x;
}
/* the largest of x[0..n) (NaNs skipped, as a > b skips them) */
static float sdl__vmax(const float *x, int64_t n) {
    float mx = x[0];
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    if (n >= 16) {
        __m512 m = _mm512_loadu_ps(x);
        for (i = 16; i + 16 <= n; i += 16) /* (a NaN in x: m kept; maskz: g++ 12 warns inside _mm512_max_ps) */
            m = _mm512_maskz_max_ps((__mmask16)0xFFFF, _mm512_loadu_ps(x + i), m);
        float lanes[16];
        _mm512_storeu_ps(lanes, m);
        for (int k = 0; k < 16; k++) mx = lanes[k] > mx ? lanes[k] : mx;
    }
#endif
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}
/* one row: p = softmax(row) (float exps, summed in double in a fixed order), its loss */
static double sdl__ce_row(const float *SDL_RESTRICT row, float *SDL_RESTRICT p, int64_t C, int32_t t, float s) {
    float mx = sdl__vmax(row, C);
    for (int64_t c = 0; c < C; c++) p[c] = sdl__expf_vec(row[c] - mx);
    double zs = sdl__dsum_row(p, C), logz = mx + log(zs);
    float inv = (float)(1.0 / zs);
    for (int64_t c = 0; c < C; c++) p[c] *= inv;
    /* -sum_c q_c log p_c with log p_c = row_c - logz */
    double smooth = s != 0.0f ? (double)s / (double)C * (sdl__dsum_row(row, C) - (double)C * logz) : 0.0;
    return -(1.0 - s) * (row[t] - logz) - smooth;
}
static void sdl__ce_fwd_rows(void *ctx, int64_t b0, int64_t b1) {
    const sdl__ce_job *j = (const sdl__ce_job *)ctx;
    sdl_tensor *x = j->n->in[0];
    int64_t C = x->numel / x->shape[0];
    const int32_t *t = sdl_i32(j->n->in[1]);
    for (int64_t b = b0; b < b1; b++)
        j->loss[b] = sdl__ce_row(sdl_f32(x) + b * C, (float *)j->n->saved + b * C, C, t[b], j->n->attr.scalar.alpha);
}
static void sdl__ce_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->numel / (B ? B : 1);
    sdl__ce_job j = {n, (double *)sdl__arena_bump((size_t)(B ? B : 1) * sizeof(double))};
    if (!j.loss) { sdl__kernel_err = sdl_last_result(); return; }
    sdl_parallel_for_work(B, (double)C * 2.0, sdl__ce_fwd_rows, &j); /* a vector exp an element */
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) total += j.loss[b];
    sdl_f32(n->out)[0] = (float)(total / (double)(B ? B : 1));
}
static void sdl__ce_bwd_rows(void *ctx, int64_t b0, int64_t b1) {
    sdl_node *n = (sdl_node *)ctx;
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->numel / B;
    const int32_t *t = sdl_i32(n->in[1]);
    float s = n->attr.scalar.alpha, g = n->out->grad[0] / (float)B;
    const float *prob = (const float *)n->saved;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t c = 0; c < C; c++) {
            float q = s / (float)C + (c == t[b] ? 1.0f - s : 0.0f);
            x->grad[b * C + c] += g * (prob[b * C + c] - q);
        }
}
static void sdl__ce_bwd(sdl_node *n) {
    int64_t B = n->in[0]->shape[0];
    sdl_parallel_for_work(B, (double)(n->in[0]->numel / (B ? B : 1)) * 2.0, sdl__ce_bwd_rows, n);
}

/* targets: i32, one per row of x (B, C), each in [0, C) */
static bool sdl__check_targets(const char *op, const sdl_tensor *x, const sdl_tensor *t) {
    if (x->ndim != 2 || t->dtype != SDL_I32 || t->numel != x->shape[0]) {
        sdl__shape_error(op, "wants logits (B, C) and i32 targets (B)", x, t);
        return false;
    }
    if (t->device != SDL_CPU) return true; /* device kernels turn a bad target into a NaN loss */
    const int32_t *ids = sdl_i32(t);
    for (int64_t i = 0; i < t->numel; i++)
        if (ids[i] < 0 || ids[i] >= x->shape[1]) {
            sdl_fail(SDL_ERR_ARG, "%s: target %d at row %lld is outside [0, %lld)", op, ids[i], (long long)i, (long long)x->shape[1]);
            return false;
        }
    return true;
}

SDL_API sdl_tensor *sdl_cross_entropy(sdl_tensor *logits, sdl_tensor *targets, float label_smoothing) {
    if (sdl__any_null(logits, targets)) return NULL;
    if (!sdl__check_targets("cross_entropy", logits, targets)) return NULL;
    sdl_node *n = sdl__op_begin(SDL_OP_CROSS_ENTROPY, sdl_shapen(0, NULL), logits, targets, NULL, NULL);
    if (!n) return NULL;
    n->attr.scalar.alpha = label_smoothing;
    return sdl__saved(n, (size_t)logits->numel * sizeof(float)) ? sdl__op_run(n) : NULL;
}

SDL_API int64_t sdl_count_correct(const sdl_tensor *logits, const sdl_tensor *targets) {
    if (!logits || !targets || logits->ndim != 2 || targets->numel != logits->shape[0]) return 0;
    if (logits->device != SDL_CPU || targets->device != SDL_CPU) { /* count on host copies */
        sdl_tensor *hl = sdl_arena_tensor(sdl_tensor_shape(logits), logits->dtype);
        sdl_tensor *ht = sdl_arena_tensor(sdl_tensor_shape(targets), targets->dtype);
        const sdl_backend *bl = sdl_get_backend(logits->device), *bt = sdl_get_backend(targets->device);
        if (!hl || !ht || !bl || !bt) return 0;
        bl->copy(hl->data, logits->data, (size_t)logits->numel * sdl_dtype_size(logits->dtype), SDL_CPU, logits->device);
        bt->copy(ht->data, targets->data, (size_t)targets->numel * sdl_dtype_size(targets->dtype), SDL_CPU, targets->device);
        return sdl_count_correct(hl, ht);
    }
    int64_t B = logits->shape[0], C = logits->shape[1], correct = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *row = sdl_f32(logits) + b * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++) if (row[c] > row[best]) best = c;
        correct += best == sdl_i32(targets)[b];
    }
    return correct;
}

/* ---- mse: loss = mean (x - t)^2;  dx += 2 (x - t) / n,  dt -= 2 (x - t) / n */
static void sdl__mse_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]), *t = sdl_f32(n->in[1]);
    double s = 0.0;
    for (int64_t i = 0; i < n->in[0]->numel; i++) s += sdl__mse_elem(x[i], t[i]);
    sdl_f32(n->out)[0] = (float)(s / (double)(n->in[0]->numel ? n->in[0]->numel : 1));
}
static void sdl__mse_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *t = n->in[1];
    float *dx = x->requires_grad ? x->grad : NULL, *dt = t->requires_grad ? t->grad : NULL;
    float g = 2.0f * n->out->grad[0] / (float)(x->numel ? x->numel : 1);
    for (int64_t i = 0; i < x->numel; i++) {
        float d = g * (sdl_f32(x)[i] - sdl_f32(t)[i]);
        if (dx) dx[i] += d;
        if (dt) dt[i] -= d;
    }
}
SDL_API sdl_tensor *sdl_mse_loss(sdl_tensor *x, sdl_tensor *targets) {
    if (sdl__any_null(x, targets)) return NULL;
    if (x->dtype != SDL_F32 || targets->dtype != SDL_F32) {
        sdl_fail(SDL_ERR_ARG, "mse_loss: input and targets must be f32 (got %s and %s)", sdl__dtype_name(x->dtype), sdl__dtype_name(targets->dtype));
        return NULL;
    }
    if (x->numel != targets->numel) return (sdl_tensor *)sdl__shape_error("mse_loss", "input and target sizes differ", x, targets);
    return sdl__op_run(sdl__op_begin(SDL_OP_MSE, sdl_shapen(0, NULL), x, targets, NULL, NULL));
}

/* ---- nll: log_probs (B, C), targets i32 (B): loss = -mean_b log_probs[b, t_b]
   dlog_probs[b, t_b] += -1/B */
static void sdl__nll_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->shape[1];
    const int32_t *t = sdl_i32(n->in[1]);
    double s = 0.0;
    for (int64_t b = 0; b < B; b++) s -= sdl_f32(x)[b * C + t[b]];
    sdl_f32(n->out)[0] = (float)(s / (double)(B ? B : 1));
}
static void sdl__nll_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->shape[1];
    const int32_t *t = sdl_i32(n->in[1]);
    float g = n->out->grad[0] / (float)(B ? B : 1);
    for (int64_t b = 0; b < B; b++) x->grad[b * C + t[b]] -= g;
}
SDL_API sdl_tensor *sdl_nll_loss(sdl_tensor *log_probs, sdl_tensor *targets) {
    if (sdl__any_null(log_probs, targets)) return NULL;
    if (!sdl__check_targets("nll_loss", log_probs, targets)) return NULL;
    return sdl__op_run(sdl__op_begin(SDL_OP_NLL, sdl_shapen(0, NULL), log_probs, targets, NULL, NULL));
}

/* ---- binary cross entropy from logits x and float targets t (same shape), mean over all n:
   l = max(x, 0) - x t + log(1 + e^-|x|)   (never overflows; equals -t log s - (1-t) log(1-s))
   dx += (sigmoid(x) - t) / n;  dt += -x / n */
static void sdl__bce_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]), *t = sdl_f32(n->in[1]);
    int64_t N = n->in[0]->numel;
    double s = 0.0;
    for (int64_t i = 0; i < N; i++) s += sdl__bce_elem(x[i], t[i]);
    sdl_f32(n->out)[0] = (float)(s / (double)(N ? N : 1));
}
static void sdl__bce_bwd(sdl_node *n) {
    sdl_tensor *xt = n->in[0], *tt = n->in[1];
    const float *x = sdl_f32(xt), *t = sdl_f32(tt);
    int64_t N = xt->numel;
    float g = n->out->grad[0] / (float)(N ? N : 1);
    for (int64_t i = 0; i < N; i++) {
        if (xt->requires_grad) xt->grad[i] += g * sdl__bce_grad(x[i], t[i]);
        if (tt->requires_grad) tt->grad[i] -= g * x[i];
    }
}
SDL_API sdl_tensor *sdl_bce_with_logits(sdl_tensor *logits, sdl_tensor *targets) {
    if (sdl__any_null(logits, targets)) return NULL;
    if (!sdl_shape_equal(sdl_tensor_shape(logits), sdl_tensor_shape(targets)) || targets->dtype != SDL_F32)
        return (sdl_tensor *)sdl__shape_error("bce_with_logits", "wants float targets shaped like the logits", logits, targets);
    return sdl__op_run(sdl__op_begin(SDL_OP_BCE_LOGITS, sdl_shapen(0, NULL), logits, targets, NULL, NULL));
}

/* ----------------------------------------------------------------------------------------
   >>function: user-defined ops (see >>decl-function) and sdl_gradcheck
   ---------------------------------------------------------------------------------------- */
/* runs a callback with grad mode off; an error comes back as "function 'name' forward
   failed: what the callback said" through sdl__kernel_err */
static void sdl__function_call(sdl_node *n, bool backward) {
    const sdl_function *fn = n->attr.func.fn;
    bool no_grad = sdl__g.no_grad;
    sdl__g.no_grad = true; /* ops inside a callback are not recorded */
    sdl_clear_error();
    sdl_result r = backward ? fn->backward(n->attr.func.ctx, n->out, n->nin, n->in)
                            : fn->forward(n->attr.func.ctx, n->out, n->nin, n->in);
    sdl__g.no_grad = no_grad;
    if (r == SDL_OK) return;
    char said[sizeof sdl__err_msg];
    snprintf(said, sizeof said, "%s", sdl__err_msg[0] ? sdl__err_msg : "no message");
    sdl__kernel_err = sdl_fail(r, "function '%s' %s failed: %s", fn->name, backward ? "backward" : "forward", said);
}

static void sdl__function_fwd(sdl_node *n) {
    sdl_node *on_tape = n->out->node;
    n->out->node = n; /* sdl_function_save finds the node through out */
    sdl__function_call(n, false);
    n->out->node = on_tape;
}

static void sdl__function_bwd(sdl_node *n) {
    if (n->attr.func.fn->backward) sdl__function_call(n, true);
    else sdl__kernel_err = sdl_fail(SDL_ERR_STATE, "function '%s' has no backward", n->attr.func.fn->name);
}

SDL_API sdl_tensor *sdl_function_apply(const sdl_function *fn, sdl_shape out_shape, int nin, sdl_tensor *const *in, void *ctx) {
    if (!fn || !fn->name || !fn->forward) {
        sdl_fail(SDL_ERR_ARG, "function_apply: needs an sdl_function with a name and a forward");
        return NULL;
    }
    if (nin < 1 || !in) {
        sdl_fail(SDL_ERR_ARG, "function '%s': needs at least one input (nin %d)", fn->name, nin);
        return NULL;
    }
    for (int i = 0; i < nin; i++) {
        if (!in[i]) return NULL; /* an earlier op failed: keep its error */
        if (in[i]->device != SDL_CPU) {
            sdl_fail(SDL_ERR_DEVICE, "function '%s': input %d is not on the CPU (user functions run there)", fn->name, i);
            return NULL;
        }
    }
    sdl_node *n = sdl__op_begin_n(SDL_OP_FUNCTION, out_shape, nin, in);
    if (!n) return NULL;
    n->attr.func.fn = fn;
    n->attr.func.ctx = ctx;
    return sdl__op_run(n);
}

SDL_API void *sdl_function_save(sdl_tensor *out, size_t bytes) {
    sdl_node *n = out ? out->node : NULL;
    if (!n || n->op != SDL_OP_FUNCTION || n->out != out) {
        sdl_fail(SDL_ERR_STATE, "function_save: call it from a function's forward, on its out");
        return NULL;
    }
    if (n->saved) {
        sdl_fail(SDL_ERR_STATE, "function '%s': function_save called twice (save one struct)", n->attr.func.fn->name);
        return NULL;
    }
    return sdl__saved(n, bytes);
}

SDL_API void *sdl_function_saved(const sdl_tensor *out) {
    return out && out->node && out->node->op == SDL_OP_FUNCTION ? out->node->saved : NULL;
}

/* gradcheck's fixed weights v in [-1, 1), from the hash (the global RNG is left alone) */
static float sdl__gc_w(int64_t j) {
    return (float)(sdl__hash3(0x6C7Cu, 0, (uint64_t)j) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

/* L = sum(v * y) in double */
static double sdl__gc_loss(const sdl_tensor *y) {
    double L = 0.0;
    for (int64_t j = 0; j < y->numel; j++) L += (double)sdl__gc_w(j) * sdl_f32(y)[j];
    return L;
}

typedef struct sdl__gc {
    sdl_gradcheck_fn f;
    void *user;
    int nin;
    sdl_tensor *const *in;
    double eps, atol, rtol;
    int64_t numel;                  /* f's output size */
    double max_err, excess;         /* largest |analytic - numeric|; largest err / tolerance */
    int worst_in;                   /* where that excess is, and its two values */
    int64_t worst_j;
    double worst_a, worst_n;
} sdl__gc;

static bool sdl__gc_checked(const sdl_tensor *t) { return t->requires_grad && t->dtype == SDL_F32; }

/* f(in) as a CPU f32 tensor of g->numel elements (any size while g->numel < 0), else NULL */
static sdl_tensor *sdl__gc_eval(const sdl__gc *g) {
    sdl_tensor *y = g->f(g->user, g->nin, g->in);
    if (!y) {
        char said[sizeof sdl__err_msg];
        snprintf(said, sizeof said, "%s", sdl__err_msg);
        sdl_fail(sdl__err_code ? sdl__err_code : SDL_ERR_ARG, "gradcheck: f returned NULL: %s", said);
    } else if (y->device != SDL_CPU || y->dtype != SDL_F32 || (g->numel >= 0 && y->numel != g->numel)) {
        sdl_fail(SDL_ERR_ARG, "gradcheck: f must give a CPU f32 tensor of the same size each call");
        y = NULL;
    }
    return y;
}

/* dL/d(input) from sdl_backward into ga, the checked inputs one after another. Their grads
   are zeroed for it (backup keeps them; old keeps the pointers) and put back after. */
static bool sdl__gc_analytic(sdl__gc *g, double *ga, float *backup, float **old) {
    int64_t off = 0;
    for (int i = 0; i < g->nin; i++) {
        if (!sdl__gc_checked(g->in[i])) continue;
        old[i] = g->in[i]->grad;
        if (old[i]) memcpy(backup + off, old[i], (size_t)g->in[i]->numel * sizeof(float));
        if (old[i]) memset(old[i], 0, (size_t)g->in[i]->numel * sizeof(float));
        off += g->in[i]->numel;
    }
    sdl_tensor *y = sdl__gc_eval(g), *v = y ? sdl_arena_tensor(sdl_tensor_shape(y), SDL_F32) : NULL;
    bool ok = v && (y->requires_grad || sdl_fail(SDL_ERR_ARG, "gradcheck: f's output needs no gradient "
                                                 "(grad mode off, or no checked input reaches it)") == SDL_OK);
    for (int64_t j = 0; ok && j < v->numel; j++) sdl_f32(v)[j] = sdl__gc_w(j);
    ok = ok && sdl_backward(sdl_sum(sdl_mul(y, v))) == SDL_OK;
    if (!ok) { sdl__g.tape = NULL; sdl__g.tape_id++; } /* drop what a failed f or backward left */
    off = 0;
    for (int i = 0; i < g->nin; i++) {
        if (!sdl__gc_checked(g->in[i])) continue;
        for (int64_t j = 0; ok && g->in[i]->grad && j < g->in[i]->numel; j++) ga[off + j] = g->in[i]->grad[j];
        if (old[i]) memcpy(old[i], backup + off, (size_t)g->in[i]->numel * sizeof(float));
        g->in[i]->grad = old[i];
        off += g->in[i]->numel;
    }
    g->numel = ok ? y->numel : -1;
    return ok;
}

/* central differences of L for each element of in[i], compared with ga */
static bool sdl__gc_numeric(sdl__gc *g, int i, const double *ga) {
    float *x = sdl_f32(g->in[i]);
    for (int64_t j = 0; j < g->in[i]->numel; j++) {
        float x0 = x[j];
        double h = g->eps * (1.0 + fabs((double)x0));
        float xp = (float)(x0 + h), xm = (float)(x0 - h);
        x[j] = xp;
        sdl_tensor *yp = sdl__gc_eval(g);
        x[j] = xm;
        sdl_tensor *ym = yp ? sdl__gc_eval(g) : NULL;
        x[j] = x0;
        if (!ym) return false;
        double num = (sdl__gc_loss(yp) - sdl__gc_loss(ym)) / ((double)xp - (double)xm);
        double err = fabs(ga[j] - num), excess = err / (g->atol + g->rtol * fabs(num));
        if (!(err <= g->max_err) && !isnan(g->max_err)) g->max_err = err; /* a NaN sticks */
        if (!(excess <= g->excess) && !isnan(g->excess)) {
            g->excess = excess;
            g->worst_in = i;
            g->worst_j = j;
            g->worst_a = ga[j];
            g->worst_n = num;
        }
    }
    return true;
}

SDL_API bool sdl_gradcheck(sdl_gradcheck_fn f, void *user, int nin, sdl_tensor *const *in,
                           const sdl_gradcheck_desc *desc, double *max_err) {
    sdl__gc g = {f, user, nin, in, 1e-3, 1e-3, 1e-2, -1, 0.0, 0.0, -1, 0, 0.0, 0.0};
    if (desc && desc->eps > 0) g.eps = desc->eps;
    if (desc && desc->atol > 0) g.atol = desc->atol;
    if (desc && desc->rtol > 0) g.rtol = desc->rtol;
    if (max_err) *max_err = 0.0;
    if (!f || nin < 1 || !in) return sdl_fail(SDL_ERR_ARG, "gradcheck: needs f and at least one input"), false;
    if (sdl__g.tape) return sdl_fail(SDL_ERR_STATE, "gradcheck: the tape holds ops not yet backwarded (call it before building a loss, or after sdl_backward)"), false;
    int64_t total = 0;
    for (int i = 0; i < nin; i++) {
        if (!in[i] || in[i]->device != SDL_CPU) return sdl_fail(SDL_ERR_ARG, "gradcheck: input %d is NULL or not on the CPU", i), false;
        if (sdl__gc_checked(in[i])) total += in[i]->numel;
    }
    if (!total) return sdl_fail(SDL_ERR_ARG, "gradcheck: no input is an f32 tensor that requires a gradient"), false;
    double *ga = (double *)sdl__calloc((size_t)total, sizeof(double));
    float *backup = (float *)sdl__calloc((size_t)total, sizeof(float));
    float **old = (float **)sdl__calloc((size_t)nin, sizeof(float *));
    bool no_grad = sdl__g.no_grad;
    sdl__g.no_grad = false;
    bool ok = ga && backup && old && sdl__gc_analytic(&g, ga, backup, old);
    sdl__g.no_grad = true;
    int64_t off = 0;
    for (int i = 0; ok && i < nin; i++) {
        if (!sdl__gc_checked(in[i])) continue;
        ok = sdl__gc_numeric(&g, i, ga + off);
        off += in[i]->numel;
    }
    sdl__g.no_grad = no_grad;
    SDL_DEALLOC(ga);
    SDL_DEALLOC(backup);
    SDL_DEALLOC(old);
    if (max_err) *max_err = g.max_err;
    if (ok && !(g.excess <= 1.0))
        ok = sdl_fail(SDL_ERR_STATE, "gradcheck: input %d element %lld: backward gives %.6g, finite differences %.6g "
                      "(|diff| %.3g > atol %g + rtol %g |numeric|)", g.worst_in, (long long)g.worst_j, g.worst_a,
                      g.worst_n, fabs(g.worst_a - g.worst_n), g.atol, g.rtol) == SDL_OK;
    return ok;
}

/* >>cpu-table */
static void sdl__profile_init(void);
static void sdl__cpu_alloc_copy(void *dst, const void *src, size_t bytes, sdl_device dd, sdl_device sd) {
    SDL__UNUSED(dd);
    SDL__UNUSED(sd);
    memcpy(dst, src, bytes);
}
static void sdl__cpu_memset0(void *dst, size_t bytes) { memset(dst, 0, bytes); }
static void sdl__cpu_scale(float *x, int64_t n, float s);   /* >>optim */
static double sdl__cpu_sumsq(const float *x, int64_t n);

static void sdl__cpu_init(void) {
    sdl_backend *be = &sdl__backends[SDL_CPU];
    be->name = "cpu";
    be->alloc = sdl__aligned_alloc;
    be->dealloc = sdl__aligned_free;
    be->memset0 = sdl__cpu_memset0;
    be->copy = sdl__cpu_alloc_copy;
    be->arena_alloc = sdl_arena_alloc;
    be->scale = sdl__cpu_scale;
    be->sumsq = sdl__cpu_sumsq;
    sdl__profile_init();
#define SDL__CPU_KERNELS(NAME, name, f, b, cf, cb) be->forward[SDL_OP_##NAME] = f; be->backward[SDL_OP_##NAME] = b;
    SDL_OPS(SDL__CPU_KERNELS)
#undef SDL__CPU_KERNELS
    be->grad_overwrite[SDL_OP_LINEAR] = be->grad_overwrite[SDL_OP_RELU] = 1;
    be->grad_overwrite[SDL_OP_CONV2D] = be->grad_overwrite[SDL_OP_CONV_TRANSPOSE2D] = 1;
    be->grad_overwrite[SDL_OP_MAX_POOL2D] = be->grad_overwrite[SDL_OP_AVG_POOL2D] = 1;
    (void)sdl__view_bwd;
}

/* ----------------------------------------------------------------------------------------
   >>model: parameters, buffers, packing into flat arrays
   ---------------------------------------------------------------------------------------- */
SDL_API sdl_model *sdl_model_new(uint64_t seed) {
    sdl_model *m = (sdl_model *)sdl__calloc(1, sizeof(sdl_model));
    if (!m) return NULL;
    m->training = true;
    sdl_manual_seed(seed);
    return m;
}

static void sdl__named_free(sdl_tensor *t) {
    if (!t) return;
    SDL_DEALLOC((void *)t->name);
    sdl_tensor_free(t);
}

/* the device a model's flat arrays live on (sdl_cuda_model_to_device moves them) */
static sdl_device sdl__model_device(const sdl_model *m) {
    if (m && m->nparams > 0) return m->params[0]->device;
    if (m && m->nbuffers > 0) return m->buffers[0]->device;
    return SDL_CPU;
}

SDL_API void sdl_model_free(sdl_model *m) {
    if (!m) return;
    const sdl_backend *be = sdl_get_backend(sdl__model_device(m));
    if (!be) sdl_log(SDL_LOG_WARN, "model_free: no backend for device %d: its arrays are not freed", (int)sdl__model_device(m));
    for (int i = 0; i < m->nparams; i++) {
        if (m->packed) { m->params[i]->data = NULL; m->params[i]->grad = NULL; }
        sdl__named_free(m->params[i]);
    }
    for (int i = 0; i < m->nbuffers; i++) {
        if (m->packed) m->buffers[i]->data = NULL;
        sdl__named_free(m->buffers[i]);
    }
    for (int i = 0; i < m->nmodules; i++) {
        SDL_DEALLOC(m->modules[i]->children);
        SDL_DEALLOC(m->modules[i]);
    }
    SDL_DEALLOC(m->modules);
    SDL_DEALLOC(m->params);
    SDL_DEALLOC(m->buffers);
    SDL_DEALLOC(m->param_offset);
    SDL_DEALLOC(m->grad_zero);
    if (be) {
        be->dealloc(m->param_data);
        be->dealloc(m->grad_data);
        be->dealloc(m->buffer_data);
    }
    SDL_DEALLOC(m);
}

/* appends p to a growable array of pointers (capacity = next power of two) */
static bool sdl__push_ptr(void ***arr, int *count, void *p) {
    int n = *count;
    if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        void **a = (void **)SDL_REALLOC(*arr, sizeof(void *) * (size_t)(n ? 2 * n : 1));
        if (!a) { sdl_fail(SDL_ERR_OOM, "out of memory"); return false; }
        *arr = a;
    }
    (*arr)[n] = p;
    *count = n + 1;
    return true;
}

static sdl_tensor *sdl__model_tensor(sdl_model *m, const char *name, sdl_shape shape, bool param) {
    if (!m || !name) { sdl_fail(SDL_ERR_ARG, "model_param: NULL model or name"); return NULL; }
    if (m->packed) { sdl_fail(SDL_ERR_STATE, "model: cannot add '%s' after the model was packed (first use)", name); return NULL; }
    if (sdl_model_find(m, name)) { sdl_fail(SDL_ERR_ARG, "model: a tensor named '%s' exists already", name); return NULL; }
    sdl_tensor *t = sdl_tensor_new(shape, SDL_F32);
    if (!t) return NULL;
    t->name = sdl__strdup(name);
    bool ok = t->name && (param ? sdl__push_ptr((void ***)&m->params, &m->nparams, t)
                                : sdl__push_ptr((void ***)&m->buffers, &m->nbuffers, t));
    if (!ok) { sdl__named_free(t); return NULL; }
    if (param) {
        t->requires_grad = true;
        t->model = m;
        t->param_index = m->nparams - 1;
        t->decay = true;
        m->param_floats += t->numel;
    } else {
        m->buffer_floats += t->numel;
    }
    return t;
}

SDL_API sdl_tensor *sdl_model_param(sdl_model *m, const char *name, sdl_shape shape, bool decay) {
    sdl_tensor *t = sdl__model_tensor(m, name, shape, true);
    if (t) t->decay = decay;
    return t;
}

SDL_API sdl_tensor *sdl_model_buffer(sdl_model *m, const char *name, sdl_shape shape) {
    return sdl__model_tensor(m, name, shape, false);
}

SDL_API sdl_tensor *sdl_model_find(sdl_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++) if (strcmp(m->params[i]->name, name) == 0) return m->params[i];
    for (int i = 0; i < m->nbuffers; i++) if (strcmp(m->buffers[i]->name, name) == 0) return m->buffers[i];
    return NULL;
}

SDL_API int64_t sdl_model_num_params(const sdl_model *m) { return m ? m->param_floats : 0; }

/* moves each tensor's data to base + offset; frees its own block */
static void sdl__pack_into(sdl_tensor **ts, int n, float *base, int64_t *offsets) {
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        sdl__parallel_bytes(base + off, ts[i]->data, (size_t)ts[i]->numel * sizeof(float));
        sdl__aligned_free(ts[i]->data);
        ts[i]->data = base + off;
        if (offsets) offsets[i] = off;
        off += ts[i]->numel;
    }
}

SDL_API sdl_result sdl_model_pack(sdl_model *m) {
    if (!m) return sdl_fail(SDL_ERR_ARG, "model_pack: NULL model");
    if (m->packed) return SDL_OK;
    m->param_data = (float *)sdl__aligned_alloc((size_t)m->param_floats * sizeof(float));
    m->grad_data = (float *)sdl__aligned_alloc((size_t)m->param_floats * sizeof(float));
    m->buffer_data = (float *)sdl__aligned_alloc((size_t)m->buffer_floats * sizeof(float));
    m->param_offset = (int64_t *)sdl__calloc((size_t)m->nparams + 1, sizeof(int64_t));
    m->grad_zero = (bool *)sdl__calloc((size_t)m->nparams + 1, sizeof(bool));
    if (!m->param_data || !m->grad_data || !m->buffer_data || !m->param_offset || !m->grad_zero) return sdl__err_code;
    sdl__parallel_bytes(m->grad_data, NULL, (size_t)m->param_floats * sizeof(float));
    for (int i = 0; i < m->nparams; i++) m->grad_zero[i] = true;
    sdl__pack_into(m->params, m->nparams, m->param_data, m->param_offset);
    sdl__pack_into(m->buffers, m->nbuffers, m->buffer_data, NULL);
    for (int i = 0; i < m->nparams; i++) m->params[i]->grad = m->grad_data + m->param_offset[i];
    m->param_offset[m->nparams] = m->param_floats;
    m->packed = true;
    return SDL_OK;
}

/* every gradient is zeros again: the next backward writes them instead of adding */
static void sdl__grads_zeroed(sdl_model *m) {
    for (int i = 0; i < m->nparams; i++) m->grad_zero[i] = true;
}

SDL_API void sdl_model_zero_grad(sdl_model *m) {
    if (!m || !m->packed) return;
    if (!m->grad_data) { /* arena gradients: forget them */
        for (int i = 0; i < m->nparams; i++) m->params[i]->grad = NULL, m->grad_zero[i] = false;
        return;
    }
    if (sdl__model_device(m) != SDL_CPU) {
        const sdl_backend *be = sdl_get_backend(sdl__model_device(m));
        if (!be) return;
        be->memset0(m->grad_data, (size_t)m->param_floats * sizeof(float));
    } else {
        memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
    }
    sdl__grads_zeroed(m);
}

SDL_API sdl_result sdl_model_arena_grads(sdl_model *m, bool on) {
    sdl_result r = m ? sdl_model_pack(m) : sdl_fail(SDL_ERR_ARG, "model_arena_grads: NULL model");
    if (r != SDL_OK) return r;
    if (sdl__model_device(m) != SDL_CPU) return sdl_fail(SDL_ERR_DEVICE, "model_arena_grads: CPU models only");
    if (on && m->grad_data) {
        sdl__aligned_free(m->grad_data);
        m->grad_data = NULL;
    } else if (!on && !m->grad_data) {
        m->grad_data = (float *)sdl__aligned_alloc((size_t)m->param_floats * sizeof(float));
        if (!m->grad_data) return sdl__err_code;
        memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
        for (int i = 0; i < m->nparams; i++) m->params[i]->grad = m->grad_data + m->param_offset[i];
        sdl__grads_zeroed(m);
        return SDL_OK;
    }
    sdl_model_zero_grad(m);
    return SDL_OK;
}

SDL_API sdl_result sdl_model_external_params(sdl_model *m, bool on) {
    sdl_result r = m ? sdl_model_pack(m) : sdl_fail(SDL_ERR_ARG, "model_external_params: NULL model");
    if (r != SDL_OK) return r;
    if (sdl__model_device(m) != SDL_CPU) return sdl_fail(SDL_ERR_DEVICE, "model_external_params: CPU models only");
    if (on && m->param_data) {
        sdl__aligned_free(m->param_data);
        m->param_data = NULL;
        for (int i = 0; i < m->nparams; i++) m->params[i]->data = NULL;
    } else if (!on && !m->param_data) {
        m->param_data = (float *)sdl__aligned_alloc((size_t)m->param_floats * sizeof(float));
        if (!m->param_data) return sdl__err_code;
        memset(m->param_data, 0, (size_t)m->param_floats * sizeof(float));
        for (int i = 0; i < m->nparams; i++) m->params[i]->data = m->param_data + m->param_offset[i];
    }
    return SDL_OK;
}

SDL_API void sdl_model_train(sdl_model *m, bool training) { if (m) m->training = training; }

SDL_API void sdl_model_set_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user) {
    if (!m) return;
    m->grad_hook = hook;
    m->grad_hook_user = user;
}
SDL_API void sdl_model_set_pre_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user) {
    if (!m) return;
    m->pre_grad_hook = hook;
    m->pre_grad_hook_user = user;
}

SDL_API sdl_result sdl_param_freeze(sdl_tensor *p, bool frozen) {
    if (!p || !p->model) return sdl_fail(SDL_ERR_ARG, "param_freeze: %s is not a model parameter", p ? "the tensor" : "NULL");
    p->requires_grad = !frozen;
    return SDL_OK;
}

static bool sdl__has_prefix(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

SDL_API sdl_result sdl_model_freeze(sdl_model *m, const char *prefix, bool frozen) {
    if (!m) return sdl_fail(SDL_ERR_ARG, "model_freeze: NULL model");
    int hits = 0;
    for (int i = 0; i < m->nparams; i++)
        if (sdl__has_prefix(m->params[i]->name, prefix ? prefix : "")) { m->params[i]->requires_grad = !frozen; hits++; }
    return hits ? SDL_OK : sdl_fail(SDL_ERR_ARG, "model_freeze: no parameter name starts with '%s'", prefix ? prefix : "");
}

/* ----------------------------------------------------------------------------------------
   >>layers: modules made on a model
   ---------------------------------------------------------------------------------------- */
/* a module in a zeroed block of `size` bytes (a layer's struct that starts with its sdl_module) */
static sdl_module *sdl__module_make(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd, size_t size) {
    if (!m) { sdl_fail(SDL_ERR_ARG, "module_new: NULL model"); return NULL; }
    sdl_module *l = (sdl_module *)sdl__calloc(1, size);
    if (!l) return NULL;
    if (!sdl__push_ptr((void ***)&m->modules, &m->nmodules, l)) { SDL_DEALLOC(l); return NULL; }
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    l->forward = fwd;
    l->model = m;
    return l;
}
SDL_API sdl_module *sdl_module_new(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd) {
    return sdl__module_make(m, kind, name, fwd, sizeof(sdl_module));
}

SDL_API sdl_tensor *sdl_forward(sdl_module *layer, sdl_tensor *x) {
    if (!layer || !x) return NULL;
    return layer->forward(layer, x);
}

static sdl_tensor *sdl__linear_layer_fwd(sdl_module *l, sdl_tensor *x);
static sdl_tensor *sdl__relu_layer_fwd(sdl_module *l, sdl_tensor *x);
static sdl_tensor *sdl__conv_layer_fwd(sdl_module *l, sdl_tensor *x);
/* runs the children in order; a linear or conv2d layer followed by a relu runs as one op
   (the same numbers, one pass over the activations less each way) */
static sdl_tensor *sdl__seq_forward(sdl_module *self, sdl_tensor *x) {
    for (int i = 0; i < self->nchildren && x; i++) {
        sdl_module *c = self->children[i];
        bool linear = c->forward == sdl__linear_layer_fwd, conv = c->forward == sdl__conv_layer_fwd;
        if ((linear || conv) && i + 1 < self->nchildren && self->children[i + 1]->forward == sdl__relu_layer_fwd) {
            x = linear ? sdl_linear_act(x, c->weight, c->bias, SDL_ACT_RELU)
                       : sdl_conv2d_act(x, c->weight, c->bias, c->stride, c->pad, SDL_ACT_RELU);
            i++; /* the relu ran inside */
        } else {
            x = c->forward(c, x);
        }
    }
    return x;
}
SDL_API sdl_module *sdl_sequential(sdl_model *m, const char *name) {
    return sdl_module_new(m, "sequential", name, sdl__seq_forward);
}
SDL_API sdl_result sdl_seq_add(sdl_module *seq, sdl_module *layer) {
    if (!seq || !layer) return sdl_fail(SDL_ERR_ARG, "seq_add: NULL %s (an earlier call failed: %s)", seq ? "layer" : "sequential", sdl__err_msg);
    return sdl__push_ptr((void ***)&seq->children, &seq->nchildren, layer) ? SDL_OK : SDL_ERR_OOM;
}

/* "fc1" + ".weight"; name "" gives "weight" */
static sdl_tensor *sdl__layer_param(sdl_module *l, const char *suffix, sdl_shape s, bool decay) {
    char full[96];
    snprintf(full, sizeof full, "%s%s%s", l->name, l->name[0] ? "." : "", suffix);
    return sdl_model_param(l->model, full, s, decay);
}

static sdl_tensor *sdl__linear_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_linear(x, l->weight, l->bias); }
SDL_API sdl_module *sdl_linear_layer(sdl_model *m, const char *name, int64_t in, int64_t out, bool bias) {
    sdl_module *l = sdl_module_new(m, "linear", name, sdl__linear_layer_fwd);
    if (!l) return NULL;
    l->weight = sdl__layer_param(l, "weight", sdl_shape2(out, in), true);
    if (!l->weight) return NULL;
    sdl_init_kaiming_uniform(l->weight, sqrtf(5.0f), in);
    if (bias) {
        l->bias = sdl__layer_param(l, "bias", sdl_shape1(out), false);
        if (!l->bias) return NULL;
        sdl_init_bias(l->bias, in);
    }
    return l;
}

static sdl_tensor *sdl__relu_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_relu(x); }
SDL_API sdl_module *sdl_relu_layer(sdl_model *m) { return sdl_module_new(m, "relu", "", sdl__relu_layer_fwd); }

static sdl_tensor *sdl__flatten_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_flatten(x); }
SDL_API sdl_module *sdl_flatten_layer(sdl_model *m) { return sdl_module_new(m, "flatten", "", sdl__flatten_layer_fwd); }

/* >>layers-conv */

/* conv layers: PyTorch's init, kaiming_uniform(a = sqrt 5) and bias U(+-1/sqrt(fan_in)) with
   fan_in = weight.size(1) * kh * kw: C_in*k*k for conv2d, C_out*k*k for conv_transpose2d */
static sdl_tensor *sdl__conv_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_conv2d(x, l->weight, l->bias, l->stride, l->pad); }
static sdl_tensor *sdl__convt_layer_fwd(sdl_module *l, sdl_tensor *x) {
    return sdl_conv_transpose2d(x, l->weight, l->bias, l->stride, l->pad, l->out_pad);
}
static sdl_module *sdl__conv_layer_make(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd,
                                        int64_t d0, int64_t d1, int kernel, int stride, int pad, int out_pad, bool bias) {
    if (d0 < 1 || d1 < 1 || kernel < 1 || stride < 1 || pad < 0 || out_pad < 0) {
        sdl_fail(SDL_ERR_ARG, "%s_layer '%s': channels %lld, %lld, kernel %d, stride %d, pad %d must be positive (pad >= 0)",
                 kind, name ? name : "", (long long)d0, (long long)d1, kernel, stride, pad);
        return NULL;
    }
    sdl_module *l = sdl_module_new(m, kind, name, fwd);
    if (!l) return NULL;
    l->kernel = kernel; l->stride = stride; l->pad = pad; l->out_pad = out_pad;
    int64_t fan_in = d1 * kernel * kernel;
    l->weight = sdl__layer_param(l, "weight", sdl_shape4(d0, d1, kernel, kernel), true);
    if (!l->weight) return NULL;
    sdl_init_kaiming_uniform(l->weight, sqrtf(5.0f), fan_in);
    if (bias) {
        l->bias = sdl__layer_param(l, "bias", sdl_shape1(fwd == sdl__conv_layer_fwd ? d0 : d1), false);
        if (!l->bias) return NULL;
        sdl_init_bias(l->bias, fan_in);
    }
    return l;
}
SDL_API sdl_module *sdl_conv2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel, int stride, int pad, bool bias) {
    return sdl__conv_layer_make(m, "conv2d", name, sdl__conv_layer_fwd, c_out, c_in, kernel, stride, pad, 0, bias);
}
SDL_API sdl_module *sdl_conv_transpose2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel,
                                               int stride, int pad, int out_pad, bool bias) {
    return sdl__conv_layer_make(m, "conv_transpose2d", name, sdl__convt_layer_fwd, c_in, c_out, kernel, stride, pad, out_pad, bias);
}

/* conv2d with separate strides and pads, dilation, groups, 'same' (see sdl_conv2d_ex):
   weight (C_out, C_in/groups, kh, kw), PyTorch's init with fan_in = C_in/groups kh kw */
typedef struct sdl__conv_ex { sdl_module base; sdl_conv2d_desc d; } sdl__conv_ex;
static sdl_tensor *sdl__conv_ex_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_conv2d_ex(x, l->weight, l->bias, &((sdl__conv_ex *)l)->d); }
SDL_API sdl_module *sdl_conv2d_ex_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel_h, int kernel_w,
                                        const sdl_conv2d_desc *desc, bool bias) {
    int64_t G = desc && desc->groups ? desc->groups : 1;
    if (c_in < 1 || c_out < 1 || kernel_h < 1 || kernel_w < 1 || G < 1 || c_in % G || c_out % G) {
        sdl_fail(SDL_ERR_ARG, "conv2d_ex_layer '%s': channels %lld -> %lld, kernel %d x %d, groups %lld: need positive sizes, channels divisible by groups",
                 name ? name : "", (long long)c_in, (long long)c_out, kernel_h, kernel_w, (long long)G);
        return NULL;
    }
    sdl__conv_ex *c = (sdl__conv_ex *)sdl__module_make(m, "conv2d", name, sdl__conv_ex_layer_fwd, sizeof(sdl__conv_ex));
    if (!c) return NULL;
    if (desc) c->d = *desc;
    int64_t fan_in = c_in / G * kernel_h * kernel_w;
    c->base.kernel = kernel_h; c->base.stride = c->d.stride_h ? c->d.stride_h : 1; c->base.pad = c->d.pad_h;
    c->base.weight = sdl__layer_param(&c->base, "weight", sdl_shape4(c_out, c_in / G, kernel_h, kernel_w), true);
    if (!c->base.weight) return NULL;
    sdl_init_kaiming_uniform(c->base.weight, sqrtf(5.0f), fan_in);
    if (bias) {
        c->base.bias = sdl__layer_param(&c->base, "bias", sdl_shape1(c_out), false);
        if (!c->base.bias) return NULL;
        sdl_init_bias(c->base.bias, fan_in);
    }
    return &c->base;
}

/* pooling layers: stride 0 means stride = kernel (PyTorch's default); no padding;
   layer->ceil_mode = true rounds the output size up (see sdl_max_pool2d_ceil) */
static sdl_tensor *sdl__maxpool_layer_fwd(sdl_module *l, sdl_tensor *x) {
    return (l->ceil_mode ? sdl_max_pool2d_ceil : sdl_max_pool2d)(x, l->kernel, l->stride, l->pad);
}
static sdl_tensor *sdl__avgpool_layer_fwd(sdl_module *l, sdl_tensor *x) {
    return (l->ceil_mode ? sdl_avg_pool2d_ceil : sdl_avg_pool2d)(x, l->kernel, l->stride, l->pad);
}
static sdl_tensor *sdl__gap_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_global_avg_pool(x); }
static sdl_module *sdl__pool_layer_make(sdl_model *m, const char *kind, sdl_forward_fn fwd, int kernel, int stride) {
    sdl_module *l = sdl_module_new(m, kind, "", fwd);
    if (!l) return NULL;
    l->kernel = kernel;
    l->stride = stride > 0 ? stride : kernel;
    return l;
}
SDL_API sdl_module *sdl_max_pool2d_layer(sdl_model *m, int kernel, int stride) {
    return sdl__pool_layer_make(m, "max_pool2d", sdl__maxpool_layer_fwd, kernel, stride);
}
SDL_API sdl_module *sdl_avg_pool2d_layer(sdl_model *m, int kernel, int stride) {
    return sdl__pool_layer_make(m, "avg_pool2d", sdl__avgpool_layer_fwd, kernel, stride);
}
SDL_API sdl_module *sdl_global_avg_pool_layer(sdl_model *m) {
    return sdl_module_new(m, "global_avg_pool", "", sdl__gap_layer_fwd);
}

/* >>layers-norm */

/* "bn1" + ".running_mean"; a buffer (saved in checkpoints, no gradient) */
static sdl_tensor *sdl__layer_buffer(sdl_module *l, const char *suffix, sdl_shape s) {
    char full[96];
    snprintf(full, sizeof full, "%s%s%s", l->name, l->name[0] ? "." : "", suffix);
    return sdl_model_buffer(l->model, full, s);
}

/* batch norm: weight 1, bias 0 (no weight decay); running_mean 0, running_var 1; momentum 0.1,
   eps 1e-5 (in l->p). Training or eval follows the model (sdl_model_train). */
static sdl_tensor *sdl__batch_norm_layer_fwd(sdl_module *l, sdl_tensor *x) {
    return sdl_batch_norm(x, l->weight, l->bias, l->running_mean, l->running_var, l->model->training, 0.1f, l->p);
}
SDL_API sdl_module *sdl_batch_norm_layer(sdl_model *m, const char *name, int64_t channels) {
    sdl_module *l = sdl_module_new(m, "batch_norm", name, sdl__batch_norm_layer_fwd);
    if (!l) return NULL;
    l->p = 1e-5f;
    l->weight = sdl__layer_param(l, "weight", sdl_shape1(channels), false);
    l->bias = l->weight ? sdl__layer_param(l, "bias", sdl_shape1(channels), false) : NULL;
    l->running_mean = l->bias ? sdl__layer_buffer(l, "running_mean", sdl_shape1(channels)) : NULL;
    l->running_var = l->running_mean ? sdl__layer_buffer(l, "running_var", sdl_shape1(channels)) : NULL;
    if (!l->running_var) return NULL;
    sdl_tensor_fill(l->weight, 1.0f);
    sdl_tensor_fill(l->running_var, 1.0f);
    return l;
}

/* layer norm over the last dim: weight 1, bias 0 (no weight decay), eps 1e-5 */
static sdl_tensor *sdl__layer_norm_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_layer_norm(x, l->weight, l->bias, l->p); }
SDL_API sdl_module *sdl_layer_norm_layer(sdl_model *m, const char *name, int64_t dim) {
    sdl_module *l = sdl_module_new(m, "layer_norm", name, sdl__layer_norm_layer_fwd);
    if (!l) return NULL;
    l->p = 1e-5f;
    l->weight = sdl__layer_param(l, "weight", sdl_shape1(dim), false);
    l->bias = l->weight ? sdl__layer_param(l, "bias", sdl_shape1(dim), false) : NULL;
    if (!l->bias) return NULL;
    sdl_tensor_fill(l->weight, 1.0f);
    return l;
}

/* embedding: weight (vocab, dim) ~ N(0, 1) as PyTorch; x is i32 ids */
static sdl_tensor *sdl__embedding_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_embedding(x, l->weight); }
SDL_API sdl_module *sdl_embedding_layer(sdl_model *m, const char *name, int64_t vocab, int64_t dim) {
    sdl_module *l = sdl_module_new(m, "embedding", name, sdl__embedding_layer_fwd);
    if (!l) return NULL;
    l->weight = sdl__layer_param(l, "weight", sdl_shape2(vocab, dim), true);
    if (!l->weight) return NULL;
    sdl_tensor_randn(l->weight, 0.0f, 1.0f);
    return l;
}

static sdl_tensor *sdl__embedding_pad_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_embedding_pad(x, l->weight, l->padding_idx); }
SDL_API sdl_module *sdl_embedding_pad_layer(sdl_model *m, const char *name, int64_t vocab, int64_t dim, int64_t padding_idx) {
    if (padding_idx < -vocab || padding_idx >= vocab) {
        sdl_fail(SDL_ERR_ARG, "embedding_pad_layer '%s': padding_idx %lld is outside [-%lld, %lld)", name ? name : "",
                 (long long)padding_idx, (long long)vocab, (long long)vocab);
        return NULL;
    }
    sdl_module *l = sdl_embedding_layer(m, name, vocab, dim);
    if (!l) return NULL;
    l->forward = sdl__embedding_pad_layer_fwd;
    l->padding_idx = padding_idx < 0 ? vocab + padding_idx : padding_idx;
    memset(sdl_f32(l->weight) + l->padding_idx * dim, 0, (size_t)dim * sizeof(float));
    return l;
}

/* dropout with probability l->p while the model trains; the identity in eval */
static sdl_tensor *sdl__dropout_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_dropout(x, l->p, l->model->training); }
SDL_API sdl_module *sdl_dropout_layer(sdl_model *m, float p) {
    if (!(p >= 0.0f && p <= 1.0f)) { sdl_fail(SDL_ERR_ARG, "dropout_layer: p = %g is outside [0, 1]", (double)p); return NULL; }
    sdl_module *l = sdl_module_new(m, "dropout", "", sdl__dropout_layer_fwd);
    if (l) l->p = p;
    return l;
}

/* >>layers-act */

static sdl_tensor *sdl__leaky_relu_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_leaky_relu(x, l->p); }
SDL_API sdl_module *sdl_leaky_relu_layer(sdl_model *m, float slope) {
    sdl_module *l = sdl_module_new(m, "leaky_relu", "", sdl__leaky_relu_layer_fwd);
    if (l) l->p = slope;
    return l;
}
static sdl_tensor *sdl__gelu_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_gelu(x); }
SDL_API sdl_module *sdl_gelu_layer(sdl_model *m) { return sdl_module_new(m, "gelu", "", sdl__gelu_layer_fwd); }
static sdl_tensor *sdl__gelu_tanh_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_gelu_tanh(x); }
SDL_API sdl_module *sdl_gelu_tanh_layer(sdl_model *m) { return sdl_module_new(m, "gelu_tanh", "", sdl__gelu_tanh_layer_fwd); }
static sdl_tensor *sdl__softmax_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_softmax(x); }
SDL_API sdl_module *sdl_softmax_layer(sdl_model *m) { return sdl_module_new(m, "softmax", "", sdl__softmax_layer_fwd); }
static sdl_tensor *sdl__log_softmax_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_log_softmax(x); }
SDL_API sdl_module *sdl_log_softmax_layer(sdl_model *m) { return sdl_module_new(m, "log_softmax", "", sdl__log_softmax_layer_fwd); }
static sdl_tensor *sdl__identity_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return x; }
SDL_API sdl_module *sdl_identity_layer(sdl_model *m) { return sdl_module_new(m, "identity", "", sdl__identity_layer_fwd); }
static sdl_tensor *sdl__tanh_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_tanh(x); }
SDL_API sdl_module *sdl_tanh_layer(sdl_model *m) { return sdl_module_new(m, "tanh", "", sdl__tanh_layer_fwd); }
static sdl_tensor *sdl__sigmoid_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_sigmoid(x); }
SDL_API sdl_module *sdl_sigmoid_layer(sdl_model *m) { return sdl_module_new(m, "sigmoid", "", sdl__sigmoid_layer_fwd); }
static sdl_tensor *sdl__silu_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_silu(x); }
SDL_API sdl_module *sdl_silu_layer(sdl_model *m) { return sdl_module_new(m, "silu", "", sdl__silu_layer_fwd); }

/* >>layers-rnn: RNN (tanh), LSTM and GRU as PyTorch's nn.RNN / nn.LSTM / nn.GRU */

/* a view of x's elements [off, off + numel(s)), sharing its data and gradient as
   sdl_reshape does (so gradient written into the view lands in x's) */
static sdl_tensor *sdl__narrow(sdl_tensor *x, int64_t off, sdl_shape s) {
    sdl_tensor *t = sdl_reshape(x, sdl_tensor_shape(x));
    if (!t) return NULL;
    t->data = sdl_f32(t) + off;
    if (t->grad) t->grad += off;
    t->ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) t->shape[i] = s.d[i];
    t->numel = sdl__shape_numel(s);
    return t;
}

#define SDL__RNN_MAX_LAYERS 16
typedef struct sdl__rnn {
    sdl_module base; /* first: the model frees the whole block as a module */
    sdl_rnn_desc d;
    sdl_tensor *w_ih[SDL__RNN_MAX_LAYERS], *w_hh[SDL__RNN_MAX_LAYERS], *b_ih[SDL__RNN_MAX_LAYERS], *b_hh[SDL__RNN_MAX_LAYERS];
} sdl__rnn;

static sdl_tensor *sdl__rnn_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_rnn_forward(l, x, NULL, NULL, NULL, NULL); }

SDL_API sdl_module *sdl_rnn_layer(sdl_model *m, const char *name, const sdl_rnn_desc *desc) {
    sdl_rnn_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    if (d.mode == SDL_RNN_DEFAULT) d.mode = SDL_RNN_TANH;
    if (d.num_layers == 0) d.num_layers = 1;
    const char *kind = d.mode == SDL_RNN_LSTM ? "lstm" : d.mode == SDL_RNN_GRU ? "gru" : "rnn";
    if (d.input_size < 1 || d.hidden_size < 1 || d.num_layers < 1 || d.num_layers > SDL__RNN_MAX_LAYERS ||
        !(d.dropout >= 0.0f && d.dropout < 1.0f) || d.mode > SDL_RNN_GRU) {
        sdl_fail(SDL_ERR_ARG, "%s_layer '%s': input_size %lld and hidden_size %lld must be >= 1, num_layers %d in [1, %d], dropout %g in [0, 1)",
                 kind, name ? name : "", (long long)d.input_size, (long long)d.hidden_size, d.num_layers, SDL__RNN_MAX_LAYERS, (double)d.dropout);
        return NULL;
    }
    sdl__rnn *r = (sdl__rnn *)sdl__module_make(m, kind, name, sdl__rnn_layer_fwd, sizeof(sdl__rnn));
    if (!r) return NULL;
    r->d = d;
    int64_t G = d.mode == SDL_RNN_LSTM ? 4 : d.mode == SDL_RNN_GRU ? 3 : 1, H = d.hidden_size;
    float k = 1.0f / sqrtf((float)H); /* PyTorch: every weight and bias U(-1/sqrt(H), 1/sqrt(H)) */
    for (int l = 0; l < d.num_layers; l++) {
        char s[4][32];
        snprintf(s[0], 32, "weight_ih_l%d", l); snprintf(s[1], 32, "weight_hh_l%d", l);
        snprintf(s[2], 32, "bias_ih_l%d", l); snprintf(s[3], 32, "bias_hh_l%d", l);
        r->w_ih[l] = sdl__layer_param(&r->base, s[0], sdl_shape2(G * H, l ? H : d.input_size), true);
        r->w_hh[l] = r->w_ih[l] ? sdl__layer_param(&r->base, s[1], sdl_shape2(G * H, H), true) : NULL;
        if (!r->w_hh[l]) return NULL;
        sdl_tensor_uniform(r->w_ih[l], -k, k);
        sdl_tensor_uniform(r->w_hh[l], -k, k);
        if (d.no_bias) continue;
        r->b_ih[l] = sdl__layer_param(&r->base, s[2], sdl_shape1(G * H), false);
        r->b_hh[l] = r->b_ih[l] ? sdl__layer_param(&r->base, s[3], sdl_shape1(G * H), false) : NULL;
        if (!r->b_hh[l]) return NULL;
        sdl_tensor_uniform(r->b_ih[l], -k, k);
        sdl_tensor_uniform(r->b_hh[l], -k, k);
    }
    r->base.weight = r->w_ih[0];
    r->base.bias = r->b_ih[0];
    return &r->base;
}

/* layer l's initial state: h0[l] (B, H), for the LSTM [h0[l]; c0[l]] (2, B, H); NULL: zeros */
static sdl_tensor *sdl__rnn_state0(const sdl__rnn *r, int l, sdl_tensor *h0, sdl_tensor *c0, int64_t B) {
    int64_t H = r->d.hidden_size, BH = B * H;
    if (r->d.mode != SDL_RNN_LSTM) return h0 ? sdl__narrow(h0, l * BH, sdl_shape2(B, H)) : NULL;
    if (!h0 && !c0) return NULL;
    sdl_tensor *h = h0 ? sdl__narrow(h0, l * BH, sdl_shape3(1, B, H)) : sdl_arena_tensor(sdl_shape3(1, B, H), SDL_F32);
    sdl_tensor *c = c0 ? sdl__narrow(c0, l * BH, sdl_shape3(1, B, H)) : sdl_arena_tensor(sdl_shape3(1, B, H), SDL_F32);
    return sdl_concat(h, c, 0);
}

SDL_API sdl_tensor *sdl_rnn_forward(sdl_module *layer, sdl_tensor *x, sdl_tensor *h0, sdl_tensor *c0, sdl_tensor **h_n, sdl_tensor **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if (!layer || !x) return NULL;
    if (layer->forward != sdl__rnn_layer_fwd) { sdl_fail(SDL_ERR_ARG, "rnn_forward: '%s' is a %s layer, not an rnn/lstm/gru", layer->name, layer->kind); return NULL; }
    sdl__rnn *r = (sdl__rnn *)layer;
    const sdl_rnn_desc *d = &r->d;
    const int L = d->num_layers;
    const int64_t H = d->hidden_size;
    char sh[96];
    if (x->ndim != 3 || x->shape[2] != d->input_size || x->shape[0] < 1 || x->shape[1] < 1) {
        sdl_fail(SDL_ERR_SHAPE, "%s '%s': x is %s, wants (%s, %lld)", layer->kind, layer->name, sdl_shape_str(sdl_tensor_shape(x), sh, sizeof sh),
                 d->batch_first ? "B, T" : "T, B", (long long)d->input_size);
        return NULL;
    }
    int64_t T = x->shape[d->batch_first ? 1 : 0], B = x->shape[d->batch_first ? 0 : 1];
    sdl_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++)
        if (st[i] && (st[i]->ndim != 3 || st[i]->shape[0] != L || st[i]->shape[1] != B || st[i]->shape[2] != H || (i && d->mode != SDL_RNN_LSTM))) {
            sdl_fail(SDL_ERR_SHAPE, "%s '%s': %s is %s, wants %s(%d, %lld, %lld)", layer->kind, layer->name, i ? "c0" : "h0",
                     sdl_shape_str(sdl_tensor_shape(st[i]), sh, sizeof sh), i && d->mode != SDL_RNN_LSTM ? "none (LSTM only) or " : "",
                     L, (long long)B, (long long)H);
            return NULL;
        }
    sdl_tensor *cur = x, *hn = NULL, *cn = NULL;
    bool bf = d->batch_first;
    for (int l = 0; l < L && cur; l++) {
        sdl_tensor *b_hh = r->b_hh[l] ? r->b_hh[l] : sdl_arena_tensor(sdl_shape1(r->w_hh[l]->shape[0]), SDL_F32);
        sdl_tensor *s0 = (h0 || c0) ? sdl__rnn_state0(r, l, h0, c0, B) : NULL;
        if ((h0 || c0) && !s0) return NULL;
        sdl_tensor *y = sdl__rnn_scan(d->mode, sdl_linear(cur, r->w_ih[l], r->b_ih[l]), r->w_hh[l], b_hh, s0, bf);
        if (!y) return NULL;
        cur = sdl__narrow(y, 0, sdl_shape3(T, B, H));
        bf = false; /* time-major from the first layer's output on */
        sdl_tensor *hl = sdl__narrow(y, (T - 1) * B * H, sdl_shape3(1, B, H));
        hn = hn ? sdl_concat(hn, hl, 0) : hl;
        if (d->mode == SDL_RNN_LSTM) {
            sdl_tensor *cl = sdl__narrow(y, T * B * H, sdl_shape3(1, B, H));
            cn = cn ? sdl_concat(cn, cl, 0) : cl;
        }
        if (l + 1 < L && d->dropout > 0.0f) cur = sdl_dropout(cur, d->dropout, layer->model->training);
    }
    if (cur && d->batch_first) cur = sdl_transpose(cur, 0, 1);
    if (!cur || !hn || (d->mode == SDL_RNN_LSTM && !cn)) return NULL;
    if (h_n) *h_n = hn;
    if (c_n) *c_n = cn;
    return cur;
}

/* >>layers-attn: group norm and multi-head attention layers */

/* group norm: weight 1, bias 0 (no weight decay), eps 1e-5, as nn.GroupNorm(groups, channels) */
static sdl_tensor *sdl__group_norm_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_group_norm(x, l->kernel, l->weight, l->bias, l->p); }
SDL_API sdl_module *sdl_group_norm_layer(sdl_model *m, const char *name, int groups, int64_t channels) {
    if (groups < 1 || channels < 1 || channels % groups != 0) {
        sdl_fail(SDL_ERR_ARG, "group_norm_layer '%s': %lld channels do not split into %d groups", name ? name : "", (long long)channels, groups);
        return NULL;
    }
    sdl_module *l = sdl_module_new(m, "group_norm", name, sdl__group_norm_layer_fwd);
    if (!l) return NULL;
    l->p = 1e-5f;
    l->kernel = groups;
    l->weight = sdl__layer_param(l, "weight", sdl_shape1(channels), false);
    l->bias = l->weight ? sdl__layer_param(l, "bias", sdl_shape1(channels), false) : NULL;
    if (!l->bias) return NULL;
    sdl_tensor_fill(l->weight, 1.0f);
    return l;
}

typedef struct sdl__mha {
    sdl_module base; /* first: the model frees the whole block as a module */
    sdl_mha_desc d;
    sdl_tensor *out_w, *out_b;
} sdl__mha;

static sdl_tensor *sdl__mha_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_mha_forward(l, x, NULL, NULL, NULL, NULL); }
SDL_API sdl_module *sdl_mha_layer(sdl_model *m, const char *name, const sdl_mha_desc *desc) {
    sdl_mha_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    if (d.embed_dim < 1 || d.num_heads < 1 || d.embed_dim % d.num_heads != 0) {
        sdl_fail(SDL_ERR_ARG, "mha_layer '%s': embed_dim %lld must split into num_heads %d heads", name ? name : "", (long long)d.embed_dim, d.num_heads);
        return NULL;
    }
    sdl__mha *a = (sdl__mha *)sdl__module_make(m, "mha", name, sdl__mha_layer_fwd, sizeof(sdl__mha));
    if (!a) return NULL;
    a->d = d;
    int64_t E = d.embed_dim;
    a->base.weight = sdl__layer_param(&a->base, "in_proj_weight", sdl_shape2(3 * E, E), true);
    a->base.bias = a->base.weight && !d.no_bias ? sdl__layer_param(&a->base, "in_proj_bias", sdl_shape1(3 * E), false) : NULL;
    a->out_w = a->base.weight ? sdl__layer_param(&a->base, "out_proj.weight", sdl_shape2(E, E), true) : NULL;
    a->out_b = a->out_w && !d.no_bias ? sdl__layer_param(&a->base, "out_proj.bias", sdl_shape1(E), false) : NULL;
    if (!a->out_w || (!d.no_bias && !a->out_b)) return NULL;
    sdl_init_xavier_uniform(a->base.weight, E, 3 * E); /* PyTorch: xavier on in_proj_weight, biases 0 */
    sdl_init_kaiming_uniform(a->out_w, sqrtf(5.0f), E); /* out_proj keeps nn.Linear's init */
    return &a->base;
}

/* the additive (B, Tq, Tk) mask from attn_mask (Tq, Tk) f32 added or u8 nonzero = -inf,
   key_padding_mask (B, Tk) u8 or i32 nonzero = -inf, and causal (j > i = -inf); NULL if none */
static sdl_tensor *sdl__mha_mask(const sdl__mha *a, sdl_tensor *am, sdl_tensor *kpm, int64_t B, int64_t Tq, int64_t Tk) {
    if (!am && !kpm && !a->d.causal) return NULL;
    char s[96];
    if (am && (am->numel != Tq * Tk || (am->dtype != SDL_F32 && am->dtype != SDL_U8) || am->device != SDL_CPU)) {
        sdl_fail(SDL_ERR_SHAPE, "mha '%s': attn_mask is %s, wants f32 or u8 (%lld, %lld) on the CPU", a->base.name,
                 sdl_shape_str(sdl_tensor_shape(am), s, sizeof s), (long long)Tq, (long long)Tk);
        return NULL;
    }
    if (kpm && (kpm->numel != B * Tk || (kpm->dtype != SDL_U8 && kpm->dtype != SDL_I32) || kpm->device != SDL_CPU)) {
        sdl_fail(SDL_ERR_SHAPE, "mha '%s': key_padding_mask is %s, wants u8 or i32 (%lld, %lld) on the CPU", a->base.name,
                 sdl_shape_str(sdl_tensor_shape(kpm), s, sizeof s), (long long)B, (long long)Tk);
        return NULL;
    }
    sdl_tensor *mk = sdl_arena_tensor(sdl_shape3(B, Tq, Tk), SDL_F32);
    if (!mk) return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < Tq; i++)
            for (int64_t j = 0; j < Tk; j++) {
                float v = 0.0f;
                if (am) v = am->dtype == SDL_F32 ? sdl_f32(am)[i * Tk + j] : sdl_u8(am)[i * Tk + j] ? -INFINITY : 0.0f;
                if (kpm && (kpm->dtype == SDL_U8 ? sdl_u8(kpm)[b * Tk + j] != 0 : sdl_i32(kpm)[b * Tk + j] != 0)) v = -INFINITY;
                if (a->d.causal && j > i) v = -INFINITY;
                sdl_f32(mk)[(b * Tq + i) * Tk + j] = v;
            }
    return mk;
}

SDL_API sdl_tensor *sdl_mha_forward(sdl_module *layer, sdl_tensor *query, sdl_tensor *key, sdl_tensor *value,
                                    sdl_tensor *attn_mask, sdl_tensor *key_padding_mask) {
    if (!layer || !query) return NULL;
    if (layer->forward != sdl__mha_layer_fwd) { sdl_fail(SDL_ERR_ARG, "mha_forward: '%s' is a %s layer, not mha", layer->name, layer->kind); return NULL; }
    sdl__mha *a = (sdl__mha *)layer;
    if (!key) key = query;
    if (!value) value = key;
    bool bf = a->d.batch_first;
    char s[96];
    sdl_tensor *ts[3] = {query, key, value};
    for (int i = 0; i < 3; i++)
        if (ts[i]->ndim != 3 || ts[i]->shape[2] != a->d.embed_dim) {
            sdl_fail(SDL_ERR_SHAPE, "mha '%s': %s is %s, wants (%s, %lld)", layer->name, i == 0 ? "query" : i == 1 ? "key" : "value",
                     sdl_shape_str(sdl_tensor_shape(ts[i]), s, sizeof s), bf ? "B, T" : "T, B", (long long)a->d.embed_dim);
            return NULL;
        }
    int64_t B = query->shape[bf ? 0 : 1], Tq = query->shape[bf ? 1 : 0], Tk = key->shape[bf ? 1 : 0];
    /* the whole in-projection for each distinct source; each op reads its third of the columns */
    sdl_tensor *qs = sdl_linear(query, layer->weight, layer->bias);
    sdl_tensor *ks = key == query ? qs : sdl_linear(key, layer->weight, layer->bias);
    sdl_tensor *vs = value == key ? ks : value == query ? qs : sdl_linear(value, layer->weight, layer->bias);
    sdl_tensor *mask = sdl__mha_mask(a, attn_mask, key_padding_mask, B, Tq, Tk);
    if ((attn_mask || key_padding_mask || a->d.causal) && !mask) return NULL;
    return sdl_linear(sdl__mha_attend(qs, ks, vs, mask, a->d.num_heads, bf), a->out_w, a->out_b);
}

/* >>layers-summary: sdl_model_summary, the per-layer table with FLOPs, bytes and the roofline */

/* ---- the CPU's roofline, measured: FMA chains on every pool thread (12 independent
   accumulators of this build's widest vector, as bench/peak.c), and a parallel read of a
   64 MiB buffer (larger than the caches). Wall time, so a busy machine measures lower. */
typedef struct sdl__peak_job { int64_t iters; float sink[64]; double bytes_sum[64]; const float *buf; int64_t n; } sdl__peak_job;
static void sdl__peak_fma(void *ctx, int64_t p0, int64_t p1) {
    sdl__peak_job *j = (sdl__peak_job *)ctx;
    for (int64_t p = p0; p < p1; p++) {
#if defined(SDL__GEMM_AVX512)
        __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f), c[12];
        for (int k = 0; k < 12; k++) c[k] = _mm512_set1_ps((float)k);
        for (int64_t i = 0; i < j->iters; i++)
            for (int k = 0; k < 12; k++) c[k] = _mm512_fmadd_ps(c[k], a, b);
        for (int k = 1; k < 12; k++) c[0] = _mm512_add_ps(c[0], c[k]);
        float t[16]; /* not _mm512_reduce_add_ps: g++ -O3 warns of its undefined upper half */
        _mm512_storeu_ps(t, c[0]);
        j->sink[p % 64] = t[0];
#elif defined(SDL__GEMM_AVX2)
        __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f), c[12];
        for (int k = 0; k < 12; k++) c[k] = _mm256_set1_ps((float)k);
        for (int64_t i = 0; i < j->iters; i++)
            for (int k = 0; k < 12; k++) c[k] = _mm256_fmadd_ps(c[k], a, b);
        for (int k = 1; k < 12; k++) c[0] = _mm256_add_ps(c[0], c[k]);
        float t[8];
        _mm256_storeu_ps(t, c[0]);
        j->sink[p % 64] = t[0];
#else
        float c[12];
        for (int k = 0; k < 12; k++) c[k] = (float)k;
        for (int64_t i = 0; i < j->iters; i++)
            for (int k = 0; k < 12; k++) c[k] = c[k] * 0.999999f + 1e-7f;
        j->sink[p % 64] = c[0] + c[11];
#endif
    }
}
static int sdl__peak_width(void) {
#if defined(SDL__GEMM_AVX512)
    return 16;
#elif defined(SDL__GEMM_AVX2)
    return 8;
#else
    return 1;
#endif
}
static void sdl__peak_read(void *ctx, int64_t p0, int64_t p1) {
    sdl__peak_job *j = (sdl__peak_job *)ctx;
    int64_t parts = sdl_get_num_threads();
    for (int64_t p = p0; p < p1; p++) {
        const float *x = j->buf + j->n * p / parts;
        j->bytes_sum[p % 64] = sdl__vsum(x, j->n * (p + 1) / parts - j->n * p / parts);
    }
}
SDL_API sdl_roofline sdl_roofline_cpu(void) {
    sdl_roofline r;
    memset(&r, 0, sizeof r);
    r.name = "this CPU (measured)";
    static sdl__peak_job j; /* 64-float sinks: results stay observable, nothing is optimised out */
    int nt = sdl_get_num_threads();
    j.iters = 2000000;
    double t0 = sdl_now();
    sdl_parallel_for(nt, 1, sdl__peak_fma, &j);
    double t = sdl_now() - t0;
    r.flops = t > 0 ? 2.0 * 12.0 * sdl__peak_width() * (double)j.iters * nt / t : 0.0;
    j.n = (int64_t)1 << 24; /* 64 MiB */
    float *buf = (float *)sdl__aligned_alloc((size_t)j.n * sizeof(float));
    if (buf) {
        memset(buf, 0, (size_t)j.n * sizeof(float)); /* touch every page first */
        j.buf = buf;
        t0 = sdl_now();
        sdl_parallel_for(nt, 1, sdl__peak_read, &j);
        t = sdl_now() - t0;
        r.bytes_per_s = t > 0 ? (double)j.n * sizeof(float) / t : 0.0;
        sdl__aligned_free(buf);
    }
    return r;
}

SDL__COLD_BEGIN
/* ---- forward FLOPs of one recorded op (a multiply-add counts 2; matrix products exactly,
   elementwise work by a small per-element cost: 1 for add/mul/relu/scale/dropout/pooling
   window taps, 4 for exp/tanh/erf-based activations, 5 per softmax element, 7 per
   normalised element), and the bytes it must move: each distinct input read once, the
   output written once */
static double sdl__op_flops(const sdl_node *n) {
    const sdl_tensor *x = n->in[0], *w = n->nin > 1 ? n->in[1] : NULL, *y = n->out;
    double out = (double)y->numel;
    switch (n->op) {
    case SDL_OP_LINEAR: return 2.0 * out * (double)w->shape[1] + (n->nin > 2 ? out : 0.0) + (n->act ? out : 0.0);
    case SDL_OP_CONV2D: return 2.0 * out * (double)(w->numel / w->shape[0]) + (n->nin > 2 ? out : 0.0) + (n->act ? out : 0.0);
    case SDL_OP_CONV2D_GROUPED: return 2.0 * out * (double)(w->numel / w->shape[0]) + (n->nin > 2 ? out : 0.0);
    case SDL_OP_CONV_TRANSPOSE2D: return 2.0 * (double)x->numel * (double)(w->numel / w->shape[0]) + (n->nin > 2 ? out : 0.0);
    case SDL_OP_MAX_POOL2D: case SDL_OP_AVG_POOL2D: return out * n->attr.pool.kernel_h * n->attr.pool.kernel_w;
    case SDL_OP_GLOBAL_AVG_POOL: return (double)x->numel;
    case SDL_OP_BATCH_NORM: case SDL_OP_LAYER_NORM: case SDL_OP_GROUP_NORM: return 7.0 * out;
#define SDL__FLOPS_CASE(X_, NAME, name) case SDL_OP_##NAME:
    SDL_UNARY_OPS(SDL__FLOPS_CASE, _) /* 1 for the piecewise-linear ones, 4 for exp/tanh/erf-based */
        return n->op == SDL_OP_LEAKY_RELU || n->op == SDL_OP_SCALE || n->op == SDL_OP_NEG || n->op == SDL_OP_ABS ||
               n->op == SDL_OP_CLAMP ? out : 4.0 * out;
    SDL_BINARY_OPS(SDL__FLOPS_CASE, _)
#undef SDL__FLOPS_CASE
    case SDL_OP_RELU: case SDL_OP_ADD: case SDL_OP_MUL: case SDL_OP_DROPOUT: case SDL_OP_WHERE: return out;
    case SDL_OP_SOFTMAX: case SDL_OP_LOG_SOFTMAX: case SDL_OP_CROSS_ENTROPY: case SDL_OP_NLL: case SDL_OP_LOGSUMEXP: return 5.0 * (double)x->numel;
    case SDL_OP_SUM: case SDL_OP_MEAN: case SDL_OP_BCE_LOGITS: case SDL_OP_MSE: case SDL_OP_REDUCE_SUM: case SDL_OP_REDUCE_MEAN:
    case SDL_OP_REDUCE_MAX: return (double)x->numel;
    case SDL_OP_VAR: return 3.0 * (double)x->numel;
    case SDL_OP_BMM: return 2.0 * out * (double)x->shape[x->ndim - 1];
    case SDL_OP_EMBEDDING: case SDL_OP_CONCAT: case SDL_OP_TRANSPOSE: case SDL_OP_INDEX_MAP: case SDL_OP_NONE: case SDL_OP_COUNT: return 0.0;
    case SDL_OP_FUNCTION: return 0.0; /* a user's op: its work is unknown */
    case SDL_OP_ATTENTION: /* q k^T and P v over all T x T pairs (the kernel skips the masked half: an upper bound) */
        return 4.0 * (double)x->numel * (double)x->shape[2] + 5.0 * (double)(x->numel / x->shape[3]) * (double)x->shape[2];
    case SDL_OP_MHA: { /* per head: Q K^T and P V (4 Tq Tk d), softmax 5 Tq Tk */
        double pairs = (double)y->numel / (double)(x->shape[2] / 3) * (double)n->attr.mha.n_head * (double)n->in[1]->shape[n->attr.mha.batch_first ? 1 : 0];
        return pairs * (4.0 * (double)(x->shape[2] / 3 / n->attr.mha.n_head) + 5.0);
    }
    case SDL_OP_RNN: { /* a recurrent GEMM per step, 2 B (G H) H, and ~4 per gate element */
        double gh = (double)w->shape[0], h = (double)w->shape[1], steps_b = (double)(x->numel / x->shape[2]);
        return steps_b * (2.0 * gh * h + 4.0 * gh);
    }
    }
    return 0.0;
}
static double sdl__op_bytes(const sdl_node *n) {
    double b = (double)n->out->numel * sizeof(float);
    for (int i = 0; i < n->nin; i++) {
        bool seen = false;
        for (int k = 0; k < i; k++) seen = seen || n->in[k] == n->in[i];
        if (!seen) b += (double)n->in[i]->numel * (double)sdl_dtype_size(n->in[i]->dtype);
    }
    return b;
}

/* the leaves of nested sequentials, each run on x and counted from the ops it put on the tape */
typedef struct sdl__sum_ctx { sdl_summary *s; int cap; sdl_tensor **seen; int nseen, capseen; } sdl__sum_ctx;
static sdl_tensor *sdl__summary_walk(sdl__sum_ctx *c, sdl_module *l, sdl_tensor *x) {
    if (l->forward == sdl__seq_forward) {
        for (int i = 0; i < l->nchildren && x; i++) x = sdl__summary_walk(c, l->children[i], x);
        return x;
    }
    sdl_node *mark = sdl__g.tape;
    sdl_tensor *y = l->forward(l, x);
    if (!y) return NULL;
    if (c->s->nrows == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        sdl_summary_row *r = (sdl_summary_row *)SDL_REALLOC(c->s->rows, (size_t)cap * sizeof(sdl_summary_row));
        if (!r) { sdl_fail(SDL_ERR_OOM, "model_summary: out of memory"); return NULL; }
        c->s->rows = r;
        c->cap = cap;
    }
    sdl_summary_row *row = &c->s->rows[c->s->nrows++];
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", l->name[0] ? l->name : l->kind);
    row->kind = l->kind;
    row->out_shape = sdl_tensor_shape(y);
    for (sdl_node *n = sdl__g.tape; n && n != mark; n = n->prev) {
        row->flops += sdl__op_flops(n);
        row->bytes += sdl__op_bytes(n);
        for (int i = 0; i < n->nin; i++) { /* parameters this layer read, each once in the whole model */
            sdl_tensor *p = n->in[i];
            bool seen = p->param_index < 0 || !p->model;
            for (int k = 0; k < c->nseen && !seen; k++) seen = c->seen[k] == p;
            if (seen) continue;
            if (!sdl__push_ptr((void ***)&c->seen, &c->nseen, p)) return NULL;
            row->params += p->numel;
        }
    }
    c->s->params += row->params;
    c->s->flops += row->flops;
    c->s->bytes += row->bytes;
    return y;
}

static const char *sdl__si(double v, char *buf, size_t cap) {
    const char *u[] = {"", "K", "M", "G", "T", "P"};
    int k = 0;
    while (v >= 1000.0 && k < 5) { v /= 1000.0; k++; }
    snprintf(buf, cap, k ? "%.2f%s" : "%.0f%s", v, u[k]);
    return buf;
}

SDL_API sdl_result sdl_model_summary(sdl_module *net, sdl_shape input_shape, const sdl_roofline *machine, FILE *out, sdl_summary *result) {
    if (result) memset(result, 0, sizeof *result);
    if (!net) return sdl_fail(SDL_ERR_ARG, "model_summary: NULL module (an earlier call failed: %s)", sdl__err_msg);
    if (input_shape.ndim < 1 || input_shape.ndim > SDL_MAX_DIMS) return sdl_fail(SDL_ERR_ARG, "model_summary: input shape with %d dims", input_shape.ndim);
    sdl_summary s;
    memset(&s, 0, sizeof s);
    s.machine = machine ? *machine : sdl_roofline_cpu();
    /* ids for a model that starts with an embedding, else floats; zeros either way */
    sdl_module *first = net;
    while (first->forward == sdl__seq_forward && first->nchildren > 0) first = first->children[0];
    bool ids = first->forward == sdl__embedding_layer_fwd || first->forward == sdl__embedding_pad_layer_fwd;
    sdl_tensor *x = sdl_tensor_new(input_shape, ids ? SDL_I32 : SDL_F32);
    if (!x || (!ids && sdl_tensor_requires_grad(x) != SDL_OK)) { sdl_tensor_free(x); return sdl__err_code; }
    bool was_training = net->model->training, grad = sdl_is_grad_enabled();
    sdl_model_train(net->model, false); /* eval: batch-norm statistics stay as they are */
    sdl_set_grad_enabled(true);         /* the ops go on the tape, where they are counted */
    sdl__sum_ctx c;
    memset(&c, 0, sizeof c);
    c.s = &s;
    sdl_tensor *y = sdl__summary_walk(&c, net, x);
    sdl_result r = y ? SDL_OK : sdl_last_result();
    sdl_model_train(net->model, was_training);
    sdl_set_grad_enabled(grad);
    sdl_arena_reset();
    sdl_tensor_free(x);
    SDL_DEALLOC(c.seen);
    if (r == SDL_OK && out) {
        double ridge = s.machine.bytes_per_s > 0 ? s.machine.flops / s.machine.bytes_per_s : 0.0;
        char a[32], b[32], d[32], sh[96];
        fprintf(out, "%-24s %-20s %12s %10s %10s %8s  %s\n", "Layer (type)", "Output shape", "Param #", "FLOPs", "Bytes", "FLOP/B", "bound");
        for (int i = 0; i < s.nrows; i++) {
            const sdl_summary_row *w = &s.rows[i];
            char nm[80];
            snprintf(nm, sizeof nm, "%s (%s)", w->name, w->kind);
            double ai = w->bytes > 0 ? w->flops / w->bytes : 0.0;
            fprintf(out, "%-24s %-20s %12lld %10s %10s %8.2f  %s\n", nm, sdl_shape_str(w->out_shape, sh, sizeof sh), (long long)w->params,
                    sdl__si(w->flops, a, sizeof a), sdl__si(w->bytes, b, sizeof b), ai, w->flops == 0.0 ? "-" : ai >= ridge ? "compute" : "memory");
        }
        fprintf(out, "Total params: %lld\nForward: %s FLOP, %s bytes moved (%.2f FLOP/B)\n", (long long)s.params,
                sdl__si(s.flops, a, sizeof a), sdl__si(s.bytes, b, sizeof b), s.bytes > 0 ? s.flops / s.bytes : 0.0);
        fprintf(out, "Machine (%s): %s FLOP/s, %s B/s, ridge %.1f FLOP/B: a forward needs at least %.3g ms at the compute roof, "
                "%.3g ms at the memory roof (training ~3x the FLOPs)\n", s.machine.name ? s.machine.name : "given", sdl__si(s.machine.flops, a, sizeof a),
                sdl__si(s.machine.bytes_per_s, d, sizeof d), ridge, s.machine.flops > 0 ? 1e3 * s.flops / s.machine.flops : 0.0,
                s.machine.bytes_per_s > 0 ? 1e3 * s.bytes / s.machine.bytes_per_s : 0.0);
    }
    if (result && r == SDL_OK) *result = s;
    else SDL_DEALLOC(s.rows);
    return r;
}
SDL_API void sdl_summary_free(sdl_summary *s) {
    if (!s) return;
    SDL_DEALLOC(s->rows);
    memset(s, 0, sizeof *s);
}
SDL_API double sdl_summary_mfu(const sdl_summary *s, double steps, double seconds, double *flops_per_s) {
    double achieved = s && seconds > 0 ? 3.0 * s->flops * steps / seconds : 0.0;
    if (flops_per_s) *flops_per_s = achieved;
    return s && s->machine.flops > 0 ? achieved / s->machine.flops : 0.0;
}

SDL__COLD_END

/* >>optim */
static float sdl__default(float v, float dflt) { return v != 0.0f ? v : dflt; }

/* ---- two sums over [0, n) in double, the same bits for any thread count: the range is
   cut into at most SDL__SUM_BLOCKS blocks whose bounds depend only on n, each block is
   summed by one thread, and the block sums are added in order. A block function may also
   write its own elements (lamb updates its moments while it sums). */
#define SDL__SUM_BLOCKS 64
typedef void (*sdl__sum_fn)(void *ctx, int64_t begin, int64_t end, double sums[2]);
typedef struct sdl__sum_job {
    sdl__sum_fn fn;
    void *ctx;
    int64_t n, block;
    double part[SDL__SUM_BLOCKS][2];
} sdl__sum_job;

static void sdl__sum_blocks(void *ctx, int64_t b0, int64_t b1) {
    sdl__sum_job *s = (sdl__sum_job *)ctx;
    for (int64_t b = b0; b < b1; b++) {
        int64_t end = (b + 1) * s->block < s->n ? (b + 1) * s->block : s->n;
        s->part[b][0] = s->part[b][1] = 0.0;
        s->fn(s->ctx, b * s->block, end, s->part[b]);
    }
}

static void sdl__sum2(int64_t n, sdl__sum_fn fn, void *ctx, double out[2]) {
    sdl__sum_job s;
    s.fn = fn;
    s.ctx = ctx;
    s.n = n;
    s.block = (n + SDL__SUM_BLOCKS - 1) / SDL__SUM_BLOCKS;
    if (s.block < 8192) s.block = 8192;
    int64_t nblocks = (n + s.block - 1) / s.block;
    sdl_parallel_for(nblocks, 1, sdl__sum_blocks, &s);
    out[0] = out[1] = 0.0;
    for (int64_t b = 0; b < nblocks; b++) { out[0] += s.part[b][0]; out[1] += s.part[b][1]; }
}

/* x^2 over even and odd indices: two chains of additions run faster than one */
static void sdl__sumsq_range(void *ctx, int64_t begin, int64_t end, double sums[2]) {
    const float *x = (const float *)ctx;
    int64_t i = begin;
    for (; i + 1 < end; i += 2) {
        sums[0] += (double)x[i] * (double)x[i];
        sums[1] += (double)x[i + 1] * (double)x[i + 1];
    }
    if (i < end) sums[0] += (double)x[i] * (double)x[i];
}

typedef struct sdl__scale_job { float *x; float s; } sdl__scale_job;
static void sdl__scale_range(void *ctx, int64_t begin, int64_t end) {
    sdl__scale_job *j = (sdl__scale_job *)ctx;
    for (int64_t i = begin; i < end; i++) j->x[i] *= j->s;
}

static void sdl__cpu_scale(float *x, int64_t n, float s) {
    sdl__scale_job j;
    j.x = x;
    j.s = s;
    sdl_parallel_for(n, 1 << 15, sdl__scale_range, &j);
}
static double sdl__cpu_sumsq(const float *x, int64_t n) {
    double s[2];
    sdl__sum2(n, sdl__sumsq_range, (void *)x, s);
    return s[0] + s[1];
}

/* the model's device's gradient helpers (NULL, with the error set, when it has none) */
static const sdl_backend *sdl__grad_backend(sdl_model *m, const char *who) {
    const sdl_backend *be = sdl_get_backend(sdl__model_device(m));
    if (!be || !be->scale || !be->sumsq) {
        sdl_fail(SDL_ERR_DEVICE, "%s: device %d has no gradient scale/norm kernels", who, (int)sdl__model_device(m));
        return NULL;
    }
    return be;
}

SDL_API void sdl_grad_scale(sdl_model *m, float s) {
    if (!m || !m->packed || s == 1.0f) return;
    const sdl_backend *be = sdl__grad_backend(m, "grad_scale");
    if (be) be->scale(m->grad_data, m->param_floats, s);
}

/* on a GPU the norm comes back to the host (one small read that waits for the GPU) */
SDL_API float sdl_clip_grad_norm(sdl_model *m, float max_norm) {
    if (!m || !m->packed) return 0.0f;
    const sdl_backend *be = sdl__grad_backend(m, "clip_grad_norm");
    if (!be) return NAN;
    double norm = sqrt(be->sumsq(m->grad_data, m->param_floats));
    if (isfinite(norm) && norm > (double)max_norm) be->scale(m->grad_data, m->param_floats, (float)((double)max_norm / (norm + 1e-6)));
    return (float)norm;
}

/* ---- the update kernels: one tensor, elements [begin, end) ---- */
typedef struct sdl__update {
    const sdl_optim *o;
    float *p, *g, *m, *v; /* one tensor's parameters, gradients and state slots (NULL: none) */
    float lr;
    float wd;             /* 0 for decay=false tensors */
    float trust;          /* lars, lamb: the tensor's trust ratio; 1 otherwise */
    float bc1, bc2;       /* adam, adamw, lamb: 1 - beta1^t, 1 - beta2^t (t = step + 1) */
} sdl__update;

/* Every update kernel zeroes the gradients it has read (grad = 0 in the same pass costs
   next to nothing, while a separate memset is one more sweep over memory), so the next
   backward may write them instead of adding.

   sgd, PyTorch's form (dampening 0), and lars, which is sgd on trust-scaled gradients:
     g = trust * (grad + wd p)
     v = g on the first step, else momentum v + g
     p -= lr * (nesterov ? g + momentum v : v)        (without momentum: p -= lr g)
   The common case (momentum, no decay, trust 1, not the first step) has its own loop,
   which the compiler vectorises; it skips the decay term as PyTorch does when wd = 0
   (1 * (grad + 0 p) is grad for any finite p, so the numbers are the same). */
static void sdl__sgd_momentum(float *SDL_RESTRICT p, float *SDL_RESTRICT grad, float *SDL_RESTRICT v,
                              int64_t n, float lr, float mu) {
    for (int64_t j = 0; j < n; j++) {
        float m = mu * v[j] + grad[j];
        v[j] = m;
        p[j] -= lr * m;
        grad[j] = 0.0f;
    }
}
static void sdl__sgd_range(void *ctx, int64_t begin, int64_t end) {
    const sdl__update *u = (const sdl__update *)ctx;
    float mu = u->o->desc.momentum;
    bool first = u->o->step == 0, nesterov = u->o->desc.nesterov;
    if (u->m && !first && !nesterov && u->wd == 0.0f && u->trust == 1.0f) {
        sdl__sgd_momentum(u->p + begin, u->g + begin, u->m + begin, end - begin, u->lr, mu);
        return;
    }
    for (int64_t j = begin; j < end; j++) {
        sdl__sgd_elem(&u->p[j], u->m ? &u->m[j] : NULL, u->trust * (u->g[j] + u->wd * u->p[j]), u->lr, mu, first, nesterov);
        u->g[j] = 0.0f;
    }
}

/* adam (PyTorch's form): g = grad + wd p  (adamw instead decays first: p *= 1 - lr wd)
     m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
     p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
static void sdl__adam_range(void *ctx, int64_t begin, int64_t end) {
    const sdl__update *u = (const sdl__update *)ctx;
    float b1 = u->o->desc.beta1, b2 = u->o->desc.beta2, eps = u->o->desc.eps;
    float step_size = u->lr / u->bc1, sqrt_bc2 = sqrtf(u->bc2);
    bool decoupled = u->o->desc.kind == SDL_OPTIM_ADAMW;
    float shrink = 1.0f - u->lr * u->wd;
    for (int64_t j = begin; j < end; j++) {
        sdl__adam_elem(&u->p[j], &u->m[j], &u->v[j], u->g[j], b1, b2, eps, step_size, sqrt_bc2, u->wd, shrink, decoupled);
        u->g[j] = 0.0f;
    }
}

/* lamb (You et al. 2019), in two passes over a tensor:
     1. m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
        r = (m / bc1) / (sqrt(v / bc2) + eps) + wd p, kept in g's place (pass 2 zeroes
        it, as every update does); sums of p^2 and r^2
     2. trust = ||p|| / ||r|| (1 when either norm is 0, or for decay=false tensors)
        p -= lr * trust * r */
static void sdl__lamb_moments_range(void *ctx, int64_t begin, int64_t end, double sums[2]) {
    const sdl__update *u = (const sdl__update *)ctx;
    float b1 = u->o->desc.beta1, b2 = u->o->desc.beta2, eps = u->o->desc.eps;
    for (int64_t j = begin; j < end; j++) {
        float r = sdl__lamb_elem(&u->m[j], &u->v[j], u->g[j], u->p[j], b1, b2, eps, u->bc1, u->bc2, u->wd);
        u->g[j] = r;
        sums[0] += (double)u->p[j] * (double)u->p[j];
        sums[1] += (double)r * (double)r;
    }
}
static void sdl__lamb_apply_range(void *ctx, int64_t begin, int64_t end) {
    const sdl__update *u = (const sdl__update *)ctx;
    float step = u->lr * u->trust;
    for (int64_t j = begin; j < end; j++) {
        u->p[j] -= step * u->g[j];
        u->g[j] = 0.0f;
    }
}

/* lars: ||p||^2 and ||grad||^2 in one pass */
static void sdl__lars_norms_range(void *ctx, int64_t begin, int64_t end, double sums[2]) {
    const sdl__update *u = (const sdl__update *)ctx;
    for (int64_t j = begin; j < end; j++) {
        sums[0] += (double)u->p[j] * (double)u->p[j];
        sums[1] += (double)u->g[j] * (double)u->g[j];
    }
}

/* Parameter i's lr scale and weight decay (its group's, 0 for decay = false), or false when
   it is frozen (the update skips it). The CPU loop and device backends share it. */
static bool sdl__optim_param(const sdl_optim *o, int i, float *lr_scale, float *wd) {
    const sdl_tensor *p = o->model->params[i];
    *lr_scale = o->group_lr ? o->group_lr[i] : 1.0f;
    *wd = !p->decay ? 0.0f : o->group_wd ? o->group_wd[i] : o->desc.weight_decay;
    return p->requires_grad;
}

/* one update of every parameter tensor, each split over the threads by index */
/* the per-tensor updates of SDL_OPTIMS, each split over the threads by index */
static const int64_t sdl__optim_grain = 1 << 15;
static void sdl__sgd_tensor(sdl__update *u, int64_t n, bool decay) {
    (void)decay;
    sdl_parallel_for(n, sdl__optim_grain, sdl__sgd_range, u);
}
static void sdl__adam_tensor(sdl__update *u, int64_t n, bool decay) {
    (void)decay;
    sdl_parallel_for(n, sdl__optim_grain, sdl__adam_range, u);
}
static void sdl__lamb_tensor(sdl__update *u, int64_t n, bool decay) {
    double sq[2];
    sdl__sum2(n, sdl__lamb_moments_range, u, sq);
    if (decay && sq[0] > 0.0 && sq[1] > 0.0) u->trust = (float)sqrt(sq[0] / sq[1]);
    sdl_parallel_for(n, sdl__optim_grain, sdl__lamb_apply_range, u);
}
/* lars (You, Gitman, Ginsburg 2017; NVIDIA apex LARC without clipping):
     trust = eta * ||p|| / (||grad|| + wd * ||p||)   (1 when either norm is 0)
   then sgd with momentum on trust * (grad + wd p), lr outside the momentum */
static void sdl__lars_tensor(sdl__update *u, int64_t n, bool decay) {
    if (decay) {
        double sq[2];
        sdl__sum2(n, sdl__lars_norms_range, u, sq);
        double pn = sqrt(sq[0]), gn = sqrt(sq[1]);
        if (pn > 0.0 && gn > 0.0) u->trust = (float)((double)u->o->desc.trust_coef * pn / (gn + (double)u->wd * pn));
    }
    sdl_parallel_for(n, sdl__optim_grain, sdl__sgd_range, u);
}

typedef struct sdl__optim_row {
    const char *name;
    int slots;
    const char *slot_name[2];
    float lr, eps;
    void (*update)(sdl__update *u, int64_t n, bool decay);
} sdl__optim_row;
#define SDL__OPTIM_ROW(KIND, name, slots, s0, s1, lr, eps, update) {#name, slots, {s0, s1}, lr, eps, update},
static const sdl__optim_row sdl__optims[SDL_OPTIM_COUNT] = {{NULL, 0, {NULL, NULL}, 0.0f, 0.0f, NULL}, SDL_OPTIMS(SDL__OPTIM_ROW)};
#undef SDL__OPTIM_ROW

SDL_API const char *sdl_optim_name(sdl_optim_kind kind) {
    if (kind == SDL_OPTIM_DEFAULT) kind = SDL_OPTIM_SGD;
    return kind > SDL_OPTIM_DEFAULT && kind < SDL_OPTIM_COUNT ? sdl__optims[kind].name : NULL;
}

/* one update of every parameter tensor */
static void sdl__optim_update(sdl_optim *o) {
    sdl_model *m = o->model;
    const sdl_optim_desc *d = &o->desc;
    double t = (double)(o->step + 1);
    for (int i = 0; i < m->nparams; i++) {
        int64_t off = m->param_offset[i], n = m->params[i]->numel;
        bool decay = m->params[i]->decay;
        sdl__update u;
        if (!sdl__optim_param(o, i, &u.lr, &u.wd)) { /* frozen: value and state stay */
            memset(m->grad_data + off, 0, (size_t)n * sizeof(float));
            continue;
        }
        u.o = o;
        u.p = m->param_data + off;
        u.g = m->grad_data + off;
        u.m = o->nstate > 0 ? o->state + off : NULL;
        u.v = o->nstate > 1 ? o->state + m->param_floats + off : NULL;
        u.lr *= o->lr;
        u.trust = 1.0f;
        u.bc1 = (float)(1.0 - pow((double)d->beta1, t));
        u.bc2 = (float)(1.0 - pow((double)d->beta2, t));
        sdl__optims[d->kind].update(&u, n, decay);
    }
}

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc) {
    if (!m || !desc) { sdl_fail(SDL_ERR_ARG, "optim_new: NULL model or desc"); return NULL; }
    sdl_optim_desc d = *desc;
    if (d.kind == SDL_OPTIM_DEFAULT) d.kind = SDL_OPTIM_SGD;
    if ((int)d.kind < (int)SDL_OPTIM_SGD || (int)d.kind >= (int)SDL_OPTIM_COUNT) {
        sdl_fail(SDL_ERR_ARG, "optim_new: bad kind %d", (int)d.kind);
        return NULL;
    }
    const sdl__optim_row *row = &sdl__optims[d.kind];
    bool adam_like = row->slots == 2;
    d.lr = sdl__default(d.lr, row->lr);
    d.beta1 = sdl__default(d.beta1, 0.9f);
    d.beta2 = sdl__default(d.beta2, 0.999f);
    d.eps = sdl__default(d.eps, row->eps);
    d.trust_coef = sdl__default(d.trust_coef, 0.001f);
    if (d.accum_steps < 1) d.accum_steps = 1;
    const char *bad = NULL;
    if (!(d.lr > 0.0f)) bad = "lr (must be > 0)";
    else if (!(d.momentum >= 0.0f && d.momentum < 1.0f)) bad = "momentum (must be in [0, 1))";
    else if (!(d.weight_decay >= 0.0f)) bad = "weight_decay (must be >= 0)";
    else if (d.nesterov && (d.momentum == 0.0f || adam_like)) bad = "nesterov (needs sgd or lars with momentum)";
    else if (!(d.beta1 > 0.0f && d.beta1 < 1.0f && d.beta2 > 0.0f && d.beta2 < 1.0f)) bad = "beta1/beta2 (must be in (0, 1))";
    else if (!(d.eps > 0.0f && d.trust_coef > 0.0f)) bad = "eps/trust_coef (must be > 0)";
    else if (!(d.max_grad_norm >= 0.0f)) bad = "max_grad_norm (must be >= 0)";
    if (bad) { sdl_fail(SDL_ERR_ARG, "optim_new: bad %s", bad); return NULL; }
    if (sdl_model_pack(m) != SDL_OK) return NULL;
    sdl_optim *o = (sdl_optim *)sdl__calloc(1, sizeof(sdl_optim));
    if (!o) return NULL;
    o->desc = d;
    o->model = m;
    o->lr = d.lr;
    o->nstate = adam_like ? 2 : (d.momentum != 0.0f ? 1 : 0);
    o->device = sdl__model_device(m);
    if (o->device != SDL_CPU) { /* the state lives beside the parameters */
        const sdl_backend *be = sdl_get_backend(o->device);
        size_t bytes = 0;
        if (!be || sdl__mul_overflows((size_t)o->nstate * (size_t)m->param_floats, sizeof(float), &bytes)) {
            sdl_fail(SDL_ERR_DEVICE, "optim_new: no backend for the model's device or size overflow");
        } else if ((o->state = (float *)be->alloc(bytes)) != NULL) {
            be->memset0(o->state, bytes);
        }
    } else {
        o->state = (float *)sdl__calloc((size_t)o->nstate * (size_t)m->param_floats, sizeof(float));
    }
    if (!o->state) { SDL_DEALLOC(o); return NULL; }
    return o;
}

static sdl_optim *sdl__optim_make(sdl_model *m, sdl_optim_kind kind, float lr, float momentum, float beta1,
                                  float beta2, float weight_decay, bool nesterov, float trust_coef) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    d.lr = lr;
    d.momentum = momentum;
    d.beta1 = beta1;
    d.beta2 = beta2;
    d.weight_decay = weight_decay;
    d.nesterov = nesterov;
    d.trust_coef = trust_coef;
    return sdl_optim_new(m, &d);
}
SDL_API sdl_optim *sdl_sgd(sdl_model *m, float lr, float momentum, float weight_decay, bool nesterov) {
    return sdl__optim_make(m, SDL_OPTIM_SGD, lr, momentum, 0, 0, weight_decay, nesterov, 0);
}
SDL_API sdl_optim *sdl_adam(sdl_model *m, float lr, float beta1, float beta2, float weight_decay) {
    return sdl__optim_make(m, SDL_OPTIM_ADAM, lr, 0, beta1, beta2, weight_decay, false, 0);
}
SDL_API sdl_optim *sdl_adamw(sdl_model *m, float lr, float beta1, float beta2, float weight_decay) {
    return sdl__optim_make(m, SDL_OPTIM_ADAMW, lr, 0, beta1, beta2, weight_decay, false, 0);
}
SDL_API sdl_optim *sdl_lars(sdl_model *m, float lr, float momentum, float weight_decay, float trust_coef) {
    return sdl__optim_make(m, SDL_OPTIM_LARS, lr, momentum, 0, 0, weight_decay, false, trust_coef);
}
SDL_API sdl_optim *sdl_lamb(sdl_model *m, float lr, float beta1, float beta2, float weight_decay) {
    return sdl__optim_make(m, SDL_OPTIM_LAMB, lr, 0, beta1, beta2, weight_decay, false, 0);
}

/* a flag's value against a name: any case, '-' and '_' alike */
static bool sdl__name_is(const char *s, const char *name) {
    for (; *s && *name; s++, name++) {
        char a = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s, b = *name;
        if (a != b && !((a == '-' || a == '_') && (b == '-' || b == '_'))) return false;
    }
    return !*s && !*name;
}

SDL_API sdl_optim *sdl_optim_by_name(sdl_model *m, const char *name, float lr, float weight_decay) {
    static const char *const names[] = {"sgd", "nesterov", "adam", "adamw", "lars", "lamb"};
    static const sdl_optim_kind kinds[] = {SDL_OPTIM_SGD, SDL_OPTIM_SGD, SDL_OPTIM_ADAM, SDL_OPTIM_ADAMW, SDL_OPTIM_LARS, SDL_OPTIM_LAMB};
    for (int i = 0; name && i < 6; i++) {
        if (!sdl__name_is(name, names[i])) continue;
        sdl_optim_desc d;
        memset(&d, 0, sizeof d);
        d.kind = kinds[i];
        d.lr = lr;
        d.weight_decay = weight_decay;
        d.momentum = kinds[i] == SDL_OPTIM_SGD || kinds[i] == SDL_OPTIM_LARS ? 0.9f : 0.0f;
        d.nesterov = i == 1;
        return sdl_optim_new(m, &d);
    }
    sdl_fail(SDL_ERR_ARG, "optimizer '%s': sgd, nesterov, adam, adamw, lars or lamb", name ? name : "(null)");
    return NULL;
}

SDL_API bool sdl_optim_is_update_step(const sdl_optim *o) {
    return o && o->micro + 1 >= o->desc.accum_steps;
}

SDL_API sdl_result sdl_optim_step(sdl_optim *o) {
    if (!o) return sdl_fail(SDL_ERR_ARG, "optim_step: NULL optimizer");
    sdl_model *m = o->model;
    if (o->device != sdl__model_device(m))
        return sdl_fail(SDL_ERR_DEVICE, "optim_step: the model moved to device %d after the optimizer was made (make it after the move)", (int)sdl__model_device(m));
    const sdl_backend *be = sdl_get_backend(o->device);
    if (o->device != SDL_CPU && (!be || !be->optim_step))
        return sdl_fail(SDL_ERR_DEVICE, "optim_step: no optimizer kernel on device %d", (int)o->device);
    if (!sdl_optim_is_update_step(o)) { o->micro++; return SDL_OK; } /* gradients keep adding up */
    if ((o->desc.accum_steps > 1 || o->desc.max_grad_norm > 0.0f) && !sdl__grad_backend(m, "optim_step")) return sdl_last_result();
    o->micro = 0;
    if (o->desc.accum_steps > 1) sdl_grad_scale(m, 1.0f / (float)o->desc.accum_steps);
    if (o->desc.max_grad_norm > 0.0f) o->grad_norm = sdl_clip_grad_norm(m, o->desc.max_grad_norm);
    if (o->device != SDL_CPU) { /* the backend updates its own arrays */
        sdl_result r = be->optim_step(o);
        if (r != SDL_OK) return r;
        o->step++;
        sdl_model_zero_grad(m);
        return SDL_OK;
    }
    sdl__optim_update(o); /* zeroes the gradients as it goes */
    o->step++;
    sdl__grads_zeroed(m);
    return SDL_OK;
}

SDL_API void sdl_optim_set_lr(sdl_optim *o, float lr) { if (o) o->lr = lr; }

SDL_API sdl_result sdl_optim_add_group(sdl_optim *o, const sdl_param_group *g) {
    if (!o || !g || !g->prefix) return sdl_fail(SDL_ERR_ARG, "optim_add_group: NULL optimizer, group or prefix");
    float scale = sdl__default(g->lr_scale, 1.0f), wd = g->no_weight_decay ? 0.0f : sdl__default(g->weight_decay, o->desc.weight_decay);
    if (!(scale > 0.0f) || !(wd >= 0.0f) || !isfinite(scale) || !isfinite(wd))
        return sdl_fail(SDL_ERR_ARG, "optim_add_group '%s': lr_scale must be > 0 and weight_decay >= 0 (got %g, %g)", g->prefix, scale, wd);
    sdl_model *m = o->model;
    if (!o->group_lr) {
        o->group_lr = (float *)sdl__calloc((size_t)m->nparams + 1, sizeof(float));
        o->group_wd = (float *)sdl__calloc((size_t)m->nparams + 1, sizeof(float));
        if (!o->group_lr || !o->group_wd) {
            SDL_DEALLOC(o->group_lr);
            SDL_DEALLOC(o->group_wd);
            o->group_lr = o->group_wd = NULL;
            return sdl__err_code;
        }
        for (int i = 0; i < m->nparams; i++) { o->group_lr[i] = 1.0f; o->group_wd[i] = o->desc.weight_decay; }
    }
    int hits = 0;
    for (int i = 0; i < m->nparams; i++)
        if (sdl__has_prefix(m->params[i]->name, g->prefix)) { o->group_lr[i] = scale; o->group_wd[i] = wd; hits++; }
    return hits ? SDL_OK : sdl_fail(SDL_ERR_ARG, "optim_add_group: no parameter name starts with '%s'", g->prefix);
}

SDL_API int sdl_optim_state_count(const sdl_optim *o) { return o ? o->nstate : 0; }

SDL_API const char *sdl_optim_state_name(const sdl_optim *o, int k) {
    if (!o || k < 0 || k >= o->nstate) return NULL;
    return sdl__optims[o->desc.kind].slot_name[k];
}

SDL_API float *sdl_optim_state_data(sdl_optim *o, int k) {
    if (!o || k < 0 || k >= o->nstate) return NULL;
    return o->state + (int64_t)k * o->model->param_floats;
}

SDL_API void sdl_optim_free(sdl_optim *o) {
    if (!o) return;
    const sdl_backend *be = sdl_get_backend(o->device);
    if (o->device == SDL_CPU) SDL_DEALLOC(o->state);
    else if (be) be->dealloc(o->state);
    SDL_DEALLOC(o->group_lr);
    SDL_DEALLOC(o->group_wd);
    SDL_DEALLOC(o);
}

/* ---- the loss scaler (see >>decl-optim). Device-independent: it only needs the backend's
   scale and sumsq on the flat gradient array, so one code path serves the CPU and the GPU. */
static void sdl__scaler_defaults(sdl_loss_scaler *s) {
    s->scale = sdl__default(s->scale, 65536.0f);
    s->growth_factor = sdl__default(s->growth_factor, 2.0f);
    s->backoff_factor = sdl__default(s->backoff_factor, 0.5f);
    if (s->growth_interval <= 0) s->growth_interval = 2000;
}

SDL_API sdl_result sdl_scaled_backward(sdl_loss_scaler *s, sdl_tensor *loss) {
    if (!s) return sdl_fail(SDL_ERR_ARG, "scaled_backward: NULL scaler");
    sdl__scaler_defaults(s);
    if (!loss) return sdl_backward(NULL);
    return sdl_backward(sdl_scale(loss, s->scale));
}

SDL_API sdl_result sdl_scaler_step(sdl_loss_scaler *s, sdl_optim *o) {
    if (!s || !o) return sdl_fail(SDL_ERR_ARG, "scaler_step: NULL scaler or optimizer");
    sdl__scaler_defaults(s);
    if (!sdl_optim_is_update_step(o)) return sdl_optim_step(o); /* a micro-batch: the scaled grads add up */
    sdl_model *m = o->model;
    const sdl_backend *be = sdl__grad_backend(m, "scaler_step");
    if (!be) return sdl_last_result();
    s->found_inf = !isfinite(be->sumsq(m->grad_data, m->param_floats));
    if (s->found_inf) { /* skip: as if this update's batches never happened */
        s->scale *= s->backoff_factor;
        s->good_steps = 0;
        s->skipped++;
        o->micro = 0;
        sdl_model_zero_grad(m);
        return SDL_OK;
    }
    be->scale(m->grad_data, m->param_floats, 1.0f / s->scale); /* exact for a power-of-two scale */
    sdl_result r = sdl_optim_step(o);
    if (r != SDL_OK) return r;
    if (++s->good_steps >= s->growth_interval) {
        float grown = s->scale * s->growth_factor;
        if (isfinite(grown)) s->scale = grown;
        s->good_steps = 0;
    }
    return SDL_OK;
}

SDL__COLD_BEGIN
/* >>sched */
/* PyTorch's OneCycleLR, two phases with cosine annealing, for step in [0, total):
     rise from max/div to max over steps [0, e1], e1 = pct_start * total - 1,
     then fall from max to max/div/final_div over [e1, total - 1];
     cos_anneal(a, b, pct) = b + (a - b) (1 + cos(pi pct)) / 2 */
static double sdl__cos_anneal(double a, double b, double pct) { return b + (a - b) * 0.5 * (1.0 + cos(3.14159265358979323846 * pct)); }

static double sdl__one_cycle(const sdl_sched_desc *d, int64_t step, int64_t total) {
    double max_lr = d->base_lr;
    double start = max_lr / sdl__default(d->div_factor, 25.0f);
    double end = start / sdl__default(d->final_div_factor, 1e4f);
    double e1 = (double)sdl__default(d->pct_start, 0.3f) * (double)total - 1.0, e2 = (double)total - 1.0;
    double s = (double)(step < 0 ? 0 : step);
    if (s > e2) s = e2;
    if (s <= e1) return e1 > 0.0 ? sdl__cos_anneal(start, max_lr, s / e1) : max_lr;
    return e2 > e1 ? sdl__cos_anneal(max_lr, end, (s - e1) / (e2 - e1)) : end;
}

/* the main schedule (no warm-up) at step */
static double sdl__sched_main(const sdl_sched_desc *d, int64_t step) {
    double base = d->base_lr;
    int64_t t = step - d->warmup, T = d->total - d->warmup; /* cosine, one-cycle: after warm-up */
    if (d->kind == SDL_SCHED_STEP) {
        double gamma = sdl__default(d->gamma, 0.1f), lr = base;
        for (int i = 0; i < SDL_SCHED_MAX_MILESTONES; i++)
            if (d->milestones[i] > 0 && step >= d->milestones[i]) lr *= gamma;
        return lr;
    }
    if (d->kind == SDL_SCHED_COSINE) {
        if (T <= 0) return base;
        if (t < 0) t = 0;
        if (t > T) t = T;
        return sdl__cos_anneal(base, d->min_lr, (double)t / (double)T);
    }
    if (d->kind == SDL_SCHED_ONE_CYCLE) return sdl__one_cycle(d, t, T);
    return base;
}

SDL_API float sdl_sched_lr(const sdl_sched_desc *d, int64_t step) {
    if (!d) return 0.0f;
    if (step < d->warmup) {
        double f = d->warmup_start_factor, L = sdl__sched_main(d, d->warmup);
        if (step < 0) step = 0;
        return (float)(L * (f + (1.0 - f) * (double)step / (double)d->warmup));
    }
    return (float)sdl__sched_main(d, step);
}

SDL_API float sdl_scale_lr(float lr, int world_size, int local_batch, int base_batch) {
    double s = world_size > 0 ? world_size : 1;
    if (base_batch > 0) s = s * local_batch / base_batch;
    return (float)(lr * s);
}

SDL_API sdl_result sdl_sched_by_name(sdl_sched_desc *d, const char *name) {
    if (!d || !name) return sdl_fail(SDL_ERR_ARG, "sched_by_name: NULL desc or name");
    memset(d->milestones, 0, sizeof d->milestones);
    bool course = sdl__name_is(name, "step_wise_decay"), warm = sdl__name_is(name, "step_wise_decay_with_warmup");
    if (sdl__name_is(name, "none") || sdl__name_is(name, "constant")) d->kind = SDL_SCHED_CONSTANT;
    else if (sdl__name_is(name, "cosine")) d->kind = SDL_SCHED_COSINE;
    else if (sdl__name_is(name, "one-cycle") || sdl__name_is(name, "clr")) d->kind = SDL_SCHED_ONE_CYCLE;
    else if (sdl__name_is(name, "step")) {
        d->kind = SDL_SCHED_STEP;
        d->milestones[0] = d->total / 2;
        d->milestones[1] = d->total * 3 / 4;
    } else if (course || warm) {
        d->kind = SDL_SCHED_STEP;
        d->milestones[0] = d->total * 80 / 150;
        d->milestones[1] = d->total * 120 / 150;
        if (warm && d->warmup <= 0) d->warmup = d->total * 5 / 150 > 0 ? d->total * 5 / 150 : 1;
        if (warm && d->warmup_start_factor <= 0.0f) d->warmup_start_factor = 0.1f;
    } else {
        return sdl_fail(SDL_ERR_ARG, "lr scheduler '%s': none, cosine, step, one-cycle (clr), step_wise_decay or "
                        "step_wise_decay_with_warmup", name);
    }
    return SDL_OK;
}

/* >>data */
/* ----------------------------------------------------------------------------------------
   Dataset readers. Each reads a whole file into memory, checks every header field
   and size against the file before it trusts it, and names the file in each error.
   ---------------------------------------------------------------------------------------- */


SDL_API void sdl_dataset_free(sdl_dataset *d) {
    if (!d) return;
    SDL_DEALLOC(d->images);
    SDL_DEALLOC(d->labels);
    memset(d, 0, sizeof *d);
}

/* CRC-32 (IEEE 802.3, reflected: the one gzip, zip and PNG use), a byte at a time. The
   table is entry i = i run through 8 rounds of "shift right, xor 0xEDB88320 if the bit
   shifted out was 1"; written out so there is nothing to build (or race on) at run time. */
static const uint32_t sdl__crc_table[256] = {
        0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu, 0xE963A535u, 0x9E6495A3u,
        0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u, 0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u,
        0x1DB71064u, 0x6AB020F2u, 0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
        0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u, 0xFA0F3D63u, 0x8D080DF5u,
        0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u, 0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu,
        0x35B5A8FAu, 0x42B2986Cu, 0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
        0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u, 0xCFBA9599u, 0xB8BDA50Fu,
        0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u, 0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du,
        0x76DC4190u, 0x01DB7106u, 0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
        0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du, 0x91646C97u, 0xE6635C01u,
        0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu, 0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u,
        0x65B0D9C6u, 0x12B7E950u, 0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
        0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u, 0xA4D1C46Du, 0xD3D6F4FBu,
        0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u, 0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u,
        0x5005713Cu, 0x270241AAu, 0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
        0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u, 0xB7BD5C3Bu, 0xC0BA6CADu,
        0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au, 0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u,
        0xE3630B12u, 0x94643B84u, 0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
        0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu, 0x196C3671u, 0x6E6B06E7u,
        0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu, 0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u,
        0xD6D6A3E8u, 0xA1D1937Eu, 0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
        0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u, 0x316E8EEFu, 0x4669BE79u,
        0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u, 0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu,
        0xC5BA3BBEu, 0xB2BD0B28u, 0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
        0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu, 0x72076785u, 0x05005713u,
        0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u, 0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u,
        0x86D3D2D4u, 0xF1D4E242u, 0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
        0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u, 0x616BFFD3u, 0x166CCF45u,
        0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u, 0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu,
        0xAED16A4Au, 0xD9D65ADCu, 0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
        0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u, 0x54DE5729u, 0x23D967BFu,
        0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u, 0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du};

static uint32_t sdl__crc32(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = sdl__crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t sdl__le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t sdl__le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t sdl__be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3]; }

static bool sdl__is_dir(const char *path);

/* fopen(path, "rb") that names the path in its error, and refuses folders (which Linux
   opens, then reports a size of 2^63 for) */
static FILE *sdl__open_read(const char *path) {
    if (sdl__is_dir(path)) { sdl_fail(SDL_ERR_IO, "%s: is a folder, not a file", path); return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) sdl_fail(SDL_ERR_IO, "%s: cannot open for reading", path);
    return f;
}

/* the whole file in one heap block (free with SDL_DEALLOC) */
static uint8_t *sdl__read_file(const char *path, size_t *size) {
    *size = 0;
    FILE *f = sdl__open_read(path);
    if (!f) return NULL;
    long end = -1;
    if (fseek(f, 0, SEEK_END) == 0) end = ftell(f);
    if (end < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        sdl_fail(SDL_ERR_IO, "%s: cannot find its size (not a regular file?)", path);
        return NULL;
    }
    uint8_t *buf = (uint8_t *)SDL_ALLOC(end ? (size_t)end : 1);
    if (!buf) { fclose(f); sdl_fail(SDL_ERR_OOM, "%s: out of memory reading %ld bytes", path, end); return NULL; }
    size_t got = fread(buf, 1, (size_t)end, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err || got != (size_t)end) {
        SDL_DEALLOC(buf);
        sdl_fail(SDL_ERR_IO, "%s: read %zu of %ld bytes", path, got, end);
        return NULL;
    }
    *size = (size_t)end;
    return buf;
}

/* decodes a raw deflate stream of n bytes into exactly out_n bytes (out_n known from a
   gzip or zip header); false with an error naming path. stb v2.27 reports "bad huffman
   code" when fewer than 16 bits remain at the end of its input, even when the stream is
   complete, so it is given 8 bytes after the stream: slack (the readable bytes that follow
   src + n in the caller's buffer) or else a zero-padded copy. Bytes it reads past the
   stream only ever come from that padding or the file; the CRC-32 check catches the rest. */
static bool sdl__inflate(const char *path, const uint8_t *src, size_t n, size_t slack, uint8_t *dst, size_t out_n) {
#ifdef SDL_NO_STB
    SDL__UNUSED(src); SDL__UNUSED(n); SDL__UNUSED(slack); SDL__UNUSED(dst); SDL__UNUSED(out_n);
    sdl_fail(SDL_ERR_ARG, "%s: compressed data needs stb_image's zlib decoder, and sdl was built with SDL_NO_STB", path);
    return false;
#else
    if (n > (size_t)INT32_MAX - 8 || out_n > (size_t)INT32_MAX) {
        sdl_fail(SDL_ERR_FORMAT, "%s: a compressed member over 2 GB (stb's decoder reads at most 2 GB)", path);
        return false;
    }
    uint8_t *padded = NULL;
    if (slack < 8) {
        padded = (uint8_t *)sdl__calloc(n + 8, 1);
        if (!padded) return false;
        if (n) memcpy(padded, src, n);
        src = padded;
    }
    /* stb wants room for at least one byte; an empty member decodes to 0 bytes */
    uint8_t one;
    int got = stbi_zlib_decode_noheader_buffer((char *)(out_n ? dst : &one), out_n ? (int)out_n : 1, (const char *)src, (int)n + 8);
    SDL_DEALLOC(padded);
    if (got < 0) {
        sdl_fail(SDL_ERR_FORMAT, "%s: corrupt deflate data (%s)", path, stbi_failure_reason());
        return false;
    }
    if ((size_t)got != out_n) {
        sdl_fail(SDL_ERR_FORMAT, "%s: deflate data decodes to %d bytes, the header says %zu", path, got, out_n);
        return false;
    }
    return true;
#endif
}

/* a gzip member (RFC 1952): header, raw deflate data, CRC-32 and size of the data */
static uint8_t *sdl__gunzip(const char *path, const uint8_t *gz, size_t n, size_t *out_n) {
    *out_n = 0;
    if (n < 18) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated gzip file (%zu bytes)", path, n); return NULL; }
    if (gz[2] != 8) { sdl_fail(SDL_ERR_FORMAT, "%s: gzip compression method %d, only deflate (8) exists", path, gz[2]); return NULL; }
    uint8_t flg = gz[3];
    if (flg & 0xE0) { sdl_fail(SDL_ERR_FORMAT, "%s: gzip header has reserved flag bits set (0x%02x)", path, flg); return NULL; }
    size_t pos = 10, end = n - 8; /* the trailer is the last 8 bytes */
    if (flg & 4) { /* FEXTRA: 2-byte length, then that many bytes */
        if (pos + 2 > end) goto truncated;
        pos += 2 + sdl__le16(gz + pos);
    }
    for (int field = 8; field <= 16; field += 8) /* FNAME, FCOMMENT: zero-terminated */
        if (flg & field) {
            while (pos < end && gz[pos]) pos++;
            pos++;
        }
    if (flg & 2) { /* FHCRC: low 16 bits of the CRC-32 of the header so far */
        if (pos + 2 > end) goto truncated;
        if ((sdl__crc32(0, gz, pos) & 0xFFFF) != sdl__le16(gz + pos)) {
            sdl_fail(SDL_ERR_FORMAT, "%s: gzip header checksum mismatch", path);
            return NULL;
        }
        pos += 2;
    }
    if (pos >= end) goto truncated;
    {
        uint32_t crc = sdl__le32(gz + n - 8), isize = sdl__le32(gz + n - 4);
        /* deflate expands at most ~1032:1; a larger claim is a corrupt trailer, not a reason
           to allocate gigabytes */
        if ((double)isize > 1032.0 * (double)(end - pos) + 64.0) {
            sdl_fail(SDL_ERR_FORMAT, "%s: gzip trailer claims %u bytes from %zu compressed (corrupt or truncated)", path, isize, end - pos);
            return NULL;
        }
        uint8_t *out = (uint8_t *)SDL_ALLOC(isize ? isize : 1);
        if (!out) { sdl_fail(SDL_ERR_OOM, "%s: out of memory for %u decompressed bytes", path, isize); return NULL; }
        if (!sdl__inflate(path, gz + pos, end - pos, 8, out, isize)) { SDL_DEALLOC(out); return NULL; }
        if (sdl__crc32(0, out, isize) != crc) {
            SDL_DEALLOC(out);
            sdl_fail(SDL_ERR_FORMAT, "%s: CRC-32 mismatch after decompression (corrupt file)", path);
            return NULL;
        }
        *out_n = isize;
        return out;
    }
truncated:
    sdl_fail(SDL_ERR_FORMAT, "%s: truncated gzip header", path);
    return NULL;
}

/* the file's bytes, decompressed when it starts with gzip's magic bytes 1f 8b */
static uint8_t *sdl__read_file_gz(const char *path, size_t *size) {
    uint8_t *raw = sdl__read_file(path, size);
    if (!raw || *size < 2 || raw[0] != 0x1F || raw[1] != 0x8B) return raw;
    uint8_t *out = sdl__gunzip(path, raw, *size, size);
    SDL_DEALLOC(raw);
    return out;
}

/* dir + "/" + name + suffix on the heap */
static char *sdl__path_join(const char *dir, const char *name, const char *suffix) {
    size_t nd = strlen(dir), nn = strlen(name), ns = strlen(suffix);
    char *p = (char *)sdl__alloc(nd + nn + ns + 2);
    if (!p) return NULL;
    memcpy(p, dir, nd);
    size_t k = nd;
    if (nd && dir[nd - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, nn);
    memcpy(p + k + nn, suffix, ns + 1);
    return p;
}

static bool sdl__file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static bool sdl__is_dir(const char *path) {
#ifdef _WIN32
    SDL__UNUSED(path);
    return true;
#else
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#endif
}

/* IDX: 0 0 type ndim, then ndim big-endian u32 sizes, then the elements (row-major).
   Returns the element bytes; dims[] gets the sizes. */
static const uint8_t *sdl__idx_parse(const char *path, const uint8_t *p, size_t n, int want_ndim, int64_t *dims) {
    if (n < 4) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated IDX file (%zu bytes)", path, n); return NULL; }
    if (p[0] || p[1]) { sdl_fail(SDL_ERR_FORMAT, "%s: not an IDX file (first bytes %02x %02x, expected 00 00)", path, p[0], p[1]); return NULL; }
    if (p[2] != 0x08) { sdl_fail(SDL_ERR_FORMAT, "%s: IDX element type 0x%02x; sdl reads unsigned bytes (0x08) only", path, p[2]); return NULL; }
    if (p[3] != want_ndim) {
        sdl_fail(SDL_ERR_FORMAT, "%s: IDX file with %d dimensions, expected %d (%s)", path, p[3], want_ndim,
                 want_ndim == 3 ? "images: count, rows, columns" : "labels: count");
        return NULL;
    }
    size_t hdr = 4 + 4 * (size_t)want_ndim;
    if (n < hdr) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated IDX header (%zu bytes)", path, n); return NULL; }
    uint64_t total = 1;
    for (int i = 0; i < want_ndim; i++) {
        dims[i] = (int64_t)sdl__be32(p + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > INT32_MAX) {
            sdl_fail(SDL_ERR_FORMAT, "%s: IDX dimension %d is %lld", path, i, (long long)dims[i]);
            return NULL;
        }
        if (total > ((uint64_t)1 << 50) / (uint64_t)dims[i]) {
            sdl_fail(SDL_ERR_FORMAT, "%s: IDX sizes multiply past 2^50 bytes", path);
            return NULL;
        }
        total *= (uint64_t)dims[i];
    }
    if ((uint64_t)(n - hdr) != total) {
        sdl_fail(SDL_ERR_FORMAT, "%s: %s: the header's sizes need %llu data bytes, the file has %zu", path,
                 (uint64_t)(n - hdr) < total ? "truncated" : "extra bytes at the end", (unsigned long long)total, n - hdr);
        return NULL;
    }
    return p + hdr;
}

SDL_API sdl_result sdl_load_idx(const char *images_path, const char *labels_path, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_idx: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) return sdl_fail(SDL_ERR_ARG, "load_idx: a path is NULL");
    size_t ni, nl;
    uint8_t *img = NULL, *lab = NULL;
    int64_t di[3], dl[1];
    sdl_result r = SDL_OK;
    const uint8_t *px, *lb;
    if (!(img = sdl__read_file_gz(images_path, &ni)) || !(px = sdl__idx_parse(images_path, img, ni, 3, di)) ||
        !(lab = sdl__read_file_gz(labels_path, &nl)) || !(lb = sdl__idx_parse(labels_path, lab, nl, 1, dl))) {
        r = sdl_last_result();
        goto done;
    }
    if (di[0] != dl[0]) {
        r = sdl_fail(SDL_ERR_FORMAT, "%s holds %lld images but %s holds %lld labels", images_path, (long long)di[0],
                     labels_path, (long long)dl[0]);
        goto done;
    }
    out->n = di[0];
    out->c = 1;
    out->h = (int)di[1];
    out->w = (int)di[2];
    out->images = (uint8_t *)sdl__alloc((size_t)(ni - 16));
    out->labels = (int32_t *)sdl__calloc((size_t)out->n, sizeof(int32_t));
    if (!out->images || !out->labels) { r = SDL_ERR_OOM; sdl_dataset_free(out); goto done; }
    memcpy(out->images, px, ni - 16);
    for (int64_t i = 0; i < out->n; i++) {
        out->labels[i] = lb[i];
        if (lb[i] >= out->num_classes) out->num_classes = lb[i] + 1;
    }
done:
    SDL_DEALLOC(img);
    SDL_DEALLOC(lab);
    return r;
}

/* train-images-idx3-ubyte[.gz] and friends in dir */
static sdl_result sdl__load_mnist_files(const char *what, const char *dir, const char *pkg, bool train, sdl_dataset *out) {
    static const char *const names[2][2] = {{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
                                            {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}};
    char *paths[2] = {NULL, NULL};
    sdl_result r = SDL_OK;
    memset(out, 0, sizeof *out);
    for (int k = 0; k < 2 && r == SDL_OK; k++) {
        const char *name = names[train ? 1 : 0][k];
        paths[k] = sdl__path_join(dir, name, "");
        if (paths[k] && !sdl__file_exists(paths[k])) {
            SDL_DEALLOC(paths[k]);
            paths[k] = sdl__path_join(dir, name, ".gz");
            if (paths[k] && !sdl__file_exists(paths[k])) {
                SDL_DEALLOC(paths[k]);
                paths[k] = NULL;
                if (!sdl__is_dir(dir))
                    r = sdl_fail(SDL_ERR_IO, "%s: folder %s not found%s%s", what, dir, pkg ? "; on Debian/Ubuntu: apt-get install " : "", pkg ? pkg : "");
                else
                    r = sdl_fail(SDL_ERR_IO, "%s: neither %s/%s nor %s/%s.gz exists", what, dir, name, dir, name);
            }
        }
        if (r == SDL_OK && !paths[k]) r = SDL_ERR_OOM;
    }
    if (r == SDL_OK) r = sdl_load_idx(paths[0], paths[1], out);
    if (r == SDL_OK) {
        for (int64_t i = 0; i < out->n; i++)
            if (out->labels[i] > 9) {
                r = sdl_fail(SDL_ERR_FORMAT, "%s: label %d at index %lld; %s has 10 classes", paths[1], out->labels[i], (long long)i, what);
                sdl_dataset_free(out);
                break;
            }
        out->num_classes = r == SDL_OK ? 10 : 0;
    }
    SDL_DEALLOC(paths[0]);
    SDL_DEALLOC(paths[1]);
    return r;
}

SDL_API sdl_result sdl_load_fashion_mnist(const char *dir, bool train, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_fashion_mnist: out is NULL");
    if (!dir || !dir[0]) dir = "/usr/share/datasets/fashion-mnist";
    return sdl__load_mnist_files("Fashion-MNIST", dir, "dataset-fashion-mnist", train, out);
}

SDL_API sdl_result sdl_load_mnist(const char *dir, bool train, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_mnist: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0]) return sdl_fail(SDL_ERR_ARG, "load_mnist: give the folder that holds train-images-idx3-ubyte[.gz]");
    return sdl__load_mnist_files("MNIST", dir, NULL, train, out);
}

static sdl_result sdl__write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return sdl_fail(SDL_ERR_IO, "%s: cannot open for writing", path);
    bool ok = n == 0 || (p && fwrite(p, 1, n, f) == n);
    if (fclose(f) != 0) ok = false;
    return ok ? SDL_OK : sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", path);
}

/* ---- CIFAR-10, binary version: records of 1 label byte + 3 x 32 x 32 pixel bytes (CHW) ---- */
#define SDL__CIFAR_RECORD 3073

/* appends the records of one batch file to out (images/labels allocated for cap records) */
static sdl_result sdl__cifar_append(const char *path, sdl_dataset *out, int64_t cap, int64_t want) {
    size_t n;
    uint8_t *buf = sdl__read_file(path, &n);
    if (!buf) return sdl_last_result();
    sdl_result r = SDL_OK;
    int64_t recs = (int64_t)(n / SDL__CIFAR_RECORD);
    if (n == 0 || n % SDL__CIFAR_RECORD) {
        r = sdl_fail(SDL_ERR_FORMAT, "%s: %zu bytes is not a whole number of CIFAR-10 records (1 label byte + 3072 pixel bytes = 3073 each)%s",
                     path, n, n > SDL__CIFAR_RECORD ? "; truncated?" : "");
    } else if (want > 0 && recs != want) {
        r = sdl_fail(SDL_ERR_FORMAT, "%s: %lld records; a CIFAR-10 batch file holds %lld (truncated?)", path, (long long)recs, (long long)want);
    } else if (out->n + recs > cap) {
        r = sdl_fail(SDL_ERR_FORMAT, "%s: more records than expected", path);
    } else {
        for (int64_t i = 0; i < recs; i++) {
            const uint8_t *rec = buf + (size_t)i * SDL__CIFAR_RECORD;
            if (rec[0] > 9) {
                r = sdl_fail(SDL_ERR_FORMAT, "%s: record %lld has label %d; CIFAR-10 has 10 classes (is this CIFAR-100, with 2 label bytes?)",
                             path, (long long)i, rec[0]);
                break;
            }
            out->labels[out->n + i] = rec[0];
            memcpy(out->images + (size_t)(out->n + i) * 3072, rec + 1, 3072);
        }
        if (r == SDL_OK) out->n += recs;
    }
    SDL_DEALLOC(buf);
    return r;
}

static sdl_result sdl__cifar_alloc(sdl_dataset *out, int64_t cap) {
    out->c = 3; out->h = 32; out->w = 32; out->num_classes = 10;
    out->images = (uint8_t *)sdl__calloc((size_t)cap, 3072);
    out->labels = (int32_t *)sdl__calloc((size_t)cap, sizeof(int32_t));
    if (!out->images || !out->labels) { sdl_dataset_free(out); return SDL_ERR_OOM; }
    return SDL_OK;
}

SDL_API sdl_result sdl_load_cifar10_file(const char *path, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_cifar10_file: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return sdl_fail(SDL_ERR_ARG, "load_cifar10_file: path is NULL");
    size_t n; /* size first, so the arrays are allocated once */
    FILE *f = sdl__open_read(path);
    if (!f) return sdl_last_result();
    long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    fclose(f);
    if (end < 0) return sdl_fail(SDL_ERR_IO, "%s: cannot find its size", path);
    n = (size_t)end;
    int64_t cap = (int64_t)(n / SDL__CIFAR_RECORD) + 1;
    if (sdl__cifar_alloc(out, cap) != SDL_OK) return SDL_ERR_OOM;
    sdl_result r = sdl__cifar_append(path, out, cap, 0);
    if (r != SDL_OK) sdl_dataset_free(out);
    return r;
}

SDL_API sdl_result sdl_load_cifar10(const char *dir, bool train, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_cifar10: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0]) return sdl_fail(SDL_ERR_ARG, "load_cifar10: give the folder that holds data_batch_1.bin ... test_batch.bin");
    char *sub = NULL, *probe = sdl__path_join(dir, "data_batch_1.bin", "");
    if (!probe) return SDL_ERR_OOM;
    if (!sdl__file_exists(probe) && !(sub = sdl__path_join(dir, "cifar-10-batches-bin", ""))) { SDL_DEALLOC(probe); return SDL_ERR_OOM; }
    SDL_DEALLOC(probe);
    if (sub && sdl__is_dir(sub)) dir = sub; /* the folder the archive unpacks to */
    int nfiles = train ? 5 : 1;
    sdl_result r = sdl__cifar_alloc(out, 10000 * (int64_t)nfiles);
    for (int k = 0; k < nfiles && r == SDL_OK; k++) {
        char name[32];
        if (train) snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
        else snprintf(name, sizeof name, "test_batch.bin");
        char *path = sdl__path_join(dir, name, "");
        if (!path) { r = SDL_ERR_OOM; break; }
        if (!sdl__file_exists(path))
            r = sdl_fail(SDL_ERR_IO, "CIFAR-10: %s not found; get the binary version (cifar-10-binary.tar.gz from "
                         "https://www.cs.toronto.edu/~kriz/cifar.html) and unpack it there", path);
        else
            r = sdl__cifar_append(path, out, 10000 * (int64_t)nfiles, 10000);
        SDL_DEALLOC(path);
    }
    SDL_DEALLOC(sub);
    if (r != SDL_OK) sdl_dataset_free(out);
    return r;
}

/* ---- image folders: one sub-folder of images per class ---- */
SDL_API void sdl_names_free(char **names) {
    if (!names) return;
    for (char **p = names; *p; p++) SDL_DEALLOC(*p);
    SDL_DEALLOC(names);
}

static int sdl__strcmp_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* the entries of dir (not starting with '.'), sub-folders or files, sorted bytewise;
   NULL-terminated (free with sdl_names_free) */
static char **sdl__list_dir(const char *dir, bool folders, int *count) {
    *count = 0;
#ifdef _WIN32
    SDL__UNUSED(folders);
    sdl_fail(SDL_ERR_ARG, "%s: listing folders is not implemented on Windows", dir);
    return NULL;
#else
    DIR *d = opendir(dir);
    if (!d) { sdl_fail(SDL_ERR_IO, "%s: cannot open the folder", dir); return NULL; }
    int n = 0, cap = 16;
    char **names = (char **)sdl__calloc((size_t)cap + 1, sizeof(char *));
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = sdl__path_join(dir, e->d_name, "");
        if (!full) { sdl_names_free(names); names = NULL; break; }
        bool is_dir = sdl__is_dir(full);
        SDL_DEALLOC(full);
        if (is_dir != folders) continue;
        if (n == cap) {
            char **more = cap < INT32_MAX / 2 ? (char **)SDL_REALLOC(names, sizeof(char *) * ((size_t)cap * 2 + 1)) : NULL;
            if (!more) { sdl_fail(SDL_ERR_OOM, "%s: out of memory listing the folder", dir); sdl_names_free(names); names = NULL; break; }
            names = more;
            cap *= 2;
        }
        names[n] = sdl__strdup(e->d_name);
        if (!names[n]) { sdl_names_free(names); names = NULL; break; }
        names[++n] = NULL;
    }
    closedir(d);
    if (!names) return NULL;
    qsort(names, (size_t)n, sizeof(char *), sdl__strcmp_ptr);
    *count = n;
    return names;
#endif
}

SDL_API char **sdl_image_folder_classes(const char *dir, int *count) {
    int n = 0;
    if (count) *count = 0;
    if (!dir) { sdl_fail(SDL_ERR_ARG, "image_folder_classes: dir is NULL"); return NULL; }
    char **names = sdl__list_dir(dir, true, &n);
    if (names && n == 0) {
        sdl_names_free(names);
        sdl_fail(SDL_ERR_FORMAT, "%s: no class sub-folders (the layout is dir/<class>/<image>)", dir);
        return NULL;
    }
    if (count) *count = n;
    return names;
}

/* case-insensitive: does the name end in .ext for one of the extensions in list */
static bool sdl__has_ext(const char *name, const char *const *list) {
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    for (; *list; list++) {
        const char *a = dot + 1, *b = *list;
        while (*a && *b && (*a | 0x20) == *b) { a++; b++; }
        if (!*a && !*b) return true;
    }
    return false;
}

static const char *const sdl__image_exts[] = {"png", "jpg", "jpeg", NULL};

SDL_API sdl_result sdl_load_image_folder(const char *dir, int channels, sdl_dataset *out) {
    static const char *const unreadable[] = {"tif", "tiff", "webp", "bmp", "gif", "tga", "ppm", "pgm", "pnm", "psd", "hdr", "pic", NULL};
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_image_folder: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || channels < 0 || channels > 4) return sdl_fail(SDL_ERR_ARG, "load_image_folder: needs a folder and channels 0..4");
    int ncls = 0;
    char **classes = sdl_image_folder_classes(dir, &ncls);
    if (!classes) return sdl_last_result();
    sdl_result r = SDL_OK;
    char ***files = (char ***)sdl__calloc((size_t)ncls, sizeof(char **));
    int *nfiles = (int *)sdl__calloc((size_t)ncls, sizeof(int));
    char *first = NULL, *path = NULL;
    uint8_t *bytes = NULL, *chw = NULL;
    int64_t total = 0;
    if (!files || !nfiles) { r = SDL_ERR_OOM; goto done; }
    for (int k = 0; k < ncls && r == SDL_OK; k++) { /* pass 1: the file lists */
        char *sub = sdl__path_join(dir, classes[k], "");
        if (!sub) { r = SDL_ERR_OOM; break; }
        files[k] = sdl__list_dir(sub, false, &nfiles[k]);
        if (!files[k]) r = sdl_last_result();
        for (int i = 0; r == SDL_OK && i < nfiles[k]; i++) {
            if (sdl__has_ext(files[k][i], unreadable))
                r = sdl_fail(SDL_ERR_FORMAT, "%s/%s: sdl decodes PNG and JPEG only; convert the images to PNG", sub, files[k][i]);
            else if (sdl__has_ext(files[k][i], sdl__image_exts))
                total++;
        }
        SDL_DEALLOC(sub);
    }
    if (r == SDL_OK && total == 0) r = sdl_fail(SDL_ERR_FORMAT, "%s: no image files (.png, .jpg, ...) in its class folders", dir);
    for (int k = 0; k < ncls && r == SDL_OK; k++) /* pass 2: decode into place */
        for (int i = 0; i < nfiles[k] && r == SDL_OK; i++) {
            if (!sdl__has_ext(files[k][i], sdl__image_exts)) continue;
            SDL_DEALLOC(path);
            path = NULL;
            char *sub = sdl__path_join(dir, classes[k], "");
            if (sub) path = sdl__path_join(sub, files[k][i], "");
            SDL_DEALLOC(sub);
            size_t n;
            if (!path) { r = SDL_ERR_OOM; break; }
            if (!(bytes = sdl__read_file(path, &n))) { r = sdl_last_result(); break; }
            int c = out->c ? out->c : channels, h = 0, w = 0;
            chw = sdl__decode_image(path, bytes, n, &c, &h, &w);
            SDL_DEALLOC(bytes);
            bytes = NULL;
            if (!chw) { r = sdl_last_result(); break; }
            if (!out->images) {
                size_t per = (size_t)c * (size_t)h * (size_t)w, all;
                if (sdl__mul_overflows(per, (size_t)total, &all)) { r = sdl_fail(SDL_ERR_OOM, "%s: %lld images of %zu bytes overflow", dir, (long long)total, per); break; }
                out->c = c; out->h = h; out->w = w;
                out->images = (uint8_t *)sdl__alloc(all);
                out->labels = (int32_t *)sdl__calloc((size_t)total, sizeof(int32_t));
                if (!out->images || !out->labels) { r = SDL_ERR_OOM; break; }
                first = sdl__strdup(path);
                if (!first) { r = SDL_ERR_OOM; break; }
            } else if (h != out->h || w != out->w) {
                r = sdl_fail(SDL_ERR_FORMAT, "%s is %dx%d (width x height), the first image %s is %dx%d; sdl does not resize: make them one size",
                             path, w, h, first, out->w, out->h);
                break;
            }
            memcpy(out->images + (size_t)out->n * (size_t)c * (size_t)h * (size_t)w, chw, (size_t)c * (size_t)h * (size_t)w);
            out->labels[out->n++] = k;
            SDL_DEALLOC(chw);
            chw = NULL;
        }
    out->num_classes = ncls;
done:
    if (r != SDL_OK) sdl_dataset_free(out);
    for (int k = 0; files && k < ncls; k++) sdl_names_free(files[k]);
    SDL_DEALLOC(files);
    SDL_DEALLOC(nfiles);
    SDL_DEALLOC(first);
    SDL_DEALLOC(path);
    SDL_DEALLOC(bytes);
    SDL_DEALLOC(chw);
    sdl_names_free(classes);
    return r;
}

/* ---- folder trees, globs, dataset helpers ---- */
SDL_API bool sdl_glob_match(const char *pat, const char *s) {
    if (!pat || !s) return false;
    const char *star = NULL, *resume = NULL; /* the last '*' and where its match would grow */
    while (*s) {
        if (*pat == '*') { star = ++pat; resume = s; continue; }
        bool ok = false;
        const char *next = pat + 1;
        if (*pat == '?') ok = true;
        else if (*pat == '[') { /* [abc], [a-z], [!...]; a ']' first is literal */
            const char *q = pat + 1;
            bool neg = *q == '!' || *q == '^', hit = false;
            if (neg) q++;
            for (const char *first = q; *q && (*q != ']' || q == first); q++) {
                if (q[1] == '-' && q[2] && q[2] != ']') { hit |= (unsigned char)*s >= (unsigned char)q[0] && (unsigned char)*s <= (unsigned char)q[2]; q += 2; }
                else hit |= *q == *s;
            }
            if (*q == ']') { ok = hit != neg; next = q + 1; }
            else ok = *s == '['; /* no closing bracket: a literal '[' */
        } else ok = *pat && *pat == *s;
        if (ok) { pat = next; s++; continue; }
        if (!star) return false;
        pat = star; /* let the last '*' take one more character */
        s = ++resume;
    }
    while (*pat == '*') pat++;
    return !*pat;
}

typedef struct sdl__names { char **v; int n, cap; } sdl__names;

static bool sdl__names_add(sdl__names *l, char *s) { /* takes s */
    if (!s) return false;
    if (l->n + 1 >= l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **m = l->cap < INT32_MAX / 4 ? (char **)SDL_REALLOC(l->v, (size_t)cap * sizeof(char *)) : NULL;
        if (!m) { SDL_DEALLOC(s); sdl_fail(SDL_ERR_OOM, "out of memory listing files"); return false; }
        l->v = m;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    l->v[l->n] = NULL;
    return true;
}

/* the files under dir/rel (rel "" at the top) into l; depth stops symlink loops */
static bool sdl__list_tree(const char *dir, const char *rel, const char *pattern, bool by_path, sdl__names *l, int depth) {
    if (depth > 64) { sdl_fail(SDL_ERR_IO, "%s/%s: folders nested over 64 deep (a link loop?)", dir, rel); return false; }
    char *here = rel[0] ? sdl__path_join(dir, rel, "") : sdl__strdup(dir);
    if (!here) return false;
    int nf = 0, nd = 0;
    char **files = sdl__list_dir(here, false, &nf), **dirs = files ? sdl__list_dir(here, true, &nd) : NULL;
    bool ok = files && dirs;
    for (int i = 0; ok && i < nf; i++) {
        char *path = rel[0] ? sdl__path_join(rel, files[i], "") : sdl__strdup(files[i]);
        if (path && pattern && !sdl_glob_match(pattern, by_path ? path : files[i])) { SDL_DEALLOC(path); continue; }
        ok = sdl__names_add(l, path);
    }
    for (int i = 0; ok && i < nd; i++) {
        char *sub = rel[0] ? sdl__path_join(rel, dirs[i], "") : sdl__strdup(dirs[i]);
        ok = sub && sdl__list_tree(dir, sub, pattern, by_path, l, depth + 1);
        SDL_DEALLOC(sub);
    }
    sdl_names_free(files);
    sdl_names_free(dirs);
    SDL_DEALLOC(here);
    return ok;
}

SDL_API char **sdl_list_files(const char *dir, const char *pattern, int *count) {
    if (count) *count = 0;
    if (!dir) { sdl_fail(SDL_ERR_ARG, "list_files: dir is NULL"); return NULL; }
    sdl__names l;
    memset(&l, 0, sizeof l);
    l.cap = 64; /* an empty list is still an array */
    l.v = (char **)sdl__calloc((size_t)l.cap, sizeof(char *));
    if (!l.v || !sdl__list_tree(dir, "", pattern, pattern && strchr(pattern, '/'), &l, 0)) {
        sdl_names_free(l.v);
        return NULL;
    }
    qsort(l.v, (size_t)l.n, sizeof(char *), sdl__strcmp_ptr);
    if (count) *count = l.n;
    return l.v;
}

/* out = the samples idx[0..k) of d, labels mapped through relabel (NULL: kept) */
static sdl_result sdl__dataset_take(const sdl_dataset *d, const int64_t *idx, int64_t k, const int32_t *relabel, int num_classes, sdl_dataset *out) {
    size_t per = (size_t)d->c * (size_t)d->h * (size_t)d->w, bytes;
    memset(out, 0, sizeof *out);
    if (sdl__mul_overflows(per, (size_t)(k ? k : 1), &bytes)) return sdl_fail(SDL_ERR_OOM, "dataset: too large");
    out->images = (uint8_t *)sdl__alloc(bytes);
    out->labels = (int32_t *)sdl__calloc((size_t)(k ? k : 1), sizeof(int32_t));
    if (!out->images || !out->labels) { sdl_dataset_free(out); return SDL_ERR_OOM; }
    out->n = k;
    out->c = d->c; out->h = d->h; out->w = d->w;
    out->num_classes = num_classes;
    for (int64_t i = 0; i < k; i++) {
        memcpy(out->images + (size_t)i * per, d->images + (size_t)idx[i] * per, per);
        out->labels[i] = relabel ? relabel[idx[i]] : d->labels[idx[i]];
    }
    return SDL_OK;
}

static bool sdl__dataset_ok(const sdl_dataset *d, const char *fn) {
    if (d && d->n > 0 && d->images && d->labels && d->c > 0 && d->h > 0 && d->w > 0) return true;
    sdl_fail(SDL_ERR_ARG, "%s: empty or NULL dataset", fn);
    return false;
}

#define SDL__SPLIT_KEY 0x73706C6974ull /* "split" */
SDL_API sdl_result sdl_dataset_split(const sdl_dataset *d, double val_fraction, uint64_t seed, sdl_dataset *train, sdl_dataset *val) {
    if (!train || !val) return sdl_fail(SDL_ERR_ARG, "dataset_split: NULL output");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!sdl__dataset_ok(d, "dataset_split")) return SDL_ERR_ARG;
    if (!(val_fraction >= 0.0 && val_fraction <= 1.0)) return sdl_fail(SDL_ERR_ARG, "dataset_split: val_fraction %g is not in [0, 1]", val_fraction);
    int64_t n = d->n, nv = (int64_t)floor((double)n * val_fraction + 0.5);
    int64_t *perm = (int64_t *)sdl__calloc((size_t)n, sizeof(int64_t));
    uint8_t *in_val = (uint8_t *)sdl__calloc((size_t)n, 1);
    sdl_result r = SDL_OK;
    if (!perm || !in_val) r = SDL_ERR_OOM;
    else {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates from hash(seed, i) */
            int64_t j = (int64_t)(sdl__hash3(seed ^ SDL__SPLIT_KEY, 0, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        for (int64_t i = 0; i < nv; i++) in_val[perm[i]] = 1;
        int64_t a = 0, b = nv; /* perm reused: val indices first, then train, in order */
        for (int64_t i = 0; i < n; i++) perm[in_val[i] ? (a++) : (b++)] = i;
        r = sdl__dataset_take(d, perm, nv, NULL, d->num_classes, val);
        if (r == SDL_OK) r = sdl__dataset_take(d, perm + nv, n - nv, NULL, d->num_classes, train);
        if (r != SDL_OK) { sdl_dataset_free(train); sdl_dataset_free(val); }
    }
    SDL_DEALLOC(perm);
    SDL_DEALLOC(in_val);
    return r;
}

SDL_API sdl_result sdl_dataset_select_classes(const sdl_dataset *d, const int *classes, int k, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "dataset_select_classes: out is NULL");
    memset(out, 0, sizeof *out);
    if (!sdl__dataset_ok(d, "dataset_select_classes")) return SDL_ERR_ARG;
    if (!classes || k < 1) return sdl_fail(SDL_ERR_ARG, "dataset_select_classes: needs at least one class");
    int32_t *relabel = (int32_t *)sdl__calloc((size_t)d->n, sizeof(int32_t));
    int64_t *idx = (int64_t *)sdl__calloc((size_t)d->n, sizeof(int64_t)), m = 0;
    sdl_result r = SDL_OK;
    if (!relabel || !idx) r = SDL_ERR_OOM;
    for (int j = 0; r == SDL_OK && j < k; j++)
        for (int q = 0; q < j; q++)
            if (classes[q] == classes[j]) r = sdl_fail(SDL_ERR_ARG, "dataset_select_classes: class %d listed twice", classes[j]);
    for (int64_t i = 0; r == SDL_OK && i < d->n; i++)
        for (int j = 0; j < k; j++)
            if (d->labels[i] == classes[j]) { relabel[i] = j; idx[m++] = i; break; }
    if (r == SDL_OK && m == 0) r = sdl_fail(SDL_ERR_ARG, "dataset_select_classes: no sample has any of the %d classes", k);
    if (r == SDL_OK) r = sdl__dataset_take(d, idx, m, relabel, k, out);
    SDL_DEALLOC(relabel);
    SDL_DEALLOC(idx);
    return r;
}

SDL_API sdl_result sdl_dataset_mean_std(const sdl_dataset *d, float *mean, float *std) {
    if (!mean || !std) return sdl_fail(SDL_ERR_ARG, "dataset_mean_std: NULL mean or std");
    if (!sdl__dataset_ok(d, "dataset_mean_std")) return SDL_ERR_ARG;
    size_t hw = (size_t)d->h * (size_t)d->w;
    for (int c = 0; c < d->c; c++) {
        uint64_t sum = 0, sq = 0; /* exact in integers: 255^2 * 2^40 samples fit */
        for (int64_t i = 0; i < d->n; i++) {
            const uint8_t *p = d->images + ((size_t)i * (size_t)d->c + (size_t)c) * hw;
            for (size_t k = 0; k < hw; k++) { sum += p[k]; sq += (uint64_t)p[k] * p[k]; }
        }
        double cnt = (double)d->n * (double)hw, m = (double)sum / cnt, var = (double)sq / cnt - m * m;
        mean[c] = (float)(m / 255.0);
        std[c] = (float)(sqrt(var > 0.0 ? var : 0.0) / 255.0);
    }
    return SDL_OK;
}

/* ---- WebDataset tar shards ----
   A shard is a tar file; consecutive members whose names share a key form one sample. The
   key is the member path up to the first dot of its last component, the extension the
   rest: "train/n01440764_10026.cls" -> key "train/n01440764_10026", extension "cls". */

/* a tar header number: octal digits (space or NUL padded), or GNU base-256 (high bit set) */
static bool sdl__tar_num(const uint8_t *f, int len, uint64_t *v) {
    *v = 0;
    if (f[0] & 0x80) { /* base-256, big-endian, positive only */
        if (f[0] != 0x80) return false;
        for (int i = 1; i < len; i++) {
            if (*v >> 55) return false;
            *v = *v << 8 | f[i];
        }
        return true;
    }
    int i = 0;
    while (i < len && f[i] == ' ') i++;
    int digits = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (*v >> 60) return false;
        *v = *v * 8 + (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != 0) return false;
    return digits > 0;
}

/* a member name's sample key length: up to the first dot of its last component, or 0 when
   that component has no dot (not part of a sample). "./" prefixes are the caller's. */
static size_t sdl__sample_key_len(const char *name) {
    const char *base = strrchr(name, '/');
    const char *dot = strchr(base ? base + 1 : name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

/* "./key.png" from tar -C dir . */
static const char *sdl__strip_dot_slash(const char *nm) {
    while (nm[0] == '.' && nm[1] == '/') nm += 2;
    return nm;
}

typedef struct sdl__shard_sample {
    char *key;        /* heap */
    uint8_t *img;     /* heap: the image file's bytes */
    size_t img_n;
    char img_name[512];
    int64_t label;    /* -1: none yet */
} sdl__shard_sample;

typedef struct sdl__shard_reader {
    int channels;
    sdl_dataset *out;
    int64_t cap;
    char *first;      /* the image that fixed the size */
    sdl__shard_sample s;
} sdl__shard_reader;

static const char *const sdl__shard_img_exts[] = {"png", "jpg", "jpeg", NULL};

/* the current sample into the dataset: it needs one image and one label */
static sdl_result sdl__shard_flush(sdl__shard_reader *rd, const char *shard) {
    sdl__shard_sample *s = &rd->s;
    sdl_dataset *out = rd->out;
    sdl_result r = SDL_OK;
    if (!s->key) return SDL_OK;
    if (!s->img) r = sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has no image (.png, .jpg)", shard, s->key);
    else if (s->label < 0) r = sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has no label (.cls)", shard, s->key);
    else {
        int c = out->images ? out->c : rd->channels, h = 0, w = 0;
        char what[600];
        snprintf(what, sizeof what, "%s: %s", shard, s->img_name);
        uint8_t *chw = sdl__decode_image(what, s->img, s->img_n, &c, &h, &w);
        if (!chw) r = sdl_last_result();
        else if (out->images && (h != out->h || w != out->w)) {
            r = sdl_fail(SDL_ERR_FORMAT, "%s is %dx%d (width x height), the first image %s is %dx%d; sdl does not resize: make them one size",
                         what, w, h, rd->first, out->w, out->h);
        } else {
            size_t per = (size_t)c * (size_t)h * (size_t)w;
            if (!out->images) {
                out->c = c; out->h = h; out->w = w;
                rd->first = sdl__strdup(what);
                if (!rd->first) r = SDL_ERR_OOM;
            }
            if (r == SDL_OK && out->n == rd->cap) { /* grow both arrays */
                int64_t cap = rd->cap ? rd->cap * 2 : 256;
                size_t bytes;
                uint8_t *im = NULL;
                int32_t *lb = NULL;
                if (sdl__mul_overflows((size_t)cap, per, &bytes)) r = sdl_fail(SDL_ERR_OOM, "%s: too many samples", shard);
                else if (!(im = (uint8_t *)SDL_REALLOC(out->images, bytes))) r = sdl_fail(SDL_ERR_OOM, "%s: out of memory (%zu bytes)", shard, bytes);
                else {
                    out->images = im;
                    if (!(lb = (int32_t *)SDL_REALLOC(out->labels, (size_t)cap * sizeof(int32_t)))) r = sdl_fail(SDL_ERR_OOM, "%s: out of memory", shard);
                    else { out->labels = lb; rd->cap = cap; }
                }
            }
            if (r == SDL_OK) {
                memcpy(out->images + (size_t)out->n * per, chw, per);
                out->labels[out->n++] = (int32_t)s->label;
                if (s->label >= out->num_classes) out->num_classes = (int)s->label + 1;
            }
        }
        SDL_DEALLOC(chw);
    }
    SDL_DEALLOC(s->key);
    SDL_DEALLOC(s->img);
    memset(s, 0, sizeof *s);
    s->label = -1;
    return r;
}

/* one member: name and its bytes */
static sdl_result sdl__shard_member(sdl__shard_reader *rd, const char *shard, const char *name, const uint8_t *data, size_t n) {
    size_t klen = sdl__sample_key_len(name);
    if (!klen) return SDL_OK; /* no extension: not part of a sample */
    const char *dot = name + klen;
    sdl__shard_sample *s = &rd->s;
    if (!s->key || strlen(s->key) != klen || memcmp(s->key, name, klen)) {
        sdl_result r = sdl__shard_flush(rd, shard);
        if (r != SDL_OK) return r;
        s->key = (char *)sdl__alloc(klen + 1);
        if (!s->key) return SDL_ERR_OOM;
        memcpy(s->key, name, klen);
        s->key[klen] = 0;
    }
    const char *ext = dot + 1;
    if (!strcmp(ext, "cls")) {
        size_t i = 0;
        int64_t v = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t')) i++;
        size_t d0 = i;
        while (i < n && data[i] >= '0' && data[i] <= '9' && v <= INT32_MAX) v = v * 10 + (data[i++] - '0');
        size_t d1 = i;
        while (i < n && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) i++;
        if (d1 == d0 || i != n || v >= INT32_MAX) /* num_classes = label + 1 must fit */
            return sdl_fail(SDL_ERR_FORMAT, "%s: %s: a .cls member must hold one non-negative integer (ASCII)", shard, name);
        if (s->label >= 0) return sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has two labels", shard, s->key);
        s->label = v;
    } else if (sdl__has_ext(name, sdl__shard_img_exts) && !strchr(ext, '.')) {
        if (s->img) return sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has two images (%s and %s)", shard, s->key, s->img_name, name);
        s->img = (uint8_t *)sdl__alloc(n);
        if (!s->img) return SDL_ERR_OOM;
        if (n) memcpy(s->img, data, n);
        s->img_n = n;
        snprintf(s->img_name, sizeof s->img_name, "%s", name);
    }
    return SDL_OK; /* other extensions (.json, .txt, ...) are not read */
}

/* A tar file member by member: sdl__tar_next gives each regular file's name and (when
   want_data) its bytes; GNU long names and pax paths apply to the member after them. */
typedef struct sdl__tar {
    FILE *f;
    const char *path;
    uint64_t off, fsize;
    char *longname;      /* from a GNU 'L' or pax 'x' member, for the next header */
    char name[512];      /* the current member's */
    uint8_t *data;       /* its bytes (+ a NUL), when read */
    size_t n, cap;
} sdl__tar;

static bool sdl__tar_open(sdl__tar *t, const char *path) {
    memset(t, 0, sizeof *t);
    t->path = path;
    if (!(t->f = sdl__open_read(path))) return false;
    long fsize = fseek(t->f, 0, SEEK_END) == 0 ? ftell(t->f) : -1;
    if (fsize < 0 || fseek(t->f, 0, SEEK_SET) != 0) { fclose(t->f); t->f = NULL; sdl_fail(SDL_ERR_IO, "%s: cannot find its size", path); return false; }
    t->fsize = (uint64_t)fsize;
    return true;
}

static void sdl__tar_close(sdl__tar *t) {
    if (t->f) fclose(t->f);
    SDL_DEALLOC(t->longname);
    SDL_DEALLOC(t->data);
    memset(t, 0, sizeof *t);
}

/* reads size bytes of member data into t->data (+ a NUL) */
static bool sdl__tar_data(sdl__tar *t, uint64_t size) {
    if (size + 1 > t->cap) {
        uint8_t *p = (uint8_t *)SDL_REALLOC(t->data, (size_t)size + 1);
        if (!p) { sdl_fail(SDL_ERR_OOM, "%s: out of memory for a %llu-byte member", t->path, (unsigned long long)size); return false; }
        t->data = p;
        t->cap = (size_t)size + 1;
    }
    if (fread(t->data, 1, (size_t)size, t->f) != (size_t)size) {
        sdl_fail(SDL_ERR_FORMAT, "%s: truncated: the member at byte %llu needs %llu bytes", t->path, (unsigned long long)t->off, (unsigned long long)size);
        return false;
    }
    t->data[size] = 0;
    t->n = (size_t)size;
    return true;
}

/* pax records "len key=value\n": takes path; refuses size */
static bool sdl__tar_pax(sdl__tar *t, uint64_t size, uint64_t at) {
    const uint8_t *data = t->data;
    for (uint64_t p = 0; p < size;) {
        uint64_t len = 0, q = p;
        while (q < size && data[q] >= '0' && data[q] <= '9' && len < size) len = len * 10 + (uint64_t)(data[q++] - '0');
        if (q >= size || data[q] != ' ' || len == 0 || len > size - p || data[p + len - 1] != '\n') {
            sdl_fail(SDL_ERR_FORMAT, "%s: bad pax header at byte %llu", t->path, (unsigned long long)at);
            return false;
        }
        if (len - (q + 1 - p) > 5 && !memcmp(data + q + 1, "path=", 5)) {
            size_t vn = (size_t)(len - (q + 1 - p) - 6);
            SDL_DEALLOC(t->longname);
            t->longname = (char *)sdl__alloc(vn + 1);
            if (!t->longname) return false;
            memcpy(t->longname, data + q + 6, vn);
            t->longname[vn] = 0;
        }
        if (len - (q + 1 - p) > 5 && !memcmp(data + q + 1, "size=", 5)) {
            sdl_fail(SDL_ERR_FORMAT, "%s: pax size records (members over 8 GB) are not supported", t->path);
            return false;
        }
        p += len;
    }
    return true;
}

/* the next regular file: 1 (t->name, and t->data/t->n when want_data), 0 at the end of
   the archive, -1 on an error naming the file and byte offset */
static int sdl__tar_next(sdl__tar *t, bool want_data) {
    uint8_t h[512];
    for (;;) {
        size_t got = fread(h, 1, 512, t->f);
        if (got != 512) {
            sdl_fail(SDL_ERR_FORMAT, "%s: truncated: %s at byte %llu (no end-of-archive blocks)", t->path, got ? "a partial header" : "the file ends",
                     (unsigned long long)t->off);
            return -1;
        }
        bool zero = true;
        for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
        if (zero) return 0; /* end of archive */
        uint64_t sum = 0, want, size;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (!sdl__tar_num(h + 148, 8, &want) || want != sum) {
            sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: checksum mismatch (corrupt, or not a tar file)", t->path, (unsigned long long)t->off);
            return -1;
        }
        bool posix = !memcmp(h + 257, "ustar\0" "00", 8), gnu = !memcmp(h + 257, "ustar  \0", 8);
        if (!posix && !gnu) { sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: not a ustar or GNU tar header", t->path, (unsigned long long)t->off); return -1; }
        if (!sdl__tar_num(h + 124, 12, &size)) { sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: bad size field", t->path, (unsigned long long)t->off); return -1; }
        if (size > t->fsize - t->off - 512) { /* checked before anything is allocated */
            sdl_fail(SDL_ERR_FORMAT, "%s: truncated: the member at byte %llu needs %llu bytes", t->path, (unsigned long long)t->off, (unsigned long long)size);
            return -1;
        }
        char type = (char)h[156];
        bool file = type == '0' || type == 0 || type == '7', meta = type == 'L' || type == 'x';
        uint64_t padded = (size + 511) / 512 * 512, at = t->off;
        if ((file && want_data) || meta) {
            if (!sdl__tar_data(t, size)) return -1;
            if (padded > size && fseek(t->f, (long)(padded - size), SEEK_CUR) != 0) { sdl_fail(SDL_ERR_IO, "%s: seek failed", t->path); return -1; }
        } else if (padded && fseek(t->f, (long)padded, SEEK_CUR) != 0) {
            sdl_fail(SDL_ERR_IO, "%s: seek failed", t->path);
            return -1;
        }
        t->off += 512 + padded;
        if (type == 'L') { /* GNU long name: the data is the next member's name */
            SDL_DEALLOC(t->longname);
            if (!(t->longname = sdl__strdup((const char *)t->data))) return -1;
            continue;
        }
        if (type == 'x') {
            if (!sdl__tar_pax(t, size, at)) return -1;
            continue;
        }
        if (!file) { SDL_DEALLOC(t->longname); t->longname = NULL; continue; } /* folders, links, ... */
        if (t->longname) snprintf(t->name, sizeof t->name, "%s", t->longname);
        else if (posix && h[345]) snprintf(t->name, sizeof t->name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
        else snprintf(t->name, sizeof t->name, "%.100s", (const char *)h);
        SDL_DEALLOC(t->longname);
        t->longname = NULL;
        if (!want_data) t->n = (size_t)size;
        return 1;
    }
}

/* reads one shard, member by member */
static sdl_result sdl__read_shard(sdl__shard_reader *rd, const char *shard) {
    sdl__tar t;
    if (!sdl__tar_open(&t, shard)) return sdl_last_result();
    sdl_result r = SDL_OK;
    int k;
    while (r == SDL_OK && (k = sdl__tar_next(&t, true)) != 0)
        r = k < 0 ? sdl_last_result() : sdl__shard_member(rd, shard, sdl__strip_dot_slash(t.name), t.data, t.n);
    if (r == SDL_OK) r = sdl__shard_flush(rd, shard); /* a sample never spans shards */
    SDL_DEALLOC(rd->s.key);
    SDL_DEALLOC(rd->s.img);
    memset(&rd->s, 0, sizeof rd->s);
    rd->s.label = -1;
    sdl__tar_close(&t);
    return r;
}

/* "name-{000000..000099}.tar" -> name-000000.tar ... name-000099.tar; no braces: itself */
SDL_API char **sdl_shard_list(const char *pattern, int *count) {
    if (count) *count = 0;
    if (!pattern) { sdl_fail(SDL_ERR_ARG, "shard_list: pattern is NULL"); return NULL; }
    const char *lb = strchr(pattern, '{'), *rb = lb ? strchr(lb, '}') : NULL, *dots = lb ? strstr(lb, "..") : NULL;
    int64_t a = 0, b = 0;
    int width = 0;
    if (lb) {
        const char *p = lb + 1;
        if (!rb || !dots || dots > rb || strchr(rb + 1, '{')) goto bad;
        for (; p < dots; p++, width++) {
            if (*p < '0' || *p > '9' || a > 100000000) goto bad;
            a = a * 10 + (*p - '0');
        }
        for (p = dots + 2; p < rb; p++) {
            if (*p < '0' || *p > '9' || b > 100000000) goto bad;
            b = b * 10 + (*p - '0');
        }
        if (width == 0 || width > 18 || p == dots + 2 || b < a || b - a >= 1000000) goto bad;
    }
    {
        int n = (int)(b - a + 1);
        char **list = (char **)sdl__calloc((size_t)n + 1, sizeof(char *));
        if (!list) return NULL;
        size_t plen = strlen(pattern);
        for (int i = 0; i < n; i++) {
            list[i] = (char *)sdl__alloc(plen + 24);
            if (!list[i]) { sdl_names_free(list); return NULL; }
            if (!lb) memcpy(list[i], pattern, plen + 1);
            else {
                char num[24]; /* a + i, zero-padded to the width of a */
                int k = 0;
                for (int64_t v = a + i; v || k < width; v /= 10) num[k++] = (char)('0' + v % 10);
                size_t pre = (size_t)(lb - pattern), post = strlen(rb + 1);
                memcpy(list[i], pattern, pre);
                for (int j = 0; j < k; j++) list[i][pre + (size_t)j] = num[k - 1 - j];
                memcpy(list[i] + pre + (size_t)k, rb + 1, post + 1);
            }
        }
        if (count) *count = n;
        return list;
    }
bad:
    sdl_fail(SDL_ERR_ARG, "shard_list: '%s' is not a shard pattern like name-{000000..000099}.tar", pattern);
    return NULL;
}

SDL_API sdl_result sdl_load_shard_files(const char *const *paths, int npaths, int channels, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_shard_files: out is NULL");
    memset(out, 0, sizeof *out);
    if (!paths || npaths < 1 || channels < 0 || channels > 4) return sdl_fail(SDL_ERR_ARG, "load_shard_files: needs at least one path and channels 0..4");
    sdl__shard_reader rd;
    memset(&rd, 0, sizeof rd);
    rd.channels = channels;
    rd.out = out;
    rd.s.label = -1;
    sdl_result r = SDL_OK;
    for (int i = 0; i < npaths && r == SDL_OK; i++) r = sdl__read_shard(&rd, paths[i]);
    if (r == SDL_OK && out->n == 0) r = sdl_fail(SDL_ERR_FORMAT, "%s%s: no samples", paths[0], npaths > 1 ? " ..." : "");
    SDL_DEALLOC(rd.first);
    if (r != SDL_OK) sdl_dataset_free(out);
    return r;
}

SDL_API sdl_result sdl_load_shards(const char *pattern, int channels, sdl_dataset *out) {
    if (!out) return sdl_fail(SDL_ERR_ARG, "load_shards: out is NULL");
    memset(out, 0, sizeof *out);
    int n = 0;
    char **list = sdl_shard_list(pattern, &n);
    if (!list) return sdl_last_result();
    sdl_result r = sdl_load_shard_files((const char *const *)list, n, channels, out);
    sdl_names_free(list);
    return r;
}

/* ---- writing shards: POSIX ustar, members padded to 512 bytes, two zero blocks at the end ---- */
struct sdl_shard_writer {
    char *prefix;
    int64_t max_samples, in_shard;
    int shard;     /* index of the open shard */
    FILE *f;
    char path[1024];
    sdl_result err; /* the first error; every later call returns it */
};

SDL_API sdl_shard_writer *sdl_shard_writer_new(const char *prefix, int64_t max_samples) {
    if (!prefix || !prefix[0] || strlen(prefix) > 1000 || max_samples < 0) {
        sdl_fail(SDL_ERR_ARG, "shard_writer_new: needs a prefix like out/train (up to 1000 bytes) and max_samples >= 0");
        return NULL;
    }
    sdl_shard_writer *w = (sdl_shard_writer *)sdl__calloc(1, sizeof *w);
    if (!w) return NULL;
    w->prefix = sdl__strdup(prefix);
    if (!w->prefix) { SDL_DEALLOC(w); return NULL; }
    w->max_samples = max_samples ? max_samples : 10000;
    w->shard = -1;
    return w;
}

static sdl_result sdl__shard_close_file(sdl_shard_writer *w) {
    if (!w->f) return SDL_OK;
    static const uint8_t zeros[1024] = {0};
    bool ok = fwrite(zeros, 1, 1024, w->f) == 1024;
    if (fclose(w->f) != 0) ok = false;
    w->f = NULL;
    return ok ? SDL_OK : sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", w->path);
}

static sdl_result sdl__tar_put(sdl_shard_writer *w, const char *name, const void *data, size_t n) {
    uint8_t h[512];
    memset(h, 0, sizeof h);
    size_t nl = strlen(name);
    if (nl <= 100) memcpy(h, name, nl);
    else { /* ustar: split at a '/' into prefix (155) and name (100) */
        const char *cut = NULL;
        for (const char *p = name; *p; p++)
            if (*p == '/' && (size_t)(p - name) <= 155 && nl - (size_t)(p - name) - 1 <= 100 && p > name) cut = p;
        if (!cut) return sdl_fail(SDL_ERR_ARG, "%s: member name '%s' is too long for ustar", w->path, name);
        memcpy(h + 345, name, (size_t)(cut - name));
        memcpy(h, cut + 1, nl - (size_t)(cut - name) - 1);
    }
    if ((uint64_t)n > 077777777777ull) return sdl_fail(SDL_ERR_ARG, "%s: member %s over 8 GB", w->path, name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)n);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = '0';
    memcpy(h + 257, "ustar\0" "00", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum); /* six digits, NUL, space */
    h[155] = ' ';
    static const uint8_t zeros[512] = {0};
    size_t pad = (512 - n % 512) % 512;
    if (fwrite(h, 1, 512, w->f) != 512 || (n && fwrite(data, 1, n, w->f) != n) || (pad && fwrite(zeros, 1, pad, w->f) != pad))
        return sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", w->path);
    return SDL_OK;
}

SDL_API sdl_result sdl_shard_writer_add(sdl_shard_writer *w, const char *key, int nmembers, const char *const *exts,
                                        const void *const *data, const size_t *sizes) {
    if (!w) return sdl_fail(SDL_ERR_ARG, "shard_writer_add: writer is NULL");
    if (w->err != SDL_OK) return w->err;
    if (!key || !key[0] || nmembers < 1 || !exts || !data || !sizes) return sdl_fail(SDL_ERR_ARG, "shard_writer_add: needs a key and members");
    const char *base = strrchr(key, '/');
    if (strchr(base ? base + 1 : key, '.') || (base && !base[1]))
        return sdl_fail(SDL_ERR_ARG, "shard_writer_add: key '%s': its last part must be non-empty and have no dot (the dot starts the extension)", key);
    if (w->f && w->in_shard >= w->max_samples && (w->err = sdl__shard_close_file(w)) != SDL_OK) return w->err;
    if (!w->f) {
        w->shard++;
        w->in_shard = 0;
        snprintf(w->path, sizeof w->path, "%s-%06d.tar", w->prefix, w->shard);
        w->f = fopen(w->path, "wb");
        if (!w->f) return w->err = sdl_fail(SDL_ERR_IO, "%s: cannot open for writing", w->path);
    }
    for (int i = 0; i < nmembers; i++) {
        char name[1200];
        if (!exts[i] || !exts[i][0] || (!data[i] && sizes[i])) return w->err = sdl_fail(SDL_ERR_ARG, "shard_writer_add: member %d of '%s' has no extension or data", i, key);
        if (snprintf(name, sizeof name, "%s.%s", key, exts[i]) >= (int)sizeof name) return w->err = sdl_fail(SDL_ERR_ARG, "shard_writer_add: name too long");
        if ((w->err = sdl__tar_put(w, name, data[i], sizes[i])) != SDL_OK) return w->err;
    }
    w->in_shard++;
    return SDL_OK;
}

SDL_API sdl_result sdl_shard_writer_add_image(sdl_shard_writer *w, const char *key, const uint8_t *chw, int c, int h, int wd, int label) {
    if (!w) return sdl_fail(SDL_ERR_ARG, "shard_writer_add_image: writer is NULL");
    if (w->err != SDL_OK) return w->err;
    if (!chw || (c != 1 && c != 3 && c != 4) || h < 1 || wd < 1 || label < 0)
        return sdl_fail(SDL_ERR_ARG, "shard_writer_add_image: needs CHW pixels, 1, 3 or 4 channels and a label >= 0");
    size_t hw = (size_t)h * (size_t)wd;
    uint8_t *hwc = (uint8_t *)sdl__alloc(hw * (size_t)c);
    if (!hwc) return SDL_ERR_OOM;
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < hw; i++) hwc[i * (size_t)c + (size_t)k] = chw[(size_t)k * hw + i];
    sdl__buf png;
    memset(&png, 0, sizeof png);
    sdl_result r = SDL_OK;
    if (!sdl__png_encode(key, hwc, wd, h, c, &png)) r = sdl_last_result();
    else {
        char cls[16];
        snprintf(cls, sizeof cls, "%d", label);
        const char *exts[2] = {"cls", "png"};
        const void *data[2] = {cls, png.p};
        size_t sizes[2] = {strlen(cls), png.n};
        r = sdl_shard_writer_add(w, key, 2, exts, data, sizes);
    }
    SDL_DEALLOC(hwc);
    SDL_DEALLOC(png.p);
    return r;
}

SDL_API int sdl_shard_writer_num_shards(const sdl_shard_writer *w) { return w ? w->shard + 1 : 0; }

SDL_API sdl_result sdl_shard_writer_close(sdl_shard_writer *w) {
    if (!w) return SDL_OK;
    sdl_result r = sdl__shard_close_file(w);
    if (w->err != SDL_OK) r = w->err;
    SDL_DEALLOC(w->prefix);
    SDL_DEALLOC(w);
    return r;
}

SDL_API sdl_result sdl_write_shards(const sdl_dataset *d, const char *prefix, int64_t max_per_shard) {
    if (!d || !d->images || d->n < 1) return sdl_fail(SDL_ERR_ARG, "write_shards: empty dataset");
    sdl_shard_writer *w = sdl_shard_writer_new(prefix, max_per_shard);
    if (!w) return sdl_last_result();
    size_t per = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    sdl_result r = SDL_OK;
    for (int64_t i = 0; i < d->n && r == SDL_OK; i++) {
        char key[32];
        snprintf(key, sizeof key, "%09lld", (long long)i);
        r = sdl_shard_writer_add_image(w, key, d->images + (size_t)i * per, d->c, d->h, d->w, d->labels[i]);
    }
    sdl_result rc = sdl_shard_writer_close(w);
    return r != SDL_OK ? r : rc;
}

SDL__COLD_END

/* >>loader */
/* The epoch's sample list: perm is a Fisher-Yates shuffle of [0, n) keyed by (seed, epoch);
   rank r takes padded positions r, r + world, ... where position p >= n repeats perm[p % n]
   (torch's DistributedSampler). Batches fill preallocated slots: a ring of prefetch + 1, so
   the batch the caller holds is never overwritten while the thread fills the next ones. */
#define SDL__LOADER_SHUFFLE 0x73687566666C65ull /* "shuffle" */
#define SDL__LOADER_AUGMENT 0x6175676D656E74ull /* "augment" */

struct sdl_loader {
    sdl_loader_desc d;   /* d.data points at data below */
    sdl_dataset data;    /* the caller's descriptor, copied: the prefetch thread never reads
                            the caller's struct (a dataset on main's stack is gone once main
                            returns, while the thread may still be filling a batch) */
    int64_t n, per_rank, nbatches, chw;  /* per_rank, nbatches: this epoch's (after skip) */
    int64_t epoch, skip;                 /* skip: positions of the epoch done before (seek) */
    int64_t *perm;     /* n */
    int64_t *idx;      /* per_rank: dataset indices of this rank, this epoch */
    int nslots;
    sdl_tensor **x, **y;
    int64_t produced, taken; /* batches filled / handed out this epoch */
    bool threaded;
#ifndef SDL_NO_THREADS
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* one condition for every change; few waiters, so broadcast */
    bool active, busy, stop;
#endif
};

/* this epoch's perm and idx (the filler must be idle) */
static void sdl__loader_order(sdl_loader *l) {
    int64_t n = l->n;
    for (int64_t i = 0; i < n; i++) l->perm[i] = i;
    if (l->d.shuffle)
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(sdl__hash3(l->d.seed ^ SDL__LOADER_SHUFFLE, (uint64_t)l->epoch, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = l->perm[i]; l->perm[i] = l->perm[j]; l->perm[j] = t;
        }
    int64_t B = l->d.batch_size, W = l->d.world_size;
    l->per_rank = (n - l->skip + W - 1) / W;
    l->nbatches = l->d.drop_last ? l->per_rank / B : (l->per_rank + B - 1) / B;
    for (int64_t k = 0; k < l->per_rank; k++) l->idx[k] = l->perm[(l->skip + l->d.rank + k * W) % n];
}

/* one sample: crop (offsets oy, ox in [-pad, pad]) then flip on bytes, then scale */
static void sdl__loader_sample(const sdl_loader *l, int64_t s, float *out) {
    const sdl_dataset *ds = l->d.data;
    const uint8_t *src = ds->images + s * l->chw;
    int C = ds->c, H = ds->h, W = ds->w, p = l->d.pad_crop;
    int oy = 0, ox = 0;
    bool flip = false;
    uint64_t key = l->d.seed ^ SDL__LOADER_AUGMENT, e = (uint64_t)l->epoch;
    if (p > 0) {
        oy = (int)(sdl__hash3(key, e, (uint64_t)s * 4 + 0) % (uint64_t)(2 * p + 1)) - p;
        ox = (int)(sdl__hash3(key, e, (uint64_t)s * 4 + 1) % (uint64_t)(2 * p + 1)) - p;
    }
    if (l->d.hflip) flip = (sdl__hash3(key, e, (uint64_t)s * 4 + 2) >> 63) != 0;
    for (int c = 0; c < C; c++) {
        float mean = c < 4 ? l->d.mean[c] : 0.0f, sd = c < 4 ? l->d.std[c] : 0.0f;
        const uint8_t *plane = src + (int64_t)c * H * W;
        float *o = out + (int64_t)c * H * W;
        for (int i = 0; i < H; i++) {
            int si = i + oy;
            for (int j = 0; j < W; j++) {
                int sj = (flip ? W - 1 - j : j) + ox;
                uint8_t v = (si >= 0 && si < H && sj >= 0 && sj < W) ? plane[si * W + sj] : 0;
                float f = (float)v / 255.0f;
                o[i * W + j] = sd != 0.0f ? (f - mean) / sd : f;
            }
        }
    }
}

/* batch b of this epoch into slot b % nslots */
static void sdl__loader_fill(sdl_loader *l, int64_t b) {
    int slot = (int)(b % l->nslots);
    sdl_tensor *x = l->x[slot], *y = l->y[slot];
    int64_t B = l->d.batch_size, start = b * B, cnt = l->per_rank - start < B ? l->per_rank - start : B;
    x->shape[0] = cnt;
    x->numel = cnt * l->chw;
    y->shape[0] = cnt;
    y->numel = cnt;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t s = l->idx[start + i];
        sdl__loader_sample(l, s, sdl_f32(x) + i * l->chw);
        sdl_i32(y)[i] = l->d.data->labels[s];
    }
}

#ifndef SDL_NO_THREADS
/* the prefetch thread: fills batch `produced` while the ring has room */
static void *sdl__loader_thread(void *arg) {
    sdl_loader *l = (sdl_loader *)arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int64_t held = l->taken > 0 ? l->taken - 1 : 0; /* oldest slot still in use */
        if (l->stop) break;
        if (!l->active || l->produced >= l->nbatches || l->produced >= held + l->nslots) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        int64_t b = l->produced;
        l->busy = true;
        pthread_mutex_unlock(&l->mu);
        sdl__loader_fill(l, b);
        pthread_mutex_lock(&l->mu);
        l->busy = false;
        l->produced++;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}
#endif

/* starts epoch e after its first `skip` positions: call with the filler idle (sync mode,
   or lock held and !busy) */
static void sdl__loader_start_at(sdl_loader *l, int64_t e, int64_t skip) {
    l->epoch = e;
    l->skip = skip;
    l->produced = l->taken = 0;
    sdl__loader_order(l);
#ifndef SDL_NO_THREADS
    l->active = l->threaded;
#endif
}
static void sdl__loader_start(sdl_loader *l, int64_t e) { sdl__loader_start_at(l, e, 0); }

SDL_API void sdl_loader_free(sdl_loader *l) {
    if (!l) return;
#ifndef SDL_NO_THREADS
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
#endif
    for (int i = 0; l->x && i < l->nslots; i++) {
        sdl_tensor_free(l->x[i]);
        sdl_tensor_free(l->y[i]);
    }
    SDL_DEALLOC(l->x);
    SDL_DEALLOC(l->y);
    SDL_DEALLOC(l->perm);
    SDL_DEALLOC(l->idx);
    SDL_DEALLOC(l);
}

SDL_API sdl_loader *sdl_loader_new(const sdl_loader_desc *desc) {
    if (!desc || !desc->data) { sdl_fail(SDL_ERR_ARG, "loader_new: NULL desc or dataset"); return NULL; }
    const sdl_dataset *ds = desc->data;
    if (ds->n <= 0 || ds->c <= 0 || ds->h <= 0 || ds->w <= 0 || !ds->images || !ds->labels) {
        sdl_fail(SDL_ERR_ARG, "loader_new: empty dataset (n %lld, %d x %d x %d)", (long long)ds->n, ds->c, ds->h, ds->w);
        return NULL;
    }
    sdl_loader_desc d = *desc;
    if (d.batch_size == 0) d.batch_size = 64;
    if (d.world_size == 0) d.world_size = 1;
    if (d.prefetch == 0) d.prefetch = 2;
    if (d.batch_size < 0 || d.world_size < 0 || d.rank < 0 || d.rank >= d.world_size || d.pad_crop < 0 || d.prefetch < -1) {
        sdl_fail(SDL_ERR_ARG, "loader_new: bad batch_size %d, rank %d of world_size %d, pad_crop %d or prefetch %d",
                 d.batch_size, d.rank, d.world_size, d.pad_crop, d.prefetch);
        return NULL;
    }
    if (ds->c > 4)
        for (int c = 0; c < 4; c++)
            if (d.std[c] != 0.0f) { sdl_fail(SDL_ERR_ARG, "loader_new: mean/std cover 4 channels, the data has %d", ds->c); return NULL; }
    sdl_loader *l = (sdl_loader *)sdl__calloc(1, sizeof(sdl_loader));
    if (!l) return NULL;
    l->d = d;
    l->data = *desc->data;
    l->d.data = &l->data;
    l->n = ds->n;
    l->chw = (int64_t)ds->c * ds->h * ds->w;
    l->per_rank = (l->n + d.world_size - 1) / d.world_size;
    l->nbatches = d.drop_last ? l->per_rank / d.batch_size : (l->per_rank + d.batch_size - 1) / d.batch_size;
#ifndef SDL_NO_THREADS
    l->threaded = d.prefetch > 0;
#endif
    l->nslots = l->threaded ? d.prefetch + 1 : 1;
    l->perm = (int64_t *)sdl__calloc((size_t)l->n, sizeof(int64_t));
    l->idx = (int64_t *)sdl__calloc((size_t)l->per_rank, sizeof(int64_t));
    l->x = (sdl_tensor **)sdl__calloc((size_t)l->nslots, sizeof(sdl_tensor *));
    l->y = (sdl_tensor **)sdl__calloc((size_t)l->nslots, sizeof(sdl_tensor *));
    if (!l->perm || !l->idx || !l->x || !l->y) { l->threaded = false; sdl_loader_free(l); return NULL; }
    for (int i = 0; i < l->nslots; i++) {
        l->x[i] = sdl_tensor_new(sdl_shape4(d.batch_size, ds->c, ds->h, ds->w), SDL_F32);
        l->y[i] = sdl_tensor_new(sdl_shape1(d.batch_size), SDL_I32);
        if (!l->x[i] || !l->y[i]) { l->threaded = false; sdl_loader_free(l); return NULL; }
    }
#ifndef SDL_NO_THREADS
    if (l->threaded) {
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        pthread_mutex_lock(&l->mu);
        sdl__loader_start(l, 0);
        pthread_mutex_unlock(&l->mu);
        if (pthread_create(&l->thread, NULL, sdl__loader_thread, l) != 0) {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
            l->threaded = false; /* go on without a thread */
            l->active = false;
        }
        return l;
    }
#endif
    sdl__loader_start(l, 0);
    return l;
}

SDL_API void sdl_loader_set_epoch(sdl_loader *l, int64_t epoch) {
    if (!l) return;
#ifndef SDL_NO_THREADS
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        if (epoch != l->epoch || l->taken != 0 || l->skip != 0) {
            l->active = false;
            while (l->busy) pthread_cond_wait(&l->cv, &l->mu);
            sdl__loader_start(l, epoch);
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        return;
    }
#endif
    if (epoch != l->epoch || l->taken != 0 || l->skip != 0) sdl__loader_start(l, epoch);
}

SDL_API sdl_result sdl_loader_seek(sdl_loader *l, int64_t epoch, int64_t global_samples_done) {
    if (!l) return sdl_fail(SDL_ERR_ARG, "loader_seek: NULL loader");
    if (epoch < 0 || global_samples_done < 0 || global_samples_done > l->n)
        return sdl_fail(SDL_ERR_ARG, "loader_seek: epoch %lld, %lld samples done of %lld", (long long)epoch,
                        (long long)global_samples_done, (long long)l->n);
#ifndef SDL_NO_THREADS
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        l->active = false;
        while (l->busy) pthread_cond_wait(&l->cv, &l->mu);
        sdl__loader_start_at(l, epoch, global_samples_done);
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        return SDL_OK;
    }
#endif
    sdl__loader_start_at(l, epoch, global_samples_done);
    return SDL_OK;
}

/* positions done: the skip, then whole rounds of batch_size x world_size (a short last
   batch ends the epoch: all n) */
SDL_API int64_t sdl_loader_samples_done(const sdl_loader *l) {
    if (!l) return 0;
    int64_t done = l->skip + l->taken * (int64_t)l->d.batch_size * l->d.world_size;
    return done < l->n ? done : l->n;
}

SDL_API bool sdl_loader_next(sdl_loader *l, sdl_tensor **x, sdl_tensor **y) {
    if (!l || !x || !y) { sdl_fail(SDL_ERR_ARG, "loader_next: NULL argument"); return false; }
    *x = *y = NULL;
#ifndef SDL_NO_THREADS
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        if (l->taken >= l->nbatches) { /* the epoch is over: move on and prefetch the next */
            sdl__loader_start(l, l->epoch + 1);
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            return false;
        }
        int64_t b = l->taken++;
        pthread_cond_broadcast(&l->cv); /* the previous batch's slot is free */
        while (l->produced <= b) pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
        *x = l->x[b % l->nslots];
        *y = l->y[b % l->nslots];
        return true;
    }
#endif
    if (l->taken >= l->nbatches) {
        sdl__loader_start(l, l->epoch + 1);
        return false;
    }
    sdl__loader_fill(l, l->taken);
    *x = l->x[0];
    *y = l->y[0];
    l->taken++;
    return true;
}

SDL_API int64_t sdl_loader_num_batches(const sdl_loader *l) { return l ? l->nbatches : 0; }
SDL_API int64_t sdl_loader_num_samples(const sdl_loader *l) { return l ? l->per_rank : 0; }
SDL_API int64_t sdl_loader_epoch(const sdl_loader *l) { return l ? l->epoch : 0; }

/* >>stream: the streaming pipeline (see >>decl-stream). Each worker owns its shards, its
   reader and its shuffle buffer, and decodes its samples straight into the batch slot and
   row its position says; a slot's batch is ready when all its rows are filled. A worker
   may run ahead into the next prefetch slots only, so the batch the caller holds is never
   written. One mutex and condition variable guard the counters. */
#define SDL__STREAM_SHARDS 0x7368617264ull  /* "shard" */
#define SDL__STREAM_BUFFER 0x6275666672ull  /* "buffr" */
#define SDL__STREAM_AUG 0x6175676d6e74ull   /* "augmnt" */

enum { SDL__SRC_TAR = 0, SDL__SRC_TFRECORD, SDL__SRC_ZIP };
enum { SDL__IMG_NONE = 0, SDL__IMG_ENCODED, SDL__IMG_NPY, SDL__IMG_TENSORPROTO, SDL__IMG_RAW };

typedef struct sdl__raw { /* one sample as read: undecoded */
    char key[200];
    int kind, shard;
    int64_t label;        /* -1: none */
    sdl__buf img;
} sdl__raw;

typedef struct sdl__worker {
    struct sdl_stream *st;
    int id;
    int *shards, nshards;  /* this epoch's, in reading order */
    int64_t n, *pos;       /* its samples this epoch and their positions in the rank's sequence */
    int64_t k, lap;        /* the next sample: pos[k] + lap * (the rank's count) */
    bool done, busy;
    /* the reader: shard cur, member by member (tar, zip) or record by record */
    int cur, kind;
    sdl__tar tar;
    sdl_tfrecord_reader *tfr;
    sdl_zip *zip;
    int64_t zi;
    uint8_t *zdata;
    const char *mname;
    const uint8_t *mdata;
    size_t mn;
    bool open, pending, eof;
    /* the shuffle buffer */
    sdl__raw *buf;
    int nbuf;
    bool drained;
    uint64_t draws;
    sdl__raw raw;
#ifndef SDL_NO_THREADS
    pthread_t thread;
    bool started;
#endif
} sdl__worker;

struct sdl_stream {
    sdl_stream_desc d;
    char **paths;
    int npaths, C, H, W, nworkers, nslots;
    int *kinds, *order;
    int64_t *counts, total;
    int64_t epoch, taken, nbatches, P, n_rank, skip_to;
    sdl_tensor **x, **y;
    int64_t *filled;       /* rows written per slot */
    sdl__worker *w;
    sdl_result err;
    char errmsg[600];
    bool threaded, active, stop;
#ifndef SDL_NO_THREADS
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
};

static int sdl__stream_kind(const char *path) {
    static const char *const tfr[] = {"tfrecord", "tfrecords", "tfr", NULL}, *const zip[] = {"zip", NULL};
    return sdl__has_ext(path, tfr) ? SDL__SRC_TFRECORD : sdl__has_ext(path, zip) ? SDL__SRC_ZIP : SDL__SRC_TAR;
}

static void sdl__raw_clear(sdl__raw *r) {
    SDL_DEALLOC(r->img.p);
    memset(r, 0, sizeof *r);
    r->label = -1;
}

/* ---- reading: members of a tar or zip shard ---- */
static void sdl__worker_close(sdl__worker *w) {
    sdl__tar_close(&w->tar);
    sdl_tfrecord_close(w->tfr);
    sdl_zip_close(w->zip);
    SDL_DEALLOC(w->zdata);
    w->tfr = NULL;
    w->zip = NULL;
    w->zdata = NULL;
    w->open = w->pending = w->eof = false;
}

static bool sdl__worker_open(sdl__worker *w, int shard) {
    const char *path = w->st->paths[shard];
    w->kind = w->st->kinds[shard];
    w->zi = 0;
    if (w->kind == SDL__SRC_TAR) w->open = sdl__tar_open(&w->tar, path);
    else if (w->kind == SDL__SRC_ZIP) w->open = (w->zip = sdl_zip_open(path)) != NULL;
    else w->open = (w->tfr = sdl_tfrecord_open(path)) != NULL;
    return w->open;
}

/* the next member of a tar or zip into w->mname/mdata/mn: 1, 0 at the end, -1 error */
static int sdl__member_next(sdl__worker *w, bool want_data) {
    if (w->kind == SDL__SRC_TAR) {
        int k = sdl__tar_next(&w->tar, want_data);
        w->mname = sdl__strip_dot_slash(w->tar.name);
        w->mdata = w->tar.data;
        w->mn = w->tar.n;
        return k;
    }
    if (w->zi >= sdl_zip_count(w->zip)) return 0;
    int64_t i = w->zi++;
    w->mname = sdl__strip_dot_slash(sdl_zip_name(w->zip, i));
    w->mn = (size_t)sdl_zip_size(w->zip, i);
    SDL_DEALLOC(w->zdata);
    w->zdata = NULL;
    if (want_data && sdl__sample_key_len(w->mname) && !(w->zdata = sdl_zip_read(w->zip, i, &w->mn))) return -1;
    w->mdata = w->zdata;
    return 1;
}

/* an ASCII integer label (.cls, .txt); -1 if it is not one */
static int64_t sdl__parse_label(const uint8_t *d, size_t n) {
    size_t i = 0;
    int64_t v = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t')) i++;
    size_t d0 = i;
    while (i < n && d[i] >= '0' && d[i] <= '9' && v <= INT32_MAX) v = v * 10 + (d[i++] - '0');
    size_t d1 = i;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
    return d1 == d0 || i != n || v >= INT32_MAX ? -1 : v;
}

/* one member into the sample being gathered */
static bool sdl__raw_member(sdl__worker *w, sdl__raw *r, const char *ext) {
    const char *shard = w->st->paths[r->shard];
    if (!strcmp(ext, "cls") || !strcmp(ext, "txt")) {
        int64_t v = sdl__parse_label(w->mdata, w->mn);
        if (v < 0) { sdl_fail(SDL_ERR_FORMAT, "%s: %s: a .%s member must hold one non-negative integer (ASCII)", shard, w->mname, ext); return false; }
        if (r->label >= 0) { sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has two labels", shard, r->key); return false; }
        r->label = v;
        return true;
    }
    static const char *const enc[] = {"png", "jpg", "jpeg", NULL}, *const npy[] = {"npy", NULL}, *const raw[] = {"bin", "raw", NULL};
    int kind = strchr(ext, '.') ? SDL__IMG_NONE : sdl__has_ext(w->mname, enc) ? SDL__IMG_ENCODED : sdl__has_ext(w->mname, npy) ? SDL__IMG_NPY : SDL__IMG_NONE;
    if (!strchr(ext, '.') && w->st->d.raw_shape[0] && sdl__has_ext(w->mname, raw)) kind = SDL__IMG_RAW;
    if (kind == SDL__IMG_NONE) return true; /* other members (.json, ...) are not read */
    if (r->kind != SDL__IMG_NONE) { sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' has two images", shard, r->key); return false; }
    r->kind = kind;
    r->img.n = 0;
    sdl__buf_put(&r->img, w->mdata, w->mn);
    return !r->img.oom;
}

/* the next sample of a tar or zip shard: members sharing a key, in order */
static int sdl__raw_next_members(sdl__worker *w, sdl__raw *r, bool want_data) {
    for (;;) {
        if (!w->pending) {
            int k = w->eof ? 0 : sdl__member_next(w, want_data);
            if (k < 0) return -1;
            if (k == 0) { w->eof = true; return r->key[0] ? 1 : 0; }
        }
        size_t klen = sdl__sample_key_len(w->mname);
        if (!klen) { w->pending = false; continue; }
        if (r->key[0] && (strlen(r->key) != klen || memcmp(r->key, w->mname, klen))) { w->pending = true; return 1; }
        w->pending = false;
        if (!r->key[0]) snprintf(r->key, sizeof r->key, "%.*s", (int)(klen < 199 ? klen : 199), w->mname);
        if (want_data && !sdl__raw_member(w, r, w->mname + klen + 1)) return -1;
    }
}

/* the next record of a TFRecord shard as a sample */
static int sdl__raw_next_record(sdl__worker *w, sdl__raw *r, bool want_data) {
    const uint8_t *p;
    size_t n;
    const char *shard = w->st->paths[r->shard];
    if (!sdl_tfrecord_next(w->tfr, &p, &n)) { /* the end, or an error naming the record */
        sdl_result r = sdl_tfrecord_close(w->tfr);
        w->tfr = NULL;
        return r == SDL_OK ? 0 : -1;
    }
    snprintf(r->key, sizeof r->key, "record %lld", (long long)sdl_tfrecord_count(w->tfr) - 1);
    if (!want_data) return 1;
    char what[700];
    snprintf(what, sizeof what, "%s %s", shard, r->key);
    sdl_example *e = sdl_example_parse(p, n, what);
    if (!e) return -1;
    const char *ik = w->st->d.image_key ? w->st->d.image_key : "image", *lk = w->st->d.label_key ? w->st->d.label_key : "label";
    size_t in;
    int64_t nl;
    const uint8_t *img = sdl_example_bytes(e, ik, 0, &in);
    const int64_t *lab = img ? sdl_example_int64s(e, lk, &nl) : NULL;
    bool ok = img && lab && nl >= 1 && lab[0] >= 0 && lab[0] < INT32_MAX;
    if (!ok && img && lab) sdl_fail(SDL_ERR_FORMAT, "%s: feature '%s' must hold a label >= 0", what, lk);
    else if (!ok) sdl_fail(SDL_ERR_FORMAT, "%s: %s", what, sdl_last_error());
    if (ok) {
        r->label = lab[0];
        bool enc = in >= 3 && ((img[0] == 0x89 && img[1] == 'P') || (img[0] == 0xFF && img[1] == 0xD8));
        r->kind = enc ? SDL__IMG_ENCODED : w->st->d.raw_shape[0] ? SDL__IMG_RAW : SDL__IMG_TENSORPROTO;
        sdl__buf_put(&r->img, img, in);
        ok = !r->img.oom;
    }
    sdl_example_free(e);
    return ok ? 1 : -1;
}

/* the next sample of the worker's shards, in order: 1, 0 when they are done, -1 error */
static int sdl__raw_next(sdl__worker *w, sdl__raw *r, bool want_data) {
    sdl__raw_clear(r);
    for (;;) {
        if (!w->open) {
            if (w->cur >= w->nshards) return 0;
            if (!sdl__worker_open(w, w->shards[w->cur])) return -1;
        }
        r->shard = w->shards[w->cur];
        int k = w->kind == SDL__SRC_TFRECORD ? sdl__raw_next_record(w, r, want_data) : sdl__raw_next_members(w, r, want_data);
        if (k != 0) return k;
        sdl__worker_close(w);
        w->cur++;
    }
}

/* ---- the shuffle buffer (WebDataset's): fill to N, hand out a random one ---- */
static int sdl__buffer_next(sdl__worker *w, sdl__raw *out) {
    const sdl_stream *st = w->st;
    int N = st->d.shuffle_buffer;
    if (N <= 1) return sdl__raw_next(w, out, true);
    while (!w->drained && w->nbuf < N) {
        int k = sdl__raw_next(w, &w->buf[w->nbuf], true);
        if (k < 0) { sdl__raw_clear(&w->buf[w->nbuf]); return -1; } /* the half-read sample (rewind frees only nbuf) */
        if (k == 0) w->drained = true;
        else w->nbuf++;
    }
    if (w->nbuf == 0) return 0;
    uint64_t key = st->d.seed ^ SDL__STREAM_BUFFER ^ ((uint64_t)st->d.rank << 40) ^ ((uint64_t)w->id << 20);
    int j = (int)(sdl__hash3(key, (uint64_t)st->epoch, w->draws++) % (uint64_t)w->nbuf);
    sdl__raw_clear(out);
    *out = w->buf[j];
    w->buf[j] = w->buf[--w->nbuf];
    memset(&w->buf[w->nbuf], 0, sizeof(sdl__raw));
    return 1;
}

/* back to the start of the worker's shards (a new epoch or lap) */
static void sdl__worker_rewind(sdl__worker *w) {
    sdl__worker_close(w);
    for (int i = 0; i < w->nbuf; i++) sdl__raw_clear(&w->buf[i]);
    w->nbuf = 0;
    w->cur = 0;
    w->drained = false;
    w->draws = 0;
}

/* ---- decoding and augmentation ---- */
typedef struct sdl__img { /* (h, w, c), row-major: what stb, numpy and TF hold */
    const uint8_t *u8;
    const float *f32;
    int h, w, c;
} sdl__img;

/* the crop of the source (y0, x0, hh, ww, in source pixels) the augmentation scales to the
   output, for the sample at position p (draws 0-3) */
static void sdl__aug_rect(const sdl_stream *st, uint64_t key, uint64_t p, int Hs, int Ws, double r[4]) {
    const sdl_augment_desc *a = &st->d.aug;
    double H = st->H, W = st->W;
    r[0] = 0; r[1] = 0; r[2] = Hs; r[3] = Ws;
    if (a->random_resized_crop) { /* torchvision's RandomResizedCrop.get_params */
        double area = (double)Hs * Ws, s0 = a->scale[1] > 0 ? a->scale[0] : 0.08, s1 = a->scale[1] > 0 ? a->scale[1] : 1.0;
        double q0 = a->ratio[1] > 0 ? a->ratio[0] : 3.0 / 4.0, q1 = a->ratio[1] > 0 ? a->ratio[1] : 4.0 / 3.0;
        for (int t = 0; t < 10; t++) {
            uint64_t base = p * 64 + (uint64_t)t * 4; /* draws 0..39; pad-crop 40, 41; flip 42 */
            double u0 = sdl_hash_uniform(key, (uint64_t)st->epoch, base), u1 = sdl_hash_uniform(key, (uint64_t)st->epoch, base + 1);
            double target = area * (s0 + (s1 - s0) * u0), ar = exp(log(q0) + (log(q1) - log(q0)) * u1);
            double cw = floor(sqrt(target * ar) + 0.5), ch = floor(sqrt(target / ar) + 0.5);
            if (cw > 0 && cw <= Ws && ch > 0 && ch <= Hs) {
                r[0] = floor(sdl_hash_uniform(key, (uint64_t)st->epoch, base + 2) * (Hs - ch + 1));
                r[1] = floor(sdl_hash_uniform(key, (uint64_t)st->epoch, base + 3) * (Ws - cw + 1));
                r[2] = ch;
                r[3] = cw;
                return;
            }
        }
        double in = (double)Ws / Hs; /* fallback: a center crop of the clamped aspect ratio */
        if (in < q0) { r[3] = Ws; r[2] = floor(Ws / q0 + 0.5); }
        else if (in > q1) { r[2] = Hs; r[3] = floor(Hs * q1 + 0.5); }
        r[0] = floor((Hs - r[2]) / 2); r[1] = floor((Ws - r[3]) / 2);
        return;
    }
    double sc = 1.0; /* resize: the shorter side to a->resize */
    if (a->resize > 0) sc = (double)a->resize / (Hs < Ws ? Hs : Ws);
    if (a->center_crop) { /* the (H, W) middle of the (resized) image, in source pixels */
        double Hv = a->resize > 0 ? (Hs < Ws ? a->resize : floor(Hs * sc)) : Hs, Wv = a->resize > 0 ? (Ws <= Hs ? a->resize : floor(Ws * sc)) : Ws;
        double top = floor((Hv - H) / 2 + 0.5), left = floor((Wv - W) / 2 + 0.5);
        double sy = Hv / Hs, sx = Wv / Ws;
        r[0] = top / sy; r[1] = left / sx; r[2] = H / sy; r[3] = W / sx;
    }
}

/* the sample at position p into out (C, H, W): crop/scale (bilinear), pad-crop, flip,
   normalise. xi, xw: 2 * W scratch each. */
static void sdl__augment(const sdl_stream *st, const sdl__img *s, uint64_t p, float *out, int *xi, float *xw) {
    const sdl_augment_desc *a = &st->d.aug;
    int C = st->C, H = st->H, W = st->W;
    uint64_t key = st->d.seed ^ SDL__STREAM_AUG ^ ((uint64_t)st->d.rank * 0x9E3779B97F4A7C15ull);
    double r[4];
    sdl__aug_rect(st, key, p, s->h, s->w, r);
    int oy = 0, ox = 0;
    bool flip = false;
    if (a->pad > 0) {
        oy = (int)(sdl__hash3(key, (uint64_t)st->epoch, p * 64 + 40) % (uint64_t)(2 * a->pad + 1)) - a->pad;
        ox = (int)(sdl__hash3(key, (uint64_t)st->epoch, p * 64 + 41) % (uint64_t)(2 * a->pad + 1)) - a->pad;
    }
    if (a->hflip) flip = (sdl__hash3(key, (uint64_t)st->epoch, p * 64 + 42) >> 63) != 0;
    double fy = r[2] / H, fx = r[3] / W;
    for (int j = 0; j < W; j++) { /* per column: two source columns and a weight, or -1 (padding) */
        int vj = (flip ? W - 1 - j : j) + ox;
        if (vj < 0 || vj >= W) { xi[2 * j] = -1; continue; }
        double sx = r[1] + (vj + 0.5) * fx - 0.5;
        if (sx < 0) sx = 0;
        if (sx > s->w - 1) sx = s->w - 1;
        int x0 = (int)sx;
        xi[2 * j] = x0;
        xi[2 * j + 1] = x0 + 1 < s->w ? x0 + 1 : x0;
        xw[j] = (float)(sx - x0);
    }
    float to01 = s->u8 ? 1.0f / 255.0f : 1.0f;
    for (int c = 0; c < C; c++) {
        float mean = c < 4 ? a->mean[c] : 0.0f, sd = c < 4 ? a->std[c] : 0.0f;
        float scale = sd != 0.0f ? to01 / sd : to01, shift = sd != 0.0f ? -mean / sd : 0.0f;
        int sc = s->c == 1 ? 0 : c; /* one grey channel serves every output channel */
        for (int i = 0; i < H; i++) {
            float *o = out + ((int64_t)c * H + i) * W;
            int vi = i + oy;
            if (vi < 0 || vi >= H) { for (int j = 0; j < W; j++) o[j] = shift; continue; }
            double sy = r[0] + (vi + 0.5) * fy - 0.5;
            if (sy < 0) sy = 0;
            if (sy > s->h - 1) sy = s->h - 1;
            int y0 = (int)sy, y1 = y0 + 1 < s->h ? y0 + 1 : y0;
            float wy = (float)(sy - y0);
            size_t r0 = (size_t)y0 * (size_t)s->w * (size_t)s->c, r1 = (size_t)y1 * (size_t)s->w * (size_t)s->c;
            for (int j = 0; j < W; j++) {
                if (xi[2 * j] < 0) { o[j] = shift; continue; }
                size_t a0 = (size_t)xi[2 * j] * (size_t)s->c + (size_t)sc, a1 = (size_t)xi[2 * j + 1] * (size_t)s->c + (size_t)sc;
                float v00, v01, v10, v11;
                if (s->u8) { v00 = s->u8[r0 + a0]; v01 = s->u8[r0 + a1]; v10 = s->u8[r1 + a0]; v11 = s->u8[r1 + a1]; }
                else { v00 = s->f32[r0 + a0]; v01 = s->f32[r0 + a1]; v10 = s->f32[r1 + a0]; v11 = s->f32[r1 + a1]; }
                float top = v00 + (v01 - v00) * xw[j], bot = v10 + (v11 - v10) * xw[j];
                o[j] = (top + (bot - top) * wy) * scale + shift;
            }
        }
    }
}

/* decodes a raw sample (HWC) into img; *owned: what to free after (stb or tensor) */
static bool sdl__raw_decode(const sdl_stream *st, const sdl__raw *r, int channels, sdl__img *img, void **stb, sdl_tensor **t) {
    char what[700];
    snprintf(what, sizeof what, "%s: sample '%s'", st->paths[r->shard], r->key);
    memset(img, 0, sizeof *img);
    *stb = NULL;
    *t = NULL;
    if (r->kind == SDL__IMG_NONE) { sdl_fail(SDL_ERR_FORMAT, "%s has no image (.png, .jpg, .npy; .bin, .raw with raw_shape set)", what); return false; }
    if (r->label < 0) { sdl_fail(SDL_ERR_FORMAT, "%s has no label (.cls)", what); return false; }
    if (r->kind == SDL__IMG_ENCODED) {
#ifdef SDL_NO_STB
        SDL__UNUSED(channels);
        sdl_fail(SDL_ERR_ARG, "%s: decoding images needs stb_image, and sdl was built with SDL_NO_STB", what);
        return false;
#else
        int c = channels;
        uint8_t *hwc = sdl__decode_image_hwc(what, r->img.p, r->img.n, &c, &img->h, &img->w);
        if (!hwc) return false;
        *stb = hwc;
        img->u8 = hwc;
        img->c = c;
        return true;
#endif
    }
    if (r->kind == SDL__IMG_RAW) { /* raw_shape's H x W x C bytes, checked in stream_new */
        const int *rs = st->d.raw_shape;
        size_t want = (size_t)rs[0] * (size_t)rs[1] * (size_t)rs[2];
        if (r->img.n != want) {
            sdl_fail(SDL_ERR_FORMAT, "%s: %zu raw image bytes, raw_shape (%d, %d, %d) needs %zu", what, r->img.n, rs[0], rs[1], rs[2], want);
            return false;
        }
        img->h = rs[0];
        img->w = rs[1];
        img->c = rs[2];
        img->u8 = r->img.p;
    } else {
        *t = r->kind == SDL__IMG_NPY ? sdl__npy_parse(what, r->img.p, r->img.n) : sdl_tensorproto_parse(r->img.p, r->img.n, what);
        if (!*t) return false;
        sdl_tensor *a = *t;
        if ((a->dtype != SDL_U8 && a->dtype != SDL_F32) || a->ndim < 2 || a->ndim > 3 || (a->ndim == 3 && (a->shape[2] < 1 || a->shape[2] > 4)) ||
            a->shape[0] < 1 || a->shape[1] < 1 || a->shape[0] > SDL_MAX_IMAGE_SIDE || a->shape[1] > SDL_MAX_IMAGE_SIDE) {
            sdl_fail(SDL_ERR_FORMAT, "%s: an array image must be u8 or f32, (H, W) or (H, W, C) with C 1..4 and sides up to %d", what, (int)SDL_MAX_IMAGE_SIDE);
            return false;
        }
        img->h = (int)a->shape[0];
        img->w = (int)a->shape[1];
        img->c = a->ndim == 3 ? (int)a->shape[2] : 1;
        if (a->dtype == SDL_U8) img->u8 = sdl_u8(a);
        else img->f32 = sdl_f32(a);
    }
    if (channels && img->c != channels && img->c != 1) {
        sdl_fail(SDL_ERR_FORMAT, "%s has %d channels, the stream makes %d", what, img->c, channels);
        return false;
    }
    return true;
}

/* the sample at position p into slot row p % B */
static bool sdl__worker_emit(sdl__worker *w, const sdl__raw *r, int64_t p, int *xi, float *xw) {
    sdl_stream *st = w->st;
    sdl__img img;
    void *stb = NULL;
    sdl_tensor *t = NULL;
    bool ok = sdl__raw_decode(st, r, st->C, &img, &stb, &t);
    if (ok && !st->d.aug.height && (img.h != st->H || img.w != st->W)) {
        ok = false;
        sdl_fail(SDL_ERR_FORMAT, "%s: sample '%s' is %dx%d (width x height), the first was %dx%d; set aug.height/width to resize", st->paths[r->shard], r->key,
                 img.w, img.h, st->W, st->H);
    }
    if (ok) {
        int64_t B = st->d.batch_size, slot = (p / B) % st->nslots, row = p % B;
        sdl__augment(st, &img, (uint64_t)p, sdl_f32(st->x[slot]) + row * (int64_t)st->C * st->H * st->W, xi, xw);
        sdl_i32(st->y[slot])[row] = (int32_t)r->label;
    }
#ifndef SDL_NO_STB
    if (stb) stbi_image_free(stb);
#endif
    sdl_tensor_free(t);
    return ok;
}

/* the worker's next position, or -1 when it has no more this epoch */
static int64_t sdl__worker_next_pos(const sdl__worker *w) {
    if (w->done || w->n == 0) return -1;
    int64_t p = w->lap * w->st->n_rank + w->pos[w->k];
    return p < w->st->P ? p : -1;
}

/* reads, and unless before skip_to decodes, the worker's next sample: 1, 0 done, -1 error */
static int sdl__worker_step(sdl__worker *w, int *xi, float *xw) {
    int64_t p = sdl__worker_next_pos(w);
    if (p < 0) { w->done = true; return 0; }
    int k = sdl__buffer_next(w, &w->raw);
    if (k == 0) sdl_fail(SDL_ERR_FORMAT, "%s: fewer samples than counted when the stream opened (did a shard change?)", w->st->paths[w->shards[0]]);
    if (k <= 0) return -1;
    if (p >= w->st->skip_to && !sdl__worker_emit(w, &w->raw, p, xi, xw)) return -1;
    if (++w->k == w->n) { /* a lap over its shards: the next one (PAD) repeats it */
        w->k = 0;
        w->lap++;
        sdl__worker_rewind(w);
    }
    return 1;
}

/* ---- the epoch plan ---- */
static int64_t sdl__stream_rank_count(const sdl_stream *st, int rank) {
    int64_t n = 0;
    for (int i = rank; i < st->npaths; i += st->d.world_size) n += st->counts[st->order[i]];
    return n;
}

/* epoch e from batch b0: shard order, the equal-steps plan, each worker's shards and
   positions (workers idle) */
static sdl_result sdl__stream_plan(sdl_stream *st, int64_t e, int64_t b0) {
    int S = st->npaths, R = st->d.world_size, Wn = st->nworkers;
    int64_t B = st->d.batch_size;
    for (int i = 0; i < S; i++) st->order[i] = i;
    if (st->d.shuffle_shards)
        for (int i = S - 1; i > 0; i--) {
            int j = (int)(sdl__hash3(st->d.seed ^ SDL__STREAM_SHARDS, (uint64_t)e, (uint64_t)i) % (uint64_t)(i + 1));
            int t = st->order[i]; st->order[i] = st->order[j]; st->order[j] = t;
        }
    int64_t T = sdl__stream_rank_count(st, 0);
    for (int r = 1; r < R; r++) {
        int64_t n = sdl__stream_rank_count(st, r);
        T = st->d.equal == SDL_STREAM_DROP ? (n < T ? n : T) : (n > T ? n : T);
    }
    st->epoch = e;
    st->n_rank = sdl__stream_rank_count(st, st->d.rank);
    if (st->n_rank == 0) return sdl_fail(SDL_ERR_FORMAT, "%s ...: epoch %lld gives rank %d no samples (fewer non-empty shards than ranks?)", st->paths[0], (long long)e, st->d.rank);
    st->nbatches = st->d.drop_last ? T / B : (T + B - 1) / B;
    st->P = st->nbatches * B < T ? st->nbatches * B : T;
    if (b0 < 0 || b0 > st->nbatches) return sdl_fail(SDL_ERR_ARG, "stream_set_position: batch %lld of an epoch of %lld", (long long)b0, (long long)st->nbatches);
    st->taken = b0;
    st->skip_to = b0 * B;
    int64_t maxn = 0;
    for (int wi = 0; wi < Wn; wi++) {
        sdl__worker *w = &st->w[wi];
        sdl__worker_rewind(w);
        w->nshards = 0;
        w->n = 0;
        for (int i = st->d.rank + wi * R; i < S; i += R * Wn) { /* the rank's shards w, w + W, ... */
            w->shards[w->nshards++] = st->order[i];
            w->n += st->counts[st->order[i]];
        }
        maxn = w->n > maxn ? w->n : maxn;
        w->k = w->lap = 0;
        w->done = w->n == 0;
    }
    int64_t q = 0; /* round robin: sample k of worker 0, 1, ..., then k + 1 */
    for (int64_t k = 0; k < maxn; k++)
        for (int wi = 0; wi < Wn; wi++)
            if (k < st->w[wi].n) st->w[wi].pos[k] = q++;
    for (int i = 0; i < st->nslots; i++) st->filled[i] = 0;
    return SDL_OK;
}

/* ---- threads ---- */
static void sdl__stream_set_error(sdl_stream *st) {
    if (st->err != SDL_OK) return;
    st->err = sdl_last_result() != SDL_OK ? sdl_last_result() : SDL_ERR_FORMAT;
    snprintf(st->errmsg, sizeof st->errmsg, "%s", sdl_last_error());
}

#ifndef SDL_NO_THREADS
/* may the worker write position p: its batch's slot is free (not the caller's, not older) */
static bool sdl__stream_slot_free(const sdl_stream *st, int64_t p) {
    int64_t held = st->taken > 0 ? st->taken - 1 : 0;
    return p < st->skip_to || p / st->d.batch_size < held + st->nslots;
}

static void *sdl__stream_thread(void *arg) {
    sdl__worker *w = (sdl__worker *)arg;
    sdl_stream *st = w->st;
    int *xi = (int *)sdl__alloc(sizeof(int) * 2 * (size_t)st->W);
    float *xw = (float *)sdl__alloc(sizeof(float) * (size_t)st->W);
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (st->stop) break;
        int64_t p = sdl__worker_next_pos(w);
        if (!st->active || st->err != SDL_OK || p < 0 || !sdl__stream_slot_free(st, p)) {
            pthread_cond_wait(&st->cv, &st->mu);
            continue;
        }
        w->busy = true;
        pthread_mutex_unlock(&st->mu);
        int k = xi && xw ? sdl__worker_step(w, xi, xw) : (sdl_fail(SDL_ERR_OOM, "stream: out of memory"), -1);
        pthread_mutex_lock(&st->mu);
        w->busy = false;
        if (k < 0) sdl__stream_set_error(st);
        else if (k > 0 && p >= st->skip_to) st->filled[(p / st->d.batch_size) % st->nslots]++;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    SDL_DEALLOC(xi);
    SDL_DEALLOC(xw);
    return NULL;
}

/* stops the workers between samples (lock held) */
static void sdl__stream_pause(sdl_stream *st) {
    st->active = false;
    for (int i = 0; i < st->nworkers; i++)
        while (st->w[i].busy) pthread_cond_wait(&st->cv, &st->mu);
}
#endif

/* the rows of batch b */
static int64_t sdl__stream_rows(const sdl_stream *st, int64_t b) {
    int64_t B = st->d.batch_size, left = st->P - b * B;
    return left < B ? left : B;
}

/* without threads: the workers' steps for batch b, on the calling thread */
static bool sdl__stream_fill_inline(sdl_stream *st, int64_t b) {
    int *xi = (int *)sdl__alloc(sizeof(int) * 2 * (size_t)st->W);
    float *xw = (float *)sdl__alloc(sizeof(float) * (size_t)st->W);
    bool ok = xi && xw;
    int64_t end = (b + 1) * st->d.batch_size;
    for (int i = 0; ok && i < st->nworkers; i++) {
        sdl__worker *w = &st->w[i];
        for (int64_t p; ok && (p = sdl__worker_next_pos(w)) >= 0 && p < end;) ok = sdl__worker_step(w, xi, xw) > 0;
    }
    if (!ok) sdl__stream_set_error(st);
    SDL_DEALLOC(xi);
    SDL_DEALLOC(xw);
    return ok;
}

SDL_API bool sdl_stream_next(sdl_stream *st, sdl_tensor **x, sdl_tensor **y) {
    if (!st || !x || !y) { sdl_fail(SDL_ERR_ARG, "stream_next: NULL argument"); return false; }
    *x = *y = NULL;
    bool ok = true;
#ifndef SDL_NO_THREADS
    if (st->threaded) pthread_mutex_lock(&st->mu);
#endif
    if (st->err != SDL_OK) ok = false;
    else if (st->taken >= st->nbatches) { /* the epoch is over: plan the next, report its end */
#ifndef SDL_NO_THREADS
        if (st->threaded) sdl__stream_pause(st);
#endif
        if (sdl__stream_plan(st, st->epoch + 1, 0) != SDL_OK) sdl__stream_set_error(st);
        st->active = st->err == SDL_OK;
        ok = false;
    } else {
        if (st->taken > 0) st->filled[(st->taken - 1) % st->nslots] = 0; /* the caller's last batch is free */
        int64_t b = st->taken++, rows = sdl__stream_rows(st, b);
        int slot = (int)(b % st->nslots);
#ifndef SDL_NO_THREADS
        if (st->threaded) {
            pthread_cond_broadcast(&st->cv);
            while (st->filled[slot] < rows && st->err == SDL_OK) pthread_cond_wait(&st->cv, &st->mu);
        } else
#endif
            sdl__stream_fill_inline(st, b);
        ok = st->err == SDL_OK;
        if (ok) {
            st->x[slot]->shape[0] = rows;
            st->x[slot]->numel = rows * st->C * st->H * st->W;
            st->y[slot]->shape[0] = rows;
            st->y[slot]->numel = rows;
            *x = st->x[slot];
            *y = st->y[slot];
        }
    }
    sdl_result err = st->err;
#ifndef SDL_NO_THREADS
    if (st->threaded) {
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
#endif
    if (err != SDL_OK) sdl_fail(err, "%s", st->errmsg);
    return ok;
}

SDL_API sdl_result sdl_stream_set_position(sdl_stream *st, int64_t epoch, int64_t batches_done) {
    if (!st || epoch < 0) return sdl_fail(SDL_ERR_ARG, "stream_set_position: NULL stream or negative epoch");
#ifndef SDL_NO_THREADS
    if (st->threaded) {
        pthread_mutex_lock(&st->mu);
        sdl__stream_pause(st);
    }
#endif
    st->err = SDL_OK;
    sdl_result r = sdl__stream_plan(st, epoch, batches_done);
    if (r != SDL_OK) sdl__stream_set_error(st);
    st->active = r == SDL_OK;
#ifndef SDL_NO_THREADS
    if (st->threaded) {
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
#endif
    return r;
}

SDL_API int64_t sdl_stream_epoch(const sdl_stream *st) { return st ? st->epoch : 0; }
SDL_API int64_t sdl_stream_batches_done(const sdl_stream *st) { return st ? st->taken : 0; }
SDL_API int64_t sdl_stream_num_batches(const sdl_stream *st) { return st ? st->nbatches : 0; }
SDL_API int64_t sdl_stream_total_samples(const sdl_stream *st) { return st ? st->total : 0; }
SDL_API sdl_result sdl_stream_error(const sdl_stream *st) { return st ? st->err : SDL_ERR_ARG; }

SDL_API void sdl_stream_free(sdl_stream *st) {
    if (!st) return;
#ifndef SDL_NO_THREADS
    if (st->threaded) {
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        for (int i = 0; i < st->nworkers; i++)
            if (st->w[i].started) pthread_join(st->w[i].thread, NULL);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
    }
#endif
    for (int i = 0; st->w && i < st->nworkers; i++) {
        sdl__worker *w = &st->w[i];
        sdl__worker_rewind(w);
        sdl__raw_clear(&w->raw);
        SDL_DEALLOC(w->buf);
        SDL_DEALLOC(w->shards);
        SDL_DEALLOC(w->pos);
    }
    for (int i = 0; st->x && i < st->nslots; i++) {
        sdl_tensor_free(st->x[i]);
        sdl_tensor_free(st->y[i]);
    }
    SDL_DEALLOC(st->w);
    SDL_DEALLOC(st->x);
    SDL_DEALLOC(st->y);
    SDL_DEALLOC(st->filled);
    SDL_DEALLOC(st->kinds);
    SDL_DEALLOC(st->order);
    SDL_DEALLOC(st->counts);
    sdl_names_free(st->paths);
    SDL_DEALLOC(st);
}

/* counts the samples of every shard (headers only) and, from the first sample of the first
   shard, the channels and size where the desc leaves them 0 */
static bool sdl__stream_survey(sdl_stream *st) {
    sdl__worker w;
    memset(&w, 0, sizeof w);
    w.st = st;
    bool ok = true;
    for (int i = 0; ok && i < st->npaths; i++) {
        int one = i;
        w.shards = &one;
        w.nshards = 1;
        w.cur = 0;
        int k;
        st->counts[i] = 0;
        while ((k = sdl__raw_next(&w, &w.raw, i == 0 && st->counts[0] == 0)) > 0) {
            if (i == 0 && st->counts[0] == 0) { /* the first sample fixes C, H, W */
                sdl__img img;
                void *stb;
                sdl_tensor *t;
                ok = sdl__raw_decode(st, &w.raw, st->d.channels, &img, &stb, &t);
                if (ok) {
                    st->C = st->d.channels ? st->d.channels : img.c;
                    st->H = st->d.aug.height ? st->d.aug.height : img.h;
                    st->W = st->d.aug.width ? st->d.aug.width : img.w;
                }
#ifndef SDL_NO_STB
                if (stb) stbi_image_free(stb);
#endif
                sdl_tensor_free(t);
                if (!ok) break;
            }
            st->counts[i]++;
        }
        if (k < 0) ok = false;
        sdl__worker_close(&w);
        if (ok && i == 0 && st->counts[0] == 0) {
            sdl_fail(SDL_ERR_FORMAT, "%s: no samples (the first shard sets the image size)", st->paths[0]);
            ok = false;
        }
        st->total += st->counts[i];
    }
    sdl__raw_clear(&w.raw);
    return ok;
}

SDL_API sdl_stream *sdl_stream_new(const sdl_stream_desc *desc) {
    if (!desc || !desc->shards) { sdl_fail(SDL_ERR_ARG, "stream_new: NULL desc or shards"); return NULL; }
    sdl_stream_desc d = *desc;
    if (d.batch_size == 0) d.batch_size = 64;
    if (d.world_size == 0) d.world_size = 1;
    if (d.workers == 0) d.workers = 2;
    if (d.prefetch == 0) d.prefetch = 2;
    const sdl_augment_desc *a = &d.aug;
    if (d.batch_size < 0 || d.world_size < 0 || d.rank < 0 || d.rank >= d.world_size || d.workers < 0 || d.workers > 256 || d.prefetch < -1 ||
        d.shuffle_buffer < 0 || d.channels < 0 || d.channels > 4 || (d.equal != SDL_STREAM_PAD && d.equal != SDL_STREAM_DROP)) {
        sdl_fail(SDL_ERR_ARG, "stream_new: bad batch_size %d, rank %d of world_size %d, workers %d, prefetch %d, shuffle_buffer %d, channels %d or equal %d",
                 d.batch_size, d.rank, d.world_size, d.workers, d.prefetch, d.shuffle_buffer, d.channels, (int)d.equal);
        return NULL;
    }
    if (a->height < 0 || a->width < 0 || (!a->height != !a->width) || a->height > SDL_MAX_IMAGE_SIDE || a->width > SDL_MAX_IMAGE_SIDE || a->resize < 0 ||
        a->pad < 0 || (a->resize && !a->center_crop) || ((a->random_resized_crop || a->center_crop) && !a->height) ||
        (a->random_resized_crop && (a->center_crop || a->resize)) || a->scale[0] < 0 || a->scale[1] > 1 || a->scale[0] > a->scale[1] ||
        a->ratio[0] < 0 || a->ratio[0] > a->ratio[1] || (a->ratio[1] > 0 && a->ratio[0] <= 0)) {
        sdl_fail(SDL_ERR_ARG, "stream_new: bad augmentation: height and width both set for crops and resizes, resize only with center_crop, "
                 "random_resized_crop alone, 0 <= scale[0] <= scale[1] <= 1, 0 < ratio[0] <= ratio[1]");
        return NULL;
    }
    const int *rs = d.raw_shape;
    if ((rs[0] || rs[1] || rs[2]) && (rs[0] < 1 || rs[1] < 1 || rs[0] > SDL_MAX_IMAGE_SIDE || rs[1] > SDL_MAX_IMAGE_SIDE || rs[2] < 1 || rs[2] > 4 ||
                                      (int64_t)rs[0] * rs[1] > SDL_MAX_IMAGE_PIXELS)) {
        sdl_fail(SDL_ERR_ARG, "stream_new: raw_shape (%d, %d, %d) must be H, W, C with C 1..4, sides up to %d and up to %lld pixels (or all 0)", rs[0], rs[1], rs[2],
                 (int)SDL_MAX_IMAGE_SIDE, (long long)SDL_MAX_IMAGE_PIXELS);
        return NULL;
    }
    sdl_stream *st = (sdl_stream *)sdl__calloc(1, sizeof *st);
    if (!st) return NULL;
    st->d = d;
    st->nworkers = d.workers;
    st->nslots = d.prefetch > 0 ? d.prefetch + 1 : 1;
    if (!(st->paths = sdl_shard_list(d.shards, &st->npaths))) goto fail;
    if (st->npaths < d.world_size) {
        sdl_fail(SDL_ERR_ARG, "stream_new: %d shards for %d ranks; every rank needs one (make more, smaller shards)", st->npaths, d.world_size);
        goto fail;
    }
    st->kinds = (int *)sdl__calloc((size_t)st->npaths, sizeof(int));
    st->order = (int *)sdl__calloc((size_t)st->npaths, sizeof(int));
    st->counts = (int64_t *)sdl__calloc((size_t)st->npaths, sizeof(int64_t));
    st->w = (sdl__worker *)sdl__calloc((size_t)st->nworkers, sizeof(sdl__worker));
    st->x = (sdl_tensor **)sdl__calloc((size_t)st->nslots, sizeof(sdl_tensor *));
    st->y = (sdl_tensor **)sdl__calloc((size_t)st->nslots, sizeof(sdl_tensor *));
    st->filled = (int64_t *)sdl__calloc((size_t)st->nslots, sizeof(int64_t));
    if (!st->kinds || !st->order || !st->counts || !st->w || !st->x || !st->y || !st->filled) goto fail;
    for (int i = 0; i < st->npaths; i++) st->kinds[i] = sdl__stream_kind(st->paths[i]);
    if (!sdl__stream_survey(st)) goto fail;
    for (int i = 0; i < st->nworkers; i++) {
        sdl__worker *w = &st->w[i];
        w->st = st;
        w->id = i;
        w->shards = (int *)sdl__calloc((size_t)st->npaths, sizeof(int));
        w->pos = (int64_t *)sdl__calloc((size_t)st->total + 1, sizeof(int64_t));
        w->buf = (sdl__raw *)sdl__calloc((size_t)(d.shuffle_buffer > 1 ? d.shuffle_buffer : 1), sizeof(sdl__raw));
        if (!w->shards || !w->pos || !w->buf) goto fail;
        sdl__raw_clear(&w->raw);
    }
    for (int i = 0; i < st->nslots; i++) {
        st->x[i] = sdl_tensor_new(sdl_shape4(d.batch_size, st->C, st->H, st->W), SDL_F32);
        st->y[i] = sdl_tensor_new(sdl_shape1(d.batch_size), SDL_I32);
        if (!st->x[i] || !st->y[i]) goto fail;
    }
    if (sdl__stream_plan(st, 0, 0) != SDL_OK) goto fail;
    st->active = true;
#ifndef SDL_NO_THREADS
    if (d.prefetch > 0) {
        pthread_mutex_init(&st->mu, NULL);
        pthread_cond_init(&st->cv, NULL);
        st->threaded = true;
    }
    for (int i = 0; st->threaded && i < st->nworkers; i++) {
        st->w[i].started = pthread_create(&st->w[i].thread, NULL, sdl__stream_thread, &st->w[i]) == 0;
        if (!st->w[i].started) { sdl_fail(SDL_ERR_STATE, "stream_new: cannot start worker thread %d", i); goto fail; }
    }
#endif
    return st;
fail:
    sdl_stream_free(st);
    return NULL;
}

SDL__COLD_BEGIN
/* >>checkpoint: safetensors writer and reader (see >>decl-checkpoint) */
typedef struct sdl__ck_buf { char *p; size_t n, cap; bool oom; } sdl__ck_buf;

static void sdl__ck_put(sdl__ck_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = (char *)SDL_REALLOC(b->p, cap);
        if (!p) { b->oom = true; sdl_fail(SDL_ERR_OOM, "out of memory"); return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sdl__ck_printf(sdl__ck_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sdl__ck_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void sdl__ck_json_str(sdl__ck_buf *b, const char *s) {
    sdl__ck_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; sdl__ck_put(b, e, 2); }
        else if (c < 0x20) sdl__ck_printf(b, "\\u%04x", c);
        else sdl__ck_put(b, (const char *)&c, 1);
    }
    sdl__ck_put(b, "\"", 1);
}

static bool sdl__ck_little_endian(void) { uint16_t x = 1; uint8_t b; memcpy(&b, &x, 1); return b == 1; }

/* item i of what a checkpoint holds: parameters, buffers, then optimizer slots */
static bool sdl__ck_item(sdl_model *m, const sdl_optim *o, int i, char *name, size_t cap, float **data, sdl_tensor **like) {
    int np = m->nparams, nb = m->nbuffers, ns = o ? o->nstate : 0;
    sdl_tensor *t;
    if (i < np) { t = m->params[i]; *data = sdl_f32(t); snprintf(name, cap, "%s", t->name); }
    else if (i < np + nb) { t = m->buffers[i - np]; *data = sdl_f32(t); snprintf(name, cap, "%s", t->name); }
    else if (i < np + nb + ns * np) {
        int k = (i - np - nb) / np, p = (i - np - nb) % np;
        t = m->params[p];
        const char *slot = sdl_optim_state_name(o, k);
        *data = o->state + (int64_t)k * m->param_floats + m->param_offset[p];
        if (slot) snprintf(name, cap, "optim.%s.%s", slot, t->name);
        else snprintf(name, cap, "optim.%d.%s", k, t->name);
    } else return false;
    *like = t;
    return true;
}

static int sdl__ck_optim_kind(const sdl_optim *o) { return o->desc.kind == SDL_OPTIM_DEFAULT ? (int)SDL_OPTIM_SGD : (int)o->desc.kind; }

/* a device model's item in host memory: a copy in *stage (grown as needed), else data */
static const float *sdl__ck_host(const float *data, const sdl_tensor *like, float **stage, int64_t *cap) {
    if (like->device == SDL_CPU) return data;
    if (like->numel > *cap) {
        SDL_DEALLOC(*stage);
        *stage = (float *)sdl__alloc((size_t)like->numel * sizeof(float));
        *cap = *stage ? like->numel : 0;
        if (!*stage) return NULL;
    }
    return sdl__device_copy(*stage, data, (size_t)like->numel * sizeof(float), SDL_CPU, like->device) ? *stage : NULL;
}

#ifdef SDL__TRAIN_POSIX
static bool sdl__ck_write_all(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n > 0) {
        ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}
#endif

SDL_API sdl_result sdl_checkpoint_save(const char *path, sdl_model *m, const sdl_optim *o, int64_t epoch) {
    return sdl_checkpoint_save_at(path, m, o, epoch, 0);
}

SDL_API sdl_result sdl_checkpoint_save_at(const char *path, sdl_model *m, const sdl_optim *o, int64_t epoch, int64_t samples) {
    if (!path || !m) return sdl_fail(SDL_ERR_ARG, "checkpoint_save: NULL path or model");
    if (o && o->model != m) return sdl_fail(SDL_ERR_ARG, "checkpoint_save '%s': the optimizer belongs to another model", path);
    if (o && o->nstate > 0 && !m->packed) return sdl_fail(SDL_ERR_STATE, "checkpoint_save '%s': optimizer state without a packed model", path);
    if (!sdl__ck_little_endian()) return sdl_fail(SDL_ERR_STATE, "checkpoint_save '%s': big-endian hosts are not supported", path);
    sdl__ck_buf h = {NULL, 0, 0, false};
    sdl__ck_printf(&h, "{\"__metadata__\":{\"format\":\"pt\",\"sdl\":\"1\",\"epoch\":\"%lld\"", (long long)epoch);
    if (samples) sdl__ck_printf(&h, ",\"samples\":\"%lld\"", (long long)samples);
    if (o) {
        sdl__ck_printf(&h, ",\"step\":\"%lld\",\"lr\":\"%.9g\",\"optim\":\"%d\",\"optim_nstate\":\"%d\",\"optim_micro\":\"%d\"",
                        (long long)o->step, (double)o->lr, sdl__ck_optim_kind(o), o->nstate, o->micro);
    }
    sdl__ck_printf(&h, ",\"rng_seed\":\"%llu\",\"rng_counter\":\"%llu\"}", (unsigned long long)sdl_rng_seed(),
                    (unsigned long long)sdl_rng_state());
    char name[320];
    float *data;
    sdl_tensor *like;
    int64_t off = 0;
    for (int i = 0; sdl__ck_item(m, o, i, name, sizeof name, &data, &like); i++) {
        sdl__ck_put(&h, ",", 1);
        sdl__ck_json_str(&h, name);
        sdl__ck_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < like->ndim; d++) sdl__ck_printf(&h, d ? ",%lld" : "%lld", (long long)like->shape[d]);
        sdl__ck_printf(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + like->numel * 4));
        off += like->numel * 4;
    }
    sdl__ck_put(&h, "}", 1);
    while (!h.oom && h.n % 8) sdl__ck_put(&h, " ", 1);
    if (h.oom) { SDL_DEALLOC(h.p); return SDL_ERR_OOM; }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));

    size_t plen = strlen(path);
    char *tmp = (char *)sdl__alloc(plen + 5);
    if (!tmp) { SDL_DEALLOC(h.p); return SDL_ERR_OOM; }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    bool ok;
    float *stage = NULL; /* device models: each item passes through here */
    int64_t stage_cap = 0;
#ifdef SDL__TRAIN_POSIX
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        sdl_fail(SDL_ERR_IO, "checkpoint_save: cannot create '%s': %s", tmp, strerror(errno));
        SDL_DEALLOC(h.p); SDL_DEALLOC(tmp);
        return SDL_ERR_IO;
    }
    ok = sdl__ck_write_all(fd, len, 8) && sdl__ck_write_all(fd, h.p, h.n);
    for (int i = 0; ok && sdl__ck_item(m, o, i, name, sizeof name, &data, &like); i++) {
        const float *hd = sdl__ck_host(data, like, &stage, &stage_cap);
        ok = hd && sdl__ck_write_all(fd, hd, (size_t)like->numel * 4);
    }
    int err = errno;
    ok = ok && fsync(fd) == 0;
    if (!ok) err = errno;
    ok = (close(fd) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        if (!err) err = errno;
        unlink(tmp);
        sdl_fail(SDL_ERR_IO, "checkpoint_save: cannot write '%s': %s", path, strerror(err));
    } else { /* make the rename itself durable */
        char *dir = tmp;
        char *slash = strrchr(dir, '/');
        if (slash) { *slash = 0; if (!*dir) memcpy(dir, "/", 2); } else memcpy(dir, ".", 2);
        int dfd = open(dir, O_RDONLY);
        if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
    }
#else
    FILE *f = fopen(tmp, "wb");
    ok = f && fwrite(len, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n;
    for (int i = 0; ok && sdl__ck_item(m, o, i, name, sizeof name, &data, &like); i++) {
        const float *hd = sdl__ck_host(data, like, &stage, &stage_cap);
        ok = hd && fwrite(hd, 4, (size_t)like->numel, f) == (size_t)like->numel;
    }
    ok = f && fflush(f) == 0 && ok;
    if (f) ok = (fclose(f) == 0) && ok;
    if (ok) { remove(path); ok = rename(tmp, path) == 0; }
    if (!ok) { remove(tmp); sdl_fail(SDL_ERR_IO, "checkpoint_save: cannot write '%s'", path); }
#endif
    SDL_DEALLOC(h.p);
    SDL_DEALLOC(tmp);
    SDL_DEALLOC(stage);
    return ok ? SDL_OK : sdl_last_result() != SDL_OK ? sdl_last_result() : SDL_ERR_IO;
}

/* ---- a small JSON reader for the header: strings land in one pool as long as the text */
typedef struct sdl__ck_jp { const char *p, *end; char *pool; const char *err; } sdl__ck_jp;
typedef struct sdl__ck_entry {
    const char *name, *value; /* value: metadata entries; NULL for tensors */
    const char *dtype;
    sdl_shape shape;
    int64_t begin, end;
    bool used;
} sdl__ck_entry;

static void sdl__ck_jp_ws(sdl__ck_jp *j) { while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++; }
static bool sdl__ck_jp_is(sdl__ck_jp *j, char c) { sdl__ck_jp_ws(j); if (j->p < j->end && *j->p == c) { j->p++; return true; } return false; }
static bool sdl__ck_jp_want(sdl__ck_jp *j, char c) {
    if (sdl__ck_jp_is(j, c)) return true;
    if (!j->err) j->err = c == ':' ? "expected ':'" : c == ',' ? "expected ','" : c == '{' ? "expected '{'" : c == '[' ? "expected '['" : c == ']' ? "expected ']'" : "expected '\"'";
    return false;
}
static const char *sdl__ck_jp_str(sdl__ck_jp *j) {
    if (!sdl__ck_jp_want(j, '"')) return NULL;
    char *out = j->pool, *o = out;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end) break;
            c = *j->p++;
            if (c == 'n') c = '\n'; else if (c == 't') c = '\t'; else if (c == 'r') c = '\r';
            else if (c == 'b') c = '\b'; else if (c == 'f') c = '\f';
            else if (c == 'u') {
                unsigned v = 0;
                for (int k = 0; k < 4 && j->p < j->end; k++) {
                    char h = *j->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                c = v < 0x80 ? (char)v : '?';
            }
        }
        *o++ = c;
    }
    if (j->p >= j->end) { if (!j->err) j->err = "unterminated string"; return NULL; }
    j->p++;
    *o++ = 0;
    j->pool = o;
    return out;
}
static bool sdl__ck_jp_int(sdl__ck_jp *j, int64_t *v) {
    sdl__ck_jp_ws(j);
    int64_t x = 0;
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9' && x <= (INT64_MAX - 9) / 10) x = x * 10 + (*j->p++ - '0');
    if (j->p == s || (j->p < j->end && *j->p >= '0' && *j->p <= '9')) { if (!j->err) j->err = "expected a non-negative integer"; return false; }
    *v = x;
    return true;
}
static bool sdl__ck_jp_skip(sdl__ck_jp *j, int depth) {
    sdl__ck_jp_ws(j);
    if (depth > 32 || j->p >= j->end) { if (!j->err) j->err = "bad value"; return false; }
    char c = *j->p;
    if (c == '"') return sdl__ck_jp_str(j) != NULL;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (sdl__ck_jp_is(j, close)) return true;
        do {
            if (c == '{' && (!sdl__ck_jp_str(j) || !sdl__ck_jp_want(j, ':'))) return false;
            if (!sdl__ck_jp_skip(j, depth + 1)) return false;
        } while (sdl__ck_jp_is(j, ','));
        return sdl__ck_jp_want(j, close);
    }
    const char *s = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') || (*j->p >= 'a' && *j->p <= 'z'))) j->p++;
    if (j->p == s) { if (!j->err) j->err = "bad value"; return false; }
    return true;
}
static bool sdl__ck_jp_push(sdl__ck_entry **es, int *n, int *cap, sdl__ck_entry e) {
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 32;
        sdl__ck_entry *p = (sdl__ck_entry *)SDL_REALLOC(*es, sizeof(sdl__ck_entry) * (size_t)nc);
        if (!p) return false;
        *es = p;
        *cap = nc;
    }
    (*es)[(*n)++] = e;
    return true;
}
/* {"__metadata__": {k: v}, name: {"dtype": s, "shape": [..], "data_offsets": [b, e]}, ...} */
static bool sdl__ck_parse(sdl__ck_jp *j, sdl__ck_entry **es, int *n) {
    int cap = 0;
    if (!sdl__ck_jp_want(j, '{')) return false;
    if (sdl__ck_jp_is(j, '}')) return true;
    do {
        sdl__ck_entry e;
        memset(&e, 0, sizeof e);
        e.name = sdl__ck_jp_str(j);
        if (!e.name || !sdl__ck_jp_want(j, ':') || !sdl__ck_jp_want(j, '{')) return false;
        bool meta = strcmp(e.name, "__metadata__") == 0, has_shape = false, has_off = false;
        if (sdl__ck_jp_is(j, '}')) { if (meta) continue; j->err = "a tensor entry is empty"; return false; }
        do {
            const char *key = sdl__ck_jp_str(j);
            if (!key || !sdl__ck_jp_want(j, ':')) return false;
            if (meta) {
                sdl__ck_entry me;
                memset(&me, 0, sizeof me);
                me.name = key;
                me.value = sdl__ck_jp_str(j);
                if (!me.value) return false;
                if (!sdl__ck_jp_push(es, n, &cap, me)) { j->err = "out of memory"; return false; }
            } else if (!strcmp(key, "dtype")) {
                if (!(e.dtype = sdl__ck_jp_str(j))) return false;
            } else if (!strcmp(key, "shape")) {
                if (!sdl__ck_jp_want(j, '[')) return false;
                has_shape = true;
                if (!sdl__ck_jp_is(j, ']')) {
                    do {
                        if (e.shape.ndim >= SDL_MAX_DIMS) { j->err = "a shape has too many dims"; return false; }
                        if (!sdl__ck_jp_int(j, &e.shape.d[e.shape.ndim++])) return false;
                    } while (sdl__ck_jp_is(j, ','));
                    if (!sdl__ck_jp_want(j, ']')) return false;
                }
            } else if (!strcmp(key, "data_offsets")) {
                if (!sdl__ck_jp_want(j, '[') || !sdl__ck_jp_int(j, &e.begin) || !sdl__ck_jp_want(j, ',') || !sdl__ck_jp_int(j, &e.end) || !sdl__ck_jp_want(j, ']')) return false;
                has_off = true;
            } else if (!sdl__ck_jp_skip(j, 0)) return false;
        } while (sdl__ck_jp_is(j, ','));
        if (!sdl__ck_jp_want(j, '}')) return false;
        if (!meta) {
            if (!e.dtype || !has_shape || !has_off) { j->err = "a tensor entry lacks dtype, shape or data_offsets"; return false; }
            if (!sdl__ck_jp_push(es, n, &cap, e)) { j->err = "out of memory"; return false; }
        }
    } while (sdl__ck_jp_is(j, ','));
    return sdl__ck_jp_want(j, '}');
}

static sdl__ck_entry *sdl__ck_find(sdl__ck_entry *es, int n, const char *name, bool meta) {
    for (int i = 0; i < n; i++)
        if ((es[i].value != NULL) == meta && !strcmp(es[i].name, name)) return &es[i];
    return NULL;
}

/* appends "; what" to the list of differences (the first few are kept) */
static void sdl__ck_problem(char *msg, size_t cap, int *count, const char *fmt, ...) {
    if (++*count > 4) return;
    size_t n = strlen(msg);
    if (n + 3 >= cap) return;
    if (n) { memcpy(msg + n, "; ", 3); n += 2; }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, cap - n, fmt, ap);
    va_end(ap);
}

/* the entry for a model tensor, checked; NULL (and a problem noted) when it does not fit */
static sdl__ck_entry *sdl__ck_match(sdl__ck_entry *es, int n, const char *name, const sdl_tensor *like, int64_t data_len,
                                    char *msg, size_t cap, int *count) {
    sdl__ck_entry *e = sdl__ck_find(es, n, name, false);
    char a[96], b[96];
    if (!e) { sdl__ck_problem(msg, cap, count, "'%s' is missing", name); return NULL; }
    e->used = true;
    if (strcmp(e->dtype, "F32")) { sdl__ck_problem(msg, cap, count, "'%s' has dtype %s, sdl reads F32", name, e->dtype); return NULL; }
    if (!sdl_shape_equal(e->shape, sdl_tensor_shape(like))) {
        sdl__ck_problem(msg, cap, count, "'%s' has shape %s in the file, %s in the model", name,
                        sdl_shape_str(e->shape, a, sizeof a), sdl_shape_str(sdl_tensor_shape(like), b, sizeof b));
        return NULL;
    }
    if (e->end < e->begin || e->end - e->begin != like->numel * 4 || e->end > data_len) {
        sdl__ck_problem(msg, cap, count, "'%s' has data_offsets [%lld, %lld] that do not fit %lld floats in %lld data bytes (truncated?)",
                        name, (long long)e->begin, (long long)e->end, (long long)like->numel, (long long)data_len);
        return NULL;
    }
    return e;
}

/* an open checkpoint: its header parsed into entries, the file positioned anywhere */
typedef struct sdl__ck_file {
    FILE *f;
    char *text, *pool;
    sdl__ck_entry *es;
    int n;
    uint64_t hl;      /* header bytes */
    int64_t data_len; /* bytes after the header */
    float *stage;     /* device models: each tensor passes through here */
    int64_t stage_cap;
} sdl__ck_file;

static void sdl__ck_close(sdl__ck_file *c) {
    if (c->f) fclose(c->f);
    SDL_DEALLOC(c->text);
    SDL_DEALLOC(c->pool);
    SDL_DEALLOC(c->es);
    SDL_DEALLOC(c->stage);
    memset(c, 0, sizeof *c);
}

static sdl_result sdl__ck_open(const char *path, sdl__ck_file *c) {
    memset(c, 0, sizeof *c);
    if (!sdl__ck_little_endian()) return sdl_fail(SDL_ERR_STATE, "checkpoint_load '%s': big-endian hosts are not supported", path);
    c->f = fopen(path, "rb");
    if (!c->f) return sdl_fail(SDL_ERR_IO, "checkpoint_load: cannot open '%s': %s", path, strerror(errno));
    sdl_result r = SDL_OK;
    uint8_t len[8];
    fseek(c->f, 0, SEEK_END);
    long size = ftell(c->f);
    fseek(c->f, 0, SEEK_SET);
    uint64_t hl = 0;
    if (size < 8 || fread(len, 1, 8, c->f) != 8) {
        r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': %ld bytes, too short for a safetensors file", path, size);
        goto done;
    }
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len[i] << (8 * i);
    if (hl < 2 || hl > (uint64_t)size - 8 || hl > ((uint64_t)1 << 28)) {
        r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': header size %llu does not fit a file of %ld bytes (truncated or not safetensors)",
                     path, (unsigned long long)hl, size);
        goto done;
    }
    c->hl = hl;
    c->data_len = (int64_t)size - 8 - (int64_t)hl;
    c->text = (char *)sdl__alloc((size_t)hl + 1);
    c->pool = (char *)sdl__alloc((size_t)hl + 1);
    if (!c->text || !c->pool) { r = SDL_ERR_OOM; goto done; }
    if (fread(c->text, 1, (size_t)hl, c->f) != (size_t)hl) { r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': cannot read the header", path); goto done; }
    {
        sdl__ck_jp j;
        j.p = c->text;
        j.end = c->text + hl;
        j.pool = c->pool;
        j.err = NULL;
        if (!sdl__ck_parse(&j, &c->es, &c->n))
            r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': bad header JSON at byte %ld: %s", path, (long)(j.p - c->text) + 8, j.err ? j.err : "?");
    }
done:
    if (r != SDL_OK) sdl__ck_close(c);
    return r;
}

/* numel floats of entry e into dst on device dev (a device tensor through the host stage) */
static sdl_result sdl__ck_read(const char *path, sdl__ck_file *c, const sdl__ck_entry *e, float *dst, int64_t numel, sdl_device dev) {
    float *hd = dst;
    if (dev != SDL_CPU) {
        if (numel > c->stage_cap) {
            SDL_DEALLOC(c->stage);
            c->stage_cap = (c->stage = (float *)sdl__alloc((size_t)numel * sizeof(float))) != NULL ? numel : 0;
            if (!c->stage) return SDL_ERR_OOM;
        }
        hd = c->stage;
    }
    if (fseek(c->f, (long)(8 + c->hl + (uint64_t)e->begin), SEEK_SET) != 0 || fread(hd, 4, (size_t)numel, c->f) != (size_t)numel)
        return sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': cannot read the data of '%s' (truncated?)", path, e->name);
    if (hd != dst && !sdl__device_copy(dst, hd, (size_t)numel * sizeof(float), dev, SDL_CPU))
        return sdl_fail(sdl_last_result(), "checkpoint '%s': '%s' to the device: %s", path, e->name, sdl_last_error());
    return SDL_OK;
}

/* PyTorch's BatchNorm counter (an I64 scalar): sdl keeps none and every load skips it */
static bool sdl__ck_ignored(const char *name) {
    const char *k = "num_batches_tracked";
    size_t n = strlen(name), nk = strlen(k);
    return n >= nk && strcmp(name + n - nk, k) == 0 && (n == nk || name[n - nk - 1] == '.');
}

SDL_API sdl_result sdl_checkpoint_load(const char *path, sdl_model *m, sdl_optim *o, sdl_checkpoint_info *info) {
    if (!path || !m) return sdl_fail(SDL_ERR_ARG, "checkpoint_load: NULL path or model");
    if (o && o->model != m) return sdl_fail(SDL_ERR_ARG, "checkpoint_load '%s': the optimizer belongs to another model", path);
    sdl__ck_file c;
    sdl_result r = sdl__ck_open(path, &c);
    if (r != SDL_OK) return r;
    sdl__ck_entry *es = c.es;
    int n = c.n;
    {
        char msg[400] = "";
        int problems = 0;
        char name[320];
        float *dst;
        sdl_tensor *like;
        sdl__ck_entry *me = sdl__ck_find(es, n, "optim_nstate", true), *mk = sdl__ck_find(es, n, "optim", true);
        if (o) {
            if (!me || !mk) sdl__ck_problem(msg, sizeof msg, &problems, "the file holds no optimizer state");
            else if (atoi(me->value) != o->nstate || atoi(mk->value) != sdl__ck_optim_kind(o))
                sdl__ck_problem(msg, sizeof msg, &problems, "the file's optimizer (kind %s, %s state slots) is not this one (kind %d, %d slots)",
                                mk->value, me->value, sdl__ck_optim_kind(o), o->nstate);
        }
        if (!problems) {
            for (int i = 0; sdl__ck_item(m, o, i, name, sizeof name, &dst, &like); i++)
                sdl__ck_match(es, n, name, like, c.data_len, msg, sizeof msg, &problems);
            for (int i = 0; i < n; i++)
                if (!es[i].value && !es[i].used && strncmp(es[i].name, "optim.", 6) != 0 && !sdl__ck_ignored(es[i].name))
                    sdl__ck_problem(msg, sizeof msg, &problems, "'%s' is in the file but not in the model (sdl_checkpoint_load_weights "
                                    "loads what fits)", es[i].name);
        }
        if (problems) {
            r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s' does not fit: %s%s", path, msg, problems > 4 ? "; and more" : "");
            goto done;
        }
        for (int i = 0; sdl__ck_item(m, o, i, name, sizeof name, &dst, &like); i++)
            if ((r = sdl__ck_read(path, &c, sdl__ck_find(es, n, name, false), dst, like->numel, like->device)) != SDL_OK) goto done;
    }
    {
        sdl__ck_entry *e;
        sdl_checkpoint_info ci;
        memset(&ci, 0, sizeof ci);
        ci.rng_seed = sdl_rng_seed();
        ci.rng_counter = sdl_rng_state();
        if ((e = sdl__ck_find(es, n, "epoch", true)) != NULL) ci.epoch = strtoll(e->value, NULL, 10);
        if ((e = sdl__ck_find(es, n, "step", true)) != NULL) ci.step = strtoll(e->value, NULL, 10);
        if ((e = sdl__ck_find(es, n, "samples", true)) != NULL) ci.samples = strtoll(e->value, NULL, 10);
        if ((e = sdl__ck_find(es, n, "lr", true)) != NULL) ci.lr = (float)strtod(e->value, NULL);
        if ((e = sdl__ck_find(es, n, "rng_seed", true)) != NULL) ci.rng_seed = strtoull(e->value, NULL, 10);
        if ((e = sdl__ck_find(es, n, "rng_counter", true)) != NULL) ci.rng_counter = strtoull(e->value, NULL, 10);
        sdl_rng_set_state(ci.rng_seed, ci.rng_counter);
        if (o) {
            o->step = ci.step;
            o->lr = ci.lr;
            o->micro = (e = sdl__ck_find(es, n, "optim_micro", true)) != NULL ? atoi(e->value) : 0;
        }
        if (info) *info = ci;
    }
done:
    sdl__ck_close(&c);
    return r;
}

/* ---- loading what fits (fine-tuning): names mapped through the prefixes, each difference
   listed in the report or, where the desc does not allow it, an error naming the first few */
static bool sdl__ck_list_add(char ***list, int *count, const char *fmt, ...) {
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = sdl__strdup(buf);
    if (!s || !sdl__push_ptr((void ***)list, count, s)) { SDL_DEALLOC(s); return false; }
    if (!sdl__push_ptr((void ***)list, count, NULL)) { /* s's slot becomes the terminator */
        (*list)[--*count] = NULL;
        SDL_DEALLOC(s);
        return false;
    }
    (*count)--; /* the NULL terminator is no entry */
    return true;
}

SDL_API void sdl_load_report_free(sdl_load_report *r) {
    if (!r) return;
    sdl_names_free(r->missing);
    sdl_names_free(r->unexpected);
    sdl_names_free(r->skipped);
    memset(r, 0, sizeof *r);
}

/* "; "-joined first few of a list into msg */
static void sdl__ck_list_msg(char *msg, size_t cap, const char *what, char **list, int count) {
    size_t n = strlen(msg);
    snprintf(msg + n, cap - n, "%s%s %d:", n ? "; " : "", what, count);
    for (int i = 0; i < count && i < 4; i++) {
        n = strlen(msg);
        snprintf(msg + n, cap - n, " '%s'", list[i]);
    }
    if (count > 4) { n = strlen(msg); snprintf(msg + n, cap - n, " and more"); }
}

SDL_API sdl_result sdl_checkpoint_load_weights(const char *path, sdl_model *m, const sdl_load_desc *desc, sdl_load_report *report) {
    sdl_load_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    const char *mp = d.model_prefix ? d.model_prefix : "", *fp = d.file_prefix ? d.file_prefix : "";
    sdl_load_report rep;
    memset(&rep, 0, sizeof rep);
    if (report) memset(report, 0, sizeof *report);
    if (!path || !m) return sdl_fail(SDL_ERR_ARG, "checkpoint_load_weights: NULL path or model");
    sdl__ck_file c;
    sdl_result r = sdl__ck_open(path, &c);
    if (r != SDL_OK) return r;
    int total = m->nparams + m->nbuffers;
    sdl__ck_entry **plan = (sdl__ck_entry **)sdl__calloc((size_t)total + 1, sizeof(sdl__ck_entry *));
    bool ok = plan != NULL;
    char fname[400], a[96], b[96];
    for (int i = 0; ok && i < total; i++) { /* which file entry each model tensor takes */
        sdl_tensor *t = i < m->nparams ? m->params[i] : m->buffers[i - m->nparams];
        if (!sdl__has_prefix(t->name, mp)) continue;
        snprintf(fname, sizeof fname, "%s%s", fp, t->name + strlen(mp));
        sdl__ck_entry *e = sdl__ck_find(c.es, c.n, fname, false);
        if (!e) { ok = sdl__ck_list_add(&rep.missing, &rep.nmissing, "%s", t->name); continue; }
        e->used = true;
        if (strcmp(e->dtype, "F32") != 0 || !sdl_shape_equal(e->shape, sdl_tensor_shape(t))) {
            ok = sdl__ck_list_add(&rep.skipped, &rep.nskipped, "%s: %s %s in the file, F32 %s in the model", t->name, e->dtype,
                                  sdl_shape_str(e->shape, a, sizeof a), sdl_shape_str(sdl_tensor_shape(t), b, sizeof b));
            continue;
        }
        if (e->end < e->begin || e->end - e->begin != t->numel * 4 || e->end > c.data_len) {
            r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': '%s' has data_offsets [%lld, %lld] that do not fit %lld floats in %lld data bytes (truncated?)",
                         path, fname, (long long)e->begin, (long long)e->end, (long long)t->numel, (long long)c.data_len);
            goto done;
        }
        plan[i] = e;
    }
    for (int i = 0; ok && i < c.n; i++) {
        const sdl__ck_entry *e = &c.es[i];
        if (!e->value && !e->used && sdl__has_prefix(e->name, fp) && strncmp(e->name, "optim.", 6) != 0 && !sdl__ck_ignored(e->name))
            ok = sdl__ck_list_add(&rep.unexpected, &rep.nunexpected, "%s", e->name);
    }
    if (!ok) { r = SDL_ERR_OOM; goto done; }
    if ((!d.non_strict && (rep.nmissing || rep.nunexpected)) || (!d.skip_mismatched && rep.nskipped)) {
        char msg[480] = "";
        if (!d.non_strict && rep.nmissing) sdl__ck_list_msg(msg, sizeof msg, "missing in the file", rep.missing, rep.nmissing);
        if (!d.non_strict && rep.nunexpected) sdl__ck_list_msg(msg, sizeof msg, "not in the model", rep.unexpected, rep.nunexpected);
        if (!d.skip_mismatched && rep.nskipped) sdl__ck_list_msg(msg, sizeof msg, "shape or dtype differs", rep.skipped, rep.nskipped);
        r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s' does not fit (non_strict, skip_mismatched allow it): %s", path, msg);
        goto done;
    }
    for (int i = 0; i < total; i++) {
        if (!plan[i]) continue;
        sdl_tensor *t = i < m->nparams ? m->params[i] : m->buffers[i - m->nparams];
        if ((r = sdl__ck_read(path, &c, plan[i], sdl_f32(t), t->numel, t->device)) != SDL_OK) goto done;
        rep.loaded++;
    }
done:
    SDL_DEALLOC(plan);
    sdl__ck_close(&c);
    if (report && r == SDL_OK) *report = rep;
    else sdl_load_report_free(&rep);
    return r;
}

/* >>train: timer, meters, progress, results CSV, flags */

SDL_API double sdl_now(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#elif defined(TIME_UTC)
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC; /* strict C99: processor time */
#endif
}

SDL_API void sdl_meter_reset(sdl_meter *m) { if (m) memset(m, 0, sizeof *m); }
SDL_API void sdl_meter_add(sdl_meter *m, float batch_loss, int64_t correct, int64_t count) {
    if (!m) return;
    m->loss_sum += (double)batch_loss * (double)count;
    m->correct += correct;
    m->count += count;
    m->batches++;
}
SDL_API double sdl_meter_loss(const sdl_meter *m) { return m && m->count ? m->loss_sum / (double)m->count : 0.0; }
SDL_API double sdl_meter_accuracy(const sdl_meter *m) { return m && m->count ? (double)m->correct / (double)m->count : 0.0; }

SDL_API sdl_result sdl_csv_append(const char *path, const sdl_epoch_stats *s) {
    if (!path || !s) return sdl_fail(SDL_ERR_ARG, "csv_append: NULL path or stats");
    FILE *f = fopen(path, "ab");
    if (!f) return sdl_fail(SDL_ERR_IO, "csv_append: cannot open '%s': %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    if (ftell(f) == 0) fprintf(f, "epoch,loss,accuracy,val_loss,val_accuracy,lr,time\n");
    fprintf(f, "%lld,%.6f,%.6f,%.6f,%.6f,%.8g,%.3f\n", (long long)s->epoch, s->loss, s->accuracy,
            s->val_loss, s->val_accuracy, s->lr, s->time);
    if (fclose(f) != 0) return sdl_fail(SDL_ERR_IO, "csv_append: cannot write '%s'", path);
    return SDL_OK;
}

static bool sdl__train_isatty(FILE *f) {
#ifdef SDL__TRAIN_POSIX
    if (f == stdout) return isatty(1) != 0;
    if (f == stderr) return isatty(2) != 0;
#endif
    SDL__UNUSED(f);
    return false;
}

SDL_API void sdl_progress_begin(sdl_progress *p, FILE *out, int64_t epoch, int64_t epochs, int64_t total) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->out = out ? out : stdout;
    p->epoch = epoch;
    p->epochs = epochs;
    p->total = total;
    p->start = sdl_now();
    p->tty = sdl__train_isatty(p->out);
}

SDL_API void sdl_progress_update(sdl_progress *p, int64_t done, const sdl_meter *m) {
    if (!p || !p->tty) return;
    double now = sdl_now();
    if (done < p->total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    char bar[31];
    int fill = p->total > 0 ? (int)(30 * done / p->total) : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[30] = 0;
    fprintf(p->out, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.4f %.1fs", (long long)p->epoch,
            (long long)p->epochs, bar, (long long)done, (long long)p->total, sdl_meter_loss(m),
            sdl_meter_accuracy(m), now - p->start);
    fflush(p->out);
}

SDL_API void sdl_progress_end(sdl_progress *p, const sdl_epoch_stats *s) {
    if (!p || !s) return;
    if (p->tty) fprintf(p->out, "\r\033[K");
    fprintf(p->out, "epoch %lld/%lld: loss %.4f acc %.4f val_loss %.4f val_acc %.4f lr %.6g time %.1fs\n",
            (long long)s->epoch, (long long)p->epochs, s->loss, s->accuracy, s->val_loss, s->val_accuracy,
            s->lr, s->time);
    fflush(p->out);
}

SDL_API void sdl_print_throughput(FILE *out, double images, double seconds) {
    fprintf(out ? out : stdout, "total images/sec: %.2f\n", seconds > 0.0 ? images / seconds : 0.0);
}

/* does flag text [s, s+n) equal one of the '|'-separated names, '_' matching '-'? */
static bool sdl__train_flag_is(const char *names, const char *s, size_t n) {
    for (const char *a = names; *a;) {
        size_t len = strcspn(a, "|"), i = 0;
        if (len == n) {
            for (i = 0; i < n; i++) {
                char x = a[i] == '_' ? '-' : a[i], y = s[i] == '_' ? '-' : s[i];
                if (x != y) break;
            }
            if (i == n) return true;
        }
        a += len;
        if (*a == '|') a++;
    }
    return false;
}

static sdl_arg *sdl__train_flag_find(sdl_arg *args, int nargs, const char *s, size_t n) {
    for (int i = 0; i < nargs; i++)
        if (args[i].name && sdl__train_flag_is(args[i].name, s, n)) return &args[i];
    return NULL;
}

static sdl_result sdl__train_flag_set(sdl_arg *a, const char *flag, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (a->type) {
    case SDL_ARG_DEFAULT: case SDL_ARG_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < -2147483647L - 1 || x > 2147483647L)
            return sdl_fail(SDL_ERR_ARG, "flag --%s wants an integer, got '%s'", flag, v);
        *(int *)a->value = (int)x;
        return SDL_OK;
    }
    case SDL_ARG_FLOAT: {
        double x = strtod(v, &end);
        if (end == v || *end || errno) return sdl_fail(SDL_ERR_ARG, "flag --%s wants a number, got '%s'", flag, v);
        *(float *)a->value = (float)x;
        return SDL_OK;
    }
    case SDL_ARG_STRING:
        *(const char **)a->value = v;
        return SDL_OK;
    case SDL_ARG_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)a->value = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)a->value = false;
        else return sdl_fail(SDL_ERR_ARG, "flag --%s wants true or false, got '%s'", flag, v);
        return SDL_OK;
    }
    return sdl_fail(SDL_ERR_ARG, "flag --%s has an unknown type %d in the program's table", flag, (int)a->type);
}

SDL_API sdl_result sdl_args_parse(int argc, char **argv, sdl_arg *args, int nargs) {
    if (argc > 0 && !argv) return sdl_fail(SDL_ERR_ARG, "args_parse: NULL argv");
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h")) s = "--help";
        if (s[0] != '-' || s[1] != '-' || !s[2]) return sdl_fail(SDL_ERR_ARG, "unexpected argument '%s' (flags start with --)", argv[i]);
        s += 2;
        const char *eq = strchr(s, '=');
        size_t n = eq ? (size_t)(eq - s) : strlen(s);
        char flag[64];
        snprintf(flag, sizeof flag, "%.*s", (int)n, s);
        sdl_arg *a = sdl__train_flag_find(args, nargs, s, n);
        if (!a && n > 3 && !strncmp(s, "no-", 3) && !eq) { /* --no-flag */
            a = sdl__train_flag_find(args, nargs, s + 3, n - 3);
            if (a && a->type == SDL_ARG_BOOL) { *(bool *)a->value = false; continue; }
            a = NULL;
        }
        if (!a) return sdl_fail(SDL_ERR_ARG, "unknown flag --%s", flag);
        if (!a->value) return sdl_fail(SDL_ERR_ARG, "flag --%s has no value pointer in the program's table", flag);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && a->type == SDL_ARG_BOOL) { *(bool *)a->value = true; continue; }
        if (!v) {
            if (i + 1 >= argc) return sdl_fail(SDL_ERR_ARG, "flag --%s needs a value", flag);
            v = argv[++i];
        }
        sdl_result r = sdl__train_flag_set(a, flag, v);
        if (r != SDL_OK) return r;
    }
    return SDL_OK;
}

SDL_API void sdl_args_usage(FILE *out, const char *prog, const sdl_arg *args, int nargs) {
    if (!out) out = stdout;
    fprintf(out, "usage: %s [flags]   ('_' and '-' are the same in flag names)\n", prog ? prog : "prog");
    for (int i = 0; i < nargs; i++) {
        const sdl_arg *a = &args[i];
        char names[128], dflt[96] = "";
        size_t k = 2;
        memcpy(names, "--", 2);
        for (const char *c = a->name ? a->name : ""; *c && k + 5 < sizeof names; c++) {
            if (*c == '|') { memcpy(names + k, ", --", 4); k += 4; }
            else names[k++] = *c;
        }
        names[k] = 0;
        if (a->value) switch (a->type) {
        case SDL_ARG_FLOAT: snprintf(dflt, sizeof dflt, "%g", (double)*(const float *)a->value); break;
        case SDL_ARG_STRING: snprintf(dflt, sizeof dflt, "%s", *(const char *const *)a->value ? *(const char *const *)a->value : ""); break;
        case SDL_ARG_BOOL: snprintf(dflt, sizeof dflt, "%s", *(const bool *)a->value ? "true" : "false"); break;
        default: snprintf(dflt, sizeof dflt, "%d", *(const int *)a->value); break;
        }
        fprintf(out, "  %-28s %s (default %s)\n", names, a->help ? a->help : "", dflt);
    }
}

SDL_API sdl_result sdl_args_save_json(const char *path, const sdl_arg *args, int nargs) {
    if (!path || (!args && nargs > 0)) return sdl_fail(SDL_ERR_ARG, "args_save_json: NULL path or args");
    FILE *f = fopen(path, "w");
    if (!f) return sdl_fail(SDL_ERR_IO, "args_save_json: cannot create '%s'", path);
    fputc('{', f);
    for (int i = 0; i < nargs; i++) {
        const sdl_arg *a = &args[i];
        fputs(i ? ", \"" : "\"", f);
        for (const char *c = a->name ? a->name : ""; *c && *c != '|'; c++) fputc(*c == '-' ? '_' : *c, f);
        fputs("\": ", f);
        if (!a->value) { fputs("null", f); continue; }
        switch (a->type) {
        case SDL_ARG_FLOAT: { /* the fewest digits that read back as the same float: 0.01, not 0.00999999978 */
            char num[32];
            float v = *(const float *)a->value;
            for (int digits = 6; digits <= 9; digits++) {
                snprintf(num, sizeof num, "%.*g", digits, (double)v);
                if ((float)strtod(num, NULL) == v) break;
            }
            fputs(isfinite(v) ? num : "null", f);
            break;
        }
        case SDL_ARG_BOOL: fputs(*(const bool *)a->value ? "true" : "false", f); break;
        case SDL_ARG_STRING: {
            const char *v = *(const char *const *)a->value;
            fputc('"', f);
            for (; v && *v; v++) {
                unsigned char c = (unsigned char)*v;
                if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
                else if (c < 0x20) fprintf(f, "\\u%04x", c);
                else fputc(c, f);
            }
            fputc('"', f);
            break;
        }
        case SDL_ARG_DEFAULT:
        case SDL_ARG_INT: fprintf(f, "%d", *(const int *)a->value); break;
        }
    }
    fputs("}\n", f);
    return fclose(f) == 0 ? SDL_OK : sdl_fail(SDL_ERR_IO, "args_save_json: cannot write '%s'", path);
}

/* >>plot: line and bar charts (see >>decl-plot). An RGB canvas; lines by Bresenham, text
   from stb_easy_font's quads (each an axis-aligned rectangle), PNG by stb_image_write. */
#ifndef SDL_NO_STB
#ifdef __cplusplus
}
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#ifndef SDL_STB_EASY_FONT_PATH
#define SDL_STB_EASY_FONT_PATH <stb/stb_easy_font.h>
#endif
#ifndef INCLUDE_STB_EASY_FONT_H
#include SDL_STB_EASY_FONT_PATH
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
#ifdef __cplusplus
extern "C" {
#endif
#endif /* SDL_NO_STB */

enum { SDL__PLOT_LEFT = 64, SDL__PLOT_RIGHT = 17, SDL__PLOT_TOP = 28, SDL__PLOT_BOTTOM = 41 };
typedef struct sdl__canvas { uint8_t *p; int w, h; } sdl__canvas;
static const uint8_t sdl__plot_ink[3] = {40, 40, 40}, sdl__plot_grid[3] = {225, 225, 225};
static const uint8_t sdl__plot_colors[10][3] = { /* matplotlib's tab10 */
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

static void sdl__rect(sdl__canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) { /* [x0, x1) x [y0, y1) */
    for (int y = y0 > 0 ? y0 : 0; y < y1 && y < c->h; y++)
        for (int x = x0 > 0 ? x0 : 0; x < x1 && x < c->w; x++) memcpy(c->p + ((size_t)y * (size_t)c->w + (size_t)x) * 3, rgb, 3);
}

/* a line r pixels either side of the ideal one (Bresenham, a square brush) */
static void sdl__line(sdl__canvas *c, int x0, int y0, int x1, int y1, int r, const uint8_t rgb[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        sdl__rect(c, x0 - r, y0 - r, x0 + r + 1, y0 + r + 1, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

#ifndef SDL_NO_STB
/* printable ASCII into buf (stb_easy_font indexes its table by char - 32) */
static char *sdl__plot_ascii(const char *text, char *buf, size_t cap) {
    size_t n = 0;
    for (; text && *text && n + 1 < cap; text++) buf[n++] = *text >= 32 && *text < 127 ? *text : '?';
    buf[n] = 0;
    return buf;
}
#endif

static int sdl__text_width(const char *text, int scale) {
#ifdef SDL_NO_STB
    return (int)strlen(text) * 6 * scale; /* the layout only: sdl__png_encode then fails */
#else
    char buf[64];
    return stb_easy_font_width(sdl__plot_ascii(text, buf, sizeof buf)) * scale;
#endif
}

/* text with its top left at (x, y), glyphs about 7 * scale pixels high */
static void sdl__text(sdl__canvas *c, int x, int y, const char *text, int scale, const uint8_t rgb[3]) {
#ifdef SDL_NO_STB
    SDL__UNUSED(c); SDL__UNUSED(x); SDL__UNUSED(y); SDL__UNUSED(text); SDL__UNUSED(scale); SDL__UNUSED(rgb);
#else
    char buf[64];      /* labels are cut at 63 characters */
    float quads[4800]; /* 64 bytes a quad, about 270 bytes a character */
    int nq = stb_easy_font_print(0, 0, sdl__plot_ascii(text, buf, sizeof buf), NULL, quads, (int)sizeof quads);
    for (int q = 0; q < nq; q++) {
        const float *v = quads + q * 16; /* 4 vertices of (x, y, z, rgba) */
        sdl__rect(c, x + (int)v[0] * scale, y + (int)v[1] * scale, x + (int)v[8] * scale, y + (int)v[9] * scale, rgb);
    }
#endif
}

/* about 5 round ticks over [lo, hi]: steps of 1, 2 or 5 times a power of ten */
static double sdl__plot_step(double lo, double hi, bool integers) {
    double raw = (hi - lo) / 5.0, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
    return integers && step < 1.0 ? 1.0 : step;
}

typedef struct sdl__plot {
    sdl__canvas c;
    double x0, x1, y0, y1; /* the data range on the axes */
    int L, R, T, B;        /* the plot area, pixels, inclusive */
} sdl__plot;

static int sdl__plot_px(const sdl__plot *p, double x) {
    return p->x1 > p->x0 ? p->L + (int)lround((x - p->x0) / (p->x1 - p->x0) * (p->R - p->L)) : (p->L + p->R) / 2;
}
static int sdl__plot_py(const sdl__plot *p, double y) {
    double f = (y - p->y0) / (p->y1 - p->y0);
    return p->B - (int)lround((f < -0.02 ? -0.02 : f > 1.02 ? 1.02 : f) * (p->B - p->T)); /* clipped just outside */
}

/* the canvas, title, axis labels, the y range with its grid and ticks */
static sdl_result sdl__plot_begin(sdl__plot *p, const char *what, const sdl_plot_desc *d, double ylo, double yhi) {
    memset(p, 0, sizeof *p);
    int w = d && d->width ? d->width : 640, h = d && d->height ? d->height : 400;
    if (w < 160 || h < 120 || w > 8192 || h > 8192) return sdl_fail(SDL_ERR_ARG, "%s: a %dx%d picture; 160x120 up to 8192x8192", what, w, h);
    if (d && d->ymin < d->ymax) { ylo = d->ymin; yhi = d->ymax; }
    else {
        if (!(ylo < yhi)) { double a = fabs(ylo) > 0 ? fabs(ylo) * 0.1 : 1.0; ylo -= a; yhi += a; }
        double st = sdl__plot_step(ylo, yhi, false);
        ylo = floor(ylo / st + 1e-9) * st;
        yhi = ceil(yhi / st - 1e-9) * st;
    }
    p->c.w = w;
    p->c.h = h;
    p->c.p = (uint8_t *)sdl__alloc((size_t)w * (size_t)h * 3);
    if (!p->c.p) return SDL_ERR_OOM;
    memset(p->c.p, 255, (size_t)w * (size_t)h * 3);
    p->L = SDL__PLOT_LEFT; p->R = w - SDL__PLOT_RIGHT; p->T = SDL__PLOT_TOP; p->B = h - SDL__PLOT_BOTTOM;
    p->y0 = ylo; p->y1 = yhi;
    double st = sdl__plot_step(ylo, yhi, false);
    char s[32];
    for (double k = ceil(ylo / st - 1e-9); k * st <= yhi + st * 1e-9; k++) {
        double v = k * st;
        int y = sdl__plot_py(p, v);
        sdl__rect(&p->c, p->L, y, p->R + 1, y + 1, sdl__plot_grid);
        snprintf(s, sizeof s, "%g", fabs(v) < st * 1e-6 ? 0.0 : v);
        sdl__text(&p->c, p->L - 6 - sdl__text_width(s, 1), y - 4, s, 1, sdl__plot_ink);
    }
    if (d && d->title) sdl__text(&p->c, (w - sdl__text_width(d->title, 2)) / 2, 4, d->title, 2, sdl__plot_ink);
    if (d && d->ylabel) sdl__text(&p->c, 6, 8, d->ylabel, 1, sdl__plot_ink);
    if (d && d->xlabel) sdl__text(&p->c, (p->L + p->R - sdl__text_width(d->xlabel, 1)) / 2, h - 14, d->xlabel, 1, sdl__plot_ink);
    return SDL_OK;
}

/* the frame just outside the plot area, then the PNG */
static sdl_result sdl__plot_end(sdl__plot *p, const char *path) {
    sdl__rect(&p->c, p->L - 1, p->T - 1, p->R + 2, p->T, sdl__plot_ink);
    sdl__rect(&p->c, p->L - 1, p->B + 1, p->R + 2, p->B + 2, sdl__plot_ink);
    sdl__rect(&p->c, p->L - 1, p->T - 1, p->L, p->B + 2, sdl__plot_ink);
    sdl__rect(&p->c, p->R + 1, p->T - 1, p->R + 2, p->B + 2, sdl__plot_ink);
    sdl__buf b;
    memset(&b, 0, sizeof b);
    sdl_result r = sdl__png_encode(path, p->c.p, p->c.w, p->c.h, 3, &b) ? sdl__write_all(path, b.p, b.n) : sdl_last_result();
    SDL_DEALLOC(b.p);
    SDL_DEALLOC(p->c.p);
    return r;
}

static double sdl__series_x(const sdl_plot_series *s, int i) { return s->x ? (double)s->x[i] : (double)(i + 1); }

/* the legend in the corner of the plot area that covers the fewest data points */
static void sdl__plot_legend(sdl__plot *p, const sdl_plot_series *series, int ns) {
    int rows = 0, wmax = 0;
    for (int k = 0; k < ns; k++)
        if (series[k].label) { rows++; int w = sdl__text_width(series[k].label, 1); wmax = w > wmax ? w : wmax; }
    if (!rows) return;
    int bw = wmax + 30, bh = rows * 12 + 6, best = 0, best_n = INT32_MAX;
    for (int corner = 0; corner < 4; corner++) { /* top right, top left, bottom right, bottom left */
        int x = corner % 2 ? p->L + 4 : p->R - 4 - bw, y = corner < 2 ? p->T + 4 : p->B - 4 - bh, n = 0;
        for (int k = 0; k < ns; k++)
            for (int i = 0; i < series[k].n; i++) {
                int px = sdl__plot_px(p, sdl__series_x(&series[k], i)), py = sdl__plot_py(p, series[k].y[i]);
                n += px >= x - 4 && px <= x + bw + 4 && py >= y - 4 && py <= y + bh + 4;
            }
        if (n < best_n) { best_n = n; best = corner; }
    }
    int x = best % 2 ? p->L + 4 : p->R - 4 - bw, y = best < 2 ? p->T + 4 : p->B - 4 - bh;
    static const uint8_t white[3] = {255, 255, 255};
    sdl__rect(&p->c, x, y, x + bw, y + bh, sdl__plot_grid);
    sdl__rect(&p->c, x + 1, y + 1, x + bw - 1, y + bh - 1, white);
    for (int k = 0, row = 0; k < ns; k++) {
        if (!series[k].label) continue;
        int ty = y + 4 + 12 * row++;
        sdl__rect(&p->c, x + 5, ty + 3, x + 22, ty + 5, sdl__plot_colors[k % 10]);
        sdl__text(&p->c, x + 26, ty, series[k].label, 1, sdl__plot_ink);
    }
}

SDL_API sdl_result sdl_plot_lines(const char *path, const sdl_plot_series *series, int nseries, const sdl_plot_desc *desc) {
    if (!path || !series || nseries < 1) return sdl_fail(SDL_ERR_ARG, "plot_lines: NULL path or series, or nseries %d < 1", nseries);
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    bool integers = true;
    for (int k = 0; k < nseries; k++) {
        const sdl_plot_series *s = &series[k];
        if (s->n < 0 || (s->n > 0 && !s->y)) return sdl_fail(SDL_ERR_ARG, "plot_lines %s: series %d has n %d and y %p", path, k, s->n, (const void *)s->y);
        for (int i = 0; i < s->n; i++) {
            double x = sdl__series_x(s, i), y = s->y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x); xhi = fmax(xhi, x); ylo = fmin(ylo, y); yhi = fmax(yhi, y);
            integers = integers && x == floor(x);
        }
    }
    if (!(xlo <= xhi)) return sdl_fail(SDL_ERR_ARG, "plot_lines %s: no finite point to draw", path);
    sdl__plot p;
    sdl_result r = sdl__plot_begin(&p, path, desc, ylo, yhi);
    if (r != SDL_OK) return r;
    p.x0 = xlo;
    p.x1 = xhi;
    char s[32];
    double st = xhi > xlo ? sdl__plot_step(xlo, xhi, integers) : 1.0;
    for (double k = ceil(xlo / st - 1e-9); k * st <= xhi + st * 1e-9; k++) {
        double v = k * st;
        int x = sdl__plot_px(&p, v);
        sdl__rect(&p.c, x, p.T, x + 1, p.B + 1, sdl__plot_grid);
        snprintf(s, sizeof s, "%g", fabs(v) < st * 1e-6 ? 0.0 : v);
        sdl__text(&p.c, x - sdl__text_width(s, 1) / 2, p.B + 6, s, 1, sdl__plot_ink);
    }
    for (int k = 0; k < nseries; k++) {
        const sdl_plot_series *se = &series[k];
        const uint8_t *rgb = sdl__plot_colors[k % 10];
        int px = 0, py = 0;
        bool prev = false;
        for (int i = 0; i < se->n; i++) {
            double x = sdl__series_x(se, i), y = se->y[i];
            if (!isfinite(x) || !isfinite(y)) { prev = false; continue; }
            int cx = sdl__plot_px(&p, x), cy = sdl__plot_py(&p, y);
            if (prev) sdl__line(&p.c, px, py, cx, cy, 1, rgb);
            sdl__rect(&p.c, cx - 3, cy - 3, cx + 4, cy + 4, rgb); /* a marker on each point */
            px = cx; py = cy; prev = true;
        }
    }
    sdl__plot_legend(&p, series, nseries);
    return sdl__plot_end(&p, path);
}

SDL_API sdl_result sdl_plot_bars(const char *path, const char *const *labels, const float *values, int n, const sdl_plot_desc *desc) {
    if (!path || !values || n < 1) return sdl_fail(SDL_ERR_ARG, "plot_bars: NULL path or values, or n %d < 1", n);
    double lo = 0.0, hi = 0.0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(values[i])) return sdl_fail(SDL_ERR_ARG, "plot_bars %s: value %d is %g", path, i, (double)values[i]);
        lo = fmin(lo, values[i]);
        hi = fmax(hi, values[i]);
    }
    sdl__plot p;
    sdl_result r = sdl__plot_begin(&p, path, desc, lo, hi + 0.08 * (hi - lo)); /* room for the value labels */
    if (r != SDL_OK) return r;
    double slot = (double)(p.R - p.L + 1) / n;
    int zero = sdl__plot_py(&p, p.y0 > 0 ? p.y0 : p.y1 < 0 ? p.y1 : 0.0);
    char s[32];
    for (int i = 0; i < n; i++) {
        int x0 = p.L + (int)lround(slot * (i + 0.2)), x1 = p.L + (int)lround(slot * (i + 0.8)), y = sdl__plot_py(&p, values[i]);
        sdl__rect(&p.c, x0, y < zero ? y : zero, x1, (y < zero ? zero : y) + 1, sdl__plot_colors[0]);
        snprintf(s, sizeof s, "%.4g", (double)values[i]);
        sdl__text(&p.c, (x0 + x1 - sdl__text_width(s, 1)) / 2, (y < zero ? y : zero) - 11, s, 1, sdl__plot_ink);
        if (labels && labels[i]) sdl__text(&p.c, (x0 + x1 - sdl__text_width(labels[i], 1)) / 2, p.B + 6, labels[i], 1, sdl__plot_ink);
    }
    return sdl__plot_end(&p, path);
}

/* >>summary: TensorBoard events (see >>decl-summary). The messages, from TensorFlow's
   event.proto and summary.proto: Event{wall_time=1 double, step=2 int64, file_version=3
   string, summary=5 Summary}; Summary{value=1 repeated Value}; Value{tag=1 string,
   simple_value=2 float, image=4 Image}; Image{height=1, width=2, colorspace=3 int32,
   encoded_image_string=4 bytes}. */
struct sdl_summary_writer { FILE *f; char path[1024]; };

static void sdl__pb_put_fixed(sdl__buf *b, int field, uint64_t bits, int bytes) { /* wire type 1 (8 bytes) or 5 (4) */
    uint8_t t[8];
    sdl__pb_put_varint(b, (uint64_t)field << 3 | (bytes == 8 ? 1u : 5u));
    for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(bits >> (8 * i));
    sdl__buf_put(b, t, (size_t)bytes);
}

/* Event{wall_time, step, then field 3 (file_version) or 5 (summary) holding body} as a record */
static sdl_result sdl__summary_event(sdl_summary_writer *w, int64_t step, int field, const void *body, size_t n) {
    sdl__buf e;
    memset(&e, 0, sizeof e);
    double now = (double)time(NULL); /* seconds: strict C99 has no finer wall clock */
    uint64_t bits;
    memcpy(&bits, &now, 8);
    sdl__pb_put_fixed(&e, 1, bits, 8);
    sdl__pb_put_varint(&e, 2 << 3);
    sdl__pb_put_varint(&e, (uint64_t)step);
    sdl__pb_put_bytes(&e, field, body, n);
    sdl_result r = e.oom ? SDL_ERR_OOM : sdl_tfrecord_write_record(w->f, e.p, e.n);
    if (r == SDL_OK && fflush(w->f) != 0) r = sdl_fail(SDL_ERR_IO, "summary %s: write failed (disk full?)", w->path);
    SDL_DEALLOC(e.p);
    return r;
}

/* Summary{value: Value{tag, then field (2 simple_value: 4 bytes; 4 image: a message)}} */
static sdl_result sdl__summary_value(sdl_summary_writer *w, const char *tag, int64_t step, const sdl__buf *value) {
    sdl__buf v, s;
    memset(&v, 0, sizeof v);
    memset(&s, 0, sizeof s);
    sdl__pb_put_bytes(&v, 1, tag, strlen(tag));
    sdl__buf_put(&v, value->p, value->n);
    sdl__pb_put_bytes(&s, 1, v.p, v.n);
    sdl_result r = v.oom || s.oom ? SDL_ERR_OOM : sdl__summary_event(w, step, 5, s.p, s.n);
    SDL_DEALLOC(v.p);
    SDL_DEALLOC(s.p);
    return r;
}

SDL_API sdl_summary_writer *sdl_summary_open(const char *logdir) {
    if (!logdir || !*logdir) { sdl_fail(SDL_ERR_ARG, "summary_open: no log folder"); return NULL; }
    sdl_summary_writer *w = (sdl_summary_writer *)sdl__calloc(1, sizeof *w);
    if (!w) return NULL;
    char host[64];
    const char *h = getenv("HOSTNAME");
    snprintf(host, sizeof host, "%s", h && *h ? h : "localhost");
    for (char *c = host; *c; c++) *c = *c == '/' ? '_' : *c;
    long pid = 0;
#ifdef SDL__TRAIN_POSIX
    mkdir(logdir, 0755); /* an existing folder is fine; a failure shows at fopen */
    pid = (long)getpid();
#endif
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.%ld", logdir, (long long)time(NULL), host, pid);
    w->f = fopen(w->path, "wb");
    if (!w->f) {
        sdl_fail(SDL_ERR_IO, "summary_open: cannot create '%s' (does the folder exist?)", w->path);
        SDL_DEALLOC(w);
        return NULL;
    }
    if (sdl__summary_event(w, 0, 3, "brain.Event:2", 13) != SDL_OK) { sdl_summary_close(w); return NULL; }
    return w;
}

SDL_API const char *sdl_summary_path(const sdl_summary_writer *w) { return w ? w->path : NULL; }

SDL_API sdl_result sdl_summary_scalar(sdl_summary_writer *w, const char *tag, float value, int64_t step) {
    if (!w) return SDL_OK;
    if (!tag) return sdl_fail(SDL_ERR_ARG, "summary_scalar %s: NULL tag", w->path);
    sdl__buf v;
    memset(&v, 0, sizeof v);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    sdl__pb_put_fixed(&v, 2, bits, 4);
    sdl_result r = v.oom ? SDL_ERR_OOM : sdl__summary_value(w, tag, step, &v);
    SDL_DEALLOC(v.p);
    return r;
}

SDL_API sdl_result sdl_summary_image(sdl_summary_writer *w, const char *tag, const sdl_tensor *images, int nrow, float lo,
                                     float hi, int64_t step) {
    if (!w) return SDL_OK;
    if (!tag) return sdl_fail(SDL_ERR_ARG, "summary_image %s: NULL tag", w->path);
    sdl__buf png, img, v;
    memset(&png, 0, sizeof png);
    memset(&img, 0, sizeof img);
    memset(&v, 0, sizeof v);
    int width = 0, height = 0;
    sdl_result r = sdl__png_grid(tag, images, nrow, lo, hi, &png, &width, &height);
    if (r == SDL_OK) {
        int64_t c = images->shape[images->ndim - 3];
        sdl__pb_put_varint(&img, 1 << 3);
        sdl__pb_put_varint(&img, (uint64_t)height);
        sdl__pb_put_varint(&img, 2 << 3);
        sdl__pb_put_varint(&img, (uint64_t)width);
        sdl__pb_put_varint(&img, 3 << 3);
        sdl__pb_put_varint(&img, (uint64_t)c); /* colorspace: 1 grey, 3 RGB, 4 RGBA */
        sdl__pb_put_bytes(&img, 4, png.p, png.n);
        sdl__pb_put_bytes(&v, 4, img.p, img.n);
        r = img.oom || v.oom ? SDL_ERR_OOM : sdl__summary_value(w, tag, step, &v);
    }
    SDL_DEALLOC(png.p);
    SDL_DEALLOC(img.p);
    SDL_DEALLOC(v.p);
    return r;
}

SDL_API void sdl_summary_close(sdl_summary_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    SDL_DEALLOC(w);
}

SDL__COLD_END

/* >>profile */
static double sdl__prof_t[SDL_OP_COUNT][2];
static int64_t sdl__prof_n[SDL_OP_COUNT][2];


static void sdl__prof_add(sdl_op op, int backward, double seconds) {
    sdl__prof_t[op][backward] += seconds;
    sdl__prof_n[op][backward]++;
}

SDL_API void sdl_profile_enable(bool on) { sdl__prof_on = on ? 1 : 0; }
SDL_API void sdl_profile_reset(void) { memset(sdl__prof_t, 0, sizeof sdl__prof_t); memset(sdl__prof_n, 0, sizeof sdl__prof_n); }

SDL_API void sdl_profile_print(void) {
    double total = 0.0;
    for (int op = 0; op < SDL_OP_COUNT; op++) total += sdl__prof_t[op][0] + sdl__prof_t[op][1];
    sdl_log(SDL_LOG_WARN, "profile: %-18s %10s %8s %10s %8s %6s", "op", "fwd ms", "calls", "bwd ms", "calls", "share");
    for (int op = 0; op < SDL_OP_COUNT; op++) {
        double t = sdl__prof_t[op][0] + sdl__prof_t[op][1];
        if (sdl__prof_n[op][0] + sdl__prof_n[op][1] == 0) continue;
        sdl_log(SDL_LOG_WARN, "profile: %-18s %10.2f %8lld %10.2f %8lld %5.1f%%", sdl_op_name((sdl_op)op),
                1e3 * sdl__prof_t[op][0], (long long)sdl__prof_n[op][0], 1e3 * sdl__prof_t[op][1],
                (long long)sdl__prof_n[op][1], total > 0 ? 100.0 * t / total : 0.0);
    }
    sdl_log(SDL_LOG_WARN, "profile: %-18s %10.2f ms in ops", "total", 1e3 * total);
}

static void sdl__profile_atexit(void) { sdl_profile_print(); }

/* once, from the CPU backend's set-up: SDL_PROFILE=1 turns profiling on and prints at exit */
static void sdl__profile_init(void) {
    const char *env = getenv("SDL_PROFILE");
    if (env && atoi(env) > 0) {
        sdl__prof_on = 1;
        atexit(sdl__profile_atexit);
    }
}

/* ========================================================================================
   THE ENGINE ROOM: the thread pool, the packed GEMM and its SIMD micro-kernels, Winograd
   convolution. What makes the CPU kernels fast; skip it on a first reading.
   ======================================================================================== */

/* ----------------------------------------------------------------------------------------
   >>threads: a pool of workers that sleep on a condition variable between jobs
   ---------------------------------------------------------------------------------------- */
#define SDL__MAX_THREADS 256
static int sdl__nthreads; /* 0 until first use */

static int sdl__default_threads(void) {
    const char *env = getenv("SDL_NUM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
#ifndef SDL_NO_THREADS
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#else
    return 1;
#endif
}

#ifndef SDL_NO_THREADS
/* Waiting threads spin a little (~50 us) before they sleep: a training step posts jobs a few
   microseconds apart, and waking a sleeping thread costs about as long as a small job. The
   spins need atomic loads: gcc/clang builtins; other compilers go straight to sleep. */
#if defined(__GNUC__) || defined(__clang__)
#define SDL__ATOMICS 1
#define SDL__LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define SDL__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define SDL__SPINS 2048
#else
#define SDL__LOAD(x) (x)
#define SDL__STORE(x, v) ((x) = (v))
#define SDL__SPINS 0
#endif
static void sdl__relax(void) {
#if defined(SDL__ATOMICS) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(SDL__ATOMICS) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct sdl__pool {
    pthread_t threads[SDL__MAX_THREADS];
    int started;
    bool inited;
    pthread_mutex_t post_mu; /* one poster at a time (the loader thread may post too) */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;
    int pending;
    sdl_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    int nparts;
    uint64_t start_gen[SDL__MAX_THREADS]; /* the generation each worker starts after */
    int flush_denormal;                   /* what sdl_set_flush_denormal asked the workers for */
} sdl__pool;
static sdl__pool sdl__the_pool;

static void sdl__pool_run_part(sdl__pool *p, int part) {
    int64_t begin = (int64_t)part * p->chunk, end = begin + p->chunk;
    if (end > p->n) end = p->n;
    if (begin < end) p->fn(p->ctx, begin, end);
}

static bool sdl__thread_flush_denormal(bool on);

static void *sdl__pool_worker(void *arg) {
    sdl__pool *p = &sdl__the_pool;
    int part = (int)(intptr_t)arg, flush = 0;
    pthread_mutex_lock(&p->mu);
    uint64_t seen = p->start_gen[part];
    for (;;) {
        if (p->generation == seen) { /* spin without the lock, then sleep */
            pthread_mutex_unlock(&p->mu);
            for (int i = 0; i < SDL__SPINS && SDL__LOAD(p->generation) == seen; i++) sdl__relax();
            pthread_mutex_lock(&p->mu);
            while (p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        }
        seen = p->generation;
        int run = part < p->nparts;
        if (flush != p->flush_denormal) sdl__thread_flush_denormal((flush = p->flush_denormal) != 0);
        pthread_mutex_unlock(&p->mu);
        if (run) sdl__pool_run_part(p, part);
        pthread_mutex_lock(&p->mu);
        if (run) {
            SDL__STORE(p->pending, p->pending - 1);
            if (p->pending == 0) pthread_cond_signal(&p->done_cv);
        }
    }
    return NULL;
}

/* called between jobs, from the thread that posts them */
static void sdl__pool_start(int nthreads) {
    sdl__pool *p = &sdl__the_pool;
    if (!p->inited) {
        p->inited = true;
        pthread_mutex_init(&p->post_mu, NULL);
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->work_cv, NULL);
        pthread_cond_init(&p->done_cv, NULL);
    }
    for (int i = p->started + 1; i < nthreads; i++) {
        p->start_gen[i] = p->generation;
        if (pthread_create(&p->threads[i], NULL, sdl__pool_worker, (void *)(intptr_t)i) != 0) break;
        pthread_detach(p->threads[i]);
        p->started = i;
    }
}
#endif

SDL_API void sdl_set_num_threads(int n) {
    if (n <= 0) n = sdl__default_threads();
    if (n > SDL__MAX_THREADS) n = SDL__MAX_THREADS;
    sdl__nthreads = n;
#ifndef SDL_NO_THREADS
    sdl__pool_start(n);
    if (sdl__the_pool.started + 1 < n) sdl__nthreads = sdl__the_pool.started + 1;
#endif
}

SDL_API int sdl_get_num_threads(void) {
    if (sdl__nthreads == 0) sdl_set_num_threads(0);
    return sdl__nthreads;
}

/* FTZ (results) and DAZ (inputs) in x86's MXCSR, FZ in ARM's FPCR: per thread */
#if (defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))) && !defined(__CUDA_ARCH__)
#include <xmmintrin.h>
static bool sdl__thread_flush_denormal(bool on) {
    unsigned int bits = 0x8040u; /* FTZ bit 15, DAZ bit 6 */
    _mm_setcsr(on ? _mm_getcsr() | bits : _mm_getcsr() & ~bits);
    return true;
}
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
static bool sdl__thread_flush_denormal(bool on) {
    uint64_t fpcr, fz = (uint64_t)1 << 24;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? fpcr | fz : fpcr & ~fz;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
    return true;
}
#else
static bool sdl__thread_flush_denormal(bool on) {
    (void)on;
    return false;
}
#endif

SDL_API bool sdl_set_flush_denormal(bool on) {
    if (!sdl__thread_flush_denormal(on)) return false;
#ifndef SDL_NO_THREADS
    sdl__pool *p = &sdl__the_pool;
    sdl_get_num_threads(); /* the pool exists: its workers take the mode at their next job */
    pthread_mutex_lock(&p->mu);
    p->flush_denormal = on;
    pthread_mutex_unlock(&p->mu);
#endif
    return true;
}

/* Calls fn on [0, n) split in at most num_threads contiguous parts of at least `grain`
   indices. The caller runs part 0. fn must write disjoint outputs for disjoint ranges.
   A call from inside a job, or while another thread's job runs, runs on the caller alone. */
SDL_API void sdl_parallel_for(int64_t n, int64_t grain, sdl_range_fn fn, void *ctx) {
    if (n <= 0) return;
    int nt = sdl_get_num_threads();
    if (grain < 1) grain = 1;
    int64_t parts = (n + grain - 1) / grain;
    if (parts > nt) parts = nt;
    if (parts <= 1) { fn(ctx, 0, n); return; }
#ifdef SDL_NO_THREADS
    fn(ctx, 0, n);
#else
    sdl__pool *p = &sdl__the_pool;
    if (pthread_mutex_trylock(&p->post_mu) != 0) { fn(ctx, 0, n); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    p->nparts = (int)((n + p->chunk - 1) / p->chunk);
    SDL__STORE(p->pending, p->nparts - 1);
    SDL__STORE(p->generation, p->generation + 1);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    sdl__pool_run_part(p, 0);
    for (int i = 0; i < SDL__SPINS && SDL__LOAD(p->pending) > 0; i++) sdl__relax();
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->post_mu);
#endif
}

/* Splitting pays when each part's work outweighs the pool's price. A dispatch of 2 parts of
   empty work costs 0.6-15 us of CPU (waking a spinning worker ~1 us, a sleeping one 5-10 us;
   measured as process CPU time over 200K dispatches, 3 runs, on a 2-core machine loaded 5x:
   re-measure on an idle one). A part therefore gets at least SDL_PART_NS of one-thread work,
   20x a spinning wake-up: a split loses at most ~5% where it cannot gain. */
#ifndef SDL_PART_NS
#define SDL_PART_NS 25000.0
#endif

/* parts for a job of `ns` estimated one-thread nanoseconds: 1 .. the thread count */
static int64_t sdl__parts_for_ns(double ns) {
    double parts = ns / SDL_PART_NS;
    int nt = sdl_get_num_threads();
    return parts >= (double)nt ? nt : parts >= 2.0 ? (int64_t)parts : 1;
}

SDL_API void sdl_parallel_for_work(int64_t n, double item_ns, sdl_range_fn fn, void *ctx) {
    if (n <= 0) return;
    int64_t parts = sdl__parts_for_ns((double)n * item_ns);
    sdl_parallel_for(n, (n + parts - 1) / parts, fn, ctx);
}

/* ----------------------------------------------------------------------------------------
   >>gemm: a packed, cache-blocked SGEMM (GotoBLAS/BLIS layout) with a SIMD micro-kernel
   chosen at compile time, and a plain reference loop kept beside it for tests.
     loops:  jc (NC columns of C) > pc (KC of the inner dim) > ic (MC rows) > jr (NR) > ir (MR)
     packing: B's KC x NC block into NR-wide k-major panels, A's MC x KC block (times alpha)
     into MR-tall k-major panels, zero-padded at the edges; the micro-kernel adds the
     MR x NR product of one A panel and one B panel over kc.
   Threads split C into column or row ranges at multiples of NR/MR and never split K, so
   every element of C sees the same sums in the same order for any thread count.
   ---------------------------------------------------------------------------------------- */

typedef struct sdl__gemm_job {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t mr;          /* rows per A panel */
    bool direct_b;       /* the kernel reads B where it lies instead of a packed copy (see sdl__gemm_make) */
    bool split_n;        /* threads take column ranges (else row ranges) */
    int64_t unit, parts; /* range granularity (NR or MR) and the number of ranges */
} sdl__gemm_job;

/* The reference: C = beta*C + alpha * op(A) op(B), one row at a time, single-threaded. */
static void sdl__sgemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                           float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
        for (int64_t k = 0; k < K; k++) {
            float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
            if (tb) {
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k];
            } else {
                const float *b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

#if defined(SDL__GEMM_AVX512) || defined(SDL__GEMM_AVX2)
#define SDL__GEMM_TR8 1
/* dst[c*ldd + r] = src[r*ld + c] for an 8 x 8 block: packing the transposed operands */
static void sdl__tr8(const float *src, int64_t ld, float *dst, int64_t ldd) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld), r2 = _mm256_loadu_ps(src + 2 * ld),
           r3 = _mm256_loadu_ps(src + 3 * ld), r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld),
           r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE), s2 = _mm256_shuffle_ps(t1, t3, 0x44),
           s3 = _mm256_shuffle_ps(t1, t3, 0xEE), s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#endif

/* y[i] += x[i], and dx[i] += (x[i] > 0 ? dy[i] : 0) (relu's backward): explicit SIMD, since
   gcc -O2 vectorises no loop whose trip count it does not know */
static inline void sdl__vadd(float *SDL_RESTRICT y, const float *SDL_RESTRICT x, int64_t n) {
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
#elif defined(SDL__GEMM_AVX2)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] += x[i];
}
static void sdl__vfill(float *y, float v, int64_t n) {
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_set1_ps(v));
#endif
    for (; i < n; i++) y[i] = v;
}
/* sum of x[0..n): 16 (or 1) running sums, then added in a fixed order */
static inline float sdl__vsum(const float *x, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#if defined(SDL__GEMM_AVX512)
    __m512 acc = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
    float lanes[16]; /* (not _mm512_reduce_add_ps: g++ 12 warns inside it) */
    _mm512_storeu_ps(lanes, acc);
    for (int k = 0; k < 16; k++) s += lanes[k];
#endif
    for (; i < n; i++) s += x[i];
    return s;
}
static void sdl__relu_grad_add(float *SDL_RESTRICT dx, const float *SDL_RESTRICT x, const float *SDL_RESTRICT dy, int64_t n) {
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    for (; i + 16 <= n; i += 16) {
        __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_setzero_ps(), _CMP_GT_OQ);
        __m512 d = _mm512_loadu_ps(dx + i);
        _mm512_storeu_ps(dx + i, _mm512_add_ps(d, _mm512_maskz_loadu_ps(pos, dy + i)));
    }
#endif
    for (; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

/* A's rows [i0, i0+mc) x cols [k0, k0+kc) of op(A), times alpha, as MR-tall panels:
   dst[p*MR*kc + k*MR + i] = alpha * op(A)[i0 + p*MR + i][k0 + k] (zero past M) */
static void sdl__pack_a(const sdl__gemm_job *g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float *dst) {
    const int64_t R = g->mr; /* panel height: SDL__MR, or 8 (see sdl__gemm_make) */
    for (int64_t p = 0; p < mc; p += R) {
        int64_t mr = mc - p < R ? mc - p : R;
        float *d = dst + p * kc;
        if (!g->ta) { /* k outer: MR row streams in, one contiguous panel row out */
            const float *rows[SDL__MR];
            int64_t k = 0;
            for (int64_t i = 0; i < mr; i++) rows[i] = g->A + (i0 + p + i) * g->lda + k0;
#if defined(SDL__GEMM_TR8) && SDL__MR >= 8
            if (mr == R && R >= 8) { /* 8 x 8 transposes over rows 0-7 and R-8..R-1 (they may overlap) */
                for (; k + 8 <= kc; k += 8) {
                    sdl__tr8(rows[0] + k, g->lda, d + k * R, R);
                    if (R > 8) sdl__tr8(rows[R - 8] + k, g->lda, d + k * R + R - 8, R);
                }
                if (g->alpha != 1.0f)
                    for (int64_t q = 0; q < k * R; q++) d[q] *= g->alpha;
            }
#endif
            for (; k < kc; k++)
                for (int64_t i = 0; i < mr; i++) d[k * R + i] = g->alpha * rows[i][k];
        } else { /* op(A) = A^T: a panel row is mr contiguous floats of A's row k */
            int64_t k = 0;
#if defined(SDL__GEMM_AVX512)
            const __mmask16 m = (__mmask16)((1u << mr) - 1u); /* mr <= R <= 12 */
            const __m512 va = _mm512_set1_ps(g->alpha);
            for (; k < kc; k++)
                _mm512_mask_storeu_ps(d + k * R, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, g->A + (k0 + k) * g->lda + i0 + p)));
#endif
            for (; k < kc; k++) {
                const float *src = g->A + (k0 + k) * g->lda + i0 + p;
                for (int64_t i = 0; i < mr; i++) d[k * R + i] = g->alpha * src[i];
            }
        }
        if (mr < R)
            for (int64_t k = 0; k < kc; k++)
                for (int64_t i = mr; i < R; i++) d[k * R + i] = 0.0f;
    }
}

/* B's rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) as NR-wide panels:
   dst[p*NR*kc + k*NR + j] = op(B)[k0 + k][j0 + p*NR + j] (zero past N) */
static void sdl__pack_b(const sdl__gemm_job *g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float *dst) {
    for (int64_t p = 0; p < nc; p += SDL__NR) {
        int64_t nr = nc - p < SDL__NR ? nc - p : SDL__NR;
        float *d = dst + p * kc;
        if (!g->tb) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = g->B + (k0 + k) * g->ldb + j0 + p;
                float *dk = d + k * SDL__NR;
                if (nr == SDL__NR) memcpy(dk, src, SDL__NR * sizeof(float));
                else {
                    for (int64_t j = 0; j < nr; j++) dk[j] = src[j];
                    for (int64_t j = nr; j < SDL__NR; j++) dk[j] = 0.0f;
                }
            }
        } else {
            const float *rows[SDL__NR];
            int64_t k = 0;
            for (int64_t j = 0; j < nr; j++) rows[j] = g->B + (j0 + p + j) * g->ldb + k0;
#if defined(SDL__GEMM_TR8)
            if (nr == SDL__NR)
                for (; k + 8 <= kc; k += 8)
                    for (int64_t j = 0; j < SDL__NR; j += 8) sdl__tr8(rows[j] + k, g->ldb, d + k * SDL__NR + j, SDL__NR);
#endif
            for (; k < kc; k++) {
                float *dk = d + k * SDL__NR;
                for (int64_t j = 0; j < nr; j++) dk[j] = rows[j][k];
                for (int64_t j = nr; j < SDL__NR; j++) dk[j] = 0.0f;
            }
        }
    }
}

/* The micro-kernel: the (mr x nr) tile of C at c becomes (first ? beta*C : C) + t, t[i][j] =
   sum_k a[k*MR + i] * b[k*bs + j] over kc. Every tile, full or edge, takes the same path, so
   all round alike; beta 0 never reads C (it may hold NaN). AVX-512 writes C straight from
   its registers (a tile through memory cost a few %) and loads B masked to nr columns, so
   it can read B in place (bs = ldb); the others go through t and read packed B (bs = NR). */
typedef struct sdl__gemm_tile {
    float *c;
    int64_t ldc, mr, nr, bs;
    float beta;
    bool first; /* the first K block: beta applies */
} sdl__gemm_tile;

#if defined(SDL__GEMM_AVX512)
typedef struct sdl__gemm_put_mode { __mmask16 m0, m1; int mode; __m512 vb; } sdl__gemm_put_mode;
static inline sdl__gemm_put_mode sdl__gemm_put_of(const sdl__gemm_tile *o) {
    sdl__gemm_put_mode p;
    p.m0 = (__mmask16)(o->nr >= 16 ? 0xFFFF : (1u << o->nr) - 1u);
    p.m1 = (__mmask16)(o->nr >= 32 ? 0xFFFF : o->nr > 16 ? (1u << (o->nr - 16)) - 1u : 0u);
    p.mode = !o->first || o->beta == 1.0f ? 0 : o->beta == 0.0f ? 1 : 2; /* add; store; beta*C + t */
    p.vb = _mm512_set1_ps(o->beta);
    return p;
}
static inline void sdl__gemm_put(float *c, __m512 t0, __m512 t1, const sdl__gemm_put_mode *p) {
    if (p->mode == 0) {
        t0 = _mm512_add_ps(_mm512_maskz_loadu_ps(p->m0, c), t0);
        t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(p->m1, c + 16), t1);
    } else if (p->mode == 2) {
        t0 = _mm512_fmadd_ps(p->vb, _mm512_maskz_loadu_ps(p->m0, c), t0);
        t1 = _mm512_fmadd_ps(p->vb, _mm512_maskz_loadu_ps(p->m1, c + 16), t1);
    }
    _mm512_mask_storeu_ps(c, p->m0, t0);
    _mm512_mask_storeu_ps(c + 16, p->m1, t1);
}
/* the k loop over SDL__ROWS: packed B with plain loads (masked ones slowed it ~5%), or B in place, masked */
#define SDL__GEMM_LOOP(R)                                                                                     \
    if (o->bs == SDL__NR)                                                                                     \
        for (int64_t k = 0; k < kc; k++, a += (R), b += SDL__NR) {                                            \
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), ai;                                 \
            SDL__ROWS                                                                                         \
        }                                                                                                     \
    else                                                                                                      \
        for (int64_t k = 0; k < kc; k++, a += (R), b += o->bs) {                                              \
            __m512 b0 = _mm512_maskz_loadu_ps(p.m0, b), b1 = _mm512_maskz_loadu_ps(p.m1, b + 16), ai;        \
            SDL__ROWS                                                                                         \
        }
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, const sdl__gemm_tile *o) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0,
           c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0,
           c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0, c8_0 = c0_0, c8_1 = c0_0,
           c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0, c11_1 = c0_0;
    const sdl__gemm_put_mode p = sdl__gemm_put_of(o);
#define SDL__ROW(i) ai = _mm512_set1_ps(a[i]); c##i##_0 = _mm512_fmadd_ps(ai, b0, c##i##_0); c##i##_1 = _mm512_fmadd_ps(ai, b1, c##i##_1);
#define SDL__ROWS SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5) \
                  SDL__ROW(6) SDL__ROW(7) SDL__ROW(8) SDL__ROW(9) SDL__ROW(10) SDL__ROW(11)
    SDL__GEMM_LOOP(12)
#undef SDL__ROWS
#undef SDL__ROW
#define SDL__ROW(i) if ((i) < o->mr) sdl__gemm_put(o->c + (i) * o->ldc, c##i##_0, c##i##_1, &p);
    SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5)
    SDL__ROW(6) SDL__ROW(7) SDL__ROW(8) SDL__ROW(9) SDL__ROW(10) SDL__ROW(11)
#undef SDL__ROW
}
/* the same with 8 rows: for M = 64, 128, ... where 12-row panels would be padded */
static void sdl__gemm_kernel8(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, const sdl__gemm_tile *o) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0,
           c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0,
           c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0;
    const sdl__gemm_put_mode p = sdl__gemm_put_of(o);
#define SDL__ROW(i) ai = _mm512_set1_ps(a[i]); c##i##_0 = _mm512_fmadd_ps(ai, b0, c##i##_0); c##i##_1 = _mm512_fmadd_ps(ai, b1, c##i##_1);
#define SDL__ROWS SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5) SDL__ROW(6) SDL__ROW(7)
    SDL__GEMM_LOOP(8)
#undef SDL__ROWS
#undef SDL__ROW
#define SDL__ROW(i) if ((i) < o->mr) sdl__gemm_put(o->c + (i) * o->ldc, c##i##_0, c##i##_1, &p);
    SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5) SDL__ROW(6) SDL__ROW(7)
#undef SDL__ROW
}
#define SDL__GEMM_MR8 1
#else
/* the tile from t[MR x NR] */
static void sdl__gemm_update(const sdl__gemm_tile *o, const float *t) {
    float *c = o->c;
    for (int64_t i = 0; i < o->mr; i++, c += o->ldc, t += SDL__NR) {
        if (!o->first || o->beta == 1.0f) for (int64_t j = 0; j < o->nr; j++) c[j] += t[j];
        else if (o->beta == 0.0f) for (int64_t j = 0; j < o->nr; j++) c[j] = t[j];
        else for (int64_t j = 0; j < o->nr; j++) c[j] = o->beta * c[j] + t[j];
    }
}
#if defined(SDL__GEMM_AVX2)
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, const sdl__gemm_tile *o) {
    float t[SDL__MR * SDL__NR];
    __m256 c0_0 = _mm256_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0,
           c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0;
    for (int64_t k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), ai;
#define SDL__ROW(i) ai = _mm256_broadcast_ss(a + (i)); c##i##_0 = _mm256_fmadd_ps(ai, b0, c##i##_0); c##i##_1 = _mm256_fmadd_ps(ai, b1, c##i##_1);
        SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5)
#undef SDL__ROW
    }
#define SDL__ROW(i) _mm256_storeu_ps(t + (i) * 16, c##i##_0); _mm256_storeu_ps(t + (i) * 16 + 8, c##i##_1);
    SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5)
#undef SDL__ROW
    sdl__gemm_update(o, t);
}
#else
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, const sdl__gemm_tile *o) {
    float acc[SDL__MR][SDL__NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++, a += SDL__MR, b += SDL__NR)
        for (int i = 0; i < SDL__MR; i++)
            for (int j = 0; j < SDL__NR; j++) acc[i][j] += a[i] * b[j];
    sdl__gemm_update(o, &acc[0][0]);
}
#endif
#endif

/* the block size that cuts n into equal blocks of at most max, rounded up to a multiple
   of q (max is a multiple of q) */
static int64_t sdl__gemm_blk(int64_t n, int64_t max, int64_t q) {
    int64_t nb = (n + max - 1) / max, b = (n + nb - 1) / nb;
    return (b + q - 1) / q * q;
}

/* C[m0:m1, n0:n1] with the packing buffers ws (MC*KC + KC*NC floats) */
static void sdl__gemm_block(const sdl__gemm_job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *ws) {
    float *ap = ws, *bp = ws + SDL__MC * SDL__KC;
    int64_t NC = sdl__gemm_blk(n1 - n0, SDL__NC, SDL__NR), KC = sdl__gemm_blk(g->K, SDL__KC, 16);
    int64_t MC = sdl__gemm_blk(m1 - m0, SDL__MC, g->mr);
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = g->K - pc < KC ? g->K - pc : KC;
            if (!g->direct_b) sdl__pack_b(g, pc, kc, jc, nc, bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                sdl__pack_a(g, ic, mc, pc, kc, ap);
                for (int64_t jr = 0; jr < nc; jr += SDL__NR) {
                    int64_t nr = nc - jr < SDL__NR ? nc - jr : SDL__NR;
                    for (int64_t ir = 0; ir < mc; ir += g->mr) {
                        int64_t mr = mc - ir < g->mr ? mc - ir : g->mr;
                        sdl__gemm_tile o = {g->C + (ic + ir) * g->ldc + jc + jr, g->ldc, mr, nr,
                                            g->direct_b ? g->ldb : SDL__NR, g->beta, pc == 0};
                        const float *b = g->direct_b ? g->B + pc * g->ldb + jc + jr : bp + jr * kc;
#ifdef SDL__GEMM_MR8
                        if (g->mr == 8) sdl__gemm_kernel8(kc, ap + ir * kc, b, &o);
                        else
#endif
                        sdl__gemm_kernel(kc, ap + ir * kc, b, &o);
                    }
                }
            }
        }
    }
}

/* packing buffers, one per thread part, kept for the life of the process (a steady-state
   step allocates nothing). Grown only from the calling thread, before work is handed out. */
static float *sdl__gemm_ws[SDL__MAX_THREADS];
static bool sdl__gemm_ws_ready(int parts) {
    for (int p = 0; p < parts; p++)
        if (!sdl__gemm_ws[p]) {
            sdl__gemm_ws[p] = (float *)sdl__aligned_alloc(sizeof(float) * (size_t)SDL__KC * (SDL__MC + SDL__NC));
            if (!sdl__gemm_ws[p]) return false;
        }
    return true;
}

static void sdl__gemm_part(void *ctx, int64_t p0, int64_t p1) {
    const sdl__gemm_job *g = (const sdl__gemm_job *)ctx;
    for (int64_t p = p0; p < p1; p++) {
        int64_t dim = g->split_n ? g->N : g->M, units = (dim + g->unit - 1) / g->unit;
        int64_t b = units * p / g->parts * g->unit, e = units * (p + 1) / g->parts * g->unit;
        if (e > dim) e = dim;
        if (b >= e) continue;
        if (g->split_n) sdl__gemm_block(g, 0, g->M, b, e, sdl__gemm_ws[p]);
        else sdl__gemm_block(g, b, e, 0, g->N, sdl__gemm_ws[p]);
    }
}

static sdl__gemm_job sdl__gemm_make(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                                    float *C, int64_t ldc) {
    sdl__gemm_job g;
    g.ta = ta; g.tb = tb; g.M = M; g.N = N; g.K = K; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.alpha = alpha; g.beta = beta; g.A = A; g.B = B; g.C = C;
    /* panel height: 8 rows where that pads M less than SDL__MR rows would (M = 64: 64 rows
       instead of 72). Both kernels add the k products of an element in the same order, so
       the choice changes speed only. */
    g.mr = SDL__MR;
#ifdef SDL__GEMM_MR8
    if ((M + 7) / 8 * 8 - M < (M + SDL__MR - 1) / SDL__MR * SDL__MR - M) g.mr = 8;
#endif
    /* B read in place: no packing where all of it sits in L2 and one K block covers it (the
       same sums either way, so the choice changes speed only) */
    g.direct_b = false;
#if defined(SDL__GEMM_AVX512)
    g.direct_b = !tb && K <= SDL__KC && K * N <= SDL__GEMM_DIRECT_B;
#endif
    g.split_n = N >= M; g.unit = g.split_n ? SDL__NR : g.mr; g.parts = 1;
    return g;
}

/* Threads split C into `parts` row ranges (each packs all of B) or column ranges (each packs
   all of A); the one that packs less twice wins. Sharing one packed block between threads
   was slower on every shape measured (2-core Zen 5 VM): the other core's writes come back
   through L3. Estimated cycles per thread: the widest part's FMAs (32 a cycle), its share
   of the split operand and all of the other, at rough per-element packing costs (A: 8x8
   transposes, or scalar copies if transposed; B: memcpy, or transposes if transposed). */
static void sdl__gemm_split(sdl__gemm_job *g, int64_t parts) {
    double ca = g->ta ? 1.0 : 0.5, cb = g->tb ? 0.5 : 0.125;
    int64_t rows = ((g->M + g->mr - 1) / g->mr + parts - 1) / parts * g->mr;
    int64_t cols = ((g->N + SDL__NR - 1) / SDL__NR + parts - 1) / parts * SDL__NR;
    if (rows > g->M) rows = g->M;
    if (cols > g->N) cols = g->N;
    double k = (double)g->K;
    double by_rows = (double)rows * g->N * k / 32 + k * g->N * cb + (double)rows * k * ca;
    double by_cols = (double)g->M * cols * k / 32 + (double)g->M * k * ca + k * cols * cb;
    g->split_n = by_cols < by_rows;
    g->unit = g->split_n ? SDL__NR : g->mr;
}

/* the trivial cases: nothing to add (K = 0 or alpha = 0) means C = beta * C */
static bool sdl__gemm_trivial(int64_t M, int64_t N, int64_t K, float alpha, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return true;
    if (K > 0 && alpha != 0.0f) return false;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return true;
}

/* single-threaded, with the caller's packing buffer ws (part `part` of sdl__gemm_ws): for
   kernels that already run on a pool thread */
static void sdl__sgemm_serial(int part, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                              const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                              float *C, int64_t ldc) {
    if (sdl__gemm_trivial(M, N, K, alpha, beta, C, ldc)) return;
    sdl__gemm_job g = sdl__gemm_make(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    sdl__gemm_block(&g, 0, M, 0, N, sdl__gemm_ws[part]);
}

SDL_API void sdl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
    if (sdl__gemm_trivial(M, N, K, alpha, beta, C, ldc)) return;
    sdl__gemm_job g = sdl__gemm_make(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    /* a part gets at least ~8 MFLOP (tens of microseconds): waking a thread costs several */
    int64_t parts = (M * N * K) / (2 * 128 * 128 * 128) + 1;
    int nt = sdl_get_num_threads();
    if (parts > nt) parts = nt;
    if (parts > 1) sdl__gemm_split(&g, parts);
    int64_t units = ((g.split_n ? N : M) + g.unit - 1) / g.unit;
    if (parts > units) parts = units;
    if (!sdl__gemm_ws_ready((int)parts)) { /* no memory for packing: the plain loop still works */
        sdl__sgemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    g.parts = parts;
    if (parts == 1) sdl__gemm_part(&g, 0, 1);
    else sdl_parallel_for(parts, 1, sdl__gemm_part, &g);
}

/* >>winograd: Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
   Networks", 2015) for stride-1 3x3 convs. The output is cut into 2x2 tiles; a tile reads a
   4x4 input window d (windows of neighbouring tiles overlap by 2) and is
       y_tile = A^T [ (G w G^T) .* (B^T d B) ] A        (.* elementwise on 4x4)
       B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
       A^T = [1 1 1 0; 0 1 -1 -1]
   so 9 multiplies per output and input channel become 16/4 = 4, and the sum over input
   channels becomes one GEMM per element e of the 4x4 transformed tile:
       M[e] (O, T) = U[e] (O, C) @ V[e] (C, T),   U = G w G^T, V = B^T d B, T = tiles
   Backward takes the adjoints of the same transforms:
       dM = A dy A^T;  dU[e] = dM[e] @ V[e]^T, dw += G^T dU G;  dV[e] = U[e]^T @ dM[e], dx += B dV B^T
   Samples go in groups of wg (fixed by the batch, never by the thread count) so the GEMMs
   have ~sdl__wino_tiles columns; dU is kept per group and the groups are added in order, so
   results are bitwise the same for any thread count. The im2col path above is the reference
   (tests/test_conv_fast.c checks one against the other). */

static bool sdl__wino_applies(const sdl__conv_job *j) {
    if (j->transpose || j->g.KH != 3 || j->g.KW != 3 || j->g.sh != 1 || j->g.sw != 1 || sdl__conv_algo == 1) return false;
    /* fewer channels: the GEMMs' K (C_in forward, C_out for dx) is too short to pay for the
       transforms (measured: C_in = 8 gains forward, loses more backward) */
    return sdl__conv_algo == 2 || (j->g.C >= 16 && j->O >= 16);
}

/* U[e][o][c] = (G w[o][c] G^T)[e], 16 filters at a time: U's 16 rows (e) lie a multiple of
   4 KiB apart for the usual channel counts, so one float into each in turn thrashes the cache
   set they share; a block writes 16 contiguous floats into each */
typedef struct sdl__wino_fjob { const float *src; float *dst; int64_t O, C, ngroups; bool trans; } sdl__wino_fjob;
static void sdl__wino_filter_blocks(void *ctx, int64_t blk0, int64_t blk1) {
    const sdl__wino_fjob *f = (const sdl__wino_fjob *)ctx;
    const float *w = f->src;
    float *U = f->dst;
    const int64_t n = f->O * f->C;
    for (int64_t b0 = blk0 * 16; b0 < n && b0 < blk1 * 16; b0 += 16) {
        const int64_t nb = n - b0 < 16 ? n - b0 : 16;
        float g[9][16] = {{0}}, t[4][3][16], u[16][16]; /* [tap or e][oc - b0]: loops over q vectorise */
        for (int64_t q = 0; q < nb; q++)
            for (int k = 0; k < 9; k++) g[k][q] = w[(b0 + q) * 9 + k];
        for (int k = 0; k < 3; k++)
            for (int q = 0; q < 16; q++) {
                t[0][k][q] = g[k][q];
                t[1][k][q] = 0.5f * (g[k][q] + g[3 + k][q] + g[6 + k][q]);
                t[2][k][q] = 0.5f * (g[k][q] - g[3 + k][q] + g[6 + k][q]);
                t[3][k][q] = g[6 + k][q];
            }
        for (int i = 0; i < 4; i++)
            for (int q = 0; q < 16; q++) {
                u[4 * i + 0][q] = t[i][0][q];
                u[4 * i + 1][q] = 0.5f * (t[i][0][q] + t[i][1][q] + t[i][2][q]);
                u[4 * i + 2][q] = 0.5f * (t[i][0][q] - t[i][1][q] + t[i][2][q]);
                u[4 * i + 3][q] = t[i][2][q];
            }
        for (int e = 0; e < 16; e++) /* (a constant size where it can: gcc makes a variable one rep movs, slow for 64 bytes) */
            if (nb == 16) memcpy(U + e * n + b0, u[e], 16 * sizeof(float));
            else memcpy(U + e * n + b0, u[e], (size_t)nb * sizeof(float));
    }
}
/* dw[o][c] += G^T dU[.][o][c] G, dU the sum of the groups' (16, O, C) blocks in group order
   ((16, C, O) when trans), read 16 at a time as above */
static void sdl__wino_filter_grad_blocks(void *ctx, int64_t blk0, int64_t blk1) {
    const sdl__wino_fjob *f = (const sdl__wino_fjob *)ctx;
    const float *dU = f->src;
    float *dw = f->dst;
    const int64_t O = f->O, C = f->C, n = O * C;
    const bool trans = f->trans;
    for (int64_t b0 = blk0 * 16; b0 < n && b0 < blk1 * 16; b0 += 16) {
        const int64_t nb = n - b0 < 16 ? n - b0 : 16;
        float v[16][16]; /* v[e][at - b0] */
        for (int e = 0; e < 16; e++)
            if (nb == 16) memcpy(v[e], dU + e * n + b0, 16 * sizeof(float));
            else memcpy(v[e], dU + e * n + b0, (size_t)nb * sizeof(float));
        for (int64_t grp = 1; grp < f->ngroups; grp++)
            for (int e = 0; e < 16; e++)
                for (int64_t q = 0; q < nb; q++) v[e][q] += dU[(grp * 16 + e) * n + b0 + q];
        for (int64_t q = 0; q < nb; q++) {
            const int64_t at = b0 + q, oc = trans ? (at % O) * C + at / O : at;
            float s[3][4];
            for (int k = 0; k < 4; k++) {
                s[0][k] = v[k][q] + 0.5f * (v[4 + k][q] + v[8 + k][q]);
                s[1][k] = 0.5f * (v[4 + k][q] - v[8 + k][q]);
                s[2][k] = 0.5f * (v[4 + k][q] + v[8 + k][q]) + v[12 + k][q];
            }
            float *g = dw + oc * 9;
            for (int i = 0; i < 3; i++) {
                g[i * 3 + 0] += s[i][0] + 0.5f * (s[i][1] + s[i][2]);
                g[i * 3 + 1] += 0.5f * (s[i][1] - s[i][2]);
                g[i * 3 + 2] += 0.5f * (s[i][1] + s[i][2]) + s[i][3];
            }
        }
    }
}

/* both over the threads, in blocks of 16 filters (each block's outputs its own: the same bits) */
static void sdl__wino_filter(const float *w, int64_t O, int64_t C, float *U) {
    sdl__wino_fjob f = {w, U, O, C, 1, false};
    sdl_parallel_for_work((O * C + 15) / 16, 16 * 4.0, sdl__wino_filter_blocks, &f);
}
static void sdl__wino_filter_grad(const float *dU, int64_t O, int64_t C, int64_t ngroups, bool trans, float *dw) {
    sdl__wino_fjob f = {dU, dw, O, C, ngroups, trans};
    sdl_parallel_for_work((O * C + 15) / 16, 16 * (4.0 + ngroups), sdl__wino_filter_grad_blocks, &f);
}

/* The transformed tiles are stored V[e][c][t] (e = 0..15 blocks of C rows of Tg tiles, so
   each block is a GEMM operand). The blocks sit sdl__wino_es apart: C*Tg plus 32 floats,
   since a stride of a multiple of 4 KiB would put all 16 streams in the same cache set.
   Image planes are handled split into even and odd columns (E, O), so that every loop over
   the tiles of a row reads and writes contiguous memory: SDL__WL tiles at a time (16 lanes
   of AVX-512, masked at the row's end; 1 elsewhere, the same code on floats). */
static int64_t sdl__wino_es(int64_t rows, int64_t Tg) { return rows * Tg + 32; }

#if defined(SDL__GEMM_AVX512)
typedef __m512 sdl__wv;
typedef __mmask16 sdl__wm;
#define SDL__WL 16
static inline sdl__wm sdl__wmask(int64_t n) { return (sdl__wm)(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u); }
#define SDL__WLD(p, m) _mm512_maskz_loadu_ps(m, p)
#define SDL__WST(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define SDL__WADD(a, b) _mm512_add_ps(a, b)
#define SDL__WSUB(a, b) _mm512_sub_ps(a, b)
#define SDL__WNEG(a) _mm512_sub_ps(_mm512_setzero_ps(), a)
#define SDL__WSET(x) _mm512_set1_ps(x)
/* d[2k] = e[k], d[2k+1] = o[k] for the first n values of d */
static void sdl__wst2(float *d, int64_t n, sdl__wv e, sdl__wv o) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    _mm512_mask_storeu_ps(d, sdl__wmask(n), _mm512_permutex2var_ps(e, lo, o));
    _mm512_mask_storeu_ps(d + 16, sdl__wmask(n - 16), _mm512_permutex2var_ps(e, hi, o));
}
#else
typedef float sdl__wv;
typedef int sdl__wm;
#define SDL__WL 1
static inline sdl__wm sdl__wmask(int64_t n) { return n > 0; }
#define SDL__WLD(p, m) ((void)(m), *(p))
#define SDL__WST(p, m, v) ((void)(m), *(p) = (v))
#define SDL__WADD(a, b) ((a) + (b))
#define SDL__WSUB(a, b) ((a) - (b))
#define SDL__WNEG(a) (-(a))
#define SDL__WSET(x) (x)
static void sdl__wst2(float *d, int64_t n, sdl__wv e, sdl__wv o) {
    if (n > 0) d[0] = e;
    if (n > 1) d[1] = o;
}
#endif

/* e[k] = s[2k], o[k] = s[2k+1] for the n values of s */
static inline void sdl__deinterleave(const float *s, int64_t n, float *e, float *o) {
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(s + i), b = _mm512_loadu_ps(s + i + 16);
        _mm512_storeu_ps(e + i / 2, _mm512_permutex2var_ps(a, ev, b));
        _mm512_storeu_ps(o + i / 2, _mm512_permutex2var_ps(a, od, b));
    }
    if (i < n) {
        int64_t r = n - i;
        __m512 a = _mm512_maskz_loadu_ps(sdl__wmask(r), s + i), b = _mm512_maskz_loadu_ps(sdl__wmask(r - 16), s + i + 16);
        _mm512_mask_storeu_ps(e + i / 2, sdl__wmask((r + 1) / 2), _mm512_permutex2var_ps(a, ev, b));
        _mm512_mask_storeu_ps(o + i / 2, sdl__wmask(r / 2), _mm512_permutex2var_ps(a, od, b));
    }
#endif
    for (; i + 1 < n; i += 2) { e[i / 2] = s[i]; o[i / 2] = s[i + 1]; }
    if (i < n) e[i / 2] = s[i];
}
/* d[2k] = e[k] + bias, d[2k+1] = o[k] + bias for the n values of d (add: d += instead) */
static inline void sdl__interleave(float *d, int64_t n, const float *e, const float *o, float bias, bool add) {
    int64_t i = 0;
#if defined(SDL__GEMM_AVX512)
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512 vb = _mm512_set1_ps(bias);
    for (; i < n; i += 32) {
        int64_t r = n - i;
        __mmask16 m0 = sdl__wmask(r), m1 = sdl__wmask(r - 16);
        __m512 a = _mm512_maskz_loadu_ps(sdl__wmask((r + 1) / 2), e + i / 2), b = _mm512_maskz_loadu_ps(sdl__wmask(r / 2), o + i / 2);
        __m512 x0 = _mm512_add_ps(_mm512_permutex2var_ps(a, lo, b), vb), x1 = _mm512_add_ps(_mm512_permutex2var_ps(a, hi, b), vb);
        if (add) {
            x0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d + i), x0);
            x1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + i + 16), x1);
        }
        _mm512_mask_storeu_ps(d + i, m0, x0);
        _mm512_mask_storeu_ps(d + i + 16, m1, x1);
    }
#else
    for (; i < n; i++) {
        float v = (i & 1 ? o[i / 2] : e[i / 2]) + bias;
        d[i] = add ? d[i] + v : v;
    }
#endif
}

/* one sample's image x (C, H, W) -> V[e][c][t0 + t] (Tg tiles in the group): each plane is
   first copied, zero-padded, into an E and an O plane of (2TH+2, TW+1) */
static void sdl__wino_in(const sdl__conv_job *j, const float *x, float *plane, float *V, int64_t Tg, int64_t t0) {
    const sdl__geom *g = &j->g;
    const int64_t TH = j->TH, TW = j->TW, TW1 = TW + 1, PH = 2 * TH + 2, es = sdl__wino_es(g->C, Tg);
    const int64_t pe0 = (g->pw + 1) / 2, po0 = g->pw / 2; /* where x's column 0 lands: E or O */
    float *PE = plane, *PO = plane + PH * TW1;
    /* x's columns fill E and O exactly (pad 0, W even): one call per plane */
    const bool whole = g->pw == 0 && 2 * TW1 == g->W;
    for (int64_t c = 0; c < g->C; c++) {
        const float *xc = x + c * g->H * g->W;
        if (whole) {
            memset(PE, 0, (size_t)(g->ph * TW1) * sizeof(float));
            memset(PO, 0, (size_t)(g->ph * TW1) * sizeof(float));
            memset(PE + (g->ph + g->H) * TW1, 0, (size_t)((PH - g->ph - g->H) * TW1) * sizeof(float));
            memset(PO + (g->ph + g->H) * TW1, 0, (size_t)((PH - g->ph - g->H) * TW1) * sizeof(float));
            sdl__deinterleave(xc, g->H * g->W, PE + g->ph * TW1, PO + g->ph * TW1);
        } else {
            memset(plane, 0, (size_t)(PH * 2 * TW1) * sizeof(float));
            for (int64_t ih = 0; ih < g->H; ih++) {
                float *pe = PE + (ih + g->ph) * TW1, *po = PO + (ih + g->ph) * TW1;
                if (g->pw & 1) sdl__deinterleave(xc + ih * g->W, g->W, po + po0, pe + pe0);
                else sdl__deinterleave(xc + ih * g->W, g->W, pe + pe0, po + po0);
            }
        }
        for (int64_t th = 0; th < TH; th++) {
            float *v = V + c * Tg + t0 + th * TW;
            for (int64_t tw = 0; tw < TW; tw += SDL__WL) {
                sdl__wm mk = sdl__wmask(TW - tw);
                sdl__wv d[4][4], r[4][4];
                for (int i = 0; i < 4; i++) { /* row i's window columns: 2tw, 2tw+1, 2tw+2, 2tw+3 */
                    const float *pe = PE + (2 * th + i) * TW1 + tw, *po = PO + (2 * th + i) * TW1 + tw;
                    d[i][0] = SDL__WLD(pe, mk); d[i][1] = SDL__WLD(po, mk);
                    d[i][2] = SDL__WLD(pe + 1, mk); d[i][3] = SDL__WLD(po + 1, mk);
                }
                for (int k = 0; k < 4; k++) { /* B^T d: row combinations */
                    r[0][k] = SDL__WSUB(d[0][k], d[2][k]);
                    r[1][k] = SDL__WADD(d[1][k], d[2][k]);
                    r[2][k] = SDL__WSUB(d[2][k], d[1][k]);
                    r[3][k] = SDL__WSUB(d[1][k], d[3][k]);
                }
                for (int i = 0; i < 4; i++) { /* (B^T d) B: the same on the columns */
                    SDL__WST(v + (4 * i + 0) * es + tw, mk, SDL__WSUB(r[i][0], r[i][2]));
                    SDL__WST(v + (4 * i + 1) * es + tw, mk, SDL__WADD(r[i][1], r[i][2]));
                    SDL__WST(v + (4 * i + 2) * es + tw, mk, SDL__WSUB(r[i][2], r[i][1]));
                    SDL__WST(v + (4 * i + 3) * es + tw, mk, SDL__WSUB(r[i][1], r[i][3]));
                }
            }
        }
    }
}

/* M[e][o][t0 + t] -> one sample's y (O, OH, OW) = A^T M A (+ bias); a vector of tiles gives
   the even and the odd columns of two output rows, stored interleaved */
static void sdl__wino_out(const sdl__conv_job *j, const float *M, int64_t Tg, int64_t t0, const float *bias, float *y) {
    const int64_t TH = j->TH, TW = j->TW, OH = j->g.OH, OW = j->g.OW, es = sdl__wino_es(j->O, Tg);
    for (int64_t o = 0; o < j->O; o++) {
        const sdl__wv bv = SDL__WSET(bias ? bias[o] : 0.0f);
        for (int64_t th = 0; th < TH; th++) {
            const float *m = M + o * Tg + t0 + th * TW;
            float *yr = y + (o * OH + 2 * th) * OW;
            for (int64_t tw = 0; tw < TW; tw += SDL__WL) {
                sdl__wm mk = sdl__wmask(TW - tw);
                sdl__wv s[2][4];
                for (int k = 0; k < 4; k++) { /* A^T m: row combinations */
                    sdl__wv m0 = SDL__WLD(m + k * es + tw, mk), m1 = SDL__WLD(m + (4 + k) * es + tw, mk);
                    sdl__wv m2 = SDL__WLD(m + (8 + k) * es + tw, mk), m3 = SDL__WLD(m + (12 + k) * es + tw, mk);
                    s[0][k] = SDL__WADD(SDL__WADD(m0, m1), m2);
                    s[1][k] = SDL__WSUB(SDL__WSUB(m1, m2), m3);
                }
                for (int i = 0; i < 2 && 2 * th + i < OH; i++) /* then on the columns, + bias */
                    sdl__wst2(yr + i * OW + 2 * tw, OW - 2 * tw, SDL__WADD(SDL__WADD(SDL__WADD(s[i][0], s[i][1]), s[i][2]), bv),
                              SDL__WADD(SDL__WSUB(SDL__WSUB(s[i][1], s[i][2]), s[i][3]), bv));
            }
        }
    }
}

/* one sample's dy (O, OH, OW) -> dM[e][o][t0 + t] = A dy_tile A^T (zeros past OH, OW) */
static void sdl__wino_dout(const sdl__conv_job *j, const float *dy, float *plane, float *dM, int64_t Tg, int64_t t0) {
    const int64_t TH = j->TH, TW = j->TW, OH = j->g.OH, OW = j->g.OW, es = sdl__wino_es(j->O, Tg);
    float *PE = plane, *PO = plane + 2 * TH * TW;
    for (int64_t o = 0; o < j->O; o++) {
        if (2 * TW == OW) sdl__deinterleave(dy + o * OH * OW, OH * OW, PE, PO); /* rows line up */
        else
            for (int64_t h = 0; h < OH; h++) {
                sdl__deinterleave(dy + (o * OH + h) * OW, OW, PE + h * TW, PO + h * TW);
                PO[h * TW + TW - 1] = 0.0f; /* OW odd */
            }
        if (OH < 2 * TH) { memset(PE + OH * TW, 0, (size_t)TW * sizeof(float)); memset(PO + OH * TW, 0, (size_t)TW * sizeof(float)); }
        for (int64_t th = 0; th < TH; th++) {
            const float *pe = PE + 2 * th * TW, *po = PO + 2 * th * TW;
            float *m = dM + o * Tg + t0 + th * TW;
            for (int64_t tw = 0; tw < TW; tw += SDL__WL) {
                sdl__wm mk = sdl__wmask(TW - tw);
                sdl__wv a = SDL__WLD(pe + tw, mk), b = SDL__WLD(po + tw, mk);
                sdl__wv c = SDL__WLD(pe + TW + tw, mk), d = SDL__WLD(po + TW + tw, mk);
                sdl__wv r[4][2]; /* A on the rows */
                r[0][0] = a; r[0][1] = b;
                r[1][0] = SDL__WADD(a, c); r[1][1] = SDL__WADD(b, d);
                r[2][0] = SDL__WSUB(a, c); r[2][1] = SDL__WSUB(b, d);
                r[3][0] = SDL__WNEG(c); r[3][1] = SDL__WNEG(d);
                for (int i = 0; i < 4; i++) { /* A^T on the columns */
                    SDL__WST(m + (4 * i + 0) * es + tw, mk, r[i][0]);
                    SDL__WST(m + (4 * i + 1) * es + tw, mk, SDL__WADD(r[i][0], r[i][1]));
                    SDL__WST(m + (4 * i + 2) * es + tw, mk, SDL__WSUB(r[i][0], r[i][1]));
                    SDL__WST(m + (4 * i + 3) * es + tw, mk, SDL__WNEG(r[i][1]));
                }
            }
        }
    }
}

/* dV[e][c][t0 + t] -> one sample's dx (C, H, W) += B dV_tile B^T. Neighbouring windows
   overlap: each vector of tiles adds its window columns 0, 1 into the zero-padded E and O
   planes (2TH+2, TW+1) at tw, then columns 2, 3 at tw+1, in a fixed order. */
static void sdl__wino_din(const sdl__conv_job *j, const float *dV, int64_t Tg, int64_t t0, float *plane, float *dx) {
    const sdl__geom *g = &j->g;
    const int64_t TH = j->TH, TW = j->TW, TW1 = TW + 1, PH = 2 * TH + 2, es = sdl__wino_es(g->C, Tg);
    const int64_t pe0 = (g->pw + 1) / 2, po0 = g->pw / 2;
    const bool whole = g->pw == 0 && 2 * TW1 == g->W; /* as in sdl__wino_in */
    float *PE = plane, *PO = plane + PH * TW1;
    for (int64_t c = 0; c < g->C; c++) {
        memset(plane, 0, (size_t)(PH * 2 * TW1) * sizeof(float));
        for (int64_t th = 0; th < TH; th++) {
            const float *v = dV + c * Tg + t0 + th * TW;
            for (int64_t tw = 0; tw < TW; tw += SDL__WL) {
                sdl__wm mk = sdl__wmask(TW - tw);
                sdl__wv u[4][4];
                for (int k = 0; k < 4; k++) { /* B on the rows */
                    sdl__wv v0 = SDL__WLD(v + k * es + tw, mk), v1 = SDL__WLD(v + (4 + k) * es + tw, mk);
                    sdl__wv v2 = SDL__WLD(v + (8 + k) * es + tw, mk), v3 = SDL__WLD(v + (12 + k) * es + tw, mk);
                    u[0][k] = v0;
                    u[1][k] = SDL__WADD(SDL__WSUB(v1, v2), v3);
                    u[2][k] = SDL__WSUB(SDL__WADD(v1, v2), v0);
                    u[3][k] = SDL__WNEG(v3);
                }
                for (int i = 0; i < 4; i++) { /* B^T on the columns, added into plane row 2th + i */
                    float *pe = PE + (2 * th + i) * TW1 + tw, *po = PO + (2 * th + i) * TW1 + tw;
                    SDL__WST(pe, mk, SDL__WADD(SDL__WLD(pe, mk), u[i][0]));
                    SDL__WST(po, mk, SDL__WADD(SDL__WLD(po, mk), SDL__WADD(SDL__WSUB(u[i][1], u[i][2]), u[i][3])));
                    SDL__WST(pe + 1, mk, SDL__WADD(SDL__WLD(pe + 1, mk), SDL__WSUB(SDL__WADD(u[i][1], u[i][2]), u[i][0])));
                    SDL__WST(po + 1, mk, SDL__WSUB(SDL__WLD(po + 1, mk), u[i][3]));
                }
            }
        }
        float *dxc = dx + c * g->H * g->W;
        const bool add = !j->dx_fresh; /* fresh: every element of the plane is written here */
        if (whole) sdl__interleave(dxc, g->H * g->W, PE + g->ph * TW1, PO + g->ph * TW1, 0.0f, add);
        else
            for (int64_t ih = 0; ih < g->H; ih++) {
                const float *pe = PE + (ih + g->ph) * TW1, *po = PO + (ih + g->ph) * TW1;
                if (g->pw & 1) sdl__interleave(dxc + ih * g->W, g->W, po + po0, pe + pe0, 0.0f, add);
                else sdl__interleave(dxc + ih * g->W, g->W, pe + pe0, po + po0, 0.0f, add);
            }
    }
}

static void sdl__wino_fwd_part(void *ctx, int64_t p0, int64_t p1) {
    const sdl__conv_job *j = (const sdl__conv_job *)ctx;
    sdl_tensor *x = j->n->in[0], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    const int64_t C = j->g.C, O = j->O, in_sz = x->numel / j->nb, out_sz = j->n->out->numel / j->nb;
    const int64_t Tmax = j->wg * j->T1;
    for (int64_t part = p0; part < p1; part++) {
        float *V = j->wbuf + (size_t)part * j->wper, *M = V + 16 * sdl__wino_es(C, Tmax), *plane = M + 16 * sdl__wino_es(O, Tmax);
        for (int64_t grp = j->ngroups * part / j->parts; grp < j->ngroups * (part + 1) / j->parts; grp++) {
            int64_t s0 = grp * j->wg, s1 = s0 + j->wg < j->nb ? s0 + j->wg : j->nb, Tg = (s1 - s0) * j->T1;
            for (int64_t s = s0; s < s1; s++) sdl__wino_in(j, sdl_f32(x) + s * in_sz, plane, V, Tg, (s - s0) * j->T1);
            const int64_t esV = sdl__wino_es(C, Tg), esM = sdl__wino_es(O, Tg);
            for (int e = 0; e < 16; e++)
                sdl__gemm_in(j, (int)part, false, false, O, Tg, C, j->U + e * O * C, C, V + e * esV, Tg, 0.0f, M + e * esM, Tg);
            for (int64_t s = s0; s < s1; s++)
                sdl__wino_out(j, M, Tg, (s - s0) * j->T1, b ? sdl_f32(b) : NULL, sdl_f32(j->n->out) + s * out_sz);
        }
    }
}

static void sdl__wino_bwd_part(void *ctx, int64_t p0, int64_t p1) {
    const sdl__conv_job *j = (const sdl__conv_job *)ctx;
    sdl_tensor *x = j->n->in[0], *w = j->n->in[1], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    const int64_t C = j->g.C, O = j->O, in_sz = x->numel / j->nb, out_sz = j->n->out->numel / j->nb;
    const int64_t Tmax = j->wg * j->T1, plane_sz = j->g.OH * j->g.OW;
    const bool want_b = b && b->requires_grad;
    for (int64_t part = p0; part < p1; part++) {
        float *V = j->wbuf + (size_t)part * j->wper, *dM = V + 16 * sdl__wino_es(C, Tmax), *plane = dM + 16 * sdl__wino_es(O, Tmax);
        for (int64_t grp = j->ngroups * part / j->parts; grp < j->ngroups * (part + 1) / j->parts; grp++) {
            int64_t s0 = grp * j->wg, s1 = s0 + j->wg < j->nb ? s0 + j->wg : j->nb, Tg = (s1 - s0) * j->T1;
            const int64_t esV = sdl__wino_es(C, Tg), esM = sdl__wino_es(O, Tg);
            for (int64_t s = s0; s < s1; s++) {
                const float *dys = j->n->out->grad + s * out_sz;
                sdl__wino_dout(j, dys, plane, dM, Tg, (s - s0) * j->T1);
                if (want_b)
                    for (int64_t o = 0; o < O; o++)
                        j->bpart[grp * O + o] = (s == s0 ? 0.0f : j->bpart[grp * O + o]) + sdl__vsum(dys + o * plane_sz, plane_sz);
            }
            if (w->requires_grad) {
                for (int64_t s = s0; s < s1; s++) sdl__wino_in(j, sdl_f32(x) + s * in_sz, plane, V, Tg, (s - s0) * j->T1);
                for (int e = 0; e < 16; e++) /* the wider of C, O as the GEMM's columns: less padding */
                    if (C < O) sdl__gemm_in(j, (int)part, false, true, C, O, Tg, V + e * esV, Tg, dM + e * esM, Tg, 0.0f,
                                            j->dU + (grp * 16 + e) * O * C, O);
                    else sdl__gemm_in(j, (int)part, false, true, O, C, Tg, dM + e * esM, Tg, V + e * esV, Tg, 0.0f,
                                      j->dU + (grp * 16 + e) * O * C, C);
            }
            if (x->requires_grad) {
                for (int e = 0; e < 16; e++) /* dV into V's place */
                    sdl__gemm_in(j, (int)part, true, false, C, Tg, O, j->U + e * O * C, C, dM + e * esM, Tg, 0.0f, V + e * esV, Tg);
                for (int64_t s = s0; s < s1; s++) sdl__wino_din(j, V, Tg, (s - s0) * j->T1, plane, x->grad + s * in_sz);
            }
        }
    }
}

/* the Winograd half of sdl__conv_job_init */
static bool sdl__wino_init(sdl__conv_job *j, bool backward) {
    const int64_t C = j->g.C, O = j->O;
    j->TH = (j->g.OH + 1) / 2; j->TW = (j->g.OW + 1) / 2; j->T1 = j->TH * j->TW;
    j->wg = sdl__wino_tiles / j->T1;
    if (j->wg < 1) j->wg = 1;
    if (j->wg > j->nb) j->wg = j->nb;
    j->ngroups = (j->nb + j->wg - 1) / j->wg;
    int nt = sdl_get_num_threads();
    j->parts = j->ngroups < nt ? j->ngroups : nt;
    if (j->parts < 1) j->parts = 1;
    j->inner_threads = j->parts == 1 && nt > 1;
    if (!sdl__gemm_ws_ready((int)j->parts)) return false;
    size_t tmax = 0, vm = 0, total = 0, uo = 0;
    if (sdl__mul_overflows((size_t)j->wg, (size_t)j->T1, &tmax) || sdl__mul_overflows(tmax, 16 * (size_t)(C + O), &vm) ||
        (j->wper = vm + 16 * 64 + (size_t)((2 * j->TH + 2) * 2) * (size_t)(j->TW + 1), /* V, M, E and O planes */
         sdl__mul_overflows(j->wper, (size_t)j->parts, &total)) || sdl__mul_overflows(16 * (size_t)O, (size_t)C, &uo)) {
        sdl_fail(SDL_ERR_OOM, "conv2d: Winograd scratch size overflows");
        return false;
    }
    j->wbuf = (float *)sdl__arena_bump(total * sizeof(float)); /* all written before read: not zeroed */
    j->U = (float *)sdl__arena_bump(uo * sizeof(float));
    if (!j->wbuf || !j->U) return false;
    sdl__wino_filter(sdl_f32(j->n->in[1]), O, C, j->U);
    if (backward) {
        int64_t Cb = j->n->nin > 2 ? j->n->in[2]->numel : 0;
        j->dU = (float *)sdl__arena_bump((size_t)j->ngroups * (uo + (size_t)Cb) * sizeof(float));
        if (!j->dU) return false;
        j->bpart = j->dU + (size_t)j->ngroups * uo;
    }
    return true;
}

/* after the parts: dw += G^T (dU summed over the groups in order) G; db likewise */
static void sdl__wino_bwd_finish(sdl__conv_job *j) {
    sdl_tensor *w = j->n->in[1], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    if (w->requires_grad) sdl__wino_filter_grad(j->dU, j->O, j->g.C, j->ngroups, j->g.C < j->O, w->grad);
    if (b && b->requires_grad)
        for (int64_t grp = 0; grp < j->ngroups; grp++)
            for (int64_t o = 0; o < j->O; o++) b->grad[o] += j->bpart[grp * j->O + o];
}

/* ========================================================================================
   FILE FORMATS: .npy/.npz, ZIP, images (stb_image), tar shards, TFRecord and protobuf.
   Parsers of untrusted bytes: every size is checked against the data before it is used.
   ======================================================================================== */

SDL__COLD_BEGIN
/* >>npy: "\x93NUMPY", version, header length, a Python dict literal, raw data ---- */
static const char *sdl__skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    return p;
}

/* the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
static bool sdl__npy_header(const char *path, const char *p, const char *e, char descr[8], sdl_shape *shape) {
    bool have[3] = {false, false, false};
    memset(shape, 0, sizeof *shape);
    p = sdl__skip_ws(p, e);
    if (p >= e || *p++ != '{') goto bad;
    for (;;) {
        p = sdl__skip_ws(p, e);
        if (p < e && *p == '}') { p++; break; }
        if (p >= e || (*p != '\'' && *p != '"')) goto bad;
        char q = *p++;
        const char *k = p;
        while (p < e && *p != q) p++;
        if (p >= e) goto bad;
        size_t kn = (size_t)(p++ - k);
        p = sdl__skip_ws(p, e);
        if (p >= e || *p++ != ':') goto bad;
        p = sdl__skip_ws(p, e);
        if (kn == 5 && !memcmp(k, "descr", 5) && !have[0]) {
            if (p >= e || (*p != '\'' && *p != '"')) goto bad;
            q = *p++;
            const char *v = p;
            while (p < e && *p != q) p++;
            if (p >= e || p - v > 7) goto bad;
            memcpy(descr, v, (size_t)(p - v));
            descr[p - v] = 0;
            p++;
            have[0] = true;
        } else if (kn == 13 && !memcmp(k, "fortran_order", 13) && !have[1]) {
            if (e - p >= 5 && !memcmp(p, "False", 5)) p += 5;
            else if (e - p >= 4 && !memcmp(p, "True", 4)) {
                sdl_fail(SDL_ERR_FORMAT, "%s: the array is in Fortran (column-major) order; save np.ascontiguousarray(a) instead", path);
                return false;
            } else goto bad;
            have[1] = true;
        } else if (kn == 5 && !memcmp(k, "shape", 5) && !have[2]) {
            if (p >= e || *p++ != '(') goto bad;
            for (;;) {
                p = sdl__skip_ws(p, e);
                if (p < e && *p == ')') { p++; break; }
                if (p >= e || *p < '0' || *p > '9') goto bad;
                int64_t v = 0;
                while (p < e && *p >= '0' && *p <= '9') {
                    if (v > (INT64_MAX - 9) / 10) goto bad;
                    v = v * 10 + (*p++ - '0');
                }
                if (shape->ndim == SDL_MAX_DIMS) {
                    sdl_fail(SDL_ERR_FORMAT, "%s: the array has more than SDL_MAX_DIMS (%d) dimensions", path, SDL_MAX_DIMS);
                    return false;
                }
                shape->d[shape->ndim++] = v;
                p = sdl__skip_ws(p, e);
                if (p < e && *p == ',') p++;
                else if (p >= e || *p != ')') goto bad;
            }
            have[2] = true;
        } else {
            goto bad;
        }
        p = sdl__skip_ws(p, e);
        if (p < e && *p == ',') p++;
        else if (p >= e || *p != '}') goto bad;
    }
    while (p < e && *p == ' ') p++;
    if (p != e - 1 || *p != '\n' || !have[0] || !have[1] || !have[2]) goto bad;
    return true;
bad:
    sdl_fail(SDL_ERR_FORMAT, "%s: the .npy header is not the dict numpy writes ({'descr': ..., 'fortran_order': ..., 'shape': (...), })", path);
    return false;
}

/* a .npy file's bytes -> a heap tensor: f4 and f8 -> f32, u1 -> u8, i4 and i8 -> i32 */
static sdl_tensor *sdl__npy_parse(const char *path, const uint8_t *b, size_t n) {
    if (n < 10 || memcmp(b, "\x93NUMPY", 6)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)%s", path, n < 10 ? " or truncated" : "");
        return NULL;
    }
    size_t hlen, start;
    if (b[6] == 1 && b[7] == 0) { hlen = sdl__le16(b + 8); start = 10; }
    else if ((b[6] == 2 || b[6] == 3) && b[7] == 0 && n >= 12) { hlen = sdl__le32(b + 8); start = 12; }
    else { sdl_fail(SDL_ERR_FORMAT, "%s: .npy version %d.%d (sdl reads 1.0, 2.0, 3.0)", path, b[6], b[7]); return NULL; }
    if (hlen > n - start) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated .npy header (%zu bytes said, %zu there)", path, hlen, n - start); return NULL; }
    char descr[8];
    sdl_shape shape;
    if (!sdl__npy_header(path, (const char *)b + start, (const char *)b + start + hlen, descr, &shape)) return NULL;
    /* byte order: '<' little, '|' not applicable; '=' is the writer's native order */
    int kind = 0, size = 0;
    if ((descr[0] == '<' || descr[0] == '|') && descr[1] && descr[2] && !descr[3]) { kind = descr[1]; size = descr[2] - '0'; }
    sdl_dtype dt = SDL_DTYPE_DEFAULT;
    if (kind == 'f' && (size == 4 || size == 8)) dt = SDL_F32;
    else if (kind == 'u' && size == 1) dt = SDL_U8;
    else if (kind == 'i' && (size == 4 || size == 8)) dt = SDL_I32;
    if (dt == SDL_DTYPE_DEFAULT || (size > 1 && descr[0] != '<')) {
        sdl_fail(SDL_ERR_FORMAT, "%s: dtype '%s'; sdl reads little-endian float32 '<f4', float64 '<f8' (to f32), uint8 '|u1', int32 '<i4', int64 '<i8' (to i32)",
                 path, descr);
        return NULL;
    }
    int64_t numel = sdl__shape_numel(shape);
    size_t bytes;
    if (numel < 0 || sdl__mul_overflows((size_t)numel, (size_t)size, &bytes)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: shape too large", path);
        return NULL;
    }
    size_t have = n - start - hlen;
    if (have != bytes) {
        sdl_fail(SDL_ERR_FORMAT, "%s: %s: the shape and dtype need %zu data bytes, the file has %zu", path,
                 have < bytes ? "truncated" : "extra bytes at the end", bytes, have);
        return NULL;
    }
    sdl_tensor *t = sdl_tensor_new(shape, dt);
    if (!t) return NULL;
    const uint8_t *d = b + start + hlen;
    for (int64_t i = 0; i < numel; i++) {
        const uint8_t *q = d + (size_t)i * (size_t)size;
        if (size == 1) {
            sdl_u8(t)[i] = q[0];
        } else if (size == 4) {
            uint32_t u = sdl__le32(q);
            memcpy((char *)t->data + (size_t)i * 4, &u, 4); /* f32 or i32: the same bits */
        } else {
            uint64_t u = (uint64_t)sdl__le32(q) | (uint64_t)sdl__le32(q + 4) << 32;
            if (kind == 'f') {
                double v;
                memcpy(&v, &u, 8);
                sdl_f32(t)[i] = (float)v;
            } else {
                int64_t v;
                memcpy(&v, &u, 8);
                if (v < INT32_MIN || v > INT32_MAX) {
                    sdl_fail(SDL_ERR_FORMAT, "%s: int64 element %lld is %lld, outside int32", path, (long long)i, (long long)v);
                    sdl_tensor_free(t);
                    return NULL;
                }
                sdl_i32(t)[i] = (int32_t)v;
            }
        }
    }
    return t;
}

SDL_API sdl_tensor *sdl_load_npy(const char *path) {
    if (!path) { sdl_fail(SDL_ERR_ARG, "load_npy: path is NULL"); return NULL; }
    size_t n;
    uint8_t *b = sdl__read_file(path, &n);
    if (!b) return NULL;
    sdl_tensor *t = sdl__npy_parse(path, b, n);
    SDL_DEALLOC(b);
    return t;
}

SDL_API sdl_result sdl_save_npy(const char *path, const sdl_tensor *t) {
    if (!path || !t) return sdl_fail(SDL_ERR_ARG, "save_npy: path or tensor is NULL");
    const char *descr = t->dtype == SDL_F32 ? "<f4" : t->dtype == SDL_I32 ? "<i4" : t->dtype == SDL_U8 ? "|u1" : NULL;
    if (!descr) return sdl_fail(SDL_ERR_ARG, "save_npy %s: sdl writes f32, i32 and u8 tensors only", path);
    if (t->device != SDL_CPU) return sdl_fail(SDL_ERR_ARG, "save_npy %s: copy the tensor to the CPU first", path);
    char hdr[128 + 24 * SDL_MAX_DIMS];
    int k = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++) k += snprintf(hdr + 10 + k, sizeof hdr - 10 - (size_t)k, "%lld,%s", (long long)t->shape[i], i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1) k--; /* numpy writes (5,) but (2, 3) */
    k += snprintf(hdr + 10 + k, sizeof hdr - 10 - (size_t)k, "), }");
    int total = (10 + k + 1 + 63) / 64 * 64; /* data starts 64-byte aligned, as numpy does */
    while (10 + k < total - 1) hdr[10 + k++] = ' ';
    hdr[10 + k++] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(k & 0xFF);
    hdr[9] = (char)(k >> 8);
    FILE *f = fopen(path, "wb");
    if (!f) return sdl_fail(SDL_ERR_IO, "%s: cannot open for writing", path);
    bool ok = fwrite(hdr, 1, (size_t)(10 + k), f) == (size_t)(10 + k);
    size_t es = sdl_dtype_size(t->dtype);
    const uint8_t *src = (const uint8_t *)t->data;
    uint8_t chunk[4096];
    for (int64_t i = 0; ok && i < t->numel;) { /* little-endian bytes whatever the host */
        size_t m = 0;
        for (; i < t->numel && m + es <= sizeof chunk; i++, m += es) {
            if (es == 1) { chunk[m] = src[i]; continue; }
            uint32_t u;
            memcpy(&u, src + (size_t)i * 4, 4);
            chunk[m] = (uint8_t)u; chunk[m + 1] = (uint8_t)(u >> 8); chunk[m + 2] = (uint8_t)(u >> 16); chunk[m + 3] = (uint8_t)(u >> 24);
        }
        ok = fwrite(chunk, 1, m, f) == m;
    }
    if (fclose(f) != 0) ok = false;
    return ok ? SDL_OK : sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", path);
}

/* >>zip: ZIP files (and .npz, a zip of .npy members): the end-of-central-directory record
   (zip64's when a field is 0xFFFF...), the central directory, then each member through its
   local header. Every offset and size is checked against the file before it is used. ---- */
static uint64_t sdl__le64(const uint8_t *p) { return (uint64_t)sdl__le32(p) | (uint64_t)sdl__le32(p + 4) << 32; }

typedef struct sdl__zip_entry {
    size_t name;        /* offset in names */
    uint32_t flags, method, crc;
    uint64_t csize, usize, loff;
} sdl__zip_entry;

struct sdl_zip {
    FILE *f;
    char *path;
    uint64_t cd_off;    /* members lie before the central directory */
    int64_t n;
    sdl__zip_entry *e;
    char *names;        /* NUL-terminated names back to back */
};

/* n bytes at offset off of the zip into dst */
static bool sdl__zip_pread(sdl_zip *z, uint64_t off, void *dst, size_t n) {
    if (off > (uint64_t)(((unsigned long)-1) >> 1) || fseek(z->f, (long)off, SEEK_SET) != 0 || fread(dst, 1, n, z->f) != n) {
        sdl_fail(SDL_ERR_FORMAT, "%s: cannot read %zu bytes at offset %llu (truncated?)", z->path, n, (unsigned long long)off);
        return false;
    }
    return true;
}

SDL_API void sdl_zip_close(sdl_zip *z) {
    if (!z) return;
    if (z->f) fclose(z->f);
    SDL_DEALLOC(z->path);
    SDL_DEALLOC(z->e);
    SDL_DEALLOC(z->names);
    SDL_DEALLOC(z);
}

/* the central directory's entries into z->e and z->names */
static bool sdl__zip_directory(sdl_zip *z, const uint8_t *cd, size_t cd_size, size_t count) {
    z->e = (sdl__zip_entry *)sdl__calloc(count ? count : 1, sizeof(sdl__zip_entry));
    z->names = (char *)sdl__alloc(cd_size + 1); /* the names fit in the directory's bytes */
    if (!z->e || !z->names) return false;
    size_t p = 0, np = 0;
    for (size_t i = 0; i < count; i++) {
        if (cd_size - p < 46 || memcmp(cd + p, "PK\x01\x02", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt central directory entry %zu", z->path, i); return false; }
        sdl__zip_entry *e = &z->e[i];
        e->flags = sdl__le16(cd + p + 8);
        e->method = sdl__le16(cd + p + 10);
        e->crc = sdl__le32(cd + p + 16);
        e->csize = sdl__le32(cd + p + 20);
        e->usize = sdl__le32(cd + p + 24);
        e->loff = sdl__le32(cd + p + 42);
        size_t nl = sdl__le16(cd + p + 28), xl = sdl__le16(cd + p + 30), cl = sdl__le16(cd + p + 32);
        const uint8_t *nm = cd + p + 46;
        if (cd_size - p - 46 < nl + xl + cl || memchr(nm, 0, nl)) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt central directory entry %zu", z->path, i); return false; }
        /* zip64 sizes and offset sit in extra field 0x0001, in this order, when 0xFFFFFFFF */
        for (size_t x = 0; x + 4 <= xl;) {
            const uint8_t *ex = nm + nl + x;
            size_t id = sdl__le16(ex), len = sdl__le16(ex + 2), q = 4;
            if (x + 4 + len > xl) break;
            if (id == 1) {
                if (e->usize == 0xFFFFFFFFu && q + 8 <= 4 + len) { e->usize = sdl__le64(ex + q); q += 8; }
                if (e->csize == 0xFFFFFFFFu && q + 8 <= 4 + len) { e->csize = sdl__le64(ex + q); q += 8; }
                if (e->loff == 0xFFFFFFFFu && q + 8 <= 4 + len) e->loff = sdl__le64(ex + q);
            }
            x += 4 + len;
        }
        e->name = np;
        memcpy(z->names + np, nm, nl);
        z->names[np + nl] = 0;
        np += nl + 1;
        p += 46 + nl + xl + cl;
    }
    z->n = (int64_t)count;
    return true;
}

SDL_API sdl_zip *sdl_zip_open(const char *path) {
    if (!path) { sdl_fail(SDL_ERR_ARG, "zip_open: path is NULL"); return NULL; }
    sdl_zip *z = (sdl_zip *)sdl__calloc(1, sizeof *z);
    if (!z) return NULL;
    uint8_t *tail = NULL, *cd = NULL;
    if (!(z->path = sdl__strdup(path)) || !(z->f = sdl__open_read(path))) goto fail;
    {
        long end = fseek(z->f, 0, SEEK_END) == 0 ? ftell(z->f) : -1;
        if (end < 0) { sdl_fail(SDL_ERR_IO, "%s: cannot find its size", path); goto fail; }
        uint64_t fsize = (uint64_t)end;
        /* the end-of-central-directory record: within the last 22 + 65535 bytes */
        size_t tn = fsize < 22 + 65535 ? (size_t)fsize : 22 + 65535, eocd = tn;
        if (!(tail = (uint8_t *)sdl__alloc(tn + 1)) || !sdl__zip_pread(z, fsize - tn, tail, tn)) goto fail;
        for (size_t i = tn >= 22 ? tn - 22 + 1 : 0; i-- > 0;)
            if (!memcmp(tail + i, "PK\x05\x06", 4)) { eocd = i; break; }
        if (eocd == tn) { sdl_fail(SDL_ERR_FORMAT, "%s: not a zip file (no end-of-central-directory record; truncated?)", path); goto fail; }
        uint64_t count = sdl__le16(tail + eocd + 10), cd_size = sdl__le32(tail + eocd + 12), cd_off = sdl__le32(tail + eocd + 16);
        uint64_t eocd_abs = fsize - tn + eocd;
        if (cd_off == 0xFFFFFFFFu || count == 0xFFFF || cd_size == 0xFFFFFFFFu) { /* zip64: a locator just before */
            uint8_t r[56];
            if (eocd < 20 || memcmp(tail + eocd - 20, "PK\x06\x07", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: zip64 locator missing", path); goto fail; }
            uint64_t z64 = sdl__le64(tail + eocd - 20 + 8);
            if (z64 > eocd_abs || eocd_abs - z64 < 56 || !sdl__zip_pread(z, z64, r, 56) || memcmp(r, "PK\x06\x06", 4)) {
                sdl_fail(SDL_ERR_FORMAT, "%s: bad zip64 end record", path);
                goto fail;
            }
            count = sdl__le64(r + 32);
            cd_size = sdl__le64(r + 40);
            cd_off = sdl__le64(r + 48);
            eocd_abs = z64;
        }
        if (cd_off > eocd_abs || cd_size > eocd_abs - cd_off || count > cd_size / 46) {
            sdl_fail(SDL_ERR_FORMAT, "%s: central directory outside the file or too small for %llu entries (corrupt or truncated)", path, (unsigned long long)count);
            goto fail;
        }
        z->cd_off = cd_off;
        if (!(cd = (uint8_t *)sdl__alloc((size_t)cd_size + 1)) || !sdl__zip_pread(z, cd_off, cd, (size_t)cd_size) ||
            !sdl__zip_directory(z, cd, (size_t)cd_size, (size_t)count))
            goto fail;
    }
    SDL_DEALLOC(tail);
    SDL_DEALLOC(cd);
    return z;
fail:
    SDL_DEALLOC(tail);
    SDL_DEALLOC(cd);
    sdl_zip_close(z);
    return NULL;
}

SDL_API int64_t sdl_zip_count(const sdl_zip *z) { return z ? z->n : 0; }
SDL_API const char *sdl_zip_name(const sdl_zip *z, int64_t i) { return z && i >= 0 && i < z->n ? z->names + z->e[i].name : NULL; }
SDL_API uint64_t sdl_zip_size(const sdl_zip *z, int64_t i) { return z && i >= 0 && i < z->n ? z->e[i].usize : 0; }

SDL_API int64_t sdl_zip_find(const sdl_zip *z, const char *name) {
    for (int64_t i = 0; z && name && i < z->n; i++)
        if (!strcmp(z->names + z->e[i].name, name)) return i;
    return -1;
}

SDL_API uint8_t *sdl_zip_read(sdl_zip *z, int64_t i, size_t *n) {
    if (n) *n = 0;
    if (!z || !n || i < 0 || i >= z->n) { sdl_fail(SDL_ERR_ARG, "zip_read: no member %lld", (long long)i); return NULL; }
    const sdl__zip_entry *e = &z->e[i];
    char label[600];
    snprintf(label, sizeof label, "%s (member %s)", z->path, z->names + e->name);
    uint8_t lh[30], *raw = NULL, *out = NULL;
    if (e->flags & 1) { sdl_fail(SDL_ERR_FORMAT, "%s: encrypted", label); return NULL; }
    if (e->method != 0 && e->method != 8) { sdl_fail(SDL_ERR_FORMAT, "%s: compression method %u (sdl reads stored 0 and deflate 8)", label, e->method); return NULL; }
    if (e->loff > z->cd_off || z->cd_off - e->loff < 30 || !sdl__zip_pread(z, e->loff, lh, 30) || memcmp(lh, "PK\x03\x04", 4)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: bad local header offset", label);
        return NULL;
    }
    uint64_t data = e->loff + 30 + sdl__le16(lh + 26) + sdl__le16(lh + 28);
    if (data > z->cd_off || e->csize > z->cd_off - data) { sdl_fail(SDL_ERR_FORMAT, "%s: member data runs past the central directory (corrupt)", label); return NULL; }
    if (e->method == 0 && e->csize != e->usize) { sdl_fail(SDL_ERR_FORMAT, "%s: stored member with sizes %llu and %llu", label, (unsigned long long)e->csize, (unsigned long long)e->usize); return NULL; }
    if (e->method == 8 && (double)e->usize > 1032.0 * (double)e->csize + 64.0) { sdl_fail(SDL_ERR_FORMAT, "%s: claims %llu bytes from %llu compressed (corrupt)", label, (unsigned long long)e->usize, (unsigned long long)e->csize); return NULL; }
    if (e->usize >= (uint64_t)SIZE_MAX / 2) { sdl_fail(SDL_ERR_OOM, "%s: %llu bytes", label, (unsigned long long)e->usize); return NULL; }
    out = (uint8_t *)SDL_ALLOC(e->usize ? (size_t)e->usize : 1);
    if (e->method == 8) raw = (uint8_t *)sdl__calloc((size_t)e->csize + 8, 1); /* 8 bytes of slack for the decoder */
    if (!out || (e->method == 8 && !raw)) { sdl_fail(SDL_ERR_OOM, "%s: out of memory for %llu bytes", label, (unsigned long long)e->usize); goto fail; }
    if (!sdl__zip_pread(z, data, e->method == 8 ? raw : out, (size_t)e->csize)) goto fail;
    if (e->method == 8 && !sdl__inflate(label, raw, (size_t)e->csize, 8, out, (size_t)e->usize)) goto fail;
    if (sdl__crc32(0, out, (size_t)e->usize) != e->crc) { sdl_fail(SDL_ERR_FORMAT, "%s: CRC-32 mismatch (corrupt)", label); goto fail; }
    SDL_DEALLOC(raw);
    *n = (size_t)e->usize;
    return out;
fail:
    SDL_DEALLOC(raw);
    SDL_DEALLOC(out);
    return NULL;
}

SDL_API sdl_tensor *sdl_load_npz(const char *path, const char *name) {
    if (!path || !name) { sdl_fail(SDL_ERR_ARG, "load_npz: path or name is NULL"); return NULL; }
    sdl_zip *z = sdl_zip_open(path);
    if (!z) return NULL;
    char npy[600];
    snprintf(npy, sizeof npy, "%s.npy", name); /* np.savez stores x as x.npy */
    int64_t i = sdl_zip_find(z, name);
    if (i < 0) i = sdl_zip_find(z, npy);
    sdl_tensor *t = NULL;
    if (i < 0) {
        char names[256] = "";
        for (int64_t k = 0; k < z->n; k++) {
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", sdl_zip_name(z, k));
        }
        sdl_fail(SDL_ERR_ARG, "%s: no array named '%s' (the file holds: %s)", path, name, names);
    } else {
        size_t n;
        uint8_t *b = sdl_zip_read(z, i, &n);
        snprintf(npy, sizeof npy, "%s (member %s)", path, sdl_zip_name(z, i));
        if (b) t = sdl__npy_parse(npy, b, n);
        SDL_DEALLOC(b);
    }
    sdl_zip_close(z);
    return t;
}

SDL__COLD_END

/* >>images: decoding (stb_image), PNG encoding (stb_image_write) */
#ifndef SDL_NO_STB
static void sdl__png_write_cb(void *ctx, void *data, int size) { sdl__buf_put((sdl__buf *)ctx, data, (size_t)size); }
#endif

/* hwc (h, w, c) bytes -> a PNG file's bytes in b */
static bool sdl__png_encode(const char *what, const uint8_t *hwc, int w, int h, int c, sdl__buf *b) {
#ifdef SDL_NO_STB
    SDL__UNUSED(hwc); SDL__UNUSED(w); SDL__UNUSED(h); SDL__UNUSED(c); SDL__UNUSED(b);
    sdl_fail(SDL_ERR_ARG, "%s: writing PNG needs stb_image_write, and sdl was built with SDL_NO_STB", what);
    return false;
#else
    if ((int64_t)w * c > INT32_MAX / 2 || (int64_t)w * h * c > INT32_MAX / 2) {
        sdl_fail(SDL_ERR_ARG, "%s: a %dx%dx%d image is too large for stb_image_write", what, c, h, w);
        return false;
    }
    if (!stbi_write_png_to_func(sdl__png_write_cb, b, w, h, c, hwc, w * c) || b->oom) {
        if (!b->oom) sdl_fail(SDL_ERR_OOM, "%s: PNG encoding failed (out of memory)", what);
        return false;
    }
    return true;
#endif
}

/* the PNG bytes of sdl_write_png's picture in b (what names it in errors); w, h: its size */
static sdl_result sdl__png_grid(const char *path, const sdl_tensor *t, int nrow, float lo, float hi, sdl__buf *b, int *w, int *h) {
    if (!path || !t) return sdl_fail(SDL_ERR_ARG, "write_png: path or tensor is NULL");
    if ((t->dtype != SDL_U8 && t->dtype != SDL_F32) || t->device != SDL_CPU || (t->ndim != 3 && t->ndim != 4))
        return sdl_fail(SDL_ERR_ARG, "write_png %s: needs a CPU u8 or f32 tensor (C, H, W) or (N, C, H, W)", path);
    int64_t N = t->ndim == 4 ? t->shape[0] : 1, C = t->shape[t->ndim - 3], H = t->shape[t->ndim - 2], W = t->shape[t->ndim - 1];
    if (C != 1 && C != 3 && C != 4) return sdl_fail(SDL_ERR_ARG, "write_png %s: %lld channels; PNG takes 1, 3 or 4", path, (long long)C);
    if (N < 1 || H < 1 || W < 1) return sdl_fail(SDL_ERR_ARG, "write_png %s: empty tensor", path);
    if (lo == hi) { lo = 0.0f; hi = 1.0f; }
    int64_t cols = nrow > 0 ? nrow : 8, pad = N > 1 ? 2 : 0; /* torchvision's save_image: 8 per row, 2 pixels apart */
    if (cols > N) cols = N;
    int64_t rows = (N + cols - 1) / cols;
    int64_t GW = cols * (W + pad) + pad, GH = rows * (H + pad) + pad;
    if (GW > (1 << 24) || GH > (1 << 24) || GW * GH * C > INT32_MAX / 2)
        return sdl_fail(SDL_ERR_ARG, "write_png %s: a %lldx%lld picture is too large", path, (long long)GW, (long long)GH);
    uint8_t *img = (uint8_t *)sdl__calloc((size_t)(GW * GH * C), 1);
    if (!img) return SDL_ERR_OOM;
    float scale = 255.0f / (hi - lo);
    for (int64_t n = 0; n < N; n++) {
        int64_t x0 = pad + (n % cols) * (W + pad), y0 = pad + (n / cols) * (H + pad);
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    int64_t i = ((n * C + c) * H + y) * W + x;
                    uint8_t v;
                    if (t->dtype == SDL_U8) v = sdl_u8(t)[i];
                    else {
                        float f = (sdl_f32(t)[i] - lo) * scale + 0.5f; /* NaN becomes 0 */
                        v = (uint8_t)(f >= 255.0f ? 255.0f : f > 0.0f ? f : 0.0f);
                    }
                    img[((y0 + y) * GW + x0 + x) * C + c] = v;
                }
    }
    *w = (int)GW;
    *h = (int)GH;
    sdl_result r = sdl__png_encode(path, img, (int)GW, (int)GH, (int)C, b) ? SDL_OK : sdl_last_result();
    SDL_DEALLOC(img);
    return r;
}

SDL_API sdl_result sdl_write_png(const char *path, const sdl_tensor *t, int nrow, float lo, float hi) {
    sdl__buf b;
    memset(&b, 0, sizeof b);
    int w, h;
    sdl_result r = sdl__png_grid(path, t, nrow, lo, hi, &b, &w, &h);
    if (r == SDL_OK) r = sdl__write_all(path, b.p, b.n);
    SDL_DEALLOC(b.p);
    return r;
}

#ifndef SDL_NO_STB
/* PNG chunks carry a CRC-32 that stb_image does not check (a flipped height byte would
   decode as a smaller picture): walk the chunks and check each, up to IEND */
static bool sdl__png_check(const char *what, const uint8_t *b, size_t n) {
    if (n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return true; /* not a PNG */
    for (size_t pos = 8;;) {
        if (n - pos < 12) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated PNG (no IEND chunk)", what); return false; }
        size_t len = sdl__be32(b + pos);
        if (len > n - pos - 12) { sdl_fail(SDL_ERR_FORMAT, "%s: truncated PNG (a chunk runs past the end)", what); return false; }
        if (sdl__crc32(0, b + pos + 4, len + 4) != sdl__be32(b + pos + 8 + len)) {
            sdl_fail(SDL_ERR_FORMAT, "%s: PNG chunk '%.4s' at byte %zu fails its CRC-32 (corrupt)", what, (const char *)b + pos + 4, pos);
            return false;
        }
        if (!memcmp(b + pos + 4, "IEND", 4)) return true;
        pos += 12 + len;
    }
}
#endif

#ifndef SDL_NO_STB
/* JPEG marker segments checked before stb_image v2.27 sees them, for the cases fixed
   upstream after 2.27 that reach memory: a DHT table whose 16 code counts sum past 256
   (stbi__build_huffman writes past size[257], stb issue 1291), a DC table value over 15
   (stbi__extend_receive indexes its 17-entry bit-mask table with it), and sampling factors
   that are not integer ratios of the largest (its resamplers read past their rows), a scan
   that uses a Huffman table no DHT defined (2.27 decodes with uninitialised tables). Every
   marker stb could act on is checked, as stb finds them: bytes that are not 0xFF are
   skipped (stb skips them between segments), and scan data is walked byte by byte to the
   next marker (tables may come between the scans of a progressive JPEG); a segment cut off
   by the end of the file counts as cut there (stb reads zeros past the end). *fw, *fh: the
   frame's size, if seen. */
static bool sdl__jpeg_check(const char *what, const uint8_t *b, size_t n, int64_t *fw, int64_t *fh) {
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return true; /* not a JPEG */
    unsigned tables = 0; /* bit 4 class + id: the Huffman tables defined so far */
    for (size_t pos = 2; pos < n;) {
        if (b[pos] != 0xFF) { pos++; continue; }
        while (pos < n && b[pos] == 0xFF) pos++; /* fill bytes */
        if (pos >= n) return true;
        uint8_t m = b[pos++];
        if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue; /* stuffed 0xFF in scan data, TEM, SOI, RSTn */
        if (m == 0xD9) return true; /* EOI */
        if (n - pos < 2) return true;
        size_t len = ((size_t)b[pos] << 8) | b[pos + 1];
        if (len < 2) return true; /* stb: bad length */
        const uint8_t *seg = b + pos + 2, *end = len <= n - pos ? b + pos + len : b + n;
        if (m == 0xDA && end - seg >= 1 && (size_t)(end - seg) >= 1 + 2 * (size_t)seg[0] + 3) { /* SOS: its tables must exist */
            int ns = seg[0], ss = seg[1 + 2 * ns], se = seg[2 + 2 * ns], ah = seg[3 + 2 * ns] >> 4;
            for (int i = 0; i < ns; i++) {
                int td = seg[2 + 2 * i] >> 4, ta = seg[2 + 2 * i] & 15;
                if ((ss == 0 && ah == 0 && td < 4 && !(tables >> td & 1)) || (se > 0 && ta < 4 && !(tables >> (4 + ta) & 1))) {
                    sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: the scan at byte %zu uses a Huffman table no DHT defined", what, pos);
                    return false;
                }
            }
        }
        if (m == 0xC4) /* DHT: one or more tables of (class:id, 16 counts, values) */
            for (const uint8_t *t = seg; t < end;) {
                int count = 0, dc = (t[0] >> 4) == 0;
                if ((t[0] >> 4) < 2 && (t[0] & 15) < 4) tables |= 1u << ((t[0] >> 4) * 4 + (t[0] & 15));
                if (end - t < 17) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: a Huffman table (DHT) cut short at byte %zu", what, (size_t)(t - b)); return false; }
                for (int i = 1; i <= 16; i++) count += t[i];
                if (count > 256) {
                    sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: a Huffman table (DHT at byte %zu) has %d codes, at most 256 exist", what, pos, count);
                    return false;
                }
                if (end - t < 17 + count) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: a Huffman table (DHT at byte %zu) is longer than its segment", what, pos); return false; }
                for (int i = 0; dc && i < count; i++)
                    if (t[17 + i] > 15) {
                        sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: DC Huffman table (DHT at byte %zu) holds value %d, at most 15", what, pos, t[17 + i]);
                        return false;
                    }
                t += 17 + count;
            }
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && end - seg >= 6) { /* SOF */
            int nc = seg[5], hmax = 1, vmax = 1;
            bool hv_ok = (size_t)(end - seg) >= 6 + 3 * (size_t)nc; /* else stb: bad SOF len */
            int64_t sh = (int64_t)seg[1] << 8 | seg[2], sw = (int64_t)seg[3] << 8 | seg[4];
            *fh = sh > *fh ? sh : *fh; /* the largest frame any SOF claims */
            *fw = sw > *fw ? sw : *fw;
            for (int i = 0; hv_ok && i < nc; i++) {
                int h = seg[7 + 3 * i] >> 4, v = seg[7 + 3 * i] & 15;
                hv_ok = h >= 1 && h <= 4 && v >= 1 && v <= 4; /* else stb: bad H / bad V */
                hmax = h > hmax ? h : hmax;
                vmax = v > vmax ? v : vmax;
            }
            for (int i = 0; hv_ok && i < nc; i++)
                if (hmax % (seg[7 + 3 * i] >> 4) || vmax % (seg[7 + 3 * i] & 15)) {
                    sdl_fail(SDL_ERR_FORMAT, "%s: corrupt JPEG: component %d's sampling factors %dx%d do not divide the largest, %dx%d", what, i,
                             seg[7 + 3 * i] >> 4, seg[7 + 3 * i] & 15, hmax, vmax);
                    return false;
                }
        }
        pos += len; /* SOS: its scan data follows, walked above */
    }
    return true;
}
#endif

/* decodes an image file's bytes to HWC as stb gives them (free with stbi_image_free):
   *c channels (0: as stored, then set), h, w */
static uint8_t *sdl__decode_image_hwc(const char *what, const uint8_t *bytes, size_t n, int *c, int *h, int *w) {
#ifdef SDL_NO_STB
    SDL__UNUSED(bytes); SDL__UNUSED(n); SDL__UNUSED(c); SDL__UNUSED(h); SDL__UNUSED(w);
    sdl_fail(SDL_ERR_ARG, "%s: decoding images needs stb_image, and sdl was built with SDL_NO_STB", what);
    return NULL;
#else
    if (n > (size_t)INT32_MAX) { sdl_fail(SDL_ERR_FORMAT, "%s: over 2 GB", what); return NULL; }
    bool png = n >= 8 && !memcmp(bytes, "\x89PNG", 4), jpeg = n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
    if (!png && !jpeg) {
        sdl_fail(SDL_ERR_FORMAT, "%s: not a PNG or JPEG file (sdl decodes those two; convert others, e.g. with PIL)", what);
        return NULL;
    }
    int64_t fw = 0, fh = 0; /* the size the header claims (PNG: IHDR, CRC-checked above) */
    if (!sdl__png_check(what, bytes, n) || !sdl__jpeg_check(what, bytes, n, &fw, &fh)) return NULL;
    if (png && n >= 24) { fw = sdl__be32(bytes + 16); fh = sdl__be32(bytes + 20); }
    if (fw > SDL_MAX_IMAGE_SIDE || fh > SDL_MAX_IMAGE_SIDE || fw * fh > SDL_MAX_IMAGE_PIXELS) {
        sdl_fail(SDL_ERR_FORMAT, "%s: a %lldx%lld image is over sdl's limit (SDL_MAX_IMAGE_SIDE %d, SDL_MAX_IMAGE_PIXELS %lld; corrupt?)", what,
                 (long long)fw, (long long)fh, (int)SDL_MAX_IMAGE_SIDE, (long long)SDL_MAX_IMAGE_PIXELS);
        return NULL;
    }
    int comp = 0;
    stbi_uc *hwc = stbi_load_from_memory(bytes, (int)n, w, h, &comp, *c);
    if (!hwc) { sdl_fail(SDL_ERR_FORMAT, "%s: cannot decode the image (stb_image: %s)", what, stbi_failure_reason()); return NULL; }
    if (*c == 0) *c = comp;
    return hwc;
#endif
}

/* decodes an image file's bytes to CHW (free with SDL_DEALLOC), as sdl__decode_image_hwc */
static uint8_t *sdl__decode_image(const char *what, const uint8_t *bytes, size_t n, int *c, int *h, int *w) {
    uint8_t *hwc = sdl__decode_image_hwc(what, bytes, n, c, h, w);
    if (!hwc) return NULL;
    size_t hw = (size_t)*h * (size_t)*w; /* capped above */
    uint8_t *chw = (uint8_t *)sdl__alloc(hw * (size_t)*c);
    if (chw)
        for (int k = 0; k < *c; k++)
            for (size_t i = 0; i < hw; i++) chw[(size_t)k * hw + i] = hwc[i * (size_t)*c + (size_t)k];
#ifndef SDL_NO_STB
    stbi_image_free(hwc);
#endif
    return chw;
}

SDL_API sdl_tensor *sdl_decode_image(const void *bytes, size_t n, int channels, const char *what) {
    if (!what) what = "image";
    if (!bytes || channels < 0 || channels > 4) { sdl_fail(SDL_ERR_ARG, "decode_image %s: needs bytes and channels 0..4", what); return NULL; }
    int c = channels, h = 0, w = 0;
    uint8_t *chw = sdl__decode_image(what, (const uint8_t *)bytes, n, &c, &h, &w);
    if (!chw) return NULL;
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(c, h, w), SDL_U8);
    if (t) memcpy(t->data, chw, (size_t)t->numel);
    SDL_DEALLOC(chw);
    return t;
}

SDL_API sdl_tensor *sdl_load_image(const char *path, int channels) {
    if (!path || channels < 0 || channels > 4) { sdl_fail(SDL_ERR_ARG, "load_image: needs a path and channels 0..4"); return NULL; }
    size_t n;
    uint8_t *bytes = sdl__read_file(path, &n);
    if (!bytes) return NULL;
    sdl_tensor *t = sdl_decode_image(bytes, n, channels, path);
    SDL_DEALLOC(bytes);
    return t;
}

SDL__COLD_BEGIN
/* >>tfrecord: TFRecord framing, tf.train.Example and TensorProto (protobuf wire format) */
SDL_API void sdl_bytes_free(void *p) { SDL_DEALLOC(p); }

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), written out like sdl__crc_table */
static const uint32_t sdl__crc32c_table[256] = {
        0x00000000u, 0xF26B8303u, 0xE13B70F7u, 0x1350F3F4u, 0xC79A971Fu, 0x35F1141Cu, 0x26A1E7E8u, 0xD4CA64EBu,
        0x8AD958CFu, 0x78B2DBCCu, 0x6BE22838u, 0x9989AB3Bu, 0x4D43CFD0u, 0xBF284CD3u, 0xAC78BF27u, 0x5E133C24u,
        0x105EC76Fu, 0xE235446Cu, 0xF165B798u, 0x030E349Bu, 0xD7C45070u, 0x25AFD373u, 0x36FF2087u, 0xC494A384u,
        0x9A879FA0u, 0x68EC1CA3u, 0x7BBCEF57u, 0x89D76C54u, 0x5D1D08BFu, 0xAF768BBCu, 0xBC267848u, 0x4E4DFB4Bu,
        0x20BD8EDEu, 0xD2D60DDDu, 0xC186FE29u, 0x33ED7D2Au, 0xE72719C1u, 0x154C9AC2u, 0x061C6936u, 0xF477EA35u,
        0xAA64D611u, 0x580F5512u, 0x4B5FA6E6u, 0xB93425E5u, 0x6DFE410Eu, 0x9F95C20Du, 0x8CC531F9u, 0x7EAEB2FAu,
        0x30E349B1u, 0xC288CAB2u, 0xD1D83946u, 0x23B3BA45u, 0xF779DEAEu, 0x05125DADu, 0x1642AE59u, 0xE4292D5Au,
        0xBA3A117Eu, 0x4851927Du, 0x5B016189u, 0xA96AE28Au, 0x7DA08661u, 0x8FCB0562u, 0x9C9BF696u, 0x6EF07595u,
        0x417B1DBCu, 0xB3109EBFu, 0xA0406D4Bu, 0x522BEE48u, 0x86E18AA3u, 0x748A09A0u, 0x67DAFA54u, 0x95B17957u,
        0xCBA24573u, 0x39C9C670u, 0x2A993584u, 0xD8F2B687u, 0x0C38D26Cu, 0xFE53516Fu, 0xED03A29Bu, 0x1F682198u,
        0x5125DAD3u, 0xA34E59D0u, 0xB01EAA24u, 0x42752927u, 0x96BF4DCCu, 0x64D4CECFu, 0x77843D3Bu, 0x85EFBE38u,
        0xDBFC821Cu, 0x2997011Fu, 0x3AC7F2EBu, 0xC8AC71E8u, 0x1C661503u, 0xEE0D9600u, 0xFD5D65F4u, 0x0F36E6F7u,
        0x61C69362u, 0x93AD1061u, 0x80FDE395u, 0x72966096u, 0xA65C047Du, 0x5437877Eu, 0x4767748Au, 0xB50CF789u,
        0xEB1FCBADu, 0x197448AEu, 0x0A24BB5Au, 0xF84F3859u, 0x2C855CB2u, 0xDEEEDFB1u, 0xCDBE2C45u, 0x3FD5AF46u,
        0x7198540Du, 0x83F3D70Eu, 0x90A324FAu, 0x62C8A7F9u, 0xB602C312u, 0x44694011u, 0x5739B3E5u, 0xA55230E6u,
        0xFB410CC2u, 0x092A8FC1u, 0x1A7A7C35u, 0xE811FF36u, 0x3CDB9BDDu, 0xCEB018DEu, 0xDDE0EB2Au, 0x2F8B6829u,
        0x82F63B78u, 0x709DB87Bu, 0x63CD4B8Fu, 0x91A6C88Cu, 0x456CAC67u, 0xB7072F64u, 0xA457DC90u, 0x563C5F93u,
        0x082F63B7u, 0xFA44E0B4u, 0xE9141340u, 0x1B7F9043u, 0xCFB5F4A8u, 0x3DDE77ABu, 0x2E8E845Fu, 0xDCE5075Cu,
        0x92A8FC17u, 0x60C37F14u, 0x73938CE0u, 0x81F80FE3u, 0x55326B08u, 0xA759E80Bu, 0xB4091BFFu, 0x466298FCu,
        0x1871A4D8u, 0xEA1A27DBu, 0xF94AD42Fu, 0x0B21572Cu, 0xDFEB33C7u, 0x2D80B0C4u, 0x3ED04330u, 0xCCBBC033u,
        0xA24BB5A6u, 0x502036A5u, 0x4370C551u, 0xB11B4652u, 0x65D122B9u, 0x97BAA1BAu, 0x84EA524Eu, 0x7681D14Du,
        0x2892ED69u, 0xDAF96E6Au, 0xC9A99D9Eu, 0x3BC21E9Du, 0xEF087A76u, 0x1D63F975u, 0x0E330A81u, 0xFC588982u,
        0xB21572C9u, 0x407EF1CAu, 0x532E023Eu, 0xA145813Du, 0x758FE5D6u, 0x87E466D5u, 0x94B49521u, 0x66DF1622u,
        0x38CC2A06u, 0xCAA7A905u, 0xD9F75AF1u, 0x2B9CD9F2u, 0xFF56BD19u, 0x0D3D3E1Au, 0x1E6DCDEEu, 0xEC064EEDu,
        0xC38D26C4u, 0x31E6A5C7u, 0x22B65633u, 0xD0DDD530u, 0x0417B1DBu, 0xF67C32D8u, 0xE52CC12Cu, 0x1747422Fu,
        0x49547E0Bu, 0xBB3FFD08u, 0xA86F0EFCu, 0x5A048DFFu, 0x8ECEE914u, 0x7CA56A17u, 0x6FF599E3u, 0x9D9E1AE0u,
        0xD3D3E1ABu, 0x21B862A8u, 0x32E8915Cu, 0xC083125Fu, 0x144976B4u, 0xE622F5B7u, 0xF5720643u, 0x07198540u,
        0x590AB964u, 0xAB613A67u, 0xB831C993u, 0x4A5A4A90u, 0x9E902E7Bu, 0x6CFBAD78u, 0x7FAB5E8Cu, 0x8DC0DD8Fu,
        0xE330A81Au, 0x115B2B19u, 0x020BD8EDu, 0xF0605BEEu, 0x24AA3F05u, 0xD6C1BC06u, 0xC5914FF2u, 0x37FACCF1u,
        0x69E9F0D5u, 0x9B8273D6u, 0x88D28022u, 0x7AB90321u, 0xAE7367CAu, 0x5C18E4C9u, 0x4F48173Du, 0xBD23943Eu,
        0xF36E6F75u, 0x0105EC76u, 0x12551F82u, 0xE03E9C81u, 0x34F4F86Au, 0xC69F7B69u, 0xD5CF889Du, 0x27A40B9Eu,
        0x79B737BAu, 0x8BDCB4B9u, 0x988C474Du, 0x6AE7C44Eu, 0xBE2DA0A5u, 0x4C4623A6u, 0x5F16D052u, 0xAD7D5351u};

SDL_API uint32_t sdl_crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = sdl__crc32c_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

SDL_API uint32_t sdl_tfrecord_masked_crc(const void *data, size_t n) {
    uint32_t c = sdl_crc32c(0, data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static void sdl__put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

SDL_API sdl_result sdl_tfrecord_write_record(FILE *f, const void *data, size_t n) {
    if (!f || (!data && n)) return sdl_fail(SDL_ERR_ARG, "tfrecord_write_record: NULL file or data");
    uint8_t h[12], t[4];
    for (int i = 0; i < 8; i++) h[i] = (uint8_t)((uint64_t)n >> (8 * i));
    sdl__put_le32(h + 8, sdl_tfrecord_masked_crc(h, 8));
    sdl__put_le32(t, sdl_tfrecord_masked_crc(data, n));
    if (fwrite(h, 1, 12, f) != 12 || (n && fwrite(data, 1, n, f) != n) || fwrite(t, 1, 4, f) != 4)
        return sdl_fail(SDL_ERR_IO, "tfrecord_write_record: write failed (disk full?)");
    return SDL_OK;
}

SDL_API int sdl_tfrecord_read_record(FILE *f, const char *what, int64_t index, uint8_t **buf, size_t *cap, size_t *n) {
    if (!what) what = "tfrecord";
    if (!f || !buf || !cap || !n) { sdl_fail(SDL_ERR_ARG, "%s: tfrecord_read_record: NULL argument", what); return -1; }
    *n = 0;
    uint8_t h[12];
    size_t got = fread(h, 1, 12, f);
    if (got == 0 && !ferror(f)) return 0;
    if (got != 12) {
        sdl_fail(ferror(f) ? SDL_ERR_IO : SDL_ERR_FORMAT, "%s: record %lld: truncated header (%zu of 12 bytes)", what, (long long)index, got);
        return -1;
    }
    if (sdl_tfrecord_masked_crc(h, 8) != sdl__le32(h + 8)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: record %lld: the length's CRC-32C does not match (corrupt, or not a TFRecord file)", what, (long long)index);
        return -1;
    }
    uint64_t len = sdl__le64(h);
    if (len > ((uint64_t)1 << 40)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: record %lld: length %llu is over 1 TB (corrupt)", what, (long long)index, (unsigned long long)len);
        return -1;
    }
    /* grow the buffer as the bytes arrive, so a corrupt length on a short file fails as
       truncated instead of allocating what it claims */
    size_t need = (size_t)len + 4, have = 0;
    while (have < need) {
        size_t target = need - have > ((size_t)1 << 20) && have > 0 ? (have * 2 < need ? have * 2 : need) : need;
        if (need > ((size_t)1 << 20) && have == 0) target = (size_t)1 << 20;
        if (target > *cap) {
            uint8_t *p = (uint8_t *)SDL_REALLOC(*buf, target);
            if (!p) { sdl_fail(SDL_ERR_OOM, "%s: record %lld: out of memory for %zu bytes", what, (long long)index, target); return -1; }
            *buf = p;
            *cap = target;
        }
        size_t r = fread(*buf + have, 1, target - have, f);
        have += r;
        if (have < target) {
            sdl_fail(ferror(f) ? SDL_ERR_IO : SDL_ERR_FORMAT, "%s: record %lld: truncated (%llu data bytes + 4 CRC bytes said, %zu there)", what,
                     (long long)index, (unsigned long long)len, have);
            return -1;
        }
    }
    if (sdl_tfrecord_masked_crc(*buf, (size_t)len) != sdl__le32(*buf + len)) {
        sdl_fail(SDL_ERR_FORMAT, "%s: record %lld: the data's CRC-32C does not match (corrupt)", what, (long long)index);
        return -1;
    }
    *n = (size_t)len;
    return 1;
}

struct sdl_tfrecord_reader {
    FILE *f;
    char *path;
    uint8_t *buf;
    size_t cap;
    int64_t count;
    sdl_result err;
};

SDL_API sdl_tfrecord_reader *sdl_tfrecord_open(const char *path) {
    if (!path) { sdl_fail(SDL_ERR_ARG, "tfrecord_open: path is NULL"); return NULL; }
    sdl_tfrecord_reader *r = (sdl_tfrecord_reader *)sdl__calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->path = sdl__strdup(path)) || !(r->f = sdl__open_read(path))) {
        SDL_DEALLOC(r->path);
        SDL_DEALLOC(r);
        return NULL;
    }
    return r;
}

SDL_API bool sdl_tfrecord_next(sdl_tfrecord_reader *r, const uint8_t **data, size_t *n) {
    if (!r || !data || !n) { sdl_fail(SDL_ERR_ARG, "tfrecord_next: NULL argument"); return false; }
    *data = NULL;
    *n = 0;
    if (r->err != SDL_OK) return false;
    int k = sdl_tfrecord_read_record(r->f, r->path, r->count, &r->buf, &r->cap, n);
    if (k < 0) r->err = sdl_last_result();
    if (k <= 0) return false;
    r->count++;
    *data = r->buf;
    return true;
}

SDL_API int64_t sdl_tfrecord_count(const sdl_tfrecord_reader *r) { return r ? r->count : 0; }

SDL_API sdl_result sdl_tfrecord_close(sdl_tfrecord_reader *r) {
    if (!r) return SDL_OK;
    sdl_result e = r->err;
    fclose(r->f);
    SDL_DEALLOC(r->buf);
    SDL_DEALLOC(r->path);
    SDL_DEALLOC(r);
    return e;
}

/* ---- protobuf wire format: (field << 3 | type) tags; 0 varint, 1 fixed64, 2 length-
   delimited, 5 fixed32. One field at a time, bounds-checked. ---- */
typedef struct sdl__pb {
    int field, wire;
    uint64_t v;          /* types 0, 1, 5 */
    const uint8_t *p;    /* type 2: the bytes */
    size_t n;
} sdl__pb;

static bool sdl__pb_varint(const uint8_t **p, const uint8_t *e, uint64_t *v) {
    *v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (*p >= e) return false;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) return s < 63 || b <= 1;
    }
    return false;
}

/* the next field of [*p, e) into f; false at the end (*p == e) or on bad bytes (*p = NULL,
   so a caller's check *p == e fails) */
static bool sdl__pb_next(const uint8_t **p, const uint8_t *e, sdl__pb *f) {
    uint64_t tag, len;
    if (!*p || *p == e) return false;
    memset(f, 0, sizeof *f);
    if (!sdl__pb_varint(p, e, &tag) || (tag >> 3) == 0 || (tag >> 3) > INT32_MAX) goto bad;
    f->field = (int)(tag >> 3);
    f->wire = (int)(tag & 7);
    if (f->wire == 0) {
        if (!sdl__pb_varint(p, e, &f->v)) goto bad;
    } else if (f->wire == 1 || f->wire == 5) {
        size_t k = f->wire == 1 ? 8 : 4;
        if ((size_t)(e - *p) < k) goto bad;
        f->v = k == 8 ? sdl__le64(*p) : sdl__le32(*p);
        *p += k;
    } else if (f->wire == 2) {
        if (!sdl__pb_varint(p, e, &len) || len > (uint64_t)(e - *p)) goto bad;
        f->p = *p;
        f->n = (size_t)len;
        *p += len;
    } else goto bad; /* groups (3, 4) and 6, 7 */
    return true;
bad:
    *p = NULL;
    return false;
}

/* a whole message parses when the loop ended at its end */
#define SDL__PB_FOR(f, p, e) for (const uint8_t *p##_end = (e); sdl__pb_next(&(p), p##_end, &(f));)

static void sdl__pb_put_varint(sdl__buf *b, uint64_t v) {
    uint8_t t[10];
    size_t k = 0;
    do { t[k++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0)); v >>= 7; } while (v);
    sdl__buf_put(b, t, k);
}

static void sdl__pb_put_bytes(sdl__buf *b, int field, const void *data, size_t n) {
    sdl__pb_put_varint(b, (uint64_t)field << 3 | 2);
    sdl__pb_put_varint(b, n);
    sdl__buf_put(b, data, n);
}

/* ---- tf.train.Example: Example{features=1: Features{feature=1: map<string, Feature>}},
   Feature{bytes_list=1 | float_list=2 | int64_list=3}, each list {repeated value=1} ---- */
typedef struct sdl__feature {
    char *name;
    sdl_feature_kind kind;
    int64_t count;
    sdl__buf data;  /* the values: floats, int64s, or byte strings back to back */
    sdl__buf offs;  /* bytes: count + 1 size_t offsets into data */
} sdl__feature;

struct sdl_example {
    int n, cap;
    sdl__feature *f;
};

SDL_API sdl_example *sdl_example_new(void) { return (sdl_example *)sdl__calloc(1, sizeof(sdl_example)); }

static void sdl__feature_clear(sdl__feature *f) {
    SDL_DEALLOC(f->data.p);
    SDL_DEALLOC(f->offs.p);
    memset(&f->data, 0, sizeof f->data);
    memset(&f->offs, 0, sizeof f->offs);
    f->count = 0;
    f->kind = SDL_FEATURE_NONE;
}

SDL_API void sdl_example_free(sdl_example *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) {
        sdl__feature_clear(&e->f[i]);
        SDL_DEALLOC(e->f[i].name);
    }
    SDL_DEALLOC(e->f);
    SDL_DEALLOC(e);
}

static sdl__feature *sdl__example_find(const sdl_example *e, const char *name, size_t len) {
    for (int i = 0; i < e->n; i++)
        if (strlen(e->f[i].name) == len && !memcmp(e->f[i].name, name, len)) return &e->f[i];
    return NULL;
}

/* the feature called name (len bytes), added empty if absent */
static sdl__feature *sdl__example_slot(sdl_example *e, const char *name, size_t len) {
    sdl__feature *f = sdl__example_find(e, name, len);
    if (f) return f;
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 8;
        sdl__feature *m = e->cap < INT32_MAX / 4 ? (sdl__feature *)SDL_REALLOC(e->f, (size_t)cap * sizeof(sdl__feature)) : NULL;
        if (!m) { sdl_fail(SDL_ERR_OOM, "example: out of memory for %d features", cap); return NULL; }
        e->f = m;
        e->cap = cap;
    }
    f = &e->f[e->n];
    memset(f, 0, sizeof *f);
    if (!(f->name = (char *)sdl__alloc(len + 1))) return NULL;
    memcpy(f->name, name, len);
    f->name[len] = 0;
    e->n++;
    return f;
}

/* appends n values of `size` bytes each (bytes: one string of n bytes) */
static sdl_result sdl__example_add(sdl_example *e, const char *name, sdl_feature_kind kind, const void *v, int64_t n, size_t size) {
    if (!e || !name || n < 0 || (!v && n)) return sdl_fail(SDL_ERR_ARG, "example_add: NULL example, name or values");
    sdl__feature *f = sdl__example_slot(e, name, strlen(name));
    if (!f) return sdl_last_result();
    if (f->kind != SDL_FEATURE_NONE && f->kind != kind) return sdl_fail(SDL_ERR_ARG, "example_add: feature '%s' already holds another kind of list", name);
    size_t bytes;
    if (sdl__mul_overflows((size_t)n, size, &bytes)) return sdl_fail(SDL_ERR_OOM, "example_add: '%s': too many values", name);
    if (kind == SDL_FEATURE_BYTES && f->count == 0) {
        size_t zero = 0;
        sdl__buf_put(&f->offs, &zero, sizeof zero);
    }
    sdl__buf_put(&f->data, v, bytes);
    if (kind == SDL_FEATURE_BYTES) sdl__buf_put(&f->offs, &f->data.n, sizeof(size_t));
    if (f->data.oom || f->offs.oom) return SDL_ERR_OOM;
    f->kind = kind;
    f->count += kind == SDL_FEATURE_BYTES ? 1 : n;
    return SDL_OK;
}

SDL_API sdl_result sdl_example_add_bytes(sdl_example *e, const char *name, const void *data, size_t n) {
    return sdl__example_add(e, name, SDL_FEATURE_BYTES, n ? data : "", (int64_t)n, 1);
}
SDL_API sdl_result sdl_example_add_floats(sdl_example *e, const char *name, const float *v, int64_t n) {
    return sdl__example_add(e, name, SDL_FEATURE_FLOAT, v, n, sizeof(float));
}
SDL_API sdl_result sdl_example_add_int64s(sdl_example *e, const char *name, const int64_t *v, int64_t n) {
    return sdl__example_add(e, name, SDL_FEATURE_INT64, v, n, sizeof(int64_t));
}

SDL_API uint8_t *sdl_example_serialize(const sdl_example *e, size_t *n) {
    if (n) *n = 0;
    if (!e || !n) { sdl_fail(SDL_ERR_ARG, "example_serialize: NULL argument"); return NULL; }
    sdl__buf feats, list, feat, entry, out;
    memset(&feats, 0, sizeof feats);
    memset(&out, 0, sizeof out);
    for (int i = 0; i < e->n; i++) {
        const sdl__feature *f = &e->f[i];
        memset(&list, 0, sizeof list);
        memset(&feat, 0, sizeof feat);
        memset(&entry, 0, sizeof entry);
        if (f->kind == SDL_FEATURE_BYTES) {
            const size_t *o = (const size_t *)f->offs.p;
            for (int64_t k = 0; k < f->count; k++) sdl__pb_put_bytes(&list, 1, f->data.p + o[k], o[k + 1] - o[k]);
        } else if (f->kind == SDL_FEATURE_FLOAT) { /* packed: little-endian floats */
            sdl__buf le;
            memset(&le, 0, sizeof le);
            for (int64_t k = 0; k < f->count; k++) {
                uint32_t u;
                uint8_t b[4];
                memcpy(&u, f->data.p + 4 * (size_t)k, 4);
                sdl__put_le32(b, u);
                sdl__buf_put(&le, b, 4);
            }
            if (f->count) sdl__pb_put_bytes(&list, 1, le.p, le.n);
            SDL_DEALLOC(le.p);
        } else if (f->kind == SDL_FEATURE_INT64) { /* packed varints, negatives as 10 bytes */
            sdl__buf vs;
            memset(&vs, 0, sizeof vs);
            for (int64_t k = 0; k < f->count; k++) {
                int64_t v;
                memcpy(&v, f->data.p + 8 * (size_t)k, 8);
                sdl__pb_put_varint(&vs, (uint64_t)v);
            }
            if (f->count) sdl__pb_put_bytes(&list, 1, vs.p, vs.n);
            SDL_DEALLOC(vs.p);
        }
        if (f->kind != SDL_FEATURE_NONE) sdl__pb_put_bytes(&feat, (int)f->kind, list.p, list.n);
        sdl__pb_put_bytes(&entry, 1, f->name, strlen(f->name));
        sdl__pb_put_bytes(&entry, 2, feat.p, feat.n);
        sdl__pb_put_bytes(&feats, 1, entry.p, entry.n);
        bool oom = list.oom || feat.oom || entry.oom;
        SDL_DEALLOC(list.p);
        SDL_DEALLOC(feat.p);
        SDL_DEALLOC(entry.p);
        if (oom) feats.oom = true;
    }
    sdl__pb_put_bytes(&out, 1, feats.p, feats.n);
    SDL_DEALLOC(feats.p);
    if (feats.oom || out.oom) { SDL_DEALLOC(out.p); sdl_fail(SDL_ERR_OOM, "example_serialize: out of memory"); return NULL; }
    *n = out.n;
    return out.p;
}

/* a Feature message into f (replacing what it held: the last of repeated fields wins, as
   protobuf merges) */
static bool sdl__example_parse_feature(sdl__feature *f, const uint8_t *p, const uint8_t *e) {
    sdl__pb fd, v;
    sdl__feature_clear(f);
    SDL__PB_FOR(fd, p, e) {
        if (fd.wire != 2 || fd.field < 1 || fd.field > 3) continue;
        sdl__feature_clear(f);
        f->kind = (sdl_feature_kind)fd.field;
        const uint8_t *q = fd.p, *qe = fd.p + fd.n;
        if (f->kind == SDL_FEATURE_BYTES) {
            size_t zero = 0;
            sdl__buf_put(&f->offs, &zero, sizeof zero);
        }
        SDL__PB_FOR(v, q, qe) {
            if (v.field != 1) continue;
            if (f->kind == SDL_FEATURE_BYTES) {
                if (v.wire != 2) return false;
                sdl__buf_put(&f->data, v.p, v.n);
                sdl__buf_put(&f->offs, &f->data.n, sizeof(size_t));
                f->count++;
            } else if (f->kind == SDL_FEATURE_FLOAT) {
                if (v.wire == 5) {
                    uint32_t u = (uint32_t)v.v;
                    sdl__buf_put(&f->data, &u, 4);
                    f->count++;
                } else if (v.wire == 2 && v.n % 4 == 0) {
                    for (size_t k = 0; k < v.n; k += 4) {
                        uint32_t u = sdl__le32(v.p + k);
                        sdl__buf_put(&f->data, &u, 4);
                    }
                    f->count += (int64_t)(v.n / 4);
                } else return false;
            } else {
                if (v.wire == 0) {
                    sdl__buf_put(&f->data, &v.v, 8);
                    f->count++;
                } else if (v.wire == 2) {
                    const uint8_t *r = v.p, *re = v.p + v.n;
                    uint64_t x;
                    while (r < re) {
                        if (!sdl__pb_varint(&r, re, &x)) return false;
                        sdl__buf_put(&f->data, &x, 8);
                        f->count++;
                    }
                } else return false;
            }
        }
        if (q != qe) return false;
    }
    return p == e && !f->data.oom && !f->offs.oom;
}

SDL_API sdl_example *sdl_example_parse(const void *data, size_t n, const char *what) {
    if (!what) what = "example";
    if (!data && n) { sdl_fail(SDL_ERR_ARG, "%s: example_parse: NULL data", what); return NULL; }
    sdl_example *ex = sdl_example_new();
    if (!ex) return NULL;
    const uint8_t *p = (const uint8_t *)data, *e = p + n;
    sdl__pb fs, en, kv;
    bool ok = true;
    SDL__PB_FOR(fs, p, e) {
        if (fs.field != 1 || fs.wire != 2) continue; /* Example.features */
        const uint8_t *q = fs.p;
        SDL__PB_FOR(en, q, fs.p + fs.n) {
            if (en.field != 1 || en.wire != 2) continue; /* Features.feature: a map entry */
            const uint8_t *key = (const uint8_t *)"", *val = NULL, *r = en.p;
            size_t key_n = 0, val_n = 0;
            SDL__PB_FOR(kv, r, en.p + en.n) {
                if (kv.wire != 2) continue;
                if (kv.field == 1) { key = kv.p; key_n = kv.n; }
                if (kv.field == 2) { val = kv.p; val_n = kv.n; }
            }
            sdl__feature *f;
            if (r != en.p + en.n || memchr(key, 0, key_n) || !(f = sdl__example_slot(ex, (const char *)key, key_n)) ||
                !sdl__example_parse_feature(f, val ? val : key, val ? val + val_n : key)) { ok = false; break; }
        }
        if (!ok || q != fs.p + fs.n) { ok = false; break; }
    }
    if (!ok || p != e) {
        if (sdl_last_result() != SDL_ERR_OOM) sdl_fail(SDL_ERR_FORMAT, "%s: not a valid tf.train.Example message (corrupt protobuf)", what);
        sdl_example_free(ex);
        return NULL;
    }
    return ex;
}

SDL_API int sdl_example_num_features(const sdl_example *e) { return e ? e->n : 0; }
SDL_API const char *sdl_example_feature_name(const sdl_example *e, int i) { return e && i >= 0 && i < e->n ? e->f[i].name : NULL; }

SDL_API sdl_feature_kind sdl_example_kind(const sdl_example *e, const char *name, int64_t *count) {
    const sdl__feature *f = e && name ? sdl__example_find(e, name, strlen(name)) : NULL;
    if (count) *count = f ? f->count : 0;
    return f ? f->kind : SDL_FEATURE_NONE;
}

/* the feature of that name and kind, or NULL with an error listing the features */
static const sdl__feature *sdl__example_get(const sdl_example *e, const char *name, sdl_feature_kind kind) {
    static const char *const kinds[] = {"no", "bytes", "float", "int64"};
    if (!e || !name) { sdl_fail(SDL_ERR_ARG, "example: NULL example or name"); return NULL; }
    const sdl__feature *f = sdl__example_find(e, name, strlen(name));
    if (f && f->kind == kind) return f;
    char have[256] = "";
    for (int i = 0; i < e->n; i++) {
        size_t k = strlen(have);
        snprintf(have + k, sizeof have - k, "%s%s (%s)", i ? ", " : "", e->f[i].name, kinds[e->f[i].kind]);
    }
    if (f) sdl_fail(SDL_ERR_ARG, "example: feature '%s' is a %s list, not %s (features: %s)", name, kinds[f->kind], kinds[kind], have);
    else sdl_fail(SDL_ERR_ARG, "example: no feature '%s' (features: %s)", name, e->n ? have : "none");
    return NULL;
}

SDL_API const uint8_t *sdl_example_bytes(const sdl_example *e, const char *name, int64_t i, size_t *n) {
    if (n) *n = 0;
    const sdl__feature *f = sdl__example_get(e, name, SDL_FEATURE_BYTES);
    if (!f) return NULL;
    if (i < 0 || i >= f->count) { sdl_fail(SDL_ERR_ARG, "example: feature '%s' has %lld values, asked for %lld", name, (long long)f->count, (long long)i); return NULL; }
    const size_t *o = (const size_t *)f->offs.p;
    if (n) *n = o[i + 1] - o[i];
    return f->data.p ? f->data.p + o[i] : (const uint8_t *)"";
}

static const void *sdl__example_values(const sdl_example *e, const char *name, sdl_feature_kind kind, int64_t *count) {
    if (count) *count = 0;
    const sdl__feature *f = sdl__example_get(e, name, kind);
    if (!f) return NULL;
    if (count) *count = f->count;
    return f->data.p ? (const void *)f->data.p : (const void *)"\0\0\0\0\0\0\0"; /* empty list: not NULL */
}
SDL_API const float *sdl_example_floats(const sdl_example *e, const char *name, int64_t *count) {
    return (const float *)sdl__example_values(e, name, SDL_FEATURE_FLOAT, count);
}
SDL_API const int64_t *sdl_example_int64s(const sdl_example *e, const char *name, int64_t *count) {
    return (const int64_t *)sdl__example_values(e, name, SDL_FEATURE_INT64, count);
}

/* ---- tensorflow.TensorProto: dtype=1, tensor_shape=2 {dim=2 {size=1}}, tensor_content=4,
   float_val=5, double_val=6, int_val=7, int64_val=10 ---- */
enum { SDL__DT_FLOAT = 1, SDL__DT_DOUBLE = 2, SDL__DT_INT32 = 3, SDL__DT_UINT8 = 4, SDL__DT_INT64 = 9 };

/* value lists (packed or one by one) as doubles into vals */
static bool sdl__tp_vals(const sdl__pb *f, sdl__buf *vals) {
    int size = f->field == 5 ? 4 : f->field == 6 ? 8 : 0; /* fixed-width; else varints */
    if (f->wire != 2) {
        double d;
        if (size == 4 && f->wire == 5) { uint32_t u = (uint32_t)f->v; float x; memcpy(&x, &u, 4); d = x; }
        else if (size == 8 && f->wire == 1) memcpy(&d, &f->v, 8);
        else if (size == 0 && f->wire == 0) d = (double)(int64_t)f->v;
        else return false;
        sdl__buf_put(vals, &d, sizeof d);
        return true;
    }
    const uint8_t *p = f->p, *e = f->p + f->n;
    if (size && f->n % (size_t)size) return false;
    while (p < e) {
        double d;
        uint64_t x;
        if (size == 4) { uint32_t u = sdl__le32(p); float v; memcpy(&v, &u, 4); d = v; p += 4; }
        else if (size == 8) { x = sdl__le64(p); memcpy(&d, &x, 8); p += 8; }
        else { if (!sdl__pb_varint(&p, e, &x)) return false; d = (double)(int64_t)x; }
        sdl__buf_put(vals, &d, sizeof d);
    }
    return true;
}

SDL_API sdl_tensor *sdl_tensorproto_parse(const void *data, size_t n, const char *what) {
    if (!what) what = "TensorProto";
    if (!data && n) { sdl_fail(SDL_ERR_ARG, "%s: tensorproto_parse: NULL data", what); return NULL; }
    const uint8_t *p = (const uint8_t *)data, *e = p + n, *content = NULL;
    size_t content_n = 0;
    uint64_t dtype = 0;
    sdl_shape shape;
    memset(&shape, 0, sizeof shape);
    sdl__buf vals;
    memset(&vals, 0, sizeof vals);
    sdl__pb f, d, s;
    bool ok = true;
    sdl_tensor *t = NULL;
    SDL__PB_FOR(f, p, e) {
        if (f.field == 1 && f.wire == 0) dtype = f.v;
        else if (f.field == 2 && f.wire == 2) {
            const uint8_t *q = f.p;
            shape.ndim = 0;
            SDL__PB_FOR(d, q, f.p + f.n) {
                if (d.field != 2 || d.wire != 2) continue;
                int64_t size = 0;
                const uint8_t *r = d.p;
                SDL__PB_FOR(s, r, d.p + d.n) if (s.field == 1 && s.wire == 0) size = (int64_t)s.v;
                if (r != d.p + d.n || size < 0 || shape.ndim == SDL_MAX_DIMS) { ok = false; break; }
                shape.d[shape.ndim++] = size;
            }
            if (q != f.p + f.n) ok = false;
        } else if (f.field == 4 && f.wire == 2) { content = f.p; content_n = f.n; }
        else if (f.field == 5 || f.field == 6 || f.field == 7 || f.field == 10) ok = ok && sdl__tp_vals(&f, &vals);
        if (!ok) break;
    }
    int size = dtype == SDL__DT_FLOAT || dtype == SDL__DT_INT32 ? 4 : dtype == SDL__DT_DOUBLE || dtype == SDL__DT_INT64 ? 8 : dtype == SDL__DT_UINT8 ? 1 : 0;
    sdl_dtype dt = dtype == SDL__DT_UINT8 ? SDL_U8 : (dtype == SDL__DT_INT32 || dtype == SDL__DT_INT64) ? SDL_I32 : SDL_F32;
    int64_t numel = sdl__shape_numel(shape), nv = (int64_t)(vals.n / sizeof(double));
    size_t bytes = 0;
    if (!ok || p != e || vals.oom) sdl_fail(SDL_ERR_FORMAT, "%s: not a valid TensorProto message (corrupt protobuf)", what);
    else if (!size) sdl_fail(SDL_ERR_FORMAT, "%s: TensorProto dtype %llu; sdl reads DT_FLOAT (1), DT_DOUBLE (2), DT_INT32 (3), DT_UINT8 (4), DT_INT64 (9)", what, (unsigned long long)dtype);
    else if (numel < 0 || sdl__mul_overflows((size_t)numel, (size_t)size, &bytes)) sdl_fail(SDL_ERR_FORMAT, "%s: TensorProto shape too large", what);
    else if (content && content_n != bytes) sdl_fail(SDL_ERR_FORMAT, "%s: TensorProto: the shape needs %zu content bytes, there are %zu", what, bytes, content_n);
    else if (!content && nv != numel && !(nv == 1 && numel > 0)) sdl_fail(SDL_ERR_FORMAT, "%s: TensorProto: %lld values for %lld elements", what, (long long)nv, (long long)numel);
    else if ((t = sdl_tensor_new(shape, dt)) != NULL) {
        const double *v = (const double *)vals.p;
        for (int64_t i = 0; i < numel && t; i++) {
            double x;
            if (content) {
                const uint8_t *q = content + (size_t)i * (size_t)size;
                uint64_t u = size == 1 ? q[0] : size == 4 ? sdl__le32(q) : sdl__le64(q);
                if (dtype == SDL__DT_FLOAT) { uint32_t w = (uint32_t)u; float fl; memcpy(&fl, &w, 4); x = fl; }
                else if (dtype == SDL__DT_DOUBLE) memcpy(&x, &u, 8);
                else if (dtype == SDL__DT_INT32) x = (double)(int32_t)(uint32_t)u;
                else if (dtype == SDL__DT_INT64) x = (double)(int64_t)u;
                else x = (double)u;
            } else x = v[nv == 1 ? 0 : i];
            if (dt == SDL_F32) sdl_f32(t)[i] = (float)x;
            else if ((dt == SDL_U8 && (x < 0 || x > 255)) || (dt == SDL_I32 && (x < INT32_MIN || x > INT32_MAX))) {
                sdl_fail(SDL_ERR_FORMAT, "%s: TensorProto element %lld is %.0f, outside the %s range", what, (long long)i, x, dt == SDL_U8 ? "uint8" : "int32");
                sdl_tensor_free(t);
                t = NULL;
            } else if (dt == SDL_U8) sdl_u8(t)[i] = (uint8_t)x;
            else sdl_i32(t)[i] = (int32_t)x;
        }
    }
    SDL_DEALLOC(vals.p);
    return t;
}

SDL_API uint8_t *sdl_tensorproto_serialize(const sdl_tensor *t, size_t *n) {
    if (n) *n = 0;
    if (!t || !n || t->device != SDL_CPU || (t->dtype != SDL_F32 && t->dtype != SDL_U8 && t->dtype != SDL_I32)) {
        sdl_fail(SDL_ERR_ARG, "tensorproto_serialize: needs a CPU f32, u8 or i32 tensor");
        return NULL;
    }
    sdl__buf out, shape, dim;
    memset(&out, 0, sizeof out);
    memset(&shape, 0, sizeof shape);
    sdl__pb_put_varint(&out, 1 << 3);
    sdl__pb_put_varint(&out, t->dtype == SDL_F32 ? SDL__DT_FLOAT : t->dtype == SDL_U8 ? SDL__DT_UINT8 : SDL__DT_INT32);
    for (int i = 0; i < t->ndim; i++) {
        memset(&dim, 0, sizeof dim);
        sdl__pb_put_varint(&dim, 1 << 3);
        sdl__pb_put_varint(&dim, (uint64_t)t->shape[i]);
        sdl__pb_put_bytes(&shape, 2, dim.p, dim.n);
        SDL_DEALLOC(dim.p);
    }
    sdl__pb_put_bytes(&out, 2, shape.p, shape.n);
    size_t es = sdl_dtype_size(t->dtype), bytes = (size_t)t->numel * es;
    sdl__pb_put_varint(&out, 4 << 3 | 2);
    sdl__pb_put_varint(&out, bytes);
    for (int64_t i = 0; i < t->numel; i++) { /* little-endian whatever the host */
        uint8_t b[4];
        if (es == 1) { sdl__buf_put(&out, sdl_u8(t) + i, 1); continue; }
        uint32_t u;
        memcpy(&u, (const uint8_t *)t->data + (size_t)i * 4, 4);
        sdl__put_le32(b, u);
        sdl__buf_put(&out, b, 4);
    }
    bool oom = out.oom || shape.oom;
    SDL_DEALLOC(shape.p);
    if (oom) { SDL_DEALLOC(out.p); sdl_fail(SDL_ERR_OOM, "tensorproto_serialize: out of memory"); return NULL; }
    *n = out.n;
    return out.p;
}

SDL__COLD_END

#ifdef __cplusplus
}
#endif
#ifdef SDL__GCC_OPTIMIZING
#pragma GCC pop_options
#endif
#endif /* SDL_IMPLEMENTATION_DONE */
#endif /* SDL_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the sdl authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
