// UTF-8 well-formedness (RFC 3629, Unicode Table 3-7); see utf8.h.
#include "utf8.h"

int g4_utf8_seq(const unsigned char *s, size_t n) {
    const unsigned c = s[0];
    const int len = c < 0x80                  ? 1
                    : c >= 0xC2 && c <= 0xDF ? 2
                    : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xF0 && c <= 0xF4 ? 4
                                             : 0;
    if (!len || n < (size_t)len) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    // second-byte ranges that exclude overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4)
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

bool g4_utf8_valid(const char *s, size_t n, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) { // fast path for ASCII
            i++;
            continue;
        }
        const int len = g4_utf8_seq(p + i, n - i);
        if (!len) {
            if (bad) *bad = i;
            return false;
        }
        i += (size_t)len;
    }
    return true;
}
