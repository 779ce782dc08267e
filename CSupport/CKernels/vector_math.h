// Inline building blocks shared by the kernels. Each is inlined into a multiversioned caller, so it
// is compiled once per instruction set.
#ifndef SRPPO_VECTOR_MATH_H
#define SRPPO_VECTOR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SRPPO_LANES 16

// exp(x) for x in float range, within 2 ulp: Cephes' range reduction and polynomial, vectorizable
// (no libm call). Below -87.3 the result flushes to 0.
static inline float srppo_expf(float x) {
    const float hi = 88.3762626647949f, lo = -87.3365447504f;
    float clamped = x > hi ? hi : (x < lo ? lo : x);
    float n = floorf(clamped * 1.44269504088896341f + 0.5f);
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

static inline float srppo_sum_squares(const float *x, int n) {
    float acc[SRPPO_LANES] = {0};
    int j = 0;
    for (; j + SRPPO_LANES <= n; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) acc[k] += x[j + k] * x[j + k];
    float s = 0.0f;
    for (int k = 0; k < SRPPO_LANES; k++) s += acc[k];
    for (; j < n; j++) s += x[j] * x[j];
    return s;
}

static inline float srppo_max(const float *x, int n) {
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
static inline float srppo_exp_shift_sum(float *x, int n, float shift) {
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
static inline float srppo_exp_shift_sum_const(const float *x, int n, float shift) {
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
