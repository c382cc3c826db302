/* test_summary.c - TensorBoard event files (sdl_summary_*) read back by
   tests/read_tfevents.py, a reader written from the TFRecord, protobuf and event.proto specs
   (it checks every masked CRC-32C itself): the version event, scalars with their steps and
   exact float values, an image grid with its size in the Image message and in the PNG.
   A flipped byte makes the reader fail; a NULL writer writes nothing; a missing folder is an
   error. Without python3 the read-back is skipped. */
#define _POSIX_C_SOURCE 200809L /* popen */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define DIR "build/tests-summary"

/* the reader's output for path into out; its exit status */
static int read_back(const char *path, char *out, size_t cap) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 tests/read_tfevents.py '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = 0;
    return p ? pclose(p) : -1;
}

static void test_events(void) {
    CHECK(system("rm -rf " DIR " && mkdir -p build") == 0, "clean");
    sdl_summary_writer *w = sdl_summary_open(DIR);
    CHECK(w && strstr(sdl_summary_path(w), DIR "/events.out.tfevents."), "open makes the folder and the file: %s", sdl_last_error());
    if (!w) return;
    float loss[3] = {2.25f, 1.0f / 3.0f, -0.125f};
    for (int i = 0; i < 3; i++) CHECK(sdl_summary_scalar(w, "loss/train", loss[i], i + 1) == SDL_OK, "scalar %d", i);
    CHECK(sdl_summary_scalar(w, "lr", 0.1f, 1234567890123LL) == SDL_OK, "a large step");
    sdl_tensor *img = sdl_tensor_new(sdl_shape4(4, 1, 8, 8), SDL_F32);
    for (int64_t i = 0; i < img->numel; i++) sdl_f32(img)[i] = (float)(i % 7) / 6.0f;
    CHECK(sdl_summary_image(w, "samples", img, 2, 0.0f, 1.0f, 3) == SDL_OK, "image: %s", sdl_last_error());
    CHECK(sdl_summary_image(w, "bad", NULL, 2, 0.0f, 1.0f, 3) == SDL_ERR_ARG, "a NULL image is an error");
    char path[1100];
    snprintf(path, sizeof path, "%s", sdl_summary_path(w));
    sdl_summary_close(w);
    sdl_tensor_free(img);
    if (system("command -v python3 >/dev/null 2>&1") != 0) { printf("  skip: python3 not found\n"); return; }
    char out[4096];
    int rc = read_back(path, out, sizeof out);
    char want[1024];
    /* floats with 9 digits: each float32 exactly */
    snprintf(want, sizeof want,
             "version brain.Event:2 step 0\nscalar loss/train 1 2.25\nscalar loss/train 2 %.9g\nscalar loss/train 3 -0.125\n"
             "scalar lr 1234567890123 %.9g\nimage samples 3 22 22 1 22 22\n", (double)(1.0f / 3.0f), (double)0.1f);
    CHECK(rc == 0 && !strcmp(out, want), "the reader sees every event (rc %d):\n%s\nwant:\n%s", rc, out, want);

    /* one flipped byte in the last record's data: its CRC no longer matches */
    FILE *f = fopen(path, "r+b");
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (f && size > 40 && fseek(f, size - 20, SEEK_SET) == 0) {
        int c = fgetc(f);
        fseek(f, size - 20, SEEK_SET);
        fputc(c ^ 0x01, f);
    }
    if (f) fclose(f);
    rc = read_back(path, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "bad data CRC"), "a flipped byte is caught:\n%s", out);
}

static void test_null_and_errors(void) {
    CHECK(sdl_summary_scalar(NULL, "x", 1.0f, 0) == SDL_OK && sdl_summary_image(NULL, "x", NULL, 1, 0, 1, 0) == SDL_OK &&
          sdl_summary_path(NULL) == NULL, "a NULL writer (ranks other than 0) does nothing");
    sdl_summary_close(NULL);
    CHECK(!sdl_summary_open("/no/such/dir/runs") && sdl_last_result() == SDL_ERR_IO && strstr(sdl_last_error(), "cannot create"),
          "a folder that cannot be made: %s", sdl_last_error());
    CHECK(!sdl_summary_open("") && sdl_last_result() == SDL_ERR_ARG, "no folder");
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    RUN(test_events);
    RUN(test_null_and_errors);
    return sdl_test_finish();
}
