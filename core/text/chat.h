// Chat formats: renders a conversation (OpenAI-style messages as JSON, optionally tool
// declarations) to prompt text or straight to token ids. No template engine: each format is a
// hand-written port of its model's chat template, tested byte for byte against transformers'
// apply_chat_template (tests/test_chat.c, fixtures from tests/chat/make_chat_fixtures.py).
//
// Formats (enum g4_chat_format) are chosen by the model's architecture; each is one render
// function in the table in chat.c, so a new format adds a function and an enum value.
//
// Injection safety: the ids renderer emits each control token of the format as its id and
// tokenizes everything else (message contents, tool arguments, names, descriptions) with
// g4_tokenizer_encode_literal, so "<|turn>" typed by a user stays text. The text renderer
// produces what apply_chat_template produces (control tokens and contents concatenated); its
// output is only safe to tokenize with special tokens recognised when the contents are trusted.
#ifndef G4_CHAT_H
#define G4_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "chat_emit.h"
#include "status.h"

struct g4_tokenizer;

enum g4_chat_format {
    G4_CHAT_FORMAT_GEMMA4 = 0, // <|turn>role\n ... <turn|>  (Google's Gemma 4 template)
    G4_CHAT_FORMAT_GEMMA3 = 1, // <start_of_turn>role\n ... <end_of_turn>  (Gemma 3's template,
                               // tests/chat/gemma3_chat_template.jinja): user/model turns that
                               // must alternate, a leading system message prepended to the first
                               // turn + "\n\n", contents trimmed; no tools or thinking (tools,
                               // tool calls/responses and "tool" turns: G4_ERR_UNSUPPORTED;
                               // reasoning and the THINKING flags are ignored, as the template
                               // does); only G4_CHAT_GEN_PROMPT of the flags applies
};

// The control token that closes a turn of format fmt ("<turn|>", "<end_of_turn>"): generation
// stops at it.
const char *g4_chat_end_of_turn(enum g4_chat_format fmt);

// Flags of a render (bit set).
#define G4_CHAT_GEN_PROMPT 1         // add_generation_prompt: open the model's turn
#define G4_CHAT_TEMPLATE_LARGE 2     // the 26B-A4B / 31B template: with thinking off the
                                     // generation prompt ends in an empty thought channel
#define G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT (G4_CHAT_GEN_PROMPT | G4_CHAT_TEMPLATE_LARGE)
#define G4_CHAT_THINKING 4           // enable_thinking=True: "<|think|>" opens the system turn
#define G4_CHAT_PRESERVE_THINKING 8  // preserve_thinking=True: reasoning of tool-call turns
                                     // before the last user message is kept

// Parses and checks a messages array (and optional tools array; tools_json NULL or "" for none)
// into normalized cJSON trees (*tools NULL without tools). Each message is an object with
//   "role": "system" | "developer" | "user" | "assistant" | "model" | "tool"
//   "content": string, null, or an array of {"type": "text", "text": ...} parts (a "tool"
//              message may also carry any JSON value: an object renders key by key)
//   "reasoning" / "reasoning_content": the model's earlier thinking (rendered only where the
//              template keeps it: after the last user message, or with PRESERVE_THINKING)
//   "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]; arguments
//              is an object, null, or a string holding a JSON object (parsed here, as the
//              template asks callers to do)
//   "tool_call_id", "name": on "tool" messages, which call they answer
//   "tool_responses": [{"name", "response"}] (Gemma's native form, on an assistant message)
// Errors: G4_ERR_INVALID_ARGUMENT naming the message and field (bad JSON, unknown role, wrong
// type, empty conversation); G4_ERR_UNSUPPORTED for image/audio/video parts (text-only runtime).
g4_status g4_chat_parse(const char *messages_json, const char *tools_json, cJSON **messages,
                        cJSON **tools);
// The same from parallel arrays: roles[i] ("system", "developer", "user", "assistant", "model"),
// contents[i] (text). "tool" turns need call ids and names: use the JSON form.
g4_status g4_chat_from_arrays(const char *const *roles, const char *const *contents, size_t n,
                              cJSON **messages);

// Renders into an emitter (chat_emit.h): text or token ids.
g4_status g4_chat_render_to(enum g4_chat_format fmt, const cJSON *messages, const cJSON *tools,
                            int flags, struct g4_chat_emit *e);
// Text under the buffer convention (buf NULL asks for the size; too small ->
// G4_ERR_BUFFER_TOO_SMALL with *n_out = needed and buf untouched; NUL written when cap > needed).
g4_status g4_chat_render_text(enum g4_chat_format fmt, const cJSON *messages, const cJSON *tools,
                              int flags, char *buf, size_t cap, size_t *n_out);
// Token ids, malloc'd into *ids (free()), *n their count.
g4_status g4_chat_render_ids(enum g4_chat_format fmt, const struct g4_tokenizer *tok,
                             const cJSON *messages, const cJSON *tools, int flags, int32_t **ids,
                             size_t *n);

// Plain turns to text, as apply_chat_template(messages, tokenize=False, add_generation_prompt)
// with Gemma 4's template (thinking off, no tools), e.g.
//   "<bos><|turn>system\nS<turn|>\n<|turn>user\nU<turn|>\n<|turn>model\n"
// flags as above (G4_CHAT_GEN_PROMPT, G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT, ...). Content is
// trimmed (Python str.strip() whitespace); model content has "<|channel>...<channel|>"
// thinking removed; only a leading system message forms the system turn; adjacent "assistant"
// messages share one model turn, as upstream. Buffer convention as g4_chat_render_text.
// G4_ERR_INVALID_ARGUMENT: unknown or NULL role, NULL content, n_messages 0 (transformers
// rejects an empty conversation too), NULL roles/contents/n_out.
g4_status g4_chat_render(const char *const *roles, const char *const *contents, size_t n_messages,
                         int flags, char *buf, size_t cap, size_t *n_out);

// Python str.isspace() for a code point (the whitespace Jinja's trim removes).
int g4_chat_is_space(int32_t cp);

#endif
