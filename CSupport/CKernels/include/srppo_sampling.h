// Kernels of token sampling over a row of logits (vocabulary-sized: tens of thousands of entries).
#ifndef SRPPO_SAMPLING_H
#define SRPPO_SAMPLING_H

#include <stdint.h>

// z[i] = x[i] * scale for i < n; returns log(sum_i exp(z[i])).
float srppo_scale_logsumexp(float *z, const float *x, int n, float scale);

// Index of the largest x[i]; the lowest index among equal maxima.
int srppo_argmax(const float *x, int n);

// Writes the indices i with x[i] >= threshold, ascending, to ids; returns how many.
int srppo_indices_at_least(int32_t *ids, const float *x, int n, float threshold);

// Draws an index from the softmax p[i] = exp(z[i] - lse) given u uniform in [0, 1): the first i
// (in index order) at which the running sum of p, in double, exceeds u * sum(p). probs: scratch of
// n floats. Indices with p[i] = 0 are never drawn.
int srppo_sample_softmax(const float *z, int n, float lse, double u, float *probs);

#endif
