/* bench_mpar.c - sdl_mpi.h's model-parallel and federated pieces: what they cost.

   make bench-mpi runs  mpirun -np 2 bench_mpar --pipe --tp --fed

   --pipe  A balanced net (L equal 512-wide linear + ReLU layers) cut into S = ranks stages,
           batch 256, M = 1, 2, 4, 8, GPipe and 1F1B. First one step is checked against
           the same net in one process (the loss). Then each setting runs 10 timed steps;
           the table gives each stage's measured idle share (1 - time in its forwards and
           backwards / step time) against (S-1)/(M+S-1), the micro-batches each stage held
           at most, and its peak activation memory (held x counted layer outputs of one
           micro-batch). Then S = 4 counted: sdl_pipe_simulate with backward = 2 x forward.
   --tp    A transformer block (attention split by heads + MLP 4C, C 256, 8 heads, B 8,
           T 64) tensor parallel over the ranks, checked against its one-process twin (the
           loss of a step), then 10 timed steps of each: bytes handed to all-reduces per step
           against the formula (3 all-reduces of B T C floats: g of attention and MLP
           forward, f of the MLP backward; x needs no gradient), and step times.
   --fed   FedAvg on Fashion-MNIST (784-200-10, K 100 clients IID, C 0.1, E 1, B 10, lr
           0.05): bytes per round and rounds to 80% test accuracy (at most 40) with updates
           as float32, fp16 and top-1%. */
#define _POSIX_C_SOURCE 200809L
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int rank_, size_;

/* ---- pipeline ------------------------------------------------------------------------- */
enum { PIPE_L = 8, PIPE_W = 512, PIPE_B = 256 };

static sdl_module *pipe_net(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    for (int i = 0; i < PIPE_L; i++) {
        char name[16];
        snprintf(name, sizeof name, "fc%d", i);
        sdl_seq_add(net, sdl_linear_layer(m, name, PIPE_W, PIPE_W, true));
        sdl_seq_add(net, sdl_relu_layer(m));
    }
    return net;
}

static void pipe_batch(sdl_tensor **x, sdl_tensor **y) {
    *x = sdl_arena_tensor(sdl_shape2(PIPE_B, PIPE_W), SDL_F32);
    *y = sdl_arena_tensor(sdl_shape1(PIPE_B), SDL_I32);
    for (int64_t i = 0; i < PIPE_B * PIPE_W; i++) sdl_f32(*x)[i] = sdl_hash_uniform(1, 0, (uint64_t)i) - 0.5f;
    for (int64_t i = 0; i < PIPE_B; i++) sdl_i32(*y)[i] = (int32_t)(i % PIPE_W);
}

static int bench_pipe(void) {
    int S = size_, rc = 0;
    sdl_model *m = sdl_model_new(1); /* a model seeds the RNG: build one, then the other */
    sdl_module *net = pipe_net(m);
    sdl_model *ref = sdl_model_new(1);
    sdl_module *ref_net = pipe_net(ref);
    /* the reference loss of the first batch, in one process */
    sdl_tensor *x, *y;
    pipe_batch(&x, &y);
    double want = sdl_item(sdl_cross_entropy(sdl_forward(ref_net, x), y, 0.0f));
    sdl_arena_reset();
    if (rank_ == 0)
        printf("pipeline: %d x (linear %d + relu), batch %d, S = %d stages (one per rank)\n"
               "schedule  M  idle per stage (measured)   formula  held per stage  peak act MB per stage  step ms\n",
               PIPE_L, PIPE_W, PIPE_B, S);
    for (int sch = 0; sch < 2; sch++)
        for (int M = 1; M <= 8; M *= 2) {
            sdl_pipe_desc pd;
            memset(&pd, 0, sizeof pd);
            pd.net = net, pd.sample = sdl_shape1(PIPE_W), pd.micro_batches = M, pd.schedule = sch ? SDL_PIPE_GPIPE : SDL_PIPE_1F1B;
            sdl_pipe *p = sdl_pipe_new(&pd);
            if (!p) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
            double idle = 0, step = 0;
            sdl_pipe_stats st;
            memset(&st, 0, sizeof st);
            for (int i = 0; i < 11; i++) { /* the first step checks, the other 10 count */
                pipe_batch(&x, &y);
                if (sdl_pipe_step(p, x, y, &st) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
                if (i == 0 && fabs(st.loss - want) > 1e-5 * fabs(want)) {
                    if (rank_ == 0) fprintf(stderr, "pipeline loss %.7f differs from one process %.7f\n", st.loss, want);
                    rc = 1;
                }
                sdl_model_zero_grad(m); /* no update: every step does the same work */
                sdl_arena_reset();
                if (i) idle += st.idle / 10, step += st.step_s / 10;
            }
            double mine[3] = {idle, (double)st.peak_in_flight, (double)st.peak_in_flight * (double)st.act_bytes / 1e6}, all[3 * 16];
            MPI_Gather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, 0, sdl_mpi_comm());
            MPI_Allreduce(MPI_IN_PLACE, &step, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
            if (rank_ == 0 && S <= 16) {
                printf("%-8s %2d ", sch ? "gpipe" : "1f1b", M);
                for (int s = 0; s < S; s++) printf(" %5.2f", all[3 * s]);
                printf("%*s %6.2f   ", 20 - 6 * S > 0 ? 20 - 6 * S : 0, "", (double)(S - 1) / (M + S - 1));
                for (int s = 0; s < S; s++) printf(" %2.0f", all[3 * s + 1]);
                printf("%*s", 14 - 3 * S > 0 ? 14 - 3 * S : 0, "");
                for (int s = 0; s < S; s++) printf(" %6.2f", all[3 * s + 2]);
                printf("%*s %7.2f\n", 22 - 7 * S > 0 ? 22 - 7 * S : 0, "", step * 1e3);
            }
            sdl_pipe_free(p);
        }
    if (rank_ == 0) {
        printf("S = 4 counted (sdl_pipe_simulate, backward = 2 x forward, no communication):\n"
               "schedule  M  idle per stage            formula  held per stage\n");
        for (int sch = 0; sch < 2; sch++)
            for (int M = 1; M <= 8; M *= 2) {
                double idle[4];
                int held[4];
                sdl_pipe_simulate(sch ? SDL_PIPE_GPIPE : SDL_PIPE_1F1B, 4, M, 1.0, 2.0, idle, held);
                printf("%-8s %2d  %5.2f %5.2f %5.2f %5.2f    %5.2f    %2d %2d %2d %2d\n", sch ? "gpipe" : "1f1b", M, idle[0], idle[1], idle[2],
                       idle[3], 3.0 / (M + 3), held[0], held[1], held[2], held[3]);
            }
    }
    sdl_model_free(m);
    sdl_model_free(ref);
    return rc;
}

/* ---- tensor parallel ---------------------------------------------------------------------- */
enum { TB = 8, TT = 64, TC = 256, TH = 8, TV = 256 };
typedef struct tblock { sdl_model *m; sdl_module *attn, *mlp, *q, *k, *v, *proj, *fc1, *fc2, *head; } tblock;

static tblock tblock_new(sdl_tp *tp) {
    tblock r;
    memset(&r, 0, sizeof r);
    r.m = sdl_model_new(3);
    if (tp) {
        r.attn = sdl_tp_attention(r.m, tp, "attn", TC, TH);
        r.mlp = sdl_tp_mlp(r.m, tp, "mlp", TC, 4 * TC);
    } else {
        r.q = sdl_linear_layer(r.m, "attn.q", TC, TC, true), r.k = sdl_linear_layer(r.m, "attn.k", TC, TC, true);
        r.v = sdl_linear_layer(r.m, "attn.v", TC, TC, true), r.proj = sdl_linear_layer(r.m, "attn.proj", TC, TC, true);
        r.fc1 = sdl_linear_layer(r.m, "mlp.fc1", TC, 4 * TC, true), r.fc2 = sdl_linear_layer(r.m, "mlp.fc2", 4 * TC, TC, true);
    }
    r.head = sdl_linear_layer(r.m, "head", TC, TV, true);
    return r;
}
static sdl_tensor *theads(sdl_tensor *t) {
    int64_t d[4] = {TB, TT, TH, TC / TH};
    return sdl_transpose(sdl_reshape(t, sdl_shapen(4, d)), 1, 2);
}
static sdl_tensor *tblock_loss(tblock *r, sdl_tensor *x, sdl_tensor *y) {
    sdl_tensor *h;
    if (r->attn) {
        h = sdl_residual_add(x, sdl_forward(r->attn, x));
        h = sdl_residual_add(h, sdl_forward(r->mlp, h));
    } else {
        sdl_tensor *a = sdl_attention(theads(sdl_forward(r->q, x)), theads(sdl_forward(r->k, x)), theads(sdl_forward(r->v, x)));
        h = sdl_residual_add(x, sdl_forward(r->proj, sdl_reshape(sdl_transpose(a, 1, 2), sdl_shape3(TB, TT, TC))));
        h = sdl_residual_add(h, sdl_forward(r->fc2, sdl_gelu(sdl_forward(r->fc1, h))));
    }
    return sdl_cross_entropy(sdl_reshape(sdl_forward(r->head, h), sdl_shape2(TB * TT, TV)), y, 0);
}

/* mean seconds of a forward + backward, 10 steps after one warm-up; *loss: the first */
static double tblock_time(tblock *r, double *loss) {
    double t = 0;
    for (int i = 0; i < 11; i++) {
        sdl_tensor *x = sdl_arena_tensor(sdl_shape3(TB, TT, TC), SDL_F32), *y = sdl_arena_tensor(sdl_shape1(TB * TT), SDL_I32);
        for (int64_t j = 0; j < TB * TT * TC; j++) sdl_f32(x)[j] = sdl_hash_uniform(4, 0, (uint64_t)j) - 0.5f;
        for (int64_t j = 0; j < TB * TT; j++) sdl_i32(y)[j] = (int32_t)(j % TV);
        MPI_Barrier(sdl_mpi_comm());
        double t0 = sdl_now();
        sdl_tensor *l = tblock_loss(r, x, y);
        if (i == 0) *loss = sdl_item(l);
        sdl_backward(l);
        if (i) t += (sdl_now() - t0) / 10;
        sdl_model_zero_grad(r->m);
        sdl_arena_reset();
    }
    return t;
}

static int bench_tp(void) {
    sdl_tp *tp = sdl_tp_new(0);
    tblock a = tblock_new(tp), b = tblock_new(NULL);
    if (!a.attn || !a.mlp) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    double la, lb;
    int64_t bytes0 = sdl_tp_bytes(tp);
    double t_tp = tblock_time(&a, &la);
    double per_step = (double)(sdl_tp_bytes(tp) - bytes0) / 11.0;
    double t_one = tblock_time(&b, &lb); /* every rank runs the one-process twin too */
    MPI_Allreduce(MPI_IN_PLACE, &t_tp, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    MPI_Allreduce(MPI_IN_PLACE, &t_one, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    int rc = fabs(la - lb) > 1e-5 * fabs(lb);
    if (rank_ == 0) {
        if (rc) fprintf(stderr, "tensor-parallel loss %.7f differs from one process %.7f\n", la, lb);
        printf("tensor parallel: transformer block C %d, %d heads, MLP %d, B %d, T %d, on T = %d ranks (loss %.6f, one process %.6f)\n",
               TC, TH, 4 * TC, TB, TT, size_, la, lb);
        printf("  all-reduce bytes per step %.0f, formula 3 x B T C x 4 = %d\n", per_step, 3 * TB * TT * TC * 4);
        printf("  parameters per rank %lld (one process %lld)\n", (long long)a.m->param_floats, (long long)b.m->param_floats);
        printf("  forward + backward: tensor parallel %.2f ms, one process %.2f ms (x %.2f)\n", t_tp * 1e3, t_one * 1e3, t_one / t_tp);
    }
    sdl_model_free(a.m);
    sdl_model_free(b.m);
    sdl_tp_free(tp);
    return rc;
}

/* ---- federated averaging --------------------------------------------------------------------- */
static sdl_tensor *fed_loss(void *net, sdl_tensor *x, sdl_tensor *y) { return sdl_cross_entropy(sdl_forward((sdl_module *)net, x), y, 0.0f); }

static int bench_fed(void) {
    sdl_dataset train, test;
    if (sdl_load_fashion_mnist(NULL, true, &train) != SDL_OK || sdl_load_fashion_mnist(NULL, false, &test) != SDL_OK) {
        if (rank_ == 0) printf("fedavg: skipped (%s)\n", sdl_last_error());
        return 0;
    }
    sdl_loader_desc ld;
    memset(&ld, 0, sizeof ld);
    ld.data = &test, ld.batch_size = 1000, ld.prefetch = -1, ld.mean[0] = 0.2860f, ld.std[0] = 0.3530f;
    sdl_loader *tl = sdl_loader_new(&ld);
    const char *names[3] = {"float32", "fp16", "top-1%"};
    if (rank_ == 0) printf("fedavg: Fashion-MNIST 784-200-10, K 100 IID, C 0.1, E 1, B 10, lr 0.05\nupdates   bytes/round  rounds to 80%%  final acc  seconds\n");
    for (int c = 0; c < 3; c++) {
        sdl_model *m = sdl_model_new(42);
        sdl_module *net = sdl_sequential(m, "");
        sdl_seq_add(net, sdl_flatten_layer(m));
        sdl_seq_add(net, sdl_linear_layer(m, "fc1", 784, 200, true));
        sdl_seq_add(net, sdl_relu_layer(m));
        sdl_seq_add(net, sdl_linear_layer(m, "fc2", 200, 10, true));
        sdl_fed_desc fd;
        memset(&fd, 0, sizeof fd);
        fd.model = m, fd.loss = fed_loss, fd.user = net, fd.data = &train, fd.clients = 100, fd.fraction = 0.1f;
        fd.batch_size = 10, fd.lr = 0.05f, fd.shuffle = true, fd.seed = 42, fd.compress = (sdl_fed_compress)c, fd.topk = 0.01f;
        fd.mean[0] = 0.2860f, fd.std[0] = 0.3530f;
        sdl_fed *f = sdl_fed_new(&fd);
        sdl_fed_stats st;
        int reached = 0;
        double acc = 0, t0 = sdl_now();
        for (int r = 1; f && r <= 40 && !reached; r++) {
            sdl_fed_round(f, &st);
            int64_t correct = 0, n = 0;
            sdl_tensor *x, *y;
            sdl_set_grad_enabled(false);
            while (sdl_loader_next(tl, &x, &y)) correct += sdl_count_correct(sdl_forward(net, x), y), n += y->numel, sdl_arena_reset();
            sdl_set_grad_enabled(true);
            acc = (double)correct / (double)n;
            if (acc >= 0.80) reached = r;
        }
        if (rank_ == 0) printf("%-8s  %11lld  %13d  %9.4f  %7.1f\n", names[c], (long long)st.bytes, reached, acc, sdl_now() - t0);
        sdl_fed_free(f);
        sdl_model_free(m);
    }
    if (rank_ == 0) printf("(rounds 0: not reached in 40)\n");
    sdl_loader_free(tl);
    sdl_dataset_free(&train);
    sdl_dataset_free(&test);
    return 0;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    rank_ = sdl_mpi_rank();
    size_ = sdl_mpi_size();
    bool pipe = false, tp = false, fed = false;
    sdl_arg args[] = {{"pipe", SDL_ARG_BOOL, &pipe, "pipeline bubble and activation memory"},
                      {"tp", SDL_ARG_BOOL, &tp, "tensor parallel bytes and step time"},
                      {"fed", SDL_ARG_BOOL, &fed, "FedAvg bytes per round and rounds to an accuracy"}};
    const int nargs = (int)(sizeof args / sizeof args[0]);
    if (sdl_args_parse(argc, argv, args, nargs) != SDL_OK) {
        if (rank_ == 0) { fprintf(stderr, "%s\n", sdl_last_error()); sdl_args_usage(stderr, argv[0], args, nargs); }
        sdl_mpi_finalize();
        return 2;
    }
    if (!pipe && !tp && !fed) pipe = tp = fed = true;
    sdl_set_num_threads(1);
    int rc = 0;
    if (pipe) rc |= bench_pipe();
    if (tp) rc |= bench_tp();
    if (fed) rc |= bench_fed();
    sdl_mpi_finalize();
    return rc;
}
