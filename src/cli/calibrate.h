/* The calibration behind the CLI's time estimates (include/oir.h
 * oir_calibrate), cached per machine in $XDG_CACHE_HOME/oir/calibration.json
 * (else ~/.cache/oir/): one entry per model description, working size,
 * thread count, CPU model (/proc/cpuinfo "model name") and oir version. A
 * cache that cannot be read or written is no error: the run measures again. */
#ifndef OIR_CLI_CALIBRATE_H
#define OIR_CLI_CALIBRATE_H

#include "oir.h"

typedef enum {
    CLI_CAL_AUTO,    /* the cached entry, else measure (and cache); small models
                        (a UNet row under 0.25 s) are measured every time */
    CLI_CAL_CACHED,  /* --no-calibrate / OIR_NO_CALIBRATE=1: a cached entry or none */
    CLI_CAL_MEASURE  /* --recalibrate: measure again (and cache) */
} cli_cal_mode;

typedef struct {
    oir_calibration cal;
    int have;             /* cal is valid */
    const char *from;     /* "cache", "measured", "none" */
    char measured[16];    /* "2026-12-07" */
    char path[4200];      /* the cache file ("" without a cache folder) */
    char note[1536];      /* why it was not cached or measured, for a warning ("" if fine) */
} cli_calibration;

/* The mode from the flags and $OIR_NO_CALIBRATE. */
cli_cal_mode cli_calibration_mode(int no_calibrate, int recalibrate);
/* Fills out (never fails: out->have says whether there is a calibration,
 * out->note why not, or why the cache was not written). */
void cli_calibration_get(oir_context *ctx, int width, int height, const oir_params *p, cli_cal_mode mode,
                         cli_calibration *out);

#endif
