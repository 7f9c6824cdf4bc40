// Text generation on a session: prompt in, streamed UTF-8 pieces out, with end-of-sequence,
// end-of-turn, stop strings, max tokens and cancellation; and chat generation that renders a
// whole conversation and reuses the session's cache for the part it already holds.
#ifndef G4_GENERATE_H
#define G4_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "chat_stream.h"
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

// Chat completion: renders messages (and tools) straight to ids (chat.h flags: THINKING,
// PRESERVE_THINKING; the generation prompt and the model's template variant are added here),
// reuses the cached prefix, generates and streams events (chat_stream.h). Stops at the end of
// the turn, at "<|tool_response>" (the model waits for tool results), at a stop string (which
// applies to the answer text), when on_event returns non-zero, at max_tokens, or on cancel.
// Afterwards s->finish_reason, s->usage_* and s->chat_result (JSON, see g4_chat_stream_result)
// describe the completion; also after G4_ERR_CANCELLED (finish "cancelled").
g4_status g4_chat_complete(struct g4_session *s, const cJSON *messages, const cJSON *tools,
                           int flags, int32_t max_tokens, g4_chat_event_fn on_event,
                           void *user_data);

#endif
