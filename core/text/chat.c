// Chat rendering: message validation and normalization, then the Gemma 4 format, a hand-written
// equivalent of Google's Gemma 4 chat template (tests/chat/gemma4_chat_template.jinja, the
// 2026-07-09 "canonical" template of google/gemma-4-E2B-it; the 26B-A4B/31B template,
// tests/chat/gemma4_31b_chat_template.jinja, differs only in the generation prompt) as run by
// transformers' apply_chat_template: system turn with <|think|> and tool declarations, turns,
// thinking stripped or kept as the template does, tool calls and tool responses.
// tests/test_chat.c checks it byte-for-byte against transformers' output.
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "pyjson.h"
#include "tokenizer.h"
#include "tool_call.h"
#include "tool_decl.h"

// ---- text helpers -------------------------------------------------------------------------

// Length in bytes of the UTF-8 character at s (1 for an invalid lead or truncated sequence)
// and its code point in *cp (-1 when invalid, so it never counts as whitespace).
static size_t utf8_char(const unsigned char *s, const unsigned char *end, int32_t *cp) {
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || (size_t)(end - s) < len) {
        *cp = -1;
        return 1;
    }
    if (len == 1) {
        *cp = c;
        return 1;
    }
    int32_t v = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

// Python's str.isspace(), which Jinja's `trim` filter (str.strip()) uses: ASCII whitespace,
// the information separators 0x1c-0x1f, NEL, NBSP and the Unicode Zs/Zl/Zp spaces.
// Zero-width space U+200B and BOM U+FEFF are not whitespace.
int g4_chat_is_space(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static const char CH_OPEN[] = "<|channel>";
static const char CH_CLOSE[] = "<channel|>";

// Bounded strstr: first occurrence of needle in [s, end), or NULL.
static const char *find(const char *s, const char *end, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = s; (size_t)(end - p) >= n; p++)
        if (memcmp(p, needle, n) == 0) return p;
    return NULL;
}

// One piece of the visible text: the template's strip_thinking macro splits model content on
// "<channel|>" and keeps each part only up to its first "<|channel>". Pieces are increasing,
// disjoint ranges of the original text, so a position in the joined result is a pointer into it.
struct piece_iter {
    const char *next; // start of the next part, NULL when done
    const char *end;
    int strip_thinking;
};

static int next_piece(struct piece_iter *it, const char **a, const char **b) {
    if (!it->next) return 0;
    const char *part = it->next;
    const char *part_end = it->end;
    if (it->strip_thinking) {
        const char *close = find(part, it->end, CH_CLOSE);
        if (close) part_end = close;
        it->next = close ? close + sizeof CH_CLOSE - 1 : NULL;
        const char *open = find(part, part_end, CH_OPEN);
        *b = open ? open : part_end;
    } else {
        it->next = NULL;
        *b = part_end;
    }
    *a = part;
    return 1;
}

// Emits content | trim (strip_thinking 0) or strip_thinking(content), which trims the joined
// pieces (model turns), as literal text. Trim applies to the joined text, so the first and last
// non-whitespace characters are found across pieces first, then each piece is emitted clipped
// to that range. Returns the number of bytes emitted.
static size_t put_content(struct g4_chat_emit *e, const char *text, int strip_thinking) {
    const char *end = text + strlen(text);
    const char *lo = NULL, *hi = NULL; // [lo, hi): first to last non-whitespace character
    struct piece_iter it = {text, end, strip_thinking};
    const char *a, *b;
    while (next_piece(&it, &a, &b)) {
        for (const char *p = a; p < b;) {
            int32_t cp;
            size_t len = utf8_char((const unsigned char *)p, (const unsigned char *)b, &cp);
            if (!g4_chat_is_space(cp)) {
                if (!lo) lo = p;
                hi = p + len;
            }
            p += len;
        }
    }
    if (!lo) return 0; // empty or all whitespace
    size_t n = 0;
    it = (struct piece_iter){text, end, strip_thinking};
    while (next_piece(&it, &a, &b)) {
        if (a < lo) a = lo < b ? lo : b;
        if (b > hi) b = hi > a ? hi : a;
        g4_chat_emit_text(e, a, (size_t)(b - a));
        n += (size_t)(b - a);
    }
    return n;
}

// ---- messages -----------------------------------------------------------------------------

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *role_of(const cJSON *msg) { return get(msg, "role")->valuestring; }

static int is_role(const cJSON *msg, const char *r) { return strcmp(role_of(msg), r) == 0; }

static const char *const ROLES[] = {"system", "developer", "user", "assistant", "model", "tool"};

// Checks one content value (string, null, or parts); `tool` allows any JSON value.
static g4_status check_content(const cJSON *c, size_t i, int tool) {
    if (!c || cJSON_IsNull(c) || cJSON_IsString(c)) return G4_OK;
    if (cJSON_IsArray(c)) {
        int k = 0;
        for (const cJSON *p = c->child; p; p = p->next, k++) {
            const cJSON *type = get(p, "type");
            if (!cJSON_IsString(type))
                return g4_fail(G4_ERR_INVALID_ARGUMENT,
                               "messages[%zu].content[%d]: expected {\"type\": \"text\", ...}", i, k);
            if (strcmp(type->valuestring, "text") == 0) {
                const cJSON *t = get(p, "text");
                if (t && !cJSON_IsString(t))
                    return g4_fail(G4_ERR_INVALID_ARGUMENT,
                                   "messages[%zu].content[%d].text: expected a string", i, k);
                continue;
            }
            const char *ty = type->valuestring;
            if (!strcmp(ty, "image") || !strcmp(ty, "image_url") || !strcmp(ty, "audio") ||
                !strcmp(ty, "input_audio") || !strcmp(ty, "video"))
                return g4_fail(G4_ERR_UNSUPPORTED,
                               "messages[%zu].content[%d]: %s parts are not supported "
                               "(text-only runtime)", i, k, ty);
        }
        return G4_OK;
    }
    if (tool) return G4_OK;
    return g4_fail(G4_ERR_INVALID_ARGUMENT,
                   "messages[%zu].content: expected a string, null or an array of parts", i);
}

// Checks and normalizes one tool_calls array in place (string arguments parsed as JSON).
static g4_status normalize_calls(cJSON *calls, size_t i) {
    if (!cJSON_IsArray(calls))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages[%zu].tool_calls: expected an array", i);
    int k = 0;
    for (cJSON *tc = calls->child; tc; tc = tc->next, k++) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
        if (!cJSON_IsObject(tc) || !cJSON_IsObject(f))
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "messages[%zu].tool_calls[%d]: expected {\"function\": {...}}", i, k);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "messages[%zu].tool_calls[%d].function.name: expected a string", i, k);
        cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        if (cJSON_IsString(args)) {
            // OpenAI clients send arguments as a JSON string; the template needs the object.
            cJSON *obj;
            const char *s = args->valuestring;
            G4_TRY(g4_pyjson_parse(s, strlen(s), "tool call arguments", &obj));
            if (!cJSON_IsObject(obj)) {
                cJSON_Delete(obj);
                return g4_fail(G4_ERR_INVALID_ARGUMENT,
                               "messages[%zu].tool_calls[%d].function.arguments: expected a "
                               "JSON object", i, k);
            }
            cJSON_ReplaceItemInObjectCaseSensitive(f, "arguments", obj);
        } else if (args && !cJSON_IsObject(args) && !cJSON_IsNull(args)) {
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "messages[%zu].tool_calls[%d].function.arguments: expected an object "
                           "or a JSON string", i, k);
        }
    }
    return G4_OK;
}

static g4_status check_messages(cJSON *msgs) {
    if (!cJSON_IsArray(msgs))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages: expected a JSON array");
    // transformers' apply_chat_template raises ValueError for an empty conversation.
    if (!msgs->child)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: empty conversation (no messages)");
    size_t i = 0;
    for (cJSON *m = msgs->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m))
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages[%zu]: expected an object", i);
        const cJSON *role = get(m, "role");
        if (!cJSON_IsString(role))
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages[%zu]: no \"role\" string", i);
        int known = 0;
        for (size_t k = 0; k < G4_COUNT(ROLES); k++) known |= !strcmp(role->valuestring, ROLES[k]);
        if (!known)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "messages[%zu] has unknown role \"%.32s\" (expected system, "
                           "developer, user, assistant, model or tool)", i, role->valuestring);
        G4_TRY(check_content(get(m, "content"), i, !strcmp(role->valuestring, "tool")));
        static const char *const strs[] = {"reasoning", "reasoning_content"};
        for (size_t k = 0; k < G4_COUNT(strs); k++) {
            const cJSON *v = get(m, strs[k]);
            if (v && !cJSON_IsString(v) && !cJSON_IsNull(v))
                return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages[%zu].%s: expected a string", i,
                               strs[k]);
        }
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (calls && !cJSON_IsNull(calls)) G4_TRY(normalize_calls(calls, i));
        const cJSON *trs = get(m, "tool_responses");
        if (trs && !cJSON_IsNull(trs) && !cJSON_IsArray(trs))
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "messages[%zu].tool_responses: expected an array", i);
        for (const cJSON *t = cJSON_IsArray(trs) ? trs->child : NULL; t; t = t->next)
            if (!cJSON_IsObject(t))
                return g4_fail(G4_ERR_INVALID_ARGUMENT,
                               "messages[%zu].tool_responses: expected objects", i);
        const cJSON *nm = get(m, "name");
        if (nm && !cJSON_IsString(nm) && !cJSON_IsNull(nm))
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages[%zu].name: expected a string", i);
    }
    return G4_OK;
}

g4_status g4_chat_parse(const char *messages_json, const char *tools_json, cJSON **messages,
                        cJSON **tools) {
    *messages = NULL;
    *tools = NULL;
    if (!messages_json) return g4_fail(G4_ERR_INVALID_ARGUMENT, "messages JSON is NULL");
    cJSON *m = NULL, *t = NULL;
    G4_TRY(g4_pyjson_parse(messages_json, strlen(messages_json), "messages", &m));
    g4_status st = check_messages(m);
    if (st == G4_OK && tools_json && tools_json[0]) {
        st = g4_pyjson_parse(tools_json, strlen(tools_json), "tools", &t);
        if (st == G4_OK) st = g4_tool_decl_check(t);
    }
    if (st != G4_OK) {
        cJSON_Delete(m);
        cJSON_Delete(t);
        return st;
    }
    *messages = m;
    *tools = t;
    return G4_OK;
}

g4_status g4_chat_from_arrays(const char *const *roles, const char *const *contents, size_t n,
                              cJSON **messages) {
    *messages = NULL;
    // transformers' apply_chat_template raises ValueError for an empty conversation.
    if (n == 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: empty conversation (n_messages 0)");
    if (!roles || !contents)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: %s is NULL",
                       !roles ? "roles" : "contents");
    for (size_t i = 0; i < n; i++) {
        if (!roles[i])
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: message %zu has a NULL role", i);
        int known = 0;
        for (size_t k = 0; k + 1 < G4_COUNT(ROLES); k++) known |= !strcmp(roles[i], ROLES[k]);
        if (!known)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "chat render: message %zu has unknown role \"%.32s\" (expected "
                           "system, developer, user, assistant or model; tool turns need the "
                           "JSON conversation)", i, roles[i]);
        if (!contents[i])
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: message %zu has NULL content",
                           i);
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddStringToObject(m, "role", roles[i]) ||
            !cJSON_AddStringToObject(m, "content", contents[i])) {
            cJSON_Delete(m);
            cJSON_Delete(arr);
            arr = NULL;
            break;
        }
        cJSON_AddItemToArray(arr, m);
    }
    if (!arr) return g4_fail(G4_ERR_OUT_OF_MEMORY, "chat messages");
    *messages = arr;
    return G4_OK;
}

// ---- the Gemma 4 format -------------------------------------------------------------------

enum prev_type { PREV_NONE, PREV_THINK, PREV_TOOL, PREV_TOOL_CALL, PREV_TOOL_RESPONSE };

// A message's content: string (trimmed, or strip_thinking for the model), parts (each text
// part so, joined; system parts get a ' ' after each, as the template's system branch).
// Returns the bytes emitted.
static size_t put_message_content(struct g4_chat_emit *e, const cJSON *c, int model,
                                  int system_parts) {
    if (cJSON_IsString(c)) return put_content(e, c->valuestring, model);
    size_t n = 0;
    if (cJSON_IsArray(c))
        for (const cJSON *p = c->child; p; p = p->next) {
            const cJSON *t = get(p, "text");
            // the system branch takes every part's text; other turns only "text" parts
            if (!system_parts && strcmp(get(p, "type")->valuestring, "text") != 0) continue;
            n += put_content(e, cJSON_IsString(t) ? t->valuestring : "", model);
            if (system_parts) {
                g4_chat_emit_str(e, " ");
                n++;
            }
        }
    return n;
}

// Tool message body for format_tool_response_block: a string, the joined text parts, or the
// value itself (an object renders key by key).
static void put_tool_response(struct g4_chat_emit *e, const char *name, const cJSON *body) {
    if (cJSON_IsArray(body)) {
        size_t len = 0;
        for (const cJSON *p = body->child; p; p = p->next)
            if (!strcmp(get(p, "type")->valuestring, "text") && cJSON_IsString(get(p, "text")))
                len += strlen(get(p, "text")->valuestring);
        char *s = malloc(len + 1);
        if (!s) {
            if (e->st == G4_OK) e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "tool response text");
            return;
        }
        s[0] = '\0';
        for (const cJSON *p = body->child; p; p = p->next)
            if (!strcmp(get(p, "type")->valuestring, "text") && cJSON_IsString(get(p, "text")))
                strcat(s, get(p, "text")->valuestring);
        cJSON *str = cJSON_CreateString(s);
        free(s);
        if (!str) {
            if (e->st == G4_OK) e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "tool response text");
            return;
        }
        g4_tool_call_format_response(e, name, str);
        cJSON_Delete(str);
        return;
    }
    g4_tool_call_format_response(e, name, body);
}

// tc.get('id') == follow.get('tool_call_id'), None == None included.
static int same_id(const cJSON *a, const cJSON *b) {
    int na = !a || cJSON_IsNull(a), nb = !b || cJSON_IsNull(b);
    if (na || nb) return na && nb;
    return cJSON_Compare(a, b, 1);
}

static const char *truthy_str(const cJSON *v, const char *fallback) {
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : fallback;
}

static void render_gemma4(const cJSON *msgs, const cJSON *tools, int flags,
                          struct g4_chat_emit *e) {
    const int thinking = flags & G4_CHAT_THINKING, preserve = flags & G4_CHAT_PRESERVE_THINKING;
    const int n = cJSON_GetArraySize(msgs);
    const cJSON **m = malloc((size_t)n * sizeof *m);
    if (!m) {
        e->st = g4_fail(G4_ERR_OUT_OF_MEMORY, "chat render: %d messages", n);
        return;
    }
    int i = 0;
    for (const cJSON *c = msgs->child; c; c = c->next) m[i++] = c;

    enum prev_type prev = PREV_NONE;
    g4_chat_emit_ctl(e, "<bos>");
    int first = 0;
    const int has_sys = n > 0 && (is_role(m[0], "system") || is_role(m[0], "developer"));
    const int has_tools = g4_pyjson_truthy(tools);
    if (thinking || has_tools || has_sys) {
        g4_chat_emit_ctl(e, "<|turn>");
        g4_chat_emit_str(e, "system\n");
        if (thinking) {
            g4_chat_emit_ctl(e, "<|think|>");
            g4_chat_emit_str(e, "\n");
            prev = PREV_THINK;
        }
        if (has_sys) {
            put_message_content(e, get(m[0], "content"), 0, 1);
            first = 1;
        }
        if (has_tools) {
            for (const cJSON *t = tools->child; t; t = t->next) {
                g4_chat_emit_ctl(e, "<|tool>");
                g4_tool_decl_format(e, t);
                g4_chat_emit_ctl(e, "<tool|>");
            }
            prev = PREV_TOOL;
        }
        g4_chat_emit_ctl(e, "<turn|>");
        g4_chat_emit_str(e, "\n");
    }
    int last_user = -1;
    for (i = first; i < n; i++)
        if (is_role(m[i], "user")) last_user = i;

    const char *prev_non_tool_role = NULL;
    for (i = first; i < n; i++) {
        const cJSON *msg = m[i];
        if (is_role(msg, "tool")) continue;
        prev = PREV_NONE;
        const int model = is_role(msg, "assistant") || is_role(msg, "model");
        const char *role = is_role(msg, "assistant") ? "model" : role_of(msg);
        const int continue_same = model && prev_non_tool_role &&
                                  strcmp(prev_non_tool_role, "assistant") == 0;
        if (!continue_same) {
            g4_chat_emit_ctl(e, "<|turn>");
            g4_chat_emit_str(e, role);
            g4_chat_emit_str(e, "\n");
        }
        const cJSON *calls = get(msg, "tool_calls");
        const int has_calls = g4_pyjson_truthy(calls);
        const cJSON *think = get(msg, "reasoning");
        if (!g4_pyjson_truthy(think)) think = get(msg, "reasoning_content");
        if (g4_pyjson_truthy(think) && (i > last_user || (preserve && has_calls))) {
            g4_chat_emit_ctl(e, "<|channel>");
            g4_chat_emit_str(e, "thought\n");
            g4_chat_emit_str(e, think->valuestring);
            g4_chat_emit_str(e, "\n");
            g4_chat_emit_ctl(e, "<channel|>");
        }
        if (has_calls) {
            for (const cJSON *tc = calls->child; tc; tc = tc->next) {
                const cJSON *f = get(tc, "function");
                g4_chat_emit_ctl(e, "<|tool_call>");
                g4_tool_call_format(e, get(f, "name")->valuestring, get(f, "arguments"));
                g4_chat_emit_ctl(e, "<tool_call|>");
            }
            prev = PREV_TOOL_CALL;
        }
        int tr_out = 0;
        const cJSON *trs = get(msg, "tool_responses");
        if (g4_pyjson_truthy(trs)) {
            for (const cJSON *tr = trs->child; tr; tr = tr->next) {
                g4_tool_call_format_response(e, truthy_str(get(tr, "name"), "unknown"),
                                             get(tr, "response"));
                tr_out = 1;
                prev = PREV_TOOL_RESPONSE;
            }
        } else if (has_calls) {
            // OpenAI form: the tool messages that follow answer these calls.
            for (int k = i + 1; k < n && is_role(m[k], "tool"); k++) {
                const cJSON *follow = m[k];
                const char *name = truthy_str(get(follow, "name"), "unknown");
                for (const cJSON *tc = calls->child; tc; tc = tc->next)
                    if (same_id(get(tc, "id"), get(follow, "tool_call_id")))
                        name = get(get(tc, "function"), "name")->valuestring;
                put_tool_response(e, name, get(follow, "content"));
                tr_out = 1;
                prev = PREV_TOOL_RESPONSE;
            }
        }
        const int has_content = put_message_content(e, get(msg, "content"), model, 0) > 0;
        const char *next_role = NULL;
        for (int j = i + 1; j < n && !next_role; j++)
            if (!is_role(m[j], "tool")) next_role = role_of(m[j]);
        const int continues_into_next = model && next_role && !strcmp(next_role, "assistant") &&
                                        (!has_calls || tr_out);
        if (prev == PREV_TOOL_CALL && !tr_out) {
            g4_chat_emit_ctl(e, "<|tool_response>");
        } else if (continues_into_next) {
        } else if (!(tr_out && !has_content && !next_role)) {
            g4_chat_emit_ctl(e, "<turn|>");
            g4_chat_emit_str(e, "\n");
        }
        prev_non_tool_role = role_of(msg);
    }
    if (flags & G4_CHAT_GEN_PROMPT) {
        if (prev != PREV_TOOL_RESPONSE && prev != PREV_TOOL_CALL) {
            g4_chat_emit_ctl(e, "<|turn>");
            g4_chat_emit_str(e, "model\n");
            if ((flags & G4_CHAT_TEMPLATE_LARGE) && !thinking) {
                g4_chat_emit_ctl(e, "<|channel>");
                g4_chat_emit_str(e, "thought\n");
                g4_chat_emit_ctl(e, "<channel|>");
            }
        } else if (prev == PREV_TOOL_RESPONSE && thinking) {
            g4_chat_emit_ctl(e, "<|channel>");
            g4_chat_emit_str(e, "thought\n");
        }
    }
    free(m);
}

// ---- the Gemma 3 format -------------------------------------------------------------------

// Gemma 3's chat template (tests/chat/gemma3_chat_template.jinja, the chat_template of
// google/gemma-3-*-it's tokenizer_config.json), statement by statement.
static void render_gemma3(const cJSON *msgs, const cJSON *tools, int flags,
                          struct g4_chat_emit *e) {
    // The template never reads tools or tool fields: refuse rather than drop them silently.
    if (g4_pyjson_truthy(tools)) {
        e->st = g4_fail(G4_ERR_UNSUPPORTED, "chat render: Gemma 3's chat format has no tools");
        return;
    }
    int idx = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, idx++)
        if (is_role(m, "tool") || g4_pyjson_truthy(get(m, "tool_calls")) ||
            g4_pyjson_truthy(get(m, "tool_responses"))) {
            e->st = g4_fail(G4_ERR_UNSUPPORTED,
                            "chat render: message %d: Gemma 3's chat format has no tool turns, "
                            "tool calls or tool responses", idx);
            return;
        }
    g4_chat_emit_ctl(e, "<bos>");
    // A leading system message becomes first_user_prefix: its text (not trimmed; of a parts
    // list only the first part's) + "\n\n".
    const cJSON *first = msgs->child, *prefix = NULL;
    if (is_role(first, "system")) {
        const cJSON *c = get(first, "content");
        prefix = cJSON_IsArray(c) ? get(c->child, "text") : c;
        if (!cJSON_IsString(prefix)) {
            e->st = g4_fail(G4_ERR_INVALID_ARGUMENT,
                            "chat render: the system message needs text content (Gemma 3)");
            return;
        }
        first = first->next;
    }
    idx = 0;
    for (const cJSON *m = first; m; m = m->next, idx++) {
        if (is_role(m, "user") != (idx % 2 == 0)) {
            e->st = g4_fail(G4_ERR_INVALID_ARGUMENT,
                            "chat render: Gemma 3 conversation roles must alternate "
                            "user/assistant/user/... (turn %d is \"%s\")", idx, role_of(m));
            return;
        }
        g4_chat_emit_ctl(e, "<start_of_turn>");
        g4_chat_emit_str(e, is_role(m, "assistant") ? "model" : role_of(m));
        g4_chat_emit_str(e, "\n");
        if (idx == 0 && prefix) {
            g4_chat_emit_str(e, prefix->valuestring);
            g4_chat_emit_str(e, "\n\n");
        }
        const cJSON *c = get(m, "content");
        if (cJSON_IsString(c)) {
            put_content(e, c->valuestring, 0);
        } else if (cJSON_IsArray(c)) {
            for (const cJSON *p = c->child; p; p = p->next)
                if (!strcmp(get(p, "type")->valuestring, "text") && cJSON_IsString(get(p, "text")))
                    put_content(e, get(p, "text")->valuestring, 0);
        } else {
            e->st = g4_fail(G4_ERR_INVALID_ARGUMENT,
                            "chat render: turn %d has no content (Gemma 3 needs text)", idx);
            return;
        }
        g4_chat_emit_ctl(e, "<end_of_turn>");
        g4_chat_emit_str(e, "\n");
    }
    if (flags & G4_CHAT_GEN_PROMPT) {
        g4_chat_emit_ctl(e, "<start_of_turn>");
        g4_chat_emit_str(e, "model\n");
    }
}

// ---- formats and sinks --------------------------------------------------------------------

typedef void (*render_fn)(const cJSON *msgs, const cJSON *tools, int flags,
                          struct g4_chat_emit *e);
static const render_fn FORMATS[] = {
    [G4_CHAT_FORMAT_GEMMA4] = render_gemma4,
    [G4_CHAT_FORMAT_GEMMA3] = render_gemma3,
};

const char *g4_chat_end_of_turn(enum g4_chat_format fmt) {
    return fmt == G4_CHAT_FORMAT_GEMMA3 ? "<end_of_turn>" : "<turn|>";
}

g4_status g4_chat_render_to(enum g4_chat_format fmt, const cJSON *messages, const cJSON *tools,
                            int flags, struct g4_chat_emit *e) {
    if ((unsigned)fmt >= G4_COUNT(FORMATS) || !FORMATS[fmt])
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: unknown format %d", (int)fmt);
    if (!cJSON_IsArray(messages) || !messages->child)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: empty conversation (no messages)");
    FORMATS[fmt](messages, tools, flags, e);
    return g4_chat_emit_finish(e);
}

g4_status g4_chat_render_text(enum g4_chat_format fmt, const cJSON *messages, const cJSON *tools,
                              int flags, char *buf, size_t cap, size_t *n_out) {
    if (!n_out) return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: n_out is NULL");
    *n_out = 0;
    // Sizing pass first, so a too-small buffer is left untouched rather than half written.
    struct g4_chat_emit e;
    g4_chat_emit_init_text(&e, NULL, 0);
    G4_TRY(g4_chat_render_to(fmt, messages, tools, flags, &e));
    *n_out = e.n;
    if (!buf) return G4_OK;
    if (cap < e.n)
        return g4_fail(G4_ERR_BUFFER_TOO_SMALL, "chat render: buffer holds %zu bytes, need %zu",
                       cap, e.n);
    size_t need = e.n;
    g4_chat_emit_init_text(&e, buf, need);
    G4_TRY(g4_chat_render_to(fmt, messages, tools, flags, &e));
    if (cap > e.n) buf[e.n] = '\0';
    return G4_OK;
}

g4_status g4_chat_render_ids(enum g4_chat_format fmt, const struct g4_tokenizer *tok,
                             const cJSON *messages, const cJSON *tools, int flags, int32_t **ids,
                             size_t *n) {
    *ids = NULL;
    *n = 0;
    struct g4_chat_emit e;
    g4_chat_emit_init_ids(&e, tok);
    g4_status st = g4_chat_render_to(fmt, messages, tools, flags, &e);
    if (st == G4_OK) {
        *ids = e.ids;
        *n = e.n_ids;
        e.ids = NULL;
    }
    g4_chat_emit_free(&e);
    return st;
}

g4_status g4_chat_render(const char *const *roles, const char *const *contents, size_t n_messages,
                         int flags, char *buf, size_t cap, size_t *n_out) {
    if (!n_out) return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: n_out is NULL");
    *n_out = 0;
    cJSON *msgs;
    G4_TRY(g4_chat_from_arrays(roles, contents, n_messages, &msgs));
    g4_status st =
        g4_chat_render_text(G4_CHAT_FORMAT_GEMMA4, msgs, NULL, flags, buf, cap, n_out);
    cJSON_Delete(msgs);
    return st;
}
