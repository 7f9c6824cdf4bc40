// Byte-pair-encoding model of a Hugging Face tokenizer.json ("model": {"type": "BPE", ...}):
// the model vocabulary (string -> id, hashed), the merge table ((left id, right id) -> rank and
// merged id, hashed) and the per-word merge loop. Equivalent to tokenizers' models::bpe::BPE
// (merge_word + Word::merge_all) for dropout = null, no continuing_subword_prefix and no
// end_of_word_suffix. Not the normalizer, pre-tokenizer or added tokens: see tokenizer.c.
// Immutable after g4_bpe_index(); g4_bpe_encode_word() keeps all scratch per call.
#ifndef G4_BPE_H
#define G4_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_bpe_merge {
    uint64_t pair;   // (left id << 32) | right id
    uint32_t rank;   // position in the merges list; lower merges first
    int32_t new_id;  // id of left + right; -1 marks an empty slot
};

struct g4_bpe {
    int32_t n_ids;        // model ids are [0, n_ids); ids the vocab does not name are holes
    // The id tables are zero for a hole, so a sparse vocab (one huge id in a small file) costs
    // untouched calloc pages, not a pass over every id: load time follows the file, not n_ids.
    uint32_t *str_off;    // (n_ids,) offset of the token text in pool, 0 for a hole
    uint32_t *str_len;    // (n_ids,) byte length of the token text
    char *pool;           // pool[0] unused (offset 0 marks a hole), then the token texts
    size_t pool_bytes, pool_used;
    int32_t *slots;       // open-addressing vocab hash sized by n_tokens, ids, -1 empty
    size_t slot_mask, n_tokens, n_set;
    struct g4_bpe_merge *merges;  // open-addressing merge hash
    size_t merge_mask;
    int32_t byte_id[256]; // id of "<0xHH>" for each byte, -1 if absent
    int32_t unk_id;       // -1 if the model has no unk_token
    bool byte_fallback, fuse_unk, ignore_merges;
};

// Growable id list used by the encoder.
struct g4_bpe_ids {
    int32_t *v;
    size_t n, cap;
};
g4_status g4_bpe_ids_push(struct g4_bpe_ids *ids, int32_t id);

// Allocates room for ids [0, n_ids), n_tokens of them named (the vocab entries), pool_bytes
// bytes of token text and n_merges merges.
g4_status g4_bpe_init(struct g4_bpe *b, int32_t n_ids, size_t n_tokens, size_t pool_bytes,
                      size_t n_merges);
// Sets the text of id (0 <= id < n_ids) and hashes it. G4_ERR_FORMAT if id is already set or
// the text already has another id.
g4_status g4_bpe_set(struct g4_bpe *b, int32_t id, const char *s, size_t n);
// Builds the byte-fallback table once all ids are set.
void g4_bpe_index(struct g4_bpe *b);
// Id of the exact text s[0..n), or -1.
int32_t g4_bpe_find(const struct g4_bpe *b, const char *s, size_t n);
// Adds merge number `rank` (left, right). The merged text must be in the vocab (G4_ERR_FORMAT
// otherwise, as tokenizers' MergeTokenOutOfVocabulary). A repeated pair keeps the later rank,
// as tokenizers' HashMap collect does.
g4_status g4_bpe_add_merge(struct g4_bpe *b, int32_t left, int32_t right, uint32_t rank);
// Appends the ids of one pre-tokenized word w[0..n) to out. Bytes that are not valid UTF-8 are
// single-byte symbols that never match the vocab, so they take the byte-fallback path.
g4_status g4_bpe_encode_word(const struct g4_bpe *b, const char *w, size_t n,
                             struct g4_bpe_ids *out);
void g4_bpe_free(struct g4_bpe *b);

// Length of the UTF-8 sequence at s[0..n): 1-4 for a valid code point (strict RFC 3629: no
// overlongs, surrogates or values above U+10FFFF), or 0 when s[0] does not start one.
size_t g4_bpe_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);

#endif
