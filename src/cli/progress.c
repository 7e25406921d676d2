#include "cli/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

void progress_init(progress_bar *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->current = -1;
}

void progress_start_run(progress_bar *p, const oir_plan *plan, const char *preamble) {
    int enabled = p->enabled;
    progress_end_run(p);
    memset(p, 0, sizeof *p);
    p->enabled = enabled;
    p->current = -1;
    p->run_started = clock_wall_s();
    if (preamble) snprintf(p->preamble, sizeof p->preamble, "%s", preamble);
    if (!plan || plan->seconds <= 0) return;
    p->have_plan = 1;
    p->plan_seconds = plan->seconds;
    for (int k = 0; k < OIR_STAGE_COUNT; k++)
        p->unit_seconds[k] = plan->stage_units[k] > 0 ? plan->stage_seconds[k] / plan->stage_units[k] : 0;
}

void progress_end_run(progress_bar *p) {
    p->preamble[0] = '\0';
    if (p->line_open) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    p->line_open = 0;
}

static void format_time(char *buf, size_t cap, double s) {
    if (!(s >= 0)) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%d:%02d", t / 60, t % 60);
}

void progress_overall(const progress_bar *p, double now, double *fraction, double *eta) {
    *fraction = *eta = -1;
    if (!p->have_plan) return;
    double work = 0;
    for (int k = 0; k < OIR_STAGE_COUNT; k++) work += p->units_done[k] * p->unit_seconds[k];
    double f = work / p->plan_seconds, elapsed = now - p->run_started;
    if (f > 0.999) f = 0.999; /* the plan was short: the run is not over until it is */
    *fraction = f;
    /* the plan's remaining seconds, at the speed seen so far once there is
     * enough of it to judge (else the plan's own clock) */
    double left = p->plan_seconds - work;
    if (left < 0) left = 0;
    *eta = work > 0.02 * p->plan_seconds && elapsed > 0 ? left * elapsed / work
                                                        : (p->plan_seconds - elapsed > 0 ? p->plan_seconds - elapsed : 0);
}

static void draw(progress_bar *p, const progress_stage *s, int kind, double now) {
    enum { WIDTH = 24 };
    int fill = s->total > 0 ? (int)((long long)WIDTH * s->done / s->total) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '-';
    bar[WIDTH] = '\0';
    char el[32], eta[32] = "?", run[96] = "";
    format_time(el, sizeof el, s->active);
    if (s->done > 0) format_time(eta, sizeof eta, s->active / s->done * (s->total - s->done));
    else if (kind >= 0 && p->have_plan && p->unit_seconds[kind] > 0)
        format_time(eta, sizeof eta, p->unit_seconds[kind] * s->total); /* from the plan until the first step */
    double f, reta;
    progress_overall(p, now, &f, &reta);
    if (f >= 0) {
        char r[32];
        format_time(r, sizeof r, reta);
        snprintf(run, sizeof run, " | run %2d%%, ETA %s", (int)(f * 100), r);
    }
    fprintf(stderr, "\r%-22.22s [%s] %d/%d %s, ETA %s%s\033[K", s->name, bar, s->done, s->total, el, eta, run);
    p->line_open = 1;
    if (s->done >= s->total) {
        fputc('\n', stderr);
        p->line_open = 0;
    }
    fflush(stderr);
}

int progress_update(void *user, const char *stage, int done, int total) {
    progress_bar *p = user;
    if (!p || !stage) return 0;
    if (p->preamble[0]) {
        fputs(p->preamble, stderr);
        fflush(stderr);
        p->preamble[0] = '\0';
    }
    double now = clock_wall_s();
    int i = 0;
    while (i < p->n_stages && strcmp(p->stages[i].name, stage) != 0) i++;
    if (i == p->n_stages) {
        if (p->n_stages == PROGRESS_MAX_STAGES) i = PROGRESS_MAX_STAGES - 1; /* reuse the last slot */
        else p->n_stages++;
        memset(&p->stages[i], 0, sizeof p->stages[i]);
        snprintf(p->stages[i].name, sizeof p->stages[i].name, "%s", stage);
    }
    progress_stage *s = &p->stages[i];
    int restart = done < s->done; /* the same stage again (a new round): a new bar */
    int kind = oir_stage_kind(stage), delta = restart ? done : done - s->done;
    if (restart) s->active = 0;
    else if (p->current == i && p->last_tick > 0) s->active += now - p->last_tick;
    if (kind >= 0 && delta > 0) p->units_done[kind] += delta;
    int repeat = !restart && s->done == done && s->total == total && s->total > 0 && done >= total;
    s->done = done;
    s->total = total;
    int switched = p->current != i;
    p->current = i;
    p->last_tick = now;
    if (!p->enabled) return 0;
    if (repeat) return 0; /* already drawn complete */
    if (!switched && !restart && done < total && done > 0 && now - p->last_draw < 0.1) return 0; /* 10 redraws a second */
    p->last_draw = now;
    draw(p, s, kind, now);
    return 0;
}

/* ------------------------------------------------------ over many cases */

void progress_cases_init(progress_cases *pc, int total, int quiet) {
    memset(pc, 0, sizeof *pc);
    pc->total = total;
    pc->quiet = quiet;
    pc->started = clock_wall_s();
}

void progress_cases_step(progress_cases *pc, int ran, int failed, double seconds) {
    pc->done++;
    if (ran) pc->ran++, pc->ran_seconds += seconds;
    if (failed) pc->failed++;
}

double progress_cases_eta(const progress_cases *pc) {
    int left = pc->total - pc->done;
    if (left <= 0) return 0;
    if (pc->ran == 0) return -1; /* nothing run yet: no speed to judge */
    return pc->ran_seconds / pc->ran * left;
}

void progress_cases_text(const progress_cases *pc, char *buf, size_t cap) {
    char el[32], eta[32] = "?";
    format_time(el, sizeof el, clock_wall_s() - pc->started);
    double e = progress_cases_eta(pc);
    if (e >= 0) format_time(eta, sizeof eta, e);
    char failed[48] = "";
    if (pc->failed) snprintf(failed, sizeof failed, ", %d failed", pc->failed);
    snprintf(buf, cap, "%d/%d cases%s, %s elapsed, ETA %s", pc->done, pc->total, failed, el, eta);
}
