// Streaming parser of a generated Gemma 4 model turn; see chat_stream.h.
#define _GNU_SOURCE // memmem
#include "chat_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyjson.h"
#include "tool_call.h"
#include "tool_decl.h"

enum { S_TEXT, S_HEADER, S_REASONING, S_CALL };

static void bput(struct g4_chat_stream *p, struct g4_chat_buf *b, const char *s, size_t n) {
    if (p->st != G4_OK || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) {
            p->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat stream: %zu bytes", cap);
            return;
        }
        b->s = q;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void bdrop(struct g4_chat_buf *b, size_t n) { // removes the first n bytes
    if (n == 0) return;
    memmove(b->s, b->s + n, b->n - n);
    b->n -= n;
    if (b->s) b->s[b->n] = '\0';
}

void g4_chat_stream_init(struct g4_chat_stream *p, const cJSON *tools, const char *const *stops,
                         int n_stops, g4_chat_event_fn fn, void *user_data) {
    memset(p, 0, sizeof *p);
    p->tools = tools;
    p->stops = stops;
    p->n_stops = n_stops;
    p->fn = fn;
    p->user_data = user_data;
    p->calls = cJSON_CreateArray();
    if (!p->calls) p->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat stream");
}

void g4_chat_stream_in_reasoning(struct g4_chat_stream *p) { p->state = S_REASONING; }

void g4_chat_stream_free(struct g4_chat_stream *p) {
    struct g4_chat_buf *bufs[] = {&p->pend, &p->rpend, &p->header, &p->call, &p->text,
                                  &p->reasoning};
    for (size_t i = 0; i < G4_COUNT(bufs); i++) free(bufs[i]->s);
    cJSON_Delete(p->calls);
    memset(p, 0, sizeof *p);
}

// Length of the valid UTF-8 sequence at s[0, n) (0: invalid byte, or a sequence cut short).
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static void event_raw(struct g4_chat_stream *p, int kind, const char *s, size_t n);

// Events carry valid UTF-8 only: a byte that starts no valid character (the model can emit any
// byte-fallback sequence) becomes U+FFFD, as Hugging Face's ByteFallback decoder does.
static void event(struct g4_chat_stream *p, int kind, const char *s, size_t n) {
    size_t i = 0, l = 0;
    while (i < n && (l = utf8_valid_len((const unsigned char *)s + i, n - i)) > 0) i += l;
    if (i == n) {
        event_raw(p, kind, s, n);
        return;
    }
    struct g4_chat_buf fixed = {0};
    for (i = 0; i < n;) {
        l = utf8_valid_len((const unsigned char *)s + i, n - i);
        if (l) bput(p, &fixed, s + i, l);
        else bput(p, &fixed, "\xEF\xBF\xBD", 3);
        i += l ? l : 1;
    }
    if (p->st == G4_OK) event_raw(p, kind, fixed.s, fixed.n);
    free(fixed.s);
}

static void event_raw(struct g4_chat_stream *p, int kind, const char *s, size_t n) {
    if (kind == G4_CHAT_EVENT_TEXT) bput(p, &p->text, s, n);
    if (kind == G4_CHAT_EVENT_REASONING) bput(p, &p->reasoning, s, n);
    if (n && p->fn && p->fn(kind, s, n, p->user_data)) p->stop = true;
}

// Bytes at the end of buf[0, n) that form an incomplete UTF-8 sequence (0 if complete).
static size_t utf8_incomplete_tail(const char *buf, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = (unsigned char)buf[n - back];
        if ((c & 0xC0) == 0x80) continue; // continuation byte: keep looking for the lead
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

// Streams the answer text that is safe to stream (all of it when `all`).
static void flush_text(struct g4_chat_stream *p, bool all) {
    struct g4_chat_buf *b = &p->pend;
    if (!b->n) return;
    size_t emit = b->n;
    for (int k = 0; k < p->n_stops; k++) {
        const char *hit = memmem(b->s, b->n, p->stops[k], strlen(p->stops[k]));
        if (hit && (size_t)(hit - b->s) < emit) {
            emit = (size_t)(hit - b->s);
            p->stop = p->stop_string = true;
        }
    }
    if (!p->stop_string && !all) {
        size_t hold = utf8_incomplete_tail(b->s, b->n);
        for (int k = 0; k < p->n_stops; k++) { // a stop string may start in the tail
            size_t len = strlen(p->stops[k]);
            for (size_t t = len - 1 < b->n ? len - 1 : b->n; t > hold; t--)
                if (memcmp(b->s + b->n - t, p->stops[k], t) == 0) {
                    hold = t;
                    break;
                }
        }
        emit = b->n - hold;
    }
    event(p, G4_CHAT_EVENT_TEXT, b->s, emit);
    if (p->stop_string) b->n = 0; // text after a stop string is dropped
    else bdrop(b, emit);
}

static void flush_reasoning(struct g4_chat_stream *p, bool all) {
    struct g4_chat_buf *b = &p->rpend;
    size_t emit = all ? b->n : b->n - utf8_incomplete_tail(b->s, b->n);
    event(p, G4_CHAT_EVENT_REASONING, b->s, emit);
    bdrop(b, emit);
}

static void add_text(struct g4_chat_stream *p, const char *s, size_t n) {
    bput(p, &p->pend, s, n);
    flush_text(p, false);
}

// A call's raw text goes back as answer text (malformed, undeclared or truncated).
static void call_as_text(struct g4_chat_stream *p, bool closed) {
    add_text(p, "<|tool_call>", 12);
    add_text(p, p->call.s ? p->call.s : "", p->call.n);
    if (closed) add_text(p, "<tool_call|>", 12);
    p->call.n = 0;
}

static bool declared(const struct g4_chat_stream *p, const char *name) {
    if (!p->tools) return true;
    for (const cJSON *t = p->tools->child; t; t = t->next) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(g4_tool_decl_function(t), "name");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0) return true;
    }
    return false;
}

static void close_call(struct g4_chat_stream *p) {
    // Names and strings in the result are valid UTF-8 too (U+FFFD for stray bytes).
    size_t i = 0, l = 0;
    while (i < p->call.n && (l = utf8_valid_len((unsigned char *)p->call.s + i, p->call.n - i))) i += l;
    if (i < p->call.n) {
        struct g4_chat_buf fixed = {0};
        for (i = 0; i < p->call.n; i += l ? l : 1) {
            l = utf8_valid_len((unsigned char *)p->call.s + i, p->call.n - i);
            bput(p, &fixed, l ? p->call.s + i : "\xEF\xBF\xBD", l ? l : 3);
        }
        free(p->call.s);
        p->call = fixed;
    }
    char *name = NULL;
    cJSON *args = NULL;
    g4_status st = g4_tool_call_parse(p->call.s ? p->call.s : "", p->call.n, &name, &args);
    if (st != G4_OK || !declared(p, name)) {
        if (st != G4_OK) g4_clear_error(); // not a failure of the call: returned as text
        free(name);
        cJSON_Delete(args);
        flush_text(p, true);
        call_as_text(p, true);
        return;
    }
    flush_text(p, true); // text before the call is streamed before it
    char id[32];
    snprintf(id, sizeof id, "call_%d", p->n_calls);
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddStringToObject(c, "id", id) || !cJSON_AddStringToObject(c, "name", name)) {
        p->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat stream: tool call");
        cJSON_Delete(c);
        cJSON_Delete(args);
        free(name);
        return;
    }
    cJSON_AddItemToObject(c, "arguments", args);
    free(name);
    char *js = NULL;
    if ((p->st = g4_pyjson_print(c, &js)) != G4_OK) {
        cJSON_Delete(c);
        return;
    }
    cJSON_AddItemToArray(p->calls, c);
    p->n_calls++;
    p->call.n = 0;
    event(p, G4_CHAT_EVENT_TOOL_CALL, js, strlen(js));
    free(js);
}

bool g4_chat_stream_token(struct g4_chat_stream *p, const char *piece, size_t len, bool special) {
#define IS(tok) (special && len == sizeof(tok) - 1 && memcmp(piece, tok, len) == 0)
    if (p->st != G4_OK) return true;
    switch (p->state) {
    case S_TEXT:
        if (IS("<|channel>")) {
            flush_text(p, true);
            p->state = S_HEADER;
            p->header.n = 0;
        } else if (IS("<|tool_call>")) {
            p->state = S_CALL;
            p->call.n = 0;
        } else if (IS("<|tool_response>")) {
            p->stop = true;
        } else if (!special) {
            add_text(p, piece, len);
        }
        break;
    case S_HEADER: // the channel name up to its newline ("thought\n") is not reasoning
        if (IS("<channel|>")) {
            p->state = S_TEXT;
        } else if (IS("<|tool_call>")) {
            p->state = S_CALL;
            p->call.n = 0;
        } else if (!special) {
            const char *nl = memchr(piece, '\n', len);
            if (!nl) {
                bput(p, &p->header, piece, len);
            } else {
                p->state = S_REASONING;
                bput(p, &p->rpend, nl + 1, len - (size_t)(nl + 1 - piece));
                flush_reasoning(p, false);
            }
        }
        break;
    case S_REASONING:
        if (IS("<channel|>")) {
            flush_reasoning(p, true);
            p->state = S_TEXT;
        } else if (IS("<|tool_call>")) { // a call from inside the thought: the thought ends
            flush_reasoning(p, true);
            p->state = S_CALL;
            p->call.n = 0;
        } else if (!special) {
            bput(p, &p->rpend, piece, len);
            flush_reasoning(p, false);
        }
        break;
    default: // S_CALL
        if (IS("<tool_call|>")) {
            p->state = S_TEXT;
            close_call(p);
        } else if (!special || IS(G4_TOOL_CALL_DELIM)) {
            bput(p, &p->call, piece, len);
        } else { // another control token inside a call: it was malformed
            p->state = S_TEXT;
            call_as_text(p, false);
            return g4_chat_stream_token(p, piece, len, special);
        }
        break;
    }
    return p->stop;
#undef IS
}

g4_status g4_chat_stream_finish(struct g4_chat_stream *p) {
    if (p->state == S_CALL) call_as_text(p, false); // cut off: nothing is lost
    if (p->state == S_HEADER && p->header.n) bput(p, &p->rpend, p->header.s, p->header.n);
    p->state = S_TEXT;
    if (!p->stop_string) flush_text(p, true);
    flush_reasoning(p, true);
    return p->st;
}

g4_status g4_chat_stream_result(const struct g4_chat_stream *p, const char *finish_reason,
                                int64_t prompt_tokens, int64_t cached_tokens,
                                int64_t completion_tokens, char **json) {
    *json = NULL;
    cJSON *r = cJSON_CreateObject(), *usage = cJSON_CreateObject();
    cJSON *calls = cJSON_Duplicate(p->calls, 1);
    bool ok = r && usage && calls;
    ok = ok && cJSON_AddStringToObject(r, "content", p->text.s ? p->text.s : "");
    if (ok && p->reasoning.n) ok = cJSON_AddStringToObject(r, "reasoning", p->reasoning.s);
    else if (ok) ok = cJSON_AddNullToObject(r, "reasoning");
    if (ok) cJSON_AddItemToObject(r, "tool_calls", calls), calls = NULL;
    ok = ok && cJSON_AddStringToObject(r, "finish_reason", finish_reason);
    ok = ok && cJSON_AddNumberToObject(usage, "prompt_tokens", (double)prompt_tokens) &&
         cJSON_AddNumberToObject(usage, "cached_tokens", (double)cached_tokens) &&
         cJSON_AddNumberToObject(usage, "completion_tokens", (double)completion_tokens) &&
         cJSON_AddNumberToObject(usage, "total_tokens", (double)(prompt_tokens + completion_tokens));
    if (ok) cJSON_AddItemToObject(r, "usage", usage), usage = NULL;
    g4_status st = ok ? g4_pyjson_print(r, json) : g4_fail(G4_ERR_OUT_OF_MEMORY, "chat result");
    cJSON_Delete(r);
    cJSON_Delete(usage);
    cJSON_Delete(calls);
    return st;
}
