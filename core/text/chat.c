// Gemma 4 chat prompt rendering for plain-text messages: a hand-written equivalent of the
// text path of Google's Gemma 4 chat template (tests/chat/gemma4_chat_template.jinja, the
// 2026-07-09 "canonical" template of google/gemma-4-E2B-it) as run by transformers'
// apply_chat_template. No template engine, no tools, no images, thinking off.
// tests/test_chat.c checks it byte-for-byte against transformers' output.
#include "chat.h"

#include <stdint.h>
#include <string.h>

// Output sink: counts every byte, stores them only when buf is non-NULL (the sizing pass).
struct emit {
    char *buf;
    size_t n;
};

static void put(struct emit *e, const char *s, size_t len) {
    if (e->buf && len) memcpy(e->buf + e->n, s, len);
    e->n += len;
}

static void puts_(struct emit *e, const char *s) { put(e, s, strlen(s)); }

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
static int is_py_space(int32_t cp) {
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

// Emits content | trim (user/system turns) or strip_thinking(content), which trims the joined
// pieces (model turns). Trim applies to the joined text, so the first and last non-whitespace
// characters are found across pieces first, then each piece is emitted clipped to that range.
static void put_content(struct emit *e, const char *text, int strip_thinking) {
    const char *end = text + strlen(text);
    const char *lo = NULL, *hi = NULL; // [lo, hi): first to last non-whitespace character
    struct piece_iter it = {text, end, strip_thinking};
    const char *a, *b;
    while (next_piece(&it, &a, &b)) {
        for (const char *p = a; p < b;) {
            int32_t cp;
            size_t len = utf8_char((const unsigned char *)p, (const unsigned char *)b, &cp);
            if (!is_py_space(cp)) {
                if (!lo) lo = p;
                hi = p + len;
            }
            p += len;
        }
    }
    if (!lo) return; // empty or all whitespace
    it = (struct piece_iter){text, end, strip_thinking};
    while (next_piece(&it, &a, &b)) {
        if (a < lo) a = lo < b ? lo : b;
        if (b > hi) b = hi > a ? hi : a;
        put(e, a, (size_t)(b - a));
    }
}

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_MODEL, ROLE_UNKNOWN };

static enum role parse_role(const char *s) {
    static const char *const names[] = {"system", "user", "assistant", "model"};
    for (size_t i = 0; i < G4_COUNT(names); i++)
        if (strcmp(s, names[i]) == 0) return (enum role)i;
    return ROLE_UNKNOWN;
}

// The template's text path, with its message['role'] comparisons kept literal: "assistant"
// and "model" both render as a model turn, but only a literal "assistant" message continues
// (or is continued by) an adjacent model turn, exactly as upstream:
//   continue_same_model_turn = role == 'model' and prev_non_tool_role == 'assistant'
//   continues_into_next      = role == 'model' and next role == 'assistant'  (no tool calls)
// So [assistant "a", assistant "b"] renders one turn "<|turn>model\nab<turn|>\n".
// Roles were validated by the caller.
static void render(const char *const *roles, const char *const *contents, size_t n, int add_gen,
                   struct emit *e) {
    puts_(e, "<bos>");
    size_t first = 0;
    if (parse_role(roles[0]) == ROLE_SYSTEM) {
        // A leading system message becomes the system turn (where <|think|> and tool
        // declarations would also go); later system messages are ordinary turns.
        puts_(e, "<|turn>system\n");
        put_content(e, contents[0], 0);
        puts_(e, "<turn|>\n");
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        enum role r = parse_role(roles[i]);
        int is_model = r == ROLE_ASSISTANT || r == ROLE_MODEL;
        int continues = is_model && i > first && parse_role(roles[i - 1]) == ROLE_ASSISTANT;
        int into_next = is_model && i + 1 < n && parse_role(roles[i + 1]) == ROLE_ASSISTANT;
        if (!continues) {
            puts_(e, "<|turn>");
            puts_(e, is_model ? "model" : r == ROLE_SYSTEM ? "system" : "user");
            puts_(e, "\n");
        }
        put_content(e, contents[i], is_model);
        if (!into_next) puts_(e, "<turn|>\n");
    }
    // Thinking off: the small-model (E2B/E4B) template ends the prompt here; the 26B/31B
    // template adds an empty thought channel.
    if (add_gen) puts_(e, "<|turn>model\n");
    if (add_gen == G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT) puts_(e, "<|channel>thought\n<channel|>");
}

g4_status g4_chat_render(const char *const *roles, const char *const *contents, size_t n_messages,
                         int add_generation_prompt, char *buf, size_t cap, size_t *n_out) {
    if (!n_out) return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: n_out is NULL");
    *n_out = 0;
    // transformers' apply_chat_template raises ValueError for an empty conversation.
    if (n_messages == 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: empty conversation (n_messages 0)");
    if (!roles || !contents)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: %s is NULL",
                       !roles ? "roles" : "contents");
    for (size_t i = 0; i < n_messages; i++) {
        if (!roles[i])
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: message %zu has a NULL role", i);
        if (parse_role(roles[i]) == ROLE_UNKNOWN)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "chat render: message %zu has unknown role \"%.32s\" (expected "
                           "system, user, assistant or model)",
                           i, roles[i]);
        if (!contents[i])
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "chat render: message %zu has NULL content",
                           i);
    }
    // Sizing pass first, so a too-small buffer is left untouched rather than half written.
    struct emit e = {NULL, 0};
    render(roles, contents, n_messages, add_generation_prompt, &e);
    *n_out = e.n;
    if (!buf) return G4_OK;
    if (cap < e.n)
        return g4_fail(G4_ERR_BUFFER_TOO_SMALL, "chat render: buffer holds %zu bytes, need %zu",
                       cap, e.n);
    e = (struct emit){buf, 0};
    render(roles, contents, n_messages, add_generation_prompt, &e);
    if (cap > e.n) buf[e.n] = '\0';
    return G4_OK;
}
