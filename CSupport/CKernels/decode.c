// Decoding kernels; see include/srppo_decode.h for the contracts.
#include "srppo_decode.h"
#include "vector_math.h"

#include <immintrin.h>

#include "multiversion.h"
#define AVX512 __attribute__((target("avx512f")))

// --- Row-invariant matrix product ----------------------------------------------------------------

// Every output of srppo_rowdot leaves through here, so all take the same rounding steps.
static inline __attribute__((always_inline)) void store_dot(float *y, float dot, float alpha, int accumulate) {
#pragma clang fp contract(off)
    float v = alpha * dot;
    *y = accumulate ? *y + v : v;
}

// A tile of nw weight rows × nm input rows: nw·nm accumulators of 16 lanes, each fed the same
// fused multiply-adds in the same k order whatever the tile's shape. The next tile's weight rows
// are prefetched while this one runs: decoding streams the weights from memory once per step, and
// without the prefetch the loads stall the FMAs (measured: 2-3x slower at 8 rows).
AVX512 static inline __attribute__((always_inline))
void rowdot_tile(const int nw, const int nm, float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                 int k, float alpha, int accumulate) {
    __m512 acc[4][8];
    for (int i = 0; i < nw; i++)
        for (int j = 0; j < nm; j++) acc[i][j] = _mm512_setzero_ps();
    int kk = 0;
    for (; kk + 16 <= k; kk += 16) {
        __m512 wv[4];
        for (int i = 0; i < nw; i++) {
            wv[i] = _mm512_loadu_ps(w + (size_t)i * ldw + kk);
            _mm_prefetch((const char *)(w + (size_t)(i + nw) * ldw + kk), _MM_HINT_T0);
        }
        for (int j = 0; j < nm; j++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)j * ldx + kk);
            for (int i = 0; i < nw; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (kk < k) {
        __mmask16 mask = (__mmask16)((1u << (k - kk)) - 1);
        __m512 wv[4];
        for (int i = 0; i < nw; i++) wv[i] = _mm512_maskz_loadu_ps(mask, w + (size_t)i * ldw + kk);
        for (int j = 0; j < nm; j++) {
            __m512 xv = _mm512_maskz_loadu_ps(mask, x + (size_t)j * ldx + kk);
            for (int i = 0; i < nw; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    for (int j = 0; j < nm; j++)
        for (int i = 0; i < nw; i++) store_dot(y + (size_t)j * ldy + i, _mm512_reduce_add_ps(acc[i][j]), alpha, accumulate);
}

typedef void (*rowdot_tile_fn)(float *, int, const float *, int, const float *, int, int, float, int);

#define TILE(NW, NM)                                                                                        \
    AVX512 static void tile_##NW##x##NM(float *y, int ldy, const float *x, int ldx, const float *w, int ldw, \
                                        int k, float alpha, int accumulate) {                               \
        rowdot_tile(NW, NM, y, ldy, x, ldx, w, ldw, k, alpha, accumulate);                                  \
    }
TILE(4, 1) TILE(4, 2) TILE(4, 3) TILE(4, 4)
TILE(3, 1) TILE(3, 2) TILE(3, 3) TILE(3, 4) TILE(3, 5) TILE(3, 6) TILE(3, 7) TILE(3, 8)
TILE(1, 1) TILE(1, 2) TILE(1, 3) TILE(1, 4) TILE(1, 5) TILE(1, 6) TILE(1, 7) TILE(1, 8)

static const rowdot_tile_fn tiles4[5] = {0, tile_4x1, tile_4x2, tile_4x3, tile_4x4};
static const rowdot_tile_fn tiles3[9] = {0, tile_3x1, tile_3x2, tile_3x3, tile_3x4, tile_3x5, tile_3x6, tile_3x7, tile_3x8};
static const rowdot_tile_fn tiles1[9] = {0, tile_1x1, tile_1x2, tile_1x3, tile_1x4, tile_1x5, tile_1x6, tile_1x7, tile_1x8};

// Up to 4 rows: tiles of 4 weight rows; more: 3 weight rows × 8 input rows (24 of the 32 vector
// registers hold accumulators). Weight rows outside, input rows inside, so a weight tile is read
// from memory once and from L1 for the remaining input rows.
AVX512 static void rowdot_avx512(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                                 int rows, int cols, int k, float alpha, int accumulate) {
    const int nw = rows > 4 ? 3 : 4;
    const rowdot_tile_fn *tiles = rows > 4 ? tiles3 : tiles4;
    int c = 0;
    for (; c + nw <= cols; c += nw)
        for (int r = 0; r < rows; r += 8) {
            int nm = rows - r < 8 ? rows - r : 8;
            tiles[nm](y + (size_t)r * ldy + c, ldy, x + (size_t)r * ldx, ldx, w + (size_t)c * ldw, ldw, k, alpha, accumulate);
        }
    for (; c < cols; c++)
        for (int r = 0; r < rows; r += 8) {
            int nm = rows - r < 8 ? rows - r : 8;
            tiles1[nm](y + (size_t)r * ldy + c, ldy, x + (size_t)r * ldx, ldx, w + (size_t)c * ldw, ldw, k, alpha, accumulate);
        }
}

// CPUs without AVX-512: the same contract, one output at a time.
MULTIVERSION static void rowdot_portable(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                                         int rows, int cols, int k, float alpha, int accumulate) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const float *xr = x + (size_t)r * ldx, *wc = w + (size_t)c * ldw;
            float acc[SRPPO_LANES] = {0};
            int kk = 0;
            for (; kk + SRPPO_LANES <= k; kk += SRPPO_LANES)
                for (int l = 0; l < SRPPO_LANES; l++) acc[l] += xr[kk + l] * wc[kk + l];
            for (int l = 0; kk + l < k; l++) acc[l] += xr[kk + l] * wc[kk + l];
            float s = 0.0f;
            for (int l = 0; l < SRPPO_LANES; l++) s += acc[l];
            store_dot(y + (size_t)r * ldy + c, s, alpha, accumulate);
        }
}

void srppo_rowdot(float *y, int ldy, const float *x, int ldx, const float *w, int ldw,
                  int rows, int cols, int k, float alpha, int accumulate) {
    if (rows <= 0 || cols <= 0) return;
    if (__builtin_cpu_supports("avx512f"))
        rowdot_avx512(y, ldy, x, ldx, w, ldw, rows, cols, k, alpha, accumulate);
    else
        rowdot_portable(y, ldy, x, ldx, w, ldw, rows, cols, k, alpha, accumulate);
}

// --- Attention of one query over a cache -----------------------------------------------------------

// scores[j] = scale * sum_i q[i] * kt[i * stride + j] for j < n, n a multiple of W: W positions at a
// time in registers, the head dimension summed in order.
#define SCORE_BLOCK(W)                                                                         \
    for (; j + W <= n; j += W) {                                                               \
        float acc[W] = {0};                                                                    \
        for (int i = 0; i < head_dim; i++) {                                                   \
            const float qi = q[i];                                                             \
            const float *row = kt + (size_t)i * stride + j;                                    \
            for (int l = 0; l < W; l++) acc[l] += qi * row[l];                                 \
        }                                                                                      \
        for (int l = 0; l < W; l++) scores[j + l] = acc[l] * scale;                            \
    }

static inline __attribute__((always_inline))
void attention_scores(float *scores, const float *q, const float *kt, int head_dim, int n, int stride, float scale) {
    int j = 0;
    SCORE_BLOCK(64)
    SCORE_BLOCK(16)
}

// out[i] = sum_j p[j] * v[j * head_dim + i] for i < head_dim: 64 (then 16, then 1) outputs at a time
// in registers, positions summed in order.
#define VALUE_BLOCK(W)                                                                         \
    for (; i + W <= head_dim; i += W) {                                                        \
        float acc[W] = {0};                                                                    \
        for (int j = 0; j < keys; j++) {                                                       \
            const float pj = p[j];                                                             \
            const float *vj = v + (size_t)j * head_dim + i;                                    \
            for (int l = 0; l < W; l++) acc[l] += pj * vj[l];                                  \
        }                                                                                      \
        for (int l = 0; l < W; l++) out[i + l] = acc[l];                                       \
    }

static inline __attribute__((always_inline))
void attention_values(float *out, const float *p, const float *v, int head_dim, int keys) {
    int i = 0;
    VALUE_BLOCK(64)
    VALUE_BLOCK(16)
    VALUE_BLOCK(1)
}

MULTIVERSION
void srppo_attention_decode(float *out, const float *q, const float *keys_t, const float *values,
                            int heads, int kv_heads, int head_dim, int keys, int key_stride,
                            size_t kv_stride, float scale, float *scores) {
    const int group = heads / kv_heads;
    // Scores are computed for whole blocks of 16 positions: the cache's key rows are padded to a
    // multiple of 16 (see the header), and the positions past `keys` are ignored.
    const int padded = (keys + 15) / 16 * 16;
    for (int h = 0; h < heads; h++) {
        const size_t g = (size_t)(h / group) * kv_stride;
        attention_scores(scores, q + (size_t)h * head_dim, keys_t + g, head_dim, padded, key_stride, scale);
        float m = srppo_max(scores, keys);
        float inv = 1.0f / srppo_exp_shift_sum(scores, keys, m);
        for (int j = 0; j < keys; j++) scores[j] *= inv;
        attention_values(out + (size_t)h * head_dim, scores, values + g, head_dim, keys);
    }
}
