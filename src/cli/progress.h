/* Progress bars with ETA on stderr, drawn only when stderr is a terminal
 * (and not --quiet). One line per stage; a stage's clock runs only between
 * its own ticks (the library reports done = 0 as a stage starts), so
 * interleaved stages (decodes and scoring between candidate rounds) each
 * keep their own elapsed time and ETA, and "decode" is one bar for the whole
 * run. With a plan (progress_start_run) every line also shows the run's
 * overall progress and ETA: the planned seconds of the units done so far
 * against the plan's total, scaled by the speed actually seen. */
#ifndef OIR_CLI_PROGRESS_H
#define OIR_CLI_PROGRESS_H

#include <stddef.h>

#include "oir.h"

#define PROGRESS_MAX_STAGES 24

typedef struct {
    char name[64];
    int done, total;
    double active; /* seconds between this stage's own ticks */
} progress_stage;

typedef struct {
    int enabled;     /* draw at all (tty and not quiet) */
    progress_stage stages[PROGRESS_MAX_STAGES];
    int n_stages;
    int current;     /* the stage of the last tick, -1 none */
    double last_tick, last_draw;
    int line_open;   /* a bar is on screen without its newline */
    /* the run's plan */
    int have_plan;
    double run_started, plan_seconds;
    double unit_seconds[OIR_STAGE_COUNT]; /* planned seconds per progress unit */
    double units_done[OIR_STAGE_COUNT];
    /* lines for stderr at the run's first tick (the plan: printed once the
     * library has checked the inputs, so a bad input's error stays the only
     * line), tty or not, unless quiet; dropped when no tick comes */
    char preamble[4096];
} progress_bar;

void progress_init(progress_bar *p, int quiet);
/* A run begins now: forget earlier stages; plan (may be NULL, or without
 * seconds) gives the overall ETA; preamble (may be NULL) is printed at the
 * first tick. */
void progress_start_run(progress_bar *p, const oir_plan *plan, const char *preamble);
/* Ends an open line. */
void progress_end_run(progress_bar *p);
/* Updates (stage, done, total). Returns 0 (never cancels). Suitable as the
 * library's progress callback with user = the progress_bar. */
int progress_update(void *user, const char *stage, int done, int total);
/* The fraction of the plan done (0..1) and the overall ETA in seconds, as the
 * bars show them; -1, -1 without a plan. Exposed for tests. */
void progress_overall(const progress_bar *p, double now, double *fraction, double *eta);

/* Progress over the cases of a batch (oir batch): the ETA is the mean time
 * of the cases run so far (skipped ones not counted) times the cases left. */
typedef struct {
    int total, done, ran, failed, quiet;
    double started, ran_seconds;
} progress_cases;

void progress_cases_init(progress_cases *pc, int total, int quiet);
/* One more case done: ran (not skipped) in seconds, failed or not. */
void progress_cases_step(progress_cases *pc, int ran, int failed, double seconds);
/* Seconds left; -1 before any case has run. */
double progress_cases_eta(const progress_cases *pc);
/* "3/12 cases, 1 failed, 0:42 elapsed, ETA 1:10" */
void progress_cases_text(const progress_cases *pc, char *buf, size_t cap);

#endif
