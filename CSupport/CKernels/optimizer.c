// Optimizer kernels; see include/srppo_optimizer.h.
#include "srppo_optimizer.h"

#include <math.h>

#include "multiversion.h"

MULTIVERSION
void srppo_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                        float b1, float b2, float eps, float wd, float c1, float c2) {
    const float inv_c1 = 1.0f / c1, inv_c2 = 1.0f / c2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * inv_c1 / (sqrtf(vi * inv_c2) + eps) + wd * p[i]);
    }
}

MULTIVERSION
double srppo_sum_squares_f64(const float *g, size_t n) {
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)g[i + k] * (double)g[i + k];
    double s = 0.0;
    for (int k = 0; k < 8; k++) s += acc[k];
    for (; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

MULTIVERSION
void srppo_scale(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
