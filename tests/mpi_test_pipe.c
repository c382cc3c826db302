/* mpi_test_pipe.c - sdl_mpi.h pipeline parallelism: the schedules (each micro-batch once
   each way, the bubble against (S-1)/(M+S-1), the micro-batches held), GPipe and 1F1B
   training with M = 1 and M > S against one process on the whole batch (10 steps, balanced
   and given cuts), pipeline x data parallel on a grid, stats, bad input. S = the ranks. */
// mpirun-np: 2 4
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;
static const char *g_argv0;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* ---- schedules ------------------------------------------------------------------------ */
static void test_schedules(void) {
    for (int sch = 0; sch < 2; sch++)
        for (int S = 1; S <= 5; S++)
            for (int M = 1; M <= 9; M++) {
                double idle[5];
                int peak[5], ops[18];
                CHECK(sdl_pipe_simulate((sdl_pipe_schedule)sch, S, M, 1.0, 2.0, idle, peak) == SDL_OK, "%s", sdl_last_error());
                for (int s = 0; s < S; s++) {
                    int fwd[9] = {0}, bwd[9] = {0}, bad = 0;
                    sdl_pipe_schedule_ops((sdl_pipe_schedule)sch, S, s, M, ops);
                    for (int i = 0; i < 2 * M; i++) {
                        int m = (ops[i] > 0 ? ops[i] : -ops[i]) - 1;
                        if (ops[i] > 0) fwd[m]++;
                        else bad += !fwd[m], bwd[m]++;
                    }
                    for (int m = 0; m < M; m++) bad += fwd[m] != 1 || bwd[m] != 1;
                    CHECK(!bad, "schedule %d S %d stage %d M %d: a micro-batch not once each way, or backward first", sch, S, s, M);
                    double want = (double)(S - 1) / (M + S - 1);
                    CHECK(fabs(idle[s] - want) < 1e-12, "schedule %d S %d M %d stage %d: idle %g, want %g", sch, S, M, s, idle[s], want);
                    int held = sch == SDL_PIPE_GPIPE ? M : (S - s < M ? S - s : M);
                    CHECK(peak[s] == held, "schedule %d S %d M %d stage %d: %d held, want %d", sch, S, M, s, peak[s], held);
                }
            }
    CHECK(sdl_pipe_simulate(SDL_PIPE_1F1B, 0, 1, 1, 1, NULL, NULL) == SDL_ERR_ARG, "0 stages accepted");
    CHECK(sdl_pipe_schedule_ops((sdl_pipe_schedule)9, 2, 0, 2, (int[4]){0}) == SDL_ERR_ARG, "unknown schedule accepted");
}

/* ---- training against one process -------------------------------------------------------- */
typedef struct net { sdl_model *m; sdl_module *seq; sdl_optim *opt; } net;
static net net_new(void) {
    net r;
    r.m = sdl_model_new(5);
    r.seq = sdl_sequential(r.m, "");
    sdl_seq_add(r.seq, sdl_flatten_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc1", 20, 16, true));
    sdl_seq_add(r.seq, sdl_relu_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc2", 16, 16, true));
    sdl_seq_add(r.seq, sdl_tanh_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc3", 16, 4, true));
    r.opt = sdl_sgd(r.m, 0.1f, 0.9f, 0.0f, false);
    return r;
}
static void net_free(net *n) { sdl_optim_free(n->opt); sdl_model_free(n->m); }

static void batch(int step, int64_t B, sdl_tensor **x, sdl_tensor **y) {
    *x = sdl_arena_tensor(sdl_shape4(B, 1, 4, 5), SDL_F32);
    *y = sdl_arena_tensor(sdl_shape1(B), SDL_I32);
    for (int64_t i = 0; i < B * 20; i++) sdl_f32(*x)[i] = sdl_hash_uniform(9, (uint64_t)step, (uint64_t)i) * 2.0f - 1.0f;
    for (int64_t i = 0; i < B; i++) sdl_i32(*y)[i] = (int32_t)(sdl_hash_uniform(10, (uint64_t)step, (uint64_t)i) * 4.0f);
}

/* worst relative difference over this stage's parameters; *count how many compared */
static double stage_diff(sdl_pipe *p, net *a, net *b, int *count) {
    int first, end;
    sdl_pipe_stage(p, &first, &end);
    double e = 0;
    *count = 0;
    for (int i = first; i < end; i++) {
        sdl_tensor *pa[2] = {a->seq->children[i]->weight, a->seq->children[i]->bias};
        sdl_tensor *pb[2] = {b->seq->children[i]->weight, b->seq->children[i]->bias};
        for (int k = 0; k < 2; k++) {
            if (!pa[k]) continue;
            double d = 0, mx = 1e-12;
            for (int64_t j = 0; j < pa[k]->numel; j++) {
                double u = sdl_f32(pa[k])[j], v = sdl_f32(pb[k])[j];
                d = fabs(u - v) > d ? fabs(u - v) : d;
                mx = fabs(v) > mx ? fabs(v) : mx;
            }
            e = d / mx > e ? d / mx : e;
            (*count)++;
        }
    }
    return e;
}

/* S stages on comm, data pipelines on data (or none); batch 24 split over the pipelines */
static void train_check(sdl_pipe_schedule sch, int M, const int *cuts, MPI_Comm comm, MPI_Comm data, const char *what) {
    net a = net_new(), ref = net_new();
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = a.seq, pd.sample = sdl_shape3(1, 4, 5), pd.micro_batches = M, pd.schedule = sch, pd.cuts = cuts;
    pd.comm = comm, pd.data_comm = data;
    sdl_pipe *p = sdl_pipe_new(&pd);
    CHECK(p != NULL, "%s: %s", what, sdl_last_error());
    int S = 1, D = 1, d = 0, s = sdl_pipe_stage(p, NULL, NULL);
    MPI_Comm_size(comm, &S);
    if (data != (MPI_Comm)0) MPI_Comm_size(data, &D), MPI_Comm_rank(data, &d);
    double worst_loss = 0;
    for (int step = 0; p && step < 10; step++) {
        sdl_tensor *x, *y;
        batch(step, 24, &x, &y);
        sdl_tensor *ref_loss = sdl_cross_entropy(sdl_forward(ref.seq, x), y, 0.0f);
        double want = sdl_item(ref_loss);
        sdl_backward(ref_loss);
        sdl_optim_step(ref.opt);
        int64_t rows = 24 / D; /* this pipeline's shard */
        sdl_tensor *xs = sdl_arena_tensor(sdl_shape4(rows, 1, 4, 5), SDL_F32), *ys = sdl_arena_tensor(sdl_shape1(rows), SDL_I32);
        memcpy(xs->data, sdl_f32(x) + d * rows * 20, (size_t)rows * 20 * sizeof(float));
        memcpy(ys->data, sdl_i32(y) + d * rows, (size_t)rows * sizeof(int32_t));
        sdl_pipe_stats st;
        CHECK(sdl_pipe_step(p, s == 0 ? xs : NULL, s == S - 1 ? ys : NULL, &st) == SDL_OK, "%s: %s", what, sdl_last_error());
        sdl_optim_step(a.opt);
        sdl_arena_reset();
        double le = fabs(st.loss - want) / fabs(want);
        worst_loss = le > worst_loss ? le : worst_loss;
        int held = sch == SDL_PIPE_GPIPE ? M : (S - s < M ? S - s : M);
        CHECK(st.peak_in_flight == held, "%s: %d micro-batches held, want %d", what, st.peak_in_flight, held);
        CHECK(st.idle >= 0 && st.idle < 1 && st.busy_s > 0, "%s: idle %g busy %g", what, st.idle, st.busy_s);
    }
    int count;
    double e = stage_diff(p, &a, &ref, &count);
    CHECK(e <= 1e-5, "%s: stage %d's parameters differ from one process by %g relative after 10 steps", what, s, e);
    CHECK(worst_loss <= 1e-5, "%s: loss differs by %g relative", what, worst_loss);
    /* after the gather every rank holds the whole trained model */
    CHECK(sdl_pipe_gather_params(p) == SDL_OK, "%s", sdl_last_error());
    double g = 0, mx = 1e-12;
    for (int64_t i = 0; i < a.m->param_floats; i++) {
        g = fmax(g, fabs((double)a.m->param_data[i] - ref.m->param_data[i]));
        mx = fmax(mx, fabs((double)ref.m->param_data[i]));
    }
    CHECK(g / mx <= 1e-5, "%s: the gathered model differs by %g relative", what, g / mx);
    sdl_pipe_free(p);
    net_free(&a);
    net_free(&ref);
}

static void test_gpipe_m1(void) { train_check(SDL_PIPE_GPIPE, 1, NULL, sdl_mpi_comm(), 0, "gpipe M 1"); }
static void test_gpipe_many(void) { train_check(SDL_PIPE_GPIPE, g_size + 2, NULL, sdl_mpi_comm(), 0, "gpipe M S+2"); }
static void test_1f1b_m1(void) { train_check(SDL_PIPE_1F1B, 1, NULL, sdl_mpi_comm(), 0, "1f1b M 1"); }
static void test_1f1b_many(void) { train_check(SDL_PIPE_1F1B, g_size + 2, NULL, sdl_mpi_comm(), 0, "1f1b M S+2"); }
static void test_given_cuts(void) {
    int cuts2[1] = {4}, cuts4[3] = {2, 3, 5};
    train_check(SDL_PIPE_1F1B, 3, g_size == 2 ? cuts2 : cuts4, sdl_mpi_comm(), 0, "given cuts");
    int first, end;
    net a = net_new();
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = a.seq, pd.sample = sdl_shape3(1, 4, 5), pd.cuts = g_size == 2 ? cuts2 : cuts4;
    sdl_pipe *p = sdl_pipe_new(&pd);
    int s = sdl_pipe_stage(p, &first, &end);
    int want_first = s == 0 ? 0 : pd.cuts[s - 1], want_end = s == g_size - 1 ? 6 : pd.cuts[s];
    CHECK(first == want_first && end == want_end, "stage %d has children %d..%d", s, first, end);
    sdl_pipe_free(p);
    net_free(&a);
}

/* S = size / 2 stages, 2 pipelines (np 2: S = 1, plain data parallel through the pipe) */
static void test_grid(void) {
    int S = g_size / 2;
    MPI_Comm pipe, data;
    CHECK(sdl_mpi_grid(S, &pipe, &data) == SDL_OK, "%s", sdl_last_error());
    train_check(SDL_PIPE_1F1B, 4, NULL, pipe, data, "grid 1f1b");
    train_check(SDL_PIPE_GPIPE, 2, NULL, pipe, data, "grid gpipe");
    MPI_Comm_free(&pipe);
    MPI_Comm_free(&data);
    MPI_Comm a, b;
    CHECK(sdl_mpi_grid(3, &a, &b) == SDL_ERR_ARG || g_size % 3 == 0, "grid of 3 stages on %d ranks", g_size);
}

/* balanced cuts: every stage gets a child; the costly linear layers spread out */
static void test_balanced(void) {
    net a = net_new();
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = a.seq, pd.sample = sdl_shape3(1, 4, 5);
    sdl_pipe *p = sdl_pipe_new(&pd);
    CHECK(p != NULL, "%s", sdl_last_error());
    int first, end, mine[2];
    sdl_pipe_stage(p, &first, &end);
    int *all = (int *)calloc(2 * (size_t)g_size, sizeof(int));
    mine[0] = first, mine[1] = end;
    MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD);
    for (int s = 0; s < g_size; s++) {
        CHECK(all[2 * s] < all[2 * s + 1] && (s == 0 ? all[0] == 0 : all[2 * s] == all[2 * s - 1]), "stage %d: %d..%d", s, all[2 * s], all[2 * s + 1]);
    }
    CHECK(all[2 * g_size - 1] == 6, "the last stage ends at %d", all[2 * g_size - 1]);
    /* counted FLOPs a sample: flatten 20, fc1 640, relu 16, fc2 512, tanh 16, fc3 128: np 2
       balances 660 against 672 */
    if (g_size == 2) CHECK(all[1] == 2, "np 2 cut at %d", all[1]);
    free(all);
    sdl_pipe_free(p);
    net_free(&a);
}

static void test_timeline_and_errors(void) {
    net a = net_new();
    sdl_pipe_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.net = a.seq, pd.sample = sdl_shape3(1, 4, 5), pd.micro_batches = 5;
    sdl_pipe *p = sdl_pipe_new(&pd);
    int s = sdl_pipe_stage(p, NULL, NULL);
    sdl_tensor *x, *y;
    batch(0, 24, &x, &y); /* 24 rows do not split into 5 */
    sdl_result r = sdl_pipe_step(p, x, y, NULL);
    CHECK(r == SDL_ERR_SHAPE || (s != 0 && r == SDL_ERR_ARG), "stage %d: %d %s", s, (int)r, sdl_last_error());
    sdl_pipe_free(p);
    pd.micro_batches = 4;
    p = sdl_pipe_new(&pd);
    char path[700], text[1 << 14];
    snprintf(path, sizeof path, "%s.pipe.json", g_argv0); /* beside the binary, as mpi_test_ddp's */
    CHECK(sdl_mpi_timeline_open(path, 0) == SDL_OK, "%s", sdl_last_error());
    int64_t before = sdl_mpi_timeline_count();
    CHECK(sdl_pipe_step(p, x, s == g_size - 1 ? NULL : y, NULL) != SDL_OK, "the last stage without targets");
    CHECK(sdl_pipe_step(p, x, y, NULL) == SDL_OK, "%s", sdl_last_error());
    CHECK(sdl_mpi_timeline_count() - before >= 8, "%lld timeline events for 4 micro-batches", (long long)(sdl_mpi_timeline_count() - before));
    CHECK(sdl_mpi_timeline_write() == SDL_OK, "%s", sdl_last_error());
    snprintf(path, sizeof path, "%s.pipe-rank%d.json", g_argv0, g_rank);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    /* this rank's schedule: every micro-batch's forward and backward, and the waits */
    CHECK(strstr(text, "\"F0\"") && strstr(text, "\"F3\"") && strstr(text, "\"B0\"") && strstr(text, "\"B3\"") &&
          (g_size == 1 || strstr(text, "\"wait ")), "schedule events missing from %s", path);
    sdl_pipe_free(p);
    pd.sample = sdl_shape3(1, 4, 6);
    CHECK(!sdl_pipe_new(&pd) && strstr(sdl_last_error(), "does not pass"), "%s", sdl_last_error());
    pd.sample = sdl_shape3(1, 4, 5);
    pd.cuts = (int[3]){6, 6, 6}; /* an empty last stage */
    CHECK(!sdl_pipe_new(&pd) && strstr(sdl_last_error(), "cuts"), "%s", sdl_last_error());
    net_free(&a);
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_schedules);
    MRUN(test_gpipe_m1);
    MRUN(test_gpipe_many);
    MRUN(test_1f1b_m1);
    MRUN(test_1f1b_many);
    MRUN(test_given_cuts);
    MRUN(test_balanced);
    MRUN(test_grid);
    MRUN(test_timeline_and_errors);
    return mpi_test_finish();
}
