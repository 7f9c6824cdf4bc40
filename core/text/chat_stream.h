// Parses a Gemma 4 model turn as it is generated, token by token, into events: answer text,
// reasoning (the "<|channel>thought\n ... <channel|>" block, without its "thought\n" header) and
// tool calls ("<|tool_call>call:NAME{...}<tool_call|>", parsed into a name and a JSON arguments
// object). Text and reasoning are streamed as soon as they are whole UTF-8 characters (and, for
// text, once no stop string can start in them); a tool call is one event when it closes.
//
// Malformed calls are returned as text, never dropped: a call that does not parse, a call to a
// function not among the declared tools (when tools were declared), or a call cut off by the end
// of generation is streamed as a text event holding its raw text ("<|tool_call>call:...").
// Control tokens outside these blocks (a stray "<channel|>", "<|\"|>") are dropped from the text.
// "<|tool_response>" after calls asks the generator to stop: the caller runs the tools.
#ifndef G4_CHAT_STREAM_H
#define G4_CHAT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "status.h"

#define G4_CHAT_EVENT_TEXT 0
#define G4_CHAT_EVENT_REASONING 1
#define G4_CHAT_EVENT_TOOL_CALL 2 // text: {"id":"call_N","name":"f","arguments":{...}}

// Return non-zero to stop generation.
typedef int32_t (*g4_chat_event_fn)(int32_t kind, const char *text, size_t len, void *user_data);

struct g4_chat_buf {
    char *s;
    size_t n, cap;
};

struct g4_chat_stream {
    int state;
    const cJSON *tools;           // declared tools (NULL: any name is accepted)
    const char *const *stops;     // stop strings for the answer text
    int n_stops;
    g4_chat_event_fn fn;
    void *user_data;
    struct g4_chat_buf pend;      // answer text not yet streamed (UTF-8 / stop-string hold-back)
    struct g4_chat_buf rpend;     // reasoning not yet streamed (UTF-8 hold-back)
    struct g4_chat_buf header;    // channel name being read ("thought")
    struct g4_chat_buf call;      // raw text of the call being read
    struct g4_chat_buf text, reasoning; // everything streamed, for the result
    cJSON *calls;                 // parsed calls, as streamed
    int n_calls;
    bool stop;                    // a stop string, the callback or <|tool_response> ended it
    bool stop_string;             // ... a stop string
    g4_status st;                 // out of memory
};

void g4_chat_stream_init(struct g4_chat_stream *p, const cJSON *tools, const char *const *stops,
                         int n_stops, g4_chat_event_fn fn, void *user_data);
void g4_chat_stream_free(struct g4_chat_stream *p);
// The prompt already opened the thought channel (and its "thought\n" header): the first tokens
// are reasoning, up to "<channel|>".
void g4_chat_stream_in_reasoning(struct g4_chat_stream *p);
// One generated token: its text, and whether it is a special (control) token. Returns true when
// generation should stop (p->stop).
bool g4_chat_stream_token(struct g4_chat_stream *p, const char *piece, size_t len, bool special);
// End of generation: streams what is held back (a truncated call as text). Returns p->st.
g4_status g4_chat_stream_finish(struct g4_chat_stream *p);
// The result as JSON: {"content", "reasoning" (null if none), "tool_calls" ([...] of the event
// objects), "finish_reason", "usage": {"prompt_tokens", "cached_tokens", "completion_tokens",
// "total_tokens"}}. malloc'd.
g4_status g4_chat_stream_result(const struct g4_chat_stream *p, const char *finish_reason,
                                int64_t prompt_tokens, int64_t cached_tokens,
                                int64_t completion_tokens, char **json);

#endif
