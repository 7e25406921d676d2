/* The one code path of `oir edit`, `oir search` and `oir batch`: the
 * options they share (edit_opts), one case to run (edit_case_spec: from the
 * command line, a YAML case or a batch manifest line), and edit_run_case,
 * which runs it on a loaded model and writes its files into an output
 * folder (io/outputs.h). The CLI prints; this module prints only what the
 * commands print for a case (plan line, summary, warnings). */
#ifndef OIR_CLI_EDIT_RUN_H
#define OIR_CLI_EDIT_RUN_H

#include <stdint.h>

#include "cli/cli_args.h"
#include "cli/calibrate.h"
#include "cli/progress.h"
#include "io/edit_config.h"
#include "io/outputs.h"
#include "oir.h"

typedef struct edit_opts {
    const char *image, *prompt, *target, *config, *case_name, *model, *clip, *variant, *out;
    const char *tokenizer_mode, *search;
    const char *low_pick, *guard; /* --low-pick MODE, --guard MARGIN|off (NULL: not given) */
    const char *size;       /* --size as given (NULL: the model's native size as the longer side) */
    int size_side;          /* --size N: the longer side; 0: not given */
    int size_w, size_h;     /* --size WxH; 0: not given */
    cli_strs pairs, masks, guided;
    cli_strs picks; /* --pick PAIR=STEP */
    int steps, reassembly, reinversion, serial, threads, quiet, budget_mb, save_candidates;
    int plan_only, no_calibrate, recalibrate; /* --plan, --no-calibrate, --recalibrate */
    const char *mask_method; /* --mask-method (NULL: the default) */
    float mask_threshold;    /* --mask-threshold (< 0: the default) */
    int mask_dilate;         /* --mask-dilate (< 0: the default) */
    float guidance;
    uint64_t seed;
    const char *seed_arg;   /* --seed as given (NULL: not given) */
    const edit_config *cfg; /* the YAML, for its warnings */
    /* --low-pick / --guard parsed (edit_parse_flags) */
    int flag_low_pick, flag_guard;
    float flag_margin;
    int no_summary; /* no per-case summary on stdout (oir batch) */
    const char *device; /* --device (NULL: $OIR_DEVICE, else the CPU) */
} edit_opts;

typedef struct {
    const char *name, *dir_name;
    const char *image_path;
    const char *source;
    const char *target;
    int n;
    const char *from[16], *to[16], *mask_spec[16], *guided[16];
    int reassembly, reinversion; /* from the YAML; -1: not given */
    int steps;                   /* from the YAML; -1: not given */
    float guidance;              /* from the YAML; < 0: not given */
    const char *search;          /* from the YAML; NULL: not given */
    const char *yaml_low_pick, *yaml_guard; /* from the YAML; NULL: not given */
    int has_seed;
    uint64_t seed;
    char *const *yaml_pick;      /* the YAML's pick ("PAIR=STEP"), n_yaml_pick of them */
    int n_yaml_pick;
    int forced[16];              /* --pick / pick resolved: the step of pair i, 0 = search */
    const char *pick_from;       /* "flag", "yaml" or "default" (nothing picked) */
    int low_pick, guard;         /* resolved (flag, else YAML, else default) */
    float guard_margin;
    const char *low_pick_from, *guard_from; /* "flag", "yaml" or "default" */
    const char *case_from;       /* how report.json names the case's own values: NULL "yaml", "manifest" */
} edit_case_spec;

/* --plan over several cases: the sum of their plans */
typedef struct {
    int cases, estimated;
    long rows;
    int decodes;
    double seconds;
} edit_plan_total;
extern edit_plan_total edit_plan_sum;

/* A --mask value that is a box "x0,y0,x1,y1" (and no file of that name). */
int edit_is_box(const char *s);
/* --low-pick / low_pick: "lower" or "reinvert" (what names the option or key). */
int edit_parse_low_pick(const char *what, const char *v, int *mode, oir_error *err);
/* --guard / guard: "off", or a margin >= 0 (finite). */
int edit_parse_guard(const char *what, const char *v, int *on, float *margin, oir_error *err);
/* --size N (the longer side) or WxH into o; the model's multiple is checked
 * once it is loaded (edit_check_size). */
int edit_parse_size(const char *spec, edit_opts *o, oir_error *err);
int edit_check_size(const edit_opts *o, const oir_context *ctx, oir_error *err);

/* --low-pick and --guard of o into o->flag_*. */
int edit_parse_flags(edit_opts *o, oir_error *err);
/* Case s from a YAML or manifest case (pointers into ec, which must outlive
 * s); target: --target, which replaces the case's target prompt, or NULL. */
void edit_spec_from_case(edit_case_spec *s, const edit_case *ec, const char *target);
/* Resolves the case's pick, low_pick and guard: the flags of o, else the
 * case's own values, else the defaults. where names the case in messages
 * about its own values ("FILE: case 'NAME'"); several: the run has more
 * than one case (a --pick message names the case). */
int edit_spec_resolve(edit_case_spec *s, const edit_opts *o, const char *where, int several, oir_error *err);
/* The context parameters of o: --model / $OIR_MODEL, --clip / $OIR_CLIP
 * (required with a model of one's own), --variant, --tokenizer-mode. */
int edit_context_params(oir_context_params *cp, const edit_opts *o, oir_error *err);

/* Runs case c (search: oir search, one pair) and writes its files into od
 * (sub: its subfolder, made by the caller, or NULL), its summary to stdout;
 * with o->plan_only only its plan, writing nothing. */
int edit_run_case(const char *cmd, int search, oir_context *ctx, const edit_case_spec *c, const edit_opts *o,
                  output_dir *od, const char *sub, progress_bar *bar, oir_error *err);

#endif
