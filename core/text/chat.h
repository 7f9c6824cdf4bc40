// Gemma 4 chat format: renders system/user/model turns to prompt text (no template engine; the
// format is fixed and tested byte-for-byte against transformers' apply_chat_template).
#ifndef G4_CHAT_H
#define G4_CHAT_H

#include <stddef.h>

#include "status.h"

// add_generation_prompt: 0, or one of these openings of the model's turn.
#define G4_CHAT_GEN_PROMPT 1               // "<|turn>model\n" (E2B/E4B template)
#define G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT 2 // ... + "<|channel>thought\n<channel|>" (26B-A4B, 31B)

// roles[i] is "system", "user", "assistant" or "model" (assistant renders as model);
// contents[i] its text. add_generation_prompt appends the opening of a model turn.
// Output is the exact text apply_chat_template(messages, tokenize=False,
// add_generation_prompt=...) produces with Google's Gemma 4 template for E2B/E4B
// (tests/chat/gemma4_chat_template.jinja), thinking off, no tools, e.g.
//   "<bos><|turn>system\nS<turn|>\n<|turn>user\nU<turn|>\n<|turn>model\n"
// Only a leading system message forms the system turn; user/system content is trimmed
// (Python str.strip() whitespace), model content has "<|channel>...<channel|>" thinking removed
// and is trimmed; adjacent "assistant" messages share one model turn, as upstream. The 26B-A4B and
// 31B templates differ only in the generation prompt, which there ends with the empty thought
// channel "<|channel>thought\n<channel|>" (G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT).
// Buffer convention: buf == NULL asks for the byte count; too small -> G4_ERR_BUFFER_TOO_SMALL
// with *n_out = needed and buf untouched; a NUL is written when cap > needed.
// G4_ERR_INVALID_ARGUMENT: unknown or NULL role, NULL content, n_messages 0 (transformers
// rejects an empty conversation too), NULL roles/contents/n_out.
g4_status g4_chat_render(const char *const *roles, const char *const *contents, size_t n_messages,
                         int add_generation_prompt, char *buf, size_t cap, size_t *n_out);

#endif
