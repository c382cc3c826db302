/* test_checkpoint.c - safetensors checkpoints: the file layout, name/shape/dtype checks,
   truncated and corrupt files, and resuming bit for bit */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

typedef struct net { sdl_model *m; sdl_module *seq; sdl_optim *opt; sdl_tensor *stats; } net;
static int use_adam; /* make_net builds Adam instead of SGD */

/* 6 -> hidden -> 4 MLP with a buffer; momentum 0 gives an optimizer without state */
static net make_net(uint64_t seed, int hidden, float momentum) {
    net n;
    n.m = sdl_model_new(seed);
    n.seq = sdl_sequential(n.m, "");
    sdl_seq_add(n.seq, sdl_flatten_layer(n.m));
    sdl_seq_add(n.seq, sdl_linear_layer(n.m, "fc1", 6, hidden, true));
    sdl_seq_add(n.seq, sdl_relu_layer(n.m));
    sdl_seq_add(n.seq, sdl_dropout_layer(n.m, 0.3f)); /* draws its mask from the global RNG */
    sdl_seq_add(n.seq, sdl_linear_layer(n.m, "fc2", hidden, 4, true));
    n.stats = sdl_model_buffer(n.m, "stats", sdl_shape1(3));
    n.opt = use_adam ? sdl_adam(n.m, 0.01f, 0.9f, 0.99f, 1e-3f) : sdl_sgd(n.m, 0.05f, momentum, 1e-3f, false);
    return n;
}
static void free_net(net *n) { sdl_optim_free(n->opt); sdl_model_free(n->m); }

static sdl_dataset make_data(void) {
    sdl_dataset d;
    memset(&d, 0, sizeof d);
    d.n = 45; d.c = 1; d.h = 2; d.w = 3; d.num_classes = 4;
    d.images = (uint8_t *)malloc(45 * 6);
    d.labels = (int32_t *)malloc(45 * sizeof(int32_t));
    for (int i = 0; i < 45; i++) {
        d.labels[i] = i % 4;
        for (int k = 0; k < 6; k++) d.images[i * 6 + k] = (uint8_t)((i % 4) * 50 + (int)(sdl_hash_uniform(5, 0, (uint64_t)(i * 6 + k)) * 60));
    }
    return d;
}

/* one epoch; dropout and noise on the inputs draw from the global RNG */
static void train_epoch(net *n, const sdl_dataset *d, int64_t epoch) {
    sdl_loader_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.data = d; desc.batch_size = 8; desc.shuffle = true; desc.seed = 17; desc.hflip = true; desc.pad_crop = 1;
    desc.mean[0] = 0.4f; desc.std[0] = 0.3f;
    sdl_loader *l = sdl_loader_new(&desc);
    sdl_loader_set_epoch(l, epoch);
    sdl_tensor *x, *y;
    while (sdl_loader_next(l, &x, &y)) {
        sdl_tensor *noise = sdl_arena_tensor(sdl_tensor_shape(x), SDL_F32);
        sdl_tensor_randn(noise, 0.0f, 0.1f);
        sdl_tensor *loss = sdl_cross_entropy(sdl_forward(n->seq, sdl_add(x, noise)), y, 0.0f);
        sdl_backward(loss);
        sdl_optim_step(n->opt);
        sdl_model_zero_grad(n->m);
        sdl_arena_reset();
    }
    sdl_f32(n->stats)[0] += 1.0f;
    sdl_f32(n->stats)[2] = (float)epoch;
    sdl_loader_free(l);
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void test_resume_bit_exact(void) {
    sdl_dataset d = make_data();
    const char *path = "build/test_ckpt_resume.safetensors";
    /* A: two epochs straight */
    net a = make_net(1, 9, 0.9f);
    train_epoch(&a, &d, 0);
    train_epoch(&a, &d, 1);
    /* B: one epoch, save */
    net b = make_net(1, 9, 0.9f);
    train_epoch(&b, &d, 0);
    CHECK(sdl_checkpoint_save(path, b.m, b.opt, 1) == SDL_OK, "save: %s", sdl_last_error());
    FILE *tmp = fopen("build/test_ckpt_resume.safetensors.tmp", "rb");
    CHECK(tmp == NULL, "no temp file left behind");
    if (tmp) fclose(tmp);
    free_net(&b);
    /* C: another init, load, one more epoch */
    net c = make_net(99, 9, 0.9f);
    CHECK(!same_bits(a.m->param_data, c.m->param_data, a.m->param_floats), "C starts elsewhere");
    sdl_checkpoint_info info;
    CHECK(sdl_checkpoint_load(path, c.m, c.opt, &info) == SDL_OK, "load: %s", sdl_last_error());
    CHECK(info.epoch == 1 && info.step == 6 && c.opt->step == 6, "epoch %lld, step %lld (45/8 -> 6 batches)", (long long)info.epoch, (long long)info.step);
    CHECK(c.opt->lr == a.opt->lr && info.lr == a.opt->lr, "lr restored");
    train_epoch(&c, &d, info.epoch);
    CHECK(same_bits(a.m->param_data, c.m->param_data, a.m->param_floats), "2 epochs == 1 + save + load + 1, bit for bit");
    CHECK(a.opt->nstate == (use_adam ? 2 : 1), "state slots");
    CHECK(same_bits(a.opt->state, c.opt->state, a.opt->nstate * a.m->param_floats), "optimizer state equal bit for bit");
    CHECK(same_bits(a.m->buffer_data, c.m->buffer_data, 3), "buffers equal");
    CHECK(sdl_rng_state() != 0, "rng moved");
    /* the RNG matters: resuming without it drifts (so the check above can fail) */
    net e = make_net(99, 9, 0.9f);
    CHECK(sdl_checkpoint_load(path, e.m, e.opt, NULL) == SDL_OK, "load again");
    sdl_manual_seed(12345);
    train_epoch(&e, &d, 1);
    CHECK(!same_bits(a.m->param_data, e.m->param_data, a.m->param_floats), "a different RNG state gives other weights");
    free_net(&e);
    free_net(&a);
    free_net(&c);
    free(d.images);
    free(d.labels);
    remove(path);
}

static unsigned char *read_all(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { *size = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = (unsigned char *)malloc((size_t)*size + 1);
    *size = (long)fread(p, 1, (size_t)*size, f);
    p[*size] = 0;
    fclose(f);
    return p;
}
static void write_all(const char *path, const unsigned char *p, long n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, (size_t)n, f);
    fclose(f);
}

/* the layout PyTorch's safetensors expects, read back by hand */
static void test_file_layout(void) {
    const char *path = "build/test_ckpt_layout.safetensors";
    net n = make_net(3, 5, 0.9f);
    sdl_f32(n.stats)[1] = 2.5f;
    n.opt->step = 7;
    n.opt->state[3] = 0.75f;
    CHECK(sdl_checkpoint_save(path, n.m, n.opt, 4) == SDL_OK, "save: %s", sdl_last_error());
    long size;
    unsigned char *p = read_all(path, &size);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)p[i] << (8 * i);
    CHECK(hl % 8 == 0 && (long)(8 + hl) < size, "header length %llu is a multiple of 8", (unsigned long long)hl);
    char *h = (char *)malloc(hl + 1);
    memcpy(h, p + 8, hl);
    h[hl] = 0;
    /* 4 params (30+5+20+4 floats), 1 buffer (3), momentum slot for each param */
    int64_t floats = 30 + 5 + 20 + 4 + 3 + 59;
    CHECK(size == (long)(8 + hl + 4 * floats), "file size %ld = 8 + header + %lld floats", size, (long long)floats);
    CHECK(h[0] == '{', "JSON object");
    CHECK(strstr(h, "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,120]}") != NULL, "fc1.weight entry: %s", h);
    CHECK(strstr(h, "\"stats\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[236,248]}") != NULL, "buffer entry");
    CHECK(strstr(h, "\"optim.momentum_buffer.fc1.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[248,368]}") != NULL, "momentum of fc1.weight");
    CHECK(strstr(h, "\"__metadata__\":{\"format\":\"pt\"") && strstr(h, "\"epoch\":\"4\"") && strstr(h, "\"step\":\"7\"") &&
          strstr(h, "\"optim_nstate\":\"1\"") && strstr(h, "\"rng_counter\":\""), "metadata strings: %s", h);
    const unsigned char *data = p + 8 + hl;
    CHECK(memcmp(data, n.m->param_data, 4 * 59) == 0, "parameter bytes in order");
    CHECK(memcmp(data + 236, n.m->buffer_data, 12) == 0, "buffer bytes");
    CHECK(memcmp(data + 248, n.opt->state, 4 * 59) == 0, "optimizer bytes");
    /* weights only: no optim entries, loads into a bare model */
    CHECK(sdl_checkpoint_save(path, n.m, NULL, 4) == SDL_OK, "weights-only save");
    long size2;
    unsigned char *p2 = read_all(path, &size2);
    CHECK(strstr((char *)p2 + 8, "optim.") == NULL && size2 < size, "no optimizer state in a weights-only file");
    net w = make_net(4, 5, 0.0f);
    CHECK(sdl_checkpoint_load(path, w.m, NULL, NULL) == SDL_OK, "weights-only load: %s", sdl_last_error());
    CHECK(same_bits(w.m->param_data, n.m->param_data, 59) && sdl_f32(w.stats)[1] == 2.5f, "weights and buffer restored");
    free(p2);
    free(p);
    free(h);
    free_net(&w);
    free_net(&n);
    remove(path);
}

static void test_mismatch_and_corrupt(void) {
    const char *path = "build/test_ckpt_bad.safetensors", *bad = "build/test_ckpt_bad2.safetensors";
    net n = make_net(3, 5, 0.9f);
    CHECK(sdl_checkpoint_save(path, n.m, n.opt, 1) == SDL_OK, "save");
    /* another hidden size: the shapes are named, nothing changes */
    net o = make_net(8, 7, 0.9f);
    float before = o.m->param_data[0];
    CHECK(sdl_checkpoint_load(path, o.m, o.opt, NULL) == SDL_ERR_FORMAT, "shape mismatch fails");
    CHECK(strstr(sdl_last_error(), "'fc1.weight' has shape (5, 6) in the file, (7, 6) in the model") && strstr(sdl_last_error(), path),
          "names the tensor, both shapes and the file: %s", sdl_last_error());
    CHECK(o.m->param_data[0] == before, "a failed load changes nothing");
    free_net(&o);
    /* a model with an extra layer: missing tensor; a smaller one: unexpected tensor */
    {
        sdl_model *m = sdl_model_new(3);
        sdl_module *s = sdl_sequential(m, "");
        sdl_seq_add(s, sdl_linear_layer(m, "fc1", 6, 5, true));
        sdl_seq_add(s, sdl_linear_layer(m, "fc2", 5, 4, true));
        sdl_seq_add(s, sdl_linear_layer(m, "fc3", 4, 4, true));
        sdl_model_buffer(m, "stats", sdl_shape1(3));
        CHECK(sdl_checkpoint_load(path, m, NULL, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "'fc3.weight' is missing"),
              "missing tensor: %s", sdl_last_error());
        sdl_model_free(m);
        m = sdl_model_new(3);
        sdl_linear_layer(m, "fc1", 6, 5, true);
        CHECK(sdl_checkpoint_load(path, m, NULL, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "'fc2.weight' is in the file but not in the model"),
              "unexpected tensor: %s", sdl_last_error());
        sdl_model_free(m);
    }
    /* optimizer without state vs a file with momentum */
    net plain = make_net(3, 5, 0.0f);
    CHECK(sdl_checkpoint_load(path, plain.m, plain.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "optimizer"),
          "optimizer mismatch: %s", sdl_last_error());
    free_net(&plain);
    long size;
    unsigned char *p = read_all(path, &size);
    /* truncated data */
    write_all(bad, p, size - 100);
    CHECK(sdl_checkpoint_load(bad, n.m, n.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), bad) && strstr(sdl_last_error(), "truncated"),
          "truncated data: %s", sdl_last_error());
    /* truncated header and tiny files */
    write_all(bad, p, 40);
    CHECK(sdl_checkpoint_load(bad, n.m, n.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "header size"), "cut header: %s", sdl_last_error());
    write_all(bad, p, 5);
    CHECK(sdl_checkpoint_load(bad, n.m, n.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "too short"), "5 bytes: %s", sdl_last_error());
    /* corrupt JSON */
    unsigned char *q = (unsigned char *)malloc((size_t)size);
    memcpy(q, p, (size_t)size);
    char *colon = strstr((char *)q + 8, "\"dtype\":");
    colon[7] = ';';
    write_all(bad, q, size);
    CHECK(sdl_checkpoint_load(bad, n.m, n.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "bad header JSON") && strstr(sdl_last_error(), "':'"),
          "corrupt JSON: %s", sdl_last_error());
    /* another dtype */
    memcpy(q, p, (size_t)size);
    char *dt = strstr((char *)q + 8, "\"F32\"");
    dt[2] = '1'; dt[3] = '6';
    write_all(bad, q, size);
    CHECK(sdl_checkpoint_load(bad, n.m, n.opt, NULL) == SDL_ERR_FORMAT && strstr(sdl_last_error(), "dtype F16"), "dtype: %s", sdl_last_error());
    /* no file, unwritable folder */
    CHECK(sdl_checkpoint_load("build/no_such.safetensors", n.m, n.opt, NULL) == SDL_ERR_IO && strstr(sdl_last_error(), "no_such"), "missing file");
    CHECK(sdl_checkpoint_save("build/no/such/dir/c.safetensors", n.m, n.opt, 1) == SDL_ERR_IO && strstr(sdl_last_error(), "no/such"), "unwritable: %s", sdl_last_error());
    /* the good file still loads */
    CHECK(sdl_checkpoint_load(path, n.m, n.opt, NULL) == SDL_OK, "good file loads: %s", sdl_last_error());
    free(q);
    free(p);
    free_net(&n);
    remove(path);
    remove(bad);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    RUN(test_resume_bit_exact);
    use_adam = 1;
    RUN(test_resume_bit_exact); /* Adam: two slots, bias correction from the step */
    use_adam = 0;
    RUN(test_file_layout);
    RUN(test_mismatch_and_corrupt);
    return sdl_test_finish();
}
