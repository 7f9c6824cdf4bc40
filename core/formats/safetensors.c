// Safetensors reader; see safetensors.h. The format: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}}, then the data section. Everything in the
// header is validated before a pointer is formed; tensor data is never read here, so the mapped
// pages of tensors nobody uses (vision and audio towers) are never faulted in.
// This is not a writer, and it does not convert dtypes (that is g4_to_f32 in core/dtype.c).
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"

static bool parse_dtype(const char *s, enum g4_dtype *out) {
    for (int i = 0; i < G4_DTYPE_SAFETENSORS_COUNT; i++) {
        if (strcmp(s, g4_dtype_name((enum g4_dtype)i)) == 0) {
            *out = (enum g4_dtype)i;
            return true;
        }
    }
    return false;
}

// A JSON number that is an exact non-negative integer. cJSON keeps numbers as doubles, which are
// exact only up to 2^53; larger values (9 PB) cannot be told apart, so they are rejected.
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0)) return false; // also rejects NaN
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return false;
    *out = u;
    return true;
}

static bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Parses exactly n bytes of JSON (no NUL terminator needed: the text may sit in a read-only
// mapping). Trailing whitespace is allowed, since safetensors pads its header with spaces.
static g4_status parse_json(const char *text, size_t n, const char *what, cJSON **out) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!*out) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return g4_fail(G4_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, at);
    }
    for (const char *p = end; p < text + n; p++) {
        if (!is_json_space(*p)) {
            cJSON_Delete(*out);
            *out = NULL;
            return g4_fail(G4_ERR_FORMAT, "%s: unexpected bytes after the JSON value at byte %zu",
                           what, (size_t)(p - text));
        }
    }
    return G4_OK;
}

// Fills t (all but name, shard, data) from one header entry. `data_start` is the file offset of
// the data section, `data_bytes` its length.
static g4_status parse_entry(const cJSON *e, const char *what, size_t data_start, size_t data_bytes,
                             struct g4_tensor *t) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: header entry is not an object", what, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: missing \"dtype\" string", what, name);
    if (!parse_dtype(dt->valuestring, &t->dtype))
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: tensor %s has dtype %s, which is not a safetensors dtype", what,
                       name, dt->valuestring);
    size_t esize = g4_dtype_size(t->dtype);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(shape))
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: missing \"shape\" list", what, name);
    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > G4_MAX_DIMS)
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s has %d dims, at most %d are supported", what,
                       name, n_dims, G4_MAX_DIMS);
    size_t numel = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v))
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer",
                           what, name, i);
        if (!g4_mul_size(numel, (size_t)v, &numel))
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: element count overflows at shape[%d]",
                           what, name, i);
        t->shape[i++] = (int64_t)v;
    }
    t->n_dims = n_dims;
    size_t n_bytes;
    if (!g4_mul_size(numel, esize, &n_bytes))
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: byte size overflows", what, name);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &begin) ||
        !json_uint(off->child->next, &end))
        return g4_fail(G4_ERR_FORMAT,
                       "%s: tensor %s: \"data_offsets\" must be two non-negative integers", what,
                       name);
    if (begin > end || end > data_bytes)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%llu, %llu] outside the %zu-byte data "
                       "section (truncated?)",
                       what, name, (unsigned long long)begin, (unsigned long long)end, data_bytes);
    if (end - begin != n_bytes)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: tensor %s: data_offsets span %llu bytes, but %zu elements of %s need "
                       "%zu",
                       what, name, (unsigned long long)(end - begin), numel,
                       g4_dtype_name(t->dtype), n_bytes);
    // Readers cast data to uint16_t / float pointers; the mapping is page-aligned, so the file
    // offset decides alignment. Files written by the safetensors library always pass.
    if (n_bytes && (data_start + (size_t)begin) % esize != 0)
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s: data at file offset %zu is misaligned for %s",
                       what, name, data_start + (size_t)begin, g4_dtype_name(t->dtype));
    t->n_bytes = n_bytes;
    t->data_offset = (size_t)begin;
    return G4_OK;
}

static int by_offset(const void *a, const void *b) {
    const struct g4_tensor *x = a, *y = b;
    if (x->data_offset != y->data_offset) return x->data_offset < y->data_offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct g4_tensor *)a)->name, ((const struct g4_tensor *)b)->name);
}

static int key_vs_name(const void *key, const void *t) {
    return strcmp(key, ((const struct g4_tensor *)t)->name);
}

static void free_names(struct g4_tensor *t, int n) {
    for (int i = 0; i < n; i++) free(t[i].name);
}

// Checks the new tensors `add` (sorted by offset here) for overlaps within their file.
static g4_status check_overlap(struct g4_tensor *add, int n_add, const char *what) {
    qsort(add, (size_t)n_add, sizeof *add, by_offset);
    const struct g4_tensor *prev = NULL;
    for (int i = 0; i < n_add; i++) {
        const struct g4_tensor *t = &add[i];
        if (t->n_bytes == 0) continue; // empty tensors occupy no bytes
        if (prev && t->data_offset < prev->data_offset + prev->n_bytes)
            return g4_fail(G4_ERR_FORMAT, "%s: tensors %s [%zu, %zu) and %s [%zu, %zu) overlap",
                           what, prev->name, prev->data_offset, prev->data_offset + prev->n_bytes,
                           t->name, t->data_offset, t->data_offset + t->n_bytes);
        prev = t;
    }
    return G4_OK;
}

g4_status g4_safetensors_parse(struct g4_safetensors *st, const uint8_t *buf, size_t n, int shard,
                               const char *what) {
    if (!what) what = "safetensors buffer";
    if (!st || (!buf && n))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s: NULL safetensors or buffer", what);
    if (n < 8)
        return g4_fail(G4_ERR_FORMAT, "%s: %zu bytes, shorter than the header length (truncated)",
                       what, n);
    uint64_t hdr_len = 0;
    for (int i = 7; i >= 0; i--) hdr_len = hdr_len << 8 | buf[i];
    if (hdr_len > n - 8)
        return g4_fail(G4_ERR_FORMAT, "%s: header length %llu exceeds file size %zu (truncated?)",
                       what, (unsigned long long)hdr_len, n);
    const char *json = (const char *)buf + 8;
    size_t data_start = 8 + (size_t)hdr_len, data_bytes = n - data_start;

    cJSON *root;
    G4_TRY(parse_json(json, (size_t)hdr_len, what, &root));
    g4_status status = G4_OK;
    struct g4_tensor *add = NULL, *merged = NULL;
    int n_add = 0;
    if (!cJSON_IsObject(root)) {
        status = g4_fail(G4_ERR_FORMAT, "%s: JSON header is not an object", what);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(root);
    if (n_entries > INT_MAX - st->n_tensors) {
        status = g4_fail(G4_ERR_FORMAT, "%s: too many tensors", what);
        goto done;
    }
    if ((status = g4_calloc((void **)&add, (size_t)n_entries, sizeof *add, what)) != G4_OK)
        goto done;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        struct g4_tensor *t = &add[n_add];
        if ((status = parse_entry(e, what, data_start, data_bytes, t)) != G4_OK) goto done;
        if (!(t->name = strdup(e->string))) {
            status = g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: tensor %s: name", what, e->string);
            goto done;
        }
        n_add++;
        t->shard = shard;
        t->data = buf + data_start + t->data_offset;
    }
    if ((status = check_overlap(add, n_add, what)) != G4_OK) goto done;

    // Merge into a fresh table so that st is untouched if a duplicate name turns up.
    int n_all = st->n_tensors + n_add;
    if ((status = g4_calloc((void **)&merged, (size_t)n_all, sizeof *merged, what)) != G4_OK)
        goto done;
    if (st->n_tensors) memcpy(merged, st->tensors, (size_t)st->n_tensors * sizeof *merged);
    if (n_add) memcpy(merged + st->n_tensors, add, (size_t)n_add * sizeof *merged);
    qsort(merged, (size_t)n_all, sizeof *merged, by_name);
    for (int i = 1; i < n_all; i++) {
        if (strcmp(merged[i - 1].name, merged[i].name) == 0) {
            int a = merged[i - 1].shard, b = merged[i].shard; // qsort is not stable
            status = g4_fail(G4_ERR_FORMAT, "%s: tensor %s is present twice (shards %d and %d)",
                             what, merged[i].name, a < b ? a : b, a < b ? b : a);
            goto done;
        }
    }
    free(st->tensors);
    st->tensors = merged;
    st->n_tensors = n_all;
    merged = NULL;
    n_add = 0; // names now owned by st
done:
    free(merged);
    if (add) free_names(add, n_add);
    free(add);
    cJSON_Delete(root);
    return status;
}

// Reads the whole file into page-aligned memory (the caller free()s it).
static g4_status read_file(const char *path, int fd, size_t size, void **out) {
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, size ? size : 1) != 0)
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes to read it into memory",
                       path, size);
    for (size_t done = 0; done < size;) {
        ssize_t got = read(fd, (char *)buf + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got < 0) g4_fail(G4_ERR_IO, "%s: read: %s", path, strerror(errno));
            else g4_fail(G4_ERR_IO, "%s: ended after %zu of %zu bytes (changed while reading)", path, done, size);
            free(buf);
            return G4_ERR_IO;
        }
        done += (size_t)got;
    }
    *out = buf;
    return G4_OK;
}

// Maps a whole file read-only, or with in_memory reads it into memory. Files shorter than
// min_bytes are G4_ERR_FORMAT (truncated).
static g4_status map_file(const char *path, size_t min_bytes, bool in_memory, void **map,
                          size_t *n_bytes) {
    *map = NULL;
    *n_bytes = 0;
    int fd;
    uint64_t size;
    G4_TRY(g4_file_open(path, &fd, &size));
    if (size < min_bytes || size > SIZE_MAX) {
        close(fd);
        return g4_fail(G4_ERR_FORMAT, "%s: file is %llu bytes (truncated)", path,
                       (unsigned long long)size);
    }
    if (in_memory) {
        g4_status st = read_file(path, fd, (size_t)size, map);
        close(fd);
        if (st == G4_OK) *n_bytes = (size_t)size;
        return st;
    }
    // Read-only and private: the checkpoint is never written, and pages stay shared with the
    // page cache. cJSON parses the header in place with an explicit length.
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED) return g4_fail(G4_ERR_IO, "%s: mmap: %s", path, strerror(err));
    *map = m;
    *n_bytes = (size_t)size;
    return G4_OK;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) {
        strcpy(p, dir);
        strcat(p, "/");
        strcat(p, name);
    }
    return p;
}

static g4_status open_shard(struct g4_safetensors *st, int shard, const char *dir,
                            const char *file) {
    char *path = join(dir, file);
    if (!path) return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s/%s: path", dir, file);
    g4_status status =
        map_file(path, 8, st->in_memory, &st->shard_map[shard], &st->shard_bytes[shard]);
    if (status == G4_OK)
        status =
            g4_safetensors_parse(st, st->shard_map[shard], st->shard_bytes[shard], shard, path);
    free(path);
    return status;
}

// A shard name must be a plain file in the checkpoint directory (no path escapes).
static bool is_plain_file_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static g4_status open_index(struct g4_safetensors *st, const char *dir, const char *index_path) {
    void *imap;
    size_t ibytes;
    G4_TRY(map_file(index_path, 1, false, &imap, &ibytes));
    cJSON *root;
    g4_status status = parse_json(imap, ibytes, index_path, &root);
    munmap(imap, ibytes);
    if (status != G4_OK) return status;

    const char **files = NULL; // (n_files,) distinct shard names, pointing into the JSON tree
    int *entry_shard = NULL; // (n_entries,) shard index of each weight_map entry
    int n_files = 0, i = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        status = g4_fail(G4_ERR_FORMAT, "%s: missing or empty \"weight_map\" object", index_path);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(wm);
    status = g4_calloc((void **)&files, (size_t)n_entries, sizeof *files, index_path);
    if (status != G4_OK) goto done;
    status = g4_calloc((void **)&entry_shard, (size_t)n_entries, sizeof *entry_shard, index_path);
    if (status != G4_OK) goto done;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !is_plain_file_name(e->valuestring)) {
            status = g4_fail(G4_ERR_FORMAT, "%s: tensor %s: shard must be a file name in %s",
                             index_path, e->string, dir);
            goto done;
        }
        int j = 0;
        while (j < n_files && strcmp(files[j], e->valuestring) != 0) j++;
        if (j == n_files) files[n_files++] = e->valuestring;
        entry_shard[i++] = j;
    }

    status = g4_calloc((void **)&st->shard_map, (size_t)n_files, sizeof *st->shard_map, dir);
    if (status != G4_OK) goto done;
    status = g4_calloc((void **)&st->shard_bytes, (size_t)n_files, sizeof *st->shard_bytes, dir);
    if (status != G4_OK) goto done;
    st->n_shards = n_files;
    for (int j = 0; j < n_files; j++)
        if ((status = open_shard(st, j, dir, files[j])) != G4_OK) goto done;

    // Every tensor the index lists must really be in the shard it names.
    i = 0;
    cJSON_ArrayForEach(e, wm) {
        const struct g4_tensor *t = g4_safetensors_find(st, e->string);
        if (!t || t->shard != entry_shard[i]) {
            status = g4_fail(G4_ERR_FORMAT, "%s: tensor %s is listed in %s/%s but %s%s", index_path,
                             e->string, dir, e->valuestring, t ? "found in " : "is not there",
                             t ? files[t->shard] : "");
            goto done;
        }
        i++;
    }
done:
    free(files);
    free(entry_shard);
    cJSON_Delete(root);
    return status;
}

g4_status g4_safetensors_open(struct g4_safetensors *st, const char *dir) {
    return g4_safetensors_load(st, dir, false);
}

g4_status g4_safetensors_load(struct g4_safetensors *st, const char *dir, bool in_memory) {
    if (!st || !dir) return g4_fail(G4_ERR_INVALID_ARGUMENT, "safetensors_open: NULL argument");
    memset(st, 0, sizeof *st);
    st->in_memory = in_memory;
    struct stat sb;
    if (stat(dir, &sb) != 0) return g4_fail(G4_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return g4_fail(G4_ERR_IO, "%s: not a directory", dir);

    g4_status status;
    char *single = join(dir, "model.safetensors");
    char *index = join(dir, "model.safetensors.index.json");
    if (!single || !index) {
        status = g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: path", dir);
    } else if (access(single, F_OK) == 0 || errno != ENOENT) {
        // As transformers does, a single model.safetensors wins over an index.
        status = g4_calloc((void **)&st->shard_map, 1, sizeof *st->shard_map, dir);
        if (status == G4_OK)
            status = g4_calloc((void **)&st->shard_bytes, 1, sizeof *st->shard_bytes, dir);
        if (status == G4_OK) {
            st->n_shards = 1;
            status = open_shard(st, 0, dir, "model.safetensors");
        }
    } else if (access(index, F_OK) == 0 || errno != ENOENT) {
        status = open_index(st, dir, index);
    } else {
        status =
            g4_fail(G4_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(single);
    free(index);
    if (status != G4_OK) g4_safetensors_free(st);
    return status;
}

const struct g4_tensor *g4_safetensors_find(const struct g4_safetensors *st, const char *name) {
    if (!st || !name || !st->tensors) return NULL;
    return bsearch(name, st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, key_vs_name);
}

void g4_safetensors_free(struct g4_safetensors *st) {
    if (!st) return;
    if (st->tensors) free_names(st->tensors, st->n_tensors);
    free(st->tensors);
    for (int i = 0; i < st->n_shards; i++)
        if (st->shard_map && st->shard_map[i]) {
            if (st->in_memory) free(st->shard_map[i]);
            else munmap(st->shard_map[i], st->shard_bytes[i]);
        }
    free(st->shard_map);
    free(st->shard_bytes);
    memset(st, 0, sizeof *st);
}
