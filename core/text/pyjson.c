// Python-flavoured JSON on top of cJSON; see pyjson.h.
#include "pyjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

// Marks the number nodes of `v` in document order with the float flags scanned from the text.
static void mark_floats(cJSON *v, const unsigned char *flags, size_t n, size_t *k) {
    for (; v; v = v->next) {
        if (cJSON_IsNumber(v) && *k < n && flags[(*k)++]) v->type |= G4_PYJSON_FLOAT;
        if (v->child) mark_floats(v->child, flags, n, k);
    }
}

g4_status g4_pyjson_parse(const char *text, size_t len, const char *what, cJSON **out) {
    *out = NULL;
    if (!text) return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s is NULL", what);
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s: invalid JSON near byte %zu", what, at);
    }
    // cJSON stores every number as a double; Python keeps "1.0" a float and "1" an int, and
    // templates print them differently, so the lexical kind is scanned here (strings skipped).
    unsigned char *flags = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            unsigned char is_float = 0;
            for (; i < len && strchr("+-0123456789.eE", text[i]) && text[i]; i++)
                if (text[i] == '.' || text[i] == 'e' || text[i] == 'E') is_float = 1;
            if (n == cap) {
                cap = cap ? 2 * cap : 32;
                unsigned char *p = realloc(flags, cap);
                if (!p) {
                    free(flags);
                    cJSON_Delete(v);
                    return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: number flags", what);
                }
                flags = p;
            }
            flags[n++] = is_float;
        } else {
            i++;
        }
    }
    size_t k = 0;
    mark_floats(v, flags, n, &k);
    free(flags);
    *out = v;
    return G4_OK;
}

size_t g4_pyjson_number(const cJSON *num, char *buf) {
    double d = num->valuedouble;
    if (!(num->type & G4_PYJSON_FLOAT) && fabs(d) < 9007199254740992.0)
        return (size_t)snprintf(buf, 32, "%.0f", d);
    if (isnan(d)) return (size_t)snprintf(buf, 32, "nan");
    if (isinf(d)) return (size_t)snprintf(buf, 32, d < 0 ? "-inf" : "inf");
    // repr(): the shortest digits that round-trip, then Python's layout (fixed notation for
    // decimal exponents -4 <= e < 16, else d.ddde+XX), always with a '.' or an exponent.
    char e[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    const char *p = e;
    int neg = *p == '-';
    if (neg) p++;
    char digits[20];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    size_t n = 0;
    if (neg) buf[n++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = -1; i > exp10; i--) buf[n++] = '0';
            for (int i = 0; i < nd; i++) buf[n++] = digits[i];
        } else {
            for (int i = 0; i <= exp10; i++) buf[n++] = i < nd ? digits[i] : '0';
            buf[n++] = '.';
            if (nd > exp10 + 1)
                for (int i = exp10 + 1; i < nd; i++) buf[n++] = digits[i];
            else
                buf[n++] = '0';
        }
    } else {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            for (int i = 1; i < nd; i++) buf[n++] = digits[i];
        }
        n += (size_t)snprintf(buf + n, 32 - n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    buf[n] = '\0';
    return n;
}

int g4_pyjson_truthy(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    if (cJSON_IsNumber(v)) return v->valuedouble != 0;
    if (cJSON_IsString(v)) return v->valuestring && v->valuestring[0];
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
    return 1;
}

// Key comparison of dictsort(case_sensitive=False): ASCII letters folded, bytes otherwise (UTF-8
// byte order is code point order; non-ASCII case folding is not applied).
static int keycmp(const char *a, const char *b) {
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y || !x) return (int)x - (int)y;
    }
}

g4_status g4_pyjson_dictsort(const cJSON *obj, const cJSON ***keys, size_t *n) {
    *keys = NULL;
    *n = 0;
    size_t count = 0;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) count++;
    if (!count) return G4_OK;
    const cJSON **v;
    G4_TRY(g4_calloc((void **)&v, count, sizeof *v, "dictsort"));
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next) {
        // insertion sort: stable, and objects are small
        size_t j = i++;
        while (j > 0 && keycmp(v[j - 1]->string, c->string) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = c;
    }
    *keys = v;
    *n = count;
    return G4_OK;
}

// Growable output for the printer.
struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
};

static void sput(struct sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void put_string(struct sbuf *b, const char *s) {
    sput(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sput(b, "\\\"", 2); break;
        case '\\': sput(b, "\\\\", 2); break;
        case '\n': sput(b, "\\n", 2); break;
        case '\r': sput(b, "\\r", 2); break;
        case '\t': sput(b, "\\t", 2); break;
        case '\b': sput(b, "\\b", 2); break;
        case '\f': sput(b, "\\f", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sput(b, esc, 6);
            } else {
                sput(b, (const char *)p, 1);
            }
        }
    }
    sput(b, "\"", 1);
}

static void put_value(struct sbuf *b, const cJSON *v) {
    char num[40];
    if (cJSON_IsNull(v)) sput(b, "null", 4);
    else if (cJSON_IsTrue(v)) sput(b, "true", 4);
    else if (cJSON_IsFalse(v)) sput(b, "false", 5);
    else if (cJSON_IsNumber(v)) {
        size_t n = g4_pyjson_number(v, num);
        if (strchr(num, 'n')) sput(b, "null", 4); // nan/inf are not JSON
        else sput(b, num, n);
    } else if (cJSON_IsString(v)) put_string(b, v->valuestring ? v->valuestring : "");
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v);
        sput(b, obj ? "{" : "[", 1);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child) sput(b, ",", 1);
            if (obj) {
                put_string(b, c->string ? c->string : "");
                sput(b, ":", 1);
            }
            put_value(b, c);
        }
        sput(b, obj ? "}" : "]", 1);
    } else {
        sput(b, "null", 4);
    }
}

g4_status g4_pyjson_print(const cJSON *v, char **out) {
    struct sbuf b = {0};
    put_value(&b, v);
    if (b.oom || !b.s) {
        free(b.s);
        *out = NULL;
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "JSON output");
    }
    *out = b.s;
    return G4_OK;
}
