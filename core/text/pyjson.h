// JSON values as Python (and so Jinja and transformers' chat templates) sees them: cJSON trees
// whose numbers remember whether the JSON text wrote them as floats ("1.0", "2e3") or ints, the
// str() of those numbers, Jinja's dictsort order, truthiness, and a compact JSON printer that
// keeps floats floats. Chat rendering and tool-call parsing build on it.
#ifndef G4_PYJSON_H
#define G4_PYJSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "status.h"

// Set in cJSON's type field of a number that Python would hold as a float. cJSON only looks at
// the low byte for the kind and at bits 8 and 9 for ownership, so a higher bit is free.
#define G4_PYJSON_FLOAT (1 << 12)

// Parses len bytes of JSON text (G4_ERR_INVALID_ARGUMENT naming `what` and the byte offset on
// a syntax error). Numbers with '.', 'e' or 'E' get G4_PYJSON_FLOAT. Free with cJSON_Delete.
g4_status g4_pyjson_parse(const char *text, size_t len, const char *what, cJSON **out);

// Python str() of a number: ints in decimal (exact up to 2^53: cJSON keeps a double), floats as
// repr() ("1.0", "0.5", "1e-05", "1.5e+16"). buf holds at least 32 bytes; returns the length.
size_t g4_pyjson_number(const cJSON *num, char *buf);

// Jinja truthiness: false for null, false, 0, "", [], {}; true otherwise (and for NULL: false).
int g4_pyjson_truthy(const cJSON *v);

// Jinja's dictsort (case-insensitive key order, stable): fills keys[0, n) with the object's
// members in that order; *keys is malloc'd (NULL for an empty object), *n their count.
g4_status g4_pyjson_dictsort(const cJSON *obj, const cJSON ***keys, size_t *n);

// Compact JSON ("{"a":1,"b":[true,"x"]}") with floats printed as Python's repr and non-ASCII
// kept as UTF-8 (json.dumps(separators=(",", ":"), ensure_ascii=False)). malloc'd, NUL-terminated.
g4_status g4_pyjson_print(const cJSON *v, char **out);

#endif
