/* test_train.c - timer, meters, results CSV, progress lines, flag parsing */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

static void test_now(void) {
    double a = sdl_now();
    volatile double s = 0;
    for (int i = 0; i < 2000000; i++) s += i;
    double b = sdl_now();
    CHECK(b > a && b - a < 10.0, "time moves forward: %f -> %f", a, b);
}

static void test_meter(void) {
    sdl_meter m;
    sdl_meter_reset(&m);
    CHECK(sdl_meter_loss(&m) == 0.0 && sdl_meter_accuracy(&m) == 0.0, "empty meter reads 0");
    sdl_meter_add(&m, 2.0f, 3, 4);  /* batch of 4, mean loss 2 */
    sdl_meter_add(&m, 0.5f, 2, 2);  /* batch of 2, mean loss 0.5 */
    CHECK(fabs(sdl_meter_loss(&m) - (2.0 * 4 + 0.5 * 2) / 6.0) < 1e-12, "loss weighted by batch size: %f", sdl_meter_loss(&m));
    CHECK(fabs(sdl_meter_accuracy(&m) - 5.0 / 6.0) < 1e-12, "accuracy 5/6: %f", sdl_meter_accuracy(&m));
    CHECK(m.batches == 2 && m.count == 6, "counts");
}

static void test_csv(void) {
    const char *path = "build/test_train_results.csv";
    remove(path);
    sdl_epoch_stats s = {1, 0.5, 0.8, 0.6, 0.75, 0.01, 12.5};
    CHECK(sdl_csv_append(path, &s) == SDL_OK, "first row: %s", sdl_last_error());
    s.epoch = 2; s.loss = 0.25;
    CHECK(sdl_csv_append(path, &s) == SDL_OK, "second row");
    FILE *f = fopen(path, "r");
    char text[512] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    CHECK(strcmp(text, "epoch,loss,accuracy,val_loss,val_accuracy,lr,time\n"
                       "1,0.500000,0.800000,0.600000,0.750000,0.01,12.500\n"
                       "2,0.250000,0.800000,0.600000,0.750000,0.01,12.500\n") == 0, "file reads:\n%s", text);
    remove(path);
    CHECK(sdl_csv_append("build/no/such/dir/x.csv", &s) == SDL_ERR_IO && strstr(sdl_last_error(), "no/such"), "unwritable path: %s", sdl_last_error());
}

static void test_progress_plain(void) {
    const char *path = "build/test_train_progress.txt";
    FILE *f = fopen(path, "w+");
    sdl_progress p;
    sdl_meter m;
    sdl_meter_reset(&m);
    sdl_progress_begin(&p, f, 2, 5, 10);
    CHECK(!p.tty, "a file is not a terminal");
    for (int i = 1; i <= 10; i++) { sdl_meter_add(&m, 1.0f, 1, 2); sdl_progress_update(&p, i, &m); }
    sdl_epoch_stats s = {2, sdl_meter_loss(&m), sdl_meter_accuracy(&m), 0.75, 0.625, 0.1, 3.0};
    sdl_progress_end(&p, &s);
    sdl_print_throughput(f, 1000.0, 4.0);
    rewind(f);
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    remove(path);
    CHECK(strcmp(text, "epoch 2/5: loss 1.0000 acc 0.5000 val_loss 0.7500 val_acc 0.6250 lr 0.1 time 3.0s\n"
                       "total images/sec: 250.00\n") == 0, "plain lines, no bar:\n%s", text);
}

static void test_args(void) {
    int epochs = 5, batch = 64, seed = 42;
    float lr = 0.01f;
    const char *data = "default", *opt = "sgd";
    bool help = false, verbose = true;
    sdl_arg args[] = {
        {"epochs", SDL_ARG_INT, &epochs, "epochs"},
        {"batch-size", SDL_ARG_INT, &batch, "batch size"},
        {"lr|learning-rate", SDL_ARG_FLOAT, &lr, "learning rate"},
        {"seed", SDL_ARG_DEFAULT, &seed, "seed"},
        {"data", SDL_ARG_STRING, &data, "data folder"},
        {"optimizer", SDL_ARG_STRING, &opt, "sgd or adam"},
        {"verbose", SDL_ARG_BOOL, &verbose, "talk"},
        {"help", SDL_ARG_BOOL, &help, "this text"},
    };
    int na = (int)(sizeof args / sizeof args[0]);
    char *argv1[] = {(char *)"prog", (char *)"--epochs", (char *)"3", (char *)"--batch_size=128", (char *)"--learning_rate",
                     (char *)"0.5", (char *)"--data=/tmp/x", (char *)"--no-verbose", (char *)"-h", (char *)"--seed", (char *)"-7"};
    CHECK(sdl_args_parse(11, argv1, args, na) == SDL_OK, "parse: %s", sdl_last_error());
    CHECK(epochs == 3 && batch == 128 && lr == 0.5f && !strcmp(data, "/tmp/x") && !verbose && help && seed == -7,
          "values: %d %d %g %s %d %d %d", epochs, batch, (double)lr, data, verbose, help, seed);
    CHECK(!strcmp(opt, "sgd"), "untouched flags keep their defaults");
    char *argv2[] = {(char *)"prog", (char *)"--batch-size", (char *)"32", (char *)"--lr=1e-3", (char *)"--verbose=true"};
    CHECK(sdl_args_parse(5, argv2, args, na) == SDL_OK && batch == 32 && lr == 0.001f && verbose, "dash spelling, = value, bool=true");
    char *bad1[] = {(char *)"prog", (char *)"--epoch", (char *)"3"};
    CHECK(sdl_args_parse(3, bad1, args, na) == SDL_ERR_ARG && strstr(sdl_last_error(), "unknown flag --epoch"), "unknown: %s", sdl_last_error());
    char *bad2[] = {(char *)"prog", (char *)"--epochs", (char *)"three"};
    CHECK(sdl_args_parse(3, bad2, args, na) == SDL_ERR_ARG && strstr(sdl_last_error(), "--epochs wants an integer"), "bad int: %s", sdl_last_error());
    char *bad3[] = {(char *)"prog", (char *)"--lr"};
    CHECK(sdl_args_parse(2, bad3, args, na) == SDL_ERR_ARG && strstr(sdl_last_error(), "needs a value"), "missing value: %s", sdl_last_error());
    char *bad4[] = {(char *)"prog", (char *)"stray"};
    CHECK(sdl_args_parse(2, bad4, args, na) == SDL_ERR_ARG && strstr(sdl_last_error(), "stray"), "positional: %s", sdl_last_error());
    char *bad5[] = {(char *)"prog", (char *)"--lr", (char *)"0.1x"};
    CHECK(sdl_args_parse(3, bad5, args, na) == SDL_ERR_ARG, "trailing junk in a number");
    char *bad6[] = {(char *)"prog", (char *)"--verbose=maybe"};
    CHECK(sdl_args_parse(2, bad6, args, na) == SDL_ERR_ARG, "bad bool");
    /* usage lists every name with its current value */
    FILE *f = fopen("build/test_train_usage.txt", "w+");
    sdl_args_usage(f, "prog", args, na);
    rewind(f);
    char text[2048] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    remove("build/test_train_usage.txt");
    CHECK(strstr(text, "--lr, --learning-rate") && strstr(text, "(default 0.001)") && strstr(text, "--batch-size"), "usage:\n%s", text);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    RUN(test_now);
    RUN(test_meter);
    RUN(test_csv);
    RUN(test_progress_plain);
    RUN(test_args);
    return sdl_test_finish();
}
