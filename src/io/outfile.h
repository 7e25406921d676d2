/* Atomic output files: the one way oir writes a file.
 *
 *     outfile f;
 *     if (outfile_open(&f, "out/report.json", err)) return err->code;
 *     fputs(text, f.fp);
 *     return outfile_commit(&f, err);    (or outfile_abort(&f) on a failure)
 *
 * outfile_open creates a fresh temp file in the destination's folder,
 * ".<name>.<6 random chars>.tmp", with open(O_CREAT | O_EXCL | O_NOFOLLOW |
 * O_CLOEXEC, 0644) (the umask applies): an existing file or symlink of that
 * name is never opened, so a planted "<path>.tmp" symlink cannot redirect
 * the write. outfile_commit flushes, closes and renames the temp file over
 * the destination (a symlink at the destination is replaced, not followed;
 * a folder there is an error). On any failure, and in outfile_abort, the
 * temp file is removed: no partial file is ever visible at the destination.
 * No fsync: a crash may lose the new file but never truncates the old one. */
#ifndef OIR_IO_OUTFILE_H
#define OIR_IO_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct {
    FILE *fp;   /* write through this (binary) */
    char *tmp;  /* the temp file */
    char *path; /* the destination */
} outfile;

int outfile_open(outfile *f, const char *path, oir_error *err);
/* Flush, close, rename over the destination; releases f in every case. */
int outfile_commit(outfile *f, oir_error *err);
/* Close and remove the temp file; releases f. Safe on a zeroed or released f. */
void outfile_abort(outfile *f);

/* The whole file from one buffer, atomically. */
int outfile_write(const char *path, const void *data, size_t n, oir_error *err);

/* A fresh name "<dir>/.<base>.<6 random chars><suffix>" (base cut to 64
 * bytes) for a temp file or folder beside path; malloc'd, NULL when out of
 * memory. Callers create it exclusively (O_EXCL, mkdir) and retry on EEXIST. */
char *outfile_temp_name(const char *path, const char *suffix);

#endif
