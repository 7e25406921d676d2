#include "core/clock.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double clock_wall_s(void) { return seconds(CLOCK_MONOTONIC); }

double clock_cpu_s(void) { return seconds(CLOCK_PROCESS_CPUTIME_ID); }

double clock_peak_rss_gib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / (1024.0 * 1024.0); /* Linux reports KiB */
}

double clock_rss_gib(void) {
    FILE *fp = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(fp);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0 * 1024.0);
}
