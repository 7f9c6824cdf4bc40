// Gemma tokenizer loaded from a Hugging Face tokenizer.json (BPE with byte fallback, its
// normalizer, pre-tokenizer and special/added tokens). Encodes and decodes exactly like the
// Hugging Face `tokenizers` library. Immutable after load: safe to share between threads.
#ifndef G4_TOKENIZER_H
#define G4_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_tokenizer;

// Loads `path` (a tokenizer.json). G4_ERR_IO if unreadable, G4_ERR_FORMAT/UNSUPPORTED with the
// offending field named if the file is not a tokenizer we can reproduce exactly.
g4_status g4_tokenizer_load(struct g4_tokenizer **out, const char *path);
void g4_tokenizer_free(struct g4_tokenizer *tok); // NULL is fine

int32_t g4_tokenizer_vocab_size(const struct g4_tokenizer *tok);
// Token id of an exact token string (e.g. "<bos>", "<|turn>"), or -1.
int32_t g4_tokenizer_find(const struct g4_tokenizer *tok, const char *token);
// 1 if id is a special (control) token that decode(skip_special=1) drops.
int g4_tokenizer_is_special(const struct g4_tokenizer *tok, int32_t id);

// Encodes UTF-8 `text` of `len` bytes. add_bos: prepend <bos> as the HF post-processor does when
// add_special_tokens=True. Special-token strings in the text are matched as the added tokens
// are in HF. Buffer convention: ids == NULL asks for the count (OK, *n_out set); cap too small
// gives G4_ERR_BUFFER_TOO_SMALL with *n_out = needed. Invalid UTF-8 is handled like HF (lossy).
g4_status g4_tokenizer_encode(const struct g4_tokenizer *tok, const char *text, size_t len,
                              int add_bos, int32_t *ids, size_t cap, size_t *n_out);

// Decodes ids to UTF-8 exactly like HF decode(ids, skip_special_tokens=skip_special).
// Same buffer convention (buf == NULL asks for the byte count; output not NUL-terminated, but a
// NUL is written if cap > needed). Out-of-range ids: G4_ERR_INVALID_TOKEN.
g4_status g4_tokenizer_decode(const struct g4_tokenizer *tok, const int32_t *ids, size_t n,
                              int skip_special, char *buf, size_t cap, size_t *n_out);

// The raw bytes one token contributes when streaming (byte-fallback tokens give their single
// byte, "▁" becomes a space). Concatenating pieces of a sequence equals decode(skip_special=0)
// of it (ignoring any leading-space stripping the HF decoder does, which Gemma's does not).
g4_status g4_tokenizer_piece(const struct g4_tokenizer *tok, int32_t id, char *buf, size_t cap,
                             size_t *n_out);

#endif
