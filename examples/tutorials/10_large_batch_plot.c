/* 10_large_batch_plot.c - JSC day 4: the large-batch study's table as a bar chart.
   10_large_batch.sh runs 10_resnet.c for each setting at a small and a large global batch and
   writes a CSV  setting,batch,final_val_acc,best_val_acc ; this draws the final validation
   accuracy of each row as one bar labelled "setting batch", in the CSV's order.

   build:  cc -O2 -I. examples/tutorials/10_large_batch_plot.c -o build/10_large_batch_plot -lm -lpthread
   run:    ./build/10_large_batch_plot large_batch/large_batch.csv large_batch/large_batch.png */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <string.h>

enum { MAX_ROWS = 32 };

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s study.csv out.png\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[1]); return 1; }
    char line[256], setting[32], label[MAX_ROWS][48];
    const char *labels[MAX_ROWS];
    float final_acc[MAX_ROWS];
    int n = 0;
    while (n < MAX_ROWS && fgets(line, sizeof line, f)) {
        int batch;
        float best;
        if (sscanf(line, "%31[^,],%d,%f,%f", setting, &batch, &final_acc[n], &best) != 4) continue; /* the header */
        snprintf(label[n], sizeof label[n], "%s %d", setting, batch);
        labels[n] = label[n];
        printf("%-24s final %.4f best %.4f\n", label[n], (double)final_acc[n], (double)best);
        n++;
    }
    fclose(f);
    if (n == 0) { fprintf(stderr, "%s: no rows setting,batch,final_val_acc,best_val_acc\n", argv[1]); return 1; }
    sdl_plot_desc d;
    memset(&d, 0, sizeof d);
    d.title = "large-batch study: final validation accuracy";
    d.xlabel = "setting, global batch";
    d.ylabel = "validation accuracy";
    d.width = 80 * n + 120, d.height = 400;
    d.ymin = 0.0f, d.ymax = 1.0f;
    if (sdl_plot_bars(argv[2], labels, final_acc, n, &d) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    printf("wrote %s\n", argv[2]);
    return 0;
}
