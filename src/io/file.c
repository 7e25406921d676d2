/* Input files opened without blocking and refused unless regular; see file.h. */
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_name(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

int file_open_regular(const char *path, int *fd, uint64_t *size, oir_error *err) {
    *fd = -1;
    if (size) *size = 0;
    if (!path || !*path) return oir_fail(err, OIR_E_ARG, "empty file name");
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever. */
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (d < 0) return oir_fail(err, OIR_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(d, &sb) != 0) {
        int e = errno;
        close(d);
        return oir_fail(err, OIR_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(d);
        return oir_fail(err, OIR_E_IO, "%s: not a regular file (%s)", path, kind_name(sb.st_mode));
    }
    int fl = fcntl(d, F_GETFL);
    if (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return oir_fail(err, OIR_E_IO, "%s: cannot clear O_NONBLOCK: %s", path, strerror(e));
    }
    *fd = d;
    if (size) *size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    return OIR_OK;
}

int file_is_regular(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int file_read_regular(const char *path, size_t max_bytes, const char *what, char **buf,
                      size_t *len, oir_error *err) {
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int rc = file_open_regular(path, &fd, &size, err);
    if (rc) return rc;
    char *b = NULL;
    if (size > max_bytes) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: %llu bytes, expected %s of at most %zu bytes", path,
                      (unsigned long long)size, what ? what : "a file", max_bytes);
        goto cleanup;
    }
    size_t n = (size_t)size;
    b = malloc(n + 1);
    if (!b) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
        goto cleanup;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = oir_fail(err, OIR_E_IO, "%s: read error: %s", path, strerror(errno));
            goto cleanup;
        }
        if (k == 0) {
            rc = oir_fail(err, OIR_E_IO, "%s: file shrank while reading (%zu of %zu bytes)", path,
                          got, n);
            goto cleanup;
        }
        got += (size_t)k;
    }
    char extra;
    ssize_t k;
    do k = read(fd, &extra, 1);
    while (k < 0 && errno == EINTR);
    if (k != 0) {
        rc = oir_fail(err, OIR_E_IO, "%s: file grew while reading (more than %zu bytes)", path, n);
        goto cleanup;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
cleanup:
    free(b);
    close(fd);
    return rc;
}
