/* Test harness: counts checks, compares tensors, loads fixtures.
 * Every test binary ends with `return th_summary();`, which prints
 * "N passed, N failed" and returns non-zero on any failure. */
#ifndef OIR_TESTS_HARNESS_H
#define OIR_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/safetensors.h"

extern int th_passed, th_failed;

/* Records one check; prints the failure with file:line. */
int th_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(cond, ...) th_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* |got - ref| <= atol + rtol*|ref| elementwise; NaN/Inf in got fails. Prints
 * max abs and rel error and the first mismatching index. Counts one check. */
int th_close(const char *what, const float *got, const float *ref, size_t n, float atol,
             float rtol);
/* Same comparison without counting or printing (to test the checker itself). */
int th_close_quiet(const float *got, const float *ref, size_t n, float atol, float rtol);

/* Path of a fixture: $OIR_FIXTURES or "tests/fixtures", joined with name. */
const char *th_fixture_path(const char *name);

/* Opens tests/fixtures/<name>; a missing fixture is a failed check (never a
 * skip) and returns NULL. */
st_file *th_open_fixture(const char *name);
/* Tensor `tname` of a fixture converted to float32 (malloc'd, caller frees);
 * failure (missing tensor) counts as a failed check and returns NULL.
 * n_out (optional) receives the element count; t_out (optional) the entry. */
float *th_fixture_f32(st_file *f, const char *tname, size_t *n_out, tensor *t_out);

int th_summary(void);

#endif
