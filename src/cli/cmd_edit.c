/* oir search / oir edit: the OIR method from the command line (or the
 * authors' YAML configs), writing the edited image, a contact sheet per pair
 * and report.json into an output folder. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/calibrate.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "cli/cli_mask.h"
#include "cli/cli_pick.h"
#include "cli/cli_plan.h"
#include "cli/progress.h"
#include "edit/sheet.h"
#include "io/edit_config.h"
#include "io/image.h"
#include "io/image_fit.h"
#include "io/outfile.h"
#include "models/tokenizer.h"

#include "cli/edit_run.h"

static void usage(FILE *to, int search) {
    const char *cmd = search ? "search" : "edit";
    fprintf(to,
            "usage: oir %s --image IMG --prompt SOURCE --pair 'FROM->TO' --mask MASK [...] [options]\n"
            "       oir %s --config CASES.yaml [--case NAME] [options]\n\n"
            "%s\n\n"
            "inputs:\n"
            "  --image PATH           photo (PNG/JPEG) of any size; the model works on it at the working\n"
            "                         size (--size) and edited.png is the whole photo with the edit put back\n"
            "  --prompt TEXT          source prompt describing the photo\n"
            "  --pair 'FROM->TO'      editing pair: a phrase of the source prompt and what it becomes%s;\n"
            "                         the separator is the first '->', '=>' or '=', spaces around the\n"
            "                         phrases are trimmed; FROM must occur exactly once in the prompt\n"
            "                         (whole words, any case) unless --guided and --target are given\n"
            "  --mask PNG|x0,y0,x1,y1|auto  the pair's region in the photo's pixels: a mask image\n"
            "                         (non-zero = object, the photo's size), a box (x1, y1 exclusive,\n"
            "                         inside the photo), or auto: inferred from the model (as oir mask);\n"
            "                         one --mask per --pair, in the same order; no --mask at all: every\n"
            "                         pair's mask is inferred (a file named auto: ./auto)\n"
            "  --mask-method M        inferred masks: noise, attention or combined (default: %s)\n"
            "  --mask-threshold X     inferred masks: threshold on the normalised map, 0..1\n"
            "  --mask-dilate PX       inferred masks: margin in working pixels, 0..64\n"
            "                         (defaults, threshold / dilate: %s)\n"
            "  --guided TEXT          guided prompt of a pair (default: source prompt with only that\n"
            "                         pair substituted); one per --pair when given\n"
            "  --target TEXT          target prompt (default: every pair substituted)\n"
            "  --config FILE.yaml     the authors' single_object / multi_object YAML cases; keys oir\n"
            "                         does not use are reported (with the reason), unknown keys warned;\n"
            "                         command-line flags win over the YAML's values\n"
            "  --case NAME            run only this case of the YAML file\n"
            "  --size N | WxH         working size: N = the longer side, the shorter one from the photo's\n"
            "                         aspect (rounded to the model's multiple: 16 tiny model, 64 SD 1.x);\n"
            "                         WxH exactly. Default: the model's native size (64, 512) as the\n"
            "                         longer side. The working image is the largest centred region of\n"
            "                         the photo with the working aspect (a minimal crop), resized;\n"
            "                         --size 512x512 is the authors' centre crop\n"
            "method:\n"
            "  --steps N              DDIM steps T (default: the YAML's num_ddim_steps, else 50)\n"
            "  --guidance G           classifier-free guidance (default: the YAML's guidance_scale,\n"
            "                         else 7.5)\n"
            "  --reassembly-step R    reassembly level (default 10; see --low-pick for a pair whose\n"
            "                         step is <= R)\n"
            "  --reinversion-steps J  re-inversion steps after reassembly (default 10)\n"
            "  --low-pick MODE        a pair whose step k is <= R: lower (default; R is lowered to\n"
            "                         min(k) - 1 for the image, as the authors' code, with a warning)\n"
            "                         or reinvert (R is kept: the pair's chosen candidate is\n"
            "                         DDIM-inverted back up to R with its guided prompt, R more UNet\n"
            "                         rows a pair). Also the YAML's low_pick\n"
            "  --guard MARGIN|off     no-edit guard of the search metric (default off: the paper's\n"
            "                         metric): only candidates whose masked CLIP score with the target\n"
            "                         phrase beats the unedited image's own by more than MARGIN (>= 0,\n"
            "                         e.g. 0.01) can be chosen; if none does, the plain choice, with a\n"
            "                         warning. One more CLIP pass a pair; sheets mark the others X.\n"
            "                         Also the YAML's guard\n"
            "  --search NAME[:P]      how each pair's step is searched (default: the YAML's search,\n"
            "                         else adaptive = adaptive:10:2, 4-6x fewer UNet rows at T = 50);\n"
            "                         exhaustive is the paper's (every candidate k = 1..T);\n"
            "                         coarse:S, short:TS, short-refine:TS:W, adaptive:M:K (M\n"
            "                         geometric levels, then bisection around the K best local\n"
            "                         peaks of the metric; K default 2) (README \"Faster searches\")\n"
            "  --pick PAIR=STEP       take candidate STEP for a pair instead of searching its step\n"
            "                         (repeatable; PAIR: the pair's number, 1 = the first --pair, or\n"
            "                         its FROM phrase). Only that candidate is denoised; with every\n"
            "                         pair picked nothing is searched. Replaces the YAML's pick\n"
            "  --serial               denoise each candidate alone (default: parallel, T+1 batched calls)\n"
            "  --budget-mb MB         memory for UNet activations; larger batches are split (default 2048)\n"
            "  --seed S               the noise draws of inferred masks, recorded in report.json\n"
            "                         (default: the YAML's seed, else 0); DDIM inversion and eta-0\n"
            "                         denoising use no randomness, so given masks do not depend on it\n"
            "models:\n"
            "  --model PATH           SD 1.x diffusers folder or single .safetensors (default: the shipped tiny-shapes)\n"
            "  --clip PATH            Hugging Face CLIP folder for the search metric (default: the shipped tiny-clip)\n"
            "  --variant fp16         prefer *.fp16.safetensors weights\n"
            "  --tokenizer-mode M     prompt normalisation: clip (default; CLIPTokenizer with ftfy, as\n"
            "                         SD 1.x), openai (also unescapes HTML) or hf-no-ftfy\n"
            "  --threads N            CPU threads (default: all cores, or $OIR_THREADS)\n"
            CLI_DEVICE_HELP
            "output:\n"
            "  --out DIR              output folder (default oir-out): edited.png (the photo at its own\n"
            "                         size with the edit composited inside the masks), edited_working.png\n"
            "                         and input.png (the model's result and input at the working size),\n"
            "                         pair<i>_sheet.png (all candidates + metric curves), pair<i>_mask.png\n"
            "                         (working size; inferred ones are also drawn over the input on the\n"
            "                         sheet), report.json%s. Each run replaces the folder whole (written\n"
            "                         beside it, swapped in on success); a folder holding files oir\n"
            "                         did not write is refused, never cleared\n"
            "  --save-candidates      also write every candidate as pair<i>_k<step>.png\n"
            "  --quiet                no plan line, no progress bars\n"
            "time:\n"
            "  --plan                 print the plan (UNet rows, decodes, estimated time) and exit\n"
            "                         without running or writing anything\n"
            "  --no-calibrate         never time this machine (also OIR_NO_CALIBRATE=1): the estimate\n"
            "                         uses a cached calibration, else only counts are shown\n"
            "  --recalibrate          time this machine again (one UNet call at 1 row and at a batch,\n"
            "                         a VAE decode and encode, a prompt, the scorer), replacing the\n"
            "                         cached one ($XDG_CACHE_HOME/oir/calibration.json, else\n"
            "                         ~/.cache/oir/)\n"
            "Before the run a plan line on stderr gives the work (UNet rows, VAE decodes) and the\n"
            "estimated time, from a calibration measured once per model, size, threads and CPU;\n"
            "runs over 10 minutes get a hint naming quicker settings. report.json's \"plan\" holds\n"
            "the planned numbers next to the measured ones.\n",
            cmd, cmd,
            search ? "Generates the candidate edit of ONE editing pair from every inversion step and picks\n"
                     "the best with the search metric (masked CLIP score inside the mask + negative MSE\n"
                     "outside, min-max normalised). edited.png is the photo with the chosen candidate\n"
                     "put back inside the mask."
                   : "Object-aware inversion and reassembly: searches each pair's optimal inversion step,\n"
                     "denoises each object from its own step with its own guided prompt, splices them\n"
                     "into the inverted background at the reassembly step, re-inverts and finishes with\n"
                     "the target prompt. With one pair this is `oir search`.",
            search ? " (exactly one)" : " (one or more)",
            oir_mask_method_name(OIR_MASK_DEFAULT), cli_mask_defaults_text(),
            search ? "" : ", and the edit");
}

/* Splits "FROM->TO": the separator is the first "->", "=>" or "=" in the
 * spec; spaces around each phrase are trimmed; both phrases must be
 * non-empty and TO must hold no second separator. */
int cli_split_pair(const char *spec, char *from, char *to, size_t cap, oir_error *err) {
    const char *sep = NULL;
    size_t skip = 0;
    for (const char *q = spec; *q && !sep; q++) {
        if ((q[0] == '-' || q[0] == '=') && q[1] == '>') sep = q, skip = 2;
        else if (q[0] == '=') sep = q, skip = 1;
    }
    if (!sep)
        return oir_fail(err, OIR_E_ARG, "--pair '%s': expected 'FROM->TO', e.g. --pair 'dog->cat'", spec);
    const char *f0 = spec, *f1 = sep, *t0 = sep + skip, *t1 = t0 + strlen(t0);
    while (f0 < f1 && isspace((unsigned char)*f0)) f0++;
    while (f1 > f0 && isspace((unsigned char)f1[-1])) f1--;
    while (t0 < t1 && isspace((unsigned char)*t0)) t0++;
    while (t1 > t0 && isspace((unsigned char)t1[-1])) t1--;
    if (f0 == f1 || t0 == t1)
        return oir_fail(err, OIR_E_ARG, "--pair '%s': expected 'FROM->TO' with both phrases non-empty, e.g. --pair 'dog->cat'",
                        spec);
    for (const char *q = t0; q < t1; q++)
        if (*q == '=' || (q[0] == '-' && q[1] == '>'))
            return oir_fail(err, OIR_E_ARG, "--pair '%s': more than one separator; expected one 'FROM->TO'", spec);
    size_t lf = (size_t)(f1 - f0), lt = (size_t)(t1 - t0);
    if (lf >= cap || lt >= cap) return oir_fail(err, OIR_E_ARG, "--pair '%s': too long", spec);
    memcpy(from, f0, lf);
    from[lf] = '\0';
    memcpy(to, t0, lt);
    to[lt] = '\0';
    return OIR_OK;
}

static int run_command(int argc, char **argv, int search) {
    const char *cmd = search ? "search" : "edit";
    if (cli_wants_help(argc, argv)) {
        usage(stdout, search);
        return 0;
    }
    edit_opts o;
    memset(&o, 0, sizeof o);
    o.steps = 0;     /* 0: not given (the YAML's num_ddim_steps, else the default 50) */
    o.guidance = -1; /* < 0: not given (the YAML's guidance_scale, else the default 7.5) */
    o.reassembly = -1; /* -1: not given (YAML value, else 10) */
    o.reinversion = -1;
    o.budget_mb = 2048;
    o.out = "oir-out";
    o.mask_threshold = -1;
    o.mask_dilate = -1;
    const cli_opt opts[] = {
        {"--image", CLI_STR, &o.image, 0, 0},         {"--prompt", CLI_STR, &o.prompt, 0, 0},
        {"--pair", CLI_STRS, &o.pairs, 0, 0},         {"--mask", CLI_STRS, &o.masks, 0, 0},
        {"--guided", CLI_STRS, &o.guided, 0, 0},      {"--target", CLI_STR, &o.target, 0, 0},
        {"--config", CLI_STR, &o.config, 0, 0},       {"--case", CLI_STR, &o.case_name, 0, 0},
        {"--steps", CLI_INT, &o.steps, 1, 1000},      {"--guidance", CLI_FLOAT, &o.guidance, 0, 100},
        {"--reassembly-step", CLI_INT, &o.reassembly, 0, 1000},
        {"--reinversion-steps", CLI_INT, &o.reinversion, 0, 1000},
        {"--serial", CLI_FLAG, &o.serial, 0, 0},      {"--budget-mb", CLI_INT, &o.budget_mb, 1, 1 << 20},
        {"--seed", CLI_STR, &o.seed_arg, 0, 0},       {"--model", CLI_STR, &o.model, 0, 0},
        {"--clip", CLI_STR, &o.clip, 0, 0},           {"--variant", CLI_STR, &o.variant, 0, 0},
        {"--threads", CLI_INT, &o.threads, 0, 1024},  {"--out", CLI_STR, &o.out, 0, 0},
        {"--quiet", CLI_FLAG, &o.quiet, 0, 0},        {"--save-candidates", CLI_FLAG, &o.save_candidates, 0, 0},
        {"--tokenizer-mode", CLI_STR, &o.tokenizer_mode, 0, 0},
        {"--search", CLI_STR, &o.search, 0, 0},
        {"--low-pick", CLI_STR, &o.low_pick, 0, 0},   {"--guard", CLI_STR, &o.guard, 0, 0},
        {"--size", CLI_STR, &o.size, 0, 0},
        {"--pick", CLI_STRS, &o.picks, 0, 0},
        {"--plan", CLI_FLAG, &o.plan_only, 0, 0},     {"--no-calibrate", CLI_FLAG, &o.no_calibrate, 0, 0},
        {"--recalibrate", CLI_FLAG, &o.recalibrate, 0, 0},
        {"--mask-method", CLI_STR, &o.mask_method, 0, 0},
        {"--mask-threshold", CLI_FLOAT, &o.mask_threshold, 0, 1},
        {"--mask-dilate", CLI_INT, &o.mask_dilate, 0, 64},
        {"--device", CLI_STR, &o.device, 0, 0},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err))
        return cli_report(cmd, &err);
    if (o.seed_arg && cli_parse_u64("--seed", o.seed_arg, &o.seed, &err)) return cli_report(cmd, &err);
    if (o.size && edit_parse_size(o.size, &o, &err)) return cli_report(cmd, &err);
    if (edit_parse_flags(&o, &err)) return cli_report(cmd, &err);
    cli_set_threads(o.threads);
    /* the cases to run */
    edit_config cfg = {0};
    int n_cases = 1, rc = OIR_OK;
    edit_case_spec *specs = NULL;
    output_input *inputs = NULL;
    output_dir od = {0};
    oir_context *ctx = NULL;
    static char froms[16][512], tos[16][512];
    if (o.config) {
        if (o.image || o.prompt || o.pairs.n || o.masks.n) {
            oir_fail(&err, OIR_E_ARG, "--config replaces --image/--prompt/--pair/--mask; give one or the other");
            return cli_report(cmd, &err);
        }
        if (edit_config_load(&cfg, o.config, &err)) return cli_report(cmd, &err);
        o.cfg = &cfg;
        for (int i = 0; i < cfg.n_warnings; i++) fprintf(stderr, "oir %s: warning: %s\n", cmd, cfg.warnings[i]);
        if (cfg.n_more_warnings)
            fprintf(stderr, "oir %s: warning: ... and %d more about %s\n", cmd, cfg.n_more_warnings, o.config);
        if (!(specs = calloc((size_t)cfg.n_cases, sizeof *specs))) {
            oir_fail(&err, OIR_E_NOMEM, "out of memory");
            rc = cli_report(cmd, &err);
            goto cleanup;
        }
        n_cases = 0;
        for (int i = 0; i < cfg.n_cases; i++) {
            edit_case *ec = &cfg.cases[i];
            if (o.case_name && strcmp(o.case_name, ec->name) && strcmp(o.case_name, ec->dir_name)) continue;
            if (ec->n_pairs > 16) {
                oir_fail(&err, OIR_E_ARG, "%s: case '%s' has %d pairs (at most 16)", o.config, ec->name, ec->n_pairs);
                rc = cli_report(cmd, &err);
                goto cleanup;
            }
            edit_spec_from_case(&specs[n_cases++], ec, o.target);
        }
        if (n_cases == 0) {
            oir_fail(&err, OIR_E_ARG, "%s: no case named '%s'", o.config, o.case_name ? o.case_name : "");
            rc = cli_report(cmd, &err);
            goto cleanup;
        }
    } else {
        if (!o.image || !o.prompt || o.pairs.n == 0) {
            oir_fail(&err, OIR_E_ARG, "needs --image, --prompt and at least one --pair (or --config); see oir %s --help", cmd);
            return cli_report(cmd, &err);
        }
        if (o.pairs.n > 16) {
            oir_fail(&err, OIR_E_ARG, "%d --pair options (at most 16)", o.pairs.n);
            return cli_report(cmd, &err);
        }
        if (o.masks.n && o.masks.n != o.pairs.n) {
            oir_fail(&err, OIR_E_ARG,
                     "%d --pair but %d --mask: give one mask per pair, in order (--mask auto infers one; no --mask "
                     "at all infers every pair's)",
                     o.pairs.n, o.masks.n);
            return cli_report(cmd, &err);
        }
        if (o.guided.n && o.guided.n != o.pairs.n) {
            oir_fail(&err, OIR_E_ARG, "%d --pair but %d --guided: give a guided prompt for every pair or none",
                     o.pairs.n, o.guided.n);
            return cli_report(cmd, &err);
        }
        if (!(specs = calloc(1, sizeof *specs))) {
            oir_fail(&err, OIR_E_NOMEM, "out of memory");
            return cli_report(cmd, &err);
        }
        edit_case_spec *s = &specs[0];
        s->image_path = o.image;
        s->source = o.prompt;
        s->target = o.target;
        s->n = o.pairs.n;
        s->reassembly = s->reinversion = s->steps = -1;
        s->guidance = -1;
        for (int j = 0; j < o.pairs.n; j++) {
            if (cli_split_pair(o.pairs.v[j], froms[j], tos[j], sizeof froms[j], &err)) {
                rc = cli_report(cmd, &err);
                goto cleanup;
            }
            s->from[j] = froms[j];
            s->to[j] = tos[j];
            s->mask_spec[j] = o.masks.n ? o.masks.v[j] : NULL; /* NULL: inferred */
            s->guided[j] = o.guided.n ? o.guided.v[j] : NULL;
        }
    }
    for (int i = 0; i < n_cases; i++)
        if (search && specs[i].n != 1) {
            oir_fail(&err, OIR_E_ARG, "oir search takes exactly one editing pair (got %d); use oir edit for several",
                     specs[i].n);
            rc = cli_report(cmd, &err);
            goto cleanup;
        }
    /* --pick (else the YAML's pick) against each case's pairs and steps */
    for (int i = 0; i < n_cases; i++) {
        char where[700] = "";
        if (o.config) snprintf(where, sizeof where, "%s: case '%s'", o.config, specs[i].name);
        if (edit_spec_resolve(&specs[i], &o, where, n_cases > 1, &err)) {
            rc = cli_report(cmd, &err);
            goto cleanup;
        }
    }
    oir_context_params cp;
    if (edit_context_params(&cp, &o, &err)) {
        rc = cli_report(cmd, &err);
        goto cleanup;
    }
    /* every input this run reads, checked against --out before anything is written */
    int n_inputs = 0;
    if (!(inputs = calloc((size_t)n_cases * 17 + 4, sizeof *inputs))) {
        oir_fail(&err, OIR_E_NOMEM, "out of memory");
        rc = cli_report(cmd, &err);
        goto cleanup;
    }
    inputs[n_inputs++] = (output_input){o.config, "--config"};
    inputs[n_inputs++] = (output_input){cp.model_path, "--model"};
    inputs[n_inputs++] = (output_input){cp.clip_path, "--clip"};
    inputs[n_inputs++] = (output_input){getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"};
    for (int i = 0; i < n_cases; i++) {
        inputs[n_inputs++] = (output_input){specs[i].image_path, o.config ? "image_path" : "--image"};
        for (int j = 0; j < specs[i].n; j++)
            if (!cli_mask_is_auto(specs[i].mask_spec[j]) && !edit_is_box(specs[i].mask_spec[j]))
                inputs[n_inputs++] = (output_input){specs[i].mask_spec[j], o.config ? "prompt_change_mask" : "--mask"};
    }
    for (int i = 4; i < n_inputs; i++)
        if (cli_check_input_file(inputs[i].what, inputs[i].path, &err)) {
            rc = cli_report(cmd, &err);
            goto cleanup;
        }
    if (!o.plan_only && cli_begin_out_dir(&od, o.out, inputs, n_inputs, &err)) {
        rc = cli_report(cmd, &err);
        goto cleanup;
    }
    if (oir_context_load(&ctx, &cp, &err)) {
        rc = cli_report(cmd, &err);
        goto cleanup;
    }
    if (edit_check_size(&o, ctx, &err)) {
        rc = cli_report(cmd, &err);
        goto cleanup;
    }
    progress_bar bar;
    progress_init(&bar, o.quiet);
    for (int i = 0; i < n_cases && !rc; i++) {
        char sub[256];
        if (n_cases > 1 && !o.plan_only) {
            snprintf(sub, sizeof sub, "%s", specs[i].dir_name); /* sanitised by edit_config */
            if (output_dir_mkdir(&od, sub, &err)) {
                rc = cli_report(cmd, &err);
                break;
            }
        }
        if (edit_run_case(cmd, search, ctx, &specs[i], &o, &od, n_cases > 1 ? sub : NULL, &bar, &err))
            rc = cli_report(cmd, &err);
    }
    if (!rc && o.plan_only && n_cases > 1) {
        char d[64] = "", rows[32];
        cli_format_duration(d, sizeof d, edit_plan_sum.seconds);
        cli_format_count(rows, sizeof rows, edit_plan_sum.rows);
        printf("total: %d cases -> %s UNet rows, %d decodes%s%s%s\n", edit_plan_sum.cases, rows,
               edit_plan_sum.decodes, edit_plan_sum.estimated == edit_plan_sum.cases ? "; about " : "",
               edit_plan_sum.estimated == edit_plan_sum.cases ? d : "", edit_plan_sum.estimated == edit_plan_sum.cases ? " in all" : "");
    }
    if (!rc && !o.plan_only) {
        char note[1200];
        if (output_dir_commit(&od, note, sizeof note, &err)) rc = cli_report(cmd, &err);
        else {
            printf("wrote %s/ (%s)\n", o.out,
                   n_cases > 1 ? "a folder per case: edited.png, report.json, pair sheets"
                               : "edited.png, edited_working.png, input.png, report.json, pair sheets");
            if (note[0]) fprintf(stderr, "oir %s: warning: %s\n", cmd, note);
        }
    }
cleanup:
    output_dir_abort(&od); /* no-op after a commit */
    oir_context_free(ctx);
    free(inputs);
    free(specs);
    edit_config_free(&cfg);
    return rc;
}

int cmd_search(int argc, char **argv) { return run_command(argc, argv, 1); }
int cmd_edit(int argc, char **argv) { return run_command(argc, argv, 0); }
