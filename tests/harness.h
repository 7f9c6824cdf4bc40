// Shared test helpers: fixture paths, whole-file reads, array comparison with a printed report.
// Used by every tests/test_*.c; cmocka must be included by the test before this header.
#ifndef G4_HARNESS_H
#define G4_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifndef G4_COUNT
#define G4_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#endif

// Path under the source tree, e.g. g4_src_path("tests/golden/e2b"). Static buffer per call slot (8).
const char *g4_src_path(const char *rel);
// Fresh temporary directory (removed by g4_rm_rf). Returns a static buffer per call slot (8).
const char *g4_tmpdir(const char *tag);
void g4_rm_rf(const char *path);
// Reads a whole file; returns malloc'd bytes (NUL-terminated) or NULL. *n gets the byte count.
char *g4_read_file(const char *path, size_t *n);
int g4_write_file(const char *path, const void *data, size_t n);

// tests/golden/<fixture>/reference.bin (format: tests/golden/README.md). Returns 0 on success.
struct g4_reference {
    int32_t n_tokens, vocab, n_gen;
    const int32_t *tokens; // (n_tokens,)
    const float *logits;   // (n_tokens, vocab) transformers' float32 logits
    const int32_t *gen;    // (n_gen,) transformers' greedy continuation
    char *blob;            // owns the above; free() it
};
int g4_reference_read(const char *fixture, struct g4_reference *r);
// The same for another file of that format in the fixture (e.g. "reference_bf16act.bin").
int g4_reference_read_file(const char *fixture, const char *file, struct g4_reference *r);

// Parses tests/configs/<name>.json into *cfg (struct g4_config *); returns its g4_status.
int g4_config_fixture(const char *name, void *cfg);

// max |a-b| / max |ref|, printing max abs error, the ratio and the first mismatches over tol.
double g4_compare_rel(const float *got, const float *ref, size_t n, double tol, const char *what);

#endif
