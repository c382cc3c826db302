/* peak.c - this core's FMA peak: independent AVX-512 (or AVX2) FMA chains, timed by CPU time
   so other processes on the machine do not count. cc -O2 -march=native bench/peak.c -o build/peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
int main(void) {
#if defined(__AVX512F__)
    typedef __m512 V;
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET1 _mm512_set1_ps
    const int W = 16;
#else
    typedef __m256 V;
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET1 _mm256_set1_ps
    const int W = 8;
#endif
    V a = SET1(0.999999f), b = SET1(1e-7f);
    V c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3), c4 = SET1(4), c5 = SET1(5), c6 = SET1(6), c7 = SET1(7),
      c8 = SET1(8), c9 = SET1(9), c10 = SET1(10), c11 = SET1(11);
    long n = 200000000;
    clock_t t0 = clock();
    for (long i = 0; i < n; i++) {
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    double t = (double)(clock() - t0) / CLOCKS_PER_SEC;
    V sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    float s = ((float *)&sum)[0];
    printf("peak: %.1f GFLOP/s per core (%d-wide FMA, %.2f s CPU time, check %g)\n", 2.0 * W * 12 * n / t * 1e-9, W, t, s);
    return 0;
}
