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
// Backward of the above given dy: dx[r,:] += rstd (g - x̂ · mean(g · x̂)) with g = dy · w and
// x̂ = x · rstd; dw[:] += Σ_r dy[r,:] · x̂[r,:] (dw may be NULL when w is frozen).
void srppo_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                            const float *rstd, int rows, int dim);

// --- RoPE (rotate-half convention of Hugging Face LLaMA) -------------------------------------------
// In place on `heads` heads of `head_dim` in each of `rows` rows (row stride `row_stride` floats).
// Pair (i, i + head_dim/2) of a head at position p rotates by angle p * inv_freq[i]; the tables hold
// cos/sin for every position: [max_pos, head_dim/2].
void srppo_rope_forward(float *x, int rows, int row_stride, int heads, int head_dim,
                        const int32_t *positions, const float *cos_table, const float *sin_table);
// Backward: the gradient rotates by the opposite angle (the rotation is orthogonal). In place.
void srppo_rope_backward(float *dx, int rows, int row_stride, int heads, int head_dim,
                         const int32_t *positions, const float *cos_table, const float *sin_table);

// --- SwiGLU --------------------------------------------------------------------------------------
// out[i] = silu(gate[i]) * up[i],  silu(g) = g / (1 + exp(-g)).
void srppo_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
// Backward given dout: dgate = dout · up · silu'(gate), dup = dout · silu(gate) (overwritten).
void srppo_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, size_t n);

// --- Attention softmax ---------------------------------------------------------------------------
// Row r of `scores` ([rows, ld]) holds q_r . k_j for j < cols. Scales by `scale`, masks j > r + diag
// (causal; diag = number of keys before the first query row) to 0 and normalizes the rest.
void srppo_softmax_causal(float *scores, int rows, int cols, int ld, int diag, float scale);
// Backward of softmax(scale · s) given the probabilities p and dp = dL/dp (overwritten in place
// with dL/ds): ds = scale · p · (dp - Σ_j p_j dp_j). Masked entries (p = 0) get 0.
void srppo_softmax_backward(float *dp, const float *p, int rows, int cols, int ld, float scale);

// --- LM head -------------------------------------------------------------------------------------
// out[r] = log(sum_j exp(x[r, j])) over `cols` entries of each row (row stride `ld`).
void srppo_logsumexp_rows(float *out, const float *x, int rows, int cols, int ld);
// Entropy of softmax(z) for a row of logits with known log-sum-exp: H = lse - Σ_j p_j z_j.
float srppo_softmax_entropy(const float *z, int cols, float lse);
// Gradient of g_logp · log p_target + g_entropy · H with respect to the logits z (overwritten):
// dz_j = g_logp (δ_j,target - p_j) - g_entropy · p_j (log p_j + H), p = softmax(z).
void srppo_log_softmax_backward(float *z, int cols, float lse, int target, float g_logp,
                                float g_entropy, float entropy);

// The same over column blocks, for logits computed a block at a time (kept in cache, or split across
// workers): folds x[r, 0 ..< cols] into a running (max[r], sum[r]) so that, after every block,
// log(sum_j exp(logit_j)) = max[r] + log(sum[r]). Start with max = -INFINITY, sum = 0. Two partial
// pairs (m1, s1), (m2, s2) merge as m = max(m1, m2), s = s1·exp(m1 − m) + s2·exp(m2 − m).
void srppo_logsumexp_accumulate(float *running_max, float *running_sum, const float *x, int rows, int cols,
                                int ld);

// --- Elementwise ---------------------------------------------------------------------------------
// y += x
void srppo_add_inplace(float *y, const float *x, size_t n);

#endif
