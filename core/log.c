// Log sink behind g4_log(); see log.h.
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static g4_log_fn sink;
static void *sink_data;

void g4_log_set(g4_log_fn fn, void *user_data) {
    pthread_mutex_lock(&lock);
    sink = fn;
    sink_data = user_data;
    pthread_mutex_unlock(&lock);
}

void g4_log(int level, const char *fmt, ...) {
    char msg[1024];
    pthread_mutex_lock(&lock);
    g4_log_fn fn = sink;
    void *data = sink_data;
    pthread_mutex_unlock(&lock);
    if (!fn) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(level, msg, data);
}
