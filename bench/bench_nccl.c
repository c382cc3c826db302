/* bench_nccl.c - sdl_mpi.h's GPU allreduce: bandwidth per message size of each transport (NCCL,
   host staging, CUDA-aware MPI), as a ddp sync of one gradient bucket sees it.

   make bench-nccl  (bench/bench_nccl.sh) builds it with nvcc (NCCL where nccl.h is found) and
   runs, on a machine with one GPU:
       mpirun -np 1 bench_nccl --transport nccl    NCCL with one rank (algbw only: 0 bytes cross
                                                   a link; busbw = 0 by nccl-tests' formula)
       mpirun -np 2 bench_nccl --transport host    2 ranks sharing the GPU, host staging
   and on a node with several GPUs any -np up to the GPU count with --transport nccl.

   What is timed: a model of one parameter of N floats on the GPU, sdl_mpi_ddp in flat mode
   (one bucket of N floats), sdl_mpi_ddp_sync then cudaStreamSynchronize (so the time includes
   the averaging kernel, the copies of the host path, and the wait of the compute stream). The
   reference (ref=) is the bare library call on the same buffer: ncclAllReduce on the compute
   stream and a sync (NCCL), cudaMemcpy D2H + MPI_Allreduce + cudaMemcpy H2D from pinned memory
   (host), MPI_Allreduce on the device pointer (cuda-mpi). ratio = sdl / ref (1 = no overhead).
   Before timing, each size is checked: rank r's gradients are r + i mod 7, the mean must come
   out exactly. As nccl-tests defines them:
       algbw = bytes / t,   busbw = algbw * 2 (n - 1) / n   (what each link carried)
   Each size: 3 rounds alternating sdl and ref, the fastest round of each (the checker is off
   while timing). Prints a table, then BENCH name=gpu_allreduce_<bw>_<transport>_np<n>_<size>
   sdl=<GB/s> ref=<GB/s> unit=GB/s ratio=<sdl/ref>, bw = busbw, or algbw for one rank. */
#define SDL_IMPLEMENTATION
#include "sdl.h"
#ifdef __CUDACC__
#define SDL_CUDA_IMPLEMENTATION
#include "sdl_cuda.h"
#endif
#define SDL_MPI_IMPLEMENTATION
#include "sdl_mpi.h"
#include <stdlib.h>
#include <string.h>

#ifndef __CUDACC__
int main(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("bench_nccl: needs an nvcc build with a GPU (see bench/bench_nccl.sh); nothing to measure\n");
    return 0;
}
#else
static int rank_, size_;

/* the bare call the transport makes, on buf (device, count floats); host: pinned staging */
static sdl_result ref_allreduce(sdl_mpi_transport t, float *buf, int64_t count, float *host) {
    cudaStream_t s = (cudaStream_t)sdl_cuda_stream();
#ifdef SDL_MPI_NCCL
    if (t == SDL_MPI_TRANSPORT_NCCL) {
        if (ncclAllReduce(buf, buf, (size_t)count, ncclFloat32, ncclAvg, sdl__mg.nccl, s) != ncclSuccess) return SDL_ERR_COMM;
        return cudaStreamSynchronize(s) == cudaSuccess ? SDL_OK : SDL_ERR_DEVICE;
    }
#endif
    if (t == SDL_MPI_TRANSPORT_CUDA_MPI)
        return MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, sdl_mpi_comm()) == MPI_SUCCESS ? SDL_OK : SDL_ERR_COMM;
    size_t bytes = (size_t)count * sizeof(float);
    if (cudaMemcpy(host, buf, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) return SDL_ERR_DEVICE;
    if (MPI_Allreduce(MPI_IN_PLACE, host, (int)count, MPI_FLOAT, MPI_SUM, sdl_mpi_comm()) != MPI_SUCCESS) return SDL_ERR_COMM;
    return cudaMemcpy(buf, host, bytes, cudaMemcpyHostToDevice) == cudaSuccess ? SDL_OK : SDL_ERR_DEVICE;
}

static double slowest(double t) {
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, sdl_mpi_comm());
    return t;
}

int main(int argc, char **argv) {
    if (sdl_mpi_init(&argc, &argv) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
    rank_ = sdl_mpi_rank();
    size_ = sdl_mpi_size();
    const char *transport = "auto";
    int max_mib = 256;
    sdl_arg args[] = {
        {"transport", SDL_ARG_STRING, &transport, "auto, nccl, cuda-mpi or host"},
        {"max-mib", SDL_ARG_INT, &max_mib, "largest message in MiB (sizes 4 B .. this, x4)"},
    };
    if (sdl_args_parse(argc, argv, args, 2) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 2; }
    if (sdl_mpi_cuda_set_device() < 0 || sdl_cuda_init() != SDL_OK) {
        if (rank_ == 0) printf("bench_nccl: skipped: %s\n", sdl_last_error());
        sdl_mpi_finalize();
        return 0;
    }
    sdl_mpi_transport want = !strcmp(transport, "nccl") ? SDL_MPI_TRANSPORT_NCCL : !strcmp(transport, "cuda-mpi") ? SDL_MPI_TRANSPORT_CUDA_MPI
                           : !strcmp(transport, "host") ? SDL_MPI_TRANSPORT_HOST : SDL_MPI_TRANSPORT_AUTO;
    const int64_t max_count = (int64_t)max_mib << 18; /* floats */
    float *host = NULL, *vals = (float *)malloc((size_t)max_count * sizeof(float));
    if (cudaMallocHost((void **)&host, (size_t)max_count * sizeof(float)) != cudaSuccess || !vals) {
        fprintf(stderr, "bench_nccl: no memory for %d MiB\n", max_mib);
        return 1;
    }
    double bus = 2.0 * (size_ - 1) / size_;
    bool one = size_ == 1;
    char lines[32][200];
    int nlines = 0;
    sdl_mpi_transport used = want;
    for (int64_t count = 1; count <= max_count; count *= 4) {
        sdl_model *m = sdl_model_new(1);
        sdl_model_param(m, "w", sdl_shape1(count), false);
        if (sdl_cuda_model_to_device(m) != SDL_OK) { fprintf(stderr, "%s\n", sdl_last_error()); return 1; }
        sdl_mpi_ddp_desc desc;
        memset(&desc, 0, sizeof desc);
        desc.mode = SDL_MPI_MODE_FLAT;
        sdl_mpi_gpu_desc gd;
        memset(&gd, 0, sizeof gd);
        gd.transport = want;
        sdl_mpi_ddp *d = sdl_mpi_ddp_new_gpu(m, &desc, &gd);
        if (!d) { if (rank_ == 0) printf("bench_nccl: %s\n", sdl_last_error()); sdl_model_free(m); break; }
        used = sdl_mpi_ddp_transport(d);
        if (count == 1 && rank_ == 0) {
            printf("GPU allreduce through sdl_mpi_ddp_sync, %d rank(s), transport %s (float mean, in place); GB/s = 1e9 bytes/s\n",
                   size_, sdl_mpi_transport_name(used));
            printf("%10s %6s | %10s %10s | %10s %10s | %6s\n", "bytes", "iters", "sdl algbw", "sdl busbw", "ref algbw", "ref busbw", "ratio");
        }
        /* check: rank r holds r + i mod 7; the mean is (n-1)/2 + i mod 7 exactly */
        for (int64_t i = 0; i < count; i++) vals[i] = (float)(rank_ + i % 7);
        cudaMemcpy(m->grad_data, vals, (size_t)count * sizeof(float), cudaMemcpyHostToDevice);
        sdl_mpi_set_timeout(30);
        sdl_result r = sdl_mpi_ddp_sync(d);
        cudaMemcpy(vals, m->grad_data, (size_t)count * sizeof(float), cudaMemcpyDeviceToHost);
        int bad = r != SDL_OK;
        for (int64_t i = 0; i < count; i++) bad += vals[i] != (float)(0.5 * (size_ - 1) + (double)(i % 7));
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, sdl_mpi_comm());
        if (bad) {
            if (rank_ == 0) printf("bench_nccl: %lld floats: the mean is wrong (%s): not timing\n", (long long)count, sdl_last_error());
            sdl_mpi_ddp_free(d);
            sdl_model_free(m);
            break;
        }
        sdl_mpi_set_timeout(0);
        int64_t bytes = count * 4;
        int iters = (int)(256ll * 1024 * 1024 / (bytes * 4));
        iters = iters > 200 ? 200 : iters < 5 ? 5 : iters;
        double ts = 1e30, tr = 1e30;
        for (int round = 0; round < 3; round++) {
            for (int k = 0; k < 2; k++) {
                sdl_cuda_synchronize();
                MPI_Barrier(sdl_mpi_comm());
                double t0 = MPI_Wtime();
                for (int it = 0; it < iters; it++) {
                    if (k == 0) { sdl_mpi_ddp_sync(d); cudaStreamSynchronize((cudaStream_t)sdl_cuda_stream()); }
                    else ref_allreduce(used, m->grad_data, count, host);
                }
                double t = slowest((MPI_Wtime() - t0) / iters);
                if (k == 0) ts = t < ts ? t : ts;
                else tr = t < tr ? t : tr;
            }
        }
        double as = bytes / ts / 1e9, ar = bytes / tr / 1e9;
        if (rank_ == 0) {
            printf("%10lld %6d | %10.3f %10.3f | %10.3f %10.3f | %6.2f\n", (long long)bytes, iters, as, as * bus, ar, ar * bus, tr / ts);
            char size_name[32];
            if (bytes >= 1 << 20) snprintf(size_name, sizeof size_name, "%lldMiB", (long long)(bytes >> 20));
            else if (bytes >= 1 << 10) snprintf(size_name, sizeof size_name, "%lldKiB", (long long)(bytes >> 10));
            else snprintf(size_name, sizeof size_name, "%lldB", (long long)bytes);
            snprintf(lines[nlines++], sizeof lines[0], "BENCH name=gpu_allreduce_%s_%s_np%d_%s sdl=%.4g ref=%.4g unit=GB/s ratio=%.2f",
                     one ? "algbw" : "busbw", sdl_mpi_transport_name(used), size_, size_name, one ? as : as * bus,
                     one ? ar : ar * bus, tr / ts);
        }
        sdl_mpi_ddp_free(d);
        sdl_model_free(m);
        sdl_arena_reset();
    }
    if (rank_ == 0) for (int i = 0; i < nlines; i++) printf("%s\n", lines[i]);
    free(vals);
    cudaFreeHost(host);
    sdl_mpi_set_timeout(30);
    sdl_cuda_shutdown();
    return sdl_mpi_finalize() == SDL_OK ? 0 : 1;
}
#endif
