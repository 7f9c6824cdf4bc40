// Output of the chat renderers: a stream of control tokens (given by their text, e.g. "<|turn>")
// and literal text. Two sinks: prompt text (control token text and literal text concatenated,
// what transformers' apply_chat_template returns) and token ids (each control token is its one
// id; each run of literal text between control tokens is tokenized with special-token strings
// kept as text, so message contents can never forge a turn).
#ifndef G4_CHAT_EMIT_H
#define G4_CHAT_EMIT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_tokenizer;

struct g4_chat_emit {
    // text sink: bytes appended to s (s == NULL: only counted)
    char *s;
    size_t n, cap;
    int grow; // 1: s is malloc'd and grows; 0: s is a fixed buffer of cap bytes or NULL (count)
    // ids sink (tok != NULL): literal text gathered in s, flushed into ids at each control token
    const struct g4_tokenizer *tok;
    int32_t *ids;
    size_t n_ids, cap_ids;
    g4_status st; // the first failure; later calls do nothing
};

// Text sink that counts only (buf NULL) or writes into buf[0, cap) (the caller sized it).
void g4_chat_emit_init_text(struct g4_chat_emit *e, char *buf, size_t cap);
// Token-id sink into a growing malloc'd array (e->ids, e->n_ids; free both e->ids and e->s).
void g4_chat_emit_init_ids(struct g4_chat_emit *e, const struct g4_tokenizer *tok);
void g4_chat_emit_free(struct g4_chat_emit *e);

void g4_chat_emit_ctl(struct g4_chat_emit *e, const char *token);
void g4_chat_emit_text(struct g4_chat_emit *e, const char *s, size_t n);
void g4_chat_emit_str(struct g4_chat_emit *e, const char *s); // NUL-terminated literal text
// Ends the stream: the ids sink tokenizes its last run. Returns e->st.
g4_status g4_chat_emit_finish(struct g4_chat_emit *e);

#endif
