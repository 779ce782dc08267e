// Kernels of token-by-token decoding: matrix products for a few rows at a time, and one query's
// attention over a key/value cache.
#ifndef SRPPO_DECODE_H
#define SRPPO_DECODE_H

#include <stddef.h>
#include <stdint.h>

// --- Row-invariant matrix product ----------------------------------------------------------------
// y[r, c] = alpha * dot(x[r, :k], w[c, :k])  (+ y[r, c] when `accumulate`)  for r < rows, c < cols.
// x: [rows, k] with row stride ldx; w: [cols, k] with row stride ldw (a weight matrix [out, in]);
// y: row stride ldy.
// Every output is one dot product summed in a fixed order (16 lanes along k, then a fixed tree over
// the lanes) whatever the call's shape: a row's outputs are bit-identical whichever other rows are in
// the call and however the columns are split between threads. That makes decoding reproducible
// independent of batch composition, which a BLAS call is not (its rounding depends on the shape).
// Fast for few rows (decoding: one row per active sequence) by streaming w once per call.
void srppo_rowdot(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                  int rows, int cols, int k, float alpha, int accumulate);

// --- Attention of one query over a cache -----------------------------------------------------------
// Grouped-query attention for a single position: for each of `heads` query heads h (key/value head
// g = h / (heads / kv_heads)),
//   out[h, :] = sum_j softmax_j(scale * q[h, :] . K_g[:, j]) V_g[j, :]   over j < keys.
// q, out: [heads, head_dim]. Keys are stored transposed so scores vectorize over positions:
// K_g = keys_t + g * kv_stride, [head_dim, key_stride]; V_g = values + g * kv_stride, [keys, head_dim].
// key_stride must be a multiple of 16 and each key row readable up to keys rounded up to 16 (the
// extra positions are read and ignored). scores: scratch of keys rounded up to 16 floats.
// Each output is summed in a fixed order that depends only on this query and its cache.
void srppo_attention_decode(float *out, const float *q, const float *keys_t, const float *values,
                            int heads, int kv_heads, int head_dim, int keys, int key_stride,
                            size_t kv_stride, float scale, float *scores);

#endif
