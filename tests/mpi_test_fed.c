/* mpi_test_fed.c - sdl_mpi.h federated averaging: the three partitions, FedAvg with one
   local step on equal shards against data-parallel SGD, E local epochs (FedProx, several
   clients per rank) against a serial reference in one process, the same bits on any number
   of ranks (fraction C < 1, shuffles, fp16, top-k), top-k with error feedback, bad input.
   Every rank checks; rank 0 prints one line per test and the closing count. */
// mpirun-np: 2 4
#define _POSIX_C_SOURCE 200809L /* nanosleep, in sdl_mpi_test.h */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"
#include "sdl_mpi_test.h"

static int g_size;

static void mrun(const char *name, void (*fn)(void)) {
    sdl_test_ok = 1;
    sdl_clear_error();
    fn();
    sdl_arena_reset();
    mpi_test_collect(name, sdl_test_ok);
}
#define MRUN(fn) mrun(#fn, fn)

/* 4 x 5 single-channel images in 4 classes; the label follows the brightest quarter */
static sdl_dataset synth(int64_t n) {
    sdl_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n, d.c = 1, d.h = 4, d.w = 5, d.num_classes = 4;
    d.images = (uint8_t *)malloc((size_t)n * 20);
    d.labels = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        float q[4] = {0};
        for (int j = 0; j < 20; j++) {
            uint8_t v = (uint8_t)(sdl_hash_uniform(11, (uint64_t)i, (uint64_t)j) * 255.0f);
            d.images[i * 20 + j] = v;
            q[j / 5] += v;
        }
        for (int c = 1; c < 4; c++) best = q[c] > q[best] ? c : best;
        d.labels[i] = best;
    }
    return d;
}

typedef struct net { sdl_model *m; sdl_module *seq; } net;
static net net_new(void) {
    net r;
    r.m = sdl_model_new(7);
    r.seq = sdl_sequential(r.m, "");
    sdl_seq_add(r.seq, sdl_flatten_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc1", 20, 16, true));
    sdl_seq_add(r.seq, sdl_relu_layer(r.m));
    sdl_seq_add(r.seq, sdl_linear_layer(r.m, "fc2", 16, 4, true));
    sdl_model_pack(r.m);
    return r;
}
static sdl_tensor *ce_loss(void *user, sdl_tensor *x, sdl_tensor *y) {
    return sdl_cross_entropy(sdl_forward((sdl_module *)user, x), y, 0.0f);
}

static sdl_fed_desc base_desc(net *n, const sdl_dataset *d) {
    sdl_fed_desc fd;
    memset(&fd, 0, sizeof fd);
    fd.model = n->m, fd.loss = ce_loss, fd.user = n->seq, fd.data = d;
    fd.lr = 0.1f, fd.seed = 3, fd.mean[0] = 0.5f, fd.std[0] = 0.3f;
    return fd;
}

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double e = 0, m = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        e = d > e ? d : e;
        m = fabs((double)b[i]) > m ? fabs((double)b[i]) : m;
    }
    return e / m;
}

/* x, y of the samples idx[0..b) normalised as desc says */
static void make_batch(const sdl_dataset *d, const int64_t *idx, int64_t b, sdl_tensor **x, sdl_tensor **y) {
    *x = sdl_arena_tensor(sdl_shape4(b, 1, 4, 5), SDL_F32);
    *y = sdl_arena_tensor(sdl_shape1(b), SDL_I32);
    for (int64_t i = 0; i < b; i++) {
        for (int j = 0; j < 20; j++) sdl_f32(*x)[i * 20 + j] = ((float)d->images[idx[i] * 20 + j] / 255.0f - 0.5f) / 0.3f;
        sdl_i32(*y)[i] = d->labels[idx[i]];
    }
}

/* ---- partitions ---------------------------------------------------------------------- */
static void check_cover(const int64_t *index, const int64_t *offset, int K, int64_t n, const char *what) {
    char *seen = (char *)calloc((size_t)n, 1);
    int bad = offset[0] != 0 || offset[K] != n;
    for (int64_t i = 0; i < n && !bad; i++) bad = index[i] < 0 || index[i] >= n || seen[index[i]]++;
    CHECK(!bad, "%s: not every sample exactly once", what);
    free(seen);
}

/* mean over clients of the share of its most common label */
static double skew(const sdl_dataset *d, const int64_t *index, const int64_t *offset, int K) {
    double s = 0;
    int used = 0;
    for (int k = 0; k < K; k++) {
        int64_t cnt[4] = {0}, n = offset[k + 1] - offset[k], best = 0;
        for (int64_t i = offset[k]; i < offset[k + 1]; i++) cnt[d->labels[index[i]]]++;
        for (int c = 0; c < 4; c++) best = cnt[c] > best ? cnt[c] : best;
        if (n) s += (double)best / (double)n, used++;
    }
    return s / used;
}

static void test_partition(void) {
    sdl_dataset d = synth(1000);
    int K = 10;
    int64_t *index = (int64_t *)malloc(1000 * sizeof(int64_t)), offset[11], index2[1000], offset2[11];
    CHECK(sdl_fed_partition(&d, K, SDL_FED_IID, 0, 0, 1, index, offset) == SDL_OK, "%s", sdl_last_error());
    check_cover(index, offset, K, 1000, "iid");
    for (int k = 0; k < K; k++) CHECK(offset[k + 1] - offset[k] == 100, "iid client %d has %lld", k, (long long)(offset[k + 1] - offset[k]));
    double s_iid = skew(&d, index, offset, K);
    CHECK(sdl_fed_partition(&d, K, SDL_FED_DIRICHLET, 0.1f, 0, 1, index, offset) == SDL_OK, "%s", sdl_last_error());
    check_cover(index, offset, K, 1000, "dirichlet");
    double s_dir = skew(&d, index, offset, K);
    CHECK(s_dir > s_iid + 0.3, "Dirichlet(0.1) not skewed: top-label share %.2f vs iid %.2f", s_dir, s_iid);
    CHECK(sdl_fed_partition(&d, K, SDL_FED_DIRICHLET, 0.1f, 0, 1, index2, offset2) == SDL_OK &&
          !memcmp(index, index2, sizeof index2) && !memcmp(offset, offset2, sizeof offset2), "not reproducible");
    CHECK(sdl_fed_partition(&d, K, SDL_FED_DIRICHLET, 100.0f, 0, 1, index, offset) == SDL_OK, "%s", sdl_last_error());
    CHECK(skew(&d, index, offset, K) < s_dir - 0.2, "Dirichlet(100) as skewed as Dirichlet(0.1)");
    CHECK(sdl_fed_partition(&d, K, SDL_FED_SHARDS, 0, 1, 1, index, offset) == SDL_OK, "%s", sdl_last_error());
    check_cover(index, offset, K, 1000, "shards");
    /* one shard of sorted labels each: at most 2 labels a client (a shard may straddle) */
    for (int k = 0; k < K; k++) {
        int has[4] = {0}, n = 0;
        for (int64_t i = offset[k]; i < offset[k + 1]; i++) has[d.labels[index[i]]] = 1;
        for (int c = 0; c < 4; c++) n += has[c];
        CHECK(n <= 2, "shard client %d has %d labels", k, n);
    }
    CHECK(sdl_fed_partition(&d, 0, SDL_FED_IID, 0, 0, 1, index, offset) == SDL_ERR_ARG && strstr(sdl_last_error(), "0 clients"), "%s", sdl_last_error());
    CHECK(sdl_fed_partition(&d, K, SDL_FED_DIRICHLET, 0, 0, 1, index, offset) == SDL_ERR_ARG && strstr(sdl_last_error(), "alpha"), "%s", sdl_last_error());
    d.labels[5] = 9;
    CHECK(sdl_fed_partition(&d, K, SDL_FED_SHARDS, 0, 2, 1, index, offset) == SDL_ERR_ARG && strstr(sdl_last_error(), "sample 5"), "%s", sdl_last_error());
    free(index);
    sdl_dataset_free(&d);
}

/* ---- one local step, all clients, equal shards, float32 == data-parallel SGD --------- */
static void test_one_step_equals_dp(void) {
    sdl_dataset d = synth(24 * g_size);
    net a = net_new(), b = net_new();
    sdl_fed_desc fd = base_desc(&a, &d);
    fd.local_steps = 1, fd.batch_size = 24; /* each client's whole shard */
    sdl_fed *f = sdl_fed_new(&fd);
    CHECK(f != NULL, "%s", sdl_last_error());
    int64_t nk;
    const int64_t *mine = sdl_fed_client_samples(f, g_rank, &nk);
    CHECK(nk == 24, "client %d has %lld samples", g_rank, (long long)nk);
    for (int step = 0; f && step < 10; step++) {
        sdl_fed_stats st;
        CHECK(sdl_fed_round(f, &st) == SDL_OK, "%s", sdl_last_error());
        CHECK(st.clients == g_size && st.samples == 24 * g_size, "round %d: %d clients, %lld samples", step, st.clients, (long long)st.samples);
        sdl_tensor *x, *y; /* the reference: rank r's gradient on client r's shard, averaged */
        make_batch(&d, mine, nk, &x, &y);
        sdl_backward(ce_loss(b.seq, x, y));
        sdl_mpi_average(b.m->grad_data, b.m->param_floats, SDL_MPI_ALGO_MPI, false);
        for (int64_t i = 0; i < b.m->param_floats; i++) b.m->param_data[i] -= 0.1f * b.m->grad_data[i];
        sdl_model_zero_grad(b.m);
        sdl_arena_reset();
    }
    double e = rel_diff(a.m->param_data, b.m->param_data, a.m->param_floats);
    CHECK(e <= 1e-5, "FedAvg differs from data-parallel SGD by %g relative after 10 rounds", e);
    sdl_fed_free(f);
    sdl_model_free(a.m);
    sdl_model_free(b.m);
    sdl_dataset_free(&d);
}

/* ---- E local epochs, FedProx, 5 clients over the ranks == the clients one after another */
static void test_epochs_equal_serial(void) {
    sdl_dataset d = synth(150);
    net a = net_new(), b = net_new();
    sdl_fed_desc fd = base_desc(&a, &d);
    fd.clients = 5, fd.split = SDL_FED_SHARDS, fd.local_epochs = 2, fd.batch_size = 7, fd.mu = 0.05f;
    sdl_fed *f = sdl_fed_new(&fd);
    CHECK(f != NULL, "%s", sdl_last_error());
    int64_t P = b.m->param_floats;
    float *w0 = (float *)malloc((size_t)P * sizeof(float));
    double *acc = (double *)malloc((size_t)P * sizeof(double));
    for (int round = 0; f && round < 3; round++) {
        CHECK(sdl_fed_round(f, NULL) == SDL_OK, "%s", sdl_last_error());
        memcpy(w0, b.m->param_data, (size_t)P * sizeof(float));
        memset(acc, 0, (size_t)P * sizeof(double));
        for (int k = 0; k < 5; k++) { /* client k from w0: 2 epochs of batches of 7 in order */
            int64_t nk;
            const int64_t *idx = sdl_fed_client_samples(f, k, &nk);
            memcpy(b.m->param_data, w0, (size_t)P * sizeof(float));
            for (int e = 0; e < 2; e++)
                for (int64_t pos = 0; pos < nk; pos += 7) {
                    sdl_tensor *x, *y;
                    make_batch(&d, idx + pos, nk - pos < 7 ? nk - pos : 7, &x, &y);
                    sdl_backward(ce_loss(b.seq, x, y));
                    float *w = b.m->param_data, *g = b.m->grad_data;
                    for (int64_t i = 0; i < P; i++) w[i] -= 0.1f * (g[i] + 0.05f * (w[i] - w0[i]));
                    sdl_model_zero_grad(b.m);
                    sdl_arena_reset();
                }
            for (int64_t i = 0; i < P; i++) acc[i] += (double)nk / 150.0 * (double)(b.m->param_data[i] - w0[i]);
        }
        for (int64_t i = 0; i < P; i++) b.m->param_data[i] = (float)((double)w0[i] + acc[i]);
    }
    double e = rel_diff(a.m->param_data, b.m->param_data, P);
    CHECK(e <= 1e-5, "FedAvg (E = 2, FedProx) differs from the serial reference by %g relative", e);
    CHECK(rel_diff(a.m->param_data, w0, P) > 1e-4, "the model did not move");
    free(w0);
    free(acc);
    sdl_fed_free(f);
    sdl_model_free(a.m);
    sdl_model_free(b.m);
    sdl_dataset_free(&d);
}

/* ---- every option on, on all ranks and on each rank alone: the same bits ------------- */
static void run_fed(net *n, const sdl_dataset *d, sdl_fed_compress c, MPI_Comm comm, sdl_fed_stats *st) {
    sdl_fed_desc fd = base_desc(n, d);
    fd.clients = 7, fd.split = SDL_FED_DIRICHLET, fd.alpha = 0.3f, fd.fraction = 0.6f, fd.local_epochs = 1;
    fd.batch_size = 8, fd.shuffle = true, fd.compress = c, fd.topk = 0.1f, fd.comm = comm;
    sdl_fed *f = sdl_fed_new(&fd);
    CHECK(f != NULL, "%s", sdl_last_error());
    for (int r = 0; f && r < 4; r++) CHECK(sdl_fed_round(f, st) == SDL_OK, "%s", sdl_last_error());
    sdl_fed_free(f);
}

static void test_any_number_of_ranks(void) {
    sdl_dataset d = synth(200);
    sdl_fed_compress cs[3] = {SDL_FED_FLOAT32, SDL_FED_FP16, SDL_FED_TOPK};
    int64_t P = 0, bytes[3];
    for (int c = 0; c < 3; c++) {
        net a = net_new(), b = net_new();
        sdl_fed_stats sa, sb;
        run_fed(&a, &d, cs[c], sdl_mpi_comm(), &sa);
        run_fed(&b, &d, cs[c], MPI_COMM_SELF, &sb);
        P = a.m->param_floats;
        CHECK(!memcmp(a.m->param_data, b.m->param_data, (size_t)P * sizeof(float)), "compress %d: %d ranks differ from one (%g)",
              c, g_size, rel_diff(a.m->param_data, b.m->param_data, P));
        CHECK(sa.clients == 4 && sa.bytes == sb.bytes && sa.train_loss == sb.train_loss, "compress %d: stats differ", c);
        bytes[c] = sa.bytes;
        CHECK(sa.bytes_dense == 4 * (40 + 4 * P), "dense bytes %lld", (long long)sa.bytes_dense);
        sdl_model_free(a.m);
        sdl_model_free(b.m);
    }
    int64_t k = (P + 9) / 10; /* ceil(0.1 P) */
    CHECK(bytes[0] == 4 * (40 + 4 * P) && bytes[1] == 4 * (40 + (2 * P + 7) / 8 * 8) && bytes[2] == 4 * (40 + 8 * k),
          "bytes per round %lld %lld %lld (P %lld)", (long long)bytes[0], (long long)bytes[1], (long long)bytes[2], (long long)P);
    sdl_dataset_free(&d);
}

/* ---- top-k: one client, the update holds its k largest changes; error feedback ------- */
static void test_topk(void) {
    sdl_dataset d = synth(64);
    net a = net_new(), b = net_new();
    sdl_fed_desc fd = base_desc(&a, &d);
    fd.clients = 1, fd.batch_size = 16, fd.compress = SDL_FED_TOPK, fd.topk = 0.05f;
    sdl_fed *f = sdl_fed_new(&fd);
    fd.model = b.m, fd.user = b.seq, fd.compress = SDL_FED_FLOAT32;
    sdl_fed *g = sdl_fed_new(&fd);
    int64_t P = a.m->param_floats, k = (int64_t)ceil(0.05 * (double)P);
    float *w0 = (float *)malloc((size_t)P * sizeof(float));
    memcpy(w0, a.m->param_data, (size_t)P * sizeof(float));
    CHECK(sdl_fed_round(f, NULL) == SDL_OK && sdl_fed_round(g, NULL) == SDL_OK, "%s", sdl_last_error());
    int64_t changed = 0, wrong = 0;
    float kth = 0; /* the k-th largest |change| of the dense update */
    float *mag = (float *)malloc((size_t)P * sizeof(float));
    for (int64_t i = 0; i < P; i++) mag[i] = fabsf(b.m->param_data[i] - w0[i]);
    for (int64_t j = 0; j < k; j++) { /* k passes of max: slow and plain */
        int64_t best = 0;
        for (int64_t i = 1; i < P; i++) best = mag[i] > mag[best] ? i : best;
        kth = mag[best];
        mag[best] = -1;
    }
    for (int64_t i = 0; i < P; i++) {
        bool moved = a.m->param_data[i] != w0[i];
        changed += moved;
        if (moved && (a.m->param_data[i] != b.m->param_data[i] || fabsf(b.m->param_data[i] - w0[i]) < kth)) wrong++;
    }
    CHECK(changed == k && wrong == 0, "%lld of %lld parameters changed (want %lld), %lld not among the largest", (long long)changed,
          (long long)P, (long long)k, (long long)wrong);
    free(w0);
    free(mag);
    sdl_fed_free(f);
    sdl_fed_free(g);
    sdl_model_free(a.m);
    sdl_model_free(b.m);
    sdl_dataset_free(&d);
}

/* ---- error feedback: what top-k leaves out is sent in later rounds -------------------- */
static void test_error_feedback(void) {
    sdl_dataset d = synth(64);
    net a = net_new(), b = net_new();
    sdl_fed_desc fd = base_desc(&a, &d);
    fd.clients = 1, fd.batch_size = 64, fd.compress = SDL_FED_TOPK, fd.topk = 0.2f, fd.lr = 0.01f;
    sdl_fed *f = sdl_fed_new(&fd);
    fd.model = b.m, fd.user = b.seq, fd.compress = SDL_FED_FLOAT32;
    sdl_fed *g = sdl_fed_new(&fd);
    for (int r = 0; r < 30; r++) CHECK(sdl_fed_round(f, NULL) == SDL_OK && sdl_fed_round(g, NULL) == SDL_OK, "%s", sdl_last_error());
    /* after many rounds the sparsified model tracks the dense one (residuals bounded) */
    double e = rel_diff(a.m->param_data, b.m->param_data, a.m->param_floats);
    CHECK(e < 0.01, "top-k with error feedback drifted %g from dense (about 0.027 without the feedback)", e);
    sdl_fed_free(f);
    sdl_fed_free(g);
    sdl_model_free(a.m);
    sdl_model_free(b.m);
    sdl_dataset_free(&d);
}

static void test_bad_input(void) {
    sdl_dataset d = synth(16);
    net a = net_new();
    sdl_fed_desc fd = base_desc(&a, &d);
    fd.loss = NULL;
    CHECK(!sdl_fed_new(&fd) && strstr(sdl_last_error(), "NULL loss"), "%s", sdl_last_error());
    fd = base_desc(&a, &d);
    fd.fraction = 1.5f;
    CHECK(!sdl_fed_new(&fd) && strstr(sdl_last_error(), "fraction"), "%s", sdl_last_error());
    fd.fraction = 0, fd.compress = (sdl_fed_compress)7;
    CHECK(!sdl_fed_new(&fd) && strstr(sdl_last_error(), "compress"), "%s", sdl_last_error());
    CHECK(sdl_fed_round(NULL, NULL) == SDL_ERR_ARG, "NULL round");
    sdl_model_free(a.m);
    sdl_dataset_free(&d);
}

int main(int argc, char **argv) {
    if (init_mpi(&argc, &argv) != SDL_OK) { printf("init: %s\n0 passed, 1 failed\n", sdl_last_error()); return 1; }
    sdl_mpi_set_timeout(30);
    g_rank = sdl_mpi_rank();
    g_size = sdl_mpi_size();
    sdl_set_num_threads(1);
    MRUN(test_partition);
    MRUN(test_one_step_equals_dp);
    MRUN(test_epochs_equal_serial);
    MRUN(test_any_number_of_ranks);
    MRUN(test_topk);
    MRUN(test_error_feedback);
    MRUN(test_bad_input);
    return mpi_test_finish();
}
