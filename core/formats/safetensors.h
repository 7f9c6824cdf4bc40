// Safetensors checkpoints: header parsing (pure, fuzzable, from a byte buffer), memory-mapped
// shards, and the sharded index (model.safetensors.index.json). Tensors are found by their full
// checkpoint name. Data is never read here: mmap keeps untouched tensors (vision, audio) on disk
// (g4_safetensors_load can read the files into memory instead).
#ifndef G4_SAFETENSORS_H
#define G4_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define G4_MAX_DIMS 8

struct g4_tensor {
    char *name;           // full checkpoint name, e.g. "model.language_model.layers.0.mlp.up_proj.weight"
    enum g4_dtype dtype;
    int n_dims;
    int64_t shape[G4_MAX_DIMS];
    const void *data;     // points into the shard mapping (or into the buffer given to _parse)
    size_t n_bytes;       // == product(shape) * dtype size, validated
    int shard;            // index into g4_safetensors.shard_*
    size_t data_offset;   // offset of the data inside its shard's data section
};

struct g4_safetensors {
    int n_shards;
    void **shard_map;        // (n_shards,) mmap base of each file
    size_t *shard_bytes;     // (n_shards,) file size
    struct g4_tensor *tensors; // (n_tensors,) sorted by name
    int n_tensors;
    bool in_memory;          // shard_map[i] are malloc'd copies of the files, not mappings
    bool norms_as_scales;    // the norm weights hold the effective scale already (a table built
                             // from a GGUF file: llama.cpp's converter stores gemma3's w + 1), so
                             // g4_weights_bind adds no 1 (gguf_weights.h)
};


// Parses one safetensors file image `buf` of `n` bytes (8-byte little-endian header length, JSON
// header, data). Validates: header length within the file, JSON well-formed, every entry has a
// known dtype ("F32", "F16", "BF16"; others -> G4_ERR_UNSUPPORTED naming the tensor), shape of at
// most G4_MAX_DIMS non-negative dims with overflow-checked product, data_offsets [begin, end]
// inside the data section, end - begin == product * dtype size, no two tensors overlapping, data
// aligned to the dtype size relative to buf (buf itself is assumed suitably aligned, as an mmap
// base is), and no name present twice among st's tensors. "__metadata__" is ignored. Appends the
// tensors to st->tensors (tagged with `shard`; data points into buf) and keeps st->tensors sorted
// by name, so g4_safetensors_find works after each call. `what` names the file in messages (may be
// NULL). On error st keeps what it had before the call. Reads only the 8 + header-length bytes,
// never tensor data; this is the fuzzing entry point.
g4_status g4_safetensors_parse(struct g4_safetensors *st, const uint8_t *buf, size_t n, int shard,
                               const char *what);

// Opens the checkpoint in directory `dir`: model.safetensors, or model.safetensors.index.json and
// every shard it names (each shard mapped once; the index must list only tensors that the shard
// really holds; G4_ERR_IO for a missing shard). Every tensor in a mapped shard is loaded, also
// those the index does not list. Files are mmap'ed read-only (MAP_PRIVATE, PROT_READ). Tensors
// are sorted by name afterwards; a name present twice is G4_ERR_FORMAT. A missing directory, or
// one with neither file, is G4_ERR_IO. On error everything is released and *st is zeroed.
g4_status g4_safetensors_open(struct g4_safetensors *st, const char *dir);
// The same; with in_memory each shard is read whole into memory (page-aligned) instead of mapped,
// so the loaded checkpoint does not depend on the files afterwards (a mapping raises SIGBUS when
// its file is truncated). Costs the shards' full size in memory, vision/audio tensors included.
g4_status g4_safetensors_load(struct g4_safetensors *st, const char *dir, bool in_memory);

// Binary search by exact name; NULL when absent.
const struct g4_tensor *g4_safetensors_find(const struct g4_safetensors *st, const char *name);

// Releases mappings and tables. Accepts a zeroed or partially built struct; zeroes it.
void g4_safetensors_free(struct g4_safetensors *st);

#endif
