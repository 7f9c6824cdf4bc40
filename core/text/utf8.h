// UTF-8 validation of text given to the library: every text input of the public API must be
// well-formed UTF-8 (as a Python str always is), checked once at the boundary so that no
// component replaces or misreads stray bytes.
#ifndef G4_UTF8_H
#define G4_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// Length of the well-formed UTF-8 sequence at s[0, n) (n >= 1): 1-4, or 0 when it is not one
// (stray continuation byte, truncated sequence, overlong form, UTF-16 surrogate, > U+10FFFF).
int g4_utf8_seq(const unsigned char *s, size_t n);
// true when s[0, n) is well-formed UTF-8; otherwise *bad (may be NULL) = offset of the first
// byte that starts no well-formed sequence.
bool g4_utf8_valid(const char *s, size_t n, size_t *bad);

#endif
