/* Prompts for OIR: the guided prompt of a pair is the source prompt with only
 * that pair's phrase replaced; the target prompt has every pair replaced.
 * Phrases match whole words, case-insensitively; a phrase must occur exactly
 * once in the source prompt (twice is ambiguous: an error). */
#ifndef OIR_EDIT_PROMPTS_H
#define OIR_EDIT_PROMPTS_H

#include <stddef.h>

#include "core/error.h"

/* Byte offset of the first whole-word, case-insensitive occurrence of
 * phrase in text, or -1. */
long prompt_find_phrase(const char *text, const char *phrase);

/* Number of non-overlapping whole-word, case-insensitive occurrences. */
int prompt_count_phrase(const char *text, const char *phrase);

/* out = source with the phrases from[i] replaced by to[i] for the pairs whose
 * use[i] is non-zero (use == NULL: all pairs). Errors (OIR_E_ARG) name a
 * phrase that is missing from the source or occurs more than once, or two
 * phrases that overlap. */
int prompt_substitute(const char *source, int n_pairs, const char *const *from,
                      const char *const *to, const int *use, char *out, size_t cap,
                      oir_error *err);

#endif
