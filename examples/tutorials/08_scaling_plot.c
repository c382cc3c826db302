/* 08_scaling_plot.c - JSC day 3: the scaling study as pictures. examples/slurm/scaling.sh
   runs a program (07_allconv_ddp here) on 1, 2, 4, ... ranks and writes a CSV
   NODES,LOCAL_BATCH_SIZE,GPUS_PER_NODE,TOTAL_IMAGES_PER_SEC,SPEEDUP,EFFICIENCY
   with efficiency = T(K) / ((K / Kref) T(Kref)), K = NODES x GPUS_PER_NODE. This program
   draws two bar charts from it: images/s and efficiency per K.

   build:  cc -O2 -I. examples/tutorials/08_scaling_plot.c -o build/08_scaling_plot -lm -lpthread
   run:    PROG="./build/07_allconv_ddp --epochs 1 --steps-per-epoch 20" \
               examples/slurm/scaling.sh examples/slurm/runs.csv scaling.csv
           ./build/08_scaling_plot scaling.csv scaling      (scaling_images.png, scaling_efficiency.png) */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#include <stdlib.h>
#include <string.h>

enum { MAX_ROWS = 64 };

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s scaling.csv NAME   (writes NAME_images.png, NAME_efficiency.png)\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[1]); return 1; }
    char line[256], label[MAX_ROWS][24];
    const char *labels[MAX_ROWS];
    float images[MAX_ROWS], efficiency[MAX_ROWS];
    int n = 0;
    while (n < MAX_ROWS && fgets(line, sizeof line, f)) {
        int nodes, batch, gpus;
        float ips, speedup, eff;
        if (sscanf(line, "%d,%d,%d,%f,%f,%f", &nodes, &batch, &gpus, &ips, &speedup, &eff) != 6) continue; /* the header */
        snprintf(label[n], sizeof label[n], "%d x %d", nodes, gpus);
        labels[n] = label[n];
        images[n] = ips;
        efficiency[n] = eff;
        printf("%s ranks, batch %d each: %.1f images/s, speed-up %.2f, efficiency %.3f\n", label[n], batch, (double)ips, (double)speedup,
               (double)eff);
        n++;
    }
    fclose(f);
    if (n == 0) { fprintf(stderr, "%s: no rows NODES,LOCAL_BATCH_SIZE,GPUS_PER_NODE,TOTAL_IMAGES_PER_SEC,SPEEDUP,EFFICIENCY\n", argv[1]); return 1; }
    char path[512];
    sdl_plot_desc d;
    memset(&d, 0, sizeof d);
    d.title = "throughput";
    d.xlabel = "nodes x ranks per node";
    d.ylabel = "images/s";
    snprintf(path, sizeof path, "%s_images.png", argv[2]);
    sdl_result r = sdl_plot_bars(path, labels, images, n, &d);
    d.title = "scaling efficiency";
    d.ylabel = "efficiency";
    d.ymin = 0.0f;
    d.ymax = 1.2f;
    snprintf(path, sizeof path, "%s_efficiency.png", argv[2]);
    if (r != SDL_OK || sdl_plot_bars(path, labels, efficiency, n, &d) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    printf("wrote %s_images.png and %s_efficiency.png\n", argv[2], argv[2]);
    return 0;
}
