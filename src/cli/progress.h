/* Progress bars with ETA on stderr, drawn only when stderr is a terminal
 * (and not --quiet); one-line stage summaries otherwise stay silent. */
#ifndef OIR_CLI_PROGRESS_H
#define OIR_CLI_PROGRESS_H

typedef struct {
    int enabled;     /* draw at all (tty and not quiet) */
    char stage[64];  /* current stage name */
    double started;  /* seconds, when the stage started */
    double last_draw;
    int total;
} progress_bar;

void progress_init(progress_bar *p, int quiet);
/* Updates (stage, done, total); starts a new bar when the stage changes and
 * finishes the line when done == total. Returns 0 (never cancels). Suitable
 * as the library's progress callback with user = the progress_bar. */
int progress_update(void *user, const char *stage, int done, int total);

#endif
