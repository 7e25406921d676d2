/* oir mask: one editing pair's mask inferred from the model itself
 * (include/oir.h oir_mask_infer), written as a PNG at the photo's size, so a
 * user can look at it, correct it and give it to oir edit --mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "cli/cli_mask.h"
#include "core/clock.h"
#include "io/image.h"
#include "io/image_fit.h"
#include "models/tokenizer.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir mask --image IMG --prompt SOURCE --pair 'FROM->TO' --out MASK.png\n"
            "                [--method noise|attention|combined] [--threshold X] [--dilate PX]\n"
            "                [--seed S] [--size N|WxH] [--model PATH] [--variant fp16]\n"
            "                [--tokenizer-mode M] [--threads N] [--quiet]\n"
            "\n"
            "Infers the mask of one editing pair from the model itself, without editing: what\n"
            "`oir edit` does for a pair given without --mask (or with --mask auto). The mask is\n"
            "written at the photo's size (white = the object), ready for oir edit --mask after a\n"
            "look or a correction.\n"
            "\n"
            "  --image PATH       photo (PNG/JPEG) of any size; never overwritten\n"
            "  --prompt TEXT      source prompt describing the photo\n"
            "  --pair 'FROM->TO'  FROM: a phrase of the prompt (whole words, any case, exactly once);\n"
            "                     TO: what it becomes (the contrast is with the prompt where FROM is\n"
            "                     replaced by TO); separators '->', '=>' or '='\n"
            "  --out FILE.png     the mask (required); never one of the inputs, and an existing\n"
            "                     file only when oir wrote it\n"
            "  --method M         noise (noise contrast, DiffEdit's), attention (the phrase's\n"
            "                     cross-attention) or combined (docs/MASKS.md); default: %s\n"
            "  --threshold X      on the normalised map, 0..1 (default: the method's); 1 forces the\n"
            "                     fallback\n"
            "  --dilate PX        margin added around the mask, working pixels, 0..64 (default: the\n"
            "                     method's)\n"
            "                     method defaults (threshold / dilate): %s\n"
            "  --seed S           the noise draws (default 0)\n"
            "  --size N | WxH     working size, as oir edit's (default: the model's native size as\n"
            "                     the longer side)\n"
            "  --model PATH       SD 1.x diffusers folder or single .safetensors (default: the shipped\n"
            "                     tiny-shapes, or $OIR_MODEL)\n"
            "  --variant fp16     prefer *.fp16.safetensors weights\n"
            "  --tokenizer-mode M clip (default), openai or hf-no-ftfy\n"
            "  --threads N        CPU threads (default: all cores, or $OIR_THREADS)\n"
            CLI_DEVICE_HELP
            "  --quiet            no summary line\n"
            "\n"
            "When the model cannot localise the phrase a warning says so and a fallback is used:\n"
            "nothing above the threshold -> the threshold is lowered to half the map's peak; a\n"
            "flat map -> the whole image; a mask over 90%% of the image is kept, with a warning.\n",
            oir_mask_method_name(OIR_MASK_DEFAULT), cli_mask_defaults_text());
}

/* --size N (the longer side) or WxH */
static int parse_size(const char *spec, int *side, int *w, int *h, oir_error *err) {
    char tail;
    if (sscanf(spec, "%dx%d%c", w, h, &tail) == 2 && *w > 0 && *h > 0 && *w <= 4096 && *h <= 4096) return OIR_OK;
    *w = *h = 0;
    if (sscanf(spec, "%d%c", side, &tail) == 1 && *side > 0 && *side <= 4096) return OIR_OK;
    return oir_fail(err, OIR_E_ARG, "--size '%s': expected N (the longer side) or WxH, e.g. --size 512 or --size 768x512",
                    spec);
}

int cmd_mask(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *image_path = NULL, *prompt = NULL, *pair = NULL, *out = NULL, *method = NULL, *model = NULL;
    const char *variant = NULL, *tok = NULL, *size = NULL, *device = NULL;
    float threshold = -1;
    int dilate = -1, threads = 0, quiet = 0;
    uint64_t seed = 0;
    const cli_opt opts[] = {
        {"--image", CLI_STR, &image_path, 0, 0},   {"--prompt", CLI_STR, &prompt, 0, 0},
        {"--pair", CLI_STR, &pair, 0, 0},          {"--out", CLI_STR, &out, 0, 0},
        {"--method", CLI_STR, &method, 0, 0},      {"--threshold", CLI_FLOAT, &threshold, 0, 1},
        {"--dilate", CLI_INT, &dilate, 0, 64},     {"--seed", CLI_U64, &seed, 0, 0},
        {"--size", CLI_STR, &size, 0, 0},          {"--model", CLI_STR, &model, 0, 0},
        {"--variant", CLI_STR, &variant, 0, 0},    {"--tokenizer-mode", CLI_STR, &tok, 0, 0},
        {"--threads", CLI_INT, &threads, 0, 1024}, {"--quiet", CLI_FLAG, &quiet, 0, 0},
        {"--device", CLI_STR, &device, 0, 0},
    };
    oir_error err = {0};
    oir_context *ctx = NULL;
    image orig = {0}, work = {0}, photo_mask = {0};
    unsigned char *rgb = NULL, *mask = NULL;
    char from[512], to[512];
    int side = 0, sw = 0, sh = 0, rc;
    oir_mask_params mp;
    if ((rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err))) goto fail;
    if (!image_path || !prompt || !pair || !out) {
        rc = oir_fail(&err, OIR_E_ARG, "needs --image, --prompt, --pair and --out (see oir mask --help)");
        goto fail;
    }
    if ((rc = cli_split_pair(pair, from, to, sizeof from, &err)) ||
        (rc = cli_mask_params(&mp, "--method", method, "--threshold", threshold, "--dilate", dilate, seed, &err)) ||
        (size && (rc = parse_size(size, &side, &sw, &sh, &err))))
        goto fail;
    oir_context_params cp = oir_context_default_params();
    if (model) cp.model_path = model;
    else if (getenv("OIR_MODEL") && *getenv("OIR_MODEL")) cp.model_path = getenv("OIR_MODEL");
    cp.variant = variant;
    tokenizer_mode tm = TOKENIZER_CLIP;
    if (tok && tokenizer_mode_parse(tok, &tm, &err)) {
        rc = oir_error_prefix(&err, "--tokenizer-mode");
        goto fail;
    }
    cp.tokenizer_mode = (int)tm;
    if ((rc = cli_device(device, &cp.device, &err))) goto fail;
    const output_input inputs[] = {{image_path, "--image"},
                                   {cp.model_path, "--model"},
                                   {cp.clip_path, "the CLIP folder"},
                                   {getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"}};
    if ((rc = cli_check_input_file("--image", image_path, &err)) || (rc = cli_check_png_name(out, &err)) ||
        (rc = cli_check_out_file(out, inputs, 4, &err)))
        goto fail;
    cli_set_threads(threads);
    double t0 = clock_wall_s();
    if ((rc = image_load(&orig, image_path, &err)) || (rc = oir_context_load(&ctx, &cp, &err))) goto fail;
    int m = oir_context_size_multiple(ctx), ww = sw, wh = sh;
    if (sw && (sw % m || sh % m)) {
        rc = oir_fail(&err, OIR_E_ARG, "--size %s: the sides must be multiples of %d for this model", size, m);
        goto fail;
    }
    if (!sw && (rc = oir_working_size(ctx, orig.width, orig.height, side, &ww, &wh, &err))) {
        oir_error_prefix(&err, "--size");
        goto fail;
    }
    image_fit fit;
    image_fit_plan(&fit, orig.width, orig.height, ww, wh);
    if ((rc = image_fit_image(&work, &orig, &fit, &err))) goto fail;
    size_t hw = (size_t)ww * wh;
    if (!(rgb = malloc(hw * 3))) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < hw * 3; i++) rgb[i] = (unsigned char)(work.data[i] * 255.0f + 0.5f);
    oir_mask_info info;
    if ((rc = oir_mask_infer(ctx, rgb, ww, wh, prompt, from, to, &mp, &mask, &info, &err))) goto fail;
    if ((rc = cli_mask_to_photo(&photo_mask, mask, &fit, &err)) || (rc = image_save_png(&photo_mask, out, &err)))
        goto fail;
    if (info.warning) fprintf(stderr, "oir mask: warning: %s\n", info.message);
    if (!quiet)
        printf("wrote %s (%dx%d, the photo's size; inferred at %dx%d): method %s, threshold %.2f, dilate %d px, "
               "area %.1f%%, %d component%s, %ld UNet rows, %.1f s\n",
               out, orig.width, orig.height, ww, wh, oir_mask_method_name(info.method), (double)info.threshold,
               info.dilate_px, 100.0 * info.area, info.components, info.components == 1 ? "" : "s", info.unet_rows,
               clock_wall_s() - t0);
    rc = 0;
    goto cleanup;
fail:
    rc = cli_report("mask", &err);
cleanup:
    oir_context_free(ctx);
    image_free(&orig);
    image_free(&work);
    image_free(&photo_mask);
    free(rgb);
    oir_free(mask);
    return rc;
}
