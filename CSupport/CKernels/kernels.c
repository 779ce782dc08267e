// Vector kernels; see include/srppo_kernels.h for the contracts.
//
// Loops are written so clang vectorizes them without -ffast-math: reductions keep 16 independent
// partial results (one AVX-512 register), and exp is a polynomial instead of a libm call.
#include "srppo_kernels.h"
#include "vector_math.h"

#include <math.h>

#include "multiversion.h"

// --- RMSNorm -------------------------------------------------------------------------------------

MULTIVERSION
void srppo_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w,
                           int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        float ss = srppo_sum_squares(xr, dim);
        float s = 1.0f / sqrtf(ss / (float)dim + eps);
        if (rstd) rstd[r] = s;
        // In place (y == x) gets its own loop over one pointer: the vectorizer's runtime alias check
        // fails on an exact overlap and would send the whole row down the scalar loop.
        if (yr == xr) {
            for (int i = 0; i < dim; i++) yr[i] = yr[i] * s * w[i];
        } else {
            for (int i = 0; i < dim; i++) yr[i] = xr[i] * s * w[i];
        }
    }
}

MULTIVERSION
void srppo_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                            const float *rstd, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim, *dyr = dy + (size_t)r * dim;
        float *dxr = dx + (size_t)r * dim;
        const float s = rstd[r];
        // mean(g · x̂) with g = dy · w, x̂ = x · s
        float acc[SRPPO_LANES] = {0};
        int i = 0;
        for (; i + SRPPO_LANES <= dim; i += SRPPO_LANES)
            for (int k = 0; k < SRPPO_LANES; k++) acc[k] += dyr[i + k] * w[i + k] * xr[i + k];
        float dot = 0.0f;
        for (int k = 0; k < SRPPO_LANES; k++) dot += acc[k];
        for (; i < dim; i++) dot += dyr[i] * w[i] * xr[i];
        const float c = dot * s * s / (float)dim;
        for (i = 0; i < dim; i++) dxr[i] += s * (dyr[i] * w[i] - xr[i] * c);
        if (dw)
            for (i = 0; i < dim; i++) dw[i] += dyr[i] * xr[i] * s;
    }
}

// --- RoPE ----------------------------------------------------------------------------------------

MULTIVERSION
void srppo_rope_forward(float *x, int rows, int row_stride, int heads, int head_dim,
                        const int32_t *positions, const float *cos_table, const float *sin_table) {
    const int half = head_dim / 2;
    for (int r = 0; r < rows; r++) {
        const float *c = cos_table + (size_t)positions[r] * half;
        const float *s = sin_table + (size_t)positions[r] * half;
        for (int h = 0; h < heads; h++) {
            float *a = x + (size_t)r * row_stride + (size_t)h * head_dim;
            float *b = a + half;
            for (int i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i];
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

MULTIVERSION
void srppo_rope_backward(float *dx, int rows, int row_stride, int heads, int head_dim,
                         const int32_t *positions, const float *cos_table, const float *sin_table) {
    const int half = head_dim / 2;
    for (int r = 0; r < rows; r++) {
        const float *c = cos_table + (size_t)positions[r] * half;
        const float *s = sin_table + (size_t)positions[r] * half;
        for (int h = 0; h < heads; h++) {
            float *a = dx + (size_t)r * row_stride + (size_t)h * head_dim;
            float *b = a + half;
            for (int i = 0; i < half; i++) {
                float g1 = a[i], g2 = b[i];
                a[i] = g1 * c[i] + g2 * s[i];
                b[i] = g2 * c[i] - g1 * s[i];
            }
        }
    }
}

// --- SwiGLU --------------------------------------------------------------------------------------

MULTIVERSION
void srppo_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    // out may be gate or up (in place): staging 16 results before storing them keeps the loop
    // vectorized without the runtime alias check, which an exact overlap fails.
    size_t i = 0;
    for (; i + SRPPO_LANES <= n; i += SRPPO_LANES) {
        float result[SRPPO_LANES];
        for (int k = 0; k < SRPPO_LANES; k++) {
            float g = gate[i + k];
            result[k] = g / (1.0f + srppo_expf(-g)) * up[i + k];
        }
        for (int k = 0; k < SRPPO_LANES; k++) out[i + k] = result[k];
    }
    for (; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + srppo_expf(-g)) * up[i];
    }
}

MULTIVERSION
void srppo_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = 1.0f / (1.0f + srppo_expf(-g));
        float silu = g * sig;
        dup[i] = dout[i] * silu;
        dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
    }
}

// --- Attention softmax ---------------------------------------------------------------------------

MULTIVERSION
void srppo_softmax_causal(float *scores, int rows, int cols, int ld, int diag, float scale) {
    for (int r = 0; r < rows; r++) {
        float *s = scores + (size_t)r * ld;
        int valid = r + diag + 1;
        if (valid > cols) valid = cols;
        for (int j = 0; j < valid; j++) s[j] *= scale;
        float m = srppo_max(s, valid);
        float sum = srppo_exp_shift_sum(s, valid, m);
        float inv = 1.0f / sum;
        for (int j = 0; j < valid; j++) s[j] *= inv;
        for (int j = valid; j < cols; j++) s[j] = 0.0f;
    }
}

MULTIVERSION
void srppo_softmax_backward(float *dp, const float *p, int rows, int cols, int ld, float scale) {
    for (int r = 0; r < rows; r++) {
        float *d = dp + (size_t)r * ld;
        const float *pr = p + (size_t)r * ld;
        float acc[SRPPO_LANES] = {0};
        int j = 0;
        for (; j + SRPPO_LANES <= cols; j += SRPPO_LANES)
            for (int k = 0; k < SRPPO_LANES; k++) acc[k] += pr[j + k] * d[j + k];
        float dot = 0.0f;
        for (int k = 0; k < SRPPO_LANES; k++) dot += acc[k];
        for (; j < cols; j++) dot += pr[j] * d[j];
        for (j = 0; j < cols; j++) d[j] = scale * pr[j] * (d[j] - dot);
    }
}

// --- LM head -------------------------------------------------------------------------------------

MULTIVERSION
void srppo_logsumexp_rows(float *out, const float *x, int rows, int cols, int ld) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld;
        float m = srppo_max(xr, cols);
        out[r] = m + logf(srppo_exp_shift_sum_const(xr, cols, m));
    }
}

MULTIVERSION
float srppo_softmax_entropy(const float *z, int cols, float lse) {
    float acc[SRPPO_LANES] = {0};
    int j = 0;
    for (; j + SRPPO_LANES <= cols; j += SRPPO_LANES)
        for (int k = 0; k < SRPPO_LANES; k++) acc[k] += srppo_expf(z[j + k] - lse) * z[j + k];
    float expected = 0.0f;
    for (int k = 0; k < SRPPO_LANES; k++) expected += acc[k];
    for (; j < cols; j++) expected += srppo_expf(z[j] - lse) * z[j];
    return lse - expected;
}

MULTIVERSION
void srppo_log_softmax_backward(float *z, int cols, float lse, int target, float g_logp,
                                float g_entropy, float entropy) {
    for (int j = 0; j < cols; j++) {
        float logp = z[j] - lse;
        float p = srppo_expf(logp);
        z[j] = -g_logp * p - g_entropy * p * (logp + entropy);
    }
    if (target >= 0 && target < cols) z[target] += g_logp;
}

MULTIVERSION
void srppo_logsumexp_accumulate(float *running_max, float *running_sum, const float *x, int rows, int cols,
                                int ld) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld;
        float block_max = srppo_max(xr, cols);
        float m = running_max[r] > block_max ? running_max[r] : block_max;
        // The first block (sum 0, max -inf) skips the rescale: exp(-inf - m) would be NaN when m is -inf too.
        float rescaled = running_sum[r] == 0.0f ? 0.0f : running_sum[r] * srppo_expf(running_max[r] - m);
        running_sum[r] = rescaled + srppo_exp_shift_sum_const(xr, cols, m);
        running_max[r] = m;
    }
}

// --- Elementwise ---------------------------------------------------------------------------------

MULTIVERSION
void srppo_add_inplace(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
