/* test_load.c - loading weights into a model that differs (fine-tuning): a PyTorch 1.13
   state_dict saved as safetensors (num_batches_tracked included) gives torch's outputs;
   non-strict loads list the missing and unexpected names; prefix maps (a sub-module, a
   DDP "module." file); shape mismatches skipped with a report; nothing changes on an error.
   Fixtures: tests/data/make_torch_state_dict.py. Run from the repository root. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define TORCH_FILE "tests/data/torch_small.safetensors"

/* the torch fixture's net: conv1 (1->4, 3x3, pad 1), bn1, relu, max pool 2, fc (64 -> classes),
   names under prefix */
static sdl_module *small_net(sdl_model *m, const char *prefix, int classes) {
    char n[3][64];
    snprintf(n[0], 64, "%sconv1", prefix);
    snprintf(n[1], 64, "%sbn1", prefix);
    snprintf(n[2], 64, "%sfc", prefix);
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_conv2d_layer(m, n[0], 1, 4, 3, 1, 1, true));
    sdl_seq_add(net, sdl_batch_norm_layer(m, n[1], 4));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_max_pool2d_layer(m, 2, 2));
    sdl_seq_add(net, sdl_flatten_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, n[2], 64, classes, true));
    return net;
}

static float *params_copy(const sdl_model *m) {
    float *p = (float *)malloc((size_t)m->param_floats * sizeof(float));
    memcpy(p, m->param_data, (size_t)m->param_floats * sizeof(float));
    return p;
}
static bool listed(char **list, const char *name) {
    for (int i = 0; list && list[i]; i++)
        if (strncmp(list[i], name, strlen(name)) == 0) return true;
    return false;
}

/* the eval-mode output of the loaded net against torch's for the same input */
static void check_torch_output(sdl_model *m, sdl_module *net, const char *how) {
    sdl_tensor *x = sdl_load_npy("tests/data/torch_small_x.npy"), *want = sdl_load_npy("tests/data/torch_small_y.npy");
    CHECK(x && want, "fixtures: %s", sdl_last_error());
    if (!x || !want) return;
    sdl_model_train(m, false);
    sdl_set_grad_enabled(false);
    sdl_tensor *y = sdl_forward(net, x);
    sdl_set_grad_enabled(true);
    CHECK(y && y->numel == want->numel, "%s: forward: %s", how, sdl_last_error());
    double worst = 0;
    for (int64_t i = 0; y && i < y->numel; i++) worst = fmax(worst, fabs((double)sdl_f32(y)[i] - sdl_f32(want)[i]));
    CHECK(worst < 1e-5, "%s: output differs from torch's by %g", how, worst);
    sdl_tensor_free(x);
    sdl_tensor_free(want);
}

static void test_torch_state_dict(void) {
    /* the strict resume path takes it as it is (num_batches_tracked skipped) */
    sdl_model *m = sdl_model_new(1);
    sdl_module *net = small_net(m, "", 3);
    CHECK(sdl_checkpoint_load(TORCH_FILE, m, NULL, NULL) == SDL_OK, "%s", sdl_last_error());
    check_torch_output(m, net, "checkpoint_load");
    sdl_model_free(m);
    /* and so does the weights loader, strict, with a report */
    m = sdl_model_new(2);
    net = small_net(m, "", 3);
    sdl_load_report rep;
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, NULL, &rep) == SDL_OK, "%s", sdl_last_error());
    CHECK(rep.loaded == 8 && rep.nmissing == 0 && rep.nunexpected == 0 && rep.nskipped == 0, "report: %d loaded, %d %d %d",
          rep.loaded, rep.nmissing, rep.nunexpected, rep.nskipped);
    check_torch_output(m, net, "checkpoint_load_weights");
    sdl_load_report_free(&rep);
    sdl_model_free(m);
}

/* a torch backbone into a bigger model: under "backbone.", with a new head the file lacks */
static void test_prefix_into_submodule(void) {
    sdl_model *m = sdl_model_new(3);
    sdl_module *net = small_net(m, "backbone.", 3);
    sdl_tensor *head = sdl_model_param(m, "head.weight", sdl_shape2(2, 3), true);
    sdl_tensor_fill(head, 0.25f);
    sdl_load_desc d = {0};
    d.model_prefix = "backbone.";
    sdl_load_report rep;
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, &d, &rep) == SDL_OK, "%s", sdl_last_error());
    CHECK(rep.loaded == 8 && rep.nmissing == 0, "%d loaded, %d missing", rep.loaded, rep.nmissing);
    CHECK(sdl_f32(head)[0] == 0.25f, "the head outside the prefix changed");
    check_torch_output(m, net, "backbone.");
    sdl_load_report_free(&rep);
    /* without the prefix map the strict load names what does not fit, and changes nothing */
    float *before = params_copy(m);
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, NULL, NULL) == SDL_ERR_FORMAT, "a strict load of misnamed weights passed");
    CHECK(strstr(sdl_last_error(), "backbone.conv1.weight") && strstr(sdl_last_error(), "'conv1.weight'"), "error: %s", sdl_last_error());
    CHECK(memcmp(before, m->param_data, (size_t)m->param_floats * sizeof(float)) == 0, "a failed load changed the model");
    free(before);
    sdl_model_free(m);
}

/* a file saved with "module." names (DDP) into a plain model: file_prefix */
static void test_file_prefix(void) {
    sdl_model *a = sdl_model_new(4);
    small_net(a, "module.", 3);
    sdl_model_pack(a);
    CHECK(sdl_checkpoint_save("build/test_load_module.safetensors", a, NULL, 0) == SDL_OK, "%s", sdl_last_error());
    sdl_model *b = sdl_model_new(5);
    small_net(b, "", 3);
    sdl_model_pack(b);
    sdl_load_desc d = {0};
    d.file_prefix = "module.";
    CHECK(sdl_checkpoint_load_weights("build/test_load_module.safetensors", b, &d, NULL) == SDL_OK, "%s", sdl_last_error());
    CHECK(memcmp(a->param_data, b->param_data, (size_t)a->param_floats * sizeof(float)) == 0, "parameters differ after the load");
    CHECK(memcmp(a->buffer_data, b->buffer_data, (size_t)a->buffer_floats * sizeof(float)) == 0, "buffers differ after the load");
    sdl_model_free(a);
    sdl_model_free(b);
}

/* strict=False: a renamed head is missing, the old one unexpected; both listed */
static void test_non_strict(void) {
    sdl_model *m = sdl_model_new(6);
    small_net(m, "", 3);
    sdl_tensor *cls = sdl_model_param(m, "classifier.weight", sdl_shape2(3, 64), true);
    sdl_tensor_fill(cls, 0.5f);
    sdl_model_pack(m);
    float *before = params_copy(m);
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, NULL, NULL) == SDL_ERR_FORMAT, "a strict load with a missing tensor passed");
    CHECK(strstr(sdl_last_error(), "classifier.weight") != NULL, "error: %s", sdl_last_error());
    CHECK(memcmp(before, m->param_data, (size_t)m->param_floats * sizeof(float)) == 0, "a failed load changed the model");
    free(before);
    sdl_load_desc d = {0};
    d.non_strict = true;
    sdl_load_report rep;
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, &d, &rep) == SDL_OK, "%s", sdl_last_error());
    CHECK(rep.nmissing == 1 && listed(rep.missing, "classifier.weight") && rep.missing[1] == NULL, "missing: %d", rep.nmissing);
    CHECK(rep.nunexpected == 0, "unexpected: %d (%s)", rep.nunexpected, rep.nunexpected ? rep.unexpected[0] : "");
    CHECK(rep.loaded == 8 && sdl_f32(cls)[0] == 0.5f, "%d loaded; classifier %g", rep.loaded, sdl_f32(cls)[0]);
    sdl_load_report_free(&rep);
    sdl_model_free(m);
    /* a model without fc: fc.weight and fc.bias are unexpected (num_batches_tracked is not) */
    m = sdl_model_new(7);
    sdl_conv2d_layer(m, "conv1", 1, 4, 3, 1, 1, true);
    sdl_batch_norm_layer(m, "bn1", 4);
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, &d, &rep) == SDL_OK, "%s", sdl_last_error());
    CHECK(rep.nunexpected == 2 && listed(rep.unexpected, "fc.weight") && listed(rep.unexpected, "fc.bias"), "unexpected: %d", rep.nunexpected);
    CHECK(rep.loaded == 6 && rep.nmissing == 0, "%d loaded, %d missing", rep.loaded, rep.nmissing);
    sdl_load_report_free(&rep);
    d.non_strict = false;
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, &d, &rep) == SDL_ERR_FORMAT && rep.unexpected == NULL, "strict: extra names passed");
    CHECK(strstr(sdl_last_error(), "fc.weight") != NULL, "error: %s", sdl_last_error());
    /* the resume path stays strict too */
    CHECK(sdl_checkpoint_load(TORCH_FILE, m, NULL, NULL) == SDL_ERR_FORMAT, "checkpoint_load took a file with extra tensors");
    sdl_model_free(m);
}

/* a 3-class fc in the file, 5 classes here: refused, or skipped and listed */
static void test_shape_mismatch(void) {
    sdl_model *m = sdl_model_new(8);
    small_net(m, "", 5);
    sdl_model_pack(m);
    sdl_tensor *fc = sdl_model_find(m, "fc.weight");
    float fc0 = sdl_f32(fc)[0];
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, NULL, NULL) == SDL_ERR_FORMAT, "a shape mismatch passed");
    CHECK(strstr(sdl_last_error(), "fc.weight: F32 (3, 64) in the file, F32 (5, 64) in the model") != NULL, "error: %s", sdl_last_error());
    sdl_load_desc d = {0};
    d.skip_mismatched = true;
    sdl_load_report rep;
    CHECK(sdl_checkpoint_load_weights(TORCH_FILE, m, &d, &rep) == SDL_OK, "%s", sdl_last_error());
    CHECK(rep.nskipped == 2 && listed(rep.skipped, "fc.weight: ") && listed(rep.skipped, "fc.bias: "), "skipped %d", rep.nskipped);
    CHECK(rep.loaded == 6 && rep.nmissing == 0 && rep.nunexpected == 0, "%d loaded %d missing %d unexpected", rep.loaded, rep.nmissing, rep.nunexpected);
    CHECK(sdl_f32(fc)[0] == fc0, "a skipped tensor changed");
    sdl_load_report_free(&rep);
    sdl_model_free(m);
}

int main(void) {
    RUN(test_torch_state_dict);
    RUN(test_prefix_into_submodule);
    RUN(test_file_prefix);
    RUN(test_non_strict);
    RUN(test_shape_mismatch);
    return sdl_test_finish();
}
