// SentencePiece-style encoding by token scores, as llama.cpp's SPM tokenizer does it for GGUF
// vocabularies with tokenizer.ggml.model = "llama" (Gemma 3): a word starts as one symbol per
// UTF-8 character; the adjacent pair whose concatenation is a vocabulary token with the highest
// score merges first (ties: the leftmost pair), until no pair forms a token; a symbol left that
// is not a token becomes its bytes' <0xHH> tokens. No merge table: the scores rank the merges.
// Reuses struct g4_bpe for the vocabulary (text -> id hash, byte tokens).
#ifndef G4_SPM_H
#define G4_SPM_H

#include <stddef.h>

#include "bpe.h"
#include "status.h"

// Appends the ids of w[0..n) to out. scores: (vocab->n_ids,) per-id scores. A byte without a
// <0xHH> token gives vocab->unk_id (dropped when there is none). Scratch memory is per call.
g4_status g4_spm_encode_word(const struct g4_bpe *vocab, const float *scores, const char *w,
                             size_t n, struct g4_bpe_ids *out);

#endif
