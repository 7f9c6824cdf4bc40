// GGUF reader; see gguf.h. A cursor walks the header with every read bounds-checked, counts are
// checked against the bytes left before anything is allocated, and all sizes are
// overflow-checked. Little-endian hosts only (the engines assume it too).
#define _XOPEN_SOURCE 700

#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"

// ggml's type ids (ggml.h enum ggml_type); the gaps are ids ggml has retired.
static const char *const ggml_names[] = {
    [0] = "F32",      [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",    [6] = "Q5_0",
    [7] = "Q5_1",     [8] = "Q8_0",    [9] = "Q8_1",    [10] = "Q2_K",   [11] = "Q3_K",
    [12] = "Q4_K",    [13] = "Q5_K",   [14] = "Q6_K",   [15] = "Q8_K",   [16] = "IQ2_XXS",
    [17] = "IQ2_XS",  [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S",
    [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",     [25] = "I16",    [26] = "I32",
    [27] = "I64",     [28] = "F64",    [29] = "IQ1_M",  [30] = "BF16",   [34] = "TQ1_0",
    [35] = "TQ2_0",   [39] = "MXFP4",  [40] = "NVFP4",  [41] = "Q1_0",
};

// The ggml types gemma4 holds. The integer and F64 types parse (as in safetensors) so that a
// file carrying one outside the text model still opens; g4_weights_bind refuses them in a role.
static const struct { uint32_t ggml; enum g4_dtype dt; } ggml_dtypes[] = {
    {0, G4_DTYPE_F32},   {1, G4_DTYPE_F16},   {30, G4_DTYPE_BF16}, {2, G4_DTYPE_Q4_0},
    {6, G4_DTYPE_Q5_0},  {8, G4_DTYPE_Q8_0},  {12, G4_DTYPE_Q4_K}, {13, G4_DTYPE_Q5_K},
    {14, G4_DTYPE_Q6_K}, {24, G4_DTYPE_I8},   {25, G4_DTYPE_I16},  {26, G4_DTYPE_I32},
    {27, G4_DTYPE_I64},  {28, G4_DTYPE_F64},
};

bool g4_gguf_ggml_dtype(uint32_t ggml_type, enum g4_dtype *out, const char **name) {
    const char *nm = ggml_type < G4_COUNT(ggml_names) ? ggml_names[ggml_type] : NULL;
    if (name) *name = nm ? nm : "unknown";
    for (size_t i = 0; i < G4_COUNT(ggml_dtypes); i++) {
        if (ggml_dtypes[i].ggml == ggml_type) {
            if (out) *out = ggml_dtypes[i].dt;
            return true;
        }
    }
    return false;
}

static const char *const type_names[G4_GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};

const char *g4_gguf_type_name(enum g4_gguf_type t) {
    return (unsigned)t < G4_GGUF_TYPE_COUNT ? type_names[t] : "?";
}

// Bytes of one element; 0 for STRING and ARRAY (variable size) and unknown types.
static size_t type_size(enum g4_gguf_type t) {
    static const size_t sizes[G4_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < G4_GGUF_TYPE_COUNT ? sizes[t] : 0;
}

struct cursor {
    const uint8_t *buf;
    size_t n, pos;
    const char *what;
};

static uint64_t le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static g4_status truncated(const struct cursor *c, const char *reading) {
    return g4_fail(G4_ERR_FORMAT, "%s: truncated: %s at byte %zu runs past the end (%zu bytes)",
                   c->what, reading, c->pos, c->n);
}

static g4_status rd_u32(struct cursor *c, uint32_t *v, const char *reading) {
    if (c->n - c->pos < 4) return truncated(c, reading);
    *v = le32(c->buf + c->pos);
    c->pos += 4;
    return G4_OK;
}

static g4_status rd_u64(struct cursor *c, uint64_t *v, const char *reading) {
    if (c->n - c->pos < 8) return truncated(c, reading);
    *v = le64(c->buf + c->pos);
    c->pos += 8;
    return G4_OK;
}

static g4_status rd_str(struct cursor *c, struct g4_gguf_str *s, const char *reading) {
    uint64_t len = 0;
    G4_TRY(rd_u64(c, &len, reading));
    if (len > c->n - c->pos) {
        c->pos -= 8;
        return truncated(c, reading);
    }
    s->p = (const char *)c->buf + c->pos;
    s->n = len;
    c->pos += (size_t)len;
    return G4_OK;
}

// A key or tensor name: non-empty, no NUL byte; *out is a malloc'd NUL-terminated copy.
static g4_status rd_name(struct cursor *c, char **out, const char *reading, const char *after) {
    struct g4_gguf_str s = {0};
    G4_TRY(rd_str(c, &s, reading));
    if (s.n == 0 || memchr(s.p, 0, (size_t)s.n))
        return g4_fail(G4_ERR_FORMAT, "%s: %s%s%s is %s", c->what, reading, after ? " after " : "",
                       after ? after : "", s.n ? "holds a NUL byte" : "empty");
    if (!(*out = malloc((size_t)s.n + 1)))
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: %s of %llu bytes", c->what, reading,
                       (unsigned long long)s.n);
    memcpy(*out, s.p, (size_t)s.n);
    (*out)[s.n] = '\0';
    return G4_OK;
}

// The value of kv (key read already): type, then a scalar or an array.
static g4_status rd_value(struct cursor *c, struct g4_gguf_kv *kv) {
    uint32_t t = 0;
    G4_TRY(rd_u32(c, &t, "value type"));
    if (t >= G4_GGUF_TYPE_COUNT)
        return g4_fail(G4_ERR_FORMAT, "%s: key %s has unknown value type %u", c->what, kv->key, t);
    kv->type = kv->elem_type = (enum g4_gguf_type)t;
    kv->n = 1;
    if (t == G4_GGUF_ARRAY) {
        uint32_t et = 0;
        G4_TRY(rd_u32(c, &et, "array element type"));
        if (et >= G4_GGUF_TYPE_COUNT)
            return g4_fail(G4_ERR_FORMAT, "%s: key %s: array of unknown type %u", c->what, kv->key,
                           et);
        if (et == G4_GGUF_ARRAY)
            return g4_fail(G4_ERR_UNSUPPORTED, "%s: key %s: nested arrays are not supported",
                           c->what, kv->key);
        kv->elem_type = (enum g4_gguf_type)et;
        G4_TRY(rd_u64(c, &kv->n, "array length"));
    }
    kv->data = c->buf + c->pos;
    const size_t left = c->n - c->pos;
    if (kv->elem_type != G4_GGUF_STRING) {
        size_t bytes;
        if (!g4_mul_size((size_t)kv->n, type_size(kv->elem_type), &bytes) || kv->n > SIZE_MAX ||
            bytes > left)
            return g4_fail(G4_ERR_FORMAT,
                           "%s: truncated: key %s: %llu values of %s at byte %zu need more than "
                           "the %zu bytes left",
                           c->what, kv->key, (unsigned long long)kv->n,
                           g4_gguf_type_name(kv->elem_type), c->pos, left);
        c->pos += bytes;
        return G4_OK;
    }
    // Each string takes at least its 8-byte length: bounds the table before it is allocated.
    if (kv->n > left / 8)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: truncated: key %s: %llu strings at byte %zu cannot fit in the %zu "
                       "bytes left",
                       c->what, kv->key, (unsigned long long)kv->n, c->pos, left);
    G4_TRY(g4_calloc((void **)&kv->strs, kv->n ? (size_t)kv->n : 1, sizeof *kv->strs, kv->key));
    for (uint64_t i = 0; i < kv->n; i++) {
        if (rd_str(c, &kv->strs[i], "string") == G4_OK) continue;
        if (kv->type != G4_GGUF_ARRAY)
            return g4_fail(G4_ERR_FORMAT, "%s: truncated: key %s: string value at byte %zu",
                           c->what, kv->key, c->pos);
        return g4_fail(G4_ERR_FORMAT, "%s: truncated: key %s: string %llu of %llu at byte %zu",
                       c->what, kv->key, (unsigned long long)i, (unsigned long long)kv->n, c->pos);
    }
    return G4_OK;
}

static int by_offset(const void *a, const void *b) {
    const struct g4_gguf_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct g4_gguf_tensor *)a)->name, ((const struct g4_gguf_tensor *)b)->name);
}

static int key_vs_name(const void *key, const void *t) {
    return strcmp(key, ((const struct g4_gguf_tensor *)t)->name);
}

// One tensor info: name, dims, type, offset. Sizes are checked here, placement in check_data.
static g4_status rd_tensor(struct cursor *c, struct g4_gguf_tensor *t, int64_t index) {
    char after[64];
    snprintf(after, sizeof after, "tensor info %lld", (long long)index);
    G4_TRY(rd_name(c, &t->name, "tensor name", after));
    uint32_t nd = 0;
    G4_TRY(rd_u32(c, &nd, "tensor dims"));
    if (nd < 1 || nd > G4_GGUF_MAX_DIMS)
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s has %u dims; GGUF allows 1 to %d", c->what,
                       t->name, nd, G4_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    size_t numel = 1;
    for (int i = 0; i < G4_GGUF_MAX_DIMS; i++) {
        uint64_t d = 1;
        if (i < t->n_dims) G4_TRY(rd_u64(c, &d, "tensor dim"));
        if (d > INT64_MAX || !g4_mul_size(numel, (size_t)d, &numel) || numel > INT64_MAX)
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: element count overflows at ne[%d] = %llu",
                           c->what, t->name, i, (unsigned long long)d);
        t->ne[i] = (int64_t)d;
    }
    G4_TRY(rd_u32(c, &t->ggml_type, "tensor type"));
    const char *tname;
    if (!g4_gguf_ggml_dtype(t->ggml_type, &t->dtype, &tname))
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: tensor %s has ggml type %s (%u), which gemma4 does not support (it "
                       "reads F32, F16, BF16, Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K)",
                       c->what, t->name, tname, t->ggml_type);
    G4_TRY(rd_u64(c, &t->offset, "tensor offset"));
    const int block = g4_dtype_block(t->dtype);
    if (t->ne[0] % block)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: tensor %s: row length ne[0] = %lld is not a multiple of the %s block "
                       "size %d",
                       c->what, t->name, (long long)t->ne[0], g4_dtype_name(t->dtype), block);
    size_t bytes = 0;
    bool ok = g4_mul_size((size_t)(t->ne[0] / block), g4_dtype_block_bytes(t->dtype), &bytes);
    for (int i = 1; ok && i < G4_GGUF_MAX_DIMS; i++) ok = g4_mul_size(bytes, (size_t)t->ne[i], &bytes);
    if (!ok)
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: byte size overflows", c->what, t->name);
    t->n_bytes = bytes;
    return G4_OK;
}

// Placement of every tensor inside the data section [data_start, n), alignment, overlaps and
// duplicate names. Leaves g->tensors sorted by name.
static g4_status check_data(struct g4_gguf *g, const uint8_t *buf, size_t n, const char *what) {
    const size_t data_bytes = n - g->data_start;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct g4_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return g4_fail(G4_ERR_FORMAT,
                           "%s: tensor %s: offset %llu is not a multiple of the alignment %llu",
                           what, t->name, (unsigned long long)t->offset,
                           (unsigned long long)g->alignment);
        if (t->offset > data_bytes || t->n_bytes > data_bytes - (size_t)t->offset)
            return g4_fail(G4_ERR_FORMAT,
                           "%s: truncated: tensor %s: [%llu, %llu + %zu) runs past the %zu-byte "
                           "data section",
                           what, t->name, (unsigned long long)t->offset,
                           (unsigned long long)t->offset, t->n_bytes, data_bytes);
        // The engines read float tensors through typed pointers; blocks are read with memcpy.
        size_t esize = g4_dtype_size(t->dtype);
        if (esize && (g->data_start + (size_t)t->offset) % esize)
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: data at file offset %zu is misaligned for %s",
                           what, t->name, g->data_start + (size_t)t->offset,
                           g4_dtype_name(t->dtype));
        t->data = buf + g->data_start + t->offset;
    }
    qsort(g->tensors, (size_t)g->n_tensors, sizeof *g->tensors, by_offset);
    const struct g4_gguf_tensor *prev = NULL;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const struct g4_gguf_tensor *t = &g->tensors[i];
        if (t->n_bytes == 0) continue; // empty tensors occupy no bytes
        if (prev && t->offset < prev->offset + prev->n_bytes)
            return g4_fail(G4_ERR_FORMAT, "%s: tensors %s [%llu, +%zu) and %s [%llu, +%zu) overlap",
                           what, prev->name, (unsigned long long)prev->offset, prev->n_bytes,
                           t->name, (unsigned long long)t->offset, t->n_bytes);
        prev = t;
    }
    qsort(g->tensors, (size_t)g->n_tensors, sizeof *g->tensors, by_name);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i - 1].name, g->tensors[i].name) == 0)
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s is present twice", what, g->tensors[i].name);
    return G4_OK;
}

static int str_ptr_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// No key present twice (sorted copy of the key pointers: files may hold many keys).
static g4_status check_keys(const struct g4_gguf *g, const char *what) {
    char **keys;
    G4_TRY(g4_calloc((void **)&keys, g->n_kv ? (size_t)g->n_kv : 1, sizeof *keys, what));
    for (int64_t i = 0; i < g->n_kv; i++) keys[i] = g->kv[i].key;
    qsort(keys, (size_t)g->n_kv, sizeof *keys, str_ptr_cmp);
    g4_status st = G4_OK;
    for (int64_t i = 1; i < g->n_kv && st == G4_OK; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            st = g4_fail(G4_ERR_FORMAT, "%s: key %s is present twice", what, keys[i]);
    free(keys);
    return st;
}

static g4_status parse(struct g4_gguf *g, const uint8_t *buf, size_t n, const char *what) {
    struct cursor c = {buf, n, 0, what};
    if (n < 4 || memcmp(buf, "GGUF", 4) != 0)
        return g4_fail(G4_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", what);
    c.pos = 4;
    G4_TRY(rd_u32(&c, &g->version, "version"));
    if (g->version == 0x03000000u || g->version == 0x02000000u)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: big-endian GGUF files are not supported", what);
    if (g->version != 2 && g->version != 3)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: GGUF version %u (gemma4 reads versions 2 and 3)",
                       what, g->version);
    uint64_t n_tensors = 0, n_kv = 0;
    G4_TRY(rd_u64(&c, &n_tensors, "tensor count"));
    G4_TRY(rd_u64(&c, &n_kv, "metadata count"));
    // Smallest encodings: a key/value is 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8.
    size_t left = n - c.pos;
    if (n_kv > left / 14 || n_tensors > left / 33 || n_kv + n_tensors > left / 14)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: truncated or corrupt: %llu metadata entries and %llu tensors cannot "
                       "fit in %zu bytes",
                       what, (unsigned long long)n_kv, (unsigned long long)n_tensors, n);
    G4_TRY(g4_calloc((void **)&g->kv, n_kv ? (size_t)n_kv : 1, sizeof *g->kv, what));
    for (uint64_t i = 0; i < n_kv; i++) {
        struct g4_gguf_kv *kv = &g->kv[i];
        char after[64];
        snprintf(after, sizeof after, "metadata entry %llu", (unsigned long long)i);
        G4_TRY(rd_name(&c, &kv->key, "key", after));
        g->n_kv = (int64_t)i + 1; // owns the key from here on
        G4_TRY(rd_value(&c, kv));
    }
    G4_TRY(check_keys(g, what));
    g->alignment = G4_GGUF_DEFAULT_ALIGNMENT;
    const struct g4_gguf_kv *al = g4_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != G4_GGUF_UINT32)
            return g4_fail(G4_ERR_FORMAT, "%s: general.alignment is %s, must be UINT32", what,
                           g4_gguf_type_name(al->type));
        g->alignment = le32(al->data);
        if (g->alignment == 0 || (g->alignment & (g->alignment - 1)))
            return g4_fail(G4_ERR_FORMAT, "%s: general.alignment %llu is not a power of two", what,
                           (unsigned long long)g->alignment);
    }
    G4_TRY(g4_calloc((void **)&g->tensors, n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors,
                     what));
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        G4_TRY(rd_tensor(&c, &g->tensors[i], (int64_t)i));
    }
    // The data section starts at the next multiple of the alignment (alignment <= 2^31, so no
    // overflow: c.pos <= n).
    size_t start = (c.pos + (size_t)g->alignment - 1) / (size_t)g->alignment * (size_t)g->alignment;
    if (start > n) {
        if (n_tensors)
            return g4_fail(G4_ERR_FORMAT,
                           "%s: truncated: the data section would start at byte %zu of %zu", what,
                           start, n);
        start = n; // a file without tensors (a vocabulary) may end unpadded
    }
    g->data_start = start;
    return check_data(g, buf, n, what);
}

g4_status g4_gguf_parse(struct g4_gguf *g, const uint8_t *buf, size_t n, const char *what) {
    if (!what) what = "GGUF buffer";
    if (!g) return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s: NULL gguf", what);
    memset(g, 0, sizeof *g);
    if (!buf && n) return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s: NULL buffer", what);
    if (!buf) buf = (const uint8_t *)"";
    g4_status st = parse(g, buf, n, what);
    if (st != G4_OK) g4_gguf_free(g);
    return st;
}

// Reads size bytes of fd into a malloc'd buffer (8-byte aligned, like the mapping's data).
static g4_status read_all(const char *path, int fd, size_t size, void **out) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, size);
    size_t n = 0;
    while (n < size) {
        ssize_t got = pread(fd, buf + n, size - n, (off_t)n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            int err = errno;
            free(buf);
            if (got == 0)
                return g4_fail(G4_ERR_IO, "%s: shrank to %zu bytes while being read", path, n);
            return g4_fail(G4_ERR_IO, "%s: read: %s", path, strerror(err));
        }
        n += (size_t)got;
    }
    *out = buf;
    return G4_OK;
}

g4_status g4_gguf_load(struct g4_gguf *g, const char *path, bool in_memory) {
    if (!g || !path) return g4_fail(G4_ERR_INVALID_ARGUMENT, "gguf_open: NULL argument");
    memset(g, 0, sizeof *g);
    int fd;
    uint64_t size;
    G4_TRY(g4_file_open(path, &fd, &size));
    if (size < 4 || size > SIZE_MAX) {
        close(fd);
        return g4_fail(G4_ERR_FORMAT, "%s: %llu bytes, not a GGUF file (truncated?)", path,
                       (unsigned long long)size);
    }
    void *m = NULL;
    if (in_memory) {
        g4_status st = read_all(path, fd, (size_t)size, &m);
        close(fd);
        G4_TRY(st);
    } else {
        // Read-only and private: the checkpoint is never written, and pages stay shared with the
        // page cache; tensors nobody reads are never faulted in.
        m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        int err = errno;
        close(fd);
        if (m == MAP_FAILED) return g4_fail(G4_ERR_IO, "%s: mmap: %s", path, strerror(err));
    }
    g4_status st = g4_gguf_parse(g, m, (size_t)size, path);
    if (st != G4_OK) {
        if (in_memory) free(m);
        else munmap(m, (size_t)size);
        return st;
    }
    g->map = m;
    g->map_bytes = (size_t)size;
    g->in_memory = in_memory;
    return G4_OK;
}

g4_status g4_gguf_open(struct g4_gguf *g, const char *path) { return g4_gguf_load(g, path, false); }

void g4_gguf_free(struct g4_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].strs);
    }
    free(g->kv);
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    if (g->map && g->in_memory) free(g->map);
    else if (g->map) munmap(g->map, g->map_bytes);
    memset(g, 0, sizeof *g);
}

const struct g4_gguf_kv *g4_gguf_find_kv(const struct g4_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const struct g4_gguf_tensor *g4_gguf_find_tensor(const struct g4_gguf *g, const char *name) {
    if (!g || !name || !g->tensors) return NULL;
    return bsearch(name, g->tensors, (size_t)g->n_tensors, sizeof *g->tensors, key_vs_name);
}

bool g4_gguf_kv_int(const struct g4_gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || i >= kv->n || kv->elem_type == G4_GGUF_STRING) return false;
    const uint8_t *p = kv->data + i * type_size(kv->elem_type);
    switch (kv->elem_type) {
    case G4_GGUF_UINT8: *out = p[0]; return true;
    case G4_GGUF_INT8: *out = (int8_t)p[0]; return true;
    case G4_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case G4_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case G4_GGUF_UINT32: *out = le32(p); return true;
    case G4_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case G4_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return true; }
    case G4_GGUF_UINT64: {
        uint64_t v = le64(p);
        if (v > INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    default: return false;
    }
}

bool g4_gguf_kv_float(const struct g4_gguf_kv *kv, uint64_t i, double *out) {
    if (!kv || i >= kv->n) return false;
    const uint8_t *p = kv->data + i * type_size(kv->elem_type);
    if (kv->elem_type == G4_GGUF_FLOAT32) {
        float f;
        memcpy(&f, p, 4);
        *out = f;
        return true;
    }
    if (kv->elem_type == G4_GGUF_FLOAT64) {
        memcpy(out, p, 8);
        return true;
    }
    return false;
}

bool g4_gguf_kv_bool(const struct g4_gguf_kv *kv, uint64_t i, bool *out) {
    if (!kv || i >= kv->n || kv->elem_type != G4_GGUF_BOOL) return false;
    *out = kv->data[i] != 0;
    return true;
}

bool g4_gguf_kv_str(const struct g4_gguf_kv *kv, uint64_t i, struct g4_gguf_str *out) {
    if (!kv || i >= kv->n || kv->elem_type != G4_GGUF_STRING) return false;
    *out = kv->strs[i];
    return true;
}
