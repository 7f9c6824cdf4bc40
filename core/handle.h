// The small structs behind the public ABI's opaque handles: a gemma4_model or gemma4_session is a
// struct g4_handle { tag, object }, not the core struct itself. abi/gemma4.c makes one when it
// hands a handle out, checks its tag on every call and retires it when the handle is freed, so a
// freed or bogus handle gives GEMMA4_ERR_INVALID_ARGUMENT instead of touching freed state.
// A tag can only be read while its memory is still allocated, so retired handles pass through a
// small quarantine: the last G4_HANDLE_QUARANTINE of each kind stay allocated (tag 0) and are
// free()d only when pushed out. Only these 16-byte structs are kept: the model or session they
// named is released at once. A handle freed longer ago may point to reused memory: the check is
// best effort, not a guarantee.
#ifndef G4_HANDLE_H
#define G4_HANDLE_H

#include <stdint.h>

#include "status.h"

#define G4_TAG_MODEL 0x4d6f4734u   // arbitrary values, unlike zeroed or stale memory
#define G4_TAG_SESSION 0x53654734u
#define G4_HANDLE_QUARANTINE 8 // abi/gemma4.h promises this number ("Freed handles")

struct g4_handle {
    uint32_t tag; // G4_TAG_* while the caller holds the handle, 0 once retired
    void *obj;    // the struct g4_model / struct g4_session it names
};

// A new handle with that tag naming obj. G4_ERR_OUT_OF_MEMORY (*out NULL) on failure.
g4_status g4_handle_new(uint32_t tag, void *obj, struct g4_handle **out);
// h->obj when h carries tag, else NULL (h must not be NULL).
void *g4_handle_get(const struct g4_handle *h, uint32_t tag);
// Clears h's tag and frees it once G4_HANDLE_QUARANTINE more handles of its kind have been
// retired after it. Thread-safe. NULL fine. What stays quarantined at exit is still reachable
// (not a leak for LeakSanitizer or valgrind).
void g4_handle_retire(struct g4_handle *h);

#endif
