// Text generation on a session: prompt in, streamed UTF-8 pieces out, with end-of-sequence,
// end-of-turn, stop strings, max tokens and cancellation; and chat generation that renders a
// whole conversation and reuses the session's cache for the part it already holds.
#ifndef G4_GENERATE_H
#define G4_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

// Same contract as gemma4_token_fn: return non-zero to stop.
typedef int32_t (*g4_token_fn)(const char *piece, size_t len, int32_t token, void *user_data);

// Appends prompt (special-token text recognised; <bos> prepended on an empty session unless the
// prompt starts with it) and generates; see gemma4_generate in abi/gemma4.h.
g4_status g4_generate(struct g4_session *s, const char *prompt, int32_t max_tokens,
                      g4_token_fn on_token, void *user_data);

// Renders the conversation (g4_chat_render with the generation prompt), keeps the longest prefix
// of the session's context that equals the rendered tokens, runs only the rest and generates.
g4_status g4_chat_generate(struct g4_session *s, const char *const *roles,
                           const char *const *contents, size_t n_messages, int32_t max_tokens,
                           g4_token_fn on_token, void *user_data);

#endif
