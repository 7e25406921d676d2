#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int oir_fail(oir_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int oir_error_prefix(oir_error *err, const char *fmt, ...) {
    if (!err) return OIR_E_INTERNAL;
    char prefix[256], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* prefix + ": " + old, truncated to fit */
    size_t n = strlen(prefix), cap = sizeof err->message;
    if (n > cap - 3) n = cap - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t rest = strnlen(old, sizeof old);
    if (rest > cap - n - 3) rest = cap - n - 3;
    memcpy(err->message + n + 2, old, rest);
    err->message[n + 2 + rest] = '\0';
    return err->code;
}

const char *oir_status_name(int code) {
    switch (code) {
    case OIR_OK: return "ok";
    case OIR_E_ARG: return "bad argument";
    case OIR_E_IO: return "i/o error";
    case OIR_E_FORMAT: return "bad file format";
    case OIR_E_SHAPE: return "shape mismatch";
    case OIR_E_NOMEM: return "out of memory";
    case OIR_E_UNSUPPORTED: return "unsupported";
    case OIR_E_CANCELLED: return "cancelled";
    case OIR_E_MISSING: return "missing tensor";
    case OIR_E_NUMERIC: return "numeric overflow";
    default: return "internal error";
    }
}
