#include "cli/cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/threads.h"

int cli_parse_int(const char *opt, const char *s, int min, int max, int *out, oir_error *err) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || isspace((unsigned char)*s) || *end)
        return oir_fail(err, OIR_E_ARG, "%s: '%s' is not an integer", opt, s);
    if (errno == ERANGE || v < min || v > max)
        return oir_fail(err, OIR_E_ARG, "%s: %s is outside %d..%d", opt, s, min, max);
    *out = (int)v;
    return OIR_OK;
}

int cli_parse_float(const char *opt, const char *s, double min, double max, float *out,
                    oir_error *err) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || isspace((unsigned char)*s) || *end || !isfinite(v))
        return oir_fail(err, OIR_E_ARG, "%s: '%s' is not a number", opt, s);
    if (v < min || v > max)
        return oir_fail(err, OIR_E_ARG, "%s: %s is outside %g..%g", opt, s, min, max);
    *out = (float)v;
    return OIR_OK;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out, oir_error *err) {
    char *end = NULL;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return oir_fail(err, OIR_E_ARG, "%s: '%s' is not a non-negative integer", opt, s);
    unsigned long long v = strtoull(s, &end, 0);
    if (*end) return oir_fail(err, OIR_E_ARG, "%s: '%s' is not a non-negative integer", opt, s);
    if (errno == ERANGE) return oir_fail(err, OIR_E_ARG, "%s: %s does not fit in 64 bits", opt, s);
    *out = (uint64_t)v;
    return OIR_OK;
}

static int set_value(const cli_opt *o, const char *val, oir_error *err) {
    switch (o->kind) {
    case CLI_STR: *(const char **)o->dst = val; return OIR_OK;
    case CLI_INT: return cli_parse_int(o->name, val, (int)o->min, (int)o->max, o->dst, err);
    case CLI_FLOAT: return cli_parse_float(o->name, val, o->min, o->max, o->dst, err);
    case CLI_U64: return cli_parse_u64(o->name, val, o->dst, err);
    case CLI_STRS: {
        cli_strs *l = o->dst;
        if (l->n >= CLI_STRS_MAX)
            return oir_fail(err, OIR_E_ARG, "%s: at most %d times", o->name, CLI_STRS_MAX);
        l->v[l->n++] = val;
        return OIR_OK;
    }
    case CLI_FLAG: break;
    }
    return oir_fail(err, OIR_E_INTERNAL, "%s: bad option kind", o->name);
}

int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char **pos, int max_pos,
              int *npos, oir_error *err) {
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) continue;
        if (a[0] != '-' || !a[1]) {
            if (np >= max_pos) return oir_fail(err, OIR_E_ARG, "unexpected argument '%s'", a);
            pos[np++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (int k = 0; k < nopts && !o; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a, len)) o = &opts[k];
        if (!o) return oir_fail(err, OIR_E_ARG, "unknown option %.*s", (int)len, a);
        if (o->kind == CLI_FLAG) {
            if (eq && a[len] == '=') return oir_fail(err, OIR_E_ARG, "%s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val;
        if (a[len] == '=') {
            val = a + len + 1;
        } else {
            if (i + 1 >= argc) return oir_fail(err, OIR_E_ARG, "%s needs a value", o->name);
            val = argv[++i];
        }
        int rc = set_value(o, val, err);
        if (rc) return rc;
    }
    if (npos) *npos = np;
    return OIR_OK;
}

int cli_check_out_file(const char *out, const output_input *in, int n, oir_error *err) {
    int rc = output_check_inputs(out, "--out", 0, in, n, err);
    return rc ? rc : output_check_file(out, "--out", err);
}

int cli_begin_out_dir(output_dir *d, const char *out, const output_input *in, int n, oir_error *err) {
    int rc = output_check_inputs(out, "--out", 1, in, n, err);
    return rc ? rc : output_dir_begin(d, out, "--out", err);
}

int cli_check_png_name(const char *path, oir_error *err) {
    size_t n = strlen(path);
    if (n < 4 || strcasecmp(path + n - 4, ".png"))
        return oir_fail(err, OIR_E_ARG, "--out %s: oir writes PNG images; use a .png name", path);
    return OIR_OK;
}

int cli_check_input_file(const char *flag, const char *path, oir_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return oir_fail(err, OIR_E_IO, "%s %s: no such file", flag, path);
    if (S_ISDIR(sb.st_mode))
        return oir_fail(err, OIR_E_IO, "%s %s: is a folder, not a file", flag, path);
    /* a FIFO or device would block the reader or never end */
    if (!S_ISREG(sb.st_mode))
        return oir_fail(err, OIR_E_IO, "%s %s: not a regular file (a FIFO or device); give a file", flag, path);
    if (access(path, R_OK) != 0) return oir_fail(err, OIR_E_IO, "%s %s: not readable", flag, path);
    return OIR_OK;
}

void cli_set_threads(int n) {
    if (n > 0)
        oir_set_threads(n);
    else
        threads_init();
}
