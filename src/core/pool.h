/* The kernels' worker pool: parallel loops that hold up on a busy machine.
 *
 * OpenMP's loops end in a barrier that waits for every thread, so when other
 * programs hold the cores, each of the thousands of small loops of a UNet
 * call waits for a descheduled thread to be run again (the demo took 14 min
 * instead of 30 s beside two busy loops). Here a loop is cut into chunks that
 * any thread claims from a shared counter; the calling thread claims chunks
 * too and only waits for chunks already started, never for a worker that has
 * not woken up. Idle workers spin briefly, then sleep on a futex.
 *
 * Chunk boundaries depend on the loop's size and grain only, never on the
 * thread count, and every kernel writes disjoint outputs per iteration, so
 * results are bit-identical for any thread count.
 *
 * One loop runs at a time: a pool_for from inside a chunk, or from a second
 * application thread while another loop runs, runs serially in its caller. */
#ifndef OIR_CORE_POOL_H
#define OIR_CORE_POOL_H

/* fn(ctx, begin, end, worker): iterations [begin, end) on thread `worker`
 * (0 = the caller; < pool_threads()), for per-thread scratch. */
typedef void (*pool_fn)(void *ctx, long begin, long end, int worker);

/* Runs fn over [0, n) in chunks of `grain` iterations (the last may be
 * shorter); returns when all are done. */
void pool_for(long n, long grain, pool_fn fn, void *ctx);

/* Threads a loop may use, the caller included (oir_set_threads sets it). */
int pool_threads(void);
void pool_set_threads(int n);

/* The grain that cuts n iterations of about `cost` work units each (e.g.
 * floats touched) into chunks of at least POOL_MIN_WORK units, so a chunk is
 * worth a wake-up. Depends only on n and cost. */
long pool_grain(long n, double cost);

#endif
