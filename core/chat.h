// Gemma 4 chat format: renders system/user/model turns to prompt text (no template engine; the
// format is fixed and tested byte-for-byte against transformers' apply_chat_template).
#ifndef G4_CHAT_H
#define G4_CHAT_H

#include <stddef.h>

#include "status.h"

// roles[i] is "system", "user", "assistant" or "model" (assistant renders as model);
// contents[i] its text. add_generation_prompt appends the opening of a model turn.
// Output is the exact text apply_chat_template(messages, tokenize=False,
// add_generation_prompt=...) produces, including the leading "<bos>" it renders.
// Buffer convention: buf == NULL asks for the byte count; too small -> G4_ERR_BUFFER_TOO_SMALL
// with *n_out = needed; a NUL is written when cap > needed. Unknown role: G4_ERR_INVALID_ARGUMENT.
g4_status g4_chat_render(const char *const *roles, const char *const *contents, size_t n_messages,
                         int add_generation_prompt, char *buf, size_t cap, size_t *n_out);

#endif
