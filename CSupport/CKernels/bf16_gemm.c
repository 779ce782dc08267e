// bf16-weight GEMM; see include/srppo_bf16_gemm.h for the contract and the packed layout.
//
// AVX-512 path (GotoBLAS-style blocking, sized for a 32–48 KiB L1 and a 1 MiB L2 per core):
//   for each block of MC rows of A:           convert them to bf16, row-major (L2-resident)
//     for each block of KC_PAIRS k-pairs:
//       for each 32-column panel of W:        its KC_PAIRS × 32 slice (8 KiB) stays in L1
//         for each MR-row tile of the block:  MR × 2 accumulators (zmm), vdpbf16ps per k-pair
// Every C element is accumulated in registers over one k-block, then added to C: the order depends
// only on k, never on which rows or panels a thread was given.
//
// The portable path computes the same sums in plain C (fp32 products of the bf16-rounded values,
// which are exact, summed in fp32), so both agree up to fp32 summation order.
#include "srppo_bf16_gemm.h"
#include "multiversion.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PANEL SRPPO_BF16_PANEL
#ifndef BF16_MR
#define BF16_MR 12       // rows per register tile: 12 × 2 accumulators + 2 weight vectors of 32 zmm
#endif
#ifndef BF16_KC_PAIRS
#define BF16_KC_PAIRS 320 // most k-pairs per block: a panel slice is ≤ 320 × 64 bytes = 20 KiB (L1)
#endif
#ifndef BF16_MC
#define BF16_MC 192       // rows per A block: 192 × k bf16 (216 KiB at k = 576) stays in L2
#endif

// --- Rounding ------------------------------------------------------------------------------------

static inline uint16_t bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u); // NaN: keep it quiet
    if (magnitude < 0x00800000u) return (uint16_t)((bits >> 16) & 0x8000u);  // zero, subnormal
    uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);                        // nearest even
    return (uint16_t)((bits + rounding) >> 16);
}

static inline float float_from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void srppo_bf16_round(float *dst, const float *src, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = float_from_bf16(bf16_from_float(src[i]));
}

// --- Packing -------------------------------------------------------------------------------------

static inline int even_k(int k) { return (k + 1) & ~1; }
static inline int panel_count(int n) { return (n + PANEL - 1) / PANEL; }

size_t srppo_bf16_packed_count(int n, int k) {
    return (size_t)panel_count(n) * PANEL * (size_t)even_k(k);
}

void srppo_bf16_pack(uint16_t *packed, const float *w, int n, int k, int ldw) {
    const int kp2 = even_k(k);
    memset(packed, 0, srppo_bf16_packed_count(n, k) * sizeof *packed);
    for (int r = 0; r < n; r++) {
        uint16_t *panel = packed + (size_t)(r / PANEL) * PANEL * kp2 + (size_t)(r % PANEL) * 2;
        const float *row = w + (size_t)r * ldw;
        for (int c = 0; c < k; c++) panel[(size_t)(c / 2) * 2 * PANEL + c % 2] = bf16_from_float(row[c]);
    }
}

float srppo_bf16_packed_get(const uint16_t *packed, int n, int k, int r, int c) {
    (void)n;
    const int kp2 = even_k(k);
    return float_from_bf16(packed[(size_t)(r / PANEL) * PANEL * kp2 + (size_t)(c / 2) * 2 * PANEL +
                                  (size_t)(r % PANEL) * 2 + c % 2]);
}

void srppo_bf16_packed_row(float *out, const uint16_t *packed, int k, int r) {
    const uint16_t *row = packed + (size_t)(r / PANEL) * PANEL * even_k(k) + (size_t)(r % PANEL) * 2;
    for (int c = 0; c < k; c++) out[c] = float_from_bf16(row[(size_t)(c / 2) * 2 * PANEL + c % 2]);
}

// --- Portable path -------------------------------------------------------------------------------

// Plain C, also built for AVX2 (never AVX-512: that is the other path); one version in sanitizer
// builds, where ifunc resolvers cannot run (see multiversion.h).
#ifdef SRPPO_SANITIZED
#define PORTABLE_MULTIVERSION
#else
#define PORTABLE_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

#define PORTABLE_ROWS 4

// Rows [r0, r0 + rows) × one panel: acc[i][j] = sum over all k, then C = acc + beta · C.
static inline void portable_tile(float *c, int ldc, const float *a_rounded, int kp2, const uint16_t *panel,
                                 int rows, int columns, float beta) {
    float acc[PORTABLE_ROWS][PANEL];
    memset(acc, 0, sizeof acc);
    for (int q = 0; q < kp2 / 2; q++) {
        const uint16_t *wq = panel + (size_t)q * 2 * PANEL;
        float w0[PANEL], w1[PANEL];
        for (int j = 0; j < PANEL; j++) {
            w0[j] = float_from_bf16(wq[2 * j]);
            w1[j] = float_from_bf16(wq[2 * j + 1]);
        }
        for (int i = 0; i < rows; i++) {
            const float a0 = a_rounded[(size_t)i * kp2 + 2 * q], a1 = a_rounded[(size_t)i * kp2 + 2 * q + 1];
            for (int j = 0; j < PANEL; j++) {
                acc[i][j] += a0 * w0[j];
                acc[i][j] += a1 * w1[j];
            }
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < columns; j++) {
            float *out = c + (size_t)i * ldc + j;
            *out = beta != 0.0f ? acc[i][j] + beta * *out : acc[i][j];
        }
}

PORTABLE_MULTIVERSION
void srppo_bf16_gemm_portable(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                              int m, int n, int k, int column_begin, int column_end, float beta) {
    (void)n;
    const int kp2 = even_k(k);
    float *rounded = malloc(sizeof(float) * PORTABLE_ROWS * (size_t)kp2);
    if (!rounded) abort();
    for (int r0 = 0; r0 < m; r0 += PORTABLE_ROWS) {
        const int rows = m - r0 < PORTABLE_ROWS ? m - r0 : PORTABLE_ROWS;
        for (int i = 0; i < rows; i++) {
            srppo_bf16_round(rounded + (size_t)i * kp2, a + (size_t)(r0 + i) * lda, (size_t)k);
            if (k < kp2) rounded[(size_t)i * kp2 + k] = 0.0f;
        }
        for (int j0 = column_begin; j0 < column_end; j0 += PANEL) {
            const int columns = column_end - j0 < PANEL ? column_end - j0 : PANEL;
            portable_tile(c + (size_t)r0 * ldc + j0, ldc, rounded, kp2, packed + (size_t)(j0 / PANEL) * PANEL * kp2,
                          rows, columns, beta);
        }
    }
    free(rounded);
}

// --- AVX-512 BF16 path ---------------------------------------------------------------------------

#if defined(__x86_64__)
#include <immintrin.h>

// --- Scratch -------------------------------------------------------------------------------------

// A per-thread buffer for the converted rows of A, kept between calls: allocating it per call
// costs page faults (~50 pages at k = 576) on every product, a few percent of a small one. Freed
// when its thread exits.
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

typedef struct {
    size_t capacity;
    void *memory;
} scratch_buffer;

static void scratch_free(void *p) {
    scratch_buffer *s = p;
    free(s->memory);
    free(s);
}

static void scratch_key_create(void) {
    if (pthread_key_create(&scratch_key, scratch_free) != 0) abort();
}

static void *thread_scratch(size_t bytes) {
    pthread_once(&scratch_once, scratch_key_create);
    scratch_buffer *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) abort();
    }
    if (s->capacity < bytes) {
        free(s->memory);
        s->capacity = (bytes + 63) & ~(size_t)63;
        s->memory = aligned_alloc(64, s->capacity);
        if (!s->memory) abort();
    }
    return s->memory;
}

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define ALWAYS_INLINE __attribute__((always_inline)) inline

int srppo_bf16_gemm_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}

// dst[r, 0 ..< kp2] = bf16(a[r, 0 ..< k]) with a zero after an odd k.
AVX512_BF16 static void convert_rows(uint16_t *dst, int kp2, const float *a, int lda, int rows, int k) {
    for (int r = 0; r < rows; r++) {
        const float *src = a + (size_t)r * lda;
        uint16_t *out = dst + (size_t)r * kp2;
        for (int c = 0; c < kp2; c += 32) {
            const int left = k - c;
            const __mmask16 lo = left >= 16 ? 0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
            const __mmask16 hi = left >= 32 ? 0xFFFF : (left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1));
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + c + 16),
                                                   _mm512_maskz_loadu_ps(lo, src + c));
            const int keep = kp2 - c >= 32 ? 32 : kp2 - c;
            _mm512_mask_storeu_epi16(out + c, (__mmask32)(keep == 32 ? 0xFFFFFFFFu : (1u << keep) - 1),
                                     (__m512i)v);
        }
    }
}

// One register tile: rows × 32 columns over `pairs` k-pairs. a: bf16 rows (stride `astride` k-pairs,
// as 32-bit words); w: the panel slice (64 bf16 per k-pair). C = acc + scale · C (C unread if
// scale == 0); only the columns in mask0/mask1 are written.
AVX512_BF16 static ALWAYS_INLINE void tile(const int rows, int pairs, const uint32_t *a, int astride,
                                           const uint16_t *w, float *c, int ldc, __mmask16 mask0,
                                           __mmask16 mask1, float scale) {
    __m512 acc[BF16_MR][2];
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < pairs; q++) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + (size_t)q * 64);
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + (size_t)q * 64 + 32);
        for (int i = 0; i < rows; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(size_t)i * astride + q]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, w0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, w1);
        }
    }
    const __m512 s = _mm512_set1_ps(scale);
    for (int i = 0; i < rows; i++) {
        float *out = c + (size_t)i * ldc;
        if (scale != 0.0f) {
            acc[i][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask0, out), s, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask1, out + 16), s, acc[i][1]);
        }
        _mm512_mask_storeu_ps(out, mask0, acc[i][0]);
        _mm512_mask_storeu_ps(out + 16, mask1, acc[i][1]);
    }
}

// Dispatches a tile of `rows` (1 ... BF16_MR) to its unrolled instance.
AVX512_BF16 static void tile_any(int rows, int pairs, const uint32_t *a, int astride, const uint16_t *w,
                                 float *c, int ldc, __mmask16 mask0, __mmask16 mask1, float scale) {
#define TILE_CASE(R) case R: tile(R, pairs, a, astride, w, c, ldc, mask0, mask1, scale); break;
    switch (rows) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
        TILE_CASE(7) TILE_CASE(8) TILE_CASE(9) TILE_CASE(10) TILE_CASE(11) TILE_CASE(12)
#if BF16_MR > 12
        TILE_CASE(13) TILE_CASE(14)
#endif
        default: break;
    }
#undef TILE_CASE
}

AVX512_BF16
void srppo_bf16_gemm_avx512(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                            int m, int n, int k, int column_begin, int column_end, float beta) {
    (void)n;
    if (m <= 0 || column_end <= column_begin) return;
    const int kp2 = even_k(k), pairs = kp2 / 2;
    const int block_rows = m < BF16_MC ? m : BF16_MC;
    // Equal k-blocks of at most BF16_KC_PAIRS pairs (C is read and written once per k-block).
    const int k_blocks = (pairs + BF16_KC_PAIRS - 1) / BF16_KC_PAIRS;
    const int kc_pairs = (pairs + k_blocks - 1) / k_blocks;
    uint16_t *block = thread_scratch((size_t)block_rows * kp2 * sizeof(uint16_t));
    for (int r0 = 0; r0 < m; r0 += BF16_MC) {
        const int mc = m - r0 < BF16_MC ? m - r0 : BF16_MC;
        convert_rows(block, kp2, a + (size_t)r0 * lda, lda, mc, k);
        for (int q0 = 0; q0 < pairs; q0 += kc_pairs) {
            const int kc = pairs - q0 < kc_pairs ? pairs - q0 : kc_pairs;
            const float scale = q0 == 0 ? beta : 1.0f;
            for (int j0 = column_begin; j0 < column_end; j0 += PANEL) {
                const int columns = column_end - j0;
                const __mmask16 mask0 = columns >= 16 ? 0xFFFF : (__mmask16)((1u << columns) - 1);
                const __mmask16 mask1 = columns >= 32 ? 0xFFFF : (columns <= 16 ? 0 : (__mmask16)((1u << (columns - 16)) - 1));
                const uint16_t *w = packed + (size_t)(j0 / PANEL) * PANEL * kp2 + (size_t)q0 * 2 * PANEL;
                for (int i0 = 0; i0 < mc; i0 += BF16_MR) {
                    const int rows = mc - i0 < BF16_MR ? mc - i0 : BF16_MR;
                    tile_any(rows, kc, (const uint32_t *)(block + (size_t)i0 * kp2) + q0, pairs, w,
                             c + (size_t)(r0 + i0) * ldc + j0, ldc, mask0, mask1, scale);
                }
            }
        }
    }
}

#else
int srppo_bf16_gemm_has_avx512(void) { return 0; }
void srppo_bf16_gemm_avx512(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                            int m, int n, int k, int column_begin, int column_end, float beta) {
    srppo_bf16_gemm_portable(c, ldc, a, lda, packed, m, n, k, column_begin, column_end, beta);
}
#endif

// --- Dispatch ------------------------------------------------------------------------------------

typedef void (*gemm_function)(float *, int, const float *, int, const uint16_t *, int, int, int, int, int, float);

void srppo_bf16_gemm(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                     int m, int n, int k, int column_begin, int column_end, float beta) {
    static gemm_function chosen;
    gemm_function f = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (!f) {
        f = srppo_bf16_gemm_has_avx512() ? srppo_bf16_gemm_avx512 : srppo_bf16_gemm_portable;
        __atomic_store_n(&chosen, f, __ATOMIC_RELAXED);
    }
    f(c, ldc, a, lda, packed, m, n, k, column_begin, column_end, beta);
}
