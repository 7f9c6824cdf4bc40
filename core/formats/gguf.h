// GGUF checkpoints (llama.cpp's format): a pure parser of a byte buffer (fuzzable, like the
// safetensors one) and files memory-mapped read-only. The layout (little-endian): magic "GGUF",
// version (2 or 3: the same layout), tensor count and metadata count (u64), the metadata
// key/values (typed; strings are a u64 length and bytes; arrays typed and counted), the tensor
// infos (name, n_dims, ne[0..n_dims), ggml type, offset into the data section), padding to
// general.alignment (default 32), and the data section. ne[0] is the contiguous dimension, so a
// matrix of ne = [cols, rows] is the row-major (rows, cols) matrix of the HF checkpoint.
// Everything is validated before a pointer is formed; tensor data is never read here.
#ifndef G4_GGUF_H
#define G4_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define G4_GGUF_MAX_DIMS 4       // GGML_MAX_DIMS
#define G4_GGUF_DEFAULT_ALIGNMENT 32

// Metadata value types (the numbers are GGUF's).
enum g4_gguf_type {
    G4_GGUF_UINT8 = 0,
    G4_GGUF_INT8 = 1,
    G4_GGUF_UINT16 = 2,
    G4_GGUF_INT16 = 3,
    G4_GGUF_UINT32 = 4,
    G4_GGUF_INT32 = 5,
    G4_GGUF_FLOAT32 = 6,
    G4_GGUF_BOOL = 7,
    G4_GGUF_STRING = 8,
    G4_GGUF_ARRAY = 9,
    G4_GGUF_UINT64 = 10,
    G4_GGUF_INT64 = 11,
    G4_GGUF_FLOAT64 = 12,
    G4_GGUF_TYPE_COUNT
};

// A string inside the buffer: n bytes at p, not NUL-terminated (may hold any bytes, even NUL).
struct g4_gguf_str {
    const char *p;
    uint64_t n;
};

// One metadata entry. A scalar is an array of one element of its own type, so one accessor
// serves both: type == ARRAY for arrays, elem_type is the type of the elements (== type for a
// scalar), n the element count (1 for a scalar). Nested arrays are G4_ERR_UNSUPPORTED.
struct g4_gguf_kv {
    char *key;                      // NUL-terminated copy (keys hold no NUL byte)
    enum g4_gguf_type type;
    enum g4_gguf_type elem_type;
    uint64_t n;
    const uint8_t *data;            // first element's bytes (numeric types; little-endian, unaligned)
    struct g4_gguf_str *strs;       // (n,) when elem_type == STRING
};

struct g4_gguf_tensor {
    char *name;                     // NUL-terminated copy, e.g. "blk.0.attn_q.weight"
    uint32_t ggml_type;             // as in the file
    enum g4_dtype dtype;            // its g4_dtype
    int n_dims;                     // 1..G4_GGUF_MAX_DIMS
    int64_t ne[G4_GGUF_MAX_DIMS];   // ne[0] contiguous; ne[i] = 1 for i >= n_dims
    uint64_t offset;                // into the data section; a multiple of the alignment
    size_t n_bytes;                 // == ne[0]/block * block_bytes * ne[1] * ..., validated
    const void *data;               // into the buffer (the mapping)
};

struct g4_gguf {
    uint32_t version;
    uint64_t alignment;             // general.alignment, or 32
    struct g4_gguf_kv *kv;          // (n_kv,) in file order
    int64_t n_kv;
    struct g4_gguf_tensor *tensors; // (n_tensors,) sorted by name
    int64_t n_tensors;
    size_t data_start;              // file offset of the data section
    void *map;                      // the file when opened with g4_gguf_load, else NULL
    size_t map_bytes;
    bool in_memory;                 // map is a malloc'd copy of the file, not a mapping
};

// Parses the GGUF image `buf` of `n` bytes into *g (zeroed first). Validates: magic, version
// (1 and big-endian files G4_ERR_UNSUPPORTED), counts against the bytes left (truncation is
// G4_ERR_FORMAT "truncated"), every key (non-empty, no NUL, not present twice) and value type,
// string and array lengths, general.alignment (a UINT32 power of two), tensor infos: name
// (non-empty, no NUL, unique), 1..4 dims with an overflow-checked element count, a known ggml
// type (others G4_ERR_UNSUPPORTED naming the tensor and the type), ne[0] a whole number of
// blocks, offset a multiple of the alignment, [offset, offset + n_bytes) inside the data section,
// float data aligned to its element size, no two tensors overlapping. `what` names the file in
// messages (may be NULL). On error *g is freed and zeroed. This is the fuzzing entry point.
g4_status g4_gguf_parse(struct g4_gguf *g, const uint8_t *buf, size_t n, const char *what);

// Maps the regular file `path` read-only (MAP_PRIVATE, PROT_READ), or with in_memory reads it
// into memory (then the file may change or vanish while loaded), and parses it. Errors as
// g4_file_open (G4_ERR_IO) and g4_gguf_parse, naming the path. On error *g is zeroed.
g4_status g4_gguf_load(struct g4_gguf *g, const char *path, bool in_memory);
// g4_gguf_load mapped.
g4_status g4_gguf_open(struct g4_gguf *g, const char *path);

// Releases tables and the mapping. Accepts a zeroed struct; zeroes it.
void g4_gguf_free(struct g4_gguf *g);

// Metadata entry by exact key, NULL when absent. Linear: files hold tens of keys.
const struct g4_gguf_kv *g4_gguf_find_kv(const struct g4_gguf *g, const char *key);
// Tensor by exact name (binary search), NULL when absent.
const struct g4_gguf_tensor *g4_gguf_find_tensor(const struct g4_gguf *g, const char *name);

// Element i (< kv->n) of an entry. _int: any integer type (false for other types, or a UINT64
// above INT64_MAX); _float: FLOAT32 or FLOAT64; _bool: BOOL (any non-zero byte is true); _str:
// STRING. False also when i is out of range.
bool g4_gguf_kv_int(const struct g4_gguf_kv *kv, uint64_t i, int64_t *out);
bool g4_gguf_kv_float(const struct g4_gguf_kv *kv, uint64_t i, double *out);
bool g4_gguf_kv_bool(const struct g4_gguf_kv *kv, uint64_t i, bool *out);
bool g4_gguf_kv_str(const struct g4_gguf_kv *kv, uint64_t i, struct g4_gguf_str *out);

// "UINT32", "ARRAY", ... ("?" for an unknown value).
const char *g4_gguf_type_name(enum g4_gguf_type t);
// ggml type id -> g4_dtype; false for types gemma4 cannot hold. *name gets ggml's name of the
// type ("Q4_1", "IQ2_XS"; "unknown" for ids ggml does not define) either way.
bool g4_gguf_ggml_dtype(uint32_t ggml_type, enum g4_dtype *out, const char **name);

#endif
