// The tokenizer of a GGUF checkpoint, from llama.cpp's tokenizer.ggml.* metadata, encoding as
// llama.cpp encodes (llama-cpp-python 0.3.36's llama.cpp, src/llama-vocab.cpp):
//   tokenizer.ggml.model "llama" (Gemma 3): SentencePiece vocabulary with scores, no merges:
//     score-driven merging as llama.cpp's SPM tokenizer (spm.c), spaces escaped to U+2581,
//     characters outside the vocabulary as <0xHH> byte tokens
//   tokenizer.ggml.model "gemma4" (Gemma 4): BPE with tokenizer.ggml.merges (bpe.c), in the
//     pipeline of Gemma 4's tokenizer.json (which reproduces llama.cpp's gemma4 pre-tokenizer)
// Token types (tokenizer.ggml.token_type, llama.cpp's numbers): 3 control and 2 unknown are
// special added tokens (split the text, dropped by decode with skip_special), 4 user-defined are
// added tokens that are not special, 1 normal, 5 unused and 6 byte are plain vocabulary entries.
// Added tokens split the text longest first, as llama.cpp's tokenizer_st_partition with
// parse_special. tokenizer.ggml.bos_token_id is prepended on add_bos unless
// tokenizer.ggml.add_bos_token is false. add_space_prefix (absent means true for "llama", as in
// llama.cpp) is G4_ERR_UNSUPPORTED: no Gemma file sets it.
#ifndef G4_TOKENIZER_GGUF_H
#define G4_TOKENIZER_GGUF_H

#include "gguf.h"
#include "status.h"
#include "tokenizer.h"

// *out = NULL and G4_OK when the file has no tokenizer.ggml.model (a checkpoint without a
// tokenizer: text functions then fail with G4_ERR_NO_TOKENIZER). Otherwise a tokenizer, or
// G4_ERR_FORMAT / G4_ERR_UNSUPPORTED naming the key at fault; `what` (the file) prefixes
// messages, may be NULL.
g4_status g4_tokenizer_gguf_load(struct g4_tokenizer **out, const struct g4_gguf *g,
                                 const char *what);

#endif
