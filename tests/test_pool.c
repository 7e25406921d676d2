/* The kernels' worker pool (src/core/pool.h): every iteration runs exactly
 * once, chunk bounds follow the grain, worker ids stay below the thread
 * count, nested and concurrent callers run inline, and thousands of short
 * loops in a row neither lose a wake-up nor a chunk. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "harness.h"
#include "oir.h"

typedef struct {
    _Atomic int *hits;
    long grain, n;
    _Atomic int bad_bounds, bad_worker;
    int threads;
} count_job;

static void count_chunk(void *ctx, long b, long e, int worker) {
    count_job *j = ctx;
    if (b % j->grain != 0 || e <= b || e - b > j->grain || (e - b < j->grain && e != j->n)) j->bad_bounds++;
    if (worker < 0 || worker >= j->threads) j->bad_worker++;
    for (long i = b; i < e; i++) j->hits[i]++;
}

/* Runs pool_for(n, grain) and checks each index was hit exactly once. */
static int covers_once(long n, long grain, int threads) {
    count_job j = {calloc((size_t)(n > 0 ? n : 1), sizeof(_Atomic int)), grain < 1 ? 1 : grain, n, 0, 0, threads};
    pool_for(n, grain, count_chunk, &j);
    int ok = j.bad_bounds == 0 && j.bad_worker == 0;
    for (long i = 0; i < n; i++) ok &= j.hits[i] == 1;
    free((void *)j.hits);
    return ok;
}

static void test_coverage(void) {
    static const long ns[] = {0, 1, 2, 7, 64, 1000, 100003};
    static const long grains[] = {1, 3, 64, 1000, 200000};
    for (int t = 1; t <= 4; t++) {
        oir_set_threads(t);
        CHECK(pool_threads() == t, "pool_threads %d after oir_set_threads(%d)", pool_threads(), t);
        int ok = 1;
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) ok &= covers_once(ns[a], grains[b], t);
        CHECK(ok, "%d thread(s): every index once, chunks on the grain, worker ids < threads", t);
    }
}

/* A pool_for inside a chunk runs inline in that chunk's thread. */
typedef struct {
    _Atomic long sum;
} nest_job;

static void inner_chunk(void *ctx, long b, long e, int worker) {
    nest_job *j = ctx;
    for (long i = b; i < e; i++) j->sum += i;
}

static void outer_chunk(void *ctx, long b, long e, int worker) {
    for (long i = b; i < e; i++) pool_for(100, 7, inner_chunk, ctx);
}

static void test_nested(void) {
    oir_set_threads(3);
    nest_job j = {0};
    pool_for(50, 1, outer_chunk, &j);
    CHECK(j.sum == 50L * 4950, "nested pool_for: sum %ld, expected %ld", (long)j.sum, 50L * 4950);
}

/* Two application threads looping at once: each loop completes correctly
 * (one of them runs inline while the other holds the pool). */
static void *concurrent_caller(void *arg) {
    int *ok = arg;
    for (int r = 0; r < 300; r++) *ok &= covers_once(5000, 17, pool_threads());
    return NULL;
}

static void test_concurrent(void) {
    oir_set_threads(2);
    int ok1 = 1, ok2 = 1;
    pthread_t t;
    int started = pthread_create(&t, NULL, concurrent_caller, &ok1) == 0;
    concurrent_caller(&ok2);
    if (started) pthread_join(t, NULL);
    CHECK(started && ok1 && ok2, "two threads calling pool_for at once");
}

/* Many short loops back to back, with sleeps between some, so workers go
 * both from spinning and from futex sleep to work. */
static void test_many_loops(void) {
    oir_set_threads(3);
    int ok = 1;
    for (int r = 0; r < 20000; r++) {
        ok &= covers_once(40 + r % 50, 1 + r % 5, 3);
        if (r % 2000 == 0) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(ok, "20000 short loops, 3 threads");
}

static void test_grain(void) {
    CHECK(pool_grain(1000, 1.0) == 1000, "grain: cheap iterations make one chunk (got %ld)", pool_grain(1000, 1.0));
    CHECK(pool_grain(1000000, 1.0) == 16384, "grain: 16384 units per chunk (got %ld)", pool_grain(1000000, 1.0));
    CHECK(pool_grain(100, 1e6) == 1, "grain: expensive iterations one per chunk");
    CHECK(pool_grain(0, 1.0) == 1 && pool_grain(10, 0.0) == 10, "grain: degenerate sizes");
}

int main(void) {
    test_coverage();
    test_nested();
    test_concurrent();
    test_many_loops();
    test_grain();
    return th_summary();
}
