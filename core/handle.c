// Quarantine of freed handle structs; see handle.h.
#include "handle.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *ring[G4_HANDLE_KINDS][G4_HANDLE_QUARANTINE]; // oldest at next[kind]
static unsigned next[G4_HANDLE_KINDS];

void g4_handle_retire(enum g4_handle_kind kind, void *p) {
    if (!p) return;
    pthread_mutex_lock(&lock);
    void *oldest = ring[kind][next[kind]];
    ring[kind][next[kind]] = p;
    next[kind] = (next[kind] + 1) % G4_HANDLE_QUARANTINE;
    pthread_mutex_unlock(&lock);
    free(oldest);
}
