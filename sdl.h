/* sdl.h - v0.1 - scalable deep learning in C - public domain or MIT (see end of file)

   The core of sdl: tensors, reverse-mode autograd, layers, losses, optimizers and
   learning-rate schedules, dataset readers and a data loader, checkpoints, logging and
   timers. CPU kernels live here; sdl_cuda.h adds a CUDA backend, sdl_mpi.h data
   parallelism over MPI.

   Do this:
      #define SDL_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the macro.

   A ten-line example (an MLP on one batch):

      #define SDL_IMPLEMENTATION
      #include "sdl.h"
      int main(void) {
          sdl_model *m = sdl_model_new(42);                    // seed
          sdl_module *net = sdl_sequential(m, "");
          sdl_seq_add(net, sdl_linear_layer(m, "0", 784, 128, true));
          sdl_seq_add(net, sdl_relu_layer(m));
          sdl_seq_add(net, sdl_linear_layer(m, "2", 128, 10, true));
          sdl_optim *opt = sdl_sgd(m, 0.1f, 0.9f, 0.0f, false);  // lr, momentum, wd, nesterov
          sdl_tensor *x = ..., *y = ...;                         // a batch (see the loader)
          sdl_tensor *loss = sdl_cross_entropy(sdl_forward(net, x), y, 0.0f);
          sdl_backward(loss); sdl_optim_step(opt); sdl_model_zero_grad(m); sdl_arena_reset();
          sdl_model_free(m);
      }

   Compile with  cc -O2 -march=native prog.c -lm -lpthread

   CONFIGURATION (define before including; those marked (impl) matter only in the file that
   defines SDL_IMPLEMENTATION, the others must be the same in every file):

      SDL_ALLOC(n), SDL_REALLOC(p,n), SDL_DEALLOC(p)   (impl) your allocator; all three or none.
                           (named to stay clear of libSDL's SDL_malloc/SDL_free)
      SDL_CHECK(c)         (impl) internal invariant check, default assert(c)
      SDL_STATIC           every function is static to the implementation file
      SDL_NO_THREADS       (impl) run every kernel on the calling thread (no pthreads)
      SDL_NO_STB           (impl) build without stb_image (no image decoding)
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
        struct { float eps, momentum; bool training; } norm;
        struct { float p; uint64_t seed, stream; } dropout;
        struct { float alpha; } scalar;  /* leaky_relu slope, scale factor, label smoothing */
        struct { int dim; } axis;        /* softmax, concat, transpose(dim, dim+1) */
        struct { int n_head; } attn;
    } attr;
    void *saved;   /* arena memory forward left for backward */
    sdl_node *prev; /* the tape, newest first */
};

SDL_API sdl_result sdl_backward(sdl_tensor *loss);
SDL_API void sdl_set_grad_enabled(bool enabled);
SDL_API bool sdl_is_grad_enabled(void);
SDL_API sdl_tensor *sdl_detach(sdl_tensor *x); /* same data, no gradient flows back */

/* >>decl-backend: per-device kernels, indexed by sdl_op. */
typedef void (*sdl_kernel_fn)(sdl_node *node);
typedef struct sdl_backend {
    const char *name;
    void *(*alloc)(size_t bytes);
    void (*dealloc)(void *p);
    void (*memset0)(void *dst, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes, sdl_device dst_dev, sdl_device src_dev);
    void *(*arena_alloc)(size_t bytes); /* zeroed step memory on the device */
    void (*arena_reset)(void);
    sdl_kernel_fn forward[SDL_OP_COUNT];
    sdl_kernel_fn backward[SDL_OP_COUNT];
} sdl_backend;
SDL_API void sdl_register_backend(sdl_device device, const sdl_backend *backend);
SDL_API const sdl_backend *sdl_get_backend(sdl_device device);

/* >>decl-ops. Shapes: x (B, ...) batch first; images NCHW. Each returns a new arena
   tensor, or NULL with sdl_last_error() set. */
SDL_API sdl_tensor *sdl_linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b);      /* x (..., in), w (out, in), b (out) or NULL */
SDL_API sdl_tensor *sdl_conv2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad);  /* w (C_out, C_in, kh, kw) */
SDL_API sdl_tensor *sdl_conv_transpose2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, int out_pad); /* w (C_in, C_out, kh, kw) */
SDL_API sdl_tensor *sdl_max_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_avg_pool2d(sdl_tensor *x, int kernel, int stride, int pad);
SDL_API sdl_tensor *sdl_global_avg_pool(sdl_tensor *x);                            /* (N,C,H,W) -> (N,C) */
/* x (N, C) or (N, C, H, W); running stats updated in training, used in eval */
SDL_API sdl_tensor *sdl_batch_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, sdl_tensor *running_mean,
                                   sdl_tensor *running_var, bool training, float momentum, float eps);
SDL_API sdl_tensor *sdl_layer_norm(sdl_tensor *x, sdl_tensor *gamma, sdl_tensor *beta, float eps); /* over the last dim */
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
SDL_API sdl_tensor *sdl_bce_with_logits(sdl_tensor *logits, sdl_tensor *targets);
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
   slot k of parameter i at state + k * param_floats + param_offset[i]. */
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
    float momentum;      /* sgd, lars */
    float weight_decay;  /* L2 for sgd/adam/lars, decoupled for adamw/lamb; skips decay=false params */
    bool nesterov;       /* sgd */
    float beta1, beta2;  /* 0: 0.9, 0.999 */
    float eps;           /* 0: 1e-8 (adam), 1e-6 (lamb) */
    float trust_coef;    /* lars eta, 0: 0.001 */
} sdl_optim_desc;

typedef struct sdl_optim {
    sdl_optim_desc desc;
    sdl_model *model;
    float lr;            /* the rate the next step uses (schedules set it) */
    int64_t step;        /* steps taken */
    int nstate;
    float *state;
} sdl_optim;

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc);
SDL_API sdl_optim *sdl_sgd(sdl_model *m, float lr, float momentum, float weight_decay, bool nesterov);
SDL_API sdl_result sdl_optim_step(sdl_optim *o);
SDL_API void sdl_optim_set_lr(sdl_optim *o, float lr);
SDL_API void sdl_optim_free(sdl_optim *o);

/* >>decl-sched */

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

/* >>decl-train */

/* >>decl-checkpoint */

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
typedef struct sdl__pool {
    pthread_t threads[SDL__MAX_THREADS];
    int started;
    bool inited;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;
    int pending;
    sdl_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    int nparts;
    uint64_t start_gen[SDL__MAX_THREADS]; /* the generation each worker starts after */
} sdl__pool;
static sdl__pool sdl__the_pool;

static void sdl__pool_run_part(sdl__pool *p, int part) {
    int64_t begin = (int64_t)part * p->chunk, end = begin + p->chunk;
    if (end > p->n) end = p->n;
    if (begin < end) p->fn(p->ctx, begin, end);
}

static void *sdl__pool_worker(void *arg) {
    sdl__pool *p = &sdl__the_pool;
    int part = (int)(intptr_t)arg;
    pthread_mutex_lock(&p->mu);
    uint64_t seen = p->start_gen[part];
    for (;;) {
        while (p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        seen = p->generation;
        int run = part < p->nparts;
        pthread_mutex_unlock(&p->mu);
        if (run) sdl__pool_run_part(p, part);
        pthread_mutex_lock(&p->mu);
        if (run && --p->pending == 0) pthread_cond_signal(&p->done_cv);
    }
    return NULL;
}

/* called between jobs, from the thread that posts them */
static void sdl__pool_start(int nthreads) {
    sdl__pool *p = &sdl__the_pool;
    if (!p->inited) {
        p->inited = true;
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

/* Calls fn on [0, n) split in at most num_threads contiguous parts of at least `grain`
   indices. The caller runs part 0. fn must write disjoint outputs for disjoint ranges. */
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    p->nparts = (int)((n + p->chunk - 1) / p->chunk);
    p->pending = p->nparts - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    sdl__pool_run_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
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
#define SDL__KC 512
#define SDL__MC (SDL__MR * 20)
#define SDL__NC (SDL__NR * 64)

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
    s = _mm512_reduce_add_ps(acc);
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

/* C[m0:m1, n0:n1] with the packing buffers ws (MC*KC + KC*NC floats) */
static void sdl__gemm_block(const sdl__gemm_job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *ws) {
    float *ap = ws, *bp = ws + SDL__MC * SDL__KC;
    float t[SDL__MR * SDL__NR + 16];
    for (int64_t jc = n0; jc < n1; jc += SDL__NC) {
        int64_t nc = n1 - jc < SDL__NC ? n1 - jc : SDL__NC;
        for (int64_t pc = 0; pc < g->K; pc += SDL__KC) {
            int64_t kc = g->K - pc < SDL__KC ? g->K - pc : SDL__KC;
            sdl__pack_b(g, pc, kc, jc, nc, bp);
            for (int64_t ic = m0; ic < m1; ic += SDL__MC) {
                int64_t mc = m1 - ic < SDL__MC ? m1 - ic : SDL__MC;
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
    int64_t units = ((g.split_n ? N : M) + g.unit - 1) / g.unit;
    /* a part gets at least ~8 MFLOP (tens of microseconds): waking a thread costs several */
    int64_t parts = (M * N * K) / (2 * 128 * 128 * 128) + 1;
    int nt = sdl_get_num_threads();
    if (parts > nt) parts = nt;
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

SDL_API void *sdl_arena_alloc(size_t bytes) {
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
    memset(p, 0, need);
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

static void *sdl__device_arena_alloc(sdl_device device, size_t bytes);

SDL_API sdl_tensor *sdl_arena_tensor_on(sdl_shape shape, sdl_dtype dtype, sdl_device device) {
    sdl_tensor hdr;
    size_t bytes;
    if (!sdl__tensor_init(&hdr, shape, dtype, &bytes)) return NULL;
    sdl_tensor *t = (sdl_tensor *)sdl_arena_alloc(sizeof(sdl_tensor));
    if (!t) return NULL;
    *t = hdr;
    t->device = device == SDL_DEVICE_DEFAULT ? SDL_CPU : device;
    t->data = sdl__device_arena_alloc(t->device, bytes);
    return t->data ? t : NULL;
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

static void *sdl__device_arena_alloc(sdl_device device, size_t bytes) {
    if (device == SDL_CPU) return sdl_arena_alloc(bytes);
    const sdl_backend *be = sdl_get_backend(device);
    if (!be || !be->arena_alloc) { sdl_fail(SDL_ERR_DEVICE, "no backend for device %d", (int)device); return NULL; }
    return be->arena_alloc(bytes);
}

/* memory that a node keeps from forward for backward, on the node's device */
static void *sdl__saved(sdl_node *n, size_t bytes) {
    n->saved = sdl__device_arena_alloc(n->out->device, bytes);
    return n->saved;
}

/* ----------------------------------------------------------------------------------------
   >>autograd: a tape of nodes in the arena, newest first
   ---------------------------------------------------------------------------------------- */
SDL_API void sdl_set_grad_enabled(bool enabled) { sdl__g.no_grad = !enabled; }
SDL_API bool sdl_is_grad_enabled(void) { return !sdl__g.no_grad; }

/* the gradient buffer of t, zeros in the arena on first use (parameters have theirs) */
static float *sdl__grad(sdl_tensor *t) {
    if (!t->grad) t->grad = (float *)sdl__device_arena_alloc(t->device, (size_t)t->numel * sizeof(float));
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
    n->out = sdl_arena_tensor_on(out_shape, SDL_F32, a->device);
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
static double sdl__prof_clock(void);
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
        double t0 = sdl__prof_clock();
        fn(n);
        sdl__prof_add(n->op, 0, sdl__prof_clock() - t0);
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

SDL_API sdl_result sdl_backward(sdl_tensor *loss) {
    if (!loss) return sdl_fail(SDL_ERR_ARG, "backward: loss is NULL (an earlier op failed: %s)", sdl__err_msg);
    if (loss->numel != 1) return (sdl__shape_error("backward", "loss must be a scalar", loss, NULL), SDL_ERR_SHAPE);
    if (!loss->requires_grad) return sdl_fail(SDL_ERR_STATE, "backward: loss does not depend on anything that needs a gradient");
    float *g = sdl__grad(loss);
    if (!g) return sdl__err_code;
    g[0] += 1.0f;
    for (sdl_node *n = sdl__g.tape; n; n = n->prev) {
        if (n->out->grad) {
            const sdl_backend *be = sdl_get_backend(n->out->device);
            if (!be->backward[n->op]) return sdl_fail(SDL_ERR_DEVICE, "op %d has no backward on device %d", (int)n->op, (int)n->out->device);
            for (int i = 0; i < n->nin; i++)
                if (n->in[i]->requires_grad && !sdl__grad(n->in[i])) return sdl__err_code;
            if (sdl__prof_on) {
                double t0 = sdl__prof_clock();
                be->backward[n->op](n);
                sdl__prof_add(n->op, 1, sdl__prof_clock() - t0);
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

/* ---- linear: x (R, in) with R = all leading dims, w (out, in), b (out) -> y (R, out)
   y = x w^T + b;  dx += dy w;  dw += dy^T x;  db += sum_rows dy */
static void sdl__linear_fwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = x->numel / I;
    float *y = sdl_f32(n->out);
    if (b) for (int64_t r = 0; r < R; r++) memcpy(y + r * O, b->data, (size_t)O * sizeof(float));
    sdl_sgemm(false, true, R, O, I, 1.0f, sdl_f32(x), I, sdl_f32(w), I, b ? 1.0f : 0.0f, y, O);
}

static void sdl__linear_bwd(sdl_node *n) {
    sdl_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t O = w->shape[0], I = w->shape[1], R = x->numel / I;
    const float *dy = n->out->grad;
    if (x->requires_grad) sdl_sgemm(false, false, R, I, O, 1.0f, dy, O, sdl_f32(w), I, 1.0f, x->grad, I);
    if (w->requires_grad) sdl_sgemm(true, false, O, I, R, 1.0f, dy, O, sdl_f32(x), I, 1.0f, w->grad, I);
    if (b && b->requires_grad) {
        float *SDL_RESTRICT db = b->grad;
        for (int64_t r = 0; r < R; r++)
            for (int64_t o = 0; o < O; o++) db[o] += dy[r * O + o];
    }
}

SDL_API sdl_tensor *sdl_linear(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b) {
    if (sdl__any_null(x, w)) return NULL;
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return (sdl_tensor *)sdl__shape_error("linear", "input (..., in) does not fit weight (out, in)", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return (sdl_tensor *)sdl__shape_error("linear", "bias must be (out) for weight (out, in)", b, w);
    sdl_shape s = sdl_tensor_shape(x);
    s.d[s.ndim - 1] = w->shape[0];
    return sdl__op_run(sdl__op_begin(SDL_OP_LINEAR, s, x, w, b, NULL));
}

/* ---- elementwise activations: y = f(x); dx += f'(x) dy */
static void sdl__relu_fwd(sdl_node *n) {
    const float *x = sdl_f32(n->in[0]);
    float *y = sdl_f32(n->out);
    for (int64_t i = 0; i < n->out->numel; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void sdl__relu_bwd(sdl_node *n) {
    sdl__relu_grad_add(n->in[0]->grad, sdl_f32(n->in[0]), n->out->grad, n->out->numel); /* SIMD, in >>gemm */
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
                        sdl__gemm_in(j, (int)part, false, true, j->O, j->Kc, j->P, dys, j->P, cs, j->P, first ? 0.0f : 1.0f, wp, j->Kc);
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
    if (j.parts == 1) sdl__conv_fwd_part(&j, 0, 1);
    else sdl_parallel_for(j.parts, 1, sdl__conv_fwd_part, &j);
}

static void sdl__conv_bwd(sdl_node *n) {
    sdl__conv_job j;
    if (!sdl__conv_job_init(&j, n, true)) return;
    if (j.parts == 1) sdl__conv_bwd_part(&j, 0, 1);
    else sdl_parallel_for(j.parts, 1, sdl__conv_bwd_part, &j);
    sdl_tensor *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int64_t wn = j.O * j.Kc, Cb = b ? b->numel : 0;
    for (int64_t ch = 0; ch < j.nchunks; ch++) { /* chunk sums, in order */
        if (w->requires_grad) for (int64_t i = 0; i < wn; i++) w->grad[i] += j.wpart[ch * wn + i];
        if (b && b->requires_grad) for (int64_t i = 0; i < Cb; i++) b->grad[i] += j.bpart[ch * Cb + i];
    }
}

static sdl_tensor *sdl__conv_common(const char *name, sdl_op op, sdl_tensor *x, sdl_tensor *w, sdl_tensor *b,
                                    int stride, int pad, int out_pad) {
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
    return sdl__op_run(n);
}

SDL_API sdl_tensor *sdl_conv2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad) {
    return sdl__conv_common("conv2d", SDL_OP_CONV2D, x, w, b, stride, pad, 0);
}
SDL_API sdl_tensor *sdl_conv_transpose2d(sdl_tensor *x, sdl_tensor *w, sdl_tensor *b, int stride, int pad, int out_pad) {
    return sdl__conv_common("conv_transpose2d", SDL_OP_CONV_TRANSPOSE2D, x, w, b, stride, pad, out_pad);
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

/* >>ops-act (leaky_relu, gelu, tanh, sigmoid, silu, softmax, log_softmax, scale) */

/* >>ops-shape (concat, transpose, attention) */

/* >>ops-loss (nll, bce_with_logits) */

/* >>cpu-table */
static void sdl__profile_init(void);
static void sdl__cpu_alloc_copy(void *dst, const void *src, size_t bytes, sdl_device dd, sdl_device sd) {
    SDL__UNUSED(dd);
    SDL__UNUSED(sd);
    memcpy(dst, src, bytes);
}
static void sdl__cpu_memset0(void *dst, size_t bytes) { memset(dst, 0, bytes); }

static void sdl__cpu_init(void) {
    sdl_backend *be = &sdl__backends[SDL_CPU];
    be->name = "cpu";
    be->alloc = sdl__aligned_alloc;
    be->dealloc = sdl__aligned_free;
    be->memset0 = sdl__cpu_memset0;
    be->copy = sdl__cpu_alloc_copy;
    be->arena_alloc = sdl_arena_alloc;
#define SDL__KERNEL(op, f, b) (be->forward[op] = f, be->backward[op] = b)
    SDL__KERNEL(SDL_OP_LINEAR, sdl__linear_fwd, sdl__linear_bwd);
    SDL__KERNEL(SDL_OP_RELU, sdl__relu_fwd, sdl__relu_bwd);
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

    /* >>cpu-table-act */

    /* >>cpu-table-shape */

    /* >>cpu-table-loss */

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

SDL_API void sdl_model_free(sdl_model *m) {
    if (!m) return;
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
    sdl__aligned_free(m->param_data);
    sdl__aligned_free(m->grad_data);
    sdl__aligned_free(m->buffer_data);
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
    if (!m->param_data || !m->grad_data || !m->buffer_data || !m->param_offset) return sdl__err_code;
    memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
    sdl__pack_into(m->params, m->nparams, m->param_data, m->param_offset);
    sdl__pack_into(m->buffers, m->nbuffers, m->buffer_data, NULL);
    for (int i = 0; i < m->nparams; i++) m->params[i]->grad = m->grad_data + m->param_offset[i];
    m->param_offset[m->nparams] = m->param_floats;
    m->packed = true;
    return SDL_OK;
}

SDL_API void sdl_model_zero_grad(sdl_model *m) {
    if (m && m->packed) memset(m->grad_data, 0, (size_t)m->param_floats * sizeof(float));
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

static sdl_tensor *sdl__seq_forward(sdl_module *self, sdl_tensor *x) {
    for (int i = 0; i < self->nchildren && x; i++) x = self->children[i]->forward(self->children[i], x);
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

/* >>layers-act */

/* >>optim */
static float sdl__default(float v, float dflt) { return v != 0.0f ? v : dflt; }

SDL_API sdl_optim *sdl_optim_new(sdl_model *m, const sdl_optim_desc *desc) {
    if (!m || !desc) { sdl_fail(SDL_ERR_ARG, "optim_new: NULL model or desc"); return NULL; }
    if (sdl_model_pack(m) != SDL_OK) return NULL;
    sdl_optim *o = (sdl_optim *)sdl__calloc(1, sizeof(sdl_optim));
    if (!o) return NULL;
    o->desc = *desc;
    o->model = m;
    o->lr = sdl__default(desc->lr, 0.01f);
    o->nstate = desc->momentum != 0.0f ? 1 : 0;
    o->state = (float *)sdl__calloc((size_t)o->nstate * (size_t)m->param_floats, sizeof(float));
    if (!o->state) { SDL_DEALLOC(o); return NULL; }
    return o;
}

SDL_API sdl_optim *sdl_sgd(sdl_model *m, float lr, float momentum, float weight_decay, bool nesterov) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = SDL_OPTIM_SGD;
    d.lr = lr;
    d.momentum = momentum;
    d.weight_decay = weight_decay;
    d.nesterov = nesterov;
    return sdl_optim_new(m, &d);
}

/* sgd (PyTorch's form): g = grad + wd p;  v = mu v + g (v = g on the first step);
   p -= lr * (nesterov ? g + mu v : v) */
static void sdl__sgd_update(sdl_optim *o) {
    sdl_model *m = o->model;
    float mu = o->desc.momentum, lr = o->lr;
    for (int i = 0; i < m->nparams; i++) {
        int64_t off = m->param_offset[i], n = m->params[i]->numel;
        float wd = m->params[i]->decay ? o->desc.weight_decay : 0.0f;
        float *p = m->param_data + off, *g = m->grad_data + off;
        float *v = o->nstate ? o->state + off : NULL;
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] + wd * p[j];
            if (v) {
                v[j] = o->step == 0 ? gj : mu * v[j] + gj;
                gj = o->desc.nesterov ? gj + mu * v[j] : v[j];
            }
            p[j] -= lr * gj;
        }
    }
}

SDL_API sdl_result sdl_optim_step(sdl_optim *o) {
    if (!o) return sdl_fail(SDL_ERR_ARG, "optim_step: NULL optimizer");
    sdl__sgd_update(o);
    o->step++;
    return SDL_OK;
}

SDL_API void sdl_optim_set_lr(sdl_optim *o, float lr) { if (o) o->lr = lr; }

SDL_API void sdl_optim_free(sdl_optim *o) {
    if (!o) return;
    SDL_DEALLOC(o->state);
    SDL_DEALLOC(o);
}

/* >>sched */

/* >>data */

/* >>loader */

/* >>train */

/* >>checkpoint */

/* >>profile */
#ifdef __cplusplus
}
#endif
#include <time.h>
#ifdef __cplusplus
extern "C" {
#endif
static double sdl__prof_t[SDL_OP_COUNT][2];
static int64_t sdl__prof_n[SDL_OP_COUNT][2];

static double sdl__prof_clock(void) {
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
