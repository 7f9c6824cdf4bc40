// Hugging Face tokenizer.json loader, encoder and decoder for Gemma's tokenizers (see tokenizer.h).
// Supports exactly the components Gemma 3 and Gemma 4 tokenizer.json files use and rejects the
// rest with G4_ERR_UNSUPPORTED naming the component, so a file is never silently mis-tokenized:
//   model          BPE (byte_fallback, fuse_unk, ignore_merges; no dropout/prefix/suffix): bpe.c
//   normalizer     null | Replace(String) | Prepend | Sequence of those
//   pre_tokenizer  null | Split(String, any behavior, invert) | Sequence of those
//   post_processor null | TemplateProcessing (its "single" template)
//   decoder        null | Replace(String) | ByteFallback | Fuse | Strip | Sequence of those
//   added_tokens   special, lstrip, rstrip, normalized (single_word is rejected)
// The encode pipeline follows tokenizers' Tokenizer::encode: AddedVocabulary::
// extract_and_normalize (raw-text match, normalize, normalized-text match), pre-tokenize,
// BPE per piece, post-process. The text is bytes: sequences that are not valid UTF-8 never match
// the vocab and are byte-fallback encoded one byte at a time (HF only ever sees valid str).
#define _GNU_SOURCE // memmem
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "file.h"
#include "mem.h"
#include "spm.h"

struct str {
    char *s;
    size_t n;
};

struct added_token {
    struct str content; // matched as is (normalized = false) or after normalizing (true)
    int32_t id;
    bool special, lstrip, rstrip, normalized;
};

// Byte trie over added-token patterns; leftmost-longest matching as daachorse's
// DoubleArrayAhoCorasick with MatchKind::LeftmostLongest.
struct trie_node {
    int32_t child, sibling, added; // added: index into tok->added or -1
    unsigned char byte;
};
struct trie {
    struct trie_node *node; // node 0 is the root
    size_t n, cap;
    int32_t root[256];      // the root's child for each first byte, 0 if none: the encoder
                            // tries every text position, most of which start no pattern
};

enum { NORM_REPLACE, NORM_PREPEND };
struct norm_step {
    int kind;
    struct str pattern, content;
};

enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
struct split_step {
    struct str pattern;
    int behavior;
    bool invert;
};

enum { DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP };
struct dec_step {
    int kind;
    struct str pattern, content; // Replace; Strip uses content (one character)
    int start, stop;             // Strip
};

struct g4_tokenizer {
    struct g4_bpe bpe;
    int32_t n_vocab;         // max(model ids, added ids) + 1
    int32_t *added_of_id;    // (n_vocab,) 1 + index into added, 0 if none (calloc: no init pass)
    struct added_token *added;
    size_t n_added;
    struct trie raw_trie, norm_trie;
    struct norm_step *norm;
    size_t n_norm;
    struct split_step *split;
    size_t n_split;
    struct dec_step *dec;
    size_t n_dec;
    bool has_decoder;
    struct g4_bpe_ids bos_prefix, bos_suffix; // TemplateProcessing "single" around $A
    // GGUF vocabularies (g4_tokenizer_new_gguf), encoded as llama.cpp encodes them:
    float *scores;      // (bpe.n_ids,) SentencePiece scores: score-driven merging (spm.c), or NULL
    bool longest_first; // added tokens split the text longest first, as llama.cpp's
                        // tokenizer_st_partition, not leftmost-longest as tokenizers
    bool llama_utf8;    // text between added tokens goes through llama.cpp's UTF-8 decoding
                        // (llama_utf8_text) before the model, as its BPE pre-tokenizer does
};

// ---- small helpers -----------------------------------------------------------------------

static g4_status dup_str(struct str *out, const char *s, size_t n) {
    out->s = malloc(n + 1);
    if (!out->s) return g4_fail(G4_ERR_OUT_OF_MEMORY, "tokenizer string of %zu bytes", n);
    memcpy(out->s, s, n);
    out->s[n] = '\0';
    out->n = n;
    return G4_OK;
}

// Growable byte buffer. borrowed: s is the caller's storage (a stack array), copied to the heap
// when it must grow, and never freed here (buf_free).
struct buf {
    char *s;
    size_t n, cap;
    bool borrowed;
};

static g4_status buf_put(struct buf *b, const char *s, size_t n) {
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) return g4_fail(G4_ERR_OUT_OF_MEMORY, "text buffer overflows");
            cap *= 2;
        }
        char *p = b->borrowed ? malloc(cap) : realloc(b->s, cap);
        if (!p) return g4_fail(G4_ERR_OUT_OF_MEMORY, "text buffer of %zu bytes", cap);
        if (b->borrowed && b->n) memcpy(p, b->s, b->n);
        b->s = p;
        b->cap = cap;
        b->borrowed = false;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    return G4_OK;
}

static void buf_free(struct buf *b) {
    if (!b->borrowed) free(b->s);
}

// Index into tok->added of valid id, or -1.
static int32_t added_index(const struct g4_tokenizer *tok, int32_t id) {
    return tok->added_of_id[id] - 1;
}

// Appends s[0..n) to out with every non-overlapping occurrence of pattern (left to right, as
// Rust's str::replace) replaced by content. memmem keeps it linear for any pattern.
static g4_status replace_all(struct buf *out, const char *s, size_t n, const struct str *pattern,
                             const struct str *content) {
    for (size_t i = 0; i < n;) {
        const char *hit = memmem(s + i, n - i, pattern->s, pattern->n);
        size_t k = hit ? (size_t)(hit - s) : n;
        G4_TRY(buf_put(out, s + i, k - i));
        if (!hit) break;
        G4_TRY(buf_put(out, content->s, content->n));
        i = k + pattern->n;
    }
    return G4_OK;
}

static const char *token_text(const struct g4_tokenizer *tok, int32_t id, size_t *n) {
    int32_t a = added_index(tok, id);
    if (a >= 0) {
        *n = tok->added[a].content.n;
        return tok->added[a].content.s;
    }
    if (id < tok->bpe.n_ids && tok->bpe.str_off[id] != 0) {
        *n = tok->bpe.str_len[id];
        return tok->bpe.pool + tok->bpe.str_off[id];
    }
    return NULL; // a hole: HF's id_to_token gives None and decode skips it
}

// Unicode White_Space (Rust regex \s, used by lstrip/rstrip).
static bool is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// Start of the whitespace run that ends at s[n] (scanning backwards), or any position <= lo
// once the run reaches lo: the caller clamps to lo, so stopping there keeps a whole text of
// lstrip matches linear instead of rescanning the run before each one.
static size_t space_run_start(const char *s, size_t n, size_t lo) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = n;
    while (i > lo) {
        size_t j = i - 1;
        while (j > 0 && i - j < 4 && (u[j] & 0xC0) == 0x80) j--;
        uint32_t cp;
        if (g4_bpe_utf8_len(u + j, i - j, &cp) != i - j || !is_space(cp)) break;
        i = j;
    }
    return i;
}

static size_t space_run_after(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = g4_bpe_utf8_len(u + i, n - i, &cp);
        if (len == 0 || !is_space(cp)) break;
        i += len;
    }
    return i;
}

// ---- trie --------------------------------------------------------------------------------

static g4_status trie_new_node(struct trie *t, unsigned char byte, int32_t *out) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        struct trie_node *p = realloc(t->node, cap * sizeof *p);
        if (!p) return g4_fail(G4_ERR_OUT_OF_MEMORY, "added-token trie of %zu nodes", cap);
        t->node = p;
        t->cap = cap;
    }
    t->node[t->n] = (struct trie_node){-1, -1, -1, byte};
    *out = (int32_t)t->n++;
    return G4_OK;
}

static g4_status trie_insert(struct trie *t, const char *s, size_t n, int32_t added) {
    int32_t cur;
    if (t->n == 0) G4_TRY(trie_new_node(t, 0, &cur));
    cur = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t k = t->node[cur].child;
        while (k >= 0 && t->node[k].byte != c) k = t->node[k].sibling;
        if (k < 0) {
            G4_TRY(trie_new_node(t, c, &k));
            t->node[k].sibling = t->node[cur].child;
            t->node[cur].child = k;
            if (cur == 0) t->root[c] = k;
        }
        cur = k;
    }
    // Two added tokens with one pattern: the first stays (HF keeps one value per pattern).
    if (t->node[cur].added < 0) t->node[cur].added = added;
    return G4_OK;
}

// Longest pattern starting at s[0]; returns its length (0 if none) and the added index.
static size_t trie_longest(const struct trie *t, const char *s, size_t n, int32_t *added) {
    size_t best = 0;
    int32_t cur = 0;
    if (n == 0 || t->root[(unsigned char)s[0]] == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        int32_t k = i ? t->node[cur].child : t->root[(unsigned char)s[0]];
        while (k >= 0 && t->node[k].byte != (unsigned char)s[i]) k = t->node[k].sibling;
        if (k < 0) break;
        cur = k;
        if (t->node[cur].added >= 0) best = i + 1, *added = t->node[cur].added;
    }
    return best;
}

// ---- encode ------------------------------------------------------------------------------

struct seg {
    size_t a, b;
    int32_t added; // index into tok->added, or -1 for text to process further
};
struct segs {
    struct seg *v;
    size_t n, cap;
};

static g4_status segs_push(struct segs *s, size_t a, size_t b, int32_t added) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct seg *p = realloc(s->v, cap * sizeof *p);
        if (!p) return g4_fail(G4_ERR_OUT_OF_MEMORY, "segment list of %zu", cap);
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = (struct seg){a, b, added};
    return G4_OK;
}

// tokenizers AddedVocabulary::find_matches.
// literal: special tokens are not matched (tokenizers' encode_special_tokens, transformers'
// split_special_tokens=True): a special pattern found is skipped and stays text.
static g4_status find_matches(const struct g4_tokenizer *tok, const struct trie *t,
                              const char *s, size_t n, bool literal, struct segs *out) {
    out->n = 0;
    size_t start_offset = 0;
    // rstrip: the last whitespace run measured, [rs_from, rs_to). A later match ends inside it
    // when the run holds whitespace added tokens; answering from the run keeps that linear.
    size_t rs_from = 1, rs_to = 0;
    for (size_t i = 0; t->n > 0 && i < n;) {
        int32_t a = -1;
        size_t len = trie_longest(t, s + i, n - i, &a);
        if (len == 0) {
            i++;
            continue;
        }
        size_t start = i, stop = i + len;
        i = stop;
        const struct added_token *at = &tok->added[a];
        if (literal && at->special) continue;
        if (at->lstrip) {
            size_t newstart = space_run_start(s, start, start_offset);
            start = newstart > start_offset ? newstart : start_offset;
        }
        if (at->rstrip) {
            if (stop < rs_from || stop > rs_to) { // not inside the run measured last
                rs_from = stop;
                rs_to = stop + space_run_after(s + stop, n - stop);
            }
            // inside it: a character boundary reaches the same end; a continuation byte
            // starts no character, so no run (as space_run_after would find)
            if (stop == rs_to || ((unsigned char)s[stop] & 0xC0) != 0x80) stop = rs_to;
        }
        if (start_offset < start) G4_TRY(segs_push(out, start_offset, start, -1));
        G4_TRY(segs_push(out, start, stop, a));
        start_offset = stop;
    }
    if (start_offset != n) G4_TRY(segs_push(out, start_offset, n, -1));
    return G4_OK;
}

static g4_status normalize(const struct g4_tokenizer *tok, const char *s, size_t n,
                           struct buf *out, struct buf *tmp) {
    out->n = 0;
    G4_TRY(buf_put(out, s, n));
    for (size_t k = 0; k < tok->n_norm; k++) {
        const struct norm_step *st = &tok->norm[k];
        tmp->n = 0;
        if (st->kind == NORM_PREPEND) {
            if (out->n == 0) continue;
            G4_TRY(buf_put(tmp, st->content.s, st->content.n));
            G4_TRY(buf_put(tmp, out->s, out->n));
        } else {
            G4_TRY(replace_all(tmp, out->s, out->n, &st->pattern, &st->content));
        }
        struct buf swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
    return G4_OK;
}

// Split pre-tokenizer steps from `step` on, then the BPE model on each piece.
static g4_status pretokenize(const struct g4_tokenizer *tok, size_t step, const char *s,
                             size_t n, struct g4_bpe_ids *ids) {
    if (n == 0) return G4_OK;
    if (step == tok->n_split)
        return tok->scores ? g4_spm_encode_word(&tok->bpe, tok->scores, s, n, ids)
                           : g4_bpe_encode_word(&tok->bpe, s, n, ids);
    const struct split_step *sp = &tok->split[step];
    // pattern matches as (a, b, is_match), covering s (tokenizers Pattern::find_matches)
    struct segs m = {0}, out = {0};
    g4_status st = G4_OK;
    size_t prev = 0, p = sp->pattern.n;
    for (size_t i = 0; st == G4_OK && i + p <= n;) {
        const char *hit = memmem(s + i, n - i, sp->pattern.s, p);
        if (!hit) break;
        i = (size_t)(hit - s);
        if (prev != i) st = segs_push(&m, prev, i, sp->invert);
        if (st == G4_OK) st = segs_push(&m, i, i + p, !sp->invert);
        prev = i += p;
    }
    if (st == G4_OK && prev != n) st = segs_push(&m, prev, n, sp->invert);
    // SplitDelimiterBehavior as NormalizedString::split; `added` holds "remove this piece"
    bool prev_match = false;
    for (size_t k = 0; st == G4_OK && k < m.n; k++) {
        size_t kk = sp->behavior == SPLIT_MERGED_NEXT ? m.n - 1 - k : k;
        struct seg g = m.v[kk];
        bool is_match = g.added != 0;
        struct seg *last = out.n ? &out.v[out.n - 1] : NULL;
        switch (sp->behavior) {
        case SPLIT_REMOVED: st = segs_push(&out, g.a, g.b, is_match); break;
        case SPLIT_ISOLATED: st = segs_push(&out, g.a, g.b, 0); break;
        case SPLIT_CONTIGUOUS:
            if (is_match == prev_match && last) last->b = g.b;
            else st = segs_push(&out, g.a, g.b, 0);
            break;
        case SPLIT_MERGED_PREV:
            if (is_match && !prev_match && last) last->b = g.b;
            else st = segs_push(&out, g.a, g.b, 0);
            break;
        default: // SPLIT_MERGED_NEXT walks backwards and extends the later piece
            if (is_match && !prev_match && last) last->a = g.a;
            else st = segs_push(&out, g.a, g.b, 0);
            break;
        }
        prev_match = is_match;
    }
    for (size_t k = 0; st == G4_OK && k < out.n; k++) {
        struct seg g = out.v[sp->behavior == SPLIT_MERGED_NEXT ? out.n - 1 - k : k];
        if (!g.added) st = pretokenize(tok, step + 1, s + g.a, g.b - g.a, ids);
    }
    free(m.v);
    free(out.v);
    return st;
}

// llama.cpp's unicode_cpts_from_utf8 then unicode_cpt_to_utf8, which its BPE tokenizer applies
// to the text (unicode_regex_split): a lead byte whose continuation bytes are missing, and a
// stray continuation byte, become U+FFFD each (one byte consumed); the decoder is lenient, so
// overlong forms come back in their shortest form and surrogates pass through. Code points above
// U+10FFFF (leads F4-F7 with large values) also give U+FFFD (llama.cpp throws there).
static g4_status llama_utf8_text(const char *text, size_t n, struct buf *out) {
    static const char fffd[] = "\xef\xbf\xbd";
    const unsigned char *s = (const unsigned char *)text;
    out->n = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
        if (!ok) {
            G4_TRY(buf_put(out, fffd, 3));
            i++;
            continue;
        }
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
        i += len;
        char u[4];
        size_t m;
        if (cp <= 0x7F) u[0] = (char)cp, m = 1;
        else if (cp <= 0x7FF) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), m = 2;
        else if (cp <= 0xFFFF)
            u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
            u[2] = (char)(0x80 | (cp & 0x3F)), m = 3;
        else if (cp <= 0x10FFFF)
            u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), m = 4;
        else
            memcpy(u, fffd, 3), m = 3;
        G4_TRY(buf_put(out, u, m));
    }
    return G4_OK;
}

static size_t added_len(const struct g4_tokenizer *tok, int32_t a) { return tok->added[a].content.n; }

// llama.cpp's tokenizer_st_partition (parse_special = true): the added tokens, longest first
// (equal lengths by id: llama.cpp's std::sort leaves their order unspecified, which matters only
// for two overlapping tokens of one length), each split every text piece left at each of its
// non-overlapping occurrences, left to right. Only tokens that occur in the text can split it,
// so those are found first with the trie (every token starting at every position). literal:
// special tokens are not matched (llama.cpp's parse_special = false; user-defined ones still are).
static g4_status partition_longest_first(const struct g4_tokenizer *tok, const char *s, size_t n,
                                         bool literal, struct segs *out) {
    out->n = 0;
    const struct trie *t = &tok->raw_trie;
    int32_t *found = NULL;
    size_t n_found = 0, cap_found = 0;
    g4_status st = G4_OK;
    bool *seen = NULL;
    if (t->n > 0 && n > 0) st = g4_calloc((void **)&seen, tok->n_added, sizeof *seen, "added-token marks");
    for (size_t i = 0; st == G4_OK && t->n > 0 && i < n; i++) {
        int32_t cur = t->root[(unsigned char)s[i]];
        for (size_t k = i; cur > 0;) {
            int32_t a = t->node[cur].added;
            if (a >= 0 && !seen[a] && !(literal && tok->added[a].special)) {
                if (n_found == cap_found) {
                    size_t cap = cap_found ? 2 * cap_found : 16;
                    int32_t *p = realloc(found, cap * sizeof *p);
                    if (!p) {
                        st = g4_fail(G4_ERR_OUT_OF_MEMORY, "added-token list of %zu", cap);
                        break;
                    }
                    found = p;
                    cap_found = cap;
                }
                seen[a] = true;
                found[n_found++] = a;
            }
            if (++k == n) break;
            int32_t c = t->node[cur].child;
            while (c >= 0 && t->node[c].byte != (unsigned char)s[k]) c = t->node[c].sibling;
            cur = c;
        }
    }
    free(seen);
    // longest first, then by id (insertion sort: a text holds few distinct added tokens)
    for (size_t i = 1; i < n_found; i++) {
        int32_t a = found[i];
        size_t j = i;
        while (j > 0 && (added_len(tok, found[j - 1]) < added_len(tok, a) ||
                         (added_len(tok, found[j - 1]) == added_len(tok, a) &&
                          tok->added[found[j - 1]].id > tok->added[a].id)))
            found[j] = found[j - 1], j--;
        found[j] = a;
    }
    struct segs next = {0};
    if (st == G4_OK && n > 0) st = segs_push(out, 0, n, -1);
    for (size_t f = 0; st == G4_OK && f < n_found; f++) {
        const struct str *pat = &tok->added[found[f]].content;
        next.n = 0;
        for (size_t k = 0; st == G4_OK && k < out->n; k++) {
            struct seg g = out->v[k];
            size_t at = g.a;
            while (st == G4_OK && g.added < 0 && at < g.b) {
                const char *hit = memmem(s + at, g.b - at, pat->s, pat->n);
                if (!hit) break;
                size_t h = (size_t)(hit - s);
                if (h > at) st = segs_push(&next, at, h, -1);
                if (st == G4_OK) st = segs_push(&next, h, h + pat->n, found[f]);
                at = h + pat->n;
            }
            if (st == G4_OK && g.added >= 0) st = segs_push(&next, g.a, g.b, g.added);
            else if (st == G4_OK && at < g.b) st = segs_push(&next, at, g.b, -1);
        }
        struct segs swap = *out;
        *out = next;
        next = swap;
    }
    free(next.v);
    free(found);
    return st;
}

static g4_status encode_all(const struct g4_tokenizer *tok, const char *text, size_t len,
                            int add_bos, bool literal, struct g4_bpe_ids *ids) {
    struct segs raw = {0}, norm = {0};
    struct buf nb = {0}, tmp = {0}, u8 = {0};
    g4_status st = G4_OK;
    for (size_t k = 0; add_bos && st == G4_OK && k < tok->bos_prefix.n; k++)
        st = g4_bpe_ids_push(ids, tok->bos_prefix.v[k]);
    if (st == G4_OK)
        st = tok->longest_first ? partition_longest_first(tok, text, len, literal, &raw)
                                : find_matches(tok, &tok->raw_trie, text, len, literal, &raw);
    for (size_t r = 0; st == G4_OK && r < raw.n; r++) {
        struct seg g = raw.v[r];
        if (g.a == g.b) continue;
        if (g.added >= 0) {
            st = g4_bpe_ids_push(ids, tok->added[g.added].id);
            continue;
        }
        if (tok->llama_utf8) {
            st = llama_utf8_text(text + g.a, g.b - g.a, &u8);
            if (st == G4_OK) st = normalize(tok, u8.s ? u8.s : "", u8.n, &nb, &tmp);
        } else {
            st = normalize(tok, text + g.a, g.b - g.a, &nb, &tmp);
        }
        if (st == G4_OK) st = find_matches(tok, &tok->norm_trie, nb.s, nb.n, literal, &norm);
        for (size_t k = 0; st == G4_OK && k < norm.n; k++) {
            struct seg h = norm.v[k];
            if (h.a == h.b) continue;
            if (h.added >= 0) st = g4_bpe_ids_push(ids, tok->added[h.added].id);
            else st = pretokenize(tok, 0, nb.s + h.a, h.b - h.a, ids);
        }
    }
    for (size_t k = 0; add_bos && st == G4_OK && k < tok->bos_suffix.n; k++)
        st = g4_bpe_ids_push(ids, tok->bos_suffix.v[k]);
    free(raw.v);
    free(norm.v);
    free(nb.s);
    free(tmp.s);
    free(u8.s);
    return st;
}

static g4_status encode(const struct g4_tokenizer *tok, const char *text, size_t len,
                        int add_bos, bool literal, int32_t *ids, size_t cap, size_t *n_out) {
    if (!tok || !n_out || (!text && len > 0))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "tokenizer encode: NULL argument");
    struct g4_bpe_ids out = {0};
    g4_status st = encode_all(tok, text ? text : "", len, add_bos, literal, &out);
    if (st == G4_OK) {
        *n_out = out.n;
        if (ids && cap < out.n)
            st = g4_fail(G4_ERR_BUFFER_TOO_SMALL, "encode needs %zu ids, buffer holds %zu",
                         out.n, cap);
        else if (ids && out.n)
            memcpy(ids, out.v, out.n * sizeof *ids);
    }
    free(out.v);
    return st;
}

g4_status g4_tokenizer_encode(const struct g4_tokenizer *tok, const char *text, size_t len,
                              int add_bos, int32_t *ids, size_t cap, size_t *n_out) {
    return encode(tok, text, len, add_bos, false, ids, cap, n_out);
}

g4_status g4_tokenizer_encode_literal(const struct g4_tokenizer *tok, const char *text,
                                      size_t len, int32_t *ids, size_t cap, size_t *n_out) {
    return encode(tok, text, len, 0, true, ids, cap, n_out);
}

// ---- decode ------------------------------------------------------------------------------

// A list of strings stored back to back, as the Vec<String> tokenizers' decoders pass along.
// Its storage may start borrowed, as struct buf's.
struct strs {
    struct buf text;
    size_t *end; // end offset of each string in text
    size_t n, cap;
    bool end_borrowed;
};

static g4_status strs_push(struct strs *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        size_t *p = l->end_borrowed ? malloc(cap * sizeof *p) : realloc(l->end, cap * sizeof *p);
        if (!p) return g4_fail(G4_ERR_OUT_OF_MEMORY, "decode token list of %zu", cap);
        if (l->end_borrowed && l->n) memcpy(p, l->end, l->n * sizeof *p);
        l->end = p;
        l->cap = cap;
        l->end_borrowed = false;
    }
    G4_TRY(buf_put(&l->text, s, n));
    l->end[l->n++] = l->text.n;
    return G4_OK;
}

// Ends the string being built in l->text (bytes appended since the previous end).
static g4_status strs_close(struct strs *l) { return strs_push(l, "", 0); }

static const char *strs_get(const struct strs *l, size_t i, size_t *n) {
    size_t a = i ? l->end[i - 1] : 0;
    *n = l->end[i] - a;
    return l->text.s ? l->text.s + a : ""; // no text yet: NULL + 0 is undefined in C
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "<0xHH>" as ByteFallback parses it: u8::from_str_radix(&token[3..5], 16), which also takes
// a leading '+'.
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (s[3] == '+' && lo >= 0) return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

static bool valid_utf8(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = g4_bpe_utf8_len((const unsigned char *)s + i, n - i, &cp))) return false;
    return true;
}

static g4_status flush_bytes(struct strs *out, struct buf *bytes, bool raw) {
    if (bytes->n == 0) return G4_OK;
    if (raw || valid_utf8(bytes->s, bytes->n)) {
        G4_TRY(strs_push(out, bytes->s, bytes->n));
    } else {
        for (size_t i = 0; i < bytes->n; i++) G4_TRY(strs_push(out, "\xEF\xBF\xBD", 3));
    }
    bytes->n = 0;
    return G4_OK;
}

static g4_status dec_step(const struct dec_step *d, const struct strs *in, struct strs *out,
                          struct buf *bytes, bool raw) {
    out->n = 0;
    out->text.n = 0;
    bytes->n = 0;
    if (d->kind == DEC_FUSE) { // the strings already lie back to back: one string of them all
        if (in->n) G4_TRY(strs_push(out, in->text.s ? in->text.s : "", in->text.n));
        return G4_OK;
    }
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *s = strs_get(in, i, &n);
        if (d->kind == DEC_BYTE_FALLBACK) {
            int b = byte_token(s, n);
            if (b >= 0) {
                char c = (char)b;
                G4_TRY(buf_put(bytes, &c, 1));
            } else {
                G4_TRY(flush_bytes(out, bytes, raw));
                G4_TRY(strs_push(out, s, n));
            }
        } else if (d->kind == DEC_REPLACE) {
            G4_TRY(replace_all(&out->text, s, n, &d->pattern, &d->content));
            G4_TRY(strs_close(out));
        } else { // DEC_STRIP: drop up to start/stop copies of one character at each end
            const char *c = d->content.s;
            size_t cn = d->content.n, a = 0, b = n;
            for (int k = 0; k < d->start && b - a >= cn && memcmp(s + a, c, cn) == 0; k++) a += cn;
            for (int k = 0; k < d->stop && b - a >= cn && memcmp(s + b - cn, c, cn) == 0; k++)
                b -= cn;
            G4_TRY(strs_push(out, s + a, b - a));
        }
    }
    if (d->kind == DEC_BYTE_FALLBACK) G4_TRY(flush_bytes(out, bytes, raw));
    return G4_OK;
}

// Runs the decoder chain over ids and writes the joined result (tokenizers Tokenizer::decode).
static g4_status decode_ids(const struct g4_tokenizer *tok, const int32_t *ids, size_t n,
                            int skip_special, bool raw, char *buf, size_t cap, size_t *n_out) {
    // Short sequences decode in stack storage: g4_tokenizer_piece runs this twice per generated
    // token. Longer ones move to the heap as they grow.
    char text_a[256], text_b[256], small_bytes[32];
    size_t end_a[16], end_b[16];
    struct strs a = {{text_a, 0, sizeof text_a, true}, end_a, 0, G4_COUNT(end_a), true};
    struct strs b = {{text_b, 0, sizeof text_b, true}, end_b, 0, G4_COUNT(end_b), true};
    struct buf bytes = {small_bytes, 0, sizeof small_bytes, true};
    g4_status st = G4_OK;
    for (size_t i = 0; st == G4_OK && i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab) {
            st = g4_fail(G4_ERR_INVALID_TOKEN, "token id %d outside [0, %d)", ids[i],
                         tok->n_vocab);
            break;
        }
        int32_t ai = added_index(tok, ids[i]);
        if (skip_special && ai >= 0 && tok->added[ai].special) continue;
        size_t len;
        const char *s = token_text(tok, ids[i], &len);
        if (s) st = strs_push(&a, s, len);
    }
    for (size_t k = 0; st == G4_OK && k < tok->n_dec; k++) {
        st = dec_step(&tok->dec[k], &a, &b, &bytes, raw);
        struct strs t = a;
        a = b;
        b = t;
    }
    if (st == G4_OK) {
        // joined with "" by a decoder, with " " without one (tokens.join(" "))
        size_t total = a.text.n + (!tok->has_decoder && a.n > 1 ? a.n - 1 : 0);
        *n_out = total;
        if (buf && cap < total) {
            st = g4_fail(G4_ERR_BUFFER_TOO_SMALL, "decode needs %zu bytes, buffer holds %zu",
                         total, cap);
        } else if (buf) {
            size_t o = 0;
            for (size_t i = 0; i < a.n && !tok->has_decoder; i++) {
                size_t m;
                const char *s = strs_get(&a, i, &m);
                if (i) buf[o++] = ' ';
                memcpy(buf + o, s, m);
                o += m;
            }
            if (tok->has_decoder && total) memcpy(buf, a.text.s, total); // back to back
            if (cap > total) buf[total] = '\0';
        }
    }
    buf_free(&a.text);
    if (!a.end_borrowed) free(a.end);
    buf_free(&b.text);
    if (!b.end_borrowed) free(b.end);
    buf_free(&bytes);
    return st;
}

g4_status g4_tokenizer_decode(const struct g4_tokenizer *tok, const int32_t *ids, size_t n,
                              int skip_special, char *buf, size_t cap, size_t *n_out) {
    if (!tok || !n_out || (!ids && n > 0))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "tokenizer decode: NULL argument");
    return decode_ids(tok, ids, n, skip_special, false, buf, cap, n_out);
}

g4_status g4_tokenizer_piece(const struct g4_tokenizer *tok, int32_t id, char *buf, size_t cap,
                             size_t *n_out) {
    if (!tok || !n_out) return g4_fail(G4_ERR_INVALID_ARGUMENT, "tokenizer piece: NULL argument");
    return decode_ids(tok, &id, 1, 0, true, buf, cap, n_out);
}

// ---- queries -----------------------------------------------------------------------------

int32_t g4_tokenizer_vocab_size(const struct g4_tokenizer *tok) { return tok->n_vocab; }

int32_t g4_tokenizer_find(const struct g4_tokenizer *tok, const char *token) {
    size_t n = strlen(token);
    for (size_t i = 0; i < tok->n_added; i++) // added tokens first, as token_to_id
        if (tok->added[i].content.n == n && memcmp(tok->added[i].content.s, token, n) == 0)
            return tok->added[i].id;
    return g4_bpe_find(&tok->bpe, token, n);
}

int g4_tokenizer_is_special(const struct g4_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_vocab || added_index(tok, id) < 0) return 0;
    return tok->added[added_index(tok, id)].special;
}

void g4_tokenizer_free(struct g4_tokenizer *tok) {
    if (!tok) return;
    g4_bpe_free(&tok->bpe);
    free(tok->added_of_id);
    for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].content.s);
    free(tok->added);
    free(tok->raw_trie.node);
    free(tok->norm_trie.node);
    for (size_t i = 0; i < tok->n_norm; i++) free(tok->norm[i].pattern.s), free(tok->norm[i].content.s);
    free(tok->norm);
    for (size_t i = 0; i < tok->n_split; i++) free(tok->split[i].pattern.s);
    free(tok->split);
    for (size_t i = 0; i < tok->n_dec; i++) free(tok->dec[i].pattern.s), free(tok->dec[i].content.s);
    free(tok->dec);
    free(tok->bos_prefix.v);
    free(tok->bos_suffix.v);
    free(tok->scores);
    free(tok);
}


// ---- load --------------------------------------------------------------------------------

// Token ids index dense tables (vocab text, added-token map), so they are capped; config.c caps
// vocab_size at the same 2^24, and a model needs tokenizer ids < vocab_size anyway.
enum { MAX_IDS = 1 << 24 };
// Gemma's tokenizer.json files are 13-33 MB.
#define MAX_FILE_BYTES ((size_t)1 << 30)

static const cJSON *item(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}
static bool is_null(const cJSON *x) { return !x || cJSON_IsNull(x); }

static g4_status get_bool(const cJSON *obj, const char *key, const char *what, bool *out) {
    const cJSON *x = item(obj, key);
    if (is_null(x)) return *out = false, G4_OK;
    if (!cJSON_IsBool(x)) return g4_fail(G4_ERR_FORMAT, "%s.%s is not a boolean", what, key);
    *out = cJSON_IsTrue(x);
    return G4_OK;
}

static g4_status get_str(const cJSON *obj, const char *key, const char *what, struct str *out) {
    const cJSON *x = item(obj, key);
    if (!cJSON_IsString(x)) return g4_fail(G4_ERR_FORMAT, "%s.%s is not a string", what, key);
    return dup_str(out, x->valuestring, strlen(x->valuestring));
}

static const char *type_of(const cJSON *x) {
    const cJSON *t = item(x, "type");
    return cJSON_IsString(t) ? t->valuestring : "(no type)";
}

// Pattern {"String": "..."}; the Regex form is rejected.
static g4_status get_pattern(const cJSON *obj, const char *what, struct str *out) {
    const cJSON *p = item(obj, "pattern");
    if (cJSON_IsObject(p) && item(p, "Regex"))
        return g4_fail(G4_ERR_UNSUPPORTED, "%s with a Regex pattern", what);
    G4_TRY(get_str(p, "String", what, out));
    if (out->n == 0) return g4_fail(G4_ERR_UNSUPPORTED, "%s with an empty pattern", what);
    return G4_OK;
}

// Flattens a component that is null, one step, or a Sequence of steps into an array of steps.
static g4_status flatten(const cJSON *x, const char *list_key, const cJSON ***out, size_t *n) {
    *n = 0;
    if (is_null(x)) return G4_OK;
    bool seq = strcmp(type_of(x), "Sequence") == 0;
    const cJSON *arr = seq ? item(x, list_key) : NULL;
    if (seq && !cJSON_IsArray(arr))
        return g4_fail(G4_ERR_FORMAT, "Sequence.%s is not an array", list_key);
    size_t count = seq ? (size_t)cJSON_GetArraySize(arr) : 1;
    G4_TRY(g4_calloc((void **)out, count ? count : 1, sizeof **out, "component list"));
    if (!seq) (*out)[(*n)++] = x;
    else for (const cJSON *c = arr->child; c; c = c->next) (*out)[(*n)++] = c;
    return G4_OK;
}

static g4_status load_normalizer(struct g4_tokenizer *tok, const cJSON *x) {
    const cJSON **steps = NULL;
    g4_status st = flatten(x, "normalizers", &steps, &tok->n_norm);
    if (st == G4_OK && tok->n_norm)
        st = g4_calloc((void **)&tok->norm, tok->n_norm, sizeof *tok->norm, "normalizers");
    for (size_t i = 0; st == G4_OK && i < tok->n_norm; i++) {
        const char *t = type_of(steps[i]);
        struct norm_step *ns = &tok->norm[i];
        if (strcmp(t, "Replace") == 0) {
            ns->kind = NORM_REPLACE;
            st = get_pattern(steps[i], "normalizer Replace", &ns->pattern);
            if (st == G4_OK) st = get_str(steps[i], "content", "normalizer Replace", &ns->content);
        } else if (strcmp(t, "Prepend") == 0) {
            ns->kind = NORM_PREPEND;
            st = get_str(steps[i], "prepend", "normalizer Prepend", &ns->content);
        } else {
            st = g4_fail(G4_ERR_UNSUPPORTED, "normalizer type %s", t);
        }
    }
    free(steps);
    return st;
}

static g4_status load_pre_tokenizer(struct g4_tokenizer *tok, const cJSON *x) {
    static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
    const cJSON **steps = NULL;
    g4_status st = flatten(x, "pretokenizers", &steps, &tok->n_split);
    if (st == G4_OK && tok->n_split)
        st = g4_calloc((void **)&tok->split, tok->n_split, sizeof *tok->split, "pre-tokenizers");
    for (size_t i = 0; st == G4_OK && i < tok->n_split; i++) {
        struct split_step *sp = &tok->split[i];
        if (strcmp(type_of(steps[i]), "Split") != 0) {
            st = g4_fail(G4_ERR_UNSUPPORTED, "pre_tokenizer type %s", type_of(steps[i]));
            break;
        }
        st = get_pattern(steps[i], "pre_tokenizer Split", &sp->pattern);
        if (st == G4_OK) st = get_bool(steps[i], "invert", "pre_tokenizer Split", &sp->invert);
        const cJSON *b = item(steps[i], "behavior");
        sp->behavior = -1;
        for (int k = 0; k < 5; k++)
            if (cJSON_IsString(b) && strcmp(b->valuestring, behaviors[k]) == 0) sp->behavior = k;
        if (st == G4_OK && sp->behavior < 0)
            st = g4_fail(G4_ERR_UNSUPPORTED, "pre_tokenizer Split behavior %s",
                         cJSON_IsString(b) ? b->valuestring : "(missing)");
    }
    free(steps);
    return st;
}

static g4_status load_decoder(struct g4_tokenizer *tok, const cJSON *x) {
    const cJSON **steps = NULL;
    tok->has_decoder = !is_null(x);
    g4_status st = flatten(x, "decoders", &steps, &tok->n_dec);
    if (st == G4_OK && tok->n_dec)
        st = g4_calloc((void **)&tok->dec, tok->n_dec, sizeof *tok->dec, "decoders");
    for (size_t i = 0; st == G4_OK && i < tok->n_dec; i++) {
        const char *t = type_of(steps[i]);
        struct dec_step *d = &tok->dec[i];
        if (strcmp(t, "Replace") == 0) {
            d->kind = DEC_REPLACE;
            st = get_pattern(steps[i], "decoder Replace", &d->pattern);
            if (st == G4_OK) st = get_str(steps[i], "content", "decoder Replace", &d->content);
        } else if (strcmp(t, "ByteFallback") == 0) {
            d->kind = DEC_BYTE_FALLBACK;
        } else if (strcmp(t, "Fuse") == 0) {
            d->kind = DEC_FUSE;
        } else if (strcmp(t, "Strip") == 0) {
            d->kind = DEC_STRIP;
            const cJSON *a = item(steps[i], "start"), *b = item(steps[i], "stop");
            st = get_str(steps[i], "content", "decoder Strip", &d->content);
            uint32_t cp;
            if (st == G4_OK && (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valueint < 0 ||
                                b->valueint < 0 || d->content.n == 0 ||
                                g4_bpe_utf8_len((const unsigned char *)d->content.s,
                                                d->content.n, &cp) != d->content.n))
                st = g4_fail(G4_ERR_FORMAT, "decoder Strip needs one content char, start, stop");
            if (st == G4_OK) d->start = a->valueint, d->stop = b->valueint;
        } else {
            st = g4_fail(G4_ERR_UNSUPPORTED, "decoder type %s", t);
        }
    }
    free(steps);
    return st;
}

static g4_status load_post_processor(struct g4_tokenizer *tok, const cJSON *x) {
    if (is_null(x)) return G4_OK;
    if (strcmp(type_of(x), "TemplateProcessing") != 0)
        return g4_fail(G4_ERR_UNSUPPORTED, "post_processor type %s", type_of(x));
    const cJSON *single = item(x, "single"), *specials = item(x, "special_tokens");
    if (!cJSON_IsArray(single) || !cJSON_IsObject(specials))
        return g4_fail(G4_ERR_FORMAT, "post_processor TemplateProcessing lacks single/special_tokens");
    bool seen_a = false;
    for (const cJSON *p = single->child; p; p = p->next) {
        const cJSON *seq = item(p, "Sequence"), *sp = item(p, "SpecialToken");
        if (seq) {
            const cJSON *id = item(seq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A") != 0 || seen_a)
                return g4_fail(G4_ERR_UNSUPPORTED, "post_processor single template other than one $A");
            seen_a = true;
            continue;
        }
        const cJSON *name = item(sp, "id");
        const cJSON *def = cJSON_IsString(name) ? item(specials, name->valuestring) : NULL;
        const cJSON *ids = item(def, "ids");
        if (!cJSON_IsArray(ids))
            return g4_fail(G4_ERR_FORMAT, "post_processor special token %s is not defined",
                           cJSON_IsString(name) ? name->valuestring : "(missing)");
        for (const cJSON *i = ids->child; i; i = i->next) {
            if (!cJSON_IsNumber(i) || i->valuedouble < 0 || i->valuedouble >= tok->n_vocab)
                return g4_fail(G4_ERR_FORMAT, "post_processor id of %s out of range",
                               name->valuestring);
            G4_TRY(g4_bpe_ids_push(seen_a ? &tok->bos_suffix : &tok->bos_prefix, i->valueint));
        }
    }
    if (!seen_a) return g4_fail(G4_ERR_FORMAT, "post_processor single template has no $A");
    return G4_OK;
}

static g4_status load_model(struct g4_tokenizer *tok, const cJSON *m) {
    if (!cJSON_IsObject(m)) return g4_fail(G4_ERR_FORMAT, "model is missing");
    if (strcmp(type_of(m), "BPE") != 0)
        return g4_fail(G4_ERR_UNSUPPORTED, "model type %s (only BPE)", type_of(m));
    const cJSON *vocab = item(m, "vocab"), *merges = item(m, "merges"), *x;
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return g4_fail(G4_ERR_FORMAT, "model BPE needs a vocab object and a merges array");
    if (!is_null(x = item(m, "dropout")) && !(cJSON_IsNumber(x) && x->valuedouble == 0))
        return g4_fail(G4_ERR_UNSUPPORTED, "model BPE dropout (randomized merges)");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++)
        if (!is_null(x = item(m, affixes[i])) && !(cJSON_IsString(x) && !x->valuestring[0]))
            return g4_fail(G4_ERR_UNSUPPORTED, "model BPE %s", affixes[i]);
    double max_id = -1;
    size_t pool = 0, n_tokens = 0, n_merges = 0;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX - 1 ||
            v->valuedouble != (double)v->valueint)
            return g4_fail(G4_ERR_FORMAT, "model vocab id of \"%s\" is not a valid id", v->string);
        if (v->valueint >= MAX_IDS) // the id tables are dense: one huge id would allocate GBs
            return g4_fail(G4_ERR_UNSUPPORTED, "model vocab id %d of \"%s\" is above %d",
                           v->valueint, v->string, MAX_IDS - 1);
        if (v->valuedouble > max_id) max_id = v->valuedouble;
        pool += strlen(v->string);
        n_tokens++;
    }
    for (x = merges->child; x; x = x->next) n_merges++;
    G4_TRY(g4_bpe_init(&tok->bpe, (int32_t)max_id + 1, n_tokens, pool, n_merges));
    for (const cJSON *v = vocab->child; v; v = v->next)
        G4_TRY(g4_bpe_set(&tok->bpe, v->valueint, v->string, strlen(v->string)));
    g4_bpe_index(&tok->bpe);
    uint32_t rank = 0;
    for (x = merges->child; x; x = x->next) {
        const char *a, *b;
        size_t na, nb;
        if (cJSON_IsString(x)) { // legacy "a b": exactly one space, "#version" lines skipped
            if (strncmp(x->valuestring, "#version", 8) == 0) continue;
            const char *sp = strchr(x->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return g4_fail(G4_ERR_FORMAT, "merge %u \"%s\" is not \"a b\"", rank + 1,
                               x->valuestring);
            a = x->valuestring, na = (size_t)(sp - a), b = sp + 1, nb = strlen(b);
        } else if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2 &&
                   cJSON_IsString(x->child) && cJSON_IsString(x->child->next)) {
            a = x->child->valuestring, na = strlen(a);
            b = x->child->next->valuestring, nb = strlen(b);
        } else {
            return g4_fail(G4_ERR_FORMAT, "merge %u is neither \"a b\" nor [a, b]", rank + 1);
        }
        int32_t ia = g4_bpe_find(&tok->bpe, a, na), ib = g4_bpe_find(&tok->bpe, b, nb);
        if (ia < 0 || ib < 0)
            return g4_fail(G4_ERR_FORMAT, "merge %u: \"%.*s\" is not in the vocab", rank + 1,
                           ia < 0 ? (int)na : (int)nb, ia < 0 ? a : b);
        G4_TRY(g4_bpe_add_merge(&tok->bpe, ia, ib, rank++));
    }
    G4_TRY(get_bool(m, "byte_fallback", "model", &tok->bpe.byte_fallback));
    G4_TRY(get_bool(m, "fuse_unk", "model", &tok->bpe.fuse_unk));
    G4_TRY(get_bool(m, "ignore_merges", "model", &tok->bpe.ignore_merges));
    if (!is_null(x = item(m, "unk_token"))) {
        // tokenizers fails at encode time when unk is needed but missing; we fail at load.
        if (!cJSON_IsString(x) ||
            (tok->bpe.unk_id = g4_bpe_find(&tok->bpe, x->valuestring, strlen(x->valuestring))) < 0)
            return g4_fail(G4_ERR_FORMAT, "model unk_token is not in the vocab");
    }
    return G4_OK;
}

static g4_status load_added_tokens(struct g4_tokenizer *tok, const cJSON *arr) {
    tok->n_vocab = tok->bpe.n_ids;
    size_t n = is_null(arr) ? 0 : (size_t)cJSON_GetArraySize(arr);
    if (!is_null(arr) && !cJSON_IsArray(arr))
        return g4_fail(G4_ERR_FORMAT, "added_tokens is not an array");
    if (n) G4_TRY(g4_calloc((void **)&tok->added, n, sizeof *tok->added, "added tokens"));
    for (const cJSON *x = n ? arr->child : NULL; x; x = x->next) {
        struct added_token *at = &tok->added[tok->n_added++];
        const cJSON *id = item(x, "id");
        bool single_word = false;
        G4_TRY(get_str(x, "content", "added_tokens[]", &at->content));
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX - 1)
            return g4_fail(G4_ERR_FORMAT, "added token %s has no valid id", at->content.s);
        at->id = id->valueint;
        if (at->id >= MAX_IDS)
            return g4_fail(G4_ERR_UNSUPPORTED, "added token %s: id %d is above %d", at->content.s,
                           at->id, MAX_IDS - 1);
        G4_TRY(get_bool(x, "special", "added_tokens[]", &at->special));
        G4_TRY(get_bool(x, "lstrip", "added_tokens[]", &at->lstrip));
        G4_TRY(get_bool(x, "rstrip", "added_tokens[]", &at->rstrip));
        G4_TRY(get_bool(x, "normalized", "added_tokens[]", &at->normalized));
        G4_TRY(get_bool(x, "single_word", "added_tokens[]", &single_word));
        if (single_word)
            return g4_fail(G4_ERR_UNSUPPORTED, "added token %s with single_word", at->content.s);
        if (at->id >= tok->n_vocab) tok->n_vocab = at->id + 1;
    }
    G4_TRY(g4_calloc((void **)&tok->added_of_id, (size_t)tok->n_vocab, sizeof(int32_t), "id map"));
    struct buf nb = {0}, tmp = {0};
    g4_status st = G4_OK;
    for (size_t i = 0; st == G4_OK && i < tok->n_added; i++) {
        struct added_token *at = &tok->added[i];
        if (added_index(tok, at->id) >= 0) {
            st = g4_fail(G4_ERR_FORMAT, "added token id %d is given twice", at->id);
            break;
        }
        tok->added_of_id[at->id] = (int32_t)i + 1;
        if (!at->normalized) {
            if (at->content.n) st = trie_insert(&tok->raw_trie, at->content.s, at->content.n, (int32_t)i);
            continue;
        }
        // normalized tokens are matched in normalized text by their normalized form
        st = normalize(tok, at->content.s, at->content.n, &nb, &tmp);
        if (st == G4_OK && nb.n) st = trie_insert(&tok->norm_trie, nb.s, nb.n, (int32_t)i);
    }
    free(nb.s);
    free(tmp.s);
    return st;
}

g4_status g4_tokenizer_load(struct g4_tokenizer **out, const char *path) {
    if (!out || !path) return g4_fail(G4_ERR_INVALID_ARGUMENT, "tokenizer load: NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    g4_status st = g4_file_read(path, MAX_FILE_BYTES, &text, &len);
    if (st != G4_OK) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        free(text);
        return g4_fail(G4_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", path, at);
    }
    free(text);
    struct g4_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) st = g4_fail(G4_ERR_OUT_OF_MEMORY, "tokenizer");
    static const char *const must_be_null[] = {"truncation", "padding"};
    for (int i = 0; st == G4_OK && i < 2; i++)
        if (!is_null(item(root, must_be_null[i])))
            st = g4_fail(G4_ERR_UNSUPPORTED, "%s: %s is set", path, must_be_null[i]);
    if (st == G4_OK && !cJSON_IsObject(root)) st = g4_fail(G4_ERR_FORMAT, "%s: not an object", path);
    if (st == G4_OK) st = load_model(tok, item(root, "model"));
    if (st == G4_OK) st = load_normalizer(tok, item(root, "normalizer"));
    if (st == G4_OK) st = load_added_tokens(tok, item(root, "added_tokens"));
    if (st == G4_OK) st = load_pre_tokenizer(tok, item(root, "pre_tokenizer"));
    if (st == G4_OK) st = load_post_processor(tok, item(root, "post_processor"));
    if (st == G4_OK) st = load_decoder(tok, item(root, "decoder"));
    cJSON_Delete(root);
    if (st != G4_OK) {
        if (tok) {
            // keep the component's message, prefixed with the file
            char msg[512];
            snprintf(msg, sizeof msg, "%s", g4_last_error());
            if (strncmp(msg, path, strlen(path)) != 0) g4_fail(st, "%s: %s", path, msg);
        }
        g4_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return G4_OK;
}

// ---- GGUF vocabularies ---------------------------------------------------------------------

g4_status g4_tokenizer_new_gguf(struct g4_tokenizer **out, struct g4_bpe *bpe, float *scores,
                                const int32_t *added_ids, const bool *added_special,
                                size_t n_added, int32_t bos_id) {
    *out = NULL;
    struct g4_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        g4_bpe_free(bpe);
        free(scores);
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "tokenizer");
    }
    tok->bpe = *bpe;
    memset(bpe, 0, sizeof *bpe);
    tok->scores = scores;
    tok->longest_first = true;
    tok->llama_utf8 = !scores; // llama.cpp's BPE decodes the text; its SPM takes the bytes
    tok->n_vocab = tok->bpe.n_ids;
    // Gemma's pipeline, as tests/tokenizer/make_tokenizer_fixtures.py writes it for these
    // vocabularies: spaces become "\xe2\x96\x81" (llama.cpp's escape_whitespaces), one word
    // per piece between added tokens, and the decoder undoes it with byte fallback.
    static const char space[] = " ", lower_block[] = "\xe2\x96\x81";
    g4_status st = g4_calloc((void **)&tok->norm, 1, sizeof *tok->norm, "normalizer");
    if (st == G4_OK) {
        tok->n_norm = 1;
        tok->norm[0].kind = NORM_REPLACE;
        st = dup_str(&tok->norm[0].pattern, space, 1);
    }
    if (st == G4_OK) st = dup_str(&tok->norm[0].content, lower_block, 3);
    if (st == G4_OK) st = g4_calloc((void **)&tok->dec, 3, sizeof *tok->dec, "decoder");
    if (st == G4_OK) {
        tok->n_dec = 3;
        tok->has_decoder = true;
        tok->dec[0].kind = DEC_REPLACE;
        tok->dec[1].kind = DEC_BYTE_FALLBACK;
        tok->dec[2].kind = DEC_FUSE;
        st = dup_str(&tok->dec[0].pattern, lower_block, 3);
    }
    if (st == G4_OK) st = dup_str(&tok->dec[0].content, space, 1);
    if (st == G4_OK && bos_id >= 0) st = g4_bpe_ids_push(&tok->bos_prefix, bos_id);
    if (st == G4_OK && n_added)
        st = g4_calloc((void **)&tok->added, n_added, sizeof *tok->added, "added tokens");
    if (st == G4_OK)
        st = g4_calloc((void **)&tok->added_of_id, (size_t)tok->n_vocab, sizeof(int32_t), "id map");
    for (size_t i = 0; st == G4_OK && i < n_added; i++) {
        int32_t id = added_ids[i];
        size_t len;
        const char *text = id >= 0 && id < tok->n_vocab ? token_text(tok, id, &len) : NULL;
        if (!text || added_index(tok, id) >= 0) {
            st = g4_fail(G4_ERR_FORMAT, "added token id %d is not a vocabulary id or given twice", id);
            break;
        }
        struct added_token *at = &tok->added[tok->n_added];
        st = dup_str(&at->content, text, len);
        if (st != G4_OK) break;
        at->id = id;
        at->special = added_special[i];
        tok->added_of_id[id] = (int32_t)++tok->n_added;
        if (len) st = trie_insert(&tok->raw_trie, text, len, (int32_t)(tok->n_added - 1));
    }
    if (st != G4_OK) {
        g4_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return G4_OK;
}
