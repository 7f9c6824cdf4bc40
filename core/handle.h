// Tags on the structs behind the public ABI's opaque handles (struct g4_model is a gemma4_model,
// struct g4_session a gemma4_session). abi/gemma4.c sets a struct's tag when it hands the handle
// out, checks it on every call and clears it when the handle is freed, so a freed or bogus handle
// gives GEMMA4_ERR_INVALID_ARGUMENT instead of touching freed state.
// A tag can only be read while its memory is still allocated, so freed structs pass through a
// small quarantine: the last G4_HANDLE_QUARANTINE of each kind stay allocated (tag 0, everything
// they owned already released) and are free()d only when pushed out. A handle freed longer ago
// may point to reused memory: the check is best effort, not a guarantee.
#ifndef G4_HANDLE_H
#define G4_HANDLE_H

#include <stdint.h>

#define G4_TAG_MODEL 0x4d6f4734u   // arbitrary values, unlike zeroed or stale memory
#define G4_TAG_SESSION 0x53654734u
#define G4_HANDLE_QUARANTINE 8 // abi/gemma4.h promises this number ("Freed handles")

enum g4_handle_kind { G4_HANDLE_MODEL, G4_HANDLE_SESSION, G4_HANDLE_KINDS };

// Frees p (a struct of that kind, NULL fine) once G4_HANDLE_QUARANTINE more of its kind have
// been retired after it. Thread-safe. What stays quarantined at exit is still reachable (not a
// leak for LeakSanitizer or valgrind).
void g4_handle_retire(enum g4_handle_kind kind, void *p);

#endif
