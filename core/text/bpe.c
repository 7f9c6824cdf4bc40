// BPE model: hashed vocab and merges, and the merge loop of tokenizers' models::bpe (see bpe.h).
// The merge loop is a line-by-line port of Word::merge_all: a min-heap of (rank, position)
// candidates over a linked list of symbols, with stale entries skipped when popped. That makes
// a whole Gemma 4 chunk (its pre-tokenizer never splits, so a document is one "word") cost
// O(n log n) rather than the O(n^2) of rescanning for the best pair.
#include "bpe.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t x) { // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t table_size(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

g4_status g4_bpe_ids_push(struct g4_bpe_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? 2 * ids->cap : 64, bytes;
        if (!g4_mul_size(cap, sizeof *ids->v, &bytes))
            return g4_fail(G4_ERR_OUT_OF_MEMORY, "token id list overflows");
        int32_t *v = realloc(ids->v, bytes);
        if (!v) return g4_fail(G4_ERR_OUT_OF_MEMORY, "token id list of %zu ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return G4_OK;
}

g4_status g4_bpe_init(struct g4_bpe *b, int32_t n_ids, size_t n_tokens, size_t pool_bytes,
                      size_t n_merges) {
    memset(b, 0, sizeof *b);
    b->unk_id = -1;
    if (n_ids <= 0) return g4_fail(G4_ERR_FORMAT, "BPE vocab is empty");
    b->n_ids = n_ids;
    b->n_tokens = n_tokens;
    b->pool_bytes = pool_bytes + 1;
    b->pool_used = 1; // offset 0 marks a hole
    b->slot_mask = table_size(n_tokens) - 1;
    b->merge_mask = table_size(n_merges) - 1;
    G4_TRY(g4_calloc((void **)&b->str_off, (size_t)n_ids, sizeof *b->str_off, "vocab offsets"));
    G4_TRY(g4_calloc((void **)&b->str_len, (size_t)n_ids, sizeof *b->str_len, "vocab lengths"));
    G4_TRY(g4_calloc((void **)&b->pool, b->pool_bytes, 1, "vocab text"));
    G4_TRY(g4_calloc((void **)&b->slots, b->slot_mask + 1, sizeof *b->slots, "vocab hash"));
    G4_TRY(g4_calloc((void **)&b->merges, b->merge_mask + 1, sizeof *b->merges, "merge hash"));
    for (size_t i = 0; i <= b->slot_mask; i++) b->slots[i] = -1;
    for (size_t i = 0; i <= b->merge_mask; i++) b->merges[i].new_id = -1;
    return G4_OK;
}

int32_t g4_bpe_find(const struct g4_bpe *b, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & b->slot_mask;; i = (i + 1) & b->slot_mask) {
        int32_t id = b->slots[i];
        if (id < 0) return -1;
        if (b->str_len[id] == n && memcmp(b->pool + b->str_off[id], s, n) == 0) return id;
    }
}

g4_status g4_bpe_set(struct g4_bpe *b, int32_t id, const char *s, size_t n) {
    if (id < 0 || id >= b->n_ids) return g4_fail(G4_ERR_FORMAT, "BPE vocab id %d out of range", id);
    if (b->str_off[id] != 0) return g4_fail(G4_ERR_FORMAT, "BPE vocab id %d is given twice", id);
    if (g4_bpe_find(b, s, n) >= 0)
        return g4_fail(G4_ERR_FORMAT, "BPE vocab text \"%.*s\" has two ids", (int)n, s);
    if (b->n_set == b->n_tokens || n > b->pool_bytes - b->pool_used ||
        b->pool_used > UINT32_MAX - 1)
        return g4_fail(G4_ERR_INTERNAL, "BPE vocab tables too small");
    memcpy(b->pool + b->pool_used, s, n);
    b->str_off[id] = (uint32_t)b->pool_used;
    b->str_len[id] = (uint32_t)n;
    b->pool_used += n;
    size_t i = hash_bytes(s, n) & b->slot_mask;
    while (b->slots[i] >= 0) i = (i + 1) & b->slot_mask;
    b->slots[i] = id;
    b->n_set++;
    return G4_OK;
}

void g4_bpe_index(struct g4_bpe *b) {
    static const char hex[] = "0123456789ABCDEF";
    for (int c = 0; c < 256; c++) {
        // tokenizers formats the fallback token as format!("<{b:#04X}>"), e.g. "<0x0A>"
        char name[6] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>'};
        b->byte_id[c] = g4_bpe_find(b, name, sizeof name);
    }
}

static struct g4_bpe_merge *merge_slot(const struct g4_bpe *b, uint64_t pair) {
    for (size_t i = hash_pair(pair) & b->merge_mask;; i = (i + 1) & b->merge_mask)
        if (b->merges[i].new_id < 0 || b->merges[i].pair == pair) return &b->merges[i];
}

g4_status g4_bpe_add_merge(struct g4_bpe *b, int32_t left, int32_t right, uint32_t rank) {
    size_t nl = b->str_len[left], nr = b->str_len[right];
    char stack[256], *joined = stack;
    if (nl + nr > sizeof stack && !(joined = malloc(nl + nr)))
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "merge text");
    memcpy(joined, b->pool + b->str_off[left], nl);
    memcpy(joined + nl, b->pool + b->str_off[right], nr);
    int32_t new_id = g4_bpe_find(b, joined, nl + nr);
    if (new_id < 0) {
        g4_status st = g4_fail(G4_ERR_FORMAT, "merge %u: \"%.*s\" is not in the vocab", rank,
                               (int)(nl + nr), joined);
        if (joined != stack) free(joined);
        return st;
    }
    if (joined != stack) free(joined);
    uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    struct g4_bpe_merge *m = merge_slot(b, pair);
    *m = (struct g4_bpe_merge){pair, rank, new_id};
    return G4_OK;
}

static const struct g4_bpe_merge *find_merge(const struct g4_bpe *b, int32_t l, int32_t r) {
    const struct g4_bpe_merge *m = merge_slot(b, (uint64_t)(uint32_t)l << 32 | (uint32_t)r);
    return m->new_id >= 0 ? m : NULL;
}

size_t g4_bpe_utf8_len(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

// Word symbol and heap entry, as tokenizers' Symbol and Merge.
struct sym {
    int32_t c, prev, next;
    uint32_t len; // bytes; 0 marks a symbol merged into its left neighbour
};
struct cand {
    uint32_t rank;
    int32_t pos, new_id;
};

struct word {
    struct sym *s;
    size_t n;
    struct cand *heap;
    size_t n_heap, cap_heap;
};

static void word_add(struct word *w, int32_t c, uint32_t len) {
    int32_t i = (int32_t)w->n;
    w->s[i] = (struct sym){c, i - 1, -1, len};
    if (i > 0) w->s[i - 1].next = i;
    w->n++;
}

static bool cand_less(struct cand a, struct cand b) {
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static g4_status heap_push(struct word *w, struct cand c) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? 2 * w->cap_heap : 64, bytes;
        if (!g4_mul_size(cap, sizeof *w->heap, &bytes))
            return g4_fail(G4_ERR_OUT_OF_MEMORY, "BPE heap overflows");
        struct cand *h = realloc(w->heap, bytes);
        if (!h) return g4_fail(G4_ERR_OUT_OF_MEMORY, "BPE heap of %zu entries", cap);
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0 && cand_less(c, w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return G4_OK;
}

static struct cand heap_pop(struct word *w) {
    struct cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        struct cand best = last;
        if (l < n && cand_less(w->heap[l], best)) m = l, best = w->heap[l];
        if (l + 1 < n && cand_less(w->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static g4_status push_pair(const struct g4_bpe *b, struct word *w, int32_t pos) {
    const struct g4_bpe_merge *m = find_merge(b, w->s[pos].c, w->s[w->s[pos].next].c);
    return m ? heap_push(w, (struct cand){m->rank, pos, m->new_id}) : G4_OK;
}

// tokenizers Word::merge_all with dropout = None.
static g4_status merge_all(const struct g4_bpe *b, struct word *w) {
    for (size_t i = 0; i + 1 < w->n; i++) G4_TRY(push_pair(b, w, (int32_t)i));
    while (w->n_heap > 0) {
        struct cand top = heap_pop(w);
        struct sym *cur = &w->s[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        struct sym right = w->s[cur->next];
        const struct g4_bpe_merge *m = find_merge(b, cur->c, right.c);
        if (!m || m->new_id != top.new_id) continue; // expired entry
        w->s[cur->next].len = 0;
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        if (right.next >= 0) w->s[right.next].prev = top.pos;
        if (cur->prev >= 0) G4_TRY(push_pair(b, w, cur->prev));
        if (cur->next >= 0) G4_TRY(push_pair(b, w, top.pos));
    }
    return G4_OK;
}

// tokenizers BPE::merge_word (+ the ignore_merges shortcut of tokenize_with_cache).
g4_status g4_bpe_encode_word(const struct g4_bpe *b, const char *text, size_t n,
                             struct g4_bpe_ids *out) {
    if (n == 0) return G4_OK;
    if (b->ignore_merges) {
        int32_t id = g4_bpe_find(b, text, n);
        if (id >= 0) return g4_bpe_ids_push(out, id);
    }
    const unsigned char *s = (const unsigned char *)text;
    struct word w = {0};
    g4_status st = g4_calloc((void **)&w.s, n, sizeof *w.s, "BPE word");
    if (st != G4_OK) return st;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = g4_bpe_utf8_len(s + i, n - i, &cp);
        if (len == 0) len = 1; // invalid UTF-8: a one-byte symbol, found in no vocab
        int32_t id = g4_bpe_find(b, text + i, len);
        if (id >= 0) {
            if (unk >= 0) word_add(&w, unk, unk_len), unk = -1;
            word_add(&w, id, (uint32_t)len);
        } else {
            bool all_bytes = b->byte_fallback;
            for (size_t k = 0; all_bytes && k < len; k++) all_bytes = b->byte_id[s[i + k]] >= 0;
            if (all_bytes) {
                // as tokenizers: byte tokens do not flush a pending unk
                for (size_t k = 0; k < len; k++) word_add(&w, b->byte_id[s[i + k]], 1);
            } else if (b->unk_id >= 0) {
                if (unk >= 0 && b->fuse_unk) {
                    unk_len += (uint32_t)len;
                } else {
                    if (unk >= 0) word_add(&w, unk, unk_len);
                    unk = b->unk_id, unk_len = (uint32_t)len;
                }
            } // no unk token: tokenizers drops the character
        }
        i += len;
    }
    if (unk >= 0) word_add(&w, unk, unk_len);
    st = merge_all(b, &w);
    for (size_t i = 0; st == G4_OK && i < w.n; i++)
        if (w.s[i].len != 0) st = g4_bpe_ids_push(out, w.s[i].c);
    free(w.s);
    free(w.heap);
    return st;
}

void g4_bpe_free(struct g4_bpe *b) {
    if (!b) return;
    free(b->str_off);
    free(b->str_len);
    free(b->pool);
    free(b->slots);
    free(b->merges);
    memset(b, 0, sizeof *b);
}
