// Regular-file checks and whole-file reads; see file.h.
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a file";
}

g4_status g4_file_open(const char *path, int *fd, uint64_t *n_bytes) {
    *n_bytes = 0;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) return g4_fail(G4_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    g4_status st = G4_OK;
    if (fstat(*fd, &sb) != 0)
        st = g4_fail(G4_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = g4_fail(G4_ERR_IO, "%s: not a regular file (%s)", path, kind(sb.st_mode));
    if (st != G4_OK) {
        close(*fd);
        *fd = -1;
        return st;
    }
    *n_bytes = (uint64_t)sb.st_size;
    return G4_OK;
}

g4_status g4_file_read(const char *path, size_t max_bytes, char **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    int fd;
    uint64_t size;
    G4_TRY(g4_file_open(path, &fd, &size));
    size_t cap = size < max_bytes ? (size_t)size + 1 : max_bytes + 1, n = 0;
    if (cap < 4096) cap = 4096;
    char *buf = malloc(cap + 1);
    g4_status st = G4_OK;
    if (!buf) st = g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, cap);
    while (st == G4_OK) {
        if (n == cap) { // the file grew, or reports no size (/proc): grow up to max_bytes + 1
            size_t grown = cap > max_bytes / 2 ? max_bytes + 1 : 2 * cap;
            char *p = grown > cap ? realloc(buf, grown + 1) : NULL;
            if (!p && grown > cap)
                st = g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, grown);
            else if (!p)
                st = g4_fail(G4_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            if (!p) break;
            buf = p;
            cap = grown;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) st = g4_fail(G4_ERR_IO, "%s: read: %s", path, strerror(errno));
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (st == G4_OK && n > max_bytes)
        st = g4_fail(G4_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
    if (st != G4_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *n_out = n;
    return G4_OK;
}
