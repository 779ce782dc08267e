// bf16-weight matrix product: C[m, n] = A[m, k] · Wᵀ (+ beta · C), A and C fp32, W stored as bf16.
//
// W (frozen weights, [n, k] row-major in fp32) is packed once, at load, into the layout below; the
// packed bytes are what shared weight images hold, so packing is plain portable C and gives the same
// bytes on every machine. A is rounded to bf16 on the fly. Products of two bf16 values are exact in
// fp32 and are summed in fp32, so the result equals the exact sum of the bf16-rounded products up to
// fp32 summation error.
//
// Packed layout (SRPPO_BF16_PANEL = 32 columns per panel, k rounded up to an even `kp2 = 2·⌈k/2⌉`):
//   panels p = 0 ..< ⌈n/32⌉, each 32 · kp2 uint16 (64 · kp2 bytes), one after the other;
//   inside panel p, for each k-pair q = 0 ..< kp2/2, for each column j = 0 ..< 32:
//     two bf16: W[32p + j, 2q] then W[32p + j, 2q + 1].
//   So W[r, c] sits at index  (r/32)·32·kp2 + (c/2)·64 + (r%32)·2 + c%2.
//   Columns past n and the odd k past k are zero. One k-pair of a panel is one 64-byte vector:
//   exactly the operand of vdpbf16ps (16 fp32 lanes, each the dot product of a pair).
//
// Rounding fp32 → bf16 (weights and activations alike): round to nearest even, inputs below the
// smallest normal become signed zero (as vcvtneps2bf16 and vdpbf16ps treat them), NaN stays NaN.
#ifndef SRPPO_BF16_GEMM_H
#define SRPPO_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define SRPPO_BF16_PANEL 32

// Number of uint16 elements of the packed form of an [n, k] matrix.
size_t srppo_bf16_packed_count(int n, int k);

// Packs W[n, k] (row stride ldw floats) into `packed` (srppo_bf16_packed_count(n, k) elements).
void srppo_bf16_pack(uint16_t *packed, const float *w, int n, int k, int ldw);

// Reads W[r, c] back from the packed form as fp32 (exact: bf16 widens without rounding).
float srppo_bf16_packed_get(const uint16_t *packed, int n, int k, int r, int c);

// out[c] = W[r, c] for c < k: one row back as fp32 (an embedding lookup from a tied, packed LM head).
void srppo_bf16_packed_row(float *out, const uint16_t *packed, int k, int r);

// dst[i] = the fp32 value of bf16(src[i]) (the rounding above). dst may equal src.
void srppo_bf16_round(float *dst, const float *src, size_t count);

// C[r, j] = sum_c bf16(A[r, c]) · W[j, c]  (+ beta · C[r, j] when beta != 0; C is not read when
// beta == 0) for r < m and column_begin <= j < column_end. `packed` is the whole packed W of
// [n, k]; column_begin must be a multiple of SRPPO_BF16_PANEL and column_end <= n. `c` points at
// column 0 of row 0 (row stride ldc). Single-threaded; callers split rows or panels across threads.
// Every C element is summed in the same order whatever the slice, so splits give identical bits.
void srppo_bf16_gemm(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                     int m, int n, int k, int column_begin, int column_end, float beta);

// The two implementations behind srppo_bf16_gemm (same contract). The AVX-512 one may only be
// called when srppo_bf16_gemm_has_avx512() is nonzero.
void srppo_bf16_gemm_avx512(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                            int m, int n, int k, int column_begin, int column_end, float beta);
void srppo_bf16_gemm_portable(float *c, int ldc, const float *a, int lda, const uint16_t *packed,
                              int m, int n, int k, int column_begin, int column_end, float beta);

// 1 when this CPU has AVX-512 F + BW + VL + BF16 (srppo_bf16_gemm then uses vdpbf16ps), else 0.
int srppo_bf16_gemm_has_avx512(void);

#endif
