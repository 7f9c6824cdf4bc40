// Opening checkpoint files that may be hostile: only regular files are accepted, and every error
// names the path. A FIFO would block open() or read() forever, a directory or device is never a
// checkpoint, and /dev/zero would be read until memory runs out.
#ifndef G4_FILE_H
#define G4_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

// Opens path read-only (never blocking) and checks that it is a regular file. On success *fd is
// the open descriptor (the caller closes it) and *n_bytes its size; on error *fd is -1:
// G4_ERR_IO ("PATH: No such file or directory", "PATH: not a regular file (a directory)", ...).
g4_status g4_file_open(const char *path, int *fd, uint64_t *n_bytes);

// Reads a whole regular file into *out (malloc'd, NUL-terminated; the caller frees it) and sets
// *n_out to its byte count. Reads to the end of the file, not just its stat size (files in /proc
// report 0). G4_ERR_IO as g4_file_open or when a read fails; G4_ERR_FORMAT when the file holds
// more than max_bytes. On error *out is NULL.
g4_status g4_file_read(const char *path, size_t max_bytes, char **out, size_t *n_out);

#endif
