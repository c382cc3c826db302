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
      SDL_NO_SIMD          (impl) portable C kernels even where -march enables AVX2/AVX-512
      SDL_MAX_DIMS         the most dimensions a tensor has, default 8

   TOPICS
      Errors      Functions return a result code (SDL_OK is 0) or NULL. sdl_last_error()
                  says what went wrong and where. Ops given a NULL input return NULL, so an
                  error travels to the end of a chain like a NaN. The library never exits.
      Tensors     f32 compute, N-d shapes, contiguous storage. sdl_tensor_new() lives on
                  the heap until sdl_tensor_free(); every tensor an op makes lives in the
                  step arena until sdl_arena_reset(). A steady-state step allocates nothing.
      Autograd    Ops record themselves on a tape while grad mode is on and an input needs
                  a gradient. sdl_backward(loss) runs the tape in reverse, adds (+=) into
                  each .grad, and clears the tape. Gradients accumulate until zeroed.
      Models      An sdl_model owns parameters (names like "fc1.weight"), buffers (batch-norm
                  statistics) and layers. On first use its parameters are packed into one
                  flat buffer and their gradients into another, so an optimizer or an
                  allreduce sees one array. A hook fires as each parameter's gradient
                  becomes final during backward (reverse layer order).
      Devices     Each tensor knows its device. Op kernels are looked up in a per-device
                  backend table (sdl_backend); sdl.h fills the CPU one, sdl_cuda.h the CUDA
                  one, so this file compiles with any C compiler and knows nothing of CUDA.
      Optimizers  SGD (momentum, Nesterov), Adam, AdamW, LARS, LAMB, one pass over the flat
                  arrays; sdl_optim_step updates and zeroes the gradients (with
                  accum_steps = k it updates on every k-th call). Schedules (sdl_sched_lr):
                  constant, step, cosine, one-cycle, each with optional linear warm-up.
      Data        Readers fill an sdl_dataset (u8 images, CHW, i32 labels): IDX (.gz too),
                  CIFAR-10, image folders, WebDataset tar shards; .npy/.npz as tensors.
                  sdl_loader batches it: shuffle by (seed, epoch), distributed sampling,
                  a prefetch thread, normalise/crop/flip. The batches depend only on the seed.
      Training    sdl_args_parse (--batch-size and --batch_size alike), sdl_progress,
                  sdl_meter, sdl_csv_append, sdl_print_throughput ("total images/sec: X").
      Checkpoints safetensors files that PyTorch reads, written atomically; parameters,
                  buffers, optimizer state, epoch and RNG state. Resuming is bit-exact.
      Profile     SDL_PROFILE=1 in the environment prints the time per op type at exit.
*/
#ifndef SDL_H_INCLUDED
#define SDL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

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
    sdl_node *first_use; /* parameters: earliest tape node reading it this step */
    uint64_t first_use_tape;
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
SDL_API void sdl_tensor_fill(sdl_tensor *t, float value);
SDL_API void sdl_tensor_copy_from(sdl_tensor *t, const float *src);
SDL_API float sdl_item(const sdl_tensor *t); /* element 0 as float */
SDL_API bool sdl_all_finite(const sdl_tensor *t);
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

/* >>decl-threads: a fixed pool started once. Work is split by index, never by timing,
   so results are bitwise identical for any thread count. */
typedef void (*sdl_range_fn)(void *ctx, int64_t begin, int64_t end);
SDL_API void sdl_set_num_threads(int n); /* 0: SDL_NUM_THREADS from the environment, else all cores */
SDL_API int sdl_get_num_threads(void);
SDL_API void sdl_parallel_for(int64_t n, int64_t grain, sdl_range_fn fn, void *ctx);
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

/* >>decl-autograd */
typedef enum sdl_op {
    SDL_OP_NONE = 0,
    SDL_OP_LINEAR, SDL_OP_CONV2D, SDL_OP_CONV_TRANSPOSE2D, SDL_OP_MAX_POOL2D, SDL_OP_AVG_POOL2D,
    SDL_OP_GLOBAL_AVG_POOL, SDL_OP_BATCH_NORM, SDL_OP_LAYER_NORM, SDL_OP_DROPOUT,
    SDL_OP_EMBEDDING, SDL_OP_RELU, SDL_OP_LEAKY_RELU, SDL_OP_GELU, SDL_OP_TANH, SDL_OP_SIGMOID,
    SDL_OP_SILU, SDL_OP_SOFTMAX, SDL_OP_LOG_SOFTMAX, SDL_OP_ADD, SDL_OP_MUL, SDL_OP_SCALE,
    SDL_OP_CONCAT, SDL_OP_TRANSPOSE, SDL_OP_ATTENTION, SDL_OP_SUM, SDL_OP_MEAN,
    SDL_OP_CROSS_ENTROPY, SDL_OP_NLL, SDL_OP_BCE_LOGITS, SDL_OP_MSE,
    SDL_OP_COUNT
} sdl_op;

/* One recorded op: what made `out` from `in`, with what settings, and what forward kept
   for backward. Backend kernels receive the node. */
struct sdl_node {
    sdl_op op;
    sdl_tensor *out;
    sdl_tensor *in[4];
    int nin;
    union {
        struct { int stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w; } conv;
        struct { int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w; } pool;
        struct { float eps, momentum; bool training; sdl_tensor *running_mean, *running_var; } norm; /* stats may be NULL */
        struct { float p; uint64_t seed, stream; } dropout;
        struct { float alpha; } scalar;  /* leaky_relu slope, scale factor, label smoothing */
        struct { int dim, dim1; } axis;  /* concat (dim); transpose (dim, dim1), dim < dim1 */
        struct { int n_head; sdl_dtype p_dtype; } attn; /* p_dtype: how a device kept P (CUDA: bf16/fp16 runs) */
    } attr;
    void *saved;   /* arena memory forward left for backward */
    sdl_node *prev; /* the tape, newest first */
    int act;       /* sdl_act fused into the output (the activation epilogue), 0: none */
    /* set by sdl_backward for ops whose backend sets grad_overwrite[op]: bit i says that
       in[i]->grad holds no gradient yet (zeros or stale memory), so the backward kernel
       writes (=) every element of it instead of adding (+=) */
    unsigned grad_fresh;
};

/* Activation epilogues: an op that takes one applies it to its output in place, y = f(z),
   and its backward first turns dy into dz = f'(z) dy, with f' computed from y (so z need
   not be kept). sdl_linear_act and sdl_conv2d_act take one; a sequential fuses linear + relu
   and conv2d + relu. */
typedef enum sdl_act {
    SDL_ACT_NONE = 0,
    SDL_ACT_RELU         /* y = max(z, 0);  dz = y > 0 ? dy : 0 */
} sdl_act;

SDL_API sdl_result sdl_backward(sdl_tensor *loss);
SDL_API void sdl_set_grad_enabled(bool enabled);
SDL_API bool sdl_is_grad_enabled(void);
SDL_API sdl_tensor *sdl_detach(sdl_tensor *x); /* same data, no gradient flows back */

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
} sdl_backend;
SDL_API void sdl_register_backend(sdl_device device, const sdl_backend *backend);
SDL_API const sdl_backend *sdl_get_backend(sdl_device device);

/* >>decl-ops. Shapes: x (B, ...) batch first; images NCHW. Each returns a new arena
   tensor, or NULL with sdl_last_error() set. */
SDL_API sdl_tensor *sdl_linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b);      /* x (..., in), w (out, in), b (out) or NULL */
/* act(linear(x, w, b)) as one op: the same numbers as the two ops, one pass less each way */
SDL_API sdl_tensor *sdl_linear_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, sdl_act act);
/* act(conv2d(x, w, b, stride, pad)) as one op, the same way */
SDL_API sdl_tensor *sdl_conv2d_act(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, sdl_act act);
SDL_API sdl_tensor *sdl_conv2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad);  /* w (C_out, C_in, kh, kw) */
SDL_API sdl_tensor *sdl_conv_transpose2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, int out_pad); /* w (C_in, C_out, kh, kw) */
SDL_API sdl_tensor *sdl_max_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_avg_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_global_avg_pool(sdl_tensor *x);                            /* (N,C,H,W) -> (N,C) */
/* x (N, C) or (N, C, H, W); gamma, beta (C), or both NULL for no affine. Training normalises
   with the batch stats and, if the running stats are given, sets running = (1 - momentum)
   running + momentum stat (unbiased var, as PyTorch; momentum 0.1, eps 1e-5 are its defaults).
   Eval uses running_mean/running_var (needed then) and leaves them alone. */
SDL_API sdl_tensor *sdl_batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps);
/* over the last dim D; gamma, beta (D), or both NULL for no affine */
SDL_API sdl_tensor *sdl_layer_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, float eps);
/* inverted dropout: kept values scaled by 1/(1-p); the mask comes from the global RNG (a seed
   fixes it on any thread count). Eval or p = 0 returns x itself. */
SDL_API sdl_tensor *sdl_dropout(sdl_tensor *x, float p, bool training);
SDL_API sdl_tensor *sdl_embedding(sdl_tensor *ids, sdl_tensor *table); /* ids i32 (...), table (V, D) -> (..., D) */
SDL_API sdl_tensor *sdl_relu(sdl_tensor *x);
SDL_API sdl_tensor *sdl_leaky_relu(sdl_tensor *x, float slope);
SDL_API sdl_tensor *sdl_gelu(sdl_tensor *x); /* tanh form */
SDL_API sdl_tensor *sdl_tanh(sdl_tensor *x);
SDL_API sdl_tensor *sdl_sigmoid(sdl_tensor *x);
SDL_API sdl_tensor *sdl_silu(sdl_tensor *x);
SDL_API sdl_tensor *sdl_softmax(sdl_tensor *x);     /* over the last dim */
SDL_API sdl_tensor *sdl_log_softmax(sdl_tensor *x); /* over the last dim */
/* a + b, a * b: b's shape right-aligned to a's, each dim equal or 1 (bias-style) */
SDL_API sdl_tensor *sdl_add(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_mul(sdl_tensor *a, sdl_tensor *b);
SDL_API sdl_tensor *sdl_scale(sdl_tensor *x, float s);
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

/* >>decl-model */
typedef void (*sdl_grad_hook)(void *user, sdl_model *m, int param_index);

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
SDL_API void sdl_model_train(sdl_model *m, bool training);
SDL_API void sdl_model_set_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user);

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
};
SDL_API sdl_tensor *sdl_forward(sdl_module *layer, sdl_tensor *x);
SDL_API sdl_module *sdl_module_new(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd);
SDL_API sdl_module *sdl_sequential(sdl_model *m, const char *name);
SDL_API sdl_result sdl_seq_add(sdl_module *seq, sdl_module *layer);
SDL_API sdl_module *sdl_linear_layer(sdl_model *m, const char *name, int64_t in, int64_t out, bool bias);
SDL_API sdl_module *sdl_conv2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel, int stride, int pad, bool bias);
SDL_API sdl_module *sdl_conv_transpose2d_layer(sdl_model *m, const char *name, int64_t c_in, int64_t c_out, int kernel, int stride, int pad, int out_pad, bool bias);
SDL_API sdl_module *sdl_batch_norm_layer(sdl_model *m, const char *name, int64_t channels);
SDL_API sdl_module *sdl_layer_norm_layer(sdl_model *m, const char *name, int64_t dim);
SDL_API sdl_module *sdl_embedding_layer(sdl_model *m, const char *name, int64_t vocab, int64_t dim);
SDL_API sdl_module *sdl_relu_layer(sdl_model *m);
SDL_API sdl_module *sdl_leaky_relu_layer(sdl_model *m, float slope);
SDL_API sdl_module *sdl_gelu_layer(sdl_model *m);
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
typedef enum sdl_optim_kind {
    SDL_OPTIM_DEFAULT = 0, /* sgd */
    SDL_OPTIM_SGD,
    SDL_OPTIM_ADAM,
    SDL_OPTIM_ADAMW,
    SDL_OPTIM_LARS,
    SDL_OPTIM_LAMB
} sdl_optim_kind;

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
} sdl_optim;

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc);
/* the common ones; a 0 argument takes the default named in sdl_optim_desc */
SDL_API sdl_optim *sdl_sgd(sdl_model *m, float lr, float momentum, float weight_decay, bool nesterov);
SDL_API sdl_optim *sdl_adam(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
SDL_API sdl_optim *sdl_adamw(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
SDL_API sdl_optim *sdl_lars(sdl_model *m, float lr, float momentum, float weight_decay, float trust_coef);
SDL_API sdl_optim *sdl_lamb(sdl_model *m, float lr, float beta1, float beta2, float weight_decay);
SDL_API sdl_result sdl_optim_step(sdl_optim *o);
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

/* One image file (PNG, JPEG, BMP, GIF, TGA, PNM: what stb_image reads) as a u8 heap tensor
   (C, H, W). channels: 1 grey, 3 RGB, 4 RGBA (stb converts), 0: as stored. */
SDL_API sdl_tensor *sdl_load_image(const char *path, int channels);
/* Image folders, torchvision's ImageFolder layout: dir/<class>/<image>. The classes are the
   sub-folders in bytewise sorted order, ids 0, 1, ...; in each, the files ending in .png,
   .jpg, .jpeg, .bmp, .gif, .tga, .ppm, .pgm, .pnm, .psd, .hdr, .pic are read (sorted) and
   must decode; names starting with '.' are skipped, TIFF/WebP files are an error. All
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
   ".cls" member (an ASCII integer label) and one image (.png, .jpg, .jpeg, .bmp, .ppm, .pgm,
   .tga, .gif); other members are skipped. Reads ustar, GNU and pax tar files (GNU tar's). */
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

/* >>decl-loader: batches of (x f32 (B, C, H, W), y i32 (B)) from an sdl_dataset.
   The sequence depends only on (seed, epoch, rank, world_size), never on prefetch timing. */
typedef struct sdl_loader sdl_loader;
typedef struct sdl_loader_desc {
    const sdl_dataset *data;
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

/* >>decl-checkpoint: safetensors files (PyTorch's safetensors.torch.load_file reads them).
   Layout: u64 little-endian header size N, N bytes of JSON (space padded to 8 bytes), data.
   Tensors (all "F32"): every parameter and buffer under its own name ("fc1.weight"), and,
   with an optimizer, its state slot of each parameter as "optim.<slot>.<name>" with
   PyTorch's slot names (sdl_optim_state_name: "optim.momentum_buffer.fc1.weight",
   "optim.exp_avg.fc1.weight", "optim.exp_avg_sq.fc1.weight"). "__metadata__" holds
   strings: format "pt", sdl "1", epoch, step, lr, optim (sdl_optim_kind number),
   optim_nstate, optim_micro (accumulation), rng_seed, rng_counter. Saving writes path.tmp in the same folder, fsyncs and renames, so a crash
   leaves the old file whole. Loading checks every name, shape and dtype before it changes
   anything, restores the optimizer (state, step, lr) and the global RNG (so dropout goes on
   as if never stopped), and names what differs. Data is little-endian f32. */
typedef struct sdl_checkpoint_info {
    int64_t epoch;       /* what was passed to save: epochs finished */
    int64_t step;        /* optimizer steps taken */
    float lr;
    uint64_t rng_seed, rng_counter;
} sdl_checkpoint_info;
/* o may be NULL (weights only) */
SDL_API sdl_result sdl_checkpoint_save(const char *path, sdl_model *m, const sdl_optim *o, int64_t epoch);
/* o may be NULL (optimizer entries in the file are then skipped); info may be NULL */
SDL_API sdl_result sdl_checkpoint_load(const char *path, sdl_model *m, sdl_optim *o, sdl_checkpoint_info *info);

/* >>decl-profile */
/* Time per op type, forward and backward, summed over calls. On when the environment has
   SDL_PROFILE=1 (then the table is printed through sdl_log when the program exits) or after
   sdl_profile_enable(true). Kernels that run on a GPU are timed as launched (asynchronously). */
SDL_API void sdl_profile_enable(bool on);
SDL_API void sdl_profile_reset(void);
SDL_API void sdl_profile_print(void); /* the table, one sdl_log line (SDL_LOG_WARN, so it shows) per op */

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

static void *sdl__calloc(size_t n, size_t size) {
    size_t bytes;
    if (sdl__mul_overflows(n, size, &bytes)) {
        sdl_fail(SDL_ERR_OOM, "size overflow: %zu x %zu bytes", n, size);
        return NULL;
    }
    void *p = sdl__alloc(bytes);
    if (p) memset(p, 0, bytes);
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

static uint64_t sdl__mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t sdl__hash3(uint64_t seed, uint64_t stream, uint64_t index) {
    return sdl__mix64(sdl__mix64(seed ^ sdl__mix64(stream)) ^ index);
}

SDL_API float sdl_hash_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(sdl__hash3(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

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

SDL_API void sdl_tensor_uniform(sdl_tensor *t, float lo, float hi) {
    uint64_t base = sdl__rng_take((uint64_t)t->numel);
    float *x = sdl_f32(t);
    for (int64_t i = 0; i < t->numel; i++)
        x[i] = lo + (hi - lo) * sdl_hash_uniform(sdl__rng_seed_v, 0, base + (uint64_t)i);
}

/* Box-Muller on two uniforms drawn for element i */
SDL_API void sdl_tensor_randn(sdl_tensor *t, float mean, float std) {
    uint64_t base = sdl__rng_take((uint64_t)t->numel);
    float *x = sdl_f32(t);
    for (int64_t i = 0; i < t->numel; i++) {
        double u1 = ((double)(sdl__hash3(sdl__rng_seed_v, 1, base + (uint64_t)i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (double)(sdl__hash3(sdl__rng_seed_v, 2, base + (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = mean + std * (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
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
#else
#define SDL__KC 512
#define SDL__MC (SDL__MR * 20)
#endif
#define SDL__NC 1024

typedef struct sdl__gemm_job {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t mr;          /* rows per A panel */
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
static void sdl__vadd(float *SDL_RESTRICT y, const float *SDL_RESTRICT x, int64_t n) {
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
static float sdl__vsum(const float *x, int64_t n) {
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
        } else {
            for (int64_t k = 0; k < kc; k++) {
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

/* t[MR x NR] = sum_k a[k*MR + i] * b[k*NR + j] over kc */
#if defined(SDL__GEMM_AVX512)
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, float *SDL_RESTRICT t) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0,
           c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0,
           c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0, c8_0 = c0_0, c8_1 = c0_0,
           c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0, c11_1 = c0_0;
    for (int64_t k = 0; k < kc; k++, a += 12, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), ai;
#define SDL__ROW(i) ai = _mm512_set1_ps(a[i]); c##i##_0 = _mm512_fmadd_ps(ai, b0, c##i##_0); c##i##_1 = _mm512_fmadd_ps(ai, b1, c##i##_1);
        SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5)
        SDL__ROW(6) SDL__ROW(7) SDL__ROW(8) SDL__ROW(9) SDL__ROW(10) SDL__ROW(11)
#undef SDL__ROW
    }
#define SDL__ROW(i) _mm512_storeu_ps(t + (i) * 32, c##i##_0); _mm512_storeu_ps(t + (i) * 32 + 16, c##i##_1);
    SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5)
    SDL__ROW(6) SDL__ROW(7) SDL__ROW(8) SDL__ROW(9) SDL__ROW(10) SDL__ROW(11)
#undef SDL__ROW
}
/* the same with 8 rows: for M = 64, 128, ... where 12-row panels would be padded */
static void sdl__gemm_kernel8(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, float *SDL_RESTRICT t) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0,
           c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0,
           c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0;
    for (int64_t k = 0; k < kc; k++, a += 8, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), ai;
#define SDL__ROW(i) ai = _mm512_set1_ps(a[i]); c##i##_0 = _mm512_fmadd_ps(ai, b0, c##i##_0); c##i##_1 = _mm512_fmadd_ps(ai, b1, c##i##_1);
        SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5) SDL__ROW(6) SDL__ROW(7)
#undef SDL__ROW
    }
#define SDL__ROW(i) _mm512_storeu_ps(t + (i) * 32, c##i##_0); _mm512_storeu_ps(t + (i) * 32 + 16, c##i##_1);
    SDL__ROW(0) SDL__ROW(1) SDL__ROW(2) SDL__ROW(3) SDL__ROW(4) SDL__ROW(5) SDL__ROW(6) SDL__ROW(7)
#undef SDL__ROW
}
#define SDL__GEMM_MR8 1
#elif defined(SDL__GEMM_AVX2)
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, float *SDL_RESTRICT t) {
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
}
#else
static void sdl__gemm_kernel(int64_t kc, const float *SDL_RESTRICT a, const float *SDL_RESTRICT b, float *SDL_RESTRICT t) {
    float acc[SDL__MR][SDL__NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++, a += SDL__MR, b += SDL__NR)
        for (int i = 0; i < SDL__MR; i++)
            for (int j = 0; j < SDL__NR; j++) acc[i][j] += a[i] * b[j];
    memcpy(t, acc, sizeof acc);
}
#endif

/* C tile (mr x nr) = (first ? beta*C : C) + t; one routine for every tile so edges and
   interiors round alike. beta 0 never reads C (it may hold NaN). */
static void sdl__gemm_update(float *c, int64_t ldc, const float *t, int64_t mr, int64_t nr, float beta, bool first) {
#if defined(SDL__GEMM_AVX512) /* every tile, full or not, takes this path (masked), so all round alike */
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1u);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    __m512 vb = _mm512_set1_ps(beta);
    int mode = !first || beta == 1.0f ? 0 : beta == 0.0f ? 1 : 2;
    for (int64_t i = 0; i < mr; i++, c += ldc, t += SDL__NR) {
        __m512 t0 = _mm512_loadu_ps(t), t1 = _mm512_loadu_ps(t + 16);
        if (mode == 0) {
            t0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), t0);
            t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), t1);
        } else if (mode == 2) {
            t0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), t0);
            t1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), t1);
        }
        _mm512_mask_storeu_ps(c, m0, t0);
        _mm512_mask_storeu_ps(c + 16, m1, t1);
    }
#else
    for (int64_t i = 0; i < mr; i++, c += ldc, t += SDL__NR) {
        if (!first || beta == 1.0f) for (int64_t j = 0; j < nr; j++) c[j] += t[j];
        else if (beta == 0.0f) for (int64_t j = 0; j < nr; j++) c[j] = t[j];
        else for (int64_t j = 0; j < nr; j++) c[j] = beta * c[j] + t[j];
    }
#endif
}

/* the block size that cuts n into equal blocks of at most max, rounded up to a multiple
   of q (max is a multiple of q) */
static int64_t sdl__gemm_blk(int64_t n, int64_t max, int64_t q) {
    int64_t nb = (n + max - 1) / max, b = (n + nb - 1) / nb;
    return (b + q - 1) / q * q;
}

/* C[m0:m1, n0:n1] with the packing buffers ws (MC*KC + KC*NC floats) */
static void sdl__gemm_block(const sdl__gemm_job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *ws) {
    float *ap = ws, *bp = ws + SDL__MC * SDL__KC;
    float t[SDL__MR * SDL__NR + 16];
    int64_t NC = sdl__gemm_blk(n1 - n0, SDL__NC, SDL__NR), KC = sdl__gemm_blk(g->K, SDL__KC, 16);
    int64_t MC = sdl__gemm_blk(m1 - m0, SDL__MC, g->mr);
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = g->K - pc < KC ? g->K - pc : KC;
            sdl__pack_b(g, pc, kc, jc, nc, bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                sdl__pack_a(g, ic, mc, pc, kc, ap);
                for (int64_t jr = 0; jr < nc; jr += SDL__NR) {
                    int64_t nr = nc - jr < SDL__NR ? nc - jr : SDL__NR;
                    for (int64_t ir = 0; ir < mc; ir += g->mr) {
                        int64_t mr = mc - ir < g->mr ? mc - ir : g->mr;
#ifdef SDL__GEMM_MR8
                        if (g->mr == 8) sdl__gemm_kernel8(kc, ap + ir * kc, bp + jr * kc, t);
                        else
#endif
                        sdl__gemm_kernel(kc, ap + ir * kc, bp + jr * kc, t);
                        sdl__gemm_update(g->C + (ic + ir) * g->ldc + jc + jr, g->ldc, t, mr, nr, g->beta, pc == 0);
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

/* ----------------------------------------------------------------------------------------
   >>arena: the step arena. Chunks are kept across resets; after a step that needed
   several, reset merges them into one, so a steady-state step allocates nothing.
   ---------------------------------------------------------------------------------------- */
static sdl_backend sdl__backends[SDL_DEVICE_COUNT];

typedef struct sdl__chunk {
    struct sdl__chunk *next;
    size_t cap, used;
    char *base;
} sdl__chunk;

static struct {
    sdl__chunk *head;  /* current chunk; older ones follow */
    size_t total_cap;
    uint64_t tape_id;  /* changes whenever the tape is cleared */
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

/* bump allocation, not zeroed: op outputs, which their kernels overwrite (zeroing them cost
   ~18% of a CNN step). SDL_DEBUG_POISON fills them with NaN instead, so a kernel that
   forgets to write an element shows up in the tests' reference checks. */
static void *sdl__arena_bump(size_t bytes) {
    size_t need = (bytes + SDL__ALIGN - 1) & ~(size_t)(SDL__ALIGN - 1);
    if (need < bytes) { sdl_fail(SDL_ERR_OOM, "arena: size overflow (%zu bytes)", bytes); return NULL; }
    sdl__chunk *c = sdl__g.head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > ((size_t)1 << 22) ? need : ((size_t)1 << 22);
        if (sdl__g.total_cap > cap) cap = sdl__g.total_cap; /* grow geometrically */
        sdl__chunk *n = sdl__chunk_new(cap);
        if (!n) return NULL;
        n->next = c;
        sdl__g.head = n;
        sdl__g.total_cap += cap;
        c = n;
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
    sdl__chunk *c = sdl__g.head;
    if (c && c->next) { /* several chunks: replace by one that holds them all */
        size_t total = sdl__g.total_cap;
        sdl__chunk_free_all(c);
        sdl__g.head = sdl__chunk_new(total);
        sdl__g.total_cap = sdl__g.head ? total : 0;
    } else if (c) {
        c->used = 0;
    }
    for (int d = SDL_CPU + 1; d < SDL_DEVICE_COUNT; d++)
        if (sdl__backends[d].arena_reset) sdl__backends[d].arena_reset();
    sdl__g.tape = NULL;
    sdl__g.tape_id++;
}

SDL_API size_t sdl_arena_capacity(void) { return sdl__g.total_cap; }

SDL_API void sdl_arena_release(void) {
    sdl__chunk_free_all(sdl__g.head);
    sdl__g.head = NULL;
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
    if (!t->grad) t->grad = (float *)sdl__aligned_alloc((size_t)t->numel * sizeof(float));
    if (!t->grad) return SDL_ERR_OOM;
    memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    t->requires_grad = true;
    return SDL_OK;
}

SDL_API void sdl_tensor_fill(sdl_tensor *t, float value) {
    float *x = sdl_f32(t);
    for (int64_t i = 0; i < t->numel; i++) x[i] = value;
}

SDL_API void sdl_tensor_copy_from(sdl_tensor *t, const float *src) {
    memcpy(t->data, src, (size_t)t->numel * sizeof(float));
}

SDL_API float sdl_item(const sdl_tensor *t) {
    if (!t || t->numel < 1) return NAN;
    if (t->device != SDL_CPU) { /* one element back from the device (waits for it) */
        const sdl_backend *be = sdl_get_backend(t->device);
        union { float f; int32_t i; uint8_t u; } v;
        v.i = 0;
        if (!be || !be->copy) return NAN;
        be->copy(&v, t->data, sdl_dtype_size(t->dtype), SDL_CPU, t->device);
        return t->dtype == SDL_I32 ? (float)v.i : t->dtype == SDL_U8 ? (float)v.u : v.f;
    }
    if (t->dtype == SDL_I32) return (float)sdl_i32(t)[0];
    if (t->dtype == SDL_U8) return (float)sdl_u8(t)[0];
    return sdl_f32(t)[0];
}

SDL_API bool sdl_all_finite(const sdl_tensor *t) {
    if (!t) return false;
    const float *x = sdl_f32(t);
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* ----------------------------------------------------------------------------------------
   >>backend: the CPU table is filled by the op sections below
   ---------------------------------------------------------------------------------------- */
SDL_API void sdl_register_backend(sdl_device device, const sdl_backend *backend) {
    if (device > SDL_DEVICE_DEFAULT && device < SDL_DEVICE_COUNT && backend) sdl__backends[device] = *backend;
}

static void sdl__cpu_init(void);
SDL_API const sdl_backend *sdl_get_backend(sdl_device device) {
    if (!sdl__backends[SDL_CPU].name) sdl__cpu_init();
    if (device == SDL_DEVICE_DEFAULT) device = SDL_CPU;
    return device < SDL_DEVICE_COUNT && sdl__backends[device].name ? &sdl__backends[device] : NULL;
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

/* A new arena tensor `out` and its node. The node goes on the tape when grad mode is on and
   an input needs a gradient. Returns the node (out is node->out), or NULL on error. */
static sdl_node *sdl__op_begin(sdl_op op, sdl_shape out_shape, sdl_tensor *a, sdl_tensor *b,
                               sdl_tensor *c, sdl_tensor *d) {
    sdl_node *n = (sdl_node *)sdl_arena_alloc(sizeof(sdl_node));
    if (!n) return NULL;
    n->op = op;
    sdl_tensor *ins[4] = {a, b, c, d};
    for (int i = 0; i < 4 && ins[i]; i++) {
        if (!sdl__ready(ins[i])) return NULL;
        if (ins[i]->device != a->device) {
            sdl_fail(SDL_ERR_DEVICE, "op %d: inputs on different devices (%d and %d)", (int)op, (int)a->device, (int)ins[i]->device);
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
        for (int i = 0; i < n->nin; i++) {
            sdl_tensor *p = n->in[i];
            if (p->model && p->first_use_tape != sdl__g.tape_id + 1) { /* +1: 0 means never */
                p->first_use_tape = sdl__g.tape_id + 1;
                p->first_use = n; /* the earliest reader: its backward is p's last */
            }
        }
    }
    return n;
}

/* SDL_PROFILE=1: time per op type (see >>profile); one branch when off */
static int sdl__prof_on;
static void sdl__prof_add(sdl_op op, int backward, double seconds);

/* runs the node's forward kernel on its device; returns out or NULL */
static sdl_tensor *sdl__op_run(sdl_node *n) {
    if (!n) return NULL;
    const sdl_backend *be = sdl_get_backend(n->out->device);
    sdl_kernel_fn fn = be ? be->forward[n->op] : NULL;
    if (!fn) {
        sdl_fail(SDL_ERR_DEVICE, "op %d has no kernel on device %d", (int)n->op, (int)n->out->device);
        return NULL;
    }
    if (sdl__prof_on) {
        double t0 = sdl_now();
        fn(n);
        sdl__prof_add(n->op, 0, sdl_now() - t0);
    } else {
        fn(n);
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

SDL_API sdl_result sdl_backward(sdl_tensor *loss) {
    if (!loss) return sdl_fail(SDL_ERR_ARG, "backward: loss is NULL (an earlier op failed: %s)", sdl__err_msg);
    if (loss->numel != 1) return (sdl__shape_error("backward", "loss must be a scalar", loss, NULL), SDL_ERR_SHAPE);
    if (!loss->requires_grad) return sdl_fail(SDL_ERR_STATE, "backward: loss does not depend on anything that needs a gradient");
    float *g = sdl__grad(loss);
    if (!g) return sdl__err_code;
    if (loss->device == SDL_CPU) {
        g[0] += 1.0f;
    } else { /* the loss gradient is fresh zeroed memory on the device: writing 1 adds 1 */
        const float one = 1.0f;
        sdl_get_backend(loss->device)->copy(g, &one, sizeof one, loss->device, SDL_CPU);
    }
    for (sdl_node *n = sdl__g.tape; n; n = n->prev) {
        if (n->out->grad) {
            const sdl_backend *be = sdl_get_backend(n->out->device);
            if (!be->backward[n->op]) return sdl_fail(SDL_ERR_DEVICE, "op %d has no backward on device %d", (int)n->op, (int)n->out->device);
            if (!sdl__grad_prepare(n, be->grad_overwrite[n->op] != 0)) return sdl__err_code;
            if (sdl__prof_on) {
                double t0 = sdl_now();
                be->backward[n->op](n);
                sdl__prof_add(n->op, 1, sdl_now() - t0);
            } else {
                be->backward[n->op](n);
            }
        }
        for (int i = 0; i < n->nin; i++) { /* parameters whose last contribution this was */
            sdl_tensor *p = n->in[i];
            if (p->model && p->first_use == n && p->model->grad_hook) {
                p->first_use = NULL;
                p->model->grad_hook(p->model->grad_hook_user, p->model, p->param_index);
            }
        }
    }
    sdl__g.tape = NULL;
    sdl__g.tape_id++;
    return SDL_OK;
}

/* >>cpu-ops: kernels beside their backward. Shapes and the derivative above each pair. */

/* ---- activation epilogues (sdl_act), for any op whose output is y = f(z):
   forward applies f to z in place; backward turns dy into dz = f'(z) dy, computed from y,
   so the op's own backward then runs on dz as if there were no activation. */
static void sdl__act_epilogue_fwd(int act, float *y, int64_t n) {
    if (act == SDL_ACT_RELU)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}
/* dz (rows x cols) from dy and y; with db, also db[c] (=, or += unless fresh) sum_r dz[r][c],
   in row order as the plain bias loop adds */
static void sdl__act_epilogue_bwd(int act, const float *y, const float *dy, float *dz, int64_t rows, int64_t cols,
                                  float *db, bool db_fresh) {
    SDL__UNUSED(act); /* SDL_ACT_RELU, the only one so far */
    if (db && db_fresh) memset(db, 0, (size_t)cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float *SDL_RESTRICT yr = y + r * cols, *SDL_RESTRICT dyr = dy + r * cols;
        float *SDL_RESTRICT dzr = dz + r * cols;
        for (int64_t c = 0; c < cols; c++) dzr[c] = yr[c] > 0.0f ? dyr[c] : 0.0f;
        if (db) {
            float *SDL_RESTRICT d = db;
            for (int64_t c = 0; c < cols; c++) d[c] += dzr[c];
        }
    }
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
static void sdl__relu_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]);
    float *y = sdl_f32(n->out);
    for (int64_t i = 0; i < n->out->numel; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
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

static void sdl__add_fwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b);
    float *y = sdl_f32(n->out);
    if (a->numel == b->numel) { for (int64_t i = 0; i < a->numel; i++) y[i] = pa[i] + pb[i]; return; }
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) y[i] = pa[i] + pb[sdl__bcast_index(&bc, i)];
}
static void sdl__add_bwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *dy = n->out->grad;
    if (a->requires_grad) for (int64_t i = 0; i < a->numel; i++) a->grad[i] += dy[i];
    if (!b->requires_grad) return;
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) b->grad[sdl__bcast_index(&bc, i)] += dy[i];
}
static void sdl__mul_fwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b);
    float *y = sdl_f32(n->out);
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) y[i] = pa[i] * pb[sdl__bcast_index(&bc, i)];
}
static void sdl__mul_bwd(sdl_node *n) {
    sdl_tensor *a = n->in[0], *b = n->in[1];
    const float *pa = sdl_f32(a), *pb = sdl_f32(b), *dy = n->out->grad;
    sdl__bcast bc = sdl__bcast_make(a, b);
    for (int64_t i = 0; i < a->numel; i++) {
        int64_t j = sdl__bcast_index(&bc, i);
        if (a->requires_grad) a->grad[i] += dy[i] * pb[j];
        if (b->requires_grad) b->grad[j] += dy[i] * pa[i];
    }
}
static sdl_tensor *sdl__binary(sdl_op op, const char *name, sdl_tensor *a, sdl_tensor *b) {
    if (sdl__any_null(a, b)) return NULL;
    if (!sdl__broadcastable(a, b)) return (sdl_tensor *)sdl__shape_error(name, "b does not broadcast to a", a, b);
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
    t->node = NULL;
    t->ndim = shape.ndim;
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

/* >>cpu-ops-more (see the anchors below: each group of ops has its own section) */

/* ---- cross entropy from logits (B, C), targets i32 (B), smoothing s:
   q = (1-s) onehot(t) + s/C;  loss = mean_b -sum_c q_c log softmax(x)_c
   dlogits_bc += (softmax(x)_bc - q_bc) / B */
static void sdl__ce_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->numel / (B ? B : 1);
    const int32_t *t = sdl_i32(n->in[1]);
    float s = n->attr.scalar.alpha;
    float *prob = (float *)n->saved;
    double total = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const float *row = sdl_f32(x) + b * C;
        float *p = prob + b * C;
        float mx = row[0];
        for (int64_t c = 1; c < C; c++) mx = row[c] > mx ? row[c] : mx;
        double z = 0.0;
        for (int64_t c = 0; c < C; c++) z += exp((double)row[c] - mx);
        double logz = mx + log(z), lsum = 0.0;
        for (int64_t c = 0; c < C; c++) {
            double logp = row[c] - logz;
            p[c] = (float)exp(logp);
            lsum += logp;
        }
        total += -(1.0 - s) * (row[t[b]] - logz) - (double)s / (double)C * lsum;
    }
    sdl_f32(n->out)[0] = (float)(total / (double)(B ? B : 1));
}
static void sdl__ce_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    int64_t B = x->shape[0], C = x->numel / (B ? B : 1);
    const int32_t *t = sdl_i32(n->in[1]);
    float s = n->attr.scalar.alpha, g = n->out->grad[0] / (float)(B ? B : 1);
    const float *prob = (const float *)n->saved;
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            float q = s / (float)C + (c == t[b] ? 1.0f - s : 0.0f);
            x->grad[b * C + c] += g * (prob[b * C + c] - q);
        }
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

/* ---- mse: loss = mean (x - t)^2;  dx += 2 (x - t) / n */
static void sdl__mse_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]), *t = sdl_f32(n->in[1]);
    double s = 0.0;
    for (int64_t i = 0; i < n->in[0]->numel; i++) s += ((double)x[i] - t[i]) * ((double)x[i] - t[i]);
    sdl_f32(n->out)[0] = (float)(s / (double)(n->in[0]->numel ? n->in[0]->numel : 1));
}
static void sdl__mse_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0];
    const float *t = sdl_f32(n->in[1]);
    float g = 2.0f * n->out->grad[0] / (float)(x->numel ? x->numel : 1);
    for (int64_t i = 0; i < x->numel; i++) x->grad[i] += g * (sdl_f32(x)[i] - t[i]);
}
SDL_API sdl_tensor *sdl_mse_loss(sdl_tensor *x, sdl_tensor *targets) {
    if (sdl__any_null(x, targets)) return NULL;
    if (x->numel != targets->numel) return (sdl_tensor *)sdl__shape_error("mse_loss", "input and target sizes differ", x, targets);
    return sdl__op_run(sdl__op_begin(SDL_OP_MSE, sdl_shapen(0, NULL), x, targets, NULL, NULL));
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

/* ---- Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
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
static int64_t sdl__wino_tiles = 288; /* tiles per group: 2 samples of 24x24 outputs (tests make it small) */
static int sdl__conv_algo = 0; /* 0: Winograd where it pays; 1: im2col only; 2: Winograd wherever it applies (tests) */

static bool sdl__wino_applies(const sdl__conv_job *j) {
    if (j->transpose || j->g.KH != 3 || j->g.KW != 3 || j->g.sh != 1 || j->g.sw != 1 || sdl__conv_algo == 1) return false;
    /* fewer channels: the GEMMs' K (C_in forward, C_out for dx) is too short to pay for the
       transforms (measured: C_in = 8 gains forward, loses more backward) */
    return sdl__conv_algo == 2 || (j->g.C >= 16 && j->O >= 16);
}

/* U[e][o][c] = (G w[o][c] G^T)[e] */
static void sdl__wino_filter(const float *w, int64_t O, int64_t C, float *U) {
    for (int64_t oc = 0; oc < O * C; oc++) {
        const float *g = w + oc * 9;
        float t[4][3], u[4][4];
        for (int k = 0; k < 3; k++) {
            t[0][k] = g[k];
            t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
            t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
            t[3][k] = g[6 + k];
        }
        for (int i = 0; i < 4; i++) {
            u[i][0] = t[i][0];
            u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            u[i][3] = t[i][2];
        }
        for (int e = 0; e < 16; e++) U[e * O * C + oc] = u[e / 4][e % 4];
    }
}
/* dw[o][c] += G^T dU[.][o][c] G (dU stored (16, C, O) when trans) */
static void sdl__wino_filter_grad(const float *dU, int64_t O, int64_t C, bool trans, float *dw) {
    for (int64_t oc = 0; oc < O * C; oc++) {
        float u[4][4], s[3][4];
        int64_t at = trans ? (oc % C) * O + oc / C : oc;
        for (int e = 0; e < 16; e++) u[e / 4][e % 4] = dU[e * O * C + at];
        for (int k = 0; k < 4; k++) {
            s[0][k] = u[0][k] + 0.5f * (u[1][k] + u[2][k]);
            s[1][k] = 0.5f * (u[1][k] - u[2][k]);
            s[2][k] = 0.5f * (u[1][k] + u[2][k]) + u[3][k];
        }
        float *g = dw + oc * 9;
        for (int i = 0; i < 3; i++) {
            g[i * 3 + 0] += s[i][0] + 0.5f * (s[i][1] + s[i][2]);
            g[i * 3 + 1] += 0.5f * (s[i][1] - s[i][2]);
            g[i * 3 + 2] += 0.5f * (s[i][1] + s[i][2]) + s[i][3];
        }
    }
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
static sdl__wm sdl__wmask(int64_t n) { return (sdl__wm)(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u); }
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
static sdl__wm sdl__wmask(int64_t n) { return n > 0; }
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
static void sdl__deinterleave(const float *s, int64_t n, float *e, float *o) {
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
static void sdl__interleave(float *d, int64_t n, const float *e, const float *o, float bias, bool add) {
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
        if (whole) sdl__interleave(dxc, g->H * g->W, PE + g->ph * TW1, PO + g->ph * TW1, 0.0f, true);
        else
            for (int64_t ih = 0; ih < g->H; ih++) {
                const float *pe = PE + (ih + g->ph) * TW1, *po = PO + (ih + g->ph) * TW1;
                if (g->pw & 1) sdl__interleave(dxc + ih * g->W, g->W, po + po0, pe + pe0, 0.0f, true);
                else sdl__interleave(dxc + ih * g->W, g->W, pe + pe0, po + po0, 0.0f, true);
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
    j->wbuf = (float *)sdl_arena_alloc(total * sizeof(float));
    j->U = (float *)sdl_arena_alloc(uo * sizeof(float));
    if (!j->wbuf || !j->U) return false;
    sdl__wino_filter(sdl_f32(j->n->in[1]), O, C, j->U);
    if (backward) {
        int64_t Cb = j->n->nin > 2 ? j->n->in[2]->numel : 0;
        j->dU = (float *)sdl_arena_alloc((size_t)j->ngroups * (uo + (size_t)Cb) * sizeof(float));
        if (!j->dU) return false;
        j->bpart = j->dU + (size_t)j->ngroups * uo;
    }
    return true;
}

/* after the parts: dU summed over the groups in order, then dw += G^T dU G; db likewise */
static void sdl__wino_bwd_finish(sdl__conv_job *j) {
    sdl_tensor *w = j->n->in[1], *b = j->n->nin > 2 ? j->n->in[2] : NULL;
    const int64_t uo = 16 * j->O * j->g.C;
    if (w->requires_grad) {
        for (int64_t grp = 1; grp < j->ngroups; grp++) sdl__vadd(j->dU, j->dU + grp * uo, uo);
        sdl__wino_filter_grad(j->dU, j->O, j->g.C, j->g.C < j->O, w->grad);
    }
    if (b && b->requires_grad)
        for (int64_t grp = 0; grp < j->ngroups; grp++)
            for (int64_t o = 0; o < j->O; o++) b->grad[o] += j->bpart[grp * j->O + o];
}

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
    j->scratch = (float *)sdl_arena_alloc(total * sizeof(float));
    if (!j->scratch) return false;
    if (backward) {
        int64_t Cb = n->nin > 2 ? n->in[2]->numel : 0;
        j->wpart = (float *)sdl_arena_alloc((size_t)(j->nchunks * (j->O * j->Kc + Cb)) * sizeof(float));
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

/* ---- pooling over each (n, c) plane: x (N, C, H, W) -> y (N, C, OH, OW)
   max: y = max over the window (padding never wins), forward keeps the arg-max (first
        of ties, like PyTorch); dx[argmax] += dy
   avg: y = sum over the window / (kh*kw) (padding counts, PyTorch's count_include_pad);
        dx += dy / (kh*kw) over the window */
typedef struct sdl__pool_job { sdl_node *n; int64_t H, W, OH, OW; int k, s, p; } sdl__pool_job;

static void sdl__pool_planes(void *ctx, int64_t p0, int64_t p1, bool backward) {
    const sdl__pool_job *j = (const sdl__pool_job *)ctx;
    sdl_node *n = j->n;
    const bool is_max = n->op == SDL_OP_MAX_POOL2D;
    const int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW, k = j->k, st = j->s, pd = j->p;
    const float inv = 1.0f / (float)(k * k);
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = sdl_f32(n->in[0]) + pl * H * W;
        float *dx = backward ? n->in[0]->grad + pl * H * W : NULL;
        float *y = sdl_f32(n->out) + pl * OH * OW;
        const float *dy = backward ? n->out->grad + pl * OH * OW : NULL;
        int32_t *arg = is_max ? (int32_t *)n->saved + pl * OH * OW : NULL;
        if (is_max && backward) {
            for (int64_t o = 0; o < OH * OW; o++) dx[arg[o]] += dy[o];
            continue;
        }
        int64_t oh = 0;
        if (is_max && k == 2 && st == 2 && pd == 0) /* the common 2x2/2 window, row by row */
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
            if (h0 < 0) h0 = 0;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * st - pd, w1 = w0 + k < W ? w0 + k : W, o = oh * OW + ow;
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
static void sdl__pool_bwd(sdl_node *n) { sdl__pool_run(n, true); }

static sdl_tensor *sdl__pool_common(const char *name, sdl_op op, sdl_tensor *x, int kernel, int stride, int pad) {
    if (!x) return NULL;
    if (x->ndim != 4) return (sdl_tensor *)sdl__shape_error(name, "wants (N, C, H, W)", x, NULL);
    if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel) {
        sdl_fail(SDL_ERR_ARG, "%s: kernel %d, stride %d, pad %d: need kernel, stride >= 1 and 0 <= pad <= kernel/2",
                 name, kernel, stride, pad);
        return NULL;
    }
    int64_t oh = x->shape[2] + 2 * pad - kernel, ow = x->shape[3] + 2 * pad - kernel;
    if (oh < 0 || ow < 0) return (sdl_tensor *)sdl__shape_error(name, "window larger than the padded input", x, NULL);
    sdl_node *n = sdl__op_begin(op, sdl_shape4(x->shape[0], x->shape[1], oh / stride + 1, ow / stride + 1), x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.pool.kernel_h = n->attr.pool.kernel_w = kernel;
    n->attr.pool.stride_h = n->attr.pool.stride_w = stride;
    n->attr.pool.pad_h = n->attr.pool.pad_w = pad;
    if (op == SDL_OP_MAX_POOL2D && !sdl__saved(n, (size_t)n->out->numel * sizeof(int32_t))) return NULL;
    return sdl__op_run(n);
}
SDL_API sdl_tensor *sdl_max_pool2d(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("max_pool2d", SDL_OP_MAX_POOL2D, x, kernel, stride, pad);
}
SDL_API sdl_tensor *sdl_avg_pool2d(sdl_tensor *x, int kernel, int stride, int pad) {
    return sdl__pool_common("avg_pool2d", SDL_OP_AVG_POOL2D, x, kernel, stride, pad);
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
    for (int64_t c = c0; c < c1; c++) {
        double mu, var;
        if (n->attr.norm.training) {
            double s = 0.0, v = 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < S; j++) s += x[(i * C + c) * S + j];
            mu = s / (double)M;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < S; j++) {
                    double d = x[(i * C + c) * S + j] - mu;
                    v += d * d;
                }
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
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < S; j++) {
                int64_t k = (i * C + c) * S + j;
                sdy += dy[k];
                sdyx += (double)dy[k] * ((x[k] - mc) * rc);
            }
        if (gt && gt->requires_grad) gt->grad[c] += (float)sdyx;
        if (bt && bt->requires_grad) bt->grad[c] += (float)sdy;
        if (!xt->requires_grad) continue;
        float k0 = gt ? sdl_f32(gt)[c] * rc : rc;
        float a = n->attr.norm.training ? (float)(sdy / (double)M) : 0.0f;
        float bb = n->attr.norm.training ? (float)(sdyx / (double)M) : 0.0f;
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
static void sdl__bn_fwd(sdl_node *n) {
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    sdl_parallel_for(C, sdl__ops_grain(N * S * 4), sdl__bn_fwd_range, n);
}
static void sdl__bn_bwd(sdl_node *n) {
    int64_t N, C, S;
    sdl__bn_dims(n->in[0], &N, &C, &S);
    sdl_parallel_for(C, sdl__ops_grain(N * S * 6), sdl__bn_bwd_range, n);
}

/* a per-feature vector: NULL, or f32 (C) on x's device */
static bool sdl__norm_vec_ok(const sdl_tensor *v, int64_t C, const sdl_tensor *x) {
    return !v || (v->ndim == 1 && v->shape[0] == C && v->dtype == SDL_F32 && v->device == x->device);
}

SDL_API sdl_tensor *sdl_batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps) {
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
    return sdl__saved(n, 2 * (size_t)C * sizeof(float)) ? sdl__op_run(n) : NULL;
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

/* ---- dropout (inverted): keep_i = u_i >= p with u_i = hash(seed, stream, i) uniform in [0, 1);
   y = keep ? x / (1 - p) : 0;  dx += keep ? dy / (1 - p) : 0. The mask is a pure function of
   (seed, stream, i): backward recomputes it, and it is the same for any thread count. Each
   call takes a fresh stream from the global RNG, so a seed fixes every mask of a run. */
static void sdl__dropout_range(void *ctx, int64_t i0, int64_t i1, bool bwd) {
    sdl_node *n = (sdl_node *)ctx;
    float p = n->attr.dropout.p, scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; /* p = 1 keeps nothing */
    uint64_t seed = n->attr.dropout.seed, stream = n->attr.dropout.stream;
    const float *x = sdl_f32(n->in[0]), *dy = n->out->grad;
    float *y = sdl_f32(n->out), *dx = n->in[0]->grad;
    for (int64_t i = i0; i < i1; i++) {
        bool keep = sdl_hash_uniform(seed, stream, (uint64_t)i) >= p;
        if (bwd) dx[i] += keep ? dy[i] * scale : 0.0f;
        else y[i] = keep ? x[i] * scale : 0.0f;
    }
}
static void sdl__dropout_fwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__dropout_range(ctx, i0, i1, false); }
static void sdl__dropout_bwd_range(void *ctx, int64_t i0, int64_t i1) { sdl__dropout_range(ctx, i0, i1, true); }
static void sdl__dropout_fwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 8192, sdl__dropout_fwd_range, n); }
static void sdl__dropout_bwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 8192, sdl__dropout_bwd_range, n); }
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
    int64_t D = n->in[1]->shape[1], R = n->in[0]->numel;
    const int32_t *ids = sdl_i32(n->in[0]);
    const float *dy = n->out->grad;
    float *dt = n->in[1]->grad;
    for (int64_t r = 0; r < R; r++) {
        float *row = dt + (int64_t)ids[r] * D;
        for (int64_t d = d0; d < d1; d++) row[d] += dy[r * D + d];
    }
}
static void sdl__emb_fwd(sdl_node *n) { sdl_parallel_for(n->in[0]->numel, sdl__ops_grain(n->in[1]->shape[1]), sdl__emb_fwd_range, n); }
static void sdl__emb_bwd(sdl_node *n) {
    if (n->in[1]->requires_grad) sdl_parallel_for(n->in[1]->shape[1], sdl__ops_grain(n->in[0]->numel), sdl__emb_bwd_range, n);
}
SDL_API sdl_tensor *sdl_embedding(sdl_tensor *ids, sdl_tensor *table) {
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
    return sdl__op_run(sdl__op_begin(SDL_OP_EMBEDDING, s, ids, table, NULL, NULL));
}

/* >>ops-act (leaky_relu, gelu, tanh, sigmoid, silu, softmax, log_softmax, scale) */

/* ---- elementwise: y = f(x);  dx += f'(x) dy
   leaky_relu  f = x > 0 ? x : a x                      f' = x > 0 ? 1 : a
   gelu (tanh) f = x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
               f' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 0.044715 x^2)
   tanh        f' = 1 - y^2
   sigmoid     f = 1/(1 + e^-x) (written so no exp overflows)   f' = y (1 - y)
   silu        f = x sigmoid(x)                         f' = s (1 + x (1 - s)), s = sigmoid(x)
   scale       f = a x                                  f' = a */
#define SDL__GELU_C 0.7978845608028654f /* sqrt(2/pi) */
/* tanh u = 1 - 2/(1 + e^2u): one expf, several times faster than tanhf, absolute error ~1e-7
   (fine inside gelu; sdl_tanh itself uses tanhf) */
static float sdl__gelu_tanh(float u) { return 1.0f - 2.0f / (1.0f + expf(2.0f * u)); }
static float sdl__act_sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
static void sdl__act_fwd_range(void *ctx, int64_t i0, int64_t i1) {
    sdl_node *n = (sdl_node *)ctx;
    const float *x = sdl_f32(n->in[0]);
    float *y = sdl_f32(n->out), a = n->attr.scalar.alpha;
    int64_t i;
    switch (n->op) {
    case SDL_OP_LEAKY_RELU: for (i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : a * x[i]; break;
    case SDL_OP_GELU:
        for (i = i0; i < i1; i++) y[i] = 0.5f * x[i] * (1.0f + sdl__gelu_tanh(SDL__GELU_C * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
        break;
    case SDL_OP_TANH: for (i = i0; i < i1; i++) y[i] = tanhf(x[i]); break;
    case SDL_OP_SIGMOID: for (i = i0; i < i1; i++) y[i] = sdl__act_sigmoid(x[i]); break;
    case SDL_OP_SILU: for (i = i0; i < i1; i++) y[i] = x[i] * sdl__act_sigmoid(x[i]); break;
    default: /* SDL_OP_SCALE */ for (i = i0; i < i1; i++) y[i] = a * x[i]; break;
    }
}
static void sdl__act_bwd_range(void *ctx, int64_t i0, int64_t i1) {
    sdl_node *n = (sdl_node *)ctx;
    const float *x = sdl_f32(n->in[0]), *y = sdl_f32(n->out), *dy = n->out->grad;
    float *dx = n->in[0]->grad, a = n->attr.scalar.alpha;
    int64_t i;
    switch (n->op) {
    case SDL_OP_LEAKY_RELU: for (i = i0; i < i1; i++) dx[i] += x[i] > 0.0f ? dy[i] : a * dy[i]; break;
    case SDL_OP_GELU:
        for (i = i0; i < i1; i++) {
            float x2 = x[i] * x[i], t = sdl__gelu_tanh(SDL__GELU_C * (x[i] + 0.044715f * x2 * x[i]));
            dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * SDL__GELU_C * (1.0f + 3.0f * 0.044715f * x2));
        }
        break;
    case SDL_OP_TANH: for (i = i0; i < i1; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]); break;
    case SDL_OP_SIGMOID: for (i = i0; i < i1; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]); break;
    case SDL_OP_SILU:
        for (i = i0; i < i1; i++) {
            float s = sdl__act_sigmoid(x[i]);
            dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    default: for (i = i0; i < i1; i++) dx[i] += a * dy[i]; break;
    }
}
static void sdl__act_fwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 8192, sdl__act_fwd_range, n); }
static void sdl__act_bwd(sdl_node *n) { sdl_parallel_for(n->out->numel, 8192, sdl__act_bwd_range, n); }
static sdl_tensor *sdl__act(sdl_op op, sdl_tensor *x, float alpha) {
    if (!x) return NULL;
    sdl_node *n = sdl__op_begin(op, sdl_tensor_shape(x), x, NULL, NULL, NULL);
    if (!n) return NULL;
    n->attr.scalar.alpha = alpha;
    return sdl__op_run(n);
}
SDL_API sdl_tensor *sdl_leaky_relu(sdl_tensor *x, float slope) { return sdl__act(SDL_OP_LEAKY_RELU, x, slope); }
SDL_API sdl_tensor *sdl_gelu(sdl_tensor *x) { return sdl__act(SDL_OP_GELU, x, 0.0f); }
SDL_API sdl_tensor *sdl_tanh(sdl_tensor *x) { return sdl__act(SDL_OP_TANH, x, 0.0f); }
SDL_API sdl_tensor *sdl_sigmoid(sdl_tensor *x) { return sdl__act(SDL_OP_SIGMOID, x, 0.0f); }
SDL_API sdl_tensor *sdl_silu(sdl_tensor *x) { return sdl__act(SDL_OP_SILU, x, 0.0f); }
SDL_API sdl_tensor *sdl_scale(sdl_tensor *x, float s) { return sdl__act(SDL_OP_SCALE, x, s); }

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

/* >>ops-loss (nll, bce_with_logits) */

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
    for (int64_t i = 0; i < N; i++)
        s += (x[i] > 0.0f ? x[i] : 0.0f) - (double)x[i] * t[i] + log1p(exp(-fabs((double)x[i])));
    sdl_f32(n->out)[0] = (float)(s / (double)(N ? N : 1));
}
static void sdl__bce_bwd(sdl_node *n) {
    sdl_tensor *xt = n->in[0], *tt = n->in[1];
    const float *x = sdl_f32(xt), *t = sdl_f32(tt);
    int64_t N = xt->numel;
    float g = n->out->grad[0] / (float)(N ? N : 1);
    for (int64_t i = 0; i < N; i++) {
        if (xt->requires_grad) xt->grad[i] += g * (sdl__act_sigmoid(x[i]) - t[i]);
        if (tt->requires_grad) tt->grad[i] -= g * x[i];
    }
}
SDL_API sdl_tensor *sdl_bce_with_logits(sdl_tensor *logits, sdl_tensor *targets) {
    if (sdl__any_null(logits, targets)) return NULL;
    if (!sdl_shape_equal(sdl_tensor_shape(logits), sdl_tensor_shape(targets)) || targets->dtype != SDL_F32)
        return (sdl_tensor *)sdl__shape_error("bce_with_logits", "wants float targets shaped like the logits", logits, targets);
    return sdl__op_run(sdl__op_begin(SDL_OP_BCE_LOGITS, sdl_shapen(0, NULL), logits, targets, NULL, NULL));
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
#define SDL__KERNEL(op, f, b) (be->forward[op] = f, be->backward[op] = b)
    SDL__KERNEL(SDL_OP_LINEAR, sdl__linear_fwd, sdl__linear_bwd);
    SDL__KERNEL(SDL_OP_RELU, sdl__relu_fwd, sdl__relu_bwd);
    be->grad_overwrite[SDL_OP_LINEAR] = be->grad_overwrite[SDL_OP_RELU] = 1;
    SDL__KERNEL(SDL_OP_ADD, sdl__add_fwd, sdl__add_bwd);
    SDL__KERNEL(SDL_OP_MUL, sdl__mul_fwd, sdl__mul_bwd);
    SDL__KERNEL(SDL_OP_SUM, sdl__sum_fwd, sdl__sum_bwd);
    SDL__KERNEL(SDL_OP_MEAN, sdl__sum_fwd, sdl__sum_bwd);
    SDL__KERNEL(SDL_OP_CROSS_ENTROPY, sdl__ce_fwd, sdl__ce_bwd);
    SDL__KERNEL(SDL_OP_MSE, sdl__mse_fwd, sdl__mse_bwd);
    /* >>cpu-table-conv */
    sdl__profile_init();
    SDL__KERNEL(SDL_OP_CONV2D, sdl__conv_fwd, sdl__conv_bwd);
    SDL__KERNEL(SDL_OP_CONV_TRANSPOSE2D, sdl__conv_fwd, sdl__conv_bwd);
    SDL__KERNEL(SDL_OP_MAX_POOL2D, sdl__pool_fwd, sdl__pool_bwd);
    SDL__KERNEL(SDL_OP_AVG_POOL2D, sdl__pool_fwd, sdl__pool_bwd);
    SDL__KERNEL(SDL_OP_GLOBAL_AVG_POOL, sdl__gap_fwd, sdl__gap_bwd);

    /* >>cpu-table-norm */
    SDL__KERNEL(SDL_OP_BATCH_NORM, sdl__bn_fwd, sdl__bn_bwd);
    SDL__KERNEL(SDL_OP_LAYER_NORM, sdl__ln_fwd, sdl__ln_bwd);
    SDL__KERNEL(SDL_OP_DROPOUT, sdl__dropout_fwd, sdl__dropout_bwd);
    SDL__KERNEL(SDL_OP_EMBEDDING, sdl__emb_fwd, sdl__emb_bwd);

    /* >>cpu-table-act */
    SDL__KERNEL(SDL_OP_LEAKY_RELU, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_GELU, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_TANH, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_SIGMOID, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_SILU, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_SCALE, sdl__act_fwd, sdl__act_bwd);
    SDL__KERNEL(SDL_OP_SOFTMAX, sdl__softmax_fwd, sdl__softmax_bwd);
    SDL__KERNEL(SDL_OP_LOG_SOFTMAX, sdl__softmax_fwd, sdl__softmax_bwd);

    /* >>cpu-table-shape */
    SDL__KERNEL(SDL_OP_CONCAT, sdl__concat_fwd, sdl__concat_bwd);
    SDL__KERNEL(SDL_OP_TRANSPOSE, sdl__transpose_fwd, sdl__transpose_bwd);
    SDL__KERNEL(SDL_OP_ATTENTION, sdl__attn_fwd, sdl__attn_bwd);

    /* >>cpu-table-loss */
    SDL__KERNEL(SDL_OP_NLL, sdl__nll_fwd, sdl__nll_bwd);
    SDL__KERNEL(SDL_OP_BCE_LOGITS, sdl__bce_fwd, sdl__bce_bwd);

#undef SDL__KERNEL
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
        memcpy(base + off, ts[i]->data, (size_t)ts[i]->numel * sizeof(float));
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
    memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
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
    if (sdl__model_device(m) != SDL_CPU) {
        const sdl_backend *be = sdl_get_backend(sdl__model_device(m));
        if (!be) return;
        be->memset0(m->grad_data, (size_t)m->param_floats * sizeof(float));
    } else {
        memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
    }
    sdl__grads_zeroed(m);
}

SDL_API void sdl_model_train(sdl_model *m, bool training) { if (m) m->training = training; }

SDL_API void sdl_model_set_grad_hook(sdl_model *m, sdl_grad_hook hook, void *user) {
    if (!m) return;
    m->grad_hook = hook;
    m->grad_hook_user = user;
}

/* ----------------------------------------------------------------------------------------
   >>layers: modules made on a model
   ---------------------------------------------------------------------------------------- */
SDL_API sdl_module *sdl_module_new(sdl_model *m, const char *kind, const char *name, sdl_forward_fn fwd) {
    if (!m) { sdl_fail(SDL_ERR_ARG, "module_new: NULL model"); return NULL; }
    sdl_module *l = (sdl_module *)sdl__calloc(1, sizeof(sdl_module));
    if (!l) return NULL;
    if (!sdl__push_ptr((void ***)&m->modules, &m->nmodules, l)) { SDL_DEALLOC(l); return NULL; }
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    l->forward = fwd;
    l->model = m;
    return l;
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

/* pooling layers: stride 0 means stride = kernel (PyTorch's default); no padding */
static sdl_tensor *sdl__maxpool_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_max_pool2d(x, l->kernel, l->stride, l->pad); }
static sdl_tensor *sdl__avgpool_layer_fwd(sdl_module *l, sdl_tensor *x) { return sdl_avg_pool2d(x, l->kernel, l->stride, l->pad); }
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
static sdl_tensor *sdl__tanh_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_tanh(x); }
SDL_API sdl_module *sdl_tanh_layer(sdl_model *m) { return sdl_module_new(m, "tanh", "", sdl__tanh_layer_fwd); }
static sdl_tensor *sdl__sigmoid_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_sigmoid(x); }
SDL_API sdl_module *sdl_sigmoid_layer(sdl_model *m) { return sdl_module_new(m, "sigmoid", "", sdl__sigmoid_layer_fwd); }
static sdl_tensor *sdl__silu_layer_fwd(sdl_module *l, sdl_tensor *x) { SDL__UNUSED(l); return sdl_silu(x); }
SDL_API sdl_module *sdl_silu_layer(sdl_model *m) { return sdl_module_new(m, "silu", "", sdl__silu_layer_fwd); }

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
        float g = u->trust * (u->g[j] + u->wd * u->p[j]);
        if (u->m) {
            u->m[j] = first ? g : mu * u->m[j] + g;
            g = nesterov ? g + mu * u->m[j] : u->m[j];
        }
        u->p[j] -= u->lr * g;
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
        float g = u->g[j];
        if (decoupled) u->p[j] *= shrink;
        else g += u->wd * u->p[j];
        u->m[j] = b1 * u->m[j] + (1.0f - b1) * g;
        u->v[j] = b2 * u->v[j] + (1.0f - b2) * g * g;
        u->p[j] -= step_size * u->m[j] / (sqrtf(u->v[j]) / sqrt_bc2 + eps);
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
        float g = u->g[j];
        u->m[j] = b1 * u->m[j] + (1.0f - b1) * g;
        u->v[j] = b2 * u->v[j] + (1.0f - b2) * g * g;
        float r = (u->m[j] / u->bc1) / (sqrtf(u->v[j] / u->bc2) + eps) + u->wd * u->p[j];
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

/* one update of every parameter tensor, each split over the threads by index */
static void sdl__optim_update(sdl_optim *o) {
    sdl_model *m = o->model;
    const sdl_optim_desc *d = &o->desc;
    const int64_t grain = 1 << 15;
    double t = (double)(o->step + 1);
    for (int i = 0; i < m->nparams; i++) {
        int64_t off = m->param_offset[i], n = m->params[i]->numel;
        bool decay = m->params[i]->decay;
        sdl__update u;
        u.o = o;
        u.p = m->param_data + off;
        u.g = m->grad_data + off;
        u.m = o->nstate > 0 ? o->state + off : NULL;
        u.v = o->nstate > 1 ? o->state + m->param_floats + off : NULL;
        u.lr = o->lr;
        u.wd = decay ? d->weight_decay : 0.0f;
        u.trust = 1.0f;
        u.bc1 = (float)(1.0 - pow((double)d->beta1, t));
        u.bc2 = (float)(1.0 - pow((double)d->beta2, t));
        if (d->kind == SDL_OPTIM_ADAM || d->kind == SDL_OPTIM_ADAMW) {
            sdl_parallel_for(n, grain, sdl__adam_range, &u);
        } else if (d->kind == SDL_OPTIM_LAMB) {
            double sq[2];
            sdl__sum2(n, sdl__lamb_moments_range, &u, sq);
            if (decay && sq[0] > 0.0 && sq[1] > 0.0) u.trust = (float)sqrt(sq[0] / sq[1]);
            sdl_parallel_for(n, grain, sdl__lamb_apply_range, &u);
        } else {
            /* lars (You, Gitman, Ginsburg 2017; NVIDIA apex LARC without clipping):
                 trust = eta * ||p|| / (||grad|| + wd * ||p||)   (1 when either norm is 0)
               then sgd with momentum on trust * (grad + wd p), lr outside the momentum */
            if (d->kind == SDL_OPTIM_LARS && decay) {
                double sq[2];
                sdl__sum2(n, sdl__lars_norms_range, &u, sq);
                double pn = sqrt(sq[0]), gn = sqrt(sq[1]);
                if (pn > 0.0 && gn > 0.0) u.trust = (float)((double)d->trust_coef * pn / (gn + (double)u.wd * pn));
            }
            sdl_parallel_for(n, grain, sdl__sgd_range, &u);
        }
    }
}

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc) {
    if (!m || !desc) { sdl_fail(SDL_ERR_ARG, "optim_new: NULL model or desc"); return NULL; }
    sdl_optim_desc d = *desc;
    if (d.kind == SDL_OPTIM_DEFAULT) d.kind = SDL_OPTIM_SGD;
    bool adam_like = d.kind == SDL_OPTIM_ADAM || d.kind == SDL_OPTIM_ADAMW || d.kind == SDL_OPTIM_LAMB;
    d.lr = sdl__default(d.lr, adam_like ? 0.001f : 0.01f);
    d.beta1 = sdl__default(d.beta1, 0.9f);
    d.beta2 = sdl__default(d.beta2, 0.999f);
    d.eps = sdl__default(d.eps, d.kind == SDL_OPTIM_LAMB ? 1e-6f : 1e-8f);
    d.trust_coef = sdl__default(d.trust_coef, 0.001f);
    if (d.accum_steps < 1) d.accum_steps = 1;
    const char *bad = NULL;
    if ((int)d.kind < (int)SDL_OPTIM_SGD || (int)d.kind > (int)SDL_OPTIM_LAMB) bad = "kind";
    else if (!(d.lr > 0.0f)) bad = "lr (must be > 0)";
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

SDL_API int sdl_optim_state_count(const sdl_optim *o) { return o ? o->nstate : 0; }

SDL_API const char *sdl_optim_state_name(const sdl_optim *o, int k) {
    if (!o || k < 0 || k >= o->nstate) return NULL;
    if (o->desc.kind == SDL_OPTIM_SGD || o->desc.kind == SDL_OPTIM_LARS) return "momentum_buffer";
    return k == 0 ? "exp_avg" : "exp_avg_sq";
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

/* >>data */
/* ----------------------------------------------------------------------------------------
   Dataset readers. Each reads a whole file into memory, checks every header field
   and size against the file before it trusts it, and names the file in each error.
   ---------------------------------------------------------------------------------------- */

/* stb_image (and stb_image_write for sdl_write_png) decode .gz/.npz deflate data, PNG and
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
#if !defined(STBI_MALLOC) && !defined(STBI_REALLOC) && !defined(STBI_FREE)
#define STBI_MALLOC(n) SDL_ALLOC(n)
#define STBI_REALLOC(p, n) SDL_REALLOC(p, n)
#define STBI_FREE(p) SDL_DEALLOC(p)
#endif
#include SDL_STB_IMAGE_PATH
#undef STB_IMAGE_IMPLEMENTATION
#undef stbi__unpremultiply_on_load_thread
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
#ifdef __cplusplus
extern "C" {
#endif

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

/* ---- .npy: "\x93NUMPY", version, header length, a Python dict literal, raw data ---- */
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

/* ---- .npz: a zip of .npy members, stored or deflated ---- */
static uint64_t sdl__le64(const uint8_t *p) { return (uint64_t)sdl__le32(p) | (uint64_t)sdl__le32(p + 4) << 32; }

SDL_API sdl_tensor *sdl_load_npz(const char *path, const char *name) {
    if (!path || !name) { sdl_fail(SDL_ERR_ARG, "load_npz: path or name is NULL"); return NULL; }
    size_t n;
    uint8_t *z = sdl__read_file(path, &n);
    if (!z) return NULL;
    sdl_tensor *t = NULL;
    uint8_t *member = NULL;
    char label[600], names[256] = "";
    size_t want = strlen(name);
    /* the end-of-central-directory record: within the last 22 + 65535 bytes */
    size_t eocd = n, cd_off, cd_size, count;
    for (size_t i = n >= 22 ? n - 22 + 1 : 0; i-- > 0 && n - i <= 22 + 65535;)
        if (!memcmp(z + i, "PK\x05\x06", 4)) { eocd = i; break; }
    if (eocd == n) { sdl_fail(SDL_ERR_FORMAT, "%s: not a zip/.npz file (no end-of-central-directory record; truncated?)", path); goto done; }
    count = sdl__le16(z + eocd + 10);
    cd_size = sdl__le32(z + eocd + 12);
    cd_off = sdl__le32(z + eocd + 16);
    if (cd_off == 0xFFFFFFFFu || count == 0xFFFF) { /* zip64: a locator just before */
        if (eocd < 20 || memcmp(z + eocd - 20, "PK\x06\x07", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: zip64 locator missing", path); goto done; }
        uint64_t z64 = sdl__le64(z + eocd - 20 + 8);
        if (z64 > n - 56 || n < 56 || memcmp(z + z64, "PK\x06\x06", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: bad zip64 end record", path); goto done; }
        count = (size_t)sdl__le64(z + z64 + 32);
        cd_size = (size_t)sdl__le64(z + z64 + 40);
        cd_off = (size_t)sdl__le64(z + z64 + 48);
    }
    if (cd_off > eocd || cd_size > eocd - cd_off) { sdl_fail(SDL_ERR_FORMAT, "%s: central directory outside the file (corrupt or truncated)", path); goto done; }
    for (size_t i = 0, p = cd_off; i < count; i++) {
        if (p + 46 > cd_off + cd_size || memcmp(z + p, "PK\x01\x02", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt central directory entry %zu", path, i); goto done; }
        uint32_t flags = sdl__le16(z + p + 8), method = sdl__le16(z + p + 10), crc = sdl__le32(z + p + 16);
        uint64_t csize = sdl__le32(z + p + 20), usize = sdl__le32(z + p + 24), loff = sdl__le32(z + p + 42);
        size_t nl = sdl__le16(z + p + 28), xl = sdl__le16(z + p + 30), cl = sdl__le16(z + p + 32);
        const uint8_t *nm = z + p + 46;
        if (p + 46 + nl + xl + cl > cd_off + cd_size) { sdl_fail(SDL_ERR_FORMAT, "%s: corrupt central directory entry %zu", path, i); goto done; }
        /* zip64 sizes and offset sit in extra field 0x0001, in this order, when 0xFFFFFFFF */
        for (size_t x = 0; x + 4 <= xl;) {
            const uint8_t *ex = nm + nl + x;
            size_t id = sdl__le16(ex), len = sdl__le16(ex + 2), q = 4;
            if (x + 4 + len > xl) break;
            if (id == 1) {
                if (usize == 0xFFFFFFFFu && q + 8 <= 4 + len) { usize = sdl__le64(ex + q); q += 8; }
                if (csize == 0xFFFFFFFFu && q + 8 <= 4 + len) { csize = sdl__le64(ex + q); q += 8; }
                if (loff == 0xFFFFFFFFu && q + 8 <= 4 + len) { loff = sdl__le64(ex + q); }
            }
            x += 4 + len;
        }
        p += 46 + nl + xl + cl;
        bool match = (nl == want && !memcmp(nm, name, want)) || (nl == want + 4 && !memcmp(nm, name, want) && !memcmp(nm + want, ".npy", 4));
        if (!match) {
            size_t k = strlen(names);
            if (k + nl + 3 < sizeof names) snprintf(names + k, sizeof names - k, "%s%.*s", k ? ", " : "", (int)nl, (const char *)nm);
            continue;
        }
        snprintf(label, sizeof label, "%s (member %.*s)", path, (int)nl, (const char *)nm);
        if (flags & 1) { sdl_fail(SDL_ERR_FORMAT, "%s: encrypted", label); goto done; }
        if (loff > cd_off || cd_off - loff < 30 || memcmp(z + loff, "PK\x03\x04", 4)) { sdl_fail(SDL_ERR_FORMAT, "%s: bad local header offset", label); goto done; }
        uint64_t data = loff + 30 + sdl__le16(z + loff + 26) + sdl__le16(z + loff + 28);
        if (data > cd_off || csize > cd_off - data) { sdl_fail(SDL_ERR_FORMAT, "%s: member data runs past the central directory (corrupt)", label); goto done; }
        if (method == 0 && csize != usize) { sdl_fail(SDL_ERR_FORMAT, "%s: stored member with sizes %llu and %llu", label, (unsigned long long)csize, (unsigned long long)usize); goto done; }
        if (method != 0 && method != 8) { sdl_fail(SDL_ERR_FORMAT, "%s: compression method %u (sdl reads stored 0 and deflate 8)", label, method); goto done; }
        if (method == 8 && (double)usize > 1032.0 * (double)csize + 64.0) { sdl_fail(SDL_ERR_FORMAT, "%s: claims %llu bytes from %llu compressed (corrupt)", label, (unsigned long long)usize, (unsigned long long)csize); goto done; }
        const uint8_t *bytes = z + data;
        if (method == 8) {
            member = (uint8_t *)SDL_ALLOC(usize ? (size_t)usize : 1);
            if (!member) { sdl_fail(SDL_ERR_OOM, "%s: out of memory for %llu bytes", label, (unsigned long long)usize); goto done; }
            if (!sdl__inflate(label, z + data, (size_t)csize, n - (size_t)(data + csize), member, (size_t)usize)) goto done;
            bytes = member;
        }
        if (sdl__crc32(0, bytes, (size_t)usize) != crc) { sdl_fail(SDL_ERR_FORMAT, "%s: CRC-32 mismatch (corrupt)", label); goto done; }
        t = sdl__npy_parse(label, bytes, (size_t)usize);
        goto done;
    }
    sdl_fail(SDL_ERR_ARG, "%s: no array named '%s' (the file holds: %s)", path, name, names);
done:
    SDL_DEALLOC(member);
    SDL_DEALLOC(z);
    return t;
}

/* ---- images: decoding (stb_image), PNG encoding (stb_image_write), folders ---- */
typedef struct sdl__buf { uint8_t *p; size_t n, cap; bool oom; } sdl__buf;

#ifndef SDL_NO_STB
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

static sdl_result sdl__write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return sdl_fail(SDL_ERR_IO, "%s: cannot open for writing", path);
    bool ok = fwrite(p, 1, n, f) == n;
    if (fclose(f) != 0) ok = false;
    return ok ? SDL_OK : sdl_fail(SDL_ERR_IO, "%s: write failed (disk full?)", path);
}

SDL_API sdl_result sdl_write_png(const char *path, const sdl_tensor *t, int nrow, float lo, float hi) {
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
    sdl__buf b;
    memset(&b, 0, sizeof b);
    sdl_result r = sdl__png_encode(path, img, (int)GW, (int)GH, (int)C, &b) ? sdl__write_all(path, b.p, b.n) : sdl_last_result();
    SDL_DEALLOC(img);
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

/* decodes an image file's bytes to CHW: *c channels (0: as stored, then set), h, w */
static uint8_t *sdl__decode_image(const char *what, const uint8_t *bytes, size_t n, int *c, int *h, int *w) {
#ifdef SDL_NO_STB
    SDL__UNUSED(bytes); SDL__UNUSED(n); SDL__UNUSED(c); SDL__UNUSED(h); SDL__UNUSED(w);
    sdl_fail(SDL_ERR_ARG, "%s: decoding images needs stb_image, and sdl was built with SDL_NO_STB", what);
    return NULL;
#else
    if (n > (size_t)INT32_MAX) { sdl_fail(SDL_ERR_FORMAT, "%s: over 2 GB", what); return NULL; }
    if (!sdl__png_check(what, bytes, n)) return NULL;
    int comp = 0;
    stbi_uc *hwc = stbi_load_from_memory(bytes, (int)n, w, h, &comp, *c);
    if (!hwc) { sdl_fail(SDL_ERR_FORMAT, "%s: cannot decode the image (stb_image: %s)", what, stbi_failure_reason()); return NULL; }
    if (*c == 0) *c = comp;
    size_t hw = (size_t)*h * (size_t)*w; /* stb caps each side at 2^24 and the product */
    uint8_t *chw = (uint8_t *)sdl__alloc(hw * (size_t)*c);
    if (chw)
        for (int k = 0; k < *c; k++)
            for (size_t i = 0; i < hw; i++) chw[(size_t)k * hw + i] = hwc[i * (size_t)*c + (size_t)k];
    stbi_image_free(hwc);
    return chw;
#endif
}

SDL_API sdl_tensor *sdl_load_image(const char *path, int channels) {
    if (!path || channels < 0 || channels > 4) { sdl_fail(SDL_ERR_ARG, "load_image: needs a path and channels 0..4"); return NULL; }
    size_t n;
    uint8_t *bytes = sdl__read_file(path, &n);
    if (!bytes) return NULL;
    int c = channels, h = 0, w = 0;
    uint8_t *chw = sdl__decode_image(path, bytes, n, &c, &h, &w);
    SDL_DEALLOC(bytes);
    if (!chw) return NULL;
    sdl_tensor *t = sdl_tensor_new(sdl_shape3(c, h, w), SDL_U8);
    if (t) memcpy(t->data, chw, (size_t)t->numel);
    SDL_DEALLOC(chw);
    return t;
}

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

static const char *const sdl__image_exts[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "ppm", "pgm", "pnm", "psd", "hdr", "pic", NULL};

SDL_API sdl_result sdl_load_image_folder(const char *dir, int channels, sdl_dataset *out) {
    static const char *const unreadable[] = {"tif", "tiff", "webp", NULL};
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
                r = sdl_fail(SDL_ERR_FORMAT, "%s/%s: stb_image reads no TIFF or WebP; convert the images to PNG", sub, files[k][i]);
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

static const char *const sdl__shard_img_exts[] = {"png", "jpg", "jpeg", "bmp", "ppm", "pgm", "tga", "gif", NULL};

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
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strchr(base, '.');
    if (!dot) return SDL_OK; /* no extension: not part of a sample */
    size_t klen = (size_t)(dot - name);
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

/* reads one shard, member by member */
static sdl_result sdl__read_shard(sdl__shard_reader *rd, const char *shard) {
    FILE *f = sdl__open_read(shard);
    if (!f) return sdl_last_result();
    long fsize = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (fsize < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return sdl_fail(SDL_ERR_IO, "%s: cannot find its size", shard); }
    uint8_t h[512];
    uint8_t *data = NULL;
    char *longname = NULL; /* from a GNU 'L' or pax 'x' member, for the next header */
    sdl_result r = SDL_OK;
    uint64_t off = 0;
    for (;;) {
        size_t got = fread(h, 1, 512, f);
        if (got != 512) {
            r = sdl_fail(SDL_ERR_FORMAT, "%s: truncated: %s at byte %llu (no end-of-archive blocks)", shard,
                         got ? "a partial header" : "the file ends", (unsigned long long)off);
            break;
        }
        bool zero = true;
        for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
        if (zero) break; /* end of archive */
        uint64_t sum = 0, want, size;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (!sdl__tar_num(h + 148, 8, &want) || want != sum) {
            r = sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: checksum mismatch (corrupt, or not a tar file)", shard, (unsigned long long)off);
            break;
        }
        bool posix = !memcmp(h + 257, "ustar\0" "00", 8), gnu = !memcmp(h + 257, "ustar  \0", 8);
        if (!posix && !gnu) { r = sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: not a ustar or GNU tar header", shard, (unsigned long long)off); break; }
        if (!sdl__tar_num(h + 124, 12, &size)) {
            r = sdl_fail(SDL_ERR_FORMAT, "%s: header at byte %llu: bad size field", shard, (unsigned long long)off);
            break;
        }
        if (size > (uint64_t)fsize - off - 512) { /* checked before anything is allocated */
            r = sdl_fail(SDL_ERR_FORMAT, "%s: truncated: the member at byte %llu needs %llu bytes", shard, (unsigned long long)off, (unsigned long long)size);
            break;
        }
        char type = (char)h[156];
        bool keep = type == '0' || type == 0 || type == '7' || type == 'L' || type == 'x';
        SDL_DEALLOC(data);
        data = NULL;
        if (keep) {
            data = (uint8_t *)sdl__alloc((size_t)size + 1);
            if (!data) { r = SDL_ERR_OOM; break; }
            if (fread(data, 1, (size_t)size, f) != (size_t)size) {
                r = sdl_fail(SDL_ERR_FORMAT, "%s: truncated: the member at byte %llu needs %llu bytes", shard, (unsigned long long)off, (unsigned long long)size);
                break;
            }
            data[size] = 0;
        } else if (size && fseek(f, (long)size, SEEK_CUR) != 0) {
            r = sdl_fail(SDL_ERR_IO, "%s: seek failed", shard);
            break;
        }
        uint64_t padded = (size + 511) / 512 * 512;
        if (padded > size && fseek(f, (long)(padded - size), SEEK_CUR) != 0) { r = sdl_fail(SDL_ERR_IO, "%s: seek failed", shard); break; }
        off += 512 + padded;
        if (type == 'L') { /* GNU long name: the data is the next member's name */
            SDL_DEALLOC(longname);
            longname = (char *)data;
            data = NULL;
            continue;
        }
        if (type == 'x') { /* pax records "len key=value\n": take path */
            for (uint64_t p = 0; p < size;) {
                uint64_t len = 0, q = p;
                while (q < size && data[q] >= '0' && data[q] <= '9' && len < size) len = len * 10 + (uint64_t)(data[q++] - '0');
                if (q >= size || data[q] != ' ' || len == 0 || len > size - p || data[p + len - 1] != '\n') {
                    r = sdl_fail(SDL_ERR_FORMAT, "%s: bad pax header at byte %llu", shard, (unsigned long long)(off - 512 - padded));
                    break;
                }
                if (len - (q + 1 - p) > 5 && !memcmp(data + q + 1, "path=", 5)) {
                    size_t vn = (size_t)(len - (q + 1 - p) - 6);
                    SDL_DEALLOC(longname);
                    longname = (char *)sdl__alloc(vn + 1);
                    if (!longname) { r = SDL_ERR_OOM; break; }
                    memcpy(longname, data + q + 6, vn);
                    longname[vn] = 0;
                }
                if (len - (q + 1 - p) > 5 && !memcmp(data + q + 1, "size=", 5)) {
                    r = sdl_fail(SDL_ERR_FORMAT, "%s: pax size records (members over 8 GB) are not supported", shard);
                    break;
                }
                p += len;
            }
            if (r != SDL_OK) break;
            continue;
        }
        if (!keep) { SDL_DEALLOC(longname); longname = NULL; continue; } /* folders, links, ... */
        char name[512];
        if (longname) snprintf(name, sizeof name, "%s", longname);
        else if (posix && h[345]) snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
        else snprintf(name, sizeof name, "%.100s", (const char *)h);
        SDL_DEALLOC(longname);
        longname = NULL;
        const char *nm = name;
        while (nm[0] == '.' && nm[1] == '/') nm += 2; /* "./key.png" from tar -C dir . */
        r = sdl__shard_member(rd, shard, nm, data, (size_t)size);
        if (r != SDL_OK) break;
    }
    if (r == SDL_OK) r = sdl__shard_flush(rd, shard); /* a sample never spans shards */
    SDL_DEALLOC(rd->s.key);
    SDL_DEALLOC(rd->s.img);
    memset(&rd->s, 0, sizeof rd->s);
    rd->s.label = -1;
    SDL_DEALLOC(data);
    SDL_DEALLOC(longname);
    fclose(f);
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

/* >>loader */
/* The epoch's sample list: perm is a Fisher-Yates shuffle of [0, n) keyed by (seed, epoch);
   rank r takes padded positions r, r + world, ... where position p >= n repeats perm[p % n]
   (torch's DistributedSampler). Batches fill preallocated slots: a ring of prefetch + 1, so
   the batch the caller holds is never overwritten while the thread fills the next ones. */
#define SDL__LOADER_SHUFFLE 0x73687566666C65ull /* "shuffle" */
#define SDL__LOADER_AUGMENT 0x6175676D656E74ull /* "augment" */

struct sdl_loader {
    sdl_loader_desc d;
    int64_t n, per_rank, nbatches, chw;
    int64_t epoch;
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
    for (int64_t k = 0; k < l->per_rank; k++) l->idx[k] = l->perm[(l->d.rank + k * l->d.world_size) % n];
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

/* starts epoch e: call with the filler idle (sync mode, or lock held and !busy) */
static void sdl__loader_start(sdl_loader *l, int64_t e) {
    l->epoch = e;
    l->produced = l->taken = 0;
    sdl__loader_order(l);
#ifndef SDL_NO_THREADS
    l->active = l->threaded;
#endif
}

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
        if (epoch != l->epoch || l->taken != 0) {
            l->active = false;
            while (l->busy) pthread_cond_wait(&l->cv, &l->mu);
            sdl__loader_start(l, epoch);
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        return;
    }
#endif
    if (epoch != l->epoch || l->taken != 0) sdl__loader_start(l, epoch);
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

/* >>train: timer, meters, progress, results CSV, flags */
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
    if (!path || !m) return sdl_fail(SDL_ERR_ARG, "checkpoint_save: NULL path or model");
    if (o && o->model != m) return sdl_fail(SDL_ERR_ARG, "checkpoint_save '%s': the optimizer belongs to another model", path);
    if (o && o->nstate > 0 && !m->packed) return sdl_fail(SDL_ERR_STATE, "checkpoint_save '%s': optimizer state without a packed model", path);
    if (!sdl__ck_little_endian()) return sdl_fail(SDL_ERR_STATE, "checkpoint_save '%s': big-endian hosts are not supported", path);
    sdl__ck_buf h = {NULL, 0, 0, false};
    sdl__ck_printf(&h, "{\"__metadata__\":{\"format\":\"pt\",\"sdl\":\"1\",\"epoch\":\"%lld\"", (long long)epoch);
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
#ifdef SDL__TRAIN_POSIX
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        sdl_fail(SDL_ERR_IO, "checkpoint_save: cannot create '%s': %s", tmp, strerror(errno));
        SDL_DEALLOC(h.p); SDL_DEALLOC(tmp);
        return SDL_ERR_IO;
    }
    ok = sdl__ck_write_all(fd, len, 8) && sdl__ck_write_all(fd, h.p, h.n);
    for (int i = 0; ok && sdl__ck_item(m, o, i, name, sizeof name, &data, &like); i++)
        ok = sdl__ck_write_all(fd, data, (size_t)like->numel * 4);
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
    for (int i = 0; ok && sdl__ck_item(m, o, i, name, sizeof name, &data, &like); i++)
        ok = fwrite(data, 4, (size_t)like->numel, f) == (size_t)like->numel;
    ok = f && fflush(f) == 0 && ok;
    if (f) ok = (fclose(f) == 0) && ok;
    if (ok) { remove(path); ok = rename(tmp, path) == 0; }
    if (!ok) { remove(tmp); sdl_fail(SDL_ERR_IO, "checkpoint_save: cannot write '%s'", path); }
#endif
    SDL_DEALLOC(h.p);
    SDL_DEALLOC(tmp);
    return ok ? SDL_OK : SDL_ERR_IO;
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

SDL_API sdl_result sdl_checkpoint_load(const char *path, sdl_model *m, sdl_optim *o, sdl_checkpoint_info *info) {
    if (!path || !m) return sdl_fail(SDL_ERR_ARG, "checkpoint_load: NULL path or model");
    if (o && o->model != m) return sdl_fail(SDL_ERR_ARG, "checkpoint_load '%s': the optimizer belongs to another model", path);
    if (!sdl__ck_little_endian()) return sdl_fail(SDL_ERR_STATE, "checkpoint_load '%s': big-endian hosts are not supported", path);
    FILE *f = fopen(path, "rb");
    if (!f) return sdl_fail(SDL_ERR_IO, "checkpoint_load: cannot open '%s': %s", path, strerror(errno));
    sdl_result r = SDL_OK;
    char *text = NULL, *pool = NULL;
    sdl__ck_entry *es = NULL;
    int n = 0;
    uint8_t len[8];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint64_t hl = 0;
    if (size < 8 || fread(len, 1, 8, f) != 8) {
        r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': %ld bytes, too short for a safetensors file", path, size);
        goto done;
    }
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len[i] << (8 * i);
    if (hl < 2 || hl > (uint64_t)size - 8 || hl > ((uint64_t)1 << 28)) {
        r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': header size %llu does not fit a file of %ld bytes (truncated or not safetensors)",
                     path, (unsigned long long)hl, size);
        goto done;
    }
    text = (char *)sdl__alloc((size_t)hl + 1);
    pool = (char *)sdl__alloc((size_t)hl + 1);
    if (!text || !pool) { r = SDL_ERR_OOM; goto done; }
    if (fread(text, 1, (size_t)hl, f) != (size_t)hl) { r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': cannot read the header", path); goto done; }
    {
        sdl__ck_jp j;
        j.p = text;
        j.end = text + hl;
        j.pool = pool;
        j.err = NULL;
        if (!sdl__ck_parse(&j, &es, &n)) {
            r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': bad header JSON at byte %ld: %s", path, (long)(j.p - text) + 8, j.err ? j.err : "?");
            goto done;
        }
    }
    {
        int64_t data_len = (int64_t)size - 8 - (int64_t)hl;
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
                sdl__ck_match(es, n, name, like, data_len, msg, sizeof msg, &problems);
            for (int i = 0; i < n; i++)
                if (!es[i].value && !es[i].used && strncmp(es[i].name, "optim.", 6) != 0)
                    sdl__ck_problem(msg, sizeof msg, &problems, "'%s' is in the file but not in the model", es[i].name);
        }
        if (problems) {
            r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s' does not fit: %s%s", path, msg, problems > 4 ? "; and more" : "");
            goto done;
        }
        for (int i = 0; sdl__ck_item(m, o, i, name, sizeof name, &dst, &like); i++) {
            sdl__ck_entry *e = sdl__ck_find(es, n, name, false);
            if (fseek(f, (long)(8 + hl + (uint64_t)e->begin), SEEK_SET) != 0 || fread(dst, 4, (size_t)like->numel, f) != (size_t)like->numel) {
                r = sdl_fail(SDL_ERR_FORMAT, "checkpoint '%s': cannot read the data of '%s' (truncated?)", path, name);
                goto done;
            }
        }
    }
    {
        sdl__ck_entry *e;
        sdl_checkpoint_info ci;
        memset(&ci, 0, sizeof ci);
        ci.rng_seed = sdl_rng_seed();
        ci.rng_counter = sdl_rng_state();
        if ((e = sdl__ck_find(es, n, "epoch", true)) != NULL) ci.epoch = strtoll(e->value, NULL, 10);
        if ((e = sdl__ck_find(es, n, "step", true)) != NULL) ci.step = strtoll(e->value, NULL, 10);
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
    fclose(f);
    SDL_DEALLOC(text);
    SDL_DEALLOC(pool);
    SDL_DEALLOC(es);
    return r;
}

/* >>profile */
static double sdl__prof_t[SDL_OP_COUNT][2];
static int64_t sdl__prof_n[SDL_OP_COUNT][2];


static void sdl__prof_add(sdl_op op, int backward, double seconds) {
    sdl__prof_t[op][backward] += seconds;
    sdl__prof_n[op][backward]++;
}

static const char *sdl__op_name(int op) {
    switch ((sdl_op)op) {
    case SDL_OP_LINEAR: return "linear"; case SDL_OP_CONV2D: return "conv2d";
    case SDL_OP_CONV_TRANSPOSE2D: return "conv_transpose2d"; case SDL_OP_MAX_POOL2D: return "max_pool2d";
    case SDL_OP_AVG_POOL2D: return "avg_pool2d"; case SDL_OP_GLOBAL_AVG_POOL: return "global_avg_pool";
    case SDL_OP_BATCH_NORM: return "batch_norm"; case SDL_OP_LAYER_NORM: return "layer_norm";
    case SDL_OP_DROPOUT: return "dropout"; case SDL_OP_EMBEDDING: return "embedding"; case SDL_OP_RELU: return "relu";
    case SDL_OP_LEAKY_RELU: return "leaky_relu"; case SDL_OP_GELU: return "gelu"; case SDL_OP_TANH: return "tanh";
    case SDL_OP_SIGMOID: return "sigmoid"; case SDL_OP_SILU: return "silu"; case SDL_OP_SOFTMAX: return "softmax";
    case SDL_OP_LOG_SOFTMAX: return "log_softmax"; case SDL_OP_ADD: return "add"; case SDL_OP_MUL: return "mul";
    case SDL_OP_SCALE: return "scale"; case SDL_OP_CONCAT: return "concat"; case SDL_OP_TRANSPOSE: return "transpose";
    case SDL_OP_ATTENTION: return "attention"; case SDL_OP_SUM: return "sum"; case SDL_OP_MEAN: return "mean";
    case SDL_OP_CROSS_ENTROPY: return "cross_entropy"; case SDL_OP_NLL: return "nll"; case SDL_OP_BCE_LOGITS: return "bce_logits";
    case SDL_OP_MSE: return "mse";
    default: return "op";
    }
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
        sdl_log(SDL_LOG_WARN, "profile: %-18s %10.2f %8lld %10.2f %8lld %5.1f%%", sdl__op_name(op),
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

#ifdef __cplusplus
}
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
