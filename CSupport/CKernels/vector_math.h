// Inline building blocks shared by the kernels. Each is forced inline into its multiversioned caller,
// so it is compiled once per instruction set (a plain `static inline` may stay out of line, compiled
// for the baseline only, and turn every clone into scalar SSE code with library calls).
#ifndef SRPPO_VECTOR_MATH_H
#define SRPPO_VECTOR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SRPPO_LANES 16
#define SRPPO_INLINE static inline __attribute__((always_inline))

// exp(x) for x in float range, within 2 ulp: Cephes' range reduction and polynomial, vectorizable
// (no libm call: n = round(x / ln 2) by the 1.5·2^23 trick, exact in fp32, instead of floorf, which
// is a library call before SSE4.1). Below -87.3 the result flushes to 0.
SRPPO_INLINE float srppo_expf(float x) {
    const float hi = 88.3762626647949f, lo = -87.3365447504f;
    float clamped = x > hi ? hi : (x < lo ? lo : x);
    const float round_magic = 12582912.0f; // 1.5 · 2^23: adding it rounds to an integer
    float n = (clamped * 1.44269504088896341f + round_magic) - round_magic;
    float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float result = p * scale;
    return x < lo ? 0.0f : result;
}

SRPPO_INLINE float srppo_sum_squares(const float *x, int n) {
    float acc[SRPPO_LANES] = {0};
    int j = 0;
    for (; j + SRPPO_LANES <= n; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) acc[k] += x[j + k] * x[j + k];
    float s = 0.0f;
    for (int k = 0; k < SRPPO_LANES; k++) s += acc[k];
    for (; j < n; j++) s += x[j] * x[j];
    return s;
}

SRPPO_INLINE float srppo_max(const float *x, int n) {
    float acc[SRPPO_LANES];
    for (int k = 0; k < SRPPO_LANES; k++) acc[k] = -INFINITY;
    int j = 0;
    for (; j + SRPPO_LANES <= n; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
    float m = -INFINITY;
    for (int k = 0; k < SRPPO_LANES; k++) m = acc[k] > m ? acc[k] : m;
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

// x[j] = exp(x[j] - shift) for j < n; returns the sum.
SRPPO_INLINE float srppo_exp_shift_sum(float *x, int n, float shift) {
    float acc[SRPPO_LANES] = {0};
    int j = 0;
    for (; j + SRPPO_LANES <= n; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) {
            float e = srppo_expf(x[j + k] - shift);
            x[j + k] = e;
            acc[k] += e;
        }
    float s = 0.0f;
    for (int k = 0; k < SRPPO_LANES; k++) s += acc[k];
    for (; j < n; j++) {
        float e = srppo_expf(x[j] - shift);
        x[j] = e;
        s += e;
    }
    return s;
}

// sum_j exp(x[j] - shift), leaving x untouched.
SRPPO_INLINE float srppo_exp_shift_sum_const(const float *x, int n, float shift) {
    float acc[SRPPO_LANES] = {0};
    int j = 0;
    for (; j + SRPPO_LANES <= n; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) acc[k] += srppo_expf(x[j + k] - shift);
    float s = 0.0f;
    for (int k = 0; k < SRPPO_LANES; k++) s += acc[k];
    for (; j < n; j++) s += srppo_expf(x[j] - shift);
    return s;
}

#endif
