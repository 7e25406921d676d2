/* oir — Object-aware Inversion and Reassembly for image editing, in C11.
 *
 * Public API. Compiles as C and as C++. Every fallible call returns an
 * oir status (0 = OIR_OK) and fills an oir_error with a message that names
 * the file, tensor or field involved.
 */
#ifndef OIR_H
#define OIR_H

#ifdef __cplusplus
extern "C" {
#endif

#define OIR_VERSION_STRING "0.1.0"

enum {
    OIR_OK = 0,
    OIR_E_ARG = 1,         /* bad argument or option */
    OIR_E_IO = 2,          /* file missing, unreadable, unwritable */
    OIR_E_FORMAT = 3,      /* malformed file contents */
    OIR_E_SHAPE = 4,       /* tensor / image / mask shape mismatch */
    OIR_E_NOMEM = 5,       /* allocation failed or over budget */
    OIR_E_UNSUPPORTED = 6, /* valid but not supported (pickle, SDXL, ...) */
    OIR_E_CANCELLED = 7,   /* progress callback asked to stop */
    OIR_E_MISSING = 8,     /* required tensor or field absent */
    OIR_E_INTERNAL = 9
};

typedef struct oir_error {
    int code;
    char message[1024];
} oir_error;

/* Short name of a status code ("bad file format"). */
const char *oir_status_name(int code);

/* Library version, e.g. "0.1.0". */
const char *oir_version(void);

/* Number of CPU threads used by kernels and BLAS (default: all cores). */
void oir_set_threads(int n);
int oir_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
