#include "io/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Not secret, only unlikely to repeat: O_EXCL makes any collision safe. */
static uint64_t next_random(void) {
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40) ^
                 (++counter * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

char *outfile_temp_name(const char *path, const char *suffix) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    size_t base_len = strlen(base);
    if (base_len > 64) base_len = 64;
    size_t n = dir_len + 1 + base_len + 1 + 6 + strlen(suffix) + 1;
    char *name = malloc(n);
    if (!name) return NULL;
    uint64_t r = next_random();
    char rnd[7];
    for (int i = 0; i < 6; i++, r /= 36) rnd[i] = alphabet[r % 36];
    rnd[6] = '\0';
    snprintf(name, n, "%.*s.%.*s.%s%s", (int)dir_len, path, (int)base_len, base, rnd, suffix);
    return name;
}

static void release(outfile *f) {
    free(f->tmp);
    free(f->path);
    f->fp = NULL;
    f->tmp = f->path = NULL;
}

int outfile_open(outfile *f, const char *path, oir_error *err) {
    memset(f, 0, sizeof *f);
    if (!path || !*path) return oir_fail(err, OIR_E_ARG, "output path: expected a file name, got an empty one");
    if (path[strlen(path) - 1] == '/')
        return oir_fail(err, OIR_E_ARG, "%s: expected a file name, got a folder name", path);
    if (!(f->path = strdup(path))) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        free(f->tmp);
        if (!(f->tmp = outfile_temp_name(path, ".tmp"))) {
            release(f);
            return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
        }
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        e = errno;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd < 0) {
        oir_fail(err, OIR_E_IO, "%s: cannot create a temp file beside it (%s)", path, strerror(e));
        release(f);
        return OIR_E_IO;
    }
    if (!(f->fp = fdopen(fd, "wb"))) {
        e = errno;
        close(fd);
        unlink(f->tmp);
        oir_fail(err, OIR_E_IO, "%s: cannot open %s (%s)", path, f->tmp, strerror(e));
        release(f);
        return OIR_E_IO;
    }
    return OIR_OK;
}

void outfile_abort(outfile *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    release(f);
}

int outfile_commit(outfile *f, oir_error *err) {
    if (!f->fp || !f->tmp) return oir_fail(err, OIR_E_INTERNAL, "outfile_commit: no open file");
    int bad = fflush(f->fp) != 0 || ferror(f->fp);
    int e = errno;
    if (fclose(f->fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    f->fp = NULL;
    if (bad) {
        oir_fail(err, OIR_E_IO, "%s: write failed (%s)", f->path, strerror(e));
        outfile_abort(f);
        return OIR_E_IO;
    }
    if (rename(f->tmp, f->path) != 0) {
        e = errno;
        oir_fail(err, OIR_E_IO, "%s: cannot replace it with the new file (%s)", f->path, strerror(e));
        outfile_abort(f);
        return OIR_E_IO;
    }
    release(f);
    return OIR_OK;
}

int outfile_write(const char *path, const void *data, size_t n, oir_error *err) {
    outfile f;
    int rc = outfile_open(&f, path, err);
    if (rc) return rc;
    if (n && fwrite(data, 1, n, f.fp) != n) {
        int e = errno;
        outfile_abort(&f);
        return oir_fail(err, OIR_E_IO, "%s: write failed (%s)", path, strerror(e));
    }
    return outfile_commit(&f, err);
}
