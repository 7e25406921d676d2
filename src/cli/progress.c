#include "core/clock.h"
#include "cli/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>


void progress_init(progress_bar *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
}

static void format_time(char *buf, size_t cap, double s) {
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%d:%02d", t / 60, t % 60);
}

int progress_update(void *user, const char *stage, int done, int total) {
    progress_bar *p = user;
    if (!p || !p->enabled) return 0;
    double now = clock_wall_s();
    if (strncmp(p->stage, stage, sizeof p->stage - 1) != 0 || total != p->total) {
        snprintf(p->stage, sizeof p->stage, "%s", stage);
        p->started = now;
        p->total = total;
        p->last_draw = 0;
    }
    if (done < total && now - p->last_draw < 0.1) return 0; /* at most 10 redraws a second */
    p->last_draw = now;
    enum { WIDTH = 30 };
    int fill = total > 0 ? (int)((long long)WIDTH * done / total) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '-';
    bar[WIDTH] = '\0';
    double elapsed = now - p->started;
    char el[32], eta[32] = "?";
    format_time(el, sizeof el, elapsed);
    if (done > 0) format_time(eta, sizeof eta, elapsed / done * (total - done));
    fprintf(stderr, "\r%-22s [%s] %d/%d %s elapsed, ETA %s   ", stage, bar, done, total, el, eta);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}
