/* Errors: every fallible call returns an oir status (0 = OIR_OK) and fills an
 * oir_error whose message names the file, tensor or field and expected vs got.
 * The library never prints, exits or aborts on bad input. */
#ifndef OIR_CORE_ERROR_H
#define OIR_CORE_ERROR_H

#include "oir.h"

/* Sets err (when non-NULL) to code and a printf-style message; returns code,
 * so callers can write `return oir_fail(err, OIR_E_FORMAT, "...")`. */
int oir_fail(oir_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context ("loading unet: <old message>"). */
int oir_error_prefix(oir_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
