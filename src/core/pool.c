/* The kernels' worker pool (pool.h): chunk claiming on one atomic ticket,
 * futex sleeps after a short spin. */
#include "core/pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_THREADS 256
#define POOL_MIN_WORK 16384.0

/* The ticket is (generation << 32) | chunks left to claim. A thread that
 * claims a chunk of generation g by compare-and-swap knows job g cannot end
 * (and its fields cannot change) before it reports that chunk done, so a
 * worker that wakes late never runs a chunk of the wrong job. */
static struct {
    pthread_mutex_t run_lock;    /* one loop at a time */
    pthread_mutex_t start_lock;  /* worker creation */
    int threads;                 /* allowed, caller included */
    int started;                 /* workers created (caller excluded) */
    _Atomic uint32_t gen;        /* futex word: bumped for each new job */
    _Atomic uint64_t ticket;
    _Atomic long done;           /* chunks finished in the current job */
    _Atomic uint32_t done_seq;   /* futex word: the caller sleeps on it */
    _Atomic int caller_sleeping;
    _Atomic int sleepers;        /* workers asleep on gen */
    _Atomic int limit;           /* workers 1..limit-1 take part */
    /* the current job: written before its generation is published */
    pool_fn fn;
    void *ctx;
    long n, grain, chunks;
    /* contention (caller only): see adapt() */
    double solo_until_us, delay_window_start_us, delay_at_start_us;
} P = {.run_lock = PTHREAD_MUTEX_INITIALIZER, .start_lock = PTHREAD_MUTEX_INITIALIZER, .threads = 1};

static _Thread_local int in_chunk; /* a pool_for inside a chunk runs inline */

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

/* How long an idle thread spins before it sleeps: long enough to bridge the
 * serial code between two loops on an idle machine, short enough not to burn
 * a busy machine's cores. OIR_SPIN_US overrides (0: sleep at once). */
static double spin_us(void) {
    static double v = -1;
    if (v < 0) {
        const char *e = getenv("OIR_SPIN_US");
        double x = e ? atof(e) : 50.0;
        v = x >= 0 && x <= 1e6 ? x : 50.0;
    }
    return v;
}

/* Claims and runs chunks of job `g` until none is left. */
static void run_chunks(uint32_t g, int worker) {
    for (;;) {
        uint64_t t = atomic_load(&P.ticket);
        if ((uint32_t)(t >> 32) != g || (uint32_t)t == 0) return;
        if (!atomic_compare_exchange_weak(&P.ticket, &t, t - 1)) continue;
        long c = P.chunks - (long)(uint32_t)t; /* job g is pinned until this chunk is done */
        long b = c * P.grain, e = b + P.grain < P.n ? b + P.grain : P.n;
        in_chunk = 1;
        P.fn(P.ctx, b, e, worker);
        in_chunk = 0;
        if (atomic_fetch_add(&P.done, 1) + 1 == P.chunks) {
            atomic_fetch_add(&P.done_seq, 1);
            if (atomic_load(&P.caller_sleeping)) futex(&P.done_seq, FUTEX_WAKE, INT_MAX);
        }
    }
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&P.gen);
    for (;;) {
        double until = now_us() + spin_us();
        uint32_t g;
        while ((g = atomic_load(&P.gen)) == seen && now_us() < until)
            for (int i = 0; i < 16; i++) cpu_relax();
        if (g == seen) {
            atomic_fetch_add(&P.sleepers, 1);
            while ((g = atomic_load(&P.gen)) == seen) futex(&P.gen, FUTEX_WAIT, seen);
            atomic_fetch_sub(&P.sleepers, 1);
        }
        seen = g;
        if (id < atomic_load(&P.limit)) run_chunks(g, id);
    }
    return NULL;
}

/* Creates workers up to threads - 1; returns how many exist. */
static int start_workers(int want) {
    pthread_mutex_lock(&P.start_lock);
    while (P.started < want - 1 && P.started < POOL_MAX_THREADS - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)(P.started + 1));
        pthread_attr_destroy(&attr);
        if (rc) break; /* fewer threads: slower, still correct */
        P.started++;
    }
    int n = P.started;
    pthread_mutex_unlock(&P.start_lock);
    return n;
}

/* When other programs hold the cores, a worker is often descheduled in the
 * middle of a chunk and the caller stalls until it runs again (a time slice,
 * milliseconds), thousands of times per UNet call. The caller's own run delay
 * (schedstat: time runnable but not running) says when that is happening:
 * over each ADAPT_WINDOW_US, if it waited for a core more than DELAY_SHARE
 * of the time, there are more runnable threads than cores, and loops run in
 * the caller alone until a window says otherwise (at most SOLO_US). Waits
 * for work in progress do not count, so big chunks (an SD 1.5 GEMM block) on
 * an idle machine never trigger it. The choice never changes a result (the
 * chunks are the same either way). OIR_POOL_NO_SOLO=1 turns it off. */
#define ADAPT_WINDOW_US 50000.0
#define DELAY_SHARE 0.15
#define SOLO_US 1000000.0

/* Time this thread has spent runnable but not running, in µs (the kernel's
 * schedstat run delay), or -1 where the kernel does not say. */
static double run_delay_us(void) {
    FILE *f = fopen("/proc/thread-self/schedstat", "re");
    if (!f) return -1;
    unsigned long long on_cpu = 0, waiting = 0;
    int ok = fscanf(f, "%llu %llu", &on_cpu, &waiting) == 2;
    fclose(f);
    return ok ? waiting / 1000.0 : -1;
}

static void adapt(double now) {
    if (P.delay_window_start_us == 0) {
        P.delay_window_start_us = now;
        P.delay_at_start_us = run_delay_us();
        return;
    }
    if (now - P.delay_window_start_us < ADAPT_WINDOW_US) return;
    double d = run_delay_us();
    if (d >= 0 && P.delay_at_start_us >= 0)
        P.solo_until_us = (d - P.delay_at_start_us) > DELAY_SHARE * (now - P.delay_window_start_us) ? now + SOLO_US : 0;
    P.delay_window_start_us = now;
    P.delay_at_start_us = d;
}

static int adapt_enabled(void) {
    static int on = -1;
    if (on < 0) on = !getenv("OIR_POOL_NO_SOLO");
    return on;
}

static void run_inline(long n, long grain, pool_fn fn, void *ctx) {
    for (long b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n, 0);
}

void pool_for(long n, long grain, pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long chunks = (n + grain - 1) / grain;
    int threads = P.threads;
    if (chunks < 2 || threads < 2 || chunks > UINT32_MAX || in_chunk || pthread_mutex_trylock(&P.run_lock)) {
        int nested = in_chunk;
        in_chunk = 1;
        run_inline(n, grain, fn, ctx);
        in_chunk = nested;
        return;
    }
    double t0 = now_us();
    if (adapt_enabled()) adapt(t0);
    int workers = t0 < P.solo_until_us ? 0 : start_workers(threads);
    if (workers == 0) {
        pthread_mutex_unlock(&P.run_lock);
        run_inline(n, grain, fn, ctx);
        return;
    }
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.grain = grain;
    P.chunks = chunks;
    atomic_store(&P.done, 0);
    atomic_store(&P.limit, threads);
    uint32_t g = atomic_load(&P.gen) + 1;
    atomic_store(&P.ticket, (uint64_t)g << 32 | (uint64_t)chunks);
    atomic_store(&P.gen, g);
    if (atomic_load(&P.sleepers) > 0) futex(&P.gen, FUTEX_WAKE, INT_MAX);
    run_chunks(g, 0);
    /* Only chunks other threads have started are left: wait for them. */
    double until = now_us() + spin_us();
    while (atomic_load(&P.done) < chunks) {
        if (now_us() < until) {
            for (int i = 0; i < 16; i++) cpu_relax();
            continue;
        }
        uint32_t s = atomic_load(&P.done_seq);
        atomic_store(&P.caller_sleeping, 1);
        if (atomic_load(&P.done) < chunks) futex(&P.done_seq, FUTEX_WAIT, s);
        atomic_store(&P.caller_sleeping, 0);
    }
    pthread_mutex_unlock(&P.run_lock);
}

int pool_threads(void) { return P.threads; }

void pool_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > POOL_MAX_THREADS) n = POOL_MAX_THREADS;
    P.threads = n;
}

long pool_grain(long n, double cost) {
    if (n < 1) return 1;
    if (!(cost > 0)) cost = 1;
    double g = POOL_MIN_WORK / cost;
    if (g < 1) return 1;
    if (g >= (double)n) return n;
    return (long)g + (g > (long)g);
}
