/* The plan line, the hint for long runs and report.json's "plan" object of
 * `oir edit` / `oir search` (include/oir.h oir_plan_run, cli/calibrate.h). */
#ifndef OIR_CLI_PLAN_H
#define OIR_CLI_PLAN_H

#include <stddef.h>

#include "cli/calibrate.h"
#include "oir.h"

/* Runs longer than this get a hint with quicker settings. */
#define CLI_PLAN_HINT_SECONDS 600.0

/* "1 h 52 min", "3 min 20 s", "40 s", "1.5 s", "0.3 s", "under 0.1 s". */
void cli_format_duration(char *buf, size_t cap, double seconds);
/* 5216 -> "5,216". */
void cli_format_count(char *buf, size_t cap, long v);
/* "plan: 2 pairs, T=50, search exhaustive, 64x64 -> 5,216 UNet rows, 101
 * decodes, 1 encode; about 1 min 6 s on this machine (12.4 ms per UNet row,
 * 11.2 ms per decode, measured 2026-12-07)". */
void cli_plan_line(char *buf, size_t cap, const oir_plan *pl, const cli_calibration *cal);
/* When the estimate is over CLI_PLAN_HINT_SECONDS: "hint: ..." naming
 * quicker settings with their estimates (planned with the same
 * calibration, and as pl was: oir_plan_edit over the pairs when pairs is
 * given, so inferred masks count; oir_plan_run over n_pairs when NULL);
 * returns 1, else 0 and buf is "". */
int cli_plan_hint(char *buf, size_t cap, const oir_context *ctx, int width, int height, const oir_pair *pairs,
                  int n_pairs, const oir_params *p, const oir_plan *pl, const cli_calibration *cal);

struct cJSON;
/* report.json's "plan": the planned counts and estimate next to the measured ones. */
void cli_plan_json(struct cJSON *report, const oir_plan *pl, const cli_calibration *cal);

#endif
