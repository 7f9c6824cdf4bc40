// Token sampling over one logits row, in Hugging Face's logits-processor order:
// repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw from the softmax.
// Greedy (temperature 0) is argmax after the penalty, lowest id on ties, like torch.argmax.
// Nothing is allocated per call: the work buffers come from g4_sampler_init. The filters select
// candidates in O(n_vocab) (quickselect for top-k, thresholds for min-p and a top-p pre-filter)
// and order only the few survivors with a partial heap sort, never the whole 262144-entry row.
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

g4_status g4_sampler_init(struct g4_sampler *s, int32_t n_vocab) {
    memset(s, 0, sizeof *s);
    if (n_vocab <= 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "sampler: n_vocab must be > 0 (got %d)", n_vocab);
    g4_status st = g4_calloc((void **)&s->probs, (size_t)n_vocab, sizeof *s->probs, "sampler probs");
    if (st == G4_OK)
        st = g4_calloc((void **)&s->index, (size_t)n_vocab, sizeof *s->index, "sampler index");
    if (st != G4_OK) {
        g4_sampler_free(s);
        return st;
    }
    s->n_vocab = n_vocab;
    s->top_p = 1.0f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    return G4_OK;
}

void g4_sampler_free(struct g4_sampler *s) {
    if (!s) return;
    free(s->probs);
    free(s->index);
    memset(s, 0, sizeof *s);
}

g4_status g4_sampler_set(struct g4_sampler *s, float temperature, int32_t top_k, float top_p,
                         float min_p, float repeat_penalty, int32_t repeat_last_n) {
    // Written as !(ok) so NaN fails every check.
    if (!(temperature >= 0.0f && temperature <= FLT_MAX))
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "sampler: temperature must be finite and >= 0 (got %g)", temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "sampler: top_p must be in (0, 1] (got %g)",
                       top_p);
    if (!(min_p >= 0.0f && min_p <= 1.0f))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "sampler: min_p must be in [0, 1] (got %g)",
                       min_p);
    if (!(repeat_penalty > 0.0f && repeat_penalty <= FLT_MAX))
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "sampler: repeat_penalty must be finite and > 0 (got %g)", repeat_penalty);
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    s->min_p = min_p;
    s->repeat_penalty = repeat_penalty;
    s->repeat_last_n = repeat_last_n;
    return G4_OK;
}

void g4_sampler_set_seed(struct g4_sampler *s, uint64_t seed) {
    s->seed = seed;
    s->rng = seed;
}

// splitmix64 (Steele, Lea, Flood 2014): any state, including 0, is a good seed.
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) with 53 random bits.
static double next_uniform(uint64_t *state) { return (double)(next_u64(state) >> 11) * 0x1.0p-53; }

// NaN logits rank below everything (they are never sampled or returned by a filter).
static inline float key(float v) { return v == v ? v : -INFINITY; }

// Lowest index of the largest value, as torch.argmax (NaN never wins; all -inf/NaN gives 0).
static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    float bv = key(x[0]);
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > bv) {
            bv = x[i];
            best = i;
        }
    }
    return best;
}

// The k-th largest value of x (1 <= k <= n): quickselect with a three-way partition of
// idx = 0..n-1 (expected O(n), and runs of equal values such as masked -inf do not degrade it).
static float kth_largest(const float *x, int32_t *idx, int32_t n, int32_t k) {
    for (int32_t i = 0; i < n; i++) idx[i] = i;
    int32_t lo = 0, hi = n, want = k - 1;
    for (;;) {
        // Median of three as the pivot value.
        float a = key(x[idx[lo]]), b = key(x[idx[lo + (hi - lo) / 2]]), c = key(x[idx[hi - 1]]);
        float pv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int32_t lt = lo, i = lo, gt = hi; // [lo,lt) > pv, [lt,i) == pv, [gt,hi) < pv
        while (i < gt) {
            float v = key(x[idx[i]]);
            int32_t t = idx[i];
            if (v > pv) {
                idx[i++] = idx[lt];
                idx[lt++] = t;
            } else if (v < pv) {
                idx[i] = idx[--gt];
                idx[gt] = t;
            } else {
                i++;
            }
        }
        if (want < lt) hi = lt;
        else if (want < gt) return pv;
        else lo = gt;
    }
}

// Strict total order for ranking: larger logit first, then lower id.
static inline int ranks_before(const float *x, int32_t a, int32_t b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
}

// Max-heap (by ranks_before) sift-down on idx[0..n).
static void sift_down(const float *x, int32_t *idx, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && ranks_before(x, idx[l], idx[top])) top = l;
        if (r < n && ranks_before(x, idx[r], idx[top])) top = r;
        if (top == i) return;
        int32_t t = idx[i];
        idx[i] = idx[top];
        idx[top] = t;
        i = top;
    }
}

// HF TopPLogitsWarper: in descending order, keep a token while the probability of the tokens
// ranked above it is < top_p (the token that crosses top_p is kept; the first always is).
// probs are exp(s) / z. Pops the heap one token at a time, so only the kept prefix is ordered;
// the kept tokens end up in idx[nc - kept .. nc). Returns kept.
static size_t top_p_filter(const float *x, int32_t *idx, size_t nc, float m, double inv_t,
                           double z, double top_p) {
    for (size_t i = nc / 2; i-- > 0;) sift_down(x, idx, nc, i);
    double cum = 0.0;
    size_t kept = 0, heap = nc;
    while (heap > 0 && cum < top_p) {
        int32_t t = idx[0];
        idx[0] = idx[--heap];
        idx[heap] = t;
        sift_down(x, idx, heap, 0);
        cum += exp((double)(x[t] - m) * inv_t) / z;
        kept++;
    }
    return kept;
}

int32_t g4_sampler_sample(struct g4_sampler *s, const float *logits, const int32_t *history,
                          size_t n_history) {
    const int32_t n = s->n_vocab;
    const float *x = logits;
    // HF RepetitionPenaltyLogitsProcessor: gather the original logit of every token in the
    // window, penalize, scatter back. Repeated ids read the unmodified logit, so each distinct
    // token is penalized once. Ids outside [0, n_vocab) are ignored.
    if (s->repeat_penalty != 1.0f && history && n_history > 0) {
        memcpy(s->probs, logits, (size_t)n * sizeof *s->probs);
        size_t from = 0;
        if (s->repeat_last_n > 0 && n_history > (size_t)s->repeat_last_n)
            from = n_history - (size_t)s->repeat_last_n;
        for (size_t j = from; j < n_history; j++) {
            int32_t t = history[j];
            if (t < 0 || t >= n) continue;
            float l = logits[t];
            s->probs[t] = l < 0.0f ? l * s->repeat_penalty : l / s->repeat_penalty;
        }
        x = s->probs;
    }
    int32_t best = argmax(x, n);
    const float m = x[best];
    if (s->temperature <= 0.0f || !isfinite(m)) return best;
    // Scaled scores s_i = (x_i - m) / T <= 0; softmax is shift invariant, so p_i = exp(s_i) / z.
    const double inv_t = 1.0 / (double)s->temperature;
    int32_t *idx = s->index;

    // Top-k (HF TopKLogitsWarper): keep every token whose logit is >= the k-th largest, so ties
    // at the boundary all stay.
    size_t nc = (size_t)n;
    if (s->top_k > 0 && s->top_k < n) {
        float thr = kth_largest(x, idx, n, s->top_k);
        nc = 0;
        for (int32_t i = 0; i < n; i++)
            if (key(x[i]) >= thr) idx[nc++] = i;
    } else {
        for (int32_t i = 0; i < n; i++) idx[i] = i;
    }

    // Threshold on s that every survivor must reach. Min-p (HF MinPLogitsWarper, after top-p):
    // p_i >= min_p * p_max  <=>  s_i >= log(min_p), exact and independent of normalization.
    // Top-p pre-filter: a token with p_i <= (1 - top_p) / nc has at most nc tokens at or below
    // it, holding <= 1 - top_p in total, so top-p removes it; half that bound leaves a margin
    // for rounding. This cuts a 262144-entry row to the few tokens with visible probability.
    double z = 0.0;
    double s_min = -DBL_MAX; // drops -inf (masked) and NaN logits
    if (s->min_p > 0.0f) s_min = log((double)s->min_p);
    if (s->top_p < 1.0f) {
        for (size_t j = 0; j < nc; j++) z += exp((double)(key(x[idx[j]]) - m) * inv_t);
        double pre = log((1.0 - (double)s->top_p) * z / (2.0 * (double)nc));
        if (pre > s_min) s_min = pre;
    }
    size_t nf = 0;
    for (size_t j = 0; j < nc; j++)
        if ((double)(x[idx[j]] - m) * inv_t >= s_min) idx[nf++] = idx[j];
    // The argmax always survives: its s is 0 and both thresholds are below 0.

    int32_t *cand = idx;
    if (s->top_p < 1.0f) {
        size_t kept = top_p_filter(x, idx, nf, m, inv_t, z, (double)s->top_p);
        cand = idx + (nf - kept);
        nf = kept;
    }

    // Draw from the renormalized distribution over the survivors.
    double w = 0.0;
    for (size_t j = 0; j < nf; j++) w += exp((double)(x[cand[j]] - m) * inv_t);
    double target = next_uniform(&s->rng) * w, acc = 0.0;
    int32_t last = best;
    for (size_t j = 0; j < nf; j++) {
        double e = exp((double)(x[cand[j]] - m) * inv_t);
        if (e <= 0.0) continue;
        acc += e;
        last = cand[j];
        if (target < acc) return cand[j];
    }
    return last; // rounding left target == w
}
