// Sampling kernels; see include/srppo_sampling.h for the contracts.
#include "srppo_sampling.h"
#include "vector_math.h"

#include "multiversion.h"

MULTIVERSION
float srppo_scale_logsumexp(float *z, const float *x, int n, float scale) {
    for (int i = 0; i < n; i++) z[i] = x[i] * scale;
    float m = srppo_max(z, n);
    return m + logf(srppo_exp_shift_sum_const(z, n, m));
}

MULTIVERSION
int srppo_argmax(const float *x, int n) {
    float m = srppo_max(x, n);
    for (int i = 0; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}

MULTIVERSION
int srppo_indices_at_least(int32_t *ids, const float *x, int n, float threshold) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        ids[count] = i;
        count += x[i] >= threshold;
    }
    return count;
}

// Probabilities are summed in blocks first, so finding the drawn index reads one block, not the
// whole row, sequentially.
enum { SAMPLE_BLOCK = 256 };

MULTIVERSION
int srppo_sample_softmax(const float *z, int n, float lse, double u, float *probs) {
    double block_sums[(n + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK];
    double total = 0.0;
    for (int b = 0; b * SAMPLE_BLOCK < n; b++) {
        int start = b * SAMPLE_BLOCK, end = start + SAMPLE_BLOCK < n ? start + SAMPLE_BLOCK : n;
        for (int i = start; i < end; i++) probs[i] = srppo_expf(z[i] - lse);
        float acc[SRPPO_LANES] = {0};
        int i = start;
        for (; i + SRPPO_LANES <= end; i += SRPPO_LANES)
            for (int l = 0; l < SRPPO_LANES; l++) acc[l] += probs[i + l];
        double s = 0.0;
        for (int l = 0; l < SRPPO_LANES; l++) s += acc[l];
        for (; i < end; i++) s += probs[i];
        block_sums[b] = s;
        total += s;
    }
    const double target = u * total;
    double cumulative = 0.0;
    int last_positive = -1;
    for (int b = 0; b * SAMPLE_BLOCK < n; b++) {
        int start = b * SAMPLE_BLOCK, end = start + SAMPLE_BLOCK < n ? start + SAMPLE_BLOCK : n;
        if (cumulative + block_sums[b] <= target) {
            cumulative += block_sums[b];
            for (int i = end - 1; i >= start && last_positive < start; i--)
                if (probs[i] > 0.0f) last_positive = i;
            continue;
        }
        // The draw lies in this block. Summing its entries one by one may round differently from
        // the block's sum: if it never crosses, the block's last positive entry is drawn.
        for (int i = start; i < end; i++) {
            if (probs[i] > 0.0f) last_positive = i;
            cumulative += probs[i];
            if (cumulative > target && probs[i] > 0.0f) return i;
        }
        return last_positive;
    }
    return last_positive;  // u * total rounded up to total
}
