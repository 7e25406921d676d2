/* report.json's parts that every command writing an edit's report shares
 * (`oir edit` / `oir search` / `oir batch` in edit_run.c, `oir serve`'s
 * jobs in serve/job_run.c), so the keys mean one thing everywhere. */
#ifndef OIR_CLI_REPORT_H
#define OIR_CLI_REPORT_H

#include <cjson/cJSON.h>

#include "io/image_fit.h"
#include "oir.h"

/* (n) floats / bytes as a JSON array of numbers (NaN as cJSON writes it: null). */
cJSON *cli_report_floats(const float *v, int n);
cJSON *cli_report_bytes(const unsigned char *v, int n);

/* rep.geometry: the photo, the working size, the crop region, the transform,
 * the feather and how edited.png is composited. Returns the "working" object
 * (a command adds how its size was chosen), NULL when out of memory. */
cJSON *cli_report_geometry(cJSON *rep, int photo_w, int photo_h, int working_w, int working_h, const image_fit *fit,
                           int feather_px);

/* Pair i's search record into its object e: the flat flags, the re-inversion,
 * the guard's record (when on), the raw and normalised scores and totals of
 * every candidate, and which were evaluated (`evaluated`: (steps) values as
 * oir_result.evaluated; NULL: r's own). */
void cli_report_pair_search(cJSON *e, const oir_result *r, int i, const unsigned char *evaluated);

/* rep.seconds: the run's stages and total. */
void cli_report_seconds(cJSON *rep, const oir_result *r);

#endif
