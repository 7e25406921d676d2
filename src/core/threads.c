#include "core/threads.h"

#include <stdlib.h>

#include "oir.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int num_threads); /* from OpenBLAS */

static int thread_count;

void oir_set_threads(int n) {
    if (n < 1) n = 1;
    thread_count = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int oir_get_threads(void) {
    if (thread_count == 0) threads_init();
    return thread_count;
}

void threads_init(void) {
    if (thread_count) return;
    const char *env = getenv("OIR_THREADS");
    int n = env ? atoi(env) : 0;
#ifdef _OPENMP
    if (n < 1) n = omp_get_num_procs();
#endif
    oir_set_threads(n < 1 ? 1 : n);
}

const char *oir_version(void) { return OIR_VERSION_STRING; }
