/* Clocks and memory figures for timings, progress bars and benchmarks. */
#ifndef OIR_CORE_CLOCK_H
#define OIR_CORE_CLOCK_H

/* Monotonic wall-clock seconds (arbitrary origin). */
double clock_wall_s(void);

/* CPU seconds of the whole process, all threads (OpenMP spin-waiting included). */
double clock_cpu_s(void);

/* Peak resident memory of the process so far, GiB. */
double clock_peak_rss_gib(void);

/* Current resident memory, GiB (0 where /proc is not available). */
double clock_rss_gib(void);

#endif
