// generation_config.json reader; see generation_config.h.
#include "generation_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

g4_status g4_generation_config_load(struct g4_generation_config *out, const char *dir) {
    *out = (struct g4_generation_config){false, false, 1.0f, 50, 1.0f};
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return G4_OK;
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? 2 * cap : 8192;
            if (cap > (1u << 20)) break; // a generation config is small; stop reading junk
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                fclose(f);
                return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s", path);
            }
            text = p;
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    cJSON *j = text ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return g4_fail(G4_ERR_FORMAT, "%s: not a JSON object", path);
    }
    g4_status st = G4_OK;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "do_sample")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) st = g4_fail(G4_ERR_FORMAT, "%s: do_sample is not a boolean", path);
        out->do_sample = cJSON_IsTrue(v);
    }
    if (st == G4_OK && (v = cJSON_GetObjectItemCaseSensitive(j, "temperature")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            st = g4_fail(G4_ERR_FORMAT, "%s: temperature must be a number >= 0", path);
        out->temperature = (float)v->valuedouble;
    }
    if (st == G4_OK && (v = cJSON_GetObjectItemCaseSensitive(j, "top_k")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9)
            st = g4_fail(G4_ERR_FORMAT, "%s: top_k must be an integer >= 0", path);
        out->top_k = (int32_t)v->valuedouble;
    }
    if (st == G4_OK && (v = cJSON_GetObjectItemCaseSensitive(j, "top_p")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 1))
            st = g4_fail(G4_ERR_FORMAT, "%s: top_p must be in (0, 1]", path);
        out->top_p = (float)v->valuedouble;
    }
    cJSON_Delete(j);
    out->present = st == G4_OK;
    return st;
}
