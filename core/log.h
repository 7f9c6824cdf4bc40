// Library logging: progress and warnings only (errors travel as statuses). Silent unless the
// user installs a callback with gemma4_set_log_callback.
#ifndef G4_LOG_H
#define G4_LOG_H

enum { G4_LOG_ERROR = 0, G4_LOG_WARN = 1, G4_LOG_INFO = 2, G4_LOG_DEBUG = 3 };

typedef void (*g4_log_fn)(int level, const char *message, void *user_data);

// Thread-safe: the callback and its user_data are swapped together under a lock.
void g4_log_set(g4_log_fn fn, void *user_data);
void g4_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
