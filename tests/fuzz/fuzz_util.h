/* Helpers shared by the fuzz harnesses (tests/fuzz/fuzz_<target>.c).
 *
 * Each harness defines `static int fuzz_<target>_one(const uint8_t *, size_t)`
 * and ends with FUZZ_ENTRY(fuzz_<target>_one). In the libFuzzer build that
 * becomes LLVMFuzzerTestOneInput; tests/test_fuzz_regressions.c defines
 * FUZZ_REGRESSION and includes every harness, so the same functions run the
 * saved crash inputs in the normal test build.
 *
 * Parsers that take a path get the bytes through files in one temporary
 * folder per process ($TMPDIR, else /dev/shm, else /tmp; removed at exit; a
 * tmpfs matters: rewriting files on a disk with discard is ~10x slower): fuzz_write(name, ...)
 * (re)writes <folder>/<name> and returns its path. The harness code may abort()
 * on its own failures (a temp file that cannot be written); the library never
 * does. */
#ifndef OIR_FUZZ_UTIL_H
#define OIR_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#ifdef FUZZ_REGRESSION
#define FUZZ_ENTRY(fn) /* called by tests/test_fuzz_regressions.c */
#else
#define FUZZ_ENTRY(fn)                                                   \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);        \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {       \
        return fn(data, size);                                           \
    }
#endif

#define FUZZ_UNUSED __attribute__((unused))

/* An invariant of the library that a harness checks beyond "no crash". */
#define FUZZ_ASSERT(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* rc, and with OIR_FUZZ_VERBOSE set, prints the error of a failed call (to
 * see how far a seed gets). */
#define FUZZ_CALL(what, call, err) fuzz_note(what, (call), err)
static FUZZ_UNUSED int fuzz_note(const char *what, int rc, const oir_error *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("OIR_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "  %s: %s\n", what, rc ? err->message : "ok");
    return rc;
}

#define FUZZ_MAX_PATHS 64

static char fuzz_root[512];
static char *fuzz_paths[FUZZ_MAX_PATHS]; /* files and folders made, in order */
static int fuzz_npaths;

static void fuzz_die(const char *what, const char *path) {
    fprintf(stderr, "fuzz harness: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

static void fuzz_cleanup(void) {
    for (int i = fuzz_npaths - 1; i >= 0; i--) {
        remove(fuzz_paths[i]); /* a file, or a folder emptied just before */
        free(fuzz_paths[i]);
    }
    fuzz_npaths = 0;
    if (fuzz_root[0]) rmdir(fuzz_root);
    fuzz_root[0] = '\0';
}

/* The process's temporary folder, made on first use. */
static FUZZ_UNUSED const char *fuzz_dir(void) {
    if (fuzz_root[0]) return fuzz_root;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_root, sizeof fuzz_root, "%s/oir-fuzz-XXXXXX", tmp);
    if (!mkdtemp(fuzz_root)) fuzz_die("cannot make", fuzz_root);
    atexit(fuzz_cleanup);
    return fuzz_root;
}

static void fuzz_remember(const char *path) {
    for (int i = 0; i < fuzz_npaths; i++)
        if (!strcmp(fuzz_paths[i], path)) return;
    if (fuzz_npaths == FUZZ_MAX_PATHS) {
        errno = ENOSPC;
        fuzz_die("too many temp paths at", path);
    }
    if (!(fuzz_paths[fuzz_npaths++] = strdup(path))) fuzz_die("out of memory for", path);
}

/* <folder>/<name>, in a static buffer of the caller's choosing. */
static const char *fuzz_path(char *buf, size_t cap, const char *name) {
    if ((size_t)snprintf(buf, cap, "%s/%s", fuzz_dir(), name) >= cap) {
        errno = ENAMETOOLONG;
        fuzz_die("path too long:", name);
    }
    return buf;
}

/* Makes the folder <folder>/<name> (and its parents) if absent; returns its
 * path (static storage, one per distinct name). */
static FUZZ_UNUSED const char *fuzz_subdir(const char *name) {
    char p[1024];
    fuzz_path(p, sizeof p, name);
    for (char *s = p + strlen(fuzz_dir()) + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) == 0) fuzz_remember(p);
        else if (errno != EEXIST) fuzz_die("cannot make", p);
        *s = '/';
    }
    if (mkdir(p, 0700) == 0) fuzz_remember(p);
    else if (errno != EEXIST) fuzz_die("cannot make", p);
    for (int i = 0; i < fuzz_npaths; i++)
        if (!strcmp(fuzz_paths[i], p)) return fuzz_paths[i];
    fuzz_remember(p); /* existed already (made by an earlier run of this process) */
    return fuzz_paths[fuzz_npaths - 1];
}

/* Writes data to <folder>/<name> (parent folders made as needed) and returns
 * the path (static storage, one per distinct name). */
static FUZZ_UNUSED const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    char p[1024];
    const char *slash = strrchr(name, '/');
    if (slash) {
        char sub[512];
        snprintf(sub, sizeof sub, "%.*s", (int)(slash - name), name);
        fuzz_subdir(sub);
    }
    fuzz_path(p, sizeof p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fuzz_die("cannot write", p);
    for (size_t off = 0; off < size;) {
        ssize_t k = write(fd, data + off, size - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) fuzz_die("cannot write", p);
        off += (size_t)k;
    }
    close(fd);
    fuzz_remember(p);
    for (int i = 0; i < fuzz_npaths; i++)
        if (!strcmp(fuzz_paths[i], p)) return fuzz_paths[i];
    return NULL; /* not reached */
}

/* Removes <folder>/<name> if present (an optional file absent this time). */
static FUZZ_UNUSED void fuzz_unlink(const char *name) {
    char p[1024];
    if (unlink(fuzz_path(p, sizeof p, name)) != 0 && errno != ENOENT) fuzz_die("cannot remove", p);
}

/* A NUL-terminated malloc'd copy of data (embedded NULs kept; the C string
 * ends at the first). */
static FUZZ_UNUSED char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) fuzz_die("out of memory for", "a copy of the input");
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
