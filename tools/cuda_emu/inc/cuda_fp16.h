/* cuda_fp16.h - part of sdl's CUDA emulator (tools/cuda_emu) - public domain or MIT (see sdl.h)

   The IEEE half type and the two conversions sdl_cuda.h uses, as CUDA's: __float2half_rn
   rounds to nearest, ties to even, with subnormal halves (down to 2^-24), overflow past
   65504 to Inf (65520 and up, the tie included) and NaN kept; __half2float is exact. */
#pragma once
#include <cstdint>
#include <cstring>

struct __half { unsigned short __x; };

static inline __half __float2half_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) { h.__x = (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); return h; } /* NaN */
    if (a >= 0x477ff000u) { h.__x = (unsigned short)(sign | 0x7c00u); return h; }                   /* >= 65520: Inf */
    if (a < 0x38800000u) { /* below 2^-14: a subnormal half, m 2^-24 with m = round(|f| 2^24) */
        if (a < 0x33000000u) { h.__x = (unsigned short)sign; return h; } /* <= 2^-25 (the tie to 0 included) */
        uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)e;   /* |f| 2^24 = mant 2^(e - 127 - 23 + 24): right shift by 126 - e */
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++;
        h.__x = (unsigned short)(sign | q);
        return h;
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 mantissa bits, round on the 13 dropped */
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    h.__x = (unsigned short)(sign | (r >> 13));
    return h;
}
static inline float __half2float(__half h) {
    uint32_t sign = (uint32_t)(h.__x & 0x8000u) << 16, e = (h.__x >> 10) & 0x1fu, m = h.__x & 0x3ffu, u;
    if (e == 0x1f) u = sign | 0x7f800000u | (m << 13);            /* Inf, NaN */
    else if (e != 0) u = sign | ((e + 112u) << 23) | (m << 13);    /* normal: 127 - 15 = 112 */
    else {                                                        /* zero, subnormal: m 2^-24 */
        float f = (float)m * 5.9604644775390625e-8f;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
