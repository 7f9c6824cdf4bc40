// Gemma tokenizer loaded from a Hugging Face tokenizer.json (BPE with byte fallback, its
// normalizer, pre-tokenizer and special/added tokens), encoding and decoding exactly like the
// Hugging Face `tokenizers` library; or from a GGUF file's tokenizer.ggml.* metadata
// (tokenizer_gguf.c), encoding like llama.cpp. Immutable after load: safe to share between threads.
#ifndef G4_TOKENIZER_H
#define G4_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_tokenizer;
struct g4_bpe;
struct g4_gguf;

// Loads `path` (a tokenizer.json). G4_ERR_IO if unreadable, G4_ERR_FORMAT/UNSUPPORTED with the
// offending field named if the file is not a tokenizer we can reproduce exactly.
g4_status g4_tokenizer_load(struct g4_tokenizer **out, const char *path);
void g4_tokenizer_free(struct g4_tokenizer *tok); // NULL is fine

// Builds the tokenizer of a GGUF file from its parsed metadata (see tokenizer_gguf.h: this is
// g4_tokenizer_gguf_load's last step). Takes ownership of *bpe (the whole vocabulary, with the
// merges of a BPE vocabulary) and of scores (SentencePiece scores: score-driven merging as
// llama.cpp's SPM; NULL: the BPE merges), also on error. The added tokens (vocabulary ids, with
// HF's "special" flag: dropped by decode(skip_special)) split the text before the model runs,
// longest first as llama.cpp does; bos_id (-1: none) is prepended when add_bos is asked.
// Normalizer and decoder are Gemma's: " " <-> "\xe2\x96\x81", byte fallback.
g4_status g4_tokenizer_new_gguf(struct g4_tokenizer **out, struct g4_bpe *bpe, float *scores,
                                const int32_t *added_ids, const bool *added_special,
                                size_t n_added, int32_t bos_id);

int32_t g4_tokenizer_vocab_size(const struct g4_tokenizer *tok);
// Token id of an exact token string (e.g. "<bos>", "<|turn>"), or -1.
int32_t g4_tokenizer_find(const struct g4_tokenizer *tok, const char *token);
// 1 if id is a special (control) token that decode(skip_special=1) drops.
int g4_tokenizer_is_special(const struct g4_tokenizer *tok, int32_t id);

// Encodes UTF-8 `text` of `len` bytes (text may be NULL when len is 0) exactly like HF
// encode(text, add_special_tokens=add_bos): add_bos applies the post-processor's single template
// (Gemma: "<bos> $A"; nothing without a post_processor). Added-token strings in the text
// (<bos>, <|turn>, "\n", ...) are matched as HF matches them, whatever their `special` flag.
// Bytes that are not valid UTF-8 (HF never sees them: Python str) are byte-fallback encoded one
// byte at a time, so pieces still give back the exact input bytes. Buffer convention: ids == NULL
// asks for the count (OK, *n_out set); cap too small gives G4_ERR_BUFFER_TOO_SMALL with
// *n_out = needed and nothing written. Thread-safe: all scratch memory is per call.
g4_status g4_tokenizer_encode(const struct g4_tokenizer *tok, const char *text, size_t len,
                              int add_bos, int32_t *ids, size_t cap, size_t *n_out);

// As g4_tokenizer_encode without <bos>, but special tokens are not recognised: their strings
// ("<|turn>", "<bos>") are tokenized as ordinary text, as HF encode with
// split_special_tokens=True (tokenizers' encode_special_tokens). Non-special added tokens such
// as "\n" still match. Chat message contents go through this, so they cannot forge a turn.
g4_status g4_tokenizer_encode_literal(const struct g4_tokenizer *tok, const char *text,
                                      size_t len, int32_t *ids, size_t cap, size_t *n_out);

// Decodes ids to UTF-8 exactly like HF decode(ids, skip_special_tokens=skip_special).
// Same buffer convention (buf == NULL asks for the byte count; output not NUL-terminated, but a
// NUL is written if cap > needed). Out-of-range ids: G4_ERR_INVALID_TOKEN.
g4_status g4_tokenizer_decode(const struct g4_tokenizer *tok, const int32_t *ids, size_t n,
                              int skip_special, char *buf, size_t cap, size_t *n_out);

// The raw bytes one token contributes when streaming (byte-fallback tokens give their single
// byte, "▁" becomes a space; special tokens give their text). Concatenating the pieces of a
// sequence equals decode(skip_special=0) of it, except where a run of byte tokens is not valid
// UTF-8 (HF's ByteFallback decoder then emits U+FFFD per byte; pieces keep the raw bytes) or the
// decoder has a Strip step (Gemma's has none). Same buffer convention; bad id: INVALID_TOKEN.
g4_status g4_tokenizer_piece(const struct g4_tokenizer *tok, int32_t id, char *buf, size_t cap,
                             size_t *n_out);

#endif
