// Test helpers; see harness.h.
#include "harness.h"

#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char slots[8][4096];
static int next_slot;

const char *g4_src_path(const char *rel) {
    char *s = slots[next_slot++ % 8];
    snprintf(s, 4096, "%s/%s", G4_SOURCE_DIR, rel);
    return s;
}

const char *g4_tmpdir(const char *tag) {
    char *s = slots[next_slot++ % 8];
    snprintf(s, 4096, "/tmp/g4test_%s_XXXXXX", tag);
    if (!mkdtemp(s)) return NULL;
    return s;
}

void g4_rm_rf(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

char *g4_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    if (n) *n = (size_t)len;
    return buf;
}

int g4_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

double g4_compare_rel(const float *got, const float *ref, size_t n, double tol, const char *what) {
    double max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= max_diff)) max_diff = d; // NaN propagates as a failure
    }
    double rel = max_ref > 0 ? max_diff / max_ref : max_diff;
    printf("%-40s n=%zu max|diff|=%.3e max|ref|=%.3e rel=%.3e (tol %.1e)\n", what, n, max_diff,
           max_ref, rel, tol);
    if (!(rel <= tol)) {
        int shown = 0;
        for (size_t i = 0; i < n && shown < 5; i++) {
            double d = fabs((double)got[i] - ref[i]);
            if (!(d <= tol * max_ref)) {
                printf("  mismatch [%zu]: got %.6f ref %.6f\n", i, got[i], ref[i]);
                shown++;
            }
        }
    }
    return rel;
}

int g4_reference_read(const char *fixture, struct g4_reference *r) {
    return g4_reference_read_file(fixture, "reference.bin", r);
}

int g4_reference_read_file(const char *fixture, const char *file, struct g4_reference *r) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/%s/%s", fixture, file);
    size_t n;
    memset(r, 0, sizeof *r);
    r->blob = g4_read_file(g4_src_path(rel), &n);
    if (!r->blob || n < 16 || memcmp(r->blob, "G4REF1\0\0", 8) != 0) return -1;
    memcpy(&r->n_tokens, r->blob + 8, 4);
    memcpy(&r->vocab, r->blob + 12, 4);
    size_t off = 16;
    r->tokens = (const int32_t *)(r->blob + off);
    off += (size_t)r->n_tokens * 4;
    r->logits = (const float *)(r->blob + off);
    off += (size_t)r->n_tokens * r->vocab * 4;
    if (off + 4 > n) return -1;
    memcpy(&r->n_gen, r->blob + off, 4);
    r->gen = (const int32_t *)(r->blob + off + 4);
    return off + 4 + (size_t)r->n_gen * 4 == n ? 0 : -1;
}

int g4_config_fixture(const char *name, void *cfg) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/configs/%s.json", name);
    size_t n;
    char *json = g4_read_file(g4_src_path(rel), &n);
    if (!json) return G4_ERR_IO;
    g4_status st = g4_config_parse(cfg, json, n, rel);
    free(json);
    return st;
}
