// Optimizer kernels: vectorized parameter updates over flat buffers.
#ifndef SRPPO_OPTIMIZER_H
#define SRPPO_OPTIMIZER_H

#include <stddef.h>

// One AdamW step (decoupled weight decay) on n parameters:
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   p -= lr · (m / c1 / (sqrt(v / c2) + eps) + wd · p)
// where c1 = 1 − b1^t and c2 = 1 − b2^t are the bias corrections of step t.
void srppo_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                        float b1, float b2, float eps, float wd, float c1, float c2);

// Σ g[i]² accumulated in double (for global gradient-norm clipping).
double srppo_sum_squares_f64(const float *g, size_t n);

// x[i] *= s
void srppo_scale(float *x, size_t n, float s);

#endif
