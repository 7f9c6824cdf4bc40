// Text and token-id sinks for the chat renderers; see chat_emit.h.
#include "chat_emit.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

void g4_chat_emit_init_text(struct g4_chat_emit *e, char *buf, size_t cap) {
    memset(e, 0, sizeof *e);
    e->s = buf;
    e->cap = cap;
}

void g4_chat_emit_init_ids(struct g4_chat_emit *e, const struct g4_tokenizer *tok) {
    memset(e, 0, sizeof *e);
    e->grow = 1;
    e->tok = tok;
}

void g4_chat_emit_free(struct g4_chat_emit *e) {
    if (e->grow) free(e->s);
    free(e->ids);
    e->s = NULL;
    e->ids = NULL;
}

static void put(struct g4_chat_emit *e, const char *s, size_t n) {
    if (e->st != G4_OK || n == 0) return;
    if (e->grow && e->n + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->n + n) cap *= 2;
        char *p = realloc(e->s, cap);
        if (!p) {
            e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat render: %zu bytes", cap);
            return;
        }
        e->s = p;
        e->cap = cap;
    }
    if (e->s && !e->grow && e->n + n > e->cap) {
        e->st = g4_fail(G4_ERR_INTERNAL, "chat render: output passed the sized buffer");
        return;
    }
    if (e->s) memcpy(e->s + e->n, s, n); // the caller sized a fixed buffer in a counting pass
    e->n += n;
}

static void push_id(struct g4_chat_emit *e, int32_t id) {
    if (e->st != G4_OK) return;
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? 2 * e->cap_ids : 256;
        int32_t *p = realloc(e->ids, cap * sizeof *p);
        if (!p) {
            e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat render: %zu token ids", cap);
            return;
        }
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
}

// Appends the literal tokens of s[0, n): g4_tokenizer_encode_literal, and then, because BPE
// merges can still rebuild a control token from its characters (HF's split_special_tokens=True
// does produce such ids), every special id in the result is replaced by the tokens of the two
// halves of its text, recursively, so literal text never yields a control token.
static void encode_safe(struct g4_chat_emit *e, const char *s, size_t n, int depth) {
    if (e->st != G4_OK || n == 0) return;
    size_t need = 0;
    e->st = g4_tokenizer_encode_literal(e->tok, s, n, NULL, 0, &need);
    int32_t *tmp = NULL;
    if (e->st == G4_OK && !(tmp = malloc((need ? need : 1) * sizeof *tmp)))
        e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat render: %zu token ids", need);
    if (e->st == G4_OK) e->st = g4_tokenizer_encode_literal(e->tok, s, n, tmp, need, &need);
    size_t off = 0; // byte offset of tmp[i] in s: token pieces concatenate to the input
    for (size_t i = 0; e->st == G4_OK && i < need; i++) {
        size_t len = 0;
        e->st = g4_tokenizer_piece(e->tok, tmp[i], NULL, 0, &len);
        if (e->st != G4_OK) break;
        if (!g4_tokenizer_is_special(e->tok, tmp[i])) {
            push_id(e, tmp[i]);
        } else {
            size_t half = len / 2;
            while (half > 0 && ((unsigned char)s[off + half] & 0xC0) == 0x80) half--;
            if (half == 0 || depth > 16 || off + len > n) {
                e->st = g4_fail(G4_ERR_FORMAT, "chat render: literal text \"%.*s\" only "
                                "tokenizes to a control token", (int)len, s + off);
                break;
            }
            encode_safe(e, s + off, half, depth + 1);
            encode_safe(e, s + off + half, len - half, depth + 1);
        }
        off += len;
    }
    free(tmp);
}

// Tokenizes the gathered literal run onto ids.
static void flush(struct g4_chat_emit *e) {
    if (e->st != G4_OK || e->n == 0) return;
    encode_safe(e, e->s, e->n, 0);
    e->n = 0;
}

void g4_chat_emit_ctl(struct g4_chat_emit *e, const char *token) {
    if (!e->tok) {
        put(e, token, strlen(token));
        return;
    }
    flush(e);
    if (e->st != G4_OK) return;
    int32_t id = g4_tokenizer_find(e->tok, token);
    if (id < 0 || !g4_tokenizer_is_special(e->tok, id)) {
        e->st = g4_fail(G4_ERR_FORMAT, "chat render: the tokenizer has no special token \"%s\"",
                        token);
        return;
    }
    push_id(e, id);
}

void g4_chat_emit_text(struct g4_chat_emit *e, const char *s, size_t n) { put(e, s, n); }

void g4_chat_emit_str(struct g4_chat_emit *e, const char *s) { put(e, s, strlen(s)); }

g4_status g4_chat_emit_finish(struct g4_chat_emit *e) {
    if (e->tok) flush(e);
    return e->st;
}
