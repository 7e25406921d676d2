/* Threading: the kernels run on their own worker pool (pool.h), which holds
 * up on a busy machine; BLAS is called single-threaded inside the pool's
 * chunks. Kernels split work so each chunk owns disjoint output rows, with
 * chunk boundaries fixed by the sizes, so results do not depend on the
 * thread count. */
#ifndef OIR_CORE_THREADS_H
#define OIR_CORE_THREADS_H

/* Applies OIR_THREADS from the environment once (default: the cores this
 * process may use). */
void threads_init(void);

#endif
