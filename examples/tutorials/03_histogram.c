/* 03_histogram.c - JSC day 1: the pixel-value histogram of a whole image dataset, in
   parallel. The images (a folder tree of JPEG/PNG files, or with --zip the image members of
   one ZIP file, as the course reads Tiny-ImageNet) are split into contiguous shares, one per
   rank; each rank decodes its share and counts every channel's values 0..255; MPI_Reduce
   adds the counts on rank 0, which writes them as a (channels, 256) int32 .npy file.

   data:   /usr/bin/python3 examples/tutorials/make_data.py data   (Fashion-MNIST as JPEGs)
   build:  mpicc -O2 -I. examples/tutorials/03_histogram.c -o build/03_histogram -lm -lpthread
   run:    mpirun -np 2 ./build/03_histogram --data data/fashion --out hist.npy
           mpirun -np 2 ./build/03_histogram --zip data/fashion.zip --out hist.npy
           python3 -c "import numpy; h = numpy.load('hist.npy'); print(h.shape, h.sum(1))" */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>

/* a JPEG or PNG by its name; names starting with '.' are skipped, as sdl_list_files does
   (macOS puts ._name files beside the images in its ZIPs) */
static bool is_image(const char *path) {
    static const char *const globs[] = {"*.jpg", "*.jpeg", "*.png", "*.JPG", "*.JPEG", "*.PNG"};
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    for (int i = 0; i < 6 && name[0] != '.'; i++)
        if (sdl_glob_match(globs[i], name)) return true;
    return false;
}

/* image i of the list: file names[i] under dir, or member i of the ZIP */
static sdl_tensor *load(sdl_zip *zip, const char *dir, char **names, int64_t i, int channels) {
    if (!zip) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        return sdl_load_image(path, channels);
    }
    size_t n;
    uint8_t *bytes = sdl_zip_read(zip, i, &n);
    sdl_tensor *img = bytes ? sdl_decode_image(bytes, n, channels, sdl_zip_name(zip, i)) : NULL;
    sdl_bytes_free(bytes);
    return img;
}

int main(int argc, char **argv) {
    const char *data = "data/fashion", *zip_path = "", *out = "hist.npy";
    int channels = 3, limit = 0;
    sdl_arg args[] = {{"data", SDL_ARG_STRING, &data, "a folder tree of JPEG/PNG images"},
                      {"zip", SDL_ARG_STRING, &zip_path, "read the image members of this ZIP file instead"},
                      {"channels", SDL_ARG_INT, &channels, "1 grey, 3 RGB (converted as decoded)"},
                      {"out", SDL_ARG_STRING, &out, "where rank 0 writes the (channels, 256) histogram"},
                      {"limit", SDL_ARG_INT, &limit, "only the first N images (0: all)"}};
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    int rank = sdl_mpi_rank(), size = sdl_mpi_size();
    sdl_zip *zip = NULL;
    char **names = NULL;
    int nfiles = 0;
    bool ok = sdl_args_parse(argc, argv, args, 5) == SDL_OK && (channels == 1 || channels == 3);
    if (ok && *zip_path) ok = (zip = sdl_zip_open(zip_path)) != NULL;
    else if (ok) ok = (names = sdl_list_files(data, NULL, &nfiles)) != NULL;
    if (!ok) {
        if (rank == 0) { fprintf(stderr, "%s\n", sdl_last_error()); sdl_args_usage(stderr, argv[0], args, 5); }
        sdl_mpi_finalize();
        return 2;
    }
    /* the same list of images on every rank: the entries that end in an image extension */
    int64_t entries = zip ? sdl_zip_count(zip) : nfiles, count = 0;
    int64_t *images = (int64_t *)malloc(sizeof(int64_t) * (size_t)(entries + 1));
    for (int64_t i = 0; i < entries; i++)
        if (is_image(zip ? sdl_zip_name(zip, i) : names[i])) images[count++] = i;
    if (limit > 0 && limit < count) count = limit;
    int64_t begin, mine; /* this rank's contiguous share [begin, begin + mine) */
    sdl_mpi_shard_range(count, &begin, &mine);

    double t0 = MPI_Wtime();
    long long hist[3 * 256] = {0}, total[3 * 256];
    for (int64_t k = begin; k < begin + mine; k++) {
        sdl_tensor *img = load(zip, data, names, images[k], channels);
        if (!img) { fprintf(stderr, "rank %d: %s\n", rank, sdl_last_error()); MPI_Abort(sdl_mpi_comm(), 1); }
        int64_t hw = img->shape[1] * img->shape[2];
        for (int c = 0; c < channels; c++)
            for (int64_t i = 0; i < hw; i++) hist[c * 256 + sdl_u8(img)[c * hw + i]]++;
        sdl_tensor_free(img);
    }
    double share[3] = {(double)begin, (double)mine, MPI_Wtime() - t0}, *shares = rank == 0 ? (double *)malloc(sizeof share * (size_t)size) : NULL;
    MPI_Reduce(hist, total, channels * 256, MPI_LONG_LONG, MPI_SUM, 0, sdl_mpi_comm());
    MPI_Gather(share, 3, MPI_DOUBLE, shares, 3, MPI_DOUBLE, 0, sdl_mpi_comm());
    double dt = MPI_Wtime() - t0;

    if (rank == 0) {
        for (int r = 0; r < size; r++)
            printf("rank %d: images %.0f..%.0f (%.0f), %.3f s\n", r, shares[3 * r], shares[3 * r] + shares[3 * r + 1] - 1, shares[3 * r + 1], shares[3 * r + 2]);
        sdl_tensor *h = sdl_tensor_new(sdl_shape2(channels, 256), SDL_I32);
        long long pixels = 0, big = 0;
        double mean[3] = {0, 0, 0};
        for (int c = 0; c < channels; c++)
            for (int v = 0; v < 256; v++) {
                long long n = total[c * 256 + v];
                pixels += c == 0 ? n : 0;
                mean[c] += (double)v * (double)n;
                big = n > big ? n : big;
                sdl_i32(h)[c * 256 + v] = (int32_t)n;
            }
        if (big > INT32_MAX) { fprintf(stderr, "a bin holds %lld pixels, over int32: use --limit\n", big); MPI_Abort(sdl_mpi_comm(), 1); }
        if (sdl_save_npy(out, h) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); MPI_Abort(sdl_mpi_comm(), 1); }
        printf("histogram of %lld images from %s, %lld pixels a channel, mean", (long long)count, *zip_path ? zip_path : data, pixels);
        for (int c = 0; c < channels; c++) printf(" %.2f", pixels ? mean[c] / (double)pixels : 0.0);
        printf(", %.3f s on %d ranks -> %s (%d, 256) int32\n", dt, size, out, channels);
        sdl_tensor_free(h);
        free(shares);
    }
    free(images);
    sdl_names_free(names);
    sdl_zip_close(zip);
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}
