// Internal status codes and the thread-local error message.
// The numeric values are the public gemma4_status values (abi/gemma4.h); they never change and new
// codes are only appended. g4_fail() formats a message into thread-local storage and returns the
// code, so every error site is one line: `return g4_fail(G4_ERR_FORMAT, "...", ...);`.
#ifndef G4_STATUS_H
#define G4_STATUS_H

typedef enum {
    G4_OK = 0,
    G4_ERR_INVALID_ARGUMENT = 1, // NULL pointer, bad enum value, negative count
    G4_ERR_IO = 2,               // file missing or unreadable
    G4_ERR_FORMAT = 3,           // file contents malformed (safetensors, json, tensor shape/dtype)
    G4_ERR_UNSUPPORTED = 4,      // valid input we do not implement (dtype, rope type, activation)
    G4_ERR_OUT_OF_MEMORY = 5,
    G4_ERR_DEVICE = 6,           // CUDA / cuBLAS failure or no device
    G4_ERR_CONTEXT_FULL = 7,     // session position + tokens would exceed n_ctx
    G4_ERR_BUFFER_TOO_SMALL = 8, // caller buffer capacity below the required size
    G4_ERR_INTERNAL = 9,
    G4_ERR_INVALID_TOKEN = 10,   // token id outside [0, vocab_size)
    G4_ERR_CANCELLED = 11,       // generation stopped by callback or gemma4_session_cancel
    G4_ERR_CONFIG = 12,          // config.json value missing or out of range
    G4_ERR_NO_TOKENIZER = 13,    // text function on a model directory without tokenizer.json
    G4_ERR_BUSY = 14,            // the session is running another call (e.g. re-entered from its callback)
} g4_status;

#define G4_STATUS_COUNT 15

// Records "message" for the calling thread and returns st. Always returns st, also for G4_OK.
g4_status g4_fail(g4_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Message of the last g4_fail on this thread ("" if none since g4_clear_error).
const char *g4_last_error(void);
void g4_clear_error(void);
const char *g4_status_name(g4_status st);

#define G4_TRY(expr)                                                                               \
    do {                                                                                           \
        g4_status st_ = (expr);                                                                    \
        if (st_ != G4_OK) return st_;                                                              \
    } while (0)

#define G4_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
