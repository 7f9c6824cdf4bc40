// Gemma 4 tool-call argument syntax: rendering from JSON (the template's format_argument and
// tool-call / tool-response blocks) and parsing the model's calls back into JSON; see tool_call.h.
#include "tool_call.h"

#include <stdlib.h>
#include <string.h>

#include "pyjson.h"

void g4_tool_call_format_argument(struct g4_chat_emit *e, const cJSON *v, int escape_keys) {
    char num[40];
    if (!v || cJSON_IsNull(v)) {
        g4_chat_emit_str(e, "null");
    } else if (cJSON_IsString(v)) {
        g4_chat_emit_ctl(e, G4_TOOL_CALL_DELIM);
        g4_chat_emit_str(e, v->valuestring);
        g4_chat_emit_ctl(e, G4_TOOL_CALL_DELIM);
    } else if (cJSON_IsBool(v)) {
        g4_chat_emit_str(e, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsObject(v)) {
        const cJSON **keys;
        size_t n;
        g4_status st = g4_pyjson_dictsort(v, &keys, &n);
        if (st != G4_OK) {
            if (e->st == G4_OK) e->st = st;
            return;
        }
        g4_chat_emit_str(e, "{");
        for (size_t i = 0; i < n; i++) {
            if (i) g4_chat_emit_str(e, ",");
            if (escape_keys) g4_chat_emit_ctl(e, G4_TOOL_CALL_DELIM);
            g4_chat_emit_str(e, keys[i]->string);
            if (escape_keys) g4_chat_emit_ctl(e, G4_TOOL_CALL_DELIM);
            g4_chat_emit_str(e, ":");
            g4_tool_call_format_argument(e, keys[i], escape_keys);
        }
        g4_chat_emit_str(e, "}");
        free(keys);
    } else if (cJSON_IsArray(v)) {
        g4_chat_emit_str(e, "[");
        for (const cJSON *c = v->child; c; c = c->next) {
            g4_tool_call_format_argument(e, c, escape_keys);
            if (c->next) g4_chat_emit_str(e, ",");
        }
        g4_chat_emit_str(e, "]");
    } else if (cJSON_IsNumber(v)) {
        g4_chat_emit_text(e, num, g4_pyjson_number(v, num));
    }
}

// key:value pairs of an object in dictsort order, keys bare (the call and response blocks).
static void format_pairs(struct g4_chat_emit *e, const cJSON *obj) {
    const cJSON **keys;
    size_t n;
    g4_status st = g4_pyjson_dictsort(obj, &keys, &n);
    if (st != G4_OK) {
        if (e->st == G4_OK) e->st = st;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i) g4_chat_emit_str(e, ",");
        g4_chat_emit_str(e, keys[i]->string);
        g4_chat_emit_str(e, ":");
        g4_tool_call_format_argument(e, keys[i], 0);
    }
    free(keys);
}

void g4_tool_call_format(struct g4_chat_emit *e, const char *name, const cJSON *args) {
    g4_chat_emit_str(e, "call:");
    g4_chat_emit_str(e, name);
    g4_chat_emit_str(e, "{");
    if (args && cJSON_IsObject(args)) format_pairs(e, args);
    else if (args && !cJSON_IsNull(args) && e->st == G4_OK)
        e->st = g4_fail(G4_ERR_INVALID_ARGUMENT,
                        "tool call \"%.64s\": arguments must be a JSON object", name);
    g4_chat_emit_str(e, "}");
}

void g4_tool_call_format_response(struct g4_chat_emit *e, const char *name, const cJSON *result) {
    g4_chat_emit_ctl(e, "<|tool_response>");
    g4_chat_emit_str(e, "response:");
    g4_chat_emit_str(e, name);
    g4_chat_emit_str(e, "{");
    if (result && cJSON_IsObject(result)) {
        format_pairs(e, result);
    } else {
        g4_chat_emit_str(e, "value:");
        g4_tool_call_format_argument(e, result, 0);
    }
    g4_chat_emit_str(e, "}");
    g4_chat_emit_ctl(e, "<tool_response|>");
}

// ---- parsing ------------------------------------------------------------------------------

struct parser {
    const char *s, *p, *end;
    const char *err; // what was expected where parsing stopped
    int depth;
};

static const size_t DLEN = sizeof G4_TOOL_CALL_DELIM - 1;

static int at_delim(const struct parser *ps) {
    return (size_t)(ps->end - ps->p) >= DLEN && memcmp(ps->p, G4_TOOL_CALL_DELIM, DLEN) == 0;
}

static void skip_ws(struct parser *ps) {
    while (ps->p < ps->end && strchr(" \t\r\n", *ps->p) && *ps->p) ps->p++;
}

// <|"|>...<|"|> -> malloc'd string, or NULL with ps->err set.
static char *parse_delimited(struct parser *ps) {
    ps->p += DLEN;
    const char *a = ps->p;
    while (ps->p < ps->end && !at_delim(ps)) ps->p++;
    if (ps->p >= ps->end) {
        ps->err = "a closing <|\"|> string delimiter";
        return NULL;
    }
    size_t n = (size_t)(ps->p - a);
    char *out = malloc(n + 1);
    if (!out) {
        ps->err = "memory";
        return NULL;
    }
    memcpy(out, a, n);
    out[n] = '\0';
    ps->p += DLEN;
    return out;
}

static cJSON *parse_value(struct parser *ps);

// Object body after '{': (key ':' value) (',' key ':' value)* '}'.
static cJSON *parse_object_body(struct parser *ps) {
    cJSON *obj = cJSON_CreateObject();
    if (!obj) {
        ps->err = "memory";
        return NULL;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        skip_ws(ps);
        char *key;
        if (at_delim(ps)) {
            key = parse_delimited(ps);
        } else {
            const char *a = ps->p;
            while (ps->p < ps->end && *ps->p != ':' && *ps->p != '}' && *ps->p != ',' &&
                   !at_delim(ps))
                ps->p++;
            const char *b = ps->p;
            while (b > a && strchr(" \t\r\n", b[-1])) b--;
            if (b == a || ps->p >= ps->end || *ps->p != ':') {
                ps->err = ps->p >= ps->end ? "more of the call (it is truncated)" : "key:value";
                cJSON_Delete(obj);
                return NULL;
            }
            key = malloc((size_t)(b - a) + 1);
            if (key) {
                memcpy(key, a, (size_t)(b - a));
                key[b - a] = '\0';
            } else {
                ps->err = "memory";
            }
        }
        if (!key) {
            cJSON_Delete(obj);
            return NULL;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            ps->err = ps->p >= ps->end ? "more of the call (it is truncated)" : "':' after a key";
            free(key);
            cJSON_Delete(obj);
            return NULL;
        }
        ps->p++;
        cJSON *v = parse_value(ps);
        if (!v) {
            free(key);
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, key, v);
        free(key);
        skip_ws(ps);
        if (ps->p >= ps->end) {
            ps->err = "more of the call (it is truncated)";
            cJSON_Delete(obj);
            return NULL;
        }
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return obj;
        }
        ps->err = "',' or '}' after a value";
        cJSON_Delete(obj);
        return NULL;
    }
}

static cJSON *parse_array_body(struct parser *ps) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) {
        ps->err = "memory";
        return NULL;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        cJSON *v = parse_value(ps);
        if (!v) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, v);
        skip_ws(ps);
        if (ps->p >= ps->end) {
            ps->err = "more of the call (it is truncated)";
            cJSON_Delete(arr);
            return NULL;
        }
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return arr;
        }
        ps->err = "',' or ']' in an array";
        cJSON_Delete(arr);
        return NULL;
    }
}

// A bare scalar up to the next ',', '}' or ']': a JSON number, true/false/null, else a string.
static cJSON *parse_bare(struct parser *ps) {
    const char *a = ps->p;
    while (ps->p < ps->end && !strchr(",}]", *ps->p) && !at_delim(ps)) ps->p++;
    if (ps->p >= ps->end) {
        ps->err = "more of the call (it is truncated)";
        return NULL;
    }
    const char *b = ps->p;
    while (b > a && strchr(" \t\r\n", b[-1])) b--;
    size_t n = (size_t)(b - a);
    if (n == 0) {
        ps->err = "a value";
        return NULL;
    }
    if (n == 4 && memcmp(a, "true", 4) == 0) return cJSON_CreateTrue();
    if (n == 5 && memcmp(a, "false", 5) == 0) return cJSON_CreateFalse();
    if (n == 4 && memcmp(a, "null", 4) == 0) return cJSON_CreateNull();
    char *tmp = malloc(n + 1);
    if (!tmp) {
        ps->err = "memory";
        return NULL;
    }
    memcpy(tmp, a, n);
    tmp[n] = '\0';
    cJSON *v = NULL;
    // A JSON number exactly (cJSON accepts it whole) becomes a number; anything else a string.
    const char *num_end = NULL;
    if (strchr("-0123456789", tmp[0])) {
        cJSON *num = cJSON_ParseWithLengthOpts(tmp, n, &num_end, 0);
        if (num && cJSON_IsNumber(num) && num_end == tmp + n) {
            v = num;
            if (strpbrk(tmp, ".eE")) v->type |= G4_PYJSON_FLOAT;
        } else {
            cJSON_Delete(num);
        }
    }
    if (!v) v = cJSON_CreateString(tmp);
    free(tmp);
    if (!v) ps->err = "memory";
    return v;
}

static cJSON *parse_value(struct parser *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) {
        ps->err = "more of the call (it is truncated)";
        return NULL;
    }
    if (++ps->depth > 64) {
        ps->err = "at most 64 levels of nesting";
        return NULL;
    }
    cJSON *v;
    if (at_delim(ps)) {
        char *s = parse_delimited(ps);
        v = s ? cJSON_CreateString(s) : NULL;
        if (s && !v) ps->err = "memory";
        free(s);
    } else if (*ps->p == '{') {
        ps->p++;
        v = parse_object_body(ps);
    } else if (*ps->p == '[') {
        ps->p++;
        v = parse_array_body(ps);
    } else {
        v = parse_bare(ps);
    }
    ps->depth--;
    return v;
}

g4_status g4_tool_call_parse(const char *text, size_t len, char **name, cJSON **args) {
    *name = NULL;
    *args = NULL;
    struct parser ps = {text, text, text + len, NULL, 0};
    skip_ws(&ps);
    if ((size_t)(ps.end - ps.p) < 5 || memcmp(ps.p, "call:", 5) != 0)
        return g4_fail(G4_ERR_FORMAT, "tool call: expected \"call:NAME{...}\" at byte %zu",
                       (size_t)(ps.p - text));
    ps.p += 5;
    const char *a = ps.p;
    while (ps.p < ps.end && *ps.p != '{') ps.p++;
    const char *b = ps.p;
    while (b > a && strchr(" \t\r\n", b[-1])) b--;
    if (ps.p >= ps.end)
        return g4_fail(G4_ERR_FORMAT, "tool call: no '{' after the name (truncated call?)");
    if (b == a) return g4_fail(G4_ERR_FORMAT, "tool call: empty function name");
    for (const char *c = a; c < b; c++)
        if (strchr(" \t\r\n,:}[]<>\"", *c))
            return g4_fail(G4_ERR_FORMAT, "tool call: function name has '%c' at byte %zu", *c,
                           (size_t)(c - text));
    ps.p++;
    cJSON *obj = parse_object_body(&ps);
    if (!obj)
        return g4_fail(G4_ERR_FORMAT, "tool call: expected %s at byte %zu", ps.err,
                       (size_t)(ps.p - text));
    skip_ws(&ps);
    if (ps.p != ps.end) {
        cJSON_Delete(obj);
        return g4_fail(G4_ERR_FORMAT, "tool call: text after the closing '}' at byte %zu",
                       (size_t)(ps.p - text));
    }
    char *nm = malloc((size_t)(b - a) + 1);
    if (!nm) {
        cJSON_Delete(obj);
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "tool call name");
    }
    memcpy(nm, a, (size_t)(b - a));
    nm[b - a] = '\0';
    *name = nm;
    *args = obj;
    return G4_OK;
}
