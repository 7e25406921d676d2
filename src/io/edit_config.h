/* The OIR authors' YAML edit configurations, read with libyaml.
 *
 * A file maps case names to cases. Two schemas are understood:
 *
 * multi_object (configs/multi_object_edit.yaml):
 *   image_path, origin_prompt, target_prompt,
 *   guided_prompt: [[prefix, suffix], ...]   guided prompt i = prefix + prompt_change[i] + suffix
 *   origin_change: [...], prompt_change: [...], prompt_change_mask: [paths],
 *   reassembly_step, reinversion_steps  (optional; -1 when absent)
 *   low_pick  (optional, as --low-pick: lower | reinvert)
 *
 * Both schemas also take num_ddim_steps (1..1000), guidance_scale (0..100),
 * seed, search (a search strategy, as --search), guard (the no-edit guard,
 * as --guard: "off" or a margin) and pick (steps to take
 * instead of searching, as --pick: a mapping {PAIR: STEP}, a list of
 * "PAIR=STEP" or one "PAIR=STEP"; kept as "PAIR=STEP" texts, resolved
 * against the pairs by the CLI) (optional; the command line's
 * --steps/--guidance/--seed/--search/--pick win).
 * Keys oir does not use are reported as warnings with the reason:
 * generation_image_path (outputs go to --out); ground_truth_path,
 * heldout_in_target, source_scene, target_scene, object_masks (metadata of
 * the shapes benchmark); reassembly_step / reinversion_steps in a
 * single_object case (one pair: no reassembly), and low_pick there. Any other key is warned as
 * unknown (a misspelling?). Neither stops the run.
 *
 * single_object (configs/single_object_edit.yaml):
 *   image_path, origin_prompt, target_prompt_list: [prefix, suffix],
 *   target_changes: [...], origin_prompt_mask: path
 *   -> one case per target change, each with one pair whose phrase is the part
 *      of origin_prompt between prefix and suffix.
 *
 * Masks may be left to oir (inferred from the model, `oir edit --mask
 * auto`): a case without prompt_change_mask (origin_prompt_mask), or an
 * entry "auto" (or empty / null), gives mask_path NULL.
 *
 * A file whose top level is itself one case (has image_path) is read as one
 * case named after the file; guided_prompt entries may also be whole prompts.
 *
 * Relative paths are resolved against the YAML file's folder when the file
 * exists there, else kept as given (relative to the working directory).
 *
 * Case names: each case also gets dir_name, the name of its output folder:
 * every byte other than ASCII letters, digits, '-', '_' and '.' becomes '_',
 * leading dots become '_', and it is cut to EDIT_CONFIG_NAME_MAX bytes. An
 * empty case name, two cases whose dir_names are equal (compared ignoring
 * case, for case-insensitive file systems), or more than
 * EDIT_CONFIG_MAX_CASES cases (single_object files count each target change)
 * are errors that name the cases; no case is ever dropped. */
#ifndef OIR_IO_EDIT_CONFIG_H
#define OIR_IO_EDIT_CONFIG_H

#include "core/error.h"

typedef struct {
    char *from;          /* origin_change[i] */
    char *to;            /* prompt_change[i] */
    char *mask_path;     /* prompt_change_mask[i]; NULL: inferred (see below) */
    char *guided_prompt; /* prefix + to + suffix, or NULL when not given */
} edit_config_pair;

/* Limits checked before and while libyaml parses (deep nesting costs it
 * quadratic time): the file must be a regular file of at most
 * EDIT_CONFIG_MAX_BYTES; collections nest at most EDIT_CONFIG_MAX_DEPTH deep
 * (the authors' files need 4). */
#define EDIT_CONFIG_MAX_BYTES (1 << 20)
#define EDIT_CONFIG_MAX_DEPTH 32
#define EDIT_CONFIG_MAX_CASES 1000
#define EDIT_CONFIG_NAME_MAX 100
#define EDIT_CONFIG_MAX_PICKS 16

typedef struct {
    char *name;     /* as in the file ("case" or "case/target" for single_object) */
    char *dir_name; /* its output folder name (see above) */
    char *image_path;
    char *origin_prompt;
    char *target_prompt; /* NULL when not given */
    edit_config_pair *pairs;
    int n_pairs;
    int reassembly_step;   /* -1: not given */
    int reinversion_steps; /* -1: not given */
    int num_ddim_steps;    /* 1..1000, -1: not given */
    float guidance_scale;  /* 0..100, -1: not given */
    char search[64];       /* search strategy spec ("adaptive:10"), "" not given */
    char low_pick[16];     /* low_pick ("lower", "reinvert"; checked by the CLI), "" not given */
    char guard[32];        /* guard ("off" or a margin; checked by the CLI), "" not given */
    char *pick[EDIT_CONFIG_MAX_PICKS]; /* "PAIR=STEP" entries of pick */
    int n_pick;
    int has_seed;
    unsigned long long seed;
} edit_case;

#define EDIT_CONFIG_MAX_WARNINGS 32

typedef struct {
    edit_case *cases;
    int n_cases;
    /* keys oir does not use, each with the reason ("<file>: case 'c': key
     * 'ground_truth_path' ignored: ..."), and unknown keys; at most
     * EDIT_CONFIG_MAX_WARNINGS, the last one then counting the rest */
    char *warnings[EDIT_CONFIG_MAX_WARNINGS];
    int n_warnings, n_more_warnings;
} edit_config;

int edit_config_load(edit_config *out, const char *path, oir_error *err);
void edit_config_free(edit_config *cfg);

#endif
