// Handle structs and their quarantine; see handle.h.
#include "handle.h"

#include <pthread.h>
#include <stdlib.h>

#include "mem.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct g4_handle *ring[2][G4_HANDLE_QUARANTINE]; // [model, session], oldest at next[kind]
static unsigned next[2];

g4_status g4_handle_new(uint32_t tag, void *obj, struct g4_handle **out) {
    G4_TRY(g4_calloc((void **)out, 1, sizeof **out, "handle"));
    (*out)->tag = tag;
    (*out)->obj = obj;
    return G4_OK;
}

void *g4_handle_get(const struct g4_handle *h, uint32_t tag) {
    return h->tag == tag ? h->obj : NULL;
}

void g4_handle_retire(struct g4_handle *h) {
    if (!h) return;
    const int kind = h->tag == G4_TAG_SESSION;
    h->tag = 0;
    h->obj = NULL;
    pthread_mutex_lock(&lock);
    struct g4_handle *oldest = ring[kind][next[kind]];
    ring[kind][next[kind]] = h;
    next[kind] = (next[kind] + 1) % G4_HANDLE_QUARANTINE;
    pthread_mutex_unlock(&lock);
    free(oldest);
}
