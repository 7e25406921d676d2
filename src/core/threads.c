#include "core/threads.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/pool.h"
#include "oir.h"

void openblas_set_num_threads(int num_threads); /* from OpenBLAS */

static int thread_count;

void oir_set_threads(int n) {
    if (n < 1) n = 1;
    thread_count = n;
    pool_set_threads(n);
    /* BLAS runs single-threaded inside the pool's chunks (ops.c gemm). */
    openblas_set_num_threads(1);
}

int oir_get_threads(void) {
    if (thread_count == 0) threads_init();
    return thread_count;
}

/* The cores this process may run on (taskset, cgroups' cpusets). */
static int usable_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void threads_init(void) {
    if (thread_count) return;
    const char *env = getenv("OIR_THREADS");
    int n = env ? atoi(env) : 0;
    if (n < 1) n = usable_cores();
    oir_set_threads(n);
}

const char *oir_version(void) { return OIR_VERSION_STRING; }
