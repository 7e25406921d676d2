/* Running the built `oir` binary from a test: the binary's path from the
 * test's argv[0] (build/<cfg>/tests/test_x -> build/<cfg>/oir), a scratch
 * folder, and run() capturing exit status, stdout and stderr.
 * Header-only (static), included by the CLI tests. */
#ifndef OIR_TESTS_CLI_RUNNER_H
#define OIR_TESTS_CLI_RUNNER_H

#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

static char cr_bin[1024], cr_tmp[256];
static char cr_out[65536], cr_err[16384];

/* Sets the binary path and makes a scratch folder; 0 on success. */
static int cr_init(const char *argv0) {
    snprintf(cr_bin, sizeof cr_bin, "%s", argv0);
    char *slash = strrchr(cr_bin, '/');
    if (!slash) return -1;
    snprintf(slash, sizeof cr_bin - (size_t)(slash - cr_bin), "/../oir");
    snprintf(cr_tmp, sizeof cr_tmp, "/tmp/oir_cli_XXXXXX");
    return mkdtemp(cr_tmp) ? 0 : -1;
}

static void cr_cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cr_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cr_tmp);
}

/* Path in the scratch folder (rotating buffers: valid for 31 more calls). */
static const char *cr_path(const char *name) {
    static char buf[32][512];
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", cr_tmp, name);
    return buf[k];
}

static void cr_read(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return;
    size_t n = fread(buf, 1, cap - 1, fp);
    buf[n] = 0;
    fclose(fp);
}

/* Runs oir with a NULL-terminated argument list; returns the exit status
 * (-1: could not run; 128 + signal when killed). */
static int cr_run(const char *first, ...) {
    const char *args[96];
    int n = 0;
    args[n++] = cr_bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 95; a = va_arg(ap, const char *)) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char o[600], e[600];
    snprintf(o, sizeof o, "%s/.stdout", cr_tmp);
    snprintf(e, sizeof e, "%s/.stderr", cr_tmp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, cr_bin, &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    cr_read(o, cr_out, sizeof cr_out);
    cr_read(e, cr_err, sizeof cr_err);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The last run failed cleanly: exit 1 or 2, one stderr line
 * "oir <cmd>: ..." containing needle. */
static void cr_expect_error(const char *what, int rc, const char *cmd, const char *needle) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "oir %s: ", cmd);
    size_t len = strlen(cr_err);
    const char *nl = strchr(cr_err, '\n');
    CHECK(rc == 1 || rc == 2, "%s: exit status %d, expected 1 or 2", what, rc);
    CHECK(len > 0 && nl == cr_err + len - 1, "%s: expected one stderr line, got \"%s\"", what, cr_err);
    CHECK(!strncmp(cr_err, prefix, strlen(prefix)), "%s: stderr \"%s\" does not start with \"%s\"", what,
          cr_err, prefix);
    CHECK(strstr(cr_err, needle) != NULL, "%s: stderr \"%s\" does not name \"%s\"", what, cr_err, needle);
}

#endif
