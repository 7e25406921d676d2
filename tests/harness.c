#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int th_passed, th_failed;

int th_check(int ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        th_passed++;
        return 1;
    }
    th_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

static int close_scan(const float *got, const float *ref, size_t n, float atol, float rtol,
                      double *max_abs, double *max_rel, size_t *first_bad) {
    *max_abs = 0;
    *max_rel = 0;
    *first_bad = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        int bad = !isfinite(got[i]) || !(d <= atol + rtol * fabs((double)ref[i]));
        if (isfinite(d) && d > *max_abs) *max_abs = d;
        if (isfinite(d) && ref[i] != 0 && d / fabs((double)ref[i]) > *max_rel)
            *max_rel = d / fabs((double)ref[i]);
        if (bad && *first_bad == (size_t)-1) *first_bad = i;
    }
    return *first_bad == (size_t)-1;
}

int th_close_quiet(const float *got, const float *ref, size_t n, float atol, float rtol) {
    double a, r;
    size_t bad;
    return close_scan(got, ref, n, atol, rtol, &a, &r, &bad);
}

int th_close(const char *what, const float *got, const float *ref, size_t n, float atol,
             float rtol) {
    double max_abs, max_rel;
    size_t bad;
    if (!got || !ref) return th_check(0, __FILE__, __LINE__, "%s: no data to compare", what);
    int ok = close_scan(got, ref, n, atol, rtol, &max_abs, &max_rel, &bad);
    if (ok) {
        th_passed++;
        printf("  ok   %-40s n=%zu max_abs=%.3g max_rel=%.3g (atol %.1g rtol %.1g)\n", what, n,
               max_abs, max_rel, atol, rtol);
        return 1;
    }
    th_failed++;
    fprintf(stderr,
            "FAIL %s: n=%zu max_abs=%.3g max_rel=%.3g (atol %.1g rtol %.1g); first mismatch at "
            "[%zu]: got %.8g ref %.8g\n",
            what, n, max_abs, max_rel, atol, rtol, bad, got[bad], ref[bad]);
    return 0;
}

const char *th_fixture_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("OIR_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/fixtures", name);
    return buf;
}

st_file *th_open_fixture(const char *name) {
    st_file *f = NULL;
    oir_error err = {0};
    const char *path = th_fixture_path(name);
    if (st_open(&f, path, &err) != OIR_OK) {
        th_check(0, __FILE__, __LINE__, "fixture %s: %s", path, err.message);
        return NULL;
    }
    return f;
}

float *th_fixture_f32(st_file *f, const char *tname, size_t *n_out, tensor *t_out) {
    if (!f) return NULL;
    const tensor *t = st_find(f, tname);
    if (!t) {
        th_check(0, __FILE__, __LINE__, "fixture tensor %s is missing", tname);
        return NULL;
    }
    size_t n = (size_t)tensor_numel(t);
    float *buf = malloc((n ? n : 1) * sizeof(float));
    oir_error err = {0};
    if (!buf || convert_to_f32(buf, t->data, t->type, n, &err) != OIR_OK) {
        th_check(0, __FILE__, __LINE__, "fixture tensor %s: %s", tname, err.message);
        free(buf);
        return NULL;
    }
    if (n_out) *n_out = n;
    if (t_out) *t_out = *t;
    return buf;
}

int th_summary(void) {
    printf("%d passed, %d failed\n", th_passed, th_failed);
    return th_failed ? 1 : 0;
}
