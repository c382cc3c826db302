/* cuda_bf16.h - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   The bfloat16 type and the two conversions sdl_cuda.h uses, as CUDA's: __float2bfloat16
   rounds to nearest, ties to even (NaN stays a quiet NaN, overflow gives Inf), and
   __bfloat162float is exact (the top 16 bits of an f32). Host and device code alike. */
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 { unsigned short __x; };

static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) { h.__x = (unsigned short)((u >> 16) | 0x40u); return h; } /* NaN: quiet */
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even; a carry into the exponent is right */
    h.__x = (unsigned short)(u >> 16);
    return h;
}
static inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.__x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
