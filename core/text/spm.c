// Score-driven merging (see spm.h): a port of llama.cpp's llm_tokenizer_spm_session::tokenize
// (llama-cpp-python 0.3.36's llama.cpp, src/llama-vocab.cpp). Symbols are a linked list over
// the word's bytes; a max-heap holds candidate pairs (score, left position, merged byte size);
// an entry is stale when either side has been merged away or the sides no longer add up to
// its size, and is skipped when popped. O(n log n) per word.
#include "spm.h"

#include <stdbool.h>
#include <stdlib.h>

#include "mem.h"

struct sym {
    size_t off, n; // bytes of the word; n == 0: merged into its left neighbour
    int32_t prev, next;
};
struct bigram {
    float score;
    int32_t left, right;
    size_t size;
};
struct work {
    struct sym *s;
    struct bigram *heap;
    size_t n_heap, cap_heap;
};

// llama.cpp's order: the higher score first; equal scores, the smaller left position first.
static bool before(const struct bigram *a, const struct bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static g4_status heap_push(struct work *w, struct bigram c) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? 2 * w->cap_heap : 64, bytes;
        if (!g4_mul_size(cap, sizeof *w->heap, &bytes))
            return g4_fail(G4_ERR_OUT_OF_MEMORY, "SPM heap overflows");
        struct bigram *h = realloc(w->heap, bytes);
        if (!h) return g4_fail(G4_ERR_OUT_OF_MEMORY, "SPM heap of %zu entries", cap);
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0 && before(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return G4_OK;
}

static struct bigram heap_pop(struct work *w) {
    struct bigram top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct bigram *best = &last;
        if (l < n && before(&w->heap[l], best)) m = l, best = &w->heap[l];
        if (l + 1 < n && before(&w->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

// llama.cpp's try_add_bigram: a candidate when the joined text is a token.
static g4_status try_pair(const struct g4_bpe *v, const float *scores, struct work *w,
                          const char *text, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return G4_OK;
    size_t size = w->s[left].n + w->s[right].n;
    int32_t id = g4_bpe_find(v, text + w->s[left].off, size);
    if (id < 0) return G4_OK;
    return heap_push(w, (struct bigram){scores[id], left, right, size});
}

// unicode_len_utf8: the sequence length its lead byte announces (1 for continuation bytes),
// whether or not the bytes after it continue it.
static size_t lead_len(unsigned char c) {
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

g4_status g4_spm_encode_word(const struct g4_bpe *v, const float *scores, const char *text,
                             size_t n, struct g4_bpe_ids *out) {
    if (n == 0) return G4_OK;
    struct work w = {0};
    G4_TRY(g4_calloc((void **)&w.s, n, sizeof *w.s, "SPM word"));
    int32_t n_sym = 0;
    for (size_t off = 0; off < n; n_sym++) {
        size_t len = lead_len((unsigned char)text[off]);
        if (len > n - off) len = n - off;
        w.s[n_sym] = (struct sym){off, len, n_sym - 1, off + len == n ? -1 : n_sym + 1};
        off += len;
    }
    g4_status st = G4_OK;
    for (int32_t i = 1; st == G4_OK && i < n_sym; i++) st = try_pair(v, scores, &w, text, i - 1, i);
    while (st == G4_OK && w.n_heap > 0) {
        struct bigram b = heap_pop(&w);
        struct sym *l = &w.s[b.left], *r = &w.s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; // stale
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w.s[r->next].prev = b.left;
        st = try_pair(v, scores, &w, text, l->prev, b.left);
        if (st == G4_OK) st = try_pair(v, scores, &w, text, b.left, l->next);
    }
    // llama.cpp's resegment: every merged symbol is a token; a symbol that is not (a character
    // outside the vocabulary, or bytes that are not UTF-8) goes out as byte tokens
    for (int32_t i = 0; st == G4_OK && i >= 0; i = w.s[i].next) {
        int32_t id = g4_bpe_find(v, text + w.s[i].off, w.s[i].n);
        if (id >= 0) {
            st = g4_bpe_ids_push(out, id);
            continue;
        }
        for (size_t k = 0; st == G4_OK && k < w.s[i].n; k++) {
            int32_t b = v->byte_id[(unsigned char)text[w.s[i].off + k]];
            if (b < 0) b = v->unk_id;
            if (b >= 0) st = g4_bpe_ids_push(out, b);
        }
    }
    free(w.s);
    free(w.heap);
    return st;
}
