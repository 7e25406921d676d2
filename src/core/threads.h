/* Threading: one OpenMP pool for our kernels, and OpenBLAS set to the same
 * count. Kernels split work so each thread owns disjoint output rows, so
 * results do not depend on the thread count. BLAS is only ever called from
 * outside our parallel regions, so the two never oversubscribe the cores. */
#ifndef OIR_CORE_THREADS_H
#define OIR_CORE_THREADS_H

/* Applies OIR_THREADS from the environment once (default: all cores). */
void threads_init(void);

#endif
