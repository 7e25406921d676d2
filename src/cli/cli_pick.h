/* --pick PAIR=STEP (oir edit / oir search) and the YAML key `pick`: take
 * candidate STEP for a pair instead of searching its step
 * (oir_params.forced_steps).
 *
 * PAIR is the pair's number (1-based, in --pair / origin_change order) or
 * its FROM phrase (as given, any case, spaces around it trimmed); a PAIR
 * made only of digits is a number. STEP is 1..T. The text splits at its last
 * '='. */
#ifndef OIR_CLI_PICK_H
#define OIR_CLI_PICK_H

#include "core/error.h"

/* Resolves specs[0..n) against the pairs' FROM phrases from[0..n_pairs) for
 * T steps: forced[i] = STEP of pair i, 0 where not picked. OIR_E_ARG naming
 * `what` ("--pick" or "cases.yaml: case 'c': pick") and the spec: no '=',
 * STEP not an integer or outside 1..T, no such pair (number or phrase), a
 * phrase of several pairs, a pair picked twice. */
int cli_pick_resolve(const char *const *specs, int n, const char *what, const char *const *from, int n_pairs,
                     int T, int *forced, oir_error *err);

#endif
