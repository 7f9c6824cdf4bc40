// Tool declarations in Gemma 4's format: a line-by-line port of format_parameters and
// format_function_declaration from Google's Gemma 4 chat template
// (tests/chat/gemma4_chat_template.jinja), Jinja semantics included (dictsort order, truthiness,
// `| upper` of a missing value being ""). Checked against transformers by tests/test_chat.c.
#include "tool_decl.h"

#include <stdlib.h>
#include <string.h>

#include "pyjson.h"
#include "tool_call.h"

#define D G4_TOOL_CALL_DELIM

const cJSON *g4_tool_decl_function(const cJSON *tool) {
    if (!cJSON_IsObject(tool)) return NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(tool, "function");
    if (cJSON_IsObject(f)) return f;
    if (!f && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tool, "name"))) return tool;
    return NULL;
}

g4_status g4_tool_decl_check(const cJSON *tools) {
    if (!cJSON_IsArray(tools))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "tools: expected a JSON array of tools");
    int i = 0;
    for (const cJSON *t = tools->child; t; t = t->next, i++) {
        const cJSON *f = g4_tool_decl_function(t);
        if (!f)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "tools[%d]: expected {\"type\": \"function\", \"function\": {...}}", i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return g4_fail(G4_ERR_INVALID_ARGUMENT, "tools[%d]: function has no name", i);
    }
    return G4_OK;
}

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

// Jinja `{{ v }}` of a scalar: a string as is, a number as str(), true/false as True/False.
static void put_plain(struct g4_chat_emit *e, const cJSON *v) {
    char num[40];
    if (cJSON_IsString(v)) g4_chat_emit_str(e, v->valuestring);
    else if (cJSON_IsNumber(v)) g4_chat_emit_text(e, num, g4_pyjson_number(v, num));
    else if (cJSON_IsBool(v)) g4_chat_emit_str(e, cJSON_IsTrue(v) ? "True" : "False");
    else if (cJSON_IsNull(v)) g4_chat_emit_str(e, "None");
}

// `value | upper` into buf (cap 128): a string upper-cased (ASCII), a list of strings as
// Python prints it upper-cased ("['STRING', 'NULL']"), anything else (missing) "".
static const char *upper(const cJSON *v, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    if (cJSON_IsString(v)) {
        for (const char *s = v->valuestring; *s && n + 1 < cap; s++)
            buf[n++] = (*s >= 'a' && *s <= 'z') ? (char)(*s - 32) : *s;
    } else if (cJSON_IsArray(v)) {
        buf[n++] = '[';
        for (const cJSON *c = v->child; c && n + 8 < cap; c = c->next) {
            if (!cJSON_IsString(c)) break;
            buf[n++] = '\'';
            for (const char *s = c->valuestring; *s && n + 4 < cap; s++)
                buf[n++] = (*s >= 'a' && *s <= 'z') ? (char)(*s - 32) : *s;
            buf[n++] = '\'';
            if (c->next) buf[n++] = ',', buf[n++] = ' ';
        }
        buf[n++] = ']';
    }
    buf[n] = '\0';
    return buf;
}

static void comma(struct g4_chat_emit *e, int *add_comma) {
    if (*add_comma) g4_chat_emit_str(e, ",");
    else *add_comma = 1;
}

static void required_list(struct g4_chat_emit *e, const cJSON *req) {
    g4_chat_emit_str(e, "required:[");
    for (const cJSON *c = cJSON_IsArray(req) ? req->child : NULL; c; c = c->next) {
        g4_chat_emit_ctl(e, D);
        put_plain(e, c);
        g4_chat_emit_ctl(e, D);
        if (c->next) g4_chat_emit_str(e, ",");
    }
    g4_chat_emit_str(e, "]");
}

static void format_parameters(struct g4_chat_emit *e, const cJSON *props, int filter_keys,
                              int depth);

static void format_items(struct g4_chat_emit *e, const cJSON *items, int depth) {
    const cJSON **keys;
    size_t n;
    g4_status st = g4_pyjson_dictsort(items, &keys, &n);
    if (st != G4_OK) {
        if (e->st == G4_OK) e->st = st;
        return;
    }
    g4_chat_emit_str(e, "items:{");
    int found = 0;
    char up[128];
    for (size_t i = 0; i < n; i++) {
        const cJSON *iv = keys[i];
        const char *ik = iv->string;
        if (cJSON_IsNull(iv)) continue;
        if (found) g4_chat_emit_str(e, ",");
        found = 1;
        if (strcmp(ik, "properties") == 0) {
            g4_chat_emit_str(e, "properties:{");
            if (cJSON_IsObject(iv)) format_parameters(e, iv, 0, depth + 1);
            g4_chat_emit_str(e, "}");
        } else if (strcmp(ik, "required") == 0) {
            required_list(e, iv);
        } else if (strcmp(ik, "type") == 0) {
            g4_chat_emit_str(e, "type:");
            if (cJSON_IsString(iv)) {
                g4_chat_emit_ctl(e, D);
                g4_chat_emit_str(e, upper(iv, up, sizeof up));
                g4_chat_emit_ctl(e, D);
            } else {
                // format_argument(item_value | map('upper') | list)
                g4_chat_emit_str(e, "[");
                for (const cJSON *c = cJSON_IsArray(iv) ? iv->child : NULL; c; c = c->next) {
                    g4_chat_emit_ctl(e, D);
                    g4_chat_emit_str(e, upper(c, up, sizeof up));
                    g4_chat_emit_ctl(e, D);
                    if (c->next) g4_chat_emit_str(e, ",");
                }
                g4_chat_emit_str(e, "]");
            }
        } else {
            g4_chat_emit_str(e, ik);
            g4_chat_emit_str(e, ":");
            g4_tool_call_format_argument(e, iv, 1);
        }
    }
    g4_chat_emit_str(e, "}");
    free(keys);
}

static void format_parameters(struct g4_chat_emit *e, const cJSON *props, int filter_keys,
                              int depth) {
    static const char *const standard[] = {"description", "type", "properties", "required",
                                           "nullable"};
    if (depth > 32) {
        if (e->st == G4_OK)
            e->st = g4_fail(G4_ERR_INVALID_ARGUMENT, "tools: schema nested deeper than 32");
        return;
    }
    const cJSON **keys;
    size_t n;
    g4_status st = g4_pyjson_dictsort(props, &keys, &n);
    if (st != G4_OK) {
        if (e->st == G4_OK) e->st = st;
        return;
    }
    int found = 0;
    char type[128];
    for (size_t i = 0; i < n; i++) {
        const cJSON *value = keys[i];
        const char *key = value->string;
        int add_comma = 0;
        if (filter_keys) {
            int is_std = 0;
            for (size_t k = 0; k < G4_COUNT(standard); k++) is_std |= strcmp(key, standard[k]) == 0;
            if (is_std) continue;
        }
        if (found) g4_chat_emit_str(e, ",");
        found = 1;
        g4_chat_emit_str(e, key);
        g4_chat_emit_str(e, ":{");
        const cJSON *desc = get(value, "description");
        if (g4_pyjson_truthy(desc)) {
            g4_chat_emit_str(e, "description:");
            g4_chat_emit_ctl(e, D);
            put_plain(e, desc);
            g4_chat_emit_ctl(e, D);
            add_comma = 1;
        }
        upper(get(value, "type"), type, sizeof type);
        if (strcmp(type, "STRING") == 0) {
            const cJSON *en = get(value, "enum");
            if (g4_pyjson_truthy(en)) {
                comma(e, &add_comma);
                g4_chat_emit_str(e, "enum:");
                g4_tool_call_format_argument(e, en, 1);
            }
        } else if (strcmp(type, "ARRAY") == 0) {
            const cJSON *items = get(value, "items");
            if (cJSON_IsObject(items) && items->child) {
                comma(e, &add_comma);
                format_items(e, items, depth);
            }
        }
        if (g4_pyjson_truthy(get(value, "nullable"))) {
            comma(e, &add_comma);
            g4_chat_emit_str(e, "nullable:true");
        }
        if (strcmp(type, "OBJECT") == 0) {
            const cJSON *p = get(value, "properties");
            if (cJSON_IsObject(p)) {
                comma(e, &add_comma);
                g4_chat_emit_str(e, "properties:{");
                format_parameters(e, p, 0, depth + 1);
                g4_chat_emit_str(e, "}");
            } else if (cJSON_IsObject(value)) {
                comma(e, &add_comma);
                g4_chat_emit_str(e, "properties:{");
                format_parameters(e, value, 1, depth + 1);
                g4_chat_emit_str(e, "}");
            }
            const cJSON *req = get(value, "required");
            if (g4_pyjson_truthy(req)) {
                comma(e, &add_comma);
                required_list(e, req);
            }
        }
        comma(e, &add_comma);
        g4_chat_emit_str(e, "type:");
        g4_chat_emit_ctl(e, D);
        g4_chat_emit_str(e, type);
        g4_chat_emit_ctl(e, D);
        g4_chat_emit_str(e, "}");
    }
    free(keys);
}

void g4_tool_decl_format(struct g4_chat_emit *e, const cJSON *tool) {
    const cJSON *f = g4_tool_decl_function(tool);
    char up[128];
    g4_chat_emit_str(e, "declaration:");
    put_plain(e, get(f, "name"));
    g4_chat_emit_str(e, "{description:");
    g4_chat_emit_ctl(e, D);
    put_plain(e, get(f, "description"));
    g4_chat_emit_ctl(e, D);
    const cJSON *params = get(f, "parameters");
    if (g4_pyjson_truthy(params)) {
        g4_chat_emit_str(e, ",parameters:{");
        const cJSON *props = get(params, "properties");
        if (g4_pyjson_truthy(props)) {
            g4_chat_emit_str(e, "properties:{");
            format_parameters(e, props, 0, 0);
            g4_chat_emit_str(e, "},");
        }
        const cJSON *req = get(params, "required");
        if (g4_pyjson_truthy(req)) {
            required_list(e, req);
            g4_chat_emit_str(e, ",");
        }
        const cJSON *type = get(params, "type");
        if (g4_pyjson_truthy(type)) {
            g4_chat_emit_str(e, "type:");
            g4_chat_emit_ctl(e, D);
            g4_chat_emit_str(e, upper(type, up, sizeof up));
            g4_chat_emit_ctl(e, D);
            g4_chat_emit_str(e, "}");
        }
    }
    const cJSON *resp = get(f, "response");
    if (resp) {
        g4_chat_emit_str(e, ",response:{");
        const cJSON *desc = get(resp, "description");
        if (g4_pyjson_truthy(desc)) {
            g4_chat_emit_str(e, "description:");
            g4_chat_emit_ctl(e, D);
            put_plain(e, desc);
            g4_chat_emit_ctl(e, D);
            g4_chat_emit_str(e, ",");
        }
        if (strcmp(upper(get(resp, "type"), up, sizeof up), "OBJECT") == 0) {
            g4_chat_emit_str(e, "type:");
            g4_chat_emit_ctl(e, D);
            g4_chat_emit_str(e, up);
            g4_chat_emit_ctl(e, D);
            g4_chat_emit_str(e, "}");
        }
    }
    g4_chat_emit_str(e, "}");
}
