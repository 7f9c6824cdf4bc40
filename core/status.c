// Thread-local error message storage behind g4_fail(); see status.h.
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

g4_status g4_fail(g4_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *g4_last_error(void) { return last_error; }

void g4_clear_error(void) { last_error[0] = '\0'; }

const char *g4_status_name(g4_status st) {
    static const char *const names[G4_STATUS_COUNT] = {
        "GEMMA4_OK",
        "GEMMA4_ERR_INVALID_ARGUMENT",
        "GEMMA4_ERR_IO",
        "GEMMA4_ERR_FORMAT",
        "GEMMA4_ERR_UNSUPPORTED",
        "GEMMA4_ERR_OUT_OF_MEMORY",
        "GEMMA4_ERR_DEVICE",
        "GEMMA4_ERR_CONTEXT_FULL",
        "GEMMA4_ERR_BUFFER_TOO_SMALL",
        "GEMMA4_ERR_INTERNAL",
        "GEMMA4_ERR_INVALID_TOKEN",
        "GEMMA4_ERR_CANCELLED",
        "GEMMA4_ERR_CONFIG",
        "GEMMA4_ERR_NO_TOKENIZER",
        "GEMMA4_ERR_BUSY",
    };
    if ((int)st < 0 || (int)st >= G4_STATUS_COUNT) return "GEMMA4_ERR_UNKNOWN";
    return names[st];
}
