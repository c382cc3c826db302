/* nccl.h - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   NOT NCCL: the few NCCL calls sdl_mpi.h makes, done over MPI on host copies, so that its NCCL
   path runs under mpirun in CI without a GPU. It checks the call sequence and the arithmetic
   (and what NCCL itself would refuse: a communicator whose ranks got different unique ids,
   two ranks of one node on one device, host pointers, a count of 0 ranks), not NCCL's speed,
   algorithms or asynchrony: every call has finished when it returns.
   - ncclGetUniqueId: 128 bytes from the pid, the time and a counter (differ per call)
   - ncclCommInitRank: MPI_Comm_dup of MPI_COMM_WORLD; checks nranks and rank against MPI's,
     that every rank passed the same id, and that no two ranks on a node use one device
   - ncclAllReduce / ncclBroadcast: device -> host, MPI_Allreduce / MPI_Bcast, host -> device;
     float32, float16 and bfloat16 (each add in f32, rounded back), sum and avg
   - ncclGroupStart / ncclGroupEnd: a depth counter (the calls inside run at once)
   emu_nccl_calls counts the allreduces and broadcasts, for tests. Needs mpi.h (build with
   mpicxx). */
#pragma once
#include <mpi.h>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <vector>
#include <unistd.h>
#include "cuda_runtime.h"

#define SDL_EMU_NCCL 1
#define NCCL_MAJOR 2
#define NCCL_MINOR 18
#define NCCL_PATCH 0
#define NCCL_VERSION_CODE 21800
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;
typedef enum { ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
               ncclInvalidArgument = 4, ncclInvalidUsage = 5 } ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef enum { ncclInt8 = 0, ncclUint8 = 1, ncclInt32 = 2, ncclUint32 = 3, ncclInt64 = 4, ncclUint64 = 5,
               ncclFloat16 = 6, ncclHalf = 6, ncclFloat32 = 7, ncclFloat = 7, ncclFloat64 = 8, ncclBfloat16 = 9 } ncclDataType_t;
struct emu_nccl_comm { MPI_Comm comm; int rank, size; };
typedef emu_nccl_comm *ncclComm_t;

static long emu_nccl_calls;
static int emu_nccl_group;

static inline const char *ncclGetErrorString(ncclResult_t r) {
    return r == ncclSuccess ? "no error" : r == ncclInvalidArgument ? "invalid argument (emulated NCCL)"
         : r == ncclInvalidUsage ? "invalid usage (emulated NCCL)" : "system error (emulated NCCL)";
}
static inline ncclResult_t ncclGetVersion(int *v) { *v = NCCL_VERSION_CODE; return ncclSuccess; }
static inline ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static unsigned n;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "emu-nccl %ld %ld %u", (long)getpid(), (long)time(NULL), n++);
    return ncclSuccess;
}
static inline ncclResult_t ncclGroupStart(void) { emu_nccl_group++; return ncclSuccess; }
static inline ncclResult_t ncclGroupEnd(void) { return emu_nccl_group-- > 0 ? ncclSuccess : ncclInvalidUsage; }

static inline ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
    int size, me;
    *out = NULL;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != size || rank != me) {
        fprintf(stderr, "emu nccl: ncclCommInitRank(nranks %d, rank %d) but MPI has rank %d of %d\n", nranks, rank, me, size);
        return ncclInvalidArgument;
    }
    if (id.internal[0] == 0) return ncclInvalidArgument;
    /* every rank must hold rank 0's id: the bootstrap broadcast happened */
    ncclUniqueId root = id;
    MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = memcmp(&root, &id, sizeof id) == 0, all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    /* and, as NCCL, no two ranks of a node on one device */
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
    int nn;
    MPI_Comm_size(node, &nn);
    std::vector<int> devs((size_t)nn);
    int dev = 0;
    cudaGetDevice(&dev);
    MPI_Allgather(&dev, 1, MPI_INT, devs.data(), 1, MPI_INT, node);
    MPI_Comm_free(&node);
    int dup = 0;
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < i; j++) dup |= devs[(size_t)i] == devs[(size_t)j];
    if (!all) { fprintf(stderr, "emu nccl: ranks passed different unique ids\n"); return ncclInvalidUsage; }
    if (dup) { fprintf(stderr, "emu nccl: duplicate GPU detected: two ranks of a node on device %d\n", dev); return ncclInvalidUsage; }
    emu_nccl_comm *c = new emu_nccl_comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    c->rank = rank;
    c->size = nranks;
    *out = c;
    return ncclSuccess;
}
static inline ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (!c) return ncclInvalidArgument;
    MPI_Comm_free(&c->comm);
    delete c;
    return ncclSuccess;
}
static inline ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t *r) { *r = ncclSuccess; return ncclSuccess; }

static inline float emu_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
    if (e == 0x1f) x = sign | 0x7f800000u | (mant << 13);
    else if (e == 0) { float f = (float)mant * (1.0f / 16777216.0f); return sign ? -f : f; }
    else x = sign | ((e + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}
static inline uint16_t emu_f2h(float f) { /* round to nearest even, as the GPU's __float2half_rn */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
        uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}
static inline float emu_bf2f(uint16_t h) { uint32_t x = (uint32_t)h << 16; float f; memcpy(&f, &x, 4); return f; }
static inline uint16_t emu_f2bf(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
static void emu_sum_f16(void *in, void *io, int *n, MPI_Datatype *) {
    const uint16_t *a = (const uint16_t *)in; uint16_t *b = (uint16_t *)io;
    for (int i = 0; i < *n; i++) b[i] = emu_f2h(emu_h2f(a[i]) + emu_h2f(b[i]));
}
static void emu_sum_bf16(void *in, void *io, int *n, MPI_Datatype *) {
    const uint16_t *a = (const uint16_t *)in; uint16_t *b = (uint16_t *)io;
    for (int i = 0; i < *n; i++) b[i] = emu_f2bf(emu_bf2f(a[i]) + emu_bf2f(b[i]));
}
static inline size_t emu_nccl_size(ncclDataType_t t) {
    return t == ncclFloat32 ? 4 : t == ncclFloat16 || t == ncclBfloat16 ? 2 : t == ncclFloat64 || t == ncclInt64 || t == ncclUint64 ? 8
         : t == ncclInt32 || t == ncclUint32 ? 4 : 1;
}

static inline ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                                         ncclComm_t c, cudaStream_t) {
    if (!c) return ncclInvalidArgument;
    if (type != ncclFloat32 && type != ncclFloat16 && type != ncclBfloat16) return ncclInvalidArgument; /* what sdl uses */
    if (op != ncclSum && op != ncclAvg) return ncclInvalidArgument;
    size_t bytes = count * emu_nccl_size(type);
    if (count && (!emu_on_device(send, bytes) || !emu_on_device(recv, bytes))) {
        fprintf(stderr, "emu nccl: ncclAllReduce on host memory\n");
        return ncclInvalidArgument;
    }
    emu_nccl_calls++;
    std::vector<char> h(bytes + 1);
    if (cudaMemcpy(h.data(), send, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) return ncclUnhandledCudaError;
    MPI_Op mop = MPI_SUM;
    MPI_Datatype mt = type == ncclFloat32 ? MPI_FLOAT : MPI_UINT16_T;
    if (type != ncclFloat32) MPI_Op_create(type == ncclFloat16 ? emu_sum_f16 : emu_sum_bf16, 1, &mop);
    int rc = count ? MPI_Allreduce(MPI_IN_PLACE, h.data(), (int)count, mt, mop, c->comm) : MPI_SUCCESS;
    if (type != ncclFloat32) MPI_Op_free(&mop);
    if (rc != MPI_SUCCESS) return ncclSystemError;
    if (op == ncclAvg) {
        for (size_t i = 0; i < count; i++) {
            if (type == ncclFloat32) { float v; memcpy(&v, &h[i * 4], 4); v /= (float)c->size; memcpy(&h[i * 4], &v, 4); }
            else {
                uint16_t u;
                memcpy(&u, &h[i * 2], 2);
                u = type == ncclFloat16 ? emu_f2h(emu_h2f(u) / (float)c->size) : emu_f2bf(emu_bf2f(u) / (float)c->size);
                memcpy(&h[i * 2], &u, 2);
            }
        }
    }
    return cudaMemcpy(recv, h.data(), bytes, cudaMemcpyHostToDevice) == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}

static inline ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root, ncclComm_t c,
                                         cudaStream_t) {
    if (!c || root < 0 || root >= c->size) return ncclInvalidArgument;
    size_t bytes = count * emu_nccl_size(type);
    if (count && ((c->rank == root && !emu_on_device(send, bytes)) || !emu_on_device(recv, bytes))) {
        fprintf(stderr, "emu nccl: ncclBroadcast on host memory\n");
        return ncclInvalidArgument;
    }
    emu_nccl_calls++;
    std::vector<char> h(bytes + 1);
    if (c->rank == root && cudaMemcpy(h.data(), send, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) return ncclUnhandledCudaError;
    if (count && MPI_Bcast(h.data(), (int)bytes, MPI_BYTE, root, c->comm) != MPI_SUCCESS) return ncclSystemError;
    return cudaMemcpy(recv, h.data(), bytes, cudaMemcpyHostToDevice) == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}
