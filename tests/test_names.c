/* test_names.c - the shared plumbing programs take from flags: sdl_optim_by_name and
   sdl_sched_by_name (any case, '-' or '_'), each with an error listing the names, and
   sdl_args_save_json (the ALCF examples' args dump). */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static void test_optim_by_name(void) {
    sdl_model *m = sdl_model_new(1);
    sdl_linear_layer(m, "fc", 3, 2, true);
    struct { const char *name; sdl_optim_kind kind; float momentum; bool nesterov; } c[] = {
        {"sgd", SDL_OPTIM_SGD, 0.9f, false}, {"SGD", SDL_OPTIM_SGD, 0.9f, false}, {"Nesterov", SDL_OPTIM_SGD, 0.9f, true},
        {"adam", SDL_OPTIM_ADAM, 0, false}, {"AdamW", SDL_OPTIM_ADAMW, 0, false}, {"LARS", SDL_OPTIM_LARS, 0.9f, false},
        {"lamb", SDL_OPTIM_LAMB, 0, false}};
    for (int i = 0; i < 7; i++) {
        sdl_optim *o = sdl_optim_by_name(m, c[i].name, 0.25f, 1e-4f);
        CHECK(o && o->desc.kind == c[i].kind && o->desc.momentum == c[i].momentum && o->desc.nesterov == c[i].nesterov &&
              o->lr == 0.25f && o->desc.weight_decay == 1e-4f, "%s", c[i].name);
        sdl_optim_free(o);
    }
    CHECK(!sdl_optim_by_name(m, "rmsprop", 0.1f, 0) && sdl_last_result() == SDL_ERR_ARG && strstr(sdl_last_error(), "'rmsprop'") &&
          strstr(sdl_last_error(), "lamb"), "unknown: %s", sdl_last_error());
    CHECK(!sdl_optim_by_name(m, "sgdx", 0.1f, 0) && !sdl_optim_by_name(m, "sg", 0.1f, 0) && !sdl_optim_by_name(m, NULL, 0.1f, 0), "no prefixes");
    sdl_model_free(m);
}

static void test_sched_by_name(void) {
    sdl_sched_desc d;
    memset(&d, 0, sizeof d);
    d.base_lr = 1.0f;
    d.total = 150;
    CHECK(sdl_sched_by_name(&d, "step_wise_decay") == SDL_OK && d.kind == SDL_SCHED_STEP && d.milestones[0] == 80 && d.milestones[1] == 120 &&
          d.warmup == 0, "step_wise_decay: x0.1 at 80 and 120 of 150");
    CHECK(fabsf(sdl_sched_lr(&d, 79) - 1.0f) < 1e-6f && fabsf(sdl_sched_lr(&d, 80) - 0.1f) < 1e-6f && fabsf(sdl_sched_lr(&d, 120) - 0.01f) < 1e-6f,
          "its rates");
    CHECK(sdl_sched_by_name(&d, "Step-Wise-Decay-With-Warmup") == SDL_OK && d.warmup == 5 && fabsf(sdl_sched_lr(&d, 0) - 0.1f) < 1e-6f &&
          fabsf(sdl_sched_lr(&d, 5) - 1.0f) < 1e-6f && fabsf(sdl_sched_lr(&d, 100) - 0.1f) < 1e-6f, "with warm-up over 5 of 150, from 0.1x");
    d.total = 20;
    d.warmup = 0;
    CHECK(sdl_sched_by_name(&d, "step") == SDL_OK && d.milestones[0] == 10 && d.milestones[1] == 15 && d.milestones[2] == 0, "step: 50%% and 75%%");
    CHECK(sdl_sched_by_name(&d, "cosine") == SDL_OK && d.kind == SDL_SCHED_COSINE && d.milestones[0] == 0, "cosine");
    CHECK(sdl_sched_by_name(&d, "clr") == SDL_OK && d.kind == SDL_SCHED_ONE_CYCLE && sdl_sched_by_name(&d, "one_cycle") == SDL_OK, "clr, one-cycle");
    CHECK(sdl_sched_by_name(&d, "NONE") == SDL_OK && d.kind == SDL_SCHED_CONSTANT && sdl_sched_lr(&d, 19) == 1.0f, "none");
    CHECK(sdl_sched_by_name(&d, "exp") == SDL_ERR_ARG && strstr(sdl_last_error(), "'exp'") && strstr(sdl_last_error(), "clr"), "unknown: %s", sdl_last_error());
}

static void test_args_json(void) {
    int epochs = 3;
    float lr = 0.1f;
    bool fp16 = true;
    const char *data = "a \"b\"\\c";
    sdl_arg args[] = {{"epochs", SDL_ARG_INT, &epochs, ""}, {"lr|learning-rate", SDL_ARG_FLOAT, &lr, ""},
                      {"fp16-allreduce", SDL_ARG_BOOL, &fp16, ""}, {"data", SDL_ARG_STRING, &data, ""}};
    char *argv[] = {(char *)"prog", (char *)"--epochs=7", (char *)"--learning_rate", (char *)"0.5"};
    CHECK(sdl_args_parse(4, argv, args, 4) == SDL_OK, "parse");
    (void)system("mkdir -p build");
    CHECK(sdl_args_save_json("build/test_names_args.json", args, 4) == SDL_OK, "save: %s", sdl_last_error());
    char text[256] = "";
    FILE *f = fopen("build/test_names_args.json", "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    const char *want = "{\"epochs\": 7, \"lr\": 0.5, \"fp16_allreduce\": true, \"data\": \"a \\\"b\\\"\\\\c\"}\n";
    CHECK(!strcmp(text, want), "the values under argparse's names, strings escaped:\n%s\nwant\n%s", text, want);
    CHECK(sdl_args_save_json("/no/such/dir/a.json", args, 4) == SDL_ERR_IO, "unwritable: %s", sdl_last_error());
    remove("build/test_names_args.json");
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    RUN(test_optim_by_name);
    RUN(test_sched_by_name);
    RUN(test_args_json);
    return sdl_test_finish();
}
