/* The plan of an OIR run (include/oir.h "Planning a run"): a replay of what
 * oir.c's run() executes — prompts, the VAE encode, inversion, the search
 * strategy's rounds of candidates (packed by edit/schedule.h or serial, split
 * into UNet calls by the memory budget as the sampler splits them), decodes
 * and scoring, then the reassembly (several pairs) or the final decode (one)
 * — counting UNet rows, calls, decodes and the progress units of each stage,
 * and with a calibration the seconds of each UNet call and model pass.
 *
 * Where the run's work depends on the scores, a chooser stands in for the
 * search metric: plan_simulate takes any chooser (a test replays a real
 * run's scores and must get its exact counters); plan_expected averages over
 * where the best step lies (the evaluated step nearest a peak, the peaks
 * spread log-uniformly over 1..T; for adaptive:M:K a second, lower mode of
 * the curve log-midway between the peak and the farther end of 1..T) and
 * bounds every possible run analytically. */
#ifndef OIR_EDIT_PLAN_H
#define OIR_EDIT_PLAN_H

#include "edit/search_plan.h"
#include "oir.h"

typedef struct {
    int T, n_pairs;
    int cfg;              /* 1: guided steps run 2 UNet rows (guidance != 1) */
    int parallel;         /* batched candidates (else serial) */
    int keep_candidates;  /* oir_params.keep_candidates (the single-pair result reuses its decode) */
    int R, J;             /* requested reassembly step and re-inversion steps */
    int max_unet_batch;   /* rows per UNet call */
    int counts_only;      /* 1: skip packing calls (no calls, no UNet seconds) */
    int forced[16];       /* oir_params.forced_steps (0: the pair is searched) */
    int n_forced;
    int n_masks;          /* pairs whose mask is inferred before the search */
    long mask_rows[2];    /* UNet rows of one inferred mask: its two calls (noise contrast,
                             attention; 0: not run), each split by the budget */
    int low_pick;         /* oir_params.low_pick (OIR_LOW_PICK_*) */
    int guard;            /* oir_params.guard: one more CLIP pass per searched pair */
    search_strategy strategy;
} plan_setup;

typedef struct {
    long rows, rows_candidates, calls, calls_candidates; /* *_candidates: the search's, as
                                                           oir_result.unet_rows / unet_calls */
    int decodes, encodes;
    double units[OIR_STAGE_COUNT];   /* progress units per stage */
    double seconds[OIR_STAGE_COUNT]; /* with a calibration */
    int chosen[16];                  /* the final choice of each pair (1..T) */
} plan_counts;

/* The search metric's choice for `pair` given what is evaluated so far
 * (evaluated: T flags, as oir_result.evaluated: 0 no, 1 T-step schedule, 2
 * short schedule) among the choosable ones (choose_flag: 0 any evaluated,
 * else evaluated == choose_flag). Returns a step 1..T, or 0 to stop with an
 * error (OIR_E_INTERNAL). */
typedef int (*plan_chooser)(void *user, int pair, int T, const unsigned char *evaluated,
                            unsigned char choose_flag);

/* adaptive:M:K's rounds: after the choice of a round, the K best local peaks
 * of `pair`'s evaluated curve (as edit/search_plan.h search_peaks finds them
 * on the normalised totals), best first, into peaks (room for min(K, T)).
 * Returns how many (1..K), or 0 to stop with an error (OIR_E_INTERNAL). */
typedef int (*plan_peak_finder)(void *user, int pair, int T, const unsigned char *evaluated, int K,
                                int *peaks);

/* From the public parameters (checked as oir_edit checks them). */
int plan_setup_init(plan_setup *s, int n_pairs, const oir_params *p, int max_unet_batch, oir_error *err);

/* One run with the given chooser and peak finder (both get user; peaks is
 * only called by the adaptive strategy); cal may be NULL. */
int plan_simulate(const plan_setup *s, plan_chooser choose, plan_peak_finder peaks, void *user,
                  const oir_calibration *cal, plan_counts *out, oir_error *err);

/* Expected counts and seconds (mean over peaks) and bounds; fills the public
 * plan's counts, units and seconds (width, height, search are the caller's). */
int plan_expected(const plan_setup *s, const oir_calibration *cal, oir_plan *out, oir_error *err);

/* For the progress callback of a run: the expected decodes and candidates
 * scored of the whole run (0 when the parameters do not parse: the run's
 * own check reports that). */
void plan_progress_totals(const oir_params *p, int n_pairs, int max_unet_batch, int *decodes, int *scored);

#endif
