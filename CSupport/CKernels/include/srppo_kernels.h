// Vector kernels of the transformer: each forward beside its backward, row-major, fp32 accumulation.
// Built with -O3 and function multi-versioning (AVX-512 / AVX2 / baseline chosen at load time), so the
// release binary runs on any x86-64 and uses the widest vectors the CPU has.
#ifndef SRPPO_KERNELS_H
#define SRPPO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// --- RMSNorm -------------------------------------------------------------------------------------
// y[r,:] = x[r,:] * rstd[r] * w[:],  rstd[r] = 1 / sqrt(mean(x[r,:]^2) + eps).
// x, y: [rows, dim]; w: [dim]; rstd: [rows] (saved for the backward; may be NULL).
void srppo_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w,
                           int rows, int dim, float eps);

// --- RoPE (rotate-half convention of Hugging Face LLaMA) -------------------------------------------
// In place on `heads` heads of `head_dim` in each of `rows` rows (row stride `row_stride` floats).
// Pair (i, i + head_dim/2) of a head at position p rotates by angle p * inv_freq[i]; the tables hold
// cos/sin for every position: [max_pos, head_dim/2].
void srppo_rope_forward(float *x, int rows, int row_stride, int heads, int head_dim,
                        const int32_t *positions, const float *cos_table, const float *sin_table);

// --- SwiGLU --------------------------------------------------------------------------------------
// out[i] = silu(gate[i]) * up[i],  silu(g) = g / (1 + exp(-g)).
void srppo_swiglu_forward(float *out, const float *gate, const float *up, size_t n);

// --- Attention softmax ---------------------------------------------------------------------------
// Row r of `scores` ([rows, ld]) holds q_r . k_j for j < cols. Scales by `scale`, masks j > r + diag
// (causal; diag = number of keys before the first query row) to 0 and normalizes the rest.
void srppo_softmax_causal(float *scores, int rows, int cols, int ld, int diag, float scale);

// --- LM head -------------------------------------------------------------------------------------
// out[r] = log(sum_j exp(x[r, j])) over `cols` entries of each row (row stride `ld`).
void srppo_logsumexp_rows(float *out, const float *x, int rows, int cols, int ld);

// --- Elementwise ---------------------------------------------------------------------------------
// y += x
void srppo_add_inplace(float *y, const float *x, size_t n);

#endif
