/* test_plot.c - sdl_plot_lines and sdl_plot_bars write PNGs that stb_image decodes, with the
   data where >>decl-plot says: the plot area [64, W - 17] x [28, H - 41], y up, tab10
   colours, markers on the points, no line across a NaN, bars from 0 to their value; and
   bad input is an error, not a picture. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define DIR "build/tests-plot"
static const uint8_t blue[3] = {31, 119, 180}, orange[3] = {255, 127, 14};

typedef struct img { sdl_tensor *t; int w, h; } img;
static img load(const char *path) {
    img m;
    m.t = sdl_load_image(path, 3);
    m.w = m.t ? (int)m.t->shape[2] : 0;
    m.h = m.t ? (int)m.t->shape[1] : 0;
    return m;
}
static bool is(const img *m, int x, int y, const uint8_t rgb[3]) {
    if (!m->t || x < 0 || y < 0 || x >= m->w || y >= m->h) return false;
    const uint8_t *p = sdl_u8(m->t);
    size_t hw = (size_t)m->w * (size_t)m->h, i = (size_t)y * (size_t)m->w + (size_t)x;
    return p[i] == rgb[0] && p[hw + i] == rgb[1] && p[2 * hw + i] == rgb[2];
}
/* the pixel of (x, y) for a plot area over [x0, x1] x [y0, y1] on a w x h canvas */
static int px(double x, double x0, double x1, int w) { return 64 + (int)lround((x - x0) / (x1 - x0) * (w - 17 - 64)); }
static int py(double y, double y0, double y1, int h) { return h - 41 - (int)lround((y - y0) / (y1 - y0) * (h - 41 - 28)); }

static void test_lines(void) {
    float a[5] = {0.9f, 0.5f, 0.3f, 0.25f, 0.2f}, b[5] = {0.1f, 0.4f, NAN, 0.4f, 0.8f};
    sdl_plot_series s[2] = {{"train", a, NULL, 5}, {"test", b, NULL, 5}};
    sdl_plot_desc d;
    memset(&d, 0, sizeof d);
    d.title = "loss per epoch";
    d.xlabel = "epoch";
    d.ylabel = "loss";
    d.width = 400;
    d.height = 300;
    d.ymin = 0.0f;
    d.ymax = 1.0f;
    CHECK(sdl_plot_lines(DIR "/lines.png", s, 2, &d) == SDL_OK, "plot_lines: %s", sdl_last_error());
    img m = load(DIR "/lines.png");
    CHECK(m.t && m.w == 400 && m.h == 300, "decodes as 400 x 300 RGB");
    int hits = 0;
    for (int i = 0; i < 5; i++) hits += is(&m, px(i + 1, 1, 5, 400), py(a[i], 0, 1, 300), blue);
    CHECK(hits == 5, "series 0: blue at each of its 5 points (%d)", hits);
    hits = 0;
    for (int i = 0; i < 5; i++) hits += i == 2 || is(&m, px(i + 1, 1, 5, 400), py(b[i], 0, 1, 300), orange);
    CHECK(hits == 5, "series 1: orange at its 4 finite points (%d)", hits);
    /* halfway along segment 1 -> 2 of series 0 lies on the line */
    CHECK(is(&m, (px(1, 1, 5, 400) + px(2, 1, 5, 400)) / 2, (py(0.9, 0, 1, 300) + py(0.5, 0, 1, 300)) / 2, blue), "the line between points");
    /* series 1 has NaN at epoch 3 and 0.4 on both sides: no line at (3, 0.4) */
    CHECK(!is(&m, px(3, 1, 5, 400), py(0.4, 0, 1, 300), orange), "no line across the NaN");
    CHECK(is(&m, px(3, 1, 5, 400), py(0.9, 0, 1, 300), (const uint8_t[3]){255, 255, 255}) ||
          is(&m, px(3, 1, 5, 400), py(0.9, 0, 1, 300), (const uint8_t[3]){225, 225, 225}), "away from the data: white or grid");
    int ink = 0;
    for (int y = 4; y < 22; y++)
        for (int x = 0; x < 400; x++) ink += is(&m, x, y, (const uint8_t[3]){40, 40, 40});
    CHECK(ink > 50, "the title is drawn (%d ink pixels)", ink);
    sdl_tensor_free(m.t);
}

/* no y range given: round ticks around the data; x given */
static void test_auto_range(void) {
    float x[4] = {1, 2, 4, 8}, y[4] = {0.23f, 0.87f, 0.5f, 0.6f};
    sdl_plot_series s = {NULL, y, x, 4};
    CHECK(sdl_plot_lines(DIR "/auto.png", &s, 1, NULL) == SDL_OK, "plot_lines with no desc: %s", sdl_last_error());
    img m = load(DIR "/auto.png");
    CHECK(m.w == 640 && m.h == 400, "640 x 400 by default");
    int hits = 0;
    for (int i = 0; i < 4; i++) hits += is(&m, px(x[i], 1, 8, 640), py(y[i], 0.2, 0.9, 400), blue);
    CHECK(hits == 4, "y over [0.2, 0.9] (ticks of 0.1 around 0.23..0.87), x over [1, 8] (%d)", hits);
    sdl_tensor_free(m.t);
}

static void test_bars(void) {
    const char *labels[3] = {"1", "2", "4"};
    float v[3] = {100, 180, 300};
    sdl_plot_desc d;
    memset(&d, 0, sizeof d);
    d.title = "images/s";
    d.width = 300;
    d.height = 200;
    CHECK(sdl_plot_bars(DIR "/bars.png", labels, v, 3, &d) == SDL_OK, "plot_bars: %s", sdl_last_error());
    img m = load(DIR "/bars.png");
    double slot = (double)(300 - 17 - 64 + 1) / 3;
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        int cx = 64 + (int)lround(slot * (i + 0.5)), top = py(v[i], 0, 350, 200);
        ok += is(&m, cx, (top + py(0, 0, 350, 200)) / 2, blue) && is(&m, cx, top + 1, blue) && !is(&m, cx, top - 3, blue);
    }
    CHECK(ok == 3, "each bar from 0 up to its value, on a [0, 350] axis (300 + 8%%, to ticks of 50) (%d)", ok);
    sdl_tensor_free(m.t);
}

static void test_errors(void) {
    float y[2] = {1, 2}, nan2[2] = {NAN, NAN};
    sdl_plot_series s = {"a", y, NULL, 2}, bad = {"b", nan2, NULL, 2}, neg = {"c", y, NULL, -1};
    sdl_plot_desc tiny;
    memset(&tiny, 0, sizeof tiny);
    tiny.width = 10;
    CHECK(sdl_plot_lines(DIR "/e.png", &s, 0, NULL) == SDL_ERR_ARG, "no series");
    CHECK(sdl_plot_lines(DIR "/e.png", &bad, 1, NULL) == SDL_ERR_ARG && strstr(sdl_last_error(), "no finite point"), "only NaN: %s", sdl_last_error());
    CHECK(sdl_plot_lines(DIR "/e.png", &neg, 1, NULL) == SDL_ERR_ARG, "n < 0");
    CHECK(sdl_plot_lines(DIR "/e.png", &s, 1, &tiny) == SDL_ERR_ARG && strstr(sdl_last_error(), "10x400"), "too small: %s", sdl_last_error());
    CHECK(sdl_plot_bars(DIR "/e.png", NULL, nan2, 2, NULL) == SDL_ERR_ARG, "a NaN bar");
    CHECK(sdl_plot_lines("/no/such/dir/x.png", &s, 1, NULL) == SDL_ERR_IO, "unwritable path: %s", sdl_last_error());
    FILE *f = fopen(DIR "/e.png", "rb");
    CHECK(!f, "no file written by a failed call");
    if (f) fclose(f);
}

int main(void) {
    (void)gradcheck;
    (void)test_ids;
    (void)check_small_cnn_trains;
    CHECK(system("mkdir -p " DIR) == 0, "mkdir");
    remove(DIR "/e.png");
    RUN(test_lines);
    RUN(test_auto_range);
    RUN(test_bars);
    RUN(test_errors);
    return sdl_test_finish();
}
