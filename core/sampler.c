// Token sampling over one logits row, in Hugging Face's logits-processor order:
// repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw from the softmax.
// Greedy (temperature 0) is argmax after the penalty, lowest id on ties, like torch.argmax.
// Nothing is allocated per call: the work buffers come from g4_sampler_init. The filters select
// candidates in O(n_vocab) (a size-k heap or quickselect for top-k, a threshold for min-p, a
// score histogram as top-p pre-filter) and order only the survivors, with a heap popped until
// top-p is reached, never sorting the whole 262144-entry row.
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
    g4_status st =
        g4_calloc((void **)&s->probs, (size_t)n_vocab, sizeof *s->probs, "sampler probs");
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

// Lowest index of the largest value, as torch.argmax (NaN never wins; all -inf/NaN gives 0).
static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    float bv = x[0] == x[0] ? x[0] : -INFINITY;
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > bv) {
            bv = x[i];
            best = i;
        }
    }
    return best;
}

// Min-heap h[0..size) of ids ordered by v: replace the root by id and sift it down.
static void heap_replace_min(const float *v, int32_t *h, int32_t size, int32_t id) {
    int32_t j = 0;
    for (;;) {
        int32_t l = 2 * j + 1, r = l + 1, low = -1;
        float lowv = v[id];
        if (l < size && v[h[l]] < lowv) {
            low = l;
            lowv = v[h[l]];
        }
        if (r < size && v[h[r]] < lowv) low = r;
        if (low < 0) break;
        h[j] = h[low];
        j = low;
    }
    h[j] = id;
}

// The k-th largest value of v (1 <= k < n, no NaN). Small k: a min-heap of the k best so far
// in idx[0..k); almost every entry loses one comparison against its root, so this is one pass.
// Large k: quickselect with a three-way partition of idx = 0..n-1 (expected O(n); runs of
// equal values such as masked -inf do not degrade it).
static float kth_largest(const float *v, int32_t *idx, int32_t n, int32_t k) {
    if (k <= 256) {
        for (int32_t i = 0; i < k; i++) { // sift up
            int32_t j = i;
            for (; j > 0 && v[idx[(j - 1) / 2]] > v[i]; j = (j - 1) / 2) idx[j] = idx[(j - 1) / 2];
            idx[j] = i;
        }
        for (int32_t i = k; i < n; i++)
            if (v[i] > v[idx[0]]) heap_replace_min(v, idx, k, i);
        return v[idx[0]];
    }
    for (int32_t i = 0; i < n; i++) idx[i] = i;
    int32_t lo = 0, hi = n, want = k - 1;
    for (;;) {
        float a = v[idx[lo]], b = v[idx[lo + (hi - lo) / 2]], c = v[idx[hi - 1]];
        float pv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int32_t lt = lo, i = lo, gt = hi; // [lo,lt) > pv, [lt,i) == pv, [gt,hi) < pv
        while (i < gt) {
            float x = v[idx[i]];
            int32_t t = idx[i];
            if (x > pv) {
                idx[i++] = idx[lt];
                idx[lt++] = t;
            } else if (x < pv) {
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

// Strict total order for ranking: larger weight first, then lower id.
static inline int ranks_before(const float *e, int32_t a, int32_t b) {
    return e[a] > e[b] || (e[a] == e[b] && a < b);
}

// Max-heap (by ranks_before) sift-down on idx[0..n).
static void sift_down(const float *e, int32_t *idx, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && ranks_before(e, idx[l], idx[top])) top = l;
        if (r < n && ranks_before(e, idx[r], idx[top])) top = r;
        if (top == i) return;
        int32_t t = idx[i];
        idx[i] = idx[top];
        idx[top] = t;
        i = top;
    }
}

// HF TopPLogitsWarper: in descending order, keep a token while the probability of the tokens
// ranked above it is < top_p (the token that crosses top_p is kept; the first always is).
// p_i = e[i] / z. Pops a heap one token at a time, so only the kept prefix is ever ordered; the
// kept tokens end up in idx[nc - kept .. nc). Returns kept.
static size_t top_p_filter(const float *e, int32_t *idx, size_t nc, double z, double top_p) {
    for (size_t i = nc / 2; i-- > 0;) sift_down(e, idx, nc, i);
    double cum = 0.0;
    size_t kept = 0, heap = nc;
    while (heap > 0 && cum < top_p) {
        int32_t t = idx[0];
        idx[0] = idx[--heap];
        idx[heap] = t;
        sift_down(e, idx, heap, 0);
        cum += (double)e[t] / z;
        kept++;
    }
    return kept;
}

// Top-p pre-filter histogram: scaled scores s in [S_LO, 0] in N_BUCKETS bins of width 1/4
// (a factor e^0.25 in probability); lower scores share bin 0.
#define N_BUCKETS 128
#define S_LO (-32.0f)

static inline int bucket_of(float s) {
    int b = (int)((s - S_LO) * (float)(N_BUCKETS / -S_LO));
    return b < 0 ? 0 : b >= N_BUCKETS ? N_BUCKETS - 1 : b;
}

int32_t g4_sampler_sample(struct g4_sampler *s, const float *logits, const int32_t *history,
                          size_t n_history) {
    const int32_t n = s->n_vocab;
    const int penalize = s->repeat_penalty != 1.0f && history && n_history > 0;
    if (s->temperature <= 0.0f && !penalize) return argmax(logits, n);
    // Work row v (n_vocab,) in s->probs: the penalized logits (NaN -> -inf, never drawn), then,
    // for the candidates only, their softmax weights.
    float *v = s->probs;
    for (int32_t i = 0; i < n; i++) v[i] = logits[i] == logits[i] ? logits[i] : -INFINITY;
    if (penalize) {
        // HF RepetitionPenaltyLogitsProcessor: gather the original logit of every token in the
        // window, penalize, scatter back. Repeated ids read the unmodified logit, so each
        // distinct token is penalized once. Ids outside [0, n_vocab) are ignored.
        size_t from = 0;
        if (s->repeat_last_n > 0 && n_history > (size_t)s->repeat_last_n)
            from = n_history - (size_t)s->repeat_last_n;
        for (size_t j = from; j < n_history; j++) {
            int32_t t = history[j];
            if (t < 0 || t >= n || logits[t] != logits[t]) continue;
            float l = logits[t];
            v[t] = l < 0.0f ? l * s->repeat_penalty : l / s->repeat_penalty;
        }
    }
    const int32_t best = argmax(v, n);
    const float m = v[best];
    if (s->temperature <= 0.0f || !isfinite(m)) return best;

    // Top-k (HF TopKLogitsWarper; temperature does not change the ranking): keep every token
    // scoring >= the k-th largest score, so ties at the boundary all stay.
    int32_t *idx = s->index;
    size_t nc = (size_t)n;
    const int all = !(s->top_k > 0 && s->top_k < n); // candidates: every id, idx unused
    if (!all) {
        float thr = kth_largest(v, idx, n, s->top_k);
        nc = 0;
        for (int32_t i = 0; i < n; i++)
            if (v[i] >= thr) idx[nc++] = i;
    }

    // Temperature (HF TemperatureLogitsWarper) with the max subtracted first: scores
    // s_i = (v_i - m) / T <= 0 and weights e_i = exp(s_i) in [0, 1], the argmax weighing 1.
    // Each candidate id occurs once, so weights overwrite v in place. z is the top-p normalizer
    // (over the top-k survivors, before min-p); mass[] is z per score bucket, for top-p.
    const float inv_t = 1.0f / s->temperature;
    const int use_top_p = s->top_p < 1.0f;
    double z = 0.0, mass[N_BUCKETS];
    if (use_top_p) memset(mass, 0, sizeof mass);
    for (size_t j = 0; j < nc; j++) {
        int32_t id = all ? (int32_t)j : idx[j];
        float sc = (v[id] - m) * inv_t;
        float e = expf(sc);
        v[id] = e;
        z += e;
        if (use_top_p) mass[bucket_of(sc)] += e;
    }

    // Survivors must reach weight e_min. Min-p (HF MinPLogitsWarper, applied after top-p):
    // p_i >= min_p * p_max  <=>  e_i >= min_p, as p_max has weight 1. Min-p and top-p both keep
    // a prefix of the descending order, so applying min-p first gives the same intersection.
    // Top-p pre-filter: with c the first bucket where the ascending cumulative mass exceeds
    // (1 - top_p) z, a token in a lower bucket has at most (1 - top_p) z of mass at or below
    // it, so top-p removes it. This cuts a 262144-entry row to the few plausible tokens.
    float e_min = s->min_p;
    if (use_top_p) {
        double cum = 0.0, limit = (1.0 - (double)s->top_p) * z;
        int c = 0;
        while (c < N_BUCKETS - 1 && cum + mass[c] <= limit) cum += mass[c++];
        // Bucket c starts at score S_LO + c/4; the slack covers expf rounding.
        float e_c = c > 0 ? expf(S_LO + (float)c * (-S_LO / N_BUCKETS)) * (1.0f - 1e-6f) : 0.0f;
        if (e_c > e_min) e_min = e_c;
    }
    size_t nf = 0;
    for (size_t j = 0; j < nc; j++) {
        int32_t id = all ? (int32_t)j : idx[j];
        if (v[id] > 0.0f && v[id] >= e_min) idx[nf++] = id;
    }
    // The argmax always survives: its weight is 1 and both thresholds are <= 1.

    int32_t *cand = idx;
    if (use_top_p) {
        size_t kept = top_p_filter(v, idx, nf, z, (double)s->top_p);
        cand = idx + (nf - kept);
        nf = kept;
    }

    // Draw from the renormalized distribution over the survivors.
    double w = 0.0;
    for (size_t j = 0; j < nf; j++) w += v[cand[j]];
    double target = next_uniform(&s->rng) * w, acc = 0.0;
    for (size_t j = 0; j < nf; j++) {
        acc += v[cand[j]];
        if (target < acc) return cand[j];
    }
    return cand[nf - 1]; // rounding left target == w
}
