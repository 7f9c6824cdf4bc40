// libFuzzer target: g4_chat_render. Input layout: byte 0 picks add_generation_prompt (% 3);
// the rest is split at 0xFF bytes into messages, each message's first byte picks its role
// (system, user, assistant, model, or an invalid one) and the rest is its content
// (NUL-terminated copy; a NUL inside ends it early, as for any C string).
// Checks: the size query equals the bytes written, a one-short buffer is refused untouched.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

#define MAX_MSG 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const role_names[] = {"system", "user", "assistant", "model", "tool"};
    if (size == 0) return 0;
    int gen = data[0] % 3;
    const char *roles[MAX_MSG];
    char *contents[MAX_MSG];
    size_t n = 0, start = 1;
    int bad_role = 0;
    for (size_t i = 1; i <= size && n < MAX_MSG; i++) {
        if (i < size && data[i] != 0xFF) continue;
        size_t a = start, b = i;
        start = i + 1;
        unsigned r = a < b ? data[a++] % 8u : 1u; // weight towards valid roles
        if (r > 4) r = r - 4;                       // 5,6,7 -> 1,2,3
        if (r == 4) bad_role = 1;
        roles[n] = role_names[r];
        contents[n] = malloc(b - a + 1);
        if (!contents[n]) abort();
        memcpy(contents[n], data + a, b - a);
        contents[n][b - a] = '\0';
        n++;
    }
    size_t need = 0;
    g4_status st = g4_chat_render(roles, (const char *const *)contents, n, gen, NULL, 0, &need);
    if (bad_role || n == 0) {
        if (st != G4_ERR_INVALID_ARGUMENT) abort();
    } else {
        if (st != G4_OK) abort();
        char *buf = malloc(need + 1);
        if (!buf) abort();
        size_t got = 0;
        if (g4_chat_render(roles, (const char *const *)contents, n, gen, buf, need + 1, &got) !=
                G4_OK || got != need || buf[need] != '\0' || strlen(buf) > need)
            abort();
        if (need < 5 || memcmp(buf, "<bos>", 5)) abort();
        memset(buf, 0x5A, need + 1);
        if (g4_chat_render(roles, (const char *const *)contents, n, gen, buf, need - 1, &got) !=
                G4_ERR_BUFFER_TOO_SMALL || got != need)
            abort();
        for (size_t i = 0; i < need + 1; i++)
            if ((unsigned char)buf[i] != 0x5A) abort(); // untouched on BUFFER_TOO_SMALL
        free(buf);
    }
    for (size_t i = 0; i < n; i++) free(contents[i]);
    return 0;
}
