/* Input files: every file the library reads (images, masks, safetensors,
 * JSON configs) is opened here, so that anything that is not a regular file
 * (a FIFO, a character device, a directory, a socket) is refused at once
 * instead of blocking in open() or read() forever or reading without end.
 *
 * The open never blocks: O_NONBLOCK | O_CLOEXEC | O_NOCTTY, then fstat on the
 * descriptor (no race with a rename in between), S_ISREG, then O_NONBLOCK is
 * cleared again for ordinary reads.
 *
 *     int fd; uint64_t size;
 *     if (file_open_regular(path, &fd, &size, &err)) return err.code;
 *     ...
 *     close(fd);
 *
 *     char *text; size_t len;
 *     if (file_read_regular(path, 16 << 20, "a JSON config", &text, &len, &err)) ...
 *     free(text);
 */
#ifndef OIR_IO_FILE_H
#define OIR_IO_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Opens path read-only; OIR_E_IO "<path>: cannot open: <reason>" or
 * "<path>: not a regular file (a FIFO)" (also for directories and devices).
 * *fd is -1 on failure; size (may be NULL) receives the file's size. */
int file_open_regular(const char *path, int *fd, uint64_t *size, oir_error *err);

/* 1 when path names a regular file (stat, never opens). */
int file_is_regular(const char *path);

/* Reads a whole regular file into a malloc'd buffer with a NUL after the
 * last byte (*len excludes it). Files over max_bytes are refused before any
 * allocation: OIR_E_FORMAT "<path>: N bytes, expected <what> of at most M".
 * A file that changes size while being read is OIR_E_IO. */
int file_read_regular(const char *path, size_t max_bytes, const char *what, char **buf,
                      size_t *len, oir_error *err);

#endif
